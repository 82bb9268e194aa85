/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-admm.c: float_sparse numerics, ADMM pruning and precision
 * protection (see slim-admm.h for the algorithm and where it follows
 * msModelSlim's admm.py operation by operation).
 *
 * Layout: msModelSlim works on Wn = (W D)ᵀ, (n_in, n_out).  Here every
 * (n_out, n_in) buffer is its transpose T = W D, so Hinv Wn becomes
 * T Hinvᵀ (one sgemm with B transposed) and the "flatten" order of Wn
 * (the tie order of the pruning mask) is column-major in T.
 */
#include "slim-admm.h"

#include "slim-error.h"
#include "slim-linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- statistics -------------------------------------------------------- */

gboolean
slim_admm_stats_init (SlimAdmmStats *self, gint64 n_in, GError **error)
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
                   "ADMM statistics: bad input width %" G_GINT64_FORMAT, n_in);
      return FALSE;
    }
  self->hessian = g_try_malloc0 ((gsize)n_elements * sizeof (float));
  self->scaler_row = g_try_malloc0 ((gsize)n_in * sizeof (float));
  if (self->hessian == NULL || self->scaler_row == NULL)
    {
      slim_admm_stats_clear (self);
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "ADMM Hessian: cannot allocate %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " floats (%.1f MiB)",
                   n_in, n_in, (double)n_elements * sizeof (float) / (1024.0 * 1024.0));
      return FALSE;
    }
  self->n_in = n_in;
  return TRUE;
}

void
slim_admm_stats_clear (SlimAdmmStats *self)
{
  g_return_if_fail (self != NULL);
  g_clear_pointer (&self->hessian, g_free);
  g_clear_pointer (&self->scaler_row, g_free);
  self->n_in = 0;
  self->n_samples = 0;
  self->n_rows = 0;
}

gboolean
slim_admm_stats_add_batch (SlimAdmmStats *self,
                           const float *x, /* (n_rows, n_in) row-major */
                           gint64 n_rows,
                           GError **error)
{
  const gint64 n_in = self->n_in;
  g_autofree double *sum_sq = NULL; /* (n_in) column sums of squares */
  float decay, inv_n;

  g_return_val_if_fail (self != NULL && self->hessian != NULL, FALSE);
  g_return_val_if_fail (n_rows >= 0 && (x != NULL || n_rows == 0), FALSE);

  if (n_rows == 0)
    return TRUE;
  if (n_rows > SLIM_LINALG_MAX_DIM)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "ADMM statistics: %" G_GINT64_FORMAT " rows in one batch", n_rows);
      return FALSE;
    }
  for (gint64 k = 0; k < n_rows * n_in; k++)
    if (!isfinite (x[k]))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "ADMM statistics: the input has a NaN or infinite value (row %" G_GINT64_FORMAT
                     ")",
                     k / n_in);
        return FALSE;
      }
  /* H += xᵀ x (upper triangle) */
  slim_linalg_ssyrk_t (n_in, n_rows, 1.0f, x, n_in, 1.0f, self->hessian, n_in);

  /* scaler_row *= n / (n + 1); n += 1; scaler_row += ||x_j||² / n */
  sum_sq = g_new0 (double, n_in);
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 j = 0; j < n_in; j++)
      sum_sq[j] += (double)x[r * n_in + j] * (double)x[r * n_in + j];
  decay = (float)((double)self->n_samples / (double)(self->n_samples + 1));
  self->n_samples++;
  self->n_rows += n_rows;
  inv_n = (float)self->n_samples;
  for (gint64 j = 0; j < n_in; j++)
    {
      float norm = (float)sqrt (sum_sq[j]); /* torch.norm (p=2) in float32 */
      self->scaler_row[j] = self->scaler_row[j] * decay + norm * norm / inv_n;
    }
  return TRUE;
}

