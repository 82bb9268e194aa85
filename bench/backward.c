/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/backward: time of one reverse pass through a dense decoder layer
 * (slim_dense_layer_backward: the gradients of all seven linears' weights
 * and of the layer input) against one layer forward
 * (slim_model_forward_layer), on the bench model's shapes (bench-model.h:
 * hidden 2048, 16 / 8 heads, head_dim 128, intermediate 5632), by default
 * 1 sequence x 512 tokens.  Also the forward that records the tape
 * (slim_dense_layer_forward), so "forward + backward" is what one
 * training step of a learned-rounding method costs.
 *
 * FLOPs: the forward's linears are 2 T n_in n_out each; the backward does
 * two products of that size per linear (dX and dW), so its linears cost 2x
 * the forward's; its attention recomputes the probabilities (Q Kᵀ) and
 * does four more products of the same size (dV, dP, dQ, dK): 5/2 of the
 * forward's attention.  Expect a ratio near 2.
 *
 * Each phase runs --repeats times on the same layer; the best time of
 * each is reported (the machine is shared; the minimum is the least
 * disturbed run).
 *
 * Usage: backward [--threads N] [--seqs N] [--seq-len N] [--repeats N]
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "bench-model.h"
#include "slim-decoder.h"
#include "slim-dense-layer-backward.h"
#include "slim-linalg.h"
#include "slim-model.h"

#define BENCH_VOCAB 1024

static double
bench_seconds_since (gint64 t0)
{
  return (double)(g_get_monotonic_time () - t0) / 1e6;
}

