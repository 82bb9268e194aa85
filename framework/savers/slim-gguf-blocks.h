/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-blocks.h: ggml's 32-element block encodings for the gguf saver
 * (the bit layouts of ggml's reference quantizers; written from their
 * description, not copied).
 *
 *   Q8_0  34 bytes: f16 d, int8 q[32];        x = d * q,  d = amax / 127
 *   Q4_0  18 bytes: f16 d, u8 qs[16];         x = d * (n - 8), d = max / -8
 *         (max: the value of largest magnitude, with its sign)
 *   Q4_1  20 bytes: f16 d, f16 m, u8 qs[16];  x = d * n + m, d = (max-min)/15
 *
 * Nibbles: qs[j] holds element j in its low 4 bits, element j + 16 in its
 * high 4 bits.  f16 values are little-endian.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_GGUF_BLOCK 32
#define SLIM_GGUF_Q8_0_BYTES 34
#define SLIM_GGUF_Q4_0_BYTES 18
#define SLIM_GGUF_Q4_1_BYTES 20

/* @x: [32] float32; @out: one block of the sizes above. */
void slim_gguf_q8_0_encode (const float *x, guint8 *out);
void slim_gguf_q4_0_encode (const float *x, guint8 *out);
void slim_gguf_q4_1_encode (const float *x, guint8 *out);
/* @in: one block; @y: [32] float32. */
void slim_gguf_q8_0_decode (const guint8 *in, float *y);
void slim_gguf_q4_0_decode (const guint8 *in, float *y);
void slim_gguf_q4_1_decode (const guint8 *in, float *y);

/* Blocks from integer codes slimflow already chose (the gguf saver writes
 * a quantizer's own results, so the file holds exactly its integers; only
 * d and m are rounded to f16).  @q: [32] codes.
 *   Q8_0  q in [-128, 127], x = scale * q
 *   Q4_0  q in [-8, 7],     x = scale * q        (stored as n = q + 8)
 *   Q4_1  q in [-8, 7],     x = scale * (q - offset)
 *         (stored as n = q + 8, d = scale, m = -scale * (8 + offset))
 * Return FALSE (writing nothing) when a code is out of range. */
gboolean slim_gguf_q8_0_pack (const gint8 *q, float scale, guint8 *out);
gboolean slim_gguf_q4_0_pack (const gint8 *q, float scale, guint8 *out);
gboolean slim_gguf_q4_1_pack (const gint8 *q, float scale, float offset, guint8 *out);

G_END_DECLS
