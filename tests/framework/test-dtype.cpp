// SPDX-License-Identifier: Apache-2.0
//
// test-dtype.cpp: the dtype table and the float32 conversions.  Every fast
// conversion is compared with its plain _ref twin: exhaustively over the
// 65536 f16 / bf16 and 256 f8 bit patterns, over every rounding tie, and
// over random float32 bit patterns.  All comparisons are bit-exact (no
// tolerance): both versions implement the same rounding (nearest even)
// and the same NaN rule (sign and top payload kept, quiet bit set), so any
// difference is a bug.  float8 e5m2 and FP4 E2M1 (slim-minifloat.h) are
// checked the same way: every code round-trips, fast == reference on every
// midpoint and its neighbours and on a strided sweep of all float32 bit
// patterns.
#include "slim-test.h"

#include <cmath>
#include <cstring>

#include "slim-dtype.h"
#include "slim-minifloat.h"

namespace
{

guint32
bits_of (float value)
{
  guint32 bits;
  std::memcpy (&bits, &value, sizeof bits);
  return bits;
}

float
float_of (guint32 bits)
{
  float value;
  std::memcpy (&value, &bits, sizeof value);
  return value;
}

const SlimDTypeInfo *
info (SlimDType dtype)
{
  const SlimDTypeInfo *i = slim_dtype_get_info (dtype);
  EXPECT_NE (i, nullptr);
  return i;
}

// Every f32 that is a rounding tie between two consecutive values of a
// 16-bit float format (and the f32 values one ulp either side of it).
std::vector<float>
ties_and_neighbours (SlimDType dtype)
{
  std::vector<float> values;
  const SlimDTypeInfo *i = info (dtype);
  for (guint32 h = 0; h < 0x10000; h++)
    {
      guint16 lo = (guint16)h;
      guint16 hi = (guint16)(h + 1);
      float a, b;
      i->to_f32_ref (&lo, &a, 1);
      i->to_f32_ref (&hi, &b, 1);
      if (!std::isfinite (a) || !std::isfinite (b) || (h & 0x7fff) == 0x7fff)
        continue;
      // midpoint of two values with at most 11 significant bits: exact in f32
      float mid = (float)(((double)a + (double)b) / 2.0);
      values.push_back (mid);
      values.push_back (std::nextafter (mid, INFINITY));
      values.push_back (std::nextafter (mid, -INFINITY));
    }
  return values;
}

std::vector<float>
random_floats (guint n, guint32 seed)
{
  std::vector<float> values;
  GRand *rand = g_rand_new_with_seed (seed);
  for (guint k = 0; k < n; k++)
    values.push_back (float_of (g_rand_int (rand)));
  g_rand_free (rand);
  // and the specials
  for (float v : { 0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65519.99f, 65520.0f,
                   448.0f, 464.0f, 1e-45f, 3.0e38f })
    values.push_back (v);
  return values;
}

TEST (DType, TableIsConsistent)
{
  for (guint d = 0; d < SLIM_N_DTYPES; d++)
    {
      const SlimDTypeInfo *i = info ((SlimDType)d);
      ASSERT_EQ ((guint)i->dtype, d);
      ASSERT_NE (i->name, nullptr);
      EXPECT_NE (i->to_f32, nullptr);
      EXPECT_NE (i->from_f32, nullptr);
      EXPECT_NE (i->to_f32_ref, nullptr);
      EXPECT_NE (i->from_f32_ref, nullptr);
      EXPECT_EQ (i->is_packed, i->bits < 8) << i->name;
      SlimDType parsed;
      ASSERT_TRUE (slim_dtype_from_name (i->name, &parsed));
      EXPECT_EQ ((guint)parsed, d);
      EXPECT_STREQ (slim_dtype_get_name ((SlimDType)d), i->name);
      if (i->safetensors_name != nullptr)
        {
          ASSERT_TRUE (slim_dtype_from_safetensors_name (i->safetensors_name, &parsed));
          EXPECT_EQ ((guint)parsed, d);
        }
    }
  // packed types have no safetensors name; everything else has one
  EXPECT_EQ (info (SLIM_DTYPE_I4X2)->safetensors_name, nullptr);
  EXPECT_EQ (info (SLIM_DTYPE_U4X2)->safetensors_name, nullptr);
  EXPECT_EQ (info (SLIM_DTYPE_F4X2_E2M1)->safetensors_name, nullptr);
  SlimDType parsed;
  EXPECT_FALSE (slim_dtype_from_safetensors_name ("F7", &parsed));
  EXPECT_FALSE (slim_dtype_from_safetensors_name ("f32", &parsed));
  EXPECT_FALSE (slim_dtype_from_safetensors_name (nullptr, &parsed));
  EXPECT_FALSE (slim_dtype_from_name ("float", &parsed));
  EXPECT_EQ (slim_dtype_get_info (SLIM_N_DTYPES), nullptr);
  EXPECT_STREQ (slim_dtype_get_name (SLIM_N_DTYPES), "invalid");
  // the GEnum carries kebab-case nicks
  GEnumClass *klass = G_ENUM_CLASS (g_type_class_ref (SLIM_TYPE_DTYPE));
  EXPECT_EQ (klass->n_values, (guint)SLIM_N_DTYPES);
  EXPECT_NE (g_enum_get_value_by_nick (klass, "bf16"), nullptr);
  g_type_class_unref (klass);
}

TEST (DType, NBytes)
{
  guint64 n_bytes = 0;
  ASSERT_TRUE (slim_dtype_n_bytes (SLIM_DTYPE_F32, 10, &n_bytes));
  EXPECT_EQ (n_bytes, 40u);
  ASSERT_TRUE (slim_dtype_n_bytes (SLIM_DTYPE_I4X2, 10, &n_bytes));
  EXPECT_EQ (n_bytes, 5u);
  EXPECT_FALSE (slim_dtype_n_bytes (SLIM_DTYPE_U4X2, 7, &n_bytes)) << "odd packed count";
  EXPECT_FALSE (slim_dtype_n_bytes (SLIM_DTYPE_F64, G_MAXUINT64 / 4, &n_bytes)) << "overflow";
  ASSERT_TRUE (slim_dtype_n_bytes (SLIM_DTYPE_U8, G_MAXUINT64, &n_bytes));
  EXPECT_EQ (n_bytes, G_MAXUINT64);
}

// f16 / bf16 -> f32 is exact: the fast and reference versions must agree on
// all 65536 patterns bit for bit (NaN payloads included).
TEST (DType, HalfToF32AllPatternsMatchReference)
{
  for (SlimDType dtype : { SLIM_DTYPE_F16, SLIM_DTYPE_BF16 })
    {
      const SlimDTypeInfo *i = info (dtype);
      std::vector<guint16> src (0x10000);
      for (guint32 h = 0; h < 0x10000; h++)
        src[h] = (guint16)h;
      std::vector<float> fast (src.size ()), ref (src.size ());
      i->to_f32 (src.data (), fast.data (), src.size ());
      i->to_f32_ref (src.data (), ref.data (), src.size ());
      guint n_nan = 0;
      for (guint32 h = 0; h < 0x10000; h++)
        {
          ASSERT_EQ (bits_of (fast[h]), bits_of (ref[h])) << i->name << " pattern " << h;
          n_nan += std::isnan (fast[h]) ? 1 : 0;
        }
      // 2 x (2^mantissa_bits - 1) NaN patterns
      EXPECT_EQ (n_nan, dtype == SLIM_DTYPE_F16 ? 2u * 1023u : 2u * 127u) << i->name;
    }
}

// Every non-NaN pattern survives f16/bf16 -> f32 -> f16/bf16; NaN stays NaN
// with its sign and the quiet bit set.
TEST (DType, HalfRoundTripAllPatterns)
{
  for (SlimDType dtype : { SLIM_DTYPE_F16, SLIM_DTYPE_BF16 })
    {
      const SlimDTypeInfo *i = info (dtype);
      guint16 quiet_bit = dtype == SLIM_DTYPE_F16 ? 0x0200 : 0x0040;
      for (guint32 h = 0; h < 0x10000; h++)
        {
          guint16 src = (guint16)h, fast = 0, ref = 0;
          float value;
          i->to_f32 (&src, &value, 1);
          i->from_f32 (&value, &fast, 1);
          i->from_f32_ref (&value, &ref, 1);
          ASSERT_EQ (fast, ref) << i->name << " pattern " << h;
          if (std::isnan (value))
            {
              EXPECT_EQ (fast & 0x8000, src & 0x8000);
              EXPECT_EQ (fast, src | quiet_bit) << i->name << " NaN " << h;
            }
          else
            ASSERT_EQ (fast, src) << i->name << " pattern " << h;
        }
    }
}

// f32 -> f16 / bf16 at every tie and one ulp either side, and on random
// f32 bit patterns: fast == reference.
TEST (DType, HalfFromF32MatchesReferenceAtTiesAndRandom)
{
  for (SlimDType dtype : { SLIM_DTYPE_F16, SLIM_DTYPE_BF16 })
    {
      const SlimDTypeInfo *i = info (dtype);
      std::vector<float> values = ties_and_neighbours (dtype);
      std::vector<float> more = random_floats (1u << 20, 42);
      values.insert (values.end (), more.begin (), more.end ());
      std::vector<guint16> fast (values.size ()), ref (values.size ());
      i->from_f32 (values.data (), fast.data (), values.size ());
      i->from_f32_ref (values.data (), ref.data (), values.size ());
      for (gsize k = 0; k < values.size (); k++)
        ASSERT_EQ (fast[k], ref[k])
            << i->name << " value bits 0x" << std::hex << bits_of (values[k]);
    }
}

// Ties go to the even neighbour (spot checks derived from the formats).
TEST (DType, RoundToNearestEvenTies)
{
  // bf16 has 7 mantissa bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
  EXPECT_EQ (slim_f32_to_bf16 (1.0f + std::ldexp (1.0f, -8)), slim_f32_to_bf16 (1.0f));
  EXPECT_EQ (slim_f32_to_bf16 (1.0f + 3 * std::ldexp (1.0f, -8)),
             slim_f32_to_bf16 (1.0f + 2 * std::ldexp (1.0f, -7)));
  EXPECT_EQ (
      slim_bf16_to_f32 (slim_f32_to_bf16 (std::nextafter (1.0f + std::ldexp (1.0f, -8), 2.0f))),
      1.0f + std::ldexp (1.0f, -7));
  // f16 has 10 mantissa bits.
  EXPECT_EQ (slim_f16_to_f32 (slim_f32_to_f16 (1.0f + std::ldexp (1.0f, -11))), 1.0f);
  EXPECT_EQ (slim_f16_to_f32 (slim_f32_to_f16 (1.0f + 3 * std::ldexp (1.0f, -11))),
             1.0f + std::ldexp (1.0f, -9));
  // subnormal ties: half the smallest subnormal rounds to 0, 1.5 of it to 2
  EXPECT_EQ (slim_f32_to_f16 (std::ldexp (1.0f, -25)), 0u);
  EXPECT_EQ (slim_f32_to_f16 (3 * std::ldexp (1.0f, -25)), 2u);
  // overflow: 65519.99 stays at the max (65504), 65520 (a tie with 2^16) goes to inf
  EXPECT_EQ (slim_f16_to_f32 (slim_f32_to_f16 (65519.99f)), 65504.0f);
  EXPECT_TRUE (std::isinf (slim_f16_to_f32 (slim_f32_to_f16 (65520.0f))));
  EXPECT_TRUE (std::isinf (slim_bf16_to_f32 (slim_f32_to_bf16 (3.4028235e38f))));
  // signed zero is kept
  EXPECT_EQ (slim_f32_to_f16 (-0.0f), 0x8000u);
  EXPECT_EQ (slim_f32_to_bf16 (-0.0f), 0x8000u);
}

// float8 e4m3fn: all 256 patterns, saturation, NaN, ties.
TEST (DType, Float8E4M3FN)
{
  const SlimDTypeInfo *i = info (SLIM_DTYPE_F8_E4M3FN);
  guint n_nan = 0;
  float max_value = 0.0f;
  for (guint code = 0; code < 256; code++)
    {
      guint8 src = (guint8)code;
      float fast, ref;
      i->to_f32 (&src, &fast, 1);
      i->to_f32_ref (&src, &ref, 1);
      EXPECT_EQ (bits_of (slim_f8_e4m3fn_to_f32 (src)), bits_of (fast));
      if (std::isnan (ref))
        {
          n_nan++;
          EXPECT_TRUE (std::isnan (fast)) << code;
          EXPECT_EQ ((code & 0x7f), 0x7fu) << "only S.1111.111 is NaN";
          continue;
        }
      ASSERT_EQ (bits_of (fast), bits_of (ref)) << code;
      max_value = std::max (max_value, fast);
      guint8 back = 0, back_ref = 0;
      i->from_f32 (&fast, &back, 1);
      i->from_f32_ref (&fast, &back_ref, 1);
      EXPECT_EQ (back, code) << "round trip of code " << code;
      EXPECT_EQ (back_ref, code) << "reference round trip of code " << code;
    }
  EXPECT_EQ (n_nan, 2u);
  EXPECT_EQ (max_value, 448.0f);
  // saturation of finite values, NaN for infinities and NaN
  EXPECT_EQ (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (1000.0f)), 448.0f);
  EXPECT_EQ (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (-3e38f)), -448.0f);
  EXPECT_TRUE (std::isnan (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (INFINITY))));
  EXPECT_TRUE (std::isnan (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (NAN))));
  // ties: 1.0625 is halfway between 1.0 (mantissa 0) and 1.125 (mantissa 1)
  EXPECT_EQ (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (1.0625f)), 1.0f);
  EXPECT_EQ (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (1.1875f)), 1.25f);
  // smallest subnormal 2^-9; half of it rounds to zero (even)
  EXPECT_EQ (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (std::ldexp (1.0f, -9))),
             std::ldexp (1.0f, -9));
  EXPECT_EQ (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (std::ldexp (1.0f, -10))), 0.0f);

  // fast == reference on every midpoint between finite codes and on random values
  std::vector<float> values = random_floats (1u << 16, 7);
  for (guint code = 0; code < 0x7e; code++)
    {
      float a = slim_f8_e4m3fn_to_f32 ((guint8)code);
      float b = slim_f8_e4m3fn_to_f32 ((guint8)(code + 1));
      float mid = (a + b) / 2; // 5 significant bits: exact
      for (float v : { mid, -mid, std::nextafter (mid, INFINITY), std::nextafter (mid, -INFINITY) })
        values.push_back (v);
    }
  for (int k = -2000; k <= 2000; k++)
    values.push_back (k * 0.25f);
  std::vector<guint8> fast (values.size ()), ref (values.size ());
  i->from_f32 (values.data (), fast.data (), values.size ());
  i->from_f32_ref (values.data (), ref.data (), values.size ());
  for (gsize k = 0; k < values.size (); k++)
    ASSERT_EQ (fast[k], ref[k]) << "value " << values[k];
}

