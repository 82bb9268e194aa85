// SPDX-License-Identifier: Apache-2.0
//
// test-config.cpp: the YAML loader (slim-config.h) and the YAML -> GObject
// property mapping (slim-config-object.h), driven through SlimPipeline with
// the test-local plugins of config-fixtures.h.
//
// The heart is a table of bad configs, each with the exact error it must
// produce (file:line:column, message and code).  Locations are 1-based;
// libyaml counts columns in characters.
#include <glib.h>
#include <glib/gstdio.h>

#include <chrono>
#include <string>
#include <vector>

#include "slim-test.h"

extern "C"
{
#include "config-fixtures.h"
#include "slim-config-object.h"
#include "slim-config.h"
#include "slim-error.h"
#include "slim-pipeline.h"
}

namespace
{

struct RegistryDeleter
{
  void
  operator() (SlimRegistry *r) const
  {
    g_object_unref (r);
  }
};
using RegistryPtr = std::unique_ptr<SlimRegistry, RegistryDeleter>;

struct NodeDeleter
{
  void
  operator() (SlimConfigNode *n) const
  {
    slim_config_node_unref (n);
  }
};
using NodePtr = std::unique_ptr<SlimConfigNode, NodeDeleter>;

struct ObjectDeleter
{
  void
  operator() (gpointer o) const
  {
    g_object_unref (o);
  }
};
using PipelinePtr = std::unique_ptr<SlimPipeline, ObjectDeleter>;
using ObjectPtr = std::unique_ptr<GObject, ObjectDeleter>;

RegistryPtr
make_registry ()
{
  return RegistryPtr (slim_test_config_registry_new (FALSE));
}

NodePtr
parse (const std::string &text, GError **error)
{
  return NodePtr (slim_config_parse_data (text.data (), text.size (), "config.yaml", error));
}

PipelinePtr
load (SlimRegistry *registry, const std::string &text, GError **error)
{
  return PipelinePtr (
      slim_pipeline_new_from_data (registry, text.data (), text.size (), "config.yaml", error));
}

// Hostile inputs must fail fast; 1 s is far above the few milliseconds
// they take, and far below what an unbounded expansion would take.
constexpr double kHostileSeconds = 1.0;

double
seconds_since (std::chrono::steady_clock::time_point start)
{
  return std::chrono::duration<double> (std::chrono::steady_clock::now () - start).count ();
}

// ---- the node tree ---------------------------------------------------------

// slim_config_node_to_yaml() writes what slim_config_parse_data() reads
// back to the same tree: same kinds, texts and scalar styles (checked by
// writing the re-read tree again and comparing the texts).
TEST (ConfigNode, WrittenYamlReadsBackToTheSameTree)
{
  const std::string text = "apiversion: modelslim_v1\n"
                           "spec:\n"
                           "  process:\n"
                           "    - type: \"linear_quant\"\n"
                           "      include: ['*', \"a: b\", 'x #y', '- z', \"q\\\"uote\"]\n"
                           "      exclude: []\n"
                           "      ext: {}\n"
                           "      n: -1\n"
                           "      t: true\n"
                           "      s: 'true'\n"
                           "      nested: [[a, b], {k: v}]\n"
                           "  dataset:\n";
  GError *error = nullptr;
  NodePtr root = parse (text, &error);
  ASSERT_NE (root, nullptr) << error->message;
  g_autofree char *once = slim_config_node_to_yaml (root.get ());
  NodePtr again = parse (once, &error);
  ASSERT_NE (again, nullptr) << once << error->message;
  g_autofree char *twice = slim_config_node_to_yaml (again.get ());
  EXPECT_STREQ (once, twice);
  EXPECT_EQ (slim_config_node_get_n_nodes (root.get ()),
             slim_config_node_get_n_nodes (again.get ()));
  SlimConfigNode *s = slim_config_node_lookup (
      slim_config_node_get_item (
          slim_config_node_lookup (slim_config_node_lookup (again.get (), "spec"), "process"), 0),
      "s");
  ASSERT_NE (s, nullptr);
  EXPECT_EQ (slim_config_node_get_scalar_style (s), SLIM_CONFIG_SCALAR_QUOTED);
  EXPECT_TRUE (slim_config_node_is_null (
      slim_config_node_lookup (slim_config_node_lookup (again.get (), "spec"), "dataset")));
  EXPECT_NE (std::string (once).find ("    - type: \"linear_quant\"\n"), std::string::npos) << once;
}

// Trees built in code take the location of the node they are made "at"
// and keep node counts and heights as the parser would.
TEST (ConfigNode, BuiltNodesTakeTheirSourceLocation)
{
  GError *error = nullptr;
  NodePtr src = parse ("a:\n  b: 1\n", &error);
  ASSERT_NE (src, nullptr);
  SlimConfigNode *b = slim_config_node_lookup (slim_config_node_lookup (src.get (), "a"), "b");
  NodePtr map (slim_config_node_new_mapping (b));
  SlimConfigNode *seq = slim_config_node_new_sequence (b);
  slim_config_node_append (seq, slim_config_node_new_scalar (b, SLIM_CONFIG_SCALAR_QUOTED, "x"));
  slim_config_node_insert (map.get (),
                           slim_config_node_new_scalar (b, SLIM_CONFIG_SCALAR_PLAIN, "k"), seq);
  g_autofree char *where = slim_config_node_dup_location (
      slim_config_node_get_item (slim_config_node_lookup (map.get (), "k"), 0));
  EXPECT_STREQ (where, "config.yaml:2:6");
  EXPECT_EQ (slim_config_node_get_n_nodes (map.get ()), 4u);
  EXPECT_EQ (slim_config_node_get_height (map.get ()), 3u);
  g_autofree char *yaml = slim_config_node_to_yaml (map.get ());
  EXPECT_STREQ (yaml, "k:\n  - \"x\"\n");
}

TEST (ConfigNode, ScalarsKeepStyleAndLocation)
{
  GError *error = nullptr;
  NodePtr root = parse ("a: true\n"
                        "b: \"true\"\n"
                        "c:\n"
                        "  - x\n"
                        "  - 'y'\n"
                        "d: ~\n"
                        "e:\n"
                        "f: |\n"
                        "  block\n",
                        &error);
  ASSERT_NE (root, nullptr) << error->message;
  ASSERT_EQ (slim_config_node_get_kind (root.get ()), SLIM_CONFIG_NODE_MAPPING);
  EXPECT_EQ (slim_config_node_get_n_items (root.get ()), 6u);

  SlimConfigNode *a = slim_config_node_lookup (root.get (), "a");
  ASSERT_NE (a, nullptr);
  EXPECT_STREQ (slim_config_node_get_scalar (a), "true");
  EXPECT_EQ (slim_config_node_get_scalar_style (a), SLIM_CONFIG_SCALAR_PLAIN);
  EXPECT_EQ (slim_config_node_get_line (a), 1u);
  EXPECT_EQ (slim_config_node_get_column (a), 4u);

  SlimConfigNode *b = slim_config_node_lookup (root.get (), "b");
  EXPECT_EQ (slim_config_node_get_scalar_style (b), SLIM_CONFIG_SCALAR_QUOTED);
  EXPECT_FALSE (slim_config_node_is_null (b));

  SlimConfigNode *c = slim_config_node_lookup (root.get (), "c");
  ASSERT_EQ (slim_config_node_get_kind (c), SLIM_CONFIG_NODE_SEQUENCE);
  ASSERT_EQ (slim_config_node_get_n_items (c), 2u);
  SlimConfigNode *y = slim_config_node_get_item (c, 1);
  EXPECT_STREQ (slim_config_node_get_scalar (y), "y");
  EXPECT_EQ (slim_config_node_get_line (y), 5u);
  EXPECT_EQ (slim_config_node_get_column (y), 5u);

  EXPECT_TRUE (slim_config_node_is_null (slim_config_node_lookup (root.get (), "d")));
  EXPECT_TRUE (slim_config_node_is_null (slim_config_node_lookup (root.get (), "e")));
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (root.get (), "f")),
                "block\n");

  SlimConfigNode *key = slim_config_node_get_key (root.get (), 2);
  EXPECT_STREQ (slim_config_node_get_scalar (key), "c");
  EXPECT_EQ (slim_config_node_get_line (key), 3u);
  EXPECT_EQ (slim_config_node_get_column (key), 1u);
  char *location = slim_config_node_dup_location (y);
  EXPECT_STREQ (location, "config.yaml:5:5");
  g_free (location);
}

