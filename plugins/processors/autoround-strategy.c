/* SPDX-License-Identifier: Apache-2.0
 *
 * autoround-strategy.c: one `strategies` entry of autoround_quant (see
 * autoround-strategy.h).
 */
#include "autoround-strategy.h"

struct _SlimAutoRoundStrategy
{
  GObject parent_instance;

  SlimLinearQConfig *qconfig;
  char **include;
  char **exclude;
};

/* clang-format off */
static const SlimPropertyDecl slim_autoround_strategy_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimAutoRoundStrategy, qconfig, "qconfig", "Quantization config",
      "Weight (required: method autoround, int4/int8, per_channel or per_group with "
      "ext.group_size, symmetric or not) and activation (optional: float; or per_token int8/int4 "
      "symmetric minmax, dynamic) quantizer configs of the linears this strategy takes.",
      slim_linear_qconfig_get_type, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_STRV (
      SlimAutoRoundStrategy, include, "include", "Include",
      "Module name patterns (slim-glob: `*` crosses dots) of the linears this strategy takes.",
      SLIM_STRV ("*")),
  SLIM_PROPERTY_STRV (
      SlimAutoRoundStrategy, exclude, "exclude", "Exclude",
      "Module name patterns this strategy leaves to later strategies; wins over include.",
      SLIM_STRV_EMPTY),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimAutoRoundStrategy, slim_autoround_strategy, G_TYPE_OBJECT)

static void
slim_autoround_strategy_finalize (GObject *object)
{
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_autoround_strategy_parent_class)->finalize (object);
}

static void
slim_autoround_strategy_class_init (SlimAutoRoundStrategyClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_autoround_strategy_finalize;
  SLIM_PROPERTIES_INSTALL (klass, slim_autoround_strategy_properties);
}

static void
slim_autoround_strategy_init (SlimAutoRoundStrategy *self)
{
}

SlimLinearQConfig *
slim_autoround_strategy_get_qconfig (SlimAutoRoundStrategy *self)
{
  g_return_val_if_fail (SLIM_IS_AUTOROUND_STRATEGY (self), NULL);
  return self->qconfig;
}

const char *const *
slim_autoround_strategy_get_include (SlimAutoRoundStrategy *self)
{
  static const char *const all[] = { "*", NULL };

  g_return_val_if_fail (SLIM_IS_AUTOROUND_STRATEGY (self), all);
  return self->include != NULL ? (const char *const *)self->include : all;
}

const char *const *
slim_autoround_strategy_get_exclude (SlimAutoRoundStrategy *self)
{
  static const char *const none[] = { NULL };

  g_return_val_if_fail (SLIM_IS_AUTOROUND_STRATEGY (self), none);
  return self->exclude != NULL ? (const char *const *)self->exclude : none;
}
