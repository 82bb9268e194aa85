/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-smooth.c: smoothing numerics (see slim-smooth.h).
 */
#include "slim-smooth.h"

#include <math.h>
#include <string.h>
#include "slim-linalg.h"

/* ---- activation statistics --------------------------------------------- */

SlimSmoothStats *
slim_smooth_stats_new (gint64 n_channels, gboolean shifted)
{
  SlimSmoothStats *stats;

  g_return_val_if_fail (n_channels > 0, NULL);
  stats = g_new0 (SlimSmoothStats, 1);
  stats->n_channels = n_channels;
  stats->shifted = shifted;
  stats->min = g_new (float, n_channels);
  stats->max = g_new (float, n_channels);
  stats->smooth = g_new (float, n_channels);
  for (gint64 j = 0; j < n_channels; j++)
    {
      stats->min[j] = INFINITY;
      stats->max[j] = -INFINITY;
      stats->smooth[j] = -INFINITY;
    }
  return stats;
}

void
slim_smooth_stats_free (SlimSmoothStats *stats)
{
  if (stats == NULL)
    return;
  g_free (stats->min);
  g_free (stats->max);
  g_free (stats->smooth);
  g_free (stats);
}

/* torch.max / torch.min propagate NaN; fmaxf would drop it. */
static inline float
max_nan (float a, float b)
{
  if (isnan (a))
    return a;
  if (isnan (b))
    return b;
  return a > b ? a : b;
}

static inline float
min_nan (float a, float b)
{
  if (isnan (a))
    return a;
  if (isnan (b))
    return b;
  return a < b ? a : b;
}

void
slim_smooth_stats_update (SlimSmoothStats *stats, const float *x, gint64 n_tokens)
{
  const gint64 n = stats->n_channels;
  float *shift; /* (n_channels) */

  if (n_tokens <= 0)
    return;
  /* row-streaming passes: every inner loop walks one contiguous row */
  for (gint64 t = 0; t < n_tokens; t++)
    {
      const float *row = x + t * n;
      for (gint64 j = 0; j < n; j++)
        {
          stats->min[j] = min_nan (stats->min[j], row[j]);
          stats->max[j] = max_nan (stats->max[j], row[j]);
        }
    }
  shift = g_new (float, n);
  slim_smooth_stats_get_shift (stats, shift);
  for (gint64 t = 0; t < n_tokens; t++)
    {
      const float *row = x + t * n;
      if (stats->shifted)
        for (gint64 j = 0; j < n; j++)
          stats->smooth[j] = max_nan (stats->smooth[j], fabsf (row[j] - shift[j]));
      else
        for (gint64 j = 0; j < n; j++)
          stats->smooth[j] = max_nan (stats->smooth[j], fabsf (row[j]));
    }
  g_free (shift);
  stats->n_tokens += n_tokens;
}

void
slim_smooth_stats_merge (SlimSmoothStats *stats,
                         const float *min,
                         const float *max,
                         const float *smooth,
                         gint64 n_tokens)
{
  for (gint64 j = 0; j < stats->n_channels; j++)
    {
      stats->min[j] = min_nan (stats->min[j], min[j]);
      stats->max[j] = max_nan (stats->max[j], max[j]);
      stats->smooth[j] = max_nan (stats->smooth[j], smooth[j]);
    }
  stats->n_tokens += n_tokens;
}

void
slim_smooth_stats_update_ref (SlimSmoothStats *stats, const float *x, gint64 n_tokens)
{
  const gint64 n = stats->n_channels;

  if (n_tokens <= 0)
    return;
  /* one channel at a time, down its column */
  for (gint64 j = 0; j < n; j++)
    {
      float lo = stats->min[j], hi = stats->max[j], sm = stats->smooth[j], shift;

      for (gint64 t = 0; t < n_tokens; t++)
        {
          lo = min_nan (lo, x[t * n + j]);
          hi = max_nan (hi, x[t * n + j]);
        }
      shift = (hi + lo) / 2.0f;
      for (gint64 t = 0; t < n_tokens; t++)
        {
          float v = stats->shifted ? x[t * n + j] - shift : x[t * n + j];
          sm = max_nan (sm, fabsf (v));
        }
      stats->min[j] = lo;
      stats->max[j] = hi;
      stats->smooth[j] = sm;
    }
  stats->n_tokens += n_tokens;
}

