// SPDX-License-Identifier: Apache-2.0
//
// test-quant-cli.cpp: `slimflow quant` end to end: every example YAML and
// every shipped practice writes a folder the ascendv1 checker accepts;
// layer_wise and model_wise, spilling and not, and two runs in a row give
// byte-identical files; a run killed after a layer leaves nothing at
// save_path and --resume completes it with the same bytes.
//
// Calibration uses 4 samples of at most 64 tokens (--max_samples,
// --max_length) to keep the suite fast.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <csignal>

#include <json-glib/json-glib.h>
#include <string>

#include "ascendv1-checker.hpp"
#include "quant-cli-util.hpp"
#include "slim-test.h"

namespace
{

const std::vector<std::string> kFastCalib = { "--max_samples", "4", "--max_length", "64" };

std::vector<std::string>
quant_args (const std::string &model, const std::string &save, const std::string &config)
{
  std::vector<std::string> a = { "--model_path", model, "--save_path", save };
  if (!config.empty ())
    {
      a.push_back ("--config_path");
      a.push_back (config);
    }
  a.insert (a.end (), kFastCalib.begin (), kFastCalib.end ());
  return a;
}

// The example with `runner:` set under spec.
std::string
with_runner (const std::string &dir, const std::string &example, const std::string &runner)
{
  gchar *text = nullptr;
  EXPECT_TRUE (g_file_get_contents (quant_example (example).c_str (), &text, nullptr, nullptr));
  std::string yaml (text != nullptr ? text : "");
  g_free (text);
  size_t pos = yaml.find ("\nspec:\n");
  EXPECT_NE (pos, std::string::npos);
  yaml.insert (pos + 7, "  runner: " + runner + "\n");
  std::string path = dir + "/" + runner + "-" + example;
  quant_write_file (path, yaml);
  return path;
}

void
expect_checker_ok (const std::string &dir, const std::string &quant_type)
{
  SlimTestAscendv1Options options;
  options.expected_model_quant_type = quant_type;
  SlimTestAscendv1Report report = slim_test_ascendv1_check (dir, options);
  EXPECT_TRUE (report.ok ()) << dir << ":\n" << report.summary ();
}

struct ExampleCase
{
  const char *yaml;
  const char *model; // relative to the shared dir
  const char *quant_type;
  bool data_free = false; // no calibration forward: no per-layer error to report
};

class QuantExample : public ::testing::TestWithParam<ExampleCase>
{
};

TEST_P (QuantExample, WritesAFolderTheCheckerAccepts)
{
  const ExampleCase &c = GetParam ();
  std::string tmp = slim_test_make_tmpdir ();
  std::string save = tmp + "/out";
  QuantChild r
      = quant_cli (quant_args (slim_test_shared_path (c.model), save, quant_example (c.yaml)));
  ASSERT_EQ (r.exit_code, 0) << r.err;
  expect_checker_ok (save, c.quant_type);
  // the summary: wall time, peak memory, one relative error per layer
  // (weight-only and dynamic pipelines use no calibration data: nothing
  // to measure on, and the summary says so)
  EXPECT_NE (r.out.find ("wall time"), std::string::npos) << r.out;
  EXPECT_NE (r.out.find ("peak resident memory"), std::string::npos) << r.out;
  EXPECT_NE (r.out.find (c.data_free ? "not measured" : "relative output error"), std::string::npos)
      << r.out;
  // nothing left beside the output
  EXPECT_EQ (quant_list_dir (tmp), std::vector<std::string> ({ "out" }));
}

INSTANTIATE_TEST_SUITE_P (
    Examples,
    QuantExample,
    ::testing::Values (
        ExampleCase{ "dense-w8a8.yaml", "models/stories260K", "W8A8" },
        ExampleCase{ "dense-w8a8-smooth-quant.yaml", "models/stories260K", "W8A8" },
        ExampleCase{ "dense-w8a8-iter-smooth.yaml", "models/stories260K", "W8A8" },
        ExampleCase{ "dense-w8a8-smooth-quant.yaml", "models/synthetic/tiny-random-qwen2", "W8A8" },
        ExampleCase{ "dense-w8a8-iter-smooth.yaml", "models/synthetic/tiny-random-qwen2", "W8A8" },
        ExampleCase{ "dense-w8a8-iter-smooth.yaml", "models/synthetic/tiny-random-mistral",
                     "W8A8" },
        ExampleCase{ "dense-w8a8-dynamic.yaml", "models/stories260K", "W8A8_DYNAMIC", true },
        ExampleCase{ "dense-w8a8-dynamic-iter-smooth.yaml", "models/stories260K", "W8A8_DYNAMIC" },
        ExampleCase{ "dense-w8a8-dynamic-iter-smooth.yaml",
                     "models/synthetic/tiny-random-qwen2-moe", "W8A8_DYNAMIC" },
        ExampleCase{ "dense-w8a8-dynamic-quarot.yaml", "models/stories260K", "W8A8_DYNAMIC", true },
        ExampleCase{ "dense-w8a8-dynamic-quarot.yaml", "models/synthetic/tiny-random-qwen2-moe",
                     "W8A8_DYNAMIC", true },
        ExampleCase{ "dense-w4a4-dynamic-quarot.yaml", "models/stories260K", "W4A4_DYNAMIC", true },
        ExampleCase{ "dense-w4a4-dynamic-quarot-online.yaml",
                     "models/synthetic/tiny-random-llama-untied", "W4A4_DYNAMIC", true },
        ExampleCase{ "dense-w4a4-dynamic-quarot-online-hadamard.yaml", "models/stories260K",
                     "W4A4_DYNAMIC", true },
        ExampleCase{ "dense-w8a16.yaml", "models/stories260K", "W8A16", true },
        ExampleCase{ "dense-w4a16-per-group.yaml", "models/stories260K", "W4A16", true },
        ExampleCase{ "dense-w4a16-hqq.yaml", "models/stories260K", "W4A16", true },
        ExampleCase{ "dense-w4a16-nf4.yaml", "models/stories260K", "NF4", true },
        ExampleCase{ "dense-w4a16-nf4.yaml", "models/synthetic/tiny-random-qwen2", "NF4", true },
        ExampleCase{ "dense-w8a8-c8.yaml", "models/stories260K", "W8A8" },
        ExampleCase{ "dense-w8a8-c8.yaml", "models/synthetic/tiny-random-qwen2", "W8A8" },
        ExampleCase{ "dense-w8a8-c8-ifmr.yaml", "models/stories260K", "W8A8" },
        ExampleCase{ "dense-w8a8-fa3.yaml", "models/stories260K", "W8A8" },
        ExampleCase{ "dense-float-sparse.yaml", "models/stories260K", "W16A16S" },
        ExampleCase{ "dense-float-sparse.yaml", "models/synthetic/tiny-random-qwen2", "W16A16S" },
        ExampleCase{ "dense-w4a16-gptq.yaml", "models/stories260K", "W4A16" },
        ExampleCase{ "dense-w8a8-histogram.yaml", "models/stories260K", "W8A8" },
        ExampleCase{ "dense-w8a8-kv-smooth.yaml", "models/stories260K", "W8A8" },
        ExampleCase{ "dense-w8a8-kv-smooth.yaml", "models/synthetic/tiny-random-qwen2", "W8A8" },
        ExampleCase{ "dense-w4a16-awq.yaml", "models/stories260K", "W4A16" },
        ExampleCase{ "dense-w8a8-mix-pdmix.yaml", "models/stories260K", "W8A8_MIX" },
        ExampleCase{ "dense-w8a8-mxfp8.yaml", "models/stories260K", "W8A8_MXFP8", true },
        ExampleCase{ "dense-w4a8-mxfp.yaml", "models/stories260K", "W4A8_MXFP", true },
        ExampleCase{ "dense-w4a4-mxfp4.yaml", "models/stories260K", "W4A4_MXFP4", true },
        ExampleCase{ "dense-w8a8-mxfp8.yaml", "models/synthetic/tiny-random-qwen2", "W8A8_MXFP8",
                     true },
        ExampleCase{ "dense-wfp8afp8-dynamic.yaml", "models/stories260K", "WFP8AFP8_DYNAMIC",
                     true },
        ExampleCase{ "dense-wfp8afp8-dynamic.yaml", "models/synthetic/tiny-random-qwen2",
                     "WFP8AFP8_DYNAMIC", true },
        ExampleCase{ "dense-w4a4-mxfp4.yaml", "models/synthetic/tiny-random-qwen2-moe",
                     "W4A4_MXFP4", true },
        ExampleCase{ "dense-w4a4-mxfp4-dualscale.yaml", "models/stories260K",
                     "W4A4_MXFP4_DUALSCALE", true },
        ExampleCase{ "dense-w4a4-mxfp4-dualscale.yaml", "models/synthetic/tiny-random-qwen2",
                     "W4A4_MXFP4_DUALSCALE", true },
        ExampleCase{ "dense-w4a4-mxfp4-ceil-x.yaml", "models/stories260K", "W4A4_MXFP4", true },
        // fouroversix needs whole blocks: stories260K's down_proj (172 inputs)
        // is refused (test-mx-cli.cpp), tiny-random-qwen2's widths are 64 / 128
        ExampleCase{ "dense-w4a4-mxfp4-fouroversix.yaml", "models/synthetic/tiny-random-qwen2",
                     "W4A4_MXFP4", true },
        ExampleCase{ "dense-w8a8-mxfp8-mse-round.yaml", "models/stories260K", "W8A8_MXFP8", true },
        // W4A8_DYNAMIC is deliberately not in msModelSlim's model_quant_type
        // priority list (spec 3.1): the float norms make the model "FLOAT"
        ExampleCase{ "dense-w4a8-dynamic.yaml", "models/stories260K", "FLOAT", true },
        ExampleCase{ "dense-w4a8-dynamic-ssz.yaml", "models/stories260K", "FLOAT", true },
        ExampleCase{ "moe-w8a8-mix.yaml", "models/stories260K", "" },
        ExampleCase{ "moe-w8a8-mix.yaml", "models/synthetic/tiny-random-mixtral-moe", "" },
        ExampleCase{ "moe-w8a8-mix.yaml", "models/synthetic/tiny-random-qwen2-moe", "" }));

// Relative error figures are parsed from the summary: every layer's error
// is finite, positive (the layer was quantized) and small (< 10%: W8A8 on
// stories260K measures about 1%, W4A16 GPTQ about 7%).  GPTQ quantizes the
// weights after its calibration forward: the error must be that of the
// deployed layer, not of the float-weight forward (which measured 0).
TEST (QuantCli, SummaryReportsPerLayerErrors)
{
  std::string tmp = slim_test_make_tmpdir ();
  for (const char *example : { "dense-w8a8.yaml", "dense-w4a16-gptq.yaml" })
    {
      SCOPED_TRACE (example);
      QuantChild r = quant_cli (
          quant_args (quant_stories_model (), tmp + "/out-" + example, quant_example (example)));
      ASSERT_EQ (r.exit_code, 0) << r.err;
      int n_layers = 0;
      gchar **lines = g_strsplit (r.out.c_str (), "\n", -1);
      for (gchar **l = lines; *l != nullptr; l++)
        {
          unsigned index;
          double err;
          if (sscanf (*l, "%u %lf", &index, &err) == 2)
            {
              EXPECT_EQ ((int)index, n_layers);
              EXPECT_GT (err, 1e-4);
              EXPECT_LT (err, 0.1);
              n_layers++;
            }
        }
      g_strfreev (lines);
      EXPECT_EQ (n_layers, 5) << r.out;
    }
}

TEST (QuantCli, ModelWiseEqualsLayerWise)
{
  std::string tmp = slim_test_make_tmpdir ();
  for (const char *example : { "dense-w8a8.yaml", "moe-w8a8-mix.yaml" })
    {
      std::string model = std::string (example) == "moe-w8a8-mix.yaml"
                              ? slim_test_shared_path ("models/synthetic/tiny-random-mixtral-moe")
                              : quant_stories_model ();
      std::string lw = tmp + "/lw-" + example, mw = tmp + "/mw-" + example;
      QuantChild a = quant_cli (quant_args (model, lw, with_runner (tmp, example, "layer_wise")));
      QuantChild b = quant_cli (quant_args (model, mw, with_runner (tmp, example, "model_wise")));
      ASSERT_EQ (a.exit_code, 0) << a.err;
      ASSERT_EQ (b.exit_code, 0) << b.err;
      auto da = quant_folder_digests (lw), db = quant_folder_digests (mw);
      EXPECT_GE (da.size (), 4u);
      EXPECT_EQ (da, db) << example;
    }
}

TEST (QuantCli, SpillingChangesNoByte)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = quant_example ("dense-w8a8.yaml");
  QuantChildOptions hdf5;
  hdf5.env = { { "SLIM_SPILL", "hdf5" } };
  QuantChild a = quant_cli (quant_args (quant_stories_model (), tmp + "/resident", config));
  // 1 byte of budget: every sample goes to the HDF5 file and is read back
  std::vector<std::string> args = quant_args (quant_stories_model (), tmp + "/spilled", config);
  args.push_back ("--max_memory");
  args.push_back ("1");
  QuantChild b = quant_cli (args, hdf5);
  // a budget that holds some samples only
  args = quant_args (quant_stories_model (), tmp + "/partly", config);
  args.push_back ("--max_memory");
  args.push_back ("40K");
  QuantChild c = quant_cli (args, hdf5);
  ASSERT_EQ (a.exit_code, 0) << a.err;
  ASSERT_EQ (b.exit_code, 0) << b.err;
  ASSERT_EQ (c.exit_code, 0) << c.err;
  auto da = quant_folder_digests (tmp + "/resident");
  EXPECT_EQ (da, quant_folder_digests (tmp + "/spilled"));
  EXPECT_EQ (da, quant_folder_digests (tmp + "/partly"));
  // the work area (with spill.h5) is gone after a successful run
  EXPECT_EQ (quant_list_dir (tmp), std::vector<std::string> ({ "partly", "resident", "spilled" }));
}

