/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-vocab.c: the tokenizer.ggml.* keys (see the header).
 */
#include "slim-gguf-vocab.h"

#include "slim-error.h"

#include <string.h>

static SlimGgufTokenType
slim_gguf_token_type (SlimTokenizer *tokenizer, gint32 id)
{
  if (slim_tokenizer_id_to_token (tokenizer, id) == NULL)
    return SLIM_GGUF_TOKEN_UNUSED;
  if (id == slim_tokenizer_get_unk_id (tokenizer))
    return SLIM_GGUF_TOKEN_UNKNOWN;
  if (slim_tokenizer_is_special (tokenizer, id))
    return SLIM_GGUF_TOKEN_CONTROL;
  if (slim_tokenizer_is_added (tokenizer, id))
    return SLIM_GGUF_TOKEN_USER_DEFINED;
  if (slim_tokenizer_get_byte_value (tokenizer, id) >= 0)
    return SLIM_GGUF_TOKEN_BYTE;
  return SLIM_GGUF_TOKEN_NORMAL;
}

/* BOS/EOS/UNK/padding ids (when the tokenizer has them) and the BOS/EOS
 * policy: written always, llama.cpp's defaults differ per pre-tokenizer. */
static void
slim_gguf_vocab_set_special_ids (SlimGgufWriter *writer, SlimTokenizer *tokenizer)
{
  if (slim_tokenizer_get_bos_id (tokenizer) >= 0)
    slim_gguf_writer_set_u32 (writer, "tokenizer.ggml.bos_token_id",
                              (guint32)slim_tokenizer_get_bos_id (tokenizer));
  if (slim_tokenizer_get_eos_id (tokenizer) >= 0)
    slim_gguf_writer_set_u32 (writer, "tokenizer.ggml.eos_token_id",
                              (guint32)slim_tokenizer_get_eos_id (tokenizer));
  if (slim_tokenizer_get_unk_id (tokenizer) >= 0)
    slim_gguf_writer_set_u32 (writer, "tokenizer.ggml.unknown_token_id",
                              (guint32)slim_tokenizer_get_unk_id (tokenizer));
  if (slim_tokenizer_get_pad_id (tokenizer) >= 0)
    slim_gguf_writer_set_u32 (writer, "tokenizer.ggml.padding_token_id",
                              (guint32)slim_tokenizer_get_pad_id (tokenizer));
  slim_gguf_writer_set_bool (writer, "tokenizer.ggml.add_bos_token",
                             slim_tokenizer_get_add_bos (tokenizer));
  slim_gguf_writer_set_bool (writer, "tokenizer.ggml.add_eos_token",
                             slim_tokenizer_get_add_eos (tokenizer));
}

static gboolean
slim_gguf_vocab_set_sentencepiece (SlimGgufWriter *writer,
                                   SlimTokenizer *tokenizer,
                                   gint64 n_vocab,
                                   GError **error)
{
  gint64 n_ids = slim_tokenizer_get_vocab_size (tokenizer);
  gint64 n_merges = slim_tokenizer_get_n_merges (tokenizer);
  g_autoptr (GPtrArray) owned = NULL;
  g_autofree const char **tokens = NULL; /* (n_vocab) */
  g_autofree float *scores = NULL;       /* (n_vocab) */
  g_autofree gint32 *types = NULL;       /* (n_vocab) */

  owned = g_ptr_array_new_with_free_func (g_free);
  tokens = g_new (const char *, n_vocab);
  scores = g_new (float, n_vocab);
  types = g_new (gint32, n_vocab);
  for (gint64 id = 0; id < n_vocab; id++)
    {
      const char *piece = id < n_ids ? slim_tokenizer_id_to_token (tokenizer, (gint32)id) : NULL;
      SlimGgufTokenType type
          = id < n_ids ? slim_gguf_token_type (tokenizer, (gint32)id) : SLIM_GGUF_TOKEN_UNUSED;
      gint32 rank = id < n_ids ? slim_tokenizer_get_piece_rank (tokenizer, (gint32)id) : -1;

      if (piece == NULL)
        {
          char *pad = g_strdup_printf ("[PAD%" G_GINT64_FORMAT "]", id);
          g_ptr_array_add (owned, pad);
          piece = pad;
        }
      tokens[id] = piece;
      types[id] = type;
      if (rank >= 0)
        scores[id] = -(float)rank;
      else if (type == SLIM_GGUF_TOKEN_NORMAL)
        scores[id] = -(float)(n_merges + id);
      else
        scores[id] = 0.0f;
    }
  slim_gguf_writer_set_string (writer, "tokenizer.ggml.model", "llama");
  slim_gguf_writer_set_string_array (writer, "tokenizer.ggml.tokens", tokens, (gsize)n_vocab);
  slim_gguf_writer_set_f32_array (writer, "tokenizer.ggml.scores", scores, (gsize)n_vocab);
  slim_gguf_writer_set_i32_array (writer, "tokenizer.ggml.token_type", types, (gsize)n_vocab);
  slim_gguf_vocab_set_special_ids (writer, tokenizer);
  slim_gguf_writer_set_bool (writer, "tokenizer.ggml.add_space_prefix",
                             slim_tokenizer_get_add_space_prefix (tokenizer));
  return TRUE;
}

