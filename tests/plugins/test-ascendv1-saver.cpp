// SPDX-License-Identifier: Apache-2.0
//
// test-ascendv1-saver.cpp: ascendv1_saver and mindie_format_saver
// (modelslim-v1-spec.md 3.1, 3.2) on stories260K quantized by linear_quant
// through the harness driver:
// - every supported label gives a folder the checker accepts, with the
//   right model_quant_type and group_size;
// - the description JSON's exact layout (4-space indent, key order with the
//   embeddings after the decoder layers, global keys last);
// - deq_scale as the sign-extended float32 bit pattern of input_scale x
//   weight_scale, recomputed from the float model; float32 for bf16 models;
// - FLOAT tensors in their source dtype, tied lm_head / embed_tokens both
//   written, auxiliary files copied with mode 0600, quantization_config
//   stripped (Python json.dump text), sharding through the writer API;
// - mindie names, contents and the "use ascendv1_saver" error;
// - the checker rejects hand-broken copies of a saver-made folder.
#include "../ascendv1-checker.hpp"
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-pack.h"
#include "slim-safetensors.h"
}

#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>
#include <glib/gstdio.h>
#include <sys/stat.h>

namespace
{

const char *const kStatic = "{dtype: int8, scope: per_tensor, symmetric: false, method: minmax}";
const char *const kToken8 = "{dtype: int8, scope: per_token, symmetric: true, method: minmax}";
const char *const kToken4 = "{dtype: int4, scope: per_token, symmetric: true, method: minmax}";
const char *const kMix = "{dtype: int8, scope: pd_mix, symmetric: false, method: minmax}";
const char *const kChan8 = "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}";
const char *const kChan4 = "{dtype: int4, scope: per_channel, symmetric: true, method: minmax}";
const char *const kNoDown = "exclude: [\"*down_proj*\"]\n";
const char *const kMx8 = "{dtype: mxfp8, scope: per_block, symmetric: true, method: minmax}";
const char *const kMx4 = "{dtype: mxfp4, scope: per_block, symmetric: true, method: minmax}";

std::string
group (const char *dtype, bool sym)
{
  return std::string ("{dtype: ") + dtype + ", scope: per_group, symmetric: "
         + (sym ? "true" : "false") + ", method: minmax, ext: {group_size: 32}}";
}

std::string
model_dir (bool bf16 = false)
{
  return slim_test_shared_path (bf16 ? "models/stories260K-bf16" : "models/stories260K");
}

// Quantizes stories260K with one linear_quant config and saves it.
std::string
quantize (const std::string &lq_yaml,
          const std::string &saver_yaml,
          bool bf16 = false,
          GError **error = nullptr)
{
  GError *local = nullptr;
  GObjectPtr<SlimProcessor> p (harness_processor (lq_yaml, &local));
  EXPECT_TRUE (p) << (local ? local->message : "");
  g_clear_error (&local);
  GObjectPtr<SlimSaver> s (harness_saver (saver_yaml, &local));
  EXPECT_TRUE (s) << (local ? local->message : "");
  g_clear_error (&local);
  if (!p || !s)
    return "";
  std::string out = slim_test_make_tmpdir ();
  bool ok = harness_run_model (model_dir (bf16), { p.get () }, { s.get () }, out, 3, 12,
                               error != nullptr ? error : &local);
  if (error == nullptr)
    {
      EXPECT_TRUE (ok) << (local ? local->message : "");
      g_clear_error (&local);
    }
  return ok ? out : "";
}

const char *const kSaver = "type: ascendv1_saver\npart_file_size: 0\n";

TensorPtr
read_tensor (const std::string &file, const std::string &name)
{
  GError *error = nullptr;
  GObjectPtr<SlimSafetensors> st (slim_safetensors_open (file.c_str (), &error));
  EXPECT_TRUE (st) << (error ? error->message : "");
  g_clear_error (&error);
  if (!st)
    return TensorPtr ();
  SlimTensor *t = slim_safetensors_get_tensor (st.get (), name.c_str (), &error);
  EXPECT_NE (t, nullptr) << name << ": " << (error ? error->message : "");
  g_clear_error (&error);
  // a private copy: the view keeps the mapped file alive only while referenced
  TensorPtr view (t);
  return TensorPtr (t != nullptr ? slim_tensor_copy (t, nullptr) : nullptr);
}

} // namespace

struct SaveCase
{
  const char *name;
  std::string act;
  std::string weight;
  std::string extra;
  const char *label;
  const char *model_quant_type;
  int64_t group_size;
};

