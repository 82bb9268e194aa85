// SPDX-License-Identifier: Apache-2.0
//
// test-mx-methods.cpp: msModelSlim's MX variants beyond minmax:
// two-level MXFP4 (slim-mx-dual-scale.h: dualscale) and the ceil_x,
// fouroversix and mse_round weight quantizers (slim-mx-weight-methods.h).
// The oracle has no cases for them, so the expected values are computed
// by hand from msModelSlim's definitions (the comments give the steps) or
// are properties those definitions imply; the fast functions are compared
// with their _ref twins bit for bit (both are float32 in the same order,
// so no tolerance applies).
#include <gtest/gtest.h>

extern "C"
{
#include "slim-mx.h"
#include "slim-mx-dual-scale.h"
#include "slim-mx-weight-methods.h"
}

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace
{

std::vector<float>
random_rows (int64_t n, unsigned seed, float spread = 1.0f)
{
  std::mt19937 gen (seed);
  std::normal_distribution<float> dist (0.0f, spread);
  std::vector<float> x ((size_t)n);
  for (auto &v : x)
    v = dist (gen);
  // a few outliers, so blocks of different magnitudes occur
  for (size_t i = 0; i < x.size (); i += 37)
    x[i] *= 9.0f;
  return x;
}

bool
same_bits (const std::vector<float> &a, const std::vector<float> &b)
{
  return a.size () == b.size () && std::memcmp (a.data (), b.data (), a.size () * 4) == 0;
}

// Sum of squared errors of one block dequantized with shared exponent se.
float
block_sse (SlimMxFormat f, const float *x, int n, int se)
{
  float s = 0.0f;
  for (int i = 0; i < n; i++)
    {
      float d = x[i] - slim_mx_quantize_element (f, x[i], se) * std::ldexp (1.0f, se);
      s += d * d;
    }
  return s;
}

} // namespace

// ---- dual scale ------------------------------------------------------------

TEST (MxDualScale, HandComputedBlock)
{
  // one row, two dual blocks of 32: block 0 has amax 3 -> dual scale 0.5,
  // x' = 2x with max 6 -> inner se = floor (log2 (6 / 0.875 + 9.6e-7)) - 2 = 0,
  // so the elements are E2M1 of 2x: 6, 3, 1.5, -0.5, 0.4 -> 0.5 (floor (0.8 +
  // 0.5) / 2); dequantized (element * 1) * 0.5.  Block 1 is all zero: dual
  // scale 0, dequantized 0 (msModelSlim: 0 / 0).
  std::vector<float> x (64, 0.0f);
  const float in[] = { 3.0f, 1.5f, 0.75f, -0.25f, 0.2f };
  std::memcpy (x.data (), in, sizeof in);
  std::vector<float> e (64), ds (2), deq (64);
  std::vector<gint16> se (2);
  slim_mx_dual_quantize_rows (x.data (), 1, 64, 32, e.data (), se.data (), ds.data (), deq.data ());
  EXPECT_EQ (ds[0], 0.5f);
  EXPECT_EQ (ds[1], 0.0f);
  EXPECT_EQ (se[0], 0);
  const float want_e[] = { 6.0f, 3.0f, 1.5f, -0.5f, 0.5f };
  const float want_d[] = { 3.0f, 1.5f, 0.75f, -0.25f, 0.25f };
  for (int i = 0; i < 5; i++)
    {
      EXPECT_EQ (e[i], want_e[i]) << i;
      EXPECT_EQ (deq[i], want_d[i]) << i;
    }
  for (int i = 32; i < 64; i++)
    EXPECT_EQ (deq[i], 0.0f) << i;
}

TEST (MxDualScale, ScalesAreBlockMaxOverSix)
{
  // n_cols 600 with D 512: two dual blocks, the second 88 wide (padded)
  const int64_t rows = 3, cols = 600, d = 512;
  std::vector<float> x = random_rows (rows * cols, 11);
  std::vector<float> ds (rows * 2), scaled (rows * cols);
  slim_mx_dual_scale_rows (x.data (), rows, cols, d, ds.data (), scaled.data ());
  for (int64_t r = 0; r < rows; r++)
    for (int64_t b = 0; b < 2; b++)
      {
        float amax = 0.0f;
        for (int64_t c = b * d; c < std::min (cols, (b + 1) * d); c++)
          amax = std::max (amax, std::fabs (x[r * cols + c]));
        EXPECT_EQ (ds[r * 2 + b], amax / 6.0f);
        for (int64_t c = b * d; c < std::min (cols, (b + 1) * d); c++)
          EXPECT_EQ (scaled[r * cols + c], x[r * cols + c] / ds[r * 2 + b]);
      }
}

