/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/quant: peak resident memory and wall time of `slimflow quant`
 * (layer_wise, the shipped W8A8 static practice) on generated models of
 * realistic shapes (bench-model.h) at several depths, then at the largest
 * depth with a tight --max_memory so that the calibration activations
 * spill to HDF5.  Layer-wise quantization must not need more memory for a
 * deeper model: the last line compares the peaks.
 *
 * Every run is the real CLI in a child process; its peak RSS is the
 * kernel's (wait4 rusage ru_maxrss), its time the wall clock around it.
 * The models use the stories260K tokenizer (vocabulary 512), copied at run
 * time from $SLIMFLOW_SHARED_DIR/models/stories260K (default ../shared):
 * `slimflow quant` tokenizes the shipped lab_calib calibration text with
 * it.  Nothing is written outside --tmpdir, and everything is removed at
 * the end.
 *
 * With --config, the runs use that modelslim_v1 YAML instead of the W8A8
 * practice (e.g. examples/dense-w4a16-gptq.yaml for GPTQ); the child also
 * logs linear_quant's debug lines, and for GPTQ the bench prints each
 * run's Hessian accumulations per layer (the shared-Hessian saving: run
 * once with a config whose ext has share_hessian: false to compare).
 *
 * Usage: quant [--slimflow PATH] [--depths 4,8,16] [--samples N]
 *              [--max-length N] [--tight SIZE] [--no-tight] [--config YAML]
 *              [--tmpdir DIR]
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench-model.h"
#include "bench-run.h"

/* Counts the "spill put 'KEY' (N bytes)" debug lines of slim-spill.c. */
static gint
bench_count_spills (const char *log, double *out_mib)
{
  const char *p = log;
  gint n_puts = 0;
  double n_bytes = 0.0;

  while (p != NULL && (p = strstr (p, "spill put '")) != NULL)
    {
      const char *paren = strstr (p, "' (");

      n_puts++;
      if (paren != NULL)
        n_bytes += g_ascii_strtod (paren + 3, NULL);
      p += 11;
    }
  *out_mib = n_bytes / (1024.0 * 1024.0);
  return n_puts;
}

/* --config, else the W8A8 practice (--quant_type w8a8). */
static const char *bench_config = NULL;

/* linear_quant's per-layer GPTQ debug lines ("layer N: H GPTQ Hessians for
 * L linears: A accumulations (add_batch), F factorisations"): the first
 * layer's counts and the totals, printed under the table row. */
static void
bench_print_gptq (const char *out)
{
  const char *p = out;
  guint64 total_a = 0, total_f = 0;
  guint n_layers = 0, first_h = 0, first_l = 0;
  guint64 first_a = 0, first_f = 0;

  while (p != NULL && (p = strstr (p, "layer ")) != NULL)
    {
      int layer = 0;
      unsigned h = 0, l = 0, f = 0;
      unsigned long long a = 0;

      if (sscanf (p,
                  "layer %d: %u GPTQ Hessians for %u linears: %llu accumulations (add_batch), "
                  "%u factorisations",
                  &layer, &h, &l, &a, &f)
          == 5)
        {
          if (n_layers == 0)
            {
              first_h = h;
              first_l = l;
              first_a = a;
              first_f = f;
            }
          n_layers++;
          total_a += a;
          total_f += f;
        }
      p += 6;
    }
  if (n_layers > 0)
    printf ("        gptq: per layer %u Hessians for %u linears, %" G_GUINT64_FORMAT
            " add_batch, %" G_GUINT64_FORMAT " factorisations; %u layers: %" G_GUINT64_FORMAT
            " add_batch, %" G_GUINT64_FORMAT " factorisations\n",
            first_h, first_l, first_a, first_f, n_layers, total_a, total_f);
}

