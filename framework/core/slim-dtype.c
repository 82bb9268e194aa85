/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-dtype.c: the element type table and the row conversions to and from
 * float32.
 *
 * Every conversion exists twice: a fast version (bit manipulation, used by
 * the library) and a plain _ref version written from the definition of the
 * format (frexp / ldexp / nearest-value search), which the tests compare
 * the fast one with.
 *
 * Rounding and special values (the same in both versions):
 * - f32 -> f16 / bf16: round to nearest, ties to even; overflow gives
 *   +-infinity; NaN stays NaN with the sign and the top payload bits kept
 *   and the quiet bit set.  f16 / bf16 -> f32 is exact (NaN payload kept).
 * - f32 -> f8_e4m3fn (bias 7, 3 mantissa bits, no infinities, NaN =
 *   S.1111.111, max 448): round to nearest even; finite values beyond
 *   +-448 saturate to +-448; +-infinity and NaN give NaN (0x7f / 0xff).
 * - f32 -> integer types: round to nearest even, saturate to the type's
 *   range, NaN gives 0.  bool: 0.0 -> 0, anything else (NaN too) -> 1.
 * - packed 4-bit types: element 2i in the low nibble, 2i+1 in the high
 *   nibble; i4x2 is two's complement in [-8, 7], u4x2 in [0, 15].
 * - f8_e5m2 and f4x2_e2m1 (FP4 E2M1 codes): slim-minifloat.h says how
 *   they round (e5m2 ties to even with overflow to infinity; E2M1 as
 *   msModelSlim's pack_fp4_to_uint8, ties to the smaller magnitude).
 */
#include "slim-dtype.h"

#include <math.h>
#include <string.h>
#include "slim-minifloat.h"

G_STATIC_ASSERT (sizeof (float) == 4);
G_STATIC_ASSERT (sizeof (double) == 8);

G_DEFINE_ENUM_TYPE (SlimDType,
                    slim_dtype,
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_F32, "f32"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_F16, "f16"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_BF16, "bf16"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_I8, "i8"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_U8, "u8"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_I16, "i16"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_I32, "i32"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_I64, "i64"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_BOOL, "bool"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_F8_E4M3FN, "f8-e4m3fn"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_I4X2, "i4x2"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_U4X2, "u4x2"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_F64, "f64"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_F8_E5M2, "f8-e5m2"),
                    G_DEFINE_ENUM_VALUE (SLIM_DTYPE_F4X2_E2M1, "f4x2-e2m1"))

/* ---- bit casts --------------------------------------------------------- */

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

/* ---- bfloat16 ------------------------------------------------------------ */

/**
 * slim_f32_to_bf16:
 * @value: a float32
 *
 * Returns: the nearest bfloat16 (ties to even; NaN stays a quiet NaN).
 */
