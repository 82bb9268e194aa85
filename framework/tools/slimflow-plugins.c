/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow-plugins.c: `slimflow plugins` lists the plugins found in the
 * configured plugin directories (slim_registry_scan_default: the
 * directories in $SLIMFLOW_PLUGIN_PATH or the build tree, then the install
 * directory), one line each with kind, name, aliases and description.
 *
 *   slimflow plugins                      list every plugin
 *   slimflow plugins NAME                 properties of the plugin(s) called
 *                                         NAME (name or alias, any kind): type,
 *                                         default, range or choices; object-
 *                                         typed properties shown recursively
 *   slimflow plugins --schema [NAME]      JSON Schemas (all, or NAME's)
 *   slimflow plugins --schema --output DIR   write the schemas into DIR
 *
 * Exit status: 0 ok; 1 when a plugin module fails to load or a schema
 * cannot be generated; 2 for an unknown plugin name or bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "slimflow-commands.h"
#include "slim-config-object.h"
#include "slim-registry.h"
#include "slim-schema.h"

#define COMMAND "plugins"

/* Nested object-typed properties are printed this deep at most. */
#define MAX_OBJECT_DEPTH 8

static const SlimPluginKind all_kinds[] = {
  SLIM_PLUGIN_KIND_PROCESSOR,
  SLIM_PLUGIN_KIND_SAVER,
  SLIM_PLUGIN_KIND_RUNNER,
  SLIM_PLUGIN_KIND_DATASET,
};

/* "a, b" or "-" for a desc's aliases. Free with g_free. */
static char *
join_aliases (const SlimPluginDesc *desc)
{
  if (desc->aliases == NULL || desc->aliases[0] == NULL)
    return g_strdup ("-");
  return g_strjoinv (", ", (char **)desc->aliases);
}

static void
print_list (SlimRegistry *registry)
{
  g_autoptr (GPtrArray) rows = g_ptr_array_new_with_free_func (g_free);
  gsize name_width = strlen ("NAME");
  gsize alias_width = strlen ("ALIASES");
  guint n_plugins = 0;

  /* Two passes: column widths, then the rows. */
  for (gsize k = 0; k < G_N_ELEMENTS (all_kinds); k++)
    {
      g_autoptr (GPtrArray) descs = slim_registry_list (registry, all_kinds[k]);
      for (guint i = 0; i < descs->len; i++)
        {
          const SlimPluginDesc *desc = g_ptr_array_index (descs, i);
          g_autofree char *aliases = join_aliases (desc);
          name_width = MAX (name_width, strlen (desc->name));
          alias_width = MAX (alias_width, strlen (aliases));
        }
    }

  printf ("%-10s %-*s %-*s %s\n", "KIND", (int)name_width, "NAME", (int)alias_width, "ALIASES",
          "DESCRIPTION");
  for (gsize k = 0; k < G_N_ELEMENTS (all_kinds); k++)
    {
      g_autoptr (GPtrArray) descs = slim_registry_list (registry, all_kinds[k]);
      for (guint i = 0; i < descs->len; i++)
        {
          const SlimPluginDesc *desc = g_ptr_array_index (descs, i);
          g_autofree char *aliases = join_aliases (desc);
          printf ("%-10s %-*s %-*s %s\n", slim_plugin_kind_to_string (desc->kind), (int)name_width,
                  desc->name, (int)alias_width, aliases, desc->description);
          n_plugins++;
        }
    }
  if (n_plugins == 0)
    printf ("(no plugins found; set SLIMFLOW_PLUGIN_PATH to a plugin directory)\n");
}

/* ---- one plugin's properties ------------------------------------------- */

static char *
format_double (double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  return g_strdup (g_ascii_formatd (buf, sizeof (buf), "%.17g", value));
}

/* Short type name as a YAML author sees it. */
static char *
describe_type (GParamSpec *pspec)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  SlimPluginKind kind;
  GType element;

  if (slim_param_spec_get_plugin_kind (pspec, &kind))
    return g_strdup_printf ("list of %s plugins (each entry names its type)",
                            slim_plugin_kind_to_string (kind));
  if (slim_param_spec_get_object_list_type (pspec, &element))
    return g_strdup_printf ("list of objects %s", g_type_name (element));
  if (type == G_TYPE_BOOLEAN)
    return g_strdup ("boolean");
  if (type == G_TYPE_INT || type == G_TYPE_INT64 || type == G_TYPE_LONG || type == G_TYPE_CHAR)
    return g_strdup ("integer");
  if (type == G_TYPE_UINT || type == G_TYPE_UINT64 || type == G_TYPE_ULONG || type == G_TYPE_UCHAR)
    return g_strdup ("unsigned integer");
  if (type == G_TYPE_DOUBLE || type == G_TYPE_FLOAT)
    return g_strdup ("number");
  if (type == G_TYPE_STRING)
    return g_strdup ("string");
  if (type == G_TYPE_STRV)
    return g_strdup ("list of strings");
  if (G_TYPE_IS_ENUM (type))
    return g_strdup_printf ("enum %s", g_type_name (type));
  if (G_TYPE_IS_FLAGS (type))
    return g_strdup_printf ("flags %s", g_type_name (type));
  if (g_type_is_a (type, G_TYPE_OBJECT))
    return g_strdup_printf ("object %s", g_type_name (type));
  return g_strdup (g_type_name (type));
}

