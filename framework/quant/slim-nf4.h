/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-nf4.h: the NF4 (4-bit NormalFloat) code book of bitsandbytes and
 * per-group absmax fake quantization with it:
 *
 *   absmax = max |w| over the group
 *   q      = nearest code of w * (1 / absmax)     ties go to the lower code
 *   w^     = code[q] * absmax
 *
 * slim_nf4_encode() walks the 15 midpoints (binary search);
 * slim_nf4_encode_ref() is its oracle: a linear scan for the nearest of
 * the 16 codes. Both compare in double, where the midpoints and the
 * distances are exact, so they agree on every float input.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_NF4_N_CODES 16

/* Code q (0..15) to its value in [-1, 1]; q > 15 gives NaN. */
float slim_nf4_decode (guint8 q);

/* Nearest code of x (x is expected in [-1, 1]; outside saturates to code
 * 0 or 15). NaN encodes to code 7 (zero). */
guint8 slim_nf4_encode (float x);
guint8 slim_nf4_encode_ref (float x);

/* Per-group absmax NF4 fake quantization of a row-major weight, groups of
 * group_size consecutive columns (n_cols % group_size == 0). A group of
 * zeros stays zero. absmax (optional) receives each group's absmax; codes
 * (optional) each element's code. out may alias w. */
void slim_nf4_fake_quantize (const float *w, /* [n_rows, n_cols] row-major */
                             gint64 n_rows,
                             gint64 n_cols,
                             gint64 group_size,
                             float *absmax, /* [n_rows, n_cols / group_size] or NULL */
                             guint8 *codes, /* [n_rows, n_cols] or NULL */
                             float *out /* [n_rows, n_cols] row-major */);

/* Two codes per byte, in element order, the first in the high nibble
 * (byte i = codes[2i] << 4 | codes[2i + 1]): bitsandbytes' packed 4-bit
 * storage and msModelSlim's LinearNf4Quantizer.nf4_quantize.  n_codes is
 * even; codes are 0..15 (higher bits are dropped). */
void slim_nf4_pack (const guint8 *codes, /* [n_codes] */
                    gint64 n_codes,
                    guint8 *packed /* [n_codes / 2] */);
void slim_nf4_unpack (const guint8 *packed, /* [n_codes / 2] */
                      gint64 n_codes,
                      guint8 *codes /* [n_codes] */);

G_END_DECLS
