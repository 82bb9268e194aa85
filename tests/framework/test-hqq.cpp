// SPDX-License-Identifier: Apache-2.0
//
// test-hqq.cpp: HQQ numerics (slim-hqq). One solver iteration is compared
// exactly with an independent transcription of the update written here
// (same float operations in the same order, so bit-equal); the full
// solver is checked for its invariants (codes in range, out = (q - z) *
// step exactly) and for its purpose: lower mean |w - w^| than minmax RTN
// on heavy-tailed weights (a strict inequality, no tolerance); bad
// configs are refused with a GError.
#include "slim-test.h"

extern "C"
{
#include "slim-error.h"
#include "slim-hqq.h"
#include "slim-qparams.h"
}

#include <cmath>
#include <random>
#include <vector>

namespace
{

std::vector<float>
heavy_tailed (int64_t n, unsigned seed, float scale = 0.02f)
{
  std::mt19937 rng (seed);
  std::student_t_distribution<float> t (3.0f);
  std::vector<float> w (n);
  for (auto &v : w)
    v = scale * t (rng);
  return w;
}

double
mean_abs_diff (const std::vector<float> &a, const std::vector<float> &b)
{
  double s = 0.0;
  for (size_t i = 0; i < a.size (); i++)
    s += std::fabs (a[i] - b[i]);
  return s / (double)a.size ();
}

TEST (Hqq, OneIterationMatchesTranscription)
{
  const int64_t rows = 2, cols = 16, gs = 8;
  // Scale 1 and 2 bits: rounding errors above (1 / beta)^(1 / (2 - p)) =
  // 0.17, where the shrinkage is not zero (at LLM weight scales it is).
  auto w = heavy_tailed (rows * cols, 3, 1.0f); /* [rows, cols] */
  SlimHqqConfig cfg;
  slim_hqq_config_init (&cfg, 2, gs);
  cfg.iters = 1;
  std::vector<float> out (w.size ()), step (rows * cols / gs), zero (step.size ());
  GError *error = nullptr;
  ASSERT_EQ (slim_hqq_fake_quantize (&cfg, w.data (), rows, cols, step.data (), zero.data (),
                                     nullptr, out.data (), &error),
             1u);
  ASSERT_EQ (error, nullptr);
  for (int64_t g = 0; g < rows * cols / gs; g++)
    {
      const float *x = w.data () + g * gs;
      float lo = x[0], hi = x[0];
      for (int64_t j = 1; j < gs; j++)
        lo = std::fmin (lo, x[j]), hi = std::fmax (hi, x[j]);
      float s = std::fmin (3.0f / (hi - lo), 2e4f), z = -lo * s;
      double acc = 0.0;
      for (int64_t j = 0; j < gs; j++)
        {
          float q = std::fmin (std::fmax (std::nearbyint (x[j] * s + z), 0.0f), 3.0f);
          float d = x[j] - (q - z) / s;
          float t = std::fabs (d) - std::pow (std::fabs (d), 0.7f - 1.0f) / 10.0f;
          float e = t > 0.0f ? std::copysign (t, d) : 0.0f;
          acc += q - (x[j] - e) * s;
        }
      z = (float)(acc / (double)gs);
      EXPECT_EQ (zero[g], z) << "group " << g;
      EXPECT_EQ (step[g], 1.0f / s) << "group " << g;
      for (int64_t j = 0; j < gs; j++)
        {
          float q = std::fmin (std::fmax (std::nearbyint (x[j] * s + z), 0.0f), 3.0f);
          EXPECT_EQ (out[g * gs + j], (q - z) * (1.0f / s));
        }
    }
}

TEST (Hqq, InvariantsAndBeatsMinmaxRtn)
{
  const int64_t rows = 32, cols = 256, gs = 64, ng = rows * cols / gs;
  auto w = heavy_tailed (rows * cols, 11); /* [rows, cols] */
  SlimHqqConfig cfg;
  slim_hqq_config_init (&cfg, 4, gs);
  std::vector<float> out (w.size ()), step (ng), zero (ng); /* [rows, cols], [ng], [ng] */
  std::vector<guint8> codes (w.size ());                    /* [rows, cols] */
  guint it = slim_hqq_fake_quantize (&cfg, w.data (), rows, cols, step.data (), zero.data (),
                                     codes.data (), out.data (), nullptr);
  ASSERT_GE (it, 1u);
  ASSERT_LE (it, 20u);
  for (int64_t i = 0; i < rows * cols; i++)
    {
      ASSERT_LE (codes[i], 15u);
      ASSERT_EQ (out[i], ((float)codes[i] - zero[i / gs]) * step[i / gs]);
    }
  // minmax RTN (asymmetric, integer zero point) with the same step
  std::vector<float> rtn (w.size ());
  for (int64_t g = 0; g < ng; g++)
    {
      const float *x = w.data () + g * gs;
      float lo = x[0], hi = x[0];
      for (int64_t j = 1; j < gs; j++)
        lo = std::fmin (lo, x[j]), hi = std::fmax (hi, x[j]);
      float st = (hi - lo) / 15.0f, z = std::nearbyint (-lo / st);
      for (int64_t j = 0; j < gs; j++)
        rtn[g * gs + j]
            = (std::fmin (std::fmax (std::nearbyint (x[j] / st) + z, 0.0f), 15.0f) - z) * st;
    }
  double e_hqq = mean_abs_diff (w, out), e_rtn = mean_abs_diff (w, rtn);
  std::printf ("mean |w - w^|: hqq %.6g (%u iters), minmax rtn %.6g\n", e_hqq, it, e_rtn);
  EXPECT_LT (e_hqq, e_rtn);
  // in place gives the same result
  std::vector<float> inplace (w);
  slim_hqq_fake_quantize (&cfg, inplace.data (), rows, cols, nullptr, nullptr, nullptr,
                          inplace.data (), nullptr);
  EXPECT_EQ (inplace, out);
}

TEST (Hqq, ConstantGroupIsKept)
{
  std::vector<float> w (64, 0.125f), out (64);
  SlimHqqConfig cfg;
  slim_hqq_config_init (&cfg, 4, 64);
  ASSERT_GE (slim_hqq_fake_quantize (&cfg, w.data (), 1, 64, nullptr, nullptr, nullptr, out.data (),
                                     nullptr),
             1u);
  for (float v : out)
    EXPECT_NEAR (v, 0.125f, 1e-6f); // (0 - z) / s with z = -0.125 * 2e4: float rounding only
}

TEST (Hqq, BadConfigIsRefused)
{
  std::vector<float> w (64, 0.0f), out (64);
  SlimHqqConfig cfg;
  slim_hqq_config_init (&cfg, 4, 48); // 48 does not divide 64
  GError *error = nullptr;
  EXPECT_EQ (slim_hqq_fake_quantize (&cfg, w.data (), 1, 64, nullptr, nullptr, nullptr, out.data (),
                                     &error),
             0u);
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  EXPECT_NE (std::string (error->message).find ("group_size"), std::string::npos);
  g_clear_error (&error);
  slim_hqq_config_init (&cfg, 1, 64);
  EXPECT_FALSE (slim_hqq_config_check (&cfg, 64, &error));
  g_clear_error (&error);
  slim_hqq_config_init (&cfg, 4, 64);
  cfg.lp_norm = 0.0f;
  EXPECT_FALSE (slim_hqq_config_check (&cfg, 64, &error));
  g_clear_error (&error);
}

} // namespace

