/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-rotation.c: randomized Hadamard rotations of weights (see
 * slim-rotation.h).
 */
#include "slim-rotation.h"

#include <math.h>
#include <string.h>

#include "slim-error.h"
#include "slim-hadamard.h"
#include "slim-linalg.h"

#define SLIM_ROTATION_SHIFT 16 /* msModelSlim's create_rot: shift = 16 */

SlimRotation *
slim_rotation_new_hadamard (gint64 size, guint32 seed, GError **error)
{
  g_autoptr (SlimRotation) rotation = g_new0 (SlimRotation, 1);

  if (!slim_hadamard_decompose (size, &rotation->k, error))
    return NULL;
  rotation->size = size;
  if (rotation->k > 1)
    {
      rotation->had_k = g_new (gint8, rotation->k * rotation->k);
      if (!slim_hadamard_base (rotation->k, rotation->had_k, error))
        return NULL;
    }
  rotation->signs = g_new (gint8, size);
  slim_hadamard_random_signs (seed, size, rotation->signs);
  return g_steal_pointer (&rotation);
}

SlimRotation *
slim_rotation_new_dense (gint64 size, const float *q)
{
  SlimRotation *rotation = g_new0 (SlimRotation, 1);

  g_return_val_if_fail (size > 0 && q != NULL, NULL);
  rotation->size = size;
  rotation->k = 1;
  rotation->dense = g_memdup2 (q, (gsize)(size * size) * sizeof (float)); /* (size, size) */
  return rotation;
}

void
slim_rotation_free (SlimRotation *rotation)
{
  if (rotation == NULL)
    return;
  g_free (rotation->had_k);
  g_free (rotation->signs);
  g_free (rotation->dense);
  g_free (rotation);
}

void
slim_rotation_to_dense (const SlimRotation *rotation, float *q)
{
  const gint64 n = rotation->size;
  const float norm = sqrtf ((float)n);

  if (rotation->dense != NULL)
    {
      memcpy (q, rotation->dense, (gsize)(n * n) * sizeof (float));
      return;
    }
  /* P = H^T, so Q[i, j] = s_i H[j, i] / sqrt(n) */
  slim_hadamard_dense (n, rotation->k, rotation->had_k, q);
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = i + 1; j < n; j++)
      {
        float t = q[i * n + j];
        q[i * n + j] = q[j * n + i];
        q[j * n + i] = t;
      }
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < n; j++)
      q[i * n + j] = (float)rotation->signs[i] * q[i * n + j] / norm;
}

void
slim_rotation_to_dense_blockdiag (const SlimRotation *rotation, gint64 dim, float *q)
{
  const gint64 b = rotation->size;
  g_autofree float *block = g_new (float, b *b); /* (b, b) */

  g_return_if_fail (dim % b == 0);
  slim_rotation_to_dense (rotation, block);
  memset (q, 0, (gsize)(dim * dim) * sizeof (float));
  for (gint64 o = 0; o < dim; o += b)
    for (gint64 i = 0; i < b; i++)
      memcpy (q + (o + i) * dim + o, block + i * b, (gsize)b * sizeof (float));
}

gboolean
slim_rotation_check_dim (const SlimRotation *rotation, gint64 dim, const char *what, GError **error)
{
  if (dim <= 0 || dim % rotation->size != 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: dimension %" G_GINT64_FORMAT
                   " is no multiple of the rotation size %" G_GINT64_FORMAT,
                   what, dim, rotation->size);
      return FALSE;
    }
  return TRUE;
}

