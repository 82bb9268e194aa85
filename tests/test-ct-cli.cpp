// SPDX-License-Identifier: Apache-2.0
//
// test-ct-cli.cpp: `slimflow quant` with the compressed_tensors saver on
// stories260K, end to end:
// - the shipped examples (W8A8 dynamic, W4A16 per-group 32, FP8 dynamic)
//   give folders
//   the compressed-tensors checker accepts;
// - every quantized weight, dequantized from the folder alone as
//   compressed-tensors does, equals bit for bit the weight slimflow's own
//   evaluator dequantizes from the ascendv1 output of the same pipeline
//   (slim_quant_model_load); the float tensors equal too;
// - a scheme compressed-tensors cannot express fails before anything is
//   written, the error naming the linear, and leaves nothing at save_path;
// - a killed run resumed with --resume gives the uninterrupted bytes.
#include "ct-checker.hpp"
#include "quant-cli-util.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-quant-model.h"
#include "slim-safetensors.h"
}

#include <csignal>
#include <cstring>
#include <glib/gstdio.h>

namespace
{

const std::vector<std::string> kFastCalib = { "--max_samples", "4", "--max_length", "64" };

std::vector<std::string>
quant_args (const std::string &save, const std::string &config)
{
  std::vector<std::string> a
      = { "--model_path", quant_stories_model (), "--save_path", save, "--config_path", config };
  a.insert (a.end (), kFastCalib.begin (), kFastCalib.end ());
  return a;
}

// The example with its compressed_tensors save entry replaced by `saver`.
std::string
with_saver (const std::string &dir, const std::string &example, const std::string &saver)
{
  std::string text;
  {
    gchar *data = nullptr;
    EXPECT_TRUE (g_file_get_contents (quant_example (example).c_str (), &data, nullptr, nullptr));
    text = data != nullptr ? data : "";
    g_free (data);
  }
  const std::string from = "type: \"compressed_tensors\"";
  size_t at = text.find (from);
  EXPECT_NE (at, std::string::npos) << example;
  if (at != std::string::npos)
    text.replace (at, from.size (), "type: \"" + saver + "\"");
  std::string path = dir + "/" + saver + "-" + example;
  quant_write_file (path, text);
  return path;
}

// A private float32 copy of a tensor of a safetensors file (null when absent).
std::vector<float>
read_f32 (const std::string &file, const std::string &name, bool *found)
{
  std::vector<float> out;
  GError *error = nullptr;
  SlimSafetensors *st = slim_safetensors_open (file.c_str (), &error);
  *found = false;
  EXPECT_NE (st, nullptr) << file << ": " << (error ? error->message : "");
  g_clear_error (&error);
  if (st == nullptr)
    return out;
  if (slim_safetensors_contains (st, name.c_str ()))
    {
      SlimTensor *view = slim_safetensors_get_tensor (st, name.c_str (), &error);
      SlimTensor *f32 = view != nullptr ? slim_tensor_to_f32 (view, &error) : nullptr;
      EXPECT_NE (f32, nullptr) << name << ": " << (error ? error->message : "");
      g_clear_error (&error);
      if (f32 != nullptr)
        {
          const float *v = (const float *)slim_tensor_get_data (f32);
          out.assign (v, v + slim_tensor_get_n_elements (f32));
          *found = true;
          slim_tensor_unref (f32);
        }
      if (view != nullptr)
        slim_tensor_unref (view);
    }
  g_object_unref (st);
  return out;
}

// The weight file of a folder of stories260K (one shard at part_file_size 4).
std::string
weight_file (const std::string &dir)
{
  std::string single = dir + "/model.safetensors";
  std::string shard = dir + "/model-00001-of-00001.safetensors";
  EXPECT_TRUE (g_file_test (single.c_str (), G_FILE_TEST_EXISTS)
               || g_file_test (shard.c_str (), G_FILE_TEST_EXISTS))
      << dir;
  return g_file_test (single.c_str (), G_FILE_TEST_EXISTS) ? single : shard;
}

struct ExampleCase
{
  const char *name;
  const char *example;
  const char *format;
  size_t n_quantized; // linears of stories260K's 5 layers the example quantizes
};

class CtCliExamples : public ::testing::TestWithParam<ExampleCase>
{
};

} // namespace

