/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-object.c: YAML mapping -> GObject properties (see the header
 * for the conversion table).  Every problem is appended to an error list
 * and the walk continues, so one `slimflow validate` shows them all.
 */
#include "slim-config-object.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "slim-error.h"

/* Nested objects deeper than this are refused: a plugin whose property
 * type contains itself would otherwise recurse as deep as the YAML. */
#define MAX_OBJECT_DEPTH 16

GPtrArray *
slim_config_errors_new (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify)g_error_free);
}

gboolean
slim_config_errors_propagate (GPtrArray *errors, GError **error)
{
  g_autoptr (GString) text = NULL;
  const GError *first;

  g_return_val_if_fail (errors != NULL, FALSE);
  if (errors->len == 0)
    return TRUE;
  first = g_ptr_array_index (errors, 0);
  text = g_string_new (NULL);
  for (guint i = 0; i < errors->len; i++)
    {
      const GError *e = g_ptr_array_index (errors, i);
      if (i > 0)
        g_string_append_c (text, '\n');
      g_string_append (text, e->message);
    }
  g_set_error_literal (error, first->domain, first->code, text->str);
  return FALSE;
}

/* ---- building ------------------------------------------------------ */

typedef struct
{
  SlimRegistry *registry; /* (nullable) */
  GPtrArray *errors;
  guint depth;
} Builder;

static void add_error (Builder *builder,
                       const SlimConfigNode *node,
                       gint code,
                       const char *label,
                       const char *format,
                       ...) G_GNUC_PRINTF (5, 6);

static void
add_error (Builder *builder,
           const SlimConfigNode *node,
           gint code,
           const char *label,
           const char *format,
           ...)
{
  g_autofree char *text = NULL;
  GError *error = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  if (label != NULL)
    slim_config_error_at (&error, node, code, "%s: %s", label, text);
  else
    slim_config_error_at (&error, node, code, "%s", text);
  g_ptr_array_add (builder->errors, error);
}

/* How a value looks in a message: 'abc' for a plain scalar, the string
 * "abc" for a quoted one, or its kind. */
static char *
describe_value (const SlimConfigNode *node)
{
  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_SCALAR)
    return g_strdup_printf ("a %s", slim_config_node_describe_kind (node));
  if (slim_config_node_is_null (node))
    return g_strdup ("null");
  if (slim_config_node_get_scalar_style (node) == SLIM_CONFIG_SCALAR_QUOTED)
    return g_strdup_printf ("the string \"%s\"", slim_config_node_get_scalar (node));
  return g_strdup_printf ("'%s'", slim_config_node_get_scalar (node));
}

static gboolean
is_plain_scalar (const SlimConfigNode *node)
{
  return slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SCALAR
         && slim_config_node_get_scalar_style (node) == SLIM_CONFIG_SCALAR_PLAIN
         && !slim_config_node_is_null (node);
}

