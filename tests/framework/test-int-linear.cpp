// SPDX-License-Identifier: Apache-2.0
//
// test-int-linear.cpp: quantized linears as integer products
// (slim-int-linear.h) and `slimflow eval` of saved W8A8 / W8A8_DYNAMIC
// folders with --linear_math int8 against float (slim-quant-model.h).
//
// Exactness: the int8 forward and its reference share the activation
// quantization and the scaling code and differ only in the int32 product
// (slim_igemm_s8s8 vs slim_igemm_s8s8_ref), whose sums are exact, so every
// comparison between them is bit for bit (memcmp, no tolerance), for single
// linears and for whole-model logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <json-glib/json-glib.h>

#include "quant-cli-util.hpp"
#include "slim-error.h"
#include "slim-decoder.h"
#include "slim-eval.h"
#include "slim-igemm.h"
#include "slim-int-linear.h"
#include "slim-linalg.h"
#include "slim-linear-math.h"
#include "slim-model.h"
#include "slim-pack.h"
#include "slim-qlinear.h"
#include "slim-qparams.h"
#include "slim-safetensors.h"
#include "slim-quant-model.h"
#include "slim-test.h"
#include "slim-text.h"
#include "slim-tokenizer.h"

namespace
{

std::vector<float>
random_floats (size_t n, float lo, float hi, std::mt19937 &rng)
{
  std::uniform_real_distribution<float> d (lo, hi);
  std::vector<float> v (n);
  for (float &x : v)
    x = d (rng);
  return v;
}

std::vector<gint8>
random_codes (size_t n, int lo, int hi, std::mt19937 &rng)
{
  std::uniform_int_distribution<int> d (lo, hi);
  std::vector<gint8> v (n);
  for (gint8 &x : v)
    x = (gint8)d (rng);
  return v;
}

bool
bitwise_equal (const std::vector<float> &a, const std::vector<float> &b)
{
  // memcmp must not see the null data () of an empty vector (UBSan)
  return a.size () == b.size ()
         && (a.empty () || std::memcmp (a.data (), b.data (), a.size () * sizeof (float)) == 0);
}

struct StaticCase
{
  gint64 n_tokens, n_out, n_in;
  float input_offset;
  float x_lo, x_hi; // activation range: beyond the calibrated one saturates the codes
};

// Static W8A8: the fast path equals the reference bit for bit, and both
// equal the spec's formula y = deq (sum xq Wq + quant_bias) evaluated
// independently in double to float rounding: the only float operations
// are the int -> float conversion of the sum (exact below 2^24, and at
// most 2^-24 relative above) and one product, so |y - y_double| <=
// 2^-23 |y_double| (stated with a factor 2 of margin).
TEST (IntLinear, StaticEqualsReferenceAndFormula)
{
  std::mt19937 rng (7);
  const StaticCase cases[] = {
    { 5, 7, 3, 0.0f, -1.0f, 1.0f },      // tails everywhere
    { 33, 17, 65, -3.0f, -1.0f, 1.0f },  // past one VNNI register width
    { 1, 64, 64, 5.0f, -1.0f, 1.0f },    // one token
    { 9, 12, 130, 0.0f, -50.0f, 50.0f }, // every code saturated at -128 / 127
    { 0, 8, 16, 0.0f, -1.0f, 1.0f },     // no tokens
  };
  for (const StaticCase &c : cases)
    {
      const float input_scale = 2.0f / 255.0f;
      std::vector<gint8> wq = random_codes ((size_t)(c.n_out * c.n_in), -128, 127, rng);
      std::vector<float> deq = random_floats ((size_t)c.n_out, 1e-5f, 1e-3f, rng);
      std::vector<gint32> qb (c.n_out);
      std::uniform_int_distribution<int> db (-5000, 5000);
      for (gint32 &b : qb)
        b = db (rng);
      std::vector<float> x = random_floats ((size_t)(c.n_tokens * c.n_in), c.x_lo, c.x_hi, rng);
      GError *error = nullptr;
      SlimIntLinear *lin
          = slim_int_linear_new_static (wq.data (), c.n_out, c.n_in, input_scale, c.input_offset,
                                        deq.data (), qb.data (), &error);
      ASSERT_NE (lin, nullptr) << error->message;
      std::vector<float> y ((size_t)(c.n_tokens * c.n_out), -1.0f);
      std::vector<float> y_ref (y.size (), -2.0f);
      slim_int_linear_forward (lin, x.data (), c.n_tokens, y.data ());
      slim_int_linear_forward_ref (lin, x.data (), c.n_tokens, y_ref.data ());
      EXPECT_TRUE (bitwise_equal (y, y_ref)) << c.n_tokens << "x" << c.n_out << "x" << c.n_in;

      SlimQParamsConfig cfg;
      ASSERT_TRUE (
          slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, c.input_offset == 0.0f, 0, nullptr));
      std::vector<gint8> xq (x.size ());
      if (c.n_tokens > 0)
        slim_quantize_rows_ref (&cfg, x.data (), c.n_tokens, c.n_in, &input_scale, &c.input_offset,
                                1, xq.data ());
      int saturated = 0;
      for (gint8 q : xq)
        saturated += q == -128 || q == 127;
      if (c.x_hi > 10.0f)
        {
          // the case does what it says: all but the inputs within 1 of 0
          EXPECT_GT (saturated, (int)(0.95 * (double)xq.size ()));
        }
      for (gint64 t = 0; t < c.n_tokens; t++)
        for (gint64 n = 0; n < c.n_out; n++)
          {
            long long acc = qb[n];
            for (gint64 k = 0; k < c.n_in; k++)
              acc += (long long)xq[t * c.n_in + k] * wq[n * c.n_in + k];
            double want = (double)deq[n] * (double)acc;
            EXPECT_NEAR (y[t * c.n_out + n], want, std::fabs (want) * 0x1p-23 + 1e-30)
                << t << "," << n;
          }
      slim_int_linear_free (lin);
    }
}

