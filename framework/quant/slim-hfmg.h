/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hfmg.h: HFMG clip search (AMCT's `hfmg_quantize` data quantization
 * algorithm, used by dynamic_cache `qconfig.method: hfmg`), one channel's
 * histogram at a time:
 *
 *   accumulate  a histogram of num_of_bins equal bins over [lo, hi], the
 *               running range of the data: the first update takes its
 *               min/max; an update outside the range widens it to the
 *               union and rebins the old counts onto the new bins (each old
 *               bin's count spread uniformly over its extent);
 *   error       of a clip range [edge(start), edge(end + 1)] (bin edges):
 *               the histogram as points at the bin centres c_b with weight
 *               count_b, err = sum count_b (c_b - fake_quantize (c_b))^2 /
 *               sum count_b with the qparams of the clip range (int8,
 *               slim_qparams_compute);
 *   search      from the full range [0, B-1], drop one end bin at a time,
 *               the one with the smaller count (ties: the end farther from
 *               zero), down to one bin, evaluating every
 *               ceil(B / SLIM_HFMG_MAX_CANDIDATES)-th step of that path
 *               (and its last); the clip is the candidate of minimal error
 *               (the first, i.e. widest, of equals).
 *
 * slim_hfmg_search() evaluates each candidate in O(min(nnz, 256 log nnz))
 * (nnz non-empty bins) with prefix sums over runs of non-empty bins mapping
 * to one level; slim_hfmg_search_ref() sums over every bin (O(B) per
 * candidate).  A search has at most SLIM_HFMG_MAX_CANDIDATES + 1
 * candidates (cost bound: 4096 bins would otherwise be 4096 candidates per
 * channel, minutes on stories260K).
 */
#pragma once

#include <glib.h>

#include "slim-qparams.h"

G_BEGIN_DECLS

#define SLIM_HFMG_DEFAULT_BINS 4096
#define SLIM_HFMG_MAX_CANDIDATES 512

/* num_of_bins in AMCT's {1024, 2048, 4096, 8192}; the error names
 * prefix + "num_of_bins" and the valid set. */
gboolean slim_hfmg_bins_check (gint64 n_bins, const char *prefix, GError **error);

typedef struct
{
  gint64 n_bins;
  float lo, hi;  /* histogram range, valid when n_total > 0 */
  double *count; /* (n_bins) */
  double n_total;
} SlimHfmgHistogram;

void slim_hfmg_histogram_init (SlimHfmgHistogram *self, gint64 n_bins);
void slim_hfmg_histogram_clear (SlimHfmgHistogram *self);
/* Adds the finite values x[i * stride], i < n. */
void slim_hfmg_histogram_update (SlimHfmgHistogram *self,
                                 const float *x, /* (n, stride) row-major, column 0 used */
                                 gint64 n,
                                 gint64 stride);

/* The error of the clip range of bins [start_bin, end_bin]. */
double slim_hfmg_error_ref (const SlimQParamsConfig *qparams,
                            const SlimHfmgHistogram *h,
                            gint64 start_bin,
                            gint64 end_bin);

/* The search (n_total > 0): clip bounds and their error. */
void slim_hfmg_search (const SlimQParamsConfig *qparams,
                       const SlimHfmgHistogram *h,
                       float *out_clip_min,
                       float *out_clip_max,
                       double *out_error /* nullable */);
void slim_hfmg_search_ref (const SlimQParamsConfig *qparams,
                           const SlimHfmgHistogram *h,
                           float *out_clip_min,
                           float *out_clip_max,
                           double *out_error /* nullable */);

G_END_DECLS