class Ascendv1SaverLabels : public ::testing::TestWithParam<SaveCase>
{
};

TEST_P (Ascendv1SaverLabels, CheckerAcceptsTheFolder)
{
  const SaveCase &c = GetParam ();
  std::string out = quantize (harness_linear_quant_yaml (c.act, c.weight, c.extra), kSaver);
  ASSERT_FALSE (out.empty ());
  SlimTestAscendv1Report report = slim_test_ascendv1_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_EQ (report.model_quant_type, c.model_quant_type);
  EXPECT_EQ (report.group_size, c.group_size);
  EXPECT_EQ (report.labels["model.layers.2.self_attn.k_proj.weight"], c.label);
  EXPECT_EQ (report.labels["model.layers.0.input_layernorm.weight"], "FLOAT");
  EXPECT_EQ (report.labels["lm_head.weight"], "FLOAT");
  std::vector<std::string> errors;
  EXPECT_TRUE (CheckAscendV1Folder (out, &errors));
  EXPECT_TRUE (errors.empty ());
}

INSTANTIATE_TEST_SUITE_P (
    StoriesLabels,
    Ascendv1SaverLabels,
    ::testing::Values (
        SaveCase{ "W8A8", kStatic, kChan8, kNoDown, "W8A8", "W8A8", 0 },
        SaveCase{ "W8A8_all", kStatic, kChan8, "", "W8A8", "W8A8", 0 },
        SaveCase{ "W8A8_DYNAMIC", kToken8, kChan8, kNoDown, "W8A8_DYNAMIC", "W8A8_DYNAMIC", 0 },
        SaveCase{ "W8A8_DYNAMIC_group", kToken8, group ("int8", false), kNoDown, "W8A8_DYNAMIC",
                  "W8A8_DYNAMIC", 32 },
        SaveCase{ "W8A16", "", kChan8, "", "W8A16", "W8A16", 0 },
        SaveCase{ "W8A16_group", "", group ("int8", false), kNoDown, "W8A16", "W8A16", 32 },
        SaveCase{ "W4A16_group", "", group ("int4", false), kNoDown, "W4A16", "W4A16", 32 },
        // W4A8_DYNAMIC is outside the priority list: float linears decide
        SaveCase{ "W4A8_DYNAMIC", kToken8, kChan4, kNoDown, "W4A8_DYNAMIC", "FLOAT", 0 },
        SaveCase{ "W4A4_DYNAMIC", kToken4, kChan4, "", "W4A4_DYNAMIC", "W4A4_DYNAMIC", 0 },
        SaveCase{ "W8A8_MIX", kMix, kChan8, kNoDown, "W8A8_MIX", "W8A8_MIX", 0 },
        // MX per_block: group_size 32; down_proj's 172 inputs pad to 6 blocks
        SaveCase{ "W8A8_MXFP8", kMx8, kMx8, "", "W8A8_MXFP8", "W8A8_MXFP8", 32 },
        SaveCase{ "W4A8_MXFP", kMx8, kMx4, "", "W4A8_MXFP", "W4A8_MXFP", 32 },
        SaveCase{ "W4A4_MXFP4", kMx4, kMx4, "", "W4A4_MXFP4", "W4A4_MXFP4", 32 },
        SaveCase{ "WFP8AFP8_DYNAMIC",
                  "{dtype: fp8_e4m3, scope: per_token, symmetric: true, method: minmax}",
                  "{dtype: fp8_e4m3, scope: per_channel, symmetric: true, method: minmax}", "",
                  "WFP8AFP8_DYNAMIC", "WFP8AFP8_DYNAMIC", 0 }),
    [] (const ::testing::TestParamInfo<SaveCase> &info) { return std::string (info.param.name); });