// Per-token activations, per-channel and per-group weight scales, with
// and without weight offsets and bias: the fast path equals the reference
// bit for bit; against the formula in double, each group's term is one
// float product chain (relative 2^-22) and the groups and bias are summed
// in float, so the bound is 2^-20 of the sum of the terms' magnitudes.
TEST (IntLinear, PerTokenEqualsReferenceAndFormula)
{
  std::mt19937 rng (11);
  struct Case
  {
    gint64 n_tokens, n_out, n_in, group_size;
    bool offsets, bias;
  } cases[] = {
    { 7, 5, 9, 0, false, false },   { 16, 33, 96, 32, false, true }, { 3, 8, 128, 64, true, true },
    { 1, 130, 70, 0, true, false }, { 4, 6, 12, 3, false, false },
  };
  for (const Case &c : cases)
    {
      gint64 n_groups = c.group_size > 0 ? c.n_in / c.group_size : 1;
      gint64 gs = c.n_in / n_groups;
      std::vector<gint8> wq = random_codes ((size_t)(c.n_out * c.n_in), -128, 127, rng);
      std::vector<float> ws = random_floats ((size_t)(c.n_out * n_groups), 1e-4f, 1e-2f, rng);
      std::vector<float> wo (ws.size (), 0.0f);
      if (c.offsets)
        for (float &o : wo)
          o = (float)(int)(random_floats (1, -8.0f, 8.0f, rng)[0]);
      std::vector<float> bias = random_floats ((size_t)c.n_out, -1.0f, 1.0f, rng);
      std::vector<float> x = random_floats ((size_t)(c.n_tokens * c.n_in), -3.0f, 3.0f, rng);
      for (gint64 k = 0; k < c.n_in && c.n_tokens > 1; k++)
        x[c.n_in + k] = 0.0f; // an all-zero token: scale eps, every code 0
      GError *error = nullptr;
      SlimIntLinear *lin = slim_int_linear_new_per_token (
          wq.data (), c.n_out, c.n_in, ws.data (), c.offsets ? wo.data () : nullptr, c.group_size,
          c.bias ? bias.data () : nullptr, &error);
      ASSERT_NE (lin, nullptr) << error->message;
      std::vector<float> y ((size_t)(c.n_tokens * c.n_out), -1.0f);
      std::vector<float> y_ref (y.size (), -2.0f);
      slim_int_linear_forward (lin, x.data (), c.n_tokens, y.data ());
      slim_int_linear_forward_ref (lin, x.data (), c.n_tokens, y_ref.data ());
      EXPECT_TRUE (bitwise_equal (y, y_ref)) << c.n_out << "x" << c.n_in << " gs " << c.group_size;

      SlimQParamsConfig cfg;
      ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, TRUE, 0, nullptr));
      for (gint64 t = 0; t < c.n_tokens; t++)
        {
          const float *row = x.data () + t * c.n_in;
          float mn, mx, s, o;
          std::vector<gint8> xq (c.n_in);
          slim_minmax_rows (row, 1, c.n_in, &mn, &mx);
          slim_qparams_compute (&cfg, mn, mx, &s, &o);
          slim_quantize_rows_ref (&cfg, row, 1, c.n_in, &s, &o, 1, xq.data ());
          for (gint64 n = 0; n < c.n_out; n++)
            {
              double want = c.bias ? bias[n] : 0.0, mag = std::fabs (want);
              for (gint64 g = 0; g < n_groups; g++)
                {
                  long long acc = 0, xsum = 0;
                  for (gint64 k = g * gs; k < (g + 1) * gs; k++)
                    {
                      acc += (long long)xq[k] * wq[n * c.n_in + k];
                      xsum += xq[k];
                    }
                  double term = (double)s * ws[n * n_groups + g]
                                * ((double)acc - (double)wo[n * n_groups + g] * (double)xsum);
                  want += term;
                  mag += std::fabs (term);
                }
              EXPECT_NEAR (y[t * c.n_out + n], want, mag * 0x1p-20 + 1e-30) << t << "," << n;
            }
        }
      slim_int_linear_free (lin);
    }
}

// The integer product against the float fake-quant product it replaces:
// same activation codes, the weight dequantized as W = Wq deq / s_x, the
// float bias added, versus quant_bias = round(bias / deq - o sum Wq).  The
// difference is the rounding of quant_bias (at most deq / 2 per output)
// plus float32 accumulation error of the fake-quant sgemm (bounded by
// n_in 2^-24 sum |x^ w|, stated with a factor 4 of margin).
TEST (IntLinear, StaticAgreesWithFakeQuantFloat)
{
  std::mt19937 rng (3);
  const gint64 n_tokens = 12, n_out = 24, n_in = 80;
  const float input_scale = 0.01f, input_offset = -7.0f;
  std::vector<gint8> wq = random_codes ((size_t)(n_out * n_in), -127, 127, rng);
  std::vector<float> deq = random_floats ((size_t)n_out, 1e-5f, 1e-4f, rng);
  std::vector<float> bias = random_floats ((size_t)n_out, -0.5f, 0.5f, rng);
  std::vector<gint32> qb (n_out);
  for (gint64 n = 0; n < n_out; n++)
    {
      long long sum = 0;
      for (gint64 k = 0; k < n_in; k++)
        sum += wq[n * n_in + k];
      qb[n] = (gint32)std::nearbyint (bias[n] / deq[n] - (double)sum * input_offset);
    }
  std::vector<float> x = random_floats ((size_t)(n_tokens * n_in), -1.2f, 1.2f, rng);
  SlimIntLinear *lin = slim_int_linear_new_static (wq.data (), n_out, n_in, input_scale,
                                                   input_offset, deq.data (), qb.data (), nullptr);
  ASSERT_NE (lin, nullptr);
  std::vector<float> y ((size_t)(n_tokens * n_out));
  slim_int_linear_forward (lin, x.data (), n_tokens, y.data ());
  slim_int_linear_free (lin);

  SlimQParamsConfig cfg;
  ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, FALSE, 0, nullptr));
  std::vector<float> xf (x.size ());
  slim_fake_quantize_rows (&cfg, x.data (), n_tokens, n_in, &input_scale, &input_offset, 1,
                           xf.data ());
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 n = 0; n < n_out; n++)
      {
        float acc = bias[n];
        double mag = 0.0;
        for (gint64 k = 0; k < n_in; k++)
          {
            float w = (float)wq[n * n_in + k] * (deq[n] / input_scale);
            acc += xf[t * n_in + k] * w;
            mag += std::fabs ((double)xf[t * n_in + k] * w);
          }
        double bound = 0.5 * deq[n] + 4.0 * (double)n_in * 0x1p-24 * mag + 1e-7;
        EXPECT_NEAR (y[t * n_out + n], acc, bound) << t << "," << n;
      }
}

