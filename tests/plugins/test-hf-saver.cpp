// SPDX-License-Identifier: Apache-2.0
//
// test-hf-saver.cpp: the hf_gptq_saver and hf_awq_saver (slim-hf-writer.h)
// on stories260K quantized by linear_quant through the harness driver:
// - GPTQ W4A16 g32 asymmetric and symmetric, W4A16 per channel (group_size
//   -1), W8A16 g32, and gptq_v2; AWQ W4A16 g32 / g64 asymmetric: folders
//   the checker (tests/hf-checker.hpp) accepts, with the expected config;
// - dequantized from the folder alone, every quantized weight equals the
//   weight slimflow deployed in the layer bit for bit (scale_dtype
//   float32), or (q - offset) * float16(scale) bit for bit (float16, the
//   default), whose distance to the deployed weight is printed;
// - the packing's slot order pinned by known words (GPTQ natural, AWQ
//   0 2 4 6 1 3 5 7);
// - schemes the formats cannot express fail naming the linear, before any
//   weight file is written;
// - the checker rejects hand-broken copies of a saver-made folder.
//
// stories260K's MLP has 172 hidden features, which neither format packs
// (not a multiple of 8), so the folders quantize the 20 attention linears
// and the MLP stays float (listed in dynamic / modules_to_not_convert).
#include "../hf-checker.hpp"
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-error.h"
#include "slim-hf-pack.h"
#include "slim-hf-writer.h"
#include "slim-safetensors.h"
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <set>