// float8 e5m2: all 256 patterns round-trip (NaN codes give NaN), overflow
// to infinity from 61440, ties to even, fast == reference.
TEST (DType, Float8E5M2)
{
  const SlimDTypeInfo *i = info (SLIM_DTYPE_F8_E5M2);
  guint n_nan = 0, n_inf = 0;
  float max_value = 0.0f;
  for (guint code = 0; code < 256; code++)
    {
      guint8 src = (guint8)code;
      float fast = slim_f8_e5m2_to_f32 (src), ref = slim_f8_e5m2_to_f32_ref (src);
      float row;
      i->to_f32 (&src, &row, 1);
      EXPECT_EQ (bits_of (row), bits_of (fast));
      if (std::isnan (ref))
        {
          n_nan++;
          EXPECT_TRUE (std::isnan (fast)) << code;
          EXPECT_GT ((code & 0x7f), 0x7cu) << "NaN is S.11111.xx with xx != 0";
          EXPECT_EQ (slim_f32_to_f8_e5m2 (fast) & 0x7fu, 0x7fu);
          continue;
        }
      ASSERT_EQ (bits_of (fast), bits_of (ref)) << code;
      if (std::isinf (fast))
        n_inf++;
      else
        max_value = std::max (max_value, fast);
      EXPECT_EQ (slim_f32_to_f8_e5m2 (fast), code) << "round trip of code " << code;
      EXPECT_EQ (slim_f32_to_f8_e5m2_ref (fast), code) << "reference round trip " << code;
    }
  EXPECT_EQ (n_nan, 6u);
  EXPECT_EQ (n_inf, 2u);
  EXPECT_EQ (max_value, SLIM_F8_E5M2_MAX);
  // overflow: below the midpoint 61440 stays finite, from it on infinity
  EXPECT_EQ (slim_f8_e5m2_to_f32 (slim_f32_to_f8_e5m2 (61439.0f)), 57344.0f);
  EXPECT_TRUE (std::isinf (slim_f8_e5m2_to_f32 (slim_f32_to_f8_e5m2 (61440.0f))));
  EXPECT_EQ (slim_f32_to_f8_e5m2 (-INFINITY), 0xfcu);
  // ties to even: 1.125 lies between 1.0 (mantissa 0) and 1.25 (mantissa 1)
  EXPECT_EQ (slim_f8_e5m2_to_f32 (slim_f32_to_f8_e5m2 (1.125f)), 1.0f);
  EXPECT_EQ (slim_f8_e5m2_to_f32 (slim_f32_to_f8_e5m2 (1.375f)), 1.5f);
  // subnormals: 2^-16 smallest, half of it to zero (even), 1.5 units to 2
  EXPECT_EQ (slim_f8_e5m2_to_f32 (slim_f32_to_f8_e5m2 (0x1p-16f)), 0x1p-16f);
  EXPECT_EQ (slim_f8_e5m2_to_f32 (slim_f32_to_f8_e5m2 (0x1p-17f)), 0.0f);
  EXPECT_EQ (slim_f8_e5m2_to_f32 (slim_f32_to_f8_e5m2 (0x3p-17f)), 0x1p-15f);
  EXPECT_EQ (slim_f32_to_f8_e5m2 (-0.0f), 0x80u);

  std::vector<float> values = random_floats (1u << 14, 11);
  for (guint code = 0; code < 0x7b; code++)
    {
      float a = slim_f8_e5m2_to_f32 ((guint8)code);
      float b = slim_f8_e5m2_to_f32 ((guint8)(code + 1));
      float mid = (a + b) / 2; // 4 significant bits: exact
      for (float v : { mid, -mid, std::nextafter (mid, INFINITY), std::nextafter (mid, -INFINITY) })
        values.push_back (v);
    }
  for (guint32 b = 0; b < 0xffffffffu - 65521u; b += 65521u) // every 65521st bit pattern
    values.push_back (float_of (b));
  for (float v : values)
    ASSERT_EQ (slim_f32_to_f8_e5m2 (v), slim_f32_to_f8_e5m2_ref (v)) << "value " << v;
}