TEST (QuantCli, TwoRunsInARowAreIdentical)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = quant_example ("dense-w4a16-per-group.yaml");
  QuantChild a = quant_cli (quant_args (quant_stories_model (), tmp + "/out", config));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  auto first = quant_folder_digests (tmp + "/out");
  // the second run replaces the first output in place (a slimflow output)
  QuantChild b = quant_cli (quant_args (quant_stories_model (), tmp + "/out", config));
  ASSERT_EQ (b.exit_code, 0) << b.err;
  EXPECT_EQ (first, quant_folder_digests (tmp + "/out"));
  EXPECT_EQ (quant_list_dir (tmp), std::vector<std::string> ({ "out" }));
}

TEST (QuantCli, KilledRunLeavesNothingAndResumeCompletesIt)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = quant_example ("dense-w8a8.yaml");
  QuantChildOptions hdf5;
  hdf5.env = { { "SLIM_SPILL", "hdf5" } };
  QuantChild ref = quant_cli (quant_args (quant_stories_model (), tmp + "/ref", config), hdf5);
  ASSERT_EQ (ref.exit_code, 0) << ref.err;

  QuantChildOptions kill = hdf5;
  kill.env.push_back ({ "SLIMFLOW_TEST_KILL_AFTER_LAYER", "2" });
  std::string save = tmp + "/out";
  QuantChild killed = quant_cli (quant_args (quant_stories_model (), save, config), kill);
  EXPECT_EQ (killed.term_signal, SIGKILL) << killed.err;
  EXPECT_FALSE (g_file_test (save.c_str (), G_FILE_TEST_EXISTS));
  EXPECT_TRUE (g_file_test ((save + ".slimflow-work/checkpoint.h5").c_str (), G_FILE_TEST_EXISTS));

  // a different config is not the interrupted run: refused, work area kept
  std::vector<std::string> other
      = quant_args (quant_stories_model (), save, quant_example ("dense-w8a16.yaml"));
  other.push_back ("--resume");
  QuantChild refused = quant_cli (other, hdf5);
  EXPECT_EQ (refused.exit_code, 2) << refused.err;
  EXPECT_NE (refused.err.find ("config"), std::string::npos) << refused.err;
  EXPECT_FALSE (g_file_test (save.c_str (), G_FILE_TEST_EXISTS));

  // The resumed run is asked to die after layer 2 again: it does not,
  // because it never redoes layers 0-2 (a run that recomputed them would
  // be killed here).
  std::vector<std::string> args = quant_args (quant_stories_model (), save, config);
  args.push_back ("--resume");
  QuantChild resumed = quant_cli (args, kill);
  ASSERT_EQ (resumed.exit_code, 0) << resumed.err;
  EXPECT_NE (resumed.err.find ("continuing with layer 3"), std::string::npos) << resumed.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/ref"), quant_folder_digests (save));
  EXPECT_EQ (quant_list_dir (tmp), std::vector<std::string> ({ "out", "ref" }));
  // the summary still lists every layer's error (the first three from the
  // checkpoint), with the values of the uninterrupted run
  auto error_lines = [] (const std::string &out) {
    std::string lines;
    size_t at = out.find ("relative output error");
    return at == std::string::npos ? lines : out.substr (out.find ('\n', at));
  };
  std::string ref_errors = error_lines (ref.out);
  EXPECT_NE (ref_errors.find ("\n    4  "), std::string::npos) << ref.out;
  EXPECT_EQ (error_lines (resumed.out), ref_errors) << resumed.out;
}

