/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-bnb-writer.c: the bitsandbytes NF4 output folder (see
 * slim-bnb-writer.h for the tensor table and the config).
 *
 * A layer is checked first (every record must be an NF4 record this
 * format holds), then written in its tensor insertion order, so a refused
 * linear fails before any tensor of its layer reaches the weight files.
 * The skipped (float) linears, in write order, and whether anything was
 * quantized are the resume state.
 */
#include "slim-bnb-writer.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "slim-ascend-writer.h"
#include "slim-error.h"
#include "slim-hf-config.h"
#include "slim-model-files.h"
#include "slim-nf4.h"
#include "slim-qattention.h"
#include "slim-qlinear.h"
#include "slim-safetensors.h"

struct _SlimBnbWriter
{
  char *out_dir;
  SlimDType model_dtype;
  gboolean tie_word_embeddings;
  SlimSafetensorsWriter *weights;
  GPtrArray *skip; /* char *, linears left float, in write order */
  guint n_quantized;
  gboolean untied; /* an NF4 lm_head of a tied model: config.json unties */
  gboolean finished;
};

/* torch's name of a model dtype, as str (dtype).strip ("torch.") gives it. */
static const char *
slim_bnb_dtype_name (SlimDType dtype)
{
  switch (dtype)
    {
    case SLIM_DTYPE_F32:
      return "float32";
    case SLIM_DTYPE_F16:
      return "float16";
    case SLIM_DTYPE_BF16:
      return "bfloat16";
    default:
      return NULL;
    }
}

SlimBnbWriter *
slim_bnb_writer_new (const char *out_dir,
                     guint64 shard_bytes,
                     SlimDType model_dtype,
                     gboolean tie_word_embeddings,
                     GError **error)
{
  g_autoptr (SlimSafetensorsWriter) weights = NULL;
  SlimBnbWriter *self;

  g_return_val_if_fail (out_dir != NULL, NULL);

  if (slim_bnb_dtype_name (model_dtype) == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "bitsandbytes_saver: the model's torch_dtype %s is not float32, float16 or "
                   "bfloat16",
                   slim_dtype_get_name (model_dtype));
      return NULL;
    }
  weights = slim_safetensors_writer_new (out_dir, SLIM_BNB_WEIGHTS_PREFIX, shard_bytes, error);
  if (weights == NULL)
    return NULL;
  self = g_new0 (SlimBnbWriter, 1);
  self->out_dir = g_strdup (out_dir);
  self->model_dtype = model_dtype;
  self->tie_word_embeddings = tie_word_embeddings;
  self->weights = g_steal_pointer (&weights);
  self->skip = g_ptr_array_new_with_free_func (g_free);
  return self;
}

void
slim_bnb_writer_free (SlimBnbWriter *self)
{
  if (self == NULL)
    return;
  g_clear_object (&self->weights);
  g_ptr_array_unref (self->skip);
  g_free (self->out_dir);
  g_free (self);
}

static gboolean
slim_bnb_add (SlimBnbWriter *self, SlimTensor *tensor /* transfer full */, GError **error)
{
  g_autoptr (SlimTensor) owned = tensor;

  return slim_safetensors_writer_add (self->weights, owned, error);
}

static gboolean
slim_bnb_block_size_ok (gint64 b)
{
  for (gint64 k = 64; k <= 4096; k *= 2)
    if (b == k)
      return TRUE;
  return FALSE;
}

/* A record this format holds: NF4 codes (n_out, n_in) U8 with an absmax
 * per block of a bitsandbytes block size. */
