/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-int-linear.h: one quantized linear run as the accelerator runs it
 * (issue #16 item 1): the activation quantized to int8, an exact int32
 * product with the int8 weight (slim-igemm.h), then scaled to float.
 *
 *   static (W8A8, modelslim-v1-spec.md 3.1):
 *     xq[t,k]  = clamp(round(x[t,k] / input_scale + input_offset), -128, 127)
 *     acc[t,n] = sum_k xq[t,k] * Wq[n,k]                         (int32, exact)
 *     y[t,n]   = deq_scale[n] * (float)(acc[t,n] + quant_bias[n])
 *     (quant_bias holds the float bias and the input_offset correction)
 *
 *   per-token (W8A8_DYNAMIC, W4A8_DYNAMIC after unpacking):
 *     s[t]     = max_k |x[t,k]| / 127, xq = clamp(round(x / s[t]), -128, 127)
 *     acc_g    = sum over the k of group g of xq[t,k] * Wq[n,k]   (int32, exact)
 *     y[t,n]   = sum_g s[t] * ws[n,g] * ((float)acc_g - wo[n,g] * (float)sum_g xq[t,k])
 *                + bias[n]
 *     (one group of n_in columns for per-channel weight scales)
 *
 * The activation codes are those of slim_quantize_rows /
 * slim_quantize_rows_dynamic, i.e. the codes the float fake-quant path
 * (slim_qlinear_apply_act) rounds to, so the two paths differ only in how
 * the products are accumulated and scaled.
 *
 * slim_int_linear_forward_ref runs the same quantization and the same
 * scaling code on the int32 sums of slim_igemm_s8s8_ref: integer sums are
 * exact, so its output equals slim_int_linear_forward's bit for bit.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _SlimIntLinear SlimIntLinear;

/* W8A8 static: wq (n_out, n_in), deq_scale (n_out) positive finite,
 * quant_bias (n_out); input_scale > 0.  NULL with an error on bad values
 * or n_in beyond SLIM_IGEMM_MAX_K. */
SlimIntLinear *slim_int_linear_new_static (const gint8 *wq, /* (n_out, n_in) row-major */
                                           gint64 n_out,
                                           gint64 n_in,
                                           float input_scale,
                                           float input_offset,
                                           const float *deq_scale,   /* (n_out) */
                                           const gint32 *quant_bias, /* (n_out) */
                                           GError **error);

/* Per-token symmetric int8 activations: wq (n_out, n_in) integer codes,
 * weight_scale / weight_offset (n_out, n_in / group_size) (group_size 0:
 * per channel, (n_out, 1)); weight_offset and bias may be NULL (zeros). */
SlimIntLinear *slim_int_linear_new_per_token (const gint8 *wq, /* (n_out, n_in) row-major */
                                              gint64 n_out,
                                              gint64 n_in,
                                              const float *weight_scale,  /* (n_out, n_groups) */
                                              const float *weight_offset, /* (n_out, n_groups) */
                                              gint64 group_size,
                                              const float *bias, /* (n_out) */
                                              GError **error);

/* msModelSlim's static fake-quant calibration product as integers: the
 * activation parameters change with every call (the running range), so
 * they come with the call, the weight is packed once.  wq (n_out, n_in)
 * per-channel symmetric int8 codes with weight_scale (n_out), bias (n_out)
 * or NULL:
 *   xq[t,k] = clamp(round(x[t,k] / s + o), -128, 127)
 *   y[t,n]  = (s * weight_scale[n]) * (float)(sum_k xq[t,k] Wq[n,k] - o rowsum[n]) + bias[n]
 * which is sum_k (xq - o) s * Wq ws, the float fake-quant product, with
 * the sum exact instead of rounded term by term.  x may be raw or already
 * fake-quantized with (s, o): both give the same codes.  NULL with an
 * error on bad values or n_in beyond SLIM_IGEMM_MAX_K. */
SlimIntLinear *slim_int_linear_new_fake_quant (const gint8 *wq, /* (n_out, n_in) row-major */
                                               gint64 n_out,
                                               gint64 n_in,
                                               const float *weight_scale, /* (n_out) */
                                               const float *bias,         /* (n_out) */
                                               GError **error);

void slim_int_linear_free (SlimIntLinear *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimIntLinear, slim_int_linear_free)

gint64 slim_int_linear_get_n_out (const SlimIntLinear *self);
gint64 slim_int_linear_get_n_in (const SlimIntLinear *self);

/* y (n_tokens, n_out) from x (n_tokens, n_in), both row-major; n_tokens
 * may be 0.  The bias is part of the result (quant_bias or bias). */
void slim_int_linear_forward (const SlimIntLinear *self,
                              const float *x, /* (n_tokens, n_in) */
                              gint64 n_tokens,
                              float *y /* (n_tokens, n_out) */);
/* The same with the int32 sums of slim_igemm_s8s8_ref (bit-identical). */
void slim_int_linear_forward_ref (const SlimIntLinear *self,
                                  const float *x, /* (n_tokens, n_in) */
                                  gint64 n_tokens,
                                  float *y /* (n_tokens, n_out) */);

/* A slim_int_linear_new_fake_quant linear with this call's activation
 * scale s > 0 and offset o (integral); y (n_tokens, n_out). */
void slim_int_linear_forward_fake_quant (const SlimIntLinear *self,
                                         const float *x, /* (n_tokens, n_in) */
                                         gint64 n_tokens,
                                         float input_scale,
                                         float input_offset,
                                         float *y /* (n_tokens, n_out) */);
/* The same with the int32 sums of slim_igemm_s8s8_ref (bit-identical). */
void slim_int_linear_forward_fake_quant_ref (const SlimIntLinear *self,
                                             const float *x, /* (n_tokens, n_in) */
                                             gint64 n_tokens,
                                             float input_scale,
                                             float input_offset,
                                             float *y /* (n_tokens, n_out) */);

G_END_DECLS
