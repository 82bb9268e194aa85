// SPDX-License-Identifier: Apache-2.0
//
// test-linear-quant-gptq.cpp: linear_quant's `method: gptq` weights and
// `method: histogram` activations, and the `pdmix` processor
// (modelslim-v1-spec.md 2.10, 2.12, 2.13):
// - gptq through the processor equals slim_gptq_quantize fed the inputs
//   the linears read (captured after the activation fake-quant), bit for
//   bit, for int8/int4, per_channel/per_group, sym/asym, with and without
//   static activations;
// - linears reading the same input share one Hessian: same bytes as
//   unshared, fewer accumulations and factorisations (the debug line);
//   a later mismatch is an error; act_order changes codes, not the format;
// - no calibration row / an overflowing Hessian fail naming the module;
// - histogram activations equal SlimHistogramObserver on the same inputs;
// - pdmix equals linear_quant with the pd_mix qconfig byte for byte, in
//   records and in a saved stories260K folder.
#include "quant-harness.hpp"
#include "slim-test.h"

#include <cstring>
#include <map>
#include <random>

namespace
{

const std::string kQ = "model.layers.0.self_attn.q_proj";
const std::string kK = "model.layers.0.self_attn.k_proj";
const std::string kV = "model.layers.0.self_attn.v_proj";
const std::string kO = "model.layers.0.self_attn.o_proj";
const std::string kGate = "model.layers.0.mlp.gate_proj";
const std::string kUp = "model.layers.0.mlp.up_proj";
const std::string kDown = "model.layers.0.mlp.down_proj";

const char *const kA8Static = "{dtype: int8, scope: per_tensor, symmetric: false, method: minmax}";
const char *const kA8Mix = "{dtype: int8, scope: pd_mix, symmetric: false, method: minmax}";
const char *const kW8Chan = "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}";

GObjectPtr<SlimProcessor>
make (const std::string &yaml)
{
  GError *error = nullptr;
  SlimProcessor *p = harness_processor (yaml, &error);
  EXPECT_NE (p, nullptr) << (error ? error->message : "") << "\n" << yaml;
  g_clear_error (&error);
  return GObjectPtr<SlimProcessor> (p);
}

std::vector<float>
normal (size_t n, unsigned seed, float scale = 1.0f)
{
  std::mt19937 gen (seed);
  std::normal_distribution<float> dist (0.0f, scale);
  std::vector<float> v (n);
  for (float &f : v)
    f = dist (gen);
  return v;
}

// An attention + MLP layer: q/k/v read one input, o_proj another, gate/up
// a third, down_proj a fourth (widths 64, 64, 64, 96).
std::vector<SynthLinear>
layer_linears ()
{
  return { { kQ, 16, 64, false },   { kK, 8, 64, false },     { kV, 8, 64, false },
           { kO, 64, 64, false },   { kGate, 96, 64, false }, { kUp, 96, 64, false },
           { kDown, 64, 96, false } };
}

// The input a linear reads in call c: the same for linears of one group.
std::vector<float>
input_of (const std::string &module, int c, int64_t n_tokens, int64_t n_in)
{
  unsigned group = module == kQ || module == kK || module == kV ? 1
                   : module == kO                               ? 2
                   : module == kGate || module == kUp           ? 3
                                                                : 4;
  return normal ((size_t)(n_tokens * n_in), 100 * group + c, 1.0f + 0.25f * c);
}

// Records the input each linear reads (after the processor's hook).
struct Capture
{
  std::map<std::string, std::vector<std::vector<float> > > calls;
};

gboolean
capture_input (const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer data, GError **)
{
  auto *c = static_cast<Capture *> (data);
  c->calls[module].emplace_back (x, x + n_tokens * n_in);
  return TRUE;
}

// preprocess, `calls` calibration forwards of every linear, postprocess;
// captured inputs in *capture.
bool
run_layer (
    SlimProcessor *p,
    SlimLayer *layer,
    int calls,
    int64_t n_tokens,
    Capture *capture,
    GError **error,
    const std::function<std::vector<float> (const std::string &, int, int64_t, int64_t)> &inputs
    = input_of)
{
  if (!slim_processor_validate (p, error) || !slim_processor_preprocess (p, layer, error))
    return false;
  SlimForwardHooks own = {}, rec = {};
  slim_processor_get_forward_hooks (p, layer, &own);
  rec.linear_input = capture_input;
  rec.user_data = capture;
  HookChain chain;
  harness_chain_hooks (&chain, &own, &rec);
  for (int c = 0; c < calls; c++)
    for (const char *const *n = slim_layer_get_linear_names (layer); *n != nullptr; n++)
      {
        SlimTensor *w = slim_layer_get_tensor (layer, (std::string (*n) + ".weight").c_str ());
        int64_t n_in = slim_tensor_get_dim (w, 1);
        std::vector<float> y;
        if (!harness_linear_forward (layer, *n, inputs (*n, c, n_tokens, n_in), n_tokens,
                                     &chain.hooks, &y, error))
          return false;
      }
  return slim_processor_postprocess (p, layer, error);
}

struct GptqCase
{
  const char *name;
  const char *act; // "" = float
  const char *weight;
  const char *label;
  SlimQDtype dtype;
  SlimQScope scope;
  bool symmetric;
  int64_t group_size;
  bool act_order;
};

class LinearQuantGptq : public ::testing::TestWithParam<GptqCase>
{
};

// The processor's records equal slim_gptq_quantize on a Hessian built from
// the captured inputs (the shared Hessian accumulates the same rows in the
// same order and slim_gptq_quantize_factored is exact against
// slim_gptq_quantize, slim-gptq.h): compared bit for bit.
TEST_P (LinearQuantGptq, EqualsSlimGptqQuantizeOnTheCapturedInputs)
{
  const GptqCase &c = GetParam ();
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 5));
  GObjectPtr<SlimLayer> orig (harness_synthetic_layer (0, layer_linears (), 5));
  auto p = make (harness_linear_quant_yaml (c.act, c.weight));
  ASSERT_TRUE (p);
  EXPECT_FALSE (slim_processor_is_data_free (p.get ()));
  // dp_layer_wise replays GPTQ's Hessian accumulation in sample order
  EXPECT_TRUE (slim_processor_supports_distributed (p.get ()));
  Capture capture;
  GError *error = nullptr;
  // 3 calls x 40 tokens = 120 rows > 96 inputs: a full-rank Hessian
  ASSERT_TRUE (run_layer (p.get (), layer.get (), 3, 40, &capture, &error)) << error->message;

  SlimQParamsConfig qcfg;
  ASSERT_TRUE (slim_qparams_config_init (&qcfg, c.dtype, c.symmetric, 0, nullptr));
  SlimGptqConfig cfg;
  slim_gptq_config_init (&cfg, &qcfg, c.scope);
  if (c.group_size > 0)
    cfg.group_size = c.group_size;
  cfg.act_order = c.act_order;
  // the ext values the cases set
  if (strstr (c.weight, "percdamp: 0.1") != nullptr)
    cfg.percdamp = 0.1;
  if (strstr (c.weight, "block_size: 16") != nullptr)
    cfg.block_size = 16;
  for (const SynthLinear &l : layer_linears ())
    {
      SCOPED_TRACE (l.name);
      const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), l.name.c_str ());
      ASSERT_NE (q, nullptr);
      EXPECT_STREQ (q->label, c.label);
      SlimGptqHessian h;
      ASSERT_TRUE (slim_gptq_hessian_init (&h, l.n_in, nullptr));
      ASSERT_EQ (capture.calls[l.name].size (), 3u);
      for (const std::vector<float> &x : capture.calls[l.name])
        ASSERT_TRUE (
            slim_gptq_hessian_add_batch (&h, x.data (), (gint64)x.size () / l.n_in, nullptr));
      gint64 n_params = 0;
      ASSERT_TRUE (slim_gptq_get_n_params (&cfg, l.n_out, l.n_in, &n_params, nullptr));
      std::vector<float> scale (n_params), offset (n_params), deq (l.n_out * l.n_in);
      std::vector<gint8> codes (l.n_out * l.n_in);
      SlimTensor *w = slim_layer_get_tensor (orig.get (), (l.name + ".weight").c_str ());
      ASSERT_TRUE (slim_gptq_quantize (&cfg, &h, (const float *)slim_tensor_get_data (w), l.n_out,
                                       l.n_in, scale.data (), offset.data (), codes.data (),
                                       deq.data (), &error))
          << error->message;
      slim_gptq_hessian_clear (&h);
      ASSERT_EQ (slim_tensor_get_n_elements (q->weight_scale), n_params);
      EXPECT_EQ (memcmp (slim_tensor_get_data (q->weight_q), codes.data (), codes.size ()), 0);
      EXPECT_EQ (memcmp (slim_tensor_get_data (q->weight_scale), scale.data (), n_params * 4), 0);
      EXPECT_EQ (memcmp (slim_tensor_get_data (q->weight_offset), offset.data (), n_params * 4), 0);
      // the layer's weight is the dequantized result
      SlimTensor *lw = slim_layer_get_tensor (layer.get (), (l.name + ".weight").c_str ());
      EXPECT_EQ (memcmp (slim_tensor_get_data (lw), deq.data (), deq.size () * 4), 0);
      EXPECT_EQ (q->group_size, c.scope == SLIM_QSCOPE_PER_GROUP ? c.group_size : 0);
    }
}

