/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ct-writer.c: the compressed-tensors output folder (see
 * slim-ct-writer.h for the tensor table and the config).
 *
 * A layer is planned first (every record turned into its scheme and
 * checked, slim-ct-scheme.h), then written, so a linear compressed-tensors cannot express
 * fails before any tensor of its layer reaches the weight files.  The
 * quantization_config is built at finish from what was recorded per
 * linear: (module, scheme JSON) in write order and the ignored linears,
 * which is also the resume state.
 */
#include "slim-ct-writer.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "slim-ascend-writer.h"
#include "slim-ct-pack.h"
#include "slim-ct-scheme.h"
#include "slim-error.h"
#include "slim-hf-config.h"
#include "slim-online-rotation.h"
#include "slim-model-files.h"
#include "slim-qattention.h"
#include "slim-qlinear.h"
#include "slim-safetensors.h"
#include "slim-saver-tensors.h"

struct _SlimCtWriter
{
  char *out_dir;
  SlimDType model_dtype;
  gboolean tie_word_embeddings;
  SlimSafetensorsWriter *weights;
  GPtrArray *modules; /* char *, quantized linears in write order */
  GPtrArray *schemes; /* char *, the scheme JSON of modules[i] (no targets) */
  GPtrArray *ignore;  /* char *, linears left unquantized, in write order */
  gboolean finished;
};

SlimCtWriter *
slim_ct_writer_new (const char *out_dir,
                    guint64 shard_bytes,
                    SlimDType model_dtype,
                    gboolean tie_word_embeddings,
                    GError **error)
{
  g_autoptr (SlimSafetensorsWriter) weights = NULL;
  SlimCtWriter *self;

  g_return_val_if_fail (out_dir != NULL, NULL);

  weights = slim_safetensors_writer_new (out_dir, SLIM_CT_WEIGHTS_PREFIX, shard_bytes, error);
  if (weights == NULL)
    return NULL;
  self = g_new0 (SlimCtWriter, 1);
  self->out_dir = g_strdup (out_dir);
  self->model_dtype = model_dtype;
  self->tie_word_embeddings = tie_word_embeddings;
  self->weights = g_steal_pointer (&weights);
  self->modules = g_ptr_array_new_with_free_func (g_free);
  self->schemes = g_ptr_array_new_with_free_func (g_free);
  self->ignore = g_ptr_array_new_with_free_func (g_free);
  return self;
}

void
slim_ct_writer_free (SlimCtWriter *self)
{
  if (self == NULL)
    return;
  /* an unfinished safetensors writer removes its partial files */
  g_clear_object (&self->weights);
  g_free (self->out_dir);
  g_ptr_array_unref (self->modules);
  g_ptr_array_unref (self->schemes);
  g_ptr_array_unref (self->ignore);
  g_free (self);
}

/* ---- writing ----------------------------------------------------------- */

static gboolean
slim_ct_add (SlimCtWriter *self, SlimTensor *tensor /* transfer full */, GError **error)
{
  g_autoptr (SlimTensor) owned = tensor;

  return slim_safetensors_writer_add (self->weights, owned, error);
}

static SlimTensor *
slim_ct_new (
    const char *module, const char *suffix, SlimDType dtype, guint n_dims, gint64 d0, gint64 d1)
{
  g_autofree char *name = g_strconcat (module, suffix, NULL);
  const gint64 shape[2] = { d0, d1 };

  /* only small shapes of already checked records: allocation cannot fail */
  return slim_tensor_new (name, dtype, n_dims, shape, NULL);
}

/* weight_scale: (out, n_cols), or (1) per tensor. */
static SlimTensor *
slim_ct_scale (const SlimCtScheme *plan)
{
  const SlimQLinear *q = plan->q;
  SlimTensor *t
      = plan->per_tensor
            ? slim_ct_new (q->module, ".weight_scale", SLIM_DTYPE_F32, 1, 1, 0)
            : slim_ct_new (q->module, ".weight_scale", SLIM_DTYPE_F32, 2, q->n_out, plan->n_cols);

  memcpy (slim_tensor_get_data_mut (t), slim_tensor_get_data (q->weight_scale),
          slim_tensor_get_n_bytes (t));
  return t;
}

