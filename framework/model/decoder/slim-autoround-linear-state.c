/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-autoround-linear-state.c: one linear's AutoRound training state and
 * the steps the layer loops share (see slim-autoround-linear-state.h).
 */
#include "slim-autoround-linear-state.h"

#include <math.h>
#include <string.h>

#include "slim-error.h"

static float *
slim_autoround_filled (gint64 n, float value)
{
  float *p = g_new (float, MAX (n, 1));

  for (gint64 i = 0; i < n; i++)
    p[i] = value;
  return p;
}

void
slim_autoround_linear_state_init (SlimAutoRoundLinearState *st,
                                  const SlimAutoRoundConfig *cfg,
                                  const float *w,
                                  SlimDenseAutoRoundLinear *out)
{
  gint64 nw, ng;

  out->quantized = TRUE;
  out->n_groups = out->n_in / cfg->group_size;
  nw = out->n_out * out->n_in;
  ng = out->n_out * out->n_groups;
  out->v = slim_autoround_filled (nw, 0.0f);
  out->min_scale = slim_autoround_filled (ng, 1.0f);
  out->max_scale = slim_autoround_filled (ng, 1.0f);
  st->cfg = cfg;
  st->w = w;
  st->w_hat = g_new (float, nw);
  st->grad_w = g_new (float, nw);
  st->v = slim_autoround_filled (nw, 0.0f);
  st->grad_v = g_new (float, nw);
  st->min_scale = slim_autoround_filled (ng, 1.0f);
  st->max_scale = slim_autoround_filled (ng, 1.0f);
  st->grad_min = g_new (float, ng);
  st->grad_max = g_new (float, ng);
  st->scale = g_new (float, ng);
}

void
slim_autoround_linear_state_clear (SlimAutoRoundLinearState *st)
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

gboolean
slim_autoround_linear_state_qdq (SlimAutoRoundLinearState *st,
                                 const SlimDenseAutoRoundLinear *out,
                                 GError **error)
{
  if (!slim_autoround_qdq (st->cfg, st->w, out->n_out, out->n_in, st->v, st->min_scale,
                           st->max_scale, st->scale, st->w_hat, NULL, error))
    return FALSE;
  memset (st->grad_w, 0, (gsize)(out->n_out * out->n_in) * sizeof (float));
  return TRUE;
}

gboolean
slim_autoround_linear_state_step (SlimAutoRoundLinearState *st,
                                  const SlimDenseAutoRoundLinear *out,
                                  gboolean round_tuning,
                                  gboolean minmax_tuning,
                                  float lr,
                                  GError **error)
{
  gint64 nw = out->n_out * out->n_in, ng = out->n_out * out->n_groups;
  /* V's parameter bound: none for asymmetric weights (quant_tensor_asym
   * adds w_corr unclamped); ±slim_autoround_v_bound for symmetric ones,
   * where msModelSlim clamps V in the forward only and so freezes a V that
   * steps past the bound (no gradient through the clamp): slimflow clamps
   * the parameter instead, the same forward, and V can come back (with the
   * freeze, W8 on tiny-random-qwen2 layer 1 never beat plain rounding in
   * 100 iterations). */
  float vb = st->cfg->asymmetric ? INFINITY : slim_autoround_v_bound (st->cfg->bits);

  if (!slim_autoround_qdq_backward (st->cfg, st->w, out->n_out, out->n_in, st->v, st->min_scale,
                                    st->max_scale, st->grad_w, round_tuning ? st->grad_v : NULL,
                                    minmax_tuning ? st->grad_min : NULL,
                                    minmax_tuning ? st->grad_max : NULL, error))
    return FALSE;
  if (round_tuning)
    slim_autoround_signsgd_step (st->v, st->grad_v, nw, lr, -vb, vb);
  if (minmax_tuning)
    {
      slim_autoround_signsgd_step (st->min_scale, st->grad_min, ng, lr, 0.0f, 1.0f);
      slim_autoround_signsgd_step (st->max_scale, st->grad_max, ng, lr, 0.0f, 1.0f);
    }
  return TRUE;
}

void
slim_autoround_linear_state_keep (const SlimAutoRoundLinearState *st, SlimDenseAutoRoundLinear *out)
{
  gsize nw = (gsize)(out->n_out * out->n_in) * sizeof (float);
  gsize ng = (gsize)(out->n_out * out->n_groups) * sizeof (float);

  memcpy (out->v, st->v, nw);
  memcpy (out->min_scale, st->min_scale, ng);
  memcpy (out->max_scale, st->max_scale, ng);
}

gboolean
slim_autoround_linear_state_finish (const SlimAutoRoundLinearState *st,
                                    SlimDenseAutoRoundLinear *out,
                                    GError **error)
{
  out->scale = g_new (float, out->n_out * out->n_groups);  /* [n_out, G] */
  out->w_hat = g_new (float, out->n_out * out->n_in);      /* [n_out, n_in] */
  out->q = g_new (gint8, out->n_out * out->n_in);          /* [n_out, n_in] */
  out->offset = g_new (float, out->n_out * out->n_groups); /* [n_out, G] */
  return slim_autoround_qdq (st->cfg, st->w, out->n_out, out->n_in, out->v, out->min_scale,
                             out->max_scale, out->scale, out->w_hat, out->q, error)
         && slim_autoround_qdq_offsets (st->cfg, st->w, out->n_out, out->n_in, out->min_scale,
                                        out->max_scale, out->offset, error);
}

