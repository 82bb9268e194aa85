/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-decoder.c: kernels and shared blocks of Llama-family decoder
 * layers (see slim-decoder.h).  Matrix products go through slim-linalg;
 * attention runs two sgemms per (sequence, head, block of query rows).
 */
#include "slim-decoder.h"

#include <math.h>
#include <string.h>

#include "slim-error.h"
#include "slim-linalg.h"
#include "slim-online-rotation.h"
#include "slim-tensor-spec.h"

/* Query rows per attention block: the keys a block needs stop at its last
 * row, so blocks skip most of the masked upper triangle while each sgemm
 * stays large enough to run near peak. */
#define SLIM_ATTENTION_BLOCK_ROWS 128

void
slim_decoder_rmsnorm (const float *x,
                      const float *weight,
                      const float *bias,
                      float eps,
                      float *y,
                      gint64 n_rows,
                      gint64 n)
{
  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *xr = x + r * n; /* (n) */
      float *yr = y + r * n;       /* (n) */
      double sum = 0.0;
      float mean, inv_rms;

      for (gint64 j = 0; j < n; j++)
        sum += (double)xr[j] * (double)xr[j];
      mean = (float)(sum / (double)n);
      inv_rms = 1.0f / sqrtf (mean + eps);
      for (gint64 j = 0; j < n; j++)
        {
          float value = weight[j] * (xr[j] * inv_rms);

          yr[j] = bias != NULL ? value + bias[j] : value;
        }
    }
}

/* Hugging Face's inv_freq in float32: 1 / theta^(2i / d), then the
 * scaling rule of rope_scaling (modeling_rope_utils.py). */
void
slim_decoder_rope_inv_freq (const SlimModelConfig *config, float *inv_freq /* (head_dim / 2) */)
{
  gint64 half = config->head_dim / 2;
  float theta = (float)config->rope_theta;

  for (gint64 i = 0; i < half; i++)
    {
      float exponent = (float)(2 * i) / (float)config->head_dim;

      inv_freq[i] = 1.0f / powf (theta, exponent);
    }

  if (config->rope_scaling_type == SLIM_ROPE_SCALING_LINEAR)
    {
      for (gint64 i = 0; i < half; i++)
        inv_freq[i] /= (float)config->rope_scaling_factor;
    }
  else if (config->rope_scaling_type == SLIM_ROPE_SCALING_LLAMA3)
    {
      /* Long wavelengths are divided by factor, short ones kept, and the
       * band between interpolated smoothly (Llama 3.1). */
      float factor = (float)config->rope_scaling_factor;
      float low = (float)config->rope_low_freq_factor;
      float high = (float)config->rope_high_freq_factor;
      float old_context = (float)config->rope_original_max_position_embeddings;
      float low_freq_wavelen = old_context / low;
      float high_freq_wavelen = old_context / high;

      for (gint64 i = 0; i < half; i++)
        {
          float wavelen = (float)(2.0 * G_PI) / inv_freq[i];
          float scaled = wavelen > low_freq_wavelen ? inv_freq[i] / factor : inv_freq[i];

          if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen))
            {
              float smooth = (old_context / wavelen - low) / (high - low);

              scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
            }
          inv_freq[i] = scaled;
        }
    }
}

void
slim_rope_table_init (SlimRopeTable *table, const SlimModelConfig *config, gint64 n_positions)
{
  gint64 half = config->head_dim / 2;
  g_autofree float *inv_freq = g_new (float, MAX (half, 1)); /* (half) */

  table->n_positions = n_positions;
  table->half = half;
  table->cos = g_new (float, MAX (n_positions * half, 1));
  table->sin = g_new (float, MAX (n_positions * half, 1));
  slim_decoder_rope_inv_freq (config, inv_freq);
  for (gint64 p = 0; p < n_positions; p++)
    for (gint64 i = 0; i < half; i++)
      {
        /* float32 angle, as torch multiplies inv_freq by the position. */
        float angle = inv_freq[i] * (float)p;

        table->cos[p * half + i] = cosf (angle);
        table->sin[p * half + i] = sinf (angle);
      }
}

