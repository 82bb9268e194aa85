// SPDX-License-Identifier: Apache-2.0
//
// test-histogram.cpp: the histogram activation observer (slim-histogram)
// against msModelSlim's oracle vectors (../shared/oracle, cases
// histogram_{l2_norm,kl_divergence}_int8_per_tensor_{sym,asym}: one update
// with input.x, 64 x 256), plus the update path over several batches and
// bad inputs.
//
// Tolerances: the histogram counts, its range, the searched range, the
// clip bounds, scale, offset and the fake-quantized output are elementwise
// float32 paths and must be equal (they are). The quantization-error
// scalars go through sums (torch: float32 cascade; here float64 then
// rounded), rel 1e-5 as the oracle README says (measured: <= 1.2e-7); the
// float64 reference of the same formulas within 1e-3 (measured 2e-4 for
// KL, 4e-6 for L2). The search result (an argmin) must be equal.
#include "oracle.h"
#include "slim-test.h"

extern "C"
{
#include "slim-error.h"
#include "slim-histogram.h"
#include "slim-qparams.h"
}

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace
{

constexpr int64_t N_X = 64 * 256;

struct ErrorScalar
{
  int64_t start_bin, end_bin;
  double value;
};

struct HistCase
{
  const char *name;
  SlimHistogramMetric metric;
  bool symmetric;
  bool has_fake_quant;
  ErrorScalar errors[9]; // manifest.json "quantization_error(start_bin,end_bin)"
};

void
PrintTo (const HistCase &c, std::ostream *os)
{
  *os << c.name;
}

#define L2_ERRORS                                                                                  \
  {                                                                                                \
    { 0, 2047, 289.6686096191406 }, { 0, 2046, 289.50616455078125 },                               \
        { 1, 2047, 290.2754821777344 }, { 2046, 2047, 104289616.0 }, { 0, 1, 24775416.0 },         \
        { 100, 1900, 940.503173828125 }, { 300, 1200, 39409.6875 }, { 600, 1400, 69238.0234375 },  \
        { 1000, 1010, 6286738.0 },                                                                 \
  }

const HistCase kCases[] = {
  { "histogram_l2_norm_int8_per_tensor_sym", SLIM_HISTOGRAM_L2_NORM, true, false, L2_ERRORS },
  { "histogram_l2_norm_int8_per_tensor_asym", SLIM_HISTOGRAM_L2_NORM, false, true, L2_ERRORS },
  { "histogram_kl_divergence_int8_per_tensor_sym",
    SLIM_HISTOGRAM_KL_DIVERGENCE,
    true,
    false,
    {
        { 0, 2047, 0.03890158236026764 },
        { 0, 2046, 0.039058685302734375 },
        { 1, 2047, 0.03885112330317497 },
        { 2046, 2047, 3.24304461479187 },
        { 0, 1, 3.2434911727905273 },
        { 100, 1900, 0.0333903506398201 },
        { 300, 1200, 0.031025204807519913 },
        { 600, 1400, 0.03502200171351433 },
        { 1000, 1010, 2.5665459632873535 },
    } },
  { "histogram_kl_divergence_int8_per_tensor_asym",
    SLIM_HISTOGRAM_KL_DIVERGENCE,
    false,
    false,
    {
        { 0, 2047, 0.027681484818458557 },
        { 0, 2046, 0.027657220140099525 },
        { 1, 2047, 0.027558987960219383 },
        { 2046, 2047, 3.24304461479187 },
        { 0, 1, 3.2434911727905273 },
        { 100, 1900, 0.025379328057169914 },
        { 300, 1200, 0.030672036111354828 },
        { 600, 1400, 0.030628051608800888 },
        { 1000, 1010, 2.566429376602173 },
    } },
};

SlimQParamsConfig
make_qcfg (bool symmetric)
{
  SlimQParamsConfig cfg;
  GError *error = nullptr;
  EXPECT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, symmetric, 0, &error));
  GErrorPtr guard (error);
  return cfg;
}

float
scalar (const std::string &file)
{
  std::vector<float> v = oracle_f32 (file);
  EXPECT_EQ (v.size (), 1u) << file;
  return v.empty () ? NAN : v[0];
}

double
total (const float *hist)
{
  double s = 0.0;
  for (int b = 0; b < SLIM_HISTOGRAM_BINS; b++)
    s += hist[b];
  return s;
}

} // namespace

// ===========================================================================
// Oracle cases
// ===========================================================================

class HistogramOracle : public ::testing::TestWithParam<HistCase>
{
};

