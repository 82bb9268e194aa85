/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow logits: run a model folder on token ids and write the float32
 * logits as a NumPy .npy file.
 *
 *   slimflow logits --model_path DIR --input_ids IDS.json --out OUT.npy
 *
 * IDS.json is {"input_ids": [i0, i1, ...]} (one sequence; OUT is [seq,
 * vocab]) or {"input_ids": [[...], [...], ...]} (a batch; OUT is [batch,
 * seq, vocab]).  Batches must be rectangular: every sequence the same
 * length (there is no padding token or attention mask in the input, so a
 * ragged batch is rejected rather than guessed at).  Other keys of the
 * object are ignored.
 *
 * Exit codes: 0 success; 1 the model could not be read or run; 2 bad
 * options or a bad input_ids file (malformed, ragged, ids outside the
 * vocabulary).
 */
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "slim-error.h"
#include "slim-linalg.h"
#include "slim-model.h"
#include "slim-npy.h"
#include "slimflow-commands.h"

#define SLIM_LOGITS_CMD "logits"
/* Bound on the input file (untrusted): 256 MiB of JSON. */
#define SLIM_LOGITS_MAX_INPUT_BYTES (256 * 1024 * 1024)

/* Token ids of a rectangular batch. */
typedef struct
{
  gboolean batched; /* the JSON held a list of lists */
  gint64 n_seqs;
  gint64 seq_len;
  gint32 *ids; /* (n_seqs, seq_len) */
} SlimLogitsInput;

static gboolean
slim_logits_read_row (JsonArray *row, const char *path, gint64 seq, gint32 *ids, GError **error)
{
  for (guint i = 0; i < json_array_get_length (row); i++)
    {
      JsonNode *node = json_array_get_element (row, i);
      gint64 value;

      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: input_ids[%" G_GINT64_FORMAT "][%u] is not an integer", path, seq, i);
          return FALSE;
        }
      value = json_node_get_int (node);
      if (value < 0 || value > G_MAXINT32)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                       "%s: input_ids[%" G_GINT64_FORMAT "][%u] = %" G_GINT64_FORMAT
                       " is not a token id",
                       path, seq, i, value);
          return FALSE;
        }
      ids[i] = (gint32)value;
    }
  return TRUE;
}

static gboolean
slim_logits_read_input (const char *path, SlimLogitsInput *input, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autofree char *text = NULL;
  gsize length = 0;
  JsonNode *root, *ids_node;
  JsonArray *outer;
  guint n_outer;

  if (!g_file_get_contents (path, &text, &length, error))
    return FALSE;
  if (length > SLIM_LOGITS_MAX_INPUT_BYTES)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: file too large", path);
      return FALSE;
    }
  if (!json_parser_load_from_data (parser, text, (gssize)length, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)
      || !json_object_has_member (json_node_get_object (root), "input_ids"))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: expected an object with an 'input_ids' list", path);
      return FALSE;
    }
  ids_node = json_object_get_member (json_node_get_object (root), "input_ids");
  if (!JSON_NODE_HOLDS_ARRAY (ids_node)
      || json_array_get_length (json_node_get_array (ids_node)) == 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: 'input_ids' must be a non-empty list of token ids or of lists", path);
      return FALSE;
    }
  outer = json_node_get_array (ids_node);
  n_outer = json_array_get_length (outer);
  input->batched = JSON_NODE_HOLDS_ARRAY (json_array_get_element (outer, 0));
  if (!input->batched)
    {
      input->n_seqs = 1;
      input->seq_len = n_outer;
      input->ids = g_new (gint32, n_outer);
      return slim_logits_read_row (outer, path, 0, input->ids, error);
    }

  input->n_seqs = n_outer;
  input->seq_len = json_array_get_length (json_array_get_array_element (outer, 0));
  if (input->seq_len == 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: input_ids[0] is an empty sequence", path);
      return FALSE;
    }
  if (input->n_seqs > G_MAXINT64 / input->seq_len)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: too many ids", path);
      return FALSE;
    }
  input->ids = g_new (gint32, input->n_seqs * input->seq_len);
  for (guint s = 0; s < n_outer; s++)
    {
      JsonNode *row = json_array_get_element (outer, s);

      if (!JSON_NODE_HOLDS_ARRAY (row))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: input_ids[%u] is not a list (mixing lists and ids)", path, s);
          return FALSE;
        }
      if ((gint64)json_array_get_length (json_node_get_array (row)) != input->seq_len)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                       "%s: input_ids[%u] has %u ids but input_ids[0] has %" G_GINT64_FORMAT
                       "; batches must be rectangular (no padding is applied)",
                       path, s, json_array_get_length (json_node_get_array (row)), input->seq_len);
          return FALSE;
        }
      if (!slim_logits_read_row (json_node_get_array (row), path, s,
                                 input->ids + (gint64)s * input->seq_len, error))
        return FALSE;
    }
  return TRUE;
}