/* The default as YAML would spell it. Free with g_free. */
static char *
describe_default (GParamSpec *pspec)
{
  const GValue *value = g_param_spec_get_default_value (pspec);
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);

  if (type == G_TYPE_BOOLEAN)
    return g_strdup (g_value_get_boolean (value) ? "true" : "false");
  if (type == G_TYPE_INT)
    return g_strdup_printf ("%d", g_value_get_int (value));
  if (type == G_TYPE_UINT)
    return g_strdup_printf ("%u", g_value_get_uint (value));
  if (type == G_TYPE_INT64)
    return g_strdup_printf ("%" G_GINT64_FORMAT, g_value_get_int64 (value));
  if (type == G_TYPE_UINT64)
    return g_strdup_printf ("%" G_GUINT64_FORMAT, g_value_get_uint64 (value));
  if (type == G_TYPE_LONG)
    return g_strdup_printf ("%ld", g_value_get_long (value));
  if (type == G_TYPE_ULONG)
    return g_strdup_printf ("%lu", g_value_get_ulong (value));
  if (type == G_TYPE_DOUBLE)
    return format_double (g_value_get_double (value));
  if (type == G_TYPE_FLOAT)
    return format_double (g_value_get_float (value));
  if (type == G_TYPE_STRING)
    {
      const char *s = g_value_get_string (value);
      return s != NULL ? g_strdup_printf ("\"%s\"", s) : g_strdup ("(none)");
    }
  if (G_TYPE_IS_ENUM (type))
    {
      g_autoptr (GEnumClass) klass = g_type_class_ref (type);
      GEnumValue *ev = g_enum_get_value (klass, g_value_get_enum (value));
      return g_strdup (ev != NULL ? ev->value_nick : "(invalid)");
    }
  if (G_TYPE_IS_FLAGS (type))
    {
      g_autoptr (GFlagsClass) klass = g_type_class_ref (type);
      guint flags = g_value_get_flags (value);
      GString *out = g_string_new (NULL);
      for (guint i = 0; i < klass->n_values; i++)
        if (klass->values[i].value != 0
            && (flags & klass->values[i].value) == klass->values[i].value)
          g_string_append_printf (out, "%s%s", out->len > 0 ? ", " : "",
                                  klass->values[i].value_nick);
      return g_string_free (out, FALSE);
    }
  if (type == G_TYPE_STRV)
    {
      const char *const *strv = g_value_get_boxed (value);
      g_autofree char *joined = NULL;
      if (strv == NULL)
        strv = slim_param_spec_get_default_strv (pspec);
      if (strv == NULL)
        return g_strdup ("(none)");
      joined = g_strjoinv (", ", (char **)strv);
      return g_strdup_printf ("[%s]", joined);
    }
  return g_strdup ("(none)");
}

