/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-writer.c: the GPTQ / AWQ checkpoint folder (see slim-hf-writer.h
 * for the tensor table and the config).
 *
 * A layer is planned first (every record checked, slim-hf-scheme.h, and
 * matched against the checkpoint's one scheme), then written, so a linear
 * the format cannot express fails before any tensor of its layer reaches
 * the weight files.
 */
#include "slim-hf-writer.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "slim-ascend-writer.h"
#include "slim-dtype.h"
#include "slim-error.h"
#include "slim-hf-pack.h"
#include "slim-hf-config.h"
#include "slim-model-files.h"
#include "slim-qattention.h"
#include "slim-qlinear.h"
#include "slim-safetensors.h"
#include "slim-saver-tensors.h"

struct _SlimHfWriter
{
  char *out_dir;
  SlimHfFormat format;
  gboolean f16_scales;
  gboolean tie_word_embeddings;
  SlimSafetensorsWriter *weights;
  gboolean have_scheme; /* scheme holds the first quantized linear's */
  SlimHfScheme scheme;  /* its q is not kept (records go with their layer) */
  char *first_module;   /* the linear that set the scheme */
  gboolean lm_head_quantized;
  GPtrArray *floats_in_layers;    /* char *, float linears of decoder layers */
  GPtrArray *quantized_in_layers; /* char *, quantized linears of decoder layers */
  GPtrArray *floats;              /* char *, every float linear, write order */
  gboolean finished;
};

SlimHfWriter *
slim_hf_writer_new (const char *out_dir,
                    SlimHfFormat format,
                    guint64 shard_bytes,
                    gboolean f16_scales,
                    gboolean tie_word_embeddings,
                    GError **error)
{
  g_autoptr (SlimSafetensorsWriter) weights = NULL;
  SlimHfWriter *self;

  g_return_val_if_fail (out_dir != NULL, NULL);

  weights = slim_safetensors_writer_new (out_dir, SLIM_HF_WEIGHTS_PREFIX, shard_bytes, error);
  if (weights == NULL)
    return NULL;
  slim_safetensors_writer_set_metadata (weights, "format", "pt");
  self = g_new0 (SlimHfWriter, 1);
  self->out_dir = g_strdup (out_dir);
  self->format = format;
  self->f16_scales = f16_scales;
  self->tie_word_embeddings = tie_word_embeddings;
  self->weights = g_steal_pointer (&weights);
  self->floats_in_layers = g_ptr_array_new_with_free_func (g_free);
  self->quantized_in_layers = g_ptr_array_new_with_free_func (g_free);
  self->floats = g_ptr_array_new_with_free_func (g_free);
  return self;
}

void
slim_hf_writer_free (SlimHfWriter *self)
{
  if (self == NULL)
    return;
  /* an unfinished safetensors writer removes its partial files */
  g_clear_object (&self->weights);
  g_free (self->out_dir);
  g_free (self->first_module);
  g_ptr_array_unref (self->floats_in_layers);
  g_ptr_array_unref (self->quantized_in_layers);
  g_ptr_array_unref (self->floats);
  g_free (self);
}

/* ---- planning ----------------------------------------------------------- */

/* The checkpoint's single scheme: the first quantized linear's. */
static gboolean
slim_hf_match_scheme (SlimHfWriter *self, const SlimHfScheme *plan, GError **error)
{
  const SlimHfScheme *s = &self->scheme;

  if (!self->have_scheme)
    return TRUE;
  if (plan->bits == s->bits && plan->group_size == s->group_size && plan->symmetric == s->symmetric)
    return TRUE;
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "%s (%s): %s cannot save this linear: int%u group_size %" G_GINT64_FORMAT
               " %s, but the checkpoint's quantization_config already holds int%u "
               "group_size %" G_GINT64_FORMAT " %s (from %s); one scheme per checkpoint",
               plan->q->module, plan->q->label, slim_hf_format_saver_name (self->format),
               plan->bits, plan->group_size, plan->symmetric ? "sym" : "asym", s->bits,
               s->group_size, s->symmetric ? "sym" : "asym", self->first_module);
  return FALSE;
}

