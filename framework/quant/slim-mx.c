/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-mx.c: MX block quantization (see slim-mx.h).
 *
 * Every power-of-two scaling below is exact in float32 (no overflow or
 * underflow is possible with the exponents involved), so dividing by 2^e
 * and multiplying by 2^-e give the same bits; the only rounding steps are
 * the "+ 0.5" before floor and, in the shared exponent, log2f, and they
 * are done in float32 as msModelSlim does them.
 */
#include "slim-mx.h"

#include <math.h>
#include "slim-minifloat.h"

#define MX_FP8_EMAX 8
#define MX_FP8_MIN_EXP (-6) /* -(2^(ebits-1)) + 2 with ebits 4 */
#define MX_FP8_MAX 448.0f
#define MX_FP4_EMAX 2
#define MX_FP4_MIN_EXP 0 /* -(2^(ebits-1)) + 2 with ebits 2 */
#define MX_FP4_MAX 6.0f
#define MX_SCALE_EMAX 127 /* 2^(scale_bits-1) - 1 */
#define MX_FP4_LOG2_EPS 9.6e-7f

gint64
slim_mx_n_blocks (gint64 n_cols)
{
  g_return_val_if_fail (n_cols >= 0, 0);
  return (n_cols + SLIM_MX_BLOCK_SIZE - 1) / SLIM_MX_BLOCK_SIZE;
}

/**
 * slim_mx_shared_exp:
 * @format: MXFP8 or MXFP4
 * @amax: the block's maximum magnitude (>= 0)
 *
 * msModelSlim's calculate_mx_qparam (MXFP8) / calculate_mxfp4_qparam
 * (MXFP4).
 *
 * Returns: the shared exponent; %SLIM_MX_SHARED_EXP_NAN when @amax is NaN,
 *   or infinite in MXFP8
 */
int
slim_mx_shared_exp (SlimMxFormat format, float amax)
{
  float se;

  if (format == SLIM_MX_FP8_E4M3)
    {
      /* max_val + FP32_MIN_NORMAL * (max_val == 0) */
      float v = amax + (amax == 0.0f ? 0x1p-126f : 0.0f);

      se = floorf (log2f (v)) - (float)MX_FP8_EMAX;
      if (isnan (se) || se > (float)MX_SCALE_EMAX)
        return SLIM_MX_SHARED_EXP_NAN;
      if (se < (float)-MX_SCALE_EMAX)
        se = (float)-MX_SCALE_EMAX;
      return (int)se;
    }
  /* max_val / (1 - 0.5^3) + 9.6e-7 */
  se = floorf (log2f (amax / 0.875f + MX_FP4_LOG2_EPS)) - (float)MX_FP4_EMAX;
  if (isnan (se))
    return SLIM_MX_SHARED_EXP_NAN;
  if (se < (float)(-MX_SCALE_EMAX - MX_FP4_EMAX))
    se = (float)(-MX_SCALE_EMAX - MX_FP4_EMAX);
  if (se > (float)(MX_SCALE_EMAX - MX_FP4_EMAX))
    se = (float)(MX_SCALE_EMAX - MX_FP4_EMAX);
  return (int)se;
}

/* floor (log2 |v|) of a finite nonzero float from its bits (frexp). */
static inline int
floor_log2 (float v)
{
  int e;

  frexpf (v, &e); /* v = f 2^e, f in [0.5, 1) */
  return e - 1;
}

static float
mx_fp8_element (float x, int se)
{
  float a, t, r;
  int e;

  if (x == 0.0f)
    return 0.0f;
  if (se == SLIM_MX_SHARED_EXP_NAN || isnan (x))
    return NAN;
  a = x / ldexpf (1.0f, se);
  if (a == 0.0f)
    return 0.0f; /* underflow: log2 (0 + 1) = 0, sign (0) = 0 */
  if (isinf (a))
    return a; /* _clamp_out keeps infinities */
  e = MAX (floor_log2 (a), MX_FP8_MIN_EXP);
  t = fabsf (a) * ldexpf (1.0f, 3 - e);
  r = floorf (t + 0.5f) * ldexpf (1.0f, e - 3);
  r = r > MX_FP8_MAX ? MX_FP8_MAX : r;
  return a < 0.0f ? -r : r;
}

static float
mx_fp4_element (float x, int se)
{
  float xb, r;
  int e;

  if (se == SLIM_MX_SHARED_EXP_NAN || isnan (x))
    return NAN;
  if (se < -MX_SCALE_EMAX || x == 0.0f)
    return x < 0.0f ? -0.0f : 0.0f; /* sign (x) * 0 */
  xb = fabsf (x) / ldexpf (1.0f, se);
  e = xb == 0.0f ? MX_FP4_MIN_EXP : isinf (xb) ? MX_FP4_EMAX : floor_log2 (xb);
  e = CLAMP (e, MX_FP4_MIN_EXP, MX_FP4_EMAX);
  r = floorf (xb * ldexpf (1.0f, 1 - e) + 0.5f) * ldexpf (1.0f, e - 1);
  r = r > MX_FP4_MAX ? MX_FP4_MAX : r;
  return x < 0.0f ? -r : r;
}

