/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ascend-writer.c: the ascendv1 / mindie output folder (see
 * slim-ascend-writer.h for the tensor table and order).
 *
 * Files written into out_dir, ascendv1 (msModelSlim save/ascendv1.py):
 *   quant_model_weights.safetensors                (part_file_size 0), or
 *   quant_model_weights-0000i-of-0000N.safetensors + ...safetensors.index.json
 *   quant_model_description.json                   4-space indented, keys in
 *                                                  write order, then version,
 *                                                  model_quant_type, metadata,
 *                                                  group_size, optional
 *   *.json, *.py, *.txt, *.jinja of the model      except *index.json, mode 0600;
 *                                                  config.json without
 *                                                  quantization_config
 * mindie (save/mindie_format.py): prefix quant_model_weight, only *.json and
 * *.py copied, config.json untouched (but for the tie below), the
 * description holds the tensor keys plus model_quant_type (the last
 * quantized label written) and, once a label was written, is named
 * quant_model_description_<label>.json (lower case) as is the unsharded
 * weight file (quant_model_weight_<label>.safetensors).
 * Both formats: when config.json says tie_word_embeddings: true but the
 * lm_head written (from the head unit) is not the embedding written (a
 * rotation or a quantizer changed it), the copy says false, so that the
 * saved lm_head is the one loaded.
 */
#include "slim-ascend-writer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <glib/gstdio.h>

#include "slim-error.h"
#include "slim-json.h"
#include "slim-model-files.h"
#include "slim-online-rotation.h"
#include "slim-nf4.h"
#include "slim-pack.h"
#include "slim-qattention.h"
#include "slim-qlinear.h"
#include "slim-qscheme.h"
#include "slim-safetensors.h"

struct _SlimAscendWriter
{
  SlimAscendFormat format;
  char *out_dir;
  gboolean deq_scale_f32;
  SlimSafetensorsWriter *weights;
  guint64 shard_bytes;
  GPtrArray *keys;        /* char *, description keys in write order */
  GHashTable *labels;     /* key (owned by keys) -> char * label (owned) */
  char *model_quant_type; /* ascendv1: by priority; mindie: last label (NULL = none) */
  gint64 group_size;
  char *deferred_path; /* the held-back embeddings, a safetensors file in out_dir */
  GPtrArray *deferred; /* char *, their tensor names in write order */
  /* tied embeddings: SHA-256 of the embedding as written (set when the
   * held-back embeddings are flushed, right before the head); untied is
   * set when the head's lm_head differs from it (a rotated or quantized
   * lm_head), and config.json then says tie_word_embeddings: false */
  char *embed_digest;
  gboolean untied;
  /* attention quantization (slim_ascend_write_qattentions): description
   * keys that are no tensor, "<attn>.quant_type" (FA3), then the global
   * keys kv_cache_type / kv_quant_type / fa_quant_type, each in the order
   * first set, written after the tensor keys */
  GPtrArray *attn_keys;    /* char * */
  GHashTable *attn_values; /* key (owned by attn_keys) -> char * (owned) */
  GPtrArray *global_keys;  /* char * */
  GHashTable *global_values;
  /* QuaRot (ascendv1): the linears whose input is rotated online, in write
   * order (their matrices are in the weight files without a description
   * key, as msModelSlim writes them), metadata.quarot's max_tp_size, and
   * whether optional/quarot.safetensors was written */
  GPtrArray *quarot_heads; /* char *, o_proj names */
  GPtrArray *quarot_kron;  /* char *, down_proj names */
  GPtrArray *quarot_had;   /* char *, down_proj names (full Hadamard rotation) */
  gint64 quarot_max_tp;    /* 0 until a heads rotation is written */
  gboolean quarot_global;
  gboolean finished;
};

/* The W4A16 extension ranks between W8A16 and W8A8_DYNAMIC (fewer weight
 * bits, float activations); every other label uses msModelSlim's list. */
static int
slim_ascend_label_rank (const char *label)
{
  int p;

  if (strcmp (label, "W4A16") == 0 || strcmp (label, "NF4") == 0)
    return 2 * slim_quant_label_priority ("W8A16") + 1;
  p = slim_quant_label_priority (label);
  return p < 0 ? -1 : 2 * p;
}

static void
slim_ascend_writer_update_quant_type (SlimAscendWriter *self, const char *label)
{
  if (self->format == SLIM_ASCEND_FORMAT_MINDIE)
    {
      /* mindie records the last quantized label; float linears do not count */
      if (strcmp (label, "FLOAT") != 0)
        {
          g_free (self->model_quant_type);
          self->model_quant_type = g_strdup (label);
        }
      return;
    }
  if (slim_ascend_label_rank (label) < 0)
    return;
  if (slim_ascend_label_rank (self->model_quant_type) < 0
      || slim_ascend_label_rank (label) > slim_ascend_label_rank (self->model_quant_type))
    {
      g_free (self->model_quant_type);
      self->model_quant_type = g_strdup (label);
    }
}

/**
 * slim_ascend_writer_new:
 * @format: ascendv1 or mindie
 * @out_dir: the output folder (created if missing)
 * @shard_bytes: part_file_size in bytes, 0 for one unsharded file
 * @deq_scale_f32: write W8A8 deq_scale as float32 instead of int64
 *   (ascendv1 does for bfloat16 models; ignored by mindie, always float32)
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a writer, %NULL when @out_dir
 *   cannot be created
 */
SlimAscendWriter *
slim_ascend_writer_new (SlimAscendFormat format,
                        const char *out_dir,
                        guint64 shard_bytes,
                        gboolean deq_scale_f32,
                        GError **error)
{
  g_autoptr (SlimSafetensorsWriter) weights = NULL;
  SlimAscendWriter *self;

  g_return_val_if_fail (out_dir != NULL, NULL);
  g_return_val_if_fail (
      format == SLIM_ASCEND_FORMAT_ASCENDV1 || format == SLIM_ASCEND_FORMAT_MINDIE, NULL);

  weights = slim_safetensors_writer_new (out_dir,
                                         format == SLIM_ASCEND_FORMAT_MINDIE
                                             ? SLIM_MINDIE_WEIGHTS_PREFIX
                                             : SLIM_ASCENDV1_WEIGHTS_PREFIX,
                                         shard_bytes, error);
  if (weights == NULL)
    return NULL;
  self = g_new0 (SlimAscendWriter, 1);
  self->format = format;
  self->out_dir = g_strdup (out_dir);
  self->deq_scale_f32 = format == SLIM_ASCEND_FORMAT_MINDIE || deq_scale_f32;
  self->weights = g_steal_pointer (&weights);
  self->shard_bytes = shard_bytes;
  self->keys = g_ptr_array_new_with_free_func (g_free);
  self->labels = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  self->model_quant_type
      = format == SLIM_ASCEND_FORMAT_MINDIE ? NULL : g_strdup (SLIM_QUANT_LABEL_UNKNOWN);
  self->deferred = g_ptr_array_new_with_free_func (g_free);
  self->attn_keys = g_ptr_array_new_with_free_func (g_free);
  self->attn_values = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  self->global_keys = g_ptr_array_new_with_free_func (g_free);
  self->global_values = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  self->quarot_heads = g_ptr_array_new_with_free_func (g_free);
  self->quarot_kron = g_ptr_array_new_with_free_func (g_free);
  self->quarot_had = g_ptr_array_new_with_free_func (g_free);
  self->deferred_path
      = g_strdup_printf ("%s/.%s-deferred.safetensors", out_dir,
                         format == SLIM_ASCEND_FORMAT_MINDIE ? SLIM_MINDIE_WEIGHTS_PREFIX
                                                             : SLIM_ASCENDV1_WEIGHTS_PREFIX);
  return self;
}

/**
 * slim_ascend_writer_free:
 * @self: (nullable): a writer
 *
 * Drops the writer; the partial files of a writer not finished are
 * removed.
 */
void
slim_ascend_writer_free (SlimAscendWriter *self)
{
  if (self == NULL)
    return;
  g_clear_object (&self->weights);
  g_free (self->out_dir);
  g_hash_table_unref (self->labels);
  g_ptr_array_unref (self->keys);
  g_free (self->model_quant_type);
  g_ptr_array_unref (self->deferred);
  g_hash_table_unref (self->attn_values);
  g_ptr_array_unref (self->attn_keys);
  g_hash_table_unref (self->global_values);
  g_ptr_array_unref (self->global_keys);
  g_ptr_array_unref (self->quarot_heads);
  g_ptr_array_unref (self->quarot_kron);
  g_ptr_array_unref (self->quarot_had);
  if (!self->finished)
    g_unlink (self->deferred_path);
  g_free (self->deferred_path);
  g_free (self->embed_digest);
  g_free (self);
}

/**
 * slim_ascend_writer_get_model_quant_type:
 * @self: a writer
 *
 * Returns: (transfer none) (nullable): the model_quant_type so far
 *   ("Unknown" before any linear for ascendv1, %NULL for mindie)
 */
const char *
slim_ascend_writer_get_model_quant_type (SlimAscendWriter *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->model_quant_type;
}

/* Adds @tensor (transfer full) under its own name with @label. */
static gboolean
slim_ascend_writer_add (SlimAscendWriter *self,
                        SlimTensor *tensor,
                        const char *label,
                        GError **error)
{
  g_autoptr (SlimTensor) owned = tensor;
  const char *name;
  char *key;

  if (owned == NULL)
    {
      /* only a reshape of an already checked scale can get here */
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "internal error: a derived tensor could not be built");
      return FALSE;
    }
  name = slim_tensor_get_name (owned);
  if (!slim_safetensors_writer_add (self->weights, owned, error))
    return FALSE;
  /* the safetensors writer rejects duplicates, so every key is new */
  key = g_strdup (name);
  g_ptr_array_add (self->keys, key);
  g_hash_table_insert (self->labels, key, g_strdup (label));
  return TRUE;
}

