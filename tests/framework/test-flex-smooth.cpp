// SPDX-License-Identifier: Apache-2.0
//
// test-flex-smooth.cpp: flex_smooth_quant's numerics (slim-flex-smooth,
// with slim-smooth's scale rule) against msModelSlim's oracle vectors
// (../shared/oracle, cases flex_quant_*, flex_smooth_alpha_beta_search,
// flex_smooth_norm_linear_{alpha0.6_beta0.4,search}), and the sgemm error
// kernel against its plain-loop twin.
//
// Inputs (oracle README): x (64 x 256) the calibration tokens, w (96 x
// 256) as q_proj, w2 (64 x 256) as k_proj, norm_w (256).
//
// Tolerances (README: argmin results equal, scales within rel 1e-5):
// - the fake quantizers are elementwise float32 divisions, rint and
//   products, the same operations torch does: bit-equal;
// - the activation maxima are exact; scales go through powf (1 ULP, as
//   Sleef's in torch): rel 1e-5, and the fused norm weight is one more
//   float product of those;
// - the error curves: msModelSlim takes float32 means of float32 matmul
//   outputs, slimflow sums squares in double over OpenBLAS's float32
//   products: rel 1e-5 on every grid point (measured worst 1.0e-6; scales
//   and the fused norm weight measured worst 2.6e-7).
#include "oracle.h"
#include "slim-test.h"

extern "C"
{
#include "slim-flex-awq-ssz.h"
#include "slim-flex-smooth.h"
#include "slim-qparams.h"
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
constexpr int64_t N_Q = 96;
constexpr int64_t N_K = 64;

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

template <typename A, typename B>
void
expect_rel (const std::vector<A> &got,
            const std::vector<B> &want,
            double rel,
            const std::string &what)
{
  ASSERT_EQ (got.size (), want.size ()) << what;
  size_t bad = 0;
  double worst = 0.0;
  for (size_t i = 0; i < got.size (); i++)
    {
      double d = std::fabs ((double)got[i] - (double)want[i]);
      worst = std::max (worst, d / (std::fabs ((double)want[i]) + 1e-30));
      if (!(d <= rel * std::fabs ((double)want[i])) && bad++ < 5)
        ADD_FAILURE () << what << "[" << i << "]: " << got[i] << " vs " << want[i];
    }
  EXPECT_EQ (bad, 0u) << what << " (worst relative difference " << worst << ")";
}

std::vector<float>
act_max (const std::vector<float> &x)
{
  SlimSmoothStats *s = slim_smooth_stats_new (N_CH, FALSE);
  slim_smooth_stats_update (s, x.data (), N_TOK);
  std::vector<float> out (s->smooth, s->smooth + N_CH);
  slim_smooth_stats_free (s);
  return out;
}

// The search on x against the blocks q and k (msModelSlim concatenates
// them along the output rows: the sums of squares add up).
struct Search
{
  std::vector<float> x, a_max, w_max, scales;
  std::vector<std::vector<float> > w, wq;
  std::vector<int64_t> n_out;
  int calls = 0;

  static gboolean
  eval (double alpha, double beta, float *out, gpointer user_data, GError **)
  {
    Search *s = static_cast<Search *> (user_data);
    double err = 0.0, ref = 0.0;
    s->calls++;
    slim_flex_candidate_scales (s->a_max.data (), s->w_max.data (), N_CH, alpha, beta,
                                s->scales.data ());
    for (size_t b = 0; b < s->w.size (); b++)
      {
        slim_flex_candidate_weight (s->w[b].data (), s->n_out[b], N_CH, s->scales.data (),
                                    s->wq[b].data ());
        EXPECT_TRUE (slim_flex_accumulate_error (s->x.data (), N_TOK, N_CH, s->w[b].data (),
                                                 s->wq[b].data (), s->n_out[b], s->scales.data (),
                                                 &err, &ref));
      }
    *out = slim_flex_error (err, ref);
    return TRUE;
  }
};

Search
make_search ()
{
  Search s;
  s.x = oracle_f32 ("input.x.npy");
  s.w = { oracle_f32 ("input.w.npy"), oracle_f32 ("input.w2.npy") };
  s.n_out = { N_Q, N_K };
  s.a_max = act_max (s.x);
  s.w_max.resize (N_CH);
  for (size_t b = 0; b < s.w.size (); b++)
    {
      slim_smooth_weight_column_max (s.w[b].data (), s.n_out[b], N_CH, TRUE, b > 0,
                                     s.w_max.data ());
      s.wq.emplace_back (s.w[b].size ());
    }
  s.scales.resize (N_CH);
  return s;
}

// quant_int8sym (x, dim=-1) and quant_int8asym (x), the search's fake
// quantizers.
TEST (FlexSmoothOracle, FakeQuantizersAreBitEqual)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  ASSERT_EQ (x.size (), (size_t)(N_TOK * N_CH));
  std::vector<float> out (x.size ());
  slim_flex_quant_int8sym_rows (x.data (), N_TOK, N_CH, out.data ());
  EXPECT_EQ (out, oracle_f32 ("flex_quant_int8sym_rows.recovered.npy"));
  slim_flex_quant_int8asym_tensor (x.data (), (int64_t)x.size (), out.data ());
  EXPECT_EQ (out, oracle_f32 ("flex_quant_int8asym_tensor.recovered.npy"));
}