// FP4 E2M1: the 16 codes, msModelSlim's nearest-first-index rule (ties to
// the smaller magnitude), saturation, -0.0, fast == reference.
TEST (DType, Fp4E2M1)
{
  const float expected[8] = { 0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f };
  for (guint code = 0; code < 16; code++)
    {
      float v = slim_f4_e2m1_to_f32 ((guint8)code);
      EXPECT_EQ (bits_of (v), bits_of (slim_f4_e2m1_to_f32_ref ((guint8)code))) << code;
      EXPECT_EQ (bits_of (v), bits_of ((code & 8) ? -expected[code & 7] : expected[code & 7]))
          << code;
      EXPECT_EQ (slim_f32_to_f4_e2m1 (v), code) << "round trip of code " << code;
      EXPECT_EQ (slim_f32_to_f4_e2m1_ref (v), code) << "reference round trip " << code;
    }
  // ties go to the smaller magnitude (argmin's first index)
  EXPECT_EQ (slim_f32_to_f4_e2m1 (0.25f), 0u);
  EXPECT_EQ (slim_f32_to_f4_e2m1 (0.75f), 1u);
  EXPECT_EQ (slim_f32_to_f4_e2m1 (2.5f), 4u);
  EXPECT_EQ (slim_f32_to_f4_e2m1 (-3.5f), 8u | 5u);
  EXPECT_EQ (slim_f32_to_f4_e2m1 (5.0f), 6u);
  EXPECT_EQ (slim_f32_to_f4_e2m1 (std::nextafter (5.0f, 6.0f)), 7u);
  // saturation and specials
  EXPECT_EQ (slim_f32_to_f4_e2m1 (100.0f), 7u);
  EXPECT_EQ (slim_f32_to_f4_e2m1 (-INFINITY), 15u);
  EXPECT_EQ (slim_f32_to_f4_e2m1 (-0.0f), 8u);
  EXPECT_EQ (slim_f32_to_f4_e2m1 (NAN), 0u);

  std::vector<float> values = random_floats (1u << 14, 13);
  for (guint code = 0; code < 7; code++)
    {
      float mid = (expected[code] + expected[code + 1]) / 2;
      for (float v : { mid, -mid, std::nextafter (mid, INFINITY), std::nextafter (mid, -INFINITY) })
        values.push_back (v);
    }
  for (guint32 b = 0; b < 0xffffffffu - 65521u; b += 65521u)
    values.push_back (float_of (b));
  for (float v : values)
    ASSERT_EQ (slim_f32_to_f4_e2m1 (v), slim_f32_to_f4_e2m1_ref (v)) << "value " << v;
  // the packed row: element 2i in the low nibble
  const float row[4] = { 1.0f, -6.0f, 0.5f, 3.0f };
  guint8 packed[2] = { 0, 0 };
  info (SLIM_DTYPE_F4X2_E2M1)->from_f32 (row, packed, 4);
  EXPECT_EQ (packed[0], 0xf2u);
  EXPECT_EQ (packed[1], 0x51u);
}