static char *
canonical_key (const char *key)
{
  char *canonical = g_strdup (key);

  g_strdelimit (canonical, "_", '-');
  return canonical;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static char *
join_valid_keys (GParamSpec **pspecs, guint n_pspecs, const char *ignore_key)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  g_autoptr (GString) text = g_string_new (NULL);

  if (ignore_key != NULL)
    g_ptr_array_add (names, (gpointer)ignore_key);
  for (guint i = 0; i < n_pspecs; i++)
    if ((pspecs[i]->flags & G_PARAM_WRITABLE) != 0)
      g_ptr_array_add (names, (gpointer)pspecs[i]->name);
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    {
      if (i > 0)
        g_string_append (text, ", ");
      g_string_append (text, g_ptr_array_index (names, i));
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static char *
join_enum_nicks (GEnumClass *enum_class)
{
  g_autoptr (GString) text = g_string_new (NULL);

  for (guint i = 0; i < enum_class->n_values; i++)
    {
      if (i > 0)
        g_string_append (text, ", ");
      g_string_append (text, enum_class->values[i].value_nick);
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static char *
join_flags_nicks (GFlagsClass *flags_class)
{
  g_autoptr (GString) text = g_string_new (NULL);

  for (guint i = 0; i < flags_class->n_values; i++)
    {
      if (i > 0)
        g_string_append (text, ", ");
      g_string_append (text, flags_class->values[i].value_nick);
    }
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* A decimal number as written in configs: [+-]digits[.digits][e[+-]digits]
 * or [+-].digits[...].  No hex, no inf/nan, no underscores. */
static gboolean
is_decimal_number (const char *text)
{
  const char *p = text;
  gboolean digits = FALSE;

  if (*p == '+' || *p == '-')
    p++;
  while (g_ascii_isdigit (*p))
    {
      p++;
      digits = TRUE;
    }
  if (*p == '.')
    {
      p++;
      while (g_ascii_isdigit (*p))
        {
          p++;
          digits = TRUE;
        }
    }
  if (!digits)
    return FALSE;
  if (*p == 'e' || *p == 'E')
    {
      p++;
      if (*p == '+' || *p == '-')
        p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      while (g_ascii_isdigit (*p))
        p++;
    }
  return *p == '\0';
}

/* Range of an integer pspec: signed types use smin/smax, unsigned ones
 * umin/umax. */
typedef struct
{
  gboolean is_unsigned;
  gint64 smin, smax;
  guint64 umin, umax;
} IntRange;

/* FALSE when @pspec is not of an integer type. */
static gboolean
get_int_range (GParamSpec *pspec, IntRange *range)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);

  memset (range, 0, sizeof (*range));
  if (type == G_TYPE_INT)
    {
      range->smin = G_PARAM_SPEC_INT (pspec)->minimum;
      range->smax = G_PARAM_SPEC_INT (pspec)->maximum;
    }
  else if (type == G_TYPE_INT64)
    {
      range->smin = G_PARAM_SPEC_INT64 (pspec)->minimum;
      range->smax = G_PARAM_SPEC_INT64 (pspec)->maximum;
    }
  else if (type == G_TYPE_LONG)
    {
      range->smin = G_PARAM_SPEC_LONG (pspec)->minimum;
      range->smax = G_PARAM_SPEC_LONG (pspec)->maximum;
    }
  else
    {
      range->is_unsigned = TRUE;
      if (type == G_TYPE_UINT)
        {
          range->umin = G_PARAM_SPEC_UINT (pspec)->minimum;
          range->umax = G_PARAM_SPEC_UINT (pspec)->maximum;
        }
      else if (type == G_TYPE_UINT64)
        {
          range->umin = G_PARAM_SPEC_UINT64 (pspec)->minimum;
          range->umax = G_PARAM_SPEC_UINT64 (pspec)->maximum;
        }
      else if (type == G_TYPE_ULONG)
        {
          range->umin = G_PARAM_SPEC_ULONG (pspec)->minimum;
          range->umax = G_PARAM_SPEC_ULONG (pspec)->maximum;
        }
      else
        return FALSE;
    }
  return TRUE;
}

static gboolean
set_integer (Builder *builder,
             GParamSpec *pspec,
             SlimConfigNode *node,
             const char *label,
             const char *path,
             GValue *value)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  const char *text = slim_config_node_get_scalar (node);
  IntRange range;
  gint64 v_signed = 0;
  guint64 v_unsigned = 0;
  gboolean negative = FALSE;
  gboolean parsed = FALSE;
  gboolean in_range;

  get_int_range (pspec, &range);
  if (is_plain_scalar (node) && text[0] != '+')
    {
      negative = text[0] == '-';
      if (negative)
        parsed = g_ascii_string_to_signed (text, 10, G_MININT64, 0, &v_signed, NULL);
      else
        parsed = g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, &v_unsigned, NULL);
    }
  if (!parsed)
    {
      g_autofree char *got = describe_value (node);
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                 "'%s' must be an integer, got %s", path, got);
      return FALSE;
    }

  if (range.is_unsigned)
    in_range = !negative && v_unsigned >= range.umin && v_unsigned <= range.umax;
  else if (negative)
    in_range = v_signed >= range.smin && v_signed <= range.smax;
  else
    in_range = range.smax >= 0 && v_unsigned <= (guint64)range.smax
               && (range.smin <= 0 || v_unsigned >= (guint64)range.smin);
  if (!in_range)
    {
      if (range.is_unsigned)
        add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                   "'%s' = %s is outside %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT, path, text,
                   range.umin, range.umax);
      else
        add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                   "'%s' = %s is outside %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT, path, text,
                   range.smin, range.smax);
      return FALSE;
    }

  if (!negative)
    v_signed = (gint64)v_unsigned; /* in range of a signed type here */
  g_value_init (value, type);
  if (type == G_TYPE_INT)
    g_value_set_int (value, (gint)v_signed);
  else if (type == G_TYPE_INT64)
    g_value_set_int64 (value, v_signed);
  else if (type == G_TYPE_LONG)
    g_value_set_long (value, (glong)v_signed);
  else if (type == G_TYPE_UINT)
    g_value_set_uint (value, (guint)v_unsigned);
  else if (type == G_TYPE_UINT64)
    g_value_set_uint64 (value, v_unsigned);
  else
    g_value_set_ulong (value, (gulong)v_unsigned);
  return TRUE;
}

