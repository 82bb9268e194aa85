/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gptq.c: GPTQ Hessian accumulation and column-block quantization
 * (algorithm in slim-gptq.h), the float32 LAPACK/BLAS path and its
 * plain-loop float64 reference.
 *
 * The float32 path repeats msModelSlim's operations in its order so the
 * codes come out equal: the in-block rank-1 updates are a product then a
 * subtraction (no fused multiply-add, hence fp-contract=off), the block
 * tail update is one sgemm per block, and the factorisations are the three
 * LAPACK calls torch makes (cholesky lower, cholesky_inverse, cholesky
 * upper).
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "slim-gptq.h"

#include "slim-error.h"
#include "slim-linalg.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Hessian                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * slim_gptq_hessian_init:
 * @self: (out caller-allocates): the accumulator
 * @n_in: input channels of the linear(s)
 * @error: return location for a #GError
 *
 * An empty Hessian (zeros, no samples).
 *
 * Returns: %TRUE on success
 */
gboolean
slim_gptq_hessian_init (SlimGptqHessian *self, gint64 n_in, GError **error)
{
  guint64 n_elements;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  memset (self, 0, sizeof *self);
  if (n_in < 1 || n_in > SLIM_LINALG_MAX_DIM
      || !g_uint64_checked_mul (&n_elements, (guint64)n_in, (guint64)n_in)
      || n_elements > G_MAXSIZE / sizeof (float))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "GPTQ Hessian: bad input width %" G_GINT64_FORMAT, n_in);
      return FALSE;
    }
  self->data = g_try_malloc0 ((gsize)n_elements * sizeof (float));
  if (self->data == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "GPTQ Hessian: cannot allocate %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " floats (%.1f MiB)",
                   n_in, n_in, (double)n_elements * sizeof (float) / (1024.0 * 1024.0));
      return FALSE;
    }
  self->n_in = n_in;
  self->n_samples = 0;
  return TRUE;
}

/**
 * slim_gptq_hessian_clear:
 * @self: an accumulator (may be zero-filled or already cleared)
 */
void
slim_gptq_hessian_clear (SlimGptqHessian *self)
{
  g_return_if_fail (self != NULL);
  g_clear_pointer (&self->data, g_free);
  self->n_in = 0;
  self->n_samples = 0;
}

/* Index of the first non-finite element, or -1. */
static gint64
slim_gptq_find_non_finite (const float *x, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    if (!isfinite (x[i]))
      return i;
  return -1;
}

/* Copies the upper triangle of a (n, n) row-major matrix to the lower one,
 * in tiles so both sides stay in cache. */
static void
slim_gptq_mirror_upper (float *a, gint64 n)
{
  const gint64 tile = 64;

  for (gint64 i0 = 0; i0 < n; i0 += tile)
    for (gint64 j0 = i0; j0 < n; j0 += tile)
      for (gint64 i = i0; i < MIN (i0 + tile, n); i++)
        for (gint64 j = MAX (j0, i + 1); j < MIN (j0 + tile, n); j++)
          a[j * n + i] = a[i * n + j];
}

/**
 * slim_gptq_hessian_add_batch:
 * @self: an accumulator
 * @x: (array): one forward call's input rows, (n_rows, n_in) row-major
 * @n_rows: rows (tokens), >= 0
 * @error: return location for a #GError
 *
 * msModelSlim's add_batch: H *= n / (n + t); n += t; H += (x s)ᵀ (x s)
 * with s = sqrt(2 / n), in float32 (ssyrk on the upper triangle, then
 * mirrored).
 *
 * Returns: %TRUE on success
 */
gboolean
slim_gptq_hessian_add_batch (SlimGptqHessian *self, const float *x, gint64 n_rows, GError **error)
{
  const gint64 n_in = self != NULL ? self->n_in : 0;
  guint64 n_elements;
  gint64 bad;
  gint64 n_total;
  float *xs;
  float beta, s;

  g_return_val_if_fail (self != NULL && self->data != NULL, FALSE);
  g_return_val_if_fail (n_rows >= 0 && (n_rows == 0 || x != NULL), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (n_rows == 0)
    return TRUE;
  if (n_rows > SLIM_LINALG_MAX_DIM || n_rows > G_MAXINT64 - self->n_samples
      || !g_uint64_checked_mul (&n_elements, (guint64)n_rows, (guint64)n_in)
      || n_elements > G_MAXSIZE / sizeof (float))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "GPTQ Hessian: batch of %" G_GINT64_FORMAT " rows is too large", n_rows);
      return FALSE;
    }
  bad = slim_gptq_find_non_finite (x, (gint64)n_elements);
  if (bad >= 0)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "GPTQ Hessian: calibration input row %" G_GINT64_FORMAT
                   " column %" G_GINT64_FORMAT " is %g",
                   bad / n_in, bad % n_in, (double)x[bad]);
      return FALSE;
    }
  xs = g_try_malloc ((gsize)n_elements * sizeof (float));
  if (xs == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "GPTQ Hessian: cannot allocate a batch of %" G_GINT64_FORMAT
                   " x %" G_GINT64_FORMAT " floats",
                   n_rows, n_in);
      return FALSE;
    }

  /* torch: H *= n / (n + t) (a float32 product with the rounded ratio),
   * then x * sqrt(2 / n) with the rounded factor; ssyrk's beta does the
   * first, the copy the second. */
  n_total = self->n_samples + n_rows;
  beta = (float)((double)self->n_samples / (double)n_total);
  s = (float)sqrt (2.0 / (double)n_total);
  for (gsize i = 0; i < (gsize)n_elements; i++)
    xs[i] = x[i] * s;
  slim_linalg_ssyrk_t (n_in, n_rows, 1.0f, xs, n_in, self->n_samples == 0 ? 0.0f : beta, self->data,
                       n_in);
  g_free (xs);
  slim_gptq_mirror_upper (self->data, n_in);
  self->n_samples = n_total;
  return TRUE;
}

