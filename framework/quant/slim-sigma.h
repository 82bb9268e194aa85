/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-sigma.h: sigma clipping of a weight's quantization range, the
 * k-sigma test of msModelSlim's QuantConfig use_sigma / sigma_factor.
 *
 * msModelSlim applies the test (atomic_power_outlier.get_mask_by_sigma,
 * torch.var_mean: unbiased variance) only in its lowbit sparse
 * quantization, where the elements beyond mean +- k * std are outliers
 * kept out of the low-bit grid.  slimflow has no outlier split, so the
 * same bounds clip the minmax range instead (linear_quant ext.sigma_factor):
 * per row,
 *
 *   mean, std = mean and unbiased standard deviation of the row (double)
 *   lo = max (min (row), mean - k * std)
 *   hi = min (max (row), mean + k * std)
 *
 * and the row is quantized with the (scale, offset) of [lo, hi]; elements
 * outside saturate at the grid's ends.  A row of one element keeps its
 * min/max (std undefined).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void slim_sigma_range_rows (const float *x, /* (n_rows, n_cols) row-major */
                            gint64 n_rows,
                            gint64 n_cols,
                            double sigma_factor,
                            float *out_min, /* (n_rows) */
                            float *out_max /* (n_rows) */);

G_END_DECLS
