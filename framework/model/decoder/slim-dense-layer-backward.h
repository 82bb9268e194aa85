/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-dense-layer-backward.h: one dense Llama-family decoder layer
 * (llama, mistral, qwen2, qwen3) as a differentiable function of its
 * input and weights:
 *   n1 = input_layernorm(x)
 *   h  = x + o_proj(attention(rope(qk_norm(q_proj(n1))), rope(qk_norm(k_proj(n1))), v_proj(n1)))
 *   n2 = post_attention_layernorm(h)
 *   y  = h + down_proj(silu(gate_proj(n2)) * up_proj(n2))
 * slim_dense_layer_forward() runs it with the kernels and in the order of
 * slim_model_forward_layer() (the same float32 result, bit for bit) and
 * keeps the activations the backward needs in a SlimDenseLayerTape;
 * slim_dense_layer_backward() turns dL/dy into dL/d(every weight) and
 * dL/dx.  The weights are plain pointers so a caller may differentiate at
 * weights of its own (e.g. fake-quantized ones, for learned rounding).
 * No forward hooks; a linear may instead fake-quantize its input per token
 * (dynamic, as a deployed W8A8_DYNAMIC / W4A8_DYNAMIC linear does through
 * slim_qlinear_apply_act), with a straight-through backward: dL/dW uses
 * the quantized input, dL/d(input) passes the quantizer unchanged.
 */
#pragma once

#include "slim-decoder.h"
#include "slim-qparams.h"

G_BEGIN_DECLS

typedef struct
{
  const float *weight;          /* (n_out, n_in) */
  const float *bias;            /* (n_out), nullable */
  const SlimQParamsConfig *act; /* nullable: float input; else per-token dynamic
                                 * fake quantization of the input (straight-through) */
} SlimLinearWeights;

/* The weights of a dense layer; norm biases are nullable (only processors
 * that shift norms add them), q_norm / k_norm are set iff config->qk_norm. */
typedef struct
{
  const float *input_norm;      /* (hidden) */
  const float *input_norm_bias; /* (hidden), nullable */
  const float *post_norm;       /* (hidden) */
  const float *post_norm_bias;  /* (hidden), nullable */
  const float *q_norm;          /* (head_dim), qwen3 */
  const float *k_norm;          /* (head_dim), qwen3 */
  SlimLinearWeights q;          /* (n_heads * head_dim, hidden) */
  SlimLinearWeights k;          /* (n_kv_heads * head_dim, hidden) */
  SlimLinearWeights v;          /* (n_kv_heads * head_dim, hidden) */
  SlimLinearWeights o;          /* (hidden, n_heads * head_dim) */
  SlimLinearWeights gate;       /* (intermediate, hidden) */
  SlimLinearWeights up;         /* (intermediate, hidden) */
  SlimLinearWeights down;       /* (hidden, intermediate) */
} SlimDenseLayerWeights;

/* Fills weights with the tensors of layer (float32, shapes checked against
 * config); the pointers borrow from layer.  FALSE + error on a missing or
 * misshapen tensor or when config describes a mixture-of-experts layer. */
gboolean slim_dense_layer_weights_init (SlimDenseLayerWeights *weights,
                                        const SlimModelConfig *config,
                                        SlimLayer *layer,
                                        GError **error);

typedef struct
{
  float *weight; /* (n_out, n_in), nullable: not wanted */
  float *bias;   /* (n_out), nullable */
} SlimLinearGrads;

/* Where slim_dense_layer_backward() puts the gradients: input is written,
 * every other member is accumulated (+=); any member may be NULL. */
typedef struct
{
  float *input;           /* (n_tokens, hidden) */
  float *input_norm;      /* (hidden) */
  float *input_norm_bias; /* (hidden) */
  float *post_norm;       /* (hidden) */
  float *post_norm_bias;  /* (hidden) */
  float *q_norm;          /* (head_dim) */
  float *k_norm;          /* (head_dim) */
  SlimLinearGrads q, k, v, o, gate, up, down;
} SlimDenseLayerGrads;

/* The activations of one forward, T = n_tokens, Q = n_heads * head_dim,
 * KV = n_kv_heads * head_dim, H = hidden, I = intermediate:
 * T (4 H + 2 Q + 2 KV + 3 I) floats, plus T (Q + KV) with qk_norm, plus
 * each fake-quantized linear input (T n_in for each linear with act). */
typedef struct
{
  gint64 n_tokens;
  SlimBatch batch; /* seq_lens borrowed from the forward's batch */
  const float *x;  /* (T, H) borrowed: the layer input */
  float *n1;       /* (T, H) input_layernorm(x) */
  float *q_raw;    /* (T, Q) q_proj(n1) before q_norm; NULL without qk_norm */
  float *k_raw;    /* (T, KV) k_proj(n1) before k_norm; NULL without qk_norm */
  float *q;        /* (T, Q) after q_norm and RoPE */
  float *k;        /* (T, KV) after k_norm and RoPE */
  float *v;        /* (T, KV) */
  float *context;  /* (T, Q) attention output, o_proj's input */
  float *h;        /* (T, H) x + o_proj(context) */
  float *n2;       /* (T, H) post_attention_layernorm(h) */
  float *gate;     /* (T, I) gate_proj(n2), before SiLU */
  float *up;       /* (T, I) up_proj(n2) */
  float *act;      /* (T, I) silu(gate) * up, down_proj's input */
  float *y;        /* (T, H) the layer output */
  /* The fake-quantized inputs of the linears with act (NULL for the
   * others, which read n1, context, n2 or act): */
  float *q_in, *k_in, *v_in; /* (T, H) */
  float *o_in;               /* (T, Q) */
  float *gate_in, *up_in;    /* (T, H) */
  float *down_in;            /* (T, I) */
  gint64 *positions;         /* (T) */
  SlimRopeTable rope;
} SlimDenseLayerTape;

/* Runs the layer on x (n_tokens, hidden), the sequences of batch packed
 * (a batch slim_model_forward_layer() accepts: lengths >= 0); tape
 * receives the activations and the output (tape->y).  The tape must be
 * zero-initialised or cleared; batch->seq_lens and x must outlive it. */
void slim_dense_layer_forward (const SlimModelConfig *config,
                               const SlimDenseLayerWeights *weights,
                               const SlimBatch *batch,
                               const float *x,
                               SlimDenseLayerTape *tape);

void slim_dense_layer_tape_clear (SlimDenseLayerTape *tape);

/* Given dy = dL/dy (n_tokens, hidden) of the forward recorded in tape (run
 * with the same config and weights), the gradients into grads.  Scratch
 * besides the tape: T (2 H + 3 I + 2 Q + 2 KV) floats and two blocks of
 * attention scores. */
void slim_dense_layer_backward (const SlimModelConfig *config,
                                const SlimDenseLayerWeights *weights,
                                const SlimDenseLayerTape *tape,
                                const float *dy,
                                const SlimDenseLayerGrads *grads);

G_END_DECLS
