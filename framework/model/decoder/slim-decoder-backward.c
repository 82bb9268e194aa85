/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-decoder-backward.c: adjoints of the decoder kernels (see
 * slim-decoder-backward.h).  Matrix products go through slim-linalg; the
 * attention recomputes its probabilities block by block, as the forward
 * computes them, so memory stays at one block of scores.
 */
#include "slim-decoder-backward.h"

#include <math.h>
#include <string.h>

#include "slim-linalg.h"

/* Query rows per attention block, as in the forward (slim-decoder.c). */
#define SLIM_BACKWARD_ATTENTION_BLOCK_ROWS 128

/* dbias (n_out) += column sums of dy (n_rows, n_out), double accumulators. */
static void
slim_backward_bias (const float *dy, gint64 n_rows, gint64 n_out, float *dbias)
{
  g_autofree double *sum = g_new0 (double, MAX (n_out, 1)); /* (n_out) */

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 o = 0; o < n_out; o++)
      sum[o] += (double)dy[r * n_out + o];
  for (gint64 o = 0; o < n_out; o++)
    dbias[o] += (float)sum[o];
}

void
slim_backward_linear (const float *x,
                      const float *weight,
                      const float *dy,
                      gint64 n_rows,
                      gint64 n_in,
                      gint64 n_out,
                      float *dx,
                      gboolean accumulate_dx,
                      float *dweight,
                      float *dbias)
{
  if (n_rows <= 0)
    return;
  /* dx (n_rows, n_in) = dy (n_rows, n_out) W (n_out, n_in) */
  if (dx != NULL)
    slim_linalg_sgemm (FALSE, FALSE, n_rows, n_in, n_out, 1.0f, dy, n_out, weight, n_in,
                       accumulate_dx ? 1.0f : 0.0f, dx, n_in);
  /* dweight (n_out, n_in) += dyᵀ (n_out, n_rows) x (n_rows, n_in) */
  if (dweight != NULL)
    slim_linalg_sgemm (TRUE, FALSE, n_out, n_in, n_rows, 1.0f, dy, n_out, x, n_in, 1.0f, dweight,
                       n_in);
  if (dbias != NULL)
    slim_backward_bias (dy, n_rows, n_out, dbias);
}

void
slim_backward_linear_ref (const float *x,
                          const float *weight,
                          const float *dy,
                          gint64 n_rows,
                          gint64 n_in,
                          gint64 n_out,
                          float *dx,
                          gboolean accumulate_dx,
                          float *dweight,
                          float *dbias)
{
  if (dx != NULL)
    for (gint64 r = 0; r < n_rows; r++)
      for (gint64 i = 0; i < n_in; i++)
        {
          double sum = accumulate_dx ? (double)dx[r * n_in + i] : 0.0;

          for (gint64 o = 0; o < n_out; o++)
            sum += (double)dy[r * n_out + o] * (double)weight[o * n_in + i];
          dx[r * n_in + i] = (float)sum;
        }
  if (dweight != NULL)
    for (gint64 o = 0; o < n_out; o++)
      for (gint64 i = 0; i < n_in; i++)
        {
          double sum = 0.0;

          for (gint64 r = 0; r < n_rows; r++)
            sum += (double)dy[r * n_out + o] * (double)x[r * n_in + i];
          dweight[o * n_in + i] += (float)sum;
        }
  if (dbias != NULL)
    slim_backward_bias (dy, n_rows, n_out, dbias);
}