guint16
slim_f32_to_bf16 (float value)
{
  guint32 bits = f32_bits (value);

  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return (guint16)((bits >> 16) | 0x0040u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return (guint16)(bits >> 16);
}

/**
 * slim_bf16_to_f32:
 * @value: a bfloat16 bit pattern
 *
 * Returns: its exact float32 value.
 */
float
slim_bf16_to_f32 (guint16 value)
{
  return f32_from_bits ((guint32)value << 16);
}

static guint16
bf16_from_f32_ref (float value)
{
  guint32 bits = f32_bits (value);
  guint32 sign = bits & 0x80000000u;
  guint32 lo, hi;
  double x, d_lo, d_hi;

  if (isnan (value))
    return (guint16)((bits >> 16) | 0x0040u);
  if (isinf (value))
    return (guint16)(bits >> 16);
  /* The two bfloat16 neighbours of |value|: truncated and next up. */
  lo = (bits & 0x7fffffffu) & 0xffff0000u;
  hi = lo + 0x10000u;
  x = fabs ((double)value);
  d_lo = x - (double)f32_from_bits (lo);
  /* hi may be the infinity pattern: its "value" for rounding is 2^128. */
  d_hi = (hi == 0x7f800000u ? ldexp (1.0, 128) : (double)f32_from_bits (hi)) - x;
  if (d_lo < d_hi || (d_lo == d_hi && ((lo >> 16) & 1u) == 0))
    return (guint16)((sign | lo) >> 16);
  return (guint16)((sign | hi) >> 16);
}

static float
bf16_to_f32_ref (guint16 value)
{
  guint sign = value >> 15;
  guint exponent = (value >> 7) & 0xffu;
  guint mantissa = value & 0x7fu;
  float magnitude;

  if (exponent == 0xffu)
    return f32_from_bits ((guint32)value << 16); /* inf / NaN with its payload */
  if (exponent == 0)
    magnitude = ldexpf ((float)mantissa, -133); /* 2^(1-127) * m / 2^7 */
  else
    magnitude = ldexpf ((float)(128 + mantissa), (int)exponent - 134);
  return sign ? -magnitude : magnitude;
}

/* ---- float16 ------------------------------------------------------------- */

/**
 * slim_f32_to_f16:
 * @value: a float32
 *
 * Returns: the nearest IEEE half (ties to even, overflow to infinity, NaN
 * stays a quiet NaN).
 */
guint16
slim_f32_to_f16 (float value)
{
  guint32 bits = f32_bits (value);
  guint32 sign = (bits >> 16) & 0x8000u;
  guint32 magnitude = bits & 0x7fffffffu;

  if (magnitude > 0x7f800000u)
    return (guint16)(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x477ff000u) /* >= 65520 rounds to infinity */
    return (guint16)(sign | 0x7c00u);
  if (magnitude >= 0x38800000u) /* normal half: rebias and round the 13 dropped bits */
    {
      guint32 rounded = magnitude - (112u << 23) + 0xfffu + ((magnitude >> 13) & 1u);
      return (guint16)(sign | (rounded >> 13));
    }
  /* Subnormal half: adding 0.5 aligns the unit 2^-24 with the float's last
   * mantissa bit, and the FPU rounds to nearest even. */
  {
    float aligned = f32_from_bits (magnitude) + 0.5f;
    return (guint16)(sign | (f32_bits (aligned) - 0x3f000000u));
  }
}

/**
 * slim_f16_to_f32:
 * @value: an IEEE half bit pattern
 *
 * Returns: its exact float32 value.
 */
float
slim_f16_to_f32 (guint16 value)
{
  guint32 sign = ((guint32)value & 0x8000u) << 16;
  guint32 exponent = (value >> 10) & 0x1fu;
  guint32 mantissa = value & 0x3ffu;

  if (exponent == 0x1fu)
    return f32_from_bits (sign | 0x7f800000u | (mantissa << 13));
  if (exponent == 0)
    {
      /* zero or subnormal: m * 2^-24 is exact in float32 */
      float magnitude = (float)mantissa * 5.9604644775390625e-08f;
      return f32_from_bits (sign | f32_bits (magnitude));
    }
  return f32_from_bits (sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

static guint16
f16_from_f32_ref (float value)
{
  guint16 sign = signbit (value) ? 0x8000u : 0;
  double x = fabs ((double)value);
  double q;
  int e;

  if (isnan (value))
    return (guint16)(sign | 0x7e00u | ((f32_bits (value) >> 13) & 0x3ffu));
  if (isinf (value))
    return (guint16)(sign | 0x7c00u);
  if (x < ldexp (1.0, -14))
    {
      /* subnormal range: units of 2^-24; 1024 units is the smallest normal */
      q = nearbyint (ldexp (x, 24));
      return (guint16)(sign | (guint16)q);
    }
  frexp (x, &e); /* x = m * 2^e, m in [0.5, 1) */
  e -= 1;        /* x = s * 2^e, s in [1, 2) */
  q = nearbyint ((ldexp (x, -e) - 1.0) * 1024.0);
  if (q == 1024.0)
    {
      q = 0.0;
      e += 1;
    }
  if (e + 15 >= 31)
    return (guint16)(sign | 0x7c00u);
  return (guint16)(sign | ((guint16)(e + 15) << 10) | (guint16)q);
}

static float
f16_to_f32_ref (guint16 value)
{
  guint sign = value >> 15;
  guint exponent = (value >> 10) & 0x1fu;
  guint mantissa = value & 0x3ffu;
  float magnitude;

  if (exponent == 0x1fu)
    {
      if (mantissa == 0)
        magnitude = INFINITY;
      else
        return f32_from_bits (((guint32)sign << 31) | 0x7f800000u | ((guint32)mantissa << 13));
    }
  else if (exponent == 0)
    magnitude = ldexpf ((float)mantissa, -24);
  else
    magnitude = ldexpf ((float)(1024 + mantissa), (int)exponent - 25);
  return sign ? -magnitude : magnitude;
}

/* ---- float8 e4m3fn ------------------------------------------------------- */

/**
 * slim_f32_to_f8_e4m3fn:
 * @value: a float32
 *
 * Returns: the nearest float8_e4m3fn (ties to even); finite values beyond
 * +-448 saturate to +-448, infinities and NaN become NaN.
 */
guint8
slim_f32_to_f8_e4m3fn (float value)
{
  guint32 bits = f32_bits (value);
  guint8 sign = (guint8)((bits >> 24) & 0x80u);
  guint32 magnitude = bits & 0x7fffffffu;

  if (magnitude >= 0x7f800000u)
    return sign | 0x7fu;
  if (magnitude >= 0x43e00000u) /* >= 448 */
    return sign | 0x7eu;
  if (magnitude >= 0x3c800000u) /* >= 2^-6: normal */
    {
      guint32 rounded = magnitude - (120u << 23) + 0x7ffffu + ((magnitude >> 20) & 1u);
      return sign | (guint8)(rounded >> 20);
    }
  /* subnormal: units of 2^-9, aligned by adding 2^14 (its ulp is 2^-9) */
  {
    float aligned = f32_from_bits (magnitude) + 16384.0f;
    return sign | (guint8)(f32_bits (aligned) - 0x46800000u);
  }
}

/**
 * slim_f8_e4m3fn_to_f32:
 * @value: a float8_e4m3fn bit pattern
 *
 * Returns: its exact float32 value (NaN for S.1111.111).
 */
float
slim_f8_e4m3fn_to_f32 (guint8 value)
{
  guint32 sign = ((guint32)value & 0x80u) << 24;
  guint32 exponent = (value >> 3) & 0xfu;
  guint32 mantissa = value & 0x7u;

  if ((value & 0x7fu) == 0x7fu)
    return f32_from_bits (sign | 0x7fc00000u);
  if (exponent == 0)
    return f32_from_bits (sign | f32_bits ((float)mantissa * 0.001953125f)); /* m * 2^-9 */
  return f32_from_bits (sign | ((exponent + 120u) << 23) | (mantissa << 20));
}

static float
f8_e4m3fn_to_f32_ref (guint8 value)
{
  guint sign = value >> 7;
  guint exponent = (value >> 3) & 0xfu;
  guint mantissa = value & 0x7u;
  float magnitude;

  if (exponent == 0xfu && mantissa == 0x7u)
    return sign ? -NAN : NAN;
  if (exponent == 0)
    magnitude = ldexpf ((float)mantissa, -9);
  else
    magnitude = ldexpf ((float)(8 + mantissa), (int)exponent - 10);
  return sign ? -magnitude : magnitude;
}

static guint8
f8_e4m3fn_from_f32_ref (float value)
{
  guint8 sign = signbit (value) ? 0x80u : 0;
  double x = fabs ((double)value);
  guint8 best = 0;
  double best_distance = INFINITY;

  if (isnan (value) || isinf (value))
    return sign | 0x7fu;
  if (x >= 448.0)
    return sign | 0x7eu;
  /* nearest of the 127 non-negative finite codes; ties to the even code */
  for (guint code = 0; code <= 0x7eu; code++)
    {
      double distance = fabs ((double)f8_e4m3fn_to_f32_ref ((guint8)code) - x);
      if (distance < best_distance || (distance == best_distance && (code & 1u) == 0))
        {
          best = (guint8)code;
          best_distance = distance;
        }
    }
  return sign | best;
}

/* ---- integers ------------------------------------------------------------ */

/* Round to nearest even and saturate to [lo, hi]; NaN -> 0 (fast path). */
static inline double
round_saturate (float value, double lo, double hi)
{
  double r;

  if (isnan (value))
    return 0.0;
  r = nearbyint ((double)value);
  return r < lo ? lo : (r > hi ? hi : r);
}

/* The same from the definition: floor, then look at the remainder. */
static double
round_saturate_ref (float value, double lo, double hi)
{
  double x = (double)value;
  double f, rest;

  if (isnan (value))
    return 0.0;
  if (x <= lo)
    return lo;
  if (x >= hi)
    return hi;
  f = floor (x);
  rest = x - f;
  if (rest > 0.5 || (rest == 0.5 && fmod (f, 2.0) != 0.0))
    f += 1.0;
  return f < lo ? lo : (f > hi ? hi : f);
}

/* ---- row functions --------------------------------------------------------- */

static void
f32_to_f32_row (const void *src, float *dst, gsize n_elements)
{
  memcpy (dst, src, n_elements * sizeof (float));
}

static void
f32_from_f32_row (const float *src, void *dst, gsize n_elements)
{
  memcpy (dst, src, n_elements * sizeof (float));
}

static void
f32_to_f32_row_ref (const void *src, float *dst, gsize n_elements)
{
  const float *s = src; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = s[i];
}

static void
f32_from_f32_row_ref (const float *src, void *dst, gsize n_elements)
{
  float *d = dst; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    d[i] = src[i];
}

static void
f64_to_f32_row (const void *src, float *dst, gsize n_elements)
{
  const double *s = src; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = (float)s[i];
}

static void
f64_from_f32_row (const float *src, void *dst, gsize n_elements)
{
  double *d = dst; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    d[i] = (double)src[i];
}

static void
f64_to_f32_row_ref (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* (n_elements * 8) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      double v;
      memcpy (&v, s + 8 * i, sizeof v);
      dst[i] = (float)v;
    }
}

static void
f64_from_f32_row_ref (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* (n_elements * 8) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      double v = src[i];
      memcpy (d + 8 * i, &v, sizeof v);
    }
}

#define SLIM_DEFINE_HALF_ROWS(type, fast_to, fast_from, ref_to, ref_from)                          \
  static void type##_to_f32_row (const void *src, float *dst, gsize n_elements)                    \
  {                                                                                                \
    const guint16 *s = src; /* (n_elements) */                                                     \
    for (gsize i = 0; i < n_elements; i++)                                                         \
      dst[i] = fast_to (s[i]);                                                                     \
  }                                                                                                \
  static void type##_from_f32_row (const float *src, void *dst, gsize n_elements)                  \
  {                                                                                                \
    guint16 *d = dst; /* (n_elements) */                                                           \
    for (gsize i = 0; i < n_elements; i++)                                                         \
      d[i] = fast_from (src[i]);                                                                   \
  }                                                                                                \
  static void type##_to_f32_row_ref (const void *src, float *dst, gsize n_elements)                \
  {                                                                                                \
    const guint16 *s = src; /* (n_elements) */                                                     \
    for (gsize i = 0; i < n_elements; i++)                                                         \
      dst[i] = ref_to (s[i]);                                                                      \
  }                                                                                                \
  static void type##_from_f32_row_ref (const float *src, void *dst, gsize n_elements)              \
  {                                                                                                \
    guint16 *d = dst; /* (n_elements) */                                                           \
    for (gsize i = 0; i < n_elements; i++)                                                         \
      d[i] = ref_from (src[i]);                                                                    \
  }

SLIM_DEFINE_HALF_ROWS (bf16, slim_bf16_to_f32, slim_f32_to_bf16, bf16_to_f32_ref, bf16_from_f32_ref)
SLIM_DEFINE_HALF_ROWS (f16, slim_f16_to_f32, slim_f32_to_f16, f16_to_f32_ref, f16_from_f32_ref)

static void
f8_to_f32_row (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = slim_f8_e4m3fn_to_f32 (s[i]);
}

static void
f8_from_f32_row (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    d[i] = slim_f32_to_f8_e4m3fn (src[i]);
}

static void
f8_to_f32_row_ref (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = f8_e4m3fn_to_f32_ref (s[i]);
}

static void
f8_from_f32_row_ref (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    d[i] = f8_e4m3fn_from_f32_ref (src[i]);
}

/* Integer rows: the fast version indexes typed arrays, the reference one
 * goes through memcpy of each element and the floor-based rounding. */
#define SLIM_DEFINE_INT_ROWS(type, ctype, lo, hi)                                                  \
  static void type##_to_f32_row (const void *src, float *dst, gsize n_elements)                    \
  {                                                                                                \
    const ctype *s = src; /* (n_elements) */                                                       \
    for (gsize i = 0; i < n_elements; i++)                                                         \
      dst[i] = (float)s[i];                                                                        \
  }                                                                                                \
  static void type##_from_f32_row (const float *src, void *dst, gsize n_elements)                  \
  {                                                                                                \
    ctype *d = dst; /* (n_elements) */                                                             \
    for (gsize i = 0; i < n_elements; i++)                                                         \
      d[i] = (ctype)round_saturate (src[i], (lo), (hi));                                           \
  }                                                                                                \
  static void type##_to_f32_row_ref (const void *src, float *dst, gsize n_elements)                \
  {                                                                                                \
    const guint8 *s = src; /* (n_elements * sizeof (ctype)) bytes */                               \
    for (gsize i = 0; i < n_elements; i++)                                                         \
      {                                                                                            \
        ctype v;                                                                                   \
        memcpy (&v, s + i * sizeof (ctype), sizeof v);                                             \
        dst[i] = (float)v;                                                                         \
      }                                                                                            \
  }                                                                                                \
  static void type##_from_f32_row_ref (const float *src, void *dst, gsize n_elements)              \
  {                                                                                                \
    guint8 *d = dst; /* (n_elements * sizeof (ctype)) bytes */                                     \
    for (gsize i = 0; i < n_elements; i++)                                                         \
      {                                                                                            \
        ctype v = (ctype)round_saturate_ref (src[i], (lo), (hi));                                  \
        memcpy (d + i * sizeof (ctype), &v, sizeof v);                                             \
      }                                                                                            \
  }

SLIM_DEFINE_INT_ROWS (i8, gint8, -128.0, 127.0)
SLIM_DEFINE_INT_ROWS (u8, guint8, 0.0, 255.0)
SLIM_DEFINE_INT_ROWS (i16, gint16, -32768.0, 32767.0)
SLIM_DEFINE_INT_ROWS (i32, gint32, -2147483648.0, 2147483647.0)
/* 2^63 - 1 is not a double; the largest double below 2^63 is the bound. */
SLIM_DEFINE_INT_ROWS (i64, gint64, -9223372036854775808.0, 9223372036854774784.0)

static void
bool_to_f32_row (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = s[i] != 0 ? 1.0f : 0.0f;
}

static void
bool_from_f32_row (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    d[i] = src[i] != 0.0f;
}

static void
bool_to_f32_row_ref (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = s[i] == 0 ? 0.0f : 1.0f;
}

static void
bool_from_f32_row_ref (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    d[i] = (src[i] == 0.0f) ? 0 : 1;
}

/* Packed 4-bit: element 2i in the low nibble of byte i, 2i+1 in the high. */
static void
i4x2_to_f32_row (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      guint nibble = (i & 1) ? (s[i / 2] >> 4) : (s[i / 2] & 0xfu);
      dst[i] = (float)((gint)(nibble ^ 8u) - 8);
    }
}

