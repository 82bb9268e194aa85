/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ssz.c: SSZ weight quantization (see slim-ssz.h).
 */
#include "slim-ssz.h"

#include "slim-error.h"

#include <math.h>
#include <string.h>

void
slim_ssz_config_init (SlimSszConfig *cfg, const SlimQParamsConfig *qparams)
{
  g_return_if_fail (cfg != NULL && qparams != NULL);

  memset (cfg, 0, sizeof *cfg);
  cfg->qparams = *qparams;
  cfg->step = SLIM_SSZ_STEP_DEFAULT;
}

gboolean
slim_ssz_config_check (const SlimSszConfig *cfg, GError **error)
{
  g_return_val_if_fail (cfg != NULL, FALSE);

  if (cfg->qparams.bits != 4 && cfg->qparams.bits != 8)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "ssz: %u-bit weights are not supported (valid: int4, int8)", cfg->qparams.bits);
      return FALSE;
    }
  if (cfg->qparams.max_bound != 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "ssz: max_bound is not supported (msModelSlim's ssz uses the full range)");
      return FALSE;
    }
  if (cfg->step < 1)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "ssz: step %" G_GINT64_FORMAT " must be >= 1", cfg->step);
      return FALSE;
    }
  return TRUE;
}

/* Σ t[0..n) in float32, in the order of torch's CPU sum over a contiguous
 * row (aten SumKernel.cpp vectorized_inner_sum / row_sum / multi_row_sum,
 * AVX2 build: 8-float vectors, 4 interleaved vector accumulators, a 4-level
 * cascade every 2^p rows).  This is the order msModelSlim's torch.sum /
 * torch.mean over dim 0 of Wᵀ (contiguous along that dim) run in; with it
 * the oracle's SSZ parameters come out bit-equal (the oracle's n = 256
 * stays below the first cascade level, 16 rows = 512 elements; the cascade
 * follows the same torch source). */
#define SLIM_SSZ_LANES 8
#define SLIM_SSZ_ILP 4
#define SLIM_SSZ_LEVELS 4

static float
slim_ssz_sum_f32 (const float *t, gint64 n)
{
  const gint64 vec_size = n / SLIM_SSZ_LANES;      /* whole vectors */
  const gint64 size_ilp = vec_size / SLIM_SSZ_ILP; /* rows of ILP vectors */
  gint64 ceil_log2 = 0, level_power, level_step, i = 0;
  float acc[SLIM_SSZ_LEVELS][SLIM_SSZ_ILP][SLIM_SSZ_LANES] = { { { 0 } } };
  float part[SLIM_SSZ_ILP][SLIM_SSZ_LANES];
  float total = 0.0f;

  /* aten's ceil_log2: 1 for x <= 2 */
  while (((gint64)1 << ceil_log2) < size_ilp)
    ceil_log2++;
  ceil_log2 = MAX (ceil_log2, 1);
  level_power = MAX (4, ceil_log2 / SLIM_SSZ_LEVELS);
  level_step = (gint64)1 << level_power;

  for (; i + level_step <= size_ilp;)
    {
      for (gint64 j = 0; j < level_step; j++, i++)
        for (int k = 0; k < SLIM_SSZ_ILP; k++)
          for (int l = 0; l < SLIM_SSZ_LANES; l++)
            acc[0][k][l] += t[(i * SLIM_SSZ_ILP + k) * SLIM_SSZ_LANES + l];
      for (int j = 1; j < SLIM_SSZ_LEVELS; j++)
        {
          gint64 mask = (level_step - 1) << (j * level_power);

          for (int k = 0; k < SLIM_SSZ_ILP; k++)
            for (int l = 0; l < SLIM_SSZ_LANES; l++)
              {
                acc[j][k][l] += acc[j - 1][k][l];
                acc[j - 1][k][l] = 0.0f;
              }
          if ((i & mask) != 0)
            break;
        }
    }
  for (; i < size_ilp; i++)
    for (int k = 0; k < SLIM_SSZ_ILP; k++)
      for (int l = 0; l < SLIM_SSZ_LANES; l++)
        acc[0][k][l] += t[(i * SLIM_SSZ_ILP + k) * SLIM_SSZ_LANES + l];
  for (int k = 0; k < SLIM_SSZ_ILP; k++)
    for (int l = 0; l < SLIM_SSZ_LANES; l++)
      {
        part[k][l] = acc[0][k][l];
        for (int j = 1; j < SLIM_SSZ_LEVELS; j++)
          part[k][l] += acc[j][k][l];
      }
  /* row_sum: leftover whole vectors into the first accumulator, then the
   * ILP accumulators folded in order */
  for (gint64 v = size_ilp * SLIM_SSZ_ILP; v < vec_size; v++)
    for (int l = 0; l < SLIM_SSZ_LANES; l++)
      part[0][l] += t[v * SLIM_SSZ_LANES + l];
  for (int k = 1; k < SLIM_SSZ_ILP; k++)
    for (int l = 0; l < SLIM_SSZ_LANES; l++)
      part[0][l] += part[k][l];
  /* vectorized_inner_sum: scalar tail first, then the lanes in order */
  for (gint64 k = vec_size * SLIM_SSZ_LANES; k < n; k++)
    total += t[k];
  for (int l = 0; l < SLIM_SSZ_LANES; l++)
    total += part[0][l];
  return total;
}

