/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-schedule.c: the scheduling loop of the runner plugins (see
 * slim-schedule.h).
 */
#include "slim-schedule.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "slim-error.h"
#include "slim-phase-timer.h"
#include "slim-processor.h"
#include "slim-qlinear.h"
#include "slim-saver.h"
#include "slim-spill-factory.h"

/* expr (a gboolean) timed as phase (slim-phase-timer.h) */
#define TIMED(phase, expr)                                                                         \
  ({                                                                                               \
    SlimPhaseTiming timing_ = slim_phase_timer_begin (phase);                                      \
    gboolean ok_ = (expr);                                                                         \
    slim_phase_timer_end (timing_);                                                                \
    ok_;                                                                                           \
  })

/* Deployed hooks of the layer followed by one processor's own hooks. */
typedef struct
{
  SlimForwardHooks deployed;
  SlimForwardHooks own;
  SlimForwardHooks hooks; /* what the forward gets; user_data = this */
} SlimHookChain;

static gboolean
chain_linear_input (
    const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **error)
{
  SlimHookChain *chain = user_data;

  if (chain->deployed.linear_input != NULL
      && !chain->deployed.linear_input (module, x, n_tokens, n_in, chain->deployed.user_data,
                                        error))
    return FALSE;
  if (chain->own.linear_input != NULL
      && !chain->own.linear_input (module, x, n_tokens, n_in, chain->own.user_data, error))
    return FALSE;
  return TRUE;
}

/* The deployed integer product first (a processor observes inputs; it
 * does not compute products), then the processor's. */
static gboolean
chain_linear_forward (const char *module,
                      const float *x, /* (n_tokens, n_in) */
                      gint64 n_tokens,
                      gint64 n_in,
                      gint64 n_out,
                      float *y, /* (n_tokens, n_out) */
                      gboolean *done,
                      gpointer user_data,
                      GError **error)
{
  SlimHookChain *chain = user_data;

  if (chain->deployed.linear_forward != NULL
      && !chain->deployed.linear_forward (module, x, n_tokens, n_in, n_out, y, done,
                                          chain->deployed.user_data, error))
    return FALSE;
  if (!*done && chain->own.linear_forward != NULL
      && !chain->own.linear_forward (module, x, n_tokens, n_in, n_out, y, done,
                                     chain->own.user_data, error))
    return FALSE;
  return TRUE;
}

static gboolean
chain_qkv_states (const char *attn,
                  float *q,
                  float *k,
                  float *v,
                  gint64 n_tokens,
                  const SlimModelConfig *config,
                  gpointer user_data,
                  GError **error)
{
  SlimHookChain *chain = user_data;

  if (chain->deployed.qkv_states != NULL
      && !chain->deployed.qkv_states (attn, q, k, v, n_tokens, config, chain->deployed.user_data,
                                      error))
    return FALSE;
  if (chain->own.qkv_states != NULL
      && !chain->own.qkv_states (attn, q, k, v, n_tokens, config, chain->own.user_data, error))
    return FALSE;
  return TRUE;
}

static gboolean
chain_layer_input (const char *layer_prefix,
                   const float *x, /* (n_tokens, hidden) */
                   gint64 n_tokens,
                   gint64 hidden,
                   const SlimBatch *batch,
                   gpointer user_data,
                   GError **error)
{
  SlimHookChain *chain = user_data;

  if (chain->deployed.layer_input != NULL
      && !chain->deployed.layer_input (layer_prefix, x, n_tokens, hidden, batch,
                                       chain->deployed.user_data, error))
    return FALSE;
  if (chain->own.layer_input != NULL
      && !chain->own.layer_input (layer_prefix, x, n_tokens, hidden, batch, chain->own.user_data,
                                  error))
    return FALSE;
  return TRUE;
}

static void
chain_init (SlimHookChain *chain, SlimLayer *layer, SlimProcessor *processor)
{
  memset (chain, 0, sizeof (*chain));
  slim_qlinear_get_deployed_hooks (layer, &chain->deployed);
  if (processor != NULL)
    slim_processor_get_forward_hooks (processor, layer, &chain->own);
  chain->hooks.linear_input = chain_linear_input;
  if (chain->deployed.linear_forward != NULL || chain->own.linear_forward != NULL)
    chain->hooks.linear_forward = chain_linear_forward;
  chain->hooks.qkv_states = chain_qkv_states;
  if (chain->deployed.layer_input != NULL || chain->own.layer_input != NULL)
    chain->hooks.layer_input = chain_layer_input;
  chain->hooks.user_data = chain;
}