static gboolean
set_number (Builder *builder,
            GParamSpec *pspec,
            SlimConfigNode *node,
            const char *label,
            const char *path,
            GValue *value)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  const char *text = slim_config_node_get_scalar (node);
  double min, max, v;

  if (type == G_TYPE_FLOAT)
    {
      min = G_PARAM_SPEC_FLOAT (pspec)->minimum;
      max = G_PARAM_SPEC_FLOAT (pspec)->maximum;
    }
  else
    {
      min = G_PARAM_SPEC_DOUBLE (pspec)->minimum;
      max = G_PARAM_SPEC_DOUBLE (pspec)->maximum;
    }
  if (!is_plain_scalar (node) || !is_decimal_number (text))
    {
      g_autofree char *got = describe_value (node);
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label, "'%s' must be a number, got %s",
                 path, got);
      return FALSE;
    }
  v = g_ascii_strtod (text, NULL);
  if (!isfinite (v) || v < min || v > max || (type == G_TYPE_FLOAT && fabs (v) > G_MAXFLOAT))
    {
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label, "'%s' = %s is outside %g..%g",
                 path, text, min, max);
      return FALSE;
    }
  g_value_init (value, type);
  if (type == G_TYPE_FLOAT)
    g_value_set_float (value, (float)v);
  else
    g_value_set_double (value, v);
  return TRUE;
}

static gboolean
set_boolean (
    Builder *builder, SlimConfigNode *node, const char *label, const char *path, GValue *value)
{
  static const char *const true_words[] = { "true", "True", "TRUE" };
  static const char *const false_words[] = { "false", "False", "FALSE" };
  const char *text = slim_config_node_get_scalar (node);

  if (is_plain_scalar (node))
    for (gsize i = 0; i < G_N_ELEMENTS (true_words); i++)
      {
        if (strcmp (text, true_words[i]) == 0 || strcmp (text, false_words[i]) == 0)
          {
            g_value_init (value, G_TYPE_BOOLEAN);
            g_value_set_boolean (value, strcmp (text, true_words[i]) == 0);
            return TRUE;
          }
      }
  {
    g_autofree char *got = describe_value (node);
    add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
               "'%s' must be true or false, got %s", path, got);
  }
  return FALSE;
}

static gboolean
set_enum (Builder *builder,
          GParamSpec *pspec,
          SlimConfigNode *node,
          const char *label,
          const char *path,
          GValue *value)
{
  g_autoptr (GEnumClass) enum_class = g_type_class_ref (G_PARAM_SPEC_VALUE_TYPE (pspec));
  const GEnumValue *found = NULL;

  if (slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SCALAR
      && !slim_config_node_is_null (node))
    found = g_enum_get_value_by_nick (enum_class, slim_config_node_get_scalar (node));
  if (found == NULL)
    {
      g_autofree char *nicks = join_enum_nicks (enum_class);
      g_autofree char *got = describe_value (node);
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                 "'%s' must be one of %s; got %s", path, nicks, got);
      return FALSE;
    }
  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  g_value_set_enum (value, found->value);
  return TRUE;
}

