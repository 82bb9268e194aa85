/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-autoround-linear-state.h: the training state of one linear in
 * AutoRound's layer loop, and the steps the dense and the MoE loops share
 * (slim-dense-layer-autoround.c, slim-moe-layer-autoround.c):
 *
 *   init     V = 0, min/max multipliers 1 (trainer.py), the kept copies
 *            in the result linear the same;
 *   qdq      Ŵ from the current parameters, dL/dŴ zeroed for the
 *            iteration's samples;
 *   step     dL/dŴ through the quantize-dequantize to V and the
 *            multipliers, then one SignSGD step (V bounded for symmetric
 *            weights, the multipliers in [0, 1]);
 *   finish   the kept parameters' quantization (scale, Ŵ, codes, offsets);
 *   best     trainer.py's EMA best-parameter tracking over the iteration
 *            losses (beta 0.7, window 5);
 *   loop     the iterations over a layer's linears: qdq, the seeded sample
 *            order, the pooled masked L1 of the picked samples through the
 *            layer's forward and backward (SlimAutoRoundLayerOps), the best
 *            tracking, the step; then finish.
 */
#pragma once

#include <glib.h>

#include "slim-autoround.h"

G_BEGIN_DECLS

/* Called after every iteration: it (0-based), the iteration's mean loss. */
typedef void (*SlimDenseAutoRoundProgress) (gint64 it, gint64 iters, float loss, gpointer data);

typedef struct
{
  gboolean quantized;
  gint64 n_out, n_in, n_groups;
  float *v;         /* [n_out, n_in] the kept rounding offsets */
  float *min_scale; /* [n_out, n_groups] */
  float *max_scale; /* [n_out, n_groups] */
  float *scale;     /* [n_out, n_groups] the quantization scale they give */
  gint8 *q;         /* [n_out, n_in] codes */
  float *offset;    /* [n_out, n_groups] zero points, signed domain (0: symmetric) */
  float *w_hat;     /* [n_out, n_in] q * scale */
} SlimDenseAutoRoundLinear;

#define SLIM_AUTOROUND_EMA_BETA 0.7 /* trainer.py ema_beta */
#define SLIM_AUTOROUND_WINDOW 5     /* trainer.py window_size */

typedef struct
{
  const SlimAutoRoundConfig *cfg; /* NULL: the linear stays float */
  const float *w;                 /* [n_out, n_in] the float weight */
  float *w_hat;                   /* [n_out, n_in] current Ŵ */
  float *grad_w;                  /* [n_out, n_in] dL/dŴ summed over the picked samples */
  float *v;                       /* [n_out, n_in] current V */
  float *grad_v;                  /* [n_out, n_in] */
  float *min_scale;               /* [n_out, G] current */
  float *max_scale;               /* [n_out, G] */
  float *grad_min;                /* [n_out, G] */
  float *grad_max;                /* [n_out, G] */
  float *scale;                   /* [n_out, G] scratch of qdq */
} SlimAutoRoundLinearState;

/* The EMA best-parameter tracking of trainer.py. */
typedef struct
{
  double history[SLIM_AUTOROUND_WINDOW]; /* the last losses, a ring */
  guint n_history;
  double best;
} SlimAutoRoundBest;

/* Allocates st for cfg (cfg->bits > 0) and out's kept parameters; out's
 * n_out and n_in are set, n_groups and quantized are set here. */
void slim_autoround_linear_state_init (SlimAutoRoundLinearState *st,
                                       const SlimAutoRoundConfig *cfg,
                                       const float *w,
                                       SlimDenseAutoRoundLinear *out);
void slim_autoround_linear_state_clear (SlimAutoRoundLinearState *st);
/* Ŵ of the current parameters; dL/dŴ zeroed. */
gboolean slim_autoround_linear_state_qdq (SlimAutoRoundLinearState *st,
                                          const SlimDenseAutoRoundLinear *out,
                                          GError **error);
/* The SignSGD step of lr from the accumulated dL/dŴ. */
gboolean slim_autoround_linear_state_step (SlimAutoRoundLinearState *st,
                                           const SlimDenseAutoRoundLinear *out,
                                           gboolean round_tuning,
                                           gboolean minmax_tuning,
                                           float lr,
                                           GError **error);
/* Copies the current parameters into the kept ones of out. */
void slim_autoround_linear_state_keep (const SlimAutoRoundLinearState *st,
                                       SlimDenseAutoRoundLinear *out);
/* The kept parameters' scale, Ŵ, codes and offsets into out. */
gboolean slim_autoround_linear_state_finish (const SlimAutoRoundLinearState *st,
                                             SlimDenseAutoRoundLinear *out,
                                             GError **error);

/* Records iteration it's loss; TRUE when the current parameters become
 * the kept ones (it = 0, or the window's mean is below the best, which
 * then moves by the EMA); first_loss and best_iter of the result are set. */
gboolean slim_autoround_best_update (
    SlimAutoRoundBest *b, gint64 it, double total, float *first_loss, gint64 *best_iter);

/* A layer's forward and reverse pass for the loop. */
typedef struct
{
  /* Sample s through the layer with the current Ŵ, keeping what the
   * reverse pass needs; returns y (seq_lens[s], hidden). */
  const float *(*forward) (guint s, gpointer data);
  /* dL/dy (seq_lens[s], hidden) of the last forward: dL/dŴ accumulated
   * into the states' grad_w; frees what forward kept. */
  void (*backward) (const float *dy, gpointer data);
  /* Frees what forward kept (the loss failed). */
  void (*drop) (gpointer data);
} SlimAutoRoundLayerOps;

typedef struct
{
  SlimAutoRoundLinearState *states;  /* [n_linears] initialised; cfg NULL: float */
  SlimDenseAutoRoundLinear *linears; /* [n_linears] the result's */
  gint64 n_linears;
  gint64 iters;
  gboolean round_tuning, minmax_tuning;
  guint32 seed;
  guint n_samples;
  const gint64 *seq_lens;      /* [n_samples] */
  const float *const *targets; /* [n_samples] each (seq_lens[s], hidden) */
  gint64 hidden;
  SlimDenseAutoRoundProgress progress;
  gpointer progress_data;
} SlimAutoRoundLoop;

/* The checks every layer loop shares: at least one quantized linear, one
 * calibration sample, and a token in every sample. */
gboolean slim_autoround_loop_check (guint n_quantized,
                                    guint n_samples,
                                    const gint64 *seq_lens,
                                    GError **error);

/* Runs the iterations and the final quantization; the loss figures into
 * first_loss, best_loss, best_iter.  The caller clears states and, on
 * failure, the result. */
gboolean slim_autoround_layer_loop (const SlimAutoRoundLoop *loop,
                                    const SlimAutoRoundLayerOps *ops,
                                    gpointer ops_data,
                                    float *first_loss,
                                    float *best_loss,
                                    gint64 *best_iter,
                                    GError **error);

/* The sample order's seed of iteration it (the finalizer of splitmix64
 * over seed and it), so neighbouring seeds do not share shifted orders. */
guint32 slim_autoround_iter_seed (guint32 seed, gint64 it);

G_END_DECLS
