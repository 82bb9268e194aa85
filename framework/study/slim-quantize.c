/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-quantize.c: one quantization run in-process (slim-quantize.h).
 */
#include "slim-quantize.h"

#include "slim-error.h"
#include "slim-workdir.h"

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
  if (slim_pipeline_get_n_prior_stages (job->pipeline) > 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "spec.prior stages are not supported yet");
      return FALSE;
    }
  workdir = slim_workdir_new (job->save_path, slim_model_get_path (job->model), error);
  if (workdir == NULL || !slim_workdir_prepare (workdir, FALSE, error))
    return FALSE;

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
