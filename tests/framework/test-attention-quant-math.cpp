// SPDX-License-Identifier: Apache-2.0
//
// test-attention-quant-math.cpp: the numerics of dynamic_cache and
// fa3_quant: the recall window (slim-recall-window: the sorting kernel
// against its brute-force twin, and known answers), the per-column
// observer and fake quantization (slim-channel-quant, against plain loops
// and the per-row reference of slim-qparams), and the deployed
// SlimQAttention record (slim-qattention) applied to q/k/v.
//
// Tolerances: every path here is the same float32 operations in another
// order of elements (no sums), so results must be equal, and are compared
// with ==.  No oracle case exists for these processors (the oracle README
// has none for dynamic_cache or fa3_quant).
#include "slim-test.h"

extern "C"
{
#include "slim-channel-quant.h"
#include "slim-error.h"
#include "slim-fp8.h"
#include "slim-qattention.h"
#include "slim-qparams.h"
#include "slim-recall-window.h"
}

#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

namespace
{

TEST (RecallWindow, TargetTruncatesLikePython)
{
  EXPECT_EQ (slim_recall_window_target (0, 0.9999), 0);
  EXPECT_EQ (slim_recall_window_target (1, 0.9999), 1); // int (0.9999) = 0, kept >= 1
  EXPECT_EQ (slim_recall_window_target (5, 0.9999), 4); // int (4.9995)
  EXPECT_EQ (slim_recall_window_target (10000, 0.9999), 9999);
  EXPECT_EQ (slim_recall_window_target (20000, 0.9999), 19998);
  EXPECT_EQ (slim_recall_window_target (7, 1.0), 7);
}

TEST (RecallWindow, DropsTheIsolatedOutlier)
{
  // 0..99 and one 1000: a window of 99 of the 101 values; [0, 98] and
  // [1, 99] are both 98 wide, the first in sorted order wins
  std::vector<float> x;
  for (int i = 99; i >= 0; i--)
    x.push_back ((float)i);
  x.insert (x.begin () + 37, 1000.0f);
  float lo = 0, hi = 0;
  slim_recall_window (x.data (), (gint64)x.size (), 0.99, nullptr, &lo, &hi);
  EXPECT_EQ (lo, 0.0f);
  EXPECT_EQ (hi, 98.0f);
  slim_recall_window_ref (x.data (), (gint64)x.size (), 0.99, &lo, &hi);
  EXPECT_EQ (lo, 0.0f);
  EXPECT_EQ (hi, 98.0f);
  // a low outlier is cut the same way
  x.push_back (-5000.0f);
  slim_recall_window (x.data (), (gint64)x.size (), 100.0 / 102.0, nullptr, &lo, &hi);
  EXPECT_EQ (lo, 0.0f);
  EXPECT_EQ (hi, 99.0f);
}

TEST (RecallWindow, KernelMatchesBruteForce)
{
  std::mt19937 rng (12);
  std::normal_distribution<float> normal (0.0f, 1.0f);
  for (gint64 n : { 1, 2, 3, 7, 31, 150 })
    for (double ratio : { 0.9999, 0.95, 0.7, 0.5, 1.0 })
      for (int coarse = 0; coarse < 2; coarse++)
        {
          std::vector<float> x ((size_t)n);
          for (float &v : x)
            {
              v = normal (rng) * 3.0f;
              if (coarse)
                v = std::round (v); // many ties
            }
          if (n > 10)
            x[(size_t)n / 3] = 40.0f; // an outlier
          std::vector<float> scratch ((size_t)n);
          float lo = 0, hi = 0, lo_ref = 1, hi_ref = -1;
          slim_recall_window (x.data (), n, ratio, scratch.data (), &lo, &hi);
          slim_recall_window_ref (x.data (), n, ratio, &lo_ref, &hi_ref);
          EXPECT_EQ (lo, lo_ref) << "n " << n << " ratio " << ratio << " coarse " << coarse;
          EXPECT_EQ (hi, hi_ref) << "n " << n << " ratio " << ratio << " coarse " << coarse;
          // the window holds at least target values
          gint64 inside = 0;
          for (float v : x)
            inside += v >= lo && v <= hi;
          EXPECT_GE (inside, slim_recall_window_target (n, ratio));
        }
}

TEST (ChannelQuant, MinMaxColsAccumulatesOverCalls)
{
  const gint64 n_cols = 5;
  std::vector<float> mn (n_cols, FLT_MAX), mx (n_cols, -FLT_MAX);
  std::vector<float> ref_mn (n_cols, FLT_MAX), ref_mx (n_cols, -FLT_MAX);
  std::mt19937 rng (3);
  std::uniform_real_distribution<float> u (-4.0f, 4.0f);
  for (gint64 call = 0; call < 4; call++)
    {
      gint64 n_rows = 1 + call * 3;
      std::vector<float> x ((size_t)(n_rows * n_cols)); // (n_rows, n_cols)
      for (float &v : x)
        v = u (rng) * (float)(call + 1);
      if (call == 2)
        x[1] = NAN; // ignored
      slim_minmax_cols_update (x.data (), n_rows, n_cols, mn.data (), mx.data ());
      for (gint64 r = 0; r < n_rows; r++)
        for (gint64 c = 0; c < n_cols; c++)
          {
            float v = x[(size_t)(r * n_cols + c)];
            if (std::isnan (v))
              continue;
            ref_mn[(size_t)c] = std::min (ref_mn[(size_t)c], v);
            ref_mx[(size_t)c] = std::max (ref_mx[(size_t)c], v);
          }
    }
  EXPECT_EQ (mn, ref_mn);
  EXPECT_EQ (mx, ref_mx);
}

TEST (ChannelQuant, FakeQuantizeColsIsThePerRowReferencePerElement)
{
  const gint64 n_rows = 6, n_cols = 7;
  std::mt19937 rng (5);
  std::uniform_real_distribution<float> u (-3.0f, 3.0f);
  for (gboolean sym : { (gboolean)TRUE, (gboolean)FALSE })
    {
      SlimQParamsConfig cfg;
      ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, sym, 0, nullptr));
      std::vector<float> x ((size_t)(n_rows * n_cols)), scale ((size_t)n_cols),
          offset ((size_t)n_cols);
      for (float &v : x)
        v = u (rng);
      for (gint64 c = 0; c < n_cols; c++)
        // narrow ranges so some values clip
        slim_qparams_compute (&cfg, -0.5f - 0.3f * (float)c, 0.2f + 0.4f * (float)c,
                              &scale[(size_t)c], &offset[(size_t)c]);
      std::vector<float> out ((size_t)(n_rows * n_cols));
      slim_fake_quantize_cols (&cfg, x.data (), n_rows, n_cols, scale.data (), offset.data (),
                               out.data ());
      for (gint64 r = 0; r < n_rows; r++)
        for (gint64 c = 0; c < n_cols; c++)
          {
            size_t i = (size_t)(r * n_cols + c);
            float ref = 0;
            slim_fake_quantize_rows_ref (&cfg, &x[i], 1, 1, &scale[(size_t)c], &offset[(size_t)c],
                                         1, &ref);
            EXPECT_EQ (out[i], ref) << r << "," << c << " sym " << sym;
          }
      // in place gives the same
      slim_fake_quantize_cols (&cfg, x.data (), n_rows, n_cols, scale.data (), offset.data (),
                               x.data ());
      EXPECT_EQ (x, out);
    }
}

