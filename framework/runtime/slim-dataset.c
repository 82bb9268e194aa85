/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-dataset.c: the abstract dataset base class: the shared properties
 * (path, max-samples, max-length) and the checked public wrappers.
 */
#include "slim-dataset.h"

#include "slim-plugin-private.h"
#include "slim-property.h"

typedef struct
{
  char *path;
  guint max_samples; /* 0 = all */
  guint max_length;  /* tokens; 0 = no limit */
  gboolean loaded;
} SlimDatasetPrivate;

static const SlimPropertyDecl slim_dataset_properties[] = {
  SLIM_PROPERTY_STRING (SlimDatasetPrivate, path, "path", "Path",
                        "File holding the calibration data", NULL),
  SLIM_PROPERTY_UINT (SlimDatasetPrivate, max_samples, "max-samples", "Maximum samples",
                      "Use at most this many samples (0 = all)", 0, G_MAXUINT, 0),
  SLIM_PROPERTY_UINT (SlimDatasetPrivate, max_length, "max-length", "Maximum length",
                      "Truncate every sample to this many tokens (0 = no limit)", 0, G_MAXUINT, 0),
};

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimDataset, slim_dataset, G_TYPE_OBJECT)

static void
slim_dataset_finalize (GObject *object)
{
  /* the property fields of every table in the plugin's ancestry */
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_dataset_parent_class)->finalize (object);
}

static void
slim_dataset_class_init (SlimDatasetClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_dataset_finalize;
  SLIM_PROPERTIES_INSTALL_PRIVATE (klass, slim_dataset_properties);
}

static void
slim_dataset_init (SlimDataset *self)
{
}

const char *
slim_dataset_get_path (SlimDataset *self)
{
  SlimDatasetPrivate *priv;

  g_return_val_if_fail (SLIM_IS_DATASET (self), NULL);

  priv = slim_dataset_get_instance_private (self);
  return priv->path;
}

guint
slim_dataset_get_max_samples (SlimDataset *self)
{
  SlimDatasetPrivate *priv;

  g_return_val_if_fail (SLIM_IS_DATASET (self), 0);

  priv = slim_dataset_get_instance_private (self);
  return priv->max_samples;
}

guint
slim_dataset_get_max_length (SlimDataset *self)
{
  SlimDatasetPrivate *priv;

  g_return_val_if_fail (SLIM_IS_DATASET (self), 0);

  priv = slim_dataset_get_instance_private (self);
  return priv->max_length;
}

gboolean
slim_dataset_load (SlimDataset *self, SlimTokenizer *tokenizer, GError **error)
{
  SlimDatasetPrivate *priv;
  SlimDatasetClass *klass;
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_DATASET (self), FALSE);
  g_return_val_if_fail (tokenizer == NULL || SLIM_IS_TOKENIZER (tokenizer), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = slim_dataset_get_instance_private (self);
  klass = SLIM_DATASET_GET_CLASS (self);
  if (priv->loaded)
    {
      g_autofree char *who = slim_plugin_object_describe (self);
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: %s is already loaded", who, priv->path != NULL ? priv->path : "dataset");
      return FALSE;
    }
  if (priv->path == NULL || priv->path[0] == '\0')
    {
      g_autofree char *who = slim_plugin_object_describe (self);
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "%s: no path to load the calibration data from", who);
      return FALSE;
    }
  if (klass->load == NULL || klass->get_n_samples == NULL || klass->get_sample == NULL)
    {
      g_autofree char *who = slim_plugin_object_describe (self);
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s does not implement load, get_n_samples and get_sample", who);
      return FALSE;
    }
  ok = klass->load (self, tokenizer, &local_error);
  ok = slim_plugin_check_result (self, "load", ok, local_error, error);
  priv->loaded = ok;
  return ok;
}

gboolean
slim_dataset_is_loaded (SlimDataset *self)
{
  SlimDatasetPrivate *priv;

  g_return_val_if_fail (SLIM_IS_DATASET (self), FALSE);

  priv = slim_dataset_get_instance_private (self);
  return priv->loaded;
}

guint
slim_dataset_get_n_samples (SlimDataset *self)
{
  SlimDatasetPrivate *priv;

  g_return_val_if_fail (SLIM_IS_DATASET (self), 0);

  priv = slim_dataset_get_instance_private (self);
  if (!priv->loaded)
    return 0;
  return SLIM_DATASET_GET_CLASS (self)->get_n_samples (self);
}

const gint32 *
slim_dataset_get_sample (SlimDataset *self, guint index, gint64 *out_n_tokens)
{
  SlimDatasetPrivate *priv;
  const gint32 *ids;
  gint64 n_tokens = 0;

  g_return_val_if_fail (SLIM_IS_DATASET (self), NULL);
  g_return_val_if_fail (out_n_tokens != NULL, NULL);
  *out_n_tokens = 0;
  priv = slim_dataset_get_instance_private (self);
  g_return_val_if_fail (priv->loaded, NULL);
  g_return_val_if_fail (index < slim_dataset_get_n_samples (self), NULL);

  ids = SLIM_DATASET_GET_CLASS (self)->get_sample (self, index, &n_tokens);
  /* A loaded sample always has tokens; the limit is the promise max-length makes. */
  g_return_val_if_fail (ids != NULL && n_tokens > 0, NULL);
  g_return_val_if_fail (priv->max_length == 0 || n_tokens <= (gint64)priv->max_length, NULL);
  *out_n_tokens = n_tokens;
  return ids;
}

const char *
slim_dataset_get_type_name (SlimDataset *self)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_DATASET (self), NULL);

  desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (self));
  return desc != NULL ? desc->name : NULL;
}

const char *
slim_dataset_get_description (SlimDataset *self)
{
  const SlimPluginDesc *desc;

  g_return_val_if_fail (SLIM_IS_DATASET (self), NULL);

  desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (self));
  return desc != NULL ? desc->description : NULL;
}
