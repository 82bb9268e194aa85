/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-processor.h: abstract base class of the processor plugins (the
 * `process:` entries of a config), msModelSlim's processor hooks in
 * GObject form (spec 1.4).
 *
 * The runner drives a processor through a quantization run as
 *
 *   validate                       (slimflow validate, before any weight is read)
 *   pre_run (model)                once, before the first layer
 *   for each layer:
 *     preprocess (layer)           e.g. smoothing, rotation
 *     calibration forward          with the hooks from get_forward_hooks (layer)
 *     postprocess (layer)          e.g. compute scales, quantize weights
 *   post_run                       once, after the last layer
 *
 * Every vfunc is optional.  Callers use the public wrappers, never the
 * vfunc pointers: the wrappers check arguments and enforce the rule "a
 * gboolean vfunc returns FALSE if and only if it sets error".  A vfunc
 * breaking it is a plugin bug: it gets a g_critical naming the plugin and
 * the wrapper fails (FALSE with a generic SLIM_PIPELINE_ERROR_FAILED when
 * no error was set, FALSE with the stray error when TRUE came with one).
 */
#pragma once

#include <glib-object.h>
#include <gio/gio.h>
#include "slim-layer.h"
#include "slim-model.h"

G_BEGIN_DECLS

#define SLIM_TYPE_PROCESSOR (slim_processor_get_type ())
G_DECLARE_DERIVABLE_TYPE (SlimProcessor, slim_processor, SLIM, PROCESSOR, GObject)

/**
 * SlimProcessorClass:
 * @validate: cross-property checks, no model needed (optional, defaults to TRUE)
 * @pre_run: once before the first layer, with the opened model (optional)
 * @preprocess: on a layer before its calibration forward (optional)
 * @get_forward_hooks: fill @hooks with what the runner installs during the
 *   calibration forward over @layer; members left NULL are not called
 *   (optional, defaults to no hooks)
 * @postprocess: on a layer after its calibration forward (optional)
 * @post_run: once after the last layer (optional)
 * @is_data_free: TRUE when no calibration data is needed (optional,
 *   defaults to FALSE)
 * @needs_kv_cache: TRUE when the calibration forward must expose the
 *   q/k/v states (optional, defaults to FALSE)
 * @supports_distributed: TRUE when layers may be processed by several
 *   workers (optional, defaults to FALSE)
 * @refreshes_outputs: TRUE when postprocess changes what the layer computes
 *   after the processor's calibration forward (it prunes or quantizes from
 *   statistics of that forward), so the next layer's inputs must come
 *   from one more forward of the layer as deployed (msModelSlim's
 *   _run_forward_if_need in postprocess); the scheduler runs it unless a
 *   later data-dependent processor forwards the layer anyway (optional,
 *   defaults to FALSE)
 * @save_state: what the processor carries from one layer to the next
 *   (anything its post_run or later layers need), serialized, for the
 *   checkpoint written after every layer; called between layers only
 * @restore_state: on a new processor after pre_run, takes back what
 *   save_state returned so that the run continues with the next layer;
 *   the bytes come from a file: check them.  A processor implements both
 *   or neither; one without them makes a run non-resumable (a stateless
 *   processor returns an empty GBytes).
 */
struct _SlimProcessorClass
{
  GObjectClass parent_class;

  gboolean (*validate) (SlimProcessor *self, GError **error);
  gboolean (*pre_run) (SlimProcessor *self, SlimModel *model, GError **error);
  gboolean (*preprocess) (SlimProcessor *self, SlimLayer *layer, GError **error);
  void (*get_forward_hooks) (SlimProcessor *self, SlimLayer *layer, SlimForwardHooks *hooks);
  gboolean (*postprocess) (SlimProcessor *self, SlimLayer *layer, GError **error);
  gboolean (*post_run) (SlimProcessor *self, GError **error);
  gboolean (*is_data_free) (SlimProcessor *self);
  gboolean (*needs_kv_cache) (SlimProcessor *self);
  gboolean (*supports_distributed) (SlimProcessor *self);
  gboolean (*refreshes_outputs) (SlimProcessor *self);
  GBytes *(*save_state) (SlimProcessor *self, GError **error);
  gboolean (*restore_state) (SlimProcessor *self, GBytes *state, GError **error);
};

