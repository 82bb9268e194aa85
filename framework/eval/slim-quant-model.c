/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-quant-model.c: an ascendv1 folder made runnable (see
 * slim-quant-model.h).
 */
#include "slim-quant-model.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include "slim-ascend-writer.h"
#include "slim-error.h"
#include "slim-mx.h"
#include "slim-mx-dual-scale.h"
#include "slim-online-rotation.h"
#include "slim-nf4.h"
#include "slim-int-linear.h"
#include "slim-pack.h"
#include "slim-qattention.h"
#include "slim-qlinear.h"
#include "slim-safetensors.h"

/* Bound on the description file (untrusted input). */
#define SLIM_QUANT_MODEL_MAX_DESCRIPTION_BYTES (64u << 20)

struct _SlimQuantModel
{
  char *float_dir;     /* temporary folder, removed by free */
  GHashTable *records; /* module -> SlimQLinear* (act scheme and input scale/offset) */
  /* attn -> SlimQAttention* (C8 / FAQuant); the head shape is taken from
   * the model at the first forward (head_dim 0 until then) */
  GHashTable *attentions;
  SlimLinearMath math;
  /* module -> SlimIntLinear*: the linears with int8 activations when math
   * is not FLOAT (their forward is the integer product) */
  GHashTable *int_linears;
  /* module -> SlimQuantRotation*: QuaRot's online rotations of the
   * linears metadata.quarot lists, applied to their input first */
  GHashTable *rotations;
};

typedef struct
{
  SlimTensor *heads;  /* (n_heads, n_heads) or NULL */
  SlimTensor *kron_m; /* (dm, dm) or NULL */
  SlimTensor *kron_n; /* (dn, dn) */
  SlimTensor *had_k;  /* (k, k) +-1 base of the full Hadamard rotation, or NULL */
} SlimQuantRotation;

static void
slim_quant_rotation_free (SlimQuantRotation *r)
{
  g_clear_pointer (&r->heads, slim_tensor_unref);
  g_clear_pointer (&r->kron_m, slim_tensor_unref);
  g_clear_pointer (&r->kron_n, slim_tensor_unref);
  g_clear_pointer (&r->had_k, slim_tensor_unref);
  g_free (r);
}

/* config.json's quantization_config when it is compressed-tensors' (the
 * parser owns it), else NULL. */
static JsonObject *
ct_quantization_config (const char *dir, JsonParser *parser)
{
  g_autofree char *path = g_build_filename (dir, "config.json", NULL);
  JsonObject *config, *qc;
  JsonNode *node;

  if (!json_parser_load_from_file (parser, path, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return NULL;
  config = json_node_get_object (json_parser_get_root (parser));
  node = json_object_get_member (config, "quantization_config");
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  qc = json_node_get_object (node);
  node = json_object_get_member (qc, "quant_method");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING
      || strcmp (json_node_get_string (node), "compressed-tensors") != 0)
    return NULL;
  return qc;
}

gboolean
slim_quant_model_is_quantized (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, SLIM_ASCEND_DESCRIPTION_NAME, NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();

  return g_file_test (path, G_FILE_TEST_IS_REGULAR) || ct_quantization_config (dir, parser) != NULL;
}

static void
remove_tree (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d != NULL)
    while ((name = g_dir_read_name (d)) != NULL)
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
          remove_tree (path);
        else
          g_unlink (path);
      }
  g_rmdir (dir);
}

void
slim_quant_model_free (SlimQuantModel *self)
{
  if (self == NULL)
    return;
  if (self->float_dir != NULL)
    remove_tree (self->float_dir);
  g_free (self->float_dir);
  g_clear_pointer (&self->records, g_hash_table_unref);
  g_clear_pointer (&self->attentions, g_hash_table_unref);
  g_clear_pointer (&self->int_linears, g_hash_table_unref);
  g_clear_pointer (&self->rotations, g_hash_table_unref);
  g_free (self);
}

const char *
slim_quant_model_get_float_dir (SlimQuantModel *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->float_dir;
}

guint
slim_quant_model_get_n_quantized (SlimQuantModel *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return g_hash_table_size (self->records);
}

guint
slim_quant_model_get_n_integer (SlimQuantModel *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return g_hash_table_size (self->int_linears);
}

SlimLinearMath
slim_quant_model_get_linear_math (SlimQuantModel *self)
{
  g_return_val_if_fail (self != NULL, SLIM_LINEAR_MATH_FLOAT);
  return self->math;
}

static gboolean
hook_linear_input (
    const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **error)
{
  SlimQuantModel *self = user_data;
  const SlimQLinear *record = g_hash_table_lookup (self->records, module);
  const SlimQuantRotation *rot = g_hash_table_lookup (self->rotations, module);

  /* the online rotation comes first, as deployed (quarot online: true) */
  if (rot != NULL && rot->heads != NULL)
    {
      gint64 nh = slim_tensor_get_dim (rot->heads, 0);

      if (n_in % nh != 0)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                       "%s: the heads rotation is %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                       ", which does not divide the %" G_GINT64_FORMAT " inputs",
                       module, nh, nh, n_in);
          return FALSE;
        }
      slim_online_rotation_heads (slim_tensor_get_data (rot->heads), nh, n_in / nh, x, n_tokens);
    }
  if (rot != NULL && rot->kron_m != NULL)
    {
      gint64 dm = slim_tensor_get_dim (rot->kron_m, 0), dn = slim_tensor_get_dim (rot->kron_n, 0);

      if (dm * dn != n_in)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                       "%s: the Kronecker rotation is %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                       ", the linear has %" G_GINT64_FORMAT " inputs",
                       module, dm, dn, n_in);
          return FALSE;
        }
      slim_online_rotation_kronecker (slim_tensor_get_data (rot->kron_m), dm,
                                      slim_tensor_get_data (rot->kron_n), dn, x, n_tokens);
    }
  if (rot != NULL && rot->had_k != NULL
      && !slim_online_rotation_hadamard (slim_tensor_get_data (rot->had_k),
                                         slim_tensor_get_dim (rot->had_k, 0), x, n_tokens, n_in,
                                         error))
    {
      g_prefix_error (error, "%s: ", module);
      return FALSE;
    }
  /* an integer linear quantizes its input itself (hook_linear_forward) */
  if (record != NULL && !g_hash_table_contains (self->int_linears, module))
    slim_qlinear_apply_act (record, x, n_tokens, n_in);
  return TRUE;
}

/* The integer product of a linear with int8 activations. */
static gboolean
hook_linear_forward (const char *module,
                     const float *x, /* (n_tokens, n_in) */
                     gint64 n_tokens,
                     gint64 n_in,
                     gint64 n_out,
                     float *y, /* (n_tokens, n_out) */
                     gboolean *done,
                     gpointer user_data,
                     GError **error)
{
  SlimQuantModel *self = user_data;
  const SlimIntLinear *lin = g_hash_table_lookup (self->int_linears, module);

  if (lin == NULL)
    return TRUE;
  if (slim_int_linear_get_n_in (lin) != n_in || slim_int_linear_get_n_out (lin) != n_out)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "%s: the saved integer weight is (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   "), the forward needs (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                   module, slim_int_linear_get_n_out (lin), slim_int_linear_get_n_in (lin), n_out,
                   n_in);
      return FALSE;
    }
  if (self->math == SLIM_LINEAR_MATH_INT8_REF)
    slim_int_linear_forward_ref (lin, x, n_tokens, y);
  else
    slim_int_linear_forward (lin, x, n_tokens, y);
  *done = TRUE;
  return TRUE;
}

