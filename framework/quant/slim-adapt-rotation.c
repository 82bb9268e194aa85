/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-adapt-rotation.c: adapt_rotation's rotation learning
 * (slim-adapt-rotation.h).
 */
#include "slim-adapt-rotation.h"

#include <math.h>
#include <string.h>

#include "slim-linalg.h"
#include "slim-qparams.h"

void
slim_adapt_rotation_config_init (SlimAdaptRotationConfig *cfg, guint bits, guint steps)
{
  cfg->bits = bits;
  cfg->steps = steps;
  cfg->patience = 5;
  cfg->min_steps = 6;
}

static float
frobenius (const float *x, gint64 n)
{
  double s = 0.0;

  for (gint64 i = 0; i < n; i++)
    s += (double)x[i] * x[i];
  return (float)sqrt (s);
}

void
slim_newton_schulz_polar (const float *c, gint64 d, guint iters, float *out)
{
  const gsize bytes = (gsize)(d * d) * sizeof (float);
  g_autofree float *xtx = g_malloc (bytes); /* (d, d) */
  g_autofree float *nxt = g_malloc (bytes); /* (d, d) */
  const float inv = 1.0f / (frobenius (c, d * d) + 1e-12f);

  for (gint64 i = 0; i < d * d; i++)
    out[i] = c[i] * inv;
  for (guint it = 0; it < iters; it++)
    {
      /* xtx = 3I - X^T X; X <- 0.5 X xtx */
      slim_linalg_sgemm (TRUE, FALSE, d, d, d, -1.0f, out, d, out, d, 0.0f, xtx, d);
      for (gint64 i = 0; i < d; i++)
        xtx[i * d + i] += 3.0f;
      slim_linalg_sgemm (FALSE, FALSE, d, d, d, 0.5f, out, d, xtx, d, 0.0f, nxt, d);
      memcpy (out, nxt, bytes);
    }
}

void
slim_newton_schulz_polar_ref (const float *c, gint64 d, guint iters, float *out)
{
  const gsize bytes = (gsize)(d * d) * sizeof (float);
  g_autofree float *m = g_malloc (bytes);   /* (d, d) 3I - X^T X */
  g_autofree float *nxt = g_malloc (bytes); /* (d, d) */
  double norm = 0.0;

  for (gint64 i = 0; i < d * d; i++)
    norm += (double)c[i] * c[i];
  norm = sqrt (norm) + 1e-12;
  for (gint64 i = 0; i < d * d; i++)
    out[i] = (float)(c[i] / norm);
  for (guint it = 0; it < iters; it++)
    {
      for (gint64 i = 0; i < d; i++)
        for (gint64 j = 0; j < d; j++)
          {
            double s = 0.0;
            for (gint64 k = 0; k < d; k++)
              s += (double)out[k * d + i] * out[k * d + j];
            m[i * d + j] = (float)((i == j ? 3.0 : 0.0) - s);
          }
      for (gint64 i = 0; i < d; i++)
        for (gint64 j = 0; j < d; j++)
          {
            double s = 0.0;
            for (gint64 k = 0; k < d; k++)
              s += (double)out[i * d + k] * m[k * d + j];
            nxt[i * d + j] = (float)(0.5 * s);
          }
      memcpy (out, nxt, bytes);
    }
}

void
slim_adapt_rotation_qdq_rows (guint bits, const float *x, gint64 n, gint64 d, float *out)
{
  const float qmax = (float)((1 << (bits - 1)) - 1);
  const float qmin = -(float)(1 << (bits - 1));

  for (gint64 r = 0; r < n; r++)
    {
      const float *row = x + r * d; /* (d) */
      float *o = out + r * d;       /* (d) */
      float lo = 0.0f, hi = 0.0f, scale;

      for (gint64 j = 0; j < d; j++)
        {
          lo = MIN (lo, row[j]);
          hi = MAX (hi, row[j]);
        }
      /* msModelSlim's symmetric qparam (slim-qparams.h), then its
       * q_scale_thresh clamp */
      scale = MAX (-lo, hi) / qmax;
      scale = MAX (scale, SLIM_ADAPT_ROTATION_SCALE_MIN);
      for (gint64 j = 0; j < d; j++)
        {
          float q = slim_round_half_even (row[j] / scale);
          q = CLAMP (q, qmin, qmax);
          o[j] = q * scale;
        }
    }
}

