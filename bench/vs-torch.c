/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/vs-torch: slimflow against a plain PyTorch layer-wise script on
 * the same W8A8 static calibration job, in one run (issue #16):
 *
 *   - a generated Llama model (bench-model.h: hidden 2048, 16 heads / 8 kv
 *     heads, intermediate 5632, bf16 weights; --layers, default 16);
 *   - 8 calibration samples of 512 tokens (--samples, --max-length): long
 *     texts built from the shipped lab_calib texts, written as
 *     mix_calib.jsonl into a --calib_dir for slimflow, and tokenized here
 *     with slimflow's tokenizer (the stories260K tokenizer copied beside
 *     the model, BOS added, truncated as the jsonl dataset does) for the
 *     PyTorch script, so both see the same token ids;
 *   - `slimflow quant --config_path CONFIG` (examples/dense-w8a8.yaml by
 *     default; --config may be repeated to compare configs in one run)
 *     with $SLIMFLOW_NUM_THREADS = --threads;
 *   - bench/vs-torch.py (Debian python3-torch, torch.set_num_threads) doing
 *     the same work: float calibration forward with per-tensor activation
 *     observers, per-channel int8 weights, a fake-quantized forward for
 *     the next layer's inputs, one shard written per layer.
 *
 * Each run is a child process: wall time around it, CPU time (user +
 * system) and peak RSS from wait4.  --repeat N alternates the programs N
 * times; the ratios use each program's fastest run (other processes on a
 * shared machine only ever add time).  The rows also print each side's
 * largest per-layer relative output error (their own summaries).
 *
 * Usage: vs-torch [--layers N] [--samples N] [--max-length N] [--threads N]
 *                 [--config YAML]... [--slimflow-arg ARG]... [--repeat N]
 *                 [--model DIR] [--keep-model DIR]
 *                 [--python PATH] [--no-torch] [--tmpdir DIR]
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "bench-model.h"
#include "bench-run.h"
#include "slim-tokenizer.h"

typedef struct
{
  char *label;
  double best_wall, best_cpu, best_rss;
  gint n_ok;
} BenchSide;

/* The lab_calib texts, one per line of the shipped jsonl. */
static GPtrArray *
bench_read_texts (const char *path, GError **error)
{
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GPtrArray) texts = g_ptr_array_new_with_free_func (g_free); /* (n_lines) */

  if (!g_file_get_contents (path, &contents, NULL, error))
    return NULL;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (JsonParser) parser = json_parser_new ();
      JsonNode *root;

      if (*g_strstrip (lines[i]) == '\0')
        continue;
      if (!json_parser_load_from_data (parser, lines[i], -1, error))
        return NULL;
      root = json_parser_get_root (parser);
      if (JSON_NODE_HOLDS_OBJECT (root)
          && json_object_has_member (json_node_get_object (root), "inputs_pretokenized"))
        g_ptr_array_add (texts, g_strdup (json_object_get_string_member (
                                    json_node_get_object (root), "inputs_pretokenized")));
    }
  if (texts->len == 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: no texts", path);
      return NULL;
    }
  return g_steal_pointer (&texts);
}

/* Writes calib_dir/mix_calib.jsonl (n_samples texts, each at least
 * max_length tokens) and tokens_path (their ids, truncated to max_length,
 * one sample per line). */
