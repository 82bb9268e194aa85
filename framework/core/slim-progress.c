/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-progress.c: the progress line.  The rate is the mean since the
 * start (steady for layer-by-layer work, where the per-update rate jumps);
 * ETA = remaining / rate.
 */
#include "slim-progress.h"

#include <stdio.h>
#include <unistd.h>

/* Redraw at most 4 times per second, and only after the first second so
 * that short runs print nothing. */
#define SLIM_PROGRESS_INTERVAL_US (G_USEC_PER_SEC / 4)
#define SLIM_PROGRESS_DELAY_US G_USEC_PER_SEC

struct _SlimProgress
{
  char *label;
  char *unit;
  gint64 n_total;
  gint64 n_done;
  gboolean enabled;
  gint64 start_us;
  gint64 last_draw_us;
  gsize last_width; /* characters of the previous line, to blank leftovers */
  char *note;       /* appended to the line ("loss 12.3"), or NULL */
};

/**
 * slim_progress_default_enabled:
 * @force: the user asked for progress explicitly
 *
 * Returns: %TRUE when @force is set or stderr is a terminal
 */
gboolean
slim_progress_default_enabled (gboolean force)
{
  return force || isatty (STDERR_FILENO);
}

/**
 * slim_progress_new:
 * @label: what runs, e.g. "eval"
 * @unit: what is counted, e.g. "tokens"
 * @n_total: total amount of work (values below 1 are taken as 1)
 * @enabled: draw the line at all
 *
 * Returns: (transfer full): a progress reporter; free with slim_progress_free()
 */
SlimProgress *
slim_progress_new (const char *label, const char *unit, gint64 n_total, gboolean enabled)
{
  SlimProgress *self = g_new0 (SlimProgress, 1);
  self->label = g_strdup (label != NULL ? label : "");
  self->unit = g_strdup (unit != NULL ? unit : "");
  self->n_total = MAX (n_total, 1);
  self->enabled = enabled;
  self->start_us = g_get_monotonic_time ();
  self->last_draw_us = G_MININT64;
  return self;
}

static void
format_duration (GString *out, double seconds)
{
  gint64 s = (gint64)(seconds + 0.5);
  if (s >= 3600)
    g_string_append_printf (out, "%" G_GINT64_FORMAT ":%02d:%02d", s / 3600, (int)(s / 60 % 60),
                            (int)(s % 60));
  else
    g_string_append_printf (out, "%d:%02d", (int)(s / 60), (int)(s % 60));
}

/**
 * slim_progress_format:
 * @label: what runs
 * @unit: what is counted
 * @n_done: work done
 * @n_total: total work
 * @elapsed_s: seconds since the start
 *
 * Returns: (transfer full): the progress line, without "\r" or newline
 */
char *
slim_progress_format (
    const char *label, const char *unit, gint64 n_done, gint64 n_total, double elapsed_s)
{
  GString *out = g_string_new (NULL);
  n_total = MAX (n_total, 1);
  n_done = CLAMP (n_done, 0, n_total);
  g_string_append_printf (out, "%s  %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " %s  %.1f%%", label,
                          n_done, n_total, unit, 100.0 * (double)n_done / (double)n_total);
  if (n_done > 0 && elapsed_s > 0.0)
    {
      double rate = (double)n_done / elapsed_s;
      g_string_append_printf (out, "  %.*f %s/s", rate < 10.0 ? 2 : 0, rate, unit);
      if (n_done < n_total)
        {
          g_string_append (out, "  ETA ");
          format_duration (out, (double)(n_total - n_done) / rate);
        }
      else
        {
          g_string_append (out, "  in ");
          format_duration (out, elapsed_s);
        }
    }
  return g_string_free (out, FALSE);
}

static void
slim_progress_draw (SlimProgress *self, gint64 now_us, gboolean final)
{
  g_autofree char *bare
      = slim_progress_format (self->label, self->unit, self->n_done, self->n_total,
                              (double)(now_us - self->start_us) / G_USEC_PER_SEC);
  g_autofree char *line
      = self->note != NULL ? g_strconcat (bare, "  ", self->note, NULL) : g_strdup (bare);
  gsize width = g_utf8_strlen (line, -1);
  /* Blank what a longer previous line left behind. */
  fprintf (stderr, "\r%s%*s%s", line,
           (int)(self->last_width > width ? self->last_width - width : 0), "", final ? "\n" : "");
  fflush (stderr);
  self->last_width = width;
  self->last_draw_us = now_us;
}

/**
 * slim_progress_update:
 * @self: a #SlimProgress
 * @n_done: work done so far
 */
void
slim_progress_update (SlimProgress *self, gint64 n_done)
{
  g_return_if_fail (self != NULL);
  self->n_done = n_done;
  if (!self->enabled)
    return;
  gint64 now = g_get_monotonic_time ();
  if (now - self->start_us < SLIM_PROGRESS_DELAY_US)
    return;
  if (self->last_draw_us != G_MININT64 && now - self->last_draw_us < SLIM_PROGRESS_INTERVAL_US)
    return;
  slim_progress_draw (self, now, FALSE);
}

/**
 * slim_progress_finish:
 * @self: a #SlimProgress
 *
 * Draws the last state and ends the line (nothing when disabled or when
 * the line was never drawn, so short runs stay silent).
 */
void
slim_progress_finish (SlimProgress *self)
{
  g_return_if_fail (self != NULL);
  if (!self->enabled || self->last_draw_us == G_MININT64)
    return;
  slim_progress_draw (self, g_get_monotonic_time (), TRUE);
  self->enabled = FALSE;
}

/**
 * slim_progress_free:
 * @self: (transfer full): a #SlimProgress
 */
void
slim_progress_free (SlimProgress *self)
{
  if (self == NULL)
    return;
  g_free (self->label);
  g_free (self->unit);
  g_free (self->note);
  g_free (self);
}

/**
 * slim_progress_set_note:
 * @self: a #SlimProgress
 * @note: (nullable): a short text shown after the counts on the next
 *   redraws (a running loss), NULL for none
 */
void
slim_progress_set_note (SlimProgress *self, const char *note)
{
  g_return_if_fail (self != NULL);
  g_free (self->note);
  self->note = g_strdup (note);
}