static void
i4x2_from_f32_row (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      guint8 nibble = (guint8)((gint)round_saturate (src[i], -8.0, 7.0) & 0xf);
      if (i & 1)
        d[i / 2] = (guint8)((d[i / 2] & 0x0fu) | (nibble << 4));
      else
        d[i / 2] = (guint8)((d[i / 2] & 0xf0u) | nibble);
    }
}

static void
i4x2_to_f32_row_ref (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      gint v = (i % 2 == 0) ? (s[i / 2] % 16) : (s[i / 2] / 16);
      dst[i] = (float)(v >= 8 ? v - 16 : v);
    }
}

static void
i4x2_from_f32_row_ref (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      gint v = (gint)round_saturate_ref (src[i], -8.0, 7.0);
      guint u = (guint)(v < 0 ? v + 16 : v);
      if (i % 2 == 0)
        d[i / 2] = (guint8)((d[i / 2] / 16) * 16 + u);
      else
        d[i / 2] = (guint8)(u * 16 + d[i / 2] % 16);
    }
}

static void
u4x2_to_f32_row (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = (float)((i & 1) ? (s[i / 2] >> 4) : (s[i / 2] & 0xfu));
}

static void
u4x2_from_f32_row (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      guint8 nibble = (guint8)round_saturate (src[i], 0.0, 15.0);
      if (i & 1)
        d[i / 2] = (guint8)((d[i / 2] & 0x0fu) | (nibble << 4));
      else
        d[i / 2] = (guint8)((d[i / 2] & 0xf0u) | nibble);
    }
}

