// SPDX-License-Identifier: Apache-2.0
//
// test-quant-bad-inputs.cpp: `slimflow quant` on bad input.  Every case
// checks the documented exit code (2 usage/configuration found before any
// work, 1 failure during the run, 0 for warnings only), a message naming
// the problem on stderr, and that nothing is left at or beside save_path
// (no partial output, no staging folder, no work area).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <unistd.h>

#include "quant-cli-util.hpp"
#include "slim-comm.h"
#include "slim-test.h"

namespace
{

const char *const kW8A8 = "apiversion: modelslim_v1\n"
                          "spec:\n"
                          "%RUNNER%"
                          "  process:\n"
                          "    - type: linear_quant\n"
                          "      qconfig:\n"
                          "        act: {scope: per_tensor, dtype: int8, symmetric: False, method: "
                          "minmax}\n"
                          "        weight: {scope: per_channel, dtype: int8, symmetric: True, "
                          "method: minmax}\n"
                          "      include: %INCLUDE%\n"
                          "  save:\n"
                          "    - type: ascendv1_saver\n"
                          "%DATASET%";

std::string
yaml (const std::string &runner = "",
      const std::string &include = "[\"*\"]",
      const std::string &dataset = "")
{
  std::string y = kW8A8;
  auto rep = [&] (const std::string &key, const std::string &value) {
    size_t pos = y.find (key);
    y.replace (pos, key.size (), value);
  };
  rep ("%RUNNER%", runner.empty () ? "" : "  runner: " + runner + "\n");
  rep ("%INCLUDE%", include);
  rep ("%DATASET%", dataset.empty () ? "" : "  dataset: " + dataset + "\n");
  return y;
}

class QuantBadInput : public ::testing::Test
{
protected:
  void
  SetUp () override
  {
    tmp_ = slim_test_make_tmpdir ();
    save_ = tmp_ + "/out";
    config_ = tmp_ + "/w8a8.yaml";
    quant_write_file (config_, yaml ());
  }

  // A copy of stories260K in tmp (the shared data is never modified).
  std::string
  copy_model (const std::string &name)
  {
    std::string dst = tmp_ + "/" + name;
    g_mkdir_with_parents (dst.c_str (), 0755);
    for (const std::string &f : quant_list_dir (quant_stories_model ()))
      {
        gchar *data = nullptr;
        gsize n = 0;
        std::string src = quant_stories_model () + "/" + f;
        EXPECT_TRUE (g_file_get_contents (src.c_str (), &data, &n, nullptr));
        EXPECT_TRUE (g_file_set_contents ((dst + "/" + f).c_str (), data, (gssize)n, nullptr));
        g_free (data);
      }
    return dst;
  }

  // Overwrites the first float of a tensor of model.safetensors.
  void
  poke_weight (const std::string &model, const char *tensor, float value)
  {
    std::string path = model + "/model.safetensors";
    gchar *data = nullptr;
    gsize n = 0;
    ASSERT_TRUE (g_file_get_contents (path.c_str (), &data, &n, nullptr));
    guint64 header_len = 0;
    memcpy (&header_len, data, 8);
    JsonParser *parser = json_parser_new ();
    ASSERT_TRUE (json_parser_load_from_data (parser, data + 8, (gssize)header_len, nullptr));
    JsonObject *info = json_object_get_object_member (
        json_node_get_object (json_parser_get_root (parser)), tensor);
    ASSERT_NE (info, nullptr);
    gint64 begin
        = json_array_get_int_element (json_object_get_array_member (info, "data_offsets"), 0);
    memcpy (data + 8 + header_len + begin, &value, sizeof value);
    g_object_unref (parser);
    ASSERT_TRUE (g_file_set_contents (path.c_str (), data, (gssize)n, nullptr));
    g_free (data);
  }

  QuantChild
  run (std::vector<std::string> args, const QuantChildOptions &options = {})
  {
    args.push_back ("--max_samples");
    args.push_back ("2");
    args.push_back ("--max_length");
    args.push_back ("32");
    return quant_cli (args, options);
  }

  std::vector<std::string>
  std_args (const std::string &model, const std::string &config)
  {
    return { "--model_path", model, "--save_path", save_, "--config_path", config };
  }

