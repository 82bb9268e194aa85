/* SPDX-License-Identifier: Apache-2.0
 *
 * dp-layer-wise.c: the "dp_layer_wise" runner plugin (msModelSlim's
 * DPLayerWiseRunner, spec 1.5): data-parallel layer-wise calibration over
 * the ranks of an MPI job (`mpirun -np N slimflow quant ...`; the CLI
 * initialises MPI and puts the ranks in ctx->comm).  Each rank holds the
 * model layer by layer and runs the calibration forward over its
 * contiguous block of samples; the processors' statistics are exchanged
 * through SlimComm around each forward, so that the output is
 * byte-identical to layer_wise for any number of ranks; rank 0 writes it
 * (slim_schedule_run_distributed, slim-schedule.h).  Processors that do not
 * support distributed runs are refused before any weight is read.  Without
 * MPI in the build the runner says so; launched without mpirun it runs
 * as one rank.
 *
 * Where slimflow differs from msModelSlim, deliberately: MPI processes
 * instead of torch mp.spawn; the savers run on rank 0 alone (no per-rank
 * folders merged afterwards), since every rank holds the same deployed
 * layer; and ordered statistics (static minmax activations, whose
 * calibration forward quantizes with the running range) are handed from
 * rank to rank in sample order instead of reduced after independent
 * forwards, which in msModelSlim makes the result depend on the number of
 * devices (its ActPerTensorMinmax syncs the running range at every call,
 * so call j on every rank quantizes with the range of the first j calls
 * of all ranks: the calibration outputs, which feed the next layer, and
 * the downstream linears' observations change with the rank count).
 * GPTQ (msModelSlim: no DP) is supported: the forwards run at once,
 * recording the Hessian calls; each Hessian goes to one rank, which gets
 * the others' recorded calls for it and accumulates them in sample order,
 * so add_batch's rescaling sees one process's sequence, then factorises
 * it and runs GPTQ (the row blocks of the costliest weight spread over
 * the ranks); the results are broadcast (msModelSlim's
 * DistributedTaskScheduler idea; linear-quant.c).  Every rank
 * checkpoints its share after each layer, so --resume works after a
 * killed run (slim-schedule.h).
 */
#include "slim-plugin.h"
#include "slim-schedule.h"

#define SLIM_TYPE_DP_LAYER_WISE_RUNNER (slim_dp_layer_wise_runner_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimDpLayerWiseRunner, slim_dp_layer_wise_runner, SLIM, DP_LAYER_WISE_RUNNER, SlimRunner)

struct _SlimDpLayerWiseRunner
{
  SlimRunner parent_instance;
};

G_DEFINE_FINAL_TYPE (SlimDpLayerWiseRunner, slim_dp_layer_wise_runner, SLIM_TYPE_RUNNER)

static gboolean
slim_dp_layer_wise_runner_run (SlimRunner *runner,
                               SlimRunContext *ctx,
                               GCancellable *cancellable,
                               GError **error)
{
  if (!slim_comm_mpi_is_built ())
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "dp_layer_wise: slimflow was built without MPI");
      return FALSE;
    }
  return slim_schedule_run_distributed (ctx, "dp_layer_wise", cancellable, error);
}

static void
slim_dp_layer_wise_runner_class_init (SlimDpLayerWiseRunnerClass *klass)
{
  SLIM_RUNNER_CLASS (klass)->run = slim_dp_layer_wise_runner_run;
}

static void
slim_dp_layer_wise_runner_init (SlimDpLayerWiseRunner *self)
{
}

SLIM_PLUGIN_DEFINE (runner,
                    dp_layer_wise,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Data-parallel layer-wise runner (msModelSlim dp_layer_wise) over MPI: "
                    "calibration samples split across ranks, same bytes as layer_wise",
                    slim_dp_layer_wise_runner_get_type)
