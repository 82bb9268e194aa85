/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-moe-layer-autoround.c: AutoRound's training loop over a
 * mixture-of-experts decoder layer (see slim-moe-layer-autoround.h); the
 * steps of slim-dense-layer-autoround.c over a list of linears.
 */
#include "slim-moe-layer-autoround.h"

#include <math.h>
#include <string.h>

#include "slim-error.h"

#define SLIM_MOE_AUTOROUND_EMA_BETA 0.7 /* trainer.py ema_beta */
#define SLIM_MOE_AUTOROUND_WINDOW 5     /* trainer.py window_size */

typedef struct
{
  const SlimAutoRoundConfig *cfg; /* NULL: float */
  const float *w;                 /* [n_out, n_in] the float weight */
  float *w_hat;                   /* [n_out, n_in] */
  float *grad_w;                  /* [n_out, n_in] */
  float *v;                       /* [n_out, n_in] */
  float *grad_v;                  /* [n_out, n_in] */
  float *min_scale, *max_scale;   /* [n_out, G] */
  float *grad_min, *grad_max;     /* [n_out, G] */
  float *scale;                   /* [n_out, G] */
} SlimMoeAutoRoundState;

static void
slim_moe_autoround_state_clear (SlimMoeAutoRoundState *st)
{
  g_clear_pointer (&st->w_hat, g_free);
  g_clear_pointer (&st->grad_w, g_free);
  g_clear_pointer (&st->v, g_free);
  g_clear_pointer (&st->grad_v, g_free);
  g_clear_pointer (&st->min_scale, g_free);
  g_clear_pointer (&st->max_scale, g_free);
  g_clear_pointer (&st->grad_min, g_free);
  g_clear_pointer (&st->grad_max, g_free);
  g_clear_pointer (&st->scale, g_free);
}

static float *
slim_moe_filled (gint64 n, float value)
{
  float *p = g_new (float, MAX (n, 1));

  for (gint64 i = 0; i < n; i++)
    p[i] = value;
  return p;
}

static void
slim_moe_autoround_keep (const SlimMoeAutoRoundState *st, SlimDenseAutoRoundLinear *out)
{
  memcpy (out->v, st->v, (gsize)(out->n_out * out->n_in) * sizeof (float));
  memcpy (out->min_scale, st->min_scale, (gsize)(out->n_out * out->n_groups) * sizeof (float));
  memcpy (out->max_scale, st->max_scale, (gsize)(out->n_out * out->n_groups) * sizeof (float));
}

/* slim-dense-layer-autoround.c's per-iteration seed (splitmix64's
 * finalizer of seed and it): the same orders as a dense layer. */
static guint32
slim_moe_autoround_iter_seed (guint32 seed, gint64 it)
{
  guint64 z = ((guint64)seed << 32) ^ (guint64)it;

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  z ^= z >> 31;
  return (guint32)(z ^ (z >> 32));
}

static gboolean
slim_moe_autoround_check (const SlimModelConfig *config,
                          const SlimMoeLayerWeights *weights,
                          guint n_samples,
                          const gint64 *seq_lens,
                          const SlimMoeAutoRoundOptions *options,
                          GError **error)
{
  guint n_quantized = 0;

  if (options->iters < 1)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "autoround: iters must be at least 1 (got %" G_GINT64_FORMAT ")",
                   options->iters);
      return FALSE;
    }
  if (options->n_linears != slim_moe_layer_n_linears (config)
      || weights->n_linears != options->n_linears)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "autoround: %" G_GINT64_FORMAT
                   " linear configs for a MoE layer of %" G_GINT64_FORMAT " linears",
                   options->n_linears, slim_moe_layer_n_linears (config));
      return FALSE;
    }
  for (gint64 l = 0; l < options->n_linears; l++)
    {
      gint64 n_out, n_in;

      if (options->linears[l].bits == 0)
        continue;
      n_quantized++;
      slim_moe_layer_linear_shape (config, l, &n_out, &n_in);
      if (!slim_autoround_config_check (&options->linears[l], n_out, n_in, error))
        {
          g_autofree char *name = slim_moe_layer_linear_name (config, l);

          g_prefix_error (error, "%s: ", name);
          return FALSE;
        }
    }
  if (n_quantized == 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "autoround: no linear of the layer is quantized");
      return FALSE;
    }
  if (n_samples == 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "autoround: no calibration sample");
      return FALSE;
    }
  for (guint s = 0; s < n_samples; s++)
    if (seq_lens[s] < 1)
      {
        g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                     "autoround: calibration sample %u has no token", s);
        return FALSE;
      }
  return TRUE;
}

