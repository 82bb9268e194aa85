/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tokenizer-private.h: what the files of SlimTokenizer share: the
 * instance struct, the pre-tokenizer steps, the merge map and the symbols
 * of the BPE merge, and the functions one file calls in another:
 *
 *   slim-tokenizer.c               the GObject, the public API, loading
 *                                  tokenizer.json and tokenizer_config.json,
 *                                  the normalizer, the encode and decode drivers
 *   slim-tokenizer-pretokenizer.c  normalized text -> words (Split,
 *                                  ByteLevel, Metaspace, Digits)
 *   slim-tokenizer-bpe.c           the merge map and the priority-queue merge
 *                                  both flavours share
 *   slim-tokenizer-sentencepiece.c SentencePiece-style BPE: UTF-8 characters,
 *                                  byte fallback tokens <0xNN>
 *   slim-tokenizer-byte-level.c    byte-level (GPT-2) BPE: the byte map, the
 *                                  word cache, ByteLevel decoding
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* As G_DECLARE_FINAL_TYPE in slim-tokenizer.h declares it (C11 allows the
 * repeat); this header does not include slim-tokenizer.h, which would make
 * an include cycle with slim-tokenizer.c. */
typedef struct _SlimTokenizer SlimTokenizer;

typedef enum
{
  SLIM_SPLIT_ISOLATED,
  SLIM_SPLIT_REMOVED,
  SLIM_SPLIT_MERGED_WITH_PREVIOUS,
  SLIM_SPLIT_MERGED_WITH_NEXT,
} SlimSplitBehavior;

typedef enum
{
  SLIM_PRE_SPLIT,
  SLIM_PRE_BYTE_LEVEL,
  SLIM_PRE_METASPACE,
} SlimPreKind;

typedef struct
{
  SlimPreKind kind;
  GRegex *regex; /* SPLIT; BYTE_LEVEL when use_regex */
  char *pattern; /* regex's source as tokenizer.json writes it (GPT-2's for ByteLevel) */
  gboolean pattern_is_regex; /* FALSE: a "String" pattern (escaped for regex) */
  gboolean digits;           /* SPLIT made by a Digits pre-tokenizer */
  SlimSplitBehavior behavior;
  gboolean add_prefix_space; /* BYTE_LEVEL */
  char *replacement;         /* METASPACE */
  gboolean prepend_always;   /* METASPACE: "always"; FALSE = "first" or "never" */
  gboolean prepend_first;    /* METASPACE: "first" */
  gboolean split;            /* METASPACE */
} SlimPreStep;

/* Open-addressing map (left id, right id) -> merge. */
typedef struct
{
  guint64 *keys;   /* (n_slots) G_MAXUINT64 = empty */
  gint32 *ranks;   /* (n_slots) priority of the merge */
  gint32 *results; /* (n_slots) id of the merged token */
  gsize n_slots;
} SlimMergeMap;

struct _SlimTokenizer
{
  GObject parent_instance;

  GPtrArray *id_to_token;  /* (vocab_size) char*, NULL for unused ids */
  GHashTable *token_to_id; /* char* (owned by id_to_token) -> GINT_TO_POINTER (id + 1) */
  guint8 *special;         /* (vocab_size) 1 for special added tokens */
  guint8 *added;           /* (vocab_size) 1 for added tokens */
  gint64 vocab_size;

  SlimMergeMap merges;
  gint64 n_merges;
  gint32 *merge_pairs; /* (n_merges, 2) left and right id of each merge, rank order */
  /* (n_piece_rank) SentencePiece style: the rank of the first merge that
   * produces the piece, G_MAXINT32 when none does; NULL for byte-level */
  gint32 *piece_rank;
  gint64 n_piece_rank;     /* the vocabulary size when the merges were read */
  gboolean piece_priority; /* SentencePiece-style: priority of the merged piece */
  gboolean byte_fallback;
  gboolean ignore_merges;
  gint32 unk_id;
  gint32 byte_ids[256]; /* id of <0xNN>, -1 if absent */

  gboolean byte_level;       /* words are byte-mapped before BPE */
  char byte_chars[256][4];   /* byte -> its printable UTF-8 character (NUL-terminated) */
  gint32 byte_char_ids[256]; /* id of byte_chars[b], -1 if absent */
  guint8 char_to_byte[512];  /* code point (< 512) -> byte, for ByteLevel decoding */

