// SPDX-License-Identifier: Apache-2.0
//
// test-ct-saver.cpp: the compressed_tensors saver (slim-ct-writer.h) on
// stories260K quantized by linear_quant through the harness driver:
// - W8A8 dynamic and static (int-quantized), W8A16 / W4A16 per channel and
//   per group, symmetric and asymmetric (pack-quantized) give folders the
//   checker (tests/ct-checker.hpp) accepts, with the expected
//   quantization_config;
// - dequantized from the folder alone, every quantized weight equals the
//   weight slimflow deployed in the layer bit for bit; static input scales
//   and zero points are the records' values;
// - float tensors are the model's bytes, tied lm_head left out and ignored,
//   tokenizer / config files copied, the config.json text as Python writes it;
// - schemes compressed-tensors cannot express fail naming the linear before
//   the layer is written;
// - the checker rejects hand-broken copies of a saver-made folder.
#include "../ct-checker.hpp"
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-ct-writer.h"
#include "slim-error.h"
#include "slim-fp8.h"
#include "slim-safetensors.h"
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <glib/gstdio.h>
#include <map>
#include <set>
#include <sys/stat.h>

namespace
{

const char *const kStatic = "{dtype: int8, scope: per_tensor, symmetric: false, method: minmax}";
const char *const kStaticSym = "{dtype: int8, scope: per_tensor, symmetric: true, method: minmax}";
const char *const kToken8 = "{dtype: int8, scope: per_token, symmetric: true, method: minmax}";
const char *const kChan8 = "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}";
// asymmetric per-channel weights come from gptq (minmax has no such quantizer)
const char *const kChan8Asym = "{dtype: int8, scope: per_channel, symmetric: false, method: gptq}";
// stories260K's down_proj has 172 inputs, which 32 does not divide
const char *const kNoDown = "exclude: [\"*down_proj*\"]\n";
const char *const kSaver = "type: compressed_tensors\npart_file_size: 0\n";

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
  float input_scale = 0.0f;
  float input_offset = 0.0f;
  std::string label;
};

struct CtRun
{
  std::string out;
  std::map<std::string, Deployed> deployed; // module -> what the layer held
  std::string error;                        // the run's error ("" when it succeeded)
};

// Quantizes stories260K with one linear_quant config and saves it with
// saver_yaml, recording every deployed linear's weight.
CtRun
quantize (const std::string &lq_yaml, const std::string &saver_yaml = kSaver)
{
  CtRun run;
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
            EXPECT_EQ (slim_tensor_get_dtype (w), SLIM_DTYPE_F32) << name;
            const float *v = (const float *)slim_tensor_get_data (w);
            d.weight.assign (v, v + slim_tensor_get_n_elements (w));
          }
        d.input_scale = q->input_scale;
        d.input_offset = q->input_offset;
        d.label = q->label;
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

TensorPtr
read_tensor (const std::string &file, const std::string &name)
{
  GError *error = nullptr;
  GObjectPtr<SlimSafetensors> st (slim_safetensors_open (file.c_str (), &error));
  EXPECT_TRUE (st) << (error ? error->message : "");
  g_clear_error (&error);
  if (!st)
    return TensorPtr ();
  if (!slim_safetensors_contains (st.get (), name.c_str ()))
    return TensorPtr ();
  SlimTensor *t = slim_safetensors_get_tensor (st.get (), name.c_str (), &error);
  EXPECT_NE (t, nullptr) << name << ": " << (error ? error->message : "");
  g_clear_error (&error);
  TensorPtr view (t);
  return TensorPtr (t != nullptr ? slim_tensor_copy (t, nullptr) : nullptr);
}

// Names of the tensors of a single safetensors file.
std::set<std::string>
tensor_names (const std::string &file)
{
  std::set<std::string> names;
  GError *error = nullptr;
  GObjectPtr<SlimSafetensors> st (slim_safetensors_open (file.c_str (), &error));
  EXPECT_TRUE (st) << (error ? error->message : "");
  g_clear_error (&error);
  for (guint i = 0; st && i < slim_safetensors_get_n_tensors (st.get ()); i++)
    names.insert (slim_safetensors_get_names (st.get ())[i]);
  return names;
}

// Every deployed weight equals the folder's dequantized weight, bit for bit.
void
expect_dequantized_equal (const CtRun &run)
{
  ASSERT_FALSE (run.deployed.empty ());
  for (const auto &kv : run.deployed)
    {
      std::vector<float> w;
      int64_t n_out = 0, n_in = 0;
      std::string why;
      ASSERT_TRUE (slim_test_ct_dequantize (run.out, kv.first, &w, &n_out, &n_in, &why)) << why;
      ASSERT_EQ (w.size (), kv.second.weight.size ()) << kv.first;
      // bit for bit: memcmp, not a tolerance (same float32 (q - zp) * scale)
      EXPECT_EQ (std::memcmp (w.data (), kv.second.weight.data (), w.size () * sizeof (float)), 0)
          << kv.first;
    }
}

std::string
config_text (const std::string &out)
{
  return harness_read_file (out + "/config.json");
}

// A minimal config.json in dir (for writers finished without a model folder).
void
quant_write_config (const std::string &dir)
{
  const char *text = "{\"model_type\": \"llama\", \"tie_word_embeddings\": true}";
  ASSERT_TRUE (g_file_set_contents ((dir + "/config.json").c_str (), text, -1, nullptr));
}

// Names of the entries of dir, sorted ("" dir or missing: none).
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

} // namespace

