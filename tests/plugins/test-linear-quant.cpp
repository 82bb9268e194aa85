// SPDX-License-Identifier: Apache-2.0
//
// test-linear-quant.cpp: the linear_quant processor (modelslim-v1-spec.md
// 2.1) and the deployed record (slim-qlinear.h):
// - qparams on hand-computed examples (weights per channel with half-to-even
//   ties, static activations accumulated over two calls, mean aggregation);
// - the calibration forward fake-quantizes with the running parameters;
// - every legal act/weight pair gives its label, record shapes and
//   data-free flag; illegal pairs, unregistered / unimplemented quantizers
//   and bad ext values fail validate (no model involved);
// - include/exclude selection, the no-match warning, first-processor-wins;
// - per-token rows, deployed hooks, pseudo-layers untouched, errors;
// - a real stories260K layer through the model forward.
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-nf4.h"
#include "slim-qparams.h"
}

#include <cmath>
#include <cstring>
#include <map>

namespace
{

const char *const kW8Static = "{dtype: int8, scope: per_tensor, symmetric: false, method: minmax}";
const char *const kW8StaticSym
    = "{dtype: int8, scope: per_tensor, symmetric: true, method: minmax}";
const char *const kA8Token = "{dtype: int8, scope: per_token, symmetric: true, method: minmax}";
const char *const kA4Token = "{dtype: int4, scope: per_token, symmetric: true, method: minmax}";
const char *const kA8Mix = "{dtype: int8, scope: pd_mix, symmetric: false, method: minmax}";
const char *const kW8Chan = "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}";
const char *const kW4Chan = "{dtype: int4, scope: per_channel, symmetric: true, method: minmax}";

std::string
group_weight (const char *dtype, bool sym, int group_size = 32, const char *method = "minmax")
{
  return std::string ("{dtype: ") + dtype
         + ", scope: per_group, symmetric: " + (sym ? "true" : "false") + ", method: " + method
         + ", ext: {group_size: " + std::to_string (group_size) + "}}";
}

const char *const kW8ChanHqq = "{dtype: int8, scope: per_channel, symmetric: false, method: hqq}";

const std::string kQ = "model.layers.0.self_attn.q_proj";
const std::string kK = "model.layers.0.self_attn.k_proj";
const std::string kUp = "model.layers.0.mlp.up_proj";
const std::string kDown = "model.layers.0.mlp.down_proj";

GObjectPtr<SlimProcessor>
make (const std::string &yaml)
{
  GError *error = nullptr;
  SlimProcessor *p = harness_processor (yaml, &error);
  EXPECT_NE (p, nullptr) << (error ? error->message : "") << "\n" << yaml;
  g_clear_error (&error);
  return GObjectPtr<SlimProcessor> (p);
}

// Builds, validates and runs one layer: preprocess, `calls` forwards of
// every linear (unless data-free), postprocess.
void
run_layer (SlimProcessor *p, SlimLayer *layer, int calls = 2, int64_t n_tokens = 3)
{
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (p, &error)) << error->message;
  ASSERT_TRUE (slim_processor_preprocess (p, layer, &error)) << error->message;
  if (!slim_processor_is_data_free (p))
    {
      SlimForwardHooks hooks;
      slim_processor_get_forward_hooks (p, layer, &hooks);
      for (int c = 0; c < calls; c++)
        for (const char *const *n = slim_layer_get_linear_names (layer); *n != nullptr; n++)
          {
            SlimTensor *w = slim_layer_get_tensor (layer, (std::string (*n) + ".weight").c_str ());
            int64_t n_in = slim_tensor_get_dim (w, 1);
            std::vector<float> x = harness_pattern ((size_t)(n_tokens * n_in), 7 + c, 1.0f + c);
            std::vector<float> y;
            ASSERT_TRUE (harness_linear_forward (layer, *n, x, n_tokens, &hooks, &y, &error))
                << error->message;
          }
    }
  ASSERT_TRUE (slim_processor_postprocess (p, layer, &error)) << error->message;
}

std::vector<SynthLinear>
standard_linears ()
{
  return {
    { kQ, 8, 64, true }, { kK, 4, 64, false }, { kUp, 16, 64, false }, { kDown, 4, 64, false }
  };
}

SlimTensor *
set_weight (SlimLayer *layer,
            const std::string &module,
            int64_t n_out,
            int64_t n_in,
            const std::vector<float> &values)
{
  SlimTensor *t = slim_tensor_new_2d ((module + ".weight").c_str (), SLIM_DTYPE_F32, n_out, n_in);
  memcpy (slim_tensor_get_data_mut (t), values.data (), values.size () * sizeof (float));
  slim_layer_set_tensor (layer, t);
  slim_tensor_unref (t);
  return slim_layer_get_tensor (layer, (module + ".weight").c_str ());
}

} // namespace

// Weight per channel, symmetric int8 (spec 2.1): scale = max(|min|, max) / 127,
// q = round half to even (w / scale).  Row 0 has max |w| = 127 * 2^-7, so
// scale = 2^-7 exactly and w = 1.5 and 2.5 scale units are exact ties:
// round(1.5) = 2, round(2.5) = 2 (half to even, as torch.round).
TEST (LinearQuant, WeightPerChannelHandComputed)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 2, 4, false } }, 1));
  set_weight (layer.get (), kQ, 2, 4,
              { 0.9921875f, 0.01171875f, 0.01953125f, -0.5f, -0.25f, 0.0f, 0.1f, 0.0625f });
  auto p = make (harness_linear_quant_yaml ("", kW8Chan));
  run_layer (p.get (), layer.get ());

  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kQ.c_str ());
  ASSERT_NE (q, nullptr);
  EXPECT_STREQ (q->label, "W8A16");
  const float *scale = (const float *)slim_tensor_get_data (q->weight_scale);
  const float *offset = (const float *)slim_tensor_get_data (q->weight_offset);
  const gint8 *wq = (const gint8 *)slim_tensor_get_data (q->weight_q);
  EXPECT_EQ (scale[0], 0.0078125f);
  EXPECT_EQ (scale[1], 0.25f / 127.0f);
  EXPECT_EQ (offset[0], 0.0f);
  EXPECT_EQ (offset[1], 0.0f);
  const gint8 row0[] = { 127, 2, 2, -64 };
  for (int i = 0; i < 4; i++)
    EXPECT_EQ (wq[i], row0[i]) << "row 0 col " << i;
  EXPECT_EQ (wq[4], -127);
  EXPECT_EQ (wq[5], 0);
  EXPECT_EQ (wq[6], (gint8)std::nearbyint (0.1f / (0.25f / 127.0f))); // 50.8 -> 51
  EXPECT_EQ (wq[6], 51);
  // the layer's weight is now the dequantized value (q - 0) * scale
  const float *w = (const float *)slim_tensor_get_data (
      slim_layer_get_tensor (layer.get (), (kQ + ".weight").c_str ()));
  for (int i = 0; i < 8; i++)
    EXPECT_EQ (w[i], (float)wq[i] * scale[i / 4]) << i;
  EXPECT_EQ (slim_tensor_get_dim (q->weight_scale, 0), 2);
  EXPECT_EQ (slim_tensor_get_dim (q->weight_scale, 1), 1);
}

