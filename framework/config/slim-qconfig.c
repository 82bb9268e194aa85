/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qconfig.c: one quantizer config (msModelSlim QConfig).
 */
#include "slim-qconfig.h"

#include "slim-config-object.h"

struct _SlimQConfig
{
  GObject parent_instance;

  SlimQDtype dtype;
  SlimQScope scope;
  gboolean symmetric;
  SlimQMethod method;
  SlimQConfigExt *ext; /* nullable */
};

enum
{
  PROP_0,
  PROP_DTYPE,
  PROP_SCOPE,
  PROP_SYMMETRIC,
  PROP_METHOD,
  PROP_EXT,
  N_PROPS
};

/* Required keys; the defaults only exist because a GParamSpec needs one. */
#define DEFAULT_DTYPE SLIM_QDTYPE_INT8
#define DEFAULT_SCOPE SLIM_QSCOPE_PER_CHANNEL
#define DEFAULT_SYMMETRIC TRUE
#define DEFAULT_METHOD SLIM_QMETHOD_MINMAX

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (SlimQConfig, slim_qconfig, G_TYPE_OBJECT)

static void
slim_qconfig_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  SlimQConfig *self = SLIM_QCONFIG (object);

  switch (prop_id)
    {
    case PROP_DTYPE:
      g_value_set_enum (value, self->dtype);
      break;
    case PROP_SCOPE:
      g_value_set_enum (value, self->scope);
      break;
    case PROP_SYMMETRIC:
      g_value_set_boolean (value, self->symmetric);
      break;
    case PROP_METHOD:
      g_value_set_enum (value, self->method);
      break;
    case PROP_EXT:
      g_value_set_object (value, self->ext);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_qconfig_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  SlimQConfig *self = SLIM_QCONFIG (object);

  switch (prop_id)
    {
    case PROP_DTYPE:
      self->dtype = g_value_get_enum (value);
      break;
    case PROP_SCOPE:
      self->scope = g_value_get_enum (value);
      break;
    case PROP_SYMMETRIC:
      self->symmetric = g_value_get_boolean (value);
      break;
    case PROP_METHOD:
      self->method = g_value_get_enum (value);
      break;
    case PROP_EXT:
      g_set_object (&self->ext, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_qconfig_dispose (GObject *object)
{
  SlimQConfig *self = SLIM_QCONFIG (object);

  g_clear_object (&self->ext);
  G_OBJECT_CLASS (slim_qconfig_parent_class)->dispose (object);
}

static void
slim_qconfig_class_init (SlimQConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = slim_qconfig_get_property;
  object_class->set_property = slim_qconfig_set_property;
  object_class->dispose = slim_qconfig_dispose;

  properties[PROP_DTYPE]
      = g_param_spec_enum ("dtype", "Data type", "Quantized data type (int8, int4, float, ...).",
                           SLIM_TYPE_QDTYPE, DEFAULT_DTYPE, flags);
  slim_param_spec_set_flags (properties[PROP_DTYPE], SLIM_PARAM_REQUIRED);
  properties[PROP_SCOPE] = g_param_spec_enum (
      "scope", "Scope",
      "Which elements share one scale: per_tensor, per_channel (weight rows), per_group (runs of "
      "group_size input features), per_token (activation rows), pd_mix, ...",
      SLIM_TYPE_QSCOPE, DEFAULT_SCOPE, flags);
  slim_param_spec_set_flags (properties[PROP_SCOPE], SLIM_PARAM_REQUIRED);
  properties[PROP_SYMMETRIC] = g_param_spec_boolean (
      "symmetric", "Symmetric",
      "Symmetric quantization (zero offset) or asymmetric (scale and offset).", DEFAULT_SYMMETRIC,
      flags);
  slim_param_spec_set_flags (properties[PROP_SYMMETRIC], SLIM_PARAM_REQUIRED);
  properties[PROP_METHOD] = g_param_spec_enum (
      "method", "Method",
      "How the quantization parameters are found (minmax; none for float; histogram, ssz, gptq "
      "and autoround are named but not implemented yet).",
      SLIM_TYPE_QMETHOD, DEFAULT_METHOD, flags);
  slim_param_spec_set_flags (properties[PROP_METHOD], SLIM_PARAM_REQUIRED);
  properties[PROP_EXT]
      = g_param_spec_object ("ext", "Extensions", "Method-specific settings (group_size, ...).",
                             SLIM_TYPE_QCONFIG_EXT, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
slim_qconfig_init (SlimQConfig *self)
{
  self->dtype = DEFAULT_DTYPE;
  self->scope = DEFAULT_SCOPE;
  self->symmetric = DEFAULT_SYMMETRIC;
  self->method = DEFAULT_METHOD;
}

/**
 * slim_qconfig_get_scheme:
 * @self: a quantizer config
 *
 * Returns: its dtype, scope and symmetric flag
 */
SlimQScheme
slim_qconfig_get_scheme (SlimQConfig *self)
{
  SlimQScheme scheme = SLIM_QSCHEME_ACT_FLOAT;

  g_return_val_if_fail (SLIM_IS_QCONFIG (self), scheme);
  scheme.dtype = self->dtype;
  scheme.scope = self->scope;
  scheme.symmetric = self->symmetric;
  return scheme;
}

/**
 * slim_qconfig_get_method:
 * @self: a quantizer config
 *
 * Returns: its method
 */
SlimQMethod
slim_qconfig_get_method (SlimQConfig *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG (self), DEFAULT_METHOD);
  return self->method;
}

/**
 * slim_qconfig_get_ext:
 * @self: a quantizer config
 *
 * Returns: (transfer none) (nullable): the `ext` mapping, %NULL when absent
 */
SlimQConfigExt *
slim_qconfig_get_ext (SlimQConfig *self)
{
  g_return_val_if_fail (SLIM_IS_QCONFIG (self), NULL);
  return self->ext;
}
