// SPDX-License-Identifier: Apache-2.0
//
// test-gptq.cpp: GPTQ numerics (slim-gptq) against msModelSlim's oracle
// vectors (../shared/oracle, cases gptq_*: WeightPerChannelGPTQ /
// WeightPerGroupGPTQ on input.w (96 x 256) with one calibration batch
// input.x (64 x 256)), against the float64 reference path, and on bad
// inputs.
//
// Tolerances: the oracle README asks rel ~1e-5 for what goes through
// Cholesky/BLAS. Measured on OpenBLAS's SkylakeX/Cooperlake kernels (this
// machine): the Hessian diagonal is bit-equal, every code q equals the
// oracle's (0 of 24576 differ in each case) and so do the scales and
// offsets; there the tests require exactly that. This needs OpenBLAS's
// threaded potrf/potri, which slim-linalg always uses (its one-thread
// algorithm leaves the codes equal but moves per-group scales by up to
// 1.4e-5). On other kernel sets the bounds in GptqOracle apply (measured
// per kernel set there). Against the float64 reference the float32 path
// rounds differently: measured 0 codes differ without act_order and at
// most 21 of 24576 (by one step) with it, scales within 2.1e-5 (with
// Sandybridge kernels: 51 codes, up to two steps, 4 scales beyond 1e-4);
// the bounds: 1% of the codes, two steps, 2% of the scales beyond 1e-4,
// output error within 2%.
#include "oracle.h"
#include "slim-test.h"