// Static per-tensor asymmetric activations: min/max accumulated over all
// calls; scale = max/255 - min/255, offset = round(-min/scale) - 128.
// Call 1 spans [-1, 2], call 2 [-3, 0.5]: final range [-3, 2],
// scale = 5/255, offset = round(153) - 128 = 25.  Each call is
// fake-quantized with the range seen so far (msModelSlim's
// ActPerTensorMinmax.forward), so call 1 uses [-1, 2] alone.
TEST (LinearQuant, StaticActivationsAccumulateAcrossCalls)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 2, 4, false } }, 1));
  auto p = make (harness_linear_quant_yaml (kW8Static, kW8Chan));
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (p.get (), &error));
  EXPECT_FALSE (slim_processor_is_data_free (p.get ()));
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error)) << error->message;
  SlimForwardHooks hooks;
  slim_processor_get_forward_hooks (p.get (), layer.get (), &hooks);
  ASSERT_NE (hooks.linear_input, nullptr);

  std::vector<float> x1 = { -1.0f, 0.3f, 2.0f, 0.7f };
  std::vector<float> seen = x1;
  ASSERT_TRUE (hooks.linear_input (kQ.c_str (), seen.data (), 1, 4, hooks.user_data, &error));
  SlimQParamsConfig cfg;
  ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, FALSE, 0, nullptr));
  float s1, o1;
  slim_qparams_compute (&cfg, -1.0f, 2.0f, &s1, &o1);
  EXPECT_EQ (o1, -43.0f); // round(1 / (3/255)) - 128 = 85 - 128
  std::vector<float> want (4);
  slim_fake_quantize_rows_ref (&cfg, x1.data (), 1, 4, &s1, &o1, 1, want.data ());
  for (int i = 0; i < 4; i++)
    EXPECT_EQ (seen[i], want[i]) << i;

  std::vector<float> x2 = { 0.5f, -3.0f, 0.0f, 0.25f };
  ASSERT_TRUE (hooks.linear_input (kQ.c_str (), x2.data (), 1, 4, hooks.user_data, &error));
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error)) << error->message;

  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kQ.c_str ());
  ASSERT_NE (q, nullptr);
  EXPECT_STREQ (q->label, "W8A8");
  EXPECT_EQ (q->input_scale, 2.0f / 255.0f - (-3.0f) / 255.0f);
  EXPECT_EQ (q->input_offset, 25.0f);
  EXPECT_EQ (q->act.scope, SLIM_QSCOPE_PER_TENSOR);
}

// aggregation_type: mean = running mean of each call's min and max:
// calls [-1, 2] and [-3, 0.5] give min -2, max 1.25.
TEST (LinearQuant, MeanAggregation)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 2, 4, false } }, 1));
  auto p = make (harness_linear_quant_yaml (
      "{dtype: int8, scope: per_tensor, symmetric: false, method: minmax, ext: {aggregation_type: "
      "mean}}",
      kW8Chan));
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error)) << error->message;
  SlimForwardHooks hooks;
  slim_processor_get_forward_hooks (p.get (), layer.get (), &hooks);
  std::vector<float> x1 = { -1.0f, 0.3f, 2.0f, 0.7f }, x2 = { 0.5f, -3.0f, 0.0f, 0.25f };
  ASSERT_TRUE (hooks.linear_input (kQ.c_str (), x1.data (), 1, 4, hooks.user_data, &error));
  ASSERT_TRUE (hooks.linear_input (kQ.c_str (), x2.data (), 1, 4, hooks.user_data, &error));
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error));
  SlimQParamsConfig cfg;
  ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, FALSE, 0, nullptr));
  float s, o;
  slim_qparams_compute (&cfg, -2.0f, 1.25f, &s, &o);
  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kQ.c_str ());
  ASSERT_NE (q, nullptr);
  EXPECT_EQ (q->input_scale, s);
  EXPECT_EQ (q->input_offset, o);
}

// per_token: one scale per token row, in calibration as in evaluation
// (msModelSlim's calibration observes the whole tensor; we do not).  A row
// of small values keeps its resolution next to a row of large ones:
// error <= its own scale / 2 = max|row| / 127 / 2.
TEST (LinearQuant, PerTokenRowsHaveTheirOwnScale)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 2, 4, false } }, 1));
  auto p = make (harness_linear_quant_yaml (kA8Token, kW8Chan));
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));
  SlimForwardHooks hooks;
  slim_processor_get_forward_hooks (p.get (), layer.get (), &hooks);
  ASSERT_NE (hooks.linear_input, nullptr);
  std::vector<float> x = { 0.011f, -0.007f, 0.003f, 0.0101f, 150.0f, -90.0f, 33.0f, 1.0f };
  std::vector<float> orig = x;
  ASSERT_TRUE (hooks.linear_input (kQ.c_str (), x.data (), 2, 4, hooks.user_data, &error));
  for (int r = 0; r < 2; r++)
    {
      float amax = 0.0f;
      for (int i = 0; i < 4; i++)
        amax = std::max (amax, std::fabs (orig[r * 4 + i]));
      float half_step = amax / 127.0f / 2.0f;
      for (int i = 0; i < 4; i++)
        EXPECT_LE (std::fabs (x[r * 4 + i] - orig[r * 4 + i]), half_step * 1.0001f)
            << "row " << r << " col " << i;
    }
  EXPECT_NE (x[0], 0.0f); // a per-tensor scale (150/127) would flush row 0 to zero
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error));
  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kQ.c_str ());
  ASSERT_NE (q, nullptr);
  EXPECT_STREQ (q->label, "W8A8_DYNAMIC");
  // the deployed record does the same
  std::vector<float> again = orig;
  slim_qlinear_apply_act (q, again.data (), 2, 4);
  EXPECT_EQ (again, x);
}

