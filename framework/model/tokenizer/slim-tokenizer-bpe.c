/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tokenizer-bpe.c: the BPE merge both tokenizer flavours share.  The
 * merge map takes a pair of adjacent token ids to the merged token and
 * the pair's priority (the merge rank, or for SentencePiece-style
 * tokenizers the rank of the merged piece: slim-tokenizer.c loads it).
 * A word's symbols are merged with a priority queue: the pair with the
 * smallest priority first, ties to the leftmost pair; what is left is
 * emitted as ids, with byte fallback or the unknown token for symbols
 * outside the vocabulary.
 */
#include "slim-tokenizer-private.h"

/* ---------------------------------------------------------------------- */
/* Merge map                                                                */

static guint64
slim_merge_key (gint32 left, gint32 right)
{
  return ((guint64)(guint32)left << 32) | (guint32)right;
}

static gsize
slim_merge_slot (const SlimMergeMap *map, guint64 key)
{
  /* 64-bit mix (splitmix64 finalizer) so that neighbouring ids spread. */
  guint64 h = key;
  h ^= h >> 30;
  h *= G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  h ^= h >> 27;
  h *= G_GUINT64_CONSTANT (0x94d049bb133111eb);
  h ^= h >> 31;
  return (gsize)h & (map->n_slots - 1);
}

void
slim_merge_map_init (SlimMergeMap *map, gsize n_merges)
{
  gsize n_slots = 16;
  while (n_slots < 2 * n_merges + 1)
    n_slots *= 2;
  map->n_slots = n_slots;
  map->keys = g_new (guint64, n_slots);    /* (n_slots) */
  map->ranks = g_new0 (gint32, n_slots);   /* (n_slots) */
  map->results = g_new0 (gint32, n_slots); /* (n_slots) */
  for (gsize i = 0; i < n_slots; i++)
    map->keys[i] = G_MAXUINT64;
}

void
slim_merge_map_insert (SlimMergeMap *map, gint32 left, gint32 right, gint32 rank, gint32 result)
{
  guint64 key = slim_merge_key (left, right);
  gsize slot = slim_merge_slot (map, key);
  while (map->keys[slot] != G_MAXUINT64)
    {
      if (map->keys[slot] == key)
        return;
      slot = (slot + 1) & (map->n_slots - 1);
    }
  map->keys[slot] = key;
  map->ranks[slot] = rank;
  map->results[slot] = result;
}

static gboolean
slim_merge_map_lookup (
    const SlimMergeMap *map, gint32 left, gint32 right, gint32 *out_rank, gint32 *out_result)
{
  if (map->n_slots == 0 || left < 0 || right < 0)
    return FALSE;
  guint64 key = slim_merge_key (left, right);
  gsize slot = slim_merge_slot (map, key);
  while (map->keys[slot] != G_MAXUINT64)
    {
      if (map->keys[slot] == key)
        {
          *out_rank = map->ranks[slot];
          *out_result = map->results[slot];
          return TRUE;
        }
      slot = (slot + 1) & (map->n_slots - 1);
    }
  return FALSE;
}

/* ---------------------------------------------------------------------- */
/* Merging                                                                  */

typedef struct
{
  gint32 priority;
  gint32 id_left;
  gint32 id_right;
  gint32 result;
  gint64 left;
  gint64 right;
} SlimPairEntry;

static gboolean
slim_pair_before (const SlimPairEntry *a, const SlimPairEntry *b)
{
  return a->priority < b->priority || (a->priority == b->priority && a->left < b->left);
}

static void
slim_heap_push (GArray *heap, const SlimPairEntry *entry)
{
  g_array_append_val (heap, *entry);
  SlimPairEntry *items = (SlimPairEntry *)(gpointer)heap->data;
  gsize i = heap->len - 1;
  while (i > 0)
    {
      gsize parent = (i - 1) / 2;
      if (!slim_pair_before (&items[i], &items[parent]))
        break;
      SlimPairEntry tmp = items[i];
      items[i] = items[parent];
      items[parent] = tmp;
      i = parent;
    }
}

