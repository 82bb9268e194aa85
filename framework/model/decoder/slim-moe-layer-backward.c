/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-moe-layer-backward.c: forward with a tape and reverse-mode backward
 * of a mixture-of-experts decoder layer (see slim-moe-layer-backward.h).
 */
#include "slim-moe-layer-backward.h"

#include <math.h>
#include <string.h>

#include "slim-decoder-backward.h"
#include "slim-error.h"
#include "slim-linalg.h"

static const char *
slim_moe_block (const SlimModelConfig *config)
{
  return strcmp (config->model_type, "mixtral") == 0 ? "block_sparse_moe" : "mlp";
}

static gboolean
slim_moe_is_mixtral (const SlimModelConfig *config)
{
  return strcmp (config->model_type, "mixtral") == 0;
}

gint64
slim_moe_layer_n_linears (const SlimModelConfig *config)
{
  return SLIM_MOE_LINEAR_FIRST_EXPERT + 3 * config->n_experts
         + (config->shared_expert_intermediate_size > 0 ? 4 : 0);
}

char *
slim_moe_layer_linear_name (const SlimModelConfig *config, gint64 i)
{
  static const char *const attn[4]
      = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj" };
  static const char *const mixtral[3] = { "w1", "w3", "w2" };
  static const char *const qwen[3] = { "gate_proj", "up_proj", "down_proj" };
  gint64 e = (i - SLIM_MOE_LINEAR_FIRST_EXPERT) / 3;

  if (i < 4)
    return g_strdup (attn[i]);
  if (i == SLIM_MOE_LINEAR_ROUTER)
    return g_strconcat (slim_moe_block (config), ".gate", NULL);
  if (e < config->n_experts)
    return g_strdup_printf ("%s.experts.%" G_GINT64_FORMAT ".%s", slim_moe_block (config), e,
                            (slim_moe_is_mixtral (config) ? mixtral : qwen)[(i - 5) % 3]);
  if (i - SLIM_MOE_LINEAR_FIRST_EXPERT - 3 * config->n_experts < 3)
    return g_strconcat ("mlp.shared_expert.", qwen[(i - 5) % 3], NULL);
  return g_strdup ("mlp.shared_expert_gate");
}

void
slim_moe_layer_linear_shape (const SlimModelConfig *config, gint64 i, gint64 *n_out, gint64 *n_in)
{
  gint64 h = config->hidden_size, q = config->n_heads * config->head_dim;
  gint64 kv = config->n_kv_heads * config->head_dim;
  gint64 e = (i - SLIM_MOE_LINEAR_FIRST_EXPERT) / 3;
  gint64 inter = e < config->n_experts ? config->moe_intermediate_size
                                       : config->shared_expert_intermediate_size;

  if (i == 0 || i == 3)
    *n_out = i == 0 ? q : h, *n_in = i == 0 ? h : q;
  else if (i < 3)
    *n_out = kv, *n_in = h;
  else if (i == SLIM_MOE_LINEAR_ROUTER)
    *n_out = config->n_experts, *n_in = h;
  else if (i == slim_moe_layer_n_linears (config) - 1
           && config->shared_expert_intermediate_size > 0)
    *n_out = 1, *n_in = h;
  else if ((i - SLIM_MOE_LINEAR_FIRST_EXPERT) % 3 == 2)
    *n_out = h, *n_in = inter;
  else
    *n_out = inter, *n_in = h;
}

static gboolean
slim_moe_vector (SlimLayer *layer,
                 const char *prefix,
                 const char *norm,
                 gint64 n,
                 const float **weight,
                 const float **bias,
                 GError **error)
{
  g_autofree char *weight_name = g_strconcat (prefix, ".", norm, ".weight", NULL);
  g_autofree char *bias_name = g_strconcat (prefix, ".", norm, ".bias", NULL);

  *weight = slim_decoder_get_vector (layer, weight_name, n, error);
  if (*weight == NULL)
    return FALSE;
  *bias = NULL;
  if (slim_layer_get_tensor (layer, bias_name) == NULL)
    return TRUE;
  if (bias == NULL)
    return TRUE;
  *bias = slim_decoder_get_vector (layer, bias_name, n, error);
  return *bias != NULL;
}

