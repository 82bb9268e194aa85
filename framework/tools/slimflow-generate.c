/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow generate: greedy text generation, to eyeball a model (before
 * and after quantization).
 *
 *   slimflow generate --model_path DIR --prompt TEXT [--max_new_tokens N]
 *
 * The prompt is tokenized with BOS as the tokenizer asks; --prompt ""
 * starts from BOS alone.  At every step the whole sequence runs again
 * (there is no KV cache: generation is a check, not a server) and the
 * token with the largest logit is appended, until EOS, --max_new_tokens,
 * or max_position_embeddings.  The decoder layers stay loaded for the
 * whole run.  stdout gets the prompt and its continuation as one text
 * (special tokens left out), or with --json an object with the ids.
 *
 * Exit codes: 0 success; 1 the model or tokenizer could not be read or
 * run; 2 bad options (including an empty prompt without a BOS token).
 */
#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "slim-error.h"
#include "slim-eval.h"
#include "slim-linalg.h"
#include "slim-model.h"
#include "slim-progress.h"
#include "slim-tokenizer.h"
#include "slimflow-commands.h"

#define SLIM_GENERATE_CMD "generate"
#define SLIM_GENERATE_DEFAULT_NEW_TOKENS 64

typedef struct
{
  SlimModel *model; /* transfer none */
  SlimLayer *embed;
  SlimLayer *head;
  GPtrArray *layers; /* SlimLayer*, one per decoder layer */
} SlimGenerator;

static void
slim_generator_clear (SlimGenerator *g)
{
  g_clear_object (&g->embed);
  g_clear_object (&g->head);
  g_clear_pointer (&g->layers, g_ptr_array_unref);
}

static gboolean
slim_generator_load (SlimGenerator *g, GError **error)
{
  g->embed = slim_model_load_embed (g->model, error);
  if (g->embed == NULL)
    return FALSE;
  g->head = slim_model_load_head (g->model, error);
  if (g->head == NULL)
    return FALSE;
  g->layers = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint l = 0; l < slim_model_get_n_layers (g->model); l++)
    {
      SlimLayer *layer = slim_model_load_layer (g->model, l, error);
      if (layer == NULL)
        return FALSE;
      g_ptr_array_add (g->layers, layer);
    }
  return TRUE;
}

/* The greedy next token after ids (n_ids): logits of the last row only. */
static gint32
slim_generator_next (SlimGenerator *g, const gint32 *ids, gint64 n_ids, GError **error)
{
  g_autoptr (SlimTensor) hidden = slim_model_embed (g->model, g->embed, ids, n_ids, error);
  if (hidden == NULL)
    return -1;
  SlimBatch batch = { .n_seqs = 1, .seq_lens = &n_ids };
  for (guint l = 0; l < g->layers->len; l++)
    {
      SlimTensor *next = slim_model_forward_layer (g->model, g_ptr_array_index (g->layers, l),
                                                   hidden, &batch, NULL, error);
      if (next == NULL)
        {
          g_prefix_error (error, "layer %u: ", l);
          return -1;
        }
      slim_tensor_unref (hidden);
      hidden = next;
    }
  gint64 hidden_size = slim_tensor_get_dim (hidden, 1);
  g_autoptr (SlimTensor) last
      = slim_tensor_new_2d ("hidden_states", SLIM_DTYPE_F32, 1, hidden_size);
  const float *rows = slim_tensor_get_data (hidden); /* (n_ids, hidden) */
  memcpy (slim_tensor_get_data_mut (last), rows + (n_ids - 1) * hidden_size,
          (gsize)hidden_size * sizeof (float));
  g_autoptr (SlimTensor) logits = slim_model_forward_head (g->model, g->head, last, NULL, error);
  if (logits == NULL)
    return -1;
  gint64 n_vocab = slim_tensor_get_dim (logits, 1);
  const float *row = slim_tensor_get_data (logits); /* (1, n_vocab) */
  if (!slim_tensor_is_finite (logits))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "non-finite logits at position %" G_GINT64_FORMAT, n_ids);
      return -1;
    }
  return (gint32)slim_eval_row_argmax (row, n_vocab);
}

static void
slim_generate_print_json (SlimTokenizer *tokenizer, GArray *ids, guint n_prompt, const char *text)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "prompt_ids");
  json_builder_begin_array (builder);
  for (guint i = 0; i < n_prompt; i++)
    json_builder_add_int_value (builder, g_array_index (ids, gint32, i));
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "new_ids");
  json_builder_begin_array (builder);
  for (guint i = n_prompt; i < ids->len; i++)
    json_builder_add_int_value (builder, g_array_index (ids, gint32, i));
  json_builder_end_array (builder);
  g_autofree char *continuation = slim_tokenizer_decode (
      tokenizer, (const gint32 *)(gpointer)ids->data + n_prompt, ids->len - n_prompt, TRUE);
  json_builder_set_member_name (builder, "continuation");
  json_builder_add_string_value (builder, continuation);
  json_builder_set_member_name (builder, "text");
  json_builder_add_string_value (builder, text);
  json_builder_end_object (builder);
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autofree char *out = json_to_string (root, TRUE);
  printf ("%s\n", out);
}

