/* SPDX-License-Identifier: Apache-2.0
 *
 * auto.c: the "auto" runner plugin.  Automatic runner: layer_wise on a single process
 * (dp_layer_wise is not available yet). The loop itself is slim_schedule_run()
 * (framework/runtime/slim-schedule.h), shared by every runner so their outputs are byte-identical.
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

SLIM_PLUGIN_DEFINE (
    runner,
    auto,
    SLIM_PLUGIN_NO_ALIASES,
    "Automatic runner: layer_wise on a single process (dp_layer_wise is not available yet)",
    slim_auto_runner_get_type)
