/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-dense-layer-backward.c: forward with a tape and reverse-mode
 * gradients of a dense decoder layer (see slim-dense-layer-backward.h).
 */
#include "slim-dense-layer-backward.h"

#include <math.h>
#include <string.h>

#include "slim-decoder-backward.h"
#include "slim-error.h"
#include "slim-linalg.h"

/* name = prefix + suffix, a 1-D tensor of n elements, or NULL when absent
 * (no error); FALSE + error when present but misshapen. */
static gboolean
slim_dense_optional_vector (
    SlimLayer *layer, const char *name, gint64 n, const float **out, GError **error)
{
  *out = NULL;
  if (slim_layer_get_tensor (layer, name) == NULL)
    return TRUE;
  *out = slim_decoder_get_vector (layer, name, n, error);
  return *out != NULL;
}

static gboolean
slim_dense_norm (SlimLayer *layer,
                 const char *norm,
                 gint64 n,
                 const float **weight,
                 const float **bias,
                 GError **error)
{
  g_autofree char *weight_name = g_strconcat (norm, ".weight", NULL);
  g_autofree char *bias_name = g_strconcat (norm, ".bias", NULL);

  *weight = slim_decoder_get_vector (layer, weight_name, n, error);
  return *weight != NULL && slim_dense_optional_vector (layer, bias_name, n, bias, error);
}

static gboolean
slim_dense_linear (SlimLayer *layer,
                   const char *prefix,
                   const char *name,
                   gint64 n_out,
                   gint64 n_in,
                   SlimLinearWeights *out,
                   GError **error)
{
  g_autofree char *module = g_strconcat (prefix, ".", name, NULL);

  if (slim_decoder_has_online_rotation (layer, module))
    {
      /* the tape's products do not rotate inputs */
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s has an online rotation (quarot online: true); the dense layer's "
                   "forward/backward pass (autoround) does not support it",
                   module);
      return FALSE;
    }
  out->weight = slim_decoder_get_weight (layer, module, n_out, n_in, &out->bias, error);
  return out->weight != NULL;
}

gboolean
slim_dense_layer_weights_init (SlimDenseLayerWeights *weights,
                               const SlimModelConfig *config,
                               SlimLayer *layer,
                               GError **error)
{
  const char *prefix = slim_layer_get_prefix (layer);
  gint64 hidden = config->hidden_size;
  gint64 q_dim = config->n_heads * config->head_dim;
  gint64 kv_dim = config->n_kv_heads * config->head_dim;
  gint64 inter = config->intermediate_size;
  g_autofree char *input_norm = g_strconcat (prefix, ".input_layernorm", NULL);
  g_autofree char *post_norm = g_strconcat (prefix, ".post_attention_layernorm", NULL);
  g_autofree char *attn = g_strconcat (prefix, ".self_attn", NULL);
  g_autofree char *mlp = g_strconcat (prefix, ".mlp", NULL);

  memset (weights, 0, sizeof (*weights));
  if (slim_model_config_layer_is_moe (config, (guint)MAX (slim_layer_get_index (layer), 0)))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                   "%s: the layer backward covers dense layers only; this one is a mixture of "
                   "experts",
                   prefix);
      return FALSE;
    }
  if (!slim_dense_norm (layer, input_norm, hidden, &weights->input_norm, &weights->input_norm_bias,
                        error)
      || !slim_dense_norm (layer, post_norm, hidden, &weights->post_norm, &weights->post_norm_bias,
                           error)
      || !slim_dense_linear (layer, attn, "q_proj", q_dim, hidden, &weights->q, error)
      || !slim_dense_linear (layer, attn, "k_proj", kv_dim, hidden, &weights->k, error)
      || !slim_dense_linear (layer, attn, "v_proj", kv_dim, hidden, &weights->v, error)
      || !slim_dense_linear (layer, attn, "o_proj", hidden, q_dim, &weights->o, error)
      || !slim_dense_linear (layer, mlp, "gate_proj", inter, hidden, &weights->gate, error)
      || !slim_dense_linear (layer, mlp, "up_proj", inter, hidden, &weights->up, error)
      || !slim_dense_linear (layer, mlp, "down_proj", hidden, inter, &weights->down, error))
    return FALSE;
  if (config->qk_norm)
    {
      g_autofree char *q_norm = g_strconcat (attn, ".q_norm", NULL);
      g_autofree char *k_norm = g_strconcat (attn, ".k_norm", NULL);
      const float *q_bias = NULL, *k_bias = NULL;

      if (!slim_dense_norm (layer, q_norm, config->head_dim, &weights->q_norm, &q_bias, error)
          || !slim_dense_norm (layer, k_norm, config->head_dim, &weights->k_norm, &k_bias, error))
        return FALSE;
      if (q_bias != NULL || k_bias != NULL)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                       "%s: the layer backward does not support a bias on q_norm / k_norm", attn);
          return FALSE;
        }
    }
  return TRUE;
}