// Several kills in a row, each resumed, for pipelines that exercise every
// kind of state: calibration inputs spilled to HDF5 (static W8A8), no
// calibration data at all (data-free W4A16), a `group` of two linear_quant
// children with include patterns (MoE), the mindie saver, and float_sparse
// (the extra forward after pruning feeds the checkpointed inputs).
struct ResumeCase
{
  const char *name;
  const char *example; // or "" for the inline mindie config
  const char *model;   // relative to the shared folder; "" = stories260K
  std::vector<const char *> kills;
};

class QuantResume : public ::testing::TestWithParam<ResumeCase>
{
};

TEST_P (QuantResume, ChainOfKillsGivesTheUninterruptedBytes)
{
  const ResumeCase &c = GetParam ();
  std::string tmp = slim_test_make_tmpdir ();
  std::string model = c.model[0] != '\0' ? slim_test_shared_path (c.model) : quant_stories_model ();
  std::string config = tmp + "/mindie.yaml";
  if (c.example[0] != '\0')
    config = quant_example (c.example);
  else
    quant_write_file (config, "apiversion: modelslim_v1\n"
                              "spec:\n"
                              "  process:\n"
                              "    - type: linear_quant\n"
                              "      qconfig:\n"
                              "        act: {scope: per_token, dtype: int8, symmetric: true, "
                              "method: minmax}\n"
                              "        weight: {scope: per_channel, dtype: int8, symmetric: true, "
                              "method: minmax}\n"
                              "      include: ['*']\n"
                              "  save:\n"
                              "    - type: mindie_format_saver\n"
                              "      part_file_size: 0\n");
  QuantChildOptions spill;
  spill.env = { { "SLIM_SPILL", "hdf5" } };
  std::vector<std::string> ref_args = quant_args (model, tmp + "/ref", config);
  QuantChild ref = quant_cli (ref_args, spill);
  ASSERT_EQ (ref.exit_code, 0) << ref.err;

  std::string save = tmp + "/out";
  for (size_t k = 0; k < c.kills.size (); k++)
    {
      QuantChildOptions kill = spill;
      kill.env.push_back ({ "SLIMFLOW_TEST_KILL_AFTER_LAYER", c.kills[k] });
      std::vector<std::string> args = quant_args (model, save, config);
      args.push_back ("--max_memory");
      args.push_back ("1");
      if (k > 0)
        args.push_back ("--resume");
      QuantChild killed = quant_cli (args, kill);
      ASSERT_EQ (killed.term_signal, SIGKILL) << "kill " << k << ": " << killed.err;
      if (k > 0)
        {
          EXPECT_NE (killed.err.find ("resuming"), std::string::npos) << killed.err;
        }
    }
  std::vector<std::string> args = quant_args (model, save, config);
  args.push_back ("--resume");
  QuantChild resumed = quant_cli (args, spill);
  ASSERT_EQ (resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/ref"), quant_folder_digests (save));
  std::vector<std::string> expected = { "out", "ref" };
  if (c.example[0] == '\0')
    expected.insert (expected.begin (), "mindie.yaml");
  EXPECT_EQ (quant_list_dir (tmp), expected) << "no work area or staging folder is left";
  EXPECT_FALSE (g_file_test ((save + ".slimflow-work").c_str (), G_FILE_TEST_EXISTS));
}

INSTANTIATE_TEST_SUITE_P (
    Pipelines,
    QuantResume,
    ::testing::Values (ResumeCase{ "static", "dense-w8a8.yaml", "", { "0", "3" } },
                       ResumeCase{ "iter_smooth", "dense-w8a8-iter-smooth.yaml", "", { "1" } },
                       ResumeCase{ "datafree", "dense-w4a16-per-group.yaml", "", { "1", "2" } },
                       ResumeCase{ "gptq", "dense-w4a16-gptq.yaml", "", { "0", "3" } },
                       ResumeCase{ "float_sparse", "dense-float-sparse.yaml", "", { "1", "3" } },
                       ResumeCase{ "group",
                                   "moe-w8a8-mix.yaml",
                                   "models/synthetic/tiny-random-mixtral-moe",
                                   { "0" } },
                       ResumeCase{ "mindie", "", "", { "4" } },
                       // dynamic_cache / fa3_quant: per-layer observers, pattern hits and
                       // the saver's attention and global keys cross the checkpoint
                       ResumeCase{ "c8", "dense-w8a8-c8.yaml", "", { "1", "3" } },
                       ResumeCase{ "fa3", "dense-w8a8-fa3.yaml", "", { "2" } },
                       ResumeCase{ "kv_smooth", "dense-w8a8-kv-smooth.yaml", "", { "1", "3" } },
                       ResumeCase{ "awq", "dense-w4a16-awq.yaml", "", { "2" } }),
    [] (const ::testing::TestParamInfo<ResumeCase> &info) {
      return std::string (info.param.name);
    });

struct PracticeCase
{
  const char *quant_type;
  const char *model_quant_type;
  const char *example; // the YAML the practice's spec equals
};

class QuantPractice : public ::testing::TestWithParam<PracticeCase>
{
};

TEST_P (QuantPractice, QuantTypeSelectsTheShippedPractice)
{
  const PracticeCase &c = GetParam ();
  std::string tmp = slim_test_make_tmpdir ();
  std::vector<std::string> args = quant_args (quant_stories_model (), tmp + "/practice", "");
  if (c.quant_type[0] != '\0')
    {
      args.push_back ("--quant_type");
      args.push_back (c.quant_type);
    }
  QuantChild r = quant_cli (args);
  ASSERT_EQ (r.exit_code, 0) << r.err;
  expect_checker_ok (tmp + "/practice", c.model_quant_type);
  // same spec as the example: the same bytes
  QuantChild e = quant_cli (
      quant_args (quant_stories_model (), tmp + "/example", quant_example (c.example)));
  ASSERT_EQ (e.exit_code, 0) << e.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/practice"), quant_folder_digests (tmp + "/example"));
}

INSTANTIATE_TEST_SUITE_P (
    Practices,
    QuantPractice,
    // w8a8 (the default) is msModelSlim's default-w8a8: iter_smooth then
    // per-token int8, which its saver labels W8A8_DYNAMIC
    ::testing::Values (PracticeCase{ "", "W8A8_DYNAMIC", "dense-w8a8-dynamic-iter-smooth.yaml" },
                       PracticeCase{ "w8a8", "W8A8_DYNAMIC",
                                     "dense-w8a8-dynamic-iter-smooth.yaml" },
                       PracticeCase{ "w8a8_dynamic", "W8A8_DYNAMIC", "dense-w8a8-dynamic.yaml" },
                       PracticeCase{ "w8a16", "W8A16", "dense-w8a16.yaml" },
                       PracticeCase{ "w4a16", "W4A16", "dense-w4a16-per-group.yaml" }));

// Configs written in the shape of msModelSlim's lab_practice YAMLs
// (tests/fixtures/msmodelslim-style: anchors aliased as qconfig, quoted
// subgraph names, trailing blanks, dataset short names, default_text) pass
// `slimflow validate` unchanged and run, on the model of their kind.
struct StyleCase
{
  const char *yaml;
  const char *model; // relative to the shared dir
  const char *quant_type;
};

class MsModelSlimStyle : public ::testing::TestWithParam<StyleCase>
{
};

TEST_P (MsModelSlimStyle, ValidatesAndRunsUnchanged)
{
  const StyleCase &c = GetParam ();
  std::string yaml = std::string (g_getenv ("SLIMFLOW_SOURCE_DIR"))
                     + "/tests/fixtures/msmodelslim-style/" + c.yaml;
  QuantChild v = slimflow_cli ({ "validate", "--config_path", yaml });
  EXPECT_EQ (v.exit_code, 0) << v.out << v.err;
  EXPECT_NE (v.out.find ("valid (modelslim_v1"), std::string::npos) << v.out;

  std::string tmp = slim_test_make_tmpdir ();
  QuantChild r = quant_cli (quant_args (slim_test_shared_path (c.model), tmp + "/out", yaml));
  ASSERT_EQ (r.exit_code, 0) << r.err;
  expect_checker_ok (tmp + "/out", c.quant_type);
}

INSTANTIATE_TEST_SUITE_P (
    Configs,
    MsModelSlimStyle,
    ::testing::Values (
        StyleCase{ "default-w8a8.yaml", "models/stories260K", "W8A8_DYNAMIC" },
        StyleCase{ "dense-w8a8c8-pdmix.yaml", "models/stories260K", "W8A8_MIX" },
        StyleCase{ "dense-w16a16s.yaml", "models/stories260K", "W16A16S" },
        StyleCase{ "moe-experts-w8a8-dynamic.yaml", "models/synthetic/tiny-random-qwen2-moe", "" },
        StyleCase{ "moe-w8a8-mix-anchors.yaml", "models/synthetic/tiny-random-qwen2-moe", "" }));

// default_text is accepted (msModelSlim's text service ignores it) with a
// warning that it has no effect; an empty one is rejected at its place.
TEST (QuantCli, DefaultTextIsAcceptedWithAWarning)
{
  std::string yaml = std::string (g_getenv ("SLIMFLOW_SOURCE_DIR"))
                     + "/tests/fixtures/msmodelslim-style/moe-experts-w8a8-dynamic.yaml";
  QuantChild v = slimflow_cli ({ "validate", "--config_path", yaml });
  EXPECT_EQ (v.exit_code, 0) << v.err;
  EXPECT_NE (v.err.find ("default_text"), std::string::npos) << v.err;
  EXPECT_NE (v.err.find ("no effect"), std::string::npos) << v.err;

  std::string tmp = slim_test_make_tmpdir ();
  quant_write_file (tmp + "/empty.yaml", "apiversion: modelslim_v1\n"
                                         "spec:\n"
                                         "  process:\n"
                                         "    - type: float_sparse\n"
                                         "  default_text: \"\"\n");
  QuantChild e = slimflow_cli ({ "validate", "--config_path", tmp + "/empty.yaml" });
  EXPECT_EQ (e.exit_code, 2);
  EXPECT_NE (e.err.find ("empty.yaml:5:17: spec: 'default_text' must be a non-empty string"),
             std::string::npos)
      << e.out << e.err;
  EXPECT_NE (e.err.find ("1 error"), std::string::npos) << e.err;
}

TEST (QuantCli, HelpDocumentsExitCodes)
{
  QuantChild r = quant_cli ({ "--help" });
  EXPECT_EQ (r.exit_code, 0);
  EXPECT_NE (r.out.find ("Exit status: 0"), std::string::npos) << r.out;
}

} // namespace

