/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-flex-awq-ssz.h: the numerics of flex_awq_ssz's alpha search (spec
 * 2.6; msModelSlim processor/anti_outlier/flex_smooth/alpha_beta_search.py,
 * FlexAWQSSZAlphaBetaSearcher), as pure functions on float32 buffers.
 *
 * A candidate alpha is scored with the quantizer of the processor's
 * qconfig as msModelSlim deploys it, for the dynamic schemes its search
 * supports here (int8 per_token symmetric activations, int4 or int8
 * per_channel symmetric weights by minmax or ssz: W4A8_DYNAMIC,
 * W8A8_DYNAMIC):
 *
 *   s_j    = max_t |X_tj|^alpha              (no clamp, beta 0)
 *   W'     = dequant (quant (W * s))         (the qconfig's weight method)
 *   X'     = X / s, fake quantized by the deployed IR's activation step,
 *            which takes min / max over dim 0 (the tokens) of the whole
 *            input: one int8 symmetric scale per CHANNEL, not per token
 *            (msModelSlim's W4A8/W8A8 dynamic IR forward; oracle README
 *            item 2): scale_j = max (-min_j, max_j) / 127 with min_j <= 0
 *            <= max_j the extremes of X'_:j = those of X_:j over s_j
 *   error  = RMS (X' W'^T - X W^T) / RMS (X W^T)
 *
 * alpha runs over {0, 0.05, ..., 1}; '<=' keeps the later one.  The fused
 * scales are clamp (mean_t |X_tj|^alpha, 1e-5) (the mean, not the maximum
 * the search used: msModelSlim's FlexAWQSSZScaleCalculator with beta 0).
 *
 * slim_flex_awq_accumulate_error uses cblas_sgemm; its _ref twin plain
 * loops.
 */
#pragma once

#include <glib.h>
#include "slim-flex-smooth.h"
#include "slim-ssz.h"

G_BEGIN_DECLS

/* The weight quantizer of a candidate. */
typedef struct
{
  SlimQParamsConfig qparams; /* bits 4 or 8, symmetric */
  gboolean ssz;              /* FALSE: minmax per output channel */
  SlimSszConfig ssz_cfg;     /* used when ssz */
} SlimFlexAwqWeightQuant;

/* col_scale (n) of the IR's activation quantizer on X / s: x_min and x_max
 * (n) the per-channel extremes of X over every token, s (n) > 0. */
void slim_flex_awq_act_scales (
    const float *x_min, const float *x_max, const float *s, gint64 n, float *col_scale);

/* wdq (n_out, n_in) = dequant (quant (w * s)) with the weight quantizer. */
gboolean slim_flex_awq_candidate_weight (const SlimFlexAwqWeightQuant *quant,
                                         const float *w,
                                         gint64 n_out,
                                         gint64 n_in,
                                         const float *s,
                                         float *wdq,
                                         GError **error);

/**
 * slim_flex_awq_accumulate_error:
 * @x: (n_tokens, n_in) calibration inputs (one chunk)
 * @w: (n_out, n_in) the float weight
 * @wdq: (n_out, n_in) slim_flex_awq_candidate_weight of @w
 * @s: (n_in) the candidate's scales
 * @col_scale: (n_in) slim_flex_awq_act_scales
 * @err_sq: (inout): adds sum (fq (x / s) wdq^T - x w^T)^2
 * @ref_sq: (inout): adds sum (x w^T)^2
 *
 * The candidate's error is slim_flex_error (err_sq, ref_sq) over every
 * chunk.  FALSE only when scratch memory cannot be had.
 */
gboolean slim_flex_awq_accumulate_error (const float *x,
                                         gint64 n_tokens,
                                         gint64 n_in,
                                         const float *w,
                                         const float *wdq,
                                         gint64 n_out,
                                         const float *s,
                                         const float *col_scale,
                                         double *err_sq,
                                         double *ref_sq);
gboolean slim_flex_awq_accumulate_error_ref (const float *x,
                                             gint64 n_tokens,
                                             gint64 n_in,
                                             const float *w,
                                             const float *wdq,
                                             gint64 n_out,
                                             const float *s,
                                             const float *col_scale,
                                             double *err_sq,
                                             double *ref_sq);

/**
 * slim_flex_awq_search_alpha:
 * @eval: evaluates alpha (called with beta 0)
 * @out_alpha: (out): the chosen alpha (0 when no error is finite)
 * @out_error: (out) (optional): its error
 * @curve: (out) (optional) (array fixed-size=21): the error per alpha
 */
gboolean slim_flex_awq_search_alpha (SlimFlexEvalFunc eval,
                                     gpointer user_data,
                                     double *out_alpha,
                                     float *out_error,
                                     float *curve,
                                     GError **error);

G_END_DECLS
