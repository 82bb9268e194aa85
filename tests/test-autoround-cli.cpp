// SPDX-License-Identifier: Apache-2.0
//
// test-autoround-cli.cpp: `slimflow quant` with autoround_quant end to end
// on stories260K:
//
// - examples/dense-w4a16-autoround.yaml (200 iterations, asymmetric W4A16
//   per group of 32) writes a folder the ascendv1 checker accepts; the
//   learned rounding beats plain rounding of the same scheme (iters 1 keeps
//   the iteration-0 parameters: round-to-nearest) in perplexity;
// - per-channel W4A16 and W4A8_DYNAMIC strategies (two strategies, first
//   match wins) save their labels;
// - a run killed after a layer and resumed, with the kept inputs spilled
//   to HDF5, gives the bytes of an uninterrupted resident run; the same
//   seed twice gives the same bytes, another seed others;
// - asymmetric int4 weights save their zero points;
// - bad configurations stop before any work with exit 2 (iters 0 and a
//   bad qconfig with FILE:LINE:COL; a group_size not dividing a linear's
//   input width naming the linear; strategies taking no linear; an MoE
//   model) and leave nothing at save_path.
//
// Calibration uses 4 samples of at most 64 tokens (--max_samples,
// --max_length) to keep the suite fast, except for the example.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <json-glib/json-glib.h>
#include <string>

#include "ascendv1-checker.hpp"
#include "quant-cli-util.hpp"
#include "slim-test.h"

namespace
{

const std::vector<std::string> kFastCalib = { "--max_samples", "4", "--max_length", "64" };

// More samples than one iteration takes (8), so that the sample order,
// and with it the seed, matters.
const std::vector<std::string> kOrderCalib = { "--max_samples", "12", "--max_length", "32" };

std::vector<std::string>
quant_args (const std::string &save,
            const std::string &config,
            const std::string &model = quant_stories_model (),
            const std::vector<std::string> &calib = kFastCalib)
{
  std::vector<std::string> a
      = { "--model_path", model, "--save_path", save, "--config_path", config };
  a.insert (a.end (), calib.begin (), calib.end ());
  return a;
}

std::string
read_text (const std::string &path)
{
  char *text = nullptr;
  gsize len = 0;
  EXPECT_TRUE (g_file_get_contents (path.c_str (), &text, &len, nullptr)) << path;
  std::string s = text != nullptr ? std::string (text, len) : std::string ();
  g_free (text);
  return s;
}

double
perplexity_of (const std::string &model)
{
  double ppl = NAN;
  QuantChild r = slimflow_cli ({ "eval", "--model_path", model, "--text",
                                 slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt"),
                                 "--ctx", "512", "--json" });
  EXPECT_EQ (r.exit_code, 0) << r.err;
  JsonParser *parser = json_parser_new ();
  if (json_parser_load_from_data (parser, r.out.c_str (), -1, nullptr))
    ppl = json_object_get_double_member (json_node_get_object (json_parser_get_root (parser)),
                                         "perplexity");
  else
    ADD_FAILURE () << "not JSON: " << r.out;
  g_object_unref (parser);
  return ppl;
}

// A config of one autoround_quant entry: `fields` (iters, seed, ...) then
// `strategies` lines, both indented for the entry (lines 4.. of the file).
std::string
config_with (const std::string &fields, const std::string &strategies)
{
  return "apiversion: modelslim_v1\n"
         "spec:\n"
         "  process:\n"
         "    - type: autoround_quant\n"
         + fields + "      strategies:\n" + strategies
         + "  save:\n"
           "    - type: ascendv1_saver\n";
}

const char *const kG32 = "        - qconfig:\n"
                         "            weight: {scope: per_group, dtype: int4, symmetric: True, "
                         "method: autoround, ext: {group_size: 32}}\n"
                         "          exclude: ['*down_proj*']\n";

std::string
replace_all (std::string s, const std::string &from, const std::string &to)
{
  for (size_t pos = s.find (from); pos != std::string::npos; pos = s.find (from, pos + to.size ()))
    s.replace (pos, from.size (), to);
  return s;
}

// The example: checker-clean W4A16 folder (down_proj float).  Against
// iters 1 (the plain-rounding parameters, kept at iteration 0: asymmetric
// round-to-nearest, linear_quant's dense-w4a16-per-group.yaml, PPL 5.9547)
// the 200 trained iterations must lower the perplexity by at least 2%.
// This case calibrates on all 48 lab_calib samples, as the figures do
// (with 4 x 64 tokens the training overfits: measured 5.985, worse than
// plain rounding); measured 5.7901 (-2.8%), float 5.5381.
TEST (AutoRoundCli, ExampleQuantizesAndBeatsPlainRounding)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string example = quant_example ("dense-w4a16-autoround.yaml");
  const std::vector<std::string> all_samples;
  QuantChild q
      = quant_cli (quant_args (tmp + "/trained", example, quant_stories_model (), all_samples));
  ASSERT_EQ (q.exit_code, 0) << q.err;
  SlimTestAscendv1Options options;
  options.expected_model_quant_type = "W4A16";
  SlimTestAscendv1Report report = slim_test_ascendv1_check (tmp + "/trained", options);
  EXPECT_TRUE (report.ok ()) << report.summary ();