/**
 * slim_gptq_hessian_add_batch_ref:
 * @h: (array) (inout): (n_in, n_in) row-major float64 Hessian
 * @n_in: its order
 * @n_samples: (inout): rows accumulated so far
 * @x: (array): (n_rows, n_in) row-major batch
 * @n_rows: rows
 *
 * Plain-loop float64 twin of slim_gptq_hessian_add_batch().
 */
void
slim_gptq_hessian_add_batch_ref (
    double *h, gint64 n_in, gint64 *n_samples, const float *x, gint64 n_rows)
{
  gint64 n_total;
  double ratio, factor;

  g_return_if_fail (h != NULL && n_samples != NULL && n_in >= 1 && n_rows >= 0);
  if (n_rows == 0)
    return;
  n_total = *n_samples + n_rows;
  ratio = (double)*n_samples / (double)n_total;
  factor = 2.0 / (double)n_total;
  for (gint64 i = 0; i < n_in; i++)
    for (gint64 j = 0; j < n_in; j++)
      {
        double sum = 0.0;

        for (gint64 t = 0; t < n_rows; t++)
          sum += (double)x[t * n_in + i] * (double)x[t * n_in + j];
        h[i * n_in + j] = h[i * n_in + j] * ratio + factor * sum;
      }
  *n_samples = n_total;
}

/* ------------------------------------------------------------------------ */
/* Config                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * slim_gptq_config_init:
 * @cfg: (out caller-allocates): the config to fill
 * @qparams: bits and symmetry
 * @scope: per_channel or per_group
 *
 * msModelSlim's defaults: percdamp 0.01, block_size 128, group_size 128;
 * act_order off.
 */
void
slim_gptq_config_init (SlimGptqConfig *cfg, const SlimQParamsConfig *qparams, SlimQScope scope)
{
  g_return_if_fail (cfg != NULL && qparams != NULL);
  cfg->qparams = *qparams;
  cfg->scope = scope;
  cfg->group_size = SLIM_GPTQ_GROUP_SIZE_DEFAULT;
  cfg->block_size = SLIM_GPTQ_BLOCK_SIZE_DEFAULT;
  cfg->percdamp = SLIM_GPTQ_PERCDAMP_DEFAULT;
  cfg->act_order = FALSE;
}

/**
 * slim_gptq_get_n_params:
 * @cfg: a config
 * @n_out: output channels
 * @n_in: input channels
 * @out_n_params: (out): number of (scale, offset) pairs
 * @error: return location for a #GError
 *
 * Returns: %TRUE when @cfg is usable for an (n_out, n_in) weight
 */
gboolean
slim_gptq_get_n_params (
    const SlimGptqConfig *cfg, gint64 n_out, gint64 n_in, gint64 *out_n_params, GError **error)
{
  g_return_val_if_fail (cfg != NULL && out_n_params != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (cfg->scope != SLIM_QSCOPE_PER_CHANNEL && cfg->scope != SLIM_QSCOPE_PER_GROUP)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "gptq supports scope per_channel and per_group, not %s",
                   slim_qscope_get_nick (cfg->scope));
      return FALSE;
    }
  if (cfg->qparams.bits != 8 && cfg->qparams.bits != 4)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "gptq supports int8 and int4, not %u bits", cfg->qparams.bits);
      return FALSE;
    }
  if (cfg->qparams.max_bound != 0)
    {
      g_set_error_literal (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                           "gptq does not take ext.max_bound");
      return FALSE;
    }
  if (!(cfg->percdamp > 0.0) || !isfinite (cfg->percdamp))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "ext.percdamp = %g must be a finite number > 0", cfg->percdamp);
      return FALSE;
    }
  if (cfg->block_size < 1)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "ext.block_size = %" G_GINT64_FORMAT " must be an integer > 0", cfg->block_size);
      return FALSE;
    }
  if (n_in > SLIM_LINALG_MAX_DIM || n_out > SLIM_LINALG_MAX_DIM)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "gptq: weight (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ") is too large", n_out,
                   n_in);
      return FALSE;
    }
  return slim_qparams_weight_n_params (cfg->scope, n_out, n_in, cfg->group_size, out_n_params,
                                       error);
}

