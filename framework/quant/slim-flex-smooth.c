/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-flex-smooth.c: flex_smooth_quant's search numerics (see
 * slim-flex-smooth.h).
 */
#include "slim-flex-smooth.h"

#include <float.h>
#include <math.h>
#include "slim-linalg.h"

/* Tokens per block of slim_flex_accumulate_error: bounds its scratch
 * memory to (block * (n_in + 2 n_out)) floats whatever the chunk size. */
#define SLIM_FLEX_TOKEN_BLOCK 256

double
slim_flex_grid_value (guint k)
{
  /* np.round (k * 0.05, 2) is the double nearest to k / 20 */
  return (double)k / 20.0;
}

void
slim_flex_quant_int8sym_rows (const float *x, gint64 n_rows, gint64 n_cols, float *out)
{
  for (gint64 i = 0; i < n_rows; i++)
    {
      const float *row = x + i * n_cols;
      float *dst = out + i * n_cols;
      float xmax = 0.0f, interval;

      for (gint64 j = 0; j < n_cols; j++)
        {
          float a = fabsf (row[j]);
          if (a > xmax || isnan (a))
            xmax = isnan (xmax) ? xmax : a; /* torch's max propagates NaN */
        }
      interval = xmax / 127.0f;
      for (gint64 j = 0; j < n_cols; j++)
        {
          float q = rintf (row[j] / interval); /* half to even, as torch.round */
          q = q < -127.0f ? -127.0f : (q > 127.0f ? 127.0f : q);
          dst[j] = q * interval;
        }
    }
}

void
slim_flex_quant_int8asym_tensor (const float *x, gint64 n, float *out)
{
  float x_max = -INFINITY, x_min = INFINITY, scale, zero_point;

  for (gint64 i = 0; i < n; i++)
    {
      x_max = x[i] > x_max ? x[i] : x_max;
      x_min = x[i] < x_min ? x[i] : x_min;
    }
  scale = (x_max - x_min) / 255.0f;
  scale = scale > FLT_EPSILON ? scale : FLT_EPSILON;
  zero_point = rintf (-1.0f * x_min / scale) - 128.0f;
  for (gint64 i = 0; i < n; i++)
    {
      float qx = rintf (x[i] / scale + zero_point);
      out[i] = (qx - zero_point) * scale;
    }
}

/* x^e in float32 as torch's pow(Tensor, Scalar): 0 gives ones, 1 a copy,
 * 0.5 sqrt, -0.5 rsqrt, 2 a square, -1 a reciprocal, otherwise pow. */
static inline float
pow_torch (float x, float e)
{
  if (e == 0.0f)
    return 1.0f;
  if (e == 1.0f)
    return x;
  if (e == 0.5f)
    return sqrtf (x);
  if (e == -0.5f)
    return 1.0f / sqrtf (x);
  if (e == 2.0f)
    return x * x;
  if (e == -1.0f)
    return 1.0f / x;
  return powf (x, e);
}

void
slim_flex_candidate_scales (
    const float *act_max, const float *w_max, gint64 n, double alpha, double beta, float *scales)
{
  const float a_exp = (float)alpha, w_exp = (float)(-beta);

  for (gint64 j = 0; j < n; j++)
    scales[j] = pow_torch (act_max[j], a_exp) * pow_torch (w_max[j], w_exp);
}

void
slim_flex_candidate_weight (
    const float *w, gint64 n_out, gint64 n_in, const float *scales, float *wq)
{
  for (gint64 i = 0; i < n_out; i++)
    for (gint64 j = 0; j < n_in; j++)
      wq[i * n_in + j] = w[i * n_in + j] * scales[j];
  slim_flex_quant_int8sym_rows (wq, n_out, n_in, wq);
}