/* ---- writing ------------------------------------------------------------ */

static gboolean
slim_hf_add (SlimHfWriter *self, SlimTensor *tensor /* transfer full */, GError **error)
{
  g_autoptr (SlimTensor) owned = tensor;

  return slim_safetensors_writer_add (self->weights, owned, error);
}

static SlimTensor *
slim_hf_new (
    const char *module, const char *suffix, SlimDType dtype, guint n_dims, gint64 d0, gint64 d1)
{
  g_autofree char *name = g_strconcat (module, ".", suffix, NULL);
  const gint64 shape[2] = { d0, d1 };

  return slim_tensor_new (name, dtype, n_dims, shape, NULL);
}

/* u = q + 2^(b-1) transposed to (n_in, n_out). */
static guint8 *
slim_hf_codes_in_out (const SlimHfScheme *plan)
{
  const SlimQLinear *q = plan->q;
  const gint8 *wq = slim_tensor_get_data (q->weight_q);
  gint half = 1 << (plan->bits - 1);
  guint8 *codes = g_malloc ((gsize)(q->n_out * q->n_in)); /* (n_in, n_out) */

  for (gint64 r = 0; r < q->n_out; r++)
    for (gint64 c = 0; c < q->n_in; c++)
      codes[c * q->n_out + r] = (guint8)(wq[r * q->n_in + c] + half);
  return codes;
}

/* The stored zeros (G, n_out): z, or z - 1 for gptq (v1). */
static guint8 *
slim_hf_zero_codes (const SlimHfWriter *self, const SlimHfScheme *plan)
{
  const SlimQLinear *q = plan->q;
  const float *o = slim_tensor_get_data (q->weight_offset);
  gint half = 1 << (plan->bits - 1);
  gint shift = self->format == SLIM_HF_FORMAT_GPTQ ? 1 : 0;
  guint8 *zeros = g_malloc ((gsize)(plan->n_groups * q->n_out)); /* (G, n_out) */

  /* offsets are checked integers in range (and > qmin for gptq v1) */
  for (gint64 r = 0; r < q->n_out; r++)
    for (gint64 g = 0; g < plan->n_groups; g++)
      zeros[g * q->n_out + r] = (guint8)((gint)o[r * plan->n_groups + g] + half - shift);
  return zeros;
}

/* scales (G, n_out) from the record's (n_out, G). */
static SlimTensor *
slim_hf_scales (const SlimHfWriter *self, const SlimHfScheme *plan)
{
  const SlimQLinear *q = plan->q;
  const float *s = slim_tensor_get_data (q->weight_scale);
  SlimTensor *t
      = slim_hf_new (q->module, "scales", self->f16_scales ? SLIM_DTYPE_F16 : SLIM_DTYPE_F32, 2,
                     plan->n_groups, q->n_out);
  void *out = slim_tensor_get_data_mut (t);

  for (gint64 r = 0; r < q->n_out; r++)
    for (gint64 g = 0; g < plan->n_groups; g++)
      {
        float v = s[r * plan->n_groups + g];

        if (self->f16_scales)
          ((guint16 *)out)[g * q->n_out + r] = slim_f32_to_f16 (v);
        else
          ((float *)out)[g * q->n_out + r] = v;
      }
  return t;
}

