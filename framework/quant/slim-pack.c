/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-pack.c: W4A8 int4 packing, deq_scale as int64, quant_bias and the
 * W4A8 scale_bias of the ascendv1 saver (formulas in slim-pack.h).
 *
 * Floating-point steps follow msModelSlim's torch code operation by
 * operation in float32; fp-contract=off keeps GCC from fusing
 * `bias / deq - sum * offset` into an FMA that torch does not do.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "slim-pack.h"

#include "slim-error.h"
#include "slim-qparams.h"

#include <math.h>
#include <string.h>

static gboolean
slim_pack_check (const gint8 *wq, gint64 n_out, gint64 n_in, GError **error)
{
  guint64 n_elements;

  if (n_out < 2 || n_in < 1 || n_out % 2 != 0
      || !g_uint64_checked_mul (&n_elements, (guint64)n_out, (guint64)n_in)
      || n_elements > (guint64)G_MAXINT64)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "W4A8 packing needs an even number of output rows, got (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ")",
                   n_out, n_in);
      return FALSE;
    }
  for (guint64 i = 0; i < n_elements; i++)
    if (wq[i] < -8 || wq[i] > 7)
      {
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                     "W4A8 packing: element (%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                     ") = %d is outside the int4 range [-8, 7]",
                     i / (guint64)n_in, i % (guint64)n_in, wq[i]);
        return FALSE;
      }
  return TRUE;
}

/**
 * slim_pack_w4a8_int4:
 * @wq: (array): int4 values stored as int8, (n_out, n_in) row-major
 * @n_out: output rows, even
 * @n_in: input columns
 * @packed: (out caller-allocates) (array): (n_out / 2, n_in) row-major
 * @error: return location for a #GError
 *
 * packed[j,k] = (Wq[2j+1,k] << 4) | (Wq[2j,k] & 0xF): msModelSlim's
 * w4a8_pack_int4 (transpose, pack adjacent pairs, transpose back) pairs
 * OUTPUT rows. Fails for an odd @n_out or a value outside [-8, 7].
 *
 * Returns: %TRUE on success
 */
gboolean
slim_pack_w4a8_int4 (const gint8 *wq, gint64 n_out, gint64 n_in, gint8 *packed, GError **error)
{
  g_return_val_if_fail (wq != NULL && packed != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!slim_pack_check (wq, n_out, n_in, error))
    return FALSE;
  for (gint64 j = 0; j < n_out / 2; j++)
    {
      const guint8 *even = (const guint8 *)wq + (gsize)(2 * j) * (gsize)n_in;
      const guint8 *odd = even + n_in;
      guint8 *dst = (guint8 *)packed + (gsize)j * (gsize)n_in;

      for (gint64 k = 0; k < n_in; k++)
        dst[k] = (guint8)((guint8)(odd[k] << 4) | (even[k] & 0x0F));
    }
  return TRUE;
}

/**
 * slim_pack_w4a8_int4_ref:
 * @wq: (array): int4 values stored as int8, (n_out, n_in) row-major
 * @n_out: output rows, even
 * @n_in: input columns
 * @packed: (out caller-allocates) (array): (n_out / 2, n_in) row-major
 * @error: return location for a #GError
 *
 * Element-by-element reference of slim_pack_w4a8_int4().
 *
 * Returns: %TRUE on success
 */
gboolean
slim_pack_w4a8_int4_ref (const gint8 *wq, gint64 n_out, gint64 n_in, gint8 *packed, GError **error)
{
  g_return_val_if_fail (wq != NULL && packed != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!slim_pack_check (wq, n_out, n_in, error))
    return FALSE;
  for (gint64 j = 0; j < n_out / 2; j++)
    for (gint64 k = 0; k < n_in; k++)
      {
        int hi = wq[(2 * j + 1) * n_in + k];
        int lo = wq[(2 * j) * n_in + k];
        /* int8 arithmetic as torch: hi * 16 stays within [-128, 112] */
        int v = (hi * 16) | (lo & 0xF);

        packed[j * n_in + k] = (gint8)v;
      }
  return TRUE;
}

/**
 * slim_unpack_w4a8_int4:
 * @packed: (array): (n_out / 2, n_in) row-major
 * @n_out: output rows, even
 * @n_in: input columns
 * @wq: (out caller-allocates) (array): (n_out, n_in) row-major int4 values
 *
 * Inverse of slim_pack_w4a8_int4() (nibbles sign-extended).
 */