extern "C"
{
#include "slim-error.h"
#include "slim-gptq.h"
#include "slim-linalg.h"
#include "slim-qparams.h"
}

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace
{

constexpr int64_t N_OUT = 96;
constexpr int64_t N_IN = 256;
constexpr int64_t N_TOK = 64;

struct GptqCase
{
  const char *name;
  SlimQDtype dtype;
  SlimQScope scope;
  bool symmetric;
  int64_t group_size;
  int64_t block_size;
  double percdamp;
  double min_rtn_ratio; // measured RTN / GPTQ output error, less a 5% margin
};

void
PrintTo (const GptqCase &c, std::ostream *os)
{
  *os << c.name;
}

// Measured RTN / GPTQ ratios: 5.29, 3.99, 4.49, 3.54, 2.90, 3.09 (the
// per-group ratios are against RTN with the same groups).
const GptqCase kCases[] = {
  { "gptq_int8_per_channel_sym", SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, true, 128, 128, 0.01,
    5.0 },
  { "gptq_int4_per_channel_sym", SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, true, 128, 128, 0.01,
    3.8 },
  { "gptq_int4_per_channel_asym", SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, false, 128, 128, 0.01,
    4.25 },
  { "gptq_int4_per_group32_sym", SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, true, 32, 128, 0.01,
    3.35 },
  { "gptq_int4_per_group64_asym", SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, false, 64, 128, 0.01,
    2.75 },
  { "gptq_int8_per_group64_sym_bs64_damp0.05", SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_GROUP, true, 64,
    64, 0.05, 2.9 },
};

SlimGptqConfig
make_config (const GptqCase &c)
{
  SlimQParamsConfig qcfg;
  SlimGptqConfig cfg;
  GError *error = nullptr;

  EXPECT_TRUE (slim_qparams_config_init (&qcfg, c.dtype, c.symmetric, 0, &error));
  GErrorPtr guard (error);
  slim_gptq_config_init (&cfg, &qcfg, c.scope);
  cfg.group_size = c.group_size;
  cfg.block_size = c.block_size;
  cfg.percdamp = c.percdamp;
  return cfg;
}

struct HessianDeleter
{
  void
  operator() (SlimGptqHessian *h) const
  {
    slim_gptq_hessian_clear (h);
    delete h;
  }
};
using HessianPtr = std::unique_ptr<SlimGptqHessian, HessianDeleter>;

HessianPtr
make_hessian (const std::vector<float> &x, int64_t n_rows, int64_t n_in)
{
  HessianPtr h (new SlimGptqHessian ());
  GError *error = nullptr;

  EXPECT_TRUE (slim_gptq_hessian_init (h.get (), n_in, &error));
  EXPECT_TRUE (slim_gptq_hessian_add_batch (h.get (), x.data (), n_rows, &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  return h;
}

struct QuantResult
{
  std::vector<float> scale, offset, dq;
  std::vector<int8_t> q;
  bool ok = false;
};

QuantResult
run_gptq (const SlimGptqConfig &cfg, const SlimGptqHessian *h, const std::vector<float> &w)
{
  QuantResult r;
  gint64 n_params = 0;
  GError *error = nullptr;

  EXPECT_TRUE (slim_gptq_get_n_params (&cfg, N_OUT, N_IN, &n_params, &error));
  r.scale.resize (n_params);
  r.offset.resize (n_params);
  r.q.resize (N_OUT * N_IN);
  r.dq.resize (N_OUT * N_IN);
  r.ok = slim_gptq_quantize (&cfg, h, w.data (), N_OUT, N_IN, r.scale.data (), r.offset.data (),
                             (gint8 *)r.q.data (), r.dq.data (), &error);
  EXPECT_TRUE (r.ok) << (error ? error->message : "");
  g_clear_error (&error);
  return r;
}

QuantResult
run_gptq_ref (const SlimGptqConfig &cfg,
              const std::vector<double> &h,
              int64_t n_samples,
              const std::vector<float> &w)
{
  QuantResult r;
  gint64 n_params = 0;
  GError *error = nullptr;

  EXPECT_TRUE (slim_gptq_get_n_params (&cfg, N_OUT, N_IN, &n_params, &error));
  r.scale.resize (n_params);
  r.offset.resize (n_params);
  r.q.resize (N_OUT * N_IN);
  r.dq.resize (N_OUT * N_IN);
  r.ok
      = slim_gptq_quantize_ref (&cfg, h.data (), n_samples, w.data (), N_OUT, N_IN, r.scale.data (),
                                r.offset.data (), (gint8 *)r.q.data (), r.dq.data (), &error);
  EXPECT_TRUE (r.ok) << (error ? error->message : "");
  g_clear_error (&error);
  return r;
}

// minmax round-to-nearest with the same scheme (msModelSlim's baseline).
std::vector<float>
run_rtn (const SlimGptqConfig &cfg, const std::vector<float> &w)
{
  gint64 n_params = 0;
  GError *error = nullptr;

  EXPECT_TRUE (slim_gptq_get_n_params (&cfg, N_OUT, N_IN, &n_params, &error));
  std::vector<float> scale (n_params), offset (n_params), dq (N_OUT * N_IN);
  std::vector<int8_t> q (N_OUT * N_IN);
  EXPECT_TRUE (slim_quantize_weight (&cfg.qparams, cfg.scope, w.data (), N_OUT, N_IN,
                                     cfg.group_size, scale.data (), offset.data (),
                                     (gint8 *)q.data (), &error));
  g_clear_error (&error);
  // dequantize with the layout slim_quantize_weight uses: n_params rows
  slim_dequantize_rows ((const gint8 *)q.data (), n_params, N_OUT * N_IN / n_params, scale.data (),
                        offset.data (), n_params, dq.data ());
  return dq;
}

// RMS of x (W - Ŵ)ᵀ over the calibration rows, in float64.
double
output_rms_error (const std::vector<float> &x,
                  int64_t n_rows,
                  const std::vector<float> &w,
                  const std::vector<float> &dq)
{
  double sum = 0.0;
  for (int64_t t = 0; t < n_rows; t++)
    for (int64_t o = 0; o < N_OUT; o++)
      {
        double y = 0.0;
        for (int64_t k = 0; k < N_IN; k++)
          y += (double)x[t * N_IN + k] * ((double)w[o * N_IN + k] - (double)dq[o * N_IN + k]);
        sum += y * y;
      }
  return std::sqrt (sum / (double)(n_rows * N_OUT));
}

int64_t
count_differences (const std::vector<int8_t> &a, const std::vector<int8_t> &b)
{
  int64_t n = 0;
  for (size_t i = 0; i < a.size (); i++)
    n += a[i] != b[i];
  return n;
}

double
max_rel_diff (const std::vector<float> &a, const std::vector<float> &b)
{
  double m = 0.0;
  for (size_t i = 0; i < a.size (); i++)
    {
      double d = std::fabs ((double)a[i] - (double)b[i]);
      double s = std::fmax (std::fabs ((double)b[i]), 1e-30);
      m = std::fmax (m, d / s);
    }
  return m;
}

std::vector<double>
hessian_ref (const std::vector<float> &x, int64_t n_rows, int64_t n_in, int64_t *n_samples)
{
  std::vector<double> h (n_in * n_in, 0.0);
  *n_samples = 0;
  slim_gptq_hessian_add_batch_ref (h.data (), n_in, n_samples, x.data (), n_rows);
  return h;
}

} // namespace

// ===========================================================================
// Hessian
// ===========================================================================

TEST (GptqHessian, OracleAddBatch)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> diag = oracle_f32 ("gptq_hessian_add_batch.hessian_diag.npy");
  ASSERT_EQ (x.size (), (size_t)(N_TOK * N_IN));
  ASSERT_EQ (diag.size (), (size_t)N_IN);

  HessianPtr h = make_hessian (x, N_TOK, N_IN);
  EXPECT_EQ (h->n_samples, 64);
  int64_t n_diff = 0;
  double max_rel = 0.0, sum = 0.0;
  for (int64_t j = 0; j < N_IN; j++)
    {
      float v = h->data[j * N_IN + j];
      n_diff += v != diag[j];
      max_rel = std::fmax (max_rel, std::fabs ((double)v - diag[j]) / std::fabs ((double)diag[j]));
    }
  for (int64_t i = 0; i < N_IN * N_IN; i++)
    sum += (double)h->data[i];
  std::printf (
      "hessian diag: %ld of %ld differ, max rel %.3g; sum %.12g (oracle 6894.61234607461)\n",
      (long)n_diff, (long)N_IN, max_rel, sum);
  EXPECT_LE (max_rel, 1e-6);
  EXPECT_NEAR (sum, 6894.61234607461, 6894.61234607461 * 1e-5);

  // symmetric, and the float64 twin within float32 accumulation error
  int64_t n_ref = 0;
  std::vector<double> href = hessian_ref (x, N_TOK, N_IN, &n_ref);
  EXPECT_EQ (n_ref, 64);
  double max_abs = 0.0, scale = 0.0;
  for (int64_t i = 0; i < N_IN; i++)
    for (int64_t j = 0; j < N_IN; j++)
      {
        EXPECT_EQ (h->data[i * N_IN + j], h->data[j * N_IN + i]);
        max_abs = std::fmax (max_abs, std::fabs (h->data[i * N_IN + j] - href[i * N_IN + j]));
        scale = std::fmax (scale, std::fabs (href[i * N_IN + j]));
      }
  EXPECT_LE (max_abs / scale, 1e-6);
}

// Two batches: the running average n/(n+t) weights them by their row counts.
TEST (GptqHessian, RunningAverageOverBatches)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  HessianPtr whole = make_hessian (x, N_TOK, N_IN);
  HessianPtr split (new SlimGptqHessian ());
  GError *error = nullptr;
  ASSERT_TRUE (slim_gptq_hessian_init (split.get (), N_IN, &error));
  ASSERT_TRUE (slim_gptq_hessian_add_batch (split.get (), x.data (), 24, &error));
  ASSERT_TRUE (slim_gptq_hessian_add_batch (split.get (), x.data () + 24 * N_IN, 0, &error));
  ASSERT_TRUE (slim_gptq_hessian_add_batch (split.get (), x.data () + 24 * N_IN, 40, &error));
  EXPECT_EQ (split->n_samples, 64);

  int64_t n_ref = 0;
  std::vector<double> href (N_IN * N_IN, 0.0);
  slim_gptq_hessian_add_batch_ref (href.data (), N_IN, &n_ref, x.data (), 24);
  slim_gptq_hessian_add_batch_ref (href.data (), N_IN, &n_ref, x.data () + 24 * N_IN, 40);
  std::vector<double> hwhole = hessian_ref (x, N_TOK, N_IN, &n_ref);
  double max_rel = 0.0, max_rel_ref = 0.0, scale = 0.0;
  for (int64_t i = 0; i < N_IN * N_IN; i++)
    scale = std::fmax (scale, std::fabs (hwhole[i]));
  for (int64_t i = 0; i < N_IN * N_IN; i++)
    {
      max_rel = std::fmax (max_rel, std::fabs (split->data[i] - whole->data[i]) / scale);
      max_rel_ref = std::fmax (max_rel_ref, std::fabs (href[i] - hwhole[i]) / scale);
    }
  EXPECT_LE (max_rel, 1e-6);
  EXPECT_LE (max_rel_ref, 1e-12);
}

