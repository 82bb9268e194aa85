/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-dense-layer-autoround.c: AutoRound's training loop over a dense
 * decoder layer (see slim-dense-layer-autoround.h).
 */
#include "slim-dense-layer-autoround.h"

#include <string.h>

#include "slim-autoround-linear-state.h"
#include "slim-error.h"

static const char *const slim_dense_linear_names[SLIM_DENSE_N_LINEARS] = {
  "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
  "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj",
};

const char *
slim_dense_linear_name (SlimDenseLinear which)
{
  g_return_val_if_fail (which >= 0 && which < SLIM_DENSE_N_LINEARS, NULL);
  return slim_dense_linear_names[which];
}

static SlimLinearWeights *
slim_dense_weights_member (SlimDenseLayerWeights *w, SlimDenseLinear which)
{
  switch (which)
    {
    case SLIM_DENSE_LINEAR_Q:
      return &w->q;
    case SLIM_DENSE_LINEAR_K:
      return &w->k;
    case SLIM_DENSE_LINEAR_V:
      return &w->v;
    case SLIM_DENSE_LINEAR_O:
      return &w->o;
    case SLIM_DENSE_LINEAR_GATE:
      return &w->gate;
    case SLIM_DENSE_LINEAR_UP:
      return &w->up;
    default:
      return &w->down;
    }
}

static SlimLinearGrads *
slim_dense_grads_member (SlimDenseLayerGrads *g, SlimDenseLinear which)
{
  switch (which)
    {
    case SLIM_DENSE_LINEAR_Q:
      return &g->q;
    case SLIM_DENSE_LINEAR_K:
      return &g->k;
    case SLIM_DENSE_LINEAR_V:
      return &g->v;
    case SLIM_DENSE_LINEAR_O:
      return &g->o;
    case SLIM_DENSE_LINEAR_GATE:
      return &g->gate;
    case SLIM_DENSE_LINEAR_UP:
      return &g->up;
    default:
      return &g->down;
    }
}

static void
slim_dense_linear_shape (const SlimModelConfig *config,
                         SlimDenseLinear which,
                         gint64 *n_out,
                         gint64 *n_in)
{
  gint64 hidden = config->hidden_size;
  gint64 q_dim = config->n_heads * config->head_dim;
  gint64 kv_dim = config->n_kv_heads * config->head_dim;
  gint64 inter = config->intermediate_size;

  switch (which)
    {
    case SLIM_DENSE_LINEAR_Q:
      *n_out = q_dim, *n_in = hidden;
      break;
    case SLIM_DENSE_LINEAR_K:
    case SLIM_DENSE_LINEAR_V:
      *n_out = kv_dim, *n_in = hidden;
      break;
    case SLIM_DENSE_LINEAR_O:
      *n_out = hidden, *n_in = q_dim;
      break;
    case SLIM_DENSE_LINEAR_GATE:
    case SLIM_DENSE_LINEAR_UP:
      *n_out = inter, *n_in = hidden;
      break;
    default:
      *n_out = hidden, *n_in = inter;
      break;
    }
}

static gboolean
slim_dense_autoround_check (const SlimModelConfig *config,
                            guint n_samples,
                            const gint64 *seq_lens,
                            const SlimDenseAutoRoundOptions *options,
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
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    {
      gint64 n_out, n_in;

      if (options->linears[l].bits == 0)
        continue;
      n_quantized++;
      slim_dense_linear_shape (config, (SlimDenseLinear)l, &n_out, &n_in);
      if (!slim_autoround_config_check (&options->linears[l], n_out, n_in, error))
        {
          g_prefix_error (error, "%s: ", slim_dense_linear_names[l]);
          return FALSE;
        }
    }
  return slim_autoround_loop_check (n_quantized, n_samples, seq_lens, error);
}

/* The dense layer's passes for slim_autoround_layer_loop. */
typedef struct
{
  const SlimModelConfig *config;
  const SlimDenseLayerWeights *current; /* Ŵ for the quantized linears */
  SlimDenseLayerGrads *grads;           /* dL/dŴ only */
  const float *const *inputs;           /* [n_samples] each (seq_lens[s], hidden) */
  const gint64 *seq_lens;               /* [n_samples] */
  SlimDenseLayerTape tape;
} SlimDenseAutoRoundPasses;

static const float *
slim_dense_autoround_forward (guint s, gpointer data)
{
  SlimDenseAutoRoundPasses *p = data;
  SlimBatch batch = { 1, &p->seq_lens[s] };

  memset (&p->tape, 0, sizeof (p->tape));
  slim_dense_layer_forward (p->config, p->current, &batch, p->inputs[s], &p->tape);
  return p->tape.y;
}

static void
slim_dense_autoround_backward (const float *dy, gpointer data)
{
  SlimDenseAutoRoundPasses *p = data;

  slim_dense_layer_backward (p->config, p->current, &p->tape, dy, p->grads);
  slim_dense_layer_tape_clear (&p->tape);
}

static void
slim_dense_autoround_drop (gpointer data)
{
  slim_dense_layer_tape_clear (&((SlimDenseAutoRoundPasses *)data)->tape);
}

static const SlimAutoRoundLayerOps slim_dense_autoround_ops
    = { slim_dense_autoround_forward, slim_dense_autoround_backward, slim_dense_autoround_drop };

gboolean
slim_dense_layer_autoround (const SlimModelConfig *config,
                            const SlimDenseLayerWeights *weights,
                            guint n_samples,
                            const float *const *inputs,
                            const gint64 *seq_lens,
                            const float *const *targets,
                            const SlimDenseAutoRoundOptions *options,
                            SlimDenseAutoRoundProgress progress,
                            gpointer progress_data,
                            SlimDenseAutoRoundResult *result,
                            GError **error)
{
  SlimAutoRoundLinearState st[SLIM_DENSE_N_LINEARS] = { 0 };
  SlimDenseLayerWeights current = *weights; /* Ŵ for the quantized linears */
  SlimDenseLayerGrads grads = { 0 };        /* dL/dŴ only */
  SlimDenseAutoRoundPasses passes = {
    .config = config, .current = &current, .grads = &grads, .inputs = inputs, .seq_lens = seq_lens
  };
  SlimAutoRoundLoop loop = { st,
                             result->linears,
                             SLIM_DENSE_N_LINEARS,
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
  gboolean ok;

  if (!slim_dense_autoround_check (config, n_samples, seq_lens, options, error))
    return FALSE;

  memset (result, 0, sizeof (*result));
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    {
      SlimDenseAutoRoundLinear *out = &result->linears[l];
      const SlimAutoRoundConfig *cfg = &options->linears[l];
      SlimLinearWeights *cur = slim_dense_weights_member (&current, (SlimDenseLinear)l);

      slim_dense_linear_shape (config, (SlimDenseLinear)l, &out->n_out, &out->n_in);
      if (cfg->bits == 0)
        continue;
      slim_autoround_linear_state_init (&st[l], cfg, cur->weight, out);
      cur->weight = st[l].w_hat;
      slim_dense_grads_member (&grads, (SlimDenseLinear)l)->weight = st[l].grad_w;
    }

  ok = slim_autoround_layer_loop (&loop, &slim_dense_autoround_ops, &passes, &result->first_loss,
                                  &result->best_loss, &result->best_iter, error);
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    slim_autoround_linear_state_clear (&st[l]);
  if (!ok)
    slim_dense_autoround_result_clear (result);
  return ok;
}

void
slim_dense_autoround_result_clear (SlimDenseAutoRoundResult *result)
{
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
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
  memset (result, 0, sizeof (*result));
}