TEST (ConfigNode, AliasesShareTheAnchoredNode)
{
  GError *error = nullptr;
  NodePtr root = parse ("base: &b {x: 1, y: [2, 3]}\n"
                        "one: *b\n"
                        "two: *b\n",
                        &error);
  ASSERT_NE (root, nullptr) << error->message;
  SlimConfigNode *base = slim_config_node_lookup (root.get (), "base");
  EXPECT_EQ (slim_config_node_lookup (root.get (), "one"), base);
  EXPECT_EQ (slim_config_node_lookup (root.get (), "two"), base);
  // base = mapping + 2 keys + scalar + sequence of 2 = 7 nodes, counted at
  // each of its 3 uses, plus the root and its 3 keys.
  EXPECT_EQ (slim_config_node_get_n_nodes (base), 7u);
  EXPECT_EQ (slim_config_node_get_n_nodes (root.get ()), 1u + 3u + 3u * 7u);
}

TEST (ConfigNode, MergeKeysExplicitKeysWin)
{
  GError *error = nullptr;
  NodePtr root = parse ("a: &a {x: 1, y: 2}\n"
                        "b: &b {y: 20, z: 30}\n"
                        "single:\n"
                        "  <<: *a\n"
                        "  x: 10\n"
                        "list:\n"
                        "  <<: [*a, *b]\n"
                        "  w: 0\n",
                        &error);
  ASSERT_NE (root, nullptr) << error->message;
  SlimConfigNode *single = slim_config_node_lookup (root.get (), "single");
  ASSERT_EQ (slim_config_node_get_n_items (single), 2u);
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (single, "x")), "10");
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (single, "y")), "2");
  EXPECT_EQ (slim_config_node_lookup (single, "<<"), nullptr);

  SlimConfigNode *list = slim_config_node_lookup (root.get (), "list");
  ASSERT_EQ (slim_config_node_get_n_items (list), 4u);
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (list, "w")), "0");
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (list, "x")), "1");
  // Earlier merged mappings win over later ones.
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (list, "y")), "2");
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (list, "z")), "30");
}

TEST (ConfigNode, QuotedMergeKeyIsAnOrdinaryKey)
{
  GError *error = nullptr;
  NodePtr root = parse ("m: {\"<<\": 1}\n", &error);
  ASSERT_NE (root, nullptr) << error->message;
  SlimConfigNode *m = slim_config_node_lookup (root.get (), "m");
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (m, "<<")), "1");
}

TEST (ConfigNode, StrTagMakesAString)
{
  GError *error = nullptr;
  NodePtr root = parse ("a: !!str 5\n", &error);
  ASSERT_NE (root, nullptr) << error->message;
  SlimConfigNode *a = slim_config_node_lookup (root.get (), "a");
  EXPECT_EQ (slim_config_node_get_scalar_style (a), SLIM_CONFIG_SCALAR_QUOTED);
}

TEST (ConfigNode, BomIsAccepted)
{
  GError *error = nullptr;
  NodePtr root = parse ("\xEF\xBB\xBF"
                        "a: 1\n",
                        &error);
  ASSERT_NE (root, nullptr) << error->message;
  EXPECT_STREQ (slim_config_node_get_scalar (slim_config_node_lookup (root.get (), "a")), "1");
}

TEST (ConfigNode, MissingFileIsAFileError)
{
  GError *error = nullptr;
  NodePtr root (slim_config_parse_file ("/nonexistent/config.yaml", &error));
  EXPECT_EQ (root, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) << error->message;
  g_clear_error (&error);
}

// ---- hostile files ---------------------------------------------------------

struct HostileCase
{
  const char *name;
  std::string text;
  const char *expected; // exact message
};

std::string
billion_laughs ()
{
  std::string text = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i < 10; i++)
    {
      std::string prev = "*a" + std::to_string (i - 1);
      text += "a" + std::to_string (i) + ": &a" + std::to_string (i) + " [";
      for (int j = 0; j < 10; j++)
        text += prev + (j < 9 ? ", " : "");
      text += "]\n";
    }
  return text;
}

std::string
repeat (const std::string &s, int n)
{
  std::string out;
  for (int i = 0; i < n; i++)
    out += s;
  return out;
}

std::vector<HostileCase>
hostile_cases ()
{
  std::vector<HostileCase> cases;
  // a_i expands to 1 + 10 * size(a_{i-1}) nodes: 11, 111, 1111, 11111.
  // Rows a0..a3 plus the root and keys hold 12,349 nodes; on row 5 (a4)
  // each *a3 adds 11,111, so the 8th alias (column 45) passes the cap.
  cases.push_back ({ "billion_laughs", billion_laughs (),
                     "config.yaml:5:45: the document expands to more than 100000 nodes (aliases "
                     "counted at every use)" });
  cases.push_back ({ "nested_brackets", repeat ("[", 5000) + repeat ("]", 5000) + "\n",
                     "config.yaml:1:65: nesting deeper than 64 levels" });
  cases.push_back ({ "nested_mappings", repeat ("{a: ", 5000) + "1" + repeat ("}", 5000) + "\n",
                     "config.yaml:1:257: nesting deeper than 64 levels" });
  cases.push_back ({ "non_utf8", "apiversion: modelslim_v1\nspec: {dataset: caf\xE9}\n",
                     "config.yaml:2:20: the file is not valid UTF-8 (byte 0xe9)" });
  cases.push_back ({ "utf16_bom",
                     std::string ("\xFF\xFE"
                                  "a\0:\0 \0"
                                  "1\0",
                                  10),
                     "config.yaml:1:1: the file is not valid UTF-8 (byte 0xff)" });
  cases.push_back ({ "nul_byte", std::string ("a: 1\nb: \0\n", 10),
                     "config.yaml:2:4: the file contains a NUL byte" });
  cases.push_back ({ "empty", "", "config.yaml:1:1: the file is empty (no YAML document)" });
  cases.push_back ({ "only_comments", "# nothing here\n\n# at all\n",
                     "config.yaml:1:1: the file is empty (no YAML document)" });
  cases.push_back ({ "null_document", "---\n~\n", "config.yaml:2:1: the document is empty" });
  cases.push_back (
      { "huge_scalar", "a: " + std::string (1024 * 1024, 'x') + "\n",
        "config.yaml:1:4: a scalar of 1048576 bytes is longer than the 65536 allowed" });
  // An alias may not stack its anchor's depth on top of where it is used.
  cases.push_back ({ "deep_alias",
                     "a: &a " + repeat ("[", 60) + repeat ("]", 60) + "\nb: " + repeat ("[", 10)
                         + "*a" + repeat ("]", 10) + "\n",
                     "config.yaml:2:14: alias '*a' nests deeper than 64 levels" });
  cases.push_back (
      { "recursive_alias", "a: &a [1, *a]\n", "config.yaml:1:11: undefined alias '*a'" });
  cases.push_back ({ "many_aliases_of_big_list",
                     "big: &big [" + repeat ("x, ", 9999) + "x]\n" + "refs: ["
                         + repeat ("*big, ", 9) + "*big]\n",
                     "config.yaml:2:56: the document expands to more than 100000 nodes (aliases "
                     "counted at every use)" });
  return cases;
}

