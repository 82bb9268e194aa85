/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-processor.c: the abstract processor base class and its checked
 * public wrappers.
 */
#include "slim-processor.h"

#include <string.h>
#include "slim-plugin-private.h"
#include "slim-property.h"

typedef struct
{
  SlimSpill *keep_spill; /* (nullable) (owned) */
  guint64 keep_budget;
  SlimRunStore *run_store; /* (nullable) (owned) */
  char *config_location;   /* (nullable) (owned) */
  SlimComm *comm;          /* (nullable) (not owned): the ranks of a data-parallel run */
} SlimProcessorPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimProcessor, slim_processor, G_TYPE_OBJECT)

static void
slim_processor_finalize (GObject *object)
{
  SlimProcessorPrivate *priv = slim_processor_get_instance_private (SLIM_PROCESSOR (object));

  g_clear_object (&priv->keep_spill);
  g_clear_object (&priv->run_store);
  g_free (priv->config_location);
  /* the property fields of every table in the plugin's ancestry */
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_processor_parent_class)->finalize (object);
}

static void
slim_processor_class_init (SlimProcessorClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_processor_finalize;
  /* Every vfunc is optional: the wrappers treat NULL as "nothing to do". */
}

static void
slim_processor_init (SlimProcessor *self)
{
  SlimProcessorPrivate *priv = slim_processor_get_instance_private (self);

  priv->keep_budget = G_MAXUINT64;
}

void
slim_processor_set_keep_storage (SlimProcessor *self, SlimSpill *spill, guint64 budget_bytes)
{
  SlimProcessorPrivate *priv;

  g_return_if_fail (SLIM_IS_PROCESSOR (self));
  g_return_if_fail (spill == NULL || SLIM_IS_SPILL (spill));
  priv = slim_processor_get_instance_private (self);
  g_set_object (&priv->keep_spill, spill);
  priv->keep_budget = budget_bytes;
}

SlimSpill *
slim_processor_get_keep_spill (SlimProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), NULL);
  return ((SlimProcessorPrivate *)slim_processor_get_instance_private (self))->keep_spill;
}

guint64
slim_processor_get_keep_budget (SlimProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), G_MAXUINT64);
  return ((SlimProcessorPrivate *)slim_processor_get_instance_private (self))->keep_budget;
}

void
slim_processor_set_run_store (SlimProcessor *self, SlimRunStore *store)
{
  SlimProcessorPrivate *priv;

  g_return_if_fail (SLIM_IS_PROCESSOR (self));
  g_return_if_fail (store == NULL || SLIM_IS_RUN_STORE (store));
  priv = slim_processor_get_instance_private (self);
  g_set_object (&priv->run_store, store);
}

SlimRunStore *
slim_processor_get_run_store (SlimProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), NULL);
  return ((SlimProcessorPrivate *)slim_processor_get_instance_private (self))->run_store;
}

gboolean
slim_processor_validate (SlimProcessor *self, GError **error)
{
  SlimProcessorClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  if (klass->validate == NULL)
    return TRUE;
  ok = klass->validate (self, &local_error);
  return slim_plugin_check_result (self, "validate", ok, local_error, error);
}