INSTANTIATE_TEST_SUITE_P (
    Schemes,
    LinearQuantGptq,
    ::testing::Values (
        GptqCase{ "W4A16PerGroupAsym", "",
                  "{dtype: int4, scope: per_group, symmetric: false, method: gptq, ext: "
                  "{group_size: 32, block_size: 16}}",
                  "W4A16", SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, false, 32, false },
        GptqCase{ "W4A16PerGroupSymActOrder", "",
                  "{dtype: int4, scope: per_group, symmetric: true, method: gptq, ext: "
                  "{group_size: 32, act_order: true}}",
                  "W4A16", SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, true, 32, true },
        GptqCase{ "W8A16PerChannelAsym", "",
                  "{dtype: int8, scope: per_channel, symmetric: false, method: gptq, ext: "
                  "{percdamp: 0.1}}",
                  "W8A16", SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, false, 0, false },
        GptqCase{ "W8A16PerGroupSym", "",
                  "{dtype: int8, scope: per_group, symmetric: true, method: gptq, ext: "
                  "{group_size: 32}}",
                  "W8A16", SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_GROUP, true, 32, false },
        // static activations: the Hessian sees the fake-quantized input
        GptqCase{ "W8A8StaticActs", kA8Static,
                  "{dtype: int8, scope: per_channel, symmetric: true, method: gptq}", "W8A8",
                  SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, true, 0, false },
        GptqCase{ "W8A8DynamicActOrder",
                  "{dtype: int8, scope: per_token, symmetric: true, method: minmax}",
                  "{dtype: int8, scope: per_channel, symmetric: true, method: gptq, ext: "
                  "{act_order: true}}",
                  "W8A8_DYNAMIC", SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, true, 0, true }),
    [] (const ::testing::TestParamInfo<GptqCase> &info) { return std::string (info.param.name); });

