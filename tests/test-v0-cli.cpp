// SPDX-License-Identifier: Apache-2.0
//
// test-v0-cli.cpp: msModelSlim's modelslim_v0 configs through the CLI
// (slim-config-v0.h, docs/modelslim-v0.md).  The fixtures of
// tests/fixtures/modelslim-v0 are written in the shape of msModelSlim's v0
// lab practices; each translatable one has a hand-written modelslim_v1
// equivalent (NAME.v1.yaml).  A translatable config must
//   - validate, and `validate --explain` print the expected v1 pipeline,
//     which is itself a valid v1 config;
//   - run on stories260K and give a folder the ascendv1 checker accepts;
//   - give exactly the bytes of its hand-written v1 equivalent.
// An untranslatable one must fail validate and quant with exit 2, name
// each offending field at its line and column, and write nothing.
#include <glib.h>

#include <string>
#include <vector>

#include "ascendv1-checker.hpp"
#include "quant-cli-util.hpp"
#include "slim-test.h"

namespace
{

const std::vector<std::string> kFastCalib = { "--max_samples", "4", "--max_length", "64" };

std::string
fixture (const std::string &name)
{
  return std::string (g_getenv ("SLIMFLOW_SOURCE_DIR")) + "/tests/fixtures/modelslim-v0/" + name;
}

QuantChild
run_quant (const std::string &config, const std::string &save)
{
  std::vector<std::string> a
      = { "--model_path", quant_stories_model (), "--save_path", save, "--config_path", config };
  a.insert (a.end (), kFastCalib.begin (), kFastCalib.end ());
  return quant_cli (a);
}

// The YAML part of `validate --explain` output: everything after the
// summary line.
std::string
explained_yaml (const std::string &out)
{
  size_t nl = out.find ('\n');
  return nl == std::string::npos ? "" : out.substr (nl + 1);
}

struct V0Case
{
  const char *name; // NAME.yaml and NAME.v1.yaml
  const char *quant_type;
  std::vector<std::string> explain; // lines the explained v1 pipeline contains
};

class V0Translation : public ::testing::TestWithParam<V0Case>
{
};

TEST_P (V0Translation, ExplainsRunsAndEqualsTheV1Equivalent)
{
  const V0Case &c = GetParam ();
  std::string v0 = fixture (std::string (c.name) + ".yaml");
  std::string v1 = fixture (std::string (c.name) + ".v1.yaml");

  QuantChild v = slimflow_cli ({ "validate", "--explain", "--config_path", v0 });
  ASSERT_EQ (v.exit_code, 0) << v.out << v.err;
  EXPECT_NE (v.out.find ("valid (modelslim_v0"), std::string::npos) << v.out;
  EXPECT_NE (v.out.find ("apiversion: \"modelslim_v1\"\n"), std::string::npos) << v.out;
  for (const std::string &line : c.explain)
    EXPECT_NE (v.out.find (line + "\n"), std::string::npos) << "missing '" << line << "' in\n"
                                                            << v.out;

  // The explained pipeline is a v1 config of its own.
  std::string tmp = slim_test_make_tmpdir ();
  quant_write_file (tmp + "/explained.yaml", explained_yaml (v.out));
  QuantChild e = slimflow_cli ({ "validate", "--config_path", tmp + "/explained.yaml" });
  EXPECT_EQ (e.exit_code, 0) << e.out << e.err;
  EXPECT_NE (e.out.find ("valid (modelslim_v1"), std::string::npos) << e.out;

  QuantChild r0 = run_quant (v0, tmp + "/v0");
  ASSERT_EQ (r0.exit_code, 0) << r0.err;
  QuantChild r1 = run_quant (v1, tmp + "/v1");
  ASSERT_EQ (r1.exit_code, 0) << r1.err;

  SlimTestAscendv1Options options;
  options.expected_model_quant_type = c.quant_type;
  SlimTestAscendv1Report report = slim_test_ascendv1_check (tmp + "/v0", options);
  EXPECT_TRUE (report.ok ()) << report.summary ();

  std::map<std::string, std::string> d0 = quant_folder_digests (tmp + "/v0");
  EXPECT_FALSE (d0.empty ());
  EXPECT_EQ (d0, quant_folder_digests (tmp + "/v1"));
}

const std::vector<std::string> kDownProjExcluded = {
  "      exclude:",
  "        - \"lm_head\"",
  "        - \"model.layers.0.mlp.down_proj\"",
  "        - \"model.layers.4.mlp.down_proj\"",
};

std::vector<std::string>
plus (std::vector<std::string> a, const std::vector<std::string> &b)
{
  a.insert (a.end (), b.begin (), b.end ());
  return a;
}

INSTANTIATE_TEST_SUITE_P (
    Fixtures,
    V0Translation,
    ::testing::Values (
        V0Case{ "w8a8-m4", "W8A8",
                plus ({ "# anti_cfg.anti_method: m4 -> iter_smooth with its v1 defaults "
                        "(msModelSlim names it m4's counterpart; v0's m4 is compiled code whose "
                        "parameters cannot be read)",
                        "    - type: \"iter_smooth\"", "    - type: \"linear_quant\"",
                        "        act:", "          scope: \"per_tensor\"",
                        "          symmetric: false", "          scope: \"per_channel\"",
                        "      part_file_size: 4", "  dataset: \"mix_calib.jsonl\"" },
                      kDownProjExcluded) },
        V0Case{ "w8a16-per-channel",
                "W8A16",
                { "    - type: \"linear_quant\"", "        weight:",
                  "          scope: \"per_channel\"", "          dtype: \"int8\"",
                  "          symmetric: true", "          method: \"minmax\"" } },
        V0Case{ "w4a16-gptq-per-group", "W4A16",
                plus ({ "# calib_cfg.is_lowbit: True with open_outlier: False -> per_group weights "
                        "(group_size 32); lowbit's other refinements are not reproduced",
                        "          scope: \"per_group\"", "          dtype: \"int4\"",
                        "          symmetric: false", "          method: \"gptq\"",
                        "            group_size: 32", "            percdamp: 0.01" },
                      kDownProjExcluded) },
        V0Case{ "w4a16-hqq", "W4A16",
                plus ({ "          scope: \"per_group\"", "          dtype: \"int4\"",
                        "          symmetric: false", "          method: \"hqq\"",
                        "            group_size: 32" },
                      kDownProjExcluded) },
        V0Case{ "w4a16-nf", "NF4",
                plus ({ "# calib_cfg.w_method: NF -> method nf (NF4, absmax per block of 64, "
                        "label NF4; the bias stays float)",
                        "          scope: \"per_group\"", "          dtype: \"int4\"",
                        "          symmetric: true", "          method: \"nf\"",
                        "            group_size: 64" },
                      kDownProjExcluded) },
        V0Case{ "w8a8-sigma",
                "W8A8",
                { "          scope: \"per_channel\"", "          method: \"minmax\"",
                  "            sigma_factor: 3.5" } },
        V0Case{ "w8a16-lm-head",
                "W8A16",
                { "# calib_cfg.disable_last_linear: False -> quantize_lm_head: true (lm_head "
                  "quantized with the same weights; a tied lm_head is saved untied)",
                  "      quantize_lm_head: true" } },
        V0Case{ "w8a8-dynamic", "W8A8_DYNAMIC",
                plus ({ "          scope: \"per_token\"", "          symmetric: true" },
                      kDownProjExcluded) },
        V0Case{ "w8a8-kv-int8",
                "W8A8",
                { "    - type: \"linear_quant\"", "    - type: \"dynamic_cache\"",
                  "        scope: \"per_channel\"", "        dtype: \"int8\"" } }));

struct RejectCase
{
  const char *name;
  std::vector<std::string> errors; // "LINE:COL: FIELD" prefixes each expected
};

class V0Rejection : public ::testing::TestWithParam<RejectCase>
{
};

TEST_P (V0Rejection, NamesEachFieldAndWritesNothing)
{
  const RejectCase &c = GetParam ();
  std::string yaml = fixture (std::string (c.name) + ".yaml");

  QuantChild v = slimflow_cli ({ "validate", "--explain", "--config_path", yaml });
  EXPECT_EQ (v.exit_code, 2) << v.out << v.err;
  EXPECT_EQ (v.out, "") << "nothing explained for an invalid config";
  for (const std::string &e : c.errors)
    EXPECT_NE (v.err.find (yaml + ":" + e), std::string::npos) << "missing '" << e << "' in\n"
                                                               << v.err;
  char count[64];
  g_snprintf (count, sizeof count, ": %zu error%s\n", c.errors.size (),
              c.errors.size () == 1 ? "" : "s");
  EXPECT_NE (v.err.find (count), std::string::npos) << v.err;

  std::string tmp = slim_test_make_tmpdir ();
  QuantChild r = run_quant (yaml, tmp + "/out");
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find (yaml + ":" + c.errors[0]), std::string::npos) << r.err;
  EXPECT_EQ (quant_list_dir (tmp), std::vector<std::string> ());
}