// The fake-quant calibration product (calib_math int8): the fast path
// equals the reference bit for bit, and both equal
//   (s ws[n]) (sum xq Wq - o rowsum[n]) + bias[n]
// evaluated in double to float rounding: one float product s ws, the
// conversion of an exact integer and one product and one sum, so
// |y - y_double| <= 2^-22 |deq sum| + 2^-24 |y| (stated with a factor 2 of
// margin).  Against the float fake-quant product (sgemm of (q - o) s with
// Wq ws, float32 terms summed in OpenBLAS's order) they agree to float32
// accumulation error: relative to sum |terms|, below 1e-5 for these K (the
// float sum's error grows at most with K eps; measured about 1e-7).  Raw
// and already fake-quantized inputs give the same codes, hence the same
// bytes.
TEST (IntLinear, FakeQuantEqualsReferenceAndFloatProduct)
{
  std::mt19937 rng (11);
  const StaticCase cases[] = {
    { 5, 7, 3, 0.0f, -1.0f, 1.0f },      { 33, 70, 65, -3.0f, -1.0f, 1.0f },
    { 1, 64, 64, 5.0f, -1.0f, 1.0f },    { 13, 130, 2049, 100.0f, -1.0f, 1.0f },
    { 9, 12, 130, 0.0f, -50.0f, 50.0f }, { 0, 8, 16, 0.0f, -1.0f, 1.0f },
  };
  for (const StaticCase &c : cases)
    {
      SCOPED_TRACE (::testing::Message () << c.n_tokens << "x" << c.n_out << "x" << c.n_in);
      const float s = 2.0f / 255.0f, o = c.input_offset;
      std::vector<gint8> wq = random_codes ((size_t)(c.n_out * c.n_in), -128, 127, rng);
      std::vector<float> ws = random_floats ((size_t)c.n_out, 1e-4f, 1e-2f, rng);
      std::vector<float> bias = random_floats ((size_t)c.n_out, -1.0f, 1.0f, rng);
      std::vector<float> x = random_floats ((size_t)(c.n_tokens * c.n_in), c.x_lo, c.x_hi, rng);
      GError *error = nullptr;
      SlimIntLinear *lin = slim_int_linear_new_fake_quant (wq.data (), c.n_out, c.n_in, ws.data (),
                                                           bias.data (), &error);
      ASSERT_NE (lin, nullptr) << error->message;
      std::vector<float> y ((size_t)(c.n_tokens * c.n_out), -1.0f), y_ref (y.size (), -2.0f);
      std::vector<float> y_fq (y.size (), -3.0f);
      slim_int_linear_forward_fake_quant (lin, x.data (), c.n_tokens, s, o, y.data ());
      slim_int_linear_forward_fake_quant_ref (lin, x.data (), c.n_tokens, s, o, y_ref.data ());
      EXPECT_TRUE (bitwise_equal (y, y_ref));

      SlimQParamsConfig cfg;
      ASSERT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, o == 0.0f, 0, nullptr));
      std::vector<float> xf (x.size ()), wf (wq.size ());
      std::vector<gint8> xq (x.size ());
      if (c.n_tokens > 0)
        {
          slim_fake_quantize_rows_ref (&cfg, x.data (), c.n_tokens, c.n_in, &s, &o, 1, xf.data ());
          slim_quantize_rows_ref (&cfg, x.data (), c.n_tokens, c.n_in, &s, &o, 1, xq.data ());
        }
      // already fake-quantized input: the same codes, the same bytes
      slim_int_linear_forward_fake_quant (lin, xf.data (), c.n_tokens, s, o, y_fq.data ());
      EXPECT_TRUE (bitwise_equal (y, y_fq));
      for (gint64 n = 0; n < c.n_out; n++)
        for (gint64 k = 0; k < c.n_in; k++)
          wf[n * c.n_in + k] = (float)wq[n * c.n_in + k] * ws[n];
      std::vector<float> y_float (y.size ());
      if (c.n_tokens > 0)
        slim_linalg_linear (xf.data (), wf.data (), bias.data (), y_float.data (), c.n_tokens,
                            c.n_in, c.n_out);
      double worst = 0.0;
      for (gint64 t = 0; t < c.n_tokens; t++)
        for (gint64 n = 0; n < c.n_out; n++)
          {
            long long sum = 0;
            double mag = 0.0;
            for (gint64 k = 0; k < c.n_in; k++)
              {
                sum += (long long)xq[t * c.n_in + k] * wq[n * c.n_in + k];
                mag += std::fabs ((double)xf[t * c.n_in + k] * wf[n * c.n_in + k]);
              }
            long long rowsum = 0;
            for (gint64 k = 0; k < c.n_in; k++)
              rowsum += wq[n * c.n_in + k];
            const double deq = (double)(s * ws[n]);
            const double want = deq * (double)(sum - (long long)o * rowsum) + bias[n];
            double got = y[t * c.n_out + n];
            EXPECT_NEAR (got, want,
                         0x1p-22 * std::fabs (want - bias[n]) + 0x1p-24 * std::fabs (want) + 1e-30)
                << t << "," << n;
            worst = std::max (worst, std::fabs (got - y_float[t * c.n_out + n]) / (mag + 1e-30));
          }
      EXPECT_LT (worst, 1e-5);
      slim_int_linear_free (lin);
    }
}

