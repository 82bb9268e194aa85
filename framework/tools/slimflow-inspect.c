/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow-inspect.c: `slimflow inspect PATH` describes a safetensors file,
 * a *.safetensors.index.json or a model folder: a config.json summary (for
 * a folder), the __metadata__, every tensor with dtype, shape and bytes, and
 * the totals.  Every header is fully validated first; a malformed file is a
 * one-line error and exit code 1.
 */
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "slim-error.h"
#include "slim-safetensors-private.h"
#include "slim-safetensors.h"
#include "slimflow-commands.h"

/* config.json files are small; anything beyond this is not a config. */
#define INSPECT_MAX_CONFIG_BYTES (4 * 1024 * 1024)
#define INSPECT_MAX_CONFIG_DEPTH 32

static const char *const config_keys[] = {
  "model_type",
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_dim",
  "vocab_size",
  "max_position_embeddings",
  "rms_norm_eps",
  "rope_theta",
  "hidden_act",
  "tie_word_embeddings",
  "torch_dtype",
};

/* A copy safe to print on one line: control characters become '?'. */
static char *
printable (const char *text)
{
  char *copy = g_strdup (text);
  for (char *p = copy; *p != '\0'; p++)
    if ((guchar)*p < 0x20 || *p == 0x7f)
      *p = '?';
  return copy;
}

/* Prints the error on one line, whatever the file put in the message. */
static void
print_error (const GError *error)
{
  g_autoptr (GError) copy = g_error_copy (error);
  g_free (copy->message);
  copy->message = printable (error->message);
  slim_cli_print_error ("inspect", copy);
}

static char *
format_value (JsonNode *node)
{
  GType type;

  if (JSON_NODE_HOLDS_NULL (node))
    return g_strdup ("null");
  if (!JSON_NODE_HOLDS_VALUE (node))
    return NULL;
  type = json_node_get_value_type (node);
  if (type == G_TYPE_INT64)
    return g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
  if (type == G_TYPE_DOUBLE)
    return g_strdup_printf ("%g", json_node_get_double (node));
  if (type == G_TYPE_BOOLEAN)
    return g_strdup (json_node_get_boolean (node) ? "true" : "false");
  if (type == G_TYPE_STRING)
    return printable (json_node_get_string (node));
  return NULL;
}

/* Prints the interesting fields of config.json; FALSE if it is malformed. */
static gboolean
print_config (const char *config_path, GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GString) line = g_string_new ("config:");
  JsonObject *root;
  JsonNode *architectures;
  gsize n_bytes = 0;
  guint64 n_members = 0;

  if (!g_file_get_contents (config_path, &contents, &n_bytes, error))
    return FALSE;
  if (n_bytes > INSPECT_MAX_CONFIG_BYTES || !g_utf8_validate_len (contents, n_bytes, NULL))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: larger than 4 MB or not UTF-8", config_path);
      return FALSE;
    }
  if (!slim_safetensors_json_prescan (contents, n_bytes, INSPECT_MAX_CONFIG_DEPTH, &n_members,
                                      &local_error))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: %s", config_path,
                   local_error->message);
      return FALSE;
    }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, contents, (gssize)n_bytes, &local_error))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: not valid JSON: %s",
                   config_path, local_error->message);
      return FALSE;
    }
  if (json_parser_get_root (parser) == NULL
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: not a JSON object",
                   config_path);
      return FALSE;
    }
  root = json_node_get_object (json_parser_get_root (parser));
  architectures = json_object_get_member (root, "architectures");
  if (architectures != NULL && JSON_NODE_HOLDS_ARRAY (architectures))
    {
      JsonArray *array = json_node_get_array (architectures);
      g_string_append (line, " architectures=");
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          g_autofree char *text = format_value (json_array_get_element (array, i));
          g_string_append_printf (line, "%s%s", i > 0 ? "," : "", text != NULL ? text : "?");
        }
    }
  for (gsize i = 0; i < G_N_ELEMENTS (config_keys); i++)
    {
      JsonNode *node = json_object_get_member (root, config_keys[i]);
      g_autofree char *text = node != NULL ? format_value (node) : NULL;
      if (text != NULL)
        g_string_append_printf (line, " %s=%s", config_keys[i], text);
    }
  printf ("%s\n", line->str);
  return TRUE;
}