void
slim_admm_stats_add_batch_ref (double *hessian,    /* (n_in, n_in) row-major */
                               double *scaler_row, /* (n_in) */
                               gint64 n_in,
                               gint64 *n_samples,
                               const float *x, /* (n_rows, n_in) row-major */
                               gint64 n_rows)
{
  if (n_rows == 0)
    return;
  for (gint64 i = 0; i < n_in; i++)
    for (gint64 j = 0; j < n_in; j++)
      {
        double acc = 0.0;
        for (gint64 r = 0; r < n_rows; r++)
          acc += (double)x[r * n_in + i] * (double)x[r * n_in + j];
        hessian[i * n_in + j] += acc;
      }
  for (gint64 j = 0; j < n_in; j++)
    scaler_row[j] *= (double)*n_samples / (double)(*n_samples + 1);
  (*n_samples)++;
  for (gint64 j = 0; j < n_in; j++)
    {
      double acc = 0.0;
      for (gint64 r = 0; r < n_rows; r++)
        acc += (double)x[r * n_in + j] * (double)x[r * n_in + j];
      scaler_row[j] += acc / (double)*n_samples;
    }
}

gint64
slim_admm_n_pruned (gint64 n_elements, double sparse_ratio)
{
  return (gint64)((double)n_elements * sparse_ratio);
}

/* ---- selection --------------------------------------------------------- */

static void
swap_f (float *a, float *b)
{
  float t = *a;
  *a = *b;
  *b = t;
}

/* The k-th smallest (0-based) of a[0..n), reordering a (quickselect with a
 * median-of-three pivot and three-way partition). */
static float
slim_admm_select (float *a, gint64 n, gint64 k)
{
  gint64 lo = 0, hi = n - 1;

  while (lo < hi)
    {
      gint64 mid = lo + (hi - lo) / 2, lt = lo, gt = hi, i = lo;
      float pivot;

      if (a[mid] < a[lo])
        swap_f (&a[mid], &a[lo]);
      if (a[hi] < a[lo])
        swap_f (&a[hi], &a[lo]);
      if (a[hi] < a[mid])
        swap_f (&a[hi], &a[mid]);
      pivot = a[mid];
      /* a[lo..lt) < pivot, a[lt..i) == pivot, a(gt..hi] > pivot */
      while (i <= gt)
        {
          if (a[i] < pivot)
            swap_f (&a[lt++], &a[i++]);
          else if (a[i] > pivot)
            swap_f (&a[i], &a[gt--]);
          else
            i++;
        }
      if (k < lt)
        hi = lt - 1;
      else if (k > gt)
        lo = gt + 1;
      else
        return pivot;
    }
  return a[k];
}

/* mask (n_out, n_in) row-major: 0 on the k smallest |v| of v (n_out, n_in),
 * ties in column-major order (Wn's row-major flatten). scratch: (n). */
static void
slim_admm_topk_mask (
    const float *v, gint64 n_out, gint64 n_in, gint64 k, float *scratch, guint8 *mask)
{
  const gint64 n = n_out * n_in;
  gint64 n_below = 0, n_ties;
  float t;

  if (k <= 0 || k >= n)
    {
      for (gint64 e = 0; e < n; e++)
        mask[e] = k <= 0;
      return;
    }
  for (gint64 e = 0; e < n; e++)
    scratch[e] = fabsf (v[e]);
  t = slim_admm_select (scratch, n, k - 1);
  for (gint64 e = 0; e < n; e++)
    {
      float a = fabsf (v[e]);
      mask[e] = a < t ? 0 : 1;
      n_below += a < t;
    }
  n_ties = k - n_below;
  for (gint64 j = 0; j < n_in && n_ties > 0; j++)
    for (gint64 o = 0; o < n_out && n_ties > 0; o++)
      if (fabsf (v[o * n_in + j]) == t)
        {
          mask[o * n_in + j] = 0;
          n_ties--;
        }
}

/* ---- ADMM -------------------------------------------------------------- */