// ===========================================================================
// Oracle cases
// ===========================================================================

class GptqOracle : public ::testing::TestWithParam<GptqCase>
{
};

TEST_P (GptqOracle, MatchesMsModelSlim)
{
  const GptqCase &c = GetParam ();
  const std::string base = c.name;
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> scale = oracle_f32 (base + ".scale.npy");
  std::vector<float> offset = oracle_f32 (base + ".offset.npy");
  std::vector<int8_t> q = oracle_i8 (base + ".q.npy");
  SlimGptqConfig cfg = make_config (c);
  HessianPtr h = make_hessian (x, N_TOK, N_IN);
  std::vector<float> h_before (h->data, h->data + N_IN * N_IN);

  QuantResult r = run_gptq (cfg, h.get (), w);
  ASSERT_TRUE (r.ok);
  ASSERT_EQ (r.scale.size (), scale.size ());
  int64_t n_q = count_differences (r.q, q), max_step = 0, n_far_scales = 0;
  for (size_t i = 0; i < q.size (); i++)
    max_step = std::max<int64_t> (max_step, std::abs ((int)r.q[i] - (int)q[i]));
  for (size_t i = 0; i < scale.size (); i++)
    n_far_scales += std::fabs (r.scale[i] - scale[i]) > 1e-4 * std::fabs (scale[i]);
  double rel_scale = max_rel_diff (r.scale, scale);
  double max_offset = 0.0;
  for (size_t i = 0; i < offset.size (); i++)
    max_offset = std::fmax (max_offset, std::fabs (r.offset[i] - offset[i]));
  // msModelSlim's own output error, from its codes
  int64_t n_groups = (int64_t)scale.size () / N_OUT;
  std::vector<float> oracle_dq (N_OUT * N_IN);
  for (int64_t o = 0; o < N_OUT; o++)
    for (int64_t k = 0; k < N_IN; k++)
      {
        int64_t p = o * n_groups + k / (N_IN / n_groups);
        oracle_dq[o * N_IN + k] = ((float)q[o * N_IN + k] - offset[p]) * scale[p];
      }
  double e_oracle = output_rms_error (x, N_TOK, w, oracle_dq);
  double e_ours = output_rms_error (x, N_TOK, w, r.dq);
  const std::string core = slim_linalg_get_core_name ();
  std::printf ("%s [%s]: q differ %ld / %ld (max step %ld), scale max rel %.3g (%ld beyond 1e-4), "
               "offset max abs %g, output error %.6g vs oracle %.6g\n",
               c.name, core.c_str (), (long)n_q, (long)q.size (), (long)max_step, rel_scale,
               (long)n_far_scales, max_offset, e_ours, e_oracle);
  if (core == "SkylakeX" || core == "Cooperlake")
    {
      // the kernels the oracle matches bit for bit
      EXPECT_EQ (n_q, 0);
      EXPECT_EQ (rel_scale, 0.0);
      EXPECT_EQ (max_offset, 0.0);
    }
  else
    {
      // other kernel sets round the float32 BLAS steps differently and
      // GPTQ on 64 tokens amplifies that. Measured with OPENBLAS_CORETYPE:
      // Haswell/Zen 2 codes by one step, scales within 8.8e-6; Nehalem 0
      // codes; Sandybridge (worst) 51 codes by up to two steps, 4 group
      // scales beyond 1e-4 (one 7%), output error +0.03%.
      EXPECT_LE (n_q, (int64_t)q.size () / 200);
      EXPECT_LE (max_step, 2);
      EXPECT_LE (n_far_scales, (int64_t)scale.size () / 50 + 1);
      EXPECT_LE (max_offset, 1.0);
      EXPECT_NEAR (e_ours, e_oracle, 0.02 * e_oracle);
    }
  // dq is (q - offset) * scale
  for (int64_t o = 0; o < N_OUT; o++)
    for (int64_t k = 0; k < N_IN; k++)
      {
        int64_t p = o * n_groups + k / (N_IN / n_groups);
        ASSERT_EQ (r.dq[o * N_IN + k], ((float)r.q[o * N_IN + k] - r.offset[p]) * r.scale[p]);
      }
  // the shared Hessian is not modified
  EXPECT_EQ (std::memcmp (h_before.data (), h->data, h_before.size () * sizeof (float)), 0);
}

