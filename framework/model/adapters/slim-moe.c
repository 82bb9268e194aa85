/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-moe.c: Llama-family decoders whose MLP is a mixture of experts:
 * mixtral, qwen2_moe, qwen3_moe.  Attention is the shared one
 * (slim-decoder.c; qwen3_moe with q_norm/k_norm).
 *
 * Routing (transformers MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock):
 *   p = softmax(router(x)) over experts, in float32;
 *   the top_k experts of each token, weights p renormalised to sum 1
 *   (mixtral always; qwen only when norm_topk_prob);
 *   out = sum over chosen experts e of weight_e * expert_e(x)
 *   (+ sigmoid(shared_expert_gate(x)) * shared_expert(x) for qwen2_moe).
 * Each expert runs one sgemm per linear on the tokens routed to it,
 * gathered into a packed block; outputs are added in expert order.
 *
 * Module names: mixtral "block_sparse_moe.gate" and
 * "block_sparse_moe.experts.E.w1/w3/w2" (gate/up/down); qwen "mlp.gate",
 * "mlp.experts.E.gate_proj/up_proj/down_proj", "mlp.shared_expert.*",
 * "mlp.shared_expert_gate".  Qwen layers listed in mlp_only_layers, or
 * not on the decoder_sparse_step grid, have a dense "mlp" instead.
 */
#include <math.h>
#include <string.h>

#include "slim-decoder.h"
#include "slim-error.h"
#include "slim-linalg.h"
#include "slim-model-adapter.h"
#include "slim-model-config.h"

typedef struct
{
  const char *block; /* "block_sparse_moe" or "mlp" */
  const char *gate;  /* expert linears */
  const char *up;
  const char *down;
} SlimMoeNames;

static const SlimMoeNames slim_mixtral_names = { "block_sparse_moe", "w1", "w3", "w2" };
static const SlimMoeNames slim_qwen_moe_names = { "mlp", "gate_proj", "up_proj", "down_proj" };

static const SlimMoeNames *
slim_moe_names (const SlimModelConfig *config)
{
  return strcmp (config->model_type, "mixtral") == 0 ? &slim_mixtral_names : &slim_qwen_moe_names;
}

static gboolean
slim_moe_parse_mlp_only_layers (const SlimConfigReader *reader,
                                SlimModelConfig *config,
                                GError **error)
{
  gint64 sparse_step = 1;
  JsonNode *node = NULL;

  if (!slim_config_reader_get_int (reader, "decoder_sparse_step", FALSE, 1, 1, G_MAXINT32,
                                   &sparse_step, error))
    return FALSE;
  config->layer_is_moe = g_new0 (gboolean, config->n_layers);
  for (gint64 i = 0; i < config->n_layers; i++)
    config->layer_is_moe[i] = (i + 1) % sparse_step == 0;

  if (reader->text != NULL && json_object_has_member (reader->text, "mlp_only_layers"))
    node = json_object_get_member (reader->text, "mlp_only_layers");
  else if (reader->root != NULL && json_object_has_member (reader->root, "mlp_only_layers"))
    node = json_object_get_member (reader->root, "mlp_only_layers");
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    goto bad;
  for (guint i = 0; i < json_array_get_length (json_node_get_array (node)); i++)
    {
      JsonNode *element = json_array_get_element (json_node_get_array (node), i);
      gint64 layer;

      if (!JSON_NODE_HOLDS_VALUE (element) || json_node_get_value_type (element) != G_TYPE_INT64)
        goto bad;
      layer = json_node_get_int (element);
      if (layer < 0 || layer >= config->n_layers)
        goto bad;
      config->layer_is_moe[layer] = FALSE;
    }
  return TRUE;

bad:
  g_set_error (
      error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
      "%s: field 'mlp_only_layers' must be a list of layer indices in 0..%" G_GINT64_FORMAT,
      reader->what, config->n_layers - 1);
  return FALSE;
}

