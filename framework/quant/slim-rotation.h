/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-rotation.h: QuaRot's randomized Hadamard rotation and its
 * application to weights (spec 2.15; msModelSlim processor/quarot/common/
 * quarot_utils.py create_rot, rotate_linear, fuse_ln_linear):
 *
 *   Q = diag(s) P / sqrt(b)      P = H^T (msModelSlim's matmul_had_u of I),
 *                                s the +-1 signs of seed 1234, b the block;
 *   dim > b                      blockdiag(Q, .., Q) (create_rot's
 *                                block_size, rotate_linear's automatic
 *                                block-diagonal use);
 *   right rotation               W (rows, dim) <- W Q       (input side)
 *   left rotation                W (dim, cols) <- Q^T W, b <- Q^T b
 *                                                            (output side)
 *
 * The fast paths never build Q: W Q row by row is H (w * s) / sqrt(b)
 * (signs, then the transform of slim-hadamard.h), and Q^T W is
 * H (diag(s) W) / sqrt(b) column by column.  The _ref twins multiply by
 * the dense Q (OpenBLAS sgemm), as msModelSlim does.
 *
 * A dense rotation (slim_rotation_new_dense: a learned orthogonal matrix
 * such as adapt_rotation's H R, spec 2.16) has no Hadamard structure: its
 * fast paths are one sgemm over all blocks at once, W viewed as
 * (rows * dim / b, b) times Q, and Q^T times each (b, cols) block.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gint64 size;  /* b: order of one Hadamard block */
  gint64 k;     /* base size of b (slim-hadamard.h) */
  gint8 *had_k; /* (k, k), NULL when k is 1 */
  gint8 *signs; /* (size); NULL for a dense rotation */
  float *dense; /* (size, size) Q of a dense rotation; NULL for a Hadamard one */
} SlimRotation;

/* msModelSlim's seed of create_rot. */
#define SLIM_ROTATION_SEED 1234u

/**
 * slim_rotation_new_hadamard:
 * @size: the block order b
 * @seed: the mt19937 seed of the signs
 * @error: no Hadamard construction of @size (the message names it)
 *
 * Returns: (transfer full) (nullable): the rotation.
 */
SlimRotation *slim_rotation_new_hadamard (gint64 size, guint32 seed, GError **error);
/**
 * slim_rotation_new_dense:
 * @size: the order of @q
 * @q: (array) (size, size) the rotation Q, row-major (copied); the caller
 *   checks that it is orthogonal
 *
 * Returns: (transfer full): a rotation applying Q (block-diagonally when
 *   a weight's dimension is a multiple of @size).
 */
SlimRotation *slim_rotation_new_dense (gint64 size, const float *q);
void slim_rotation_free (SlimRotation *rotation);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimRotation, slim_rotation_free)

/* q (size, size) = Q, float32 as msModelSlim computes it (one division by
 * sqrtf(size) of an integer). */
void slim_rotation_to_dense (const SlimRotation *rotation, float *q);
/* q (dim, dim) = blockdiag(Q, .., Q); dim a multiple of size. */
void slim_rotation_to_dense_blockdiag (const SlimRotation *rotation, gint64 dim, float *q);

/* FALSE with an error naming both when dim is no multiple of size. */
gboolean slim_rotation_check_dim (const SlimRotation *rotation,
                                  gint64 dim,
                                  const char *what,
                                  GError **error);

/* w (rows, dim) <- w blockdiag(Q); dim a multiple of size (checked by the
 * caller with slim_rotation_check_dim). */
void slim_rotation_apply_right (const SlimRotation *rotation, float *w, gint64 rows, gint64 dim);
void
slim_rotation_apply_right_ref (const SlimRotation *rotation, float *w, gint64 rows, gint64 dim);

/* w (dim, cols) <- blockdiag(Q)^T w; bias (nullable, (dim)) likewise. */
void slim_rotation_apply_left (
    const SlimRotation *rotation, float *w, gint64 dim, gint64 cols, float *bias);
void slim_rotation_apply_left_ref (
    const SlimRotation *rotation, float *w, gint64 dim, gint64 cols, float *bias);

/* w (rows, n)[:, j] *= gamma[j] (fuse_ln_linear for an RMSNorm; the gain
 * is then set to 1 by the caller). */
void slim_rotation_fuse_norm (float *w, gint64 rows, gint64 n, const float *gamma);

/**
 * slim_rotation_block_shifted:
 * @size: order of the result
 * @block: order of the Hadamard blocks (size a multiple of it)
 * @rot_step: 1, 2 or 3
 * @eye_blocks: (array length=n_eye): block indices that hold I instead
 * @seed: seed of the block's signs
 * @out: (size, size) msModelSlim's BLOCK_HADAMARD_SHIFTED rotation:
 *   B = blockdiag of the random block Hadamard, P the permutation taking
 *   column j to (j + 16) mod size; step 1 B P B, step 2 B P B P^T B^T,
 *   step 3 B P B P^T B^T P B P^T B^T (dense products, sgemm)
 * @error: no construction for @block, or a bad @rot_step
 *
 * Returns: TRUE on success.
 */
gboolean slim_rotation_block_shifted (gint64 size,
                                      gint64 block,
                                      int rot_step,
                                      const gint64 *eye_blocks,
                                      guint n_eye,
                                      guint32 seed,
                                      float *out,
                                      GError **error);

G_END_DECLS
