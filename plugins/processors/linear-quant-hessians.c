/* SPDX-License-Identifier: Apache-2.0
 *
 * linear-quant-hessians.c: GPTQ Hessians shared between linears reading
 * the same input (see linear-quant-hessians.h).
 */
#include "linear-quant-hessians.h"

#include <string.h>

#include "slim-phase-timer.h"

/* One accumulator and the linears that read its input. */
typedef struct
{
  gconstpointer owner;
  char *parent; /* module name up to its last '.' */
  gint64 n_in;
  SlimGptqHessian hessian;
  GArray *calls;      /* guint64: hash of each accumulated call's input, by call index */
  GPtrArray *members; /* const char * (owned by the entries) */
  gboolean factored;
  SlimGptqFactor factor;
  double percdamp;
  gboolean act_order;
} SlimHessianShare;

/* One linear. */
typedef struct
{
  char *module;
  gconstpointer owner;
  SlimHessianShare *share; /* NULL before its first non-empty call */
  guint64 n_calls;         /* non-empty calls so far */
} SlimHessianEntry;

struct _SlimHessianPool
{
  gboolean share;
  GHashTable *entries; /* module -> SlimHessianEntry (owned) */
  GPtrArray *shares;   /* SlimHessianShare (owned) */
  guint64 n_add_batch;
  guint n_factorisations;
};

static void
slim_hessian_share_free (SlimHessianShare *share)
{
  slim_gptq_hessian_clear (&share->hessian);
  if (share->factored)
    slim_gptq_factor_clear (&share->factor);
  g_array_unref (share->calls);
  g_ptr_array_unref (share->members);
  g_free (share->parent);
  g_free (share);
}

static void
slim_hessian_entry_free (SlimHessianEntry *entry)
{
  g_free (entry->module);
  g_free (entry);
}

SlimHessianPool *
slim_hessian_pool_new (gboolean share)
{
  SlimHessianPool *self = g_new0 (SlimHessianPool, 1);

  self->share = share;
  self->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify)slim_hessian_entry_free);
  self->shares = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_hessian_share_free);
  return self;
}

void
slim_hessian_pool_free (SlimHessianPool *self)
{
  if (self == NULL)
    return;
  g_hash_table_unref (self->entries);
  g_ptr_array_unref (self->shares);
  g_free (self);
}

/* A 64-bit hash of the bytes of x and its shape (word-wise multiply-mix;
 * equal inputs give equal hashes, a collision needs ~2^32 distinct
 * inputs). */
static guint64
slim_hessian_input_hash (const float *x, gint64 n_rows, gint64 n_in)
{
  const guint64 k = 0x9e3779b97f4a7c15ull;
  gsize n_bytes = (gsize)n_rows * (gsize)n_in * sizeof (float);
  const guint8 *bytes = (const guint8 *)x;
  guint64 h = 0xcbf29ce484222325ull ^ ((guint64)n_rows * k) ^ ((guint64)n_in << 32);
  gsize i = 0;

  for (; i + 8 <= n_bytes; i += 8)
    {
      guint64 w;

      memcpy (&w, bytes + i, 8);
      h = (h ^ w) * k;
      h ^= h >> 29;
    }
  for (; i < n_bytes; i++)
    h = (h ^ bytes[i]) * 0x100000001b3ull;
  h ^= h >> 31;
  return h * k;
}

static char *
slim_hessian_parent_name (const char *module)
{
  const char *dot = strrchr (module, '.');

  return dot != NULL ? g_strndup (module, (gsize)(dot - module)) : g_strdup ("");
}

static char *
slim_hessian_share_members (const SlimHessianShare *share)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < share->members->len; i++)
    g_string_append_printf (text, "%s%s", i > 0 ? ", " : "",
                            (const char *)g_ptr_array_index (share->members, i));
  return g_string_free (text, FALSE);
}

/* The share a first call with input hash @hash joins, or NULL. */
static SlimHessianShare *
slim_hessian_pool_find_share (
    SlimHessianPool *self, gconstpointer owner, const char *parent, gint64 n_in, guint64 hash)
{
  if (!self->share)
    return NULL;
  for (guint i = 0; i < self->shares->len; i++)
    {
      SlimHessianShare *share = g_ptr_array_index (self->shares, i);

      if (share->owner == owner && share->n_in == n_in && share->calls->len > 0
          && strcmp (share->parent, parent) == 0
          && g_array_index (share->calls, guint64, 0) == hash)
        return share;
    }
  return NULL;
}

