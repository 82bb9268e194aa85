// SPDX-License-Identifier: Apache-2.0
//
// test-hifloat8.cpp: HiFloat8 (slim-hifloat8.h).  Every one of the 256
// codes decodes to the same value through the direct and the reference
// decoder and encodes back to itself; the values are the format's
// (253 finite, distinct, +-2^15 largest, 2^-22 smallest); a few codes
// worked out by hand from the definition pin the layout; and the direct
// encoder equals the nearest-value search on every midpoint between
// neighbouring values (and one ulp either side), every 65521st float32
// bit pattern and random values.
#include "slim-test.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>

extern "C"
{
#include "slim-hifloat8.h"
}

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

} // namespace

TEST (HiFloat8, EveryCodeDecodesAndRoundTrips)
{
  std::set<float> finite;
  guint n_nan = 0, n_inf = 0;
  for (guint code = 0; code < 256; code++)
    {
      float fast = slim_hif8_to_f32 ((guint8)code), ref = slim_hif8_to_f32_ref ((guint8)code);
      if (std::isnan (ref))
        {
          n_nan++;
          EXPECT_TRUE (std::isnan (fast)) << code;
          EXPECT_EQ (code, SLIM_HIF8_NAN);
        }
      else
        {
          ASSERT_EQ (bits_of (fast), bits_of (ref)) << "code " << code;
          if (std::isinf (fast))
            n_inf++;
          else
            finite.insert (fast);
        }
      EXPECT_EQ (slim_f32_to_hif8 (fast), code) << "round trip of code " << code;
      EXPECT_EQ (slim_f32_to_hif8_ref (fast), code) << "reference round trip of code " << code;
    }
  EXPECT_EQ (n_nan, 1u);
  EXPECT_EQ (n_inf, 2u);
  EXPECT_EQ (finite.size (), 253u); // distinct: one zero, 126 magnitudes each sign
  EXPECT_EQ (*finite.rbegin (), SLIM_HIF8_MAX);
  EXPECT_EQ (*finite.begin (), -SLIM_HIF8_MAX);
  EXPECT_EQ (*finite.upper_bound (0.0f), 0x1p-22f);
}

// Codes worked out from the definition: D prefix, sign-magnitude exponent
// with its implicit leading one, the mantissa in what is left.
TEST (HiFloat8, LayoutByHand)
{
  const struct
  {
    float value;
    guint8 code;
  } cases[] = {
    { 1.0f, 0x08 },      // D 0001, no exponent bits, M 000
    { 1.875f, 0x0f },    // M 111
    { 2.0f, 0x10 },      // D 001, exponent bit 0: +1
    { 0.5f, 0x18 },      // exponent bit 1: -1
    { 4.0f, 0x20 },      // D 01, exponent 00: +(1)0 = 2
    { 8.0f, 0x28 },      // exponent 01: +3
    { 0.25f, 0x30 },     // exponent 10: -2
    { 0.125f, 0x38 },    // exponent 11: -3
    { 16.0f, 0x40 },     // D 10, exponent 000: +4, two mantissa bits
    { 20.0f, 0x41 },     // 16 (1 + 1/4)
    { 128.0f, 0x4c },    // exponent 011: +7
    { 0.0625f, 0x50 },   // exponent 100: -4
    { 256.0f, 0x60 },    // D 11, exponent 0000: +8, one mantissa bit
    { 384.0f, 0x61 },    // 256 (1 + 1/2)
    { 32768.0f, 0x6e },  // exponent 0111: +15, the largest finite value
    { 0x1p-15f, 0x7e },  // exponent 1111: -15
    { 0x3p-16f, 0x7f },  // 2^-15 (1 + 1/2): finite on the negative side
    { 0x1p-16f, 0x07 },  // denormal D 0000: 2^(k - 23)
    { 0x1p-22f, 0x01 },  //
    { -1.0f, 0x88 },     // the sign bit
    { -32768.0f, 0xee }, //
  };
  for (const auto &c : cases)
    {
      EXPECT_EQ (slim_f32_to_hif8 (c.value), c.code) << c.value;
      EXPECT_EQ (slim_hif8_to_f32 (c.code), c.value) << (int)c.code;
    }
  // ties away from zero
  EXPECT_EQ (slim_f32_to_hif8 (1.0625f), 0x09u);
  EXPECT_EQ (slim_f32_to_hif8 (-1.0625f), 0x89u);
  EXPECT_EQ (slim_f32_to_hif8 (18.0f), 0x41u);
  EXPECT_EQ (slim_f32_to_hif8 (std::nextafter (18.0f, 0.0f)), 0x40u);
  // a carry into the next binade, where the mantissa is one bit shorter
  EXPECT_EQ (slim_f32_to_hif8 (15.5f), 0x40u); // 15.5 = 8 (1 + 15.5/16): halfway to 16
  // overflow: from the midpoint 40960 between 2^15 and 1.5 * 2^15 (the
  // infinity code) on, infinity
  EXPECT_EQ (slim_f32_to_hif8 (std::nextafter (40960.0f, 0.0f)), 0x6eu);
  EXPECT_EQ (slim_f32_to_hif8 (40960.0f), SLIM_HIF8_INF);
  EXPECT_EQ (slim_f32_to_hif8 (-1e30f), 0x80u | SLIM_HIF8_INF);
  EXPECT_TRUE (std::isinf (slim_hif8_to_f32 (SLIM_HIF8_INF)));
  // underflow: 2^-23 is the tie between 0 and 2^-22
  EXPECT_EQ (slim_f32_to_hif8 (0x1p-23f), 0x01u);
  EXPECT_EQ (slim_f32_to_hif8 (-0x1p-23f), 0x81u);
  EXPECT_EQ (slim_f32_to_hif8 (std::nextafter (0x1p-23f, 0.0f)), 0x00u);
  EXPECT_EQ (slim_f32_to_hif8 (-0x1p-30f), 0x00u); // no negative zero
  EXPECT_EQ (slim_f32_to_hif8 (-0.0f), 0x00u);
  EXPECT_EQ (slim_f32_to_hif8 (NAN), SLIM_HIF8_NAN);
  EXPECT_EQ (slim_f32_to_hif8 (-NAN), SLIM_HIF8_NAN);
}

TEST (HiFloat8, EncoderEqualsNearestValueSearch)
{
  std::vector<float> positive;
  for (guint code = 1; code < 0x80; code++)
    if (code != SLIM_HIF8_INF)
      positive.push_back (slim_hif8_to_f32 ((guint8)code));
  positive.push_back (0.0f);
  std::sort (positive.begin (), positive.end ());
  std::vector<float> values;
  for (size_t k = 0; k + 1 < positive.size (); k++)
    {
      // neighbouring values differ by a power of two times at most 1.5:
      // their mean is exact in float32
      float mid = (positive[k] + positive[k + 1]) / 2;
      for (float v : { mid, -mid, std::nextafter (mid, INFINITY), std::nextafter (mid, -INFINITY) })
        values.push_back (v);
    }
  for (guint32 b = 0; b < 0xffffffffu - 65521u; b += 65521u)
    values.push_back (float_of (b));
  std::mt19937 rng (7);
  std::normal_distribution<float> normal (0.0f, 1.0f);
  for (int i = 0; i < 1 << 14; i++)
    values.push_back (std::ldexp (normal (rng), (int)(rng () % 50) - 25));
  for (float v : values)
    ASSERT_EQ (slim_f32_to_hif8 (v), slim_f32_to_hif8_ref (v)) << "value " << v;
}