/* Checks shared by the two paths. */
static gboolean
slim_gptq_check_inputs (const SlimGptqConfig *cfg,
                        gint64 hessian_n_in,
                        gint64 n_samples,
                        const float *w,
                        gint64 n_out,
                        gint64 n_in,
                        GError **error)
{
  gint64 n_params, bad;

  if (!slim_gptq_get_n_params (cfg, n_out, n_in, &n_params, error))
    return FALSE;
  if (n_samples <= 0)
    {
      g_set_error_literal (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                           "gptq: no calibration data reached this linear (the Hessian has 0 "
                           "samples); msModelSlim stops with \"No hessian was set\" here too");
      return FALSE;
    }
  if (hessian_n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "gptq: Hessian of order %" G_GINT64_FORMAT " for a weight with %" G_GINT64_FORMAT
                   " input channels",
                   hessian_n_in, n_in);
      return FALSE;
    }
  bad = slim_gptq_find_non_finite (w, n_out * n_in);
  if (bad >= 0)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "gptq: weight element (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ") is %g",
                   bad / n_in, bad % n_in, (double)w[bad]);
      return FALSE;
    }
  return TRUE;
}

static void
slim_gptq_set_not_pd (
    GError **error, const char *step, gint64 minor, gint64 n_in, gint64 n_samples, double percdamp)
{
  g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE,
               "gptq: %s failed: the leading minor of order %" G_GINT64_FORMAT
               " is not positive definite (Hessian of order %" G_GINT64_FORMAT
               " from %" G_GINT64_FORMAT " calibration rows, percdamp %g). Too few or degenerate "
               "calibration tokens for this width, or percdamp too small: raise ext.percdamp or "
               "calibrate on more tokens. msModelSlim has no fallback here either "
               "(torch.linalg.cholesky raises and the quantization stops)",
               step, minor, n_in, n_samples, percdamp);
}

/* Descending diag order, ties by index (a stable order). */
typedef struct
{
  double key;
  gint64 index;
} SlimGptqOrder;

