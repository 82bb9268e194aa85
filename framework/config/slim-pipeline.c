/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-pipeline.c: builds a SlimPipeline from a modelslim_v1 config (the
 * layout is in slim-pipeline.h and modelslim-v1-spec.md 1.3).  The walk
 * never stops at the first problem: every error is collected and reported
 * together, in file order.
 */
#include "slim-pipeline.h"

#include <string.h>

#include "slim-config-object.h"
#include "slim-config-v0.h"
#include "slim-error.h"

/* msModelSlim's RunnerType (spec 1.3). */
static const char *const runner_names[] = { "auto", "model_wise", "layer_wise", "dp_layer_wise" };
/* What "auto" means on one device (spec 1.3, step 4) when no runner
 * plugin is itself named "auto". */
#define AUTO_RUNNER "layer_wise"

typedef struct
{
  GPtrArray *processors; /* (element-type SlimProcessor) */
  GPtrArray *labels;     /* (element-type utf8) "FILE:L:C: where (type)" per processor */
  char *dataset;         /* (nullable) falls back to spec.dataset */
} SlimPipelineStage;

struct _SlimPipeline
{
  GObject parent_instance;

  SlimConfigNode *config;
  SlimConfigNode *v1_config; /* config, or its modelslim_v1 translation */
  GPtrArray *notes;          /* (element-type utf8) translation notes */
  char *apiversion;
  char *runner_name;
  SlimRunner *runner; /* (nullable) */
  char *dataset;
  GArray *prior;          /* (element-type SlimPipelineStage) */
  SlimPipelineStage main; /* spec.process */
  GPtrArray *savers;      /* (element-type SlimSaver) */
};

G_DEFINE_FINAL_TYPE (SlimPipeline, slim_pipeline, G_TYPE_OBJECT)

static void
stage_init (SlimPipelineStage *stage)
{
  stage->processors = g_ptr_array_new_with_free_func (g_object_unref);
  stage->labels = g_ptr_array_new_with_free_func (g_free);
  stage->dataset = NULL;
}

static void
stage_clear (SlimPipelineStage *stage)
{
  g_clear_pointer (&stage->processors, g_ptr_array_unref);
  g_clear_pointer (&stage->labels, g_ptr_array_unref);
  g_clear_pointer (&stage->dataset, g_free);
}

static void
slim_pipeline_finalize (GObject *object)
{
  SlimPipeline *self = SLIM_PIPELINE (object);

  g_clear_pointer (&self->config, slim_config_node_unref);
  g_clear_pointer (&self->v1_config, slim_config_node_unref);
  g_clear_pointer (&self->notes, g_ptr_array_unref);
  g_clear_pointer (&self->apiversion, g_free);
  g_clear_pointer (&self->runner_name, g_free);
  g_clear_object (&self->runner);
  g_clear_pointer (&self->dataset, g_free);
  g_clear_pointer (&self->prior, g_array_unref);
  stage_clear (&self->main);
  g_clear_pointer (&self->savers, g_ptr_array_unref);
  G_OBJECT_CLASS (slim_pipeline_parent_class)->finalize (object);
}

static void
slim_pipeline_class_init (SlimPipelineClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_pipeline_finalize;
}

static void
slim_pipeline_init (SlimPipeline *self)
{
  self->runner_name = g_strdup (runner_names[0]);
  self->dataset = g_strdup (SLIM_PIPELINE_DEFAULT_DATASET);
  self->prior = g_array_new (FALSE, TRUE, sizeof (SlimPipelineStage));
  g_array_set_clear_func (self->prior, (GDestroyNotify)stage_clear);
  stage_init (&self->main);
  self->savers = g_ptr_array_new_with_free_func (g_object_unref);
  self->notes = g_ptr_array_new_with_free_func (g_free);
}

static void
add_error (GPtrArray *errors, const SlimConfigNode *node, gint code, const char *format, ...)
    G_GNUC_PRINTF (4, 5);

static void
add_error (GPtrArray *errors, const SlimConfigNode *node, gint code, const char *format, ...)
{
  g_autofree char *text = NULL;
  GError *error = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  slim_config_error_at (&error, node, code, "%s", text);
  g_ptr_array_add (errors, error);
}

