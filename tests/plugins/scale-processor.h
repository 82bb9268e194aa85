/* SPDX-License-Identifier: Apache-2.0
 *
 * scale-processor.h: "scale_weights", a data-free SlimLinearProcessor for
 * the property suite (see scale-processor.c).
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

/* Emitted by SLIM_PLUGIN_DEFINE in scale-processor.c: the description to
 * pass to slim_registry_add_static (name "scale_weights"). */
const SlimPluginDesc *slim_plugin_processor_scale_weights_get_desc (void);

/* How many linears the processor has scaled so far (carried in its state). */
gint64 slim_test_scale_processor_get_n_scaled (SlimProcessor *processor);

G_END_DECLS