static gboolean
check_list (Builder *builder,
            GParamSpec *pspec,
            SlimConfigNode *node,
            const char *label,
            const char *path,
            const char *what)
{
  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_SEQUENCE)
    {
      g_autofree char *got = describe_value (node);
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                 "'%s' must be a list of %s, got %s", path, what, got);
      return FALSE;
    }
  if (slim_config_node_get_n_items (node) == 0
      && (slim_param_spec_get_flags (pspec) & SLIM_PARAM_NON_EMPTY) != 0)
    {
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label, "'%s' must not be empty", path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
set_flags (Builder *builder,
           GParamSpec *pspec,
           SlimConfigNode *node,
           const char *label,
           const char *path,
           GValue *value)
{
  g_autoptr (GFlagsClass) flags_class = g_type_class_ref (G_PARAM_SPEC_VALUE_TYPE (pspec));
  guint bits = 0;
  gboolean ok = TRUE;

  if (!check_list (builder, pspec, node, label, path, "names"))
    return FALSE;
  for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
    {
      SlimConfigNode *item = slim_config_node_get_item (node, i);
      const GFlagsValue *found = NULL;

      if (slim_config_node_get_kind (item) == SLIM_CONFIG_NODE_SCALAR)
        found = g_flags_get_value_by_nick (flags_class, slim_config_node_get_scalar (item));
      if (found == NULL)
        {
          g_autofree char *nicks = join_flags_nicks (flags_class);
          g_autofree char *got = describe_value (item);
          add_error (builder, item, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                     "'%s[%u]' must be one of %s; got %s", path, i, nicks, got);
          ok = FALSE;
          continue;
        }
      bits |= found->value;
    }
  if (!ok)
    return FALSE;
  g_value_init (value, G_PARAM_SPEC_VALUE_TYPE (pspec));
  g_value_set_flags (value, bits);
  return TRUE;
}

static gboolean
set_string (
    Builder *builder, SlimConfigNode *node, const char *label, const char *path, GValue *value)
{
  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_SCALAR
      || slim_config_node_is_null (node))
    {
      g_autofree char *got = describe_value (node);
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label, "'%s' must be a string, got %s",
                 path, got);
      return FALSE;
    }
  g_value_init (value, G_TYPE_STRING);
  g_value_set_string (value, slim_config_node_get_scalar (node));
  return TRUE;
}

static gboolean
set_strv (Builder *builder,
          GParamSpec *pspec,
          SlimConfigNode *node,
          const char *label,
          const char *path,
          GValue *value)
{
  g_autoptr (GStrvBuilder) strv = NULL;
  gboolean ok = TRUE;

  if (!check_list (builder, pspec, node, label, path, "strings"))
    return FALSE;
  strv = g_strv_builder_new ();
  for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
    {
      SlimConfigNode *item = slim_config_node_get_item (node, i);

      if (slim_config_node_get_kind (item) != SLIM_CONFIG_NODE_SCALAR
          || slim_config_node_is_null (item))
        {
          g_autofree char *got = describe_value (item);
          add_error (builder, item, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                     "'%s[%u]' must be a string, got %s", path, i, got);
          ok = FALSE;
          continue;
        }
      g_strv_builder_add (strv, slim_config_node_get_scalar (item));
    }
  if (!ok)
    return FALSE;
  g_value_init (value, G_TYPE_STRV);
  g_value_take_boxed (value, g_strv_builder_end (strv));
  return TRUE;
}

static GObject *build_object (Builder *builder,
                              GType type,
                              SlimConfigNode *node,
                              const char *label,
                              const char *path_prefix,
                              const char *ignore_key);

static GObject *
build_plugin (Builder *builder, SlimPluginKind kind, SlimConfigNode *node, const char *where);

static gboolean
set_object (Builder *builder,
            GParamSpec *pspec,
            SlimConfigNode *node,
            const char *label,
            const char *path,
            GValue *value)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  g_autofree char *prefix = NULL;
  GObject *object;

  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_MAPPING)
    {
      g_autofree char *got = describe_value (node);
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                 "'%s' must be a mapping, got %s", path, got);
      return FALSE;
    }
  if (G_TYPE_IS_ABSTRACT (type) || builder->depth >= MAX_OBJECT_DEPTH)
    {
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                 "'%s' cannot be configured (type %s is abstract or nested too deeply)", path,
                 g_type_name (type));
      return FALSE;
    }
  prefix = g_strdup_printf ("%s.", path);
  builder->depth++;
  object = build_object (builder, type, node, label, prefix, NULL);
  builder->depth--;
  if (object == NULL)
    return FALSE;
  g_value_init (value, type);
  g_value_take_object (value, object);
  return TRUE;
}

