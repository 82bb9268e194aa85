// SPDX-License-Identifier: Apache-2.0
//
// test-schemas.cpp: the JSON Schemas generated from GParamSpecs.
//
// 1. The committed schemas/ folder equals a fresh generation from the
//    plugins of this build (any difference fails, with the command that
//    regenerates them).
// 2. The generated structure, checked on the test-local plugins of
//    config-fixtures.h: types, ranges, defaults, enum nicks, nested
//    objects, required keys, snake_case spellings, the pipeline's oneOf.
// 3. Determinism and the writer's handling of stale files.
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "slim-test.h"

extern "C"
{
#include "config-fixtures.h"
#include "slim-error.h"
#include "slim-schema.h"
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
using ParserPtr = std::unique_ptr<JsonParser, ObjectDeleter>;

std::string
read_text (const std::string &path)
{
  char *data = nullptr;
  gsize n = 0;
  if (!g_file_get_contents (path.c_str (), &data, &n, nullptr))
    return std::string ();
  std::string text (data, n);
  g_free (data);
  return text;
}

std::set<std::string>
json_files_in (const std::string &dir)
{
  std::set<std::string> names;
  GDir *listing = g_dir_open (dir.c_str (), 0, nullptr);
  if (listing == nullptr)
    return names;
  const char *entry;
  while ((entry = g_dir_read_name (listing)) != nullptr)
    if (g_str_has_suffix (entry, ".json"))
      names.insert (entry);
  g_dir_close (listing);
  return names;
}

std::string
regenerate_command ()
{
  return "regenerate them with:\n  SLIMFLOW_PLUGIN_PATH=" + slim_test_build_dir () + "/plugins "
         + slim_test_build_dir () + "/framework/tools/slimflow plugins --schema --output "
         + slim_test_source_dir () + "/schemas\n(see schemas/README.md)";
}

TEST (Schemas, CommittedSchemasMatchTheBuiltPlugins)
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;
  ASSERT_TRUE (slim_registry_scan_default (registry.get (), &error))
      << "the build's plugins must load to generate schemas: " << error->message;

  std::string fresh = slim_test_make_tmpdir () + "/schemas";
  ASSERT_TRUE (slim_schema_write_dir (registry.get (), fresh.c_str (), &error)) << error->message;

  std::string committed = slim_test_source_dir () + "/schemas";
  std::set<std::string> fresh_files = json_files_in (fresh);
  std::set<std::string> committed_files = json_files_in (committed);
  EXPECT_TRUE (fresh_files.count ("pipeline.json"));
  for (const std::string &name : fresh_files)
    {
      SCOPED_TRACE (name);
      EXPECT_TRUE (committed_files.count (name))
          << "schemas/" << name << " is missing; " << regenerate_command ();
      EXPECT_EQ (read_text (committed + "/" + name), read_text (fresh + "/" + name))
          << "schemas/" << name << " is out of date; " << regenerate_command ();
    }
  for (const std::string &name : committed_files)
    EXPECT_TRUE (fresh_files.count (name))
        << "schemas/" << name << " belongs to no built plugin; " << regenerate_command ();
}

// ---- structure, on the fixture plugins ----------------------------------------

ParserPtr
parse_json (const std::string &text)
{
  ParserPtr parser (json_parser_new ());
  GError *error = nullptr;
  EXPECT_TRUE (
      json_parser_load_from_data (parser.get (), text.c_str (), (gssize)text.size (), &error))
      << (error != nullptr ? error->message : "") << "\n"
      << text;
  g_clear_error (&error);
  return parser;
}

JsonObject *
root_object (JsonParser *parser)
{
  return json_node_get_object (json_parser_get_root (parser));
}

// Follows a '/'-separated path of object members.
JsonObject *
at (JsonObject *object, const std::string &path)
{
  std::stringstream stream (path);
  std::string part;
  while (object != nullptr && std::getline (stream, part, '/'))
    {
      if (!json_object_has_member (object, part.c_str ()))
        {
          ADD_FAILURE () << "no member '" << part << "' in path " << path;
          return nullptr;
        }
      object = json_object_get_object_member (object, part.c_str ());
    }
  return object;
}