TEST (MxDualScale, FakeQuantMatchesReference)
{
  for (int64_t cols : { 64, 100, 172, 600, 1024 })
    for (int64_t d : { 32, 64, 512 })
      {
        SCOPED_TRACE (testing::Message () << "cols " << cols << " D " << d);
        const int64_t rows = 4;
        std::vector<float> x = random_rows (rows * cols, (unsigned)(cols * 7 + d));
        std::vector<float> a (x.size ()), b (x.size ());
        slim_mx_dual_fake_quantize_rows (x.data (), rows, cols, d, a.data ());
        slim_mx_dual_fake_quantize_rows_ref (x.data (), rows, cols, d, b.data ());
        EXPECT_TRUE (same_bits (a, b));
        // in place gives the same
        std::vector<float> c = x;
        slim_mx_dual_fake_quantize_rows (c.data (), rows, cols, d, c.data ());
        EXPECT_TRUE (same_bits (a, c));
        // the weight path dequantizes to the same values as the act path
        std::vector<float> e (x.size ()), deq (x.size ());
        std::vector<float> ds ((size_t)(rows * slim_mx_dual_n_blocks (cols, d)));
        std::vector<gint16> se ((size_t)(rows * slim_mx_n_blocks (cols)));
        slim_mx_dual_quantize_rows (x.data (), rows, cols, d, e.data (), se.data (), ds.data (),
                                    deq.data ());
        EXPECT_TRUE (same_bits (a, deq));
      }
}

TEST (MxDualScale, DualBlockMaximumIsKept)
{
  // x / (amax / 6) of the maximum element is 6 within a rounding of the
  // division, which E2M1 rounds to 6; dequantized 6 * (amax / 6), within
  // 2 ulp of amax (two float32 roundings).
  const int64_t rows = 8, cols = 512;
  std::vector<float> x = random_rows (rows * cols, 5);
  std::vector<float> out (x.size ());
  slim_mx_dual_fake_quantize_rows (x.data (), rows, cols, 512, out.data ());
  for (int64_t r = 0; r < rows; r++)
    {
      float amax = 0.0f, got = 0.0f;
      for (int64_t c = 0; c < cols; c++)
        {
          amax = std::max (amax, std::fabs (x[r * cols + c]));
          got = std::max (got, std::fabs (out[r * cols + c]));
        }
      EXPECT_NEAR (got, amax, 2.0f * amax * 0x1p-23f) << r;
    }
}

// ---- ceil_x ----------------------------------------------------------------

TEST (MxCeilX, HandComputedExponents)
{
  // se = ceil (log2 (amax / c + 9.6e-7))
  EXPECT_EQ (slim_mx_ceil_x_shared_exp (1.8f, 7.25f), -2);  // log2 (0.2483) = -2.01
  EXPECT_EQ (slim_mx_ceil_x_shared_exp (1.0f, 7.25f), -2);  // log2 (0.1379) = -2.86
  EXPECT_EQ (slim_mx_ceil_x_shared_exp (1.0f, 12.0f), -3);  // log2 (0.0833) = -3.58
  EXPECT_EQ (slim_mx_ceil_x_shared_exp (7.25f, 7.25f), 1);  // log2 (1 + 9.6e-7) > 0
  EXPECT_EQ (slim_mx_ceil_x_shared_exp (0.0f, 7.25f), -19); // log2 (9.6e-7) = -19.99
  // 1.8 in a block of se -2: 7.2 saturates to 6 -> 1.5 (minmax's se -1 gives 2)
  EXPECT_EQ (slim_mx_quantize_element (SLIM_MX_FP4_E2M1, 1.8f, -2), 6.0f);
  EXPECT_EQ (slim_mx_shared_exp (SLIM_MX_FP4_E2M1, 1.8f), -1);
}