// Fixed alpha 0.6, beta 0.4 on NormLinearSubgraph(norm, [q, k]): the
// activation maxima, the fusion scales, the fused norm weight.
TEST (FlexSmoothOracle, NormLinearFixedAlphaBeta)
{
  const std::string p = "flex_smooth_norm_linear_alpha0.6_beta0.4.";
  Search s = make_search ();
  EXPECT_EQ (s.a_max, oracle_f32 (p + "act_smooth_scale.npy"));
  std::vector<float> scales (N_CH);
  slim_smooth_scales (s.a_max.data (), s.w_max.data (), N_CH, 0.6, 0.4, 1e-5f, 1e-5f,
                      scales.data ());
  expect_rel (scales, oracle_f32 (p + "fusion_scales.npy"), 1e-5, "fusion_scales");
  std::vector<float> norm = oracle_f32 ("input.norm_w.npy");
  slim_smooth_divide_vector (norm.data (), N_CH, scales.data ());
  expect_rel (norm, oracle_f32 (p + "norm_weight.npy"), 1e-5, "norm_weight");
}

// FlexSmoothAlphaBetaSearcher.search_alpha_beta (x, cat (w, w2)): both
// error curves, the chosen alpha 0.65 and beta 0.4 and the final error.
TEST (FlexSmoothOracle, AlphaBetaSearchCurves)
{
  const std::string p = "flex_smooth_alpha_beta_search.";
  Search s = make_search ();
  std::vector<float> c1 (SLIM_FLEX_GRID_POINTS), c2 (SLIM_FLEX_GRID_POINTS);
  double alpha = -1.0, beta = -1.0;
  float best = 0.0f;
  GError *error = nullptr;
  ASSERT_TRUE (slim_flex_search_alpha_beta (Search::eval, &s, &alpha, &beta, &best, c1.data (),
                                            c2.data (), &error));
  EXPECT_EQ (s.calls, 2 * SLIM_FLEX_GRID_POINTS);
  expect_rel (c1, oracle_f64 (p + "mse_alpha_grid_beta_1_minus_alpha.npy"), 1e-5, "stage 1");
  expect_rel (c2, oracle_f64 (p + "mse_beta_grid_at_best_alpha.npy"), 1e-5, "stage 2");
  EXPECT_DOUBLE_EQ (alpha, 0.65);
  EXPECT_DOUBLE_EQ (beta, 0.4);
  EXPECT_NEAR (best, 0.005111993756145239, 1e-5 * 0.005111993756145239);
}