static void
u4x2_to_f32_row_ref (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = (float)((i % 2 == 0) ? (s[i / 2] % 16) : (s[i / 2] / 16));
}

static void
u4x2_from_f32_row_ref (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      guint u = (guint)round_saturate_ref (src[i], 0.0, 15.0);
      if (i % 2 == 0)
        d[i / 2] = (guint8)((d[i / 2] / 16) * 16 + u);
      else
        d[i / 2] = (guint8)(u * 16 + d[i / 2] % 16);
    }
}

/* ---- float8 e5m2 and FP4 E2M1 rows (scalars in slim-minifloat.c) ------------- */

static void
f8_e5m2_to_f32_row (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = slim_f8_e5m2_to_f32 (s[i]);
}

static void
f8_e5m2_from_f32_row (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    d[i] = slim_f32_to_f8_e5m2 (src[i]);
}

static void
f8_e5m2_to_f32_row_ref (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = slim_f8_e5m2_to_f32_ref (s[i]);
}

static void
f8_e5m2_from_f32_row_ref (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* (n_elements) */
  for (gsize i = 0; i < n_elements; i++)
    d[i] = slim_f32_to_f8_e5m2_ref (src[i]);
}

static void
f4x2_to_f32_row (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = slim_f4_e2m1_to_f32 ((i & 1) ? (guint8)(s[i / 2] >> 4) : (guint8)(s[i / 2] & 0xfu));
}

