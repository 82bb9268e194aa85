/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linear-qconfig.c: `qconfig` of linear_quant (act + weight).
 */
#include "slim-linear-qconfig.h"

#include "slim-property.h"

struct _SlimLinearQConfig
{
  GObject parent_instance;

  SlimQConfig *act;    /* nullable: float activations */
  SlimQConfig *weight; /* required */
};

static const SlimPropertyDecl slim_linear_qconfig_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimLinearQConfig, act, "act", "Activation quantization",
      "How the linears' inputs are quantized; omitted = float activations (weight-only).",
      slim_qconfig_get_type),
  SLIM_PROPERTY_OBJECT (SlimLinearQConfig, weight, "weight", "Weight quantization",
                        "How the linears' weights are quantized.", slim_qconfig_get_type,
                        .flags = SLIM_PARAM_REQUIRED),
};

G_DEFINE_FINAL_TYPE (SlimLinearQConfig, slim_linear_qconfig, G_TYPE_OBJECT)

static void
slim_linear_qconfig_finalize (GObject *object)
{
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_linear_qconfig_parent_class)->finalize (object);
}

static void
slim_linear_qconfig_class_init (SlimLinearQConfigClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_linear_qconfig_finalize;
  SLIM_PROPERTIES_INSTALL (klass, slim_linear_qconfig_properties);
}

static void
slim_linear_qconfig_init (SlimLinearQConfig *self)
{
}

/**
 * slim_linear_qconfig_get_act:
 * @self: a linear qconfig
 *
 * Returns: (transfer none) (nullable): the activation config, %NULL when
 *   `act` was omitted (float activations)
 */
SlimQConfig *
slim_linear_qconfig_get_act (SlimLinearQConfig *self)
{
  g_return_val_if_fail (SLIM_IS_LINEAR_QCONFIG (self), NULL);
  return self->act;
}

/**
 * slim_linear_qconfig_get_weight:
 * @self: a linear qconfig
 *
 * Returns: (transfer none) (nullable): the weight config
 */
SlimQConfig *
slim_linear_qconfig_get_weight (SlimLinearQConfig *self)
{
  g_return_val_if_fail (SLIM_IS_LINEAR_QCONFIG (self), NULL);
  return self->weight;
}