std::vector<std::string>
strings (JsonObject *object, const char *member)
{
  std::vector<std::string> out;
  if (object == nullptr || !json_object_has_member (object, member))
    return out;
  JsonArray *array = json_object_get_array_member (object, member);
  for (guint i = 0; i < json_array_get_length (array); i++)
    out.push_back (json_array_get_string_element (array, i));
  return out;
}

std::string
plugin_schema (SlimRegistry *registry, SlimPluginKind kind, const char *name)
{
  GError *error = nullptr;
  char *text = slim_schema_generate_plugin (registry, kind, name, &error);
  EXPECT_NE (text, nullptr) << (error != nullptr ? error->message : "");
  g_clear_error (&error);
  std::string out = text != nullptr ? text : "";
  g_free (text);
  return out;
}

TEST (Schemas, LinearQuantDescribesNestedObjects)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  std::string text = plugin_schema (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "linear_quant");
  ASSERT_FALSE (text.empty ());
  EXPECT_EQ (text.back (), '\n');
  ParserPtr parser = parse_json (text);
  JsonObject *schema = root_object (parser.get ());

  EXPECT_STREQ (json_object_get_string_member (schema, "$schema"),
                "https://json-schema.org/draft/2020-12/schema");
  EXPECT_STREQ (json_object_get_string_member (schema, "$id"), "processor-linear_quant.json");
  EXPECT_STREQ (json_object_get_string_member (schema, "type"), "object");
  EXPECT_FALSE (json_object_get_boolean_member (schema, "additionalProperties"));
  EXPECT_EQ (strings (schema, "required"), std::vector<std::string> ({ "type", "qconfig" }));
  EXPECT_STREQ (json_object_get_string_member (at (schema, "properties/type"), "const"),
                "linear_quant");

  JsonObject *qconfig = at (schema, "properties/qconfig");
  ASSERT_NE (qconfig, nullptr);
  EXPECT_STREQ (json_object_get_string_member (qconfig, "type"), "object");
  EXPECT_FALSE (json_object_get_boolean_member (qconfig, "additionalProperties"));
  EXPECT_EQ (strings (qconfig, "required"), std::vector<std::string> ({ "weight" }));
  EXPECT_STREQ (json_object_get_string_member (qconfig, "description"), "Act and weight schemes.");

  JsonObject *scope = at (qconfig, "properties/weight/properties/scope");
  ASSERT_NE (scope, nullptr);
  EXPECT_EQ (strings (scope, "enum"),
             std::vector<std::string> (
                 { "per_tensor", "per_channel", "per_group", "per_token", "pd_mix" }));
  EXPECT_STREQ (json_object_get_string_member (scope, "default"), "per_tensor");
  EXPECT_EQ (strings (at (qconfig, "properties/weight"), "required"),
             std::vector<std::string> ({ "dtype", "method", "scope", "symmetric" }));

  JsonObject *group_size = at (qconfig, "properties/act/properties/ext/properties/group-size");
  ASSERT_NE (group_size, nullptr);
  EXPECT_STREQ (json_object_get_string_member (group_size, "type"), "integer");
  EXPECT_EQ (json_object_get_int_member (group_size, "minimum"), 1);
  EXPECT_EQ (json_object_get_int_member (group_size, "maximum"), 1024);
  EXPECT_EQ (json_object_get_int_member (group_size, "default"), 128);
  EXPECT_STREQ (json_object_get_string_member (group_size, "title"), "Group size");

  // msModelSlim's snake_case spelling refers to the canonical entry.
  JsonObject *snake = at (qconfig, "properties/act/properties/ext/properties/group_size");
  ASSERT_NE (snake, nullptr);
  EXPECT_STREQ (json_object_get_string_member (snake, "$ref"),
                "#/properties/qconfig/properties/act/properties/ext/properties/group-size");

  JsonObject *include = at (schema, "properties/include");
  EXPECT_STREQ (json_object_get_string_member (include, "type"), "array");
  EXPECT_EQ (json_object_get_int_member (include, "minItems"), 1);
  EXPECT_STREQ (json_object_get_string_member (at (include, "items"), "type"), "string");
  EXPECT_FALSE (json_object_has_member (at (schema, "properties/exclude"), "minItems"));
}