gboolean
slim_moe_layer_weights_init (SlimMoeLayerWeights *weights,
                             const SlimModelConfig *config,
                             SlimLayer *layer,
                             GError **error)
{
  const char *prefix = slim_layer_get_prefix (layer);
  gint64 hidden = config->hidden_size;

  memset (weights, 0, sizeof (*weights));
  if (!slim_model_config_layer_is_moe (config, (guint)MAX (slim_layer_get_index (layer), 0)))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                   "%s: not a mixture-of-experts layer", prefix);
      return FALSE;
    }
  if (!slim_moe_vector (layer, prefix, "input_layernorm", hidden, &weights->input_norm,
                        &weights->input_norm_bias, error)
      || !slim_moe_vector (layer, prefix, "post_attention_layernorm", hidden, &weights->post_norm,
                           &weights->post_norm_bias, error))
    return FALSE;
  if (config->qk_norm)
    {
      const float *q_bias = NULL, *k_bias = NULL;

      if (!slim_moe_vector (layer, prefix, "self_attn.q_norm", config->head_dim, &weights->q_norm,
                            &q_bias, error)
          || !slim_moe_vector (layer, prefix, "self_attn.k_norm", config->head_dim,
                               &weights->k_norm, &k_bias, error))
        return FALSE;
      if (q_bias != NULL || k_bias != NULL)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                       "%s: the layer backward does not support a bias on q_norm / k_norm", prefix);
          return FALSE;
        }
    }
  weights->n_linears = slim_moe_layer_n_linears (config);
  weights->linears = g_new0 (SlimLinearWeights, weights->n_linears);
  weights->zero = g_new0 (float, hidden);
  for (gint64 i = 0; i < weights->n_linears; i++)
    {
      g_autofree char *name = slim_moe_layer_linear_name (config, i);
      g_autofree char *module = g_strconcat (prefix, ".", name, NULL);
      gint64 n_out, n_in;

      if (slim_decoder_has_online_rotation (layer, module))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s has an online rotation (quarot online: true); the MoE layer's "
                       "forward/backward pass (autoround) does not support it",
                       module);
          slim_moe_layer_weights_clear (weights);
          return FALSE;
        }
      slim_moe_layer_linear_shape (config, i, &n_out, &n_in);
      weights->linears[i].weight
          = slim_decoder_get_weight (layer, module, n_out, n_in, &weights->linears[i].bias, error);
      if (weights->linears[i].weight == NULL)
        {
          slim_moe_layer_weights_clear (weights);
          return FALSE;
        }
    }
  return TRUE;
}

void
slim_moe_layer_weights_clear (SlimMoeLayerWeights *weights)
{
  g_clear_pointer (&weights->linears, g_free);
  g_clear_pointer (&weights->zero, g_free);
  weights->n_linears = 0;
}

/* ---- the new ops ------------------------------------------------------- */

void
slim_moe_route_backward (const float *probs,
                         const gint32 *chosen,
                         const float *weights,
                         const float *dweights,
                         gint64 n_tokens,
                         gint64 n_experts,
                         gint64 top_k,
                         gboolean normalize,
                         float *dlogits)
{
  for (gint64 t = 0; t < n_tokens; t++)
    {
      const float *p = probs + t * n_experts;   /* (E) */
      const gint32 *e_t = chosen + t * top_k;   /* (K) */
      const float *w_t = weights + t * top_k;   /* (K) */
      const float *dw_t = dweights + t * top_k; /* (K) */
      float *dz = dlogits + t * n_experts;      /* (E) */
      double top_sum = 0.0, dot_w = 0.0, dot_p = 0.0;

      memset (dz, 0, (gsize)n_experts * sizeof (float));
      for (gint64 r = 0; r < top_k; r++)
        {
          top_sum += p[e_t[r]];
          dot_w += (double)dw_t[r] * w_t[r];
        }
      /* dL/dp of the chosen experts (w = p / S: (dw - <dw, w>) / S), kept in dz */
      for (gint64 r = 0; r < top_k; r++)
        dz[e_t[r]] = normalize ? (float)(((double)dw_t[r] - dot_w) / top_sum) : dw_t[r];
      /* softmax: dz_e = p_e (dp_e - <dp, p>) */
      for (gint64 e = 0; e < n_experts; e++)
        dot_p += (double)dz[e] * p[e];
      for (gint64 e = 0; e < n_experts; e++)
        dz[e] = (float)((double)p[e] * ((double)dz[e] - dot_p));
    }
}

