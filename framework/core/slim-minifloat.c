/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-minifloat.c: float8 e5m2, FP4 E2M1 and FP4 E1M2 scalar conversions (see
 * slim-minifloat.h).  The fast versions work on the float32 bits or on
 * fixed thresholds; the _ref versions decode every code from its fields
 * with ldexp and pick the nearest value.
 */
#include "slim-minifloat.h"

#include <math.h>
#include <string.h>

static inline guint32
f32_bits (float value)
{
  guint32 bits;
  memcpy (&bits, &value, sizeof bits);
  return bits;
}

static inline float
f32_from_bits (guint32 bits)
{
  float value;
  memcpy (&value, &bits, sizeof value);
  return value;
}

/* ---- float8 e5m2 ---------------------------------------------------------- */

/**
 * slim_f32_to_f8_e5m2:
 * @value: a float32
 *
 * Returns: the nearest float8_e5m2 (ties to even); 61440 and above give
 *   infinity, NaN gives 0x7f with its sign.
 */
guint8
slim_f32_to_f8_e5m2 (float value)
{
  guint32 bits = f32_bits (value);
  guint8 sign = (guint8)((bits >> 24) & 0x80u);
  guint32 magnitude = bits & 0x7fffffffu;

  if (magnitude > 0x7f800000u)
    return sign | 0x7fu;
  if (magnitude >= 0x47800000u) /* >= 2^16 (and infinity) */
    return sign | 0x7cu;
  if (magnitude >= 0x38800000u) /* >= 2^-14: normal; rounding may carry up to infinity */
    {
      guint32 rounded = magnitude - (112u << 23) + 0xfffffu + ((magnitude >> 21) & 1u);
      return sign | (guint8)(rounded >> 21);
    }
  /* subnormal: units of 2^-16, aligned by adding 2^7 (its ulp is 2^-16) */
  {
    float aligned = f32_from_bits (magnitude) + 128.0f;
    return sign | (guint8)(f32_bits (aligned) - 0x43000000u);
  }
}

/**
 * slim_f8_e5m2_to_f32:
 * @value: a float8_e5m2 bit pattern
 *
 * Returns: its exact float32 value (infinities and NaN kept).
 */
float
slim_f8_e5m2_to_f32 (guint8 value)
{
  /* e5m2 is the top byte of an IEEE half */
  guint32 sign = ((guint32)value & 0x80u) << 24;
  guint32 exponent = (value >> 2) & 0x1fu;
  guint32 mantissa = value & 0x3u;

  if (exponent == 0x1fu)
    return f32_from_bits (sign | (mantissa != 0 ? 0x7fc00000u : 0x7f800000u));
  if (exponent == 0)
    return f32_from_bits (sign | f32_bits ((float)mantissa * 0x1p-16f));
  return f32_from_bits (sign | ((exponent + 112u) << 23) | (mantissa << 21));
}

float
slim_f8_e5m2_to_f32_ref (guint8 value)
{
  guint sign = value >> 7;
  guint exponent = (value >> 2) & 0x1fu;
  guint mantissa = value & 0x3u;
  float magnitude;

  if (exponent == 0x1fu)
    {
      if (mantissa != 0)
        return sign ? -NAN : NAN;
      magnitude = INFINITY;
    }
  else if (exponent == 0)
    magnitude = ldexpf ((float)mantissa, -16); /* 2^(1-15) * m / 4 */
  else
    magnitude = ldexpf ((float)(4 + mantissa), (int)exponent - 17);
  return sign ? -magnitude : magnitude;
}

guint8
slim_f32_to_f8_e5m2_ref (float value)
{
  guint8 sign = signbit (value) ? 0x80u : 0;
  double x = fabs ((double)value);
  guint8 best = 0;
  double best_distance = INFINITY;

  if (isnan (value))
    return sign | 0x7fu;
  /* the finite codes 0..0x7b and, for rounding, infinity (0x7c) standing
   * for the next power 2^16; ties to the even code */
  for (guint code = 0; code <= 0x7cu; code++)
    {
      double v = code == 0x7cu ? 65536.0 : (double)slim_f8_e5m2_to_f32_ref ((guint8)code);
      double distance = fabs (v - x);

      if (distance < best_distance || (distance == best_distance && (code & 1u) == 0))
        {
          best = (guint8)code;
          best_distance = distance;
        }
    }
  return sign | best;
}

/* ---- FP4 E2M1 ------------------------------------------------------------- */

static const float e2m1_values[8] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f };

/**
 * slim_f32_to_f4_e2m1:
 * @value: a float32
 *
 * Returns: the E2M1 code (0..15) of the nearest magnitude, ties to the
 *   smaller one, sign bit from signbit(); saturates at 6.
 */
