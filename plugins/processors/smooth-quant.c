/* SPDX-License-Identifier: Apache-2.0
 *
 * smooth-quant.c: msModelSlim's `smooth_quant` processor (modelslim-v1-spec.md
 * 2.4; msModelSlim processor/anti_outlier/smooth_quant/):
 *
 *   type: smooth_quant
 *   alpha: 0.5        migration strength, in (0, 1)
 *   symmetric: true   false: norm-linear inputs are centred by a shift
 *   include: ["*"]    patterns over the norm modules
 *   exclude: []
 *
 * Only norm-linear subgraphs (a norm and the linears it feeds): per
 * channel s = max (A^alpha / W^(1 - alpha), 1e-5) with A the maximum of
 * |x| (or |x - shift|) over every calibration token at the first linear's
 * input and W the maximum |W| over the linears' rows; the linears' input
 * columns are multiplied by s and the norm weight divided
 * (slim-smooth-processor.h does the work).  Put it before linear_quant.
 */
#include "slim-plugin.h"

#define SLIM_TYPE_SMOOTH_QUANT_PROCESSOR (slim_smooth_quant_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimSmoothQuantProcessor,
                      slim_smooth_quant_processor,
                      SLIM,
                      SMOOTH_QUANT_PROCESSOR,
                      SlimSmoothProcessor)

struct _SlimSmoothQuantProcessor
{
  SlimSmoothProcessor parent_instance;
  double alpha;
  gboolean symmetric;
};

/* clang-format off */
static const SlimPropertyDecl slim_smooth_quant_properties[] = {
  SLIM_PROPERTY_DOUBLE (SlimSmoothQuantProcessor, alpha, "alpha", "Alpha",
                        "Migration strength: scales are A^alpha / W^(1 - alpha); strictly between 0 "
                        "and 1.",
                        0.0, 1.0, 0.5),
  SLIM_PROPERTY_BOOLEAN (SlimSmoothQuantProcessor, symmetric, "symmetric", "Symmetric",
                         "false: centre each norm's output by (max + min) / 2, folded into a "
                         "norm bias and the linears' biases.",
                         TRUE),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimSmoothQuantProcessor,
                     slim_smooth_quant_processor,
                     SLIM_TYPE_SMOOTH_PROCESSOR)

static void
slim_smooth_quant_processor_get_params (SlimSmoothProcessor *processor, SlimSmoothParams *params)
{
  SlimSmoothQuantProcessor *self = SLIM_SMOOTH_QUANT_PROCESSOR (processor);

  params->subgraph_types = SLIM_SMOOTH_SUBGRAPH_BIT (SLIM_SUBGRAPH_NORM_LINEAR);
  params->alpha = self->alpha;
  params->scale_min = 1e-5; /* fixed in msModelSlim's smooth_quant api */
  params->symmetric = self->symmetric;
  params->abs_consumer_max = TRUE; /* norm-linear always takes |W| */
}

static gboolean
slim_smooth_quant_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimSmoothQuantProcessor *self = SLIM_SMOOTH_QUANT_PROCESSOR (processor);

  if (!slim_smooth_check_open_unit ("smooth_quant", "alpha", self->alpha, error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_smooth_quant_processor_parent_class)
      ->validate (processor, error);
}

static gboolean
slim_smooth_quant_processor_supports_distributed (SlimProcessor *processor)
{
  /* msModelSlim's smooth_quant keeps the base class's False: its
   * statistics are never merged across workers */
  return FALSE;
}

static void
slim_smooth_quant_processor_class_init (SlimSmoothQuantProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimSmoothProcessorClass *smooth_class = SLIM_SMOOTH_PROCESSOR_CLASS (klass);

  processor_class->validate = slim_smooth_quant_processor_validate;
  processor_class->supports_distributed = slim_smooth_quant_processor_supports_distributed;
  smooth_class->get_params = slim_smooth_quant_processor_get_params;
  SLIM_PROPERTIES_INSTALL (klass, slim_smooth_quant_properties);
}

static void
slim_smooth_quant_processor_init (SlimSmoothQuantProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    smooth_quant,
                    SLIM_PLUGIN_NO_ALIASES,
                    "SmoothQuant outlier suppression of norm-linear subgraphs (msModelSlim "
                    "smooth_quant)",
                    slim_smooth_quant_processor_get_type)