gboolean
slim_hessian_pool_add (SlimHessianPool *self,
                       gconstpointer owner,
                       const char *module,
                       const float *x, /* (n_rows, n_in) row-major */
                       gint64 n_rows,
                       gint64 n_in,
                       GError **error)
{
  SlimHessianEntry *entry;
  SlimHessianShare *share;
  guint64 hash;

  g_return_val_if_fail (self != NULL && module != NULL, FALSE);

  if (n_rows == 0)
    return TRUE;
  entry = g_hash_table_lookup (self->entries, module);
  if (entry == NULL)
    {
      entry = g_new0 (SlimHessianEntry, 1);
      entry->module = g_strdup (module);
      entry->owner = owner;
      g_hash_table_insert (self->entries, entry->module, entry);
    }
  hash = slim_hessian_input_hash (x, n_rows, n_in);
  share = entry->share;
  if (share == NULL)
    {
      g_autofree char *parent = slim_hessian_parent_name (module);

      share = slim_hessian_pool_find_share (self, owner, parent, n_in, hash);
      if (share == NULL)
        {
          share = g_new0 (SlimHessianShare, 1);
          share->owner = owner;
          share->parent = g_steal_pointer (&parent);
          share->n_in = n_in;
          share->calls = g_array_new (FALSE, FALSE, sizeof (guint64));
          share->members = g_ptr_array_new ();
          if (!slim_gptq_hessian_init (&share->hessian, n_in, error))
            {
              g_prefix_error (error, "%s: ", module);
              slim_hessian_share_free (share);
              return FALSE;
            }
          g_ptr_array_add (self->shares, share);
        }
      g_ptr_array_add (share->members, entry->module);
      entry->share = share;
    }
  if (share->factored)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: calibration call after its GPTQ Hessian was factorised", module);
      return FALSE;
    }
  if (share->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: GPTQ input has %" G_GINT64_FORMAT
                   " features, earlier calls %" G_GINT64_FORMAT,
                   module, n_in, share->n_in);
      return FALSE;
    }
  if (entry->n_calls < share->calls->len)
    {
      /* another member accumulated this call: the input must be the same */
      if (g_array_index (share->calls, guint64, entry->n_calls) != hash)
        {
          g_autofree char *members = slim_hessian_share_members (share);

          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                       "%s: calibration call %" G_GUINT64_FORMAT
                       " reads another input than the linears sharing its GPTQ Hessian (%s) "
                       "although their first calls read the same; set ext.share_hessian: false",
                       module, entry->n_calls + 1, members);
          return FALSE;
        }
    }
  else
    {
      SlimPhaseTiming timing = slim_phase_timer_begin ("hessian add_batch");
      gboolean added = slim_gptq_hessian_add_batch (&share->hessian, x, n_rows, error);

      slim_phase_timer_end (timing);
      if (!added)
        {
          g_prefix_error (error, "%s: ", module);
          return FALSE;
        }
      g_array_append_val (share->calls, hash);
      self->n_add_batch++;
    }
  entry->n_calls++;
  return TRUE;
}

const SlimGptqFactor *
slim_hessian_pool_get_factor (
    SlimHessianPool *self, const char *module, double percdamp, gboolean act_order, GError **error)
{
  SlimHessianEntry *entry;
  SlimHessianShare *share;

  g_return_val_if_fail (self != NULL && module != NULL, NULL);

  entry = g_hash_table_lookup (self->entries, module);
  if (entry == NULL || entry->share == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: gptq: no calibration data reached this linear (no calibration row, so "
                   "no Hessian)",
                   module);
      return NULL;
    }
  share = entry->share;
  if (share->factored)
    {
      if (share->percdamp != percdamp || !share->act_order != !act_order)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "%s: gptq settings differ from the linears sharing its Hessian", module);
          return NULL;
        }
      return &share->factor;
    }
  self->n_factorisations++;
  if (!slim_gptq_factor_init (&share->factor, &share->hessian, percdamp, act_order, error))
    {
      g_autofree char *members = slim_hessian_share_members (share);

      g_prefix_error (error, "%s: ", members);
      return NULL;
    }
  share->factored = TRUE;
  /* the factor is all the members need: the accumulator goes now */
  slim_gptq_hessian_clear (&share->hessian);
  share->percdamp = percdamp;
  share->act_order = act_order;
  return &share->factor;
}

void
slim_hessian_pool_release (SlimHessianPool *self,
                           gconstpointer owner,
                           SlimHessianPoolStats *out_stats)
{
  SlimHessianPoolStats stats = { 0 };
  GHashTableIter iter;
  SlimHessianEntry *entry;

  g_return_if_fail (self != NULL);

  g_hash_table_iter_init (&iter, self->entries);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *)&entry))
    if (entry->owner == owner)
      {
        if (entry->share != NULL)
          stats.n_linears++;
        g_hash_table_iter_remove (&iter);
      }
  for (guint i = 0; i < self->shares->len;)
    {
      SlimHessianShare *share = g_ptr_array_index (self->shares, i);

      if (share->owner != owner)
        {
          i++;
          continue;
        }
      stats.n_shares++;
      stats.n_add_batch += share->calls->len;
      stats.n_factorisations += share->factored ? 1 : 0;
      g_ptr_array_remove_index (self->shares, i);
    }
  if (out_stats != NULL)
    *out_stats = stats;
}

