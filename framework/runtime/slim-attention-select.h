/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-attention-select.h: which attention modules a processor over
 * attentions (dynamic_cache, fa3_quant) takes: `include` / `exclude`
 * patterns over the attention module names ("model.layers.3.self_attn"),
 * an empty include meaning ["*"] as in msModelSlim, the warning about
 * patterns that matched nothing, and the pattern hits for checkpoints.
 */
#pragma once

#include <glib.h>
#include "slim-glob-list.h"
#include "slim-layer.h"

G_BEGIN_DECLS

typedef struct _SlimAttentionSelect SlimAttentionSelect;

SlimAttentionSelect *
slim_attention_select_new (const char *const *include, const char *const *exclude, GError **error);
void slim_attention_select_free (SlimAttentionSelect *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimAttentionSelect, slim_attention_select_free)

/* The attention module of a decoder layer ("<prefix>.self_attn") when it
 * is selected, else NULL (pseudo-layers included). transfer full. */
char *slim_attention_select_layer (SlimAttentionSelect *self, SlimLayer *layer);

/* g_warning naming @label for include / exclude patterns (but "*") that
 * matched no attention. */
void slim_attention_select_warn_unmatched (SlimAttentionSelect *self, const char *label);

/* Checkpoint: the pattern hits, "(abab)" bytes. */
GBytes *slim_attention_select_save (SlimAttentionSelect *self);
gboolean slim_attention_select_restore (SlimAttentionSelect *self, GBytes *state, GError **error);

G_END_DECLS
