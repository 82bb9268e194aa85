/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gptq.h: GPTQ weight quantization (modelslim-v1-spec.md 2.12;
 * msModelSlim core/quantizer/impl/gptq.py, WeightPerChannelGPTQ and
 * WeightPerGroupGPTQ), as pure functions on plain buffers.
 *
 * Hessian (add_batch, once per calibration forward of the linear):
 *   H := H * n / (n + t);  n := n + t;  xs = x * sqrt(2 / n);  H += xsᵀ xs
 * for a batch x of t rows, i.e. the running average H = (2/n) Σ x xᵀ over
 * every calibration row, in float32 (ssyrk).  Linears reading the same
 * input (q/k/v, gate/up) can share one accumulator: the quantization
 * never modifies it.
 *
 * Quantization of W (n_out, n_in) with H:
 *   dead columns (H[j][j] == 0): H[j][j] := 1, W[:, j] := 0;
 *   damp = percdamp * mean(diag H), H += damp I;
 *   U = upper Cholesky factor of H⁻¹ (cholesky, cholesky_inverse, cholesky
 *   upper, all float32 through LAPACK: spotrf, spotri, spotrf);
 *   columns in blocks of block_size; inside a block, column j is fake-
 *   quantized, its error e = (w_j - ŵ_j) / U[j][j] is spread over the
 *   block's later columns (w_k -= e U[j][k]); at the block end the later
 *   columns get W[:, end:] -= E U[block, end:].
 *   per_channel: qparams from the original W's row min/max (before the dead
 *   columns are zeroed), fixed for the whole run.
 *   per_group: qparams of a group from the working W when the loop reaches
 *   the group's first column, as msModelSlim does: that W holds the
 *   compensation of earlier blocks but not yet of the current block.
 * q is the integer code of each column's fake-quantized value (equal to
 * msModelSlim's final quantize(Ŵᵀ)ᵀ of the dequantized result).
 *
 * act_order (not in msModelSlim; GPTQ / llm-compressor's option): columns
 * are processed in descending diag(H) order (after the dead-column fix,
 * before damping, ties by index), the result is permuted back, so the saved format is unchanged;
 * per_group then uses "static groups": every group's qparams are computed up front from W (dead
 * columns zeroed) instead of at the group start.
 *
 * A non-positive-definite H + damp I (or a failed factorisation of H⁻¹) is
 * an error (SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE), never NaN weights.
 * msModelSlim has no fallback there: torch.linalg.cholesky raises
 * "linalg.cholesky: The factorization could not be completed because the
 * input is not positive-definite" and the quantization stops.
 *
 * slim_gptq_quantize_ref() is the plain-loop float64 twin (own Cholesky,
 * no BLAS) used by the tests.
 */
#pragma once

#include <glib.h>

#include "slim-qparams.h"
#include "slim-qscheme.h"

G_BEGIN_DECLS

#define SLIM_GPTQ_PERCDAMP_DEFAULT 0.01
#define SLIM_GPTQ_BLOCK_SIZE_DEFAULT 128
#define SLIM_GPTQ_GROUP_SIZE_DEFAULT 128

/* Running-average Hessian of one linear's input (or of several linears
 * that read the same input). */
typedef struct
{
  gint64 n_in;      /* columns of the input = order of H */
  gint64 n_samples; /* rows accumulated (msModelSlim's nsamples) */
  float *data;      /* (n_in, n_in) row-major, symmetric (both triangles) */
} SlimGptqHessian;

/* FALSE with SLIM_PIPELINE_ERROR_OUT_OF_MEMORY when n_in² floats cannot be
 * allocated, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH for n_in < 1 or too large
 * for BLAS. */
gboolean slim_gptq_hessian_init (SlimGptqHessian *self, gint64 n_in, GError **error);
void slim_gptq_hessian_clear (SlimGptqHessian *self);
/* One calibration batch of n_rows rows (all tokens of one forward call, as
 * msModelSlim's forward(x) adds them).  n_rows == 0 adds nothing.  FALSE
 * with SLIM_NUMERIC_ERROR_NON_FINITE for a NaN or infinite element (H is
 * then unchanged). */
gboolean slim_gptq_hessian_add_batch (SlimGptqHessian *self,
                                      const float *x, /* (n_rows, n_in) row-major */
                                      gint64 n_rows,
                                      GError **error);
/* Plain-loop float64 twin of add_batch (no error checks): h and n_samples
 * in and out. */
void slim_gptq_hessian_add_batch_ref (double *h, /* (n_in, n_in) row-major */
                                      gint64 n_in,
                                      gint64 *n_samples,
                                      const float *x, /* (n_rows, n_in) row-major */
                                      gint64 n_rows);

typedef struct
{
  SlimQParamsConfig qparams; /* bits, symmetric (max_bound must be 0) */
  SlimQScope scope;          /* SLIM_QSCOPE_PER_CHANNEL or SLIM_QSCOPE_PER_GROUP */
  gint64 group_size;         /* ext.group_size (per_group), default 128 */
  gint64 block_size;         /* ext.block_size, default 128 */
  double percdamp;           /* ext.percdamp, > 0, default 0.01 */
  gboolean act_order;        /* descending-diag column order (slimflow extension) */
} SlimGptqConfig;

