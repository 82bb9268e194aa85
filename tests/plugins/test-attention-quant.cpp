// SPDX-License-Identifier: Apache-2.0
//
// test-attention-quant.cpp: the dynamic_cache and fa3_quant processors
// (modelslim-v1-spec.md 2.8, 2.9) through the harness driver on a
// synthetic model (tiny-random-llama-untied: 4 heads, 2 kv heads,
// head_dim 16) and stories260K:
// - the deployed scales are what plain loops over the very q/k/v states
//   the calibration forward saw give (a capturing processor runs first on
//   the same layer inputs): per-channel min/max over all samples for the
//   KV cache, per-head recall windows (the brute-force reference) for FA3;
// - the ascendv1 folder: tensor names, dtypes, shapes, labels, the
//   per-attention quant_type and the global keys, the checker's approval;
// - the eval of the folder rebuilds the records and its hook fake-quantizes
//   q/k/v with the saved values; the logits of the folder differ from the
//   same folder without its attention quantization by a small, nonzero
//   amount;
// - bad configs fail at validate naming the key and the valid choice.
//
// Tolerances: scales are compared with == (the same float32 formulas on
// the same values); the logit difference bound (relative L2 < 10%) is
// loose on purpose: C8 + FA3 int8 on stories260K calibrated on 3 x 12
// synthetic tokens moves the logits of another synthetic sequence by 3.4%
// (measured; each alone 3.4-3.5%: values outside the short calibration's
// ranges clip), and the check is that it moves them at all and not wildly.
#include "../ascendv1-checker.hpp"
#include "qkv-capture-processor.h"
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-fp8.h"
#include "slim-hfmg.h"
#include "slim-ifmr.h"
#include "slim-quant-model.h"
#include "slim-safetensors.h"
}

#include <cfloat>
#include <cmath>
#include <json-glib/json-glib.h>
#include <map>
#include <string>
#include <vector>

namespace
{

const char *const kKv
    = "type: dynamic_cache\n"
      "qconfig: {dtype: int8, scope: per_channel, symmetric: false, method: minmax}\n";
const char *const kFa3 = "type: fa3_quant\n";

std::string
tiny_llama ()
{
  return slim_test_shared_path ("models/synthetic/tiny-random-llama-untied");
}

SlimProcessor *
processor (const std::string &yaml)
{
  GError *error = nullptr;
  SlimProcessor *p = harness_processor (yaml, &error);
  EXPECT_NE (p, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  return p;
}

// The validate error of a config ("" when it validates).
std::string
validate_error (const std::string &yaml)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p (harness_processor (yaml, &error));
  if (!p)
    {
      std::string m = error ? error->message : "?";
      g_clear_error (&error);
      return "parse: " + m;
    }
  if (slim_processor_validate (p.get (), &error))
    return "";
  std::string m = error->message;
  g_clear_error (&error);
  return m;
}

// Runs [capture, processors...] and keeps a copy of every attention record.
struct CaptureRun
{
  GObjectPtr<SlimQkvCaptureProcessor> capture;
  std::map<std::string, SlimQAttention *> records;
  ~CaptureRun ()
  {
    for (auto &kv : records)
      slim_qattention_free (kv.second);
  }
};

void
run (CaptureRun *r, const std::vector<SlimProcessor *> &processors, guint n_samples, gint64 seq_len)
{
  r->capture.reset (
      SLIM_QKV_CAPTURE_PROCESSOR (g_object_new (SLIM_TYPE_QKV_CAPTURE_PROCESSOR, nullptr)));
  std::vector<SlimProcessor *> all = { SLIM_PROCESSOR (r->capture.get ()) };
  all.insert (all.end (), processors.begin (), processors.end ());
  auto on_layer = [&] (SlimModel *, SlimLayer *layer, GError **) -> bool {
    GPtrArray *list = slim_layer_list_qattentions (layer);
    for (guint i = 0; i < list->len; i++)
      {
        auto *rec = static_cast<SlimQAttention *> (g_ptr_array_index (list, i));
        r->records[rec->attn] = slim_qattention_copy (rec);
      }
    g_ptr_array_unref (list);
    return true;
  };
  GError *error = nullptr;
  EXPECT_TRUE (harness_run_model_with (tiny_llama (), all, on_layer, n_samples, seq_len, &error))
      << (error ? error->message : "");
  g_clear_error (&error);
}

std::vector<float>
values (SlimTensor *t)
{
  const float *d = static_cast<const float *> (slim_tensor_get_data (t));
  return std::vector<float> (d, d + slim_tensor_get_n_elements (t));
}

TEST (DynamicCache, ScalesArePerChannelMinMaxOverEverySample)
{
  GObjectPtr<SlimProcessor> kv (processor (kKv));
  CaptureRun r;
  run (&r, { kv.get () }, 3, 10);
  GPtrArray *calls = slim_qkv_capture_processor_get_calls (r.capture.get ());
  ASSERT_EQ (r.records.size (), 2u); // both layers
  SlimQParamsConfig cfg;
  ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, FALSE, 0, nullptr));
  for (auto &kvp : r.records)
    {
      const SlimQAttention *rec = kvp.second;
      ASSERT_TRUE (rec->kv_cache);
      for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
        EXPECT_FALSE (rec->fa[b].enabled);
      const gint64 kv_dim = rec->n_kv_heads * rec->head_dim;
      EXPECT_EQ (kv_dim, 32);
      for (int which = 0; which < 2; which++)
        {
          std::vector<float> mn ((size_t)kv_dim, FLT_MAX), mx ((size_t)kv_dim, -FLT_MAX);
          int n_calls = 0;
          for (guint i = 0; i < calls->len; i++)
            {
              auto *c = static_cast<SlimQkvCapture *> (g_ptr_array_index (calls, i));
              if (kvp.first != c->attn)
                continue;
              n_calls++;
              const float *x = which == 0 ? c->k : c->v;
              for (gint64 t = 0; t < c->n_tokens; t++)
                for (gint64 ch = 0; ch < kv_dim; ch++)
                  {
                    mn[(size_t)ch] = std::min (mn[(size_t)ch], x[t * kv_dim + ch]);
                    mx[(size_t)ch] = std::max (mx[(size_t)ch], x[t * kv_dim + ch]);
                  }
            }
          EXPECT_EQ (n_calls, 3) << kvp.first;
          std::vector<float> scale ((size_t)kv_dim), offset ((size_t)kv_dim);
          for (gint64 ch = 0; ch < kv_dim; ch++)
            slim_qparams_compute (&cfg, mn[(size_t)ch], mx[(size_t)ch], &scale[(size_t)ch],
                                  &offset[(size_t)ch]);
          EXPECT_EQ (values (which == 0 ? rec->k_scale : rec->v_scale), scale) << kvp.first;
          EXPECT_EQ (values (which == 0 ? rec->k_offset : rec->v_offset), offset) << kvp.first;
        }
    }
}

