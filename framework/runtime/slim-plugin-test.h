/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-plugin-test.h: a test bench for processor plugins, installed with the
 * SDK so an out-of-tree plugin can test itself without a model: it makes a
 * synthetic layer, drives processors over it in the runner's hook order
 * (slim-schedule.h) and reports, for every linear, the relative output
 * error against the float weights the layer started with.
 *
 *   static const SlimPluginTestLinear linears[] = {
 *     { "self_attn.q_proj", 32, 64, FALSE },
 *     { "mlp.down_proj", 64, 128, FALSE },
 *   };
 *   g_autoptr (SlimLayer) layer = slim_plugin_test_make_layer (0, linears, 2, 7);
 *   g_autoptr (SlimPluginTestReport) report
 *       = slim_plugin_test_run (&processor, 1, NULL, layer, 4, 16, 7, &error);
 *   g_assert_cmpfloat (slim_plugin_test_report_lookup (report, "q_proj")->rel_error, <, 0.01);
 *
 * What slim_plugin_test_run does, per processor in array order unless
 * noted (the schedule's order for one decoder layer):
 *   validate (every processor); pre_run (every processor);
 *   preprocess (layer);
 *   unless the processor is data-free: the calibration forward, sample by
 *     sample, linear by linear in the layer's order: each linear's input
 *     (a copy) goes through the layer's deployed hooks (the SlimQLinear
 *     records earlier processors attached) and then the processor's own
 *     forward hooks; the hooks see inputs only, so no output is computed;
 *   postprocess (layer);
 *   post_run (every processor);
 * then every linear is evaluated on the same inputs: y = x' W^T + b with
 * the processed weights and x' the input through the deployed hooks (what
 * the saved model computes) against y_float = x W0^T + b0 with the weights
 * the layer had before the run.
 *
 * Differences from a real run, on purpose: each linear gets its own seeded
 * input (there is no attention or MLP between them, so no qkv_states hook
 * is called and a processor that needs the KV cache is not exercised
 * there); pre_run receives @model or, when NULL, a stand-in one-layer
 * Llama (hidden 8, two heads) unrelated to @layer, so a processor whose
 * hooks use the model's structure (slim_model_get_subgraphs ...) is better
 * tested on a real model; no saver runs and no checkpoint is taken.
 */
#pragma once

#include <glib-object.h>
#include "slim-layer.h"
#include "slim-model.h"
#include "slim-processor.h"
#include "slim-qlinear.h"

G_BEGIN_DECLS

/**
 * SlimPluginTestLinear:
 * @name: the module name inside the layer, e.g. "self_attn.q_proj" (the
 *   layer's prefix "model.layers.<index>." is prepended)
 * @n_out: output features (rows of the weight)
 * @n_in: input features (columns of the weight)
 * @bias: TRUE adds a "<name>.bias" tensor
 *
 * Shape of one linear of a synthetic layer.
 */
typedef struct
{
  const char *name;
  gint64 n_out;
  gint64 n_in;
  gboolean bias;
} SlimPluginTestLinear;

/**
 * slim_plugin_test_make_layer:
 * @index: the decoder layer index (>= 0)
 * @linears: (array length=n_linears): the linears, in execution order
 * @n_linears: how many
 * @seed: seeds the weights
 *
 * Makes decoder layer @index holding a float32 "<module>.weight" (n_out,
 * n_in) for every linear (and its bias), with the linear names set.
 * Weights are Gaussian with a standard deviation that varies by row
 * (0.01, 0.02, 0.03, 0.04, repeating) and about one weight in 256 eight
 * times larger (the outliers of trained LLM weights); biases are Gaussian
 * with standard deviation 0.1.  The same arguments give the same bytes on
 * every platform (GRand).
 *
 * Returns: (transfer full): the layer.
 */
SlimLayer *slim_plugin_test_make_layer (gint index,
                                        const SlimPluginTestLinear *linears,
                                        guint n_linears,
                                        guint32 seed);

/**
 * SlimPluginTestResult:
 * @module: the linear's full name ("model.layers.0.self_attn.q_proj")
 * @n_out: output features
 * @n_in: input features
 * @rel_error: ||y - y_float||_2 / ||y_float||_2 over every sample (0 when
 *   the processors left the linear as it was)
 * @max_abs_error: max |y - y_float| over every sample and output
 * @qlinear: (nullable): the SlimQLinear record attached to the linear
 *   (owned by the report's layer), NULL when it stays float
 */
typedef struct
{
  char *module;
  gint64 n_out;
  gint64 n_in;
  double rel_error;
  double max_abs_error;
  const SlimQLinear *qlinear;
} SlimPluginTestResult;

/**
 * SlimPluginTestReport:
 * @layer: the processed layer (a reference)
 * @forwarded: TRUE when some processor was not data-free, so the
 *   calibration forward ran
 * @n_results: number of linears
 * @results: (array length=n_results): one per linear, in the layer's order
 */
typedef struct
{
  SlimLayer *layer;
  gboolean forwarded;
  guint n_results;
  SlimPluginTestResult *results;
} SlimPluginTestReport;

/**
 * slim_plugin_test_run:
 * @processors: (array length=n_processors): the processors, in pipeline order
 * @n_processors: how many (>= 1)
 * @model: (nullable): what pre_run gets; NULL = a stand-in model written
 *   to a temporary folder and removed after post_run
 * @layer: the layer to process, modified in place (from
 *   slim_plugin_test_make_layer(), or a real model's layer with @model);
 *   its linears must be float32 (n_out, n_in) weights
 * @n_samples: calibration samples (>= 1)
 * @n_tokens: tokens per sample (>= 1)
 * @seed: seeds the inputs: each linear's input is Gaussian (0, 1) with
 *   every 16th input channel (3, 19, 35, ...) six times larger, as the
 *   activation outliers of LLMs
 * @error: return location for a GError
 *
 * Runs the processors over @layer as described at the top of this file.
 * A hook that fails stops the run; the error is prefixed with the hook
 * and the processor ("preprocess (processor 'clip'): ...").
 *
 * Returns: (transfer full) (nullable): the report, or NULL with @error set.
 */
SlimPluginTestReport *slim_plugin_test_run (SlimProcessor *const *processors,
                                            guint n_processors,
                                            SlimModel *model,
                                            SlimLayer *layer,
                                            guint n_samples,
                                            gint64 n_tokens,
                                            guint32 seed,
                                            GError **error);

/**
 * slim_plugin_test_report_lookup:
 * @report: a report
 * @module: a linear's full name, or a suffix of it after a dot
 *   ("q_proj", "self_attn.q_proj")
 *
 * Returns: (transfer none) (nullable): the first matching result, or NULL.
 */
const SlimPluginTestResult *slim_plugin_test_report_lookup (const SlimPluginTestReport *report,
                                                            const char *module);

/**
 * slim_plugin_test_report_to_string:
 * @report: a report
 *
 * Returns: (transfer full): a table, one line per linear (name, shape,
 *   relative error, max abs error, label of the record or "float").
 */
char *slim_plugin_test_report_to_string (const SlimPluginTestReport *report);

void slim_plugin_test_report_free (SlimPluginTestReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimPluginTestReport, slim_plugin_test_report_free)

G_END_DECLS