// FP4 E1M2 (Ascend float4_e1m2: 1 exponent bit of bias 1, 2 mantissa
// bits): the 16 codes are k / 4 with the sign bit 0x8, every code round
// trips, ties to the smaller magnitude, saturation at 1.75, -0.0, and the
// fast conversion equals the reference on every midpoint, its neighbours
// and every 65521st float32 bit pattern.
TEST (DType, Fp4E1M2)
{
  for (guint code = 0; code < 16; code++)
    {
      float v = slim_f4_e1m2_to_f32 ((guint8)code);
      float expected = (float)(code & 7) * 0.25f;
      EXPECT_EQ (bits_of (v), bits_of (slim_f4_e1m2_to_f32_ref ((guint8)code))) << code;
      EXPECT_EQ (bits_of (v), bits_of ((code & 8) ? -expected : expected)) << code;
      EXPECT_EQ (slim_f32_to_f4_e1m2 (v), code) << "round trip of code " << code;
      EXPECT_EQ (slim_f32_to_f4_e1m2_ref (v), code) << "reference round trip " << code;
    }
  EXPECT_EQ (slim_f4_e1m2_to_f32 (7), SLIM_F4_E1M2_MAX);
  // the subnormal half (exponent bit 0) and the normal half
  EXPECT_EQ (slim_f4_e1m2_to_f32 (0x3), 0.75f);
  EXPECT_EQ (slim_f4_e1m2_to_f32 (0x4), 1.0f);
  // ties go to the smaller magnitude
  EXPECT_EQ (slim_f32_to_f4_e1m2 (0.125f), 0u);
  EXPECT_EQ (slim_f32_to_f4_e1m2 (std::nextafter (0.125f, 1.0f)), 1u);
  EXPECT_EQ (slim_f32_to_f4_e1m2 (0.875f), 3u);
  EXPECT_EQ (slim_f32_to_f4_e1m2 (-1.625f), 8u | 6u);
  // saturation and specials
  EXPECT_EQ (slim_f32_to_f4_e1m2 (6.0f), 7u);
  EXPECT_EQ (slim_f32_to_f4_e1m2 (-INFINITY), 15u);
  EXPECT_EQ (slim_f32_to_f4_e1m2 (-0.0f), 8u);
  EXPECT_EQ (slim_f32_to_f4_e1m2 (NAN), 0u);

  std::vector<float> values = random_floats (1u << 14, 17);
  for (guint k = 0; k < 7; k++)
    {
      float mid = (float)(2 * k + 1) * 0.125f;
      for (float v : { mid, -mid, std::nextafter (mid, INFINITY), std::nextafter (mid, -INFINITY) })
        values.push_back (v);
    }
  for (guint32 b = 0; b < 0xffffffffu - 65521u; b += 65521u)
    values.push_back (float_of (b));
  for (float v : values)
    ASSERT_EQ (slim_f32_to_f4_e1m2 (v), slim_f32_to_f4_e1m2_ref (v)) << "value " << v;
}