void
slim_smooth_stats_get_shift (const SlimSmoothStats *stats, float *shift)
{
  for (gint64 j = 0; j < stats->n_channels; j++)
    shift[j] = (stats->max[j] + stats->min[j]) / 2.0f;
}

gint64
slim_smooth_stats_find_non_finite (const SlimSmoothStats *stats)
{
  for (gint64 j = 0; j < stats->n_channels; j++)
    if (!isfinite (stats->min[j]) || !isfinite (stats->max[j]) || !isfinite (stats->smooth[j]))
      return j;
  return -1;
}

/* ---- weight statistics and scales ---------------------------------------- */

void
slim_smooth_weight_column_max (
    const float *w, gint64 n_out, gint64 n_in, gboolean absolute, gboolean accumulate, float *out)
{
  gint64 first = 0;

  if (!accumulate)
    {
      if (n_out == 0)
        {
          for (gint64 j = 0; j < n_in; j++)
            out[j] = -INFINITY;
          return;
        }
      for (gint64 j = 0; j < n_in; j++)
        out[j] = absolute ? fabsf (w[j]) : w[j];
      first = 1;
    }
  for (gint64 i = first; i < n_out; i++)
    {
      const float *row = w + i * n_in;
      if (absolute)
        for (gint64 j = 0; j < n_in; j++)
          out[j] = max_nan (out[j], fabsf (row[j]));
      else
        for (gint64 j = 0; j < n_in; j++)
          out[j] = max_nan (out[j], row[j]);
    }
}

void
slim_smooth_weight_column_max_ref (
    const float *w, gint64 n_out, gint64 n_in, gboolean absolute, gboolean accumulate, float *out)
{
  for (gint64 j = 0; j < n_in; j++)
    {
      float m = accumulate ? out[j] : -INFINITY;
      for (gint64 i = 0; i < n_out; i++)
        m = max_nan (m, absolute ? fabsf (w[i * n_in + j]) : w[i * n_in + j]);
      out[j] = m;
    }
}

/* x^e in float32 as torch's pow(Tensor, Scalar) computes it: the exponent
 * cast to float, 0.5 as sqrt, 1 as identity, 0 as one. */
static inline float
pow_torch (float x, float e)
{
  if (e == 0.5f)
    return sqrtf (x);
  if (e == 1.0f)
    return x;
  if (e == 0.0f)
    return 1.0f;
  if (e == 2.0f)
    return x * x;
  return powf (x, e);
}

void
slim_smooth_scales (const float *act_max,
                    const float *w_max,
                    gint64 n,
                    double alpha,
                    double beta,
                    float w_floor,
                    float scale_min,
                    float *scales)
{
  const float a_exp = (float)alpha, w_exp = (float)beta;

  for (gint64 j = 0; j < n; j++)
    {
      float w = w_max[j] < w_floor ? w_floor : w_max[j]; /* clamp keeps NaN */
      float s = pow_torch (act_max[j], a_exp) / pow_torch (w, w_exp);
      scales[j] = s < scale_min ? scale_min : s;
    }
}

void
slim_smooth_scales_ref (const float *act_max,
                        const float *w_max,
                        gint64 n,
                        double alpha,
                        double beta,
                        float w_floor,
                        float scale_min,
                        float *scales)
{
  for (gint64 j = 0; j < n; j++)
    {
      double w = w_max[j] < w_floor ? (double)w_floor : (double)w_max[j];
      double s = pow ((double)act_max[j], (double)(float)alpha) / pow (w, (double)(float)beta);
      scales[j] = s < (double)scale_min ? scale_min : (float)s;
    }
}

