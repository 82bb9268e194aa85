/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-reader.h (private): SlimConfigReader, lookups in an
 * untrusted Hugging Face config.json: the nested text_config first (when
 * present), then the top level.  Numbers are type- and range-checked
 * before anything is sized from them.  Errors: SLIM_MODEL_ERROR_CONFIG
 * naming what and the key.  Used by the config parser and the adapters.
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

typedef struct
{
  JsonObject *text; /* text_config, or root */
  JsonObject *root;
  const char *what; /* file name for messages */
} SlimConfigReader;

/* The member key (text_config first); NULL when absent or null. */
JsonNode *slim_config_reader_lookup (const SlimConfigReader *reader, const char *key);
/* TRUE when the key is present and not null. */
gboolean slim_config_reader_has (const SlimConfigReader *reader, const char *key);
/* Sets "missing field key" and returns FALSE. */
gboolean
slim_config_reader_missing (const SlimConfigReader *reader, const char *key, GError **error);
/* Integer in [min, max]; when absent or null: an error if required, else
 * *out = fallback. */
gboolean slim_config_reader_get_int (const SlimConfigReader *reader,
                                     const char *key,
                                     gboolean required,
                                     gint64 fallback,
                                     gint64 min,
                                     gint64 max,
                                     gint64 *out,
                                     GError **error);
/* Finite number > 0 (integers accepted). */
gboolean slim_config_reader_get_positive (const SlimConfigReader *reader,
                                          const char *key,
                                          gboolean required,
                                          double fallback,
                                          double *out,
                                          GError **error);
gboolean slim_config_reader_get_bool (const SlimConfigReader *reader,
                                      const char *key,
                                      gboolean fallback,
                                      gboolean *out,
                                      GError **error);
/* A string (owned by the JSON tree), or *out = NULL when absent or null. */
gboolean slim_config_reader_get_string (const SlimConfigReader *reader,
                                        const char *key,
                                        const char **out,
                                        GError **error);
/* A token id in 0..vocab_size-1: an integer, null (-1), or a list of
 * integers whose first is taken (an empty list: -1). */
gboolean slim_config_reader_get_token (const SlimConfigReader *reader,
                                       const char *key,
                                       gint64 vocab_size,
                                       gint64 *out,
                                       GError **error);

G_END_DECLS