INSTANTIATE_TEST_SUITE_P (Cases,
                          GptqOracle,
                          ::testing::ValuesIn (kCases),
                          [] (const ::testing::TestParamInfo<GptqCase> &info) {
                            std::string n = info.param.name;
                            for (char &ch : n)
                              if (!std::isalnum ((unsigned char)ch))
                                ch = '_';
                            return n;
                          });

// ===========================================================================
// Output error against round-to-nearest, float64 reference, act_order
// ===========================================================================

class GptqQuality : public ::testing::TestWithParam<GptqCase>
{
};

// msModelSlim's GPTQ gives a 3.5-5x lower output RMS error than minmax RTN
// on the oracle inputs (oracle README; per channel and group 32 here, the
// group-64 cases reach 2.9-3.1x against RTN with the same groups). The
// codes equal msModelSlim's, so these are its ratios; asserted with a 5%
// margin.
TEST_P (GptqQuality, BeatsRoundToNearest)
{
  const GptqCase &c = GetParam ();
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  SlimGptqConfig cfg = make_config (c);
  HessianPtr h = make_hessian (x, N_TOK, N_IN);

  QuantResult r = run_gptq (cfg, h.get (), w);
  ASSERT_TRUE (r.ok);
  std::vector<float> rtn = run_rtn (cfg, w);
  double e_gptq = output_rms_error (x, N_TOK, w, r.dq);
  double e_rtn = output_rms_error (x, N_TOK, w, rtn);
  std::printf ("%s: output RMS error gptq %.6g, rtn %.6g, ratio %.3f\n", c.name, e_gptq, e_rtn,
               e_rtn / e_gptq);
  EXPECT_GE (e_rtn / e_gptq, c.min_rtn_ratio);
}

