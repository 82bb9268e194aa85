/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-smooth-processor.h: SlimSmoothProcessor, the abstract base class of
 * the smoothing processors (smooth_quant, iter_smooth; spec 2.3),
 * msModelSlim's BaseSmoothProcessor.  Per decoder layer it
 *
 *   preprocess    takes the layer's subgraphs from the model adapter
 *                 (slim_model_get_subgraphs), keeps those of an enabled
 *                 kind whose key module (source, or targets[0] when there
 *                 is no source) is in the layer and matches include and
 *                 not exclude;
 *   forward       accumulates per-channel statistics (slim-smooth.h) of
 *                 the input of each kept subgraph's targets[0], over every
 *                 calibration sample;
 *   postprocess   computes the scales and fuses them, in the priority
 *                 order up-down, ov, linear-linear, norm-linear:
 *                   norm-linear   targets' W[:, j] *= s_j; norm weight (and
 *                                 bias) /= s; with a shift (asymmetric)
 *                                 targets' bias += W shift (W before
 *                                 scaling), norm bias += -shift / s;
 *                   ov            o_proj W[:, j] *= o_s_j; v_proj rows and
 *                                 bias /= v_s (GQA: v_s per kv-head
 *                                 channel, o_s repeated per group);
 *                   up-down,      targets[0] (down_proj, linear2) W[:, j]
 *                   linear-linear *= s_j; source (up_proj, linear1) rows
 *                                 and bias /= s.
 *
 * Subclasses give the scale rule through the class's get_params.  The
 * state carried between layers is the include/exclude hits (checkpoints);
 * post_run warns about patterns that matched no subgraph.
 */
#pragma once

#include <glib-object.h>
#include "slim-processor.h"
#include "slim-smooth.h"
#include "slim-subgraph.h"

G_BEGIN_DECLS

/* Bit of a subgraph kind in SlimSmoothParams.subgraph_types. */
#define SLIM_SMOOTH_SUBGRAPH_BIT(type) (1u << (guint)(type))
#define SLIM_SMOOTH_SUBGRAPH_ALL                                                                   \
  (SLIM_SMOOTH_SUBGRAPH_BIT (SLIM_SUBGRAPH_NORM_LINEAR)                                            \
   | SLIM_SMOOTH_SUBGRAPH_BIT (SLIM_SUBGRAPH_LINEAR_LINEAR)                                        \
   | SLIM_SMOOTH_SUBGRAPH_BIT (SLIM_SUBGRAPH_OV)                                                   \
   | SLIM_SMOOTH_SUBGRAPH_BIT (SLIM_SUBGRAPH_UP_DOWN))

/* msModelSlim's names: "norm-linear", "linear-linear", "ov", "up-down". */
const char *slim_smooth_subgraph_type_name (SlimSubgraphType type);
/* Bit mask of the named kinds; an unknown name is an error naming key and
 * the valid names.  An empty list gives 0. */
gboolean slim_smooth_parse_subgraph_types (const char *const *names,
                                           const char *key,
                                           guint *out_mask,
                                           GError **error);

/* msModelSlim's validate_normalized_value: value strictly inside (0, 1);
 * otherwise an error naming plugin and key. */
gboolean
slim_smooth_check_open_unit (const char *plugin, const char *key, double value, GError **error);

/**
 * SlimSmoothParams:
 * @subgraph_types: SLIM_SMOOTH_SUBGRAPH_BIT mask of the kinds to smooth
 * @alpha: migration strength: s = a^alpha / w^(1 - alpha)
 * @scale_min: lower clamp of the scales
 * @symmetric: FALSE: norm-linear subgraphs get a shift (max + min) / 2
 * @abs_consumer_max: FALSE reproduces msModelSlim's iter_smooth, whose
 *   weight statistic for ov, up-down and linear-linear is the column
 *   maximum of the consumer weight without abs(); TRUE takes |W|
 */
typedef struct
{
  guint subgraph_types;
  double alpha;
  double scale_min;
  gboolean symmetric;
  gboolean abs_consumer_max;
} SlimSmoothParams;

#define SLIM_TYPE_SMOOTH_PROCESSOR (slim_smooth_processor_get_type ())
G_DECLARE_DERIVABLE_TYPE (
    SlimSmoothProcessor, slim_smooth_processor, SLIM, SMOOTH_PROCESSOR, SlimProcessor)

/**
 * SlimSmoothProcessorClass:
 * @get_params: the scale rule and the kinds (required)
 * @observe_input: (optional) sees every calibration input x (n_tokens,
 *   n_in) of a kept subgraph's targets[0], after the statistics (awq keeps
 *   the inputs); x must not be modified
 * @search_scales: (optional) replaces the alpha rule with a search (awq):
 *   the scales (n, the consumer's input width) of a subgraph whose
 *   statistics are complete; the layer holds the current weights, which
 *   the vfunc may change temporarily (to run candidates) but must restore
 */
struct _SlimSmoothProcessorClass
{
  SlimProcessorClass parent_class;

  void (*get_params) (SlimSmoothProcessor *self, SlimSmoothParams *params);
  gboolean (*observe_input) (SlimSmoothProcessor *self,
                             const SlimSubgraph *subgraph,
                             const float *x,
                             gint64 n_tokens,
                             gint64 n_in,
                             GError **error);
  gboolean (*search_scales) (SlimSmoothProcessor *self,
                              SlimLayer *layer,
                              const SlimSubgraph *subgraph,
                              const SlimSmoothStats *stats,
                              float *scales,
                              GError **error);
  gpointer padding[2];
};

/* The model given to pre_run (transfer none), NULL before. */
SlimModel *slim_smooth_processor_get_model (SlimSmoothProcessor *self);

/* The include / exclude lists (properties of this class). transfer none. */
const char *const *slim_smooth_processor_get_include (SlimSmoothProcessor *self);
const char *const *slim_smooth_processor_get_exclude (SlimSmoothProcessor *self);

/* Which scales of a module: the input columns it multiplied (a consumer:
 * the norm's linears, o_proj, down_proj, linear2) or the output rows it
 * divided (a producer: v_proj, up_proj, linear1).  A linear can be both
 * (up_proj is a target of post_attention_layernorm and the source of
 * up-down). */
typedef enum
{
  SLIM_SMOOTH_SCALES_INPUT,
  SLIM_SMOOTH_SCALES_OUTPUT,
} SlimSmoothScalesSide;

/* The scales fused into module in the last layer postprocessed, for tests
 * and later processors; NULL when that side of the module was not
 * smoothed.  transfer none, valid until the next preprocess. */
const float *slim_smooth_processor_get_scales (SlimSmoothProcessor *self,
                                               const char *module,
                                               SlimSmoothScalesSide side,
                                               gint64 *out_n);

G_END_DECLS