static gboolean
bench_write_calibration (const char *model_dir,
                         const char *texts_path,
                         gint n_samples,
                         gint max_length,
                         const char *calib_dir,
                         const char *tokens_path,
                         GError **error)
{
  g_autoptr (GPtrArray) texts = bench_read_texts (texts_path, error);
  g_autoptr (SlimTokenizer) tokenizer = NULL;
  g_autoptr (GString) jsonl = g_string_new (NULL);
  g_autoptr (GString) tokens = g_string_new (NULL);
  g_autofree char *jsonl_path = g_build_filename (calib_dir, "mix_calib.jsonl", NULL);

  if (texts == NULL)
    return FALSE;
  tokenizer = slim_tokenizer_new_from_dir (model_dir, error);
  if (tokenizer == NULL || g_mkdir_with_parents (calib_dir, 0755) != 0)
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot create %s", calib_dir);
      return FALSE;
    }
  for (gint s = 0; s < n_samples; s++)
    {
      g_autoptr (GString) text = g_string_new (NULL);
      g_autoptr (GArray) ids = NULL; /* (n_tokens) gint32 */
      g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
      g_autoptr (JsonObject) object = json_object_new ();
      g_autofree char *line = NULL;

      /* each sample starts at another text; texts repeat until long enough */
      for (guint j = 0; ids == NULL || ids->len < (guint)max_length; j++)
        {
          if (j > 100000)
            {
              g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                           "sample %d does not reach %d tokens", s, max_length);
              return FALSE;
            }
          if (text->len > 0)
            g_string_append_c (text, '\n');
          g_string_append (text, g_ptr_array_index (texts, (s + j) % texts->len));
          if (text->len < (gsize)max_length)
            continue; /* a token has at least one byte */
          g_clear_pointer (&ids, g_array_unref);
          ids = slim_tokenizer_encode (tokenizer, text->str, TRUE, error);
          if (ids == NULL)
            return FALSE;
        }
      for (gint t = 0; t < max_length; t++)
        g_string_append_printf (tokens, "%s%d", t > 0 ? " " : "", g_array_index (ids, gint32, t));
      g_string_append_c (tokens, '\n');
      json_object_set_string_member (object, "inputs_pretokenized", text->str);
      json_node_set_object (node, object);
      line = json_to_string (node, FALSE);
      g_string_append_printf (jsonl, "%s\n", line);
    }
  return g_file_set_contents (jsonl_path, jsonl->str, (gssize)jsonl->len, error)
         && g_file_set_contents (tokens_path, tokens->str, (gssize)tokens->len, error);
}

/* The "max    E" line both summaries end their per-layer table with. */
static double
bench_max_error (const char *out)
{
  const char *p = out != NULL ? strstr (out, "\nmax    ") : NULL;
  return p != NULL ? g_ascii_strtod (p + 8, NULL) : -1.0;
}

/* One run of one side; prints its row and updates side's best figures. */
static gboolean
bench_side_run (BenchSide *side,
                char **argv,
                char **env,
                const char *tmp,
                const char *out_dir,
                gint pass,
                GError **error)
{
  g_autofree char *out_log = g_build_filename (tmp, "stdout.txt", NULL);
  g_autofree char *err_log = g_build_filename (tmp, "stderr.txt", NULL);
  BenchRun run = { 0 };

  bench_remove_tree (out_dir);
  if (!bench_run_child (argv, env, out_log, err_log, &run, error))
    return FALSE;
  if (run.exit_code != 0)
    {
      const char *err = run.err != NULL ? run.err : "";
      gsize n = strlen (err);

      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s exited with %d:\n%s", side->label,
                   run.exit_code, n > 2000 ? err + n - 2000 : err);
      bench_run_clear (&run);
      return FALSE;
    }
  printf ("%-34s %4d  %8.1f  %8.1f  %9.0f  %8.0f  %9.6f\n", side->label, pass + 1, run.wall_s,
          run.cpu_s, run.peak_rss_mib, bench_path_mib (out_dir), bench_max_error (run.out));
  fflush (stdout);
  if (side->n_ok == 0 || run.wall_s < side->best_wall)
    side->best_wall = run.wall_s;
  if (side->n_ok == 0 || run.cpu_s < side->best_cpu)
    side->best_cpu = run.cpu_s;
  if (side->n_ok == 0 || run.peak_rss_mib < side->best_rss)
    side->best_rss = run.peak_rss_mib;
  side->n_ok++;
  bench_run_clear (&run);
  bench_remove_tree (out_dir);
  return TRUE;
}

