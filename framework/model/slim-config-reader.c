/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-reader.c: typed, range-checked lookups in an untrusted
 * config.json: the nested text_config first, then the top level.  Every
 * error is SLIM_MODEL_ERROR_CONFIG and names the file and the field.
 */
#include "slim-config-reader.h"

#include <math.h>

#include "slim-error.h"

JsonNode *
slim_config_reader_lookup (const SlimConfigReader *reader, const char *key)
{
  JsonNode *node = NULL;

  if (reader->text != NULL && json_object_has_member (reader->text, key))
    node = json_object_get_member (reader->text, key);
  else if (reader->root != NULL && json_object_has_member (reader->root, key))
    node = json_object_get_member (reader->root, key);
  if (node != NULL && JSON_NODE_HOLDS_NULL (node))
    return NULL;
  return node;
}

gboolean
slim_config_reader_has (const SlimConfigReader *reader, const char *key)
{
  return slim_config_reader_lookup (reader, key) != NULL;
}

gboolean
slim_config_reader_missing (const SlimConfigReader *reader, const char *key, GError **error)
{
  g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG, "%s: missing field '%s'",
               reader->what, key);
  return FALSE;
}

gboolean
slim_config_reader_get_int (const SlimConfigReader *reader,
                            const char *key,
                            gboolean required,
                            gint64 fallback,
                            gint64 min,
                            gint64 max,
                            gint64 *out,
                            GError **error)
{
  JsonNode *node = slim_config_reader_lookup (reader, key);
  gint64 value;

  if (node == NULL)
    {
      if (required)
        return slim_config_reader_missing (reader, key, error);
      *out = fallback;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: field '%s' must be an integer", reader->what, key);
      return FALSE;
    }
  value = json_node_get_int (node);
  if (value < min || value > max)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: field '%s' = %" G_GINT64_FORMAT " is outside %" G_GINT64_FORMAT
                   "..%" G_GINT64_FORMAT,
                   reader->what, key, value, min, max);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

gboolean
slim_config_reader_get_positive (const SlimConfigReader *reader,
                                 const char *key,
                                 gboolean required,
                                 double fallback,
                                 double *out,
                                 GError **error)
{
  JsonNode *node = slim_config_reader_lookup (reader, key);
  double value;

  if (node == NULL)
    {
      if (required)
        return slim_config_reader_missing (reader, key, error);
      *out = fallback;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node)
      || (json_node_get_value_type (node) != G_TYPE_INT64
          && json_node_get_value_type (node) != G_TYPE_DOUBLE))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: field '%s' must be a number", reader->what, key);
      return FALSE;
    }
  value = json_node_get_value_type (node) == G_TYPE_INT64 ? (double)json_node_get_int (node)
                                                          : json_node_get_double (node);
  if (!isfinite (value) || value <= 0.0)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: field '%s' = %g must be a finite number > 0", reader->what, key, value);
      return FALSE;
    }
  *out = value;
  return TRUE;
}

gboolean
slim_config_reader_get_bool (const SlimConfigReader *reader,
                             const char *key,
                             gboolean fallback,
                             gboolean *out,
                             GError **error)
{
  JsonNode *node = slim_config_reader_lookup (reader, key);

  if (node == NULL)
    {
      *out = fallback;
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: field '%s' must be true or false", reader->what, key);
      return FALSE;
    }
  *out = json_node_get_boolean (node);
  return TRUE;
}

gboolean
slim_config_reader_get_string (const SlimConfigReader *reader,
                               const char *key,
                               const char **out,
                               GError **error)
{
  JsonNode *node = slim_config_reader_lookup (reader, key);

  *out = NULL;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: field '%s' must be a string", reader->what, key);
      return FALSE;
    }
  *out = json_node_get_string (node);
  return TRUE;
}

/* bos/eos: an integer, null, or a list of integers (its first is taken). */
gboolean
slim_config_reader_get_token (
    const SlimConfigReader *reader, const char *key, gint64 vocab_size, gint64 *out, GError **error)
{
  JsonNode *node = slim_config_reader_lookup (reader, key);

  *out = -1;
  if (node == NULL)
    return TRUE;
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *array = json_node_get_array (node);

      if (json_array_get_length (array) == 0)
        return TRUE;
      node = json_array_get_element (array, 0);
    }
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64
      || json_node_get_int (node) < 0 || json_node_get_int (node) >= vocab_size)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: field '%s' must be a token id in 0..%" G_GINT64_FORMAT, reader->what, key,
                   vocab_size - 1);
      return FALSE;
    }
  *out = json_node_get_int (node);
  return TRUE;
}
