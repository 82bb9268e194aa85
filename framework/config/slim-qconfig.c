/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qconfig.c: one quantizer config (msModelSlim QConfig).
 */
#include "slim-qconfig.h"

#include "slim-property.h"

struct _SlimQConfig
{
  GObject parent_instance;

  SlimQDtype dtype;
  SlimQScope scope;
  gboolean symmetric;
  SlimQMethod method;
  SlimQConfigExt *ext; /* nullable */
};

/* Required keys; the defaults only exist because a GParamSpec needs one. */
#define DEFAULT_METHOD SLIM_QMETHOD_MINMAX

/* clang-format off */
static const SlimPropertyDecl slim_qconfig_properties[] = {
  SLIM_PROPERTY_ENUM (SlimQConfig, dtype, "dtype", "Data type",
                      "Quantized data type (int8, int4, float, ...).", slim_qdtype_get_type,
                      SLIM_QDTYPE_INT8, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_ENUM (
      SlimQConfig, scope, "scope", "Scope",
      "Which elements share one scale: per_tensor, per_channel (weight rows), per_group (runs of "
      "group_size input features), per_token (activation rows), pd_mix, ...",
      slim_qscope_get_type, SLIM_QSCOPE_PER_CHANNEL, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_BOOLEAN (
      SlimQConfig, symmetric, "symmetric", "Symmetric",
      "Symmetric quantization (zero offset) or asymmetric (scale and offset).", TRUE,
      .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_ENUM (
      SlimQConfig, method, "method", "Method",
      "How the quantization parameters are found: minmax; none for float; histogram (int8 "
      "per_tensor activations); gptq (int8/int4 per_channel/per_group weights); ssz (int8/int4 per_channel "
      "sym weights); autoround is named but not implemented yet.",
      slim_qmethod_get_type, DEFAULT_METHOD, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_OBJECT (SlimQConfig, ext, "ext", "Extensions",
                        "Method-specific settings (group_size, percdamp, block_size, ...).", slim_qconfig_ext_get_type),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimQConfig, slim_qconfig, G_TYPE_OBJECT)

static void
slim_qconfig_finalize (GObject *object)
{
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_qconfig_parent_class)->finalize (object);
}

static void
slim_qconfig_class_init (SlimQConfigClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_qconfig_finalize;
  SLIM_PROPERTIES_INSTALL (klass, slim_qconfig_properties);
}

static void
slim_qconfig_init (SlimQConfig *self)
{
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
