/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model.h: a Hugging Face model folder opened for layer-wise
 * execution.  config.json is parsed into SlimModelConfig, the weights are
 * memory-mapped (SlimSafetensors) and a layer's tensors are converted to
 * float32 only when slim_model_load_layer() is called; the caller drops
 * the layer when done, so the whole model is never resident.
 *
 * Activations of a batch of variable-length sequences are packed without
 * padding: a (n_tokens_total, hidden) float32 tensor plus SlimBatch, the
 * per-sequence lengths.  Attention is causal inside each sequence and
 * never crosses sequences, which is what a padded batch with an attention
 * mask computes.
 *
 * One adapter per architecture family lives in framework/model/adapters/.
 */
#pragma once

#include <glib-object.h>
#include "slim-forward-hooks.h"
#include "slim-layer.h"
#include "slim-model-config.h"
#include "slim-progress.h"
#include "slim-safetensors.h"
#include "slim-subgraph.h"
#include "slim-tensor.h"

G_BEGIN_DECLS

#define SLIM_TYPE_MODEL (slim_model_get_type ())
G_DECLARE_FINAL_TYPE (SlimModel, slim_model, SLIM, MODEL, GObject)

/* Opens dir: config.json (or its text_config), weights (single or
 * sharded). Checks every tensor the architecture needs exists with the
 * right shape before returning. Errors name the file and field. */
SlimModel *slim_model_open (const char *dir, GError **error);
const char *slim_model_get_path (SlimModel *self);
const SlimModelConfig *slim_model_get_config (SlimModel *self);
SlimSafetensors *slim_model_get_weights (SlimModel *self); /* transfer none */
guint slim_model_get_n_layers (SlimModel *self);
/* "model.layers.3": the prefix of decoder layer @index's tensors and
 * modules (what slim_layer_get_prefix gives once it is loaded), without
 * reading any weight.  transfer full. */
char *slim_model_dup_layer_prefix (SlimModel *self, guint index);

/* Weights of decoder layer i as float32 tensors with full HF names. */
SlimLayer *slim_model_load_layer (SlimModel *self, guint index, GError **error);
/* Pseudo-layers: embed_tokens; final norm + lm_head (lm_head.weight is
 * present even when tied, as a share of the embedding). */
SlimLayer *slim_model_load_embed (SlimModel *self, GError **error);
SlimLayer *slim_model_load_head (SlimModel *self, GError **error);

/* ids (n_tokens) -> hidden (n_tokens, hidden). Ids out of range are an error. */
SlimTensor *slim_model_embed (SlimModel *self, SlimLayer *embed, const gint32 *ids, gint64 n_tokens,
                              GError **error);
/* One decoder layer on packed hidden states (n_tokens, hidden); returns
 * a new tensor (n_tokens, hidden). */
SlimTensor *slim_model_forward_layer (SlimModel *self, SlimLayer *layer, SlimTensor *hidden,
                                      const SlimBatch *batch, const SlimForwardHooks *hooks,
                                      GError **error);
/* Final norm and lm_head: hidden (n_tokens, hidden) -> logits (n_tokens, vocab). */
SlimTensor *slim_model_forward_head (SlimModel *self, SlimLayer *head, SlimTensor *hidden,
                                     const SlimForwardHooks *hooks, GError **error);
/* Convenience: full forward, loading one layer at a time.
 * ids packed (n_tokens) -> logits (n_tokens, vocab). */
SlimTensor *slim_model_forward_logits (SlimModel *self, const gint32 *ids, const SlimBatch *batch,
                                       GError **error);
/* The same with hooks (nullable) seen by every layer and the head, and a
 * progress line (nullable) counting n_layers + 2 steps: the embedding,
 * each decoder layer, the head. */
SlimTensor *slim_model_forward_logits_full (SlimModel *self,
                                            const gint32 *ids,
                                            const SlimBatch *batch,
                                            const SlimForwardHooks *hooks,
                                            SlimProgress *progress,
                                            GError **error);

/* One module of a decoder layer on its own input x (n_tokens, n_in), one
 * sequence, current weights, no hooks: a linear, "<prefix>.self_attn" (x
 * input-normed) or "<prefix>.mlp" (x post-attention-normed).  Returns
 * out (n_tokens, n_out), or NULL with an error. */
SlimTensor *slim_model_forward_module (SlimModel *self,
                                       SlimLayer *layer,
                                       const char *module,
                                       const float *x,
                                       gint64 n_tokens,
                                       gint64 n_in,
                                       GError **error);

/* Structure of decoder layer i (transfer full array of SlimSubgraph*, with
 * free func set). */
GPtrArray *slim_model_get_subgraphs (SlimModel *self, guint index);

G_END_DECLS