TEST_P (GptqQuality, MatchesFloat64Reference)
{
  const GptqCase &c = GetParam ();
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  SlimGptqConfig cfg = make_config (c);
  HessianPtr h = make_hessian (x, N_TOK, N_IN);
  std::vector<double> hd (h->data, h->data + N_IN * N_IN);

  for (bool act_order : { false, true })
    {
      cfg.act_order = act_order;
      QuantResult r = run_gptq (cfg, h.get (), w);
      QuantResult ref = run_gptq_ref (cfg, hd, h->n_samples, w);
      ASSERT_TRUE (r.ok && ref.ok);
      int64_t n_q = count_differences (r.q, ref.q);
      int64_t max_step = 0, n_far_scales = 0;
      for (size_t i = 0; i < r.q.size (); i++)
        max_step = std::max<int64_t> (max_step, std::abs ((int)r.q[i] - (int)ref.q[i]));
      for (size_t i = 0; i < r.scale.size (); i++)
        n_far_scales += std::fabs (r.scale[i] - ref.scale[i]) > 1e-4 * std::fabs (ref.scale[i]);
      double rel_scale = max_rel_diff (r.scale, ref.scale);
      double e_opt = output_rms_error (x, N_TOK, w, r.dq);
      double e_ref = output_rms_error (x, N_TOK, w, ref.dq);
      std::printf ("%s act_order=%d: vs float64 reference q differ %ld (max step %ld), scale "
                   "max rel %.3g (%ld beyond 1e-4), error %.6g vs %.6g\n",
                   c.name, (int)act_order, (long)n_q, (long)max_step, rel_scale, (long)n_far_scales,
                   e_opt, e_ref);
      // float32 vs float64 moves codes that sit near a rounding boundary,
      // and GPTQ carries such a move into the row's later columns
      EXPECT_LE (n_q, (int64_t)r.q.size () / 100);
      EXPECT_LE (max_step, 2);
      EXPECT_LE (n_far_scales, (int64_t)r.scale.size () / 50 + 1);
      EXPECT_NEAR (e_opt, e_ref, 0.02 * e_ref);
    }
}

// act_order has no oracle: it must keep the saved layout (checked by
// dequantizing with the returned per-column parameters) and lower the
// output error on the oracle inputs.
TEST_P (GptqQuality, ActOrderLowersError)
{
  const GptqCase &c = GetParam ();
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  SlimGptqConfig cfg = make_config (c);
  HessianPtr h = make_hessian (x, N_TOK, N_IN);

  QuantResult plain = run_gptq (cfg, h.get (), w);
  cfg.act_order = TRUE;
  QuantResult ordered = run_gptq (cfg, h.get (), w);
  ASSERT_TRUE (plain.ok && ordered.ok);
  int64_t n_groups = (int64_t)ordered.scale.size () / N_OUT;
  for (int64_t o = 0; o < N_OUT; o++)
    for (int64_t k = 0; k < N_IN; k++)
      {
        int64_t p = o * n_groups + k / (N_IN / n_groups);
        ASSERT_EQ (ordered.dq[o * N_IN + k],
                   ((float)ordered.q[o * N_IN + k] - ordered.offset[p]) * ordered.scale[p]);
      }
  double e_plain = output_rms_error (x, N_TOK, w, plain.dq);
  double e_ordered = output_rms_error (x, N_TOK, w, ordered.dq);
  std::printf ("%s: output RMS error act_order %.6g vs %.6g (%.3fx)\n", c.name, e_ordered, e_plain,
               e_plain / e_ordered);
  // measured 1.9x (group 32) to 2.8x lower
  EXPECT_LT (e_ordered, 0.7 * e_plain);
}

INSTANTIATE_TEST_SUITE_P (Cases,
                          GptqQuality,
                          ::testing::ValuesIn (kCases),
                          [] (const ::testing::TestParamInfo<GptqCase> &info) {
                            std::string n = info.param.name;
                            for (char &ch : n)
                              if (!std::isalnum ((unsigned char)ch))
                                ch = '_';
                            return n;
                          });

// ===========================================================================
// Shared Hessian, dead inputs
// ===========================================================================