static int
slim_gptq_order_cmp (const void *pa, const void *pb)
{
  const SlimGptqOrder *a = pa, *b = pb;

  if (a->key != b->key)
    return a->key > b->key ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

/* perm[k] = original column processed k-th. */
static void
slim_gptq_order_columns (const double *diag, gint64 n_in, gint64 *perm)
{
  SlimGptqOrder *order = g_new (SlimGptqOrder, n_in);

  for (gint64 j = 0; j < n_in; j++)
    {
      order[j].key = diag[j];
      order[j].index = j;
    }
  qsort (order, (gsize)n_in, sizeof *order, slim_gptq_order_cmp);
  for (gint64 k = 0; k < n_in; k++)
    perm[k] = order[k].index;
  g_free (order);
}

/* Column j's min/max per output channel over rows [first, first + n) of a
 * transposed weight wt (n_in, n_out); rows of wt are columns of W. */
static void
slim_gptq_group_minmax (
    const float *wt, gint64 n_out, gint64 first, gint64 n, float *out_min, float *out_max)
{
  for (gint64 r = 0; r < n_out; r++)
    {
      out_min[r] = INFINITY;
      out_max[r] = -INFINITY;
    }
  for (gint64 k = first; k < first + n; k++)
    {
      const float *row = wt + k * n_out;

      for (gint64 r = 0; r < n_out; r++)
        {
          out_min[r] = (row[r] < out_min[r]) ? row[r] : out_min[r];
          out_max[r] = (row[r] > out_max[r]) ? row[r] : out_max[r];
        }
    }
}

/* ------------------------------------------------------------------------ */
/* float32 path                                                             */
/* ------------------------------------------------------------------------ */

/* torch.mean of a float32 vector: a float32 sum, then a division by the
 * count (the sum is taken in float64 and rounded once). */
static float
slim_gptq_mean_diag (const float *h, gint64 n_in)
{
  double sum = 0.0;

  for (gint64 j = 0; j < n_in; j++)
    sum += (double)h[j * n_in + j];
  return (float)sum / (float)n_in;
}

/**
 * slim_gptq_factor_init:
 * (see slim-gptq.h)
 */
gboolean
slim_gptq_factor_init (SlimGptqFactor *self,
                       const SlimGptqHessian *hessian,
                       double percdamp,
                       gboolean act_order,
                       GError **error)
{
  gint64 n_in, info;
  float *u;
  float damp;

  g_return_val_if_fail (self != NULL && hessian != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  memset (self, 0, sizeof *self);
  n_in = hessian->n_in;
  if (!(percdamp > 0.0) || !isfinite (percdamp))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "ext.percdamp = %g must be a finite number > 0", percdamp);
      return FALSE;
    }
  if (hessian->n_samples <= 0)
    {
      g_set_error_literal (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                           "gptq: no calibration data reached this linear (the Hessian has 0 "
                           "samples); msModelSlim stops with \"No hessian was set\" here too");
      return FALSE;
    }
  if (hessian->data == NULL || n_in < 1
      || slim_gptq_find_non_finite (hessian->data, n_in * n_in) >= 0)
    {
      g_set_error_literal (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                           "gptq: the Hessian is missing or holds a non-finite value");
      return FALSE;
    }
  u = g_try_malloc ((gsize)n_in * (gsize)n_in * sizeof (float));
  if (u == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "gptq: cannot allocate the %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " inverse Hessian factor",
                   n_in, n_in);
      return FALSE;
    }
  self->n_in = n_in;
  self->n_samples = hessian->n_samples;
  self->percdamp = percdamp;
  self->act_order = act_order;
  self->u = u;
  self->dead = g_new0 (gboolean, n_in);
  memcpy (u, hessian->data, (gsize)n_in * (gsize)n_in * sizeof (float));

  /* dead inputs: H[j][j] := 1 (their weight columns are zeroed later) */
  for (gint64 j = 0; j < n_in; j++)
    if (u[j * n_in + j] == 0.0f)
      {
        self->dead[j] = TRUE;
        u[j * n_in + j] = 1.0f;
      }
  if (act_order)
    {
      /* the order of the undamped diagonal (GPTQ's), so that damping cannot
       * round distinct values into ties */
      double *diag = g_new (double, n_in);

      self->perm = g_new (gint64, n_in);
      for (gint64 j = 0; j < n_in; j++)
        diag[j] = (double)u[j * n_in + j];
      slim_gptq_order_columns (diag, n_in, self->perm);
      g_free (diag);
    }
  damp = (float)percdamp * slim_gptq_mean_diag (u, n_in);
  for (gint64 j = 0; j < n_in; j++)
    u[j * n_in + j] += damp;

  if (act_order)
    {
      float *tmp = g_try_malloc ((gsize)n_in * (gsize)n_in * sizeof (float));

      if (tmp == NULL)
        {
          g_set_error_literal (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                               "gptq: cannot allocate the act_order permutation buffer");
          goto fail;
        }
      for (gint64 a = 0; a < n_in; a++)
        for (gint64 b = 0; b < n_in; b++)
          tmp[a * n_in + b] = u[self->perm[a] * n_in + self->perm[b]];
      g_free (u);
      self->u = u = tmp;
    }

  /* torch.linalg.cholesky (lower, column-major = our upper) */
  info = slim_linalg_spotrf (SLIM_LINALG_UPPER, n_in, u, n_in);
  if (info != 0)
    {
      slim_gptq_set_not_pd (error, "the Cholesky factorisation of H + damp I", info, n_in,
                            hessian->n_samples, percdamp);
      goto fail;
    }
  /* torch.cholesky_inverse, then its symmetric fill */
  info = slim_linalg_spotri (SLIM_LINALG_UPPER, n_in, u, n_in);
  if (info != 0)
    {
      slim_gptq_set_not_pd (error, "the inversion of the Cholesky factor of H + damp I", info, n_in,
                            hessian->n_samples, percdamp);
      goto fail;
    }
  slim_gptq_mirror_upper (u, n_in);
  /* torch.linalg.cholesky (upper=True): column-major 'U' = our lower
   * triangle, which then holds Uᵀ; move U to the upper triangle */
  info = slim_linalg_spotrf (SLIM_LINALG_LOWER, n_in, u, n_in);
  if (info != 0)
    {
      slim_gptq_set_not_pd (error, "the upper Cholesky factorisation of (H + damp I)^-1", info,
                            n_in, hessian->n_samples, percdamp);
      goto fail;
    }
  for (gint64 i = 0; i < n_in; i++)
    for (gint64 j = i + 1; j < n_in; j++)
      u[i * n_in + j] = u[j * n_in + i];
  if (slim_gptq_find_non_finite (u, n_in * n_in) >= 0)
    {
      g_set_error (
          error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE,
          "gptq: the inverse Hessian factor is not finite (Hessian of order %" G_GINT64_FORMAT
          " from %" G_GINT64_FORMAT " rows, percdamp %g): raise ext.percdamp",
          n_in, hessian->n_samples, percdamp);
      goto fail;
    }
  return TRUE;

fail:
  slim_gptq_factor_clear (self);
  return FALSE;
}

/**
 * slim_gptq_factor_clear:
 * @self: a factor (may be zero-filled or already cleared)
 */
void
slim_gptq_factor_clear (SlimGptqFactor *self)
{
  g_return_if_fail (self != NULL);
  g_clear_pointer (&self->u, g_free);
  g_clear_pointer (&self->perm, g_free);
  g_clear_pointer (&self->dead, g_free);
  self->n_in = 0;
  self->n_samples = 0;
}

/**
 * slim_gptq_quantize_factored:
 * (see slim-gptq.h)
 */