TEST (Fp8, RoundingMatchesTheNearestCode)
{
  std::vector<float> xs
      = { 0.0f,     -0.0f,   448.0f,    -448.0f, 460.0f,  1e-9f,   0x1p-9f, 0x1p-10f,
          0x3p-11f, 0x1p-6f, 0x1.1p-6f, 1.0f,    1.0625f, 1.1875f, 240.0f,  232.0f };
  // every code, and the midpoints between neighbours (ties to even)
  for (int e = -9; e <= 8; e++)
    for (int m = 0; m < 16; m++)
      xs.push_back (std::ldexp (1.0f + (float)m / 16.0f, e));
  std::mt19937 rng (21);
  std::uniform_real_distribution<float> u (-9.0f, 9.0f);
  for (int i = 0; i < 2000; i++)
    xs.push_back (std::ldexp (1.0f, (int)u (rng)) * u (rng) / 9.0f);
  for (float x : xs)
    {
      float a = slim_fp8_e4m3_round (x), b = slim_fp8_e4m3_round_ref (x);
      EXPECT_EQ (a, b) << x;
      EXPECT_EQ (std::signbit (a), std::signbit (x)) << x;
    }
  EXPECT_EQ (slim_fp8_e4m3_round (1.0625f), 1.0f);     // tie between 1 and 1.125: even code
  EXPECT_EQ (slim_fp8_e4m3_round (1.1875f), 1.25f);    // tie between 1.125 and 1.25: even code
  EXPECT_EQ (slim_fp8_e4m3_round (0x3p-10f), 0x1p-8f); // subnormal tie 1.5 -> 2 (x 2^-9)
  EXPECT_TRUE (std::isnan (slim_fp8_e4m3_round (NAN)));
  EXPECT_EQ (slim_fp8_e4m3_scale (-2.0f, 0.5f), 2.0f / 448.0f);
  EXPECT_EQ (slim_fp8_e4m3_scale (0.0f, 0.0f), 1e-12f / 448.0f);
}

