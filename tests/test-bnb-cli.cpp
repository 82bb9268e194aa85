// SPDX-License-Identifier: Apache-2.0
//
// test-bnb-cli.cpp: `slimflow quant` with the bitsandbytes saver on
// stories260K (NF4, examples/dense-w4a16-nf4.yaml), end to end:
// - the folder passes the bitsandbytes checker (tests/bnb-checker.hpp);
// - every NF4 weight, dequantized from the folder alone as bitsandbytes
//   does (quant_map[code] * absmax), equals bit for bit the weight
//   slimflow's own evaluator dequantizes from the ascendv1 output of the
//   same pipeline (slim_quant_model_load), and the NF4 fake quantization of
//   the float model's weight (slim_nf4_fake_quantize); float tensors equal;
// - an integer label fails before anything is written, naming the linear;
// - a killed run resumed with --resume gives the uninterrupted bytes.
#include "bnb-checker.hpp"
#include "quant-cli-util.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-nf4.h"
#include "slim-quant-model.h"
#include "slim-safetensors.h"
}

#include <csignal>
#include <cstring>
#include <glib/gstdio.h>

namespace
{

std::vector<std::string>
quant_args (const std::string &save, const std::string &config)
{
  return { "--model_path", quant_stories_model (), "--save_path", save, "--config_path", config };
}

// The NF4 example with its saver replaced by `saver`.
std::string
nf4_config (const std::string &dir, const std::string &saver)
{
  std::string text;
  {
    gchar *data = nullptr;
    EXPECT_TRUE (g_file_get_contents (quant_example ("dense-w4a16-nf4.yaml").c_str (), &data,
                                      nullptr, nullptr));
    text = data != nullptr ? data : "";
    g_free (data);
  }
  const std::string from = "type: \"ascendv1_saver\"";
  size_t at = text.find (from);
  EXPECT_NE (at, std::string::npos);
  if (at != std::string::npos)
    text.replace (at, from.size (), "type: \"" + saver + "\"");
  std::string path = dir + "/nf4-" + saver + ".yaml";
  quant_write_file (path, text);
  return path;
}

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
      SlimTensor *f32 = slim_safetensors_get_tensor_f32 (st, name.c_str (), &error);
      EXPECT_NE (f32, nullptr) << name << ": " << (error ? error->message : "");
      g_clear_error (&error);
      if (f32 != nullptr)
        {
          const float *v = (const float *)slim_tensor_get_data (f32);
          out.assign (v, v + slim_tensor_get_n_elements (f32));
          *found = true;
          slim_tensor_unref (f32);
        }
    }
  g_object_unref (st);
  return out;
}

} // namespace

TEST (BnbCli, CheckerPassesAndWeightsEqualSlimflowsOwn)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string bnb = tmp + "/bnb", ascend = tmp + "/ascend";
  QuantChild a = quant_cli (quant_args (bnb, nf4_config (tmp, "bitsandbytes_saver")));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  QuantChild b = quant_cli (quant_args (ascend, nf4_config (tmp, "ascendv1_saver")));
  ASSERT_EQ (b.exit_code, 0) << b.err;

  SlimTestBnbReport report = slim_test_bnb_check (bnb);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  // 5 layers x q, k, v, o, gate, up; down_proj (172 inputs) and lm_head float
  EXPECT_EQ (report.quantized.size (), 5u * 6u);
  std::vector<std::string> skip;
  for (int l = 0; l < 5; l++)
    skip.push_back ("model.layers." + std::to_string (l) + ".mlp.down_proj");
  skip.push_back ("lm_head");
  EXPECT_EQ (report.skip, skip);

  GError *error = nullptr;
  SlimQuantModel *qm = slim_quant_model_load (ascend.c_str (), &error);
  ASSERT_NE (qm, nullptr) << (error ? error->message : "");
  EXPECT_EQ (slim_quant_model_get_n_quantized (qm), 5u * 6u);
  std::string float_file = std::string (slim_quant_model_get_float_dir (qm)) + "/model.safetensors";
  std::string model_file = quant_stories_model () + "/model.safetensors";
  std::string bnb_file = bnb + "/model-00001-of-00001.safetensors";
  for (const std::string &module : report.quantized)
    {
      std::vector<float> w;
      int64_t n_out = 0, n_in = 0;
      std::string why;
      ASSERT_TRUE (slim_test_bnb_dequantize (bnb, module, &w, &n_out, &n_in, &why)) << why;
      bool found = false;
      std::vector<float> ref = read_f32 (float_file, module + ".weight", &found);
      ASSERT_TRUE (found) << module;
      ASSERT_EQ (w.size (), ref.size ()) << module;
      // bit for bit: both are float32 code * absmax
      EXPECT_EQ (std::memcmp (w.data (), ref.data (), w.size () * sizeof (float)), 0) << module;

      std::vector<float> orig = read_f32 (model_file, module + ".weight", &found);
      ASSERT_TRUE (found) << module;
      ASSERT_EQ ((int64_t)orig.size (), n_out * n_in) << module;
      std::vector<float> fq (orig.size ());
      slim_nf4_fake_quantize (orig.data (), n_out, n_in, 64, nullptr, nullptr, fq.data ());
      EXPECT_EQ (std::memcmp (w.data (), fq.data (), w.size () * sizeof (float)), 0) << module;
    }
  // float tensors as in the model (stories260K is float32)
  for (std::string name :
       { "model.norm.weight", "model.embed_tokens.weight",
         "model.layers.2.post_attention_layernorm.weight", "model.layers.2.mlp.down_proj.weight" })
    {
      bool f1 = false, f2 = false;
      std::vector<float> x = read_f32 (bnb_file, name, &f1);
      std::vector<float> y = read_f32 (model_file, name, &f2);
      ASSERT_TRUE (f1 && f2) << name;
      EXPECT_EQ (x, y) << name;
    }
  // tied embeddings: lm_head.weight is not written
  bool found = true;
  read_f32 (bnb_file, "lm_head.weight", &found);
  EXPECT_FALSE (found);
  slim_quant_model_free (qm);
}

