// SPDX-License-Identifier: Apache-2.0
//
// test-smooth-processors.cpp: the smooth_quant and iter_smooth processors
// (modelslim-v1-spec.md 2.3-2.5) on the synthetic models:
//
// - fusion is exact: smoothing alone leaves the float model's logits
//   unchanged (qwen2 with q/k/v biases and GQA, mistral, llama, and the
//   two MoE families), symmetric and asymmetric (norm bias and linear
//   biases from the shift), while the weights did change;
// - the scales the processor fused are the rule of slim-smooth.h applied
//   to the statistics of targets[0]'s input over every calibration sample,
//   taken from the float layer (so smoothing runs before the quantizer);
// - configuration: defaults, aliases, range and unknown-name errors at
//   validate, extra keys rejected; smoothing after the quantizer is an
//   error; checkpoint state round trip; supports_distributed.
//
// Tolerance of the logits comparison: 1e-4 absolute (the bound)
// on logits of magnitude <= ~5 for these random models; smoothing
// reassociates float32 products: measured max differences 5e-6 to 1.1e-5
// (the larger ones with asymmetric shifts and on mixtral).
#include "quant-harness.hpp"
#include "slim-test.h"

#include <cmath>
#include <cstring>
#include <map>

namespace
{

GObjectPtr<SlimProcessor>
make (const std::string &yaml)
{
  GError *error = nullptr;
  SlimProcessor *p = harness_processor (yaml, &error);
  EXPECT_NE (p, nullptr) << (error ? error->message : "") << "\n" << yaml;
  g_clear_error (&error);
  return GObjectPtr<SlimProcessor> (p);
}

// The error message building (and validating) yaml gives, "" when none.
std::string
config_error (const std::string &yaml)
{
  GError *error = nullptr;
  SlimProcessor *p = harness_processor (yaml, &error);
  std::string msg;
  if (p != nullptr)
    {
      if (!slim_processor_validate (p, &error))
        msg = error->message;
      g_object_unref (p);
    }
  else
    msg = error != nullptr ? error->message : "(no error set)";
  g_clear_error (&error);
  return msg;
}

std::string
model_dir (const char *name)
{
  return slim_test_shared_path (std::string ("models/synthetic/") + name);
}

// Token ids the harness' calibration does not use (another pattern).
std::vector<gint32>
eval_ids (gint64 n, gint64 vocab)
{
  std::vector<gint32> ids ((size_t)n);
  for (gint64 t = 0; t < n; t++)
    ids[(size_t)t] = (gint32)((5 + 13 * t + (t * t) % 11) % vocab);
  return ids;
}

// Logits of the model with the given processed units (embed, layers...,
// head), no hooks (nothing quantized).
std::vector<float>
logits_of (SlimModel *model,
           const std::vector<GObjectPtr<SlimLayer> > &units,
           const std::vector<gint32> &ids)
{
  GError *error = nullptr;
  gint64 n = (gint64)ids.size ();
  SlimBatch batch = { 1, &n };
  SlimTensor *h = slim_model_embed (model, units.front ().get (), ids.data (), n, &error);
  EXPECT_NE (h, nullptr) << (error ? error->message : "");
  for (size_t i = 1; h != nullptr && i + 1 < units.size (); i++)
    {
      SlimTensor *next
          = slim_model_forward_layer (model, units[i].get (), h, &batch, nullptr, &error);
      slim_tensor_unref (h);
      h = next;
      EXPECT_NE (h, nullptr) << (error ? error->message : "");
    }
  std::vector<float> out;
  if (h != nullptr)
    {
      SlimTensor *logits
          = slim_model_forward_head (model, units.back ().get (), h, nullptr, &error);
      EXPECT_NE (logits, nullptr) << (error ? error->message : "");
      if (logits != nullptr)
        {
          const float *d = (const float *)slim_tensor_get_data (logits);
          out.assign (d, d + slim_tensor_get_n_elements (logits));
          slim_tensor_unref (logits);
        }
      slim_tensor_unref (h);
    }
  g_clear_error (&error);
  return out;
}

// Runs the processors over the model (4 samples of 24 tokens) and keeps
// every processed unit.
bool
run_keep (const std::string &dir,
          const std::vector<SlimProcessor *> &processors,
          std::vector<GObjectPtr<SlimLayer> > *units,
          GError **error)
{
  auto keep = [&] (SlimModel *, SlimLayer *layer, GError **) -> bool {
    units->emplace_back (SLIM_LAYER (g_object_ref (layer)));
    return true;
  };
  return harness_run_model_with (dir, processors, keep, 4, 24, error);
}

struct ExactCase
{
  const char *model;
  const char *yaml;
  const char *label;
};

void
PrintTo (const ExactCase &c, std::ostream *os)
{
  *os << c.label;
}

class SmoothFusionExact : public ::testing::TestWithParam<ExactCase>
{
};

TEST_P (SmoothFusionExact, LogitsUnchanged)
{
  const ExactCase &c = GetParam ();
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p = make (c.yaml);
  ASSERT_TRUE (p);
  std::vector<GObjectPtr<SlimLayer> > units;
  ASSERT_TRUE (run_keep (model_dir (c.model), { p.get () }, &units, &error))
      << (error ? error->message : "");
  GObjectPtr<SlimModel> model (slim_model_open (model_dir (c.model).c_str (), &error));
  ASSERT_TRUE (model) << error->message;
  const SlimModelConfig *config = slim_model_get_config (model.get ());
  ASSERT_EQ (units.size (), (size_t)config->n_layers + 2);

  // the weights changed: every decoder layer's input_layernorm did
  for (gint64 i = 0; i < config->n_layers; i++)
    {
      GObjectPtr<SlimLayer> orig (slim_model_load_layer (model.get (), (guint)i, &error));
      ASSERT_TRUE (orig);
      std::string name
          = std::string (slim_layer_get_prefix (orig.get ())) + ".input_layernorm.weight";
      SlimTensor *a = slim_layer_get_tensor (orig.get (), name.c_str ());
      SlimTensor *b = slim_layer_get_tensor (units[(size_t)i + 1].get (), name.c_str ());
      ASSERT_NE (a, nullptr);
      ASSERT_NE (b, nullptr);
      EXPECT_NE (0, memcmp (slim_tensor_get_data (a), slim_tensor_get_data (b),
                            slim_tensor_get_n_bytes (a)))
          << name << " was not smoothed";
    }

  std::vector<gint32> ids = eval_ids (20, config->vocab_size);
  gint64 n = (gint64)ids.size ();
  SlimBatch batch = { 1, &n };
  SlimTensor *ref = slim_model_forward_logits (model.get (), ids.data (), &batch, &error);
  ASSERT_NE (ref, nullptr) << error->message;
  std::vector<float> got = logits_of (model.get (), units, ids);
  ASSERT_EQ (got.size (), (size_t)slim_tensor_get_n_elements (ref));
  const float *want = (const float *)slim_tensor_get_data (ref);
  double worst = 0.0, scale = 0.0;
  for (size_t i = 0; i < got.size (); i++)
    {
      worst = std::max (worst, (double)std::fabs (got[i] - want[i]));
      scale = std::max (scale, (double)std::fabs (want[i]));
    }
  slim_tensor_unref (ref);
  EXPECT_LT (worst, 1e-4) << c.label << ": max |logit| " << scale;
  RecordProperty ("max_logit_diff", std::to_string (worst));
}

const char *const kSmoothSym = "type: smooth_quant\n";
const char *const kSmoothAsym = "type: smooth_quant\nsymmetric: false\nalpha: 0.7\n";
const char *const kIter = "type: iter_smooth\n";
const char *const kIterAsym = "type: iterative_smooth\nsymmetric: false\n";

INSTANTIATE_TEST_SUITE_P (
    Models,
    SmoothFusionExact,
    ::testing::Values (ExactCase{ "tiny-random-qwen2", kSmoothSym, "qwen2_smooth_quant" },
                       ExactCase{ "tiny-random-qwen2", kSmoothAsym, "qwen2_smooth_quant_asym" },
                       ExactCase{ "tiny-random-qwen2", kIter, "qwen2_iter_smooth" },
                       ExactCase{ "tiny-random-qwen2", kIterAsym, "qwen2_iter_smooth_asym" },
                       ExactCase{ "tiny-random-mistral", kSmoothSym, "mistral_smooth_quant" },
                       ExactCase{ "tiny-random-mistral", kIter, "mistral_iter_smooth" },
                       ExactCase{ "tiny-random-mistral", kIterAsym, "mistral_iter_smooth_asym" },
                       ExactCase{ "tiny-random-llama-untied", kIter, "llama_iter_smooth" },
                       ExactCase{ "tiny-random-mixtral-moe", kIter, "mixtral_iter_smooth" },
                       ExactCase{ "tiny-random-qwen2-moe", kIter, "qwen2_moe_iter_smooth" }),
    [] (const ::testing::TestParamInfo<ExactCase> &info) {
      return std::string (info.param.label);
    });

// Records the inputs of chosen linears during a processor's forward.
struct InputRecorder
{
  std::map<std::string, SlimSmoothStats *> stats;
  ~InputRecorder ()
  {
    for (auto &kv : stats)
      slim_smooth_stats_free (kv.second);
  }
  static gboolean
  hook (const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **)
  {
    InputRecorder *self = static_cast<InputRecorder *> (user_data);
    auto it = self->stats.find (module);
    if (it != self->stats.end ())
      {
        if (it->second == nullptr)
          it->second = slim_smooth_stats_new (n_in, FALSE);
        slim_smooth_stats_update_ref (it->second, x, n_tokens);
      }
    return TRUE;
  }
};

// iter_smooth's fused scales for layer 0 of qwen2 are the rule applied to
// the statistics of the float layer's inputs: q_proj (norm-linear, |W| of
// q, k, v), o_proj (ov: column max of o_proj, raw or |W|, GQA mean),
// down_proj (up-down: column max of down_proj, raw or |W|).  Scales within rel 1e-6 (the
// same float32 arithmetic; statistics recorded by the reference loop).
class IterSmoothScales : public ::testing::TestWithParam<bool>
{
};

TEST_P (IterSmoothScales, FollowFromFloatStatistics)
{
  const bool abs_max = GetParam ();
  GError *error = nullptr;
  const std::string dir = model_dir ("tiny-random-qwen2");
  GObjectPtr<SlimProcessor> p
      = make (abs_max ? "type: iter_smooth\nconsumer_abs_max: true\n" : kIter);
  ASSERT_TRUE (p);
  ASSERT_TRUE (slim_processor_validate (p.get (), &error));
  GObjectPtr<SlimModel> model (slim_model_open (dir.c_str (), &error));
  ASSERT_TRUE (model);
  ASSERT_TRUE (slim_processor_pre_run (p.get (), model.get (), &error));
  const SlimModelConfig *config = slim_model_get_config (model.get ());
  GObjectPtr<SlimLayer> embed (slim_model_load_embed (model.get (), &error));
  GObjectPtr<SlimLayer> layer (slim_model_load_layer (model.get (), 0, &error));
  GObjectPtr<SlimLayer> orig (slim_model_load_layer (model.get (), 0, &error));
  ASSERT_TRUE (embed && layer && orig);
  const std::string pre = "model.layers.0.";
  InputRecorder rec;
  for (const char *m : { "self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj" })
    rec.stats[pre + m] = nullptr;

  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));
  for (guint s = 0; s < 3; s++)
    {
      std::vector<gint32> ids = eval_ids (16 + 4 * s, config->vocab_size);
      for (gint32 &id : ids)
        id = (id + 31 * (gint32)s) % (gint32)config->vocab_size;
      gint64 n = (gint64)ids.size ();
      SlimBatch batch = { 1, &n };
      TensorPtr h (slim_model_embed (model.get (), embed.get (), ids.data (), n, &error));
      SlimForwardHooks own = {}, mine = {};
      slim_processor_get_forward_hooks (p.get (), layer.get (), &own);
      mine.linear_input = InputRecorder::hook;
      mine.user_data = &rec;
      HookChain chain;
      harness_chain_hooks (&chain, &own, &mine);
      TensorPtr y (slim_model_forward_layer (model.get (), layer.get (), h.get (), &batch,
                                             &chain.hooks, &error));
      ASSERT_TRUE (y) << error->message;
    }
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error)) << error->message;
  SlimSmoothProcessor *sp = SLIM_SMOOTH_PROCESSOR (p.get ());

  auto weight = [&] (const std::string &m, int64_t *n_out, int64_t *n_in) {
    SlimTensor *t = slim_layer_get_tensor (orig.get (), (pre + m + ".weight").c_str ());
    *n_out = slim_tensor_get_dim (t, 0);
    *n_in = slim_tensor_get_dim (t, 1);
    return (const float *)slim_tensor_get_data (t);
  };
  auto check = [&] (const std::string &module, SlimSmoothScalesSide side,
                    const std::vector<float> &want) {
    gint64 n = 0;
    const float *got = slim_smooth_processor_get_scales (sp, (pre + module).c_str (), side, &n);
    ASSERT_NE (got, nullptr) << module;
    ASSERT_EQ ((size_t)n, want.size ()) << module;
    for (gint64 j = 0; j < n; j++)
      EXPECT_NEAR (got[j], want[(size_t)j], 1e-6 * std::fabs (want[(size_t)j]))
          << module << " channel " << j;
  };
  int64_t no, ni;
  std::vector<float> v_scales;
  { // ov: raw column max of o_proj, then GQA mean
    SlimSmoothStats *st = rec.stats[pre + "self_attn.o_proj"];
    ASSERT_NE (st, nullptr);
    const float *w = weight ("self_attn.o_proj", &no, &ni);
    std::vector<float> w_max ((size_t)ni), s ((size_t)ni), o ((size_t)ni),
        v ((size_t)(config->n_kv_heads * config->head_dim));
    slim_smooth_weight_column_max_ref (w, no, ni, abs_max, FALSE, w_max.data ());
    slim_smooth_scales_ref (st->smooth, w_max.data (), ni, 0.9, 1.0 - 0.9, 1e-5f, 1e-5f, s.data ());
    slim_smooth_gqa_reduce_mean (s.data (), config->n_heads, config->n_kv_heads, config->head_dim,
                                 o.data (), v.data ());
    EXPECT_LT (config->n_kv_heads, config->n_heads) << "the case is meant to cover GQA";
    check ("self_attn.o_proj", SLIM_SMOOTH_SCALES_INPUT, o);
    check ("self_attn.v_proj", SLIM_SMOOTH_SCALES_OUTPUT, v);
    v_scales = v;
  }
  { // norm-linear (after ov, msModelSlim's priority): |W| over q, k and the divided v
    SlimSmoothStats *st = rec.stats[pre + "self_attn.q_proj"];
    ASSERT_NE (st, nullptr);
    std::vector<float> w_max ((size_t)st->n_channels), s (w_max.size ());
    bool first = true;
    for (const char *m : { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" })
      {
        const float *w = weight (m, &no, &ni);
        std::vector<float> wc (w, w + no * ni);
        if (std::string (m) == "self_attn.v_proj") // ov ran first: v rows divided
          slim_smooth_divide_rows (wc.data (), nullptr, no, ni, v_scales.data ());
        slim_smooth_weight_column_max_ref (wc.data (), no, ni, TRUE, !first, w_max.data ());
        first = false;
      }
    slim_smooth_scales_ref (st->smooth, w_max.data (), st->n_channels, 0.9, 1.0 - 0.9, 1e-5f, 1e-5f,
                            s.data ());
    check ("self_attn.q_proj", SLIM_SMOOTH_SCALES_INPUT, s);
    check ("self_attn.k_proj", SLIM_SMOOTH_SCALES_INPUT, s);
    check ("self_attn.v_proj", SLIM_SMOOTH_SCALES_INPUT, s);
  }
  { // up-down: raw column max of down_proj
    SlimSmoothStats *st = rec.stats[pre + "mlp.down_proj"];
    ASSERT_NE (st, nullptr);
    const float *w = weight ("mlp.down_proj", &no, &ni);
    std::vector<float> w_max ((size_t)ni), s ((size_t)ni);
    slim_smooth_weight_column_max_ref (w, no, ni, abs_max, FALSE, w_max.data ());
    slim_smooth_scales_ref (st->smooth, w_max.data (), ni, 0.9, 1.0 - 0.9, 1e-5f, 1e-5f, s.data ());
    check ("mlp.down_proj", SLIM_SMOOTH_SCALES_INPUT, s);
    check ("mlp.up_proj", SLIM_SMOOTH_SCALES_OUTPUT, s);
  }
  // post_attention_layernorm's linears share one input-column scale vector
  gint64 n_gate = 0, n_up = 0;
  const float *gate = slim_smooth_processor_get_scales (sp, (pre + "mlp.gate_proj").c_str (),
                                                        SLIM_SMOOTH_SCALES_INPUT, &n_gate);
  const float *up = slim_smooth_processor_get_scales (sp, (pre + "mlp.up_proj").c_str (),
                                                      SLIM_SMOOTH_SCALES_INPUT, &n_up);
  ASSERT_TRUE (gate != nullptr && up != nullptr);
  ASSERT_EQ (n_gate, config->hidden_size);
  ASSERT_EQ (n_up, n_gate);
  EXPECT_EQ (0, memcmp (gate, up, (size_t)n_gate * sizeof (float)));
  ASSERT_TRUE (slim_processor_post_run (p.get (), &error));
}

// false: msModelSlim's consumer column max without abs() (the default);
// true: consumer_abs_max takes |W|.
INSTANTIATE_TEST_SUITE_P (ConsumerMax,
                          IterSmoothScales,
                          ::testing::Values (false, true),
                          [] (const ::testing::TestParamInfo<bool> &info) {
                            return std::string (info.param ? "abs" : "msmodelslim_raw");
                          });

gboolean
inject_nan (const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer, GError **)
{
  if (g_str_has_suffix (module, "mlp.down_proj") && n_tokens > 1)
    x[n_in + 3] = NAN;
  return TRUE;
}

// A non-finite calibration activation: postprocess fails naming the
// linear and the channel, nothing is fused.
TEST (SmoothProcessor, NanInActivationStatisticsIsAnError)
{
  GError *error = nullptr;
  const std::string dir = model_dir ("tiny-random-mistral");
  GObjectPtr<SlimProcessor> p = make (kIter);
  GObjectPtr<SlimModel> model (slim_model_open (dir.c_str (), &error));
  ASSERT_TRUE (p && model);
  ASSERT_TRUE (slim_processor_validate (p.get (), &error));
  ASSERT_TRUE (slim_processor_pre_run (p.get (), model.get (), &error));
  GObjectPtr<SlimLayer> embed (slim_model_load_embed (model.get (), &error));
  GObjectPtr<SlimLayer> layer (slim_model_load_layer (model.get (), 0, &error));
  ASSERT_TRUE (embed && layer);
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));
  std::vector<gint32> ids = eval_ids (12, slim_model_get_config (model.get ())->vocab_size);
  gint64 n = (gint64)ids.size ();
  SlimBatch batch = { 1, &n };
  TensorPtr h (slim_model_embed (model.get (), embed.get (), ids.data (), n, &error));
  SlimForwardHooks nan_hook = {}, own = {};
  nan_hook.linear_input = inject_nan;
  slim_processor_get_forward_hooks (p.get (), layer.get (), &own);
  HookChain chain;
  harness_chain_hooks (&chain, &nan_hook, &own);
  TensorPtr y (slim_model_forward_layer (model.get (), layer.get (), h.get (), &batch, &chain.hooks,
                                         &error));
  ASSERT_TRUE (y);
  EXPECT_FALSE (slim_processor_postprocess (p.get (), layer.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  EXPECT_NE (std::string (error->message).find ("model.layers.0.mlp.down_proj"), std::string::npos)
      << error->message;
  EXPECT_NE (std::string (error->message).find ("channel 3"), std::string::npos) << error->message;
  g_clear_error (&error);
}

// enable_subgraph_type and include/exclude select what is smoothed.
TEST (SmoothProcessor, SubgraphTypesAndPatternsSelect)
{
  GError *error = nullptr;
  const std::string dir = model_dir ("tiny-random-mistral");
  struct Sel
  {
    const char *yaml;
    std::vector<const char *> smoothed, untouched; // module suffixes in layer 0
  };
  const Sel cases[] = {
    { "type: iter_smooth\nenable_subgraph_type: [ov]\n",
      { "self_attn.o_proj" },
      { "self_attn.q_proj", "mlp.down_proj", "mlp.gate_proj" } },
    { "type: iter_smooth\nenable_subgraph_type: [up-down, norm-linear]\nexclude: "
      "['*input_layernorm']\n",
      { "mlp.down_proj", "mlp.gate_proj" },
      { "self_attn.q_proj", "self_attn.o_proj" } },
    { "type: smooth_quant\ninclude: ['*post_attention_layernorm']\n",
      { "mlp.gate_proj", "mlp.up_proj" },
      { "self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj" } },
  };
  for (const Sel &c : cases)
    {
      GObjectPtr<SlimProcessor> p = make (c.yaml);
      ASSERT_TRUE (p);
      SlimSmoothProcessor *sp = SLIM_SMOOTH_PROCESSOR (p.get ());
      bool checked = false;
      auto on_layer = [&] (SlimModel *, SlimLayer *layer, GError **) -> bool {
        if (slim_layer_get_index (layer) != 0)
          return true;
        for (const char *m : c.smoothed)
          EXPECT_NE (
              slim_smooth_processor_get_scales (sp, (std::string ("model.layers.0.") + m).c_str (),
                                                SLIM_SMOOTH_SCALES_INPUT, nullptr),
              nullptr)
              << c.yaml << m;
        for (const char *m : c.untouched)
          EXPECT_EQ (
              slim_smooth_processor_get_scales (sp, (std::string ("model.layers.0.") + m).c_str (),
                                                SLIM_SMOOTH_SCALES_INPUT, nullptr),
              nullptr)
              << c.yaml << m;
        checked = true;
        return true;
      };
      ASSERT_TRUE (harness_run_model_with (dir, { p.get () }, on_layer, 2, 16, &error))
          << error->message;
      EXPECT_TRUE (checked);
    }
}

TEST (SmoothProcessor, DefaultsAliasesAndCapabilities)
{
  GObjectPtr<SlimProcessor> sq = make ("type: smooth_quant\n");
  GObjectPtr<SlimProcessor> is = make ("type: iter_smooth\n");
  GObjectPtr<SlimProcessor> alias = make ("type: iterative_smooth\nscale_min: 1e-5\n");
  ASSERT_TRUE (sq && is && alias);
  double alpha = 0, scale_min = 0;
  gboolean symmetric = FALSE, abs_max = TRUE;
  char **types = nullptr;
  g_object_get (sq.get (), "alpha", &alpha, "symmetric", &symmetric, nullptr);
  EXPECT_EQ (alpha, 0.5);
  EXPECT_TRUE (symmetric);
  g_object_get (is.get (), "alpha", &alpha, "scale-min", &scale_min, "enable-subgraph-type", &types,
                "consumer-abs-max", &abs_max, nullptr);
  EXPECT_EQ (alpha, 0.9);
  EXPECT_EQ (scale_min, 1e-5);
  EXPECT_FALSE (abs_max) << "msModelSlim's behaviour by default";
  ASSERT_NE (types, nullptr);
  EXPECT_EQ (g_strv_length (types), 4u);
  EXPECT_STREQ (types[0], "norm-linear");
  g_strfreev (types);
  EXPECT_STREQ (slim_processor_get_type_name (alias.get ()), "iter_smooth");
  // msModelSlim: iter_smooth supports distributed runs, smooth_quant does not
  EXPECT_TRUE (slim_processor_supports_distributed (is.get ()));
  EXPECT_FALSE (slim_processor_supports_distributed (sq.get ()));
  EXPECT_FALSE (slim_processor_is_data_free (is.get ()));
  EXPECT_TRUE (slim_processor_can_resume (is.get ()));
}

TEST (SmoothProcessor, BadConfigsFailWithTheKey)
{
  std::string e = config_error ("type: smooth_quant\nalpha: 1.5\n");
  EXPECT_NE (e.find ("alpha"), std::string::npos) << e;
  e = config_error ("type: iter_smooth\nalpha: -0.1\n");
  EXPECT_NE (e.find ("alpha"), std::string::npos) << e;
  e = config_error ("type: iter_smooth\nscale_min: 2\n");
  EXPECT_NE (e.find ("scale"), std::string::npos) << e;
  e = config_error ("type: iter_smooth\nenable_subgraph_type: [norm-linear, qkv]\n");
  EXPECT_NE (e.find ("enable_subgraph_type"), std::string::npos) << e;
  EXPECT_NE (e.find ("'qkv'"), std::string::npos) << e;
  EXPECT_NE (e.find ("norm-linear, linear-linear, ov, up-down"), std::string::npos) << e;
  // smooth_quant has no enable_subgraph_type (msModelSlim: extra keys forbidden)
  e = config_error ("type: smooth_quant\nenable_subgraph_type: [ov]\n");
  EXPECT_NE (e.find ("enable_subgraph_type"), std::string::npos) << e;
  e = config_error ("type: iter_smooth\nbeta: 0.1\n");
  EXPECT_NE (e.find ("beta"), std::string::npos) << e;
  // msModelSlim's validate_normalized_value: the open range (0, 1)
  for (const char *y : { "type: iter_smooth\nalpha: 1.0\n", "type: iter_smooth\nscale_min: 0\n",
                         "type: smooth_quant\nalpha: 0\n" })
    {
      e = config_error (y);
      EXPECT_NE (e.find ("must be in the open range (0, 1)"), std::string::npos) << y << e;
    }
  EXPECT_EQ (config_error ("type: iter_smooth\nalpha: 0.999\nscale_min: 0.5\n"), "");
}

// A smoothing processor after the quantizer would change weights the
// deployed records no longer describe: an error naming the linear.
TEST (SmoothProcessor, AfterTheQuantizerIsAnError)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> q = make (harness_linear_quant_yaml (
      "{scope: per_tensor, dtype: int8, symmetric: false, method: minmax}",
      "{scope: per_channel, dtype: int8, symmetric: true, method: minmax}"));
  GObjectPtr<SlimProcessor> s = make ("type: smooth_quant\n");
  ASSERT_TRUE (q && s);
  EXPECT_FALSE (harness_run_model_with (
      model_dir ("tiny-random-mistral"), { q.get (), s.get () },
      [] (SlimModel *, SlimLayer *, GError **) { return true; }, 2, 16, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("already quantized"), std::string::npos)
      << error->message;
  g_clear_error (&error);
}

// The state between layers is the include/exclude hits: saved after a
// layer, restored into a fresh processor, the unmatched-pattern report is
// the same; a malformed blob is an error.
TEST (SmoothProcessor, StateRoundTrip)
{
  GError *error = nullptr;
  const std::string yaml = "type: iter_smooth\ninclude: ['*layers.0.*', '*nothing*']\n";
  GObjectPtr<SlimProcessor> a = make (yaml);
  ASSERT_TRUE (a);
  ScopedExpectLog unmatched (G_LOG_LEVEL_WARNING, "'*nothing*'");
  ASSERT_TRUE (harness_run_model_with (
      model_dir ("tiny-random-mistral"), { a.get () },
      [] (SlimModel *, SlimLayer *, GError **) { return true; }, 1, 8, &error));
  GBytes *state = slim_processor_save_state (a.get (), &error);
  ASSERT_NE (state, nullptr) << error->message;
  GObjectPtr<SlimProcessor> b = make (yaml);
  ASSERT_TRUE (slim_processor_validate (b.get (), &error));
  EXPECT_TRUE (slim_processor_restore_state (b.get (), state, &error));
  GBytes *again = slim_processor_save_state (b.get (), &error);
  ASSERT_NE (again, nullptr);
  EXPECT_TRUE (g_bytes_equal (state, again));
  g_bytes_unref (again);
  g_bytes_unref (state);
  GBytes *junk = g_bytes_new_static ("xyz", 3);
  GObjectPtr<SlimProcessor> c = make (yaml);
  EXPECT_FALSE (slim_processor_restore_state (c.get (), junk, &error));
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
  g_bytes_unref (junk);
}

} // namespace
