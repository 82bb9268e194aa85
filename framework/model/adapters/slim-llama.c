/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-llama.c: the dense Llama family: llama, mistral, qwen2, qwen3.
 *
 * Per decoder layer (transformers LlamaDecoderLayer and its copies):
 *   h = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),
 *       n1 = input_layernorm(x)
 *   y = h + down_proj(silu(gate_proj(n2)) * up_proj(n2)),
 *       n2 = post_attention_layernorm(h)
 * Differences between members: llama has optional attention_bias (q/k/v/o)
 * and mlp_bias, explicit head_dim and rope_scaling; mistral has neither
 * bias but a sliding window; qwen2 always has q/k/v biases (never o);
 * qwen3 adds per-head RMSNorm q_norm/k_norm before RoPE and defaults
 * head_dim to 128.
 *
 * Structure for smoothing (msModelSlim's Qwen3 adapter):
 * input_layernorm -> q, k, v (norm-linear), v_proj -> o_proj (ov),
 * post_attention_layernorm -> gate, up (norm-linear), up -> down (up-down).
 */
#include <string.h>

#include "slim-decoder.h"
#include "slim-error.h"
#include "slim-linalg.h"
#include "slim-model-adapter.h"

static gboolean
slim_llama_parse_config (const SlimConfigReader *reader, SlimModelConfig *config, GError **error)
{
  const char *type = config->model_type;
  gboolean use_sliding_window = FALSE;

  if (!slim_config_reader_get_int (reader, "intermediate_size", TRUE, 0, 1, SLIM_LINALG_MAX_DIM,
                                   &config->intermediate_size, error))
    return FALSE;

  if (strcmp (type, "llama") == 0)
    {
      if (!slim_config_reader_get_bool (reader, "attention_bias", FALSE, &config->attention_bias,
                                        error)
          || !slim_config_reader_get_bool (reader, "mlp_bias", FALSE, &config->mlp_bias, error))
        return FALSE;
      config->o_proj_bias = config->attention_bias;
    }
  else if (strcmp (type, "mistral") == 0)
    {
      /* MistralAttention and MistralMLP have no biases. */
      if (!slim_config_reader_get_int (reader, "sliding_window", FALSE, 0, 1, G_MAXINT32,
                                       &config->sliding_window, error))
        return FALSE;
    }
  else if (strcmp (type, "qwen2") == 0 || strcmp (type, "qwen3") == 0)
    {
      if (!slim_config_reader_get_bool (reader, "use_sliding_window", FALSE, &use_sliding_window,
                                        error))
        return FALSE;
      if (use_sliding_window)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                       "%s: use_sliding_window = true is not supported for %s", reader->what, type);
          return FALSE;
        }
      if (strcmp (type, "qwen2") == 0)
        {
          config->attention_bias = TRUE; /* q, k, v only */
          config->o_proj_bias = FALSE;
        }
      else
        {
          if (!slim_config_reader_get_bool (reader, "attention_bias", FALSE,
                                            &config->attention_bias, error))
            return FALSE;
          config->o_proj_bias = config->attention_bias;
          config->qk_norm = TRUE;
          if (config->head_dim == 0)
            config->head_dim = 128; /* Qwen3Config's default */
        }
    }
  return TRUE;
}

static void
slim_llama_describe_mlp (const SlimModelConfig *config,
                         const char *prefix,
                         guint index,
                         GArray *specs,
                         GPtrArray *linear_names)
{
  const char *names[] = { "gate_proj", "up_proj", "down_proj" };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      char *module = g_strdup_printf ("%s.mlp.%s", prefix, names[i]);
      gboolean down = i == 2;

      slim_tensor_specs_add (specs, g_strconcat (module, ".weight", NULL),
                             down ? config->hidden_size : config->intermediate_size,
                             down ? config->intermediate_size : config->hidden_size);
      if (config->mlp_bias)
        slim_tensor_specs_add (specs, g_strconcat (module, ".bias", NULL),
                               down ? config->hidden_size : config->intermediate_size, 0);
      g_ptr_array_add (linear_names, module);
    }
}

static gboolean
slim_llama_forward_mlp (const SlimModelConfig *config,
                        SlimLayer *layer,
                        const float *x,
                        float *out,
                        gint64 n_tokens,
                        const SlimForwardHooks *hooks,
                        GError **error)
{
  g_autofree char *mlp = g_strconcat (slim_layer_get_prefix (layer), ".mlp", NULL);

  return slim_decoder_swiglu (layer, mlp, "gate_proj", "up_proj", "down_proj", x, n_tokens,
                              config->hidden_size, config->intermediate_size, out, hooks, error);
}

static void
slim_llama_add_mlp_subgraphs (const SlimModelConfig *config,
                              const char *prefix,
                              guint index,
                              GPtrArray *subgraphs)
{
  g_autofree char *norm = g_strconcat (prefix, ".post_attention_layernorm", NULL);
  g_autofree char *gate = g_strconcat (prefix, ".mlp.gate_proj", NULL);
  g_autofree char *up = g_strconcat (prefix, ".mlp.up_proj", NULL);
  g_autofree char *down = g_strconcat (prefix, ".mlp.down_proj", NULL);
  const char *norm_targets[] = { gate, up, NULL };
  const char *down_targets[] = { down, NULL };

  g_ptr_array_add (subgraphs, slim_subgraph_new (SLIM_SUBGRAPH_NORM_LINEAR, norm, norm_targets));
  g_ptr_array_add (subgraphs, slim_subgraph_new (SLIM_SUBGRAPH_UP_DOWN, up, down_targets));
}

static const char *const slim_llama_model_types[] = { "llama", "mistral", "qwen2", "qwen3", NULL };

static const SlimModelAdapter slim_llama_adapter = {
  .family = "llama",
  .model_types = slim_llama_model_types,
  .parse_config = slim_llama_parse_config,
  .describe_mlp = slim_llama_describe_mlp,
  .forward_mlp = slim_llama_forward_mlp,
  .add_mlp_subgraphs = slim_llama_add_mlp_subgraphs,
};

const SlimModelAdapter *
slim_llama_adapter_get (void)
{
  return &slim_llama_adapter;
}