/* The saved KV-cache / FA3 quantization of the attention, as deployed. */
static gboolean
hook_qkv_states (const char *attn,
                 float *q,
                 float *k,
                 float *v,
                 gint64 n_tokens,
                 const SlimModelConfig *config,
                 gpointer user_data,
                 GError **error)
{
  SlimQuantModel *self = user_data;
  SlimQAttention *record = g_hash_table_lookup (self->attentions, attn);

  if (record == NULL)
    return TRUE;
  if (record->head_dim == 0)
    {
      /* first use: the saved vectors must fit the model's heads */
      record->n_heads = config->n_heads;
      record->n_kv_heads = config->n_kv_heads;
      record->head_dim = config->head_dim;
      if (!slim_qattention_check (record, error))
        {
          record->head_dim = 0;
          return FALSE;
        }
    }
  return slim_qattention_apply (record, q, k, v, n_tokens, config, error);
}

void
slim_quant_model_get_hooks (SlimQuantModel *self, SlimForwardHooks *hooks)
{
  g_return_if_fail (self != NULL && hooks != NULL);
  memset (hooks, 0, sizeof (*hooks));
  hooks->linear_input = hook_linear_input;
  if (g_hash_table_size (self->int_linears) > 0)
    hooks->linear_forward = hook_linear_forward;
  if (g_hash_table_size (self->attentions) > 0)
    hooks->qkv_states = hook_qkv_states;
  hooks->user_data = self;
}

/* The record of attn in self->attentions, created when missing. */
static SlimQAttention *
attention_record (SlimQuantModel *self, const char *attn)
{
  SlimQAttention *record = g_hash_table_lookup (self->attentions, attn);

  if (record == NULL)
    {
      record = slim_qattention_new (attn, 0, 0, 0);
      g_hash_table_insert (self->attentions, record->attn, record);
    }
  return record;
}

/* A C8 or FAQuant tensor "<attn>.<part>.<what>": the attention's module
 * name and the part ("k_proj", "fa_q", ...), or FALSE when the name does
 * not have that form. */
static gboolean
split_attention_name (const char *name, char **out_attn, char **out_part, const char **out_what)
{
  const char *last = strrchr (name, '.');
  const char *part;

  if (last == NULL || last == name)
    return FALSE;
  for (part = last - 1; part > name && *part != '.'; part--)
    ;
  if (part == name)
    return FALSE;
  *out_attn = g_strndup (name, (gsize)(part - name));
  *out_part = g_strndup (part + 1, (gsize)(last - part - 1));
  *out_what = last + 1;
  return TRUE;
}

/* One C8 / FAQuant tensor of the description into its attention record. */
static gboolean
load_attention_tensor (
    SlimQuantModel *self, SlimSafetensors *st, const char *name, const char *label, GError **error)
{
  g_autofree char *attn = NULL, *part = NULL;
  const char *what = NULL;
  g_autoptr (SlimTensor) raw = NULL;
  SlimTensor *values;
  SlimQAttention *record;
  SlimTensor **slot = NULL;

  if (!split_attention_name (name, &attn, &part, &what))
    goto bad_name;
  raw = slim_safetensors_get_tensor (st, name, error);
  if (raw == NULL)
    return FALSE;
  record = attention_record (self, attn);
  if (strcmp (label, "C8") == 0)
    {
      gboolean k = strcmp (part, "k_proj") == 0, v = strcmp (part, "v_proj") == 0;

      if ((!k && !v)
          || (strcmp (what, "kv_cache_scale") != 0 && strcmp (what, "kv_cache_offset") != 0))
        goto bad_name;
      slot = strcmp (what, "kv_cache_scale") == 0 ? (k ? &record->k_scale : &record->v_scale)
                                                  : (k ? &record->k_offset : &record->v_offset);
      record->kv_cache = TRUE;
      record->kv_scheme = (SlimQScheme){ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, FALSE };
    }
  else
    {
      guint b;

      for (b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
        if (strcmp (part, slim_qattention_branch_name (b)) == 0)
          break;
      if (b == SLIM_QATTENTION_N_BRANCHES
          || (strcmp (what, "scale") != 0 && strcmp (what, "offset") != 0))
        goto bad_name;
      if (strcmp (what, "offset") == 0)
        {
          /* the static branch's dtype: int8 zeros for INT8, float32 for FP8
           * (checked against <attn>.quant_type later) */
          return TRUE;
        }
      slot = &record->fa[b].scale;
      record->fa[b].enabled = TRUE;
      record->fa[b].scheme.scope = SLIM_QSCOPE_PER_HEAD;
      record->fa[b].scheme.symmetric = TRUE;
    }
  if (*slot != NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: given twice", name);
      return FALSE;
    }
  values = slim_tensor_to_f32 (raw, error); /* (n) whatever the saved shape */
  if (values == NULL)
    return FALSE;
  *slot = values;
  return TRUE;

bad_name:
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "%s: a %s tensor must be named <attn>.{k_proj,v_proj}.kv_cache_{scale,offset} "
               "(C8) or <attn>.fa_{q,k,v}.{scale,offset} (FAQuant)",
               name, label);
  return FALSE;
}

/* Reads msModelSlim's per-attention FA3 string ("INT8", "FP8_DYNAMIC",
 * "Q_FP8_DYNAMIC_KV_INT8": parts [ACTS_]DTYPE[_DYNAMIC], ACTS omitted for
 * Q, K and V) into the record's branches: a dynamic branch is enabled per
 * token, a static one must have its scale. */
static gboolean
apply_fa_quant_type (SlimQAttention *r, const char *text, GError **error)
{
  g_auto (GStrv) tok = g_strsplit (text, "_", -1);
  gboolean seen[SLIM_QATTENTION_N_BRANCHES] = { FALSE };
  guint i = 0, n = g_strv_length (tok);

  while (i < n)
    {
      const char *acts = "QKV";
      SlimQDtype dtype;
      gboolean dynamic = FALSE;

      if (strspn (tok[i], "QKVP") == strlen (tok[i]) && i + 1 < n)
        acts = tok[i++];
      if (strcmp (tok[i], "INT8") == 0)
        dtype = SLIM_QDTYPE_INT8;
      else if (strcmp (tok[i], "FP8") == 0)
        dtype = SLIM_QDTYPE_FP8_E4M3;
      else
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "\"%s\": FA3 type %s cannot be evaluated (INT8, FP8, with _DYNAMIC, can)",
                       text, tok[i]);
          return FALSE;
        }
      i++;
      if (i < n && strcmp (tok[i], "DYNAMIC") == 0)
        {
          dynamic = TRUE;
          i++;
        }
      for (const char *a = acts; *a != '\0'; a++)
        {
          guint b = *a == 'Q'   ? SLIM_QATTENTION_Q
                    : *a == 'K' ? SLIM_QATTENTION_K
                    : *a == 'V' ? SLIM_QATTENTION_V
                                : SLIM_QATTENTION_N_BRANCHES;
          SlimQAttentionFa *fa;

          if (b == SLIM_QATTENTION_N_BRANCHES || seen[b])
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                           "\"%s\": branch %c is unknown or given twice", text, *a);
              return FALSE;
            }
          seen[b] = TRUE;
          fa = &r->fa[b];
          if (dynamic != (fa->scale == NULL))
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                           "\"%s\": %s is %s but %s", text, slim_qattention_branch_name (b),
                           dynamic ? "dynamic" : "static",
                           dynamic ? "a scale is saved" : "no scale is saved");
              return FALSE;
            }
          fa->enabled = TRUE;
          fa->scheme = (SlimQScheme){ dtype, dynamic ? SLIM_QSCOPE_PER_TOKEN : SLIM_QSCOPE_PER_HEAD,
                                      TRUE };
        }
    }
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    if (r->fa[b].enabled && !seen[b])
      {
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                     "\"%s\" does not name %s, which has saved scales", text,
                     slim_qattention_branch_name (b));
        return FALSE;
      }
  return TRUE;
}

/* Every record loaded complete: C8 with its four vectors, FA3 as its
 * quant_type string says. */