void
slim_smooth_gqa_reduce_mean (const float *scales,
                             gint64 n_heads,
                             gint64 n_kv_heads,
                             gint64 head_dim,
                             float *o_scales,
                             float *v_scales)
{
  const gint64 group = n_heads / n_kv_heads;

  for (gint64 g = 0; g < n_kv_heads; g++)
    for (gint64 d = 0; d < head_dim; d++)
      {
        float sum = 0.0f;
        for (gint64 h = 0; h < group; h++)
          sum += scales[(g * group + h) * head_dim + d];
        v_scales[g * head_dim + d] = sum / (float)group;
      }
  for (gint64 h = 0; h < n_heads; h++)
    memcpy (o_scales + h * head_dim, v_scales + (h / group) * head_dim,
            (gsize)head_dim * sizeof (float));
}

void
slim_smooth_gqa_scales_max (const float *act_max,
                            const float *w_max,
                            gint64 n_heads,
                            gint64 n_kv_heads,
                            gint64 head_dim,
                            double alpha,
                            double beta,
                            float *o_scales,
                            float *v_scales)
{
  const gint64 group = n_heads / n_kv_heads;

  for (gint64 g = 0; g < n_kv_heads; g++)
    for (gint64 d = 0; d < head_dim; d++)
      {
        float a = -INFINITY, w = -INFINITY;
        for (gint64 h = 0; h < group; h++)
          {
            a = max_nan (a, act_max[(g * group + h) * head_dim + d]);
            w = max_nan (w, w_max[(g * group + h) * head_dim + d]);
          }
        slim_smooth_scales (&a, &w, 1, alpha, beta, -INFINITY, 1e-5f, &v_scales[g * head_dim + d]);
      }
  for (gint64 h = 0; h < n_heads; h++)
    memcpy (o_scales + h * head_dim, v_scales + (h / group) * head_dim,
            (gsize)head_dim * sizeof (float));
}

/* ---- fusion ------------------------------------------------------------ */

void
slim_smooth_scale_columns (float *w, gint64 n_out, gint64 n_in, const float *scales)
{
  for (gint64 i = 0; i < n_out; i++)
    {
      float *row = w + i * n_in;
      for (gint64 j = 0; j < n_in; j++)
        row[j] *= scales[j];
    }
}

void
slim_smooth_divide_rows (float *w, float *bias, gint64 n_out, gint64 n_in, const float *scales)
{
  for (gint64 i = 0; i < n_out; i++)
    {
      const float inv = 1.0f / scales[i];
      float *row = w + i * n_in;
      for (gint64 j = 0; j < n_in; j++)
        row[j] *= inv;
      if (bias != NULL)
        bias[i] *= inv;
    }
}

void
slim_smooth_divide_vector (float *v, gint64 n, const float *scales)
{
  for (gint64 j = 0; j < n; j++)
    v[j] *= 1.0f / scales[j];
}

void
slim_smooth_linear_shift (const float *w, gint64 n_out, gint64 n_in, const float *shift, float *out)
{
  /* torch.mm (shift (1, n_in), Wᵀ): one row through the BLAS linear */
  slim_linalg_linear (shift, w, NULL, out, 1, n_in, n_out);
}

void
slim_smooth_linear_shift_ref (
    const float *w, gint64 n_out, gint64 n_in, const float *shift, float *out)
{
  for (gint64 i = 0; i < n_out; i++)
    {
      double acc = 0.0;
      for (gint64 j = 0; j < n_in; j++)
        acc += (double)w[i * n_in + j] * (double)shift[j];
      out[i] = (float)acc;
    }
}

void
slim_smooth_norm_shift (const float *shift, const float *scales, gint64 n, float *norm_shift)
{
  for (gint64 j = 0; j < n; j++)
    norm_shift[j] = shift[j] * -1.0f * (1.0f / scales[j]);
}