/* clamp(round(w / s + o)); NaN (0 / 0 for a zero scale) gives 0, as torch's
 * float-to-int8 cast does on x86. */
static inline float
slim_ssz_level (float x, float s, float o, float lo, float hi)
{
  float v = x / s + o;

  if (isnan (v))
    return 0.0f;
  v = slim_round_half_even (v);
  v = (v >= lo) ? v : lo;
  return (v <= hi) ? v : hi;
}

/* msModelSlim's two convergence tests for one channel. */
static inline gboolean
slim_ssz_converged (float best, float cur)
{
  float floor = best > SLIM_SSZ_MSE_FLOOR ? best : SLIM_SSZ_MSE_FLOOR;

  return (best - cur) / floor < SLIM_SSZ_CONVERGE_THRESHOLD
         || fabsf (best - cur) < SLIM_SSZ_CONVERGE_THRESHOLD;
}

static gboolean
slim_ssz_check_args (const SlimSszConfig *cfg,
                     const float *w,
                     gint64 n_out,
                     gint64 n_in,
                     const float *scale,
                     GError **error)
{
  if (!slim_ssz_config_check (cfg, error))
    return FALSE;
  if (n_out < 1 || n_in < 1 || n_in > G_MAXINT32 || (guint64)n_out > G_MAXSIZE / 16 / (guint64)n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "ssz: bad weight shape (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", n_out,
                   n_in);
      return FALSE;
    }
  for (gint64 i = 0; i < n_out * n_in; i++)
    if (!isfinite (w[i]))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "ssz: weight element (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                     ") is not finite",
                     i / n_in, i % n_in);
        return FALSE;
      }
  if (scale != NULL)
    for (gint64 r = 0; r < n_out; r++)
      if (!isfinite (scale[r]) || !(scale[r] > 0.0f))
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                       "ssz: start scale of channel %" G_GINT64_FORMAT " is %g (must be > 0)", r,
                       (double)scale[r]);
          return FALSE;
        }
  return TRUE;
}

/* The asymmetric fit of an all-zero channel divides 0 by 0; msModelSlim
 * then carries a NaN offset.  That is reported instead of saved. */
static gboolean
slim_ssz_check_result (const float *scale, const float *offset, gint64 n_out, GError **error)
{
  for (gint64 r = 0; r < n_out; r++)
    if (!isfinite (scale[r]) || !isfinite (offset[r]))
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "ssz: channel %" G_GINT64_FORMAT
                     " has no finite parameters (scale %g, offset %g): an all-zero "
                     "channel with an asymmetric scheme",
                     r, (double)scale[r], (double)offset[r]);
        return FALSE;
      }
  return TRUE;
}

/* Row kernel: the least-squares fit from the current codes, then the
 * requantization in place and its MSE; t1, t2 (n_in) scratch for the
 * elementwise terms torch materializes before summing. */
