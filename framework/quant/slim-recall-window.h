/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-recall-window.h: the "recall window" range estimate of fa3_quant
 * (modelslim-v1-spec.md 2.9; msModelSlim core/observer/recall_window.py):
 * of n values, the narrowest interval [lo, hi] holding
 * target = (gint64) (ratio * n) of them (at least 1), i.e. the range with
 * the (1 - ratio) most isolated extremes cut.  On sorted values s, the
 * windows are [s[i], s[i + target - 1]]; the first (smallest i) of
 * minimal width wins, as in msModelSlim.
 *
 * slim_recall_window() sorts (O(n log n)); slim_recall_window_ref() is its
 * plain oracle (no sort: for each candidate left end, count and select by
 * brute force, O(n^2)), for tests on small inputs.  Both ignore nothing:
 * the values must be finite (callers check).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Number of values a window of ratio over n values holds: max (1,
 * (gint64) (ratio * n)), n for ratio >= 1; 0 when n == 0. */
gint64 slim_recall_window_target (gint64 n, double ratio);

/* lo/hi of the window; n >= 1, ratio in (0, 1]. scratch holds n floats
 * (may be NULL: allocated). */
void slim_recall_window (const float *x, /* (n) */
                         gint64 n,
                         double ratio,
                         float *scratch, /* (n) or NULL */
                         float *out_lo,
                         float *out_hi);
void slim_recall_window_ref (const float *x, /* (n) */
                             gint64 n,
                             double ratio,
                             float *out_lo,
                             float *out_hi);

G_END_DECLS