/* A share of @tensor named @name: the tensor itself when already so named. */
static SlimTensor *
slim_ascend_named (SlimTensor *tensor, const char *name)
{
  if (g_strcmp0 (slim_tensor_get_name (tensor), name) == 0)
    return slim_tensor_ref (tensor);
  return slim_tensor_copy (tensor, name);
}

static SlimTensor *
slim_ascend_new_2d (
    const char *module, const char *suffix, SlimDType dtype, gint64 rows, gint64 cols)
{
  g_autofree char *name = g_strconcat (module, suffix, NULL);
  return slim_tensor_new_2d (name, dtype, rows, cols);
}

static gboolean
slim_ascend_check_f32 (
    const SlimQLinear *q, SlimTensor *t, const char *what, gint64 rows, gint64 cols, GError **error)
{
  if (t == NULL || slim_tensor_get_dtype (t) != SLIM_DTYPE_F32
      || slim_tensor_get_n_elements (t) != rows * cols)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): %s must be float32 with %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " elements",
                   q->module, q->label, what, rows, cols);
      return FALSE;
    }
  if (!slim_tensor_is_finite (t))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "%s (%s): %s has non-finite values", q->module, q->label, what);
      return FALSE;
    }
  return TRUE;
}

/* Checks the record's shapes; *n_cols is the scale columns (1 or in / gs). */
static gboolean
slim_ascend_check_record (const SlimQLinear *q, gint64 *n_cols, GError **error)
{
  gboolean per_group = q->weight.scope == SLIM_QSCOPE_PER_GROUP;

  if (q->n_out <= 0 || q->n_in <= 0 || q->weight_q == NULL
      || slim_tensor_get_dtype (q->weight_q) != SLIM_DTYPE_I8
      || slim_tensor_get_n_dims (q->weight_q) != 2
      || slim_tensor_get_dim (q->weight_q, 0) != q->n_out
      || slim_tensor_get_dim (q->weight_q, 1) != q->n_in)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): the quantized weight must be int8 (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ")",
                   q->module, q->label, q->n_out, q->n_in);
      return FALSE;
    }
  if (per_group && (q->group_size <= 0 || q->n_in % q->group_size != 0))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): group_size %" G_GINT64_FORMAT " does not divide %" G_GINT64_FORMAT
                   " input features",
                   q->module, q->label, q->group_size, q->n_in);
      return FALSE;
    }
  *n_cols = per_group ? q->n_in / q->group_size : 1;
  return slim_ascend_check_f32 (q, q->weight_scale, "weight_scale", q->n_out, *n_cols, error)
         && slim_ascend_check_f32 (q, q->weight_offset, "weight_offset", q->n_out, *n_cols, error);
}

/* weight_scale / weight_offset as (n_out, n_cols) named <module>.<suffix>. */
static SlimTensor *
slim_ascend_scale_2d (const SlimQLinear *q, SlimTensor *t, const char *suffix, gint64 n_cols)
{
  g_autofree char *name = g_strconcat (q->module, suffix, NULL);
  gint64 shape[2] = { q->n_out, n_cols };
  g_autoptr (SlimTensor) named = slim_ascend_named (t, name);

  return slim_tensor_reshape (named, 2, shape, NULL);
}

static SlimTensor *
slim_ascend_zeros_like_scale (const SlimQLinear *q, const char *suffix, gint64 n_cols)
{
  return slim_ascend_new_2d (q->module, suffix, SLIM_DTYPE_F32, q->n_out, n_cols);
}

/* The W8A8 static tensors after weight: quant_bias, input_scale,
 * input_offset, deq_scale. */
static gboolean
slim_ascend_write_static (SlimAscendWriter *self,
                          const SlimQLinear *q,
                          SlimTensor *bias,
                          GError **error)
{
  g_autofree float *deq = g_new (float, q->n_out); /* (n_out) */
  g_autofree char *qb_name = g_strconcat (q->module, ".quant_bias", NULL);
  g_autofree char *is_name = g_strconcat (q->module, ".input_scale", NULL);
  g_autofree char *io_name = g_strconcat (q->module, ".input_offset", NULL);
  g_autofree char *deq_name = g_strconcat (q->module, ".deq_scale", NULL);
  g_autoptr (SlimTensor) quant_bias = slim_tensor_new_1d (qb_name, SLIM_DTYPE_I32, q->n_out);
  g_autoptr (SlimTensor) input_scale = slim_tensor_new_1d (is_name, SLIM_DTYPE_F32, 1);
  g_autoptr (SlimTensor) input_offset = slim_tensor_new_1d (io_name, SLIM_DTYPE_F32, 1);
  g_autoptr (SlimTensor) deq_scale = NULL;

  if (!isfinite (q->input_scale) || !(q->input_scale > 0.0f) || !isfinite (q->input_offset))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "%s (%s): input_scale %g / input_offset %g are not usable", q->module, q->label,
                   (double)q->input_scale, (double)q->input_offset);
      return FALSE;
    }
  slim_deq_scale_compute (q->input_scale, slim_tensor_get_data (q->weight_scale), q->n_out, deq);
  if (!slim_quant_bias_compute (bias != NULL ? slim_tensor_get_data (bias) : NULL, deq,
                                q->input_offset, slim_tensor_get_data (q->weight_q), q->n_out,
                                q->n_in, slim_tensor_get_data_mut (quant_bias), error))
    {
      g_prefix_error (error, "%s (%s): ", q->module, q->label);
      return FALSE;
    }
  ((float *)slim_tensor_get_data_mut (input_scale))[0] = q->input_scale;
  ((float *)slim_tensor_get_data_mut (input_offset))[0] = q->input_offset;
  if (self->deq_scale_f32)
    {
      deq_scale = slim_tensor_new_1d (deq_name, SLIM_DTYPE_F32, q->n_out);
      memcpy (slim_tensor_get_data_mut (deq_scale), deq, (gsize)q->n_out * sizeof (float));
    }
  else
    {
      gint64 *out;

      deq_scale = slim_tensor_new_1d (deq_name, SLIM_DTYPE_I64, q->n_out);
      out = slim_tensor_get_data_mut (deq_scale);
      for (gint64 n = 0; n < q->n_out; n++)
        out[n] = slim_deq_scale_to_int64 (deq[n]);
    }
  return slim_ascend_writer_add (self, g_steal_pointer (&quant_bias), q->label, error)
         && slim_ascend_writer_add (self, g_steal_pointer (&input_scale), q->label, error)
         && slim_ascend_writer_add (self, g_steal_pointer (&input_offset), q->label, error)
         && slim_ascend_writer_add (self, g_steal_pointer (&deq_scale), q->label, error);
}

static gboolean
slim_ascend_write_w4a8 (SlimAscendWriter *self, const SlimQLinear *q, GError **error)
{
  gint64 sb_shape[2];
  g_autoptr (SlimTensor) packed = NULL;
  g_autoptr (SlimTensor) scale_bias = NULL;

  if (!slim_w4a8_scale_bias_shape (q->module, q->n_out, q->n_in, SLIM_W4A8_TP_NUM, sb_shape, error))
    {
      g_prefix_error (error, "%s (%s): ", q->module, q->label);
      return FALSE;
    }
  if (q->n_out % 2 != 0)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s (W4A8_DYNAMIC): packing pairs output rows, %" G_GINT64_FORMAT " is odd",
                   q->module, q->n_out);
      return FALSE;
    }
  packed = slim_ascend_new_2d (q->module, ".weight", SLIM_DTYPE_I8, q->n_out / 2, q->n_in);
  scale_bias
      = slim_ascend_new_2d (q->module, ".scale_bias", SLIM_DTYPE_F32, sb_shape[0], sb_shape[1]);
  if (!slim_pack_w4a8_int4 (slim_tensor_get_data (q->weight_q), q->n_out, q->n_in,
                            slim_tensor_get_data_mut (packed), error)
      || !slim_w4a8_scale_bias (q->module, slim_tensor_get_data (q->weight_q),
                                slim_tensor_get_data (q->weight_scale), q->n_out, q->n_in,
                                SLIM_W4A8_TP_NUM, slim_tensor_get_data_mut (scale_bias), error))
    {
      g_prefix_error (error, "%s (%s): ", q->module, q->label);
      return FALSE;
    }
  return slim_ascend_writer_add (self, g_steal_pointer (&packed), q->label, error)
         && slim_ascend_writer_add (
             self, slim_ascend_scale_2d (q, q->weight_scale, ".weight_scale", 1), q->label, error)
         && slim_ascend_writer_add (self, slim_ascend_zeros_like_scale (q, ".weight_offset", 1),
                                    q->label, error)
         && slim_ascend_writer_add (self, g_steal_pointer (&scale_bias), q->label, error);
}

static gboolean
slim_ascend_unsupported (SlimAscendWriter *self, const SlimQLinear *q, GError **error)
{
  if (self->format == SLIM_ASCEND_FORMAT_MINDIE)
    g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                 "%s: %s%s is not supported by mindie_format_saver; use ascendv1_saver", q->module,
                 q->label, q->weight.scope == SLIM_QSCOPE_PER_GROUP ? " per-group" : "");
  else
    g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                 "%s: label %s cannot be saved by ascendv1_saver", q->module, q->label);
  return FALSE;
}