static void
slim_ssz_row_step (gboolean symmetric,
                   const float *w, /* (n_in) */
                   gint64 n_in,
                   gint8 *q, /* (n_in) inout: codes of the current parameters */
                   float o,
                   float lo,
                   float hi,
                   float *t1, /* (n_in) scratch */
                   float *t2, /* (n_in) scratch */
                   float *out_s,
                   float *out_o,
                   float *out_mse)
{
  float s, o_new, den;

  for (gint64 k = 0; k < n_in; k++)
    {
      float d = symmetric ? (float)q[k] : (float)q[k] - o;
      t1[k] = w[k] * d;
      t2[k] = d * d;
    }
  den = slim_ssz_sum_f32 (t2, n_in);
  s = slim_ssz_sum_f32 (t1, n_in) / (den > SLIM_SSZ_MIN_DENOM ? den : SLIM_SSZ_MIN_DENOM);
  if (symmetric)
    o_new = o;
  else
    {
      for (gint64 k = 0; k < n_in; k++)
        t1[k] = (float)q[k] * s - w[k];
      o_new = slim_ssz_sum_f32 (t1, n_in) / ((float)n_in * s);
    }

  for (gint64 k = 0; k < n_in; k++)
    {
      float lv = slim_ssz_level (w[k], s, o_new, lo, hi);
      float diff = w[k] - (lv - o_new) * s;
      q[k] = (gint8)(int)lv;
      t1[k] = diff * diff;
    }
  *out_s = s;
  *out_o = o_new;
  *out_mse = slim_ssz_sum_f32 (t1, n_in) / (float)n_in;
}

static float
slim_ssz_row_init (
    const float *w, gint64 n_in, gint8 *q, float s, float o, float lo, float hi, float *t1)
{
  for (gint64 k = 0; k < n_in; k++)
    {
      float lv = slim_ssz_level (w[k], s, o, lo, hi);
      float diff = w[k] - (lv - o) * s;
      q[k] = (gint8)(int)lv;
      t1[k] = diff * diff;
    }
  return slim_ssz_sum_f32 (t1, n_in) / (float)n_in;
}

gboolean
slim_ssz_search (const SlimSszConfig *cfg,
                 const float *w,
                 gint64 n_out,
                 gint64 n_in,
                 float *scale,
                 float *offset,
                 gint64 *out_n_iter,
                 GError **error)
{
  gint qmin, qmax;
  float lo, hi;
  gint8 *q;                          /* (n_out, n_in) codes of the current parameters */
  float *best_s, *best_o, *best_mse; /* (n_out) each */
  float *cur_s, *cur_o, *cur_mse;    /* (n_out) each */
  float *cur_off;                    /* (n_out) offset the next fit starts from */
  float *t1, *t2;                    /* (n_in) each: elementwise terms */
  gint64 it;
  gboolean ok;

  g_return_val_if_fail (cfg != NULL && w != NULL && scale != NULL && offset != NULL, FALSE);
  if (!slim_ssz_check_args (cfg, w, n_out, n_in, scale, error))
    return FALSE;

  q = g_try_malloc ((gsize)n_out * (gsize)n_in);
  best_s = g_try_new (float, (gsize)n_out * 7);
  t1 = g_try_new (float, (gsize)n_in * 2);
  if (q == NULL || best_s == NULL || t1 == NULL)
    {
      g_free (q);
      g_free (best_s);
      g_free (t1);
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "ssz: out of memory for a (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ") weight",
                   n_out, n_in);
      return FALSE;
    }
  best_o = best_s + n_out;
  best_mse = best_o + n_out;
  cur_s = best_mse + n_out;
  cur_o = cur_s + n_out;
  cur_mse = cur_o + n_out;
  cur_off = cur_mse + n_out;
  t2 = t1 + n_in;

  slim_qparams_get_range (&cfg->qparams, &qmin, &qmax);
  lo = (float)qmin;
  hi = (float)qmax;

  for (gint64 r = 0; r < n_out; r++)
    {
      best_s[r] = scale[r];
      best_o[r] = offset[r];
      cur_off[r] = offset[r];
      best_mse[r]
          = slim_ssz_row_init (w + r * n_in, n_in, q + r * n_in, scale[r], offset[r], lo, hi, t1);
    }

  for (it = 1; it <= cfg->step; it++)
    {
      gboolean all_converged = TRUE;

      for (gint64 r = 0; r < n_out; r++)
        {
          slim_ssz_row_step (cfg->qparams.symmetric, w + r * n_in, n_in, q + r * n_in, cur_off[r],
                             lo, hi, t1, t2, &cur_s[r], &cur_o[r], &cur_mse[r]);
          if (!slim_ssz_converged (best_mse[r], cur_mse[r]))
            all_converged = FALSE;
        }
      if (all_converged)
        break;
      for (gint64 r = 0; r < n_out; r++)
        {
          /* msModelSlim's 0/1-mask blend, kept as arithmetic so a NaN in a
           * rejected channel propagates exactly as there */
          float m = (cur_mse[r] < best_mse[r]) ? 1.0f : 0.0f;

          best_mse[r] = best_mse[r] * (1.0f - m) + cur_mse[r] * m;
          best_s[r] = best_s[r] * (1.0f - m) + cur_s[r] * m;
          if (!cfg->qparams.symmetric)
            best_o[r] = best_o[r] * (1.0f - m) + cur_o[r] * m;
          cur_off[r] = cur_o[r];
        }
    }
  if (out_n_iter != NULL)
    *out_n_iter = MIN (it, cfg->step);

  ok = slim_ssz_check_result (best_s, best_o, n_out, error);
  if (ok)
    {
      memcpy (scale, best_s, (gsize)n_out * sizeof (float));
      memcpy (offset, best_o, (gsize)n_out * sizeof (float));
    }
  g_free (q);
  g_free (best_s);
  g_free (t1);
  return ok;
}