static gboolean
check_attention_records (SlimQuantModel *self, JsonObject *desc, GError **error)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->attentions);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      SlimQAttention *r = value;
      g_autofree char *key = g_strconcat (r->attn, ".quant_type", NULL);
      JsonNode *node = json_object_get_member (desc, key);
      gboolean any_fa = FALSE;

      if (r->kv_cache
          && (r->k_scale == NULL || r->k_offset == NULL || r->v_scale == NULL
              || r->v_offset == NULL))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: the C8 KV cache needs k_proj and v_proj kv_cache_scale and "
                       "kv_cache_offset",
                       r->attn);
          return FALSE;
        }
      for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
        any_fa = any_fa || r->fa[b].enabled;
      if (node == NULL && !any_fa)
        continue;
      if (node == NULL || json_node_get_value_type (node) != G_TYPE_STRING)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: FAQuant tensors need the string %s", r->attn, key);
          return FALSE;
        }
      if (!apply_fa_quant_type (r, json_node_get_string (node), error))
        {
          g_prefix_error (error, "%s: ", key);
          return FALSE;
        }
    }
  return TRUE;
}

/* A float32 tensor <module>.<suffix>, checked to hold n_elements values. */
static SlimTensor *
get_f32 (
    SlimSafetensors *st, const char *module, const char *suffix, gint64 n_elements, GError **error)
{
  g_autofree char *name = g_strconcat (module, ".", suffix, NULL);
  SlimTensor *t = slim_safetensors_get_tensor_f32 (st, name, error);

  if (t == NULL)
    return NULL;
  if (n_elements >= 0 && slim_tensor_get_n_elements (t) != n_elements)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: %" G_GINT64_FORMAT " values, expected %" G_GINT64_FORMAT, name,
                   slim_tensor_get_n_elements (t), n_elements);
      slim_tensor_unref (t);
      return NULL;
    }
  return t;
}

/* deq_scale as float32: stored either as f32 or as the float32 bit
 * pattern widened to int64. */
static gboolean
read_deq_scale (SlimSafetensors *st, const char *module, gint64 n_out, float *out, GError **error)
{
  g_autofree char *name = g_strconcat (module, ".deq_scale", NULL);
  g_autoptr (SlimTensor) t = slim_safetensors_get_tensor (st, name, error);

  if (t == NULL)
    return FALSE;
  if (slim_tensor_get_n_elements (t) != n_out)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: expected %" G_GINT64_FORMAT " values", name, n_out);
      return FALSE;
    }
  if (slim_tensor_get_dtype (t) == SLIM_DTYPE_I64)
    {
      const gint64 *v = slim_tensor_get_data (t);
      for (gint64 o = 0; o < n_out; o++)
        {
          guint32 bits = (guint32)(guint64)v[o];
          memcpy (&out[o], &bits, sizeof (float));
        }
    }
  else
    {
      g_autoptr (SlimTensor) f = slim_tensor_to_f32 (t, error);
      if (f == NULL)
        return FALSE;
      memcpy (out, slim_tensor_get_data (f), (gsize)n_out * sizeof (float));
    }
  for (gint64 o = 0; o < n_out; o++)
    if (!isfinite (out[o]) || !(out[o] > 0.0f))
      {
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                     "%s[%" G_GINT64_FORMAT "] = %g is not a positive finite scale", name, o,
                     (double)out[o]);
        return FALSE;
      }
  return TRUE;
}

/* The integer codes of a weight read as float32, checked to be integers
 * in [-128, 127] (transfer full, (n) int8). */
static gint8 *
codes_of (const float *q, gint64 n, const char *name, GError **error)
{
  g_autofree gint8 *codes = g_new (gint8, MAX (n, 1)); /* (n) */

  for (gint64 i = 0; i < n; i++)
    {
      if (!(q[i] >= -128.0f && q[i] <= 127.0f) || q[i] != floorf (q[i]))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s[%" G_GINT64_FORMAT "] = %g is not an int8 code", name, i, (double)q[i]);
          return NULL;
        }
      codes[i] = (gint8)q[i];
    }
  return g_steal_pointer (&codes);
}

/* <module>.quant_bias: int32 (n_out). */
static SlimTensor *
get_quant_bias (SlimSafetensors *st, const char *module, gint64 n_out, GError **error)
{
  g_autofree char *name = g_strconcat (module, ".quant_bias", NULL);
  g_autoptr (SlimTensor) t = slim_safetensors_get_tensor (st, name, error);

  if (t == NULL)
    return NULL;
  if (slim_tensor_get_dtype (t) != SLIM_DTYPE_I32 || slim_tensor_get_n_elements (t) != n_out)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: expected int32 of %" G_GINT64_FORMAT " values", name, n_out);
      return NULL;
    }
  return g_steal_pointer (&t);
}

/* <module>.bias as float32 (n_out), NULL without error when absent. */
static gboolean
get_optional_bias (
    SlimSafetensors *st, const char *module, gint64 n_out, SlimTensor **out, GError **error)
{
  g_autofree char *name = g_strconcat (module, ".bias", NULL);

  *out = NULL;
  if (!slim_safetensors_contains (st, name))
    return TRUE;
  *out = get_f32 (st, module, "bias", n_out, error);
  return *out != NULL;
}

/* The per-token integer linear of codes (n_out, n_in) with weight_scale /
 * weight_offset (n_out, n_cols) and the saved bias. */
static SlimIntLinear *
int_linear_per_token (SlimSafetensors *st,
                      const char *module,
                      const gint8 *codes, /* (n_out, n_in) */
                      gint64 n_out,
                      gint64 n_in,
                      const float *ws, /* (n_out, n_cols) */
                      const float *wo, /* (n_out, n_cols) */
                      gint64 n_cols,
                      GError **error)
{
  g_autoptr (SlimTensor) bias = NULL;
  SlimIntLinear *lin;

  if (!get_optional_bias (st, module, n_out, &bias, error))
    return NULL;
  lin = slim_int_linear_new_per_token (codes, n_out, n_in, ws, wo, n_cols == 1 ? 0 : n_in / n_cols,
                                       bias != NULL ? slim_tensor_get_data (bias) : NULL, error);
  if (lin == NULL)
    g_prefix_error (error, "%s: ", module);
  return lin;
}

/* W4A8_DYNAMIC: the weight is int4 packed over pairs of output rows,
 * (n_out / 2, n_in) int8 (slim-pack.h); weight_scale / weight_offset one
 * per output row; per-token int8 activations.  scale_bias is derived from
 * the same codes (a deployment-side correction term) and not needed for
 * the float forward. */
static SlimTensor *
dequantize_w4a8 (SlimSafetensors *st,
                 const char *module,
                 SlimQLinear *record,
                 SlimIntLinear **out_int,
                 GError **error)
{
  g_autofree char *wname = g_strconcat (module, ".weight", NULL);
  g_autoptr (SlimTensor) packed = slim_safetensors_get_tensor (st, wname, error);
  g_autoptr (SlimTensor) ws = NULL, wo = NULL;
  g_autofree gint8 *codes = NULL; /* (n_out, n_in) */
  gint64 n_out, n_in;
  const float *sd, *od;
  SlimTensor *w;
  float *wd;

  if (packed == NULL)
    return NULL;
  if (slim_tensor_get_dtype (packed) != SLIM_DTYPE_I8 || slim_tensor_get_n_dims (packed) != 2)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: W4A8_DYNAMIC expects a 2-D int8 packed weight", wname);
      return NULL;
    }
  n_out = 2 * slim_tensor_get_dim (packed, 0);
  n_in = slim_tensor_get_dim (packed, 1);
  ws = get_f32 (st, module, "weight_scale", n_out, error);
  wo = ws != NULL ? get_f32 (st, module, "weight_offset", n_out, error) : NULL;
  if (wo == NULL)
    return NULL;
  codes = g_try_malloc ((gsize)n_out * (gsize)MAX (n_in, 1));
  if (codes == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "%s: out of memory unpacking the int4 weight", wname);
      return NULL;
    }
  slim_unpack_w4a8_int4 (slim_tensor_get_data (packed), n_out, n_in, codes);
  w = slim_tensor_new_2d (wname, SLIM_DTYPE_F32, n_out, n_in); /* (n_out, n_in) row-major */
  wd = slim_tensor_get_data_mut (w);
  sd = slim_tensor_get_data (ws); /* (n_out) */
  od = slim_tensor_get_data (wo); /* (n_out) */
  for (gint64 o = 0; o < n_out; o++)
    for (gint64 i = 0; i < n_in; i++)
      wd[o * n_in + i] = ((float)codes[o * n_in + i] - od[o]) * sd[o];
  record->act = (SlimQScheme){ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, TRUE };
  if (out_int != NULL)
    {
      *out_int = int_linear_per_token (st, module, codes, n_out, n_in, sd, od, 1, error);
      if (*out_int == NULL)
        g_clear_pointer (&w, slim_tensor_unref);
    }
  return w;
}

