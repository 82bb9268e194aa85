/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-property.c: GParamSpecs from SlimPropertyDecl tables and the one
 * generic set_property/get_property behind them (see slim-property.h).
 *
 * Each installing class gets a SlimPropertyTable as qdata on its GType:
 * the declarations plus where the fields live (the instance, or the
 * type's private struct).  The accessors find the table through the
 * pspec's owner type (GObject calls the accessors of the class that
 * installed the pspec) and the declaration through the property id, which
 * is the table index + 1.
 */
#include "slim-property.h"

#include <string.h>

typedef struct
{
  const SlimPropertyDecl *decls;
  guint n_decls;
  gint base_offset; /* added to the instance pointer: 0, or the private offset */
} SlimPropertyTable;

static GQuark
table_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("slim-property-table");
  return quark;
}

static gpointer
field_of (GObject *object, const SlimPropertyTable *table, const SlimPropertyDecl *decl)
{
  return (guint8 *)object + table->base_offset + decl->offset;
}

static GParamSpec *
make_pspec (const SlimPropertyDecl *decl)
{
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
  GParamSpec *pspec = NULL;

  switch (decl->type)
    {
    case SLIM_PROPERTY_TYPE_BOOLEAN:
      pspec = g_param_spec_boolean (decl->name, decl->nick, decl->blurb, decl->int_default != 0,
                                    flags);
      break;
    case SLIM_PROPERTY_TYPE_INT:
      g_return_val_if_fail (decl->int_min >= G_MININT && decl->int_max <= G_MAXINT, NULL);
      pspec = g_param_spec_int (decl->name, decl->nick, decl->blurb, (gint)decl->int_min,
                                (gint)decl->int_max, (gint)decl->int_default, flags);
      break;
    case SLIM_PROPERTY_TYPE_UINT:
      g_return_val_if_fail (decl->int_min >= 0 && decl->int_max <= G_MAXUINT, NULL);
      pspec = g_param_spec_uint (decl->name, decl->nick, decl->blurb, (guint)decl->int_min,
                                 (guint)decl->int_max, (guint)decl->int_default, flags);
      break;
    case SLIM_PROPERTY_TYPE_INT64:
      pspec = g_param_spec_int64 (decl->name, decl->nick, decl->blurb, decl->int_min, decl->int_max,
                                  decl->int_default, flags);
      break;
    case SLIM_PROPERTY_TYPE_DOUBLE:
      pspec = g_param_spec_double (decl->name, decl->nick, decl->blurb, decl->double_min,
                                   decl->double_max, decl->double_default, flags);
      break;
    case SLIM_PROPERTY_TYPE_STRING:
      pspec
          = g_param_spec_string (decl->name, decl->nick, decl->blurb, decl->string_default, flags);
      break;
    case SLIM_PROPERTY_TYPE_STRV:
      pspec = g_param_spec_boxed (decl->name, decl->nick, decl->blurb, G_TYPE_STRV, flags);
      if (decl->strv_default != NULL)
        slim_param_spec_set_default_strv (pspec, decl->strv_default);
      break;
    case SLIM_PROPERTY_TYPE_ENUM:
      g_return_val_if_fail (decl->get_type != NULL, NULL);
      pspec = g_param_spec_enum (decl->name, decl->nick, decl->blurb, decl->get_type (),
                                 (gint)decl->int_default, flags);
      break;
    case SLIM_PROPERTY_TYPE_OBJECT:
      g_return_val_if_fail (decl->get_type != NULL, NULL);
      pspec = g_param_spec_object (decl->name, decl->nick, decl->blurb, decl->get_type (), flags);
      break;
    case SLIM_PROPERTY_TYPE_PLUGIN_LIST:
      pspec = slim_param_spec_plugin_list (decl->name, decl->nick, decl->blurb, decl->plugin_kind,
                                           flags);
      break;
    case SLIM_PROPERTY_TYPE_OBJECT_LIST:
      g_return_val_if_fail (decl->get_type != NULL, NULL);
      pspec = slim_param_spec_object_list (decl->name, decl->nick, decl->blurb, decl->get_type (),
                                           flags);
      break;
    default:
      g_critical ("property '%s': unknown SlimPropertyType %d", decl->name, (int)decl->type);
      return NULL;
    }
  if (pspec != NULL && decl->flags != SLIM_PARAM_NONE)
    slim_param_spec_set_flags (pspec, decl->flags);
  return pspec;
}

