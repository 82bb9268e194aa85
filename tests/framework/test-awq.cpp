// SPDX-License-Identifier: Apache-2.0
//
// test-awq.cpp: awq and kv_smooth numerics (slim-awq, slim-kv-smooth)
// against msModelSlim's oracle vectors (../shared/oracle, cases
// awq_best_scales_{int4,int8}_per_channel_sym and
// kv_smooth_{linear,norm}_factor{1.0,0.5}).
//
// Tolerances (oracle README): the AWQ ratio is an argmin: equal.
// act_mean is a float mean (torch sums in float32, slimflow in float64):
// rel 1e-5.  best_scales go through pow and a square root of the extreme
// values: rel 1e-5.  The loss per ratio is a sum of squared differences
// through a matmul (torch.mm vs OpenBLAS): rel 1e-4, since each loss is
// the small difference of two nearly equal outputs, squared (measured
// worst below 2e-6).  kv_smooth's statistics are min / max: exact; scales
// are a max then pow (exponent 1: exact, 0.5: sqrt, bit-equal) and the
// fused weights one multiplication or true division each: exact.
#include "oracle.h"
#include "slim-test.h"

extern "C"
{
#include "slim-awq.h"
#include "slim-kv-smooth.h"
#include "slim-linalg.h"
#include "slim-npy.h"
}

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace
{

constexpr int64_t N_TOK = 64;
constexpr int64_t N_CH = 256;
constexpr int64_t N_OUT = 96;

void
expect_close (const std::vector<float> &got,
              const std::vector<float> &want,
              double rel,
              const std::string &what)
{
  ASSERT_EQ (got.size (), want.size ()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size (); i++)
    {
      double d = std::fabs ((double)got[i] - (double)want[i]);
      if (!(d <= rel * std::fabs ((double)want[i])) && bad++ < 5)
        ADD_FAILURE () << what << "[" << i << "]: " << got[i] << " vs " << want[i];
    }
  EXPECT_EQ (bad, 0u) << what;
}

std::vector<double>
oracle_f64 (const std::string &file)
{
  GError *error = nullptr;
  std::string path = slim_test_shared_path ("oracle/" + file);
  SlimTensor *t = slim_npy_read (path.c_str (), &error);
  GErrorPtr guard (error);
  std::vector<double> out;
  EXPECT_NE (t, nullptr) << path;
  if (t == nullptr)
    return out;
  EXPECT_EQ (slim_tensor_get_dtype (t), SLIM_DTYPE_F64);
  const double *d = (const double *)slim_tensor_get_data (t);
  out.assign (d, d + slim_tensor_get_n_elements (t));
  slim_tensor_unref (t);
  return out;
}

class AwqOracle : public ::testing::TestWithParam<const char *>
{
};

// AWQBestScalesSearcher on one linear (the inspected module is the linear
// itself), weight int per_channel sym minmax, n_grid 20.
TEST_P (AwqOracle, MatchesMsModelSlim)
{
  const std::string dtype = GetParam ();
  const std::string p = "awq_best_scales_" + dtype + "_per_channel_sym.";
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> w = oracle_f32 ("input.w.npy");
  ASSERT_EQ (x.size (), (size_t)(N_TOK * N_CH));
  ASSERT_EQ (w.size (), (size_t)(N_OUT * N_CH));

  std::vector<float> mean (N_CH);
  gint64 count = 0;
  slim_awq_mean_update (mean.data (), &count, x.data (), N_TOK, N_CH);
  EXPECT_EQ (count, N_TOK);
  expect_close (mean, oracle_f32 (p + "act_mean.npy"), 1e-5, "act_mean");

  SlimAwqWeightQuant quant = {};
  GError *error = nullptr;
  ASSERT_TRUE (slim_qparams_config_init (
      &quant.cfg, dtype == "int4" ? SLIM_QDTYPE_INT4 : SLIM_QDTYPE_INT8, TRUE, 0, &error));
  quant.scope = SLIM_QSCOPE_PER_CHANNEL;
  std::vector<float> y (N_TOK * N_OUT);
  slim_linalg_linear (x.data (), w.data (), nullptr, y.data (), N_TOK, N_CH, N_OUT);
  const float *xs[] = { x.data () };
  const float *ys[] = { y.data () };
  const gint64 n_tokens[] = { N_TOK };
  SlimAwqLinear lin = { &quant, w.data (), nullptr, N_OUT, N_CH, 1, xs, n_tokens, ys };

  std::vector<float> best (N_CH, 0.0f);
  std::vector<double> losses (20);
  gint best_g = -1;
  ASSERT_TRUE (slim_awq_search (mean.data (), N_CH, 20, slim_awq_linear_eval, &lin, best.data (),
                                losses.data (), &best_g, &error))
      << error->message;

  std::vector<double> want_loss = oracle_f64 (p + "loss_per_ratio.npy");
  ASSERT_EQ (want_loss.size (), 20u);
  int want_g = 0;
  for (int g = 0; g < 20; g++)
    {
      EXPECT_NEAR (losses[g], want_loss[g], 1e-4 * want_loss[g]) << "ratio " << g;
      if (want_loss[g] < want_loss[want_g])
        want_g = g;
    }
  EXPECT_EQ (best_g, want_g) << "argmin equal";
  expect_close (best, oracle_f32 (p + "best_scales.npy"), 1e-5, "best_scales");
}

INSTANTIATE_TEST_SUITE_P (Oracle, AwqOracle, ::testing::Values ("int4", "int8"));

// The scale normalization: s / sqrt(max s * min s) puts the geometric
// mean of the extremes at 1, ratio 0 gives all ones, and a non-finite
// result is replaced by 1.
TEST (AwqScales, NormalizationAndEdges)
{
  const float mean[] = { 4.0f, 1.0f, 0.25f, 0.0f };
  float s[4];
  slim_awq_scales (mean, 4, 0.0, s);
  for (float v : s)
    EXPECT_EQ (v, 1.0f);
  slim_awq_scales (mean, 3, 1.0, s);
  EXPECT_FLOAT_EQ (s[0] * s[2], 1.0f);
  EXPECT_FLOAT_EQ (s[0], 4.0f);
  // 0 is clamped to 1e-4 before the normalization
  slim_awq_scales (mean, 4, 1.0, s);
  EXPECT_FLOAT_EQ (s[3], 1e-4f / std::sqrt (4.0f * 1e-4f));
  const float inf[] = { INFINITY, 1.0f };
  slim_awq_scales (inf, 2, 1.0, s);
  EXPECT_EQ (s[0], 1.0f) << "inf / inf = nan -> 1";
}

// The running mean over several batches equals the mean over all tokens.
TEST (AwqMean, MergesBatches)
{
  std::mt19937 rng (7);
  std::normal_distribution<float> nd (0.0f, 1.0f);
  std::vector<float> x (50 * 8);
  for (float &v : x)
    v = nd (rng);
  std::vector<float> whole (8), parts (8);
  gint64 c1 = 0, c2 = 0;
  slim_awq_mean_update (whole.data (), &c1, x.data (), 50, 8);
  slim_awq_mean_update (parts.data (), &c2, x.data (), 20, 8);
  slim_awq_mean_update (parts.data (), &c2, x.data () + 20 * 8, 30, 8);
  EXPECT_EQ (c2, 50);
  expect_close (parts, whole, 1e-6, "merged mean");
}

// ---- kv_smooth --------------------------------------------------------

constexpr int64_t KV_B = 2, KV_H = 2, KV_S = 16, KV_D = 32, KV_G = 4;

// keys (B, H, S, D) -> the (B*S, H*D) rows the qkv_states hook sees.
std::vector<float>
keys_as_rows ()
{
  std::vector<float> keys = oracle_f32 ("input.keys.npy");
  EXPECT_EQ (keys.size (), (size_t)(KV_B * KV_H * KV_S * KV_D));
  std::vector<float> rows (keys.size ());
  for (int64_t b = 0; b < KV_B; b++)
    for (int64_t h = 0; h < KV_H; h++)
      for (int64_t s = 0; s < KV_S; s++)
        for (int64_t d = 0; d < KV_D; d++)
          rows[((b * KV_S + s) * KV_H + h) * KV_D + d]
              = keys[((b * KV_H + h) * KV_S + s) * KV_D + d];
  return rows;
}

std::vector<float>
key_abs_max ()
{
  std::vector<float> rows = keys_as_rows ();
  const int64_t n = KV_H * KV_D;
  std::vector<float> kmin (n), kmax (n), out (n);
  // one batch per sequence, as the calibration forwards come
  slim_kv_smooth_minmax_update (kmin.data (), kmax.data (), rows.data (), KV_S, n, TRUE);
  slim_kv_smooth_minmax_update (kmin.data (), kmax.data (), rows.data () + KV_S * n, KV_S, n,
                                FALSE);
  slim_kv_smooth_abs_max (kmin.data (), kmax.data (), n, out.data ());
  return out;
}

class KvSmoothOracle : public ::testing::TestWithParam<const char *>
{
};

TEST_P (KvSmoothOracle, LinearMatchesMsModelSlim)
{
  const std::string f = GetParam ();
  const std::string p = "kv_smooth_linear_factor" + f + ".";
  const double factor = std::stod (f);
  std::vector<float> amax = key_abs_max ();
  EXPECT_EQ (amax, oracle_f32 (p + "key_abs_max.npy")) << "exact: min / max";

  std::vector<float> qw = oracle_f32 (p + "in.q_weight.npy"), qb = oracle_f32 (p + "in.q_bias.npy");
  std::vector<float> kw = oracle_f32 (p + "in.k_weight.npy"), kb = oracle_f32 (p + "in.k_bias.npy");
  ASSERT_EQ (qw.size (), (size_t)(KV_H * KV_G * KV_D * 32));
  ASSERT_EQ (kw.size (), (size_t)(KV_H * KV_D * 32));
  std::vector<float> ks (KV_H * KV_D), qs (KV_H * KV_G * KV_D);
  slim_kv_smooth_linear_scales (amax.data (), KV_H, KV_D, KV_G, factor, ks.data (), qs.data ());
  slim_kv_smooth_scale_rows (kw.data (), kb.data (), KV_H * KV_D, 32, ks.data (), TRUE);
  slim_kv_smooth_scale_rows (qw.data (), qb.data (), KV_H * KV_G * KV_D, 32, qs.data (), FALSE);
  EXPECT_EQ (kw, oracle_f32 (p + "k_weight.npy"));
  EXPECT_EQ (kb, oracle_f32 (p + "k_bias.npy"));
  EXPECT_EQ (qw, oracle_f32 (p + "q_weight.npy"));
  EXPECT_EQ (qb, oracle_f32 (p + "q_bias.npy"));
}

TEST_P (KvSmoothOracle, NormMatchesMsModelSlim)
{
  const std::string f = GetParam ();
  const std::string p = "kv_smooth_norm_factor" + f + ".";
  std::vector<float> amax = key_abs_max ();
  EXPECT_EQ (amax, oracle_f32 (p + "key_abs_max.npy"));
  std::vector<float> qn = oracle_f32 (p + "in.q_norm_weight.npy");
  std::vector<float> kn = oracle_f32 (p + "in.k_norm_weight.npy");
  ASSERT_EQ (qn.size (), (size_t)KV_D);
  std::vector<float> s (KV_D);
  slim_kv_smooth_norm_scales (amax.data (), KV_H, KV_D, std::stod (f), s.data ());
  slim_kv_smooth_scale_vector (kn.data (), KV_D, s.data (), TRUE);
  slim_kv_smooth_scale_vector (qn.data (), KV_D, s.data (), FALSE);
  EXPECT_EQ (kn, oracle_f32 (p + "k_norm_weight.npy"));
  EXPECT_EQ (qn, oracle_f32 (p + "q_norm_weight.npy"));
}

INSTANTIATE_TEST_SUITE_P (Oracle, KvSmoothOracle, ::testing::Values ("1.0", "0.5"));

// Scaling the RoPE pairs of a head by one value keeps q.k: the scores of
// every query/key pair after RoPE are unchanged (the reason for the
// pairing), checked on a rotation of each pair by an arbitrary angle.
TEST (KvSmoothScales, PairsTiedAndScoresKept)
{
  std::vector<float> amax = key_abs_max ();
  std::vector<float> ks (KV_H * KV_D), qs (KV_H * KV_G * KV_D);
  slim_kv_smooth_linear_scales (amax.data (), KV_H, KV_D, KV_G, 1.0, ks.data (), qs.data ());
  for (int64_t h = 0; h < KV_H; h++)
    for (int64_t d = 0; d < KV_D / 2; d++)
      EXPECT_EQ (ks[h * KV_D + d], ks[h * KV_D + d + KV_D / 2]);
  for (int64_t g = 0; g < KV_G; g++)
    for (int64_t d = 0; d < KV_D; d++)
      EXPECT_EQ (qs[(1 * KV_G + g) * KV_D + d], ks[1 * KV_D + d]) << "q head of kv head 1";
  std::mt19937 rng (3);
  std::normal_distribution<float> nd (0.0f, 1.0f);
  std::vector<float> q (KV_D), k (KV_D);
  for (int64_t d = 0; d < KV_D; d++)
    {
      q[d] = nd (rng);
      k[d] = nd (rng);
    }
  auto rope_dot = [] (const std::vector<float> &a, const std::vector<float> &b) {
    double dot = 0.0;
    for (int64_t d = 0; d < KV_D / 2; d++)
      {
        const double ca = std::cos (0.3 * d), sa = std::sin (0.3 * d);
        const double cb = std::cos (0.7 * d), sb = std::sin (0.7 * d);
        const double a0 = a[d] * ca - a[d + KV_D / 2] * sa, a1 = a[d + KV_D / 2] * ca + a[d] * sa;
        const double b0 = b[d] * cb - b[d + KV_D / 2] * sb, b1 = b[d + KV_D / 2] * cb + b[d] * sb;
        dot += a0 * b0 + a1 * b1;
      }
    return dot;
  };
  const double before = rope_dot (q, k);
  for (int64_t d = 0; d < KV_D; d++)
    {
      q[d] *= ks[d];
      k[d] /= ks[d];
    }
  EXPECT_NEAR (rope_dot (q, k), before, 1e-5 * std::fabs (before) + 1e-6);
}

} // namespace
