/* SPDX-License-Identifier: Apache-2.0
 *
 * jsonl.c: the "jsonl" dataset: msModelSlim's lab_calib files (spec 4.1).
 *
 * - A path ending in ".json" holds one JSON list of strings: one sample
 *   per string.
 * - Any other path is JSON Lines: one JSON value per line; the sample text
 *   is the string under "inputs_pretokenized", or under "prompt" (the key
 *   of humaneval_x.jsonl); a line holding a bare JSON string is that
 *   string; a line whose JSON has neither key is used as raw text, as
 *   msModelSlim's load_jsonl does.  A line that is not valid
 *   JSON, or whose key holds something other than a string, is an error
 *   naming file:line.  Blank lines are skipped.
 *
 * Every text is tokenized on its own with the model's tokenizer (BOS as
 * tokenizer_config.json asks, like msModelSlim's tokenizer(text) call),
 * truncated to max-length tokens; samples that tokenize to nothing are
 * dropped, and max-samples keeps the first ones.
 */
#include "slim-plugin.h"

#include <json-glib/json-glib.h>
#include <string.h>

/* Bound on the file (untrusted): 1 GiB. */
#define SLIM_JSONL_MAX_FILE_BYTES ((guint64)1 << 30)

#define SLIM_TYPE_JSONL_DATASET (slim_jsonl_dataset_get_type ())
G_DECLARE_FINAL_TYPE (SlimJsonlDataset, slim_jsonl_dataset, SLIM, JSONL_DATASET, SlimDataset)

struct _SlimJsonlDataset
{
  SlimDataset parent_instance;

  GPtrArray *samples; /* GArray of gint32 token ids, one per sample */
};

G_DEFINE_FINAL_TYPE (SlimJsonlDataset, slim_jsonl_dataset, SLIM_TYPE_DATASET)

static char *
slim_jsonl_read_file (const char *path, gsize *out_n_bytes, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInfo) info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE,
                                                  G_FILE_QUERY_INFO_NONE, NULL, NULL);
  if (info != NULL && (guint64)g_file_info_get_size (info) > SLIM_JSONL_MAX_FILE_BYTES)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: file too large (more than %" G_GUINT64_FORMAT " bytes)", path,
                   SLIM_JSONL_MAX_FILE_BYTES);
      return NULL;
    }
  char *contents = NULL;
  if (!g_file_get_contents (path, &contents, out_n_bytes, error))
    return NULL;
  return contents;
}

/* Tokenizes text and keeps it as a sample (unless it has no tokens). */
static gboolean
slim_jsonl_add_sample (SlimJsonlDataset *self,
                       SlimTokenizer *tokenizer,
                       const char *text,
                       const char *where,
                       GError **error)
{
  guint max_length = slim_dataset_get_max_length (SLIM_DATASET (self));
  GArray *ids = slim_tokenizer_encode (tokenizer, text, TRUE, error);
  if (ids == NULL)
    {
      g_prefix_error (error, "%s: ", where);
      return FALSE;
    }
  if (max_length > 0 && ids->len > max_length)
    g_array_set_size (ids, max_length);
  if (ids->len == 0)
    {
      g_array_unref (ids);
      return TRUE;
    }
  g_ptr_array_add (self->samples, ids);
  return TRUE;
}

static gboolean
slim_jsonl_full (SlimJsonlDataset *self)
{
  guint max_samples = slim_dataset_get_max_samples (SLIM_DATASET (self));
  return max_samples > 0 && self->samples->len >= max_samples;
}

/* A ".json" file: a list of strings. */
static gboolean
slim_jsonl_load_list (SlimJsonlDataset *self,
                      SlimTokenizer *tokenizer,
                      const char *path,
                      const char *contents,
                      gsize n_bytes,
                      GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local_error = NULL;
  if (!json_parser_load_from_data (parser, contents, (gssize)n_bytes, &local_error))
    {
      /* json-glib's message starts with <data>:line:column. */
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: %s", path,
                   local_error->message);
      return FALSE;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: a .json calibration file must hold a list of strings", path);
      return FALSE;
    }
  JsonArray *array = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (array) && !slim_jsonl_full (self); i++)
    {
      JsonNode *item = json_array_get_element (array, i);
      if (!JSON_NODE_HOLDS_VALUE (item) || json_node_get_value_type (item) != G_TYPE_STRING)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: item %u of the list is not a string", path, i);
          return FALSE;
        }
      g_autofree char *where = g_strdup_printf ("%s: item %u", path, i);
      if (!slim_jsonl_add_sample (self, tokenizer, json_node_get_string (item), where, error))
        return FALSE;
    }
  return TRUE;
}