void
slim_schedule_accumulate_error (
    const float *a, const float *b, gint64 n, double *out_diff_sq, double *out_ref_sq)
{
  double diff_sq = 0.0, ref_sq = 0.0;

  for (gint64 i = 0; i < n; i++)
    {
      double d = (double)a[i] - (double)b[i];
      diff_sq += d * d;
      ref_sq += (double)b[i] * (double)b[i];
    }
  *out_diff_sq += diff_sq;
  *out_ref_sq += ref_sq;
}

/* State of one run. */
typedef struct
{
  SlimRunContext *ctx;
  SlimSpill *spill;
  SlimActivations *cur;    /* inputs of the layer being processed */
  SlimActivations *next;   /* its outputs */
  gint64 *seq_lens;        /* (n_samples) tokens per sample */
  guint n_samples;         /* the samples this process runs: first_sample.. */
  guint first_sample;      /* dataset index of local sample 0 */
  guint n_total;           /* samples of the whole run (all ranks) */
  SlimComm *comm;          /* (nullable) data-parallel run: the ranks */
  gboolean *saver_started; /* (n_savers) */
  gboolean checkpoints;    /* FALSE once a plugin turned out not to be resumable */
  gboolean next_deployed;  /* s->next came from a forward with the deployed hooks only */
  SlimActivations
      *float_out;         /* (nullable) the float layer's outputs on s->cur, for the layer error */
  gboolean capture_float; /* the running forward_all computes the float layer: keep its outputs */
  gboolean float_valid;   /* float_out holds this layer's float outputs */
} SlimSchedule;

/* Checkpoint blob names: "<position>:<type>" for processors and savers
 * (the position tells two plugins of one type apart), and the per-layer
 * errors so far, a GVariant "ad", among the processor blobs. */
#define LAYER_ERRORS_BLOB "layer_errors"

static char *
blob_name (guint position, const char *type_name)
{
  return g_strdup_printf ("%u:%s", position, type_name != NULL ? type_name : "?");
}

/* One forward of the layer over every sample of s->cur into s->next.
 * processor NULL: the deployed hooks only. */
static gboolean
forward_all (SlimSchedule *s, SlimLayer *layer, SlimProcessor *processor, GError **error)
{
  for (guint i = 0; i < s->n_samples; i++)
    {
      g_autoptr (SlimTensor) x = slim_activations_get (s->cur, i, error);
      g_autoptr (SlimTensor) y = NULL;
      SlimHookChain chain;
      SlimBatch batch = { 1, &s->seq_lens[i] };

      if (x == NULL)
        return FALSE;
      chain_init (&chain, layer, processor);
      y = slim_model_forward_layer (s->ctx->model, layer, x, &batch, &chain.hooks, error);
      if (y == NULL || !slim_activations_set (s->next, i, y, error))
        return FALSE;
      if (s->capture_float && !slim_activations_set (s->float_out, i, y, error))
        return FALSE;
    }
  return TRUE;
}

/* Rank after rank in rank order: rank k imports the statistics of ranks
 * 0..k-1 (a broadcast of rank k-1's), then runs its forward (forward
 * TRUE) or replays what it recorded during its parallel forward (FALSE),
 * and hands its statistics on; the others wait.  At the end every rank
 * holds the last rank's statistics: everything, in sample order. */
static gboolean
hand_on_in_rank_order (
    SlimSchedule *s, SlimLayer *layer, SlimProcessor *processor, gboolean forward, GError **error)
{
  const gint rank = slim_comm_rank (s->comm), size = slim_comm_size (s->comm);
  g_autoptr (GBytes) handed = NULL;

  for (gint k = 0; k < size; k++)
    {
      if (rank == k)
        {
          if (k > 0 && !slim_processor_import_observers (processor, layer, handed, FALSE, error))
            return FALSE;
          if (forward ? !TIMED ("ordered forward", forward_all (s, layer, processor, error))
                      : !TIMED ("replay records",
                                slim_processor_replay_recorded (processor, layer, error)))
            return FALSE;
          g_clear_pointer (&handed, g_bytes_unref);
          handed = slim_processor_export_observers (processor, layer, error);
          if (handed == NULL)
            return FALSE;
        }
      if (!TIMED ("hand on (wait, send)", slim_comm_broadcast_bytes (s->comm, &handed, k, error)))
        return FALSE;
    }
  return rank == size - 1
         || slim_processor_import_observers (processor, layer, handed, FALSE, error);
}

/* This rank's calibration forward of a processor in a data-parallel run,
 * leaving on every rank the statistics one process would have gathered
 * over all samples (slim-processor.h: export/import_observers).
 * Ordered processors (the forward reads the running statistics): the
 * forwards run rank after rank (hand_on_in_rank_order).  Recording
 * processors (the forward reads nothing of them, but some must be
 * accumulated in sample order: GPTQ Hessians): the forwards run at once,
 * recording; the records are replayed rank after rank.  The rest: every
 * rank runs its forward, then the exported statistics of all ranks are
 * imported in rank order (rank 0's replacing, the others merged), the
 * same sequence on every rank. */
