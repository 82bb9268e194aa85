// SPDX-License-Identifier: Apache-2.0
//
// test-mx.cpp: MX block quantization (slim-mx) against msModelSlim's oracle
// vectors (../shared/oracle, cases mx_mxfp8_*, mx_mxfp4_*,
// pack_fp4_to_uint8, saver_w8a8_mxfp8, saver_w4a4_mxfp4), and the fast
// functions against their _ref twins.
//
// Tolerances: the oracle README expects exact equality for MX and packing,
// so elements, shared exponents, dequantized values and packed bytes are
// compared bit for bit (the sign of zero included).  The only tolerance is
// on the IR forward (a float32 matmul in torch): see IrForward below.
#include "oracle.h"

extern "C"
{
#include "slim-dtype.h"
#include "slim-minifloat.h"
#include "slim-mx.h"
}

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace
{

guint32
bits_of (float value)
{
  guint32 bits;
  std::memcpy (&bits, &value, sizeof bits);
  return bits;
}

float
float_of (guint32 bits)
{
  float value;
  std::memcpy (&value, &bits, sizeof value);
  return value;
}

struct MxCase
{
  SlimMxFormat format;
  const char *name; // "mxfp8", "mxfp4"
};

const MxCase kFormats[] = { { SLIM_MX_FP8_E4M3, "mxfp8" }, { SLIM_MX_FP4_E2M1, "mxfp4" } };

struct Quantized
{
  std::vector<float> elements;
  std::vector<gint16> shared_exp;
};

Quantized
quantize (SlimMxFormat format, const std::vector<float> &x, gint64 rows, gint64 cols, bool ref)
{
  Quantized q;
  q.elements.assign (x.size (), -1.0f);
  q.shared_exp.assign (rows * slim_mx_n_blocks (cols), -999);
  (ref ? slim_mx_quantize_rows_ref : slim_mx_quantize_rows) (
      format, x.data (), rows, cols, q.elements.data (), q.shared_exp.data ());
  return q;
}

void
expect_bits_equal (const std::vector<float> &got,
                   const std::vector<float> &want,
                   const std::string &what)
{
  ASSERT_EQ (got.size (), want.size ()) << what;
  size_t n_bad = 0;
  for (size_t i = 0; i < got.size (); i++)
    if (bits_of (got[i]) != bits_of (want[i]) && n_bad++ < 5)
      ADD_FAILURE () << what << "[" << i << "]: got " << got[i] << " want " << want[i];
  EXPECT_EQ (n_bad, 0u) << what;
}

void
expect_shared_exp (const std::vector<gint16> &got,
                   const std::vector<float> &want,
                   const std::string &what)
{
  ASSERT_EQ (got.size (), want.size ()) << what;
  for (size_t i = 0; i < got.size (); i++)
    ASSERT_EQ ((float)got[i], want[i]) << what << "[" << i << "]";
}

// mx_<format>_weight_{w,mx_edge} and mx_<format>_act_{x,mx_edge}: the
// weight and activation paths of msModelSlim run the same block math.
TEST (Mx, OracleElementsAndSharedExponents)
{
  for (const MxCase &f : kFormats)
    for (const char *input : { "w", "x", "mx_edge" })
      for (const char *role : { "weight", "act" })
        {
          std::string tensor = input;
          if ((tensor == "w" && std::string (role) == "act")
              || (tensor == "x" && std::string (role) == "weight"))
            continue;
          std::string c = std::string ("mx_") + f.name + "_" + role + "_" + input;
          SCOPED_TRACE (c);
          OracleArray in = oracle_load ("input." + tensor + ".npy");
          ASSERT_EQ (in.shape.size (), 2u);
          gint64 rows = in.shape[0], cols = in.shape[1];
          std::vector<float> want_q = oracle_f32 (c + ".q_elements.npy");
          std::vector<float> want_se = oracle_f32 (c + ".shared_exp.npy");
          for (bool ref : { false, true })
            {
              Quantized q = quantize (f.format, in.f32, rows, cols, ref);
              expect_bits_equal (q.elements, want_q, c + (ref ? " ref" : "") + " q_elements");
              expect_shared_exp (q.shared_exp, want_se, c + (ref ? " ref" : "") + " shared_exp");
            }
          if (std::string (role) == "act")
            {
              // the observer's block maxima give the same exponents one by one
              std::vector<float> absmax = oracle_f32 (c + ".block_absmax.npy");
              ASSERT_EQ (absmax.size (), want_se.size ());
              for (size_t k = 0; k < absmax.size (); k++)
                ASSERT_EQ ((float)slim_mx_shared_exp (f.format, absmax[k]), want_se[k]) << k;
            }
          if (tensor == "mx_edge")
            {
              std::vector<float> want_dq = oracle_f32 (c + ".dq.npy");
              Quantized q = quantize (f.format, in.f32, rows, cols, false);
              std::vector<float> dq (q.elements.size ());
              slim_mx_dequantize_rows (q.elements.data (), q.shared_exp.data (), rows, cols,
                                       dq.data ());
              expect_bits_equal (dq, want_dq, c + " dq");
              std::vector<float> fake (in.f32.size ());
              slim_mx_fake_quantize_rows (f.format, in.f32.data (), rows, cols, fake.data ());
              expect_bits_equal (fake, want_dq, c + " fake_quantize");
              // in place
              std::vector<float> inplace = in.f32;
              slim_mx_fake_quantize_rows (f.format, inplace.data (), rows, cols, inplace.data ());
              expect_bits_equal (inplace, want_dq, c + " fake_quantize in place");
            }
        }
}

// The edge rows show the documented details.
TEST (Mx, EdgeDetails)
{
  OracleArray in = oracle_load ("input.mx_edge.npy");
  ASSERT_EQ (in.shape, (std::vector<int64_t>{ 8, 80 }));
  EXPECT_EQ (slim_mx_n_blocks (80), 3) << "80 is padded to 96";
  Quantized q8 = quantize (SLIM_MX_FP8_E4M3, in.f32, 8, 80, false);
  Quantized q4 = quantize (SLIM_MX_FP4_E2M1, in.f32, 8, 80, false);
  // row 0 is all zero: mxfp8 clamps to -127, mxfp4's +9.6e-7 stops at -22
  EXPECT_EQ (q8.shared_exp[0], -127);
  EXPECT_EQ (q4.shared_exp[0], -22);
  EXPECT_EQ (slim_mx_shared_exp (SLIM_MX_FP4_E2M1, 0.0f), -22);
  EXPECT_EQ (slim_mx_shared_exp (SLIM_MX_FP8_E4M3, 0x1p-130f), -127);
  // half away from zero in E2M1: 3.5 -> 4, 2.5 -> 3, -0.75 -> -1
  EXPECT_EQ (slim_mx_quantize_element (SLIM_MX_FP4_E2M1, 3.5f, 0), 4.0f);
  EXPECT_EQ (slim_mx_quantize_element (SLIM_MX_FP4_E2M1, 2.5f, 0), 3.0f);
  EXPECT_EQ (slim_mx_quantize_element (SLIM_MX_FP4_E2M1, -0.75f, 0), -1.0f);
  EXPECT_EQ (slim_mx_quantize_element (SLIM_MX_FP4_E2M1, 7.0f, 0), 6.0f);
  // and in E4M3: 1.0625 (between 1 and 1.125) -> 1.125, saturation to 448
  EXPECT_EQ (slim_mx_quantize_element (SLIM_MX_FP8_E4M3, 1.0625f, 0), 1.125f);
  EXPECT_EQ (slim_mx_quantize_element (SLIM_MX_FP8_E4M3, 470.0f, 0), 448.0f);
  // zeros give +0, a negative value rounding to zero gives -0
  EXPECT_EQ (bits_of (slim_mx_quantize_element (SLIM_MX_FP8_E4M3, -0.0f, 0)), 0u);
  EXPECT_EQ (bits_of (slim_mx_quantize_element (SLIM_MX_FP4_E2M1, -0.0f, 0)), 0u);
  EXPECT_EQ (bits_of (slim_mx_quantize_element (SLIM_MX_FP4_E2M1, -0.2f, 0)), 0x80000000u);
  EXPECT_EQ (bits_of (slim_mx_quantize_element (SLIM_MX_FP8_E4M3, -0x1p-20f, 0)), 0x80000000u);
  // non-finite blocks: MXFP8 gives E8M0's NaN code 255
  EXPECT_EQ (slim_mx_shared_exp (SLIM_MX_FP8_E4M3, INFINITY), SLIM_MX_SHARED_EXP_NAN);
  EXPECT_EQ (slim_mx_shared_exp (SLIM_MX_FP8_E4M3, NAN), SLIM_MX_SHARED_EXP_NAN);
  EXPECT_EQ (slim_mx_shared_exp (SLIM_MX_FP4_E2M1, INFINITY), 125);
  gint16 nan_se = SLIM_MX_SHARED_EXP_NAN;
  guint8 code = 0;
  slim_mx_scale_to_u8 (&nan_se, 1, &code);
  EXPECT_EQ (code, 255u);
}

// pack_fp4_to_uint8 on every E2M1 value, -0.0, ties and values past the
// ends; also the dtype table's f4x2_e2m1 rows (fast and reference).
TEST (Mx, OraclePackFp4)
{
  OracleArray in = oracle_load ("pack_fp4_to_uint8.in.fp4_values.npy");
  std::vector<uint8_t> want = oracle_u8 ("pack_fp4_to_uint8.packed.npy");
  ASSERT_EQ (in.shape, (std::vector<int64_t>{ 4, 8 }));
  std::vector<guint8> packed (16, 0xaa), row_fast (16, 0), row_ref (16, 0);
  slim_mx_pack_fp4 (in.f32.data (), 4, 8, packed.data ());
  EXPECT_EQ (std::vector<uint8_t> (packed.begin (), packed.end ()), want);
  const SlimDTypeInfo *info = slim_dtype_get_info (SLIM_DTYPE_F4X2_E2M1);
  info->from_f32 (in.f32.data (), row_fast.data (), 32);
  info->from_f32_ref (in.f32.data (), row_ref.data (), 32);
  EXPECT_EQ (std::vector<uint8_t> (row_fast.begin (), row_fast.end ()), want);
  EXPECT_EQ (std::vector<uint8_t> (row_ref.begin (), row_ref.end ()), want);
}

// F.linear (x_q_dq, w_dq): torch sums 256 float32 products; ours is summed
// in double from the same (exact) operands, so the difference is torch's
// float32 rounding, at most n * 2^-24 * sum |x_k w_k| (n = 256), bounded
// here by 2e-5 * sum |x_k w_k| per output.
void
expect_ir_forward (SlimMxFormat format,
                   const std::vector<float> &x,
                   const std::vector<float> &w_dq,
                   const std::vector<float> &want,
                   gint64 n_tokens,
                   gint64 n_in,
                   gint64 n_out)
{
  std::vector<float> xq (x.size ());
  slim_mx_fake_quantize_rows (format, x.data (), n_tokens, n_in, xq.data ());
  ASSERT_EQ (want.size (), (size_t)(n_tokens * n_out));
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 o = 0; o < n_out; o++)
      {
        double sum = 0.0, mag = 0.0;
        for (gint64 k = 0; k < n_in; k++)
          {
            double p = (double)xq[t * n_in + k] * (double)w_dq[o * n_in + k];
            sum += p;
            mag += std::fabs (p);
          }
        ASSERT_NEAR (sum, want[t * n_out + o], 2e-5 * mag + 1e-30) << t << "," << o;
      }
}