INSTANTIATE_TEST_SUITE_P (
    Fixtures,
    V0Rejection,
    ::testing::Values (
        RejectCase{ "w8a8s-lowbit-sigma",
                    { "11:16: spec.calib_cfg.is_lowbit: True: lowbit quantization",
                      "14:15: spec.calib_cfg.fraction: 0.011: only used by sparse/lowbit",
                      "6:18: spec.anti_cfg.anti_method: 'm2': outlier suppression",
                      "16:20: spec.calib_params.disable_level: 'L5': automatic fallback" } },
        RejectCase{ "w4a16-nf-w8",
                    { "6:12: spec.calib_cfg.w_bit must be 4 when w_method is 'NF'",
                      "7:12: spec.calib_cfg.a_bit must be 16 when w_method is 'NF'",
                      "9:16: spec.calib_cfg.use_sigma: True: sigma clipping is translated for "
                      "w_method MinMax only" } },
        RejectCase{ "w8a8-mix-sigma",
                    { "8:16: spec.calib_cfg.use_sigma: True with pdmix: the pdmix processor's "
                      "weight qconfig is fixed" } },
        RejectCase{ "w8a8-hqq",
                    { "11:15: spec.calib_cfg.w_method: 'HQQ' is weight-only in slimflow" } },
        RejectCase{ "w8a8-defaults",
                    { "8:5: spec.calib_cfg: unknown key 'kv_sym' (valid keys: w_bit, a_bit,",
                      "7:26: spec.calib_cfg.disable_last_linear: False: slimflow quantizes the "
                      "last linear (lm_head) only with weight-only data-free weights",
                      "7:5: spec.calib_cfg.mm_tensor: True (QuantConfig's default): per-tensor "
                      "weights are not in slimflow",
                      "5:13: spec.anti_cfg.anti_method: 'm2' (AntiOutlierConfig's default)" } }));

} // namespace