// The description JSON, byte for byte where the format is fixed: 4-space
// indentation, keys in write order (decoder layers, then embed_tokens, norm
// and lm_head as msModelSlim's post_run writes them), the global keys last.
TEST (Ascendv1Saver, DescriptionLayout)
{
  std::string out = quantize (harness_linear_quant_yaml (kStatic, kChan8, kNoDown), kSaver);
  ASSERT_FALSE (out.empty ());
  std::string desc = harness_read_file (out + "/quant_model_description.json");
  ASSERT_EQ (desc.rfind ("{\n    \"model.layers.0.", 0), 0u) << desc.substr (0, 80);
  const std::string tail = "    \"model.embed_tokens.weight\": \"FLOAT\",\n"
                           "    \"model.norm.weight\": \"FLOAT\",\n"
                           "    \"lm_head.weight\": \"FLOAT\",\n"
                           "    \"version\": \"1.0.0\",\n"
                           "    \"model_quant_type\": \"W8A8\",\n"
                           "    \"metadata\": {},\n"
                           "    \"group_size\": 0,\n"
                           "    \"optional\": {}\n"
                           "}";
  ASSERT_GE (desc.size (), tail.size ());
  EXPECT_EQ (desc.substr (desc.size () - tail.size ()), tail);
  // one W8A8 linear: its tensors in the spec order, bias-less
  const std::string q = "model.layers.1.self_attn.q_proj";
  size_t at = desc.find ("\"" + q + ".weight\": \"W8A8\",\n");
  ASSERT_NE (at, std::string::npos);
  const std::string block
      = "    \"" + q + ".weight\": \"W8A8\",\n" + "    \"" + q + ".quant_bias\": \"W8A8\",\n"
        + "    \"" + q + ".input_scale\": \"W8A8\",\n" + "    \"" + q
        + ".input_offset\": \"W8A8\",\n" + "    \"" + q + ".deq_scale\": \"W8A8\",\n";
  EXPECT_EQ (desc.substr (at - 4, block.size ()), block);
  // down_proj excluded: FLOAT
  EXPECT_NE (desc.find ("\"model.layers.1.mlp.down_proj.weight\": \"FLOAT\""), std::string::npos);
}

// deq_scale[n] = input_scale * weight_scale[n] as float32, stored as the
// bit pattern read as int32 and sign-extended to int64.  weight_scale is
// recomputed here from the float model with the spec formula
// max(|min|, max) / 127 per output row, so the check is independent of the
// processor's bookkeeping.
TEST (Ascendv1Saver, DeqScaleInt64BitPattern)
{
  std::string out = quantize (harness_linear_quant_yaml (kStatic, kChan8, kNoDown), kSaver);
  ASSERT_FALSE (out.empty ());
  const std::string file = out + "/quant_model_weights.safetensors";
  const std::string m = "model.layers.3.mlp.up_proj";
  TensorPtr deq = read_tensor (file, m + ".deq_scale");
  TensorPtr in_scale = read_tensor (file, m + ".input_scale");
  ASSERT_TRUE (deq && in_scale);
  ASSERT_EQ (slim_tensor_get_dtype (deq.get ()), SLIM_DTYPE_I64);
  GError *error = nullptr;
  GObjectPtr<SlimModel> model (slim_model_open (model_dir ().c_str (), &error));
  GObjectPtr<SlimLayer> layer (slim_model_load_layer (model.get (), 3, &error));
  SlimTensor *w = slim_layer_get_tensor (layer.get (), (m + ".weight").c_str ());
  int64_t n_out = slim_tensor_get_dim (w, 0), n_in = slim_tensor_get_dim (w, 1);
  ASSERT_EQ (slim_tensor_get_dim (deq.get (), 0), n_out);
  const float *wd = (const float *)slim_tensor_get_data (w);
  const gint64 *got = (const gint64 *)slim_tensor_get_data (deq.get ());
  const float s_in = ((const float *)slim_tensor_get_data (in_scale.get ()))[0];
  for (int64_t n = 0; n < n_out; n++)
    {
      float lo = 0.0f, hi = 0.0f;
      for (int64_t k = 0; k < n_in; k++)
        {
          lo = std::min (lo, wd[n * n_in + k]);
          hi = std::max (hi, wd[n * n_in + k]);
        }
      float w_scale = std::max (std::max (-lo, hi) / 127.0f, FLT_EPSILON);
      float d = s_in * w_scale;
      gint32 bits;
      memcpy (&bits, &d, sizeof bits);
      ASSERT_EQ (got[n], (gint64)bits) << "row " << n;
    }
}

// A bfloat16 model: deq_scale float32, FLOAT tensors stay bfloat16, the
// quantized tensors keep their fixed dtypes.
TEST (Ascendv1Saver, Bf16ModelKeepsSourceDtypes)
{
  std::string out = quantize (harness_linear_quant_yaml (kStatic, kChan8, kNoDown), kSaver, true);
  ASSERT_FALSE (out.empty ());
  SlimTestAscendv1Options opt;
  opt.bf16_model = true;
  SlimTestAscendv1Report report = slim_test_ascendv1_check (out, opt);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  const std::string file = out + "/quant_model_weights.safetensors";
  EXPECT_EQ (slim_tensor_get_dtype (
                 read_tensor (file, "model.layers.0.self_attn.q_proj.deq_scale").get ()),
             SLIM_DTYPE_F32);
  for (const char *name : { "model.layers.0.mlp.down_proj.weight", "model.norm.weight",
                            "model.embed_tokens.weight", "lm_head.weight" })
    EXPECT_EQ (slim_tensor_get_dtype (read_tensor (file, name).get ()), SLIM_DTYPE_BF16) << name;
}

