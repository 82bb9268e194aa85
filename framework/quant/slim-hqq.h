/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hqq.h: HQQ (half-quadratic quantization, Badri & Shaji 2023),
 * data-free asymmetric per-group weight quantization. Per group of
 * group_size consecutive columns, with qmax = 2^bits - 1:
 *
 *   s = min (qmax / (max - min), 2e4)        inverse step
 *   z = -min * s                             float zero point
 *   repeat iters times (the HQQ reference's proximal solver):
 *     q  = clamp (round (w * s + z), 0, qmax)
 *     r  = (q - z) / s
 *     e  = shrink_p (w - r, beta)            sign(x) relu(|x| - |x|^(p-1) / beta)
 *     z  = mean over the group (q - (w - e) * s)
 *     beta *= kappa
 *     stop when mean |w - r| over the whole tensor did not decrease
 *   w^ = (clamp (round (w * s + z), 0, qmax) - z) * (1 / s)
 *
 * Only the zero point is optimized (the scale stays minmax), as in the
 * reference implementation. Defaults: p 0.7, beta 10, kappa 1.01, 20 iters.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  guint bits;        /* 2..8 */
  gint64 group_size; /* > 0, divides n_cols */
  float lp_norm;     /* p in (0, 1] */
  float beta;        /* > 0 */
  float kappa;       /* >= 1 */
  guint iters;       /* >= 1 */
} SlimHqqConfig;

void slim_hqq_config_init (SlimHqqConfig *cfg, guint bits, gint64 group_size);
gboolean slim_hqq_config_check (const SlimHqqConfig *cfg, gint64 n_cols, GError **error);

/* Quantizes w per group. step receives 1/s, zero z (per group), codes the
 * integer codes, out the dequantized weight; each is optional. out may
 * alias w. Returns the number of solver iterations run, or 0 with error
 * set on a bad config. */
guint slim_hqq_fake_quantize (const SlimHqqConfig *cfg,
                              const float *w, /* [n_rows, n_cols] row-major */
                              gint64 n_rows,
                              gint64 n_cols,
                              float *step,   /* [n_rows, n_cols / group_size] or NULL */
                              float *zero,   /* [n_rows, n_cols / group_size] or NULL */
                              guint8 *codes, /* [n_rows, n_cols] or NULL */
                              float *out,    /* [n_rows, n_cols] row-major or NULL */
                              GError **error);

/* The same quantization in the signed-code convention of slim-qparams.h,
 * which is what linear_quant and the savers store: x^ = (q - offset) *
 * scale with q in [-2^(bits-1), 2^(bits-1) - 1], so q = code - 2^(bits-1),
 * offset = z - 2^(bits-1) (a float: HQQ's zero point is not an integer)
 * and scale = 1/s.  dequantized (optional) is (q - offset) * scale as
 * slim_dequantize_rows computes it from the stored values. */
gboolean slim_hqq_quantize_signed (const SlimHqqConfig *cfg,
                                   const float *w, /* [n_rows, n_cols] row-major */
                                   gint64 n_rows,
                                   gint64 n_cols,
                                   float *scale,  /* [n_rows, n_cols / group_size] */
                                   float *offset, /* [n_rows, n_cols / group_size] */
                                   gint8 *q,      /* [n_rows, n_cols] */
                                   GError **error);

G_END_DECLS