// One layer's records and weights, for comparisons between runs.
struct Snapshot
{
  std::map<std::string, std::vector<std::vector<char> > > bytes;
};

Snapshot
snapshot (SlimLayer *layer)
{
  Snapshot s;
  for (const char *const *n = slim_layer_get_linear_names (layer); *n != nullptr; n++)
    {
      const SlimQLinear *q = slim_layer_get_qlinear (layer, *n);
      if (q == nullptr)
        continue;
      SlimTensor *w = slim_layer_get_tensor (layer, (std::string (*n) + ".weight").c_str ());
      for (const SlimTensor *t :
           { (const SlimTensor *)q->weight_q, (const SlimTensor *)q->weight_scale,
             (const SlimTensor *)q->weight_offset, (const SlimTensor *)w })
        {
          const char *d = (const char *)slim_tensor_get_data (t);
          s.bytes[*n].emplace_back (d, d + slim_tensor_get_n_bytes (t));
        }
      const char *sc = (const char *)&q->input_scale;
      const char *of = (const char *)&q->input_offset;
      s.bytes[*n].emplace_back (sc, sc + sizeof (float));
      s.bytes[*n].emplace_back (of, of + sizeof (float));
    }
  return s;
}

const char *const kW4Gptq = "{dtype: int4, scope: per_group, symmetric: false, method: gptq, ext: "
                            "{group_size: 32%s}}";

