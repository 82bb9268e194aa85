// SPDX-License-Identifier: Apache-2.0
//
// test-kv-observers.cpp: the IFMR and HFMG clip searches of dynamic_cache
// `method: ifmr` / `method: hfmg` (slim-ifmr, slim-hfmg):
// - each kernel against its plain-loop twin on random data;
// - on a constructed channel (gaussian bulk + a few large outliers) the
//   searched clip lies below the outlier and its error is below the
//   minmax clip's error (a known-better answer: minmax spends the int8
//   grid on the outlier);
// - the config checks name the offending key.
//
// Tolerances: IFMR fast and ref evaluate the same float32 fake
// quantization (bit-identical kernels of slim-qparams) and sum in float64
// in the same order, so clips and mse are compared with ==.  HFMG fast
// sums runs of bins with float64 prefix sums (S2 - 2 v S1 + v^2 S0) where
// the ref sums bin by bin: the cancellation is at most ~B^2 * 1e-16 of the
// run's S2 (B = 4096 bins: < 1e-8), so errors are compared with a relative
// 1e-6 and the searched clips (argmin over the same candidates) with ==,
// except when two candidates tie within that tolerance (checked).  No
// oracle exists (AMCT is not in /work/shared/oracle).
#include "slim-test.h"

extern "C"
{
#include "slim-error.h"
#include "slim-hfmg.h"
#include "slim-ifmr.h"
#include "slim-qparams.h"
}

#include <cmath>
#include <random>
#include <vector>

namespace
{

SlimQParamsConfig
int8 (bool symmetric)
{
  SlimQParamsConfig cfg;
  EXPECT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, symmetric, 0, nullptr));
  return cfg;
}

// Gaussian bulk (n) and n_out outliers at +outlier.
std::vector<float>
outlier_channel (size_t n, size_t n_out, float outlier, unsigned seed)
{
  std::mt19937 rng (seed);
  std::normal_distribution<float> g (0.0f, 1.0f);
  std::vector<float> x (n);
  for (auto &v : x)
    v = g (rng);
  for (size_t i = 0; i < n_out; i++)
    x[i * (n / n_out)] = outlier;
  return x;
}

TEST (Ifmr, FastMatchesPlainLoops)
{
  std::mt19937 rng (7);
  std::normal_distribution<float> g (0.3f, 2.0f);
  SlimIfmrConfig c;
  slim_ifmr_config_init_default (&c);
  for (bool sym : { true, false })
    for (size_t n : { 1u, 2u, 17u, 300u })
      for (double p : { 1.0, 0.99, 0.999999 })
        {
          std::vector<float> x (n), work (2 * n);
          for (auto &v : x)
            v = g (rng);
          c.max_percentile = c.min_percentile = p;
          SlimQParamsConfig q = int8 (sym);
          float a0, a1, b0, b1;
          double ea, eb;
          slim_ifmr_search (&q, &c, x.data (), (gint64)n, work.data (), &a0, &a1, &ea);
          slim_ifmr_search_ref (&q, &c, x.data (), (gint64)n, &b0, &b1, &eb);
          EXPECT_EQ (a0, b0) << n << " " << p;
          EXPECT_EQ (a1, b1) << n << " " << p;
          EXPECT_EQ (ea, eb) << n << " " << p;
        }
}

TEST (Ifmr, ClipsBelowOutliersAndBeatsMinmax)
{
  // 1e5 N(0,1) values and one at 5.5: int8 minmax pays for the empty
  // range (4.4, 5.5] on every value, clipping it costs (5.5 - clip)^2 / 1e5
  // once, so a clip below it has the lower mse; a far outlier (4 values at
  // 40 among 4000) would instead be worth keeping for the MSE
  std::vector<float> x = outlier_channel (100000, 1, 5.5f, 3);
  std::vector<float> work (2 * x.size ());
  SlimIfmrConfig c;
  slim_ifmr_config_init_default (&c);
  c.max_percentile = c.min_percentile = 0.99999;
  c.search_start = 0.8;
  c.search_end = 1.2;
  SlimQParamsConfig q = int8 (false);
  float lo, hi;
  double e;
  slim_ifmr_search (&q, &c, x.data (), (gint64)x.size (), work.data (), &lo, &hi, &e);
  float mn = *std::min_element (x.begin (), x.end ());
  double e_minmax = slim_ifmr_mse (&q, x.data (), (gint64)x.size (), mn, 5.5f, work.data ());
  EXPECT_LT (hi, 5.5f);
  EXPECT_GT (hi, 1.0f);
  EXPECT_LT (e, e_minmax);
  // with percentile 1 and s = 1 only, IFMR is minmax
  c.max_percentile = c.min_percentile = 1.0;
  c.search_start = c.search_end = 1.0;
  slim_ifmr_search (&q, &c, x.data (), (gint64)x.size (), work.data (), &lo, &hi, &e);
  EXPECT_EQ (lo, mn);
  EXPECT_EQ (hi, 5.5f);
  EXPECT_EQ (e, e_minmax);
}