void
slim_rotation_apply_right (const SlimRotation *rotation, float *w, gint64 rows, gint64 dim)
{
  const gint64 b = rotation->size;
  const gint64 n_blocks = rows * (dim / b);

  g_return_if_fail (dim % b == 0);
  if (rotation->dense != NULL)
    {
      /* w viewed as (rows * dim / b, b) times Q (b, b) */
      g_autofree float *out = g_new (float, rows *dim); /* (rows * dim / b, b) */

      slim_linalg_sgemm (FALSE, FALSE, n_blocks, b, b, 1.0f, w, b, rotation->dense, b, 0.0f, out,
                         b);
      memcpy (w, out, (gsize)(rows * dim) * sizeof (float));
      return;
    }
  /* w viewed as (rows * dim / b, b): every block row is w_blk * s then H */
  for (gint64 r = 0; r < n_blocks; r++)
    {
      float *blk = w + r * b;
      for (gint64 j = 0; j < b; j++)
        blk[j] *= (float)rotation->signs[j];
    }
  slim_hadamard_transform_rows (w, n_blocks, b, rotation->k, rotation->had_k, FALSE);
}

void
slim_rotation_apply_right_ref (const SlimRotation *rotation, float *w, gint64 rows, gint64 dim)
{
  g_autofree float *q = g_new (float, dim *dim);    /* (dim, dim) */
  g_autofree float *out = g_new (float, rows *dim); /* (rows, dim) */

  slim_rotation_to_dense_blockdiag (rotation, dim, q);
  slim_linalg_sgemm (FALSE, FALSE, rows, dim, dim, 1.0f, w, dim, q, dim, 0.0f, out, dim);
  memcpy (w, out, (gsize)(rows * dim) * sizeof (float));
}

void
slim_rotation_apply_left (
    const SlimRotation *rotation, float *w, gint64 dim, gint64 cols, float *bias)
{
  const gint64 b = rotation->size;

  g_return_if_fail (dim % b == 0);
  if (rotation->dense != NULL)
    {
      g_autofree float *out = g_new (float, b *MAX (cols, 1)); /* (b, cols) */
      g_autofree float *ob = g_new (float, b);                 /* (b) */

      for (gint64 o = 0; o < dim; o += b)
        {
          float *blk = w + o * cols; /* (b, cols) */
          slim_linalg_sgemm (TRUE, FALSE, b, cols, b, 1.0f, rotation->dense, b, blk, cols, 0.0f,
                             out, cols);
          memcpy (blk, out, (gsize)(b * cols) * sizeof (float));
          if (bias != NULL)
            {
              for (gint64 i = 0; i < b; i++)
                {
                  double acc = 0.0;
                  for (gint64 j = 0; j < b; j++)
                    acc += (double)rotation->dense[j * b + i] * bias[o + j];
                  ob[i] = (float)acc;
                }
              memcpy (bias + o, ob, (gsize)b * sizeof (float));
            }
        }
      return;
    }
  for (gint64 o = 0; o < dim; o += b)
    {
      float *blk = w + o * cols; /* (b, cols) */
      for (gint64 i = 0; i < b; i++)
        {
          const float s = (float)rotation->signs[i];
          float *row = blk + i * cols;
          for (gint64 c = 0; c < cols; c++)
            row[c] *= s;
        }
      slim_hadamard_transform_cols (blk, b, cols, rotation->k, rotation->had_k, FALSE);
      if (bias != NULL)
        {
          float *bb = bias + o; /* (b), as a (b, 1) column */
          for (gint64 i = 0; i < b; i++)
            bb[i] *= (float)rotation->signs[i];
          slim_hadamard_transform_cols (bb, b, 1, rotation->k, rotation->had_k, FALSE);
        }
    }
}

void
slim_rotation_apply_left_ref (
    const SlimRotation *rotation, float *w, gint64 dim, gint64 cols, float *bias)
{
  g_autofree float *q = g_new (float, dim *dim);    /* (dim, dim) */
  g_autofree float *out = g_new (float, dim *cols); /* (dim, cols) */

  slim_rotation_to_dense_blockdiag (rotation, dim, q);
  slim_linalg_sgemm (TRUE, FALSE, dim, cols, dim, 1.0f, q, dim, w, cols, 0.0f, out, cols);
  memcpy (w, out, (gsize)(dim * cols) * sizeof (float));
  if (bias != NULL)
    {
      g_autofree float *ob = g_new (float, dim); /* (dim) */
      slim_linalg_sgemm (TRUE, FALSE, dim, 1, dim, 1.0f, q, dim, bias, 1, 0.0f, ob, 1);
      memcpy (bias, ob, (gsize)dim * sizeof (float));
    }
}

