/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-schema.c: JSON Schema generation from GParamSpecs (slim-schema.h).
 *
 * Schemas are built as json-glib trees and written by a small emitter of
 * our own, which sorts object keys (JSON objects are unordered, so sorting
 * loses nothing and makes the output independent of insertion order),
 * keeps arrays in order (enum nicks in declaration order), prints numbers
 * in their shortest round-trip form and indents by two spaces.  The same
 * registry therefore always gives byte-identical files.
 */
#include "slim-schema.h"
#include "slim-json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "slim-config-object.h"
#include "slim-error.h"
#include "slim-pipeline.h"

#define SCHEMA_DIALECT "https://json-schema.org/draft/2020-12/schema"
/* Nested object properties deeper than this mean a type contains itself. */
#define MAX_SCHEMA_DEPTH 16

void
slim_schema_file_free (SlimSchemaFile *file)
{
  if (file == NULL)
    return;
  g_free (file->file_name);
  g_free (file->text);
  g_free (file);
}

/* ---- emitter ------------------------------------------------------- */

/* Schemas keep their UTF-8 text as is. */
static void
emit_string (GString *out, const char *text)
{
  slim_json_append_string (out, text, FALSE);
}

/* Integral values below 1e15 as integers ("1000", not "1e+03"), others
 * in the shortest "%.Ng" that reads back as the same double. */
static void
emit_double (GString *out, double value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  if (value == floor (value) && fabs (value) < 1e15)
    {
      g_string_append_printf (out, "%" G_GINT64_FORMAT, (gint64)value);
      return;
    }
  for (int precision = 1; precision <= 17; precision++)
    {
      g_autofree char *format = g_strdup_printf ("%%.%dg", precision);

      g_ascii_formatd (buffer, sizeof buffer, format, value);
      if (g_ascii_strtod (buffer, NULL) == value)
        break;
    }
  g_string_append (out, buffer);
}

static void
emit_indent (GString *out, guint level)
{
  for (guint i = 0; i < level; i++)
    g_string_append (out, "  ");
}

static int
compare_cstrings (gconstpointer a, gconstpointer b)
{
  return strcmp (a, b);
}

static void
emit_node (GString *out, JsonNode *node, guint level)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        GList *members = g_list_sort (json_object_get_members (object), compare_cstrings);

        if (members == NULL)
          {
            g_string_append (out, "{}");
            break;
          }
        g_string_append (out, "{\n");
        for (GList *l = members; l != NULL; l = l->next)
          {
            emit_indent (out, level + 1);
            emit_string (out, l->data);
            g_string_append (out, ": ");
            emit_node (out, json_object_get_member (object, l->data), level + 1);
            g_string_append (out, l->next != NULL ? ",\n" : "\n");
          }
        emit_indent (out, level);
        g_string_append_c (out, '}');
        g_list_free (members);
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        if (n == 0)
          {
            g_string_append (out, "[]");
            break;
          }
        g_string_append (out, "[\n");
        for (guint i = 0; i < n; i++)
          {
            emit_indent (out, level + 1);
            emit_node (out, json_array_get_element (array, i), level + 1);
            g_string_append (out, i + 1 < n ? ",\n" : "\n");
          }
        emit_indent (out, level);
        g_string_append_c (out, ']');
        break;
      }
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    case JSON_NODE_VALUE:
      {
        GType type = json_node_get_value_type (node);

        if (type == G_TYPE_STRING)
          emit_string (out, json_node_get_string (node));
        else if (type == G_TYPE_BOOLEAN)
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
        else if (type == G_TYPE_DOUBLE)
          emit_double (out, json_node_get_double (node));
        else
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
        break;
      }
    }
}

static char *
emit_document (JsonObject *root)
{
  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), root);
  GString *out = g_string_new (NULL);

  emit_node (out, node, 0);
  g_string_append_c (out, '\n');
  return g_string_free (out, FALSE);
}

/* ---- schemas of properties ----------------------------------------- */

/* A float as the double with the same shortest decimal spelling, so 0.1f
 * is written 0.1 rather than 0.10000000149011612. */
static double
float_to_double (float value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  for (int precision = 1; precision <= 9; precision++)
    {
      g_autofree char *format = g_strdup_printf ("%%.%dg", precision);
      g_ascii_formatd (buffer, sizeof buffer, format, value);
      if ((float)g_ascii_strtod (buffer, NULL) == value)
        return g_ascii_strtod (buffer, NULL);
    }
  return value;
}