// Tied embeddings: both names are written, with the same bytes; auxiliary
// files are copied (mode 0600), the rest of the model folder is not.
TEST (Ascendv1Saver, TiedWeightsAndAuxiliaryFiles)
{
  std::string out = quantize (harness_linear_quant_yaml ("", kChan8), kSaver);
  ASSERT_FALSE (out.empty ());
  const std::string file = out + "/quant_model_weights.safetensors";
  TensorPtr lm = read_tensor (file, "lm_head.weight");
  TensorPtr emb = read_tensor (file, "model.embed_tokens.weight");
  ASSERT_TRUE (lm && emb);
  ASSERT_EQ (slim_tensor_get_n_bytes (lm.get ()), slim_tensor_get_n_bytes (emb.get ()));
  EXPECT_EQ (memcmp (slim_tensor_get_data (lm.get ()), slim_tensor_get_data (emb.get ()),
                     slim_tensor_get_n_bytes (lm.get ())),
             0);
  for (const char *name : { "config.json", "generation_config.json", "special_tokens_map.json",
                            "tokenizer.json", "tokenizer_config.json" })
    {
      struct stat st;
      ASSERT_EQ (stat ((out + "/" + name).c_str (), &st), 0) << name;
      EXPECT_EQ (st.st_mode & 0777, 0600u) << name;
      EXPECT_EQ (harness_read_file (out + "/" + name),
                 harness_read_file (model_dir () + "/" + name))
          << name;
    }
  for (const char *name : { "tokenizer.model", "model.safetensors" })
    EXPECT_FALSE (g_file_test ((out + "/" + name).c_str (), G_FILE_TEST_EXISTS)) << name;
}

// The writer on its own: a fake model folder with every kind of auxiliary
// file and a config.json carrying quantization_config (top level and
// text_config), which is removed and rewritten as Python's json.dump
// (indent=2) writes it; *index.json and other suffixes are not copied.
TEST (Ascendv1Saver, AuxFilesAndQuantizationConfigStripped)
{
  std::string src = slim_test_make_tmpdir ();
  std::string out = slim_test_make_tmpdir ();
  ASSERT_TRUE (g_file_set_contents (
      (src + "/config.json").c_str (),
      "{\"model_type\": \"llama\", \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
      "\"quantization_config\": {\"bits\": 4}, \"text_config\": {\"a\": [1, 2.5, true, null], "
      "\"quantization_config\": {}, \"name\": \"caf\\u00e9\"}, \"empty\": []}",
      -1, nullptr));
  for (const char *name : { "a.py", "b.txt", "chat.jinja", "x.safetensors.index.json", "notes.md" })
    ASSERT_TRUE (g_file_set_contents ((src + "/" + name).c_str (), name, -1, nullptr));
  GError *error = nullptr;
  SlimAscendWriter *writer
      = slim_ascend_writer_new (SLIM_ASCEND_FORMAT_ASCENDV1, out.c_str (), 0, FALSE, &error);
  ASSERT_NE (writer, nullptr);
  ASSERT_TRUE (slim_ascend_writer_finish (writer, src.c_str (), &error)) << error->message;
  slim_ascend_writer_free (writer);
  const std::string want = "{\n"
                           "  \"model_type\": \"llama\",\n"
                           "  \"rms_norm_eps\": 1e-05,\n"
                           "  \"rope_theta\": 10000.0,\n"
                           "  \"text_config\": {\n"
                           "    \"a\": [\n"
                           "      1,\n"
                           "      2.5,\n"
                           "      true,\n"
                           "      null\n"
                           "    ],\n"
                           "    \"name\": \"caf\\u00e9\"\n"
                           "  },\n"
                           "  \"empty\": []\n"
                           "}";
  EXPECT_EQ (harness_read_file (out + "/config.json"), want);
  for (const char *name : { "a.py", "b.txt", "chat.jinja" })
    EXPECT_EQ (harness_read_file (out + "/" + name), name);
  for (const char *name : { "x.safetensors.index.json", "notes.md" })
    EXPECT_FALSE (g_file_test ((out + "/" + name).c_str (), G_FILE_TEST_EXISTS)) << name;
  // an empty model: "Unknown", no tensors
  std::string desc = harness_read_file (out + "/quant_model_description.json");
  EXPECT_EQ (desc, "{\n    \"version\": \"1.0.0\",\n    \"model_quant_type\": \"Unknown\",\n"
                   "    \"metadata\": {},\n    \"group_size\": 0,\n    \"optional\": {}\n}");
}

