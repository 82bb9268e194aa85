/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-run-store.c: the keyed store of one run (slim-run-store.h).
 */
#include "slim-run-store.h"

struct _SlimRunStore
{
  GObject parent_instance;

  GHashTable *values; /* (element-type utf8 GBytes) owned keys and values */
};

G_DEFINE_FINAL_TYPE (SlimRunStore, slim_run_store, G_TYPE_OBJECT)

static void
slim_run_store_finalize (GObject *object)
{
  SlimRunStore *self = SLIM_RUN_STORE (object);

  g_clear_pointer (&self->values, g_hash_table_unref);
  G_OBJECT_CLASS (slim_run_store_parent_class)->finalize (object);
}

static void
slim_run_store_class_init (SlimRunStoreClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_run_store_finalize;
}

static void
slim_run_store_init (SlimRunStore *self)
{
  self->values
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
}

SlimRunStore *
slim_run_store_new (void)
{
  return g_object_new (SLIM_TYPE_RUN_STORE, NULL);
}

void
slim_run_store_set (SlimRunStore *self, const char *key, GBytes *value)
{
  g_return_if_fail (SLIM_IS_RUN_STORE (self));
  g_return_if_fail (key != NULL && value != NULL);
  g_hash_table_replace (self->values, g_strdup (key), g_bytes_ref (value));
}

GBytes *
slim_run_store_lookup (SlimRunStore *self, const char *key)
{
  g_return_val_if_fail (SLIM_IS_RUN_STORE (self), NULL);
  g_return_val_if_fail (key != NULL, NULL);
  return g_hash_table_lookup (self->values, key);
}

guint
slim_run_store_get_n_keys (SlimRunStore *self)
{
  g_return_val_if_fail (SLIM_IS_RUN_STORE (self), 0);
  return g_hash_table_size (self->values);
}