static gboolean
slim_bnb_check_record (const SlimQLinear *q, GError **error)
{
  if (strcmp (q->label, "NF4") != 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s (%s): bitsandbytes_saver writes NF4 weights only (linear_quant method "
                   "nf); save %s with ascendv1_saver or compressed_tensors",
                   q->module, q->label, q->label);
      return FALSE;
    }
  if (!slim_bnb_block_size_ok (q->group_size))
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s (NF4): group_size %" G_GINT64_FORMAT
                   " is not a bitsandbytes block size (64, 128, 256, 512, 1024, 2048, 4096)",
                   q->module, q->group_size);
      return FALSE;
    }
  if (q->n_out <= 0 || q->n_in <= 0 || q->n_in % q->group_size != 0 || q->weight_q == NULL
      || slim_tensor_get_dtype (q->weight_q) != SLIM_DTYPE_U8
      || slim_tensor_get_n_elements (q->weight_q) != q->n_out * q->n_in || q->weight_scale == NULL
      || slim_tensor_get_dtype (q->weight_scale) != SLIM_DTYPE_F32
      || slim_tensor_get_n_elements (q->weight_scale) != q->n_out * q->n_in / q->group_size)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (NF4): the record must hold uint8 codes (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ") and float32 absmax per group of %" G_GINT64_FORMAT,
                   q->module, q->n_out, q->n_in, q->group_size);
      return FALSE;
    }
  if (!slim_tensor_is_finite (q->weight_scale))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "%s (NF4): absmax has non-finite values", q->module);
      return FALSE;
    }
  return TRUE;
}

/* json.dumps of the QuantState's non-tensor members, in as_dict's order. */
static char *
slim_bnb_quant_state_json (const SlimQLinear *q, SlimDType dtype)
{
  return g_strdup_printf ("{\"quant_type\": \"nf4\", \"blocksize\": %" G_GINT64_FORMAT
                          ", \"dtype\": \"%s\", \"shape\": [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                          "]}",
                          q->group_size, slim_bnb_dtype_name (dtype), q->n_out, q->n_in);
}

static SlimTensor *
slim_bnb_new (const char *module, const char *suffix, SlimDType dtype, guint n_dims, gint64 d0)
{
  g_autofree char *name = g_strconcat (module, suffix, NULL);
  const gint64 shape[2] = { d0, 1 };

  return slim_tensor_new (name, dtype, n_dims, shape, NULL);
}

/* The four tensors of one NF4 linear (see the header). */
static gboolean
slim_bnb_write_nf4 (SlimBnbWriter *self, const SlimQLinear *q, GError **error)
{
  gint64 n = q->n_out * q->n_in;
  g_autofree char *state = slim_bnb_quant_state_json (q, self->model_dtype);
  gint64 n_state = (gint64)strlen (state);
  SlimTensor *weight = slim_bnb_new (q->module, ".weight", SLIM_DTYPE_U8, 2, n / 2);
  SlimTensor *absmax
      = slim_bnb_new (q->module, ".weight.absmax", SLIM_DTYPE_F32, 1, n / q->group_size);
  SlimTensor *quant_map
      = slim_bnb_new (q->module, ".weight.quant_map", SLIM_DTYPE_F32, 1, SLIM_NF4_N_CODES);
  SlimTensor *packed_state = slim_bnb_new (q->module, ".weight.quant_state.bitsandbytes__nf4",
                                           SLIM_DTYPE_U8, 1, n_state);
  float *code = slim_tensor_get_data_mut (quant_map); /* [16] */

  /* (n_out, n_in) row-major codes, flattened as bitsandbytes flattens */
  slim_nf4_pack (slim_tensor_get_data (q->weight_q), n, slim_tensor_get_data_mut (weight));
  memcpy (slim_tensor_get_data_mut (absmax), slim_tensor_get_data (q->weight_scale),
          (gsize)(n / q->group_size) * sizeof (float));
  for (guint k = 0; k < SLIM_NF4_N_CODES; k++)
    code[k] = slim_nf4_decode ((guint8)k);
  memcpy (slim_tensor_get_data_mut (packed_state), state, (gsize)n_state);
  if (!slim_bnb_add (self, weight, error))
    {
      slim_tensor_unref (absmax);
      slim_tensor_unref (quant_map);
      slim_tensor_unref (packed_state);
      return FALSE;
    }
  if (!slim_bnb_add (self, absmax, error))
    {
      slim_tensor_unref (quant_map);
      slim_tensor_unref (packed_state);
      return FALSE;
    }
  if (!slim_bnb_add (self, quant_map, error))
    {
      slim_tensor_unref (packed_state);
      return FALSE;
    }
  if (!slim_bnb_add (self, packed_state, error))
    return FALSE;
  self->n_quantized++;
  return TRUE;
}