// part_file_size is an integer number of GB, as msModelSlim's pydantic int;
// negative sizes are rejected.  Sharding itself is tested through the
// writer with a byte limit: several shards, the N-of-M names and an index
// the checker accepts, each shard under the limit unless a single tensor
// is larger (the rollover rule).
TEST (Ascendv1Saver, ShardingThroughTheWriter)
{
  for (const char *yaml : { "type: ascendv1_saver\npart_file_size: 0.0001\n",
                            "type: ascendv1_saver\npart_file_size: -1\n" })
    {
      GError *error = nullptr;
      EXPECT_EQ (harness_saver (yaml, &error), nullptr) << yaml;
      ASSERT_NE (error, nullptr);
      EXPECT_NE (std::string (error->message).find ("part-file-size"), std::string::npos)
          << error->message;
      g_clear_error (&error);
    }

  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p (
      harness_processor (harness_linear_quant_yaml (kStatic, kChan8, kNoDown), &error));
  ASSERT_TRUE (p);
  std::string out = slim_test_make_tmpdir ();
  const guint64 shard_bytes = 24 * 1024;
  SlimAscendWriter *writer = slim_ascend_writer_new (SLIM_ASCEND_FORMAT_ASCENDV1, out.c_str (),
                                                     shard_bytes, FALSE, &error);
  ASSERT_NE (writer, nullptr);
  ASSERT_TRUE (harness_run_model_with (
      model_dir (), { p.get () },
      [&] (SlimModel *, SlimLayer *layer, GError **err) -> bool {
        return slim_ascend_writer_write_layer (writer, layer, err);
      },
      2, 8, &error))
      << error->message;
  ASSERT_TRUE (slim_ascend_writer_finish (writer, model_dir ().c_str (), &error));
  slim_ascend_writer_free (writer);
  SlimTestAscendv1Report report = slim_test_ascendv1_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_GT (report.n_shards, 5u);
  EXPECT_FALSE (
      g_file_test ((out + "/quant_model_weights.safetensors").c_str (), G_FILE_TEST_EXISTS));
  for (size_t i = 1; i <= report.n_shards; i++)
    {
      char name[64];
      g_snprintf (name, sizeof name, "/quant_model_weights-%05zu-of-%05zu.safetensors", i,
                  report.n_shards);
      GObjectPtr<SlimSafetensors> st (slim_safetensors_open ((out + name).c_str (), &error));
      ASSERT_TRUE (st) << name;
      guint64 bytes = slim_safetensors_get_total_bytes (st.get ());
      EXPECT_TRUE (bytes < shard_bytes || slim_safetensors_get_n_tensors (st.get ()) == 1)
          << name << " holds " << bytes << " bytes";
    }
}

// mindie_format_saver: files named by the (last) label, deq_scale float32,
// only model_quant_type beside the tensor keys, *.json and *.py copied.
TEST (MindieFormatSaver, W8A8FilesAndContents)
{
  std::string out = quantize (harness_linear_quant_yaml (kStatic, kChan8, kNoDown),
                              "type: mindie_format_saver\npart_file_size: 0\n");
  ASSERT_FALSE (out.empty ());
  EXPECT_FALSE (g_file_test ((out + "/quant_model_description.json").c_str (), G_FILE_TEST_EXISTS));
  std::string desc = harness_read_file (out + "/quant_model_description_w8a8.json");
  ASSERT_FALSE (desc.empty ());
  EXPECT_EQ (desc.find ("\"version\""), std::string::npos);
  EXPECT_NE (
      desc.find ("    \"lm_head.weight\": \"FLOAT\",\n    \"model_quant_type\": \"W8A8\"\n}"),
      std::string::npos);
  const std::string file = out + "/quant_model_weight_w8a8.safetensors";
  TensorPtr deq = read_tensor (file, "model.layers.0.self_attn.v_proj.deq_scale");
  ASSERT_TRUE (deq);
  EXPECT_EQ (slim_tensor_get_dtype (deq.get ()), SLIM_DTYPE_F32);
  EXPECT_TRUE (g_file_test ((out + "/config.json").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (
      g_file_test ((out + "/quant_model_weights.safetensors").c_str (), G_FILE_TEST_EXISTS));
}

// Labels mindie cannot hold fail with msModelSlim's advice.
TEST (MindieFormatSaver, UnsupportedLabelsSayUseAscendv1)
{
  for (const std::string &lq : { harness_linear_quant_yaml ("", kChan8),
                                 harness_linear_quant_yaml (kToken8, group ("int8", true), kNoDown),
                                 harness_linear_quant_yaml (kMix, kChan8, kNoDown) })
    {
      GError *error = nullptr;
      std::string out = quantize (lq, "type: mindie_format_saver\n", false, &error);
      EXPECT_TRUE (out.empty ());
      ASSERT_NE (error, nullptr) << lq;
      EXPECT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE));
      EXPECT_NE (std::string (error->message).find ("use ascendv1_saver"), std::string::npos)
          << error->message;
      g_clear_error (&error);
    }
}

