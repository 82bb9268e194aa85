/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linear-qconfig.c: `qconfig` of linear_quant (act + weight).
 */
#include "slim-linear-qconfig.h"

#include "slim-config-object.h"

struct _SlimLinearQConfig
{
  GObject parent_instance;

  SlimQConfig *act;    /* nullable: float activations */
  SlimQConfig *weight; /* required */
};

enum
{
  PROP_0,
  PROP_ACT,
  PROP_WEIGHT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (SlimLinearQConfig, slim_linear_qconfig, G_TYPE_OBJECT)

static void
slim_linear_qconfig_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  SlimLinearQConfig *self = SLIM_LINEAR_QCONFIG (object);

  switch (prop_id)
    {
    case PROP_ACT:
      g_value_set_object (value, self->act);
      break;
    case PROP_WEIGHT:
      g_value_set_object (value, self->weight);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_linear_qconfig_set_property (GObject *object,
                                  guint prop_id,
                                  const GValue *value,
                                  GParamSpec *pspec)
{
  SlimLinearQConfig *self = SLIM_LINEAR_QCONFIG (object);

  switch (prop_id)
    {
    case PROP_ACT:
      g_set_object (&self->act, g_value_get_object (value));
      break;
    case PROP_WEIGHT:
      g_set_object (&self->weight, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_linear_qconfig_dispose (GObject *object)
{
  SlimLinearQConfig *self = SLIM_LINEAR_QCONFIG (object);

  g_clear_object (&self->act);
  g_clear_object (&self->weight);
  G_OBJECT_CLASS (slim_linear_qconfig_parent_class)->dispose (object);
}

static void
slim_linear_qconfig_class_init (SlimLinearQConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = slim_linear_qconfig_get_property;
  object_class->set_property = slim_linear_qconfig_set_property;
  object_class->dispose = slim_linear_qconfig_dispose;

  properties[PROP_ACT] = g_param_spec_object (
      "act", "Activation quantization",
      "How the linears' inputs are quantized; omitted = float activations (weight-only).",
      SLIM_TYPE_QCONFIG, flags);
  properties[PROP_WEIGHT]
      = g_param_spec_object ("weight", "Weight quantization",
                             "How the linears' weights are quantized.", SLIM_TYPE_QCONFIG, flags);
  slim_param_spec_set_flags (properties[PROP_WEIGHT], SLIM_PARAM_REQUIRED);
  g_object_class_install_properties (object_class, N_PROPS, properties);
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
