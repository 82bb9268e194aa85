/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hfmg.c: HFMG clip search (slim-hfmg.h).
 */
#include "slim-hfmg.h"

#include "slim-error.h"

#include <float.h>
#include <math.h>
#include <string.h>

gboolean
slim_hfmg_bins_check (gint64 n_bins, const char *prefix, GError **error)
{
  if (n_bins == 1024 || n_bins == 2048 || n_bins == 4096 || n_bins == 8192)
    return TRUE;
  g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
               "%snum_of_bins: %" G_GINT64_FORMAT " is not supported; valid: 1024, 2048, 4096, "
               "8192",
               prefix, n_bins);
  return FALSE;
}

void
slim_hfmg_histogram_init (SlimHfmgHistogram *self, gint64 n_bins)
{
  g_return_if_fail (self != NULL && n_bins >= 1);
  self->n_bins = n_bins;
  self->lo = 0.0f;
  self->hi = 0.0f;
  self->count = g_new0 (double, n_bins);
  self->n_total = 0.0;
}

void
slim_hfmg_histogram_clear (SlimHfmgHistogram *self)
{
  if (self == NULL)
    return;
  g_clear_pointer (&self->count, g_free);
  self->n_total = 0.0;
}

static float
slim_hfmg_width (const SlimHfmgHistogram *h)
{
  return (h->hi - h->lo) / (float)h->n_bins;
}

/* The centre of bin b (the one formula both searches use). */
static float
slim_hfmg_centre (const SlimHfmgHistogram *h, gint64 b)
{
  return h->lo + ((float)b + 0.5f) * slim_hfmg_width (h);
}

static float
slim_hfmg_edge (const SlimHfmgHistogram *h, gint64 b)
{
  return b >= h->n_bins ? h->hi : h->lo + (float)b * slim_hfmg_width (h);
}

/* Spreads the old counts over [lo, hi) onto the wider range. */
static void
slim_hfmg_rebin (SlimHfmgHistogram *h, float new_lo, float new_hi)
{
  gint64 n = h->n_bins;
  g_autofree double *old = h->count; /* (n_bins) */
  double old_w = ((double)h->hi - (double)h->lo) / (double)n;
  double new_w = ((double)new_hi - (double)new_lo) / (double)n;

  h->count = g_new0 (double, n);
  for (gint64 b = 0; b < n; b++)
    {
      double a0 = (double)h->lo + (double)b * old_w, a1 = a0 + old_w;
      gint64 j0, j1;

      if (old[b] == 0.0)
        continue;
      j0 = (gint64)floor ((a0 - (double)new_lo) / new_w);
      j1 = (gint64)floor ((a1 - (double)new_lo) / new_w);
      j0 = CLAMP (j0, 0, n - 1);
      j1 = CLAMP (j1, 0, n - 1);
      for (gint64 j = j0; j <= j1; j++)
        {
          double e0 = MAX (a0, (double)new_lo + (double)j * new_w);
          double e1 = MIN (a1, (double)new_lo + (double)(j + 1) * new_w);
          if (j0 == j1)
            e0 = a0, e1 = a1;
          if (e1 > e0)
            h->count[j] += old[b] * (e1 - e0) / old_w;
        }
    }
  h->lo = new_lo;
  h->hi = new_hi;
}

