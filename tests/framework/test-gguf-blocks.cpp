// SPDX-License-Identifier: Apache-2.0
//
// test-gguf-blocks.cpp: ggml block layouts.  Inputs are chosen so every
// value is exact in f16 and the expected codes follow from the formulas
// in slim-gguf-blocks.h by hand; decode must give back the inputs exactly.
#include "slim-test.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "slim-gguf-blocks.h"
#include "slim-gguf-kquants.h"

TEST (GgufBlocks, Q8_0Layout)
{
  float x[32], y[32];
  for (int j = 0; j < 32; j++)
    x[j] = (float)(j - 16) * 0.5f; /* amax 8 at j = 0 */
  guint8 b[SLIM_GGUF_Q8_0_BYTES];
  slim_gguf_q8_0_encode (x, b);
  EXPECT_EQ ((gint8)b[2], -127);   /* x[0] = -amax */
  EXPECT_EQ ((gint8)b[2 + 16], 0); /* x[16] = 0 */
  slim_gguf_q8_0_decode (b, y);
  for (int j = 0; j < 32; j++)
    EXPECT_NEAR (y[j], x[j], 8.0f / 127.0f * 0.51f + 1e-2f) << j;
}

TEST (GgufBlocks, Q4_0NibbleOrder)
{
  float x[32], y[32];
  for (int j = 0; j < 32; j++)
    x[j] = (float)((j % 16) - 8); /* integers in [-8, 7]; max = -8 -> d = 1 */
  guint8 b[SLIM_GGUF_Q4_0_BYTES];
  slim_gguf_q4_0_encode (x, b);
  for (int j = 0; j < 16; j++)
    EXPECT_EQ (b[2 + j], (guint8)(j | (j << 4))) << j;
  slim_gguf_q4_0_decode (b, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], x[j]) << j;
}

TEST (GgufBlocks, Q4_1MinAndNibbles)
{
  float x[32], y[32];
  for (int j = 0; j < 32; j++)
    x[j] = 2.0f + (float)(j < 16 ? j : 31 - j); /* min 2, d = 1 */
  guint8 b[SLIM_GGUF_Q4_1_BYTES];
  slim_gguf_q4_1_encode (x, b);
  for (int j = 0; j < 16; j++)
    EXPECT_EQ (b[4 + j], (guint8)(j | ((15 - j) << 4))) << j;
  slim_gguf_q4_1_decode (b, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], x[j]) << j;
}

// The saver writes a quantizer's own codes: packing codes q with scale s
// decodes to exactly s * q (s exact in f16), the bytes are those encode
// writes for the same values, and codes outside a type's range are refused.
TEST (GgufBlocks, PackFromCodes)
{
  gint8 q8[32], q4[32];
  float x8[32], x4[32], y[32];
  for (int j = 0; j < 32; j++)
    {
      q8[j] = (gint8)(j == 0 ? -127 : (j * 37) % 255 - 127);
      q4[j] = (gint8)(j == 5 ? -8 : (j * 5) % 16 - 8);
      x8[j] = 0.25f * (float)q8[j];
      x4[j] = 0.5f * (float)q4[j];
    }
  guint8 packed[SLIM_GGUF_Q8_0_BYTES], encoded[SLIM_GGUF_Q8_0_BYTES];
  ASSERT_TRUE (slim_gguf_q8_0_pack (q8, 0.25f, packed));
  slim_gguf_q8_0_decode (packed, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], x8[j]) << j;
  /* amax = 127 * 0.25: encode finds the same scale and codes */
  slim_gguf_q8_0_encode (x8, encoded);
  EXPECT_EQ (memcmp (packed, encoded, sizeof packed), 0);

  guint8 p4[SLIM_GGUF_Q4_0_BYTES], e4[SLIM_GGUF_Q4_0_BYTES];
  ASSERT_TRUE (slim_gguf_q4_0_pack (q4, 0.5f, p4));
  slim_gguf_q4_0_decode (p4, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], x4[j]) << j;
  /* the value of largest magnitude is -8 * 0.5: d = 0.5 again */
  slim_gguf_q4_0_encode (x4, e4);
  EXPECT_EQ (memcmp (p4, e4, sizeof p4), 0);

  /* Q4_1: x = scale * (q - offset) = d * (q + 8) + m, m = -scale (8 + offset) */
  guint8 p41[SLIM_GGUF_Q4_1_BYTES];
  ASSERT_TRUE (slim_gguf_q4_1_pack (q4, 0.5f, 3.0f, p41));
  slim_gguf_q4_1_decode (p41, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], 0.5f * ((float)q4[j] - 3.0f)) << j;

  q4[7] = 8;
  EXPECT_FALSE (slim_gguf_q4_0_pack (q4, 0.5f, p4));
  EXPECT_FALSE (slim_gguf_q4_1_pack (q4, 0.5f, 0.0f, p41));
}