// The full flex_smooth_quant call with alpha and beta absent: the search
// above, then the scales of the chosen pair and the fused norm weight.
TEST (FlexSmoothOracle, NormLinearSearch)
{
  const std::string p = "flex_smooth_norm_linear_search.";
  Search s = make_search ();
  EXPECT_EQ (s.a_max, oracle_f32 (p + "act_smooth_scale.npy"));
  double alpha = 0.0, beta = 0.0;
  GError *error = nullptr;
  ASSERT_TRUE (slim_flex_search_alpha_beta (Search::eval, &s, &alpha, &beta, nullptr, nullptr,
                                            nullptr, &error));
  std::vector<float> scales (N_CH);
  slim_smooth_scales (s.a_max.data (), s.w_max.data (), N_CH, alpha, beta, 1e-5f, 1e-5f,
                      scales.data ());
  expect_rel (scales, oracle_f32 (p + "fusion_scales.npy"), 1e-5, "fusion_scales");
  std::vector<float> norm = oracle_f32 ("input.norm_w.npy");
  slim_smooth_divide_vector (norm.data (), N_CH, scales.data ());
  expect_rel (norm, oracle_f32 (p + "norm_weight.npy"), 1e-5, "norm_weight");
}

// Ties: '<=' keeps the later grid point; stage 2 starts from stage 1's
// error; NaN never wins (alpha 0, beta 0, as msModelSlim's initial values).
TEST (FlexSmoothSearch, TiesAndNaN)
{
  struct Curve
  {
    static gboolean
    flat (double, double, float *out, gpointer, GError **)
    {
      *out = 1.0f;
      return TRUE;
    }
    // stage 1 best at alpha 0.3 (beta 0.7); stage 2 finds beta 0.2 better
    static gboolean
    shaped (double alpha, double beta, float *out, gpointer, GError **)
    {
      if (std::fabs (alpha + beta - 1.0) < 1e-12)
        *out = (float)(1.0 + std::fabs (alpha - 0.3));
      else
        *out = std::fabs (beta - 0.2) < 1e-12 ? 0.5f : 3.0f;
      return TRUE;
    }
    static gboolean
    nan (double, double, float *out, gpointer, GError **)
    {
      *out = NAN;
      return TRUE;
    }
  };
  double alpha, beta;
  float best;
  ASSERT_TRUE (slim_flex_search_alpha_beta (Curve::flat, nullptr, &alpha, &beta, &best, nullptr,
                                            nullptr, nullptr));
  EXPECT_DOUBLE_EQ (alpha, 1.0); // the last of 21 equal errors
  EXPECT_DOUBLE_EQ (beta, 1.0);
  ASSERT_TRUE (slim_flex_search_alpha_beta (Curve::shaped, nullptr, &alpha, &beta, &best, nullptr,
                                            nullptr, nullptr));
  EXPECT_DOUBLE_EQ (alpha, 0.3);
  EXPECT_DOUBLE_EQ (beta, 0.2);
  EXPECT_FLOAT_EQ (best, 0.5f);
  ASSERT_TRUE (slim_flex_search_alpha_beta (Curve::nan, nullptr, &alpha, &beta, &best, nullptr,
                                            nullptr, nullptr));
  EXPECT_DOUBLE_EQ (alpha, 0.0);
  EXPECT_DOUBLE_EQ (beta, 0.0);
  EXPECT_TRUE (std::isinf (best));
}

