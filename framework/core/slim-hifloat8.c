/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hifloat8.c: HiFloat8 scalar conversions (see slim-hifloat8.h).  The
 * direct versions work on the float32 fields and a switch over the D
 * prefix; the _ref versions parse the code bit by bit and search all
 * values.
 */
#include "slim-hifloat8.h"

#include <math.h>
#include <string.h>

/* Mantissa bits of a normal exponent magnitude a (0..15). */
static inline guint
hif8_mantissa_bits (guint a)
{
  return a <= 3 ? 3 : (a <= 7 ? 2 : 1);
}

/* The code of sign | 2^e (1 + kept / 2^w) for e in [-22, 15], kept < 2^w
 * (e <= -16: the denormal codes, kept is 0 there). */
static guint8
hif8_encode (guint8 sign, int e, guint kept)
{
  guint a = (guint)(e < 0 ? -e : e), se = e < 0 ? 1u : 0u;

  if (e <= -16)
    return sign | (guint8)(e + 23);
  if (a == 0)
    return sign | 0x08u | (guint8)kept;
  if (a == 1)
    return sign | 0x10u | (guint8)(se << 3) | (guint8)kept;
  if (a <= 3)
    return sign | 0x20u | (guint8)(((se << 1) | (a & 1u)) << 3) | (guint8)kept;
  if (a <= 7)
    return sign | 0x40u | (guint8)(((se << 2) | (a & 3u)) << 2) | (guint8)kept;
  return sign | 0x60u | (guint8)(((se << 3) | (a & 7u)) << 1) | (guint8)kept;
}

/**
 * slim_f32_to_hif8:
 * @value: a float32
 *
 * Returns: the nearest HiF8 code, ties away from zero (see slim-hifloat8.h
 *   for zero, the denormals, infinity and NaN)
 */
guint8
slim_f32_to_hif8 (float value)
{
  guint32 bits, magnitude, mantissa;
  guint8 sign;
  int e;
  guint drop;

  memcpy (&bits, &value, sizeof bits);
  sign = (guint8)((bits >> 24) & 0x80u);
  magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u)
    return SLIM_HIF8_NAN;
  if (magnitude == 0x7f800000u)
    return sign | SLIM_HIF8_INF;
  e = (int)(magnitude >> 23) - 127; /* float32 subnormals: far below 2^-23 */
  mantissa = magnitude & 0x7fffffu;
  if (magnitude == 0 || e < -23)
    return 0;
  if (e > 15)
    return sign | SLIM_HIF8_INF;
  if (e == -23)
    return sign | 0x01u; /* [2^-23, 2^-22): the tie at 2^-23 goes away from 0 */
  /* keep w mantissa bits (w = 0 for the denormal exponents -22..-16),
   * adding half of the last kept bit: a carry moves to the next binade,
   * whose kept bits are then zero */
  drop = 23u - (e <= -16 ? 0u : hif8_mantissa_bits ((guint)(e < 0 ? -e : e)));
  mantissa += 1u << (drop - 1u);
  if (mantissa >> 23)
    {
      e++;
      mantissa &= 0x7fffffu;
      if (e > 15)
        return sign | SLIM_HIF8_INF;
    }
  /* 2^15 (1 + 1/2) encodes as 0x6f, the infinity code: the values that
   * round there are infinite */
  return hif8_encode (sign, e, mantissa >> drop);
}

/**
 * slim_hif8_to_f32:
 * @value: a HiF8 code
 *
 * Returns: its exact float32 value (infinities and NaN kept)
 */
