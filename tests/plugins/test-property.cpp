// SPDX-License-Identifier: Apache-2.0
//
// test-property.cpp: the property tables of slim-property.h, the state
// fields of slim-state.h and the SlimLinearProcessor base class, on the
// fixtures of property-fixtures.h and scale-processor.h:
//
// 1. Every property type: the pspec made from its declaration (flags,
//    range, default), defaults reaching the fields, set/get round trips,
//    the STRV default, the .check hook, the plugin-list kind check,
//    private fields at two levels of a hierarchy, owned values freed with
//    the object (weak pointers here; ASan and LSan in CI).
// 2. The YAML loader over a table: every type built from YAML, out-of-range
//    and bad values rejected with file:line:column, required and non-empty
//    keys; the schema showing the STRV default.
// 3. SlimLinearProcessor through "scale_weights": include/exclude, decoder
//    layers only, taken linears (deployed or selected by an unfinished
//    processor), the unmatched-pattern warning, the state round trip with
//    the subclass's fields, refused states.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <json-glib/json-glib.h>

#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "property-fixtures.h"
#include "scale-processor.h"
#include "slim-config-object.h"
#include "slim-config.h"
#include "slim-schema.h"
}

namespace
{

// The harness registry (linear_quant, group, ...) plus this suite's fixtures.
SlimRegistry *
registry ()
{
  static bool added = false;
  SlimRegistry *r = harness_registry ();
  if (!added)
    {
      added = true;
      for (const SlimPluginDesc *desc : { slim_plugin_processor_prop_types_get_desc (),
                                          slim_plugin_processor_prop_child_get_desc (),
                                          slim_plugin_processor_scale_weights_get_desc () })
        {
          GError *error = nullptr;
          EXPECT_TRUE (slim_registry_add_static (r, desc, &error)) << (error ? error->message : "");
          g_clear_error (&error);
        }
    }
  return r;
}

// A processor from one YAML mapping ("test.yaml"); nullptr and the
// loader's message in *message when it is refused.
GObjectPtr<SlimProcessor>
load (const std::string &yaml, std::string *message = nullptr)
{
  GError *error = nullptr;
  SlimConfigNode *root = slim_config_parse_data (yaml.data (), yaml.size (), "test.yaml", &error);
  EXPECT_NE (root, nullptr) << (error ? error->message : "");
  if (root == nullptr)
    {
      g_clear_error (&error);
      return GObjectPtr<SlimProcessor> ();
    }
  GPtrArray *errors = slim_config_errors_new ();
  GObject *object
      = slim_config_plugin_new (registry (), SLIM_PLUGIN_KIND_PROCESSOR, root, "entry", errors);
  if (object == nullptr)
    {
      slim_config_errors_propagate (errors, &error);
      if (message != nullptr)
        *message = error->message;
      else
        ADD_FAILURE () << error->message << "\n" << yaml;
      g_clear_error (&error);
    }
  g_ptr_array_unref (errors);
  slim_config_node_unref (root);
  return GObjectPtr<SlimProcessor> (SLIM_PROCESSOR (object));
}

// The error message a YAML mapping gets.
std::string
refused (const std::string &yaml)
{
  std::string message;
  GObjectPtr<SlimProcessor> p = load (yaml, &message);
  EXPECT_FALSE (p) << "accepted:\n" << yaml;
  return message;
}

const char *const kQConfig = "qconfig: {dtype: int4, scope: per_group, symmetric: false, "
                             "method: minmax}\n";

std::vector<std::string>
strv_property (gpointer object, const char *name)
{
  char **strv = nullptr;
  g_object_get (object, name, &strv, nullptr);
  std::vector<std::string> out;
  for (char **s = strv; s != nullptr && *s != nullptr; s++)
    out.push_back (*s);
  g_strfreev (strv);
  return out;
}

bool
strv_is_null (gpointer object, const char *name)
{
  char **strv = nullptr;
  g_object_get (object, name, &strv, nullptr);
  bool null = strv == nullptr;
  g_strfreev (strv);
  return null;
}

GParamSpec *
pspec_of (GType type, const char *name)
{
  GObjectClass *klass = G_OBJECT_CLASS (g_type_class_peek (type));
  return g_object_class_find_property (klass, name);
}

// ---- 1. properties on objects -------------------------------------------

TEST (Property, DeclarationsBecomePspecs)
{
  g_autoptr (GTypeClass) klass
      = (GTypeClass *)g_type_class_ref (slim_test_props_processor_get_type ());
  guint n = 0;
  g_autofree GParamSpec **pspecs = g_object_class_list_properties (G_OBJECT_CLASS (klass), &n);
  EXPECT_EQ (n, 14u);
  for (guint i = 0; i < n; i++)
    {
      SCOPED_TRACE (pspecs[i]->name);
      EXPECT_EQ (pspecs[i]->flags & (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY),
                 G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY);
      EXPECT_EQ (pspecs[i]->flags & G_PARAM_STATIC_STRINGS, G_PARAM_STATIC_STRINGS);
    }
  GType type = slim_test_props_processor_get_type ();
  GParamSpec *count = pspec_of (type, "count");
  ASSERT_TRUE (G_IS_PARAM_SPEC_INT (count));
  EXPECT_EQ (G_PARAM_SPEC_INT (count)->minimum, -5);
  EXPECT_EQ (G_PARAM_SPEC_INT (count)->maximum, 5);
  EXPECT_EQ (G_PARAM_SPEC_INT (count)->default_value, 2);
  EXPECT_STREQ (g_param_spec_get_nick (count), "Count");
  EXPECT_STREQ (g_param_spec_get_blurb (count), "An int.");
  ASSERT_TRUE (G_IS_PARAM_SPEC_UINT (pspec_of (type, "size")));
  EXPECT_EQ (G_PARAM_SPEC_UINT (pspec_of (type, "size"))->maximum, 1000u);
  ASSERT_TRUE (G_IS_PARAM_SPEC_INT64 (pspec_of (type, "big")));
  EXPECT_EQ (G_PARAM_SPEC_INT64 (pspec_of (type, "big"))->minimum, -1000000000000);
  ASSERT_TRUE (G_IS_PARAM_SPEC_DOUBLE (pspec_of (type, "ratio")));
  EXPECT_EQ (G_PARAM_SPEC_DOUBLE (pspec_of (type, "ratio"))->default_value, 0.25);
  ASSERT_TRUE (G_IS_PARAM_SPEC_ENUM (pspec_of (type, "dtype")));
  EXPECT_EQ (G_PARAM_SPEC_VALUE_TYPE (pspec_of (type, "dtype")), SLIM_TYPE_QDTYPE);
  EXPECT_EQ (G_PARAM_SPEC_VALUE_TYPE (pspec_of (type, "qconfig")), SLIM_TYPE_QCONFIG);
  EXPECT_EQ (G_PARAM_SPEC_VALUE_TYPE (pspec_of (type, "patterns")), G_TYPE_STRV);
  // the config-level data of slim-param.h
  EXPECT_EQ (slim_param_spec_get_flags (pspec_of (type, "qconfig")), SLIM_PARAM_REQUIRED);
  EXPECT_EQ (slim_param_spec_get_flags (pspec_of (type, "children")), SLIM_PARAM_NON_EMPTY);
  EXPECT_EQ (slim_param_spec_get_flags (pspec_of (type, "count")), SLIM_PARAM_NONE);
  SlimPluginKind kind = SLIM_PLUGIN_KIND_SAVER;
  EXPECT_TRUE (slim_param_spec_get_plugin_kind (pspec_of (type, "children"), &kind));
  EXPECT_EQ (kind, SLIM_PLUGIN_KIND_PROCESSOR);
  const char *const *def = slim_param_spec_get_default_strv (pspec_of (type, "patterns"));
  ASSERT_NE (def, nullptr);
  EXPECT_STREQ (def[0], "*");
  EXPECT_EQ (def[1], nullptr);
  EXPECT_EQ (slim_param_spec_get_default_strv (pspec_of (type, "tags")), nullptr);
}

TEST (Property, DefaultsReachTheFields)
{
  GObjectPtr<GObject> p ((GObject *)g_object_new (slim_test_props_processor_get_type (), nullptr));
  gboolean flag = FALSE;
  gint count = 0, even = -1;
  guint size = 0;
  gint64 big = 0;
  double ratio = 0;
  char *label = nullptr, *path = (char *)"x";
  SlimQDtype dtype = SLIM_QDTYPE_FLOAT;
  GObject *qconfig = (GObject *)0x1;
  GPtrArray *children = (GPtrArray *)0x1;
  g_object_get (p.get (), "flag", &flag, "count", &count, "even", &even, "size", &size, "big", &big,
                "ratio", &ratio, "label", &label, "path", &path, "dtype", &dtype, "qconfig",
                &qconfig, "children", &children, nullptr);
  EXPECT_TRUE (flag);
  EXPECT_EQ (count, 2);
  EXPECT_EQ (even, 0);
  EXPECT_EQ (size, 7u);
  EXPECT_EQ (big, 10000000000);
  EXPECT_EQ (ratio, 0.25);
  EXPECT_STREQ (label, "none");
  EXPECT_EQ (path, nullptr);
  EXPECT_EQ (dtype, SLIM_QDTYPE_INT8);
  EXPECT_EQ (qconfig, nullptr);
  EXPECT_EQ (children, nullptr);
  g_free (label);
  // STRV: the declared default, an empty list, or none at all
  EXPECT_EQ (strv_property (p.get (), "patterns"), std::vector<std::string> ({ "*" }));
  EXPECT_FALSE (strv_is_null (p.get (), "extras"));
  EXPECT_TRUE (strv_property (p.get (), "extras").empty ());
  EXPECT_TRUE (strv_is_null (p.get (), "tags"));
}

TEST (Property, SetGetRoundTrip)
{
  GObjectPtr<GObject> qconfig (
      (GObject *)g_object_new (SLIM_TYPE_QCONFIG, "dtype", SLIM_QDTYPE_INT4, nullptr));
  GObjectPtr<GObject> child ((GObject *)g_object_new (slim_test_prop_child_get_type (), nullptr));
  GPtrArray *children = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (children, g_object_ref (child.get ()));
  const char *patterns[] = { "a.*", "b", nullptr };
  const char *tags[] = { "t", nullptr };
  GObjectPtr<GObject> p ((GObject *)g_object_new (
      slim_test_props_processor_get_type (), "flag", FALSE, "count", -5, "even", 42, "size", 1000u,
      "big", (gint64)-1000000000000, "ratio", -0.5, "label", "lbl", "path", "/p", "patterns",
      patterns, "tags", tags, "dtype", SLIM_QDTYPE_MXFP4, "qconfig", qconfig.get (), "children",
      children, nullptr));
  g_ptr_array_unref (children);

  gboolean flag = TRUE;
  gint count = 0, even = 0;
  guint size = 0;
  gint64 big = 0;
  double ratio = 0;
  char *label = nullptr, *path = nullptr;
  SlimQDtype dtype = SLIM_QDTYPE_FLOAT;
  GObject *got_qconfig = nullptr;
  GPtrArray *got_children = nullptr;
  g_object_get (p.get (), "flag", &flag, "count", &count, "even", &even, "size", &size, "big", &big,
                "ratio", &ratio, "label", &label, "path", &path, "dtype", &dtype, "qconfig",
                &got_qconfig, "children", &got_children, nullptr);
  EXPECT_FALSE (flag);
  EXPECT_EQ (count, -5);
  EXPECT_EQ (even, 42);
  EXPECT_EQ (size, 1000u);
  EXPECT_EQ (big, -1000000000000);
  EXPECT_EQ (ratio, -0.5);
  EXPECT_STREQ (label, "lbl");
  EXPECT_STREQ (path, "/p");
  EXPECT_EQ (dtype, SLIM_QDTYPE_MXFP4);
  EXPECT_EQ (got_qconfig, qconfig.get ());
  ASSERT_NE (got_children, nullptr);
  ASSERT_EQ (got_children->len, 1u);
  EXPECT_EQ (g_ptr_array_index (got_children, 0), child.get ());
  g_free (label);
  g_free (path);
  g_object_unref (got_qconfig);
  g_ptr_array_unref (got_children);
  EXPECT_EQ (strv_property (p.get (), "patterns"), std::vector<std::string> ({ "a.*", "b" }));
  EXPECT_EQ (strv_property (p.get (), "tags"), std::vector<std::string> ({ "t" }));
  EXPECT_TRUE (strv_property (p.get (), "extras").empty ());
}

// A .check hook refuses a value (the field keeps what it had); a plugin
// list refuses objects of another kind.
TEST (Property, CheckHookAndPluginListKind)
{
  {
    ScopedExpectLog critical (G_LOG_LEVEL_CRITICAL, "prop_types: even = 3 is odd");
    GObjectPtr<GObject> p (
        (GObject *)g_object_new (slim_test_props_processor_get_type (), "even", 3, nullptr));
    gint even = -1;
    g_object_get (p.get (), "even", &even, nullptr);
    EXPECT_EQ (even, 0);
  }
  {
    ScopedExpectLog critical (G_LOG_LEVEL_CRITICAL,
                              "SlimTestPropsProcessor: children[1] is SlimQConfig, not a "
                              "SlimProcessor");
    GPtrArray *list = g_ptr_array_new_with_free_func (g_object_unref);
    g_ptr_array_add (list, g_object_new (slim_test_prop_child_get_type (), nullptr));
    g_ptr_array_add (list, g_object_new (SLIM_TYPE_QCONFIG, nullptr));
    GObjectPtr<GObject> p (
        (GObject *)g_object_new (slim_test_props_processor_get_type (), "children", list, nullptr));
    g_ptr_array_unref (list);
    GPtrArray *children = (GPtrArray *)0x1;
    g_object_get (p.get (), "children", &children, nullptr);
    EXPECT_EQ (children, nullptr);
  }
}

// Fields of private structs, at two levels of one hierarchy, do not
// overlap: defaults and a round trip of all four.
TEST (Property, PrivateFieldsAtTwoLevels)
{
  GType type = slim_test_prop_child_get_type ();
  {
    GObjectPtr<GObject> p ((GObject *)g_object_new (type, nullptr));
    gint level = 0;
    char *name = nullptr;
    double weight = 0;
    g_object_get (p.get (), "level", &level, "name", &name, "weight", &weight, nullptr);
    EXPECT_EQ (level, 3);
    EXPECT_STREQ (name, "base");
    EXPECT_EQ (weight, 0.5);
    EXPECT_EQ (strv_property (p.get (), "items"), std::vector<std::string> ({ "a", "b" }));
    g_free (name);
  }
  const char *items[] = { "z", nullptr };
  GObjectPtr<GObject> p ((GObject *)g_object_new (type, "level", 9, "name", "nm", "weight", 0.125,
                                                  "items", items, nullptr));
  gint level = 0;
  char *name = nullptr;
  double weight = 0;
  g_object_get (p.get (), "level", &level, "name", &name, "weight", &weight, nullptr);
  EXPECT_EQ (level, 9);
  EXPECT_STREQ (name, "nm");
  EXPECT_EQ (weight, 0.125);
  EXPECT_EQ (strv_property (p.get (), "items"), std::vector<std::string> ({ "z" }));
  g_free (name);
}

// Objects and plugin lists held by properties die with their holder (the
// SlimProcessor base clears every table of the ancestry in finalize);
// strings and lists are checked by ASan/LSan in CI.
TEST (Property, OwnedValuesAreFreedWithTheObject)
{
  GObject *qconfig = (GObject *)g_object_new (SLIM_TYPE_QCONFIG, nullptr);
  GObject *child
      = (GObject *)g_object_new (slim_test_prop_child_get_type (), "name", "kid", nullptr);
  g_object_add_weak_pointer (qconfig, (gpointer *)&qconfig);
  g_object_add_weak_pointer (child, (gpointer *)&child);
  GPtrArray *children = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (children, child);
  const char *tags[] = { "t", nullptr };
  GObject *p = (GObject *)g_object_new (slim_test_props_processor_get_type (), "qconfig", qconfig,
                                        "children", children, "label", "l", "tags", tags, nullptr);
  g_ptr_array_unref (children);
  g_object_unref (qconfig);
  EXPECT_NE (qconfig, nullptr) << "the holder keeps its object";
  EXPECT_NE (child, nullptr) << "the holder keeps its children";
  g_object_unref (p);
  EXPECT_EQ (qconfig, nullptr);
  EXPECT_EQ (child, nullptr);
}

// ---- 2. the YAML loader and the schema over a table ---------------------

TEST (Property, YamlSetsEveryType)
{
  GObjectPtr<SlimProcessor> p = load (std::string ("type: prop_types\n") + kQConfig
                                      + "flag: false\n"
                                        "count: -4\n"
                                        "size: 999\n"
                                        "big: 123456789012\n"
                                        "ratio: 1e-1\n"
                                        "label: 5\n"
                                        "patterns: []\n"
                                        "tags: [x, y]\n"
                                        "dtype: int4\n"
                                        "children: [{type: prop_child, level: 5, items: []}]\n");
  ASSERT_TRUE (p);
  gboolean flag = TRUE;
  gint count = 0;
  guint size = 0;
  gint64 big = 0;
  double ratio = 0;
  char *label = nullptr;
  SlimQDtype dtype = SLIM_QDTYPE_FLOAT;
  SlimQConfig *qconfig = nullptr;
  GPtrArray *children = nullptr;
  g_object_get (p.get (), "flag", &flag, "count", &count, "size", &size, "big", &big, "ratio",
                &ratio, "label", &label, "dtype", &dtype, "qconfig", &qconfig, "children",
                &children, nullptr);
  EXPECT_FALSE (flag);
  EXPECT_EQ (count, -4);
  EXPECT_EQ (size, 999u);
  EXPECT_EQ (big, 123456789012);
  EXPECT_EQ (ratio, 0.1);
  EXPECT_STREQ (label, "5");
  EXPECT_EQ (dtype, SLIM_QDTYPE_INT4);
  ASSERT_NE (qconfig, nullptr);
  SlimQScheme scheme = slim_qconfig_get_scheme (qconfig);
  EXPECT_EQ (scheme.dtype, SLIM_QDTYPE_INT4);
  EXPECT_EQ (scheme.scope, SLIM_QSCOPE_PER_GROUP);
  EXPECT_FALSE (scheme.symmetric);
  ASSERT_NE (children, nullptr);
  ASSERT_EQ (children->len, 1u);
  GObject *child = (GObject *)g_ptr_array_index (children, 0);
  gint level = 0;
  g_object_get (child, "level", &level, nullptr);
  EXPECT_EQ (level, 5);
  // an explicit [] is kept, not replaced by the declared default
  EXPECT_TRUE (strv_property (child, "items").empty ());
  EXPECT_TRUE (strv_property (p.get (), "patterns").empty ());
  EXPECT_EQ (strv_property (p.get (), "tags"), std::vector<std::string> ({ "x", "y" }));
  EXPECT_EQ (strv_property (p.get (), "extras"), std::vector<std::string> ());
  g_free (label);
  g_object_unref (qconfig);
  g_ptr_array_unref (children);
}

TEST (Property, YamlRejectsBadValuesWithTheirPlace)
{
  const std::string head = std::string ("type: prop_types\n") + kQConfig;
  struct Case
  {
    std::string key_value;
    std::string message;
  } cases[] = {
    { "count: 6", "test.yaml:3:8: entry (prop_types): 'count' = 6 is outside -5..5" },
    { "count: -6", "test.yaml:3:8: entry (prop_types): 'count' = -6 is outside -5..5" },
    { "size: 1001", "test.yaml:3:7: entry (prop_types): 'size' = 1001 is outside 0..1000" },
    { "size: -1", "test.yaml:3:7: entry (prop_types): 'size' = -1 is outside 0..1000" },
    { "big: 1000000000001", "test.yaml:3:6: entry (prop_types): 'big' = 1000000000001 is outside "
                            "-1000000000000..1000000000000" },
    { "ratio: 1.5", "test.yaml:3:8: entry (prop_types): 'ratio' = 1.5 is outside -1..1" },
    { "flag: yes", "test.yaml:3:7: entry (prop_types): 'flag' must be true or false" },
    { "dtype: int3", "test.yaml:3:8: entry (prop_types): 'dtype' must be one of float, int8, "
                     "int4, fp8_e4m3, mxfp8, mxfp4; got 'int3'" },
    { "tags: x", "test.yaml:3:7: entry (prop_types): 'tags' must be a list of strings" },
    { "children: []", "test.yaml:3:11: entry (prop_types): 'children' must not be empty" },
    { "children: [{type: prop_child, level: 10}]",
      "test.yaml:3:38: entry (prop_types): children[0] (prop_child): 'level' = 10 is outside "
      "0..9" },
  };
  for (const Case &c : cases)
    {
      SCOPED_TRACE (c.key_value);
      std::string message = refused (head + c.key_value + "\n");
      EXPECT_EQ (message.rfind (c.message, 0), 0u) << message;
    }
  EXPECT_EQ (refused ("type: prop_types\ncount: 1\n"),
             "test.yaml:1:1: entry (prop_types): missing required key 'qconfig'");
  std::string nested = refused ("type: prop_types\nqconfig: {dtype: int8}\n");
  EXPECT_NE (nested.find ("test.yaml:2:10: entry (prop_types): missing required key "
                          "'qconfig.scope'"),
             std::string::npos)
      << nested;
}

TEST (Property, SchemaShowsEveryDefault)
{
  GError *error = nullptr;
  g_autofree char *text
      = slim_schema_generate_plugin (registry (), SLIM_PLUGIN_KIND_PROCESSOR, "prop_types", &error);
  ASSERT_NE (text, nullptr) << error->message;
  g_autoptr (JsonParser) parser = json_parser_new ();
  ASSERT_TRUE (json_parser_load_from_data (parser, text, -1, nullptr)) << text;
  JsonObject *properties = json_object_get_object_member (
      json_node_get_object (json_parser_get_root (parser)), "properties");
  auto member = [&] (const char *name) { return json_object_get_object_member (properties, name); };
  JsonArray *patterns = json_object_get_array_member (member ("patterns"), "default");
  ASSERT_NE (patterns, nullptr);
  ASSERT_EQ (json_array_get_length (patterns), 1u);
  EXPECT_STREQ (json_array_get_string_element (patterns, 0), "*");
  EXPECT_EQ (json_array_get_length (json_object_get_array_member (member ("extras"), "default")),
             0u);
  EXPECT_FALSE (json_object_has_member (member ("tags"), "default"));
  EXPECT_EQ (json_object_get_int_member (member ("count"), "minimum"), -5);
  EXPECT_EQ (json_object_get_int_member (member ("count"), "maximum"), 5);
  EXPECT_EQ (json_object_get_int_member (member ("count"), "default"), 2);
  EXPECT_EQ (json_object_get_double_member (member ("ratio"), "default"), 0.25);
  EXPECT_STREQ (json_object_get_string_member (member ("label"), "default"), "none");
  EXPECT_STREQ (json_object_get_string_member (member ("dtype"), "default"), "int8");
  EXPECT_EQ (json_object_get_int_member (member ("children"), "minItems"), 1);
  JsonArray *required = json_object_get_array_member (
      json_node_get_object (json_parser_get_root (parser)), "required");
  ASSERT_EQ (json_array_get_length (required), 2u);
  EXPECT_STREQ (json_array_get_string_element (required, 1), "qconfig");
}

// ---- slim-state.h --------------------------------------------------------

struct StateFixture
{
  gboolean b;
  gint i;
  guint u;
  gint64 x;
  double d;
};

const SlimStateField kStateFields[] = {
  SLIM_STATE_BOOLEAN (StateFixture, b), SLIM_STATE_INT (StateFixture, i),
  SLIM_STATE_UINT (StateFixture, u),    SLIM_STATE_INT64 (StateFixture, x),
  SLIM_STATE_DOUBLE (StateFixture, d),
};

TEST (State, FieldsRoundTripAndJunkIsRefused)
{
  StateFixture a = { TRUE, -7, 4000000000u, -((gint64)1 << 40), 0.1 };
  GBytes *state = SLIM_STATE_SAVE (&a, kStateFields);
  StateFixture b = { FALSE, 0, 0, 0, 0 };
  GError *error = nullptr;
  ASSERT_TRUE (SLIM_STATE_RESTORE (&b, kStateFields, state, &error)) << error->message;
  EXPECT_EQ (b.b, TRUE);
  EXPECT_EQ (b.i, -7);
  EXPECT_EQ (b.u, 4000000000u);
  EXPECT_EQ (b.x, -((gint64)1 << 40));
  EXPECT_EQ (b.d, 0.1);
  g_bytes_unref (state);
  // bytes of another table or no table at all: refused, nothing changed
  StateFixture c = { FALSE, 1, 2, 3, 4 };
  GBytes *junk = g_bytes_new_static ("\x01\x02\x03", 3);
  EXPECT_FALSE (SLIM_STATE_RESTORE (&c, kStateFields, junk, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
  EXPECT_EQ (c.i, 1);
  EXPECT_EQ (c.d, 4);
  g_bytes_unref (junk);
  GBytes *shorter = slim_state_save_fields (&a, kStateFields, 2);
  EXPECT_FALSE (SLIM_STATE_RESTORE (&c, kStateFields, shorter, &error));
  g_clear_error (&error);
  g_bytes_unref (shorter);
}

// ---- 3. SlimLinearProcessor through scale_weights ------------------------

const std::string kQ = "model.layers.0.self_attn.q_proj";
const std::string kK = "model.layers.0.self_attn.k_proj";
const std::string kUp = "model.layers.0.mlp.up_proj";
const std::string kDown = "model.layers.0.mlp.down_proj";

std::vector<SynthLinear>
linears ()
{
  return { { kQ, 4, 8, false }, { kK, 2, 8, false }, { kUp, 6, 8, false }, { kDown, 2, 6, false } };
}

std::vector<float>
weight_of (SlimLayer *layer, const std::string &module)
{
  SlimTensor *t = slim_layer_get_tensor (layer, (module + ".weight").c_str ());
  const float *data = (const float *)slim_tensor_get_data (t);
  return std::vector<float> (data, data + slim_tensor_get_n_elements (t));
}

std::vector<float>
times (std::vector<float> v, float factor)
{
  for (float &x : v)
    x *= factor;
  return v;
}

void
run_layer (SlimProcessor *p, SlimLayer *layer)
{
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (p, &error)) << error->message;
  ASSERT_TRUE (slim_processor_preprocess (p, layer, &error)) << error->message;
  ASSERT_TRUE (slim_processor_postprocess (p, layer, &error)) << error->message;
}

TEST (LinearProcessor, IncludeExcludeOnDecoderLayersOnly)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, linears (), 5));
  GObjectPtr<SlimLayer> reference (harness_synthetic_layer (0, linears (), 5));
  GObjectPtr<SlimProcessor> p = load ("type: scale_weights\nfactor: 4\n"
                                      "include: [\"*self_attn.{q,k}_proj\", \"*mlp*\"]\n"
                                      "exclude: [\"*down_proj\"]\n");
  ASSERT_TRUE (p);
  EXPECT_TRUE (slim_processor_is_data_free (p.get ()));
  EXPECT_TRUE (g_type_is_a (G_OBJECT_TYPE (p.get ()), SLIM_TYPE_LINEAR_PROCESSOR));
  run_layer (p.get (), layer.get ());
  // factor 4 is exact in float: compare bit for bit
  for (const std::string &m : { kQ, kK, kUp })
    EXPECT_EQ (weight_of (layer.get (), m), times (weight_of (reference.get (), m), 4.0f)) << m;
  EXPECT_EQ (weight_of (layer.get (), kDown), weight_of (reference.get (), kDown));
  EXPECT_EQ (slim_test_scale_processor_get_n_scaled (p.get ()), 3);
  // a pseudo-layer (index < 0: embeddings, lm_head) is left alone
  GObjectPtr<SlimLayer> head (harness_synthetic_layer (-1, { { "lm_head", 4, 8, false } }, 5));
  std::vector<float> before = weight_of (head.get (), "lm_head");
  run_layer (p.get (), head.get ());
  EXPECT_EQ (weight_of (head.get (), "lm_head"), before);
  // the defaults: include ["*"], exclude []
  GObjectPtr<SlimProcessor> all = load ("type: scale_weights\n");
  EXPECT_EQ (strv_property (all.get (), "include"), std::vector<std::string> ({ "*" }));
  EXPECT_TRUE (strv_property (all.get (), "exclude").empty ());
  GObjectPtr<SlimLayer> other (harness_synthetic_layer (0, linears (), 5));
  run_layer (all.get (), other.get ());
  EXPECT_EQ (slim_test_scale_processor_get_n_scaled (all.get ()), 4);
  EXPECT_EQ (weight_of (other.get (), kDown), times (weight_of (reference.get (), kDown), 2.0f));
}