static void
f4x2_from_f32_row (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      guint8 nibble = slim_f32_to_f4_e2m1 (src[i]);
      if (i & 1)
        d[i / 2] = (guint8)((d[i / 2] & 0x0fu) | (nibble << 4));
      else
        d[i / 2] = (guint8)((d[i / 2] & 0xf0u) | nibble);
    }
}

static void
f4x2_to_f32_row_ref (const void *src, float *dst, gsize n_elements)
{
  const guint8 *s = src; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    dst[i] = slim_f4_e2m1_to_f32_ref ((guint8)((i % 2 == 0) ? s[i / 2] % 16 : s[i / 2] / 16));
}

static void
f4x2_from_f32_row_ref (const float *src, void *dst, gsize n_elements)
{
  guint8 *d = dst; /* ((n_elements + 1) / 2) bytes */
  for (gsize i = 0; i < n_elements; i++)
    {
      guint u = slim_f32_to_f4_e2m1_ref (src[i]);
      if (i % 2 == 0)
        d[i / 2] = (guint8)((d[i / 2] / 16) * 16 + u);
      else
        d[i / 2] = (guint8)(u * 16 + d[i / 2] % 16);
    }
}

/* ---- the table --------------------------------------------------------------- */

#define SLIM_DTYPE_ROWS(prefix)                                                                    \
  .to_f32 = prefix##_to_f32_row, .from_f32 = prefix##_from_f32_row,                                \
  .to_f32_ref = prefix##_to_f32_row_ref, .from_f32_ref = prefix##_from_f32_row_ref

