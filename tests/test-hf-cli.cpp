// SPDX-License-Identifier: Apache-2.0
//
// test-hf-cli.cpp: the hf_gptq_saver and hf_awq_saver through `slimflow
// quant` on stories260K:
// - examples/dense-w4a16-hf-gptq.yaml (GPTQ with act_order) and
//   dense-w4a16-hf-awq.yaml (AWQ search) give folders the checker
//   (tests/hf-checker.hpp) accepts; with scale_dtype float32 their
//   dequantized weights equal, bit for bit, what slimflow itself
//   dequantizes from the ascendv1 output of the same pipeline (what
//   `slimflow eval` runs);
// - a killed run resumed with --resume gives the uninterrupted bytes;
// - a scheme the format cannot express exits 2 naming the linear, nothing
//   at --save_path.
#include "hf-checker.hpp"
#include "quant-cli-util.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-quant-model.h"
#include "slim-safetensors.h"
}

#include <csignal>
#include <cstring>

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

std::string
read_text (const std::string &path)
{
  gchar *data = nullptr;
  EXPECT_TRUE (g_file_get_contents (path.c_str (), &data, nullptr, nullptr)) << path;
  std::string text = data != nullptr ? data : "";
  g_free (data);
  return text;
}

// The example with its save section replaced by `save` (YAML list items).
std::string
with_save (const std::string &dir,
           const std::string &example,
           const std::string &save,
           const std::string &tag)
{
  std::string text = read_text (quant_example (example));
  size_t at = text.find ("  save:\n");
  EXPECT_NE (at, std::string::npos) << example;
  if (at != std::string::npos)
    text = text.substr (0, at) + "  save:\n" + save;
  std::string path = dir + "/" + tag + "-" + example;
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

struct ExampleCase
{
  const char *name;
  const char *example;
  const char *saver; // the example's save entry with float32 scales
  const char *method;
};

class HfCliExamples : public ::testing::TestWithParam<ExampleCase>
{
};

} // namespace

TEST_P (HfCliExamples, CheckerPassesAndWeightsEqualAscendv1)
{
  const ExampleCase &c = GetParam ();
  std::string tmp = slim_test_make_tmpdir ();
  std::string hf16 = tmp + "/hf16", hf32 = tmp + "/hf32", ascend = tmp + "/ascend";
  QuantChild a = quant_cli (quant_args (hf16, quant_example (c.example)));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  QuantChild b = quant_cli (quant_args (hf32, with_save (tmp, c.example, c.saver, "f32")));
  ASSERT_EQ (b.exit_code, 0) << b.err;
  QuantChild d = quant_cli (quant_args (
      ascend, with_save (tmp, c.example, "    - type: \"ascendv1_saver\"\n", "ascend")));
  ASSERT_EQ (d.exit_code, 0) << d.err;

  for (const std::string &dir : { hf16, hf32 })
    {
      SlimTestHfReport report = slim_test_hf_check (dir);
      EXPECT_TRUE (report.ok ()) << dir << ":\n" << report.summary ();
      EXPECT_EQ (report.method, c.method);
      EXPECT_EQ (report.quantized.size (), 5u * 4u);
    }

  // slimflow's own dequantization of the ascendv1 folder
  GError *error = nullptr;
  SlimQuantModel *qm = slim_quant_model_load (ascend.c_str (), &error);
  ASSERT_NE (qm, nullptr) << (error ? error->message : "");
  EXPECT_EQ (slim_quant_model_get_n_quantized (qm), 5u * 4u);
  std::string float_file = std::string (slim_quant_model_get_float_dir (qm)) + "/model.safetensors";
  size_t compared = 0;
  for (const std::string &module : slim_test_hf_check (hf32).quantized)
    {
      std::vector<float> w;
      int64_t n_out = 0, n_in = 0;
      std::string why;
      ASSERT_TRUE (slim_test_hf_dequantize (hf32, module, &w, &n_out, &n_in, &why)) << why;
      bool found = false;
      std::vector<float> ref = read_f32 (float_file, module + ".weight", &found);
      ASSERT_TRUE (found) << module;
      ASSERT_EQ (w.size (), ref.size ()) << module;
      // bit for bit: both are float32 (q - zero_point) * scale
      EXPECT_EQ (std::memcmp (w.data (), ref.data (), w.size () * sizeof (float)), 0) << module;
      compared++;
    }
  EXPECT_EQ (compared, 5u * 4u);
  std::printf ("[ figure   ] %s: %zu linears equal to the ascendv1 folder's dequantization\n",
               c.name, compared);
  slim_quant_model_free (qm);
}

INSTANTIATE_TEST_SUITE_P (
    Stories,
    HfCliExamples,
    ::testing::Values (
        ExampleCase{ "Gptq", "dense-w4a16-hf-gptq.yaml",
                     "    - type: \"hf_gptq_saver\"\n      scale_dtype: \"float32\"\n", "gptq" },
        ExampleCase{ "Awq", "dense-w4a16-hf-awq.yaml",
                     "    - type: \"hf_awq_saver\"\n      scale_dtype: \"float32\"\n", "awq" }),
    [] (const ::testing::TestParamInfo<ExampleCase> &info) {
      return std::string (info.param.name);
    });

TEST (HfCli, KilledRunResumesToTheSameBytes)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = quant_example ("dense-w4a16-hf-gptq.yaml");
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
  EXPECT_TRUE (slim_test_hf_check (save).ok ()) << slim_test_hf_check (save).summary ();
}

TEST (HfCli, InexpressibleSchemeExits2AndWritesNothing)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/w8a8-awq.yaml";
  quant_write_file (config, "apiversion: modelslim_v1\n"
                            "spec:\n"
                            "  process:\n"
                            "    - type: linear_quant\n"
                            "      qconfig:\n"
                            "        act: {scope: per_token, dtype: int8, symmetric: true, "
                            "method: minmax}\n"
                            "        weight: {scope: per_channel, dtype: int8, symmetric: true, "
                            "method: minmax}\n"
                            "      include: [\"*\"]\n"
                            "  save:\n"
                            "    - type: hf_awq_saver\n");
  std::string save = tmp + "/out";
  QuantChild r = quant_cli (quant_args (save, config));
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find ("model.layers.0.self_attn.q_proj (W8A8_DYNAMIC): hf_awq_saver cannot "
                         "save this linear: act"),
             std::string::npos)
      << r.err;
  EXPECT_FALSE (g_file_test (save.c_str (), G_FILE_TEST_EXISTS));
  for (const std::string &f : quant_list_dir (tmp))
    EXPECT_EQ (f.find ("slimflow-tmp"), std::string::npos) << f;
}