static JsonArray *
string_array (const char *const *strings)
{
  JsonArray *array = json_array_new ();

  for (guint i = 0; strings != NULL && strings[i] != NULL; i++)
    json_array_add_string_element (array, strings[i]);
  return array;
}

static gboolean object_schema (JsonObject *schema,
                               GType type,
                               const char *pointer,
                               guint depth,
                               const char *owner,
                               GError **error);

static void
set_int_range (JsonObject *schema, GParamSpec *pspec)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  const GValue *def = g_param_spec_get_default_value (pspec);

  json_object_set_string_member (schema, "type", "integer");
  if (type == G_TYPE_INT)
    {
      json_object_set_int_member (schema, "minimum", G_PARAM_SPEC_INT (pspec)->minimum);
      json_object_set_int_member (schema, "maximum", G_PARAM_SPEC_INT (pspec)->maximum);
      json_object_set_int_member (schema, "default", g_value_get_int (def));
    }
  else if (type == G_TYPE_UINT)
    {
      json_object_set_int_member (schema, "minimum", G_PARAM_SPEC_UINT (pspec)->minimum);
      json_object_set_int_member (schema, "maximum", G_PARAM_SPEC_UINT (pspec)->maximum);
      json_object_set_int_member (schema, "default", g_value_get_uint (def));
    }
  else if (type == G_TYPE_INT64)
    {
      json_object_set_int_member (schema, "minimum", G_PARAM_SPEC_INT64 (pspec)->minimum);
      json_object_set_int_member (schema, "maximum", G_PARAM_SPEC_INT64 (pspec)->maximum);
      json_object_set_int_member (schema, "default", g_value_get_int64 (def));
    }
  else if (type == G_TYPE_LONG)
    {
      json_object_set_int_member (schema, "minimum", G_PARAM_SPEC_LONG (pspec)->minimum);
      json_object_set_int_member (schema, "maximum", G_PARAM_SPEC_LONG (pspec)->maximum);
      json_object_set_int_member (schema, "default", g_value_get_long (def));
    }
  else
    {
      guint64 min, max, value;

      if (type == G_TYPE_UINT64)
        {
          min = G_PARAM_SPEC_UINT64 (pspec)->minimum;
          max = G_PARAM_SPEC_UINT64 (pspec)->maximum;
          value = g_value_get_uint64 (def);
        }
      else
        {
          min = G_PARAM_SPEC_ULONG (pspec)->minimum;
          max = G_PARAM_SPEC_ULONG (pspec)->maximum;
          value = g_value_get_ulong (def);
        }
      /* JSON numbers in json-glib are gint64: a bound above G_MAXINT64
       * is the type's own limit and is left out. */
      json_object_set_int_member (schema, "minimum", (gint64)MIN (min, (guint64)G_MAXINT64));
      if (max <= (guint64)G_MAXINT64)
        json_object_set_int_member (schema, "maximum", (gint64)max);
      if (value <= (guint64)G_MAXINT64)
        json_object_set_int_member (schema, "default", (gint64)value);
    }
}

static gboolean
is_int_type (GType type)
{
  return type == G_TYPE_INT || type == G_TYPE_UINT || type == G_TYPE_INT64 || type == G_TYPE_UINT64
         || type == G_TYPE_LONG || type == G_TYPE_ULONG;
}