/* llama.cpp's byte-level pre-tokenizers (tokenizer.ggml.pre) and the
 * tokenizer.json Split regex each one applies (llama-vocab.cpp: its
 * regex_exprs are these patterns, with (?i:...) spelt out as character
 * classes and GPT-2's final "|\s+" left to its unmatched-text rule); the
 * LLAMA3 group also emits a word that is a token whole (ignore_merges). */
typedef struct
{
  const char *pre;
  const char *pattern;
  gboolean ignore_merges;
} SlimGgufPreTokenizer;

static const SlimGgufPreTokenizer slim_gguf_pre_tokenizers[] = {
  { "gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
    FALSE },
  { "qwen2",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    FALSE },
  { "llama-bpe",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    TRUE },
};

/**
 * slim_gguf_vocab_pre_tokenizer:
 * @tokenizer: a byte-level BPE tokenizer
 * @error: return location for a #GError
 *
 * Returns: (transfer none) (nullable): llama.cpp's tokenizer.ggml.pre
 *   whose regex is the tokenizer's split pattern (compared verbatim) and
 *   whose ignore_merges is model.ignore_merges, or %NULL with @error
 *   naming the pattern
 */
const char *
slim_gguf_vocab_pre_tokenizer (SlimTokenizer *tokenizer, GError **error)
{
  const char *pattern = slim_tokenizer_get_byte_level_split (tokenizer, error);
  gboolean ignore_merges = slim_tokenizer_get_ignore_merges (tokenizer);
  if (pattern == NULL)
    {
      g_prefix_error (error, "gguf_saver: ");
      return NULL;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (slim_gguf_pre_tokenizers); i++)
    {
      const SlimGgufPreTokenizer *p = &slim_gguf_pre_tokenizers[i];
      if (strcmp (pattern, p->pattern) != 0)
        continue;
      if (p->ignore_merges != ignore_merges)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "gguf_saver: tokenizer.json's pre-tokenizer regex /%s/ is llama.cpp's "
                       "\"%s\", which %s words that are tokens whole, but model.ignore_merges "
                       "is %s",
                       pattern, p->pre, p->ignore_merges ? "emits" : "merges",
                       ignore_merges ? "true" : "false");
          return NULL;
        }
      return p->pre;
    }
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "gguf_saver: tokenizer.json's pre-tokenizer regex /%s/ is none of the llama.cpp "
               "pre-tokenizers gguf_saver knows (gpt-2, qwen2, llama-bpe): it cannot tell which "
               "tokenizer.ggml.pre splits the text the same way",
               pattern);
  return NULL;
}

/* Byte-level BPE as convert_hf_to_gguf.py writes GPT-2/Qwen2/Llama 3
 * vocabularies (tokenizer.ggml.model "gpt2"). */
