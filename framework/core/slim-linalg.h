/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linalg.h: the one door to OpenBLAS and its LAPACK.  Every matrix
 * product and factorisation of the library goes through these wrappers
 * (slim-linalg.c is the only file that includes cblas.h or declares LAPACK
 * routines).  Matrices are float32, row-major, with explicit leading
 * dimensions in elements.  Each product has a plain-loop _ref twin that the
 * tests use as the oracle (the factorisations are checked by reconstructing
 * the input).
 *
 * Threads: OpenBLAS's thread count is always set by us, never left to its
 * own default: slim_linalg_set_n_threads(), or on first use from
 * $SLIMFLOW_NUM_THREADS, else $OPENBLAS_NUM_THREADS, else the number of
 * processors.  The LAPACK factorisations use at least two threads (see
 * slim_linalg_spotrf()).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * slim_linalg_set_n_threads:
 * @n_threads: threads for OpenBLAS; 0 or less means one per processor
 *
 * Sets the number of threads every following product uses.
 */
void slim_linalg_set_n_threads (gint n_threads);

/**
 * slim_linalg_get_n_threads:
 *
 * Returns: the thread count in effect (initialising it if needed).
 */
gint slim_linalg_get_n_threads (void);

/**
 * slim_linalg_get_core_name:
 *
 * Returns: the OpenBLAS kernel set in use (openblas_get_corename(), e.g.
 *   "Cooperlake", "Haswell"), for reports and for tests whose bit-exact
 *   expectations hold for one kernel set only
 */
const char *slim_linalg_get_core_name (void);

/**
 * slim_linalg_sgemm:
 * @trans_a: use A transposed: A is stored (k, m) instead of (m, k)
 * @trans_b: use B transposed: B is stored (n, k) instead of (k, n)
 * @m: rows of op(A) and C
 * @n: columns of op(B) and C
 * @k: columns of op(A), rows of op(B)
 * @alpha: factor on op(A) op(B)
 * @a: (m, k) or (k, m) row-major with leading dimension @lda
 * @b: (k, n) or (n, k) row-major with leading dimension @ldb
 * @beta: factor on the previous C (0: C is write-only)
 * @c: (m, n) row-major with leading dimension @ldc
 *
 * C = alpha op(A) op(B) + beta C, through OpenBLAS.  Every dimension other
 * than @m must fit a C int (the library checks model shapes against that
 * when it reads them); @m is split as needed.
 */
void slim_linalg_sgemm (gboolean trans_a,
                        gboolean trans_b,
                        gint64 m,
                        gint64 n,
                        gint64 k,
                        float alpha,
                        const float *a,
                        gint64 lda,
                        const float *b,
                        gint64 ldb,
                        float beta,
                        float *c,
                        gint64 ldc);

/* The same in plain loops with a double accumulator (test oracle). */
void slim_linalg_sgemm_ref (gboolean trans_a,
                            gboolean trans_b,
                            gint64 m,
                            gint64 n,
                            gint64 k,
                            float alpha,
                            const float *a,
                            gint64 lda,
                            const float *b,
                            gint64 ldb,
                            float beta,
                            float *c,
                            gint64 ldc);

/**
 * slim_linalg_linear:
 * @x: (n_rows, n_in) row-major input
 * @weight: (n_out, n_in) row-major, as nn.Linear stores it
 * @bias: (nullable): (n_out)
 * @y: (n_rows, n_out) row-major output (overwritten)
 *
 * y = x weightᵀ + bias: one sgemm for all rows.
 */
void slim_linalg_linear (const float *x,
                         const float *weight,
                         const float *bias,
                         float *y,
                         gint64 n_rows,
                         gint64 n_in,
                         gint64 n_out);
void slim_linalg_linear_ref (const float *x,
                             const float *weight,
                             const float *bias,
                             float *y,
                             gint64 n_rows,
                             gint64 n_in,
                             gint64 n_out);

/**
 * slim_linalg_ssyrk_t:
 * @n: order of C
 * @k: rows of A
 * @alpha: factor on Aᵀ A
 * @a: (k, n) row-major with leading dimension @lda
 * @beta: factor on the previous C (0: C is write-only)
 * @c: (n, n) row-major with leading dimension @ldc
 *
 * C = alpha Aᵀ A + beta C on the upper triangle of C (row-major: elements
 * (i, j) with j >= i), through OpenBLAS ssyrk; the strict lower triangle is
 * neither read nor written.  Every dimension must fit a C int.
 */
void slim_linalg_ssyrk_t (
    gint64 n, gint64 k, float alpha, const float *a, gint64 lda, float beta, float *c, gint64 ldc);
/* The same in plain loops with a double accumulator (test oracle). */
void slim_linalg_ssyrk_t_ref (
    gint64 n, gint64 k, float alpha, const float *a, gint64 lda, float beta, float *c, gint64 ldc);

/* Which triangle of a row-major symmetric matrix a LAPACK call reads and
 * writes.  (Row-major LOWER is LAPACK's column-major 'U' and the reverse;
 * the wrappers do the translation.) */
typedef enum
{
  SLIM_LINALG_LOWER,
  SLIM_LINALG_UPPER,
} SlimLinalgTriangle;

/**
 * slim_linalg_spotrf:
 * @triangle: the triangle of @a holding the matrix and receiving the factor
 * @n: order of A, must fit a C int
 * @a: (n, n) row-major symmetric positive-definite, leading dimension @lda
 *
 * Cholesky factorisation through LAPACK spotrf (OpenBLAS), float32, in
 * place: LOWER leaves L with A = L Lᵀ in the lower triangle, UPPER leaves U
 * with A = Uᵀ U in the upper triangle.  The other strict triangle is
 * untouched.  OpenBLAS's one-thread algorithm rounds differently from its
 * threaded one, so this and slim_linalg_spotri() always run with at least
 * two threads: a setting of one thread gives what two give (with the
 * SkylakeX/Cooperlake kernels every count >= 2 agrees bit for bit; with
 * Haswell/Zen kernels the threaded results, like sgemm's, vary with the
 * count).
 *
 * Returns: 0 on success; k > 0 when the leading minor of order k is not
 *   positive definite (LAPACK's info; @a then holds a partial factor)
 */
gint64 slim_linalg_spotrf (SlimLinalgTriangle triangle, gint64 n, float *a, gint64 lda);

/**
 * slim_linalg_spotri:
 * @triangle: the triangle of @a holding the Cholesky factor
 * @n: order, must fit a C int
 * @a: (n, n) row-major: the factor from slim_linalg_spotrf() with the same
 *   @triangle; receives that triangle of A⁻¹
 *
 * Inverse of A from its Cholesky factor through LAPACK spotri (float32, in
 * place); the other strict triangle is untouched.
 *
 * Returns: 0 on success; k > 0 when the factor's k-th diagonal element is
 *   zero (A singular)
 */
gint64 slim_linalg_spotri (SlimLinalgTriangle triangle, gint64 n, float *a, gint64 lda);

/* Largest dimension a product accepts (other than m): G_MAXINT. */
#define SLIM_LINALG_MAX_DIM ((gint64)G_MAXINT)

G_END_DECLS