TEST (MxCeilX, BlockMaxWithinDivisorAndMatchesReference)
{
  const int64_t rows = 5, cols = 172; // a partial last block
  std::vector<float> x = random_rows (rows * cols, 3, 0.05f);
  for (float c : { 6.0f, 7.25f, 12.0f })
    {
      std::vector<float> e (x.size ()), er (x.size ());
      std::vector<gint16> se (rows * 6), ser (rows * 6);
      slim_mx_quantize_rows_ceil_x (x.data (), rows, cols, c, e.data (), se.data ());
      slim_mx_quantize_rows_ceil_x_ref (x.data (), rows, cols, c, er.data (), ser.data ());
      EXPECT_TRUE (same_bits (e, er)) << c;
      EXPECT_EQ (se, ser) << c;
      for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < 6; b++)
          {
            float amax = 0.0f;
            for (int64_t k = b * 32; k < std::min (cols, b * 32 + 32); k++)
              amax = std::max (amax, std::fabs (x[r * cols + k]));
            // amax / 2^se in (c / 2, c] (the 9.6e-7 is negligible here)
            float a = amax / std::ldexp (1.0f, se[r * 6 + b]);
            EXPECT_LE (a, c);
            EXPECT_GT (a, c / 2.0f);
          }
    }
}

// ---- fouroversix -----------------------------------------------------------

TEST (MxFourOverSix, E8m0NearestRounding)
{
  EXPECT_EQ (slim_mx_e8m0_round_nearest (1.0f), 0);
  EXPECT_EQ (slim_mx_e8m0_round_nearest (1.5f), 1);  // log2 0.585
  EXPECT_EQ (slim_mx_e8m0_round_nearest (1.4f), 0);  // log2 0.485
  EXPECT_EQ (slim_mx_e8m0_round_nearest (0.75f), 0); // -0.415: floor -1, frac 0.585
  EXPECT_EQ (slim_mx_e8m0_round_nearest (0.0f), 0);  // s <= 0 -> 1
  EXPECT_EQ (slim_mx_e8m0_round_nearest (-2.0f), 0);
  // ties (fraction 0.5 within 1e-6) go up from an even floor, stay on an odd one
  EXPECT_EQ (slim_mx_e8m0_round_nearest (std::sqrt (2.0f)), 1);         // floor 0
  EXPECT_EQ (slim_mx_e8m0_round_nearest (2.0f * std::sqrt (2.0f)), 1);  // floor 1
  EXPECT_EQ (slim_mx_e8m0_round_nearest (0.5f * std::sqrt (2.0f)), -1); // floor -1
}

TEST (MxFourOverSix, HandComputedBlockPicksScaleToFour)
{
  // block [4, 3, 2, 1, 0...]: scale to 6: s = 4/6, log2 -0.585 -> -1; x / 0.5
  // = 8, 6, 4, 2 -> 6, 6, 4, 2 -> 3, 3, 2, 1 (error 1); scale to 4: s = 1 ->
  // 0, exact.  The block keeps se 0.
  std::vector<float> x (32, 0.0f);
  x[0] = 4.0f, x[1] = 3.0f, x[2] = 2.0f, x[3] = 1.0f;
  std::vector<float> e (32);
  std::vector<gint16> se (1);
  slim_mx_quantize_rows_fouroversix (x.data (), 1, 32, e.data (), se.data ());
  EXPECT_EQ (se[0], 0);
  for (int i = 0; i < 4; i++)
    EXPECT_EQ (e[i], x[i]);
  // a block [6, 0.5, ...] is exact with scale to 6 (s = 1 -> 0), which wins
  // ties and is strictly better here
  x[0] = 6.0f, x[1] = 0.5f, x[2] = x[3] = 0.0f;
  slim_mx_quantize_rows_fouroversix (x.data (), 1, 32, e.data (), se.data ());
  EXPECT_EQ (se[0], 0);
  EXPECT_EQ (e[0], 6.0f);
}

