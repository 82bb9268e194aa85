/* SPDX-License-Identifier: Apache-2.0
 *
 * bench-model.h: a Llama model of realistic shapes for the benchmarks,
 * written to a folder: hidden 2048, 16 heads, 8 key-value heads, head_dim
 * 128, intermediate 5632, tied embeddings, random bf16 weights (norms at
 * 1, other weights uniform with standard deviation 0.02), one
 * model.safetensors streamed tensor by tensor (never the whole model in
 * memory) and a config.json.  About 103 MiB of weights per layer.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define BENCH_HIDDEN 2048
#define BENCH_HEADS 16
#define BENCH_KV_HEADS 8
#define BENCH_HEAD_DIM 128
#define BENCH_INTERMEDIATE 5632

/* Uniform in [-1, 1) from a fixed-seed xorshift64*: every run generates
 * the same model. */
float bench_uniform (void);

/* Writes config.json and model.safetensors into the existing folder dir. */
gboolean bench_model_write (const char *dir, gint n_layers, gint vocab, GError **error);

/* The vocabulary of the stories260K tokenizer the benchmark models use. */
#define BENCH_TOKENIZER_VOCAB 512

/* Creates dir and writes a model of n_layers into it with the tokenizer
 * files of tokenizer_dir (stories260K's) copied beside it. */
gboolean
bench_model_make (const char *dir, gint n_layers, const char *tokenizer_dir, GError **error);

/* Removes a file or a folder tree the benchmark made. */
void bench_remove_tree (const char *path);

G_END_DECLS
