/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-mx-dual-scale.h: msModelSlim's two-level MXFP4 ("dual_scale",
 * core/quantizer/impl/dualscale.py MXWeightDualScaleMinmax /
 * MXActDualScaleMinmax, ir/w4a4_mx_dynamic_dualscale.py
 * W4A4MXDynamicDualScaleFakeQuantLinear; label W4A4_MXFP4_DUALSCALE).
 *
 * Each row is cut into dual blocks of D = dual_block_size consecutive
 * elements (zero-padded at the end, as reshape_to_blocks does, which
 * changes no maximum).  Per dual block, in float32:
 *   dual_scale = max |x| / 6            (MXFP4_MAX_NORMAL)
 *   x' = x / dual_scale
 * and x' is MXFP4-quantized as plain MX minmax (slim-mx.h: blocks of 32
 * along the row, E8M0 shared exponents, E2M1 elements).  Dequantized:
 *   x^ = (element * 2^shared_exp) * dual_scale
 * The weight keeps elements, shared exponents and the float32 dual scales
 * (saved as weight_dual_scale, f32 [n_out, ceil (n_in / D), 1]); the
 * activation is quantized and dequantized per token row in the deployed
 * forward (identity during calibration, msModelSlim's is_data_free).
 *
 * Deliberate difference: a dual block whose elements are all zero has
 * dual_scale 0; msModelSlim divides 0 by 0 (NaN elements, NaN output),
 * slimflow keeps x' = 0, so the block dequantizes to 0.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_MX_DUAL_MAX_NORMAL 6.0f

/* Dual blocks of a row: ceil (n_cols / dual_block). */
gint64 slim_mx_dual_n_blocks (gint64 n_cols, gint64 dual_block);

/* The dual scales of every row and the rows divided by them. */
void slim_mx_dual_scale_rows (const float *x, /* [n_rows, n_cols] */
                              gint64 n_rows,
                              gint64 n_cols,
                              gint64 dual_block,
                              float *dual_scale, /* [n_rows, n_dual] */
                              float *scaled /* [n_rows, n_cols]; may alias x */);

/* MXWeightDualScaleMinmax.init_weight: the MXFP4 elements and shared
 * exponents of the dual-scaled rows, the dual scales and the dequantized
 * weight. */
void slim_mx_dual_quantize_rows (const float *x, /* [n_rows, n_cols] */
                                 gint64 n_rows,
                                 gint64 n_cols,
                                 gint64 dual_block,
                                 float *elements,    /* [n_rows, n_cols] */
                                 gint16 *shared_exp, /* [n_rows, ceil (n_cols / 32)] */
                                 float *dual_scale,  /* [n_rows, n_dual] */
                                 float *dequantized /* [n_rows, n_cols] */);

/* x^ = elements * 2^shared_exp * dual_scale; out may alias elements. */
void slim_mx_dual_dequantize_rows (const float *elements,    /* [n_rows, n_cols] */
                                   const gint16 *shared_exp, /* [n_rows, ceil (n_cols / 32)] */
                                   const float *dual_scale,  /* [n_rows, n_dual] */
                                   gint64 n_rows,
                                   gint64 n_cols,
                                   gint64 dual_block,
                                   float *out /* [n_rows, n_cols] */);

/* The deployed activation quantization of
 * W4A4MXDynamicDualScaleFakeQuantLinear.forward; out may alias x.  The
 * _ref twin follows its tensor steps (pad to dual blocks, amax, divide,
 * slim_mx_quantize_rows_ref on the padded rows, multiply back). */
void slim_mx_dual_fake_quantize_rows (const float *x, /* [n_rows, n_cols] */
                                      gint64 n_rows,
                                      gint64 n_cols,
                                      gint64 dual_block,
                                      float *out /* [n_rows, n_cols] */);
void slim_mx_dual_fake_quantize_rows_ref (const float *x, /* [n_rows, n_cols] */
                                          gint64 n_rows,
                                          gint64 n_cols,
                                          gint64 dual_block,
                                          float *out /* [n_rows, n_cols] */);

G_END_DECLS
