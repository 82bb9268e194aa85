/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-igemm.h: exact int8 x int8 -> int32 matrix products, the integer
 * forward of W8A8 layers as an accelerator runs it (issue #16):
 *
 *   C[m][n] = sum_k A[m][k] * B[n][k]        A: activations (M, K) int8
 *                                            B: weights     (N, K) int8
 *                                            C:             (M, N) int32
 *
 * Integer sums are exact, so every path equals slim_igemm_s8s8_ref bit for
 * bit.  The weight operand is packed once (slim_igemm_pack_b: rows padded
 * to a multiple of 64 bytes, row sums kept) and reused for every batch of
 * activations.
 *
 * Paths (slim_igemm_get_path): AVX512-VNNI (vpdpbusd: unsigned x signed
 * bytes, so A is offset by +128 and 128 * rowsum(B) is subtracted), chosen
 * at run time when the CPU has it; otherwise a portable C loop.
 * $SLIMFLOW_IGEMM=portable forces the portable path (benchmarks, tests).
 *
 * Bound: K <= SLIM_IGEMM_MAX_K keeps every int32 partial sum in range
 * (255 * 128 * 65536 < 2^31).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_IGEMM_MAX_K 65536

typedef enum
{
  SLIM_IGEMM_PATH_PORTABLE,
  SLIM_IGEMM_PATH_AVX512_VNNI,
} SlimIgemmPath;

/* The path slim_igemm_s8s8 takes on this machine; "portable",
 * "avx512_vnni" from slim_igemm_path_name. */
SlimIgemmPath slim_igemm_get_path (void);
const char *slim_igemm_path_name (SlimIgemmPath path);

typedef struct _SlimIgemmPackedB SlimIgemmPackedB;

/* Packs the (n, k) int8 weight (row stride ldb >= k).  NULL with an error
 * when k or n is 0 or k exceeds SLIM_IGEMM_MAX_K. */
SlimIgemmPackedB *
slim_igemm_pack_b (const gint8 *b, gint64 n, gint64 k, gint64 ldb, GError **error);
void slim_igemm_packed_b_free (SlimIgemmPackedB *packed);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimIgemmPackedB, slim_igemm_packed_b_free)
gint64 slim_igemm_packed_b_get_n (const SlimIgemmPackedB *packed);
gint64 slim_igemm_packed_b_get_k (const SlimIgemmPackedB *packed);

/* C (m, n) int32, row stride ldc >= n  =  A (m, k) int8, row stride lda >= k,
 * times the packed B transposed; m may be 0. */
void slim_igemm_s8s8 (
    const gint8 *a, gint64 m, gint64 lda, const SlimIgemmPackedB *b, gint32 *c, gint64 ldc);

/* The same with a given path (the VNNI path only where the CPU has it:
 * otherwise FALSE and C untouched). */
gboolean slim_igemm_s8s8_with_path (SlimIgemmPath path,
                                    const gint8 *a,
                                    gint64 m,
                                    gint64 lda,
                                    const SlimIgemmPackedB *b,
                                    gint32 *c,
                                    gint64 ldc);

/* Plain triple loop, the reference: C (m, n) = A (m, k) B (n, k)^T. */
void slim_igemm_s8s8_ref (const gint8 *a,
                          const gint8 *b,
                          gint64 m,
                          gint64 n,
                          gint64 k,
                          gint64 lda,
                          gint64 ldb,
                          gint32 *c,
                          gint64 ldc);

G_END_DECLS
