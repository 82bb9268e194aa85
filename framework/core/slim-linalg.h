/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linalg.h: the one door to OpenBLAS.  Every matrix product of the
 * library goes through these wrappers (slim-linalg.c is the only file that
 * includes cblas.h).  Matrices are float32, row-major, with explicit
 * leading dimensions in elements.  Each product has a plain-loop _ref twin
 * that the tests use as the oracle.
 *
 * Threads: OpenBLAS's thread count is always set by us, never left to its
 * own default: slim_linalg_set_n_threads(), or on first use from
 * $SLIMFLOW_NUM_THREADS, else $OPENBLAS_NUM_THREADS, else the number of
 * processors.
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

/* Largest dimension a product accepts (other than m): G_MAXINT. */
#define SLIM_LINALG_MAX_DIM ((gint64)G_MAXINT)

G_END_DECLS