TEST (Ifmr, ConfigChecksNameTheKey)
{
  SlimIfmrConfig c;
  GError *error = nullptr;
  struct Case
  {
    void (*set) (SlimIfmrConfig *);
    const char *key;
  } cases[] = {
    { [] (SlimIfmrConfig *c) { c->max_percentile = 0.5; }, "ifmr.max_percentile" },
    { [] (SlimIfmrConfig *c) { c->min_percentile = 1.01; }, "ifmr.min_percentile" },
    { [] (SlimIfmrConfig *c) { c->search_step = 0.0; }, "ifmr.search_step" },
    { [] (SlimIfmrConfig *c) { c->search_start = 1.5; }, "ifmr.search_range_start" },
    { [] (SlimIfmrConfig *c) { c->search_step = 1e-9; }, "ifmr.search_step" },
  };
  slim_ifmr_config_init_default (&c);
  EXPECT_TRUE (slim_ifmr_config_check (&c, "ifmr.", nullptr));
  EXPECT_EQ (slim_ifmr_n_candidates (&c), 61);
  for (const Case &k : cases)
    {
      slim_ifmr_config_init_default (&c);
      k.set (&c);
      EXPECT_FALSE (slim_ifmr_config_check (&c, "ifmr.", &error)) << k.key;
      ASSERT_NE (error, nullptr);
      EXPECT_NE (std::string (error->message).find (k.key), std::string::npos) << error->message;
      g_clear_error (&error);
    }
}

struct Hist
{
  SlimHfmgHistogram h;
  explicit Hist (gint64 bins)
  {
    slim_hfmg_histogram_init (&h, bins);
  }
  ~Hist ()
  {
    slim_hfmg_histogram_clear (&h);
  }
};

TEST (Hfmg, HistogramKeepsEveryCountWhenTheRangeGrows)
{
  Hist a (1024);
  std::vector<float> x1 = { 0.0f, 1.0f, 0.5f, 0.25f }, x2 = { -3.0f, 2.0f, NAN, 0.1f };
  slim_hfmg_histogram_update (&a.h, x1.data (), 4, 1);
  EXPECT_EQ (a.h.lo, 0.0f);
  EXPECT_EQ (a.h.hi, 1.0f);
  EXPECT_EQ (a.h.count[1023], 1.0); // the top edge goes to the last bin
  slim_hfmg_histogram_update (&a.h, x2.data (), 4, 1);
  EXPECT_EQ (a.h.lo, -3.0f);
  EXPECT_EQ (a.h.hi, 2.0f);
  double total = 0.0;
  for (gint64 b = 0; b < 1024; b++)
    total += a.h.count[b];
  EXPECT_EQ (a.h.n_total, 7.0);   // the NaN is dropped
  EXPECT_NEAR (total, 7.0, 1e-9); // rebinned mass is conserved (float64 sums)
  EXPECT_EQ (a.h.count[0], 1.0);  // -3
  EXPECT_NEAR (a.h.count[(gint64)(3.0 / 5.0 * 1024)], 1.0, 1e-9); // the old 0 stays in its bin
}

TEST (Hfmg, FastMatchesPlainLoops)
{
  std::mt19937 rng (11);
  std::normal_distribution<float> g (0.5f, 1.5f);
  for (bool sym : { true, false })
    for (int trial = 0; trial < 3; trial++)
      {
        Hist a (1024);
        for (int call = 0; call < 3; call++)
          {
            std::vector<float> x (200 + 100 * call);
            for (auto &v : x)
              v = g (rng) * (float)(1 + call);
            slim_hfmg_histogram_update (&a.h, x.data (), (gint64)x.size (), 1);
          }
        SlimQParamsConfig q = int8 (sym);
        float a0, a1, b0, b1;
        double ea, eb;
        slim_hfmg_search (&q, &a.h, &a0, &a1, &ea);
        slim_hfmg_search_ref (&q, &a.h, &b0, &b1, &eb);
        EXPECT_NEAR (ea, eb, 1e-6 * eb) << sym << trial;
        if (a0 != b0 || a1 != b1)
          {
            ADD_FAILURE () << "clips differ: [" << a0 << ", " << a1 << "] vs [" << b0 << ", " << b1
                           << "]";
          }
      }
}

TEST (Hfmg, ClipsBelowOutliersAndBeatsMinmax)
{
  std::vector<float> x = outlier_channel (100000, 1, 5.5f, 5); // as for IFMR
  Hist a (4096);
  slim_hfmg_histogram_update (&a.h, x.data (), (gint64)x.size (), 1);
  SlimQParamsConfig q = int8 (false);
  float lo, hi;
  double e;
  slim_hfmg_search (&q, &a.h, &lo, &hi, &e);
  double e_full = slim_hfmg_error_ref (&q, &a.h, 0, 4095);
  EXPECT_LT (hi, 5.5f);
  EXPECT_GT (hi, 1.0f);
  EXPECT_LT (e, e_full);
  // on the data itself too, not only on the histogram's bin centres
  std::vector<float> work (x.size ());
  float mn = *std::min_element (x.begin (), x.end ());
  EXPECT_LT (slim_ifmr_mse (&q, x.data (), (gint64)x.size (), lo, hi, work.data ()),
             slim_ifmr_mse (&q, x.data (), (gint64)x.size (), mn, 5.5f, work.data ()));
}

TEST (Hfmg, BinsCheckNamesTheKeyAndTheValidSet)
{
  GError *error = nullptr;
  for (gint64 b : { 1024, 2048, 4096, 8192 })
    EXPECT_TRUE (slim_hfmg_bins_check (b, "hfmg.", nullptr));
  EXPECT_FALSE (slim_hfmg_bins_check (1000, "hfmg.", &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("hfmg.num_of_bins"), std::string::npos);
  EXPECT_NE (std::string (error->message).find ("1024, 2048, 4096, 8192"), std::string::npos);
  g_clear_error (&error);
}

} // namespace
