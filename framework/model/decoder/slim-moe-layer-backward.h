/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-moe-layer-backward.h: one mixture-of-experts decoder layer
 * (mixtral, qwen2_moe with its shared expert, qwen3_moe) as a
 * differentiable function of its input and weights, as slim-moe.c's
 * forward computes it:
 *   n1 = input_layernorm(x)
 *   h  = x + o_proj(attention(...))             (slim-dense-layer-backward.h)
 *   n2 = post_attention_layernorm(h)
 *   p  = softmax(router(n2)) per token; the top_k experts of each token
 *        (descending, lower index on ties) and their weights w = p, divided
 *        by their sum when config->norm_topk_prob
 *   y  = h + sum over chosen e of w_e * expert_e(n2)
 *          [+ sigmoid(shared_expert_gate(n2)) * shared_expert(n2)]
 * with expert_e = down(silu(gate(x)) * up(x)).  The top-k choice is
 * piecewise constant: the backward differentiates at the recorded choice
 * (gradients reach the router through the chosen experts' weights, as
 * PyTorch's autograd does through torch.topk's values).
 *
 * The attention half is slim_dense_layer_forward()/backward() on a copy of
 * the config whose MLP is one unit wide with zero weights: its output is h
 * exactly (0 * finite is 0) and its MLP gradient exactly 0.
 *
 * Linears are indexed 0 .. slim_moe_layer_n_linears() - 1:
 *   0 q_proj, 1 k_proj, 2 v_proj, 3 o_proj, 4 the router,
 *   5 + 3 e + {0, 1, 2}: expert e's gate, up, down,
 *   then, with a shared expert, its gate, up, down and shared_expert_gate.
 */
#pragma once

#include "slim-dense-layer-backward.h"

G_BEGIN_DECLS

#define SLIM_MOE_LINEAR_ROUTER 4
#define SLIM_MOE_LINEAR_FIRST_EXPERT 5

/* Linears of a MoE layer of config (the layout above). */
gint64 slim_moe_layer_n_linears (const SlimModelConfig *config);
/* Module name of linear i under the layer prefix ("self_attn.q_proj",
 * "block_sparse_moe.experts.3.w1", "mlp.shared_expert_gate"); (transfer full). */
char *slim_moe_layer_linear_name (const SlimModelConfig *config, gint64 i);
/* (n_out, n_in) of linear i. */
void
slim_moe_layer_linear_shape (const SlimModelConfig *config, gint64 i, gint64 *n_out, gint64 *n_in);

typedef struct
{
  const float *input_norm;      /* (hidden) */
  const float *input_norm_bias; /* (hidden), nullable */
  const float *post_norm;       /* (hidden) */
  const float *post_norm_bias;  /* (hidden), nullable */
  const float *q_norm;          /* (head_dim), qwen3_moe */
  const float *k_norm;          /* (head_dim), qwen3_moe */
  gint64 n_linears;
  SlimLinearWeights *linears; /* [n_linears] owned array, pointers borrowed */
  float *zero;                /* (hidden) owned zeros: the attention half's MLP */
} SlimMoeLayerWeights;

/* Fills weights from layer (a MoE layer of config; float32, shapes
 * checked).  FALSE + error on a missing tensor, a dense layer or an online
 * rotation.  Free with slim_moe_layer_weights_clear(). */
gboolean slim_moe_layer_weights_init (SlimMoeLayerWeights *weights,
                                      const SlimModelConfig *config,
                                      SlimLayer *layer,
                                      GError **error);
void slim_moe_layer_weights_clear (SlimMoeLayerWeights *weights);

/* Gradients: input written, the others accumulated; any may be NULL;
 * linears [n_linears] (nullable) indexed as above. */
typedef struct
{
  float *input;           /* (T, H) */
  float *input_norm;      /* (H) */
  float *input_norm_bias; /* (H) */
  float *post_norm;       /* (H) */
  float *post_norm_bias;  /* (H) */
  float *q_norm;          /* (head_dim) */
  float *k_norm;          /* (head_dim) */
  SlimLinearGrads *linears;
} SlimMoeLayerGrads;

/* The activations of one SwiGLU block (an expert on its rows, or the
 * shared expert on every token), R rows, width I. */
typedef struct
{
  gint64 n_rows;
  float *x;               /* (R, H) its input (gathered rows of n2) */
  float *gate_in, *up_in; /* (R, H) fake-quantized inputs, or NULL */
  float *gate, *up, *act; /* (R, I) */
  float *down_in;         /* (R, I) fake-quantized act, or NULL */
  float *y;               /* (R, H) the block's output */
  gint64 *rows;           /* (R) token of each row (experts) */
  float *row_w;           /* (R) its routing weight */
  gint32 *slot;           /* (R) its rank in the token's top_k */
} SlimMoeSwigluTape;

typedef struct
{
  SlimModelConfig attn_config; /* the config with the 1-wide MLP */
  SlimDenseLayerTape attn;     /* h = attn.y, n2 = attn.n2 */
  gint64 n_tokens;
  float *router_in;           /* (T, H) fake-quantized n2 for the router, or NULL */
  float *probs;               /* (T, E) router softmax */
  gint32 *chosen;             /* (T, K) */
  float *weights;             /* (T, K) routing weights */
  SlimMoeSwigluTape *experts; /* [E] */
  SlimMoeSwigluTape shared;   /* n_rows 0 without a shared expert */
  float *shared_gate_in;      /* (T, H) or NULL */
  float *shared_logit;        /* (T) shared_expert_gate(n2) */
  float *y;                   /* (T, H) the layer output */
} SlimMoeLayerTape;

/* The layer on x (n_tokens, hidden) packed as batch; the same float32
 * result as slim_model_forward_layer() (bit for bit).  Tape zeroed or
 * cleared; batch->seq_lens and x outlive it. */
void slim_moe_layer_forward (const SlimModelConfig *config,
                             const SlimMoeLayerWeights *weights,
                             const SlimBatch *batch,
                             const float *x,
                             SlimMoeLayerTape *tape);
void slim_moe_layer_tape_clear (SlimMoeLayerTape *tape);

void slim_moe_layer_backward (const SlimModelConfig *config,
                              const SlimMoeLayerWeights *weights,
                              const SlimMoeLayerTape *tape,
                              const float *dy, /* (T, H) */
                              const SlimMoeLayerGrads *grads);

/* ---- the new ops ------------------------------------------------------- */

/* Backward of slim_decoder_route_topk at its recorded choice: probs (T, E)
 * the softmax, chosen (T, K), weights (T, K) its output, dweights (T, K)
 * dL/dweights -> dlogits (T, E) dL/d(router logits) (written). */
void slim_moe_route_backward (const float *probs,
                              const gint32 *chosen,
                              const float *weights,
                              const float *dweights,
                              gint64 n_tokens,
                              gint64 n_experts,
                              gint64 top_k,
                              gboolean normalize,
                              float *dlogits);

/* out_t += sigmoid(logit_t) * y_t (n_tokens, n) and its backward: given
 * dout, dy (written) = sigmoid(logit) dout, dlogit (written) =
 * s (1 - s) <dout_t, y_t>. */
void slim_moe_sigmoid_gate_forward (
    const float *logit, const float *y, gint64 n_tokens, gint64 n, float *out);
void slim_moe_sigmoid_gate_backward (const float *logit,
                                     const float *y,
                                     const float *dout,
                                     gint64 n_tokens,
                                     gint64 n,
                                     float *dy,
                                     float *dlogit);

G_END_DECLS