static char *
describe_value (const SlimConfigNode *node)
{
  if (slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SCALAR
      && !slim_config_node_is_null (node))
    return g_strdup_printf ("'%s'", slim_config_node_get_scalar (node));
  return g_strdup_printf ("%s%s", slim_config_node_is_null (node) ? "" : "a ",
                          slim_config_node_describe_kind (node));
}

/* A string-valued key: any non-null scalar. */
static const char *
get_string (const SlimConfigNode *node, const char *where, const char *key, GPtrArray *errors)
{
  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_SCALAR
      || slim_config_node_is_null (node))
    {
      g_autofree char *got = describe_value (node);
      add_error (errors, node, SLIM_CONFIG_ERROR_BAD_VALUE, "%s: '%s' must be a string, got %s",
                 where, key, got);
      return NULL;
    }
  return slim_config_node_get_scalar (node);
}

static char *
get_dataset (const SlimConfigNode *node, const char *where, GPtrArray *errors)
{
  const char *text = get_string (node, where, "dataset", errors);
  glong n_chars;

  if (text == NULL)
    return NULL;
  n_chars = g_utf8_strlen (text, -1);
  if (n_chars == 0 || n_chars > SLIM_PIPELINE_MAX_DATASET_CHARS)
    {
      add_error (errors, node, SLIM_CONFIG_ERROR_BAD_VALUE,
                 "%s: 'dataset' must have 1 to %d characters, got %ld", where,
                 SLIM_PIPELINE_MAX_DATASET_CHARS, n_chars);
      return NULL;
    }
  return g_strdup (text);
}

static gboolean
is_sequence (const SlimConfigNode *node,
             const char *where,
             const char *key,
             const char *what,
             GPtrArray *errors)
{
  if (slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SEQUENCE)
    return TRUE;
  {
    g_autofree char *got = describe_value (node);
    add_error (errors, node, SLIM_CONFIG_ERROR_BAD_VALUE, "%s: '%s' must be a list of %s, got %s",
               where, key, what, got);
  }
  return FALSE;
}

static char *
entry_label (SlimConfigNode *entry, const char *where, GObject *object)
{
  const SlimPluginDesc *desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (object));
  g_autofree char *location = slim_config_node_dup_location (entry);

  return g_strdup_printf ("%s: %s (%s)", location, where,
                          desc != NULL ? desc->name : G_OBJECT_TYPE_NAME (object));
}

/* Builds the plugin entries of @list (a sequence) into @objects. */
static void
build_entries (SlimRegistry *registry,
               SlimPluginKind kind,
               SlimConfigNode *list,
               const char *list_name,
               GPtrArray *objects,
               GPtrArray *labels,
               GPtrArray *errors)
{
  for (guint i = 0; i < slim_config_node_get_n_items (list); i++)
    {
      SlimConfigNode *entry = slim_config_node_get_item (list, i);
      g_autofree char *where = g_strdup_printf ("%s[%u]", list_name, i);
      GObject *object = slim_config_plugin_new (registry, kind, entry, where, errors);

      if (object == NULL)
        continue;
      if (labels != NULL)
        g_ptr_array_add (labels, entry_label (entry, where, object));
      if (SLIM_IS_PROCESSOR (object))
        {
          g_autofree char *label = entry_label (entry, where, object);

          slim_processor_set_config_location (SLIM_PROCESSOR (object), label);
        }
      g_ptr_array_add (objects, object);
    }
}

