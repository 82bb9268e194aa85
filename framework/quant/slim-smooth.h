/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-smooth.h: the numerics of the smoothing processors (smooth_quant,
 * iter_smooth; spec 2.3-2.5), as pure functions on float32 buffers, in
 * msModelSlim's arithmetic (processor/anti_outlier/common/
 * scale_computation.py, subgraph_fusion.py and iter_smooth's
 * IterStatsCollector):
 *
 *   statistics  per input channel of a linear, over every calibration
 *               token: min, max and the "smooth" maximum, max |x| or, for
 *               asymmetric norm-linear, max |x - shift| with shift =
 *               (max + min) / 2 as known at each update;
 *   scales      s_j = max(a_j^alpha / max(w_j, w_floor)^beta, scale_min);
 *   GQA         ov scales reduced per kv head (mean of the group's scales,
 *               or the flex max rule) and repeated for the o_proj input;
 *   fusion      W[:, j] *= s_j for the consumers, the source divided
 *               (multiplied by 1 / s_j, as msModelSlim does): norm weight,
 *               v_proj / up_proj / linear1 rows and their biases; the
 *               optional shift folded into biases.
 *
 * Functions with a BLAS or a row-streaming inner loop have a _ref twin in
 * plain loops that tests compare them with.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* ---- activation statistics --------------------------------------------- */

/* Running per-channel statistics of one linear's input. */
typedef struct
{
  gint64 n_channels;
  gint64 n_tokens;  /* tokens seen so far */
  gboolean shifted; /* smooth = max |x - shift| (asymmetric norm-linear) */
  float *min;       /* (n_channels) */
  float *max;       /* (n_channels) */
  float *smooth;    /* (n_channels) max |x| or max |x - shift| */
} SlimSmoothStats;

SlimSmoothStats *slim_smooth_stats_new (gint64 n_channels, gboolean shifted);
void slim_smooth_stats_free (SlimSmoothStats *stats);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimSmoothStats, slim_smooth_stats_free)

/* Merges another accumulation of the same channels (its min, max and
 * smooth, (n_channels) each, over n_tokens tokens): element-wise min and
 * max with the NaN rule of the updates, so that for unshifted statistics
 * the result is that of one accumulation over both token sets. */
void slim_smooth_stats_merge (SlimSmoothStats *stats,
                              const float *min,    /* (n_channels) */
                              const float *max,    /* (n_channels) */
                              const float *smooth, /* (n_channels) */
                              gint64 n_tokens);

/* One batch x (n_tokens, n_channels) row-major: min and max first, then
 * shift from them, then the smooth maximum (msModelSlim's order, so the
 * shift of a batch includes the batch itself). */
void slim_smooth_stats_update (SlimSmoothStats *stats, const float *x, gint64 n_tokens);
void slim_smooth_stats_update_ref (SlimSmoothStats *stats, const float *x, gint64 n_tokens);

/* shift (n_channels) = (max + min) / 2. */
void slim_smooth_stats_get_shift (const SlimSmoothStats *stats, float *shift);

/* Index of the first channel whose statistics are not finite, or -1. */
gint64 slim_smooth_stats_find_non_finite (const SlimSmoothStats *stats);

/* ---- weight statistics and scales ---------------------------------------- */

/* out (n_in) = max over the rows of w (n_out, n_in): of |w| when absolute,
 * of w itself otherwise (msModelSlim's consumer statistic for ov, up-down
 * and linear-linear).  When accumulate, out already holds a maximum and
 * is raised (several linears of one norm). */
void slim_smooth_weight_column_max (
    const float *w, gint64 n_out, gint64 n_in, gboolean absolute, gboolean accumulate, float *out);
void slim_smooth_weight_column_max_ref (
    const float *w, gint64 n_out, gint64 n_in, gboolean absolute, gboolean accumulate, float *out);

/* scales (n) = max (act_max^alpha / max (w_max, w_floor)^beta, scale_min),
 * in float32 (exponents rounded to float, 0.5 as a square root, as torch's
 * pow does).  iter_smooth / smooth_quant: beta = 1 - alpha, w_floor 1e-5. */
void slim_smooth_scales (const float *act_max,
                         const float *w_max,
                         gint64 n,
                         double alpha,
                         double beta,
                         float w_floor,
                         float scale_min,
                         float *scales);
/* The same in float64, rounded at the end. */
void slim_smooth_scales_ref (const float *act_max,
                             const float *w_max,
                             gint64 n,
                             double alpha,
                             double beta,
                             float w_floor,
                             float scale_min,
                             float *scales);

/* GQA, mean rule (reduce_scales_for_mqga_mean): scales (n_heads * head_dim)
 * of the o_proj input; v_scales (n_kv_heads * head_dim) = mean over the
 * n_heads / n_kv_heads heads of each kv head's group, o_scales (n_heads *
 * head_dim) = v_scales of the head's group.  n_heads must be a multiple
 * of n_kv_heads (the caller checks). */
void slim_smooth_gqa_reduce_mean (const float *scales,
                                  gint64 n_heads,
                                  gint64 n_kv_heads,
                                  gint64 head_dim,
                                  float *o_scales,
                                  float *v_scales);

/* GQA, max rule (flex's reduce_scales_for_mqga_max): act_max and w_max
 * (n_heads * head_dim) reduced by max over each group first, then
 * v_scales = max (a^alpha / w^beta, 1e-5) and o_scales repeated. */
void slim_smooth_gqa_scales_max (const float *act_max,
                                 const float *w_max,
                                 gint64 n_heads,
                                 gint64 n_kv_heads,
                                 gint64 head_dim,
                                 double alpha,
                                 double beta,
                                 float *o_scales,
                                 float *v_scales);

/* ---- fusion ------------------------------------------------------------ */

/* w (n_out, n_in): w[:, j] *= scales[j]. */
void slim_smooth_scale_columns (float *w, gint64 n_out, gint64 n_in, const float *scales);
/* w (n_out, n_in): w[i, :] *= 1 / scales[i]; bias (n_out, nullable) too. */
void
slim_smooth_divide_rows (float *w, float *bias, gint64 n_out, gint64 n_in, const float *scales);
/* v (n) *= 1 / scales. */
void slim_smooth_divide_vector (float *v, gint64 n, const float *scales);

/* out (n_out) = w (n_out, n_in) . shift (n_in): what a linear's bias gains
 * when its input is shifted (sgemv). */
void slim_smooth_linear_shift (
    const float *w, gint64 n_out, gint64 n_in, const float *shift, float *out);
void slim_smooth_linear_shift_ref (
    const float *w, gint64 n_out, gint64 n_in, const float *shift, float *out);

/* norm_shift (n) = -shift / scales, as -1 * shift * (1 / scales). */
void slim_smooth_norm_shift (const float *shift, const float *scales, gint64 n, float *norm_shift);

G_END_DECLS