// ---- the checker against broken copies of a saver-made folder ------------

namespace
{

std::string
copy_folder (const std::string &src)
{
  std::string dst = slim_test_make_tmpdir ();
  GDir *d = g_dir_open (src.c_str (), 0, nullptr);
  for (const char *n = g_dir_read_name (d); n != nullptr; n = g_dir_read_name (d))
    {
      std::string data = harness_read_file (src + "/" + n);
      g_file_set_contents ((dst + "/" + n).c_str (), data.data (), (gssize)data.size (), nullptr);
    }
  g_dir_close (d);
  return dst;
}

// Rewrites one weight file, letting edit change (or drop, by returning
// nullptr) each tensor.
void
rewrite (const std::string &file, const std::function<SlimTensor *(SlimTensor *)> &edit)
{
  GError *error = nullptr;
  std::vector<SlimTensor *> tensors;
  {
    GObjectPtr<SlimSafetensors> st (slim_safetensors_open (file.c_str (), &error));
    ASSERT_TRUE (st) << error->message;
    for (const char *const *n = slim_safetensors_get_names (st.get ()); *n != nullptr; n++)
      {
        SlimTensor *view = slim_safetensors_get_tensor (st.get (), *n, &error);
        SlimTensor *copy = slim_tensor_copy (view, nullptr);
        slim_tensor_unref (view);
        SlimTensor *out = edit (copy);
        if (out != copy)
          slim_tensor_unref (copy);
        if (out != nullptr)
          tensors.push_back (out);
      }
  }
  ASSERT_TRUE (slim_safetensors_write_file (file.c_str (), tensors.data (), (guint)tensors.size (),
                                            nullptr, &error));
  for (SlimTensor *t : tensors)
    slim_tensor_unref (t);
}

void
replace_in_file (const std::string &file, const std::string &from, const std::string &to)
{
  std::string text = harness_read_file (file);
  size_t at = text.find (from);
  ASSERT_NE (at, std::string::npos) << from;
  text.replace (at, from.size (), to);
  ASSERT_TRUE (g_file_set_contents (file.c_str (), text.data (), (gssize)text.size (), nullptr));
}

class BrokenFolders : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite ()
  {
    good_
        = new std::string (quantize (harness_linear_quant_yaml (kStatic, kChan8, kNoDown), kSaver));
    std::string sharded = slim_test_make_tmpdir ();
    GError *error = nullptr;
    GObjectPtr<SlimProcessor> p (
        harness_processor (harness_linear_quant_yaml (kStatic, kChan8, kNoDown), &error));
    SlimAscendWriter *writer = slim_ascend_writer_new (SLIM_ASCEND_FORMAT_ASCENDV1,
                                                       sharded.c_str (), 64 * 1024, FALSE, &error);
    bool ok = harness_run_model_with (
        model_dir (), { p.get () },
        [&] (SlimModel *, SlimLayer *layer, GError **err) -> bool {
          return slim_ascend_writer_write_layer (writer, layer, err);
        },
        2, 8, &error);
    ok = ok && slim_ascend_writer_finish (writer, model_dir ().c_str (), &error);
    slim_ascend_writer_free (writer);
    EXPECT_TRUE (ok) << (error ? error->message : "");
    g_clear_error (&error);
    sharded_ = new std::string (sharded);
  }
  static void
  TearDownTestSuite ()
  {
    delete good_;
    delete sharded_;
  }
  static std::string *good_;
  static std::string *sharded_;

