/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qparams.h: integer quantization numerics of linear_quant
 * (modelslim-v1-spec.md 2.1; msModelSlim ir/api/impl/int_quantization.py),
 * float32 throughout, int8 storage (int4 values are stored one per int8).
 *
 *   min := min(min, 0), max := max(max, 0), eps = FLT_EPSILON
 *   asym: scale = max(max/B - min/B, eps), B = 2^b - 1 (or max_bound)
 *         offset = round(-min/scale) + (-2^(b-1))
 *   sym:  scale = max(max(-min, max)/B, eps), B = 2^(b-1) - 1 (or max_bound)
 *         offset = 0
 *   q   = clamp(round(x/scale + offset), -2^(b-1), 2^(b-1) - 1)
 *   x^  = (q - offset) * scale
 *
 * round is half to even (torch.round); the division x/scale is kept (not a
 * multiplication by the reciprocal) so results are bit-identical to torch.
 *
 * Everything works on "rows": a row-major (n_rows, n_cols) matrix with one
 * (scale, offset) per row, or one for the whole matrix (n_params == 1).
 * This covers every scope:
 *   per_tensor   n_rows = 1, n_cols = all elements (or n_params = 1)
 *   per_channel  weight (n_out, n_in): one row per output channel
 *   per_token    activation (n_tokens, hidden): one row per token
 *   per_group    weight (n_out, n_in) viewed as (n_out * n_in / gs, gs): the
 *                groups run along the input axis; scales (n_out, n_in / gs)
 *
 * slim_quantize_rows() is the fast kernel; slim_quantize_rows_ref() its
 * scalar oracle (bit-identical results).
 */
#pragma once

#include <glib.h>

#include "slim-qscheme.h"

G_BEGIN_DECLS

typedef struct
{
  guint bits; /* 8 or 4 */
  gboolean symmetric;
  gint max_bound; /* ext.max_bound, replaces B above; 0 = default */
} SlimQParamsConfig;

gboolean slim_qparams_config_init (
    SlimQParamsConfig *cfg, SlimQDtype dtype, gboolean symmetric, gint max_bound, GError **error);
/* Range of the stored integers: [-2^(b-1), 2^(b-1) - 1], narrowed to
 * [-max_bound, max_bound] for a symmetric config with max_bound. */
void slim_qparams_get_range (const SlimQParamsConfig *cfg, gint *out_qmin, gint *out_qmax);

void slim_qparams_compute (const SlimQParamsConfig *cfg,
                           float min_val,
                           float max_val,
                           float *out_scale,
                           float *out_offset);

float slim_round_half_even (float x);
float slim_round_half_even_ref (float x);

/* min/max of each row; NaN elements are ignored. */
void slim_minmax_rows (const float *x, /* (n_rows, n_cols) row-major */
                       gint64 n_rows,
                       gint64 n_cols,
                       float *out_min, /* (n_rows) */
                       float *out_max /* (n_rows) */);

/* scale and offset hold n_params values, n_params == 1 or n_rows. */
void slim_quantize_rows (const SlimQParamsConfig *cfg,
                         const float *x, /* (n_rows, n_cols) row-major */
                         gint64 n_rows,
                         gint64 n_cols,
                         const float *scale,  /* (n_params) */
                         const float *offset, /* (n_params) */
                         gint64 n_params,
                         gint8 *q /* (n_rows, n_cols) row-major */);
void slim_quantize_rows_ref (const SlimQParamsConfig *cfg,
                             const float *x, /* (n_rows, n_cols) row-major */
                             gint64 n_rows,
                             gint64 n_cols,
                             const float *scale,  /* (n_params) */
                             const float *offset, /* (n_params) */
                             gint64 n_params,
                             gint8 *q /* (n_rows, n_cols) row-major */);
void slim_dequantize_rows (const gint8 *q, /* (n_rows, n_cols) row-major */
                           gint64 n_rows,
                           gint64 n_cols,
                           const float *scale,  /* (n_params) */
                           const float *offset, /* (n_params) */
                           gint64 n_params,
                           float *out /* (n_rows, n_cols) row-major */);