double
slim_orthogonality_error (const float *r, gint64 d)
{
  double worst = 0.0;

  for (gint64 i = 0; i < d; i++)
    for (gint64 j = 0; j < d; j++)
      {
        double s = 0.0;
        for (gint64 k = 0; k < d; k++)
          s += (double)r[k * d + i] * r[k * d + j];
        worst = MAX (worst, fabs (s - (i == j ? 1.0 : 0.0)));
      }
  return worst;
}

void
slim_adapt_rotation_sample_rows (gint64 total, gint64 max, gint64 *out)
{
  const float start = 0.0f, end = (float)(total - 1);
  const float step = max > 1 ? (end - start) / (float)(max - 1) : 0.0f;
  const gint64 half = max / 2;

  /* torch's CPU linspace fills the first half from start, the second
   * from end */
  for (gint64 i = 0; i < max; i++)
    {
      float v = i < half ? start + step * (float)i : end - step * (float)(max - 1 - i);
      out[i] = (gint64)v;
    }
}

static double
loss_of (const float *p, const float *q, gint64 n)
{
  double s = 0.0;

  for (gint64 i = 0; i < n; i++)
    s += ((double)p[i] - q[i]) * ((double)p[i] - q[i]);
  return sqrt (s) / (double)n;
}

void
slim_adapt_rotation_optimize (const SlimAdaptRotationConfig *cfg,
                              const float *acts,
                              gint64 n,
                              gint64 d,
                              const float *h,
                              float *out,
                              guint *out_steps,
                              double *out_loss)
{
  const gsize dd = (gsize)(d * d) * sizeof (float);
  const gsize nd = (gsize)(n * d) * sizeof (float);
  g_autofree float *t = g_malloc (nd);      /* (n, d) A H */
  g_autofree float *p = g_malloc (nd);      /* (n, d) T R_acc */
  g_autofree float *b = g_malloc (nd);      /* (n, d) qdq(P) */
  g_autofree float *r_acc = g_malloc (dd);  /* (d, d) */
  g_autofree float *best = g_malloc (dd);   /* (d, d) */
  g_autofree float *c = g_malloc (dd);      /* (d, d) P^T B */
  g_autofree float *r_step = g_malloc (dd); /* (d, d) */
  g_autofree float *tmp = g_malloc (dd);    /* (d, d) */
  double best_loss = INFINITY;
  guint no_improve = 0, s;

  memset (r_acc, 0, dd);
  for (gint64 i = 0; i < d; i++)
    r_acc[i * d + i] = 1.0f;
  memcpy (best, r_acc, dd);
  /* msModelSlim computes (acts @ H) @ R_acc; A H is the same every step */
  slim_linalg_sgemm (FALSE, FALSE, n, d, d, 1.0f, acts, d, h, d, 0.0f, t, d);
  for (s = 0; s < cfg->steps; s++)
    {
      double loss;

      slim_linalg_sgemm (FALSE, FALSE, n, d, d, 1.0f, t, d, r_acc, d, 0.0f, p, d);
      slim_adapt_rotation_qdq_rows (cfg->bits, p, n, d, b);
      slim_linalg_sgemm (TRUE, FALSE, d, d, n, 1.0f, p, d, b, d, 0.0f, c, d);
      slim_newton_schulz_polar (c, d, SLIM_ADAPT_ROTATION_NS_ITERS, r_step);
      slim_linalg_sgemm (FALSE, FALSE, d, d, d, 1.0f, r_acc, d, r_step, d, 0.0f, tmp, d);
      memcpy (r_acc, tmp, dd);
      /* P R_step (into t's twin b), then its error */
      slim_linalg_sgemm (FALSE, FALSE, n, d, d, 1.0f, p, d, r_step, d, 0.0f, b, d);
      slim_adapt_rotation_qdq_rows (cfg->bits, b, n, d, p);
      loss = loss_of (b, p, n * d);
      if (loss < best_loss)
        {
          best_loss = loss;
          memcpy (best, r_acc, dd);
          no_improve = 0;
        }
      else
        {
          no_improve++;
          if (s >= cfg->min_steps && no_improve >= cfg->patience)
            {
              s++;
              break;
            }
        }
    }
  slim_linalg_sgemm (FALSE, FALSE, d, d, d, 1.0f, h, d, best, d, 0.0f, out, d);
  if (out_steps != NULL)
    *out_steps = s;
  if (out_loss != NULL)
    *out_loss = best_loss;
}
