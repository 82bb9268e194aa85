/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-autoround.c: AutoRound step numerics (see slim-autoround.h).
 */
#include "slim-autoround.h"

#include <float.h>
#include <math.h>

#include "slim-error.h"

gboolean
slim_autoround_config_check (const SlimAutoRoundConfig *cfg,
                             gint64 n_out,
                             gint64 n_in,
                             GError **error)
{
  if (cfg->bits != 4 && cfg->bits != 8)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "autoround: bits %d is not supported (valid: 4, 8)", cfg->bits);
      return FALSE;
    }
  if (cfg->scale_dtype != SLIM_DTYPE_F32 && cfg->scale_dtype != SLIM_DTYPE_F16
      && cfg->scale_dtype != SLIM_DTYPE_BF16)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "autoround: scale_dtype must be float32, float16 or bfloat16");
      return FALSE;
    }
  if (n_out < 1 || n_in < 1 || n_out > G_MAXINT64 / n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "autoround: bad weight shape (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                   n_out, n_in);
      return FALSE;
    }
  if (cfg->group_size < 1 || n_in % cfg->group_size != 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "autoround: group_size %" G_GINT64_FORMAT
                   " does not divide the input dimension %" G_GINT64_FORMAT,
                   cfg->group_size, n_in);
      return FALSE;
    }
  return TRUE;
}

float
slim_autoround_v_bound (gint bits)
{
  return bits == 4 ? 0.5f : 1.0f;
}

static float
slim_autoround_cast_scale (float s, SlimDType dtype)
{
  switch (dtype)
    {
    case SLIM_DTYPE_F16:
      return slim_f16_to_f32 (slim_f32_to_f16 (s));
    case SLIM_DTYPE_BF16:
      return slim_bf16_to_f32 (slim_f32_to_bf16 (s));
    default:
      return s;
    }
}

/* The per-group scale and which way its gradient flows.  side: +1 the
 * max_scale candidate won, -1 the min_scale one, 0 the 1e-5 floor
 * applied (no gradient). */
typedef struct
{
  float s;
  float wmin;
  float wmax;
  int side;
} SlimAutoRoundGroupScale;

static SlimAutoRoundGroupScale
slim_autoround_group_scale (const SlimAutoRoundConfig *cfg,
                            const float *wg, /* [group_size] */
                            float min_s,
                            float max_s)
{
  SlimAutoRoundGroupScale r = { 0 };
  float qmax = (float)((1 << (cfg->bits - 1)) - 1);
  float lo = 0.0f, hi = 0.0f;
  for (gint64 k = 0; k < cfg->group_size; k++)
    {
      lo = fminf (lo, wg[k]);
      hi = fmaxf (hi, wg[k]);
    }
  float cmin = -lo * min_s;
  float cmax = hi * max_s;
  float raw = cmax >= cmin ? cmax : cmin;
  r.side = cmax >= cmin ? 1 : -1;
  r.s = slim_autoround_cast_scale (raw / qmax, cfg->scale_dtype);
  if (!(r.s >= SLIM_AUTOROUND_SCALE_FLOOR))
    {
      r.s = SLIM_AUTOROUND_SCALE_FLOOR;
      r.side = 0;
    }
  r.wmin = lo;
  r.wmax = hi;
  return r;
}

/* Asymmetric groups (msModelSlim / intel auto-round quant_tensor_asym):
 * a = min(0, min W) * min_scale, b = max(0, max W) * max_scale (both 0:
 * -1 and 1), s = cast ((b - a) / (2^bits - 1)) floored at 1e-5,
 * zp = round (-a / s), q = clamp (round (W / s + V) + zp, 0, 2^bits - 1),
 * Ŵ = s (q - zp). */
typedef struct
{
  float s;
  float zp;
  float lo; /* min(0, min W) */
  float hi; /* max(0, max W) */
  float a;
  int side; /* 1: s follows a and b; 0: the floor applied (s constant);
             * -1: a and b replaced by -1, 1 (constants) */
} SlimAutoRoundAsymScale;