TEST (IntLinear, BadInputs)
{
  std::vector<gint8> wq (64, 1);
  std::vector<float> ones (64, 1.0f);
  std::vector<gint32> qb (64, 0);
  GError *error = nullptr;

  // more inputs than the int32 bound allows
  std::vector<gint8> wide ((size_t)(SLIM_IGEMM_MAX_K + 1), 1);
  EXPECT_EQ (slim_int_linear_new_per_token (wide.data (), 1, SLIM_IGEMM_MAX_K + 1, ones.data (),
                                            nullptr, 0, nullptr, &error),
             nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
  // a group size that does not divide n_in
  EXPECT_EQ (
      slim_int_linear_new_per_token (wq.data (), 4, 16, ones.data (), nullptr, 5, nullptr, &error),
      nullptr);
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
  // a zero weight scale, a NaN deq_scale, a negative input_scale
  std::vector<float> bad = ones;
  bad[2] = 0.0f;
  EXPECT_EQ (
      slim_int_linear_new_per_token (wq.data (), 4, 16, bad.data (), nullptr, 0, nullptr, &error),
      nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("weight_scale[2]"), std::string::npos)
      << error->message;
  g_clear_error (&error);
  bad[2] = NAN;
  EXPECT_EQ (
      slim_int_linear_new_static (wq.data (), 4, 16, 1.0f, 0.0f, bad.data (), qb.data (), &error),
      nullptr);
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
  EXPECT_EQ (
      slim_int_linear_new_static (wq.data (), 4, 16, -1.0f, 0.0f, ones.data (), qb.data (), &error),
      nullptr);
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
}

TEST (LinearMath, Names)
{
  SlimLinearMath m = SLIM_LINEAR_MATH_FLOAT;
  GError *error = nullptr;
  for (const char *name : { "float", "int8", "int8_ref" })
    {
      ASSERT_TRUE (slim_linear_math_parse (name, &m, nullptr)) << name;
      EXPECT_STREQ (slim_linear_math_get_name (m), name);
    }
  EXPECT_FALSE (slim_linear_math_parse ("int4", &m, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("float, int8, int8_ref"), std::string::npos);
  g_clear_error (&error);
}

// ---- deployed records (the calibration forward) --------------------------

SlimTensor *
tensor_2d (
    const char *name, SlimDType dtype, gint64 rows, gint64 cols, const void *data, size_t elem)
{
  SlimTensor *t = slim_tensor_new_2d (name, dtype, rows, cols);
  std::memcpy (slim_tensor_get_data_mut (t), data, (size_t)(rows * cols) * elem);
  return t;
}

// A layer with one linear "m" (n_out, n_in) and its bias, quantized W8A8
// static (per-tensor asymmetric act, per-channel symmetric int8 weight) or
// W8A8_DYNAMIC: the layer's weight is the dequantized one, as linear_quant
// leaves it.
struct DeployedLinear
{
  gint64 n_out = 24, n_in = 40;
  std::vector<gint8> wq;
  std::vector<float> ws, bias;
  float input_scale = 0.02f, input_offset = -5.0f;
  SlimLayer *layer = nullptr;

  DeployedLinear (bool dynamic, SlimLinearMath math, std::mt19937 &rng)
  {
    wq = random_codes ((size_t)(n_out * n_in), -127, 127, rng);
    ws = random_floats ((size_t)n_out, 1e-3f, 1e-2f, rng);
    bias = random_floats ((size_t)n_out, -0.3f, 0.3f, rng);
    std::vector<float> w ((size_t)(n_out * n_in));
    for (gint64 n = 0; n < n_out; n++)
      for (gint64 k = 0; k < n_in; k++)
        w[n * n_in + k] = (float)wq[n * n_in + k] * ws[n];
    layer = slim_layer_new (0, "model.layers.0");
    SlimTensor *wt = tensor_2d ("m.weight", SLIM_DTYPE_F32, n_out, n_in, w.data (), sizeof (float));
    SlimTensor *bt = slim_tensor_new_1d ("m.bias", SLIM_DTYPE_F32, n_out);
    std::memcpy (slim_tensor_get_data_mut (bt), bias.data (), bias.size () * sizeof (float));
    slim_layer_set_tensor (layer, wt);
    slim_layer_set_tensor (layer, bt);
    slim_tensor_unref (wt);
    slim_tensor_unref (bt);
    set_record (dynamic, math);
  }
  ~DeployedLinear ()
  {
    g_object_unref (layer);
  }

  void
  set_record (bool dynamic, SlimLinearMath math)
  {
    SlimQLinear *r = slim_qlinear_new ("m", dynamic ? "W8A8_DYNAMIC" : "W8A8");
    r->act = dynamic ? SlimQScheme{ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, TRUE }
                     : SlimQScheme{ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TENSOR, FALSE };
    r->weight = SlimQScheme{ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, TRUE };
    r->input_scale = input_scale;
    r->input_offset = input_offset;
    r->weight_q = tensor_2d ("m.weight", SLIM_DTYPE_I8, n_out, n_in, wq.data (), 1);
    r->weight_scale
        = tensor_2d ("m.weight_scale", SLIM_DTYPE_F32, n_out, 1, ws.data (), sizeof (float));
    r->weight_offset = slim_tensor_new_2d ("m.weight_offset", SLIM_DTYPE_F32, n_out, 1);
    r->n_out = n_out;
    r->n_in = n_in;
    r->math = math;
    slim_layer_set_qlinear (layer, r);
  }

  std::vector<float>
  forward (const std::vector<float> &x, gint64 n_tokens)
  {
    SlimForwardHooks hooks;
    slim_qlinear_get_deployed_hooks (layer, &hooks);
    std::vector<float> y ((size_t)(n_tokens * n_out), NAN);
    GError *error = nullptr;
    EXPECT_TRUE (slim_decoder_linear (layer, "m", x.data (), n_tokens, n_in, n_out, y.data (),
                                      &hooks, &error))
        << (error != nullptr ? error->message : "");
    g_clear_error (&error);
    return y;
  }

  // The saver's deq_scale / quant_bias (slim-pack.h) in a reference product.
  std::vector<float>
  reference (bool dynamic, const std::vector<float> &x, gint64 n_tokens)
  {
    SlimIntLinear *lin;
    if (dynamic)
      lin = slim_int_linear_new_per_token (wq.data (), n_out, n_in, ws.data (), nullptr, 0,
                                           bias.data (), nullptr);
    else
      {
        std::vector<float> deq (n_out);
        std::vector<gint32> qb (n_out);
        slim_deq_scale_compute (input_scale, ws.data (), n_out, deq.data ());
        EXPECT_TRUE (slim_quant_bias_compute (bias.data (), deq.data (), input_offset, wq.data (),
                                              n_out, n_in, qb.data (), nullptr));
        lin = slim_int_linear_new_static (wq.data (), n_out, n_in, input_scale, input_offset,
                                          deq.data (), qb.data (), nullptr);
      }
    EXPECT_NE (lin, nullptr);
    std::vector<float> y ((size_t)(n_tokens * n_out), NAN);
    slim_int_linear_forward_ref (lin, x.data (), n_tokens, y.data ());
    slim_int_linear_free (lin);
    return y;
  }
};

// A record with math int8 runs, in the deployed forward (the hooks every
// runner chains), as the integer product with the saver's deq_scale and
// quant_bias: bit for bit the reference product of the values the
// ascendv1 folder holds.  math float keeps the fake-quant float product;
// the two agree within half a deq_scale step (quant_bias rounding) plus
// float32 accumulation (n_in 2^-24 sum |x w|, factor 4 of margin) for the
// static record, and within that accumulation bound for the dynamic one
// (no rounded bias there).  Replacing the record drops the cached product.
TEST (DeployedRecord, IntegerMathIsTheSavedProduct)
{
  std::mt19937 rng (5);
  for (bool dynamic : { false, true })
    {
      DeployedLinear d (dynamic, SLIM_LINEAR_MATH_INT8, rng);
      const gint64 n_tokens = 9;
      std::vector<float> x = random_floats ((size_t)(n_tokens * d.n_in), -1.5f, 1.0f, rng);
      const SlimQLinear *rec = slim_layer_get_qlinear (d.layer, "m");
      ASSERT_TRUE (slim_qlinear_is_integer (rec));
      std::vector<float> y = d.forward (x, n_tokens);
      EXPECT_TRUE (bitwise_equal (y, d.reference (dynamic, x, n_tokens))) << dynamic;

      d.set_record (dynamic, SLIM_LINEAR_MATH_FLOAT);
      EXPECT_FALSE (slim_qlinear_is_integer (slim_layer_get_qlinear (d.layer, "m")));
      std::vector<float> yf = d.forward (x, n_tokens);
      for (gint64 t = 0; t < n_tokens; t++)
        for (gint64 n = 0; n < d.n_out; n++)
          {
            double mag = 0.0;
            for (gint64 k = 0; k < d.n_in; k++)
              mag += std::fabs ((double)x[t * d.n_in + k] * d.wq[n * d.n_in + k] * d.ws[n]);
            double half_step = dynamic ? 0.0 : 0.5 * d.input_scale * d.ws[n];
            EXPECT_NEAR (y[t * d.n_out + n], yf[t * d.n_out + n],
                         half_step + 4.0 * (double)d.n_in * 0x1p-24 * mag + 1e-7)
                << dynamic << " " << t << "," << n;
          }

      // a new record (another input scale) is used, not the cached product
      d.input_scale *= 2.0f;
      d.set_record (dynamic, SLIM_LINEAR_MATH_INT8);
      EXPECT_TRUE (bitwise_equal (d.forward (x, n_tokens), d.reference (dynamic, x, n_tokens)));
    }
}

// A record the integer product cannot run is an error of the forward
// naming the module, not a silent float fallback.
TEST (DeployedRecord, AsymmetricStaticWeightIsRefused)
{
  std::mt19937 rng (6);
  DeployedLinear d (false, SLIM_LINEAR_MATH_INT8, rng);
  SlimQLinear *r = slim_qlinear_copy (slim_layer_get_qlinear (d.layer, "m"));
  SlimTensor *offset = slim_tensor_copy (r->weight_offset, "m.weight_offset");
  ((float *)slim_tensor_get_data_mut (offset))[3] = 2.0f;
  slim_tensor_unref (r->weight_offset);
  r->weight_offset = offset;
  slim_layer_set_qlinear (d.layer, r);
  SlimForwardHooks hooks;
  slim_qlinear_get_deployed_hooks (d.layer, &hooks);
  std::vector<float> x ((size_t)d.n_in, 0.5f), y ((size_t)d.n_out);
  GError *error = nullptr;
  EXPECT_FALSE (
      slim_decoder_linear (d.layer, "m", x.data (), 1, d.n_in, d.n_out, y.data (), &hooks, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("m (W8A8): weight_offset[3]"), std::string::npos)
      << error->message;
  g_clear_error (&error);
}

// ---- saved folders ------------------------------------------------------

struct Folder
{
  const char *name;
  const char *yaml; // example file, or inline YAML when it starts with "apiversion"
  const char *label;
};

// Per-group W8A8_DYNAMIC (group 32 divides hidden 64; down_proj, with 172
// inputs, stays float as in the example).
const char kPerGroupDynamic[] = R"(apiversion: modelslim_v1
spec:
  process:
    - type: "linear_quant"
      qconfig:
        act: { scope: "per_token", dtype: "int8", symmetric: True, method: "minmax" }
        weight:
          scope: "per_group"
          dtype: "int8"
          symmetric: True
          method: "minmax"
          ext: { group_size: 32 }
      include: ["*"]
      exclude: ["*down_proj*"]
  save:
    - type: "ascendv1_saver"
)";

const Folder kFolders[] = {
  { "w8a8", "dense-w8a8.yaml", "W8A8" },
  { "w8a8-dynamic", "dense-w8a8-dynamic.yaml", "W8A8_DYNAMIC" },
  { "w8a8-dynamic-group", kPerGroupDynamic, "W8A8_DYNAMIC" },
};

// Quantizes stories260K once per folder kind (4 x 64 calibration tokens).
const std::string &
folder (const Folder &f)
{
  static std::map<std::string, std::string> done;
  auto it = done.find (f.name);
  if (it != done.end ())
    return it->second;
  static std::string tmp = slim_test_make_tmpdir ();
  std::string config = std::string (f.yaml).rfind ("apiversion", 0) == 0
                           ? tmp + "/" + f.name + ".yaml"
                           : quant_example (f.yaml);
  if (config.rfind (tmp, 0) == 0)
    quant_write_file (config, f.yaml);
  std::string save = tmp + "/" + f.name;
  QuantChild q
      = quant_cli ({ "--model_path", quant_stories_model (), "--save_path", save, "--config_path",
                     config, "--max_samples", "4", "--max_length", "64" });
  EXPECT_EQ (q.exit_code, 0) << q.err;
  return done[f.name] = save;
}

std::vector<gint32>
excerpt_ids (gint64 max_tokens)
{
  GError *error = nullptr;
  SlimTokenizer *tok = slim_tokenizer_new_from_dir (quant_stories_model ().c_str (), &error);
  EXPECT_NE (tok, nullptr);
  char *text = slim_text_read_file (
      slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt").c_str (),
      SLIM_TEXT_DEFAULT_MAX_BYTES, &error);
  EXPECT_NE (text, nullptr);
  GArray *ids = slim_tokenizer_encode (tok, text, TRUE, &error);
  EXPECT_NE (ids, nullptr);
  std::vector<gint32> v ((const gint32 *)(gpointer)ids->data,
                         (const gint32 *)(gpointer)ids->data + MIN ((gint64)ids->len, max_tokens));
  g_array_unref (ids);
  g_free (text);
  g_object_unref (tok);
  return v;
}

struct EvalRun
{
  SlimEvalResult result{};
  std::vector<float> logits;
  guint n_integer = 0;
};

// Evaluates a saved folder with one linear math against the float model,
// recording every prediction's logits.
EvalRun
evaluate (const std::string &dir, SlimLinearMath math, const std::vector<gint32> &ids)
{
  EvalRun run;
  GError *error = nullptr;
  SlimQuantModel *quant = slim_quant_model_load_with_math (dir.c_str (), math, &error);
  EXPECT_NE (quant, nullptr) << (error != nullptr ? error->message : "");
  if (quant == nullptr)
    return run;
  run.n_integer = slim_quant_model_get_n_integer (quant);
  SlimModel *model = slim_model_open (slim_quant_model_get_float_dir (quant), &error);
  SlimModel *reference = slim_model_open (quant_stories_model ().c_str (), &error);
  EXPECT_NE (model, nullptr);
  EXPECT_NE (reference, nullptr);
  SlimForwardHooks hooks;
  slim_quant_model_get_hooks (quant, &hooks);
  SlimEvalOptions options;
  slim_eval_options_init (&options);
  options.n_ctx = 256;
  options.hooks = &hooks;
  gint64 n_windows = ((gint64)ids.size () + options.n_ctx - 1) / options.n_ctx;
  gint64 n_pred = (gint64)ids.size () - n_windows;
  run.logits.assign ((size_t)(n_pred * slim_model_get_config (model)->vocab_size), NAN);
  options.record_logits = run.logits.data ();
  EXPECT_TRUE (
      slim_eval_run (model, reference, ids.data (), ids.size (), &options, &run.result, &error))
      << (error != nullptr ? error->message : "");
  EXPECT_EQ (run.result.n_predictions, n_pred);
  g_clear_error (&error);
  g_object_unref (model);
  g_object_unref (reference);
  slim_quant_model_free (quant);
  return run;
}

// The integer path of a saved folder equals its reference (slim_igemm_s8s8_ref
// products) bit for bit over every logit of 1024 tokens, and stays close to
// the float fake-quant path.  Per linear the two use the same activation
// codes and weights and differ by float accumulation and, for static W8A8,
// the rounding of quant_bias (half a deq_scale step per output); through
// the layers those differences move some activations across a rounding
// boundary of the next linear's quantization, one code step each, which is
// why single logits can move by tenths.  Measured on these folders (4 x 64
// calibration tokens, ctx 256): logits' relative RMS difference 2.7e-3 .. 3.6e-3,
// max |difference| 0.27 .. 0.39, PPL ratio within 7e-4, top-1 within 0.003,
// KL to the float model within 4%.  Bounds (about 3x or more of margin):
// relative RMS < 1e-2, max < 1.0, PPL ratio within 0.2%, top-1 within
// 0.01, KL within half of the float path's (+1e-4).
TEST (QuantModelInt, Int8EqualsReferenceAndStaysNearFloat)
{
  std::vector<gint32> ids = excerpt_ids (1024);
  ASSERT_EQ (ids.size (), 1024u);
  for (const Folder &f : kFolders)
    {
      const std::string &dir = folder (f);
      EvalRun fl = evaluate (dir, SLIM_LINEAR_MATH_FLOAT, ids);
      EvalRun in = evaluate (dir, SLIM_LINEAR_MATH_INT8, ids);
      EvalRun ref = evaluate (dir, SLIM_LINEAR_MATH_INT8_REF, ids);
      EXPECT_EQ (fl.n_integer, 0u) << f.name;
      // 5 layers x q, k, v, o, gate, up (down_proj stays float)
      EXPECT_EQ (in.n_integer, 30u) << f.name;
      EXPECT_TRUE (bitwise_equal (in.logits, ref.logits)) << f.name;
      EXPECT_EQ (in.result.nll, ref.result.nll) << f.name;
      double max_diff = 0.0, sum_d2 = 0.0, sum_l2 = 0.0;
      for (size_t i = 0; i < in.logits.size (); i++)
        {
          double d = (double)in.logits[i] - (double)fl.logits[i];
          max_diff = std::max (max_diff, std::fabs (d));
          sum_d2 += d * d;
          sum_l2 += (double)fl.logits[i] * fl.logits[i];
        }
      double rel_rms = std::sqrt (sum_d2 / sum_l2);
      EXPECT_GT (max_diff, 0.0) << f.name << ": the paths must differ (else one is not run)";
      EXPECT_LT (max_diff, 1.0) << f.name;
      EXPECT_LT (rel_rms, 1e-2) << f.name;
      EXPECT_NEAR (in.result.perplexity / fl.result.perplexity, 1.0, 0.002) << f.name;
      EXPECT_NEAR (in.result.top1, fl.result.top1, 0.01) << f.name;
      EXPECT_NEAR (in.result.kl, fl.result.kl, 0.5 * fl.result.kl + 1e-4) << f.name;
      g_print ("%-20s float PPL %.4f KL %.6f top1 %.4f | int8 PPL %.4f KL %.6f top1 %.4f | "
               "max |dlogit| %.5f, relative RMS %.2e\n",
               f.name, fl.result.perplexity, fl.result.kl, fl.result.top1, in.result.perplexity,
               in.result.kl, in.result.top1, max_diff, rel_rms);
    }
}

// The integer calibration forward (examples/dense-w8a8-int8-forward.yaml,
// linear_math: int8) against the default (dense-w8a8.yaml), same
// calibration: the description and every integer weight are the same
// bytes (minmax weights do not depend on activations), and so is all of
// layer 0 (its inputs are the embeddings either way); from layer 1 on the
// static activation parameters come from inputs computed as deployed
// instead of by linear_quant's fake-quantized calibration forward with
// running ranges.  Measured on stories260K with 4 x 64 tokens: input_scale
// within 1.0% of the default's (1.5% with the whole lab_calib set),
// input_offset within 2 codes; PPL (int8 eval) within 0.1%.  Bounds: 5%,
// 4 codes, 0.5%.
TEST (QuantModelInt, IntegerCalibrationForward)
{
  const Folder int_fwd = { "w8a8-int8-forward", "dense-w8a8-int8-forward.yaml", "W8A8" };
  const std::string &a = folder (kFolders[0]), &b = folder (int_fwd);
  auto read = [] (const std::string &path) {
    gchar *text = nullptr;
    gsize n = 0;
    EXPECT_TRUE (g_file_get_contents (path.c_str (), &text, &n, nullptr)) << path;
    std::string s (text != nullptr ? text : "", n);
    g_free (text);
    return s;
  };
  EXPECT_EQ (read (a + "/quant_model_description.json"),
             read (b + "/quant_model_description.json"));
  GError *error = nullptr;
  SlimSafetensors *sa = slim_safetensors_open (a.c_str (), &error);
  SlimSafetensors *sb = slim_safetensors_open (b.c_str (), &error);
  ASSERT_NE (sa, nullptr);
  ASSERT_NE (sb, nullptr);
  int n_static = 0, n_changed = 0;
  double max_scale_rel = 0.0, max_offset = 0.0;
  for (const char *const *name = slim_safetensors_get_names (sa); *name != nullptr; name++)
    {
      std::string n (*name);
      SlimTensor *ta = slim_safetensors_get_tensor (sa, *name, &error);
      SlimTensor *tb = slim_safetensors_get_tensor (sb, *name, &error);
      ASSERT_NE (ta, nullptr) << n;
      ASSERT_NE (tb, nullptr) << n;
      ASSERT_EQ (slim_tensor_get_n_bytes (ta), slim_tensor_get_n_bytes (tb)) << n;
      bool same = std::memcmp (slim_tensor_get_data (ta), slim_tensor_get_data (tb),
                               slim_tensor_get_n_bytes (ta))
                  == 0;
      bool layer0 = n.rfind ("model.layers.0.", 0) == 0;
      bool act_param = n.find (".input_scale") != std::string::npos
                       || n.find (".input_offset") != std::string::npos
                       || n.find (".quant_bias") != std::string::npos
                       || n.find (".deq_scale") != std::string::npos;
      if (layer0 || !act_param)
        EXPECT_TRUE (same) << n;
      else
        n_changed += !same;
      if (n.find (".input_scale") != std::string::npos)
        {
          float va = *(const float *)slim_tensor_get_data (ta);
          float vb = *(const float *)slim_tensor_get_data (tb);
          max_scale_rel = std::max (max_scale_rel, std::fabs ((double)vb / va - 1.0));
          n_static++;
        }
      if (n.find (".input_offset") != std::string::npos)
        max_offset
            = std::max (max_offset, std::fabs ((double)*(const float *)slim_tensor_get_data (ta)
                                               - *(const float *)slim_tensor_get_data (tb)));
      slim_tensor_unref (ta);
      slim_tensor_unref (tb);
    }
  g_object_unref (sa);
  g_object_unref (sb);
  EXPECT_EQ (n_static, 30);
  EXPECT_GT (n_changed, 0)
      << "the option changed nothing: the integer forward did not feed layer 1";
  EXPECT_LT (max_scale_rel, 0.05);
  EXPECT_LE (max_offset, 4.0);
  std::vector<gint32> ids = excerpt_ids (1024);
  EvalRun ra = evaluate (a, SLIM_LINEAR_MATH_INT8, ids);
  EvalRun rb = evaluate (b, SLIM_LINEAR_MATH_INT8, ids);
  EXPECT_NEAR (rb.result.perplexity / ra.result.perplexity, 1.0, 0.005);
  g_print ("input_scale max relative change %.4f, input_offset max change %.0f, "
           "%d act tensors changed; PPL (int8 eval) default %.4f, int8 calibration forward %.4f\n",
           max_scale_rel, max_offset, n_changed, ra.result.perplexity, rb.result.perplexity);
}

// dense-w8a8.yaml with calib_math (int8, int8_ref): the calibration
// forward's products as integers.
std::string
calib_math_yaml (const char *math)
{
  return std::string (R"(apiversion: modelslim_v1
spec:
  process:
    - type: "linear_quant"
      calib_math: ")")
         + math + R"("
      qconfig:
        act: { scope: "per_tensor", dtype: "int8", symmetric: False, method: "minmax" }
        weight: { scope: "per_channel", dtype: "int8", symmetric: True, method: "minmax" }
      include: ["*"]
      exclude: ["*down_proj*"]
  save:
    - type: "ascendv1_saver"
)";
}

// calib_math int8 against the default float calibration products, same
// calibration: int8 and int8_ref write the same bytes (exact sums); against
// float the description and every integer weight are the same bytes (minmax
// weights do not depend on activations) and so are the static parameters
// of the linears whose inputs no quantized product touched (layer 0's
// q/k/v: RMSNorm of the embeddings); the others move by float32 rounding
// of the products only.  Measured on stories260K (4 x 64 tokens):
// input_scale within 5.6e-7 relative of float's, input_offset equal, PPL
// (int8 eval) within 7.5e-5.  Bounds: 1e-5, 1 code, 5e-4.
TEST (QuantModelInt, IntegerCalibrationProducts)
{
  static const std::string y8 = calib_math_yaml ("int8"), yr = calib_math_yaml ("int8_ref");
  const Folder f8 = { "w8a8-calib-int8", y8.c_str (), "W8A8" };
  const Folder fr = { "w8a8-calib-int8-ref", yr.c_str (), "W8A8" };
  const std::string &a = folder (kFolders[0]), &b = folder (f8), &r = folder (fr);
  GError *error = nullptr;
  SlimSafetensors *sa = slim_safetensors_open (a.c_str (), &error);
  SlimSafetensors *sb = slim_safetensors_open (b.c_str (), &error);
  SlimSafetensors *sr = slim_safetensors_open (r.c_str (), &error);
  ASSERT_NE (sa, nullptr);
  ASSERT_NE (sb, nullptr);
  ASSERT_NE (sr, nullptr);
  int n_static = 0, n_changed = 0;
  double max_scale_rel = 0.0, max_offset = 0.0;
  for (const char *const *name = slim_safetensors_get_names (sa); *name != nullptr; name++)
    {
      std::string n (*name);
      SlimTensor *ta = slim_safetensors_get_tensor (sa, *name, &error);
      SlimTensor *tb = slim_safetensors_get_tensor (sb, *name, &error);
      SlimTensor *tr = slim_safetensors_get_tensor (sr, *name, &error);
      ASSERT_NE (ta, nullptr) << n;
      ASSERT_NE (tb, nullptr) << n;
      ASSERT_NE (tr, nullptr) << n;
      ASSERT_EQ (slim_tensor_get_n_bytes (ta), slim_tensor_get_n_bytes (tb)) << n;
      ASSERT_EQ (slim_tensor_get_n_bytes (tb), slim_tensor_get_n_bytes (tr)) << n;
      EXPECT_EQ (std::memcmp (slim_tensor_get_data (tb), slim_tensor_get_data (tr),
                              slim_tensor_get_n_bytes (tb)),
                 0)
          << n << ": int8 and int8_ref differ";
      bool same = std::memcmp (slim_tensor_get_data (ta), slim_tensor_get_data (tb),
                               slim_tensor_get_n_bytes (ta))
                  == 0;
      bool untouched
          = n.rfind ("model.layers.0.self_attn.", 0) == 0 && n.find ("o_proj") == std::string::npos;
      bool act_param = n.find (".input_scale") != std::string::npos
                       || n.find (".input_offset") != std::string::npos
                       || n.find (".quant_bias") != std::string::npos
                       || n.find (".deq_scale") != std::string::npos;
      if (untouched || !act_param)
        EXPECT_TRUE (same) << n;
      else
        n_changed += !same;
      if (n.find (".input_scale") != std::string::npos)
        {
          float va = *(const float *)slim_tensor_get_data (ta);
          float vb = *(const float *)slim_tensor_get_data (tb);
          max_scale_rel = std::max (max_scale_rel, std::fabs ((double)vb / va - 1.0));
          n_static++;
        }
      if (n.find (".input_offset") != std::string::npos)
        max_offset
            = std::max (max_offset, std::fabs ((double)*(const float *)slim_tensor_get_data (ta)
                                               - *(const float *)slim_tensor_get_data (tb)));
      slim_tensor_unref (ta);
      slim_tensor_unref (tb);
      slim_tensor_unref (tr);
    }
  g_object_unref (sa);
  g_object_unref (sb);
  g_object_unref (sr);
  EXPECT_EQ (n_static, 30);
  EXPECT_GT (n_changed, 0) << "calib_math int8 changed nothing: its products did not run";
  EXPECT_LT (max_scale_rel, 1e-5);
  EXPECT_LE (max_offset, 1.0);
  std::vector<gint32> ids = excerpt_ids (1024);
  EvalRun ra = evaluate (a, SLIM_LINEAR_MATH_INT8, ids);
  EvalRun rb = evaluate (b, SLIM_LINEAR_MATH_INT8, ids);
  EXPECT_NEAR (rb.result.perplexity / ra.result.perplexity, 1.0, 5e-4);
  g_print ("calib_math int8 vs float: input_scale max relative change %.3g, input_offset max "
           "change %.0f, %d act tensors changed; PPL (int8 eval) float %.6f, int8 %.6f\n",
           max_scale_rel, max_offset, n_changed, ra.result.perplexity, rb.result.perplexity);
}

// A calib_math int8 for a scheme it cannot compute is a configuration error.
TEST (QuantModelInt, IntegerCalibrationProductsRefusedForOtherSchemes)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/bad.yaml";
  // per-token activations are quantized at run time: no static product
  quant_write_file (
      config, calib_math_yaml ("int8").replace (
                  calib_math_yaml ("int8").find ("scope: \"per_tensor\""),
                  std::string ("scope: \"per_tensor\", dtype: \"int8\", symmetric: False").size (),
                  "scope: \"per_token\", dtype: \"int8\", symmetric: True"));
  QuantChild q
      = quant_cli ({ "--model_path", quant_stories_model (), "--save_path", tmp + "/out",
                     "--config_path", config, "--max_samples", "1", "--max_length", "16" });
  EXPECT_NE (q.exit_code, 0);
  EXPECT_NE (q.err.find ("calib_math: int8 needs int8 per_tensor minmax"), std::string::npos)
      << q.err;
}

