/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qparams.c: integer qparams, quantize / dequantize / fake-quantize and
 * the per-tensor min/max observer (formulas in slim-qparams.h).
 *
 * Bit-exactness with torch needs the same float32 operations in the same
 * order and no fused multiply-add, hence fp-contract=off for GCC (clang
 * only contracts within one expression, and no expression here has an
 * a*b+c shape).
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "slim-qparams.h"

#include "slim-error.h"

#include <float.h>
#include <math.h>

/* 1.5 * 2^23: for |v| <= 2^22, (v + M) - M is v rounded to an integer with
 * the current rounding mode (round to nearest, ties to even), because the
 * sum lies in [2^23, 2^24) where the float spacing is exactly 1 and M is
 * even. */
#define SLIM_ROUND_MAGIC 12582912.0f

/**
 * slim_qparams_config_init:
 * @cfg: (out caller-allocates): the config to fill
 * @dtype: %SLIM_QDTYPE_INT8 or %SLIM_QDTYPE_INT4
 * @symmetric: symmetric quantization
 * @max_bound: `ext.max_bound`, 0 for the default bound
 * @error: return location for a #GError
 *
 * Fails with %SLIM_CONFIG_ERROR_BAD_VALUE for a non-integer dtype or a
 * max_bound outside 1..2^(b-1)-1 (symmetric) or 1..2^b-1 (asymmetric).
 *
 * Returns: %TRUE on success
 */
gboolean
slim_qparams_config_init (
    SlimQParamsConfig *cfg, SlimQDtype dtype, gboolean symmetric, gint max_bound, GError **error)
{
  guint bits = slim_qdtype_get_bits (dtype);
  gint limit;

  g_return_val_if_fail (cfg != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (bits == 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "dtype %s is not an integer type", slim_qdtype_get_nick (dtype));
      return FALSE;
    }
  limit = symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  if (max_bound < 0 || max_bound > limit)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "ext.max_bound = %d is outside 1..%d for %s %s", max_bound, limit,
                   slim_qdtype_get_nick (dtype), symmetric ? "symmetric" : "asymmetric");
      return FALSE;
    }
  cfg->bits = bits;
  cfg->symmetric = symmetric;
  cfg->max_bound = max_bound;
  return TRUE;
}

/**
 * slim_qparams_get_range:
 * @cfg: a config
 * @out_qmin: (out): smallest stored integer
 * @out_qmax: (out): largest stored integer
 */
void
slim_qparams_get_range (const SlimQParamsConfig *cfg, gint *out_qmin, gint *out_qmax)
{
  gint qmin, qmax;

  g_return_if_fail (cfg != NULL && (cfg->bits == 4 || cfg->bits == 8));
  qmin = -(1 << (cfg->bits - 1));
  qmax = (1 << (cfg->bits - 1)) - 1;
  /* int_quantize's optional ext.max_bound clamp; only meaningful for a
   * symmetric grid (an asymmetric grid starts at qmin, so a +-max_bound
   * clamp would cut off valid codes) */
  if (cfg->symmetric && cfg->max_bound > 0)
    {
      qmin = MAX (qmin, -cfg->max_bound);
      qmax = MIN (qmax, cfg->max_bound);
    }
  *out_qmin = qmin;
  *out_qmax = qmax;
}

/**
 * slim_round_half_even:
 * @x: a value
 *
 * torch.round: nearest integer, ties to even (nearbyintf in the default
 * FE_TONEAREST mode).
 *
 * Returns: @x rounded
 */
float
slim_round_half_even (float x)
{
  return nearbyintf (x);
}

/**
 * slim_round_half_even_ref:
 * @x: a value
 *
 * Reference for slim_round_half_even() that does not depend on the
 * floating-point rounding mode.
 *
 * Returns: @x rounded half to even
 */