std::string
w4_gptq (const std::string &extra_ext)
{
  char *text = g_strdup_printf (kW4Gptq, extra_ext.c_str ());
  std::string s (text);
  g_free (text);
  return s;
}

// q/k/v share one Hessian, gate/up another; o_proj and down_proj read
// their own inputs.  3 calls: shared 4 Hessians x 3 = 12 add_batch and 4
// factorisations, unshared 7 x 3 = 21 and 7; the records are the same
// bytes either way.
TEST (LinearQuantGptq, SharedHessianEqualsUnsharedWithFewerAccumulations)
{
  GError *error = nullptr;
  Snapshot shared, unshared;
  for (bool share : { true, false })
    {
      GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 9));
      auto p = make (harness_linear_quant_yaml (
          kA8Static, "{dtype: int8, scope: per_channel, symmetric: true, method: gptq, ext: "
                     "{share_hessian: "
                         + std::string (share ? "true" : "false") + "}}"));
      Capture capture;
      ScopedExpectLog log (G_LOG_LEVEL_DEBUG,
                           share ? "layer 0: 4 GPTQ Hessians for 7 linears: 12 accumulations "
                                   "(add_batch), 4 factorisations"
                                 : "layer 0: 7 GPTQ Hessians for 7 linears: 21 accumulations "
                                   "(add_batch), 7 factorisations");
      ASSERT_TRUE (run_layer (p.get (), layer.get (), 3, 40, &capture, &error)) << error->message;
      (share ? shared : unshared) = snapshot (layer.get ());
    }
  EXPECT_EQ (shared.bytes.size (), 7u);
  EXPECT_TRUE (shared.bytes == unshared.bytes);
}

// Linears whose first inputs agree but a later one differs: an error
// naming the linear and its sharers, never a wrong Hessian.
TEST (LinearQuantGptq, SharingMismatchIsAnError)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 9));
  auto p = make (harness_linear_quant_yaml ("", w4_gptq ("")));
  Capture capture;
  GError *error = nullptr;
  auto inputs = [] (const std::string &m, int c, int64_t n_tokens, int64_t n_in) {
    return input_of (m, m == kK && c == 1 ? 7 : c, n_tokens, n_in);
  };
  EXPECT_FALSE (run_layer (p.get (), layer.get (), 3, 40, &capture, &error, inputs));
  ASSERT_NE (error, nullptr);
  std::string msg = error->message;
  EXPECT_NE (msg.find (kK + ": calibration call 2 reads another input"), std::string::npos) << msg;
  EXPECT_NE (msg.find (kQ), std::string::npos) << msg;
  EXPECT_NE (msg.find ("share_hessian: false"), std::string::npos) << msg;
  g_clear_error (&error);
}