static gboolean
slim_admm_check_args (gint64 n_samples,
                      gint64 stats_n_in,
                      const float *w,
                      gint64 n_out,
                      gint64 n_in,
                      double sparse_ratio,
                      GError **error)
{
  guint64 n;

  if (n_samples <= 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "no calibration activation reached the linear: its Hessian is empty");
      return FALSE;
    }
  if (!(sparse_ratio >= 0.0 && sparse_ratio <= 1.0))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "sparse_ratio %g is outside 0..1", sparse_ratio);
      return FALSE;
    }
  if (n_out < 1 || n_in < 1 || stats_n_in != n_in || n_out > SLIM_LINALG_MAX_DIM
      || !g_uint64_checked_mul (&n, (guint64)n_out, (guint64)n_in)
      || n > G_MAXSIZE / sizeof (double))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "ADMM: weight %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " does not fit a Hessian of order %" G_GINT64_FORMAT,
                   n_out, n_in, stats_n_in);
      return FALSE;
    }
  for (guint64 e = 0; e < n; e++)
    if (!isfinite (w[e]))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "ADMM: the weight has a NaN or infinite value");
        return FALSE;
      }
  return TRUE;
}

static gboolean
slim_admm_non_finite_hessian (GError **error)
{
  g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
               "ADMM: the Hessian xᵀx is not finite (the calibration activations overflow "
               "float32)");
  return FALSE;
}