struct Combo
{
  const char *name;
  std::string act;
  std::string weight;
  const char *label;
  bool data_free;
  int64_t scale_cols; // 1 per channel, 64 / 32 per group
};

class LinearQuantCombos : public ::testing::TestWithParam<Combo>
{
};

// Every legal pair (spec 2.1 table, minmax, plus the W4A16 extension):
// label, data-free flag, record shapes, weight values in range, and the
// layer's weight equal to the dequantized record.
TEST_P (LinearQuantCombos, LabelRecordAndDequantizedWeight)
{
  const Combo &c = GetParam ();
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, standard_linears (), 3));
  auto p = make (harness_linear_quant_yaml (c.act, c.weight));
  ASSERT_TRUE (p);
  EXPECT_EQ ((bool)slim_processor_is_data_free (p.get ()), c.data_free);
  run_layer (p.get (), layer.get ());
  g_autoptr (GPtrArray) records = slim_layer_list_qlinears (layer.get ());
  ASSERT_EQ (records->len, 4u);
  const bool int4 = c.weight.find ("int4") != std::string::npos;
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = (const SlimQLinear *)g_ptr_array_index (records, i);
      EXPECT_STREQ (q->label, c.label) << q->module;
      EXPECT_EQ (q->n_in, 64);
      EXPECT_EQ (slim_tensor_get_dim (q->weight_scale, 0), q->n_out);
      EXPECT_EQ (slim_tensor_get_dim (q->weight_scale, 1), c.scale_cols);
      EXPECT_EQ (q->group_size, c.scale_cols == 1 ? 0 : 64 / c.scale_cols);
      const gint8 *wq = (const gint8 *)slim_tensor_get_data (q->weight_q);
      const float *s = (const float *)slim_tensor_get_data (q->weight_scale);
      const float *o = (const float *)slim_tensor_get_data (q->weight_offset);
      const float *w = (const float *)slim_tensor_get_data (
          slim_layer_get_tensor (layer.get (), (std::string (q->module) + ".weight").c_str ()));
      int64_t gs = 64 / c.scale_cols;
      for (int64_t k = 0; k < q->n_out * q->n_in; k++)
        {
          EXPECT_GE (wq[k], int4 ? -8 : -128);
          EXPECT_LE (wq[k], int4 ? 7 : 127);
          int64_t param = (k / q->n_in) * c.scale_cols + (k % q->n_in) / gs;
          ASSERT_EQ (w[k], ((float)wq[k] - o[param]) * s[param]) << q->module << " " << k;
        }
    }
}

INSTANTIATE_TEST_SUITE_P (
    AllLegalPairs,
    LinearQuantCombos,
    ::testing::Values (
        Combo{ "W8A8_asym", kW8Static, kW8Chan, "W8A8", false, 1 },
        Combo{ "W8A8_sym", kW8StaticSym, kW8Chan, "W8A8", false, 1 },
        Combo{ "W8A8_DYNAMIC", kA8Token, kW8Chan, "W8A8_DYNAMIC", true, 1 },
        Combo{ "W8A8_DYNAMIC_group_sym", kA8Token, group_weight ("int8", true), "W8A8_DYNAMIC",
               true, 2 },
        Combo{ "W8A8_DYNAMIC_group_asym", kA8Token, group_weight ("int8", false), "W8A8_DYNAMIC",
               true, 2 },
        Combo{ "W8A16", "", kW8Chan, "W8A16", true, 1 },
        Combo{ "W8A16_group_sym", "", group_weight ("int8", true), "W8A16", true, 2 },
        Combo{ "W8A16_group_asym", "", group_weight ("int8", false, 16), "W8A16", true, 4 },
        Combo{ "W4A16_group_asym", "", group_weight ("int4", false), "W4A16", true, 2 },
        Combo{ "W4A16_group_sym", "", group_weight ("int4", true), "W4A16", true, 2 },
        Combo{ "W4A8_DYNAMIC", kA8Token, kW4Chan, "W4A8_DYNAMIC", true, 1 },
        Combo{ "W4A4_DYNAMIC", kA4Token, kW4Chan, "W4A4_DYNAMIC", true, 1 },
        Combo{ "W4A4_DYNAMIC_group", kA4Token, group_weight ("int4", false), "W4A4_DYNAMIC", true,
               2 },
        Combo{ "W8A8_MIX", kA8Mix, kW8Chan, "W8A8_MIX", false, 1 },
        // hqq (slimflow's extension from QuantConfig): float offsets
        Combo{ "W4A16_group_hqq", "", group_weight ("int4", false, 32, "hqq"), "W4A16", true, 2 },
        Combo{ "W8A16_group_hqq", "", group_weight ("int8", false, 16, "hqq"), "W8A16", true, 4 },
        Combo{ "W8A16_channel_hqq", "", kW8ChanHqq, "W8A16", true, 1 }),
    [] (const ::testing::TestParamInfo<Combo> &info) { return std::string (info.param.name); });

struct Bad
{
  const char *name;
  std::string act;
  std::string weight;
  GQuark (*domain) ();
  int code;
  std::vector<std::string> fragments;
};

class LinearQuantInvalid : public ::testing::TestWithParam<Bad>
{
};

// Rejected by validate, before any layer or weight exists.
TEST_P (LinearQuantInvalid, ValidateFails)
{
  const Bad &b = GetParam ();
  auto p = make (harness_linear_quant_yaml (b.act, b.weight));
  ASSERT_TRUE (p);
  GError *error = nullptr;
  EXPECT_FALSE (slim_processor_validate (p.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, b.domain (), b.code)) << error->message;
  for (const std::string &f : b.fragments)
    EXPECT_NE (std::string (error->message).find (f), std::string::npos)
        << "missing \"" << f << "\" in: " << error->message;
  g_clear_error (&error);
  EXPECT_FALSE (slim_processor_is_data_free (p.get ()));
}