static gboolean
slim_moe_parse_config (const SlimConfigReader *reader, SlimModelConfig *config, GError **error)
{
  const char *type = config->model_type;
  gboolean use_sliding_window = FALSE, any_dense = FALSE;

  if (strcmp (type, "mixtral") == 0)
    {
      if (!slim_config_reader_get_int (reader, "intermediate_size", TRUE, 0, 1, SLIM_LINALG_MAX_DIM,
                                       &config->moe_intermediate_size, error)
          || !slim_config_reader_get_int (reader, "num_local_experts", TRUE, 0, 1,
                                          SLIM_CONFIG_MAX_EXPERTS, &config->n_experts, error)
          || !slim_config_reader_get_int (reader, "num_experts_per_tok", TRUE, 0, 1,
                                          config->n_experts, &config->n_experts_per_tok, error)
          || !slim_config_reader_get_int (reader, "sliding_window", FALSE, 0, 1, G_MAXINT32,
                                          &config->sliding_window, error))
        return FALSE;
      config->intermediate_size = config->moe_intermediate_size;
      config->norm_topk_prob = TRUE;
      config->layer_is_moe = g_new (gboolean, config->n_layers);
      for (gint64 i = 0; i < config->n_layers; i++)
        config->layer_is_moe[i] = TRUE;
      return TRUE;
    }

  /* qwen2_moe, qwen3_moe */
  if (!slim_config_reader_get_int (reader, "num_experts", TRUE, 0, 1, SLIM_CONFIG_MAX_EXPERTS,
                                   &config->n_experts, error)
      || !slim_config_reader_get_int (reader, "num_experts_per_tok", TRUE, 0, 1, config->n_experts,
                                      &config->n_experts_per_tok, error)
      || !slim_config_reader_get_int (reader, "moe_intermediate_size", TRUE, 0, 1,
                                      SLIM_LINALG_MAX_DIM, &config->moe_intermediate_size, error)
      || !slim_config_reader_get_bool (reader, "norm_topk_prob", FALSE, &config->norm_topk_prob,
                                       error)
      || !slim_config_reader_get_bool (reader, "use_sliding_window", FALSE, &use_sliding_window,
                                       error)
      || !slim_moe_parse_mlp_only_layers (reader, config, error))
    return FALSE;
  if (use_sliding_window)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                   "%s: use_sliding_window = true is not supported for %s", reader->what, type);
      return FALSE;
    }
  for (gint64 i = 0; i < config->n_layers; i++)
    any_dense = any_dense || !config->layer_is_moe[i];
  if (!slim_config_reader_get_int (reader, "intermediate_size", any_dense, 0, 1,
                                   SLIM_LINALG_MAX_DIM, &config->intermediate_size, error))
    return FALSE;

  if (strcmp (type, "qwen2_moe") == 0)
    {
      if (!slim_config_reader_get_int (reader, "shared_expert_intermediate_size", TRUE, 0, 1,
                                       SLIM_LINALG_MAX_DIM,
                                       &config->shared_expert_intermediate_size, error))
        return FALSE;
      config->attention_bias = TRUE; /* q, k, v only */
      config->o_proj_bias = FALSE;
    }
  else
    {
      if (!slim_config_reader_get_bool (reader, "attention_bias", FALSE, &config->attention_bias,
                                        error))
        return FALSE;
      config->o_proj_bias = config->attention_bias;
      config->qk_norm = TRUE;
      if (config->head_dim == 0)
        config->head_dim = 128; /* Qwen3MoeConfig's default */
    }
  return TRUE;
}

static void
slim_moe_add_linear (GArray *specs,
                     GPtrArray *linear_names,
                     char *module /* transfer full */,
                     gint64 n_out,
                     gint64 n_in)
{
  slim_tensor_specs_add (specs, g_strconcat (module, ".weight", NULL), n_out, n_in);
  g_ptr_array_add (linear_names, module);
}