static gboolean
slim_hf_write_quantized (SlimHfWriter *self, const SlimHfScheme *plan, GError **error)
{
  const SlimQLinear *q = plan->q;
  gboolean awq = self->format == SLIM_HF_FORMAT_AWQ;
  gint64 pf = 32 / plan->bits;
  g_autofree guint8 *codes = slim_hf_codes_in_out (plan);     /* (n_in, n_out) */
  g_autofree guint8 *zeros = slim_hf_zero_codes (self, plan); /* (G, n_out) */
  g_autoptr (SlimTensor) qweight
      = awq ? slim_hf_new (q->module, "qweight", SLIM_DTYPE_I32, 2, q->n_in, q->n_out / pf)
            : slim_hf_new (q->module, "qweight", SLIM_DTYPE_I32, 2, q->n_in / pf, q->n_out);
  g_autoptr (SlimTensor) qzeros
      = slim_hf_new (q->module, "qzeros", SLIM_DTYPE_I32, 2, plan->n_groups, q->n_out / pf);
  gboolean packed
      = (awq ? slim_hf_pack_dim1 (codes, q->n_in, q->n_out, plan->bits, SLIM_HF_AWQ_ORDER,
                                  slim_tensor_get_data_mut (qweight), error)
             : slim_hf_pack_dim0 (codes, q->n_in, q->n_out, plan->bits,
                                  slim_tensor_get_data_mut (qweight), error))
        && slim_hf_pack_dim1 (zeros, plan->n_groups, q->n_out, plan->bits,
                              awq ? SLIM_HF_AWQ_ORDER : NULL, slim_tensor_get_data_mut (qzeros),
                              error);

  if (!packed)
    {
      g_prefix_error (error, "%s (%s): ", q->module, q->label);
      return FALSE;
    }
  if (!slim_hf_add (self, g_steal_pointer (&qweight), error)
      || !slim_hf_add (self, g_steal_pointer (&qzeros), error)
      || !slim_hf_add (self, slim_hf_scales (self, plan), error))
    return FALSE;
  if (!awq)
    {
      SlimTensor *g_idx = slim_hf_new (q->module, "g_idx", SLIM_DTYPE_I32, 1, q->n_in, 0);
      gint32 *gi = slim_tensor_get_data_mut (g_idx);

      for (gint64 c = 0; c < q->n_in; c++)
        gi[c] = plan->group_size > 0 ? (gint32)(c / plan->group_size) : 0;
      if (!slim_hf_add (self, g_idx, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
slim_hf_write_float (SlimHfWriter *self, SlimLayer *layer, SlimTensor *tensor, GError **error)
{
  SlimTensor *t = slim_saver_tensor_in_source_dtype (layer, tensor, error);

  return t != NULL && slim_hf_add (self, t, error);
}

/* One planned linear and its bias. */
static gboolean
slim_hf_write_planned (SlimHfWriter *self,
                       SlimLayer *layer,
                       const SlimHfScheme *plan,
                       GError **error)
{
  g_autofree char *bias_name = g_strconcat (plan->q->module, ".bias", NULL);
  SlimTensor *bias = slim_layer_get_tensor (layer, bias_name);

  if (!slim_hf_write_quantized (self, plan, error))
    return FALSE;
  if (bias != NULL && !slim_hf_write_float (self, layer, bias, error))
    return FALSE;
  if (!self->have_scheme)
    {
      self->scheme = *plan;
      self->scheme.q = NULL;
      self->first_module = g_strdup (plan->q->module);
      self->have_scheme = TRUE;
    }
  if (strcmp (plan->q->module, "lm_head") == 0 || g_str_has_suffix (plan->q->module, ".lm_head"))
    self->lm_head_quantized = TRUE;
  if (slim_layer_get_index (layer) >= 0)
    g_ptr_array_add (self->quantized_in_layers, g_strdup (plan->q->module));
  return TRUE;
}

gboolean
slim_hf_writer_write_layer (SlimHfWriter *self, SlimLayer *layer, GError **error)
{
  g_autoptr (GPtrArray) records = NULL;
  g_autoptr (GPtrArray) attentions = NULL;
  g_autoptr (GHashTable) plans = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) written = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) linears = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree SlimHfScheme *plan_store = NULL;
  const char *saver;
  const char *const *linear_names;
  gint index;

  g_return_val_if_fail (self != NULL && !self->finished, FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);

  saver = slim_hf_format_saver_name (self->format);
  attentions = slim_layer_list_qattentions (layer);
  if (attentions->len > 0)
    {
      const SlimQAttention *r = g_ptr_array_index (attentions, 0);

      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: KV-cache (C8) and FA3 (FAQuant) quantization cannot be saved by %s "
                   "(GPTQ / AWQ checkpoints are weight-only); use ascendv1_saver",
                   r->attn, saver);
      return FALSE;
    }
  records = slim_layer_list_qlinears (layer);
  plan_store = g_new0 (SlimHfScheme, MAX (records->len, 1));
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = g_ptr_array_index (records, i);
      gboolean first = !self->have_scheme && i == 0;

      if (!slim_hf_scheme_from_qlinear (q, self->format, self->f16_scales, &plan_store[i], error))
        return FALSE;
      if (self->format == SLIM_HF_FORMAT_AWQ && slim_layer_get_index (layer) < 0)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s (%s): %s cannot save this linear: AWQ loaders quantize the linears of "
                       "the decoder layers only (transformers keeps lm_head float)",
                       q->module, q->label, saver);
          return FALSE;
        }
      /* later records of this layer must match the first one as well */
      if (!first && !slim_hf_match_scheme (self, &plan_store[i], error))
        return FALSE;
      if (!self->have_scheme && i > 0)
        {
          const SlimHfScheme *a = &plan_store[0], *b = &plan_store[i];

          if (a->bits != b->bits || a->group_size != b->group_size || a->symmetric != b->symmetric)
            {
              g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                           "%s (%s): %s cannot save this linear: its scheme (int%u group_size "
                           "%" G_GINT64_FORMAT " %s) differs from %s's; one scheme per checkpoint",
                           b->q->module, b->q->label, saver, b->bits, b->group_size,
                           b->symmetric ? "sym" : "asym", a->q->module);
              return FALSE;
            }
        }
      g_hash_table_insert (plans, q->module, &plan_store[i]);
    }

  linear_names = slim_layer_get_linear_names (layer);
  for (guint i = 0; linear_names != NULL && linear_names[i] != NULL; i++)
    g_hash_table_add (linears, (gpointer)linear_names[i]);
  index = slim_layer_get_index (layer);

  for (guint i = 0; i < slim_layer_get_n_tensors (layer); i++)
    {
      SlimTensor *tensor = slim_layer_get_tensor_at (layer, i);
      gboolean is_weight = FALSE;
      g_autofree char *module
          = slim_saver_tensor_module_of (slim_tensor_get_name (tensor), &is_weight);
      const SlimHfScheme *plan = module != NULL ? g_hash_table_lookup (plans, module) : NULL;

      if (plan != NULL)
        {
          if (g_hash_table_contains (written, plan->q->module))
            continue;
          if (!slim_hf_write_planned (self, layer, plan, error))
            return FALSE;
          g_hash_table_add (written, plan->q->module);
          continue;
        }
      if (module != NULL && is_weight && g_hash_table_contains (linears, module))
        {
          g_ptr_array_add (self->floats, g_strdup (module));
          if (index >= 0)
            g_ptr_array_add (self->floats_in_layers, g_strdup (module));
          if (index == SLIM_LAYER_INDEX_HEAD && self->tie_word_embeddings)
            continue; /* tied lm_head: the embedding holds it */
        }
      if (!slim_hf_write_float (self, layer, tensor, error))
        return FALSE;
    }
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = g_ptr_array_index (records, i);
      const SlimHfScheme *plan = g_hash_table_lookup (plans, q->module);

      if (g_hash_table_contains (written, q->module))
        continue;
      if (!slim_hf_write_planned (self, layer, plan, error))
        return FALSE;
      g_hash_table_add (written, q->module);
    }
  return TRUE;
}