gboolean
slim_processor_pre_run (SlimProcessor *self, SlimModel *model, GError **error)
{
  SlimProcessorClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (SLIM_IS_MODEL (model), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  if (klass->pre_run == NULL)
    return TRUE;
  ok = klass->pre_run (self, model, &local_error);
  return slim_plugin_check_result (self, "pre_run", ok, local_error, error);
}

gboolean
slim_processor_preprocess (SlimProcessor *self, SlimLayer *layer, GError **error)
{
  SlimProcessorClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  if (klass->preprocess == NULL)
    return TRUE;
  ok = klass->preprocess (self, layer, &local_error);
  return slim_plugin_check_result (self, "preprocess", ok, local_error, error);
}

void
slim_processor_get_forward_hooks (SlimProcessor *self, SlimLayer *layer, SlimForwardHooks *hooks)
{
  SlimProcessorClass *klass;

  g_return_if_fail (hooks != NULL);
  memset (hooks, 0, sizeof (*hooks));
  g_return_if_fail (SLIM_IS_PROCESSOR (self));
  g_return_if_fail (SLIM_IS_LAYER (layer));

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  if (klass->get_forward_hooks != NULL)
    klass->get_forward_hooks (self, layer, hooks);
}

gboolean
slim_processor_postprocess (SlimProcessor *self, SlimLayer *layer, GError **error)
{
  SlimProcessorClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  if (klass->postprocess == NULL)
    return TRUE;
  ok = klass->postprocess (self, layer, &local_error);
  return slim_plugin_check_result (self, "postprocess", ok, local_error, error);
}

gboolean
slim_processor_post_run (SlimProcessor *self, GError **error)
{
  SlimProcessorClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  if (klass->post_run == NULL)
    return TRUE;
  ok = klass->post_run (self, &local_error);
  return slim_plugin_check_result (self, "post_run", ok, local_error, error);
}

gboolean
slim_processor_can_resume (SlimProcessor *self)
{
  SlimProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  return klass->save_state != NULL && klass->restore_state != NULL;
}

GBytes *
slim_processor_save_state (SlimProcessor *self, GError **error)
{
  GError *local_error = NULL;
  GBytes *state;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!slim_processor_can_resume (self))
    {
      slim_plugin_set_unsupported (self, "resuming (no save_state / restore_state)", error);
      return NULL;
    }
  state = SLIM_PROCESSOR_GET_CLASS (self)->save_state (self, &local_error);
  return slim_plugin_check_bytes_result (self, "save_state", state, local_error, error);
}

gboolean
slim_processor_restore_state (SlimProcessor *self, GBytes *state, GError **error)
{
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (state != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!slim_processor_can_resume (self))
    {
      slim_plugin_set_unsupported (self, "resuming (no save_state / restore_state)", error);
      return FALSE;
    }
  ok = SLIM_PROCESSOR_GET_CLASS (self)->restore_state (self, state, &local_error);
  return slim_plugin_check_result (self, "restore_state", ok, local_error, error);
}

gboolean
slim_processor_can_exchange_observers (SlimProcessor *self)
{
  SlimProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  return klass->export_observers != NULL && klass->import_observers != NULL;
}

GBytes *
slim_processor_export_observers (SlimProcessor *self, SlimLayer *layer, GError **error)
{
  GError *local_error = NULL;
  GBytes *observers;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), NULL);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!slim_processor_can_exchange_observers (self))
    {
      slim_plugin_set_unsupported (
          self, "distributed calibration (no export_observers / import_observers)", error);
      return NULL;
    }
  observers = SLIM_PROCESSOR_GET_CLASS (self)->export_observers (self, layer, &local_error);
  return slim_plugin_check_bytes_result (self, "export_observers", observers, local_error, error);
}

gboolean
slim_processor_import_observers (
    SlimProcessor *self, SlimLayer *layer, GBytes *observers, gboolean merge, GError **error)
{
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);
  g_return_val_if_fail (observers != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!slim_processor_can_exchange_observers (self))
    {
      slim_plugin_set_unsupported (
          self, "distributed calibration (no export_observers / import_observers)", error);
      return FALSE;
    }
  ok = SLIM_PROCESSOR_GET_CLASS (self)->import_observers (self, layer, observers, merge,
                                                          &local_error);
  return slim_plugin_check_result (self, "import_observers", ok, local_error, error);
}

gboolean
slim_processor_distributed_ordered (SlimProcessor *self)
{
  SlimProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  return klass->distributed_ordered != NULL ? klass->distributed_ordered (self) : FALSE;
}

gboolean
slim_processor_is_data_free (SlimProcessor *self)
{
  SlimProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  return klass->is_data_free != NULL ? klass->is_data_free (self) : FALSE;
}

gboolean
slim_processor_needs_kv_cache (SlimProcessor *self)
{
  SlimProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  return klass->needs_kv_cache != NULL ? klass->needs_kv_cache (self) : FALSE;
}

gboolean
slim_processor_supports_distributed (SlimProcessor *self)
{
  SlimProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  return klass->supports_distributed != NULL ? klass->supports_distributed (self) : FALSE;
}

