/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-channel-quant.h: per-column (per channel) activation quantization
 * of a row-major (n_rows, n_cols) activation, as the KV cache
 * (dynamic_cache, modelslim-v1-spec.md 2.8: columns are the H*D channels
 * of k or v, rows the tokens) and fa3_quant per head (the D columns of a
 * head share one scale) use it:
 *
 *   running min/max per column over every call (slim_minmax_cols_update)
 *   q  = clamp (round (x / scale[c] + offset[c]), qmin, qmax)
 *   x^ = (q - offset[c]) * scale[c]
 *
 * with the integer rules of slim-qparams.h (round half to even, the
 * division kept).  Plain loops: no optimized twin is needed.
 */
#pragma once

#include <glib.h>
#include "slim-qparams.h"

G_BEGIN_DECLS

/* Folds the column minima / maxima of x into min/max (set them to
 * +G_MAXFLOAT / -G_MAXFLOAT before the first call). NaN is ignored. */
void slim_minmax_cols_update (const float *x, /* (n_rows, n_cols) row-major */
                              gint64 n_rows,
                              gint64 n_cols,
                              float *min, /* (n_cols) inout */
                              float *max /* (n_cols) inout */);

/* out = dequantize (quantize (x)) with one (scale, offset) per column; out
 * may alias x. */
void slim_fake_quantize_cols (const SlimQParamsConfig *cfg,
                              const float *x, /* (n_rows, n_cols) row-major */
                              gint64 n_rows,
                              gint64 n_cols,
                              const float *scale,  /* (n_cols) */
                              const float *offset, /* (n_cols) */
                              float *out /* (n_rows, n_cols) row-major */);

G_END_DECLS
