/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-activations.h: SlimActivations, the calibration hidden states
 * between two decoder layers: n_samples tensors, sample i of shape
 * (n_tokens_i, hidden) float32 row-major.
 *
 * Samples stay in memory while the resident total stays within a byte
 * budget (--max_memory); a sample that would exceed it goes to a SlimSpill
 * store (the HDF5 file in the work area), one dataset per sample under the
 * key "<name>/<index>", and is read back when asked for.  The choice is
 * made per set() call, in call order: resident if
 * resident_bytes + sample_bytes <= max_memory_bytes, spilled otherwise.
 * get() returns bit-identical data either way.
 *
 * A runner typically keeps two: the current layer's inputs and the next
 * layer's inputs (different names, one shared store, each with part of
 * the budget), and swaps them after each layer.
 */
#pragma once

#include <glib-object.h>
#include "slim-spill.h"
#include "slim-tensor.h"

G_BEGIN_DECLS

#define SLIM_TYPE_ACTIVATIONS (slim_activations_get_type ())
G_DECLARE_FINAL_TYPE (SlimActivations, slim_activations, SLIM, ACTIVATIONS, GObject)

/**
 * slim_activations_new:
 * @name: key prefix in @spill (e.g. "inputs"); not empty, no '/'
 * @n_samples: number of samples
 * @max_memory_bytes: resident budget (G_MAXUINT64: never spill, 0: spill all)
 * @spill: (nullable) (transfer none): where samples over budget go; without
 *   one, exceeding the budget is a SLIM_PIPELINE_ERROR_OUT_OF_MEMORY error
 *
 * Returns: (transfer full): a set of n_samples unset samples.
 */
SlimActivations *slim_activations_new (const char *name,
                                       guint n_samples,
                                       guint64 max_memory_bytes,
                                       SlimSpill *spill);

/**
 * slim_activations_set:
 * @tensor: (transfer none): sample @index, float32 (n_tokens, hidden), the
 *   same hidden width as every other sample; replaces the previous value
 *
 * Returns: TRUE on success.  A tensor of the wrong dtype or shape leaves
 *   sample @index as it was; a failure to store it leaves it unset.
 */
gboolean
slim_activations_set (SlimActivations *self, guint index, SlimTensor *tensor, GError **error);

/**
 * slim_activations_get:
 * Returns: (transfer full) (nullable): sample @index (read back from the
 *   store if spilled); NULL with an error if unset or unreadable.
 */
SlimTensor *slim_activations_get (SlimActivations *self, guint index, GError **error);

/* Accessors; none of them touches the store.  SlimActivations is not
 * thread-safe: one owner (the runner) calls it. */
guint slim_activations_get_n_samples (SlimActivations *self);
gboolean slim_activations_is_set (SlimActivations *self, guint index);
gboolean slim_activations_is_spilled (SlimActivations *self, guint index);
/* Bytes of the samples held in memory. */
guint64 slim_activations_get_resident_bytes (SlimActivations *self);
/* Number of samples currently in the spill store. */
guint slim_activations_get_spilled_count (SlimActivations *self);
/* The hidden width seen so far (0 before the first set). */
gint64 slim_activations_get_hidden (SlimActivations *self);
/**
 * slim_activations_clear:
 * @error: return location for an error (the store failed to remove a sample)
 *
 * Unsets every sample, removing spilled ones from the store.
 *
 * Returns: TRUE on success.
 */
gboolean slim_activations_clear (SlimActivations *self, GError **error);

G_END_DECLS
