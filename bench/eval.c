/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/eval: wall time of `slimflow eval` of saved W8A8 (static) and
 * W8A8_DYNAMIC folders with --linear_math int8 (the integer products,
 * slim-int-linear.h) against --linear_math float (fake-quantized float32
 * products), on stories260K and on a generated model of realistic shapes
 * (bench-model.h, --layers deep).
 *
 * Every run is the real CLI in a child process; its times are the wall
 * clock around it and its CPU time (user + system, getrusage of the
 * waited-for child), each the best of --repeat runs (the machine may be
 * shared: CPU time is the steadier figure under load).  A run
 * includes loading the folder (dequantizing, packing the int8 weights) and
 * tokenizing; on the generated model the text is cut to --bytes bytes of
 * the TinyStories excerpt.  Each folder is quantized once with
 * examples/dense-w8a8.yaml or examples/dense-w8a8-dynamic.yaml and 4 x 64
 * calibration tokens.  Nothing is written outside --tmpdir, and everything
 * is removed at the end.
 *
 * Usage: eval [--slimflow PATH] [--layers N] [--bytes N] [--ctx N]
 *             [--threads N] [--repeat N] [--tmpdir DIR]
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bench-model.h"

/* CPU seconds (user + system) of the waited-for children so far. */
static double
bench_children_cpu (void)
{
  struct rusage u;

  getrusage (RUSAGE_CHILDREN, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec)
         + (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* Runs argv; the best wall and CPU times of n_repeat runs, stdout of the
 * last. */
static gboolean
bench_time (
    char **argv, gint n_repeat, double *out_s, double *out_cpu_s, char **out_stdout, GError **error)
{
  double best = -1.0, best_cpu = -1.0;

  for (gint r = 0; r < n_repeat; r++)
    {
      g_autofree char *out = NULL, *err = NULL;
      gint status = 0;
      gint64 t0 = g_get_monotonic_time ();
      double cpu0 = bench_children_cpu ();
      double s, cpu;

      if (!g_spawn_sync (NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, error))
        return FALSE;
      s = (double)(g_get_monotonic_time () - t0) / 1e6;
      cpu = bench_children_cpu () - cpu0;
      if (!g_spawn_check_wait_status (status, error))
        {
          g_prefix_error (error, "%s %s: %s\n", argv[0], argv[1], err != NULL ? err : "");
          return FALSE;
        }
      if (best < 0.0 || s < best)
        best = s;
      if (best_cpu < 0.0 || cpu < best_cpu)
        best_cpu = cpu;
      if (r == n_repeat - 1)
        *out_stdout = g_steal_pointer (&out);
    }
  *out_s = best;
  *out_cpu_s = best_cpu;
  return TRUE;
}

/* The length of text cut to at most n bytes, after a line end. */
static gssize
bench_cut (const char *text, gsize n_text, gint n)
{
  gsize end = MIN (n_text, (gsize)n);

  while (end > 0 && end < n_text && text[end - 1] != '\n')
    end--;
  return end > 0 ? (gssize)end : (gssize)MIN (n_text, (gsize)n);
}

/* "perplexity   5.5373" of the text output. */
static double
bench_perplexity (const char *out)
{
  const char *p = out != NULL ? strstr (out, "perplexity ") : NULL;

  return p != NULL ? g_ascii_strtod (p + strlen ("perplexity "), NULL) : 0.0;
}

static gboolean
bench_model (const char *slimflow,
             const char *source_dir,
             const char *tmp,
             const char *name,
             const char *model,
             const char *text,
             const char *ctx,
             const char *threads,
             gint n_repeat,
             GError **error)
{
  const char *configs[] = { "dense-w8a8", "dense-w8a8-dynamic" };

  for (gsize c = 0; c < G_N_ELEMENTS (configs); c++)
    {
      g_autofree char *yaml = g_strdup_printf ("%s/examples/%s.yaml", source_dir, configs[c]);
      g_autofree char *save = g_strdup_printf ("%s/%s-%s", tmp, name, configs[c]);
      const char *quant[] = {
        slimflow,        "quant", "--model_path", model, "--save_path", save, "--config_path", yaml,
        "--max_samples", "4",     "--max_length", "64",  NULL
      };
      g_autofree char *quant_out = NULL;
      double quant_s = 0.0, quant_cpu = 0.0, t[2] = { 0.0, 0.0 }, cpu[2] = { 0.0, 0.0 };
      double ppl[2] = { 0.0, 0.0 };
      const char *maths[2] = { "float", "int8" };

      if (!bench_time ((char **)quant, 1, &quant_s, &quant_cpu, &quant_out, error))
        return FALSE;
      for (gint m = 0; m < 2; m++)
        {
          const char *eval[]
              = { slimflow,    "eval",  "--model_path",  save,     "--text", text, "--ctx", ctx,
                  "--threads", threads, "--linear_math", maths[m], NULL };
          g_autofree char *out = NULL;

          if (!bench_time ((char **)eval, n_repeat, &t[m], &cpu[m], &out, error))
            return FALSE;
          ppl[m] = bench_perplexity (out);
        }
      printf ("%-12s  %-19s  %7.2f  %7.2f  %7.2f  %7.2f  %9.4f  %9.4f  %5.2fx  %5.2fx\n", name,
              configs[c], t[0], t[1], cpu[0], cpu[1], ppl[0], ppl[1],
              t[1] > 0.0 ? t[0] / t[1] : 0.0, cpu[1] > 0.0 ? cpu[0] / cpu[1] : 0.0);
      fflush (stdout);
      bench_remove_tree (save);
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autofree char *slimflow = NULL;
  g_autofree char *tmp_root = NULL;
  g_autofree char *tmp = NULL;
  g_autofree char *text_part = NULL;
  g_autofree char *contents = NULL;
  gint n_layers = 2, n_bytes = 4000, n_ctx = 512, n_threads = 1, n_repeat = 3;
  gsize n_text = 0;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  const char *shared = g_getenv ("SLIMFLOW_SHARED_DIR");
  g_autofree char *stories = NULL, *text = NULL, *model = NULL;
  g_autofree char *ctx_s = NULL, *threads_s = NULL;
  GOptionEntry entries[] = {
    { "slimflow", 0, 0, G_OPTION_ARG_FILENAME, &slimflow,
      "The slimflow CLI (default: $SLIMFLOW_CLI, else this build's framework/tools/slimflow)",
      "PATH" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &n_layers, "Depth of the generated model (2; 0 skips it)",
      "N" },
    { "bytes", 0, 0, G_OPTION_ARG_INT, &n_bytes,
      "Bytes of the TinyStories excerpt the generated model reads (4000)", "N" },
    { "ctx", 0, 0, G_OPTION_ARG_INT, &n_ctx, "eval --ctx (512)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "eval --threads (1)", "N" },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &n_repeat, "Runs per figure, the best is kept (3)", "N" },
    { "tmpdir", 0, 0, G_OPTION_ARG_FILENAME, &tmp_root, "Where the models go (system temp dir)",
      "DIR" },
    { NULL },
  };

  context = g_option_context_new ("- slimflow eval time with integer vs float W8A8 linears");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (
      context, "Models and text come from $SLIMFLOW_SHARED_DIR (default: ../shared, relative to\n"
               "the current directory); plugins from $SLIMFLOW_PLUGIN_PATH, else this build's.\n"
               "The generated model takes about 103 MiB per layer under --tmpdir.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "eval: %s\n", error->message);
      return 2;
    }
  if (slimflow == NULL)
    slimflow
        = g_strdup (g_getenv ("SLIMFLOW_CLI") != NULL ? g_getenv ("SLIMFLOW_CLI") : BENCH_SLIMFLOW);
  if (g_getenv ("SLIMFLOW_PLUGIN_PATH") == NULL)
    g_setenv ("SLIMFLOW_PLUGIN_PATH", BENCH_PLUGIN_DIR, TRUE);
  if (n_layers < 0 || n_bytes <= 0 || n_ctx < 2 || n_threads < 0 || n_repeat <= 0)
    {
      fprintf (stderr, "eval: --layers >= 0, --bytes > 0, --ctx >= 2, --threads >= 0, "
                       "--repeat > 0\n");
      return 2;
    }
  stories = g_build_filename (shared != NULL ? shared : "../shared", "models", "stories260K", NULL);
  text = g_build_filename (shared != NULL ? shared : "../shared", "data", "eval",
                           "tinystories_valid_excerpt.txt", NULL);
  if (!g_file_get_contents (text, &contents, &n_text, &error))
    {
      fprintf (stderr, "eval: %s (set SLIMFLOW_SHARED_DIR)\n", error->message);
      return 2;
    }
  tmp = g_build_filename (tmp_root != NULL ? tmp_root : g_get_tmp_dir (), "slimflow-bench-XXXXXX",
                          NULL);
  if (g_mkdtemp (tmp) == NULL)
    {
      fprintf (stderr, "eval: cannot create %s\n", tmp);
      return 1;
    }
  ctx_s = g_strdup_printf ("%d", n_ctx);
  threads_s = g_strdup_printf ("%d", n_threads);
  printf ("slimflow eval --ctx %d --threads %d, best of %d; W8A8 folders of examples/ "
          "(4 x 64 calibration tokens)\n",
          n_ctx, n_threads, n_repeat);
  printf ("model         folder               wall s (float, int8)  CPU s (float, int8)  "
          "PPL (float, int8)     speed-up (wall, CPU)\n");
  if (bench_model (slimflow, BENCH_SOURCE_DIR, tmp, "stories260K", stories, text, ctx_s, threads_s,
                   n_repeat, &error)
      && n_layers > 0)
    {
      g_autofree char *name = g_strdup_printf ("gen-%dL", n_layers);

      model = g_build_filename (tmp, "model", NULL);
      text_part = g_build_filename (tmp, "text.txt", NULL);
      if (bench_model_make (model, n_layers, stories, &error)
          && g_file_set_contents (text_part, contents, bench_cut (contents, n_text, n_bytes),
                                  &error))
        bench_model (slimflow, BENCH_SOURCE_DIR, tmp, name, model, text_part, ctx_s, threads_s,
                     n_repeat, &error);
    }
  bench_remove_tree (tmp);
  if (error != NULL)
    {
      fprintf (stderr, "eval: %s\n", error->message);
      return 1;
    }
  printf ("generated model: hidden %d, intermediate %d, %d layers, bf16, random weights; "
          "speed-up = float / int8\n",
          BENCH_HIDDEN, BENCH_INTERMEDIATE, n_layers);
  return 0;
}