// Q4_K: a block built by hand decodes by the layout's formula: d = 0.5,
// dmin = 0.25, sub-block j scale j + 1 and min 2 j + 40 (so j >= 4 has
// top bits in the packed bytes), codes e % 16.
TEST (GgufKQuants, Q4KLayoutByHand)
{
  guint8 block[SLIM_GGUF_Q4_K_BYTES] = { 0 };
  block[0] = 0x00; // f16 0.5 = 0x3800
  block[1] = 0x38;
  block[2] = 0x00; // f16 0.25 = 0x3400
  block[3] = 0x34;
  int sc[8], m[8];
  for (int j = 0; j < 8; j++)
    {
      sc[j] = j + 1 + (j >= 4 ? 48 : 0); // 53..56 for j >= 4: top bits 11
      m[j] = 2 * j + 40;                 // 40..54: top bits 10 or 11
    }
  guint8 *scales = block + 4;
  for (int j = 0; j < 4; j++)
    {
      scales[j] = (guint8)(sc[j] | ((sc[j + 4] >> 4) << 6));
      scales[j + 4] = (guint8)(m[j] | ((m[j + 4] >> 4) << 6));
      scales[j + 8] = (guint8)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++)
      block[16 + 32 * c + l] = (guint8)(((64 * c + l) % 16) | (((64 * c + 32 + l) % 16) << 4));
  float y[256];
  slim_gguf_q4_k_decode (block, y);
  for (int e = 0; e < 256; e++)
    {
      int j = e / 32;
      EXPECT_EQ (y[e], 0.5f * (float)sc[j] * (float)(e % 16) - 0.25f * (float)m[j]) << e;
    }
}

// Q6_K: codes L = (7 e) % 64 at element e, scales 3 - j, d = 0.125.
TEST (GgufKQuants, Q6KLayoutByHand)
{
  guint8 block[SLIM_GGUF_Q6_K_BYTES] = { 0 };
  auto code = [] (int e) { return (7 * e) % 64; };
  for (int e = 0; e < 256; e++)
    {
      int h = e / 128, k = (e % 128) / 32, l = e % 32;
      guint8 &lo = block[64 * h + 32 * (k % 2) + l];
      lo |= (guint8)(k >= 2 ? (code (e) & 15) << 4 : (code (e) & 15));
      block[128 + 32 * h + l] |= (guint8)((code (e) >> 4) << (2 * k));
    }
  for (int j = 0; j < 16; j++)
    block[192 + j] = (guint8)(gint8)(3 - j);
  block[208] = 0x00; // f16 0.125 = 0x3000
  block[209] = 0x30;
  float y[256];
  slim_gguf_q6_k_decode (block, y);
  for (int e = 0; e < 256; e++)
    EXPECT_EQ (y[e], 0.125f * (float)(3 - e / 16) * (float)(code (e) - 32)) << e;
}

// The encoders on Gaussian rows with a spread of ranges (and offsets):
// decoding gives every element back within the stored step of its
// sub-block (half a step of rounding plus the 6-bit / 8-bit rounding of
// the sub-block scale, which moves the grid by at most another half step
// at the ends), and the mean squared error is a small fraction of the
// variance (measured 6.1e-3 for Q4_K, whose offset blocks widen the
// range, and 4.0e-4 for Q6_K; bounds 1.5e-2 and 2e-3).  An all-zero block decodes to zeros.
TEST (GgufKQuants, EncodersRoundTripWithinAStep)
{
  std::mt19937 rng (5);
  std::normal_distribution<float> normal (0.0f, 1.0f);
  double err4 = 0, err6 = 0, var = 0;
  for (int b = 0; b < 64; b++)
    {
      float x[256], y4[256], y6[256];
      float spread = std::ldexp (1.0f, b % 9 - 4), shift = (b % 3 == 0) ? 2.0f * spread : 0.0f;
      for (float &v : x)
        v = normal (rng) * spread + shift;
      guint8 q4[SLIM_GGUF_Q4_K_BYTES], q6[SLIM_GGUF_Q6_K_BYTES];
      slim_gguf_q4_k_encode (x, q4);
      slim_gguf_q6_k_encode (x, q6);
      slim_gguf_q4_k_decode (q4, y4);
      slim_gguf_q6_k_decode (q6, y6);
      for (int j = 0; j < 8; j++)
        {
          float lo = 0, hi = x[32 * j];
          for (int l = 0; l < 32; l++)
            lo = std::min (lo, x[32 * j + l]), hi = std::max (hi, x[32 * j + l]);
          float step = (hi - lo) / 15.0f;
          for (int l = 0; l < 32; l++)
            ASSERT_LE (std::fabs (y4[32 * j + l] - x[32 * j + l]), 1.05f * step)
                << "block " << b << " element " << 32 * j + l;
        }
      for (int j = 0; j < 16; j++)
        {
          float amax = 0;
          for (int l = 0; l < 16; l++)
            amax = std::max (amax, std::fabs (x[16 * j + l]));
          for (int l = 0; l < 16; l++)
            ASSERT_LE (std::fabs (y6[16 * j + l] - x[16 * j + l]), 1.05f * amax / 31.0f)
                << "block " << b << " element " << 16 * j + l;
        }
      for (int e = 0; e < 256; e++)
        {
          err4 += (y4[e] - x[e]) * (y4[e] - x[e]);
          err6 += (y6[e] - x[e]) * (y6[e] - x[e]);
          var += (x[e] - shift) * (x[e] - shift);
        }
    }
  std::printf ("relative MSE: Q4_K %.2e, Q6_K %.2e\n", err4 / var, err6 / var);
  EXPECT_LT (err4 / var, 1.5e-2);
  EXPECT_LT (err6 / var, 2e-3);
  float zeros[256] = { 0 }, y[256];
  guint8 q4[SLIM_GGUF_Q4_K_BYTES], q6[SLIM_GGUF_Q6_K_BYTES];
  slim_gguf_q4_k_encode (zeros, q4);
  slim_gguf_q4_k_decode (q4, y);
  for (float v : y)
    EXPECT_EQ (v, 0.0f);
  slim_gguf_q6_k_encode (zeros, q6);
  slim_gguf_q6_k_decode (q6, y);
  for (float v : y)
    EXPECT_EQ (v, 0.0f);
}
