/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-sigma.c: k-sigma range clipping (see slim-sigma.h).
 */
#include "slim-sigma.h"

#include <math.h>

void
slim_sigma_range_rows (const float *x,
                       gint64 n_rows,
                       gint64 n_cols,
                       double sigma_factor,
                       float *out_min,
                       float *out_max)
{
  g_return_if_fail (x != NULL && out_min != NULL && out_max != NULL);
  g_return_if_fail (n_rows >= 0 && n_cols >= 1 && sigma_factor >= 0.0);

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = x + r * n_cols; /* [n_cols] */
      double sum = 0.0, ss = 0.0, mean, sd;
      float mn = row[0], mx = row[0];

      for (gint64 j = 0; j < n_cols; j++)
        {
          sum += row[j];
          mn = fminf (mn, row[j]);
          mx = fmaxf (mx, row[j]);
        }
      mean = sum / (double)n_cols;
      for (gint64 j = 0; j < n_cols; j++)
        ss += ((double)row[j] - mean) * ((double)row[j] - mean);
      out_min[r] = mn;
      out_max[r] = mx;
      if (n_cols < 2)
        continue;
      sd = sqrt (ss / (double)(n_cols - 1));
      out_min[r] = (float)fmax ((double)mn, mean - sigma_factor * sd);
      out_max[r] = (float)fmin ((double)mx, mean + sigma_factor * sd);
    }
}