static gboolean
set_plugin_list (Builder *builder,
                 GParamSpec *pspec,
                 SlimPluginKind kind,
                 SlimConfigNode *node,
                 const char *label,
                 const char *path,
                 GValue *value)
{
  g_autoptr (GPtrArray) list = NULL;
  g_autofree char *what = g_strdup_printf ("%s entries", slim_plugin_kind_to_string (kind));
  gboolean ok = TRUE;

  if (!check_list (builder, pspec, node, label, path, what))
    return FALSE;
  if (builder->depth >= MAX_OBJECT_DEPTH)
    {
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label, "'%s' is nested too deeply",
                 path);
      return FALSE;
    }
  list = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
    {
      g_autofree char *where = label != NULL ? g_strdup_printf ("%s: %s[%u]", label, path, i)
                                             : g_strdup_printf ("%s[%u]", path, i);
      GObject *child;

      builder->depth++;
      child = build_plugin (builder, kind, slim_config_node_get_item (node, i), where);
      builder->depth--;
      if (child == NULL)
        ok = FALSE;
      else
        g_ptr_array_add (list, child);
    }
  if (!ok)
    return FALSE;
  g_value_init (value, SLIM_TYPE_PLUGIN_LIST);
  g_value_take_boxed (value, g_steal_pointer (&list));
  return TRUE;
}

/* A sequence of mappings, each built as @element (its keys under
 * "path[i]."). */
static gboolean
set_object_list (Builder *builder,
                 GParamSpec *pspec,
                 GType element,
                 SlimConfigNode *node,
                 const char *label,
                 const char *path,
                 GValue *value)
{
  g_autoptr (GPtrArray) list = NULL;
  g_autofree char *what = g_strdup_printf ("%s entries", g_type_name (element));
  gboolean ok = TRUE;

  if (!check_list (builder, pspec, node, label, path, what))
    return FALSE;
  if (G_TYPE_IS_ABSTRACT (element) || builder->depth >= MAX_OBJECT_DEPTH)
    {
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                 "'%s' cannot be configured (type %s is abstract or nested too deeply)", path,
                 g_type_name (element));
      return FALSE;
    }
  list = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
    {
      g_autofree char *prefix = g_strdup_printf ("%s[%u].", path, i);
      SlimConfigNode *item = slim_config_node_get_item (node, i);
      GObject *child;

      if (slim_config_node_get_kind (item) != SLIM_CONFIG_NODE_MAPPING)
        {
          g_autofree char *got = describe_value (item);
          add_error (builder, item, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                     "'%s[%u]' must be a mapping, got %s", path, i, got);
          ok = FALSE;
          continue;
        }
      builder->depth++;
      child = build_object (builder, element, item, label, prefix, NULL);
      builder->depth--;
      if (child == NULL)
        ok = FALSE;
      else
        g_ptr_array_add (list, child);
    }
  if (!ok)
    return FALSE;
  g_value_init (value, SLIM_TYPE_OBJECT_LIST);
  g_value_take_boxed (value, g_steal_pointer (&list));
  return TRUE;
}

/* Converts @node for @pspec into @value (initialized here).  On failure
 * appends errors and leaves @value unset. */
static gboolean
convert_value (Builder *builder,
               GParamSpec *pspec,
               SlimConfigNode *node,
               const char *label,
               const char *path,
               GValue *value)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  SlimPluginKind kind;
  GType element;
  IntRange range;

  if (type == G_TYPE_BOOLEAN)
    return set_boolean (builder, node, label, path, value);
  if (get_int_range (pspec, &range))
    return set_integer (builder, pspec, node, label, path, value);
  if (type == G_TYPE_FLOAT || type == G_TYPE_DOUBLE)
    return set_number (builder, pspec, node, label, path, value);
  if (type == G_TYPE_STRING)
    return set_string (builder, node, label, path, value);
  if (type == G_TYPE_STRV)
    return set_strv (builder, pspec, node, label, path, value);
  if (G_TYPE_IS_ENUM (type))
    return set_enum (builder, pspec, node, label, path, value);
  if (G_TYPE_IS_FLAGS (type))
    return set_flags (builder, pspec, node, label, path, value);
  if (slim_param_spec_get_plugin_kind (pspec, &kind) && builder->registry != NULL)
    return set_plugin_list (builder, pspec, kind, node, label, path, value);
  if (slim_param_spec_get_object_list_type (pspec, &element))
    return set_object_list (builder, pspec, element, node, label, path, value);
  if (g_type_is_a (type, G_TYPE_OBJECT))
    return set_object (builder, pspec, node, label, path, value);

  add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
             "'%s' has type %s, which a config cannot set", path, g_type_name (type));
  return FALSE;
}