void
slim_moe_sigmoid_gate_forward (
    const float *logit, const float *y, gint64 n_tokens, gint64 n, float *out)
{
  for (gint64 t = 0; t < n_tokens; t++)
    {
      float g = 1.0f / (1.0f + expf (-logit[t]));

      for (gint64 j = 0; j < n; j++)
        out[t * n + j] += g * y[t * n + j];
    }
}

void
slim_moe_sigmoid_gate_backward (const float *logit,
                                const float *y,
                                const float *dout,
                                gint64 n_tokens,
                                gint64 n,
                                float *dy,
                                float *dlogit)
{
  for (gint64 t = 0; t < n_tokens; t++)
    {
      float g = 1.0f / (1.0f + expf (-logit[t]));
      double dot = 0.0;

      for (gint64 j = 0; j < n; j++)
        {
          dot += (double)dout[t * n + j] * y[t * n + j];
          dy[t * n + j] = g * dout[t * n + j];
        }
      dlogit[t] = (float)(dot * (double)g * (1.0 - (double)g));
    }
}

/* ---- forward ----------------------------------------------------------- */

static float *
slim_moe_new (gint64 n_rows, gint64 n_cols)
{
  return g_new (float, MAX (n_rows * n_cols, 1));
}

/* What linear w reads: x, or its per-token fake-quantized copy (kept). */
static const float *
slim_moe_linear_input (
    const SlimLinearWeights *w, const float *x, gint64 n_rows, gint64 n_in, float **keep)
{
  if (w->act == NULL)
    return x;
  *keep = slim_moe_new (n_rows, n_in);
  slim_fake_quantize_rows_dynamic (w->act, x, n_rows, n_in, *keep);
  return *keep;
}

/* tape->x (R, H) set: runs down(silu(gate(x)) * up(x)) into tape->y. */
static void
slim_moe_swiglu_forward (const SlimLinearWeights *w, /* [3] gate, up, down */
                         gint64 hidden,
                         gint64 inter,
                         SlimMoeSwigluTape *tape)
{
  gint64 r = tape->n_rows;

  tape->gate = slim_moe_new (r, inter);
  tape->up = slim_moe_new (r, inter);
  slim_linalg_linear (slim_moe_linear_input (&w[0], tape->x, r, hidden, &tape->gate_in),
                      w[0].weight, w[0].bias, tape->gate, r, hidden, inter);
  slim_linalg_linear (slim_moe_linear_input (&w[1], tape->x, r, hidden, &tape->up_in), w[1].weight,
                      w[1].bias, tape->up, r, hidden, inter);
  tape->act = g_memdup2 (tape->gate, (gsize)MAX (r * inter, 1) * sizeof (float));
  slim_decoder_silu_mul (tape->act, tape->up, (gsize)(r * inter));
  tape->y = slim_moe_new (r, hidden);
  slim_linalg_linear (slim_moe_linear_input (&w[2], tape->act, r, inter, &tape->down_in),
                      w[2].weight, w[2].bias, tape->y, r, inter, hidden);
}

static void
slim_moe_swiglu_tape_clear (SlimMoeSwigluTape *tape)
{
  g_clear_pointer (&tape->x, g_free);
  g_clear_pointer (&tape->gate_in, g_free);
  g_clear_pointer (&tape->up_in, g_free);
  g_clear_pointer (&tape->gate, g_free);
  g_clear_pointer (&tape->up, g_free);
  g_clear_pointer (&tape->act, g_free);
  g_clear_pointer (&tape->down_in, g_free);
  g_clear_pointer (&tape->y, g_free);
  g_clear_pointer (&tape->rows, g_free);
  g_clear_pointer (&tape->row_w, g_free);
  g_clear_pointer (&tape->slot, g_free);
  tape->n_rows = 0;
}

