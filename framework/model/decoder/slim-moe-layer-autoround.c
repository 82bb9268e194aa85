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
  return slim_autoround_loop_check (n_quantized, n_samples, seq_lens, error);
}

/* The MoE layer's passes for slim_autoround_layer_loop. */
typedef struct
{
  const SlimModelConfig *config;
  const SlimMoeLayerWeights *current; /* Ŵ for the quantized linears */
  SlimMoeLayerGrads *grads;           /* dL/dŴ only */
  const float *const *inputs;         /* [n_samples] each (seq_lens[s], hidden) */
  const gint64 *seq_lens;             /* [n_samples] */
  SlimMoeLayerTape tape;
} SlimMoeAutoRoundPasses;

static const float *
slim_moe_autoround_forward (guint s, gpointer data)
{
  SlimMoeAutoRoundPasses *p = data;
  SlimBatch batch = { 1, &p->seq_lens[s] };

  memset (&p->tape, 0, sizeof (p->tape));
  slim_moe_layer_forward (p->config, p->current, &batch, p->inputs[s], &p->tape);
  return p->tape.y;
}

static void
slim_moe_autoround_backward (const float *dy, gpointer data)
{
  SlimMoeAutoRoundPasses *p = data;

  slim_moe_layer_backward (p->config, p->current, &p->tape, dy, p->grads);
  slim_moe_layer_tape_clear (&p->tape);
}

static void
slim_moe_autoround_drop (gpointer data)
{
  slim_moe_layer_tape_clear (&((SlimMoeAutoRoundPasses *)data)->tape);
}

static const SlimAutoRoundLayerOps slim_moe_autoround_ops
    = { slim_moe_autoround_forward, slim_moe_autoround_backward, slim_moe_autoround_drop };

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
  SlimMoeAutoRoundPasses passes = {
    .config = config, .current = &current, .grads = &grads, .inputs = inputs, .seq_lens = seq_lens
  };
  SlimAutoRoundLoop loop;
  gboolean ok;

  memset (result, 0, sizeof (*result));
  if (!slim_moe_autoround_check (config, weights, n_samples, seq_lens, options, error))
    return FALSE;
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

  loop = (SlimAutoRoundLoop){ st,
                              result->linears,
                              n_lin,
                              options->iters,
                              options->enable_round_tuning,
                              options->enable_minmax_tuning,
                              options->seed,
                              n_samples,
                              seq_lens,
                              targets,
                              config->hidden_size,
                              progress,
                              progress_data };
  ok = slim_autoround_layer_loop (&loop, &slim_moe_autoround_ops, &passes, &result->first_loss,
                                  &result->best_loss, &result->best_iter, error);
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
