/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-spill-memory.c: SlimSpill in RAM (a key -> SlimTensor hash table).
 */
#include "slim-spill-memory.h"

#include <gio/gio.h>
#include "slim-error.h"

struct _SlimSpillMemory
{
  GObject parent_instance;

  GMutex lock;
  GHashTable *tensors; /* char *key -> SlimTensor * (owned refs) */
  guint64 total_bytes;
};

static void slim_spill_memory_iface_init (SlimSpillInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (SlimSpillMemory,
                               slim_spill_memory,
                               G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (SLIM_TYPE_SPILL,
                                                      slim_spill_memory_iface_init))

static gboolean
slim_spill_memory_put (SlimSpill *spill, const char *key, SlimTensor *tensor, GError **error)
{
  SlimSpillMemory *self = SLIM_SPILL_MEMORY (spill);
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  SlimTensor *old = g_hash_table_lookup (self->tensors, key);

  if (old != NULL)
    self->total_bytes -= slim_tensor_get_n_bytes (old);
  self->total_bytes += slim_tensor_get_n_bytes (tensor);
  g_hash_table_replace (self->tensors, g_strdup (key), slim_tensor_ref (tensor));
  return TRUE;
}

static SlimTensor *
slim_spill_memory_get (SlimSpill *spill, const char *key, GError **error)
{
  SlimSpillMemory *self = SLIM_SPILL_MEMORY (spill);
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  SlimTensor *tensor = g_hash_table_lookup (self->tensors, key);

  if (tensor == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "spill: no tensor stored under '%s'",
                   key);
      return NULL;
    }
  return slim_tensor_ref (tensor);
}

static gboolean
slim_spill_memory_remove (SlimSpill *spill, const char *key, GError **error)
{
  SlimSpillMemory *self = SLIM_SPILL_MEMORY (spill);
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);
  SlimTensor *old = g_hash_table_lookup (self->tensors, key);

  if (old != NULL)
    {
      self->total_bytes -= slim_tensor_get_n_bytes (old);
      g_hash_table_remove (self->tensors, key);
    }
  return TRUE;
}

static gboolean
slim_spill_memory_contains (SlimSpill *spill, const char *key)
{
  SlimSpillMemory *self = SLIM_SPILL_MEMORY (spill);
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  return g_hash_table_contains (self->tensors, key);
}

static gboolean
slim_spill_memory_clear (SlimSpill *spill, GError **error)
{
  SlimSpillMemory *self = SLIM_SPILL_MEMORY (spill);
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&self->lock);

  g_hash_table_remove_all (self->tensors);
  self->total_bytes = 0;
  return TRUE;
}

static void
slim_spill_memory_iface_init (SlimSpillInterface *iface)
{
  iface->put = slim_spill_memory_put;
  iface->get = slim_spill_memory_get;
  iface->remove = slim_spill_memory_remove;
  iface->contains = slim_spill_memory_contains;
  iface->clear = slim_spill_memory_clear;
}

static void
slim_spill_memory_finalize (GObject *object)
{
  SlimSpillMemory *self = SLIM_SPILL_MEMORY (object);

  g_hash_table_unref (self->tensors);
  g_mutex_clear (&self->lock);
  G_OBJECT_CLASS (slim_spill_memory_parent_class)->finalize (object);
}

static void
slim_spill_memory_class_init (SlimSpillMemoryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_spill_memory_finalize;
}

static void
slim_spill_memory_init (SlimSpillMemory *self)
{
  g_mutex_init (&self->lock);
  self->tensors
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)slim_tensor_unref);
}

SlimSpillMemory *
slim_spill_memory_new (void)
{
  return g_object_new (SLIM_TYPE_SPILL_MEMORY, NULL);
}

guint64
slim_spill_memory_get_total_bytes (SlimSpillMemory *self)
{
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_val_if_fail (SLIM_IS_SPILL_MEMORY (self), 0);
  locker = g_mutex_locker_new (&self->lock);
  return self->total_bytes;
}
