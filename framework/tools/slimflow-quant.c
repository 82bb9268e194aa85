/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow quant --model_path DIR --save_path DIR
 *                [--config_path FILE | --quant_type LABEL] [--model_type TYPE]
 *                [--device cpu] [--trust_remote_code] [--calib_dir DIR]
 *                [--max_memory SIZE] [--max_samples N] [--max_length N]
 *                [--resume] [--progress] [--no_layer_error]
 *
 * msModelSlim's `msmodelslim quant` (spec 4.2) on CPU: loads the pipeline,
 * opens the model, tokenizes the calibration set, runs the runner plugin
 * and writes the output through a staging folder that is moved onto
 * --save_path only when complete (slim-workdir.h).  A summary (wall time,
 * peak resident memory, per-layer relative output error of the quantized
 * layer against the float layer on the same inputs; --no_layer_error skips
 * the float and deployed forwards that measure it) goes to stdout.
 *
 * Exit status (also in --help):
 *   0  the quantized model is at --save_path
 *   1  the run failed while reading the model or data, computing or
 *      writing (corrupt or non-finite weights, empty dataset, disk full...)
 *   2  bad usage or configuration, found before any work: options, YAML,
 *      unknown --quant_type, missing model folder, unsupported
 *      architecture, save_path refused (not writable, equal to or inside
 *      the model folder, holding files slimflow did not write)
 * In every failure nothing is left at --save_path; the work area
 * "<save_path>.slimflow-work" is kept only by a killed run (for --resume).
 *
 * Under mpirun (MPI initialised by main, slimflow.c) with more than one
 * rank the run is data-parallel: every rank parses, opens and tokenizes
 * the same inputs and runs the runner (auto or dp_layer_wise; the others
 * are refused) with the ranks in ctx.comm; rank 0 owns the work area and
 * the output folder, prints the progress and the summary; the other
 * ranks write only their checkpoints and spill files, in
 * "<work area>/rank-<r>" (removed with the work area at the end).
 * --resume: the ranks agree on the last layer whose checkpoint each of
 * them holds (resume_distributed) and go on from there; run it with the
 * same number of ranks.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <glib/gstdio.h>

#include "slimflow-commands.h"
#include "slim-checkpoint.h"
#include "slim-comm.h"
#include "slim-schedule.h"
#include "slim-datadir.h"
#include "slim-error.h"
#include "slim-pipeline.h"
#include "slim-practice.h"
#include "slim-progress.h"
#include "slim-quantize.h"
#include "slim-registry.h"
#include "slim-workdir.h"

#define CMD "quant"

typedef struct
{
  char *model_path;
  char *save_path;
  char *config_path;
  char *quant_type;
  char *model_type;
  char *device;
  char *calib_dir;
  char *max_memory;
  gint max_samples;
  gint max_length;
  gboolean trust_remote_code;
  gboolean resume;
  gboolean progress;
  gboolean no_layer_error;
} SlimQuantOptions;

static void
options_clear (SlimQuantOptions *o)
{
  g_free (o->model_path);
  g_free (o->save_path);
  g_free (o->config_path);
  g_free (o->quant_type);
  g_free (o->model_type);
  g_free (o->device);
  g_free (o->calib_dir);
  g_free (o->max_memory);
}

/* "123", "64K", "512M", "2G" (powers of 1024) -> bytes; FALSE on garbage
 * or overflow. */
static gboolean
parse_size (const char *text, guint64 *out_bytes)
{
  char *end = NULL;
  guint64 value, mult = 1;

  if (text == NULL || !g_ascii_isdigit (*text))
    return FALSE;
  errno = 0;
  value = g_ascii_strtoull (text, &end, 10);
  if (errno != 0)
    return FALSE;
  if (*end != '\0')
    {
      switch (g_ascii_toupper (*end))
        {
        case 'K':
          mult = 1ull << 10;
          break;
        case 'M':
          mult = 1ull << 20;
          break;
        case 'G':
          mult = 1ull << 30;
          break;
        case 'T':
          mult = 1ull << 40;
          break;
        default:
          return FALSE;
        }
      end++;
      if (g_ascii_toupper (*end) == 'B')
        end++;
      if (*end != '\0')
        return FALSE;
    }
  if (value > G_MAXUINT64 / mult)
    return FALSE;
  *out_bytes = value * mult;
  return TRUE;
}

