/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ifmr.h: IFMR clip search (AMCT's `ifmr_quantize` data quantization
 * algorithm, used by dynamic_cache `qconfig.method: ifmr`), one channel's
 * samples at a time, float32 data, error sums in float64:
 *
 *   sorted ascending x (n), p_max = max_percentile, p_min = min_percentile
 *   init_max = x[ceil(p_max * n) - 1]            (p_max = 1: the maximum)
 *   init_min = x[n - ceil(p_min * n)]            (p_min = 1: the minimum)
 *   for s = start, start + step, ..., <= end (+1e-6 * step):
 *     (scale, offset) = slim_qparams_compute (s * init_min, s * init_max)
 *     mse(s) = mean over x of (x - fake_quantize (x))^2
 *   clip = s* x (init_min, init_max), s* the first s of minimal mse.
 *
 * AMCT's defaults: max_percentile = min_percentile = 0.999999,
 * search_range [0.7, 1.3], search_step 0.01.
 */
#pragma once

#include <glib.h>

#include "slim-qparams.h"

G_BEGIN_DECLS

#define SLIM_IFMR_MAX_CANDIDATES 100000

typedef struct
{
  double max_percentile; /* (0.5, 1] */
  double min_percentile; /* (0.5, 1] */
  double search_start;   /* > 0 */
  double search_end;     /* >= search_start */
  double search_step;    /* > 0 */
} SlimIfmrConfig;

/* AMCT's defaults (above). */
void slim_ifmr_config_init_default (SlimIfmrConfig *self);

/* FALSE with SLIM_CONFIG_ERROR_BAD_VALUE naming the offending key
 * (prefix + "max_percentile", ...) when a field is out of range or the
 * search has more than SLIM_IFMR_MAX_CANDIDATES candidates. */
gboolean slim_ifmr_config_check (const SlimIfmrConfig *self, const char *prefix, GError **error);

/* Number of candidates s of the search. */
gint64 slim_ifmr_n_candidates (const SlimIfmrConfig *self);

/* Mean squared error of fake-quantizing x with the qparams of
 * [clip_min, clip_max] (slim_fake_quantize_rows; work (n) scratch). */
double slim_ifmr_mse (const SlimQParamsConfig *qparams,
                      const float *x, /* (n) */
                      gint64 n,
                      float clip_min,
                      float clip_max,
                      float *work /* (n) */);

/* The search on x (n >= 1; x is not modified; work (2 n) scratch): the
 * clip bounds and their mse.  Sorts once, fake-quantizes with the
 * vectorised kernel. */
void slim_ifmr_search (const SlimQParamsConfig *qparams,
                       const SlimIfmrConfig *config,
                       const float *x, /* (n) */
                       gint64 n,
                       float *work, /* (2 n) */
                       float *out_clip_min,
                       float *out_clip_max,
                       double *out_mse /* nullable */);
/* The same with plain loops: percentiles by counting order statistics
 * (O(n^2)), fake quantization element by element (test oracle). */
void slim_ifmr_search_ref (const SlimQParamsConfig *qparams,
                           const SlimIfmrConfig *config,
                           const float *x, /* (n) */
                           gint64 n,
                           float *out_clip_min,
                           float *out_clip_max,
                           double *out_mse /* nullable */);

G_END_DECLS