// act_order: other codes (on inputs whose Hessian diagonal is not sorted),
// the same format (shapes, label, group size).
TEST (LinearQuantGptq, ActOrderChangesCodesNotFormat)
{
  GError *error = nullptr;
  std::vector<Snapshot> runs;
  std::vector<std::string> labels;
  for (const char *ext : { "", ", act_order: true" })
    {
      GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 9));
      auto p = make (harness_linear_quant_yaml ("", w4_gptq (ext)));
      Capture capture;
      ASSERT_TRUE (run_layer (p.get (), layer.get (), 3, 40, &capture, &error)) << error->message;
      runs.push_back (snapshot (layer.get ()));
      labels.push_back (slim_layer_get_qlinear (layer.get (), kQ.c_str ())->label);
    }
  EXPECT_EQ (labels[0], labels[1]);
  int differ = 0;
  for (const auto &kv : runs[0].bytes)
    {
      const auto &other = runs[1].bytes.at (kv.first);
      ASSERT_EQ (kv.second.size (), other.size ());
      for (size_t i = 0; i < kv.second.size (); i++)
        EXPECT_EQ (kv.second[i].size (), other[i].size ()) << kv.first << " tensor " << i;
      differ += kv.second[0] != other[0];
    }
  EXPECT_EQ (differ, 7) << "act_order should change every linear's codes";
}

// Bad inputs give an error naming the module, and no record: no row
// reached a linear; rows so large that the Hessian overflows.
TEST (LinearQuantGptq, NoRowsOrOverflowingHessianIsAnErrorNamingTheModule)
{
  GError *error = nullptr;
  {
    GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 9));
    auto p = make (harness_linear_quant_yaml ("", w4_gptq ("")));
    ASSERT_TRUE (slim_processor_validate (p.get (), &error));
    ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));
    ScopedExpectLog log (G_LOG_LEVEL_DEBUG, "layer 0: 0 GPTQ Hessians for 0 linears");
    EXPECT_FALSE (slim_processor_postprocess (p.get (), layer.get (), &error));
    ASSERT_NE (error, nullptr);
    std::string msg = error->message;
    EXPECT_NE (msg.find (kQ), std::string::npos) << msg;
    EXPECT_NE (msg.find ("no calibration data reached this linear"), std::string::npos) << msg;
    g_clear_error (&error);
    EXPECT_EQ (slim_layer_get_qlinear (layer.get (), kQ.c_str ()), nullptr);
  }
  {
    GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 9));
    auto p = make (harness_linear_quant_yaml ("", w4_gptq ("")));
    Capture capture;
    auto huge = [] (const std::string &m, int c, int64_t n_tokens, int64_t n_in) {
      return normal ((size_t)(n_tokens * n_in), c + 1, m == kO ? 1e30f : 1.0f);
    };
    EXPECT_FALSE (run_layer (p.get (), layer.get (), 3, 40, &capture, &error, huge));
    ASSERT_NE (error, nullptr);
    std::string msg = error->message;
    EXPECT_NE (msg.find (kO), std::string::npos) << msg;
    EXPECT_TRUE (
        g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE)
        || g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE))
        << msg;
    g_clear_error (&error);
    EXPECT_EQ (slim_layer_get_qlinear (layer.get (), kO.c_str ()), nullptr);
  }
  // a group size that does not divide the input width: at preprocess
  {
    GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 9));
    auto p = make (harness_linear_quant_yaml (
        "", "{dtype: int4, scope: per_group, symmetric: true, method: gptq, ext: {group_size: "
            "40}}"));
    ASSERT_TRUE (slim_processor_validate (p.get (), &error));
    EXPECT_FALSE (slim_processor_preprocess (p.get (), layer.get (), &error));
    ASSERT_NE (error, nullptr);
    EXPECT_NE (std::string (error->message).find (kQ), std::string::npos) << error->message;
    g_clear_error (&error);
  }
}

// Loader-level refusals: unknown ext key, block_size 0.
TEST (LinearQuantGptq, LoaderRejectsUnknownKeyAndBlockSizeZero)
{
  GError *error = nullptr;
  EXPECT_EQ (harness_processor (harness_linear_quant_yaml ("", w4_gptq (", percdmp: 0.1")), &error),
             nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("percdmp"), std::string::npos) << error->message;
  g_clear_error (&error);
  EXPECT_EQ (
      harness_processor (harness_linear_quant_yaml ("", w4_gptq (", block_size: 0")), &error),
      nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("block-size"), std::string::npos) << error->message;
  g_clear_error (&error);
}