// q/k/v read the same input: one accumulation (and one factorisation)
// serves all of them and gives what one of each per linear gives.
TEST (Gptq, SharedHessianEqualsOwnHessian)
{
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> w2 = oracle_f32 ("input.w2.npy"); // (64, 256)
  std::vector<float> x = oracle_f32 ("input.x.npy");
  SlimGptqConfig cfg = make_config (kCases[3]);
  HessianPtr shared = make_hessian (x, N_TOK, N_IN);
  HessianPtr own = make_hessian (x, N_TOK, N_IN);
  GError *error = nullptr;

  QuantResult a = run_gptq (cfg, shared.get (), w);
  std::vector<float> s1 (64 * N_IN / cfg.group_size), o1 (s1.size ()), s2 (s1.size ()),
      o2 (s1.size ());
  std::vector<int8_t> q1 (64 * N_IN), q2 (64 * N_IN);
  ASSERT_TRUE (slim_gptq_quantize (&cfg, shared.get (), w2.data (), 64, N_IN, s1.data (),
                                   o1.data (), (gint8 *)q1.data (), nullptr, &error));
  ASSERT_TRUE (slim_gptq_quantize (&cfg, own.get (), w2.data (), 64, N_IN, s2.data (), o2.data (),
                                   (gint8 *)q2.data (), nullptr, &error));
  QuantResult b = run_gptq (cfg, own.get (), w);
  EXPECT_EQ (q1, q2);
  EXPECT_EQ (s1, s2);
  EXPECT_EQ (a.q, b.q);
  EXPECT_EQ (a.scale, b.scale);

  // one factorisation for both linears: the same bits
  for (bool act_order : { false, true })
    {
      cfg.act_order = act_order;
      SlimGptqFactor factor;
      ASSERT_TRUE (slim_gptq_factor_init (&factor, shared.get (), cfg.percdamp, act_order, &error));
      QuantResult direct = run_gptq (cfg, shared.get (), w);
      QuantResult f (direct);
      ASSERT_TRUE (slim_gptq_quantize_factored (&cfg, &factor, w.data (), N_OUT, N_IN,
                                                f.scale.data (), f.offset.data (),
                                                (gint8 *)f.q.data (), f.dq.data (), &error));
      EXPECT_EQ (f.q, direct.q);
      EXPECT_EQ (f.scale, direct.scale);
      EXPECT_EQ (f.dq, direct.dq);
      std::vector<int8_t> q3 (64 * N_IN);
      ASSERT_TRUE (slim_gptq_quantize_factored (&cfg, &factor, w2.data (), 64, N_IN, s1.data (),
                                                o1.data (), (gint8 *)q3.data (), nullptr, &error));
      ASSERT_TRUE (slim_gptq_quantize (&cfg, shared.get (), w2.data (), 64, N_IN, s2.data (),
                                       o2.data (), (gint8 *)q2.data (), nullptr, &error));
      EXPECT_EQ (q3, q2);
      EXPECT_EQ (s1, s2);

      // a factor made with other settings is refused
      SlimGptqConfig other = cfg;
      other.percdamp = 0.05;
      EXPECT_FALSE (slim_gptq_quantize_factored (&other, &factor, w.data (), N_OUT, N_IN,
                                                 f.scale.data (), f.offset.data (),
                                                 (gint8 *)f.q.data (), nullptr, &error));
      EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
      g_clear_error (&error);
      slim_gptq_factor_clear (&factor);
    }
}

// An input channel that is always zero: H[j][j] = 0 -> 1, W[:, j] := 0
// (quantized to exactly zero), everything finite.
TEST (Gptq, DeadInputColumns)
{
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  const int64_t dead[] = { 0, 7, 100, 255 };
  for (int64_t j : dead)
    for (int64_t t = 0; t < N_TOK; t++)
      x[t * N_IN + j] = 0.0f;
  HessianPtr h = make_hessian (x, N_TOK, N_IN);
  std::vector<double> hd (h->data, h->data + N_IN * N_IN);

  for (const GptqCase &c : kCases)
    {
      SlimGptqConfig cfg = make_config (c);
      for (bool act_order : { false, true })
        {
          cfg.act_order = act_order;
          QuantResult r = run_gptq (cfg, h.get (), w);
          QuantResult ref = run_gptq_ref (cfg, hd, h->n_samples, w);
          ASSERT_TRUE (r.ok && ref.ok);
          for (float v : r.dq)
            ASSERT_TRUE (std::isfinite (v)) << c.name;
          for (int64_t j : dead)
            for (int64_t o = 0; o < N_OUT; o++)
              {
                EXPECT_EQ (r.dq[o * N_IN + j], 0.0f) << c.name << " column " << j;
                EXPECT_EQ (ref.dq[o * N_IN + j], 0.0f) << c.name << " column " << j;
              }
          EXPECT_LE (count_differences (r.q, ref.q), (int64_t)r.q.size () / 100) << c.name;
        }
    }
}

// ===========================================================================
// LAPACK wrappers
// ===========================================================================

TEST (GptqLinalg, CholeskyAndInverseReconstruct)
{
  const int64_t n = 160; // above OpenBLAS's blocking threshold
  std::mt19937 rng (7);
  std::normal_distribution<float> dist (0.0f, 1.0f);
  std::vector<float> x (200 * n), a (n * n, 0.0f), ref (n * n, 0.0f);
  for (float &v : x)
    v = dist (rng);
  slim_linalg_ssyrk_t (n, 200, 1.0f / 200, x.data (), n, 0.0f, a.data (), n);
  slim_linalg_ssyrk_t_ref (n, 200, 1.0f / 200, x.data (), n, 0.0f, ref.data (), n);
  double max_syrk = 0.0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i; j < n; j++)
      max_syrk = std::fmax (max_syrk, std::fabs (a[i * n + j] - ref[i * n + j]));
  EXPECT_LE (max_syrk, 1e-5);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i + 1; j < n; j++)
      a[j * n + i] = a[i * n + j];

  for (SlimLinalgTriangle tri : { SLIM_LINALG_LOWER, SLIM_LINALG_UPPER })
    {
      std::vector<float> f = a;
      ASSERT_EQ (slim_linalg_spotrf (tri, n, f.data (), n), 0);
      // L Lᵀ (or Uᵀ U) reconstructs A
      double max_err = 0.0;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
          {
            double s = 0.0;
            for (int64_t k = 0; k <= std::min (i, j); k++)
              s += tri == SLIM_LINALG_LOWER ? (double)f[i * n + k] * f[j * n + k]
                                            : (double)f[k * n + i] * f[k * n + j];
            max_err = std::fmax (max_err, std::fabs (s - a[i * n + j]));
          }
      EXPECT_LE (max_err, 1e-4);
      ASSERT_EQ (slim_linalg_spotri (tri, n, f.data (), n), 0);
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
          if (tri == SLIM_LINALG_LOWER ? j > i : j < i)
            f[i * n + j] = f[j * n + i]; // fill the other triangle
      double max_id = 0.0;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
          {
            double s = 0.0;
            for (int64_t k = 0; k < n; k++)
              s += (double)a[i * n + k] * f[k * n + j];
            max_id = std::fmax (max_id, std::fabs (s - (i == j ? 1.0 : 0.0)));
          }
      EXPECT_LE (max_id, 1e-3);
    }

  // not positive definite: LAPACK's info names the minor
  std::vector<float> bad = a;
  bad[5 * n + 5] = -1.0f;
  EXPECT_EQ (slim_linalg_spotrf (SLIM_LINALG_UPPER, n, bad.data (), n), 6);
}

