/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow analyze --model_path DIR --config_path FILE [--out DIR]
 *                  [--exclude-top N --write-config FILE]
 *                  [--calib_dir DIR] [--max_samples N] [--max_length N] [--threads N]
 *
 * Per-linear quantization sensitivity (slim-sensitivity.h): quantizes the
 * model with the config in a temporary folder, runs the calibration set
 * through the float model and prints, per linear, the relative output
 * error of its quantized version, sorted.  With --out: sensitivity.json,
 * sensitivity.csv and heatmap.svg (layers x linears).  With --exclude-top N
 * --write-config FILE: the config with the N most sensitive linears added
 * to the `exclude` list of every linear processor entry, checked before it
 * is written.  Pipelines with a smoothing processor (smooth_quant,
 * iter_smooth) or a rotation (quarot) are refused (exit 2): they rescale
 * or rotate weights across linears, so a linear's error against the float
 * linear is not defined.  Exit status as `slimflow quant`.
 */
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "slim-ablate.h"
#include "slim-config-writer.h"
#include "slim-datadir.h"
#include "slim-error.h"
#include "slim-linalg.h"
#include "slim-linear-processor.h"
#include "slim-quant-model.h"
#include "slim-quantize.h"
#include "slim-sensitivity.h"
#include "slim-smooth-processor.h"
#include "slim-svg.h"
#include "slimflow-commands.h"

#define CMD "analyze"

/* quant_model_description.json: tensor name -> quant_type string. */
static GHashTable *
read_labels (const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename (dir, "quant_model_description.json", NULL);
  g_autoptr (JsonParser) parser = json_parser_new ();
  GHashTable *labels = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonObject *o;

  if (!json_parser_load_from_file (parser, path, error))
    {
      g_hash_table_unref (labels);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return labels;
  o = json_node_get_object (json_parser_get_root (parser));
  g_autoptr (GList) members = json_object_get_members (o);
  for (GList *m = members; m != NULL; m = m->next)
    {
      JsonNode *node = json_object_get_member (o, m->data);
      if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
        g_hash_table_insert (labels, g_strdup (m->data), g_strdup (json_node_get_string (node)));
    }
  return labels;
}

static gint
by_model_order (gconstpointer a, gconstpointer b)
{
  const SlimSensitivity *x = *(const SlimSensitivity *const *)a;
  const SlimSensitivity *y = *(const SlimSensitivity *const *)b;

  return x->order < y->order ? -1 : x->order > y->order;
}

static gboolean
write_outputs (GPtrArray *entries,
               guint n_layers,
               const char *out_dir,
               const char *config_path,
               GError **error)
{
  g_autoptr (GPtrArray) kinds = g_ptr_array_new ();
  g_autoptr (JsonBuilder) b = json_builder_new ();
  GString *csv = g_string_new ("rank,module,layer,linear,label,relative_error\n");
  g_autofree double *values = NULL;
  g_autofree char *svg = NULL;
  g_autofree char *title = NULL;
  g_autofree char *base = g_path_get_basename (config_path);
  gboolean ok;

  if (g_mkdir_with_parents (out_dir, 0755) != 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: cannot create the folder",
                   out_dir);
      g_string_free (csv, TRUE);
      return FALSE;
    }
  /* Heat map columns: the linear kinds in the model's order, named by
   * their last component (q_proj, ..., down_proj). */
  g_autoptr (GPtrArray) by_order = g_ptr_array_new (); /* borrowed entries */
  for (guint i = 0; i < entries->len; i++)
    g_ptr_array_add (by_order, g_ptr_array_index (entries, i));
  g_ptr_array_sort (by_order, by_model_order);
  for (guint i = 0; i < by_order->len; i++)
    {
      SlimSensitivity *e = g_ptr_array_index (by_order, i);
      gboolean seen = FALSE;
      for (guint k = 0; k < kinds->len && !seen; k++)
        seen = strcmp (g_ptr_array_index (kinds, k), e->kind) == 0;
      if (!seen)
        g_ptr_array_add (kinds, e->kind);
    }
  g_autoptr (GPtrArray) short_names = g_ptr_array_new ();
  for (guint k = 0; k < kinds->len; k++)
    {
      const char *kind = g_ptr_array_index (kinds, k);
      const char *dot = strrchr (kind, '.');
      g_ptr_array_add (short_names, (gpointer)(dot != NULL ? dot + 1 : kind));
    }
  values = g_new (double, MAX (n_layers * kinds->len, 1)); /* (n_layers, n_kinds) */
  for (guint i = 0; i < n_layers * kinds->len; i++)
    values[i] = NAN;
  json_builder_begin_array (b);
  for (guint i = 0; i < entries->len; i++)
    {
      SlimSensitivity *e = g_ptr_array_index (entries, i);
      for (guint k = 0; k < kinds->len; k++)
        if (strcmp (g_ptr_array_index (kinds, k), e->kind) == 0 && strcmp (e->label, "float") != 0)
          values[e->layer * kinds->len + k] = e->error;
      g_string_append_printf (csv, "%u,%s,%u,%s,%s,%.8f\n", i + 1, e->module, e->layer, e->kind,
                              e->label, e->error);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "module");
      json_builder_add_string_value (b, e->module);
      json_builder_set_member_name (b, "layer");
      json_builder_add_int_value (b, e->layer);
      json_builder_set_member_name (b, "linear");
      json_builder_add_string_value (b, e->kind);
      json_builder_set_member_name (b, "label");
      json_builder_add_string_value (b, e->label);
      json_builder_set_member_name (b, "relative_error");
      json_builder_add_double_value (b, e->error);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  title = g_strdup_printf ("slimflow analyze: per-linear sensitivity of %s", base);
  svg = slim_svg_heat_map (title, values, n_layers, (const char *const *)short_names->pdata,
                           kinds->len);
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  g_autofree char *json = json_to_string (root, TRUE);
  g_autofree char *p_json = g_build_filename (out_dir, "sensitivity.json", NULL);
  g_autofree char *p_csv = g_build_filename (out_dir, "sensitivity.csv", NULL);
  g_autofree char *p_svg = g_build_filename (out_dir, "heatmap.svg", NULL);
  ok = g_file_set_contents (p_json, json, -1, error)
       && g_file_set_contents (p_csv, csv->str, -1, error)
       && g_file_set_contents (p_svg, svg, -1, error);
  g_string_free (csv, TRUE);
  return ok;
}