static gint
compare_str_ptr (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static void
print_metadata (GHashTable *metadata)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer key;

  if (g_hash_table_size (metadata) == 0)
    return;
  g_hash_table_iter_init (&iter, metadata);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_str_ptr);
  printf ("metadata:");
  for (guint i = 0; i < keys->len; i++)
    {
      g_autofree char *k = printable (g_ptr_array_index (keys, i));
      g_autofree char *v = printable (g_hash_table_lookup (metadata, g_ptr_array_index (keys, i)));
      printf (" %s=%s", k, v);
    }
  printf ("\n");
}

static void
print_tensors (SlimSafetensors *reader)
{
  const char *const *names = slim_safetensors_get_names (reader);
  guint64 bytes_by_dtype[SLIM_N_DTYPES] = { 0 };
  guint count_by_dtype[SLIM_N_DTYPES] = { 0 };
  gsize name_width = 4;

  for (guint i = 0; names[i] != NULL; i++)
    name_width = MAX (name_width, strlen (names[i]));
  printf ("tensors: %u in %u file%s\n", slim_safetensors_get_n_tensors (reader),
          slim_safetensors_get_n_files (reader),
          slim_safetensors_get_n_files (reader) == 1 ? "" : "s");
  for (guint i = 0; names[i] != NULL; i++)
    {
      SlimDType dtype;
      guint n_dims;
      gint64 shape[SLIM_TENSOR_MAX_DIMS];
      guint64 n_elements = 1, n_bytes = 0;
      g_autoptr (GString) shape_text = g_string_new ("[");
      g_autofree char *name = printable (names[i]);

      slim_safetensors_get_info (reader, names[i], &dtype, &n_dims, shape);
      for (guint d = 0; d < n_dims; d++)
        {
          g_string_append_printf (shape_text, "%s%" G_GINT64_FORMAT, d > 0 ? ", " : "", shape[d]);
          n_elements *= (guint64)shape[d]; /* validated by the reader: no overflow */
        }
      g_string_append_c (shape_text, ']');
      slim_dtype_n_bytes (dtype, n_elements, &n_bytes);
      bytes_by_dtype[dtype] += n_bytes;
      count_by_dtype[dtype]++;
      printf ("  %-*s  %-9s %-16s %" G_GUINT64_FORMAT " bytes\n", (int)name_width, name,
              slim_dtype_get_name (dtype), shape_text->str, n_bytes);
    }
  printf ("total: %u tensors, %" G_GUINT64_FORMAT " bytes", slim_safetensors_get_n_tensors (reader),
          slim_safetensors_get_total_bytes (reader));
  for (guint d = 0; d < SLIM_N_DTYPES; d++)
    if (count_by_dtype[d] > 0)
      printf ("; %s: %u tensors, %" G_GUINT64_FORMAT " bytes", slim_dtype_get_name ((SlimDType)d),
              count_by_dtype[d], bytes_by_dtype[d]);
  printf ("\n");
}

int
slim_cmd_inspect (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimSafetensors) reader = NULL;
  gboolean exit_now = FALSE;
  const char *path;
  static const GOptionEntry entries[] = { G_OPTION_ENTRY_NULL };

  if (!slim_cli_parse ("inspect", "PATH",
                       "Describe a safetensors file, a *.safetensors.index.json or a model "
                       "folder:\nconfig.json summary, metadata, every tensor's dtype, shape and "
                       "bytes, and totals.\nExit status: 0 ok, 1 unreadable or malformed input, "
                       "2 usage error.",
                       entries, &argc, &argv, &exit_now))
    return SLIM_EXIT_USAGE;
  if (exit_now)
    return SLIM_EXIT_OK;
  if (argc != 2)
    {
      fprintf (stderr,
               "slimflow inspect: expected exactly one PATH (see 'slimflow inspect --help')\n");
      return SLIM_EXIT_USAGE;
    }
  path = argv[1];
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (&error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: no such file or folder", path);
      slim_cli_print_error ("inspect", error);
      return SLIM_EXIT_FAILURE;
    }

  /* Validate every header before printing anything. */
  reader = slim_safetensors_open (path, &error);
  if (reader == NULL)
    {
      print_error (error);
      return SLIM_EXIT_FAILURE;
    }
  printf ("path: %s\n", path);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autofree char *config_path = g_build_filename (path, "config.json", NULL);
      if (g_file_test (config_path, G_FILE_TEST_EXISTS) && !print_config (config_path, &error))
        {
          fflush (stdout);
          print_error (error);
          return SLIM_EXIT_FAILURE;
        }
    }
  print_metadata (slim_safetensors_get_metadata (reader));
  print_tensors (reader);
  return SLIM_EXIT_OK;
}