// --no_layer_error skips the measuring forwards only: the same bytes as
// the default run (folder (kFolders[0]): dense-w8a8.yaml, same data), and
// the summary says why it lists no error.
TEST (QuantModelInt, NoLayerErrorWritesTheSameBytes)
{
  const std::string &a = folder (kFolders[0]);
  std::string tmp = slim_test_make_tmpdir ();
  std::string b = tmp + "/w8a8";
  QuantChild q = quant_cli ({ "--model_path", quant_stories_model (), "--save_path", b,
                              "--config_path", quant_example ("dense-w8a8.yaml"), "--max_samples",
                              "4", "--max_length", "64", "--no_layer_error" });
  ASSERT_EQ (q.exit_code, 0) << q.err;
  EXPECT_NE (q.out.find ("per-layer error not measured (--no_layer_error)"), std::string::npos)
      << q.out;
  EXPECT_EQ (q.out.find ("relative output error"), std::string::npos) << q.out;
  GError *error = nullptr;
  SlimSafetensors *sa = slim_safetensors_open (a.c_str (), &error);
  SlimSafetensors *sb = slim_safetensors_open (b.c_str (), &error);
  ASSERT_NE (sa, nullptr);
  ASSERT_NE (sb, nullptr);
  int n = 0;
  for (const char *const *name = slim_safetensors_get_names (sa); *name != nullptr; name++, n++)
    {
      SlimTensor *ta = slim_safetensors_get_tensor (sa, *name, &error);
      SlimTensor *tb = slim_safetensors_get_tensor (sb, *name, &error);
      ASSERT_NE (ta, nullptr) << *name;
      ASSERT_NE (tb, nullptr) << *name;
      ASSERT_EQ (slim_tensor_get_n_bytes (ta), slim_tensor_get_n_bytes (tb)) << *name;
      EXPECT_EQ (std::memcmp (slim_tensor_get_data (ta), slim_tensor_get_data (tb),
                              slim_tensor_get_n_bytes (ta)),
                 0)
          << *name;
      slim_tensor_unref (ta);
      slim_tensor_unref (tb);
    }
  EXPECT_GT (n, 30);
  g_object_unref (sa);
  g_object_unref (sb);
}

