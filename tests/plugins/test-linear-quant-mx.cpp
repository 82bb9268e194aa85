// SPDX-License-Identifier: Apache-2.0
//
// test-linear-quant-mx.cpp: linear_quant with MX per_block qconfigs
// (mxfp8 x mxfp8 = W8A8_MXFP8, mxfp8 act x mxfp4 weight = W4A8_MXFP,
// mxfp4 x mxfp4 = W4A4_MXFP4) through the ascendv1 writer, against
// msModelSlim's saver oracle cases saver_w8a8_mxfp8 / saver_w4a4_mxfp4
// (../shared/oracle: LinearQuantizer -> deploy -> AscendV1Saver on
// input.w as model.layers.0.mlp.gate_proj): the saved weight and
// weight_scale byte for byte, the description, and the deployed forward
// against the IR forward; then `slimflow eval`'s loader of the saved folder
// gives back the same dequantized weight bit for bit.  Also: the
// calibration forward leaves activations alone (MXActPerBlockMinmax is the
// identity there), the deployed hook quantizes them, and the configuration
// errors (odd mxfp4 width naming the tensor, ext.axes other than -1,
// ext.max_bound).  WFP8AFP8_DYNAMIC (fp8_e4m3 per_token act x fp8_e4m3
// per_channel weight) the same way against fp8_e4m3_weight_per_channel and
// fp8_e4m3_act_per_token: the oracle's scales bit for bit, and the saved
// float8_e4m3fn codes equal the oracle's unrounded x / scale cast to E4M3
// (what msModelSlim's saver does with .to(torch.float8_e4m3fn)).
#include "../ascendv1-checker.hpp"
#include "../framework/oracle.h"
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-fp8.h"
#include "slim-mx.h"
#include "slim-mx-dual-scale.h"
#include "slim-quant-model.h"
#include "slim-safetensors.h"
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace
{

const char *const kMx8 = "{dtype: mxfp8, scope: per_block, symmetric: true, method: minmax}";
const char *const kMx4
    = "{dtype: mxfp4, scope: per_block, symmetric: true, method: minmax, ext: {axes: -1}}";
const std::string kGate = "model.layers.0.mlp.gate_proj";

guint32
bits_of (float value)
{
  guint32 bits;
  std::memcpy (&bits, &value, sizeof bits);
  return bits;
}

GObjectPtr<SlimProcessor>
make (const std::string &yaml)
{
  GError *error = nullptr;
  SlimProcessor *p = harness_processor (yaml, &error);
  EXPECT_NE (p, nullptr) << (error ? error->message : "") << "\n" << yaml;
  g_clear_error (&error);
  return GObjectPtr<SlimProcessor> (p);
}

// A layer holding gate_proj with the oracle's weight (96 x 256).
GObjectPtr<SlimLayer>
oracle_layer ()
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kGate, 96, 256, false } }, 1));
  std::vector<float> w = oracle_f32 ("input.w.npy");
  SlimTensor *t = slim_tensor_new_2d ((kGate + ".weight").c_str (), SLIM_DTYPE_F32, 96, 256);
  std::memcpy (slim_tensor_get_data_mut (t), w.data (), w.size () * sizeof (float));
  slim_layer_set_tensor (layer.get (), t);
  slim_tensor_unref (t);
  return layer;
}

TensorPtr
read_tensor (const std::string &dir, const std::string &name)
{
  GError *error = nullptr;
  GObjectPtr<SlimSafetensors> st (slim_safetensors_open (dir.c_str (), &error));
  EXPECT_TRUE (st) << (error ? error->message : "");
  g_clear_error (&error);
  if (!st)
    return TensorPtr ();
  SlimTensor *t = slim_safetensors_get_tensor (st.get (), name.c_str (), &error);
  EXPECT_NE (t, nullptr) << name << ": " << (error ? error->message : "");
  g_clear_error (&error);
  TensorPtr view (t);
  return TensorPtr (t != nullptr ? slim_tensor_copy (t, nullptr) : nullptr);
}

struct OracleSaverCase
{
  const char *name;
  const char *act;
  const char *weight;
  const char *oracle; // case prefix; nullptr: no oracle case (W4A8_MXFP)
  const char *label;
};

class LinearQuantMx : public ::testing::TestWithParam<OracleSaverCase>
{
};