/* Row min/max start (slim_qparams_compute), shared by both twins. */
static void
slim_ssz_minmax_start (const SlimSszConfig *cfg,
                       const float *w,
                       gint64 n_out,
                       gint64 n_in,
                       float *scale,
                       float *offset)
{
  for (gint64 r = 0; r < n_out; r++)
    {
      const float *row = w + r * n_in;
      float mn = row[0], mx = row[0];

      for (gint64 k = 1; k < n_in; k++)
        {
          mn = row[k] < mn ? row[k] : mn;
          mx = row[k] > mx ? row[k] : mx;
        }
      slim_qparams_compute (&cfg->qparams, mn, mx, &scale[r], &offset[r]);
    }
}

static void
slim_ssz_codes (const SlimSszConfig *cfg,
                const float *w,
                gint64 n_out,
                gint64 n_in,
                const float *scale,
                const float *offset,
                gint8 *q,
                float *out_dequant)
{
  gint qmin, qmax;

  slim_qparams_get_range (&cfg->qparams, &qmin, &qmax);
  for (gint64 r = 0; r < n_out; r++)
    for (gint64 k = 0; k < n_in; k++)
      {
        gint64 i = r * n_in + k;
        float lv = slim_ssz_level (w[i], scale[r], offset[r], (float)qmin, (float)qmax);

        if (q != NULL)
          q[i] = (gint8)(int)lv;
        if (out_dequant != NULL)
          out_dequant[i] = (lv - offset[r]) * scale[r];
      }
}

typedef gboolean (*SlimSszSearchFunc) (const SlimSszConfig *cfg,
                                       const float *w,
                                       gint64 n_out,
                                       gint64 n_in,
                                       float *scale,
                                       float *offset,
                                       gint64 *out_n_iter,
                                       GError **error);

static gboolean
slim_ssz_quantize_with (SlimSszSearchFunc search,
                        const SlimSszConfig *cfg,
                        const float *w,
                        gint64 n_out,
                        gint64 n_in,
                        float *out_scale,
                        float *out_offset,
                        gint8 *q,
                        float *out_dequant,
                        gint64 *out_n_iter,
                        GError **error)
{
  g_return_val_if_fail (cfg != NULL && w != NULL && out_scale != NULL && out_offset != NULL, FALSE);
  if (!slim_ssz_check_args (cfg, w, n_out, n_in, NULL, error))
    return FALSE;
  slim_ssz_minmax_start (cfg, w, n_out, n_in, out_scale, out_offset);
  if (!search (cfg, w, n_out, n_in, out_scale, out_offset, out_n_iter, error))
    return FALSE;
  slim_ssz_codes (cfg, w, n_out, n_in, out_scale, out_offset, q, out_dequant);
  return TRUE;
}

