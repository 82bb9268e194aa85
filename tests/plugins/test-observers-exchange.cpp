// SPDX-License-Identifier: Apache-2.0
//
// test-observers-exchange.cpp: linear_quant's export_observers /
// import_observers / distributed_ordered, the hooks dp_layer_wise moves
// statistics between ranks with, on a synthetic layer without MPI.  A
// "rank" is a processor instance fed a block of the calibration calls;
// after the exchange its records must equal, bit for bit, those of one
// instance fed every call in order (the comparisons are exact).
#include "slim-test.h"

#include <cstring>

#include "quant-harness.hpp"

namespace
{

const char *const kW8Static = "{dtype: int8, scope: per_tensor, symmetric: false, method: minmax}";
const char *const kA8Mix = "{dtype: int8, scope: pd_mix, symmetric: false, method: minmax}";
const char *const kW8Chan = "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}";
const char *const kA8Token = "{dtype: int8, scope: per_token, symmetric: true, method: minmax}";
const std::string kQ = "model.layers.0.self_attn.q_proj";
const std::string kUp = "model.layers.0.mlp.up_proj";
const int kIn = 8;

GObjectPtr<SlimProcessor>
make (const std::string &act)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p (
      harness_processor (harness_linear_quant_yaml (act, kW8Chan), &error));
  EXPECT_NE (p.get (), nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  return p;
}

GObjectPtr<SlimLayer>
make_layer ()
{
  return GObjectPtr<SlimLayer> (
      harness_synthetic_layer (0, { { kQ, 4, kIn, false }, { kUp, 6, kIn, false } }, 3));
}

// Calibration call c of the run: a few tokens whose range shrinks from
// call to call, so that the running range of a later call is set by the
// earlier ones (the hand-off matters).
std::vector<float>
call_input (int c)
{
  return harness_pattern (3 * kIn, (unsigned)(7 + c), 3.0f - 0.4f * (float)c);
}

// Feeds calls [first, first + count) to both linears; the inputs as the
// hooks left them (fake-quantized) are appended to seen.
void
feed (SlimProcessor *p, SlimLayer *layer, int first, int count, std::vector<float> *seen)
{
  SlimForwardHooks hooks;
  GError *error = nullptr;
  slim_processor_get_forward_hooks (p, layer, &hooks);
  ASSERT_NE (hooks.linear_input, nullptr);
  for (int c = first; c < first + count; c++)
    for (const std::string &m : { kQ, kUp })
      {
        std::vector<float> x = call_input (c);
        ASSERT_TRUE (hooks.linear_input (m.c_str (), x.data (), 3, kIn, hooks.user_data, &error))
            << error->message;
        if (seen != nullptr)
          seen->insert (seen->end (), x.begin (), x.end ());
      }
}

void
expect_same_records (SlimLayer *a, SlimLayer *b)
{
  for (const std::string &m : { kQ, kUp })
    {
      const SlimQLinear *qa = slim_layer_get_qlinear (a, m.c_str ());
      const SlimQLinear *qb = slim_layer_get_qlinear (b, m.c_str ());
      ASSERT_NE (qa, nullptr) << m;
      ASSERT_NE (qb, nullptr) << m;
      EXPECT_EQ (std::memcmp (&qa->input_scale, &qb->input_scale, sizeof (float)), 0) << m;
      EXPECT_EQ (std::memcmp (&qa->input_offset, &qb->input_offset, sizeof (float)), 0) << m;
    }
}

// Static per-tensor activations quantize each call with the running
// range: the rank of calls 3..5 must start from the observers of calls
// 0..2 (import, replace), then its fake-quantized inputs and the final
// records equal one instance's over calls 0..5.
TEST (ObserversExchange, OrderedHandOffEqualsOneProcess)
{
  auto one = make (kW8Static), r0 = make (kW8Static), r1 = make (kW8Static);
  auto l_one = make_layer (), l0 = make_layer (), l1 = make_layer ();
  GError *error = nullptr;

  EXPECT_TRUE (slim_processor_distributed_ordered (one.get ()));
  EXPECT_TRUE (slim_processor_supports_distributed (one.get ()));
  EXPECT_TRUE (slim_processor_can_exchange_observers (one.get ()));
  ASSERT_TRUE (slim_processor_preprocess (one.get (), l_one.get (), &error));
  ASSERT_TRUE (slim_processor_preprocess (r0.get (), l0.get (), &error));
  ASSERT_TRUE (slim_processor_preprocess (r1.get (), l1.get (), &error));

  std::vector<float> seen_one, seen_r1;
  feed (one.get (), l_one.get (), 0, 6, &seen_one);
  feed (r0.get (), l0.get (), 0, 3, nullptr);
  GBytes *handed = slim_processor_export_observers (r0.get (), l0.get (), &error);
  ASSERT_NE (handed, nullptr) << error->message;
  ASSERT_TRUE (slim_processor_import_observers (r1.get (), l1.get (), handed, FALSE, &error))
      << error->message;
  g_bytes_unref (handed);
  feed (r1.get (), l1.get (), 3, 3, &seen_r1);
  // rank 1's calls were quantized as one process quantized them
  std::vector<float> tail (seen_one.end () - (long)seen_r1.size (), seen_one.end ());
  EXPECT_EQ (std::memcmp (tail.data (), seen_r1.data (), tail.size () * sizeof (float)), 0);

  // the last rank's observers are everything: rank 0 takes them
  GBytes *last = slim_processor_export_observers (r1.get (), l1.get (), &error);
  ASSERT_NE (last, nullptr);
  ASSERT_TRUE (slim_processor_import_observers (r0.get (), l0.get (), last, FALSE, &error));
  g_bytes_unref (last);
  ASSERT_TRUE (slim_processor_postprocess (one.get (), l_one.get (), &error));
  ASSERT_TRUE (slim_processor_postprocess (r0.get (), l0.get (), &error));
  ASSERT_TRUE (slim_processor_postprocess (r1.get (), l1.get (), &error));
  expect_same_records (l_one.get (), l0.get ());
  expect_same_records (l_one.get (), l1.get ());
}

// Without the hand-off rank 1 would quantize with its own running range:
// the inputs differ (why static activations are ordered).
TEST (ObserversExchange, WithoutHandOffTheForwardDiffers)
{
  auto one = make (kW8Static), r1 = make (kW8Static);
  auto l_one = make_layer (), l1 = make_layer ();
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_preprocess (one.get (), l_one.get (), &error));
  ASSERT_TRUE (slim_processor_preprocess (r1.get (), l1.get (), &error));
  std::vector<float> seen_one, seen_r1;
  feed (one.get (), l_one.get (), 0, 6, &seen_one);
  feed (r1.get (), l1.get (), 3, 3, &seen_r1);
  std::vector<float> tail (seen_one.end () - (long)seen_r1.size (), seen_one.end ());
  EXPECT_NE (std::memcmp (tail.data (), seen_r1.data (), tail.size () * sizeof (float)), 0);
  ASSERT_TRUE (slim_processor_postprocess (one.get (), l_one.get (), &error));
  ASSERT_TRUE (slim_processor_postprocess (r1.get (), l1.get (), &error));
}

