/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/dp: wall time and peak resident memory per rank of calibration-
 * heavy quantization (default: bench/gptq-w4a16.yaml, GPTQ W4A16 per group
 * 32 on every linear) of the bench model (bench-model.h: hidden 2048,
 * intermediate 5632) with layer_wise in one process against dp_layer_wise
 * under `mpirun -np N` (default 2), every process with one BLAS thread
 * (OPENBLAS_NUM_THREADS=1), 8 samples x <= 512 tokens by default.  It
 * prints each run's wall time, the speed-up, every rank's peak RSS (the
 * CLI's "rank r of N: peak resident memory" debug line) and whether the
 * two output folders are byte-identical (SHA-256 of every file).
 *
 * What scales: the calibration forwards and the layer-error forwards run
 * on every rank at once over its share of the samples; each GPTQ Hessian
 * (its accumulation, factorisation and quantization) runs on one rank,
 * which gets the other ranks' recorded inputs for it (linear-quant.c,
 * slim_linear_quant_finish_gptq_distributed).  What does not: every rank
 * loads every weight (the forwards need them all), and the costliest
 * Hessian (down_proj, order 5632) is one task, which bounds the speed-up.
 * The machine's load average (/proc/loadavg) is printed before and after
 * each run; "cpu speed-up" is the one-process CPU time over the busiest
 * rank's, what the wall-time speed-up approaches on an idle machine.
 *
 * Every run is the real CLI in a child process (wait4 for the one-process
 * run's peak RSS and for the CPU time of each run; each rank logs its own
 * peak RSS and CPU time).  The CPU times tell how the work split when the
 * wall times cannot: on a loaded machine with sched_autogroup_enabled the
 * ranks, started from one session, share one scheduling group's CPU with
 * the one-process run, so two ranks cannot get more CPU than one process
 * and the wall-time speed-up is bounded by 1 there.  The model uses the stories260K tokenizer,
 * copied from $SLIMFLOW_SHARED_DIR/models/stories260K (default ../shared).  Nothing is written
 * outside --tmpdir, and everything is removed at the end.
 *
 * Usage: dp [--layers N] [--ranks N] [--samples N] [--max-length N]
 *           [--config YAML] [--slimflow PATH] [--mpirun PATH] [--tmpdir DIR]
 */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-model.h"

typedef struct
{
  double wall_s;
  double peak_rss_mib; /* of the child and its descendants (wait4) */
  double cpu_s;        /* user + system time of the child and its descendants */
  int exit_code;
  char *log; /* stdout and stderr */
} DpRun;

static gboolean
dp_run_child (char **argv, const char *log_path, DpRun *run, GError **error)
{
  struct rusage usage;
  gint64 t0 = g_get_monotonic_time ();
  int status = 0;
  pid_t pid;

  fflush (stdout);
  pid = fork ();
  if (pid < 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "fork: %s",
                   g_strerror (errno));
      return FALSE;
    }
  if (pid == 0)
    {
      if (freopen (log_path, "w", stdout) == NULL || dup2 (fileno (stdout), 2) < 0)
        _exit (127);
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
  run->peak_rss_mib = (double)usage.ru_maxrss / 1024.0;
  run->cpu_s = (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
               + (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  run->exit_code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
  g_file_get_contents (log_path, &run->log, NULL, NULL);
  if (run->exit_code != 0)
    {
      const char *log = run->log != NULL ? run->log : "";
      gsize n = strlen (log);
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s exited with %d:\n%s", argv[0],
                   run->exit_code, n > 3000 ? log + n - 3000 : log);
      return FALSE;
    }
  return TRUE;
}

/* The 1-minute load average, or -1. */
static double
dp_load_average (void)
{
  g_autofree char *text = NULL;

  if (!g_file_get_contents ("/proc/loadavg", &text, NULL, NULL))
    return -1.0;
  return g_ascii_strtod (text, NULL);
}

/* The YAML with `runner: NAME` under spec. */
static char *
dp_with_runner (const char *yaml_path, const char *runner, const char *dir, GError **error)
{
  g_autofree char *text = NULL;
  g_autofree char *path = g_strdup_printf ("%s/%s.yaml", dir, runner);
  g_autofree char *line = g_strdup_printf ("spec:\n  runner: %s\n", runner);
  g_autoptr (GString) yaml = NULL;
  const char *at;

  if (!g_file_get_contents (yaml_path, &text, NULL, error))
    return NULL;
  at = strstr (text, "\nspec:\n");
  if (at == NULL)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s has no 'spec:' line", yaml_path);
      return NULL;
    }
  yaml = g_string_new_len (text, at + 1 - text);
  g_string_append (yaml, line);
  g_string_append (yaml, at + 7);
  if (!g_file_set_contents (path, yaml->str, (gssize)yaml->len, error))
    return NULL;
  return g_steal_pointer (&path);
}

