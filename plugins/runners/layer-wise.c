/* SPDX-License-Identifier: Apache-2.0
 *
 * layer-wise.c: the "layer_wise" runner plugin.  Layer-wise runner (msModelSlim layer_wise): one
 * decoder layer resident at a time. The loop itself is slim_schedule_run()
 * (framework/runtime/slim-schedule.h), shared by every runner so their outputs are byte-identical.
 */
#include "slim-plugin.h"
#include "slim-schedule.h"

#define SLIM_TYPE_LAYER_WISE_RUNNER (slim_layer_wise_runner_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimLayerWiseRunner, slim_layer_wise_runner, SLIM, LAYER_WISE_RUNNER, SlimRunner)

struct _SlimLayerWiseRunner
{
  SlimRunner parent_instance;
};

G_DEFINE_FINAL_TYPE (SlimLayerWiseRunner, slim_layer_wise_runner, SLIM_TYPE_RUNNER)

static gboolean
slim_layer_wise_runner_run (SlimRunner *runner,
                            SlimRunContext *ctx,
                            GCancellable *cancellable,
                            GError **error)
{
  return slim_schedule_run (ctx, FALSE, cancellable, error);
}

static void
slim_layer_wise_runner_class_init (SlimLayerWiseRunnerClass *klass)
{
  SLIM_RUNNER_CLASS (klass)->run = slim_layer_wise_runner_run;
}

static void
slim_layer_wise_runner_init (SlimLayerWiseRunner *self)
{
}

SLIM_PLUGIN_DEFINE (
    runner,
    layer_wise,
    SLIM_PLUGIN_NO_ALIASES,
    "Layer-wise runner (msModelSlim layer_wise): one decoder layer resident at a time",
    slim_layer_wise_runner_get_type)
