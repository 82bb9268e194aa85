/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-moe-layer-autoround.c: AutoRound's training loop over a
 * mixture-of-experts decoder layer (see slim-moe-layer-autoround.h); the
 * steps of slim-dense-layer-autoround.c over a list of linears, sharing
 * its per-linear state and steps (slim-autoround-linear-state.h).
 */
#include "slim-moe-layer-autoround.h"

#include <string.h>

#include "slim-autoround-linear-state.h"
#include "slim-error.h"

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
  g_autofree SlimAutoRoundLinearState *st = NULL; /* [n_lin] */
  g_autofree SlimLinearWeights *cur_lin = NULL;   /* [n_lin] Ŵ for the quantized linears */
  g_autofree SlimLinearGrads *grad_lin = NULL;    /* [n_lin] dL/dŴ only */
  SlimMoeLayerWeights current;
  SlimMoeLayerGrads grads = { 0 };
  gint64 hidden = config->hidden_size;
  gint64 iters = options->iters;
  guint pick = MIN (n_samples, (guint)SLIM_AUTOROUND_GRAD_ACCUMULATE);
  SlimAutoRoundBest tracking = { { 0 }, 0, 0.0 };
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
  st = g_new0 (SlimAutoRoundLinearState, n_lin);
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

      slim_moe_layer_linear_shape (config, l, &out->n_out, &out->n_in);
      if (cfg->bits == 0)
        continue;
      slim_autoround_linear_state_init (&st[l], cfg, weights->linears[l].weight, out);
      cur_lin[l].weight = st[l].w_hat;
      grad_lin[l].weight = st[l].grad_w;
    }

  for (gint64 it = 0; it < iters; it++)
    {
      double total = 0.0;
      float lr = slim_autoround_lr (it, iters);
      gint64 picked_tokens = 0;

      for (gint64 l = 0; l < n_lin; l++)
        if (st[l].cfg != NULL
            && !slim_autoround_linear_state_qdq (&st[l], &result->linears[l], error))
          goto out;
      slim_autoround_sample_order (slim_autoround_iter_seed (options->seed, it), n_samples, order);
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

      if (slim_autoround_best_update (&tracking, it, total, &result->first_loss,
                                      &result->best_iter))
        for (gint64 l = 0; l < n_lin; l++)
          if (st[l].cfg != NULL)
            slim_autoround_linear_state_keep (&st[l], &result->linears[l]);
      if (progress != NULL)
        progress (it, iters, (float)total, progress_data);

      for (gint64 l = 0; l < n_lin; l++)
        if (st[l].cfg != NULL
            && !slim_autoround_linear_state_step (&st[l], &result->linears[l],
                                                  options->enable_round_tuning,
                                                  options->enable_minmax_tuning, lr, error))
          goto out;
    }
  result->best_loss = (float)tracking.best;

  for (gint64 l = 0; l < n_lin; l++)
    if (st[l].cfg != NULL
        && !slim_autoround_linear_state_finish (&st[l], &result->linears[l], error))
      goto out;
  ok = TRUE;

out:
  for (gint64 l = 0; l < n_lin; l++)
    slim_autoround_linear_state_clear (&st[l]);
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