namespace
{

// `slimflow eval --json` figures of a model folder against stories260K.
struct EvalFigures
{
  double perplexity = NAN;
  double kl = NAN;
  double top1 = NAN;
};

EvalFigures
eval_against_float (const std::string &model)
{
  EvalFigures f;
  QuantChild r
      = slimflow_cli ({ "eval", "--model_path", model, "--text",
                        slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt"), "--ctx",
                        "512", "--reference_model", quant_stories_model (), "--json" });
  EXPECT_EQ (r.exit_code, 0) << r.err;
  JsonParser *parser = json_parser_new ();
  if (json_parser_load_from_data (parser, r.out.c_str (), -1, nullptr))
    {
      JsonObject *o = json_node_get_object (json_parser_get_root (parser));
      f.perplexity = json_object_get_double_member (o, "perplexity");
      f.kl = json_object_get_double_member (o, "kl");
      f.top1 = json_object_get_double_member (o, "top1");
    }
  else
    ADD_FAILURE () << "not JSON: " << r.out;
  g_object_unref (parser);
  return f;
}

// Closing the loop: the saved folder, run by `slimflow eval` with its
// saved quantization, stays within +0.5% of the float perplexity (5.538
// on this text at ctx 512, measured by `slimflow eval` on the float
// model) for the 8-bit weight schemes with dynamic or float activations.
// Measured with the full lab_calib set: W8A8_DYNAMIC 5.5377, W8A16
// 5.5402; the 4-sample calibration used here does not matter for them
// (dynamic activations and minmax weights need no activation statistics).
TEST (QuantCli, QuantizedPerplexityWithinHalfAPercent)
{
  const double float_ppl = 5.538;
  std::string tmp = slim_test_make_tmpdir ();
  for (const char *example : { "dense-w8a8-dynamic.yaml", "dense-w8a16.yaml" })
    {
      std::string save = tmp + "/" + example;
      QuantChild q = quant_cli (quant_args (quant_stories_model (), save, quant_example (example)));
      ASSERT_EQ (q.exit_code, 0) << q.err;
      EvalFigures f = eval_against_float (save);
      EXPECT_LE (f.perplexity, float_ppl * 1.005) << example;
      EXPECT_GT (f.perplexity, float_ppl * 0.99) << example; // not a different model
      // quantized: some divergence, but little (measured 5e-4 .. 7e-4 nats)
      EXPECT_GT (f.kl, 0.0) << example;
      EXPECT_LT (f.kl, 0.01) << example;
    }
}

// The FP8 and MX examples (WFP8AFP8_DYNAMIC, W8A8_MXFP8, W4A8_MXFP,
// W4A4_MXFP4) run in `slimflow eval` with their saved weights and
// activations quantized as deployed (per token / blocks of 32 per token).
// Measured on this text at ctx 512 (float PPL 5.538):
//   WFP8AFP8_DYNAMIC  PPL 5.603  KL 0.0136  top-1 0.930
//   W8A8_MXFP8        PPL 5.612  KL 0.0193  top-1 0.918
//   W4A8_MXFP         PPL 6.897  KL 0.220   top-1 0.745
//   W4A4_MXFP4        PPL 8.369  KL 0.429   top-1 0.639
// (a 260K-parameter model with 64 hidden features has little redundancy
// for 4-bit elements).  The bounds check the ordering and rough size: the
// 8-bit formats within 2% of float, each 4-bit step costing more, none a
// different model (PPL < 2x float, top-1 > 0.5).
TEST (QuantCli, Fp8AndMxExamplesEvaluate)
{
  const double float_ppl = 5.538;
  std::string tmp = slim_test_make_tmpdir ();
  EvalFigures prev;
  for (const char *example : { "dense-wfp8afp8-dynamic.yaml", "dense-w8a8-mxfp8.yaml",
                               "dense-w4a8-mxfp.yaml", "dense-w4a4-mxfp4.yaml" })
    {
      std::string save = tmp + "/" + example;
      QuantChild q = quant_cli (quant_args (quant_stories_model (), save, quant_example (example)));
      ASSERT_EQ (q.exit_code, 0) << q.err;
      EvalFigures f = eval_against_float (save);
      printf ("%s: PPL %.4f KL %.4f top-1 %.4f\n", example, f.perplexity, f.kl, f.top1);
      EXPECT_GT (f.perplexity, float_ppl) << example;
      EXPECT_LT (f.perplexity, 2.0 * float_ppl) << example;
      EXPECT_GT (f.top1, 0.5) << example;
      EXPECT_GT (f.kl, 0.0) << example;
      if (std::string (example).find ("mxfp8") != std::string::npos
          || std::string (example).find ("fp8afp8") != std::string::npos)
        {
          EXPECT_LT (f.perplexity, 1.02 * float_ppl) << example;
          EXPECT_LT (f.kl, 0.05) << example;
        }
      else
        {
          EXPECT_GT (f.perplexity, prev.perplexity) << example;
          EXPECT_GT (f.kl, prev.kl) << example;
        }
      prev = f;
    }
}

// float_sparse (examples/dense-float-sparse.yaml): the next layer is fed
// by a forward with the pruned weights, as msModelSlim's postprocess
// reruns the layer.  The summary's error of a layer compares those outputs
// with the float layer on the same inputs, so it would be exactly 0 if the
// calibration forward (float weights) fed the next layer; measured 0.09 ..
// 0.12 per layer with this 4 x 64-token calibration.  The folder runs in
// `slimflow eval`: 30% unstructured sparsity plus the 2-bit float16
// mantissa costs this 260K-parameter model a lot (measured PPL 7.47 here,
// 6.68 with the full lab_calib set; float 5.538); the bounds only check
// that it is the same model, degraded: PPL in (float, 1.5 float), KL > 0.
TEST (QuantCli, FloatSparseNextLayerSeesPrunedOutputsAndEvalRuns)
{
  const double float_ppl = 5.538;
  std::string tmp = slim_test_make_tmpdir ();
  std::string save = tmp + "/out";
  QuantChild r = quant_cli (
      quant_args (quant_stories_model (), save, quant_example ("dense-float-sparse.yaml")));
  ASSERT_EQ (r.exit_code, 0) << r.err;
  int n_layers = 0;
  gchar **lines = g_strsplit (r.out.c_str (), "\n", -1);
  for (gchar **l = lines; *l != nullptr; l++)
    {
      unsigned index;
      double err;
      if (sscanf (*l, "%u %lf", &index, &err) == 2)
        {
          EXPECT_GT (err, 0.01) << *l;
          EXPECT_LT (err, 0.5) << *l;
          n_layers++;
        }
    }
  g_strfreev (lines);
  EXPECT_EQ (n_layers, 5) << r.out;
  EvalFigures f = eval_against_float (save);
  EXPECT_GT (f.perplexity, float_ppl);
  EXPECT_LT (f.perplexity, float_ppl * 1.5);
  EXPECT_GT (f.kl, 0.0);
}

} // namespace
