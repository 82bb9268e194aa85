/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-progress.h: one updating progress line on stderr for long runs:
 *
 *   eval  12800/806356 tokens  1.6%  25312 tokens/s  ETA 0:31
 *
 * The line is redrawn in place ("\r") at most a few times per second and
 * only when enabled: by the caller (a --progress option), or when stderr
 * is a terminal.  stdout is never touched, so results stay clean.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _SlimProgress SlimProgress;

/* label: what runs ("eval"); unit: what is counted ("tokens"); n_total:
 * the amount of work (> 0).  enabled: draw the line; FALSE makes every
 * call a no-op.  transfer full: free with slim_progress_free(). */
SlimProgress *
slim_progress_new (const char *label, const char *unit, gint64 n_total, gboolean enabled);
/* TRUE when stderr is a terminal or force is set: the usual "enabled". */
gboolean slim_progress_default_enabled (gboolean force);
/* n_done of n_total finished; redraws when the last redraw is older than
 * the refresh interval. */
void slim_progress_update (SlimProgress *self, gint64 n_done);
/* Draws the final state and ends the line. */
void slim_progress_finish (SlimProgress *self);
void slim_progress_free (SlimProgress *self);
/* A short text after the counts on the next redraws ("loss 12.3"); NULL
 * removes it. */
void slim_progress_set_note (SlimProgress *self, const char *note);

/* The text of the line (without "\r"), for elapsed_s seconds spent on
 * n_done of n_total.  The ETA is omitted until something is done.
 * transfer full. */
char *slim_progress_format (
    const char *label, const char *unit, gint64 n_done, gint64 n_total, double elapsed_s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimProgress, slim_progress_free)

G_END_DECLS