int
slim_cmd_logits (int argc, char **argv)
{
  g_autofree char *model_path = NULL;
  g_autofree char *ids_path = NULL;
  g_autofree char *out_path = NULL;
  gint n_threads = 0;
  gboolean force_progress = FALSE;
  gboolean exit_now = FALSE;
  const GOptionEntry entries[] = {
    { "model_path", 0, 0, G_OPTION_ARG_FILENAME, &model_path,
      "Hugging Face model folder (config.json, *.safetensors)", "DIR" },
    { "input_ids", 0, 0, G_OPTION_ARG_FILENAME, &ids_path,
      "JSON file {\"input_ids\": [...]} or {\"input_ids\": [[...], ...]} (rectangular)", "FILE" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out_path,
      "output .npy: float32 [seq, vocab], or [batch, seq, vocab] for a batch", "FILE" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads,
      "OpenBLAS threads (default 0: one per processor)", "N" },
    { "progress", 0, 0, G_OPTION_ARG_NONE, &force_progress,
      "show the progress line even when stderr is not a terminal", NULL },
    { NULL },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimModel) model = NULL;
  g_autoptr (SlimTensor) logits = NULL;
  g_autoptr (SlimTensor) shaped = NULL;
  g_autofree gint64 *seq_lens = NULL;
  g_autoptr (SlimProgress) progress = NULL;
  SlimLogitsInput input = { 0 };
  SlimBatch batch;
  gint64 vocab;
  int status = SLIM_EXIT_OK;

  if (!slim_cli_parse (SLIM_LOGITS_CMD, NULL,
                       "Run a model on token ids and write float32 logits as .npy.\n"
                       "Batches must be rectangular (every sequence the same length).",
                       entries, &argc, &argv, &exit_now))
    return SLIM_EXIT_USAGE;
  if (exit_now)
    return SLIM_EXIT_OK;
  if (model_path == NULL || ids_path == NULL || out_path == NULL || argc > 1 || n_threads < 0)
    {
      fprintf (stderr,
               "slimflow %s: --model_path, --input_ids and --out are required, --threads >= 0 "
               "(see 'slimflow %s --help')\n",
               SLIM_LOGITS_CMD, SLIM_LOGITS_CMD);
      return SLIM_EXIT_USAGE;
    }
  slim_linalg_set_n_threads (n_threads);

  if (!slim_logits_read_input (ids_path, &input, &error))
    {
      slim_cli_print_error (SLIM_LOGITS_CMD, error);
      g_free (input.ids);
      return SLIM_EXIT_USAGE;
    }
  model = slim_model_open (model_path, &error);
  if (model == NULL)
    {
      slim_cli_print_error (SLIM_LOGITS_CMD, error);
      g_free (input.ids);
      return SLIM_EXIT_FAILURE;
    }
  vocab = slim_model_get_config (model)->vocab_size;
  for (gint64 i = 0; i < input.n_seqs * input.seq_len; i++)
    if (input.ids[i] >= vocab)
      {
        fprintf (stderr,
                 "slimflow %s: %s: token id %d (sequence %" G_GINT64_FORMAT
                 ", position %" G_GINT64_FORMAT
                 ") is outside the vocabulary of %s (0..%" G_GINT64_FORMAT ")\n",
                 SLIM_LOGITS_CMD, ids_path, input.ids[i], i / input.seq_len, i % input.seq_len,
                 model_path, vocab - 1);
        g_free (input.ids);
        return SLIM_EXIT_USAGE;
      }

  seq_lens = g_new (gint64, input.n_seqs);
  for (gint64 s = 0; s < input.n_seqs; s++)
    seq_lens[s] = input.seq_len;
  batch = (SlimBatch){ (guint)input.n_seqs, seq_lens };
  /* Counted in layers: embedding, each decoder layer, head. */
  progress
      = slim_progress_new (SLIM_LOGITS_CMD, "layers", slim_model_get_config (model)->n_layers + 2,
                           slim_progress_default_enabled (force_progress));
  logits = slim_model_forward_logits_full (model, input.ids, &batch, NULL, progress, &error);
  if (logits != NULL)
    slim_progress_finish (progress);
  if (logits != NULL)
    {
      gint64 shape[3] = { input.n_seqs, input.seq_len, vocab };

      shaped = input.batched ? slim_tensor_reshape (logits, 3, shape, &error)
                             : slim_tensor_reshape (logits, 2, shape + 1, &error);
    }
  if (shaped == NULL || !slim_npy_write (out_path, shaped, &error))
    {
      slim_cli_print_error (SLIM_LOGITS_CMD, error);
      status = SLIM_EXIT_FAILURE;
    }
  g_free (input.ids);
  return status;
}