  std::string text = read_text (example);
  ASSERT_NE (text.find ("iters: 200"), std::string::npos);
  std::string plain = tmp + "/plain.yaml";
  quant_write_file (plain, replace_all (text, "iters: 200", "iters: 1"));
  QuantChild p
      = quant_cli (quant_args (tmp + "/plain", plain, quant_stories_model (), all_samples));
  ASSERT_EQ (p.exit_code, 0) << p.err;

  double trained = perplexity_of (tmp + "/trained"), rounded = perplexity_of (tmp + "/plain");
  RecordProperty ("perplexity", std::to_string (trained));
  RecordProperty ("plain_rounding_perplexity", std::to_string (rounded));
  EXPECT_LT (trained, rounded * 0.98);
  EXPECT_GT (trained, 5.5); // not better than the float model (5.5381)
}

// Asymmetric weights (quant_tensor_asym): checker-clean W4A16 whose saved
// codes, scales and zero points (offsets) the evaluator dequantizes to the
// model the processor computed.  iters 1 keeps the iteration-0 parameters
// (asymmetric round-to-nearest), which must score as linear_quant's
// asymmetric minmax W4A16 g32 does: measured 5.9487 here (linear_quant
// 5.9547 with all 48 samples; round-to-nearest does not depend on the
// calibration).  Bound +1%: a lost or sign-flipped offset moves every
// weight of a group by whole steps and costs far more.
TEST (AutoRoundCli, AsymmetricWeightsSaveTheirZeroPoints)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/asym.yaml";
  quant_write_file (config,
                    config_with ("      iters: 1\n",
                                 "        - qconfig:\n"
                                 "            weight: {scope: per_group, dtype: int4, symmetric: "
                                 "False, method: autoround, ext: {group_size: 32}}\n"
                                 "          exclude: ['*down_proj*']\n"));
  QuantChild q = quant_cli (quant_args (tmp + "/out", config));
  ASSERT_EQ (q.exit_code, 0) << q.err;
  SlimTestAscendv1Options options;
  options.expected_model_quant_type = "W4A16";
  SlimTestAscendv1Report report = slim_test_ascendv1_check (tmp + "/out", options);
  EXPECT_TRUE (report.ok ()) << report.summary ();
  double ppl = perplexity_of (tmp + "/out");
  RecordProperty ("perplexity", std::to_string (ppl));
  EXPECT_LT (ppl, 5.9487 * 1.01);
  EXPECT_GT (ppl, 5.0);
}