TEST (Fp8, DynamicRowsAndColumnsAreThePlainFormula)
{
  const gint64 n_rows = 4, n_cols = 8;
  std::mt19937 rng (8);
  std::normal_distribution<float> normal (0.0f, 2.0f);
  std::vector<float> x ((size_t)(n_rows * n_cols)), out ((size_t)(n_rows * n_cols));
  for (float &v : x)
    v = normal (rng);
  slim_fp8_fake_quantize_rows_dynamic (x.data (), n_rows, n_cols, out.data ());
  std::vector<float> scale ((size_t)n_cols);
  for (gint64 c = 0; c < n_cols; c++)
    scale[(size_t)c] = 0.01f * (float)(c + 1);
  std::vector<float> out_cols ((size_t)(n_rows * n_cols));
  slim_fp8_fake_quantize_cols (x.data (), n_rows, n_cols, scale.data (), out_cols.data ());
  for (gint64 r = 0; r < n_rows; r++)
    {
      float amax = 0.0f;
      for (gint64 c = 0; c < n_cols; c++)
        amax = std::max (amax, std::fabs (x[(size_t)(r * n_cols + c)]));
      float s = amax / 448.0f;
      for (gint64 c = 0; c < n_cols; c++)
        {
          size_t i = (size_t)(r * n_cols + c);
          float v = std::min (std::max (x[i] / s, -448.0f), 448.0f);
          EXPECT_EQ (out[i], slim_fp8_e4m3_round_ref (v) * s) << r << "," << c;
          float w = std::min (std::max (x[i] / scale[(size_t)c], -448.0f), 448.0f);
          EXPECT_EQ (out_cols[i], slim_fp8_e4m3_round_ref (w) * scale[(size_t)c]) << r << "," << c;
        }
    }
}

SlimTensor *
vector_tensor (const std::vector<float> &v)
{
  SlimTensor *t = slim_tensor_new_1d ("v", SLIM_DTYPE_F32, (gint64)v.size ());
  std::copy (v.begin (), v.end (), static_cast<float *> (slim_tensor_get_data_mut (t)));
  return t;
}