namespace
{

const char *const kNoMlp = "exclude: [\"*mlp*\"]\n";
const char *const kToken8 = "{dtype: int8, scope: per_token, symmetric: true, method: minmax}";
const char *const kChan8 = "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}";
const size_t kAttnLinears = 5u * 4u; // q, k, v, o in each of 5 layers

std::string
group (const char *dtype, bool sym, int gs = 32)
{
  return std::string ("{dtype: ") + dtype
         + ", scope: per_group, symmetric: " + (sym ? "true" : "false")
         + ", method: minmax, ext: {group_size: " + std::to_string (gs) + "}}";
}

std::string
stories ()
{
  return slim_test_shared_path ("models/stories260K");
}

// What the run deployed, per quantized linear.
struct Deployed
{
  std::vector<float> weight; // the layer's dequantized weight (n_out * n_in)
  std::vector<float> f16;    // (q - offset) * float16 (scale), same shape
};

struct HfRun
{
  std::string out;
  std::map<std::string, Deployed> deployed;
  std::string error;
};

// (q - offset) * scale with the scale rounded to float16, from the record.
std::vector<float>
f16_expectation (const SlimQLinear *q)
{
  std::vector<float> w ((size_t)(q->n_out * q->n_in));
  const gint8 *wq = (const gint8 *)slim_tensor_get_data (q->weight_q);
  const float *s = (const float *)slim_tensor_get_data (q->weight_scale);
  const float *o = (const float *)slim_tensor_get_data (q->weight_offset);
  int64_t n_params = slim_tensor_get_n_elements (q->weight_scale);
  int64_t per_row = n_params / q->n_out;
  for (int64_t r = 0; r < q->n_out; r++)
    for (int64_t c = 0; c < q->n_in; c++)
      {
        int64_t p = r * per_row + c / (q->n_in / per_row);
        float s16 = slim_f16_to_f32 (slim_f32_to_f16 (s[p]));
        w[(size_t)(r * q->n_in + c)] = ((float)wq[r * q->n_in + c] - o[p]) * s16;
      }
  return w;
}

HfRun
quantize (const std::string &lq_yaml, const std::string &saver_yaml)
{
  HfRun run;
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p (harness_processor (lq_yaml, &error));
  EXPECT_TRUE (p) << (error ? error->message : "");
  g_clear_error (&error);
  GObjectPtr<SlimSaver> s (harness_saver (saver_yaml, &error));
  EXPECT_TRUE (s) << (error ? error->message : "");
  g_clear_error (&error);
  if (!p || !s)
    return run;
  run.out = slim_test_make_tmpdir ();
  bool begun = false;
  auto on_layer = [&] (SlimModel *model, SlimLayer *layer, GError **err) -> bool {
    if (!begun && !slim_saver_begin (s.get (), model, run.out.c_str (), err))
      return false;
    begun = true;
    GPtrArray *records = slim_layer_list_qlinears (layer);
    for (guint i = 0; i < records->len; i++)
      {
        const SlimQLinear *q = (const SlimQLinear *)g_ptr_array_index (records, i);
        Deployed d;
        std::string name = std::string (q->module) + ".weight";
        SlimTensor *w = slim_layer_get_tensor (layer, name.c_str ());
        EXPECT_NE (w, nullptr) << name;
        if (w != nullptr)
          {
            const float *v = (const float *)slim_tensor_get_data (w);
            d.weight.assign (v, v + slim_tensor_get_n_elements (w));
          }
        if (q->weight_q != nullptr && q->weight_scale != nullptr && q->weight_offset != nullptr)
          d.f16 = f16_expectation (q);
        run.deployed[q->module] = d;
      }
    g_ptr_array_unref (records);
    return slim_saver_write_layer (s.get (), layer, err);
  };
  bool ok = harness_run_model_with (stories (), { p.get () }, on_layer, 3, 12, &error)
            && slim_saver_finish (s.get (), &error);
  if (!ok)
    {
      run.error = error != nullptr ? error->message : "(no message)";
      g_clear_error (&error);
      slim_saver_abort (s.get ());
    }
  return run;
}

// Every deployed linear dequantizes from the folder to `want` bit for bit;
// returns the number of linears compared.
size_t
expect_dequantized (const HfRun &run, bool f16)
{
  size_t n = 0;
  double max_rel = 0.0;
  EXPECT_FALSE (run.deployed.empty ());
  for (const auto &kv : run.deployed)
    {
      std::vector<float> w;
      int64_t n_out = 0, n_in = 0;
      std::string why;
      EXPECT_TRUE (slim_test_hf_dequantize (run.out, kv.first, &w, &n_out, &n_in, &why)) << why;
      const std::vector<float> &want = f16 ? kv.second.f16 : kv.second.weight;
      if (w.size () != want.size ())
        {
          ADD_FAILURE () << kv.first << ": " << w.size () << " values, want " << want.size ();
          continue;
        }
      // bit for bit: memcmp, no tolerance (the same float32 (u - z) * scale)
      EXPECT_EQ (std::memcmp (w.data (), want.data (), w.size () * sizeof (float)), 0) << kv.first;
      for (size_t i = 0; f16 && i < w.size (); i++)
        if (kv.second.weight[i] != 0.0f)
          max_rel = std::max (max_rel, std::fabs ((double)w[i] - kv.second.weight[i])
                                           / std::fabs ((double)kv.second.weight[i]));
      n++;
    }
  if (f16)
    std::printf ("[ figure   ] float16 scales: max relative distance to the deployed weights "
                 "%.3g over %zu linears\n",
                 max_rel, n);
  return n;
}

std::string
config_text (const std::string &out)
{
  return harness_read_file (out + "/config.json");
}

std::vector<std::string>
list_dir (const std::string &dir)
{
  std::vector<std::string> names;
  GDir *d = dir.empty () ? nullptr : g_dir_open (dir.c_str (), 0, nullptr);
  const char *name;
  while (d != nullptr && (name = g_dir_read_name (d)) != nullptr)
    names.emplace_back (name);
  if (d != nullptr)
    g_dir_close (d);
  std::sort (names.begin (), names.end ());
  return names;
}

std::string
copy_folder (const std::string &src)
{
  std::string dst = slim_test_make_tmpdir ();
  for (const std::string &f : list_dir (src))
    {
      gchar *data = nullptr;
      gsize len = 0;
      EXPECT_TRUE (g_file_get_contents ((src + "/" + f).c_str (), &data, &len, nullptr));
      EXPECT_TRUE (g_file_set_contents ((dst + "/" + f).c_str (), data, (gssize)len, nullptr));
      g_free (data);
    }
  return dst;
}

} // namespace

// ---- the packing's slot order -----------------------------------------------