// Two strategies, first match wins: attention linears W4A8_DYNAMIC (int4
// per channel, int8 per-token activations trained against), gate/up W4A16
// per channel; down_proj float (172 columns: no W4A8 packing, see
// dense-w4a8-dynamic.yaml).  The description names each label.
TEST (AutoRoundCli, StrategiesFirstMatchWins)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/two.yaml";
  quant_write_file (
      config, config_with ("      iters: 10\n",
                           "        - qconfig:\n"
                           "            act: {scope: per_token, dtype: int8, symmetric: True, "
                           "method: minmax}\n"
                           "            weight: {scope: per_channel, dtype: int4, symmetric: "
                           "True, method: autoround}\n"
                           "          include: ['*self_attn*']\n"
                           "        - qconfig:\n"
                           "            weight: {scope: per_channel, dtype: int4, symmetric: "
                           "True, method: autoround, ext: {scale_dtype: float16}}\n"
                           "          include: ['*self_attn*', '*mlp*']\n"
                           "          exclude: ['*down_proj*']\n"));
  QuantChild q = quant_cli (quant_args (tmp + "/out", config));
  ASSERT_EQ (q.exit_code, 0) << q.err;
  std::string desc = read_text (tmp + "/out/quant_model_description.json");
  EXPECT_NE (desc.find ("\"model.layers.0.self_attn.q_proj.weight\": \"W4A8_DYNAMIC\""),
             std::string::npos)
      << desc;
  EXPECT_NE (desc.find ("\"model.layers.4.mlp.up_proj.weight\": \"W4A16\""), std::string::npos)
      << desc;
  EXPECT_NE (desc.find ("\"model.layers.4.mlp.down_proj.weight\": \"FLOAT\""), std::string::npos)
      << desc;
}

// Kept inputs through the HDF5 spill file (--max_memory 1), killed after
// decoder layer 1 and resumed: the bytes of an uninterrupted resident run
// (what crosses a layer, the float stream of targets float_stream, comes
// back from the checkpoint); the same seed again gives them too, another
// seed does not (12 samples: an iteration picks 8 of them).
TEST (AutoRoundCli, SpilledAndResumedRunChangesNoByte)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/g32.yaml";
  std::string other = tmp + "/seed.yaml";
  quant_write_file (config, config_with ("      iters: 20\n", kG32));
  quant_write_file (other, config_with ("      iters: 20\n      seed: 7\n", kG32));
  QuantChildOptions hdf5;
  hdf5.env = { { "SLIM_SPILL", "hdf5" } };
  QuantChild a
      = quant_cli (quant_args (tmp + "/resident", config, quant_stories_model (), kOrderCalib));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  std::vector<std::string> args
      = quant_args (tmp + "/spilled", config, quant_stories_model (), kOrderCalib);
  args.push_back ("--max_memory");
  args.push_back ("1");
  QuantChildOptions kill = hdf5;
  kill.env.push_back ({ "SLIMFLOW_TEST_KILL_AFTER_LAYER", "1" });
  QuantChild killed = quant_cli (args, kill);
  ASSERT_EQ (killed.term_signal, SIGKILL) << killed.err;
  args.push_back ("--resume");
  QuantChild b = quant_cli (args, hdf5);
  ASSERT_EQ (b.exit_code, 0) << b.err;
  EXPECT_NE (b.err.find ("resuming"), std::string::npos) << b.err;
  QuantChild c
      = quant_cli (quant_args (tmp + "/again", config, quant_stories_model (), kOrderCalib));
  ASSERT_EQ (c.exit_code, 0) << c.err;
  QuantChild d
      = quant_cli (quant_args (tmp + "/seed7", other, quant_stories_model (), kOrderCalib));
  ASSERT_EQ (d.exit_code, 0) << d.err;
  auto da = quant_folder_digests (tmp + "/resident");
  EXPECT_GE (da.size (), 4u);
  EXPECT_EQ (da, quant_folder_digests (tmp + "/spilled"));
  EXPECT_EQ (da, quant_folder_digests (tmp + "/again"));
  EXPECT_NE (da, quant_folder_digests (tmp + "/seed7"));
}

struct BadCase
{
  const char *label;
  const char *fields;
  const char *strategies;
  const char *where; // ":LINE:COL: " after the file name (the entry's for checks against the model)
  const char *fragment;
};

void
PrintTo (const BadCase &c, std::ostream *os)
{
  *os << c.label;
}