static const SlimDTypeInfo dtype_infos[SLIM_N_DTYPES] = {
  [SLIM_DTYPE_F32] = { .dtype = SLIM_DTYPE_F32,
                       .name = "f32",
                       .safetensors_name = "F32",
                       .bits = 32,
                       .is_float = TRUE,
                       SLIM_DTYPE_ROWS (f32) },
  [SLIM_DTYPE_F16] = { .dtype = SLIM_DTYPE_F16,
                       .name = "f16",
                       .safetensors_name = "F16",
                       .bits = 16,
                       .is_float = TRUE,
                       SLIM_DTYPE_ROWS (f16) },
  [SLIM_DTYPE_BF16] = { .dtype = SLIM_DTYPE_BF16,
                        .name = "bf16",
                        .safetensors_name = "BF16",
                        .bits = 16,
                        .is_float = TRUE,
                        SLIM_DTYPE_ROWS (bf16) },
  [SLIM_DTYPE_I8] = { .dtype = SLIM_DTYPE_I8,
                      .name = "i8",
                      .safetensors_name = "I8",
                      .bits = 8,
                      SLIM_DTYPE_ROWS (i8) },
  [SLIM_DTYPE_U8] = { .dtype = SLIM_DTYPE_U8,
                      .name = "u8",
                      .safetensors_name = "U8",
                      .bits = 8,
                      SLIM_DTYPE_ROWS (u8) },
  [SLIM_DTYPE_I16] = { .dtype = SLIM_DTYPE_I16,
                       .name = "i16",
                       .safetensors_name = "I16",
                       .bits = 16,
                       SLIM_DTYPE_ROWS (i16) },
  [SLIM_DTYPE_I32] = { .dtype = SLIM_DTYPE_I32,
                       .name = "i32",
                       .safetensors_name = "I32",
                       .bits = 32,
                       SLIM_DTYPE_ROWS (i32) },
  [SLIM_DTYPE_I64] = { .dtype = SLIM_DTYPE_I64,
                       .name = "i64",
                       .safetensors_name = "I64",
                       .bits = 64,
                       SLIM_DTYPE_ROWS (i64) },
  [SLIM_DTYPE_BOOL] = { .dtype = SLIM_DTYPE_BOOL,
                        .name = "bool",
                        .safetensors_name = "BOOL",
                        .bits = 8,
                        SLIM_DTYPE_ROWS (bool) },
  [SLIM_DTYPE_F8_E4M3FN] = { .dtype = SLIM_DTYPE_F8_E4M3FN,
                             .name = "f8_e4m3fn",
                             .safetensors_name = "F8_E4M3",
                             .bits = 8,
                             .is_float = TRUE,
                             SLIM_DTYPE_ROWS (f8) },
  [SLIM_DTYPE_I4X2] = { .dtype = SLIM_DTYPE_I4X2,
                        .name = "i4x2",
                        .safetensors_name = NULL,
                        .bits = 4,
                        .is_packed = TRUE,
                        SLIM_DTYPE_ROWS (i4x2) },
  [SLIM_DTYPE_U4X2] = { .dtype = SLIM_DTYPE_U4X2,
                        .name = "u4x2",
                        .safetensors_name = NULL,
                        .bits = 4,
                        .is_packed = TRUE,
                        SLIM_DTYPE_ROWS (u4x2) },
  [SLIM_DTYPE_F64] = { .dtype = SLIM_DTYPE_F64,
                       .name = "f64",
                       .safetensors_name = "F64",
                       .bits = 64,
                       .is_float = TRUE,
                       SLIM_DTYPE_ROWS (f64) },
  [SLIM_DTYPE_F8_E5M2] = { .dtype = SLIM_DTYPE_F8_E5M2,
                           .name = "f8_e5m2",
                           .safetensors_name = "F8_E5M2",
                           .bits = 8,
                           .is_float = TRUE,
                           SLIM_DTYPE_ROWS (f8_e5m2) },
  /* written as U8 bytes by the savers (safetensors has no FP4 dtype) */
  [SLIM_DTYPE_F4X2_E2M1] = { .dtype = SLIM_DTYPE_F4X2_E2M1,
                             .name = "f4x2_e2m1",
                             .safetensors_name = NULL,
                             .bits = 4,
                             .is_float = TRUE,
                             .is_packed = TRUE,
                             SLIM_DTYPE_ROWS (f4x2) },
};