// Quantize, deploy, save: the oracle's tensors byte for byte, the IR
// forward within float32 matmul rounding, the folder passes the checker,
// and the eval loader dequantizes it to the very weights the layer holds.
TEST_P (LinearQuantMx, SavedTensorsMatchTheOracle)
{
  const OracleSaverCase &c = GetParam ();
  GObjectPtr<SlimLayer> layer = oracle_layer ();
  auto p = make (harness_linear_quant_yaml (c.act, c.weight));
  ASSERT_TRUE (p);
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (p.get (), &error)) << error->message;
  EXPECT_TRUE (slim_processor_is_data_free (p.get ())) << "MX act and weight are data-free";
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error)) << error->message;
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error)) << error->message;
  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kGate.c_str ());
  ASSERT_NE (q, nullptr);
  EXPECT_STREQ (q->label, c.label);
  EXPECT_EQ (q->group_size, 32);

  // the deployed forward: MX activations x dequantized weight
  std::vector<float> x = oracle_f32 ("input.x.npy");
  SlimForwardHooks deployed;
  slim_qlinear_get_deployed_hooks (layer.get (), &deployed);
  std::vector<float> y;
  ASSERT_TRUE (harness_linear_forward (layer.get (), kGate, x, 64, &deployed, &y, &error))
      << error->message;
  const float *wdq = (const float *)slim_tensor_get_data (
      slim_layer_get_tensor (layer.get (), (kGate + ".weight").c_str ()));
  std::vector<float> xq (x.size ());
  slim_mx_fake_quantize_rows (q->act.dtype == SLIM_QDTYPE_MXFP8 ? SLIM_MX_FP8_E4M3
                                                                : SLIM_MX_FP4_E2M1,
                              x.data (), 64, 256, xq.data ());
  std::vector<float> want_y;
  if (c.oracle != nullptr)
    want_y = oracle_f32 (std::string (c.oracle) + ".ir_forward.npy");
  for (int t = 0; t < 64; t++)
    for (int o = 0; o < 96; o++)
      {
        // both sides sum 256 float32 products in some order: their
        // difference is at most 2 * 256 * 2^-24 * sum |x_k w_k| (3e-5),
        // bounded by 4e-5 of it here
        double sum = 0.0, mag = 0.0;
        for (int k = 0; k < 256; k++)
          {
            sum += (double)xq[t * 256 + k] * wdq[o * 256 + k];
            mag += std::fabs ((double)xq[t * 256 + k] * wdq[o * 256 + k]);
          }
        ASSERT_NEAR (y[t * 96 + o], sum, 2e-5 * mag + 1e-30) << t << "," << o;
        if (!want_y.empty ())
          {
            ASSERT_NEAR (y[t * 96 + o], want_y[t * 96 + o], 4e-5 * mag + 1e-30) << t << "," << o;
          }
      }

  // save the layer and read the folder back
  std::string src = slim_test_make_tmpdir (), out = slim_test_make_tmpdir ();
  ASSERT_TRUE (g_file_set_contents ((src + "/config.json").c_str (), "{\"model_type\": \"llama\"}",
                                    -1, nullptr));
  SlimAscendWriter *writer
      = slim_ascend_writer_new (SLIM_ASCEND_FORMAT_ASCENDV1, out.c_str (), 0, FALSE, &error);
  ASSERT_NE (writer, nullptr) << error->message;
  ASSERT_TRUE (slim_ascend_writer_write_layer (writer, layer.get (), &error)) << error->message;
  ASSERT_TRUE (slim_ascend_writer_finish (writer, src.c_str (), &error)) << error->message;
  slim_ascend_writer_free (writer);

  TensorPtr w = read_tensor (out, kGate + ".weight");
  TensorPtr ws = read_tensor (out, kGate + ".weight_scale");
  ASSERT_TRUE (w && ws);
  const bool fp8_weight = std::string (c.weight) == kMx8;
  EXPECT_EQ (slim_tensor_get_dtype (w.get ()), fp8_weight ? SLIM_DTYPE_F8_E4M3FN : SLIM_DTYPE_U8);
  EXPECT_EQ (slim_tensor_get_dim (w.get (), 0), 96);
  EXPECT_EQ (slim_tensor_get_dim (w.get (), 1), fp8_weight ? 256 : 128);
  EXPECT_EQ (slim_tensor_get_dtype (ws.get ()), SLIM_DTYPE_U8);
  EXPECT_EQ (slim_tensor_get_dim (ws.get (), 0), 96);
  EXPECT_EQ (slim_tensor_get_dim (ws.get (), 1), 8);
  const guint8 *wb = (const guint8 *)slim_tensor_get_data (w.get ());
  const guint8 *sb = (const guint8 *)slim_tensor_get_data (ws.get ());
  if (c.oracle != nullptr)
    {
      std::vector<uint8_t> want_scale = oracle_u8 (std::string (c.oracle) + ".weight_scale.npy");
      EXPECT_EQ (std::vector<uint8_t> (sb, sb + 96 * 8), want_scale);
      if (fp8_weight)
        {
          // the oracle holds the E4M3 values as f32 (torch 1.13 has no float8)
          std::vector<float> want = oracle_f32 (std::string (c.oracle) + ".weight.npy");
          for (size_t i = 0; i < want.size (); i++)
            ASSERT_EQ (bits_of (slim_f8_e4m3fn_to_f32 (wb[i])), bits_of (want[i])) << i;
        }
      else
        {
          std::vector<uint8_t> want = oracle_u8 (std::string (c.oracle) + ".weight.npy");
          EXPECT_EQ (std::vector<uint8_t> (wb, wb + 96 * 128), want);
        }
    }
  else
    {
      // W4A8_MXFP has no oracle case: its weight tensors are MXFP4's
      std::vector<uint8_t> want = oracle_u8 ("saver_w4a4_mxfp4.weight.npy");
      EXPECT_EQ (std::vector<uint8_t> (wb, wb + 96 * 128), want);
      std::vector<uint8_t> want_scale = oracle_u8 ("saver_w4a4_mxfp4.weight_scale.npy");
      EXPECT_EQ (std::vector<uint8_t> (sb, sb + 96 * 8), want_scale);
    }
  std::string desc = harness_read_file (out + "/quant_model_description.json");
  EXPECT_NE (desc.find ("\"" + kGate + ".weight\": \"" + c.label + "\""), std::string::npos)
      << desc;
  EXPECT_NE (desc.find ("\"" + kGate + ".weight_scale\": \"" + c.label + "\""), std::string::npos);
  EXPECT_NE (desc.find ("\"group_size\": 32"), std::string::npos) << desc;
  EXPECT_NE (desc.find (std::string ("\"model_quant_type\": \"") + c.label + "\""),
             std::string::npos)
      << desc;
  SlimTestAscendv1Report report = slim_test_ascendv1_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();

  // slimflow eval's loader: the same dequantized weight, MX activations
  SlimQuantModel *qm = slim_quant_model_load (out.c_str (), &error);
  ASSERT_NE (qm, nullptr) << error->message;
  EXPECT_EQ (slim_quant_model_get_n_quantized (qm), 1u);
  std::string float_dir = slim_quant_model_get_float_dir (qm);
  TensorPtr back = read_tensor (float_dir, kGate + ".weight");
  ASSERT_TRUE (back);
  ASSERT_EQ (slim_tensor_get_dtype (back.get ()), SLIM_DTYPE_F32);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (back.get ()), wdq, 96 * 256 * sizeof (float)), 0)
      << "eval dequantizes the saved folder to the deployed weights bit for bit";
  slim_quant_model_free (qm);
}

