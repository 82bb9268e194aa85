/* SPDX-License-Identifier: Apache-2.0
 *
 * model-wise.c: the "model_wise" runner plugin.  Model-wise runner (msModelSlim model_wise): every
 * decoder layer resident, same numerics as layer_wise. The loop itself is slim_schedule_run()
 * (framework/runtime/slim-schedule.h), shared by every runner so their outputs are byte-identical.
 */
#include "slim-plugin.h"
#include "slim-schedule.h"

#define SLIM_TYPE_MODEL_WISE_RUNNER (slim_model_wise_runner_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimModelWiseRunner, slim_model_wise_runner, SLIM, MODEL_WISE_RUNNER, SlimRunner)

struct _SlimModelWiseRunner
{
  SlimRunner parent_instance;
};

G_DEFINE_FINAL_TYPE (SlimModelWiseRunner, slim_model_wise_runner, SLIM_TYPE_RUNNER)

static gboolean
slim_model_wise_runner_run (SlimRunner *runner,
                            SlimRunContext *ctx,
                            GCancellable *cancellable,
                            GError **error)
{
  return slim_schedule_run (ctx, TRUE, cancellable, error);
}

static void
slim_model_wise_runner_class_init (SlimModelWiseRunnerClass *klass)
{
  SLIM_RUNNER_CLASS (klass)->run = slim_model_wise_runner_run;
}

static void
slim_model_wise_runner_init (SlimModelWiseRunner *self)
{
}

SLIM_PLUGIN_DEFINE (runner,
                    model_wise,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Model-wise runner (msModelSlim model_wise): every decoder layer resident, "
                    "same numerics as layer_wise",
                    slim_model_wise_runner_get_type)