/* "range 2 .. 8", "choices: a, b", or NULL. Free with g_free. */
static char *
describe_range (GParamSpec *pspec)
{
  if (G_IS_PARAM_SPEC_INT (pspec))
    return g_strdup_printf ("range %d .. %d", G_PARAM_SPEC_INT (pspec)->minimum,
                            G_PARAM_SPEC_INT (pspec)->maximum);
  if (G_IS_PARAM_SPEC_UINT (pspec))
    return g_strdup_printf ("range %u .. %u", G_PARAM_SPEC_UINT (pspec)->minimum,
                            G_PARAM_SPEC_UINT (pspec)->maximum);
  if (G_IS_PARAM_SPEC_INT64 (pspec))
    return g_strdup_printf ("range %" G_GINT64_FORMAT " .. %" G_GINT64_FORMAT,
                            G_PARAM_SPEC_INT64 (pspec)->minimum,
                            G_PARAM_SPEC_INT64 (pspec)->maximum);
  if (G_IS_PARAM_SPEC_UINT64 (pspec))
    return g_strdup_printf ("range %" G_GUINT64_FORMAT " .. %" G_GUINT64_FORMAT,
                            G_PARAM_SPEC_UINT64 (pspec)->minimum,
                            G_PARAM_SPEC_UINT64 (pspec)->maximum);
  if (G_IS_PARAM_SPEC_LONG (pspec))
    return g_strdup_printf ("range %ld .. %ld", G_PARAM_SPEC_LONG (pspec)->minimum,
                            G_PARAM_SPEC_LONG (pspec)->maximum);
  if (G_IS_PARAM_SPEC_ULONG (pspec))
    return g_strdup_printf ("range %lu .. %lu", G_PARAM_SPEC_ULONG (pspec)->minimum,
                            G_PARAM_SPEC_ULONG (pspec)->maximum);
  if (G_IS_PARAM_SPEC_DOUBLE (pspec) || G_IS_PARAM_SPEC_FLOAT (pspec))
    {
      double lo = G_IS_PARAM_SPEC_DOUBLE (pspec) ? G_PARAM_SPEC_DOUBLE (pspec)->minimum
                                                 : G_PARAM_SPEC_FLOAT (pspec)->minimum;
      double hi = G_IS_PARAM_SPEC_DOUBLE (pspec) ? G_PARAM_SPEC_DOUBLE (pspec)->maximum
                                                 : G_PARAM_SPEC_FLOAT (pspec)->maximum;
      g_autofree char *lo_text = format_double (lo);
      g_autofree char *hi_text = format_double (hi);
      return g_strdup_printf ("range %s .. %s", lo_text, hi_text);
    }
  if (G_IS_PARAM_SPEC_ENUM (pspec) || G_IS_PARAM_SPEC_FLAGS (pspec))
    {
      GString *out = g_string_new ("choices: ");
      gboolean first = TRUE;
      if (G_IS_PARAM_SPEC_ENUM (pspec))
        {
          GEnumClass *klass = G_PARAM_SPEC_ENUM (pspec)->enum_class;
          for (guint i = 0; i < klass->n_values; i++, first = FALSE)
            g_string_append_printf (out, "%s%s", first ? "" : ", ", klass->values[i].value_nick);
        }
      else
        {
          GFlagsClass *klass = G_PARAM_SPEC_FLAGS (pspec)->flags_class;
          for (guint i = 0; i < klass->n_values; i++, first = FALSE)
            g_string_append_printf (out, "%s%s", first ? "" : ", ", klass->values[i].value_nick);
        }
      return g_string_free (out, FALSE);
    }
  return NULL;
}

static int
compare_pspecs (gconstpointer a, gconstpointer b)
{
  const GParamSpec *pa = *(GParamSpec *const *)a;
  const GParamSpec *pb = *(GParamSpec *const *)b;
  return strcmp (pa->name, pb->name);
}

/* Prints the writable properties of an object type, sorted by name, and
 * recurses into object-typed ones.  chain: the object types being
 * printed, to stop on a type that (indirectly) contains itself. */