void
slim_rope_table_clear (SlimRopeTable *table)
{
  g_clear_pointer (&table->cos, g_free);
  g_clear_pointer (&table->sin, g_free);
  table->n_positions = 0;
}

void
slim_decoder_rope_apply (
    const SlimRopeTable *table, float *x, gint64 n_tokens, gint64 n_heads, const gint64 *positions)
{
  gint64 half = table->half;
  gint64 head_dim = 2 * half;

  for (gint64 t = 0; t < n_tokens; t++)
    {
      const float *cos_p = table->cos + positions[t] * half; /* (half) */
      const float *sin_p = table->sin + positions[t] * half; /* (half) */

      g_assert (positions[t] >= 0 && positions[t] < table->n_positions);
      for (gint64 h = 0; h < n_heads; h++)
        {
          float *xh = x + (t * n_heads + h) * head_dim; /* (head_dim) */

          for (gint64 j = 0; j < half; j++)
            {
              float x0 = xh[j];
              float x1 = xh[j + half];

              /* q * cos + rotate_half(q) * sin, rotate_half = (-x1, x0). */
              xh[j] = x0 * cos_p[j] + (-x1) * sin_p[j];
              xh[j + half] = x1 * cos_p[j] + x0 * sin_p[j];
            }
        }
    }
}

void
slim_decoder_fill_positions (const SlimBatch *batch, gint64 *positions)
{
  gint64 t = 0;

  for (guint s = 0; s < batch->n_seqs; s++)
    for (gint64 i = 0; i < batch->seq_lens[s]; i++)
      positions[t++] = i;
}

void
slim_decoder_silu_mul (float *gate, const float *up, gsize n)
{
  for (gsize i = 0; i < n; i++)
    {
      float g = gate[i];

      gate[i] = (g / (1.0f + expf (-g))) * up[i];
    }
}

static gint64
slim_batch_max_len (const SlimBatch *batch)
{
  gint64 max_len = 0;

  for (guint s = 0; s < batch->n_seqs; s++)
    max_len = MAX (max_len, batch->seq_lens[s]);
  return max_len;
}

gsize
slim_decoder_attention_scratch_n_elements (const SlimBatch *batch)
{
  gint64 max_len = slim_batch_max_len (batch);

  return (gsize)(MIN (max_len, SLIM_ATTENTION_BLOCK_ROWS) * max_len) + 1;
}

/* Row i of scores (n_keys) holds the logits of keys c0 .. c0 + n_keys - 1;
 * keys lo .. last are visible; softmax over those, zero elsewhere. */
void
slim_decoder_softmax_visible (float *row, gint64 n_keys, gint64 first_visible, gint64 n_visible)
{
  float max_value = -INFINITY;
  double sum = 0.0;
  float inv_sum;

  for (gint64 j = first_visible; j < first_visible + n_visible; j++)
    max_value = MAX (max_value, row[j]);
  for (gint64 j = first_visible; j < first_visible + n_visible; j++)
    {
      row[j] = expf (row[j] - max_value);
      sum += row[j];
    }
  inv_sum = (float)(1.0 / sum);
  for (gint64 j = 0; j < first_visible; j++)
    row[j] = 0.0f;
  for (gint64 j = first_visible; j < first_visible + n_visible; j++)
    row[j] *= inv_sum;
  for (gint64 j = first_visible + n_visible; j < n_keys; j++)
    row[j] = 0.0f;
}