INSTANTIATE_TEST_SUITE_P (Oracle,
                          LinearQuantMx,
                          ::testing::Values (OracleSaverCase{ "W8A8_MXFP8", kMx8, kMx8,
                                                              "saver_w8a8_mxfp8", "W8A8_MXFP8" },
                                             OracleSaverCase{ "W4A4_MXFP4", kMx4, kMx4,
                                                              "saver_w4a4_mxfp4", "W4A4_MXFP4" },
                                             OracleSaverCase{ "W4A8_MXFP", kMx8, kMx4, nullptr,
                                                              "W4A8_MXFP" }),
                          [] (const ::testing::TestParamInfo<OracleSaverCase> &info) {
                            return std::string (info.param.name);
                          });

// During calibration MXActPerBlockMinmax is the identity; the deployed
// record quantizes each token row in blocks of 32 (here 80 = 2.5 blocks,
// the last one zero-padded).
TEST (LinearQuantMxAct, IdentityInCalibrationQuantizedWhenDeployed)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kGate, 6, 80, false } }, 3));
  auto p = make (harness_linear_quant_yaml (kMx4, kMx4));
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (p.get (), &error)) << error->message;
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error)) << error->message;
  std::vector<float> x = harness_pattern (4 * 80, 5, 3.0f);
  SlimForwardHooks hooks;
  slim_processor_get_forward_hooks (p.get (), layer.get (), &hooks);
  if (hooks.linear_input != nullptr)
    {
      std::vector<float> seen = x;
      ASSERT_TRUE (
          hooks.linear_input (kGate.c_str (), seen.data (), 4, 80, hooks.user_data, &error));
      for (size_t i = 0; i < x.size (); i++)
        ASSERT_EQ (bits_of (seen[i]), bits_of (x[i])) << i;
    }
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error)) << error->message;
  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kGate.c_str ());
  ASSERT_NE (q, nullptr);
  std::vector<float> deployed = x, want (x.size ());
  slim_qlinear_apply_act (q, deployed.data (), 4, 80);
  slim_mx_fake_quantize_rows (SLIM_MX_FP4_E2M1, x.data (), 4, 80, want.data ());
  for (size_t i = 0; i < x.size (); i++)
    ASSERT_EQ (bits_of (deployed[i]), bits_of (want[i])) << i;
  EXPECT_NE (std::memcmp (deployed.data (), x.data (), x.size () * sizeof (float)), 0);
  EXPECT_EQ (slim_tensor_get_dim (q->weight_scale, 1), 3) << "80 columns: 3 blocks";
}