float
slim_round_half_even_ref (float x)
{
  float f;
  double frac;

  if (!isfinite (x))
    return x;
  f = floorf (x);
  /* exact: both are floats, and for |x| >= 2^23 x is already an integer */
  frac = (double)x - (double)f;
  if (frac > 0.5 || (frac == 0.5 && fmod ((double)f, 2.0) != 0.0))
    f += 1.0f;
  return (f == 0.0f) ? copysignf (0.0f, x) : f;
}

/**
 * slim_qparams_compute:
 * @cfg: a config
 * @min_val: observed minimum
 * @max_val: observed maximum
 * @out_scale: (out): the scale
 * @out_offset: (out): the offset (an integer value, 0 when symmetric)
 *
 * calculate_int_qparam of msModelSlim, in float32.
 */
void
slim_qparams_compute (
    const SlimQParamsConfig *cfg, float min_val, float max_val, float *out_scale, float *out_offset)
{
  const float eps = FLT_EPSILON;
  float mn = (min_val < 0.0f) ? min_val : 0.0f;
  float mx = (max_val > 0.0f) ? max_val : 0.0f;
  float scale, offset;

  g_return_if_fail (cfg != NULL && (cfg->bits == 4 || cfg->bits == 8));

  if (!cfg->symmetric)
    {
      float bound = (float)(cfg->max_bound > 0 ? cfg->max_bound : (1 << cfg->bits) - 1);
      float qmin = (float)-(1 << (cfg->bits - 1));

      scale = mx / bound - mn / bound;
      scale = (scale > eps) ? scale : eps;
      offset = slim_round_half_even ((-1.0f * mn) / scale);
      offset += qmin;
    }
  else
    {
      float bound = (float)(cfg->max_bound > 0 ? cfg->max_bound : (1 << (cfg->bits - 1)) - 1);
      float amax = (-mn > mx) ? -mn : mx;

      scale = amax / bound;
      scale = (scale > eps) ? scale : eps;
      offset = 0.0f;
    }
  *out_scale = scale;
  *out_offset = offset;
}

/**
 * slim_minmax_rows:
 * @x: (array): input, (n_rows, n_cols) row-major
 * @n_rows: rows
 * @n_cols: columns, >= 1
 * @out_min: (out caller-allocates) (array): per-row minimum, (n_rows)
 * @out_max: (out caller-allocates) (array): per-row maximum, (n_rows)
 *
 * NaN elements are ignored (a row of NaN gives +inf / -inf).
 */
void
slim_minmax_rows (const float *x, gint64 n_rows, gint64 n_cols, float *out_min, float *out_max)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 1);
  g_return_if_fail (n_rows == 0 || (x != NULL && out_min != NULL && out_max != NULL));

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = x + (gsize)r * (gsize)n_cols;
      float mn = INFINITY, mx = -INFINITY;

      for (gint64 c = 0; c < n_cols; c++)
        {
          mn = (row[c] < mn) ? row[c] : mn;
          mx = (row[c] > mx) ? row[c] : mx;
        }
      out_min[r] = mn;
      out_max[r] = mx;
    }
}

/* The integer level of x as a float: clamp(round(x / s + o), lo, hi).
 * Clamping first, then the magic-number rounding (half to even in the
 * default rounding mode), is exact because the bounds are integers; NaN
 * ends at lo.  The one kernel step of quantize_rows and
 * fake_quantize_rows. */
static inline float
slim_quant_level (float x, float s, float o, float lo, float hi)
{
  float v = x / s + o;

  v = (v >= lo) ? v : lo;
  v = (v <= hi) ? v : hi;
  return (v + SLIM_ROUND_MAGIC) - SLIM_ROUND_MAGIC;
}

static gboolean
slim_rows_args_ok (gint64 n_rows, gint64 n_cols, gint64 n_params)
{
  return n_rows >= 0 && n_cols >= 0 && (n_params == 1 || n_params == n_rows);
}

