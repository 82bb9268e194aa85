/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-fp8.h: FP8 E4M3 (float8_e4m3fn: 4 exponent bits, bias 7, 3
 * mantissa bits, no infinities, largest finite 448, smallest subnormal
 * 2^-9) fake quantization as msModelSlim does it
 * (ir/api/impl/fp_quantization.py; modelslim-v1-spec.md 2.1):
 *
 *   scale = max (|min|, |max|).clamp (1e-12) / 448
 *   q     = fp8 (clamp (x / scale, -448, 448))    round to nearest, ties to even
 *   x^    = q * scale
 *
 * slim_fp8_e4m3_round() computes the rounding from the exponent;
 * slim_fp8_e4m3_round_ref() is its oracle: the nearest of all 253 finite
 * E4M3 values decoded from their bit patterns (ties to the even code).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_FP8_E4M3_MAX 448.0f

/* x rounded to the nearest E4M3 value; |x| > 448 saturates to +-448 (the
 * callers clamp first, as msModelSlim does); NaN stays NaN. */
float slim_fp8_e4m3_round (float x);
float slim_fp8_e4m3_round_ref (float x);

/* The scale of a range: max (|min|, |max|) clamped to >= 1e-12, / 448. */
float slim_fp8_e4m3_scale (float min_val, float max_val);

/* out = fp8 (clamp (x / scale[c], +-448)) * scale[c], one scale per
 * column; out may alias x. */
void slim_fp8_fake_quantize_cols (const float *x, /* (n_rows, n_cols) row-major */
                                  gint64 n_rows,
                                  gint64 n_cols,
                                  const float *scale, /* (n_cols) */
                                  float *out /* (n_rows, n_cols) row-major */);

/* Dynamic per row (msModelSlim's per_token FP8): each row's own scale from
 * its min/max. out may alias x. */
void slim_fp8_fake_quantize_rows_dynamic (const float *x, /* (n_rows, n_cols) row-major */
                                          gint64 n_rows,
                                          gint64 n_cols,
                                          float *out /* (n_rows, n_cols) row-major */);

/* WeightPerChannelMinmax for fp8_e4m3 as msModelSlim saves it: per row
 * scale[r] = slim_fp8_e4m3_scale (row min, row max), codes = float8_e4m3fn
 * (clamp (x / scale, +-448)) rounded to nearest even (the saver's
 * .to(torch.float8_e4m3fn); msModelSlim's own fake-quant forward skips
 * that rounding).  dequantized (nullable) = decode (code) * scale. */
void slim_fp8_quantize_weight_rows (const float *w, /* (n_rows, n_cols) row-major */
                                    gint64 n_rows,
                                    gint64 n_cols,
                                    guint8 *codes, /* (n_rows, n_cols) row-major */
                                    float *scale,  /* (n_rows) */
                                    float *dequantized /* (n_rows, n_cols) row-major, nullable */);

G_END_DECLS