// Taken linears: deployed ones (a SlimQLinear from linear_quant) and those
// an unfinished processor selected (an earlier group child) are skipped;
// the second kind is released by the selecting processor's postprocess.
TEST (LinearProcessor, TakenLinearsAreSkipped)
{
  GError *error = nullptr;
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, linears (), 5));
  GObjectPtr<SlimProcessor> quant = load (harness_linear_quant_yaml (
      "", "{dtype: int8, scope: per_channel, symmetric: true, method: minmax}",
      "include: [\"*q_proj\"]\n"));
  ASSERT_TRUE (quant);
  run_layer (quant.get (), layer.get ());
  ASSERT_NE (slim_layer_get_qlinear (layer.get (), kQ.c_str ()), nullptr);
  EXPECT_TRUE (slim_linear_processor_is_taken (layer.get (), kQ.c_str ()));
  EXPECT_FALSE (slim_linear_processor_is_taken (layer.get (), kK.c_str ()));

  GObjectPtr<SlimProcessor> first = load ("type: scale_weights\ninclude: [\"*k_proj\"]\n");
  GObjectPtr<SlimProcessor> second = load ("type: scale_weights\n");
  ASSERT_TRUE (slim_processor_validate (first.get (), &error));
  ASSERT_TRUE (slim_processor_validate (second.get (), &error));
  ASSERT_TRUE (slim_processor_preprocess (first.get (), layer.get (), &error));
  EXPECT_TRUE (slim_linear_processor_is_taken (layer.get (), kK.c_str ()));
  ASSERT_TRUE (slim_processor_preprocess (second.get (), layer.get (), &error));
  // second took up_proj and down_proj only
  EXPECT_EQ (slim_test_scale_processor_get_n_scaled (first.get ()), 1);
  EXPECT_EQ (slim_test_scale_processor_get_n_scaled (second.get ()), 2);
  // the state cannot be saved while a layer is in flight
  GBytes *state = slim_processor_save_state (first.get (), &error);
  EXPECT_EQ (state, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_STREQ (error->message,
                "scale_weights: the state cannot be saved in the middle of a layer");
  g_clear_error (&error);
  ASSERT_TRUE (slim_processor_postprocess (first.get (), layer.get (), &error));
  ASSERT_TRUE (slim_processor_postprocess (second.get (), layer.get (), &error));
  EXPECT_FALSE (slim_linear_processor_is_taken (layer.get (), kK.c_str ()));
  EXPECT_TRUE (slim_linear_processor_is_taken (layer.get (), kQ.c_str ()));
}