/* int8 zero points, the shape of weight_scale (int-quantized, or per tensor). */
static SlimTensor *
slim_ct_zero_point_i8 (const SlimCtScheme *plan)
{
  const SlimQLinear *q = plan->q;
  SlimTensor *t = plan->per_tensor
                      ? slim_ct_new (q->module, ".weight_zero_point", SLIM_DTYPE_I8, 1, 1, 0)
                      : slim_ct_new (q->module, ".weight_zero_point", SLIM_DTYPE_I8, 2, q->n_out,
                                     plan->n_cols);
  const float *zp = slim_tensor_get_data (q->weight_offset);
  gint8 *out = slim_tensor_get_data_mut (t);

  for (gint64 i = 0; i < slim_tensor_get_n_elements (t); i++)
    out[i] = (gint8)zp[i]; /* integers of the range, checked by slim_ct_scheme_from_qlinear */
  return t;
}

static gboolean
slim_ct_write_int_quantized (SlimCtWriter *self, const SlimCtScheme *plan, GError **error)
{
  const SlimQLinear *q = plan->q;
  g_autofree char *weight_name = g_strconcat (q->module, ".weight", NULL);

  if (!slim_ct_add (self, slim_tensor_copy (q->weight_q, weight_name), error)
      || !slim_ct_add (self, slim_ct_scale (plan), error))
    return FALSE;
  if (!q->weight.symmetric && !slim_ct_add (self, slim_ct_zero_point_i8 (plan), error))
    return FALSE;
  if (plan->has_input && !plan->input.dynamic)
    {
      SlimTensor *scale = slim_ct_new (q->module, ".input_scale", SLIM_DTYPE_F32, 1, 1, 0);

      ((float *)slim_tensor_get_data_mut (scale))[0] = q->input_scale;
      if (!slim_ct_add (self, scale, error))
        return FALSE;
      if (!plan->input.symmetric)
        {
          SlimTensor *zp = slim_ct_new (q->module, ".input_zero_point", SLIM_DTYPE_I8, 1, 1, 0);

          ((gint8 *)slim_tensor_get_data_mut (zp))[0] = (gint8)q->input_offset;
          if (!slim_ct_add (self, zp, error))
            return FALSE;
        }
    }
  return TRUE;
}

static gboolean
slim_ct_write_pack_quantized (SlimCtWriter *self, const SlimCtScheme *plan, GError **error)
{
  const SlimQLinear *q = plan->q;
  guint bits = plan->weights.bits;
  g_autoptr (SlimTensor) packed = slim_ct_new (q->module, ".weight_packed", SLIM_DTYPE_I32, 2,
                                               q->n_out, slim_ct_packed_words (q->n_in, bits));
  SlimTensor *shape = slim_ct_new (q->module, ".weight_shape", SLIM_DTYPE_I64, 1, 2, 0);

  ((gint64 *)slim_tensor_get_data_mut (shape))[0] = q->n_out;
  ((gint64 *)slim_tensor_get_data_mut (shape))[1] = q->n_in;
  if (!slim_ct_pack_rows (slim_tensor_get_data (q->weight_q), q->n_out, q->n_in, bits,
                          slim_tensor_get_data_mut (packed), error))
    {
      slim_tensor_unref (shape);
      g_prefix_error (error, "%s (%s): ", q->module, q->label);
      return FALSE;
    }
  if (!slim_ct_add (self, g_steal_pointer (&packed), error)
      || !slim_ct_add (self, slim_ct_scale (plan), error))
    {
      slim_tensor_unref (shape);
      return FALSE;
    }
  if (!q->weight.symmetric)
    {
      g_autoptr (SlimTensor) zp8 = slim_ct_zero_point_i8 (plan);
      SlimTensor *zp;

      if (plan->per_tensor)
        zp = g_steal_pointer (&zp8);
      else
        {
          zp = slim_ct_new (q->module, ".weight_zero_point", SLIM_DTYPE_I32, 2,
                            slim_ct_packed_words (q->n_out, bits), plan->n_cols);
          if (!slim_ct_pack_cols (slim_tensor_get_data (zp8), q->n_out, plan->n_cols, bits,
                                  slim_tensor_get_data_mut (zp), error))
            {
              slim_tensor_unref (zp);
              slim_tensor_unref (shape);
              g_prefix_error (error, "%s (%s): weight_zero_point: ", q->module, q->label);
              return FALSE;
            }
        }
      if (!slim_ct_add (self, zp, error))
        {
          slim_tensor_unref (shape);
          return FALSE;
        }
    }
  return slim_ct_add (self, shape, error);
}

