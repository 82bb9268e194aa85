/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-moe-layer-autoround.h: AutoRound's training loop (the one of
 * slim-dense-layer-autoround.h: lr 5 / iters with linear decay, gradient
 * accumulation 8, batch 1, pooled masked L1 x1000, EMA best-parameter
 * tracking, SignSGD, the same clamps and sample order) over a
 * mixture-of-experts decoder layer (slim-moe-layer-backward.h): every
 * linear with bits > 0 in options->linears, indexed as
 * slim_moe_layer_linear_name() - attention, router, every routed expert's
 * gate/up/down, the shared expert's and its gate - is trained together
 * against the one layer loss, as msModelSlim wraps every nn.Linear of the
 * layer that a strategy takes.  An expert no picked sample routes a token
 * to gets a zero gradient that iteration (its V does not move: the sign of
 * 0 is 0).
 *
 * Memory: per quantized linear as the dense loop (5 n_out n_in floats and
 * 7 n_out G), one sample's MoE tape and its backward scratch.
 */
#pragma once

#include "slim-dense-layer-autoround.h"
#include "slim-moe-layer-backward.h"

G_BEGIN_DECLS

typedef struct
{
  gint64 iters;
  gboolean enable_minmax_tuning;
  gboolean enable_round_tuning;
  guint32 seed;
  gint64 n_linears;                   /* slim_moe_layer_n_linears (config) */
  const SlimAutoRoundConfig *linears; /* [n_linears]; bits 0: left float */
} SlimMoeAutoRoundOptions;

typedef struct
{
  gint64 n_linears;
  SlimDenseAutoRoundLinear *linears; /* [n_linears] */
  float first_loss, best_loss;
  gint64 best_iter;
} SlimMoeAutoRoundResult;

/* As slim_dense_layer_autoround (same errors; a refused linear's message
 * names it). */
gboolean slim_moe_layer_autoround (const SlimModelConfig *config,
                                   const SlimMoeLayerWeights *weights,
                                   guint n_samples,
                                   const float *const *inputs,
                                   const gint64 *seq_lens,
                                   const float *const *targets,
                                   const SlimMoeAutoRoundOptions *options,
                                   SlimDenseAutoRoundProgress progress,
                                   gpointer progress_data,
                                   SlimMoeAutoRoundResult *result,
                                   GError **error);

void slim_moe_autoround_result_clear (SlimMoeAutoRoundResult *result);

G_END_DECLS