static GObject *
build_object (Builder *builder,
              GType type,
              SlimConfigNode *node,
              const char *label,
              const char *path_prefix,
              const char *ignore_key)
{
  g_autoptr (GTypeClass) klass = NULL;
  g_autofree GParamSpec **pspecs = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  g_autoptr (GArray) values = g_array_new (FALSE, TRUE, sizeof (GValue));
  g_autoptr (GHashTable) given = g_hash_table_new (g_str_hash, g_str_equal);
  guint n_pspecs = 0;
  guint n_errors_before = builder->errors->len;
  GObject *object = NULL;

  g_array_set_clear_func (values, (GDestroyNotify)g_value_unset);
  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_MAPPING)
    {
      g_autofree char *got = describe_value (node);
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label, "expected a mapping, got %s",
                 got);
      return NULL;
    }
  if (!G_TYPE_IS_OBJECT (type) || G_TYPE_IS_ABSTRACT (type))
    {
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                 "type %s cannot be instantiated", g_type_name (type));
      return NULL;
    }

  klass = g_type_class_ref (type);
  pspecs = g_object_class_list_properties (G_OBJECT_CLASS (klass), &n_pspecs);

  for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
    {
      SlimConfigNode *key = slim_config_node_get_key (node, i);
      SlimConfigNode *value_node = slim_config_node_get_item (node, i);
      const char *key_text = slim_config_node_get_scalar (key);
      g_autofree char *canonical = NULL;
      g_autofree char *path = NULL;
      GParamSpec *pspec;
      SlimConfigNode *first;
      GValue value = G_VALUE_INIT;

      if (ignore_key != NULL && strcmp (key_text, ignore_key) == 0)
        continue;
      canonical = canonical_key (key_text);
      path = g_strconcat (path_prefix != NULL ? path_prefix : "", canonical, NULL);
      pspec = g_object_class_find_property (G_OBJECT_CLASS (klass), canonical);
      /* GLib also accepts '_' in names; only our canonical form counts. */
      if (pspec == NULL || strcmp (pspec->name, canonical) != 0)
        {
          g_autofree char *valid = join_valid_keys (pspecs, n_pspecs, ignore_key);
          add_error (builder, key, SLIM_CONFIG_ERROR_UNKNOWN_KEY, label,
                     "unknown key '%s%s' (valid keys: %s)", path_prefix != NULL ? path_prefix : "",
                     key_text, valid);
          continue;
        }
      if ((pspec->flags & G_PARAM_WRITABLE) == 0)
        {
          add_error (builder, key, SLIM_CONFIG_ERROR_UNKNOWN_KEY, label, "'%s' is read-only", path);
          continue;
        }
      if ((first = g_hash_table_lookup (given, pspec->name)) != NULL)
        {
          add_error (builder, key, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                     "'%s' is given twice (also as '%s' at line %u, column %u)", path,
                     slim_config_node_get_scalar (first), slim_config_node_get_line (first),
                     slim_config_node_get_column (first));
          continue;
        }
      g_hash_table_insert (given, (gpointer)pspec->name, key);
      if (!convert_value (builder, pspec, value_node, label, path, &value))
        continue;
      if (g_param_value_validate (pspec, &value))
        {
          /* A pspec type with its own rules (the built-in ones are checked
           * above with better messages). */
          g_autofree char *got = describe_value (value_node);
          add_error (builder, value_node, SLIM_CONFIG_ERROR_BAD_VALUE, label,
                     "'%s' = %s is not a valid value", path, got);
          g_value_unset (&value);
          continue;
        }
      g_ptr_array_add (names, (gpointer)pspec->name);
      g_array_append_val (values, value);
    }

  for (guint i = 0; i < n_pspecs; i++)
    if ((slim_param_spec_get_flags (pspecs[i]) & SLIM_PARAM_REQUIRED) != 0
        && !g_hash_table_contains (given, pspecs[i]->name))
      add_error (builder, node, SLIM_CONFIG_ERROR_MISSING_KEY, label, "missing required key '%s%s'",
                 path_prefix != NULL ? path_prefix : "", pspecs[i]->name);

  if (builder->errors->len == n_errors_before)
    object = g_object_new_with_properties (type, names->len, (const char **)names->pdata,
                                           (const GValue *)values->data);
  return object;
}