gboolean
slim_processor_refreshes_outputs (SlimProcessor *self)
{
  SlimProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  return klass->refreshes_outputs != NULL ? klass->refreshes_outputs (self) : FALSE;
}

/* qdata on the type of a processor class that changes the stream's basis */
static GQuark
slim_processor_changes_basis_quark (void)
{
  return g_quark_from_static_string ("slim-processor-changes-basis");
}

void
slim_processor_class_set_changes_basis (SlimProcessorClass *klass)
{
  g_return_if_fail (SLIM_IS_PROCESSOR_CLASS (klass));

  g_type_set_qdata (G_TYPE_FROM_CLASS (klass), slim_processor_changes_basis_quark (),
                    GINT_TO_POINTER (1));
}

gboolean
slim_processor_changes_basis (SlimProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  for (GType t = G_OBJECT_TYPE (self); t != 0 && t != SLIM_TYPE_PROCESSOR; t = g_type_parent (t))
    if (g_type_get_qdata (t, slim_processor_changes_basis_quark ()) != NULL)
      return TRUE;
  return FALSE;
}

const char *
slim_processor_get_type_name (SlimProcessor *self)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), NULL);

  desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (self));
  return desc != NULL ? desc->name : NULL;
}

const char *
slim_processor_get_description (SlimProcessor *self)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), NULL);

  desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (self));
  return desc != NULL ? desc->description : NULL;
}

void
slim_processor_set_config_location (SlimProcessor *self, const char *location)
{
  SlimProcessorPrivate *priv;

  g_return_if_fail (SLIM_IS_PROCESSOR (self));
  priv = slim_processor_get_instance_private (self);
  g_free (priv->config_location);
  priv->config_location = g_strdup (location);
}

const char *
slim_processor_get_config_location (SlimProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), NULL);
  return ((SlimProcessorPrivate *)slim_processor_get_instance_private (self))->config_location;
}

gboolean
slim_processor_start_recording (SlimProcessor *self, SlimLayer *layer)
{
  SlimProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  if (klass->start_recording == NULL || klass->replay_recorded == NULL)
    return FALSE;
  return klass->start_recording (self, layer);
}

gboolean
slim_processor_replay_recorded (SlimProcessor *self, SlimLayer *layer, GError **error)
{
  GError *local_error = NULL;
  SlimProcessorClass *klass;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  klass = SLIM_PROCESSOR_GET_CLASS (self);
  if (klass->replay_recorded == NULL)
    {
      slim_plugin_set_unsupported (self, "replaying recorded statistics (no replay_recorded)",
                                   error);
      return FALSE;
    }
  ok = klass->replay_recorded (self, layer, &local_error);
  return slim_plugin_check_result (self, "replay_recorded", ok, local_error, error);
}

void
slim_processor_set_comm (SlimProcessor *self, SlimComm *comm)
{
  g_return_if_fail (SLIM_IS_PROCESSOR (self));
  ((SlimProcessorPrivate *)slim_processor_get_instance_private (self))->comm = comm;
}

SlimComm *
slim_processor_get_comm (SlimProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), NULL);
  return ((SlimProcessorPrivate *)slim_processor_get_instance_private (self))->comm;
}

/* qdata on the type of a processor class whose calibration forward is float */
static GQuark
slim_processor_calibrates_float_quark (void)
{
  return g_quark_from_static_string ("slim-processor-calibrates-float");
}

void
slim_processor_class_set_calibrates_float (SlimProcessorClass *klass)
{
  g_return_if_fail (SLIM_IS_PROCESSOR_CLASS (klass));

  g_type_set_qdata (G_TYPE_FROM_CLASS (klass), slim_processor_calibrates_float_quark (),
                    GINT_TO_POINTER (1));
}

gboolean
slim_processor_calibrates_float (SlimProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_PROCESSOR (self), FALSE);

  for (GType t = G_OBJECT_TYPE (self); t != 0 && t != SLIM_TYPE_PROCESSOR; t = g_type_parent (t))
    if (g_type_get_qdata (t, slim_processor_calibrates_float_quark ()) != NULL)
      return TRUE;
  return FALSE;
}