void
slim_unpack_w4a8_int4 (const gint8 *packed, gint64 n_out, gint64 n_in, gint8 *wq)
{
  g_return_if_fail (packed != NULL && wq != NULL && n_out % 2 == 0 && n_in >= 0);

  for (gint64 j = 0; j < n_out / 2; j++)
    for (gint64 k = 0; k < n_in; k++)
      {
        int p = (guint8)packed[j * n_in + k];
        int lo = p & 0xF;
        int hi = p >> 4;

        wq[(2 * j) * n_in + k] = (gint8)(lo >= 8 ? lo - 16 : lo);
        wq[(2 * j + 1) * n_in + k] = (gint8)(hi >= 8 ? hi - 16 : hi);
      }
}

/**
 * slim_deq_scale_to_int64:
 * @deq_scale: a float32 deq_scale
 *
 * deqscale2int64: the float32 bit pattern read as int32, then widened with
 * sign extension (numpy int32.astype(int64)); for positive scales the top
 * 32 bits are zero.
 *
 * Returns: the int64 written to the safetensors file
 */
gint64
slim_deq_scale_to_int64 (float deq_scale)
{
  gint32 bits;

  memcpy (&bits, &deq_scale, sizeof bits);
  return (gint64)bits;
}

/**
 * slim_deq_scale_from_int64:
 * @value: an int64 deq_scale from a file
 *
 * Returns: the float32 whose bit pattern is the low 32 bits of @value
 */
float
slim_deq_scale_from_int64 (gint64 value)
{
  guint32 bits = (guint32)((guint64)value & 0xFFFFFFFFu);
  float f;

  memcpy (&f, &bits, sizeof f);
  return f;
}

/**
 * slim_deq_scale_compute:
 * @input_scale: per-tensor activation scale
 * @weight_scale: (array): (n_out) per-channel weight scales
 * @n_out: output channels
 * @deq_scale: (out caller-allocates) (array): (n_out) input_scale * weight_scale
 */
void
slim_deq_scale_compute (float input_scale,
                        const float *weight_scale,
                        gint64 n_out,
                        float *deq_scale)
{
  g_return_if_fail (n_out >= 0 && (n_out == 0 || (weight_scale != NULL && deq_scale != NULL)));

  for (gint64 n = 0; n < n_out; n++)
    deq_scale[n] = input_scale * weight_scale[n];
}

/* round(bias / deq - (float) row_sum * input_offset) to int32 */
static gboolean
slim_quant_bias_finish (const float *bias,
                        const float *deq_scale,
                        float input_offset,
                        gint64 n,
                        float row_sum,
                        gint32 *quant_bias,
                        GError **error)
{
  float b = (bias != NULL) ? bias[n] : 0.0f;
  float correction = row_sum * input_offset;
  float v = slim_round_half_even (b / deq_scale[n] - correction);

  if (!(v >= -2147483648.0f && v < 2147483648.0f))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "quant_bias[%" G_GINT64_FORMAT
                   "] = %g does not fit int32 (bias %g, deq_scale %g)",
                   n, (double)v, (double)b, (double)deq_scale[n]);
      return FALSE;
    }
  quant_bias[n] = (gint32)v;
  return TRUE;
}

static gboolean
slim_quant_bias_check (const float *deq_scale,
                       const gint8 *wq,
                       gint64 n_out,
                       gint64 n_in,
                       gint32 *quant_bias,
                       GError **error)
{
  g_return_val_if_fail (deq_scale != NULL && wq != NULL && quant_bias != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* n_in < 2^24 keeps int32 row sums (|Wq| <= 128) exact and below 2^31 */
  if (n_out < 1 || n_in < 1 || n_in >= (1 << 24))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "quant_bias: bad weight shape (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                   n_out, n_in);
      return FALSE;
    }
  return TRUE;
}

/**
 * slim_quant_bias_compute:
 * @bias: (nullable) (array): (n_out) float bias, %NULL for none (zeros)
 * @deq_scale: (array): (n_out) float32 deq_scale
 * @input_offset: per-tensor activation offset
 * @wq: (array): (n_out, n_in) row-major int8 weight
 * @n_out: output channels
 * @n_in: input channels, < 2^24
 * @quant_bias: (out caller-allocates) (array): (n_out) int32
 * @error: return location for a #GError
 *
 * quant_bias = round(bias / deq_scale - sum_k Wq[n,k] * input_offset), half
 * to even, in float32 as the saver's torch code. Fails with
 * %SLIM_NUMERIC_ERROR_NON_FINITE when a value is not finite or does not fit
 * int32 (torch would silently wrap).
 *
 * Returns: %TRUE on success
 */