// With one thread configured the factorisations still run OpenBLAS's
// threaded algorithm (what the oracle recorded): the factor equals the one
// made with two threads, on every kernel set. On the SkylakeX/Cooperlake
// kernels every count >= 2 gives the same bits too (not on Haswell/Zen).
TEST (GptqLinalg, FactorisationRunsThreaded)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  HessianPtr h = make_hessian (x, N_TOK, N_IN);
  gint before = slim_linalg_get_n_threads ();
  auto factor_with = [&] (gint n_threads) {
    SlimGptqFactor f;
    GError *error = nullptr;
    std::vector<float> u;

    slim_linalg_set_n_threads (n_threads);
    EXPECT_TRUE (slim_gptq_factor_init (&f, h.get (), 0.01, FALSE, &error));
    g_clear_error (&error);
    if (f.u != nullptr)
      u.assign (f.u, f.u + N_IN * N_IN);
    slim_gptq_factor_clear (&f);
    return u;
  };

  std::vector<float> one = factor_with (1), two = factor_with (2);
  EXPECT_FALSE (one.empty ());
  EXPECT_EQ (one, two);
  const std::string core = slim_linalg_get_core_name ();
  if (core == "SkylakeX" || core == "Cooperlake")
    {
      EXPECT_EQ (one, factor_with (3));
    }
  slim_linalg_set_n_threads (before);
}

// ===========================================================================
// Bad inputs
// ===========================================================================

TEST (GptqBadInput, GroupSizeMustDivideInputs)
{
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  HessianPtr h = make_hessian (x, N_TOK, N_IN);
  SlimGptqConfig cfg = make_config (kCases[3]);
  cfg.group_size = 48; // 256 % 48 != 0
  std::vector<float> s (N_OUT * N_IN), o (N_OUT * N_IN);
  std::vector<int8_t> q (N_OUT * N_IN);
  GError *error = nullptr;
  gint64 n_params = 0;

  EXPECT_FALSE (slim_gptq_get_n_params (&cfg, N_OUT, N_IN, &n_params, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  g_clear_error (&error);
  EXPECT_FALSE (slim_gptq_quantize (&cfg, h.get (), w.data (), N_OUT, N_IN, s.data (), o.data (),
                                    (gint8 *)q.data (), nullptr, &error));
  ASSERT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  EXPECT_NE (std::string (error->message).find ("group_size"), std::string::npos) << error->message;
  g_clear_error (&error);
  std::vector<double> hd (h->data, h->data + N_IN * N_IN);
  EXPECT_FALSE (slim_gptq_quantize_ref (&cfg, hd.data (), h->n_samples, w.data (), N_OUT, N_IN,
                                        s.data (), o.data (), (gint8 *)q.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  g_clear_error (&error);
}

TEST (GptqBadInput, BadSettings)
{
  SlimGptqConfig base = make_config (kCases[0]);
  GError *error = nullptr;
  gint64 n_params = 0;
  struct
  {
    const char *what;
    void (*edit) (SlimGptqConfig *);
  } edits[] = {
    { "percdamp 0", [] (SlimGptqConfig *c) { c->percdamp = 0.0; } },
    { "percdamp -1", [] (SlimGptqConfig *c) { c->percdamp = -1.0; } },
    { "percdamp nan", [] (SlimGptqConfig *c) { c->percdamp = NAN; } },
    { "block_size 0", [] (SlimGptqConfig *c) { c->block_size = 0; } },
    { "per_tensor", [] (SlimGptqConfig *c) { c->scope = SLIM_QSCOPE_PER_TENSOR; } },
    { "max_bound", [] (SlimGptqConfig *c) { c->qparams.max_bound = 100; } },
  };
  for (auto &e : edits)
    {
      SlimGptqConfig cfg = base;
      e.edit (&cfg);
      EXPECT_FALSE (slim_gptq_get_n_params (&cfg, N_OUT, N_IN, &n_params, &error)) << e.what;
      EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE))
          << e.what;
      g_clear_error (&error);
    }
}

TEST (GptqBadInput, NoCalibrationSamples)
{
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  SlimGptqConfig cfg = make_config (kCases[0]);
  HessianPtr h (new SlimGptqHessian ());
  std::vector<float> s (N_OUT), o (N_OUT);
  std::vector<int8_t> q (N_OUT * N_IN);
  GError *error = nullptr;

  ASSERT_TRUE (slim_gptq_hessian_init (h.get (), N_IN, &error));
  ASSERT_TRUE (slim_gptq_hessian_add_batch (h.get (), x.data (), 0, &error)); // adds nothing
  EXPECT_EQ (h->n_samples, 0);
  EXPECT_FALSE (slim_gptq_quantize (&cfg, h.get (), w.data (), N_OUT, N_IN, s.data (), o.data (),
                                    (gint8 *)q.data (), nullptr, &error));
  ASSERT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED));
  EXPECT_NE (std::string (error->message).find ("no calibration data"), std::string::npos);
  g_clear_error (&error);
}

