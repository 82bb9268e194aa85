/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow ablate --model_path DIR --matrix FILE --text FILE --out DIR
 *                 [--ctx N] [--resume] [--keep_models] [--threads N]
 *                 [--calib_dir DIR] [--max_samples N] [--max_length N]
 *
 * Quantizes and evaluates every variant of an ablation matrix against the
 * float model (slim-ablate.h; docs/ablate.md).  Exit status: 0 done; 1 a
 * run failed (model, data, numerics, disk); 2 bad usage, bad matrix or bad
 * variant config, found before any weight is read.
 */
#include <stdio.h>

#include "slim-ablate.h"
#include "slim-error.h"
#include "slim-eval.h"
#include "slim-linalg.h"
#include "slimflow-commands.h"

#define CMD "ablate"

int
slim_cmd_ablate (int argc, char **argv)
{
  g_autofree char *model_path = NULL;
  g_autofree char *matrix_path = NULL;
  g_autofree char *text_path = NULL;
  g_autofree char *out_dir = NULL;
  g_autofree char *calib_dir = NULL;
  gint64 n_ctx = SLIM_EVAL_DEFAULT_CTX;
  gint max_samples = 0, max_length = 0, n_threads = 0;
  gboolean resume = FALSE, keep_models = FALSE, exit_now = FALSE;
  const GOptionEntry entries[] = {
    { "model_path", 0, 0, G_OPTION_ARG_FILENAME, &model_path, "The float model folder", "DIR" },
    { "matrix", 0, 0, G_OPTION_ARG_FILENAME, &matrix_path,
      "Ablation matrix YAML: a base config and its variants (docs/ablate.md)", "FILE" },
    { "text", 0, 0, G_OPTION_ARG_FILENAME, &text_path, "UTF-8 evaluation text", "FILE" },
    { "ctx", 0, 0, G_OPTION_ARG_INT64, &n_ctx, "Evaluation window in tokens (default 2048)", "N" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out_dir,
      "Output folder: results.{json,csv,md,svg}, configs/, variants/", "DIR" },
    { "resume", 0, 0, G_OPTION_ARG_NONE, &resume,
      "Keep the variants an interrupted run of the same inputs finished", NULL },
    { "keep_models", 0, 0, G_OPTION_ARG_NONE, &keep_models,
      "Keep every quantized folder in OUT/models (default: removed once measured)", NULL },
    { "calib_dir", 0, 0, G_OPTION_ARG_FILENAME, &calib_dir,
      "Folder searched for spec.dataset (as slimflow quant)", "DIR" },
    { "max_samples", 0, 0, G_OPTION_ARG_INT, &max_samples,
      "Use at most N calibration samples (0 = all)", "N" },
    { "max_length", 0, 0, G_OPTION_ARG_INT, &max_length,
      "Truncate calibration samples to N tokens (0 = no limit)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads,
      "OpenBLAS threads (default 0: one per processor; recorded in the results)", "N" },
    { NULL },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimRegistry) registry = NULL;
  g_autoptr (SlimAblateMatrix) matrix = NULL;
  g_autoptr (SlimAblate) ablate = NULL;
  g_autoptr (SlimAblateResults) results = NULL;
  SlimAblateOptions options = { 0 };

  if (!slim_cli_parse (CMD, NULL,
                       "Quantizes every variant of an ablation matrix and scores it against the\n"
                       "float model: PPL, KL, top-1, wall time, peak memory, output size, in\n"
                       "OUT/results.json, .csv, .md and an SVG chart.\n\n"
                       "Exit status: 0 done; 1 a run failed; 2 bad usage or a bad matrix or\n"
                       "variant (found before any weight is read).",
                       entries, &argc, &argv, &exit_now))
    return SLIM_EXIT_USAGE;
  if (exit_now)
    return SLIM_EXIT_OK;
  if (argc > 1 || model_path == NULL || matrix_path == NULL || text_path == NULL || out_dir == NULL
      || n_ctx < 2 || max_samples < 0 || max_length < 0 || n_threads < 0)
    {
      fprintf (stderr, "slimflow " CMD ": --model_path, --matrix, --text and --out are required, "
                       "--ctx >= 2, counts >= 0 (see 'slimflow " CMD " --help')\n");
      return SLIM_EXIT_USAGE;
    }
  slim_linalg_set_n_threads (n_threads);
  registry = slim_registry_new ();
  if (!slim_registry_scan_default (registry, &error))
    {
      slim_cli_print_error (CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  matrix = slim_ablate_matrix_load (registry, matrix_path, &error);
  if (matrix == NULL)
    {
      slim_cli_print_error (CMD, error);
      return SLIM_EXIT_USAGE;
    }
  if (!g_file_test (model_path, G_FILE_TEST_IS_DIR))
    {
      fprintf (stderr, "slimflow " CMD ": %s: no such model folder\n", model_path);
      return SLIM_EXIT_USAGE;
    }
  options.model_path = model_path;
  options.text_path = text_path;
  options.out_dir = out_dir;
  options.calib_dir = calib_dir;
  options.n_ctx = n_ctx;
  options.max_samples = (guint)max_samples;
  options.max_length = (guint)max_length;
  options.resume = resume;
  options.keep_models = keep_models;
  options.verbose = TRUE;
  ablate = slim_ablate_prepare (registry, matrix, &options, &error);
  if (ablate == NULL)
    {
      slim_cli_print_error (CMD, error);
      return error->domain == SLIM_CONFIG_ERROR ? SLIM_EXIT_USAGE : SLIM_EXIT_FAILURE;
    }
  results = slim_ablate_run (ablate, &error);
  if (results == NULL)
    {
      slim_cli_print_error (CMD, error);
      return SLIM_EXIT_FAILURE;
    }
  printf ("%u variants and the float model scored; results in %s/results.{json,csv,md,svg}\n",
          matrix->variants->len, out_dir);
  return SLIM_EXIT_OK;
}
