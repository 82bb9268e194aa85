/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-forward-hooks.h: what a forward pass is given besides weights and
 * activations: SlimBatch, the sequence lengths of a packed batch (the
 * tokens of all sequences one after another, no padding), and
 * SlimForwardHooks, the callbacks processors use to observe or replace
 * the inputs of linears and the q/k/v states.  Plain records, used by the
 * decoder kernels, the adapters and SlimModel.
 */
#pragma once

#include <glib.h>
#include "slim-model-config.h"

G_BEGIN_DECLS

/* Sequence lengths of a packed batch. */
typedef struct
{
  guint n_seqs;
  const gint64 *seq_lens; /* (n_seqs) */
} SlimBatch;

/* Forward hooks: called during slim_model_forward_layer/_head to observe or
 * replace values.  Any member may be NULL.  A hook returning FALSE must set
 * error; the forward stops and returns FALSE. */
typedef struct
{
  /* Before every linear (experts and the router included) with its input
   * x (n_tokens, n_in) row-major; module is the full name
   * ("model.layers.3.mlp.experts.2.up_proj"). x is private to this linear:
   * the hook may modify it in place (e.g. fake-quantize it). */
  gboolean (*linear_input) (const char *module,
                            float *x,
                            gint64 n_tokens,
                            gint64 n_in,
                            gpointer user_data,
                            GError **error);
  /* After q/k/v projections (and q/k norm and RoPE on q,k), per layer:
   * q (n_tokens, n_heads*head_dim), k and v (n_tokens, n_kv_heads*head_dim).
   * May modify in place (KV-cache quantization). attn is
   * "model.layers.3.self_attn". */
  gboolean (*qkv_states) (const char *attn,
                          float *q,
                          float *k,
                          float *v,
                          gint64 n_tokens,
                          const SlimModelConfig *config,
                          gpointer user_data,
                          GError **error);
  gpointer user_data;
  /* After linear_input, in place of the float product y = x W^T + b
   * with the layer's float32 weight: a hook that computes the linear's
   * output itself (the integer product of a W8A8 linear,
   * slim-int-linear.h) fills y (n_tokens, n_out), bias included, and sets
   * *done; leaving *done FALSE (its value on entry) lets the forward
   * compute the float product.  Last in the struct so that positional
   * initializers { linear_input, qkv_states, user_data } keep working. */
  gboolean (*linear_forward) (const char *module,
                              const float *x,
                              gint64 n_tokens,
                              gint64 n_in,
                              gint64 n_out,
                              float *y,
                              gboolean *done,
                              gpointer user_data,
                              GError **error);
  /* Before a decoder layer runs (slim_model_forward_layer), with its input
   * x (n_tokens, hidden) row-major, the sequences of batch packed; layer
   * is the layer's prefix ("model.layers.3").  Observe only (x is the
   * caller's): processors that train on a layer's inputs keep a copy
   * (autoround_quant).  Last in the struct, after linear_forward, for the
   * same reason. */
  gboolean (*layer_input) (const char *layer,
                           const float *x,
                           gint64 n_tokens,
                           gint64 hidden,
                           const SlimBatch *batch,
                           gpointer user_data,
                           GError **error);
} SlimForwardHooks;

G_END_DECLS