void
slim_decoder_attention (const SlimAttentionShape *shape,
                        const SlimBatch *batch,
                        const float *q,
                        const float *k,
                        const float *v,
                        float *out,
                        float *scratch)
{
  gint64 head_dim = shape->head_dim;
  gint64 ld_q = shape->n_heads * head_dim;
  gint64 ld_kv = shape->n_kv_heads * head_dim;
  gint64 group = shape->n_heads / shape->n_kv_heads;
  gint64 window = shape->sliding_window;
  gint64 offset = 0;

  for (guint s = 0; s < batch->n_seqs; s++)
    {
      gint64 len = batch->seq_lens[s];

      for (gint64 h = 0; h < shape->n_heads; h++)
        {
          gint64 kv_head = h / group;
          const float *q_h = q + offset * ld_q + h * head_dim;        /* (len, head_dim) ld_q */
          const float *k_h = k + offset * ld_kv + kv_head * head_dim; /* (len, head_dim) ld_kv */
          const float *v_h = v + offset * ld_kv + kv_head * head_dim; /* (len, head_dim) ld_kv */
          float *out_h = out + offset * ld_q + h * head_dim;          /* (len, head_dim) ld_q */

          for (gint64 r0 = 0; r0 < len; r0 += SLIM_ATTENTION_BLOCK_ROWS)
            {
              gint64 r1 = MIN (len, r0 + SLIM_ATTENTION_BLOCK_ROWS);
              gint64 n_rows = r1 - r0;
              /* Keys c0 .. r1 - 1 are visible to some row of the block. */
              gint64 c0 = window > 0 ? MAX (0, r0 - window + 1) : 0;
              gint64 n_keys = r1 - c0;
              float *scores = scratch; /* (n_rows, n_keys) */

              /* scores = scale * Q_block K_keysᵀ */
              slim_linalg_sgemm (FALSE, TRUE, n_rows, n_keys, head_dim, shape->scale,
                                 q_h + r0 * ld_q, ld_q, k_h + c0 * ld_kv, ld_kv, 0.0f, scores,
                                 n_keys);
              for (gint64 i = 0; i < n_rows; i++)
                {
                  gint64 position = r0 + i;
                  gint64 lo = window > 0 ? MAX (0, position - window + 1) : 0;

                  slim_decoder_softmax_visible (scores + i * n_keys, n_keys, lo - c0,
                                                position - lo + 1);
                }
              /* out_block = P V_keys */
              slim_linalg_sgemm (FALSE, FALSE, n_rows, head_dim, n_keys, 1.0f, scores, n_keys,
                                 v_h + c0 * ld_kv, ld_kv, 0.0f, out_h + r0 * ld_q, ld_q);
            }
        }
      offset += len;
    }
}

void
slim_decoder_attention_ref (const SlimAttentionShape *shape,
                            const SlimBatch *batch,
                            const float *q,
                            const float *k,
                            const float *v,
                            float *out)
{
  gint64 head_dim = shape->head_dim;
  gint64 ld_q = shape->n_heads * head_dim;
  gint64 ld_kv = shape->n_kv_heads * head_dim;
  gint64 group = shape->n_heads / shape->n_kv_heads;
  gint64 max_len = slim_batch_max_len (batch);
  g_autofree double *probs = g_new (double, MAX (max_len, 1)); /* (max_len) */
  gint64 offset = 0;

  for (guint s = 0; s < batch->n_seqs; s++)
    {
      gint64 len = batch->seq_lens[s];

      for (gint64 h = 0; h < shape->n_heads; h++)
        for (gint64 i = 0; i < len; i++)
          {
            const float *qi = q + (offset + i) * ld_q + h * head_dim;
            gint64 kv_head = h / group;
            gint64 lo = shape->sliding_window > 0 ? MAX (0, i - shape->sliding_window + 1) : 0;
            double max_value = -INFINITY, sum = 0.0;

            for (gint64 j = lo; j <= i; j++)
              {
                const float *kj = k + (offset + j) * ld_kv + kv_head * head_dim;
                double dot = 0.0;

                for (gint64 d = 0; d < head_dim; d++)
                  dot += (double)qi[d] * (double)kj[d];
                probs[j] = dot * shape->scale;
                max_value = MAX (max_value, probs[j]);
              }
            for (gint64 j = lo; j <= i; j++)
              {
                probs[j] = exp (probs[j] - max_value);
                sum += probs[j];
              }
            for (gint64 d = 0; d < head_dim; d++)
              {
                double acc = 0.0;

                for (gint64 j = lo; j <= i; j++)
                  acc += probs[j] / sum * (double)v[(offset + j) * ld_kv + kv_head * head_dim + d];
                out[(offset + i) * ld_q + h * head_dim + d] = (float)acc;
              }
          }
      offset += len;
    }
}