  // The exit code, a message with `fragment`, nothing at or beside save_path.
  void
  expect_fails (const QuantChild &r, int code, const std::string &fragment)
  {
    EXPECT_EQ (r.exit_code, code) << r.err;
    EXPECT_NE (r.err.find (fragment), std::string::npos) << "stderr: " << r.err;
    EXPECT_NE (r.err.find ("slimflow quant"), std::string::npos) << r.err;
    EXPECT_FALSE (g_file_test (save_.c_str (), G_FILE_TEST_EXISTS));
    for (const std::string &name : quant_list_dir (tmp_))
      EXPECT_EQ (name.find ("out."), std::string::npos) << "left behind: " << name;
  }

  std::string tmp_, save_, config_;
};

// --- usage (exit 2) ---------------------------------------------------

TEST_F (QuantBadInput, NoArguments)
{
  expect_fails (quant_cli ({}), 2, "--model_path and --save_path are required");
}

TEST_F (QuantBadInput, MissingSavePath)
{
  expect_fails (quant_cli ({ "--model_path", quant_stories_model () }), 2, "required");
}

TEST_F (QuantBadInput, UnknownOption)
{
  expect_fails (run ({ "--model_path", quant_stories_model (), "--save_path", save_, "--bogus" }),
                2, "bogus");
}

TEST_F (QuantBadInput, ConfigPathAndQuantTypeTogether)
{
  std::vector<std::string> a = std_args (quant_stories_model (), config_);
  a.push_back ("--quant_type");
  a.push_back ("w8a8");
  expect_fails (run (a), 2, "mutually exclusive");
}

TEST_F (QuantBadInput, DeviceOtherThanCpu)
{
  std::vector<std::string> a = std_args (quant_stories_model (), config_);
  a.push_back ("--device");
  a.push_back ("npu:0");
  expect_fails (run (a), 2, "only 'cpu'");
}

TEST_F (QuantBadInput, MaxMemoryNotASize)
{
  std::vector<std::string> a = std_args (quant_stories_model (), config_);
  a.push_back ("--max_memory");
  a.push_back ("lots");
  expect_fails (run (a), 2, "--max_memory");
}

TEST_F (QuantBadInput, NegativeMaxSamples)
{
  expect_fails (quant_cli ({ "--model_path", quant_stories_model (), "--save_path", save_,
                             "--config_path", config_, "--max_samples", "-3" }),
                2, "--max_samples");
}

TEST_F (QuantBadInput, MalformedQuantType)
{
  expect_fails (run ({ "--model_path", quant_stories_model (), "--save_path", save_, "--quant_type",
                       "int8" }),
                2, "expected a label");
}

TEST_F (QuantBadInput, QuantTypeWithoutPractice)
{
  expect_fails (run ({ "--model_path", quant_stories_model (), "--save_path", save_, "--quant_type",
                       "w4a4" }),
                2, "no best practice");
}

// --- configuration (exit 2) -------------------------------------------

TEST_F (QuantBadInput, MissingConfigFile)
{
  expect_fails (run (std_args (quant_stories_model (), tmp_ + "/nope.yaml")), 2, "nope.yaml");
}

TEST_F (QuantBadInput, ConfigNotYaml)
{
  quant_write_file (config_, "spec: [unclosed\n");
  expect_fails (run (std_args (quant_stories_model (), config_)), 2, "w8a8.yaml");
}

TEST_F (QuantBadInput, WrongApiVersion)
{
  quant_write_file (config_, "apiversion: modelslim_v9\nspec: {}\n");
  expect_fails (run (std_args (quant_stories_model (), config_)), 2, "modelslim_v9");
}

TEST_F (QuantBadInput, IllegalQconfigCombination)
{
  std::string y = yaml ();
  y.replace (y.find ("per_tensor"), strlen ("per_tensor"), "per_channel");
  quant_write_file (config_, y);
  expect_fails (run (std_args (quant_stories_model (), config_)), 2, "not a legal combination");
}

TEST_F (QuantBadInput, DynamicCacheNotPerChannel)
{
  quant_write_file (config_, "apiversion: modelslim_v1\n"
                             "spec:\n"
                             "  process:\n"
                             "    - type: dynamic_cache\n"
                             "      qconfig: {scope: per_tensor, dtype: int8, symmetric: true, "
                             "method: minmax}\n"
                             "  save:\n"
                             "    - type: ascendv1_saver\n");
  expect_fails (run (std_args (quant_stories_model (), config_)), 2,
                "the KV cache is quantized with {dtype: int8, scope: per_channel, method: minmax}");
}

TEST_F (QuantBadInput, Fa3QconfigAndDetailsTogether)
{
  quant_write_file (config_,
                    "apiversion: modelslim_v1\n"
                    "spec:\n"
                    "  process:\n"
                    "    - type: fa3_quant\n"
                    "      qconfig: {scope: per_head, dtype: int8, symmetric: true, "
                    "method: minmax}\n"
                    "      details: {fa_k: {scope: per_head, dtype: int8, symmetric: true, "
                    "method: minmax}}\n"
                    "  save:\n"
                    "    - type: ascendv1_saver\n");
  expect_fails (run (std_args (quant_stories_model (), config_)), 2, "not both");
}

TEST_F (QuantBadInput, UnknownProcessor)
{
  std::string y = yaml ();
  y.replace (y.find ("linear_quant"), strlen ("linear_quant"), "magic_quant");
  quant_write_file (config_, y);
  expect_fails (run (std_args (quant_stories_model (), config_)), 2, "magic_quant");
}

// A smoothing processor before the quantizer, with one bad key.
std::string
with_smoothing (const std::string &entry)
{
  std::string y = yaml ();
  const std::string process = "  process:\n";
  y.insert (y.find (process) + process.size (), entry);
  return y;
}

TEST_F (QuantBadInput, SmoothingAlphaOutOfRange)
{
  quant_write_file (config_, with_smoothing ("    - type: smooth_quant\n      alpha: 1.5\n"));
  expect_fails (run (std_args (quant_stories_model (), config_)), 2, "alpha");
}

TEST_F (QuantBadInput, SmoothingUnknownSubgraphType)
{
  quant_write_file (config_, with_smoothing ("    - type: iter_smooth\n"
                                             "      enable_subgraph_type: [norm-linear, qkv]\n"));
  QuantChild r = run (std_args (quant_stories_model (), config_));
  expect_fails (r, 2, "unknown subgraph type 'qkv'");
  EXPECT_NE (r.err.find ("enable_subgraph_type"), std::string::npos) << r.err;
}

TEST_F (QuantBadInput, SmoothingExtraKey)
{
  quant_write_file (config_, with_smoothing ("    - type: smooth_quant\n      scale_min: 0.1\n"));
  expect_fails (run (std_args (quant_stories_model (), config_)), 2, "scale_min");
}

// A kind the model's adapter does not have: when none of the requested
// kinds exists in a layer the run stops before any weight is read, naming
// the layer and the kinds it has; when some do, the absent ones are a
// warning (msModelSlim's configs list all four kinds for every model).
TEST_F (QuantBadInput, SmoothingKindTheModelLacks)
{
  quant_write_file (config_, with_smoothing ("    - type: iter_smooth\n"
                                             "      enable_subgraph_type: ['linear-linear']\n"));
  QuantChild r = run (std_args (quant_stories_model (), config_));
  expect_fails (r, 2,
                "decoder layer 0 of this llama model has no subgraph of the requested kinds "
                "(linear-linear); its subgraph kinds are: norm-linear, ov, up-down");
}

TEST_F (QuantBadInput, SmoothingSomeKindsAbsentOnlyWarns)
{
  quant_write_file (config_,
                    with_smoothing ("    - type: iter_smooth\n"
                                    "      enable_subgraph_type: ['ov', 'linear-linear']\n"));
  QuantChild r = run (std_args (quant_stories_model (), config_));
  EXPECT_EQ (r.exit_code, 0) << r.err;
  EXPECT_NE (r.err.find ("has no linear-linear subgraph"), std::string::npos) << r.err;
  EXPECT_TRUE (g_file_test (save_.c_str (), G_FILE_TEST_IS_DIR));
}

// slimflow validate stops at the same errors, and accepts msModelSlim's
// spelling (scale_min: 1e-5, a YAML 1.1 string, read as a number).
TEST_F (QuantBadInput, SmoothingValidate)
{
  quant_write_file (config_, with_smoothing ("    - type: iter_smooth\n      alpha: -0.5\n"));
  QuantChild bad = slimflow_cli ({ "validate", "--config_path", config_ });
  EXPECT_EQ (bad.exit_code, 2) << bad.err;
  EXPECT_NE (bad.err.find ("alpha"), std::string::npos) << bad.err;
  quant_write_file (config_, with_smoothing ("    - type: iterative_smooth\n"
                                             "      alpha: 0.9\n      scale_min: 1e-5\n"));
  QuantChild good = slimflow_cli ({ "validate", "--config_path", config_ });
  EXPECT_EQ (good.exit_code, 0) << good.err;
}

// dp_layer_wise in one process: with MPI built, a processor that does not
// support distributed runs (smooth_quant) is refused before the run;
// without MPI the runner says so.
TEST_F (QuantBadInput, DpLayerWiseRefusals)
{
  std::string y = yaml ("dp_layer_wise");
  y.insert (y.find ("  process:\n") + 11, "    - type: smooth_quant\n");
  quant_write_file (config_, y);
  if (slim_comm_mpi_is_built ())
    expect_fails (run (std_args (quant_stories_model (), config_)), 2,
                  "dp_layer_wise: processor 1 (smooth_quant) does not support distributed "
                  "calibration (supports_distributed is false); use runner layer_wise");
  else
    expect_fails (run (std_args (quant_stories_model (), config_)), 2,
                  "dp_layer_wise: slimflow was built without MPI");
}

TEST_F (QuantBadInput, DatasetNotFound)
{
  quant_write_file (config_, yaml ("", "[\"*\"]", "no-such-calib.jsonl"));
  expect_fails (run (std_args (quant_stories_model (), config_)), 2,
                "dataset 'no-such-calib.jsonl' not found");
}

// --- model (exit 2 when it is not a supported model, 1 when corrupt) ----

TEST_F (QuantBadInput, ModelFolderMissing)
{
  expect_fails (run (std_args (tmp_ + "/no-model", config_)), 2, "no-model");
}

TEST_F (QuantBadInput, ModelWithoutConfigJson)
{
  std::string m = copy_model ("m");
  g_unlink ((m + "/config.json").c_str ());
  expect_fails (run (std_args (m, config_)), 2, "config.json");
}

TEST_F (QuantBadInput, UnsupportedArchitecture)
{
  std::string m = copy_model ("m");
  gchar *text = nullptr;
  ASSERT_TRUE (g_file_get_contents ((m + "/config.json").c_str (), &text, nullptr, nullptr));
  std::string cfg (text);
  g_free (text);
  cfg.replace (cfg.find ("\"llama\""), 7, "\"gpt2\"");
  quant_write_file (m + "/config.json", cfg);
  expect_fails (run (std_args (m, config_)), 2, "model_type 'gpt2' is not supported");
}

TEST_F (QuantBadInput, ModelTypeMismatch)
{
  std::vector<std::string> a = std_args (quant_stories_model (), config_);
  a.push_back ("--model_type");
  a.push_back ("qwen2");
  expect_fails (run (a), 2, "--model_type qwen2 does not match");
}

TEST_F (QuantBadInput, TruncatedSafetensors)
{
  std::string m = copy_model ("m");
  ASSERT_EQ (truncate ((m + "/model.safetensors").c_str (), 100000), 0);
  expect_fails (run (std_args (m, config_)), 1, "model.safetensors");
}

TEST_F (QuantBadInput, NanWeight)
{
  std::string m = copy_model ("m");
  poke_weight (m, "model.layers.1.self_attn.q_proj.weight", NAN);
  expect_fails (run (std_args (m, config_)), 1, "finite");
}

TEST_F (QuantBadInput, InfWeight)
{
  std::string m = copy_model ("m");
  poke_weight (m, "model.layers.3.mlp.up_proj.weight", INFINITY);
  expect_fails (run (std_args (m, config_)), 1, "finite");
}

// --- data (exit 1) ------------------------------------------------------

TEST_F (QuantBadInput, EmptyDataset)
{
  quant_write_file (tmp_ + "/empty.jsonl", "");
  quant_write_file (config_, yaml ("", "[\"*\"]", tmp_ + "/empty.jsonl"));
  expect_fails (run (std_args (quant_stories_model (), config_)), 1, "empty.jsonl");
}

// --- save_path (exit 2 refused up front, 1 when writing fails) ----------

TEST_F (QuantBadInput, SavePathEqualsModelPath)
{
  std::string m = copy_model ("m");
  save_ = m;
  QuantChild r = run ({ "--model_path", m, "--save_path", m, "--config_path", config_ });
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find ("model"), std::string::npos) << r.err;
  // the model folder is untouched
  EXPECT_EQ (quant_list_dir (m), quant_list_dir (quant_stories_model ()));
}

