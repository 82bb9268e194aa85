/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-scheme.c: a SlimQLinear record as a GPTQ / AWQ linear (see
 * slim-hf-scheme.h).
 */
#include "slim-hf-scheme.h"

#include <math.h>
#include <string.h>

#include "slim-dtype.h"
#include "slim-error.h"
#include "slim-qscheme.h"

const char *
slim_hf_format_saver_name (SlimHfFormat format)
{
  return format == SLIM_HF_FORMAT_AWQ ? "hf_awq_saver" : "hf_gptq_saver";
}

static gboolean G_GNUC_PRINTF (4, 5)
    slim_hf_refuse (const SlimQLinear *q, SlimHfFormat format, GError **error, const char *fmt, ...)
{
  g_autofree char *why = NULL;
  va_list ap;

  va_start (ap, fmt);
  why = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "%s (%s): %s cannot save this linear: %s", q->module, q->label,
               slim_hf_format_saver_name (format), why);
  return FALSE;
}

static gboolean
slim_hf_check_shapes (const SlimQLinear *q, gint64 n_params, GError **error)
{
  if (q->n_out <= 0 || q->n_in <= 0 || q->weight_q == NULL
      || slim_tensor_get_dtype (q->weight_q) != SLIM_DTYPE_I8
      || slim_tensor_get_n_elements (q->weight_q) != q->n_out * q->n_in)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): the quantized weight must be int8 (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ")",
                   q->module, q->label, q->n_out, q->n_in);
      return FALSE;
    }
  for (guint k = 0; k < 2; k++)
    {
      SlimTensor *t = k == 0 ? q->weight_scale : q->weight_offset;

      if (t == NULL || slim_tensor_get_dtype (t) != SLIM_DTYPE_F32
          || slim_tensor_get_n_elements (t) != n_params)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                       "%s (%s): %s must be float32 with %" G_GINT64_FORMAT " elements", q->module,
                       q->label, k == 0 ? "weight_scale" : "weight_offset", n_params);
          return FALSE;
        }
    }
  return TRUE;
}

/* codes, scales and zero points of the record */
static gboolean
slim_hf_check_values (const SlimQLinear *q,
                      SlimHfFormat format,
                      gboolean f16_scales,
                      const SlimHfScheme *plan,
                      GError **error)
{
  const gint8 *wq = slim_tensor_get_data (q->weight_q);
  const float *s = slim_tensor_get_data (q->weight_scale);
  const float *o = slim_tensor_get_data (q->weight_offset);
  gint64 n_params = q->n_out * plan->n_groups;
  gint lo = -(1 << (plan->bits - 1)), hi = (1 << (plan->bits - 1)) - 1;

  for (gint64 i = 0; i < q->n_out * q->n_in; i++)
    if (wq[i] < lo || wq[i] > hi)
      {
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                     "%s (%s): quantized weight (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                     ") = %d is outside the int%u range [%d, %d]",
                     q->module, q->label, i / q->n_in, i % q->n_in, wq[i], plan->bits, lo, hi);
        return FALSE;
      }
  for (gint64 i = 0; i < n_params; i++)
    {
      gint64 row = i / plan->n_groups, g = i % plan->n_groups;

      if (!isfinite (s[i]) || !(s[i] > 0.0f))
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                       "%s (%s): weight_scale (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                       ") = %g is not a finite positive scale",
                       q->module, q->label, row, g, (double)s[i]);
          return FALSE;
        }
      if (f16_scales)
        {
          float h = slim_f16_to_f32 (slim_f32_to_f16 (s[i]));

          if (!isfinite (h) || h == 0.0f)
            return slim_hf_refuse (q, format, error,
                                   "weight_scale (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                                   ") = %g becomes %g in float16 (use scale_dtype: float32)",
                                   row, g, (double)s[i], (double)h);
        }
      if (plan->symmetric && o[i] != 0.0f)
        return slim_hf_refuse (q, format, error,
                               "weight_offset (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                               ") = %g in a symmetric scheme",
                               row, g, (double)o[i]);
      if (o[i] != rintf (o[i]) || o[i] < (float)lo || o[i] > (float)hi)
        return slim_hf_refuse (q, format, error,
                               "weight_offset (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                               ") = %.9g is not an integer zero point in [%d, %d] (the format "
                               "stores unsigned int%u zeros; HQQ-style float zero points cannot "
                               "be expressed)",
                               row, g, (double)o[i], lo, hi, plan->bits);
      if (format == SLIM_HF_FORMAT_GPTQ && o[i] == (float)lo)
        return slim_hf_refuse (q, format, error,
                               "weight_offset (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                               ") = %d is the unsigned zero point 0, which checkpoint_format gptq "
                               "stores as 0 - 1 (it wraps into the neighbouring zero points); "
                               "use checkpoint_format: gptq_v2",
                               row, g, lo);
    }
  return TRUE;
}

