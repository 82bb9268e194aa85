/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/moe-backward: time of one reverse pass through a mixture-of-experts
 * decoder layer (slim_moe_layer_backward: the gradients of every linear's
 * weight - attention, router, each routed expert, the shared expert and
 * its gate - and of the layer input) against one layer forward
 * (slim_model_forward_layer) and the forward that records the tape
 * (slim_moe_layer_forward), on a MoE model folder given by --model_path
 * (e.g. the synthetic tiny-random-qwen2-moe), by default 1 sequence x 512
 * tokens of uniform hidden states.  Best of --repeats runs of each phase.
 *
 * Usage: moe-backward --model_path DIR [--layer N] [--threads N] [--seqs N]
 *                     [--seq-len N] [--repeats N]
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "slim-linalg.h"
#include "slim-model.h"
#include "slim-moe-layer-backward.h"

static double
bench_seconds_since (gint64 t0)
{
  return (double)(g_get_monotonic_time () - t0) / 1e6;
}

int
main (int argc, char **argv)
{
  gint n_threads = 0, n_seqs = 1, seq_len = 512, repeats = 3, layer_index = 0;
  g_autofree char *model_path = NULL;
  const GOptionEntry entries[] = {
    { "model_path", 0, 0, G_OPTION_ARG_FILENAME, &model_path, "a MoE model folder", "DIR" },
    { "layer", 0, 0, G_OPTION_ARG_INT, &layer_index, "decoder layer (0)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "OpenBLAS threads (0: one per processor)",
      "N" },
    { "seqs", 0, 0, G_OPTION_ARG_INT, &n_seqs, "sequences (1)", "N" },
    { "seq-len", 0, 0, G_OPTION_ARG_INT, &seq_len, "tokens per sequence (512)", "N" },
    { "repeats", 0, 0, G_OPTION_ARG_INT, &repeats, "runs of each phase, best kept (3)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- MoE layer backward speed");
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimModel) model = NULL;
  g_autoptr (SlimLayer) layer = NULL;
  g_autoptr (SlimTensor) hidden = NULL;
  g_autofree gint64 *lens = NULL;                  /* (n_seqs) */
  g_autofree float *dy = NULL;                     /* (n_tokens, hidden) */
  g_autofree float *dx = NULL;                     /* (n_tokens, hidden) */
  g_autofree SlimLinearGrads *linear_grads = NULL; /* [n_linears] */
  const SlimModelConfig *config;
  SlimMoeLayerWeights weights = { 0 };
  SlimMoeLayerGrads grads = { 0 };
  SlimMoeLayerTape tape = { 0 };
  SlimBatch batch;
  gint64 n_tokens, hsize, t0, n_params = 0;
  double forward_s = G_MAXDOUBLE, tape_s = G_MAXDOUBLE, backward_s = G_MAXDOUBLE;
  GRand *rand;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || model_path == NULL || n_seqs < 1
      || seq_len < 1 || n_threads < 0 || repeats < 1 || layer_index < 0)
    {
      fprintf (stderr, "moe-backward: %s\n",
               error != NULL ? error->message : "bad option value (--model_path is required)");
      return 2;
    }
  slim_linalg_set_n_threads (n_threads);
  n_tokens = (gint64)n_seqs * seq_len;
  if ((model = slim_model_open (model_path, &error)) == NULL
      || (layer = slim_model_load_layer (model, (guint)layer_index, &error)) == NULL
      || !slim_moe_layer_weights_init (&weights, (config = slim_model_get_config (model)), layer,
                                       &error))
    {
      fprintf (stderr, "moe-backward: %s\n", error->message);
      return 1;
    }
  hsize = config->hidden_size;
  lens = g_new (gint64, n_seqs);
  for (gint s = 0; s < n_seqs; s++)
    lens[s] = seq_len;
  batch = (SlimBatch){ (guint)n_seqs, lens };
  rand = g_rand_new_with_seed (1);
  hidden = slim_tensor_new_2d ("hidden_states", SLIM_DTYPE_F32, n_tokens, hsize);
  {
    float *x = slim_tensor_get_data_mut (hidden);

    for (gint64 i = 0; i < n_tokens * hsize; i++)
      x[i] = (float)g_rand_double_range (rand, -1.0, 1.0);
  }
  dy = g_new (float, n_tokens *hsize);
  dx = g_new (float, n_tokens *hsize);
  for (gint64 i = 0; i < n_tokens * hsize; i++)
    dy[i] = (float)g_rand_double_range (rand, -1.0, 1.0);
  g_rand_free (rand);
  linear_grads = g_new0 (SlimLinearGrads, weights.n_linears);
  for (gint64 i = 0; i < weights.n_linears; i++)
    {
      gint64 n_out, n_in;

      slim_moe_layer_linear_shape (config, i, &n_out, &n_in);
      linear_grads[i].weight = g_new0 (float, n_out *n_in);
      n_params += n_out * n_in;
    }
  grads.linears = linear_grads;
  grads.input = dx;

  for (gint r = 0; r < repeats; r++)
    {
      SlimTensor *out;

      t0 = g_get_monotonic_time ();
      out = slim_model_forward_layer (model, layer, hidden, &batch, NULL, &error);
      forward_s = MIN (forward_s, bench_seconds_since (t0));
      if (out == NULL)
        {
          fprintf (stderr, "moe-backward: %s\n", error->message);
          break;
        }
      slim_tensor_unref (out);

      t0 = g_get_monotonic_time ();
      slim_moe_layer_forward (config, &weights, &batch, slim_tensor_get_data (hidden), &tape);
      tape_s = MIN (tape_s, bench_seconds_since (t0));

      t0 = g_get_monotonic_time ();
      slim_moe_layer_backward (config, &weights, &tape, dy, &grads);
      backward_s = MIN (backward_s, bench_seconds_since (t0));
      slim_moe_layer_tape_clear (&tape);
    }

  if (error == NULL)
    {
      printf ("model: %s (%s), layer %d: hidden %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
              " experts (top %" G_GINT64_FORMAT ") of %" G_GINT64_FORMAT
              ", shared expert %" G_GINT64_FORMAT "; %" G_GINT64_FORMAT
              " linears, %" G_GINT64_FORMAT " weights\n",
              model_path, config->model_type, layer_index, hsize, config->n_experts,
              config->n_experts_per_tok, config->moe_intermediate_size,
              config->shared_expert_intermediate_size, weights.n_linears, n_params);
      printf ("batch: %d x %d = %" G_GINT64_FORMAT " tokens; OpenBLAS threads: %d; best of %d\n",
              n_seqs, seq_len, n_tokens, slim_linalg_get_n_threads (), repeats);
      printf ("layer forward (slim_model_forward_layer): %.4f s\n", forward_s);
      printf ("forward with tape (slim_moe_layer_forward): %.4f s\n", tape_s);
      printf ("backward (every weight gradient + input gradient): %.4f s\n", backward_s);
      printf ("backward / forward: %.2f\n", backward_s / forward_s);
      printf ("(tape forward + backward) / forward: %.2f\n", (tape_s + backward_s) / forward_s);
    }

  for (gint64 i = 0; i < weights.n_linears; i++)
    g_free (linear_grads[i].weight);
  slim_moe_layer_weights_clear (&weights);
  return error == NULL ? 0 : 1;
}