/* One `slimflow quant` run; prints its table row. */
static gboolean
bench_quant (const char *slimflow,
             const char *tmp,
             const char *model,
             gint n_layers,
             gint samples,
             gint max_length,
             const char *max_memory,
             double *out_peak,
             GError **error)
{
  g_autofree char *save = g_build_filename (tmp, "out", NULL);
  g_autofree char *log = g_build_filename (tmp, "summary.txt", NULL);
  g_autofree char *err_log = g_build_filename (tmp, "stderr.txt", NULL);
  g_autofree char *spill_s = NULL;
  const char *self_peak;
  double spilled_mib = 0.0;
  gint n_spills;
  g_autofree char *samples_s = g_strdup_printf ("%d", samples);
  g_autofree char *length_s = g_strdup_printf ("%d", max_length);
  const char *argv[20]; /* the child's command line, NULL-terminated */
  guint n = 0;
  BenchRun run = { 0 };
  /* the child logs the framework's debug messages (to stdout), which name
   * every spilled tensor */
  const char *debug_env[] = { "G_MESSAGES_DEBUG=slimflow slim-linear_quant", NULL };
  gboolean ok;

  argv[n++] = slimflow;
  argv[n++] = "quant";
  argv[n++] = "--model_path";
  argv[n++] = model;
  argv[n++] = "--save_path";
  argv[n++] = save;
  if (bench_config != NULL)
    {
      argv[n++] = "--config_path";
      argv[n++] = bench_config;
    }
  else
    {
      argv[n++] = "--quant_type";
      argv[n++] = "w8a8";
    }
  argv[n++] = "--max_samples";
  argv[n++] = samples_s;
  argv[n++] = "--max_length";
  argv[n++] = length_s;
  if (max_memory != NULL)
    {
      argv[n++] = "--max_memory";
      argv[n++] = max_memory;
    }
  argv[n] = NULL;
  ok = bench_run_child ((char **)argv, (char **)debug_env, log, err_log, &run, error);
  if (!ok)
    return FALSE;
  if (run.exit_code != 0)
    {
      const char *err = run.err != NULL ? run.err : "";
      gsize n_chars = strlen (err);

      /* the end of stderr holds the error; the debug log precedes it */
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "slimflow quant exited with %d:\n%s",
                   run.exit_code, n_chars > 2000 ? err + n_chars - 2000 : err);
      bench_run_clear (&run);
      return FALSE;
    }
  /* GLib writes debug messages to stdout */
  n_spills = bench_count_spills (run.out, &spilled_mib);
  spill_s = n_spills > 0 ? g_strdup_printf ("yes (%d tensors, %.1f MiB)", n_spills, spilled_mib)
                         : g_strdup ("no");
  self_peak = run.out != NULL ? strstr (run.out, "peak resident memory ") : NULL;
  printf ("%6d  %9.0f  %7.0f  %8.1f  %12.1f  %9.1f  %-10s  %s\n", n_layers, bench_path_mib (model),
          bench_path_mib (save), run.wall_s, run.peak_rss_mib,
          self_peak != NULL ? g_ascii_strtod (self_peak + 21, NULL) : 0.0,
          max_memory != NULL ? max_memory : "default", spill_s);
  if (run.out != NULL)
    bench_print_gptq (run.out);
  fflush (stdout);
  *out_peak = run.peak_rss_mib;
  bench_run_clear (&run);
  bench_remove_tree (save);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *slimflow = NULL;
  g_autofree char *depths_arg = NULL;
  g_autofree char *tight = NULL;
  g_autofree char *tmp_root = NULL;
  g_autofree char *config = NULL;
  gboolean no_tight = FALSE;
  g_autofree char *tmp = NULL;
  g_autofree char *tokenizer_dir = NULL;
  g_auto (GStrv) depths = NULL;
  gint samples = 8, max_length = 128;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  const char *shared = g_getenv ("SLIMFLOW_SHARED_DIR");
  double first_peak = 0.0, last_peak = 0.0;
  gint first_depth = 0, last_depth = 0;
  GOptionEntry entries[] = {
    { "slimflow", 0, 0, G_OPTION_ARG_FILENAME, &slimflow,
      "The slimflow CLI (default: $SLIMFLOW_CLI, else this build's framework/tools/slimflow)",
      "PATH" },
    { "depths", 0, 0, G_OPTION_ARG_STRING, &depths_arg, "Comma-separated layer counts (4,8,16)",
      "LIST" },
    { "samples", 0, 0, G_OPTION_ARG_INT, &samples, "Calibration samples (8)", "N" },
    { "max-length", 0, 0, G_OPTION_ARG_INT, &max_length, "Tokens per sample at most (128)", "N" },
    { "tight", 0, 0, G_OPTION_ARG_STRING, &tight,
      "--max_memory of the last run (64K: below one sample's activations, so all spill)", "SIZE" },
    { "no-tight", 0, 0, G_OPTION_ARG_NONE, &no_tight, "Skip the spilling run", NULL },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config,
      "A modelslim_v1 YAML instead of --quant_type w8a8", "YAML" },
    { "tmpdir", 0, 0, G_OPTION_ARG_FILENAME, &tmp_root, "Where the models go (system temp dir)",
      "DIR" },
    { NULL },
  };

  context = g_option_context_new ("- memory and time of slimflow quant vs model depth");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (
      context, "The models use the stories260K tokenizer, copied at run time from\n"
               "$SLIMFLOW_SHARED_DIR/models/stories260K (default: ../shared, relative to the\n"
               "current directory).  Plugins come from $SLIMFLOW_PLUGIN_PATH, else this build's\n"
               "plugins folder.  The child logs the framework's debug messages\n"
               "(G_MESSAGES_DEBUG=slimflow) so that spilled tensors can be counted.\n"
               "Each model takes about 103 MiB per layer under --tmpdir.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "quant: %s\n", error->message);
      return 2;
    }
  if (slimflow == NULL)
    slimflow
        = g_strdup (g_getenv ("SLIMFLOW_CLI") != NULL ? g_getenv ("SLIMFLOW_CLI") : BENCH_SLIMFLOW);
  if (g_getenv ("SLIMFLOW_PLUGIN_PATH") == NULL)
    g_setenv ("SLIMFLOW_PLUGIN_PATH", BENCH_PLUGIN_DIR, TRUE);
  if (samples <= 0 || max_length <= 0)
    {
      fprintf (stderr, "quant: --samples and --max-length must be > 0\n");
      return 2;
    }
  if (!g_file_test (slimflow, G_FILE_TEST_IS_EXECUTABLE))
    {
      fprintf (stderr, "quant: %s is not an executable slimflow CLI (use --slimflow)\n", slimflow);
      return 2;
    }
  depths = g_strsplit (depths_arg != NULL ? depths_arg : "4,8,16", ",", -1);
  tokenizer_dir
      = g_build_filename (shared != NULL ? shared : "../shared", "models", "stories260K", NULL);
  if (!g_file_test (tokenizer_dir, G_FILE_TEST_IS_DIR))
    {
      fprintf (stderr, "quant: %s not found (set SLIMFLOW_SHARED_DIR)\n", tokenizer_dir);
      return 2;
    }
  tmp = g_build_filename (tmp_root != NULL ? tmp_root : g_get_tmp_dir (), "slimflow-bench-XXXXXX",
                          NULL);
  if (g_mkdtemp (tmp) == NULL)
    {
      fprintf (stderr, "quant: cannot create %s\n", tmp);
      return 1;
    }

  bench_config = config;
  printf ("slimflow quant %s%s (layer_wise), %d samples x <= %d tokens; "
          "hidden %d, intermediate %d, bf16\n",
          config != NULL ? "--config_path " : "--quant_type w8a8", config != NULL ? config : "",
          samples, max_length, BENCH_HIDDEN, BENCH_INTERMEDIATE);
  printf ("layers  model MiB  out MiB    wall s  peak RSS MiB  (own MiB)  max_memory  spilled\n");
  for (gint pass = 0; depths[pass] != NULL || (pass > 0 && tight != NULL && last_depth > 0); pass++)
    {
      gboolean tight_pass = depths[pass] == NULL;
      gint n_layers = tight_pass ? last_depth : (gint)g_ascii_strtoll (depths[pass], NULL, 10);
      g_autofree char *model = g_strdup_printf ("%s/model-%d", tmp, n_layers);
      double peak = 0.0;

      if (n_layers <= 0)
        {
          fprintf (stderr, "quant: bad depth '%s'\n", depths[pass]);
          bench_remove_tree (tmp);
          return 2;
        }
      if (!g_file_test (model, G_FILE_TEST_IS_DIR))
        {
          /* one model on disk at a time */
          g_autofree char *previous = g_strdup_printf ("%s/model-%d", tmp, last_depth);
          if (last_depth > 0)
            bench_remove_tree (previous);
          if (!bench_model_make (model, n_layers, tokenizer_dir, &error))
            break;
        }
      if (!bench_quant (slimflow, tmp, model, n_layers, samples, max_length,
                        tight_pass ? tight : NULL, &peak, &error))
        break;
      if (tight_pass)
        break;
      if (first_depth == 0)
        {
          first_depth = n_layers;
          first_peak = peak;
        }
      last_depth = n_layers;
      last_peak = peak;
      if (depths[pass + 1] == NULL && tight == NULL && !no_tight)
        tight = g_strdup ("64K");
    }
  bench_remove_tree (tmp);
  if (error != NULL)
    {
      fprintf (stderr, "quant: %s\n", error->message);
      return 1;
    }
  if (first_depth > 0 && last_depth > first_depth)
    printf ("peak RSS at %d layers / at %d layers: %.2f (layer_wise memory %s with depth)\n",
            last_depth, first_depth, last_peak / first_peak,
            last_peak / first_peak < 1.10 ? "does not grow" : "GROWS");
  return 0;
}