static gboolean
property_schema (JsonObject *schema,
                 GParamSpec *pspec,
                 const char *pointer,
                 guint depth,
                 const char *owner,
                 GError **error)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  const GValue *def = g_param_spec_get_default_value (pspec);
  const char *nick = g_param_spec_get_nick (pspec);
  const char *blurb = g_param_spec_get_blurb (pspec);
  gboolean non_empty = (slim_param_spec_get_flags (pspec) & SLIM_PARAM_NON_EMPTY) != 0;
  SlimPluginKind kind;
  GType element;

  if (nick != NULL && *nick != '\0' && strcmp (nick, pspec->name) != 0)
    json_object_set_string_member (schema, "title", nick);
  if (blurb != NULL && *blurb != '\0' && strcmp (blurb, nick) != 0)
    json_object_set_string_member (schema, "description", blurb);

  if (type == G_TYPE_BOOLEAN)
    {
      json_object_set_string_member (schema, "type", "boolean");
      json_object_set_boolean_member (schema, "default", g_value_get_boolean (def));
    }
  else if (is_int_type (type))
    set_int_range (schema, pspec);
  else if (type == G_TYPE_FLOAT)
    {
      json_object_set_string_member (schema, "type", "number");
      json_object_set_double_member (schema, "minimum",
                                     float_to_double (G_PARAM_SPEC_FLOAT (pspec)->minimum));
      json_object_set_double_member (schema, "maximum",
                                     float_to_double (G_PARAM_SPEC_FLOAT (pspec)->maximum));
      json_object_set_double_member (schema, "default", float_to_double (g_value_get_float (def)));
    }
  else if (type == G_TYPE_DOUBLE)
    {
      json_object_set_string_member (schema, "type", "number");
      json_object_set_double_member (schema, "minimum", G_PARAM_SPEC_DOUBLE (pspec)->minimum);
      json_object_set_double_member (schema, "maximum", G_PARAM_SPEC_DOUBLE (pspec)->maximum);
      json_object_set_double_member (schema, "default", g_value_get_double (def));
    }
  else if (type == G_TYPE_STRING)
    {
      json_object_set_string_member (schema, "type", "string");
      if (g_value_get_string (def) != NULL)
        json_object_set_string_member (schema, "default", g_value_get_string (def));
    }
  else if (type == G_TYPE_STRV)
    {
      JsonObject *items = json_object_new ();
      /* a boxed pspec's default is NULL: the plugin's own is recorded apart */
      const char *const *strv = g_value_get_boxed (def) != NULL
                                    ? g_value_get_boxed (def)
                                    : slim_param_spec_get_default_strv (pspec);

      json_object_set_string_member (schema, "type", "array");
      json_object_set_string_member (items, "type", "string");
      json_object_set_object_member (schema, "items", items);
      if (non_empty)
        json_object_set_int_member (schema, "minItems", 1);
      if (strv != NULL)
        json_object_set_array_member (schema, "default", string_array (strv));
    }
  else if (G_TYPE_IS_ENUM (type))
    {
      g_autoptr (GEnumClass) enum_class = g_type_class_ref (type);
      const GEnumValue *def_value = g_enum_get_value (enum_class, g_value_get_enum (def));
      JsonArray *nicks = json_array_new ();

      json_object_set_string_member (schema, "type", "string");
      for (guint i = 0; i < enum_class->n_values; i++)
        json_array_add_string_element (nicks, enum_class->values[i].value_nick);
      json_object_set_array_member (schema, "enum", nicks);
      if (def_value != NULL)
        json_object_set_string_member (schema, "default", def_value->value_nick);
    }
  else if (G_TYPE_IS_FLAGS (type))
    {
      g_autoptr (GFlagsClass) flags_class = g_type_class_ref (type);
      JsonObject *items = json_object_new ();
      JsonArray *nicks = json_array_new ();
      JsonArray *defaults = json_array_new ();

      for (guint i = 0; i < flags_class->n_values; i++)
        {
          json_array_add_string_element (nicks, flags_class->values[i].value_nick);
          if (flags_class->values[i].value != 0
              && (g_value_get_flags (def) & flags_class->values[i].value)
                     == flags_class->values[i].value)
            json_array_add_string_element (defaults, flags_class->values[i].value_nick);
        }
      json_object_set_string_member (items, "type", "string");
      json_object_set_array_member (items, "enum", nicks);
      json_object_set_string_member (schema, "type", "array");
      json_object_set_object_member (schema, "items", items);
      json_object_set_boolean_member (schema, "uniqueItems", TRUE);
      json_object_set_array_member (schema, "default", defaults);
      if (non_empty)
        json_object_set_int_member (schema, "minItems", 1);
    }
  else if (slim_param_spec_get_plugin_kind (pspec, &kind))
    {
      JsonObject *items = json_object_new ();
      g_autofree char *ref
          = g_strdup_printf ("pipeline.json#/$defs/%s", slim_plugin_kind_to_string (kind));

      json_object_set_string_member (items, "$ref", ref);
      json_object_set_string_member (schema, "type", "array");
      json_object_set_object_member (schema, "items", items);
      if (non_empty)
        json_object_set_int_member (schema, "minItems", 1);
    }
  else if (slim_param_spec_get_object_list_type (pspec, &element) && !G_TYPE_IS_ABSTRACT (element)
           && depth < MAX_SCHEMA_DEPTH)
    {
      JsonObject *items = json_object_new ();
      g_autofree char *item_pointer = g_strconcat (pointer, "/items", NULL);

      json_object_set_string_member (schema, "type", "array");
      json_object_set_object_member (schema, "items", items);
      if (non_empty)
        json_object_set_int_member (schema, "minItems", 1);
      if (!object_schema (items, element, item_pointer, depth + 1, owner, error))
        return FALSE;
    }
  else if (g_type_is_a (type, G_TYPE_OBJECT) && !G_TYPE_IS_ABSTRACT (type)
           && depth < MAX_SCHEMA_DEPTH)
    {
      if (!object_schema (schema, type, pointer, depth + 1, owner, error))
        return FALSE;
    }
  else
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s: property '%s' has type %s, which a config cannot set", owner, pspec->name,
                   g_type_name (type));
      return FALSE;
    }
  return TRUE;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* Adds "required" (and an anyOf for spellings with '-'/'_'). */