/**
 * slim_mx_quantize_element:
 * @format: MXFP8 or MXFP4
 * @x: a value
 * @shared_exp: its block's shared exponent
 *
 * Returns: the element (on the E4M3 / E2M1 grid, half away from zero)
 */
float
slim_mx_quantize_element (SlimMxFormat format, float x, int shared_exp)
{
  return format == SLIM_MX_FP8_E4M3 ? mx_fp8_element (x, shared_exp)
                                    : mx_fp4_element (x, shared_exp);
}

/* torch.sign: (0 < a) - (a < 0), so +-0 and NaN give 0. */
static inline float
torch_sign (float a)
{
  return (float)((0.0f < a) - (a < 0.0f));
}

/* mxfp_per_block_quantize and _quant/_clamp_out, step by step. */
static float
mx_fp8_element_ref (float x, int se)
{
  float scale = se == SLIM_MX_SHARED_EXP_NAN ? NAN : exp2f ((float)se);
  float inp = x == 0.0f ? 0.0f : x / scale;
  float private_exp = floorf (log2f (fabsf (inp) + (inp == 0.0f ? 1.0f : 0.0f)));
  float orig = inp, a;

  if (private_exp < (float)MX_FP8_MIN_EXP)
    private_exp = (float)MX_FP8_MIN_EXP;
  a = inp / exp2f (private_exp) * 8.0f;
  a = torch_sign (a) * floorf (fabsf (a) + 0.5f);
  a = a / 8.0f * exp2f (private_exp);
  if (a < -MX_FP8_MAX)
    a = -MX_FP8_MAX;
  if (a > MX_FP8_MAX)
    a = MX_FP8_MAX;
  if (isinf (orig))
    a = orig;
  return a;
}

/* mxfp4_quantize, step by step. */
static float
mx_fp4_element_ref (float x, int se)
{
  float shared = se == SLIM_MX_SHARED_EXP_NAN ? NAN : (float)se;
  float sign = torch_sign (x);
  float x_biased = fabsf (x) / exp2f (shared);
  float private_exp = floorf (log2f (x_biased + MX_FP4_LOG2_EPS));
  float mant, value;

  if (private_exp < (float)MX_FP4_MIN_EXP)
    private_exp = (float)MX_FP4_MIN_EXP;
  if (private_exp > (float)MX_FP4_EMAX)
    private_exp = (float)MX_FP4_EMAX;
  mant = x_biased / exp2f (private_exp) * 2.0f;
  value = floorf (mant + 0.5f) / 2.0f * exp2f (private_exp);
  if (value > MX_FP4_MAX)
    value = MX_FP4_MAX;
  if (shared < -127.0f)
    value = 0.0f;
  if (isnan (x) || isnan (shared))
    return NAN;
  return sign * value;
}

float
slim_mx_quantize_element_ref (SlimMxFormat format, float x, int shared_exp)
{
  return format == SLIM_MX_FP8_E4M3 ? mx_fp8_element_ref (x, shared_exp)
                                    : mx_fp4_element_ref (x, shared_exp);
}

/* The block maximum |x| (NaN if any element is NaN, as torch.max). */
static float
block_amax (const float *x, gint64 n)
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

void
slim_mx_quantize_rows (SlimMxFormat format,
                       const float *x,
                       gint64 n_rows,
                       gint64 n_cols,
                       float *elements,
                       gint16 *shared_exp)
{
  gint64 n_blocks = slim_mx_n_blocks (n_cols);

  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  g_return_if_fail ((x != NULL && elements != NULL && shared_exp != NULL) || n_rows == 0
                    || n_cols == 0);

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 b = 0; b < n_blocks; b++)
      {
        gint64 c0 = b * SLIM_MX_BLOCK_SIZE;
        gint64 n = MIN (SLIM_MX_BLOCK_SIZE, n_cols - c0);
        const float *xb = x + r * n_cols + c0;
        float *eb = elements + r * n_cols + c0;
        int se = slim_mx_shared_exp (format, block_amax (xb, n));

        shared_exp[r * n_blocks + b] = (gint16)se;
        if (format == SLIM_MX_FP8_E4M3)
          for (gint64 i = 0; i < n; i++)
            eb[i] = mx_fp8_element (xb[i], se);
        else
          for (gint64 i = 0; i < n; i++)
            eb[i] = mx_fp4_element (xb[i], se);
      }
}

/* msModelSlim's steps on whole tensors: reshape_to_blocks (zero padding),
 * the block observer (amax per block), calculate_qparam, quantize, undo
 * the padding. */