static int
usage_error (const char *message)
{
  fprintf (stderr, "slimflow " CMD ": %s (see 'slimflow " CMD " --help')\n", message);
  return SLIM_EXIT_USAGE;
}

/* Exit code of a failure: configuration problems are 2, the rest 1. */
static int
fail (const GError *error, int code)
{
  slim_cli_print_error (CMD, error);
  return code;
}

/* A failed run: under mpirun a rank that failed may leave the others
 * waiting for it, so the job is ended (slim_comm_abort, at the end of
 * quant, after the message and the clean-up). */
static int
fail_run (SlimComm *comm, const GError *error, gboolean *abort_job)
{
  gboolean refused = g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE);

  /* a refusal (every rank makes it alike) ends the job from rank 0 only,
   * after its clean-up */
  *abort_job = comm != NULL && (!refused || slim_comm_rank (comm) == 0);
  return fail (error, refused ? SLIM_EXIT_USAGE : SLIM_EXIT_FAILURE);
}

static gint64
peak_rss_kib (void)
{
  struct rusage usage;

  if (getrusage (RUSAGE_SELF, &usage) != 0)
    return -1;
  return usage.ru_maxrss; /* KiB on Linux */
}

/* The progress line counts the layers this run does (a resumed run
 * starts at first_layer). */
typedef struct
{
  SlimProgress *bar;
  gint64 first_layer;
} SlimQuantProgress;

static void
on_layer_done (guint layer_index, guint n_layers, gpointer user_data)
{
  SlimQuantProgress *p = user_data;

  slim_progress_update (p->bar, (gint64)layer_index + 1 - p->first_layer);
}

static void
print_summary (const SlimModelConfig *config,
               const char *save_path,
               double wall_s,
               GArray *layer_errors,
               gboolean measured)
{
  gint64 peak = peak_rss_kib ();
  double worst = 0.0;

  printf ("quantized %s (%" G_GINT64_FORMAT " layers) into %s\n", config->model_type,
          config->n_layers, save_path);
  printf ("wall time %.2f s, peak resident memory %.1f MiB\n", wall_s,
          peak >= 0 ? (double)peak / 1024.0 : -1.0);
  if (layer_errors->len > 0)
    {
      printf ("layer  relative output error (quantized vs float layer, same inputs)\n");
      for (guint i = 0; i < layer_errors->len; i++)
        {
          double e = g_array_index (layer_errors, double, i);
          worst = MAX (worst, e);
          printf ("%5u  %.6f\n", i, e);
        }
      printf ("max    %.6f\n", worst);
    }
  else if (!measured)
    printf ("per-layer error not measured (--no_layer_error)\n");
  else
    printf ("per-layer error not measured: the pipeline uses no calibration data "
            "(measure the output with slimflow eval --reference_model)\n");
}

/* --resume under mpirun: this rank's checkpoints (its work dir and its
 * prev/ folder, slim-schedule.h) are offered, the ranks agree on the last
 * layer every rank holds, and this rank's checkpoint of that layer is
 * returned; NULL without error when there is none (start over).  Every
 * rank calls it (it reduces); an unreadable or foreign checkpoint on any
 * rank fails every rank alike (*out_refused: a refusal, exit 2, when the
 * checkpoint belongs to another run). */
