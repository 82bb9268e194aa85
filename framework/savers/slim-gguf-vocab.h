/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-vocab.h: a model's tokenizer as GGUF tokenizer.ggml.* metadata
 * (llama.cpp's SentencePiece vocabulary, tokenizer.ggml.model "llama"):
 *
 *   tokens      [string] every id's piece ("[PAD<id>]" for ids the
 *               tokenizer does not use, up to the embedding's row count)
 *   scores      [f32]    -rank of the first merge producing the piece
 *                        (slim_tokenizer_get_piece_rank); pieces no merge
 *                        produces: -(n_merges + id) when normal, 0 for
 *                        control, byte, unknown and unused ones
 *   token_type  [i32]    1 normal, 2 unknown, 3 control (special added
 *                        tokens), 4 user defined (other added tokens),
 *                        5 unused (padding), 6 byte (<0xNN>)
 *   bos_token_id, eos_token_id, unknown_token_id (u32, when present),
 *   add_bos_token, add_eos_token, add_space_prefix (bool)
 *
 * llama.cpp's SentencePiece tokenizer merges the adjacent pair whose
 * concatenation has the highest score; with these scores it merges in
 * the order slimflow's tokenizer does (the smallest piece rank first),
 * which reproduces the model's tokenizer.model: its scores are a strictly
 * decreasing function of these ranks for the vocabularies transformers
 * converts (checked on stories260K in tests/plugins/test-gguf-saver.cpp).
 * Byte-level (GPT-2 style) tokenizers are refused.
 */
#pragma once

#include <glib.h>
#include "slim-gguf-writer.h"
#include "slim-tokenizer.h"

G_BEGIN_DECLS

/* GGUF token_type values (llama.cpp's llama_token_type). */
typedef enum
{
  SLIM_GGUF_TOKEN_NORMAL = 1,
  SLIM_GGUF_TOKEN_UNKNOWN = 2,
  SLIM_GGUF_TOKEN_CONTROL = 3,
  SLIM_GGUF_TOKEN_USER_DEFINED = 4,
  SLIM_GGUF_TOKEN_UNUSED = 5,
  SLIM_GGUF_TOKEN_BYTE = 6,
} SlimGgufTokenType;

/* Sets the tokenizer.ggml.* keys for a model of n_vocab embedding rows.
 * Fails for a byte-level tokenizer or one with more ids than n_vocab. */
gboolean slim_gguf_vocab_set (SlimGgufWriter *writer,
                              SlimTokenizer *tokenizer,
                              gint64 n_vocab,
                              GError **error);

G_END_DECLS
