/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-minifloat.h: the scalar conversions of the small float formats
 * beyond float8 e4m3fn (which lives in slim-dtype.h): float8 e5m2 and
 * FP4 E2M1, each with a plain _ref twin written from the definition of
 * the format (nearest-value search over the decoded codes) that the tests
 * compare the bit-manipulation version with.
 *
 * float8_e5m2 (torch.float8_e5m2, OCP FP8 E5M2): sign, 5 exponent bits
 * (bias 15), 2 mantissa bits, IEEE-like: infinities 0x7c/0xfc, NaN
 * 0x7d..0x7f (sign kept), largest finite 57344, smallest subnormal 2^-16.
 * f32 -> e5m2 rounds to nearest, ties to even, as c10's
 * fp8e5m2_from_fp32_value: finite values from 61440 (the midpoint between
 * 57344 and 2^16) up become infinity; NaN gives 0x7f with the sign.
 *
 * FP4 E2M1 (OCP MX FP4): sign bit 0x8 and a 3-bit magnitude code
 * 0..7 = {0, 0.5, 1, 1.5, 2, 3, 4, 6}; no infinities or NaN.
 * f32 -> e2m1 is msModelSlim's pack_fp4_to_uint8 rule
 * (save/utils/pack.py): the nearest magnitude, ties to the smaller one (the
 * first index of argmin), sign bit = signbit (x) (so -0.0 is code 8);
 * magnitudes above 6 saturate to 6.  Where msModelSlim's float32 argmin
 * differs (|x| so large that every |x - v| rounds to the same float,
 * |x| >= 2^27, and infinities: its argmin then returns code 0) slimflow
 * saturates; MX elements never come near (they are clamped to +-6 first).
 * NaN gives code 0 with the sign bit of the NaN, as the argmin does.
 *
 * FP4 E1M2 (Ascend's float4_e1m2, CANN's DT_FP4_E1M2): sign bit 0x8, one
 * exponent bit (bias 1) and two mantissa bits; exponent 0 is subnormal,
 * m/4, exponent 1 is 1 + m/4, so the magnitude codes 0..7 are the uniform
 * grid {0, 0.25, 0.5, ..., 1.75}; no infinities or NaN (emax 0, largest
 * 1.75).  f32 -> e1m2 uses the same rule as E2M1: the nearest magnitude,
 * ties to the smaller one, sign bit = signbit (x), saturation at 1.75, NaN
 * gives code 0 with its sign bit.  (CANN's reference quantizer takes the
 * first argmin over the 16 signed codes, which gives +0 rather than -0 for
 * x in [-0.125, -0]: the same value.)
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_F8_E5M2_MAX 57344.0f
#define SLIM_F4_E2M1_MAX 6.0f
#define SLIM_F4_E1M2_MAX 1.75f

guint8 slim_f32_to_f8_e5m2 (float value);
float slim_f8_e5m2_to_f32 (guint8 value);
guint8 slim_f32_to_f8_e5m2_ref (float value);
float slim_f8_e5m2_to_f32_ref (guint8 value);

/* Codes are 0..15 (the low nibble). */
guint8 slim_f32_to_f4_e2m1 (float value);
float slim_f4_e2m1_to_f32 (guint8 code);
guint8 slim_f32_to_f4_e2m1_ref (float value);
float slim_f4_e2m1_to_f32_ref (guint8 code);

/* Codes are 0..15 (the low nibble). */
guint8 slim_f32_to_f4_e1m2 (float value);
float slim_f4_e1m2_to_f32 (guint8 code);
guint8 slim_f32_to_f4_e1m2_ref (float value);
float slim_f4_e1m2_to_f32_ref (guint8 code);

G_END_DECLS
