/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hadamard.h: Hadamard matrices and the fast Walsh-Hadamard
 * transform, the building blocks of the rotation processors (quarot,
 * spec 2.15; msModelSlim processor/quarot/common/hadamard.py):
 *
 *   size        n = k * 2^m with k one of msModelSlim's base sizes (12, 20,
 *               28, 36, 40, 52, 60, 76, 108, 136, 140, 156, 160, 172, 200;
 *               the largest that fits is taken, as msModelSlim's get_had_k
 *               does) or k = 1 when n is a power of two;
 *   matrix      H = had_k (x) S_m, S_m the Sylvester matrix of order 2^m in
 *               natural order, so the flat index is f = l * 2^m + j with l
 *               the had_k index and j the Sylvester one;
 *   transform   x <- H x / sqrt(n) for every row x of a row-major buffer
 *               (msModelSlim's matmul_had_u; with transpose, H^T x as
 *               matmul_had_u_t): butterflies on bits 0 .. m-1 of f in that
 *               order (the same float operations as msModelSlim's, so the
 *               power-of-two part is bit-equal), then had_k across the k
 *               segments, then one division by sqrtf(n);
 *   signs       torch.randint(0, 2, (n,)) * 2 - 1 right after
 *               torch.manual_seed(seed): torch's CPU generator is the
 *               standard 32-bit mt19937 (init_genrand(seed)) and a draw of
 *               range 2 is (next32 % 2), reproduced here bit for bit.
 *
 * Base matrices are constructed, not stored: Paley I (q + 1 for a prime
 * q = 3 mod 4; orientation I - S with S the skew conference matrix, which is
 * exactly msModelSlim's had.12.txt for q = 11), Paley II (2 (q + 1) for a
 * prime power q = 1 mod 4, q = 25 over GF(5^2)) and Sylvester doubling;
 * 156 and 172, which have none of these, from the Williamson array of
 * Williamson matrices of order 39 and 43 (msModelSlim reads its own from
 * files; slimflow's first rows were found by tools/williamson-search.c and
 * are stored in slim-hadamard.c with the commands that regenerate them).
 * Only k = 12 equals msModelSlim's matrix entry for entry; the other bases
 * are valid Hadamard matrices of the same order but different entries.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TRUE when n > 0 is a power of two. */
gboolean slim_hadamard_is_pow2 (gint64 n);

/**
 * slim_hadamard_decompose:
 * @n: a transform size
 * @out_k: (out): the base size k (1 when n is a power of two)
 * @error: SLIM_PIPELINE_ERROR_INVALID_VALUE naming @n when no construction
 *   exists (n is neither a power of two nor k * 2^m with k a base size)
 *
 * Returns: TRUE on success.
 */
gboolean slim_hadamard_decompose (gint64 n, gint64 *out_k, GError **error);

/**
 * slim_hadamard_base:
 * @k: a base size (1 or one of the list above)
 * @out: (out caller-allocates): (k, k) row-major entries +1 / -1
 * @error: as slim_hadamard_decompose
 *
 * Returns: TRUE on success.
 */
gboolean slim_hadamard_base (gint64 k, gint8 *out, GError **error);

/* signs (n) = 2 * (mt19937(seed) % 2) - 1, in draw order. */
void slim_hadamard_random_signs (guint32 seed, gint64 n, gint8 *signs);

/**
 * slim_hadamard_transform_rows:
 * @x: (rows, n) row-major, transformed in place
 * @k: base size of n (from slim_hadamard_decompose)
 * @had_k: (nullable): (k, k) from slim_hadamard_base; NULL when k is 1
 * @transpose: apply H^T instead of H
 *
 * x[r, :] <- H x[r, :] / sqrt(n), O(n log n + n k) per row; the butterfly
 * stages inside 1024-element chunks run chunk by chunk (cache blocking).
 */
void slim_hadamard_transform_rows (
    float *x, gint64 rows, gint64 n, gint64 k, const gint8 *had_k, gboolean transpose);
/* The same as a dense product with H built explicitly (test oracle). */
void slim_hadamard_transform_rows_ref (
    float *x, gint64 rows, gint64 n, gint64 k, const gint8 *had_k, gboolean transpose);

/**
 * slim_hadamard_transform_cols:
 * @x: (n, cols) row-major, transformed in place
 *
 * Every column c: x[:, c] <- H x[:, c] / sqrt(n); butterflies between
 * whole rows, over panels of 64 columns.
 */
void slim_hadamard_transform_cols (
    float *x, gint64 n, gint64 cols, gint64 k, const gint8 *had_k, gboolean transpose);
void slim_hadamard_transform_cols_ref (
    float *x, gint64 n, gint64 cols, gint64 k, const gint8 *had_k, gboolean transpose);

/* h (n, n) = H as float (+-1, not normalized). */
void slim_hadamard_dense (gint64 n, gint64 k, const gint8 *had_k, float *h);

G_END_DECLS