/* The config with the n most sensitive linears excluded by every linear
 * processor; checked, then written to path. */
static gboolean
write_excluding (SlimRegistry *registry,
                 const char *config_path,
                 GPtrArray *entries,
                 guint n,
                 const char *path,
                 GError **error)
{
  g_autoptr (SlimConfigNode) root = slim_config_parse_file (config_path, error);
  g_autoptr (GPtrArray) values
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_config_node_unref);
  g_autoptr (GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GArray) edits = g_array_new (FALSE, TRUE, sizeof (SlimConfigEdit));
  SlimConfigNode *spec, *process;
  g_autofree char *text = NULL;
  g_autofree char *header = NULL;

  if (root == NULL)
    return FALSE;
  spec = slim_config_node_lookup (root, "spec");
  process = spec != NULL ? slim_config_node_lookup (spec, "process") : NULL;
  for (guint i = 0; process != NULL && i < slim_config_node_get_n_items (process); i++)
    {
      SlimConfigNode *entry = slim_config_node_get_item (process, i);
      SlimConfigNode *type = slim_config_node_lookup (entry, "type");
      SlimConfigNode *exclude = slim_config_node_lookup (entry, "exclude");
      GType gtype = type != NULL ? slim_registry_lookup (registry, SLIM_PLUGIN_KIND_PROCESSOR,
                                                         slim_config_node_get_scalar (type), NULL)
                                 : G_TYPE_INVALID;
      if (gtype == G_TYPE_INVALID || !g_type_is_a (gtype, SLIM_TYPE_LINEAR_PROCESSOR))
        continue;
      g_autoptr (JsonBuilder) b = json_builder_new ();
      json_builder_begin_array (b);
      for (guint k = 0; exclude != NULL && k < slim_config_node_get_n_items (exclude); k++)
        json_builder_add_string_value (
            b, slim_config_node_get_scalar (slim_config_node_get_item (exclude, k)));
      for (guint k = 0; k < n && k < entries->len; k++)
        json_builder_add_string_value (b,
                                       ((SlimSensitivity *)g_ptr_array_index (entries, k))->module);
      json_builder_end_array (b);
      g_autoptr (JsonNode) list = json_builder_get_root (b);
      g_autofree char *list_text = json_to_string (list, FALSE);
      SlimConfigNode *value
          = slim_config_parse_data (list_text, strlen (list_text), "exclude", error);
      if (value == NULL)
        return FALSE;
      g_ptr_array_add (values, value);
      g_ptr_array_add (paths, g_strdup_printf ("spec.process[%u].exclude", i));
      SlimConfigEdit edit
          = { SLIM_CONFIG_EDIT_SET, g_ptr_array_index (paths, paths->len - 1), value, entry };
      g_array_append_val (edits, edit);
    }
  if (edits->len == 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "%s: no linear processor entry to add exclusions to", config_path);
      return FALSE;
    }
  text = slim_config_write (root, (const SlimConfigEdit *)(gpointer)edits->data, edits->len, error);
  if (text == NULL || !slim_pipeline_check_data (registry, text, strlen (text), path, NULL, error))
    return FALSE;
  header = g_strdup_printf ("# %s with its %u most sensitive linears left float "
                            "(slimflow analyze --exclude-top %u)\n%s",
                            config_path, n, n, text);
  return g_file_set_contents (path, header, -1, error);
}