static void
slim_moe_describe_mlp (const SlimModelConfig *config,
                       const char *prefix,
                       guint index,
                       GArray *specs,
                       GPtrArray *linear_names)
{
  const SlimMoeNames *names = slim_moe_names (config);
  gint64 hidden = config->hidden_size;
  gint64 inter = config->moe_intermediate_size;

  if (!slim_model_config_layer_is_moe (config, index))
    {
      slim_moe_add_linear (specs, linear_names, g_strdup_printf ("%s.mlp.gate_proj", prefix),
                           config->intermediate_size, hidden);
      slim_moe_add_linear (specs, linear_names, g_strdup_printf ("%s.mlp.up_proj", prefix),
                           config->intermediate_size, hidden);
      slim_moe_add_linear (specs, linear_names, g_strdup_printf ("%s.mlp.down_proj", prefix),
                           hidden, config->intermediate_size);
      return;
    }
  slim_moe_add_linear (specs, linear_names, g_strdup_printf ("%s.%s.gate", prefix, names->block),
                       config->n_experts, hidden);
  for (gint64 e = 0; e < config->n_experts; e++)
    {
      slim_moe_add_linear (specs, linear_names,
                           g_strdup_printf ("%s.%s.experts.%" G_GINT64_FORMAT ".%s", prefix,
                                            names->block, e, names->gate),
                           inter, hidden);
      slim_moe_add_linear (specs, linear_names,
                           g_strdup_printf ("%s.%s.experts.%" G_GINT64_FORMAT ".%s", prefix,
                                            names->block, e, names->up),
                           inter, hidden);
      slim_moe_add_linear (specs, linear_names,
                           g_strdup_printf ("%s.%s.experts.%" G_GINT64_FORMAT ".%s", prefix,
                                            names->block, e, names->down),
                           hidden, inter);
    }
  if (config->shared_expert_intermediate_size > 0)
    {
      gint64 shared = config->shared_expert_intermediate_size;

      slim_moe_add_linear (specs, linear_names,
                           g_strdup_printf ("%s.mlp.shared_expert.gate_proj", prefix), shared,
                           hidden);
      slim_moe_add_linear (specs, linear_names,
                           g_strdup_printf ("%s.mlp.shared_expert.up_proj", prefix), shared,
                           hidden);
      slim_moe_add_linear (specs, linear_names,
                           g_strdup_printf ("%s.mlp.shared_expert.down_proj", prefix), hidden,
                           shared);
      slim_moe_add_linear (specs, linear_names,
                           g_strdup_printf ("%s.mlp.shared_expert_gate", prefix), 1, hidden);
    }
}