TEST (ConfigHostile, RejectedFastWithAClearMessage)
{
  for (const HostileCase &c : hostile_cases ())
    {
      SCOPED_TRACE (c.name);
      GError *error = nullptr;
      auto start = std::chrono::steady_clock::now ();
      NodePtr root = parse (c.text, &error);
      double seconds = seconds_since (start);
      EXPECT_EQ (root, nullptr);
      ASSERT_NE (error, nullptr);
      EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_PARSE));
      EXPECT_EQ (std::string (error->message), c.expected);
      EXPECT_LT (seconds, kHostileSeconds);
      g_clear_error (&error);
    }
}

TEST (ConfigHostile, OversizedAndEndlessFilesAreRefusedWithoutReadingThemWhole)
{
  std::string dir = slim_test_make_tmpdir ();
  std::string big = dir + "/big.yaml";
  std::string content = "a: [" + repeat ("1, ", 2 * 1024 * 1024) + "1]\n"; // ~6 MiB
  ASSERT_TRUE (
      g_file_set_contents (big.c_str (), content.data (), (gssize)content.size (), nullptr));

  GError *error = nullptr;
  auto start = std::chrono::steady_clock::now ();
  NodePtr root (slim_config_parse_file (big.c_str (), &error));
  EXPECT_EQ (root, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (std::string (error->message),
             big + ":1:1: the file is larger than the 4194304 bytes a config may have");
  g_clear_error (&error);

  // /dev/zero never ends: the reader must stop at the limit.
  root.reset (slim_config_parse_file ("/dev/zero", &error));
  EXPECT_EQ (root, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_PARSE));
  g_clear_error (&error);
  EXPECT_LT (seconds_since (start), kHostileSeconds);
}

TEST (ConfigHostile, HostileFilesThroughThePipelineToo)
{
  RegistryPtr registry = make_registry ();
  std::string text = "apiversion: modelslim_v1\nspec:\n" + billion_laughs ();
  GError *error = nullptr;
  auto start = std::chrono::steady_clock::now ();
  PipelinePtr pipeline = load (registry.get (), text, &error);
  EXPECT_EQ (pipeline, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("expands to more than 100000 nodes"),
             std::string::npos)
      << error->message;
  EXPECT_LT (seconds_since (start), kHostileSeconds);
  g_clear_error (&error);
}

// ---- the table of bad configs ----------------------------------------------

struct BadCase
{
  const char *name;
  std::string yaml;
  std::string expected; // the whole message
  gint code;
};

const char *const kHead = "apiversion: modelslim_v1\n"
                          "spec:\n";
const char *const kSave = "  save: [{type: ascendv1_saver}]\n";
const char *const kKnown = "known: all_types, dynamic_cache, group, iter_smooth, iterative_smooth, "
                           "kv_cache_quant, linear_quant, quarot";
// Lines 1-6 of every linear_quant case; the weight mapping is on line 6.
const char *const kLinearHead = "apiversion: modelslim_v1\n"
                                "spec:\n"
                                "  process:\n"
                                "    - type: linear_quant\n"
                                "      qconfig:\n";
const char *const kWeightOk
    = "        weight: {dtype: int8, scope: per_channel, symmetric: true, method: minmax}\n";