// Histogram activations: every calibration output is the observer's fake
// quantization of that call (qparams of the call's clip bounds, clamped),
// the saved input scale/offset get_qparams after the last call; asym, sym,
// and asym with the KL search.
TEST (LinearQuantHistogram, EqualsSlimHistogramObserverOnTheSameInputs)
{
  for (int k = 0; k < 3; k++)
    {
      bool sym = k == 1;
      SlimHistogramMetric metric = k == 2 ? SLIM_HISTOGRAM_KL_DIVERGENCE : SLIM_HISTOGRAM_L2_NORM;
      SCOPED_TRACE (k);
      std::string act = std::string ("{dtype: int8, scope: per_tensor, symmetric: ")
                        + (sym ? "true" : "false") + ", method: histogram"
                        + (k == 2 ? ", ext: {search_method: kl_divergence}}" : "}");
      GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 9));
      auto p = make (harness_linear_quant_yaml (act, kW8Chan));
      EXPECT_FALSE (slim_processor_is_data_free (p.get ()));
      Capture capture;
      GError *error = nullptr;
      ASSERT_TRUE (run_layer (p.get (), layer.get (), 3, 40, &capture, &error)) << error->message;
      SlimQParamsConfig cfg;
      ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, sym, 0, nullptr));
      for (const SynthLinear &l : layer_linears ())
        {
          SCOPED_TRACE (l.name);
          SlimHistogramObserver obs;
          slim_histogram_observer_init (&obs, &cfg, metric);
          float cmin = 0, cmax = 0, scale = 0, offset = 0;
          for (int c = 0; c < 3; c++)
            {
              std::vector<float> x = input_of (l.name, c, 40, l.n_in);
              ASSERT_TRUE (
                  slim_histogram_observer_update (&obs, x.data (), (gint64)x.size (), nullptr));
              ASSERT_TRUE (slim_histogram_observer_get_qparams (&obs, &cmin, &cmax, &scale, &offset,
                                                                nullptr));
              slim_histogram_fake_quantize (&cfg, x.data (), (gint64)x.size (), scale, offset, cmin,
                                            cmax, x.data ());
              EXPECT_TRUE (x == capture.calls[l.name][c]) << "call " << c;
            }
          const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), l.name.c_str ());
          ASSERT_NE (q, nullptr);
          EXPECT_STREQ (q->label, "W8A8");
          EXPECT_EQ (q->input_scale, scale);
          EXPECT_EQ (q->input_offset, offset);
          if (sym)
            {
              EXPECT_EQ (q->input_offset, 0.0f);
            }
        }
    }
}

// pdmix = linear_quant with the W8A8_MIX qconfig: equal records (with the
// default and the mean aggregation), calibration outputs and description.
TEST (Pdmix, EqualsLinearQuantPdMix)
{
  for (const char *agg : { "", "mean" })
    {
      SCOPED_TRACE (agg);
      std::string ext = agg[0] != '\0' ? std::string ("{aggregation_type: ") + agg + "}" : "";
      std::string act = kA8Mix;
      if (!ext.empty ())
        act = "{dtype: int8, scope: pd_mix, symmetric: false, method: minmax, ext: " + ext + "}";
      auto lq = make (harness_linear_quant_yaml (act, kW8Chan, "exclude: [\"*o_proj\"]\n"));
      auto pd = make ("type: pdmix\nexclude: [\"*o_proj\"]\n"
                      + (ext.empty () ? std::string () : "ext: " + ext + "\n"));
      ASSERT_TRUE (lq && pd);
      Snapshot snaps[2];
      Capture captures[2];
      int k = 0;
      for (SlimProcessor *p : { lq.get (), pd.get () })
        {
          GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, layer_linears (), 9));
          GError *error = nullptr;
          ASSERT_TRUE (run_layer (p, layer.get (), 3, 40, &captures[k], &error)) << error->message;
          EXPECT_STREQ (slim_layer_get_qlinear (layer.get (), kQ.c_str ())->label, "W8A8_MIX");
          EXPECT_EQ (slim_layer_get_qlinear (layer.get (), kO.c_str ()), nullptr);
          snaps[k++] = snapshot (layer.get ());
        }
      EXPECT_EQ (snaps[0].bytes.size (), 6u);
      EXPECT_TRUE (snaps[0].bytes == snaps[1].bytes);
      EXPECT_TRUE (captures[0].calls == captures[1].calls);
    }
  // pdmix's ext has aggregation_type only
  GError *error = nullptr;
  EXPECT_EQ (harness_processor ("type: pdmix\next: {group_size: 32}\n", &error), nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("group_size"), std::string::npos) << error->message;
  g_clear_error (&error);
}

