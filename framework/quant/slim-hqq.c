/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hqq.c: HQQ weight quantization (see slim-hqq.h).
 */
#include "slim-hqq.h"

#include "slim-error.h"

#include <math.h>
#include <string.h>

#define HQQ_MAX_INV_STEP 2e4f

void
slim_hqq_config_init (SlimHqqConfig *cfg, guint bits, gint64 group_size)
{
  g_return_if_fail (cfg != NULL);
  memset (cfg, 0, sizeof *cfg);
  cfg->bits = bits;
  cfg->group_size = group_size;
  cfg->lp_norm = 0.7f;
  cfg->beta = 10.0f;
  cfg->kappa = 1.01f;
  cfg->iters = 20;
}

gboolean
slim_hqq_config_check (const SlimHqqConfig *cfg, gint64 n_cols, GError **error)
{
  g_return_val_if_fail (cfg != NULL, FALSE);
  const char *bad = NULL;
  if (cfg->bits < 2 || cfg->bits > 8)
    bad = "bits must be in 2..8";
  else if (cfg->group_size <= 0 || n_cols % cfg->group_size != 0)
    bad = "group_size must be positive and divide the input dimension";
  else if (!(cfg->lp_norm > 0.0f && cfg->lp_norm <= 1.0f))
    bad = "lp_norm must be in (0, 1]";
  else if (!(cfg->beta > 0.0f))
    bad = "beta must be > 0";
  else if (!(cfg->kappa >= 1.0f))
    bad = "kappa must be >= 1";
  else if (cfg->iters < 1)
    bad = "iters must be >= 1";
  if (bad != NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE, "hqq: %s", bad);
      return FALSE;
    }
  return TRUE;
}

static float
hqq_shrink (float x, float beta, float p)
{
  float a = fabsf (x);
  float t = p == 1.0f ? a - 1.0f / beta : a - powf (a, p - 1.0f) / beta;
  if (!(t > 0.0f)) /* also catches 0^(p-1) = inf */
    return 0.0f;
  return x < 0.0f ? -t : t;
}

static float
hqq_code (float x, float s, float z, float qmax)
{
  return fminf (fmaxf (nearbyintf (x * s + z), 0.0f), qmax);
}

guint
slim_hqq_fake_quantize (const SlimHqqConfig *cfg,
                        const float *w,
                        gint64 n_rows,
                        gint64 n_cols,
                        float *step,
                        float *zero,
                        guint8 *codes,
                        float *out,
                        GError **error)
{
  g_return_val_if_fail (w != NULL && n_rows >= 0, 0);
  if (!slim_hqq_config_check (cfg, n_cols, error))
    return 0;

  const gint64 gs = cfg->group_size, n_groups = n_rows * (n_cols / gs);
  const float qmax = (float)((1u << cfg->bits) - 1u);
  float *s = g_new (float, n_groups); /* [n_groups] inverse steps */
  float *z = g_new (float, n_groups); /* [n_groups] zero points */

  for (gint64 g = 0; g < n_groups; g++)
    {
      const float *src = w + g * gs; /* [gs]: groups are contiguous row-major */
      float lo = src[0], hi = src[0];
      for (gint64 j = 1; j < gs; j++)
        {
          lo = fminf (lo, src[j]);
          hi = fmaxf (hi, src[j]);
        }
      float inv = qmax / (hi - lo); /* inf when hi == lo */
      s[g] = isfinite (inv) ? fminf (inv, HQQ_MAX_INV_STEP) : HQQ_MAX_INV_STEP;
      z[g] = -lo * s[g];
    }

  double best = INFINITY;
  float beta = cfg->beta;
  guint it = 0;
  while (it < cfg->iters && n_groups > 0)
    {
      it++;
      double err = 0.0;
      for (gint64 g = 0; g < n_groups; g++)
        {
          const float *src = w + g * gs; /* [gs] */
          double acc = 0.0;
          for (gint64 j = 0; j < gs; j++)
            {
              float q = hqq_code (src[j], s[g], z[g], qmax);
              float r = (q - z[g]) / s[g];
              float e = hqq_shrink (src[j] - r, beta, cfg->lp_norm);
              acc += q - (src[j] - e) * s[g];
              err += fabsf (src[j] - r);
            }
          z[g] = (float)(acc / (double)gs);
        }
      beta *= cfg->kappa;
      err /= (double)(n_groups * gs);
      if (err < best)
        best = err;
      else
        break;
    }

  for (gint64 g = 0; g < n_groups; g++)
    {
      const float *src = w + g * gs;                  /* [gs] */
      float *dst = out != NULL ? out + g * gs : NULL; /* [gs] */
      float st = 1.0f / s[g];
      for (gint64 j = 0; j < gs; j++)
        {
          float q = hqq_code (src[j], s[g], z[g], qmax);
          if (codes != NULL)
            codes[g * gs + j] = (guint8)q;
          if (dst != NULL)
            dst[j] = (q - z[g]) * st;
        }
      if (step != NULL)
        step[g] = st;
      if (zero != NULL)
        zero[g] = z[g];
    }
  g_free (s);
  g_free (z);
  return it;
}

gboolean
slim_hqq_quantize_signed (const SlimHqqConfig *cfg,
                          const float *w,
                          gint64 n_rows,
                          gint64 n_cols,
                          float *scale,
                          float *offset,
                          gint8 *q,
                          GError **error)
{
  g_return_val_if_fail (w != NULL && scale != NULL && offset != NULL && q != NULL, FALSE);
  if (!slim_hqq_config_check (cfg, n_cols, error))
    return FALSE;

  const gint64 n = n_rows * n_cols, n_groups = n_rows * (n_cols / cfg->group_size);
  const gint half = 1 << (cfg->bits - 1);
  guint8 *codes = g_new (guint8, n); /* [n_rows, n_cols] codes in [0, 2^bits - 1] */
  guint it = slim_hqq_fake_quantize (cfg, w, n_rows, n_cols, scale, offset, codes, NULL, error);

  if (it > 0)
    {
      for (gint64 i = 0; i < n; i++)
        q[i] = (gint8)((gint)codes[i] - half);
      for (gint64 g = 0; g < n_groups; g++)
        offset[g] -= (float)half;
    }
  g_free (codes);
  return it > 0;
}
