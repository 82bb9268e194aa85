// SPDX-License-Identifier: Apache-2.0
//
// test-plugin-test.cpp: the SDK's processor test bench (slim-plugin-test.h):
// seeded synthetic layers, the schedule's hook order (the calibration
// forward only for processors that are not data-free), the per-linear error
// against the float weights (0 for untouched linears, small for W8A8), the
// hook named in errors, lookup by name suffix.  examples/plugin/test-clip.c
// uses it from the installed SDK (tools/sdk-check.sh).
#include "quant-harness.hpp"
#include "recording-processor.h"
#include "slim-test.h"

#include <cstring>

namespace
{

const SlimPluginTestLinear kLinears[] = {
  { "self_attn.q_proj", 16, 32, FALSE },
  { "mlp.down_proj", 32, 48, TRUE },
};
constexpr guint kNLinears = G_N_ELEMENTS (kLinears);

GObjectPtr<SlimProcessor>
make (const std::string &yaml)
{
  GError *error = nullptr;
  SlimProcessor *p = harness_processor (yaml, &error);
  EXPECT_NE (p, nullptr) << (error ? error->message : "") << "\n" << yaml;
  g_clear_error (&error);
  return GObjectPtr<SlimProcessor> (p);
}

std::string
bytes_of (SlimLayer *layer, const char *name)
{
  SlimTensor *t = slim_layer_get_tensor (layer, name);
  if (t == nullptr)
    return "";
  return std::string ((const char *)slim_tensor_get_data (t), slim_tensor_get_n_bytes (t));
}

} // namespace

// Same seed, same bytes; another seed, other weights; names, shapes, biases.
TEST (PluginTest, LayerIsSeeded)
{
  GObjectPtr<SlimLayer> a (slim_plugin_test_make_layer (3, kLinears, kNLinears, 5));
  GObjectPtr<SlimLayer> b (slim_plugin_test_make_layer (3, kLinears, kNLinears, 5));
  GObjectPtr<SlimLayer> c (slim_plugin_test_make_layer (3, kLinears, kNLinears, 6));
  const char *q = "model.layers.3.self_attn.q_proj.weight";

  EXPECT_EQ (slim_layer_get_index (a.get ()), 3);
  const char *const *names = slim_layer_get_linear_names (a.get ());
  ASSERT_NE (names, nullptr);
  EXPECT_STREQ (names[0], "model.layers.3.self_attn.q_proj");
  EXPECT_STREQ (names[1], "model.layers.3.mlp.down_proj");
  EXPECT_EQ (names[2], nullptr);
  SlimTensor *w = slim_layer_get_tensor (a.get (), "model.layers.3.mlp.down_proj.weight");
  ASSERT_NE (w, nullptr);
  EXPECT_EQ (slim_tensor_get_dim (w, 0), 32);
  EXPECT_EQ (slim_tensor_get_dim (w, 1), 48);
  EXPECT_NE (slim_layer_get_tensor (a.get (), "model.layers.3.mlp.down_proj.bias"), nullptr);
  EXPECT_EQ (slim_layer_get_tensor (a.get (), "model.layers.3.self_attn.q_proj.bias"), nullptr);
  EXPECT_EQ (bytes_of (a.get (), q), bytes_of (b.get (), q));
  EXPECT_NE (bytes_of (a.get (), q), bytes_of (c.get (), q));
}

// validate and pre_run of every processor, then per processor preprocess,
// the calibration forward (sample by sample, linear by linear) unless it is
// data-free, postprocess; post_run of every processor.  A processor that
// changes no weight and attaches no record leaves every error at 0, even
// though its hook changed the calibration inputs.
TEST (PluginTest, HooksInScheduleOrder)
{
  auto a = make ("type: recording\ntag: a\nshift: 1\n");
  auto b = make ("type: recording\ntag: b\ndata_free: true\n");
  GObjectPtr<SlimLayer> layer (slim_plugin_test_make_layer (0, kLinears, kNLinears, 1));
  SlimProcessor *processors[] = { a.get (), b.get () };
  GError *error = nullptr;

  slim_recording_log_clear ();
  SlimPluginTestReport *report
      = slim_plugin_test_run (processors, 2, nullptr, layer.get (), 2, 3, 1, &error);
  ASSERT_NE (report, nullptr) << error->message;
  std::vector<std::string> log;
  for (guint i = 0; i < slim_recording_log ()->len; i++)
    log.emplace_back ((const char *)slim_recording_log ()->pdata[i]);
  const std::string q = "a:linear_input model.layers.0.self_attn.q_proj";
  const std::string d = "a:linear_input model.layers.0.mlp.down_proj";
  std::vector<std::string> want = {
    "a:validate",    "b:validate",   "a:pre_run",     "b:pre_run",  "a:preprocess", q, d, q, d,
    "a:postprocess", "b:preprocess", "b:postprocess", "a:post_run", "b:post_run"
  };
  EXPECT_EQ (log, want);
  EXPECT_TRUE (report->forwarded);
  ASSERT_EQ (report->n_results, kNLinears);
  for (guint i = 0; i < report->n_results; i++)
    {
      EXPECT_EQ (report->results[i].rel_error, 0.0) << report->results[i].module;
      EXPECT_EQ (report->results[i].max_abs_error, 0.0);
      EXPECT_EQ (report->results[i].qlinear, nullptr);
    }
  slim_plugin_test_report_free (report);
}

