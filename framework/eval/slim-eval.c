/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-eval.c: windowed perplexity, KL divergence and top-1 agreement
 * (protocol in slim-eval.h).
 *
 * Plan of a run: the windows are grouped into batches of whole windows
 * (at most n_batch_tokens tokens, at least one window); each batch is
 * embedded and pushed through the decoder one layer at a time (a layer is
 * loaded, applied to the whole packed batch, dropped), then the final
 * norm + lm_head runs on blocks of rows so that at most
 * SLIM_EVAL_LOGIT_FLOATS logits exist at once.  With a reference model
 * the same batch runs through it too and the two logit blocks are
 * compared row by row.
 *
 * Log-softmax in double: NLL = logsumexp(z) - z[target], the logsumexp
 * with a running maximum so exp() never overflows.
 */
#include "slim-eval.h"

#include <math.h>
#include <string.h>

#include "slim-error.h"
#include "slim-progress.h"

/* Bound on one batch's activations: 2^24 floats (64 MiB) per
 * (n_tokens, width) tensor, width the larger of hidden and intermediate. */
#define SLIM_EVAL_BATCH_FLOATS ((gint64)1 << 24)
/* Bound on one block of logits: 2^22 floats (16 MiB). */
#define SLIM_EVAL_LOGIT_FLOATS ((gint64)1 << 22)

/**
 * slim_eval_options_init:
 * @options: (out caller-allocates): options to fill with the defaults
 */
void
slim_eval_options_init (SlimEvalOptions *options)
{
  g_return_if_fail (options != NULL);
  memset (options, 0, sizeof *options);
  options->n_ctx = SLIM_EVAL_DEFAULT_CTX;
}

/* ---- row kernels --------------------------------------------------------- */

/**
 * slim_eval_row_nll:
 * @logits: (array length=n_vocab): one row of logits
 * @n_vocab: row length (> 0)
 * @target: the token whose NLL is wanted, in [0, n_vocab)
 *
 * Returns: -log softmax(logits)[target], in nats
 */
double
slim_eval_row_nll (const float *logits, gint64 n_vocab, gint32 target)
{
  g_return_val_if_fail (logits != NULL && n_vocab > 0, NAN);
  g_return_val_if_fail (target >= 0 && target < n_vocab, NAN);
  /* Online logsumexp: sum is relative to the running maximum m. */
  double m = logits[0];
  double sum = 1.0;
  for (gint64 v = 1; v < n_vocab; v++)
    {
      double z = logits[v];
      if (z <= m)
        sum += exp (z - m);
      else
        {
          sum = sum * exp (m - z) + 1.0;
          m = z;
        }
    }
  return m + log (sum) - (double)logits[target];
}

/**
 * slim_eval_row_nll_ref:
 * @logits: (array length=n_vocab): one row of logits
 * @n_vocab: row length (> 0)
 * @target: the token whose NLL is wanted
 *
 * Plain two-pass version of slim_eval_row_nll().
 *
 * Returns: -log softmax(logits)[target], in nats
 */
double
slim_eval_row_nll_ref (const float *logits, gint64 n_vocab, gint32 target)
{
  g_return_val_if_fail (logits != NULL && n_vocab > 0, NAN);
  g_return_val_if_fail (target >= 0 && target < n_vocab, NAN);
  double m = -INFINITY;
  for (gint64 v = 0; v < n_vocab; v++)
    m = MAX (m, (double)logits[v]);
  double sum = 0.0;
  for (gint64 v = 0; v < n_vocab; v++)
    sum += exp ((double)logits[v] - m);
  return m + log (sum) - (double)logits[target];
}

static double
slim_eval_logsumexp (const float *logits, gint64 n_vocab)
{
  double m = -INFINITY;
  for (gint64 v = 0; v < n_vocab; v++)
    m = MAX (m, (double)logits[v]);
  double sum = 0.0;
  for (gint64 v = 0; v < n_vocab; v++)
    sum += exp ((double)logits[v] - m);
  return m + log (sum);
}

/**
 * slim_eval_row_kl:
 * @logits_ref: (array length=n_vocab): reference logits of one position
 * @logits_model: (array length=n_vocab): model logits of the same position
 * @n_vocab: row length (> 0)
 *
 * Returns: KL(p_ref || p_model) in nats (>= 0 up to rounding)
 */