static SlimPairEntry
slim_heap_pop (GArray *heap)
{
  SlimPairEntry *items = (SlimPairEntry *)(gpointer)heap->data;
  SlimPairEntry top = items[0];
  items[0] = items[heap->len - 1];
  g_array_set_size (heap, heap->len - 1);
  gsize n = heap->len;
  gsize i = 0;
  for (;;)
    {
      gsize l = 2 * i + 1, r = l + 1, best = i;
      if (l < n && slim_pair_before (&items[l], &items[best]))
        best = l;
      if (r < n && slim_pair_before (&items[r], &items[best]))
        best = r;
      if (best == i)
        break;
      SlimPairEntry tmp = items[i];
      items[i] = items[best];
      items[best] = tmp;
      i = best;
    }
  return top;
}

static void
slim_tokenizer_maybe_push (
    SlimTokenizer *self, GArray *heap, const SlimSymbol *symbols, gint64 left, gint64 right)
{
  if (left < 0 || right < 0)
    return;
  SlimPairEntry entry = { .left = left, .right = right };
  entry.id_left = symbols[left].id;
  entry.id_right = symbols[right].id;
  if (!slim_merge_map_lookup (&self->merges, entry.id_left, entry.id_right, &entry.priority,
                              &entry.result))
    return;
  slim_heap_push (heap, &entry);
}

/* Emits the ids of one symbol: its token, or its bytes (byte fallback),
 * or the unknown token (consecutive unknowns fused). */
static void
slim_tokenizer_emit_symbol (SlimTokenizer *self,
                            const char *word,
                            const SlimSymbol *symbol,
                            gboolean *last_was_unk,
                            GArray *ids)
{
  if (symbol->id >= 0)
    {
      g_array_append_val (ids, symbol->id);
      *last_was_unk = FALSE;
      return;
    }
  if (self->byte_fallback)
    {
      gboolean all_known = TRUE;
      for (guint32 i = 0; i < symbol->n_bytes; i++)
        all_known = all_known && self->byte_ids[(guint8)word[symbol->start_bytes + i]] >= 0;
      if (all_known)
        {
          for (guint32 i = 0; i < symbol->n_bytes; i++)
            g_array_append_val (ids, self->byte_ids[(guint8)word[symbol->start_bytes + i]]);
          *last_was_unk = FALSE;
          return;
        }
    }
  if (self->unk_id >= 0 && !*last_was_unk)
    g_array_append_val (ids, self->unk_id);
  *last_was_unk = self->unk_id >= 0;
}

void
slim_tokenizer_bpe_merge (SlimTokenizer *self, const char *word, GArray *symbols_array, GArray *ids)
{
  SlimSymbol *symbols = (SlimSymbol *)(gpointer)symbols_array->data; /* (n_symbols) */
  gint64 n_symbols = symbols_array->len;
  g_autoptr (GArray) heap = g_array_new (FALSE, FALSE, sizeof (SlimPairEntry));
  for (gint64 i = 0; i + 1 < n_symbols; i++)
    slim_tokenizer_maybe_push (self, heap, symbols, i, i + 1);

  while (heap->len > 0)
    {
      SlimPairEntry top = slim_heap_pop (heap);
      SlimSymbol *left = &symbols[top.left];
      SlimSymbol *right = &symbols[top.right];
      /* Stale entries: a side was merged away or changed since the push. */
      if (left->n_bytes == 0 || right->n_bytes == 0 || left->next != top.right
          || left->id != top.id_left || right->id != top.id_right)
        continue;
      left->id = top.result;
      left->n_bytes += right->n_bytes;
      left->next = right->next;
      if (right->next >= 0)
        symbols[right->next].prev = top.left;
      right->n_bytes = 0;
      slim_tokenizer_maybe_push (self, heap, symbols, left->prev, top.left);
      slim_tokenizer_maybe_push (self, heap, symbols, top.left, left->next);
    }

  gboolean last_was_unk = FALSE;
  for (gint64 i = 0; i >= 0 && i < n_symbols; i = symbols[i].next)
    slim_tokenizer_emit_symbol (self, word, &symbols[i], &last_was_unk, ids);
}