  std::string
  weights (const std::string &dir)
  {
    return dir + "/quant_model_weights.safetensors";
  }
  void
  expect_rejected (const std::string &dir, const std::string &fragment)
  {
    std::vector<std::string> errors;
    EXPECT_FALSE (CheckAscendV1Folder (dir, &errors));
    bool found = false;
    std::string all;
    for (const std::string &e : errors)
      {
        found = found || e.find (fragment) != std::string::npos;
        all += e + "\n";
      }
    EXPECT_TRUE (found) << "no problem mentions \"" << fragment << "\":\n" << all;
  }
};

std::string *BrokenFolders::good_ = nullptr;
std::string *BrokenFolders::sharded_ = nullptr;

const std::string kM = "model.layers.2.self_attn.o_proj";

} // namespace

TEST_F (BrokenFolders, OriginalsAreAccepted)
{
  std::vector<std::string> errors;
  EXPECT_TRUE (CheckAscendV1Folder (*good_, &errors)) << (errors.empty () ? "" : errors[0]);
  EXPECT_TRUE (CheckAscendV1Folder (*sharded_, &errors)) << (errors.empty () ? "" : errors[0]);
}

TEST_F (BrokenFolders, WrongDtype)
{
  std::string dir = copy_folder (*good_);
  rewrite (weights (dir), [] (SlimTensor *t) -> SlimTensor * {
    if (std::string (slim_tensor_get_name (t)) != kM + ".weight")
      return t;
    return slim_tensor_convert (t, SLIM_DTYPE_F32, nullptr);
  });
  expect_rejected (dir, kM + ".weight: dtype f32, expected i8");
}

TEST_F (BrokenFolders, WrongShape)
{
  std::string dir = copy_folder (*good_);
  rewrite (weights (dir), [] (SlimTensor *t) -> SlimTensor * {
    if (std::string (slim_tensor_get_name (t)) != kM + ".quant_bias")
      return t;
    gint64 shape[2] = { slim_tensor_get_dim (t, 0), 1 };
    return slim_tensor_reshape (t, 2, shape, nullptr);
  });
  expect_rejected (dir, kM + ".quant_bias: shape");
}

TEST_F (BrokenFolders, MissingDeqScale)
{
  std::string dir = copy_folder (*good_);
  rewrite (weights (dir), [] (SlimTensor *t) -> SlimTensor * {
    return std::string (slim_tensor_get_name (t)) == kM + ".deq_scale" ? nullptr : t;
  });
  replace_in_file (dir + "/quant_model_description.json",
                   "    \"" + kM + ".deq_scale\": \"W8A8\",\n", "");
  expect_rejected (dir, "module " + kM + " (W8A8) has tensors");
}

TEST_F (BrokenFolders, LabelTensorMismatch)
{
  std::string dir = copy_folder (*good_);
  replace_in_file (dir + "/quant_model_description.json", "\"" + kM + ".weight\": \"W8A8\"",
                   "\"" + kM + ".weight\": \"W8A16\"");
  expect_rejected (dir, "mixes labels");
}

TEST_F (BrokenFolders, LabelForAMissingTensor)
{
  std::string dir = copy_folder (*good_);
  replace_in_file (dir + "/quant_model_description.json", "    \"version\"",
                   "    \"model.layers.9.ghost.weight\": \"FLOAT\",\n    \"version\"");
  expect_rejected (dir, "no such tensor is stored");
}

TEST_F (BrokenFolders, WrongQuantBiasValue)
{
  std::string dir = copy_folder (*good_);
  rewrite (weights (dir), [] (SlimTensor *t) -> SlimTensor * {
    if (std::string (slim_tensor_get_name (t)) == kM + ".quant_bias")
      ((gint32 *)slim_tensor_get_data_mut (t))[3] += 1;
    return t;
  });
  expect_rejected (dir, kM + ".quant_bias[3]");
}

TEST_F (BrokenFolders, DeqScaleNotSignExtended)
{
  std::string dir = copy_folder (*good_);
  rewrite (weights (dir), [] (SlimTensor *t) -> SlimTensor * {
    if (std::string (slim_tensor_get_name (t)) == kM + ".deq_scale")
      ((gint64 *)slim_tensor_get_data_mut (t))[0] |= G_GINT64_CONSTANT (1) << 40;
    return t;
  });
  expect_rejected (dir, "is not a sign-extended int32 bit pattern");
}

TEST_F (BrokenFolders, WrongModelQuantTypeAndVersion)
{
  std::string dir = copy_folder (*good_);
  replace_in_file (dir + "/quant_model_description.json", "\"model_quant_type\": \"W8A8\"",
                   "\"model_quant_type\": \"W8A16\"");
  replace_in_file (dir + "/quant_model_description.json", "\"1.0.0\"", "\"0.9\"");
  expect_rejected (dir, "model_quant_type is \"W8A16\", expected \"W8A8\"");
  expect_rejected (dir, "version");
}

