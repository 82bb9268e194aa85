/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/autoround: speed of AutoRound's training loop
 * (slim_dense_layer_autoround) on one layer of the bench model
 * (bench-model.h: hidden 2048, 16 / 8 heads, head_dim 128, intermediate
 * 5632), symmetric int4 per group of 128 on all seven linears, by default
 * 8 samples x 512 tokens (issue #11's bench), next to the layer forward
 * (slim_model_forward_layer) of one sample.
 *
 * One iteration forwards and differentiates the layer on min(samples, 8)
 * samples (gradient accumulation 8) and quantizes / un-quantizes the
 * weights once, so "iteration / (8 forwards)" is the cost of one
 * training step of a sample in forwards: the backward alone is about 2
 * forwards (bench/backward), plus the tape forward and the quantizer.
 *
 * Each iteration is timed (the progress callback); the best iteration and
 * the best forward of --repeats are reported (the machine is shared; the
 * minimum is the least disturbed run).
 *
 * Usage: autoround [--threads N] [--samples N] [--seq-len N] [--iters N]
 *                  [--repeats N]
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "bench-model.h"
#include "slim-decoder.h"
#include "slim-dense-layer-autoround.h"
#include "slim-linalg.h"
#include "slim-model.h"

#define BENCH_VOCAB 1024
#define BENCH_GROUP 128

typedef struct
{
  gint64 t_last;
  double best;  /* seconds, best iteration */
  double total; /* seconds, all iterations */
} BenchTimer;

static void
bench_progress (gint64 it, gint64 iters, float loss, gpointer data)
{
  BenchTimer *t = data;
  gint64 now = g_get_monotonic_time ();
  double s = (double)(now - t->t_last) / 1e6;

  t->best = MIN (t->best, s);
  t->total += s;
  t->t_last = now;
  fprintf (stderr, "iteration %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT ": loss %.4f, %.3f s\n",
           it + 1, iters, loss, s);
}

int
main (int argc, char **argv)
{
  gint n_threads = 0, n_samples = 8, seq_len = 512, iters = 2, repeats = 2;
  const GOptionEntry entries[] = {
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "OpenBLAS threads (0: one per processor)",
      "N" },
    { "samples", 0, 0, G_OPTION_ARG_INT, &n_samples, "calibration samples (8)", "N" },
    { "seq-len", 0, 0, G_OPTION_ARG_INT, &seq_len, "tokens per sample (512)", "N" },
    { "iters", 0, 0, G_OPTION_ARG_INT, &iters, "AutoRound iterations (2)", "N" },
    { "repeats", 0, 0, G_OPTION_ARG_INT, &repeats, "forwards timed, best kept (2)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- AutoRound layer speed");
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autoptr (SlimModel) model = NULL;
  g_autoptr (SlimLayer) layer = NULL;
  g_autoptr (GPtrArray) xs = g_ptr_array_new_with_free_func (g_free); /* (seq_len, hidden) each */
  g_autoptr (GPtrArray) ys = g_ptr_array_new_with_free_func (g_free); /* (seq_len, hidden) each */
  g_autofree gint64 *lens = NULL;                                     /* (n_samples) */
  const SlimModelConfig *config;
  SlimDenseLayerWeights weights;
  SlimDenseAutoRoundOptions opts = { 0 };
  SlimDenseAutoRoundResult result = { 0 };
  BenchTimer timer = { 0, G_MAXDOUBLE, 0.0 };
  double forward_s = G_MAXDOUBLE;
  const gint64 h = BENCH_HIDDEN;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || n_samples < 1 || seq_len < 1
      || n_threads < 0 || iters < 1 || repeats < 1)
    {
      fprintf (stderr, "autoround: %s\n", error != NULL ? error->message : "bad option value");
      return 2;
    }
  slim_linalg_set_n_threads (n_threads);

  dir = g_dir_make_tmp ("slimflow-bench-XXXXXX", &error);
  if (dir == NULL)
    {
      fprintf (stderr, "autoround: %s\n", error->message);
      return 1;
    }
  if (!bench_model_write (dir, 1, BENCH_VOCAB, &error)
      || (model = slim_model_open (dir, &error)) == NULL
      || (layer = slim_model_load_layer (model, 0, &error)) == NULL
      || !slim_dense_layer_weights_init (&weights, (config = slim_model_get_config (model)), layer,
                                         &error))
    goto fail;

  /* Inputs of unit scale; targets are the float layer's outputs. */
  lens = g_new (gint64, n_samples);
  for (gint s = 0; s < n_samples; s++)
    {
      float *x = g_new (float, (gsize)seq_len *h);
      SlimDenseLayerTape tape = { 0 };
      SlimBatch batch = { 1, &lens[s] };

      lens[s] = seq_len;
      for (gint64 i = 0; i < (gint64)seq_len * h; i++)
        x[i] = bench_uniform ();
      slim_dense_layer_forward (config, &weights, &batch, x, &tape);
      g_ptr_array_add (xs, x);
      g_ptr_array_add (ys, g_memdup2 (tape.y, (gsize)seq_len * h * sizeof (float)));
      slim_dense_layer_tape_clear (&tape);
    }

  for (gint r = 0; r < repeats; r++)
    {
      g_autoptr (SlimTensor) hidden
          = slim_tensor_new_2d ("hidden_states", SLIM_DTYPE_F32, seq_len, h);
      g_autoptr (SlimTensor) out = NULL;
      SlimBatch batch = { 1, &lens[0] };
      gint64 t0;

      memcpy (slim_tensor_get_data_mut (hidden), g_ptr_array_index (xs, 0),
              (gsize)seq_len * h * sizeof (float));
      t0 = g_get_monotonic_time ();
      out = slim_model_forward_layer (model, layer, hidden, &batch, NULL, &error);
      forward_s = MIN (forward_s, (double)(g_get_monotonic_time () - t0) / 1e6);
      if (out == NULL)
        goto fail;
    }

  opts.iters = iters;
  opts.enable_minmax_tuning = TRUE;
  opts.enable_round_tuning = TRUE;
  opts.seed = 42;
  for (gint l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    opts.linears[l] = (SlimAutoRoundConfig){ 4, BENCH_GROUP, SLIM_DTYPE_F32 };
  timer.t_last = g_get_monotonic_time ();
  if (!slim_dense_layer_autoround (
          config, &weights, (guint)n_samples, (const float *const *)xs->pdata, lens,
          (const float *const *)ys->pdata, &opts, bench_progress, &timer, &result, &error))
    goto fail;

  {
    gint picked = MIN (n_samples, SLIM_AUTOROUND_GRAD_ACCUMULATE);

    printf ("model: llama, hidden %d, heads %d/%d kv, head_dim %d, intermediate %d\n", BENCH_HIDDEN,
            BENCH_HEADS, BENCH_KV_HEADS, BENCH_HEAD_DIM, BENCH_INTERMEDIATE);
    printf ("samples: %d x %d tokens, %d per iteration; int4 sym per group %d, all 7 linears; "
            "OpenBLAS threads: %d\n",
            n_samples, seq_len, picked, BENCH_GROUP, slim_linalg_get_n_threads ());
    printf ("layer forward of one sample (slim_model_forward_layer, best of %d): %.3f s\n", repeats,
            forward_s);
    printf ("autoround iteration (best of %d): %.3f s, %.4f iterations/s (mean %.3f s)\n", iters,
            timer.best, 1.0 / timer.best, timer.total / iters);
    printf ("iteration / (%d forwards): %.2f\n", picked, timer.best / (picked * forward_s));
    printf ("loss: first %.4f, best %.4f\n", result.first_loss, result.best_loss);
  }
  slim_dense_autoround_result_clear (&result);
  g_clear_object (&layer);
  g_clear_object (&model);
  bench_remove_tree (dir);
  return 0;

fail:
  fprintf (stderr, "autoround: %s\n", error->message);
  g_clear_object (&layer);
  g_clear_object (&model);
  bench_remove_tree (dir);
  return 1;
}
