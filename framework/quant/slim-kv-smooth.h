/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-kv-smooth.h: the numerics of the kv_smooth processor
 * (modelslim-v1-spec.md 2.7; msModelSlim processor/kv_smooth/processor.py)
 * as pure functions on float32 buffers:
 *
 *   statistics  per channel of the post-RoPE key states (n_tokens,
 *               n_kv_heads * head_dim), running min and max over every
 *               calibration token (msModelSlim's MsMinMaxObserver over
 *               dims [batch, seq] of (B, H, S, D)); |K|max = max (|min|,
 *               |max|);
 *   scales      one per kv head h and RoPE pair (d, d + D/2), the rotate-
 *               half pairing RoPE mixes: s[h, d] = s[h, d + D/2] =
 *               max (|K|max[h, d], |K|max[h, d + D/2])^smooth_factor;
 *               state-rope-norm (qwen3 q_norm / k_norm, one vector shared
 *               by the heads) takes the maximum over the heads first;
 *   fusion      k_proj rows (and bias) / s, q_proj rows (and bias) * s of
 *               the kv head of each query head (GQA groups); or k_norm /
 *               s, q_norm * s.  Scaling a pair (d, d + D/2) by one value
 *               commutes with RoPE, so Q'K'^T = QK^T.
 *
 * Division is a true division, as torch's div_ (not a multiplication by
 * the reciprocal).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* kmin, kmax (n_channels): running min / max over the rows of k
 * (n_tokens, n_channels) row-major.  first: they are initialized from this
 * batch (n_tokens > 0). */
void slim_kv_smooth_minmax_update (
    float *kmin, float *kmax, const float *k, gint64 n_tokens, gint64 n_channels, gboolean first);

/* out (n) = max (|kmin|, |kmax|). */
void slim_kv_smooth_abs_max (const float *kmin, const float *kmax, gint64 n, float *out);

/* state-rope-linear.  key_abs_max (n_kv_heads * head_dim) ->
 * k_scale (n_kv_heads * head_dim) and q_scale (n_kv_heads * n_groups *
 * head_dim: each kv head's scales repeated for its n_groups query heads).
 * head_dim must be even (the caller checks). */
void slim_kv_smooth_linear_scales (const float *key_abs_max,
                                   gint64 n_kv_heads,
                                   gint64 head_dim,
                                   gint64 n_groups,
                                   double smooth_factor,
                                   float *k_scale,
                                   float *q_scale);

/* state-rope-norm: key_abs_max (n_kv_heads * head_dim) -> scale
 * (head_dim), the maximum over the heads of each pair, ^smooth_factor. */
void slim_kv_smooth_norm_scales (const float *key_abs_max,
                                 gint64 n_kv_heads,
                                 gint64 head_dim,
                                 double smooth_factor,
                                 float *scale);

/* w (n_rows, n_cols) row i / scale[i] (divide) or * scale[i]; bias
 * (n_rows, nullable) the same. */
void slim_kv_smooth_scale_rows (
    float *w, float *bias, gint64 n_rows, gint64 n_cols, const float *scale, gboolean divide);

/* v (n) / scale or * scale, elementwise. */
void slim_kv_smooth_scale_vector (float *v, gint64 n, const float *scale, gboolean divide);

G_END_DECLS
