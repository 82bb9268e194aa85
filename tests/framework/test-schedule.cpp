// SPDX-License-Identifier: Apache-2.0
//
// test-schedule.cpp: the scheduler shared by the runner plugins
// (slim-schedule.h): the relative-error accumulator against a hand
// computation, and slim_schedule_run on stories260K with linear_quant:
// one error per layer, and the same numbers whether every layer is
// resident (model_wise) or not (layer_wise), and whether activations are
// spilled or not.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "plugins/quant-harness.hpp"
#include "plugins/recording-processor.h"
#include "slim-test.h"

extern "C"
{
#include "slim-schedule.h"
}

namespace
{

TEST (Schedule, AccumulateErrorMatchesHandComputation)
{
  const float a[3] = { 1.0f, 2.0f, 4.0f };
  const float b[3] = { 1.0f, 2.5f, 3.0f };
  double diff = 1.0, ref = 2.0; // accumulates onto what is there
  slim_schedule_accumulate_error (a, b, 3, &diff, &ref);
  // diff: 0 + 0.25 + 1 ; ref: 1 + 6.25 + 9
  EXPECT_DOUBLE_EQ (diff, 1.0 + 1.25);
  EXPECT_DOUBLE_EQ (ref, 2.0 + 16.25);
}

SlimDataset *
calib_dataset (SlimModel *model)
{
  static SlimRegistry *registry = nullptr;
  GError *error = nullptr;
  if (registry == nullptr)
    {
      registry = slim_registry_new ();
      std::string so = slim_test_build_dir () + "/plugins/datasets/slim-dataset-jsonl.so";
      EXPECT_TRUE (slim_registry_load_module (registry, so.c_str (), &error))
          << (error ? error->message : "");
      g_clear_error (&error);
    }
  GType type = slim_registry_lookup (registry, SLIM_PLUGIN_KIND_DATASET, "jsonl", &error);
  EXPECT_NE (type, G_TYPE_INVALID);
  std::string path = slim_test_source_dir () + "/examples/lab_calib/mix_calib.jsonl";
  SlimDataset *dataset = SLIM_DATASET (
      g_object_new (type, "path", path.c_str (), "max-samples", 3u, "max-length", 48u, NULL));
  SlimTokenizer *tokenizer = slim_tokenizer_new_from_dir (slim_model_get_path (model), &error);
  EXPECT_NE (tokenizer, nullptr);
  EXPECT_TRUE (slim_dataset_load (dataset, tokenizer, &error)) << (error ? error->message : "");
  g_clear_error (&error);
  g_object_unref (tokenizer);
  return dataset;
}

// Runs linear_quant W8A8 over stories260K, returns the per-layer errors.
std::vector<double>
run_schedule (gboolean all_resident, guint64 max_memory_bytes)
{
  GError *error = nullptr;
  GObjectPtr<SlimModel> model (
      slim_model_open (slim_test_shared_path ("models/stories260K").c_str (), &error));
  EXPECT_TRUE (model) << (error ? error->message : "");
  if (!model)
    return {};
  GObjectPtr<SlimProcessor> quant (harness_processor (
      harness_linear_quant_yaml ("{scope: per_tensor, dtype: int8, symmetric: False, method: "
                                 "minmax}",
                                 "{scope: per_channel, dtype: int8, symmetric: True, method: "
                                 "minmax}"),
      &error));
  EXPECT_TRUE (quant) << (error ? error->message : "");
  GObjectPtr<SlimDataset> dataset (calib_dataset (model.get ()));
  GPtrArray *processors = g_ptr_array_new ();
  g_ptr_array_add (processors, quant.get ());
  GPtrArray *savers = g_ptr_array_new ();
  GArray *errors = g_array_new (FALSE, TRUE, sizeof (double));
  SlimRunContext ctx;
  slim_run_context_init (&ctx);
  ctx.model = model.get ();
  ctx.processors = processors;
  ctx.savers = savers;
  ctx.dataset = dataset.get ();
  ctx.max_memory_bytes = max_memory_bytes;
  ctx.layer_errors = errors;
  EXPECT_TRUE (slim_schedule_run (&ctx, all_resident, nullptr, &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  std::vector<double> out ((double *)errors->data, (double *)errors->data + errors->len);
  g_array_unref (errors);
  g_ptr_array_unref (processors);
  g_ptr_array_unref (savers);
  return out;
}

TEST (Schedule, OneErrorPerLayerSmallAndPositive)
{
  std::vector<double> e = run_schedule (FALSE, 0);
  ASSERT_EQ (e.size (), 5u);
  for (double x : e)
    {
      // W8A8 on stories260K: about 1% per layer; 10% would be a broken quantizer
      EXPECT_GT (x, 0.0);
      EXPECT_LT (x, 0.1);
    }
}

TEST (Schedule, ResidentAndSpilledRunsGiveTheSameNumbers)
{
  std::vector<double> layer_wise = run_schedule (FALSE, 0);
  std::vector<double> model_wise = run_schedule (TRUE, 0);
  std::vector<double> spilled = run_schedule (FALSE, 1); // every sample in the (memory) spill
  ASSERT_EQ (layer_wise.size (), 5u);
  // exact equality: the same float operations in the same order
  EXPECT_EQ (layer_wise, model_wise);
  EXPECT_EQ (layer_wise, spilled);
}

// smooth_quant then linear_quant W8A8 over stories260K; with `recording`
// TRUE a recording processor (a calibration forward that leaves the layer
// as loaded) runs first, so smooth_quant's float calibration forward is not
// the first one and the schedule runs the separate float forward for the
// layer error instead of keeping smooth_quant's outputs.
std::vector<double>
run_smooth_schedule (gboolean recording, guint64 max_memory_bytes)
{
  GError *error = nullptr;
  GObjectPtr<SlimModel> model (
      slim_model_open (slim_test_shared_path ("models/stories260K").c_str (), &error));
  EXPECT_TRUE (model) << (error ? error->message : "");
  if (!model)
    return {};
  GObjectPtr<SlimProcessor> first (
      SLIM_PROCESSOR (g_object_new (SLIM_TYPE_RECORDING_PROCESSOR, "tag", "r", NULL)));
  GObjectPtr<SlimProcessor> smooth (harness_processor ("type: smooth_quant\n", &error));
  EXPECT_TRUE (smooth) << (error ? error->message : "");
  g_clear_error (&error);
  GObjectPtr<SlimProcessor> quant (harness_processor (
      harness_linear_quant_yaml ("{scope: per_tensor, dtype: int8, symmetric: False, method: "
                                 "minmax}",
                                 "{scope: per_channel, dtype: int8, symmetric: True, method: "
                                 "minmax}"),
      &error));
  EXPECT_TRUE (quant) << (error ? error->message : "");
  if (!smooth || !quant)
    return {};
  GObjectPtr<SlimDataset> dataset (calib_dataset (model.get ()));
  GPtrArray *processors = g_ptr_array_new ();
  if (recording)
    g_ptr_array_add (processors, first.get ());
  g_ptr_array_add (processors, smooth.get ());
  g_ptr_array_add (processors, quant.get ());
  GPtrArray *savers = g_ptr_array_new ();
  GArray *errors = g_array_new (FALSE, TRUE, sizeof (double));
  SlimRunContext ctx;
  slim_run_context_init (&ctx);
  ctx.model = model.get ();
  ctx.processors = processors;
  ctx.savers = savers;
  ctx.dataset = dataset.get ();
  ctx.max_memory_bytes = max_memory_bytes;
  ctx.layer_errors = errors;
  EXPECT_TRUE (slim_schedule_run (&ctx, FALSE, nullptr, &error)) << (error ? error->message : "");
  g_clear_error (&error);
  std::vector<double> out ((double *)errors->data, (double *)errors->data + errors->len);
  g_array_unref (errors);
  g_ptr_array_unref (processors);
  g_ptr_array_unref (savers);
  return out;
}

TEST (Schedule, KeptFloatCalibrationOutputsGiveTheSameErrors)
{
  std::vector<double> kept = run_smooth_schedule (FALSE, 0);
  std::vector<double> forwarded = run_smooth_schedule (TRUE, 0);
  std::vector<double> spilled = run_smooth_schedule (FALSE, 1); // kept outputs in the spill
  ASSERT_EQ (kept.size (), 5u);
  for (double x : kept)
    EXPECT_GT (x, 0.0);
  // exact equality: the kept outputs are the bits of the float forward
  EXPECT_EQ (kept, forwarded);
  EXPECT_EQ (kept, spilled);
}

} // namespace
