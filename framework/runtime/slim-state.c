/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-state.c: simple fields <-> a GVariant tuple (see slim-state.h).
 */
#include "slim-state.h"

#include "slim-error.h"

static const char *const slim_state_type_codes[] = { "b", "i", "u", "x", "d" };

/* "(bix)" for a table of a boolean, an int and an int64. */
static GVariantType *
slim_state_tuple_type (const SlimStateField *fields, guint n_fields)
{
  g_autoptr (GString) text = g_string_new ("(");

  for (guint i = 0; i < n_fields; i++)
    g_string_append (text, slim_state_type_codes[fields[i].type]);
  g_string_append_c (text, ')');
  return g_variant_type_new (text->str);
}

GBytes *
slim_state_save_fields (gconstpointer instance, const SlimStateField *fields, guint n_fields)
{
  g_autoptr (GVariantType) type = NULL;
  g_autoptr (GVariant) tuple = NULL;
  GVariantBuilder builder;

  g_return_val_if_fail (instance != NULL, NULL);
  g_return_val_if_fail (fields != NULL || n_fields == 0, NULL);

  type = slim_state_tuple_type (fields, n_fields);
  g_variant_builder_init (&builder, type);
  for (guint i = 0; i < n_fields; i++)
    {
      gconstpointer field = (const guint8 *)instance + fields[i].offset;

      switch (fields[i].type)
        {
        case SLIM_STATE_TYPE_BOOLEAN:
          g_variant_builder_add (&builder, "b", *(const gboolean *)field);
          break;
        case SLIM_STATE_TYPE_INT:
          g_variant_builder_add (&builder, "i", *(const gint *)field);
          break;
        case SLIM_STATE_TYPE_UINT:
          g_variant_builder_add (&builder, "u", *(const guint *)field);
          break;
        case SLIM_STATE_TYPE_INT64:
          g_variant_builder_add (&builder, "x", *(const gint64 *)field);
          break;
        case SLIM_STATE_TYPE_DOUBLE:
          g_variant_builder_add (&builder, "d", *(const double *)field);
          break;
        }
    }
  tuple = g_variant_ref_sink (g_variant_builder_end (&builder));
  return g_variant_get_data_as_bytes (tuple);
}

gboolean
slim_state_restore_fields (
    gpointer instance, const SlimStateField *fields, guint n_fields, GBytes *state, GError **error)
{
  g_autoptr (GVariantType) type = NULL;
  g_autoptr (GVariant) tuple = NULL;

  g_return_val_if_fail (instance != NULL, FALSE);
  g_return_val_if_fail (fields != NULL || n_fields == 0, FALSE);
  g_return_val_if_fail (state != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  type = slim_state_tuple_type (fields, n_fields);
  tuple = g_variant_ref_sink (g_variant_new_from_bytes (type, state, FALSE));
  /* bytes of another size or shape read as zeros: refuse them instead */
  if (!g_variant_is_normal_form (tuple))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "the saved state (%" G_GSIZE_FORMAT " bytes) is not a state of %u fields %s",
                   g_bytes_get_size (state), n_fields, g_variant_type_peek_string (type));
      return FALSE;
    }
  for (guint i = 0; i < n_fields; i++)
    {
      g_autoptr (GVariant) child = g_variant_get_child_value (tuple, i);
      gpointer field = (guint8 *)instance + fields[i].offset;

      switch (fields[i].type)
        {
        case SLIM_STATE_TYPE_BOOLEAN:
          *(gboolean *)field = g_variant_get_boolean (child);
          break;
        case SLIM_STATE_TYPE_INT:
          *(gint *)field = g_variant_get_int32 (child);
          break;
        case SLIM_STATE_TYPE_UINT:
          *(guint *)field = g_variant_get_uint32 (child);
          break;
        case SLIM_STATE_TYPE_INT64:
          *(gint64 *)field = g_variant_get_int64 (child);
          break;
        case SLIM_STATE_TYPE_DOUBLE:
          *(double *)field = g_variant_get_double (child);
          break;
        }
    }
  return TRUE;
}