static void
add_required (JsonObject *schema, GPtrArray *required)
{
  JsonArray *plain = json_array_new ();
  JsonArray *all_of = json_array_new ();

  g_ptr_array_sort (required, compare_names);
  for (guint i = 0; i < required->len; i++)
    {
      const char *name = g_ptr_array_index (required, i);

      if (strchr (name, '-') == NULL)
        json_array_add_string_element (plain, name);
      else
        {
          /* Either spelling satisfies the loader. */
          g_autofree char *snake = g_strdelimit (g_strdup (name), "-", '_');
          JsonArray *any_of = json_array_new ();
          JsonObject *one = json_object_new ();
          JsonObject *other = json_object_new ();
          JsonObject *wrapper = json_object_new ();
          const char *names_one[] = { name, NULL };
          const char *names_other[] = { snake, NULL };

          json_object_set_array_member (one, "required", string_array (names_one));
          json_object_set_array_member (other, "required", string_array (names_other));
          json_array_add_object_element (any_of, one);
          json_array_add_object_element (any_of, other);
          json_object_set_array_member (wrapper, "anyOf", any_of);
          json_array_add_object_element (all_of, wrapper);
        }
    }
  if (json_array_get_length (plain) > 0)
    json_object_set_array_member (schema, "required", plain);
  else
    json_array_unref (plain);
  if (json_array_get_length (all_of) > 0)
    json_object_set_array_member (schema, "allOf", all_of);
  else
    json_array_unref (all_of);
}

/* Fills @schema with "type": "object", the writable properties of @type,
 * "required" and "additionalProperties": false.  @pointer is the JSON
 * pointer of @schema in its document (for the snake_case $refs). */
static gboolean
object_schema (JsonObject *schema,
               GType type,
               const char *pointer,
               guint depth,
               const char *owner,
               GError **error)
{
  g_autoptr (GTypeClass) klass = g_type_class_ref (type);
  g_autofree GParamSpec **pspecs = NULL;
  g_autoptr (GPtrArray) required = g_ptr_array_new ();
  JsonObject *properties = json_object_new ();
  guint n_pspecs = 0;

  json_object_set_string_member (schema, "type", "object");
  json_object_set_object_member (schema, "properties", properties);
  json_object_set_boolean_member (schema, "additionalProperties", FALSE);

  pspecs = g_object_class_list_properties (G_OBJECT_CLASS (klass), &n_pspecs);
  for (guint i = 0; i < n_pspecs; i++)
    {
      GParamSpec *pspec = pspecs[i];
      JsonObject *property;
      g_autofree char *child_pointer = NULL;

      if ((pspec->flags & G_PARAM_WRITABLE) == 0)
        continue;
      child_pointer = g_strdup_printf ("%s/properties/%s", pointer, pspec->name);
      property = json_object_new ();
      json_object_set_object_member (properties, pspec->name, property);
      if (!property_schema (property, pspec, child_pointer, depth, owner, error))
        return FALSE;
      if (strchr (pspec->name, '-') != NULL)
        {
          g_autofree char *snake = g_strdelimit (g_strdup (pspec->name), "-", '_');
          JsonObject *alias = json_object_new ();

          json_object_set_string_member (alias, "$ref", child_pointer);
          json_object_set_object_member (properties, snake, alias);
        }
      if ((slim_param_spec_get_flags (pspec) & SLIM_PARAM_REQUIRED) != 0)
        g_ptr_array_add (required, (gpointer)pspec->name);
    }
  add_required (schema, required);
  return TRUE;
}

