/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-online-rotation.c: QuaRot's online heads and Kronecker rotations
 * (see slim-online-rotation.h).
 */
#include "slim-online-rotation.h"

#include <string.h>

#include "slim-error.h"
#include "slim-hadamard.h"
#include "slim-linalg.h"

gboolean
slim_online_rotation_is_online_name (const char *name)
{
  return g_str_has_suffix (name, SLIM_ONLINE_ROTATION_HEADS)
         || g_str_has_suffix (name, SLIM_ONLINE_ROTATION_KRON_M)
         || g_str_has_suffix (name, SLIM_ONLINE_ROTATION_KRON_N)
         || g_str_has_suffix (name, SLIM_ONLINE_ROTATION_HADAMARD);
}

/* msModelSlim's sup_list: {1, 2} and the multiples of 4 up to 256. */
static gboolean
slim_online_rotation_supported_factor (gint64 f)
{
  return f == 1 || f == 2 || (f >= 4 && f <= 256 && f % 4 == 0);
}

static gint64
slim_online_rotation_isqrt (gint64 v)
{
  gint64 r = 0;

  while ((r + 1) * (r + 1) <= v)
    r++;
  return r;
}

gboolean
slim_online_rotation_decompose (gint64 n, gint64 *out_m, gint64 *out_n, GError **error)
{
  gint64 a;

  g_return_val_if_fail (out_m != NULL && out_n != NULL, FALSE);

  if (n > 0)
    {
      a = slim_online_rotation_isqrt (n);
      if (a * a < n)
        a++;
      for (; a <= 256; a++)
        {
          gint64 tmp = a * a - n;
          gint64 b = slim_online_rotation_isqrt (tmp);

          if (b * b == tmp && slim_online_rotation_supported_factor (a - b)
              && slim_online_rotation_supported_factor (a + b))
            {
              *out_m = a - b;
              *out_n = a + b;
              return TRUE;
            }
        }
    }
  g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
               "%" G_GINT64_FORMAT " has no Kronecker decomposition m * n with m, n in "
               "{1, 2, 4, 8, .., 256} (1, 2 or multiples of 4; msModelSlim's get_decompose_dim)",
               n);
  return FALSE;
}

void
slim_online_rotation_heads (
    const float *r, gint64 n_heads, gint64 head_dim, float *x, gint64 n_tokens)
{
  const gint64 width = n_heads * head_dim;
  g_autofree float *tmp = g_new (float, MAX (width, 1)); /* (n_heads, head_dim) */

  for (gint64 t = 0; t < n_tokens; t++)
    {
      float *xt = x + t * width; /* (n_heads, head_dim) */

      slim_linalg_sgemm (TRUE, FALSE, n_heads, head_dim, n_heads, 1.0f, r, n_heads, xt, head_dim,
                         0.0f, tmp, head_dim);
      memcpy (xt, tmp, (gsize)width * sizeof (float));
    }
}

void
slim_online_rotation_heads_ref (
    const float *r, gint64 n_heads, gint64 head_dim, float *x, gint64 n_tokens)
{
  const gint64 width = n_heads * head_dim;
  g_autofree float *tmp = g_new (float, MAX (width, 1)); /* (n_heads, head_dim) */

  for (gint64 t = 0; t < n_tokens; t++)
    {
      float *xt = x + t * width;

      for (gint64 i = 0; i < n_heads; i++)
        for (gint64 d = 0; d < head_dim; d++)
          {
            float acc = 0.0f;

            for (gint64 h = 0; h < n_heads; h++)
              acc += r[h * n_heads + i] * xt[h * head_dim + d];
            tmp[i * head_dim + d] = acc;
          }
      memcpy (xt, tmp, (gsize)width * sizeof (float));
    }
}

void
slim_online_rotation_kronecker (
    const float *m, gint64 dm, const float *n, gint64 dn, float *x, gint64 n_tokens)
{
  const gint64 width = dm * dn;
  g_autofree float *xn = g_new (float, MAX (n_tokens * width, 1)); /* (n_tokens * dm, dn) */

  /* X N for every token at once: x is (n_tokens * dm, dn) */
  slim_linalg_sgemm (FALSE, FALSE, n_tokens * dm, dn, dn, 1.0f, x, dn, n, dn, 0.0f, xn, dn);
  /* then M^T (X N) per token */
  for (gint64 t = 0; t < n_tokens; t++)
    slim_linalg_sgemm (TRUE, FALSE, dm, dn, dm, 1.0f, m, dm, xn + t * width, dn, 0.0f,
                       x + t * width, dn);
}

