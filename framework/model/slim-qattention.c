/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qattention.c: the deployed quantization record of one attention
 * module and its attachment to a SlimLayer (see slim-qattention.h).
 *
 * Deployed forward (msModelSlim ir/attention.py FakeQuantDynamicCache and
 * ir/activation_static.py FakeQuantActivationPerHead), on slimflow's
 * (n_tokens, heads * head_dim) layout, which is msModelSlim's
 * (B, S, H, D) -> (B*S, H*D) view of the cache:
 *   kv cache   x^[t, c] = (clamp (round (x / s[c] + o[c]), -128, 127) - o[c]) * s[c]
 *   fa3 int8   x^[t, h*D + d] = clamp (round (x / s[h]), -128, 127) * s[h]
 *   fa3 fp8    x^[t, h*D + d] = e4m3 (clamp (x / s[h], +-448)) * s[h]  (slim-fp8.h)
 *   dynamic    the same with s from each (token, head) row of D values:
 *              int8 max |x| / 127, fp8 max |x| / 448 (FakeQuantActivationPerToken)
 * The records of a layer are qdata on the SlimLayer, as slim-qlinear.c
 * keeps its own.
 */
#include "slim-qattention.h"

#include <math.h>
#include <string.h>
#include "slim-channel-quant.h"
#include "slim-error.h"
#include "slim-fp8.h"

G_DEFINE_BOXED_TYPE (SlimQAttention, slim_qattention, slim_qattention_copy, slim_qattention_free)

/**
 * slim_qattention_new:
 * @attn: the attention's module name ("model.layers.0.self_attn")
 * @n_heads: query heads
 * @n_kv_heads: key/value heads
 * @head_dim: features per head
 *
 * Returns: (transfer full): a record with nothing enabled
 */
SlimQAttention *
slim_qattention_new (const char *attn, gint64 n_heads, gint64 n_kv_heads, gint64 head_dim)
{
  SlimQAttention *self;

  g_return_val_if_fail (attn != NULL, NULL);

  self = g_new0 (SlimQAttention, 1);
  self->attn = g_strdup (attn);
  self->n_heads = n_heads;
  self->n_kv_heads = n_kv_heads;
  self->head_dim = head_dim;
  return self;
}

static SlimTensor *
ref_or_null (SlimTensor *t)
{
  return t != NULL ? slim_tensor_ref (t) : NULL;
}

SlimQAttention *
slim_qattention_copy (const SlimQAttention *self)
{
  SlimQAttention *copy;

  g_return_val_if_fail (self != NULL, NULL);

  copy = g_new0 (SlimQAttention, 1);
  *copy = *self;
  copy->attn = g_strdup (self->attn);
  copy->k_scale = ref_or_null (self->k_scale);
  copy->k_offset = ref_or_null (self->k_offset);
  copy->v_scale = ref_or_null (self->v_scale);
  copy->v_offset = ref_or_null (self->v_offset);
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    copy->fa[b].scale = ref_or_null (self->fa[b].scale);
  return copy;
}

void
slim_qattention_free (SlimQAttention *self)
{
  if (self == NULL)
    return;
  g_free (self->attn);
  g_clear_pointer (&self->k_scale, slim_tensor_unref);
  g_clear_pointer (&self->k_offset, slim_tensor_unref);
  g_clear_pointer (&self->v_scale, slim_tensor_unref);
  g_clear_pointer (&self->v_offset, slim_tensor_unref);
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    g_clear_pointer (&self->fa[b].scale, slim_tensor_unref);
  g_free (self);
}

const char *
slim_qattention_branch_name (SlimQAttentionBranch branch)
{
  static const char *const names[] = { "fa_q", "fa_k", "fa_v" };

  g_return_val_if_fail (branch < SLIM_QATTENTION_N_BRANCHES, NULL);
  return names[branch];
}

static gboolean
check_vector (const SlimQAttention *self,
              SlimTensor *t,
              const char *what,
              gint64 n,
              gboolean is_scale,
              GError **error)
{
  const float *d;

  if (t == NULL || slim_tensor_get_dtype (t) != SLIM_DTYPE_F32
      || slim_tensor_get_n_elements (t) != n)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: %s must hold %" G_GINT64_FORMAT " float32 values", self->attn, what, n);
      return FALSE;
    }
  d = slim_tensor_get_data (t);
  for (gint64 i = 0; i < n; i++)
    if (!isfinite (d[i]) || (is_scale && !(d[i] > 0.0f)))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "%s: %s[%" G_GINT64_FORMAT "] = %g is not a usable %s", self->attn, what, i,
                     (double)d[i], is_scale ? "scale (positive, finite)" : "offset (finite)");
        return FALSE;
      }
  return TRUE;
}

/**
 * slim_qattention_check:
 * @self: a record
 * @error: return location for a #GError
 *
 * Returns: %TRUE when every enabled part has tensors of the right size
 *   with usable values.
 */