// linear_quant W8A8 (static per-tensor int8 activations): the selected
// linear is deployed with a small error (about 0.02 on the bench's inputs
// with their 6x outlier channels; bound 0.05), the excluded one stays exact.
TEST (PluginTest, LinearQuantErrorAgainstFloat)
{
  auto quant = make (harness_linear_quant_yaml (
      "{scope: per_tensor, dtype: int8, symmetric: false, method: minmax}",
      "{scope: per_channel, dtype: int8, symmetric: true, method: minmax}",
      "exclude: ['*down_proj*']\n"));
  GObjectPtr<SlimLayer> layer (slim_plugin_test_make_layer (0, kLinears, kNLinears, 2));
  SlimProcessor *processors[] = { quant.get () };
  GError *error = nullptr;

  SlimPluginTestReport *report
      = slim_plugin_test_run (processors, 1, nullptr, layer.get (), 4, 16, 2, &error);
  ASSERT_NE (report, nullptr) << error->message;
  const SlimPluginTestResult *q = slim_plugin_test_report_lookup (report, "q_proj");
  const SlimPluginTestResult *d = slim_plugin_test_report_lookup (report, "mlp.down_proj");
  ASSERT_NE (q, nullptr);
  ASSERT_NE (d, nullptr);
  ASSERT_NE (q->qlinear, nullptr);
  EXPECT_STREQ (q->qlinear->label, "W8A8");
  EXPECT_GT (q->rel_error, 0.0);
  EXPECT_LT (q->rel_error, 0.05);
  EXPECT_EQ (d->qlinear, nullptr);
  EXPECT_EQ (d->rel_error, 0.0);
  g_autofree char *table = slim_plugin_test_report_to_string (report);
  EXPECT_NE (strstr (table, "model.layers.0.self_attn.q_proj"), nullptr) << table;
  EXPECT_NE (strstr (table, "W8A8"), nullptr) << table;
  slim_plugin_test_report_free (report);
}

// A failing hook stops the run; the error names the hook and the plugin.
TEST (PluginTest, FailingHookIsNamed)
{
  auto p = make ("type: recording\ntag: a\nfail_validate: true\n");
  GObjectPtr<SlimLayer> layer (slim_plugin_test_make_layer (0, kLinears, kNLinears, 1));
  SlimProcessor *processors[] = { p.get () };
  GError *error = nullptr;

  EXPECT_EQ (slim_plugin_test_run (processors, 1, nullptr, layer.get (), 1, 1, 1, &error), nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_STREQ (error->message, "validate (processor 'recording'): a refuses");
  g_clear_error (&error);
}

// Full names or suffixes after a dot.
TEST (PluginTest, LookupBySuffix)
{
  auto p = make ("type: recording\ntag: a\n");
  GObjectPtr<SlimLayer> layer (slim_plugin_test_make_layer (0, kLinears, kNLinears, 1));
  SlimProcessor *processors[] = { p.get () };
  GError *error = nullptr;

  SlimPluginTestReport *report
      = slim_plugin_test_run (processors, 1, nullptr, layer.get (), 1, 1, 1, &error);
  ASSERT_NE (report, nullptr) << error->message;
  EXPECT_EQ (slim_plugin_test_report_lookup (report, "model.layers.0.self_attn.q_proj"),
             &report->results[0]);
  EXPECT_EQ (slim_plugin_test_report_lookup (report, "self_attn.q_proj"), &report->results[0]);
  EXPECT_EQ (slim_plugin_test_report_lookup (report, "down_proj"), &report->results[1]);
  EXPECT_EQ (slim_plugin_test_report_lookup (report, "proj"), nullptr);
  EXPECT_EQ (slim_plugin_test_report_lookup (report, "v_proj"), nullptr);
  slim_plugin_test_report_free (report);
}