gboolean
slim_autoround_best_update (
    SlimAutoRoundBest *b, gint64 it, double total, float *first_loss, gint64 *best_iter)
{
  b->history[b->n_history++ % SLIM_AUTOROUND_WINDOW] = total;
  if (it == 0)
    {
      *first_loss = (float)total;
      b->best = total;
      *best_iter = 0;
      return TRUE;
    }
  {
    guint n = MIN (b->n_history, (guint)SLIM_AUTOROUND_WINDOW);
    double avg = 0.0;

    for (guint k = 0; k < n; k++)
      avg += b->history[k];
    avg /= n;
    if (avg < b->best)
      {
        b->best = SLIM_AUTOROUND_EMA_BETA * b->best + (1.0 - SLIM_AUTOROUND_EMA_BETA) * avg;
        *best_iter = it;
        return TRUE;
      }
  }
  return FALSE;
}

guint32
slim_autoround_iter_seed (guint32 seed, gint64 it)
{
  guint64 z = ((guint64)seed << 32) ^ (guint64)it;

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  z ^= z >> 31;
  return (guint32)(z ^ (z >> 32));
}

gboolean
slim_autoround_layer_loop (const SlimAutoRoundLoop *loop,
                           const SlimAutoRoundLayerOps *ops,
                           gpointer ops_data,
                           float *first_loss,
                           float *best_loss,
                           gint64 *best_iter,
                           GError **error)
{
  SlimAutoRoundLinearState *st = loop->states;
  SlimDenseAutoRoundLinear *lin = loop->linears;
  const gint64 n_lin = loop->n_linears, hidden = loop->hidden;
  const guint pick = MIN (loop->n_samples, (guint)SLIM_AUTOROUND_GRAD_ACCUMULATE);
  SlimAutoRoundBest tracking = { { 0 }, 0, 0.0 };
  g_autofree gint64 *order = g_new (gint64, MAX (loop->n_samples, 1)); /* [n_samples] */
  g_autofree float *dy = NULL;                                         /* [max_len, hidden] */
  gint64 max_len = 0;

  for (guint s = 0; s < loop->n_samples; s++)
    max_len = MAX (max_len, loop->seq_lens[s]);
  dy = g_new (float, MAX (max_len * hidden, 1));
  for (gint64 it = 0; it < loop->iters; it++)
    {
      double total = 0.0;
      float lr = slim_autoround_lr (it, loop->iters);
      gint64 picked_tokens = 0;

      for (gint64 l = 0; l < n_lin; l++)
        if (st[l].cfg != NULL && !slim_autoround_linear_state_qdq (&st[l], &lin[l], error))
          return FALSE;
      slim_autoround_sample_order (slim_autoround_iter_seed (loop->seed, it), loop->n_samples,
                                   order);
      /* msModelSlim (trainer.py, gradient_accumulate_steps 8): each
       * sample's loss is the *sum* of |y - ref| over its elements and
       * total_loss is their sum over the picked samples' element count
       * (num_elm), so a sample weighs by its token count.  masked_l1 gives
       * a sample's mean: weight it (and its gradient) by its share of the
       * picked tokens, which makes total the pooled mean ×1000. */
      for (guint p = 0; p < pick; p++)
        picked_tokens += loop->seq_lens[order[p]];
      for (guint p = 0; p < pick; p++)
        {
          gint64 s = order[p];
          gint64 seq_len = loop->seq_lens[s];
          float share = (float)((double)seq_len / (double)picked_tokens);
          const float *y = ops->forward ((guint)s, ops_data);
          float loss;

          if (!slim_autoround_masked_l1 (y, loop->targets[s], NULL, seq_len, hidden, &loss, dy,
                                         error))
            {
              ops->drop (ops_data);
              return FALSE;
            }
          total += (double)loss * (double)share;
          for (gint64 i = 0; i < seq_len * hidden; i++)
            dy[i] *= share;
          ops->backward (dy, ops_data);
        }

      /* Best-parameter tracking, on the parameters that gave this loss. */
      if (slim_autoround_best_update (&tracking, it, total, first_loss, best_iter))
        for (gint64 l = 0; l < n_lin; l++)
          if (st[l].cfg != NULL)
            slim_autoround_linear_state_keep (&st[l], &lin[l]);
      if (loop->progress != NULL)
        loop->progress (it, loop->iters, (float)total, loop->progress_data);

      /* SignSGD step. */
      for (gint64 l = 0; l < n_lin; l++)
        if (st[l].cfg != NULL
            && !slim_autoround_linear_state_step (&st[l], &lin[l], loop->round_tuning,
                                                  loop->minmax_tuning, lr, error))
          return FALSE;
    }
  *best_loss = (float)tracking.best;

  /* The kept parameters' quantization. */
  for (gint64 l = 0; l < n_lin; l++)
    if (st[l].cfg != NULL && !slim_autoround_linear_state_finish (&st[l], &lin[l], error))
      return FALSE;
  return TRUE;
}

gboolean
slim_autoround_loop_check (guint n_quantized,
                           guint n_samples,
                           const gint64 *seq_lens,
                           GError **error)
{
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
