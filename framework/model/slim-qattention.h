/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qattention.h: what the attention quantizers decided for one
 * attention module ("model.layers.3.self_attn"), attached to its SlimLayer
 * as SlimQLinear records are (msModelSlim's FakeQuantDynamicCache and
 * FakeQuantActivationPerHead IR modules):
 *
 *   kv cache (dynamic_cache, label C8, spec 2.8): post-RoPE k and v
 *     fake-quantized per channel of the (n_kv_heads * head_dim) features,
 *     with the calibrated scale / offset of each channel;
 *   fa3 (fa3_quant, label FAQuant, spec 2.9): post-RoPE q, k and v each
 *     fake-quantized symmetric, static per head (int8 or fp8_e4m3, one
 *     scale per head) or dynamic per token (int8 or fp8_e4m3: each head's
 *     head_dim values of a token get their own scale, nothing is saved).
 *
 * Every later forward of the layer applies the record at the qkv_states
 * hook (the deployed hooks, slim-qlinear.h): the kv cache first (the values
 * the cache holds), then the fa3 quantization of what enters attention.
 * The ascendv1 saver writes it, and the eval of a saved folder rebuilds it.
 * dynamic_cache and fa3_quant fill different members of one record.
 */
#pragma once

#include <glib-object.h>
#include "slim-forward-hooks.h"
#include "slim-layer.h"
#include "slim-qscheme.h"
#include "slim-tensor.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_QATTENTION_Q,
  SLIM_QATTENTION_K,
  SLIM_QATTENTION_V,
  SLIM_QATTENTION_N_BRANCHES,
} SlimQAttentionBranch;

/* One fa3 branch (fa_q, fa_k, fa_v). */
typedef struct
{
  gboolean enabled;
  SlimQScheme scheme; /* int8 / fp8_e4m3, per_head (static) or per_token (dynamic), sym */
  SlimTensor *scale;  /* F32 (n_heads of the branch); NULL for per_token */
} SlimQAttentionFa;

typedef struct
{
  char *attn; /* "model.layers.0.self_attn" */
  gint64 n_heads;
  gint64 n_kv_heads;
  gint64 head_dim;
  /* dynamic_cache (C8) */
  gboolean kv_cache;
  SlimQScheme kv_scheme; /* int8 per_channel, sym or asym */
  SlimTensor *k_scale;   /* F32 (n_kv_heads * head_dim) */
  SlimTensor *k_offset;  /* F32 (n_kv_heads * head_dim), integer values */
  SlimTensor *v_scale;
  SlimTensor *v_offset;
  /* fa3_quant (FAQuant) */
  SlimQAttentionFa fa[SLIM_QATTENTION_N_BRANCHES];
} SlimQAttention;

GType slim_qattention_get_type (void);
#define SLIM_TYPE_QATTENTION (slim_qattention_get_type ())

SlimQAttention *
slim_qattention_new (const char *attn, gint64 n_heads, gint64 n_kv_heads, gint64 head_dim);
/* Tensors are shared (copy-on-write). */
SlimQAttention *slim_qattention_copy (const SlimQAttention *self);
void slim_qattention_free (SlimQAttention *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimQAttention, slim_qattention_free)

/* "fa_q", "fa_k", "fa_v". */
const char *slim_qattention_branch_name (SlimQAttentionBranch branch);

/* Checks sizes and values (positive finite scales); FALSE with an error
 * naming the attention. */
gboolean slim_qattention_check (const SlimQAttention *self, GError **error);

/* Applies the record to the post-RoPE states in place: q (n_tokens,
 * n_heads * head_dim), k and v (n_tokens, n_kv_heads * head_dim). Fails
 * when the shapes disagree with the record. */
gboolean slim_qattention_apply (const SlimQAttention *self,
                                float *q,
                                float *k,
                                float *v,
                                gint64 n_tokens,
                                const SlimModelConfig *config,
                                GError **error);

/* Attach / look up on a layer (the layer owns the record); a second record
 * for the same attention replaces the first. */
void slim_layer_set_qattention (SlimLayer *layer, SlimQAttention *record /* transfer full */);
const SlimQAttention *slim_layer_get_qattention (SlimLayer *layer, const char *attn);
/* All records in the order first set (transfer container). */
GPtrArray *slim_layer_list_qattentions (SlimLayer *layer);

/* A qkv_states hook applying the layer's records (user_data = layer); the
 * deployed hooks of slim-qlinear.h use it. */
gboolean slim_qattention_deployed_qkv_states (const char *attn,
                                              float *q,
                                              float *k,
                                              float *v,
                                              gint64 n_tokens,
                                              const SlimModelConfig *config,
                                              gpointer user_data,
                                              GError **error);

G_END_DECLS