void
slim_online_rotation_kronecker_ref (
    const float *m, gint64 dm, const float *n, gint64 dn, float *x, gint64 n_tokens)
{
  const gint64 width = dm * dn;
  g_autofree float *xn = g_new (float, MAX (width, 1)); /* (dm, dn) */

  for (gint64 t = 0; t < n_tokens; t++)
    {
      float *xt = x + t * width; /* (dm, dn) */

      for (gint64 i = 0; i < dm; i++)
        for (gint64 j = 0; j < dn; j++)
          {
            float acc = 0.0f;

            for (gint64 k = 0; k < dn; k++)
              acc += xt[i * dn + k] * n[k * dn + j];
            xn[i * dn + j] = acc;
          }
      for (gint64 i = 0; i < dm; i++)
        for (gint64 j = 0; j < dn; j++)
          {
            float acc = 0.0f;

            for (gint64 k = 0; k < dm; k++)
              acc += m[k * dm + i] * xn[k * dn + j];
            xt[i * dn + j] = acc;
          }
    }
}

/* ---- hadamard: x <- H^T x / sqrt(n), H = had_k (x) S_m ------------------ */

/* had_k as int8 (k, k) after checking n_in = k 2^m and the +-1 entries;
 * NULL with error. */
static gint8 *
slim_online_rotation_hadamard_check (const float *had_k, gint64 k, gint64 n_in, GError **error)
{
  gint8 *h;

  if (k <= 0 || n_in % k != 0 || !slim_hadamard_is_pow2 (n_in / k))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "the Hadamard rotation's base is %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   ", the linear's %" G_GINT64_FORMAT " inputs are not that times a power of two",
                   k, k, n_in);
      return NULL;
    }
  h = g_new (gint8, k * k); /* (k, k) */
  for (gint64 i = 0; i < k * k; i++)
    {
      if (had_k[i] != 1.0f && had_k[i] != -1.0f)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                       "the Hadamard rotation's base has the entry %g at (%" G_GINT64_FORMAT
                       ", %" G_GINT64_FORMAT "), expected +1 or -1",
                       (double)had_k[i], i / k, i % k);
          g_free (h);
          return NULL;
        }
      h[i] = (gint8)had_k[i];
    }
  return h;
}

gboolean
slim_online_rotation_hadamard (
    const float *had_k, gint64 k, float *x, gint64 n_tokens, gint64 n_in, GError **error)
{
  g_autofree gint8 *h = slim_online_rotation_hadamard_check (had_k, k, n_in, error);

  if (h == NULL)
    return FALSE;
  /* x (n_tokens, n_in) */
  slim_hadamard_transform_rows (x, n_tokens, n_in, k, k > 1 ? h : NULL, TRUE);
  return TRUE;
}

gboolean
slim_online_rotation_hadamard_ref (
    const float *had_k, gint64 k, float *x, gint64 n_tokens, gint64 n_in, GError **error)
{
  g_autofree gint8 *h = slim_online_rotation_hadamard_check (had_k, k, n_in, error);

  if (h == NULL)
    return FALSE;
  slim_hadamard_transform_rows_ref (x, n_tokens, n_in, k, k > 1 ? h : NULL, TRUE);
  return TRUE;
}

float *
slim_online_rotation_hadamard_base (gint64 n, gint64 *out_k, GError **error)
{
  g_autofree gint8 *h = NULL;
  float *f;
  gint64 k = 0;

  if (!slim_hadamard_decompose (n, &k, error))
    return NULL;
  h = g_new (gint8, k * k); /* (k, k) */
  if (!slim_hadamard_base (k, h, error))
    return NULL;
  f = g_new (float, k *k); /* (k, k) */
  for (gint64 i = 0; i < k * k; i++)
    f[i] = (float)h[i];
  *out_k = k;
  return f;
}