void
slim_rotation_fuse_norm (float *w, gint64 rows, gint64 n, const float *gamma)
{
  for (gint64 r = 0; r < rows; r++)
    for (gint64 j = 0; j < n; j++)
      w[r * n + j] *= gamma[j];
}

gboolean
slim_rotation_block_shifted (gint64 size,
                             gint64 block,
                             int rot_step,
                             const gint64 *eye_blocks,
                             guint n_eye,
                             guint32 seed,
                             float *out,
                             GError **error)
{
  g_autoptr (SlimRotation) rotation = NULL;
  g_autofree float *bd = NULL;  /* (size, size) the block-diagonal B */
  g_autofree float *qb = NULL;  /* (block, block) */
  g_autofree float *p = NULL;   /* (size, size) the shift permutation */
  g_autofree float *acc = NULL; /* (size, size) */
  g_autofree float *tmp = NULL; /* (size, size) */
  const gsize bytes = (gsize)(size * size) * sizeof (float);
  /* the factors after the first B, as (matrix, transposed) */
  const float *seq[10];
  gboolean trans[10];
  guint n_seq = 0;

  if (rot_step < 1 || rot_step > 3)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "rot_step must be 1, 2 or 3, got %d", rot_step);
      return FALSE;
    }
  if (block <= 0 || size % block != 0 || size < SLIM_ROTATION_SHIFT)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "block-shifted rotation: size %" G_GINT64_FORMAT
                   " must be a multiple of block %" G_GINT64_FORMAT " and at least %d",
                   size, block, SLIM_ROTATION_SHIFT);
      return FALSE;
    }
  rotation = slim_rotation_new_hadamard (block, seed, error);
  if (rotation == NULL)
    return FALSE;
  bd = g_malloc0 (bytes);
  qb = g_new (float, block *block);
  slim_rotation_to_dense (rotation, qb);
  for (gint64 o = 0, bi = 0; o < size; o += block, bi++)
    {
      gboolean eye = FALSE;
      for (guint e = 0; e < n_eye; e++)
        eye = eye || eye_blocks[e] == bi;
      for (gint64 i = 0; i < block; i++)
        for (gint64 j = 0; j < block; j++)
          bd[(o + i) * size + o + j] = eye ? (i == j ? 1.0f : 0.0f) : qb[i * block + j];
    }
  /* p = cat(I[:, -shift:], I[:, :-shift]): p[i, j] = 1 iff i = (j - shift) mod size */
  p = g_malloc0 (bytes);
  for (gint64 j = 0; j < size; j++)
    p[((j - SLIM_ROTATION_SHIFT + size) % size) * size + j] = 1.0f;

#define SLIM_PUSH(m, t) (seq[n_seq] = (m), trans[n_seq] = (t), n_seq++)
  SLIM_PUSH (p, FALSE);
  SLIM_PUSH (bd, FALSE);
  if (rot_step >= 2)
    {
      SLIM_PUSH (p, TRUE);
      SLIM_PUSH (bd, TRUE);
    }
  if (rot_step == 3)
    {
      SLIM_PUSH (p, FALSE);
      SLIM_PUSH (bd, FALSE);
      SLIM_PUSH (p, TRUE);
      SLIM_PUSH (bd, TRUE);
    }
#undef SLIM_PUSH

  /* left to right, as torch evaluates a @ b @ c */
  acc = g_memdup2 (bd, bytes);
  tmp = g_malloc (bytes);
  for (guint i = 0; i < n_seq; i++)
    {
      slim_linalg_sgemm (FALSE, trans[i], size, size, size, 1.0f, acc, size, seq[i], size, 0.0f,
                         tmp, size);
      memcpy (acc, tmp, bytes);
    }
  memcpy (out, acc, bytes);
  return TRUE;
}