/* The text of one JSON Lines record (transfer none), or NULL with error. */
static const char *
slim_jsonl_record_text (JsonNode *root, const char *line, const char *where, GError **error)
{
  static const char *const keys[] = { "inputs_pretokenized", "prompt" };
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *object = json_node_get_object (root);
      for (gsize k = 0; k < G_N_ELEMENTS (keys); k++)
        {
          if (!json_object_has_member (object, keys[k]))
            continue;
          JsonNode *value = json_object_get_member (object, keys[k]);
          if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING)
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                           "%s: \"%s\" is not a string", where, keys[k]);
              return NULL;
            }
          return json_node_get_string (value);
        }
    }
  /* A bare JSON string is its own text. */
  if (root != NULL && JSON_NODE_HOLDS_VALUE (root)
      && json_node_get_value_type (root) == G_TYPE_STRING)
    return json_node_get_string (root);
  /* No known key: the raw line (msModelSlim's fallback). */
  return line;
}

static gboolean
slim_jsonl_load_lines (SlimJsonlDataset *self,
                       SlimTokenizer *tokenizer,
                       const char *path,
                       char *contents,
                       gsize n_bytes,
                       GError **error)
{
  char *line = contents;
  char *end = contents + n_bytes;
  guint64 line_no = 0;
  while (line < end && !slim_jsonl_full (self))
    {
      char *newline = memchr (line, '\n', end - line);
      char *line_end = newline != NULL ? newline : end;
      char *next = newline != NULL ? newline + 1 : end;
      line_no++;
      if (line_end > line && line_end[-1] == '\r')
        line_end--;
      *line_end = '\0';

      const char *p = line;
      while (*p == ' ' || *p == '\t')
        p++;
      if (*p == '\0')
        {
          line = next;
          continue;
        }
      g_autofree char *where = g_strdup_printf ("%s:%" G_GUINT64_FORMAT, path, line_no);
      if ((gsize)(line_end - line) != strlen (line))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: line contains a NUL byte", where);
          return FALSE;
        }
      g_autoptr (JsonParser) parser = json_parser_new_immutable ();
      g_autoptr (GError) local_error = NULL;
      if (!json_parser_load_from_data (parser, line, -1, &local_error))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: not valid JSON: %s", where, local_error->message);
          return FALSE;
        }
      const char *text = slim_jsonl_record_text (json_parser_get_root (parser), line, where, error);
      if (text == NULL)
        return FALSE;
      if (!slim_jsonl_add_sample (self, tokenizer, text, where, error))
        return FALSE;
      line = next;
    }
  return TRUE;
}

static gboolean
slim_jsonl_dataset_load (SlimDataset *dataset, SlimTokenizer *tokenizer, GError **error)
{
  SlimJsonlDataset *self = SLIM_JSONL_DATASET (dataset);
  const char *path = slim_dataset_get_path (dataset);
  if (tokenizer == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: the jsonl dataset needs the model's tokenizer", path);
      return FALSE;
    }
  gsize n_bytes = 0;
  g_autofree char *contents = slim_jsonl_read_file (path, &n_bytes, error);
  if (contents == NULL)
    return FALSE;
  gboolean ok = g_str_has_suffix (path, ".json")
                    ? slim_jsonl_load_list (self, tokenizer, path, contents, n_bytes, error)
                    : slim_jsonl_load_lines (self, tokenizer, path, contents, n_bytes, error);
  if (!ok)
    {
      g_ptr_array_set_size (self->samples, 0);
      return FALSE;
    }
  if (self->samples->len == 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: no calibration samples in the file", path);
      return FALSE;
    }
  return TRUE;
}

static guint
slim_jsonl_dataset_get_n_samples (SlimDataset *dataset)
{
  return SLIM_JSONL_DATASET (dataset)->samples->len;
}

static const gint32 *
slim_jsonl_dataset_get_sample (SlimDataset *dataset, guint index, gint64 *out_n_tokens)
{
  SlimJsonlDataset *self = SLIM_JSONL_DATASET (dataset);
  g_return_val_if_fail (index < self->samples->len, NULL);
  GArray *ids = g_ptr_array_index (self->samples, index);
  *out_n_tokens = ids->len;
  return (const gint32 *)(gpointer)ids->data;
}

static void
slim_jsonl_dataset_finalize (GObject *object)
{
  SlimJsonlDataset *self = SLIM_JSONL_DATASET (object);
  g_clear_pointer (&self->samples, g_ptr_array_unref);
  G_OBJECT_CLASS (slim_jsonl_dataset_parent_class)->finalize (object);
}

static void
slim_jsonl_dataset_class_init (SlimJsonlDatasetClass *klass)
{
  SlimDatasetClass *dataset_class = SLIM_DATASET_CLASS (klass);
  G_OBJECT_CLASS (klass)->finalize = slim_jsonl_dataset_finalize;
  dataset_class->load = slim_jsonl_dataset_load;
  dataset_class->get_n_samples = slim_jsonl_dataset_get_n_samples;
  dataset_class->get_sample = slim_jsonl_dataset_get_sample;
}

static void
slim_jsonl_dataset_init (SlimJsonlDataset *self)
{
  self->samples = g_ptr_array_new_with_free_func ((GDestroyNotify)g_array_unref);
}

SLIM_PLUGIN_DEFINE (dataset,
                    jsonl,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Calibration texts from JSON Lines (inputs_pretokenized / prompt) or a .json "
                    "list of strings (msModelSlim lab_calib)",
                    slim_jsonl_dataset_get_type)
