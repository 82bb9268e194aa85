/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-quantize.h: one quantization run in-process, the library side of
 * `slimflow quant` that `slimflow ablate` and `slimflow analyze` run many
 * times in one process (no subprocess, no second parse of the model).
 *
 * slim_quantize_load_dataset() tokenizes a calibration file (jsonl plugin
 * for *.jsonl / *.json, text otherwise); the caller may keep the dataset
 * and hand it to several runs whose pipelines name the same file.
 */
#pragma once

#include "slim-checkpoint.h"
#include "slim-comm.h"
#include "slim-dataset.h"
#include "slim-model.h"
#include "slim-pipeline.h"
#include "slim-registry.h"
#include "slim-run-store.h"
#include "slim-tokenizer.h"

G_BEGIN_DECLS

/* TRUE when a processor of pipeline needs calibration data. */
gboolean slim_quantize_needs_data (SlimPipeline *pipeline);

/* The calibration set at path, at most max_samples samples of at most
 * max_length tokens (0 = no limit).  An empty set is a
 * SLIM_FORMAT_ERROR_INVALID. */
SlimDataset *slim_quantize_load_dataset (SlimRegistry *registry,
                                         const char *path,
                                         SlimTokenizer *tokenizer,
                                         guint max_samples,
                                         guint max_length,
                                         GError **error);

/* sha256 of the token ids of dataset (nullable: no data). */
char *slim_quantize_hash_dataset (SlimDataset *dataset);

/**
 * slim_quantize_load_prior_datasets:
 * @registry: resolves the dataset plugins
 * @pipeline: a checked pipeline
 * @calib_dir: (nullable): --calib_dir
 * @tokenizer: (nullable): the model's tokenizer; needed when a prior stage
 *   has a processor that is not data-free
 * @max_samples: as slim_quantize_load_dataset()
 * @max_length: as slim_quantize_load_dataset()
 * @error: return location for a GError (G_FILE_ERROR_NOENT: a dataset
 *   that is nowhere)
 *
 * Returns: (transfer full) (element-type SlimDataset) (nullable): one
 *   entry per spec.prior stage, its dataset (the stage's, or spec.dataset),
 *   NULL for a stage whose processors are all data-free.
 */
GPtrArray *slim_quantize_load_prior_datasets (SlimRegistry *registry,
                                              SlimPipeline *pipeline,
                                              const char *calib_dir,
                                              SlimTokenizer *tokenizer,
                                              guint max_samples,
                                              guint max_length,
                                              GError **error);

/* TRUE when a prior stage has a processor that is not data-free. */
gboolean slim_quantize_prior_needs_data (SlimPipeline *pipeline);

/* Returns: (transfer full): the hash of the prior stages' calibration
 * tokens (slim_quantize_hash_dataset of each, joined), for the run's
 * checkpoint identity. */
char *slim_quantize_hash_prior_datasets (GPtrArray *datasets);

/* Returns: (transfer full): the dataset hash of a run's checkpoint
 * identity: slim_quantize_hash_dataset (main), mixed with the prior
 * stages' tokens when @prior is not empty. */
char *slim_quantize_hash_run_datasets (SlimDataset *main, GPtrArray *prior);

/**
 * slim_quantize_run_prior:
 * @pipeline: the run's pipeline
 * @model: the float model
 * @datasets: (element-type SlimDataset): from
 *   slim_quantize_load_prior_datasets()
 * @work_dir: (nullable): where a stage may spill (a "prior" folder is made
 *   in it); NULL keeps everything in memory
 * @max_memory_bytes: the activation budget, 0 = no limit
 * @store: the run's keyed store, where the stages leave what they learned
 * @error: return location for a GError
 *
 * Runs every spec.prior stage in order, each a whole pass of the
 * layer schedule (slim-schedule.h; every layer resident when the
 * pipeline's runner is model_wise, one process for any runner) over all
 * layers with the stage's processors and no
 * saver (nothing is written; the model on disk is untouched), with @store
 * on its SlimRunContext.  The runs are deterministic, so a resumed run
 * recomputes them instead of checkpointing them.  Prints one line per
 * stage with its time to stderr.
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_quantize_run_prior (SlimPipeline *pipeline,
                                  SlimModel *model,
                                  GPtrArray *datasets,
                                  const char *work_dir,
                                  guint64 max_memory_bytes,
                                  SlimRunStore *store,
                                  GError **error);

/**
 * slim_quantize_run_prior_distributed:
 * @comm: (nullable): the ranks of a data-parallel run (dp_layer_wise or
 *   auto under mpirun); NULL or one rank: slim_quantize_run_prior()
 *
 * slim_quantize_run_prior() over the ranks: every stage is a
 * slim_schedule_run_distributed() pass (each rank its share of the
 * samples, every processor's statistics exchanged after each layer's
 * forward), so what a stage leaves in @store is on every rank and equals
 * what one process learns.  Every rank calls it with the same arguments
 * (@work_dir: the rank's own).  Rank 0 prints the stage lines.
 */
gboolean slim_quantize_run_prior_distributed (SlimPipeline *pipeline,
                                              SlimModel *model,
                                              GPtrArray *datasets,
                                              const char *work_dir,
                                              guint64 max_memory_bytes,
                                              SlimRunStore *store,
                                              SlimComm *comm,
                                              GError **error);

/* Before any weight is read: every processor of every spec.prior stage
 * can run distributed (slim_schedule_check_distributed, the error naming
 * the stage and the processor: SLIM_PIPELINE_ERROR_INCOMPATIBLE). */
gboolean slim_quantize_check_prior_distributed (SlimPipeline *pipeline, GError **error);

typedef struct
{
  SlimModel *model;                   /* the float model, opened */
  SlimPipeline *pipeline;             /* checked (slim_pipeline_check_data) */
  SlimDataset *dataset;               /* (nullable) when the pipeline needs no data */
  const SlimCheckpointHashes *hashes; /* config, model and dataset of the run */
  const char *save_path;              /* output folder (slim-workdir.h rules) */
  guint64 max_memory_bytes;           /* activation budget, 0 = no limit */
  GArray *layer_errors;               /* (nullable) (element-type double) out */
  GPtrArray *prior_datasets;          /* (nullable) (element-type SlimDataset) one per
                                       * spec.prior stage (slim_quantize_load_prior_datasets);
                                       * required when the pipeline has prior stages */
} SlimQuantizeJob;

/* Runs job->pipeline on job->model into job->save_path through a staging
 * folder: on success the folder is complete, on failure nothing is left
 * there.  Errors: SLIM_CONFIG_ERROR when the pipeline has no runner or
 * prior stages, the runner's and the savers' otherwise. */
gboolean slim_quantize_run (const SlimQuantizeJob *job, GError **error);

G_END_DECLS
