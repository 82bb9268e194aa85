/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-mx.h: MX block quantization as msModelSlim does it
 * (ir/api/impl/mx_quantization.py, ir/utils.py reshape_to_blocks,
 * core/observer/minmax.py MsMinMaxBlockObserver; modelslim-v1-spec.md 2.1,
 * 3.1): blocks of 32 consecutive elements of a row (axis -1; a row whose
 * length is not a multiple of 32 is zero-padded, which changes no block
 * maximum), one shared power-of-two exponent per block (E8M0, saved as
 * exponent + 127 in a uint8), elements in E4M3 (MXFP8) or E2M1 (MXFP4).
 * All arithmetic is float32 in msModelSlim's order, so results match its
 * tensors bit for bit.
 *
 * Shared exponent of a block with amax = max |x| over the block:
 *   MXFP8  se = floor (log2 (amax, or 2^-126 when amax == 0)) - 8,
 *          clamped below to -127 (above 127: NaN, only for non-finite amax)
 *   MXFP4  se = floor (log2 (amax / 0.875 + 9.6e-7)) - 2, clamped to
 *          [-129, 125]; the 9.6e-7 keeps se >= -22, so tiny blocks become 0
 * Element of x (a = x / 2^se):
 *   MXFP8  a = 0 stays +0; e = max (floor (log2 |a|), -6);
 *          q = sign (a) floor (|a| 2^(3-e) + 0.5) 2^(e-3), clamped to +-448
 *   MXFP4  e = clip (floor (log2 (|a| + 9.6e-7)), 0, 2);
 *          q = sign (x) min (floor (|a| 2^(1-e) + 0.5) 2^(e-1), 6)
 *          (0 when se < -127)
 * Rounding is half away from zero (3.5 -> 4 in E2M1), unlike the IEEE
 * conversions of slim-dtype.h.  sign () of +-0 is 0, so zero inputs give
 * +0; a negative x that rounds to zero gives -0.0 (and the FP4 code 8).
 * Dequantized x^ = q * 2^se.
 *
 * The fast functions take the private exponent e from the float's bits
 * and clamp; the _ref twins follow msModelSlim's tensor steps one by one
 * (pad to blocks, block amax, shared exponent, log2 of every element),
 * and the tests compare the two.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  SLIM_MX_FP8_E4M3, /* MXFP8: E4M3 elements, emax 8, max 448 */
  SLIM_MX_FP4_E2M1, /* MXFP4: E2M1 elements, emax 2, max 6 */
} SlimMxFormat;

#define SLIM_MX_BLOCK_SIZE 32
/* weight_scale = shared exponent + 127, as uint8 */
#define SLIM_MX_SCALE_BIAS 127
/* The shared exponent of a block whose maximum is not finite (MXFP8): its
 * biased code 255 is E8M0's NaN. */
#define SLIM_MX_SHARED_EXP_NAN 128

/* Blocks of a row of n_cols elements: ceil (n_cols / 32). */
gint64 slim_mx_n_blocks (gint64 n_cols);

/* The shared exponent of a block with this amax (>= 0). */
int slim_mx_shared_exp (SlimMxFormat format, float amax);
/* The element value of x in a block of shared exponent se (the value on
 * the element grid, not multiplied by 2^se). */
float slim_mx_quantize_element (SlimMxFormat format, float x, int shared_exp);
float slim_mx_quantize_element_ref (SlimMxFormat format, float x, int shared_exp);

/* Quantizes every row of x in blocks of 32 along the row. */
void slim_mx_quantize_rows (SlimMxFormat format,
                            const float *x, /* [n_rows, n_cols] */
                            gint64 n_rows,
                            gint64 n_cols,
                            float *elements, /* [n_rows, n_cols] */
                            gint16 *shared_exp /* [n_rows, n_blocks] */);
void slim_mx_quantize_rows_ref (SlimMxFormat format,
                                const float *x, /* [n_rows, n_cols] */
                                gint64 n_rows,
                                gint64 n_cols,
                                float *elements, /* [n_rows, n_cols] */
                                gint16 *shared_exp /* [n_rows, n_blocks] */);

/* out = elements * 2^shared_exp of their block; out may alias elements. */
void slim_mx_dequantize_rows (const float *elements,    /* [n_rows, n_cols] */
                              const gint16 *shared_exp, /* [n_rows, n_blocks] */
                              gint64 n_rows,
                              gint64 n_cols,
                              float *out /* [n_rows, n_cols] */);

/* Quantize and dequantize (the dynamic activation quantization of
 * msModelSlim's W8A8MXDynamicPerBlockFakeQuantLinear /
 * W4A4MXDynamicPerBlockFakeQuantLinear.forward); out may alias x. */
void slim_mx_fake_quantize_rows (SlimMxFormat format,
                                 const float *x, /* [n_rows, n_cols] */
                                 gint64 n_rows,
                                 gint64 n_cols,
                                 float *out /* [n_rows, n_cols] */);

/* The saved weight_scale: shared_exp + 127 as uint8. */
void slim_mx_scale_to_u8 (const gint16 *shared_exp, /* [n] */
                          gint64 n,
                          guint8 *scale /* [n] */);

/* msModelSlim's pack_fp4_to_uint8 for E2M1 element values: the code of
 * each (slim_f32_to_f4_e2m1), element 2i in the low nibble of byte i.
 * n_cols must be even. */
void slim_mx_pack_fp4 (const float *elements, /* [n_rows, n_cols] */
                       gint64 n_rows,
                       gint64 n_cols,
                       guint8 *packed /* [n_rows, n_cols / 2] */);

G_END_DECLS