void
slim_hfmg_histogram_update (SlimHfmgHistogram *self, const float *x, gint64 n, gint64 stride)
{
  float mn = FLT_MAX, mx = -FLT_MAX;
  gboolean any = FALSE;
  double w;

  g_return_if_fail (self != NULL && self->count != NULL && stride >= 1);
  for (gint64 i = 0; i < n; i++)
    {
      float v = x[i * stride];
      if (!isfinite (v))
        continue;
      any = TRUE;
      mn = MIN (mn, v);
      mx = MAX (mx, v);
    }
  if (!any)
    return;
  if (self->n_total == 0.0)
    {
      self->lo = mn;
      self->hi = mx;
    }
  else if (mn < self->lo || mx > self->hi)
    slim_hfmg_rebin (self, MIN (mn, self->lo), MAX (mx, self->hi));
  if (self->hi - self->lo < FLT_EPSILON * MAX (1.0f, fabsf (self->lo)))
    {
      /* a constant channel: one bin wide enough to hold it */
      if (self->n_total > 0.0)
        {
          double total = self->n_total;
          memset (self->count, 0, (gsize)self->n_bins * sizeof (double));
          self->count[0] = total;
        }
      self->hi = self->lo + FLT_EPSILON * MAX (1.0f, fabsf (self->lo)) * (float)self->n_bins;
    }
  w = ((double)self->hi - (double)self->lo) / (double)self->n_bins;
  for (gint64 i = 0; i < n; i++)
    {
      float v = x[i * stride];
      gint64 b;
      if (!isfinite (v))
        continue;
      b = (gint64)(((double)v - (double)self->lo) / w);
      b = CLAMP (b, 0, self->n_bins - 1);
      self->count[b] += 1.0;
      self->n_total += 1.0;
    }
}

static float
slim_hfmg_fq (const SlimQParamsConfig *qparams, float scale, float offset, float c, gint8 *q)
{
  slim_quantize_rows_ref (qparams, &c, 1, 1, &scale, &offset, 1, q);
  return ((float)*q - offset) * scale;
}

double
slim_hfmg_error_ref (const SlimQParamsConfig *qparams,
                     const SlimHfmgHistogram *h,
                     gint64 start_bin,
                     gint64 end_bin)
{
  float scale, offset;
  double sum = 0.0, total = 0.0;

  slim_qparams_compute (qparams, slim_hfmg_edge (h, start_bin), slim_hfmg_edge (h, end_bin + 1),
                        &scale, &offset);
  for (gint64 b = 0; b < h->n_bins; b++)
    {
      float c = slim_hfmg_centre (h, b);
      gint8 q;
      double d = (double)c - (double)slim_hfmg_fq (qparams, scale, offset, c, &q);
      sum += h->count[b] * d * d;
      total += h->count[b];
    }
  return total > 0.0 ? sum / total : 0.0;
}

/* The non-empty bins (n) and prefix sums over them: s0 count, s1 count * c,
 * s2 count * c^2, (n + 1). */
typedef struct
{
  gint64 n;
  gint64 *bin; /* (n) */
  double *s0, *s1, *s2;
} SlimHfmgPrefix;

static double
slim_hfmg_error_fast (const SlimQParamsConfig *qparams,
                      const SlimHfmgHistogram *h,
                      const SlimHfmgPrefix *p,
                      gint64 start_bin,
                      gint64 end_bin)
{
  float scale, offset;
  double sum = 0.0;
  gint64 i = 0, n = p->n;

  slim_qparams_compute (qparams, slim_hfmg_edge (h, start_bin), slim_hfmg_edge (h, end_bin + 1),
                        &scale, &offset);
  while (i < n)
    {
      gint8 q, qq;
      double v = (double)slim_hfmg_fq (qparams, scale, offset, slim_hfmg_centre (h, p->bin[i]), &q);
      gint64 lo = i, hi = n - 1;
      double c0, c1, c2;

      /* last non-empty bin of the run mapping to level q (fq is monotone in c) */
      while (lo < hi)
        {
          gint64 mid = lo + (hi - lo + 1) / 2;
          slim_hfmg_fq (qparams, scale, offset, slim_hfmg_centre (h, p->bin[mid]), &qq);
          if (qq == q)
            lo = mid;
          else
            hi = mid - 1;
        }
      c0 = p->s0[lo + 1] - p->s0[i];
      c1 = p->s1[lo + 1] - p->s1[i];
      c2 = p->s2[lo + 1] - p->s2[i];
      sum += fmax (0.0, c2 - 2.0 * v * c1 + v * v * c0);
      i = lo + 1;
    }
  return p->s0[n] > 0.0 ? sum / p->s0[n] : 0.0;
}

