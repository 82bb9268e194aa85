/* SPDX-License-Identifier: Apache-2.0
 *
 * pdmix.c: the `pdmix` processor, slimflow's shorthand for linear_quant's
 * W8A8_MIX scheme (modelslim-v1-spec.md 2.13; msModelSlim reaches it only
 * through linear_quant with `scope: pd_mix`, ActPDMixMinmax and
 * W8A8PDMixFakeQuantLinear):
 *
 *   type: pdmix
 *   include: [patterns]   default ["*"]
 *   exclude: [patterns]   default [], wins over include
 *   ext: {aggregation_type: max | mean}   optional, the act observer's
 *
 * is exactly
 *
 *   type: linear_quant
 *   qconfig:
 *     act:    {dtype: int8, scope: pd_mix, symmetric: false, method: minmax,
 *              ext: {aggregation_type: ...}}
 *     weight: {dtype: int8, scope: per_channel, symmetric: true, method: minmax}
 *   include / exclude as given
 *
 * and runs the same code: SlimPdmixProcessor derives from linear_quant's
 * SlimLinearQuantBase (linear-quant.h) and only builds that qconfig.  Both
 * types live in slim-processor-linear_quant.so; slim-processor-pdmix.so is
 * a link to it (plugins/processors/meson.build), so loading both names
 * loads one module and registers each type once.
 */
#include "linear-quant.h"

/* ---- ext: aggregation_type only ---------------------------------------- */

#define SLIM_TYPE_PDMIX_EXT (slim_pdmix_ext_get_type ())
G_DECLARE_FINAL_TYPE (SlimPdmixExt, slim_pdmix_ext, SLIM, PDMIX_EXT, GObject)

struct _SlimPdmixExt
{
  GObject parent_instance;

  SlimQAggregation aggregation_type;
};

/* clang-format off */
static const SlimPropertyDecl slim_pdmix_ext_properties[] = {
  SLIM_PROPERTY_ENUM (
      SlimPdmixExt, aggregation_type, "aggregation-type", "Aggregation type",
      "How the decode (per-tensor) activation observer combines calibration calls: max keeps "
      "the extreme min/max, mean averages each call's min/max.",
      slim_qaggregation_get_type, SLIM_QAGGREGATION_MAX),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimPdmixExt, slim_pdmix_ext, G_TYPE_OBJECT)

static void
slim_pdmix_ext_class_init (SlimPdmixExtClass *klass)
{
  SLIM_PROPERTIES_INSTALL (klass, slim_pdmix_ext_properties);
}

static void
slim_pdmix_ext_init (SlimPdmixExt *self)
{
}

/* ---- pdmix ------------------------------------------------------------- */

#define SLIM_TYPE_PDMIX_PROCESSOR (slim_pdmix_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimPdmixProcessor, slim_pdmix_processor, SLIM, PDMIX_PROCESSOR, SlimLinearQuantBase)

struct _SlimPdmixProcessor
{
  SlimLinearQuantBase parent_instance;

  SlimPdmixExt *ext; /* nullable */
};

/* include and exclude belong to SlimLinearProcessor. */
/* clang-format off */
static const SlimPropertyDecl slim_pdmix_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimPdmixProcessor, ext, "ext", "Extensions",
      "Settings of the act int8 pd_mix asym minmax quantizer (aggregation_type).",
      slim_pdmix_ext_get_type),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimPdmixProcessor, slim_pdmix_processor, SLIM_TYPE_LINEAR_QUANT_BASE)

/* Builds the W8A8_MIX qconfig and hands it to the base. */
static gboolean
slim_pdmix_processor_prepare (SlimLinearProcessor *processor, GError **error)
{
  SlimPdmixProcessor *self = SLIM_PDMIX_PROCESSOR (processor);
  SlimQAggregation aggregation
      = self->ext != NULL ? self->ext->aggregation_type : SLIM_QAGGREGATION_MAX;
  g_autoptr (SlimQConfigExt) act_ext
      = g_object_new (SLIM_TYPE_QCONFIG_EXT, "aggregation-type", aggregation, NULL);
  g_autoptr (SlimQConfig) act
      = g_object_new (SLIM_TYPE_QCONFIG, "dtype", SLIM_QDTYPE_INT8, "scope", SLIM_QSCOPE_PD_MIX,
                      "symmetric", FALSE, "method", SLIM_QMETHOD_MINMAX, "ext", act_ext, NULL);
  g_autoptr (SlimQConfig) weight = g_object_new (SLIM_TYPE_QCONFIG, "dtype", SLIM_QDTYPE_INT8,
                                                 "scope", SLIM_QSCOPE_PER_CHANNEL, "symmetric",
                                                 TRUE, "method", SLIM_QMETHOD_MINMAX, NULL);
  g_autoptr (SlimLinearQConfig) qconfig
      = g_object_new (SLIM_TYPE_LINEAR_QCONFIG, "act", act, "weight", weight, NULL);

  slim_linear_quant_base_set_qconfig (SLIM_LINEAR_QUANT_BASE (self), qconfig);
  return SLIM_LINEAR_PROCESSOR_CLASS (slim_pdmix_processor_parent_class)
      ->prepare (processor, error);
}

static void
slim_pdmix_processor_class_init (SlimPdmixProcessorClass *klass)
{
  SLIM_LINEAR_PROCESSOR_CLASS (klass)->prepare = slim_pdmix_processor_prepare;
  SLIM_PROPERTIES_INSTALL (klass, slim_pdmix_properties);
}

static void
slim_pdmix_processor_init (SlimPdmixProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    pdmix,
                    SLIM_PLUGIN_NO_ALIASES,
                    "W8A8_MIX shorthand of linear_quant: int8 pd_mix asym minmax activations "
                    "(per-token in prefill, static per-tensor in decode) with int8 per_channel "
                    "sym minmax weights",
                    slim_pdmix_processor_get_type)
