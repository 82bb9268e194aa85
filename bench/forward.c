/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/forward: speed of the layer-wise forward on a model of realistic
 * shapes, against OpenBLAS sgemm on the same machine and the same shapes.
 *
 * The program writes a Llama model into a temporary folder (hidden 2048,
 * 16 heads, 8 key-value heads, head_dim 128, intermediate 5632, 4 layers,
 * random bf16 weights; a 1024-token vocabulary since embeddings are not
 * what is measured), opens it with slim_model_open() and runs every layer
 * over 8 sequences x 512 tokens, loading each layer just before it runs
 * and releasing it after (as the runner does).
 *
 * FLOPs counted (2 per multiply-add): every linear, 2 n_tokens n_in n_out,
 * and causal attention over the keys each query may see (Q Kᵀ and P V,
 * slim_decoder_attention_flops()); norms, RoPE, softmax and SiLU are not
 * counted (they are < 1% of the work) but their time is.  The sgemm
 * reference runs the seven linears' shapes (n_tokens x n_out x n_in,
 * B transposed, as the forward does) once before each layer, so that both
 * see the same machine load; it reports total FLOPs / total time.
 *
 * Usage: forward [--threads N] [--layers N] [--seqs N] [--seq-len N]
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bench-model.h"
#include "slim-decoder.h"
#include "slim-dtype.h"
#include "slim-linalg.h"
#include "slim-model.h"

#define BENCH_VOCAB 1024

/* sgemm over the layer's seven linear shapes, B transposed as in the
 * forward; returns the seconds spent in sgemm and adds its FLOPs.  The
 * buffers live only during the pass, so that the forward's peak resident
 * memory is not inflated by them. */
static double
bench_sgemm_pass (gint64 n_tokens, double *flops)
{
  const gint64 h = BENCH_HIDDEN, q = BENCH_HEADS * BENCH_HEAD_DIM;
  const gint64 kv = BENCH_KV_HEADS * BENCH_HEAD_DIM, inter = BENCH_INTERMEDIATE;
  const gint64 shapes[][2]
      = { /* (n_out, n_in) */
          { q, h }, { kv, h }, { kv, h }, { h, q }, { inter, h }, { inter, h }, { h, inter }
        };
  const gint64 max_dim = MAX (inter, MAX (h, q));
  g_autofree float *a = g_new (float, n_tokens *max_dim); /* (n_tokens, n_in) */
  g_autofree float *b = g_new (float, max_dim *max_dim);  /* (n_out, n_in) */
  g_autofree float *c = g_new (float, n_tokens *max_dim); /* (n_tokens, n_out) */
  double seconds = 0;

  for (gint64 i = 0; i < n_tokens * max_dim; i++)
    a[i] = bench_uniform ();
  for (gint64 i = 0; i < max_dim * max_dim; i++)
    b[i] = 0.02f * bench_uniform ();
  memset (c, 0, (gsize)(n_tokens * max_dim) * sizeof (float));
  for (gsize i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      gint64 n_out = shapes[i][0], n_in = shapes[i][1];
      gint64 t0 = g_get_monotonic_time ();

      slim_linalg_sgemm (FALSE, TRUE, n_tokens, n_out, n_in, 1.0f, a, n_in, b, n_in, 0.0f, c,
                         n_out);
      seconds += (double)(g_get_monotonic_time () - t0) / 1e6;
      *flops += 2.0 * (double)n_tokens * (double)n_out * (double)n_in;
    }
  return seconds;
}

static double
bench_layer_linear_flops (gint64 n_tokens)
{
  const double h = BENCH_HIDDEN, q = BENCH_HEADS * BENCH_HEAD_DIM;
  const double kv = BENCH_KV_HEADS * BENCH_HEAD_DIM, inter = BENCH_INTERMEDIATE;

  return 2.0 * (double)n_tokens * (q * h + 2 * kv * h + h * q + 3 * inter * h);
}