static SlimCheckpoint *
resume_distributed (SlimComm *comm,
                    const char *work_dir,
                    const SlimCheckpointHashes *hashes,
                    gint64 n_layers,
                    gboolean *out_refused,
                    GError **error)
{
  g_autofree char *prev_dir
      = g_build_filename (work_dir, SLIM_SCHEDULE_PREVIOUS_CHECKPOINT_DIR, NULL);
  const char *dirs[2] = { work_dir, prev_dir };
  SlimCheckpoint *found[2] = { NULL, NULL };
  g_autofree gint64 *held = g_new0 (gint64, n_layers + 2); /* [layer] ranks holding it; 2 flags */
  g_autoptr (GError) bad = NULL;
  SlimCheckpoint *chosen = NULL;
  gint64 best = -1;

  for (int c = 0; c < 2; c++)
    {
      GError *e = NULL;
      gint64 done;

      found[c] = slim_checkpoint_load (dirs[c], hashes, &e);
      if (found[c] == NULL)
        {
          if (!g_error_matches (e, G_FILE_ERROR, G_FILE_ERROR_NOENT) && bad == NULL)
            bad = g_steal_pointer (&e);
          g_clear_error (&e);
          continue;
        }
      done = slim_checkpoint_get_layer_done (found[c]);
      if (done >= 0 && done < n_layers
          && (c == 0 || found[0] == NULL || slim_checkpoint_get_layer_done (found[0]) != done))
        held[done]++;
    }
  held[n_layers] = bad != NULL;
  held[n_layers + 1]
      = bad != NULL && g_error_matches (bad, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE);
  if (!slim_comm_allreduce_sum_i64 (comm, held, (gsize)n_layers + 2, error))
    goto out;
  if (held[n_layers] > 0)
    {
      *out_refused = held[n_layers + 1] > 0;
      if (bad != NULL)
        g_propagate_prefixed_error (error, g_steal_pointer (&bad),
                                    "rank %d: ", slim_comm_rank (comm));
      else
        g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                     "rank %d: another rank cannot resume from its checkpoint (it says why)",
                     slim_comm_rank (comm));
      goto out;
    }
  for (gint64 l = n_layers - 1; l >= 0 && best < 0; l--)
    if (held[l] == slim_comm_size (comm))
      best = l;
  for (int c = 0; c < 2 && best >= 0; c++)
    if (chosen == NULL && found[c] != NULL && slim_checkpoint_get_layer_done (found[c]) == best)
      chosen = g_object_ref (found[c]);
out:
  for (int c = 0; c < 2; c++)
    g_clear_object (&found[c]);
  return chosen;
}

static const char *const summary_text
    = "Quantizes a Hugging Face model folder on CPU with a modelslim_v1 pipeline\n"
      "(msModelSlim's `msmodelslim quant`). Give --config_path, or --quant_type to use\n"
      "a shipped best practice (w8a8 [default], w8a8_dynamic, w8a16, w4a16; the\n"
      "label follows ^w(\\d+)a(\\d+)((?:c8|f[48])?)(s?)$, w8a8_dynamic is slimflow's\n"
      "name for the per-token dynamic W8A8 practice).\n"
      "\n"
      "spec.dataset is looked up as a path, then in --calib_dir / $SLIMFLOW_CALIB_DIR,\n"
      "then in the shipped lab_calib folder.\n"
      "\n"
      "Exit status: 0 done; 1 the run failed (bad or non-finite weights, empty dataset,\n"
      "write error, disk full); 2 bad usage or configuration found before any work\n"
      "(options, YAML, unknown quant_type, missing model, unsupported architecture,\n"
      "save_path refused). A failed run leaves nothing at --save_path.";

