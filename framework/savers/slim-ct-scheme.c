/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ct-scheme.c: a SlimQLinear record as a compressed-tensors scheme
 * (see slim-ct-scheme.h).
 */
#include "slim-ct-scheme.h"

#include <math.h>
#include <string.h>
#include <json-glib/json-glib.h>

#include "slim-error.h"
#include "slim-qscheme.h"

/* ---- planning: a record to a compressed-tensors scheme ----------------- */

static gboolean
slim_ct_refuse (const SlimQLinear *q, GError **error, const char *why)
{
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "%s (%s): compressed_tensors cannot save this linear: %s", q->module, q->label, why);
  return FALSE;
}

static gboolean
slim_ct_check_f32 (const SlimQLinear *q, SlimTensor *t, const char *what, gint64 n, GError **error)
{
  if (t == NULL || slim_tensor_get_dtype (t) != SLIM_DTYPE_F32
      || slim_tensor_get_n_elements (t) != n)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): %s must be float32 with %" G_GINT64_FORMAT " elements", q->module,
                   q->label, what, n);
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

/* zero points: exactly 0 for a symmetric scheme, else integers in
 * [-2^(bits-1), 2^(bits-1) - 1] (compressed-tensors stores them as ints). */
static gboolean
slim_ct_check_zero_points (const SlimQLinear *q,
                           const char *what,
                           const float *zp,
                           gint64 n,
                           guint bits,
                           gboolean symmetric,
                           GError **error)
{
  float lo = (float)-(1 << (bits - 1)), hi = (float)((1 << (bits - 1)) - 1);

  for (gint64 i = 0; i < n; i++)
    {
      if (symmetric && zp[i] != 0.0f)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s (%s): compressed_tensors cannot save this linear: %s[%" G_GINT64_FORMAT
                       "] = %g in a symmetric scheme (compressed-tensors has no zero point "
                       "there)",
                       q->module, q->label, what, i, (double)zp[i]);
          return FALSE;
        }
      if (!symmetric && (zp[i] != rintf (zp[i]) || zp[i] < lo || zp[i] > hi))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s (%s): compressed_tensors cannot save this linear: %s[%" G_GINT64_FORMAT
                       "] = %.9g is not an integer zero point in [%d, %d] (compressed-tensors "
                       "stores int%u zero points; HQQ-style float zero points cannot be "
                       "expressed)",
                       q->module, q->label, what, i, (double)zp[i], (int)lo, (int)hi, bits);
          return FALSE;
        }
    }
  return TRUE;
}