static void
install_table (GObjectClass *klass, const SlimPropertyDecl *decls, guint n_decls, gint base_offset)
{
  GType type = G_OBJECT_CLASS_TYPE (klass);
  SlimPropertyTable *table;

  if (g_type_get_qdata (type, table_quark ()) != NULL)
    {
      g_critical ("%s: a property table is installed already (one per class)", g_type_name (type));
      return;
    }
  /* Lives as long as the (static) type. */
  table = g_new0 (SlimPropertyTable, 1);
  table->decls = decls;
  table->n_decls = n_decls;
  table->base_offset = base_offset;
  g_type_set_qdata (type, table_quark (), table);

  klass->set_property = slim_properties_set_property;
  klass->get_property = slim_properties_get_property;
  for (guint i = 0; i < n_decls; i++)
    {
      GParamSpec *pspec = make_pspec (&decls[i]);

      if (pspec == NULL)
        {
          g_critical ("%s: property '%s' could not be created (check its range and default)",
                      g_type_name (type), decls[i].name);
          continue;
        }
      g_object_class_install_property (klass, i + 1, pspec);
    }
}

void
slim_properties_install (GObjectClass *klass, const SlimPropertyDecl *decls, guint n_decls)
{
  g_return_if_fail (G_IS_OBJECT_CLASS (klass));
  g_return_if_fail (decls != NULL || n_decls == 0);

  install_table (klass, decls, n_decls, 0);
}

void
slim_properties_install_private (GObjectClass *klass, const SlimPropertyDecl *decls, guint n_decls)
{
  g_return_if_fail (G_IS_OBJECT_CLASS (klass));
  g_return_if_fail (decls != NULL || n_decls == 0);

  /* The type's private struct sits at this (negative) offset from every
   * instance, subclasses included. */
  install_table (klass, decls, n_decls, g_type_class_get_instance_private_offset (klass));
}

/* The table and declaration behind (pspec, prop_id), or NULL. */
static const SlimPropertyDecl *
lookup (guint prop_id, GParamSpec *pspec, const SlimPropertyTable **out_table)
{
  const SlimPropertyTable *table = g_type_get_qdata (pspec->owner_type, table_quark ());

  if (table == NULL || prop_id == 0 || prop_id > table->n_decls)
    return NULL;
  *out_table = table;
  return &table->decls[prop_id - 1];
}