double
slim_decoder_attention_flops (const SlimAttentionShape *shape, const SlimBatch *batch)
{
  double n_pairs = 0.0; /* (query, visible key) pairs over the batch */

  for (guint s = 0; s < batch->n_seqs; s++)
    for (gint64 i = 0; i < batch->seq_lens[s]; i++)
      n_pairs += (double)(shape->sliding_window > 0 ? MIN (i + 1, shape->sliding_window) : i + 1);
  /* Q Kᵀ and P V: 2 FLOPs per multiply-add, head_dim each, per head. */
  return 2.0 * 2.0 * (double)shape->head_dim * (double)shape->n_heads * n_pairs;
}

void
slim_decoder_route_topk (float *probs,
                         gint64 n_tokens,
                         gint64 n_experts,
                         gint64 top_k,
                         gboolean normalize,
                         gint32 *experts,
                         float *weights)
{
  for (gint64 t = 0; t < n_tokens; t++)
    {
      float *p = probs + t * n_experts;  /* (n_experts) */
      gint32 *e_t = experts + t * top_k; /* (top_k) */
      float *w_t = weights + t * top_k;  /* (top_k) */
      float max_value = -INFINITY;
      double sum = 0.0, top_sum = 0.0;

      for (gint64 e = 0; e < n_experts; e++)
        max_value = MAX (max_value, p[e]);
      for (gint64 e = 0; e < n_experts; e++)
        {
          p[e] = expf (p[e] - max_value);
          sum += p[e];
        }
      for (gint64 e = 0; e < n_experts; e++)
        p[e] = (float)(p[e] / sum);

      /* Selection by repeated scans: top_k is small (2 to 8). */
      for (gint64 r = 0; r < top_k; r++)
        {
          gint64 best = -1;

          for (gint64 e = 0; e < n_experts; e++)
            {
              gboolean taken = FALSE;

              for (gint64 q = 0; q < r; q++)
                taken = taken || e_t[q] == e;
              if (!taken && (best < 0 || p[e] > p[best]))
                best = e;
            }
          e_t[r] = (gint32)best;
          w_t[r] = p[best];
          top_sum += p[best];
        }
      if (normalize)
        for (gint64 r = 0; r < top_k; r++)
          w_t[r] = (float)(w_t[r] / top_sum);
    }
}

/* ---- named modules ----------------------------------------------------- */

static gboolean
slim_check_tensor (
    SlimTensor *tensor, const char *what, guint n_dims, gint64 d0, gint64 d1, GError **error)
{
  const gint64 *shape = slim_tensor_get_shape (tensor);

  if (slim_tensor_get_dtype (tensor) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (tensor) != n_dims
      || shape[0] != d0 || (n_dims == 2 && shape[1] != d1))
    {
      g_autofree char *have = slim_tensor_shape_to_string (tensor);

      if (n_dims == 2)
        g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                     "tensor '%s' is %s %s, the forward needs f32 [%" G_GINT64_FORMAT
                     ", %" G_GINT64_FORMAT "]",
                     what, slim_dtype_get_name (slim_tensor_get_dtype (tensor)), have, d0, d1);
      else
        g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                     "tensor '%s' is %s %s, the forward needs f32 [%" G_GINT64_FORMAT "]", what,
                     slim_dtype_get_name (slim_tensor_get_dtype (tensor)), have, d0);
      return FALSE;
    }
  return TRUE;
}

const float *
slim_decoder_get_weight (SlimLayer *layer,
                         const char *module,
                         gint64 n_out,
                         gint64 n_in,
                         const float **out_bias,
                         GError **error)
{
  g_autofree char *weight_name = g_strconcat (module, ".weight", NULL);
  g_autofree char *bias_name = g_strconcat (module, ".bias", NULL);
  SlimTensor *weight, *bias;

  weight = slim_layer_require_tensor (layer, weight_name, error);
  if (weight == NULL || !slim_check_tensor (weight, weight_name, 2, n_out, n_in, error))
    return NULL;
  bias = slim_layer_get_tensor (layer, bias_name);
  if (bias != NULL && !slim_check_tensor (bias, bias_name, 1, n_out, 0, error))
    return NULL;
  if (out_bias != NULL)
    *out_bias = bias != NULL ? slim_tensor_get_data (bias) : NULL;
  return slim_tensor_get_data (weight);
}