/* A tensor in the dtype it had in the model files. */
static gboolean
slim_bnb_write_float (SlimBnbWriter *self, SlimLayer *layer, SlimTensor *tensor, GError **error)
{
  SlimDType dtype = slim_layer_get_source_dtype (layer, slim_tensor_get_name (tensor));
  SlimTensor *t = dtype == slim_tensor_get_dtype (tensor)
                      ? slim_tensor_ref (tensor)
                      : slim_tensor_convert (tensor, dtype, error);

  return t != NULL && slim_bnb_add (self, t, error);
}

/* The module of a "<module>.weight" name, else NULL. */
static char *
slim_bnb_module_of_weight (const char *name)
{
  if (g_str_has_suffix (name, ".weight") && strlen (name) > strlen (".weight"))
    return g_strndup (name, strlen (name) - strlen (".weight"));
  return NULL;
}

gboolean
slim_bnb_writer_write_layer (SlimBnbWriter *self, SlimLayer *layer, GError **error)
{
  g_autoptr (GPtrArray) records = NULL;
  g_autoptr (GPtrArray) attentions = NULL;
  g_autoptr (GHashTable) nf4 = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) linears = g_hash_table_new (g_str_hash, g_str_equal);
  const char *const *linear_names;
  gboolean head;

  g_return_val_if_fail (self != NULL && !self->finished, FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);

  attentions = slim_layer_list_qattentions (layer);
  if (attentions->len > 0)
    {
      const SlimQAttention *r = g_ptr_array_index (attentions, 0);

      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: KV-cache (C8) and FA3 (FAQuant) quantization cannot be saved by "
                   "bitsandbytes_saver; use ascendv1_saver",
                   r->attn);
      return FALSE;
    }
  records = slim_layer_list_qlinears (layer);
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = g_ptr_array_index (records, i);

      if (!slim_bnb_check_record (q, error))
        return FALSE;
      g_hash_table_insert (nf4, q->module, (gpointer)q);
    }
  linear_names = slim_layer_get_linear_names (layer);
  for (guint i = 0; linear_names != NULL && linear_names[i] != NULL; i++)
    g_hash_table_add (linears, (gpointer)linear_names[i]);
  head = slim_layer_get_index (layer) == SLIM_LAYER_INDEX_HEAD;

  for (guint i = 0; i < slim_layer_get_n_tensors (layer); i++)
    {
      SlimTensor *tensor = slim_layer_get_tensor_at (layer, i);
      g_autofree char *module = slim_bnb_module_of_weight (slim_tensor_get_name (tensor));
      const SlimQLinear *q = module != NULL ? g_hash_table_lookup (nf4, module) : NULL;

      if (q != NULL)
        {
          if (!slim_bnb_write_nf4 (self, q, error))
            return FALSE;
          if (head && self->tie_word_embeddings)
            self->untied = TRUE; /* the embedding stays float */
          g_hash_table_remove (nf4, module);
          continue;
        }
      if (module != NULL && g_hash_table_contains (linears, module))
        {
          g_ptr_array_add (self->skip, g_strdup (module));
          if (head && self->tie_word_embeddings)
            continue; /* tied lm_head: the embedding holds it */
        }
      if (!slim_bnb_write_float (self, layer, tensor, error))
        return FALSE;
    }
  if (g_hash_table_size (nf4) > 0)
    {
      GHashTableIter iter;
      gpointer key;

      g_hash_table_iter_init (&iter, nf4);
      g_hash_table_iter_next (&iter, &key, NULL);
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s (NF4): its weight is not among the layer's tensors", (const char *)key);
      return FALSE;
    }
  return TRUE;
}

/* ---- finish: config.json ---------------------------------------------- */