INSTANTIATE_TEST_SUITE_P (
    Illegal,
    LinearQuantInvalid,
    ::testing::Values (
        // per_token asymmetric has no IR (spec 6.3 item 3)
        Bad{ "PerTokenAsym",
             "{dtype: int8, scope: per_token, symmetric: false, method: minmax}",
             kW8Chan,
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "act int8 per_token asym with weight int8 per_channel sym",
               "not a legal combination", "W8A8_DYNAMIC", "W8A8_MIX", "W4A16" } },
        Bad{ "StaticW4A8",
             kW8Static,
             kW4Chan,
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "act int8 per_tensor asym with weight int4 per_channel sym", "W4A8_DYNAMIC" } },
        Bad{ "W4A16PerChannel",
             "",
             kW4Chan,
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "act float per_tensor sym with weight int4 per_channel sym" } },
        Bad{ "Int4ActInt8Weight",
             kA4Token,
             kW8Chan,
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "act int4 per_token sym with weight int8 per_channel" } },
        // no minmax quantizer for asymmetric per-channel weights
        Bad{ "AsymPerChannelMinmax",
             "",
             "{dtype: int8, scope: per_channel, symmetric: false, method: minmax}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "qconfig.weight", "no weight quantizer for int8 per_channel asym" } },
        Bad{ "FloatActWithMinmax",
             "{dtype: float, scope: per_tensor, symmetric: true, method: minmax}",
             kW8Chan,
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "qconfig.act" } },
        // histogram is registered for int8 per_tensor activations only
        Bad{ "HistogramPerToken",
             "{dtype: int8, scope: per_token, symmetric: true, method: histogram}",
             kW8Chan,
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "qconfig.act", "no act quantizer for int8 per_token sym with method histogram",
               "method histogram supports: int8 per_tensor sym, int8 per_tensor asym" } },
        Bad{ "GptqPercdampZero",
             "",
             "{dtype: int8, scope: per_channel, symmetric: true, method: gptq, ext: {percdamp: "
             "0}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "qconfig.weight.ext.percdamp must be > 0", "got 0" } },
        Bad{ "GptqMaxBound",
             "",
             "{dtype: int8, scope: per_channel, symmetric: true, method: gptq, ext: {max_bound: "
             "119}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "max_bound", "gptq" } },
        // msModelSlim registers ssz for int8/int4 per_channel sym only
        Bad{ "SszAsym",
             kA8Token,
             "{dtype: int8, scope: per_channel, symmetric: false, method: ssz}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "qconfig.weight", "int8 per_channel asym", "method ssz supports" } },
        Bad{ "SszPerGroup",
             kA8Token,
             "{dtype: int4, scope: per_group, symmetric: true, method: ssz, ext: {group_size: "
             "32}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "qconfig.weight", "int4 per_group sym", "method ssz supports" } },
        Bad{ "SszMaxBound",
             kA8Token,
             "{dtype: int8, scope: per_channel, symmetric: true, method: ssz, ext: {max_bound: "
             "119}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "max_bound", "ssz" } },
        Bad{ "SszAxes",
             kA8Token,
             "{dtype: int4, scope: per_channel, symmetric: true, method: ssz, ext: {axes: -1}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "qconfig.weight.ext.axes", "MX per_block", "remove the key" } },
        Bad{ "ActAxes",
             "{dtype: int8, scope: per_token, symmetric: true, method: minmax, ext: {axes: -1}}",
             "{dtype: int8, scope: per_channel, symmetric: true, method: ssz}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "qconfig.act.ext.axes" } },
        // hqq solves for an asymmetric zero point and uses the whole code range
        Bad{ "HqqSym",
             "",
             group_weight ("int4", true, 32, "hqq"),
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "qconfig.weight", "method hqq has no quantizer for int4 per_group sym",
               "symmetric: false" } },
        Bad{ "HqqMaxBound",
             "",
             "{dtype: int8, scope: per_channel, symmetric: false, method: hqq, ext: {max_bound: "
             "119}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "max_bound", "hqq" } },
        Bad{ "HqqWithStaticAct",
             kW8Static,
             kW8ChanHqq,
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "act int8 per_tensor asym with weight int8 per_channel asym" } },
        // nf is the NF4 code book: int4 per_group symmetric, weight-only
        Bad{ "NfAsym",
             "",
             group_weight ("int4", false, 32, "nf"),
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "qconfig.weight", "method nf has no quantizer for int4 per_group asym",
               "symmetric: true" } },
        Bad{ "NfPerChannel",
             "",
             "{dtype: int4, scope: per_channel, symmetric: true, method: nf}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "method nf has no quantizer for int4 per_channel sym" } },
        Bad{ "NfWithAct",
             kA8Token,
             group_weight ("int4", true, 32, "nf"),
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "method nf is weight-only" } },
        Bad{ "NfMaxBound",
             "",
             "{dtype: int4, scope: per_group, symmetric: true, method: nf, ext: {group_size: 32, "
             "max_bound: 7}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "max_bound", "method nf" } },
        // sigma clipping: minmax integer weights, k in [3, 4]
        Bad{ "SigmaOutOfRange",
             "",
             "{dtype: int8, scope: per_channel, symmetric: true, method: minmax, ext: "
             "{sigma_factor: 2.5}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "sigma_factor: 2.5", "[3, 4]" } },
        Bad{ "SigmaWithHqq",
             "",
             "{dtype: int8, scope: per_channel, symmetric: false, method: hqq, ext: "
             "{sigma_factor: 3}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_UNSUPPORTED,
             { "sigma_factor: 3", "minmax" } },
        Bad{ "GroupWithoutSize",
             "",
             "{dtype: int4, scope: per_group, symmetric: false, method: minmax}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_MISSING_KEY,
             { "group_size" } },
        Bad{ "MaxBoundTooLarge",
             kA8Token,
             "{dtype: int8, scope: per_channel, symmetric: true, method: minmax, ext: {max_bound: "
             "200}}",
             slim_config_error_quark,
             SLIM_CONFIG_ERROR_BAD_VALUE,
             { "max_bound" } }),
    [] (const ::testing::TestParamInfo<Bad> &info) { return std::string (info.param.name); });

// Config-level errors the loader reports (missing weight, unknown ext key).
TEST (LinearQuant, LoaderRejectsMissingWeightAndUnknownExtKey)
{
  GError *error = nullptr;
  EXPECT_EQ (harness_processor (
                 "type: linear_quant\nqconfig:\n  act: " + std::string (kA8Token) + "\n", &error),
             nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("weight"), std::string::npos) << error->message;
  g_clear_error (&error);
  EXPECT_EQ (harness_processor (harness_linear_quant_yaml (
                                    "", "{dtype: int8, scope: per_channel, symmetric: true, "
                                        "method: minmax, ext: {group_szie: 3}}"),
                                &error),
             nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("group_szie"), std::string::npos) << error->message;
  g_clear_error (&error);
  // a group_size on a per-channel weight is ignored, as in msModelSlim
  auto p = make (harness_linear_quant_yaml (
      "", "{dtype: int8, scope: per_channel, symmetric: true, method: minmax, ext: {group_size: "
          "64}}"));
  EXPECT_TRUE (slim_processor_validate (p.get (), nullptr));
}

// include/exclude: exclude wins; `*` crosses dots; braces; a pattern that
// matched nothing is reported after the run.
TEST (LinearQuant, IncludeExcludeAndNoMatchWarning)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, standard_linears (), 3));
  auto p = make (harness_linear_quant_yaml (
      "", kW8Chan,
      "include: [\"*self_attn.{q,k}_proj\", \"*mlp*\", \"*nothing_here*\"]\n"
      "exclude: [\"*down_proj\", \"*never*\"]\n"));
  run_layer (p.get (), layer.get ());
  EXPECT_NE (slim_layer_get_qlinear (layer.get (), kQ.c_str ()), nullptr);
  EXPECT_NE (slim_layer_get_qlinear (layer.get (), kK.c_str ()), nullptr);
  EXPECT_NE (slim_layer_get_qlinear (layer.get (), kUp.c_str ()), nullptr);
  EXPECT_EQ (slim_layer_get_qlinear (layer.get (), kDown.c_str ()), nullptr);
  // the excluded linear keeps its float weight
  std::vector<float> orig = harness_pattern (4 * 64, 3 + 11 * 3, 0.05f);
  const float *down = (const float *)slim_tensor_get_data (
      slim_layer_get_tensor (layer.get (), (kDown + ".weight").c_str ()));
  EXPECT_EQ (memcmp (down, orig.data (), orig.size () * sizeof (float)), 0);
  {
    ScopedExpectLog include_warning (G_LOG_LEVEL_WARNING,
                                     "include patterns matched no module, please check that this "
                                     "is expected: '*nothing_here*'");
    ScopedExpectLog exclude_warning (G_LOG_LEVEL_WARNING,
                                     "exclude patterns matched no module, please check that this "
                                     "is expected: '*never*'");
    GError *error = nullptr;
    EXPECT_TRUE (slim_processor_post_run (p.get (), &error));
    EXPECT_EQ (include_warning.hits (), 1);
    EXPECT_EQ (exclude_warning.hits (), 1);
  }
}

// Resume: the state saved after a layer carries which patterns matched,
// so a new processor restored from it warns about exactly the patterns
// the uninterrupted run warns about; bad states are refused.
TEST (LinearQuant, SavedStateCarriesThePatternMatches)
{
  const std::string yaml
      = harness_linear_quant_yaml ("", kW8Chan,
                                   "include: [\"*q_proj\", \"*up_proj\", \"*nothing_here*\"]\n"
                                   "exclude: [\"*never*\", \"*up_proj\"]\n");
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, standard_linears (), 3));
  auto first = make (yaml);
  ASSERT_TRUE (slim_processor_can_resume (first.get ()));
  run_layer (first.get (), layer.get ());
  GError *error = nullptr;
  GBytes *state = slim_processor_save_state (first.get (), &error);
  ASSERT_NE (state, nullptr) << error->message;

  auto second = make (yaml);
  ASSERT_TRUE (slim_processor_validate (second.get (), &error));
  ASSERT_TRUE (slim_processor_restore_state (second.get (), state, &error))
      << (error ? error->message : "");
  {
    // "*q_proj" and "*up_proj" matched (and "*up_proj" excluded): only the
    // never-matching ones are reported
    ScopedExpectLog include_warning (G_LOG_LEVEL_WARNING, "expected: '*nothing_here*'");
    ScopedExpectLog exclude_warning (G_LOG_LEVEL_WARNING, "expected: '*never*'");
    EXPECT_TRUE (slim_processor_post_run (second.get (), &error));
    EXPECT_EQ (include_warning.hits (), 1);
    EXPECT_EQ (exclude_warning.hits (), 1);
  }
  // a fresh processor with no restored state would warn about all three
  // include patterns; a state for other patterns is refused
  auto other = make (harness_linear_quant_yaml ("", kW8Chan, "include: [\"*\"]\n"));
  ASSERT_TRUE (slim_processor_validate (other.get (), &error));
  EXPECT_FALSE (slim_processor_restore_state (other.get (), state, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
  GBytes *junk = g_bytes_new_static ("\x01\x02\x03", 3);
  auto third = make (yaml);
  EXPECT_FALSE (slim_processor_restore_state (third.get (), junk, &error));
  EXPECT_TRUE (error != nullptr);
  g_clear_error (&error);
  g_bytes_unref (junk);
  g_bytes_unref (state);
}

// A linear quantized by an earlier processor is left alone (msModelSlim
// replaced it, so it is no nn.Linear any more), and pseudo-layers
// (embeddings, lm_head) are never touched.
TEST (LinearQuant, FirstProcessorWinsAndPseudoLayersStayFloat)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, standard_linears (), 3));
  auto first = make (harness_linear_quant_yaml ("", kW8Chan, "include: [\"*q_proj\"]\n"));
  auto second = make (harness_linear_quant_yaml (kA8Token, kW8Chan));
  run_layer (first.get (), layer.get ());
  run_layer (second.get (), layer.get ());
  EXPECT_STREQ (slim_layer_get_qlinear (layer.get (), kQ.c_str ())->label, "W8A16");
  EXPECT_STREQ (slim_layer_get_qlinear (layer.get (), kK.c_str ())->label, "W8A8_DYNAMIC");

  GObjectPtr<SlimLayer> head (slim_layer_new (SLIM_LAYER_INDEX_HEAD, ""));
  SlimTensor *lm = slim_tensor_new_2d ("lm_head.weight", SLIM_DTYPE_F32, 8, 64);
  slim_layer_set_tensor (head.get (), lm);
  slim_tensor_unref (lm);
  slim_layer_add_linear_name (head.get (), "lm_head");
  auto all = make (harness_linear_quant_yaml ("", kW8Chan));
  run_layer (all.get (), head.get ());
  g_autoptr (GPtrArray) records = slim_layer_list_qlinears (head.get ());
  EXPECT_EQ (records->len, 0u);
}