gboolean
slim_admm_prune (const SlimAdmmStats *stats,
                 const float *w, /* (n_out, n_in) row-major */
                 gint64 n_out,
                 gint64 n_in,
                 double sparse_ratio,
                 float *out_w,     /* (n_out, n_in) row-major */
                 guint8 *out_mask, /* (n_out, n_in) row-major, nullable */
                 GError **error)
{
  const float *h = NULL;            /* (n_in, n_in) upper triangle */
  g_autofree float *norm = NULL;    /* (n_in) */
  g_autofree float *hn = NULL;      /* (n_in, n_in): D⁻¹HD⁻¹ + rho0 I, then its inverse */
  g_autofree float *t = NULL;       /* (n_out, n_in): Wnᵀ */
  g_autofree float *lam = NULL;     /* (n_out, n_in): Λᵀ */
  g_autofree float *b = NULL;       /* (n_out, n_in): (Hn Wn)ᵀ */
  g_autofree float *r = NULL;       /* (n_out, n_in): Zᵀ, then the right-hand side */
  g_autofree float *scratch = NULL; /* (n_out * n_in) selection */
  g_autofree guint8 *mask = NULL;   /* (n_out, n_in) */
  gint64 n, k, info;
  double diag_sum = 0.0;
  float rho0;

  g_return_val_if_fail (stats != NULL && w != NULL && out_w != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!slim_admm_check_args (stats->n_samples, stats->n_in, w, n_out, n_in, sparse_ratio, error))
    return FALSE;
  h = stats->hessian;
  n = n_out * n_in;
  k = slim_admm_n_pruned (n, sparse_ratio);
  norm = g_try_new (float, n_in);
  hn = g_try_new (float, n_in *n_in);
  t = g_try_new (float, n);
  lam = g_try_new0 (float, n);
  b = g_try_new (float, n);
  r = g_try_new (float, n);
  scratch = g_try_new (float, n);
  mask = g_try_new (guint8, n);
  if (norm == NULL || hn == NULL || t == NULL || lam == NULL || b == NULL || r == NULL
      || scratch == NULL || mask == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "ADMM: cannot allocate the work buffers of a %" G_GINT64_FORMAT
                   " x %" G_GINT64_FORMAT " weight",
                   n_out, n_in);
      return FALSE;
    }

  /* normalization: norm = sqrt (diag H) + 1e-8, Hn_ij = H_ij / norm_j / norm_i */
  for (gint64 j = 0; j < n_in; j++)
    {
      float d = h[j * n_in + j];
      if (!isfinite (d))
        return slim_admm_non_finite_hessian (error);
      norm[j] = sqrtf (d) + 1e-8f;
    }
  for (gint64 i = 0; i < n_in; i++)
    for (gint64 j = 0; j < n_in; j++)
      {
        float v = i <= j ? h[i * n_in + j] : h[j * n_in + i];
        if (!isfinite (v))
          return slim_admm_non_finite_hessian (error);
        hn[i * n_in + j] = v / norm[j] / norm[i];
      }
  for (gint64 o = 0; o < n_out; o++)
    for (gint64 j = 0; j < n_in; j++)
      t[o * n_in + j] = w[o * n_in + j] * norm[j];

  /* damping, B = Hn Wn, then Hn + rho I inverted */
  for (gint64 j = 0; j < n_in; j++)
    diag_sum += hn[j * n_in + j];
  rho0 = (float)SLIM_ADMM_PERCDAMP * (float)(diag_sum / (double)n_in);
  for (gint64 j = 0; j < n_in; j++)
    hn[j * n_in + j] += rho0;
  slim_linalg_sgemm (FALSE, TRUE, n_out, n_in, n_in, 1.0f, t, n_in, hn, n_in, 0.0f, b, n_in);
  for (gint64 j = 0; j < n_in; j++)
    hn[j * n_in + j] += SLIM_ADMM_RHO;
  info = slim_linalg_spotrf (SLIM_LINALG_UPPER, n_in, hn, n_in);
  if (info == 0)
    info = slim_linalg_spotri (SLIM_LINALG_UPPER, n_in, hn, n_in);
  if (info != 0)
    {
      g_set_error (
          error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE,
          "ADMM: the damped normalized Hessian cannot be inverted (LAPACK info %" G_GINT64_FORMAT
          ")",
          info);
      return FALSE;
    }
  for (gint64 i = 0; i < n_in; i++)
    for (gint64 j = 0; j < i; j++)
      hn[i * n_in + j] = hn[j * n_in + i];

  for (gint it = 0; it < SLIM_ADMM_ITERS; it++)
    {
      if (it < SLIM_ADMM_ITERATIVE_PRUNE)
        {
          for (gint64 e = 0; e < n; e++)
            r[e] = t[e] + lam[e];
          slim_admm_topk_mask (r, n_out, n_in, k, scratch, mask);
        }
      for (gint64 e = 0; e < n; e++)
        {
          float z = (t[e] + lam[e]) * (float)mask[e];
          lam[e] = lam[e] + (t[e] - z);
          r[e] = b[e] + SLIM_ADMM_RHO * (z - lam[e]);
        }
      slim_linalg_sgemm (FALSE, TRUE, n_out, n_in, n_in, 1.0f, r, n_in, hn, n_in, 0.0f, t, n_in);
    }
  for (gint64 o = 0; o < n_out; o++)
    for (gint64 j = 0; j < n_in; j++)
      {
        gint64 e = o * n_in + j;
        float z = (t[e] + lam[e]) * (float)mask[e];
        out_w[e] = z / norm[j];
      }
  for (gint64 e = 0; e < n; e++)
    if (!isfinite (out_w[e]))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "ADMM: the pruned weight is not finite");
        return FALSE;
      }
  if (out_mask != NULL)
    memcpy (out_mask, mask, (gsize)n);
  return TRUE;
}

/* ---- ADMM, plain float64 twin ------------------------------------------ */

typedef struct
{
  double value;
  gint64 index; /* in the tie order */
} SlimAdmmRanked;

static int
slim_admm_ranked_cmp (const void *pa, const void *pb)
{
  const SlimAdmmRanked *a = pa, *b = pb;

  if (a->value != b->value)
    return a->value < b->value ? -1 : 1;
  return a->index < b->index ? -1 : (a->index > b->index ? 1 : 0);
}