int
slim_cmd_generate (int argc, char **argv)
{
  g_autofree char *model_path = NULL;
  g_autofree char *prompt = NULL;
  gint64 max_new_tokens = SLIM_GENERATE_DEFAULT_NEW_TOKENS;
  gint n_threads = 0;
  gboolean as_json = FALSE;
  gboolean progress = FALSE;
  gboolean exit_now = FALSE;
  const GOptionEntry entries[] = {
    { "model_path", 0, 0, G_OPTION_ARG_FILENAME, &model_path,
      "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)", "DIR" },
    { "prompt", 0, 0, G_OPTION_ARG_STRING, &prompt, "text to continue; \"\" starts from BOS alone",
      "TEXT" },
    { "max_new_tokens", 0, 0, G_OPTION_ARG_INT64, &max_new_tokens,
      "tokens to generate at most (default 64)", "N" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &as_json, "print ids and text as one JSON object", NULL },
    { "progress", 0, 0, G_OPTION_ARG_NONE, &progress,
      "show the progress line on stderr even when it is not a terminal", NULL },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads,
      "OpenBLAS threads (default 0: one per processor)", "N" },
    { NULL },
  };
  g_autoptr (GError) error = NULL;

  if (!slim_cli_parse (SLIM_GENERATE_CMD, NULL,
                       "Greedy generation: the prompt and its continuation go to stdout.", entries,
                       &argc, &argv, &exit_now))
    return SLIM_EXIT_USAGE;
  if (exit_now)
    return SLIM_EXIT_OK;
  if (model_path == NULL || prompt == NULL || argc > 1 || max_new_tokens < 0 || n_threads < 0)
    {
      fprintf (stderr,
               "slimflow %s: --model_path and --prompt are required, --max_new_tokens >= 0, "
               "--threads >= 0 (see 'slimflow %s --help')\n",
               SLIM_GENERATE_CMD, SLIM_GENERATE_CMD);
      return SLIM_EXIT_USAGE;
    }
  slim_linalg_set_n_threads (n_threads);

  g_autoptr (SlimModel) model = slim_model_open (model_path, &error);
  if (model == NULL)
    {
      slim_cli_print_error (SLIM_GENERATE_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  g_autoptr (SlimTokenizer) tokenizer = slim_tokenizer_new_from_dir (model_path, &error);
  if (tokenizer == NULL)
    {
      slim_cli_print_error (SLIM_GENERATE_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  g_autoptr (GArray) ids = slim_tokenizer_encode (tokenizer, prompt, TRUE, &error);
  if (ids == NULL)
    {
      g_prefix_error (&error, "--prompt: ");
      slim_cli_print_error (SLIM_GENERATE_CMD, error);
      return SLIM_EXIT_USAGE;
    }
  if (ids->len == 0)
    {
      gint32 bos = slim_tokenizer_get_bos_id (tokenizer);
      if (bos < 0)
        {
          fprintf (stderr,
                   "slimflow %s: the prompt is empty and the tokenizer of %s has no BOS token to "
                   "start from\n",
                   SLIM_GENERATE_CMD, model_path);
          return SLIM_EXIT_USAGE;
        }
      g_array_append_val (ids, bos);
    }
  if (!slim_tokenizer_check_ids (tokenizer, (const gint32 *)(gpointer)ids->data, ids->len, &error))
    {
      slim_cli_print_error (SLIM_GENERATE_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  guint n_prompt = ids->len;

  const SlimModelConfig *config = slim_model_get_config (model);
  gint64 max_len = (gint64)n_prompt + max_new_tokens;
  if (config->max_position_embeddings > 0)
    max_len = MIN (max_len, MAX (config->max_position_embeddings, (gint64)n_prompt));
  gint32 eos = slim_tokenizer_get_eos_id (tokenizer);
  if (eos < 0)
    eos = (gint32)config->eos_token_id;

  SlimGenerator g = { .model = model };
  gboolean ok = slim_generator_load (&g, &error);
  g_autoptr (SlimProgress) bar = slim_progress_new ("generate", "tokens", max_len - n_prompt,
                                                    slim_progress_default_enabled (progress));
  while (ok && (gint64)ids->len < max_len)
    {
      gint32 next = slim_generator_next (&g, (const gint32 *)(gpointer)ids->data, ids->len, &error);
      if (next < 0)
        {
          ok = FALSE;
          break;
        }
      g_array_append_val (ids, next);
      slim_progress_update (bar, ids->len - n_prompt);
      if (next == eos)
        break;
    }
  slim_progress_finish (bar);
  slim_generator_clear (&g);
  if (!ok)
    {
      slim_cli_print_error (SLIM_GENERATE_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  g_autofree char *text
      = slim_tokenizer_decode (tokenizer, (const gint32 *)(gpointer)ids->data, ids->len, TRUE);
  if (as_json)
    slim_generate_print_json (tokenizer, ids, n_prompt, text);
  else
    printf ("%s\n", text);
  return SLIM_EXIT_OK;
}
