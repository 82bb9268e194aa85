/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-adapt-rotation.h: adapt_rotation's iterative rotation learning
 * (modelslim-v1-spec.md 2.16; msModelSlim processor/adapt_rotation/
 * iterative_hadamard_optimization.py HadamardOptimizer), float32:
 *
 *   T = A H                     A (n, d) the collected activation rows,
 *                               H (d, d) the Hadamard start
 *   R_acc = I
 *   step s = 1..steps:
 *     P = T R_acc,  B = qdq(P)  per-row (per-token) symmetric quantize-
 *                               dequantize, int4 or int8, scale >= 1e-5
 *     R_step = polar(P^T B)     Newton-Schulz: X = C / (||C||_F + 1e-12),
 *                               100 times X <- X (3I - X^T X) / 2
 *     R_acc <- R_acc R_step     (orthogonal Procrustes: R_step minimizes
 *                               ||P R - B||_F over orthogonal R)
 *     loss = ||P R_step - qdq(P R_step)||_F / (n d)
 *     the best R_acc is kept; stop after `patience` (5) steps without a
 *     better loss once `min_steps` (6) steps are done
 *   result H R_best
 *
 * Every product is an OpenBLAS sgemm; slim_newton_schulz_polar_ref() is
 * the plain-loop twin of the Newton-Schulz step.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_ADAPT_ROTATION_NS_ITERS 100
#define SLIM_ADAPT_ROTATION_SCALE_MIN 1e-5f

typedef struct
{
  guint bits;      /* 4 or 8 */
  guint steps;     /* >= 1 */
  guint patience;  /* msModelSlim: 5 */
  guint min_steps; /* msModelSlim: 6 */
} SlimAdaptRotationConfig;

/* cfg with msModelSlim's defaults for bits and steps. */
void slim_adapt_rotation_config_init (SlimAdaptRotationConfig *cfg, guint bits, guint steps);

/**
 * slim_newton_schulz_polar:
 * @c: (d, d) row-major
 * @d: order
 * @iters: iterations
 * @out: (d, d) the polar factor estimate; may not alias @c
 */
void slim_newton_schulz_polar (const float *c, gint64 d, guint iters, float *out);
void slim_newton_schulz_polar_ref (const float *c, gint64 d, guint iters, float *out);

/* x (n, d) -> out (n, d): per-row symmetric minmax quantize-dequantize with
 * scale max(|min|, |max|) / (2^(bits-1) - 1) clamped to >= 1e-5; out may
 * alias x. */
void slim_adapt_rotation_qdq_rows (guint bits, const float *x, gint64 n, gint64 d, float *out);

/* max over (i, j) of |(R^T R - I)[i, j]| for r (d, d). */
double slim_orthogonality_error (const float *r, gint64 d);

/* The row indices msModelSlim samples from total rows down to max:
 * torch.linspace(0, total - 1, max).long() in float32; out (max). */
void slim_adapt_rotation_sample_rows (gint64 total, gint64 max, gint64 *out);

/**
 * slim_adapt_rotation_optimize:
 * @cfg: bits, steps, early stopping
 * @acts: (n, d) activation rows
 * @n: rows (>= 1)
 * @d: order of @h
 * @h: (d, d) the start rotation
 * @out: (d, d) H R_best
 * @out_steps: (out) (optional): steps run
 * @out_loss: (out) (optional): the best loss
 */
void slim_adapt_rotation_optimize (const SlimAdaptRotationConfig *cfg,
                                   const float *acts,
                                   gint64 n,
                                   gint64 d,
                                   const float *h,
                                   float *out,
                                   guint *out_steps,
                                   double *out_loss);

G_END_DECLS
