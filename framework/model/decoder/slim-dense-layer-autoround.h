/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-dense-layer-autoround.h: AutoRound's training loop over one dense
 * decoder layer (modelslim-v1-spec.md 2.17; msModelSlim autoround_utils
 * trainer.py), the numerics of slim-autoround.h driven through the layer
 * backward of slim-dense-layer-backward.h.
 *
 * Given calibration inputs x_s of the layer and the float layer's outputs
 * y_s on them, each quantized linear gets a rounding offset V and min/max
 * scale multipliers (slim-autoround.h); for it = 0 .. iters - 1:
 *   pick min(n, 8) samples (the first ones of a permutation drawn by
 *     slim_autoround_sample_order from a mix of seed and it), batch 1 each;
 *   per sample: forward the layer with Ŵ = qdq(W, V, min, max) for every
 *     quantized linear (float weights for the others), loss = masked L1
 *     ×1000 against y_s, backward to dL/dŴ, summed over the samples
 *     (gradient accumulation 8); then dL/dV, dL/dmin, dL/dmax through the
 *     straight-through quantizer;
 *   best-parameter tracking (trainer.py, EMA variant): at it = 0 the
 *     current parameters and best = mean loss; after that, with avg the
 *     mean of the last 5 iterations' mean losses, when avg < best:
 *     best = 0.7 best + 0.3 avg and the current parameters are kept;
 *   SignSGD step, lr_t = 5 / iters * (1 - it / iters), V clamped to
 *     ±slim_autoround_v_bound for symmetric weights (msModelSlim clamps
 *     only in the forward, which freezes a V past the bound: a deliberate
 *     difference), unbounded for asymmetric ones (quant_tensor_asym),
 *     min/max clamped to [0, 1]; V only when round tuning is enabled,
 *     min/max only when minmax tuning is.
 * The kept parameters give the result: scales, codes and Ŵ per linear.
 * The loss is the masked L1 pooled over the picked samples' elements
 * (trainer.py's sum reduction over num_elm: a sample weighs by its token
 * count; every token counts: a calibration sample is one unpadded
 * sequence), ×1000; its gradient is that of the pooled loss.
 * Deterministic for a seed and an OpenBLAS thread count (no threads of its
 * own), not across thread counts: OpenBLAS's sgemm sums in another order
 * with another count (a 64 x 172 by 172 x 64 product already differs in
 * the last bits between 1 and 2 threads), and sign steps amplify that.
 *
 * Activations: a linear whose SlimLinearWeights.act is set in @weights
 * fake-quantizes its input per token in every forward of the loop
 * (straight-through in the backward), so W4A8_DYNAMIC / W8A8_DYNAMIC
 * linears train against the activations they will be deployed with; the
 * targets are the caller's (the float layer's outputs).
 *
 * Memory: one forward tape of one sample (slim-dense-layer-backward.h:
 * T (4 H + 2 Q + 2 KV + 3 I) floats, plus the fake-quantized inputs) and
 * its backward scratch; per quantized linear of n_out x n_in weights, in
 * the loop Ŵ, dL/dŴ, V, its gradient and the kept V (5 n_out n_in floats)
 * and 7 n_out G floats for the multipliers (current, gradients, kept,
 * scale); at the end the result's Ŵ and codes (1.25 n_out n_in floats'
 * worth) are added before the loop's buffers are freed.  The inputs and
 * targets are the caller's.
 */
#pragma once

#include "slim-autoround-linear-state.h"
#include "slim-autoround.h"
#include "slim-dense-layer-backward.h"

G_BEGIN_DECLS

/* The seven linears of a dense layer, in the layer's order. */
typedef enum
{
  SLIM_DENSE_LINEAR_Q,
  SLIM_DENSE_LINEAR_K,
  SLIM_DENSE_LINEAR_V,
  SLIM_DENSE_LINEAR_O,
  SLIM_DENSE_LINEAR_GATE,
  SLIM_DENSE_LINEAR_UP,
  SLIM_DENSE_LINEAR_DOWN,
  SLIM_DENSE_N_LINEARS,
} SlimDenseLinear;

/* "self_attn.q_proj", ..., "mlp.down_proj": the module name under the
 * layer's prefix. */
const char *slim_dense_linear_name (SlimDenseLinear which);

typedef struct
{
  gint64 iters; /* >= 1 */
  gboolean enable_minmax_tuning;
  gboolean enable_round_tuning;
  guint32 seed;
  /* Per linear: bits 0 leaves it float (not trained, not quantized). */
  SlimAutoRoundConfig linears[SLIM_DENSE_N_LINEARS];
} SlimDenseAutoRoundOptions;

/* SlimDenseAutoRoundProgress and SlimDenseAutoRoundLinear (one trained
 * linear's result): slim-autoround-linear-state.h. */

typedef struct
{
  SlimDenseAutoRoundLinear linears[SLIM_DENSE_N_LINEARS];
  float first_loss; /* mean loss of iteration 0 (plain rounding) */
  float best_loss;  /* the EMA-tracked best */
  gint64 best_iter; /* the iteration whose parameters were kept */
} SlimDenseAutoRoundResult;

/**
 * slim_dense_layer_autoround:
 * @inputs: [n_samples] each (seq_lens[s], hidden), one sequence
 * @targets: [n_samples] each (seq_lens[s], hidden): the float layer's outputs
 * @result: zero-initialised or cleared; filled on success
 *
 * Runs the loop above.  FALSE + error (SLIM_CONFIG_ERROR_BAD_VALUE) for
 * iters < 1, a linear's config slim_autoround_config_check refuses (the
 * message names the linear), no quantized linear, no sample or a sample
 * of no token.
 */
gboolean slim_dense_layer_autoround (const SlimModelConfig *config,
                                     const SlimDenseLayerWeights *weights,
                                     guint n_samples,
                                     const float *const *inputs,
                                     const gint64 *seq_lens, /* [n_samples] */
                                     const float *const *targets,
                                     const SlimDenseAutoRoundOptions *options,
                                     SlimDenseAutoRoundProgress progress,
                                     gpointer progress_data,
                                     SlimDenseAutoRoundResult *result,
                                     GError **error);

void slim_dense_autoround_result_clear (SlimDenseAutoRoundResult *result);

G_END_DECLS
