// SPDX-License-Identifier: Apache-2.0
//
// test-awq-kv-smooth.cpp: the awq and kv_smooth processors
// (modelslim-v1-spec.md 2.6, 2.7) on the synthetic models:
//
// - float invariance: kv_smooth (state-rope-linear on qwen2 with q/k
//   biases and GQA, llama, mistral, mixtral; state-rope-norm on a qwen3
//   variant with q_norm/k_norm) and awq (its scales fused as a rescaling)
//   leave the float logits unchanged while the weights changed;
// - kv_smooth's fused k_proj rows are the original ones divided by the
//   RoPE-paired key maxima of the float layer's post-RoPE keys;
// - awq's fused down_proj scales are slim_awq_search on the float layer's
//   down_proj inputs (the inspected module of an up-down subgraph is
//   down_proj itself);
// - configuration: defaults, ranges, required weight_qconfig, unsupported
//   quantizers, extra keys; kv_smooth after the quantizer is an error
//   naming the linear, a layer without q_norm on a qk_norm model an error
//   naming the attention; state round trip; capabilities.
//
// Tolerance of the logits comparison: 1e-4 absolute (the bound)
// on logits of magnitude <= ~5: the fusions reassociate float32 products
// (measured max differences printed as max_logit_diff, <= ~1e-5).
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-safetensors.h"
}
#include <json-glib/json-glib.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>

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

