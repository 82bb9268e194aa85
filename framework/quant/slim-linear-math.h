/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linear-math.h: how the forward computes the linears of a layer
 * quantized with int8 activations (W8A8, W8A8_MIX, W8A8_DYNAMIC,
 * W4A8_DYNAMIC):
 *
 *   float     float32 product of the fake-quantized activation with the
 *             dequantized weight (msModelSlim's fake-quant IR)
 *   int8      int8 activation x int8 weight, exact int32 sums, then scaled
 *             (slim-int-linear.h: what the accelerator computes)
 *   int8_ref  int8 with the plain reference product (slim_igemm_s8s8_ref):
 *             the same results, slowly; for tests
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef enum
{
  SLIM_LINEAR_MATH_FLOAT,
  SLIM_LINEAR_MATH_INT8,
  SLIM_LINEAR_MATH_INT8_REF,
} SlimLinearMath;

GType slim_linear_math_get_type (void);
#define SLIM_TYPE_LINEAR_MATH (slim_linear_math_get_type ())

/* "float", "int8", "int8_ref" (the GEnum nicks); FALSE with SLIM_CONFIG_ERROR_BAD_VALUE
 * naming the valid choices otherwise. */
gboolean slim_linear_math_parse (const char *text, SlimLinearMath *out, GError **error);
const char *slim_linear_math_get_name (SlimLinearMath math);

G_END_DECLS