/* Every item of a plugin list is of its kind's base class. */
static gboolean
check_plugin_list (GObject *object, const SlimPropertyDecl *decl, GPtrArray *list)
{
  GType base = slim_plugin_kind_get_base_type (decl->plugin_kind);

  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      gpointer item = g_ptr_array_index (list, i);

      if (item == NULL || !g_type_is_a (G_OBJECT_TYPE (item), base))
        {
          g_critical ("%s: %s[%u] is %s, not a %s", G_OBJECT_TYPE_NAME (object), decl->name, i,
                      item != NULL ? G_OBJECT_TYPE_NAME (item) : "NULL", g_type_name (base));
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
check_object_list (GObject *object, const SlimPropertyDecl *decl, GPtrArray *list)
{
  GType element = decl->get_type ();

  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      gpointer item = g_ptr_array_index (list, i);

      if (item == NULL || !g_type_is_a (G_OBJECT_TYPE (item), element))
        {
          g_critical ("%s: %s[%u] is %s, not a %s", G_OBJECT_TYPE_NAME (object), decl->name, i,
                      item != NULL ? G_OBJECT_TYPE_NAME (item) : "NULL", g_type_name (element));
          return FALSE;
        }
    }
  return TRUE;
}

void
slim_properties_set_property (GObject *object,
                              guint prop_id,
                              const GValue *value,
                              GParamSpec *pspec)
{
  const SlimPropertyTable *table = NULL;
  const SlimPropertyDecl *decl = lookup (prop_id, pspec, &table);
  gpointer field;

  if (decl == NULL)
    {
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  if (decl->check != NULL && !decl->check (object, value))
    return;
  field = field_of (object, table, decl);
  switch (decl->type)
    {
    case SLIM_PROPERTY_TYPE_BOOLEAN:
      *(gboolean *)field = g_value_get_boolean (value);
      break;
    case SLIM_PROPERTY_TYPE_INT:
      *(gint *)field = g_value_get_int (value);
      break;
    case SLIM_PROPERTY_TYPE_UINT:
      *(guint *)field = g_value_get_uint (value);
      break;
    case SLIM_PROPERTY_TYPE_INT64:
      *(gint64 *)field = g_value_get_int64 (value);
      break;
    case SLIM_PROPERTY_TYPE_DOUBLE:
      *(double *)field = g_value_get_double (value);
      break;
    case SLIM_PROPERTY_TYPE_ENUM:
      *(gint *)field = g_value_get_enum (value);
      break;
    case SLIM_PROPERTY_TYPE_STRING:
      g_free (*(char **)field);
      *(char **)field = g_value_dup_string (value);
      break;
    case SLIM_PROPERTY_TYPE_STRV:
      {
        char **strv = g_value_dup_boxed (value);

        /* NULL (the construct default, or unset) means the declared default */
        if (strv == NULL && decl->strv_default != NULL)
          strv = g_strdupv ((char **)decl->strv_default);
        g_strfreev (*(char ***)field);
        *(char ***)field = strv;
        break;
      }
    case SLIM_PROPERTY_TYPE_OBJECT:
      g_set_object ((GObject **)field, g_value_get_object (value));
      break;
    case SLIM_PROPERTY_TYPE_PLUGIN_LIST:
      if (!check_plugin_list (object, decl, g_value_get_boxed (value)))
        return;
      g_clear_pointer ((GPtrArray **)field, g_ptr_array_unref);
      *(GPtrArray **)field = g_value_dup_boxed (value);
      break;
    case SLIM_PROPERTY_TYPE_OBJECT_LIST:
      if (!check_object_list (object, decl, g_value_get_boxed (value)))
        return;
      g_clear_pointer ((GPtrArray **)field, g_ptr_array_unref);
      *(GPtrArray **)field = g_value_dup_boxed (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

void
slim_properties_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  const SlimPropertyTable *table = NULL;
  const SlimPropertyDecl *decl = lookup (prop_id, pspec, &table);
  gpointer field;

  if (decl == NULL)
    {
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }
  field = field_of (object, table, decl);
  switch (decl->type)
    {
    case SLIM_PROPERTY_TYPE_BOOLEAN:
      g_value_set_boolean (value, *(gboolean *)field);
      break;
    case SLIM_PROPERTY_TYPE_INT:
      g_value_set_int (value, *(gint *)field);
      break;
    case SLIM_PROPERTY_TYPE_UINT:
      g_value_set_uint (value, *(guint *)field);
      break;
    case SLIM_PROPERTY_TYPE_INT64:
      g_value_set_int64 (value, *(gint64 *)field);
      break;
    case SLIM_PROPERTY_TYPE_DOUBLE:
      g_value_set_double (value, *(double *)field);
      break;
    case SLIM_PROPERTY_TYPE_ENUM:
      g_value_set_enum (value, *(gint *)field);
      break;
    case SLIM_PROPERTY_TYPE_STRING:
      g_value_set_string (value, *(char **)field);
      break;
    case SLIM_PROPERTY_TYPE_STRV:
    case SLIM_PROPERTY_TYPE_PLUGIN_LIST:
    case SLIM_PROPERTY_TYPE_OBJECT_LIST:
      g_value_set_boxed (value, *(gpointer *)field);
      break;
    case SLIM_PROPERTY_TYPE_OBJECT:
      g_value_set_object (value, *(gpointer *)field);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

void
slim_properties_clear (GObject *object)
{
  g_return_if_fail (G_IS_OBJECT (object));

  for (GType type = G_OBJECT_TYPE (object); type != G_TYPE_INVALID; type = g_type_parent (type))
    {
      const SlimPropertyTable *table = g_type_get_qdata (type, table_quark ());

      for (guint i = 0; table != NULL && i < table->n_decls; i++)
        {
          const SlimPropertyDecl *decl = &table->decls[i];
          gpointer field = field_of (object, table, decl);

          switch (decl->type)
            {
            case SLIM_PROPERTY_TYPE_STRING:
              g_clear_pointer ((char **)field, g_free);
              break;
            case SLIM_PROPERTY_TYPE_STRV:
              g_clear_pointer ((char ***)field, g_strfreev);
              break;
            case SLIM_PROPERTY_TYPE_OBJECT:
              g_clear_object ((GObject **)field);
              break;
            case SLIM_PROPERTY_TYPE_PLUGIN_LIST:
            case SLIM_PROPERTY_TYPE_OBJECT_LIST:
              g_clear_pointer ((GPtrArray **)field, g_ptr_array_unref);
              break;
            case SLIM_PROPERTY_TYPE_BOOLEAN:
            case SLIM_PROPERTY_TYPE_INT:
            case SLIM_PROPERTY_TYPE_UINT:
            case SLIM_PROPERTY_TYPE_INT64:
            case SLIM_PROPERTY_TYPE_DOUBLE:
            case SLIM_PROPERTY_TYPE_ENUM:
            default:
              break;
            }
        }
    }
}