void
slim_moe_layer_forward (const SlimModelConfig *config,
                        const SlimMoeLayerWeights *w,
                        const SlimBatch *batch,
                        const float *x,
                        SlimMoeLayerTape *tape)
{
  SlimDenseLayerWeights attn = { 0 };
  gint64 hidden = config->hidden_size;
  gint64 n_experts = config->n_experts, top_k = config->n_experts_per_tok;
  gint64 inter = config->moe_intermediate_size;
  const SlimLinearWeights *router = &w->linears[SLIM_MOE_LINEAR_ROUTER];
  const float *n2;
  gint64 T;
  g_autofree float *out = NULL; /* (T, H) the MoE block's output */

  slim_moe_layer_tape_clear (tape);
  tape->attn_config = *config;
  tape->attn_config.intermediate_size = 1;
  attn.input_norm = w->input_norm;
  attn.input_norm_bias = w->input_norm_bias;
  attn.post_norm = w->post_norm;
  attn.post_norm_bias = w->post_norm_bias;
  attn.q_norm = w->q_norm;
  attn.k_norm = w->k_norm;
  attn.q = w->linears[0];
  attn.k = w->linears[1];
  attn.v = w->linears[2];
  attn.o = w->linears[3];
  /* the 1-wide zero MLP: gate, up (1, H), down (H, 1) */
  attn.gate.weight = attn.up.weight = attn.down.weight = w->zero;
  slim_dense_layer_forward (&tape->attn_config, &attn, batch, x, &tape->attn);
  T = tape->n_tokens = tape->attn.n_tokens;
  n2 = tape->attn.n2;

  /* router, as slim_moe_forward_mlp */
  tape->probs = slim_moe_new (T, n_experts);
  tape->chosen = g_new (gint32, MAX (T * top_k, 1));
  tape->weights = slim_moe_new (T, top_k);
  slim_linalg_linear (slim_moe_linear_input (router, n2, T, hidden, &tape->router_in),
                      router->weight, router->bias, tape->probs, T, hidden, n_experts);
  slim_decoder_route_topk (tape->probs, T, n_experts, top_k, config->norm_topk_prob, tape->chosen,
                           tape->weights);

  out = slim_moe_new (T, hidden);
  memset (out, 0, (gsize)(T * hidden) * sizeof (float));
  tape->experts = g_new0 (SlimMoeSwigluTape, n_experts);
  for (gint64 e = 0; e < n_experts; e++)
    {
      SlimMoeSwigluTape *et = &tape->experts[e];
      gint64 n_rows = 0;

      for (gint64 t = 0; t < T; t++)
        for (gint64 r = 0; r < top_k; r++)
          n_rows += tape->chosen[t * top_k + r] == e;
      if (n_rows == 0)
        continue;
      et->rows = g_new (gint64, n_rows);
      et->row_w = g_new (float, n_rows);
      et->slot = g_new (gint32, n_rows);
      et->x = slim_moe_new (n_rows, hidden);
      for (gint64 t = 0; t < T; t++)
        for (gint64 r = 0; r < top_k; r++)
          if (tape->chosen[t * top_k + r] == e)
            {
              et->rows[et->n_rows] = t;
              et->row_w[et->n_rows] = tape->weights[t * top_k + r];
              et->slot[et->n_rows] = (gint32)r;
              memcpy (et->x + et->n_rows * hidden, n2 + t * hidden, (gsize)hidden * sizeof (float));
              et->n_rows++;
            }
      slim_moe_swiglu_forward (&w->linears[SLIM_MOE_LINEAR_FIRST_EXPERT + 3 * e], hidden, inter,
                               et);
      for (gint64 i = 0; i < n_rows; i++)
        {
          float *out_t = out + et->rows[i] * hidden;
          const float *y_i = et->y + i * hidden;

          for (gint64 j = 0; j < hidden; j++)
            out_t[j] += et->row_w[i] * y_i[j];
        }
    }

  if (config->shared_expert_intermediate_size > 0)
    {
      gint64 first = SLIM_MOE_LINEAR_FIRST_EXPERT + 3 * n_experts;
      const SlimLinearWeights *sg = &w->linears[first + 3];

      tape->shared.n_rows = T;
      tape->shared.x = g_memdup2 (n2, (gsize)MAX (T * hidden, 1) * sizeof (float));
      slim_moe_swiglu_forward (&w->linears[first], hidden, config->shared_expert_intermediate_size,
                               &tape->shared);
      tape->shared_logit = slim_moe_new (T, 1);
      slim_linalg_linear (slim_moe_linear_input (sg, n2, T, hidden, &tape->shared_gate_in),
                          sg->weight, sg->bias, tape->shared_logit, T, hidden, 1);
      slim_moe_sigmoid_gate_forward (tape->shared_logit, tape->shared.y, T, hidden, out);
    }

  /* y = h + out, as slim_model_forward_layer */
  tape->y = slim_moe_new (T, hidden);
  for (gint64 i = 0; i < T * hidden; i++)
    tape->y[i] = tape->attn.y[i] + out[i];
}

