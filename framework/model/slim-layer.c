/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-layer.c: the tensors of one model unit, by full name, in insertion
 * order, with the dtype each had in the model files and the names of the
 * linear modules in execution order.
 */
#include "slim-layer.h"

#include "slim-error.h"

struct _SlimLayer
{
  GObject parent_instance;

  gint index;
  char *prefix;
  GPtrArray *tensors;        /* (element-type SlimTensor) insertion order */
  GHashTable *positions;     /* owned name -> index + 1 into tensors */
  GHashTable *source_dtypes; /* owned name -> GINT_TO_POINTER (dtype + 1) */
  GPtrArray *linear_names;   /* owned strings, NULL-terminated */
};

G_DEFINE_FINAL_TYPE (SlimLayer, slim_layer, G_TYPE_OBJECT)

static void
slim_layer_finalize (GObject *object)
{
  SlimLayer *self = SLIM_LAYER (object);

  g_free (self->prefix);
  g_hash_table_unref (self->positions);
  g_ptr_array_unref (self->tensors);
  g_hash_table_unref (self->source_dtypes);
  g_ptr_array_unref (self->linear_names);
  G_OBJECT_CLASS (slim_layer_parent_class)->finalize (object);
}

static void
slim_layer_class_init (SlimLayerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_layer_finalize;
}

static void
slim_layer_init (SlimLayer *self)
{
  self->tensors = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  self->positions = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->source_dtypes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->linear_names = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (self->linear_names, NULL);
}

/**
 * slim_layer_new:
 * @index: decoder layer index, or SLIM_LAYER_INDEX_EMBED / SLIM_LAYER_INDEX_HEAD
 * @prefix: module prefix, "model.layers.3" or "" for the pseudo-layers
 *
 * Returns: (transfer full): an empty layer.
 */
SlimLayer *
slim_layer_new (gint index, const char *prefix)
{
  SlimLayer *self;

  g_return_val_if_fail (prefix != NULL, NULL);

  self = g_object_new (SLIM_TYPE_LAYER, NULL);
  self->index = index;
  self->prefix = g_strdup (prefix);
  return self;
}

/* Returns: the decoder layer index, or SLIM_LAYER_INDEX_EMBED / _HEAD. */
gint
slim_layer_get_index (SlimLayer *self)
{
  g_return_val_if_fail (SLIM_IS_LAYER (self), 0);
  return self->index;
}

/* Returns: (transfer none): the module prefix. */
const char *
slim_layer_get_prefix (SlimLayer *self)
{
  g_return_val_if_fail (SLIM_IS_LAYER (self), NULL);
  return self->prefix;
}

/**
 * slim_layer_set_tensor:
 * @tensor: (transfer none): a named tensor; the layer takes its own ref
 *
 * Adds @tensor under its name, or replaces the tensor of that name in
 * place (keeping its position in the insertion order).
 */
void
slim_layer_set_tensor (SlimLayer *self, SlimTensor *tensor)
{
  const char *name;
  gpointer position;

  g_return_if_fail (SLIM_IS_LAYER (self));
  g_return_if_fail (tensor != NULL);
  name = slim_tensor_get_name (tensor);
  g_return_if_fail (name != NULL && name[0] != '\0');

  position = g_hash_table_lookup (self->positions, name);
  slim_tensor_ref (tensor);
  if (position != NULL)
    {
      guint i = GPOINTER_TO_UINT (position) - 1;
      SlimTensor *old = g_ptr_array_index (self->tensors, i);

      self->tensors->pdata[i] = tensor;
      slim_tensor_unref (old);
      return;
    }
  g_ptr_array_add (self->tensors, tensor);
  g_hash_table_insert (self->positions, g_strdup (name), GUINT_TO_POINTER (self->tensors->len));
}

/**
 * slim_layer_set_source_dtype:
 * @name: a tensor name (it need not be present yet)
 * @dtype: the dtype the tensor had in the model files
 */