double
slim_eval_row_kl (const float *logits_ref, const float *logits_model, gint64 n_vocab)
{
  g_return_val_if_fail (logits_ref != NULL && logits_model != NULL && n_vocab > 0, NAN);
  double lse_ref = slim_eval_logsumexp (logits_ref, n_vocab);
  double lse_model = slim_eval_logsumexp (logits_model, n_vocab);
  /* sum p_r (lr - lm) with lr - lm = (zr - zm) - (lse_r - lse_m). */
  double shift = lse_ref - lse_model;
  double kl = 0.0;
  for (gint64 v = 0; v < n_vocab; v++)
    {
      double lr = (double)logits_ref[v] - lse_ref;
      kl += exp (lr) * ((double)logits_ref[v] - (double)logits_model[v] - shift);
    }
  return MAX (kl, 0.0);
}

/**
 * slim_eval_row_kl_ref:
 * @logits_ref: (array length=n_vocab): reference logits
 * @logits_model: (array length=n_vocab): model logits
 * @n_vocab: row length (> 0)
 *
 * Plain version of slim_eval_row_kl(): both log-softmax vectors are
 * materialized first.
 *
 * Returns: KL(p_ref || p_model) in nats
 */
double
slim_eval_row_kl_ref (const float *logits_ref, const float *logits_model, gint64 n_vocab)
{
  g_return_val_if_fail (logits_ref != NULL && logits_model != NULL && n_vocab > 0, NAN);
  double *log_p_ref = g_new (double, n_vocab);   /* (n_vocab) */
  double *log_p_model = g_new (double, n_vocab); /* (n_vocab) */
  double lse_ref = slim_eval_logsumexp (logits_ref, n_vocab);
  double lse_model = slim_eval_logsumexp (logits_model, n_vocab);
  for (gint64 v = 0; v < n_vocab; v++)
    {
      log_p_ref[v] = (double)logits_ref[v] - lse_ref;
      log_p_model[v] = (double)logits_model[v] - lse_model;
    }
  double kl = 0.0;
  for (gint64 v = 0; v < n_vocab; v++)
    kl += exp (log_p_ref[v]) * (log_p_ref[v] - log_p_model[v]);
  g_free (log_p_ref);
  g_free (log_p_model);
  return MAX (kl, 0.0);
}

/**
 * slim_eval_row_argmax:
 * @logits: (array length=n_vocab): one row of logits
 * @n_vocab: row length (> 0)
 *
 * Returns: the index of the largest logit (the first of equal ones)
 */
gint64
slim_eval_row_argmax (const float *logits, gint64 n_vocab)
{
  g_return_val_if_fail (logits != NULL && n_vocab > 0, -1);
  gint64 best = 0;
  for (gint64 v = 1; v < n_vocab; v++)
    if (logits[v] > logits[best])
      best = v;
  return best;
}

/* ---- running a batch -------------------------------------------------- */

/* One model of the run with its resident pseudo-layers. */
typedef struct
{
  SlimModel *model; /* transfer none */
  SlimLayer *embed;
  SlimLayer *head;
  const SlimForwardHooks *hooks; /* (nullable) */
} SlimEvalModel;

static void
slim_eval_model_clear (SlimEvalModel *m)
{
  g_clear_object (&m->embed);
  g_clear_object (&m->head);
}

typedef struct
{
  SlimProgress *progress;
  gint64 n_done_tokens;  /* tokens of finished batches */
  gint64 n_batch_tokens; /* tokens of the running batch */
  gint64 n_steps;        /* layer passes per batch (all models) */
  gint64 n_steps_done;
} SlimEvalTracker;

static void
slim_eval_step (SlimEvalTracker *tracker)
{
  tracker->n_steps_done++;
  slim_progress_update (tracker->progress,
                        tracker->n_done_tokens
                            + tracker->n_batch_tokens * tracker->n_steps_done / tracker->n_steps);
}