static gboolean
slim_moe_forward_mlp (const SlimModelConfig *config,
                      SlimLayer *layer,
                      const float *x,
                      float *out,
                      gint64 n_tokens,
                      const SlimForwardHooks *hooks,
                      GError **error)
{
  const SlimMoeNames *names = slim_moe_names (config);
  const char *prefix = slim_layer_get_prefix (layer);
  gint64 hidden = config->hidden_size;
  gint64 n_experts = config->n_experts;
  gint64 top_k = config->n_experts_per_tok;
  g_autofree char *block = g_strdup_printf ("%s.%s", prefix, names->block);
  g_autofree char *router = g_strconcat (block, ".gate", NULL);
  g_autofree float *probs = NULL;   /* (n_tokens, n_experts) */
  g_autofree gint32 *chosen = NULL; /* (n_tokens, top_k) */
  g_autofree float *weights = NULL; /* (n_tokens, top_k) */
  g_autofree gint64 *rows = NULL;   /* (n_tokens) tokens routed to the current expert */
  g_autofree float *row_w = NULL;   /* (n_tokens) their routing weights */
  g_autofree float *x_e = NULL;     /* (n_tokens, hidden) gathered inputs */
  g_autofree float *y_e = NULL;     /* (n_tokens, hidden) expert outputs */

  if (!slim_model_config_layer_is_moe (config, (guint)slim_layer_get_index (layer)))
    {
      g_autofree char *mlp = g_strconcat (prefix, ".mlp", NULL);

      return slim_decoder_swiglu (layer, mlp, "gate_proj", "up_proj", "down_proj", x, n_tokens,
                                  hidden, config->intermediate_size, out, hooks, error);
    }

  probs = g_new (float, MAX (n_tokens * n_experts, 1));
  chosen = g_new (gint32, MAX (n_tokens * top_k, 1));
  weights = g_new (float, MAX (n_tokens * top_k, 1));
  if (!slim_decoder_linear (layer, router, x, n_tokens, hidden, n_experts, probs, hooks, error))
    return FALSE;
  slim_decoder_route_topk (probs, n_tokens, n_experts, top_k, config->norm_topk_prob, chosen,
                           weights);
  g_clear_pointer (&probs, g_free);

  rows = g_new (gint64, MAX (n_tokens, 1));
  row_w = g_new (float, MAX (n_tokens, 1));
  x_e = g_new (float, MAX (n_tokens * hidden, 1));
  y_e = g_new (float, MAX (n_tokens * hidden, 1));
  memset (out, 0, (gsize)(n_tokens * hidden) * sizeof (float));
  for (gint64 e = 0; e < n_experts; e++)
    {
      g_autofree char *expert = g_strdup_printf ("%s.experts.%" G_GINT64_FORMAT, block, e);
      gint64 n_rows = 0;

      for (gint64 t = 0; t < n_tokens; t++)
        for (gint64 r = 0; r < top_k; r++)
          if (chosen[t * top_k + r] == e)
            {
              rows[n_rows] = t;
              row_w[n_rows] = weights[t * top_k + r];
              n_rows++;
            }
      /* An expert no token chose does not run (its hooks see nothing). */
      if (n_rows == 0)
        continue;
      for (gint64 i = 0; i < n_rows; i++)
        memcpy (x_e + i * hidden, x + rows[i] * hidden, (gsize)hidden * sizeof (float));
      if (!slim_decoder_swiglu (layer, expert, names->gate, names->up, names->down, x_e, n_rows,
                                hidden, config->moe_intermediate_size, y_e, hooks, error))
        return FALSE;
      for (gint64 i = 0; i < n_rows; i++)
        {
          float *out_t = out + rows[i] * hidden;
          const float *y_i = y_e + i * hidden;

          for (gint64 j = 0; j < hidden; j++)
            out_t[j] += row_w[i] * y_i[j];
        }
    }

  if (config->shared_expert_intermediate_size > 0)
    {
      g_autofree char *shared = g_strconcat (prefix, ".mlp.shared_expert", NULL);
      g_autofree char *shared_gate = g_strconcat (prefix, ".mlp.shared_expert_gate", NULL);
      g_autofree float *gate = g_new (float, MAX (n_tokens, 1)); /* (n_tokens, 1) */

      if (!slim_decoder_swiglu (layer, shared, "gate_proj", "up_proj", "down_proj", x, n_tokens,
                                hidden, config->shared_expert_intermediate_size, y_e, hooks, error)
          || !slim_decoder_linear (layer, shared_gate, x, n_tokens, hidden, 1, gate, hooks, error))
        return FALSE;
      for (gint64 t = 0; t < n_tokens; t++)
        {
          float g = 1.0f / (1.0f + expf (-gate[t]));

          for (gint64 j = 0; j < hidden; j++)
            out[t * hidden + j] += g * y_e[t * hidden + j];
        }
    }
  return TRUE;
}

