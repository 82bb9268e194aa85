/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qlinear.h: what a quantization processor decided for one linear
 * module, attached to the SlimLayer that holds it (the "deployed" state,
 * msModelSlim's IR module).  Processors create it in postprocess; every
 * later forward of the layer applies it (weights already replaced by their
 * dequantized values in the layer, activations fake-quantized by
 * slim_qlinear_apply_act from a forward hook); savers read it to write the
 * label's tensors.  Nothing else flows between processors and savers.
 */
#pragma once

#include <glib-object.h>
#include "slim-int-linear.h"
#include "slim-layer.h"
#include "slim-linear-math.h"
#include "slim-model.h"
#include "slim-qscheme.h"
#include "slim-tensor.h"

G_BEGIN_DECLS

typedef struct
{
  char *module;    /* "model.layers.0.self_attn.q_proj" */
  char *label;     /* "W8A8", "W8A8_DYNAMIC", "W8A16", "W4A8_DYNAMIC", ... */
  SlimQScheme act; /* SLIM_QSCHEME_ACT_FLOAT for weight-only */
  SlimQScheme weight;
  /* Static activation quantization (act per_tensor): one scale / offset. */
  float input_scale;
  float input_offset;
  /* Integer weight values in [qmin, qmax], stored as I8 (n_out, n_in).
   * MX per_block weights: the elements, F8_E4M3FN (mxfp8) or F4X2_E2M1
   * (mxfp4 codes) (n_out, n_in); fp8_e4m3 per_channel: F8_E4M3FN codes. */
  SlimTensor *weight_q;
  /* F32 (n_out, 1) per channel, (n_out, n_in / group_size) per group.
   * MX: U8 (n_out, ceil (n_in / 32)), the E8M0 shared exponents + 127. */
  SlimTensor *weight_scale;
  SlimTensor *weight_offset; /* NULL for MX */
  /* mxfp4 dual_scale (W4A4_MXFP4_DUALSCALE, slim-mx-dual-scale.h): F32
   * (n_out, ceil (n_in / dual_block_size), 1), the weight's dual scales
   * (weight_q and weight_scale as MXFP4 of the dual-scaled weight); the
   * dual block sizes of the weight and of the activation.  NULL / 0
   * otherwise. */
  SlimTensor *weight_dual_scale;
  gint64 dual_block_size;
  gint64 act_dual_block_size;
  gint64 group_size;         /* 0 unless per_group; 32 for MX */
  gint64 n_out;
  gint64 n_in;
  /* How later forwards of the layer run this linear: FLOAT (the default)
   * fake-quantizes the activation and multiplies by the dequantized weight
   * in float32; INT8 / INT8_REF run a linear with int8 activations as the
   * deployed integer product (slim_qlinear_to_int_linear). */
  SlimLinearMath math;
} SlimQLinear;

GType slim_qlinear_get_type (void);
#define SLIM_TYPE_QLINEAR (slim_qlinear_get_type ())

SlimQLinear *slim_qlinear_new (const char *module, const char *label);
SlimQLinear *slim_qlinear_copy (const SlimQLinear *self);
void slim_qlinear_free (SlimQLinear *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimQLinear, slim_qlinear_free)

/* Fake-quantizes an activation x (n_tokens, n_in) in place as deployed:
 * static per-tensor with input_scale/offset, dynamic per-token rows, or
 * nothing for float activations. */
void slim_qlinear_apply_act (const SlimQLinear *self, float *x, gint64 n_tokens, gint64 n_in);

/* TRUE when the record's forwards are integer products: math is not
 * FLOAT, the activations are int8 (per_tensor, per_token or pd_mix) and
 * the integer weight is there. */
gboolean slim_qlinear_is_integer (const SlimQLinear *self);

/* The integer linear of the record as deployed (slim-int-linear.h):
 * per_tensor activations as W8A8 static with deq_scale = input_scale *
 * weight_scale and quant_bias from bias (slim-pack.h, the saver's
 * values), per_token and pd_mix (its prefill state) with weight_scale /
 * weight_offset and the float bias.  bias (n_out) may be NULL.  NULL with
 * an error when the record cannot run so (float activations, no integer
 * weight, an asymmetric static weight, a quant_bias beyond int32). */
SlimIntLinear *
slim_qlinear_to_int_linear (const SlimQLinear *self, const float *bias, GError **error);

/* Attach / look up on a layer (the layer owns the record). Setting a
 * second record for the same module replaces the first. */
void slim_layer_set_qlinear (SlimLayer *layer, SlimQLinear *qlinear /* transfer full */);
const SlimQLinear *slim_layer_get_qlinear (SlimLayer *layer, const char *module);
/* All records of the layer in the order they were set (transfer container). */
GPtrArray *slim_layer_list_qlinears (SlimLayer *layer);

/* Forward hooks that apply every deployed act quantization of the layer,
 * its SlimQAttention records included (user_data = layer), and run the
 * records with integer math as integer products (linear_forward; the
 * integer linear is built at its first forward and kept with the layer's
 * records). Runners chain them before a processor's own hooks. */
void slim_qlinear_get_deployed_hooks (SlimLayer *layer, SlimForwardHooks *hooks);

G_END_DECLS