/* Gauss-Jordan inverse with partial pivoting, in place; FALSE when singular. */
static gboolean
slim_admm_invert_ref (double *a, gint64 n)
{
  g_autofree double *inv = g_new0 (double, n *n); /* (n, n) */

  for (gint64 i = 0; i < n; i++)
    inv[i * n + i] = 1.0;
  for (gint64 c = 0; c < n; c++)
    {
      gint64 p = c;
      double pivot;

      for (gint64 i = c + 1; i < n; i++)
        if (fabs (a[i * n + c]) > fabs (a[p * n + c]))
          p = i;
      if (!(fabs (a[p * n + c]) > 0.0))
        return FALSE;
      if (p != c)
        for (gint64 j = 0; j < n; j++)
          {
            double ta = a[c * n + j], ti = inv[c * n + j];
            a[c * n + j] = a[p * n + j];
            inv[c * n + j] = inv[p * n + j];
            a[p * n + j] = ta;
            inv[p * n + j] = ti;
          }
      pivot = a[c * n + c];
      for (gint64 j = 0; j < n; j++)
        {
          a[c * n + j] /= pivot;
          inv[c * n + j] /= pivot;
        }
      for (gint64 i = 0; i < n; i++)
        {
          double f = a[i * n + c];
          if (i == c || f == 0.0)
            continue;
          for (gint64 j = 0; j < n; j++)
            {
              a[i * n + j] -= f * a[c * n + j];
              inv[i * n + j] -= f * inv[c * n + j];
            }
        }
    }
  memcpy (a, inv, (gsize)(n * n) * sizeof (double));
  return TRUE;
}

