/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linear-qconfig.h: `qconfig` of linear_quant, msModelSlim's
 * LinearQConfig (core/quantizer/linear.py): an activation and a weight
 * quantizer config.  `weight` is required; an omitted `act` means
 * {dtype: float, scope: per_tensor, symmetric: true, method: none}
 * (weight-only quantization).
 */
#pragma once

#include <glib-object.h>
#include "slim-qconfig.h"

G_BEGIN_DECLS

#define SLIM_TYPE_LINEAR_QCONFIG (slim_linear_qconfig_get_type ())
G_DECLARE_FINAL_TYPE (SlimLinearQConfig, slim_linear_qconfig, SLIM, LINEAR_QCONFIG, GObject)

/* (transfer none) (nullable): NULL when `act` was omitted. */
SlimQConfig *slim_linear_qconfig_get_act (SlimLinearQConfig *self);
/* (transfer none) (nullable): NULL only for an object built without the
 * required `weight` (g_object_new with defaults). */
SlimQConfig *slim_linear_qconfig_get_weight (SlimLinearQConfig *self);

G_END_DECLS
