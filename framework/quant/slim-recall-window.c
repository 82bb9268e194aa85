/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-recall-window.c: the recall window range estimate (see
 * slim-recall-window.h).
 */
#include "slim-recall-window.h"

#include <stdlib.h>
#include <string.h>

gint64
slim_recall_window_target (gint64 n, double ratio)
{
  gint64 target;

  if (n <= 0)
    return 0;
  if (ratio >= 1.0)
    return n;
  /* Python's int (ratio * total) truncates toward zero */
  target = (gint64)(ratio * (double)n);
  return CLAMP (target, 1, n);
}

static int
slim_recall_window_cmp (const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;

  return (x > y) - (x < y);
}

void
slim_recall_window (
    const float *x, gint64 n, double ratio, float *scratch, float *out_lo, float *out_hi)
{
  g_autofree float *owned = NULL;
  float *s = scratch; /* (n) sorted copy of x */
  gint64 target, best = 0;
  float best_width;

  g_return_if_fail (x != NULL && n >= 1 && out_lo != NULL && out_hi != NULL);

  if (s == NULL)
    s = owned = g_new (float, n);
  memcpy (s, x, (gsize)n * sizeof (float));
  qsort (s, (size_t)n, sizeof (float), slim_recall_window_cmp);
  target = slim_recall_window_target (n, ratio);
  best_width = s[target - 1] - s[0];
  for (gint64 i = 1; i + target - 1 < n; i++)
    {
      float width = s[i + target - 1] - s[i];
      if (width < best_width)
        {
          best_width = width;
          best = i;
        }
    }
  *out_lo = s[best];
  *out_hi = s[best + target - 1];
}

/* The target-th smallest value (1-based) among x[j] >= lo, or +inf when
 * fewer values are >= lo: the right end of the window starting at lo. */
static float
slim_recall_window_right_ref (const float *x, gint64 n, float lo, gint64 target)
{
  float prev = lo;
  gint64 counted = 0;

  /* walk the distinct values >= lo upwards, counting multiplicities */
  for (;;)
    {
      float next = 0.0f;
      gboolean found = FALSE;
      gint64 mult = 0;

      for (gint64 j = 0; j < n; j++)
        if ((counted == 0 ? x[j] >= prev : x[j] > prev) && (!found || x[j] < next))
          {
            next = x[j];
            found = TRUE;
          }
      if (!found)
        return G_MAXFLOAT;
      for (gint64 j = 0; j < n; j++)
        mult += x[j] == next;
      counted += mult;
      if (counted >= target)
        return next;
      prev = next;
    }
}

void
slim_recall_window_ref (const float *x, gint64 n, double ratio, float *out_lo, float *out_hi)
{
  gint64 target = slim_recall_window_target (n, ratio);
  gboolean have = FALSE;
  float best_lo = 0.0f, best_hi = 0.0f;

  g_return_if_fail (x != NULL && n >= 1 && out_lo != NULL && out_hi != NULL);

  /* every value is a candidate left end; minimal width, ties to the
   * smallest left end (the first window in sorted order) */
  for (gint64 i = 0; i < n; i++)
    {
      float lo = x[i];
      float hi = slim_recall_window_right_ref (x, n, lo, target);

      if (hi == G_MAXFLOAT)
        continue;
      if (!have || hi - lo < best_hi - best_lo || (hi - lo == best_hi - best_lo && lo < best_lo))
        {
          best_lo = lo;
          best_hi = hi;
          have = TRUE;
        }
    }
  *out_lo = best_lo;
  *out_hi = best_hi;
}