// tiny-random-qwen2 turned into qwen3: q/k/v biases dropped, q_norm and
// k_norm (head_dim 16) added with random weights; with_norms false leaves
// them out (a broken checkpoint of a qk_norm model for the error test:
// the model then opens only if the loader tolerates it, see the test).
std::string
make_qwen3 ()
{
  const std::string src = model_dir ("tiny-random-qwen2");
  std::string dir = slim_test_make_tmpdir ();
  g_autoptr (JsonParser) parser = json_parser_new ();
  EXPECT_TRUE (json_parser_load_from_file (parser, (src + "/config.json").c_str (), nullptr));
  JsonNode *root = json_node_copy (json_parser_get_root (parser));
  json_object_set_string_member (json_node_get_object (root), "model_type", "qwen3");
  json_object_set_int_member (json_node_get_object (root), "head_dim", 16);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, root);
  EXPECT_TRUE (json_generator_to_file (gen, (dir + "/config.json").c_str (), nullptr));
  json_node_unref (root);

  GError *error = nullptr;
  SlimSafetensors *st = slim_safetensors_open ((src + "/model.safetensors").c_str (), &error);
  EXPECT_NE (st, nullptr);
  std::vector<SlimTensor *> tensors;
  for (const char *const *n = slim_safetensors_get_names (st); *n != nullptr; n++)
    {
      std::string name = *n;
      if (name.find ("q_proj.bias") != std::string::npos
          || name.find ("k_proj.bias") != std::string::npos
          || name.find ("v_proj.bias") != std::string::npos)
        continue;
      tensors.push_back (slim_safetensors_get_tensor (st, *n, nullptr));
    }
  std::mt19937 rng (11);
  std::uniform_real_distribution<float> u (0.5f, 1.5f);
  for (int l = 0; l < 2; l++)
    for (const char *n : { "q_norm.weight", "k_norm.weight" })
      {
        std::string name = "model.layers." + std::to_string (l) + ".self_attn." + n;
        SlimTensor *t = slim_tensor_new_1d (name.c_str (), SLIM_DTYPE_F32, 16);
        float *d = (float *)slim_tensor_get_data_mut (t);
        for (int i = 0; i < 16; i++)
          d[i] = u (rng);
        tensors.push_back (t);
      }
  EXPECT_TRUE (slim_safetensors_write_file ((dir + "/model.safetensors").c_str (), tensors.data (),
                                            (guint)tensors.size (), nullptr, &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  for (SlimTensor *t : tensors)
    slim_tensor_unref (t);
  g_object_unref (st);
  return dir;
}

const std::string &
qwen3_dir ()
{
  static const std::string dir = make_qwen3 ();
  return dir;
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
  const char *model; // nullptr: the qwen3 variant
  const char *yaml;
  const char *changed; // a tensor of layer 0 (after the prefix) the processor changes
  const char *label;
};

void
PrintTo (const ExactCase &c, std::ostream *os)
{
  *os << c.label;
}

class AwqKvSmoothExact : public ::testing::TestWithParam<ExactCase>
{
};

TEST_P (AwqKvSmoothExact, LogitsUnchanged)
{
  const ExactCase &c = GetParam ();
  const std::string dir = c.model != nullptr ? model_dir (c.model) : qwen3_dir ();
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p = make (c.yaml);
  ASSERT_TRUE (p);
  std::vector<GObjectPtr<SlimLayer> > units;
  ASSERT_TRUE (run_keep (dir, { p.get () }, &units, &error)) << (error ? error->message : "");
  GObjectPtr<SlimModel> model (slim_model_open (dir.c_str (), &error));
  ASSERT_TRUE (model) << error->message;
  const SlimModelConfig *config = slim_model_get_config (model.get ());
  ASSERT_EQ (units.size (), (size_t)config->n_layers + 2);

  // the weights changed (awq may keep ratio 0, scales 1, on a layer of a
  // random model: at least one layer for it, every layer for kv_smooth)
  gint64 n_changed = 0;
  for (gint64 i = 0; i < config->n_layers; i++)
    {
      GObjectPtr<SlimLayer> orig (slim_model_load_layer (model.get (), (guint)i, &error));
      ASSERT_TRUE (orig);
      std::string name = std::string (slim_layer_get_prefix (orig.get ())) + "." + c.changed;
      SlimTensor *a = slim_layer_get_tensor (orig.get (), name.c_str ());
      SlimTensor *b = slim_layer_get_tensor (units[(size_t)i + 1].get (), name.c_str ());
      ASSERT_NE (a, nullptr) << name;
      ASSERT_NE (b, nullptr) << name;
      if (memcmp (slim_tensor_get_data (a), slim_tensor_get_data (b), slim_tensor_get_n_bytes (a))
          != 0)
        n_changed++;
    }
  if (std::string (c.yaml).find ("kv_smooth") != std::string::npos)
    EXPECT_EQ (n_changed, config->n_layers) << c.changed;
  else
    EXPECT_GT (n_changed, 0) << c.changed;

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

const char *const kKv = "type: kv_smooth\n";
const char *const kKvHalf = "type: kv_smooth\nsmooth_factor: 0.5\n";
const char *const kAwq4 = "type: awq\nweight_qconfig: {dtype: int4, scope: per_channel, "
                          "symmetric: true, method: minmax}\n";
const char *const kAwq8Group = "type: awq\nn_grid: 10\nweight_qconfig: {dtype: int8, scope: "
                               "per_group, symmetric: false, method: minmax, ext: {group_size: "
                               "16}}\n";

INSTANTIATE_TEST_SUITE_P (
    Models,
    AwqKvSmoothExact,
    ::testing::Values (
        ExactCase{ "tiny-random-qwen2", kKv, "self_attn.k_proj.weight", "qwen2_kv_smooth" },
        ExactCase{ "tiny-random-qwen2", kKvHalf, "self_attn.q_proj.weight", "qwen2_kv_half" },
        ExactCase{ "tiny-random-llama-untied", kKv, "self_attn.k_proj.weight", "llama_kv" },
        ExactCase{ "tiny-random-mistral", kKv, "self_attn.k_proj.weight", "mistral_kv" },
        ExactCase{ "tiny-random-mixtral-moe", kKv, "self_attn.k_proj.weight", "mixtral_kv" },
        ExactCase{ nullptr, kKv, "self_attn.k_norm.weight", "qwen3_kv_norm" },
        ExactCase{ nullptr, kKvHalf, "self_attn.q_norm.weight", "qwen3_kv_norm_half" },
        ExactCase{ "tiny-random-qwen2", kAwq4, "input_layernorm.weight", "qwen2_awq" },
        ExactCase{ "tiny-random-llama-untied", kAwq4, "mlp.up_proj.weight", "llama_awq" },
        ExactCase{ "tiny-random-mistral", kAwq8Group, "post_attention_layernorm.weight",
                   "mistral_awq_group" },
        ExactCase{ nullptr, kAwq4, "input_layernorm.weight", "qwen3_awq" }),
    [] (const ::testing::TestParamInfo<ExactCase> &info) {
      return std::string (info.param.label);
    });

// Records the post-RoPE keys and the inputs of chosen linears.
struct Recorder
{
  std::string attn;
  std::vector<float> kmin, kmax;
  std::map<std::string, std::vector<std::vector<float> > > inputs;
  static gboolean
  linear (const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **)
  {
    Recorder *self = static_cast<Recorder *> (user_data);
    auto it = self->inputs.find (module);
    if (it != self->inputs.end ())
      it->second.emplace_back (x, x + n_tokens * n_in);
    return TRUE;
  }
  static gboolean
  qkv (const char *attn,
       float *,
       float *k,
       float *,
       gint64 n_tokens,
       const SlimModelConfig *config,
       gpointer user_data,
       GError **)
  {
    Recorder *self = static_cast<Recorder *> (user_data);
    const gint64 n = config->n_kv_heads * config->head_dim;
    if (self->attn != attn)
      return TRUE;
    for (gint64 t = 0; t < n_tokens; t++)
      for (gint64 c = 0; c < n; c++)
        {
          float v = k[t * n + c];
          if (self->kmin.size () < (size_t)n)
            {
              self->kmin.push_back (v);
              self->kmax.push_back (v);
              continue;
            }
          self->kmin[c] = std::min (self->kmin[c], v);
          self->kmax[c] = std::max (self->kmax[c], v);
        }
    return TRUE;
  }
};

// Runs processor p over layer 0 of dir with 3 calibration samples and the
// recorder beside it; returns the processed layer and the float one.
void
run_layer0 (SlimProcessor *p,
            const std::string &dir,
            Recorder *rec,
            GObjectPtr<SlimModel> *model_out,
            GObjectPtr<SlimLayer> *layer_out,
            GObjectPtr<SlimLayer> *orig_out)
{
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (p, &error)) << error->message;
  GObjectPtr<SlimModel> model (slim_model_open (dir.c_str (), &error));
  ASSERT_TRUE (model);
  ASSERT_TRUE (slim_processor_pre_run (p, model.get (), &error));
  const SlimModelConfig *config = slim_model_get_config (model.get ());
  GObjectPtr<SlimLayer> embed (slim_model_load_embed (model.get (), &error));
  GObjectPtr<SlimLayer> layer (slim_model_load_layer (model.get (), 0, &error));
  GObjectPtr<SlimLayer> orig (slim_model_load_layer (model.get (), 0, &error));
  ASSERT_TRUE (embed && layer && orig);
  ASSERT_TRUE (slim_processor_preprocess (p, layer.get (), &error));
  for (guint s = 0; s < 3; s++)
    {
      std::vector<gint32> ids = eval_ids (16 + 4 * s, config->vocab_size);
      for (gint32 &id : ids)
        id = (id + 31 * (gint32)s) % (gint32)config->vocab_size;
      gint64 n = (gint64)ids.size ();
      SlimBatch batch = { 1, &n };
      TensorPtr h (slim_model_embed (model.get (), embed.get (), ids.data (), n, &error));
      SlimForwardHooks own = {}, mine = {};
      slim_processor_get_forward_hooks (p, layer.get (), &own);
      mine.linear_input = Recorder::linear;
      mine.qkv_states = Recorder::qkv;
      mine.user_data = rec;
      HookChain chain;
      harness_chain_hooks (&chain, &own, &mine);
      TensorPtr y (slim_model_forward_layer (model.get (), layer.get (), h.get (), &batch,
                                             &chain.hooks, &error));
      ASSERT_TRUE (y) << error->message;
    }
  ASSERT_TRUE (slim_processor_postprocess (p, layer.get (), &error)) << error->message;
  *model_out = std::move (model);
  *layer_out = std::move (layer);
  *orig_out = std::move (orig);
}

const float *
data_of (SlimLayer *layer, const std::string &name)
{
  SlimTensor *t = slim_layer_get_tensor (layer, name.c_str ());
  EXPECT_NE (t, nullptr) << name;
  return t != nullptr ? (const float *)slim_tensor_get_data (t) : nullptr;
}

// kv_smooth on qwen2 layer 0 (GQA 4 / 2 heads, head_dim 16, k bias): k_proj
// rows and bias are the float ones divided by the RoPE-pair maximum of
// the recorded post-RoPE |k|; q_proj rows multiplied by their kv head's.
// Exact: the same float operations on the same key states.
TEST (KvSmoothProcessor, FusedScalesFollowFromTheKeys)
{
  GObjectPtr<SlimProcessor> p = make (kKv);
  ASSERT_TRUE (p);
  Recorder rec;
  rec.attn = "model.layers.0.self_attn";
  GObjectPtr<SlimModel> model;
  GObjectPtr<SlimLayer> layer, orig;
  run_layer0 (p.get (), model_dir ("tiny-random-qwen2"), &rec, &model, &layer, &orig);
  ASSERT_TRUE (layer);
  const SlimModelConfig *c = slim_model_get_config (model.get ());
  const gint64 hd = c->head_dim, kv = c->n_kv_heads, groups = c->n_heads / c->n_kv_heads;
  const gint64 hidden = c->hidden_size;
  ASSERT_EQ (rec.kmin.size (), (size_t)(kv * hd));
  const std::string a = rec.attn + ".";
  const float *kw0 = data_of (orig.get (), a + "k_proj.weight");
  const float *kw1 = data_of (layer.get (), a + "k_proj.weight");
  const float *kb0 = data_of (orig.get (), a + "k_proj.bias");
  const float *kb1 = data_of (layer.get (), a + "k_proj.bias");
  const float *qw0 = data_of (orig.get (), a + "q_proj.weight");
  const float *qw1 = data_of (layer.get (), a + "q_proj.weight");
  ASSERT_TRUE (kw0 && kw1 && kb0 && kb1 && qw0 && qw1);
  for (gint64 h = 0; h < kv; h++)
    for (gint64 d = 0; d < hd; d++)
      {
        const gint64 d0 = d % (hd / 2), r = h * hd + d;
        auto amax = [&] (gint64 ch) {
          return std::max (std::fabs (rec.kmin[ch]), std::fabs (rec.kmax[ch]));
        };
        const float s = std::max (amax (h * hd + d0), amax (h * hd + d0 + hd / 2));
        EXPECT_EQ (kb1[r], kb0[r] / s) << "bias row " << r;
        for (gint64 j = 0; j < hidden; j++)
          ASSERT_EQ (kw1[r * hidden + j], kw0[r * hidden + j] / s) << "k row " << r;
        for (gint64 g = 0; g < groups; g++)
          {
            const gint64 qr = (h * groups + g) * hd + d;
            for (gint64 j = 0; j < hidden; j++)
              ASSERT_EQ (qw1[qr * hidden + j], qw0[qr * hidden + j] * s) << "q row " << qr;
          }
      }
}

// awq's up-down subgraph of qwen2 layer 0 searches down_proj alone (its
// own inspected module) first: the fused scales are slim_awq_search on
// the recorded down_proj inputs of the float layer.  Exact: the same
// float arithmetic (sgemm of the same operands, float64 loss sums).
TEST (AwqProcessor, DownProjScalesAreTheSearchOnItsInputs)
{
  GObjectPtr<SlimProcessor> p = make (std::string (kAwq4) + "n_grid: 8\n");
  ASSERT_TRUE (p);
  Recorder rec;
  const std::string down = "model.layers.0.mlp.down_proj";
  rec.inputs[down] = {};
  GObjectPtr<SlimModel> model;
  GObjectPtr<SlimLayer> layer, orig;
  run_layer0 (p.get (), model_dir ("tiny-random-qwen2"), &rec, &model, &layer, &orig);
  ASSERT_TRUE (layer);
  gint64 n = 0;
  const float *fused = slim_smooth_processor_get_scales (
      SLIM_SMOOTH_PROCESSOR (p.get ()), down.c_str (), SLIM_SMOOTH_SCALES_INPUT, &n);
  ASSERT_NE (fused, nullptr);
  SlimTensor *w = slim_layer_get_tensor (orig.get (), (down + ".weight").c_str ());
  const gint64 n_out = slim_tensor_get_dim (w, 0), n_in = slim_tensor_get_dim (w, 1);
  ASSERT_EQ (n, n_in);
  const auto &xs = rec.inputs[down];
  ASSERT_EQ (xs.size (), 3u);
  std::vector<float> mean (n_in);
  gint64 count = 0;
  std::vector<const float *> xp;
  std::vector<gint64> toks;
  std::vector<std::vector<float> > ys;
  for (const auto &x : xs)
    {
      const gint64 t = (gint64)x.size () / n_in;
      slim_awq_mean_update (mean.data (), &count, x.data (), t, n_in);
      xp.push_back (x.data ());
      toks.push_back (t);
      ys.emplace_back (t * n_out);
      slim_linalg_linear (x.data (), (const float *)slim_tensor_get_data (w), nullptr,
                          ys.back ().data (), t, n_in, n_out);
    }
  std::vector<const float *> yp;
  for (const auto &y : ys)
    yp.push_back (y.data ());
  SlimAwqWeightQuant quant = {};
  GError *error = nullptr;
  ASSERT_TRUE (slim_qparams_config_init (&quant.cfg, SLIM_QDTYPE_INT4, TRUE, 0, &error));
  quant.scope = SLIM_QSCOPE_PER_CHANNEL;
  SlimAwqLinear lin = { &quant,     (const float *)slim_tensor_get_data (w),
                        nullptr,    n_out,
                        n_in,       3,
                        xp.data (), toks.data (),
                        yp.data () };
  std::vector<float> want (n_in);
  std::vector<double> losses (8);
  gint best = -1;
  ASSERT_TRUE (slim_awq_search (mean.data (), n_in, 8, slim_awq_linear_eval, &lin, want.data (),
                                losses.data (), &best, &error));
  EXPECT_GT (best, 0) << "a ratio above 0 should win on these activations";
  for (gint64 j = 0; j < n_in; j++)
    EXPECT_FLOAT_EQ (fused[j], want[j]) << j;
}

TEST (AwqKvSmooth, DefaultsAndCapabilities)
{
  GObjectPtr<SlimProcessor> kvp = make (kKv);
  GObjectPtr<SlimProcessor> awq = make (kAwq4);
  ASSERT_TRUE (kvp && awq);
  double factor = 0;
  char **include = nullptr, **exclude = nullptr, **types = nullptr;
  gint64 n_grid = 0;
  g_object_get (kvp.get (), "smooth-factor", &factor, "include", &include, "exclude", &exclude,
                nullptr);
  EXPECT_EQ (factor, 1.0);
  ASSERT_NE (include, nullptr);
  EXPECT_STREQ (include[0], "*");
  EXPECT_EQ (g_strv_length (exclude), 0u);
  g_strfreev (include);
  g_strfreev (exclude);
  g_object_get (awq.get (), "n-grid", &n_grid, "enable-subgraph-type", &types, "include", &include,
                nullptr);
  EXPECT_EQ (n_grid, 20);
  EXPECT_EQ (g_strv_length (types), 4u);
  EXPECT_STREQ (include[0], "*");
  g_strfreev (types);
  g_strfreev (include);
  // msModelSlim: neither is distributed; kv_smooth needs the kv cache
  EXPECT_FALSE (slim_processor_supports_distributed (kvp.get ()));
  EXPECT_FALSE (slim_processor_supports_distributed (awq.get ()));
  EXPECT_TRUE (slim_processor_needs_kv_cache (kvp.get ()));
  EXPECT_FALSE (slim_processor_is_data_free (awq.get ()));
  EXPECT_TRUE (slim_processor_can_resume (kvp.get ()));
  EXPECT_TRUE (slim_processor_can_resume (awq.get ()));
}

TEST (AwqKvSmooth, BadConfigsFailWithTheKey)
{
  // property names are spelled with dashes in the range messages
  std::string e = config_error ("type: kv_smooth\nsmooth_factor: 0\n");
  EXPECT_NE (e.find ("smooth_factor must be greater than 0"), std::string::npos) << e;
  e = config_error ("type: kv_smooth\nsmooth_factor: -1\n");
  EXPECT_NE (e.find ("smooth-factor"), std::string::npos) << e;
  EXPECT_NE (e.find ("test.yaml:2:"), std::string::npos) << e;
  e = config_error ("type: kv_smooth\nalpha: 0.5\n");
  EXPECT_NE (e.find ("alpha"), std::string::npos) << e;
  e = config_error ("type: awq\n");
  EXPECT_NE (e.find ("weight-qconfig"), std::string::npos) << e;
  e = config_error ("type: awq\nn_grid: 0\nweight_qconfig: {dtype: int4, scope: per_channel, "
                    "symmetric: true, method: minmax}\n");
  EXPECT_NE (e.find ("n-grid"), std::string::npos) << e;
  e = config_error ("type: awq\nweight_qconfig: {dtype: int4, scope: per_channel, symmetric: "
                    "true, method: ssz}\n");
  EXPECT_NE (e.find ("minmax"), std::string::npos) << e;
  e = config_error ("type: awq\nweight_qconfig: {dtype: int4, scope: per_group, symmetric: "
                    "true, method: minmax}\n");
  EXPECT_NE (e.find ("group_size"), std::string::npos) << e;
  e = config_error (std::string (kAwq4) + "enable_subgraph_type: [qkv]\n");
  EXPECT_NE (e.find ("'qkv'"), std::string::npos) << e;
  e = config_error (std::string (kAwq4) + "alpha: 0.5\n");
  EXPECT_NE (e.find ("alpha"), std::string::npos) << e;
  EXPECT_EQ (config_error ("type: kv_smooth\nsmooth_factor: 2.5\nexclude: ['*layers.0.*']\n"), "");
}

// kv_smooth after the quantizer: q/k_proj are already quantized.
TEST (AwqKvSmooth, KvSmoothAfterTheQuantizerIsAnError)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> q = make (harness_linear_quant_yaml (
      "", "{scope: per_channel, dtype: int8, symmetric: true, method: minmax}"));
  GObjectPtr<SlimProcessor> s = make (kKv);
  ASSERT_TRUE (q && s);
  EXPECT_FALSE (harness_run_model_with (
      model_dir ("tiny-random-mistral"), { q.get (), s.get () },
      [] (SlimModel *, SlimLayer *, GError **) { return true; }, 2, 16, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("already quantized"), std::string::npos)
      << error->message;
  g_clear_error (&error);
}

// A qk_norm layer without k_norm (removed from the loaded layer): the
// fusion has nowhere to go, an error naming the attention.
TEST (AwqKvSmooth, MissingNormIsAnErrorNamingTheAttention)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p = make (kKv);
  ASSERT_TRUE (p);
  Recorder rec;
  GObjectPtr<SlimModel> model (slim_model_open (qwen3_dir ().c_str (), &error));
  ASSERT_TRUE (model);
  ASSERT_TRUE (slim_processor_validate (p.get (), &error));
  ASSERT_TRUE (slim_processor_pre_run (p.get (), model.get (), &error));
  GObjectPtr<SlimLayer> embed (slim_model_load_embed (model.get (), &error));
  GObjectPtr<SlimLayer> layer (slim_model_load_layer (model.get (), 0, &error));
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));
  std::vector<gint32> ids = eval_ids (12, slim_model_get_config (model.get ())->vocab_size);
  gint64 n = (gint64)ids.size ();
  SlimBatch batch = { 1, &n };
  TensorPtr h (slim_model_embed (model.get (), embed.get (), ids.data (), n, &error));
  SlimForwardHooks hooks = {};
  slim_processor_get_forward_hooks (p.get (), layer.get (), &hooks);
  TensorPtr y (
      slim_model_forward_layer (model.get (), layer.get (), h.get (), &batch, &hooks, &error));
  ASSERT_TRUE (y);
  ASSERT_TRUE (slim_layer_remove_tensor (layer.get (), "model.layers.0.self_attn.k_norm.weight"));
  EXPECT_FALSE (slim_processor_postprocess (p.get (), layer.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("model.layers.0.self_attn"), std::string::npos)
      << error->message;
  EXPECT_NE (std::string (error->message).find ("k_norm"), std::string::npos) << error->message;
  g_clear_error (&error);
}

TEST (AwqKvSmooth, StateRoundTrip)
{
  for (const std::string &yaml :
       { std::string ("type: kv_smooth\ninclude: ['*layers.0.*', '*nothing*']\n"),
         std::string (kAwq4) + "include: ['*layers.0.*', '*nothing*']\n" })
    {
      GError *error = nullptr;
      GObjectPtr<SlimProcessor> a = make (yaml);
      ASSERT_TRUE (a);
      ScopedExpectLog unmatched (G_LOG_LEVEL_WARNING, "'*nothing*'");
      ASSERT_TRUE (harness_run_model_with (
          model_dir ("tiny-random-mistral"), { a.get () },
          [] (SlimModel *, SlimLayer *, GError **) { return true; }, 1, 8, &error))
          << (error ? error->message : "");
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
    }
}

} // namespace