static SlimAutoRoundAsymScale
slim_autoround_asym_scale (const SlimAutoRoundConfig *cfg,
                           const float *wg, /* [group_size] */
                           float min_s,
                           float max_s)
{
  SlimAutoRoundAsymScale r = { 0 };
  const float maxq = (float)((1 << cfg->bits) - 1);
  float a, b;

  for (gint64 k = 0; k < cfg->group_size; k++)
    {
      r.lo = fminf (r.lo, wg[k]);
      r.hi = fmaxf (r.hi, wg[k]);
    }
  a = r.lo * min_s;
  b = r.hi * max_s;
  r.side = 1;
  if (a == 0.0f && b == 0.0f)
    {
      a = -1.0f;
      b = 1.0f;
      r.side = -1;
    }
  r.s = slim_autoround_cast_scale ((b - a) / maxq, cfg->scale_dtype);
  if (!(r.s >= SLIM_AUTOROUND_SCALE_FLOOR))
    {
      r.s = SLIM_AUTOROUND_SCALE_FLOOR;
      r.side = MIN (r.side, 0);
    }
  r.a = a;
  r.zp = nearbyintf (-a / r.s);
  return r;
}

/* The asymmetric forward; codes and offsets in the signed domain of
 * linear_quant's records (code - 2^(bits-1), zp - 2^(bits-1)). */
static void
slim_autoround_qdq_asym (const SlimAutoRoundConfig *cfg,
                         const float *w,
                         gint64 n_out,
                         gint64 n_in,
                         const float *v,
                         const float *min_scale,
                         const float *max_scale,
                         float *out_scale,
                         float *out_offset, /* nullable */
                         float *out_w_hat,
                         gint8 *out_q)
{
  const gint64 gs = cfg->group_size, n_groups = n_in / gs;
  const float maxq = (float)((1 << cfg->bits) - 1), shift = (float)(1 << (cfg->bits - 1));

  for (gint64 r = 0; r < n_out; r++)
    for (gint64 g = 0; g < n_groups; g++)
      {
        const gint64 pi = r * n_groups + g, base = r * n_in + g * gs;
        SlimAutoRoundAsymScale sc
            = slim_autoround_asym_scale (cfg, w + base, min_scale[pi], max_scale[pi]);

        out_scale[pi] = sc.s;
        if (out_offset != NULL)
          out_offset[pi] = sc.zp - shift;
        for (gint64 k = 0; k < gs; k++)
          {
            float q
                = fminf (fmaxf (nearbyintf (w[base + k] / sc.s + v[base + k]) + sc.zp, 0.0f), maxq);

            out_w_hat[base + k] = sc.s * (q - sc.zp);
            if (out_q)
              out_q[base + k] = (gint8)(q - shift);
          }
      }
}

/* Straight-through backward of the asymmetric forward: in range Ŵ =
 * s round (W / s + V), so dŴ/dV = s, dŴ/ds = (q - zp) - W / s; clamped
 * Ŵ = s (c - zp) with zp = round (-a / s): dŴ/ds = (c - zp) - a / s,
 * dŴ/da = 1; s = (b - a) / maxq, a = lo min_scale, b = hi max_scale. */
static void
slim_autoround_qdq_asym_backward (const SlimAutoRoundConfig *cfg,
                                  const float *w,
                                  gint64 n_out,
                                  gint64 n_in,
                                  const float *v,
                                  const float *min_scale,
                                  const float *max_scale,
                                  const float *grad_w_hat,
                                  float *grad_v,
                                  float *grad_min_scale,
                                  float *grad_max_scale)
{
  const gint64 gs = cfg->group_size, n_groups = n_in / gs;
  const float maxq = (float)((1 << cfg->bits) - 1);

  for (gint64 r = 0; r < n_out; r++)
    for (gint64 g = 0; g < n_groups; g++)
      {
        const gint64 pi = r * n_groups + g, base = r * n_in + g * gs;
        SlimAutoRoundAsymScale sc
            = slim_autoround_asym_scale (cfg, w + base, min_scale[pi], max_scale[pi]);
        double ds = 0.0, da = 0.0; /* dL/ds and dL/da (direct, through zp) over the group */

        for (gint64 k = 0; k < gs; k++)
          {
            float u = nearbyintf (w[base + k] / sc.s + v[base + k]) + sc.zp;
            gboolean in_range = u >= 0.0f && u <= maxq;
            float q = fminf (fmaxf (u, 0.0f), maxq);
            float gw = grad_w_hat[base + k];

            if (grad_v)
              grad_v[base + k] = in_range ? gw * sc.s : 0.0f;
            if (in_range)
              ds += (double)gw * (double)((q - sc.zp) - w[base + k] / sc.s);
            else
              {
                ds += (double)gw * (double)((q - sc.zp) - sc.a / sc.s);
                da += (double)gw;
              }
          }
        if (sc.side <= 0)
          ds = 0.0; /* s is a constant */
        if (sc.side < 0)
          da = 0.0; /* so is a */
        if (grad_max_scale)
          grad_max_scale[pi] = (float)(ds / (double)maxq * (double)sc.hi);
        if (grad_min_scale)
          grad_min_scale[pi] = (float)((-ds / (double)maxq + da) * (double)sc.lo);
      }
}