gboolean
slim_admm_prune_ref (const double *hessian, /* (n_in, n_in) row-major */
                     gint64 n_samples,
                     const float *w, /* (n_out, n_in) row-major */
                     gint64 n_out,
                     gint64 n_in,
                     double sparse_ratio,
                     float *out_w,     /* (n_out, n_in) row-major */
                     guint8 *out_mask, /* (n_out, n_in) row-major, nullable */
                     GError **error)
{
  g_autofree double *norm = NULL;         /* (n_in) */
  g_autofree double *hn = NULL;           /* (n_in, n_in) */
  g_autofree double *t = NULL;            /* (n_in, n_out): Wn, msModelSlim's layout */
  g_autofree double *lam = NULL;          /* (n_in, n_out) */
  g_autofree double *b = NULL;            /* (n_in, n_out) */
  g_autofree double *rhs = NULL;          /* (n_in, n_out) */
  g_autofree guint8 *mask = NULL;         /* (n_in, n_out) */
  g_autofree SlimAdmmRanked *rank = NULL; /* (n_in * n_out) */
  gint64 n, k;
  double rho0 = 0.0;

  if (!slim_admm_check_args (n_samples, n_in, w, n_out, n_in, sparse_ratio, error))
    return FALSE;
  n = n_out * n_in;
  k = slim_admm_n_pruned (n, sparse_ratio);
  norm = g_new (double, n_in);
  hn = g_new (double, n_in *n_in);
  t = g_new (double, n);
  lam = g_new0 (double, n);
  b = g_new (double, n);
  rhs = g_new (double, n);
  mask = g_new (guint8, n);
  rank = g_new (SlimAdmmRanked, n);

  for (gint64 i = 0; i < n_in * n_in; i++)
    if (!isfinite (hessian[i]))
      return slim_admm_non_finite_hessian (error);
  for (gint64 j = 0; j < n_in; j++)
    norm[j] = sqrt (hessian[j * n_in + j]) + 1e-8;
  for (gint64 i = 0; i < n_in; i++)
    for (gint64 j = 0; j < n_in; j++)
      hn[i * n_in + j] = hessian[i * n_in + j] / norm[j] / norm[i];
  for (gint64 j = 0; j < n_in; j++)
    for (gint64 o = 0; o < n_out; o++)
      t[j * n_out + o] = (double)w[o * n_in + j] * norm[j];
  for (gint64 j = 0; j < n_in; j++)
    rho0 += hn[j * n_in + j];
  rho0 = SLIM_ADMM_PERCDAMP * rho0 / (double)n_in;
  for (gint64 j = 0; j < n_in; j++)
    hn[j * n_in + j] += rho0;
  for (gint64 i = 0; i < n_in; i++)
    for (gint64 o = 0; o < n_out; o++)
      {
        double acc = 0.0;
        for (gint64 j = 0; j < n_in; j++)
          acc += hn[i * n_in + j] * t[j * n_out + o];
        b[i * n_out + o] = acc;
      }
  for (gint64 j = 0; j < n_in; j++)
    hn[j * n_in + j] += SLIM_ADMM_RHO;
  if (!slim_admm_invert_ref (hn, n_in))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NOT_POSITIVE_DEFINITE,
                   "ADMM: the damped normalized Hessian cannot be inverted");
      return FALSE;
    }

  for (gint it = 0; it < SLIM_ADMM_ITERS; it++)
    {
      if (it < SLIM_ADMM_ITERATIVE_PRUNE)
        {
          /* torch.topk (largest=False) over Wn + Λ flattened, ties by index */
          for (gint64 e = 0; e < n; e++)
            {
              rank[e].value = fabs (t[e] + lam[e]);
              rank[e].index = e;
            }
          qsort (rank, (size_t)n, sizeof *rank, slim_admm_ranked_cmp);
          for (gint64 e = 0; e < n; e++)
            mask[e] = 1;
          for (gint64 q = 0; q < k; q++)
            mask[rank[q].index] = 0;
        }
      for (gint64 e = 0; e < n; e++)
        {
          double z = mask[e] ? t[e] + lam[e] : 0.0;
          lam[e] += t[e] - z;
          rhs[e] = b[e] + SLIM_ADMM_RHO * (z - lam[e]);
        }
      for (gint64 i = 0; i < n_in; i++)
        for (gint64 o = 0; o < n_out; o++)
          {
            double acc = 0.0;
            for (gint64 j = 0; j < n_in; j++)
              acc += hn[i * n_in + j] * rhs[j * n_out + o];
            t[i * n_out + o] = acc;
          }
    }
  for (gint64 j = 0; j < n_in; j++)
    for (gint64 o = 0; o < n_out; o++)
      {
        gint64 e = j * n_out + o;
        out_w[o * n_in + j] = mask[e] ? (float)((t[e] + lam[e]) / norm[j]) : 0.0f;
        if (out_mask != NULL)
          out_mask[o * n_in + j] = mask[e];
      }
  for (gint64 e = 0; e < n; e++)
    if (!isfinite (out_w[e]))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "ADMM: the pruned weight is not finite");
        return FALSE;
      }
  return TRUE;
}

/* ---- precision protection ---------------------------------------------- */

guint16
slim_admm_quantize_half (guint16 h, gboolean keep, guint keep_bits)
{
  const guint sign = h & 0x8000u, magnitude = h & 0x7fffu, exponent = magnitude >> 10;
  guint shift, rounded;

  if (magnitude == 0)
    return 0; /* torch: sign (±0) = 0, so zeros come out +0 */
  if (exponent == 0x1fu)
    return h; /* inf, NaN: callers reject them */
  if (exponent == 0)
    return keep ? h : (guint16)sign; /* subnormal: 0 (with the sign) unless kept */
  /* exponents -14 .. keep_bits - 11: 1 or 2 (mantissa > 1.5) times 2^e */
  if ((gint)exponent - 15 < (gint)keep_bits - 10)
    return (guint16)(sign | (((magnitude & 0x3ffu) > 0x200u ? exponent + 1 : exponent) << 10));
  if (keep || keep_bits >= 10)
    return h;
  /* round the mantissa to keep_bits bits, half to even; a carry moves the
   * exponent (to infinity past the half range) */
  shift = 10 - keep_bits;
  rounded = magnitude + (1u << (shift - 1)) - 1u + ((magnitude >> shift) & 1u);
  rounded &= ~((1u << shift) - 1u);
  return (guint16)(sign | rounded);
}

