// SPDX-License-Identifier: Apache-2.0
//
// quant-harness.cpp: see quant-harness.hpp.
#include "quant-harness.hpp"

#include "slim-test.h"

#include "recording-processor.h"

extern "C"
{
#include "slim-config-object.h"
#include "slim-config.h"
}

#include <cmath>
#include <fstream>
#include <sstream>

SlimRegistry *
harness_registry ()
{
  static SlimRegistry *registry = nullptr;
  if (registry != nullptr)
    return registry;
  registry = slim_registry_new ();
  const std::string plugins = slim_test_build_dir () + "/plugins/";
  for (const char *file :
       { "processors/slim-processor-linear_quant.so", "processors/slim-processor-pdmix.so",
         "processors/slim-processor-group.so", "processors/slim-processor-smooth_quant.so",
         "processors/slim-processor-iter_smooth.so", "processors/slim-processor-dynamic_cache.so",
         "processors/slim-processor-fa3_quant.so", "processors/slim-processor-float_sparse.so",
         "processors/slim-processor-kv_smooth.so", "processors/slim-processor-awq.so",
         "processors/slim-processor-flex_smooth_quant.so",
         "processors/slim-processor-flex_awq_ssz.so", "processors/slim-processor-quarot.so",
         "processors/slim-processor-online_quarot.so", "savers/slim-saver-ascendv1_saver.so",
         "savers/slim-saver-mindie_format_saver.so", "savers/slim-saver-compressed_tensors.so",
         "savers/slim-saver-hf_gptq_saver.so", "savers/slim-saver-hf_awq_saver.so" })
    {
      GError *error = nullptr;
      if (!slim_registry_load_module (registry, (plugins + file).c_str (), &error))
        {
          ADD_FAILURE () << "cannot load " << file << ": " << error->message;
          g_clear_error (&error);
        }
    }
  GError *error = nullptr;
  if (!slim_registry_add_static (registry, slim_recording_processor_get_desc (), &error))
    {
      ADD_FAILURE () << error->message;
      g_clear_error (&error);
    }
  return registry;
}

GObject *
harness_plugin (SlimPluginKind kind, const std::string &yaml, GError **error)
{
  SlimConfigNode *root = slim_config_parse_data (yaml.data (), yaml.size (), "test.yaml", error);
  if (root == nullptr)
    return nullptr;
  GPtrArray *errors = slim_config_errors_new ();
  GObject *object = slim_config_plugin_new (harness_registry (), kind, root, "entry", errors);
  if (object == nullptr)
    slim_config_errors_propagate (errors, error);
  g_ptr_array_unref (errors);
  slim_config_node_unref (root);
  return object;
}

SlimProcessor *
harness_processor (const std::string &yaml, GError **error)
{
  return SLIM_PROCESSOR (harness_plugin (SLIM_PLUGIN_KIND_PROCESSOR, yaml, error));
}

SlimSaver *
harness_saver (const std::string &yaml, GError **error)
{
  return SLIM_SAVER (harness_plugin (SLIM_PLUGIN_KIND_SAVER, yaml, error));
}

std::string
harness_linear_quant_yaml (const std::string &act,
                           const std::string &weight,
                           const std::string &extra)
{
  std::string yaml = "type: linear_quant\nqconfig:\n";
  if (!act.empty ())
    yaml += "  act: " + act + "\n";
  yaml += "  weight: " + weight + "\n";
  return yaml + extra;
}

std::vector<float>
harness_pattern (size_t n, unsigned seed, float scale)
{
  std::vector<float> v (n);
  for (size_t i = 0; i < n; i++)
    v[i] = scale * (0.1f + 2.0f * std::cos ((float)i * 0.37f + (float)seed));
  return v;
}

SlimLayer *
harness_synthetic_layer (int index, const std::vector<SynthLinear> &linears, unsigned seed)
{
  std::string prefix = "model.layers." + std::to_string (index);
  SlimLayer *layer = slim_layer_new (index, prefix.c_str ());
  unsigned k = 0;
  for (const SynthLinear &l : linears)
    {
      std::vector<float> w = harness_pattern ((size_t)(l.n_out * l.n_in), seed + 11 * k++, 0.05f);
      SlimTensor *t
          = slim_tensor_new_2d ((l.name + ".weight").c_str (), SLIM_DTYPE_F32, l.n_out, l.n_in);
      std::copy (w.begin (), w.end (), (float *)slim_tensor_get_data_mut (t));
      slim_layer_set_tensor (layer, t);
      slim_tensor_unref (t);
      if (l.bias)
        {
          std::vector<float> b = harness_pattern ((size_t)l.n_out, seed + 5 * k, 0.3f);
          SlimTensor *bt
              = slim_tensor_new_1d ((l.name + ".bias").c_str (), SLIM_DTYPE_F32, l.n_out);
          std::copy (b.begin (), b.end (), (float *)slim_tensor_get_data_mut (bt));
          slim_layer_set_tensor (layer, bt);
          slim_tensor_unref (bt);
        }
      slim_layer_add_linear_name (layer, l.name.c_str ());
    }
  SlimTensor *norm
      = slim_tensor_new_1d ((prefix + ".input_layernorm.weight").c_str (), SLIM_DTYPE_F32, 8);
  float *n = (float *)slim_tensor_get_data_mut (norm);
  for (int i = 0; i < 8; i++)
    n[i] = 1.0f + 0.01f * (float)i;
  slim_layer_set_tensor (layer, norm);
  slim_tensor_unref (norm);
  return layer;
}

