/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-mx-weight-methods.c: ceil_x, fouroversix and mse_round MX weight
 * quantizers (see slim-mx-weight-methods.h).
 */
#include "slim-mx-weight-methods.h"

#include <math.h>
#include <string.h>

#define MX_LOG2_EPS 9.6e-7f
#define MX_SCALE_EMAX 127
#define MX_FP4_EMAX 2
#define MX_FP8_EMAX 8

static float
amax_of (const float *x, gint64 n)
{
  float amax = 0.0f;

  for (gint64 i = 0; i < n; i++)
    {
      float a = fabsf (x[i]);

      if (isnan (a))
        return a;
      amax = a > amax ? a : amax;
    }
  return amax;
}

int
slim_mx_ceil_x_shared_exp (float amax, float ceil_x_value)
{
  float v = amax / ceil_x_value, se;

  v = v < 0.0f ? 0.0f : v; /* clamp (min=0) */
  se = ceilf (log2f (v + MX_LOG2_EPS));
  if (isnan (se))
    return SLIM_MX_SHARED_EXP_NAN;
  return (int)CLAMP (se, (float)(-MX_SCALE_EMAX - MX_FP4_EMAX),
                     (float)(MX_SCALE_EMAX - MX_FP4_EMAX));
}

int
slim_mx_e8m0_round_nearest (float scale)
{
  float l, ip, frac;
  int i;

  if (isnan (scale))
    return SLIM_MX_SHARED_EXP_NAN;
  if (scale <= 0.0f)
    scale = 1.0f;
  l = log2f (scale);
  ip = floorf (l);
  frac = l - ip;
  i = (int)ip;
  if (frac > 0.5f + 1e-6f)
    return i + 1;
  if (frac < 0.5f - 1e-6f)
    return i;
  /* tie: int_part % 2 == 0 (Python modulo) rounds up */
  return ((i % 2) + 2) % 2 == 0 ? i + 1 : i;
}

/* Sum of squared errors of the block's elements in a block of se. */
static float
block_sse (SlimMxFormat format, const float *x, gint64 n, int se, gboolean ref)
{
  float scale = se == SLIM_MX_SHARED_EXP_NAN ? NAN : ref ? exp2f ((float)se) : ldexpf (1.0f, se);
  float sse = 0.0f;

  for (gint64 i = 0; i < n; i++)
    {
      float q = ref ? slim_mx_quantize_element_ref (format, x[i], se)
                    : slim_mx_quantize_element (format, x[i], se);
      float d = x[i] - q * scale;

      sse += d * d;
    }
  return sse;
}

static void
quantize_block (SlimMxFormat format, const float *x, gint64 n, int se, gboolean ref, float *e)
{
  for (gint64 i = 0; i < n; i++)
    e[i] = ref ? slim_mx_quantize_element_ref (format, x[i], se)
               : slim_mx_quantize_element (format, x[i], se);
}

typedef enum
{
  METHOD_CEIL_X,
  METHOD_FOUROVERSIX,
  METHOD_MSE_ROUND,
} Method;

/* calculate_mx_qparam's clamp of an MXFP8 shared exponent. */
static int
fp8_clamp (float se)
{
  if (isnan (se) || se > (float)MX_SCALE_EMAX)
    return SLIM_MX_SHARED_EXP_NAN;
  return (int)fmaxf (se, (float)-MX_SCALE_EMAX);
}

static int
choose_exp (Method method, const float *xb, gint64 n, float amax, float c, gboolean ref)
{
  switch (method)
    {
    case METHOD_CEIL_X:
      return slim_mx_ceil_x_shared_exp (amax, c);
    case METHOD_FOUROVERSIX:
      {
        int a = slim_mx_e8m0_round_nearest (amax / 6.0f);
        int b = slim_mx_e8m0_round_nearest (amax / 4.0f);

        return block_sse (SLIM_MX_FP4_E2M1, xb, n, a, ref)
                       <= block_sse (SLIM_MX_FP4_E2M1, xb, n, b, ref)
                   ? a
                   : b;
      }
    case METHOD_MSE_ROUND:
    default:
      {
        float l = log2f (amax + (amax == 0.0f ? 0x1p-126f : 0.0f));
        int up = fp8_clamp (ceilf (l) - (float)MX_FP8_EMAX);
        int down = fp8_clamp (floorf (l) - (float)MX_FP8_EMAX);
        float mu = block_sse (SLIM_MX_FP8_E4M3, xb, n, up, ref);
        float md = block_sse (SLIM_MX_FP8_E4M3, xb, n, down, ref);

        return isfinite (mu) && (mu < md || !isfinite (md)) ? up : down;
      }
    }
}

