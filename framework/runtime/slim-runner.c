/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-runner.c: the abstract runner base class and its checked public
 * wrapper.
 */
#include "slim-runner.h"

#include <string.h>
#include "slim-plugin-private.h"
#include "slim-property.h"
#include "slim-processor.h"
#include "slim-saver.h"

G_DEFINE_ABSTRACT_TYPE (SlimRunner, slim_runner, G_TYPE_OBJECT)

static void
slim_runner_finalize (GObject *object)
{
  /* the property fields of every table in the plugin's ancestry */
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_runner_parent_class)->finalize (object);
}

static void
slim_runner_class_init (SlimRunnerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_runner_finalize;
  /* run is required (checked when called). */
}

static void
slim_runner_init (SlimRunner *self)
{
}

void
slim_run_context_init (SlimRunContext *ctx)
{
  g_return_if_fail (ctx != NULL);
  memset (ctx, 0, sizeof (*ctx));
}

/* ctx comes from the pipeline, which built it from a user's config: a
 * wrong element type is a programming error, a missing dataset for a
 * processor that needs data is a configuration error. */
static gboolean
check_context (SlimRunContext *ctx, GError **error)
{
  gboolean needs_data = FALSE;

  for (guint i = 0; i < ctx->processors->len; i++)
    {
      gpointer p = g_ptr_array_index (ctx->processors, i);
      g_return_val_if_fail (SLIM_IS_PROCESSOR (p), FALSE);
      if (!slim_processor_is_data_free (p))
        needs_data = TRUE;
    }
  for (guint i = 0; i < ctx->savers->len; i++)
    g_return_val_if_fail (SLIM_IS_SAVER (g_ptr_array_index (ctx->savers, i)), FALSE);
  g_return_val_if_fail (ctx->dataset == NULL || SLIM_IS_DATASET (ctx->dataset), FALSE);

  if (needs_data && ctx->dataset == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "a processor needs calibration data but no dataset was given");
      return FALSE;
    }
  /* (a data-parallel rank other than 0 resumes without one) */
  if (ctx->resume_from != NULL && ctx->out_dir == NULL && ctx->comm == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "resuming a run needs the output folder of the interrupted run");
      return FALSE;
    }
  return TRUE;
}

gboolean
slim_runner_run (SlimRunner *self, SlimRunContext *ctx, GCancellable *cancellable, GError **error)
{
  SlimRunnerClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_RUNNER (self), FALSE);
  g_return_val_if_fail (ctx != NULL, FALSE);
  g_return_val_if_fail (SLIM_IS_MODEL (ctx->model), FALSE);
  g_return_val_if_fail (ctx->processors != NULL, FALSE);
  g_return_val_if_fail (ctx->savers != NULL, FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_context (ctx, error))
    return FALSE;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  klass = SLIM_RUNNER_GET_CLASS (self);
  if (klass->run == NULL)
    {
      g_autofree char *who = slim_plugin_object_describe (self);
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s does not implement run", who);
      return FALSE;
    }
  ok = klass->run (self, ctx, cancellable, &local_error);
  return slim_plugin_check_result (self, "run", ok, local_error, error);
}

const char *
slim_runner_get_type_name (SlimRunner *self)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_RUNNER (self), NULL);

  desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (self));
  return desc != NULL ? desc->name : NULL;
}

const char *
slim_runner_get_description (SlimRunner *self)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_RUNNER (self), NULL);

  desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (self));
  return desc != NULL ? desc->description : NULL;
}