const float *
slim_decoder_get_vector (SlimLayer *layer, const char *name, gint64 n, GError **error)
{
  SlimTensor *tensor = slim_layer_require_tensor (layer, name, error);

  if (tensor == NULL || !slim_check_tensor (tensor, name, 1, n, 0, error))
    return NULL;
  return slim_tensor_get_data (tensor);
}

/* y = module(x) after the linear_input hook: the linear_forward hook's
 * result when it computes one, else the float product. */
static gboolean
slim_decoder_linear_product (const char *module,
                             const float *x,      /* (n_tokens, n_in) */
                             const float *weight, /* (n_out, n_in) */
                             const float *bias,   /* (n_out) or NULL */
                             gint64 n_tokens,
                             gint64 n_in,
                             gint64 n_out,
                             float *y, /* (n_tokens, n_out) */
                             const SlimForwardHooks *hooks,
                             GError **error)
{
  gboolean done = FALSE;

  if (hooks != NULL && hooks->linear_forward != NULL
      && !hooks->linear_forward (module, x, n_tokens, n_in, n_out, y, &done, hooks->user_data,
                                 error))
    return FALSE;
  if (!done)
    slim_linalg_linear (x, weight, bias, y, n_tokens, n_in, n_out);
  return TRUE;
}

gboolean
slim_decoder_has_online_rotation (SlimLayer *layer, const char *module)
{
  g_autofree char *heads = g_strconcat (module, SLIM_ONLINE_ROTATION_HEADS, NULL);
  g_autofree char *kron = g_strconcat (module, SLIM_ONLINE_ROTATION_KRON_M, NULL);
  g_autofree char *had = g_strconcat (module, SLIM_ONLINE_ROTATION_HADAMARD, NULL);

  return slim_layer_get_tensor (layer, heads) != NULL || slim_layer_get_tensor (layer, kron) != NULL
         || slim_layer_get_tensor (layer, had) != NULL;
}

/* A float32 square matrix name of layer (its order in *out_n), or NULL
 * with error. */
static const float *
slim_decoder_square (SlimLayer *layer, const char *name, gint64 *out_n, GError **error)
{
  SlimTensor *t = slim_layer_get_tensor (layer, name);

  if (t == NULL || slim_tensor_get_dtype (t) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (t) != 2
      || slim_tensor_get_dim (t, 0) != slim_tensor_get_dim (t, 1))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "%s: an online rotation must be a square float32 matrix", name);
      return NULL;
    }
  *out_n = slim_tensor_get_dim (t, 0);
  return slim_tensor_get_data (t);
}

/* The full Hadamard rotation of module's input (quarot
 * down_proj_online_kind: hadamard): x <- H^T x / sqrt(n_in), H rebuilt
 * from the carried base <module>.hadamard_rotation; nothing to do is TRUE. */
static gboolean
slim_decoder_apply_hadamard_rotation (
    SlimLayer *layer, const char *module, float *x, gint64 n_tokens, gint64 n_in, GError **error)
{
  g_autofree char *had = g_strconcat (module, SLIM_ONLINE_ROTATION_HADAMARD, NULL);
  const float *had_k;
  gint64 k = 0;

  if (slim_layer_get_tensor (layer, had) == NULL)
    return TRUE;
  had_k = slim_decoder_square (layer, had, &k, error); /* (k, k) */
  if (had_k == NULL)
    return FALSE;
  if (!slim_online_rotation_hadamard (had_k, k, x, n_tokens, n_in, error))
    {
      g_prefix_error (error, "%s: ", had);
      return FALSE;
    }
  return TRUE;
}