// The sgemm kernel against its plain twin, over several token counts
// (one partial block of 256 tokens and more).  ref_sq: float32 sgemm vs
// double loops over 96 products, rel 1e-5; err_sq sums squares of
// differences of nearly equal products (the quantization error is ~1% of
// the output), so float32 rounding of each product weighs ~100x more:
// rel 1e-3 (measured worst 2e-6; ref_sq 8e-8).
TEST (FlexSmoothKernels, AccumulateErrorEqualsReference)
{
  std::mt19937 gen (7);
  std::normal_distribution<float> dist (0.0f, 1.0f);
  const int64_t n_in = 96, n_out = 40;
  std::vector<float> w ((size_t)(n_out * n_in)), wq (w.size ()), s ((size_t)n_in);
  for (float &v : w)
    v = 0.05f * dist (gen);
  for (int64_t j = 0; j < n_in; j++)
    s[(size_t)j] = 0.5f + 0.01f * (float)j;
  slim_flex_candidate_weight (w.data (), n_out, n_in, s.data (), wq.data ());
  for (int64_t n_tok : { 1, 37, 300, 600 })
    {
      std::vector<float> x ((size_t)(n_tok * n_in));
      for (float &v : x)
        v = dist (gen);
      x[3] = 40.0f; // an outlier channel value
      double e1 = 0.0, r1 = 0.0, e2 = 0.0, r2 = 0.0;
      ASSERT_TRUE (slim_flex_accumulate_error (x.data (), n_tok, n_in, w.data (), wq.data (), n_out,
                                               s.data (), &e1, &r1));
      ASSERT_TRUE (slim_flex_accumulate_error_ref (x.data (), n_tok, n_in, w.data (), wq.data (),
                                                   n_out, s.data (), &e2, &r2));
      EXPECT_NEAR (r1, r2, 1e-5 * r2) << n_tok;
      EXPECT_NEAR (e1, e2, 1e-3 * e2) << n_tok;
      EXPECT_GT (e2, 0.0) << n_tok;
    }
}

} // namespace