static float *
slim_dense_new (gint64 n_rows, gint64 n_cols)
{
  return g_new (float, MAX (n_rows * n_cols, 1));
}

/* What linear w reads: x itself, or a fake-quantized copy of it (kept in
 * *keep for the backward) when w quantizes its input. */
static const float *
slim_dense_linear_input (const SlimLinearWeights *w,
                         const float *x, /* (n_tokens, n_in) */
                         gint64 n_tokens,
                         gint64 n_in,
                         float **keep /* (n_tokens, n_in) out */)
{
  if (w->act == NULL)
    return x;
  *keep = slim_dense_new (n_tokens, n_in);
  slim_fake_quantize_rows_dynamic (w->act, x, n_tokens, n_in, *keep);
  return *keep;
}

static SlimAttentionShape
slim_dense_attention_shape (const SlimModelConfig *config)
{
  SlimAttentionShape shape = {
    .n_heads = config->n_heads,
    .n_kv_heads = config->n_kv_heads,
    .head_dim = config->head_dim,
    .sliding_window = config->sliding_window,
    .scale = (float)(1.0 / sqrt ((double)config->head_dim)),
  };

  return shape;
}

void
slim_dense_layer_forward (const SlimModelConfig *config,
                          const SlimDenseLayerWeights *w,
                          const SlimBatch *batch,
                          const float *x,
                          SlimDenseLayerTape *tape)
{
  gint64 hidden = config->hidden_size;
  gint64 q_dim = config->n_heads * config->head_dim;
  gint64 kv_dim = config->n_kv_heads * config->head_dim;
  gint64 inter = config->intermediate_size;
  float eps = (float)config->rms_norm_eps;
  SlimAttentionShape shape = slim_dense_attention_shape (config);
  gint64 n_tokens = 0, max_len = 0;
  g_autofree float *scratch = NULL;
  g_autofree float *branch = NULL; /* (T, H) */

  g_return_if_fail (batch != NULL && (batch->n_seqs == 0 || batch->seq_lens != NULL));
  slim_dense_layer_tape_clear (tape);
  for (guint s = 0; s < batch->n_seqs; s++)
    {
      g_return_if_fail (batch->seq_lens[s] >= 0);
      n_tokens += batch->seq_lens[s];
      max_len = MAX (max_len, batch->seq_lens[s]);
    }
  tape->n_tokens = n_tokens;
  tape->batch = *batch;
  tape->x = x;
  tape->positions = g_new (gint64, MAX (n_tokens, 1));
  slim_decoder_fill_positions (batch, tape->positions);
  slim_rope_table_init (&tape->rope, config, max_len);

  /* Attention block, as slim_model_forward_layer + slim_decoder_forward_attention. */
  tape->n1 = slim_dense_new (n_tokens, hidden);
  slim_decoder_rmsnorm (x, w->input_norm, w->input_norm_bias, eps, tape->n1, n_tokens, hidden);
  tape->q = slim_dense_new (n_tokens, q_dim);
  tape->k = slim_dense_new (n_tokens, kv_dim);
  tape->v = slim_dense_new (n_tokens, kv_dim);
  slim_linalg_linear (slim_dense_linear_input (&w->q, tape->n1, n_tokens, hidden, &tape->q_in),
                      w->q.weight, w->q.bias, tape->q, n_tokens, hidden, q_dim);
  slim_linalg_linear (slim_dense_linear_input (&w->k, tape->n1, n_tokens, hidden, &tape->k_in),
                      w->k.weight, w->k.bias, tape->k, n_tokens, hidden, kv_dim);
  slim_linalg_linear (slim_dense_linear_input (&w->v, tape->n1, n_tokens, hidden, &tape->v_in),
                      w->v.weight, w->v.bias, tape->v, n_tokens, hidden, kv_dim);
  if (config->qk_norm)
    {
      tape->q_raw = g_memdup2 (tape->q, (gsize)MAX (n_tokens * q_dim, 1) * sizeof (float));
      tape->k_raw = g_memdup2 (tape->k, (gsize)MAX (n_tokens * kv_dim, 1) * sizeof (float));
      /* Per head: q viewed as (T * n_heads, head_dim). */
      slim_decoder_rmsnorm (tape->q_raw, w->q_norm, NULL, eps, tape->q, n_tokens * config->n_heads,
                            config->head_dim);
      slim_decoder_rmsnorm (tape->k_raw, w->k_norm, NULL, eps, tape->k,
                            n_tokens * config->n_kv_heads, config->head_dim);
    }
  slim_decoder_rope_apply (&tape->rope, tape->q, n_tokens, config->n_heads, tape->positions);
  slim_decoder_rope_apply (&tape->rope, tape->k, n_tokens, config->n_kv_heads, tape->positions);
  tape->context = slim_dense_new (n_tokens, q_dim);
  scratch = g_new (float, slim_decoder_attention_scratch_n_elements (batch));
  slim_decoder_attention (&shape, batch, tape->q, tape->k, tape->v, tape->context, scratch);
  branch = slim_dense_new (n_tokens, hidden);
  slim_linalg_linear (slim_dense_linear_input (&w->o, tape->context, n_tokens, q_dim, &tape->o_in),
                      w->o.weight, w->o.bias, branch, n_tokens, q_dim, hidden);
  tape->h = slim_dense_new (n_tokens, hidden);
  for (gint64 i = 0; i < n_tokens * hidden; i++)
    tape->h[i] = x[i] + branch[i];

  /* MLP block, as slim_decoder_swiglu. */
  tape->n2 = slim_dense_new (n_tokens, hidden);
  slim_decoder_rmsnorm (tape->h, w->post_norm, w->post_norm_bias, eps, tape->n2, n_tokens, hidden);
  tape->gate = slim_dense_new (n_tokens, inter);
  tape->up = slim_dense_new (n_tokens, inter);
  slim_linalg_linear (
      slim_dense_linear_input (&w->gate, tape->n2, n_tokens, hidden, &tape->gate_in),
      w->gate.weight, w->gate.bias, tape->gate, n_tokens, hidden, inter);
  slim_linalg_linear (slim_dense_linear_input (&w->up, tape->n2, n_tokens, hidden, &tape->up_in),
                      w->up.weight, w->up.bias, tape->up, n_tokens, hidden, inter);
  tape->act = g_memdup2 (tape->gate, (gsize)MAX (n_tokens * inter, 1) * sizeof (float));
  slim_decoder_silu_mul (tape->act, tape->up, (gsize)(n_tokens * inter));
  slim_linalg_linear (
      slim_dense_linear_input (&w->down, tape->act, n_tokens, inter, &tape->down_in),
      w->down.weight, w->down.bias, branch, n_tokens, inter, hidden);
  tape->y = slim_dense_new (n_tokens, hidden);
  for (gint64 i = 0; i < n_tokens * hidden; i++)
    tape->y[i] = tape->h[i] + branch[i];
}