void
slim_moe_layer_tape_clear (SlimMoeLayerTape *tape)
{
  slim_dense_layer_tape_clear (&tape->attn);
  if (tape->experts != NULL)
    for (gint64 e = 0; e < tape->attn_config.n_experts; e++)
      slim_moe_swiglu_tape_clear (&tape->experts[e]);
  g_clear_pointer (&tape->experts, g_free);
  slim_moe_swiglu_tape_clear (&tape->shared);
  g_clear_pointer (&tape->router_in, g_free);
  g_clear_pointer (&tape->probs, g_free);
  g_clear_pointer (&tape->chosen, g_free);
  g_clear_pointer (&tape->weights, g_free);
  g_clear_pointer (&tape->shared_gate_in, g_free);
  g_clear_pointer (&tape->shared_logit, g_free);
  g_clear_pointer (&tape->y, g_free);
  tape->n_tokens = 0;
}

/* ---- backward ---------------------------------------------------------- */

#define SLIM_MOE_INPUT(kept, fallback) ((kept) != NULL ? (kept) : (fallback))

static SlimLinearGrads *
slim_moe_grad (const SlimMoeLayerGrads *grads, gint64 i)
{
  static SlimLinearGrads none = { NULL, NULL };

  return grads->linears != NULL ? &grads->linears[i] : &none;
}

/* dy (R, H) -> dx (R, H) written, weight gradients accumulated. */
static void
slim_moe_swiglu_backward (const SlimLinearWeights *w, /* [3] */
                          const SlimMoeSwigluTape *tape,
                          const float *dy,
                          gint64 hidden,
                          gint64 inter,
                          float *dx,
                          SlimLinearGrads *const *g /* [3] */)
{
  gint64 r = tape->n_rows;
  g_autofree float *dgate = slim_moe_new (r, inter); /* (R, I) dL/dact, then dL/dgate */
  g_autofree float *dup = slim_moe_new (r, inter);   /* (R, I) */

  slim_backward_linear (SLIM_MOE_INPUT (tape->down_in, tape->act), w[2].weight, dy, r, inter,
                        hidden, dgate, FALSE, g[2]->weight, g[2]->bias);
  slim_backward_silu_mul (tape->gate, tape->up, dgate, dgate, dup, (gsize)(r * inter));
  slim_backward_linear (SLIM_MOE_INPUT (tape->gate_in, tape->x), w[0].weight, dgate, r, hidden,
                        inter, dx, FALSE, g[0]->weight, g[0]->bias);
  slim_backward_linear (SLIM_MOE_INPUT (tape->up_in, tape->x), w[1].weight, dup, r, hidden, inter,
                        dx, TRUE, g[1]->weight, g[1]->bias);
}

