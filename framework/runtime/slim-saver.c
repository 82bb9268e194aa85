/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-saver.c: the abstract saver base class and its checked public
 * wrappers.  The wrappers also enforce the call order begin ->
 * write_layer* -> finish (or abort), so a saver never sees a layer before
 * begin or after finish.
 */
#include "slim-saver.h"

#include "slim-plugin-private.h"
#include "slim-property.h"

typedef enum
{
  SAVER_STATE_IDLE,
  SAVER_STATE_WRITING,
  SAVER_STATE_DONE,
} SaverState;

typedef struct
{
  SaverState state;
} SlimSaverPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimSaver, slim_saver, G_TYPE_OBJECT)

static void
slim_saver_finalize (GObject *object)
{
  /* the property fields of every table in the plugin's ancestry */
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_saver_parent_class)->finalize (object);
}

static void
slim_saver_class_init (SlimSaverClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_saver_finalize;
  /* begin, write_layer and finish are required (checked when called);
   * abort is optional. */
}

static void
slim_saver_init (SlimSaver *self)
{
}

/* A required vfunc a plugin did not implement: an error, not a crash. */
static gboolean
missing_vfunc (SlimSaver *self, const char *vfunc_name, GError **error)
{
  g_autofree char *who = slim_plugin_object_describe (self);

  g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED, "%s does not implement %s",
               who, vfunc_name);
  return FALSE;
}

static gboolean
wrong_state (SlimSaver *self, const char *vfunc_name, GError **error)
{
  g_autofree char *who = slim_plugin_object_describe (self);

  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
               "%s: %s called out of order (begin, write_layer..., finish)", who, vfunc_name);
  return FALSE;
}

gboolean
slim_saver_begin (SlimSaver *self, SlimModel *model, const char *out_dir, GError **error)
{
  SlimSaverPrivate *priv;
  SlimSaverClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_SAVER (self), FALSE);
  g_return_val_if_fail (SLIM_IS_MODEL (model), FALSE);
  g_return_val_if_fail (out_dir != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = slim_saver_get_instance_private (self);
  klass = SLIM_SAVER_GET_CLASS (self);
  if (priv->state != SAVER_STATE_IDLE)
    return wrong_state (self, "begin", error);
  if (klass->begin == NULL)
    return missing_vfunc (self, "begin", error);
  ok = klass->begin (self, model, out_dir, &local_error);
  ok = slim_plugin_check_result (self, "begin", ok, local_error, error);
  if (ok)
    priv->state = SAVER_STATE_WRITING;
  return ok;
}

gboolean
slim_saver_write_layer (SlimSaver *self, SlimLayer *layer, GError **error)
{
  SlimSaverPrivate *priv;
  SlimSaverClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_SAVER (self), FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = slim_saver_get_instance_private (self);
  klass = SLIM_SAVER_GET_CLASS (self);
  if (priv->state != SAVER_STATE_WRITING)
    return wrong_state (self, "write_layer", error);
  if (klass->write_layer == NULL)
    return missing_vfunc (self, "write_layer", error);
  ok = klass->write_layer (self, layer, &local_error);
  return slim_plugin_check_result (self, "write_layer", ok, local_error, error);
}

gboolean
slim_saver_finish (SlimSaver *self, GError **error)
{
  SlimSaverPrivate *priv;
  SlimSaverClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_SAVER (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = slim_saver_get_instance_private (self);
  klass = SLIM_SAVER_GET_CLASS (self);
  if (priv->state != SAVER_STATE_WRITING)
    return wrong_state (self, "finish", error);
  if (klass->finish == NULL)
    return missing_vfunc (self, "finish", error);
  ok = klass->finish (self, &local_error);
  priv->state = SAVER_STATE_DONE;
  return slim_plugin_check_result (self, "finish", ok, local_error, error);
}

void
slim_saver_abort (SlimSaver *self)
{
  SlimSaverPrivate *priv;
  SlimSaverClass *klass;

  g_return_if_fail (SLIM_IS_SAVER (self));

  priv = slim_saver_get_instance_private (self);
  klass = SLIM_SAVER_GET_CLASS (self);
  /* Nothing was started, or it already finished: nothing to undo. */
  if (priv->state != SAVER_STATE_WRITING)
    return;
  priv->state = SAVER_STATE_DONE;
  if (klass->abort != NULL)
    klass->abort (self);
}

gboolean
slim_saver_can_resume (SlimSaver *self)
{
  SlimSaverClass *klass;

  g_return_val_if_fail (SLIM_IS_SAVER (self), FALSE);

  klass = SLIM_SAVER_GET_CLASS (self);
  return klass->save_progress != NULL && klass->resume != NULL;
}

GBytes *
slim_saver_save_progress (SlimSaver *self, GError **error)
{
  SlimSaverPrivate *priv;
  GError *local_error = NULL;
  GBytes *progress;

  g_return_val_if_fail (SLIM_IS_SAVER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  priv = slim_saver_get_instance_private (self);
  if (!slim_saver_can_resume (self))
    {
      slim_plugin_set_unsupported (self, "resuming (no save_progress / resume)", error);
      return NULL;
    }
  if (priv->state != SAVER_STATE_WRITING)
    {
      wrong_state (self, "save_progress", error);
      return NULL;
    }
  progress = SLIM_SAVER_GET_CLASS (self)->save_progress (self, &local_error);
  return slim_plugin_check_bytes_result (self, "save_progress", progress, local_error, error);
}

gboolean
slim_saver_resume (
    SlimSaver *self, SlimModel *model, const char *out_dir, GBytes *progress, GError **error)
{
  SlimSaverPrivate *priv;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_SAVER (self), FALSE);
  g_return_val_if_fail (SLIM_IS_MODEL (model), FALSE);
  g_return_val_if_fail (out_dir != NULL && progress != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = slim_saver_get_instance_private (self);
  if (!slim_saver_can_resume (self))
    {
      slim_plugin_set_unsupported (self, "resuming (no save_progress / resume)", error);
      return FALSE;
    }
  if (priv->state != SAVER_STATE_IDLE)
    return wrong_state (self, "resume", error);
  ok = SLIM_SAVER_GET_CLASS (self)->resume (self, model, out_dir, progress, &local_error);
  ok = slim_plugin_check_result (self, "resume", ok, local_error, error);
  if (ok)
    priv->state = SAVER_STATE_WRITING;
  return ok;
}

const char *
slim_saver_get_type_name (SlimSaver *self)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_SAVER (self), NULL);

  desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (self));
  return desc != NULL ? desc->name : NULL;
}

const char *
slim_saver_get_description (SlimSaver *self)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_SAVER (self), NULL);

  desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (self));
  return desc != NULL ? desc->description : NULL;
}