void
slim_backward_rmsnorm (const float *x,
                       const float *weight,
                       float eps,
                       const float *dy,
                       float *dx,
                       float *dweight,
                       float *dbias,
                       gint64 n_rows,
                       gint64 n)
{
  /* The parameter gradients are sums over rows: double, added once. */
  g_autofree double *dweight_acc = dweight != NULL ? g_new0 (double, MAX (n, 1)) : NULL; /* (n) */
  g_autofree double *dbias_acc = dbias != NULL ? g_new0 (double, MAX (n, 1)) : NULL;     /* (n) */

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *xr = x + r * n;   /* (n) */
      const float *dyr = dy + r * n; /* (n) */
      float *dxr = dx + r * n;       /* (n) */
      double sum = 0.0, dot = 0.0;
      float mean, inv_rms, coef;

      /* The statistics exactly as the forward computes them. */
      for (gint64 j = 0; j < n; j++)
        sum += (double)xr[j] * (double)xr[j];
      mean = (float)(sum / (double)n);
      inv_rms = 1.0f / sqrtf (mean + eps);

      /* y_j = w_j x_j r, r = (mean(x^2) + eps)^(-1/2), dr/dx_k = -r^3 x_k / n:
       * dx_k = r g_k - x_k r^3 / n Σ_j g_j x_j with g = dy w. */
      for (gint64 j = 0; j < n; j++)
        {
          if (dweight_acc != NULL)
            dweight_acc[j] += (double)dyr[j] * (double)(xr[j] * inv_rms);
          if (dbias_acc != NULL)
            dbias_acc[j] += (double)dyr[j];
          dot += (double)(dyr[j] * weight[j]) * (double)xr[j];
        }
      coef = (float)(dot * (double)inv_rms * (double)inv_rms * (double)inv_rms / (double)n);
      for (gint64 j = 0; j < n; j++)
        dxr[j] = inv_rms * (dyr[j] * weight[j]) - xr[j] * coef;
    }
  for (gint64 j = 0; j < n; j++)
    {
      if (dweight != NULL)
        dweight[j] += (float)dweight_acc[j];
      if (dbias != NULL)
        dbias[j] += (float)dbias_acc[j];
    }
}

void
slim_backward_silu_mul (
    const float *gate, const float *up, const float *dout, float *dgate, float *dup, gsize n)
{
  for (gsize i = 0; i < n; i++)
    {
      float g = gate[i];
      float d = dout[i];
      float sigmoid = 1.0f / (1.0f + expf (-g));
      float silu = g / (1.0f + expf (-g)); /* as the forward rounds it */

      /* d silu / dg = s + g s (1 - s) */
      dgate[i] = d * up[i] * (sigmoid + g * sigmoid * (1.0f - sigmoid));
      dup[i] = d * silu;
    }
}

void
slim_backward_rope (
    const SlimRopeTable *table, float *dx, gint64 n_tokens, gint64 n_heads, const gint64 *positions)
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
          float *dh = dx + (t * n_heads + h) * head_dim; /* (head_dim) */

          for (gint64 j = 0; j < half; j++)
            {
              float d0 = dh[j];
              float d1 = dh[j + half];

              /* Forward (y0, y1) = (c x0 - s x1, s x0 + c x1); transpose. */
              dh[j] = d0 * cos_p[j] + d1 * sin_p[j];
              dh[j + half] = d1 * cos_p[j] - d0 * sin_p[j];
            }
        }
    }
}

static gint64
slim_backward_max_len (const SlimBatch *batch)
{
  gint64 max_len = 0;

  for (guint s = 0; s < batch->n_seqs; s++)
    max_len = MAX (max_len, batch->seq_lens[s]);
  return max_len;
}

static gint64
slim_backward_n_tokens (const SlimBatch *batch)
{
  gint64 n_tokens = 0;

  for (guint s = 0; s < batch->n_seqs; s++)
    n_tokens += batch->seq_lens[s];
  return n_tokens;
}

gsize
slim_backward_attention_scratch_n_elements (const SlimBatch *batch)
{
  gint64 max_len = slim_backward_max_len (batch);

  /* P and dP of one block: (block rows, max_len) each. */
  return 2 * (gsize)(MIN (max_len, SLIM_BACKWARD_ATTENTION_BLOCK_ROWS) * max_len) + 1;
}