/* MX per_block (W8A8_MXFP8, W4A8_MXFP, W4A4_MXFP4; msModelSlim
 * on_w8a8_mx_dynamic_per_block, on_w4a*_mx_dynamic_per_block): weight as
 * float8_e4m3fn (n_out, n_in), or the E2M1 codes packed two per byte
 * (pack_fp4_to_uint8) as uint8 (n_out, n_in / 2); weight_scale = shared
 * exponent + 127 as uint8 (n_out, ceil (n_in / 32)); group_size 32. */
static gboolean
slim_ascend_write_mx (SlimAscendWriter *self, const SlimQLinear *q, GError **error)
{
  gboolean fp4 = q->weight.dtype == SLIM_QDTYPE_MXFP4;
  SlimDType want = fp4 ? SLIM_DTYPE_F4X2_E2M1 : SLIM_DTYPE_F8_E4M3FN;
  gint64 n_blocks = (q->n_in + 31) / 32;
  g_autofree char *weight_name = g_strconcat (q->module, ".weight", NULL);
  SlimTensor *weight;

  if (q->n_out <= 0 || q->n_in <= 0 || q->weight_q == NULL
      || slim_tensor_get_dtype (q->weight_q) != want || slim_tensor_get_n_dims (q->weight_q) != 2
      || slim_tensor_get_dim (q->weight_q, 0) != q->n_out
      || slim_tensor_get_dim (q->weight_q, 1) != q->n_in || (fp4 && q->n_in % 2 != 0))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): the MX weight must be %s (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ")%s",
                   q->module, q->label, slim_dtype_get_name (want), q->n_out, q->n_in,
                   fp4 ? " with an even width" : "");
      return FALSE;
    }
  if (q->weight_scale == NULL || slim_tensor_get_dtype (q->weight_scale) != SLIM_DTYPE_U8
      || slim_tensor_get_n_elements (q->weight_scale) != q->n_out * n_blocks)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): the MX weight_scale must be uint8 (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ")",
                   q->module, q->label, q->n_out, n_blocks);
      return FALSE;
    }
  if (fp4)
    {
      /* the same bytes, as safetensors' U8 (it has no FP4 dtype) */
      weight = slim_tensor_new_2d (weight_name, SLIM_DTYPE_U8, q->n_out, q->n_in / 2);
      memcpy (slim_tensor_get_data_mut (weight), slim_tensor_get_data (q->weight_q),
              slim_tensor_get_n_bytes (weight));
    }
  else
    weight = slim_ascend_named (q->weight_q, weight_name);
  self->group_size = 32;
  if (!slim_ascend_writer_add (self, weight, q->label, error)
      || !slim_ascend_writer_add (
          self, slim_ascend_scale_2d (q, q->weight_scale, ".weight_scale", n_blocks), q->label,
          error))
    return FALSE;
  if (q->weight.scope != SLIM_QSCOPE_DUAL_SCALE)
    return TRUE;
  /* W4A4_MXFP4_DUALSCALE (on_w4a4_mx_dynamic_dual_scale): + the float32
   * dual scales, (n_out, ceil (n_in / dual_block_size), 1) as the
   * module's weight_dual_scale parameter */
  if (q->dual_block_size <= 0 || q->weight_dual_scale == NULL
      || slim_tensor_get_dtype (q->weight_dual_scale) != SLIM_DTYPE_F32
      || slim_tensor_get_n_elements (q->weight_dual_scale)
             != q->n_out * ((q->n_in + q->dual_block_size - 1) / q->dual_block_size))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): the weight_dual_scale must be float32 (%" G_GINT64_FORMAT
                   ", ceil (%" G_GINT64_FORMAT " / dual_block_size), 1)",
                   q->module, q->label, q->n_out, q->n_in);
      return FALSE;
    }
  {
    g_autofree char *ds_name = g_strconcat (q->module, ".weight_dual_scale", NULL);

    return slim_ascend_writer_add (self, slim_ascend_named (q->weight_dual_scale, ds_name),
                                   q->label, error);
  }
}

/* WFP8AFP8_DYNAMIC (msModelSlim on_wfp8afp8_dynamic_per_channel): weight
 * float8_e4m3fn (n_out, n_in), weight_scale f32 (n_out, 1), weight_offset
 * f32 zeros (n_out, 1). */
static gboolean
slim_ascend_write_fp8 (SlimAscendWriter *self, const SlimQLinear *q, GError **error)
{
  g_autofree char *weight_name = g_strconcat (q->module, ".weight", NULL);

  if (q->n_out <= 0 || q->n_in <= 0 || q->weight_q == NULL
      || slim_tensor_get_dtype (q->weight_q) != SLIM_DTYPE_F8_E4M3FN
      || slim_tensor_get_n_elements (q->weight_q) != q->n_out * q->n_in)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): the weight must be f8_e4m3fn (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ")",
                   q->module, q->label, q->n_out, q->n_in);
      return FALSE;
    }
  if (!slim_ascend_check_f32 (q, q->weight_scale, "weight_scale", q->n_out, 1, error))
    return FALSE;
  return slim_ascend_writer_add (self, slim_ascend_named (q->weight_q, weight_name), q->label,
                                 error)
         && slim_ascend_writer_add (
             self, slim_ascend_scale_2d (q, q->weight_scale, ".weight_scale", 1), q->label, error)
         && slim_ascend_writer_add (self, slim_ascend_zeros_like_scale (q, ".weight_offset", 1),
                                    q->label, error);
}

/* NF4 (QuantConfig w_method NF): weight = the codes packed two per byte,
 * high nibble first, uint8 (n_out, n_in / 2): the bytes of msModelSlim's
 * LinearNf4Quantizer (which stores them flat, (n_out * n_in / 2)), and weight_absmax f32 (n_out,
 * n_in / group_size), which msModelSlim keeps in the module but does not write (its folder cannot
 * be dequantized without it): slimflow's addition. */
static gboolean
slim_ascend_write_nf4 (SlimAscendWriter *self, const SlimQLinear *q, GError **error)
{
  g_autofree char *weight_name = g_strconcat (q->module, ".weight", NULL);
  g_autofree char *absmax_name = g_strconcat (q->module, ".weight_absmax", NULL);
  gint64 n = q->n_out * q->n_in, n_groups;
  SlimTensor *packed, *absmax;

  if (q->n_out <= 0 || q->n_in <= 0 || q->n_in % 2 != 0 || q->group_size <= 0
      || q->n_in % q->group_size != 0 || q->weight_q == NULL
      || slim_tensor_get_dtype (q->weight_q) != SLIM_DTYPE_U8
      || slim_tensor_get_n_elements (q->weight_q) != n)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (NF4): the codes must be uint8 (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ") with an even width, in groups of group_size %" G_GINT64_FORMAT,
                   q->module, q->n_out, q->n_in, q->group_size);
      return FALSE;
    }
  n_groups = q->n_in / q->group_size;
  if (!slim_ascend_check_f32 (q, q->weight_scale, "weight_absmax", q->n_out, n_groups, error))
    return FALSE;
  packed = slim_tensor_new_2d (weight_name, SLIM_DTYPE_U8, q->n_out, q->n_in / 2);
  slim_nf4_pack (slim_tensor_get_data (q->weight_q), n, slim_tensor_get_data_mut (packed));
  absmax = slim_tensor_copy (q->weight_scale, absmax_name);
  self->group_size = q->group_size;
  return slim_ascend_writer_add (self, packed, q->label, error)
         && slim_ascend_writer_add (self, absmax, q->label, error);
}

