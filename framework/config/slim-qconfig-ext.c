/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qconfig-ext.c: the `ext` mapping of a quantizer config.
 */
#include "slim-qconfig-ext.h"

#include "slim-gptq.h"
#include "slim-histogram.h"
#include "slim-property.h"
#include "slim-ssz.h"

struct _SlimQConfigExt
{
  GObject parent_instance;

  gint64 group_size;
  SlimQAggregation aggregation_type;
  gint max_bound;
  double percdamp;
  gint64 block_size;
  gboolean act_order;
  gboolean share_hessian;
  SlimHistogramMetric search_method;
  gint64 step;
  gint axes;
  SlimQScaleDType scale_dtype;
  double sigma_factor;
  gint64 dual_block_size;
  double ceil_x_value;
  gboolean enable_search;
  double search_min;
  double search_max;
  double search_step;
};

#define DEFAULT_AGGREGATION_TYPE SLIM_QAGGREGATION_MAX

/* clang-format off */
static const SlimPropertyDecl slim_qconfig_ext_properties[] = {
  SLIM_PROPERTY_INT64 (
      SlimQConfigExt, group_size, "group-size", "Group size",
      "Input features per quantization group of a per_group weight (0 = not set; ignored by "
      "other scopes).",
      0, SLIM_QCONFIG_MAX_GROUP_SIZE, 0),
  SLIM_PROPERTY_ENUM (
      SlimQConfigExt, aggregation_type, "aggregation-type", "Aggregation type",
      "How a per-tensor activation observer combines calibration calls: max keeps the extreme "
      "min/max, mean averages each call's min/max.",
      slim_qaggregation_get_type, DEFAULT_AGGREGATION_TYPE),
  SLIM_PROPERTY_INT (
      SlimQConfigExt, max_bound, "max-bound", "Max bound",
      "Largest integer magnitude used instead of the dtype's (e.g. 119 for int8; 0 = the dtype's "
      "own bound).",
      0, 255, 0),
  SLIM_PROPERTY_DOUBLE (
      SlimQConfigExt, percdamp, "percdamp", "GPTQ damping",
      "gptq weights: damping added to the Hessian diagonal, as a fraction of its mean; must be "
      "> 0 (default 0.01).",
      0.0, G_MAXDOUBLE, SLIM_GPTQ_PERCDAMP_DEFAULT),
  SLIM_PROPERTY_INT64 (
      SlimQConfigExt, block_size, "block-size", "GPTQ block size",
      "gptq weights: columns per error-compensation block (default 128).",
      1, G_MAXINT32, SLIM_GPTQ_BLOCK_SIZE_DEFAULT),
  SLIM_PROPERTY_BOOLEAN (
      SlimQConfigExt, act_order, "act-order", "GPTQ activation order",
      "gptq weights (slimflow extension): quantize columns in descending Hessian-diagonal order "
      "(static groups for per_group); the saved format is unchanged.",
      FALSE),
  SLIM_PROPERTY_BOOLEAN (
      SlimQConfigExt, share_hessian, "share-hessian", "GPTQ shared Hessian",
      "gptq weights (slimflow extension): linears of one module reading the same input (q/k/v, "
      "gate/up) accumulate one Hessian; false gives each linear its own (same result).",
      TRUE),
  SLIM_PROPERTY_ENUM (
      SlimQConfigExt, search_method, "search-method", "Histogram search metric",
      "histogram activations: the error the clip search minimises, l2_norm (default, "
      "msModelSlim's) or kl_divergence (HistogramObserverConfig.search_method).",
      slim_histogram_metric_get_type, SLIM_HISTOGRAM_L2_NORM),
  SLIM_PROPERTY_INT64 (
      SlimQConfigExt, step, "step", "SSZ iterations",
      "ssz weights: most scale-search iterations (0 = msModelSlim's default, 50; msModelSlim "
      "also falls back to 50 for a value <= 0).",
      0, G_MAXINT32, 0),
  SLIM_PROPERTY_INT (
      SlimQConfigExt, axes, "axes", "MX shared-exponent axis",
      "MX per_block (mxfp8/mxfp4) weights and activations: the shared-exponent block axis; only "
      "-1 (the input features, msModelSlim's default) is supported; refused on other scopes.",
      G_MININT, G_MAXINT, SLIM_QCONFIG_AXES_UNSET),
  SLIM_PROPERTY_ENUM (
      SlimQConfigExt, scale_dtype, "scale-dtype", "Scale dtype",
      "autoround weights: the dtype each learned scale is rounded to before use (msModelSlim's "
      "ext.scale_dtype, default bfloat16 as there; saved as float32 either way); other methods "
      "ignore it.",
      slim_qscale_dtype_get_type, SLIM_QSCALE_DTYPE_BFLOAT16),
  SLIM_PROPERTY_DOUBLE (
      SlimQConfigExt, sigma_factor, "sigma-factor", "Sigma clipping factor",
      "minmax int weights (slimflow extension, QuantConfig use_sigma / sigma_factor): each "
      "row's or group's range is clipped to mean +- sigma_factor * std (values beyond saturate); "
      "0 = off, else in [3, 4] as msModelSlim allows.",
      0.0, 4.0, 0.0),
  SLIM_PROPERTY_INT64 (
      SlimQConfigExt, dual_block_size, "dual-block-size", "Dual block size",
      "mxfp4 dual_scale act and weight (method dualscale): elements per outer block sharing one "
      "float32 dual scale, a multiple of 32 (msModelSlim's configs use 512; 0 = not set, required "
      "by dual_scale).",
      0, SLIM_QCONFIG_MAX_GROUP_SIZE, 0),
  SLIM_PROPERTY_DOUBLE (
      SlimQConfigExt, ceil_x_value, "ceil-x-value", "ceil_x divisor",
      "mxfp4 per_block weights with method ceil_x: the divisor c of each block's maximum in "
      "se = ceil (log2 (amax / c)), in [6, 12] (default 7.25, msModelSlim's).",
      6.0, 12.0, 7.25),
  SLIM_PROPERTY_BOOLEAN (
      SlimQConfigExt, enable_search, "enable-search", "ceil_x search",
      "mxfp4 per_block weights with method ceil_x: pick, per weight tensor, the divisor of "
      "search_min, search_min + search_step, ... search_max with the smallest mean squared "
      "error (msModelSlim's ceil_x_search_best).",
      FALSE),
  SLIM_PROPERTY_DOUBLE (
      SlimQConfigExt, search_min, "search-min", "ceil_x search minimum",
      "ceil_x with enable_search: the smallest divisor tried, in [6, 12] (default 6).",
      6.0, 12.0, 6.0),
  SLIM_PROPERTY_DOUBLE (
      SlimQConfigExt, search_max, "search-max", "ceil_x search maximum",
      "ceil_x with enable_search: the largest divisor tried, in [6, 12], above search_min "
      "(default 12).",
      6.0, 12.0, 12.0),
  SLIM_PROPERTY_DOUBLE (
      SlimQConfigExt, search_step, "search-step", "ceil_x search step",
      "ceil_x with enable_search: the divisor step, > 0 (default 0.25).",
      0.0, 6.0, 0.25),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimQConfigExt, slim_qconfig_ext, G_TYPE_OBJECT)