/**
 * slim_processor_validate:
 * @self: a processor
 * @error: return location for a GError
 *
 * Cross-property checks, before any weight is read.
 *
 * Returns: TRUE when the configuration is usable; FALSE with @error set.
 */
gboolean slim_processor_validate (SlimProcessor *self, GError **error);

/**
 * slim_processor_pre_run:
 * @self: a processor
 * @model: (transfer none): the opened model
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_processor_pre_run (SlimProcessor *self, SlimModel *model, GError **error);

/**
 * slim_processor_preprocess:
 * @self: a processor
 * @layer: (transfer none): the layer, modified in place
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_processor_preprocess (SlimProcessor *self, SlimLayer *layer, GError **error);

/**
 * slim_processor_get_forward_hooks:
 * @self: a processor
 * @layer: (transfer none): the layer about to be run
 * @hooks: (out caller-allocates): zero-filled first, then filled by the plugin
 */
void
slim_processor_get_forward_hooks (SlimProcessor *self, SlimLayer *layer, SlimForwardHooks *hooks);

/**
 * slim_processor_postprocess:
 * @self: a processor
 * @layer: (transfer none): the layer, modified in place
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_processor_postprocess (SlimProcessor *self, SlimLayer *layer, GError **error);

/**
 * slim_processor_post_run:
 * @self: a processor
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_processor_post_run (SlimProcessor *self, GError **error);

/**
 * slim_processor_can_resume:
 * Returns: TRUE when the plugin implements save_state and restore_state.
 */
gboolean slim_processor_can_resume (SlimProcessor *self);

/**
 * slim_processor_save_state:
 * @self: a processor, between two layers
 * @error: return location for a GError (SLIM_PIPELINE_ERROR_INCOMPATIBLE
 *   when the plugin cannot resume)
 *
 * Returns: (transfer full) (nullable): the state; NULL with @error set.
 */
GBytes *slim_processor_save_state (SlimProcessor *self, GError **error);

/**
 * slim_processor_restore_state:
 * @self: a processor after pre_run
 * @state: (transfer none): what save_state returned in the interrupted run
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_processor_restore_state (SlimProcessor *self, GBytes *state, GError **error);

/* Capability flags; FALSE when the plugin does not say. */
gboolean slim_processor_is_data_free (SlimProcessor *self);
gboolean slim_processor_needs_kv_cache (SlimProcessor *self);
gboolean slim_processor_supports_distributed (SlimProcessor *self);
gboolean slim_processor_refreshes_outputs (SlimProcessor *self);

/**
 * slim_processor_class_set_changes_basis:
 * @klass: a processor class, in its class_init
 *
 * Declares that the processor changes the basis of the residual stream
 * (a rotation such as quarot): a unit it has preprocessed computes, on the
 * stream in the new basis, what the original unit computed on the
 * original stream, so the original unit is no reference for the rotated
 * one.  Such a processor's preprocess must be a pure function of the unit
 * given (no state, no dependence on the calibration data): the scheduler
 * calls it once more on a fresh float copy of each decoder layer to build
 * the reference of the per-layer error.  Not a vfunc, so no ABI change.
 */
void slim_processor_class_set_changes_basis (SlimProcessorClass *klass);
/* TRUE when the processor's class (or a parent below SlimProcessor) said so. */
gboolean slim_processor_changes_basis (SlimProcessor *self);

/* The YAML type name the plugin was registered with ("linear_quant"), or
 * NULL for a type never added to a registry.  transfer none. */
const char *slim_processor_get_type_name (SlimProcessor *self);
/* The plugin's one-line description, or NULL.  transfer none. */
const char *slim_processor_get_description (SlimProcessor *self);

G_END_DECLS
