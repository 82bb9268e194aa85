/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-phase-timer.h: where a quantization run spends its time, behind an
 * environment variable.  With SLIMFLOW_PROFILE set (non-empty), the
 * scheduler (slim-schedule.c) and the processors time named phases (wall
 * time and the CPU time of the whole process, BLAS threads included), and
 * the end of the run logs one line per phase ("profile rank R: PHASE wall
 * W s, cpu C s, N calls"); unset, every call is a check of one flag.
 * Phases may nest (a nested phase's time is also in its parent's).
 */
#ifndef SLIM_PHASE_TIMER_H
#define SLIM_PHASE_TIMER_H

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_PHASE_TIMER_ENV "SLIMFLOW_PROFILE"

/* One timing: what slim_phase_timer_begin() returns, for _end(). */
typedef struct
{
  gint phase; /* -1: profiling off */
  gint64 wall_us;
  gint64 cpu_us;
} SlimPhaseTiming;

SlimPhaseTiming slim_phase_timer_begin (const char *phase);
void slim_phase_timer_end (SlimPhaseTiming timing);
/* Logs every phase (g_message) with @rank as the line's rank, then resets. */
void slim_phase_timer_report (gint rank);

G_END_DECLS

#endif /* SLIM_PHASE_TIMER_H */