  /* Step types other than SlimPreStep are private to slim-tokenizer.c. */
  GArray *normalizers;           /* SlimNormStep */
  GArray *pretokenizers;         /* SlimPreStep */
  GArray *decoders;              /* SlimDecStep */
  GArray *added_tokens;          /* SlimAddedToken, longest content first */
  GPtrArray *added_by_byte[256]; /* first byte -> SlimAddedToken* (longest first); NULL if none */

  gint32 bos_id;
  gint32 eos_id;
  gint32 pad_id; /* tokenizer_config.json pad_token, -1 if none */
  gboolean add_bos;
  gboolean add_eos;

  GHashTable *word_cache; /* char* word -> GArray of gint32 (byte-level only) */
};

/* One symbol of a word during the BPE merge: a run of the word's bytes,
 * linked to its neighbours. */
typedef struct
{
  gint64 prev; /* -1 at the start */
  gint64 next; /* -1 at the end */
  gint32 id;   /* -1: not in the vocabulary */
  guint32 start_bytes;
  guint32 n_bytes; /* 0 once merged into its left neighbour */
} SlimSymbol;

/* ---- slim-tokenizer.c ---------------------------------------------------- */

/* The id of token, or -1. */
gint32 slim_tokenizer_lookup (SlimTokenizer *self, const char *token);
/* First occurrence of pattern (n_pattern > 0 bytes) in [p, end), or NULL.
 * memchr + memcmp instead of strstr: the sanitizers' strstr measures the
 * whole haystack on every call, which turns a loop over a long text
 * quadratic. */
const char *
slim_tokenizer_find (const char *p, const char *end, const char *pattern, gsize n_pattern);
/* text with every pattern (non-empty) replaced (transfer full). */
char *slim_tokenizer_replace_all (const char *text, const char *pattern, const char *replacement);

/* ---- slim-tokenizer-pretokenizer.c --------------------------------------- */

/* Clear func of a GArray of SlimPreStep. */
void slim_pre_step_clear (gpointer data);
/* normalized (transfer full) -> its words (GPtrArray of char*, transfer
 * full) after every pre-tokenizer step; first_segment: the text before
 * the first added token (Metaspace "first"). */
GPtrArray *
slim_tokenizer_pretokenize (SlimTokenizer *self, char *normalized, gboolean first_segment);

/* ---- slim-tokenizer-bpe.c ------------------------------------------------ */

/* Room for n_merges pairs, all empty. */
void slim_merge_map_init (SlimMergeMap *map, gsize n_merges);
/* Inserts unless the pair is already known (the first, lowest rank wins). */
void
slim_merge_map_insert (SlimMergeMap *map, gint32 left, gint32 right, gint32 rank, gint32 result);
/* Merges the symbols (GArray of SlimSymbol, one per character or byte of
 * word, linked in order) by priority and appends the ids of what is left;
 * symbols outside the vocabulary become byte tokens (byte fallback) or
 * the unknown token. */
void slim_tokenizer_bpe_merge (SlimTokenizer *self, const char *word, GArray *symbols, GArray *ids);

/* ---- slim-tokenizer-sentencepiece.c -------------------------------------- */

/* BPE of one normalized word (word_bytes bytes of UTF-8); appends ids. */
void slim_tokenizer_sentencepiece_bpe (SlimTokenizer *self,
                                       const char *word,
                                       gsize word_bytes,
                                       GArray *ids);
/* "<0xNN>" -> NN, or -1. */
gint slim_tokenizer_parse_byte_token (const char *token);

/* ---- slim-tokenizer-byte-level.c ----------------------------------------- */

/* Fills byte_chars, char_to_byte and byte_char_ids (the vocabulary is loaded). */
void slim_tokenizer_byte_level_init (SlimTokenizer *self);
/* BPE of one word (word_bytes raw bytes, mapped here), cached; appends ids. */
void slim_tokenizer_byte_level_bpe (SlimTokenizer *self,
                                    const char *word,
                                    gsize word_bytes,
                                    GArray *ids);
/* A token's printable characters back to its bytes (transfer full). */
char *slim_tokenizer_byte_level_decode (SlimTokenizer *self, const char *token);

G_END_DECLS