// Errors name what is wrong: non-finite weights, a static quantizer that
// saw no data, a per_group size that does not divide the input, an odd
// number of rows for W4A8 packing.
TEST (LinearQuant, ErrorsNameTheModule)
{
  GError *error = nullptr;
  {
    GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 2, 4, false } }, 1));
    set_weight (layer.get (), kQ, 2, 4, { 1, 2, NAN, 4, 5, 6, 7, 8 });
    auto p = make (harness_linear_quant_yaml ("", kW8Chan));
    EXPECT_FALSE (slim_processor_preprocess (p.get (), layer.get (), &error));
    ASSERT_NE (error, nullptr);
    EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
    EXPECT_NE (std::string (error->message).find (kQ + ".weight"), std::string::npos);
    g_clear_error (&error);
  }
  {
    GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 2, 4, false } }, 1));
    auto p = make (harness_linear_quant_yaml (kW8Static, kW8Chan));
    ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));
    EXPECT_FALSE (slim_processor_postprocess (p.get (), layer.get (), &error));
    ASSERT_NE (error, nullptr);
    EXPECT_NE (std::string (error->message).find (kQ), std::string::npos) << error->message;
    EXPECT_NE (std::string (error->message).find ("no calibration"), std::string::npos);
    g_clear_error (&error);
    EXPECT_EQ (slim_layer_get_qlinear (layer.get (), kQ.c_str ()), nullptr);
  }
  {
    GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 2, 48, false } }, 1));
    auto p = make (harness_linear_quant_yaml ("", group_weight ("int4", false, 32)));
    EXPECT_FALSE (slim_processor_preprocess (p.get (), layer.get (), &error));
    ASSERT_NE (error, nullptr);
    EXPECT_NE (std::string (error->message).find (kQ), std::string::npos) << error->message;
    g_clear_error (&error);
  }
  {
    GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 3, 32, false } }, 1));
    auto p = make (harness_linear_quant_yaml (kA8Token, kW4Chan));
    EXPECT_FALSE (slim_processor_preprocess (p.get (), layer.get (), &error));
    ASSERT_NE (error, nullptr);
    EXPECT_NE (std::string (error->message).find ("W4A8_DYNAMIC"), std::string::npos)
        << error->message;
    g_clear_error (&error);
  }
}