static gboolean
slim_gguf_vocab_set_byte_level (SlimGgufWriter *writer,
                                SlimTokenizer *tokenizer,
                                gint64 n_vocab,
                                GError **error)
{
  gint64 n_ids = slim_tokenizer_get_vocab_size (tokenizer);
  gint64 n_merges = slim_tokenizer_get_n_merges (tokenizer);
  const char *pre = slim_gguf_vocab_pre_tokenizer (tokenizer, error);
  g_autoptr (GPtrArray) owned = NULL;
  g_autofree const char **tokens = NULL; /* (n_vocab) */
  g_autofree gint32 *types = NULL;       /* (n_vocab) */
  g_autofree const char **merges = NULL; /* (n_merges) */

  if (pre == NULL)
    return FALSE;
  owned = g_ptr_array_new_with_free_func (g_free);
  tokens = g_new (const char *, n_vocab);
  types = g_new (gint32, n_vocab);
  merges = g_new (const char *, MAX (n_merges, 1));
  for (gint64 id = 0; id < n_vocab; id++)
    {
      const char *piece = id < n_ids ? slim_tokenizer_id_to_token (tokenizer, (gint32)id) : NULL;
      if (piece == NULL)
        {
          char *pad = g_strdup_printf ("[PAD%" G_GINT64_FORMAT "]", id);
          g_ptr_array_add (owned, pad);
          tokens[id] = pad;
          types[id] = SLIM_GGUF_TOKEN_UNUSED;
          continue;
        }
      tokens[id] = piece;
      /* added tokens keep their raw text: llama.cpp matches CONTROL and
       * USER_DEFINED tokens in the text before the byte mapping */
      if (slim_tokenizer_is_special (tokenizer, (gint32)id))
        types[id] = SLIM_GGUF_TOKEN_CONTROL;
      else if (slim_tokenizer_is_added (tokenizer, (gint32)id))
        types[id] = SLIM_GGUF_TOKEN_USER_DEFINED;
      else
        types[id] = SLIM_GGUF_TOKEN_NORMAL;
    }
  for (gint64 rank = 0; rank < n_merges; rank++)
    {
      gint32 left = -1, right = -1;
      const char *a, *b;
      if (!slim_tokenizer_get_merge (tokenizer, rank, &left, &right))
        g_assert_not_reached ();
      a = slim_tokenizer_id_to_token (tokenizer, left);
      b = slim_tokenizer_id_to_token (tokenizer, right);
      /* llama.cpp splits "left right" at the first space after the first byte */
      if (strchr (a + 1, ' ') != NULL || strchr (b, ' ') != NULL)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "gguf_saver: tokenizer.json model.merges[%" G_GINT64_FORMAT
                       "] (\"%s\" \"%s\") has a space inside a token, which "
                       "tokenizer.ggml.merges cannot hold",
                       rank, a, b);
          return FALSE;
        }
      merges[rank] = g_strconcat (a, " ", b, NULL);
      g_ptr_array_add (owned, (gpointer)merges[rank]);
    }
  slim_gguf_writer_set_string (writer, "tokenizer.ggml.model", "gpt2");
  slim_gguf_writer_set_string (writer, "tokenizer.ggml.pre", pre);
  slim_gguf_writer_set_string_array (writer, "tokenizer.ggml.tokens", tokens, (gsize)n_vocab);
  slim_gguf_writer_set_i32_array (writer, "tokenizer.ggml.token_type", types, (gsize)n_vocab);
  slim_gguf_writer_set_string_array (writer, "tokenizer.ggml.merges", merges, (gsize)n_merges);
  slim_gguf_vocab_set_special_ids (writer, tokenizer);
  return TRUE;
}

/**
 * slim_gguf_vocab_set:
 * @writer: the GGUF file
 * @tokenizer: the model's tokenizer
 * @n_vocab: rows of the token embedding (config.json vocab_size)
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the keys are set
 */
gboolean
slim_gguf_vocab_set (SlimGgufWriter *writer,
                     SlimTokenizer *tokenizer,
                     gint64 n_vocab,
                     GError **error)
{
  gint64 n_ids = slim_tokenizer_get_vocab_size (tokenizer);

  g_return_val_if_fail (writer != NULL && SLIM_IS_TOKENIZER (tokenizer), FALSE);
  if (n_ids > n_vocab || n_vocab > G_MAXINT32)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "tokenizer.json has %" G_GINT64_FORMAT
                   " ids but the model's embedding has %" G_GINT64_FORMAT " rows",
                   n_ids, n_vocab);
      return FALSE;
    }
  if (slim_tokenizer_get_kind (tokenizer) == SLIM_TOKENIZER_BYTE_LEVEL_BPE)
    return slim_gguf_vocab_set_byte_level (writer, tokenizer, n_vocab, error);
  return slim_gguf_vocab_set_sentencepiece (writer, tokenizer, n_vocab, error);
}