static char *
file_name_of (const SlimPluginDesc *desc)
{
  return g_strdup_printf ("%s-%s.json", slim_plugin_kind_to_string (desc->kind), desc->name);
}

static char *
plugin_schema (const SlimPluginDesc *desc, GError **error)
{
  g_autoptr (JsonObject) schema = json_object_new ();
  g_autoptr (GPtrArray) required = NULL;
  g_autofree char *file_name = file_name_of (desc);
  JsonObject *properties;
  JsonObject *type_schema = json_object_new ();
  JsonArray *required_array;

  json_object_set_string_member (schema, "$schema", SCHEMA_DIALECT);
  json_object_set_string_member (schema, "$id", file_name);
  json_object_set_string_member (schema, "title", desc->name);
  if (desc->description != NULL)
    json_object_set_string_member (schema, "description", desc->description);
  if (!object_schema (schema, desc->get_type (), "#", 0, file_name, error))
    return NULL;

  /* The `type` discriminator: the name or one of its aliases. */
  if (desc->aliases != NULL && desc->aliases[0] != NULL)
    {
      JsonArray *names = json_array_new ();

      json_array_add_string_element (names, desc->name);
      for (guint i = 0; desc->aliases[i] != NULL; i++)
        json_array_add_string_element (names, desc->aliases[i]);
      json_object_set_array_member (type_schema, "enum", names);
    }
  else
    json_object_set_string_member (type_schema, "const", desc->name);
  json_object_set_string_member (type_schema, "description", "The plugin's YAML type name.");
  properties = json_object_get_object_member (schema, "properties");
  json_object_set_object_member (properties, "type", type_schema);

  if (json_object_has_member (schema, "required"))
    required_array = json_object_get_array_member (schema, "required");
  else
    {
      required_array = json_array_new ();
      json_object_set_array_member (schema, "required", required_array);
    }
  /* "type" first: it is what the loader reads first. */
  {
    JsonArray *ordered = json_array_new ();

    json_array_add_string_element (ordered, "type");
    for (guint i = 0; i < json_array_get_length (required_array); i++)
      json_array_add_string_element (ordered, json_array_get_string_element (required_array, i));
    json_object_set_array_member (schema, "required", ordered);
  }
  return emit_document (schema);
}

char *
slim_schema_generate_plugin (SlimRegistry *registry,
                             SlimPluginKind kind,
                             const char *name,
                             GError **error)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  desc = slim_registry_get_desc (registry, kind, name);
  if (desc == NULL)
    {
      /* The registry's message lists the valid names. */
      slim_registry_lookup (registry, kind, name, error);
      if (error != NULL && *error == NULL)
        g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_UNKNOWN_NAME, "unknown %s '%s'",
                     slim_plugin_kind_to_string (kind), name);
      return NULL;
    }
  return plugin_schema (desc, error);
}

static JsonObject *
ref_object (const char *ref)
{
  JsonObject *object = json_object_new ();

  json_object_set_string_member (object, "$ref", ref);
  return object;
}

/* {"oneOf": [{"$ref": "<kind>-<name>.json"}, ...]}, or false when no
 * plugin of @kind exists (an empty oneOf is not a valid schema). */
static JsonNode *
kind_union (SlimRegistry *registry, SlimPluginKind kind)
{
  g_autoptr (GPtrArray) descs = slim_registry_list (registry, kind);
  JsonObject *object;
  JsonArray *one_of;

  if (descs->len == 0)
    return json_node_init_boolean (json_node_alloc (), FALSE);
  object = json_object_new ();
  one_of = json_array_new ();
  for (guint i = 0; i < descs->len; i++)
    {
      g_autofree char *file_name = file_name_of (g_ptr_array_index (descs, i));
      json_array_add_object_element (one_of, ref_object (file_name));
    }
  json_object_set_array_member (object, "oneOf", one_of);
  return json_node_init_object (json_node_alloc (), object);
}