static gboolean
calibrate_distributed (SlimSchedule *s, SlimLayer *layer, SlimProcessor *processor, GError **error)
{
  const gint rank = slim_comm_rank (s->comm), size = slim_comm_size (s->comm);
  g_autoptr (GBytes) own = NULL;

  if (slim_processor_distributed_ordered (processor))
    return hand_on_in_rank_order (s, layer, processor, TRUE, error);
  if (slim_processor_start_recording (processor, layer))
    return TIMED ("calibration forward", forward_all (s, layer, processor, error))
           && hand_on_in_rank_order (s, layer, processor, FALSE, error);

  if (!forward_all (s, layer, processor, error))
    return FALSE;
  own = slim_processor_export_observers (processor, layer, error);
  if (own == NULL)
    return FALSE;
  for (gint k = 0; k < size; k++)
    {
      g_autoptr (GBytes) theirs = rank == k ? g_bytes_ref (own) : NULL;

      if (!slim_comm_broadcast_bytes (s->comm, &theirs, k, error)
          || !slim_processor_import_observers (processor, layer, theirs, k > 0, error))
        return FALSE;
    }
  return TRUE;
}

/* Sums per-sample partials (n_total of them, this rank's filled, the
 * others zero) over the ranks: exact, as every slot has one non-zero
 * term; the caller then adds them in sample order, as one process does. */
static gboolean
gather_sample_partials (SlimSchedule *s, double *partials, gsize n, GError **error)
{
  return s->comm == NULL || slim_comm_allreduce_sum_f64 (s->comm, partials, n, error);
}

/* Relative output error of the processed layer as deployed against the
 * float layer on the same inputs (in the stream's basis: rotated by the
 * processors that change it).  The outputs in s->next are used when
 * they came from a forward with the deployed hooks only; otherwise they
 * came from a processor's calibration forward, which may differ from the
 * deployed layer (gptq quantizes the weights after that forward, static
 * activations were quantized with running ranges), and the deployed layer
 * is run once more for the measure.  The float outputs come from
 * s->float_out when the first processor's calibration forward computed
 * the float layer (calibration_is_float: smoothing processors, which
 * change weights only in postprocess), else from one forward of a freshly
 * loaded layer (fake-quantized calibration forwards: linear_quant,
 * autoround; rotations). */
static gboolean
layer_error (SlimSchedule *s, SlimLayer *layer, guint index, double *out_error, GError **error)
{
  /* the float outputs kept from a float calibration forward (process_unit)
   * are the reference's bits: no fresh layer, no further forward */
  g_autoptr (SlimLayer) ref
      = s->float_valid ? NULL : slim_model_load_layer (s->ctx->model, index, error);
  g_autofree double *partials = g_new0 (double, 2 * MAX (s->n_total, 1)); /* [n_total, 2] */
  double diff_sq = 0.0, ref_sq = 0.0;

  if (!s->float_valid && ref == NULL)
    return FALSE;
  /* a rotation changed the stream's basis: the float reference is the
   * original layer rotated the same way (slim_processor_class_set_changes_basis) */
  for (guint p = 0; p < s->ctx->processors->len; p++)
    {
      SlimProcessor *processor = g_ptr_array_index (s->ctx->processors, p);

      if (ref != NULL && slim_processor_changes_basis (processor)
          && !slim_processor_preprocess (processor, ref, error))
        return FALSE;
    }
  for (guint i = 0; i < s->n_samples; i++)
    {
      double *p = &partials[2 * (s->first_sample + i)];
      g_autoptr (SlimTensor) x = slim_activations_get (s->cur, i, error);
      g_autoptr (SlimTensor) yq = NULL;
      g_autoptr (SlimTensor) yf = NULL;
      SlimBatch batch = { 1, &s->seq_lens[i] };

      if (x == NULL)
        return FALSE;
      yf = ref != NULL ? slim_model_forward_layer (s->ctx->model, ref, x, &batch, NULL, error)
                       : slim_activations_get (s->float_out, i, error);
      if (yf == NULL)
        return FALSE;
      if (s->next_deployed)
        yq = slim_activations_get (s->next, i, error);
      else
        {
          SlimHookChain chain;

          chain_init (&chain, layer, NULL);
          yq = slim_model_forward_layer (s->ctx->model, layer, x, &batch, &chain.hooks, error);
        }
      if (yq == NULL)
        return FALSE;
      slim_schedule_accumulate_error (slim_tensor_get_data (yq), slim_tensor_get_data (yf),
                                      slim_tensor_get_n_elements (yf), &p[0], &p[1]);
    }
  if (!gather_sample_partials (s, partials, 2 * (gsize)s->n_total, error))
    return FALSE;
  /* in sample order: the bytes of one process for any number of ranks */
  for (guint i = 0; i < s->n_total; i++)
    {
      diff_sq += partials[2 * i];
      ref_sq += partials[2 * i + 1];
    }
  *out_error = ref_sq > 0.0 ? sqrt (diff_sq / ref_sq) : 0.0;
  return TRUE;
}