void
slim_layer_set_source_dtype (SlimLayer *self, const char *name, SlimDType dtype)
{
  g_return_if_fail (SLIM_IS_LAYER (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail ((guint)dtype < SLIM_N_DTYPES);

  g_hash_table_insert (self->source_dtypes, g_strdup (name), GINT_TO_POINTER ((gint)dtype + 1));
}

/* The dtype recorded for name, else the tensor's own dtype (F32 when absent). */
SlimDType
slim_layer_get_source_dtype (SlimLayer *self, const char *name)
{
  gpointer value;
  SlimTensor *tensor;

  g_return_val_if_fail (SLIM_IS_LAYER (self), SLIM_DTYPE_F32);
  g_return_val_if_fail (name != NULL, SLIM_DTYPE_F32);

  value = g_hash_table_lookup (self->source_dtypes, name);
  if (value != NULL)
    return (SlimDType)(GPOINTER_TO_INT (value) - 1);
  tensor = slim_layer_get_tensor (self, name);
  return tensor != NULL ? slim_tensor_get_dtype (tensor) : SLIM_DTYPE_F32;
}

/* Returns: (transfer none) (nullable): the tensor called name. */
SlimTensor *
slim_layer_get_tensor (SlimLayer *self, const char *name)
{
  gpointer position;

  g_return_val_if_fail (SLIM_IS_LAYER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  position = g_hash_table_lookup (self->positions, name);
  if (position == NULL)
    return NULL;
  return g_ptr_array_index (self->tensors, GPOINTER_TO_UINT (position) - 1);
}

/* Returns: (transfer none) (nullable): the tensor, or NULL with an error
 * (SLIM_MODEL_ERROR_SHAPE) naming the layer. */
SlimTensor *
slim_layer_require_tensor (SlimLayer *self, const char *name, GError **error)
{
  SlimTensor *tensor;

  g_return_val_if_fail (SLIM_IS_LAYER (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);

  tensor = slim_layer_get_tensor (self, name);
  if (tensor == NULL)
    {
      if (self->index >= 0)
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                     "layer %d (%s): no tensor '%s'", self->index, self->prefix, name);
      else
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                     "%s layer: no tensor '%s'",
                     self->index == SLIM_LAYER_INDEX_EMBED ? "embedding" : "head", name);
    }
  return tensor;
}

/* Returns: TRUE when a tensor called name was removed (order of the others kept). */
gboolean
slim_layer_remove_tensor (SlimLayer *self, const char *name)
{
  gpointer position;
  guint removed;

  g_return_val_if_fail (SLIM_IS_LAYER (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  position = g_hash_table_lookup (self->positions, name);
  if (position == NULL)
    return FALSE;
  removed = GPOINTER_TO_UINT (position) - 1;
  g_hash_table_remove (self->positions, name);
  g_ptr_array_remove_index (self->tensors, removed);
  /* Later tensors moved down by one. */
  for (guint i = removed; i < self->tensors->len; i++)
    {
      SlimTensor *tensor = g_ptr_array_index (self->tensors, i);

      g_hash_table_insert (self->positions, g_strdup (slim_tensor_get_name (tensor)),
                           GUINT_TO_POINTER (i + 1));
    }
  return TRUE;
}

/* Returns: the number of tensors held. */
guint
slim_layer_get_n_tensors (SlimLayer *self)
{
  g_return_val_if_fail (SLIM_IS_LAYER (self), 0);
  return self->tensors->len;
}

/* Returns: (transfer none): the i-th tensor in insertion order. */
SlimTensor *
slim_layer_get_tensor_at (SlimLayer *self, guint i)
{
  g_return_val_if_fail (SLIM_IS_LAYER (self), NULL);
  g_return_val_if_fail (i < self->tensors->len, NULL);
  return g_ptr_array_index (self->tensors, i);
}

/* Returns: (transfer none) (array zero-terminated=1): linear module names. */
const char *const *
slim_layer_get_linear_names (SlimLayer *self)
{
  g_return_val_if_fail (SLIM_IS_LAYER (self), NULL);
  return (const char *const *)self->linear_names->pdata;
}

/* Appends module_name (copied) to the linear names. */
void
slim_layer_add_linear_name (SlimLayer *self, const char *module_name)
{
  g_return_if_fail (SLIM_IS_LAYER (self));
  g_return_if_fail (module_name != NULL);

  /* Keep the array NULL-terminated: overwrite the terminator, add a new one. */
  self->linear_names->pdata[self->linear_names->len - 1] = g_strdup (module_name);
  g_ptr_array_add (self->linear_names, NULL);
}

/* Returns: the sum of the tensors' byte sizes. */
guint64
slim_layer_get_n_bytes (SlimLayer *self)
{
  guint64 n_bytes = 0;

  g_return_val_if_fail (SLIM_IS_LAYER (self), 0);
  for (guint i = 0; i < self->tensors->len; i++)
    n_bytes += slim_tensor_get_n_bytes (g_ptr_array_index (self->tensors, i));
  return n_bytes;
}
