/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-config.c: config.json's quantization_config (see slim-hf-config.h).
 */
#include "slim-hf-config.h"

#include "slim-ascend-writer.h"
#include "slim-error.h"

gboolean
slim_hf_config_set_quantization_config (
    const char *out_dir, const char *saver, JsonObject *qc, gboolean untie, GError **error)
{
  g_autoptr (JsonObject) owned = qc;
  g_autofree char *path = g_build_filename (out_dir, "config.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autofree char *text = NULL;
  JsonNode *root_node;
  JsonObject *root;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                   "%s: missing (%s records the quantization in config.json; the model folder "
                   "has none)",
                   path, saver);
      return FALSE;
    }
  if (!json_parser_load_from_file (parser, path, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  root_node = json_parser_get_root (parser);
  if (root_node == NULL || !JSON_NODE_HOLDS_OBJECT (root_node))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: the top level is not a JSON object", path);
      return FALSE;
    }
  root = json_node_get_object (root_node);
  if (untie && json_object_has_member (root, "tie_word_embeddings"))
    json_object_set_boolean_member (root, "tie_word_embeddings", FALSE);
  if (owned != NULL)
    json_object_set_object_member (root, "quantization_config", g_steal_pointer (&owned));
  else if (json_object_has_member (root, "quantization_config"))
    json_object_remove_member (root, "quantization_config");
  text = slim_ascend_json_to_python_text (root_node, 2);
  return g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}