/* ---- finish: the configs ------------------------------------------------ */

/* "^name$" with the regex metacharacters of name escaped. */
static char *
slim_hf_anchored (const char *name)
{
  g_autofree char *escaped = g_regex_escape_string (name, -1);

  return g_strconcat ("-:^", escaped, "$", NULL);
}

static JsonObject *
slim_hf_gptq_config (SlimHfWriter *self)
{
  JsonObject *c = json_object_new ();
  JsonObject *meta = json_object_new ();
  JsonArray *quantizer = json_array_new ();

  json_object_set_int_member (c, "bits", self->scheme.bits);
  if (self->floats_in_layers->len > 0)
    {
      JsonObject *dynamic = json_object_new ();

      for (guint i = 0; i < self->floats_in_layers->len; i++)
        {
          g_autofree char *key = slim_hf_anchored (g_ptr_array_index (self->floats_in_layers, i));

          json_object_set_object_member (dynamic, key, json_object_new ());
        }
      json_object_set_object_member (c, "dynamic", dynamic);
    }
  json_object_set_int_member (c, "group_size", self->scheme.group_size);
  json_object_set_boolean_member (c, "desc_act", FALSE);
  json_object_set_boolean_member (c, "sym", self->scheme.symmetric);
  json_object_set_boolean_member (c, "lm_head", self->lm_head_quantized);
  json_object_set_string_member (c, "quant_method", "gptq");
  json_object_set_string_member (c, "checkpoint_format",
                                 self->format == SLIM_HF_FORMAT_GPTQ ? "gptq" : "gptq_v2");
  json_object_set_string_member (c, "pack_dtype", "int32");
  if (self->floats_in_layers->len > 0)
    {
      /* optimum (transformers' GPTQ loader) ignores `dynamic`: it replaces
       * the block linears whose names end with one of these */
      JsonArray *outer = json_array_new ();
      JsonArray *names = json_array_new ();

      for (guint i = 0; i < self->quantized_in_layers->len; i++)
        json_array_add_string_element (names, g_ptr_array_index (self->quantized_in_layers, i));
      json_array_add_array_element (outer, names);
      json_object_set_array_member (c, "modules_in_block_to_quantize", outer);
    }
  json_array_add_string_element (quantizer, "slimflow");
  json_object_set_array_member (meta, "quantizer", quantizer);
  json_object_set_object_member (c, "meta", meta);
  return c;
}