static void
slim_qconfig_ext_class_init (SlimQConfigExtClass *klass)
{
  SLIM_PROPERTIES_INSTALL (klass, slim_qconfig_ext_properties);
}

static void
slim_qconfig_ext_init (SlimQConfigExt *self)
{
}

/**
 * slim_qconfig_ext_get_group_size:
 * @self: an ext mapping
 *
 * Returns: `group_size`, 0 when not set
 */
gint64
slim_qconfig_ext_get_group_size (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), 0);
  return self->group_size;
}

/**
 * slim_qconfig_ext_get_aggregation_type:
 * @self: an ext mapping
 *
 * Returns: `aggregation_type` (max by default)
 */
SlimQAggregation
slim_qconfig_ext_get_aggregation_type (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), DEFAULT_AGGREGATION_TYPE);
  return self->aggregation_type;
}

/**
 * slim_qconfig_ext_get_max_bound:
 * @self: an ext mapping
 *
 * Returns: `max_bound`, 0 when not set
 */
gint
slim_qconfig_ext_get_max_bound (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), 0);
  return self->max_bound;
}

/**
 * slim_qconfig_ext_get_percdamp:
 * @self: an ext mapping
 *
 * Returns: `percdamp` (0.01 by default; the quantizer checks it is > 0)
 */