TEST_P (HistogramOracle, MatchesMsModelSlim)
{
  const HistCase &c = GetParam ();
  const std::string base = c.name;
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> histogram = oracle_f32 (base + ".histogram.npy");
  ASSERT_EQ (x.size (), (size_t)N_X);
  ASSERT_EQ (histogram.size (), (size_t)SLIM_HISTOGRAM_BINS);
  SlimQParamsConfig qcfg = make_qcfg (c.symmetric);
  SlimHistogramObserver obs;
  GError *error = nullptr;

  slim_histogram_observer_init (&obs, &qcfg, c.metric);
  ASSERT_TRUE (slim_histogram_observer_update (&obs, x.data (), N_X, &error));

  int64_t n_bins_differ = 0;
  for (int b = 0; b < SLIM_HISTOGRAM_BINS; b++)
    n_bins_differ += obs.histogram[b] != histogram[b];
  EXPECT_EQ (n_bins_differ, 0);
  EXPECT_EQ (obs.min_val, scalar (base + ".hist_min.npy"));
  EXPECT_EQ (obs.max_val, scalar (base + ".hist_max.npy"));
  EXPECT_EQ (obs.search_min, scalar (base + ".search_min.npy"));
  EXPECT_EQ (obs.search_max, scalar (base + ".search_max.npy"));

  float clip_min, clip_max, scale, offset;
  ASSERT_TRUE (
      slim_histogram_observer_get_qparams (&obs, &clip_min, &clip_max, &scale, &offset, &error));
  EXPECT_EQ (clip_min, scalar (base + ".clip_min.npy"));
  EXPECT_EQ (clip_max, scalar (base + ".clip_max.npy"));
  EXPECT_EQ (scale, scalar (base + ".scale.npy"));
  EXPECT_EQ (offset, scalar (base + ".offset.npy"));

  // the search keeps the full range (oracle README: "search never clips")
  float search_min, search_max;
  gint64 start_bin = -1, end_bin = -1;
  slim_histogram_search (obs.histogram, obs.min_val, obs.max_val, c.metric, &qcfg, &search_min,
                         &search_max, &start_bin, &end_bin);
  EXPECT_EQ (start_bin, 0);
  EXPECT_EQ (end_bin, SLIM_HISTOGRAM_BINS - 1);

  double max_rel = 0.0, max_rel_ref = 0.0;
  for (const ErrorScalar &e : c.errors)
    {
      double v = slim_histogram_quantization_error (obs.histogram, obs.min_val, obs.max_val,
                                                    e.start_bin, e.end_bin, c.metric, &qcfg);
      double r = slim_histogram_quantization_error_ref (obs.histogram, obs.min_val, obs.max_val,
                                                        e.start_bin, e.end_bin, c.metric, &qcfg);
      max_rel = std::fmax (max_rel, std::fabs (v - e.value) / std::fabs (e.value));
      max_rel_ref = std::fmax (max_rel_ref, std::fabs (r - e.value) / std::fabs (e.value));
      EXPECT_NEAR (v, e.value, 1e-5 * std::fabs (e.value))
          << "bins " << e.start_bin << ", " << e.end_bin;
      EXPECT_NEAR (r, e.value, 1e-3 * std::fabs (e.value))
          << "bins " << e.start_bin << ", " << e.end_bin;
    }
  std::printf ("%s: %ld bins differ; error scalars max rel %.3g (float64 reference %.3g)\n", c.name,
               (long)n_bins_differ, max_rel, max_rel_ref);

  if (c.has_fake_quant)
    {
      std::vector<float> expected = oracle_f32 (base + ".fake_quant.npy");
      std::vector<float> out (N_X);
      slim_histogram_fake_quantize (&qcfg, x.data (), N_X, scale, offset, clip_min, clip_max,
                                    out.data ());
      int64_t n_differ = 0;
      for (int64_t i = 0; i < N_X; i++)
        n_differ += out[i] != expected[i];
      EXPECT_EQ (n_differ, 0);
    }
}

INSTANTIATE_TEST_SUITE_P (Cases,
                          HistogramOracle,
                          ::testing::ValuesIn (kCases),
                          [] (const ::testing::TestParamInfo<HistCase> &info) {
                            return std::string (info.param.name);
                          });

// ===========================================================================
// Update path (several calibration calls)
// ===========================================================================