guint16
slim_admm_quantize_half_ref (guint16 h, gboolean keep, guint keep_bits)
{
  float v = slim_f16_to_f32 (h);
  double a = fabs ((double)v), m, q;
  int e;

  if (isnan (v) || isinf (v))
    return h;
  if (v == 0.0f)
    return 0;
  /* split_half: a = m 2^e with m in [1, 2), subnormals at e = -15 */
  m = frexp (a, &e) * 2.0;
  e -= 1;
  if (e < -14)
    q = keep ? a : 0.0;
  else if (e < (int)keep_bits - 10)
    q = ldexp (m > 1.5 ? 2.0 : 1.0, e);
  else if (keep)
    q = a;
  else
    q = ldexp (nearbyint (ldexp (m, (int)keep_bits)), e - (int)keep_bits);
  return slim_f32_to_f16 ((float)copysign (q, (double)v));
}

static float
slim_admm_round_to (float v, SlimDType dtype)
{
  switch (dtype)
    {
    case SLIM_DTYPE_F16:
      return slim_f16_to_f32 (slim_f32_to_f16 (v));
    case SLIM_DTYPE_BF16:
      return slim_bf16_to_f32 (slim_f32_to_bf16 (v));
    default:
      return v;
    }
}

/* The shared part of protect and protect_ref: wd = w cast to dtype, its
 * half bits and the keep metric.  FALSE when a value overflows half. */
static gboolean
slim_admm_protect_prepare (const float *w,
                           const float *scaler_row,
                           gint64 n_out,
                           gint64 n_in,
                           SlimDType dtype,
                           gboolean use_ref,
                           float *wd,     /* (n_out, n_in) */
                           guint16 *half, /* (n_out, n_in) */
                           float *metric, /* (n_out, n_in) */
                           GError **error)
{
  for (gint64 o = 0; o < n_out; o++)
    for (gint64 j = 0; j < n_in; j++)
      {
        gint64 e = o * n_in + j;
        float clip, diff;
        guint16 q;

        wd[e] = slim_admm_round_to (w[e], dtype);
        half[e] = slim_f32_to_f16 (wd[e]);
        if (!isfinite (wd[e]) || (half[e] & 0x7c00u) == 0x7c00u)
          {
            g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                         "precision protection: weight [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                         "] = %g does not fit float16",
                         o, j, (double)wd[e]);
            return FALSE;
          }
        q = use_ref ? slim_admm_quantize_half_ref (half[e], FALSE, SLIM_ADMM_KEEP_BITS)
                    : slim_admm_quantize_half (half[e], FALSE, SLIM_ADMM_KEEP_BITS);
        clip = slim_f16_to_f32 (q);
        diff = wd[e] - clip;
        if (dtype == SLIM_DTYPE_F16)
          diff = slim_admm_round_to (diff, SLIM_DTYPE_F16);
        metric[e] = fabsf (diff) * sqrtf (scaler_row[j]);
      }
  return TRUE;
}