/* The greedy path shared by both searches; error_of(start, end). */
typedef double (*SlimHfmgErrorFunc) (const SlimQParamsConfig *qparams,
                                     const SlimHfmgHistogram *h,
                                     const SlimHfmgPrefix *p,
                                     gint64 start_bin,
                                     gint64 end_bin);

static double
slim_hfmg_error_ref_adapter (const SlimQParamsConfig *qparams,
                             const SlimHfmgHistogram *h,
                             const SlimHfmgPrefix *p,
                             gint64 start_bin,
                             gint64 end_bin)
{
  return slim_hfmg_error_ref (qparams, h, start_bin, end_bin);
}

static void
slim_hfmg_greedy (const SlimQParamsConfig *qparams,
                  const SlimHfmgHistogram *h,
                  const SlimHfmgPrefix *p,
                  SlimHfmgErrorFunc error_of,
                  float *out_clip_min,
                  float *out_clip_max,
                  double *out_error)
{
  gint64 start = 0, end = h->n_bins - 1, best_start = 0, best_end = end;
  gint64 stride = (h->n_bins + SLIM_HFMG_MAX_CANDIDATES - 1) / SLIM_HFMG_MAX_CANDIDATES;
  double best = error_of (qparams, h, p, start, end);

  for (gint64 step = 1; start < end; step++)
    {
      double e;
      gboolean drop_start;

      if (h->count[start] != h->count[end])
        drop_start = h->count[start] < h->count[end];
      else
        drop_start = fabsf (slim_hfmg_edge (h, start)) > fabsf (slim_hfmg_edge (h, end + 1));
      if (drop_start)
        start++;
      else
        end--;
      if (step % stride != 0 && start < end)
        continue;
      e = error_of (qparams, h, p, start, end);
      if (e < best)
        {
          best = e;
          best_start = start;
          best_end = end;
        }
    }
  *out_clip_min = slim_hfmg_edge (h, best_start);
  *out_clip_max = slim_hfmg_edge (h, best_end + 1);
  if (out_error != NULL)
    *out_error = best;
}

void
slim_hfmg_search (const SlimQParamsConfig *qparams,
                  const SlimHfmgHistogram *h,
                  float *out_clip_min,
                  float *out_clip_max,
                  double *out_error)
{
  gint64 n;
  SlimHfmgPrefix p;

  g_return_if_fail (h != NULL && h->count != NULL && out_clip_min != NULL && out_clip_max != NULL);
  n = h->n_bins;
  p.bin = g_new (gint64, n);
  p.s0 = g_new (double, n + 1);
  p.s1 = g_new (double, n + 1);
  p.s2 = g_new (double, n + 1);
  p.s0[0] = p.s1[0] = p.s2[0] = 0.0;
  p.n = 0;
  for (gint64 b = 0; b < n; b++)
    {
      double c = (double)slim_hfmg_centre (h, b), k = h->count[b];
      if (k == 0.0)
        continue;
      p.bin[p.n] = b;
      p.s0[p.n + 1] = p.s0[p.n] + k;
      p.s1[p.n + 1] = p.s1[p.n] + k * c;
      p.s2[p.n + 1] = p.s2[p.n] + k * c * c;
      p.n++;
    }
  slim_hfmg_greedy (qparams, h, &p, slim_hfmg_error_fast, out_clip_min, out_clip_max, out_error);
  g_free (p.bin);
  g_free (p.s0);
  g_free (p.s1);
  g_free (p.s2);
}

void
slim_hfmg_search_ref (const SlimQParamsConfig *qparams,
                      const SlimHfmgHistogram *h,
                      float *out_clip_min,
                      float *out_clip_max,
                      double *out_error)
{
  g_return_if_fail (h != NULL && h->count != NULL && out_clip_min != NULL && out_clip_max != NULL);
  slim_hfmg_greedy (qparams, h, NULL, slim_hfmg_error_ref_adapter, out_clip_min, out_clip_max,
                    out_error);
}
