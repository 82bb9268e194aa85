/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-admm.h: the numerics of float_sparse (modelslim-v1-spec.md 2.14;
 * msModelSlim processor/sparse/admm.py, AdmmPruner and quantize_l2), as
 * pure functions on plain buffers.  Three steps per linear:
 *
 * 1. Statistics (add_batch, once per calibration forward call of the linear
 *    with its input x, t rows; msModelSlim counts a call as one sample, the
 *    batch dimension of its (1, seq, hidden) inputs):
 *      H += xᵀ x                                       (float32, ssyrk)
 *      s := s * n / (n + 1);  n := n + 1;  s_j += ||x[:, j]||² / n
 *    i.e. H is the plain sum over every calibration row (no averaging, unlike
 *    GPTQ) and s ("scaler_row") the mean over calls of the per-call column
 *    sums of squares.
 *
 * 2. ADMM pruning of W (n_out, n_in) with ratio r (slim_admm_prune):
 *      d_j = sqrt (H_jj) + 1e-8;  Hn = D⁻¹ H D⁻¹ (H_ij / d_j / d_i);
 *      Wn = (W D)ᵀ  (n_in, n_out);
 *      rho0 = PERCDAMP * mean (diag Hn);  Hn += rho0 I;  B = Hn Wn;
 *      Hn += rho I (rho = 1);  Hinv = Hn⁻¹  (Cholesky through LAPACK:
 *      Hn is symmetric positive definite, every eigenvalue >= 1 + rho0);
 *      Λ = 0; for it in 0..ITERS-1:
 *        if it < ITERATIVE_PRUNE: mask = 0 on the k = floor (n_out n_in r)
 *          smallest |Wn + Λ| of the whole matrix (one budget per matrix, not
 *          per row; ties go to the lower index of Wn flattened (n_in, n_out)
 *          row-major, where torch.topk leaves them unspecified), 1 elsewhere
 *        Z = (Wn + Λ) ⊙ mask;  Λ += Wn − Z;  Wn = Hinv (B + rho (Z − Λ))
 *      W' = ((Wn + Λ) ⊙ mask)ᵀ D⁻¹.
 *    Exactly k weights are zero after this step (unless W' has other zeros).
 *
 * 3. Precision protection (slim_admm_protect), on W' cast to the model's
 *    weight dtype (msModelSlim assigns it back to the nn.Linear):
 *      every value is cast to IEEE half and quantized to a KEEP_BITS-bit
 *      mantissa (round half to even; magnitudes below the half normal range
 *      become 0, exponents -14..KEEP_BITS-11 keep one mantissa step: 1 or 2
 *      (> 1.5) times 2^e), except at the "kept" positions, which keep their
 *      half value (unless in that low exponent band, which is quantized
 *      anyway, as quantize_l2 does);
 *      kept = metric >= the (floor (n_out n_in KEEP_PROPORTION − 1) + 1)-th
 *      largest metric, metric_ij = |W'_ij − quantize (W'_ij)| sqrt (s_j)
 *      (the difference rounded to half for a float16 model, as torch
 *      subtracts two half tensors);
 *      the result (half values) is cast back to the weight dtype.
 *
 * The float32 kernels use OpenBLAS (ssyrk, sgemm) and LAPACK (spotrf,
 * spotri); the _ref twins are plain loops in float64 (own Cholesky
 * inverse, full sorts), used by the tests.  A non-finite input or Hessian
 * is an error, never NaN weights.
 */
#pragma once

#include <glib.h>

#include "slim-dtype.h"

G_BEGIN_DECLS

/* msModelSlim admm.py constants. */
#define SLIM_ADMM_PERCDAMP 0.1
#define SLIM_ADMM_RHO 1.0f
#define SLIM_ADMM_ITERS 20
#define SLIM_ADMM_ITERATIVE_PRUNE 15
#define SLIM_ADMM_KEEP_PROPORTION 0.02
#define SLIM_ADMM_KEEP_BITS 2

/* Calibration statistics of one linear's input. */
typedef struct
{
  gint64 n_in;       /* columns of the input = order of H */
  gint64 n_samples;  /* forward calls added (msModelSlim's nsamples) */
  gint64 n_rows;     /* input rows (tokens) added */
  float *hessian;    /* (n_in, n_in) row-major; the upper triangle (j >= i) is valid */
  float *scaler_row; /* (n_in) */
} SlimAdmmStats;

/* Zeros.  FALSE with SLIM_NUMERIC_ERROR_SHAPE_MISMATCH for n_in < 1 or too
 * large for BLAS, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY when H cannot be
 * allocated. */
gboolean slim_admm_stats_init (SlimAdmmStats *self, gint64 n_in, GError **error);
void slim_admm_stats_clear (SlimAdmmStats *self);
/* One forward call with n_rows rows (n_rows == 0 adds nothing, not even a
 * sample).  FALSE with SLIM_NUMERIC_ERROR_NON_FINITE for a NaN or infinite
 * element (the statistics are then unchanged). */
