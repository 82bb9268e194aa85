// SPDX-License-Identifier: Apache-2.0
//
// test-smooth.cpp: smoothing numerics (slim-smooth) against msModelSlim's
// oracle vectors (../shared/oracle, cases smooth_quant_* and
// iter_smooth_*, plus the flex_smooth_ov_scales_* GQA reductions), and the
// optimized kernels against their plain-loop twins.
//
// Inputs (oracle README): x (64 x 256) one calibration batch, w (96 x 256)
// as q_proj / o_proj / linear2 / down_proj, w2 (64 x 256) as k_proj /
// v_proj, norm_w (256), up_w (256 x 96) as linear1 / up_proj.
//
// Tolerances: statistics are max/min of the inputs (and of |x - shift|,
// one float subtraction as torch does it): exact.  Scales go through pow
// (torch uses Sleef's 1-ULP powf, glibc's powf is within 1 ULP as well):
// the README's rel 1e-5; measured worst 1.5e-7 (alpha 0.5 takes sqrt, as
// torch does: bit-equal).  Fused weights and biases are elementwise
// products of those scales (rel 1e-5, measured 3e-7); the shift-derived
// biases go through a matmul (torch.mm vs OpenBLAS, another summation
// order): rel 1e-5 plus an absolute 1e-6 for the values near zero
// (measured: 2.6e-5 relative on an element of magnitude ~1e-3).
#include "oracle.h"
#include "slim-test.h"

