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

#include "slim-decoder.h"
#include "slim-dtype.h"
#include "slim-linalg.h"
#include "slim-model.h"

#define BENCH_HIDDEN 2048
#define BENCH_HEADS 16
#define BENCH_KV_HEADS 8
#define BENCH_HEAD_DIM 128
#define BENCH_INTERMEDIATE 5632
#define BENCH_VOCAB 1024

typedef struct
{
  char *name;
  gint64 shape[2]; /* shape[1] == 0: 1-D */
  gboolean is_norm;
} BenchTensor;

static guint64 bench_rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: uniform in [-1, 1). */
static float
bench_uniform (void)
{
  bench_rng_state ^= bench_rng_state >> 12;
  bench_rng_state ^= bench_rng_state << 25;
  bench_rng_state ^= bench_rng_state >> 27;
  return (float)((bench_rng_state * 0x2545f4914f6cdd1dull) >> 40) / (float)(1 << 23) - 1.0f;
}

static void
bench_add (GArray *tensors, char *name, gint64 d0, gint64 d1, gboolean is_norm)
{
  BenchTensor t = { name, { d0, d1 }, is_norm };

  g_array_append_val (tensors, t);
}

static GArray *
bench_tensor_list (gint n_layers)
{
  GArray *tensors = g_array_new (FALSE, TRUE, sizeof (BenchTensor));
  const gint64 h = BENCH_HIDDEN, q = BENCH_HEADS * BENCH_HEAD_DIM;
  const gint64 kv = BENCH_KV_HEADS * BENCH_HEAD_DIM, inter = BENCH_INTERMEDIATE;

  bench_add (tensors, g_strdup ("model.embed_tokens.weight"), BENCH_VOCAB, h, FALSE);
  for (gint i = 0; i < n_layers; i++)
    {
      const char *suffixes[] = { "input_layernorm",  "self_attn.q_proj", "self_attn.k_proj",
                                 "self_attn.v_proj", "self_attn.o_proj", "post_attention_layernorm",
                                 "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj" };
      const gint64 shapes[][2] = { { h, 0 }, { q, h },     { kv, h },    { kv, h },   { h, q },
                                   { h, 0 }, { inter, h }, { inter, h }, { h, inter } };

      for (gsize j = 0; j < G_N_ELEMENTS (suffixes); j++)
        bench_add (tensors, g_strdup_printf ("model.layers.%d.%s.weight", i, suffixes[j]),
                   shapes[j][0], shapes[j][1], shapes[j][1] == 0);
    }
  bench_add (tensors, g_strdup ("model.norm.weight"), h, 0, TRUE);
  return tensors;
}

/* A minimal streaming safetensors writer: header, then each tensor
 * generated and written in turn (never the whole model in memory). */
static gboolean
bench_write_model (const char *dir, gint n_layers, GError **error)
{
  g_autoptr (GArray) tensors = bench_tensor_list (n_layers);
  g_autoptr (GString) header = g_string_new ("{");
  g_autofree char *config = NULL;
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  g_autofree char *weights_path = g_build_filename (dir, "model.safetensors", NULL);
  guint64 offset = 0, n_header;
  FILE *stream;
  gboolean ok = TRUE;

  config = g_strdup_printf (
      "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", "
      "\"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d, "
      "\"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"head_dim\": %d, "
      "\"vocab_size\": %d, \"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, "
      "\"max_position_embeddings\": 4096, \"tie_word_embeddings\": true, "
      "\"hidden_act\": \"silu\", \"torch_dtype\": \"bfloat16\"}\n",
      BENCH_HIDDEN, BENCH_INTERMEDIATE, n_layers, BENCH_HEADS, BENCH_KV_HEADS, BENCH_HEAD_DIM,
      BENCH_VOCAB);
  if (!g_file_set_contents (config_path, config, -1, error))
    return FALSE;

  for (guint i = 0; i < tensors->len; i++)
    {
      BenchTensor *t = &g_array_index (tensors, BenchTensor, i);
      guint64 n = (guint64)t->shape[0] * (guint64)(t->shape[1] > 0 ? t->shape[1] : 1);

      if (t->shape[1] > 0)
        g_string_append_printf (
            header,
            "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
            "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}",
            i > 0 ? "," : "", t->name, t->shape[0], t->shape[1], offset, offset + 2 * n);
      else
        g_string_append_printf (header,
                                "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%" G_GINT64_FORMAT
                                "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}",
                                i > 0 ? "," : "", t->name, t->shape[0], offset, offset + 2 * n);
      offset += 2 * n;
    }
  g_string_append_c (header, '}');
  while (header->len % 8 != 0)
    g_string_append_c (header, ' ');
  n_header = GUINT64_TO_LE ((guint64)header->len);

  stream = fopen (weights_path, "wb");
  if (stream == NULL)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot write %s", weights_path);
      return FALSE;
    }
  ok = fwrite (&n_header, 8, 1, stream) == 1
       && fwrite (header->str, 1, header->len, stream) == header->len;
  for (guint i = 0; i < tensors->len && ok; i++)
    {
      BenchTensor *t = &g_array_index (tensors, BenchTensor, i);
      gsize n = (gsize)t->shape[0] * (gsize)(t->shape[1] > 0 ? t->shape[1] : 1);
      g_autofree guint16 *data = g_new (guint16, n); /* (n) bf16 */

      /* Norms at 1; other weights uniform with standard deviation 0.02. */
      for (gsize j = 0; j < n; j++)
        data[j] = slim_f32_to_bf16 (t->is_norm ? 1.0f : 0.0346f * bench_uniform ());
      ok = fwrite (data, 2, n, stream) == n;
    }
  ok = (fclose (stream) == 0) && ok;
  for (guint i = 0; i < tensors->len; i++)
    g_free (g_array_index (tensors, BenchTensor, i).name);
  if (!ok)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot write %s", weights_path);
  return ok;
}

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

static void
bench_remove_dir (const char *dir)
{
  const char *files[] = { "config.json", "model.safetensors" };

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = g_build_filename (dir, files[i], NULL);
      g_unlink (path);
    }
  g_rmdir (dir);
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
  if (!bench_write_model (dir, n_layers, &error))
    {
      fprintf (stderr, "forward: %s\n", error->message);
      bench_remove_dir (dir);
      return 1;
    }
  write_s = (double)(g_get_monotonic_time () - t0) / 1e6;

  model = slim_model_open (dir, &error);
  if (model == NULL)
    {
      fprintf (stderr, "forward: %s\n", error->message);
      bench_remove_dir (dir);
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
      bench_remove_dir (dir);
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
          bench_remove_dir (dir);
          return 1;
        }
      t0 = g_get_monotonic_time ();
      next = slim_model_forward_layer (model, layer, hidden, &batch, NULL, &error);
      forward_s += (double)(g_get_monotonic_time () - t0) / 1e6;
      if (next == NULL)
        {
          fprintf (stderr, "forward: %s\n", error->message);
          bench_remove_dir (dir);
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
  bench_remove_dir (dir);
  return 0;
}