gboolean
slim_qattention_check (const SlimQAttention *self, GError **error)
{
  gint64 kv_dim;

  g_return_val_if_fail (self != NULL, FALSE);

  if (self->n_heads <= 0 || self->n_kv_heads <= 0 || self->head_dim <= 0)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: heads / kv heads / head_dim must be positive", self->attn);
      return FALSE;
    }
  kv_dim = self->n_kv_heads * self->head_dim;
  if (self->kv_cache
      && (!check_vector (self, self->k_scale, "k kv_cache_scale", kv_dim, TRUE, error)
          || !check_vector (self, self->k_offset, "k kv_cache_offset", kv_dim, FALSE, error)
          || !check_vector (self, self->v_scale, "v kv_cache_scale", kv_dim, TRUE, error)
          || !check_vector (self, self->v_offset, "v kv_cache_offset", kv_dim, FALSE, error)))
    return FALSE;
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    {
      gint64 heads = b == SLIM_QATTENTION_Q ? self->n_heads : self->n_kv_heads;
      g_autofree char *what = NULL;

      if (!self->fa[b].enabled)
        continue;
      what = g_strdup_printf ("%s scale", slim_qattention_branch_name (b));
      if ((self->fa[b].scheme.dtype != SLIM_QDTYPE_INT8
           && self->fa[b].scheme.dtype != SLIM_QDTYPE_FP8_E4M3)
          || (self->fa[b].scheme.scope != SLIM_QSCOPE_PER_HEAD
              && self->fa[b].scheme.scope != SLIM_QSCOPE_PER_TOKEN))
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s: %s: only int8 / fp8_e4m3 per_head or per_token is implemented",
                       self->attn, slim_qattention_branch_name (b));
          return FALSE;
        }
      if (self->fa[b].scheme.scope == SLIM_QSCOPE_PER_HEAD
          && !check_vector (self, self->fa[b].scale, what, heads, TRUE, error))
        return FALSE;
    }
  return TRUE;
}

/* Fake-quantizes x (n_tokens, n_heads * head_dim) as the branch says. */
static void
apply_branch (
    const SlimQAttentionFa *fa, float *x, gint64 n_tokens, gint64 n_heads, gint64 head_dim)
{
  SlimQParamsConfig cfg = { .bits = 8, .symmetric = TRUE, .max_bound = 0 };
  g_autofree float *scale = NULL;  /* (n_heads * head_dim) */
  g_autofree float *offset = NULL; /* (n_heads * head_dim) zeros */
  const float *s;                  /* (n_heads) */

  if (fa->scheme.scope == SLIM_QSCOPE_PER_TOKEN)
    {
      /* rows of head_dim values, one per (token, head) */
      if (fa->scheme.dtype == SLIM_QDTYPE_FP8_E4M3)
        slim_fp8_fake_quantize_rows_dynamic (x, n_tokens * n_heads, head_dim, x);
      else
        slim_fake_quantize_rows_dynamic (&cfg, x, n_tokens * n_heads, head_dim, x);
      return;
    }
  scale = g_new (float, n_heads *head_dim);
  offset = g_new0 (float, n_heads *head_dim);
  s = slim_tensor_get_data (fa->scale);
  for (gint64 h = 0; h < n_heads; h++)
    for (gint64 d = 0; d < head_dim; d++)
      scale[h * head_dim + d] = s[h];
  if (fa->scheme.dtype == SLIM_QDTYPE_FP8_E4M3)
    slim_fp8_fake_quantize_cols (x, n_tokens, n_heads * head_dim, scale, x);
  else
    slim_fake_quantize_cols (&cfg, x, n_tokens, n_heads * head_dim, scale, offset, x);
}

/**
 * slim_qattention_apply:
 * @self: a checked record
 * @q: (inout): (n_tokens, n_heads * head_dim)
 * @k: (inout): (n_tokens, n_kv_heads * head_dim)
 * @v: (inout): (n_tokens, n_kv_heads * head_dim)
 * @n_tokens: rows
 * @config: the model's shape
 * @error: return location for a #GError
 *
 * Returns: %FALSE when @config's heads differ from the record's.
 */
