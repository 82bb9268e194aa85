/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow eval: perplexity of a model on a text file, optionally with
 * the mean KL divergence and top-1 agreement against a reference model.
 *
 *   slimflow eval --model_path DIR --text FILE [--ctx N]
 *                 [--reference_model DIR] [--json] [--progress]
 *                 [--linear_math int8|float|int8_ref]
 *
 * The text is read as UTF-8 with CRLF turned into LF (slim-text.h),
 * tokenized once with the model folder's tokenizer (BOS once at the
 * start) and cut into non-overlapping windows of --ctx tokens (default
 * 2048, the GPTQ protocol; see slim-eval.h).  Results go to stdout; the
 * progress line (when stderr is a terminal, or with --progress) and
 * errors to stderr.
 *
 * --linear_math picks how an ascendv1 folder's linears with int8
 * activations run (slim-linear-math.h): int8, the default, is what the
 * accelerator computes (int8 codes, exact int32 sums, deq_scale /
 * quant_bias or per-token scaling), so the perplexity is the deployed
 * model's; float is the fake-quant float32 product of msModelSlim's IR
 * modules (what the calibration forward runs); int8_ref is int8 with the
 * plain reference product (same figures, slower; for checking).  The
 * choice is printed with the results when the model is quantized.
 *
 * Exit codes: 0 success; 1 a model, tokenizer or text could not be read,
 * or the text is empty; 2 bad options.
 */
#include <stdio.h>

#include <json-glib/json-glib.h>

#include "slim-eval.h"
#include "slim-linalg.h"
#include "slim-model.h"
#include "slim-progress.h"
#include "slim-quant-model.h"
#include "slim-text.h"
#include "slim-tokenizer.h"
#include "slimflow-commands.h"

#define SLIM_EVAL_CMD "eval"

static void
slim_eval_print_json (const char *model_path,
                      const char *text_path,
                      const char *reference_path,
                      gint64 n_ctx,
                      SlimQuantModel *quant,
                      const SlimEvalResult *result)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  json_builder_begin_object (builder);
  if (quant != NULL)
    {
      json_builder_set_member_name (builder, "linear_math");
      json_builder_add_string_value (
          builder, slim_linear_math_get_name (slim_quant_model_get_linear_math (quant)));
      json_builder_set_member_name (builder, "integer_linears");
      json_builder_add_int_value (builder, slim_quant_model_get_n_integer (quant));
    }
  json_builder_set_member_name (builder, "model");
  json_builder_add_string_value (builder, model_path);
  json_builder_set_member_name (builder, "text");
  json_builder_add_string_value (builder, text_path);
  json_builder_set_member_name (builder, "ctx");
  json_builder_add_int_value (builder, n_ctx);
  json_builder_set_member_name (builder, "tokens");
  json_builder_add_int_value (builder, result->n_tokens);
  json_builder_set_member_name (builder, "windows");
  json_builder_add_int_value (builder, result->n_windows);
  json_builder_set_member_name (builder, "predictions");
  json_builder_add_int_value (builder, result->n_predictions);
  json_builder_set_member_name (builder, "nll");
  json_builder_add_double_value (builder, result->nll);
  json_builder_set_member_name (builder, "perplexity");
  json_builder_add_double_value (builder, result->perplexity);
  if (result->has_reference)
    {
      json_builder_set_member_name (builder, "reference_model");
      json_builder_add_string_value (builder, reference_path);
      json_builder_set_member_name (builder, "kl");
      json_builder_add_double_value (builder, result->kl);
      json_builder_set_member_name (builder, "top1");
      json_builder_add_double_value (builder, result->top1);
    }
  json_builder_end_object (builder);
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = json_to_string (root, TRUE);
  printf ("%s\n", text);
}

