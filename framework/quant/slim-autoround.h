/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-autoround.h: the numerics of one AutoRound step (modelslim-v1-spec.md
 * 2.17; msModelSlim processor/quant/autoround_utils: utils.py
 * quant_tensor_sym, sign_sgd.py, trainer.py), as pure functions on plain
 * buffers.  The processor (training loop over a decoder layer) is not part
 * of this file.
 *
 * Weight W (n_out, n_in) row-major, split along n_in into groups of
 * group_size (group_size = n_in: per channel); G = n_in / group_size groups
 * per row.  Trainable parameters:
 *   V          (n_out, n_in)  rounding offset, init 0, unbounded as a
 *                             parameter; the symmetric forward uses
 *                             clamp(V, ±slim_autoround_v_bound) (utils.py
 *                             quant_tensor_sym: W_corr = torch.clamp(w_corr,
 *                             -0.5, 0.5) for 4 bits, ±1 for 8), so V's
 *                             gradient is 0 where V is outside the bound;
 *                             the asymmetric forward adds V unclamped
 *                             (quant_tensor_asym: round_ste(tensor / scale
 *                             + w_corr))
 *   min_scale  (n_out, G)     init 1, clamped to [0, 1]
 *   max_scale  (n_out, G)     init 1, clamped to [0, 1]
 * Forward (symmetric, per row r and group g, qmax = 2^(b-1) - 1,
 * qmin = -2^(b-1)):
 *   wmin = min(0, min_k W),  wmax = max(0, max_k W)
 *   s    = max(-wmin * min_scale, wmax * max_scale) / qmax,
 *          cast to scale_dtype (round to nearest even), then max(s, 1e-5)
 *          (SLIM_AUTOROUND_SCALE_FLOOR: WrapperLinear passes q_scale_thresh
 *          1e-5 to the quantizer, overriding its FLT_EPSILON default)
 *   x    = W / s + clamp(V, ±bound);  q = clamp(round_half_even(x), qmin, qmax);
 *   Ŵ = q * s
 * Backward (straight-through: d round(x)/dx = 1; torch.clamp passes the
 * gradient where qmin <= round(x) <= qmax, i.e. in-range codes; the
 * scale_dtype cast passes it unchanged; the 1e-5 floor blocks it
 * where it applied; the max of the two candidates sends it to the larger
 * one, to max_scale's side on a tie):
 *   dŴ/dV = s * in_range * (|V| <= bound)
 *   dŴ/ds = q - in_range * W / s
 *   ds/dmax_scale = wmax / qmax  (max side),  ds/dmin_scale = -wmin / qmax
 * SignSGD (sign_sgd.py): p <- clamp(p - lr_t * sign(g), lo, hi) with
 * sign(0) = 0; lr_t = lr * (1 - t / iters) (LinearLR 1 -> 0), lr =
 * SLIM_AUTOROUND_LR_MULTIPLIER / iters.
 * Loss: masked L1 (msModelSlim names it mse): 1000 * Σ mask |y - ref| /
 * (count of masked elements), the ×1000 applied before backward.
 *
 * Arithmetic is float32; sums (loss, parameter gradients over a group) are
 * accumulated in float64 then rounded.  Every function has the contract:
 * FALSE with a GError on bad shapes or settings, outputs unspecified then.
 */
#pragma once

#include <glib.h>

#include "slim-dtype.h"

G_BEGIN_DECLS

#define SLIM_AUTOROUND_LR_MULTIPLIER 5.0f /* msModelSlim lr_multiplier */
#define SLIM_AUTOROUND_LOSS_SCALE 1000.0f /* loss ×1000 before backward */
#define SLIM_AUTOROUND_GRAD_ACCUMULATE 8  /* gradient_accumulate_steps */
#define SLIM_AUTOROUND_SCALE_FLOOR 1e-5f  /* WrapperLinear q_scale_thresh */

typedef struct
{
  gint bits;             /* 4 or 8 */
  gint64 group_size;     /* divides n_in; n_in for per channel */
  SlimDType scale_dtype; /* SLIM_DTYPE_F32, _F16 or _BF16 */
  /* FALSE (zero-initialised): the symmetric path above.  TRUE:
   * msModelSlim's quant_tensor_asym: a = min(0, min W) min_scale, b =
   * max(0, max W) max_scale (both 0: -1, 1), s = cast ((b - a) /
   * (2^bits - 1)) floored at 1e-5, zp = round (-a / s), q =
   * clamp (round (W / s + V) + zp, 0, 2^bits - 1), Ŵ = s (q - zp); its
   * straight-through backward (in range Ŵ = s round (W / s + V): dŴ/dV
   * = s, dŴ/ds = (q - zp) - W / s; clamped dŴ/ds = (q - zp) - a / s and
   * dŴ/da = 1 through zp).  Codes and offsets are reported in the signed
   * domain of linear_quant's records: q - 2^(bits-1), zp - 2^(bits-1). */
  gboolean asymmetric;
} SlimAutoRoundConfig;

/* FALSE with SLIM_CONFIG_ERROR_BAD_VALUE for bits other than 4/8, a
 * scale_dtype other than F32/F16/BF16, group_size < 1 or not dividing
 * n_in (the message names n_in and group_size), n_out or n_in < 1. */
gboolean slim_autoround_config_check (const SlimAutoRoundConfig *cfg,
                                      gint64 n_out,
                                      gint64 n_in,
                                      GError **error);

/* Bound of V in the symmetric forward for @bits: 0.5 for 4, 1.0 for 8. */
float slim_autoround_v_bound (gint bits);

/**
 * slim_autoround_qdq:
 * Forward above.  @out_scale (n_out, G) receives s, @out_w_hat (n_out,
 * n_in) Ŵ, @out_q (n_out, n_in, nullable) the codes.
 */
gboolean slim_autoround_qdq (const SlimAutoRoundConfig *cfg,
                             const float *w, /* [n_out, n_in] */
                             gint64 n_out,
                             gint64 n_in,
                             const float *v,         /* [n_out, n_in] */
                             const float *min_scale, /* [n_out, G] */
                             const float *max_scale, /* [n_out, G] */
                             float *out_scale,       /* [n_out, G] */
                             float *out_w_hat,       /* [n_out, n_in] */
                             gint8 *out_q,           /* [n_out, n_in], nullable */
                             GError **error);

/* The zero points of the forward (@out_offset [n_out, G], signed domain;
 * 0 for the symmetric path). */
gboolean slim_autoround_qdq_offsets (const SlimAutoRoundConfig *cfg,
                                     const float *w, /* [n_out, n_in] */
                                     gint64 n_out,
                                     gint64 n_in,
                                     const float *min_scale, /* [n_out, G] */
                                     const float *max_scale, /* [n_out, G] */
                                     float *out_offset,      /* [n_out, G] */
                                     GError **error);

/**
 * slim_autoround_qdq_backward:
 * Given dL/dŴ (@grad_w_hat), the gradients of the loss with respect to V,
 * min_scale and max_scale (each output nullable: the parameter is not
 * tuned).  Overwrites (does not accumulate into) the outputs.
 */
gboolean slim_autoround_qdq_backward (const SlimAutoRoundConfig *cfg,
                                      const float *w, /* [n_out, n_in] */
                                      gint64 n_out,
                                      gint64 n_in,
                                      const float *v,          /* [n_out, n_in] */
                                      const float *min_scale,  /* [n_out, G] */
                                      const float *max_scale,  /* [n_out, G] */
                                      const float *grad_w_hat, /* [n_out, n_in] */
                                      float *grad_v,           /* [n_out, n_in], nullable */
                                      float *grad_min_scale,   /* [n_out, G], nullable */
                                      float *grad_max_scale,   /* [n_out, G], nullable */
                                      GError **error);

/* lr_t for optimizer step @step (0-based) of @iters: (MULTIPLIER / iters)
 * * (1 - step / iters); 0 for step >= iters.  iters >= 1. */
float slim_autoround_lr (gint64 step, gint64 iters);

/* p[i] <- clamp(p[i] - lr * sign(g[i]), lo, hi), sign(0) = 0. */
void slim_autoround_signsgd_step (float *p,       /* [n] */
                                  const float *g, /* [n] */
                                  gint64 n,
                                  float lr,
                                  float lo,
                                  float hi);

/**
 * slim_autoround_masked_l1:
 * @mask: [n_tok] 1 = token counts, 0 = padding; nullable (all count)
 * @out_grad: [n_tok, dim], nullable: d loss / d y (sign(y - ref) * 1000 /
 *   count on counted tokens, 0 elsewhere; sign(0) = 0)
 * @out_loss: 1000 * mean |y - ref| over counted elements
 * SLIM_NUMERIC_ERROR_SHAPE_MISMATCH if no token counts.
 */
gboolean slim_autoround_masked_l1 (const float *y,    /* [n_tok, dim] */
                                   const float *ref,  /* [n_tok, dim] */
                                   const float *mask, /* [n_tok], nullable */
                                   gint64 n_tok,
                                   gint64 dim,
                                   float *out_loss,
                                   float *out_grad, /* [n_tok, dim], nullable */
                                   GError **error);

/* Sample order for the training loop (batch 1, random picking): a
 * permutation of 0..n-1 drawn by Fisher-Yates from a GRand seeded with
 * @seed, so the order depends on the seed only (not on threads).  This is
 * slimflow's own generator: msModelSlim's torch RNG order is not
 * reproduced.  n >= 0; @out_order [n]. */
void slim_autoround_sample_order (guint32 seed, gint64 n, gint64 *out_order /* [n] */);

G_END_DECLS