extern "C"
{
#include "slim-smooth.h"
}

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace
{

constexpr int64_t N_TOK = 64;
constexpr int64_t N_CH = 256;

void
expect_close (const std::vector<float> &got,
              const std::vector<float> &want,
              double rel,
              double abs_tol,
              const std::string &what)
{
  ASSERT_EQ (got.size (), want.size ()) << what;
  size_t bad = 0;
  double worst = 0.0;
  for (size_t i = 0; i < got.size (); i++)
    {
      double d = std::fabs ((double)got[i] - (double)want[i]);
      double tol = rel * std::fabs ((double)want[i]) + abs_tol;
      worst = std::max (worst, d / (std::fabs ((double)want[i]) + 1e-30));
      if (!(d <= tol))
        {
          if (bad++ < 5)
            ADD_FAILURE () << what << "[" << i << "]: " << got[i] << " vs " << want[i];
        }
    }
  EXPECT_EQ (bad, 0u) << what << " (worst relative difference " << worst << ")";
}

struct Stats
{
  std::vector<float> smooth, shift;
};

Stats
collect (const std::vector<float> &x, bool shifted)
{
  SlimSmoothStats *s = slim_smooth_stats_new (N_CH, shifted);
  slim_smooth_stats_update (s, x.data (), N_TOK);
  Stats out;
  out.smooth.assign (s->smooth, s->smooth + N_CH);
  out.shift.resize (N_CH);
  slim_smooth_stats_get_shift (s, out.shift.data ());
  slim_smooth_stats_free (s);
  return out;
}

struct NormCase
{
  const char *name;
  double alpha;
  bool symmetric;
  bool has_q_weight; // fused q/k weights stored
};

void
PrintTo (const NormCase &c, std::ostream *os)
{
  *os << c.name;
}

class SmoothNormLinearOracle : public ::testing::TestWithParam<NormCase>
{
};

// NormLinearSubgraph(norm, [q, k]) with stats from x: the stats, the
// scales, shifts and every fused tensor the case stores.
TEST_P (SmoothNormLinearOracle, MatchesMsModelSlim)
{
  const NormCase &c = GetParam ();
  const std::string p = std::string (c.name) + ".";
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> q = oracle_f32 ("input.w.npy");
  std::vector<float> k = oracle_f32 ("input.w2.npy");
  std::vector<float> norm = oracle_f32 ("input.norm_w.npy");
  ASSERT_EQ (x.size (), (size_t)(N_TOK * N_CH));
  ASSERT_EQ (q.size (), (size_t)(96 * N_CH));
  ASSERT_EQ (k.size (), (size_t)(64 * N_CH));

  Stats st = collect (x, !c.symmetric);
  EXPECT_EQ (st.smooth, oracle_f32 (p + "act_smooth_scale.npy")) << "exact: a max of inputs";
  EXPECT_EQ (st.shift, oracle_f32 (p + "act_shift.npy"));

  std::vector<float> w_max (N_CH), scales (N_CH);
  slim_smooth_weight_column_max (q.data (), 96, N_CH, TRUE, FALSE, w_max.data ());
  slim_smooth_weight_column_max (k.data (), 64, N_CH, TRUE, TRUE, w_max.data ());
  slim_smooth_scales (st.smooth.data (), w_max.data (), N_CH, c.alpha, 1.0 - c.alpha, 1e-5f, 1e-5f,
                      scales.data ());
  expect_close (scales, oracle_f32 (p + "fusion_scales.npy"), 1e-5, 0.0, "fusion_scales");

  std::vector<float> q_bias (96, 0.0f), k_bias (64, 0.0f);
  if (!c.symmetric)
    {
      std::vector<float> sq (96), sk (64), ns (N_CH);
      slim_smooth_linear_shift (q.data (), 96, N_CH, st.shift.data (), sq.data ());
      slim_smooth_linear_shift (k.data (), 64, N_CH, st.shift.data (), sk.data ());
      slim_smooth_norm_shift (st.shift.data (), scales.data (), N_CH, ns.data ());
      expect_close (sq, oracle_f32 (p + "fusion_linear_shifts_0.npy"), 1e-5, 1e-6, "q shift");
      expect_close (sk, oracle_f32 (p + "fusion_linear_shifts_1.npy"), 1e-5, 1e-6, "k shift");
      expect_close (ns, oracle_f32 (p + "fusion_norm_shift.npy"), 1e-5, 0.0, "norm shift");
      for (int i = 0; i < 96; i++)
        q_bias[i] += sq[i];
      for (int i = 0; i < 64; i++)
        k_bias[i] += sk[i];
      expect_close (q_bias, oracle_f32 (p + "q_bias.npy"), 1e-5, 1e-6, "q_bias");
      expect_close (k_bias, oracle_f32 (p + "k_bias.npy"), 1e-5, 1e-6, "k_bias");
      // the RMSNormBias starts at zero: its bias is the norm shift
      expect_close (ns, oracle_f32 (p + "norm_bias.npy"), 1e-5, 0.0, "norm_bias");
    }
  slim_smooth_scale_columns (q.data (), 96, N_CH, scales.data ());
  slim_smooth_scale_columns (k.data (), 64, N_CH, scales.data ());
  slim_smooth_divide_vector (norm.data (), N_CH, scales.data ());
  expect_close (norm, oracle_f32 (p + "norm_weight.npy"), 1e-5, 0.0, "norm_weight");
  if (c.has_q_weight)
    {
      expect_close (q, oracle_f32 (p + "q_weight.npy"), 1e-5, 0.0, "q_weight");
      expect_close (k, oracle_f32 (p + "k_weight.npy"), 1e-5, 0.0, "k_weight");
    }
}

INSTANTIATE_TEST_SUITE_P (
    Cases,
    SmoothNormLinearOracle,
    ::testing::Values (NormCase{ "smooth_quant_norm_linear_sym", 0.5, true, true },
                       NormCase{ "smooth_quant_norm_linear_asym_shift", 0.5, false, false },
                       NormCase{ "iter_smooth_norm_linear_sym", 0.9, true, false },
                       NormCase{ "iter_smooth_norm_linear_asym_shift", 0.9, false, true }),
    [] (const ::testing::TestParamInfo<NormCase> &info) { return std::string (info.param.name); });

// iter_smooth on linear-linear and up-down: consumer W (96 x 256), its
// column maximum taken WITHOUT abs() (msModelSlim's quirk, reproduced);
// linear1's bias linspace(-0.1, 0.1, 256) divided.
TEST (SmoothOracle, IterSmoothLinearLinearAndUpDown)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> w = oracle_f32 ("input.w.npy");
  Stats st = collect (x, false);
  for (const char *name : { "iter_smooth_linear_linear", "iter_smooth_up_down" })
    {
      const std::string p = std::string (name) + ".";
      EXPECT_EQ (st.smooth, oracle_f32 (p + "act_smooth_scale.npy")) << name;
      std::vector<float> w_max (N_CH), scales (N_CH), w_abs (N_CH), scales_abs (N_CH);
      slim_smooth_weight_column_max (w.data (), 96, N_CH, FALSE, FALSE, w_max.data ());
      slim_smooth_scales (st.smooth.data (), w_max.data (), N_CH, 0.9, 1.0 - 0.9, 1e-5f, 1e-5f,
                          scales.data ());
      expect_close (scales, oracle_f32 (p + "fusion_scales.npy"), 1e-5, 0.0, p + "fusion_scales");
      // the quirk is visible: with |W| the scales differ on this input
      slim_smooth_weight_column_max (w.data (), 96, N_CH, TRUE, FALSE, w_abs.data ());
      slim_smooth_scales (st.smooth.data (), w_abs.data (), N_CH, 0.9, 1.0 - 0.9, 1e-5f, 1e-5f,
                          scales_abs.data ());
      EXPECT_NE (scales_abs, scales);
    }
  // linear1 (256 x 96) rows and bias divided by the scales
  std::vector<float> scales = oracle_f32 ("iter_smooth_linear_linear.fusion_scales.npy");
  std::vector<float> up = oracle_f32 ("input.up_w.npy");
  std::vector<float> bias (N_CH);
  for (int i = 0; i < N_CH; i++) // torch.linspace(-0.1, 0.1, 256) in float32
    bias[i] = (float)(-0.1 + 0.2 * (double)i / 255.0);
  slim_smooth_divide_rows (up.data (), bias.data (), N_CH, 96, scales.data ());
  expect_close (bias, oracle_f32 ("iter_smooth_linear_linear.linear1_bias.npy"), 1e-5, 1e-7,
                "linear1_bias");
}

