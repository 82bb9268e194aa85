/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-plugin.h: the one header a slimflow plugin includes.
 *
 * A plugin is one shared module, slim-<kind>-<name>.so, holding one
 * GObject type derived from the base class of its kind (SlimProcessor,
 * SlimSaver, SlimRunner or SlimDataset).  It ends with
 *
 *   SLIM_PLUGIN_DEFINE (processor, iterative_smooth,
 *                       SLIM_PLUGIN_ALIASES ("iter_smooth"),
 *                       "Iterative SmoothQuant (msModelSlim iter_smooth)",
 *                       slim_iterative_smooth_processor_get_type)
 *
 * which emits the exported entry point
 *
 *   const SlimPluginDesc *slim_plugin_processor_iterative_smooth_get_desc (void);
 *
 * The registry (slim-registry.h) derives that symbol from the file name,
 * checks the ABI version, kind and name of the returned description and
 * that get_type() returns a subtype of the kind's base class.  A plugin
 * without aliases passes SLIM_PLUGIN_NO_ALIASES.
 */
#pragma once

#include <glib-object.h>
#include <gmodule.h>

/* What a plugin may use: its description, data types, model access,
 * shared numerics, the four base classes, SlimLinearProcessor, the
 * property tables (slim-property.h) and the test bench for its tests
 * (slim-plugin-test.h).  All of them, and nothing else, are installed as
 * the plugin SDK (include/slimflow-1, pkg-config slimflow-1;
 * docs/plugin-guide.md); SLIM_PLUGIN_ABI_VERSION comes from the
 * generated slim-version.h, which also says what changes bump it. */
#include "slim-plugin-desc.h"
#include "slim-error.h"
#include "slim-dtype.h"
#include "slim-minifloat.h"
#include "slim-tensor.h"
#include "slim-safetensors.h"
#include "slim-npy.h"
#include "slim-layer.h"
#include "slim-model.h"
#include "slim-tokenizer.h"
#include "slim-text.h"
#include "slim-glob.h"
#include "slim-glob-list.h"
#include "slim-linalg.h"
#include "slim-spill.h"
#include "slim-spill-factory.h"
#include "slim-activations.h"
#include "slim-qscheme.h"
#include "slim-qparams.h"
#include "slim-qconfig.h"
#include "slim-qconfig-ext.h"
#include "slim-linear-qconfig.h"
#include "slim-fa3-details.h"
#include "slim-qlinear.h"
#include "slim-qattention.h"
#include "slim-pack.h"
#include "slim-channel-quant.h"
#include "slim-fp8.h"
#include "slim-mx.h"
#include "slim-mx-dual-scale.h"
#include "slim-mx-weight-methods.h"
#include "slim-recall-window.h"
#include "slim-ifmr.h"
#include "slim-hfmg.h"
#include "slim-admm.h"
#include "slim-gptq.h"
#include "slim-hadamard.h"
#include "slim-rotation.h"
#include "slim-adapt-rotation.h"
#include "slim-online-rotation.h"
#include "slim-histogram.h"
#include "slim-ascend-writer.h"
#include "slim-gguf-blocks.h"
#include "slim-gguf-writer.h"
#include "slim-gguf-vocab.h"
#include "slim-gguf-llama.h"
#include "slim-param.h"
#include "slim-property.h"
#include "slim-run-store.h"
#include "slim-processor.h"
#include "slim-linear-processor.h"
#include "slim-smooth.h"
#include "slim-flex-smooth.h"
#include "slim-flex-awq-ssz.h"
#include "slim-awq.h"
#include "slim-kv-smooth.h"
#include "slim-smooth-processor.h"
#include "slim-attention-select.h"
#include "slim-attention-processor.h"
#include "slim-state.h"
#include "slim-saver.h"
#include "slim-runner.h"
#include "slim-schedule.h"
#include "slim-dataset.h"
#include "slim-registry.h"
#include "slim-config-object.h"
#include "slim-plugin-test.h"

G_BEGIN_DECLS

/* Alias list for SLIM_PLUGIN_DEFINE: SLIM_PLUGIN_ALIASES ("a", "b"). */
#define SLIM_PLUGIN_ALIASES(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define SLIM_PLUGIN_NO_ALIASES NULL

/**
 * SLIM_PLUGIN_DEFINE:
 * @kind: processor, saver, runner or dataset (a bare word)
 * @name: the YAML type name (a bare word, underscores allowed)
 * @aliases: SLIM_PLUGIN_ALIASES (...) or SLIM_PLUGIN_NO_ALIASES
 * @description: one-line description (a string literal)
 * @get_type_func: the plugin type's *_get_type function
 *
 * Emits the module's exported entry point
 * slim_plugin_<kind>_<name>_get_desc().  Use once, at file scope.
 */
#define SLIM_PLUGIN_DEFINE(kind, name, aliases, description, get_type_func)                        \
  static const SlimPluginDesc slim_plugin_desc_##kind##_##name = {                                 \
    SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_##kind, #name, aliases, description, get_type_func,  \
  };                                                                                               \
  G_MODULE_EXPORT const SlimPluginDesc *slim_plugin_##kind##_##name##_get_desc (void);             \
  G_MODULE_EXPORT const SlimPluginDesc *slim_plugin_##kind##_##name##_get_desc (void)              \
  {                                                                                                \
    return &slim_plugin_desc_##kind##_##name;                                                      \
  }

/* SLIM_PLUGIN_KIND_##kind needs upper-case tokens; these map the bare
 * lower-case kind words used in SLIM_PLUGIN_DEFINE. */
#define SLIM_PLUGIN_KIND_processor SLIM_PLUGIN_KIND_PROCESSOR
#define SLIM_PLUGIN_KIND_saver SLIM_PLUGIN_KIND_SAVER
#define SLIM_PLUGIN_KIND_runner SLIM_PLUGIN_KIND_RUNNER
#define SLIM_PLUGIN_KIND_dataset SLIM_PLUGIN_KIND_DATASET

G_END_DECLS