gboolean
slim_decoder_apply_online_rotation (
    SlimLayer *layer, const char *module, float *x, gint64 n_tokens, gint64 n_in, GError **error)
{
  g_autofree char *heads = g_strconcat (module, SLIM_ONLINE_ROTATION_HEADS, NULL);
  g_autofree char *kron_m = g_strconcat (module, SLIM_ONLINE_ROTATION_KRON_M, NULL);
  g_autofree char *kron_n = g_strconcat (module, SLIM_ONLINE_ROTATION_KRON_N, NULL);

  if (slim_layer_get_tensor (layer, heads) != NULL)
    {
      gint64 nh = 0;
      const float *r = slim_decoder_square (layer, heads, &nh, error); /* (nh, nh) */

      if (r == NULL)
        return FALSE;
      if (nh == 0 || n_in % nh != 0)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                       "%s is %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                       ", which does not divide the %" G_GINT64_FORMAT " inputs of %s",
                       heads, nh, nh, n_in, module);
          return FALSE;
        }
      slim_online_rotation_heads (r, nh, n_in / nh, x, n_tokens);
    }
  if (slim_layer_get_tensor (layer, kron_m) != NULL
      || slim_layer_get_tensor (layer, kron_n) != NULL)
    {
      gint64 dm = 0, dn = 0;
      const float *m = slim_decoder_square (layer, kron_m, &dm, error); /* (dm, dm) */
      const float *n = m != NULL ? slim_decoder_square (layer, kron_n, &dn, error) : NULL;

      if (n == NULL)
        return FALSE;
      if (dm * dn != n_in)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                       "%s: the Kronecker rotation is %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                       ", the linear has %" G_GINT64_FORMAT " inputs",
                       module, dm, dn, n_in);
          return FALSE;
        }
      slim_online_rotation_kronecker (m, dm, n, dn, x, n_tokens); /* x (n_tokens, dm * dn) */
    }
  return slim_decoder_apply_hadamard_rotation (layer, module, x, n_tokens, n_in, error);
}

gboolean
slim_decoder_linear_private (SlimLayer *layer,
                             const char *module,
                             float *x,
                             gint64 n_tokens,
                             gint64 n_in,
                             gint64 n_out,
                             float *y,
                             const SlimForwardHooks *hooks,
                             GError **error)
{
  const float *bias = NULL;
  const float *weight = slim_decoder_get_weight (layer, module, n_out, n_in, &bias, error);

  if (weight == NULL)
    return FALSE;
  /* an online rotation is part of the deployed graph: before any hook */
  if (!slim_decoder_apply_online_rotation (layer, module, x, n_tokens, n_in, error))
    return FALSE;
  if (hooks != NULL && hooks->linear_input != NULL
      && !hooks->linear_input (module, x, n_tokens, n_in, hooks->user_data, error))
    return FALSE;
  return slim_decoder_linear_product (module, x, weight, bias, n_tokens, n_in, n_out, y, hooks,
                                      error);
}

gboolean
slim_decoder_linear (SlimLayer *layer,
                     const char *module,
                     const float *x,
                     gint64 n_tokens,
                     gint64 n_in,
                     gint64 n_out,
                     float *y,
                     const SlimForwardHooks *hooks,
                     GError **error)
{
  const float *bias = NULL;
  const float *weight;
  g_autofree float *copy = NULL; /* (n_tokens, n_in) */

  if ((hooks == NULL || hooks->linear_input == NULL)
      && !slim_decoder_has_online_rotation (layer, module))
    {
      weight = slim_decoder_get_weight (layer, module, n_out, n_in, &bias, error);
      if (weight == NULL)
        return FALSE;
      return slim_decoder_linear_product (module, x, weight, bias, n_tokens, n_in, n_out, y, hooks,
                                          error);
    }
  copy = g_new (float, MAX (n_tokens * n_in, 1));
  memcpy (copy, x, (gsize)(n_tokens * n_in) * sizeof (float));
  return slim_decoder_linear_private (layer, module, copy, n_tokens, n_in, n_out, y, hooks, error);
}

