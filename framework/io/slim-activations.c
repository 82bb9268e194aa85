/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-activations.c: per-sample hidden states, resident or spilled.
 */
#include "slim-activations.h"

#include <string.h>
#include "slim-error.h"

typedef struct
{
  SlimTensor *resident; /* (n_tokens, hidden) f32; NULL if unset or spilled */
  gboolean spilled;     /* the value lives in the store */
} SlimActivationSlot;

struct _SlimActivations
{
  GObject parent_instance;

  char *name;
  SlimSpill *spill;          /* nullable */
  SlimActivationSlot *slots; /* (n_samples) */
  guint n_samples;
  guint64 max_memory_bytes;
  guint64 resident_bytes;
  guint spilled_count;
  gint64 hidden; /* 0 until the first set */
};

G_DEFINE_FINAL_TYPE (SlimActivations, slim_activations, G_TYPE_OBJECT)

static void
slim_activations_finalize (GObject *object)
{
  SlimActivations *self = SLIM_ACTIVATIONS (object);

  for (guint i = 0; i < self->n_samples; i++)
    g_clear_pointer (&self->slots[i].resident, slim_tensor_unref);
  g_free (self->slots);
  g_clear_object (&self->spill);
  g_free (self->name);
  G_OBJECT_CLASS (slim_activations_parent_class)->finalize (object);
}

static void
slim_activations_class_init (SlimActivationsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_activations_finalize;
}

static void
slim_activations_init (SlimActivations *self)
{
}

SlimActivations *
slim_activations_new (const char *name, guint n_samples, guint64 max_memory_bytes, SlimSpill *spill)
{
  SlimActivations *self;

  g_return_val_if_fail (name != NULL && name[0] != '\0' && strchr (name, '/') == NULL, NULL);
  g_return_val_if_fail (spill == NULL || SLIM_IS_SPILL (spill), NULL);

  self = g_object_new (SLIM_TYPE_ACTIVATIONS, NULL);
  self->name = g_strdup (name);
  self->n_samples = n_samples;
  self->slots = g_new0 (SlimActivationSlot, MAX (n_samples, 1)); /* (n_samples) */
  self->max_memory_bytes = max_memory_bytes;
  self->spill = spill != NULL ? g_object_ref (spill) : NULL;
  return self;
}

static char *
slim_activations_key (SlimActivations *self, guint index)
{
  return g_strdup_printf ("%s/%u", self->name, index);
}