gboolean
slim_qattention_apply (const SlimQAttention *self,
                       float *q,
                       float *k,
                       float *v,
                       gint64 n_tokens,
                       const SlimModelConfig *config,
                       GError **error)
{
  gint64 kv_dim;

  g_return_val_if_fail (self != NULL && config != NULL, FALSE);

  if (config->n_heads != self->n_heads || config->n_kv_heads != self->n_kv_heads
      || config->head_dim != self->head_dim)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: the deployed attention record is for %" G_GINT64_FORMAT
                   " heads / %" G_GINT64_FORMAT " kv heads / head_dim %" G_GINT64_FORMAT
                   ", the model has %" G_GINT64_FORMAT " / %" G_GINT64_FORMAT
                   " / %" G_GINT64_FORMAT,
                   self->attn, self->n_heads, self->n_kv_heads, self->head_dim, config->n_heads,
                   config->n_kv_heads, config->head_dim);
      return FALSE;
    }
  if (n_tokens == 0)
    return TRUE;
  kv_dim = self->n_kv_heads * self->head_dim;
  if (self->kv_cache)
    {
      SlimQParamsConfig cfg = { .bits = 8, .symmetric = self->kv_scheme.symmetric };

      slim_fake_quantize_cols (&cfg, k, n_tokens, kv_dim, slim_tensor_get_data (self->k_scale),
                               slim_tensor_get_data (self->k_offset), k);
      slim_fake_quantize_cols (&cfg, v, n_tokens, kv_dim, slim_tensor_get_data (self->v_scale),
                               slim_tensor_get_data (self->v_offset), v);
    }
  if (self->fa[SLIM_QATTENTION_Q].enabled)
    apply_branch (&self->fa[SLIM_QATTENTION_Q], q, n_tokens, self->n_heads, self->head_dim);
  if (self->fa[SLIM_QATTENTION_K].enabled)
    apply_branch (&self->fa[SLIM_QATTENTION_K], k, n_tokens, self->n_kv_heads, self->head_dim);
  if (self->fa[SLIM_QATTENTION_V].enabled)
    apply_branch (&self->fa[SLIM_QATTENTION_V], v, n_tokens, self->n_kv_heads, self->head_dim);
  return TRUE;
}

/* ---- records attached to a layer ------------------------------------- */

typedef struct
{
  GHashTable *by_attn; /* attn (owned by the record) -> SlimQAttention (owned) */
  GPtrArray *order;    /* SlimQAttention (not owned), in the order first set */
} SlimQAttentionSet;

static void
slim_qattention_set_free (SlimQAttentionSet *set)
{
  g_ptr_array_unref (set->order);
  g_hash_table_unref (set->by_attn);
  g_free (set);
}

static GQuark
slim_qattention_set_quark (void)
{
  return g_quark_from_static_string ("slim-qattention-set");
}

static SlimQAttentionSet *
slim_qattention_set_get (SlimLayer *layer, gboolean create)
{
  SlimQAttentionSet *set = g_object_get_qdata (G_OBJECT (layer), slim_qattention_set_quark ());

  if (set == NULL && create)
    {
      set = g_new0 (SlimQAttentionSet, 1);
      set->by_attn = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify)slim_qattention_free);
      set->order = g_ptr_array_new ();
      g_object_set_qdata_full (G_OBJECT (layer), slim_qattention_set_quark (), set,
                               (GDestroyNotify)slim_qattention_set_free);
    }
  return set;
}

void
slim_layer_set_qattention (SlimLayer *layer, SlimQAttention *record)
{
  SlimQAttentionSet *set;
  SlimQAttention *old;

  g_return_if_fail (SLIM_IS_LAYER (layer));
  g_return_if_fail (record != NULL && record->attn != NULL);

  set = slim_qattention_set_get (layer, TRUE);
  old = g_hash_table_lookup (set->by_attn, record->attn);
  if (old != NULL)
    {
      guint index = 0;

      g_ptr_array_find (set->order, old, &index);
      set->order->pdata[index] = record;
      g_hash_table_remove (set->by_attn, old->attn);
    }
  else
    g_ptr_array_add (set->order, record);
  g_hash_table_insert (set->by_attn, record->attn, record);
}

const SlimQAttention *
slim_layer_get_qattention (SlimLayer *layer, const char *attn)
{
  SlimQAttentionSet *set;

  g_return_val_if_fail (SLIM_IS_LAYER (layer), NULL);
  g_return_val_if_fail (attn != NULL, NULL);

  set = slim_qattention_set_get (layer, FALSE);
  return set != NULL ? g_hash_table_lookup (set->by_attn, attn) : NULL;
}

GPtrArray *
slim_layer_list_qattentions (SlimLayer *layer)
{
  SlimQAttentionSet *set;
  GPtrArray *list;

  g_return_val_if_fail (SLIM_IS_LAYER (layer), NULL);

  set = slim_qattention_set_get (layer, FALSE);
  list = g_ptr_array_new ();
  if (set != NULL)
    for (guint i = 0; i < set->order->len; i++)
      g_ptr_array_add (list, g_ptr_array_index (set->order, i));
  return list;
}

gboolean
slim_qattention_deployed_qkv_states (const char *attn,
                                     float *q,
                                     float *k,
                                     float *v,
                                     gint64 n_tokens,
                                     const SlimModelConfig *config,
                                     gpointer user_data,
                                     GError **error)
{
  const SlimQAttention *record = slim_layer_get_qattention (SLIM_LAYER (user_data), attn);

  if (record == NULL)
    return TRUE;
  return slim_qattention_apply (record, q, k, v, n_tokens, config, error);
}