static JsonObject *
slim_bnb_quantization_config (SlimBnbWriter *self)
{
  JsonObject *qc = json_object_new ();
  JsonArray *skip = json_array_new ();
  const char *dtype = slim_bnb_dtype_name (self->model_dtype);

  for (guint i = 0; i < self->skip->len; i++)
    json_array_add_string_element (skip, g_ptr_array_index (self->skip, i));
  json_object_set_boolean_member (qc, "_load_in_4bit", TRUE);
  json_object_set_boolean_member (qc, "_load_in_8bit", FALSE);
  json_object_set_string_member (qc, "bnb_4bit_compute_dtype", dtype);
  json_object_set_string_member (qc, "bnb_4bit_quant_storage", "uint8");
  json_object_set_string_member (qc, "bnb_4bit_quant_type", "nf4");
  json_object_set_boolean_member (qc, "bnb_4bit_use_double_quant", FALSE);
  json_object_set_boolean_member (qc, "llm_int8_enable_fp32_cpu_offload", FALSE);
  json_object_set_boolean_member (qc, "llm_int8_has_fp16_weight", FALSE);
  json_object_set_array_member (qc, "llm_int8_skip_modules", skip);
  json_object_set_double_member (qc, "llm_int8_threshold", 6.0);
  json_object_set_boolean_member (qc, "load_in_4bit", TRUE);
  json_object_set_boolean_member (qc, "load_in_8bit", FALSE);
  json_object_set_string_member (qc, "quant_method", "bitsandbytes");
  return qc;
}

static gboolean
slim_bnb_update_config (SlimBnbWriter *self, GError **error)
{
  return slim_hf_config_set_quantization_config (
      self->out_dir, "bitsandbytes_saver",
      self->n_quantized > 0 ? slim_bnb_quantization_config (self) : NULL, self->untied, error);
}

gboolean
slim_bnb_writer_finish (SlimBnbWriter *self, const char *model_dir, GError **error)
{
  const char *const suffixes[] = { ".json", ".py", ".txt", ".jinja", NULL };

  g_return_val_if_fail (self != NULL && !self->finished, FALSE);

  if (!slim_safetensors_writer_finish (self->weights, error))
    return FALSE;
  self->finished = TRUE;
  if (model_dir != NULL && !slim_model_files_copy (model_dir, self->out_dir, suffixes, error))
    return FALSE;
  return slim_bnb_update_config (self, error);
}

/* ---- resume ------------------------------------------------------------ */

/* weights, number of NF4 linears written, untied, skipped linears */
#define SLIM_BNB_STATE_TYPE "(vubas)"

GBytes *
slim_bnb_writer_save_state (SlimBnbWriter *self, GError **error)
{
  g_autoptr (GVariant) weights = NULL;
  g_autoptr (GVariant) state = NULL;
  GVariantBuilder skip;

  g_return_val_if_fail (self != NULL && !self->finished, NULL);

  weights = slim_safetensors_writer_save_state (self->weights, error);
  if (weights == NULL)
    return NULL;
  g_variant_builder_init (&skip, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < self->skip->len; i++)
    g_variant_builder_add (&skip, "s", (const char *)g_ptr_array_index (self->skip, i));
  state = g_variant_ref_sink (g_variant_new (SLIM_BNB_STATE_TYPE, weights,
                                             (guint32)self->n_quantized, self->untied, &skip));
  return g_variant_get_data_as_bytes (state);
}

gboolean
slim_bnb_writer_restore_state (SlimBnbWriter *self, GBytes *state, GError **error)
{
  g_autoptr (GVariant) root = NULL;
  g_autoptr (GVariant) weights = NULL;
  g_autoptr (GVariant) skip = NULL;
  GVariantIter iter;
  const char *module;
  guint32 n_quantized;
  gboolean untied;

  g_return_val_if_fail (self != NULL && state != NULL && !self->finished, FALSE);
  g_return_val_if_fail (self->skip->len == 0 && self->n_quantized == 0, FALSE);

  root = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (SLIM_BNB_STATE_TYPE), state, FALSE));
  if (!g_variant_is_normal_form (root))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "the saved state of the bitsandbytes writer is corrupt: not in normal form");
      return FALSE;
    }
  g_variant_get (root, "(vub@as)", &weights, &n_quantized, &untied, &skip);
  g_variant_iter_init (&iter, skip);
  while (g_variant_iter_next (&iter, "&s", &module))
    {
      if (!g_utf8_validate (module, -1, NULL))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "the saved state of the bitsandbytes writer is corrupt: module names");
          return FALSE;
        }
      g_ptr_array_add (self->skip, g_strdup (module));
    }
  self->n_quantized = n_quantized;
  self->untied = untied;
  return slim_safetensors_writer_restore_state (self->weights, weights, error);
}
