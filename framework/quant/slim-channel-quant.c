/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-channel-quant.c: per-column activation quantization (see
 * slim-channel-quant.h).
 */
#include "slim-channel-quant.h"

void
slim_minmax_cols_update (const float *x, gint64 n_rows, gint64 n_cols, float *min, float *max)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 0);
  g_return_if_fail ((x != NULL && min != NULL && max != NULL) || n_rows == 0 || n_cols == 0);

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = x + r * n_cols;
      for (gint64 c = 0; c < n_cols; c++)
        {
          float v = row[c];
          /* comparisons with NaN are false: NaN never enters */
          if (v < min[c])
            min[c] = v;
          if (v > max[c])
            max[c] = v;
        }
    }
}

void
slim_fake_quantize_cols (const SlimQParamsConfig *cfg,
                         const float *x,
                         gint64 n_rows,
                         gint64 n_cols,
                         const float *scale,
                         const float *offset,
                         float *out)
{
  gint qmin, qmax;

  g_return_if_fail (cfg != NULL && n_rows >= 0 && n_cols >= 0);
  g_return_if_fail ((x != NULL && scale != NULL && offset != NULL && out != NULL) || n_rows == 0
                    || n_cols == 0);

  slim_qparams_get_range (cfg, &qmin, &qmax);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      {
        float q = slim_round_half_even (x[r * n_cols + c] / scale[c] + offset[c]);
        q = CLAMP (q, (float)qmin, (float)qmax);
        out[r * n_cols + c] = (q - offset[c]) * scale[c];
      }
}