gboolean slim_admm_stats_add_batch (SlimAdmmStats *self,
                                    const float *x, /* (n_rows, n_in) row-major */
                                    gint64 n_rows,
                                    GError **error);
/* Plain-loop float64 twin (no checks): hessian (both triangles), scaler_row
 * and n_samples in and out. */
void slim_admm_stats_add_batch_ref (double *hessian,    /* (n_in, n_in) row-major */
                                    double *scaler_row, /* (n_in) */
                                    gint64 n_in,
                                    gint64 *n_samples,
                                    const float *x, /* (n_rows, n_in) row-major */
                                    gint64 n_rows);

/* floor (n_elements * ratio) as msModelSlim computes it (Python float). */
gint64 slim_admm_n_pruned (gint64 n_elements, double sparse_ratio);

/**
 * slim_admm_prune:
 * @stats: the linear's statistics (n_in == @n_in, at least one sample)
 * @w: (array): the weight, (n_out, n_in) row-major, finite
 * @sparse_ratio: in [0, 1]
 * @out_w: (out caller-allocates) (array): (n_out, n_in) row-major pruned
 *   weight (step 2); may be @w
 * @out_mask: (out caller-allocates) (array) (nullable): (n_out, n_in)
 *   row-major, 1 where the final mask keeps the weight
 *
 * Errors: SLIM_PIPELINE_ERROR_FAILED without samples;
 * SLIM_CONFIG_ERROR_BAD_VALUE for a ratio outside [0, 1];
 * SLIM_NUMERIC_ERROR_SHAPE_MISMATCH for other sizes;
 * SLIM_NUMERIC_ERROR_NON_FINITE for a non-finite weight, Hessian
 * (float32 overflow of xᵀx) or result; SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE
 * when the Cholesky inverse fails; SLIM_PIPELINE_ERROR_OUT_OF_MEMORY.
 *
 * Returns: %TRUE on success
 */
gboolean slim_admm_prune (const SlimAdmmStats *stats,
                          const float *w, /* (n_out, n_in) row-major */
                          gint64 n_out,
                          gint64 n_in,
                          double sparse_ratio,
                          float *out_w,     /* (n_out, n_in) row-major */
                          guint8 *out_mask, /* (n_out, n_in) row-major, nullable */
                          GError **error);
/* The same in plain float64 loops: hessian both triangles (n_in, n_in),
 * n_samples > 0.  Same errors. */
gboolean slim_admm_prune_ref (const double *hessian, /* (n_in, n_in) row-major */
                              gint64 n_samples,
                              const float *w, /* (n_out, n_in) row-major */
                              gint64 n_out,
                              gint64 n_in,
                              double sparse_ratio,
                              float *out_w,     /* (n_out, n_in) row-major */
                              guint8 *out_mask, /* (n_out, n_in) row-major, nullable */
                              GError **error);

/* One value of step 3: the half @h quantized to a @keep_bits-bit mantissa,
 * or kept (see the file comment).  Bit-level (fast) and frexp/ldexp (_ref)
 * forms; both return a half bit pattern. */
guint16 slim_admm_quantize_half (guint16 h, gboolean keep, guint keep_bits);
guint16 slim_admm_quantize_half_ref (guint16 h, gboolean keep, guint keep_bits);

/**
 * slim_admm_protect:
 * @w: (array): step 2's weight, (n_out, n_in) row-major, finite
 * @scaler_row: (array): (n_in) the statistics' scaler_row
 * @dtype: the model's weight dtype (F32, F16 or BF16)
 * @out_w: (out caller-allocates) (array): (n_out, n_in) row-major final
 *   weight, every value exactly representable in @dtype; may be @w
 * @out_keep: (out caller-allocates) (array) (nullable): (n_out, n_in),
 *   1 at the kept positions
 *
 * Step 3.  Errors: SLIM_NUMERIC_ERROR_SHAPE_MISMATCH for another dtype or
 * bad sizes, SLIM_NUMERIC_ERROR_NON_FINITE when a value overflows half,
 * SLIM_PIPELINE_ERROR_OUT_OF_MEMORY.
 *
 * Returns: %TRUE on success
 */
gboolean slim_admm_protect (const float *w,          /* (n_out, n_in) row-major */
                            const float *scaler_row, /* (n_in) */
                            gint64 n_out,
                            gint64 n_in,
                            SlimDType dtype,
                            float *out_w,     /* (n_out, n_in) row-major */
                            guint8 *out_keep, /* (n_out, n_in) row-major, nullable */
                            GError **error);
/* The same with a full sort and slim_admm_quantize_half_ref. */
gboolean slim_admm_protect_ref (const float *w,          /* (n_out, n_in) row-major */
                                const float *scaler_row, /* (n_in) */
                                gint64 n_out,
                                gint64 n_in,
                                SlimDType dtype,
                                float *out_w,     /* (n_out, n_in) row-major */
                                guint8 *out_keep, /* (n_out, n_in) row-major, nullable */
                                GError **error);

G_END_DECLS