/* TRUE when the calibration forward of @processor, the first of the spec,
 * computes the float reference of the layer error bit for bit: the
 * processor says its preprocess and hooks keep the float layer
 * (slim_processor_class_set_calibrates_float), and no processor changes
 * the basis (the reference would be the rotated original).  Everything
 * else (fake-quantized calibration forwards: linear_quant, autoround, ...;
 * rotations) keeps the separate float forward. */
static gboolean
calibration_is_float (SlimSchedule *s, SlimProcessor *processor)
{
  if (!slim_processor_calibrates_float (processor))
    return FALSE;
  for (guint p = 0; p < s->ctx->processors->len; p++)
    if (slim_processor_changes_basis (g_ptr_array_index (s->ctx->processors, p)))
      return FALSE;
  return TRUE;
}

/* Every processor on one unit; decoder layers get calibration forwards. */
static gboolean
process_unit (SlimSchedule *s, SlimLayer *layer, GError **error)
{
  const gboolean decoder = slim_layer_get_index (layer) >= 0;
  gboolean forwarded = FALSE;
  gboolean stale = FALSE; /* the last forward ran before a refreshing postprocess */
  GPtrArray *processors = s->ctx->processors;

  for (guint p = 0; p < processors->len; p++)
    {
      SlimProcessor *processor = g_ptr_array_index (processors, p);

      if (!TIMED ("preprocess", slim_processor_preprocess (processor, layer, error)))
        return FALSE;
      if (decoder && s->n_total > 0 && !slim_processor_is_data_free (processor))
        {
          s->capture_float = p == 0 && s->float_out != NULL && calibration_is_float (s, processor);
          if (s->comm != NULL
                  ? !TIMED ("calibrate (all)", calibrate_distributed (s, layer, processor, error))
                  : !TIMED ("calibration forward", forward_all (s, layer, processor, error)))
            {
              s->capture_float = FALSE;
              return FALSE;
            }
          s->float_valid = s->float_valid || s->capture_float;
          s->capture_float = FALSE;
          forwarded = TRUE;
          stale = FALSE;
        }
      if (!TIMED ("postprocess", slim_processor_postprocess (processor, layer, error)))
        return FALSE;
      stale = stale || slim_processor_refreshes_outputs (processor);
    }
  s->next_deployed = !forwarded || stale;
  if (decoder && s->n_total > 0 && s->next_deployed
      && !TIMED ("deployed forward", forward_all (s, layer, NULL, error)))
    return FALSE;
  return TRUE;
}

static gboolean
save_unit (SlimSchedule *s, SlimLayer *layer, GError **error)
{
  /* in a data-parallel run only the rank with the output folder writes */
  if (s->comm != NULL && s->ctx->out_dir == NULL)
    return TRUE;
  for (guint i = 0; i < s->ctx->savers->len; i++)
    if (!slim_saver_write_layer (g_ptr_array_index (s->ctx->savers, i), layer, error))
      return FALSE;
  return TRUE;
}

