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
#include "slim-comm.h"
#include "slim-spill.h"
#include "slim-run-store.h"

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
 * @export_observers: the calibration statistics this processor gathered
 *   over the layer being processed (between its preprocess and its
 *   postprocess), serialized; dp_layer_wise moves them between ranks
 * @import_observers: takes statistics that export_observers produced on
 *   another rank for the same layer: with @merge FALSE they replace the
 *   processor's own, with @merge TRUE they are combined with them (merges
 *   come in rank order, after a replace with rank 0's); the bytes come
 *   from another process: check them.  A data-dependent processor that
 *   supports distributed runs implements both.
 * @distributed_ordered: TRUE when the statistics must be gathered in
 *   sample order (the calibration forward reads what was observed so far,
 *   as static minmax activations quantize each call with the running
 *   range, or a merge would not give a single process's bytes):
 *   dp_layer_wise then runs the ranks' forwards of this processor one
 *   after another, handing the statistics on (import with merge FALSE
 *   before the forward), instead of in parallel followed by merges
 *   (optional, defaults to FALSE)
 * @start_recording: dp_layer_wise, for a processor that is not
 *   distributed_ordered, before this rank's calibration forward of @layer:
 *   return TRUE when part of the statistics must be accumulated in sample
 *   order although the forward itself reads none of them (GPTQ Hessians:
 *   msModelSlim's add_batch rescales the running sum at every call); the
 *   processor then records what it would accumulate instead of
 *   accumulating it, the forwards of all ranks run at once, and the ranks
 *   replay their records one after another (replay_recorded), each on top
 *   of its predecessors' statistics (import with merge FALSE).  FALSE: the
 *   statistics merge exactly after parallel forwards (optional, defaults
 *   to FALSE)
 * @replay_recorded: accumulates, in call order, what was recorded since
 *   start_recording, and stops recording (required with start_recording)
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
  GBytes *(*export_observers) (SlimProcessor *self, SlimLayer *layer, GError **error);
  gboolean (*import_observers) (
      SlimProcessor *self, SlimLayer *layer, GBytes *observers, gboolean merge, GError **error);
  gboolean (*distributed_ordered) (SlimProcessor *self);
  gboolean (*start_recording) (SlimProcessor *self, SlimLayer *layer);
  gboolean (*replay_recorded) (SlimProcessor *self, SlimLayer *layer, GError **error);
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

/**
 * slim_processor_can_exchange_observers:
 * Returns: TRUE when the plugin implements export_observers and
 *   import_observers.
 */
gboolean slim_processor_can_exchange_observers (SlimProcessor *self);

/**
 * slim_processor_export_observers:
 * @self: a processor between preprocess and postprocess of @layer
 * @layer: (transfer none): the layer being processed
 * @error: return location for a GError
 *
 * Returns: (transfer full) (nullable): the statistics; NULL with @error
 *   set (SLIM_PIPELINE_ERROR_INCOMPATIBLE when the plugin cannot).
 */
GBytes *slim_processor_export_observers (SlimProcessor *self, SlimLayer *layer, GError **error);

/**
 * slim_processor_import_observers:
 * @self: a processor between preprocess and postprocess of @layer
 * @layer: (transfer none): the layer being processed
 * @observers: (transfer none): what export_observers returned on a rank
 * @merge: combine with the processor's own statistics (TRUE) or replace
 *   them (FALSE)
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_processor_import_observers (
    SlimProcessor *self, SlimLayer *layer, GBytes *observers, gboolean merge, GError **error);

/**
 * slim_processor_start_recording:
 * @self: a processor between preprocess and postprocess of @layer
 * @layer: (transfer none): the layer being processed
 *
 * Returns: TRUE when the processor now records its order-dependent
 *   accumulations (see @start_recording above); FALSE when it does not
 *   (no such statistics, or no implementation).
 */
gboolean slim_processor_start_recording (SlimProcessor *self, SlimLayer *layer);

/**
 * slim_processor_replay_recorded:
 * @self: a processor that returned TRUE from start_recording for @layer
 * @layer: (transfer none): the layer being processed
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_processor_replay_recorded (SlimProcessor *self, SlimLayer *layer, GError **error);

/* Capability flags; FALSE when the plugin does not say. */
gboolean slim_processor_is_data_free (SlimProcessor *self);
gboolean slim_processor_needs_kv_cache (SlimProcessor *self);
gboolean slim_processor_supports_distributed (SlimProcessor *self);
gboolean slim_processor_refreshes_outputs (SlimProcessor *self);
gboolean slim_processor_distributed_ordered (SlimProcessor *self);

/**
 * slim_processor_set_keep_storage:
 * @self: a processor
 * @spill: (nullable) (transfer none): the run's spill store
 * @budget_bytes: bytes of calibration data the processor may keep in RAM
 *   for one layer before the rest goes to @spill (G_MAXUINT64: no limit)
 *
 * Where a processor keeps per-layer calibration data it needs whole (the
 * inputs flex_smooth_quant searches on).  The scheduler sets it before
 * pre_run (slim-schedule.h); a processor run without a scheduler has no
 * store and no limit.
 */
void slim_processor_set_keep_storage (SlimProcessor *self, SlimSpill *spill, guint64 budget_bytes);
/**
 * slim_processor_set_comm:
 * @self: a processor
 * @comm: (nullable) (transfer none): the ranks of a data-parallel run,
 *   alive until set back to NULL
 *
 * dp_layer_wise sets it before pre_run (and back to NULL at the end), so
 * that a processor can split data-free work of postprocess between the
 * ranks (msModelSlim's DistributedTaskScheduler): every rank must then
 * call the same collectives in the same order.  NULL: one process.
 */
void slim_processor_set_comm (SlimProcessor *self, SlimComm *comm);
/* The ranks set above (transfer none), or NULL. */
SlimComm *slim_processor_get_comm (SlimProcessor *self);

/* The store (transfer none, nullable) and the budget set above. */
SlimSpill *slim_processor_get_keep_spill (SlimProcessor *self);
guint64 slim_processor_get_keep_budget (SlimProcessor *self);

/**
 * slim_processor_set_run_store:
 * @self: a processor
 * @store: (nullable) (transfer none): the run's keyed store
 *   (slim-run-store.h)
 *
 * What the processors of a spec.prior stage hand to later stages.  The
 * scheduler sets ctx->store before pre_run; a container processor (group)
 * passes it on to its children.  A processor run without a scheduler has
 * none.
 */
void slim_processor_set_run_store (SlimProcessor *self, SlimRunStore *store);
/* Returns: (transfer none) (nullable): the store set above. */
SlimRunStore *slim_processor_get_run_store (SlimProcessor *self);

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

/**
 * slim_processor_class_set_calibrates_float:
 * @klass: a processor class, in its class_init
 *
 * Declares that the processor's calibration forward computes the float
 * layer: its preprocess leaves the layer's weights as loaded and its
 * forward hooks only observe (they change no value the forward computes).
 * When such a processor is the first of the spec on a layer and no
 * processor changes the basis, the scheduler keeps the outputs of that
 * forward as the float reference of the per-layer error instead of a
 * further forward of a freshly loaded float layer (the values are the same
 * bits).  Not a vfunc, so no ABI change.
 */
void slim_processor_class_set_calibrates_float (SlimProcessorClass *klass);
/* TRUE when the processor's class (or a parent below SlimProcessor) said so. */
gboolean slim_processor_calibrates_float (SlimProcessor *self);

/* The YAML type name the plugin was registered with ("linear_quant"), or
 * NULL for a type never added to a registry.  transfer none. */
const char *slim_processor_get_type_name (SlimProcessor *self);
/* The plugin's one-line description, or NULL.  transfer none. */
const char *slim_processor_get_description (SlimProcessor *self);

/* Where the processor's entry is in its config ("FILE:LINE:COL:
 * process[0] (awq)"), set by the pipeline that built it; the scheduler
 * puts it before a pre_run error (a check against the model, exit 2 with
 * the entry's place).  NULL when built otherwise.  transfer none. */
void slim_processor_set_config_location (SlimProcessor *self, const char *location);
const char *slim_processor_get_config_location (SlimProcessor *self);

G_END_DECLS