/* Writes the label's tensors of one deployed linear (spec 3.1 table). */
static gboolean
slim_ascend_write_qlinear (SlimAscendWriter *self,
                           const SlimQLinear *q,
                           SlimTensor *bias, /* nullable, (n_out) */
                           GError **error)
{
  const char *label = q->label;
  gboolean mindie = self->format == SLIM_ASCEND_FORMAT_MINDIE;
  gboolean per_group = q->weight.scope == SLIM_QSCOPE_PER_GROUP;
  gboolean ok;
  gint64 n_cols = 1;
  g_autofree char *weight_name = g_strconcat (q->module, ".weight", NULL);
  gboolean mx
      = q->weight.scope == SLIM_QSCOPE_PER_BLOCK || q->weight.scope == SLIM_QSCOPE_DUAL_SCALE;
  /* the bias of a dual-scale linear carries its label
   * (on_w4a4_mx_dynamic_dual_scale), every other one FLOAT */
  const char *bias_label = q->weight.scope == SLIM_QSCOPE_DUAL_SCALE ? label : "FLOAT";
  gboolean fp8 = q->weight.dtype == SLIM_QDTYPE_FP8_E4M3;

  gboolean nf4 = strcmp (label, "NF4") == 0;

  if (!mx && !fp8 && !nf4 && !slim_ascend_check_record (q, &n_cols, error))
    return FALSE;
  if (bias != NULL
      && (slim_tensor_get_dtype (bias) != SLIM_DTYPE_F32
          || slim_tensor_get_n_elements (bias) != q->n_out))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: bias must be float32 with %" G_GINT64_FORMAT " elements", q->module,
                   q->n_out);
      return FALSE;
    }

  if (nf4)
    {
      if (mindie)
        return slim_ascend_unsupported (self, q, error);
      ok = slim_ascend_write_nf4 (self, q, error);
    }
  else if (mx)
    {
      /* mindie_format_saver has W8A8_MXFP8 and W4A4_MXFP4 (+ dual scale) only */
      if (mindie && strcmp (label, "W8A8_MXFP8") != 0 && strcmp (label, "W4A4_MXFP4") != 0
          && strcmp (label, "W4A4_MXFP4_DUALSCALE") != 0)
        return slim_ascend_unsupported (self, q, error);
      ok = slim_ascend_write_mx (self, q, error);
    }
  else if (fp8 && q->act.dtype == SLIM_QDTYPE_FLOAT)
    {
      /* weight-only fp8: no msModelSlim IR (no registered float act x
       * fp8_e4m3 weight pair), hence no ascendv1 layout to follow */
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: %s (float activations, fp8_e4m3 per_channel weights) cannot be saved by "
                   "%s: msModelSlim has no IR for weight-only fp8, so ascendv1 defines no "
                   "layout for it; use compressed_tensors (vLLM's FP8 weight-only layout)",
                   q->module, q->label, mindie ? "mindie_format_saver" : "ascendv1_saver");
      return FALSE;
    }
  else if (fp8)
    {
      /* mindie_format_saver refuses FP8 dynamic (UnsupportedError) */
      if (mindie)
        return slim_ascend_unsupported (self, q, error);
      ok = slim_ascend_write_fp8 (self, q, error);
    }
  else if (strcmp (label, "W8A8") == 0 || strcmp (label, "W8A8_MIX") == 0)
    {
      gboolean mix = strcmp (label, "W8A8_MIX") == 0;

      if (mindie && mix)
        return slim_ascend_unsupported (self, q, error);
      ok = slim_ascend_writer_add (self, slim_ascend_named (q->weight_q, weight_name), label, error)
           && slim_ascend_write_static (self, q, bias, error);
      if (ok && mix)
        ok = slim_ascend_writer_add (
                 self, slim_ascend_scale_2d (q, q->weight_scale, ".weight_scale", 1), label, error)
             && slim_ascend_writer_add (self, slim_ascend_zeros_like_scale (q, ".weight_offset", 1),
                                        label, error);
    }
  else if (strcmp (label, "W8A8_DYNAMIC") == 0 || strcmp (label, "W8A16") == 0
           || strcmp (label, "W4A16") == 0 || strcmp (label, "W4A4_DYNAMIC") == 0)
    {
      if (mindie && (strcmp (label, "W8A8_DYNAMIC") != 0 || per_group))
        return slim_ascend_unsupported (self, q, error);
      ok = slim_ascend_writer_add (self, slim_ascend_named (q->weight_q, weight_name), label, error)
           && slim_ascend_writer_add (
               self, slim_ascend_scale_2d (q, q->weight_scale, ".weight_scale", n_cols), label,
               error)
           && slim_ascend_writer_add (
               self, slim_ascend_scale_2d (q, q->weight_offset, ".weight_offset", n_cols), label,
               error);
      if (per_group)
        self->group_size = q->group_size;
    }
  else if (strcmp (label, "W4A8_DYNAMIC") == 0)
    {
      if (mindie)
        return slim_ascend_unsupported (self, q, error);
      ok = slim_ascend_write_w4a8 (self, q, error);
    }
  else
    return slim_ascend_unsupported (self, q, error);

  if (ok && bias != NULL)
    {
      g_autofree char *bias_name = g_strconcat (q->module, ".bias", NULL);
      ok = slim_ascend_writer_add (self, slim_ascend_named (bias, bias_name), bias_label, error);
    }
  if (ok)
    slim_ascend_writer_update_quant_type (self, label);
  return ok;
}

/* A FLOAT tensor in the dtype it had in the model files (transfer full). */
static SlimTensor *
slim_ascend_float_tensor (SlimLayer *layer, SlimTensor *tensor, GError **error)
{
  const char *name = slim_tensor_get_name (tensor);
  SlimDType dtype = slim_layer_get_source_dtype (layer, name);

  if (dtype == slim_tensor_get_dtype (tensor))
    return slim_tensor_ref (tensor);
  return slim_tensor_convert (tensor, dtype, error);
}

/* W16A16S (float_sparse): the layer's pruned float weight and its bias, in
 * the dtype the model stored them in, both labelled W16A16S (msModelSlim
 * on_w16a16s writes the module's parameters).  mindie refuses the label. */
static gboolean
slim_ascend_write_w16a16s (SlimAscendWriter *self,
                           SlimLayer *layer,
                           const SlimQLinear *q,
                           GError **error)
{
  const char *suffixes[] = { ".weight", ".bias" };

  if (self->format == SLIM_ASCEND_FORMAT_MINDIE)
    return slim_ascend_unsupported (self, q, error);
  for (gsize k = 0; k < G_N_ELEMENTS (suffixes); k++)
    {
      g_autofree char *name = g_strconcat (q->module, suffixes[k], NULL);
      SlimTensor *tensor = slim_layer_get_tensor (layer, name);
      SlimTensor *t;
      gint64 n_expected = k == 0 ? q->n_out * q->n_in : q->n_out;

      if (tensor == NULL && k == 1)
        break;
      if (tensor == NULL || slim_tensor_get_n_elements (tensor) != n_expected)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                       "%s (W16A16S): %s must be in the layer with %" G_GINT64_FORMAT " values",
                       q->module, name, n_expected);
          return FALSE;
        }
      if (!slim_tensor_is_finite (tensor))
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                       "%s (W16A16S): %s has non-finite values", q->module, name);
          return FALSE;
        }
      t = slim_ascend_float_tensor (layer, tensor, error);
      if (t == NULL || !slim_ascend_writer_add (self, t, q->label, error))
        return FALSE;
    }
  slim_ascend_writer_update_quant_type (self, q->label);
  return TRUE;
}

/* SHA-256 of a tensor's bytes (dtype and shape included). */
static char *
slim_ascend_tensor_digest (SlimTensor *t)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *shape = slim_tensor_shape_to_string (t);
  const char *dtype = slim_dtype_get_name (slim_tensor_get_dtype (t));

  g_checksum_update (sum, (const guchar *)dtype, (gssize)strlen (dtype));
  g_checksum_update (sum, (const guchar *)shape, (gssize)strlen (shape));
  g_checksum_update (sum, slim_tensor_get_data (t), (gssize)slim_tensor_get_n_bytes (t));
  return g_strdup (g_checksum_get_string (sum));
}

/* The head's lm_head (its first linear) against the embedding as written:
 * a quantized lm_head or other bytes untie them. */
static void
slim_ascend_writer_check_tie (SlimAscendWriter *self,
                              SlimLayer *layer,
                              const char *name,
                              SlimTensor *written)
{
  const char *const *linears = slim_layer_get_linear_names (layer);
  g_autofree char *lm_weight = NULL;
  g_autofree char *digest = NULL;

  if (self->embed_digest == NULL || linears == NULL || linears[0] == NULL)
    return;
  lm_weight = g_strconcat (linears[0], ".weight", NULL);
  if (strcmp (name, lm_weight) != 0)
    return;
  if (written == NULL)
    {
      self->untied = TRUE;
      return;
    }
  digest = slim_ascend_tensor_digest (written);
  if (strcmp (digest, self->embed_digest) != 0)
    self->untied = TRUE;
}

/* ---- QuaRot ------------------------------------------------------------ */

/* Weight-file tensors without a description key (the online rotations). */
static guint
slim_ascend_n_unlabeled (SlimAscendWriter *self)
{
  return self->quarot_heads->len + 2 * self->quarot_kron->len + self->quarot_had->len;
}

/* An online rotation matrix of a linear (slim-online-rotation.h), written
 * as is (float32) with no description key; heads rotations and the
 * Kronecker _m matrices name their linear in metadata.quarot.  The
 * max_tp_size there is the order of the heads rotation's Hadamard blocks
 * (quarot builds R = blockdiag of the max_tp_size randomized Hadamard, no
 * zero inside a block), read back as the nonzeros of its first row. */
static gboolean
slim_ascend_write_online_rotation (SlimAscendWriter *self, SlimTensor *t, GError **error)
{
  const char *name = slim_tensor_get_name (t);

  if (self->format == SLIM_ASCEND_FORMAT_MINDIE)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: QuaRot online rotations are saved by ascendv1_saver only (its "
                   "description's metadata.quarot lists them)",
                   name);
      return FALSE;
    }
  if (slim_tensor_get_dtype (t) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (t) != 2
      || slim_tensor_get_dim (t, 0) != slim_tensor_get_dim (t, 1))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: an online rotation must be a square float32 matrix", name);
      return FALSE;
    }
  if (g_str_has_suffix (name, SLIM_ONLINE_ROTATION_HEADS))
    {
      const float *r = slim_tensor_get_data (t); /* (n, n) */
      gint64 nz = 0;

      for (gint64 j = 0; j < slim_tensor_get_dim (t, 1); j++)
        nz += r[j] != 0.0f;
      if (self->quarot_max_tp != 0 && nz != self->quarot_max_tp)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: blocks of %" G_GINT64_FORMAT
                       ", earlier heads rotations had %" G_GINT64_FORMAT
                       " (one max_tp_size per model)",
                       name, nz, self->quarot_max_tp);
          return FALSE;
        }
      self->quarot_max_tp = nz;
      g_ptr_array_add (self->quarot_heads,
                       g_strndup (name, strlen (name) - strlen (SLIM_ONLINE_ROTATION_HEADS)));
    }
  else if (g_str_has_suffix (name, SLIM_ONLINE_ROTATION_KRON_M))
    g_ptr_array_add (self->quarot_kron,
                     g_strndup (name, strlen (name) - strlen (SLIM_ONLINE_ROTATION_KRON_M)));
  else if (g_str_has_suffix (name, SLIM_ONLINE_ROTATION_HADAMARD))
    g_ptr_array_add (self->quarot_had,
                     g_strndup (name, strlen (name) - strlen (SLIM_ONLINE_ROTATION_HADAMARD)));
  return slim_safetensors_writer_add (self->weights, t, error);
}

