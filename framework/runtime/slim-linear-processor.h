/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linear-processor.h: SlimLinearProcessor, the abstract base of the
 * processors that work linear by linear on the modules selected by name
 * (linear_quant; later gptq, awq, ...), codebase-models.md 8.3.
 *
 * The base owns what every such processor shares:
 *
 *   include: [patterns]   default ["*"]
 *   exclude: [patterns]   default [], wins over include
 *
 * (slim-glob.h patterns over full module names), and implements these
 * SlimProcessor vfuncs:
 *
 *   validate     prepare (below): the subclass's checks, then the patterns
 *   preprocess   per decoder layer (the embeddings and lm_head pseudo-layers
 *                are skipped; the head's lm_head is walked too after
 *                slim_linear_processor_set_visit_head), for every linear of the layer that is not
 *                taken yet (slim_linear_processor_is_taken: already deployed
 *                as a SlimQLinear, or selected by an earlier
 *                SlimLinearProcessor on this layer, e.g. an earlier child of
 *                the same group; msModelSlim replaces a selected module, so
 *                later processors no longer see an nn.Linear) and matches
 *                include and not exclude: process_linear; the linear is then
 *                taken until this processor's postprocess of the layer
 *   postprocess  finish_layer, then the layer's linears are released
 *                (also after a failure)
 *   post_run     warns about include / exclude patterns (other than "*")
 *                that matched no module, as msModelSlim does
 *   save_state / restore_state
 *                which patterns matched so far (a GVariant "(abab)"), plus
 *                the subclass's save_extra bytes when it has them ("((abab)ay)")
 *
 * A subclass implements process_linear (required) and what else it needs:
 * prepare, finish_layer, describe, save_extra/restore_extra, and the
 * SlimProcessor vfuncs the base leaves alone (pre_run, get_forward_hooks,
 * is_data_free, needs_kv_cache, supports_distributed).  A subclass that
 * overrides one of the vfuncs above chains up.
 */
#pragma once

#include "slim-processor.h"

G_BEGIN_DECLS

#define SLIM_TYPE_LINEAR_PROCESSOR (slim_linear_processor_get_type ())
G_DECLARE_DERIVABLE_TYPE (
    SlimLinearProcessor, slim_linear_processor, SLIM, LINEAR_PROCESSOR, SlimProcessor)

/**
 * SlimLinearProcessorClass:
 * @prepare: resolves and checks the configuration, once, before the
 *   patterns are compiled; no model needed (optional)
 * @process_linear: works on one selected linear of @layer (full module
 *   name @module, e.g. "model.layers.0.mlp.up_proj"; its weight is
 *   "<module>.weight") in preprocess (required)
 * @finish_layer: after the calibration forward over @layer, e.g. computes
 *   scales and deploys the layer's selected linears (optional)
 * @describe: the processor in messages, e.g. "linear_quant (W8A8)"
 *   (optional; defaults to the registered type name)
 * @save_extra: the subclass's own state between layers (optional; with
 *   restore_extra)
 * @restore_extra: takes back what save_extra returned (the bytes come
 *   from a file: check them)
 */
struct _SlimLinearProcessorClass
{
  SlimProcessorClass parent_class;

  gboolean (*prepare) (SlimLinearProcessor *self, GError **error);
  gboolean (*process_linear) (SlimLinearProcessor *self,
                              SlimLayer *layer,
                              const char *module,
                              GError **error);
  gboolean (*finish_layer) (SlimLinearProcessor *self, SlimLayer *layer, GError **error);
  char *(*describe) (SlimLinearProcessor *self);
  GBytes *(*save_extra) (SlimLinearProcessor *self, GError **error);
  gboolean (*restore_extra) (SlimLinearProcessor *self, GBytes *extra, GError **error);
};

/**
 * slim_linear_processor_prepare:
 * @self: a linear processor
 * @error: return location for a GError
 *
 * Calls the prepare vfunc and compiles include / exclude, once (later
 * calls return TRUE at once; a failed one is retried).
 *
 * Returns: TRUE when the configuration is usable; FALSE with @error set.
 */
gboolean slim_linear_processor_prepare (SlimLinearProcessor *self, GError **error);

/* TRUE after a successful slim_linear_processor_prepare(). */
gboolean slim_linear_processor_is_prepared (SlimLinearProcessor *self);

/* The processor in messages (the describe vfunc); free with g_free. */
char *slim_linear_processor_describe (SlimLinearProcessor *self);

/**
 * slim_linear_processor_is_taken:
 * @layer: a layer
 * @module: a linear of @layer
 *
 * Returns: TRUE when @module is deployed (has a SlimQLinear record) or
 *   is selected by a SlimLinearProcessor that has not finished the layer.
 */
gboolean slim_linear_processor_is_taken (SlimLayer *layer, const char *module);

/* Also select the head pseudo-layer's lm_head (default FALSE); see the .c. */
void slim_linear_processor_set_visit_head (SlimLinearProcessor *self, gboolean visit);

G_END_DECLS