static void
print_properties (GType type, guint depth, GPtrArray *chain)
{
  g_autoptr (GTypeClass) klass = g_type_class_ref (type);
  guint n_pspecs = 0;
  g_autofree GParamSpec **pspecs
      = g_object_class_list_properties (G_OBJECT_CLASS (klass), &n_pspecs);
  int indent = 2 + 4 * (int)depth;

  if (pspecs != NULL)
    qsort (pspecs, n_pspecs, sizeof (GParamSpec *), compare_pspecs);

  g_ptr_array_add (chain, GSIZE_TO_POINTER (type));
  for (guint i = 0; i < n_pspecs; i++)
    {
      GParamSpec *pspec = pspecs[i];
      GType value_type = G_PARAM_SPEC_VALUE_TYPE (pspec);
      g_autofree char *type_text = NULL;
      g_autofree char *default_text = NULL;
      g_autofree char *range_text = NULL;
      const char *blurb;

      if (!(pspec->flags & G_PARAM_WRITABLE))
        continue;
      type_text = describe_type (pspec);
      blurb = g_param_spec_get_blurb (pspec);
      /* a list of objects shows its element's properties */
      slim_param_spec_get_object_list_type (pspec, &value_type);
      printf ("%*s%s: %s%s", indent, "", pspec->name, type_text,
              (slim_param_spec_get_flags (pspec) & SLIM_PARAM_REQUIRED) ? ", required" : "");
      if (g_type_is_a (value_type, G_TYPE_OBJECT))
        {
          printf ("\n");
          if (blurb != NULL)
            printf ("%*s  %s\n", indent, "", blurb);
          if (g_ptr_array_find (chain, GSIZE_TO_POINTER (value_type), NULL))
            printf ("%*s  (recursive: properties shown above)\n", indent, "");
          else if (depth + 1 >= MAX_OBJECT_DEPTH)
            printf ("%*s  (nested too deep to show)\n", indent, "");
          else if (G_TYPE_IS_ABSTRACT (value_type))
            printf ("%*s  (any %s)\n", indent, "", g_type_name (value_type));
          else
            print_properties (value_type, depth + 1, chain);
          continue;
        }
      /* A required key has no default a user could rely on. */
      if (!(slim_param_spec_get_flags (pspec) & SLIM_PARAM_REQUIRED))
        {
          default_text = describe_default (pspec);
          printf (", default %s", default_text);
        }
      range_text = describe_range (pspec);
      printf ("%s%s\n", range_text != NULL ? ", " : "", range_text != NULL ? range_text : "");
      if (blurb != NULL)
        printf ("%*s  %s\n", indent, "", blurb);
    }
  g_ptr_array_remove_index (chain, chain->len - 1);
}

static void
print_plugin (SlimRegistry *registry, const SlimPluginDesc *desc)
{
  GType type = slim_registry_lookup (registry, desc->kind, desc->name, NULL);
  const char *path = slim_registry_get_module_path (registry, desc->kind, desc->name);
  g_autofree char *aliases = join_aliases (desc);
  g_autoptr (GPtrArray) chain = g_ptr_array_new ();

  printf ("%s %s\n", slim_plugin_kind_to_string (desc->kind), desc->name);
  printf ("  %s\n", desc->description);
  printf ("  aliases: %s\n", aliases);
  printf ("  type: %s\n", g_type_name (type));
  printf ("  module: %s\n", path != NULL ? path : "(built in)");
  printf ("properties:\n");
  print_properties (type, 0, chain);
}

/* All descs named NAME (name or alias) across kinds, NULL-free array. */
static GPtrArray *
find_plugins (SlimRegistry *registry, const char *name)
{
  GPtrArray *found = g_ptr_array_new ();

  for (gsize k = 0; k < G_N_ELEMENTS (all_kinds); k++)
    {
      const SlimPluginDesc *desc = slim_registry_get_desc (registry, all_kinds[k], name);
      if (desc != NULL)
        g_ptr_array_add (found, (gpointer)desc);
    }
  return found;
}

static void
set_unknown_name_error (SlimRegistry *registry, const char *name, GError **error)
{
  GString *valid = g_string_new (NULL);

  for (gsize k = 0; k < G_N_ELEMENTS (all_kinds); k++)
    {
      g_autoptr (GPtrArray) descs = slim_registry_list (registry, all_kinds[k]);
      for (guint i = 0; i < descs->len; i++)
        {
          const SlimPluginDesc *desc = g_ptr_array_index (descs, i);
          g_string_append_printf (valid, "%s%s", valid->len > 0 ? ", " : "", desc->name);
        }
    }
  g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_UNKNOWN_NAME,
               "unknown plugin '%s'; known plugins: %s (run 'slimflow plugins' for the list)", name,
               valid->len > 0 ? valid->str : "(none)");
  g_string_free (valid, TRUE);
}