int
main (int argc, char **argv)
{
  gint n_threads = 0, n_layers = 4, n_seqs = 8, seq_len = 512;
  const GOptionEntry entries[] = {
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "OpenBLAS threads (0: one per processor)",
      "N" },
    { "layers", 0, 0, G_OPTION_ARG_INT, &n_layers, "decoder layers (4)", "N" },
    { "seqs", 0, 0, G_OPTION_ARG_INT, &n_seqs, "sequences (8)", "N" },
    { "seq-len", 0, 0, G_OPTION_ARG_INT, &seq_len, "tokens per sequence (512)", "N" },
    { NULL },
  };
  g_autoptr (GOptionContext) context = g_option_context_new ("- layer forward speed");
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autoptr (SlimModel) model = NULL;
  g_autoptr (SlimLayer) embed = NULL;
  g_autoptr (SlimTensor) hidden = NULL;
  g_autofree gint32 *ids = NULL;  /* (n_tokens) */
  g_autofree gint64 *lens = NULL; /* (n_seqs) */
  gint64 n_tokens, t0;
  double load_s = 0, forward_s = 0, sgemm_s = 0, sgemm_flops = 0, write_s;
  double layer_flops, attn_flops, total_flops;
  SlimBatch batch;
  SlimAttentionShape attn = { BENCH_HEADS, BENCH_KV_HEADS, BENCH_HEAD_DIM, 0, 0.0f };
  struct rusage usage;
  gint64 max_rss_forward_kb;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error) || n_layers < 1 || n_seqs < 1
      || seq_len < 1 || n_threads < 0)
    {
      fprintf (stderr, "forward: %s\n", error != NULL ? error->message : "bad option value");
      return 2;
    }
  slim_linalg_set_n_threads (n_threads);
  n_tokens = (gint64)n_seqs * seq_len;

  dir = g_dir_make_tmp ("slimflow-bench-XXXXXX", &error);
  if (dir == NULL)
    {
      fprintf (stderr, "forward: %s\n", error->message);
      return 1;
    }
  t0 = g_get_monotonic_time ();
  if (!bench_model_write (dir, n_layers, BENCH_VOCAB, &error))
    {
      fprintf (stderr, "forward: %s\n", error->message);
      bench_remove_tree (dir);
      return 1;
    }
  write_s = (double)(g_get_monotonic_time () - t0) / 1e6;

  model = slim_model_open (dir, &error);
  if (model == NULL)
    {
      fprintf (stderr, "forward: %s\n", error->message);
      bench_remove_tree (dir);
      return 1;
    }
  ids = g_new (gint32, n_tokens);
  for (gint64 i = 0; i < n_tokens; i++)
    ids[i] = (gint32)((bench_uniform () + 1.0f) * 0.5f * BENCH_VOCAB) % BENCH_VOCAB;
  lens = g_new (gint64, n_seqs);
  for (gint s = 0; s < n_seqs; s++)
    lens[s] = seq_len;
  batch = (SlimBatch){ (guint)n_seqs, lens };
  embed = slim_model_load_embed (model, &error);
  if (embed != NULL)
    hidden = slim_model_embed (model, embed, ids, n_tokens, &error);
  g_clear_object (&embed);
  if (hidden == NULL)
    {
      fprintf (stderr, "forward: %s\n", error->message);
      bench_remove_tree (dir);
      return 1;
    }

  /* Warm up OpenBLAS's threads and buffers once. */
  {
    double warm = 0;
    bench_sgemm_pass (MIN (n_tokens, 512), &warm);
  }

  for (gint i = 0; i < n_layers; i++)
    {
      g_autoptr (SlimLayer) layer = NULL;
      SlimTensor *next;

      /* The reference first, under the same load as the layer after it. */
      sgemm_s += bench_sgemm_pass (n_tokens, &sgemm_flops);

      t0 = g_get_monotonic_time ();
      layer = slim_model_load_layer (model, (guint)i, &error);
      load_s += (double)(g_get_monotonic_time () - t0) / 1e6;
      if (layer == NULL)
        {
          fprintf (stderr, "forward: %s\n", error->message);
          bench_remove_tree (dir);
          return 1;
        }
      t0 = g_get_monotonic_time ();
      next = slim_model_forward_layer (model, layer, hidden, &batch, NULL, &error);
      forward_s += (double)(g_get_monotonic_time () - t0) / 1e6;
      if (next == NULL)
        {
          fprintf (stderr, "forward: %s\n", error->message);
          bench_remove_tree (dir);
          return 1;
        }
      slim_tensor_unref (hidden);
      hidden = next;
      fprintf (stderr, "layer %d: load %.2f s, forward %.2f s so far\n", i, load_s, forward_s);
    }
  getrusage (RUSAGE_SELF, &usage);
  max_rss_forward_kb = usage.ru_maxrss;

  layer_flops = bench_layer_linear_flops (n_tokens);
  attn_flops = slim_decoder_attention_flops (&attn, &batch);
  total_flops = (layer_flops + attn_flops) * n_layers;
  printf ("model: llama, hidden %d, heads %d/%d kv, head_dim %d, intermediate %d, %d layers, bf16 "
          "weights (written in %.1f s)\n",
          BENCH_HIDDEN, BENCH_HEADS, BENCH_KV_HEADS, BENCH_HEAD_DIM, BENCH_INTERMEDIATE, n_layers,
          write_s);
  printf ("batch: %d sequences x %d tokens = %" G_GINT64_FORMAT " tokens; OpenBLAS threads: %d\n",
          n_seqs, seq_len, n_tokens, slim_linalg_get_n_threads ());
  printf ("FLOPs per layer: linears %.1f G + causal attention %.2f G = %.1f G\n", layer_flops / 1e9,
          attn_flops / 1e9, (layer_flops + attn_flops) / 1e9);
  printf ("layer forward: %.2f s for %d layers = %.0f tokens/s per layer, %.1f GFLOP/s\n",
          forward_s, n_layers, (double)n_tokens * n_layers / forward_s,
          total_flops / forward_s / 1e9);
  printf ("layer load (bf16 -> f32): %.2f s total, %.2f s per layer\n", load_s, load_s / n_layers);
  printf ("sgemm reference (same shapes, same threads): %.1f GFLOP/s\n",
          sgemm_flops / sgemm_s / 1e9);
  printf ("forward / sgemm: %.1f %%\n",
          100.0 * (total_flops / forward_s) / (sgemm_flops / sgemm_s));
  printf ("peak resident memory: %.0f MiB\n", (double)max_rss_forward_kb / 1024.0);

  g_clear_object (&model);
  bench_remove_tree (dir);
  return 0;
}