/* optional/quarot.safetensors with the global rotation (msModelSlim
 * on_quarot_extra_info_wrapper), written when the embeddings arrive. */
static gboolean
slim_ascend_write_global_rotation (SlimAscendWriter *self, SlimTensor *t, GError **error)
{
  g_autofree char *dir = g_build_filename (self->out_dir, "optional", NULL);
  g_autofree char *path = g_build_filename (dir, "quarot.safetensors", NULL);
  g_autoptr (SlimTensor) named = slim_tensor_copy (t, "global_rotation");

  if (self->format == SLIM_ASCEND_FORMAT_MINDIE)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "QuaRot extra info (export_extra_info) cannot be saved by mindie_format_saver; "
                   "use ascendv1_saver or export_extra_info: false");
      return FALSE;
    }
  if (g_mkdir_with_parents (dir, 0750) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot create %s: %s", dir, g_strerror (saved_errno));
      return FALSE;
    }
  if (!slim_safetensors_write_file (path, &named, 1, NULL, error))
    return FALSE;
  self->quarot_global = TRUE;
  return TRUE;
}

/* slimflow's metadata.quarot.hadamard_rotation {"layers": [...]}, only
 * when some down_proj has the full Hadamard rotation (quarot
 * down_proj_online_kind: hadamard; msModelSlim has no such key). */
static void
slim_ascend_metadata_hadamard (SlimAscendWriter *self, JsonObject *quarot)
{
  JsonObject *had;
  JsonArray *a;

  if (self->quarot_had->len == 0)
    return;
  had = json_object_new ();
  a = json_array_new ();
  for (guint i = 0; i < self->quarot_had->len; i++)
    json_array_add_string_element (a, g_ptr_array_index (self->quarot_had, i));
  json_object_set_array_member (had, "layers", a);
  json_object_set_object_member (quarot, "hadamard_rotation", had);
}

/* The description's metadata ({} or quarot's online info). */
static JsonObject *
slim_ascend_metadata (SlimAscendWriter *self)
{
  JsonObject *metadata = json_object_new ();
  JsonObject *quarot, *heads, *kron;
  JsonArray *a;

  if (self->quarot_heads->len == 0 && self->quarot_kron->len == 0 && self->quarot_had->len == 0)
    return metadata;
  quarot = json_object_new ();
  json_object_set_int_member (quarot, "max_tp_size", self->quarot_max_tp);
  heads = json_object_new ();
  a = json_array_new ();
  for (guint i = 0; i < self->quarot_heads->len; i++)
    json_array_add_string_element (a, g_ptr_array_index (self->quarot_heads, i));
  json_object_set_array_member (heads, "layers", a);
  json_object_set_object_member (quarot, "heads_rotation", heads);
  kron = json_object_new ();
  a = json_array_new ();
  for (guint i = 0; i < self->quarot_kron->len; i++)
    json_array_add_string_element (a, g_ptr_array_index (self->quarot_kron, i));
  json_object_set_array_member (kron, "layers", a);
  json_object_set_object_member (quarot, "kronecker_rotation", kron);
  slim_ascend_metadata_hadamard (self, quarot);
  json_object_set_object_member (metadata, "quarot", quarot);
  return metadata;
}

/* The description's optional ({} or quarot's rotation map). */
static JsonObject *
slim_ascend_optional (SlimAscendWriter *self)
{
  JsonObject *optional = json_object_new ();
  JsonObject *quarot, *map;

  if (!self->quarot_global)
    return optional;
  map = json_object_new ();
  json_object_set_string_member (map, "global_rotation", "optional/quarot.safetensors");
  quarot = json_object_new ();
  json_object_set_object_member (quarot, "rotation_map", map);
  json_object_set_object_member (optional, "quarot", quarot);
  return optional;
}

static gboolean
slim_ascend_writer_flush_deferred (SlimAscendWriter *self, GError **error)
{
  g_autoptr (SlimSafetensors) held = NULL;

  if (self->deferred->len == 0)
    return TRUE;
  held = slim_safetensors_open (self->deferred_path, error);
  if (held == NULL)
    return FALSE;
  for (guint i = 0; i < self->deferred->len; i++)
    {
      SlimTensor *t
          = slim_safetensors_get_tensor (held, g_ptr_array_index (self->deferred, i), error);
      if (t == NULL)
        return FALSE;
      if (g_str_has_suffix (slim_tensor_get_name (t), "embed_tokens.weight"))
        {
          g_free (self->embed_digest);
          self->embed_digest = slim_ascend_tensor_digest (t);
        }
      if (!slim_ascend_writer_add (self, t, "FLOAT", error))
        return FALSE;
    }
  /* the file itself goes at finish: a run killed before then resumes
   * from a checkpoint that still needs it */
  g_ptr_array_set_size (self->deferred, 0);
  return TRUE;
}

/* Holds the embeddings pseudo-layer back, on disk (they are written after
 * the decoder layers, see slim-ascend-writer.h). */
static gboolean
slim_ascend_writer_defer (SlimAscendWriter *self, SlimLayer *layer, GError **error)
{
  g_autoptr (GPtrArray) tensors
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);

  if (self->deferred->len > 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "the embeddings were written twice");
      return FALSE;
    }
  for (guint i = 0; i < slim_layer_get_n_tensors (layer); i++)
    {
      SlimTensor *src = slim_layer_get_tensor_at (layer, i);
      SlimTensor *t;

      if (g_str_has_suffix (slim_tensor_get_name (src), SLIM_QUAROT_GLOBAL_ROTATION))
        {
          if (!slim_ascend_write_global_rotation (self, src, error))
            return FALSE;
          continue;
        }
      t = slim_ascend_float_tensor (layer, src, error);
      if (t == NULL)
        return FALSE;
      g_ptr_array_add (tensors, t);
    }
  if (!slim_safetensors_write_file (self->deferred_path, (SlimTensor *const *)tensors->pdata,
                                    tensors->len, NULL, error))
    return FALSE;
  for (guint i = 0; i < tensors->len; i++)
    g_ptr_array_add (self->deferred,
                     g_strdup (slim_tensor_get_name (g_ptr_array_index (tensors, i))));
  return TRUE;
}

/* ---- attention quantization (C8, FAQuant) ----------------------------- */

/* Sets key to value in an ordered key list + value table (the table's
 * keys are owned by the list). */
static void
slim_ascend_set_extra (GPtrArray *keys, GHashTable *values, const char *key, const char *value)
{
  gpointer orig = NULL;
  char *owned;

  if (g_hash_table_lookup_extended (values, key, &orig, NULL))
    {
      /* keeps the key, frees the old value */
      g_hash_table_insert (values, orig, g_strdup (value));
      return;
    }
  owned = g_strdup (key);
  g_ptr_array_add (keys, owned);
  g_hash_table_insert (values, owned, g_strdup (value));
}

/* A C8 tensor: values (n) of @t converted to @dtype, named name. */
static gboolean
slim_ascend_add_kv (SlimAscendWriter *self,
                    SlimTensor *t,
                    const char *attn,
                    const char *suffix,
                    SlimDType dtype,
                    GError **error)
{
  g_autofree char *name = g_strconcat (attn, suffix, NULL);
  g_autoptr (SlimTensor) named = slim_ascend_named (t, name);
  SlimTensor *out = dtype == SLIM_DTYPE_F32 ? slim_tensor_ref (named)
                                            : slim_tensor_convert (named, dtype, error);

  return out != NULL && slim_ascend_writer_add (self, out, "C8", error);
}

/* msModelSlim's update_fa_quant_type: branches with the same
 * (dtype, static/dynamic) merged in Q, K, V order, "QKV" prefix omitted,
 * "_DYNAMIC" for dynamic ones, parts joined by "_": "INT8", "QK_INT8". */
