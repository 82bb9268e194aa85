/* SPDX-License-Identifier: Apache-2.0
 *
 * bench-run.c: a benchmarked child process (see bench-run.h).
 */
#include "bench-run.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

gboolean
bench_run_child (char **argv,
                 char **envp_extra,
                 const char *stdout_path,
                 const char *stderr_path,
                 BenchRun *run,
                 GError **error)
{
  struct rusage usage;
  gint64 t0 = g_get_monotonic_time ();
  int status = 0;
  pid_t pid;

  fflush (stdout); /* the child must not inherit unwritten output */
  pid = fork ();
  if (pid < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "fork: %s",
                   g_strerror (errno));
      return FALSE;
    }
  if (pid == 0)
    {
      if (freopen (stdout_path, "w", stdout) == NULL || freopen (stderr_path, "w", stderr) == NULL)
        _exit (127);
      for (guint i = 0; envp_extra != NULL && envp_extra[i] != NULL; i++)
        {
          g_auto (GStrv) kv = g_strsplit (envp_extra[i], "=", 2);
          if (kv[0] != NULL && kv[1] != NULL)
            g_setenv (kv[0], kv[1], TRUE);
        }
      execv (argv[0], argv);
      _exit (127);
    }
  while (wait4 (pid, &status, 0, &usage) < 0)
    if (errno != EINTR)
      {
        g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "wait4: %s",
                     g_strerror (errno));
        return FALSE;
      }
  run->wall_s = (double)(g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  run->cpu_s = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6
               + (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec / 1e6;
  run->peak_rss_mib = (double)usage.ru_maxrss / 1024.0; /* KiB on Linux */
  run->exit_code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
  g_file_get_contents (stdout_path, &run->out, NULL, NULL);
  g_file_get_contents (stderr_path, &run->err, NULL, NULL);
  return TRUE;
}

void
bench_run_clear (BenchRun *run)
{
  g_clear_pointer (&run->out, g_free);
  g_clear_pointer (&run->err, g_free);
}

double
bench_path_mib (const char *path)
{
  GStatBuf st;
  GDir *dir;
  const char *name;
  double total = 0.0;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    return g_stat (path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0.0;
  dir = g_dir_open (path, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      total += bench_path_mib (child);
    }
  if (dir != NULL)
    g_dir_close (dir);
  return total;
}
