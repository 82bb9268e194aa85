/* SPDX-License-Identifier: Apache-2.0
 *
 * ssz.c: the `ssz` processor, slimflow's shorthand for linear_quant with
 * SSZ weights (modelslim-v1-spec.md 2.11; msModelSlim reaches SSZ only
 * through linear_quant's `weight.method: ssz`, WeightPerChannelSsz):
 *
 *   type: ssz
 *   act: {dtype, scope, symmetric, method, ext}   optional: float activations
 *   weight_dtype: int8 | int4                     default int8
 *   step: N                                       default 0 = 50 (ext.step)
 *   include: [patterns]   default ["*"]
 *   exclude: [patterns]   default [], wins over include
 *
 * is exactly
 *
 *   type: linear_quant
 *   qconfig:
 *     act: <act as given, or omitted>
 *     weight: {dtype: <weight_dtype>, scope: per_channel, symmetric: true,
 *              method: ssz, ext: {step: <step>}}
 *   include / exclude as given
 *
 * (per_channel symmetric is the only scheme msModelSlim registers SSZ
 * for).  The act/weight pair decides the label as in linear_quant:
 * act int8 per_token sym + int4 -> W4A8_DYNAMIC, + int8 -> W8A8_DYNAMIC,
 * static int8 per_tensor act + int8 -> W8A8, no act + int8 -> W8A16.
 *
 * It runs linear_quant's code: SlimSszProcessor derives from
 * SlimLinearQuantBase (linear-quant.h) and only builds that qconfig, so
 * checkpoint/resume (the pattern hits; SSZ keeps nothing across layers),
 * is_data_free (true with per_token or float activations) and
 * supports_distributed (true: SSZ is a deterministic function of the
 * weight, every worker computes the same result; static minmax
 * activations reduce across workers) are linear_quant's.  It lives in
 * slim-processor-linear_quant.so; slim-processor-ssz.so is a link to it
 * (plugins/processors/meson.build).
 */
#include "linear-quant.h"

#include "slim-ssz.h"

#define SLIM_TYPE_SSZ_PROCESSOR (slim_ssz_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimSszProcessor, slim_ssz_processor, SLIM, SSZ_PROCESSOR, SlimLinearQuantBase)

struct _SlimSszProcessor
{
  SlimLinearQuantBase parent_instance;

  SlimQConfig *act; /* nullable: float activations */
  SlimQDtype weight_dtype;
  gint64 step;
};

/* include and exclude belong to SlimLinearProcessor. */
/* clang-format off */
static const SlimPropertyDecl slim_ssz_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimSszProcessor, act, "act", "Activation quantization",
      "How the linears' inputs are quantized, as linear_quant's qconfig.act; omitted = float "
      "activations (weight-only).",
      slim_qconfig_get_type),
  SLIM_PROPERTY_ENUM (
      SlimSszProcessor, weight_dtype, "weight-dtype", "Weight data type",
      "int8 or int4 per_channel symmetric SSZ weights.",
      slim_qdtype_get_type, SLIM_QDTYPE_INT8),
  SLIM_PROPERTY_INT64 (
      SlimSszProcessor, step, "step", "SSZ iterations",
      "Most scale-search iterations (qconfig.weight.ext.step; 0 = msModelSlim's default, 50).",
      0, G_MAXINT32, 0),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimSszProcessor, slim_ssz_processor, SLIM_TYPE_LINEAR_QUANT_BASE)

/* Builds the qconfig and hands it to the base. */
static gboolean
slim_ssz_processor_prepare (SlimLinearProcessor *processor, GError **error)
{
  SlimSszProcessor *self = SLIM_SSZ_PROCESSOR (processor);
  g_autoptr (SlimQConfigExt) weight_ext = NULL;
  g_autoptr (SlimQConfig) weight = NULL;
  g_autoptr (SlimLinearQConfig) qconfig = NULL;

  if (self->weight_dtype != SLIM_QDTYPE_INT8 && self->weight_dtype != SLIM_QDTYPE_INT4)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "weight_dtype %s: ssz quantizes int8 or int4 weights (valid: int8, int4)",
                   slim_qdtype_get_nick (self->weight_dtype));
      return FALSE;
    }
  weight_ext = g_object_new (SLIM_TYPE_QCONFIG_EXT, "step", self->step, NULL);
  weight = g_object_new (SLIM_TYPE_QCONFIG, "dtype", self->weight_dtype, "scope",
                         SLIM_QSCOPE_PER_CHANNEL, "symmetric", TRUE, "method", SLIM_QMETHOD_SSZ,
                         "ext", weight_ext, NULL);
  qconfig = g_object_new (SLIM_TYPE_LINEAR_QCONFIG, "act", self->act, "weight", weight, NULL);
  slim_linear_quant_base_set_qconfig (SLIM_LINEAR_QUANT_BASE (self), qconfig);
  return SLIM_LINEAR_PROCESSOR_CLASS (slim_ssz_processor_parent_class)->prepare (processor, error);
}

static void
slim_ssz_processor_class_init (SlimSszProcessorClass *klass)
{
  SLIM_LINEAR_PROCESSOR_CLASS (klass)->prepare = slim_ssz_processor_prepare;
  SLIM_PROPERTIES_INSTALL (klass, slim_ssz_properties);
}

static void
slim_ssz_processor_init (SlimSszProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    ssz,
                    SLIM_PLUGIN_NO_ALIASES,
                    "linear_quant with SSZ weights: int8/int4 per_channel sym, minmax start "
                    "refined by least-squares scale search (msModelSlim WeightPerChannelSsz); "
                    "activations as linear_quant's qconfig.act",
                    slim_ssz_processor_get_type)