TEST_P (CtCliExamples, CheckerPassesAndWeightsEqualAscendv1)
{
  const ExampleCase &c = GetParam ();
  std::string tmp = slim_test_make_tmpdir ();
  std::string ct = tmp + "/ct", ascend = tmp + "/ascend";
  QuantChild a = quant_cli (quant_args (ct, quant_example (c.example)));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  QuantChild b = quant_cli (quant_args (ascend, with_saver (tmp, c.example, "ascendv1_saver")));
  ASSERT_EQ (b.exit_code, 0) << b.err;

  SlimTestCtReport report = slim_test_ct_check (ct);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  EXPECT_EQ (report.format, c.format);
  EXPECT_EQ (report.formats.size (), c.n_quantized);
  EXPECT_EQ (report.n_shards, 1u); // part_file_size 4: one shard and the index

  // slimflow's own dequantization of the ascendv1 folder (what `slimflow
  // eval` runs)
  GError *error = nullptr;
  SlimQuantModel *qm = slim_quant_model_load (ascend.c_str (), &error);
  ASSERT_NE (qm, nullptr) << (error ? error->message : "");
  EXPECT_EQ (slim_quant_model_get_n_quantized (qm), c.n_quantized);
  std::string float_file = std::string (slim_quant_model_get_float_dir (qm)) + "/model.safetensors";
  size_t compared = 0;
  for (const auto &kv : report.formats)
    {
      std::vector<float> w;
      int64_t n_out = 0, n_in = 0;
      std::string why;
      ASSERT_TRUE (slim_test_ct_dequantize (ct, kv.first, &w, &n_out, &n_in, &why)) << why;
      bool found = false;
      std::vector<float> ref = read_f32 (float_file, kv.first + ".weight", &found);
      ASSERT_TRUE (found) << kv.first;
      ASSERT_EQ (w.size (), ref.size ()) << kv.first;
      // bit for bit: both are float32 (q - zero_point) * scale
      EXPECT_EQ (std::memcmp (w.data (), ref.data (), w.size () * sizeof (float)), 0) << kv.first;
      compared++;
    }
  EXPECT_EQ (compared, c.n_quantized);
  // the float tensors too (stories260K is float32: no dtype conversion)
  for (std::string module :
       { "model.norm", "model.embed_tokens", "model.layers.2.post_attention_layernorm",
         "model.layers.2.mlp.down_proj" })
    {
      if (report.formats.count (module))
        continue; // down_proj is quantized in the W8A8 example
      bool found_ct = false, found_ref = false;
      std::vector<float> x = read_f32 (weight_file (ct), module + ".weight", &found_ct);
      std::vector<float> y = read_f32 (float_file, module + ".weight", &found_ref);
      ASSERT_TRUE (found_ct && found_ref) << module;
      EXPECT_EQ (x, y) << module;
    }
  slim_quant_model_free (qm);
}

INSTANTIATE_TEST_SUITE_P (
    Stories,
    CtCliExamples,
    ::testing::Values (
        ExampleCase{ "W8A8Dynamic", "dense-w8a8-dynamic-ct.yaml", "int-quantized", 5 * 7 },
        // down_proj left float: 172 inputs are not a multiple of 32
        ExampleCase{ "W4A16G32", "dense-w4a16-ct.yaml", "pack-quantized", 5 * 6 },
        // fp8 e4m3 codes and float32 per-channel scales: float (code) * scale
        // on both sides, so bit for bit as well
        ExampleCase{ "FP8Dynamic", "dense-wfp8afp8-dynamic-ct.yaml", "float-quantized", 5 * 7 }),
    [] (const ::testing::TestParamInfo<ExampleCase> &info) {
      return std::string (info.param.name);
    });

TEST (CtCli, InexpressibleSchemeNamesTheLinearAndWritesNothing)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/w4a8-ct.yaml";
  quant_write_file (config, "apiversion: modelslim_v1\n"
                            "spec:\n"
                            "  process:\n"
                            "    - type: linear_quant\n"
                            "      qconfig:\n"
                            "        act: {scope: per_token, dtype: int8, symmetric: true, "
                            "method: minmax}\n"
                            "        weight: {scope: per_channel, dtype: int4, symmetric: true, "
                            "method: minmax}\n"
                            "      include: [\"*\"]\n"
                            "      exclude: [\"*down_proj*\"]\n"
                            "  save:\n"
                            "    - type: compressed_tensors\n");
  std::string save = tmp + "/out";
  QuantChild r = quant_cli (quant_args (save, config));
  // a configuration the saver cannot honour: exit 2, as mindie_format_saver's refusals
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find ("model.layers.0.self_attn.q_proj (W4A8_DYNAMIC): compressed_tensors "
                         "cannot save this linear"),
             std::string::npos)
      << r.err;
  EXPECT_FALSE (g_file_test (save.c_str (), G_FILE_TEST_EXISTS));
  for (const std::string &f : quant_list_dir (tmp))
    EXPECT_EQ (f.find ("slimflow-tmp"), std::string::npos) << f;
}

TEST (CtCli, KilledRunResumesToTheSameBytes)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = quant_example ("dense-w4a16-ct.yaml");
  QuantChildOptions hdf5;
  hdf5.env = { { "SLIM_SPILL", "hdf5" } };
  QuantChild ref = quant_cli (quant_args (tmp + "/ref", config), hdf5);
  ASSERT_EQ (ref.exit_code, 0) << ref.err;

  QuantChildOptions kill = hdf5;
  kill.env.push_back ({ "SLIMFLOW_TEST_KILL_AFTER_LAYER", "2" });
  std::string save = tmp + "/out";
  QuantChild killed = quant_cli (quant_args (save, config), kill);
  EXPECT_EQ (killed.term_signal, SIGKILL) << killed.err;
  EXPECT_FALSE (g_file_test (save.c_str (), G_FILE_TEST_EXISTS));

  std::vector<std::string> args = quant_args (save, config);
  args.push_back ("--resume");
  QuantChild resumed = quant_cli (args, kill);
  ASSERT_EQ (resumed.exit_code, 0) << resumed.err;
  EXPECT_NE (resumed.err.find ("continuing with layer 3"), std::string::npos) << resumed.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/ref"), quant_folder_digests (save));
  EXPECT_TRUE (slim_test_ct_check (save).ok ()) << slim_test_ct_check (save).summary ();
}