static JsonObject *
slim_hf_awq_config (SlimHfWriter *self)
{
  JsonObject *c = json_object_new ();

  json_object_set_string_member (c, "quant_method", "awq");
  json_object_set_boolean_member (c, "zero_point", TRUE);
  json_object_set_int_member (c, "group_size", self->scheme.group_size);
  json_object_set_int_member (c, "bits", self->scheme.bits);
  json_object_set_string_member (c, "version", "gemm");
  if (self->floats->len > 0)
    {
      JsonArray *skip = json_array_new ();

      for (guint i = 0; i < self->floats->len; i++)
        json_array_add_string_element (skip, g_ptr_array_index (self->floats, i));
      json_object_set_array_member (c, "modules_to_not_convert", skip);
    }
  else
    json_object_set_null_member (c, "modules_to_not_convert");
  return c;
}

static gboolean
slim_hf_write_quantize_config (SlimHfWriter *self, GError **error)
{
  g_autofree char *path = g_build_filename (self->out_dir, "quantize_config.json", NULL);
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);
  g_autofree char *text = NULL;

  json_node_take_object (node, slim_hf_gptq_config (self));
  text = slim_ascend_json_to_python_text (node, 2);
  return g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

gboolean
slim_hf_writer_finish (SlimHfWriter *self, const char *model_dir, GError **error)
{
  const char *const suffixes[] = { ".json", ".py", ".txt", ".jinja", NULL };
  gboolean gptq;

  g_return_val_if_fail (self != NULL && !self->finished, FALSE);

  if (!self->have_scheme)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: no linear was quantized; a GPTQ / AWQ checkpoint needs at least one "
                   "(use a float saver or add linear_quant)",
                   slim_hf_format_saver_name (self->format));
      return FALSE;
    }
  if (!slim_safetensors_writer_finish (self->weights, error))
    return FALSE;
  self->finished = TRUE;
  if (model_dir != NULL && !slim_model_files_copy (model_dir, self->out_dir, suffixes, error))
    return FALSE;
  gptq = self->format != SLIM_HF_FORMAT_AWQ;
  if (gptq && !slim_hf_write_quantize_config (self, error))
    return FALSE;
  return slim_hf_config_set_quantization_config (
      self->out_dir, slim_hf_format_saver_name (self->format),
      gptq ? slim_hf_gptq_config (self) : slim_hf_awq_config (self), FALSE, error);
}

/* ---- resume ------------------------------------------------------------- */

/* weights, (have_scheme, bits, group_size, sym, n_groups, first module,
 * lm_head quantized), float linears of decoder layers, every float linear,
 * quantized linears of decoder layers */