TEST (HfPack, SlotOrderPinnedByKnownWords)
{
  const guint8 codes[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
  gint32 word = 0;
  GError *error = nullptr;
  // GPTQ qzeros: element j in slot j (bits 4j)
  ASSERT_TRUE (slim_hf_pack_dim1 (codes, 1, 8, 4, nullptr, &word, &error));
  EXPECT_EQ ((guint32)word, 0x76543210u);
  // AWQ GEMM: slots hold elements 0 2 4 6 1 3 5 7
  ASSERT_TRUE (slim_hf_pack_dim1 (codes, 1, 8, 4, SLIM_HF_AWQ_ORDER, &word, &error));
  EXPECT_EQ ((guint32)word, 0x75316420u);
  // GPTQ qweight: down a column; int8 holds 4 per word
  const guint8 col[4] = { 0x11, 0x22, 0x33, 0xf4 };
  ASSERT_TRUE (slim_hf_pack_dim0 (col, 4, 1, 8, &word, &error));
  EXPECT_EQ ((guint32)word, 0xf4332211u);
  // a code beyond the bits and a dimension that is not a multiple fail
  const guint8 bad[8] = { 0, 1, 2, 3, 4, 5, 6, 16 };
  EXPECT_FALSE (slim_hf_pack_dim1 (bad, 1, 8, 4, nullptr, &word, &error));
  g_clear_error (&error);
  EXPECT_FALSE (slim_hf_pack_dim0 (codes, 7, 1, 4, &word, &error));
  g_clear_error (&error);
}

// ---- GPTQ --------------------------------------------------------------------

struct SaveCase
{
  const char *name;
  std::string weight;
  std::string saver; // YAML
  int bits;
  int64_t group_size;
  bool sym;
  const char *format; // checkpoint_format / version
  bool f16;
  std::string extra = kNoMlp; // linear_quant selection
  size_t n_quantized = kAttnLinears;
  size_t n_skipped = 5u * 3u; // the float MLP linears (AWQ: and lm_head)
};

class HfSaverFolders : public ::testing::TestWithParam<SaveCase>
{
};

TEST_P (HfSaverFolders, CheckerAcceptsAndDequantizesBitExact)
{
  const SaveCase &c = GetParam ();
  HfRun run = quantize (harness_linear_quant_yaml ("", c.weight, c.extra), c.saver);
  ASSERT_TRUE (run.error.empty ()) << run.error;
  SlimTestHfReport report = slim_test_hf_check (run.out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  bool gptq = c.saver.find ("gptq") != std::string::npos;
  EXPECT_EQ (report.method, gptq ? "gptq" : "awq");
  EXPECT_EQ (report.checkpoint_format, c.format);
  EXPECT_EQ (report.bits, c.bits);
  EXPECT_EQ (report.group_size, c.group_size);
  if (gptq)
    {
      EXPECT_EQ (report.sym, c.sym);
    }
  EXPECT_EQ (report.quantized.size (), c.n_quantized);
  EXPECT_EQ (report.skipped.size (), c.n_skipped);
  size_t n = expect_dequantized (run, c.f16);
  EXPECT_EQ (n, c.n_quantized);
  std::printf ("[ figure   ] %s: %zu linears bit for bit\n", c.name, n);

  GError *error = nullptr;
  GObjectPtr<SlimSafetensors> st (
      slim_safetensors_open ((run.out + "/model.safetensors").c_str (), &error));
  ASSERT_TRUE (st) << (error ? error->message : "");
  const std::string v = "model.layers.4.self_attn.v_proj.";
  SlimDType dtype;
  guint n_dims = 0;
  gint64 shape[SLIM_TENSOR_MAX_DIMS];
  ASSERT_TRUE (
      slim_safetensors_get_info (st.get (), (v + "scales").c_str (), &dtype, &n_dims, shape));
  EXPECT_EQ (dtype, c.f16 ? SLIM_DTYPE_F16 : SLIM_DTYPE_F32);
  // v_proj is (32, 64): GPTQ qweight (64 / pf, 32), AWQ (64, 32 / 8)
  ASSERT_TRUE (
      slim_safetensors_get_info (st.get (), (v + "qweight").c_str (), &dtype, &n_dims, shape));
  EXPECT_EQ (shape[0], gptq ? 64 / (32 / c.bits) : 64);
  EXPECT_EQ (shape[1], gptq ? 32 : 4);
  EXPECT_FALSE (slim_safetensors_contains (st.get (), (v + "weight").c_str ()));
  EXPECT_FALSE (slim_safetensors_contains (st.get (), "lm_head.weight")) << "tied lm_head";
  EXPECT_EQ (slim_safetensors_contains (st.get (), "model.layers.0.mlp.down_proj.weight"),
             c.n_quantized == kAttnLinears);
  EXPECT_EQ (harness_read_file (run.out + "/tokenizer.json"),
             harness_read_file (stories () + "/tokenizer.json"));
}

INSTANTIATE_TEST_SUITE_P (
    Schemes,
    HfSaverFolders,
    ::testing::Values (
        SaveCase{ "GptqW4G32Asym", group ("int4", false),
                  "type: hf_gptq_saver\npart_file_size: 0\n", 4, 32, false, "gptq", true },
        SaveCase{ "GptqW4G32AsymF32", group ("int4", false),
                  "type: hf_gptq_saver\npart_file_size: 0\nscale_dtype: float32\n", 4, 32, false,
                  "gptq", false },
        SaveCase{ "GptqW4G32Sym", group ("int4", true), "type: gptq_saver\npart_file_size: 0\n", 4,
                  32, true, "gptq", true },
        SaveCase{ "GptqW4G32SymF32", group ("int4", true),
                  "type: gptq_saver\npart_file_size: 0\nscale_dtype: float32\n", 4, 32, true,
                  "gptq", false },
        // int8 packs 4 per word: the MLP's 172 features fit, all 35 linears
        SaveCase{ "GptqW8ChannelF32", kChan8,
                  "type: hf_gptq_saver\npart_file_size: 0\nscale_dtype: float32\n", 8, -1, true,
                  "gptq", false, "", 35, 0 },
        SaveCase{ "GptqW8Channel", kChan8, "type: hf_gptq_saver\npart_file_size: 0\n", 8, -1, true,
                  "gptq", true, "", 35, 0 },
        SaveCase{ "GptqW8G32AsymF32", group ("int8", false),
                  "type: hf_gptq_saver\npart_file_size: 0\nscale_dtype: float32\n", 8, 32, false,
                  "gptq", false },
        SaveCase{ "GptqV2W4G32AsymF32", group ("int4", false),
                  "type: hf_gptq_saver\npart_file_size: 0\nscale_dtype: float32\n"
                  "checkpoint_format: gptq_v2\n",
                  4, 32, false, "gptq_v2", false },
        SaveCase{ "AwqW4G32Asym", group ("int4", false), "type: hf_awq_saver\npart_file_size: 0\n",
                  4, 32, false, "gemm", true, kNoMlp, kAttnLinears, 16 },
        SaveCase{ "AwqW4G32AsymF32", group ("int4", false),
                  "type: awq_saver\npart_file_size: 0\nscale_dtype: float32\n", 4, 32, false,
                  "gemm", false, kNoMlp, kAttnLinears, 16 },
        // symmetric: the constant zero 8 (GEMM always carries zeros)
        SaveCase{ "AwqW4G32SymF32", group ("int4", true),
                  "type: hf_awq_saver\npart_file_size: 0\nscale_dtype: float32\n", 4, 32, true,
                  "gemm", false, kNoMlp, kAttnLinears, 16 },
        SaveCase{ "AwqW4G64Asym", group ("int4", false, 64),
                  "type: hf_awq_saver\npart_file_size: 0\n", 4, 64, false, "gemm", true, kNoMlp,
                  kAttnLinears, 16 },
        SaveCase{ "AwqW4G64AsymF32", group ("int4", false, 64),
                  "type: hf_awq_saver\npart_file_size: 0\nscale_dtype: float32\n", 4, 64, false,
                  "gemm", false, kNoMlp, kAttnLinears, 16 }),
    [] (const ::testing::TestParamInfo<SaveCase> &info) { return std::string (info.param.name); });

// The GPTQ config as GPTQModel's to_dict orders it, the float MLP as
// negative dynamic matches; quantize_config.json beside it.
TEST (HfSaver, GptqConfigText)
{
  HfRun run = quantize (harness_linear_quant_yaml ("", group ("int4", false), kNoMlp),
                        "type: hf_gptq_saver\npart_file_size: 0\n");
  ASSERT_TRUE (run.error.empty ()) << run.error;
  std::string text = config_text (run.out);
  EXPECT_NE (text.find ("  \"quantization_config\": {\n    \"bits\": 4,\n    \"dynamic\": {\n"
                        "      \"-:^model\\\\.layers\\\\.0\\\\.mlp\\\\.gate_proj$\": {},\n"),
             std::string::npos)
      << text;
  EXPECT_NE (text.find ("    \"group_size\": 32,\n    \"desc_act\": false,\n    \"sym\": false,\n"
                        "    \"lm_head\": false,\n    \"quant_method\": \"gptq\",\n"
                        "    \"checkpoint_format\": \"gptq\",\n    \"pack_dtype\": \"int32\",\n"),
             std::string::npos)
      << text;
  EXPECT_NE (text.find ("    \"modules_in_block_to_quantize\": [\n      [\n"
                        "        \"model.layers.0.self_attn.q_proj\",\n"),
             std::string::npos)
      << text;
  EXPECT_TRUE (g_file_test ((run.out + "/quantize_config.json").c_str (), G_FILE_TEST_EXISTS));
}

TEST (HfSaver, AwqConfigText)
{
  HfRun run = quantize (harness_linear_quant_yaml ("", group ("int4", false), kNoMlp),
                        "type: hf_awq_saver\npart_file_size: 0\n");
  ASSERT_TRUE (run.error.empty ()) << run.error;
  std::string text = config_text (run.out);
  EXPECT_NE (text.find ("  \"quantization_config\": {\n    \"quant_method\": \"awq\",\n"
                        "    \"zero_point\": true,\n    \"group_size\": 32,\n    \"bits\": 4,\n"
                        "    \"version\": \"gemm\",\n    \"modules_to_not_convert\": [\n"
                        "      \"model.layers.0.mlp.gate_proj\",\n"),
             std::string::npos)
      << text;
  EXPECT_NE (text.find ("\"lm_head\"\n    ]"), std::string::npos) << "the float lm_head is listed";
  EXPECT_FALSE (g_file_test ((run.out + "/quantize_config.json").c_str (), G_FILE_TEST_EXISTS));
}

// ---- refused -------------------------------------------------------------------

struct BadCase
{
  const char *name;
  std::string act;
  std::string weight;
  std::string extra;
  std::string saver;
  const char *module;
  const char *fragment;
};

class HfSaverRefuses : public ::testing::TestWithParam<BadCase>
{
};

TEST_P (HfSaverRefuses, NamesTheLinearAndWritesNothing)
{
  const BadCase &c = GetParam ();
  HfRun run = quantize (harness_linear_quant_yaml (c.act, c.weight, c.extra), c.saver);
  ASSERT_FALSE (run.error.empty ());
  EXPECT_NE (run.error.find (std::string (c.module) + " ("), std::string::npos) << run.error;
  EXPECT_NE (run.error.find ("cannot save this linear"), std::string::npos) << run.error;
  EXPECT_NE (run.error.find (c.fragment), std::string::npos) << run.error;
  for (const std::string &f : list_dir (run.out))
    EXPECT_EQ (f.find ("model"), std::string::npos) << f;
}

INSTANTIATE_TEST_SUITE_P (
    Schemes,
    HfSaverRefuses,
    ::testing::Values (
        BadCase{ "GptqActivations", kToken8, kChan8, "", "type: hf_gptq_saver\n",
                 "model.layers.0.self_attn.q_proj", "GPTQ checkpoints are weight-only" },
        // group 4 divides the MLP's 172 features, 8 int4 per word does not
        BadCase{ "GptqMlpNotPackable", "", group ("int4", true, 4), "", "type: hf_gptq_saver\n",
                 "model.layers.0.mlp.gate_proj", "172 output features are not a multiple of 8" },
        BadCase{ "AwqInt8", "", group ("int8", false), kNoMlp, "type: hf_awq_saver\n",
                 "model.layers.0.self_attn.q_proj", "AWQ GEMM holds int4 weights only" },
        BadCase{ "AwqActivations", kToken8, kChan8, kNoMlp, "type: hf_awq_saver\n",
                 "model.layers.0.self_attn.q_proj", "AWQ checkpoints are weight-only" }),
    [] (const ::testing::TestParamInfo<BadCase> &info) { return std::string (info.param.name); });

// Two schemes in one run: the checkpoint has one quantization_config.
TEST (HfSaver, TwoSchemesRefused)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p1 (harness_processor (
      harness_linear_quant_yaml ("", group ("int4", true), "include: [\"*q_proj*\"]\n"), &error));
  ASSERT_TRUE (p1) << (error ? error->message : "");
  GObjectPtr<SlimProcessor> p2 (harness_processor (
      harness_linear_quant_yaml ("", group ("int4", false), "include: [\"*k_proj*\"]\n"), &error));
  ASSERT_TRUE (p2) << (error ? error->message : "");
  GObjectPtr<SlimSaver> s (harness_saver ("type: hf_gptq_saver\n", &error));
  ASSERT_TRUE (s);
  std::string out = slim_test_make_tmpdir ();
  EXPECT_FALSE (
      harness_run_model (stories (), { p1.get (), p2.get () }, { s.get () }, out, 2, 8, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("one scheme per checkpoint"), std::string::npos)
      << error->message;
  EXPECT_NE (std::string (error->message).find ("model.layers.0.self_attn.k_proj"),
             std::string::npos)
      << error->message;
  g_clear_error (&error);
  slim_saver_abort (s.get ());
}

namespace
{

// A synthetic layer 0 holding q_proj (32 x 64) with an int4 asymmetric
// W4A16 record, g32 or per channel (linear_quant has no int4 per_channel
// weight-only scheme), whose offsets are `offset` at parameter 11, -3
// elsewhere.
SlimLayer *
layer_with_record (float offset,
                   bool per_channel = false,
                   int index = 0,
                   const char *module = "model.layers.0.self_attn.q_proj")
{
  const int n_groups = per_channel ? 1 : 2;
  SlimLayer *layer = harness_synthetic_layer (index, { { module, 32, 64, false } }, 3);
  SlimQLinear *q = slim_qlinear_new (module, "W4A16");
  q->act = SLIM_QSCHEME_ACT_FLOAT;
  q->weight
      = { SLIM_QDTYPE_INT4, per_channel ? SLIM_QSCOPE_PER_CHANNEL : SLIM_QSCOPE_PER_GROUP, FALSE };
  q->group_size = per_channel ? 0 : 32;
  q->n_out = 32;
  q->n_in = 64;
  q->weight_q = slim_tensor_new_2d ("q", SLIM_DTYPE_I8, 32, 64);
  q->weight_scale = slim_tensor_new_2d ("s", SLIM_DTYPE_F32, 32, n_groups);
  q->weight_offset = slim_tensor_new_2d ("o", SLIM_DTYPE_F32, 32, n_groups);
  gint8 *wq = (gint8 *)slim_tensor_get_data_mut (q->weight_q);
  for (int i = 0; i < 32 * 64; i++)
    wq[i] = (gint8)((i * 7) % 16 - 8);
  float *s = (float *)slim_tensor_get_data_mut (q->weight_scale);
  float *o = (float *)slim_tensor_get_data_mut (q->weight_offset);
  for (int i = 0; i < 32 * n_groups; i++)
    {
      s[i] = 0.01f * (float)(1 + i % 5);
      o[i] = i == 11 ? offset : -3.0f;
    }
  slim_layer_set_qlinear (layer, q);
  return layer;
}

void
write_config (const std::string &dir)
{
  const char *text = "{\"model_type\": \"llama\", \"tie_word_embeddings\": true}";
  ASSERT_TRUE (g_file_set_contents ((dir + "/config.json").c_str (), text, -1, nullptr));
}

} // namespace

// The unsigned zero point 0 (offset -8) has no gptq (v1) encoding
// (z - 1 = -1); gptq_v2 stores it.  Every code, zero and slot position of
// the record comes back from the folder (AWQ too, whose slots interleave).
TEST (HfWriter, ZeroPointZeroNeedsGptqV2)
{
  for (SlimHfFormat format : { SLIM_HF_FORMAT_GPTQ, SLIM_HF_FORMAT_GPTQ_V2, SLIM_HF_FORMAT_AWQ })
    {
      std::string out = slim_test_make_tmpdir ();
      GError *error = nullptr;
      SlimHfWriter *w = slim_hf_writer_new (out.c_str (), format, 0, FALSE, TRUE, &error);
      ASSERT_NE (w, nullptr) << (error ? error->message : "");
      GObjectPtr<SlimLayer> layer (layer_with_record (-8.0f));
      bool ok = slim_hf_writer_write_layer (w, layer.get (), &error);
      if (format == SLIM_HF_FORMAT_GPTQ)
        {
          EXPECT_FALSE (ok);
          ASSERT_NE (error, nullptr);
          EXPECT_TRUE (
              g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE));
          EXPECT_NE (std::string (error->message)
                         .find ("model.layers.0.self_attn.q_proj (W4A16): hf_gptq_saver cannot "
                                "save this linear: weight_offset (5, 1) = -8"),
                     std::string::npos)
              << error->message;
          EXPECT_NE (std::string (error->message).find ("checkpoint_format: gptq_v2"),
                     std::string::npos);
          g_clear_error (&error);
          slim_hf_writer_free (w);
          EXPECT_TRUE (list_dir (out).empty ());
          continue;
        }
      ASSERT_TRUE (ok) << (error ? error->message : "");
      write_config (out);
      ASSERT_TRUE (slim_hf_writer_finish (w, nullptr, &error)) << (error ? error->message : "");
      slim_hf_writer_free (w);
      SlimTestHfReport report = slim_test_hf_check (out);
      EXPECT_TRUE (report.ok ()) << report.summary ();
      std::vector<float> deq;
      int64_t n_out = 0, n_in = 0;
      std::string why;
      ASSERT_TRUE (slim_test_hf_dequantize (out, "model.layers.0.self_attn.q_proj", &deq, &n_out,
                                            &n_in, &why))
          << why;
      const SlimQLinear *q
          = slim_layer_get_qlinear (layer.get (), "model.layers.0.self_attn.q_proj");
      const gint8 *wq = (const gint8 *)slim_tensor_get_data (q->weight_q);
      const float *s = (const float *)slim_tensor_get_data (q->weight_scale);
      const float *o = (const float *)slim_tensor_get_data (q->weight_offset);
      ASSERT_EQ (deq.size (), 32u * 64u);
      for (int r = 0; r < 32; r++)
        for (int c = 0; c < 64; c++)
          {
            int p = r * 2 + c / 32;
            ASSERT_EQ (deq[(size_t)(r * 64 + c)], ((float)wq[r * 64 + c] - o[p]) * s[p])
                << "format " << format << " (" << r << ", " << c << ")";
          }
    }
}

// int4 per channel: GPTQ's group_size -1 (scales (1, out), g_idx all 0);
// AWQ refuses it naming the linear, before any tensor is written.
TEST (HfWriter, Int4PerChannel)
{
  for (SlimHfFormat format : { SLIM_HF_FORMAT_GPTQ, SLIM_HF_FORMAT_AWQ })
    {
      std::string out = slim_test_make_tmpdir ();
      GError *error = nullptr;
      SlimHfWriter *w = slim_hf_writer_new (out.c_str (), format, 0, FALSE, TRUE, &error);
      ASSERT_NE (w, nullptr) << (error ? error->message : "");
      GObjectPtr<SlimLayer> layer (layer_with_record (-3.0f, true));
      bool ok = slim_hf_writer_write_layer (w, layer.get (), &error);
      if (format == SLIM_HF_FORMAT_AWQ)
        {
          EXPECT_FALSE (ok);
          ASSERT_NE (error, nullptr);
          EXPECT_NE (std::string (error->message)
                         .find ("model.layers.0.self_attn.q_proj (W4A16): hf_awq_saver cannot save "
                                "this linear: weight scope per_channel: AWQ GEMM stores per_group "
                                "weights only (no group_size -1)"),
                     std::string::npos)
              << error->message;
          g_clear_error (&error);
          slim_hf_writer_free (w);
          EXPECT_TRUE (list_dir (out).empty ());
          continue;
        }
      ASSERT_TRUE (ok) << (error ? error->message : "");
      write_config (out);
      ASSERT_TRUE (slim_hf_writer_finish (w, nullptr, &error)) << (error ? error->message : "");
      slim_hf_writer_free (w);
      SlimTestHfReport report = slim_test_hf_check (out);
      EXPECT_TRUE (report.ok ()) << report.summary ();
      EXPECT_EQ (report.group_size, -1);
      std::vector<float> deq;
      int64_t n_out = 0, n_in = 0;
      std::string why;
      ASSERT_TRUE (slim_test_hf_dequantize (out, "model.layers.0.self_attn.q_proj", &deq, &n_out,
                                            &n_in, &why))
          << why;
      const SlimQLinear *q
          = slim_layer_get_qlinear (layer.get (), "model.layers.0.self_attn.q_proj");
      const gint8 *wq = (const gint8 *)slim_tensor_get_data (q->weight_q);
      const float *s = (const float *)slim_tensor_get_data (q->weight_scale);
      const float *o = (const float *)slim_tensor_get_data (q->weight_offset);
      for (int r = 0; r < 32; r++)
        for (int c = 0; c < 64; c++)
          ASSERT_EQ (deq[(size_t)(r * 64 + c)], ((float)wq[r * 64 + c] - o[r]) * s[r]);
    }
}

TEST (HfWriter, NothingQuantizedIsAnError)
{
  std::string out = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimHfWriter *w = slim_hf_writer_new (out.c_str (), SLIM_HF_FORMAT_AWQ, 0, TRUE, TRUE, &error);
  ASSERT_NE (w, nullptr);
  write_config (out);
  EXPECT_FALSE (slim_hf_writer_finish (w, nullptr, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("no linear was quantized"), std::string::npos);
  g_clear_error (&error);
  slim_hf_writer_free (w);
}

// ---- the checker rejects broken folders --------------------------------------

namespace
{

void
edit_text (const std::string &path, const std::string &from, const std::string &to)
{
  std::string text = harness_read_file (path);
  size_t at = text.find (from);
  ASSERT_NE (at, std::string::npos) << from;
  text.replace (at, from.size (), to);
  ASSERT_TRUE (g_file_set_contents (path.c_str (), text.c_str (), -1, nullptr));
}

// Rewrites model.safetensors with tensor `name` changed by `edit` (or
// dropped when edit is null), the others unchanged.
void
edit_weights (const std::string &dir,
              const std::string &name,
              const std::function<void (SlimTensor *)> &edit)
{
  std::string file = dir + "/model.safetensors";
  std::vector<TensorPtr> keep;
  {
    GError *error = nullptr;
    GObjectPtr<SlimSafetensors> st (slim_safetensors_open (file.c_str (), &error));
    ASSERT_TRUE (st) << (error ? error->message : "");
    for (guint i = 0; i < slim_safetensors_get_n_tensors (st.get ()); i++)
      {
        std::string n = slim_safetensors_get_names (st.get ())[i];
        TensorPtr view (slim_safetensors_get_tensor (st.get (), n.c_str (), nullptr));
        if (n == name && !edit)
          continue;
        keep.emplace_back (slim_tensor_copy (view.get (), nullptr));
        if (n == name)
          edit (keep.back ().get ());
      }
  }
  std::vector<SlimTensor *> ptrs;
  for (auto &k : keep)
    ptrs.push_back (k.get ());
  GHashTable *meta = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (meta, (gpointer) "format", (gpointer) "pt");
  GError *error = nullptr;
  ASSERT_TRUE (
      slim_safetensors_write_file (file.c_str (), ptrs.data (), ptrs.size (), meta, &error))
      << (error ? error->message : "");
  g_hash_table_unref (meta);
}

} // namespace

TEST (HfChecker, RejectsBrokenFolders)
{
  HfRun gptq = quantize (harness_linear_quant_yaml ("", group ("int4", true), kNoMlp),
                         "type: hf_gptq_saver\npart_file_size: 0\n");
  ASSERT_TRUE (gptq.error.empty ()) << gptq.error;
  HfRun awq = quantize (harness_linear_quant_yaml ("", group ("int4", false), kNoMlp),
                        "type: hf_awq_saver\npart_file_size: 0\n");
  ASSERT_TRUE (awq.error.empty ()) << awq.error;
  ASSERT_TRUE (slim_test_hf_check (gptq.out).ok ());
  ASSERT_TRUE (slim_test_hf_check (awq.out).ok ());
  const std::string k = "model.layers.2.self_attn.k_proj.";

  struct Mutation
  {
    const char *what;
    const std::string *src;
    std::function<void (const std::string &)> apply;
    const char *fragment;
  };
  std::vector<Mutation> mutations = {
    { "float MLP no longer skipped", &gptq.out,
      [] (const std::string &d) {
        for (const char *f : { "/config.json", "/quantize_config.json" })
          edit_text (d + f, "\"-:^model\\\\.layers\\\\.3\\\\.mlp\\\\.up_proj$\": {},", "");
      },
      "model.layers.3.mlp.up_proj: a float Linear of a decoder layer that the config does not "
      "skip" },
    { "quantized linear not in modules_in_block_to_quantize", &gptq.out,
      [] (const std::string &d) {
        for (const char *f : { "/config.json", "/quantize_config.json" })
          edit_text (d + f, "\"model.layers.1.self_attn.v_proj\",", "");
      },
      "model.layers.1.self_attn.v_proj: quantized but not in modules_in_block_to_quantize" },
    { "quantize_config.json differs", &gptq.out,
      [] (const std::string &d) {
        edit_text (d + "/quantize_config.json", "\"group_size\": 32", "\"group_size\": 64");
      },
      "quantize_config.json differs" },
    { "desc_act true", &gptq.out,
      [] (const std::string &d) {
        edit_text (d + "/config.json", "\"desc_act\": false", "\"desc_act\": true");
      },
      "desc_act must be false" },
    { "g_idx permuted", &gptq.out,
      [&] (const std::string &d) {
        edit_weights (d, k + "g_idx", [] (SlimTensor *t) {
          std::swap (((gint32 *)slim_tensor_get_data_mut (t))[0],
                     ((gint32 *)slim_tensor_get_data_mut (t))[63]);
        });
      },
      "g_idx[0] = 1, expected 0" },
    { "g_idx dropped", &gptq.out, [&] (const std::string &d) { edit_weights (d, k + "g_idx", {}); },
      "g_idx: missing tensor" },
    { "symmetric zero moved", &gptq.out,
      [&] (const std::string &d) {
        edit_weights (d, k + "qzeros",
                      [] (SlimTensor *t) { ((gint32 *)slim_tensor_get_data_mut (t))[0] ^= 1; });
      },
      "in a symmetric checkpoint" },
    { "negative scale", &awq.out,
      [&] (const std::string &d) {
        edit_weights (d, k + "scales", [] (SlimTensor *t) {
          ((guint16 *)slim_tensor_get_data_mut (t))[3] = slim_f32_to_f16 (-1.0f);
        });
      },
      "scales: -1 is not a finite positive scale" },
    { "awq version", &awq.out,
      [] (const std::string &d) {
        edit_text (d + "/config.json", "\"version\": \"gemm\"", "\"version\": \"gemv\"");
      },
      "version \"gemv\" is not \"gemm\"" },
    { "awq float MLP no longer skipped", &awq.out,
      [] (const std::string &d) {
        edit_text (d + "/config.json", "\"model.layers.0.mlp.gate_proj\",", "");
      },
      "model.layers.0.mlp.gate_proj: a float Linear of a decoder layer" },
  };
  for (const Mutation &m : mutations)
    {
      std::string d = copy_folder (*m.src);
      m.apply (d);
      SlimTestHfReport r = slim_test_hf_check (d);
      EXPECT_FALSE (r.ok ()) << m.what;
      EXPECT_TRUE (r.mentions (m.fragment)) << m.what << ":\n" << r.summary ();
    }
}

// transformers keeps lm_head float under AWQ: a quantized one is refused
// (linear_quant leaves lm_head alone; the record is hand-made).
TEST (HfWriter, AwqQuantizedLmHeadRefused)
{
  std::string out = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimHfWriter *w = slim_hf_writer_new (out.c_str (), SLIM_HF_FORMAT_AWQ, 0, FALSE, TRUE, &error);
  ASSERT_NE (w, nullptr);
  GObjectPtr<SlimLayer> layer (layer_with_record (-3.0f, false, SLIM_LAYER_INDEX_HEAD, "lm_head"));
  EXPECT_FALSE (slim_hf_writer_write_layer (w, layer.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message)
                 .find ("lm_head (W4A16): hf_awq_saver cannot save this linear: AWQ loaders "
                        "quantize the linears of the decoder layers only"),
             std::string::npos)
      << error->message;
  g_clear_error (&error);
  slim_hf_writer_free (w);
}
