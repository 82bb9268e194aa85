/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ablate.c: running an ablation matrix (slim-ablate.h).
 */
#include "slim-ablate.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "slim-checkpoint.h"
#include "slim-datadir.h"
#include "slim-error.h"
#include "slim-eval.h"
#include "slim-linalg.h"
#include "slim-quant-model.h"
#include "slim-quantize.h"
#include "slim-text.h"
#include "slim-version.h"

struct _SlimAblate
{
  SlimRegistry *registry;
  SlimAblateMatrix *matrix; /* transfer none */
  SlimAblateOptions options;
  GPtrArray *pipelines; /* (element-type SlimPipeline), one per variant */
  GHashTable *datasets; /* resolved path -> SlimDataset */
  char *model_sha256;
};

void
slim_ablate_free (SlimAblate *self)
{
  if (self == NULL)
    return;
  g_clear_object (&self->registry);
  g_clear_pointer (&self->pipelines, g_ptr_array_unref);
  g_clear_pointer (&self->datasets, g_hash_table_unref);
  g_free (self->model_sha256);
  g_free (self);
}

gboolean
slim_ablate_reset_peak_memory (void)
{
  /* "5" resets the peak resident set size (VmHWM), Linux >= 4.0; written
   * in place (g_file_set_contents would write a new file and rename it). */
  FILE *f = fopen ("/proc/self/clear_refs", "w");
  gboolean ok;

  if (f == NULL)
    return FALSE;
  ok = fputs ("5", f) >= 0;
  return fclose (f) == 0 && ok;
}

double
slim_ablate_peak_memory_mib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL)
      || (line = strstr (status, "VmHWM:")) == NULL)
    return -1.0;
  return g_ascii_strtod (line + 6, NULL) / 1024.0; /* kB */
}

guint64
slim_ablate_dir_size (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint64 total = 0;

  if (d == NULL)
    return 0;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      GStatBuf st;
      if (g_lstat (path, &st) != 0)
        continue;
      if (S_ISDIR (st.st_mode))
        total += slim_ablate_dir_size (path);
      else if (S_ISREG (st.st_mode))
        total += (guint64)st.st_size;
    }
  return total;
}

gboolean
slim_ablate_remove_tree (const char *dir, GError **error)
{
  g_autoptr (GDir) d = NULL;
  const char *name;
  GStatBuf st;

  if (g_lstat (dir, &st) != 0)
    return TRUE;
  if (!S_ISDIR (st.st_mode))
    {
      if (g_unlink (dir) == 0)
        return TRUE;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", dir,
                   g_strerror (errno));
      return FALSE;
    }
  d = g_dir_open (dir, 0, error);
  if (d == NULL)
    return FALSE;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      if (!slim_ablate_remove_tree (path, error))
        return FALSE;
    }
  if (g_rmdir (dir) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", dir,
                   g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static char *
out_path (SlimAblate *self, const char *sub, const char *name, const char *suffix)
{
  g_autofree char *file = g_strconcat (name, suffix, NULL);
  return g_build_filename (self->options.out_dir, sub, file, NULL);
}

static gboolean
make_dirs (const char *out_dir, GError **error)
{
  static const char *const subs[] = { "configs", "variants", "models" };

  for (gsize i = 0; i < G_N_ELEMENTS (subs); i++)
    {
      g_autofree char *dir = g_build_filename (out_dir, subs[i], NULL);
      if (g_mkdir_with_parents (dir, 0755) != 0)
        {
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", dir,
                       g_strerror (errno));
          return FALSE;
        }
    }
  return TRUE;
}

SlimAblate *
slim_ablate_prepare (SlimRegistry *registry,
                     SlimAblateMatrix *matrix,
                     const SlimAblateOptions *options,
                     GError **error)
{
  g_autoptr (SlimAblate) self = g_new0 (SlimAblate, 1);

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry) && matrix != NULL && options != NULL, NULL);
  self->registry = g_object_ref (registry);
  self->matrix = matrix;
  self->options = *options;
  self->pipelines = g_ptr_array_new_with_free_func (g_object_unref);
  self->datasets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  if (!make_dirs (options->out_dir, error))
    return NULL;
  for (guint i = 0; i < matrix->variants->len; i++)
    {
      SlimAblateVariant *v = g_ptr_array_index (matrix->variants, i);
      g_autofree char *path = out_path (self, "configs", v->name, ".yaml");
      SlimPipeline *pipeline = NULL;
      if (!g_file_set_contents (path, v->config_text, -1, error))
        return NULL;
      if (!slim_pipeline_check_data (registry, v->config_text, strlen (v->config_text), path,
                                     &pipeline, error))
        {
          g_prefix_error (error, "variant '%s' (%s): ", v->name, v->location);
          return NULL;
        }
      if (slim_pipeline_get_runner (pipeline) == NULL)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "variant '%s' (%s): %s", v->name, v->location,
                       "its runner is not available");
          g_object_unref (pipeline);
          return NULL;
        }
      g_ptr_array_add (self->pipelines, pipeline);
    }
  return g_steal_pointer (&self);
}