/* Drops sample index wherever it lives. */
static gboolean
slim_activations_unset (SlimActivations *self, guint index, GError **error)
{
  SlimActivationSlot *slot = &self->slots[index];

  if (slot->resident != NULL)
    {
      self->resident_bytes -= slim_tensor_get_n_bytes (slot->resident);
      g_clear_pointer (&slot->resident, slim_tensor_unref);
    }
  if (slot->spilled)
    {
      g_autofree char *key = slim_activations_key (self, index);
      slot->spilled = FALSE;
      self->spilled_count--;
      if (!slim_spill_remove (self->spill, key, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
slim_activations_set (SlimActivations *self, guint index, SlimTensor *tensor, GError **error)
{
  SlimActivationSlot *slot;
  g_autofree char *key = NULL;
  guint64 n_bytes;

  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), FALSE);
  g_return_val_if_fail (index < self->n_samples, FALSE);
  g_return_val_if_fail (tensor != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (slim_tensor_get_dtype (tensor) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (tensor) != 2)
    {
      g_autofree char *shape = slim_tensor_shape_to_string (tensor);
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "activations '%s' sample %u: expected a 2-D f32 tensor, got %s %s", self->name,
                   index, slim_dtype_get_name (slim_tensor_get_dtype (tensor)), shape);
      return FALSE;
    }
  if (self->hidden != 0 && slim_tensor_get_dim (tensor, 1) != self->hidden)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "activations '%s' sample %u: hidden width %" G_GINT64_FORMAT
                   ", the other samples have %" G_GINT64_FORMAT,
                   self->name, index, slim_tensor_get_dim (tensor, 1), self->hidden);
      return FALSE;
    }
  slot = &self->slots[index];
  self->hidden = slim_tensor_get_dim (tensor, 1);
  /* The old value's memory is free for the new one. */
  if (slot->resident != NULL)
    {
      self->resident_bytes -= slim_tensor_get_n_bytes (slot->resident);
      g_clear_pointer (&slot->resident, slim_tensor_unref);
    }

  n_bytes = slim_tensor_get_n_bytes (tensor);
  if (self->max_memory_bytes >= self->resident_bytes
      && n_bytes <= self->max_memory_bytes - self->resident_bytes)
    {
      if (!slim_activations_unset (self, index, error))
        return FALSE;
      slot->resident = slim_tensor_ref (tensor);
      self->resident_bytes += n_bytes;
      return TRUE;
    }
  if (self->spill == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "activations '%s' sample %u (%" G_GUINT64_FORMAT
                   " bytes) exceed the memory budget of %" G_GUINT64_FORMAT
                   " bytes and no spill store is configured",
                   self->name, index, n_bytes, self->max_memory_bytes);
      slim_activations_unset (self, index, NULL);
      return FALSE;
    }
  /* A spilled sample is replaced by put() itself (in place in an HDF5
   * store when the shape is unchanged, the usual case between layers). */
  key = slim_activations_key (self, index);
  if (!slim_spill_put (self->spill, key, tensor, error))
    {
      slim_activations_unset (self, index, NULL);
      return FALSE;
    }
  if (!slot->spilled)
    {
      slot->spilled = TRUE;
      self->spilled_count++;
    }
  return TRUE;
}

SlimTensor *
slim_activations_get (SlimActivations *self, guint index, GError **error)
{
  SlimActivationSlot *slot;
  g_autofree char *key = NULL;
  g_autoptr (SlimTensor) tensor = NULL;

  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), NULL);
  g_return_val_if_fail (index < self->n_samples, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  slot = &self->slots[index];
  if (slot->resident != NULL)
    return slim_tensor_ref (slot->resident);
  if (!slot->spilled)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "activations '%s': sample %u was never set", self->name, index);
      return NULL;
    }
  key = slim_activations_key (self, index);
  tensor = slim_spill_get (self->spill, key, error);
  if (tensor == NULL)
    return NULL;
  /* The store is a file: check it gave back what we put. */
  if (slim_tensor_get_dtype (tensor) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (tensor) != 2
      || slim_tensor_get_dim (tensor, 1) != self->hidden)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "activations '%s' sample %u: the spill store returned a tensor of another shape",
                   self->name, index);
      return NULL;
    }
  return g_steal_pointer (&tensor);
}

guint
slim_activations_get_n_samples (SlimActivations *self)
{
  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), 0);
  return self->n_samples;
}

gboolean
slim_activations_is_set (SlimActivations *self, guint index)
{
  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), FALSE);
  g_return_val_if_fail (index < self->n_samples, FALSE);
  return self->slots[index].resident != NULL || self->slots[index].spilled;
}

gboolean
slim_activations_is_spilled (SlimActivations *self, guint index)
{
  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), FALSE);
  g_return_val_if_fail (index < self->n_samples, FALSE);
  return self->slots[index].spilled;
}

guint64
slim_activations_get_resident_bytes (SlimActivations *self)
{
  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), 0);
  return self->resident_bytes;
}

guint
slim_activations_get_spilled_count (SlimActivations *self)
{
  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), 0);
  return self->spilled_count;
}

gint64
slim_activations_get_hidden (SlimActivations *self)
{
  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), 0);
  return self->hidden;
}

gboolean
slim_activations_clear (SlimActivations *self, GError **error)
{
  gboolean ok = TRUE;

  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  for (guint i = 0; i < self->n_samples; i++)
    {
      GError **first_error = ok ? error : NULL;
      if (!slim_activations_unset (self, i, first_error))
        ok = FALSE;
    }
  return ok;
}