// An odd width cannot be packed two E2M1 codes per byte: the error names
// the tensor; mxfp8 takes any width.
TEST (LinearQuantMxErrors, OddWidthMxfp4NamesTheTensor)
{
  for (const char *weight : { kMx4, kMx8 })
    {
      GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kGate, 4, 33, false } }, 2));
      auto p = make (harness_linear_quant_yaml (weight == kMx4 ? kMx4 : kMx8, weight));
      GError *error = nullptr;
      ASSERT_TRUE (slim_processor_validate (p.get (), &error)) << error->message;
      gboolean ok = slim_processor_preprocess (p.get (), layer.get (), &error);
      if (weight == kMx8)
        {
          EXPECT_TRUE (ok) << (error ? error->message : "");
          g_clear_error (&error);
          continue;
        }
      ASSERT_FALSE (ok);
      ASSERT_NE (error, nullptr);
      std::string msg = error->message;
      EXPECT_NE (msg.find (kGate + ".weight"), std::string::npos) << msg;
      EXPECT_NE (msg.find ("33"), std::string::npos) << msg;
      EXPECT_NE (msg.find ("mxfp4"), std::string::npos) << msg;
      g_clear_error (&error);
    }
}

TEST (LinearQuantMxErrors, AxesAndMaxBoundAreRefused)
{
  struct Bad
  {
    std::string act, weight;
    std::vector<std::string> fragments;
  } cases[] = {
    { kMx8,
      "{dtype: mxfp8, scope: per_block, symmetric: true, method: minmax, ext: {axes: 0}}",
      { "qconfig.weight.ext.axes", "-1" } },
    { "{dtype: mxfp4, scope: per_block, symmetric: true, method: minmax, ext: {axes: 1}}",
      kMx4,
      { "qconfig.act.ext.axes", "-1" } },
    { kMx8,
      "{dtype: mxfp8, scope: per_block, symmetric: true, method: minmax, ext: {max_bound: 100}}",
      { "qconfig.weight.ext.max_bound", "mxfp8" } },
    // mxfp4 act with mxfp8 weight is not a registered combination
    { kMx4, kMx8, { "mxfp4 per_block sym", "mxfp8 per_block sym" } },
  };
  for (const Bad &b : cases)
    {
      GError *error = nullptr;
      GObjectPtr<SlimProcessor> p (
          harness_processor (harness_linear_quant_yaml (b.act, b.weight), &error));
      if (p)
        {
          EXPECT_FALSE (slim_processor_validate (p.get (), &error)) << b.weight;
        }
      ASSERT_NE (error, nullptr) << b.act << " / " << b.weight;
      for (const std::string &f : b.fragments)
        EXPECT_NE (std::string (error->message).find (f), std::string::npos)
            << error->message << "\nwants: " << f;
      g_clear_error (&error);
    }
}