TEST (BnbCli, IntegerLabelNamesTheLinearAndWritesNothing)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/w4a16-bnb.yaml";
  quant_write_file (config, "apiversion: modelslim_v1\n"
                            "spec:\n"
                            "  process:\n"
                            "    - type: linear_quant\n"
                            "      qconfig:\n"
                            "        weight: {scope: per_group, dtype: int4, symmetric: true, "
                            "method: minmax, ext: {group_size: 64}}\n"
                            "      include: [\"*\"]\n"
                            "      exclude: [\"*down_proj*\"]\n"
                            "  save:\n"
                            "    - type: bitsandbytes_saver\n");
  std::string save = tmp + "/out";
  QuantChild r = quant_cli (quant_args (save, config));
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find ("model.layers.0.self_attn.q_proj (W4A16): bitsandbytes_saver writes "
                         "NF4 weights only"),
             std::string::npos)
      << r.err;
  EXPECT_FALSE (g_file_test (save.c_str (), G_FILE_TEST_EXISTS));
  for (const std::string &f : quant_list_dir (tmp))
    EXPECT_EQ (f.find ("slimflow-tmp"), std::string::npos) << f;
}

TEST (BnbCli, KilledRunResumesToTheSameBytes)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = nf4_config (tmp, "bitsandbytes_saver");
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
  EXPECT_TRUE (slim_test_bnb_check (save).ok ()) << slim_test_bnb_check (save).summary ();
}

// The checker can fail: a folder whose config turns double quantization on,
// whose quant_map is not NF4's and whose skip list names a quantized module
// is reported on each count.
TEST (BnbCli, CheckerReportsABrokenFolder)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string bnb = tmp + "/bnb";
  QuantChild a = quant_cli (quant_args (bnb, nf4_config (tmp, "bitsandbytes_saver")));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  ASSERT_TRUE (slim_test_bnb_check (bnb).ok ());

  std::string config = bnb + "/config.json";
  gchar *text = nullptr;
  ASSERT_TRUE (g_file_get_contents (config.c_str (), &text, nullptr, nullptr));
  std::string c = text;
  g_free (text);
  auto replace = [&c] (const std::string &from, const std::string &to) {
    size_t at = c.find (from);
    ASSERT_NE (at, std::string::npos) << from;
    c.replace (at, from.size (), to);
  };
  replace ("\"bnb_4bit_use_double_quant\": false", "\"bnb_4bit_use_double_quant\": true");
  replace ("\"lm_head\"", "\"model.layers.0.self_attn.q_proj\"");
  quant_write_file (config, c);

  // one quant_map value changed in place (the file's bytes, same size)
  std::string file = bnb + "/model-00001-of-00001.safetensors";
  gchar *bytes = nullptr;
  gsize n = 0;
  ASSERT_TRUE (g_file_get_contents (file.c_str (), &bytes, &n, nullptr));
  std::string data (bytes, n);
  g_free (bytes);
  const float v = 0.7229568362236023f, w = 0.75f;
  size_t at = data.find (std::string ((const char *)&v, sizeof v));
  ASSERT_NE (at, std::string::npos);
  data.replace (at, sizeof w, std::string ((const char *)&w, sizeof w));
  quant_write_file (file, data);

  SlimTestBnbReport r = slim_test_bnb_check (bnb);
  EXPECT_FALSE (r.ok ());
  const std::string s = r.summary ();
  EXPECT_NE (s.find ("bnb_4bit_use_double_quant must be false"), std::string::npos) << s;
  EXPECT_NE (s.find ("model.layers.0.self_attn.q_proj: quantized but in llm_int8_skip_modules"),
             std::string::npos)
      << s;
  EXPECT_NE (s.find ("quant_map: must be bitsandbytes' NF4 table"), std::string::npos) << s;
}