static int
dp_compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *)a, *(char *const *)b);
}

/* "name sha256" lines of every file of dir, sorted. */
static char *
dp_digests (const char *dir)
{
  g_autoptr (GPtrArray) lines = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) all = g_string_new (NULL);
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, NULL);
      g_autofree char *sum = NULL;

      if (file == NULL)
        continue;
      sum = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                         (const guchar *)g_mapped_file_get_contents (file),
                                         g_mapped_file_get_length (file));
      g_ptr_array_add (lines, g_strdup_printf ("%s %s\n", name, sum));
    }
  if (d != NULL)
    g_dir_close (d);
  g_ptr_array_sort (lines, dp_compare_strings);
  for (guint i = 0; i < lines->len; i++)
    g_string_append (all, g_ptr_array_index (lines, i));
  return g_string_free (g_steal_pointer (&all), FALSE);
}

int
main (int argc, char **argv)
{
  g_autofree char *slimflow = NULL;
  g_autofree char *mpirun = NULL;
  g_autofree char *config = NULL;
  g_autofree char *tmp_root = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *tokenizer_dir = NULL;
  gint layers = 2, ranks = 2, samples = 8, max_length = 512;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  const char *shared = g_getenv ("SLIMFLOW_SHARED_DIR");
  GOptionEntry entries[] = {
    { "layers", 0, 0, G_OPTION_ARG_INT, &layers, "Decoder layers of the bench model (2)", "N" },
    { "ranks", 0, 0, G_OPTION_ARG_INT, &ranks, "MPI ranks of the dp_layer_wise run (2)", "N" },
    { "samples", 0, 0, G_OPTION_ARG_INT, &samples, "Calibration samples (8)", "N" },
    { "max-length", 0, 0, G_OPTION_ARG_INT, &max_length, "Tokens per sample at most (512)", "N" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config,
      "modelslim_v1 YAML (default bench/gptq-w4a16.yaml)", "YAML" },
    { "slimflow", 0, 0, G_OPTION_ARG_FILENAME, &slimflow, "The slimflow CLI", "PATH" },
    { "mpirun", 0, 0, G_OPTION_ARG_FILENAME, &mpirun, "Open MPI's mpirun", "PATH" },
    { "tmpdir", 0, 0, G_OPTION_ARG_FILENAME, &tmp_root, "Where the model goes", "DIR" },
    { NULL },
  };

  context = g_option_context_new ("- layer_wise vs dp_layer_wise under mpirun, one thread each");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "dp: %s\n", error->message);
      return 2;
    }
  if (layers <= 0 || ranks <= 1 || samples <= 0 || max_length <= 0)
    {
      fprintf (stderr, "dp: --layers, --samples, --max-length must be > 0 and --ranks > 1\n");
      return 2;
    }
  if (slimflow == NULL)
    slimflow
        = g_strdup (g_getenv ("SLIMFLOW_CLI") != NULL ? g_getenv ("SLIMFLOW_CLI") : BENCH_SLIMFLOW);
  if (mpirun == NULL)
    mpirun = g_strdup (BENCH_MPIRUN);
  if (config == NULL)
    config = g_build_filename (BENCH_SOURCE_DIR, "bench", "gptq-w4a16.yaml", NULL);
  if (g_getenv ("SLIMFLOW_PLUGIN_PATH") == NULL)
    g_setenv ("SLIMFLOW_PLUGIN_PATH", BENCH_PLUGIN_DIR, TRUE);
  /* one BLAS thread per process; the ranks' per-rank RSS debug line */
  g_setenv ("OPENBLAS_NUM_THREADS", "1", TRUE);
  g_setenv ("OMP_NUM_THREADS", "1", TRUE);
  g_setenv ("G_MESSAGES_DEBUG", "slimflow", TRUE);

  tokenizer_dir
      = g_build_filename (shared != NULL ? shared : "../shared", "models", "stories260K", NULL);
  tmp = g_build_filename (tmp_root != NULL ? tmp_root : g_get_tmp_dir (),
                          "slimflow-bench-dp-XXXXXX", NULL);
  if (g_mkdtemp (tmp) == NULL)
    {
      fprintf (stderr, "dp: cannot create %s: %s\n", tmp, g_strerror (errno));
      return 1;
    }
  {
    g_autofree char *model = g_build_filename (tmp, "model", NULL);
    g_autofree char *out_lw = g_build_filename (tmp, "out-lw", NULL);
    g_autofree char *out_dp = g_build_filename (tmp, "out-dp", NULL);
    g_autofree char *log = g_build_filename (tmp, "log.txt", NULL);
    g_autofree char *yaml_lw = NULL, *yaml_dp = NULL;
    g_autofree char *samples_s = g_strdup_printf ("%d", samples);
    g_autofree char *length_s = g_strdup_printf ("%d", max_length);
    g_autofree char *ranks_s = g_strdup_printf ("%d", ranks);
    g_autofree char *d_lw = NULL, *d_dp = NULL;
    g_autoptr (GPtrArray) rank_lines = g_ptr_array_new_with_free_func (g_free);
    DpRun lw = { 0 }, dp = { 0 };
    double load[4] = { 0 }; /* before and after each run */
    double busiest_cpu = 0.0;
    const char *p;
    int code = 1;

    if (!bench_model_make (model, layers, tokenizer_dir, &error)
        || (yaml_lw = dp_with_runner (config, "layer_wise", tmp, &error)) == NULL
        || (yaml_dp = dp_with_runner (config, "dp_layer_wise", tmp, &error)) == NULL)
      goto done;
    printf ("bench/dp: %s, %d-layer bench model (hidden %d, intermediate %d), %d samples x <= %d "
            "tokens, OPENBLAS_NUM_THREADS=1\n",
            config, layers, BENCH_HIDDEN, BENCH_INTERMEDIATE, samples, max_length);
    {
      const char *argv_lw[] = { slimflow,
                                "quant",
                                "--model_path",
                                model,
                                "--save_path",
                                out_lw,
                                "--config_path",
                                yaml_lw,
                                "--max_samples",
                                samples_s,
                                "--max_length",
                                length_s,
                                NULL };
      load[0] = dp_load_average ();
      if (!dp_run_child ((char **)argv_lw, log, &lw, &error))
        goto done;
      load[1] = dp_load_average ();
    }
    {
      const char *argv_dp[] = { mpirun,
                                "--allow-run-as-root",
                                "--oversubscribe",
                                "--bind-to",
                                "none",
                                "-np",
                                ranks_s,
                                slimflow,
                                "quant",
                                "--model_path",
                                model,
                                "--save_path",
                                out_dp,
                                "--config_path",
                                yaml_dp,
                                "--max_samples",
                                samples_s,
                                "--max_length",
                                length_s,
                                NULL };
      load[2] = dp_load_average ();
      if (!dp_run_child ((char **)argv_dp, log, &dp, &error))
        goto done;
      load[3] = dp_load_average ();
    }
    d_lw = dp_digests (out_lw);
    d_dp = dp_digests (out_dp);
    for (p = dp.log; p != NULL && (p = strstr (p, "rank ")) != NULL; p += 5)
      {
        int r = 0, n = 0;
        double mib = 0.0, cpu = 0.0;
        if (sscanf (p, "rank %d of %d: peak resident memory %lf MiB, cpu time %lf s", &r, &n, &mib,
                    &cpu)
            == 4)
          {
            busiest_cpu = MAX (busiest_cpu, cpu);
            g_ptr_array_add (
                rank_lines,
                g_strdup_printf ("  rank %d: peak RSS %.1f MiB, cpu %.1f s", r, mib, cpu));
          }
      }
    g_ptr_array_sort (rank_lines, dp_compare_strings);
    printf ("%-28s  %9s  %14s  %11s  %s\n", "run", "wall (s)", "peak RSS (MiB)", "cpu (s)",
            "load average before/after");
    printf ("%-28s  %9.1f  %14.1f  %11.1f  %.2f / %.2f\n", "layer_wise, 1 process", lw.wall_s,
            lw.peak_rss_mib, lw.cpu_s, load[0], load[1]);
    printf ("%-28s  %9.1f  %14s  %11.1f  %.2f / %.2f\n", "dp_layer_wise, all ranks", dp.wall_s, "",
            dp.cpu_s, load[2], load[3]);
    for (guint i = 0; i < rank_lines->len; i++)
      printf ("%s\n", (const char *)g_ptr_array_index (rank_lines, i));
    if (busiest_cpu > 0.0)
      printf ("cpu speed-up %.2fx (layer_wise cpu / busiest rank's cpu)\n", lw.cpu_s / busiest_cpu);
    printf ("speed-up %.2fx with %d ranks; outputs %s\n", lw.wall_s / dp.wall_s, ranks,
            strcmp (d_lw, d_dp) == 0 && *d_lw != '\0' ? "byte-identical" : "DIFFER");
    if (strcmp (d_lw, d_dp) != 0)
      printf ("layer_wise:\n%sdp_layer_wise:\n%s", d_lw, d_dp);
    code = strcmp (d_lw, d_dp) == 0 ? 0 : 1;
  done:
    if (error != NULL)
      fprintf (stderr, "dp: %s\n", error->message);
    g_free (lw.log);
    g_free (dp.log);
    if (g_getenv ("BENCH_DP_KEEP") == NULL)
      bench_remove_tree (tmp);
    else
      printf ("kept %s\n", tmp);
    return code;
  }
}