gboolean
slim_autoround_qdq_offsets (const SlimAutoRoundConfig *cfg,
                            const float *w,
                            gint64 n_out,
                            gint64 n_in,
                            const float *min_scale,
                            const float *max_scale,
                            float *out_offset,
                            GError **error)
{
  const gint64 n_groups = cfg->group_size > 0 ? n_in / cfg->group_size : 0;

  if (!slim_autoround_config_check (cfg, n_out, n_in, error))
    return FALSE;
  for (gint64 r = 0; r < n_out; r++)
    for (gint64 g = 0; g < n_groups; g++)
      {
        const gint64 pi = r * n_groups + g;

        out_offset[pi] = cfg->asymmetric
                             ? slim_autoround_asym_scale (cfg, w + r * n_in + g * cfg->group_size,
                                                          min_scale[pi], max_scale[pi])
                                       .zp
                                   - (float)(1 << (cfg->bits - 1))
                             : 0.0f;
      }
  return TRUE;
}

gboolean
slim_autoround_qdq (const SlimAutoRoundConfig *cfg,
                    const float *w,
                    gint64 n_out,
                    gint64 n_in,
                    const float *v,
                    const float *min_scale,
                    const float *max_scale,
                    float *out_scale,
                    float *out_w_hat,
                    gint8 *out_q,
                    GError **error)
{
  if (!slim_autoround_config_check (cfg, n_out, n_in, error))
    return FALSE;
  if (cfg->asymmetric)
    {
      slim_autoround_qdq_asym (cfg, w, n_out, n_in, v, min_scale, max_scale, out_scale, NULL,
                               out_w_hat, out_q);
      return TRUE;
    }
  gint64 gs = cfg->group_size;
  gint64 n_groups = n_in / gs;
  float qmax = (float)((1 << (cfg->bits - 1)) - 1);
  float qmin = -qmax - 1.0f;
  float vb = slim_autoround_v_bound (cfg->bits); /* V's bound in the forward */
  for (gint64 r = 0; r < n_out; r++)
    for (gint64 g = 0; g < n_groups; g++)
      {
        gint64 pi = r * n_groups + g;
        gint64 base = r * n_in + g * gs;
        SlimAutoRoundGroupScale sc
            = slim_autoround_group_scale (cfg, w + base, min_scale[pi], max_scale[pi]);
        out_scale[pi] = sc.s;
        for (gint64 k = 0; k < gs; k++)
          {
            float x = w[base + k] / sc.s + fminf (fmaxf (v[base + k], -vb), vb);
            float q = fminf (fmaxf (nearbyintf (x), qmin), qmax);
            out_w_hat[base + k] = q * sc.s;
            if (out_q)
              out_q[base + k] = (gint8)q;
          }
      }
  return TRUE;
}

