// SPDX-License-Identifier: Apache-2.0
//
// test-pipeline.cpp: SlimPipeline (spec layout, prior stages, runner
// resolution, processor validation with collected errors) and the
// `slimflow validate` command.
#include <glib.h>
#include <glib/gstdio.h>

#include <string>
#include <vector>

#include "slim-test.h"

extern "C"
{
#include "config-fixtures.h"
#include "slim-error.h"
#include "slim-pipeline.h"
}

namespace
{

struct ObjectDeleter
{
  void
  operator() (gpointer o) const
  {
    g_object_unref (o);
  }
};
using RegistryPtr = std::unique_ptr<SlimRegistry, ObjectDeleter>;
using PipelinePtr = std::unique_ptr<SlimPipeline, ObjectDeleter>;

PipelinePtr
load (SlimRegistry *registry, const std::string &text, GError **error)
{
  return PipelinePtr (
      slim_pipeline_new_from_data (registry, text.data (), text.size (), "config.yaml", error));
}

std::string
write_file (const std::string &dir, const std::string &name, const std::string &text)
{
  std::string path = dir + "/" + name;
  EXPECT_TRUE (g_file_set_contents (path.c_str (), text.data (), (gssize)text.size (), nullptr));
  return path;
}

const char *const kLinear = "    - type: linear_quant\n"
                            "      qconfig:\n"
                            "        act: {dtype: int8, scope: %s, symmetric: %s, method: minmax}\n"
                            "        weight: {dtype: int8, scope: per_channel, symmetric: true, "
                            "method: minmax}\n";

// A linear_quant entry (4 lines), each line prefixed with @indent.
std::string
linear (const char *act_scope, const char *act_symmetric, const char *indent = "")
{
  char *text = g_strdup_printf (kLinear, act_scope, act_symmetric);
  char **lines = g_strsplit (text, "\n", -1);
  std::string out;
  for (guint i = 0; lines[i] != nullptr && lines[i][0] != '\0'; i++)
    out += std::string (indent) + lines[i] + "\n";
  g_strfreev (lines);
  g_free (text);
  return out;
}

TEST (Pipeline, DefaultsAndAccessors)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (),
                               "apiversion: modelslim_v1\n"
                               "spec:\n"
                               "  save: [{type: ascendv1_saver}]\n",
                               &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  EXPECT_STREQ (slim_pipeline_get_apiversion (pipeline.get ()), "modelslim_v1");
  EXPECT_STREQ (slim_pipeline_get_runner_name (pipeline.get ()), "auto");
  EXPECT_EQ (slim_pipeline_get_runner (pipeline.get ()), nullptr); // no runner plugins
  EXPECT_STREQ (slim_pipeline_get_dataset (pipeline.get ()), "mix_calib.jsonl");
  EXPECT_EQ (slim_pipeline_get_processors (pipeline.get ())->len, 0u);
  EXPECT_EQ (slim_pipeline_get_savers (pipeline.get ())->len, 1u);
  EXPECT_EQ (slim_pipeline_get_n_prior_stages (pipeline.get ()), 0u);
  EXPECT_NE (slim_pipeline_get_config (pipeline.get ()), nullptr);
  EXPECT_TRUE (slim_pipeline_validate (pipeline.get (), &error));
}

TEST (Pipeline, PriorStagesFallBackToSpecDataset)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (),
                               "apiversion: modelslim_v1\n"
                               "spec:\n"
                               "  prior:\n"
                               "    - process: [{type: quarot}, {type: iter_smooth}]\n"
                               "      dataset: laos_calib.jsonl\n"
                               "    - process: [{type: quarot}]\n"
                               "  process: [{type: quarot, block_size: 16}]\n"
                               "  dataset: boolq.jsonl\n",
                               &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  ASSERT_EQ (slim_pipeline_get_n_prior_stages (pipeline.get ()), 2u);
  EXPECT_EQ (slim_pipeline_get_prior_processors (pipeline.get (), 0)->len, 2u);
  EXPECT_EQ (slim_pipeline_get_prior_processors (pipeline.get (), 1)->len, 1u);
  EXPECT_STREQ (slim_pipeline_get_prior_dataset (pipeline.get (), 0), "laos_calib.jsonl");
  EXPECT_STREQ (slim_pipeline_get_prior_dataset (pipeline.get (), 1), "boolq.jsonl");
  EXPECT_STREQ (slim_pipeline_get_dataset (pipeline.get ()), "boolq.jsonl");
}