static gboolean
slim_ct_write_float (SlimCtWriter *self, SlimLayer *layer, SlimTensor *tensor, GError **error)
{
  SlimTensor *t = slim_saver_tensor_in_source_dtype (layer, tensor, error);

  return t != NULL && slim_ct_add (self, t, error);
}

static gboolean
slim_ct_is_float_record (const SlimQLinear *q)
{
  /* float_sparse: the pruned float weight, saved dense (compressed-tensors
   * no longer saves sparse formats) */
  return strcmp (q->label, "W16A16S") == 0;
}

/* Writes one planned linear and its bias, and records its scheme. */
static gboolean
slim_ct_write_planned (SlimCtWriter *self,
                       SlimLayer *layer,
                       const SlimCtScheme *plan,
                       GError **error)
{
  const SlimQLinear *q = plan->q;
  g_autofree char *bias_name = g_strconcat (q->module, ".bias", NULL);
  SlimTensor *bias = slim_layer_get_tensor (layer, bias_name);

  if (!(plan->packed ? slim_ct_write_pack_quantized (self, plan, error)
                     : slim_ct_write_int_quantized (self, plan, error)))
    return FALSE;
  if (bias != NULL && !slim_ct_write_float (self, layer, bias, error))
    return FALSE;
  g_ptr_array_add (self->modules, g_strdup (q->module));
  g_ptr_array_add (self->schemes, slim_ct_scheme_to_json (plan, self->model_dtype));
  return TRUE;
}

gboolean
slim_ct_writer_write_layer (SlimCtWriter *self, SlimLayer *layer, GError **error)
{
  g_autoptr (GPtrArray) records = NULL;
  g_autoptr (GPtrArray) attentions = NULL;
  g_autoptr (GHashTable) plans = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) written = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) linears = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree SlimCtScheme *plan_store = NULL;
  const char *const *linear_names;
  gboolean head;

  g_return_val_if_fail (self != NULL && !self->finished, FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);

  /* plan (and check) everything before writing anything */
  attentions = slim_layer_list_qattentions (layer);
  if (attentions->len > 0)
    {
      const SlimQAttention *r = g_ptr_array_index (attentions, 0);

      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: KV-cache (C8) and FA3 (FAQuant) quantization cannot be saved by "
                   "compressed_tensors (its kv_cache_scheme has no int8 per-channel offsets); "
                   "use ascendv1_saver",
                   r->attn);
      return FALSE;
    }
  records = slim_layer_list_qlinears (layer);
  plan_store = g_new0 (SlimCtScheme, MAX (records->len, 1));
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = g_ptr_array_index (records, i);

      if (slim_ct_is_float_record (q))
        continue;
      if (slim_layer_get_index (layer) == SLIM_LAYER_INDEX_HEAD && self->tie_word_embeddings)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s (%s): a quantized lm_head of a model with tied embeddings cannot be "
                       "saved by compressed_tensors (its config stays tied); use ascendv1_saver",
                       q->module, q->label);
          return FALSE;
        }
      if (!slim_ct_scheme_from_qlinear (q, &plan_store[i], error))
        return FALSE;
      g_hash_table_insert (plans, q->module, &plan_store[i]);
    }

  linear_names = slim_layer_get_linear_names (layer);
  for (guint i = 0; linear_names != NULL && linear_names[i] != NULL; i++)
    g_hash_table_add (linears, (gpointer)linear_names[i]);
  head = slim_layer_get_index (layer) == SLIM_LAYER_INDEX_HEAD;

  for (guint i = 0; i < slim_layer_get_n_tensors (layer); i++)
    {
      SlimTensor *tensor = slim_layer_get_tensor_at (layer, i);
      gboolean is_weight = FALSE;
      g_autofree char *module
          = slim_saver_tensor_module_of (slim_tensor_get_name (tensor), &is_weight);

      /* QuaRot: the global rotation is extra information only; an online
       * rotation is part of the model the format cannot express */
      if (g_str_has_suffix (slim_tensor_get_name (tensor), SLIM_QUAROT_GLOBAL_ROTATION))
        continue;
      if (slim_online_rotation_is_online_name (slim_tensor_get_name (tensor)))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s: QuaRot online rotations cannot be saved by compressed_tensors; use "
                       "ascendv1_saver (or quarot online: false)",
                       slim_tensor_get_name (tensor));
          return FALSE;
        }
      const SlimCtScheme *plan = module != NULL ? g_hash_table_lookup (plans, module) : NULL;

      if (plan != NULL)
        {
          if (g_hash_table_contains (written, plan->q->module))
            continue;
          if (!slim_ct_write_planned (self, layer, plan, error))
            return FALSE;
          g_hash_table_add (written, plan->q->module);
          continue;
        }
      if (module != NULL && is_weight && g_hash_table_contains (linears, module))
        {
          /* a linear left float (or float_sparse): ignored */
          g_ptr_array_add (self->ignore, g_strdup (module));
          if (head && self->tie_word_embeddings)
            continue; /* tied lm_head: the embedding holds it */
        }
      if (!slim_ct_write_float (self, layer, tensor, error))
        return FALSE;
    }
  /* records whose weight is not among the layer's tensors */
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = g_ptr_array_index (records, i);
      const SlimCtScheme *plan = g_hash_table_lookup (plans, q->module);

      if (plan == NULL || g_hash_table_contains (written, q->module))
        continue;
      if (!slim_ct_write_planned (self, layer, plan, error))
        return FALSE;
      g_hash_table_add (written, q->module);
    }
  return TRUE;
}

