/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tokenizer-sentencepiece.c: the SentencePiece-style BPE flavour
 * (Llama 1/2, stories260K: tokenizer.json converted from a
 * tokenizer.model).  A word's symbols are its UTF-8 characters; pairs are
 * merged by the rank of the merged piece, which is what SentencePiece's
 * own BPE does with its piece scores; characters outside the vocabulary
 * become <0xNN> byte tokens (byte fallback), which decoding turns back
 * into bytes.
 */
#include "slim-tokenizer-private.h"

#include <string.h>

void
slim_tokenizer_sentencepiece_bpe (SlimTokenizer *self,
                                  const char *word,
                                  gsize word_bytes,
                                  GArray *ids)
{
  if (word_bytes == 0)
    return;
  if (self->ignore_merges)
    {
      g_autofree char *copy = g_strndup (word, word_bytes);
      gint32 id = slim_tokenizer_lookup (self, copy);
      if (id >= 0)
        {
          g_array_append_val (ids, id);
          return;
        }
    }

  g_autoptr (GArray) symbols_array
      = g_array_sized_new (FALSE, FALSE, sizeof (SlimSymbol), word_bytes);
  char buffer[8];
  const char *p = word;
  const char *end = word + word_bytes;
  gint64 index = 0;
  while (p < end)
    {
      const char *next = g_utf8_next_char (p);
      if (next > end)
        next = end;
      gsize n = next - p;
      memcpy (buffer, p, n);
      buffer[n] = '\0';
      SlimSymbol s = { .prev = index - 1,
                       .next = next < end ? index + 1 : -1,
                       .id = slim_tokenizer_lookup (self, buffer),
                       .start_bytes = (guint32)(p - word),
                       .n_bytes = (guint32)n };
      g_array_append_val (symbols_array, s);
      index++;
      p = next;
    }
  slim_tokenizer_bpe_merge (self, word, symbols_array, ids);
}

/* "<0xNN>" -> NN, or -1. */
gint
slim_tokenizer_parse_byte_token (const char *token)
{
  if (strlen (token) != 6 || strncmp (token, "<0x", 3) != 0 || token[5] != '>')
    return -1;
  gint hi = g_ascii_xdigit_value (token[3]);
  gint lo = g_ascii_xdigit_value (token[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}