/* ids (n_tokens) of a packed batch -> final hidden states (n_tokens, hidden). */
static SlimTensor *
slim_eval_hidden (SlimEvalModel *m,
                  const gint32 *ids,
                  gint64 n_tokens,
                  const SlimBatch *batch,
                  SlimEvalTracker *tracker,
                  GError **error)
{
  g_autoptr (SlimTensor) hidden = slim_model_embed (m->model, m->embed, ids, n_tokens, error);
  if (hidden == NULL)
    return NULL;
  guint n_layers = slim_model_get_n_layers (m->model);
  for (guint l = 0; l < n_layers; l++)
    {
      g_autoptr (SlimLayer) layer = slim_model_load_layer (m->model, l, error);
      if (layer == NULL)
        return NULL;
      SlimTensor *next = slim_model_forward_layer (m->model, layer, hidden, batch, m->hooks, error);
      if (next == NULL)
        {
          g_prefix_error (error, "layer %u: ", l);
          return NULL;
        }
      slim_tensor_unref (hidden);
      hidden = next;
      slim_eval_step (tracker);
    }
  return g_steal_pointer (&hidden);
}

/* Logits (n_rows, vocab) for rows [row0, row0 + n_rows) of hidden. */
static SlimTensor *
slim_eval_logits_block (
    SlimEvalModel *m, SlimTensor *hidden, gint64 row0, gint64 n_rows, GError **error)
{
  gint64 hidden_size = slim_tensor_get_dim (hidden, 1);
  g_autoptr (SlimTensor) rows
      = slim_tensor_new_2d ("hidden_states", SLIM_DTYPE_F32, n_rows, hidden_size);
  const float *src = slim_tensor_get_data (hidden); /* (n_tokens, hidden) */
  float *dst = slim_tensor_get_data_mut (rows);     /* (n_rows, hidden) */
  memcpy (dst, src + row0 * hidden_size, (gsize)(n_rows * hidden_size) * sizeof (float));
  SlimTensor *logits = slim_model_forward_head (m->model, m->head, rows, m->hooks, error);
  if (logits != NULL
      && (slim_tensor_get_n_dims (logits) != 2 || slim_tensor_get_dim (logits, 0) != n_rows
          || slim_tensor_get_dtype (logits) != SLIM_DTYPE_F32))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "the model head returned logits of an unexpected shape");
      g_clear_pointer (&logits, slim_tensor_unref);
    }
  return logits;
}

typedef struct
{
  double sum_nll;
  double sum_kl;
  gint64 n_top1;
  gint64 n_predictions;
  float *record;         /* (nullable) (n_predictions, n_vocab) */
  const float *recorded; /* (nullable) (n_predictions, n_vocab): the reference */
} SlimEvalSums;