TEST (Schemas, NumbersAliasesFlagsAndPluginLists)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));

  ParserPtr smooth
      = parse_json (plugin_schema (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "iter_smooth"));
  JsonObject *schema = root_object (smooth.get ());
  EXPECT_STREQ (json_object_get_string_member (schema, "$id"), "processor-iterative_smooth.json");
  EXPECT_EQ (strings (at (schema, "properties/type"), "enum"),
             std::vector<std::string> ({ "iterative_smooth", "iter_smooth" }));
  JsonObject *alpha = at (schema, "properties/alpha");
  EXPECT_STREQ (json_object_get_string_member (alpha, "type"), "number");
  EXPECT_EQ (json_object_get_double_member (alpha, "maximum"), 1.0);
  EXPECT_EQ (json_object_get_double_member (alpha, "default"), 0.5);
  // A float default is written in its shortest form, 1e-05, not
  // 9.9999997473787516e-06.
  EXPECT_EQ (json_object_get_double_member (at (schema, "properties/scale-min"), "default"), 1e-5);

  ParserPtr all
      = parse_json (plugin_schema (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "all_types"));
  schema = root_object (all.get ());
  JsonObject *stats = at (schema, "properties/stats");
  EXPECT_STREQ (json_object_get_string_member (stats, "type"), "array");
  EXPECT_TRUE (json_object_get_boolean_member (stats, "uniqueItems"));
  EXPECT_EQ (strings (at (stats, "items"), "enum"),
             std::vector<std::string> ({ "min", "max", "hessian" }));
  EXPECT_EQ (strings (stats, "default"), std::vector<std::string> ({ "max" }));
  EXPECT_STREQ (json_object_get_string_member (at (schema, "properties/label"), "default"), "none");
  // Read-only properties are not config keys.
  EXPECT_FALSE (json_object_has_member (at (schema, "properties"), "enabled"));
  // G_MAXUINT64 does not fit a JSON integer of json-glib: left out.
  EXPECT_FALSE (json_object_has_member (at (schema, "properties/n-uint64"), "maximum"));
  EXPECT_EQ (json_object_get_int_member (at (schema, "properties/n-int64"), "minimum"), -5);

  ParserPtr group
      = parse_json (plugin_schema (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "group"));
  schema = root_object (group.get ());
  JsonObject *configs = at (schema, "properties/configs");
  EXPECT_STREQ (json_object_get_string_member (at (configs, "items"), "$ref"),
                "pipeline.json#/$defs/processor");
  EXPECT_EQ (json_object_get_int_member (configs, "minItems"), 1);

  ParserPtr saver
      = parse_json (plugin_schema (registry.get (), SLIM_PLUGIN_KIND_SAVER, "ascendv1_saver"));
  schema = root_object (saver.get ());
  EXPECT_EQ (json_object_get_int_member (at (schema, "properties/part-file-size"), "default"), 4);
  EXPECT_STREQ (json_object_get_string_member (at (schema, "properties/part_file_size"), "$ref"),
                "#/properties/part-file-size");
}

