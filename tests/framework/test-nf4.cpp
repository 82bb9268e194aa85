// SPDX-License-Identifier: Apache-2.0
//
// test-nf4.cpp: the NF4 code book (slim-nf4): exhaustive round trip over
// the 16 codes, the binary-search encoder against its linear-scan twin on
// every midpoint, its float neighbours, a dense grid and random inputs
// (exact: both compare in double, so no tolerance), and per-group absmax
// fake quantization (exact: each output is code * absmax, recomputed here
// from the returned codes and absmax).
#include "slim-test.h"

extern "C"
{
#include "slim-nf4.h"
}

#include <cmath>
#include <random>
#include <vector>

namespace
{

TEST (Nf4, RoundTripEveryCode)
{
  for (unsigned q = 0; q < SLIM_NF4_N_CODES; q++)
    {
      float v = slim_nf4_decode ((guint8)q);
      EXPECT_EQ (slim_nf4_encode (v), q) << "code " << q;
      EXPECT_EQ (slim_nf4_encode_ref (v), q) << "code " << q;
    }
  EXPECT_EQ (slim_nf4_decode (0), -1.0f);
  EXPECT_EQ (slim_nf4_decode (7), 0.0f);
  EXPECT_EQ (slim_nf4_decode (15), 1.0f);
  EXPECT_TRUE (std::isnan (slim_nf4_decode (16)));
}

TEST (Nf4, CodesAscend)
{
  for (unsigned q = 1; q < SLIM_NF4_N_CODES; q++)
    EXPECT_LT (slim_nf4_decode ((guint8)(q - 1)), slim_nf4_decode ((guint8)q));
}

TEST (Nf4, EncodeMatchesRefAtMidpoints)
{
  for (unsigned q = 0; q + 1 < SLIM_NF4_N_CODES; q++)
    {
      float a = slim_nf4_decode ((guint8)q), b = slim_nf4_decode ((guint8)(q + 1));
      float m = 0.5f * (a + b);
      for (float x : { std::nextafter (m, -2.0f), m, std::nextafter (m, 2.0f) })
        EXPECT_EQ (slim_nf4_encode (x), slim_nf4_encode_ref (x)) << "x=" << x;
      // Just below / above the exact midpoint pick the two sides.
      EXPECT_EQ (slim_nf4_encode (std::nextafter (a, 2.0f)), q);
      EXPECT_EQ (slim_nf4_encode (std::nextafter (b, -2.0f)), q + 1);
    }
}

TEST (Nf4, EncodeMatchesRefOnGridAndRandom)
{
  for (int i = -300000; i <= 300000; i++)
    {
      float x = (float)i / 200000.0f; // [-1.5, 1.5]
      ASSERT_EQ (slim_nf4_encode (x), slim_nf4_encode_ref (x)) << "x=" << x;
    }
  std::mt19937 rng (17);
  std::uniform_real_distribution<float> u (-1.0f, 1.0f);
  for (int i = 0; i < 200000; i++)
    {
      float x = u (rng);
      ASSERT_EQ (slim_nf4_encode (x), slim_nf4_encode_ref (x)) << "x=" << x;
    }
  EXPECT_EQ (slim_nf4_encode (-5.0f), 0u);
  EXPECT_EQ (slim_nf4_encode (5.0f), 15u);
  EXPECT_EQ (slim_nf4_encode (NAN), 7u);
  EXPECT_EQ (slim_nf4_encode_ref (NAN), 7u);
}

TEST (Nf4, FakeQuantizePerGroupAbsmax)
{
  const int64_t rows = 3, cols = 128, gs = 64, ng = cols / gs;
  std::vector<float> w (rows * cols); /* [rows, cols] */
  std::mt19937 rng (5);
  std::normal_distribution<float> n (0.0f, 0.05f);
  for (auto &v : w)
    v = n (rng);
  for (int64_t j = 0; j < gs; j++) // row 1, group 0: all zeros
    w[1 * cols + j] = 0.0f;
  std::vector<float> out (w.size ()), amax (rows * ng); /* [rows, cols], [rows, ng] */
  std::vector<guint8> codes (w.size ());                /* [rows, cols] */
  slim_nf4_fake_quantize (w.data (), rows, cols, gs, amax.data (), codes.data (), out.data ());
  for (int64_t r = 0; r < rows; r++)
    for (int64_t g = 0; g < ng; g++)
      {
        float m = 0.0f;
        for (int64_t j = 0; j < gs; j++)
          m = std::fmax (m, std::fabs (w[r * cols + g * gs + j]));
        EXPECT_EQ (amax[r * ng + g], m);
        for (int64_t j = 0; j < gs; j++)
          {
            int64_t i = r * cols + g * gs + j;
            float inv = m > 0.0f ? 1.0f / m : 0.0f;
            EXPECT_EQ (codes[i], slim_nf4_encode_ref (w[i] * inv));
            EXPECT_EQ (out[i], slim_nf4_decode (codes[i]) * m);
          }
      }
  for (int64_t j = 0; j < gs; j++)
    EXPECT_EQ (out[1 * cols + j], 0.0f);
  // The group's absmax element is reproduced exactly (code +-1).
  // In-place works and gives the same result.
  std::vector<float> inplace (w);
  slim_nf4_fake_quantize (inplace.data (), rows, cols, gs, nullptr, nullptr, inplace.data ());
  EXPECT_EQ (inplace, out);
}

} // namespace

// Packing: byte i = code[2i] << 4 | code[2i + 1] (bitsandbytes'
// kQuantizeBlockwise and msModelSlim's nf4_quantize), and unpack inverts it
// for every pair of codes.
TEST (Nf4, PackHighNibbleFirstAndRoundTrips)
{
  std::vector<guint8> codes (2 * 256), packed (256), back (2 * 256);
  for (int i = 0; i < 256; i++)
    {
      codes[2 * i] = (guint8)(i >> 4);
      codes[2 * i + 1] = (guint8)(i & 15);
    }
  slim_nf4_pack (codes.data (), (gint64)codes.size (), packed.data ());
  for (int i = 0; i < 256; i++)
    EXPECT_EQ (packed[i], i) << "pair " << i;
  slim_nf4_unpack (packed.data (), (gint64)codes.size (), back.data ());
  EXPECT_EQ (back, codes);
  const guint8 two[2] = { 15, 0 };
  guint8 one = 0;
  slim_nf4_pack (two, 2, &one);
  EXPECT_EQ (one, 0xf0);
}