/* W4A4_MXFP4_DUALSCALE: the MXFP4 tensors plus weight_dual_scale f32
 * (n_out, n_dual, 1); w = element * 2^(scale - 127) * dual scale.  The
 * folder does not hold the dual block size D (msModelSlim saves none): it
 * is n_in when n_dual is 1 (any D >= n_in gives the same blocks) and
 * n_in / n_dual when that is a whole multiple of 32; otherwise the folder
 * is refused.  The activation uses the same D (msModelSlim's docs require
 * the act and weight quantizers to share it).  Takes w (transfer full). */
static SlimTensor *
dequantize_mx_dual (SlimSafetensors *st,
                    const char *module,
                    SlimQLinear *record,
                    SlimTensor *elements,     /* (n_out, n_in) f32 */
                    const gint16 *shared_exp, /* [n_out, ceil (n_in / 32)] */
                    SlimTensor *w_in,         /* (n_out, n_in) f32, filled here */
                    GError **error)
{
  g_autoptr (SlimTensor) w = w_in;
  g_autofree char *dname = g_strconcat (module, ".weight_dual_scale", NULL);
  g_autoptr (SlimTensor) ds = slim_safetensors_get_tensor (st, dname, error);
  gint64 n_out = slim_tensor_get_dim (w, 0), n_in = slim_tensor_get_dim (w, 1), n_dual, d;

  if (ds == NULL)
    return NULL;
  if (slim_tensor_get_dtype (ds) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (ds) != 3
      || slim_tensor_get_dim (ds, 0) != n_out || slim_tensor_get_dim (ds, 2) != 1
      || slim_tensor_get_dim (ds, 1) <= 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: W4A4_MXFP4_DUALSCALE expects float32 (%" G_GINT64_FORMAT ", n_dual, 1)",
                   dname, n_out);
      return NULL;
    }
  n_dual = slim_tensor_get_dim (ds, 1);
  d = n_dual == 1 ? n_in : n_in / n_dual;
  if (n_dual > 1 && (n_in % n_dual != 0 || d % SLIM_MX_BLOCK_SIZE != 0))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: %" G_GINT64_FORMAT " dual scales per row of %" G_GINT64_FORMAT
                   " inputs: the dual block size cannot be recovered (it must divide the row "
                   "into whole multiples of 32)",
                   dname, n_dual, n_in);
      return NULL;
    }
  if (!slim_tensor_is_finite (ds))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s has NaN or infinite values", dname);
      return NULL;
    }
  slim_mx_dual_dequantize_rows (slim_tensor_get_data (elements), shared_exp,
                                slim_tensor_get_data (ds), n_out, n_in, d,
                                slim_tensor_get_data_mut (w));
  record->act = (SlimQScheme){ SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_DUAL_SCALE, TRUE };
  record->weight = (SlimQScheme){ SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_DUAL_SCALE, TRUE };
  record->group_size = SLIM_MX_BLOCK_SIZE;
  record->dual_block_size = d;
  record->act_dual_block_size = d;
  return g_steal_pointer (&w);
}

/* MX per_block (W8A8_MXFP8, W4A8_MXFP, W4A4_MXFP4): weight float8_e4m3fn
 * (n_out, n_in) or packed E2M1 codes uint8 (n_out, n_in / 2), weight_scale
 * uint8 (n_out, ceil (n_in / 32)) = shared exponent + 127; w = element *
 * 2^(scale - 127).  Activations: dynamic MX blocks (mxfp4 for W4A4_MXFP4,
 * mxfp8 otherwise). */
static SlimTensor *
dequantize_mx (
    SlimSafetensors *st, const char *module, const char *label, SlimQLinear *record, GError **error)
{
  g_autofree char *wname = g_strconcat (module, ".weight", NULL);
  g_autofree char *sname = g_strconcat (module, ".weight_scale", NULL);
  gboolean fp4_weight = strcmp (label, "W8A8_MXFP8") != 0;
  g_autoptr (SlimTensor) q = slim_safetensors_get_tensor (st, wname, error);
  g_autoptr (SlimTensor) scale = NULL;
  g_autoptr (SlimTensor) elements = NULL;
  g_autofree gint16 *shared_exp = NULL; /* [n_out, n_blocks] */
  gint64 n_out, n_in, n_blocks;
  const guint8 *sd;
  SlimTensor *w;

  if (q == NULL)
    return NULL;
  if (slim_tensor_get_n_dims (q) != 2
      || slim_tensor_get_dtype (q) != (fp4_weight ? SLIM_DTYPE_U8 : SLIM_DTYPE_F8_E4M3FN))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: %s expects a 2-D %s weight", wname, label,
                   fp4_weight ? "uint8 (packed E2M1)" : "float8_e4m3fn");
      return NULL;
    }
  n_out = slim_tensor_get_dim (q, 0);
  n_in = slim_tensor_get_dim (q, 1) * (fp4_weight ? 2 : 1);
  n_blocks = slim_mx_n_blocks (n_in);
  scale = slim_safetensors_get_tensor (st, sname, error);
  if (scale == NULL)
    return NULL;
  if (slim_tensor_get_dtype (scale) != SLIM_DTYPE_U8
      || slim_tensor_get_n_elements (scale) != n_out * n_blocks)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: %s expects uint8 (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", sname,
                   label, n_out, n_blocks);
      return NULL;
    }
  elements = slim_tensor_new_2d (wname, SLIM_DTYPE_F32, n_out, n_in); /* [n_out, n_in] */
  slim_dtype_get_info (fp4_weight ? SLIM_DTYPE_F4X2_E2M1 : SLIM_DTYPE_F8_E4M3FN)
      ->to_f32 (slim_tensor_get_data (q), slim_tensor_get_data_mut (elements),
                (gsize)(n_out * n_in));
  shared_exp = g_new (gint16, MAX (n_out * n_blocks, 1));
  sd = slim_tensor_get_data (scale);
  for (gint64 k = 0; k < n_out * n_blocks; k++)
    {
      if (sd[k] == 255)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s[%" G_GINT64_FORMAT "] is 255, E8M0's NaN", sname, k);
          return NULL;
        }
      shared_exp[k] = (gint16)((gint)sd[k] - SLIM_MX_SCALE_BIAS);
    }
  w = slim_tensor_new_2d (wname, SLIM_DTYPE_F32, n_out, n_in); /* [n_out, n_in] */
  if (strcmp (label, "W4A4_MXFP4_DUALSCALE") == 0)
    return dequantize_mx_dual (st, module, record, elements, shared_exp, w, error);
  slim_mx_dequantize_rows (slim_tensor_get_data (elements), shared_exp, n_out, n_in,
                           slim_tensor_get_data_mut (w));
  record->act
      = (SlimQScheme){ strcmp (label, "W4A4_MXFP4") == 0 ? SLIM_QDTYPE_MXFP4 : SLIM_QDTYPE_MXFP8,
                       SLIM_QSCOPE_PER_BLOCK, TRUE };
  record->weight = (SlimQScheme){ fp4_weight ? SLIM_QDTYPE_MXFP4 : SLIM_QDTYPE_MXFP8,
                                  SLIM_QSCOPE_PER_BLOCK, TRUE };
  record->group_size = SLIM_MX_BLOCK_SIZE;
  return w;
}

