/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-eval.h: perplexity of a model on a token stream, and its agreement
 * with a reference model (mean KL divergence, top-1 agreement).
 *
 * Protocol (the GPTQ one, /work/shared/ref/REFERENCE.md): the ids (BOS
 * once at the very start, as the tokenizer gives them) are cut into
 * non-overlapping windows of n_ctx tokens from token 0; the last, shorter
 * window is kept.  In a window of n tokens the model sees only that
 * window and predicts tokens 2..n: n - 1 predictions.  The mean negative
 * log-likelihood over all predictions is accumulated in double;
 * perplexity = exp(mean NLL).
 *
 * With a reference model, every prediction also contributes
 * KL(p_ref || p_model) = sum_v p_ref(v) (log p_ref(v) - log p_model(v))
 * and whether the two argmaxes agree.
 *
 * Memory is bounded: windows are packed into batches of at most
 * n_batch_tokens tokens that run layer by layer, and logits are computed
 * a block of rows at a time, never for a whole batch.
 */
#pragma once

#include <glib.h>
#include "slim-model.h"

G_BEGIN_DECLS

#define SLIM_EVAL_DEFAULT_CTX 2048

typedef struct
{
  gint64 n_ctx;                  /* window length in tokens, >= 2 (default 2048) */
  gint64 n_batch_tokens;         /* tokens per forward batch; 0 = chosen from the model size */
  gboolean progress;             /* draw a progress line on stderr */
  const SlimForwardHooks *hooks; /* (nullable) applied to the model's forward, not the
                                  * reference's (e.g. slim_quant_model_get_hooks) */
  /* A reference computed once for several models (slimflow ablate): */
  float *record_logits;          /* (nullable) out (n_predictions, n_vocab): the model's
                                  * logits of every prediction, in stream order */
  const float *reference_logits; /* (nullable) (n_predictions, n_vocab): logits recorded by
                                  * an earlier run on the same ids and n_ctx, used as the
                                  * reference instead of a reference model (which must then
                                  * be NULL); gives the figures that model would give */
} SlimEvalOptions;

typedef struct
{
  gint64 n_tokens; /* tokens evaluated (BOS included) */
  gint64 n_windows;
  gint64 n_predictions; /* sum over windows of (length - 1) */
  double nll;           /* mean negative log-likelihood, nats */
  double perplexity;    /* exp (nll) */
  gboolean has_reference;
  double kl;   /* mean KL(reference || model), nats; with a reference only */
  double top1; /* fraction of predictions whose argmax agrees; with a reference only */
} SlimEvalResult;

/* Predictions of a stream of n_ids tokens cut into windows of n_ctx:
 * n_ids - number of windows (the rows of record_logits). */
gint64 slim_eval_count_predictions (gint64 n_ids, gint64 n_ctx);

/* n_ctx = SLIM_EVAL_DEFAULT_CTX, automatic batch, no progress. */
void slim_eval_options_init (SlimEvalOptions *options);

/* Evaluates model (and reference, nullable) on ids (n_ids).  Errors:
 * SLIM_MODEL_ERROR_INPUT for ids outside the vocabulary or fewer than two
 * tokens, SLIM_MODEL_ERROR_SHAPE when the vocabularies differ, and
 * whatever the forward pass reports. */
gboolean slim_eval_run (SlimModel *model,
                        SlimModel *reference,
                        const gint32 *ids,
                        gint64 n_ids,
                        const SlimEvalOptions *options,
                        SlimEvalResult *out_result,
                        GError **error);

/* Row kernels, logits (n_vocab) of one position.  NLL of target in
 * nats: logsumexp (logits) - logits[target], one pass with a running
 * maximum, in double.  The _ref twin takes two passes. */
double slim_eval_row_nll (const float *logits, gint64 n_vocab, gint32 target);
double slim_eval_row_nll_ref (const float *logits, gint64 n_vocab, gint32 target);
/* KL(p_ref || p_model) for one position, in double; _ref materializes
 * both log-probability vectors. */
double slim_eval_row_kl (const float *logits_ref, const float *logits_model, gint64 n_vocab);
double slim_eval_row_kl_ref (const float *logits_ref, const float *logits_model, gint64 n_vocab);
/* Index of the largest logit (the first one on ties). */
gint64 slim_eval_row_argmax (const float *logits, gint64 n_vocab);

G_END_DECLS