bool
harness_linear_forward (SlimLayer *layer,
                        const std::string &module,
                        const std::vector<float> &x,
                        int64_t n_tokens,
                        const SlimForwardHooks *hooks,
                        std::vector<float> *y,
                        GError **error)
{
  SlimTensor *w = slim_layer_require_tensor (layer, (module + ".weight").c_str (), error);
  if (w == nullptr)
    return false;
  int64_t n_out = slim_tensor_get_dim (w, 0), n_in = slim_tensor_get_dim (w, 1);
  if ((int64_t)x.size () != n_tokens * n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH, "bad input size");
      return false;
    }
  std::vector<float> xq (x);
  if (hooks != nullptr && hooks->linear_input != nullptr
      && !hooks->linear_input (module.c_str (), xq.data (), n_tokens, n_in, hooks->user_data,
                               error))
    return false;
  SlimTensor *b = slim_layer_get_tensor (layer, (module + ".bias").c_str ());
  const float *wd = (const float *)slim_tensor_get_data (w);
  const float *bd = b != nullptr ? (const float *)slim_tensor_get_data (b) : nullptr;
  y->assign ((size_t)(n_tokens * n_out), 0.0f);
  for (int64_t t = 0; t < n_tokens; t++)
    for (int64_t o = 0; o < n_out; o++)
      {
        double acc = bd != nullptr ? bd[o] : 0.0;
        for (int64_t i = 0; i < n_in; i++)
          acc += (double)xq[t * n_in + i] * wd[o * n_in + i];
        (*y)[t * n_out + o] = (float)acc;
      }
  return true;
}

static gboolean
chain_linear_input (
    const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **error)
{
  HookChain *chain = static_cast<HookChain *> (user_data);
  for (const SlimForwardHooks *h : { &chain->a, &chain->b })
    if (h->linear_input != nullptr
        && !h->linear_input (module, x, n_tokens, n_in, h->user_data, error))
      return FALSE;
  return TRUE;
}

static gboolean
chain_qkv_states (const char *attn,
                  float *q,
                  float *k,
                  float *v,
                  gint64 n_tokens,
                  const SlimModelConfig *config,
                  gpointer user_data,
                  GError **error)
{
  HookChain *chain = static_cast<HookChain *> (user_data);
  for (const SlimForwardHooks *h : { &chain->a, &chain->b })
    if (h->qkv_states != nullptr
        && !h->qkv_states (attn, q, k, v, n_tokens, config, h->user_data, error))
      return FALSE;
  return TRUE;
}

// The first hook that computes the linear's output (an integer record) gives it.
static gboolean
chain_linear_forward (const char *module,
                      const float *x,
                      gint64 n_tokens,
                      gint64 n_in,
                      gint64 n_out,
                      float *y,
                      gboolean *done,
                      gpointer user_data,
                      GError **error)
{
  HookChain *chain = static_cast<HookChain *> (user_data);
  for (const SlimForwardHooks *h : { &chain->a, &chain->b })
    if (!*done && h->linear_forward != nullptr
        && !h->linear_forward (module, x, n_tokens, n_in, n_out, y, done, h->user_data, error))
      return FALSE;
  return TRUE;
}

void
harness_chain_hooks (HookChain *chain, const SlimForwardHooks *a, const SlimForwardHooks *b)
{
  chain->a = *a;
  chain->b = *b;
  chain->hooks = SlimForwardHooks{};
  chain->hooks.linear_input = chain_linear_input;
  chain->hooks.linear_forward = chain_linear_forward;
  chain->hooks.qkv_states = chain_qkv_states;
  chain->hooks.user_data = chain;
}