GVariant *
slim_hessian_pool_export (SlimHessianPool *self, gconstpointer owner, GError **error)
{
  g_autoptr (GVariantBuilder) builder = NULL;

  g_return_val_if_fail (self != NULL, NULL);

  builder = g_variant_builder_new (G_VARIANT_TYPE (SLIM_HESSIAN_POOL_STATE_TYPE));
  for (guint i = 0; i < self->shares->len; i++)
    {
      SlimHessianShare *share = g_ptr_array_index (self->shares, i);
      GVariantBuilder members;

      if (share->owner != owner)
        continue;
      if (share->factored)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                       "%s: the GPTQ Hessian is already factorised: nothing to hand on",
                       share->parent);
          return NULL;
        }
      g_variant_builder_init (&members, G_VARIANT_TYPE ("a(st)"));
      for (guint m = 0; m < share->members->len; m++)
        {
          const char *module = g_ptr_array_index (share->members, m);
          SlimHessianEntry *entry = g_hash_table_lookup (self->entries, module);

          g_variant_builder_add (&members, "(st)", module, entry->n_calls);
        }
      g_variant_builder_add (
          builder, "(sxx@ay@ata(st))", share->parent, share->n_in, share->hessian.n_samples,
          g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, share->hessian.data,
                                     (gsize)(share->n_in * share->n_in) * sizeof (float), 1),
          g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, share->calls->data, share->calls->len,
                                     sizeof (guint64)),
          &members);
    }
  return g_variant_ref_sink (g_variant_builder_end (builder));
}

static gboolean
slim_hessian_pool_bad_state (GError **error, const char *what)
{
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "GPTQ Hessians from another rank: %s", what);
  return FALSE;
}

gboolean
slim_hessian_pool_import (SlimHessianPool *self,
                          gconstpointer owner,
                          GVariant *state,
                          GError **error)
{
  gsize n_shares;

  g_return_val_if_fail (self != NULL && state != NULL, FALSE);

  if (!g_variant_is_of_type (state, G_VARIANT_TYPE (SLIM_HESSIAN_POOL_STATE_TYPE)))
    return slim_hessian_pool_bad_state (error, "not a Hessian list");
  slim_hessian_pool_release (self, owner, NULL);
  n_shares = g_variant_n_children (state);
  for (gsize i = 0; i < n_shares; i++)
    {
      g_autoptr (GVariant) data = NULL;
      g_autoptr (GVariant) calls = NULL;
      g_autoptr (GVariantIter) members = NULL;
      const char *parent = NULL, *module = NULL;
      gint64 n_in = 0, n_samples = 0;
      guint64 n_calls = 0;
      SlimHessianShare *share;
      gsize n_bytes = 0, n_hashes = 0;
      const void *bytes;
      const guint64 *hashes;

      g_variant_get_child (state, i, "(&sxx@ay@ata(st))", &parent, &n_in, &n_samples, &data, &calls,
                           &members);
      bytes = g_variant_get_fixed_array (data, &n_bytes, 1);
      hashes = g_variant_get_fixed_array (calls, &n_hashes, sizeof (guint64));
      if (n_in < 1 || n_in > SLIM_LINALG_MAX_DIM || n_samples < 0
          || n_bytes != (gsize)(n_in * n_in) * sizeof (float))
        return slim_hessian_pool_bad_state (error, "a Hessian of the wrong size");
      share = g_new0 (SlimHessianShare, 1);
      share->owner = owner;
      share->parent = g_strdup (parent);
      share->n_in = n_in;
      share->calls = g_array_new (FALSE, FALSE, sizeof (guint64));
      share->members = g_ptr_array_new ();
      if (!slim_gptq_hessian_init (&share->hessian, n_in, error))
        {
          slim_hessian_share_free (share);
          return FALSE;
        }
      g_ptr_array_add (self->shares, share);
      memcpy (share->hessian.data, bytes, n_bytes);
      share->hessian.n_samples = n_samples;
      g_array_append_vals (share->calls, hashes, (guint)n_hashes);
      while (g_variant_iter_next (members, "(&st)", &module, &n_calls))
        {
          SlimHessianEntry *entry;

          if (n_calls > n_hashes || g_hash_table_contains (self->entries, module))
            return slim_hessian_pool_bad_state (error, "a member with more calls than its share");
          entry = g_new0 (SlimHessianEntry, 1);
          entry->module = g_strdup (module);
          entry->owner = owner;
          entry->share = share;
          entry->n_calls = n_calls;
          g_hash_table_insert (self->entries, entry->module, entry);
          g_ptr_array_add (share->members, entry->module);
        }
    }
  return TRUE;
}

gconstpointer
slim_hessian_pool_get_share (SlimHessianPool *self, const char *module)
{
  SlimHessianEntry *entry;

  g_return_val_if_fail (self != NULL && module != NULL, NULL);
  entry = g_hash_table_lookup (self->entries, module);
  return entry != NULL ? entry->share : NULL;
}
