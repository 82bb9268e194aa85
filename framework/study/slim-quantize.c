/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-quantize.c: one quantization run in-process (slim-quantize.h).
 */
#include "slim-quantize.h"

#include <errno.h>
#include <stdio.h>

#include "slim-datadir.h"
#include "slim-error.h"
#include "slim-schedule.h"
#include "slim-workdir.h"

static gboolean
stage_needs_data (GPtrArray *processors)
{
  for (guint i = 0; i < processors->len; i++)
    if (!slim_processor_is_data_free (g_ptr_array_index (processors, i)))
      return TRUE;
  return FALSE;
}

gboolean
slim_quantize_prior_needs_data (SlimPipeline *pipeline)
{
  for (guint s = 0; s < slim_pipeline_get_n_prior_stages (pipeline); s++)
    if (stage_needs_data (slim_pipeline_get_prior_processors (pipeline, s)))
      return TRUE;
  return FALSE;
}

/* GPtrArray's free func for entries that may be NULL (data-free stages). */
static void
unref_nullable (gpointer object)
{
  if (object != NULL)
    g_object_unref (object);
}

GPtrArray *
slim_quantize_load_prior_datasets (SlimRegistry *registry,
                                   SlimPipeline *pipeline,
                                   const char *calib_dir,
                                   SlimTokenizer *tokenizer,
                                   guint max_samples,
                                   guint max_length,
                                   GError **error)
{
  g_autoptr (GPtrArray) datasets = g_ptr_array_new_with_free_func (unref_nullable);

  for (guint s = 0; s < slim_pipeline_get_n_prior_stages (pipeline); s++)
    {
      g_autofree char *path = NULL;
      SlimDataset *dataset;

      if (!stage_needs_data (slim_pipeline_get_prior_processors (pipeline, s)))
        {
          g_ptr_array_add (datasets, NULL);
          continue;
        }
      g_return_val_if_fail (tokenizer != NULL, NULL);
      path = slim_datadir_resolve_dataset (slim_pipeline_get_prior_dataset (pipeline, s), calib_dir,
                                           error);
      if (path == NULL)
        return NULL;
      dataset
          = slim_quantize_load_dataset (registry, path, tokenizer, max_samples, max_length, error);
      if (dataset == NULL)
        {
          g_prefix_error (error, "spec.prior[%u]: ", s);
          return NULL;
        }
      g_ptr_array_add (datasets, dataset);
    }
  return g_steal_pointer (&datasets);
}

char *
slim_quantize_hash_prior_datasets (GPtrArray *datasets)
{
  g_autoptr (GString) joined = g_string_new ("prior");

  for (guint s = 0; s < datasets->len; s++)
    {
      SlimDataset *dataset = g_ptr_array_index (datasets, s);
      g_autofree char *hash = dataset != NULL ? slim_quantize_hash_dataset (dataset) : NULL;

      g_string_append_printf (joined, ":%s", hash != NULL ? hash : "none");
    }
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, joined->str, joined->len);
}

char *
slim_quantize_hash_run_datasets (SlimDataset *main, GPtrArray *prior)
{
  g_autofree char *hash = slim_quantize_hash_dataset (main);
  g_autofree char *prior_hash = NULL;
  g_autofree char *both = NULL;

  if (prior == NULL || prior->len == 0)
    return g_steal_pointer (&hash);
  /* the prior stages' tokens are part of the run: a resume recomputes
   * them and must see the same */
  prior_hash = slim_quantize_hash_prior_datasets (prior);
  both = g_strconcat (hash, ":", prior_hash, NULL);
  return g_compute_checksum_for_string (G_CHECKSUM_SHA256, both, -1);
}

gboolean
slim_quantize_run_prior (SlimPipeline *pipeline,
                         SlimModel *model,
                         GPtrArray *datasets,
                         const char *work_dir,
                         guint64 max_memory_bytes,
                         SlimRunStore *store,
                         GError **error)
{
  return slim_quantize_run_prior_distributed (pipeline, model, datasets, work_dir, max_memory_bytes,
                                              store, NULL, error);
}

