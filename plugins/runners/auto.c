/* SPDX-License-Identifier: Apache-2.0
 *
 * auto.c: the "auto" runner plugin (msModelSlim's auto, spec 1.3 step 4):
 * dp_layer_wise when the run has more than one rank (launched with
 * `mpirun -np N`, N > 1), otherwise layer_wise.  The loops are
 * slim_schedule_run() and slim_schedule_run_distributed()
 * (framework/runtime/slim-schedule.h), which give the same bytes.
 */
#include "slim-plugin.h"
#include "slim-schedule.h"

#define SLIM_TYPE_AUTO_RUNNER (slim_auto_runner_get_type ())
G_DECLARE_FINAL_TYPE (SlimAutoRunner, slim_auto_runner, SLIM, AUTO_RUNNER, SlimRunner)

struct _SlimAutoRunner
{
  SlimRunner parent_instance;
};

G_DEFINE_FINAL_TYPE (SlimAutoRunner, slim_auto_runner, SLIM_TYPE_RUNNER)

static gboolean
slim_auto_runner_run (SlimRunner *runner,
                      SlimRunContext *ctx,
                      GCancellable *cancellable,
                      GError **error)
{
  if (ctx->comm != NULL && slim_comm_size (ctx->comm) > 1)
    {
      g_debug ("auto: %d ranks, running dp_layer_wise", slim_comm_size (ctx->comm));
      return slim_schedule_run_distributed (ctx, "auto (dp_layer_wise)", cancellable, error);
    }
  return slim_schedule_run (ctx, FALSE, cancellable, error);
}

static void
slim_auto_runner_class_init (SlimAutoRunnerClass *klass)
{
  SLIM_RUNNER_CLASS (klass)->run = slim_auto_runner_run;
}

static void
slim_auto_runner_init (SlimAutoRunner *self)
{
}

SLIM_PLUGIN_DEFINE (runner,
                    auto,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Automatic runner: dp_layer_wise when launched with more than one MPI rank, "
                    "layer_wise otherwise",
                    slim_auto_runner_get_type)