gboolean
slim_ssz_quantize (const SlimSszConfig *cfg,
                   const float *w,
                   gint64 n_out,
                   gint64 n_in,
                   float *out_scale,
                   float *out_offset,
                   gint8 *q,
                   float *out_dequant,
                   gint64 *out_n_iter,
                   GError **error)
{
  return slim_ssz_quantize_with (slim_ssz_search, cfg, w, n_out, n_in, out_scale, out_offset, q,
                                 out_dequant, out_n_iter, error);
}

/* ---- plain twin: msModelSlim's tensor program on Wᵀ (n_in, n_out) ---- */

/* dq = fake_quantize(wt), codes into qt; both (n_in, n_out) */
static void
slim_ssz_ref_quantize_t (const float *wt,
                         gint64 n_in,
                         gint64 n_out,
                         const float *s,
                         const float *o,
                         float lo,
                         float hi,
                         gint8 *qt,
                         float *dq)
{
  for (gint64 k = 0; k < n_in; k++)
    for (gint64 n = 0; n < n_out; n++)
      {
        gint64 i = k * n_out + n;
        float lv = slim_ssz_level (wt[i], s[n], o[n], lo, hi);

        qt[i] = (gint8)(int)lv;
        dq[i] = ((float)qt[i] - o[n]) * s[n];
      }
}

/* torch.mean((wt - dq)^2, dim=0) with float64 column accumulators */
static void
slim_ssz_ref_mse_t (
    const float *wt, const float *dq, gint64 n_in, gint64 n_out, double *acc, float *mse)
{
  for (gint64 n = 0; n < n_out; n++)
    acc[n] = 0.0;
  for (gint64 k = 0; k < n_in; k++)
    for (gint64 n = 0; n < n_out; n++)
      {
        float d = wt[k * n_out + n] - dq[k * n_out + n];
        acc[n] += (double)(d * d);
      }
  for (gint64 n = 0; n < n_out; n++)
    mse[n] = (float)acc[n] / (float)n_in;
}

