/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-attention-processor.h: SlimAttentionProcessor, the abstract base of
 * the processors over whole attention modules (dynamic_cache, fa3_quant):
 *
 *   include / exclude  properties: patterns over attention module names
 *                      ("model.layers.3.self_attn"), slim-attention-select.h
 *   needs_kv_cache     TRUE: their hooks read the key/value states
 *   post_run           warns about patterns that matched no attention
 *   save / restore     the pattern hits (their ranges are per layer)
 *
 * A subclass checks its own fields in validate and ends it with
 * slim_attention_processor_ensure_select; while that has not succeeded
 * slim_attention_processor_get_select is NULL.  save_state and
 * restore_state run the class's validate first.
 */
#pragma once

#include <glib-object.h>
#include "slim-attention-select.h"
#include "slim-processor.h"

G_BEGIN_DECLS

#define SLIM_TYPE_ATTENTION_PROCESSOR (slim_attention_processor_get_type ())
G_DECLARE_DERIVABLE_TYPE (
    SlimAttentionProcessor, slim_attention_processor, SLIM, ATTENTION_PROCESSOR, SlimProcessor)

struct _SlimAttentionProcessorClass
{
  SlimProcessorClass parent_class;
  gpointer padding[4];
};

/* Builds the selection from include / exclude once (errors prefixed with
 * the plugin's type name); the selection, transfer none. */
SlimAttentionSelect *slim_attention_processor_ensure_select (SlimAttentionProcessor *self,
                                                             GError **error);
/* NULL until ensure_select succeeded. transfer none. */
SlimAttentionSelect *slim_attention_processor_get_select (SlimAttentionProcessor *self);

G_END_DECLS