// Every dtype: rows through fast and reference conversions give the same
// bytes and the same floats.
TEST (DType, RowsMatchReferenceForEveryDType)
{
  std::vector<float> values = random_floats (4096, 3);
  for (int k = -300; k <= 300; k++)
    values.push_back (k * 0.5f); // integer ties: x.5
  for (float v : { 2147483648.0f, -2147483904.0f, 9.3e18f, -9.3e18f, 1e30f })
    values.push_back (v);
  if (values.size () % 2 != 0)
    values.push_back (0.0f);
  for (guint d = 0; d < SLIM_N_DTYPES; d++)
    {
      const SlimDTypeInfo *i = info ((SlimDType)d);
      gsize n_bytes = values.size () * i->bits / 8;
      std::vector<guint8> fast (n_bytes, 0), ref (n_bytes, 0);
      i->from_f32 (values.data (), fast.data (), values.size ());
      i->from_f32_ref (values.data (), ref.data (), values.size ());
      ASSERT_EQ (fast, ref) << i->name << ": from_f32 differs from the reference";
      std::vector<float> back_fast (values.size ()), back_ref (values.size ());
      i->to_f32 (fast.data (), back_fast.data (), values.size ());
      i->to_f32_ref (fast.data (), back_ref.data (), values.size ());
      for (gsize k = 0; k < values.size (); k++)
        ASSERT_EQ (bits_of (back_fast[k]), bits_of (back_ref[k]))
            << i->name << ": to_f32 differs at " << k;
    }
}