static void
build_prior (SlimPipeline *self, SlimRegistry *registry, SlimConfigNode *prior, GPtrArray *errors)
{
  if (!is_sequence (prior, "spec", "prior", "stages", errors))
    return;
  for (guint i = 0; i < slim_config_node_get_n_items (prior); i++)
    {
      SlimConfigNode *item = slim_config_node_get_item (prior, i);
      g_autofree char *where = g_strdup_printf ("prior[%u]", i);
      SlimPipelineStage stage;
      gboolean has_process = FALSE;

      if (slim_config_node_get_kind (item) != SLIM_CONFIG_NODE_MAPPING)
        {
          g_autofree char *got = describe_value (item);
          add_error (errors, item, SLIM_CONFIG_ERROR_BAD_VALUE,
                     "%s: a prior stage must be a mapping with 'process' and optional 'dataset', "
                     "got %s",
                     where, got);
          continue;
        }
      stage_init (&stage);
      for (guint k = 0; k < slim_config_node_get_n_items (item); k++)
        {
          SlimConfigNode *key = slim_config_node_get_key (item, k);
          SlimConfigNode *value = slim_config_node_get_item (item, k);
          const char *name = slim_config_node_get_scalar (key);

          if (strcmp (name, "process") == 0)
            {
              g_autofree char *list_name = g_strdup_printf ("%s.process", where);

              has_process = TRUE;
              if (!is_sequence (value, where, "process", "processor entries", errors))
                continue;
              if (slim_config_node_get_n_items (value) == 0)
                add_error (errors, value, SLIM_CONFIG_ERROR_BAD_VALUE,
                           "%s: 'process' must not be empty", where);
              build_entries (registry, SLIM_PLUGIN_KIND_PROCESSOR, value, list_name,
                             stage.processors, stage.labels, errors);
            }
          else if (strcmp (name, "dataset") == 0)
            {
              g_free (stage.dataset);
              stage.dataset = get_dataset (value, where, errors);
            }
          else
            add_error (errors, key, SLIM_CONFIG_ERROR_UNKNOWN_KEY,
                       "%s: unknown key '%s' (valid keys: dataset, process)", where, name);
        }
      if (!has_process)
        add_error (errors, item, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "%s: missing required key 'process'", where);
      g_array_append_val (self->prior, stage);
    }
}

/* The runner plugin @name stands for: itself when registered, else
 * "auto" falls back to AUTO_RUNNER. */
static const char *
resolve_runner_name (SlimRegistry *registry, const char *name)
{
  if (slim_registry_get_desc (registry, SLIM_PLUGIN_KIND_RUNNER, name) != NULL)
    return name;
  return strcmp (name, "auto") == 0 ? AUTO_RUNNER : name;
}

static void
build_runner (SlimPipeline *self, SlimRegistry *registry, SlimConfigNode *node, GPtrArray *errors)
{
  const char *name = get_string (node, "spec", "runner", errors);
  g_autoptr (GPtrArray) runners = NULL;
  const char *resolved;
  gboolean known = FALSE;

  if (name == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (runner_names); i++)
    known = known || strcmp (name, runner_names[i]) == 0;
  if (!known)
    {
      add_error (errors, node, SLIM_CONFIG_ERROR_BAD_VALUE,
                 "spec: 'runner' must be one of auto, model_wise, layer_wise, dp_layer_wise; "
                 "got '%s'",
                 name);
      return;
    }
  g_free (self->runner_name);
  self->runner_name = g_strdup (name);

  /* Resolve to a plugin only once runner plugins exist. */
  runners = slim_registry_list (registry, SLIM_PLUGIN_KIND_RUNNER);
  if (runners->len == 0)
    return;
  resolved = resolve_runner_name (registry, name);
  if (slim_registry_get_desc (registry, SLIM_PLUGIN_KIND_RUNNER, resolved) == NULL)
    {
      add_error (errors, node, SLIM_CONFIG_ERROR_UNSUPPORTED,
                 "spec: runner '%s' is not available in this build", resolved);
    }
}

static void
resolve_runner (SlimPipeline *self, SlimRegistry *registry, GPtrArray *errors)
{
  g_autoptr (GPtrArray) runners = slim_registry_list (registry, SLIM_PLUGIN_KIND_RUNNER);
  const char *resolved = resolve_runner_name (registry, self->runner_name);
  g_autoptr (GError) error = NULL;
  GObject *runner;

  if (runners->len == 0
      || slim_registry_get_desc (registry, SLIM_PLUGIN_KIND_RUNNER, resolved) == NULL)
    return;
  runner = slim_registry_new_object (registry, SLIM_PLUGIN_KIND_RUNNER, resolved, &error);
  if (runner == NULL)
    {
      add_error (errors, self->config, SLIM_CONFIG_ERROR_UNSUPPORTED, "spec: runner '%s': %s",
                 resolved, error->message);
      return;
    }
  self->runner = SLIM_RUNNER (runner);
}