/* Embeds every calibration sample with the (processed) embedding layer. */
static gboolean
embed_samples (SlimSchedule *s, SlimLayer *embed, GError **error)
{
  for (guint i = 0; i < s->n_samples; i++)
    {
      gint64 n_tokens = 0;
      const gint32 *ids = slim_dataset_get_sample (s->ctx->dataset, s->first_sample + i, &n_tokens);
      g_autoptr (SlimTensor) h = slim_model_embed (s->ctx->model, embed, ids, n_tokens, error);

      if (h == NULL || !slim_activations_set (s->cur, i, h, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
swap_inputs (SlimSchedule *s, GError **error)
{
  SlimActivations *tmp = s->cur;

  s->cur = s->next;
  s->next = tmp;
  return slim_activations_clear (s->next, error);
}

/* Fills the checkpoint's blobs; FALSE with error on a failure, FALSE
 * without error when some plugin cannot resume (checkpoints then stop). */
static gboolean
fill_checkpoint (SlimSchedule *s, SlimCheckpoint *checkpoint, GError **error)
{
  GError *local_error = NULL;
  SlimRunContext *ctx = s->ctx;

  for (guint p = 0; p < ctx->processors->len && local_error == NULL; p++)
    {
      SlimProcessor *processor = g_ptr_array_index (ctx->processors, p);
      g_autofree char *name = blob_name (p, slim_processor_get_type_name (processor));
      g_autoptr (GBytes) state = slim_processor_save_state (processor, &local_error);

      if (state != NULL)
        slim_checkpoint_set_processor_state (checkpoint, name, state);
    }
  /* savers not begun (no output folder) have nothing to resume */
  for (guint i = 0; i < ctx->savers->len && local_error == NULL; i++)
    if (s->saver_started[i])
      {
        SlimSaver *saver = g_ptr_array_index (ctx->savers, i);
        g_autofree char *name = blob_name (i, slim_saver_get_type_name (saver));
        g_autoptr (GBytes) progress = slim_saver_save_progress (saver, &local_error);

        if (progress != NULL)
          slim_checkpoint_set_saver_progress (checkpoint, name, progress);
      }
  if (g_error_matches (local_error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE))
    {
      g_warning ("no more checkpoints: %s; an interrupted run will start again from the first "
                 "layer",
                 local_error->message);
      g_clear_error (&local_error);
      s->checkpoints = FALSE;
      return FALSE;
    }
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (ctx->layer_errors != NULL && ctx->layer_errors->len > 0)
    {
      g_autoptr (GVariant) errors = g_variant_ref_sink (g_variant_new_fixed_array (
          G_VARIANT_TYPE_DOUBLE, ctx->layer_errors->data, ctx->layer_errors->len, sizeof (double)));
      g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (errors);
      slim_checkpoint_set_processor_state (checkpoint, LAYER_ERRORS_BLOB, bytes);
    }
  return TRUE;
}

/* work_dir/checkpoint.h5 -> work_dir/prev/checkpoint.h5 (rename: atomic). */
static gboolean
keep_previous_checkpoint (const char *work_dir, GError **error)
{
  g_autofree char *cur = g_build_filename (work_dir, SLIM_CHECKPOINT_FILE_NAME, NULL);
  g_autofree char *dir = g_build_filename (work_dir, SLIM_SCHEDULE_PREVIOUS_CHECKPOINT_DIR, NULL);
  g_autofree char *prev = g_build_filename (dir, SLIM_CHECKPOINT_FILE_NAME, NULL);

  if (!g_file_test (cur, G_FILE_TEST_EXISTS))
    return TRUE;
  if (g_mkdir_with_parents (dir, 0755) != 0 || g_rename (cur, prev) != 0)
    {
      int saved = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "cannot keep the previous checkpoint %s as %s: %s", cur, prev,
                   g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

static gboolean
save_checkpoint (SlimSchedule *s, guint index, GError **error)
{
  g_autoptr (SlimCheckpoint) checkpoint = NULL;
  const char *kill_after;

  if (s->ctx->checkpoint_hashes == NULL || s->ctx->work_dir == NULL || !s->checkpoints)
    return TRUE;
  checkpoint = slim_checkpoint_new (s->ctx->checkpoint_hashes);
  slim_checkpoint_set_layer_done (checkpoint, index);
  if (!fill_checkpoint (s, checkpoint, error))
    return s->checkpoints ? FALSE : TRUE;
  /* a data-parallel rank keeps its previous checkpoint until every rank
   * saved this one: a kill between two ranks' saves leaves a layer that
   * every rank has (slim-schedule.h) */
  if (s->comm != NULL && !keep_previous_checkpoint (s->ctx->work_dir, error))
    return FALSE;
  if (!slim_checkpoint_save (checkpoint, s->ctx->work_dir, s->n_samples > 0 ? s->cur : NULL, error))
    return FALSE;
  if (s->comm != NULL && !slim_comm_barrier (s->comm, error))
    return FALSE;

  /* Test hook (see slim-schedule.h): simulate a crash after layer k. */
  kill_after = g_getenv (SLIM_SCHEDULE_KILL_ENV);
  if (kill_after != NULL && *kill_after != '\0'
      && g_ascii_strtoll (kill_after, NULL, 10) == (gint64)index)
    raise (SIGKILL);
  return TRUE;
}

/* Test hook (see slim-schedule.h): SLIMFLOW_TEST_STOP_RANK "rank:layer:kill"
 * or "rank:layer:hang" stops that rank of a data-parallel run as it starts
 * the layer, while the others go on into it. */
static void
stop_rank_test_hook (SlimSchedule *s, guint index)
{
  const char *spec = g_getenv (SLIM_SCHEDULE_STOP_RANK_ENV);
  g_auto (GStrv) parts = NULL;

  if (spec == NULL || *spec == '\0' || s->comm == NULL)
    return;
  parts = g_strsplit (spec, ":", 3);
  if (g_strv_length (parts) != 3 || g_ascii_strtoll (parts[0], NULL, 10) != slim_comm_rank (s->comm)
      || g_ascii_strtoll (parts[1], NULL, 10) != (gint64)index)
    return;
  if (strcmp (parts[2], "kill") == 0)
    raise (SIGKILL);
  if (strcmp (parts[2], "hang") == 0)
    for (;;)
      g_usleep (G_USEC_PER_SEC);
}

static gboolean
resume_incompatible (GError **error, const char *what, const char *name)
{
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "the checkpoint holds no %s for %s: it was not written by this pipeline", what,
               name);
  return FALSE;
}

/* Takes the state of the interrupted run back from ctx->resume_from:
 * processors, savers (started), the next layer's inputs, the layer
 * errors so far.  *out_first is the first layer left to do. */
static gboolean
resume_run (SlimSchedule *s, guint *out_first, GError **error)
{
  SlimRunContext *ctx = s->ctx;
  SlimCheckpoint *checkpoint = ctx->resume_from;
  gint64 done = slim_checkpoint_get_layer_done (checkpoint);
  guint n_layers = slim_model_get_n_layers (ctx->model);
  GBytes *blob;

  if (done < 0 || done >= (gint64)n_layers)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "the checkpoint says layer %" G_GINT64_FORMAT " is done; the model has %u", done,
                   n_layers);
      return FALSE;
    }
  for (guint p = 0; p < ctx->processors->len; p++)
    {
      SlimProcessor *processor = g_ptr_array_index (ctx->processors, p);
      g_autofree char *name = blob_name (p, slim_processor_get_type_name (processor));

      blob = slim_checkpoint_get_processor_state (checkpoint, name);
      if (blob == NULL)
        return resume_incompatible (error, "state", name);
      if (!slim_processor_restore_state (processor, blob, error))
        return FALSE;
    }
  /* a data-parallel rank without the output folder runs no saver */
  for (guint i = 0; i < ctx->savers->len && ctx->out_dir != NULL; i++)
    {
      SlimSaver *saver = g_ptr_array_index (ctx->savers, i);
      g_autofree char *name = blob_name (i, slim_saver_get_type_name (saver));

      blob = slim_checkpoint_get_saver_progress (checkpoint, name);
      if (blob == NULL)
        return resume_incompatible (error, "progress", name);
      if (!slim_saver_resume (saver, ctx->model, ctx->out_dir, blob, error))
        return FALSE;
      s->saver_started[i] = TRUE;
    }
  if (s->n_samples > 0)
    {
      if (slim_checkpoint_get_n_inputs (checkpoint) != s->n_samples)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "the checkpoint holds %u calibration inputs, the run has %u",
                       slim_checkpoint_get_n_inputs (checkpoint), s->n_samples);
          return FALSE;
        }
      if (!slim_checkpoint_read_inputs (checkpoint, s->cur, error))
        return FALSE;
    }
  blob = slim_checkpoint_get_processor_state (checkpoint, LAYER_ERRORS_BLOB);
  if (ctx->layer_errors != NULL && blob != NULL)
    {
      g_autoptr (GVariant) errors
          = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("ad"), blob, FALSE));
      gsize n = 0;
      const double *values = g_variant_get_fixed_array (errors, &n, sizeof (double));

      if (n != (gsize)done + 1)
        return resume_incompatible (error, "error of every layer done", LAYER_ERRORS_BLOB);
      g_array_set_size (ctx->layer_errors, 0);
      g_array_append_vals (ctx->layer_errors, values, (guint)n);
    }
  *out_first = (guint)done + 1;
  return TRUE;
}

