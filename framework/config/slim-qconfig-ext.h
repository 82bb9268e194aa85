/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qconfig-ext.h: the `ext` mapping of a quantizer config (msModelSlim
 * QConfig.ext, modelslim-v1-spec.md 2.1).  msModelSlim keeps it as a free
 * dictionary read by each quantizer; slimflow declares the keys its
 * quantizers read, so a misspelt key is an error instead of being ignored:
 *
 *   group_size        per_group weights: input features per group
 *   aggregation_type  per-tensor activation observer: max (default) or mean
 *   max_bound         replaces the largest integer magnitude (e.g. 119)
 *   percdamp          gptq weights: Hessian damping fraction, > 0 (0.01)
 *   block_size        gptq weights: columns per compensation block, >= 1 (128)
 *   act_order         gptq weights: descending-diag(H) column order (slimflow
 *                     extension, SlimGptqConfig.act_order; format unchanged)
 *   share_hessian     gptq weights: linears reading the same input share one
 *                     Hessian (slimflow extension, default true)
 *   search_method     histogram activations: l2_norm (default) or
 *                     kl_divergence (msModelSlim's HistogramObserverConfig
 *                     field, which its v1 YAML does not reach)
 *   step              ssz weights: most search iterations (0 = default 50)
 *   axes              msModelSlim's MX per_block shared-exponent axis; only -1
 *                     (the input features) is supported, and only for MX
 *   sigma_factor      minmax int weights: clip each row's / group's range to
 *                     mean +- k * std (slimflow extension from QuantConfig's
 *                     use_sigma / sigma_factor, slim-sigma.h; 0 = off, [3, 4])
 *   dual_block_size   mxfp4 dual_scale (method dualscale): elements per outer
 *                     block with one float32 scale, a multiple of 32 (required)
 *   ceil_x_value      mxfp4 per_block method ceil_x: divisor in [6, 12] (7.25)
 *   enable_search, search_min, search_max, search_step
 *                     ceil_x: MSE search of the divisor per weight tensor
 * Keys a quantizer does not read are accepted and ignored (as msModelSlim
 * does with ext entries another method reads); unknown keys are refused.
 */
#pragma once

#include <glib-object.h>
#include "slim-histogram.h"
#include "slim-qscheme.h"

G_BEGIN_DECLS

#define SLIM_TYPE_QCONFIG_EXT (slim_qconfig_ext_get_type ())
G_DECLARE_FINAL_TYPE (SlimQConfigExt, slim_qconfig_ext, SLIM, QCONFIG_EXT, GObject)

/* Largest group_size accepted (a group is a run of input features). */
#define SLIM_QCONFIG_MAX_GROUP_SIZE (1 << 24)
#define SLIM_QCONFIG_AXES_UNSET G_MININT /* `axes` not given */

/* 0 when not set. */
gint64 slim_qconfig_ext_get_group_size (SlimQConfigExt *self);
SlimQAggregation slim_qconfig_ext_get_aggregation_type (SlimQConfigExt *self);
/* 0 when not set (the dtype's own bound). */
gint slim_qconfig_ext_get_max_bound (SlimQConfigExt *self);
double slim_qconfig_ext_get_percdamp (SlimQConfigExt *self);
gint64 slim_qconfig_ext_get_block_size (SlimQConfigExt *self);
gboolean slim_qconfig_ext_get_act_order (SlimQConfigExt *self);
gboolean slim_qconfig_ext_get_share_hessian (SlimQConfigExt *self);
SlimHistogramMetric slim_qconfig_ext_get_search_method (SlimQConfigExt *self);
gint64 slim_qconfig_ext_get_step (SlimQConfigExt *self);
gint slim_qconfig_ext_get_axes (SlimQConfigExt *self);
/* bfloat16 when not set (msModelSlim's default). */
SlimQScaleDType slim_qconfig_ext_get_scale_dtype (SlimQConfigExt *self);
/* 0 when not set. */
double slim_qconfig_ext_get_sigma_factor (SlimQConfigExt *self);
/* 0 when not set. */
gint64 slim_qconfig_ext_get_dual_block_size (SlimQConfigExt *self);
double slim_qconfig_ext_get_ceil_x_value (SlimQConfigExt *self);
gboolean slim_qconfig_ext_get_ceil_x_search (SlimQConfigExt *self,
                                             double *search_min,
                                             double *search_max,
                                             double *search_step);

G_END_DECLS