/* ---- schemas ----------------------------------------------------------- */

static int
run_schema (SlimRegistry *registry, GPtrArray *named, const char *output_dir)
{
  g_autoptr (GError) error = NULL;

  if (named != NULL)
    {
      for (guint i = 0; i < named->len; i++)
        {
          const SlimPluginDesc *desc = g_ptr_array_index (named, i);
          g_autofree char *text
              = slim_schema_generate_plugin (registry, desc->kind, desc->name, &error);
          if (text == NULL)
            {
              slim_cli_print_error (COMMAND, error);
              return SLIM_EXIT_FAILURE;
            }
          fputs (text, stdout);
        }
      return SLIM_EXIT_OK;
    }
  if (output_dir != NULL)
    {
      if (!slim_schema_write_dir (registry, output_dir, &error))
        {
          slim_cli_print_error (COMMAND, error);
          return SLIM_EXIT_FAILURE;
        }
      return SLIM_EXIT_OK;
    }
  {
    g_autofree char *text = slim_schema_print_all (registry, &error);
    if (text == NULL)
      {
        slim_cli_print_error (COMMAND, error);
        return SLIM_EXIT_FAILURE;
      }
    fputs (text, stdout);
  }
  return SLIM_EXIT_OK;
}

/* ---- entry point ------------------------------------------------------- */

int
slim_cmd_plugins (int argc, char **argv)
{
  gboolean schema = FALSE;
  g_autofree char *output_dir = NULL;
  gboolean exit_now = FALSE;
  const GOptionEntry entries[] = {
    { "schema", 's', 0, G_OPTION_ARG_NONE, &schema,
      "Print the JSON Schemas (all plugins and pipeline.json, or NAME's)", NULL },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output_dir,
      "With --schema: write the schema files into DIR instead of printing them", "DIR" },
    { NULL },
  };
  g_autoptr (SlimRegistry) registry = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) named = NULL;
  const char *name = NULL;

  if (!slim_cli_parse (COMMAND, "[NAME]",
                       "Lists the plugins found in the plugin directories ($SLIMFLOW_PLUGIN_PATH\n"
                       "or the build tree, then the install directory). With NAME (a plugin\n"
                       "name or alias), shows that plugin's properties.",
                       entries, &argc, &argv, &exit_now))
    return SLIM_EXIT_USAGE;
  if (exit_now)
    return SLIM_EXIT_OK;
  if (argc > 2)
    {
      fprintf (stderr, "slimflow %s: expected at most one plugin NAME (see 'slimflow %s --help')\n",
               COMMAND, COMMAND);
      return SLIM_EXIT_USAGE;
    }
  if (output_dir != NULL && !schema)
    {
      fprintf (stderr, "slimflow %s: --output needs --schema\n", COMMAND);
      return SLIM_EXIT_USAGE;
    }
  if (argc == 2)
    name = argv[1];
  if (name != NULL && output_dir != NULL)
    {
      fprintf (stderr, "slimflow %s: --output writes every schema; drop NAME\n", COMMAND);
      return SLIM_EXIT_USAGE;
    }

  registry = slim_registry_new ();
  if (!slim_registry_scan_default (registry, &error))
    {
      slim_cli_print_error (COMMAND, error);
      return SLIM_EXIT_FAILURE;
    }

  if (name != NULL)
    {
      named = find_plugins (registry, name);
      if (named->len == 0)
        {
          set_unknown_name_error (registry, name, &error);
          slim_cli_print_error (COMMAND, error);
          return SLIM_EXIT_USAGE;
        }
    }

  if (schema)
    return run_schema (registry, named, output_dir);

  if (named == NULL)
    {
      print_list (registry);
      return SLIM_EXIT_OK;
    }
  for (guint i = 0; i < named->len; i++)
    {
      if (i > 0)
        printf ("\n");
      print_plugin (registry, g_ptr_array_index (named, i));
    }
  return SLIM_EXIT_OK;
}