gboolean
slim_decoder_swiglu (SlimLayer *layer,
                     const char *prefix,
                     const char *gate,
                     const char *up,
                     const char *down,
                     const float *x,
                     gint64 n_tokens,
                     gint64 hidden,
                     gint64 intermediate,
                     float *out,
                     const SlimForwardHooks *hooks,
                     GError **error)
{
  g_autofree char *gate_name = g_strconcat (prefix, ".", gate, NULL);
  g_autofree char *up_name = g_strconcat (prefix, ".", up, NULL);
  g_autofree char *down_name = g_strconcat (prefix, ".", down, NULL);
  g_autofree float *gate_out
      = g_new (float, MAX (n_tokens * intermediate, 1)); /* (n_tokens, intermediate) */
  g_autofree float *up_out
      = g_new (float, MAX (n_tokens * intermediate, 1)); /* (n_tokens, intermediate) */

  if (!slim_decoder_linear (layer, gate_name, x, n_tokens, hidden, intermediate, gate_out, hooks,
                            error)
      || !slim_decoder_linear (layer, up_name, x, n_tokens, hidden, intermediate, up_out, hooks,
                               error))
    return FALSE;
  slim_decoder_silu_mul (gate_out, up_out, (gsize)(n_tokens * intermediate));
  return slim_decoder_linear_private (layer, down_name, gate_out, n_tokens, intermediate, hidden,
                                      out, hooks, error);
}

static void
slim_linear_specs_add (GArray *specs,
                       GPtrArray *linear_names,
                       const char *module,
                       gint64 n_out,
                       gint64 n_in,
                       gboolean bias)
{
  slim_tensor_specs_add (specs, g_strconcat (module, ".weight", NULL), n_out, n_in);
  if (bias)
    slim_tensor_specs_add (specs, g_strconcat (module, ".bias", NULL), n_out, 0);
  g_ptr_array_add (linear_names, g_strdup (module));
}

void
slim_decoder_describe_attention (const SlimModelConfig *config,
                                 const char *prefix,
                                 GArray *specs,
                                 GPtrArray *linear_names)
{
  gint64 hidden = config->hidden_size;
  gint64 q_dim = config->n_heads * config->head_dim;
  gint64 kv_dim = config->n_kv_heads * config->head_dim;
  g_autofree char *q = g_strconcat (prefix, ".self_attn.q_proj", NULL);
  g_autofree char *k = g_strconcat (prefix, ".self_attn.k_proj", NULL);
  g_autofree char *v = g_strconcat (prefix, ".self_attn.v_proj", NULL);
  g_autofree char *o = g_strconcat (prefix, ".self_attn.o_proj", NULL);

  slim_tensor_specs_add (specs, g_strconcat (prefix, ".input_layernorm.weight", NULL), hidden, 0);
  slim_linear_specs_add (specs, linear_names, q, q_dim, hidden, config->attention_bias);
  slim_linear_specs_add (specs, linear_names, k, kv_dim, hidden, config->attention_bias);
  slim_linear_specs_add (specs, linear_names, v, kv_dim, hidden, config->attention_bias);
  if (config->qk_norm)
    {
      slim_tensor_specs_add (specs, g_strconcat (prefix, ".self_attn.q_norm.weight", NULL),
                             config->head_dim, 0);
      slim_tensor_specs_add (specs, g_strconcat (prefix, ".self_attn.k_norm.weight", NULL),
                             config->head_dim, 0);
    }
  slim_linear_specs_add (specs, linear_names, o, hidden, q_dim, config->o_proj_bias);
  slim_tensor_specs_add (specs, g_strconcat (prefix, ".post_attention_layernorm.weight", NULL),
                         hidden, 0);
}

gboolean
slim_decoder_norm (SlimLayer *layer,
                   const char *norm,
                   const float *x,
                   float *y,
                   gint64 n_rows,
                   gint64 n,
                   float eps,
                   GError **error)
{
  g_autofree char *weight_name = g_strconcat (norm, ".weight", NULL);
  g_autofree char *bias_name = g_strconcat (norm, ".bias", NULL);
  const float *weight = slim_decoder_get_vector (layer, weight_name, n, error);
  SlimTensor *bias = slim_layer_get_tensor (layer, bias_name);

  if (weight == NULL)
    return FALSE;
  if (bias != NULL && !slim_check_tensor (bias, bias_name, 1, n, 0, error))
    return FALSE;
  slim_decoder_rmsnorm (x, weight, bias != NULL ? slim_tensor_get_data (bias) : NULL, eps, y,
                        n_rows, n);
  return TRUE;
}