gboolean
slim_ssz_search_ref (const SlimSszConfig *cfg,
                     const float *w,
                     gint64 n_out,
                     gint64 n_in,
                     float *scale,
                     float *offset,
                     gint64 *out_n_iter,
                     GError **error)
{
  gint qmin, qmax;
  gsize n = (gsize)n_out * (gsize)n_in;
  float *wt, *dq, *qf;               /* (n_in, n_out) each */
  gint8 *qt;                         /* (n_in, n_out) */
  float *best_s, *best_o, *best_mse; /* (n_out) each */
  float *q_s, *q_o, *cur_mse;        /* (n_out): q_param's ext, current MSE */
  double *acc, *acc2;                /* (n_out) column sums */
  gint64 it, n_iter = 0;
  gboolean ok;

  g_return_val_if_fail (cfg != NULL && w != NULL && scale != NULL && offset != NULL, FALSE);
  if (!slim_ssz_check_args (cfg, w, n_out, n_in, scale, error))
    return FALSE;
  slim_qparams_get_range (&cfg->qparams, &qmin, &qmax);

  wt = g_try_new (float, n * 3);
  qt = g_try_malloc (n);
  best_s = g_try_new (float, (gsize)n_out * 6);
  acc = g_try_new (double, (gsize)n_out * 2);
  if (wt == NULL || qt == NULL || best_s == NULL || acc == NULL)
    {
      g_free (wt);
      g_free (qt);
      g_free (best_s);
      g_free (acc);
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "ssz: out of memory");
      return FALSE;
    }
  dq = wt + n;
  qf = dq + n;
  best_o = best_s + n_out;
  best_mse = best_o + n_out;
  q_s = best_mse + n_out;
  q_o = q_s + n_out;
  cur_mse = q_o + n_out;
  acc2 = acc + n_out;

  for (gint64 r = 0; r < n_out; r++)
    for (gint64 k = 0; k < n_in; k++)
      wt[k * n_out + r] = w[r * n_in + k];
  memcpy (best_s, scale, (gsize)n_out * sizeof (float));
  memcpy (best_o, offset, (gsize)n_out * sizeof (float));
  memcpy (q_s, scale, (gsize)n_out * sizeof (float));
  memcpy (q_o, offset, (gsize)n_out * sizeof (float));

  /* best_quant_weight, best_dequant_weight, best_mse */
  slim_ssz_ref_quantize_t (wt, n_in, n_out, q_s, q_o, (float)qmin, (float)qmax, qt, dq);
  slim_ssz_ref_mse_t (wt, dq, n_in, n_out, acc, best_mse);

  for (it = 0; it < cfg->step; it++)
    {
      gint64 not_converged = 0;

      n_iter = it + 1;
      for (gsize i = 0; i < n; i++)
        qf[i] = (float)qt[i]; /* quant_weight.value.to(float) */
      for (gint64 c = 0; c < n_out; c++)
        acc[c] = acc2[c] = 0.0;
      if (cfg->qparams.symmetric)
        {
          for (gint64 k = 0; k < n_in; k++)
            for (gint64 c = 0; c < n_out; c++)
              {
                float x = qf[k * n_out + c];
                acc[c] += (double)(wt[k * n_out + c] * x);
                acc2[c] += (double)(x * x);
              }
          for (gint64 c = 0; c < n_out; c++)
            q_s[c] = (float)acc[c] / fmaxf ((float)acc2[c], SLIM_SSZ_MIN_DENOM);
          /* current_offset = get_ext_offset(q_param): unchanged */
        }
      else
        {
          for (gint64 k = 0; k < n_in; k++)
            for (gint64 c = 0; c < n_out; c++)
              {
                float x = qf[k * n_out + c] - q_o[c];
                acc[c] += (double)(wt[k * n_out + c] * x);
                acc2[c] += (double)(x * x);
              }
          for (gint64 c = 0; c < n_out; c++)
            q_s[c] = (float)acc[c] / fmaxf ((float)acc2[c], SLIM_SSZ_MIN_DENOM);
          for (gint64 c = 0; c < n_out; c++)
            acc[c] = 0.0;
          for (gint64 k = 0; k < n_in; k++)
            for (gint64 c = 0; c < n_out; c++)
              acc[c] += (double)(qf[k * n_out + c] * q_s[c] - wt[k * n_out + c]);
          for (gint64 c = 0; c < n_out; c++)
            q_o[c] = (float)acc[c] / ((float)n_in * q_s[c]);
        }
      /* quant_weight = quantize(...); current_dequant_weight = fake_quantize(...) */
      slim_ssz_ref_quantize_t (wt, n_in, n_out, q_s, q_o, (float)qmin, (float)qmax, qt, dq);
      slim_ssz_ref_mse_t (wt, dq, n_in, n_out, acc, cur_mse);

      for (gint64 c = 0; c < n_out; c++)
        {
          gboolean mask1 = (best_mse[c] - cur_mse[c]) / fmaxf (best_mse[c], SLIM_SSZ_MSE_FLOOR)
                           < SLIM_SSZ_CONVERGE_THRESHOLD;
          gboolean mask2 = fabsf (best_mse[c] - cur_mse[c]) < SLIM_SSZ_CONVERGE_THRESHOLD;
          not_converged += (!mask1 && !mask2);
        }
      if (not_converged == 0)
        break;

      for (gint64 c = 0; c < n_out; c++)
        {
          float m = (float)(gint32)(cur_mse[c] < best_mse[c]);

          best_mse[c] = best_mse[c] * (1 - m) + cur_mse[c] * m;
          best_s[c] = best_s[c] * (1 - m) + q_s[c] * m;
          if (cfg->qparams.symmetric)
            best_o[c] = q_o[c];
          else
            best_o[c] = best_o[c] * (1 - m) + q_o[c] * m;
        }
    }
  if (out_n_iter != NULL)
    *out_n_iter = n_iter;

  ok = slim_ssz_check_result (best_s, best_o, n_out, error);
  if (ok)
    {
      memcpy (scale, best_s, (gsize)n_out * sizeof (float));
      memcpy (offset, best_o, (gsize)n_out * sizeof (float));
    }
  g_free (wt);
  g_free (qt);
  g_free (best_s);
  g_free (acc);
  return ok;
}

gboolean
slim_ssz_quantize_ref (const SlimSszConfig *cfg,
                       const float *w,
                       gint64 n_out,
                       gint64 n_in,
                       float *out_scale,
                       float *out_offset,
                       gint8 *q,
                       float *out_dequant,
                       gint64 *out_n_iter,
                       GError **error)
{
  return slim_ssz_quantize_with (slim_ssz_search_ref, cfg, w, n_out, n_in, out_scale, out_offset, q,
                                 out_dequant, out_n_iter, error);
}