TEST (MxFourOverSix, NeverWorseThanEitherCandidateAndMatchesReference)
{
  const int64_t rows = 6, cols = 256;
  std::vector<float> x = random_rows (rows * cols, 9, 0.02f);
  std::vector<float> e (x.size ()), er (x.size ());
  std::vector<gint16> se (rows * 8), ser (rows * 8);
  slim_mx_quantize_rows_fouroversix (x.data (), rows, cols, e.data (), se.data ());
  slim_mx_quantize_rows_fouroversix_ref (x.data (), rows, cols, er.data (), ser.data ());
  EXPECT_TRUE (same_bits (e, er));
  EXPECT_EQ (se, ser);
  int n_four = 0;
  for (int64_t k = 0; k < rows * 8; k++)
    {
      const float *xb = x.data () + k * 32;
      float amax = 0.0f;
      for (int i = 0; i < 32; i++)
        amax = std::max (amax, std::fabs (xb[i]));
      int a = slim_mx_e8m0_round_nearest (amax / 6.0f),
          b = slim_mx_e8m0_round_nearest (amax / 4.0f);
      float got = block_sse (SLIM_MX_FP4_E2M1, xb, 32, se[k]);
      EXPECT_TRUE (se[k] == a || se[k] == b) << k;
      EXPECT_LE (got, block_sse (SLIM_MX_FP4_E2M1, xb, 32, a)) << k;
      EXPECT_LE (got, block_sse (SLIM_MX_FP4_E2M1, xb, 32, b)) << k;
      n_four += se[k] != a;
    }
  // both candidates occur on Gaussian blocks (the test can see a wrong pick)
  EXPECT_GT (n_four, 0);
  EXPECT_LT (n_four, rows * 8);
}

// ---- mse_round -------------------------------------------------------------

TEST (MxMseRound, HandComputedBlocks)
{
  std::vector<float> x (32, 0.0f), e (32);
  std::vector<gint16> se (1);
  // amax 500: log2 8.97, floor -> se 0 (500 saturates at 448, error 52),
  // ceil -> se 1 (250 -> 256, so 512, error 12): ceil wins
  x[0] = 500.0f, x[1] = 1.0f;
  slim_mx_quantize_rows_mse_round (x.data (), 1, 32, e.data (), se.data ());
  EXPECT_EQ (se[0], 1);
  EXPECT_EQ (e[0], 256.0f);
  EXPECT_EQ (e[1], 0.5f);
  // amax 300 alone: floor (se 0) 300 -> 288, ceil (se 1) 150 -> 144 = 288:
  // equal errors keep floor
  x[0] = 300.0f, x[1] = 0.0f;
  slim_mx_quantize_rows_mse_round (x.data (), 1, 32, e.data (), se.data ());
  EXPECT_EQ (se[0], 0);
  EXPECT_EQ (e[0], 288.0f);
  // a power of two: ceil == floor
  x[0] = 256.0f;
  slim_mx_quantize_rows_mse_round (x.data (), 1, 32, e.data (), se.data ());
  EXPECT_EQ (se[0], 0);
}

TEST (MxMseRound, NeverWorseThanMinmaxAndMatchesReference)
{
  const int64_t rows = 6, cols = 172;
  std::vector<float> x = random_rows (rows * cols, 13, 0.1f);
  std::vector<float> e (x.size ()), er (x.size ()), em (x.size ());
  std::vector<gint16> se (rows * 6), ser (rows * 6), sem (rows * 6);
  slim_mx_quantize_rows_mse_round (x.data (), rows, cols, e.data (), se.data ());
  slim_mx_quantize_rows_mse_round_ref (x.data (), rows, cols, er.data (), ser.data ());
  slim_mx_quantize_rows (SLIM_MX_FP8_E4M3, x.data (), rows, cols, em.data (), sem.data ());
  EXPECT_TRUE (same_bits (e, er));
  EXPECT_EQ (se, ser);
  int n_up = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t b = 0; b < 6; b++)
      {
        const float *xb = x.data () + r * cols + b * 32;
        int n = (int)std::min<int64_t> (32, cols - b * 32);
        int k = (int)(r * 6 + b);
        EXPECT_TRUE (se[k] == sem[k] || se[k] == sem[k] + 1) << k;
        EXPECT_LE (block_sse (SLIM_MX_FP8_E4M3, xb, n, se[k]),
                   block_sse (SLIM_MX_FP8_E4M3, xb, n, sem[k]))
            << k;
        n_up += se[k] != sem[k];
      }
  EXPECT_GT (n_up, 0); // ceil is picked somewhere (the test can see it)
}