void
slim_backward_attention (const SlimAttentionShape *shape,
                         const SlimBatch *batch,
                         const float *q,
                         const float *k,
                         const float *v,
                         const float *dout,
                         float *dq,
                         float *dk,
                         float *dv,
                         float *scratch)
{
  gint64 head_dim = shape->head_dim;
  gint64 ld_q = shape->n_heads * head_dim;
  gint64 ld_kv = shape->n_kv_heads * head_dim;
  gint64 group = shape->n_heads / shape->n_kv_heads;
  gint64 window = shape->sliding_window;
  gint64 max_len = slim_backward_max_len (batch);
  gint64 block = MIN (max_len, SLIM_BACKWARD_ATTENTION_BLOCK_ROWS);
  gint64 n_tokens = slim_backward_n_tokens (batch);
  gint64 offset = 0;

  /* dk, dv sum over the query heads of a group and over query blocks. */
  memset (dk, 0, (gsize)(n_tokens * ld_kv) * sizeof (float));
  memset (dv, 0, (gsize)(n_tokens * ld_kv) * sizeof (float));
  for (guint s = 0; s < batch->n_seqs; s++)
    {
      gint64 len = batch->seq_lens[s];

      for (gint64 h = 0; h < shape->n_heads; h++)
        {
          gint64 kv_head = h / group;
          const float *q_h = q + offset * ld_q + h * head_dim;        /* (len, head_dim) ld_q */
          const float *k_h = k + offset * ld_kv + kv_head * head_dim; /* (len, head_dim) ld_kv */
          const float *v_h = v + offset * ld_kv + kv_head * head_dim; /* (len, head_dim) ld_kv */
          const float *do_h = dout + offset * ld_q + h * head_dim;    /* (len, head_dim) ld_q */
          float *dq_h = dq + offset * ld_q + h * head_dim;            /* (len, head_dim) ld_q */
          float *dk_h = dk + offset * ld_kv + kv_head * head_dim;     /* (len, head_dim) ld_kv */
          float *dv_h = dv + offset * ld_kv + kv_head * head_dim;     /* (len, head_dim) ld_kv */

          for (gint64 r0 = 0; r0 < len; r0 += SLIM_BACKWARD_ATTENTION_BLOCK_ROWS)
            {
              gint64 r1 = MIN (len, r0 + SLIM_BACKWARD_ATTENTION_BLOCK_ROWS);
              gint64 n_rows = r1 - r0;
              gint64 c0 = window > 0 ? MAX (0, r0 - window + 1) : 0;
              gint64 n_keys = r1 - c0;
              float *probs = scratch;                    /* (n_rows, n_keys) */
              float *dprobs = scratch + block * max_len; /* (n_rows, n_keys), then dS */

              /* P = softmax(scale Q_block K_keysᵀ), as the forward. */
              slim_linalg_sgemm (FALSE, TRUE, n_rows, n_keys, head_dim, shape->scale,
                                 q_h + r0 * ld_q, ld_q, k_h + c0 * ld_kv, ld_kv, 0.0f, probs,
                                 n_keys);
              for (gint64 i = 0; i < n_rows; i++)
                {
                  gint64 position = r0 + i;
                  gint64 lo = window > 0 ? MAX (0, position - window + 1) : 0;

                  slim_decoder_softmax_visible (probs + i * n_keys, n_keys, lo - c0,
                                                position - lo + 1);
                }
              /* dV_keys += Pᵀ dO_block */
              slim_linalg_sgemm (TRUE, FALSE, n_keys, head_dim, n_rows, 1.0f, probs, n_keys,
                                 do_h + r0 * ld_q, ld_q, 1.0f, dv_h + c0 * ld_kv, ld_kv);
              /* dP = dO_block V_keysᵀ */
              slim_linalg_sgemm (FALSE, TRUE, n_rows, n_keys, head_dim, 1.0f, do_h + r0 * ld_q,
                                 ld_q, v_h + c0 * ld_kv, ld_kv, 0.0f, dprobs, n_keys);
              /* dS = P (dP - Σ_j P dP) per row; masked keys have P = 0. */
              for (gint64 i = 0; i < n_rows; i++)
                {
                  const float *p_i = probs + i * n_keys; /* (n_keys) */
                  float *ds_i = dprobs + i * n_keys;     /* (n_keys) */
                  double dot = 0.0;
                  float delta;

                  for (gint64 j = 0; j < n_keys; j++)
                    dot += (double)p_i[j] * (double)ds_i[j];
                  delta = (float)dot;
                  for (gint64 j = 0; j < n_keys; j++)
                    ds_i[j] = p_i[j] * (ds_i[j] - delta);
                }
              /* dQ_block = scale dS K_keys */
              slim_linalg_sgemm (FALSE, FALSE, n_rows, head_dim, n_keys, shape->scale, dprobs,
                                 n_keys, k_h + c0 * ld_kv, ld_kv, 0.0f, dq_h + r0 * ld_q, ld_q);
              /* dK_keys += scale dSᵀ Q_block */
              slim_linalg_sgemm (TRUE, FALSE, n_keys, head_dim, n_rows, shape->scale, dprobs,
                                 n_keys, q_h + r0 * ld_q, ld_q, 1.0f, dk_h + c0 * ld_kv, ld_kv);
            }
        }
      offset += len;
    }
}