gboolean
slim_quant_bias_compute (const float *bias,
                         const float *deq_scale,
                         float input_offset,
                         const gint8 *wq,
                         gint64 n_out,
                         gint64 n_in,
                         gint32 *quant_bias,
                         GError **error)
{
  if (!slim_quant_bias_check (deq_scale, wq, n_out, n_in, quant_bias, error))
    return FALSE;
  for (gint64 n = 0; n < n_out; n++)
    {
      const gint8 *row = wq + (gsize)n * (gsize)n_in;
      gint32 acc[4] = { 0, 0, 0, 0 };
      gint64 k = 0;

      /* four independent accumulators; integer sums are exact in any order */
      for (; k + 4 <= n_in; k += 4)
        {
          acc[0] += row[k];
          acc[1] += row[k + 1];
          acc[2] += row[k + 2];
          acc[3] += row[k + 3];
        }
      for (; k < n_in; k++)
        acc[0] += row[k];
      if (!slim_quant_bias_finish (bias, deq_scale, input_offset, n,
                                   (float)(acc[0] + acc[1] + acc[2] + acc[3]), quant_bias, error))
        return FALSE;
    }
  return TRUE;
}

/**
 * slim_quant_bias_compute_ref:
 * @bias: (nullable) (array): (n_out) float bias, %NULL for none
 * @deq_scale: (array): (n_out) float32 deq_scale
 * @input_offset: per-tensor activation offset
 * @wq: (array): (n_out, n_in) row-major int8 weight
 * @n_out: output channels
 * @n_in: input channels, < 2^24
 * @quant_bias: (out caller-allocates) (array): (n_out) int32
 * @error: return location for a #GError
 *
 * Reference of slim_quant_bias_compute(): one 64-bit accumulator per row,
 * the rounding done by slim_round_half_even_ref().
 *
 * Returns: %TRUE on success
 */
gboolean
slim_quant_bias_compute_ref (const float *bias,
                             const float *deq_scale,
                             float input_offset,
                             const gint8 *wq,
                             gint64 n_out,
                             gint64 n_in,
                             gint32 *quant_bias,
                             GError **error)
{
  if (!slim_quant_bias_check (deq_scale, wq, n_out, n_in, quant_bias, error))
    return FALSE;
  for (gint64 n = 0; n < n_out; n++)
    {
      gint64 sum = 0;
      float b = (bias != NULL) ? bias[n] : 0.0f;
      float correction, v;

      for (gint64 k = 0; k < n_in; k++)
        sum += wq[n * n_in + k];
      correction = (float)sum * input_offset;
      v = slim_round_half_even_ref (b / deq_scale[n] - correction);
      if (!(v >= -2147483648.0f && v < 2147483648.0f))
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                       "quant_bias[%" G_GINT64_FORMAT "] = %g does not fit int32", n, (double)v);
          return FALSE;
        }
      quant_bias[n] = (gint32)v;
    }
  return TRUE;
}

/**
 * slim_w4a8_scale_bias_kind:
 * @module_name: full module name ("model.layers.0.mlp.down_proj")
 *
 * msModelSlim's process_scale: a plain substring test on the full name, the
 * column-parallel list first.
 *
 * Returns: how scale_bias is reduced for this module
 */
SlimW4A8ScaleBiasKind
slim_w4a8_scale_bias_kind (const char *module_name)
{
  static const char *const row_sum[]
      = { "up_proj", "gate_proj", "q_proj", "k_proj", "v_proj", "w1", "w3" };
  static const char *const tp_split[] = { "down_proj", "o_proj", "w2" };

  g_return_val_if_fail (module_name != NULL, SLIM_W4A8_SCALE_BIAS_UNSUMMED);
  for (gsize i = 0; i < G_N_ELEMENTS (row_sum); i++)
    if (strstr (module_name, row_sum[i]) != NULL)
      return SLIM_W4A8_SCALE_BIAS_ROW_SUM;
  for (gsize i = 0; i < G_N_ELEMENTS (tp_split); i++)
    if (strstr (module_name, tp_split[i]) != NULL)
      return SLIM_W4A8_SCALE_BIAS_TP_SPLIT;
  return SLIM_W4A8_SCALE_BIAS_UNSUMMED;
}