// iter_smooth on ov with GQA (8 heads, 2 kv heads, head_dim 32): scales
// over o_proj's 256 inputs, mean over the 4 heads of each group.
TEST (SmoothOracle, IterSmoothOvGqaMean)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> w = oracle_f32 ("input.w.npy");
  Stats st = collect (x, false);
  EXPECT_EQ (st.smooth, oracle_f32 ("iter_smooth_ov_gqa.act_smooth_scale.npy"));
  std::vector<float> w_max (N_CH), scales (N_CH), o (N_CH), v (64);
  slim_smooth_weight_column_max (w.data (), 96, N_CH, FALSE, FALSE, w_max.data ());
  slim_smooth_scales (st.smooth.data (), w_max.data (), N_CH, 0.9, 1.0 - 0.9, 1e-5f, 1e-5f,
                      scales.data ());
  slim_smooth_gqa_reduce_mean (scales.data (), 8, 2, 32, o.data (), v.data ());
  expect_close (o, oracle_f32 ("iter_smooth_ov_gqa.fusion_o_scales.npy"), 1e-5, 0.0, "o_scales");
  expect_close (v, oracle_f32 ("iter_smooth_ov_gqa.fusion_v_scales.npy"), 1e-5, 0.0, "v_scales");
  // v_proj's bias, torch.linspace(0, 0.2, 64) in the generator, divided by v_scales
  std::vector<float> bias (64);
  std::vector<float> v_w = oracle_f32 ("input.w2.npy");
  for (int i = 0; i < 64; i++)
    bias[i] = (float)(0.2 * (double)i / 63.0);
  slim_smooth_divide_rows (v_w.data (), bias.data (), 64, N_CH, v.data ());
  expect_close (bias, oracle_f32 ("iter_smooth_ov_gqa.v_bias.npy"), 1e-5, 1e-7, "v_bias");
}

// The flex calculator's GQA reductions (alpha = beta = 0.5): mean of the
// per-channel scales, or the max rule on the group maxima.
TEST (SmoothOracle, FlexOvScalesMeanAndMax)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> w = oracle_f32 ("input.w.npy");
  Stats st = collect (x, false);
  std::vector<float> w_max (N_CH);
  slim_smooth_weight_column_max (w.data (), 96, N_CH, TRUE, FALSE, w_max.data ());
  for (float &v : w_max)
    v = std::max (v, 1e-5f);
  for (const char *rule : { "mean", "max" })
    {
      const std::string p = std::string ("flex_smooth_ov_scales_") + rule + ".";
      EXPECT_EQ (st.smooth, oracle_f32 (p + "a_scale.npy")) << rule;
      EXPECT_EQ (w_max, oracle_f32 (p + "w_scale.npy")) << rule;
      std::vector<float> o (N_CH), v (64);
      if (std::string (rule) == "mean")
        {
          std::vector<float> scales (N_CH);
          slim_smooth_scales (st.smooth.data (), w_max.data (), N_CH, 0.5, 0.5, -INFINITY, 1e-5f,
                              scales.data ());
          slim_smooth_gqa_reduce_mean (scales.data (), 8, 2, 32, o.data (), v.data ());
        }
      else
        slim_smooth_gqa_scales_max (st.smooth.data (), w_max.data (), 8, 2, 32, 0.5, 0.5, o.data (),
                                    v.data ());
      expect_close (o, oracle_f32 (p + "o_scales.npy"), 1e-5, 0.0, p + "o_scales");
      expect_close (v, oracle_f32 (p + "v_scales.npy"), 1e-5, 0.0, p + "v_scales");
    }
}

// ---- optimized kernels against their plain-loop twins ----------------------