static char *
slim_ascend_fa_quant_type (const SlimQAttention *record)
{
  const char letters[] = { 'Q', 'K', 'V' };
  g_autoptr (GString) out = g_string_new (NULL);
  gboolean used[SLIM_QATTENTION_N_BRANCHES] = { FALSE };

  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    {
      g_autoptr (GString) acts = g_string_new (NULL);
      SlimQScheme s = record->fa[b].scheme;
      gboolean dynamic = s.scope == SLIM_QSCOPE_PER_TOKEN || s.scope == SLIM_QSCOPE_PER_BLOCK;

      if (!record->fa[b].enabled || used[b])
        continue;
      for (guint o = b; o < SLIM_QATTENTION_N_BRANCHES; o++)
        {
          SlimQScheme t = record->fa[o].scheme;
          gboolean o_dynamic = t.scope == SLIM_QSCOPE_PER_TOKEN || t.scope == SLIM_QSCOPE_PER_BLOCK;

          if (record->fa[o].enabled && !used[o] && t.dtype == s.dtype && o_dynamic == dynamic)
            {
              used[o] = TRUE;
              g_string_append_c (acts, letters[o]);
            }
        }
      if (out->len > 0)
        g_string_append_c (out, '_');
      if (strcmp (acts->str, "QKV") != 0)
        g_string_append_printf (out, "%s_", acts->str);
      g_string_append (out, s.dtype == SLIM_QDTYPE_INT8 ? "INT8" : "FP8");
      if (dynamic)
        g_string_append (out, "_DYNAMIC");
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The layer's SlimQAttention records (msModelSlim's on_dynamic_cache and
 * _save_activation_per_head), after its other tensors:
 *   C8       <attn>.k_proj.kv_cache_scale, .kv_cache_offset,
 *            <attn>.v_proj.kv_cache_scale, .kv_cache_offset
 *            (n_kv_heads * head_dim), in the k_proj / v_proj weight's
 *            dtype; global kv_cache_type = kv_quant_type = "C8"
 *   FAQuant  static branches: <attn>.fa_{q,k,v}.scale f32 (heads, 1),
 *            .offset zeros (heads, 1), int8 for INT8, float32 for FP8, and
 *            the global fa_quant_type "FAKQuant"; dynamic branches nothing;
 *            every FA3 attention: <attn>.quant_type
 * No label enters model_quant_type (msModelSlim's neither). */
static gboolean
slim_ascend_write_qattentions (SlimAscendWriter *self, SlimLayer *layer, GError **error)
{
  g_autoptr (GPtrArray) records = slim_layer_list_qattentions (layer);

  for (guint i = 0; i < records->len; i++)
    {
      const SlimQAttention *r = g_ptr_array_index (records, i);
      gboolean any_fa = FALSE, any_static = FALSE;

      if (self->format != SLIM_ASCEND_FORMAT_ASCENDV1)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                       "%s: KV-cache (C8) and FA3 (FAQuant) quantization are saved by "
                       "ascendv1_saver only; use ascendv1_saver",
                       r->attn);
          return FALSE;
        }
      if (!slim_qattention_check (r, error))
        return FALSE;
      if (r->kv_cache)
        {
          g_autofree char *k_weight = g_strconcat (r->attn, ".k_proj.weight", NULL);
          g_autofree char *v_weight = g_strconcat (r->attn, ".v_proj.weight", NULL);
          SlimDType k_dtype = slim_layer_get_source_dtype (layer, k_weight);
          SlimDType v_dtype = slim_layer_get_source_dtype (layer, v_weight);

          if (!slim_ascend_add_kv (self, r->k_scale, r->attn, ".k_proj.kv_cache_scale", k_dtype,
                                   error)
              || !slim_ascend_add_kv (self, r->k_offset, r->attn, ".k_proj.kv_cache_offset",
                                      k_dtype, error)
              || !slim_ascend_add_kv (self, r->v_scale, r->attn, ".v_proj.kv_cache_scale", v_dtype,
                                      error)
              || !slim_ascend_add_kv (self, r->v_offset, r->attn, ".v_proj.kv_cache_offset",
                                      v_dtype, error))
            return FALSE;
          slim_ascend_set_extra (self->global_keys, self->global_values, "kv_cache_type", "C8");
          slim_ascend_set_extra (self->global_keys, self->global_values, "kv_quant_type", "C8");
        }
      for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
        {
          const char *branch = slim_qattention_branch_name (b);
          g_autofree char *prefix = NULL;
          SlimTensor *scale, *offset;
          gint64 heads;

          gboolean fp8;

          if (!r->fa[b].enabled)
            continue;
          any_fa = TRUE;
          if (r->fa[b].scheme.scope != SLIM_QSCOPE_PER_HEAD)
            continue; /* dynamic: only the quant_type string */
          fp8 = r->fa[b].scheme.dtype == SLIM_QDTYPE_FP8_E4M3;
          heads = slim_tensor_get_n_elements (r->fa[b].scale); /* checked above */
          prefix = g_strconcat (r->attn, ".", branch, NULL);
          scale = slim_ascend_new_2d (prefix, ".scale", SLIM_DTYPE_F32, heads, 1);
          memcpy (slim_tensor_get_data_mut (scale), slim_tensor_get_data (r->fa[b].scale),
                  (gsize)heads * sizeof (float));
          /* zeros: int8 for INT8, float32 for FP8 */
          offset = slim_ascend_new_2d (prefix, ".offset", fp8 ? SLIM_DTYPE_F32 : SLIM_DTYPE_I8,
                                       heads, 1);
          memset (slim_tensor_get_data_mut (offset), 0, (gsize)heads * (fp8 ? sizeof (float) : 1));
          if (!slim_ascend_writer_add (self, scale, "FAQuant", error)
              || !slim_ascend_writer_add (self, offset, "FAQuant", error))
            return FALSE;
          any_static = TRUE;
        }
      if (any_fa)
        {
          g_autofree char *key = g_strconcat (r->attn, ".quant_type", NULL);
          g_autofree char *value = slim_ascend_fa_quant_type (r);

          slim_ascend_set_extra (self->attn_keys, self->attn_values, key, value);
          /* msModelSlim sets it when saving static per-head scales only */
          if (any_static)
            slim_ascend_set_extra (self->global_keys, self->global_values, "fa_quant_type",
                                   "FAKQuant");
        }
    }
  return TRUE;
}

/* The module of a ".weight" / ".bias" tensor name, else NULL. */
static char *
slim_ascend_module_of (const char *name, const char **suffix)
{
  const char *suffixes[] = { ".weight", ".bias" };

  for (gsize k = 0; k < G_N_ELEMENTS (suffixes); k++)
    if (g_str_has_suffix (name, suffixes[k]) && strlen (name) > strlen (suffixes[k]))
      {
        *suffix = suffixes[k];
        return g_strndup (name, strlen (name) - strlen (suffixes[k]));
      }
  *suffix = NULL;
  return NULL;
}

/**
 * slim_ascend_writer_write_layer:
 * @self: a writer
 * @layer: a processed layer (a decoder layer or a pseudo-layer)
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success; fails for a label the format cannot hold (for
 *   mindie: "use ascendv1_saver"), inconsistent records or a write error.
 */
gboolean
slim_ascend_writer_write_layer (SlimAscendWriter *self, SlimLayer *layer, GError **error)
{
  g_autoptr (GHashTable) linears = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) written = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) records = NULL;
  const char *const *linear_names;
  gint index;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);
  g_return_val_if_fail (!self->finished, FALSE);

  index = slim_layer_get_index (layer);
  if (index == SLIM_LAYER_INDEX_EMBED)
    return slim_ascend_writer_defer (self, layer, error);
  if (index == SLIM_LAYER_INDEX_HEAD && !slim_ascend_writer_flush_deferred (self, error))
    return FALSE;

  linear_names = slim_layer_get_linear_names (layer);
  for (guint i = 0; linear_names != NULL && linear_names[i] != NULL; i++)
    g_hash_table_add (linears, (gpointer)linear_names[i]);
  records = slim_layer_list_qlinears (layer);

  for (guint i = 0; i < slim_layer_get_n_tensors (layer); i++)
    {
      SlimTensor *tensor = slim_layer_get_tensor_at (layer, i);
      const char *name = slim_tensor_get_name (tensor);
      const char *suffix = NULL;
      g_autofree char *module = slim_ascend_module_of (name, &suffix);
      const SlimQLinear *q = module != NULL ? slim_layer_get_qlinear (layer, module) : NULL;
      SlimTensor *t;

      if (slim_online_rotation_is_online_name (name))
        {
          if (!slim_ascend_write_online_rotation (self, tensor, error))
            return FALSE;
          continue;
        }
      if (q != NULL)
        {
          g_autofree char *bias_name = NULL;

          if (index == SLIM_LAYER_INDEX_HEAD)
            slim_ascend_writer_check_tie (self, layer, name, NULL);
          if (g_hash_table_contains (written, q->module))
            continue;
          bias_name = g_strconcat (q->module, ".bias", NULL);
          if (strcmp (q->label, "W16A16S") == 0
                  ? !slim_ascend_write_w16a16s (self, layer, q, error)
                  : !slim_ascend_write_qlinear (self, q, slim_layer_get_tensor (layer, bias_name),
                                                error))
            return FALSE;
          g_hash_table_add (written, q->module);
          continue;
        }
      t = slim_ascend_float_tensor (layer, tensor, error);
      if (t == NULL)
        return FALSE;
      if (index == SLIM_LAYER_INDEX_HEAD)
        slim_ascend_writer_check_tie (self, layer, name, t);
      if (!slim_ascend_writer_add (self, t, "FLOAT", error))
        return FALSE;
      if (module != NULL && strcmp (suffix, ".weight") == 0
          && g_hash_table_contains (linears, module))
        slim_ascend_writer_update_quant_type (self, "FLOAT");
    }
  /* records whose weight is not among the layer's tensors */
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = g_ptr_array_index (records, i);
      g_autofree char *bias_name = NULL;

      if (g_hash_table_contains (written, q->module))
        continue;
      if (index == SLIM_LAYER_INDEX_HEAD)
        {
          g_autofree char *weight_name = g_strconcat (q->module, ".weight", NULL);
          slim_ascend_writer_check_tie (self, layer, weight_name, NULL);
        }
      bias_name = g_strconcat (q->module, ".bias", NULL);
      if (strcmp (q->label, "W16A16S") == 0
              ? !slim_ascend_write_w16a16s (self, layer, q, error)
              : !slim_ascend_write_qlinear (self, q, slim_layer_get_tensor (layer, bias_name),
                                            error))
        return FALSE;
      g_hash_table_add (written, q->module);
    }
  return slim_ascend_write_qattentions (self, layer, error);
}

/* ---- JSON in Python's json.dump format -------------------------------- */

/* Python's repr() of a float: the shortest digits that read back to the
 * same double, fixed notation for exponents -4..15 (with ".0" when
 * integral), else d.ddde+XX. */