int
main (int argc, char **argv)
{
  gint n_layers = 16, samples = 8, max_length = 512, threads = 2, repeat = 1;
  g_auto (GStrv) configs = NULL;
  g_auto (GStrv) slimflow_args = NULL;
  g_autofree char *slimflow = NULL;
  g_autofree char *python = NULL;
  g_autofree char *model_arg = NULL;
  g_autofree char *keep_model = NULL;
  g_autofree char *tmp_root = NULL;
  gboolean no_torch = FALSE;
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  const char *shared = g_getenv ("SLIMFLOW_SHARED_DIR");
  g_autofree char *tmp = NULL;
  g_autofree char *model = NULL;
  g_autofree char *calib_dir = NULL;
  g_autofree char *tokens_path = NULL;
  g_autofree char *texts_path = NULL;
  g_autofree char *script = NULL;
  g_autofree char *threads_s = NULL;
  g_autofree char *samples_s = NULL;
  g_autofree char *length_s = NULL;
  g_autoptr (GPtrArray) sides = NULL; /* (n_configs + 1) BenchSide*: slimflow configs, torch */
  GOptionEntry entries[] = {
    { "layers", 0, 0, G_OPTION_ARG_INT, &n_layers, "Decoder layers of the model (16)", "N" },
    { "samples", 0, 0, G_OPTION_ARG_INT, &samples, "Calibration samples (8)", "N" },
    { "max-length", 0, 0, G_OPTION_ARG_INT, &max_length, "Tokens per sample (512)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads of each side (2)", "N" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &configs,
      "slimflow's modelslim_v1 YAML (examples/dense-w8a8.yaml); repeat to compare", "YAML" },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &repeat, "Alternate the runs N times (1)", "N" },
    { "slimflow-arg", 0, 0, G_OPTION_ARG_STRING_ARRAY, &slimflow_args,
      "One more argument of every slimflow quant run (e.g. --no_layer_error); repeatable", "ARG" },
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model_arg,
      "Use this generated model folder (vs-torch --keep-model made it) instead of generating one",
      "DIR" },
    { "keep-model", 0, 0, G_OPTION_ARG_FILENAME, &keep_model,
      "Generate the model into DIR and leave it there", "DIR" },
    { "slimflow", 0, 0, G_OPTION_ARG_FILENAME, &slimflow, "The slimflow CLI (this build's)",
      "PATH" },
    { "python", 0, 0, G_OPTION_ARG_FILENAME, &python,
      "The Python with Debian's python3-torch (/usr/bin/python3)", "PATH" },
    { "no-torch", 0, 0, G_OPTION_ARG_NONE, &no_torch, "Run slimflow only", NULL },
    { "tmpdir", 0, 0, G_OPTION_ARG_FILENAME, &tmp_root, "Where the model and outputs go", "DIR" },
    { NULL },
  };

  context = g_option_context_new ("- slimflow vs a PyTorch layer-wise script, W8A8 static");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_description (
      context, "Needs Debian's python3-torch for the PyTorch side (benchmarks only).  The model\n"
               "uses the stories260K tokenizer from $SLIMFLOW_SHARED_DIR/models/stories260K\n"
               "(default ../shared).  About 103 MiB of model per layer under --tmpdir.");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      fprintf (stderr, "vs-torch: %s\n", error->message);
      return 2;
    }
  if (n_layers <= 0 || samples <= 0 || max_length <= 0 || threads <= 0 || repeat <= 0)
    {
      fprintf (stderr, "vs-torch: --layers, --samples, --max-length, --threads and --repeat "
                       "must be > 0\n");
      return 2;
    }
  if (slimflow == NULL)
    slimflow = g_strdup (BENCH_SLIMFLOW);
  if (python == NULL)
    python = g_strdup ("/usr/bin/python3");
  if (configs == NULL)
    {
      configs = g_new0 (char *, 2);
      configs[0] = g_build_filename (BENCH_SOURCE_DIR, "examples", "dense-w8a8.yaml", NULL);
    }
  if (g_getenv ("SLIMFLOW_PLUGIN_PATH") == NULL)
    g_setenv ("SLIMFLOW_PLUGIN_PATH", BENCH_PLUGIN_DIR, TRUE);
  script = g_build_filename (BENCH_SOURCE_DIR, "bench", "vs-torch.py", NULL);
  texts_path
      = g_build_filename (BENCH_SOURCE_DIR, "examples", "lab_calib", "mix_calib.jsonl", NULL);
  tmp = g_build_filename (tmp_root != NULL ? tmp_root : g_get_tmp_dir (),
                          "slimflow-vs-torch-XXXXXX", NULL);
  if (g_mkdtemp (tmp) == NULL)
    {
      fprintf (stderr, "vs-torch: cannot create %s\n", tmp);
      return 1;
    }

  /* the model */
  if (model_arg != NULL)
    model = g_strdup (model_arg);
  else
    {
      g_autofree char *tokenizer_dir
          = g_build_filename (shared != NULL ? shared : "../shared", "models", "stories260K", NULL);
      gint64 t0 = g_get_monotonic_time ();

      model = keep_model != NULL ? g_strdup (keep_model) : g_build_filename (tmp, "model", NULL);
      if (!bench_model_make (model, n_layers, tokenizer_dir, &error))
        goto out;
      printf ("generated %s (%d layers, %.0f MiB) in %.1f s\n", model, n_layers,
              bench_path_mib (model), (double)(g_get_monotonic_time () - t0) / G_USEC_PER_SEC);
    }

  /* the calibration data, the same token ids for both sides */
  calib_dir = g_build_filename (tmp, "calib", NULL);
  tokens_path = g_build_filename (tmp, "tokens.txt", NULL);
  if (!bench_write_calibration (model, texts_path, samples, max_length, calib_dir, tokens_path,
                                &error))
    goto out;

  threads_s = g_strdup_printf ("%d", threads);
  samples_s = g_strdup_printf ("%d", samples);
  length_s = g_strdup_printf ("%d", max_length);
  sides = g_ptr_array_new ();
  for (guint c = 0; configs[c] != NULL; c++)
    {
      BenchSide *side = g_new0 (BenchSide, 1);
      g_autofree char *base = g_path_get_basename (configs[c]);
      side->label = g_strdup_printf ("slimflow %s", base);
      g_ptr_array_add (sides, side);
    }
  if (!no_torch)
    {
      BenchSide *side = g_new0 (BenchSide, 1);
      side->label = g_strdup ("torch vs-torch.py");
      g_ptr_array_add (sides, side);
    }

  printf ("W8A8 static, layer-wise: %d layers (hidden %d, intermediate %d, bf16), %d samples x %d "
          "tokens, %d threads each\n",
          n_layers, BENCH_HIDDEN, BENCH_INTERMEDIATE, samples, max_length, threads);
  printf ("%-34s %4s  %8s  %8s  %9s  %8s  %9s\n", "program", "run", "wall s", "CPU s", "peak MiB",
          "out MiB", "max err");
  for (gint pass = 0; pass < repeat; pass++)
    for (guint i = 0; i < sides->len; i++)
      {
        BenchSide *side = g_ptr_array_index (sides, i);
        gboolean is_torch = !no_torch && i == sides->len - 1;
        g_autofree char *out_dir = g_build_filename (tmp, is_torch ? "out-torch" : "out", NULL);
        g_autofree char *env_threads = g_strdup_printf ("SLIMFLOW_NUM_THREADS=%d", threads);
        g_autofree char *env_omp = g_strdup_printf ("OMP_NUM_THREADS=%d", threads);
        g_autofree char *env_blas = g_strdup_printf ("OPENBLAS_NUM_THREADS=%d", threads);
        const char *env[] = { env_threads, env_omp, env_blas, NULL };
        const char *child[64]; /* NULL-terminated */
        guint n = 0;

        if (is_torch)
          {
            child[n++] = python;
            child[n++] = script;
            child[n++] = "--model";
            child[n++] = model;
            child[n++] = "--tokens";
            child[n++] = tokens_path;
            child[n++] = "--out";
            child[n++] = out_dir;
            child[n++] = "--threads";
            child[n++] = threads_s;
          }
        else
          {
            child[n++] = slimflow;
            child[n++] = "quant";
            child[n++] = "--model_path";
            child[n++] = model;
            child[n++] = "--save_path";
            child[n++] = out_dir;
            child[n++] = "--config_path";
            child[n++] = configs[i];
            child[n++] = "--calib_dir";
            child[n++] = calib_dir;
            child[n++] = "--max_samples";
            child[n++] = samples_s;
            child[n++] = "--max_length";
            child[n++] = length_s;
            for (guint a = 0; slimflow_args != NULL && slimflow_args[a] != NULL && n < 62; a++)
              child[n++] = slimflow_args[a];
          }
        child[n] = NULL;
        if (!bench_side_run (side, (char **)child, (char **)env, tmp, out_dir, pass, &error))
          goto out;
      }

  if (!no_torch)
    {
      BenchSide *torch = g_ptr_array_index (sides, sides->len - 1);

      printf ("ratios slimflow / torch (fastest runs): wall (target <= 0.50), CPU, peak RSS "
              "(target <= 0.25)\n");
      for (guint i = 0; i + 1 < sides->len; i++)
        {
          BenchSide *side = g_ptr_array_index (sides, i);
          printf ("%-34s wall %.2fx  CPU %.2fx  RSS %.2fx\n", side->label,
                  side->best_wall / torch->best_wall, side->best_cpu / torch->best_cpu,
                  side->best_rss / torch->best_rss);
        }
    }

out:
  if (sides != NULL)
    for (guint i = 0; i < sides->len; i++)
      {
        BenchSide *side = g_ptr_array_index (sides, i);
        g_free (side->label);
        g_free (side);
      }
  bench_remove_tree (tmp);
  if (error != NULL)
    {
      fprintf (stderr, "vs-torch: %s\n", error->message);
      return 1;
    }
  return 0;
}