TEST (Pipeline, DatasetOf4096CharactersIsAccepted)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  GError *error = nullptr;
  // 4096 characters but 8192 bytes: the limit counts characters.
  std::string name;
  for (int i = 0; i < 4096; i++)
    name += "\xC3\xA9";
  PipelinePtr pipeline = load (registry.get (),
                               "apiversion: modelslim_v1\nspec:\n  dataset: " + name
                                   + "\n  save: [{type: ascendv1_saver}]\n",
                               &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  EXPECT_EQ (std::string (slim_pipeline_get_dataset (pipeline.get ())), name);
}

TEST (Pipeline, RunnerResolvesToAPluginWhenRunnersExist)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  GError *error = nullptr;
  ASSERT_TRUE (slim_test_config_registry_add_runner (registry.get (), &error));

  PipelinePtr pipeline
      = load (registry.get (),
              "apiversion: modelslim_v1\nspec:\n  save: [{type: ascendv1_saver}]\n", &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  SlimRunner *runner = slim_pipeline_get_runner (pipeline.get ());
  ASSERT_NE (runner, nullptr);
  // "auto" on one device is layer_wise (spec 1.3).
  EXPECT_STREQ (slim_runner_get_type_name (runner), "layer_wise");

  pipeline = load (registry.get (),
                   "apiversion: modelslim_v1\nspec:\n  runner: model_wise\n"
                   "  save: [{type: ascendv1_saver}]\n",
                   &error);
  EXPECT_EQ (pipeline, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (std::string (error->message),
             "config.yaml:3:11: spec: runner 'model_wise' is not available in this build");
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED));
  g_clear_error (&error);
}

