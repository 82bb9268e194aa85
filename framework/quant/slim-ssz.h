/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ssz.h: SSZ weight quantization (modelslim-v1-spec.md 2.11;
 * msModelSlim core/quantizer/impl/ssz.py: ssz_calculate_qparam and
 * WeightPerChannelSsz), as pure functions on plain buffers.
 *
 * One (scale, offset) per output channel of W (n_out, n_in).  For every
 * channel n (a row of W, msModelSlim's column of Wᵀ) with K = n_in:
 *
 *   start:  (s, o) = the minmax qparams of the row (slim_qparams_compute);
 *           q = quantize(w, s, o); best = (s, o), mse_best = mse(s, o)
 *   repeat at most cfg->step times (msModelSlim: ext.step, default 50):
 *     symmetric:  s' = Σ_k w_k q_k / max(Σ_k q_k², 1e-30);  o' = o
 *     asymmetric: d_k = q_k - o
 *                 s' = Σ_k w_k d_k / max(Σ_k d_k², 1e-30)
 *                 o' = Σ_k (q_k s' - w_k) / (K s')     (a real number)
 *     q = quantize(w, s', o');  mse' = mean_k (w_k - (q_k - o') s')²
 *     converged(n) = (mse_best - mse') / max(mse_best, 1e-4) < 1e-10
 *                    or |mse_best - mse'| < 1e-10
 *     if every channel is converged: stop (this iteration's values are
 *       dropped, as msModelSlim does)
 *     where mse' < mse_best: best = (s', o'), mse_best = mse'
 *     (s, o) = (s', o')   -- the next fit starts from this iteration's
 *                            codes, kept or not
 *   result: best (s, o); codes q = quantize(w, best)
 *
 * quantize is slim-qparams.h's: clamp(round_half_even(w / s + o)) with the
 * division kept; the convergence test is global (the loop runs for all
 * channels until all are converged), the keep-if-better is per channel.
 *
 * Arithmetic: float32 as torch computes it: elementwise terms (w·q, d²,
 * q·s' - w, (w - x^)²) rounded to float32, each sum over k in the order of
 * torch's CPU float32 row reduction (AVX2 build), so the results are
 * bit-equal to msModelSlim's (all four oracle cases).  An all-zero row
 * keeps its minmax parameters (s' = 0 gives w / s' = NaN; the code is then
 * 0, as torch's float-to-int8 cast gives on x86); the asymmetric fit of
 * such a row is 0/0 and is an error (msModelSlim would carry a NaN offset).
 *
 * msModelSlim registers SSZ for int8/int4 per_channel symmetric only; the
 * asymmetric path is the one ssz_calculate_qparam has (the oracle cases
 * ssz_*_asym call it directly).  cfg->qparams.max_bound must be 0.
 *
 * slim_ssz_search_ref() / slim_ssz_quantize_ref() are the plain twins that
 * follow msModelSlim's tensor program literally on Wᵀ (n_in, n_out): whole
 * matrices per step, masks as 0/1 factors (best·(1-m) + cur·m), every sum
 * accumulated in float64 in index order.  They agree with the fast path
 * to rounding (the tests: scales rel 1e-4; sym measured 2.3e-7).
 *
 * The API below is stable (flex_awq_ssz builds on it).
 */
#pragma once

#include <glib.h>

#include "slim-qparams.h"

G_BEGIN_DECLS

#define SLIM_SSZ_STEP_DEFAULT 50           /* msModelSlim SCALE_SEARCH_ITER_NUM */
#define SLIM_SSZ_MIN_DENOM 1e-30f          /* SCALE_SEARCH_MIN_SCALE: clamp of Σ q² */
#define SLIM_SSZ_CONVERGE_THRESHOLD 1e-10f /* SCALE_SEARCH_CONVERGE_THRESHOLD */
#define SLIM_SSZ_MSE_FLOOR 1e-4f           /* clamp of mse_best in the relative test */

typedef struct
{
  SlimQParamsConfig qparams; /* bits 4 or 8, symmetric or not, max_bound 0 */
  gint64 step;               /* iteration limit (ext.step), >= 1, default 50 */
} SlimSszConfig;

/* @qparams copied, step = SLIM_SSZ_STEP_DEFAULT. */
void slim_ssz_config_init (SlimSszConfig *cfg, const SlimQParamsConfig *qparams);

/* FALSE with SLIM_CONFIG_ERROR_BAD_VALUE for bits other than 4/8, a
 * max_bound or step < 1. */
gboolean slim_ssz_config_check (const SlimSszConfig *cfg, GError **error);

/**
 * slim_ssz_search:
 * @cfg: the method's settings
 * @w: (array): weight, (n_out, n_in) row-major, finite
 * @n_out: output channels (rows), >= 1
 * @n_in: input channels (columns), >= 1
 * @scale: (inout) (array): (n_out) start scales in (> 0), best scales out
 * @offset: (inout) (array): (n_out) start offsets in, best offsets out
 * @out_n_iter: (out) (optional): loop bodies run, 1..step (the one that
 *   found every channel converged included)
 *
 * msModelSlim's ssz_calculate_qparam from given start parameters.
 * Errors: SLIM_CONFIG_ERROR_BAD_VALUE (slim_ssz_config_check());
 * SLIM_NUMERIC_ERROR_SHAPE_MISMATCH for n_out or n_in < 1 or too large;
 * SLIM_NUMERIC_ERROR_NON_FINITE for a non-finite weight or start scale,
 * or a start scale <= 0; SLIM_PIPELINE_ERROR_OUT_OF_MEMORY.  @scale and
 * @offset are unchanged after an error.
 *
 * Returns: %TRUE on success
 */
gboolean slim_ssz_search (const SlimSszConfig *cfg,
                          const float *w, /* (n_out, n_in) row-major */
                          gint64 n_out,
                          gint64 n_in,
                          float *scale,  /* (n_out) inout */
                          float *offset, /* (n_out) inout */
                          gint64 *out_n_iter,
                          GError **error);

/**
 * slim_ssz_quantize:
 * @cfg: the method's settings
 * @w: (array): weight, (n_out, n_in) row-major, finite
 * @n_out: output channels
 * @n_in: input channels
 * @out_scale: (out caller-allocates) (array): (n_out) scales
 * @out_offset: (out caller-allocates) (array): (n_out) offsets (0 when
 *   symmetric)
 * @q: (out caller-allocates) (array) (nullable): (n_out, n_in) row-major
 *   codes quantize(w, scale, offset)
 * @out_dequant: (out caller-allocates) (array) (nullable): (n_out, n_in)
 *   row-major fake-quantized weight (q - offset) * scale
 * @out_n_iter: (out) (optional): as slim_ssz_search()
 *
 * WeightPerChannelSsz: minmax start from each row's min/max, then
 * slim_ssz_search(), then the codes.  Errors as slim_ssz_search(); the
 * outputs are unspecified after an error.
 *
 * Returns: %TRUE on success
 */
gboolean slim_ssz_quantize (const SlimSszConfig *cfg,
                            const float *w, /* (n_out, n_in) row-major */
                            gint64 n_out,
                            gint64 n_in,
                            float *out_scale,   /* (n_out) */
                            float *out_offset,  /* (n_out) */
                            gint8 *q,           /* (n_out, n_in) row-major, nullable */
                            float *out_dequant, /* (n_out, n_in) row-major, nullable */
                            gint64 *out_n_iter,
                            GError **error);

/* Plain twins (see above): same contract, results equal to rounding. */
gboolean slim_ssz_search_ref (const SlimSszConfig *cfg,
                              const float *w, /* (n_out, n_in) row-major */
                              gint64 n_out,
                              gint64 n_in,
                              float *scale,  /* (n_out) inout */
                              float *offset, /* (n_out) inout */
                              gint64 *out_n_iter,
                              GError **error);
gboolean slim_ssz_quantize_ref (const SlimSszConfig *cfg,
                                const float *w, /* (n_out, n_in) row-major */
                                gint64 n_out,
                                gint64 n_in,
                                float *out_scale,   /* (n_out) */
                                float *out_offset,  /* (n_out) */
                                gint8 *q,           /* (n_out, n_in) row-major, nullable */
                                float *out_dequant, /* (n_out, n_in) row-major, nullable */
                                gint64 *out_n_iter,
                                GError **error);

G_END_DECLS