/**
 * slim_w4a8_scale_bias_shape:
 * @module_name: full module name
 * @n_out: output channels
 * @n_in: input channels
 * @tp_num: tensor-parallel slices for row-parallel modules
 *   (%SLIM_W4A8_TP_NUM in msModelSlim)
 * @out_shape: (out caller-allocates) (array fixed-size=2): the shape
 * @error: return location for a #GError
 *
 * Fails with %SLIM_NUMERIC_ERROR_SHAPE_MISMATCH for a row-parallel module
 * whose @n_in is not a positive multiple of @tp_num (msModelSlim's reshape
 * would raise or mix rows there).
 *
 * Returns: %TRUE on success
 */
gboolean
slim_w4a8_scale_bias_shape (const char *module_name,
                            gint64 n_out,
                            gint64 n_in,
                            guint tp_num,
                            gint64 out_shape[2],
                            GError **error)
{
  g_return_val_if_fail (module_name != NULL && out_shape != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (n_out < 1 || n_in < 1)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: bad weight shape (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", module_name,
                   n_out, n_in);
      return FALSE;
    }
  switch (slim_w4a8_scale_bias_kind (module_name))
    {
    case SLIM_W4A8_SCALE_BIAS_ROW_SUM:
      out_shape[0] = n_out;
      out_shape[1] = 1;
      return TRUE;
    case SLIM_W4A8_SCALE_BIAS_TP_SPLIT:
      if (tp_num == 0 || n_in % (gint64)tp_num != 0)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s: W4A8 scale_bias splits the %" G_GINT64_FORMAT
                       " input channels into %u tensor-parallel slices; they must divide evenly",
                       module_name, n_in, tp_num);
          return FALSE;
        }
      out_shape[0] = n_out;
      out_shape[1] = (gint64)tp_num;
      return TRUE;
    case SLIM_W4A8_SCALE_BIAS_UNSUMMED:
    default:
      out_shape[0] = n_out;
      out_shape[1] = n_in;
      return TRUE;
    }
}

/**
 * slim_w4a8_scale_bias:
 * @module_name: full module name
 * @wq: (array): (n_out, n_in) row-major int4 values (unpacked)
 * @weight_scale: (array): (n_out) per-channel weight scales
 * @n_out: output channels
 * @n_in: input channels
 * @tp_num: tensor-parallel slices for row-parallel modules
 * @scale_bias: (out caller-allocates) (array): shape from
 *   slim_w4a8_scale_bias_shape(), row-major
 * @error: return location for a #GError
 *
 * Each product Wq[n,k] * scale[n] is rounded to float32 as torch does; the
 * sums are accumulated in float64 and rounded once (torch's float32
 * reduction order is unspecified, so the last bit may differ from it), then
 * multiplied by 8 (exact).
 *
 * Returns: %TRUE on success, errors as slim_w4a8_scale_bias_shape()
 */
gboolean
slim_w4a8_scale_bias (const char *module_name,
                      const gint8 *wq,
                      const float *weight_scale,
                      gint64 n_out,
                      gint64 n_in,
                      guint tp_num,
                      float *scale_bias,
                      GError **error)
{
  gint64 shape[2];
  gint64 slice;
  gboolean unsummed;

  g_return_val_if_fail (wq != NULL && weight_scale != NULL && scale_bias != NULL, FALSE);

  if (!slim_w4a8_scale_bias_shape (module_name, n_out, n_in, tp_num, shape, error))
    return FALSE;
  unsummed = (slim_w4a8_scale_bias_kind (module_name) == SLIM_W4A8_SCALE_BIAS_UNSUMMED);
  slice = n_in / shape[1]; /* n_in (row sum), n_in / tp, or 1 (unsummed) */
  for (gint64 n = 0; n < n_out; n++)
    for (gint64 t = 0; t < shape[1]; t++)
      {
        const gint8 *w = wq + (gsize)n * (gsize)n_in + (gsize)(t * slice);
        double acc = 0.0;

        for (gint64 k = 0; k < slice; k++)
          acc += (double)((float)w[k] * weight_scale[n]);
        if (unsummed)
          scale_bias[n * shape[1] + t] = (float)acc; /* d itself, no factor 8 */
        else
          scale_bias[n * shape[1] + t] = 8.0f * (float)acc;
      }
  return TRUE;
}
