/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-awq.c: awq numerics (see slim-awq.h).
 */
#include "slim-awq.h"

#include <math.h>
#include <string.h>
#include "slim-linalg.h"

void
slim_awq_mean_update (
    float *mean, gint64 *count, const float *x, gint64 n_tokens, gint64 n_channels)
{
  g_autofree double *sum = NULL; /* (n_channels) */
  const gint64 old = *count;

  if (n_tokens <= 0)
    return;
  sum = g_new0 (double, n_channels);
  for (gint64 t = 0; t < n_tokens; t++)
    {
      const float *row = x + t * n_channels; /* (n_channels) */
      for (gint64 c = 0; c < n_channels; c++)
        sum[c] += fabsf (row[c]);
    }
  for (gint64 c = 0; c < n_channels; c++)
    {
      float cur = (float)(sum[c] / (double)n_tokens);
      if (old == 0)
        mean[c] = cur;
      else /* float32 as the tensors are: (old_mean * old + cur * n) / new */
        mean[c] = (mean[c] * (float)old + cur * (float)n_tokens) / (float)(old + n_tokens);
    }
  *count = old + n_tokens;
}

void
slim_awq_scales (const float *act_mean, gint64 n, double ratio, float *scales)
{
  float lo = INFINITY, hi = -INFINITY, norm;

  for (gint64 j = 0; j < n; j++)
    {
      float s;
      if (ratio == 0.0)
        s = 1.0f; /* torch: x^0 = 1, also for 0 */
      else if (ratio == 0.5)
        s = sqrtf (act_mean[j]);
      else if (ratio == 1.0)
        s = act_mean[j];
      else
        s = powf (act_mean[j], (float)ratio);
      s = s < 1e-4f ? 1e-4f : s; /* clamp (min): NaN stays NaN */
      scales[j] = s;
      lo = fminf (lo, s);
      hi = fmaxf (hi, s);
    }
  norm = sqrtf (hi * lo);
  for (gint64 j = 0; j < n; j++)
    {
      float s = scales[j] / norm;
      scales[j] = isfinite (s) ? s : 1.0f;
    }
}

gboolean
slim_awq_candidate_weight (const SlimAwqWeightQuant *quant,
                           const float *w,
                           gint64 n_out,
                           gint64 n_in,
                           const float *scales,
                           float *out,
                           GError **error)
{
  gint64 n_params;

  if (!slim_qparams_weight_n_params (quant->scope, n_out, n_in, quant->group_size, &n_params,
                                     error))
    return FALSE;
  for (gint64 i = 0; i < n_out; i++)
    for (gint64 j = 0; j < n_in; j++)
      out[i * n_in + j] = w[i * n_in + j] * scales[j];
  slim_fake_quantize_rows_dynamic (&quant->cfg, out, n_params, (n_out * n_in) / n_params, out);
  for (gint64 i = 0; i < n_out; i++)
    for (gint64 j = 0; j < n_in; j++)
      out[i * n_in + j] = out[i * n_in + j] / scales[j];
  return TRUE;
}

gboolean
slim_awq_search (const float *act_mean,
                 gint64 n,
                 gint64 n_grid,
                 SlimAwqEvalFunc eval,
                 gpointer user_data,
                 float *best_scales,
                 double *losses,
                 gint *out_best,
                 GError **error)
{
  g_autofree float *scales = g_new (float, MAX (n, 1)); /* (n) */
  double best = INFINITY;

  *out_best = -1;
  for (gint64 g = 0; g < n_grid; g++)
    {
      const double ratio = (double)g * 1.0 / (double)n_grid;
      double sum_sq = 0.0, loss;
      gint64 count = 0;

      slim_awq_scales (act_mean, n, ratio, scales);
      if (!eval (scales, &sum_sq, &count, user_data, error))
        return FALSE;
      loss = count > 0 ? sum_sq / (double)count : INFINITY;
      if (losses != NULL)
        losses[g] = loss;
      if (loss < best)
        {
          best = loss;
          *out_best = (gint)g;
          memcpy (best_scales, scales, (gsize)n * sizeof (float));
        }
    }
  return TRUE;
}

double
slim_awq_sum_sq_diff (const float *a, const float *b, gint64 n)
{
  double sum = 0.0;

  for (gint64 i = 0; i < n; i++)
    {
      const double d = (double)a[i] - (double)b[i];
      sum += d * d;
    }
  return sum;
}

gboolean
slim_awq_linear_eval (
    const float *scales, double *out_sum_sq, gint64 *out_n, gpointer user_data, GError **error)
{
  const SlimAwqLinear *lin = user_data;
  g_autofree float *wq = g_new (float, lin->n_out * lin->n_in); /* (n_out, n_in) */

  if (!slim_awq_candidate_weight (lin->quant, lin->w, lin->n_out, lin->n_in, scales, wq, error))
    return FALSE;
  *out_sum_sq = 0.0;
  *out_n = 0;
  for (guint i = 0; i < lin->n_samples; i++)
    {
      const gint64 n_el = lin->n_tokens[i] * lin->n_out;
      g_autofree float *y = g_new (float, MAX (n_el, 1)); /* (n_tokens, n_out) */

      slim_linalg_linear (lin->x[i], wq, lin->bias, y, lin->n_tokens[i], lin->n_in, lin->n_out);
      *out_sum_sq += slim_awq_sum_sq_diff (y, lin->y[i], n_el);
      *out_n += n_el;
    }
  return TRUE;
}
