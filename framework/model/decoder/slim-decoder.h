/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-decoder.h: the pieces every Llama-family decoder layer is made of,
 * as plain kernels on float32 buffers (no GObject inside a loop) plus the
 * helpers that run a named linear or a SwiGLU block from a SlimLayer with
 * the forward hooks.  Numerics follow Hugging Face transformers in
 * float32: RMSNorm x * rsqrt(mean(x^2) + eps) * w, rotate-half RoPE with
 * inv_freq = 1 / theta^(2i/d) computed in float32, softmax with the max
 * subtracted, SiLU x / (1 + exp(-x)).
 *
 * Activations are packed: the tokens of all sequences one after another,
 * (n_tokens, width) row-major, with a SlimBatch of sequence lengths.
 */
#pragma once

#include "slim-forward-hooks.h"
#include "slim-layer.h"
#include "slim-model-config.h"

G_BEGIN_DECLS

/* y (n_rows, n) = x (n_rows, n) * rsqrt(mean(x^2) + eps) * weight (n)
 * [+ bias (n), nullable: RMSNorm with a bias, as smoothing shifts make].
 * y may equal x. */
void slim_decoder_rmsnorm (const float *x,
                           const float *weight,
                           const float *bias,
                           float eps,
                           float *y,
                           gint64 n_rows,
                           gint64 n);

/* The norm module of layer ("model.layers.3.input_layernorm": its weight,
 * and its bias when a processor added one) applied to x (n_rows, n) -> y
 * (y may equal x). */
gboolean slim_decoder_norm (SlimLayer *layer,
                            const char *norm,
                            const float *x,
                            float *y,
                            gint64 n_rows,
                            gint64 n,
                            float eps,
                            GError **error);

/* inv_freq (head_dim / 2) for the config's RoPE (none, linear, llama3). */
void slim_decoder_rope_inv_freq (const SlimModelConfig *config, float *inv_freq);

/* cos and sin of position * inv_freq, (n_positions, half) row-major each. */
typedef struct
{
  gint64 n_positions;
  gint64 half; /* head_dim / 2 */
  float *cos;  /* (n_positions, half) */
  float *sin;  /* (n_positions, half) */
} SlimRopeTable;

void slim_rope_table_init (SlimRopeTable *table, const SlimModelConfig *config, gint64 n_positions);
void slim_rope_table_clear (SlimRopeTable *table);

/* In place on x (n_tokens, n_heads * head_dim): the pairs (j, j + half) of
 * each head rotated by the angle of the token's position. */
void slim_decoder_rope_apply (const SlimRopeTable *table,
                              float *x,
                              gint64 n_tokens,
                              gint64 n_heads,
                              const gint64 *positions /* (n_tokens) */);

/* Positions within each sequence: (n_tokens) = 0..len-1 per sequence. */
void slim_decoder_fill_positions (const SlimBatch *batch, gint64 *positions);

/* gate (n) <- silu(gate) * up (n). */
void slim_decoder_silu_mul (float *gate, const float *up, gsize n);

/* Attention geometry. */
typedef struct
{
  gint64 n_heads;
  gint64 n_kv_heads;
  gint64 head_dim;
  gint64 sliding_window; /* 0: none */
  float scale;           /* 1 / sqrt(head_dim) */
} SlimAttentionShape;

/* Softmax of row (n_keys) over its visible keys first_visible ..
 * first_visible + n_visible - 1 (max subtracted, float32 exp, double sum);
 * the other keys get probability 0: the causal / window / sequence mask. */
void
slim_decoder_softmax_visible (float *row, gint64 n_keys, gint64 first_visible, gint64 n_visible);

/* Elements of scratch slim_decoder_attention() needs for batch. */
gsize slim_decoder_attention_scratch_n_elements (const SlimBatch *batch);

/* Causal GQA attention inside each sequence of the packed batch:
 * q (n_tokens, n_heads * head_dim), k, v (n_tokens, n_kv_heads * head_dim)
 * -> out (n_tokens, n_heads * head_dim).  Two sgemms per block of query
 * rows per head (Q Kᵀ, then P V); scratch from the function above. */
void slim_decoder_attention (const SlimAttentionShape *shape,
                             const SlimBatch *batch,
                             const float *q,
                             const float *k,
                             const float *v,
                             float *out,
                             float *scratch);