// The deployed hooks apply the saved static parameters to later forwards;
// pd_mix deploys as per-token (prefill) while saving a static range.
TEST (LinearQuant, DeployedHooksApplyTheRecord)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kQ, 2, 4, false } }, 1));
  SlimQLinear *q = slim_qlinear_new (kQ.c_str (), "W8A8");
  q->act = SlimQScheme{ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TENSOR, FALSE };
  q->input_scale = 0.5f;
  q->input_offset = 3.0f;
  q->n_out = 2;
  q->n_in = 4;
  slim_layer_set_qlinear (layer.get (), q);
  SlimForwardHooks hooks;
  slim_qlinear_get_deployed_hooks (layer.get (), &hooks);
  // q = clamp(round(x / 0.5 + 3), -128, 127); x^ = (q - 3) * 0.5
  std::vector<float> x = { 0.26f, -0.74f, 100.0f, -100.0f };
  GError *error = nullptr;
  ASSERT_TRUE (hooks.linear_input (kQ.c_str (), x.data (), 1, 4, hooks.user_data, &error));
  EXPECT_EQ (x[0], 0.5f);   // round(3.52) = 4 -> 0.5
  EXPECT_EQ (x[1], -0.5f);  // round(1.52) = 2 -> -0.5
  EXPECT_EQ (x[2], 62.0f);  // clamp(203) = 127 -> 62
  EXPECT_EQ (x[3], -65.5f); // clamp(-197) = -128 -> -65.5
  // a module without a record is untouched; a size mismatch is an error
  std::vector<float> other = { 1.234f };
  ASSERT_TRUE (
      hooks.linear_input ("model.layers.0.other", other.data (), 1, 1, hooks.user_data, &error));
  EXPECT_EQ (other[0], 1.234f);
  std::vector<float> wrong (5, 1.0f);
  EXPECT_FALSE (hooks.linear_input (kQ.c_str (), wrong.data (), 1, 5, hooks.user_data, &error));
  g_clear_error (&error);

  // replacing a record keeps one record per module, in its first position
  SlimQLinear *k = slim_qlinear_new (kK.c_str (), "W8A16");
  slim_layer_set_qlinear (layer.get (), k);
  slim_layer_set_qlinear (layer.get (), slim_qlinear_new (kQ.c_str (), "W8A8_DYNAMIC"));
  g_autoptr (GPtrArray) list = slim_layer_list_qlinears (layer.get ());
  ASSERT_EQ (list->len, 2u);
  EXPECT_STREQ (((SlimQLinear *)list->pdata[0])->label, "W8A8_DYNAMIC");
  EXPECT_STREQ (((SlimQLinear *)list->pdata[1])->module, kK.c_str ());

  // pd_mix
  GObjectPtr<SlimLayer> mix_layer (harness_synthetic_layer (0, { { kQ, 2, 4, false } }, 1));
  auto p = make (harness_linear_quant_yaml (kA8Mix, kW8Chan));
  ASSERT_TRUE (slim_processor_preprocess (p.get (), mix_layer.get (), &error));
  SlimForwardHooks own;
  slim_processor_get_forward_hooks (p.get (), mix_layer.get (), &own);
  std::vector<float> x1 = { -1.0f, 0.01f, 2.0f, 0.5f, 0.001f, 0.002f, -0.003f, 0.0f };
  std::vector<float> orig = x1;
  ASSERT_TRUE (own.linear_input (kQ.c_str (), x1.data (), 2, 4, own.user_data, &error));
  // per-token symmetric: row 1 keeps resolution
  EXPECT_NEAR (x1[6], orig[6], 0.003f / 127.0f);
  ASSERT_TRUE (slim_processor_postprocess (p.get (), mix_layer.get (), &error));
  const SlimQLinear *mix = slim_layer_get_qlinear (mix_layer.get (), kQ.c_str ());
  ASSERT_NE (mix, nullptr);
  SlimQParamsConfig cfg;
  ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, FALSE, 0, nullptr));
  float s, o;
  slim_qparams_compute (&cfg, -1.0f, 2.0f, &s, &o);
  EXPECT_EQ (mix->input_scale, s);
  EXPECT_EQ (mix->input_offset, o);
}