// Integer rounding and saturation rules (nearest even, clamp, NaN -> 0).
TEST (DType, IntegerRoundingAndSaturation)
{
  const float src[] = { 2.5f, 3.5f, -2.5f, -0.5f, 300.0f, -300.0f, NAN, 126.6f };
  gint8 i8[G_N_ELEMENTS (src)];
  info (SLIM_DTYPE_I8)->from_f32 (src, i8, G_N_ELEMENTS (src));
  const gint8 expected_i8[] = { 2, 4, -2, 0, 127, -128, 0, 127 };
  for (gsize k = 0; k < G_N_ELEMENTS (src); k++)
    EXPECT_EQ (i8[k], expected_i8[k]) << k;
  guint8 u8[G_N_ELEMENTS (src)];
  info (SLIM_DTYPE_U8)->from_f32 (src, u8, G_N_ELEMENTS (src));
  EXPECT_EQ (u8[4], 255);
  EXPECT_EQ (u8[5], 0);
  gint32 i32 = 0;
  float big = 3e9f;
  info (SLIM_DTYPE_I32)->from_f32 (&big, &i32, 1);
  EXPECT_EQ (i32, G_MAXINT32);
  gint64 i64 = 0;
  float huge = -1e30f;
  info (SLIM_DTYPE_I64)->from_f32 (&huge, &i64, 1);
  EXPECT_EQ (i64, G_MININT64);
  guint8 flags[3];
  const float truth[] = { 0.0f, -0.0f, 0.25f };
  info (SLIM_DTYPE_BOOL)->from_f32 (truth, flags, 3);
  EXPECT_EQ (flags[0], 0);
  EXPECT_EQ (flags[1], 0);
  EXPECT_EQ (flags[2], 1);
}