/* Turns a record into its scheme and checks every value it will write. */
gboolean
slim_ct_scheme_from_qlinear (const SlimQLinear *q, SlimCtScheme *plan, GError **error)
{
  const SlimQScheme *w = &q->weight;
  const SlimQScheme *a = &q->act;
  g_autofree char *w_text = slim_qscheme_to_string (w);
  g_autofree char *a_text = slim_qscheme_to_string (a);
  g_autofree char *why = NULL;
  gboolean fp8;
  gint64 n_scale;

  memset (plan, 0, sizeof *plan);
  plan->q = q;

  /* weights */
  if (strcmp (q->label, "NF4") == 0)
    return slim_ct_refuse (q, error,
                           "NF4 code-book weights have no compressed-tensors format (save them "
                           "with the bitsandbytes saver)");
  if (w->dtype != SLIM_QDTYPE_INT8 && w->dtype != SLIM_QDTYPE_INT4
      && w->dtype != SLIM_QDTYPE_FP8_E4M3)
    {
      why = g_strdup_printf ("weight %s is not an integer or fp8_e4m3 format (this saver writes "
                             "int8, int4 and float8_e4m3fn weights)",
                             w_text);
      return slim_ct_refuse (q, error, why);
    }
  fp8 = w->dtype == SLIM_QDTYPE_FP8_E4M3;
  if (fp8 && w->scope == SLIM_QSCOPE_PER_GROUP)
    {
      why = g_strdup_printf ("fp8_e4m3 weights per group of %" G_GINT64_FORMAT
                             " (compressed-tensors' float-quantized fp8 has tensor, channel and "
                             "128x128 block scales, no groups)",
                             q->group_size);
      return slim_ct_refuse (q, error, why);
    }
  plan->weights.type = fp8 ? "float" : "int";
  plan->weights.bits = fp8 ? 8 : slim_qdtype_get_bits (w->dtype);
  plan->weights.symmetric = w->symmetric;
  plan->weights.observer = "minmax";
  switch (w->scope)
    {
    case SLIM_QSCOPE_PER_CHANNEL:
      plan->weights.strategy = "channel";
      plan->n_cols = 1;
      break;
    case SLIM_QSCOPE_PER_GROUP:
      plan->weights.strategy = "group";
      plan->weights.group_size = q->group_size;
      if (q->group_size <= 0 || q->n_in % q->group_size != 0)
        {
          why = g_strdup_printf ("group_size %" G_GINT64_FORMAT " does not divide %" G_GINT64_FORMAT
                                 " input features",
                                 q->group_size, q->n_in);
          return slim_ct_refuse (q, error, why);
        }
      plan->n_cols = q->n_in / q->group_size;
      break;
    case SLIM_QSCOPE_PER_TENSOR:
      plan->weights.strategy = "tensor";
      plan->per_tensor = TRUE;
      plan->n_cols = 1;
      break;
    default:
      why = g_strdup_printf ("weight scope %s has no compressed-tensors strategy "
                             "(per_channel, per_group and per_tensor have)",
                             slim_qscope_get_nick (w->scope));
      return slim_ct_refuse (q, error, why);
    }

  /* activations */
  if (a->dtype == SLIM_QDTYPE_FLOAT)
    {
      /* weight-only: pack-quantized for W8A16 / W4A16 int, naive-quantized
       * (plain float8_e4m3fn weights) for fp8, as compressed-tensors infers */
      plan->packed = !fp8;
      plan->format = fp8 ? "naive-quantized" : "pack-quantized";
    }
  else if (fp8)
    {
      /* FP8_DYNAMIC: fp8 weights with dynamic per-token fp8 activations */
      if (a->dtype != SLIM_QDTYPE_FP8_E4M3 || a->scope != SLIM_QSCOPE_PER_TOKEN)
        {
          why = g_strdup_printf ("act %s with weight %s: this saver writes fp8 weights with "
                                 "per_token fp8_e4m3 activations (float-quantized) or "
                                 "weight-only",
                                 a_text, w_text);
          return slim_ct_refuse (q, error, why);
        }
      plan->format = "float-quantized";
      plan->has_input = TRUE;
      plan->input.bits = 8;
      plan->input.type = "float";
      plan->input.symmetric = TRUE;
      plan->input.strategy = "token";
      plan->input.dynamic = TRUE;
    }
  else
    {
      plan->format = "int-quantized";
      if (a->dtype != SLIM_QDTYPE_INT8 || plan->weights.bits != 8)
        {
          why = g_strdup_printf ("act %s with weight %s: this saver writes quantized "
                                 "activations only as int8 with int8 weights (int-quantized) "
                                 "or fp8_e4m3 per_token with fp8_e4m3 weights "
                                 "(float-quantized)",
                                 a_text, w_text);
          return slim_ct_refuse (q, error, why);
        }
      plan->has_input = TRUE;
      plan->input.bits = 8;
      plan->input.type = "int";
      plan->input.symmetric = a->symmetric;
      if (a->scope == SLIM_QSCOPE_PER_TENSOR)
        {
          plan->input.strategy = "tensor";
          plan->input.observer = "minmax";
        }
      else if (a->scope == SLIM_QSCOPE_PER_TOKEN)
        {
          plan->input.strategy = "token";
          plan->input.dynamic = TRUE;
        }
      else
        {
          why = g_strdup_printf ("act scope %s has no compressed-tensors strategy (per_tensor "
                                 "static and per_token dynamic have)",
                                 slim_qscope_get_nick (a->scope));
          return slim_ct_refuse (q, error, why);
        }
    }

  /* the record's tensors */
  if (q->n_out <= 0 || q->n_in <= 0 || q->weight_q == NULL
      || slim_tensor_get_dtype (q->weight_q) != (fp8 ? SLIM_DTYPE_F8_E4M3FN : SLIM_DTYPE_I8)
      || slim_tensor_get_n_dims (q->weight_q) != 2
      || slim_tensor_get_dim (q->weight_q, 0) != q->n_out
      || slim_tensor_get_dim (q->weight_q, 1) != q->n_in)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): the quantized weight must be %s (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ")",
                   q->module, q->label, fp8 ? "float8_e4m3fn" : "int8", q->n_out, q->n_in);
      return FALSE;
    }
  if (fp8)
    {
      /* e4m3fn codes: every byte but the NaNs 0x7f / 0xff is a value */
      const guint8 *wq = slim_tensor_get_data (q->weight_q);

      for (gint64 i = 0; i < q->n_out * q->n_in; i++)
        if ((wq[i] & 0x7f) == 0x7f)
          {
            g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                         "%s (%s): quantized weight (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                         ") is a float8_e4m3fn NaN",
                         q->module, q->label, i / q->n_in, i % q->n_in);
            return FALSE;
          }
    }
  else
    {
      /* the values must fit the format's bits (packing would refuse them
       * half-way through the layer otherwise) */
      const gint8 *wq = slim_tensor_get_data (q->weight_q);
      gint lo = -(1 << (plan->weights.bits - 1)), hi = (1 << (plan->weights.bits - 1)) - 1;

      for (gint64 i = 0; i < q->n_out * q->n_in; i++)
        if (wq[i] < lo || wq[i] > hi)
          {
            g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                         "%s (%s): quantized weight (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                         ") = %d is outside the int%u range [%d, %d]",
                         q->module, q->label, i / q->n_in, i % q->n_in, wq[i], plan->weights.bits,
                         lo, hi);
            return FALSE;
          }
    }
  n_scale = q->n_out * plan->n_cols;
  if (plan->per_tensor && q->weight_scale != NULL
      && slim_tensor_get_n_elements (q->weight_scale) == 1)
    n_scale = 1;
  if (!slim_ct_check_f32 (q, q->weight_scale, "weight_scale", n_scale, error)
      || !slim_ct_check_f32 (q, q->weight_offset, "weight_offset", n_scale, error))
    return FALSE;
  if (plan->per_tensor)
    {
      /* one (scale, offset), possibly repeated per row */
      const float *s = slim_tensor_get_data (q->weight_scale);
      const float *o = slim_tensor_get_data (q->weight_offset);

      for (gint64 i = 1; i < n_scale; i++)
        if (s[i] != s[0] || o[i] != o[0])
          return slim_ct_refuse (q, error, "a per_tensor weight with different scales per row");
    }
  if (!slim_ct_check_zero_points (q, "weight_offset", slim_tensor_get_data (q->weight_offset),
                                  plan->per_tensor ? 1 : n_scale, plan->weights.bits, w->symmetric,
                                  error))
    return FALSE;
  if (plan->has_input && !plan->input.dynamic)
    {
      if (!isfinite (q->input_scale) || !(q->input_scale > 0.0f))
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                       "%s (%s): input_scale %g is not usable", q->module, q->label,
                       (double)q->input_scale);
          return FALSE;
        }
      if (!slim_ct_check_zero_points (q, "input_offset", &q->input_offset, 1, 8, a->symmetric,
                                      error))
        return FALSE;
    }
  return TRUE;
}

