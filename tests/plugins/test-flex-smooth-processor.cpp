// SPDX-License-Identifier: Apache-2.0
//
// test-flex-smooth-processor.cpp: the flex_smooth_quant processor
// (modelslim-v1-spec.md 2.6) on the synthetic models:
//
// - fusion is exact: smoothing alone (fixed alpha/beta, and searched)
//   leaves the float model's logits unchanged (qwen2 with GQA and q/k/v
//   biases, mistral, the MoE families), while the weights did change;
// - fixed alpha/beta: the fused scales are A^alpha / max (|W|, 1e-5)^beta
//   on the statistics of targets[0]'s input over every calibration
//   sample (ov: GQA mean of the group's scales);
// - search: the fused scales are those of the alpha/beta that
//   slim_flex_search_alpha_beta picks on the recorded inputs, and keeping
//   the inputs in a spill store (budget 1 byte) changes no bit;
// - configuration: alias, ranges (config layer) and the open range (0, 1)
//   at validate, unknown subgraph kinds, extra keys, the warning when only
//   one exponent is given, supports_distributed.
//
// Tolerances: logits 1e-4 absolute (the bound; smoothing
// reassociates float32 products, measured in the test's output); scales
// rel 1e-6 (the same float32 operations on the same statistics, recorded
// by the reference loop).
#include "quant-harness.hpp"
#include "slim-test.h"

#include <cmath>
#include <cstring>
#include <algorithm>
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

std::vector<gint32>
eval_ids (gint64 n, gint64 vocab)
{
  std::vector<gint32> ids ((size_t)n);
  for (gint64 t = 0; t < n; t++)
    ids[(size_t)t] = (gint32)((5 + 13 * t + (t * t) % 11) % vocab);
  return ids;
}

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

class FlexFusionExact : public ::testing::TestWithParam<ExactCase>
{
};

