// SPDX-License-Identifier: Apache-2.0
//
// test-ssz.cpp: SSZ numerics (slim-ssz) against msModelSlim's oracle
// vectors (../shared/oracle, cases ssz_*: WeightPerChannelSsz (sym) or
// ssz_calculate_qparam from minmax asym qparams (asym) on input.w
// (96 x 256), 50 iterations), against the plain twin, and on bad inputs.
//
// Tolerances: slim_ssz_quantize sums in torch's CPU reduction order
// (slim-ssz.c: slim_ssz_sum_f32), so its scales, offsets and codes must be
// bit-equal to the oracle (measured: all four cases exact; the first
// version with float64 sums was off by up to 6.6e-5 relative in the asym
// scales, which is how the order was pinned down).  The plain twin
// slim_ssz_quantize_ref sums in float64: the README's ~1e-5 for
// reductions does not cover the asym fit (its offset is a ratio of a sum
// with cancellation), so the twin gets rel 1e-4 on scales, abs 1e-4 on
// offsets, codes differing in at most 0.1% of the 24576 elements by one
// step (measured: rel 6.6e-5, abs 1.1e-5, 0 codes).  The asym start
// parameters (init_scale/init_offset) are elementwise minmax qparams:
// exact.
#include "oracle.h"
#include "slim-test.h"

extern "C"
{
#include "slim-error.h"
#include "slim-qparams.h"
#include "slim-ssz.h"
}

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace
{

constexpr int64_t N_OUT = 96;
constexpr int64_t N_IN = 256;

struct SszCase
{
  const char *name;
  SlimQDtype dtype;
  bool symmetric;
};

void
PrintTo (const SszCase &c, std::ostream *os)
{
  *os << c.name;
}

const SszCase kCases[] = {
  { "ssz_int8_per_channel_sym", SLIM_QDTYPE_INT8, true },
  { "ssz_int4_per_channel_sym", SLIM_QDTYPE_INT4, true },
  { "ssz_int8_per_channel_asym", SLIM_QDTYPE_INT8, false },
  { "ssz_int4_per_channel_asym", SLIM_QDTYPE_INT4, false },
};

SlimSszConfig
make_config (SlimQDtype dtype, bool symmetric)
{
  SlimQParamsConfig qcfg;
  SlimSszConfig cfg;
  GError *error = nullptr;

  EXPECT_TRUE (slim_qparams_config_init (&qcfg, dtype, symmetric, 0, &error));
  GErrorPtr guard (error);
  slim_ssz_config_init (&cfg, &qcfg);
  return cfg;
}

struct SszResult
{
  std::vector<float> scale, offset, dq;
  std::vector<int8_t> q;
  gint64 n_iter = 0;
  bool ok = false;
};

SszResult
run_ssz (
    const SlimSszConfig &cfg, const std::vector<float> &w, int64_t n_out, int64_t n_in, bool ref)
{
  SszResult r;
  GError *error = nullptr;

  r.scale.resize (n_out);
  r.offset.resize (n_out);
  r.q.resize (n_out * n_in);
  r.dq.resize (n_out * n_in);
  r.ok = (ref ? slim_ssz_quantize_ref
              : slim_ssz_quantize) (&cfg, w.data (), n_out, n_in, r.scale.data (), r.offset.data (),
                                    (gint8 *)r.q.data (), r.dq.data (), &r.n_iter, &error);
  EXPECT_TRUE (r.ok) << (error ? error->message : "");
  g_clear_error (&error);
  return r;
}

double
rel_frobenius (const std::vector<float> &w, const std::vector<float> &dq)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < w.size (); i++)
    {
      num += ((double)w[i] - dq[i]) * ((double)w[i] - dq[i]);
      den += (double)w[i] * w[i];
    }
  return std::sqrt (num / den);
}

void
expect_close (const char *name,
              const SszResult &got,
              const std::vector<float> &want_scale,
              const std::vector<float> &want_offset,
              const std::vector<int8_t> &want_q,
              double tol_scale,
              double tol_offset,
              int64_t max_q_diff)
{
  double max_rel_scale = 0, max_abs_offset = 0;
  int64_t q_diff = 0, q_far = 0;
  for (int64_t r = 0; r < N_OUT; r++)
    {
      double rel = std::fabs ((double)got.scale[r] - want_scale[r]) / std::fabs (want_scale[r]);
      max_rel_scale = std::max (max_rel_scale, rel);
      max_abs_offset
          = std::max (max_abs_offset, std::fabs ((double)got.offset[r] - want_offset[r]));
    }
  for (int64_t i = 0; i < N_OUT * N_IN; i++)
    if (got.q[i] != want_q[i])
      {
        q_diff++;
        q_far += std::abs (got.q[i] - want_q[i]) > 1;
      }
  std::printf ("%s: %" G_GINT64_FORMAT " iterations, max rel scale diff %.3g, max abs offset "
               "diff %.3g, %" G_GINT64_FORMAT " codes differ\n",
               name, got.n_iter, max_rel_scale, max_abs_offset, (gint64)q_diff);
  EXPECT_LE (max_rel_scale, tol_scale);
  EXPECT_LE (max_abs_offset, tol_offset);
  EXPECT_LE (q_diff, max_q_diff);
  EXPECT_EQ (q_far, 0);
}