// A real decoder layer (stories260K layer 0) through the model forward:
// static W8A8 calibrated on embedded tokens; the deployed layer's output
// stays close to the float layer's.  Bound: relative L2 error < 5% (int8
// per-tensor activations and per-channel weights typically give ~1%; the
// bound is loose to stay robust, tight enough to catch a wrong scale or
// offset, which gives errors of order 100%).
TEST (LinearQuant, RealLayerForwardStaysClose)
{
  GError *error = nullptr;
  GObjectPtr<SlimModel> model (
      slim_model_open (slim_test_shared_path ("models/stories260K").c_str (), &error));
  ASSERT_TRUE (model) << error->message;
  GObjectPtr<SlimLayer> embed (slim_model_load_embed (model.get (), &error));
  std::vector<gint32> ids = { 1, 45, 290, 11, 7, 400, 33, 98, 2, 17, 256, 300 };
  TensorPtr hidden (
      slim_model_embed (model.get (), embed.get (), ids.data (), (gint64)ids.size (), &error));
  ASSERT_TRUE (hidden);
  gint64 len = (gint64)ids.size ();
  SlimBatch batch = { 1, &len };
  GObjectPtr<SlimLayer> layer (slim_model_load_layer (model.get (), 0, &error));
  TensorPtr ref (slim_model_forward_layer (model.get (), layer.get (), hidden.get (), &batch,
                                           nullptr, &error));
  ASSERT_TRUE (ref);

  auto p = make (harness_linear_quant_yaml (kW8Static, kW8Chan, "exclude: [\"*down_proj*\"]\n"));
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error)) << error->message;
  SlimForwardHooks hooks;
  slim_processor_get_forward_hooks (p.get (), layer.get (), &hooks);
  TensorPtr calib (
      slim_model_forward_layer (model.get (), layer.get (), hidden.get (), &batch, &hooks, &error));
  ASSERT_TRUE (calib) << error->message;
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error)) << error->message;
  g_autoptr (GPtrArray) records = slim_layer_list_qlinears (layer.get ());
  EXPECT_EQ (records->len, 6u); // q k v o gate up
  SlimForwardHooks deployed;
  slim_qlinear_get_deployed_hooks (layer.get (), &deployed);
  TensorPtr out (slim_model_forward_layer (model.get (), layer.get (), hidden.get (), &batch,
                                           &deployed, &error));
  ASSERT_TRUE (out) << error->message;
  const float *a = (const float *)slim_tensor_get_data (ref.get ());
  const float *b = (const float *)slim_tensor_get_data (out.get ());
  double num = 0, den = 0;
  for (gint64 i = 0; i < slim_tensor_get_n_elements (ref.get ()); i++)
    {
      num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
      den += (double)a[i] * a[i];
    }
  double rel = std::sqrt (num / den);
  RecordProperty ("relative_l2_error", std::to_string (rel));
  EXPECT_LT (rel, 0.05);
  EXPECT_GT (rel, 0.0); // quantization changed something
  // one sample: the calibration forward (running range = final range)
  // equals the deployed forward
  EXPECT_EQ (memcmp (slim_tensor_get_data (calib.get ()), b, slim_tensor_get_n_bytes (out.get ())),
             0);
}

// hqq's purpose: on the same layer, its per-group reconstruction error
// (mean |W - W^| over every selected weight) is below minmax RTN's with the
// same group size and bits.  A strict inequality: the solver starts from
// the minmax zero point and stops as soon as the error stops decreasing.
TEST (LinearQuant, HqqReconstructsBetterThanMinmax)
{
  double err[2] = { 0.0, 0.0 };
  for (int k = 0; k < 2; k++)
    {
      GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, standard_linears (), 5));
      std::map<std::string, std::vector<float> > orig;
      for (const SynthLinear &l : standard_linears ())
        {
          SlimTensor *w = slim_layer_get_tensor (layer.get (), (l.name + ".weight").c_str ());
          const float *d = (const float *)slim_tensor_get_data (w);
          orig[l.name].assign (d, d + slim_tensor_get_n_elements (w));
        }
      auto p = make (harness_linear_quant_yaml (
          "", group_weight ("int4", false, 32, k == 0 ? "minmax" : "hqq")));
      ASSERT_TRUE (p);
      run_layer (p.get (), layer.get ());
      size_t n = 0;
      for (const auto &kv : orig)
        {
          const float *d = (const float *)slim_tensor_get_data (
              slim_layer_get_tensor (layer.get (), (kv.first + ".weight").c_str ()));
          for (size_t i = 0; i < kv.second.size (); i++, n++)
            err[k] += std::fabs (d[i] - kv.second[i]);
        }
      err[k] /= (double)n;
    }
  std::printf ("mean |W - W^| int4 g32: minmax %.6g, hqq %.6g\n", err[0], err[1]);
  EXPECT_LT (err[1], err[0]);
}

// method nf: label NF4, the record's codes (U8 0..15) and absmax (one per
// group) are slim_nf4_fake_quantize's of the original weight, and the
// layer's weight is code * absmax exactly (no calibration data needed).
TEST (LinearQuant, NfRecordIsTheNf4CodeBookOfTheWeight)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, standard_linears (), 7));
  std::map<std::string, std::vector<float> > orig;
  for (const SynthLinear &l : standard_linears ())
    {
      SlimTensor *w = slim_layer_get_tensor (layer.get (), (l.name + ".weight").c_str ());
      const float *d = (const float *)slim_tensor_get_data (w);
      orig[l.name].assign (d, d + slim_tensor_get_n_elements (w));
    }
  auto p = make (harness_linear_quant_yaml ("", group_weight ("int4", true, 32, "nf")));
  ASSERT_TRUE (p);
  EXPECT_TRUE (slim_processor_is_data_free (p.get ()));
  run_layer (p.get (), layer.get ());
  g_autoptr (GPtrArray) records = slim_layer_list_qlinears (layer.get ());
  ASSERT_EQ (records->len, 4u);
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = (const SlimQLinear *)g_ptr_array_index (records, i);
      EXPECT_STREQ (q->label, "NF4");
      EXPECT_EQ (q->group_size, 32);
      EXPECT_EQ (q->weight_offset, nullptr);
      ASSERT_EQ (slim_tensor_get_dtype (q->weight_q), SLIM_DTYPE_U8);
      const std::vector<float> &w0 = orig[q->module];
      int64_t n = q->n_out * q->n_in, n_groups = q->n_in / 32;
      std::vector<float> amax (q->n_out * n_groups), fq (n);
      std::vector<guint8> codes (n);
      slim_nf4_fake_quantize (w0.data (), q->n_out, q->n_in, 32, amax.data (), codes.data (),
                              fq.data ());
      EXPECT_EQ (memcmp (slim_tensor_get_data (q->weight_q), codes.data (), n), 0) << q->module;
      EXPECT_EQ (memcmp (slim_tensor_get_data (q->weight_scale), amax.data (),
                         amax.size () * sizeof (float)),
                 0)
          << q->module;
      const float *w = (const float *)slim_tensor_get_data (
          slim_layer_get_tensor (layer.get (), (std::string (q->module) + ".weight").c_str ()));
      EXPECT_EQ (memcmp (w, fq.data (), n * sizeof (float)), 0) << q->module;
    }
}

