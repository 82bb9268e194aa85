/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-runner.h: abstract base class of the runner plugins, which drive a
 * quantization run (msModelSlim's model_wise / layer_wise /
 * dp_layer_wise runners): load the model layer by layer, call the
 * processors' hooks around the calibration forward, hand each layer to
 * the savers.
 */
#pragma once

#include <glib-object.h>
#include <gio/gio.h>
#include "slim-model.h"
#include "slim-dataset.h"
#include "slim-checkpoint.h"
#include "slim-comm.h"
#include "slim-run-store.h"

G_BEGIN_DECLS

/* Called after each layer; layer_index counts 0..n_layers-1. */
typedef void (*SlimRunProgressFunc) (guint layer_index, guint n_layers, gpointer user_data);

/**
 * SlimRunContext:
 * @model: the opened model (transfer none)
 * @processors: SlimProcessor objects in config order (transfer none)
 * @savers: SlimSaver objects (transfer none)
 * @dataset: (nullable): the loaded calibration dataset; NULL when every
 *   processor is data-free
 * @work_dir: (nullable): directory for spilled activations and resume state
 * @max_memory_bytes: budget for resident activations; 0 = no limit
 * @progress: (nullable): progress callback
 * @progress_data: user data for @progress
 * @out_dir: (nullable): output folder handed to slim_saver_begin()
 * @checkpoint_hashes: (nullable): three hashes identifying the run
 * @layer_errors: (nullable): filled with one relative output error per layer
 * @resume_from: (nullable): a checkpoint of this run to continue from
 *   (needs @out_dir, the interrupted run's output folder)
 * @comm: (nullable): the ranks of a data-parallel run (dp_layer_wise,
 *   auto); NULL is one process
 * @store: (nullable): the run's keyed store (slim-run-store.h), shared by
 *   the prior stages and spec.process; handed to every processor
 *
 * Everything a runner needs for one run; a plain struct owned by the
 * caller, initialised with slim_run_context_init().
 */
typedef struct
{
  SlimModel *model;
  GPtrArray *processors;
  GPtrArray *savers;
  SlimDataset *dataset;
  const char *work_dir;
  guint64 max_memory_bytes;
  SlimRunProgressFunc progress;
  gpointer progress_data;
  /* Added for the quantization pipeline (slim-schedule.h): */
  const char *out_dir; /* (nullable) where the savers write; NULL = savers not begun */
  const SlimCheckpointHashes *checkpoint_hashes; /* (nullable) enables a checkpoint in
                                                  * @work_dir after every layer */
  GArray *layer_errors;        /* (nullable) (element-type double) out: per decoder layer,
                                * ||y_quant - y_float|| / ||y_float|| over all samples;
                                * left empty when the run uses no calibration data */
  SlimCheckpoint *resume_from; /* (nullable) a loaded checkpoint of this run: continue
                                * after its last layer (slim-schedule.h) */
  SlimComm *comm;              /* (nullable) the ranks of a data-parallel run; NULL or
                                * size 1 is one process.  Only rank 0 gets @out_dir. */
  SlimRunStore *store;         /* (nullable) what prior stages hand to later ones */
} SlimRunContext;

/* Zero-fills ctx. */
void slim_run_context_init (SlimRunContext *ctx);

#define SLIM_TYPE_RUNNER (slim_runner_get_type ())
G_DECLARE_DERIVABLE_TYPE (SlimRunner, slim_runner, SLIM, RUNNER, GObject)

/**
 * SlimRunnerClass:
 * @run: performs the whole run described by @ctx; checks @cancellable
 *   between layers (required)
 */
struct _SlimRunnerClass
{
  GObjectClass parent_class;

  gboolean (*run) (SlimRunner *self,
                   SlimRunContext *ctx,
                   GCancellable *cancellable,
                   GError **error);
};

/* Checks ctx (model, processors and savers set; a dataset when any
 * processor is not data-free; work_dir when resuming), then runs.  FALSE
 * with error set on failure (G_IO_ERROR_CANCELLED when cancelled). */
gboolean
slim_runner_run (SlimRunner *self, SlimRunContext *ctx, GCancellable *cancellable, GError **error);

/* YAML type name / description of the registered plugin, or NULL.
 * transfer none. */
const char *slim_runner_get_type_name (SlimRunner *self);
const char *slim_runner_get_description (SlimRunner *self);

G_END_DECLS