static JsonObject *
list_of (const char *ref, const char *description)
{
  JsonObject *list = json_object_new ();

  json_object_set_string_member (list, "type", "array");
  json_object_set_string_member (list, "description", description);
  json_object_set_object_member (list, "items", ref_object (ref));
  return list;
}

static JsonObject *
dataset_schema (const char *description, gboolean with_default)
{
  JsonObject *dataset = json_object_new ();

  json_object_set_string_member (dataset, "type", "string");
  json_object_set_string_member (dataset, "description", description);
  json_object_set_int_member (dataset, "minLength", 1);
  json_object_set_int_member (dataset, "maxLength", SLIM_PIPELINE_MAX_DATASET_CHARS);
  if (with_default)
    json_object_set_string_member (dataset, "default", SLIM_PIPELINE_DEFAULT_DATASET);
  return dataset;
}

char *
slim_schema_generate_pipeline (SlimRegistry *registry, GError **error)
{
  g_autoptr (JsonObject) schema = json_object_new ();
  JsonObject *properties = json_object_new ();
  JsonObject *apiversion = json_object_new ();
  JsonObject *spec = json_object_new ();
  JsonObject *spec_properties = json_object_new ();
  JsonObject *runner = json_object_new ();
  JsonObject *prior = json_object_new ();
  JsonObject *stage = json_object_new ();
  JsonObject *stage_properties = json_object_new ();
  JsonObject *stage_process = list_of ("#/$defs/processor", "Processors of this stage.");
  JsonObject *defs = json_object_new ();
  const char *const runners[] = { "auto", "model_wise", "layer_wise", "dp_layer_wise", NULL };
  const char *const required_top[] = { "apiversion", "spec", NULL };
  const char *const required_stage[] = { "process", NULL };

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  json_object_set_string_member (schema, "$schema", SCHEMA_DIALECT);
  json_object_set_string_member (schema, "$id", "pipeline.json");
  json_object_set_string_member (schema, "title", "slimflow modelslim_v1 pipeline");
  json_object_set_string_member (schema, "description",
                                 "A quantization pipeline config. Extra top-level keys (metadata, "
                                 "anchor holders) are allowed.");
  json_object_set_string_member (schema, "type", "object");
  json_object_set_array_member (schema, "required", string_array (required_top));
  json_object_set_object_member (schema, "properties", properties);

  json_object_set_string_member (apiversion, "const", SLIM_PIPELINE_APIVERSION);
  json_object_set_object_member (properties, "apiversion", apiversion);

  json_object_set_string_member (spec, "type", "object");
  json_object_set_boolean_member (spec, "additionalProperties", FALSE);
  json_object_set_object_member (spec, "properties", spec_properties);
  json_object_set_object_member (properties, "spec", spec);

  json_object_set_string_member (runner, "type", "string");
  json_object_set_array_member (runner, "enum", string_array (runners));
  json_object_set_string_member (runner, "default", "auto");
  json_object_set_string_member (runner, "description",
                                 "How layers are scheduled; auto means layer_wise on one device.");
  json_object_set_object_member (spec_properties, "runner", runner);

  json_object_set_int_member (stage_process, "minItems", 1);
  json_object_set_string_member (stage, "type", "object");
  json_object_set_boolean_member (stage, "additionalProperties", FALSE);
  json_object_set_array_member (stage, "required", string_array (required_stage));
  json_object_set_object_member (stage_properties, "process", stage_process);
  json_object_set_object_member (
      stage_properties, "dataset",
      dataset_schema ("Calibration data of this stage; defaults to spec.dataset.", FALSE));
  json_object_set_object_member (stage, "properties", stage_properties);
  json_object_set_string_member (prior, "type", "array");
  json_object_set_string_member (prior, "description", "Stages run before the main one.");
  json_object_set_object_member (prior, "items", stage);
  json_object_set_object_member (spec_properties, "prior", prior);

  json_object_set_object_member (spec_properties, "process",
                                 list_of ("#/$defs/processor", "Processors, in order."));
  json_object_set_object_member (spec_properties, "save",
                                 list_of ("#/$defs/saver", "Savers writing the output."));
  json_object_set_object_member (
      spec_properties, "dataset",
      dataset_schema ("Calibration data: a lab_calib file name or a path.", TRUE));
  {
    JsonObject *text = json_object_new ();
    json_object_set_string_member (text, "type", "string");
    json_object_set_int_member (text, "minLength", 1);
    json_object_set_string_member (
        text, "description",
        "msModelSlim's prompt for image-only calibration samples; no effect on text models "
        "(accepted with a warning).");
    json_object_set_object_member (spec_properties, "default_text", text);
  }

  for (guint kind = 0; kind < SLIM_PLUGIN_N_KINDS; kind++)
    json_object_set_member (defs, slim_plugin_kind_to_string ((SlimPluginKind)kind),
                            kind_union (registry, (SlimPluginKind)kind));
  json_object_set_object_member (schema, "$defs", defs);
  return emit_document (schema);
}