/* xq (n_tokens, n_in) = quant_int8sym_rows (x / s). */
static void
scaled_quant_rows (const float *x, gint64 n_tokens, gint64 n_in, const float *scales, float *xq)
{
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 j = 0; j < n_in; j++)
      xq[t * n_in + j] = x[t * n_in + j] / scales[j];
  slim_flex_quant_int8sym_rows (xq, n_tokens, n_in, xq);
}

gboolean
slim_flex_accumulate_error (const float *x,
                            gint64 n_tokens,
                            gint64 n_in,
                            const float *w,
                            const float *wq,
                            gint64 n_out,
                            const float *scales,
                            double *err_sq,
                            double *ref_sq)
{
  const gint64 block = MIN (n_tokens, SLIM_FLEX_TOKEN_BLOCK);
  float *xq, *q, *y;
  double e = 0.0, r = 0.0;

  if (n_tokens <= 0 || n_out <= 0)
    return TRUE;
  xq = g_try_new (float, block *n_in); /* [block, n_in] */
  q = g_try_new (float, block *n_out); /* [block, n_out] quantized product */
  y = g_try_new (float, block *n_out); /* [block, n_out] float product */
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

      scaled_quant_rows (xb, m, n_in, scales, xq);
      slim_linalg_sgemm (FALSE, TRUE, m, n_out, n_in, 1.0f, xq, n_in, wq, n_in, 0.0f, q, n_out);
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
slim_flex_accumulate_error_ref (const float *x,
                                gint64 n_tokens,
                                gint64 n_in,
                                const float *w,
                                const float *wq,
                                gint64 n_out,
                                const float *scales,
                                double *err_sq,
                                double *ref_sq)
{
  float *xq = g_try_new (float, MAX (n_in, 1)); /* [n_in] one token */

  if (xq == NULL)
    return FALSE;
  for (gint64 t = 0; t < n_tokens; t++)
    {
      scaled_quant_rows (x + t * n_in, 1, n_in, scales, xq);
      for (gint64 i = 0; i < n_out; i++)
        {
          double qv = 0.0, yv = 0.0;
          for (gint64 j = 0; j < n_in; j++)
            {
              qv += (double)xq[j] * (double)wq[i * n_in + j];
              yv += (double)x[t * n_in + j] * (double)w[i * n_in + j];
            }
          *err_sq += (qv - yv) * (qv - yv);
          *ref_sq += yv * yv;
        }
    }
  g_free (xq);
  return TRUE;
}

float
slim_flex_error (double err_sq, double ref_sq)
{
  return (float)(sqrt (err_sq) / sqrt (ref_sq));
}

gboolean
slim_flex_search_alpha_beta (SlimFlexEvalFunc eval,
                             gpointer user_data,
                             double *out_alpha,
                             double *out_beta,
                             float *out_error,
                             float *curve_alpha,
                             float *curve_beta,
                             GError **error)
{
  double best_alpha = 0.0, best_beta = 0.0;
  float best = INFINITY;

  /* stage 1: beta = 1 - alpha */
  for (guint k = 0; k < SLIM_FLEX_GRID_POINTS; k++)
    {
      const double alpha = slim_flex_grid_value (k);
      float e;

      if (!eval (alpha, 1.0 - alpha, &e, user_data, error))
        return FALSE;
      if (curve_alpha != NULL)
        curve_alpha[k] = e;
      if (e <= best)
        {
          best = e;
          best_alpha = alpha;
        }
    }
  /* stage 2: beta at the best alpha, from stage 1's error */
  for (guint k = 0; k < SLIM_FLEX_GRID_POINTS; k++)
    {
      const double beta = slim_flex_grid_value (k);
      float e;

      if (!eval (best_alpha, beta, &e, user_data, error))
        return FALSE;
      if (curve_beta != NULL)
        curve_beta[k] = e;
      if (e <= best)
        {
          best = e;
          best_beta = beta;
        }
    }
  *out_alpha = best_alpha;
  *out_beta = best_beta;
  if (out_error != NULL)
    *out_error = best;
  return TRUE;
}