/* NF4: weight uint8 (n_out, n_in / 2), two codes per byte high nibble
 * first; weight_absmax f32 (n_out, n_groups); w = code[q] * absmax of
 * the element's group (slim-nf4.h), groups of n_in / n_groups. */
static SlimTensor *
dequantize_nf4 (SlimSafetensors *st, const char *module, SlimQLinear *record, GError **error)
{
  g_autofree char *wname = g_strconcat (module, ".weight", NULL);
  g_autoptr (SlimTensor) q = slim_safetensors_get_tensor (st, wname, error);
  g_autoptr (SlimTensor) absmax = NULL;
  g_autofree guint8 *codes = NULL; /* [n_out, n_in] */
  gint64 n_out, n_in, n_groups, gs;
  const float *am;
  float *wd;
  SlimTensor *w;

  if (q == NULL)
    return NULL;
  if (slim_tensor_get_n_dims (q) != 2 || slim_tensor_get_dtype (q) != SLIM_DTYPE_U8)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: NF4 expects a 2-D uint8 weight (two codes per byte)", wname);
      return NULL;
    }
  n_out = slim_tensor_get_dim (q, 0);
  n_in = slim_tensor_get_dim (q, 1) * 2;
  absmax = get_f32 (st, module, "weight_absmax", -1, error);
  if (absmax == NULL)
    return NULL;
  n_groups = slim_tensor_get_n_dims (absmax) == 2 ? slim_tensor_get_dim (absmax, 1) : 0;
  if (n_groups <= 0 || slim_tensor_get_dim (absmax, 0) != n_out || n_in % n_groups != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s.weight_absmax: NF4 expects (%" G_GINT64_FORMAT
                   ", groups dividing %" G_GINT64_FORMAT ")",
                   module, n_out, n_in);
      return NULL;
    }
  gs = n_in / n_groups;
  codes = g_new (guint8, MAX (n_out * n_in, 1));
  slim_nf4_unpack (slim_tensor_get_data (q), n_out * n_in, codes);
  am = slim_tensor_get_data (absmax);
  w = slim_tensor_new_2d (wname, SLIM_DTYPE_F32, n_out, n_in); /* [n_out, n_in] */
  wd = slim_tensor_get_data_mut (w);
  for (gint64 r = 0; r < n_out; r++)
    for (gint64 c = 0; c < n_in; c++)
      wd[r * n_in + c] = slim_nf4_decode (codes[r * n_in + c]) * am[r * n_groups + c / gs];
  record->act = SLIM_QSCHEME_ACT_FLOAT;
  record->weight = (SlimQScheme){ SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, TRUE };
  record->group_size = gs;
  return w;
}

/* The float weight of one quantized linear, and its act record; with
 * out_int, the integer linear of a label with int8 activations too (NULL
 * for the others). */
static SlimTensor *
dequantize_linear (SlimSafetensors *st,
                   const char *module,
                   const char *label,
                   SlimQLinear **out_record,
                   SlimIntLinear **out_int,
                   GError **error)
{
  g_autofree char *wname = g_strconcat (module, ".weight", NULL);
  g_autoptr (SlimTensor) q = NULL;
  g_autoptr (SlimQLinear) record = slim_qlinear_new (module, label);
  SlimTensor *w;
  gint64 n_out, n_in;
  float *wd;
  const float *qd;

  if (strcmp (label, "W4A8_DYNAMIC") == 0 || strcmp (label, "W8A8_MXFP8") == 0
      || strcmp (label, "W4A8_MXFP") == 0 || strcmp (label, "W4A4_MXFP4") == 0
      || strcmp (label, "W4A4_MXFP4_DUALSCALE") == 0 || strcmp (label, "NF4") == 0)
    {
      w = strcmp (label, "W4A8_DYNAMIC") == 0 ? dequantize_w4a8 (st, module, record, out_int, error)
          : strcmp (label, "NF4") == 0        ? dequantize_nf4 (st, module, record, error)
                                              : dequantize_mx (st, module, label, record, error);
      if (w == NULL)
        return NULL;
      n_out = slim_tensor_get_dim (w, 0);
      n_in = slim_tensor_get_dim (w, 1);
      wd = slim_tensor_get_data_mut (w);
      goto check;
    }
  q = slim_safetensors_get_tensor_f32 (st, wname, error);
  if (q == NULL)
    return NULL;
  if (slim_tensor_get_n_dims (q) != 2)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE, "%s: not a matrix", wname);
      return NULL;
    }
  n_out = slim_tensor_get_dim (q, 0);
  n_in = slim_tensor_get_dim (q, 1);
  w = slim_tensor_new_2d (wname, SLIM_DTYPE_F32, n_out, n_in); /* (n_out, n_in) row-major */
  wd = slim_tensor_get_data_mut (w);
  qd = slim_tensor_get_data (q); /* (n_out, n_in) integer values */

  if (strcmp (label, "W8A8") == 0 || strcmp (label, "W8A8_MIX") == 0)
    {
      g_autofree float *deq = g_new (float, MAX (n_out, 1)); /* (n_out) */
      g_autoptr (SlimTensor) is = get_f32 (st, module, "input_scale", 1, error);
      g_autoptr (SlimTensor) io
          = is != NULL ? get_f32 (st, module, "input_offset", 1, error) : NULL;
      float scale, offset;

      if (io == NULL || !read_deq_scale (st, module, n_out, deq, error))
        goto fail;
      scale = ((const float *)slim_tensor_get_data (is))[0];
      offset = ((const float *)slim_tensor_get_data (io))[0];
      if (!isfinite (scale) || !(scale > 0.0f) || !isfinite (offset))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: input_scale %g / input_offset %g are not usable", module, (double)scale,
                       (double)offset);
          goto fail;
        }
      for (gint64 o = 0; o < n_out; o++)
        {
          float ws = deq[o] / scale;
          for (gint64 i = 0; i < n_in; i++)
            wd[o * n_in + i] = qd[o * n_in + i] * ws;
        }
      record->act = (SlimQScheme){ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TENSOR, offset == 0.0f };
      record->input_scale = scale;
      record->input_offset = offset;
      if (out_int != NULL)
        {
          g_autofree gint8 *codes = codes_of (qd, n_out * n_in, wname, error); /* (n_out, n_in) */
          g_autoptr (SlimTensor) qb
              = codes != NULL ? get_quant_bias (st, module, n_out, error) : NULL;

          if (qb == NULL)
            goto fail;
          *out_int = slim_int_linear_new_static (codes, n_out, n_in, scale, offset, deq,
                                                 slim_tensor_get_data (qb), error);
          if (*out_int == NULL)
            {
              g_prefix_error (error, "%s: ", module);
              goto fail;
            }
        }
    }
  else if (strcmp (label, "W8A8_DYNAMIC") == 0 || strcmp (label, "W8A16") == 0
           || strcmp (label, "W4A16") == 0 || strcmp (label, "WFP8AFP8_DYNAMIC") == 0
           || strcmp (label, "W4A4_DYNAMIC") == 0)
    {
      g_autoptr (SlimTensor) ws = get_f32 (st, module, "weight_scale", -1, error);
      g_autoptr (SlimTensor) wo
          = ws != NULL ? get_f32 (st, module, "weight_offset", -1, error) : NULL;
      gint64 n_params, n_cols, group;
      const float *sd, *od;

      if (wo == NULL)
        goto fail;
      n_params = slim_tensor_get_n_elements (ws);
      if (n_params <= 0 || n_params % n_out != 0 || slim_tensor_get_n_elements (wo) != n_params)
        {
          g_set_error (
              error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
              "%s: weight_scale / weight_offset do not match the weight's %" G_GINT64_FORMAT
              " rows",
              module, n_out);
          goto fail;
        }
      n_cols = n_params / n_out; /* 1 per channel, n_in / group_size per group */
      if (n_in % n_cols != 0)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                       "%s: %" G_GINT64_FORMAT " groups do not divide %" G_GINT64_FORMAT " inputs",
                       module, n_cols, n_in);
          goto fail;
        }
      group = n_in / n_cols;
      sd = slim_tensor_get_data (ws); /* (n_out, n_cols) */
      od = slim_tensor_get_data (wo); /* (n_out, n_cols) */
      for (gint64 o = 0; o < n_out; o++)
        for (gint64 i = 0; i < n_in; i++)
          {
            gint64 p = o * n_cols + i / group;
            wd[o * n_in + i] = (qd[o * n_in + i] - od[p]) * sd[p];
          }
      if (strcmp (label, "W8A8_DYNAMIC") == 0)
        {
          record->act = (SlimQScheme){ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, TRUE };
          if (out_int != NULL)
            {
              g_autofree gint8 *codes
                  = codes_of (qd, n_out * n_in, wname, error); /* (n_out, n_in) */

              if (codes == NULL)
                goto fail;
              *out_int
                  = int_linear_per_token (st, module, codes, n_out, n_in, sd, od, n_cols, error);
              if (*out_int == NULL)
                goto fail;
            }
        }
      else if (strcmp (label, "WFP8AFP8_DYNAMIC") == 0)
        {
          /* float8_e4m3fn codes read as their values; fp8 per-token activations */
          record->act = (SlimQScheme){ SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_TOKEN, TRUE };
          record->weight = (SlimQScheme){ SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_CHANNEL, TRUE };
        }
      else if (strcmp (label, "W4A4_DYNAMIC") == 0)
        record->act = (SlimQScheme){ SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_TOKEN, TRUE };
    }
  else
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: label %s cannot be evaluated yet (W8A8, W8A8_MIX, W8A8_DYNAMIC, W8A16, "
                   "W4A16, W4A8_DYNAMIC, W4A4_DYNAMIC, W8A8_MXFP8, W4A8_MXFP, W4A4_MXFP4, "
                   "W4A4_MXFP4_DUALSCALE, NF4, "
                   "WFP8AFP8_DYNAMIC can)",
                   module, label);
      goto fail;
    }