double
slim_qconfig_ext_get_percdamp (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), SLIM_GPTQ_PERCDAMP_DEFAULT);
  return self->percdamp;
}

/**
 * slim_qconfig_ext_get_block_size:
 * @self: an ext mapping
 *
 * Returns: `block_size` (128 by default, >= 1)
 */
gint64
slim_qconfig_ext_get_block_size (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), SLIM_GPTQ_BLOCK_SIZE_DEFAULT);
  return self->block_size;
}

/**
 * slim_qconfig_ext_get_act_order:
 * @self: an ext mapping
 *
 * Returns: `act_order` (FALSE by default)
 */
gboolean
slim_qconfig_ext_get_act_order (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), FALSE);
  return self->act_order;
}

/**
 * slim_qconfig_ext_get_share_hessian:
 * @self: an ext mapping
 *
 * Returns: `share_hessian` (TRUE by default)
 */
gboolean
slim_qconfig_ext_get_share_hessian (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), TRUE);
  return self->share_hessian;
}

/**
 * slim_qconfig_ext_get_search_method:
 * @self: an ext mapping
 *
 * Returns: `search_method` (l2_norm by default)
 */
SlimHistogramMetric
slim_qconfig_ext_get_search_method (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), SLIM_HISTOGRAM_L2_NORM);
  return self->search_method;
}

/**
 * slim_qconfig_ext_get_step:
 * @self: an ext mapping
 *
 * Returns: `step`, 0 when not set (the ssz default applies)
 */
gint64
slim_qconfig_ext_get_step (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), 0);
  return self->step;
}

/**
 * slim_qconfig_ext_get_axes:
 * @self: an ext mapping
 *
 * Returns: `axes`, %SLIM_QCONFIG_AXES_UNSET when not given
 */
gint
slim_qconfig_ext_get_axes (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), SLIM_QCONFIG_AXES_UNSET);
  return self->axes;
}

/**
 * slim_qconfig_ext_get_scale_dtype:
 * @self: an ext mapping
 *
 * Returns: `scale_dtype` (bfloat16 by default, msModelSlim's)
 */
SlimQScaleDType
slim_qconfig_ext_get_scale_dtype (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), SLIM_QSCALE_DTYPE_BFLOAT16);
  return self->scale_dtype;
}

/**
 * slim_qconfig_ext_get_sigma_factor:
 * @self: an ext mapping
 *
 * Returns: `sigma_factor`, 0 when not set (no sigma clipping)
 */
double
slim_qconfig_ext_get_sigma_factor (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), 0.0);
  return self->sigma_factor;
}

/**
 * slim_qconfig_ext_get_dual_block_size:
 * @self: an ext mapping
 *
 * Returns: `dual_block_size`, 0 when not set
 */
gint64
slim_qconfig_ext_get_dual_block_size (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), 0);
  return self->dual_block_size;
}

/**
 * slim_qconfig_ext_get_ceil_x_value:
 * @self: an ext mapping
 *
 * Returns: `ceil_x_value` (7.25 by default)
 */
double
slim_qconfig_ext_get_ceil_x_value (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), 7.25);
  return self->ceil_x_value;
}

/**
 * slim_qconfig_ext_get_ceil_x_search:
 * @self: an ext mapping
 * @search_min: (out): `search_min`
 * @search_max: (out): `search_max`
 * @search_step: (out): `search_step`
 *
 * Returns: `enable_search`
 */
gboolean
slim_qconfig_ext_get_ceil_x_search (SlimQConfigExt *self,
                                    double *search_min,
                                    double *search_max,
                                    double *search_step)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), FALSE);
  *search_min = self->search_min;
  *search_max = self->search_max;
  *search_step = self->search_step;
  return self->enable_search;
}
