/* SPDX-License-Identifier: Apache-2.0
 *
 * flex-kept.c: calibration inputs kept for one layer (see flex-kept.h).
 */
#include "flex-kept.h"

#include <string.h>

/* One kept input: resident, or in the store. */
typedef struct
{
  SlimTensor *resident; /* [n_tokens, n_in] or NULL when spilled */
  char *key;            /* spill key when spilled */
} SlimFlexChunk;

/* The kept inputs of one module. */
typedef struct
{
  gint64 n_in;
  GPtrArray *chunks; /* (SlimFlexChunk*) */
} SlimFlexModuleInputs;

struct _SlimFlexKept
{
  SlimProcessor *owner; /* (unowned): the processor holding this */
  char *prefix;
  GHashTable *modules;    /* module -> SlimFlexModuleInputs* */
  guint64 resident_bytes; /* of this store's chunks held in RAM */
  /* (g_rc_box) of the chunks held in RAM by every store sharing the
   * owner's budget (slim_flex_kept_new_sharing) */
  guint64 *owner_resident;
  guint n_spilled; /* keys handed out since the last clear */
};

static void
slim_flex_chunk_free (SlimFlexChunk *chunk)
{
  g_clear_pointer (&chunk->resident, slim_tensor_unref);
  g_free (chunk->key);
  g_free (chunk);
}

static void
slim_flex_module_inputs_free (SlimFlexModuleInputs *inputs)
{
  g_ptr_array_unref (inputs->chunks);
  g_free (inputs);
}

SlimFlexKept *
slim_flex_kept_new (SlimProcessor *owner, const char *prefix)
{
  SlimFlexKept *kept = g_new0 (SlimFlexKept, 1);

  kept->owner = owner;
  kept->prefix = g_strdup (prefix);
  kept->modules = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)slim_flex_module_inputs_free);
  kept->owner_resident = g_rc_box_new0 (guint64);
  return kept;
}

SlimFlexKept *
slim_flex_kept_new_sharing (SlimFlexKept *sibling, const char *prefix)
{
  SlimFlexKept *kept = slim_flex_kept_new (sibling->owner, prefix);

  g_rc_box_release (kept->owner_resident);
  kept->owner_resident = g_rc_box_acquire (sibling->owner_resident);
  return kept;
}

void
slim_flex_kept_free (SlimFlexKept *kept)
{
  if (kept == NULL)
    return;
  slim_flex_kept_clear (kept, NULL);
  g_hash_table_unref (kept->modules);
  g_rc_box_release (kept->owner_resident);
  g_free (kept->prefix);
  g_free (kept);
}

gboolean
slim_flex_kept_add (SlimFlexKept *kept,
                    const char *module,
                    const float *x,
                    gint64 n_tokens,
                    gint64 n_in,
                    GError **error)
{
  SlimFlexModuleInputs *inputs = g_hash_table_lookup (kept->modules, module);
  const guint64 bytes = (guint64)n_tokens * (guint64)n_in * sizeof (float);
  const guint64 budget = slim_processor_get_keep_budget (kept->owner);
  g_autoptr (SlimTensor) copy = NULL;
  SlimFlexChunk *chunk;

  if (n_tokens <= 0)
    return TRUE;
  if (inputs == NULL)
    {
      inputs = g_new0 (SlimFlexModuleInputs, 1);
      inputs->n_in = n_in;
      inputs->chunks = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_flex_chunk_free);
      g_hash_table_insert (kept->modules, g_strdup (module), inputs);
    }
  else if (inputs->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: the input of %s has %" G_GINT64_FORMAT
                   " channels, earlier %" G_GINT64_FORMAT,
                   kept->prefix, module, n_in, inputs->n_in);
      return FALSE;
    }
  copy = slim_tensor_new_2d (module, SLIM_DTYPE_F32, n_tokens, n_in);
  memcpy (slim_tensor_get_data_mut (copy), x, (gsize)bytes);
  chunk = g_new0 (SlimFlexChunk, 1);
  if (*kept->owner_resident + bytes <= budget)
    {
      chunk->resident = g_steal_pointer (&copy);
      kept->resident_bytes += bytes;
      *kept->owner_resident += bytes;
    }
  else
    {
      SlimSpill *spill = slim_processor_get_keep_spill (kept->owner);

      if (spill == NULL)
        {
          g_free (chunk);
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                       "%s: the kept inputs of this layer exceed the memory budget and there is "
                       "no spill store",
                       kept->prefix);
          return FALSE;
        }
      chunk->key = g_strdup_printf ("%s/%u", kept->prefix, kept->n_spilled++);
      if (!slim_spill_put (spill, chunk->key, copy, error))
        {
          slim_flex_chunk_free (chunk);
          g_prefix_error (error, "%s: keeping the input of %s: ", kept->prefix, module);
          return FALSE;
        }
    }
  g_ptr_array_add (inputs->chunks, chunk);
  return TRUE;
}

guint
slim_flex_kept_get_n_chunks (SlimFlexKept *kept, const char *module, gint64 *out_n_in)
{
  SlimFlexModuleInputs *inputs = g_hash_table_lookup (kept->modules, module);

  if (out_n_in != NULL)
    *out_n_in = inputs != NULL ? inputs->n_in : 0;
  return inputs != NULL ? inputs->chunks->len : 0;
}

SlimTensor *
slim_flex_kept_get (SlimFlexKept *kept, const char *module, guint i, GError **error)
{
  SlimFlexModuleInputs *inputs = g_hash_table_lookup (kept->modules, module);
  SlimFlexChunk *chunk;
  SlimTensor *t;

  g_return_val_if_fail (inputs != NULL && i < inputs->chunks->len, NULL);
  chunk = g_ptr_array_index (inputs->chunks, i);
  if (chunk->resident != NULL)
    return slim_tensor_ref (chunk->resident);
  t = slim_spill_get (slim_processor_get_keep_spill (kept->owner), chunk->key, error);
  if (t == NULL)
    g_prefix_error (error, "%s: reading a kept input of %s back: ", kept->prefix, module);
  return t;
}

gboolean
slim_flex_kept_clear (SlimFlexKept *kept, GError **error)
{
  SlimSpill *spill = slim_processor_get_keep_spill (kept->owner);
  GHashTableIter iter;
  gpointer value;
  gboolean ok = TRUE;

  g_hash_table_iter_init (&iter, kept->modules);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      SlimFlexModuleInputs *inputs = value;
      for (guint i = 0; i < inputs->chunks->len; i++)
        {
          SlimFlexChunk *chunk = g_ptr_array_index (inputs->chunks, i);
          if (chunk->key != NULL && spill != NULL && ok)
            ok = slim_spill_remove (spill, chunk->key, error);
        }
    }
  g_hash_table_remove_all (kept->modules);
  *kept->owner_resident -= kept->resident_bytes;
  kept->resident_bytes = 0;
  kept->n_spilled = 0;
  return ok;
}
