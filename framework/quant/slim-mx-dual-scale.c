/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-mx-dual-scale.c: two-level MXFP4 (see slim-mx-dual-scale.h).
 */
#include "slim-mx-dual-scale.h"

#include <math.h>
#include "slim-mx.h"

gint64
slim_mx_dual_n_blocks (gint64 n_cols, gint64 dual_block)
{
  g_return_val_if_fail (n_cols >= 0 && dual_block > 0, 0);
  return (n_cols + dual_block - 1) / dual_block;
}

/* max |x| of n values; NaN if any is NaN (torch.max). */
static float
dual_amax (const float *x, gint64 n)
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
slim_mx_dual_scale_rows (const float *x,
                         gint64 n_rows,
                         gint64 n_cols,
                         gint64 dual_block,
                         float *dual_scale,
                         float *scaled)
{
  gint64 n_dual;

  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && dual_block > 0);
  g_return_if_fail ((x != NULL && dual_scale != NULL && scaled != NULL) || n_rows == 0
                    || n_cols == 0);
  n_dual = slim_mx_dual_n_blocks (n_cols, dual_block);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 d = 0; d < n_dual; d++)
      {
        gint64 c0 = d * dual_block, n = MIN (dual_block, n_cols - c0);
        const float *xb = x + r * n_cols + c0;
        float *sb = scaled + r * n_cols + c0;
        float ds = dual_amax (xb, n) / SLIM_MX_DUAL_MAX_NORMAL;

        dual_scale[r * n_dual + d] = ds;
        for (gint64 i = 0; i < n; i++)
          sb[i] = ds == 0.0f ? 0.0f : xb[i] / ds;
      }
}

void
slim_mx_dual_quantize_rows (const float *x,
                            gint64 n_rows,
                            gint64 n_cols,
                            gint64 dual_block,
                            float *elements,
                            gint16 *shared_exp,
                            float *dual_scale,
                            float *dequantized)
{
  float *scaled; /* [n_rows, n_cols] */

  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && dual_block > 0);
  if (n_rows == 0 || n_cols == 0)
    return;
  scaled = g_new (float, n_rows *n_cols);
  slim_mx_dual_scale_rows (x, n_rows, n_cols, dual_block, dual_scale, scaled);
  slim_mx_quantize_rows (SLIM_MX_FP4_E2M1, scaled, n_rows, n_cols, elements, shared_exp);
  slim_mx_dual_dequantize_rows (elements, shared_exp, dual_scale, n_rows, n_cols, dual_block,
                                dequantized);
  g_free (scaled);
}

void
slim_mx_dual_dequantize_rows (const float *elements,
                              const gint16 *shared_exp,
                              const float *dual_scale,
                              gint64 n_rows,
                              gint64 n_cols,
                              gint64 dual_block,
                              float *out)
{
  gint64 n_dual;

  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && dual_block > 0);
  if (n_rows == 0 || n_cols == 0)
    return;
  n_dual = slim_mx_dual_n_blocks (n_cols, dual_block);
  slim_mx_dequantize_rows (elements, shared_exp, n_rows, n_cols, out);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      out[r * n_cols + c] *= dual_scale[r * n_dual + c / dual_block];
}

void
slim_mx_dual_fake_quantize_rows (
    const float *x, gint64 n_rows, gint64 n_cols, gint64 dual_block, float *out)
{
  gint64 n_dual;
  float *ds;     /* [n_dual] */
  float *scaled; /* [n_cols] */

  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && dual_block > 0);
  g_return_if_fail ((x != NULL && out != NULL) || n_rows == 0 || n_cols == 0);
  if (n_rows == 0 || n_cols == 0)
    return;
  n_dual = slim_mx_dual_n_blocks (n_cols, dual_block);
  ds = g_new (float, n_dual);
  scaled = g_new (float, n_cols);
  for (gint64 r = 0; r < n_rows; r++)
    {
      slim_mx_dual_scale_rows (x + r * n_cols, 1, n_cols, dual_block, ds, scaled);
      slim_mx_fake_quantize_rows (SLIM_MX_FP4_E2M1, scaled, 1, n_cols, scaled);
      for (gint64 c = 0; c < n_cols; c++)
        out[r * n_cols + c] = scaled[c] * ds[c / dual_block];
    }
  g_free (ds);
  g_free (scaled);
}

/* The forward's steps on whole padded tensors: reshape_to_blocks with D
 * (zero padding to a multiple of D), the block observer's amax over each
 * dual block, x / dual_scale, the inner MX minmax of the padded rows
 * (slim_mx_quantize_rows_ref, whose own padding to 32 then adds nothing
 * when D is a multiple of 32), dequantize, times dual_scale, unpad. */
void
slim_mx_dual_fake_quantize_rows_ref (
    const float *x, gint64 n_rows, gint64 n_cols, gint64 dual_block, float *out)
{
  gint64 n_dual, padded, n_blocks;
  float *p;    /* [n_rows, n_dual, D] */
  float *amax; /* [n_rows, n_dual] */
  float *q;    /* [n_rows, padded] */
  gint16 *se;  /* [n_rows, padded / 32 rounded up] */

  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && dual_block > 0);
  if (n_rows == 0 || n_cols == 0)
    return;
  n_dual = slim_mx_dual_n_blocks (n_cols, dual_block);
  padded = n_dual * dual_block;
  n_blocks = slim_mx_n_blocks (padded);
  p = g_new0 (float, n_rows *padded);
  amax = g_new0 (float, n_rows *n_dual);
  q = g_new0 (float, n_rows *padded);
  se = g_new0 (gint16, n_rows * n_blocks);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      p[r * padded + c] = x[r * n_cols + c];
  for (gint64 k = 0; k < n_rows * n_dual; k++)
    {
      float m = fabsf (p[k * dual_block]);

      for (gint64 i = 1; i < dual_block; i++)
        {
          float a = fabsf (p[k * dual_block + i]);

          m = isnan (a) || isnan (m) ? NAN : a > m ? a : m;
        }
      amax[k] = m / 6.0f;
      for (gint64 i = 0; i < dual_block; i++)
        p[k * dual_block + i] = amax[k] == 0.0f ? 0.0f : p[k * dual_block + i] / amax[k];
    }
  slim_mx_quantize_rows_ref (SLIM_MX_FP4_E2M1, p, n_rows, padded, q, se);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      {
        int e = se[r * n_blocks + c / SLIM_MX_BLOCK_SIZE];
        float v = q[r * padded + c] * exp2f ((float)e);

        out[r * n_cols + c] = v * amax[r * n_dual + c / dual_block];
      }
  g_free (p);
  g_free (amax);
  g_free (q);
  g_free (se);
}
