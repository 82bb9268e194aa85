/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-pack.h: tensors the ascendv1 saver derives from quantized linears
 * (modelslim-v1-spec.md 3.1; msModelSlim save/ascendv1.py, save/utils/
 * pack.py and deqscale.py):
 *
 *   W8A8 / W8A8_MIX static:
 *     deq_scale[n]  = input_scale * weight_scale[n]            (float32)
 *     quant_bias[n] = round(bias[n] / deq_scale[n]
 *                           - (float) sum_k Wq[n,k] * input_offset)   (int32)
 *     deq_scale is written as int64: the float32 bit pattern read as an
 *     int32 and sign-extended (numpy int32 -> int64 astype).
 *   W4A8_DYNAMIC:
 *     weight packed over pairs of OUTPUT rows, (n_out / 2, n_in) int8:
 *       packed[j,k] = (Wq[2j+1,k] << 4) | (Wq[2j,k] & 0xF)
 *     scale_bias from d[n,k] = Wq[n,k] * scale[n], chosen by the module name:
 *       name contains up_proj, gate_proj, q_proj, k_proj, v_proj, w1 or w3:
 *         8 * sum_k d[n,k]                                      (n_out, 1)
 *       else name contains down_proj, o_proj or w2 (row-parallel, tp = 16):
 *         8 * sum over the t-th of tp equal slices of k          (n_out, tp)
 *       else: d itself, unsummed                                 (n_out, n_in)
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* msModelSlim's fixed tensor-parallel count for the W4A8 scale_bias. */
#define SLIM_W4A8_TP_NUM 16

gboolean slim_pack_w4a8_int4 (const gint8 *wq, /* (n_out, n_in) row-major, in [-8, 7] */
                              gint64 n_out,
                              gint64 n_in,
                              gint8 *packed, /* (n_out / 2, n_in) row-major */
                              GError **error);
gboolean slim_pack_w4a8_int4_ref (const gint8 *wq, /* (n_out, n_in) row-major, in [-8, 7] */
                                  gint64 n_out,
                                  gint64 n_in,
                                  gint8 *packed, /* (n_out / 2, n_in) row-major */
                                  GError **error);
void slim_unpack_w4a8_int4 (const gint8 *packed, /* (n_out / 2, n_in) row-major */
                            gint64 n_out,
                            gint64 n_in,
                            gint8 *wq /* (n_out, n_in) row-major */);

gint64 slim_deq_scale_to_int64 (float deq_scale);
float slim_deq_scale_from_int64 (gint64 value);
void slim_deq_scale_compute (float input_scale,
                             const float *weight_scale, /* (n_out) */
                             gint64 n_out,
                             float *deq_scale /* (n_out) */);

gboolean slim_quant_bias_compute (const float *bias,      /* (n_out), nullable = zeros */
                                  const float *deq_scale, /* (n_out) */
                                  float input_offset,
                                  const gint8 *wq, /* (n_out, n_in) row-major */
                                  gint64 n_out,
                                  gint64 n_in,
                                  gint32 *quant_bias, /* (n_out) */
                                  GError **error);
gboolean slim_quant_bias_compute_ref (const float *bias,      /* (n_out), nullable = zeros */
                                      const float *deq_scale, /* (n_out) */
                                      float input_offset,
                                      const gint8 *wq, /* (n_out, n_in) row-major */
                                      gint64 n_out,
                                      gint64 n_in,
                                      gint32 *quant_bias, /* (n_out) */
                                      GError **error);

typedef enum
{
  SLIM_W4A8_SCALE_BIAS_ROW_SUM,  /* column-parallel: (n_out, 1) */
  SLIM_W4A8_SCALE_BIAS_TP_SPLIT, /* row-parallel: (n_out, tp_num) */
  SLIM_W4A8_SCALE_BIAS_UNSUMMED, /* any other name: (n_out, n_in) */
} SlimW4A8ScaleBiasKind;

SlimW4A8ScaleBiasKind slim_w4a8_scale_bias_kind (const char *module_name);
gboolean slim_w4a8_scale_bias_shape (const char *module_name,
                                     gint64 n_out,
                                     gint64 n_in,
                                     guint tp_num,
                                     gint64 out_shape[2],
                                     GError **error);
gboolean slim_w4a8_scale_bias (const char *module_name,
                               const gint8 *wq,           /* (n_out, n_in) row-major */
                               const float *weight_scale, /* (n_out) */
                               gint64 n_out,
                               gint64 n_in,
                               guint tp_num,
                               float *scale_bias, /* out_shape of _shape() row-major */
                               GError **error);

G_END_DECLS