/**
 * slim_quantize_rows:
 * @cfg: a config
 * @x: (array): input, (n_rows, n_cols) row-major
 * @n_rows: rows
 * @n_cols: columns
 * @scale: (array): (n_params) scales
 * @offset: (array): (n_params) offsets
 * @n_params: 1 (one pair for all rows) or @n_rows
 * @q: (out caller-allocates) (array): quantized values, (n_rows, n_cols)
 *
 * q = clamp(round(x / scale + offset), qmin, qmax). Clamping before the
 * rounding gives the same result (the bounds are integers and rounding is
 * monotonic) and keeps the magic-number rounding in range. NaN maps to
 * qmin; callers reject non-finite data before quantizing.
 */
void
slim_quantize_rows (const SlimQParamsConfig *cfg,
                    const float *x,
                    gint64 n_rows,
                    gint64 n_cols,
                    const float *scale,
                    const float *offset,
                    gint64 n_params,
                    gint8 *q)
{
  gint qmin, qmax;
  float lo, hi;

  g_return_if_fail (slim_rows_args_ok (n_rows, n_cols, n_params));
  slim_qparams_get_range (cfg, &qmin, &qmax);
  lo = (float)qmin;
  hi = (float)qmax;

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = x + (gsize)r * (gsize)n_cols;
      gint8 *qrow = q + (gsize)r * (gsize)n_cols;
      const float s = scale[n_params == 1 ? 0 : r];
      const float o = offset[n_params == 1 ? 0 : r];

      for (gint64 c = 0; c < n_cols; c++)
        qrow[c] = (gint8)(int)slim_quant_level (row[c], s, o, lo, hi);
    }
}

/**
 * slim_quantize_rows_ref:
 * @cfg: a config
 * @x: (array): input, (n_rows, n_cols) row-major
 * @n_rows: rows
 * @n_cols: columns
 * @scale: (array): (n_params) scales
 * @offset: (array): (n_params) offsets
 * @n_params: 1 or @n_rows
 * @q: (out caller-allocates) (array): quantized values, (n_rows, n_cols)
 *
 * Scalar reference of slim_quantize_rows(), in torch's order: divide, add
 * the offset, round half to even, clamp.
 */
void
slim_quantize_rows_ref (const SlimQParamsConfig *cfg,
                        const float *x,
                        gint64 n_rows,
                        gint64 n_cols,
                        const float *scale,
                        const float *offset,
                        gint64 n_params,
                        gint8 *q)
{
  gint qmin, qmax;

  g_return_if_fail (slim_rows_args_ok (n_rows, n_cols, n_params));
  slim_qparams_get_range (cfg, &qmin, &qmax);

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      {
        gsize i = (gsize)r * (gsize)n_cols + (gsize)c;
        gint64 p = (n_params == 1) ? 0 : r;
        float v = slim_round_half_even_ref (x[i] / scale[p] + offset[p]);

        if (!(v >= (float)qmin)) /* also NaN */
          v = (float)qmin;
        if (v > (float)qmax)
          v = (float)qmax;
        q[i] = (gint8)(int)v;
      }
}

/**
 * slim_dequantize_rows:
 * @q: (array): quantized values, (n_rows, n_cols) row-major
 * @n_rows: rows
 * @n_cols: columns
 * @scale: (array): (n_params) scales
 * @offset: (array): (n_params) offsets
 * @n_params: 1 or @n_rows
 * @out: (out caller-allocates) (array): (q - offset) * scale, (n_rows, n_cols)
 */
void
slim_dequantize_rows (const gint8 *q,
                      gint64 n_rows,
                      gint64 n_cols,
                      const float *scale,
                      const float *offset,
                      gint64 n_params,
                      float *out)
{
  g_return_if_fail (slim_rows_args_ok (n_rows, n_cols, n_params));

  for (gint64 r = 0; r < n_rows; r++)
    {
      const gint8 *qrow = q + (gsize)r * (gsize)n_cols;
      float *orow = out + (gsize)r * (gsize)n_cols;
      const float s = scale[n_params == 1 ? 0 : r];
      const float o = offset[n_params == 1 ? 0 : r];

      for (gint64 c = 0; c < n_cols; c++)
        orow[c] = ((float)qrow[c] - o) * s;
    }
}