static char *
join_plugin_names (SlimRegistry *registry, SlimPluginKind kind)
{
  g_autoptr (GPtrArray) descs = slim_registry_list (registry, kind);
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  g_autoptr (GString) text = g_string_new (NULL);

  for (guint i = 0; i < descs->len; i++)
    {
      const SlimPluginDesc *desc = g_ptr_array_index (descs, i);
      g_ptr_array_add (names, (gpointer)desc->name);
      for (guint j = 0; desc->aliases != NULL && desc->aliases[j] != NULL; j++)
        g_ptr_array_add (names, (gpointer)desc->aliases[j]);
    }
  g_ptr_array_sort (names, compare_strings);
  for (guint i = 0; i < names->len; i++)
    {
      if (i > 0)
        g_string_append (text, ", ");
      g_string_append (text, g_ptr_array_index (names, i));
    }
  if (names->len == 0)
    g_string_append (text, "none registered");
  return g_string_free (g_steal_pointer (&text), FALSE);
}

static GObject *
build_plugin (Builder *builder, SlimPluginKind kind, SlimConfigNode *node, const char *where)
{
  const char *kind_name = slim_plugin_kind_to_string (kind);
  SlimConfigNode *type_node;
  const char *type_name;
  const SlimPluginDesc *desc;
  GType type;
  g_autofree char *label = NULL;

  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_MAPPING)
    {
      g_autofree char *got = describe_value (node);
      add_error (builder, node, SLIM_CONFIG_ERROR_BAD_VALUE, where,
                 "a %s entry must be a mapping with a 'type' key, got %s", kind_name, got);
      return NULL;
    }
  type_node = slim_config_node_lookup (node, "type");
  if (type_node == NULL)
    {
      add_error (builder, node, SLIM_CONFIG_ERROR_MISSING_KEY, where,
                 "missing required key 'type'");
      return NULL;
    }
  if (slim_config_node_get_kind (type_node) != SLIM_CONFIG_NODE_SCALAR
      || slim_config_node_is_null (type_node))
    {
      g_autofree char *got = describe_value (type_node);
      add_error (builder, type_node, SLIM_CONFIG_ERROR_BAD_VALUE, where,
                 "'type' must be a string, got %s", got);
      return NULL;
    }
  type_name = slim_config_node_get_scalar (type_node);
  desc = slim_registry_get_desc (builder->registry, kind, type_name);
  type = desc != NULL ? slim_registry_lookup (builder->registry, kind, type_name, NULL)
                      : G_TYPE_INVALID;
  if (type == G_TYPE_INVALID)
    {
      g_autofree char *known = join_plugin_names (builder->registry, kind);
      add_error (builder, type_node, SLIM_CONFIG_ERROR_BAD_VALUE, where,
                 "unknown %s type '%s' (known: %s)", kind_name, type_name, known);
      return NULL;
    }
  label = where != NULL ? g_strdup_printf ("%s (%s)", where, desc->name) : g_strdup (desc->name);
  return build_object (builder, type, node, label, NULL, "type");
}

GObject *
slim_config_object_new (GType type,
                        SlimConfigNode *node,
                        SlimRegistry *registry,
                        const char *label,
                        const char *ignore_key,
                        GPtrArray *errors)
{
  Builder builder = { registry, errors, 0 };

  g_return_val_if_fail (node != NULL, NULL);
  g_return_val_if_fail (registry == NULL || SLIM_IS_REGISTRY (registry), NULL);
  g_return_val_if_fail (errors != NULL, NULL);
  return build_object (&builder, type, node, label, NULL, ignore_key);
}

GObject *
slim_config_plugin_new (SlimRegistry *registry,
                        SlimPluginKind kind,
                        SlimConfigNode *node,
                        const char *where,
                        GPtrArray *errors)
{
  Builder builder = { registry, errors, 0 };

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), NULL);
  g_return_val_if_fail (node != NULL, NULL);
  g_return_val_if_fail (errors != NULL, NULL);
  return build_plugin (&builder, kind, node, where);
}
