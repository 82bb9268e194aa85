/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qconfig-ext.c: the `ext` mapping of a quantizer config.
 */
#include "slim-qconfig-ext.h"

struct _SlimQConfigExt
{
  GObject parent_instance;

  gint64 group_size;
  SlimQAggregation aggregation_type;
  gint max_bound;
};

enum
{
  PROP_0,
  PROP_GROUP_SIZE,
  PROP_AGGREGATION_TYPE,
  PROP_MAX_BOUND,
  N_PROPS
};

#define DEFAULT_GROUP_SIZE 0
#define DEFAULT_AGGREGATION_TYPE SLIM_QAGGREGATION_MAX
#define DEFAULT_MAX_BOUND 0

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (SlimQConfigExt, slim_qconfig_ext, G_TYPE_OBJECT)

static void
slim_qconfig_ext_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  SlimQConfigExt *self = SLIM_QCONFIG_EXT (object);

  switch (prop_id)
    {
    case PROP_GROUP_SIZE:
      g_value_set_int64 (value, self->group_size);
      break;
    case PROP_AGGREGATION_TYPE:
      g_value_set_enum (value, self->aggregation_type);
      break;
    case PROP_MAX_BOUND:
      g_value_set_int (value, self->max_bound);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_qconfig_ext_set_property (GObject *object,
                               guint prop_id,
                               const GValue *value,
                               GParamSpec *pspec)
{
  SlimQConfigExt *self = SLIM_QCONFIG_EXT (object);

  switch (prop_id)
    {
    case PROP_GROUP_SIZE:
      self->group_size = g_value_get_int64 (value);
      break;
    case PROP_AGGREGATION_TYPE:
      self->aggregation_type = g_value_get_enum (value);
      break;
    case PROP_MAX_BOUND:
      self->max_bound = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_qconfig_ext_class_init (SlimQConfigExtClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = slim_qconfig_ext_get_property;
  object_class->set_property = slim_qconfig_ext_set_property;

  properties[PROP_GROUP_SIZE] = g_param_spec_int64 (
      "group-size", "Group size",
      "Input features per quantization group of a per_group weight (0 = not set; ignored by "
      "other scopes).",
      0, SLIM_QCONFIG_MAX_GROUP_SIZE, DEFAULT_GROUP_SIZE, flags);
  properties[PROP_AGGREGATION_TYPE] = g_param_spec_enum (
      "aggregation-type", "Aggregation type",
      "How a per-tensor activation observer combines calibration calls: max keeps the extreme "
      "min/max, mean averages each call's min/max.",
      SLIM_TYPE_QAGGREGATION, DEFAULT_AGGREGATION_TYPE, flags);
  properties[PROP_MAX_BOUND] = g_param_spec_int (
      "max-bound", "Max bound",
      "Largest integer magnitude used instead of the dtype's (e.g. 119 for int8; 0 = the dtype's "
      "own bound).",
      0, 255, DEFAULT_MAX_BOUND, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
slim_qconfig_ext_init (SlimQConfigExt *self)
{
  self->group_size = DEFAULT_GROUP_SIZE;
  self->aggregation_type = DEFAULT_AGGREGATION_TYPE;
  self->max_bound = DEFAULT_MAX_BOUND;
}

/**
 * slim_qconfig_ext_get_group_size:
 * @self: an ext mapping
 *
 * Returns: `group_size`, 0 when not set
 */
gint64
slim_qconfig_ext_get_group_size (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), 0);
  return self->group_size;
}

/**
 * slim_qconfig_ext_get_aggregation_type:
 * @self: an ext mapping
 *
 * Returns: `aggregation_type` (max by default)
 */
SlimQAggregation
slim_qconfig_ext_get_aggregation_type (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), DEFAULT_AGGREGATION_TYPE);
  return self->aggregation_type;
}

/**
 * slim_qconfig_ext_get_max_bound:
 * @self: an ext mapping
 *
 * Returns: `max_bound`, 0 when not set
 */
gint
slim_qconfig_ext_get_max_bound (SlimQConfigExt *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG_EXT (self), 0);
  return self->max_bound;
}