/* ---- the scheme as JSON ----------------------------------------------- */

static void
slim_ct_add_args (JsonBuilder *b, const SlimCtArgs *args, SlimDType model_dtype)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "num_bits");
  json_builder_add_int_value (b, args->bits);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, args->type);
  json_builder_set_member_name (b, "symmetric");
  json_builder_add_boolean_value (b, args->symmetric);
  json_builder_set_member_name (b, "group_size");
  if (args->group_size > 0)
    json_builder_add_int_value (b, args->group_size);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "strategy");
  json_builder_add_string_value (b, args->strategy);
  json_builder_set_member_name (b, "block_structure");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "dynamic");
  json_builder_add_boolean_value (b, args->dynamic);
  json_builder_set_member_name (b, "actorder");
  json_builder_add_null_value (b);
  /* scales are float32 (slim-ct-writer.h); dynamic args have none */
  json_builder_set_member_name (b, "scale_dtype");
  if (!args->dynamic && model_dtype != SLIM_DTYPE_F32)
    json_builder_add_string_value (b, "torch.float32");
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "zp_dtype");
  if (!args->symmetric) /* only int args are asymmetric here */
    json_builder_add_string_value (b, "torch.int8");
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "observer");
  if (args->observer != NULL)
    json_builder_add_string_value (b, args->observer);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "observer_kwargs");
  json_builder_begin_object (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
}

/* The scheme without targets: {weights, input_activations,
 * output_activations, format}, as compact JSON text (the group key). */
char *
slim_ct_scheme_to_json (const SlimCtScheme *plan, SlimDType model_dtype)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "weights");
  slim_ct_add_args (b, &plan->weights, model_dtype);
  json_builder_set_member_name (b, "input_activations");
  if (plan->has_input)
    slim_ct_add_args (b, &plan->input, model_dtype);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "output_activations");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "format");
  json_builder_add_string_value (b, plan->format);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}