/* The evaluation text, tokenized once. */
static GArray *
tokenize_text (const char *model_path, const char *text_path, GError **error)
{
  g_autoptr (SlimTokenizer) tokenizer = slim_tokenizer_new_from_dir (model_path, error);
  g_autofree char *text = NULL;
  GArray *ids;

  if (tokenizer == NULL)
    return NULL;
  text = slim_text_read_file (text_path, SLIM_TEXT_DEFAULT_MAX_BYTES, error);
  if (text == NULL)
    return NULL;
  ids = slim_tokenizer_encode (tokenizer, text, TRUE, error);
  if (ids == NULL)
    g_prefix_error (error, "%s: ", text_path);
  return ids;
}

static char *
hash_ids (GArray *ids)
{
  g_autofree gint64 *wide = g_new (gint64, MAX (ids->len, 1)); /* (n_ids) */
  gsize n = ids->len;
  const gint64 *rows[1] = { wide };

  for (guint i = 0; i < ids->len; i++)
    wide[i] = g_array_index (ids, gint32, i);
  return slim_checkpoint_hash_token_ids (1, &n, rows);
}

/* The calibration set of pipeline, tokenized once per file. */
static SlimDataset *
get_dataset (SlimAblate *self, SlimPipeline *pipeline, GError **error)
{
  g_autofree char *path = NULL;
  g_autoptr (SlimTokenizer) tokenizer = NULL;
  SlimDataset *dataset;

  if (!slim_quantize_needs_data (pipeline))
    return NULL;
  path = slim_datadir_resolve_dataset (slim_pipeline_get_dataset (pipeline),
                                       self->options.calib_dir, error);
  if (path == NULL)
    return NULL;
  dataset = g_hash_table_lookup (self->datasets, path);
  if (dataset != NULL)
    return dataset;
  tokenizer = slim_tokenizer_new_from_dir (self->options.model_path, error);
  if (tokenizer == NULL)
    return NULL;
  dataset = slim_quantize_load_dataset (self->registry, path, tokenizer, self->options.max_samples,
                                        self->options.max_length, error);
  if (dataset != NULL)
    g_hash_table_insert (self->datasets, g_strdup (path), dataset);
  return dataset;
}

typedef struct
{
  GArray *ids;             /* (element-type gint32) */
  float *reference_logits; /* (n_predictions, n_vocab) or NULL: run the float model */
  SlimModel *reference;    /* the float model, when reference_logits is NULL */
} SlimAblateEval;

static gboolean
score (SlimAblate *self,
       SlimModel *model,
       const SlimForwardHooks *hooks,
       SlimAblateEval *ev,
       float *record,
       SlimEvalResult *result,
       GError **error)
{
  SlimEvalOptions options;

  slim_eval_options_init (&options);
  options.n_ctx = self->options.n_ctx;
  options.hooks = hooks;
  options.record_logits = record;
  options.reference_logits = record == NULL ? ev->reference_logits : NULL;
  return slim_eval_run (
      model, record == NULL && ev->reference_logits == NULL ? ev->reference : NULL,
      (const gint32 *)(gpointer)ev->ids->data, ev->ids->len, &options, result, error);
}

/* The resume record of variant i, when it was written for this run. */
static SlimAblateRow *
load_done (SlimAblate *self, const SlimAblateVariant *v, const char *key)
{
  g_autofree char *path = out_path (self, "variants", v->name, ".json");
  g_autofree char *key_path = out_path (self, "variants", v->name, ".key");
  g_autofree char *text = NULL;
  g_autofree char *saved_key = NULL;
  SlimAblateRow *row;

  if (!g_file_get_contents (key_path, &saved_key, NULL, NULL) || strcmp (saved_key, key) != 0
      || !g_file_get_contents (path, &text, NULL, NULL))
    return NULL;
  row = slim_ablate_row_from_json (text, NULL);
  if (row != NULL)
    row->resumed = TRUE;
  return row;
}