/**
 * slim_fake_quantize_rows:
 * @cfg: a config
 * @x: (array): input, (n_rows, n_cols) row-major
 * @n_rows: rows
 * @n_cols: columns
 * @scale: (array): (n_params) scales
 * @offset: (array): (n_params) offsets
 * @n_params: 1 or @n_rows
 * @out: (out caller-allocates) (array): dequantize(quantize(x)), may alias @x
 */
void
slim_fake_quantize_rows (const SlimQParamsConfig *cfg,
                         const float *x,
                         gint64 n_rows,
                         gint64 n_cols,
                         const float *scale,
                         const float *offset,
                         gint64 n_params,
                         float *out)
{
  gint qmin, qmax;
  float lo, hi;

  g_return_if_fail (slim_rows_args_ok (n_rows, n_cols, n_params));
  slim_qparams_get_range (cfg, &qmin, &qmax);
  lo = (float)qmin;
  hi = (float)qmax;

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = x + (gsize)r * (gsize)n_cols;
      float *orow = out + (gsize)r * (gsize)n_cols;
      const float s = scale[n_params == 1 ? 0 : r];
      const float o = offset[n_params == 1 ? 0 : r];

      for (gint64 c = 0; c < n_cols; c++)
        orow[c] = (slim_quant_level (row[c], s, o, lo, hi) - o) * s;
    }
}

/**
 * slim_fake_quantize_rows_ref:
 * @cfg: a config
 * @x: (array): input, (n_rows, n_cols) row-major
 * @n_rows: rows
 * @n_cols: columns
 * @scale: (array): (n_params) scales
 * @offset: (array): (n_params) offsets
 * @n_params: 1 or @n_rows
 * @out: (out caller-allocates) (array): dequantize(quantize_ref(x))
 */
void
slim_fake_quantize_rows_ref (const SlimQParamsConfig *cfg,
                             const float *x,
                             gint64 n_rows,
                             gint64 n_cols,
                             const float *scale,
                             const float *offset,
                             gint64 n_params,
                             float *out)
{
  g_return_if_fail (slim_rows_args_ok (n_rows, n_cols, n_params));

  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 c = 0; c < n_cols; c++)
      {
        gsize i = (gsize)r * (gsize)n_cols + (gsize)c;
        gint64 p = (n_params == 1) ? 0 : r;
        gint8 qv;

        slim_quantize_rows_ref (cfg, &x[i], 1, 1, &scale[p], &offset[p], 1, &qv);
        out[i] = ((float)qv - offset[p]) * scale[p];
      }
}

/**
 * slim_quantize_rows_dynamic:
 * @cfg: a config
 * @x: (array): input, (n_rows, n_cols) row-major
 * @n_rows: rows
 * @n_cols: columns, >= 1
 * @out_scale: (out caller-allocates) (array): (n_rows) scales
 * @out_offset: (out caller-allocates) (array): (n_rows) offsets
 * @q: (out caller-allocates) (array): (n_rows, n_cols) quantized values
 *
 * One (scale, offset) per row from the row's min/max, then quantize.
 */
void
slim_quantize_rows_dynamic (const SlimQParamsConfig *cfg,
                            const float *x,
                            gint64 n_rows,
                            gint64 n_cols,
                            float *out_scale,
                            float *out_offset,
                            gint8 *q)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 1);

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = x + (gsize)r * (gsize)n_cols;
      float mn, mx;

      slim_minmax_rows (row, 1, n_cols, &mn, &mx);
      slim_qparams_compute (cfg, mn, mx, &out_scale[r], &out_offset[r]);
      slim_quantize_rows (cfg, row, 1, n_cols, &out_scale[r], &out_offset[r], 1,
                          q + (gsize)r * (gsize)n_cols);
    }
}