/* Decoder layers first.. then the head; the embeddings when first is 0
 * and the run is not resumed. */
static gboolean
run_layers (
    SlimSchedule *s, gboolean all_resident, guint first, GCancellable *cancellable, GError **error)
{
  SlimRunContext *ctx = s->ctx;
  SlimModel *model = ctx->model;
  guint n_layers = slim_model_get_n_layers (model);
  g_autoptr (GPtrArray) resident = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (SlimLayer) embed = NULL;
  g_autoptr (SlimLayer) head = NULL;

  if (ctx->resume_from == NULL)
    {
      embed = slim_model_load_embed (model, error);
      if (embed == NULL
          || !TIMED ("embeddings", process_unit (s, embed, error) && embed_samples (s, embed, error)
                                       && save_unit (s, embed, error)))
        return FALSE;
      g_clear_object (&embed);
    }

  if (all_resident)
    for (guint i = first; i < n_layers; i++)
      {
        SlimLayer *layer = slim_model_load_layer (model, i, error);
        if (layer == NULL)
          return FALSE;
        g_ptr_array_add (resident, layer);
      }

  for (guint i = first; i < n_layers; i++)
    {
      g_autoptr (SlimLayer) layer = NULL;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      {
        SlimPhaseTiming timing = slim_phase_timer_begin ("load layer");
        layer = all_resident ? g_object_ref (g_ptr_array_index (resident, i - first))
                             : slim_model_load_layer (model, i, error);
        slim_phase_timer_end (timing);
      }
      stop_rank_test_hook (s, i);
      s->float_valid = FALSE;
      if (layer == NULL || !process_unit (s, layer, error))
        return FALSE;
      /* without calibration samples there is nothing to measure on */
      if (ctx->layer_errors != NULL && s->n_total > 0)
        {
          double err = 0.0;
          if (!TIMED ("layer error", layer_error (s, layer, i, &err, error)))
            return FALSE;
          g_array_append_val (ctx->layer_errors, err);
        }
      if (s->float_valid)
        {
          s->float_valid = FALSE;
          if (!slim_activations_clear (s->float_out, error))
            return FALSE;
        }
      if (!TIMED ("save", save_unit (s, layer, error)))
        return FALSE;
      if (s->n_samples > 0 && !swap_inputs (s, error))
        return FALSE;
      if (!TIMED ("checkpoint", save_checkpoint (s, i, error)))
        return FALSE;
      if (ctx->progress != NULL)
        ctx->progress (i, n_layers, ctx->progress_data);
    }
  g_ptr_array_set_size (resident, 0);

  head = slim_model_load_head (model, error);
  if (head == NULL || !TIMED ("head", process_unit (s, head, error) && save_unit (s, head, error)))
    return FALSE;
  return TRUE;
}