// Same range: the counts add up exactly.
TEST (Histogram, SameRangeAddsCounts)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  SlimQParamsConfig qcfg = make_qcfg (true);
  SlimHistogramObserver once, twice;
  GError *error = nullptr;

  slim_histogram_observer_init (&once, &qcfg, SLIM_HISTOGRAM_L2_NORM);
  slim_histogram_observer_init (&twice, &qcfg, SLIM_HISTOGRAM_L2_NORM);
  ASSERT_TRUE (slim_histogram_observer_update (&once, x.data (), N_X, &error));
  ASSERT_TRUE (slim_histogram_observer_update (&twice, x.data (), N_X, &error));
  ASSERT_TRUE (slim_histogram_observer_update (&twice, x.data (), N_X, &error));
  EXPECT_EQ (twice.min_val, once.min_val);
  EXPECT_EQ (twice.max_val, once.max_val);
  for (int b = 0; b < SLIM_HISTOGRAM_BINS; b++)
    ASSERT_EQ (twice.histogram[b], 2.0f * once.histogram[b]);
  EXPECT_EQ (twice.n_updates, 2);
}

// A wider second batch: the range grows, the old counts move into the new
// bins (total mass kept), and the clip bounds follow the last batch only,
// as in msModelSlim.
TEST (Histogram, RangeGrowthKeepsMassAndClipsToLastBatch)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> first (x.begin (), x.begin () + N_X / 2);
  std::vector<float> second (x.begin () + N_X / 2, x.end ());
  for (float &v : first)
    v = std::fmin (std::fmax (v, -3.0f), 3.0f); // a narrow first batch
  SlimQParamsConfig qcfg = make_qcfg (false);
  SlimHistogramObserver obs;
  GError *error = nullptr;

  slim_histogram_observer_init (&obs, &qcfg, SLIM_HISTOGRAM_L2_NORM);
  ASSERT_TRUE (slim_histogram_observer_update (&obs, first.data (), N_X / 2, &error));
  EXPECT_EQ (obs.min_val, -3.0f);
  EXPECT_EQ (obs.max_val, 3.0f);
  ASSERT_TRUE (slim_histogram_observer_update (&obs, second.data (), N_X / 2, &error));

  float smin = INFINITY, smax = -INFINITY;
  for (float v : second)
    {
      smin = std::fmin (smin, v);
      smax = std::fmax (smax, v);
    }
  EXPECT_EQ (obs.min_val, std::fmin (smin, -3.0f));
  EXPECT_EQ (obs.max_val, std::fmax (smax, 3.0f));
  EXPECT_NEAR (total (obs.histogram), (double)N_X, 1e-3);
  // the old [-3, 3] mass sits inside the bins covering [-3, 3]
  double bin_width = ((double)obs.max_val - obs.min_val) / SLIM_HISTOGRAM_BINS;
  int64_t lo = (int64_t)std::floor ((-3.0 - obs.min_val) / bin_width);
  int64_t hi = (int64_t)std::floor ((3.0 - obs.min_val) / bin_width);
  double inside = 0.0;
  for (int64_t b = lo; b <= hi; b++)
    inside += obs.histogram[b];
  EXPECT_GE (inside, N_X / 2); // all of the first batch, plus the second's values there

  float clip_min, clip_max, scale, offset;
  ASSERT_TRUE (
      slim_histogram_observer_get_qparams (&obs, &clip_min, &clip_max, &scale, &offset, &error));
  EXPECT_EQ (clip_min, smin);
  EXPECT_EQ (clip_max, smax);
}

// _upscale_histogram against an exact float64 re-binning of the upsampled
// mid-points: the same bins up to mid-points within rounding of an edge.
TEST (Histogram, UpscaleMatchesExactRebinning)
{
  std::mt19937 rng (3);
  std::uniform_real_distribution<float> count (0.0f, 50.0f);
  std::vector<float> hist (SLIM_HISTOGRAM_BINS), out (SLIM_HISTOGRAM_BINS);
  for (float &h : hist)
    h = std::floor (count (rng));
  const float orig_min = -1.25f, orig_max = 2.5f, new_min = -4.0f, new_max = 7.0f;

  slim_histogram_upscale (hist.data (), orig_min, orig_max, new_min, new_max, out.data ());
  std::vector<double> exact (SLIM_HISTOGRAM_BINS, 0.0);
  const int64_t rate = SLIM_HISTOGRAM_UPSAMPLE_RATE, n_fine = SLIM_HISTOGRAM_BINS * rate;
  for (int64_t i = 0; i < n_fine; i++)
    {
      double mid = orig_min + ((double)orig_max - orig_min) * ((double)i + 0.5) / (double)n_fine;
      int64_t b = (int64_t)std::floor ((mid - new_min) / ((double)new_max - new_min)
                                       * SLIM_HISTOGRAM_BINS);
      b = std::min<int64_t> (std::max<int64_t> (b, 0), SLIM_HISTOGRAM_BINS - 1);
      exact[b] += hist[i / rate] / (double)rate;
    }
  double moved = 0.0;
  for (int b = 0; b < SLIM_HISTOGRAM_BINS; b++)
    moved += std::fabs (out[b] - exact[b]);
  EXPECT_NEAR (total (out.data ()), total (hist.data ()), 1e-3);
  EXPECT_LE (moved, 1e-6 * total (hist.data ()));
}