/* ---- finish: config.json ---------------------------------------------- */

static JsonNode *
slim_ct_parse (const char *text)
{
  g_autoptr (JsonParser) parser = json_parser_new ();

  /* our own compact text: it parses */
  if (!json_parser_load_from_data (parser, text, -1, NULL))
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

static JsonObject *
slim_ct_quantization_config (SlimCtWriter *self)
{
  JsonObject *config = json_object_new ();
  JsonObject *groups = json_object_new ();
  JsonArray *ignore = json_array_new ();
  g_autoptr (GPtrArray) keys = g_ptr_array_new (); /* unique scheme texts */
  g_autoptr (GHashTable) members
      = g_hash_table_new (g_str_hash, g_str_equal); /* text -> GPtrArray */
  const char *format = NULL;

  for (guint i = 0; i < self->schemes->len; i++)
    {
      const char *key = g_ptr_array_index (self->schemes, i);
      GPtrArray *list = g_hash_table_lookup (members, key);

      if (list == NULL)
        {
          list = g_ptr_array_new ();
          g_hash_table_insert (members, (gpointer)key, list);
          g_ptr_array_add (keys, (gpointer)key);
        }
      g_ptr_array_add (list, g_ptr_array_index (self->modules, i));
    }
  for (guint g = 0; g < keys->len; g++)
    {
      GPtrArray *list = g_hash_table_lookup (members, g_ptr_array_index (keys, g));
      g_autoptr (JsonNode) parsed = slim_ct_parse (g_ptr_array_index (keys, g));
      JsonObject *scheme_in = json_node_get_object (parsed);
      JsonObject *scheme = json_object_new ();
      JsonArray *targets = json_array_new ();
      g_autoptr (GList) names = json_object_get_members (scheme_in);
      g_autofree char *group_name = g_strdup_printf ("group_%u", g);
      const char *group_format = json_object_get_string_member (scheme_in, "format");

      if (keys->len == 1)
        json_array_add_string_element (targets, "Linear");
      else
        for (guint k = 0; k < list->len; k++)
          json_array_add_string_element (targets, g_ptr_array_index (list, k));
      json_object_set_array_member (scheme, "targets", targets);
      for (GList *l = names; l != NULL; l = l->next)
        json_object_set_member (scheme, l->data,
                                json_node_copy (json_object_get_member (scheme_in, l->data)));
      if (format == NULL)
        format = g_intern_string (group_format);
      else if (strcmp (format, group_format) != 0)
        format = "mixed-precision";
      json_object_set_object_member (groups, group_name, scheme);
      g_ptr_array_unref (list);
    }
  for (guint i = 0; i < self->ignore->len; i++)
    json_array_add_string_element (ignore, g_ptr_array_index (self->ignore, i));

  json_object_set_string_member (config, "version", SLIM_CT_VERSION);
  json_object_set_string_member (config, "quant_method", "compressed-tensors");
  json_object_set_object_member (config, "sparsity_config", json_object_new ());
  json_object_set_object_member (config, "transform_config", json_object_new ());
  json_object_set_object_member (config, "config_groups", groups);
  json_object_set_string_member (config, "format", format);
  json_object_set_string_member (config, "quantization_status", "compressed");
  json_object_set_null_member (config, "global_compression_ratio");
  json_object_set_array_member (config, "ignore", ignore);
  json_object_set_null_member (config, "kv_cache_scheme");
  return config;
}

/* out_dir/config.json with quantization_config set (removed when nothing
 * was quantized, as msModelSlim does), as Python's json.dump indent 2. */
static gboolean
slim_ct_update_config (SlimCtWriter *self, GError **error)
{
  return slim_hf_config_set_quantization_config (
      self->out_dir, "compressed_tensors",
      self->modules->len > 0 ? slim_ct_quantization_config (self) : NULL, FALSE, error);
}

gboolean
slim_ct_writer_finish (SlimCtWriter *self, const char *model_dir, GError **error)
{
  const char *const suffixes[] = { ".json", ".py", ".txt", ".jinja", NULL };

  g_return_val_if_fail (self != NULL && !self->finished, FALSE);

  if (!slim_safetensors_writer_finish (self->weights, error))
    return FALSE;
  self->finished = TRUE;
  if (model_dir != NULL && !slim_model_files_copy (model_dir, self->out_dir, suffixes, error))
    return FALSE;
  return slim_ct_update_config (self, error);
}

/* ---- resume ------------------------------------------------------------ */

/* weights, (module, scheme text) in write order, ignored linears */
#define SLIM_CT_STATE_TYPE "(va(ss)as)"

GBytes *
slim_ct_writer_save_state (SlimCtWriter *self, GError **error)
{
  g_autoptr (GVariant) weights = NULL;
  g_autoptr (GVariant) state = NULL;
  GVariantBuilder modules, ignore;

  g_return_val_if_fail (self != NULL && !self->finished, NULL);

  weights = slim_safetensors_writer_save_state (self->weights, error);
  if (weights == NULL)
    return NULL;
  g_variant_builder_init (&modules, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; i < self->modules->len; i++)
    g_variant_builder_add (&modules, "(ss)", (const char *)g_ptr_array_index (self->modules, i),
                           (const char *)g_ptr_array_index (self->schemes, i));
  g_variant_builder_init (&ignore, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < self->ignore->len; i++)
    g_variant_builder_add (&ignore, "s", (const char *)g_ptr_array_index (self->ignore, i));
  state = g_variant_ref_sink (g_variant_new (SLIM_CT_STATE_TYPE, weights, &modules, &ignore));
  return g_variant_get_data_as_bytes (state);
}

static gboolean
slim_ct_state_invalid (GError **error, const char *what)
{
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "the saved state of the compressed_tensors writer is corrupt: %s", what);
  return FALSE;
}

