/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-phase-timer.c: named wall and CPU timers (see slim-phase-timer.h).
 */
#include "slim-phase-timer.h"

#include <string.h>
#include <time.h>

#define SLIM_PHASE_TIMER_MAX 32

typedef struct
{
  const char *name; /* static string of the caller */
  gint64 wall_us;
  gint64 cpu_us;
  guint64 n_calls;
} SlimPhase;

static SlimPhase slim_phases[SLIM_PHASE_TIMER_MAX];
static gint slim_n_phases;
static gint slim_phase_timer_on = -1; /* -1: environment not read yet */
G_LOCK_DEFINE_STATIC (slim_phase_timer);

static gint64
slim_phase_timer_cpu_us (void)
{
  struct timespec ts;

  if (clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
    return 0;
  return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

SlimPhaseTiming
slim_phase_timer_begin (const char *phase)
{
  SlimPhaseTiming timing = { -1, 0, 0 };
  gint i;

  if (slim_phase_timer_on == -1)
    {
      const char *value = g_getenv (SLIM_PHASE_TIMER_ENV);
      slim_phase_timer_on = value != NULL && *value != '\0';
    }
  if (!slim_phase_timer_on)
    return timing;
  G_LOCK (slim_phase_timer);
  for (i = 0; i < slim_n_phases && strcmp (slim_phases[i].name, phase) != 0; i++)
    ;
  if (i == slim_n_phases && slim_n_phases < SLIM_PHASE_TIMER_MAX)
    slim_phases[slim_n_phases++].name = phase;
  G_UNLOCK (slim_phase_timer);
  if (i == SLIM_PHASE_TIMER_MAX)
    return timing;
  timing.phase = i;
  timing.wall_us = g_get_monotonic_time ();
  timing.cpu_us = slim_phase_timer_cpu_us ();
  return timing;
}

void
slim_phase_timer_end (SlimPhaseTiming timing)
{
  gint64 wall, cpu;

  if (timing.phase < 0)
    return;
  wall = g_get_monotonic_time () - timing.wall_us;
  cpu = slim_phase_timer_cpu_us () - timing.cpu_us;
  G_LOCK (slim_phase_timer);
  slim_phases[timing.phase].wall_us += wall;
  slim_phases[timing.phase].cpu_us += cpu;
  slim_phases[timing.phase].n_calls++;
  G_UNLOCK (slim_phase_timer);
}

void
slim_phase_timer_report (gint rank)
{
  G_LOCK (slim_phase_timer);
  for (gint i = 0; i < slim_n_phases; i++)
    g_message ("profile rank %d: %-22s wall %7.2f s, cpu %7.2f s, %" G_GUINT64_FORMAT " calls",
               rank, slim_phases[i].name, (double)slim_phases[i].wall_us / G_USEC_PER_SEC,
               (double)slim_phases[i].cpu_us / G_USEC_PER_SEC, slim_phases[i].n_calls);
  memset (slim_phases, 0, sizeof slim_phases);
  slim_n_phases = 0;
  G_UNLOCK (slim_phase_timer);
}