// torch.histc: the top edge lands in the last bin, values outside and NaN
// are skipped.
TEST (Histogram, HistcEdges)
{
  std::vector<float> x = { 0.0f, 1.0f, 0.5f, NAN, -0.1f, 1.1f, 0.999999f };
  std::vector<float> hist (SLIM_HISTOGRAM_BINS);
  slim_histogram_histc (x.data (), (gint64)x.size (), 0.0f, 1.0f, hist.data ());
  EXPECT_EQ (hist[0], 1.0f);
  EXPECT_EQ (hist[SLIM_HISTOGRAM_BINS / 2], 1.0f);
  EXPECT_EQ (hist[SLIM_HISTOGRAM_BINS - 1], 2.0f);
  EXPECT_EQ (total (hist.data ()), 4.0);
}

// ===========================================================================
// Degenerate and bad inputs
// ===========================================================================

// All values equal: no histogram (histc cannot bin one value), the clip
// bounds are that value, as msModelSlim does.
TEST (HistogramBadInput, ConstantInput)
{
  std::vector<float> x (100, 0.75f);
  SlimQParamsConfig qcfg = make_qcfg (true);
  SlimHistogramObserver obs;
  GError *error = nullptr;
  float clip_min, clip_max, scale, offset;

  slim_histogram_observer_init (&obs, &qcfg, SLIM_HISTOGRAM_L2_NORM);
  ASSERT_TRUE (slim_histogram_observer_update (&obs, x.data (), 100, &error));
  EXPECT_EQ (obs.min_val, INFINITY);
  ASSERT_TRUE (
      slim_histogram_observer_get_qparams (&obs, &clip_min, &clip_max, &scale, &offset, &error));
  EXPECT_EQ (clip_min, 0.75f);
  EXPECT_EQ (clip_max, 0.75f);
  EXPECT_EQ (scale, 0.75f / 127.0f);
}

// NaN and infinities are dropped (counted); nothing finite is an error.
TEST (HistogramBadInput, NonFiniteElements)
{
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> dirty = x;
  dirty[10] = NAN;
  dirty[20] = INFINITY;
  dirty[30] = -INFINITY;
  SlimQParamsConfig qcfg = make_qcfg (false);
  SlimHistogramObserver obs, clean;
  GError *error = nullptr;

  // the clean reference sees the same finite values
  std::vector<float> finite;
  for (size_t i = 0; i < dirty.size (); i++)
    if (std::isfinite (dirty[i]))
      finite.push_back (dirty[i]);
  slim_histogram_observer_init (&obs, &qcfg, SLIM_HISTOGRAM_L2_NORM);
  slim_histogram_observer_init (&clean, &qcfg, SLIM_HISTOGRAM_L2_NORM);
  ASSERT_TRUE (slim_histogram_observer_update (&obs, dirty.data (), N_X, &error));
  ASSERT_TRUE (
      slim_histogram_observer_update (&clean, finite.data (), (gint64)finite.size (), &error));
  EXPECT_EQ (obs.n_dropped, 3);
  EXPECT_EQ (obs.min_val, clean.min_val);
  EXPECT_EQ (obs.max_val, clean.max_val);
  EXPECT_EQ (obs.clip_min, clean.clip_min);
  EXPECT_EQ (obs.clip_max, clean.clip_max);
  for (int b = 0; b < SLIM_HISTOGRAM_BINS; b++)
    ASSERT_EQ (obs.histogram[b], clean.histogram[b]);

  std::vector<float> bad = { NAN, INFINITY };
  EXPECT_FALSE (slim_histogram_observer_update (&obs, bad.data (), 2, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
  EXPECT_FALSE (slim_histogram_observer_update (&obs, bad.data (), 0, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
}

TEST (HistogramBadInput, QparamsBeforeUpdate)
{
  SlimQParamsConfig qcfg = make_qcfg (true);
  SlimHistogramObserver obs;
  GError *error = nullptr;
  float scale, offset;

  slim_histogram_observer_init (&obs, &qcfg, SLIM_HISTOGRAM_KL_DIVERGENCE);
  EXPECT_FALSE (
      slim_histogram_observer_get_qparams (&obs, nullptr, nullptr, &scale, &offset, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED));
  g_clear_error (&error);
}
