/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-decoder-backward.h: reverse-mode gradients of the decoder kernels
 * of slim-decoder.h, as pure functions on float32 buffers.  Each one is
 * the exact adjoint of its forward (same float32 softmax, the same RMSNorm
 * statistics, the same RoPE table), so a learned-rounding processor can
 * push dL/d(output) of a layer back to every linear's weight.
 *
 * Conventions (all buffers row-major, packed tokens as in slim-decoder.h):
 *  - gradients with respect to an op's inputs (dx, dq, dgate, ...) are
 *    written (overwritten), unless a function says it accumulates;
 *  - gradients with respect to parameters (dweight, dbias, dgain) are
 *    accumulated (+=), so a caller sums over batches by not clearing them;
 *  - every nullable output is skipped when NULL.
 * Every matrix product goes through slim-linalg (OpenBLAS); the functions
 * with a _ref twin are checked against it, and all of them against finite
 * differences of a float64 forward (tests/framework/test-decoder-backward.cpp).
 */
#pragma once

#include "slim-decoder.h"

G_BEGIN_DECLS

/* y = x Wᵀ + b with x (n_rows, n_in), W (n_out, n_in), dy (n_rows, n_out):
 * dx (n_rows, n_in) = dy W (added to dx when accumulate_dx, else written),
 * dweight (n_out, n_in) += dyᵀ x, dbias (n_out) += column sums of dy. */
void slim_backward_linear (const float *x,
                           const float *weight,
                           const float *dy,
                           gint64 n_rows,
                           gint64 n_in,
                           gint64 n_out,
                           float *dx,
                           gboolean accumulate_dx,
                           float *dweight,
                           float *dbias);
/* The same in plain loops with double accumulators (test oracle). */
void slim_backward_linear_ref (const float *x,
                               const float *weight,
                               const float *dy,
                               gint64 n_rows,
                               gint64 n_in,
                               gint64 n_out,
                               float *dx,
                               gboolean accumulate_dx,
                               float *dweight,
                               float *dbias);

/* y = x * rsqrt(mean(x^2) + eps) * weight [+ bias] (slim_decoder_rmsnorm)
 * with x, dy (n_rows, n): dx (n_rows, n) written (dx may equal dy),
 * dweight (n) += Σ_rows dy * x * r, dbias (n) += Σ_rows dy. */
void slim_backward_rmsnorm (const float *x,
                            const float *weight,
                            float eps,
                            const float *dy,
                            float *dx,
                            float *dweight,
                            float *dbias,
                            gint64 n_rows,
                            gint64 n);

/* out = silu(gate) * up (slim_decoder_silu_mul) with gate, up, dout (n):
 * dgate, dup (n) written; dgate may equal dout. */
void slim_backward_silu_mul (
    const float *gate, const float *up, const float *dout, float *dgate, float *dup, gsize n);

/* The adjoint of slim_decoder_rope_apply: in place on dx (n_tokens,
 * n_heads * head_dim), each pair (j, j + half) rotated by minus the angle
 * (the transpose of the rotation). */
void slim_backward_rope (const SlimRopeTable *table,
                         float *dx,
                         gint64 n_tokens,
                         gint64 n_heads,
                         const gint64 *positions /* (n_tokens) */);

/* Elements of scratch slim_backward_attention() needs for batch. */
gsize slim_backward_attention_scratch_n_elements (const SlimBatch *batch);

/* The adjoint of slim_decoder_attention (causal GQA inside each sequence
 * of the packed batch: a query sees the keys of its own sequence up to
 * itself, within the sliding window; the sequence boundaries are the
 * padding mask).  q (n_tokens, n_heads * head_dim), k, v (n_tokens,
 * n_kv_heads * head_dim), dout (n_tokens, n_heads * head_dim) ->
 * dq (n_tokens, n_heads * head_dim), dk, dv (n_tokens, n_kv_heads *
 * head_dim), all written.  The probabilities are recomputed per block of
 * query rows (nothing of size n_tokens² is kept); six sgemms per block:
 * S = scale Q Kᵀ, dP = dO Vᵀ, dV += Pᵀ dO, dQ = scale dS K,
 * dK += scale dSᵀ Q, with dS = P (dP - rowsum(P dP)). */
void slim_backward_attention (const SlimAttentionShape *shape,
                              const SlimBatch *batch,
                              const float *q,
                              const float *k,
                              const float *v,
                              const float *dout,
                              float *dq,
                              float *dk,
                              float *dv,
                              float *scratch);
/* The same in plain loops with double accumulators (test oracle). */
void slim_backward_attention_ref (const SlimAttentionShape *shape,
                                  const SlimBatch *batch,
                                  const float *q,
                                  const float *k,
                                  const float *v,
                                  const float *dout,
                                  float *dq,
                                  float *dk,
                                  float *dv);

/* Residual y = x + f(x): the gradient reaching x is dy plus f's; this adds
 * src (n) into dst (n). */
void slim_backward_add (float *dst, const float *src, gsize n);

G_END_DECLS
