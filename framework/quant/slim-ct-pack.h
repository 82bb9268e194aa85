/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ct-pack.h: the int32 packing of vLLM's compressed-tensors
 * "pack-quantized" format (peers.md 1.5, peers-2026-12.md 5; behaviour of
 * compressed-tensors compressors/pack_quantized/helpers.py pack_to_int32 /
 * unpack_from_int32):
 *
 *   - a signed b-bit value v in [-2^(b-1), 2^(b-1) - 1] is stored as the
 *     unsigned code u = v + 2^(b-1) (offset encoding, not two's complement);
 *   - along the packed dimension the codes form one dense little-endian bit
 *     stream: element i occupies bits [i*b, i*b + b) of the stream, word w
 *     holds stream bits [32w, 32w + 32) with stream bit 32w in its bit 0, so
 *     an element may straddle two words when b does not divide 32;
 *   - a stream of E elements keeps ceil(E * b / 32) int32 words, unused high
 *     bits of the last word are zero.
 *
 * packed_dim 1 (weights, weight_packed): each row of (rows, cols) is one
 * stream, giving (rows, ceil(cols * b / 32)).
 * packed_dim 0 (asymmetric zero points, weight_zero_point): each column of
 * (rows, cols) is one stream, giving (ceil(rows * b / 32), cols).
 *
 * b is 1..8 as in compressed-tensors; values outside the b-bit range are an
 * error (they would silently wrap in the packed code).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* ceil (n * bits / 32): int32 words of a stream of n b-bit elements. */
gint64 slim_ct_packed_words (gint64 n, guint bits);

/* packed_dim 1: wq (rows, cols) -> packed (rows, slim_ct_packed_words (cols, bits)).
 * Fails (SLIM_ERROR_INVALID_ARGUMENT) on bits outside 1..8 or a value
 * outside [-2^(bits-1), 2^(bits-1) - 1]. */
gboolean slim_ct_pack_rows (const gint8 *wq, /* (rows, cols) row-major */
                            gint64 rows,
                            gint64 cols,
                            guint bits,
                            gint32 *packed, /* (rows, ceil (cols * bits / 32)) */
                            GError **error);
/* The plain bit-by-bit twin of slim_ct_pack_rows. */
gboolean slim_ct_pack_rows_ref (const gint8 *wq, /* (rows, cols) row-major */
                                gint64 rows,
                                gint64 cols,
                                guint bits,
                                gint32 *packed, /* (rows, ceil (cols * bits / 32)) */
                                GError **error);
/* packed_dim 0: wq (rows, cols) -> packed (slim_ct_packed_words (rows, bits), cols). */
gboolean slim_ct_pack_cols (const gint8 *wq, /* (rows, cols) row-major */
                            gint64 rows,
                            gint64 cols,
                            guint bits,
                            gint32 *packed, /* (ceil (rows * bits / 32), cols) */
                            GError **error);

/* The inverses (signed values back); fail on bits outside 1..8 or nonzero
 * padding bits, which a packer never writes. */
gboolean slim_ct_unpack_rows (const gint32 *packed, /* (rows, ceil (cols * bits / 32)) */
                              gint64 rows,
                              gint64 cols,
                              guint bits,
                              gint8 *wq, /* (rows, cols) row-major */
                              GError **error);
gboolean slim_ct_unpack_cols (const gint32 *packed, /* (ceil (rows * bits / 32), cols) */
                              gint64 rows,
                              gint64 cols,
                              guint bits,
                              gint8 *wq, /* (rows, cols) row-major */
                              GError **error);

G_END_DECLS
