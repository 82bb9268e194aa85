/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tokenizer-pretokenizer.c: the pre-tokenizer, which cuts a
 * normalized text segment into the words BPE runs on, step by step as
 * tokenizer.json lists them (slim-tokenizer.c reads the steps): Split and
 * Digits split at the matches of a regular expression (GRegex) and keep,
 * drop or attach the matches; ByteLevel adds the prefix space and splits
 * with GPT-2's pattern; Metaspace replaces spaces by "\u2581" and splits
 * before each.
 */
#include "slim-tokenizer-private.h"

#include <string.h>

void
slim_pre_step_clear (gpointer data)
{
  SlimPreStep *step = data;
  g_clear_pointer (&step->regex, g_regex_unref);
  g_free (step->replacement);
  g_free (step->pattern);
}

/* Splits every piece of pieces (GPtrArray of char*) at the matches of a
 * regex, keeping, dropping or attaching the matches per behavior. */
static GPtrArray *
slim_pre_split (const SlimPreStep *step, GPtrArray *pieces)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  for (guint p = 0; p < pieces->len; p++)
    {
      const char *text = g_ptr_array_index (pieces, p);
      gsize text_bytes = strlen (text);
      g_autoptr (GMatchInfo) match = NULL;
      gsize last = 0;
      char *pending = NULL; /* MERGED_WITH_NEXT: a match waiting for what follows */
      g_regex_match (step->regex, text, 0, &match);
      while (g_match_info_matches (match))
        {
          gint start, end;
          g_match_info_fetch_pos (match, 0, &start, &end);
          if (end > start)
            {
              char *before = (gsize)start > last ? g_strndup (text + last, start - last) : NULL;
              char *matched = g_strndup (text + start, end - start);
              if (before != NULL && pending != NULL)
                {
                  char *joined = g_strconcat (pending, before, NULL);
                  g_free (before);
                  g_clear_pointer (&pending, g_free);
                  before = joined;
                }
              switch (step->behavior)
                {
                case SLIM_SPLIT_ISOLATED:
                  if (before != NULL)
                    g_ptr_array_add (out, before);
                  g_ptr_array_add (out, matched);
                  break;
                case SLIM_SPLIT_REMOVED:
                  if (before != NULL)
                    g_ptr_array_add (out, before);
                  g_free (matched);
                  break;
                case SLIM_SPLIT_MERGED_WITH_PREVIOUS:
                  if (before != NULL)
                    {
                      g_ptr_array_add (out, g_strconcat (before, matched, NULL));
                      g_free (before);
                      g_free (matched);
                    }
                  else if (last > 0)
                    {
                      char **prev = (char **)&g_ptr_array_index (out, out->len - 1);
                      char *joined = g_strconcat (*prev, matched, NULL);
                      g_free (*prev);
                      *prev = joined;
                      g_free (matched);
                    }
                  else
                    g_ptr_array_add (out, matched);
                  break;
                case SLIM_SPLIT_MERGED_WITH_NEXT:
                  if (before != NULL)
                    g_ptr_array_add (out, before);
                  if (pending != NULL)
                    {
                      g_ptr_array_add (out, pending);
                      pending = NULL;
                    }
                  pending = matched;
                  break;
                }
              last = end;
            }
          g_match_info_next (match, NULL);
        }
      char *rest = last < text_bytes ? g_strdup (text + last) : NULL;
      if (pending != NULL)
        {
          char *joined = g_strconcat (pending, rest != NULL ? rest : "", NULL);
          g_free (pending);
          g_free (rest);
          rest = joined;
        }
      if (rest != NULL)
        g_ptr_array_add (out, rest);
    }
  return out;
}

GPtrArray *
slim_tokenizer_pretokenize (SlimTokenizer *self, char *normalized, gboolean first_segment)
{
  GPtrArray *pieces = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (pieces, normalized);
  for (guint i = 0; i < self->pretokenizers->len; i++)
    {
      SlimPreStep *step = &g_array_index (self->pretokenizers, SlimPreStep, i);
      GPtrArray *next = NULL;
      switch (step->kind)
        {
        case SLIM_PRE_SPLIT:
          next = slim_pre_split (step, pieces);
          break;
        case SLIM_PRE_BYTE_LEVEL:
          for (guint p = 0; step->add_prefix_space && p < pieces->len; p++)
            {
              char **piece = (char **)&g_ptr_array_index (pieces, p);
              if ((*piece)[0] != ' ' && (*piece)[0] != '\0')
                {
                  char *prefixed = g_strconcat (" ", *piece, NULL);
                  g_free (*piece);
                  *piece = prefixed;
                }
            }
          if (step->regex != NULL)
            next = slim_pre_split (step, pieces);
          break;
        case SLIM_PRE_METASPACE:
          {
            next = g_ptr_array_new_with_free_func (g_free);
            for (guint p = 0; p < pieces->len; p++)
              {
                const char *text = g_ptr_array_index (pieces, p);
                g_autofree char *replaced
                    = slim_tokenizer_replace_all (text, " ", step->replacement);
                gboolean prepend
                    = step->prepend_always || (step->prepend_first && first_segment && p == 0);
                if (prepend && !g_str_has_prefix (replaced, step->replacement))
                  {
                    char *prefixed = g_strconcat (step->replacement, replaced, NULL);
                    g_free (replaced);
                    replaced = prefixed;
                  }
                if (!step->split)
                  {
                    g_ptr_array_add (next, g_steal_pointer (&replaced));
                    continue;
                  }
                /* Split before every replacement character (MergedWithNext). */
                gsize n_rep = strlen (step->replacement);
                const char *start = replaced;
                const char *scan = replaced;
                const char *end = replaced + strlen (replaced);
                while ((scan = slim_tokenizer_find (scan, end, step->replacement, n_rep)) != NULL)
                  {
                    if (scan > start)
                      g_ptr_array_add (next, g_strndup (start, scan - start));
                    start = scan;
                    scan += n_rep;
                  }
                if (*start != '\0')
                  g_ptr_array_add (next, g_strdup (start));
              }
          }
          break;
        }
      if (next != NULL)
        {
          g_ptr_array_unref (pieces);
          pieces = next;
        }
    }
  return pieces;
}