/* Scores one batch: windows [w0, w0 + n_seqs) of the stream. */
static gboolean
slim_eval_batch (SlimEvalModel *model,
                 SlimEvalModel *reference,
                 const gint32 *ids,
                 const SlimBatch *batch,
                 gint64 n_tokens,
                 gint64 n_vocab,
                 SlimEvalTracker *tracker,
                 SlimEvalSums *sums,
                 GError **error)
{
  g_autoptr (SlimTensor) hidden = slim_eval_hidden (model, ids, n_tokens, batch, tracker, error);
  if (hidden == NULL)
    return FALSE;
  g_autoptr (SlimTensor) hidden_ref = NULL;
  if (reference != NULL)
    {
      hidden_ref = slim_eval_hidden (reference, ids, n_tokens, batch, tracker, error);
      if (hidden_ref == NULL)
        {
          g_prefix_error (error, "reference model: ");
          return FALSE;
        }
    }

  gint64 rows_per_block = MAX (1, SLIM_EVAL_LOGIT_FLOATS / n_vocab);
  gint64 seq_start = 0;
  for (guint s = 0; s < batch->n_seqs; s++)
    {
      gint64 seq_len = batch->seq_lens[s];
      /* Rows 0 .. seq_len - 2 predict the next token of the window. */
      for (gint64 r = 0; r < seq_len - 1; r += rows_per_block)
        {
          gint64 n_rows = MIN (rows_per_block, seq_len - 1 - r);
          g_autoptr (SlimTensor) logits
              = slim_eval_logits_block (model, hidden, seq_start + r, n_rows, error);
          if (logits == NULL)
            return FALSE;
          g_autoptr (SlimTensor) logits_ref = NULL;
          if (reference != NULL)
            {
              logits_ref
                  = slim_eval_logits_block (reference, hidden_ref, seq_start + r, n_rows, error);
              if (logits_ref == NULL)
                {
                  g_prefix_error (error, "reference model: ");
                  return FALSE;
                }
            }
          const float *z = slim_tensor_get_data (logits); /* (n_rows, n_vocab) */
          const float *z_ref = logits_ref != NULL ? slim_tensor_get_data (logits_ref)
                                                  : NULL; /* (n_rows, n_vocab) */
          if (sums->recorded != NULL)
            z_ref = sums->recorded + sums->n_predictions * n_vocab;
          if (sums->record != NULL)
            memcpy (sums->record + sums->n_predictions * n_vocab, z,
                    (gsize)(n_rows * n_vocab) * sizeof (float));
          for (gint64 i = 0; i < n_rows; i++)
            {
              gint32 target = ids[seq_start + r + i + 1];
              const float *row = z + i * n_vocab;
              double nll = slim_eval_row_nll (row, n_vocab, target);
              if (!isfinite (nll))
                {
                  g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                               "non-finite log-likelihood at token %" G_GINT64_FORMAT
                               " of window %u of the batch",
                               r + i + 1, s);
                  return FALSE;
                }
              sums->sum_nll += nll;
              if (z_ref != NULL)
                {
                  const float *row_ref = z_ref + i * n_vocab;
                  double kl = slim_eval_row_kl (row_ref, row, n_vocab);
                  if (!isfinite (kl))
                    {
                      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                                   "non-finite KL divergence at token %" G_GINT64_FORMAT
                                   " of window %u of the batch",
                                   r + i + 1, s);
                      return FALSE;
                    }
                  sums->sum_kl += kl;
                  if (slim_eval_row_argmax (row, n_vocab)
                      == slim_eval_row_argmax (row_ref, n_vocab))
                    sums->n_top1++;
                }
              sums->n_predictions++;
            }
        }
      seq_start += seq_len;
    }
  slim_eval_step (tracker);
  return TRUE;
}

static gboolean
slim_eval_model_prepare (SlimEvalModel *m, GError **error)
{
  m->embed = slim_model_load_embed (m->model, error);
  if (m->embed == NULL)
    return FALSE;
  m->head = slim_model_load_head (m->model, error);
  return m->head != NULL;
}

gint64
slim_eval_count_predictions (gint64 n_ids, gint64 n_ctx)
{
  g_return_val_if_fail (n_ctx >= 2, 0);
  if (n_ids <= 0)
    return 0;
  return n_ids - (n_ids + n_ctx - 1) / n_ctx;
}

/**
 * slim_eval_run:
 * @model: the model to evaluate
 * @reference: (nullable): a reference model with the same vocabulary
 * @ids: (array length=n_ids): the token stream, BOS first if the
 *   tokenizer adds one
 * @n_ids: number of ids
 * @options: (nullable): window length, batch size, progress; %NULL for
 *   the defaults of slim_eval_options_init()
 * @out_result: (out caller-allocates): the figures
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success; on failure sets @error (see slim-eval.h)
 */