const char *const kFp8Token
    = "{dtype: fp8_e4m3, scope: per_token, symmetric: true, method: minmax}";
const char *const kFp8Chan
    = "{dtype: fp8_e4m3, scope: per_channel, symmetric: true, method: minmax}";

TEST (LinearQuantFp8, WeightCodesScalesAndActivationsMatchTheOracle)
{
  GObjectPtr<SlimLayer> layer = oracle_layer ();
  auto p = make (harness_linear_quant_yaml (kFp8Token, kFp8Chan));
  ASSERT_TRUE (p);
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (p.get (), &error)) << error->message;
  EXPECT_TRUE (slim_processor_is_data_free (p.get ()));
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error)) << error->message;
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error)) << error->message;
  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kGate.c_str ());
  ASSERT_NE (q, nullptr);
  EXPECT_STREQ (q->label, "WFP8AFP8_DYNAMIC");

  std::vector<float> want_scale = oracle_f32 ("fp8_e4m3_weight_per_channel.scale.npy");
  std::vector<float> want_q = oracle_f32 ("fp8_e4m3_weight_per_channel.q.npy");
  ASSERT_EQ (slim_tensor_get_n_elements (q->weight_scale), 96);
  const float *scale = (const float *)slim_tensor_get_data (q->weight_scale);
  for (int o = 0; o < 96; o++)
    ASSERT_EQ (bits_of (scale[o]), bits_of (want_scale[o])) << o;
  const guint8 *codes = (const guint8 *)slim_tensor_get_data (q->weight_q);
  const float *wdq = (const float *)slim_tensor_get_data (
      slim_layer_get_tensor (layer.get (), (kGate + ".weight").c_str ()));
  for (int i = 0; i < 96 * 256; i++)
    {
      ASSERT_EQ (codes[i], slim_f32_to_f8_e4m3fn (want_q[i])) << i;
      ASSERT_EQ (bits_of (wdq[i]), bits_of (slim_f8_e4m3fn_to_f32 (codes[i]) * scale[i / 256]))
          << i;
    }

  // deployed activations: per-token scale amax / 448 (the oracle's), E4M3 elements
  std::vector<float> x = oracle_f32 ("input.x.npy");
  std::vector<float> act_scale = oracle_f32 ("fp8_e4m3_act_per_token.scale.npy");
  std::vector<float> act_q = oracle_f32 ("fp8_e4m3_act_per_token.q.npy");
  std::vector<float> deployed = x;
  slim_qlinear_apply_act (q, deployed.data (), 64, 256);
  for (int t = 0; t < 64; t++)
    {
      float mn = x[t * 256], mx = x[t * 256];
      for (int k = 1; k < 256; k++)
        {
          mn = std::min (mn, x[t * 256 + k]);
          mx = std::max (mx, x[t * 256 + k]);
        }
      ASSERT_EQ (bits_of (slim_fp8_e4m3_scale (mn, mx)), bits_of (act_scale[t])) << t;
      for (int k = 0; k < 256; k++)
        ASSERT_EQ (bits_of (deployed[t * 256 + k]),
                   bits_of (slim_fp8_e4m3_round (act_q[t * 256 + k]) * act_scale[t]))
            << t << "," << k;
    }

  // saved: weight f8_e4m3fn, weight_scale (96, 1), weight_offset zeros; eval reads it back
  std::string src = slim_test_make_tmpdir (), out = slim_test_make_tmpdir ();
  ASSERT_TRUE (g_file_set_contents ((src + "/config.json").c_str (), "{\"model_type\": \"llama\"}",
                                    -1, nullptr));
  SlimAscendWriter *writer
      = slim_ascend_writer_new (SLIM_ASCEND_FORMAT_ASCENDV1, out.c_str (), 0, FALSE, &error);
  ASSERT_NE (writer, nullptr) << error->message;
  ASSERT_TRUE (slim_ascend_writer_write_layer (writer, layer.get (), &error)) << error->message;
  ASSERT_TRUE (slim_ascend_writer_finish (writer, src.c_str (), &error)) << error->message;
  slim_ascend_writer_free (writer);
  TensorPtr w = read_tensor (out, kGate + ".weight");
  TensorPtr ws = read_tensor (out, kGate + ".weight_scale");
  TensorPtr wo = read_tensor (out, kGate + ".weight_offset");
  ASSERT_TRUE (w && ws && wo);
  EXPECT_EQ (slim_tensor_get_dtype (w.get ()), SLIM_DTYPE_F8_E4M3FN);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (w.get ()), codes, 96 * 256), 0);
  EXPECT_EQ (slim_tensor_get_dim (ws.get (), 0), 96);
  EXPECT_EQ (slim_tensor_get_dim (ws.get (), 1), 1);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (ws.get ()), scale, 96 * sizeof (float)), 0);
  const float *off = (const float *)slim_tensor_get_data (wo.get ());
  for (int o = 0; o < 96; o++)
    EXPECT_EQ (off[o], 0.0f);
  std::string desc = harness_read_file (out + "/quant_model_description.json");
  EXPECT_NE (desc.find ("\"model_quant_type\": \"WFP8AFP8_DYNAMIC\""), std::string::npos) << desc;
  SlimTestAscendv1Report report = slim_test_ascendv1_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  SlimQuantModel *qm = slim_quant_model_load (out.c_str (), &error);
  ASSERT_NE (qm, nullptr) << error->message;
  TensorPtr back = read_tensor (slim_quant_model_get_float_dir (qm), kGate + ".weight");
  ASSERT_TRUE (back);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (back.get ()), wdq, 96 * 256 * sizeof (float)), 0);
  slim_quant_model_free (qm);
}

} // namespace

