/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-spill.h: SlimSpill, a store of named tensors kept out of the way
 * (calibration activations between layers, statistics).  A GInterface
 * because unrelated implementations offer it: SlimSpillMemory (a hash
 * table of references) and SlimSpillHdf5 (one HDF5 file in the run's work
 * area).  What comes back from get() is bit-identical to what was put().
 *
 * Callers use the slim_spill_*() wrappers, never the vfuncs: they check
 * arguments, log timings at debug level and enforce "error set iff FALSE".
 *
 * slim_spill_new() (slim-spill-factory.h) picks the implementation.
 */
#pragma once

#include <glib-object.h>
#include "slim-tensor.h"

G_BEGIN_DECLS

/* Longest key accepted, in bytes. */
#define SLIM_SPILL_MAX_KEY_BYTES 1024

#define SLIM_TYPE_SPILL (slim_spill_get_type ())
G_DECLARE_INTERFACE (SlimSpill, slim_spill, SLIM, SPILL, GObject)

struct _SlimSpillInterface
{
  GTypeInterface g_iface;

  /* Stores tensor under key, replacing any previous value; after a failed
   * put the key is absent. */
  gboolean (*put) (SlimSpill *self, const char *key, SlimTensor *tensor, GError **error);
  /* A tensor equal to the one stored (transfer full); NULL + error if absent. */
  SlimTensor *(*get) (SlimSpill *self, const char *key, GError **error);
  /* Removes key; an absent key is not an error. */
  gboolean (*remove) (SlimSpill *self, const char *key, GError **error);
  gboolean (*contains) (SlimSpill *self, const char *key);
  /* Removes every key. */
  gboolean (*clear) (SlimSpill *self, GError **error);
};

/**
 * slim_spill_put:
 * @self: a store
 * @key: non-empty UTF-8, at most SLIM_SPILL_MAX_KEY_BYTES bytes
 * @tensor: (transfer none): the value; the store keeps its own reference or copy
 * @error: return location for an error
 *
 * Returns: TRUE on success.
 */
gboolean slim_spill_put (SlimSpill *self, const char *key, SlimTensor *tensor, GError **error);

/**
 * slim_spill_get:
 * Returns: (transfer full) (nullable): the tensor stored under @key (same
 * name, dtype, shape and bytes as put), or NULL with G_IO_ERROR_NOT_FOUND
 * (absent) or a format error.
 */
SlimTensor *slim_spill_get (SlimSpill *self, const char *key, GError **error);

/**
 * slim_spill_remove:
 * Removes @key; removing an absent key succeeds.
 * Returns: TRUE on success.
 */
gboolean slim_spill_remove (SlimSpill *self, const char *key, GError **error);
/**
 * slim_spill_contains:
 * Returns: TRUE if @key is stored (FALSE also when the store cannot tell).
 */
gboolean slim_spill_contains (SlimSpill *self, const char *key);
/**
 * slim_spill_clear:
 * Removes every key.
 * Returns: TRUE on success.
 */
gboolean slim_spill_clear (SlimSpill *self, GError **error);

G_END_DECLS