void
slim_dense_layer_tape_clear (SlimDenseLayerTape *tape)
{
  g_clear_pointer (&tape->n1, g_free);
  g_clear_pointer (&tape->q_raw, g_free);
  g_clear_pointer (&tape->k_raw, g_free);
  g_clear_pointer (&tape->q, g_free);
  g_clear_pointer (&tape->k, g_free);
  g_clear_pointer (&tape->v, g_free);
  g_clear_pointer (&tape->context, g_free);
  g_clear_pointer (&tape->h, g_free);
  g_clear_pointer (&tape->n2, g_free);
  g_clear_pointer (&tape->gate, g_free);
  g_clear_pointer (&tape->up, g_free);
  g_clear_pointer (&tape->act, g_free);
  g_clear_pointer (&tape->y, g_free);
  g_clear_pointer (&tape->positions, g_free);
  g_clear_pointer (&tape->q_in, g_free);
  g_clear_pointer (&tape->k_in, g_free);
  g_clear_pointer (&tape->v_in, g_free);
  g_clear_pointer (&tape->o_in, g_free);
  g_clear_pointer (&tape->gate_in, g_free);
  g_clear_pointer (&tape->up_in, g_free);
  g_clear_pointer (&tape->down_in, g_free);
  slim_rope_table_clear (&tape->rope);
  tape->n_tokens = 0;
  tape->x = NULL;
  memset (&tape->batch, 0, sizeof (tape->batch));
}

/* The input linear `name` multiplied in the forward: its fake-quantized
 * copy, else the float activation `fallback`.  Straight-through: dW uses
 * it, dx = dy W passes the quantizer unchanged. */