gboolean
slim_gptq_quantize_factored (const SlimGptqConfig *cfg,
                             const SlimGptqFactor *factor,
                             const float *w,
                             gint64 n_out,
                             gint64 n_in,
                             float *out_scale,
                             float *out_offset,
                             gint8 *q,
                             float *out_dequant,
                             GError **error)
{
  const gboolean per_group = cfg != NULL && cfg->scope == SLIM_QSCOPE_PER_GROUP;
  const gint64 gs = per_group ? cfg->group_size : n_in;
  const float *u;     /* (n_in, n_in): U of H⁻¹ in the upper triangle */
  const gint64 *perm; /* (n_in): processing order -> original column, or NULL */
  gint64 n_groups;
  gboolean static_groups;
  gboolean ok = FALSE;
  float *wt = NULL;   /* (n_in, n_out): working weight, transposed, in processing order */
  float *wb = NULL;   /* (block, n_out): the current block being updated */
  float *err = NULL;  /* (block, n_out): scaled errors of the current block */
  gint8 *qt = NULL;   /* (n_in, n_out): codes, transposed, original order */
  float *dqt = NULL;  /* (n_in, n_out): dequantized, transposed, original order */
  float *gmin = NULL; /* (n_out) */
  float *gmax = NULL; /* (n_out) */
  float *cs = NULL;   /* (n_groups, n_out): static group scales, or (1, n_out) current */
  float *co = NULL;   /* (n_groups, n_out): offsets to match */

  g_return_val_if_fail (cfg != NULL && factor != NULL && w != NULL, FALSE);
  g_return_val_if_fail (out_scale != NULL && out_offset != NULL && q != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!slim_gptq_check_inputs (cfg, factor->n_in, factor->n_samples, w, n_out, n_in, error))
    return FALSE;
  if (factor->u == NULL || factor->percdamp != cfg->percdamp
      || !factor->act_order != !cfg->act_order)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "gptq: the inverse Hessian factor was made with percdamp %g, act_order %d; "
                   "the config asks percdamp %g, act_order %d",
                   factor->percdamp, (int)factor->act_order, cfg->percdamp, (int)cfg->act_order);
      return FALSE;
    }
  u = factor->u;
  perm = factor->perm;
  n_groups = n_in / gs;
  static_groups = per_group && cfg->act_order;

  wt = g_try_malloc ((gsize)n_in * (gsize)n_out * sizeof (float));
  qt = g_try_malloc ((gsize)n_in * (gsize)n_out);
  dqt = g_try_malloc ((gsize)n_in * (gsize)n_out * sizeof (float));
  if (wt == NULL || qt == NULL || dqt == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "gptq: cannot allocate the work buffers of a (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ") weight",
                   n_out, n_in);
      goto out;
    }
  wb = g_new (float, MIN (cfg->block_size, n_in) * n_out);
  err = g_new (float, MIN (cfg->block_size, n_in) * n_out);
  gmin = g_new (float, n_out);
  gmax = g_new (float, n_out);
  cs = g_new (float, (static_groups ? n_groups : 1) * n_out);
  co = g_new (float, (static_groups ? n_groups : 1) * n_out);

  /* per_channel: qparams of the original weight rows */
  if (!per_group)
    {
      slim_minmax_rows (w, n_out, n_in, gmin, gmax);
      for (gint64 r = 0; r < n_out; r++)
        slim_qparams_compute (&cfg->qparams, gmin[r], gmax[r], &out_scale[r], &out_offset[r]);
    }

  /* W transposed, dead input columns zeroed */
  for (gint64 r = 0; r < n_out; r++)
    for (gint64 k = 0; k < n_in; k++)
      wt[k * n_out + r] = factor->dead[k] ? 0.0f : w[r * n_in + k];

  if (static_groups)
    for (gint64 g = 0; g < n_groups; g++)
      {
        slim_gptq_group_minmax (wt, n_out, g * gs, gs, gmin, gmax);
        for (gint64 r = 0; r < n_out; r++)
          {
            slim_qparams_compute (&cfg->qparams, gmin[r], gmax[r], &cs[g * n_out + r],
                                  &co[g * n_out + r]);
            out_scale[r * n_groups + g] = cs[g * n_out + r];
            out_offset[r * n_groups + g] = co[g * n_out + r];
          }
      }

  if (perm != NULL)
    {
      /* dqt is free until the loop: permute through it */
      memcpy (dqt, wt, (gsize)n_in * (gsize)n_out * sizeof (float));
      for (gint64 a = 0; a < n_in; a++)
        memcpy (wt + a * n_out, dqt + perm[a] * n_out, (gsize)n_out * sizeof (float));
    }

  for (gint64 start = 0; start < n_in; start += cfg->block_size)
    {
      const gint64 end = MIN (start + cfg->block_size, n_in);
      const gint64 count = end - start;

      memcpy (wb, wt + start * n_out, (gsize)count * (gsize)n_out * sizeof (float));
      for (gint64 i = 0; i < count; i++)
        {
          const gint64 j = start + i;                    /* processing position */
          const gint64 col = perm != NULL ? perm[j] : j; /* original column */
          const float *col_scale, *col_offset;
          const float *urow = u + j * n_in;
          float *wcol = wb + i * n_out;
          float *ecol = err + i * n_out;
          float d;

          if (!per_group)
            {
              col_scale = out_scale;
              col_offset = out_offset;
            }
          else if (static_groups)
            {
              col_scale = cs + (col / gs) * n_out;
              col_offset = co + (col / gs) * n_out;
            }
          else
            {
              if (j % gs == 0)
                {
                  /* from the working W, which the current block has not
                   * updated yet (msModelSlim's weight_tensor) */
                  slim_gptq_group_minmax (wt, n_out, j, gs, gmin, gmax);
                  for (gint64 r = 0; r < n_out; r++)
                    {
                      slim_qparams_compute (&cfg->qparams, gmin[r], gmax[r], &cs[r], &co[r]);
                      out_scale[r * n_groups + j / gs] = cs[r];
                      out_offset[r * n_groups + j / gs] = co[r];
                    }
                }
              col_scale = cs;
              col_offset = co;
            }
          slim_quantize_rows (&cfg->qparams, wcol, n_out, 1, col_scale, col_offset, n_out,
                              qt + col * n_out);
          slim_dequantize_rows (qt + col * n_out, n_out, 1, col_scale, col_offset, n_out,
                                dqt + col * n_out);
          d = urow[j];
          for (gint64 r = 0; r < n_out; r++)
            ecol[r] = (wcol[r] - dqt[col * n_out + r]) / d;
          /* the block's later columns: w_k -= e U[j][k], a product then a
           * subtraction (torch's rank-1 matmul, then -=) */
          for (gint64 k = i + 1; k < count; k++)
            {
              const float hk = urow[start + k];
              float *wk = wb + k * n_out;

              for (gint64 r = 0; r < n_out; r++)
                {
                  float delta = ecol[r] * hk;

                  wk[r] = wk[r] - delta;
                }
            }
        }
      /* W[:, end:] -= E U[start:end, end:] */
      if (end < n_in)
        slim_linalg_sgemm (TRUE, FALSE, n_in - end, n_out, count, -1.0f, u + start * n_in + end,
                           n_in, err, n_out, 1.0f, wt + end * n_out, n_out);
    }

  /* back to (n_out, n_in) */
  for (gint64 r = 0; r < n_out; r++)
    for (gint64 k = 0; k < n_in; k++)
      q[r * n_in + k] = qt[k * n_out + r];
  if (out_dequant != NULL)
    for (gint64 r = 0; r < n_out; r++)
      for (gint64 k = 0; k < n_in; k++)
        out_dequant[r * n_in + k] = dqt[k * n_out + r];
  ok = TRUE;