static int
compare_files (gconstpointer a, gconstpointer b)
{
  const SlimSchemaFile *fa = *(SlimSchemaFile *const *)a;
  const SlimSchemaFile *fb = *(SlimSchemaFile *const *)b;

  return strcmp (fa->file_name, fb->file_name);
}

GPtrArray *
slim_schema_generate_all (SlimRegistry *registry, GError **error)
{
  g_autoptr (GPtrArray) files = NULL;
  SlimSchemaFile *file;

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  files = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_schema_file_free);
  file = g_new0 (SlimSchemaFile, 1);
  file->file_name = g_strdup ("pipeline.json");
  file->text = slim_schema_generate_pipeline (registry, error);
  g_ptr_array_add (files, file);
  if (file->text == NULL)
    return NULL;

  for (guint kind = 0; kind < SLIM_PLUGIN_N_KINDS; kind++)
    {
      g_autoptr (GPtrArray) descs = slim_registry_list (registry, (SlimPluginKind)kind);

      for (guint i = 0; i < descs->len; i++)
        {
          const SlimPluginDesc *desc = g_ptr_array_index (descs, i);

          file = g_new0 (SlimSchemaFile, 1);
          file->file_name = file_name_of (desc);
          g_ptr_array_add (files, file);
          file->text = plugin_schema (desc, error);
          if (file->text == NULL)
            return NULL;
        }
    }
  g_ptr_array_sort (files, compare_files);
  return g_steal_pointer (&files);
}

char *
slim_schema_print_all (SlimRegistry *registry, GError **error)
{
  g_autoptr (GPtrArray) files = slim_schema_generate_all (registry, error);
  GString *out;

  if (files == NULL)
    return NULL;
  out = g_string_new (NULL);
  for (guint i = 0; i < files->len; i++)
    {
      const SlimSchemaFile *file = g_ptr_array_index (files, i);
      g_string_append_printf (out, "// %s\n%s", file->file_name, file->text);
    }
  return g_string_free (out, FALSE);
}

gboolean
slim_schema_write_dir (SlimRegistry *registry, const char *dir, GError **error)
{
  g_autoptr (GPtrArray) files = NULL;
  g_autoptr (GHashTable) written = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GDir) listing = NULL;
  const char *entry;

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), FALSE);
  g_return_val_if_fail (dir != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  files = slim_schema_generate_all (registry, error);
  if (files == NULL)
    return FALSE;
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot create %s: %s", dir, g_strerror (saved_errno));
      return FALSE;
    }
  for (guint i = 0; i < files->len; i++)
    {
      const SlimSchemaFile *file = g_ptr_array_index (files, i);
      g_autofree char *path = g_build_filename (dir, file->file_name, NULL);

      if (!g_file_set_contents (path, file->text, -1, error))
        return FALSE;
      g_hash_table_add (written, file->file_name);
    }

  /* Remove schemas of plugins that no longer exist. */
  listing = g_dir_open (dir, 0, error);
  if (listing == NULL)
    return FALSE;
  while ((entry = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = NULL;

      if (!g_str_has_suffix (entry, ".json") || g_hash_table_contains (written, entry))
        continue;
      path = g_build_filename (dir, entry, NULL);
      if (g_unlink (path) != 0)
        {
          int saved_errno = errno;
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       "cannot remove the stale schema %s: %s", path, g_strerror (saved_errno));
          return FALSE;
        }
    }
  return TRUE;
}
