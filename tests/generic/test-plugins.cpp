// SPDX-License-Identifier: Apache-2.0
//
// test-plugins.cpp: the same checks over every plugin of the build
// (GStreamer's tests/check/generic/, codebase-models.md 8.10).  The cases
// are made at run time: a fresh SlimRegistry scans $SLIMFLOW_PLUGIN_PATH
// (the build tree's plugins/), and every plugin of every kind becomes one
// instance of each check below, named <kind>_<name>
// (Plugin.Bounds/processor_linear_quant).  A new plugin is covered the
// moment it is built, without a line of test code.
//
//   Schema      slim_schema_generate_plugin() equals the committed
//               schemas/<kind>-<name>.json byte for byte
//   Properties  every property, those of nested object properties too:
//               canonical name (lower case, '-' separated), nick, blurb,
//               READWRITE | CONSTRUCT_ONLY | STATIC_STRINGS, a default
//               inside its range; a plugin description
//   Defaults    a config holding only the required keys builds through the
//               real loader and passes validate; every property it leaves
//               out reads back as the pspec default
//   Bounds      every number at its minimum and maximum is accepted (or
//               refused by validate, at a FILE:LINE:COL), one step outside
//               is rejected at the value's FILE:LINE:COL naming the
//               property; every enum and flags nick is accepted, a bogus
//               one rejected with the valid nicks listed
//   Cli         `slimflow plugins NAME` exits 0 and shows every property;
//               `slimflow plugins --schema` includes the plugin's schema
//
// Processors and savers are loaded as a modelslim_v1 pipeline (process: or
// save: holding the one entry), runners and datasets as a plugin entry
// through slim_config_plugin_new(): each the path a user's config takes.
// Values for required keys are derived from the pspecs: the default of a
// number, boolean, enum or flags; a nested object holding its own required
// keys; one entry of another plugin for a plugin list.  A required key that
// cannot be derived (a string with no default, ...) needs a line in
// kMinimalConfigs; the Defaults case says so when it is missing.  The
// checks only use pspec and registry APIs, never how a plugin declares its
// properties.
//
// The checks live in plugin-checks.cpp and return their problems as text,
// so the GenericHarness tests at the end run them on the config fixtures
// and on a test-local plugin, and show that they find what they should.
#include "slim-test.h"

#include <iostream>
#include <string>
#include <vector>

extern "C"
{
#include "framework/config-fixtures.h"
}
#include "plugin-checks.hpp"

