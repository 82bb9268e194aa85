/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ifmr.c: IFMR clip search (slim-ifmr.h).
 */
#include "slim-ifmr.h"

#include "slim-error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void
slim_ifmr_config_init_default (SlimIfmrConfig *self)
{
  g_return_if_fail (self != NULL);
  self->max_percentile = 0.999999;
  self->min_percentile = 0.999999;
  self->search_start = 0.7;
  self->search_end = 1.3;
  self->search_step = 0.01;
}

gint64
slim_ifmr_n_candidates (const SlimIfmrConfig *self)
{
  double span = (self->search_end - self->search_start) / self->search_step;

  if (!(span >= 0.0) || span > (double)SLIM_IFMR_MAX_CANDIDATES)
    return span > 0.0 ? SLIM_IFMR_MAX_CANDIDATES + 1 : 0;
  return (gint64)floor (span + 1e-6) + 1;
}

static gboolean
slim_ifmr_percentile_ok (double p, const char *prefix, const char *key, GError **error)
{
  if (p > 0.5 && p <= 1.0)
    return TRUE;
  g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
               "%s%s: %g is out of range; valid: 0.5 < %s <= 1", prefix, key, p, key);
  return FALSE;
}

/**
 * slim_ifmr_config_check:
 * @self: a config
 * @prefix: prepended to the key names in messages ("dynamic_cache: ifmr.")
 * @error: return location for a #GError
 *
 * Returns: %TRUE when every field is in range
 */
gboolean
slim_ifmr_config_check (const SlimIfmrConfig *self, const char *prefix, GError **error)
{
  g_return_val_if_fail (self != NULL && prefix != NULL, FALSE);
  if (!slim_ifmr_percentile_ok (self->max_percentile, prefix, "max_percentile", error)
      || !slim_ifmr_percentile_ok (self->min_percentile, prefix, "min_percentile", error))
    return FALSE;
  if (!(self->search_step > 0.0))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "%ssearch_step: %g; valid: search_step > 0", prefix, self->search_step);
      return FALSE;
    }
  if (!(self->search_start > 0.0) || !(self->search_start <= self->search_end))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "%ssearch_range_start / search_range_end: [%g, %g]; valid: 0 < "
                   "search_range_start <= search_range_end",
                   prefix, self->search_start, self->search_end);
      return FALSE;
    }
  if (slim_ifmr_n_candidates (self) > SLIM_IFMR_MAX_CANDIDATES)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "%ssearch_step: %g gives more than %d candidates over [%g, %g]", prefix,
                   self->search_step, SLIM_IFMR_MAX_CANDIDATES, self->search_start,
                   self->search_end);
      return FALSE;
    }
  return TRUE;
}

/* Index of the p-quantile in an ascending (n): the max side. */
static gint64
slim_ifmr_max_index (double p, gint64 n)
{
  gint64 i = (gint64)ceil (p * (double)n) - 1;
  return CLAMP (i, 0, n - 1);
}

static gint64
slim_ifmr_min_index (double p, gint64 n)
{
  gint64 i = n - (gint64)ceil (p * (double)n);
  return CLAMP (i, 0, n - 1);
}

static float
slim_ifmr_candidate (const SlimIfmrConfig *config, gint64 i)
{
  return (float)(config->search_start + (double)i * config->search_step);
}

/**
 * slim_ifmr_mse:
 *
 * Returns: mean of (x - fake_quantize (x))^2 with the qparams of the clip
 */
double
slim_ifmr_mse (const SlimQParamsConfig *qparams,
               const float *x,
               gint64 n,
               float clip_min,
               float clip_max,
               float *work)
{
  float scale, offset;
  double sum = 0.0;

  slim_qparams_compute (qparams, clip_min, clip_max, &scale, &offset);
  slim_fake_quantize_rows (qparams, x, 1, n, &scale, &offset, 1, work);
  for (gint64 i = 0; i < n; i++)
    {
      double d = (double)x[i] - (double)work[i];
      sum += d * d;
    }
  return sum / (double)n;
}

static int
slim_ifmr_cmp_float (const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/**
 * slim_ifmr_search:
 *
 * See slim-ifmr.h.
 */
void
slim_ifmr_search (const SlimQParamsConfig *qparams,
                  const SlimIfmrConfig *config,
                  const float *x,
                  gint64 n,
                  float *work,
                  float *out_clip_min,
                  float *out_clip_max,
                  double *out_mse)
{
  float *sorted = work;      /* (n) */
  float *scratch = work + n; /* (n) */
  float init_min, init_max;
  gint64 n_cand = slim_ifmr_n_candidates (config);
  double best = INFINITY;
  float best_min = 0.0f, best_max = 0.0f;

  g_return_if_fail (n >= 1 && out_clip_min != NULL && out_clip_max != NULL);
  memcpy (sorted, x, (gsize)n * sizeof (float));
  qsort (sorted, (gsize)n, sizeof (float), slim_ifmr_cmp_float);
  init_max = sorted[slim_ifmr_max_index (config->max_percentile, n)];
  init_min = sorted[slim_ifmr_min_index (config->min_percentile, n)];
  for (gint64 i = 0; i < n_cand; i++)
    {
      float s = slim_ifmr_candidate (config, i);
      double e = slim_ifmr_mse (qparams, x, n, s * init_min, s * init_max, scratch);
      if (e < best)
        {
          best = e;
          best_min = s * init_min;
          best_max = s * init_max;
        }
    }
  *out_clip_min = best_min;
  *out_clip_max = best_max;
  if (out_mse != NULL)
    *out_mse = best;
}

/* The k-th smallest (0-based) of x by counting. */
static float
slim_ifmr_order_statistic_ref (const float *x, gint64 n, gint64 k)
{
  for (gint64 i = 0; i < n; i++)
    {
      gint64 less = 0, equal = 0;
      for (gint64 j = 0; j < n; j++)
        {
          less += x[j] < x[i];
          equal += x[j] == x[i];
        }
      if (less <= k && k < less + equal)
        return x[i];
    }
  g_return_val_if_reached (x[0]);
}

/**
 * slim_ifmr_search_ref:
 *
 * See slim-ifmr.h.
 */
void
slim_ifmr_search_ref (const SlimQParamsConfig *qparams,
                      const SlimIfmrConfig *config,
                      const float *x,
                      gint64 n,
                      float *out_clip_min,
                      float *out_clip_max,
                      double *out_mse)
{
  float init_max
      = slim_ifmr_order_statistic_ref (x, n, slim_ifmr_max_index (config->max_percentile, n));
  float init_min
      = slim_ifmr_order_statistic_ref (x, n, slim_ifmr_min_index (config->min_percentile, n));
  gint64 n_cand = slim_ifmr_n_candidates (config);
  double best = INFINITY;
  float best_min = 0.0f, best_max = 0.0f;

  for (gint64 i = 0; i < n_cand; i++)
    {
      float s = slim_ifmr_candidate (config, i);
      float scale, offset;
      double sum = 0.0;

      slim_qparams_compute (qparams, s * init_min, s * init_max, &scale, &offset);
      for (gint64 j = 0; j < n; j++)
        {
          float fq;
          double d;
          slim_fake_quantize_rows_ref (qparams, &x[j], 1, 1, &scale, &offset, 1, &fq);
          d = (double)x[j] - (double)fq;
          sum += d * d;
        }
      sum /= (double)n;
      if (sum < best)
        {
          best = sum;
          best_min = s * init_min;
          best_max = s * init_max;
        }
    }
  *out_clip_min = best_min;
  *out_clip_max = best_max;
  if (out_mse != NULL)
    *out_mse = best;
}
