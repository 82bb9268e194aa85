/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-fp8.c: FP8 E4M3 fake quantization (see slim-fp8.h).
 */
#include "slim-fp8.h"

#include <math.h>
#include "slim-dtype.h"
#include "slim-qparams.h"

float
slim_fp8_e4m3_round (float x)
{
  float a = fabsf (x), step, q;
  int e;

  if (isnan (x))
    return x;
  if (a >= SLIM_FP8_E4M3_MAX)
    return copysignf (SLIM_FP8_E4M3_MAX, x);
  if (a < 0x1p-6f)
    step = 0x1p-9f; /* subnormals: m * 2^-9 */
  else
    {
      frexpf (a, &e); /* a = f * 2^e, f in [0.5, 1): exponent e - 1 */
      step = ldexpf (1.0f, e - 1 - 3);
    }
  /* a / step is exact (a power of two); so is q * step */
  q = slim_round_half_even (a / step) * step;
  if (q > SLIM_FP8_E4M3_MAX)
    q = SLIM_FP8_E4M3_MAX;
  return copysignf (q, x);
}

/* The value of E4M3 code c (0..126: positive finite; 127 is NaN). */
static float
slim_fp8_e4m3_decode (int c)
{
  int exp = (c >> 3) & 0xF, man = c & 7;

  if (exp == 0)
    return ldexpf ((float)man, -9);
  return ldexpf (1.0f + (float)man / 8.0f, exp - 7);
}

float
slim_fp8_e4m3_round_ref (float x)
{
  float a = fabsf (x), best = 0.0f, best_d = INFINITY;
  int best_c = 0;

  if (isnan (x))
    return x;
  for (int c = 0; c <= 126; c++)
    {
      float v = slim_fp8_e4m3_decode (c);
      float d = fabsf (v - a);

      if (d < best_d || (d == best_d && (c & 1) == 0 && (best_c & 1) == 1))
        {
          best = v;
          best_d = d;
          best_c = c;
        }
    }
  return copysignf (best, x);
}

float
slim_fp8_e4m3_scale (float min_val, float max_val)
{
  float amax = fmaxf (fabsf (min_val), fabsf (max_val));

  return fmaxf (amax, 1e-12f) / SLIM_FP8_E4M3_MAX;
}

static float
slim_fp8_fake_one (float x, float scale)
{
  float v = x / scale;

  v = v < -SLIM_FP8_E4M3_MAX ? -SLIM_FP8_E4M3_MAX : (v > SLIM_FP8_E4M3_MAX ? SLIM_FP8_E4M3_MAX : v);
  return slim_fp8_e4m3_round (v) * scale;
}

void
slim_fp8_fake_quantize_cols (
    const float *x, gint64 n_rows, gint64 n_cols, const float *scale, float *out)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  g_return_if_fail ((x != NULL && scale != NULL && out != NULL) || n_rows == 0 || n_cols == 0);

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      out[r * n_cols + c] = slim_fp8_fake_one (x[r * n_cols + c], scale[c]);
}

void
slim_fp8_fake_quantize_rows_dynamic (const float *x, gint64 n_rows, gint64 n_cols, float *out)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  g_return_if_fail ((x != NULL && out != NULL) || n_rows == 0 || n_cols == 0);

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = x + r * n_cols;
      float mn = 0.0f, mx = 0.0f, scale;

      for (gint64 c = 0; c < n_cols; c++)
        {
          mn = c == 0 || row[c] < mn ? row[c] : mn;
          mx = c == 0 || row[c] > mx ? row[c] : mx;
        }
      scale = slim_fp8_e4m3_scale (mn, mx);
      for (gint64 c = 0; c < n_cols; c++)
        out[r * n_cols + c] = slim_fp8_fake_one (row[c], scale);
    }
}

void
slim_fp8_quantize_weight_rows (
    const float *w, gint64 n_rows, gint64 n_cols, guint8 *codes, float *scale, float *dequantized)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  g_return_if_fail ((w != NULL && codes != NULL && scale != NULL) || n_rows == 0 || n_cols == 0);

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = w + r * n_cols;
      float mn = 0.0f, mx = 0.0f;

      for (gint64 c = 0; c < n_cols; c++)
        {
          mn = c == 0 || row[c] < mn ? row[c] : mn;
          mx = c == 0 || row[c] > mx ? row[c] : mx;
        }
      scale[r] = slim_fp8_e4m3_scale (mn, mx);
      for (gint64 c = 0; c < n_cols; c++)
        {
          float v = row[c] / scale[r];

          v = v < -SLIM_FP8_E4M3_MAX ? -SLIM_FP8_E4M3_MAX
                                     : (v > SLIM_FP8_E4M3_MAX ? SLIM_FP8_E4M3_MAX : v);
          codes[r * n_cols + c] = slim_f32_to_f8_e4m3fn (v);
          if (dequantized != NULL)
            dequantized[r * n_cols + c] = slim_f8_e4m3fn_to_f32 (codes[r * n_cols + c]) * scale[r];
        }
    }
}
