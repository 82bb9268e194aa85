/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-vocab.c: the tokenizer.ggml.* keys (see the header).
 */
#include "slim-gguf-vocab.h"

#include "slim-error.h"

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
  gint64 n_merges = slim_tokenizer_get_n_merges (tokenizer);
  g_autoptr (GPtrArray) owned = NULL;
  g_autofree const char **tokens = NULL; /* (n_vocab) */
  g_autofree float *scores = NULL;       /* (n_vocab) */
  g_autofree gint32 *types = NULL;       /* (n_vocab) */

  g_return_val_if_fail (writer != NULL && SLIM_IS_TOKENIZER (tokenizer), FALSE);

  if (slim_tokenizer_get_kind (tokenizer) != SLIM_TOKENIZER_SENTENCEPIECE_BPE)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "tokenizer.json: byte-level BPE (GPT-2 style) tokenizers cannot be embedded "
                   "by gguf_saver; it writes SentencePiece-style BPE tokenizers "
                   "(tokenizer.ggml.model \"llama\") only");
      return FALSE;
    }
  if (n_ids > n_vocab || n_vocab > G_MAXINT32)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "tokenizer.json has %" G_GINT64_FORMAT
                   " ids but the model's embedding has %" G_GINT64_FORMAT " rows",
                   n_ids, n_vocab);
      return FALSE;
    }
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
  if (slim_tokenizer_get_bos_id (tokenizer) >= 0)
    slim_gguf_writer_set_u32 (writer, "tokenizer.ggml.bos_token_id",
                              (guint32)slim_tokenizer_get_bos_id (tokenizer));
  if (slim_tokenizer_get_eos_id (tokenizer) >= 0)
    slim_gguf_writer_set_u32 (writer, "tokenizer.ggml.eos_token_id",
                              (guint32)slim_tokenizer_get_eos_id (tokenizer));
  if (slim_tokenizer_get_unk_id (tokenizer) >= 0)
    slim_gguf_writer_set_u32 (writer, "tokenizer.ggml.unknown_token_id",
                              (guint32)slim_tokenizer_get_unk_id (tokenizer));
  slim_gguf_writer_set_bool (writer, "tokenizer.ggml.add_bos_token",
                             slim_tokenizer_get_add_bos (tokenizer));
  slim_gguf_writer_set_bool (writer, "tokenizer.ggml.add_eos_token",
                             slim_tokenizer_get_add_eos (tokenizer));
  slim_gguf_writer_set_bool (writer, "tokenizer.ggml.add_space_prefix",
                             slim_tokenizer_get_add_space_prefix (tokenizer));
  return TRUE;
}
