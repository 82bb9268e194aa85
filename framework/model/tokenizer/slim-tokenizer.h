/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tokenizer.h: the BPE tokenizers of Hugging Face model folders,
 * read from tokenizer.json (vocabulary, merges, normalizer, pre-tokenizer,
 * added tokens) and tokenizer_config.json (BOS/EOS policy).
 *
 * Two families are supported:
 * - SentencePiece-style BPE with byte fallback (Llama 1/2, stories260K):
 *   a "▁" is prepended and spaces become "▁"; the pieces are merged
 *   greedily by the merged piece's rank, which reproduces the slow
 *   SentencePiece tokenizer (tokenizer.model) for vocabularies converted
 *   by transformers; characters outside the vocabulary become <0xNN>
 *   byte tokens.
 * - Byte-level BPE (GPT-2, Qwen, Llama 3): the text is split by the
 *   pre-tokenizer's regular expression (GRegex), every byte is mapped to
 *   a printable character and the pieces are merged by merge rank.
 *
 * Added tokens (special or not) found in the text are emitted as their
 * own ids and never merged with their surroundings.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef enum
{
  SLIM_TOKENIZER_SENTENCEPIECE_BPE, /* not byte-level; byte fallback optional */
  SLIM_TOKENIZER_BYTE_LEVEL_BPE,    /* GPT-2 style */
} SlimTokenizerKind;

#define SLIM_TYPE_TOKENIZER (slim_tokenizer_get_type ())
G_DECLARE_FINAL_TYPE (SlimTokenizer, slim_tokenizer, SLIM, TOKENIZER, GObject)

/* dir holds tokenizer.json and (optionally) tokenizer_config.json.
 * transfer full. */
SlimTokenizer *slim_tokenizer_new_from_dir (const char *dir, GError **error);
SlimTokenizer *slim_tokenizer_new_from_files (const char *tokenizer_json,
                                              const char *tokenizer_config_json, /* nullable */
                                              GError **error);

/* text: UTF-8, NUL-terminated (invalid UTF-8 is an error).  Returns a
 * GArray of gint32 ids; add_special adds BOS/EOS as tokenizer_config.json
 * asks.  transfer full. */
GArray *
slim_tokenizer_encode (SlimTokenizer *self, const char *text, gboolean add_special, GError **error);
/* ids (n_ids) -> UTF-8 text (transfer full).  Ids out of range are
 * skipped with no output; invalid UTF-8 from byte tokens becomes U+FFFD. */
char *
slim_tokenizer_decode (SlimTokenizer *self, const gint32 *ids, gsize n_ids, gboolean skip_special);
/* TRUE when every id is in [0, vocab size). */
gboolean
slim_tokenizer_check_ids (SlimTokenizer *self, const gint32 *ids, gsize n_ids, GError **error);

/* Number of ids (largest id + 1, added tokens included). */
gint64 slim_tokenizer_get_vocab_size (SlimTokenizer *self);
/* -1 when the tokenizer has none. */
gint32 slim_tokenizer_get_bos_id (SlimTokenizer *self);
gint32 slim_tokenizer_get_eos_id (SlimTokenizer *self);
gboolean slim_tokenizer_get_add_bos (SlimTokenizer *self);
gboolean slim_tokenizer_get_add_eos (SlimTokenizer *self);
/* transfer none; NULL when out of range. */
const char *slim_tokenizer_id_to_token (SlimTokenizer *self, gint32 id);
/* -1 when absent. */
gint32 slim_tokenizer_token_to_id (SlimTokenizer *self, const char *token);
gboolean slim_tokenizer_is_special (SlimTokenizer *self, gint32 id);

/* What an exporter of the vocabulary (the gguf saver) needs. */
SlimTokenizerKind slim_tokenizer_get_kind (SlimTokenizer *self);
/* -1 when the tokenizer has none. */
gint32 slim_tokenizer_get_unk_id (SlimTokenizer *self);
/* tokenizer_config.json's pad_token; -1 when none. */
gint32 slim_tokenizer_get_pad_id (SlimTokenizer *self);
/* An added token (tokenizer.json added_tokens), special or not. */
gboolean slim_tokenizer_is_added (SlimTokenizer *self, gint32 id);
/* NN of a byte-fallback token <0xNN>, else -1. */
gint slim_tokenizer_get_byte_value (SlimTokenizer *self, gint32 id);
gint64 slim_tokenizer_get_n_merges (SlimTokenizer *self);
/* SentencePiece style: TRUE when a "\u2581" is put before the text. */
gboolean slim_tokenizer_get_add_space_prefix (SlimTokenizer *self);
/* SentencePiece style: the rank of the first merge producing id, -1 when
 * none does (or the tokenizer is byte-level). */
gint32 slim_tokenizer_get_piece_rank (SlimTokenizer *self, gint32 id);
/* The ids of model.merges[rank]; FALSE when out of range. */
gboolean
slim_tokenizer_get_merge (SlimTokenizer *self, gint64 rank, gint32 *out_left, gint32 *out_right);
/* model.ignore_merges: a word that is a token is not merged. */
gboolean slim_tokenizer_get_ignore_merges (SlimTokenizer *self);
/* Byte-level: the one regex splitting the text before the byte mapping,
 * as tokenizer.json writes it (transfer none); NULL with error naming
 * the step when the pipeline is not one regex Split + ByteLevel (or
 * ByteLevel with use_regex), without prefix space, NFC at most. */
const char *slim_tokenizer_get_byte_level_split (SlimTokenizer *self, GError **error);

G_END_DECLS