namespace
{

// YAML for the keys a plugin needs but the pspecs cannot supply, keyed by
// "<kind>/<name>": a mapping of the entry's own keys (no `type`).  Required
// keys it leaves out are still derived, nested objects included.
// flex_awq_ssz: its search runs the qconfig's quantizer, which must be one
// of the dynamic schemes it emulates (act per_token), not the derived
// weight-only default.
const Snippets kMinimalConfigs = {
  { "processor/flex_awq_ssz",
    "qconfig:\n"
    "  act: {scope: per_token, dtype: int8, symmetric: true, method: minmax}\n"
    "  weight: {scope: per_channel, dtype: int4, symmetric: true, method: ssz}\n" },
  // autoround_quant: strategies is a required list of objects (no default)
  { "processor/autoround_quant",
    "strategies:\n"
    "  - qconfig:\n"
    "      weight: {scope: per_channel, dtype: int8, symmetric: true, method: autoround}\n" },
};

struct ObjectDeleter
{
  void
  operator() (gpointer o) const
  {
    g_object_unref (o);
  }
};
using RegistryPtr = std::unique_ptr<SlimRegistry, ObjectDeleter>;

struct PtrArrayDeleter
{
  void
  operator() (GPtrArray *a) const
  {
    g_ptr_array_unref (a);
  }
};
using PtrArrayPtr = std::unique_ptr<GPtrArray, PtrArrayDeleter>;

std::string
error_text (GError *error)
{
  return error != nullptr ? error->message : "(no error set)";
}

const SlimPluginKind kAllKinds[] = { SLIM_PLUGIN_KIND_PROCESSOR, SLIM_PLUGIN_KIND_SAVER,
                                     SLIM_PLUGIN_KIND_RUNNER, SLIM_PLUGIN_KIND_DATASET };

// The registry every generated case uses; kept for the whole program.
struct BuildPlugins
{
  RegistryPtr registry;
  std::string scan_error;
  std::vector<PluginId> plugins;
};

BuildPlugins
scan_build_plugins ()
{
  BuildPlugins b;
  b.registry.reset (slim_registry_new ());
  if (g_getenv ("SLIMFLOW_PLUGIN_PATH") == nullptr)
    {
      b.scan_error = "SLIMFLOW_PLUGIN_PATH is not set (run the suite with meson test)";
      return b;
    }
  GError *error = nullptr;
  if (!slim_registry_scan_default (b.registry.get (), &error))
    b.scan_error = error_text (error);
  g_clear_error (&error);
  for (SlimPluginKind kind : kAllKinds)
    {
      PtrArrayPtr descs (slim_registry_list (b.registry.get (), kind));
      for (guint i = 0; i < descs->len; i++)
        {
          auto *desc = static_cast<const SlimPluginDesc *> (g_ptr_array_index (descs.get (), i));
          b.plugins.push_back ({ kind, desc->name });
        }
    }
  return b;
}

// Scans once, when GoogleTest asks for the parameters (inside
// InitGoogleTest, before any case runs).
BuildPlugins &
build_plugins ()
{
  static BuildPlugins build = scan_build_plugins ();
  return build;
}

// ---- the generated cases ---------------------------------------------------

class Plugin : public ::testing::TestWithParam<PluginId>
{
protected:
  SlimRegistry *
  registry ()
  {
    return build_plugins ().registry.get ();
  }
};

#define EXPECT_NO_PROBLEMS(problems)                                                               \
  do                                                                                               \
    {                                                                                              \
      const Problems &p_ = (problems);                                                             \
      EXPECT_TRUE (p_.empty ()) << GetParam ().key () << ":\n" << join (p_, "\n");                 \
    }                                                                                              \
  while (0)

TEST_P (Plugin, Schema)
{
  EXPECT_NO_PROBLEMS (
      check_schema (registry (), GetParam (), slim_test_source_dir () + "/schemas"));
}

TEST_P (Plugin, Properties)
{
  EXPECT_NO_PROBLEMS (check_properties (registry (), GetParam ()));
}

TEST_P (Plugin, Defaults)
{
  EXPECT_NO_PROBLEMS (check_defaults (registry (), GetParam (), kMinimalConfigs));
}

TEST_P (Plugin, Bounds)
{
  BoundsReport report = check_bounds (registry (), GetParam (), kMinimalConfigs);
  EXPECT_NO_PROBLEMS (report.problems);
  RecordProperty ("configs", report.n_configs);
  std::cout << GetParam ().key () << ": " << report.n_configs << " configs, "
            << report.refused_by_validate.size () << " refused by validate\n";
  for (const std::string &refused : report.refused_by_validate)
    std::cout << "  " << refused << "\n";
}

TEST_P (Plugin, Cli)
{
  EXPECT_NO_PROBLEMS (check_cli (registry (), GetParam ()));
}

std::string
instance_name (const ::testing::TestParamInfo<PluginId> &info)
{
  std::string name = info.param.kind_text () + "_" + info.param.name;
  for (char &c : name)
    if (!g_ascii_isalnum (c))
      c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P (Generic,
                          Plugin,
                          ::testing::ValuesIn (build_plugins ().plugins),
                          instance_name);

// The scan the cases come from worked and found every kind.
TEST (GenericPlugins, TheBuildPluginsLoad)
{
  const BuildPlugins &build = build_plugins ();
  EXPECT_EQ (build.scan_error, "");
  for (SlimPluginKind kind : kAllKinds)
    {
      PtrArrayPtr descs (slim_registry_list (build.registry.get (), kind));
      EXPECT_GT (descs->len, 0u) << "no " << slim_plugin_kind_to_string (kind) << " plugin in "
                                 << (g_getenv ("SLIMFLOW_PLUGIN_PATH") != nullptr
                                         ? g_getenv ("SLIMFLOW_PLUGIN_PATH")
                                         : "(unset)");
    }
}

} // namespace

// ---- the checks themselves, on plugins made to pass or fail ----------------

// A processor whose required string has no default: nothing to derive.
G_BEGIN_DECLS
#define SLIM_TYPE_GENERIC_NEEDS_PATH (slim_generic_needs_path_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimGenericNeedsPath, slim_generic_needs_path, SLIM, GENERIC_NEEDS_PATH, SlimProcessor)
G_END_DECLS

struct _SlimGenericNeedsPath
{
  SlimProcessor parent_instance;
  char *path;
};

G_DEFINE_FINAL_TYPE (SlimGenericNeedsPath, slim_generic_needs_path, SLIM_TYPE_PROCESSOR)

static void
slim_generic_needs_path_set_property (GObject *object, guint, const GValue *value, GParamSpec *)
{
  SlimGenericNeedsPath *self = SLIM_GENERIC_NEEDS_PATH (object);
  g_free (self->path);
  self->path = g_value_dup_string (value);
}

static void
slim_generic_needs_path_get_property (GObject *object, guint, GValue *value, GParamSpec *)
{
  g_value_set_string (value, SLIM_GENERIC_NEEDS_PATH (object)->path);
}

static void
slim_generic_needs_path_finalize (GObject *object)
{
  g_free (SLIM_GENERIC_NEEDS_PATH (object)->path);
  G_OBJECT_CLASS (slim_generic_needs_path_parent_class)->finalize (object);
}

static void
slim_generic_needs_path_class_init (SlimGenericNeedsPathClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->set_property = slim_generic_needs_path_set_property;
  object_class->get_property = slim_generic_needs_path_get_property;
  object_class->finalize = slim_generic_needs_path_finalize;
  GParamSpec *path = g_param_spec_string (
      "path", "Path", "A file the processor reads.", nullptr,
      (GParamFlags)(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));
  slim_param_spec_set_flags (path, SLIM_PARAM_REQUIRED);
  g_object_class_install_property (object_class, 1, path);
}

static void
slim_generic_needs_path_init (SlimGenericNeedsPath *)
{
}

namespace
{

const SlimPluginDesc needs_path_desc = {
  SLIM_PLUGIN_ABI_VERSION,
  SLIM_PLUGIN_KIND_PROCESSOR,
  "needs_path",
  nullptr,
  "A required string without default (generic test)",
  slim_generic_needs_path_get_type,
};

RegistryPtr
fixture_registry ()
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  GError *error = nullptr;
  EXPECT_TRUE (slim_registry_add_static (registry.get (), &needs_path_desc, &error))
      << error_text (error);
  g_clear_error (&error);
  return registry;
}

const PluginId fixture_linear_quant = { SLIM_PLUGIN_KIND_PROCESSOR, "linear_quant" };
const PluginId fixture_group = { SLIM_PLUGIN_KIND_PROCESSOR, "group" };
const PluginId fixture_all_types = { SLIM_PLUGIN_KIND_PROCESSOR, "all_types" };
const PluginId needs_path = { SLIM_PLUGIN_KIND_PROCESSOR, "needs_path" };

// The fixture's read-only "enabled" is the one property with wrong flags.
TEST (GenericHarness, PropertiesFlagAReadOnlyProperty)
{
  RegistryPtr registry = fixture_registry ();
  Problems problems = check_properties (registry.get (), fixture_all_types);
  ASSERT_EQ (problems.size (), 1u) << join (problems, "\n");
  EXPECT_TRUE (contains (problems[0], "property 'enabled': flags are READABLE | STATIC_STRINGS"))
      << problems[0];
  EXPECT_EQ (check_properties (registry.get (), fixture_linear_quant), Problems ());
}

// Nested required objects and a plugin list are derived; the result loads.
TEST (GenericHarness, MinimalConfigsAreDerivedFromThePspecs)
{
  RegistryPtr registry = fixture_registry ();
  for (const PluginId &id : { fixture_linear_quant, fixture_group, fixture_all_types })
    EXPECT_EQ (check_defaults (registry.get (), id, {}), Problems ()) << id.key ();

  Problems problems;
  MinimalConfig minimal (registry.get (), {});
  Yaml group = minimal.entry (fixture_group, &problems);
  EXPECT_EQ (problems, Problems ());
  EXPECT_EQ (YamlWriter ().document (group), "type: group\n"
                                             "configs:\n"
                                             "  - type: all_types\n");
  Yaml linear = minimal.entry (fixture_linear_quant, &problems);
  EXPECT_EQ (YamlWriter ().document (linear), "type: linear_quant\n"
                                              "qconfig:\n"
                                              "  weight:\n"
                                              "    dtype: int8\n"
                                              "    method: minmax\n"
                                              "    scope: per_tensor\n"
                                              "    symmetric: true\n");
}

// A required key without a derivable value fails loudly and names the
// table to add a snippet to; with a snippet the plugin passes.
TEST (GenericHarness, UnderivableRequiredKeyAsksForASnippet)
{
  RegistryPtr registry = fixture_registry ();
  Problems problems = check_defaults (registry.get (), needs_path, {});
  ASSERT_EQ (problems.size (), 1u) << join (problems, "\n");
  EXPECT_TRUE (contains (problems[0], "required key 'path' (gchararray)")) << problems[0];
  EXPECT_TRUE (contains (problems[0], "add a minimal YAML snippet for \"processor/needs_path\" "
                                      "to kMinimalConfigs"))
      << problems[0];

  Snippets snippets = { { "processor/needs_path", "path: model.bin\n" } };
  EXPECT_EQ (check_defaults (registry.get (), needs_path, snippets), Problems ());
  EXPECT_EQ (check_bounds (registry.get (), needs_path, snippets).problems, Problems ());

  // A snippet keeps its keys; the missing required ones are still derived.
  Snippets partial = { { "processor/linear_quant", "qconfig: {weight: {dtype: int4}}\n" } };
  MinimalConfig minimal (registry.get (), partial);
  Yaml linear = minimal.entry (fixture_linear_quant, &problems);
  EXPECT_TRUE (contains (YamlWriter ().document (linear), "    dtype: int4\n"
                                                          "    method: minmax\n"));

  Snippets broken = { { "processor/needs_path", "[not, a, mapping]\n" } };
  problems = check_defaults (registry.get (), needs_path, broken);
  ASSERT_FALSE (problems.empty ());
  EXPECT_TRUE (
      contains (problems[0], "kMinimalConfigs[processor/needs_path] must be a YAML mapping"))
      << problems[0];
}

// The sweep covers every numeric type at its extremes (G_MAXUINT64,
// G_MAXINT64, floats), nested enums, flags, and validate's refusals.
TEST (GenericHarness, BoundsSweepEveryTypeOfTheFixtures)
{
  RegistryPtr registry = fixture_registry ();
  BoundsReport all = check_bounds (registry.get (), fixture_all_types, {});
  EXPECT_EQ (all.problems, Problems ());
  // n-int64, n-uint, n-uint64, ratio: 4 values each; stats: 3 nicks + 1.
  EXPECT_EQ (all.n_configs, 4 * 4 + 4);

  BoundsReport linear = check_bounds (registry.get (), fixture_linear_quant, {});
  EXPECT_EQ (linear.problems, Problems ());
  // act and weight each: dtype 3+1, scope 5+1, method 2+1 nicks, group-size
  // and max-bound 4 values, aggregation 2+1.
  EXPECT_EQ (linear.n_configs, 2 * (4 + 6 + 4 + 4 + 4 + 3));
  // act int8 per_token with the derived symmetric: true passes validate.
  EXPECT_EQ (linear.refused_by_validate, std::vector<std::string> ());

  // With an asymmetric act (from a snippet) validate refuses per_token: a
  // cross-property refusal, located at the entry, is not a failure.
  Snippets asymmetric = { { "processor/linear_quant", "qconfig: {act: {symmetric: false}}\n" } };
  linear = check_bounds (registry.get (), fixture_linear_quant, asymmetric);
  EXPECT_EQ (linear.problems, Problems ());
  ASSERT_EQ (linear.refused_by_validate.size (), 1u);
  EXPECT_TRUE (contains (linear.refused_by_validate[0], "'qconfig.act.scope' = per_token"))
      << linear.refused_by_validate[0];
  EXPECT_TRUE (contains (linear.refused_by_validate[0], "no quantized linear exists"))
      << linear.refused_by_validate[0];
}

// A missing or stale committed schema is reported, with the command that
// regenerates it.
TEST (GenericHarness, SchemaCheckFindsMissingAndStaleFiles)
{
  RegistryPtr registry = fixture_registry ();
  std::string dir = slim_test_make_tmpdir ();
  Problems problems = check_schema (registry.get (), fixture_group, dir);
  ASSERT_EQ (problems.size (), 1u) << join (problems, "\n");
  EXPECT_TRUE (contains (problems[0], "/processor-group.json is missing")) << problems[0];

  GError *error = nullptr;
  char *text
      = slim_schema_generate_plugin (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "group", &error);
  ASSERT_NE (text, nullptr) << error_text (error);
  std::string schema = text;
  g_free (text);
  std::string path = dir + "/processor-group.json";
  ASSERT_TRUE (g_file_set_contents (path.c_str (), schema.c_str (), -1, nullptr));
  EXPECT_EQ (check_schema (registry.get (), fixture_group, dir), Problems ());

  // One changed byte on line 3.
  size_t third_line = schema.find ('\n', schema.find ('\n') + 1) + 1;
  schema[third_line + 2] = 'X';
  ASSERT_TRUE (g_file_set_contents (path.c_str (), schema.c_str (), -1, nullptr));
  problems = check_schema (registry.get (), fixture_group, dir);
  ASSERT_EQ (problems.size (), 1u) << join (problems, "\n");
  EXPECT_TRUE (contains (problems[0], "differs from the generated schema from line 3"))
      << problems[0];
  EXPECT_TRUE (contains (problems[0], "plugins --schema --output")) << problems[0];
}

// The CLI check passes on the fixture module the CLI can load and fails
// on a plugin it cannot see (registered statically in this program only).
TEST (GenericHarness, CliCheckRunsTheCommandOnThePluginPath)
{
  std::string good = std::string (SLIM_TEST_FIXTURE_DIR) + "/good";
  const char *old = g_getenv ("SLIMFLOW_PLUGIN_PATH");
  bool had_path = old != nullptr;
  std::string old_path = had_path ? old : "";
  g_setenv ("SLIMFLOW_PLUGIN_PATH", good.c_str (), TRUE);

  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;
  EXPECT_TRUE (slim_registry_scan_path (registry.get (), good.c_str (), &error))
      << error_text (error);
  g_clear_error (&error);
  EXPECT_EQ (check_cli (registry.get (), { SLIM_PLUGIN_KIND_PROCESSOR, "fixture_good" }),
             Problems ());

  RegistryPtr fixtures = fixture_registry ();
  Problems problems = check_cli (fixtures.get (), needs_path);
  std::string all = join (problems, "\n");
  EXPECT_TRUE (contains (all, "`slimflow plugins needs_path` exits 2")) << all;
  EXPECT_TRUE (contains (all, "does not show property 'path'")) << all;
  EXPECT_TRUE (
      contains (all, "`slimflow plugins --schema` does not print processor-needs_path.json"))
      << all;

  if (had_path)
    g_setenv ("SLIMFLOW_PLUGIN_PATH", old_path.c_str (), TRUE);
  else
    g_unsetenv ("SLIMFLOW_PLUGIN_PATH");
}

} // namespace