float
slim_hif8_to_f32 (guint8 value)
{
  guint d = (value >> 3) & 0xfu;
  float sign = (value & 0x80u) ? -1.0f : 1.0f;
  guint field, a, w;
  int e;

  if (value == SLIM_HIF8_NAN)
    return NAN;
  if ((value & 0x7fu) == SLIM_HIF8_INF)
    return sign * INFINITY;
  switch (d)
    {
    case 0:
      return (value & 7u) == 0 ? 0.0f : sign * ldexpf (1.0f, (int)(value & 7u) - 23);
    case 1:
      e = 0;
      w = 3;
      break;
    case 2:
    case 3:
      e = (value & 0x08u) ? -1 : 1;
      w = 3;
      break;
    case 4:
    case 5:
    case 6:
    case 7:
      field = (value >> 3) & 3u;
      a = 2u | (field & 1u);
      e = (field & 2u) ? -(int)a : (int)a;
      w = 3;
      break;
    case 8:
    case 9:
    case 10:
    case 11:
      field = (value >> 2) & 7u;
      a = 4u | (field & 3u);
      e = (field & 4u) ? -(int)a : (int)a;
      w = 2;
      break;
    default:
      field = (value >> 1) & 15u;
      a = 8u | (field & 7u);
      e = (field & 8u) ? -(int)a : (int)a;
      w = 1;
      break;
    }
  return sign * ldexpf (1.0f + ldexpf ((float)(value & ((1u << w) - 1u)), -(int)w), e);
}

float
slim_hif8_to_f32_ref (guint8 value)
{
  /* bits 6..0 read one at a time: the D prefix, then D exponent bits, then
   * the mantissa */
  int bit = 6, n_exp, e = 0, sign = value >> 7;
  guint mantissa = 0, n_man;
  double magnitude;

#define NEXT() ((value >> bit--) & 1u)
  if (NEXT ())
    n_exp = NEXT () ? 4 : 3; /* 11, 10 */
  else if (NEXT ())
    n_exp = 2; /* 01 */
  else if (NEXT ())
    n_exp = 1; /* 001 */
  else if (NEXT ())
    n_exp = 0; /* 0001 */
  else
    n_exp = -1; /* 0000: denormal */
  if (n_exp < 0)
    {
      guint k = value & 7u;

      if (k == 0)
        return sign ? NAN : 0.0f; /* 0x80 is NaN, 0x00 zero */
      magnitude = ldexp (1.0, (int)k - 23);
      return (float)(sign ? -magnitude : magnitude);
    }
  if (n_exp > 0)
    {
      gboolean negative = NEXT () != 0; /* the top bit: the exponent's sign ... */
      int mag = 1;                      /* ... standing in for the leading 1 */

      for (int i = 1; i < n_exp; i++)
        mag = (mag << 1) | (int)NEXT ();
      e = negative ? -mag : mag;
    }
  n_man = (guint)(bit + 1);
  while (bit >= 0)
    mantissa = (mantissa << 1) | NEXT ();
#undef NEXT
  magnitude = ldexp (1.0 + ldexp ((double)mantissa, -(int)n_man), e);
  if (e == 15 && mantissa == 1)
    magnitude = INFINITY; /* 0x6f / 0xef */
  return (float)(sign ? -magnitude : magnitude);
}

guint8
slim_f32_to_hif8_ref (float value)
{
  double x = fabs ((double)value), best_distance = INFINITY, best_value = 0.0;
  guint8 best = 0;

  if (isnan (value))
    return SLIM_HIF8_NAN;
  /* 1.5 * 2^15, the infinity code's place on the grid, and everything
   * above it are infinite */
  if (x >= 49152.0)
    return (signbit (value) ? 0x80u : 0) | SLIM_HIF8_INF;
  /* every positive code, the infinity code standing at 1.5 * 2^15; ties
   * to the larger magnitude */
  for (guint code = 0; code < 0x80u; code++)
    {
      double v = code == SLIM_HIF8_INF ? 49152.0 : (double)slim_hif8_to_f32_ref ((guint8)code);
      double distance = fabs (v - x);

      if (distance < best_distance || (distance == best_distance && v > best_value))
        {
          best = (guint8)code;
          best_distance = distance;
          best_value = v;
        }
    }
  if (best == 0)
    return 0; /* no negative zero */
  return (signbit (value) ? 0x80u : 0) | best;
}