class SszOracle : public ::testing::TestWithParam<SszCase>
{
};

TEST_P (SszOracle, MatchesMsModelSlim)
{
  const SszCase &c = GetParam ();
  const std::string n = c.name;
  std::vector<float> w = oracle_f32 ("input.w.npy");
  ASSERT_EQ (w.size (), (size_t)(N_OUT * N_IN));
  std::vector<float> want_scale = oracle_f32 (n + ".scale.npy");
  std::vector<float> want_offset = oracle_f32 (n + ".offset.npy");
  std::vector<int8_t> want_q = oracle_i8 (n + ".q.npy");
  ASSERT_EQ (want_scale.size (), (size_t)N_OUT);
  ASSERT_EQ (want_offset.size (), (size_t)N_OUT);
  ASSERT_EQ (want_q.size (), (size_t)(N_OUT * N_IN));

  SlimSszConfig cfg = make_config (c.dtype, c.symmetric);

  if (!c.symmetric)
    {
      // the start: minmax asym qparams per output row, exact
      std::vector<float> init_scale = oracle_f32 (n + ".init_scale.npy");
      std::vector<float> init_offset = oracle_f32 (n + ".init_offset.npy");
      ASSERT_EQ (init_scale.size (), (size_t)N_OUT);
      for (int64_t r = 0; r < N_OUT; r++)
        {
          float mn = w[r * N_IN], mx = w[r * N_IN], s, o;
          for (int64_t k = 0; k < N_IN; k++)
            {
              mn = std::min (mn, w[r * N_IN + k]);
              mx = std::max (mx, w[r * N_IN + k]);
            }
          slim_qparams_compute (&cfg.qparams, mn, mx, &s, &o);
          EXPECT_EQ (s, init_scale[r]) << "row " << r;
          EXPECT_EQ (o, init_offset[r]) << "row " << r;
        }
    }

  SszResult got = run_ssz (cfg, w, N_OUT, N_IN, false);
  ASSERT_TRUE (got.ok);
  expect_close (c.name, got, want_scale, want_offset, want_q, 0.0, 0.0, 0);
  if (c.symmetric)
    {
      for (int64_t r = 0; r < N_OUT; r++)
        EXPECT_EQ (got.offset[r], 0.0f);
    }

  // dq is (q - offset) * scale of the returned codes
  for (int64_t r = 0; r < N_OUT; r++)
    for (int64_t k = 0; k < N_IN; k++)
      {
        int64_t i = r * N_IN + k;
        ASSERT_EQ (got.dq[i], ((float)got.q[i] - got.offset[r]) * got.scale[r]);
      }
}

TEST_P (SszOracle, RefTwinMatchesWithinTolerance)
{
  const SszCase &c = GetParam ();
  const std::string n = c.name;
  std::vector<float> w = oracle_f32 ("input.w.npy");
  SlimSszConfig cfg = make_config (c.dtype, c.symmetric);
  SszResult b = run_ssz (cfg, w, N_OUT, N_IN, true);

  ASSERT_TRUE (b.ok);
  expect_close ((n + " (ref)").c_str (), b, oracle_f32 (n + ".scale.npy"),
                oracle_f32 (n + ".offset.npy"), oracle_i8 (n + ".q.npy"), 1e-4, 1e-4,
                N_OUT * N_IN / 1000);
}

// SSZ only keeps a channel's new parameters when its MSE drops, so the
// result is never worse than the minmax start, per channel.
TEST_P (SszOracle, NeverWorseThanMinmaxPerChannel)
{
  const SszCase &c = GetParam ();
  std::vector<float> w = oracle_f32 ("input.w.npy");
  SlimSszConfig cfg = make_config (c.dtype, c.symmetric);
  SszResult got = run_ssz (cfg, w, N_OUT, N_IN, false);
  std::vector<float> dq (N_OUT * N_IN);

  ASSERT_TRUE (got.ok);
  slim_fake_quantize_rows_dynamic (&cfg.qparams, w.data (), N_OUT, N_IN, dq.data ());
  int64_t better = 0;
  for (int64_t r = 0; r < N_OUT; r++)
    {
      double e_mm = 0, e_ssz = 0;
      for (int64_t k = 0; k < N_IN; k++)
        {
          int64_t i = r * N_IN + k;
          e_mm += ((double)w[i] - dq[i]) * ((double)w[i] - dq[i]);
          e_ssz += ((double)w[i] - got.dq[i]) * ((double)w[i] - got.dq[i]);
        }
      // float32 MSE comparison inside: allow its rounding (rel 1e-6)
      EXPECT_LE (e_ssz, e_mm * (1 + 1e-6)) << "row " << r;
      better += e_ssz < e_mm;
    }
  std::printf ("%s: rel Frobenius error minmax %.5f, ssz %.5f (%" G_GINT64_FORMAT
               " of 96 channels improved)\n",
               c.name, rel_frobenius (w, dq), rel_frobenius (w, got.dq), (gint64)better);
  EXPECT_GT (better, 0);
}