/* spec.default_text: msModelSlim's prompt for calibration samples that
 * have an image and no text (its vision-language loaders; its text
 * service ignores the key).  slimflow calibrates text-only models, so the
 * key is accepted, checked as msModelSlim checks it (a non-empty string)
 * and reported as having no effect rather than rejected: lab configs of
 * text models carry it. */
static void
check_default_text (const SlimConfigNode *value, GPtrArray *errors)
{
  const char *text = get_string (value, "spec", "default_text", errors);
  g_autofree char *where = NULL;

  if (text == NULL)
    return;
  if (*text == '\0')
    {
      add_error (errors, value, SLIM_CONFIG_ERROR_BAD_VALUE,
                 "spec: 'default_text' must be a non-empty string");
      return;
    }
  where = slim_config_node_dup_location (value);
  g_warning ("%s: spec.default_text is the prompt of image-only calibration samples; this "
             "model's calibration data is text, so it has no effect",
             where);
}

static void
build_spec (SlimPipeline *self, SlimRegistry *registry, SlimConfigNode *spec, GPtrArray *errors)
{
  gboolean has_work = FALSE;

  for (guint k = 0; k < slim_config_node_get_n_items (spec); k++)
    {
      SlimConfigNode *key = slim_config_node_get_key (spec, k);
      SlimConfigNode *value = slim_config_node_get_item (spec, k);
      const char *name = slim_config_node_get_scalar (key);

      if (strcmp (name, "runner") == 0)
        build_runner (self, registry, value, errors);
      else if (strcmp (name, "prior") == 0)
        {
          build_prior (self, registry, value, errors);
          has_work = has_work || slim_config_node_get_n_items (value) > 0;
        }
      else if (strcmp (name, "process") == 0)
        {
          if (!is_sequence (value, "spec", "process", "processor entries", errors))
            continue;
          has_work = has_work || slim_config_node_get_n_items (value) > 0;
          build_entries (registry, SLIM_PLUGIN_KIND_PROCESSOR, value, "process",
                         self->main.processors, self->main.labels, errors);
        }
      else if (strcmp (name, "save") == 0)
        {
          if (!is_sequence (value, "spec", "save", "saver entries", errors))
            continue;
          has_work = has_work || slim_config_node_get_n_items (value) > 0;
          build_entries (registry, SLIM_PLUGIN_KIND_SAVER, value, "save", self->savers, NULL,
                         errors);
        }
      else if (strcmp (name, "dataset") == 0)
        {
          char *dataset = get_dataset (value, "spec", errors);
          if (dataset != NULL)
            {
              g_free (self->dataset);
              self->dataset = dataset;
            }
        }
      else if (strcmp (name, "default_text") == 0)
        check_default_text (value, errors);
      else
        add_error (errors, key, SLIM_CONFIG_ERROR_UNKNOWN_KEY,
                   "spec: unknown key '%s' (valid keys: dataset, default_text, prior, process, "
                   "runner, save)",
                   name);
    }
  if (!has_work)
    add_error (errors, spec, SLIM_CONFIG_ERROR_MISSING_KEY,
               "spec: nothing to do: 'process', 'prior' and 'save' are all missing or empty");
  if (errors->len == 0)
    resolve_runner (self, registry, errors);
}

/* Builds everything that can be built from @root; problems go to @errors.
 * Always returns a pipeline (transfer full), complete only when no error
 * was added. */