gboolean
slim_moe_layer_autoround (const SlimModelConfig *config,
                          const SlimMoeLayerWeights *weights,
                          guint n_samples,
                          const float *const *inputs,
                          const gint64 *seq_lens,
                          const float *const *targets,
                          const SlimMoeAutoRoundOptions *options,
                          SlimDenseAutoRoundProgress progress,
                          gpointer progress_data,
                          SlimMoeAutoRoundResult *result,
                          GError **error)
{
  gint64 n_lin = options->n_linears;
  g_autofree SlimMoeAutoRoundState *st = NULL;  /* [n_lin] */
  g_autofree SlimLinearWeights *cur_lin = NULL; /* [n_lin] Ŵ for the quantized linears */
  g_autofree SlimLinearGrads *grad_lin = NULL;  /* [n_lin] dL/dŴ only */
  SlimMoeLayerWeights current;
  SlimMoeLayerGrads grads = { 0 };
  gint64 hidden = config->hidden_size;
  gint64 iters = options->iters;
  guint pick = MIN (n_samples, (guint)SLIM_AUTOROUND_GRAD_ACCUMULATE);
  double history[SLIM_MOE_AUTOROUND_WINDOW] = { 0 };
  guint n_history = 0;
  double best = 0.0;
  g_autofree gint64 *order = NULL;
  g_autofree float *dy = NULL;
  gint64 max_len = 0;
  gboolean ok = FALSE;

  memset (result, 0, sizeof (*result));
  if (!slim_moe_autoround_check (config, weights, n_samples, seq_lens, options, error))
    return FALSE;
  for (guint s = 0; s < n_samples; s++)
    max_len = MAX (max_len, seq_lens[s]);
  order = g_new (gint64, n_samples);
  dy = g_new (float, max_len *hidden); /* [max_len, hidden] */
  st = g_new0 (SlimMoeAutoRoundState, n_lin);
  cur_lin = g_memdup2 (weights->linears, (gsize)n_lin * sizeof (SlimLinearWeights));
  grad_lin = g_new0 (SlimLinearGrads, n_lin);
  current = *weights;
  current.linears = cur_lin;
  grads.linears = grad_lin;

  result->n_linears = n_lin;
  result->linears = g_new0 (SlimDenseAutoRoundLinear, n_lin);
  for (gint64 l = 0; l < n_lin; l++)
    {
      SlimDenseAutoRoundLinear *out = &result->linears[l];
      const SlimAutoRoundConfig *cfg = &options->linears[l];
      gint64 nw, ng;

      slim_moe_layer_linear_shape (config, l, &out->n_out, &out->n_in);
      if (cfg->bits == 0)
        continue;
      out->quantized = TRUE;
      out->n_groups = out->n_in / cfg->group_size;
      nw = out->n_out * out->n_in;
      ng = out->n_out * out->n_groups;
      out->v = slim_moe_filled (nw, 0.0f);
      out->min_scale = slim_moe_filled (ng, 1.0f);
      out->max_scale = slim_moe_filled (ng, 1.0f);
      st[l].cfg = cfg;
      st[l].w = weights->linears[l].weight;
      st[l].w_hat = g_new (float, nw);
      st[l].grad_w = g_new (float, nw);
      st[l].v = slim_moe_filled (nw, 0.0f);
      st[l].grad_v = g_new (float, nw);
      st[l].min_scale = slim_moe_filled (ng, 1.0f);
      st[l].max_scale = slim_moe_filled (ng, 1.0f);
      st[l].grad_min = g_new (float, ng);
      st[l].grad_max = g_new (float, ng);
      st[l].scale = g_new (float, ng);
      cur_lin[l].weight = st[l].w_hat;
      grad_lin[l].weight = st[l].grad_w;
    }

  for (gint64 it = 0; it < iters; it++)
    {
      double total = 0.0;
      float lr = slim_autoround_lr (it, iters);
      gint64 picked_tokens = 0;

      for (gint64 l = 0; l < n_lin; l++)
        if (st[l].cfg != NULL)
          {
            const SlimDenseAutoRoundLinear *out = &result->linears[l];

            if (!slim_autoround_qdq (st[l].cfg, st[l].w, out->n_out, out->n_in, st[l].v,
                                     st[l].min_scale, st[l].max_scale, st[l].scale, st[l].w_hat,
                                     NULL, error))
              goto out;
            memset (st[l].grad_w, 0, (gsize)(out->n_out * out->n_in) * sizeof (float));
          }
      slim_autoround_sample_order (slim_moe_autoround_iter_seed (options->seed, it), n_samples,
                                   order);
      /* the pooled masked L1 of the picked samples (slim-dense-layer-autoround.c) */
      for (guint p = 0; p < pick; p++)
        picked_tokens += seq_lens[order[p]];
      for (guint p = 0; p < pick; p++)
        {
          gint64 s = order[p];
          float share = (float)((double)seq_lens[s] / (double)picked_tokens);
          SlimBatch batch = { 1, &seq_lens[s] };
          SlimMoeLayerTape tape = { 0 };
          float loss;

          slim_moe_layer_forward (config, &current, &batch, inputs[s], &tape);
          if (!slim_autoround_masked_l1 (tape.y, targets[s], NULL, seq_lens[s], hidden, &loss, dy,
                                         error))
            {
              slim_moe_layer_tape_clear (&tape);
              goto out;
            }
          total += (double)loss * (double)share;
          for (gint64 i = 0; i < seq_lens[s] * hidden; i++)
            dy[i] *= share;
          slim_moe_layer_backward (config, &current, &tape, dy, &grads);
          slim_moe_layer_tape_clear (&tape);
        }

      history[n_history++ % SLIM_MOE_AUTOROUND_WINDOW] = total;
      if (it == 0)
        {
          result->first_loss = (float)total;
          best = total;
          result->best_iter = 0;
          for (gint64 l = 0; l < n_lin; l++)
            if (st[l].cfg != NULL)
              slim_moe_autoround_keep (&st[l], &result->linears[l]);
        }
      else
        {
          guint n = MIN (n_history, (guint)SLIM_MOE_AUTOROUND_WINDOW);
          double avg = 0.0;

          for (guint k = 0; k < n; k++)
            avg += history[k];
          avg /= n;
          if (avg < best)
            {
              best = SLIM_MOE_AUTOROUND_EMA_BETA * best + (1.0 - SLIM_MOE_AUTOROUND_EMA_BETA) * avg;
              result->best_iter = it;
              for (gint64 l = 0; l < n_lin; l++)
                if (st[l].cfg != NULL)
                  slim_moe_autoround_keep (&st[l], &result->linears[l]);
            }
        }
      if (progress != NULL)
        progress (it, iters, (float)total, progress_data);

      /* SignSGD step; V bounded as in slim-dense-layer-autoround.c */
      for (gint64 l = 0; l < n_lin; l++)
        if (st[l].cfg != NULL)
          {
            const SlimDenseAutoRoundLinear *out = &result->linears[l];
            gint64 nw = out->n_out * out->n_in, ng = out->n_out * out->n_groups;
            float vb = st[l].cfg->asymmetric ? INFINITY : slim_autoround_v_bound (st[l].cfg->bits);

            if (!slim_autoround_qdq_backward (st[l].cfg, st[l].w, out->n_out, out->n_in, st[l].v,
                                              st[l].min_scale, st[l].max_scale, st[l].grad_w,
                                              options->enable_round_tuning ? st[l].grad_v : NULL,
                                              options->enable_minmax_tuning ? st[l].grad_min : NULL,
                                              options->enable_minmax_tuning ? st[l].grad_max : NULL,
                                              error))
              goto out;
            if (options->enable_round_tuning)
              slim_autoround_signsgd_step (st[l].v, st[l].grad_v, nw, lr, -vb, vb);
            if (options->enable_minmax_tuning)
              {
                slim_autoround_signsgd_step (st[l].min_scale, st[l].grad_min, ng, lr, 0.0f, 1.0f);
                slim_autoround_signsgd_step (st[l].max_scale, st[l].grad_max, ng, lr, 0.0f, 1.0f);
              }
          }
    }
  result->best_loss = (float)best;

  for (gint64 l = 0; l < n_lin; l++)
    if (st[l].cfg != NULL)
      {
        SlimDenseAutoRoundLinear *out = &result->linears[l];

        out->scale = g_new (float, out->n_out * out->n_groups);
        out->w_hat = g_new (float, out->n_out * out->n_in);
        out->q = g_new (gint8, out->n_out * out->n_in);
        out->offset = g_new (float, out->n_out * out->n_groups);
        if (!slim_autoround_qdq (st[l].cfg, st[l].w, out->n_out, out->n_in, out->v, out->min_scale,
                                 out->max_scale, out->scale, out->w_hat, out->q, error)
            || !slim_autoround_qdq_offsets (st[l].cfg, st[l].w, out->n_out, out->n_in,
                                            out->min_scale, out->max_scale, out->offset, error))
          goto out;
      }
  ok = TRUE;

out:
  for (gint64 l = 0; l < n_lin; l++)
    slim_moe_autoround_state_clear (&st[l]);
  if (!ok)
    slim_moe_autoround_result_clear (result);
  return ok;
}

void
slim_moe_autoround_result_clear (SlimMoeAutoRoundResult *result)
{
  for (gint64 l = 0; l < result->n_linears; l++)
    {
      SlimDenseAutoRoundLinear *lin = &result->linears[l];

      g_clear_pointer (&lin->v, g_free);
      g_clear_pointer (&lin->min_scale, g_free);
      g_clear_pointer (&lin->max_scale, g_free);
      g_clear_pointer (&lin->scale, g_free);
      g_clear_pointer (&lin->q, g_free);
      g_clear_pointer (&lin->offset, g_free);
      g_clear_pointer (&lin->w_hat, g_free);
    }
  g_clear_pointer (&result->linears, g_free);
  memset (result, 0, sizeof (*result));
}