gboolean
slim_decoder_forward_attention (const SlimModelConfig *config,
                                SlimLayer *layer,
                                const SlimRopeTable *rope,
                                const gint64 *positions,
                                const SlimBatch *batch,
                                const float *x,
                                float *out,
                                const SlimForwardHooks *hooks,
                                GError **error)
{
  const char *prefix = slim_layer_get_prefix (layer);
  gint64 n_tokens = 0;
  gint64 hidden = config->hidden_size;
  gint64 q_dim = config->n_heads * config->head_dim;
  gint64 kv_dim = config->n_kv_heads * config->head_dim;
  g_autofree char *attn = g_strconcat (prefix, ".self_attn", NULL);
  g_autofree char *q_name = g_strconcat (attn, ".q_proj", NULL);
  g_autofree char *k_name = g_strconcat (attn, ".k_proj", NULL);
  g_autofree char *v_name = g_strconcat (attn, ".v_proj", NULL);
  g_autofree char *o_name = g_strconcat (attn, ".o_proj", NULL);
  g_autofree float *q = NULL;       /* (n_tokens, n_heads * head_dim) */
  g_autofree float *k = NULL;       /* (n_tokens, n_kv_heads * head_dim) */
  g_autofree float *v = NULL;       /* (n_tokens, n_kv_heads * head_dim) */
  g_autofree float *context = NULL; /* (n_tokens, n_heads * head_dim) */
  g_autofree float *scratch = NULL;
  SlimAttentionShape shape = {
    .n_heads = config->n_heads,
    .n_kv_heads = config->n_kv_heads,
    .head_dim = config->head_dim,
    .sliding_window = config->sliding_window,
    .scale = (float)(1.0 / sqrt ((double)config->head_dim)),
  };

  for (guint s = 0; s < batch->n_seqs; s++)
    n_tokens += batch->seq_lens[s];
  q = g_new (float, MAX (n_tokens * q_dim, 1));
  k = g_new (float, MAX (n_tokens * kv_dim, 1));
  v = g_new (float, MAX (n_tokens * kv_dim, 1));
  if (!slim_decoder_linear (layer, q_name, x, n_tokens, hidden, q_dim, q, hooks, error)
      || !slim_decoder_linear (layer, k_name, x, n_tokens, hidden, kv_dim, k, hooks, error)
      || !slim_decoder_linear (layer, v_name, x, n_tokens, hidden, kv_dim, v, hooks, error))
    return FALSE;

  if (config->qk_norm)
    {
      g_autofree char *q_norm = g_strconcat (attn, ".q_norm", NULL);
      g_autofree char *k_norm = g_strconcat (attn, ".k_norm", NULL);

      /* Per head: q viewed as (n_tokens * n_heads, head_dim). */
      if (!slim_decoder_norm (layer, q_norm, q, q, n_tokens * config->n_heads, config->head_dim,
                              (float)config->rms_norm_eps, error)
          || !slim_decoder_norm (layer, k_norm, k, k, n_tokens * config->n_kv_heads,
                                 config->head_dim, (float)config->rms_norm_eps, error))
        return FALSE;
    }

  slim_decoder_rope_apply (rope, q, n_tokens, config->n_heads, positions);
  slim_decoder_rope_apply (rope, k, n_tokens, config->n_kv_heads, positions);
  if (hooks != NULL && hooks->qkv_states != NULL
      && !hooks->qkv_states (attn, q, k, v, n_tokens, config, hooks->user_data, error))
    return FALSE;

  context = g_new (float, MAX (n_tokens * q_dim, 1));
  scratch = g_new (float, slim_decoder_attention_scratch_n_elements (batch));
  slim_decoder_attention (&shape, batch, q, k, v, context, scratch);
  g_clear_pointer (&q, g_free);
  g_clear_pointer (&k, g_free);
  g_clear_pointer (&v, g_free);
  return slim_decoder_linear_private (layer, o_name, context, n_tokens, q_dim, hidden, out, hooks,
                                      error);
}