static void
slim_ascend_append_py_float (GString *out, double value)
{
  char buf[64];
  char digits[32];
  int n_digits = 0, exponent, point;
  const char *e;
  gboolean negative;

  if (isnan (value))
    {
      g_string_append (out, "NaN");
      return;
    }
  if (isinf (value))
    {
      g_string_append (out, value < 0 ? "-Infinity" : "Infinity");
      return;
    }
  for (int precision = 1; precision <= 17; precision++)
    {
      g_snprintf (buf, sizeof buf, "%.*e", precision - 1, value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }
  negative = buf[0] == '-';
  for (const char *p = buf + (negative ? 1 : 0); *p != '\0' && *p != 'e'; p++)
    if (g_ascii_isdigit (*p))
      digits[n_digits++] = *p;
  digits[n_digits] = '\0';
  while (n_digits > 1 && digits[n_digits - 1] == '0')
    digits[--n_digits] = '\0';
  e = strchr (buf, 'e');
  exponent = e != NULL ? atoi (e + 1) : 0;
  if (negative)
    g_string_append_c (out, '-');
  if (exponent >= -4 && exponent < 16)
    {
      point = exponent + 1; /* digits before the decimal point */
      if (point <= 0)
        {
          g_string_append (out, "0.");
          for (int k = 0; k < -point; k++)
            g_string_append_c (out, '0');
          g_string_append (out, digits);
        }
      else if (point >= n_digits)
        {
          g_string_append (out, digits);
          for (int k = n_digits; k < point; k++)
            g_string_append_c (out, '0');
          g_string_append (out, ".0");
        }
      else
        {
          g_string_append_len (out, digits, point);
          g_string_append_c (out, '.');
          g_string_append (out, digits + point);
        }
      return;
    }
  g_string_append_c (out, digits[0]);
  if (n_digits > 1)
    {
      g_string_append_c (out, '.');
      g_string_append (out, digits + 1);
    }
  g_string_append_printf (out, "e%c%02d", exponent < 0 ? '-' : '+', ABS (exponent));
}

static void
slim_ascend_append_indent (GString *out, guint indent, guint level)
{
  g_string_append_c (out, '\n');
  for (guint k = 0; k < indent * level; k++)
    g_string_append_c (out, ' ');
}

static void
slim_ascend_append_py_node (GString *out, JsonNode *node, guint indent, guint level)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        g_autoptr (GList) members = json_object_get_members (object);

        if (members == NULL)
          {
            g_string_append (out, "{}");
            return;
          }
        g_string_append_c (out, '{');
        for (GList *l = members; l != NULL; l = l->next)
          {
            slim_ascend_append_indent (out, indent, level + 1);
            slim_json_append_string (out, l->data, TRUE);
            g_string_append (out, ": ");
            slim_ascend_append_py_node (out, json_object_get_member (object, l->data), indent,
                                        level + 1);
            if (l->next != NULL)
              g_string_append_c (out, ',');
          }
        slim_ascend_append_indent (out, indent, level);
        g_string_append_c (out, '}');
        return;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        if (n == 0)
          {
            g_string_append (out, "[]");
            return;
          }
        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            slim_ascend_append_indent (out, indent, level + 1);
            slim_ascend_append_py_node (out, json_array_get_element (array, i), indent, level + 1);
            if (i + 1 < n)
              g_string_append_c (out, ',');
          }
        slim_ascend_append_indent (out, indent, level);
        g_string_append_c (out, ']');
        return;
      }
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      return;
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          return;
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          return;
        case G_TYPE_DOUBLE:
          slim_ascend_append_py_float (out, json_node_get_double (node));
          return;
        case G_TYPE_STRING:
        default:
          slim_json_append_string (out, json_node_get_string (node), TRUE);
          return;
        }
    default:
      g_string_append (out, "null");
    }
}

/**
 * slim_ascend_json_to_python_text:
 * @node: a JSON node
 * @indent: spaces per level (Python's indent=)
 *
 * Returns: (transfer full): the text Python's json.dump (obj, f,
 *   indent=@indent) writes for @node
 */
char *
slim_ascend_json_to_python_text (JsonNode *node, guint indent)
{
  GString *out = g_string_new (NULL);

  g_return_val_if_fail (node != NULL, NULL);
  slim_ascend_append_py_node (out, node, indent, 0);
  return g_string_free (out, FALSE);
}

/* ---- finish ------------------------------------------------------------ */

static char *
slim_ascend_writer_description_text (SlimAscendWriter *self)
{
  g_autoptr (JsonObject) root = json_object_new ();
  g_autoptr (JsonNode) node = json_node_new (JSON_NODE_OBJECT);

  for (guint i = 0; i < self->keys->len; i++)
    {
      const char *key = g_ptr_array_index (self->keys, i);
      json_object_set_string_member (root, key, g_hash_table_lookup (self->labels, key));
    }
  for (guint i = 0; i < self->attn_keys->len; i++)
    {
      const char *key = g_ptr_array_index (self->attn_keys, i);
      json_object_set_string_member (root, key, g_hash_table_lookup (self->attn_values, key));
    }
  for (guint i = 0; i < self->global_keys->len; i++)
    {
      const char *key = g_ptr_array_index (self->global_keys, i);
      json_object_set_string_member (root, key, g_hash_table_lookup (self->global_values, key));
    }
  if (self->format == SLIM_ASCEND_FORMAT_ASCENDV1)
    {
      json_object_set_string_member (root, "version", "1.0.0");
      json_object_set_string_member (root, "model_quant_type", self->model_quant_type);
      json_object_set_object_member (root, "metadata", slim_ascend_metadata (self));
      json_object_set_int_member (root, "group_size", self->group_size);
      json_object_set_object_member (root, "optional", slim_ascend_optional (self));
    }
  else if (self->model_quant_type != NULL)
    json_object_set_string_member (root, "model_quant_type", self->model_quant_type);
  json_node_set_object (node, root);
  return slim_ascend_json_to_python_text (node, 4);
}

/* Copies the model folder's auxiliary files, skipping *index.json and
 * names the saver writes. */
static gboolean
slim_ascend_copy_aux_files (SlimAscendWriter *self, const char *model_dir, GError **error)
{
  const char *const ascendv1_suffixes[] = { ".json", ".py", ".txt", ".jinja", NULL };
  const char *const mindie_suffixes[] = { ".json", ".py", NULL };

  return slim_model_files_copy (
      model_dir, self->out_dir,
      self->format == SLIM_ASCEND_FORMAT_MINDIE ? mindie_suffixes : ascendv1_suffixes, error);
}

/* Sets tie_word_embeddings of obj to false when it is true; TRUE when
 * it changed. */
static gboolean
slim_ascend_untie (JsonObject *obj)
{
  JsonNode *tie;

  if (!json_object_has_member (obj, "tie_word_embeddings"))
    return FALSE;
  tie = json_object_get_member (obj, "tie_word_embeddings");
  if (!JSON_NODE_HOLDS_VALUE (tie) || json_node_get_value_type (tie) != G_TYPE_BOOLEAN
      || !json_node_get_boolean (tie))
    return FALSE;
  json_object_set_boolean_member (obj, "tie_word_embeddings", FALSE);
  return TRUE;
}

/* Edits out_dir/config.json (top level and text_config): strip removes
 * quantization_config, untie sets a true tie_word_embeddings to false.
 * The file is rewritten (indent 2) only when something changed. */
static gboolean
slim_ascend_edit_config (const char *out_dir, gboolean strip, gboolean untie, GError **error)
{
  g_autofree char *path = g_build_filename (out_dir, "config.json", NULL);
  g_autoptr (JsonParser) parser = NULL;
  g_autofree char *text = NULL;
  JsonObject *objects[2] = { NULL, NULL };
  gboolean changed = FALSE;
  JsonNode *root_node;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, path, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  root_node = json_parser_get_root (parser);
  if (root_node == NULL || !JSON_NODE_HOLDS_OBJECT (root_node))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: the top level is not a JSON object", path);
      return FALSE;
    }
  objects[0] = json_node_get_object (root_node);
  if (json_object_has_member (objects[0], "text_config")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (objects[0], "text_config")))
    objects[1] = json_object_get_object_member (objects[0], "text_config");
  for (guint i = 0; i < G_N_ELEMENTS (objects) && objects[i] != NULL; i++)
    {
      if (strip && json_object_has_member (objects[i], "quantization_config"))
        {
          json_object_remove_member (objects[i], "quantization_config");
          changed = TRUE;
        }
      if (untie && slim_ascend_untie (objects[i]))
        changed = TRUE;
    }
  if (!changed)
    return TRUE;
  text = slim_ascend_json_to_python_text (root_node, 2);
  return g_file_set_contents_full (path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

/**
 * slim_ascend_writer_finish:
 * @self: a writer
 * @model_dir: (nullable): the original model folder, whose auxiliary
 *   files are copied; %NULL copies nothing
 * @error: return location for a #GError
 *
 * Writes the held-back embeddings, closes the weight files, writes the
 * description JSON, copies the auxiliary files and (ascendv1) removes
 * quantization_config from the copied config.json.
 *
 * Returns: %TRUE on success
 */
gboolean
slim_ascend_writer_finish (SlimAscendWriter *self, const char *model_dir, GError **error)
{
  g_autofree char *description = NULL;
  g_autofree char *description_name = NULL;
  g_autofree char *description_path = NULL;
  g_autofree char *lower = NULL;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (!self->finished, FALSE);

  if (!slim_ascend_writer_flush_deferred (self, error)
      || !slim_safetensors_writer_finish (self->weights, error))
    return FALSE;
  self->finished = TRUE;
  g_unlink (self->deferred_path);

  if (self->format == SLIM_ASCEND_FORMAT_MINDIE && self->model_quant_type != NULL)
    {
      lower = g_ascii_strdown (self->model_quant_type, -1);
      description_name = g_strdup_printf ("quant_model_description_%s.json", lower);
      if (self->shard_bytes == 0)
        {
          g_autofree char *from
              = g_build_filename (self->out_dir, SLIM_MINDIE_WEIGHTS_PREFIX ".safetensors", NULL);
          g_autofree char *to_name
              = g_strdup_printf ("%s_%s.safetensors", SLIM_MINDIE_WEIGHTS_PREFIX, lower);
          g_autofree char *to = g_build_filename (self->out_dir, to_name, NULL);

          if (g_rename (from, to) != 0)
            {
              int saved_errno = errno;
              g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                           "cannot rename %s to %s: %s", from, to, g_strerror (saved_errno));
              return FALSE;
            }
        }
    }
  else
    description_name = g_strdup (SLIM_ASCEND_DESCRIPTION_NAME);

  description = slim_ascend_writer_description_text (self);
  description_path = g_build_filename (self->out_dir, description_name, NULL);
  if (!g_file_set_contents (description_path, description, -1, error))
    return FALSE;

  if (model_dir != NULL)
    {
      if (!slim_ascend_copy_aux_files (self, model_dir, error))
        return FALSE;
      /* a saved lm_head that is not the saved embedding must be read as
       * its own tensor, whatever the format: untie the copied config */
      if (!slim_ascend_edit_config (self->out_dir, self->format == SLIM_ASCEND_FORMAT_ASCENDV1,
                                    self->untied, error))
        return FALSE;
    }
  return TRUE;
}