// Packed 4-bit: element 2i in the low nibble, two's complement for i4x2.
TEST (DType, PackedNibbleLayout)
{
  const float src[] = { 1.0f, -2.0f, 7.0f, -8.0f, 20.0f, -20.0f };
  guint8 packed[3] = { 0xff, 0xff, 0xff };
  info (SLIM_DTYPE_I4X2)->from_f32 (src, packed, 6);
  EXPECT_EQ (packed[0], (guint8)((0xE << 4) | 0x1)); // -2 = 0xE high, 1 low
  EXPECT_EQ (packed[1], (guint8)((0x8 << 4) | 0x7)); // -8 high, 7 low
  EXPECT_EQ (packed[2], (guint8)((0x8 << 4) | 0x7)); // saturated to 7 / -8
  float back[6];
  info (SLIM_DTYPE_I4X2)->to_f32 (packed, back, 6);
  EXPECT_EQ (back[0], 1.0f);
  EXPECT_EQ (back[1], -2.0f);
  EXPECT_EQ (back[4], 7.0f);
  EXPECT_EQ (back[5], -8.0f);
  const float usrc[] = { 3.0f, 15.0f, -1.0f, 16.0f };
  guint8 upacked[2] = { 0, 0 };
  info (SLIM_DTYPE_U4X2)->from_f32 (usrc, upacked, 4);
  EXPECT_EQ (upacked[0], (guint8)((15 << 4) | 3));
  EXPECT_EQ (upacked[1], (guint8)(15 << 4)); // -1 -> 0 low, 16 -> 15 high
}

} // namespace