// method ifmr / hfmg: the saved scales are the kernels' searches over the
// very states every calibration sample gave (3 x 10 tokens: below the
// IFMR reservoir bound, so every row is kept); == as above.
void
expect_observer_scales (const std::string &method_yaml, SlimQMethod method, gint64 batch_num)
{
  GObjectPtr<SlimProcessor> kv (
      processor ("type: dynamic_cache\n"
                 "qconfig: {dtype: int8, scope: per_channel, symmetric: false, method: "
                 + method_yaml));
  CaptureRun r;
  run (&r, { kv.get () }, 3, 10);
  GPtrArray *calls = slim_qkv_capture_processor_get_calls (r.capture.get ());
  ASSERT_EQ (r.records.size (), 2u);
  SlimQParamsConfig cfg;
  ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, FALSE, 0, nullptr));
  SlimIfmrConfig ic;
  slim_ifmr_config_init_default (&ic);
  ic.search_step = 0.02; // as the YAML below sets
  for (auto &kvp : r.records)
    {
      const SlimQAttention *rec = kvp.second;
      ASSERT_TRUE (rec->kv_cache);
      const gint64 kv_dim = rec->n_kv_heads * rec->head_dim;
      for (int which = 0; which < 2; which++)
        {
          std::vector<std::vector<float> > cols ((size_t)kv_dim);
          std::vector<SlimHfmgHistogram> hist ((size_t)kv_dim);
          for (auto &h : hist)
            slim_hfmg_histogram_init (&h, 1024);
          gint64 n_calls = 0;
          for (guint i = 0; i < calls->len; i++)
            {
              auto *c = static_cast<SlimQkvCapture *> (g_ptr_array_index (calls, i));
              if (kvp.first != c->attn || (batch_num > 0 && n_calls >= batch_num))
                continue;
              n_calls++;
              const float *x = which == 0 ? c->k : c->v;
              for (gint64 ch = 0; ch < kv_dim; ch++)
                {
                  for (gint64 t = 0; t < c->n_tokens; t++)
                    cols[(size_t)ch].push_back (x[t * kv_dim + ch]);
                  slim_hfmg_histogram_update (&hist[(size_t)ch], x + ch, c->n_tokens, kv_dim);
                }
            }
          std::vector<float> scale ((size_t)kv_dim), offset ((size_t)kv_dim);
          for (gint64 ch = 0; ch < kv_dim; ch++)
            {
              float lo, hi;
              std::vector<float> &col = cols[(size_t)ch];
              if (method == SLIM_QMETHOD_IFMR)
                {
                  std::vector<float> work (2 * col.size ());
                  slim_ifmr_search (&cfg, &ic, col.data (), (gint64)col.size (), work.data (), &lo,
                                    &hi, nullptr);
                }
              else
                slim_hfmg_search (&cfg, &hist[(size_t)ch], &lo, &hi, nullptr);
              slim_qparams_compute (&cfg, lo, hi, &scale[(size_t)ch], &offset[(size_t)ch]);
              slim_hfmg_histogram_clear (&hist[(size_t)ch]);
            }
          EXPECT_EQ (values (which == 0 ? rec->k_scale : rec->v_scale), scale) << kvp.first;
          EXPECT_EQ (values (which == 0 ? rec->k_offset : rec->v_offset), offset) << kvp.first;
        }
    }
}