int
slim_cmd_analyze (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *config_path = NULL, *out_dir = NULL;
  g_autofree char *write_config = NULL, *calib_dir = NULL;
  gint exclude_top = 0, max_samples = 0, max_length = 0, n_threads = 0, n_print = 20;
  gboolean exit_now = FALSE;
  const GOptionEntry entries[] = {
    { "model_path", 0, 0, G_OPTION_ARG_FILENAME, &model_path, "The float model folder", "DIR" },
    { "config_path", 0, 0, G_OPTION_ARG_FILENAME, &config_path, "modelslim_v1 YAML pipeline",
      "FILE" },
    { "out", 0, 0, G_OPTION_ARG_FILENAME, &out_dir,
      "Write sensitivity.json, sensitivity.csv and heatmap.svg here", "DIR" },
    { "exclude-top", 0, 0, G_OPTION_ARG_INT, &exclude_top,
      "With --write-config: exclude the N most sensitive linears", "N" },
    { "write-config", 0, 0, G_OPTION_ARG_FILENAME, &write_config,
      "Write the config excluding the --exclude-top N linears to FILE", "FILE" },
    { "top", 0, 0, G_OPTION_ARG_INT, &n_print, "Print the N most sensitive (default 20)", "N" },
    { "calib_dir", 0, 0, G_OPTION_ARG_FILENAME, &calib_dir, "Folder searched for spec.dataset",
      "DIR" },
    { "max_samples", 0, 0, G_OPTION_ARG_INT, &max_samples,
      "Use at most N calibration samples (0 = all)", "N" },
    { "max_length", 0, 0, G_OPTION_ARG_INT, &max_length,
      "Truncate calibration samples to N tokens (0 = no limit)", "N" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "OpenBLAS threads (0: one per processor)",
      "N" },
    { NULL },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimRegistry) registry = NULL;
  g_autoptr (SlimPipeline) pipeline = NULL;
  g_autoptr (SlimModel) model = NULL;
  g_autoptr (SlimModel) qmodel = NULL;
  g_autoptr (SlimQuantModel) quant = NULL;
  g_autoptr (SlimTokenizer) tokenizer = NULL;
  g_autoptr (SlimDataset) dataset = NULL;
  g_autoptr (GHashTable) labels = NULL;
  g_autoptr (GPtrArray) result = NULL;
  g_autofree char *text = NULL, *dataset_path = NULL, *tmp = NULL, *save = NULL;
  g_autofree char *model_sha = NULL, *config_sha = NULL, *dataset_sha = NULL;
  SlimCheckpointHashes hashes = { { 0 } };
  SlimForwardHooks hooks;
  gsize n_bytes = 0;
  int code = SLIM_EXIT_FAILURE;

  if (!slim_cli_parse (CMD, NULL,
                       "Per-linear quantization sensitivity: the relative output error of every\n"
                       "linear's quantized version on the calibration set, sorted, a heat map,\n"
                       "and optionally a config leaving the N most sensitive linears float.",
                       entries, &argc, &argv, &exit_now))
    return SLIM_EXIT_USAGE;
  if (exit_now)
    return SLIM_EXIT_OK;
  if (argc > 1 || model_path == NULL || config_path == NULL || exclude_top < 0 || max_samples < 0
      || max_length < 0 || n_threads < 0 || n_print < 0
      || (write_config != NULL) != (exclude_top > 0))
    {
      fprintf (stderr, "slimflow " CMD ": --model_path and --config_path are required; "
                       "--exclude-top N > 0 and --write-config go together "
                       "(see 'slimflow " CMD " --help')\n");
      return SLIM_EXIT_USAGE;
    }
  slim_linalg_set_n_threads (n_threads);
  registry = slim_registry_new ();
  if (!slim_registry_scan_default (registry, &error))
    goto fail;
  if (!g_file_get_contents (config_path, &text, &n_bytes, &error)
      || !slim_pipeline_check_data (registry, text, n_bytes, config_path, &pipeline, &error))
    {
      code = SLIM_EXIT_USAGE;
      goto fail;
    }
  /* Smoothing rescales weights across linears (and norms): a linear's
   * quantized weight then expects inputs the float model does not make,
   * and its error against the float linear is not defined. */
  for (guint i = 0; i < slim_pipeline_get_processors (pipeline)->len; i++)
    {
      SlimProcessor *p = g_ptr_array_index (slim_pipeline_get_processors (pipeline), i);
      if (slim_processor_changes_basis (p))
        {
          g_set_error (&error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "%s: process[%u] (%s) rotates the residual stream, so a quantized "
                       "linear's inputs are not the float model's and per-linear errors against "
                       "it are not defined; analyze the config without it",
                       config_path, i, slim_processor_get_type_name (p));
          code = SLIM_EXIT_USAGE;
          goto fail;
        }
      if (SLIM_IS_SMOOTH_PROCESSOR (p))
        {
          g_set_error (&error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "%s: process[%u] (%s) rescales weights across linears, so per-linear "
                       "errors against the float model are not defined; analyze the config "
                       "without it (the quantizer alone)",
                       config_path, i, slim_processor_get_type_name (p));
          code = SLIM_EXIT_USAGE;
          goto fail;
        }
    }
  dataset_path
      = slim_datadir_resolve_dataset (slim_pipeline_get_dataset (pipeline), calib_dir, &error);
  if (dataset_path == NULL)
    {
      code = SLIM_EXIT_USAGE;
      goto fail;
    }
  model = slim_model_open (model_path, &error);
  if (model == NULL)
    goto fail;
  tokenizer = slim_tokenizer_new_from_dir (model_path, &error);
  if (tokenizer == NULL
      || (dataset = slim_quantize_load_dataset (registry, dataset_path, tokenizer,
                                                (guint)max_samples, (guint)max_length, &error))
             == NULL)
    goto fail;
  model_sha = slim_checkpoint_hash_model (model_path, &error);
  if (model_sha == NULL)
    goto fail;
  config_sha = slim_checkpoint_hash_config (text, n_bytes);
  dataset_sha = slim_quantize_hash_dataset (dataset);
  g_strlcpy (hashes.config, config_sha, sizeof hashes.config);
  g_strlcpy (hashes.model, model_sha, sizeof hashes.model);
  g_strlcpy (hashes.dataset, dataset_sha, sizeof hashes.dataset);
  tmp = g_dir_make_tmp ("slimflow-analyze-XXXXXX", &error);
  if (tmp == NULL)
    goto fail;
  save = g_build_filename (tmp, "quantized", NULL);
  {
    SlimQuantizeJob job
        = { model, pipeline, slim_quantize_needs_data (pipeline) ? dataset : NULL, &hashes, save,
            0,     NULL };
    if (!slim_quantize_run (&job, &error))
      goto fail;
  }
  labels = read_labels (save, &error);
  quant = labels != NULL ? slim_quant_model_load (save, &error) : NULL;
  if (quant == NULL)
    goto fail;
  qmodel = slim_model_open (slim_quant_model_get_float_dir (quant), &error);
  if (qmodel == NULL)
    goto fail;
  g_clear_object (&model); /* a fresh float model: the run recorded its decisions in it */
  model = slim_model_open (model_path, &error);
  if (model == NULL)
    goto fail;
  slim_quant_model_get_hooks (quant, &hooks);
  result = slim_sensitivity_measure (model, qmodel, &hooks, labels, dataset, &error);
  if (result == NULL)
    goto fail;

  printf ("%s on %s: %u linears, %u calibration samples\nprocessors:", config_path, model_path,
          result->len, slim_dataset_get_n_samples (dataset));
  for (guint i = 0; i < slim_pipeline_get_processors (pipeline)->len; i++)
    printf (" %s", slim_processor_get_type_name (
                       g_ptr_array_index (slim_pipeline_get_processors (pipeline), i)));
  printf ("\n");
  printf ("rank  relative error  label   module\n");
  for (guint i = 0; i < result->len && i < (guint)n_print; i++)
    {
      SlimSensitivity *e = g_ptr_array_index (result, i);
      printf ("%4u  %14.6f  %-6s  %s\n", i + 1, e->error, e->label, e->module);
    }
  if (out_dir != NULL
      && !write_outputs (result, slim_model_get_n_layers (model), out_dir, config_path, &error))
    goto fail;
  if (write_config != NULL)
    {
      if (!write_excluding (registry, config_path, result, (guint)exclude_top, write_config,
                            &error))
        goto fail;
      printf ("wrote %s: the %d most sensitive linears left float\n", write_config, exclude_top);
    }
  code = SLIM_EXIT_OK;
  goto out;
fail:
  slim_cli_print_error (CMD, error);
out:
  g_clear_pointer (&quant, slim_quant_model_free);
  if (tmp != NULL)
    slim_ablate_remove_tree (tmp, NULL);
  return code;
}