gboolean
slim_autoround_qdq_backward (const SlimAutoRoundConfig *cfg,
                             const float *w,
                             gint64 n_out,
                             gint64 n_in,
                             const float *v,
                             const float *min_scale,
                             const float *max_scale,
                             const float *grad_w_hat,
                             float *grad_v,
                             float *grad_min_scale,
                             float *grad_max_scale,
                             GError **error)
{
  if (!slim_autoround_config_check (cfg, n_out, n_in, error))
    return FALSE;
  if (cfg->asymmetric)
    {
      slim_autoround_qdq_asym_backward (cfg, w, n_out, n_in, v, min_scale, max_scale, grad_w_hat,
                                        grad_v, grad_min_scale, grad_max_scale);
      return TRUE;
    }
  gint64 gs = cfg->group_size;
  gint64 n_groups = n_in / gs;
  float qmax = (float)((1 << (cfg->bits - 1)) - 1);
  float qmin = -qmax - 1.0f;
  float vb = slim_autoround_v_bound (cfg->bits); /* V's bound in the forward */
  for (gint64 r = 0; r < n_out; r++)
    for (gint64 g = 0; g < n_groups; g++)
      {
        gint64 pi = r * n_groups + g;
        gint64 base = r * n_in + g * gs;
        SlimAutoRoundGroupScale sc
            = slim_autoround_group_scale (cfg, w + base, min_scale[pi], max_scale[pi]);
        double ds = 0.0; /* dL/ds over the group */
        for (gint64 k = 0; k < gs; k++)
          {
            float x = w[base + k] / sc.s + fminf (fmaxf (v[base + k], -vb), vb);
            float rx = nearbyintf (x);
            gboolean in_range = rx >= qmin && rx <= qmax;
            /* torch.clamp passes the gradient where -vb <= V <= vb */
            gboolean v_inside = v[base + k] >= -vb && v[base + k] <= vb;
            float q = fminf (fmaxf (rx, qmin), qmax);
            float gw = grad_w_hat[base + k];
            if (grad_v)
              grad_v[base + k] = in_range && v_inside ? gw * sc.s : 0.0f;
            float dwds = in_range ? q - w[base + k] / sc.s : q;
            ds += (double)gw * (double)dwds;
          }
        float gmax = 0.0f, gmin = 0.0f;
        if (sc.side == 1)
          gmax = (float)(ds * (double)(sc.wmax / qmax));
        else if (sc.side == -1)
          gmin = (float)(ds * (double)(-sc.wmin / qmax));
        if (grad_max_scale)
          grad_max_scale[pi] = gmax;
        if (grad_min_scale)
          grad_min_scale[pi] = gmin;
      }
  return TRUE;
}

float
slim_autoround_lr (gint64 step, gint64 iters)
{
  g_return_val_if_fail (iters >= 1, 0.0f);
  if (step >= iters || step < 0)
    return 0.0f;
  float base = SLIM_AUTOROUND_LR_MULTIPLIER / (float)iters;
  return base * (1.0f - (float)step / (float)iters);
}

void
slim_autoround_signsgd_step (float *p, const float *g, gint64 n, float lr, float lo, float hi)
{
  for (gint64 i = 0; i < n; i++)
    {
      float sg = g[i] > 0.0f ? 1.0f : (g[i] < 0.0f ? -1.0f : 0.0f);
      p[i] = fminf (fmaxf (p[i] - lr * sg, lo), hi);
    }
}

gboolean
slim_autoround_masked_l1 (const float *y,
                          const float *ref,
                          const float *mask,
                          gint64 n_tok,
                          gint64 dim,
                          float *out_loss,
                          float *out_grad,
                          GError **error)
{
  gint64 n_counted = 0;
  for (gint64 t = 0; t < n_tok; t++)
    if (!mask || mask[t] != 0.0f)
      n_counted++;
  if (dim < 1 || n_counted < 1)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "autoround: masked L1 loss over no element (%" G_GINT64_FORMAT
                   " counted tokens, dim %" G_GINT64_FORMAT ")",
                   n_counted, dim);
      return FALSE;
    }
  double count = (double)n_counted * (double)dim;
  double sum = 0.0;
  float gscale = (float)(SLIM_AUTOROUND_LOSS_SCALE / count);
  for (gint64 t = 0; t < n_tok; t++)
    {
      gboolean on = !mask || mask[t] != 0.0f;
      for (gint64 j = 0; j < dim; j++)
        {
          float d = y[t * dim + j] - ref[t * dim + j];
          if (on)
            sum += fabs ((double)d);
          if (out_grad)
            out_grad[t * dim + j] = on ? (d > 0.0f ? gscale : (d < 0.0f ? -gscale : 0.0f)) : 0.0f;
        }
    }
  *out_loss = (float)(SLIM_AUTOROUND_LOSS_SCALE * sum / count);
  return TRUE;
}

void
slim_autoround_sample_order (guint32 seed, gint64 n, gint64 *out_order)
{
  for (gint64 i = 0; i < n; i++)
    out_order[i] = i;
  if (n < 2)
    return;
  GRand *rng = g_rand_new_with_seed (seed);
  for (gint64 i = n - 1; i > 0; i--)
    {
      gint64 j = (gint64)g_rand_double_range (rng, 0.0, (double)(i + 1));
      if (j > i)
        j = i;
      gint64 t = out_order[i];
      out_order[i] = out_order[j];
      out_order[j] = t;
    }
  g_rand_free (rng);
}