/**
 * slim_fake_quantize_rows_dynamic:
 * @cfg: a config
 * @x: (array): input, (n_rows, n_cols) row-major
 * @n_rows: rows
 * @n_cols: columns, >= 1
 * @out: (out caller-allocates) (array): (n_rows, n_cols), may alias @x
 *
 * Per-row dynamic fake quantization: per_token activations in calibration
 * and evaluation (one scale per token row; msModelSlim's calibration uses
 * one min/max for the whole batch there, which slimflow deliberately does
 * not copy).
 */
void
slim_fake_quantize_rows_dynamic (
    const SlimQParamsConfig *cfg, const float *x, gint64 n_rows, gint64 n_cols, float *out)
{
  g_return_if_fail (n_rows >= 0 && n_cols >= 1);

  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = x + (gsize)r * (gsize)n_cols;
      float mn, mx, s, o;

      slim_minmax_rows (row, 1, n_cols, &mn, &mx);
      slim_qparams_compute (cfg, mn, mx, &s, &o);
      slim_fake_quantize_rows (cfg, row, 1, n_cols, &s, &o, 1, out + (gsize)r * (gsize)n_cols);
    }
}

/**
 * slim_qparams_weight_n_params:
 * @scope: per_tensor, per_channel or per_group
 * @n_out: output channels (rows), >= 1
 * @n_in: input channels (columns), >= 1
 * @group_size: elements per group along the input axis (per_group only)
 * @out_n_params: (out): number of (scale, offset) pairs
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success; %FALSE with %SLIM_CONFIG_ERROR_BAD_VALUE for
 *   an unsupported scope or group size, %SLIM_NUMERIC_ERROR_SHAPE_MISMATCH
 *   for a bad shape
 */
gboolean
slim_qparams_weight_n_params (SlimQScope scope,
                              gint64 n_out,
                              gint64 n_in,
                              gint64 group_size,
                              gint64 *out_n_params,
                              GError **error)
{
  guint64 n_elements;

  g_return_val_if_fail (out_n_params != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (n_out < 1 || n_in < 1 || !g_uint64_checked_mul (&n_elements, (guint64)n_out, (guint64)n_in)
      || n_elements > (guint64)G_MAXINT64 / sizeof (float))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "bad weight shape (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", n_out, n_in);
      return FALSE;
    }
  switch (scope)
    {
    case SLIM_QSCOPE_PER_TENSOR:
      *out_n_params = 1;
      return TRUE;
    case SLIM_QSCOPE_PER_CHANNEL:
      *out_n_params = n_out;
      return TRUE;
    case SLIM_QSCOPE_PER_GROUP:
      if (group_size < 1 || n_in % group_size != 0)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "ext.group_size = %" G_GINT64_FORMAT
                       " must be positive and divide the %" G_GINT64_FORMAT " input channels",
                       group_size, n_in);
          return FALSE;
        }
      *out_n_params = n_out * (n_in / group_size);
      return TRUE;
    case SLIM_QSCOPE_PER_BLOCK:
    case SLIM_QSCOPE_PER_TOKEN:
    case SLIM_QSCOPE_PD_MIX:
    case SLIM_QSCOPE_PER_HEAD:
    case SLIM_QSCOPE_DUAL_SCALE:
    default:
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "scope %s is not a weight scope of integer quantization",
                   slim_qscope_get_nick (scope));
      return FALSE;
    }
}

