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
#include "slim-dataset.h"
#include "slim-model.h"
#include "slim-pipeline.h"
#include "slim-registry.h"
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

typedef struct
{
  SlimModel *model;                   /* the float model, opened */
  SlimPipeline *pipeline;             /* checked (slim_pipeline_check_data) */
  SlimDataset *dataset;               /* (nullable) when the pipeline needs no data */
  const SlimCheckpointHashes *hashes; /* config, model and dataset of the run */
  const char *save_path;              /* output folder (slim-workdir.h rules) */
  guint64 max_memory_bytes;           /* activation budget, 0 = no limit */
  GArray *layer_errors;               /* (nullable) (element-type double) out */
} SlimQuantizeJob;

/* Runs job->pipeline on job->model into job->save_path through a staging
 * folder: on success the folder is complete, on failure nothing is left
 * there.  Errors: SLIM_CONFIG_ERROR when the pipeline has no runner or
 * prior stages, the runner's and the savers' otherwise. */
gboolean slim_quantize_run (const SlimQuantizeJob *job, GError **error);

G_END_DECLS