// The ascendv1 tensors of one MX linear: weight (E4M3 values / packed E2M1
// codes), weight_scale = shared exponent + 127 as uint8, and the IR forward.
TEST (Mx, OracleSaverTensors)
{
  std::vector<float> w = oracle_f32 ("input.w.npy");
  std::vector<float> x = oracle_f32 ("input.x.npy");
  const gint64 n_out = 96, n_in = 256, n_tokens = 64, n_blocks = 8;
  for (const MxCase &f : kFormats)
    {
      std::string c = f.format == SLIM_MX_FP8_E4M3 ? "saver_w8a8_mxfp8" : "saver_w4a4_mxfp4";
      SCOPED_TRACE (c);
      Quantized q = quantize (f.format, w, n_out, n_in, false);
      std::vector<guint8> scale (n_out * n_blocks);
      slim_mx_scale_to_u8 (q.shared_exp.data (), (gint64)scale.size (), scale.data ());
      std::vector<uint8_t> want_scale = oracle_u8 (c + ".weight_scale.npy");
      EXPECT_EQ (std::vector<uint8_t> (scale.begin (), scale.end ()), want_scale);
      expect_shared_exp (q.shared_exp, oracle_f32 (c + ".weight_shared_exp.npy"), c);
      if (f.format == SLIM_MX_FP8_E4M3)
        {
          // stored as f32 by the oracle (torch 1.13 has no float8): each is
          // an exact E4M3 value, and our E4M3 bytes decode to it
          std::vector<float> want = oracle_f32 (c + ".weight.npy");
          expect_bits_equal (q.elements, want, c + " weight");
          for (size_t i = 0; i < want.size (); i++)
            ASSERT_EQ (bits_of (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (q.elements[i]))),
                       bits_of (want[i]))
                << i;
        }
      else
        {
          std::vector<guint8> packed (n_out * n_in / 2);
          slim_mx_pack_fp4 (q.elements.data (), n_out, n_in, packed.data ());
          std::vector<uint8_t> want = oracle_u8 (c + ".weight.npy");
          EXPECT_EQ (std::vector<uint8_t> (packed.begin (), packed.end ()), want);
        }
      std::vector<float> w_dq (w.size ());
      slim_mx_dequantize_rows (q.elements.data (), q.shared_exp.data (), n_out, n_in, w_dq.data ());
      expect_ir_forward (f.format, x, w_dq, oracle_f32 (c + ".ir_forward.npy"), n_tokens, n_in,
                         n_out);
    }
}