#define SLIM_DENSE_INPUT(tape, name, fallback)                                                     \
  ((tape)->name##_in != NULL ? (tape)->name##_in : (tape)->fallback)

void
slim_dense_layer_backward (const SlimModelConfig *config,
                           const SlimDenseLayerWeights *w,
                           const SlimDenseLayerTape *tape,
                           const float *dy,
                           const SlimDenseLayerGrads *grads)
{
  gint64 n_tokens = tape->n_tokens;
  gint64 hidden = config->hidden_size;
  gint64 q_dim = config->n_heads * config->head_dim;
  gint64 kv_dim = config->n_kv_heads * config->head_dim;
  gint64 inter = config->intermediate_size;
  float eps = (float)config->rms_norm_eps;
  SlimAttentionShape shape = slim_dense_attention_shape (config);
  g_autofree float *dh = slim_dense_new (n_tokens, hidden); /* (T, H) dL/dh */
  g_autofree float *dn = slim_dense_new (n_tokens, hidden); /* (T, H) dL/dn2, then dL/dn1 */
  g_autofree float *dctx = NULL;                            /* (T, Q) */
  g_autofree float *dq = NULL;                              /* (T, Q) */
  g_autofree float *dk = NULL;                              /* (T, KV) */
  g_autofree float *dv = NULL;                              /* (T, KV) */
  g_autofree float *scratch = NULL;

  g_return_if_fail (tape->y != NULL);

  /* y = h + down(act): dh starts as dy. */
  memcpy (dh, dy, (gsize)(n_tokens * hidden) * sizeof (float));
  {
    g_autofree float *dgate = slim_dense_new (n_tokens, inter); /* (T, I) dL/dact, then dL/dgate */
    g_autofree float *dup = slim_dense_new (n_tokens, inter);   /* (T, I) dL/dup */

    slim_backward_linear (SLIM_DENSE_INPUT (tape, down, act), w->down.weight, dy, n_tokens, inter,
                          hidden, dgate, FALSE, grads->down.weight, grads->down.bias);
    slim_backward_silu_mul (tape->gate, tape->up, dgate, dgate, dup, (gsize)(n_tokens * inter));
    slim_backward_linear (SLIM_DENSE_INPUT (tape, gate, n2), w->gate.weight, dgate, n_tokens,
                          hidden, inter, dn, FALSE, grads->gate.weight, grads->gate.bias);
    slim_backward_linear (SLIM_DENSE_INPUT (tape, up, n2), w->up.weight, dup, n_tokens, hidden,
                          inter, dn, TRUE, grads->up.weight, grads->up.bias);
  }
  /* n2 = post_norm(h); h also feeds y directly. */
  slim_backward_rmsnorm (tape->h, w->post_norm, eps, dn, dn, grads->post_norm,
                         grads->post_norm_bias, n_tokens, hidden);
  slim_backward_add (dh, dn, (gsize)(n_tokens * hidden));

  /* h = x + o(context). */
  dctx = slim_dense_new (n_tokens, q_dim);
  slim_backward_linear (SLIM_DENSE_INPUT (tape, o, context), w->o.weight, dh, n_tokens, q_dim,
                        hidden, dctx, FALSE, grads->o.weight, grads->o.bias);
  dq = slim_dense_new (n_tokens, q_dim);
  dk = slim_dense_new (n_tokens, kv_dim);
  dv = slim_dense_new (n_tokens, kv_dim);
  scratch = g_new (float, slim_backward_attention_scratch_n_elements (&tape->batch));
  slim_backward_attention (&shape, &tape->batch, tape->q, tape->k, tape->v, dctx, dq, dk, dv,
                           scratch);
  g_clear_pointer (&scratch, g_free);
  g_clear_pointer (&dctx, g_free);
  slim_backward_rope (&tape->rope, dq, n_tokens, config->n_heads, tape->positions);
  slim_backward_rope (&tape->rope, dk, n_tokens, config->n_kv_heads, tape->positions);
  if (config->qk_norm)
    {
      slim_backward_rmsnorm (tape->q_raw, w->q_norm, eps, dq, dq, grads->q_norm, NULL,
                             n_tokens * config->n_heads, config->head_dim);
      slim_backward_rmsnorm (tape->k_raw, w->k_norm, eps, dk, dk, grads->k_norm, NULL,
                             n_tokens * config->n_kv_heads, config->head_dim);
    }
  slim_backward_linear (SLIM_DENSE_INPUT (tape, q, n1), w->q.weight, dq, n_tokens, hidden, q_dim,
                        dn, FALSE, grads->q.weight, grads->q.bias);
  slim_backward_linear (SLIM_DENSE_INPUT (tape, k, n1), w->k.weight, dk, n_tokens, hidden, kv_dim,
                        dn, TRUE, grads->k.weight, grads->k.bias);
  slim_backward_linear (SLIM_DENSE_INPUT (tape, v, n1), w->v.weight, dv, n_tokens, hidden, kv_dim,
                        dn, TRUE, grads->v.weight, grads->v.bias);

  /* n1 = input_norm(x); x also feeds h directly. */
  slim_backward_rmsnorm (tape->x, w->input_norm, eps, dn, dn, grads->input_norm,
                         grads->input_norm_bias, n_tokens, hidden);
  if (grads->input != NULL)
    for (gint64 i = 0; i < n_tokens * hidden; i++)
      grads->input[i] = dh[i] + dn[i];
}