static void
slim_eval_print_text (const char *model_path,
                      const char *text_path,
                      const char *reference_path,
                      gint64 n_ctx,
                      SlimQuantModel *quant,
                      const SlimEvalResult *result)
{
  gint64 last = result->n_tokens - (result->n_windows - 1) * n_ctx;
  printf ("model        %s\n", model_path);
  if (quant != NULL)
    printf ("linear math  %s (%u of %u quantized linears as integer products)\n",
            slim_linear_math_get_name (slim_quant_model_get_linear_math (quant)),
            slim_quant_model_get_n_integer (quant), slim_quant_model_get_n_quantized (quant));
  printf ("text         %s\n", text_path);
  printf ("tokens       %" G_GINT64_FORMAT " (BOS included)\n", result->n_tokens);
  printf ("windows      %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " tokens (last %" G_GINT64_FORMAT
          ")\n",
          result->n_windows, n_ctx, last);
  printf ("predictions  %" G_GINT64_FORMAT "\n", result->n_predictions);
  printf ("nll          %.6f\n", result->nll);
  printf ("perplexity   %.4f\n", result->perplexity);
  if (result->has_reference)
    {
      printf ("reference    %s\n", reference_path);
      printf ("kl           %.6f\n", result->kl);
      printf ("top1         %.4f\n", result->top1);
    }
}

int
slim_cmd_eval (int argc, char **argv)
{
  g_autofree char *model_path = NULL;
  g_autofree char *text_path = NULL;
  g_autofree char *reference_path = NULL;
  gint64 n_ctx = SLIM_EVAL_DEFAULT_CTX;
  gint n_threads = 0;
  gboolean as_json = FALSE;
  gboolean progress = FALSE;
  gboolean exit_now = FALSE;
  g_autofree char *math_name = NULL;
  SlimLinearMath math = SLIM_LINEAR_MATH_INT8;
  const GOptionEntry entries[] = {
    { "model_path", 0, 0, G_OPTION_ARG_FILENAME, &model_path,
      "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)", "DIR" },
    { "text", 0, 0, G_OPTION_ARG_FILENAME, &text_path, "UTF-8 text file to evaluate on", "FILE" },
    { "ctx", 0, 0, G_OPTION_ARG_INT64, &n_ctx,
      "window length in tokens, >= 2 (default 2048, the GPTQ protocol)", "N" },
    { "reference_model", 0, 0, G_OPTION_ARG_FILENAME, &reference_path,
      "also report mean KL(reference || model) and top-1 agreement against this model", "DIR" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &as_json, "print the results as one JSON object", NULL },
    { "progress", 0, 0, G_OPTION_ARG_NONE, &progress,
      "show the progress line on stderr even when it is not a terminal", NULL },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads,
      "OpenBLAS threads (default 0: one per processor)", "N" },
    { "linear_math", 0, 0, G_OPTION_ARG_STRING, &math_name,
      "quantized folders: linears with int8 activations as int8 x int8 -> int32 products "
      "(int8, the default: as deployed), fake-quantized float32 products (float), or int8 with "
      "the reference product (int8_ref)",
      "MATH" },
    { NULL },
  };
  g_autoptr (GError) error = NULL;

  if (!slim_cli_parse (SLIM_EVAL_CMD, NULL,
                       "Perplexity on a text (non-overlapping windows, BOS once at the start),\n"
                       "and with --reference_model the mean KL divergence and top-1 agreement.",
                       entries, &argc, &argv, &exit_now))
    return SLIM_EXIT_USAGE;
  if (exit_now)
    return SLIM_EXIT_OK;
  if (model_path == NULL || text_path == NULL || argc > 1 || n_ctx < 2 || n_threads < 0)
    {
      fprintf (stderr,
               "slimflow %s: --model_path and --text are required, --ctx >= 2, --threads >= 0 "
               "(see 'slimflow %s --help')\n",
               SLIM_EVAL_CMD, SLIM_EVAL_CMD);
      return SLIM_EXIT_USAGE;
    }
  if (math_name != NULL && !slim_linear_math_parse (math_name, &math, &error))
    {
      fprintf (stderr, "slimflow %s: --linear_math: %s\n", SLIM_EVAL_CMD, error->message);
      return SLIM_EXIT_USAGE;
    }
  slim_linalg_set_n_threads (n_threads);

  /* An ascendv1 folder written by `slimflow quant` runs with its saved
   * quantization (slim-quant-model.h). */
  g_autoptr (SlimQuantModel) quant = NULL;
  SlimForwardHooks quant_hooks = { 0 };
  if (slim_quant_model_is_quantized (model_path))
    {
      quant = slim_quant_model_load_with_math (model_path, math, &error);
      if (quant == NULL)
        {
          slim_cli_print_error (SLIM_EVAL_CMD, error);
          return SLIM_EXIT_FAILURE;
        }
      slim_quant_model_get_hooks (quant, &quant_hooks);
    }
  g_autoptr (SlimModel) model = slim_model_open (
      quant != NULL ? slim_quant_model_get_float_dir (quant) : model_path, &error);
  if (model == NULL)
    {
      slim_cli_print_error (SLIM_EVAL_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  g_autoptr (SlimModel) reference = NULL;
  if (reference_path != NULL)
    {
      reference = slim_model_open (reference_path, &error);
      if (reference == NULL)
        {
          g_prefix_error (&error, "reference model: ");
          slim_cli_print_error (SLIM_EVAL_CMD, error);
          return SLIM_EXIT_FAILURE;
        }
    }
  g_autoptr (SlimTokenizer) tokenizer = slim_tokenizer_new_from_dir (model_path, &error);
  if (tokenizer == NULL)
    {
      slim_cli_print_error (SLIM_EVAL_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  g_autofree char *text = slim_text_read_file (text_path, SLIM_TEXT_DEFAULT_MAX_BYTES, &error);
  if (text == NULL)
    {
      slim_cli_print_error (SLIM_EVAL_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  g_autoptr (GArray) ids = slim_tokenizer_encode (tokenizer, text, TRUE, &error);
  if (ids == NULL)
    {
      g_prefix_error (&error, "%s: ", text_path);
      slim_cli_print_error (SLIM_EVAL_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  g_clear_pointer (&text, g_free);

  const SlimModelConfig *config = slim_model_get_config (model);
  if (config->max_position_embeddings > 0 && n_ctx > config->max_position_embeddings
      && (gint64)ids->len > config->max_position_embeddings)
    fprintf (stderr,
             "slimflow %s: note: windows of %" G_GINT64_FORMAT
             " tokens exceed max_position_embeddings (%" G_GINT64_FORMAT ") of %s\n",
             SLIM_EVAL_CMD, n_ctx, config->max_position_embeddings, model_path);

  SlimEvalOptions options;
  slim_eval_options_init (&options);
  options.n_ctx = n_ctx;
  options.progress = slim_progress_default_enabled (progress);
  options.hooks = quant != NULL ? &quant_hooks : NULL;
  SlimEvalResult result;
  if (!slim_eval_run (model, reference, (const gint32 *)(gpointer)ids->data, ids->len, &options,
                      &result, &error))
    {
      slim_cli_print_error (SLIM_EVAL_CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  if (as_json)
    slim_eval_print_json (model_path, text_path, reference_path, n_ctx, quant, &result);
  else
    slim_eval_print_text (model_path, text_path, reference_path, n_ctx, quant, &result);
  return SLIM_EXIT_OK;
}