int
main (int argc, char **argv)
{
  gint n_threads = 0, n_seqs = 1, seq_len = 512, repeats = 3;
  const GOptionEntry entries[] = {
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "OpenBLAS threads (0: one per processor)",
      "N" },
    { "seqs", 0, 0, G_OPTION_ARG_INT, &n_seqs, "sequences (1)", "N" },
    { "seq-len", 0, 0, G_OPTION_ARG_INT, &seq_len, "tokens per sequence (512)", "N" },
    { "repeats", 0, 0, G_OPTION_ARG_INT, &repeats, "runs of each phase, best kept (3)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- layer backward speed");
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autoptr (SlimModel) model = NULL;
  g_autoptr (SlimLayer) layer = NULL;
  g_autoptr (SlimTensor) hidden = NULL;
  g_autofree gint64 *lens = NULL; /* (n_seqs) */
  g_autofree float *dy = NULL;    /* (n_tokens, hidden) */
  g_autofree float *dx = NULL;    /* (n_tokens, hidden) */
  g_autofree float *grad_buf = NULL;
  const SlimModelConfig *config;
  SlimDenseLayerWeights weights;
  SlimDenseLayerGrads grads = { 0 };
  SlimDenseLayerTape tape = { 0 };
  SlimBatch batch;
  gint64 n_tokens, t0;
  double forward_s = G_MAXDOUBLE, tape_s = G_MAXDOUBLE, backward_s = G_MAXDOUBLE;
  const gint64 h = BENCH_HIDDEN, q = BENCH_HEADS * BENCH_HEAD_DIM;
  const gint64 kv = BENCH_KV_HEADS * BENCH_HEAD_DIM, inter = BENCH_INTERMEDIATE;
  const gint64 sizes[] = { q * h, kv * h, kv * h, h * q, inter * h, inter * h, h * inter };
  SlimLinearGrads *linear_grads[]
      = { &grads.q, &grads.k, &grads.v, &grads.o, &grads.gate, &grads.up, &grads.down };
  gint64 grad_n = 0;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || n_seqs < 1 || seq_len < 1
      || n_threads < 0 || repeats < 1)
    {
      fprintf (stderr, "backward: %s\n", error != NULL ? error->message : "bad option value");
      return 2;
    }
  slim_linalg_set_n_threads (n_threads);
  n_tokens = (gint64)n_seqs * seq_len;

  dir = g_dir_make_tmp ("slimflow-bench-XXXXXX", &error);
  if (dir == NULL)
    {
      fprintf (stderr, "backward: %s\n", error->message);
      return 1;
    }
  if (!bench_model_write (dir, 1, BENCH_VOCAB, &error)
      || (model = slim_model_open (dir, &error)) == NULL
      || (layer = slim_model_load_layer (model, 0, &error)) == NULL
      || !slim_dense_layer_weights_init (&weights, (config = slim_model_get_config (model)), layer,
                                         &error))
    {
      fprintf (stderr, "backward: %s\n", error->message);
      bench_remove_tree (dir);
      return 1;
    }

  lens = g_new (gint64, n_seqs);
  for (gint s = 0; s < n_seqs; s++)
    lens[s] = seq_len;
  batch = (SlimBatch){ (guint)n_seqs, lens };
  /* Hidden states of unit scale, and an upstream gradient. */
  hidden = slim_tensor_new_2d ("hidden_states", SLIM_DTYPE_F32, n_tokens, h);
  {
    float *x = slim_tensor_get_data_mut (hidden);

    for (gint64 i = 0; i < n_tokens * h; i++)
      x[i] = bench_uniform ();
  }
  dy = g_new (float, n_tokens *h);
  dx = g_new (float, n_tokens *h);
  for (gint64 i = 0; i < n_tokens * h; i++)
    dy[i] = bench_uniform ();
  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    grad_n += sizes[i];
  grad_buf = g_new0 (float, grad_n); /* the seven weight gradients, back to back */
  {
    float *p = grad_buf;

    for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
      {
        linear_grads[i]->weight = p;
        p += sizes[i];
      }
  }
  grads.input = dx;

  for (gint r = 0; r < repeats; r++)
    {
      SlimTensor *out;

      t0 = g_get_monotonic_time ();
      out = slim_model_forward_layer (model, layer, hidden, &batch, NULL, &error);
      forward_s = MIN (forward_s, bench_seconds_since (t0));
      if (out == NULL)
        {
          fprintf (stderr, "backward: %s\n", error->message);
          bench_remove_tree (dir);
          return 1;
        }
      slim_tensor_unref (out);

      t0 = g_get_monotonic_time ();
      slim_dense_layer_forward (config, &weights, &batch, slim_tensor_get_data (hidden), &tape);
      tape_s = MIN (tape_s, bench_seconds_since (t0));

      t0 = g_get_monotonic_time ();
      slim_dense_layer_backward (config, &weights, &tape, dy, &grads);
      backward_s = MIN (backward_s, bench_seconds_since (t0));
      slim_dense_layer_tape_clear (&tape);
      fprintf (stderr, "run %d: forward %.3f s, tape forward %.3f s, backward %.3f s (best)\n", r,
               forward_s, tape_s, backward_s);
    }

  printf ("model: llama, hidden %d, heads %d/%d kv, head_dim %d, intermediate %d\n", BENCH_HIDDEN,
          BENCH_HEADS, BENCH_KV_HEADS, BENCH_HEAD_DIM, BENCH_INTERMEDIATE);
  printf ("batch: %d x %d = %" G_GINT64_FORMAT " tokens; OpenBLAS threads: %d; best of %d\n",
          n_seqs, seq_len, n_tokens, slim_linalg_get_n_threads (), repeats);
  printf ("layer forward (slim_model_forward_layer): %.3f s\n", forward_s);
  printf ("forward with tape (slim_dense_layer_forward): %.3f s\n", tape_s);
  printf ("backward (7 weight gradients + input gradient): %.3f s\n", backward_s);
  printf ("backward / forward: %.2f\n", backward_s / forward_s);
  printf ("(tape forward + backward) / forward: %.2f\n", (tape_s + backward_s) / forward_s);

  g_clear_object (&layer);
  g_clear_object (&model);
  bench_remove_tree (dir);
  return 0;
}
