/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-awq.h: the numerics of the awq processor (modelslim-v1-spec.md 2.6;
 * msModelSlim processor/anti_outlier/awq/best_scales_search.py and
 * awq_stats_collector.py) as pure functions on float32 buffers:
 *
 *   statistics  act_mean (n_channels) = mean over every calibration token
 *               of |x|, merged batch by batch as msModelSlim does:
 *               (old * old_count + mean_batch * count) / new_count;
 *   scales      for ratio r: s = max (act_mean^r, 1e-4), s /= sqrt (max
 *               (s) * min (s)), non-finite -> 1;
 *   candidate   each searched linear W (n_out, n_in) becomes
 *               fakequant (W * s) / s (minmax weight quantization of
 *               slim-qparams.h: per_tensor, per_channel or per_group);
 *   search      for g = 0 .. n_grid - 1, r = g / n_grid: loss = the sum
 *               of squared differences between the inspected module's
 *               output with the candidate weights and with the original
 *               ones, over every element of every sample, divided by the
 *               element count; the first strictly smaller loss wins.
 *
 * The search takes the evaluation as a callback (the processor runs an
 * attention block, an MLP or a linear); slim_awq_linear_eval evaluates a
 * single linear on stored inputs, the inspected module of o_proj and
 * down_proj subgraphs and of the oracle case.
 */
#pragma once

#include <glib.h>
#include "slim-qparams.h"
#include "slim-qscheme.h"

G_BEGIN_DECLS

/* mean (n_channels) and *count: the running mean of |x| over the rows of
 * x (n_tokens, n_channels); *count 0 starts it. */
void slim_awq_mean_update (
    float *mean, gint64 *count, const float *x, gint64 n_tokens, gint64 n_channels);

/* scales (n) for ratio from act_mean (n). */
void slim_awq_scales (const float *act_mean, gint64 n, double ratio, float *scales);

/* The search's weight quantizer: minmax, scope per_tensor, per_channel or
 * per_group (group_size), integer bits and symmetry of cfg. */
typedef struct
{
  SlimQParamsConfig cfg;
  SlimQScope scope;
  gint64 group_size; /* per_group only */
} SlimAwqWeightQuant;

/* out (n_out, n_in) = fakequant (w * scales) / scales, scales (n_in);
 * FALSE with an error when the scope does not fit the shape. */
gboolean slim_awq_candidate_weight (const SlimAwqWeightQuant *quant,
                                    const float *w,
                                    gint64 n_out,
                                    gint64 n_in,
                                    const float *scales,
                                    float *out,
                                    GError **error);

/* Loss of one candidate: *out_sum_sq and *out_n are the squared
 * difference summed (float64) over what was compared and its element
 * count. */
typedef gboolean (*SlimAwqEvalFunc) (
    const float *scales, double *out_sum_sq, gint64 *out_n, gpointer user_data, GError **error);

/* The grid search.  best_scales (n) gets the winner (left untouched, and
 * *out_best -1, when no loss was finite); losses (n_grid, nullable) the
 * loss of every ratio (+inf for an empty comparison). */
gboolean slim_awq_search (const float *act_mean,
                          gint64 n,
                          gint64 n_grid,
                          SlimAwqEvalFunc eval,
                          gpointer user_data,
                          float *best_scales,
                          double *losses,
                          gint *out_best,
                          GError **error);

/* A linear on stored inputs, for slim_awq_search. */
typedef struct
{
  const SlimAwqWeightQuant *quant;
  const float *w;    /* (n_out, n_in) */
  const float *bias; /* (n_out), nullable */
  gint64 n_out;
  gint64 n_in;
  guint n_samples;
  const float *const *x;  /* (n_samples) of (n_tokens[i], n_in) */
  const gint64 *n_tokens; /* (n_samples) */
  const float *const *y;  /* (n_samples) of (n_tokens[i], n_out): x W^T + b */
} SlimAwqLinear;

/* SlimAwqEvalFunc over a SlimAwqLinear (user_data). */
gboolean slim_awq_linear_eval (
    const float *scales, double *out_sum_sq, gint64 *out_n, gpointer user_data, GError **error);

/* sum over n of (a - b)^2 in float64. */
double slim_awq_sum_sq_diff (const float *a, const float *b, gint64 n);

G_END_DECLS