TEST (Pipeline, ValidateCollectsEveryProcessorsComplaint)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  GError *error = nullptr;
  // Line 4 opens the prior stage, lines 5-8 its illegal processor, lines
  // 10-13 a legal W8A8 one, lines 14-17 an illegal one, line 18 a group whose
  // second child is illegal.
  std::string text
      = "apiversion: modelslim_v1\n"
        "spec:\n"
        "  prior:\n"
        "    - process:\n"
        + linear ("per_token", "false", "  ") + "  process:\n" + linear ("per_tensor", "false")
        + linear ("per_token", "false")
        + "    - type: group\n"
          "      configs:\n"
          "        - {type: linear_quant, qconfig: {weight: {dtype: int8, scope: per_channel, "
          "symmetric: true, method: minmax}}}\n"
          "        - {type: linear_quant, qconfig: {act: {dtype: int8, scope: per_token, "
          "symmetric: false, method: minmax}, weight: {dtype: int8, scope: per_channel, "
          "symmetric: true, method: minmax}}}\n";
  PipelinePtr pipeline = load (registry.get (), text, &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  EXPECT_FALSE (slim_pipeline_validate (pipeline.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  EXPECT_EQ (std::string (error->message),
             "config.yaml:5:9: prior[0].process[0] (linear_quant): no quantized linear exists for "
             "act int8 per_token asymmetric\n"
             "config.yaml:14:7: process[1] (linear_quant): no quantized linear exists for act "
             "int8 per_token asymmetric\n"
             "config.yaml:18:7: process[2] (group): configs[1]: no quantized linear exists for "
             "act int8 per_token asymmetric");
  g_clear_error (&error);
}

TEST (Pipeline, CheckReportsBuildAndValidationErrorsTogether)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  std::string text = "apiversion: modelslim_v1\n"
                     "spec:\n"
                     "  process:\n"
                     "    - type: quarot\n"
                     "      block_size: 0\n"
                     + linear ("per_token", "false") + linear ("per_tensor", "false");
  GError *error = nullptr;
  SlimPipeline *pipeline = nullptr;
  EXPECT_FALSE (slim_pipeline_check_data (registry.get (), text.data (), text.size (),
                                          "config.yaml", &pipeline, &error));
  EXPECT_EQ (pipeline, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (std::string (error->message),
             "config.yaml:5:19: process[0] (quarot): 'block-size' = 0 is outside 1..4096\n"
             "config.yaml:6:7: process[1] (linear_quant): no quantized linear exists for act int8 "
             "per_token asymmetric");
  g_clear_error (&error);

  // The same without the bad entries is valid, and the pipeline is returned.
  text = "apiversion: modelslim_v1\nspec:\n  process:\n" + linear ("per_tensor", "false");
  EXPECT_TRUE (slim_pipeline_check_data (registry.get (), text.data (), text.size (), "config.yaml",
                                         &pipeline, &error));
  ASSERT_NE (pipeline, nullptr);
  EXPECT_EQ (slim_pipeline_get_processors (pipeline)->len, 1u);
  g_object_unref (pipeline);
}

TEST (Pipeline, FromFileNamesThePath)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  std::string dir = slim_test_make_tmpdir ();
  std::string path
      = write_file (dir, "bad.yaml", "apiversion: modelslim_v1\nspec:\n  save: [{type: nope}]\n");
  GError *error = nullptr;
  PipelinePtr pipeline (slim_pipeline_new_from_file (registry.get (), path.c_str (), &error));
  EXPECT_EQ (pipeline, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (std::string (error->message),
             path + ":3:17: save[0]: unknown saver type 'nope' (known: ascendv1_saver)");
  g_clear_error (&error);
}

// Every example config (examples/*.yaml, examples/practices/**/*.yaml) must
// pass the real loader with the plugins of this build (codebase-models.md
// 8.5), so examples cannot rot when a plugin's properties change.
// examples/plugin/ is left out: its pipeline needs the out-of-tree clip
// plugin, and tools/sdk-check.sh runs it with that plugin loaded.
void
collect_yaml (const std::string &dir, std::vector<std::string> *out)
{
  GDir *listing = g_dir_open (dir.c_str (), 0, nullptr);
  if (listing == nullptr)
    return;
  const char *entry;
  while ((entry = g_dir_read_name (listing)) != nullptr)
    {
      std::string path = dir + "/" + entry;
      if (g_file_test (path.c_str (), G_FILE_TEST_IS_DIR))
        {
          // examples/plugin is a plugin project; examples/ablate holds ablation
          // matrices, not pipelines (tests/test-ablate.cpp runs them).
          if (path != slim_test_source_dir () + "/examples/plugin"
              && path != slim_test_source_dir () + "/examples/ablate")
            collect_yaml (path, out);
        }
      else if (g_str_has_suffix (entry, ".yaml") || g_str_has_suffix (entry, ".yml"))
        out->push_back (path);
    }
  g_dir_close (listing);
}

TEST (Pipeline, EveryExampleConfigIsValid)
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;
  ASSERT_TRUE (slim_registry_scan_default (registry.get (), &error)) << error->message;
  std::vector<std::string> files;
  collect_yaml (slim_test_source_dir () + "/examples", &files);
  EXPECT_FALSE (files.empty ());
  for (const std::string &file : files)
    {
      SCOPED_TRACE (file);
      EXPECT_TRUE (slim_pipeline_check_file (registry.get (), file.c_str (), nullptr, &error))
          << error->message;
      g_clear_error (&error);
    }
}

// ---- slimflow validate ------------------------------------------------------

// Points the CLI at the registry fixtures while alive (the test
// environment sets SLIMFLOW_PLUGIN_PATH to the real plugins).
class ScopedPluginPath
{
public:
  explicit ScopedPluginPath (const std::string &dir)
  {
    const char *old = g_getenv ("SLIMFLOW_PLUGIN_PATH");
    had_old_ = old != nullptr;
    old_ = old != nullptr ? old : "";
    g_setenv ("SLIMFLOW_PLUGIN_PATH", dir.c_str (), TRUE);
  }
  ~ScopedPluginPath ()
  {
    if (had_old_)
      g_setenv ("SLIMFLOW_PLUGIN_PATH", old_.c_str (), TRUE);
    else
      g_unsetenv ("SLIMFLOW_PLUGIN_PATH");
  }

private:
  bool had_old_;
  std::string old_;
};

const std::string kFixtureDir = SLIM_TEST_FIXTURE_DIR;

TEST (ValidateCli, ValidConfigExitsZero)
{
  ScopedPluginPath path (kFixtureDir + "/good");
  std::string dir = slim_test_make_tmpdir ();
  std::string config = write_file (dir, "good.yaml",
                                   "apiversion: modelslim_v1\n"
                                   "metadata: {config_id: x}\n"
                                   "spec:\n"
                                   "  process:\n"
                                   "    - type: fixture_alias\n"
                                   "      ratio: 0.25\n"
                                   "      rounding: stochastic\n"
                                   "      targets: ['*q_proj']\n"
                                   "      qconfig: {bits: 4, symmetric: False}\n"
                                   "  save: [{type: fixture_saver}]\n");
  std::string out, err;
  int status = slim_test_run_cli ({ "validate", "--config_path", config }, &out, &err);
  EXPECT_EQ (status, 0) << err;
  EXPECT_EQ (out, config
                      + ": valid (modelslim_v1, runner auto, 0 prior stages, 1 processor, 1 saver, "
                        "dataset mix_calib.jsonl)\n");
  EXPECT_EQ (err, "");
}

TEST (ValidateCli, InvalidConfigListsEveryErrorAndExitsTwo)
{
  ScopedPluginPath path (kFixtureDir + "/good");
  std::string dir = slim_test_make_tmpdir ();
  std::string config = write_file (dir, "bad.yaml",
                                   "apiversion: modelslim_v1\n"
                                   "spec:\n"
                                   "  process:\n"
                                   "    - type: fixture_good\n"
                                   "      ratio: 2\n"
                                   "      rounding: up\n"
                                   "      qconfig: {bits: 9}\n"
                                   "    - type: linear_quant\n"
                                   "  save: [{type: fixture_saver, shards: 2}]\n");
  std::string out, err;
  int status = slim_test_run_cli ({ "validate", "--config_path", config }, &out, &err);
  EXPECT_EQ (status, 2);
  EXPECT_EQ (out, "");
  EXPECT_EQ (err,
             config + ":5:14: process[0] (fixture_good): 'ratio' = 2 is outside 0..1\n" + config
                 + ":6:17: process[0] (fixture_good): 'rounding' must be one of "
                   "round-to-nearest, stochastic; got 'up'\n"
                 + config + ":7:23: process[0] (fixture_good): 'qconfig.bits' = 9 is outside 2..8\n"
                 + config
                 + ":8:13: process[1]: unknown processor type 'linear_quant' (known: "
                   "fixture_alias, fixture_alias2, fixture_good)\n"
                 + config
                 + ":9:32: save[0] (fixture_saver): unknown key 'shards' (valid keys: type)\n"
                   "slimflow validate: "
                 + config + ": 5 errors\n");
}

TEST (ValidateCli, UsageErrors)
{
  std::string out, err;
  EXPECT_EQ (slim_test_run_cli ({ "validate" }, &out, &err), 2);
  EXPECT_NE (err.find ("--config_path FILE is required"), std::string::npos) << err;
  EXPECT_EQ (slim_test_run_cli ({ "validate", "--bogus" }, &out, &err), 2);
  EXPECT_EQ (slim_test_run_cli ({ "validate", "--help" }, &out, &err), 0);
  EXPECT_NE (out.find ("--config_path"), std::string::npos) << out;
}

TEST (ValidateCli, MissingOrHostileFilesExitTwo)
{
  ScopedPluginPath path (kFixtureDir + "/good");
  std::string out, err;
  EXPECT_EQ (slim_test_run_cli ({ "validate", "--config_path", "/nonexistent/c.yaml" }, &out, &err),
             2);
  EXPECT_NE (err.find ("/nonexistent/c.yaml"), std::string::npos) << err;

  std::string dir = slim_test_make_tmpdir ();
  std::string empty = write_file (dir, "empty.yaml", "");
  EXPECT_EQ (slim_test_run_cli ({ "validate", "--config_path", empty }, &out, &err), 2);
  EXPECT_EQ (err, empty + ":1:1: the file is empty (no YAML document)\nslimflow validate: " + empty
                      + ": 1 error\n");
}

TEST (ValidateCli, BrokenPluginDirectoryExitsOne)
{
  ScopedPluginPath path (kFixtureDir + "/no-entry");
  std::string dir = slim_test_make_tmpdir ();
  std::string config = write_file (dir, "c.yaml", "apiversion: modelslim_v1\nspec: {}\n");
  std::string out, err;
  EXPECT_EQ (slim_test_run_cli ({ "validate", "--config_path", config }, &out, &err), 1);
  EXPECT_EQ (err.rfind ("slimflow validate: ", 0), 0u) << err;
}

} // namespace