TEST (GptqBadInput, NonFiniteInputsAndShapes)
{
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  SlimGptqConfig cfg = make_config (kCases[0]);
  HessianPtr h = make_hessian (x, N_TOK, N_IN);
  std::vector<float> before (h->data, h->data + N_IN * N_IN);
  std::vector<float> s (N_OUT), o (N_OUT);
  std::vector<int8_t> q (N_OUT * N_IN);
  GError *error = nullptr;

  // a NaN in the calibration batch: rejected, the Hessian unchanged
  std::vector<float> xn = x;
  xn[5 * N_IN + 9] = NAN;
  EXPECT_FALSE (slim_gptq_hessian_add_batch (h.get (), xn.data (), N_TOK, &error));
  ASSERT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  EXPECT_NE (std::string (error->message).find ("row 5 column 9"), std::string::npos)
      << error->message;
  g_clear_error (&error);
  EXPECT_EQ (h->n_samples, N_TOK);
  EXPECT_EQ (std::memcmp (before.data (), h->data, before.size () * sizeof (float)), 0);

  // an infinite weight
  std::vector<float> wi = w;
  wi[3] = INFINITY;
  EXPECT_FALSE (slim_gptq_quantize (&cfg, h.get (), wi.data (), N_OUT, N_IN, s.data (), o.data (),
                                    (gint8 *)q.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);

  // a Hessian of another order
  EXPECT_FALSE (slim_gptq_quantize (&cfg, h.get (), w.data (), N_OUT * 2, N_IN / 2, s.data (),
                                    o.data (), (gint8 *)q.data (), nullptr, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);

  SlimGptqHessian none;
  EXPECT_FALSE (slim_gptq_hessian_init (&none, 0, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
  slim_gptq_hessian_clear (&none);
}

// Too few tokens: H = (2/n) x xᵀ has rank 1. The default damping keeps it
// positive definite (finite codes); a damping far below float32's rounding
// of H is not, and both paths say so instead of writing NaN.
TEST (GptqBadInput, SingularHessian)
{
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  HessianPtr h = make_hessian (x, 1, N_IN); // one token
  std::vector<double> hd (h->data, h->data + N_IN * N_IN);
  SlimGptqConfig cfg = make_config (kCases[1]);
  GError *error = nullptr;

  QuantResult ok = run_gptq (cfg, h.get (), w);
  ASSERT_TRUE (ok.ok);
  for (float v : ok.dq)
    ASSERT_TRUE (std::isfinite (v));

  cfg.percdamp = 1e-12;
  std::vector<float> s (N_OUT), o (N_OUT), dq (N_OUT * N_IN);
  std::vector<int8_t> q (N_OUT * N_IN);
  EXPECT_FALSE (slim_gptq_quantize (&cfg, h.get (), w.data (), N_OUT, N_IN, s.data (), o.data (),
                                    (gint8 *)q.data (), dq.data (), &error));
  ASSERT_TRUE (
      g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE));
  std::string message = error->message;
  std::printf ("singular Hessian: %s\n", message.c_str ());
  EXPECT_NE (message.find ("not positive definite"), std::string::npos);
  EXPECT_NE (message.find ("1 calibration rows"), std::string::npos);
  EXPECT_NE (message.find ("percdamp"), std::string::npos);
  g_clear_error (&error);

  // the float64 reference: exact rank 1 plus 1e-300 relative damping
  cfg.percdamp = 1e-300;
  EXPECT_FALSE (slim_gptq_quantize_ref (&cfg, hd.data (), h->n_samples, w.data (), N_OUT, N_IN,
                                        s.data (), o.data (), (gint8 *)q.data (), nullptr, &error));
  EXPECT_TRUE (
      g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE));
  g_clear_error (&error);
}