TEST_F (BrokenFolders, ConfigStillHasQuantizationConfig)
{
  std::string dir = copy_folder (*good_);
  replace_in_file (dir + "/config.json", "{", "{\"quantization_config\": {\"bits\": 8},");
  expect_rejected (dir, "quantization_config");
}

TEST_F (BrokenFolders, IndexPointsToTheWrongShard)
{
  std::string dir = copy_folder (*sharded_);
  std::string index = harness_read_file (dir + "/quant_model_weights.safetensors.index.json");
  const std::string key = "\"model.layers.0.self_attn.q_proj.weight\": \"quant_model_weights-";
  size_t at = index.find (key);
  ASSERT_NE (at, std::string::npos);
  std::string shard = index.substr (at + key.size (), 5);
  std::string other = shard == "00001" ? "00002" : "00001";
  index.replace (at + key.size (), 5, other);
  ASSERT_TRUE (g_file_set_contents ((dir + "/quant_model_weights.safetensors.index.json").c_str (),
                                    index.c_str (), -1, nullptr));
  expect_rejected (dir,
                   "\"model.layers.0.self_attn.q_proj.weight\" is in quant_model_weights-" + shard);
}

TEST_F (BrokenFolders, IndexTotalSizeAndMissingShard)
{
  std::string dir = copy_folder (*sharded_);
  std::string index = harness_read_file (dir + "/quant_model_weights.safetensors.index.json");
  size_t at = index.find ("\"total_size\": ");
  ASSERT_NE (at, std::string::npos);
  index.insert (at + strlen ("\"total_size\": "), "1");
  ASSERT_TRUE (g_file_set_contents ((dir + "/quant_model_weights.safetensors.index.json").c_str (),
                                    index.c_str (), -1, nullptr));
  expect_rejected (dir, "metadata.total_size");
  std::string dir2 = copy_folder (*sharded_);
  std::string idx2 = harness_read_file (dir2 + "/quant_model_weights.safetensors.index.json");
  size_t of = idx2.find ("-of-");
  std::string n = idx2.substr (of + 4, 5);
  ASSERT_EQ (g_remove ((dir2 + "/quant_model_weights-00002-of-" + n + ".safetensors").c_str ()), 0);
  expect_rejected (dir2, "quant_model_weights-00002-of-" + n + ".safetensors");
}

TEST_F (BrokenFolders, StrayWeightFile)
{
  std::string dir = copy_folder (*good_);
  std::string data = harness_read_file (weights (dir));
  ASSERT_TRUE (
      g_file_set_contents ((dir + "/quant_model_weights-00001-of-00001.safetensors").c_str (),
                           data.data (), (gssize)data.size (), nullptr));
  expect_rejected (dir, "stray weight file");
}

// MX folders: an E8M0 NaN scale (255), a weight_scale of the wrong shape
// and a group_size other than 32 are each reported.
TEST_F (BrokenFolders, MxScaleNanShapeAndGroupSize)
{
  std::string mx = quantize (harness_linear_quant_yaml (kMx4, kMx4), kSaver);
  ASSERT_FALSE (mx.empty ());
  std::vector<std::string> errors;
  ASSERT_TRUE (CheckAscendV1Folder (mx, &errors)) << (errors.empty () ? "" : errors[0]);
  {
    std::string dir = copy_folder (mx);
    rewrite (weights (dir), [] (SlimTensor *t) -> SlimTensor * {
      if (std::string (slim_tensor_get_name (t)) == kM + ".weight_scale")
        ((guint8 *)slim_tensor_get_data_mut (t))[3] = 255;
      return t;
    });
    expect_rejected (dir, "E8M0's NaN");
  }
  {
    std::string dir = copy_folder (mx);
    rewrite (weights (dir), [] (SlimTensor *t) -> SlimTensor * {
      if (std::string (slim_tensor_get_name (t)) != kM + ".weight_scale")
        return t;
      // one block column too few
      return slim_tensor_new_2d (slim_tensor_get_name (t), SLIM_DTYPE_U8,
                                 slim_tensor_get_dim (t, 0), slim_tensor_get_dim (t, 1) - 1);
    });
    expect_rejected (dir, kM + ".weight_scale");
  }
  {
    std::string dir = copy_folder (mx);
    replace_in_file (dir + "/quant_model_description.json", "\"group_size\": 32",
                     "\"group_size\": 64");
    expect_rejected (dir, "needs 32");
  }
}