#define SLIM_HF_STATE_TYPE "(v(buxbxsb)asasas)"

static void
slim_hf_add_strv (GVariantBuilder *b, GPtrArray *names)
{
  g_variant_builder_init (b, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < names->len; i++)
    g_variant_builder_add (b, "s", (const char *)g_ptr_array_index (names, i));
}

GBytes *
slim_hf_writer_save_state (SlimHfWriter *self, GError **error)
{
  g_autoptr (GVariant) weights = NULL;
  g_autoptr (GVariant) state = NULL;
  GVariantBuilder in_layers, floats, quantized;

  g_return_val_if_fail (self != NULL && !self->finished, NULL);

  weights = slim_safetensors_writer_save_state (self->weights, error);
  if (weights == NULL)
    return NULL;
  slim_hf_add_strv (&in_layers, self->floats_in_layers);
  slim_hf_add_strv (&floats, self->floats);
  slim_hf_add_strv (&quantized, self->quantized_in_layers);
  state = g_variant_ref_sink (g_variant_new (
      SLIM_HF_STATE_TYPE, weights, self->have_scheme, self->scheme.bits,
      (gint64)self->scheme.group_size, self->scheme.symmetric, (gint64)self->scheme.n_groups,
      self->first_module != NULL ? self->first_module : "", self->lm_head_quantized, &in_layers,
      &floats, &quantized));
  return g_variant_get_data_as_bytes (state);
}

static gboolean
slim_hf_state_invalid (SlimHfWriter *self, GError **error, const char *what)
{
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "the saved state of the %s writer is corrupt: %s",
               slim_hf_format_saver_name (self->format), what);
  return FALSE;
}

static gboolean
slim_hf_restore_names (GVariant *names, GPtrArray *into)
{
  GVariantIter iter;
  const char *name;

  g_variant_iter_init (&iter, names);
  while (g_variant_iter_next (&iter, "&s", &name))
    {
      if (!g_utf8_validate (name, -1, NULL))
        return FALSE;
      g_ptr_array_add (into, g_strdup (name));
    }
  return TRUE;
}

gboolean
slim_hf_writer_restore_state (SlimHfWriter *self, GBytes *state, GError **error)
{
  g_autoptr (GVariant) root = NULL;
  g_autoptr (GVariant) weights = NULL;
  g_autoptr (GVariant) in_layers = NULL;
  g_autoptr (GVariant) floats = NULL;
  g_autoptr (GVariant) quantized = NULL;
  gboolean have_scheme, sym, lm_head;
  guint32 bits;
  gint64 group_size, n_groups;
  const char *first;

  g_return_val_if_fail (self != NULL && state != NULL && !self->finished, FALSE);
  g_return_val_if_fail (!self->have_scheme && self->floats->len == 0, FALSE);

  root = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (SLIM_HF_STATE_TYPE), state, FALSE));
  if (!g_variant_is_normal_form (root))
    return slim_hf_state_invalid (self, error, "not in normal form");
  g_variant_get (root, "(v(buxbx&sb)@as@as@as)", &weights, &have_scheme, &bits, &group_size, &sym,
                 &n_groups, &first, &lm_head, &in_layers, &floats, &quantized);
  if (have_scheme
      && (!(bits == 4 || bits == 8) || !(group_size == -1 || group_size > 0) || n_groups < 1
          || first[0] == '\0' || !g_utf8_validate (first, -1, NULL)))
    return slim_hf_state_invalid (self, error, "the scheme");
  if (!slim_hf_restore_names (in_layers, self->floats_in_layers)
      || !slim_hf_restore_names (floats, self->floats)
      || !slim_hf_restore_names (quantized, self->quantized_in_layers))
    return slim_hf_state_invalid (self, error, "linear names");
  self->have_scheme = have_scheme;
  self->scheme.bits = bits;
  self->scheme.group_size = group_size;
  self->scheme.symmetric = sym;
  self->scheme.n_groups = n_groups;
  self->first_module = have_scheme ? g_strdup (first) : NULL;
  self->lm_head_quantized = lm_head;
  return slim_safetensors_writer_restore_state (self->weights, weights, error);
}