/* out = dequantize (quantize (x)); out may alias x. */
void slim_fake_quantize_rows (const SlimQParamsConfig *cfg,
                              const float *x, /* (n_rows, n_cols) row-major */
                              gint64 n_rows,
                              gint64 n_cols,
                              const float *scale,  /* (n_params) */
                              const float *offset, /* (n_params) */
                              gint64 n_params,
                              float *out /* (n_rows, n_cols) row-major */);
void slim_fake_quantize_rows_ref (const SlimQParamsConfig *cfg,
                                  const float *x, /* (n_rows, n_cols) row-major */
                                  gint64 n_rows,
                                  gint64 n_cols,
                                  const float *scale,  /* (n_params) */
                                  const float *offset, /* (n_params) */
                                  gint64 n_params,
                                  float *out /* (n_rows, n_cols) row-major */);

/* Dynamic (data-free) quantization with one (scale, offset) per row from
 * the row's own min/max: per_channel weights, per_token activations, and
 * per_group weights viewed as (n_out * n_in / gs, gs). */
void slim_quantize_rows_dynamic (const SlimQParamsConfig *cfg,
                                 const float *x, /* (n_rows, n_cols) row-major */
                                 gint64 n_rows,
                                 gint64 n_cols,
                                 float *out_scale,  /* (n_rows) */
                                 float *out_offset, /* (n_rows) */
                                 gint8 *q /* (n_rows, n_cols) row-major */);
void slim_fake_quantize_rows_dynamic (const SlimQParamsConfig *cfg,
                                      const float *x, /* (n_rows, n_cols) row-major */
                                      gint64 n_rows,
                                      gint64 n_cols,
                                      float *out /* (n_rows, n_cols), may alias x */);

/* Number of (scale, offset) pairs for a weight of scope per_tensor (1),
 * per_channel (n_out) or per_group (n_out * n_in / group_size); FALSE with
 * SLIM_CONFIG_ERROR_BAD_VALUE for another scope, group_size <= 0, n_in not a
 * multiple of group_size, or an element count that overflows. */
gboolean slim_qparams_weight_n_params (SlimQScope scope,
                                       gint64 n_out,
                                       gint64 n_in,
                                       gint64 group_size,
                                       gint64 *out_n_params,
                                       GError **error);
/* minmax weight quantization for scope per_tensor, per_channel, per_group. */
gboolean slim_quantize_weight (const SlimQParamsConfig *cfg,
                               SlimQScope scope,
                               const float *w, /* (n_out, n_in) row-major */
                               gint64 n_out,
                               gint64 n_in,
                               gint64 group_size,
                               float *out_scale,  /* (n_params) */
                               float *out_offset, /* (n_params) */
                               gint8 *q,          /* (n_out, n_in) row-major */
                               GError **error);

/* Per-tensor activation observer (ActPerTensorMinmax): accumulates across
 * all calibration calls. MAX keeps the running min of mins and max of
 * maxes; MEAN keeps float64 sums of each call's min and max and reports
 * (float) (sum / n_updates), as msModelSlim's _MeanMinMaxObserver. */
typedef struct
{
  SlimQAggregation aggregation;
  gint64 n_updates;
  float min_val; /* MAX: running result */
  float max_val;
  double min_sum; /* MEAN: sums of per-call min / max */
  double max_sum;
} SlimMinMaxObserver;

void slim_minmax_observer_init (SlimMinMaxObserver *self, SlimQAggregation aggregation);
void slim_minmax_observer_update (SlimMinMaxObserver *self,
                                  const float *x, /* (n_elements) */
                                  gint64 n_elements);
gboolean slim_minmax_observer_get (const SlimMinMaxObserver *self,
                                   float *out_min,
                                   float *out_max,
                                   GError **error);

G_END_DECLS