/**
 * slim_dtype_get_info:
 * @dtype: a #SlimDType
 *
 * Returns: (transfer none) (nullable): the traits of @dtype, NULL when
 * @dtype is out of range.
 */
const SlimDTypeInfo *
slim_dtype_get_info (SlimDType dtype)
{
  if ((guint)dtype >= SLIM_N_DTYPES)
    return NULL;
  return &dtype_infos[dtype];
}

/**
 * slim_dtype_get_name:
 * @dtype: a #SlimDType
 *
 * Returns: (transfer none): the slimflow name ("f32", "i4x2", ...), or
 * "invalid" for an out-of-range value.
 */
const char *
slim_dtype_get_name (SlimDType dtype)
{
  const SlimDTypeInfo *info = slim_dtype_get_info (dtype);
  return info != NULL ? info->name : "invalid";
}

/**
 * slim_dtype_from_safetensors_name:
 * @name: a safetensors dtype string ("F32", "BF16", "F8_E4M3", ...)
 * @out_dtype: (out): the dtype
 *
 * Returns: FALSE when @name is not a dtype slimflow handles.
 */
gboolean
slim_dtype_from_safetensors_name (const char *name, SlimDType *out_dtype)
{
  g_return_val_if_fail (out_dtype != NULL, FALSE);
  if (name == NULL)
    return FALSE;
  for (guint i = 0; i < SLIM_N_DTYPES; i++)
    if (dtype_infos[i].safetensors_name != NULL
        && strcmp (dtype_infos[i].safetensors_name, name) == 0)
      {
        *out_dtype = (SlimDType)i;
        return TRUE;
      }
  return FALSE;
}