/* Fast: block by block on the row itself (the last block short). */
static void
quantize_rows (Method method,
               const float *x, /* [n_rows, n_cols] */
               gint64 n_rows,
               gint64 n_cols,
               float c,
               float *elements, /* [n_rows, n_cols] */
               gint16 *shared_exp /* [n_rows, n_blocks] */)
{
  SlimMxFormat format = method == METHOD_MSE_ROUND ? SLIM_MX_FP8_E4M3 : SLIM_MX_FP4_E2M1;
  gint64 n_blocks = slim_mx_n_blocks (n_cols);

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 b = 0; b < n_blocks; b++)
      {
        gint64 c0 = b * SLIM_MX_BLOCK_SIZE, n = MIN (SLIM_MX_BLOCK_SIZE, n_cols - c0);
        const float *xb = x + r * n_cols + c0;
        int se = choose_exp (method, xb, n, amax_of (xb, n), c, FALSE);

        shared_exp[r * n_blocks + b] = (gint16)se;
        quantize_block (format, xb, n, se, FALSE, elements + r * n_cols + c0);
      }
}

/* Reference: reshape_to_blocks (zero padding to whole blocks), amax per
 * block, exponent, quantize, unpad. */
static void
quantize_rows_ref (Method method,
                   const float *x,
                   gint64 n_rows,
                   gint64 n_cols,
                   float c,
                   float *elements,
                   gint16 *shared_exp)
{
  SlimMxFormat format = method == METHOD_MSE_ROUND ? SLIM_MX_FP8_E4M3 : SLIM_MX_FP4_E2M1;
  gint64 n_blocks = slim_mx_n_blocks (n_cols), padded = n_blocks * SLIM_MX_BLOCK_SIZE;
  float *p; /* [n_rows, n_blocks, 32] */
  float *q; /* [n_rows, n_blocks, 32] */

  if (n_rows == 0 || n_cols == 0)
    return;
  p = g_new0 (float, n_rows *padded);
  q = g_new0 (float, n_rows *padded);
  for (gint64 r = 0; r < n_rows; r++)
    memcpy (p + r * padded, x + r * n_cols, (gsize)n_cols * sizeof (float));
  for (gint64 k = 0; k < n_rows * n_blocks; k++)
    {
      const float *pb = p + k * SLIM_MX_BLOCK_SIZE;
      float m = 0.0f;
      int se;

      for (int i = 0; i < SLIM_MX_BLOCK_SIZE; i++)
        m = isnan (pb[i]) || isnan (m) ? NAN : fmaxf (m, fabsf (pb[i]));
      se = choose_exp (method, pb, SLIM_MX_BLOCK_SIZE, m, c, TRUE);
      shared_exp[k] = (gint16)se;
      quantize_block (format, pb, SLIM_MX_BLOCK_SIZE, se, TRUE, q + k * SLIM_MX_BLOCK_SIZE);
    }
  for (gint64 r = 0; r < n_rows; r++)
    memcpy (elements + r * n_cols, q + r * padded, (gsize)n_cols * sizeof (float));
  g_free (p);
  g_free (q);
}

void
slim_mx_quantize_rows_ceil_x (const float *x,
                              gint64 n_rows,
                              gint64 n_cols,
                              float ceil_x_value,
                              float *elements,
                              gint16 *shared_exp)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && ceil_x_value > 0.0f);
  quantize_rows (METHOD_CEIL_X, x, n_rows, n_cols, ceil_x_value, elements, shared_exp);
}

void
slim_mx_quantize_rows_ceil_x_ref (const float *x,
                                  gint64 n_rows,
                                  gint64 n_cols,
                                  float ceil_x_value,
                                  float *elements,
                                  gint16 *shared_exp)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && ceil_x_value > 0.0f);
  quantize_rows_ref (METHOD_CEIL_X, x, n_rows, n_cols, ceil_x_value, elements, shared_exp);
}

void
slim_mx_quantize_rows_fouroversix (
    const float *x, gint64 n_rows, gint64 n_cols, float *elements, gint16 *shared_exp)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && n_cols % SLIM_MX_BLOCK_SIZE == 0);
  quantize_rows (METHOD_FOUROVERSIX, x, n_rows, n_cols, 0.0f, elements, shared_exp);
}

void
slim_mx_quantize_rows_fouroversix_ref (
    const float *x, gint64 n_rows, gint64 n_cols, float *elements, gint16 *shared_exp)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && n_cols % SLIM_MX_BLOCK_SIZE == 0);
  quantize_rows_ref (METHOD_FOUROVERSIX, x, n_rows, n_cols, 0.0f, elements, shared_exp);
}

void
slim_mx_quantize_rows_mse_round (
    const float *x, gint64 n_rows, gint64 n_cols, float *elements, gint16 *shared_exp)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  quantize_rows (METHOD_MSE_ROUND, x, n_rows, n_cols, 0.0f, elements, shared_exp);
}

void
slim_mx_quantize_rows_mse_round_ref (
    const float *x, gint64 n_rows, gint64 n_cols, float *elements, gint16 *shared_exp)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  quantize_rows_ref (METHOD_MSE_ROUND, x, n_rows, n_cols, 0.0f, elements, shared_exp);
}