/**
 * slim_quantize_weight:
 * @cfg: a config
 * @scope: per_tensor, per_channel or per_group
 * @w: (array): weight, (n_out, n_in) row-major
 * @n_out: output channels
 * @n_in: input channels
 * @group_size: per_group only: elements per group along the input axis
 * @out_scale: (out caller-allocates) (array): (n_params) scales; per_group
 *   (n_out, n_in / group_size) row-major
 * @out_offset: (out caller-allocates) (array): (n_params) offsets
 * @q: (out caller-allocates) (array): (n_out, n_in) quantized weight
 * @error: return location for a #GError
 *
 * minmax weight quantization (WeightPerChannelMinmax and the per-group
 * layout of the GPTQ quantizer, with groups along the input axis).
 *
 * Returns: %TRUE on success, see slim_qparams_weight_n_params() for errors
 */
gboolean
slim_quantize_weight (const SlimQParamsConfig *cfg,
                      SlimQScope scope,
                      const float *w,
                      gint64 n_out,
                      gint64 n_in,
                      gint64 group_size,
                      float *out_scale,
                      float *out_offset,
                      gint8 *q,
                      GError **error)
{
  gint64 n_params;

  g_return_val_if_fail (cfg != NULL && w != NULL && q != NULL, FALSE);
  g_return_val_if_fail (out_scale != NULL && out_offset != NULL, FALSE);

  if (!slim_qparams_weight_n_params (scope, n_out, n_in, group_size, &n_params, error))
    return FALSE;
  /* n_params rows of (n_out * n_in / n_params) elements, contiguous: per
   * tensor one row, per channel the output rows, per group the groups */
  slim_quantize_rows_dynamic (cfg, w, n_params, (n_out * n_in) / n_params, out_scale, out_offset,
                              q);
  return TRUE;
}

/**
 * slim_minmax_observer_init:
 * @self: (out caller-allocates): an observer
 * @aggregation: max or mean
 */
void
slim_minmax_observer_init (SlimMinMaxObserver *self, SlimQAggregation aggregation)
{
  g_return_if_fail (self != NULL);
  self->aggregation = aggregation;
  self->n_updates = 0;
  self->min_val = INFINITY;
  self->max_val = -INFINITY;
  self->min_sum = 0.0;
  self->max_sum = 0.0;
}

/**
 * slim_minmax_observer_update:
 * @self: an observer
 * @x: (array): one calibration call's activations, (n_elements)
 * @n_elements: >= 1
 */
void
slim_minmax_observer_update (SlimMinMaxObserver *self, const float *x, gint64 n_elements)
{
  float mn, mx;

  g_return_if_fail (self != NULL && x != NULL && n_elements >= 1);

  slim_minmax_rows (x, 1, n_elements, &mn, &mx);
  self->n_updates++;
  if (self->aggregation == SLIM_QAGGREGATION_MEAN)
    {
      self->min_sum += (double)mn;
      self->max_sum += (double)mx;
      self->min_val = (float)(self->min_sum / (double)self->n_updates);
      self->max_val = (float)(self->max_sum / (double)self->n_updates);
    }
  else
    {
      self->min_val = (mn < self->min_val) ? mn : self->min_val;
      self->max_val = (mx > self->max_val) ? mx : self->max_val;
    }
}

/**
 * slim_minmax_observer_get:
 * @self: an observer
 * @out_min: (out): aggregated minimum
 * @out_max: (out): aggregated maximum
 * @error: return location for a #GError
 *
 * Fails with %SLIM_PIPELINE_ERROR_FAILED when no data was observed (e.g. a
 * MoE expert no calibration token reached).
 *
 * Returns: %TRUE on success
 */
gboolean
slim_minmax_observer_get (const SlimMinMaxObserver *self,
                          float *out_min,
                          float *out_max,
                          GError **error)
{
  g_return_val_if_fail (self != NULL && out_min != NULL && out_max != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->n_updates == 0)
    {
      g_set_error_literal (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                           "no calibration data reached this module (observer never updated)");
      return FALSE;
    }
  *out_min = self->min_val;
  *out_max = self->max_val;
  return TRUE;
}