// pd_mix (max aggregation) only observes: blocks run independently and
// merge (rank 0's replacing, then the others in rank order) to one
// process's records.
TEST (ObserversExchange, MergeEqualsOneProcess)
{
  auto one = make (kA8Mix), r0 = make (kA8Mix), r1 = make (kA8Mix), r2 = make (kA8Mix);
  auto l_one = make_layer (), l0 = make_layer (), l1 = make_layer (), l2 = make_layer ();
  GError *error = nullptr;

  EXPECT_FALSE (slim_processor_distributed_ordered (one.get ()));
  SlimProcessor *ranks[] = { r0.get (), r1.get (), r2.get () };
  SlimLayer *layers[] = { l0.get (), l1.get (), l2.get () };
  ASSERT_TRUE (slim_processor_preprocess (one.get (), l_one.get (), &error));
  feed (one.get (), l_one.get (), 0, 5, nullptr);
  const int first[] = { 0, 2, 4 }, count[] = { 2, 2, 1 };
  GBytes *exported[3];
  for (int r = 0; r < 3; r++)
    {
      ASSERT_TRUE (slim_processor_preprocess (ranks[r], layers[r], &error));
      feed (ranks[r], layers[r], first[r], count[r], nullptr);
      exported[r] = slim_processor_export_observers (ranks[r], layers[r], &error);
      ASSERT_NE (exported[r], nullptr);
    }
  for (int r = 0; r < 3; r++)
    for (int k = 0; k < 3; k++)
      ASSERT_TRUE (
          slim_processor_import_observers (ranks[r], layers[r], exported[k], k > 0, &error))
          << error->message;
  for (GBytes *b : exported)
    g_bytes_unref (b);
  ASSERT_TRUE (slim_processor_postprocess (one.get (), l_one.get (), &error));
  for (int r = 0; r < 3; r++)
    {
      ASSERT_TRUE (slim_processor_postprocess (ranks[r], layers[r], &error));
      expect_same_records (l_one.get (), layers[r]);
    }
}

// Bytes from another process are checked: garbage, and observers of
// other linears, are errors naming the processor.
TEST (ObserversExchange, RejectsForeignBytes)
{
  auto p = make (kW8Static);
  auto layer = make_layer ();
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));

  GBytes *garbage = g_bytes_new_static ("\x01\x02\x03", 3);
  EXPECT_FALSE (slim_processor_import_observers (p.get (), layer.get (), garbage, FALSE, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("linear_quant"), std::string::npos)
      << error->message;
  g_clear_error (&error);
  g_bytes_unref (garbage);

  // a processor that selected only q_proj exports one entry
  GError *e2 = nullptr;
  GObjectPtr<SlimProcessor> q_only (harness_processor (
      harness_linear_quant_yaml (kW8Static, kW8Chan, "include: [\"*q_proj\"]"), &e2));
  ASSERT_NE (q_only.get (), nullptr) << (e2 ? e2->message : "");
  auto l2 = make_layer ();
  ASSERT_TRUE (slim_processor_preprocess (q_only.get (), l2.get (), &error));
  GBytes *one_entry = slim_processor_export_observers (q_only.get (), l2.get (), &error);
  ASSERT_NE (one_entry, nullptr);
  EXPECT_FALSE (slim_processor_import_observers (p.get (), layer.get (), one_entry, TRUE, &error));
  ASSERT_NE (error, nullptr);
  g_clear_error (&error);
  g_bytes_unref (one_entry);
}