check:
  for (gint64 k = 0; k < n_out * n_in; k++)
    if (!isfinite (wd[k]))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "%s: dequantized weight is not finite", module);
        goto fail;
      }
  record->n_out = n_out;
  record->n_in = n_in;
  *out_record = g_steal_pointer (&record);
  return w;

fail:
  if (out_int != NULL)
    g_clear_pointer (out_int, slim_int_linear_free);
  slim_tensor_unref (w);
  return NULL;
}

static gboolean
copy_side_files (const char *dir, const char *float_dir, GError **error)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, error);
  const char *name;

  if (d == NULL)
    return FALSE;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *src = NULL, *dst = NULL;
      g_autoptr (GFile) from = NULL, to = NULL;

      if (g_str_has_prefix (name, "quant_model_") || name[0] == '.'
          || g_str_has_suffix (name, ".safetensors")
          || strcmp (name, "model.safetensors.index.json") == 0)
        continue;
      src = g_build_filename (dir, name, NULL);
      if (!g_file_test (src, G_FILE_TEST_IS_REGULAR))
        continue;
      dst = g_build_filename (float_dir, name, NULL);
      from = g_file_new_for_path (src);
      to = g_file_new_for_path (dst);
      if (!g_file_copy (from, to, G_FILE_COPY_NONE, NULL, NULL, NULL, error))
        return FALSE;
    }
  return TRUE;
}

/* A string member of o, or NULL. */
static const char *
ct_string (JsonObject *o, const char *key)
{
  JsonNode *n = o != NULL ? json_object_get_member (o, key) : NULL;

  return n != NULL && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
             ? json_node_get_string (n)
             : NULL;
}

static JsonObject *
ct_object (JsonObject *o, const char *key)
{
  JsonNode *n = o != NULL ? json_object_get_member (o, key) : NULL;

  return n != NULL && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : NULL;
}

/* The activation scheme of the folder's config groups: every group must
 * hold fp8 weights per channel ("float", 8 bits, strategy channel) and
 * either no input_activations (weight-only) or dynamic per-token fp8
 * ones; all groups alike. */
static gboolean
ct_fp8_scheme (JsonObject *qc, const char *dir, gboolean *out_fp8_act, GError **error)
{
  JsonObject *groups = ct_object (qc, "config_groups");
  g_autoptr (GList) names = groups != NULL ? json_object_get_members (groups) : NULL;
  int act = -1;

  for (GList *l = names; l != NULL; l = l->next)
    {
      JsonObject *g = ct_object (groups, l->data);
      JsonObject *w = ct_object (g, "weights");
      JsonObject *a = ct_object (g, "input_activations");
      const char *wtype = ct_string (w, "type"), *wstrat = ct_string (w, "strategy");
      gboolean fp8_act;

      if (w == NULL || wtype == NULL || strcmp (wtype, "float") != 0
          || json_object_get_int_member_with_default (w, "num_bits", 0) != 8 || wstrat == NULL
          || strcmp (wstrat, "channel") != 0)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: config_groups.%s: slimflow eval reads compressed-tensors FP8 only "
                       "(weights type float, 8 bits, strategy channel)",
                       dir, (const char *)l->data);
          return FALSE;
        }
      fp8_act = a != NULL;
      if (fp8_act
          && (g_strcmp0 (ct_string (a, "type"), "float") != 0
              || g_strcmp0 (ct_string (a, "strategy"), "token") != 0
              || !json_object_get_boolean_member_with_default (a, "dynamic", FALSE)))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: config_groups.%s: input_activations other than dynamic per-token "
                       "fp8 are not read by slimflow eval",
                       dir, (const char *)l->data);
          return FALSE;
        }
      if (act >= 0 && act != fp8_act)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: config groups mix weight-only and fp8-activation schemes", dir);
          return FALSE;
        }
      act = fp8_act;
    }
  if (act < 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: quantization_config has no config_groups", dir);
      return FALSE;
    }
  *out_fp8_act = act;
  return TRUE;
}

/* One FP8 linear of a compressed-tensors folder: code * weight_scale[row]. */
static SlimTensor *
ct_dequantize_fp8 (SlimSafetensors *st,
                   const char *module,
                   SlimTensor *q, /* (n_out, n_in) F8_E4M3FN */
                   gboolean fp8_act,
                   SlimQLinear **out_record,
                   GError **error)
{
  g_autofree char *wname = g_strconcat (module, ".weight", NULL);
  g_autoptr (SlimTensor) scale = get_f32 (st, module, "weight_scale", -1, error);
  gint64 n_out, n_in;
  const float *sd;
  float *wd;
  SlimTensor *w;
  SlimQLinear *record;

  if (scale == NULL)
    return NULL;
  if (slim_tensor_get_n_dims (q) != 2)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE, "%s: not a 2-D weight",
                   wname);
      return NULL;
    }
  n_out = slim_tensor_get_dim (q, 0);
  n_in = slim_tensor_get_dim (q, 1);
  if (slim_tensor_get_n_elements (scale) != n_out || !slim_tensor_is_finite (scale))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s.weight_scale: expects %" G_GINT64_FORMAT " finite per-channel scales",
                   module, n_out);
      return NULL;
    }
  w = slim_tensor_new_2d (wname, SLIM_DTYPE_F32, n_out, n_in); /* [n_out, n_in] */
  wd = slim_tensor_get_data_mut (w);
  slim_dtype_get_info (SLIM_DTYPE_F8_E4M3FN)
      ->to_f32 (slim_tensor_get_data (q), wd, (gsize)(n_out * n_in));
  sd = slim_tensor_get_data (scale);
  for (gint64 r = 0; r < n_out; r++)
    for (gint64 c = 0; c < n_in; c++)
      wd[r * n_in + c] *= sd[r];
  if (!slim_tensor_is_finite (w))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s has NaN codes or overflows", wname);
      slim_tensor_unref (w);
      return NULL;
    }
  record = slim_qlinear_new (module, fp8_act ? "WFP8AFP8_DYNAMIC" : "WFP8A16");
  record->act = fp8_act ? (SlimQScheme){ SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_TOKEN, TRUE }
                        : SLIM_QSCHEME_ACT_FLOAT;
  record->weight = (SlimQScheme){ SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_CHANNEL, TRUE };
  record->n_out = n_out;
  record->n_in = n_in;
  *out_record = record;
  return w;
}