gboolean
slim_hf_scheme_from_qlinear (const SlimQLinear *q,
                             SlimHfFormat format,
                             gboolean f16_scales,
                             SlimHfScheme *plan,
                             GError **error)
{
  const SlimQScheme *w = &q->weight;
  g_autofree char *w_text = slim_qscheme_to_string (w);
  g_autofree char *a_text = slim_qscheme_to_string (&q->act);
  gboolean awq = format == SLIM_HF_FORMAT_AWQ;
  guint pf;

  memset (plan, 0, sizeof *plan);
  plan->q = q;

  if (q->act.dtype != SLIM_QDTYPE_FLOAT)
    return slim_hf_refuse (q, format, error,
                           "act %s: %s checkpoints are weight-only (activation quantization "
                           "has no field there)",
                           a_text, awq ? "AWQ" : "GPTQ");
  if (w->dtype != SLIM_QDTYPE_INT4 && (awq || w->dtype != SLIM_QDTYPE_INT8))
    return slim_hf_refuse (q, format, error, "weight %s: %s", w_text,
                           awq ? "AWQ GEMM holds int4 weights only"
                               : "this saver writes int4 and int8 GPTQ weights");
  plan->bits = slim_qdtype_get_bits (w->dtype);
  plan->symmetric = w->symmetric;
  if (w->scope == SLIM_QSCOPE_PER_GROUP)
    {
      if (q->group_size <= 0 || q->n_in % q->group_size != 0)
        return slim_hf_refuse (q, format, error,
                               "group_size %" G_GINT64_FORMAT " does not divide %" G_GINT64_FORMAT
                               " input features",
                               q->group_size, q->n_in);
      plan->group_size = q->group_size;
      plan->n_groups = q->n_in / q->group_size;
    }
  else if (w->scope == SLIM_QSCOPE_PER_CHANNEL && !awq)
    {
      plan->group_size = -1;
      plan->n_groups = 1;
    }
  else
    return slim_hf_refuse (q, format, error, "weight scope %s: %s", slim_qscope_get_nick (w->scope),
                           awq ? "AWQ GEMM stores per_group weights only (no group_size -1)"
                               : "GPTQ stores per_group and per_channel (group_size -1) weights");

  pf = 32 / plan->bits;
  if (q->n_out % pf != 0)
    return slim_hf_refuse (q, format, error,
                           "%" G_GINT64_FORMAT " output features are not a multiple of %u (%s "
                           "packs %u %u-bit values along them into each int32)",
                           q->n_out, pf, awq ? "qweight and qzeros" : "qzeros", pf, plan->bits);
  if (!awq && q->n_in % pf != 0)
    return slim_hf_refuse (q, format, error,
                           "%" G_GINT64_FORMAT " input features are not a multiple of %u (qweight "
                           "packs %u %u-bit values along them into each int32)",
                           q->n_in, pf, pf, plan->bits);
  if (!slim_hf_check_shapes (q, q->n_out * plan->n_groups, error))
    return FALSE;
  return slim_hf_check_values (q, format, f16_scales, plan, error);
}