int
slim_cmd_quant (int argc, char **argv)
{
  SlimQuantOptions o = { 0 };
  gboolean exit_now = FALSE;
  int code = SLIM_EXIT_FAILURE;
  guint64 max_memory_bytes = 0;
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimRegistry) registry = NULL;
  g_autoptr (SlimPipeline) pipeline = NULL;
  g_autoptr (SlimModel) model = NULL;
  g_autoptr (SlimTokenizer) tokenizer = NULL;
  g_autoptr (SlimDataset) dataset = NULL;
  g_autoptr (GPtrArray) prior_datasets = NULL; /* (element-type SlimDataset) per prior stage */
  g_autoptr (SlimRunStore) store = slim_run_store_new ();
  g_autoptr (SlimWorkdir) workdir = NULL;
  g_autoptr (GArray) layer_errors = g_array_new (FALSE, TRUE, sizeof (double));
  g_autofree char *config_path = NULL;
  g_autofree char *config_text = NULL;
  g_autofree char *dataset_path = NULL;
  g_autofree char *model_hash = NULL;
  g_autofree char *config_hash = NULL;
  g_autofree char *dataset_hash = NULL;
  SlimCheckpointHashes hashes = { { 0 } };
  gsize config_bytes = 0;
  SlimRunContext ctx;
  SlimRunner *runner;
  SlimQuantProgress progress = { NULL, 0 };
  g_autoptr (SlimCheckpoint) previous = NULL;
  g_autoptr (SlimComm) comm = NULL;
  gboolean abort_job = FALSE;
  g_autofree char *rank_dir = NULL; /* work folder of a rank > 0 (in the work area) */
  gboolean leader = TRUE;           /* rank 0, or one process */
  gint64 first_layer = 0;
  gint64 t_start = g_get_monotonic_time ();
  gboolean ok;
  const GOptionEntry entries[] = {
    { "model_path", 0, 0, G_OPTION_ARG_FILENAME, &o.model_path,
      "Hugging Face model folder (config.json, *.safetensors, tokenizer)", "DIR" },
    { "save_path", 0, 0, G_OPTION_ARG_FILENAME, &o.save_path, "Output folder", "DIR" },
    { "config_path", 0, 0, G_OPTION_ARG_FILENAME, &o.config_path,
      "modelslim_v1 YAML pipeline (exclusive with --quant_type)", "FILE" },
    { "quant_type", 0, 0, G_OPTION_ARG_STRING, &o.quant_type,
      "Shipped best practice by label: w8a8 (default), w8a8_dynamic, w8a16, w4a16", "LABEL" },
    { "model_type", 0, 0, G_OPTION_ARG_STRING, &o.model_type,
      "Expected config.json model_type (optional; checked when given)", "TYPE" },
    { "device", 0, 0, G_OPTION_ARG_STRING, &o.device, "Only 'cpu' (the default)", "DEVICE" },
    { "trust_remote_code", 0, 0, G_OPTION_ARG_NONE, &o.trust_remote_code,
      "Accepted and ignored: slimflow runs no model code", NULL },
    { "calib_dir", 0, 0, G_OPTION_ARG_FILENAME, &o.calib_dir,
      "Folder searched for spec.dataset (before $SLIMFLOW_CALIB_DIR and lab_calib)", "DIR" },
    { "max_memory", 0, 0, G_OPTION_ARG_STRING, &o.max_memory,
      "Budget for resident calibration activations, e.g. 512M, 2G (default: no limit); "
      "beyond it they go to an HDF5 file in the work area",
      "SIZE" },
    { "max_samples", 0, 0, G_OPTION_ARG_INT, &o.max_samples,
      "Use at most N calibration samples (0 = all)", "N" },
    { "max_length", 0, 0, G_OPTION_ARG_INT, &o.max_length,
      "Truncate every calibration sample to N tokens (0 = no limit)", "N" },
    { "resume", 0, 0, G_OPTION_ARG_NONE, &o.resume,
      "Complete a killed run: checks that its checkpoint in <save_path>.slimflow-work belongs "
      "to this run (config, model, data) and continues after the last layer it finished",
      NULL },
    { "progress", 0, 0, G_OPTION_ARG_NONE, &o.progress,
      "Show the per-layer progress line even when stderr is not a terminal", NULL },
    { "no_layer_error", 0, 0, G_OPTION_ARG_NONE, &o.no_layer_error,
      "Do not measure the per-layer output error (it costs a float forward of every decoder "
      "layer, and a deployed one when the next layer's inputs did not come from one)",
      NULL },
    { NULL },
  };

  if (!slim_cli_parse (CMD, NULL, summary_text, entries, &argc, &argv, &exit_now))
    {
      options_clear (&o);
      return SLIM_EXIT_USAGE;
    }
  if (exit_now)
    {
      options_clear (&o);
      return SLIM_EXIT_OK;
    }

  /* Usage checks: nothing read yet. */
  if (argc > 1)
    code = usage_error ("unexpected argument");
  else if (o.model_path == NULL || o.save_path == NULL)
    code = usage_error ("--model_path and --save_path are required");
  else if (o.config_path != NULL && o.quant_type != NULL)
    code = usage_error ("--config_path and --quant_type are mutually exclusive");
  else if (o.device != NULL && g_ascii_strcasecmp (o.device, "cpu") != 0)
    code = usage_error ("--device: only 'cpu' is supported");
  else if (o.max_samples < 0 || o.max_length < 0)
    code = usage_error ("--max_samples and --max_length must be >= 0");
  else if (o.max_memory != NULL && !parse_size (o.max_memory, &max_memory_bytes))
    code = usage_error ("--max_memory: expected a size such as 1048576, 512M or 2G");
  else
    code = -1;
  if (code >= 0)
    goto out;
  if (o.max_memory != NULL && max_memory_bytes == 0)
    max_memory_bytes = 1; /* "0": spill everything */

  /* The ranks of an mpirun job (MPI was initialised by main). */
  if (slim_comm_mpi_is_initialized ())
    {
      comm = slim_comm_new_mpi (&error);
      if (comm == NULL)
        {
          code = fail (error, SLIM_EXIT_FAILURE);
          goto out;
        }
      if (slim_comm_size (comm) == 1)
        g_clear_pointer (&comm, slim_comm_free);
    }
  else if (slim_comm_mpi_launched ()
           && g_ascii_strtoll (g_getenv ("OMPI_COMM_WORLD_SIZE"), NULL, 10) > 1)
    {
      code = usage_error ("slimflow was built without MPI: it cannot run as several ranks under "
                          "mpirun");
      goto out;
    }
  if (comm != NULL)
    {
      leader = slim_comm_rank (comm) == 0;
    }
  if (o.trust_remote_code)
    fprintf (stderr, "slimflow " CMD ": warning: --trust_remote_code is ignored: slimflow runs "
                     "no model code\n");

  /* The pipeline. */
  if (o.config_path != NULL)
    config_path = g_strdup (o.config_path);
  else
    {
      config_path
          = slim_practice_find (o.quant_type != NULL ? o.quant_type : "w8a8", o.model_type, &error);
      if (config_path == NULL)
        {
          code = fail (error, SLIM_EXIT_USAGE);
          goto out;
        }
      fprintf (stderr, "slimflow " CMD ": using best practice %s\n", config_path);
    }
  registry = slim_registry_new ();
  if (!slim_registry_scan_default (registry, &error))
    {
      code = fail (error, SLIM_EXIT_FAILURE);
      goto out;
    }
  if (!g_file_get_contents (config_path, &config_text, &config_bytes, &error)
      || !slim_pipeline_check_data (registry, config_text, config_bytes, config_path, &pipeline,
                                    &error))
    {
      code = fail (error, SLIM_EXIT_USAGE);
      goto out;
    }
  runner = slim_pipeline_get_runner (pipeline);
  if (runner == NULL)
    {
      g_set_error (&error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "runner '%s' is not available", slim_pipeline_get_runner_name (pipeline));
      code = fail (error, SLIM_EXIT_USAGE);
      goto out;
    }
  /* spec.prior stages run over the ranks too (slim_quantize_run_prior_distributed):
   * each of their processors must support it */
  if (comm != NULL && !slim_quantize_check_prior_distributed (pipeline, &error))
    {
      g_prefix_error (&error, "%s: ", config_path);
      code = fail (error, SLIM_EXIT_USAGE);
      goto out;
    }
  if (comm != NULL && g_strcmp0 (slim_runner_get_type_name (runner), "auto") != 0
      && g_strcmp0 (slim_runner_get_type_name (runner), "dp_layer_wise") != 0)
    {
      g_set_error (&error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "%s: runner %s runs in one process; with %d MPI ranks use dp_layer_wise or "
                   "auto",
                   config_path, slim_runner_get_type_name (runner), slim_comm_size (comm));
      code = fail (error, SLIM_EXIT_USAGE);
      goto out;
    }

  /* The output place, checked before reading any weight. */
  workdir = slim_workdir_new (o.save_path, o.model_path, &error);
  if (workdir == NULL)
    {
      code = fail (error, SLIM_EXIT_USAGE);
      goto out;
    }

  /* The model. */
  if (!g_file_test (o.model_path, G_FILE_TEST_IS_DIR))
    {
      g_set_error (&error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: no such model folder",
                   o.model_path);
      code = fail (error, SLIM_EXIT_USAGE);
      goto out;
    }
  model = slim_model_open (o.model_path, &error);
  if (model == NULL)
    {
      /* An architecture slimflow does not run, or no config.json: the
       * user pointed at the wrong thing (2); corrupt weights are 1. */
      code = fail (error, (g_error_matches (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED)
                           || g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                              ? SLIM_EXIT_USAGE
                              : SLIM_EXIT_FAILURE);
      goto out;
    }
  if (o.model_type != NULL
      && g_strcmp0 (o.model_type, slim_model_get_config (model)->model_type) != 0)
    {
      g_set_error (&error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "--model_type %s does not match %s/config.json (model_type %s)", o.model_type,
                   o.model_path, slim_model_get_config (model)->model_type);
      code = fail (error, SLIM_EXIT_USAGE);
      goto out;
    }

  /* The calibration data. */
  if (slim_quantize_needs_data (pipeline) || slim_quantize_prior_needs_data (pipeline))
    {
      tokenizer = slim_tokenizer_new_from_dir (o.model_path, &error);
      if (tokenizer == NULL)
        {
          code = fail (error, SLIM_EXIT_FAILURE);
          goto out;
        }
    }
  prior_datasets
      = slim_quantize_load_prior_datasets (registry, pipeline, o.calib_dir, tokenizer,
                                           (guint)o.max_samples, (guint)o.max_length, &error);
  if (prior_datasets == NULL)
    {
      code = fail (error, g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                              ? SLIM_EXIT_USAGE
                              : SLIM_EXIT_FAILURE);
      goto out;
    }
  if (slim_quantize_needs_data (pipeline))
    {
      dataset_path = slim_datadir_resolve_dataset (slim_pipeline_get_dataset (pipeline),
                                                   o.calib_dir, &error);
      if (dataset_path == NULL)
        {
          code = fail (error, SLIM_EXIT_USAGE);
          goto out;
        }
      if ((dataset = slim_quantize_load_dataset (registry, dataset_path, tokenizer,
                                                 (guint)o.max_samples, (guint)o.max_length, &error))
          == NULL)
        {
          code = fail (error, SLIM_EXIT_FAILURE);
          goto out;
        }
    }

  /* Hashes identifying the run, for checkpoints. */
  model_hash = slim_checkpoint_hash_model (o.model_path, &error);
  if (model_hash == NULL)
    {
      code = fail (error, SLIM_EXIT_FAILURE);
      goto out;
    }
  config_hash = slim_checkpoint_hash_config (config_text, config_bytes);
  dataset_hash = slim_quantize_hash_run_datasets (dataset, prior_datasets);
  g_strlcpy (hashes.config, config_hash, sizeof (hashes.config));
  g_strlcpy (hashes.model, model_hash, sizeof (hashes.model));
  g_strlcpy (hashes.dataset, dataset_hash, sizeof (hashes.dataset));

  /* --resume: the interrupted run must be this run (same config, model and
   * calibration tokens); it continues after its last finished layer. */
  if (comm != NULL && !leader)
    rank_dir = g_strdup_printf ("%s/rank-%d", slim_workdir_get_work_dir (workdir),
                                slim_comm_rank (comm));
  if (o.resume && comm != NULL)
    {
      gboolean refused = FALSE;

      previous
          = resume_distributed (comm, leader ? slim_workdir_get_work_dir (workdir) : rank_dir,
                                &hashes, slim_model_get_config (model)->n_layers, &refused, &error);
      if (previous == NULL && error != NULL)
        {
          code = fail (error, refused ? SLIM_EXIT_USAGE : SLIM_EXIT_FAILURE);
          goto out;
        }
      if (previous == NULL && leader)
        fprintf (stderr,
                 "slimflow " CMD ": warning: no layer whose checkpoint every rank holds in %s; "
                 "starting from the beginning\n",
                 slim_workdir_get_work_dir (workdir));
      if (previous != NULL)
        {
          first_layer = slim_checkpoint_get_layer_done (previous) + 1;
          if (leader)
            fprintf (stderr,
                     "slimflow " CMD
                     ": resuming an interrupted run of %d ranks: layers 0-%" G_GINT64_FORMAT
                     " of %" G_GINT64_FORMAT " are done, continuing with layer %" G_GINT64_FORMAT
                     "\n",
                     slim_comm_size (comm), first_layer - 1,
                     slim_model_get_config (model)->n_layers, first_layer);
        }
    }
  else if (o.resume)
    {
      previous = slim_checkpoint_load (slim_workdir_get_work_dir (workdir), &hashes, &error);
      if (previous == NULL && g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          fprintf (stderr,
                   "slimflow " CMD ": warning: no checkpoint to resume from in %s; "
                   "starting from the beginning\n",
                   slim_workdir_get_work_dir (workdir));
          g_clear_error (&error);
        }
      else if (previous == NULL)
        {
          code = fail (
              error, g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE)
                         ? SLIM_EXIT_USAGE
                         : SLIM_EXIT_FAILURE);
          goto out;
        }
      else
        {
          first_layer = slim_checkpoint_get_layer_done (previous) + 1;
          fprintf (stderr,
                   "slimflow " CMD ": resuming an interrupted run: layers 0-%" G_GINT64_FORMAT
                   " of %" G_GINT64_FORMAT " are done, continuing with layer %" G_GINT64_FORMAT
                   "\n",
                   first_layer - 1, slim_model_get_config (model)->n_layers, first_layer);
        }
    }

  /* Without a checkpoint the staging folder of an earlier run is stale.
   * The other ranks of a data-parallel run touch none of it. */
  if (leader && !slim_workdir_prepare (workdir, previous != NULL, &error))
    {
      code = fail (error, SLIM_EXIT_FAILURE);
      abort_job = comm != NULL;
      goto out;
    }
  /* a rank > 0 keeps its checkpoints (and spills) in its own folder of the
   * work area, made once rank 0 prepared it */
  if (comm != NULL && !slim_comm_barrier (comm, &error))
    {
      code = fail_run (comm, error, &abort_job);
      goto out;
    }
  if (rank_dir != NULL && g_mkdir_with_parents (rank_dir, 0755) != 0)
    {
      int saved = errno;
      g_set_error (&error, G_FILE_ERROR, g_file_error_from_errno (saved), "cannot create %s: %s",
                   rank_dir, g_strerror (saved));
      code = fail_run (comm, error, &abort_job);
      goto out;
    }
  /* every rank's folder exists before any rank can fail and rank 0
   * remove the work area: a rank creating its folder after that would
   * leave the work area behind */
  if (comm != NULL && !slim_comm_barrier (comm, &error))
    {
      code = fail_run (comm, error, &abort_job);
      goto out;
    }

  /* spec.prior: whole passes before the main one, recomputed (they are
   * deterministic) when resuming; what they learn is in store */
  if (prior_datasets->len > 0
      && !slim_quantize_run_prior_distributed (
          pipeline, model, prior_datasets, leader ? slim_workdir_get_work_dir (workdir) : rank_dir,
          max_memory_bytes, store, comm, &error))
    {
      /* exit 2 for a refusal, 1 otherwise; under mpirun the job is ended */
      code = fail_run (comm, error, &abort_job);
      goto out;
    }

  slim_run_context_init (&ctx);
  ctx.model = model;
  ctx.processors = slim_pipeline_get_processors (pipeline);
  ctx.savers = slim_pipeline_get_savers (pipeline);
  ctx.dataset = dataset;
  ctx.work_dir = leader ? slim_workdir_get_work_dir (workdir) : rank_dir;
  ctx.max_memory_bytes = max_memory_bytes;
  ctx.out_dir = leader ? slim_workdir_get_staging_dir (workdir) : NULL;
  ctx.checkpoint_hashes = &hashes;
  ctx.layer_errors = o.no_layer_error ? NULL : layer_errors;
  ctx.resume_from = previous;
  ctx.comm = comm;
  ctx.store = store;
  /* a resumed run counts (and times) the layers it has left */
  progress.bar = slim_progress_new (CMD, "layers",
                                    MAX ((gint64)slim_model_get_n_layers (model) - first_layer, 1),
                                    leader && slim_progress_default_enabled (o.progress));
  progress.first_layer = first_layer;
  ctx.progress = on_layer_done;
  ctx.progress_data = &progress;

  ok = slim_runner_run (runner, &ctx, NULL, &error);
  slim_progress_finish (progress.bar);
  slim_progress_free (progress.bar);
  /* what each rank held (bench/dp prints it per rank) */
  if (comm != NULL)
    {
      struct rusage usage = { 0 };

      getrusage (RUSAGE_SELF, &usage);
      g_debug ("rank %d of %d: peak resident memory %.1f MiB, cpu time %.1f s",
               slim_comm_rank (comm), slim_comm_size (comm), (double)peak_rss_kib () / 1024.0,
               (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                   + (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6);
    }
  if (!leader)
    {
      /* a rank > 0: nothing of the output is here */
      if (!ok)
        code = fail_run (comm, error, &abort_job);
      else
        code = SLIM_EXIT_OK;
      goto out;
    }
  if (!ok || !slim_workdir_commit (workdir, &error))
    {
      slim_workdir_abort (workdir, NULL);
      slim_workdir_remove_work_area (workdir, NULL);
      code = fail_run (comm, error, &abort_job);
      goto out;
    }
  if (!slim_workdir_remove_work_area (workdir, &error))
    {
      /* The output is in place; a leftover work area only costs space. */
      fprintf (stderr, "slimflow " CMD ": warning: %s\n", error->message);
      g_clear_error (&error);
    }
  print_summary (slim_model_get_config (model), slim_workdir_get_save_path (workdir),
                 (double)(g_get_monotonic_time () - t_start) / G_USEC_PER_SEC, layer_errors,
                 !o.no_layer_error);
  code = SLIM_EXIT_OK;

out:
  options_clear (&o);
  if (abort_job)
    {
      fflush (stdout);
      fflush (stderr);
      slim_comm_abort (comm, code);
    }
  return code;
}