/* ---- resume ------------------------------------------------------------ */

/* weights, description keys + labels, model_quant_type, group_size,
 * held-back embeddings, then the attention keys and the global keys
 * (slim_ascend_write_qattentions), then QuaRot's heads, Kronecker,
 * max_tp_size, global rotation and full Hadamard down_proj names. */
#define SLIM_ASCEND_STATE_TYPE "(va(ss)sxasa(ss)a(ss)asasxbas)"

static GVariant *
slim_ascend_save_extra (GPtrArray *keys, GHashTable *values)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);
      g_variant_builder_add (&b, "(ss)", key, (const char *)g_hash_table_lookup (values, key));
    }
  return g_variant_builder_end (&b);
}

static gboolean
slim_ascend_restore_extra (GVariant *saved, GPtrArray *keys, GHashTable *values)
{
  GVariantIter iter;
  const char *key, *value;

  g_variant_iter_init (&iter, saved);
  while (g_variant_iter_next (&iter, "(&s&s)", &key, &value))
    {
      if (g_hash_table_contains (values, key) || !g_utf8_validate (key, -1, NULL)
          || !g_utf8_validate (value, -1, NULL))
        return FALSE;
      slim_ascend_set_extra (keys, values, key, value);
    }
  return TRUE;
}

/**
 * slim_ascend_writer_save_state:
 * @self: a writer, not finished
 * @error: return location for a #GError
 *
 * What was written so far (the weight files' layout, the description keys
 * and labels, model_quant_type, group_size, the held-back embeddings),
 * with the data on disk made durable.
 *
 * Returns: (transfer full) (nullable): serialized state
 */
GBytes *
slim_ascend_writer_save_state (SlimAscendWriter *self, GError **error)
{
  g_autoptr (GVariant) weights = NULL;
  g_autoptr (GVariant) state = NULL;
  GVariantBuilder keys, deferred, heads, kron, had;

  g_return_val_if_fail (self != NULL && !self->finished, NULL);

  weights = slim_safetensors_writer_save_state (self->weights, error);
  if (weights == NULL)
    return NULL;
  g_variant_builder_init (&keys, G_VARIANT_TYPE ("a(ss)"));
  for (guint i = 0; i < self->keys->len; i++)
    {
      const char *key = g_ptr_array_index (self->keys, i);
      g_variant_builder_add (&keys, "(ss)", key,
                             (const char *)g_hash_table_lookup (self->labels, key));
    }
  g_variant_builder_init (&deferred, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < self->deferred->len; i++)
    g_variant_builder_add (&deferred, "s", (const char *)g_ptr_array_index (self->deferred, i));
  g_variant_builder_init (&heads, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < self->quarot_heads->len; i++)
    g_variant_builder_add (&heads, "s", (const char *)g_ptr_array_index (self->quarot_heads, i));
  g_variant_builder_init (&kron, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < self->quarot_kron->len; i++)
    g_variant_builder_add (&kron, "s", (const char *)g_ptr_array_index (self->quarot_kron, i));
  g_variant_builder_init (&had, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < self->quarot_had->len; i++)
    g_variant_builder_add (&had, "s", (const char *)g_ptr_array_index (self->quarot_had, i));
  /* "" stands for no model_quant_type yet (mindie before any label) */
  state = g_variant_ref_sink (
      g_variant_new ("(va(ss)sxas@a(ss)@a(ss)asasxbas)", weights, &keys,
                     self->model_quant_type != NULL ? self->model_quant_type : "", self->group_size,
                     &deferred, slim_ascend_save_extra (self->attn_keys, self->attn_values),
                     slim_ascend_save_extra (self->global_keys, self->global_values), &heads, &kron,
                     self->quarot_max_tp, self->quarot_global, &had));
  return g_variant_get_data_as_bytes (state);
}

static gboolean
slim_ascend_state_invalid (GError **error, const char *what)
{
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "the saved state of the ascend writer is corrupt: %s", what);
  return FALSE;
}

/**
 * slim_ascend_writer_restore_state:
 * @self: a new writer on the interrupted run's folder, same arguments
 * @state: what slim_ascend_writer_save_state() returned
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the writer continues where the state was saved.
 */
gboolean
slim_ascend_writer_restore_state (SlimAscendWriter *self, GBytes *state, GError **error)
{
  g_autoptr (GVariant) root = NULL;
  g_autoptr (GVariant) weights = NULL;
  g_autoptr (GVariant) keys = NULL;
  g_autoptr (GVariant) deferred = NULL;
  g_autoptr (GVariant) attn_keys = NULL;
  g_autoptr (GVariant) global_keys = NULL;
  g_autoptr (GVariant) heads = NULL;
  g_autoptr (GVariant) kron = NULL;
  g_autoptr (GVariant) had = NULL;
  gint64 max_tp = 0;
  gboolean global = FALSE;
  const char *quant_type;
  gint64 group_size;
  GVariantIter iter;
  const char *key, *label;

  g_return_val_if_fail (self != NULL && state != NULL, FALSE);
  g_return_val_if_fail (self->keys->len == 0 && !self->finished, FALSE);

  root = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (SLIM_ASCEND_STATE_TYPE), state, FALSE));
  g_variant_get (root, "(v@a(ss)&sx@as@a(ss)@a(ss)@as@asxb@as)", &weights, &keys, &quant_type,
                 &group_size, &deferred, &attn_keys, &global_keys, &heads, &kron, &max_tp, &global,
                 &had);
  if (!slim_ascend_restore_extra (attn_keys, self->attn_keys, self->attn_values)
      || !slim_ascend_restore_extra (global_keys, self->global_keys, self->global_values))
    return slim_ascend_state_invalid (error, "attention or global keys");
  if (!g_utf8_validate (quant_type, -1, NULL) || group_size < 0)
    return slim_ascend_state_invalid (error, "model_quant_type or group_size");
  if (!slim_safetensors_writer_restore_state (self->weights, weights, error))
    return FALSE;
  g_variant_iter_init (&iter, heads);
  while (g_variant_iter_next (&iter, "&s", &key))
    g_ptr_array_add (self->quarot_heads, g_strdup (key));
  g_variant_iter_init (&iter, kron);
  while (g_variant_iter_next (&iter, "&s", &key))
    g_ptr_array_add (self->quarot_kron, g_strdup (key));
  g_variant_iter_init (&iter, had);
  while (g_variant_iter_next (&iter, "&s", &key))
    g_ptr_array_add (self->quarot_had, g_strdup (key));
  self->quarot_max_tp = max_tp;
  self->quarot_global = global;
  g_variant_iter_init (&iter, keys);
  while (g_variant_iter_next (&iter, "(&s&s)", &key, &label))
    {
      char *owned;

      if (g_hash_table_contains (self->labels, key) || !g_utf8_validate (key, -1, NULL)
          || !g_utf8_validate (label, -1, NULL))
        return slim_ascend_state_invalid (error, "description keys");
      owned = g_strdup (key);
      g_ptr_array_add (self->keys, owned);
      g_hash_table_insert (self->labels, owned, g_strdup (label));
    }
  if (self->keys->len + slim_ascend_n_unlabeled (self)
      != slim_safetensors_writer_get_n_tensors (self->weights))
    return slim_ascend_state_invalid (error, "description keys and weights differ");
  g_free (self->model_quant_type);
  self->model_quant_type = quant_type[0] != '\0' ? g_strdup (quant_type) : NULL;
  self->group_size = group_size;
  g_variant_iter_init (&iter, deferred);
  while (g_variant_iter_next (&iter, "&s", &key))
    g_ptr_array_add (self->deferred, g_strdup (key));
  if (self->deferred->len > 0 && !g_file_test (self->deferred_path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                   "%s: the held-back embeddings of the interrupted run are missing",
                   self->deferred_path);
      return FALSE;
    }
  return TRUE;
}
