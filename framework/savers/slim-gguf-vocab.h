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
 *   bos_token_id, eos_token_id, unknown_token_id, padding_token_id (u32,
 *   when present), add_bos_token, add_eos_token, add_space_prefix (bool)
 *
 * llama.cpp's SentencePiece tokenizer merges the adjacent pair whose
 * concatenation has the highest score; with these scores it merges in
 * the order slimflow's tokenizer does (the smallest piece rank first),
 * which reproduces the model's tokenizer.model: its scores are a strictly
 * decreasing function of these ranks for the vocabularies transformers
 * converts (checked on stories260K in tests/plugins/test-gguf-saver.cpp).
 *
 * Byte-level BPE (GPT-2, Qwen2, Llama 3) as convert_hf_to_gguf.py writes
 * it, tokenizer.ggml.model "gpt2":
 *
 *   pre         [string] llama.cpp's pre-tokenizer whose regex is
 *                        tokenizer.json's split pattern, verbatim:
 *                        "gpt-2", "qwen2" or "llama-bpe" (the last also
 *                        needs model.ignore_merges true, the others
 *                        false); any other pattern is refused naming it
 *   tokens      [string] every id's token as tokenizer.json writes it
 *                        (byte-level characters; added tokens raw),
 *                        "[PAD<id>]" for unused ids
 *   token_type  [i32]    1 normal, 3 control (special added tokens),
 *                        4 user defined (other added tokens), 5 unused
 *   merges      [string] model.merges in rank order, "left right"
 *   the special ids and add_bos/add_eos as above (no scores, no
 *   add_space_prefix).
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
 * Fails for a tokenizer with more ids than n_vocab, and for a byte-level
 * one no llama.cpp pre-tokenizer reproduces. */
gboolean slim_gguf_vocab_set (SlimGgufWriter *writer,
                              SlimTokenizer *tokenizer,
                              gint64 n_vocab,
                              GError **error);

/* Byte-level: the tokenizer.ggml.pre value (static), or NULL with error
 * naming the split regex. */
const char *slim_gguf_vocab_pre_tokenizer (SlimTokenizer *tokenizer, GError **error);

G_END_DECLS