/**
 * slim_dtype_from_name:
 * @name: a slimflow dtype name ("f32", "bf16", "i4x2", ...)
 * @out_dtype: (out): the dtype
 *
 * Returns: FALSE when @name is unknown.
 */
gboolean
slim_dtype_from_name (const char *name, SlimDType *out_dtype)
{
  g_return_val_if_fail (out_dtype != NULL, FALSE);
  if (name == NULL)
    return FALSE;
  for (guint i = 0; i < SLIM_N_DTYPES; i++)
    if (strcmp (dtype_infos[i].name, name) == 0)
      {
        *out_dtype = (SlimDType)i;
        return TRUE;
      }
  return FALSE;
}

/**
 * slim_dtype_n_bytes:
 * @dtype: a #SlimDType
 * @n_elements: element count
 * @out_n_bytes: (out): bytes needed
 *
 * Returns: FALSE on overflow, an odd count of a packed type, or an invalid
 * dtype.
 */
gboolean
slim_dtype_n_bytes (SlimDType dtype, guint64 n_elements, guint64 *out_n_bytes)
{
  const SlimDTypeInfo *info = slim_dtype_get_info (dtype);
  guint64 n_bytes;

  g_return_val_if_fail (out_n_bytes != NULL, FALSE);
  if (info == NULL)
    return FALSE;
  if (info->bits < 8)
    {
      if (n_elements % (8 / info->bits) != 0)
        return FALSE;
      *out_n_bytes = n_elements / (8 / info->bits);
      return TRUE;
    }
  if (!g_uint64_checked_mul (&n_bytes, n_elements, info->bits / 8))
    return FALSE;
  *out_n_bytes = n_bytes;
  return TRUE;
}