/* comm NULL: one process; otherwise this rank's share of a
 * data-parallel run (no checkpoints, no resume). */
static gboolean
schedule_run (SlimRunContext *ctx,
              gboolean all_resident,
              SlimComm *comm,
              GCancellable *cancellable,
              GError **error)
{
  SlimSchedule s = { 0 };
  guint64 budget;
  gboolean ok = FALSE;
  guint n_savers;
  guint first = 0;

  g_return_val_if_fail (ctx != NULL, FALSE);
  g_return_val_if_fail (SLIM_IS_MODEL (ctx->model), FALSE);
  /* slim_runner_run() reports this one to the user */
  g_return_val_if_fail (ctx->resume_from == NULL || ctx->out_dir != NULL || comm != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  s.ctx = ctx;
  s.comm = comm;
  s.checkpoints = TRUE;
  n_savers = ctx->savers->len;
  s.saver_started = g_new0 (gboolean, MAX (n_savers, 1));
  if (ctx->dataset != NULL)
    {
      gboolean needs_data = FALSE;
      for (guint p = 0; p < ctx->processors->len; p++)
        needs_data
            = needs_data || !slim_processor_is_data_free (g_ptr_array_index (ctx->processors, p));
      s.n_total = needs_data ? slim_dataset_get_n_samples (ctx->dataset) : 0;
    }
  s.n_samples = s.n_total;
  if (comm != NULL)
    {
      gsize share_first = 0, share_count = 0;

      slim_comm_partition (s.n_total, slim_comm_size (comm), slim_comm_rank (comm), &share_first,
                           &share_count);
      s.first_sample = (guint)share_first;
      s.n_samples = (guint)share_count;
    }
  s.seq_lens = g_new0 (gint64, MAX (s.n_samples, 1));
  for (guint i = 0; i < s.n_samples; i++)
    slim_dataset_get_sample (ctx->dataset, s.first_sample + i, &s.seq_lens[i]);

  if (ctx->work_dir != NULL)
    s.spill = slim_spill_new (SLIM_SPILL_KIND_AUTO, ctx->work_dir, error);
  else
    s.spill = slim_spill_new (SLIM_SPILL_KIND_MEMORY, NULL, error);
  if (s.spill == NULL)
    goto out;
  /* Three shares of the budget: this layer's inputs, the next layer's, and
   * what a processor keeps of one layer (processors run one after another
   * and free what they kept in postprocess); 0 means no limit. */
  /* With the per-layer error measure, a fourth share: the float outputs
   * of a float calibration forward kept as the error's reference. */
  budget = ctx->max_memory_bytes == 0 ? G_MAXUINT64
                                      : ctx->max_memory_bytes / (ctx->layer_errors != NULL ? 4 : 3);
  s.cur = slim_activations_new ("inputs_a", MAX (s.n_samples, 1), budget, s.spill);
  s.next = slim_activations_new ("inputs_b", MAX (s.n_samples, 1), budget, s.spill);
  if (ctx->layer_errors != NULL)
    s.float_out = slim_activations_new ("float_outputs", MAX (s.n_samples, 1), budget, s.spill);

  for (guint p = 0; p < ctx->processors->len; p++)
    {
      slim_processor_set_keep_storage (g_ptr_array_index (ctx->processors, p), s.spill, budget);
      slim_processor_set_run_store (g_ptr_array_index (ctx->processors, p), ctx->store);
      slim_processor_set_comm (g_ptr_array_index (ctx->processors, p),
                               comm != NULL && slim_comm_size (comm) > 1 ? comm : NULL);
    }
  for (guint p = 0; p < ctx->processors->len; p++)
    {
      SlimProcessor *processor = g_ptr_array_index (ctx->processors, p);

      if (!slim_processor_pre_run (processor, ctx->model, error))
        {
          if (slim_processor_get_config_location (processor) != NULL)
            g_prefix_error (error, "%s: ", slim_processor_get_config_location (processor));
          goto out;
        }
    }
  if (ctx->resume_from != NULL)
    {
      if (!resume_run (&s, &first, error))
        goto out;
    }
  else if (ctx->out_dir != NULL)
    for (guint i = 0; i < n_savers; i++)
      {
        if (!slim_saver_begin (g_ptr_array_index (ctx->savers, i), ctx->model, ctx->out_dir, error))
          goto out;
        s.saver_started[i] = TRUE;
      }

  if (!run_layers (&s, all_resident, first, cancellable, error))
    goto out;

  for (guint p = 0; p < ctx->processors->len; p++)
    if (!slim_processor_post_run (g_ptr_array_index (ctx->processors, p), error))
      goto out;
  /* every rank is done with its work folder before rank 0 removes them */
  if (comm != NULL && !slim_comm_barrier (comm, error))
    goto out;
  for (guint i = 0; i < n_savers; i++)
    {
      if (s.saver_started[i] && !slim_saver_finish (g_ptr_array_index (ctx->savers, i), error))
        goto out;
      s.saver_started[i] = FALSE;
    }
  ok = TRUE;

out:
  slim_phase_timer_report (comm != NULL ? slim_comm_rank (comm) : 0);
  for (guint p = 0; p < ctx->processors->len; p++)
    slim_processor_set_comm (g_ptr_array_index (ctx->processors, p), NULL);
  for (guint i = 0; i < n_savers; i++)
    if (s.saver_started[i])
      slim_saver_abort (g_ptr_array_index (ctx->savers, i));
  g_clear_object (&s.cur);
  g_clear_object (&s.next);
  g_clear_object (&s.float_out);
  if (s.spill != NULL)
    {
      slim_spill_clear (s.spill, NULL);
      g_object_unref (s.spill);
    }
  g_free (s.seq_lens);
  g_free (s.saver_started);
  return ok;
}

gboolean
slim_schedule_run (SlimRunContext *ctx,
                   gboolean all_resident,
                   GCancellable *cancellable,
                   GError **error)
{
  return schedule_run (ctx, all_resident, NULL, cancellable, error);
}

gboolean
slim_schedule_check_distributed (SlimRunContext *ctx, const char *runner_name, GError **error)
{
  g_return_val_if_fail (ctx != NULL && ctx->processors != NULL, FALSE);

  for (guint p = 0; p < ctx->processors->len; p++)
    {
      SlimProcessor *processor = g_ptr_array_index (ctx->processors, p);
      const char *name = slim_processor_get_type_name (processor);

      if (!slim_processor_supports_distributed (processor))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s: processor %u (%s) does not support distributed calibration "
                       "(supports_distributed is false); use runner layer_wise in one process",
                       runner_name, p + 1, name != NULL ? name : G_OBJECT_TYPE_NAME (processor));
          return FALSE;
        }
      if (!slim_processor_is_data_free (processor)
          && !slim_processor_can_exchange_observers (processor))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s: processor %u (%s) says it supports distributed calibration but "
                       "cannot exchange its statistics between ranks (no export_observers / "
                       "import_observers); use runner layer_wise in one process",
                       runner_name, p + 1, name != NULL ? name : G_OBJECT_TYPE_NAME (processor));
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
slim_schedule_run_distributed (SlimRunContext *ctx,
                               const char *runner_name,
                               GCancellable *cancellable,
                               GError **error)
{
  g_autoptr (SlimComm) single = NULL;
  SlimComm *comm;

  g_return_val_if_fail (ctx != NULL, FALSE);

  if (!slim_schedule_check_distributed (ctx, runner_name, error))
    return FALSE;
  comm = ctx->comm;
  if (comm == NULL)
    comm = single = slim_comm_new_single ();
  return schedule_run (ctx, FALSE, comm, cancellable, error);
}