INSTANTIATE_TEST_SUITE_P (Cases,
                          SszOracle,
                          ::testing::ValuesIn (kCases),
                          [] (const ::testing::TestParamInfo<SszCase> &info) {
                            return std::string (info.param.name);
                          });

// ext.step caps the loop; one step already lowers the error, more steps
// never raise it (keep-if-better).
TEST (Ssz, StepCapsIterations)
{
  std::vector<float> w = oracle_f32 ("input.w.npy");
  SlimSszConfig cfg = make_config (SLIM_QDTYPE_INT4, true);
  double prev = 1e30;

  for (gint64 step : { 1, 2, 5, 10, 50 })
    {
      cfg.step = step;
      SszResult got = run_ssz (cfg, w, N_OUT, N_IN, false);
      ASSERT_TRUE (got.ok);
      EXPECT_LE (got.n_iter, step);
      double e = rel_frobenius (w, got.dq);
      EXPECT_LE (e, prev * (1 + 1e-6)) << "step " << step;
      prev = e;
    }
}

// Random weights with an all-zero row: the zero row keeps its minmax
// parameters (scale eps, codes 0) in the symmetric scheme in both twins;
// the asymmetric fit of a zero row is 0/0 and is reported.
TEST (Ssz, ZeroRow)
{
  const int64_t n_out = 8, n_in = 64;
  std::vector<float> w (n_out * n_in);
  std::mt19937 rng (7);
  std::normal_distribution<float> nd (0.0f, 0.05f);
  for (auto &x : w)
    x = nd (rng);
  for (int64_t k = 0; k < n_in; k++)
    w[3 * n_in + k] = 0.0f;

  SlimSszConfig cfg = make_config (SLIM_QDTYPE_INT8, true);
  SszResult a = run_ssz (cfg, w, n_out, n_in, false);
  SszResult b = run_ssz (cfg, w, n_out, n_in, true);
  ASSERT_TRUE (a.ok && b.ok);
  EXPECT_EQ (a.scale[3], FLT_EPSILON);
  EXPECT_EQ (b.scale[3], FLT_EPSILON);
  for (int64_t k = 0; k < n_in; k++)
    EXPECT_EQ (a.q[3 * n_in + k], 0);
  EXPECT_EQ (a.q, b.q); // 8 x 64 random int8 codes: measured equal

  SlimSszConfig acfg = make_config (SLIM_QDTYPE_INT8, false);
  std::vector<float> s (n_out), o (n_out);
  for (bool ref : { false, true })
    {
      GError *error = nullptr;
      EXPECT_FALSE ((ref ? slim_ssz_quantize_ref : slim_ssz_quantize) (
          &acfg, w.data (), n_out, n_in, s.data (), o.data (), nullptr, nullptr, nullptr, &error));
      EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE))
          << (error ? error->message : "no error");
      g_clear_error (&error);
    }
}

TEST (Ssz, BadInputs)
{
  std::vector<float> w (4 * 8, 0.1f);
  std::vector<float> s (4, 0.01f), o (4, 0.0f);
  SlimSszConfig cfg = make_config (SLIM_QDTYPE_INT8, true);
  GError *error = nullptr;

  w[5] = NAN;
  EXPECT_FALSE (slim_ssz_quantize (&cfg, w.data (), 4, 8, s.data (), o.data (), nullptr, nullptr,
                                   nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
  w[5] = 0.1f;

  EXPECT_FALSE (slim_ssz_quantize (&cfg, w.data (), 0, 8, s.data (), o.data (), nullptr, nullptr,
                                   nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);

  s[2] = 0.0f; // a start scale must be > 0
  EXPECT_FALSE (slim_ssz_search (&cfg, w.data (), 4, 8, s.data (), o.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
  EXPECT_EQ (s[2], 0.0f); // unchanged after an error
  s[2] = 0.01f;

  cfg.step = 0;
  EXPECT_FALSE (slim_ssz_search (&cfg, w.data (), 4, 8, s.data (), o.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  g_clear_error (&error);

  cfg = make_config (SLIM_QDTYPE_INT8, true);
  cfg.qparams.max_bound = 119;
  EXPECT_FALSE (slim_ssz_search (&cfg, w.data (), 4, 8, s.data (), o.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  g_clear_error (&error);
}

} // namespace