std::vector<BadCase>
bad_cases ()
{
  std::string head = kHead;
  std::string lq = kLinearHead;
  std::string known = kKnown;
  std::vector<BadCase> cases = {
    // -- top level
    { "apiversion_unsupported", "apiversion: modelslim_v2\nspec: {}\n",
      "config.yaml:1:13: unsupported apiversion 'modelslim_v2' (supported: modelslim_v1, "
      "modelslim_v0)",
      SLIM_CONFIG_ERROR_UNSUPPORTED },
    // A v0 config is checked by its translator (slim-config-v0.h), which
    // names the v0 field; QuantConfig's default mm_tensor True is per-tensor.
    { "apiversion_v0_translated", "apiversion: modelslim_v0\nspec: {}\n",
      "config.yaml:2:7: spec.calib_cfg.mm_tensor: True (QuantConfig's default): per-tensor "
      "weights are not in slimflow; set mm_tensor: False (per-channel)",
      SLIM_CONFIG_ERROR_UNSUPPORTED },
    { "apiversion_missing", std::string ("spec:\n") + kSave,
      "config.yaml:1:1: missing required key 'apiversion'", SLIM_CONFIG_ERROR_MISSING_KEY },
    { "apiversion_not_a_string", "apiversion: [modelslim_v1]\nspec:\n" + std::string (kSave),
      "config.yaml:1:13: 'apiversion' must be a string, got a sequence",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "spec_missing", "apiversion: modelslim_v1\nmetadata: {score: 5}\n",
      "config.yaml:1:1: missing required key 'spec'", SLIM_CONFIG_ERROR_MISSING_KEY },
    { "spec_not_a_mapping", "apiversion: modelslim_v1\nspec: [1]\n",
      "config.yaml:2:7: 'spec' must be a mapping, got a sequence", SLIM_CONFIG_ERROR_BAD_VALUE },
    { "top_level_sequence", "- apiversion\n- spec\n",
      "config.yaml:1:1: the top level must be a mapping with 'apiversion' and 'spec', got a "
      "sequence",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    // -- spec
    { "spec_unknown_key", head + kSave + "  procss: []\n",
      "config.yaml:4:3: spec: unknown key 'procss' (valid keys: dataset, default_text, prior, "
      "process, runner, save)",
      SLIM_CONFIG_ERROR_UNKNOWN_KEY },
    { "spec_nothing_to_do", head + "  process: []\n",
      "config.yaml:3:3: spec: nothing to do: 'process', 'prior' and 'save' are all missing or "
      "empty",
      SLIM_CONFIG_ERROR_MISSING_KEY },
    { "runner_unknown", head + "  runner: fast\n" + kSave,
      "config.yaml:3:11: spec: 'runner' must be one of auto, model_wise, layer_wise, "
      "dp_layer_wise; got 'fast'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "dataset_too_long", head + "  dataset: " + std::string (4097, 'a') + "\n" + kSave,
      "config.yaml:3:12: spec: 'dataset' must have 1 to 4096 characters, got 4097",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "dataset_null", head + "  dataset: ~\n" + kSave,
      "config.yaml:3:12: spec: 'dataset' must be a string, got null", SLIM_CONFIG_ERROR_BAD_VALUE },
    { "process_not_a_list", head + "  process: {type: linear_quant}\n" + kSave,
      "config.yaml:3:12: spec: 'process' must be a list of processor entries, got a mapping",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "process_entry_not_a_mapping", head + "  process: [quarot]\n",
      "config.yaml:3:13: process[0]: a processor entry must be a mapping with a 'type' key, got "
      "'quarot'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "process_entry_without_type", head + "  process:\n    - block_size: 4\n",
      "config.yaml:4:7: process[0]: missing required key 'type'", SLIM_CONFIG_ERROR_MISSING_KEY },
    { "process_type_unknown", head + "  process:\n    - type: linear_quantt\n",
      "config.yaml:4:13: process[0]: unknown processor type 'linear_quantt' (" + known + ")",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "saver_used_as_processor", head + "  process: [{type: ascendv1_saver}]\n",
      "config.yaml:3:20: process[0]: unknown processor type 'ascendv1_saver' (" + known + ")",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "process_type_not_a_string", head + "  process:\n    - type: [quarot]\n",
      "config.yaml:4:13: process[0]: 'type' must be a string, got a sequence",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "save_type_unknown", head + "  save: [{type: hdf5_saver}]\n",
      "config.yaml:3:17: save[0]: unknown saver type 'hdf5_saver' (known: ascendv1_saver)",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    // -- linear_quant and its nested qconfig objects
    { "enum_bad_nick",
      lq + "        weight: {dtype: int8, scope: per_row, symmetric: true, method: minmax}\n",
      "config.yaml:6:38: process[0] (linear_quant): 'qconfig.weight.scope' must be one of "
      "per_tensor, per_channel, per_group, per_token, pd_mix; got 'per_row'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "boolean_yes",
      lq + "        weight: {dtype: int8, scope: per_channel, symmetric: yes, method: minmax}\n",
      "config.yaml:6:62: process[0] (linear_quant): 'qconfig.weight.symmetric' must be true or "
      "false, got 'yes'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "boolean_quoted",
      lq
          + "        weight: {dtype: int8, scope: per_channel, symmetric: \"true\", method: "
            "minmax}\n",
      "config.yaml:6:62: process[0] (linear_quant): 'qconfig.weight.symmetric' must be true or "
      "false, got the string \"true\"",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "nested_required_missing",
      lq + "        weight: {dtype: int8, scope: per_channel, symmetric: true}\n",
      "config.yaml:6:17: process[0] (linear_quant): missing required key 'qconfig.weight.method'",
      SLIM_CONFIG_ERROR_MISSING_KEY },
    { "nested_unknown_key",
      lq
          + "        weight: {dtype: int8, scope: per_channel, symmetric: true, method: minmax, "
            "bits: 8}\n",
      "config.yaml:6:84: process[0] (linear_quant): unknown key 'qconfig.weight.bits' (valid "
      "keys: dtype, ext, method, scope, symmetric)",
      SLIM_CONFIG_ERROR_UNKNOWN_KEY },
    { "qconfig_missing", head + "  process:\n    - type: linear_quant\n      include: ['*']\n",
      "config.yaml:4:7: process[0] (linear_quant): missing required key 'qconfig'",
      SLIM_CONFIG_ERROR_MISSING_KEY },
    { "weight_missing",
      head
          + "  process:\n    - type: linear_quant\n"
            "      qconfig: {act: {dtype: int8, scope: per_tensor, symmetric: true, method: "
            "minmax}}\n",
      "config.yaml:5:16: process[0] (linear_quant): missing required key 'qconfig.weight'",
      SLIM_CONFIG_ERROR_MISSING_KEY },
    { "qconfig_not_a_mapping", head + "  process:\n    - type: linear_quant\n      qconfig: w8a8\n",
      "config.yaml:5:16: process[0] (linear_quant): 'qconfig' must be a mapping, got 'w8a8'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "include_empty", lq + kWeightOk + "      include: []\n",
      "config.yaml:7:16: process[0] (linear_quant): 'include' must not be empty",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "include_not_a_list", lq + kWeightOk + "      include: '*'\n",
      "config.yaml:7:16: process[0] (linear_quant): 'include' must be a list of strings, got the "
      "string \"*\"",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "include_item_mapping", lq + kWeightOk + "      include: [{a: 1}]\n",
      "config.yaml:7:17: process[0] (linear_quant): 'include[0]' must be a string, got a mapping",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "plugin_unknown_key", lq + kWeightOk + "      includes: ['*']\n",
      "config.yaml:7:7: process[0] (linear_quant): unknown key 'includes' (valid keys: exclude, "
      "include, qconfig, type)",
      SLIM_CONFIG_ERROR_UNKNOWN_KEY },
    { "ext_int_out_of_range",
      lq
          + "        weight:\n          dtype: int8\n          scope: per_group\n"
            "          symmetric: true\n          method: minmax\n          ext:\n"
            "            group_size: 0\n",
      "config.yaml:12:25: process[0] (linear_quant): 'qconfig.weight.ext.group-size' = 0 is "
      "outside 1..1024",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "ext_enum_bad",
      lq
          + "        weight:\n          dtype: int8\n          scope: per_group\n"
            "          symmetric: true\n          method: minmax\n          ext:\n"
            "            aggregation_type: median\n",
      "config.yaml:12:31: process[0] (linear_quant): 'qconfig.weight.ext.aggregation-type' must "
      "be one of max, mean; got 'median'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    // -- numbers
    { "double_out_of_range", head + "  process:\n    - type: iter_smooth\n      alpha: 1.5\n",
      "config.yaml:5:14: process[0] (iterative_smooth): 'alpha' = 1.5 is outside 0..1",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "double_not_a_number", head + "  process:\n    - type: iter_smooth\n      alpha: high\n",
      "config.yaml:5:14: process[0] (iterative_smooth): 'alpha' must be a number, got 'high'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "double_quoted", head + "  process:\n    - type: iter_smooth\n      alpha: \"0.5\"\n",
      "config.yaml:5:14: process[0] (iterative_smooth): 'alpha' must be a number, got the string "
      "\"0.5\"",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "double_nan", head + "  process:\n    - type: iter_smooth\n      alpha: .nan\n",
      "config.yaml:5:14: process[0] (iterative_smooth): 'alpha' must be a number, got '.nan'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "float_hex", head + "  process:\n    - type: iter_smooth\n      scale_min: 0x1p-3\n",
      "config.yaml:5:18: process[0] (iterative_smooth): 'scale-min' must be a number, got "
      "'0x1p-3'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "int_not_integral", head + "  process:\n    - type: quarot\n      block_size: 3.5\n",
      "config.yaml:5:19: process[0] (quarot): 'block-size' must be an integer, got '3.5'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "int_leading_plus", head + "  process:\n    - type: quarot\n      block_size: +4\n",
      "config.yaml:5:19: process[0] (quarot): 'block-size' must be an integer, got '+4'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "int_huge", head + "  process:\n    - type: quarot\n      block_size: 99999999999999999999\n",
      "config.yaml:5:19: process[0] (quarot): 'block-size' must be an integer, got "
      "'99999999999999999999'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "int_above_max", head + "  process:\n    - type: quarot\n      block_size: 4097\n",
      "config.yaml:5:19: process[0] (quarot): 'block-size' = 4097 is outside 1..4096",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "uint64_negative", head + "  save: [{type: ascendv1_saver, part_file_size: -1}]\n",
      "config.yaml:3:49: save[0] (ascendv1_saver): 'part-file-size' = -1 is outside 1..1024",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "uint64_above_max", head + "  save: [{type: ascendv1_saver, part_file_size: 2048}]\n",
      "config.yaml:3:49: save[0] (ascendv1_saver): 'part-file-size' = 2048 is outside 1..1024",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "same_property_twice",
      head + "  save: [{type: ascendv1_saver, part_file_size: 4, part-file-size: 5}]\n",
      "config.yaml:3:52: save[0] (ascendv1_saver): 'part-file-size' is given twice (also as "
      "'part_file_size' at line 3, column 33)",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    // -- the other property types
    { "read_only_property", head + "  process:\n    - type: all_types\n      enabled: true\n",
      "config.yaml:5:7: process[0] (all_types): 'enabled' is read-only",
      SLIM_CONFIG_ERROR_UNKNOWN_KEY },
    { "string_null", head + "  process:\n    - type: all_types\n      label: ~\n",
      "config.yaml:5:14: process[0] (all_types): 'label' must be a string, got null",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "flags_bad_nick", head + "  process:\n    - type: all_types\n      stats: [min, p99]\n",
      "config.yaml:5:20: process[0] (all_types): 'stats[1]' must be one of min, max, hessian; got "
      "'p99'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "float_out_of_range", head + "  process:\n    - type: all_types\n      ratio: 2\n",
      "config.yaml:5:14: process[0] (all_types): 'ratio' = 2 is outside -1..1",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "uint_negative", head + "  process:\n    - type: all_types\n      n_uint: -3\n",
      "config.yaml:5:15: process[0] (all_types): 'n-uint' = -3 is outside 0..100",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "int64_below_min", head + "  process:\n    - type: all_types\n      n_int64: -6\n",
      "config.yaml:5:16: process[0] (all_types): 'n-int64' = -6 is outside "
      "-5..9223372036854775807",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "key_with_capitals", head + "  process:\n    - type: quarot\n      Block_Size: 4\n",
      "config.yaml:5:7: process[0] (quarot): unknown key 'Block_Size' (valid keys: block-size, "
      "type)",
      SLIM_CONFIG_ERROR_UNKNOWN_KEY },
    // -- group and its plugin list
    { "group_configs_empty", head + "  process:\n    - type: group\n      configs: []\n",
      "config.yaml:5:16: process[0] (group): 'configs' must not be empty",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "group_configs_missing", head + "  process:\n    - type: group\n",
      "config.yaml:4:7: process[0] (group): missing required key 'configs'",
      SLIM_CONFIG_ERROR_MISSING_KEY },
    { "group_child_bad_value",
      head + "  process:\n    - type: group\n      configs: [{type: quarot, block_size: 0}]\n",
      "config.yaml:5:44: process[0] (group): configs[0] (quarot): 'block-size' = 0 is outside "
      "1..4096",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "group_child_unknown_type",
      head + "  process:\n    - type: group\n      configs: [{type: nope}]\n",
      "config.yaml:5:24: process[0] (group): configs[0]: unknown processor type 'nope' (" + known
          + ")",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    // -- prior stages
    { "prior_not_a_list", head + "  prior: {process: []}\n" + kSave,
      "config.yaml:3:10: spec: 'prior' must be a list of stages, got a mapping",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    { "prior_stage_without_process", head + "  prior:\n    - dataset: x.jsonl\n" + kSave,
      "config.yaml:4:7: prior[0]: missing required key 'process'", SLIM_CONFIG_ERROR_MISSING_KEY },
    { "prior_stage_unknown_key",
      head + "  prior:\n    - process: [{type: quarot}]\n      datset: x.jsonl\n",
      "config.yaml:5:7: prior[0]: unknown key 'datset' (valid keys: dataset, process)",
      SLIM_CONFIG_ERROR_UNKNOWN_KEY },
    { "prior_process_empty", head + "  prior:\n    - process: []\n" + kSave,
      "config.yaml:4:16: prior[0]: 'process' must not be empty", SLIM_CONFIG_ERROR_BAD_VALUE },
    { "prior_processor_bad_value",
      head + "  prior:\n    - process: [{type: quarot, block_size: x}]\n",
      "config.yaml:4:44: prior[0].process[0] (quarot): 'block-size' must be an integer, got 'x'",
      SLIM_CONFIG_ERROR_BAD_VALUE },
    // -- YAML-level problems
    { "duplicate_key", head + "  save: [{type: ascendv1_saver, type: ascendv1_saver}]\n",
      "config.yaml:3:33: duplicate key 'type' (first at line 3, column 11)",
      SLIM_CONFIG_ERROR_PARSE },
    { "undefined_alias", "apiversion: modelslim_v1\nspec: *nope\n",
      "config.yaml:2:7: undefined alias '*nope'", SLIM_CONFIG_ERROR_PARSE },
    { "unsupported_tag", "apiversion: !!python/object:os.system modelslim_v1\n",
      "config.yaml:1:13: unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system' (only "
      "!!str, !!seq and !!map)",
      SLIM_CONFIG_ERROR_PARSE },
    { "merge_of_a_scalar", "a: &x 1\nb:\n  <<: *x\n",
      "config.yaml:3:3: a merge key ('<<') needs a mapping or a list of mappings, got a scalar",
      SLIM_CONFIG_ERROR_PARSE },
    { "merge_list_with_scalar", "a: &x {k: 1}\nb:\n  <<: [*x, 2]\n",
      "config.yaml:3:3: a merge key ('<<') list may only hold mappings, got a scalar (item 1)",
      SLIM_CONFIG_ERROR_PARSE },
    { "non_scalar_key", "? [a, b]\n: 1\n",
      "config.yaml:1:3: mapping keys must be scalars, got a sequence", SLIM_CONFIG_ERROR_PARSE },
    { "two_documents", "apiversion: modelslim_v1\n---\nspec: {}\n",
      "config.yaml:2:1: a config holds one YAML document, found a second one",
      SLIM_CONFIG_ERROR_PARSE },
    { "unclosed_flow_sequence", "apiversion: modelslim_v1\nspec: [\n",
      "config.yaml:3:1: invalid YAML: did not find expected node content while parsing a flow "
      "node",
      SLIM_CONFIG_ERROR_PARSE },
    { "tab_indentation", "spec:\n\tsave: []\n",
      "config.yaml:2:1: invalid YAML: found character that cannot start any token while scanning "
      "for the next token",
      SLIM_CONFIG_ERROR_PARSE },
  };
  return cases;
}

TEST (ConfigBad, TableHasAtLeastThirtyCases)
{
  EXPECT_GE (bad_cases ().size (), 30u);
}

TEST (ConfigBad, EachCaseGivesItsExactLocationAndMessage)
{
  RegistryPtr registry = make_registry ();
  for (const BadCase &c : bad_cases ())
    {
      SCOPED_TRACE (c.name);
      GError *error = nullptr;
      PipelinePtr pipeline = load (registry.get (), c.yaml, &error);
      EXPECT_EQ (pipeline, nullptr);
      ASSERT_NE (error, nullptr);
      EXPECT_EQ (error->domain, SLIM_CONFIG_ERROR);
      EXPECT_EQ (error->code, c.code) << error->message;
      EXPECT_EQ (std::string (error->message), c.expected);
      g_clear_error (&error);
    }
}

TEST (ConfigBad, AllErrorsAreCollectedInFileOrder)
{
  RegistryPtr registry = make_registry ();
  std::string text = std::string (kHead)
                     + "  runner: fast\n"
                       "  process:\n"
                       "    - type: quarot\n"
                       "      block_size: 0\n"
                       "    - type: nope\n"
                       "    - type: iter_smooth\n"
                       "      alpha: 2\n"
                       "      beta: 1\n"
                       "  save: [{type: ascendv1_saver, part_file_size: 0}]\n"
                       "  extra: 1\n";
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (), text, &error);
  ASSERT_EQ (pipeline, nullptr);
  ASSERT_NE (error, nullptr);
  std::string expected
      = "config.yaml:3:11: spec: 'runner' must be one of auto, model_wise, layer_wise, "
        "dp_layer_wise; got 'fast'\n"
        "config.yaml:6:19: process[0] (quarot): 'block-size' = 0 is outside 1..4096\n"
        "config.yaml:7:13: process[1]: unknown processor type 'nope' ("
        + std::string (kKnown)
        + ")\n"
          "config.yaml:9:14: process[2] (iterative_smooth): 'alpha' = 2 is outside 0..1\n"
          "config.yaml:10:7: process[2] (iterative_smooth): unknown key 'beta' (valid keys: "
          "alpha, enable-subgraph-type, include, scale-min, symmetric, type)\n"
          "config.yaml:11:49: save[0] (ascendv1_saver): 'part-file-size' = 0 is outside 1..1024\n"
          "config.yaml:12:3: spec: unknown key 'extra' (valid keys: dataset, default_text, "
          "prior, process, runner, save)";
  EXPECT_EQ (std::string (error->message), expected);
  EXPECT_EQ (error->code, SLIM_CONFIG_ERROR_BAD_VALUE); // the first error's code
  g_clear_error (&error);
}

TEST (ConfigBad, ErrorsInAliasedValuesPointAtTheAnchor)
{
  RegistryPtr registry = make_registry ();
  std::string text = "apiversion: modelslim_v1\n"
                     "w: &w {dtype: int9, scope: per_channel, symmetric: true, method: minmax}\n"
                     "spec:\n"
                     "  process:\n"
                     "    - type: linear_quant\n"
                     "      qconfig: {weight: *w}\n";
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (), text, &error);
  ASSERT_EQ (pipeline, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (std::string (error->message),
             "config.yaml:2:15: process[0] (linear_quant): 'qconfig.weight.dtype' must be one of "
             "float, int8, int4; got 'int9'");
  g_clear_error (&error);
}

// ---- good configs ----------------------------------------------------------

// Reads property @name of @object as an object (transfer full).
ObjectPtr
get_object (gpointer object, const char *name)
{
  GObject *value = nullptr;
  g_object_get (object, name, &value, NULL);
  return ObjectPtr (value);
}

int
get_enum (gpointer object, const char *name)
{
  int value = -1;
  g_object_get (object, name, &value, NULL);
  return value;
}

gboolean
get_bool (gpointer object, const char *name)
{
  gboolean value = FALSE;
  g_object_get (object, name, &value, NULL);
  return value;
}

std::vector<std::string>
get_strv (gpointer object, const char *name)
{
  char **value = nullptr;
  g_object_get (object, name, &value, NULL);
  std::vector<std::string> out;
  for (guint i = 0; value != nullptr && value[i] != nullptr; i++)
    out.push_back (value[i]);
  g_strfreev (value);
  return out;
}

// msModelSlim's dense-w8a8-v1.yaml (spec 4.4), verbatim.
const char *const kDenseW8a8 = R"(apiversion: modelslim_v1

spec:
  process:
    - type: "linear_quant"
      qconfig:
        act:
          scope: "per_tensor"   # default is per_tensor
          dtype: "int8"        # default is int8
          symmetric: False      # default is True
          method: "minmax"      # default is minmax
        weight:
          scope: "per_channel"   # default is per_channel
          dtype: "int8"        # default is int8
          symmetric: True       # default is True
          method: "minmax"      # default is minmax
      include: ["*"]
      exclude: ["*down_proj*"]

  save:
    - type: "ascendv1_saver"
      part_file_size: 4
)";

TEST (ConfigGood, DenseW8a8FromMsModelSlim)
{
  RegistryPtr registry = make_registry ();
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (), kDenseW8a8, &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  EXPECT_TRUE (slim_pipeline_validate (pipeline.get (), &error));
  GPtrArray *processors = slim_pipeline_get_processors (pipeline.get ());
  ASSERT_EQ (processors->len, 1u);
  gpointer lq = g_ptr_array_index (processors, 0);
  EXPECT_STREQ (slim_processor_get_type_name (SLIM_PROCESSOR (lq)), "linear_quant");
  ObjectPtr qconfig = get_object (lq, "qconfig");
  ASSERT_NE (qconfig, nullptr);
  ObjectPtr act = get_object (qconfig.get (), "act");
  ObjectPtr weight = get_object (qconfig.get (), "weight");
  ASSERT_NE (act, nullptr);
  ASSERT_NE (weight, nullptr);
  EXPECT_EQ (get_enum (act.get (), "scope"), SLIM_TEST_QSCOPE_PER_TENSOR);
  EXPECT_EQ (get_enum (weight.get (), "scope"), SLIM_TEST_QSCOPE_PER_CHANNEL);
  EXPECT_EQ (get_enum (act.get (), "dtype"), SLIM_TEST_QDTYPE_INT8);
  EXPECT_FALSE (get_bool (act.get (), "symmetric"));
  EXPECT_TRUE (get_bool (weight.get (), "symmetric"));
  EXPECT_EQ (get_strv (lq, "include"), std::vector<std::string> ({ "*" }));
  EXPECT_EQ (get_strv (lq, "exclude"), std::vector<std::string> ({ "*down_proj*" }));

  GPtrArray *savers = slim_pipeline_get_savers (pipeline.get ());
  ASSERT_EQ (savers->len, 1u);
  guint64 part = 0;
  g_object_get (g_ptr_array_index (savers, 0), "part-file-size", &part, NULL);
  EXPECT_EQ (part, 4u);
  EXPECT_STREQ (slim_pipeline_get_dataset (pipeline.get ()), "mix_calib.jsonl");
  EXPECT_STREQ (slim_pipeline_get_runner_name (pipeline.get ()), "auto");
}

// msModelSlim's moe-w8a8-mix-v1.yaml (spec 4.4): anchors at the top level,
// aliases inside a group.
const char *const kMoeMix = R"(apiversion: modelslim_v1

default_w8a8_dynamic: &default_w8a8_dynamic
  act:
    scope: "per_token"   # default is per_tensor
    dtype: "int8"        # default is int8
    symmetric: True      # default is True
    method: "minmax"      # default is minmax
  weight:
    scope: "per_channel"   # default is per_channel
    dtype: "int8"        # default is int8
    symmetric: True       # default is True
    method: "minmax"      # default is minmax

default_w8a8: &default_w8a8
  act:
    scope: "per_tensor"   # default is per_tensor
    dtype: "int8"        # default is int8
    symmetric: False      # default is True
    method: "minmax"      # default is minmax
  weight:
    scope: "per_channel"   # default is per_channel
    dtype: "int8"        # default is int8
    symmetric: True       # default is True
    method: "minmax"      # default is minmax

spec:
  process:
    - type: "group"
      configs:
        - type: "linear_quant"
          qconfig: *default_w8a8
          include: ["*self_attn*"]

        - type: "linear_quant"
          qconfig: *default_w8a8_dynamic
          include: ["*mlp*"]
          exclude: ["*gate"]

  save:
    - type: "ascendv1_saver"
      part_file_size: 4
)";

TEST (ConfigGood, MoeMixWithAnchorsAndAGroup)
{
  RegistryPtr registry = make_registry ();
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (), kMoeMix, &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  ASSERT_TRUE (slim_pipeline_validate (pipeline.get (), &error)) << error->message;
  GPtrArray *processors = slim_pipeline_get_processors (pipeline.get ());
  ASSERT_EQ (processors->len, 1u);
  GPtrArray *configs = nullptr;
  g_object_get (g_ptr_array_index (processors, 0), "configs", &configs, NULL);
  ASSERT_NE (configs, nullptr);
  ASSERT_EQ (configs->len, 2u);
  ObjectPtr q0 = get_object (g_ptr_array_index (configs, 0), "qconfig");
  ObjectPtr q1 = get_object (g_ptr_array_index (configs, 1), "qconfig");
  ObjectPtr act0 = get_object (q0.get (), "act");
  ObjectPtr act1 = get_object (q1.get (), "act");
  EXPECT_EQ (get_enum (act0.get (), "scope"), SLIM_TEST_QSCOPE_PER_TENSOR);
  EXPECT_FALSE (get_bool (act0.get (), "symmetric"));
  EXPECT_EQ (get_enum (act1.get (), "scope"), SLIM_TEST_QSCOPE_PER_TOKEN);
  EXPECT_TRUE (get_bool (act1.get (), "symmetric"));
  // Each use of an alias builds its own object.
  EXPECT_NE (q0.get (), q1.get ());
  EXPECT_EQ (get_strv (g_ptr_array_index (configs, 1), "exclude"),
             std::vector<std::string> ({ "*gate" }));
  g_ptr_array_unref (configs);
}

// msModelSlim's qwq-32b-w8a8.yaml (spec 4.4): metadata, quarot, iter_smooth
// with a float in exponent notation and quoted list items, runner, dataset.
const char *const kQwq = R"(apiversion: modelslim_v1
metadata:
  config_id: qwq-32b-dense-w8a8
  score: 90
  verified_model_types:
    - Qwen-QwQ-32B
    - QwQ-32B
  label:
    w_bit: 8
    a_bit: 8
    is_sparse: False
    kv_cache: False

default_w8a8: &default_w8a8
  act:
    scope: "per_tensor"
    dtype: "int8"
    symmetric: false
    method: "minmax"
  weight:
    scope: "per_channel"
    dtype: "int8"
    symmetric: true
    method: "minmax"


spec:
  process:
    - type: "quarot"
      block_size: 32
    - type: "iter_smooth"
      alpha: 0.5
      scale_min: 1e-5
      symmetric: true
      enable_subgraph_type:
        - 'norm-linear'
        - 'up-down'
      include:
        - "*"
    - type: "linear_quant"
      qconfig: *default_w8a8
      include:
        - "*"
      exclude:
        - "lm_head"
        - "*.down_proj"
    - type: "dynamic_cache"
      qconfig:
        scope: "per_channel"
        dtype: "int8"
        symmetric: True
        method: "minmax"
      include:
        - "*"
  runner: "model_wise"
  dataset: autocodebench.jsonl
  save:
    - type: "ascendv1_saver"
      part_file_size: 4
)";

TEST (ConfigGood, QwqWithMetadataQuarotAndIterSmooth)
{
  RegistryPtr registry = make_registry ();
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (), kQwq, &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  GPtrArray *processors = slim_pipeline_get_processors (pipeline.get ());
  ASSERT_EQ (processors->len, 4u);
  int block_size = 0;
  g_object_get (g_ptr_array_index (processors, 0), "block-size", &block_size, NULL);
  EXPECT_EQ (block_size, 32);
  gpointer smooth = g_ptr_array_index (processors, 1);
  EXPECT_STREQ (slim_processor_get_type_name (SLIM_PROCESSOR (smooth)), "iterative_smooth");
  double alpha = 0;
  float scale_min = 0;
  g_object_get (smooth, "alpha", &alpha, "scale-min", &scale_min, NULL);
  EXPECT_EQ (alpha, 0.5);
  EXPECT_EQ (scale_min, 1e-5f);
  EXPECT_EQ (get_strv (smooth, "enable-subgraph-type"),
             std::vector<std::string> ({ "norm-linear", "up-down" }));
  EXPECT_STREQ (slim_processor_get_type_name (SLIM_PROCESSOR (g_ptr_array_index (processors, 3))),
                "kv_cache_quant");
  EXPECT_STREQ (slim_pipeline_get_runner_name (pipeline.get ()), "model_wise");
  EXPECT_STREQ (slim_pipeline_get_dataset (pipeline.get ()), "autocodebench.jsonl");
}

TEST (ConfigGood, MergeKeysOverrideAnAnchoredQconfig)
{
  RegistryPtr registry = make_registry ();
  std::string text
      = "apiversion: modelslim_v1\n"
        "base: &base\n"
        "  act: {dtype: int8, scope: per_tensor, symmetric: false, method: minmax}\n"
        "  weight: {dtype: int8, scope: per_channel, symmetric: true, method: minmax}\n"
        "dyn_act: &dyn_act {act: {dtype: int8, scope: per_token, symmetric: true, method: "
        "minmax}}\n"
        "spec:\n"
        "  process:\n"
        "    - type: linear_quant\n"
        "      qconfig:\n"
        "        <<: [*dyn_act, *base]\n";
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (), text, &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  gpointer lq = g_ptr_array_index (slim_pipeline_get_processors (pipeline.get ()), 0);
  ObjectPtr qconfig = get_object (lq, "qconfig");
  ObjectPtr act = get_object (qconfig.get (), "act");
  ObjectPtr weight = get_object (qconfig.get (), "weight");
  ASSERT_NE (weight, nullptr);
  // dyn_act comes first in the merge list, so its act wins over base's.
  EXPECT_EQ (get_enum (act.get (), "scope"), SLIM_TEST_QSCOPE_PER_TOKEN);
  EXPECT_EQ (get_enum (weight.get (), "scope"), SLIM_TEST_QSCOPE_PER_CHANNEL);
}

TEST (ConfigGood, EveryPropertyTypeConverts)
{
  RegistryPtr registry = make_registry ();
  std::string text = std::string (kHead)
                     + "  process:\n"
                       "    - type: all_types\n"
                       "      n_uint: 100\n"
                       "      n-int64: -5\n"
                       "      n_uint64: 18446744073709551615\n"
                       "      label: 123\n"
                       "      stats: [min, hessian]\n"
                       "      ratio: -1\n";
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (), text, &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  gpointer p = g_ptr_array_index (slim_pipeline_get_processors (pipeline.get ()), 0);
  guint n_uint = 0;
  gint64 n_int64 = 0;
  guint64 n_uint64 = 0;
  char *label = nullptr;
  guint stats = 0;
  float ratio = 0;
  g_object_get (p, "n-uint", &n_uint, "n-int64", &n_int64, "n-uint64", &n_uint64, "label", &label,
                "stats", &stats, "ratio", &ratio, NULL);
  EXPECT_EQ (n_uint, 100u);
  EXPECT_EQ (n_int64, -5);
  EXPECT_EQ (n_uint64, G_MAXUINT64);
  EXPECT_STREQ (label, "123"); // a plain number is a fine string
  EXPECT_EQ (stats, (guint)(SLIM_TEST_STAT_MIN | SLIM_TEST_STAT_HESSIAN));
  EXPECT_EQ (ratio, -1.0f);
  g_free (label);
}

TEST (ConfigGood, PythonStyleBooleansAndDefaults)
{
  RegistryPtr registry = make_registry ();
  std::string text = std::string (kLinearHead)
                     + "        weight: {dtype: int4, scope: per_group, symmetric: FALSE, method: "
                       "minmax, ext: {group_size: 64}}\n";
  GError *error = nullptr;
  PipelinePtr pipeline = load (registry.get (), text, &error);
  ASSERT_NE (pipeline, nullptr) << error->message;
  gpointer lq = g_ptr_array_index (slim_pipeline_get_processors (pipeline.get ()), 0);
  ObjectPtr qconfig = get_object (lq, "qconfig");
  ObjectPtr act = get_object (qconfig.get (), "act");
  ObjectPtr weight = get_object (qconfig.get (), "weight");
  EXPECT_EQ (act, nullptr); // not given: the plugin decides its default
  EXPECT_FALSE (get_bool (weight.get (), "symmetric"));
  ObjectPtr ext = get_object (weight.get (), "ext");
  ASSERT_NE (ext, nullptr);
  int group_size = 0, aggregation = -1;
  g_object_get (ext.get (), "group-size", &group_size, "aggregation-type", &aggregation, NULL);
  EXPECT_EQ (group_size, 64);
  EXPECT_EQ (aggregation, 0); // the pspec default, max
}

// ---- slim_config_object_new directly ----------------------------------------

TEST (ConfigObject, BuildsAnyGObjectTypeFromAMapping)
{
  GError *error = nullptr;
  NodePtr root
      = parse ("dtype: int4\nscope: per_group\nsymmetric: true\nmethod: histogram\n", &error);
  ASSERT_NE (root, nullptr) << error->message;
  GPtrArray *errors = slim_config_errors_new ();
  ObjectPtr object (slim_config_object_new (slim_test_qconfig_get_type (), root.get (), nullptr,
                                            "act", nullptr, errors));
  ASSERT_NE (object, nullptr);
  EXPECT_EQ (errors->len, 0u);
  EXPECT_EQ (get_enum (object.get (), "dtype"), SLIM_TEST_QDTYPE_INT4);
  g_ptr_array_unref (errors);
}

TEST (ConfigObject, ErrorsPropagateAsOneErrorWithOneLinePerProblem)
{
  GError *error = nullptr;
  NodePtr root = parse ("dtype: int5\nscope: per_group\nsymmetric: 1\n", &error);
  ASSERT_NE (root, nullptr) << error->message;
  GPtrArray *errors = slim_config_errors_new ();
  ObjectPtr object (slim_config_object_new (slim_test_qconfig_get_type (), root.get (), nullptr,
                                            "act", nullptr, errors));
  EXPECT_EQ (object, nullptr);
  ASSERT_EQ (errors->len, 3u);
  EXPECT_FALSE (slim_config_errors_propagate (errors, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (std::string (error->message),
             "config.yaml:1:8: act: 'dtype' must be one of float, int8, int4; got 'int5'\n"
             "config.yaml:3:12: act: 'symmetric' must be true or false, got '1'\n"
             "config.yaml:1:1: act: missing required key 'method'");
  g_clear_error (&error);
  g_ptr_array_unref (errors);
}

TEST (ConfigObject, PropertyTypesAConfigCannotSetAreReported)
{
  RegistryPtr registry = make_registry ();
  GError *error = nullptr;
  ASSERT_TRUE (slim_test_config_registry_add_unsettable (registry.get (), &error));
  PipelinePtr pipeline
      = load (registry.get (), std::string (kHead) + "  process: [{type: unsettable, handle: 1}]\n",
              &error);
  EXPECT_EQ (pipeline, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (std::string (error->message),
             "config.yaml:3:40: process[0] (unsettable): 'handle' has type gpointer, which a "
             "config cannot set");
  g_clear_error (&error);
}

TEST (ConfigObject, ParamFlagsRoundTrip)
{
  GParamSpec *pspec = g_param_spec_int ("x", "X", "An x.", 0, 1, 0, G_PARAM_READWRITE);
  g_param_spec_ref_sink (pspec);
  EXPECT_EQ (slim_param_spec_get_flags (pspec), SLIM_PARAM_NONE);
  slim_param_spec_set_flags (pspec, (SlimParamFlags)(SLIM_PARAM_REQUIRED | SLIM_PARAM_NON_EMPTY));
  EXPECT_EQ (slim_param_spec_get_flags (pspec),
             (SlimParamFlags)(SLIM_PARAM_REQUIRED | SLIM_PARAM_NON_EMPTY));
  EXPECT_FALSE (slim_param_spec_get_plugin_kind (pspec, nullptr));
  g_param_spec_unref (pspec);

  GParamSpec *list = slim_param_spec_plugin_list ("configs", "Configs", "Children.",
                                                  SLIM_PLUGIN_KIND_SAVER, G_PARAM_READWRITE);
  g_param_spec_ref_sink (list);
  SlimPluginKind kind = SLIM_PLUGIN_KIND_PROCESSOR;
  EXPECT_TRUE (slim_param_spec_get_plugin_kind (list, &kind));
  EXPECT_EQ (kind, SLIM_PLUGIN_KIND_SAVER);
  EXPECT_EQ (G_PARAM_SPEC_VALUE_TYPE (list), SLIM_TYPE_PLUGIN_LIST);
  g_param_spec_unref (list);
}

} // namespace