// W4A4_MXFP4_DUALSCALE on the oracle's weight with dual_block_size 128
// (two dual blocks per 256-wide row): the record's dual scales are max |w| / 6
// of each half row, the layer's weight the two-level dequantization
// (slim-mx-dual-scale.h, whose reference the mx-methods suite checks), the
// deployed forward fake-quantizes the input with the reference dual-scale
// activation quantization, and the saved folder holds weight_dual_scale
// f32 [96, 2, 1] and a bias labelled W4A4_MXFP4_DUALSCALE, passes the
// checker, and loads back to the same weight and block size.
TEST (LinearQuantMxDual, RecordSaverAndEvalLoader)
{
  const char *dual = "{dtype: mxfp4, scope: dual_scale, symmetric: true, method: dualscale, "
                     "ext: {dual_block_size: 128}}";
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kGate, 96, 256, true } }, 1));
  std::vector<float> w = oracle_f32 ("input.w.npy");
  SlimTensor *t = slim_tensor_new_2d ((kGate + ".weight").c_str (), SLIM_DTYPE_F32, 96, 256);
  std::memcpy (slim_tensor_get_data_mut (t), w.data (), w.size () * sizeof (float));
  slim_layer_set_tensor (layer.get (), t);
  slim_tensor_unref (t);
  auto p = make (harness_linear_quant_yaml (dual, dual));
  ASSERT_TRUE (p);
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (p.get (), &error)) << error->message;
  EXPECT_TRUE (slim_processor_is_data_free (p.get ()));
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error)) << error->message;
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error)) << error->message;
  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kGate.c_str ());
  ASSERT_NE (q, nullptr);
  EXPECT_STREQ (q->label, "W4A4_MXFP4_DUALSCALE");
  EXPECT_EQ (q->dual_block_size, 128);
  EXPECT_EQ (q->act_dual_block_size, 128);
  ASSERT_NE (q->weight_dual_scale, nullptr);
  ASSERT_EQ (slim_tensor_get_n_dims (q->weight_dual_scale), 3u);
  const float *ds = (const float *)slim_tensor_get_data (q->weight_dual_scale);
  for (int r = 0; r < 96; r++)
    for (int h = 0; h < 2; h++)
      {
        float amax = 0.0f;
        for (int c = h * 128; c < h * 128 + 128; c++)
          amax = std::max (amax, std::fabs (w[r * 256 + c]));
        ASSERT_EQ (ds[r * 2 + h], amax / 6.0f) << r << "," << h;
      }
  const float *wdq = (const float *)slim_tensor_get_data (
      slim_layer_get_tensor (layer.get (), (kGate + ".weight").c_str ()));
  std::vector<float> e (w.size ()), want_w (w.size ()), ds2 (96 * 2);
  std::vector<gint16> se (96 * 8);
  slim_mx_dual_quantize_rows (w.data (), 96, 256, 128, e.data (), se.data (), ds2.data (),
                              want_w.data ());
  EXPECT_EQ (std::memcmp (wdq, want_w.data (), w.size () * sizeof (float)), 0);

  // deployed forward against reference act quantization x dequantized weight
  std::vector<float> x = oracle_f32 ("input.x.npy"), xq (x.size ()), y;
  slim_mx_dual_fake_quantize_rows_ref (x.data (), 64, 256, 128, xq.data ());
  SlimForwardHooks deployed;
  slim_qlinear_get_deployed_hooks (layer.get (), &deployed);
  ASSERT_TRUE (harness_linear_forward (layer.get (), kGate, x, 64, &deployed, &y, &error))
      << error->message;
  const float *bias = (const float *)slim_tensor_get_data (
      slim_layer_get_tensor (layer.get (), (kGate + ".bias").c_str ()));
  for (int tk = 0; tk < 64; tk++)
    for (int o = 0; o < 96; o++)
      {
        // float32 sums of 256 products in another order: within
        // 2 * 256 * 2^-24 of the sum of magnitudes (3e-5; 4e-5 allowed)
        double sum = bias[o], mag = std::fabs (bias[o]);
        for (int k = 0; k < 256; k++)
          {
            sum += (double)xq[tk * 256 + k] * wdq[o * 256 + k];
            mag += std::fabs ((double)xq[tk * 256 + k] * wdq[o * 256 + k]);
          }
        ASSERT_NEAR (y[tk * 96 + o], sum, 4e-5 * mag + 1e-30) << tk << "," << o;
      }

  std::string src = slim_test_make_tmpdir (), out = slim_test_make_tmpdir ();
  ASSERT_TRUE (g_file_set_contents ((src + "/config.json").c_str (), "{\"model_type\": \"llama\"}",
                                    -1, nullptr));
  SlimAscendWriter *writer
      = slim_ascend_writer_new (SLIM_ASCEND_FORMAT_ASCENDV1, out.c_str (), 0, FALSE, &error);
  ASSERT_NE (writer, nullptr) << error->message;
  ASSERT_TRUE (slim_ascend_writer_write_layer (writer, layer.get (), &error)) << error->message;
  ASSERT_TRUE (slim_ascend_writer_finish (writer, src.c_str (), &error)) << error->message;
  slim_ascend_writer_free (writer);
  TensorPtr wd = read_tensor (out, kGate + ".weight_dual_scale");
  ASSERT_TRUE (wd);
  EXPECT_EQ (slim_tensor_get_dtype (wd.get ()), SLIM_DTYPE_F32);
  ASSERT_EQ (slim_tensor_get_n_dims (wd.get ()), 3u);
  EXPECT_EQ (slim_tensor_get_dim (wd.get (), 0), 96);
  EXPECT_EQ (slim_tensor_get_dim (wd.get (), 1), 2);
  EXPECT_EQ (slim_tensor_get_dim (wd.get (), 2), 1);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (wd.get ()), ds, 96 * 2 * sizeof (float)), 0);
  std::string desc = harness_read_file (out + "/quant_model_description.json");
  EXPECT_NE (desc.find ("\"" + kGate + ".bias\": \"W4A4_MXFP4_DUALSCALE\""), std::string::npos)
      << desc;
  EXPECT_NE (desc.find ("\"model_quant_type\": \"W4A4_MXFP4_DUALSCALE\""), std::string::npos);
  SlimTestAscendv1Report report = slim_test_ascendv1_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();

  SlimQuantModel *qm = slim_quant_model_load (out.c_str (), &error);
  ASSERT_NE (qm, nullptr) << error->message;
  TensorPtr back = read_tensor (slim_quant_model_get_float_dir (qm), kGate + ".weight");
  ASSERT_TRUE (back);
  EXPECT_EQ (std::memcmp (slim_tensor_get_data (back.get ()), wdq, 96 * 256 * sizeof (float)), 0);
  slim_quant_model_free (qm);
}
