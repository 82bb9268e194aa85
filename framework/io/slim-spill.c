/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-spill.c: the SlimSpill interface and its checked wrappers.
 */
#include "slim-spill.h"

#include <string.h>
#include <gio/gio.h>
#include "slim-error.h"

G_DEFINE_INTERFACE (SlimSpill, slim_spill, G_TYPE_OBJECT)

static void
slim_spill_default_init (SlimSpillInterface *iface)
{
}

static gboolean
slim_spill_key_is_valid (const char *key)
{
  return key != NULL && key[0] != '\0' && strlen (key) <= SLIM_SPILL_MAX_KEY_BYTES
         && g_utf8_validate (key, -1, NULL);
}

/* "error set iff FALSE": a vfunc breaking the rule is a programming error
 * in the implementation; report it and keep the caller's contract. */
static gboolean
slim_spill_check_result (
    SlimSpill *self, const char *what, gboolean ok, GError **error, GError *local_error)
{
  if (ok && local_error != NULL)
    {
      g_critical ("%s::%s returned TRUE but set an error: %s", G_OBJECT_TYPE_NAME (self), what,
                  local_error->message);
      g_error_free (local_error);
      return TRUE;
    }
  if (!ok && local_error == NULL)
    {
      g_critical ("%s::%s returned FALSE without setting an error", G_OBJECT_TYPE_NAME (self),
                  what);
      local_error
          = g_error_new (SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED, "spill %s failed", what);
    }
  if (local_error != NULL)
    g_propagate_error (error, local_error);
  return ok;
}

gboolean
slim_spill_put (SlimSpill *self, const char *key, SlimTensor *tensor, GError **error)
{
  GError *local_error = NULL;
  gint64 start_us;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_SPILL (self), FALSE);
  g_return_val_if_fail (slim_spill_key_is_valid (key), FALSE);
  g_return_val_if_fail (tensor != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  start_us = g_get_monotonic_time ();
  ok = SLIM_SPILL_GET_IFACE (self)->put (self, key, tensor, &local_error);
  g_debug ("spill put '%s' (%" G_GSIZE_FORMAT " bytes) in %.3f ms", key,
           slim_tensor_get_n_bytes (tensor), (g_get_monotonic_time () - start_us) / 1000.0);
  return slim_spill_check_result (self, "put", ok, error, local_error);
}

SlimTensor *
slim_spill_get (SlimSpill *self, const char *key, GError **error)
{
  GError *local_error = NULL;
  SlimTensor *tensor;
  gint64 start_us;

  g_return_val_if_fail (SLIM_IS_SPILL (self), NULL);
  g_return_val_if_fail (slim_spill_key_is_valid (key), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  start_us = g_get_monotonic_time ();
  tensor = SLIM_SPILL_GET_IFACE (self)->get (self, key, &local_error);
  g_debug ("spill get '%s' in %.3f ms", key, (g_get_monotonic_time () - start_us) / 1000.0);
  if (!slim_spill_check_result (self, "get", tensor != NULL, error, local_error))
    return NULL;
  return tensor;
}

gboolean
slim_spill_remove (SlimSpill *self, const char *key, GError **error)
{
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_SPILL (self), FALSE);
  g_return_val_if_fail (slim_spill_key_is_valid (key), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  ok = SLIM_SPILL_GET_IFACE (self)->remove (self, key, &local_error);
  return slim_spill_check_result (self, "remove", ok, error, local_error);
}

gboolean
slim_spill_contains (SlimSpill *self, const char *key)
{
  g_return_val_if_fail (SLIM_IS_SPILL (self), FALSE);
  g_return_val_if_fail (slim_spill_key_is_valid (key), FALSE);

  return SLIM_SPILL_GET_IFACE (self)->contains (self, key);
}

gboolean
slim_spill_clear (SlimSpill *self, GError **error)
{
  GError *local_error = NULL;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_SPILL (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  ok = SLIM_SPILL_GET_IFACE (self)->clear (self, &local_error);
  return slim_spill_check_result (self, "clear", ok, error, local_error);
}