gboolean
slim_quantize_check_prior_distributed (SlimPipeline *pipeline, GError **error)
{
  for (guint s = 0; s < slim_pipeline_get_n_prior_stages (pipeline); s++)
    {
      SlimRunContext ctx;
      g_autofree char *where = g_strdup_printf ("spec.prior[%u]", s);

      slim_run_context_init (&ctx);
      ctx.processors = slim_pipeline_get_prior_processors (pipeline, s);
      if (!slim_schedule_check_distributed (&ctx, where, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
slim_quantize_run_prior_distributed (SlimPipeline *pipeline,
                                     SlimModel *model,
                                     GPtrArray *datasets,
                                     const char *work_dir,
                                     guint64 max_memory_bytes,
                                     SlimRunStore *store,
                                     SlimComm *comm,
                                     GError **error)
{
  const gboolean distributed = comm != NULL && slim_comm_size (comm) > 1;
  SlimRunner *runner = slim_pipeline_get_runner (pipeline);
  g_autoptr (GPtrArray) no_savers = g_ptr_array_new ();
  g_autofree char *prior_dir = NULL;

  g_return_val_if_fail (datasets->len == slim_pipeline_get_n_prior_stages (pipeline), FALSE);
  if (runner == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "runner '%s' is not available", slim_pipeline_get_runner_name (pipeline));
      return FALSE;
    }
  /* a folder of its own: the main run's checkpoint and spill stay apart */
  if (work_dir != NULL)
    {
      prior_dir = g_build_filename (work_dir, "prior", NULL);
      if (g_mkdir_with_parents (prior_dir, 0755) != 0)
        {
          int saved = errno;
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved), "%s: %s", prior_dir,
                       g_strerror (saved));
          return FALSE;
        }
    }
  for (guint s = 0; s < datasets->len; s++)
    {
      SlimRunContext ctx;
      gint64 t0 = g_get_monotonic_time ();

      slim_run_context_init (&ctx);
      ctx.model = model;
      ctx.processors = slim_pipeline_get_prior_processors (pipeline, s);
      ctx.savers = no_savers;
      ctx.dataset = g_ptr_array_index (datasets, s);
      ctx.work_dir = prior_dir;
      ctx.max_memory_bytes = max_memory_bytes;
      ctx.store = store;
      ctx.comm = distributed ? comm : NULL;
      /* the ranks of a data-parallel run: each its share of the samples,
       * the statistics exchanged per layer (slim_schedule_run_distributed);
       * one process: the layer-streaming schedule, every layer resident
       * for model_wise */
      if (distributed
              ? !slim_schedule_run_distributed (&ctx, "spec.prior (dp_layer_wise)", NULL, error)
              : !slim_schedule_run (
                  &ctx, g_strcmp0 (slim_runner_get_type_name (runner), "model_wise") == 0, NULL,
                  error))
        {
          g_prefix_error (error, "spec.prior[%u]: ", s);
          return FALSE;
        }
      if (!distributed || slim_comm_rank (comm) == 0)
        fprintf (stderr, "slimflow: prior stage %u (%u processor%s) done in %.2f s\n", s,
                 ctx.processors->len, ctx.processors->len == 1 ? "" : "s",
                 (double)(g_get_monotonic_time () - t0) / G_USEC_PER_SEC);
    }
  return TRUE;
}

gboolean
slim_quantize_needs_data (SlimPipeline *pipeline)
{
  GPtrArray *processors = slim_pipeline_get_processors (pipeline);

  for (guint i = 0; i < processors->len; i++)
    if (!slim_processor_is_data_free (g_ptr_array_index (processors, i)))
      return TRUE;
  return FALSE;
}

SlimDataset *
slim_quantize_load_dataset (SlimRegistry *registry,
                            const char *path,
                            SlimTokenizer *tokenizer,
                            guint max_samples,
                            guint max_length,
                            GError **error)
{
  const char *kind
      = (g_str_has_suffix (path, ".jsonl") || g_str_has_suffix (path, ".json")) ? "jsonl" : "text";
  GType type = slim_registry_lookup (registry, SLIM_PLUGIN_KIND_DATASET, kind, error);
  g_autoptr (GObject) object = NULL;

  if (type == G_TYPE_INVALID)
    return NULL;
  /* path, max-samples and max-length are construct properties. */
  object = g_object_new (type, "path", path, "max-samples", max_samples, "max-length", max_length,
                         NULL);
  if (!slim_dataset_load (SLIM_DATASET (object), tokenizer, error))
    return NULL;
  if (slim_dataset_get_n_samples (SLIM_DATASET (object)) == 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: the calibration dataset has no sample", path);
      return NULL;
    }
  return SLIM_DATASET (g_steal_pointer (&object));
}

char *
slim_quantize_hash_dataset (SlimDataset *dataset)
{
  guint n = dataset != NULL ? slim_dataset_get_n_samples (dataset) : 0;
  g_autofree gsize *n_tokens = g_new0 (gsize, MAX (n, 1)); /* (n) */
  g_autofree gint64 **ids = g_new0 (gint64 *, MAX (n, 1)); /* (n) rows of (n_tokens[i]) */
  char *hash;

  for (guint i = 0; i < n; i++)
    {
      gint64 len = 0;
      const gint32 *sample = slim_dataset_get_sample (dataset, i, &len);
      n_tokens[i] = (gsize)len;
      ids[i] = g_new (gint64, MAX (len, 1));
      for (gint64 t = 0; t < len; t++)
        ids[i][t] = sample[t];
    }
  hash = slim_checkpoint_hash_token_ids (n, n_tokens, (const gint64 *const *)ids);
  for (guint i = 0; i < n; i++)
    g_free (ids[i]);
  return hash;
}

gboolean
slim_quantize_run (const SlimQuantizeJob *job, GError **error)
{
  g_autoptr (SlimWorkdir) workdir = NULL;
  g_autoptr (SlimRunStore) store = slim_run_store_new ();
  SlimRunner *runner;
  SlimRunContext ctx;

  g_return_val_if_fail (job != NULL && SLIM_IS_MODEL (job->model), FALSE);
  g_return_val_if_fail (SLIM_IS_PIPELINE (job->pipeline) && job->save_path != NULL, FALSE);
  runner = slim_pipeline_get_runner (job->pipeline);
  if (runner == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "runner '%s' is not available", slim_pipeline_get_runner_name (job->pipeline));
      return FALSE;
    }
  if (slim_pipeline_get_n_prior_stages (job->pipeline) > 0
      && (job->prior_datasets == NULL
          || job->prior_datasets->len != slim_pipeline_get_n_prior_stages (job->pipeline)))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "spec.prior stages are not supported by this command");
      return FALSE;
    }
  workdir = slim_workdir_new (job->save_path, slim_model_get_path (job->model), error);
  if (workdir == NULL || !slim_workdir_prepare (workdir, FALSE, error))
    return FALSE;
  if (job->prior_datasets != NULL && job->prior_datasets->len > 0
      && !slim_quantize_run_prior (job->pipeline, job->model, job->prior_datasets,
                                   slim_workdir_get_work_dir (workdir), job->max_memory_bytes,
                                   store, error))
    {
      slim_workdir_abort (workdir, NULL);
      slim_workdir_remove_work_area (workdir, NULL);
      return FALSE;
    }

  slim_run_context_init (&ctx);
  ctx.model = job->model;
  ctx.processors = slim_pipeline_get_processors (job->pipeline);
  ctx.savers = slim_pipeline_get_savers (job->pipeline);
  ctx.dataset = job->dataset;
  ctx.work_dir = slim_workdir_get_work_dir (workdir);
  ctx.max_memory_bytes = job->max_memory_bytes;
  ctx.out_dir = slim_workdir_get_staging_dir (workdir);
  ctx.checkpoint_hashes = job->hashes;
  ctx.layer_errors = job->layer_errors;
  ctx.store = store;
  if (!slim_runner_run (runner, &ctx, NULL, error) || !slim_workdir_commit (workdir, error))
    {
      slim_workdir_abort (workdir, NULL);
      slim_workdir_remove_work_area (workdir, NULL);
      return FALSE;
    }
  /* The output is in place; a leftover work area only costs space. */
  slim_workdir_remove_work_area (workdir, NULL);
  return TRUE;
}