void
slim_mx_quantize_rows_ref (SlimMxFormat format,
                           const float *x,
                           gint64 n_rows,
                           gint64 n_cols,
                           float *elements,
                           gint16 *shared_exp)
{
  gint64 n_blocks = slim_mx_n_blocks (n_cols);
  gint64 padded = n_blocks * SLIM_MX_BLOCK_SIZE;
  float *blocks; /* [n_rows, n_blocks, 32] */
  float *amax;   /* [n_rows, n_blocks] */
  float *q;      /* [n_rows, n_blocks, 32] */

  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  if (n_rows == 0 || n_cols == 0)
    return;
  blocks = g_new0 (float, n_rows *padded);
  amax = g_new0 (float, n_rows *n_blocks);
  q = g_new0 (float, n_rows *padded);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      blocks[r * padded + c] = x[r * n_cols + c];
  for (gint64 k = 0; k < n_rows * n_blocks; k++)
    {
      float m = fabsf (blocks[k * SLIM_MX_BLOCK_SIZE]);

      for (int i = 1; i < SLIM_MX_BLOCK_SIZE; i++)
        {
          float a = fabsf (blocks[k * SLIM_MX_BLOCK_SIZE + i]);

          if (isnan (a) || isnan (m))
            m = NAN;
          else if (a > m)
            m = a;
        }
      amax[k] = m;
    }
  for (gint64 k = 0; k < n_rows * n_blocks; k++)
    {
      int se;

      if (format == SLIM_MX_FP8_E4M3)
        {
          float s = floorf (log2f (amax[k] + 0x1p-126f * (float)(amax[k] == 0.0f))) - 8.0f;

          se = isnan (s) || s > 127.0f ? SLIM_MX_SHARED_EXP_NAN : (int)fmaxf (s, -127.0f);
        }
      else
        {
          float s = floorf (log2f (amax[k] / (1.0f - 0.125f) + 9.6e-7f)) - 2.0f;

          se = isnan (s) ? SLIM_MX_SHARED_EXP_NAN : (int)fminf (fmaxf (s, -129.0f), 125.0f);
        }
      shared_exp[k] = (gint16)se;
      for (int i = 0; i < SLIM_MX_BLOCK_SIZE; i++)
        q[k * SLIM_MX_BLOCK_SIZE + i]
            = slim_mx_quantize_element_ref (format, blocks[k * SLIM_MX_BLOCK_SIZE + i], se);
    }
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      elements[r * n_cols + c] = q[r * padded + c];
  g_free (blocks);
  g_free (amax);
  g_free (q);
}

void
slim_mx_dequantize_rows (
    const float *elements, const gint16 *shared_exp, gint64 n_rows, gint64 n_cols, float *out)
{
  gint64 n_blocks = slim_mx_n_blocks (n_cols);

  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  g_return_if_fail ((elements != NULL && shared_exp != NULL && out != NULL) || n_rows == 0
                    || n_cols == 0);

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      {
        int se = shared_exp[r * n_blocks + c / SLIM_MX_BLOCK_SIZE];
        float scale = se == SLIM_MX_SHARED_EXP_NAN ? NAN : ldexpf (1.0f, se);

        out[r * n_cols + c] = elements[r * n_cols + c] * scale;
      }
}

void
slim_mx_fake_quantize_rows (
    SlimMxFormat format, const float *x, gint64 n_rows, gint64 n_cols, float *out)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  g_return_if_fail ((x != NULL && out != NULL) || n_rows == 0 || n_cols == 0);

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c0 = 0; c0 < n_cols; c0 += SLIM_MX_BLOCK_SIZE)
      {
        gint64 n = MIN (SLIM_MX_BLOCK_SIZE, n_cols - c0);
        const float *xb = x + r * n_cols + c0;
        float *ob = out + r * n_cols + c0;
        int se = slim_mx_shared_exp (format, block_amax (xb, n));
        float scale = se == SLIM_MX_SHARED_EXP_NAN ? NAN : ldexpf (1.0f, se);

        for (gint64 i = 0; i < n; i++)
          ob[i] = slim_mx_quantize_element (format, xb[i], se) * scale;
      }
}

void
slim_mx_scale_to_u8 (const gint16 *shared_exp, gint64 n, guint8 *scale)
{
  g_return_if_fail (n >= 0);
  g_return_if_fail ((shared_exp != NULL && scale != NULL) || n == 0);

  for (gint64 i = 0; i < n; i++)
    scale[i] = (guint8)(shared_exp[i] + SLIM_MX_SCALE_BIAS);
}

void
slim_mx_pack_fp4 (const float *elements, gint64 n_rows, gint64 n_cols, guint8 *packed)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && n_cols % 2 == 0);
  g_return_if_fail ((elements != NULL && packed != NULL) || n_rows == 0 || n_cols == 0);

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 j = 0; j < n_cols / 2; j++)
      {
        const float *e = elements + r * n_cols + 2 * j;

        packed[r * (n_cols / 2) + j]
            = (guint8)(slim_f32_to_f4_e2m1 (e[0]) | (slim_f32_to_f4_e2m1 (e[1]) << 4));
      }
}