static SlimPipeline *
pipeline_build (SlimRegistry *registry, SlimConfigNode *root, GPtrArray *errors)
{
  SlimPipeline *self = g_object_new (SLIM_TYPE_PIPELINE, NULL);
  SlimConfigNode *apiversion;
  SlimConfigNode *spec;

  self->config = slim_config_node_ref (root);
  if (slim_config_node_get_kind (root) != SLIM_CONFIG_NODE_MAPPING)
    {
      g_autofree char *got = describe_value (root);
      add_error (errors, root, SLIM_CONFIG_ERROR_BAD_VALUE,
                 "the top level must be a mapping with 'apiversion' and 'spec', got %s", got);
      return self;
    }

  /* Extra top-level keys (metadata, anchor holders) are accepted, as
   * msModelSlim's BaseQuantConfig does (extra="allow"). */
  apiversion = slim_config_node_lookup (root, "apiversion");
  if (apiversion == NULL)
    add_error (errors, root, SLIM_CONFIG_ERROR_MISSING_KEY, "missing required key 'apiversion'");
  else if (slim_config_node_get_kind (apiversion) != SLIM_CONFIG_NODE_SCALAR
           || slim_config_node_is_null (apiversion))
    {
      g_autofree char *got = describe_value (apiversion);
      add_error (errors, apiversion, SLIM_CONFIG_ERROR_BAD_VALUE,
                 "'apiversion' must be a string, got %s", got);
    }
  else if (strcmp (slim_config_node_get_scalar (apiversion), SLIM_CONFIG_V0_APIVERSION) == 0)
    {
      /* A v0 config is checked by its translator (which names v0's
       * fields), then built as the v1 pipeline it translates to. */
      self->v1_config = slim_config_v0_translate (root, self->notes, errors);
      if (self->v1_config == NULL)
        return self;
      self->apiversion = g_strdup (SLIM_CONFIG_V0_APIVERSION);
      root = self->v1_config;
    }
  else if (strcmp (slim_config_node_get_scalar (apiversion), SLIM_PIPELINE_APIVERSION) != 0)
    {
      /* Another apiversion has another spec layout: checking it against
       * ours would only add noise. */
      add_error (errors, apiversion, SLIM_CONFIG_ERROR_UNSUPPORTED,
                 "unsupported apiversion '%s' (supported: %s, %s)",
                 slim_config_node_get_scalar (apiversion), SLIM_PIPELINE_APIVERSION,
                 SLIM_CONFIG_V0_APIVERSION);
      return self;
    }
  else
    self->apiversion = g_strdup (SLIM_PIPELINE_APIVERSION);

  spec = slim_config_node_lookup (root, "spec");
  if (spec == NULL)
    add_error (errors, root, SLIM_CONFIG_ERROR_MISSING_KEY, "missing required key 'spec'");
  else if (slim_config_node_get_kind (spec) != SLIM_CONFIG_NODE_MAPPING)
    {
      g_autofree char *got = describe_value (spec);
      add_error (errors, spec, SLIM_CONFIG_ERROR_BAD_VALUE, "'spec' must be a mapping, got %s",
                 got);
    }
  else
    build_spec (self, registry, spec, errors);
  return self;
}

SlimPipeline *
slim_pipeline_new_from_node (SlimRegistry *registry, SlimConfigNode *root, GError **error)
{
  g_autoptr (SlimPipeline) self = NULL;
  g_autoptr (GPtrArray) errors = slim_config_errors_new ();

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), NULL);
  g_return_val_if_fail (root != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = pipeline_build (registry, root, errors);
  if (!slim_config_errors_propagate (errors, error))
    return NULL;
  return g_steal_pointer (&self);
}

SlimPipeline *
slim_pipeline_new_from_data (
    SlimRegistry *registry, const char *data, gsize n_bytes, const char *file_name, GError **error)
{
  g_autoptr (SlimConfigNode) root = NULL;

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), NULL);
  root = slim_config_parse_data (data, n_bytes, file_name, error);
  if (root == NULL)
    return NULL;
  return slim_pipeline_new_from_node (registry, root, error);
}

SlimPipeline *
slim_pipeline_new_from_file (SlimRegistry *registry, const char *path, GError **error)
{
  g_autoptr (SlimConfigNode) root = NULL;

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), NULL);
  root = slim_config_parse_file (path, error);
  if (root == NULL)
    return NULL;
  return slim_pipeline_new_from_node (registry, root, error);
}