void
slim_backward_attention_ref (const SlimAttentionShape *shape,
                             const SlimBatch *batch,
                             const float *q,
                             const float *k,
                             const float *v,
                             const float *dout,
                             float *dq,
                             float *dk,
                             float *dv)
{
  gint64 head_dim = shape->head_dim;
  gint64 ld_q = shape->n_heads * head_dim;
  gint64 ld_kv = shape->n_kv_heads * head_dim;
  gint64 group = shape->n_heads / shape->n_kv_heads;
  gint64 max_len = slim_backward_max_len (batch);
  gint64 n_tokens = slim_backward_n_tokens (batch);
  g_autofree double *probs = g_new (double, MAX (max_len, 1));            /* (max_len) */
  g_autofree double *dprobs = g_new (double, MAX (max_len, 1));           /* (max_len) */
  g_autofree double *dq_acc = g_new (double, MAX (head_dim, 1));          /* (head_dim) */
  g_autofree double *dk_acc = g_new0 (double, MAX (n_tokens * ld_kv, 1)); /* (n_tokens, ld_kv) */
  g_autofree double *dv_acc = g_new0 (double, MAX (n_tokens * ld_kv, 1)); /* (n_tokens, ld_kv) */
  gint64 offset = 0;

  for (guint s = 0; s < batch->n_seqs; s++)
    {
      gint64 len = batch->seq_lens[s];

      for (gint64 h = 0; h < shape->n_heads; h++)
        for (gint64 i = 0; i < len; i++)
          {
            const float *qi = q + (offset + i) * ld_q + h * head_dim;     /* (head_dim) */
            const float *doi = dout + (offset + i) * ld_q + h * head_dim; /* (head_dim) */
            gint64 kv = (h / group) * head_dim;
            gint64 lo = shape->sliding_window > 0 ? MAX (0, i - shape->sliding_window + 1) : 0;
            double max_value = -INFINITY, sum = 0.0, delta = 0.0;

            for (gint64 j = lo; j <= i; j++)
              {
                const float *kj = k + (offset + j) * ld_kv + kv;
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
            for (gint64 j = lo; j <= i; j++)
              {
                const float *vj = v + (offset + j) * ld_kv + kv;
                double dot = 0.0;

                probs[j] /= sum;
                for (gint64 d = 0; d < head_dim; d++)
                  {
                    dot += (double)doi[d] * (double)vj[d];
                    dv_acc[(offset + j) * ld_kv + kv + d] += probs[j] * (double)doi[d];
                  }
                dprobs[j] = dot;
                delta += probs[j] * dot;
              }
            for (gint64 d = 0; d < head_dim; d++)
              dq_acc[d] = 0.0;
            for (gint64 j = lo; j <= i; j++)
              {
                const float *kj = k + (offset + j) * ld_kv + kv;
                double ds = probs[j] * (dprobs[j] - delta) * shape->scale;

                for (gint64 d = 0; d < head_dim; d++)
                  {
                    dq_acc[d] += ds * (double)kj[d];
                    dk_acc[(offset + j) * ld_kv + kv + d] += ds * (double)qi[d];
                  }
              }
            for (gint64 d = 0; d < head_dim; d++)
              dq[(offset + i) * ld_q + h * head_dim + d] = (float)dq_acc[d];
          }
      offset += len;
    }
  for (gint64 i = 0; i < n_tokens * ld_kv; i++)
    {
      dk[i] = (float)dk_acc[i];
      dv[i] = (float)dv_acc[i];
    }
}

void
slim_backward_add (float *dst, const float *src, gsize n)
{
  for (gsize i = 0; i < n; i++)
    dst[i] += src[i];
}