static void
slim_moe_add_mlp_subgraphs (const SlimModelConfig *config,
                            const char *prefix,
                            guint index,
                            GPtrArray *subgraphs)
{
  const SlimMoeNames *names = slim_moe_names (config);
  g_autofree char *norm = g_strconcat (prefix, ".post_attention_layernorm", NULL);
  g_autoptr (GPtrArray) targets = g_ptr_array_new_with_free_func (g_free);

  if (!slim_model_config_layer_is_moe (config, index))
    {
      g_autofree char *gate = g_strconcat (prefix, ".mlp.gate_proj", NULL);
      g_autofree char *up = g_strconcat (prefix, ".mlp.up_proj", NULL);
      g_autofree char *down = g_strconcat (prefix, ".mlp.down_proj", NULL);
      const char *norm_targets[] = { gate, up, NULL };
      const char *down_targets[] = { down, NULL };

      g_ptr_array_add (subgraphs,
                       slim_subgraph_new (SLIM_SUBGRAPH_NORM_LINEAR, norm, norm_targets));
      g_ptr_array_add (subgraphs, slim_subgraph_new (SLIM_SUBGRAPH_UP_DOWN, up, down_targets));
      return;
    }

  /* Every consumer of the normed state must take the norm's scale: the
   * router first (it sees every token, so its input statistics stand for
   * the whole subgraph), then each expert's gate and up, then the shared
   * expert and its gate. */
  g_ptr_array_add (targets, g_strdup_printf ("%s.%s.gate", prefix, names->block));
  for (gint64 e = 0; e < config->n_experts; e++)
    {
      g_ptr_array_add (targets, g_strdup_printf ("%s.%s.experts.%" G_GINT64_FORMAT ".%s", prefix,
                                                 names->block, e, names->gate));
      g_ptr_array_add (targets, g_strdup_printf ("%s.%s.experts.%" G_GINT64_FORMAT ".%s", prefix,
                                                 names->block, e, names->up));
    }
  if (config->shared_expert_intermediate_size > 0)
    {
      g_ptr_array_add (targets, g_strdup_printf ("%s.mlp.shared_expert.gate_proj", prefix));
      g_ptr_array_add (targets, g_strdup_printf ("%s.mlp.shared_expert.up_proj", prefix));
      g_ptr_array_add (targets, g_strdup_printf ("%s.mlp.shared_expert_gate", prefix));
    }
  g_ptr_array_add (targets, NULL);
  g_ptr_array_add (subgraphs, slim_subgraph_new (SLIM_SUBGRAPH_NORM_LINEAR, norm,
                                                 (const char *const *)targets->pdata));

  for (gint64 e = 0; e <= config->n_experts; e++)
    {
      g_autofree char *up = NULL;
      g_autofree char *down = NULL;
      const char *down_targets[2] = { NULL, NULL };

      if (e < config->n_experts)
        {
          up = g_strdup_printf ("%s.%s.experts.%" G_GINT64_FORMAT ".%s", prefix, names->block, e,
                                names->up);
          down = g_strdup_printf ("%s.%s.experts.%" G_GINT64_FORMAT ".%s", prefix, names->block, e,
                                  names->down);
        }
      else if (config->shared_expert_intermediate_size > 0)
        {
          up = g_strdup_printf ("%s.mlp.shared_expert.up_proj", prefix);
          down = g_strdup_printf ("%s.mlp.shared_expert.down_proj", prefix);
        }
      else
        break;
      down_targets[0] = down;
      g_ptr_array_add (subgraphs, slim_subgraph_new (SLIM_SUBGRAPH_UP_DOWN, up, down_targets));
    }
}

static const char *const slim_moe_model_types[] = { "mixtral", "qwen2_moe", "qwen3_moe", NULL };

static const SlimModelAdapter slim_moe_adapter = {
  .family = "moe",
  .model_types = slim_moe_model_types,
  .parse_config = slim_moe_parse_config,
  .describe_mlp = slim_moe_describe_mlp,
  .forward_mlp = slim_moe_forward_mlp,
  .add_mlp_subgraphs = slim_moe_add_mlp_subgraphs,
};

const SlimModelAdapter *
slim_moe_adapter_get (void)
{
  return &slim_moe_adapter;
}