TEST_P (FlexFusionExact, LogitsUnchanged)
{
  const ExactCase &c = GetParam ();
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p = make (c.yaml);
  ASSERT_TRUE (p);
  std::vector<GObjectPtr<SlimLayer> > units;
  auto keep = [&] (SlimModel *, SlimLayer *layer, GError **) -> bool {
    units.emplace_back (SLIM_LAYER (g_object_ref (layer)));
    return true;
  };
  ASSERT_TRUE (harness_run_model_with (model_dir (c.model), { p.get () }, keep, 4, 24, &error))
      << (error ? error->message : "");
  GObjectPtr<SlimModel> model (slim_model_open (model_dir (c.model).c_str (), &error));
  ASSERT_TRUE (model) << error->message;
  const SlimModelConfig *config = slim_model_get_config (model.get ());
  ASSERT_EQ (units.size (), (size_t)config->n_layers + 2);
  for (gint64 i = 0; i < config->n_layers; i++)
    {
      GObjectPtr<SlimLayer> orig (slim_model_load_layer (model.get (), (guint)i, &error));
      ASSERT_TRUE (orig);
      std::string name
          = std::string (slim_layer_get_prefix (orig.get ())) + ".input_layernorm.weight";
      SlimTensor *a = slim_layer_get_tensor (orig.get (), name.c_str ());
      SlimTensor *b = slim_layer_get_tensor (units[(size_t)i + 1].get (), name.c_str ());
      ASSERT_TRUE (a != nullptr && b != nullptr) << name;
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
  double worst = 0.0;
  for (size_t i = 0; i < got.size (); i++)
    worst = std::max (worst, (double)std::fabs (got[i] - want[i]));
  slim_tensor_unref (ref);
  EXPECT_LT (worst, 1e-4) << c.label;
  RecordProperty ("max_logit_diff", std::to_string (worst));
}

const char *const kFixed = "type: flex_smooth_quant\nalpha: 0.6\nbeta: 0.4\n";
const char *const kSearch = "type: flex_smooth\n";
#define W4A8_SSZ_QCONFIG                                                                           \
  "qconfig:\n"                                                                                     \
  "  act: {scope: per_token, dtype: int8, symmetric: true, method: minmax}\n"                      \
  "  weight: {scope: per_channel, dtype: int4, symmetric: true, method: ssz, ext: {step: 10}}\n"
const char *const kAwqSsz = "type: flex_awq_ssz\n" W4A8_SSZ_QCONFIG;
const char *const kAwqSszFixed = "type: flex_awq_ssz\nalpha: 0.5\n" W4A8_SSZ_QCONFIG;

INSTANTIATE_TEST_SUITE_P (
    Models,
    FlexFusionExact,
    ::testing::Values (ExactCase{ "tiny-random-qwen2", kFixed, "qwen2_fixed" },
                       ExactCase{ "tiny-random-qwen2", kSearch, "qwen2_search" },
                       ExactCase{ "tiny-random-mistral", kSearch, "mistral_search" },
                       ExactCase{ "tiny-random-mixtral-moe", kSearch, "mixtral_search" },
                       ExactCase{ "tiny-random-qwen2-moe", kFixed, "qwen2_moe_fixed" },
                       ExactCase{ "tiny-random-qwen2", kAwqSsz, "qwen2_awq_ssz_search" },
                       ExactCase{ "tiny-random-mistral", kAwqSszFixed, "mistral_awq_ssz_fixed" }),
    [] (const ::testing::TestParamInfo<ExactCase> &info) {
      return std::string (info.param.label);
    });

// Records the statistics and the whole inputs of chosen linears.
struct InputRecorder
{
  struct Rec
  {
    SlimSmoothStats *stats = nullptr;
    std::vector<std::vector<float> > chunks;
  };
  std::map<std::string, Rec> recs;
  ~InputRecorder ()
  {
    for (auto &kv : recs)
      slim_smooth_stats_free (kv.second.stats);
  }
  static gboolean
  hook (const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **)
  {
    InputRecorder *self = static_cast<InputRecorder *> (user_data);
    auto it = self->recs.find (module);
    if (it != self->recs.end ())
      {
        if (it->second.stats == nullptr)
          it->second.stats = slim_smooth_stats_new (n_in, FALSE);
        slim_smooth_stats_update_ref (it->second.stats, x, n_tokens);
        it->second.chunks.emplace_back (x, x + n_tokens * n_in);
      }
    return TRUE;
  }
};

// Layer 0 of qwen2 through the processor's hooks plus a recorder, three
// samples of different lengths.
struct LayerRun
{
  GObjectPtr<SlimModel> model;
  GObjectPtr<SlimLayer> layer, orig;
  InputRecorder rec;
  const SlimModelConfig *config = nullptr;
};

void
run_layer0 (SlimProcessor *p, const std::vector<std::string> &modules, LayerRun *run)
{
  GError *error = nullptr;
  const std::string dir = model_dir ("tiny-random-qwen2");
  ASSERT_TRUE (slim_processor_validate (p, &error)) << error->message;
  run->model.reset (slim_model_open (dir.c_str (), &error));
  ASSERT_TRUE (run->model);
  ASSERT_TRUE (slim_processor_pre_run (p, run->model.get (), &error));
  run->config = slim_model_get_config (run->model.get ());
  GObjectPtr<SlimLayer> embed (slim_model_load_embed (run->model.get (), &error));
  run->layer.reset (slim_model_load_layer (run->model.get (), 0, &error));
  run->orig.reset (slim_model_load_layer (run->model.get (), 0, &error));
  ASSERT_TRUE (embed && run->layer && run->orig);
  for (const std::string &m : modules)
    run->rec.recs["model.layers.0." + m];
  ASSERT_TRUE (slim_processor_preprocess (p, run->layer.get (), &error));
  for (guint s = 0; s < 3; s++)
    {
      std::vector<gint32> ids = eval_ids (16 + 4 * s, run->config->vocab_size);
      for (gint32 &id : ids)
        id = (id + 31 * (gint32)s) % (gint32)run->config->vocab_size;
      gint64 n = (gint64)ids.size ();
      SlimBatch batch = { 1, &n };
      TensorPtr h (slim_model_embed (run->model.get (), embed.get (), ids.data (), n, &error));
      SlimForwardHooks own = {}, mine = {};
      slim_processor_get_forward_hooks (p, run->layer.get (), &own);
      mine.linear_input = InputRecorder::hook;
      mine.user_data = &run->rec;
      HookChain chain;
      harness_chain_hooks (&chain, &own, &mine);
      TensorPtr y (slim_model_forward_layer (run->model.get (), run->layer.get (), h.get (), &batch,
                                             &chain.hooks, &error));
      ASSERT_TRUE (y) << error->message;
    }
  ASSERT_TRUE (slim_processor_postprocess (p, run->layer.get (), &error)) << error->message;
}

const float *
weight_of (SlimLayer *layer, const std::string &module, int64_t *n_out, int64_t *n_in)
{
  SlimTensor *t = slim_layer_get_tensor (layer, ("model.layers.0." + module + ".weight").c_str ());
  EXPECT_NE (t, nullptr) << module;
  *n_out = slim_tensor_get_dim (t, 0);
  *n_in = slim_tensor_get_dim (t, 1);
  return (const float *)slim_tensor_get_data (t);
}

void
expect_scales (SlimProcessor *p,
               const std::string &module,
               SlimSmoothScalesSide side,
               const std::vector<float> &want)
{
  gint64 n = 0;
  const float *got = slim_smooth_processor_get_scales (
      SLIM_SMOOTH_PROCESSOR (p), ("model.layers.0." + module).c_str (), side, &n);
  ASSERT_NE (got, nullptr) << module;
  ASSERT_EQ ((size_t)n, want.size ()) << module;
  for (gint64 j = 0; j < n; j++)
    EXPECT_NEAR (got[j], want[(size_t)j], 1e-6 * std::fabs (want[(size_t)j]))
        << module << " channel " << j;
}

// Fixed alpha 0.6 / beta 0.4: ov first (|W| column max of o_proj, GQA
// mean), then norm-linear over q, k and the divided v, and up-down on
// down_proj's |W|.
TEST (FlexSmoothProcessor, FixedScalesFollowFromFloatStatistics)
{
  GObjectPtr<SlimProcessor> p = make (kFixed);
  ASSERT_TRUE (p);
  LayerRun run;
  run_layer0 (p.get (), { "self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj" }, &run);
  const SlimModelConfig *config = run.config;
  int64_t no, ni;
  std::vector<float> v_scales;
  {
    SlimSmoothStats *st = run.rec.recs["model.layers.0.self_attn.o_proj"].stats;
    ASSERT_NE (st, nullptr);
    const float *w = weight_of (run.orig.get (), "self_attn.o_proj", &no, &ni);
    std::vector<float> w_max ((size_t)ni), s ((size_t)ni), o ((size_t)ni),
        v ((size_t)(config->n_kv_heads * config->head_dim));
    slim_smooth_weight_column_max_ref (w, no, ni, TRUE, FALSE, w_max.data ());
    slim_smooth_scales_ref (st->smooth, w_max.data (), ni, 0.6, 0.4, 1e-5f, 1e-5f, s.data ());
    slim_smooth_gqa_reduce_mean (s.data (), config->n_heads, config->n_kv_heads, config->head_dim,
                                 o.data (), v.data ());
    EXPECT_LT (config->n_kv_heads, config->n_heads) << "the case is meant to cover GQA";
    expect_scales (p.get (), "self_attn.o_proj", SLIM_SMOOTH_SCALES_INPUT, o);
    expect_scales (p.get (), "self_attn.v_proj", SLIM_SMOOTH_SCALES_OUTPUT, v);
    v_scales = v;
  }
  {
    SlimSmoothStats *st = run.rec.recs["model.layers.0.self_attn.q_proj"].stats;
    ASSERT_NE (st, nullptr);
    std::vector<float> w_max ((size_t)st->n_channels), s (w_max.size ());
    bool first = true;
    for (const char *m : { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" })
      {
        const float *w = weight_of (run.orig.get (), m, &no, &ni);
        std::vector<float> wc (w, w + no * ni);
        if (std::string (m) == "self_attn.v_proj")
          slim_smooth_divide_rows (wc.data (), nullptr, no, ni, v_scales.data ());
        slim_smooth_weight_column_max_ref (wc.data (), no, ni, TRUE, !first, w_max.data ());
        first = false;
      }
    slim_smooth_scales_ref (st->smooth, w_max.data (), st->n_channels, 0.6, 0.4, 1e-5f, 1e-5f,
                            s.data ());
    for (const char *m : { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" })
      expect_scales (p.get (), m, SLIM_SMOOTH_SCALES_INPUT, s);
  }
  {
    SlimSmoothStats *st = run.rec.recs["model.layers.0.mlp.down_proj"].stats;
    ASSERT_NE (st, nullptr);
    const float *w = weight_of (run.orig.get (), "mlp.down_proj", &no, &ni);
    std::vector<float> w_max ((size_t)ni), s ((size_t)ni);
    slim_smooth_weight_column_max_ref (w, no, ni, TRUE, FALSE, w_max.data ());
    slim_smooth_scales_ref (st->smooth, w_max.data (), ni, 0.6, 0.4, 1e-5f, 1e-5f, s.data ());
    expect_scales (p.get (), "mlp.down_proj", SLIM_SMOOTH_SCALES_INPUT, s);
    expect_scales (p.get (), "mlp.up_proj", SLIM_SMOOTH_SCALES_OUTPUT, s);
  }
}

// The search over recorded inputs of q_proj against q, k and v.
struct RecordedSearch
{
  const std::vector<std::vector<float> > *chunks;
  std::vector<std::vector<float> > w, wq;
  std::vector<int64_t> n_out;
  std::vector<float> a_max, w_max, s;
  int64_t n_in = 0;

  static gboolean
  eval (double alpha, double beta, float *out, gpointer user_data, GError **)
  {
    RecordedSearch *r = static_cast<RecordedSearch *> (user_data);
    double err = 0.0, ref = 0.0;
    slim_flex_candidate_scales (r->a_max.data (), r->w_max.data (), r->n_in, alpha, beta,
                                r->s.data ());
    for (size_t b = 0; b < r->w.size (); b++)
      slim_flex_candidate_weight (r->w[b].data (), r->n_out[b], r->n_in, r->s.data (),
                                  r->wq[b].data ());
    for (const std::vector<float> &x : *r->chunks)
      for (size_t b = 0; b < r->w.size (); b++)
        slim_flex_accumulate_error_ref (x.data (), (int64_t)x.size () / r->n_in, r->n_in,
                                        r->w[b].data (), r->wq[b].data (), r->n_out[b],
                                        r->s.data (), &err, &ref);
    *out = slim_flex_error (err, ref);
    return TRUE;
  }
};

// Searched alpha/beta on norm-linear only (so the weights searched are
// the float ones): the fused scales are those of the pair the search picks
// on the recorded inputs (with the plain-loop error kernel); the same run
// with every kept input in a spill store gives the same bits.
TEST (FlexSmoothProcessor, SearchedScalesFollowFromRecordedInputs)
{
  const std::string yaml = "type: flex_smooth_quant\nenable_subgraph_type: [norm-linear]\n";
  GObjectPtr<SlimProcessor> p = make (yaml);
  ASSERT_TRUE (p);
  LayerRun run;
  run_layer0 (p.get (), { "self_attn.q_proj" }, &run);
  InputRecorder::Rec &rec = run.rec.recs["model.layers.0.self_attn.q_proj"];
  ASSERT_NE (rec.stats, nullptr);
  ASSERT_EQ (rec.chunks.size (), 3u);
  RecordedSearch r;
  r.chunks = &rec.chunks;
  r.n_in = rec.stats->n_channels;
  r.a_max.assign (rec.stats->smooth, rec.stats->smooth + r.n_in);
  r.w_max.resize ((size_t)r.n_in);
  r.s.resize ((size_t)r.n_in);
  int64_t no, ni;
  for (const char *m : { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" })
    {
      const float *w = weight_of (run.orig.get (), m, &no, &ni);
      ASSERT_EQ (ni, r.n_in);
      slim_smooth_weight_column_max_ref (w, no, ni, TRUE, !r.w.empty (), r.w_max.data ());
      r.w.emplace_back (w, w + no * ni);
      r.wq.emplace_back ((size_t)(no * ni));
      r.n_out.push_back (no);
    }
  double alpha = -1, beta = -1;
  std::vector<float> c1 (SLIM_FLEX_GRID_POINTS), c2 (SLIM_FLEX_GRID_POINTS);
  ASSERT_TRUE (slim_flex_search_alpha_beta (RecordedSearch::eval, &r, &alpha, &beta, nullptr,
                                            c1.data (), c2.data (), nullptr));
  // the search is not degenerate here: the curve varies over the grid
  EXPECT_NE (*std::min_element (c1.begin (), c1.end ()),
             *std::max_element (c1.begin (), c1.end ()));
  std::vector<float> want ((size_t)r.n_in);
  slim_smooth_scales_ref (r.a_max.data (), r.w_max.data (), r.n_in, alpha, beta, 1e-5f, 1e-5f,
                          want.data ());
  for (const char *m : { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" })
    expect_scales (p.get (), m, SLIM_SMOOTH_SCALES_INPUT, want);
  RecordProperty ("alpha", std::to_string (alpha));
  RecordProperty ("beta", std::to_string (beta));

  // every kept input spilled (budget 1 byte): the same bits
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> q = make (yaml);
  ASSERT_TRUE (q);
  GObjectPtr<SlimSpill> spill (slim_spill_new (SLIM_SPILL_KIND_MEMORY, nullptr, &error));
  ASSERT_TRUE (spill);
  slim_processor_set_keep_storage (q.get (), spill.get (), 1);
  LayerRun run2;
  run_layer0 (q.get (), {}, &run2);
  for (const char *m : { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" })
    {
      const std::string name = std::string ("model.layers.0.") + m;
      gint64 n1 = 0, n2 = 0;
      const float *a = slim_smooth_processor_get_scales (
          SLIM_SMOOTH_PROCESSOR (p.get ()), name.c_str (), SLIM_SMOOTH_SCALES_INPUT, &n1);
      const float *b = slim_smooth_processor_get_scales (
          SLIM_SMOOTH_PROCESSOR (q.get ()), name.c_str (), SLIM_SMOOTH_SCALES_INPUT, &n2);
      ASSERT_TRUE (a != nullptr && b != nullptr && n1 == n2) << m;
      EXPECT_EQ (0, memcmp (a, b, (size_t)n1 * sizeof (float))) << m;
    }
  // postprocess removed the spilled inputs
  EXPECT_FALSE (slim_spill_contains (spill.get (), "flex_smooth_quant/0"));
}

TEST (FlexSmoothProcessor, ConfigurationAndCapabilities)
{
  // defaults, alias
  GObjectPtr<SlimProcessor> a = make (kSearch);
  ASSERT_TRUE (a);
  EXPECT_STREQ (slim_processor_get_type_name (a.get ()), "flex_smooth_quant");
  EXPECT_FALSE (slim_processor_supports_distributed (a.get ())); // inputs are not gathered
  EXPECT_FALSE (slim_processor_is_data_free (a.get ()));
  EXPECT_TRUE (slim_processor_can_resume (a.get ()));
  GObjectPtr<SlimProcessor> f = make (kFixed);
  ASSERT_TRUE (f);
  EXPECT_TRUE (slim_processor_supports_distributed (f.get ())); // channel maxima reduce
  EXPECT_EQ (config_error (kFixed), "");
  EXPECT_EQ (config_error (kSearch), "");

  // ranges: the config layer for values outside [0, 1], validate for the
  // ends of msModelSlim's open range
  std::string e = config_error ("type: flex_smooth_quant\nalpha: 1.5\nbeta: 0.5\n");
  EXPECT_NE (e.find ("alpha"), std::string::npos) << e;
  e = config_error ("type: flex_smooth_quant\nalpha: 0.5\nbeta: -0.1\n");
  EXPECT_NE (e.find ("beta"), std::string::npos) << e;
  e = config_error ("type: flex_smooth_quant\nalpha: 1.0\nbeta: 0.5\n");
  EXPECT_NE (e.find ("alpha must be in the open range (0, 1)"), std::string::npos) << e;
  e = config_error ("type: flex_smooth_quant\nalpha: 0.5\nbeta: 1\n");
  EXPECT_NE (e.find ("beta must be in the open range (0, 1)"), std::string::npos) << e;
  e = config_error ("type: flex_smooth_quant\nenable_subgraph_type: [norm-linear, qkv]\n");
  EXPECT_NE (e.find ("'qkv'"), std::string::npos) << e;
  EXPECT_NE (e.find ("norm-linear, linear-linear, ov, up-down"), std::string::npos) << e;
  // extra keys are refused (msModelSlim: extra forbidden)
  e = config_error ("type: flex_smooth_quant\nscale_min: 1e-5\n");
  EXPECT_NE (e.find ("scale_min"), std::string::npos) << e;
  e = config_error ("type: flex_smooth_quant\nsymmetric: false\n");
  EXPECT_NE (e.find ("symmetric"), std::string::npos) << e;

  // one exponent only: both are searched, with a warning naming it
  {
    ScopedExpectLog warn (G_LOG_LEVEL_WARNING, "alpha = 0.3 is unused");
    GObjectPtr<SlimProcessor> half = make ("type: flex_smooth_quant\nalpha: 0.3\n");
    ASSERT_TRUE (half);
    EXPECT_EQ (config_error ("type: flex_smooth_quant\nalpha: 0.3\n"), "");
    EXPECT_FALSE (slim_processor_supports_distributed (half.get ()));
  }
}

// flex_awq_ssz on qwen2 layer 0: the searched alpha of up-down (the
// W4A8 SSZ quantizer scoring X / max|X|^alpha against down_proj, on the
// recorded inputs), fused as clamp (mean|x|^alpha, 1e-5); ov with a fixed
// alpha follows the max rule (group maxima of the means).
TEST (FlexAwqSszProcessor, ScalesFollowFromRecordedInputs)
{
  GObjectPtr<SlimProcessor> p
      = make ("type: flex_awq_ssz\nenable_subgraph_type: [up-down]\n" W4A8_SSZ_QCONFIG);
  ASSERT_TRUE (p);
  LayerRun run;
  run_layer0 (p.get (), { "mlp.down_proj" }, &run);
  InputRecorder::Rec &rec = run.rec.recs["model.layers.0.mlp.down_proj"];
  ASSERT_NE (rec.stats, nullptr);
  const int64_t n = rec.stats->n_channels;
  std::vector<float> mean ((size_t)n), ones ((size_t)n, 1.0f);
  {
    std::vector<double> sum ((size_t)n, 0.0);
    int64_t tokens = 0;
    for (const std::vector<float> &x : rec.chunks)
      {
        for (size_t i = 0; i < x.size (); i++)
          sum[i % (size_t)n] += std::fabs ((double)x[i]);
        tokens += (int64_t)x.size () / n;
      }
    for (int64_t j = 0; j < n; j++)
      mean[(size_t)j] = (float)(sum[(size_t)j] / (double)tokens);
  }
  struct Ctx
  {
    SlimFlexAwqWeightQuant quant;
    const std::vector<std::vector<float> > *chunks;
    const SlimSmoothStats *st;
    const float *w;
    int64_t n_out, n;
    std::vector<float> ones, s, col, wdq;
  } c;
  int64_t no, ni;
  c.w = weight_of (run.orig.get (), "mlp.down_proj", &no, &ni);
  ASSERT_EQ (ni, n);
  ASSERT_TRUE (slim_qparams_config_init (&c.quant.qparams, SLIM_QDTYPE_INT4, TRUE, 0, nullptr));
  c.quant.ssz = TRUE;
  slim_ssz_config_init (&c.quant.ssz_cfg, &c.quant.qparams);
  c.quant.ssz_cfg.step = 10;
  c.chunks = &rec.chunks;
  c.st = rec.stats;
  c.n_out = no;
  c.n = n;
  c.ones = ones;
  c.s.resize ((size_t)n);
  c.col.resize ((size_t)n);
  c.wdq.resize ((size_t)(no * n));
  auto eval
      = [] (double alpha, double beta, float *out, gpointer user_data, GError **err) -> gboolean {
    Ctx *c = static_cast<Ctx *> (user_data);
    double e = 0.0, r = 0.0;
    slim_flex_candidate_scales (c->st->smooth, c->ones.data (), c->n, alpha, beta, c->s.data ());
    slim_flex_awq_act_scales (c->st->min, c->st->max, c->s.data (), c->n, c->col.data ());
    if (!slim_flex_awq_candidate_weight (&c->quant, c->w, c->n_out, c->n, c->s.data (),
                                         c->wdq.data (), err))
      return FALSE;
    for (const std::vector<float> &x : *c->chunks)
      slim_flex_awq_accumulate_error (x.data (), (int64_t)x.size () / c->n, c->n, c->w,
                                      c->wdq.data (), c->n_out, c->s.data (), c->col.data (), &e,
                                      &r);
    *out = slim_flex_error (e, r);
    return TRUE;
  };
  double alpha = -1.0;
  std::vector<float> curve (SLIM_FLEX_GRID_POINTS);
  ASSERT_TRUE (slim_flex_awq_search_alpha (+eval, &c, &alpha, nullptr, curve.data (), nullptr));
  EXPECT_NE (*std::min_element (curve.begin (), curve.end ()),
             *std::max_element (curve.begin (), curve.end ()));
  std::vector<float> want ((size_t)n);
  slim_smooth_scales_ref (mean.data (), ones.data (), n, alpha, 0.0, 1e-5f, 1e-5f, want.data ());
  expect_scales (p.get (), "mlp.down_proj", SLIM_SMOOTH_SCALES_INPUT, want);
  expect_scales (p.get (), "mlp.up_proj", SLIM_SMOOTH_SCALES_OUTPUT, want);
  RecordProperty ("alpha", std::to_string (alpha));

  // ov, alpha 0.5: v_scales = max over each kv group of the means, ^0.5
  GObjectPtr<SlimProcessor> q
      = make ("type: flex_awq_ssz\nalpha: 0.5\nenable_subgraph_type: [ov]\n" W4A8_SSZ_QCONFIG);
  ASSERT_TRUE (q);
  LayerRun run2;
  run_layer0 (q.get (), { "self_attn.o_proj" }, &run2);
  InputRecorder::Rec &orec = run2.rec.recs["model.layers.0.self_attn.o_proj"];
  ASSERT_NE (orec.stats, nullptr);
  const SlimModelConfig *config = run2.config;
  const int64_t hd = config->head_dim, group = config->n_heads / config->n_kv_heads;
  EXPECT_GT (group, 1) << "the case is meant to cover GQA";
  std::vector<double> osum ((size_t)orec.stats->n_channels, 0.0);
  int64_t otok = 0;
  for (const std::vector<float> &x : orec.chunks)
    {
      for (size_t i = 0; i < x.size (); i++)
        osum[i % osum.size ()] += std::fabs ((double)x[i]);
      otok += (int64_t)(x.size () / osum.size ());
    }
  std::vector<float> v ((size_t)(config->n_kv_heads * hd));
  for (int64_t g = 0; g < config->n_kv_heads; g++)
    for (int64_t d = 0; d < hd; d++)
      {
        float m = 0.0f;
        for (int64_t h = 0; h < group; h++)
          m = std::max (m, (float)(osum[(size_t)((g * group + h) * hd + d)] / (double)otok));
        v[(size_t)(g * hd + d)] = std::max (std::sqrt (m), 1e-5f);
      }
  expect_scales (q.get (), "self_attn.v_proj", SLIM_SMOOTH_SCALES_OUTPUT, v);
}

TEST (FlexAwqSszProcessor, Configuration)
{
  EXPECT_EQ (config_error (kAwqSsz), "");
  GObjectPtr<SlimProcessor> a = make (kAwqSsz);
  ASSERT_TRUE (a);
  EXPECT_STREQ (slim_processor_get_type_name (a.get ()), "flex_awq_ssz");
  EXPECT_FALSE (slim_processor_supports_distributed (a.get ()));
  EXPECT_TRUE (slim_processor_can_resume (a.get ()));
  std::string e = config_error ("type: flex_awq_ssz\n");
  EXPECT_NE (e.find ("qconfig"), std::string::npos) << e;
  e = config_error (
      "type: flex_awq_ssz\nqconfig:\n"
      "  act: {scope: per_tensor, dtype: int8, symmetric: false, method: minmax}\n"
      "  weight: {scope: per_channel, dtype: int8, symmetric: true, method: minmax}\n");
  EXPECT_NE (e.find ("qconfig act"), std::string::npos) << e;
  EXPECT_NE (e.find ("the search emulates msModelSlim's dynamic IRs"), std::string::npos) << e;
  e = config_error ("type: flex_awq_ssz\nalpha: 1.0\n" W4A8_SSZ_QCONFIG);
  EXPECT_NE (e.find ("alpha must be in the open range (0, 1)"), std::string::npos) << e;
  {
    ScopedExpectLog warn (G_LOG_LEVEL_WARNING, "beta = 0.4 is unused");
    EXPECT_EQ (config_error ("type: flex_awq_ssz\nbeta: 0.4\n" W4A8_SSZ_QCONFIG), "");
  }
}

} // namespace
