/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-flex-smooth.h: the numerics of flex_smooth_quant's alpha / beta
 * search (spec 2.6; msModelSlim processor/anti_outlier/flex_smooth/
 * alpha_beta_search.py, FlexSmoothAlphaBetaSearcher), as pure functions
 * on float32 buffers:
 *
 *   fake quantizers  int8 symmetric per row (max |x| / 127, round half
 *                    to even, clip to +-127) and int8 asymmetric over a
 *                    whole tensor (255 steps, zero point rounded, -128);
 *   one candidate    s_j = max_t |X_tj|^alpha * max_i |W_ij|^(-beta)
 *                    (no clamp), X' = X / s, W' = W * s, both fake
 *                    quantized per row; error = RMS (X'q W'q^T - X W^T)
 *                    / RMS (X W^T), accumulated over calibration chunks
 *                    and weight blocks (the sums of squares add up);
 *   the search       stage 1: alpha over {0, 0.05, ..., 1} with beta =
 *                    1 - alpha; stage 2: beta over the same grid at the
 *                    best alpha, starting from stage 1's best error.  A
 *                    candidate wins when its error is <= the best so far
 *                    (so ties go to the later grid point), errors compared
 *                    as float32 as msModelSlim compares torch's .item()
 *                    of a float32 tensor; stage 2 keeps beta 0 when no
 *                    beta reaches stage 1's error.
 *
 * The fused scales are slim_smooth_scales (a^alpha / max (w, 1e-5)^beta,
 * clamped to 1e-5) with the chosen alpha and beta, as for fixed ones.
 *
 * slim_flex_accumulate_error uses cblas_sgemm; its _ref twin plain loops.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Points of msModelSlim's grid (np.round (np.arange (0, 1.05, 0.05), 2)). */
#define SLIM_FLEX_GRID_POINTS 21

/* The grid value of point k (0 .. SLIM_FLEX_GRID_POINTS - 1): k / 20. */
double slim_flex_grid_value (guint k);

/* out (n_rows, n_cols) = quant_int8sym (x, dim=-1): per row interval =
 * max |x| / 127, round (x / interval) clipped to [-127, 127], times the
 * interval.  A zero row gives NaN, as torch does (0 / 0).  out may be x. */
void slim_flex_quant_int8sym_rows (const float *x, gint64 n_rows, gint64 n_cols, float *out);

/* out (n) = quant_int8asym (x): scale = max ((max - min) / 255, FLT_EPSILON),
 * zero point round (-min / scale) - 128, (round (x / scale + zp) - zp) *
 * scale, not clamped (msModelSlim does not clamp).  out may be x. */
void slim_flex_quant_int8asym_tensor (const float *x, gint64 n, float *out);

/* scales (n) of one candidate: act_max^alpha * w_max^(-beta), float32,
 * exponents rounded to float, no floor and no clamp (msModelSlim's
 * evaluate_alpha_beta). */
void slim_flex_candidate_scales (
    const float *act_max, const float *w_max, gint64 n, double alpha, double beta, float *scales);

/* wq (n_out, n_in) = quant_int8sym_rows (w * scales): one weight block of
 * a candidate, computed once per candidate. */
void slim_flex_candidate_weight (
    const float *w, gint64 n_out, gint64 n_in, const float *scales, float *wq);

/**
 * slim_flex_accumulate_error:
 * @x: (n_tokens, n_in) calibration inputs (one chunk)
 * @w: (n_out, n_in) the float weight block
 * @wq: (n_out, n_in) slim_flex_candidate_weight of @w
 * @scales: (n_in) the candidate's scales
 * @err_sq: (inout): adds sum (quant (x / s) wq^T - x w^T)^2
 * @ref_sq: (inout): adds sum (x w^T)^2
 *
 * The error of one candidate is sqrt (err_sq / ref_sq) over every chunk
 * and block (slim_flex_error).  Returns FALSE only when memory for the
 * chunk's products cannot be had (n_tokens * n_out floats, twice).
 */
gboolean slim_flex_accumulate_error (const float *x,
                                     gint64 n_tokens,
                                     gint64 n_in,
                                     const float *w,
                                     const float *wq,
                                     gint64 n_out,
                                     const float *scales,
                                     double *err_sq,
                                     double *ref_sq);
gboolean slim_flex_accumulate_error_ref (const float *x,
                                         gint64 n_tokens,
                                         gint64 n_in,
                                         const float *w,
                                         const float *wq,
                                         gint64 n_out,
                                         const float *scales,
                                         double *err_sq,
                                         double *ref_sq);

/* The normalized error, rounded to float32: sqrt (err_sq / ref_sq)
 * (NaN when ref_sq is 0 or a sum is not finite, as torch's 0 / 0). */
float slim_flex_error (double err_sq, double ref_sq);

/* The error of candidate (alpha, beta) over all the kept inputs, or FALSE
 * with error set. */
typedef gboolean (*SlimFlexEvalFunc) (
    double alpha, double beta, float *out_error, gpointer user_data, GError **error);

/**
 * slim_flex_search_alpha_beta:
 * @eval: evaluates one candidate
 * @out_alpha: (out): the chosen alpha
 * @out_beta: (out): the chosen beta
 * @out_error: (out) (optional): its error (infinity when nothing was finite)
 * @curve_alpha: (out) (optional) (array fixed-size=21): stage 1 errors
 * @curve_beta: (out) (optional) (array fixed-size=21): stage 2 errors
 *
 * The two-stage search described above.  NaN errors never win (a NaN
 * comparison is false, as in Python), so a subgraph whose candidates are
 * all NaN gets alpha 0 and beta 0, as in msModelSlim.
 */
gboolean slim_flex_search_alpha_beta (SlimFlexEvalFunc eval,
                                      gpointer user_data,
                                      double *out_alpha,
                                      double *out_beta,
                                      float *out_error,
                                      float *curve_alpha,
                                      float *curve_beta,
                                      GError **error);

G_END_DECLS