class AutoRoundBadConfig : public ::testing::TestWithParam<BadCase>
{
};

TEST_P (AutoRoundBadConfig, StopsBeforeAnyWork)
{
  const BadCase &c = GetParam ();
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/ar.yaml";
  std::string save = tmp + "/out";
  quant_write_file (config, config_with (c.fields, c.strategies));
  QuantChild r = quant_cli (quant_args (save, config));
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find (config + c.where), std::string::npos) << r.err;
  EXPECT_NE (r.err.find (c.fragment), std::string::npos) << r.err;
  EXPECT_FALSE (g_file_test (save.c_str (), G_FILE_TEST_EXISTS));
  EXPECT_EQ (quant_list_dir (tmp), std::vector<std::string> ({ "ar.yaml" }));
}

INSTANTIATE_TEST_SUITE_P (
    Cases,
    AutoRoundBadConfig,
    ::testing::Values (
        BadCase{ "iters_zero", "      iters: 0\n", kG32, ":5:14: ", "'iters' = 0 is outside" },
        BadCase{ "w4a8_asymmetric", "",
                 "        - qconfig:\n"
                 "            act: {scope: per_token, dtype: int8, symmetric: True, "
                 "method: minmax}\n"
                 "            weight: {scope: per_channel, dtype: int4, symmetric: False, "
                 "method: autoround}\n",
                 ":4:7: ", "strategies[0].qconfig: " },
        BadCase{ "not_autoround", "",
                 "        - qconfig:\n"
                 "            weight: {scope: per_channel, dtype: int8, symmetric: True, "
                 "method: minmax}\n",
                 ":4:7: ", "strategies[0].qconfig.weight.method: minmax" },
        BadCase{ "static_act", "",
                 "        - qconfig:\n"
                 "            act: {scope: per_tensor, dtype: int8, symmetric: True, "
                 "method: minmax}\n"
                 "            weight: {scope: per_channel, dtype: int8, symmetric: True, "
                 "method: autoround}\n",
                 ":4:7: ", "strategies[0].qconfig.act: " },
        BadCase{ "empty_strategies", "", "        []\n",
                 ":6:9: ", "'strategies' must not be empty" },
        BadCase{ "unknown_strategy_key", "",
                 "        - qconfig:\n"
                 "            weight: {scope: per_channel, dtype: int8, symmetric: True, "
                 "method: autoround}\n"
                 "          includes: ['*']\n",
                 ":8:11: ", "unknown key 'strategies[0].includes'" },
        // against the model (pre_run): the entry's place, the message names the linear
        BadCase{ "group_size_not_dividing", "",
                 "        - qconfig:\n"
                 "            weight: {scope: per_group, dtype: int4, symmetric: True, "
                 "method: autoround, ext: {group_size: 32}}\n",
                 "",
                 "group_size 32 does not divide the input width 172 of "
                 "model.layers.0.mlp.down_proj" },
        BadCase{ "matches_nothing", "",
                 "        - qconfig:\n"
                 "            weight: {scope: per_channel, dtype: int8, symmetric: True, "
                 "method: autoround}\n"
                 "          include: ['*no_such_linear*']\n",
                 ":4:7: ", "the strategies take no linear of the model" }),
    [] (const ::testing::TestParamInfo<BadCase> &info) { return std::string (info.param.label); });

// A mixture-of-experts model: refused before any weight is read, naming
// the layer.
TEST (AutoRoundCli, MoeLayerRefused)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/ar.yaml";
  quant_write_file (config, config_with ("      iters: 2\n",
                                         "        - qconfig:\n"
                                         "            weight: {scope: per_channel, dtype: int8, "
                                         "symmetric: True, method: autoround}\n"));
  QuantChild r = quant_cli (quant_args (
      tmp + "/out", config, slim_test_shared_path ("models/synthetic/tiny-random-qwen2-moe")));
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find ("is a mixture-of-experts layer"), std::string::npos) << r.err;
  EXPECT_EQ (quant_list_dir (tmp), std::vector<std::string> ({ "ar.yaml" }));
}

} // namespace
