// SPDX-License-Identifier: Apache-2.0
//
// test-admm.cpp: float_sparse numerics (slim-admm): the statistics, ADMM
// pruning and precision protection against their plain float64 _ref twins,
// the sparsity msModelSlim's topk gives (one budget per matrix), the
// float16 mantissa quantization on hand-worked values and exhaustively
// against the frexp/ldexp twin, and bad inputs.  There is no oracle case
// for float_sparse in ../shared/oracle (its README lists none), so the
// expected values here are worked from msModelSlim's admm.py by hand.
//
// Tolerances (measured on this machine, OpenBLAS one thread):
// - statistics: float32 ssyrk vs float64 sums of at most 300 products of
//   N(0, 1)-ish values: relative 1e-5 of the largest entry (measured 2e-7);
// - ADMM: 20 iterations of a float32 linear update against float64; the
//   masks may differ only where two |Wn + Λ| are within rounding of each
//   other: at most 0.5% of the positions (measured 0), and the weights agree
//   within 1e-4 relative Frobenius (measured at most 3e-6);
// - precision protection: the same operations in the same order, so the
//   fast and reference paths are required to be bit-identical.
#include "slim-test.h"

extern "C"
{
#include "slim-admm.h"
#include "slim-dtype.h"
#include "slim-error.h"
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace
{

// Calibration rows with correlated channels (a few shared factors plus
// noise and two outlier channels), as linear inputs look.
std::vector<float>
make_inputs (int64_t n_rows, int64_t n_in, unsigned seed)
{
  std::mt19937 rng (seed);
  std::normal_distribution<float> g (0.0f, 1.0f);
  std::vector<float> mix ((size_t)(4 * n_in));
  for (float &m : mix)
    m = g (rng);
  std::vector<float> x ((size_t)(n_rows * n_in));
  for (int64_t r = 0; r < n_rows; r++)
    {
      float f[4] = { g (rng), g (rng), g (rng), g (rng) };
      for (int64_t j = 0; j < n_in; j++)
        {
          float v = 0.3f * g (rng);
          for (int q = 0; q < 4; q++)
            v += f[q] * mix[(size_t)(q * n_in + j)];
          if (j == 3)
            v *= 8.0f;
          if (j == 5)
            v += 4.0f;
          x[(size_t)(r * n_in + j)] = v;
        }
    }
  return x;
}

std::vector<float>
make_weight (int64_t n_out, int64_t n_in, unsigned seed, float scale = 0.05f)
{
  std::mt19937 rng (seed);
  std::normal_distribution<float> g (0.0f, scale);
  std::vector<float> w ((size_t)(n_out * n_in));
  for (float &v : w)
    v = g (rng);
  return w;
}

struct Stats
{
  SlimAdmmStats s{};
  std::vector<double> h_ref, scaler_ref;
  int64_t n_ref = 0;
  ~Stats ()
  {
    slim_admm_stats_clear (&s);
  }
};

// Adds x in batches of `rows` rows to both the fast and the ref statistics.
void
fill_stats (Stats *st, const std::vector<float> &x, int64_t n_in, int64_t rows)
{
  GError *error = nullptr;
  ASSERT_TRUE (slim_admm_stats_init (&st->s, n_in, &error));
  st->h_ref.assign ((size_t)(n_in * n_in), 0.0);
  st->scaler_ref.assign ((size_t)n_in, 0.0);
  int64_t n_rows = (int64_t)x.size () / n_in;
  for (int64_t r = 0; r < n_rows; r += rows)
    {
      int64_t t = std::min (rows, n_rows - r);
      ASSERT_TRUE (slim_admm_stats_add_batch (&st->s, x.data () + r * n_in, t, &error));
      slim_admm_stats_add_batch_ref (st->h_ref.data (), st->scaler_ref.data (), n_in, &st->n_ref,
                                     x.data () + r * n_in, t);
    }
}

double
output_error (const std::vector<float> &x,
              const std::vector<float> &w,
              const std::vector<float> &w2,
              int64_t n_out,
              int64_t n_in)
{
  int64_t n_rows = (int64_t)x.size () / n_in;
  double err = 0.0;
  for (int64_t r = 0; r < n_rows; r++)
    for (int64_t o = 0; o < n_out; o++)
      {
        double d = 0.0;
        for (int64_t j = 0; j < n_in; j++)
          d += (double)x[(size_t)(r * n_in + j)]
               * ((double)w[(size_t)(o * n_in + j)] - (double)w2[(size_t)(o * n_in + j)]);
        err += d * d;
      }
  return std::sqrt (err);
}

int64_t
count_zeros (const std::vector<float> &w)
{
  return (int64_t)std::count (w.begin (), w.end (), 0.0f);
}

uint16_t
half (float v)
{
  return slim_f32_to_f16 (v);
}

} // namespace

TEST (AdmmStats, MatchesReferenceAndCountsCalls)
{
  const int64_t n_in = 24;
  std::vector<float> x = make_inputs (300, n_in, 1);
  Stats st;
  fill_stats (&st, x, n_in, 128); // calls of 128, 128 and 44 rows
  EXPECT_EQ (st.s.n_samples, 3);  // one sample per call, as msModelSlim counts 3-D inputs
  EXPECT_EQ (st.s.n_rows, 300);
  EXPECT_EQ (st.n_ref, 3);
  double hmax = 0.0;
  for (double v : st.h_ref)
    hmax = std::max (hmax, std::fabs (v));
  for (int64_t i = 0; i < n_in; i++)
    for (int64_t j = i; j < n_in; j++)
      EXPECT_NEAR (st.s.hessian[i * n_in + j], st.h_ref[(size_t)(i * n_in + j)], 1e-5 * hmax)
          << i << "," << j;
  for (int64_t j = 0; j < n_in; j++)
    EXPECT_NEAR (st.s.scaler_row[j], st.scaler_ref[(size_t)j], 1e-5 * st.scaler_ref[(size_t)j]);
  // scaler_row is the mean over calls of the column sums of squares
  double col3 = 0.0;
  for (int64_t r = 0; r < 300; r++)
    col3 += (double)x[(size_t)(r * n_in + 3)] * x[(size_t)(r * n_in + 3)];
  EXPECT_NEAR (st.scaler_ref[3], col3 / 3.0, 1e-9 * col3);
}

TEST (AdmmStats, EmptyCallAddsNothingNonFiniteIsRejected)
{
  SlimAdmmStats s{};
  GError *error = nullptr;
  ASSERT_TRUE (slim_admm_stats_init (&s, 4, &error));
  EXPECT_TRUE (slim_admm_stats_add_batch (&s, nullptr, 0, &error));
  EXPECT_EQ (s.n_samples, 0);
  float x[8] = { 1, 2, 3, 4, 5, NAN, 7, 8 };
  EXPECT_FALSE (slim_admm_stats_add_batch (&s, x, 2, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
  EXPECT_EQ (s.n_samples, 0);
  EXPECT_EQ (s.hessian[0], 0.0f);
  slim_admm_stats_clear (&s);
  EXPECT_FALSE (slim_admm_stats_init (&s, 0, &error));
  g_clear_error (&error);
}

struct PruneCase
{
  double ratio;
};

class AdmmPrune : public ::testing::TestWithParam<double>
{
};

TEST_P (AdmmPrune, MatchesReferenceWithExactSparsity)
{
  const double ratio = GetParam ();
  const int64_t n_out = 40, n_in = 32, n = n_out * n_in;
  std::vector<float> x = make_inputs (256, n_in, 2);
  std::vector<float> w = make_weight (n_out, n_in, 3);
  Stats st;
  fill_stats (&st, x, n_in, 64);
  std::vector<float> out ((size_t)n), out_ref ((size_t)n);
  std::vector<guint8> mask ((size_t)n), mask_ref ((size_t)n);
  GError *error = nullptr;
  ASSERT_TRUE (
      slim_admm_prune (&st.s, w.data (), n_out, n_in, ratio, out.data (), mask.data (), &error))
      << error->message;
  ASSERT_TRUE (slim_admm_prune_ref (st.h_ref.data (), st.n_ref, w.data (), n_out, n_in, ratio,
                                    out_ref.data (), mask_ref.data (), &error))
      << error->message;

  // msModelSlim's budget: int (numel * ratio) zeros in the whole matrix
  const int64_t k = slim_admm_n_pruned (n, ratio);
  EXPECT_EQ (k, (int64_t)(n * ratio));
  EXPECT_EQ (count_zeros (out), k);
  EXPECT_EQ (count_zeros (out_ref), k);
  EXPECT_EQ ((int64_t)std::count (mask.begin (), mask.end (), 0), k);
  for (int64_t e = 0; e < n; e++)
    if (!mask[(size_t)e])
      {
        EXPECT_EQ (out[(size_t)e], 0.0f);
      }

  int64_t mask_diff = 0;
  double diff = 0.0, ref = 0.0;
  for (int64_t e = 0; e < n; e++)
    {
      mask_diff += mask[(size_t)e] != mask_ref[(size_t)e];
      diff += std::pow ((double)out[(size_t)e] - out_ref[(size_t)e], 2);
      ref += std::pow ((double)out_ref[(size_t)e], 2);
    }
  RecordProperty ("mask_diff", std::to_string (mask_diff));
  RecordProperty ("rel_diff", std::to_string (ref > 0.0 ? std::sqrt (diff / ref) : 0.0));
  EXPECT_LE (mask_diff, n / 200);
  if (ref > 0.0)
    {
      EXPECT_LE (std::sqrt (diff / ref), 1e-4);
    }
}

INSTANTIATE_TEST_SUITE_P (Ratios, AdmmPrune, ::testing::Values (0.0, 0.1, 0.3, 0.5, 0.9, 1.0));

// The budget is per matrix, not per row: a row of tiny weights loses all
// of them before the others lose any.
TEST (AdmmPruneShape, BudgetIsPerMatrix)
{
  const int64_t n_out = 16, n_in = 32, n = n_out * n_in;
  std::vector<float> x = make_inputs (128, n_in, 4);
  std::vector<float> w = make_weight (n_out, n_in, 5);
  for (int64_t j = 0; j < n_in; j++)
    w[(size_t)(2 * n_in + j)] *= 1e-4f;
  Stats st;
  fill_stats (&st, x, n_in, 128);
  std::vector<float> out ((size_t)n);
  GError *error = nullptr;
  ASSERT_TRUE (slim_admm_prune (&st.s, w.data (), n_out, n_in, 0.1, out.data (), nullptr, &error));
  int64_t row2 = 0;
  for (int64_t j = 0; j < n_in; j++)
    row2 += out[(size_t)(2 * n_in + j)] == 0.0f;
  EXPECT_EQ (row2, n_in); // the whole row, 32 of the 51 zeros
  EXPECT_EQ (count_zeros (out), slim_admm_n_pruned (n, 0.1));
}

// ADMM uses the Hessian: on correlated inputs its output error is well
// below magnitude pruning's at the same sparsity (measured ratio 0.09 at
// 30%; required < 0.5).
TEST (AdmmPruneShape, BeatsMagnitudePruning)
{
  const int64_t n_out = 48, n_in = 32, n = n_out * n_in;
  std::vector<float> x = make_inputs (512, n_in, 6);
  std::vector<float> w = make_weight (n_out, n_in, 7);
  Stats st;
  fill_stats (&st, x, n_in, 128);
  std::vector<float> out ((size_t)n);
  GError *error = nullptr;
  ASSERT_TRUE (slim_admm_prune (&st.s, w.data (), n_out, n_in, 0.3, out.data (), nullptr, &error));
  std::vector<float> mag = w, sorted (w.size ());
  for (size_t e = 0; e < w.size (); e++)
    sorted[e] = std::fabs (w[e]);
  std::sort (sorted.begin (), sorted.end ());
  float t = sorted[(size_t)slim_admm_n_pruned (n, 0.3) - 1];
  for (float &v : mag)
    if (std::fabs (v) <= t)
      v = 0.0f;
  double e_admm = output_error (x, w, out, n_out, n_in);
  double e_mag = output_error (x, w, mag, n_out, n_in);
  RecordProperty ("admm_over_magnitude", std::to_string (e_admm / e_mag));
  EXPECT_LT (e_admm, 0.5 * e_mag) << e_admm << " vs " << e_mag;
}

// msModelSlim's docs ask for >= 2048 calibration tokens "else the matrix
// inversion fails"; the matrix inverted is D⁻¹HD⁻¹ + (1 + rho0) I, so even
// one token (a rank-1 H) and a dead input channel give finite weights.
TEST (AdmmPruneShape, FewTokensAndDeadChannelsStayFinite)
{
  const int64_t n_out = 8, n_in = 16, n = n_out * n_in;
  std::vector<float> x = make_inputs (1, n_in, 8);
  x[4] = 0.0f; // a channel that never fires
  std::vector<float> w = make_weight (n_out, n_in, 9);
  Stats st;
  fill_stats (&st, x, n_in, 1);
  std::vector<float> out ((size_t)n), prot ((size_t)n);
  GError *error = nullptr;
  ASSERT_TRUE (slim_admm_prune (&st.s, w.data (), n_out, n_in, 0.5, out.data (), nullptr, &error))
      << error->message;
  ASSERT_TRUE (slim_admm_protect (out.data (), st.s.scaler_row, n_out, n_in, SLIM_DTYPE_F32,
                                  prot.data (), nullptr, &error));
  for (float v : prot)
    EXPECT_TRUE (std::isfinite (v));
  EXPECT_GE (count_zeros (prot), slim_admm_n_pruned (n, 0.5));
}

TEST (AdmmPruneErrors, BadInputsAreClearErrors)
{
  const int64_t n_out = 4, n_in = 8;
  std::vector<float> w = make_weight (n_out, n_in, 10), out (w.size ());
  GError *error = nullptr;
  SlimAdmmStats s{};
  ASSERT_TRUE (slim_admm_stats_init (&s, n_in, &error));

  // no sample: the linear was never reached
  EXPECT_FALSE (slim_admm_prune (&s, w.data (), n_out, n_in, 0.3, out.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED));
  EXPECT_NE (std::string (error->message).find ("no calibration activation"), std::string::npos);
  g_clear_error (&error);

  // activations whose xᵀx overflows float32: an error, not NaN weights
  std::vector<float> x ((size_t)n_in, 1e20f);
  ASSERT_TRUE (slim_admm_stats_add_batch (&s, x.data (), 1, &error));
  EXPECT_FALSE (slim_admm_prune (&s, w.data (), n_out, n_in, 0.3, out.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
  slim_admm_stats_clear (&s);

  ASSERT_TRUE (slim_admm_stats_init (&s, n_in, &error));
  std::vector<float> x1 = make_inputs (4, n_in, 11);
  ASSERT_TRUE (slim_admm_stats_add_batch (&s, x1.data (), 4, &error));
  // ratio outside 0..1
  EXPECT_FALSE (slim_admm_prune (&s, w.data (), n_out, n_in, 1.5, out.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  g_clear_error (&error);
  // a weight of another width
  EXPECT_FALSE (slim_admm_prune (&s, w.data (), 8, 4, 0.3, out.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
  // a non-finite weight
  w[3] = INFINITY;
  EXPECT_FALSE (slim_admm_prune (&s, w.data (), n_out, n_in, 0.3, out.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
  slim_admm_stats_clear (&s);
}

// quantize_clip / quantize_l2 with KEEP_BITS 2, worked by hand from admm.py:
// |h| = m 2^e, m in [1, 2); round (m * 4) / 4 half to even for e >= -8,
// 1 or 2 (m > 1.5) for e in -14..-9, 0 for subnormals unless kept.
TEST (AdmmQuantizeHalf, HandWorkedValues)
{
  struct Case
  {
    float in;
    bool keep;
    float out;
  };
  const Case cases[] = {
    { 1.7f, false, 1.75f },                                    // 6.8 -> 7
    { 2.3f, false, 2.5f },                                     // 1.15 * 4 = 4.6 -> 5
    { -1.7f, false, -1.75f },                                  // the sign is kept
    { 1.625f, false, 1.5f },                                   // 6.5 -> 6 (half to even)
    { 1.875f, false, 2.0f },                                   // 7.5 -> 8: carry into the exponent
    { 1.7f, true, 1.7f },                                      // kept: its half value
    { 0.0f, false, 0.0f },                                     // zero stays zero
    { std::ldexp (1.6f, -10), false, std::ldexp (2.0f, -10) }, // low band, > 1.5
    { std::ldexp (1.5f, -10), false, std::ldexp (1.0f, -10) }, // low band, not > 1.5
    { std::ldexp (1.6f, -10), true, std::ldexp (2.0f, -10) },  // quantized even when kept
    { std::ldexp (1.3f, -8), false, std::ldexp (1.25f, -8) },  // -8: normal rounding
    { std::ldexp (1.0f, -20), false, 0.0f },                   // subnormal -> 0
    { std::ldexp (1.0f, -20), true, std::ldexp (1.0f, -20) },  // subnormal kept
  };
  for (const Case &c : cases)
    {
      uint16_t q = slim_admm_quantize_half (half (c.in), c.keep, SLIM_ADMM_KEEP_BITS);
      EXPECT_EQ (slim_f16_to_f32 (q), slim_f16_to_f32 (half (c.out))) << c.in << " keep " << c.keep;
    }
  // torch: zeros come out +0 (sign (±0) = 0); a dropped negative subnormal is -0
  EXPECT_EQ (slim_admm_quantize_half (0x8000, false, 2), 0x0000);
  EXPECT_EQ (slim_admm_quantize_half (0x8001, false, 2), 0x8000);
  // 65504 rounds to 2^16: float16 infinity (callers turn that into an error)
  EXPECT_EQ (slim_admm_quantize_half (half (65504.0f), false, 2), 0x7c00);
}

TEST (AdmmQuantizeHalf, EveryHalfMatchesTheReference)
{
  for (guint bits : { 1u, 2u, 3u, 9u, 10u })
    for (int keep = 0; keep < 2; keep++)
      for (uint32_t h = 0; h < 0x10000; h++)
        {
          if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0)
            continue; // NaN: passed through by both, compared as bits elsewhere
          ASSERT_EQ (slim_admm_quantize_half ((uint16_t)h, keep, bits),
                     slim_admm_quantize_half_ref ((uint16_t)h, keep, bits))
              << std::hex << h << " keep " << keep << " bits " << std::dec << bits;
        }
}

class AdmmProtect : public ::testing::TestWithParam<SlimDType>
{
};

TEST_P (AdmmProtect, MatchesReferenceAndKeepsTheTopTwoPercent)
{
  const SlimDType dtype = GetParam ();
  const int64_t n_out = 50, n_in = 40, n = n_out * n_in;
  std::vector<float> w = make_weight (n_out, n_in, 12);
  for (int64_t e = 0; e < n; e += 7)
    w[(size_t)e] = 0.0f; // pruned positions
  std::vector<float> scaler ((size_t)n_in);
  for (int64_t j = 0; j < n_in; j++)
    scaler[(size_t)j] = 0.5f + (float)j;
  scaler[0] = 0.0f; // a column no input reaches is never kept
  std::vector<float> out ((size_t)n), out_ref ((size_t)n);
  std::vector<guint8> keep ((size_t)n), keep_ref ((size_t)n);
  GError *error = nullptr;
  ASSERT_TRUE (slim_admm_protect (w.data (), scaler.data (), n_out, n_in, dtype, out.data (),
                                  keep.data (), &error));
  ASSERT_TRUE (slim_admm_protect_ref (w.data (), scaler.data (), n_out, n_in, dtype,
                                      out_ref.data (), keep_ref.data (), &error));
  EXPECT_EQ (0, std::memcmp (out.data (), out_ref.data (), out.size () * sizeof (float)));
  EXPECT_EQ (keep, keep_ref);

  // int (2000 * 0.02 - 1) = 39: the 40 largest metrics are kept (no ties here)
  EXPECT_EQ ((int64_t)std::count (keep.begin (), keep.end (), 1), 40);
  for (int64_t e = 0; e < n; e++)
    {
      float wd = w[(size_t)e];
      if (dtype == SLIM_DTYPE_F16)
        wd = slim_f16_to_f32 (slim_f32_to_f16 (wd));
      else if (dtype == SLIM_DTYPE_BF16)
        wd = slim_bf16_to_f32 (slim_f32_to_bf16 (wd));
      uint16_t h = half (wd);
      uint16_t q = slim_admm_quantize_half (h, keep[(size_t)e], 2);
      float expect = slim_f16_to_f32 (q);
      if (dtype == SLIM_DTYPE_BF16)
        expect = slim_bf16_to_f32 (slim_f32_to_bf16 (expect));
      EXPECT_EQ (out[(size_t)e], expect) << e;
      if (w[(size_t)e] == 0.0f)
        {
          EXPECT_EQ (out[(size_t)e], 0.0f);
        }
      if (e % n_in == 0)
        {
          EXPECT_FALSE (keep[(size_t)e]) << "column 0 has scaler 0";
        }
      // exact in the model dtype: the saver writes it without rounding
      if (dtype == SLIM_DTYPE_F16)
        {
          EXPECT_EQ (slim_f16_to_f32 (slim_f32_to_f16 (out[(size_t)e])), out[(size_t)e]);
        }
      if (dtype == SLIM_DTYPE_BF16)
        {
          EXPECT_EQ (slim_bf16_to_f32 (slim_f32_to_bf16 (out[(size_t)e])), out[(size_t)e]);
        }
    }
}

INSTANTIATE_TEST_SUITE_P (Dtypes,
                          AdmmProtect,
                          ::testing::Values (SLIM_DTYPE_F32, SLIM_DTYPE_F16, SLIM_DTYPE_BF16));

TEST (AdmmProtectErrors, OverflowAndDtype)
{
  float w[4] = { 0.1f, 70000.0f, 0.2f, 0.3f }, scaler[2] = { 1.0f, 1.0f }, out[4];
  GError *error = nullptr;
  EXPECT_FALSE (slim_admm_protect (w, scaler, 2, 2, SLIM_DTYPE_F32, out, nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
  w[1] = 0.4f;
  EXPECT_FALSE (slim_admm_protect (w, scaler, 2, 2, SLIM_DTYPE_I8, out, nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
}