/* msModelSlim's defaults; act_order off. */
void
slim_gptq_config_init (SlimGptqConfig *cfg, const SlimQParamsConfig *qparams, SlimQScope scope);

/* Number of (scale, offset) pairs: n_out (per_channel) or
 * n_out * n_in / group_size (per_group, (n_out, n_in / gs) row-major).
 * FALSE with SLIM_CONFIG_ERROR_BAD_VALUE for a bad config (scope, group
 * size not dividing n_in, block_size < 1, percdamp not > 0, max_bound). */
gboolean slim_gptq_get_n_params (
    const SlimGptqConfig *cfg, gint64 n_out, gint64 n_in, gint64 *out_n_params, GError **error);

/**
 * slim_gptq_quantize:
 * @cfg: the method's settings
 * @hessian: the accumulated Hessian (n_in == @n_in); not modified
 * @w: (array): weight, (n_out, n_in) row-major, finite
 * @out_scale: (out caller-allocates) (array): (n_params) scales
 * @out_offset: (out caller-allocates) (array): (n_params) offsets
 * @q: (out caller-allocates) (array): (n_out, n_in) row-major codes
 * @out_dequant: (out caller-allocates) (array) (nullable): (n_out, n_in)
 *   row-major fake-quantized weight (q - offset) * scale
 *
 * Errors: SLIM_PIPELINE_ERROR_FAILED when no calibration row reached the
 * Hessian; SLIM_CONFIG_ERROR_BAD_VALUE (see slim_gptq_get_n_params());
 * SLIM_NUMERIC_ERROR_SHAPE_MISMATCH for a Hessian of another order;
 * SLIM_NUMERIC_ERROR_NON_FINITE for a non-finite weight or Hessian;
 * SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE when a Cholesky step fails.
 * The outputs are unspecified after an error.
 *
 * Returns: %TRUE on success
 */
gboolean slim_gptq_quantize (const SlimGptqConfig *cfg,
                             const SlimGptqHessian *hessian,
                             const float *w, /* (n_out, n_in) row-major */
                             gint64 n_out,
                             gint64 n_in,
                             float *out_scale,   /* (n_params) */
                             float *out_offset,  /* (n_params) */
                             gint8 *q,           /* (n_out, n_in) row-major */
                             float *out_dequant, /* (n_out, n_in) row-major, nullable */
                             GError **error);

/* The weight-independent half of slim_gptq_quantize(): dead columns,
 * damping, (act_order permutation,) the three factorisations.  Linears
 * sharing a Hessian and settings (q/k/v, gate/up) share one factor;
 * slim_gptq_quantize_factored() with it gives exactly what
 * slim_gptq_quantize() gives. */
typedef struct
{
  gint64 n_in;
  gint64 n_samples; /* of the Hessian it was made from */
  double percdamp;
  gboolean act_order;
  float *u;       /* (n_in, n_in) row-major: U of (H + damp I)⁻¹ = Uᵀ U in the upper
                   * triangle, rows and columns in processing order */
  gint64 *perm;   /* (n_in): processing position -> column; NULL without act_order */
  gboolean *dead; /* (n_in): H[j][j] == 0, the weight column is zeroed */
} SlimGptqFactor;

/* Errors as slim_gptq_quantize() (no sample, non-finite Hessian, bad
 * percdamp, not positive definite, out of memory). */
gboolean slim_gptq_factor_init (SlimGptqFactor *self,
                                const SlimGptqHessian *hessian,
                                double percdamp,
                                gboolean act_order,
                                GError **error);
void slim_gptq_factor_clear (SlimGptqFactor *self);
/* As slim_gptq_quantize() with a ready factor; cfg->percdamp and
 * cfg->act_order must be the factor's (SLIM_CONFIG_ERROR_BAD_VALUE). */
gboolean slim_gptq_quantize_factored (const SlimGptqConfig *cfg,
                                      const SlimGptqFactor *factor,
                                      const float *w, /* (n_out, n_in) row-major */
                                      gint64 n_out,
                                      gint64 n_in,
                                      float *out_scale,   /* (n_params) */
                                      float *out_offset,  /* (n_params) */
                                      gint8 *q,           /* (n_out, n_in) row-major */
                                      float *out_dequant, /* (n_out, n_in) row-major, nullable */
                                      GError **error);

/* The same algorithm in plain loops with float64 everywhere except the
 * quantization step itself (qparams and codes use the float32 kernels of
 * slim-qparams): own Cholesky, inverse and upper factor, no BLAS.  Same
 * errors; @hessian is (n_in, n_in) row-major float64 with @n_samples rows. */
gboolean slim_gptq_quantize_ref (const SlimGptqConfig *cfg,
                                 const double *hessian, /* (n_in, n_in) row-major */
                                 gint64 n_samples,
                                 const float *w, /* (n_out, n_in) row-major */
                                 gint64 n_out,
                                 gint64 n_in,
                                 float *out_scale,   /* (n_params) */
                                 float *out_offset,  /* (n_params) */
                                 gint8 *q,           /* (n_out, n_in) row-major */
                                 float *out_dequant, /* (n_out, n_in) row-major, nullable */
                                 GError **error);

G_END_DECLS