gboolean
slim_ct_writer_restore_state (SlimCtWriter *self, GBytes *state, GError **error)
{
  g_autoptr (GVariant) root = NULL;
  g_autoptr (GVariant) weights = NULL;
  g_autoptr (GVariant) modules = NULL;
  g_autoptr (GVariant) ignore = NULL;
  GVariantIter iter;
  const char *module, *scheme;

  g_return_val_if_fail (self != NULL && state != NULL && !self->finished, FALSE);
  g_return_val_if_fail (self->modules->len == 0 && self->ignore->len == 0, FALSE);

  root = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (SLIM_CT_STATE_TYPE), state, FALSE));
  if (!g_variant_is_normal_form (root))
    return slim_ct_state_invalid (error, "not in normal form");
  g_variant_get (root, "(v@a(ss)@as)", &weights, &modules, &ignore);
  g_variant_iter_init (&iter, modules);
  while (g_variant_iter_next (&iter, "(&s&s)", &module, &scheme))
    {
      g_autoptr (JsonNode) parsed = NULL;

      if (!g_utf8_validate (module, -1, NULL) || !g_utf8_validate (scheme, -1, NULL))
        return slim_ct_state_invalid (error, "module names");
      parsed = slim_ct_parse (scheme);
      if (parsed == NULL || !JSON_NODE_HOLDS_OBJECT (parsed)
          || !json_object_has_member (json_node_get_object (parsed), "format"))
        return slim_ct_state_invalid (error, "a scheme");
      g_ptr_array_add (self->modules, g_strdup (module));
      g_ptr_array_add (self->schemes, g_strdup (scheme));
    }
  g_variant_iter_init (&iter, ignore);
  while (g_variant_iter_next (&iter, "&s", &module))
    {
      if (!g_utf8_validate (module, -1, NULL))
        return slim_ct_state_invalid (error, "ignored names");
      g_ptr_array_add (self->ignore, g_strdup (module));
    }
  return slim_safetensors_writer_restore_state (self->weights, weights, error);
}
