/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hifloat8.h: HiFloat8 (HiF8), Ascend's tapered 8-bit float (arXiv
 * 2409.16626 "Ascend HiFloat8 Format for Deep Learning"; the bit-exact
 * conversions of CANN's graph engine, hicann/ge base/common/math/hif8_t:
 * read for the definition, not copied), with a plain _ref twin written
 * from the definition (prefix-code parse, nearest-value search) that the
 * tests compare the direct version with.
 *
 * A HiF8 byte is S | D | E | M, bit 7 the sign.  D, a prefix code in bits
 * 6..3, says how many exponent bits follow (and so how many mantissa bits
 * remain):
 *
 *   D bits   exponent bits  mantissa bits  |exponent|
 *   0000     (denormal)     3 = k          value 2^(k - 23), k = 1..7
 *   0001     0              3              0
 *   001      1              3              1
 *   01       2              3              2..3
 *   10       3              2              4..7
 *   11       4              1              8..15
 *
 * The exponent field is sign-magnitude with an implicit leading one: its
 * top bit is the exponent's sign (1 = negative) and stands in for the
 * magnitude's leading 1 (|e| = field with its top bit set).  A normal
 * value is (1 + M / 2^w) 2^e, e in [-15, 15].  Specials: 0x00 is zero
 * (there is no negative zero), 0x80 is NaN, 0x6f / 0xef (what would be
 * 1.5 * 2^15) are +-infinity; the largest finite value is 2^15 = 32768
 * (0x6e), the smallest 2^-22 (0x01).
 *
 * f32 -> HiF8 rounds to nearest, ties away from zero (CANN's "TA"
 * rounding), on the grid of values above: zero and |x| < 2^-23 give 0x00
 * (sign dropped), [2^-23, 2^-22) gives 2^-22; |x| >= 40960 (the midpoint
 * between 2^15 and the infinity code's 1.5 * 2^15) and infinities give
 * +-infinity; NaN gives 0x80.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_HIF8_MAX 32768.0f
#define SLIM_HIF8_NAN 0x80u
#define SLIM_HIF8_INF 0x6fu

guint8 slim_f32_to_hif8 (float value);
float slim_hif8_to_f32 (guint8 value);
guint8 slim_f32_to_hif8_ref (float value);
float slim_hif8_to_f32_ref (guint8 value);

G_END_DECLS