void
slim_moe_layer_backward (const SlimModelConfig *config,
                         const SlimMoeLayerWeights *w,
                         const SlimMoeLayerTape *tape,
                         const float *dy,
                         const SlimMoeLayerGrads *grads)
{
  gint64 T = tape->n_tokens, hidden = config->hidden_size;
  gint64 n_experts = config->n_experts, top_k = config->n_experts_per_tok;
  gint64 inter = config->moe_intermediate_size;
  float eps = (float)config->rms_norm_eps;
  const float *n2 = tape->attn.n2;
  g_autofree float *dn2 = slim_moe_new (T, hidden);        /* (T, H) dL/dn2 */
  g_autofree float *dh = slim_moe_new (T, hidden);         /* (T, H) dL/dh */
  g_autofree float *dw = slim_moe_new (T, top_k);          /* (T, K) dL/d(routing weights) */
  g_autofree float *dlogits = slim_moe_new (T, n_experts); /* (T, E) */
  SlimDenseLayerWeights attn = { 0 };
  SlimDenseLayerGrads attn_grads = { 0 };

  g_return_if_fail (tape->y != NULL);
  memset (dn2, 0, (gsize)(T * hidden) * sizeof (float));

  /* experts: out_t += w_{t,r} y_e,i */
  for (gint64 e = 0; e < n_experts; e++)
    {
      const SlimMoeSwigluTape *et = &tape->experts[e];
      gint64 first = SLIM_MOE_LINEAR_FIRST_EXPERT + 3 * e;
      SlimLinearGrads *g[3] = { slim_moe_grad (grads, first), slim_moe_grad (grads, first + 1),
                                slim_moe_grad (grads, first + 2) };
      g_autofree float *dy_e = NULL; /* (R, H) */
      g_autofree float *dx_e = NULL; /* (R, H) */

      if (et->n_rows == 0)
        continue;
      dy_e = slim_moe_new (et->n_rows, hidden);
      dx_e = slim_moe_new (et->n_rows, hidden);
      for (gint64 i = 0; i < et->n_rows; i++)
        {
          const float *d_t = dy + et->rows[i] * hidden;
          const float *y_i = et->y + i * hidden;
          double dot = 0.0;

          for (gint64 j = 0; j < hidden; j++)
            {
              dy_e[i * hidden + j] = et->row_w[i] * d_t[j];
              dot += (double)d_t[j] * y_i[j];
            }
          dw[et->rows[i] * top_k + et->slot[i]] = (float)dot;
        }
      slim_moe_swiglu_backward (&w->linears[first], et, dy_e, hidden, inter, dx_e, g);
      for (gint64 i = 0; i < et->n_rows; i++)
        slim_backward_add (dn2 + et->rows[i] * hidden, dx_e + i * hidden, (gsize)hidden);
    }

  /* router: the chosen weights' gradient through top-k and softmax */
  {
    const SlimLinearWeights *router = &w->linears[SLIM_MOE_LINEAR_ROUTER];
    SlimLinearGrads *g = slim_moe_grad (grads, SLIM_MOE_LINEAR_ROUTER);

    slim_moe_route_backward (tape->probs, tape->chosen, tape->weights, dw, T, n_experts, top_k,
                             config->norm_topk_prob, dlogits);
    slim_backward_linear (SLIM_MOE_INPUT (tape->router_in, n2), router->weight, dlogits, T, hidden,
                          n_experts, dn2, TRUE, g->weight, g->bias);
  }

  if (config->shared_expert_intermediate_size > 0)
    {
      gint64 first = SLIM_MOE_LINEAR_FIRST_EXPERT + 3 * n_experts;
      SlimLinearGrads *g[3] = { slim_moe_grad (grads, first), slim_moe_grad (grads, first + 1),
                                slim_moe_grad (grads, first + 2) };
      SlimLinearGrads *gg = slim_moe_grad (grads, first + 3);
      g_autofree float *dsy = slim_moe_new (T, hidden); /* (T, H) */
      g_autofree float *dsx = slim_moe_new (T, hidden); /* (T, H) */
      g_autofree float *dlogit = slim_moe_new (T, 1);   /* (T) */

      slim_moe_sigmoid_gate_backward (tape->shared_logit, tape->shared.y, dy, T, hidden, dsy,
                                      dlogit);
      slim_moe_swiglu_backward (&w->linears[first], &tape->shared, dsy, hidden,
                                config->shared_expert_intermediate_size, dsx, g);
      slim_backward_add (dn2, dsx, (gsize)(T * hidden));
      slim_backward_linear (SLIM_MOE_INPUT (tape->shared_gate_in, n2), w->linears[first + 3].weight,
                            dlogit, T, hidden, 1, dn2, TRUE, gg->weight, gg->bias);
    }

  /* n2 = post_norm(h); y = h + moe(n2) */
  slim_backward_rmsnorm (tape->attn.h, w->post_norm, eps, dn2, dn2, grads->post_norm,
                         grads->post_norm_bias, T, hidden);
  for (gint64 i = 0; i < T * hidden; i++)
    dh[i] = dy[i] + dn2[i];

  /* the attention half: its zero MLP passes dh through unchanged */
  attn.input_norm = w->input_norm;
  attn.input_norm_bias = w->input_norm_bias;
  attn.post_norm = w->post_norm;
  attn.post_norm_bias = w->post_norm_bias;
  attn.q_norm = w->q_norm;
  attn.k_norm = w->k_norm;
  attn.q = w->linears[0];
  attn.k = w->linears[1];
  attn.v = w->linears[2];
  attn.o = w->linears[3];
  attn.gate.weight = attn.up.weight = attn.down.weight = w->zero;
  attn_grads.input = grads->input;
  attn_grads.input_norm = grads->input_norm;
  attn_grads.input_norm_bias = grads->input_norm_bias;
  attn_grads.q_norm = grads->q_norm;
  attn_grads.k_norm = grads->k_norm;
  attn_grads.q = *slim_moe_grad (grads, 0);
  attn_grads.k = *slim_moe_grad (grads, 1);
  attn_grads.v = *slim_moe_grad (grads, 2);
  attn_grads.o = *slim_moe_grad (grads, 3);
  slim_dense_layer_backward (&tape->attn_config, &attn, &tape->attn, dh, &attn_grads);
}
