/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-kquants.h: ggml's K-quant super-blocks of 256 elements for the
 * gguf saver (the bit layouts of ggml-common.h's block_q4_K / block_q6_K
 * and their dequantization in ggml-quants.c; written from their
 * description, not copied).  All f16 values little-endian.
 *
 *   Q4_K  144 bytes: f16 d, f16 dmin, u8 scales[12], u8 qs[128]
 *         eight sub-blocks of 32, each a 6-bit scale sc_j and min m_j:
 *           j < 4:  scales[j] low 6 bits = sc_j, scales[j + 4] low 6 = m_j
 *           j >= 4: scales[j + 4] = (sc_j & 15) | (m_j & 15) << 4, the top
 *                   2 bits of sc_j in bits 6-7 of scales[j - 4], of m_j in
 *                   bits 6-7 of scales[j]
 *         qs[32c + l]: low nibble element 64c + l, high nibble 64c + 32 + l
 *         x = (d * sc_j) * q - (dmin * m_j),  q in 0..15
 *   Q6_K  210 bytes: u8 ql[128], u8 qh[64], i8 scales[16], f16 d
 *         sixteen sub-blocks of 16 (scale scales[e / 16]), 6-bit codes L:
 *         in half h (elements 128h ..), for l < 32 the elements 128h + l
 *         + 32k, k = 0..3, keep their low nibbles in ql[64h + l] (k 0 low,
 *         k 2 high) and ql[64h + 32 + l] (k 1 low, k 3 high) and their top
 *         two bits in qh[32h + l] at bits 2k..2k+1
 *         x = (d * scales[e / 16]) * (L - 32)
 *
 * The encoders choose the scales from each sub-block's range (Q4_K: min
 * and max, the min clamped to <= 0; Q6_K: the largest magnitude over 31),
 * the super-block scales d / dmin as the largest sub-block scale / min
 * over 63 (Q6_K: scale over 127) rounded to f16, then the codes by
 * rounding to nearest with those stored scales.  llama-quantize searches
 * the scales (make_qkx2_quants / make_qx_quants) and so picks other codes;
 * any block decodes the same in llama.cpp.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_GGUF_QK_K 256
#define SLIM_GGUF_Q4_K_BYTES 144
#define SLIM_GGUF_Q6_K_BYTES 210

/* @x: [256] finite float32; @out: one block of the size above. */
void slim_gguf_q4_k_encode (const float *x, guint8 *out);
void slim_gguf_q6_k_encode (const float *x, guint8 *out);
/* @in: one block; @y: [256] float32, as ggml dequantizes it. */
void slim_gguf_q4_k_decode (const guint8 *in, float *y);
void slim_gguf_q6_k_decode (const guint8 *in, float *y);

G_END_DECLS
