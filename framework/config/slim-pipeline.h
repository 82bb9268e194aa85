/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-pipeline.h: a modelslim_v1 config resolved into plugin objects.
 *
 *   apiversion: modelslim_v1           required: modelslim_v1, or modelslim_v0
 *                                      (translated first, slim-config-v0.h)
 *   metadata: {...}                    extra top-level keys are accepted
 *   default_w8a8: &default_w8a8 {...}  (msModelSlim allows anchor holders)
 *   spec:
 *     runner: auto                     auto | model_wise | layer_wise | dp_layer_wise
 *     prior:                           stages run before the main one
 *       - process: [...]               processors (non-empty)
 *         dataset: file.jsonl          optional, defaults to spec.dataset
 *     process: [...]                   processors, each {type: NAME, ...properties}
 *     save: [...]                      savers, each {type: NAME, ...properties}
 *     dataset: mix_calib.jsonl         <= 4096 characters
 *
 * Unknown keys under spec are errors.  Each process/save entry is resolved
 * by `type` in the registry and built with slim_config_plugin_new(), so all
 * property rules of slim-config-object.h apply.  Every error in the file is
 * collected: the GError of a failed constructor has one line per problem,
 * each "FILE:LINE:COL: WHERE: message".
 */
#pragma once

#include <glib-object.h>
#include "slim-config.h"
#include "slim-registry.h"
#include "slim-processor.h"
#include "slim-saver.h"
#include "slim-runner.h"

G_BEGIN_DECLS

#define SLIM_PIPELINE_APIVERSION "modelslim_v1"
#define SLIM_PIPELINE_DEFAULT_DATASET "mix_calib.jsonl"
#define SLIM_PIPELINE_MAX_DATASET_CHARS 4096

#define SLIM_TYPE_PIPELINE (slim_pipeline_get_type ())
G_DECLARE_FINAL_TYPE (SlimPipeline, slim_pipeline, SLIM, PIPELINE, GObject)

/**
 * slim_pipeline_new_from_file:
 * @registry: resolves the `type` of every entry
 * @path: a YAML config
 * @error: return location for a GError
 *
 * Loads @path (slim_config_parse_file()) and builds the pipeline.
 *
 * Returns: (transfer full) (nullable): the pipeline, or NULL with @error
 *   set (SLIM_CONFIG_ERROR, one line per problem; G_FILE_ERROR for I/O).
 */
SlimPipeline *
slim_pipeline_new_from_file (SlimRegistry *registry, const char *path, GError **error);

/**
 * slim_pipeline_new_from_data:
 * @registry: resolves the `type` of every entry
 * @data: (array length=n_bytes): YAML text
 * @n_bytes: length of @data
 * @file_name: name used in messages
 * @error: return location for a GError
 *
 * Returns: (transfer full) (nullable): the pipeline, or NULL with @error set.
 */
SlimPipeline *slim_pipeline_new_from_data (
    SlimRegistry *registry, const char *data, gsize n_bytes, const char *file_name, GError **error);

/**
 * slim_pipeline_new_from_node:
 * @registry: resolves the `type` of every entry
 * @root: the document root from slim_config_parse_*()
 * @error: return location for a GError
 *
 * Returns: (transfer full) (nullable): the pipeline, or NULL with @error set.
 */
SlimPipeline *
slim_pipeline_new_from_node (SlimRegistry *registry, SlimConfigNode *root, GError **error);

/**
 * slim_pipeline_validate:
 * @self: a pipeline
 * @error: return location for a GError
 *
 * Runs every processor's validate vfunc (prior stages, then spec.process):
 * the cross-property checks that need no model, such as an illegal
 * act/weight combination.  All failures are collected into one
 * SLIM_CONFIG_ERROR with a line per failure, located at the entry:
 * "FILE:LINE:COL: process[1] (linear_quant): message".
 *
 * Returns: TRUE when every processor accepted its configuration.
 */
gboolean slim_pipeline_validate (SlimPipeline *self, GError **error);

/**
 * slim_pipeline_check_file:
 * @registry: resolves the `type` of every entry
 * @path: a YAML config
 * @out_pipeline: (out) (optional) (transfer full): the pipeline, when valid
 * @error: return location for a GError
 *
 * What `slimflow validate` runs: loads @path, builds every entry it can
 * and runs the validate step of every processor that was built, even when
 * other entries failed, so that one call reports every problem (build
 * errors first, then validation errors, each group in file order).
 *
 * Returns: TRUE when the config is valid; otherwise FALSE with one
 *   SLIM_CONFIG_ERROR listing every problem, one per line (G_FILE_ERROR
 *   when @path cannot be read).
 */