/* A compressed-tensors FP8 folder into self (records, float folder). */
static gboolean
load_ct (SlimQuantModel *self, const char *dir, JsonObject *qc, GError **error)
{
  g_autoptr (SlimSafetensors) st = NULL;
  g_autoptr (GPtrArray) tensors
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonGenerator) gen = NULL;
  g_autofree char *out_path = NULL, *config_src = NULL, *config_dst = NULL;
  const char *const *names;
  gboolean fp8_act = FALSE;
  JsonObject *config;

  if (!ct_fp8_scheme (qc, dir, &fp8_act, error))
    return FALSE;
  st = slim_safetensors_open (dir, error);
  if (st == NULL)
    return FALSE;
  names = slim_safetensors_get_names (st);
  for (guint i = 0; names[i] != NULL; i++)
    {
      const char *n = names[i];
      SlimTensor *t;

      if (g_str_has_suffix (n, ".weight_scale"))
        continue; /* read with its weight */
      if (g_str_has_suffix (n, ".weight_packed") || g_str_has_suffix (n, ".weight_zero_point")
          || g_str_has_suffix (n, ".input_scale") || g_str_has_suffix (n, ".weight_g_idx"))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: %s: slimflow eval reads compressed-tensors FP8 folders only", dir, n);
          return FALSE;
        }
      t = slim_safetensors_get_tensor (st, n, error);
      if (t == NULL)
        return FALSE;
      if (g_str_has_suffix (n, ".weight") && slim_tensor_get_dtype (t) == SLIM_DTYPE_F8_E4M3FN)
        {
          g_autofree char *module = g_strndup (n, strlen (n) - strlen (".weight"));
          SlimQLinear *record = NULL;
          SlimTensor *w = ct_dequantize_fp8 (st, module, t, fp8_act, &record, error);

          slim_tensor_unref (t);
          if (w == NULL)
            return FALSE;
          g_hash_table_insert (self->records, g_strdup (module), record);
          t = w;
        }
      g_ptr_array_add (tensors, t);
    }
  self->float_dir = g_dir_make_tmp ("slimflow-dequant-XXXXXX", error);
  if (self->float_dir == NULL || !copy_side_files (dir, self->float_dir, error))
    return FALSE;
  /* the float folder's config.json without quantization_config */
  config_src = g_build_filename (dir, "config.json", NULL);
  config_dst = g_build_filename (self->float_dir, "config.json", NULL);
  if (!json_parser_load_from_file (parser, config_src, error))
    return FALSE;
  config = json_node_get_object (json_parser_get_root (parser));
  json_object_remove_member (config, "quantization_config");
  gen = json_generator_new ();
  json_generator_set_root (gen, json_parser_get_root (parser));
  if (!json_generator_to_file (gen, config_dst, error))
    return FALSE;
  out_path = g_build_filename (self->float_dir, "model.safetensors", NULL);
  return slim_safetensors_write_file (out_path, (SlimTensor *const *)tensors->pdata, tensors->len,
                                      NULL, error);
}

/* A square float32 matrix of the weight files (an online rotation). */
static SlimTensor *
get_rotation_matrix (SlimSafetensors *st, const char *name, GError **error)
{
  SlimTensor *t = slim_safetensors_get_tensor (st, name, error);

  if (t == NULL)
    {
      g_prefix_error (error, "metadata.quarot lists it: ");
      return NULL;
    }
  if (slim_tensor_get_n_dims (t) != 2 || slim_tensor_get_dim (t, 0) != slim_tensor_get_dim (t, 1)
      || slim_tensor_get_dim (t, 0) == 0 || !slim_tensor_is_finite (t))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: an online rotation must be a finite square matrix", name);
      slim_tensor_unref (t);
      return NULL;
    }
  if (slim_tensor_get_dtype (t) != SLIM_DTYPE_F32)
    {
      SlimTensor *f = slim_tensor_convert (t, SLIM_DTYPE_F32, error);

      slim_tensor_unref (t);
      return f;
    }
  return t;
}

/* metadata.quarot (msModelSlim's QuarotOnlineRotationInfo.get_quarot_save_info):
 * {max_tp_size, heads_rotation: {layers}, kronecker_rotation: {layers}},
 * and slimflow's hadamard_rotation: {layers} (quarot down_proj_online_kind:
 * hadamard, <down_proj>.hadamard_rotation the base had_k);
 * every listed linear's matrices read into self->rotations, and every
 * online rotation matrix of the files must belong to a listed linear. */
static gboolean
load_online_rotations (SlimQuantModel *self,
                       JsonObject *desc,
                       SlimSafetensors *st,
                       const char *desc_path,
                       GError **error)
{
  const char *const kinds[] = { "heads_rotation", "kronecker_rotation", "hadamard_rotation" };
  const char *const *names = slim_safetensors_get_names (st);
  JsonObject *quarot = NULL;
  guint n_matrices = 0, n_in_files = 0;

  if (json_object_has_member (desc, "metadata")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (desc, "metadata")))
    {
      JsonObject *metadata = json_object_get_object_member (desc, "metadata");

      if (json_object_has_member (metadata, "quarot"))
        {
          if (!JSON_NODE_HOLDS_OBJECT (json_object_get_member (metadata, "quarot")))
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                           "%s: metadata.quarot is not an object", desc_path);
              return FALSE;
            }
          quarot = json_object_get_object_member (metadata, "quarot");
        }
    }
  for (guint k = 0; quarot != NULL && k < G_N_ELEMENTS (kinds); k++)
    {
      JsonNode *node = json_object_get_member (quarot, kinds[k]);
      JsonNode *layers_node = NULL;
      JsonArray *layers;

      if (node == NULL)
        continue;
      if (JSON_NODE_HOLDS_OBJECT (node))
        layers_node = json_object_get_member (json_node_get_object (node), "layers");
      if (layers_node == NULL || !JSON_NODE_HOLDS_ARRAY (layers_node))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: metadata.quarot.%s must be {\"layers\": [...]}", desc_path, kinds[k]);
          return FALSE;
        }
      layers = json_node_get_array (layers_node);
      for (guint i = 0; i < json_array_get_length (layers); i++)
        {
          JsonNode *el = json_array_get_element (layers, i);
          const char *module;
          SlimQuantRotation *rot;

          if (!JSON_NODE_HOLDS_VALUE (el) || json_node_get_value_type (el) != G_TYPE_STRING)
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                           "%s: metadata.quarot.%s.layers[%u] is not a linear's name", desc_path,
                           kinds[k], i);
              return FALSE;
            }
          module = json_node_get_string (el);
          rot = g_hash_table_lookup (self->rotations, module);
          if (rot == NULL)
            {
              rot = g_new0 (SlimQuantRotation, 1);
              g_hash_table_insert (self->rotations, g_strdup (module), rot);
            }
          if (k == 0 && rot->heads == NULL)
            {
              g_autofree char *name = g_strconcat (module, SLIM_ONLINE_ROTATION_HEADS, NULL);

              rot->heads = get_rotation_matrix (st, name, error);
              if (rot->heads == NULL)
                return FALSE;
              n_matrices++;
            }
          else if (k == 1 && rot->kron_m == NULL)
            {
              g_autofree char *m = g_strconcat (module, SLIM_ONLINE_ROTATION_KRON_M, NULL);
              g_autofree char *n = g_strconcat (module, SLIM_ONLINE_ROTATION_KRON_N, NULL);

              rot->kron_m = get_rotation_matrix (st, m, error);
              if (rot->kron_m == NULL)
                return FALSE;
              rot->kron_n = get_rotation_matrix (st, n, error);
              if (rot->kron_n == NULL)
                return FALSE;
              n_matrices += 2;
            }
          else if (k == 2 && rot->had_k == NULL)
            {
              g_autofree char *name = g_strconcat (module, SLIM_ONLINE_ROTATION_HADAMARD, NULL);

              rot->had_k = get_rotation_matrix (st, name, error);
              if (rot->had_k == NULL)
                return FALSE;
              n_matrices++;
            }
        }
    }
  for (guint i = 0; names[i] != NULL; i++)
    n_in_files += slim_online_rotation_is_online_name (names[i]);
  if (n_in_files != n_matrices)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: the weight files hold %u online rotation matrices, metadata.quarot "
                   "lists the linears of %u: the saved model would not run as deployed",
                   desc_path, n_in_files, n_matrices);
      return FALSE;
    }
  return TRUE;
}