std::vector<float>
random_matrix (size_t n, unsigned seed, float scale)
{
  std::mt19937 gen (seed);
  std::normal_distribution<float> dist (0.0f, scale);
  std::vector<float> v (n);
  for (float &f : v)
    f = dist (gen);
  return v;
}

// Statistics over several batches (the shift changes between them):
// row-streaming and per-column loops agree exactly, for both modes.
TEST (SmoothKernels, StatsUpdateEqualsReference)
{
  const int64_t n = 37;
  for (gboolean shifted : { 0, 1 })
    {
      SlimSmoothStats *a = slim_smooth_stats_new (n, shifted);
      SlimSmoothStats *b = slim_smooth_stats_new (n, shifted);
      for (unsigned batch = 0; batch < 4; batch++)
        {
          const int64_t t = 5 + 7 * batch;
          std::vector<float> x = random_matrix ((size_t)(t * n), 11 + batch, 1.0f + batch);
          slim_smooth_stats_update (a, x.data (), t);
          slim_smooth_stats_update_ref (b, x.data (), t);
        }
      EXPECT_EQ (a->n_tokens, b->n_tokens);
      for (int64_t j = 0; j < n; j++)
        {
          EXPECT_EQ (a->min[j], b->min[j]);
          EXPECT_EQ (a->max[j], b->max[j]);
          EXPECT_EQ (a->smooth[j], b->smooth[j]) << "channel " << j << " shifted " << shifted;
        }
      EXPECT_EQ (slim_smooth_stats_find_non_finite (a), -1);
      slim_smooth_stats_free (a);
      slim_smooth_stats_free (b);
    }
}

TEST (SmoothKernels, NanInActivationsIsFound)
{
  std::vector<float> x = random_matrix (4 * 8, 3, 1.0f);
  x[2 * 8 + 5] = NAN;
  SlimSmoothStats *s = slim_smooth_stats_new (8, FALSE);
  slim_smooth_stats_update (s, x.data (), 4);
  EXPECT_EQ (slim_smooth_stats_find_non_finite (s), 5);
  slim_smooth_stats_free (s);
}

TEST (SmoothKernels, ColumnMaxEqualsReference)
{
  std::vector<float> w = random_matrix (29 * 41, 5, 0.1f);
  std::vector<float> w2 = random_matrix (13 * 41, 6, 0.1f);
  for (gboolean absolute : { 0, 1 })
    {
      std::vector<float> a (41), b (41);
      slim_smooth_weight_column_max (w.data (), 29, 41, absolute, FALSE, a.data ());
      slim_smooth_weight_column_max_ref (w.data (), 29, 41, absolute, FALSE, b.data ());
      slim_smooth_weight_column_max (w2.data (), 13, 41, absolute, TRUE, a.data ());
      slim_smooth_weight_column_max_ref (w2.data (), 13, 41, absolute, TRUE, b.data ());
      EXPECT_EQ (a, b);
    }
}

// float32 pow against float64: within 2 ULP (rel 3e-7) for the exponents
// of the processors' ranges.
TEST (SmoothKernels, ScalesEqualReferenceWithinRounding)
{
  std::vector<float> a = random_matrix (200, 7, 10.0f), w = random_matrix (200, 8, 0.05f);
  for (float &v : a)
    v = std::fabs (v);
  for (float &v : w)
    v = std::fabs (v);
  w[3] = 0.0f; // clamped to the floor
  for (double alpha : { 0.0, 0.3, 0.5, 0.9, 1.0 })
    {
      std::vector<float> s (200), r (200);
      slim_smooth_scales (a.data (), w.data (), 200, alpha, 1.0 - alpha, 1e-5f, 1e-5f, s.data ());
      slim_smooth_scales_ref (a.data (), w.data (), 200, alpha, 1.0 - alpha, 1e-5f, 1e-5f,
                              r.data ());
      expect_close (s, r, 3e-7, 0.0, "alpha " + std::to_string (alpha));
    }
}

// sgemv against a float64 dot product: rel 1e-5 plus 1e-6 near zero.
TEST (SmoothKernels, LinearShiftEqualsReference)
{
  std::vector<float> w = random_matrix (33 * 70, 9, 0.05f), shift = random_matrix (70, 10, 3.0f);
  std::vector<float> a (33), b (33);
  slim_smooth_linear_shift (w.data (), 33, 70, shift.data (), a.data ());
  slim_smooth_linear_shift_ref (w.data (), 33, 70, shift.data (), b.data ());
  expect_close (a, b, 1e-5, 1e-6, "W shift");
}

} // namespace