out:
  g_free (wt);
  g_free (wb);
  g_free (err);
  g_free (qt);
  g_free (dqt);
  g_free (gmin);
  g_free (gmax);
  g_free (cs);
  g_free (co);
  return ok;
}

/**
 * slim_gptq_quantize:
 * (see slim-gptq.h)
 */
gboolean
slim_gptq_quantize (const SlimGptqConfig *cfg,
                    const SlimGptqHessian *hessian,
                    const float *w,
                    gint64 n_out,
                    gint64 n_in,
                    float *out_scale,
                    float *out_offset,
                    gint8 *q,
                    float *out_dequant,
                    GError **error)
{
  SlimGptqFactor factor;
  gboolean ok;

  g_return_val_if_fail (cfg != NULL && hessian != NULL && w != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* the cheap checks before the factorisation */
  if (!slim_gptq_check_inputs (cfg, hessian->n_in, hessian->n_samples, w, n_out, n_in, error))
    return FALSE;
  if (!slim_gptq_factor_init (&factor, hessian, cfg->percdamp, cfg->act_order, error))
    return FALSE;
  ok = slim_gptq_quantize_factored (cfg, &factor, w, n_out, n_in, out_scale, out_offset, q,
                                    out_dequant, error);
  slim_gptq_factor_clear (&factor);
  return ok;
}

/* ------------------------------------------------------------------------ */
/* float64 reference                                                        */
/* ------------------------------------------------------------------------ */

/* In-place lower Cholesky factor of a (n, n) row-major (lower triangle
 * read and written); 0 or the order of the first non-positive minor. */
static gint64
slim_gptq_cholesky_ref (double *a, gint64 n)
{
  for (gint64 j = 0; j < n; j++)
    {
      double d = a[j * n + j];

      for (gint64 k = 0; k < j; k++)
        d -= a[j * n + k] * a[j * n + k];
      if (!(d > 0.0))
        return j + 1;
      d = sqrt (d);
      a[j * n + j] = d;
      for (gint64 i = j + 1; i < n; i++)
        {
          double s = a[i * n + j];

          for (gint64 k = 0; k < j; k++)
            s -= a[i * n + k] * a[j * n + k];
          a[i * n + j] = s / d;
        }
    }
  return 0;
}

/* Upper factor U (row-major, upper triangle; Hinv = Uᵀ U) of the inverse
 * of the positive-definite h (n, n); h is overwritten. */
static gint64
slim_gptq_inverse_upper_ref (double *h, gint64 n, double *u, const char **out_step)
{
  double *linv = g_new0 (double, n *n);
  gint64 info;

  *out_step = "the Cholesky factorisation of H + damp I";
  info = slim_gptq_cholesky_ref (h, n);
  if (info != 0)
    {
      g_free (linv);
      return info;
    }
  /* L⁻¹ by forward substitution, column by column */
  for (gint64 j = 0; j < n; j++)
    {
      linv[j * n + j] = 1.0 / h[j * n + j];
      for (gint64 i = j + 1; i < n; i++)
        {
          double s = 0.0;

          for (gint64 k = j; k < i; k++)
            s += h[i * n + k] * linv[k * n + j];
          linv[i * n + j] = -s / h[i * n + i];
        }
    }
  /* H⁻¹ = L⁻ᵀ L⁻¹ into u (full) */
  for (gint64 a = 0; a < n; a++)
    for (gint64 b = a; b < n; b++)
      {
        double s = 0.0;

        for (gint64 k = b; k < n; k++)
          s += linv[k * n + a] * linv[k * n + b];
        u[a * n + b] = s;
        u[b * n + a] = s;
      }
  g_free (linv);
  *out_step = "the upper Cholesky factorisation of (H + damp I)^-1";
  info = slim_gptq_cholesky_ref (u, n);
  if (info != 0)
    return info;
  /* U = L2ᵀ in the upper triangle */
  for (gint64 a = 0; a < n; a++)
    for (gint64 b = a + 1; b < n; b++)
      {
        u[a * n + b] = u[b * n + a];
        u[b * n + a] = 0.0;
      }
  return 0;
}

/* One code and its dequantized value with the reference kernels. */
static double
slim_gptq_quantize_one_ref (const SlimQParamsConfig *qcfg, double x, float s, float o, gint8 *out_q)
{
  float xf = (float)x;

  slim_quantize_rows_ref (qcfg, &xf, 1, 1, &s, &o, 1, out_q);
  return (double)(((float)*out_q - o) * s);
}

/* Group qparams from columns [first, first + n) of W (n_out, n_in). */
static void
slim_gptq_group_qparams_ref (const SlimQParamsConfig *qcfg,
                             const double *w,
                             gint64 n_out,
                             gint64 n_in,
                             gint64 first,
                             gint64 n,
                             float *scale,
                             float *offset)
{
  for (gint64 r = 0; r < n_out; r++)
    {
      float mn = INFINITY, mx = -INFINITY;

      for (gint64 k = first; k < first + n; k++)
        {
          float v = (float)w[r * n_in + k];

          mn = MIN (mn, v);
          mx = MAX (mx, v);
        }
      slim_qparams_compute (qcfg, mn, mx, &scale[r], &offset[r]);
    }
}

/**
 * slim_gptq_quantize_ref:
 * (see slim-gptq.h)
 */
gboolean
slim_gptq_quantize_ref (const SlimGptqConfig *cfg,
                        const double *hessian,
                        gint64 n_samples,
                        const float *w,
                        gint64 n_out,
                        gint64 n_in,
                        float *out_scale,
                        float *out_offset,
                        gint8 *q,
                        float *out_dequant,
                        GError **error)
{
  const gboolean per_group = cfg != NULL && cfg->scope == SLIM_QSCOPE_PER_GROUP;
  const gint64 gs = per_group ? cfg->group_size : n_in;
  const gint64 n = n_in;
  gint64 n_groups;
  gboolean static_groups;
  double *h, *u, *wo, *wb, *err, *dq;
  gint8 *qp;
  float *cs, *co;
  gint64 *perm;
  const char *step = NULL;
  gint64 info;
  double mean = 0.0, damp;

  g_return_val_if_fail (cfg != NULL && hessian != NULL && w != NULL, FALSE);
  g_return_val_if_fail (out_scale != NULL && out_offset != NULL && q != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!slim_gptq_check_inputs (cfg, n_in, n_samples, w, n_out, n_in, error))
    return FALSE;
  for (gint64 i = 0; i < n * n; i++)
    if (!isfinite (hessian[i]))
      {
        g_set_error_literal (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                             "gptq: the Hessian holds a non-finite value");
        return FALSE;
      }
  n_groups = n_in / gs;
  static_groups = per_group && cfg->act_order;

  h = g_new (double, n *n);
  u = g_new0 (double, n *n);
  wo = g_new (double, n_out *n);
  wb = g_new (double, n_out *n);
  err = g_new (double, n_out *n);
  dq = g_new (double, n_out *n);
  qp = g_new (gint8, n_out * n);
  cs = g_new (float, n_groups *n_out);
  co = g_new (float, n_groups *n_out);
  perm = g_new (gint64, n);
  memcpy (h, hessian, (gsize)(n * n) * sizeof (double));
  for (gint64 i = 0; i < n_out * n; i++)
    wo[i] = (double)w[i];

  if (!per_group)
    for (gint64 r = 0; r < n_out; r++)
      {
        float mn = INFINITY, mx = -INFINITY;

        for (gint64 k = 0; k < n; k++)
          {
            mn = MIN (mn, w[r * n + k]);
            mx = MAX (mx, w[r * n + k]);
          }
        slim_qparams_compute (&cfg->qparams, mn, mx, &out_scale[r], &out_offset[r]);
      }

  for (gint64 j = 0; j < n; j++)
    if (h[j * n + j] == 0.0)
      {
        h[j * n + j] = 1.0;
        for (gint64 r = 0; r < n_out; r++)
          wo[r * n + j] = 0.0;
      }
  for (gint64 j = 0; j < n; j++)
    perm[j] = j;
  if (cfg->act_order)
    {
      double *diag = g_new (double, n);

      for (gint64 j = 0; j < n; j++)
        diag[j] = h[j * n + j];
      slim_gptq_order_columns (diag, n, perm);
      g_free (diag);
    }
  for (gint64 j = 0; j < n; j++)
    mean += h[j * n + j];
  mean /= (double)n;
  damp = cfg->percdamp * mean;
  for (gint64 j = 0; j < n; j++)
    h[j * n + j] += damp;

  if (static_groups)
    for (gint64 g = 0; g < n_groups; g++)
      {
        float *s = g_new (float, n_out), *o = g_new (float, n_out);

        slim_gptq_group_qparams_ref (&cfg->qparams, wo, n_out, n, g * gs, gs, s, o);
        for (gint64 r = 0; r < n_out; r++)
          {
            cs[g * n_out + r] = s[r];
            co[g * n_out + r] = o[r];
            out_scale[r * n_groups + g] = s[r];
            out_offset[r * n_groups + g] = o[r];
          }
        g_free (s);
        g_free (o);
      }

  if (cfg->act_order)
    {
      const gint64 n_tmp = n * MAX (n, n_out);
      double *tmp = g_new (double, n_tmp);

      for (gint64 a = 0; a < n; a++)
        for (gint64 b = 0; b < n; b++)
          tmp[a * n + b] = h[perm[a] * n + perm[b]];
      memcpy (h, tmp, (gsize)(n * n) * sizeof (double));
      for (gint64 r = 0; r < n_out; r++)
        for (gint64 k = 0; k < n; k++)
          tmp[r * n + k] = wo[r * n + perm[k]];
      memcpy (wo, tmp, (gsize)(n_out * n) * sizeof (double));
      g_free (tmp);
    }

  info = slim_gptq_inverse_upper_ref (h, n, u, &step);
  if (info != 0)
    {
      slim_gptq_set_not_pd (error, step, info, n_in, n_samples, cfg->percdamp);
      goto fail;
    }

  for (gint64 start = 0; start < n; start += cfg->block_size)
    {
      const gint64 end = MIN (start + cfg->block_size, n);

      for (gint64 r = 0; r < n_out; r++)
        for (gint64 c = start; c < end; c++)
          wb[r * n + c] = wo[r * n + c];
      for (gint64 j = start; j < end; j++)
        {
          const gint64 col = perm[j];
          float *sc, *oc;
          float dyn_s[1], dyn_o[1];

          if (per_group && !static_groups && j % gs == 0)
            {
              float *s = g_new (float, n_out), *o = g_new (float, n_out);

              /* the outer W: no compensation from this block yet */
              slim_gptq_group_qparams_ref (&cfg->qparams, wo, n_out, n, j, gs, s, o);
              for (gint64 r = 0; r < n_out; r++)
                {
                  cs[(j / gs) * n_out + r] = s[r];
                  co[(j / gs) * n_out + r] = o[r];
                  out_scale[r * n_groups + j / gs] = s[r];
                  out_offset[r * n_groups + j / gs] = o[r];
                }
              g_free (s);
              g_free (o);
            }
          for (gint64 r = 0; r < n_out; r++)
            {
              gint64 g = static_groups ? col / gs : j / gs;

              if (per_group)
                {
                  sc = &cs[g * n_out + r];
                  oc = &co[g * n_out + r];
                }
              else
                {
                  dyn_s[0] = out_scale[r];
                  dyn_o[0] = out_offset[r];
                  sc = dyn_s;
                  oc = dyn_o;
                }
              dq[r * n + j] = slim_gptq_quantize_one_ref (&cfg->qparams, wb[r * n + j], *sc, *oc,
                                                          &qp[r * n + j]);
              err[r * n + j] = (wb[r * n + j] - dq[r * n + j]) / u[j * n + j];
              for (gint64 k = j + 1; k < end; k++)
                wb[r * n + k] -= err[r * n + j] * u[j * n + k];
            }
        }
      for (gint64 r = 0; r < n_out; r++)
        {
          for (gint64 c = start; c < end; c++)
            wo[r * n + c] = dq[r * n + c];
          for (gint64 c = end; c < n; c++)
            {
              double s = 0.0;

              for (gint64 j = start; j < end; j++)
                s += err[r * n + j] * u[j * n + c];
              wo[r * n + c] -= s;
            }
        }
    }

  for (gint64 r = 0; r < n_out; r++)
    for (gint64 k = 0; k < n; k++)
      {
        q[r * n + perm[k]] = qp[r * n + k];
        if (out_dequant != NULL)
          out_dequant[r * n + perm[k]] = (float)dq[r * n + k];
      }
  g_free (h);
  g_free (u);
  g_free (wo);
  g_free (wb);
  g_free (err);
  g_free (dq);
  g_free (qp);
  g_free (cs);
  g_free (co);
  g_free (perm);
  return TRUE;

fail:
  g_free (h);
  g_free (u);
  g_free (wo);
  g_free (wb);
  g_free (err);
  g_free (dq);
  g_free (qp);
  g_free (cs);
  g_free (co);
  g_free (perm);
  return FALSE;
}
