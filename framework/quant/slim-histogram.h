/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-histogram.h: the histogram activation observer of `method:
 * histogram` (modelslim-v1-spec.md 2.10; msModelSlim
 * core/observer/histogram.py HistogramObserver and
 * core/quantizer/impl/histogram.py ActPerTensorHistogram), int8
 * per_tensor, float32 as torch computes it.
 *
 * update(x), once per calibration forward:
 *   NaN and infinite elements are dropped; if min(x) == max(x) the clip
 *   bounds become (min, max) and the histogram is not touched;
 *   histogram (2048 bins, torch.histc semantics): the first call bins x
 *   over [min(x), max(x)]; a later call bins x over the grown range
 *   [min(lo, min x), max(hi, max x)] and adds the old histogram, mapped to
 *   the new range by upsampling each bin 16x and moving the sub-bin mid-
 *   points (the update of current torch's HistogramObserver, whose
 *   _upscale_histogram msModelSlim's own merge code copies; torch 2.1's
 *   older _adjust_min_max/_combine_histograms grid differs);
 *   search: msModelSlim's _non_linear_param_search over the histogram
 *   (start at the full range, step the quantile bounds by 1e-5, stop when
 *   the error grows) with the L2 norm error (default) or the KL divergence;
 *   clip: min and max of this call's x inside the searched range.
 * qparams: calculate_qparam(clip_min, clip_max) (slim_qparams_compute);
 * the calibration output is fake_quantize(x) clamped to the clip bounds.
 *
 * As msModelSlim does, the clip bounds come from the *last* call's x and
 * the search range from the accumulated histogram.  msModelSlim's move
 * rule is swapped against torch's (it moves the sparser side's opposite
 * end first), so on typical data the first candidate is (2046, 2047),
 * its error is huge and the search returns the full histogram range:
 * then clip = the last call's min/max (oracle README "histogram search
 * never clips").  This port keeps that behaviour.
 *
 * Known ulp-level difference: torch's vectorised linspace (used for the
 * range-growth mapping only) forms some points as base + k * step instead
 * of start + i * step; the scalar formula is used here, which can move an
 * upsampled mid-point lying within an ulp of a bin edge to the neighbour
 * bin.  The first call (the oracle cases) does not use linspace.
 */
#pragma once

#include <glib-object.h>

#include "slim-qparams.h"

G_BEGIN_DECLS

#define SLIM_HISTOGRAM_BINS 2048
#define SLIM_HISTOGRAM_DST_NBINS 256 /* torch: 2^8 levels of quint8 */
#define SLIM_HISTOGRAM_UPSAMPLE_RATE 16
#define SLIM_HISTOGRAM_STEPSIZE 1e-5

typedef enum
{
  SLIM_HISTOGRAM_L2_NORM,       /* msModelSlim's default (search_method l2_norm) */
  SLIM_HISTOGRAM_KL_DIVERGENCE, /* search_method kl_divergence */
} SlimHistogramMetric;

/* Nicks "l2_norm" and "kl_divergence" (msModelSlim's SearchMethod values). */
GType slim_histogram_metric_get_type (void);
#define SLIM_TYPE_HISTOGRAM_METRIC (slim_histogram_metric_get_type ())

/* torch.histc(x, bins, lo, hi) (lo < hi), float32 counts: element e in
 * [lo, hi] goes to bin (int) ((e - lo) * bins / (hi - lo)), the top edge to
 * the last bin; NaN and elements outside are skipped. */
void slim_histogram_histc (const float *x, /* (n) */
                           gint64 n,
                           float lo,
                           float hi,
                           float *hist /* (SLIM_HISTOGRAM_BINS) out */);

/* The histogram of [orig_min, orig_max] in the wider [new_min, new_max]
 * (msModelSlim's _upscale_histogram with upsample rate 16). */
void slim_histogram_upscale (const float *hist, /* (SLIM_HISTOGRAM_BINS) */
                             float orig_min,
                             float orig_max,
                             float new_min,
                             float new_max,
                             float *out /* (SLIM_HISTOGRAM_BINS) */);

/* Error of quantizing the histogram of [min_val, max_val] with the clip
 * range of bins [start_bin, end_bin] (_compute_l2_error: 256 destination
 * bins, _compute_kl_error: fake quantization with qparams of the clip
 * range), as torch computes it in float32.  qparams is used by the KL
 * divergence only. */
double slim_histogram_quantization_error (const float *hist, /* (SLIM_HISTOGRAM_BINS) */
                                          float min_val,
                                          float max_val,
                                          gint64 start_bin,
                                          gint64 end_bin,
                                          SlimHistogramMetric metric,
                                          const SlimQParamsConfig *qparams);
/* The same formulas evaluated in float64 (test oracle). */
double slim_histogram_quantization_error_ref (const float *hist, /* (SLIM_HISTOGRAM_BINS) */
                                              float min_val,
                                              float max_val,
                                              gint64 start_bin,
                                              gint64 end_bin,
                                              SlimHistogramMetric metric,
                                              const SlimQParamsConfig *qparams);

/* _non_linear_param_search: the searched range (new_min, new_max) and its
 * bins; an empty histogram returns (min_val, max_val). */
void slim_histogram_search (const float *hist, /* (SLIM_HISTOGRAM_BINS) */
                            float min_val,
                            float max_val,
                            SlimHistogramMetric metric,
                            const SlimQParamsConfig *qparams,
                            float *out_min,
                            float *out_max,
                            gint64 *out_start_bin, /* nullable */
                            gint64 *out_end_bin /* nullable */);

/* The observer of one activation (per_tensor). */
typedef struct
{
  SlimQParamsConfig qparams;
  SlimHistogramMetric metric;
  float histogram[SLIM_HISTOGRAM_BINS]; /* counts */
  float min_val;                        /* histogram range, +inf before the first histogram */
  float max_val;                        /* -inf before the first histogram */
  float search_min;                     /* last search result */
  float search_max;
  float clip_min; /* last clip bounds (valid when has_clip) */
  float clip_max;
  gboolean has_clip;
  gint64 n_updates;
  gint64 n_dropped; /* NaN / infinite elements dropped so far */
} SlimHistogramObserver;

void slim_histogram_observer_init (SlimHistogramObserver *self,
                                   const SlimQParamsConfig *qparams,
                                   SlimHistogramMetric metric);
/* FALSE with SLIM_NUMERIC_ERROR_NON_FINITE when x has no finite element
 * (msModelSlim: "Input tensor is empty"); NaN / inf elements are otherwise
 * dropped (counted in n_dropped) as msModelSlim does with a warning. */
gboolean slim_histogram_observer_update (SlimHistogramObserver *self,
                                         const float *x, /* (n) */
                                         gint64 n,
                                         GError **error);
/* The clip bounds and their qparams; FALSE with
 * SLIM_PIPELINE_ERROR_FAILED before any update. */
gboolean slim_histogram_observer_get_qparams (const SlimHistogramObserver *self,
                                              float *out_clip_min,
                                              float *out_clip_max,
                                              float *out_scale,
                                              float *out_offset,
                                              GError **error);

/* ActPerTensorHistogram's output: fake_quantize(x) clamped to
 * [clip_min, clip_max]; out may alias x. */
void slim_histogram_fake_quantize (const SlimQParamsConfig *qparams,
                                   const float *x, /* (n) */
                                   gint64 n,
                                   float scale,
                                   float offset,
                                   float clip_min,
                                   float clip_max,
                                   float *out /* (n) */);

G_END_DECLS