TEST_F (QuantBadInput, SavePathInsideModelPath)
{
  std::string m = copy_model ("m");
  QuantChild r = run ({ "--model_path", m, "--save_path", m + "/q", "--config_path", config_ });
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_EQ (quant_list_dir (m), quant_list_dir (quant_stories_model ()));
}

TEST_F (QuantBadInput, SavePathHoldsUserFiles)
{
  g_mkdir (save_.c_str (), 0755);
  quant_write_file (save_ + "/notes.txt", "mine");
  QuantChild r = run (std_args (quant_stories_model (), config_));
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find ("notes.txt"), std::string::npos) << r.err;
  EXPECT_EQ (quant_list_dir (save_), std::vector<std::string> ({ "notes.txt" }));
}

TEST_F (QuantBadInput, SavePathNotWritable)
{
  // a regular file where the parent folder should be: not writable even as root
  quant_write_file (tmp_ + "/file", "x");
  save_ = tmp_ + "/file/out";
  QuantChild r = run (std_args (quant_stories_model (), config_));
  EXPECT_NE (r.exit_code, 0) << r.err;
  EXPECT_NE (r.err.find ("file"), std::string::npos) << r.err;
  EXPECT_EQ (quant_list_dir (tmp_), std::vector<std::string> ({ "file", "w8a8.yaml" }));
}

