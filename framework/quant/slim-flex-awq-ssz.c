/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-flex-awq-ssz.c: flex_awq_ssz's search numerics (see
 * slim-flex-awq-ssz.h).
 */
#include "slim-flex-awq-ssz.h"

#include <math.h>
#include "slim-error.h"
#include "slim-linalg.h"

/* Tokens per block of slim_flex_awq_accumulate_error (scratch bound). */
#define SLIM_FLEX_AWQ_TOKEN_BLOCK 256

void
slim_flex_awq_act_scales (
    const float *x_min, const float *x_max, const float *s, gint64 n, float *col_scale)
{
  SlimQParamsConfig cfg = { 8, TRUE, 0 };

  for (gint64 j = 0; j < n; j++)
    {
      float offset;
      /* x / s is monotone in x for s > 0: its extremes are these */
      slim_qparams_compute (&cfg, x_min[j] / s[j], x_max[j] / s[j], &col_scale[j], &offset);
    }
}

gboolean
slim_flex_awq_candidate_weight (const SlimFlexAwqWeightQuant *quant,
                                const float *w,
                                gint64 n_out,
                                gint64 n_in,
                                const float *s,
                                float *wdq,
                                GError **error)
{
  for (gint64 i = 0; i < n_out; i++)
    for (gint64 j = 0; j < n_in; j++)
      wdq[i * n_in + j] = w[i * n_in + j] * s[j];
  if (!quant->ssz)
    {
      slim_fake_quantize_rows_dynamic (&quant->qparams, wdq, n_out, n_in, wdq);
      return TRUE;
    }
  {
    g_autofree float *scale = g_try_new (float, n_out);  /* [n_out] */
    g_autofree float *offset = g_try_new (float, n_out); /* [n_out] */

    if (scale == NULL || offset == NULL)
      {
        g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                     "out of memory for %" G_GINT64_FORMAT " weight scales", n_out);
        return FALSE;
      }
    return slim_ssz_quantize (&quant->ssz_cfg, wdq, n_out, n_in, scale, offset, NULL, wdq, NULL,
                              error);
  }
}

/* xq (n_tokens, n_in) = the IR's per-channel int8 fake quant of x / s. */
static void
act_fake_quant (
    const float *x, gint64 n_tokens, gint64 n_in, const float *s, const float *col_scale, float *xq)
{
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 j = 0; j < n_in; j++)
      {
        float q = slim_round_half_even (x[t * n_in + j] / s[j] / col_scale[j]);
        q = q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q);
        xq[t * n_in + j] = q * col_scale[j];
      }
}

gboolean
slim_flex_awq_accumulate_error (const float *x,
                                gint64 n_tokens,
                                gint64 n_in,
                                const float *w,
                                const float *wdq,
                                gint64 n_out,
                                const float *s,
                                const float *col_scale,
                                double *err_sq,
                                double *ref_sq)
{
  const gint64 block = MIN (n_tokens, SLIM_FLEX_AWQ_TOKEN_BLOCK);
  float *xq, *q, *y;
  double e = 0.0, r = 0.0;

  if (n_tokens <= 0 || n_out <= 0)
    return TRUE;
  xq = g_try_new (float, block *n_in); /* [block, n_in] */
  q = g_try_new (float, block *n_out); /* [block, n_out] IR output */
  y = g_try_new (float, block *n_out); /* [block, n_out] float output */
  if (xq == NULL || q == NULL || y == NULL)
    {
      g_free (xq);
      g_free (q);
      g_free (y);
      return FALSE;
    }
  for (gint64 t0 = 0; t0 < n_tokens; t0 += block)
    {
      const gint64 m = MIN (block, n_tokens - t0);
      const float *xb = x + t0 * n_in;

      act_fake_quant (xb, m, n_in, s, col_scale, xq);
      slim_linalg_sgemm (FALSE, TRUE, m, n_out, n_in, 1.0f, xq, n_in, wdq, n_in, 0.0f, q, n_out);
      slim_linalg_sgemm (FALSE, TRUE, m, n_out, n_in, 1.0f, xb, n_in, w, n_in, 0.0f, y, n_out);
      for (gint64 i = 0; i < m * n_out; i++)
        {
          double d = (double)q[i] - (double)y[i];
          e += d * d;
          r += (double)y[i] * (double)y[i];
        }
    }
  *err_sq += e;
  *ref_sq += r;
  g_free (xq);
  g_free (q);
  g_free (y);
  return TRUE;
}

gboolean
slim_flex_awq_accumulate_error_ref (const float *x,
                                    gint64 n_tokens,
                                    gint64 n_in,
                                    const float *w,
                                    const float *wdq,
                                    gint64 n_out,
                                    const float *s,
                                    const float *col_scale,
                                    double *err_sq,
                                    double *ref_sq)
{
  float *xq = g_try_new (float, MAX (n_in, 1)); /* [n_in] one token */

  if (xq == NULL)
    return FALSE;
  for (gint64 t = 0; t < n_tokens; t++)
    {
      act_fake_quant (x + t * n_in, 1, n_in, s, col_scale, xq);
      for (gint64 i = 0; i < n_out; i++)
        {
          double qv = 0.0, yv = 0.0;
          for (gint64 j = 0; j < n_in; j++)
            {
              qv += (double)xq[j] * (double)wdq[i * n_in + j];
              yv += (double)x[t * n_in + j] * (double)w[i * n_in + j];
            }
          *err_sq += (qv - yv) * (qv - yv);
          *ref_sq += yv * yv;
        }
    }
  g_free (xq);
  return TRUE;
}

gboolean
slim_flex_awq_search_alpha (SlimFlexEvalFunc eval,
                            gpointer user_data,
                            double *out_alpha,
                            float *out_error,
                            float *curve,
                            GError **error)
{
  double best_alpha = 0.0;
  float best = INFINITY;

  for (guint k = 0; k < SLIM_FLEX_GRID_POINTS; k++)
    {
      const double alpha = slim_flex_grid_value (k);
      float e;

      if (!eval (alpha, 0.0, &e, user_data, error))
        return FALSE;
      if (curve != NULL)
        curve[k] = e;
      if (e <= best)
        {
          best = e;
          best_alpha = alpha;
        }
    }
  *out_alpha = best_alpha;
  if (out_error != NULL)
    *out_error = best;
  return TRUE;
}
