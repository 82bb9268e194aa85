/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-kv-smooth.c: kv_smooth numerics (see slim-kv-smooth.h).
 */
#include "slim-kv-smooth.h"

#include <math.h>

void
slim_kv_smooth_minmax_update (
    float *kmin, float *kmax, const float *k, gint64 n_tokens, gint64 n_channels, gboolean first)
{
  for (gint64 t = 0; t < n_tokens; t++)
    {
      const float *row = k + t * n_channels; /* (n_channels) */
      for (gint64 c = 0; c < n_channels; c++)
        {
          if (first && t == 0)
            {
              kmin[c] = row[c];
              kmax[c] = row[c];
              continue;
            }
          kmin[c] = MIN (kmin[c], row[c]);
          kmax[c] = MAX (kmax[c], row[c]);
        }
    }
}

void
slim_kv_smooth_abs_max (const float *kmin, const float *kmax, gint64 n, float *out)
{
  for (gint64 c = 0; c < n; c++)
    out[c] = MAX (fabsf (kmin[c]), fabsf (kmax[c]));
}

/* torch's pow on float32: exponent 1 is the identity, 0.5 a square root. */
static float
pow_factor (float x, double factor)
{
  if (factor == 1.0)
    return x;
  if (factor == 0.5)
    return sqrtf (x);
  return powf (x, (float)factor);
}

/* pair (head_dim / 2) of kv head h = max over the two RoPE halves. */
static float
pair_max (const float *key_abs_max, gint64 h, gint64 head_dim, gint64 d)
{
  const float *head = key_abs_max + h * head_dim; /* (head_dim) */
  return MAX (head[d], head[d + head_dim / 2]);
}

void
slim_kv_smooth_linear_scales (const float *key_abs_max,
                              gint64 n_kv_heads,
                              gint64 head_dim,
                              gint64 n_groups,
                              double smooth_factor,
                              float *k_scale,
                              float *q_scale)
{
  const gint64 half = head_dim / 2;

  for (gint64 h = 0; h < n_kv_heads; h++)
    for (gint64 d = 0; d < half; d++)
      {
        float s = pow_factor (pair_max (key_abs_max, h, head_dim, d), smooth_factor);
        k_scale[h * head_dim + d] = s;
        k_scale[h * head_dim + d + half] = s;
      }
  for (gint64 h = 0; h < n_kv_heads; h++)
    for (gint64 g = 0; g < n_groups; g++)
      for (gint64 d = 0; d < head_dim; d++)
        q_scale[(h * n_groups + g) * head_dim + d] = k_scale[h * head_dim + d];
}

void
slim_kv_smooth_norm_scales (const float *key_abs_max,
                            gint64 n_kv_heads,
                            gint64 head_dim,
                            double smooth_factor,
                            float *scale)
{
  const gint64 half = head_dim / 2;

  for (gint64 d = 0; d < half; d++)
    {
      float m = pair_max (key_abs_max, 0, head_dim, d);
      for (gint64 h = 1; h < n_kv_heads; h++)
        m = MAX (m, pair_max (key_abs_max, h, head_dim, d));
      scale[d] = pow_factor (m, smooth_factor);
      scale[d + half] = scale[d];
    }
}

void
slim_kv_smooth_scale_rows (
    float *w, float *bias, gint64 n_rows, gint64 n_cols, const float *scale, gboolean divide)
{
  for (gint64 i = 0; i < n_rows; i++)
    {
      float *row = w + i * n_cols; /* (n_cols) */
      for (gint64 j = 0; j < n_cols; j++)
        row[j] = divide ? row[j] / scale[i] : row[j] * scale[i];
    }
  if (bias != NULL)
    slim_kv_smooth_scale_vector (bias, n_rows, scale, divide);
}

void
slim_kv_smooth_scale_vector (float *v, gint64 n, const float *scale, gboolean divide)
{
  for (gint64 i = 0; i < n; i++)
    v[i] = divide ? v[i] / scale[i] : v[i] * scale[i];
}