SlimQuantModel *
slim_quant_model_load (const char *dir, GError **error)
{
  return slim_quant_model_load_with_math (dir, SLIM_LINEAR_MATH_FLOAT, error);
}

SlimQuantModel *
slim_quant_model_load_with_math (const char *dir, SlimLinearMath math, GError **error)
{
  g_autoptr (SlimQuantModel) self = g_new0 (SlimQuantModel, 1);
  g_autofree char *desc_path = g_build_filename (dir, SLIM_ASCEND_DESCRIPTION_NAME, NULL);
  g_autofree char *desc_text = NULL;
  g_autofree char *out_path = NULL;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (SlimSafetensors) st = NULL;
  g_autoptr (GPtrArray) tensors
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  g_autoptr (GHashTable) labels = g_hash_table_new (g_str_hash, g_str_equal);
  JsonObject *desc;
  gsize n_bytes = 0;
  const char *const *names;

  g_return_val_if_fail (dir != NULL, NULL);

  self->records
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)slim_qlinear_free);
  self->attentions
      = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify)slim_qattention_free);
  self->math = math;
  self->int_linears = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify)slim_int_linear_free);
  self->rotations = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify)slim_quant_rotation_free);
  if (!g_file_test (desc_path, G_FILE_TEST_IS_REGULAR))
    {
      g_autoptr (JsonParser) ct_parser = json_parser_new ();
      JsonObject *qc = ct_quantization_config (dir, ct_parser);

      if (qc != NULL)
        return load_ct (self, dir, qc, error) ? g_steal_pointer (&self) : NULL;
    }
  if (!g_file_get_contents (desc_path, &desc_text, &n_bytes, error))
    return NULL;
  if (n_bytes > SLIM_QUANT_MODEL_MAX_DESCRIPTION_BYTES
      || !json_parser_load_from_data (parser, desc_text, (gssize)n_bytes, NULL)
      || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: not a JSON object",
                   desc_path);
      return NULL;
    }
  desc = json_node_get_object (json_parser_get_root (parser));
  st = slim_safetensors_open (dir, error);
  if (st == NULL)
    return NULL;

  /* labels of the tensor keys (other keys: version, metadata, ...) */
  names = slim_safetensors_get_names (st);
  for (guint i = 0; names[i] != NULL; i++)
    {
      JsonNode *node = json_object_get_member (desc, names[i]);

      /* online rotations have no label (msModelSlim): metadata.quarot */
      if (node == NULL && slim_online_rotation_is_online_name (names[i]))
        continue;
      if (node == NULL || json_node_get_value_type (node) != G_TYPE_STRING)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: tensor %s has no label", desc_path, names[i]);
          return NULL;
        }
      g_hash_table_insert (labels, (gpointer)names[i], (gpointer)json_node_get_string (node));
    }

  for (guint i = 0; names[i] != NULL; i++)
    {
      const char *label = g_hash_table_lookup (labels, names[i]);
      SlimTensor *t;

      /* an online rotation: load_online_rotations (the float folder must not
       * hold it, or the decoder would rotate a second time) */
      if (label == NULL || slim_online_rotation_is_online_name (names[i]))
        continue;
      if (strcmp (label, "FLOAT") == 0)
        t = slim_safetensors_get_tensor (st, names[i], error);
      else if (strcmp (label, "C8") == 0 || strcmp (label, "FAQuant") == 0)
        {
          if (!load_attention_tensor (self, st, names[i], label, error))
            return NULL;
          continue;
        }
      else if (strcmp (label, "W16A16S") == 0)
        {
          /* float_sparse: the sparse weight (and bias) as stored, float activations */
          t = slim_safetensors_get_tensor (st, names[i], error);
          if (t != NULL && g_str_has_suffix (names[i], ".weight"))
            {
              g_autofree char *module
                  = g_strndup (names[i], strlen (names[i]) - strlen (".weight"));
              SlimQLinear *record = slim_qlinear_new (module, label);

              if (slim_tensor_get_n_dims (t) != 2 || !slim_tensor_is_finite (t))
                {
                  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                               "%s (W16A16S): not a finite 2-D weight", names[i]);
                  slim_qlinear_free (record);
                  g_clear_pointer (&t, slim_tensor_unref);
                }
              else
                {
                  record->n_out = slim_tensor_get_dim (t, 0);
                  record->n_in = slim_tensor_get_dim (t, 1);
                  g_hash_table_insert (self->records, g_strdup (module), record);
                }
            }
        }
      else if (g_str_has_suffix (names[i], ".weight"))
        {
          g_autofree char *module = g_strndup (names[i], strlen (names[i]) - strlen (".weight"));
          SlimQLinear *record = NULL;
          SlimIntLinear *lin = NULL;

          t = dequantize_linear (st, module, label, &record,
                                 math != SLIM_LINEAR_MATH_FLOAT ? &lin : NULL, error);
          if (t != NULL)
            g_hash_table_insert (self->records, g_strdup (module), record);
          if (lin != NULL)
            g_hash_table_insert (self->int_linears, g_strdup (module), lin);
        }
      else
        continue; /* scales, offsets, quant_bias: used by their weight */
      if (t == NULL)
        return NULL;
      g_ptr_array_add (tensors, t);
    }

  /* dynamic-only FA3 attentions have a quant_type and no tensor */
  {
    g_autoptr (GList) members = json_object_get_members (desc);

    for (GList *l = members; l != NULL; l = l->next)
      {
        const char *key = l->data;
        JsonNode *node = json_object_get_member (desc, key);

        if (g_str_has_suffix (key, ".quant_type") && strlen (key) > strlen (".quant_type")
            && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
          {
            g_autofree char *attn = g_strndup (key, strlen (key) - strlen (".quant_type"));
            attention_record (self, attn);
          }
      }
  }
  if (!check_attention_records (self, desc, error)
      || !load_online_rotations (self, desc, st, desc_path, error))
    return NULL;
  self->float_dir = g_dir_make_tmp ("slimflow-dequant-XXXXXX", error);
  if (self->float_dir == NULL || !copy_side_files (dir, self->float_dir, error))
    return NULL;
  out_path = g_build_filename (self->float_dir, "model.safetensors", NULL);
  if (!slim_safetensors_write_file (out_path, (SlimTensor *const *)tensors->pdata, tensors->len,
                                    NULL, error))
    return NULL;
  return g_steal_pointer (&self);
}