TEST (Schemas, PipelineReferencesEveryPlugin)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  GError *error = nullptr;
  char *text = slim_schema_generate_pipeline (registry.get (), &error);
  ASSERT_NE (text, nullptr) << error->message;
  ParserPtr parser = parse_json (text);
  g_free (text);
  JsonObject *schema = root_object (parser.get ());
  EXPECT_EQ (strings (schema, "required"), std::vector<std::string> ({ "apiversion", "spec" }));
  EXPECT_STREQ (json_object_get_string_member (at (schema, "properties/apiversion"), "const"),
                "modelslim_v1");
  JsonObject *spec = at (schema, "properties/spec");
  EXPECT_FALSE (json_object_get_boolean_member (spec, "additionalProperties"));
  EXPECT_EQ (strings (at (spec, "properties/runner"), "enum"),
             std::vector<std::string> ({ "auto", "model_wise", "layer_wise", "dp_layer_wise" }));
  EXPECT_EQ (json_object_get_int_member (at (spec, "properties/dataset"), "maxLength"), 4096);
  EXPECT_STREQ (json_object_get_string_member (at (spec, "properties/process/items"), "$ref"),
                "#/$defs/processor");

  JsonArray *one_of = json_object_get_array_member (at (schema, "$defs/processor"), "oneOf");
  ASSERT_NE (one_of, nullptr);
  std::vector<std::string> refs;
  for (guint i = 0; i < json_array_get_length (one_of); i++)
    refs.push_back (
        json_object_get_string_member (json_array_get_object_element (one_of, i), "$ref"));
  EXPECT_EQ (refs, std::vector<std::string> (
                       { "processor-all_types.json", "processor-group.json",
                         "processor-iterative_smooth.json", "processor-kv_cache_quant.json",
                         "processor-linear_quant.json", "processor-quarot.json" }));
  // No runner plugin: an empty oneOf is invalid JSON Schema, so `false`.
  JsonNode *runner = json_object_get_member (at (schema, "$defs"), "runner");
  ASSERT_NE (runner, nullptr);
  EXPECT_EQ (json_node_get_value_type (runner), G_TYPE_BOOLEAN);
  EXPECT_FALSE (json_node_get_boolean (runner));
}

TEST (Schemas, OutputIsDeterministic)
{
  RegistryPtr forward (slim_test_config_registry_new (FALSE));
  RegistryPtr reverse (slim_test_config_registry_new (TRUE));
  GError *error = nullptr;
  char *a = slim_schema_print_all (forward.get (), &error);
  ASSERT_NE (a, nullptr) << error->message;
  char *b = slim_schema_print_all (reverse.get (), &error);
  ASSERT_NE (b, nullptr) << error->message;
  char *c = slim_schema_print_all (forward.get (), &error);
  ASSERT_NE (c, nullptr) << error->message;
  EXPECT_STREQ (a, b);
  EXPECT_STREQ (a, c);
  EXPECT_TRUE (g_str_has_prefix (a, "// pipeline.json\n{\n  \"$defs\": {\n"));
  EXPECT_NE (strstr (a, "// saver-ascendv1_saver.json\n"), nullptr);
  g_free (a);
  g_free (b);
  g_free (c);
}

TEST (Schemas, WriteDirReplacesStaleSchemasOnly)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  std::string dir = slim_test_make_tmpdir () + "/out";
  ASSERT_EQ (g_mkdir_with_parents (dir.c_str (), 0755), 0);
  ASSERT_TRUE (g_file_set_contents ((dir + "/processor-gone.json").c_str (), "{}", -1, nullptr));
  ASSERT_TRUE (g_file_set_contents ((dir + "/README.md").c_str (), "keep", -1, nullptr));
  GError *error = nullptr;
  ASSERT_TRUE (slim_schema_write_dir (registry.get (), dir.c_str (), &error)) << error->message;
  std::set<std::string> files = json_files_in (dir);
  EXPECT_EQ (files.size (), 8u); // pipeline + 6 processors + 1 saver
  EXPECT_FALSE (files.count ("processor-gone.json"));
  EXPECT_EQ (read_text (dir + "/README.md"), "keep");
  char *pipeline = slim_schema_generate_pipeline (registry.get (), &error);
  EXPECT_EQ (read_text (dir + "/pipeline.json"), pipeline);
  g_free (pipeline);
}

TEST (Schemas, UnknownPluginAndUnsettablePropertyAreErrors)
{
  RegistryPtr registry (slim_test_config_registry_new (FALSE));
  GError *error = nullptr;
  char *text
      = slim_schema_generate_plugin (registry.get (), SLIM_PLUGIN_KIND_SAVER, "nope", &error);
  EXPECT_EQ (text, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_UNKNOWN_NAME))
      << (error != nullptr ? error->message : "");
  g_clear_error (&error);

  ASSERT_TRUE (slim_test_config_registry_add_unsettable (registry.get (), &error));
  GPtrArray *files = slim_schema_generate_all (registry.get (), &error);
  EXPECT_EQ (files, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED));
  EXPECT_STREQ (error->message, "processor-unsettable.json: property 'handle' has type gpointer, "
                                "which a config cannot set");
  g_clear_error (&error);
}

} // namespace