namespace
{
// One unit (decoder layer or pseudo-layer) through every processor.
bool
process_unit (SlimModel *model,
              SlimLayer *layer,
              const std::vector<SlimProcessor *> &processors,
              std::vector<TensorPtr> *hidden, // per sample, replaced by the layer output
              const std::vector<gint64> &seq_lens,
              GError **error)
{
  const bool decoder = slim_layer_get_index (layer) >= 0;
  bool forwarded = false;
  // every processor's forward runs on the layer's inputs (as slim-schedule.c
  // does); the last data-dependent forward's outputs become the next inputs
  std::vector<TensorPtr> last;
  bool stale = false; // as slim-schedule.c: a refreshing postprocess after the last forward
  for (SlimProcessor *p : processors)
    {
      if (!slim_processor_preprocess (p, layer, error))
        return false;
      if (decoder && !slim_processor_is_data_free (p))
        {
          std::vector<TensorPtr> out;
          for (size_t s = 0; s < hidden->size (); s++)
            {
              SlimForwardHooks deployed, own;
              HookChain chain;
              slim_qlinear_get_deployed_hooks (layer, &deployed);
              slim_processor_get_forward_hooks (p, layer, &own);
              harness_chain_hooks (&chain, &deployed, &own);
              SlimBatch batch = { 1, &seq_lens[s] };
              SlimTensor *y = slim_model_forward_layer (model, layer, (*hidden)[s].get (), &batch,
                                                        &chain.hooks, error);
              if (y == nullptr)
                return false;
              out.emplace_back (y);
            }
          last = std::move (out);
          forwarded = true;
          stale = false;
        }
      if (!slim_processor_postprocess (p, layer, error))
        return false;
      stale = stale || slim_processor_refreshes_outputs (p);
    }
  if (forwarded && !stale)
    *hidden = std::move (last);
  else if (decoder)
    {
      // every processor was data-free, or a postprocess changed the layer
      // after the last forward: the layer as deployed, run on its inputs,
      // gives the next input
      std::vector<TensorPtr> out;
      for (size_t s = 0; s < hidden->size (); s++)
        {
          SlimForwardHooks deployed;
          slim_qlinear_get_deployed_hooks (layer, &deployed);
          SlimBatch batch = { 1, &seq_lens[s] };
          SlimTensor *y = slim_model_forward_layer (model, layer, (*hidden)[s].get (), &batch,
                                                    &deployed, error);
          if (y == nullptr)
            return false;
          out.emplace_back (y);
        }
      *hidden = std::move (out);
    }
  return true;
}
} // namespace

bool
harness_run_model_with (const std::string &model_dir,
                        const std::vector<SlimProcessor *> &processors,
                        const HarnessLayerFunc &on_layer,
                        guint n_samples,
                        gint64 seq_len,
                        GError **error)
{
  GObjectPtr<SlimModel> model (slim_model_open (model_dir.c_str (), error));
  if (!model)
    return false;
  const SlimModelConfig *config = slim_model_get_config (model.get ());
  for (SlimProcessor *p : processors)
    if (!slim_processor_validate (p, error) || !slim_processor_pre_run (p, model.get (), error))
      return false;

  GObjectPtr<SlimLayer> embed (slim_model_load_embed (model.get (), error));
  if (!embed)
    return false;
  std::vector<TensorPtr> hidden;
  std::vector<gint64> seq_lens;
  for (guint s = 0; s < n_samples; s++)
    {
      std::vector<gint32> ids ((size_t)seq_len);
      for (gint64 t = 0; t < seq_len; t++)
        ids[(size_t)t] = (gint32)((1 + 37 * s + 11 * t + (t * t) % 7) % config->vocab_size);
      SlimTensor *h = slim_model_embed (model.get (), embed.get (), ids.data (), seq_len, error);
      if (h == nullptr)
        return false;
      hidden.emplace_back (h);
      seq_lens.push_back (seq_len);
    }
  if (!process_unit (model.get (), embed.get (), processors, &hidden, seq_lens, error)
      || !on_layer (model.get (), embed.get (), error))
    return false;
  embed.reset ();

  for (guint i = 0; i < slim_model_get_n_layers (model.get ()); i++)
    {
      GObjectPtr<SlimLayer> layer (slim_model_load_layer (model.get (), i, error));
      if (!layer || !process_unit (model.get (), layer.get (), processors, &hidden, seq_lens, error)
          || !on_layer (model.get (), layer.get (), error))
        return false;
    }
  GObjectPtr<SlimLayer> head (slim_model_load_head (model.get (), error));
  if (!head || !process_unit (model.get (), head.get (), processors, &hidden, seq_lens, error)
      || !on_layer (model.get (), head.get (), error))
    return false;
  for (SlimProcessor *p : processors)
    if (!slim_processor_post_run (p, error))
      return false;
  return true;
}

bool
harness_run_model (const std::string &model_dir,
                   const std::vector<SlimProcessor *> &processors,
                   const std::vector<SlimSaver *> &savers,
                   const std::string &out_dir,
                   guint n_samples,
                   gint64 seq_len,
                   GError **error)
{
  bool begun = false;
  auto on_layer = [&] (SlimModel *model, SlimLayer *layer, GError **err) -> bool {
    if (!begun)
      {
        for (SlimSaver *s : savers)
          if (!slim_saver_begin (s, model, out_dir.c_str (), err))
            return false;
        begun = true;
      }
    for (SlimSaver *s : savers)
      if (!slim_saver_write_layer (s, layer, err))
        return false;
    return true;
  };
  if (!harness_run_model_with (model_dir, processors, on_layer, n_samples, seq_len, error))
    return false;
  for (SlimSaver *s : savers)
    if (!slim_saver_finish (s, error))
      return false;
  return true;
}

std::string
harness_read_file (const std::string &path)
{
  std::ifstream in (path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf ();
  return ss.str ();
}