// ---- item 1: W8A8 dynamic / static ----------------------------------------

TEST (CtSaver, W8A8DynamicFolder)
{
  CtRun run = quantize (harness_linear_quant_yaml (kToken8, kChan8));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  SlimTestCtReport report = slim_test_ct_check (run.out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_EQ (report.format, "int-quantized");
  EXPECT_EQ (report.formats.size (), 5u * 7u); // 7 linears in each of 5 layers
  EXPECT_EQ (report.ignore, std::vector<std::string> ({ "lm_head" }));
  EXPECT_EQ (report.n_shards, 0u);

  std::string file = run.out + "/model.safetensors";
  std::set<std::string> names = tensor_names (file);
  const std::string q = "model.layers.1.self_attn.q_proj.";
  EXPECT_TRUE (names.count (q + "weight") && names.count (q + "weight_scale"));
  EXPECT_FALSE (names.count (q + "weight_zero_point") || names.count (q + "input_scale")
                || names.count (q + "weight_offset"));
  EXPECT_FALSE (names.count ("lm_head.weight")) << "tied lm_head is left out";
  TensorPtr scale = read_tensor (file, q + "weight_scale");
  ASSERT_TRUE (scale);
  EXPECT_EQ (slim_tensor_get_dtype (scale.get ()), SLIM_DTYPE_F32);
  EXPECT_EQ (slim_tensor_get_n_dims (scale.get ()), 2u);
  EXPECT_EQ (slim_tensor_get_dim (scale.get (), 1), 1);
  expect_dequantized_equal (run);

  // the config as msModelSlim's saver writes it (Python json.dump indent 2)
  std::string text = config_text (run.out);
  EXPECT_NE (text.find ("  \"quantization_config\": {\n    \"version\": \"0.13.0\",\n"
                        "    \"quant_method\": \"compressed-tensors\",\n"),
             std::string::npos)
      << text;
  EXPECT_NE (text.find ("\"targets\": [\n          \"Linear\"\n        ]"), std::string::npos);
  EXPECT_NE (text.find ("\"strategy\": \"token\",\n          \"block_structure\": null,\n"
                        "          \"dynamic\": true,"),
             std::string::npos)
      << text;
  EXPECT_NE (text.find ("\"rms_norm_eps\": 9.999999747378752e-06"), std::string::npos);
}

TEST (CtSaver, W8A8StaticFolder)
{
  CtRun run = quantize (harness_linear_quant_yaml (kStatic, kChan8));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  SlimTestCtReport report = slim_test_ct_check (run.out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_EQ (report.format, "int-quantized");
  std::string file = run.out + "/model.safetensors";
  ASSERT_FALSE (run.deployed.empty ());
  for (const auto &kv : run.deployed)
    {
      TensorPtr s = read_tensor (file, kv.first + ".input_scale");
      TensorPtr z = read_tensor (file, kv.first + ".input_zero_point");
      ASSERT_TRUE (s && z) << kv.first;
      EXPECT_EQ (slim_tensor_get_dtype (z.get ()), SLIM_DTYPE_I8);
      EXPECT_EQ (((const float *)slim_tensor_get_data (s.get ()))[0], kv.second.input_scale);
      EXPECT_EQ ((float)((const gint8 *)slim_tensor_get_data (z.get ()))[0],
                 kv.second.input_offset);
    }
  expect_dequantized_equal (run);
  std::string text = config_text (run.out);
  EXPECT_NE (text.find ("\"zp_dtype\": \"torch.int8\""), std::string::npos) << text;
}

TEST (CtSaver, W8A8StaticSymmetricHasNoZeroPoint)
{
  CtRun run = quantize (harness_linear_quant_yaml (kStaticSym, kChan8));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  SlimTestCtReport report = slim_test_ct_check (run.out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  std::set<std::string> names = tensor_names (run.out + "/model.safetensors");
  EXPECT_TRUE (names.count ("model.layers.0.mlp.up_proj.input_scale"));
  EXPECT_FALSE (names.count ("model.layers.0.mlp.up_proj.input_zero_point"));
}

// W8A8_DYNAMIC with asymmetric per-group weights: int8 zero points in the
// scale's shape (int-quantized does not pack them).
TEST (CtSaver, W8A8DynamicPerGroupAsym)
{
  CtRun run = quantize (harness_linear_quant_yaml (kToken8, group ("int8", false), kNoDown));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  SlimTestCtReport report = slim_test_ct_check (run.out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_EQ (report.format, "int-quantized");
  TensorPtr zp = read_tensor (run.out + "/model.safetensors",
                              "model.layers.0.mlp.up_proj.weight_zero_point");
  ASSERT_TRUE (zp);
  EXPECT_EQ (slim_tensor_get_dtype (zp.get ()), SLIM_DTYPE_I8);
  EXPECT_EQ (slim_tensor_get_dim (zp.get (), 0), 172);
  EXPECT_EQ (slim_tensor_get_dim (zp.get (), 1), 2); // 64 inputs / 32
  expect_dequantized_equal (run);
}

// Float tensors are the model's own bytes; the model's files are copied.
TEST (CtSaver, FloatTensorsAndFiles)
{
  CtRun run
      = quantize (harness_linear_quant_yaml (kToken8, kChan8, "exclude: [\"*layers.3.*\"]\n"));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  SlimTestCtReport report = slim_test_ct_check (run.out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  // layer 3's seven linears are float and ignored, in write order, then lm_head
  ASSERT_EQ (report.ignore.size (), 8u);
  EXPECT_EQ (report.ignore.back (), "lm_head");
  for (size_t i = 0; i + 1 < report.ignore.size (); i++)
    EXPECT_EQ (report.ignore[i].rfind ("model.layers.3.", 0), 0u) << report.ignore[i];
  std::string src = stories () + "/model.safetensors";
  std::string dst = run.out + "/model.safetensors";
  for (const char *name :
       { "model.embed_tokens.weight", "model.norm.weight", "model.layers.3.mlp.down_proj.weight",
         "model.layers.0.input_layernorm.weight" })
    {
      TensorPtr a = read_tensor (src, name), b = read_tensor (dst, name);
      ASSERT_TRUE (a && b) << name;
      EXPECT_EQ (slim_tensor_get_dtype (a.get ()), slim_tensor_get_dtype (b.get ()));
      ASSERT_EQ (slim_tensor_get_n_bytes (a.get ()), slim_tensor_get_n_bytes (b.get ()));
      EXPECT_EQ (std::memcmp (slim_tensor_get_data (a.get ()), slim_tensor_get_data (b.get ()),
                              slim_tensor_get_n_bytes (a.get ())),
                 0)
          << name;
    }
  for (const char *f : { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                         "generation_config.json" })
    {
      std::string path = run.out + "/" + f;
      EXPECT_EQ (harness_read_file (path), harness_read_file (stories () + "/" + f)) << f;
      struct stat st;
      ASSERT_EQ (stat (path.c_str (), &st), 0);
      EXPECT_EQ (st.st_mode & 0777, 0600u) << f;
    }
  EXPECT_FALSE (g_file_test ((run.out + "/tokenizer.model").c_str (), G_FILE_TEST_EXISTS))
      << "only *.json, *.py, *.txt, *.jinja are copied, as msModelSlim's saver does";
}

TEST (CtSaver, ShardedOutput)
{
  // part_file_size is in GB: the model fits one shard, which is then named
  // model-00001-of-00001 with an index
  CtRun run = quantize (harness_linear_quant_yaml (kToken8, kChan8),
                        "type: compressed_tensors\npart_file_size: 1\n");
  ASSERT_TRUE (run.error.empty ()) << run.error;
  SlimTestCtReport report = slim_test_ct_check (run.out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_EQ (report.n_shards, 1u);
  EXPECT_TRUE (
      g_file_test ((run.out + "/model-00001-of-00001.safetensors").c_str (), G_FILE_TEST_EXISTS));
}

// ---- item 2: pack-quantized W8A16 / W4A16 ------------------------------------

struct PackCase
{
  const char *name;
  std::string weight;
  std::string extra;
  bool symmetric;
};

class CtSaverPacked : public ::testing::TestWithParam<PackCase>
{
};

TEST_P (CtSaverPacked, CheckerAcceptsAndDequantizesBitExact)
{
  const PackCase &c = GetParam ();
  CtRun run = quantize (harness_linear_quant_yaml ("", c.weight, c.extra));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  SlimTestCtReport report = slim_test_ct_check (run.out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_EQ (report.format, "pack-quantized");
  for (const auto &kv : report.formats)
    EXPECT_EQ (kv.second, "pack-quantized") << kv.first;
  std::set<std::string> names = tensor_names (run.out + "/model.safetensors");
  const std::string v = "model.layers.4.self_attn.v_proj.";
  EXPECT_TRUE (names.count (v + "weight_packed") && names.count (v + "weight_shape"));
  EXPECT_FALSE (names.count (v + "weight"));
  EXPECT_EQ (names.count (v + "weight_zero_point"), c.symmetric ? 0u : 1u);
  TensorPtr shape = read_tensor (run.out + "/model.safetensors", v + "weight_shape");
  ASSERT_TRUE (shape);
  EXPECT_EQ (slim_tensor_get_dtype (shape.get ()), SLIM_DTYPE_I64);
  EXPECT_EQ (((const gint64 *)slim_tensor_get_data (shape.get ()))[0], 32);
  EXPECT_EQ (((const gint64 *)slim_tensor_get_data (shape.get ()))[1], 64);
  expect_dequantized_equal (run);
}

INSTANTIATE_TEST_SUITE_P (
    Schemes,
    CtSaverPacked,
    ::testing::Values (PackCase{ "W8A16Channel", kChan8, "", true },
                       PackCase{ "W8A16ChannelAsym", kChan8Asym, "", false },
                       PackCase{ "W8A16G32", group ("int8", true), kNoDown, true },
                       PackCase{ "W4A16G32", group ("int4", true), kNoDown, true },
                       PackCase{ "W4A16G32Asym", group ("int4", false), kNoDown, false },
                       PackCase{ "W8A16G16Asym", group ("int8", false, 16), kNoDown, false }),
    [] (const ::testing::TestParamInfo<PackCase> &info) { return std::string (info.param.name); });

// Two schemes in one run: one group each, targets by name.
TEST (CtSaver, TwoSchemesTwoGroups)
{
  GError *error = nullptr;
  std::string yaml = harness_linear_quant_yaml ("", kChan8, "include: [\"*mlp*\"]\n");
  GObjectPtr<SlimProcessor> p1 (harness_processor (yaml, &error));
  ASSERT_TRUE (p1) << (error ? error->message : "");
  GObjectPtr<SlimProcessor> p2 (harness_processor (
      harness_linear_quant_yaml ("", group ("int4", true), "include: [\"*self_attn*\"]\n"),
      &error));
  ASSERT_TRUE (p2) << (error ? error->message : "");
  GObjectPtr<SlimSaver> s (harness_saver (kSaver, &error));
  ASSERT_TRUE (s);
  std::string out = slim_test_make_tmpdir ();
  ASSERT_TRUE (
      harness_run_model (stories (), { p1.get (), p2.get () }, { s.get () }, out, 2, 8, &error))
      << (error ? error->message : "");
  SlimTestCtReport report = slim_test_ct_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_FALSE (report.groups["model.layers.0.mlp.up_proj"].empty ());
  EXPECT_FALSE (report.groups["model.layers.0.self_attn.o_proj"].empty ());
  EXPECT_NE (report.groups["model.layers.0.mlp.up_proj"],
             report.groups["model.layers.0.self_attn.o_proj"]);
  EXPECT_EQ (report.groups["model.layers.3.mlp.down_proj"],
             report.groups["model.layers.0.mlp.up_proj"]);
  std::string text = config_text (out);
  EXPECT_EQ (text.find ("\"Linear\""), std::string::npos) << "targets by name";
  EXPECT_NE (text.find ("\"model.layers.4.self_attn.q_proj\""), std::string::npos);
}

// ---- bad inputs -------------------------------------------------------------

struct BadCase
{
  const char *name;
  std::string act;
  std::string weight;
  std::string extra;
  const char *fragment; // in the error
};

class CtSaverRefuses : public ::testing::TestWithParam<BadCase>
{
};

TEST_P (CtSaverRefuses, NamesTheLinearAndWritesNothing)
{
  const BadCase &c = GetParam ();
  CtRun run = quantize (harness_linear_quant_yaml (c.act, c.weight, c.extra));
  ASSERT_FALSE (run.error.empty ());
  // the first linear of layer 0, in the layer's record order
  EXPECT_NE (run.error.find ("model.layers.0.self_attn.q_proj"), std::string::npos) << run.error;
  EXPECT_NE (run.error.find ("compressed_tensors cannot save this linear"), std::string::npos)
      << run.error;
  EXPECT_NE (run.error.find (c.fragment), std::string::npos) << run.error;
  // the aborted writer left no weight file behind
  for (const std::string &f : list_dir (run.out))
    EXPECT_EQ (f.find ("model"), std::string::npos) << f;
}

INSTANTIATE_TEST_SUITE_P (
    Schemes,
    CtSaverRefuses,
    ::testing::Values (
        BadCase{ "W4A8", "{dtype: int8, scope: per_token, symmetric: true, method: minmax}",
                 "{dtype: int4, scope: per_channel, symmetric: true, method: minmax}",
                 // W4A8's own scale_bias needs 16 | n_in, which down_proj's 172 is not
                 kNoDown, "int8 with int8 weights" },
        BadCase{ "W4A4", "{dtype: int4, scope: per_token, symmetric: true, method: minmax}",
                 "{dtype: int4, scope: per_channel, symmetric: true, method: minmax}", "",
                 "int8 with int8 weights" },
        BadCase{ "PdMix", "{dtype: int8, scope: pd_mix, symmetric: false, method: minmax}",
                 "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}", "",
                 "act scope pd_mix" }),
    [] (const ::testing::TestParamInfo<BadCase> &info) { return std::string (info.param.name); });

// ---- the checker rejects broken folders -------------------------------------

namespace
{

// Rewrites config.json of dir with `from` replaced by `to` (once).
void
edit_config (const std::string &dir, const std::string &from, const std::string &to)
{
  std::string text = config_text (dir);
  size_t at = text.find (from);
  ASSERT_NE (at, std::string::npos) << from;
  text.replace (at, from.size (), to);
  ASSERT_TRUE (g_file_set_contents ((dir + "/config.json").c_str (), text.c_str (), -1, nullptr));
}

// Rewrites model.safetensors with tensor `name` replaced by `t` (or dropped
// when t is null), the others unchanged.
void
edit_weights (const std::string &dir, const std::string &name, SlimTensor *t)
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
        if (n == name)
          {
            if (t != nullptr)
              keep.emplace_back (slim_tensor_copy (t, n.c_str ()));
            continue;
          }
        TensorPtr view (slim_safetensors_get_tensor (st.get (), n.c_str (), nullptr));
        keep.emplace_back (slim_tensor_copy (view.get (), nullptr));
      }
  }
  std::vector<SlimTensor *> ptrs;
  for (auto &k : keep)
    ptrs.push_back (k.get ());
  GError *error = nullptr;
  ASSERT_TRUE (
      slim_safetensors_write_file (file.c_str (), ptrs.data (), ptrs.size (), nullptr, &error))
      << (error ? error->message : "");
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

TEST (CtChecker, RejectsBrokenFolders)
{
  CtRun run = quantize (harness_linear_quant_yaml ("", group ("int4", false), kNoDown));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  ASSERT_TRUE (slim_test_ct_check (run.out).ok ()) << slim_test_ct_check (run.out).summary ();
  const std::string k = "model.layers.2.self_attn.k_proj.";

  struct Mutation
  {
    const char *what;
    std::function<void (const std::string &)> apply;
    const char *fragment;
  };
  std::vector<Mutation> mutations = {
    { "down_proj not ignored",
      [] (const std::string &d) { edit_config (d, "\"model.layers.0.mlp.down_proj\",", ""); },
      "model.layers.0.mlp.down_proj: a float Linear that is neither quantized nor in ignore" },
    { "quantized module ignored",
      [&] (const std::string &d) {
        edit_config (d, "\"ignore\": [",
                     "\"ignore\": [\n    \"" + k.substr (0, k.size () - 1) + "\",");
      },
      "quantized but in ignore" },
    { "wrong format",
      [] (const std::string &d) {
        edit_config (d, "\"format\": \"pack-quantized\",\n    \"quantization_status\"",
                     "\"format\": \"int-quantized\",\n    \"quantization_status\"");
      },
      "the groups say \"pack-quantized\"" },
    { "zero point dropped",
      [&] (const std::string &d) { edit_weights (d, k + "weight_zero_point", nullptr); },
      "weight_zero_point: must be present exactly for asymmetric weights" },
    { "weight_shape dropped",
      [&] (const std::string &d) { edit_weights (d, k + "weight_shape", nullptr); },
      "weight_shape: missing tensor" },
    { "negative scale",
      [&] (const std::string &d) {
        TensorPtr s = read_tensor (d + "/model.safetensors", k + "weight_scale");
        ((float *)slim_tensor_get_data_mut (s.get ()))[3] = -1.0f;
        edit_weights (d, k + "weight_scale", s.get ());
      },
      "weight_scale: -1 is not a finite positive scale" },
    { "scale shape",
      [&] (const std::string &d) {
        TensorPtr s (slim_tensor_new_2d ("x", SLIM_DTYPE_F32, 32, 1));
        edit_weights (d, k + "weight_scale", s.get ());
      },
      "weight_scale: shape [32, 1], expected [32, 2]" },
  };
  for (const Mutation &m : mutations)
    {
      std::string d = copy_folder (run.out);
      m.apply (d);
      SlimTestCtReport r = slim_test_ct_check (d);
      EXPECT_FALSE (r.ok ()) << m.what;
      EXPECT_TRUE (r.mentions (m.fragment)) << m.what << ":\n" << r.summary ();
    }
}

// int4 down_proj rows (172 values, 688 bits; group 4 divides 172) end 16
// bits into their last word: the checker wants those bits zero.
TEST (CtChecker, RejectsPaddingBits)
{
  CtRun run = quantize (harness_linear_quant_yaml ("", group ("int4", true, 4)));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  ASSERT_TRUE (slim_test_ct_check (run.out).ok ());
  const std::string name = "model.layers.1.mlp.down_proj.weight_packed";
  std::string d = copy_folder (run.out);
  TensorPtr p = read_tensor (d + "/model.safetensors", name);
  ASSERT_TRUE (p);
  ASSERT_EQ (slim_tensor_get_dim (p.get (), 1), 22); /* ceil (172 * 4 / 32) */
  ((gint32 *)slim_tensor_get_data_mut (p.get ()))[21] |= (gint32)(1u << 20);
  edit_weights (d, name, p.get ());
  SlimTestCtReport r = slim_test_ct_check (d);
  EXPECT_TRUE (r.mentions ("weight_packed: nonzero padding bits")) << r.summary ();
}

// ---- refusals on hand-made records, and nothing of the layer written ------

namespace
{

// A synthetic layer 0 holding q_proj (32 x 64) with a W8A16-style record
// whose offsets are `offset` (per channel) and whose weight scheme is
// `weight`.
SlimLayer *
layer_with_record (SlimQScheme weight, float offset, const char *label = "W8A16")
{
  SlimLayer *layer
      = harness_synthetic_layer (0, { { "model.layers.0.self_attn.q_proj", 32, 64, false } }, 3);
  SlimQLinear *q = slim_qlinear_new ("model.layers.0.self_attn.q_proj", label);
  q->act = SLIM_QSCHEME_ACT_FLOAT;
  q->weight = weight;
  q->n_out = 32;
  q->n_in = 64;
  q->weight_q = slim_tensor_new_2d ("q", SLIM_DTYPE_I8, 32, 64);
  q->weight_scale = slim_tensor_new_2d ("s", SLIM_DTYPE_F32, 32, 1);
  q->weight_offset = slim_tensor_new_2d ("o", SLIM_DTYPE_F32, 32, 1);
  gint8 *wq = (gint8 *)slim_tensor_get_data_mut (q->weight_q);
  for (int i = 0; i < 32 * 64; i++)
    wq[i] = (gint8)((i * 7) % 15 - 7);
  float *s = (float *)slim_tensor_get_data_mut (q->weight_scale);
  float *o = (float *)slim_tensor_get_data_mut (q->weight_offset);
  for (int i = 0; i < 32; i++)
    {
      s[i] = 0.01f;
      o[i] = i == 5 ? offset : 0.0f;
    }
  slim_layer_set_qlinear (layer, q);
  return layer;
}

struct RecordCase
{
  const char *name;
  SlimQScheme weight;
  float offset;
  const char *fragment;
};

} // namespace

class CtWriterRefuses : public ::testing::TestWithParam<RecordCase>
{
};

TEST_P (CtWriterRefuses, BeforeAnyTensorOfTheLayer)
{
  const RecordCase &c = GetParam ();
  std::string out = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimCtWriter *w = slim_ct_writer_new (out.c_str (), 0, SLIM_DTYPE_F32, TRUE, &error);
  ASSERT_NE (w, nullptr) << (error ? error->message : "");
  GBytes *before = slim_ct_writer_save_state (w, &error);
  ASSERT_NE (before, nullptr);
  GObjectPtr<SlimLayer> layer (layer_with_record (c.weight, c.offset));
  EXPECT_FALSE (slim_ct_writer_write_layer (w, layer.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE))
      << error->message;
  EXPECT_NE (std::string (error->message)
                 .find ("model.layers.0.self_attn.q_proj (W8A16): compressed_tensors cannot save "
                        "this linear"),
             std::string::npos)
      << error->message;
  EXPECT_NE (std::string (error->message).find (c.fragment), std::string::npos) << error->message;
  g_clear_error (&error);
  // nothing was written: the state (tensors, schemes, ignored linears) is unchanged
  GBytes *after = slim_ct_writer_save_state (w, &error);
  ASSERT_NE (after, nullptr);
  EXPECT_TRUE (g_bytes_equal (before, after));
  g_bytes_unref (before);
  g_bytes_unref (after);
  slim_ct_writer_free (w);
  EXPECT_TRUE (list_dir (out).empty ()) << "a dropped writer leaves no files";
}

INSTANTIATE_TEST_SUITE_P (
    Records,
    CtWriterRefuses,
    ::testing::Values (
        RecordCase{ "FloatZeroPoint",
                    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, FALSE },
                    2.25f,
                    "weight_offset[5] = 2.25 is not an integer zero point in [-128, 127]" },
        RecordCase{ "ZeroPointOutOfRange",
                    { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, FALSE },
                    9.0f,
                    "weight_offset[5] = 9 is not an integer zero point in [-8, 7]" },
        RecordCase{ "SymmetricWithZeroPoint",
                    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, TRUE },
                    1.0f,
                    "weight_offset[5] = 1 in a symmetric scheme" },
        RecordCase{ "Fp8PerGroupWeight",
                    { SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_GROUP, TRUE },
                    0.0f,
                    "fp8_e4m3 weights per group of 0 (compressed-tensors' float-quantized fp8 has "
                    "tensor, channel and 128x128 block scales, no groups)" },
        RecordCase{ "MxWeight",
                    { SLIM_QDTYPE_MXFP8, SLIM_QSCOPE_PER_BLOCK, TRUE },
                    0.0f,
                    "weight mxfp8 per_block sym is not an integer or fp8_e4m3 format" },
        RecordCase{ "PerBlockWeight",
                    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_BLOCK, TRUE },
                    0.0f,
                    "weight scope per_block has no compressed-tensors strategy" }),
    [] (const ::testing::TestParamInfo<RecordCase> &info) {
      return std::string (info.param.name);
    });

// A well-formed hand-made record is written (the cases above fail for their
// one defect, not for the fixture).
TEST (CtWriter, HandMadeRecordIsWritten)
{
  std::string out = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimCtWriter *w = slim_ct_writer_new (out.c_str (), 0, SLIM_DTYPE_F32, TRUE, &error);
  ASSERT_NE (w, nullptr);
  GObjectPtr<SlimLayer> layer (
      layer_with_record ({ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, FALSE }, -3.0f));
  EXPECT_TRUE (slim_ct_writer_write_layer (w, layer.get (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  quant_write_config (out);
  EXPECT_TRUE (slim_ct_writer_finish (w, nullptr, &error)) << (error ? error->message : "");
  g_clear_error (&error);
  slim_ct_writer_free (w);
  SlimTestCtReport report = slim_test_ct_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  std::vector<float> deq;
  int64_t n_out = 0, n_in = 0;
  std::string why;
  ASSERT_TRUE (
      slim_test_ct_dequantize (out, "model.layers.0.self_attn.q_proj", &deq, &n_out, &n_in, &why))
      << why;
  // row 5 has zero point -3: (q + 3) * 0.01
  gint8 q5 = (gint8)(((5 * 64) * 7) % 15 - 7);
  EXPECT_EQ (deq[5 * 64], ((float)q5 + 3.0f) * 0.01f);
}

// fp8 e4m3 records as linear_quant makes them (slim_fp8_quantize_weight_rows:
// float8_e4m3fn codes, float32 (out, 1) scales, zero offsets).  act: float
// (weight-only) or fp8 per_token.
namespace
{

SlimLayer *
layer_with_fp8_record (const SlimQScheme &act, std::vector<float> *dequantized)
{
  const gint64 n_out = 32, n_in = 64;
  SlimLayer *layer
      = harness_synthetic_layer (0, { { "model.layers.0.self_attn.q_proj", 32, 64, false } }, 3);
  SlimQLinear *q = slim_qlinear_new ("model.layers.0.self_attn.q_proj",
                                     act.dtype == SLIM_QDTYPE_FLOAT ? "W8A16" : "WFP8AFP8_DYNAMIC");
  q->act = act;
  q->weight = { SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_CHANNEL, TRUE };
  q->n_out = n_out;
  q->n_in = n_in;
  q->weight_q = slim_tensor_new_2d ("q", SLIM_DTYPE_F8_E4M3FN, n_out, n_in);
  q->weight_scale = slim_tensor_new_2d ("s", SLIM_DTYPE_F32, n_out, 1);
  q->weight_offset = slim_tensor_new_2d ("o", SLIM_DTYPE_F32, n_out, 1);
  std::vector<float> w ((size_t)(n_out * n_in)); // (n_out, n_in)
  for (size_t i = 0; i < w.size (); i++)
    w[i] = std::sin (0.37f * (float)i) * (1.0f + (float)(i / 64)); // rows of growing range
  dequantized->resize (w.size ());
  slim_fp8_quantize_weight_rows (
      w.data (), n_out, n_in, (guint8 *)slim_tensor_get_data_mut (q->weight_q),
      (float *)slim_tensor_get_data_mut (q->weight_scale), dequantized->data ());
  slim_layer_set_qlinear (layer, q);
  return layer;
}

} // namespace

class CtWriterFp8 : public ::testing::TestWithParam<bool>
{
};

// fp8 weights: float-quantized with fp8 per-token activations
// (compressed-tensors' FP8_DYNAMIC), naive-quantized weight-only; the
// checker's own e4m3fn decoding times the scale gives slimflow's
// dequantized weight bit for bit (both are float32 value (code) * scale).
TEST_P (CtWriterFp8, CheckerAcceptsAndDequantizesBitExact)
{
  bool dynamic = GetParam ();
  SlimQScheme act = dynamic ? SlimQScheme{ SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_TOKEN, TRUE }
                            : SLIM_QSCHEME_ACT_FLOAT;
  std::string out = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimCtWriter *w = slim_ct_writer_new (out.c_str (), 0, SLIM_DTYPE_BF16, TRUE, &error);
  ASSERT_NE (w, nullptr);
  std::vector<float> ref;
  GObjectPtr<SlimLayer> layer (layer_with_fp8_record (act, &ref));
  EXPECT_TRUE (slim_ct_writer_write_layer (w, layer.get (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  quant_write_config (out);
  EXPECT_TRUE (slim_ct_writer_finish (w, nullptr, &error)) << (error ? error->message : "");
  g_clear_error (&error);
  slim_ct_writer_free (w);
  SlimTestCtReport report = slim_test_ct_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_EQ (report.format, dynamic ? "float-quantized" : "naive-quantized");
  std::vector<float> deq;
  int64_t n_out = 0, n_in = 0;
  std::string why;
  ASSERT_TRUE (
      slim_test_ct_dequantize (out, "model.layers.0.self_attn.q_proj", &deq, &n_out, &n_in, &why))
      << why;
  ASSERT_EQ (deq.size (), ref.size ());
  EXPECT_EQ (std::memcmp (deq.data (), ref.data (), ref.size () * sizeof (float)), 0);

  // the quantization args as compressed-tensors' FP8_DYNAMIC preset has
  // them (scale_dtype float32: the model is bf16, the scales are not)
  gchar *text = nullptr;
  ASSERT_TRUE (g_file_get_contents ((out + "/config.json").c_str (), &text, nullptr, nullptr));
  std::string config (text);
  g_free (text);
  for (const char *fragment :
       { "\"num_bits\": 8,\n          \"type\": \"float\",\n          \"symmetric\": true,\n"
         "          \"group_size\": null,\n          \"strategy\": \"channel\"",
         "\"scale_dtype\": \"torch.float32\"", "\"zp_dtype\": null" })
    EXPECT_NE (config.find (fragment), std::string::npos) << fragment << "\n" << config;
  if (dynamic)
    EXPECT_NE (config.find ("\"type\": \"float\",\n          \"symmetric\": true,\n          "
                            "\"group_size\": null,\n          \"strategy\": \"token\",\n"
                            "          \"block_structure\": null,\n          \"dynamic\": true"),
               std::string::npos)
        << config;
  else
    EXPECT_NE (config.find ("\"input_activations\": null"), std::string::npos) << config;
}

INSTANTIATE_TEST_SUITE_P (Schemes,
                          CtWriterFp8,
                          ::testing::Bool (),
                          [] (const ::testing::TestParamInfo<bool> &info) {
                            return std::string (info.param ? "Fp8Dynamic" : "Fp8WeightOnly");
                          });

// fp8 weights with int8 activations, and a NaN code, are refused naming
// the linear, before anything is written.
TEST (CtWriter, Fp8RecordsCompressedTensorsCannotHold)
{
  for (int defect = 0; defect < 2; defect++)
    {
      std::string out = slim_test_make_tmpdir ();
      GError *error = nullptr;
      SlimCtWriter *w = slim_ct_writer_new (out.c_str (), 0, SLIM_DTYPE_F32, TRUE, &error);
      ASSERT_NE (w, nullptr);
      std::vector<float> ref;
      SlimQScheme act = defect == 0 ? SlimQScheme{ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, TRUE }
                                    : SLIM_QSCHEME_ACT_FLOAT;
      GObjectPtr<SlimLayer> layer (layer_with_fp8_record (act, &ref));
      if (defect == 1)
        {
          GPtrArray *records = slim_layer_list_qlinears (layer.get ());
          SlimQLinear *q = (SlimQLinear *)g_ptr_array_index (records, 0);
          ((guint8 *)slim_tensor_get_data_mut (q->weight_q))[70] = 0xff; // -NaN
          g_ptr_array_unref (records);
        }
      EXPECT_FALSE (slim_ct_writer_write_layer (w, layer.get (), &error));
      ASSERT_NE (error, nullptr);
      const char *expected
          = defect == 0 ? "model.layers.0.self_attn.q_proj (WFP8AFP8_DYNAMIC): compressed_tensors "
                          "cannot save this linear: act int8 per_token sym with weight fp8_e4m3 "
                          "per_channel sym"
                        : "model.layers.0.self_attn.q_proj (W8A16): quantized weight (1, 6) is a "
                          "float8_e4m3fn NaN";
      EXPECT_NE (std::string (error->message).find (expected), std::string::npos) << error->message;
      g_clear_error (&error);
      slim_ct_writer_free (w);
      EXPECT_TRUE (list_dir (out).empty ());
    }
}

// KV-cache records (dynamic_cache, C8) have no compressed-tensors form here.
TEST (CtSaver, KvCacheRecordsAreRefused)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> lq (
      harness_processor (harness_linear_quant_yaml (kToken8, kChan8), &error));
  ASSERT_TRUE (lq) << (error ? error->message : "");
  GObjectPtr<SlimProcessor> kv (harness_processor (
      "type: dynamic_cache\nqconfig: {scope: per_channel, dtype: int8, symmetric: true, "
      "method: minmax}\ninclude: [\"*\"]\n",
      &error));
  ASSERT_TRUE (kv) << (error ? error->message : "");
  GObjectPtr<SlimSaver> s (harness_saver (kSaver, &error));
  ASSERT_TRUE (s);
  std::string out = slim_test_make_tmpdir ();
  EXPECT_FALSE (
      harness_run_model (stories (), { lq.get (), kv.get () }, { s.get () }, out, 2, 8, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message)
                 .find ("model.layers.0.self_attn: KV-cache (C8) and FA3 (FAQuant) quantization "
                        "cannot be saved by compressed_tensors"),
             std::string::npos)
      << error->message;
  g_clear_error (&error);
  slim_saver_abort (s.get ());
}

// A bf16 model: float tensors stay bf16, scales float32 and said so.
TEST (CtSaver, Bf16ModelKeepsFloat32Scales)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p (
      harness_processor (harness_linear_quant_yaml ("", group ("int4", false), kNoDown), &error));
  ASSERT_TRUE (p);
  GObjectPtr<SlimSaver> s (harness_saver (kSaver, &error));
  ASSERT_TRUE (s);
  std::string out = slim_test_make_tmpdir ();
  ASSERT_TRUE (harness_run_model (slim_test_shared_path ("models/stories260K-bf16"), { p.get () },
                                  { s.get () }, out, 2, 8, &error))
      << (error ? error->message : "");
  SlimTestCtReport report = slim_test_ct_check (out);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  std::string file = out + "/model.safetensors";
  TensorPtr norm = read_tensor (file, "model.norm.weight");
  TensorPtr scale = read_tensor (file, "model.layers.0.mlp.up_proj.weight_scale");
  TensorPtr down = read_tensor (file, "model.layers.0.mlp.down_proj.weight");
  ASSERT_TRUE (norm && scale && down);
  EXPECT_EQ (slim_tensor_get_dtype (norm.get ()), SLIM_DTYPE_BF16);
  EXPECT_EQ (slim_tensor_get_dtype (down.get ()), SLIM_DTYPE_BF16);
  EXPECT_EQ (slim_tensor_get_dtype (scale.get ()), SLIM_DTYPE_F32);
  std::string text = config_text (out);
  EXPECT_NE (text.find ("\"scale_dtype\": \"torch.float32\""), std::string::npos) << text;
}

// A record whose values do not fit its bits fails while planning, not
// half-way through the layer's tensors.
TEST (CtWriter, OutOfRangeWeightFailsBeforeWriting)
{
  std::string out = slim_test_make_tmpdir ();
  GError *error = nullptr;
  SlimCtWriter *w = slim_ct_writer_new (out.c_str (), 0, SLIM_DTYPE_F32, TRUE, &error);
  ASSERT_NE (w, nullptr);
  GBytes *before = slim_ct_writer_save_state (w, &error);
  GObjectPtr<SlimLayer> layer (
      layer_with_record ({ SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, TRUE }, 0.0f));
  SlimQLinear *q
      = (SlimQLinear *)slim_layer_get_qlinear (layer.get (), "model.layers.0.self_attn.q_proj");
  ((gint8 *)slim_tensor_get_data_mut (q->weight_q))[70] = 8;
  EXPECT_FALSE (slim_ct_writer_write_layer (w, layer.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message)
                 .find ("model.layers.0.self_attn.q_proj (W8A16): quantized weight (1, 6) = 8 is "
                        "outside the int4 range [-8, 7]"),
             std::string::npos)
      << error->message;
  g_clear_error (&error);
  GBytes *after = slim_ct_writer_save_state (w, &error);
  EXPECT_TRUE (g_bytes_equal (before, after));
  g_bytes_unref (before);
  g_bytes_unref (after);
  slim_ct_writer_free (w);
}

// msModelSlim writes ignore as one "re:" pattern (Python re.match): the
// checker matches those like compressed-tensors does.
TEST (CtChecker, AcceptsRegexIgnore)
{
  CtRun run = quantize (harness_linear_quant_yaml ("", group ("int4", true), kNoDown));
  ASSERT_TRUE (run.error.empty ()) << run.error;
  std::string text = config_text (run.out);
  size_t from = text.find ("\"ignore\": [");
  size_t to = text.find ("]", from);
  ASSERT_NE (from, std::string::npos);
  text.replace (from, to + 1 - from,
                "\"ignore\": [\"re:(?:lm_head|model\\\\.layers\\\\.(?:0|1|2|3|4)\\\\.mlp\\\\.down_"
                "proj)(?![.\\\\w])\"]");
  std::string d = copy_folder (run.out);
  ASSERT_TRUE (g_file_set_contents ((d + "/config.json").c_str (), text.c_str (), -1, nullptr));
  SlimTestCtReport r = slim_test_ct_check (d);
  EXPECT_TRUE (r.ok ()) << r.summary ();
  // a pattern that misses layer 4's down_proj
  text.replace (text.find ("|4)"), 3, ")");
  ASSERT_TRUE (g_file_set_contents ((d + "/config.json").c_str (), text.c_str (), -1, nullptr));
  r = slim_test_ct_check (d);
  EXPECT_TRUE (r.mentions ("model.layers.4.mlp.down_proj: a float Linear that is neither"))
      << r.summary ();
}
