/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tokenizer-byte-level.c: the byte-level BPE flavour (GPT-2, Qwen,
 * Llama 3).  Every byte of a word is mapped to a printable character
 * (GPT-2's reversible map) and the mapped bytes are the symbols merged by
 * merge rank, so no text is ever outside the vocabulary.  Natural text
 * repeats words a lot: their ids are cached.  The ByteLevel decoder maps
 * the characters back to bytes.
 */
#include "slim-tokenizer-private.h"

#define SLIM_TOKENIZER_WORD_CACHE_MAX 100000

/* GPT-2's reversible byte -> printable character map. */
void
slim_tokenizer_byte_level_init (SlimTokenizer *self)
{
  guint n_shifted = 0;
  for (guint b = 0; b < 256; b++)
    {
      gunichar c;
      if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
        c = b;
      else
        c = 256 + n_shifted++;
      gint n = g_unichar_to_utf8 (c, self->byte_chars[b]);
      self->byte_chars[b][n] = '\0';
      self->char_to_byte[c] = (guint8)b;
      self->byte_char_ids[b] = slim_tokenizer_lookup (self, self->byte_chars[b]);
    }
}

/* BPE over one word's raw bytes, mapped here. Appends ids. */
static void
slim_tokenizer_byte_level_bpe_uncached (SlimTokenizer *self,
                                        const char *word,
                                        gsize word_bytes,
                                        GArray *ids)
{
  if (word_bytes == 0)
    return;
  g_autoptr (GArray) symbols_array
      = g_array_sized_new (FALSE, FALSE, sizeof (SlimSymbol), word_bytes);
  if (self->ignore_merges)
    {
      GString *mapped = g_string_sized_new (word_bytes * 2);
      for (gsize i = 0; i < word_bytes; i++)
        g_string_append (mapped, self->byte_chars[(guint8)word[i]]);
      gint32 id = slim_tokenizer_lookup (self, mapped->str);
      g_string_free (mapped, TRUE);
      if (id >= 0)
        {
          g_array_append_val (ids, id);
          return;
        }
    }
  for (gsize i = 0; i < word_bytes; i++)
    {
      SlimSymbol s = { .prev = (gint64)i - 1,
                       .next = i + 1 < word_bytes ? (gint64)i + 1 : -1,
                       .id = self->byte_char_ids[(guint8)word[i]],
                       .start_bytes = (guint32)i,
                       .n_bytes = 1 };
      g_array_append_val (symbols_array, s);
    }
  slim_tokenizer_bpe_merge (self, word, symbols_array, ids);
}

/* Cached BPE for byte-level words (natural text repeats words a lot). */
void
slim_tokenizer_byte_level_bpe (SlimTokenizer *self, const char *word, gsize word_bytes, GArray *ids)
{
  if (word_bytes > 256)
    {
      slim_tokenizer_byte_level_bpe_uncached (self, word, word_bytes, ids);
      return;
    }
  g_autofree char *key = g_strndup (word, word_bytes);
  GArray *cached = g_hash_table_lookup (self->word_cache, key);
  if (cached == NULL)
    {
      cached = g_array_new (FALSE, FALSE, sizeof (gint32));
      slim_tokenizer_byte_level_bpe_uncached (self, word, word_bytes, cached);
      if (g_hash_table_size (self->word_cache) >= SLIM_TOKENIZER_WORD_CACHE_MAX)
        g_hash_table_remove_all (self->word_cache);
      g_hash_table_insert (self->word_cache, g_steal_pointer (&key), cached);
    }
  g_array_append_vals (ids, cached->data, cached->len);
}

char *
slim_tokenizer_byte_level_decode (SlimTokenizer *self, const char *token)
{
  GString *bytes = g_string_new (NULL);
  for (const char *p = token; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      if (c < G_N_ELEMENTS (self->char_to_byte)
          && g_utf8_get_char (self->byte_chars[self->char_to_byte[c]]) == c)
        {
          guint8 b = self->char_to_byte[c];
          if (b == 0)
            g_string_append (bytes, "\xef\xbf\xbd");
          else
            g_string_append_c (bytes, (char)b);
        }
      else
        g_string_append_len (bytes, p, g_utf8_next_char (p) - p);
    }
  return g_string_free (bytes, FALSE);
}