// The signed form linear_quant stores: codes shifted by 2^(bits-1), the
// offset shifted with them, scale = HQQ's step.  Dequantizing the stored
// values with slim_dequantize_rows must give HQQ's own output up to the
// rounding of the shifted offset: |(q - o) - (c - z)| <= ulp(o) / 2 with
// |o| <= 2^bits, times the step, so within 2^-20 relative to the group's
// range for 4 bits; asserted as 1e-6 * max |w|.
TEST (Hqq, SignedFormDequantizesLikeHqq)
{
  const int64_t rows = 4, cols = 128, gs = 32;
  auto w = heavy_tailed (rows * cols, 11); /* [rows, cols] */
  for (guint bits : { 4u, 8u })
    {
      SlimHqqConfig cfg;
      slim_hqq_config_init (&cfg, bits, gs);
      const int64_t ng = rows * cols / gs;
      std::vector<float> out (w.size ()), step (ng), zero (ng);
      std::vector<guint8> codes (w.size ());
      GError *error = nullptr;
      ASSERT_GT (slim_hqq_fake_quantize (&cfg, w.data (), rows, cols, step.data (), zero.data (),
                                         codes.data (), out.data (), &error),
                 0u);
      std::vector<float> scale (ng), offset (ng), deq (w.size ());
      std::vector<gint8> q (w.size ());
      ASSERT_TRUE (slim_hqq_quantize_signed (&cfg, w.data (), rows, cols, scale.data (),
                                             offset.data (), q.data (), &error));
      ASSERT_EQ (error, nullptr);
      const int half = 1 << (bits - 1);
      float wmax = 0.0f;
      for (float v : w)
        wmax = std::fmax (wmax, std::fabs (v));
      for (int64_t g = 0; g < ng; g++)
        {
          EXPECT_EQ (scale[g], step[g]);
          EXPECT_EQ (offset[g], zero[g] - (float)half);
        }
      for (size_t i = 0; i < w.size (); i++)
        {
          EXPECT_EQ ((int)q[i], (int)codes[i] - half);
          EXPECT_GE ((int)q[i], -half);
          EXPECT_LE ((int)q[i], half - 1);
        }
      slim_dequantize_rows (q.data (), ng, gs, scale.data (), offset.data (), ng, deq.data ());
      for (size_t i = 0; i < w.size (); i++)
        EXPECT_NEAR (deq[i], out[i], 1e-6 * wmax) << "bits " << bits << " element " << i;
    }
}