// ext.sigma_factor: each channel's (scale, offset) is that of [max (min,
// mean - k sd), min (max, mean + k sd)] (sd unbiased, in double): computed
// here independently; elements beyond saturate to the grid's ends.  A
// planted outlier must shrink its channel's scale versus plain minmax.
TEST (LinearQuant, SigmaClipsEachChannelToMeanPlusMinusKStd)
{
  const double k = 3.0;
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, standard_linears (), 11));
  SlimTensor *wt = slim_layer_get_tensor (layer.get (), (kQ + ".weight").c_str ());
  float *wd = (float *)slim_tensor_get_data_mut (wt);
  wd[5] = 40.0f; // row 0: an outlier far beyond 3 sd of a 64-wide row
  std::map<std::string, std::vector<float> > orig;
  for (const SynthLinear &l : standard_linears ())
    {
      SlimTensor *w = slim_layer_get_tensor (layer.get (), (l.name + ".weight").c_str ());
      const float *d = (const float *)slim_tensor_get_data (w);
      orig[l.name].assign (d, d + slim_tensor_get_n_elements (w));
    }
  auto p = make (harness_linear_quant_yaml (
      "", "{dtype: int8, scope: per_channel, symmetric: true, method: minmax, ext: "
          "{sigma_factor: 3}}"));
  ASSERT_TRUE (p);
  run_layer (p.get (), layer.get ());
  g_autoptr (GPtrArray) records = slim_layer_list_qlinears (layer.get ());
  ASSERT_EQ (records->len, 4u);
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = (const SlimQLinear *)g_ptr_array_index (records, i);
      const std::vector<float> &w0 = orig[q->module];
      const float *s = (const float *)slim_tensor_get_data (q->weight_scale);
      const gint8 *wq = (const gint8 *)slim_tensor_get_data (q->weight_q);
      for (int64_t r = 0; r < q->n_out; r++)
        {
          const float *row = w0.data () + r * q->n_in;
          double sum = 0, ss = 0;
          float mn = row[0], mx = row[0];
          for (int64_t j = 0; j < q->n_in; j++)
            {
              sum += row[j];
              mn = std::fmin (mn, row[j]);
              mx = std::fmax (mx, row[j]);
            }
          double mean = sum / q->n_in;
          for (int64_t j = 0; j < q->n_in; j++)
            ss += (row[j] - mean) * (row[j] - mean);
          double sd = std::sqrt (ss / (q->n_in - 1));
          float lo = (float)std::fmax ((double)mn, mean - k * sd);
          float hi = (float)std::fmin ((double)mx, mean + k * sd);
          SlimQParamsConfig cfg;
          ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, TRUE, 0, nullptr));
          float es, eo;
          slim_qparams_compute (&cfg, lo, hi, &es, &eo);
          ASSERT_EQ (s[r], es) << q->module << " row " << r;
          if (q->module == kQ && r == 0)
            {
              float plain_s, plain_o;
              slim_qparams_compute (&cfg, mn, mx, &plain_s, &plain_o);
              EXPECT_LT (s[r], 0.5f * plain_s); // the outlier no longer sets the range
              EXPECT_EQ (wq[5], 127);           // and saturates
            }
        }
    }
}

// quantize_lm_head: the head pseudo-layer's lm_head is selected like a
// decoder linear (exclude still wins), weight-only data-free schemes only;
// the layer's weight becomes the dequantized record.
TEST (LinearQuant, QuantizeLmHeadSelectsTheHeadLinear)
{
  auto head_layer = [] () {
    SlimLayer *head = slim_layer_new (SLIM_LAYER_INDEX_HEAD, "");
    SlimTensor *lm = slim_tensor_new_2d ("lm_head.weight", SLIM_DTYPE_F32, 8, 64);
    std::vector<float> v = harness_pattern (8 * 64, 3, 0.5f);
    memcpy (slim_tensor_get_data_mut (lm), v.data (), v.size () * sizeof (float));
    slim_layer_set_tensor (head, lm);
    slim_tensor_unref (lm);
    slim_layer_add_linear_name (head, "lm_head");
    return head;
  };
  {
    GObjectPtr<SlimLayer> head (head_layer ());
    auto p = make (harness_linear_quant_yaml ("", kW8Chan, "quantize_lm_head: true\n"));
    ASSERT_TRUE (p);
    run_layer (p.get (), head.get ());
    const SlimQLinear *q = slim_layer_get_qlinear (head.get (), "lm_head");
    ASSERT_NE (q, nullptr);
    EXPECT_STREQ (q->label, "W8A16");
    const gint8 *wq = (const gint8 *)slim_tensor_get_data (q->weight_q);
    const float *s = (const float *)slim_tensor_get_data (q->weight_scale);
    const float *o = (const float *)slim_tensor_get_data (q->weight_offset);
    const float *w = (const float *)slim_tensor_get_data (
        slim_layer_get_tensor (head.get (), "lm_head.weight"));
    for (int64_t k = 0; k < 8 * 64; k++)
      ASSERT_EQ (w[k], ((float)wq[k] - o[k / 64]) * s[k / 64]) << k;
  }
  {
    GObjectPtr<SlimLayer> head (head_layer ());
    auto p = make (
        harness_linear_quant_yaml ("", kW8Chan, "quantize_lm_head: true\nexclude: [lm_head]\n"));
    run_layer (p.get (), head.get ());
    EXPECT_EQ (slim_layer_get_qlinear (head.get (), "lm_head"), nullptr);
  }
  {
    // activations need a calibration forward, which the head never gets
    GError *error = nullptr;
    auto p = make (harness_linear_quant_yaml (kA8Token, kW8Chan, "quantize_lm_head: true\n"));
    ASSERT_TRUE (p);
    EXPECT_FALSE (slim_processor_validate (p.get (), &error));
    ASSERT_NE (error, nullptr);
    EXPECT_NE (std::string (error->message).find ("quantize_lm_head: true needs a weight-only"),
               std::string::npos)
        << error->message;
    g_clear_error (&error);
  }
}