static gboolean
slim_admm_protect_impl (const float *w,
                        const float *scaler_row,
                        gint64 n_out,
                        gint64 n_in,
                        SlimDType dtype,
                        gboolean use_ref,
                        float *out_w,
                        guint8 *out_keep,
                        GError **error)
{
  g_autofree float *wd = NULL;     /* (n_out, n_in) */
  g_autofree guint16 *half = NULL; /* (n_out, n_in) */
  g_autofree float *metric = NULL; /* (n_out, n_in) */
  g_autofree float *sorted = NULL; /* (n_out * n_in) */
  guint64 n64;
  gint64 n, idx;
  float threshold;

  g_return_val_if_fail (w != NULL && scaler_row != NULL && out_w != NULL, FALSE);
  if (dtype != SLIM_DTYPE_F32 && dtype != SLIM_DTYPE_F16 && dtype != SLIM_DTYPE_BF16)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "precision protection: weight dtype %s is not float32, float16 or bfloat16",
                   slim_dtype_get_name (dtype));
      return FALSE;
    }
  if (n_out < 1 || n_in < 1 || !g_uint64_checked_mul (&n64, (guint64)n_out, (guint64)n_in)
      || n64 > G_MAXSIZE / sizeof (float) / 4)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "precision protection: bad weight size %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT,
                   n_out, n_in);
      return FALSE;
    }
  n = (gint64)n64;
  wd = g_try_new (float, n);
  half = g_try_new (guint16, n);
  metric = g_try_new (float, n);
  sorted = g_try_new (float, n);
  if (wd == NULL || half == NULL || metric == NULL || sorted == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "precision protection: cannot allocate the work buffers");
      return FALSE;
    }
  if (!slim_admm_protect_prepare (w, scaler_row, n_out, n_in, dtype, use_ref, wd, half, metric,
                                  error))
    return FALSE;

  /* value2keep = metric sorted descending [int (n * KEEP_PROPORTION - 1)] */
  idx = (gint64)((double)n * SLIM_ADMM_KEEP_PROPORTION - 1.0);
  idx = CLAMP (idx, 0, n - 1);
  memcpy (sorted, metric, (gsize)n * sizeof (float));
  if (use_ref)
    {
      g_autofree SlimAdmmRanked *rank = g_new (SlimAdmmRanked, n);
      for (gint64 e = 0; e < n; e++)
        {
          rank[e].value = -(double)metric[e]; /* descending */
          rank[e].index = e;
        }
      qsort (rank, (size_t)n, sizeof *rank, slim_admm_ranked_cmp);
      threshold = (float)-rank[idx].value;
    }
  else
    threshold = slim_admm_select (sorted, n, n - 1 - idx);

  for (gint64 e = 0; e < n; e++)
    {
      gboolean keep = metric[e] >= threshold;
      guint16 q = use_ref ? slim_admm_quantize_half_ref (half[e], keep, SLIM_ADMM_KEEP_BITS)
                          : slim_admm_quantize_half (half[e], keep, SLIM_ADMM_KEEP_BITS);
      float v = slim_admm_round_to (slim_f16_to_f32 (q), dtype);

      if (!isfinite (v))
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                       "precision protection: weight [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                       "] = %g rounds past the float16 range",
                       e / n_in, e % n_in, (double)wd[e]);
          return FALSE;
        }
      out_w[e] = v;
      if (out_keep != NULL)
        out_keep[e] = keep ? 1 : 0;
    }
  return TRUE;
}

gboolean
slim_admm_protect (const float *w,          /* (n_out, n_in) row-major */
                   const float *scaler_row, /* (n_in) */
                   gint64 n_out,
                   gint64 n_in,
                   SlimDType dtype,
                   float *out_w,     /* (n_out, n_in) row-major */
                   guint8 *out_keep, /* (n_out, n_in) row-major, nullable */
                   GError **error)
{
  return slim_admm_protect_impl (w, scaler_row, n_out, n_in, dtype, FALSE, out_w, out_keep, error);
}

gboolean
slim_admm_protect_ref (const float *w,          /* (n_out, n_in) row-major */
                       const float *scaler_row, /* (n_in) */
                       gint64 n_out,
                       gint64 n_in,
                       SlimDType dtype,
                       float *out_w,     /* (n_out, n_in) row-major */
                       guint8 *out_keep, /* (n_out, n_in) row-major, nullable */
                       GError **error)
{
  return slim_admm_protect_impl (w, scaler_row, n_out, n_in, dtype, TRUE, out_w, out_keep, error);
}