gboolean
slim_eval_run (SlimModel *model,
               SlimModel *reference,
               const gint32 *ids,
               gint64 n_ids,
               const SlimEvalOptions *options,
               SlimEvalResult *out_result,
               GError **error)
{
  g_return_val_if_fail (SLIM_IS_MODEL (model), FALSE);
  g_return_val_if_fail (reference == NULL || SLIM_IS_MODEL (reference), FALSE);
  g_return_val_if_fail (ids != NULL || n_ids == 0, FALSE);
  g_return_val_if_fail (out_result != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  SlimEvalOptions defaults;
  slim_eval_options_init (&defaults);
  if (options == NULL)
    options = &defaults;
  memset (out_result, 0, sizeof *out_result);

  const SlimModelConfig *config = slim_model_get_config (model);
  gint64 n_vocab = config->vocab_size;
  if (options->n_ctx < 2)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                   "the window length must be at least 2 tokens (got %" G_GINT64_FORMAT ")",
                   options->n_ctx);
      return FALSE;
    }
  if (reference != NULL && options->reference_logits != NULL)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                   "a reference model and recorded reference logits are exclusive");
      return FALSE;
    }
  if (reference != NULL && slim_model_get_config (reference)->vocab_size != n_vocab)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "the reference model's vocabulary (%" G_GINT64_FORMAT
                   " tokens) differs from the model's (%" G_GINT64_FORMAT ")",
                   slim_model_get_config (reference)->vocab_size, n_vocab);
      return FALSE;
    }
  for (gint64 i = 0; i < n_ids; i++)
    if (ids[i] < 0 || ids[i] >= n_vocab)
      {
        g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                     "token id %d at position %" G_GINT64_FORMAT
                     " is outside the vocabulary (0..%" G_GINT64_FORMAT ")",
                     ids[i], i, n_vocab - 1);
        return FALSE;
      }
  /* Windows of one token predict nothing: at least two tokens overall. */
  if (n_ids < 2)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                   "nothing to evaluate: the text has %" G_GINT64_FORMAT
                   " token(s), at least 2 are needed",
                   n_ids);
      return FALSE;
    }

  gint64 n_batch_tokens = options->n_batch_tokens;
  if (n_batch_tokens <= 0)
    {
      gint64 width = MAX (config->hidden_size,
                          MAX (config->intermediate_size, config->moe_intermediate_size));
      n_batch_tokens = SLIM_EVAL_BATCH_FLOATS / MAX (width, 1);
    }
  n_batch_tokens = MAX (n_batch_tokens, MIN (options->n_ctx, n_ids));
  gint64 n_windows = (n_ids + options->n_ctx - 1) / options->n_ctx;

  SlimEvalModel m = { .model = model, .hooks = options->hooks };
  SlimEvalModel r = { .model = reference };
  gboolean ok = slim_eval_model_prepare (&m, error);
  if (ok && reference != NULL)
    {
      ok = slim_eval_model_prepare (&r, error);
      if (!ok)
        g_prefix_error (error, "reference model: ");
    }

  g_autoptr (SlimProgress) progress
      = slim_progress_new ("eval", "tokens", n_ids, options->progress);
  SlimEvalTracker tracker = { .progress = progress };
  tracker.n_steps = slim_model_get_n_layers (model) + 1
                    + (reference != NULL ? slim_model_get_n_layers (reference) : 0);
  SlimEvalSums sums = { .record = options->record_logits, .recorded = options->reference_logits };
  g_autofree gint64 *seq_lens = g_new (gint64, n_windows); /* (n_windows) at most */

  gint64 w = 0;
  while (ok && w < n_windows)
    {
      /* Whole windows while they fit (always at least one). */
      gint64 start = w * options->n_ctx;
      guint n_seqs = 0;
      gint64 n_tokens = 0;
      while (w < n_windows)
        {
          gint64 len = MIN (options->n_ctx, n_ids - w * options->n_ctx);
          if (n_seqs > 0 && n_tokens + len > n_batch_tokens)
            break;
          seq_lens[n_seqs++] = len;
          n_tokens += len;
          w++;
        }
      SlimBatch batch = { .n_seqs = n_seqs, .seq_lens = seq_lens };
      tracker.n_batch_tokens = n_tokens;
      tracker.n_steps_done = 0;
      ok = slim_eval_batch (&m, reference != NULL ? &r : NULL, ids + start, &batch, n_tokens,
                            n_vocab, &tracker, &sums, error);
      tracker.n_done_tokens += n_tokens;
    }
  slim_progress_finish (progress);
  slim_eval_model_clear (&m);
  slim_eval_model_clear (&r);
  if (!ok)
    return FALSE;

  out_result->n_tokens = n_ids;
  out_result->n_windows = n_windows;
  out_result->n_predictions = sums.n_predictions;
  out_result->nll = sums.sum_nll / (double)sums.n_predictions;
  out_result->perplexity = exp (out_result->nll);
  out_result->has_reference = reference != NULL || options->reference_logits != NULL;
  if (out_result->has_reference)
    {
      out_result->kl = sums.sum_kl / (double)sums.n_predictions;
      out_result->top1 = (double)sums.n_top1 / (double)sums.n_predictions;
    }
  return TRUE;
}
