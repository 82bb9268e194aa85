/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-run-store.h: the keyed store of one quantization run, how a
 * processor of a spec.prior stage hands what it learned to the processors
 * of later stages (msModelSlim's context: ctx["adapt_rotation"].state
 * ["adapted_matrix"], spec 1.3 step 5).
 *
 *   slimflow quant      creates one store per run, sets it on every
 *                       SlimRunContext (ctx->store) of the run: each
 *                       prior stage, then spec.process
 *   the scheduler       hands ctx->store to every processor before pre_run
 *                       (slim_processor_set_run_store)
 *   a processor         slim_processor_get_run_store (self), then
 *                       slim_run_store_set / slim_run_store_lookup
 *
 * Keys are "NAMESPACE.NAME" strings (a processor's YAML type name first,
 * "adapt_rotation.adapted_matrix"); values are bytes the processor lays
 * out and checks itself (they may come from another version's run).  A
 * value set again replaces the old one.  The store belongs to the run, not
 * to a process-wide global: two runs in one process (slimflow ablate)
 * never see each other's values.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define SLIM_TYPE_RUN_STORE (slim_run_store_get_type ())
G_DECLARE_FINAL_TYPE (SlimRunStore, slim_run_store, SLIM, RUN_STORE, GObject)

/* Returns: (transfer full): an empty store. */
SlimRunStore *slim_run_store_new (void);

/**
 * slim_run_store_set:
 * @self: a store
 * @key: "NAMESPACE.NAME"
 * @value: (transfer none): the bytes (a reference is taken)
 */
void slim_run_store_set (SlimRunStore *self, const char *key, GBytes *value);

/* Returns: (transfer none) (nullable): the value of @key, or NULL. */
GBytes *slim_run_store_lookup (SlimRunStore *self, const char *key);

/* Returns: the number of keys. */
guint slim_run_store_get_n_keys (SlimRunStore *self);

G_END_DECLS