static SlimAblateRow *
run_variant (SlimAblate *self, guint index, SlimAblateEval *ev, GError **error)
{
  SlimAblateVariant *v = g_ptr_array_index (self->matrix->variants, index);
  SlimPipeline *pipeline = g_ptr_array_index (self->pipelines, index);
  g_autofree char *save = out_path (self, "models", v->name, "");
  g_autofree char *work = g_strconcat (save, ".slimflow-work", NULL);
  g_autoptr (SlimModel) model = NULL;
  g_autoptr (SlimQuantModel) quant = NULL;
  g_autoptr (SlimModel) qmodel = NULL;
  g_autofree char *dataset_sha = NULL;
  g_autoptr (GPtrArray) prior = NULL; /* (element-type SlimDataset) per spec.prior stage */
  SlimCheckpointHashes hashes = { { 0 } };
  SlimForwardHooks hooks;
  SlimEvalResult result;
  SlimDataset *dataset;
  SlimAblateRow *row;
  gint64 t0 = g_get_monotonic_time ();
  GError *local = NULL;

  slim_ablate_reset_peak_memory ();
  /* A fresh model per variant: a run records its decisions in it. */
  model = slim_model_open (self->options.model_path, error);
  if (model == NULL)
    return NULL;
  dataset = get_dataset (self, pipeline, &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return NULL;
    }
  if (slim_pipeline_get_n_prior_stages (pipeline) > 0)
    {
      g_autoptr (SlimTokenizer) tokenizer = NULL;

      if (slim_quantize_prior_needs_data (pipeline)
          && (tokenizer = slim_tokenizer_new_from_dir (self->options.model_path, error)) == NULL)
        return NULL;
      prior = slim_quantize_load_prior_datasets (self->registry, pipeline, self->options.calib_dir,
                                                 tokenizer, self->options.max_samples,
                                                 self->options.max_length, error);
      if (prior == NULL)
        return NULL;
    }
  dataset_sha = slim_quantize_hash_run_datasets (dataset, prior);
  g_strlcpy (hashes.config, v->config_sha256, sizeof hashes.config);
  g_strlcpy (hashes.model, self->model_sha256, sizeof hashes.model);
  g_strlcpy (hashes.dataset, dataset_sha, sizeof hashes.dataset);
  /* Left by an interrupted ablation: ours, rebuilt from scratch. */
  if (!slim_ablate_remove_tree (save, error) || !slim_ablate_remove_tree (work, error))
    return NULL;
  SlimQuantizeJob job
      = { model, pipeline, dataset, &hashes, save, self->options.max_memory_bytes, NULL, prior };
  if (!slim_quantize_run (&job, error))
    return NULL;
  quant = slim_quant_model_load (save, error);
  if (quant == NULL)
    return NULL;
  qmodel = slim_model_open (slim_quant_model_get_float_dir (quant), error);
  if (qmodel == NULL)
    return NULL;
  slim_quant_model_get_hooks (quant, &hooks);
  if (!score (self, qmodel, &hooks, ev, NULL, &result, error))
    return NULL;

  row = g_new0 (SlimAblateRow, 1);
  row->name = g_strdup (v->name);
  row->description = g_strdup (v->description);
  row->config_sha256 = g_strdup (v->config_sha256);
  row->dataset_sha256 = dataset != NULL ? g_strdup (dataset_sha) : NULL;
  row->perplexity = result.perplexity;
  row->kl = result.kl;
  row->top1 = result.top1;
  row->output_bytes = slim_ablate_dir_size (save);
  row->wall_s = (double)(g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  row->peak_mib = slim_ablate_peak_memory_mib ();
  if (!self->options.keep_models)
    slim_ablate_remove_tree (save, NULL);
  return row;
}

static SlimAblateRow *
run_float (SlimAblate *self, SlimAblateEval *ev, GError **error)
{
  g_autoptr (SlimModel) model = NULL;
  SlimEvalResult result;
  SlimAblateRow *row;
  gint64 t0 = g_get_monotonic_time ();
  gint64 n_predictions = slim_eval_count_predictions (ev->ids->len, self->options.n_ctx);

  slim_ablate_reset_peak_memory ();
  model = slim_model_open (self->options.model_path, error);
  if (model == NULL)
    return NULL;
  guint64 n_bytes = (guint64)n_predictions * (guint64)slim_model_get_config (model)->vocab_size
                    * sizeof (float);
  if (n_bytes <= SLIM_ABLATE_MAX_REFERENCE_BYTES)
    ev->reference_logits = g_try_malloc (MAX (n_bytes, 1));
  if (ev->reference_logits == NULL)
    {
      fprintf (stderr,
               "slimflow ablate: note: the float logits (%.0f MiB) are not kept; the float "
               "model runs again beside every variant\n",
               (double)n_bytes / (1024.0 * 1024.0));
      ev->reference = g_object_ref (model);
    }
  if (!score (self, model, NULL, ev, ev->reference_logits, &result, error))
    return NULL;
  row = g_new0 (SlimAblateRow, 1);
  row->name = g_strdup ("float");
  row->description = g_strdup ("the float model (reference)");
  row->is_float = TRUE;
  row->perplexity = result.perplexity;
  row->kl = 0.0;
  row->top1 = 1.0;
  row->output_bytes = slim_ablate_dir_size (self->options.model_path);
  row->wall_s = (double)(g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  row->peak_mib = slim_ablate_peak_memory_mib ();
  return row;
}

SlimAblateResults *
slim_ablate_run (SlimAblate *self, GError **error)
{
  g_autoptr (SlimAblateResults) results = slim_ablate_results_new ();
  SlimAblateEval ev = { 0 };
  SlimAblateRow *row;
  gboolean ok = FALSE;

  g_return_val_if_fail (self != NULL, NULL);
  ev.ids = tokenize_text (self->options.model_path, self->options.text_path, error);
  if (ev.ids == NULL)
    return NULL;
  self->model_sha256 = slim_checkpoint_hash_model (self->options.model_path, error);
  if (self->model_sha256 == NULL)
    goto out;
  results->slimflow_version = g_strdup (SLIMFLOW_VERSION);
  results->matrix_path = g_strdup (self->matrix->path);
  results->matrix_sha256 = g_strdup (self->matrix->sha256);
  results->model_path = g_strdup (self->options.model_path);
  results->model_sha256 = g_strdup (self->model_sha256);
  results->text_path = g_strdup (self->options.text_path);
  results->text_sha256 = hash_ids (ev.ids);
  results->n_ctx = self->options.n_ctx;
  results->n_tokens = ev.ids->len;
  results->n_predictions = slim_eval_count_predictions (ev.ids->len, self->options.n_ctx);
  results->n_threads = slim_linalg_get_n_threads ();
  results->max_samples = self->options.max_samples;
  results->max_length = self->options.max_length;

  row = run_float (self, &ev, error);
  if (row == NULL)
    goto out;
  g_ptr_array_add (results->rows, row);
  if (self->options.verbose)
    fprintf (stderr, "slimflow ablate: float  PPL %.4f\n", row->perplexity);

  for (guint i = 0; i < self->matrix->variants->len; i++)
    {
      SlimAblateVariant *v = g_ptr_array_index (self->matrix->variants, i);
      g_autofree char *key
          = g_strdup_printf ("slimflow %s\nconfig %s\nmodel %s\ntext %s\nctx %" G_GINT64_FORMAT
                             "\nmax_samples %u\nmax_length %u\nthreads %d\n",
                             SLIMFLOW_VERSION, v->config_sha256, self->model_sha256,
                             results->text_sha256, self->options.n_ctx, self->options.max_samples,
                             self->options.max_length, results->n_threads);
      row = self->options.resume ? load_done (self, v, key) : NULL;
      if (row == NULL)
        {
          g_autofree char *json = NULL;
          g_autofree char *path = out_path (self, "variants", v->name, ".json");
          g_autofree char *key_path = out_path (self, "variants", v->name, ".key");
          row = run_variant (self, i, &ev, error);
          if (row == NULL)
            {
              g_prefix_error (error, "variant '%s': ", v->name);
              goto out;
            }
          json = slim_ablate_row_to_json (row);
          /* The record first, the key last: a key means a complete record. */
          if (!g_file_set_contents (path, json, -1, error)
              || !g_file_set_contents (key_path, key, -1, error))
            {
              slim_ablate_row_free (row);
              goto out;
            }
        }
      g_ptr_array_add (results->rows, row);
      if (self->options.verbose)
        fprintf (stderr, "slimflow ablate: %s  PPL %.4f  KL %.6f  top-1 %.4f%s\n", v->name,
                 row->perplexity, row->kl, row->top1,
                 row->resumed ? "  (from the earlier run)" : "");
    }
  ok = slim_ablate_results_write (results, self->options.out_dir, error);
out:
  g_array_unref (ev.ids);
  g_free (ev.reference_logits);
  g_clear_object (&ev.reference);
  return ok ? g_steal_pointer (&results) : NULL;
}
