/* SPDX-License-Identifier: Apache-2.0
 *
 * bench-run.h: one benchmarked program run in a child process, with the
 * kernel's figures for it: wall time around fork/wait4, peak resident
 * memory (wait4 rusage ru_maxrss) and the CPU time it used (user + system,
 * all its threads).  CPU time is less sensitive than wall time to other
 * processes sharing the cores.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  double wall_s;
  double cpu_s;        /* user + system */
  double peak_rss_mib; /* ru_maxrss */
  int exit_code;       /* 128 + signal when killed */
  char *out;           /* the child's stdout */
  char *err;           /* the child's stderr */
} BenchRun;

/* Runs argv (argv[0] a path) with stdout and stderr captured into the two
 * files, and envp_extra ("NAME=VALUE" strings, NULL-terminated, may be
 * NULL) added to its environment.  FALSE only when the child could not
 * be started or waited for. */
gboolean bench_run_child (char **argv,
                          char **envp_extra,
                          const char *stdout_path,
                          const char *stderr_path,
                          BenchRun *run,
                          GError **error);

void bench_run_clear (BenchRun *run);

/* MiB in the file or folder tree at path (0 when absent). */
double bench_path_mib (const char *path);

G_END_DECLS