/* The same in plain loops (test oracle). */
void slim_decoder_attention_ref (const SlimAttentionShape *shape,
                                 const SlimBatch *batch,
                                 const float *q,
                                 const float *k,
                                 const float *v,
                                 float *out);

/* Router: probs (n_tokens, n_experts) are softmaxed per row in place; for
 * each token the top_k experts (descending, lower index on ties) go to
 * experts (n_tokens, top_k) and their probabilities to weights (n_tokens,
 * top_k), divided by their sum when normalize. */
void slim_decoder_route_topk (float *probs,
                              gint64 n_tokens,
                              gint64 n_experts,
                              gint64 top_k,
                              gboolean normalize,
                              gint32 *experts,
                              float *weights);

/* FLOPs (multiply + add = 2) the attention of a causal batch needs:
 * Q Kᵀ and P V over the visible keys. */
double slim_decoder_attention_flops (const SlimAttentionShape *shape, const SlimBatch *batch);

/* ---- running named modules of a layer ---------------------------------- */

/* weight (n_out, n_in) float32 of module in layer, checked; NULL + error. */
const float *slim_decoder_get_weight (SlimLayer *layer,
                                      const char *module,
                                      gint64 n_out,
                                      gint64 n_in,
                                      const float **out_bias /* nullable result */,
                                      GError **error);
/* A 1-D float32 tensor "name" of n elements. */
const float *slim_decoder_get_vector (SlimLayer *layer, const char *name, gint64 n, GError **error);

/* y (n_tokens, n_out) = module(x (n_tokens, n_in)); the linear_input hook
 * sees a private copy of x (x is left unchanged); the linear_forward hook,
 * when it computes the output (an integer product), replaces the float one. */
gboolean slim_decoder_linear (SlimLayer *layer,
                              const char *module,
                              const float *x,
                              gint64 n_tokens,
                              gint64 n_in,
                              gint64 n_out,
                              float *y,
                              const SlimForwardHooks *hooks,
                              GError **error);
/* The same when x is private to this linear (the hook may change it in place). */
gboolean slim_decoder_linear_private (SlimLayer *layer,
                                      const char *module,
                                      float *x,
                                      gint64 n_tokens,
                                      gint64 n_in,
                                      gint64 n_out,
                                      float *y,
                                      const SlimForwardHooks *hooks,
                                      GError **error);

/* QuaRot's online rotations (slim-online-rotation.h) travel with the
 * layer as tensors: <module>.heads_rotation (n_heads, n_heads) and
 * <module>.kronecker_rotation_m / _n, or <module>.hadamard_rotation (the
 * base had_k of the full Hadamard rotation).  Both linear functions above rotate
 * the input with them first, before any hook (they are part of the model
 * as deployed), so every forward of such a layer, float or quantized,
 * sees the rotated input.  has: TRUE when module has one; apply: x
 * (n_tokens, n_in) rotated in place (shapes checked; nothing to do is
 * TRUE). */
gboolean slim_decoder_has_online_rotation (SlimLayer *layer, const char *module);
gboolean slim_decoder_apply_online_rotation (
    SlimLayer *layer, const char *module, float *x, gint64 n_tokens, gint64 n_in, GError **error);

/* down(silu(gate(x)) * up(x)): x (n_tokens, hidden) -> out (n_tokens,
 * hidden).  Module names prefix + "." + gate / up / down. */
gboolean slim_decoder_swiglu (SlimLayer *layer,
                              const char *prefix,
                              const char *gate,
                              const char *up,
                              const char *down,
                              const float *x,
                              gint64 n_tokens,
                              gint64 hidden,
                              gint64 intermediate,
                              float *out,
                              const SlimForwardHooks *hooks,
                              GError **error);

/* The attention tensors and linear names of a decoder layer (q, k, v, o;
 * q_norm/k_norm; biases), and its two norms. */
void slim_decoder_describe_attention (const SlimModelConfig *config,
                                      const char *prefix,
                                      GArray *specs,
                                      GPtrArray *linear_names);

/* Self-attention block: x (n_tokens, hidden) input-normed -> out
 * (n_tokens, hidden) = o_proj(attention(rope(q), rope(k), v)). */
gboolean slim_decoder_forward_attention (const SlimModelConfig *config,
                                         SlimLayer *layer,
                                         const SlimRopeTable *rope,
                                         const gint64 *positions,
                                         const SlimBatch *batch,
                                         const float *x,
                                         float *out,
                                         const SlimForwardHooks *hooks,
                                         GError **error);

G_END_DECLS