gboolean slim_pipeline_check_file (SlimRegistry *registry,
                                   const char *path,
                                   SlimPipeline **out_pipeline,
                                   GError **error);

/**
 * slim_pipeline_check_data:
 * @registry: resolves the `type` of every entry
 * @data: (array length=n_bytes): YAML text
 * @n_bytes: length of @data
 * @file_name: name used in messages
 * @out_pipeline: (out) (optional) (transfer full): the pipeline, when valid
 * @error: return location for a GError
 *
 * slim_pipeline_check_file() on text in memory.
 *
 * Returns: TRUE when the config is valid.
 */
gboolean slim_pipeline_check_data (SlimRegistry *registry,
                                   const char *data,
                                   gsize n_bytes,
                                   const char *file_name,
                                   SlimPipeline **out_pipeline,
                                   GError **error);

/**
 * slim_pipeline_get_config:
 * @self: a pipeline
 *
 * Returns: (transfer none): the root node of the config it was built from.
 */
SlimConfigNode *slim_pipeline_get_config (SlimPipeline *self);

/**
 * slim_pipeline_get_apiversion:
 * @self: a pipeline
 *
 * Returns: (transfer none): the config's apiversion, "modelslim_v1" or
 *   "modelslim_v0" (then built from its translation).
 */
const char *slim_pipeline_get_apiversion (SlimPipeline *self);

/**
 * slim_pipeline_get_v1_config:
 * @self: a pipeline
 *
 * Returns: (transfer none): the modelslim_v1 document the pipeline was
 *   built from: the config itself, or the translation of a modelslim_v0
 *   one (its nodes located in the v0 file).
 */
SlimConfigNode *slim_pipeline_get_v1_config (SlimPipeline *self);

/**
 * slim_pipeline_get_notes:
 * @self: a pipeline
 *
 * Returns: (transfer none) (element-type utf8): one line per choice the
 *   modelslim_v0 translation made (empty for a v1 config).
 */
GPtrArray *slim_pipeline_get_notes (SlimPipeline *self);

/**
 * slim_pipeline_get_runner_name:
 * @self: a pipeline
 *
 * Returns: (transfer none): spec.runner as written: auto (the default),
 *   model_wise, layer_wise or dp_layer_wise.
 */
const char *slim_pipeline_get_runner_name (SlimPipeline *self);

/**
 * slim_pipeline_get_runner:
 * @self: a pipeline
 *
 * Returns: (transfer none) (nullable): the runner plugin spec.runner
 *   resolved to (the plugin of that name; for "auto" without an "auto"
 *   plugin, layer_wise), or NULL when the registry has no runner plugins.
 */
SlimRunner *slim_pipeline_get_runner (SlimPipeline *self);

/**
 * slim_pipeline_get_dataset:
 * @self: a pipeline
 *
 * Returns: (transfer none): spec.dataset (default "mix_calib.jsonl").
 */
const char *slim_pipeline_get_dataset (SlimPipeline *self);

/**
 * slim_pipeline_get_processors:
 * @self: a pipeline
 *
 * Returns: (transfer none) (element-type SlimProcessor): spec.process, in
 *   config order.
 */
GPtrArray *slim_pipeline_get_processors (SlimPipeline *self);

/**
 * slim_pipeline_get_savers:
 * @self: a pipeline
 *
 * Returns: (transfer none) (element-type SlimSaver): spec.save, in config
 *   order.
 */
GPtrArray *slim_pipeline_get_savers (SlimPipeline *self);

/**
 * slim_pipeline_get_n_prior_stages:
 * @self: a pipeline
 *
 * Returns: the number of spec.prior stages.
 */
guint slim_pipeline_get_n_prior_stages (SlimPipeline *self);

/**
 * slim_pipeline_get_prior_processors:
 * @self: a pipeline
 * @stage: < slim_pipeline_get_n_prior_stages()
 *
 * Returns: (transfer none) (element-type SlimProcessor): the processors of
 *   prior stage @stage.
 */
GPtrArray *slim_pipeline_get_prior_processors (SlimPipeline *self, guint stage);

/**
 * slim_pipeline_get_prior_dataset:
 * @self: a pipeline
 * @stage: < slim_pipeline_get_n_prior_stages()
 *
 * Returns: (transfer none): the dataset of prior stage @stage, falling
 *   back to spec.dataset.
 */
const char *slim_pipeline_get_prior_dataset (SlimPipeline *self, guint stage);

G_END_DECLS