namespace
{

// flex_awq_ssz on UpDownSubgraph(up, down = w) with msModelSlim's glm_5
// W4A8 qconfig (int8 per_token activations, int4 per_channel ssz weights,
// ext.step 10): the error per alpha, the chosen alpha 0.5 and its error,
// the activation means and the fusion scales.  Tolerances as above (the
// curve goes through SSZ's float32 sums and two matmuls: rel 1e-5; the
// means are float32 means of 64 values: rel 1e-6).
TEST (FlexAwqSszOracle, UpDownW4A8)
{
  const std::string p = "flex_awq_ssz_up_down_w4a8.";
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> w = oracle_f32 ("input.w.npy");
  ASSERT_EQ (w.size (), (size_t)(N_Q * N_CH));
  SlimSmoothStats *st = slim_smooth_stats_new (N_CH, FALSE);
  slim_smooth_stats_update (st, x.data (), N_TOK);

  struct Ctx
  {
    SlimFlexAwqWeightQuant quant;
    const std::vector<float> *x, *w;
    const SlimSmoothStats *st;
    std::vector<float> ones, s, col, wdq;
  } c;
  GError *error = nullptr;
  ASSERT_TRUE (slim_qparams_config_init (&c.quant.qparams, SLIM_QDTYPE_INT4, TRUE, 0, &error));
  c.quant.ssz = TRUE;
  slim_ssz_config_init (&c.quant.ssz_cfg, &c.quant.qparams);
  c.quant.ssz_cfg.step = 10;
  c.x = &x;
  c.w = &w;
  c.st = st;
  c.ones.assign (N_CH, 1.0f);
  c.s.resize (N_CH);
  c.col.resize (N_CH);
  c.wdq.resize (w.size ());
  auto eval
      = [] (double alpha, double beta, float *out, gpointer user_data, GError **err) -> gboolean {
    Ctx *c = static_cast<Ctx *> (user_data);
    double e = 0.0, r = 0.0;
    slim_flex_candidate_scales (c->st->smooth, c->ones.data (), N_CH, alpha, beta, c->s.data ());
    if (!slim_flex_awq_candidate_weight (&c->quant, c->w->data (), N_Q, N_CH, c->s.data (),
                                         c->wdq.data (), err))
      return FALSE;
    slim_flex_awq_act_scales (c->st->min, c->st->max, c->s.data (), N_CH, c->col.data ());
    EXPECT_TRUE (slim_flex_awq_accumulate_error (c->x->data (), N_TOK, N_CH, c->w->data (),
                                                 c->wdq.data (), N_Q, c->s.data (), c->col.data (),
                                                 &e, &r));
    *out = slim_flex_error (e, r);
    return TRUE;
  };
  std::vector<float> curve (SLIM_FLEX_GRID_POINTS);
  double alpha = -1.0;
  float best = 0.0f;
  ASSERT_TRUE (slim_flex_awq_search_alpha (+eval, &c, &alpha, &best, curve.data (), &error))
      << (error ? error->message : "");
  expect_rel (curve, oracle_f64 (p + "mse_per_alpha.npy"), 1e-5, "mse_per_alpha");
  EXPECT_DOUBLE_EQ (alpha, 0.5);
  EXPECT_NEAR (best, 0.1291113793849945, 1e-5 * 0.1291113793849945);

  std::vector<float> mean (N_CH);
  for (int64_t j = 0; j < N_CH; j++)
    {
      double sum = 0.0;
      for (int64_t t = 0; t < N_TOK; t++)
        sum += std::fabs ((double)x[(size_t)(t * N_CH + j)]);
      mean[(size_t)j] = (float)(sum / (double)N_TOK);
    }
  expect_rel (mean, oracle_f32 (p + "act_mean_abs.npy"), 1e-6, "act_mean_abs");
  std::vector<float> scales (N_CH);
  slim_smooth_scales (mean.data (), c.ones.data (), N_CH, alpha, 0.0, 1e-5f, 1e-5f, scales.data ());
  expect_rel (scales, oracle_f32 (p + "fusion_scales.npy"), 1e-5, "fusion_scales");
  slim_smooth_stats_free (st);
}

// The per-channel activation step and the sgemm kernel against the plain
// twin (tolerances as for AccumulateErrorEqualsReference).
TEST (FlexSmoothKernels, AwqAccumulateErrorEqualsReference)
{
  std::mt19937 gen (11);
  std::normal_distribution<float> dist (0.0f, 1.0f);
  const int64_t n_in = 80, n_out = 24, n_tok = 300;
  std::vector<float> w ((size_t)(n_out * n_in)), wdq (w.size ()), s ((size_t)n_in),
      x ((size_t)(n_tok * n_in)), mn ((size_t)n_in, INFINITY), mx ((size_t)n_in, -INFINITY),
      col ((size_t)n_in);
  for (float &v : w)
    v = 0.05f * dist (gen);
  for (float &v : x)
    v = dist (gen);
  for (int64_t j = 0; j < n_in; j++)
    s[(size_t)j] = 0.5f + 0.02f * (float)j;
  for (int64_t t = 0; t < n_tok; t++)
    for (int64_t j = 0; j < n_in; j++)
      {
        mn[(size_t)j] = std::min (mn[(size_t)j], x[(size_t)(t * n_in + j)]);
        mx[(size_t)j] = std::max (mx[(size_t)j], x[(size_t)(t * n_in + j)]);
      }
  SlimFlexAwqWeightQuant quant = {};
  ASSERT_TRUE (slim_qparams_config_init (&quant.qparams, SLIM_QDTYPE_INT8, TRUE, 0, nullptr));
  ASSERT_TRUE (slim_flex_awq_candidate_weight (&quant, w.data (), n_out, n_in, s.data (),
                                               wdq.data (), nullptr));
  slim_flex_awq_act_scales (mn.data (), mx.data (), s.data (), n_in, col.data ());
  double e1 = 0.0, r1 = 0.0, e2 = 0.0, r2 = 0.0;
  ASSERT_TRUE (slim_flex_awq_accumulate_error (x.data (), n_tok, n_in, w.data (), wdq.data (),
                                               n_out, s.data (), col.data (), &e1, &r1));
  ASSERT_TRUE (slim_flex_awq_accumulate_error_ref (x.data (), n_tok, n_in, w.data (), wdq.data (),
                                                   n_out, s.data (), col.data (), &e2, &r2));
  EXPECT_NEAR (r1, r2, 1e-5 * r2);
  EXPECT_NEAR (e1, e2, 1e-3 * e2);
  EXPECT_GT (e2, 0.0);
}

} // namespace
