/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-mx-weight-methods.h: msModelSlim's other MX per_block weight
 * quantizers (core/quantizer/impl/ceil_x.py, fouroversix.py,
 * mse_round.py).  They differ from MX minmax (slim-mx.h) only in how each
 * block's shared exponent se is chosen; the elements are then the MX
 * elements of x in a block of that se (slim_mx_quantize_element) and the
 * saved tensors are those of W4A4_MXFP4 / W8A8_MXFP8.  Blocks of 32 along
 * each row, amax = max |x| over the block, float32 throughout:
 *
 *   ceil_x (mxfp4, MXWeightPerBlockCeilX): with c = ext.ceil_x_value
 *     (default 7.25, in [6, 12]),
 *       se = ceil (log2 (max (amax / c, 0) + 9.6e-7)), clipped to [-129, 125]
 *     so amax / 2^se <= c; elements above 6 saturate.  (msModelSlim's
 *     enable_search, an MSE search over c, is not implemented.)
 *   fouroversix (mxfp4, WeightFouroverSixQuantizer): two candidates per
 *     block, s = amax / 6 and s = amax / 4, each rounded to an E8M0
 *     exponent by nearest rounding of log2 s (a fraction within 1e-6 of
 *     0.5 is a tie, broken to the odd exponent; s <= 0 gives 0); the block
 *     keeps the candidate of smaller mean squared error (6 on equality).
 *     The row length must be a multiple of 32 (msModelSlim raises).
 *   mse_round (mxfp8, MXWeightPerBlockMseRound): l = log2 (amax, or 2^-126
 *     when 0); candidates ceil (l) - 8 and floor (l) - 8 (the minmax one),
 *     each clamped as calculate_mx_qparam does (below -127 -> -127, above
 *     127 -> NaN); the block keeps ceil's when its MSE is finite and
 *     smaller than floor's (or floor's is not finite).
 *
 * Per-block MSEs are float32 means summed in element order (torch's
 * reduction order may differ in the last bit, which can only change the
 * choice between two candidates of equal error to within rounding).
 * The _ref twins follow msModelSlim's tensor steps with exp2f / log2f
 * and slim_mx_quantize_element_ref; the tests compare them.
 */
#pragma once

#include <glib.h>
#include "slim-mx.h"

G_BEGIN_DECLS

#define SLIM_MX_CEIL_X_DEFAULT 7.25
#define SLIM_MX_CEIL_X_MIN 6.0
#define SLIM_MX_CEIL_X_MAX 12.0

/* ceil_x's shared exponent of a block. */
int slim_mx_ceil_x_shared_exp (float amax, float ceil_x_value);
/* fouroversix's E8M0 rounding of a scale. */
int slim_mx_e8m0_round_nearest (float scale);

void slim_mx_quantize_rows_ceil_x (const float *x, /* [n_rows, n_cols] */
                                   gint64 n_rows,
                                   gint64 n_cols,
                                   float ceil_x_value,
                                   float *elements, /* [n_rows, n_cols] */
                                   gint16 *shared_exp /* [n_rows, n_blocks] */);
void slim_mx_quantize_rows_ceil_x_ref (const float *x, /* [n_rows, n_cols] */
                                       gint64 n_rows,
                                       gint64 n_cols,
                                       float ceil_x_value,
                                       float *elements, /* [n_rows, n_cols] */
                                       gint16 *shared_exp /* [n_rows, n_blocks] */);

/* n_cols must be a multiple of 32. */
void slim_mx_quantize_rows_fouroversix (const float *x, /* [n_rows, n_cols] */
                                        gint64 n_rows,
                                        gint64 n_cols,
                                        float *elements, /* [n_rows, n_cols] */
                                        gint16 *shared_exp /* [n_rows, n_cols / 32] */);
void slim_mx_quantize_rows_fouroversix_ref (const float *x, /* [n_rows, n_cols] */
                                            gint64 n_rows,
                                            gint64 n_cols,
                                            float *elements, /* [n_rows, n_cols] */
                                            gint16 *shared_exp /* [n_rows, n_cols / 32] */);

void slim_mx_quantize_rows_mse_round (const float *x, /* [n_rows, n_cols] */
                                      gint64 n_rows,
                                      gint64 n_cols,
                                      float *elements, /* [n_rows, n_cols] */
                                      gint16 *shared_exp /* [n_rows, n_blocks] */);
void slim_mx_quantize_rows_mse_round_ref (const float *x, /* [n_rows, n_cols] */
                                          gint64 n_rows,
                                          gint64 n_cols,
                                          float *elements, /* [n_rows, n_cols] */
                                          gint16 *shared_exp /* [n_rows, n_blocks] */);

G_END_DECLS