// `slimflow eval`: int8 is the default for a quantized folder and says so;
// --linear_math float gives the float path; a bad value is a usage error
// naming the choices.
TEST (QuantModelInt, EvalCliOption)
{
  const std::string &dir = folder (kFolders[0]);
  // the first 4000 bytes of the excerpt (up to a line end): about 1000 tokens
  gchar *all = nullptr;
  gsize n_all = 0;
  ASSERT_TRUE (g_file_get_contents (
      slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt").c_str (), &all, &n_all,
      nullptr));
  std::string head (all, MIN (n_all, (gsize)4000));
  g_free (all);
  head.erase (head.rfind ('\n') + 1);
  std::string text = slim_test_make_tmpdir () + "/head.txt";
  quant_write_file (text, head);
  double ppl[2] = { 0, 0 };
  const char *math[2] = { nullptr, "float" };
  for (int i = 0; i < 2; i++)
    {
      std::vector<std::string> args
          = { "eval", "--model_path", dir, "--text", text, "--ctx", "512", "--json" };
      if (math[i] != nullptr)
        {
          args.push_back ("--linear_math");
          args.push_back (math[i]);
        }
      QuantChild r = slimflow_cli (args);
      ASSERT_EQ (r.exit_code, 0) << r.err;
      JsonParser *parser = json_parser_new ();
      ASSERT_TRUE (json_parser_load_from_data (parser, r.out.c_str (), -1, nullptr)) << r.out;
      JsonObject *o = json_node_get_object (json_parser_get_root (parser));
      EXPECT_STREQ (json_object_get_string_member (o, "linear_math"),
                    math[i] != nullptr ? math[i] : "int8");
      EXPECT_EQ (json_object_get_int_member (o, "integer_linears"), math[i] != nullptr ? 0 : 30);
      ppl[i] = json_object_get_double_member (o, "perplexity");
      g_object_unref (parser);
    }
  EXPECT_NE (ppl[0], ppl[1]);
  EXPECT_NEAR (ppl[0] / ppl[1], 1.0, 0.002);
  QuantChild bad
      = slimflow_cli ({ "eval", "--model_path", dir, "--text", text, "--linear_math", "int4" });
  EXPECT_EQ (bad.exit_code, 2);
  EXPECT_NE (bad.err.find ("float, int8, int8_ref"), std::string::npos) << bad.err;
}

} // namespace