// MoE (qwen2_moe: 4 experts, a shared expert, the router and the
// shared-expert gate): each expert's gate/up share a Hessian, the router
// and shared_expert_gate another, q/k/v another; the saved folder has the
// same bytes as without sharing.
TEST (LinearQuantGptq, MoeSharingSavesTheSameBytes)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::vector<std::string> files;
  for (bool share : { true, false })
    {
      auto p = make (harness_linear_quant_yaml (
          "", "{dtype: int8, scope: per_channel, symmetric: true, method: gptq, ext: "
              "{share_hessian: "
                  + std::string (share ? "true" : "false") + "}}"));
      GError *error = nullptr;
      GObjectPtr<SlimSaver> saver (
          harness_saver ("type: ascendv1_saver\npart_file_size: 0\n", &error));
      ASSERT_TRUE (saver) << error->message;
      std::string out = tmp + (share ? "/shared" : "/unshared");
      // q/k/v, o, 4 x (gate/up, down), shared expert (gate/up, down), router
      // + shared_expert_gate: 13 Hessians for 21 linears
      ScopedExpectLog l0 (G_LOG_LEVEL_DEBUG, share ? "layer 0: 13 GPTQ Hessians for 21 linears"
                                                   : "layer 0: 21 GPTQ Hessians for 21 linears");
      ScopedExpectLog l1 (G_LOG_LEVEL_DEBUG, share ? "layer 1: 13 GPTQ Hessians for 21 linears"
                                                   : "layer 1: 21 GPTQ Hessians for 21 linears");
      ASSERT_TRUE (
          harness_run_model (slim_test_shared_path ("models/synthetic/tiny-random-qwen2-moe"),
                             { p.get () }, { saver.get () }, out, 4, 64, &error))
          << error->message;
      files.push_back (harness_read_file (out + "/quant_model_weights.safetensors"));
    }
  ASSERT_FALSE (files[0].empty ());
  EXPECT_TRUE (files[0] == files[1]);
}

// The same on a real model, saved: every file of the ascendv1 folder has
// the same bytes.
TEST (Pdmix, SavedFolderEqualsLinearQuantPdMix)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::vector<std::string> files;
  for (int k = 0; k < 2; k++)
    {
      auto p = make (k == 0 ? harness_linear_quant_yaml (kA8Mix, kW8Chan) : "type: pdmix\n");
      GError *error = nullptr;
      GObjectPtr<SlimSaver> saver (
          harness_saver ("type: ascendv1_saver\npart_file_size: 0\n", &error));
      ASSERT_TRUE (saver) << error->message;
      std::string out = tmp + "/out" + std::to_string (k);
      ASSERT_TRUE (harness_run_model (slim_test_shared_path ("models/stories260K"), { p.get () },
                                      { saver.get () }, out, 2, 24, &error))
          << error->message;
      files.push_back (harness_read_file (out + "/quant_model_weights.safetensors"));
      files.push_back (harness_read_file (out + "/quant_model_description.json"));
    }
  ASSERT_FALSE (files[0].empty ());
  EXPECT_TRUE (files[0] == files[2]);
  EXPECT_TRUE (files[1] == files[3]);
  EXPECT_NE (files[1].find ("W8A8_MIX"), std::string::npos);
}

} // namespace