static void
validate_stage (SlimPipelineStage *stage, GPtrArray *errors)
{
  for (guint i = 0; i < stage->processors->len; i++)
    {
      g_autoptr (GError) local = NULL;

      if (slim_processor_validate (g_ptr_array_index (stage->processors, i), &local))
        continue;
      g_ptr_array_add (
          errors, g_error_new (SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE, "%s: %s",
                               (const char *)g_ptr_array_index (stage->labels, i), local->message));
    }
}

static void
validate_into (SlimPipeline *self, GPtrArray *errors)
{
  for (guint i = 0; i < self->prior->len; i++)
    validate_stage (&g_array_index (self->prior, SlimPipelineStage, i), errors);
  validate_stage (&self->main, errors);
}

gboolean
slim_pipeline_validate (SlimPipeline *self, GError **error)
{
  g_autoptr (GPtrArray) errors = slim_config_errors_new ();

  g_return_val_if_fail (SLIM_IS_PIPELINE (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  validate_into (self, errors);
  return slim_config_errors_propagate (errors, error);
}

static gboolean
check_root (SlimRegistry *registry,
            SlimConfigNode *root,
            SlimPipeline **out_pipeline,
            GError **error)
{
  g_autoptr (SlimPipeline) self = NULL;
  g_autoptr (GPtrArray) errors = slim_config_errors_new ();

  self = pipeline_build (registry, root, errors);
  /* Processors that were built are validated even when other entries
   * failed, so one run lists every problem. */
  validate_into (self, errors);
  if (!slim_config_errors_propagate (errors, error))
    return FALSE;
  if (out_pipeline != NULL)
    *out_pipeline = g_steal_pointer (&self);
  return TRUE;
}

gboolean
slim_pipeline_check_data (SlimRegistry *registry,
                          const char *data,
                          gsize n_bytes,
                          const char *file_name,
                          SlimPipeline **out_pipeline,
                          GError **error)
{
  g_autoptr (SlimConfigNode) root = NULL;

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  root = slim_config_parse_data (data, n_bytes, file_name, error);
  if (root == NULL)
    return FALSE;
  return check_root (registry, root, out_pipeline, error);
}

gboolean
slim_pipeline_check_file (SlimRegistry *registry,
                          const char *path,
                          SlimPipeline **out_pipeline,
                          GError **error)
{
  g_autoptr (SlimConfigNode) root = NULL;

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  root = slim_config_parse_file (path, error);
  if (root == NULL)
    return FALSE;
  return check_root (registry, root, out_pipeline, error);
}

SlimConfigNode *
slim_pipeline_get_config (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->config;
}

SlimConfigNode *
slim_pipeline_get_v1_config (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->v1_config != NULL ? self->v1_config : self->config;
}

GPtrArray *
slim_pipeline_get_notes (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->notes;
}

const char *
slim_pipeline_get_apiversion (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->apiversion;
}

const char *
slim_pipeline_get_runner_name (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->runner_name;
}

SlimRunner *
slim_pipeline_get_runner (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->runner;
}

const char *
slim_pipeline_get_dataset (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->dataset;
}

GPtrArray *
slim_pipeline_get_processors (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->main.processors;
}

GPtrArray *
slim_pipeline_get_savers (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  return self->savers;
}

guint
slim_pipeline_get_n_prior_stages (SlimPipeline *self)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), 0);
  return self->prior->len;
}

GPtrArray *
slim_pipeline_get_prior_processors (SlimPipeline *self, guint stage)
{
  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  g_return_val_if_fail (stage < self->prior->len, NULL);
  return g_array_index (self->prior, SlimPipelineStage, stage).processors;
}

const char *
slim_pipeline_get_prior_dataset (SlimPipeline *self, guint stage)
{
  const SlimPipelineStage *prior;

  g_return_val_if_fail (SLIM_IS_PIPELINE (self), NULL);
  g_return_val_if_fail (stage < self->prior->len, NULL);
  prior = &g_array_index (self->prior, SlimPipelineStage, stage);
  return prior->dataset != NULL ? prior->dataset : self->dataset;
}
