/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-schedule.h: the layer-streaming scheduler shared by the runner
 * plugins (msModelSlim's GeneratedRunner, spec 1.5), one implementation
 * for layer_wise and model_wise so that both produce the same bytes:
 *
 *   pre_run (every processor); begin (every saver, into ctx->out_dir)
 *   embeddings pseudo-layer: every processor's preprocess/postprocess,
 *     then the calibration samples are embedded with it; savers write it
 *   for each decoder layer i:
 *     for each processor p in config order:
 *       preprocess (layer)
 *       if p needs data: one calibration forward per sample over the
 *         layer's inputs, with the deployed hooks of the layer (what the
 *         earlier processors decided) followed by p's own hooks
 *       postprocess (layer)
 *     the next layer's inputs are the outputs of the LAST data-dependent
 *     forward (quantization error propagates); when every processor is
 *     data-free, or when a processor that refreshes outputs (float_sparse
 *     prunes in postprocess from its own forward's statistics) came after
 *     the last data-dependent forward, one more forward with the deployed
 *     hooks gives them (msModelSlim reruns the layer in that postprocess)
 *     savers write the layer; the layer is released (layer_wise)
 *     a checkpoint is saved when ctx->checkpoint_hashes is set: the
 *       next layer's inputs, every processor's save_state, every
 *       saver's save_progress, the layer errors so far
 *       (a plugin without resume support stops the checkpoints, with a
 *       warning)
 *   head pseudo-layer (final norm + lm_head): preprocess/postprocess, savers
 *   post_run (every processor); finish (every saver)
 *
 * Resume (ctx->resume_from, a checkpoint of this run whose last layer
 * done is k): pre_run; every processor's restore_state and every saver's
 * resume (instead of begin) with the checkpoint's blobs; the inputs of
 * layer k + 1 are read from the checkpoint; the embeddings pseudo-layer
 * and layers 0..k are skipped and the loop above goes on from k + 1.  The
 * output is byte-identical to that of an uninterrupted run.
 *
 * Inputs between layers live in two SlimActivations, each with a third of
 * ctx->max_memory_bytes; the last third is what a processor may keep of
 * one layer (slim_processor_set_keep_storage: the inputs a search needs).
 * Samples beyond a share go to the HDF5 spill file of ctx->work_dir.
 * Every forward runs one sample at a time, so the result does not depend
 * on where a sample was kept.
 *
 * Test hook: when the environment variable SLIMFLOW_TEST_KILL_AFTER_LAYER
 * is set to k, the process raises SIGKILL on itself right after the
 * checkpoint of decoder layer k is saved (used by the resume test).
 * SLIMFLOW_TEST_STOP_RANK "r:k:kill" (or "r:k:hang") makes rank r of a
 * data-parallel run raise SIGKILL on itself (or sleep forever) as it
 * starts decoder layer k (used by the fault tests of dp_layer_wise).
 */
#pragma once

#include <gio/gio.h>
#include "slim-runner.h"

G_BEGIN_DECLS

#define SLIM_SCHEDULE_KILL_ENV "SLIMFLOW_TEST_KILL_AFTER_LAYER"
#define SLIM_SCHEDULE_STOP_RANK_ENV "SLIMFLOW_TEST_STOP_RANK"
/* Data-parallel runs: each rank's previous checkpoint, in its work dir. */
#define SLIM_SCHEDULE_PREVIOUS_CHECKPOINT_DIR "prev"

/**
 * slim_schedule_run:
 * @ctx: the run (model, processors, savers, dataset, budget, ...)
 * @all_resident: TRUE loads every decoder layer before the first one is
 *   processed and keeps them until the end (model_wise); FALSE loads one
 *   at a time (layer_wise).  The numerics are the same.
 * @cancellable: (nullable): checked between layers
 * @error: return location for a GError
 *
 * Runs the schedule above.  On failure every started saver is aborted.
 * The caller checks that ctx->resume_from belongs to the same run
 * (slim_checkpoint_load() with the run's hashes, slimflow-quant.c); a
 * checkpoint that does not fit the pipeline (no blob for a plugin, another
 * sample count) is a SLIM_PIPELINE_ERROR_INCOMPATIBLE.
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_schedule_run (SlimRunContext *ctx,
                            gboolean all_resident,
                            GCancellable *cancellable,
                            GError **error);

/**
 * slim_schedule_check_distributed:
 * @ctx: the run
 * @runner_name: for messages ("dp_layer_wise")
 * @error: return location for a GError
 *
 * What a data-parallel run needs, checked before any weight is read:
 * every processor supports_distributed, every data-dependent one can
 * exchange its statistics (export/import_observers), no resume.  Errors
 * are SLIM_PIPELINE_ERROR_INCOMPATIBLE naming the processor.
 *
 * Returns: TRUE when the run can be distributed; FALSE with @error set.
 */
gboolean
slim_schedule_check_distributed (SlimRunContext *ctx, const char *runner_name, GError **error);

/**
 * slim_schedule_run_distributed:
 * @ctx: the run; ctx->comm the ranks (NULL: one process, size 1)
 * @runner_name: for messages
 * @cancellable: (nullable): checked between layers
 * @error: return location for a GError
 *
 * The schedule above, layer by layer, on this rank's share of the
 * calibration samples (slim_comm_partition: a contiguous block in rank
 * order), after slim_schedule_check_distributed().  Around each
 * processor's calibration forward the ranks exchange its statistics
 * (slim-processor.h: export/import_observers; ordered processors run
 * their forwards rank after rank; recording ones, GPTQ, run them at once
 * and replay the recorded Hessian calls rank after rank), so that postprocess sees on every rank
 * what one process would have gathered over all samples; the per-layer
 * errors are summed from per-sample partials in sample order.  The output
 * bytes are those of slim_schedule_run() for any number of ranks.  Only a
 * rank whose ctx->out_dir is set (rank 0) runs the savers.  With
 * ctx->checkpoint_hashes and ctx->work_dir set on every rank, each rank
 * saves its own checkpoint (its share of the next inputs) after every
 * layer into its work dir, first moving the one before into
 * work_dir/prev, then waits for all ranks: a kill at any moment leaves
 * some layer whose checkpoint every rank holds (in one of its two
 * places), which the caller finds and passes as ctx->resume_from (each
 * rank its own; savers resume on rank 0 only).  The same number of ranks
 * must resume.  Every rank must call it with the same model, pipeline and
 * dataset.
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_schedule_run_distributed (SlimRunContext *ctx,
                                        const char *runner_name,
                                        GCancellable *cancellable,
                                        GError **error);

/**
 * slim_schedule_accumulate_error:
 * @a: (array length=n): values under test
 * @b: (array length=n): reference values
 * @n: number of elements
 * @out_diff_sq: (inout): adds sum (a - b)^2
 * @out_ref_sq: (inout): adds sum b^2
 *
 * Accumulates the two sums of a relative L2 error (double precision).
 */
void slim_schedule_accumulate_error (
    const float *a, const float *b, gint64 n, double *out_diff_sq, double *out_ref_sq);

G_END_DECLS
