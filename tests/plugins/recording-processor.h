/* SPDX-License-Identifier: Apache-2.0
 *
 * recording-processor.h: a processor for tests that logs its hook calls.
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

#define SLIM_TYPE_RECORDING_PROCESSOR (slim_recording_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimRecordingProcessor, slim_recording_processor, SLIM, RECORDING_PROCESSOR, SlimProcessor)

/* The description to pass to slim_registry_add_static (name "recording"). */
const SlimPluginDesc *slim_recording_processor_get_desc (void);
/* "tag:event" strings in call order (transfer none). */
GPtrArray *slim_recording_log (void);
void slim_recording_log_clear (void);

G_END_DECLS