const char *const kW8Gptq = "{dtype: int8, scope: per_channel, symmetric: true, method: gptq}";

// GPTQ with float activations: the forward reads no statistics, but
// add_batch rescales the Hessian at every call, so the ranks record their
// calls during parallel forwards and replay them rank after rank on top of
// the predecessors' Hessians: the GPTQ weights equal one process's bit for
// bit (3 uneven blocks: calls 0-1, 2-3, 4).
TEST (ObserversExchange, GptqRecordAndReplayEqualsOneProcess)
{
  GError *error = nullptr;
  auto gptq = [&] () {
    GObjectPtr<SlimProcessor> p (
        harness_processor (harness_linear_quant_yaml ("", kW8Gptq), &error));
    EXPECT_NE (p.get (), nullptr) << (error ? error->message : "");
    return p;
  };
  auto one = gptq (), r0 = gptq (), r1 = gptq (), r2 = gptq ();
  auto l_one = make_layer (), l0 = make_layer (), l1 = make_layer (), l2 = make_layer ();
  SlimProcessor *ranks[] = { r0.get (), r1.get (), r2.get () };
  SlimLayer *layers[] = { l0.get (), l1.get (), l2.get () };
  const int first[] = { 0, 2, 4 }, count[] = { 2, 2, 1 };

  EXPECT_TRUE (slim_processor_supports_distributed (one.get ()));
  EXPECT_FALSE (slim_processor_distributed_ordered (one.get ()));
  ASSERT_TRUE (slim_processor_preprocess (one.get (), l_one.get (), &error));
  feed (one.get (), l_one.get (), 0, 5, nullptr);
  for (int r = 0; r < 3; r++)
    {
      ASSERT_TRUE (slim_processor_preprocess (ranks[r], layers[r], &error));
      ASSERT_TRUE (slim_processor_start_recording (ranks[r], layers[r]));
      feed (ranks[r], layers[r], first[r], count[r], nullptr);
    }
  GBytes *handed = nullptr;
  for (int r = 0; r < 3; r++)
    {
      if (r > 0)
        {
          ASSERT_TRUE (slim_processor_import_observers (ranks[r], layers[r], handed, FALSE, &error))
              << error->message;
          g_bytes_unref (handed);
        }
      ASSERT_TRUE (slim_processor_replay_recorded (ranks[r], layers[r], &error)) << error->message;
      handed = slim_processor_export_observers (ranks[r], layers[r], &error);
      ASSERT_NE (handed, nullptr) << error->message;
    }
  // Hessians are never merged
  EXPECT_FALSE (slim_processor_import_observers (r0.get (), l0.get (), handed, TRUE, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("cannot be merged"), std::string::npos)
      << error->message;
  g_clear_error (&error);
  for (int r = 0; r < 2; r++)
    ASSERT_TRUE (slim_processor_import_observers (ranks[r], layers[r], handed, FALSE, &error))
        << error->message;
  g_bytes_unref (handed);
  ASSERT_TRUE (slim_processor_postprocess (one.get (), l_one.get (), &error)) << error->message;
  for (int r = 0; r < 3; r++)
    {
      ASSERT_TRUE (slim_processor_postprocess (ranks[r], layers[r], &error)) << error->message;
      for (const std::string &m : { kQ, kUp })
        {
          const SlimQLinear *qa = slim_layer_get_qlinear (l_one.get (), m.c_str ());
          const SlimQLinear *qb = slim_layer_get_qlinear (layers[r], m.c_str ());
          ASSERT_NE (qa, nullptr);
          ASSERT_NE (qb, nullptr);
          for (auto get : { +[] (const SlimQLinear *q) { return q->weight_q; },
                            +[] (const SlimQLinear *q) { return q->weight_scale; } })
            {
              SlimTensor *ta = get (qa), *tb = get (qb);
              ASSERT_EQ (slim_tensor_get_n_bytes (ta), slim_tensor_get_n_bytes (tb));
              EXPECT_EQ (std::memcmp (slim_tensor_get_data (ta), slim_tensor_get_data (tb),
                                      slim_tensor_get_n_bytes (ta)),
                         0)
                  << m << " rank " << r;
            }
        }
    }
}

// Data-free configurations need no exchange (and take none).
TEST (ObserversExchange, DataFreeNeedsNoExchange)
{
  auto p = make (kA8Token);
  EXPECT_TRUE (slim_processor_is_data_free (p.get ()));
  EXPECT_TRUE (slim_processor_supports_distributed (p.get ()));
}

} // namespace