TEST (DynamicCache, IfmrScalesAreTheSearchOverEverySample)
{
  expect_observer_scales ("ifmr}\nifmr: {search_step: 0.02}\n", SLIM_QMETHOD_IFMR, 0);
}

TEST (DynamicCache, HfmgScalesAreTheSearchOverTheFirstBatchNumSamples)
{
  expect_observer_scales ("hfmg}\nhfmg: {num_of_bins: 1024}\nbatch_num: 2\n", SLIM_QMETHOD_HFMG, 2);
}

// AMCT's override_layers_configs: two entries with disjoint attentions.
TEST (DynamicCache, PerLayerOverridesAreEntriesWithDisjointIncludes)
{
  GObjectPtr<SlimProcessor> a (
      processor ("type: dynamic_cache\n"
                 "qconfig: {dtype: int8, scope: per_channel, symmetric: true, method: hfmg}\n"
                 "exclude: [model.layers.1.self_attn]\n"));
  GObjectPtr<SlimProcessor> b (
      processor ("type: dynamic_cache\n"
                 "qconfig: {dtype: int8, scope: per_channel, symmetric: false, method: ifmr}\n"
                 "ifmr: {search_range_start: 0.9, search_range_end: 1.1, search_step: 0.05}\n"
                 "include: [model.layers.1.self_attn]\n"));
  CaptureRun r;
  run (&r, { a.get (), b.get () }, 2, 8);
  ASSERT_EQ (r.records.size (), 2u);
  EXPECT_TRUE (r.records["model.layers.0.self_attn"]->kv_scheme.symmetric);
  EXPECT_FALSE (r.records["model.layers.1.self_attn"]->kv_scheme.symmetric);
  // the same attention in both is refused
  GObjectPtr<SlimProcessor> c (
      processor ("type: dynamic_cache\n"
                 "qconfig: {dtype: int8, scope: per_channel, symmetric: true, method: ifmr}\n"));
  GObjectPtr<SlimProcessor> d (processor (kKv));
  GError *error = nullptr;
  EXPECT_FALSE (harness_run_model_with (
      tiny_llama (), { c.get (), d.get () },
      [] (SlimModel *, SlimLayer *, GError **) -> bool { return true; }, 1, 4, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("already quantized"), std::string::npos)
      << error->message;
  g_clear_error (&error);
}

std::vector<float> saved (const std::string &dir,
                          const std::string &name,
                          SlimDType *dtype = nullptr,
                          std::vector<gint64> *shape = nullptr);
JsonObject *description (const std::string &dir, JsonParser *parser);
std::string quantize_and_save (const std::string &model,
                               const std::vector<std::string> &attention_yaml);

class Fa3Static : public ::testing::TestWithParam<bool> // fp8_e4m3?
{
};

TEST_P (Fa3Static, ScalesAreRecallWindowsPerHeadAcrossSamples)
{
  const bool fp8 = GetParam ();
  GObjectPtr<SlimProcessor> fa (processor (
      fp8 ? "type: fa3_quant\n"
            "qconfig: {dtype: fp8_e4m3, scope: per_head, symmetric: true, method: minmax}\n"
          : kFa3)); // the default qconfig
  CaptureRun r;
  run (&r, { fa.get () }, 3, 8);
  GPtrArray *calls = slim_qkv_capture_processor_get_calls (r.capture.get ());
  ASSERT_EQ (r.records.size (), 2u);
  SlimQParamsConfig sym;
  ASSERT_TRUE (slim_qparams_config_init (&sym, SLIM_QDTYPE_INT8, TRUE, 0, nullptr));
  for (auto &kvp : r.records)
    {
      const SlimQAttention *rec = kvp.second;
      EXPECT_FALSE (rec->kv_cache);
      for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
        {
          ASSERT_TRUE (rec->fa[b].enabled);
          const gint64 heads = b == SLIM_QATTENTION_Q ? rec->n_heads : rec->n_kv_heads;
          const gint64 d = rec->head_dim;
          std::vector<float> lo ((size_t)heads, FLT_MAX), hi ((size_t)heads, -FLT_MAX);
          for (guint i = 0; i < calls->len; i++)
            {
              auto *c = static_cast<SlimQkvCapture *> (g_ptr_array_index (calls, i));
              if (kvp.first != c->attn)
                continue;
              const float *x = b == 0 ? c->q : b == 1 ? c->k : c->v;
              for (gint64 h = 0; h < heads; h++)
                {
                  // head h's values of this sample: (n_tokens, d) of them
                  std::vector<float> vals;
                  for (gint64 t = 0; t < c->n_tokens; t++)
                    for (gint64 j = 0; j < d; j++)
                      vals.push_back (x[(t * heads + h) * d + j]);
                  float l, u;
                  slim_recall_window_ref (vals.data (), (gint64)vals.size (), 0.9999, &l, &u);
                  lo[(size_t)h] = std::min (lo[(size_t)h], l);
                  hi[(size_t)h] = std::max (hi[(size_t)h], u);
                }
            }
          std::vector<float> scale ((size_t)heads);
          for (gint64 h = 0; h < heads; h++)
            {
              float off;
              if (fp8) // max (|min|, |max|) / 448
                scale[(size_t)h]
                    = std::max (std::max (std::fabs (lo[(size_t)h]), std::fabs (hi[(size_t)h])),
                                1e-12f)
                      / 448.0f;
              else
                slim_qparams_compute (&sym, lo[(size_t)h], hi[(size_t)h], &scale[(size_t)h], &off);
            }
          EXPECT_EQ (rec->fa[b].scheme.dtype, fp8 ? SLIM_QDTYPE_FP8_E4M3 : SLIM_QDTYPE_INT8);
          EXPECT_EQ (values (rec->fa[b].scale), scale) << kvp.first << " branch " << b;
        }
    }
}

INSTANTIATE_TEST_SUITE_P (Dtypes, Fa3Static, ::testing::Values (false, true));

// Dynamic per-token branches: nothing calibrated or saved but the
// quant_type string; the eval applies them per (token, head) row. Only
// dynamic branches: data-free, and no global fa_quant_type (msModelSlim
// sets it when saving static scales).
TEST (Fa3Quant, DynamicBranchesSaveTheTypeAndEvalApplyThem)
{
  const std::string fp8_token
      = "{dtype: fp8_e4m3, scope: per_token, symmetric: true, method: minmax}";
  const std::string fp8_head
      = "{dtype: fp8_e4m3, scope: per_head, symmetric: true, method: minmax}";
  GObjectPtr<SlimProcessor> all_dynamic (
      processor ("type: fa3_quant\nqconfig: " + fp8_token + "\n"));
  EXPECT_TRUE (slim_processor_is_data_free (all_dynamic.get ()));
  GObjectPtr<SlimProcessor> mixed (processor ("type: fa3_quant\ndetails:\n  fa_q: " + fp8_token
                                              + "\n  fa_v: " + fp8_head + "\n"));
  EXPECT_FALSE (slim_processor_is_data_free (mixed.get ()));

  for (int k = 0; k < 2; k++)
    {
      std::string dir = quantize_and_save (
          tiny_llama (), { k == 0 ? "type: fa3_quant\nqconfig: " + fp8_token + "\n"
                                  : "type: fa3_quant\ndetails:\n  fa_q: " + fp8_token
                                        + "\n  fa_v: " + fp8_head + "\n" });
      SlimTestAscendv1Report report = slim_test_ascendv1_check (dir, SlimTestAscendv1Options ());
      EXPECT_TRUE (report.ok ()) << report.summary ();
      JsonParser *parser = json_parser_new ();
      JsonObject *desc = description (dir, parser);
      const std::string attn = "model.layers.0.self_attn";
      EXPECT_STREQ (
          json_object_get_string_member_with_default (desc, (attn + ".quant_type").c_str (), ""),
          k == 0 ? "FP8_DYNAMIC" : "Q_FP8_DYNAMIC_V_FP8");
      EXPECT_FALSE (json_object_has_member (desc, (attn + ".fa_q.scale").c_str ()));
      EXPECT_EQ (json_object_has_member (desc, "fa_quant_type"), k == 1);
      if (k == 1)
        {
          SlimDType dtype;
          std::vector<gint64> shape;
          std::vector<float> off = saved (dir, attn + ".fa_v.offset", &dtype, &shape);
          EXPECT_EQ (dtype, SLIM_DTYPE_F32) << "FP8 offsets are float32 zeros";
          EXPECT_EQ (off, std::vector<float> (2, 0.0f));
        }
      g_object_unref (parser);

      // the eval's hook: q fp8 per (token, head) row of 16 values
      GError *error = nullptr;
      SlimQuantModel *qm = slim_quant_model_load (dir.c_str (), &error);
      ASSERT_NE (qm, nullptr) << error->message;
      SlimForwardHooks hooks;
      slim_quant_model_get_hooks (qm, &hooks);
      ASSERT_NE (hooks.qkv_states, nullptr);
      SlimModelConfig config = {};
      config.n_heads = 4;
      config.n_kv_heads = 2;
      config.head_dim = 16;
      std::vector<float> q (2 * 64), kk (2 * 32, 0.5f), v (2 * 32, 0.25f);
      for (size_t i = 0; i < q.size (); i++)
        q[i] = std::sin (0.37f * (float)i) * (1.0f + (float)(i % 16));
      std::vector<float> q0 = q;
      ASSERT_TRUE (hooks.qkv_states (attn.c_str (), q.data (), kk.data (), v.data (), 2, &config,
                                     hooks.user_data, &error))
          << error->message;
      for (size_t row = 0; row < 8; row++)
        {
          float amax = 0.0f;
          for (size_t j = 0; j < 16; j++)
            amax = std::max (amax, std::fabs (q0[row * 16 + j]));
          float s = amax / 448.0f;
          for (size_t j = 0; j < 16; j++)
            {
              float x = std::min (std::max (q0[row * 16 + j] / s, -448.0f), 448.0f);
              EXPECT_EQ (q[row * 16 + j], slim_fp8_e4m3_round_ref (x) * s) << row << "," << j;
            }
        }
      EXPECT_NE (q, q0);
      slim_quant_model_free (qm);
    }
}

TEST (Fa3Quant, IncludeAndDetailsSelectAttentionsAndBranches)
{
  GObjectPtr<SlimProcessor> fa (
      processor ("type: fa3_quant\n"
                 "details:\n"
                 "  fa_k: {dtype: int8, scope: per_head, symmetric: true, method: minmax}\n"
                 "include: ['model.layers.1.*']\n"));
  CaptureRun r;
  run (&r, { fa.get () }, 2, 6);
  ASSERT_EQ (r.records.size (), 1u);
  const SlimQAttention *rec = r.records.begin ()->second;
  EXPECT_STREQ (rec->attn, "model.layers.1.self_attn");
  EXPECT_FALSE (rec->fa[SLIM_QATTENTION_Q].enabled);
  EXPECT_TRUE (rec->fa[SLIM_QATTENTION_K].enabled);
  EXPECT_FALSE (rec->fa[SLIM_QATTENTION_V].enabled);
}

// Reads one tensor of a folder as float32 values.
std::vector<float>
saved (const std::string &dir,
       const std::string &name,
       SlimDType *dtype,
       std::vector<gint64> *shape)
{
  GError *error = nullptr;
  GObjectPtr<SlimSafetensors> st (slim_safetensors_open (dir.c_str (), &error));
  EXPECT_TRUE (st) << (error ? error->message : "");
  g_clear_error (&error);
  if (!st)
    return {};
  SlimTensor *t = slim_safetensors_get_tensor (st.get (), name.c_str (), &error);
  EXPECT_NE (t, nullptr) << name << ": " << (error ? error->message : "");
  g_clear_error (&error);
  if (t == nullptr)
    return {};
  if (dtype != nullptr)
    *dtype = slim_tensor_get_dtype (t);
  if (shape != nullptr)
    {
      shape->clear ();
      for (guint i = 0; i < slim_tensor_get_n_dims (t); i++)
        shape->push_back (slim_tensor_get_dim (t, i));
    }
  SlimTensor *f = slim_tensor_to_f32 (t, nullptr);
  std::vector<float> v = values (f);
  slim_tensor_unref (f);
  slim_tensor_unref (t);
  return v;
}

JsonObject *
description (const std::string &dir, JsonParser *parser)
{
  GError *error = nullptr;
  std::string path = dir + "/quant_model_description.json";
  EXPECT_TRUE (json_parser_load_from_file (parser, path.c_str (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  return json_node_get_object (json_parser_get_root (parser));
}

// Quantizes a model with linear_quant W8A8 + the given attention processors
// and saves it (3 samples of 12 tokens).
std::string
quantize_and_save (const std::string &model, const std::vector<std::string> &attention_yaml)
{
  std::vector<GObjectPtr<SlimProcessor> > owned;
  owned.emplace_back (processor (harness_linear_quant_yaml (
      "{dtype: int8, scope: per_tensor, symmetric: false, method: minmax}",
      "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}")));
  for (const std::string &y : attention_yaml)
    owned.emplace_back (processor (y));
  std::vector<SlimProcessor *> ps;
  for (auto &p : owned)
    ps.push_back (p.get ());
  GError *error = nullptr;
  GObjectPtr<SlimSaver> saver (harness_saver ("type: ascendv1_saver\npart_file_size: 0\n", &error));
  EXPECT_TRUE (saver) << (error ? error->message : "");
  g_clear_error (&error);
  std::string out = slim_test_make_tmpdir ();
  EXPECT_TRUE (harness_run_model (model, ps, { saver.get () }, out, 3, 12, &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  return out;
}

TEST (AttentionSave, C8AndFaQuantTensorsLabelsAndGlobalKeys)
{
  std::string dir = quantize_and_save (
      tiny_llama (),
      { kKv, "type: fa3_quant\ndetails:\n"
             "  fa_q: {dtype: int8, scope: per_head, symmetric: true, method: minmax}\n"
             "  fa_k: {dtype: int8, scope: per_head, symmetric: true, method: minmax}\n" });
  SlimTestAscendv1Options options;
  options.expected_model_quant_type = "W8A8";
  SlimTestAscendv1Report report = slim_test_ascendv1_check (dir, options);
  EXPECT_TRUE (report.ok ()) << report.summary ();

  JsonParser *parser = json_parser_new ();
  JsonObject *desc = description (dir, parser);
  for (int layer = 0; layer < 2; layer++)
    {
      std::string attn = "model.layers." + std::to_string (layer) + ".self_attn";
      for (const char *t : { ".k_proj.kv_cache_scale", ".k_proj.kv_cache_offset",
                             ".v_proj.kv_cache_scale", ".v_proj.kv_cache_offset" })
        {
          EXPECT_STREQ (json_object_get_string_member_with_default (desc, (attn + t).c_str (), ""),
                        "C8")
              << attn + t;
          SlimDType dtype;
          std::vector<gint64> shape;
          std::vector<float> v = saved (dir, attn + t, &dtype, &shape);
          EXPECT_EQ (shape, std::vector<gint64> ({ 32 })) << attn + t;
          EXPECT_EQ (dtype, SLIM_DTYPE_F32) << "the k_proj weight's dtype in the model files";
        }
      for (const char *branch : { "fa_q", "fa_k" })
        {
          gint64 heads = std::string (branch) == "fa_q" ? 4 : 2;
          SlimDType dtype;
          std::vector<gint64> shape;
          saved (dir, attn + "." + branch + ".scale", &dtype, &shape);
          EXPECT_EQ (dtype, SLIM_DTYPE_F32);
          EXPECT_EQ (shape, std::vector<gint64> ({ heads, 1 }));
          std::vector<float> off = saved (dir, attn + "." + branch + ".offset", &dtype, &shape);
          EXPECT_EQ (dtype, SLIM_DTYPE_I8);
          EXPECT_EQ (off, std::vector<float> ((size_t)heads, 0.0f));
          EXPECT_STREQ (json_object_get_string_member_with_default (
                            desc, (attn + "." + branch + ".scale").c_str (), ""),
                        "FAQuant");
        }
      EXPECT_FALSE (json_object_has_member (desc, (attn + ".fa_v.scale").c_str ()));
      // msModelSlim's merge rule: Q and K alike -> "QK_INT8"
      EXPECT_STREQ (
          json_object_get_string_member_with_default (desc, (attn + ".quant_type").c_str (), ""),
          "QK_INT8");
    }
  EXPECT_STREQ (json_object_get_string_member_with_default (desc, "kv_cache_type", ""), "C8");
  EXPECT_STREQ (json_object_get_string_member_with_default (desc, "kv_quant_type", ""), "C8");
  EXPECT_STREQ (json_object_get_string_member_with_default (desc, "fa_quant_type", ""), "FAKQuant");
  // the global keys come after every tensor key, before version
  GList *members = json_object_get_members (desc);
  std::vector<std::string> keys;
  for (GList *l = members; l != nullptr; l = l->next)
    keys.emplace_back (static_cast<const char *> (l->data));
  g_list_free (members);
  auto pos = [&] (const std::string &k) {
    return std::find (keys.begin (), keys.end (), k) - keys.begin ();
  };
  EXPECT_LT (pos ("lm_head.weight"), pos ("kv_cache_type"));
  EXPECT_LT (pos ("kv_cache_type"), pos ("version"));
  g_object_unref (parser);
}

// Full-sequence logits (n_tokens, vocab) of a model folder with hooks.
std::vector<float>
logits (const std::string &dir, const SlimForwardHooks *hooks)
{
  GError *error = nullptr;
  SlimModel *model = slim_model_open (dir.c_str (), &error);
  EXPECT_NE (model, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  if (model == nullptr)
    return {};
  std::vector<gint32> ids;
  for (int t = 0; t < 10; t++) // within the calibrated positions (12)
    ids.push_back ((t * 37 + 11) % 500);
  gint64 len = (gint64)ids.size ();
  SlimBatch batch = { 1, &len };
  SlimTensor *y
      = slim_model_forward_logits_full (model, ids.data (), &batch, hooks, nullptr, &error);
  EXPECT_NE (y, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  std::vector<float> out = y != nullptr ? values (y) : std::vector<float> ();
  if (y != nullptr)
    slim_tensor_unref (y);
  g_object_unref (model);
  return out;
}

TEST (AttentionSave, IfmrAndHfmgSaveC8Tensors)
{
  for (const char *method : { "ifmr", "hfmg" })
    {
      std::string dir = quantize_and_save (
          tiny_llama (), { std::string ("type: dynamic_cache\n"
                                        "qconfig: {dtype: int8, scope: per_channel, symmetric: "
                                        "false, method: ")
                           + method + "}\n" });
      SlimTestAscendv1Options options;
      options.expected_model_quant_type = "W8A8";
      SlimTestAscendv1Report report = slim_test_ascendv1_check (dir, options);
      EXPECT_TRUE (report.ok ()) << method << report.summary ();
      JsonParser *parser = json_parser_new ();
      JsonObject *desc = description (dir, parser);
      for (int layer = 0; layer < 2; layer++)
        for (const char *t : { ".k_proj.kv_cache_scale", ".k_proj.kv_cache_offset",
                               ".v_proj.kv_cache_scale", ".v_proj.kv_cache_offset" })
          {
            std::string name = "model.layers." + std::to_string (layer) + ".self_attn" + t;
            EXPECT_STREQ (json_object_get_string_member_with_default (desc, name.c_str (), ""),
                          "C8")
                << method << name;
            std::vector<gint64> shape;
            std::vector<float> v = saved (dir, name, nullptr, &shape);
            EXPECT_EQ (shape, std::vector<gint64> ({ 32 })) << method << name;
            if (std::string (t).find ("scale") != std::string::npos)
              for (float x : v)
                EXPECT_GT (x, 0.0f) << method << name;
          }
      EXPECT_STREQ (json_object_get_string_member_with_default (desc, "kv_cache_type", ""), "C8");
      g_object_unref (parser);
    }
}

TEST (AttentionEval, SavedFolderAppliesTheAttentionQuantization)
{
  // stories260K: 8 heads, 4 kv heads, head_dim 8
  std::string dir = quantize_and_save (slim_test_shared_path ("models/stories260K"), { kKv, kFa3 });
  GError *error = nullptr;
  SlimQuantModel *qm = slim_quant_model_load (dir.c_str (), &error);
  ASSERT_NE (qm, nullptr) << error->message;
  SlimForwardHooks hooks;
  slim_quant_model_get_hooks (qm, &hooks);
  ASSERT_NE (hooks.qkv_states, nullptr);

  // the hook on known states: k per channel (saved C8), then per head (fa_k)
  const std::string attn = "model.layers.1.self_attn";
  std::vector<float> ks = saved (dir, attn + ".k_proj.kv_cache_scale");
  std::vector<float> ko = saved (dir, attn + ".k_proj.kv_cache_offset");
  std::vector<float> kh = saved (dir, attn + ".fa_k.scale");
  std::vector<float> qh = saved (dir, attn + ".fa_q.scale");
  ASSERT_EQ (ks.size (), 32u);
  ASSERT_EQ (kh.size (), 4u);
  SlimModelConfig config = {};
  config.n_heads = 8;
  config.n_kv_heads = 4;
  config.head_dim = 8;
  const gint64 n_tokens = 3;
  std::vector<float> q ((size_t)(n_tokens * 64)), k ((size_t)(n_tokens * 32)),
      v ((size_t)(n_tokens * 32));
  for (size_t i = 0; i < q.size (); i++)
    q[i] = std::sin (0.7f * (float)i) * 2.0f;
  for (size_t i = 0; i < k.size (); i++)
    {
      k[i] = std::cos (0.3f * (float)i) * 3.0f;
      v[i] = std::sin (0.11f * (float)i);
    }
  std::vector<float> q0 = q, k0 = k;
  ASSERT_TRUE (hooks.qkv_states (attn.c_str (), q.data (), k.data (), v.data (), n_tokens, &config,
                                 hooks.user_data, &error))
      << error->message;
  SlimQParamsConfig asym, sym;
  ASSERT_TRUE (slim_qparams_config_init (&asym, SLIM_QDTYPE_INT8, FALSE, 0, nullptr));
  ASSERT_TRUE (slim_qparams_config_init (&sym, SLIM_QDTYPE_INT8, TRUE, 0, nullptr));
  const float zero = 0.0f;
  for (gint64 t = 0; t < n_tokens; t++)
    {
      for (gint64 c = 0; c < 32; c++)
        {
          float a, b;
          size_t i = (size_t)(t * 32 + c);
          slim_fake_quantize_rows_ref (&asym, &k0[i], 1, 1, &ks[(size_t)c], &ko[(size_t)c], 1, &a);
          slim_fake_quantize_rows_ref (&sym, &a, 1, 1, &kh[(size_t)(c / 8)], &zero, 1, &b);
          EXPECT_EQ (k[i], b) << t << "," << c;
        }
      for (gint64 c = 0; c < 64; c++)
        {
          float a;
          size_t i = (size_t)(t * 64 + c);
          slim_fake_quantize_rows_ref (&sym, &q0[i], 1, 1, &qh[(size_t)(c / 8)], &zero, 1, &a);
          EXPECT_EQ (q[i], a) << t << "," << c;
        }
    }

  // whole-model logits with and without the attention quantization
  std::vector<float> with = logits (slim_quant_model_get_float_dir (qm), &hooks);
  SlimForwardHooks linear_only = hooks;
  linear_only.qkv_states = nullptr;
  std::vector<float> without = logits (slim_quant_model_get_float_dir (qm), &linear_only);
  ASSERT_EQ (with.size (), without.size ());
  ASSERT_FALSE (with.empty ());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < with.size (); i++)
    {
      diff += ((double)with[i] - without[i]) * ((double)with[i] - without[i]);
      ref += (double)without[i] * without[i];
    }
  double rel = std::sqrt (diff / ref);
  EXPECT_GT (rel, 0.0);
  EXPECT_LT (rel, 0.1);
  slim_quant_model_free (qm);
}

TEST (AttentionSave, MindieRefusesAttentionQuantization)
{
  GObjectPtr<SlimProcessor> kv (processor (kKv));
  GError *error = nullptr;
  GObjectPtr<SlimSaver> saver (harness_saver ("type: mindie_format_saver\n", &error));
  ASSERT_TRUE (saver) << error->message;
  std::string out = slim_test_make_tmpdir ();
  EXPECT_FALSE (
      harness_run_model (tiny_llama (), { kv.get () }, { saver.get () }, out, 1, 6, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("use ascendv1_saver"), std::string::npos)
      << error->message;
  g_clear_error (&error);
}

TEST (AttentionConfig, BadConfigsFailAtValidate)
{
  EXPECT_EQ (validate_error (kKv), "");
  EXPECT_EQ (validate_error (kFa3), "");
  std::string e = validate_error (
      "type: dynamic_cache\n"
      "qconfig: {dtype: int8, scope: per_tensor, symmetric: true, method: minmax}\n");
  EXPECT_NE (e.find ("per_tensor"), std::string::npos) << e;
  EXPECT_NE (e.find ("{dtype: int8, scope: per_channel, method: minmax}"), std::string::npos) << e;
  e = validate_error (
      "type: dynamic_cache\n"
      "qconfig: {dtype: int4, scope: per_channel, symmetric: true, method: minmax}\n");
  EXPECT_NE (e.find ("scope: per_channel"), std::string::npos) << e;
  e = validate_error ("type: dynamic_cache\n");
  EXPECT_NE (e.find ("qconfig"), std::string::npos) << e;
  // ifmr / hfmg fields
  const std::string ifmr
      = "type: dynamic_cache\n"
        "qconfig: {dtype: int8, scope: per_channel, symmetric: true, method: ifmr}\n";
  const std::string hfmg
      = "type: dynamic_cache\n"
        "qconfig: {dtype: int8, scope: per_channel, symmetric: true, method: hfmg}\n";
  EXPECT_EQ (validate_error (ifmr), "");
  EXPECT_EQ (validate_error (hfmg + "hfmg: {num_of_bins: 8192}\nbatch_num: 4\n"), "");
  const std::pair<std::string, std::string> bad[] = {
    { ifmr + "ifmr: {search_range_start: 1.5, search_range_end: 1.2}\n",
      "ifmr.search_range_start" },
    { ifmr + "ifmr: {search_step: 0}\n", "ifmr.search_step" },
    { ifmr + "ifmr: {max_percentile: 0.5}\n", "ifmr.max_percentile" },
    { ifmr + "ifmr: {min_percentile: 0.2}\n", "ifmr.min_percentile" },
    { hfmg + "hfmg: {num_of_bins: 1000}\n", "hfmg.num_of_bins" },
    { hfmg + "ifmr: {search_step: 0.1}\n", "'ifmr' applies to qconfig.method ifmr" },
    { kKv + std::string ("batch_num: 3\n"), "'batch_num'" },
  };
  for (const auto &b : bad)
    {
      e = validate_error (b.first);
      EXPECT_NE (e.find (b.second), std::string::npos) << b.first << " -> " << e;
      EXPECT_EQ (e.find ("parse:"), std::string::npos) << e;
    }
  // linear_quant does not take the KV-cache observers
  for (const char *m : { "ifmr", "hfmg" })
    {
      e = validate_error (harness_linear_quant_yaml (
          std::string ("{dtype: int8, scope: per_tensor, symmetric: false, method: ") + m + "}",
          "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}"));
      EXPECT_NE (e.find (m), std::string::npos) << e;
      EXPECT_NE (e, "") << m;
    }
  e = validate_error ("type: fa3_quant\n"
                      "qconfig: {dtype: int8, scope: per_head, symmetric: true, method: minmax}\n"
                      "details:\n"
                      "  fa_q: {dtype: int8, scope: per_head, symmetric: true, method: minmax}\n");
  EXPECT_NE (e.find ("either 'qconfig'"), std::string::npos) << e;
  EXPECT_NE (e.find ("not both"), std::string::npos) << e;
  e = validate_error (
      "type: fa3_quant\n"
      "qconfig: {dtype: int8, scope: per_channel, symmetric: true, method: minmax}\n");
  EXPECT_NE (e.find ("scope: per_head"), std::string::npos) << e;
  e = validate_error (
      "type: fa3_quant\n"
      "details:\n"
      "  fa_v: {dtype: mxfp4, scope: per_block, symmetric: true, method: minmax}\n");
  EXPECT_NE (e.find ("details.fa_v"), std::string::npos) << e;
  EXPECT_NE (e.find ("not an FA3 quantizer"), std::string::npos) << e;
  EXPECT_EQ (validate_error ("type: fa3_quant\n"
                             "qconfig: {dtype: fp8_e4m3, scope: per_token, symmetric: true, "
                             "method: minmax}\n"),
             "");
  e = validate_error ("type: fa3_quant\ndetails: {}\n");
  EXPECT_NE (e.find ("at least one of fa_q, fa_k, fa_v"), std::string::npos) << e;
  // an unknown branch is a config error of the details mapping
  e = validate_error ("type: fa3_quant\ndetails: {fa_p: {dtype: int8, scope: per_head, "
                      "symmetric: true, method: minmax}}\n");
  EXPECT_NE (e.find ("parse:"), std::string::npos) << e;
}

} // namespace