TEST_F (QuantBadInput, DiskFull)
{
  QuantChildOptions options;
  options.fsize_limit_bytes = 200 * 1024; // the output needs about 700 KiB
  expect_fails (run (std_args (quant_stories_model (), config_), options), 1, "");
}

// --- warnings only (exit 0) ----------------------------------------------

TEST_F (QuantBadInput, IncludeMatchingNothingOnlyWarns)
{
  quant_write_file (config_, yaml ("", "[\"*no_such_module*\"]"));
  QuantChild r = run (std_args (quant_stories_model (), config_));
  EXPECT_EQ (r.exit_code, 0) << r.err;
  EXPECT_NE (r.err.find ("matched no module"), std::string::npos) << r.err;
  EXPECT_TRUE (
      g_file_test ((save_ + "/quant_model_description.json").c_str (), G_FILE_TEST_EXISTS));
}

TEST_F (QuantBadInput, TrustRemoteCodeIsIgnoredWithAWarning)
{
  std::vector<std::string> a = std_args (quant_stories_model (), config_);
  a.push_back ("--trust_remote_code");
  QuantChild r = run (a);
  EXPECT_EQ (r.exit_code, 0) << r.err;
  EXPECT_NE (r.err.find ("--trust_remote_code is ignored"), std::string::npos) << r.err;
}

} // namespace

// float_sparse: sparse_ratio outside 0..1 is a configuration error naming
// the file and line (exit 2, before any weight is read).
TEST_F (QuantBadInput, FloatSparseRatioOutOfRange)
{
  std::string config = tmp_ + "/sparse.yaml";
  quant_write_file (config, "apiversion: modelslim_v1\n"
                            "spec:\n"
                            "  process:\n"
                            "    - type: float_sparse\n"
                            "      sparse_ratio: 1.2\n"
                            "  save:\n"
                            "    - type: ascendv1_saver\n");
  expect_fails (
      run (std_args (quant_stories_model (), config)), 2,
      "sparse.yaml:5:21: process[0] (float_sparse): 'sparse-ratio' = 1.2 is outside 0..1");
}