guint8
slim_f32_to_f4_e2m1 (float value)
{
  float a = fabsf (value);
  guint8 sign = signbit (value) ? 0x8u : 0;
  guint8 code;

  if (isnan (value))
    return sign;
  /* upper ends of each code's interval: the midpoints, which belong to the
   * smaller magnitude */
  if (a <= 0.25f)
    code = 0;
  else if (a <= 0.75f)
    code = 1;
  else if (a <= 1.25f)
    code = 2;
  else if (a <= 1.75f)
    code = 3;
  else if (a <= 2.5f)
    code = 4;
  else if (a <= 3.5f)
    code = 5;
  else if (a <= 5.0f)
    code = 6;
  else
    code = 7;
  return sign | code;
}

/**
 * slim_f4_e2m1_to_f32:
 * @code: an E2M1 code (the low nibble is read)
 *
 * Returns: its value
 */
float
slim_f4_e2m1_to_f32 (guint8 code)
{
  float v = e2m1_values[code & 7u];

  return (code & 8u) ? -v : v;
}

float
slim_f4_e2m1_to_f32_ref (guint8 code)
{
  guint exponent = (code >> 1) & 3u;
  guint mantissa = code & 1u;
  float magnitude;

  if (exponent == 0)
    magnitude = ldexpf ((float)mantissa, -1); /* subnormal: m * 2^-1 */
  else
    magnitude = ldexpf ((float)(2 + mantissa), (int)exponent - 2); /* (1 + m/2) 2^(e-1) */
  return (code & 8u) ? -magnitude : magnitude;
}

guint8
slim_f32_to_f4_e2m1_ref (float value)
{
  guint8 sign = signbit (value) ? 0x8u : 0;
  double x = fabs ((double)value);
  guint8 best = 0;
  double best_distance = INFINITY;

  if (isnan (value))
    return sign;
  if (x >= 6.0)
    return sign | 7u; /* saturation (also infinity) */
  /* first index of the minimum distance (exact in double for |x| < 6) */
  for (guint code = 0; code < 8; code++)
    {
      double distance = fabs ((double)slim_f4_e2m1_to_f32_ref ((guint8)code) - x);

      if (distance < best_distance)
        {
          best = (guint8)code;
          best_distance = distance;
        }
    }
  return sign | best;
}

/* ---- FP4 E1M2 ------------------------------------------------------------- */

/**
 * slim_f32_to_f4_e1m2:
 * @value: a float32
 *
 * Returns: the E1M2 code (0..15) of the nearest magnitude, ties to the
 *   smaller one, sign bit from signbit(); saturates at 1.75.
 */
guint8
slim_f32_to_f4_e1m2 (float value)
{
  float a = fabsf (value);
  guint8 sign = signbit (value) ? 0x8u : 0;
  guint8 code = 0;

  if (isnan (value))
    return sign;
  /* the grid is k / 4, k = 0..7: the upper end of code k's interval is the
   * midpoint (2k + 1) / 8, which belongs to k (exact float32 constants) */
  while (code < 7 && a > (float)(2 * code + 1) * 0.125f)
    code++;
  return sign | code;
}

/**
 * slim_f4_e1m2_to_f32:
 * @code: an E1M2 code (the low nibble is read)
 *
 * Returns: its value
 */
float
slim_f4_e1m2_to_f32 (guint8 code)
{
  float v = (float)(code & 7u) * 0.25f;

  return (code & 8u) ? -v : v;
}

float
slim_f4_e1m2_to_f32_ref (guint8 code)
{
  guint exponent = (code >> 2) & 1u;
  guint mantissa = code & 3u;
  float magnitude;

  if (exponent == 0)
    magnitude = ldexpf ((float)mantissa, -2); /* subnormal: (m / 4) 2^(1 - bias) */
  else
    magnitude = ldexpf ((float)(4 + mantissa), -2); /* (1 + m / 4) 2^(1 - bias) */
  return (code & 8u) ? -magnitude : magnitude;
}

guint8
slim_f32_to_f4_e1m2_ref (float value)
{
  guint8 sign = signbit (value) ? 0x8u : 0;
  double x = fabs ((double)value);
  guint8 best = 0;
  double best_distance = INFINITY;

  if (isnan (value))
    return sign;
  if (x >= 1.75)
    return sign | 7u; /* saturation (also infinity) */
  /* first index of the minimum distance (exact in double for |x| < 1.75) */
  for (guint code = 0; code < 8; code++)
    {
      double distance = fabs ((double)slim_f4_e1m2_to_f32_ref ((guint8)code) - x);

      if (distance < best_distance)
        {
          best = (guint8)code;
          best_distance = distance;
        }
    }
  return sign | best;
}
