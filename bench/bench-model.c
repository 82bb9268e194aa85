/* SPDX-License-Identifier: Apache-2.0
 *
 * bench-model.c: the generated Llama models of the benchmarks (see
 * bench-model.h).
 */
#include "bench-model.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>

#include "slim-dtype.h"

typedef struct
{
  char *name;
  gint64 shape[2]; /* shape[1] == 0: 1-D */
  gboolean is_norm;
} BenchTensor;

static guint64 bench_rng_state = 0x9e3779b97f4a7c15ull;

/* xorshift64*: uniform in [-1, 1). */
float
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

static void
bench_tensor_clear (gpointer data)
{
  g_free (((BenchTensor *)data)->name);
}

static GArray *
bench_tensor_list (gint n_layers, gint vocab)
{
  GArray *tensors = g_array_new (FALSE, TRUE, sizeof (BenchTensor)); /* (n_tensors) */

  g_array_set_clear_func (tensors, bench_tensor_clear);
  const gint64 h = BENCH_HIDDEN, q = BENCH_HEADS * BENCH_HEAD_DIM;
  const gint64 kv = BENCH_KV_HEADS * BENCH_HEAD_DIM, inter = BENCH_INTERMEDIATE;

  bench_add (tensors, g_strdup ("model.embed_tokens.weight"), vocab, h, FALSE);
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
gboolean
bench_model_write (const char *dir, gint n_layers, gint vocab, GError **error)
{
  g_autoptr (GArray) tensors = bench_tensor_list (n_layers, vocab);
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
      vocab);
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
  if (!ok)
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot write %s", weights_path);
  return ok;
}

/**
 * bench_remove_tree:
 * @path: a file or folder the benchmark made
 *
 * Removes it and everything below it (no symlinks are followed).
 */
void
bench_remove_tree (const char *path)
{
  GDir *dir;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR) || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_unlink (path);
      return;
    }
  dir = g_dir_open (path, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      bench_remove_tree (child);
    }
  if (dir != NULL)
    g_dir_close (dir);
  g_rmdir (path);
}

static gboolean
bench_copy_file (const char *from, const char *to, GError **error)
{
  g_autofree char *contents = NULL;
  gsize n_bytes = 0;

  return g_file_get_contents (from, &contents, &n_bytes, error)
         && g_file_set_contents (to, contents, (gssize)n_bytes, error);
}

gboolean
bench_model_make (const char *dir, gint n_layers, const char *tokenizer_dir, GError **error)
{
  const char *files[]
      = { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model" };

  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "cannot create %s", dir);
      return FALSE;
    }
  if (!bench_model_write (dir, n_layers, BENCH_TOKENIZER_VOCAB, error))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *from = g_build_filename (tokenizer_dir, files[i], NULL);
      g_autofree char *to = g_build_filename (dir, files[i], NULL);

      if (g_file_test (from, G_FILE_TEST_EXISTS) && !bench_copy_file (from, to, error))
        return FALSE;
    }
  return TRUE;
}