TEST (LinearProcessor, UnmatchedPatternsAreReported)
{
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, linears (), 5));
  GObjectPtr<SlimProcessor> p = load ("type: scale_weights\n"
                                      "include: [\"*q_proj\", \"*nothing*\", \"*none*\"]\n"
                                      "exclude: [\"*never*\"]\n");
  run_layer (p.get (), layer.get ());
  ScopedExpectLog include (G_LOG_LEVEL_WARNING,
                           "scale_weights: these include patterns matched no module, please "
                           "check that this is expected: '*nothing*', '*none*'");
  ScopedExpectLog exclude (G_LOG_LEVEL_WARNING,
                           "scale_weights: these exclude patterns matched no module, please "
                           "check that this is expected: '*never*'");
  GError *error = nullptr;
  EXPECT_TRUE (slim_processor_post_run (p.get (), &error));
  EXPECT_EQ (include.hits (), 1);
  EXPECT_EQ (exclude.hits (), 1);
}

// The state carries the pattern hits and the subclass's fields: a restored
// processor continues the count and warns exactly as the uninterrupted run.
TEST (LinearProcessor, StateRoundTrip)
{
  const std::string yaml = "type: scale_weights\ninclude: [\"*proj\", \"*nothing*\"]\n"
                           "exclude: [\"*down_proj\", \"*never*\"]\n";
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, linears (), 5));
  GObjectPtr<SlimProcessor> first = load (yaml);
  run_layer (first.get (), layer.get ());
  EXPECT_EQ (slim_test_scale_processor_get_n_scaled (first.get ()), 3);
  GError *error = nullptr;
  GBytes *state = slim_processor_save_state (first.get (), &error);
  ASSERT_NE (state, nullptr) << error->message;

  GObjectPtr<SlimProcessor> second = load (yaml);
  ASSERT_TRUE (slim_processor_validate (second.get (), &error));
  ASSERT_TRUE (slim_processor_restore_state (second.get (), state, &error)) << error->message;
  EXPECT_EQ (slim_test_scale_processor_get_n_scaled (second.get ()), 3);
  GObjectPtr<SlimLayer> next (harness_synthetic_layer (0, linears (), 6));
  run_layer (second.get (), next.get ());
  EXPECT_EQ (slim_test_scale_processor_get_n_scaled (second.get ()), 6);
  {
    ScopedExpectLog include (G_LOG_LEVEL_WARNING, "expected: '*nothing*'");
    ScopedExpectLog exclude (G_LOG_LEVEL_WARNING, "expected: '*never*'");
    EXPECT_TRUE (slim_processor_post_run (second.get (), &error));
    EXPECT_EQ (include.hits (), 1);
    EXPECT_EQ (exclude.hits (), 1);
  }
  // other patterns, or junk: refused
  GObjectPtr<SlimProcessor> other = load ("type: scale_weights\n");
  EXPECT_FALSE (slim_processor_restore_state (other.get (), state, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
  GBytes *junk = g_bytes_new_static ("\x01\x02\x03", 3);
  GObjectPtr<SlimProcessor> third = load (yaml);
  EXPECT_FALSE (slim_processor_restore_state (third.get (), junk, &error));
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
  g_bytes_unref (junk);
  g_bytes_unref (state);
}

TEST (LinearProcessor, BadPatternFailsValidate)
{
  std::string long_pattern (SLIM_GLOB_MAX_PATTERN_BYTES + 1, 'a');
  GObjectPtr<SlimProcessor> p = load ("type: scale_weights\ninclude: [\"" + long_pattern + "\"]\n");
  ASSERT_TRUE (p);
  GError *error = nullptr;
  EXPECT_FALSE (slim_processor_validate (p.get (), &error));
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
  EXPECT_FALSE (slim_linear_processor_is_prepared (SLIM_LINEAR_PROCESSOR (p.get ())));
}

} // namespace