TEST (QAttention, AppliesKvCacheThenPerHead)
{
  SlimModelConfig config = {};
  config.n_heads = 4;
  config.n_kv_heads = 2;
  config.head_dim = 3;
  const gint64 n_tokens = 5, q_dim = 12, kv_dim = 6;
  SlimQAttention *r = slim_qattention_new ("model.layers.0.self_attn", 4, 2, 3);
  SlimQParamsConfig asym;
  ASSERT_TRUE (slim_qparams_config_init (&asym, SLIM_QDTYPE_INT8, FALSE, 0, nullptr));
  std::vector<float> ks (kv_dim), ko (kv_dim), vs (kv_dim), vo (kv_dim);
  for (gint64 c = 0; c < kv_dim; c++)
    {
      slim_qparams_compute (&asym, -1.0f - (float)c, 0.5f + (float)c, &ks[(size_t)c],
                            &ko[(size_t)c]);
      slim_qparams_compute (&asym, -0.2f, 0.3f * (float)(c + 1), &vs[(size_t)c], &vo[(size_t)c]);
    }
  r->kv_cache = TRUE;
  r->kv_scheme = { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, FALSE };
  r->k_scale = vector_tensor (ks);
  r->k_offset = vector_tensor (ko);
  r->v_scale = vector_tensor (vs);
  r->v_offset = vector_tensor (vo);
  std::vector<float> qh = { 0.01f, 0.02f, 0.03f, 0.04f }, kh = { 0.05f, 0.002f };
  r->fa[SLIM_QATTENTION_Q]
      = { TRUE, { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_HEAD, TRUE }, vector_tensor (qh) };
  r->fa[SLIM_QATTENTION_K]
      = { TRUE, { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_HEAD, TRUE }, vector_tensor (kh) };
  GError *error = nullptr;
  ASSERT_TRUE (slim_qattention_check (r, &error)) << error->message;

  std::mt19937 rng (9);
  std::uniform_real_distribution<float> u (-2.0f, 2.0f);
  std::vector<float> q ((size_t)(n_tokens * q_dim)), k ((size_t)(n_tokens * kv_dim)),
      v ((size_t)(n_tokens * kv_dim));
  for (auto *x : { &q, &k, &v })
    for (float &e : *x)
      e = u (rng);
  std::vector<float> q0 = q, k0 = k, v0 = v;
  ASSERT_TRUE (
      slim_qattention_apply (r, q.data (), k.data (), v.data (), n_tokens, &config, &error));

  // plain loops: kv cache per channel, then fa3 per head (v has no fa3 here)
  SlimQParamsConfig sym;
  ASSERT_TRUE (slim_qparams_config_init (&sym, SLIM_QDTYPE_INT8, TRUE, 0, nullptr));
  const float zero = 0.0f;
  for (gint64 t = 0; t < n_tokens; t++)
    {
      for (gint64 c = 0; c < kv_dim; c++)
        {
          size_t i = (size_t)(t * kv_dim + c);
          float kq, vq, kf;
          slim_fake_quantize_rows_ref (&asym, &k0[i], 1, 1, &ks[(size_t)c], &ko[(size_t)c], 1, &kq);
          slim_fake_quantize_rows_ref (&asym, &v0[i], 1, 1, &vs[(size_t)c], &vo[(size_t)c], 1, &vq);
          slim_fake_quantize_rows_ref (&sym, &kq, 1, 1, &kh[(size_t)(c / 3)], &zero, 1, &kf);
          EXPECT_EQ (k[i], kf) << t << "," << c;
          EXPECT_EQ (v[i], vq) << t << "," << c;
        }
      for (gint64 c = 0; c < q_dim; c++)
        {
          size_t i = (size_t)(t * q_dim + c);
          float qf;
          slim_fake_quantize_rows_ref (&sym, &q0[i], 1, 1, &qh[(size_t)(c / 3)], &zero, 1, &qf);
          EXPECT_EQ (q[i], qf) << t << "," << c;
        }
    }
  EXPECT_NE (q, q0);
  EXPECT_NE (v, v0);

  // a model of another shape is refused
  config.n_kv_heads = 4;
  EXPECT_FALSE (
      slim_qattention_apply (r, q.data (), k.data (), v.data (), n_tokens, &config, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("model.layers.0.self_attn"), std::string::npos);
  g_clear_error (&error);
  slim_qattention_free (r);
}

TEST (QAttention, CheckRefusesBadVectors)
{
  SlimQAttention *r = slim_qattention_new ("a", 2, 1, 4);
  r->fa[SLIM_QATTENTION_V] = { TRUE,
                               { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_HEAD, TRUE },
                               vector_tensor ({ 0.1f, 0.2f }) }; // 1 kv head, not 2
  GError *error = nullptr;
  EXPECT_FALSE (slim_qattention_check (r, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("fa_v scale"), std::string::npos) << error->message;
  g_clear_error (&error);
  slim_tensor_unref (r->fa[SLIM_QATTENTION_V].scale);
  r->fa[SLIM_QATTENTION_V].scale = vector_tensor ({ 0.0f }); // not positive
  EXPECT_FALSE (slim_qattention_check (r, &error));
  g_clear_error (&error);
  slim_tensor_unref (r->fa[SLIM_QATTENTION_V].scale);
  r->fa[SLIM_QATTENTION_V].scale = vector_tensor ({ 0.5f });
  EXPECT_TRUE (slim_qattention_check (r, &error));
  // copies share the tensors and free independently
  SlimQAttention *copy = slim_qattention_copy (r);
  slim_qattention_free (r);
  EXPECT_TRUE (slim_qattention_check (copy, &error));
  slim_qattention_free (copy);
}

TEST (QAttention, LayerKeepsOneRecordPerAttention)
{
  SlimLayer *layer = slim_layer_new (0, "model.layers.0");
  slim_layer_set_qattention (layer, slim_qattention_new ("model.layers.0.self_attn", 2, 1, 4));
  SlimQAttention *second = slim_qattention_new ("model.layers.0.self_attn", 2, 1, 4);
  second->kv_cache = TRUE;
  slim_layer_set_qattention (layer, second);
  GPtrArray *all = slim_layer_list_qattentions (layer);
  ASSERT_EQ (all->len, 1u);
  EXPECT_TRUE (static_cast<SlimQAttention *> (g_ptr_array_index (all, 0))->kv_cache);
  g_ptr_array_unref (all);
  EXPECT_EQ (slim_layer_get_qattention (layer, "model.layers.1.self_attn"), nullptr);
  g_object_unref (layer);
}

} // namespace