// Fast == reference: on random rows of wide dynamic range with ragged
// widths (padding), values at and beside every element rounding midpoint
// and power of two, zeros of both signs and subnormals.
TEST (Mx, FastMatchesReference)
{
  std::mt19937 rng (5);
  std::normal_distribution<float> normal (0.0f, 1.0f);
  std::uniform_int_distribution<int> expo (-140, 120);
  for (const MxCase &f : kFormats)
    for (gint64 cols : { 1, 31, 32, 33, 80, 257 })
      {
        const gint64 rows = 64;
        std::vector<float> x (rows * cols);
        for (gint64 r = 0; r < rows; r++)
          {
            int row_exp = expo (rng);
            for (gint64 c = 0; c < cols; c++)
              x[r * cols + c] = std::ldexp (normal (rng), row_exp + (int)(c % 7) - 3);
          }
        x[0] = -0.0f;
        Quantized a = quantize (f.format, x, rows, cols, false);
        Quantized b = quantize (f.format, x, rows, cols, true);
        expect_bits_equal (a.elements, b.elements, std::string (f.name) + " random");
        EXPECT_EQ (a.shared_exp, b.shared_exp) << f.name;
      }
  // element by element over a strided sweep of all float32 bit patterns
  // (every 4099th) and each value's neighbours at the grid midpoints, for
  // several shared exponents: every x that can share a block with that
  // exponent, |x| 2^-se < 512 (MXFP8: se = floor (log2 amax) - 8) or < 8
  // (MXFP4: amax / 0.875 < 2^(se + 3)); beyond, msModelSlim's formulas
  // overflow (2^128) and neither version is meaningful
  std::vector<float> values;
  for (guint32 bits = 0; bits < 0xffffffffu - 4099u; bits += 4099u)
    values.push_back (float_of (bits));
  for (int e = -10; e <= 9; e++)
    for (int m = 0; m < 64; m++)
      {
        float mid = std::ldexp (1.0f + m / 64.0f, e);
        for (float v : { mid, std::nextafter (mid, 0.0f), std::nextafter (mid, INFINITY) })
          {
            values.push_back (v);
            values.push_back (-v);
          }
      }
  for (const MxCase &f : kFormats)
    for (int se : { -127, -22, -3, 0, 5, 100 })
      for (float v : values)
        {
          float limit = f.format == SLIM_MX_FP8_E4M3 ? 512.0f : 8.0f;
          if (!(std::fabs (std::ldexp ((double)v, -se)) < limit))
            continue;
          float fast = slim_mx_quantize_element (f.format, v, se);
          float ref = slim_mx_quantize_element_ref (f.format, v, se);
          if (std::isnan (ref))
            ASSERT_TRUE (std::isnan (fast)) << f.name << " se " << se << " x " << v;
          else
            ASSERT_EQ (bits_of (fast), bits_of (ref)) << f.name << " se " << se << " x " << v;
        }
}

// Elements are always on the format's grid: E4M3 values that round-trip
// through the float8 conversion, E2M1 values that round-trip through the
// FP4 code.
TEST (Mx, ElementsAreOnTheGrid)
{
  std::mt19937 rng (9);
  std::normal_distribution<float> normal (0.0f, 3.0f);
  std::vector<float> x (16 * 256);
  for (float &v : x)
    v = normal (rng);
  Quantized q8 = quantize (SLIM_MX_FP8_E4M3, x, 16, 256, false);
  Quantized q4 = quantize (SLIM_MX_FP4_E2M1, x, 16, 256, false);
  for (size_t i = 0; i < x.size (); i++)
    {
      ASSERT_EQ (bits_of (slim_f8_e4m3fn_to_f32 (slim_f32_to_f8_e4m3fn (q8.elements[i]))),
                 bits_of (q8.elements[i]));
      ASSERT_EQ (bits_of (slim_f4_e2m1_to_f32 (slim_f32_to_f4_e2m1 (q4.elements[i]))),
                 bits_of (q4.elements[i]));
    }
}

} // namespace
