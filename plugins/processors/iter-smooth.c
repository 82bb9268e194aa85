/* SPDX-License-Identifier: Apache-2.0
 *
 * iter-smooth.c: msModelSlim's `iter_smooth` processor, also registered as
 * `iterative_smooth` (modelslim-v1-spec.md 2.5; msModelSlim
 * processor/anti_outlier/iter_smooth/):
 *
 *   type: iter_smooth
 *   alpha: 0.9                  migration strength, in (0, 1)
 *   scale_min: 1e-5             lower clamp of the scales, in (0, 1)
 *   symmetric: true             false: norm-linear inputs centred by a shift
 *   enable_subgraph_type: [norm-linear, linear-linear, ov, up-down]
 *   include: ["*"]              patterns over each subgraph's key module
 *   exclude: []
 *   consumer_abs_max: false     slimflow's: see below
 *
 * Per subgraph s = max (A^alpha / max (W, 1e-5)^(1 - alpha), scale_min),
 * A the per-channel maximum of |x| (|x - shift| for asymmetric
 * norm-linear) at targets[0]'s input over every calibration token.  W is
 * the maximum |W| over the norm's linears for norm-linear; for ov, up-down
 * and linear-linear msModelSlim takes the column maximum of the consumer
 * weight WITHOUT abs() (its documented quirk).  That is reproduced by
 * default, so that saved scales match msModelSlim; consumer_abs_max: true
 * takes |W| instead.  ov scales are averaged over the query heads of each
 * kv head (GQA).  Despite its name, one pass per layer, as msModelSlim's
 * v1.  Put it before linear_quant.
 */
#include "slim-plugin.h"

#define SLIM_TYPE_ITER_SMOOTH_PROCESSOR (slim_iter_smooth_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimIterSmoothProcessor,
                      slim_iter_smooth_processor,
                      SLIM,
                      ITER_SMOOTH_PROCESSOR,
                      SlimSmoothProcessor)

struct _SlimIterSmoothProcessor
{
  SlimSmoothProcessor parent_instance;
  double alpha;
  double scale_min;
  gboolean symmetric;
  char **enable_subgraph_type;
  gboolean consumer_abs_max;
  guint types; /* parsed enable_subgraph_type, set by validate */
  gboolean parsed;
};

/* clang-format off */
static const SlimPropertyDecl slim_iter_smooth_properties[] = {
  SLIM_PROPERTY_DOUBLE (SlimIterSmoothProcessor, alpha, "alpha", "Alpha",
                        "Migration strength: scales are A^alpha / W^(1 - alpha); strictly between 0 "
                        "and 1.",
                        0.0, 1.0, 0.9),
  SLIM_PROPERTY_DOUBLE (SlimIterSmoothProcessor, scale_min, "scale-min", "Scale minimum",
                        "Lower clamp of the smoothing scales; strictly between 0 and 1.", 0.0, 1.0,
                        1e-5),
  SLIM_PROPERTY_BOOLEAN (SlimIterSmoothProcessor, symmetric, "symmetric", "Symmetric",
                         "false: centre each norm's output by (max + min) / 2, folded into a "
                         "norm bias and the linears' biases (norm-linear only).",
                         TRUE),
  SLIM_PROPERTY_STRV (SlimIterSmoothProcessor, enable_subgraph_type, "enable-subgraph-type",
                      "Subgraph types",
                      "Subgraph kinds to smooth: norm-linear, linear-linear, ov, up-down.",
                      SLIM_STRV ("norm-linear", "linear-linear", "ov", "up-down")),
  SLIM_PROPERTY_BOOLEAN (SlimIterSmoothProcessor, consumer_abs_max, "consumer-abs-max",
                         "Consumer |W| maximum",
                         "true: ov, up-down and linear-linear take the column maximum of |W| "
                         "of the consumer; false (msModelSlim) of W without abs().",
                         FALSE),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimIterSmoothProcessor,
                     slim_iter_smooth_processor,
                     SLIM_TYPE_SMOOTH_PROCESSOR)

static gboolean
slim_iter_smooth_processor_parse (SlimIterSmoothProcessor *self, GError **error)
{
  if (self->parsed)
    return TRUE;
  if (!slim_smooth_parse_subgraph_types ((const char *const *)self->enable_subgraph_type,
                                         "iter_smooth: enable_subgraph_type", &self->types, error))
    return FALSE;
  self->parsed = TRUE;
  return TRUE;
}

static gboolean
slim_iter_smooth_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimIterSmoothProcessor *self = SLIM_ITER_SMOOTH_PROCESSOR (processor);

  if (!slim_smooth_check_open_unit ("iter_smooth", "alpha", self->alpha, error)
      || !slim_smooth_check_open_unit ("iter_smooth", "scale_min", self->scale_min, error)
      || !slim_iter_smooth_processor_parse (self, error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_iter_smooth_processor_parent_class)
      ->validate (processor, error);
}

static gboolean
slim_iter_smooth_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  if (!slim_iter_smooth_processor_parse (SLIM_ITER_SMOOTH_PROCESSOR (processor), error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_iter_smooth_processor_parent_class)
      ->pre_run (processor, model, error);
}

static void
slim_iter_smooth_processor_get_params (SlimSmoothProcessor *processor, SlimSmoothParams *params)
{
  SlimIterSmoothProcessor *self = SLIM_ITER_SMOOTH_PROCESSOR (processor);

  params->subgraph_types = self->types; /* 0 before validate/pre_run: nothing kept */
  params->alpha = self->alpha;
  params->scale_min = self->scale_min;
  params->symmetric = self->symmetric;
  params->abs_consumer_max = self->consumer_abs_max;
}

static gboolean
slim_iter_smooth_processor_supports_distributed (SlimProcessor *processor)
{
  /* per-channel min/max statistics reduce across workers, no state crosses
   * layers but the pattern hits (msModelSlim: True) */
  return TRUE;
}

static void
slim_iter_smooth_processor_class_init (SlimIterSmoothProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimSmoothProcessorClass *smooth_class = SLIM_SMOOTH_PROCESSOR_CLASS (klass);

  processor_class->validate = slim_iter_smooth_processor_validate;
  processor_class->pre_run = slim_iter_smooth_processor_pre_run;
  processor_class->supports_distributed = slim_iter_smooth_processor_supports_distributed;
  smooth_class->get_params = slim_iter_smooth_processor_get_params;
  SLIM_PROPERTIES_INSTALL (klass, slim_iter_smooth_properties);
}

static void
slim_iter_smooth_processor_init (SlimIterSmoothProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    iter_smooth,
                    SLIM_PLUGIN_ALIASES ("iterative_smooth"),
                    "Iterative smooth outlier suppression of norm-linear, linear-linear, ov and "
                    "up-down subgraphs (msModelSlim iter_smooth)",
                    slim_iter_smooth_processor_get_type)
