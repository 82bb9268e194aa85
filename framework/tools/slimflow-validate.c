/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow validate --config_path FILE [--explain]
 *
 * Loads a modelslim_v1 config (or a modelslim_v0 one, translated first:
 * slim-config-v0.h), resolves every process/save entry against
 * the installed plugins and runs each processor's validate step, without
 * reading any model weight.  Every problem is listed, one per line, as
 * "FILE:LINE:COL: WHERE: message" on stderr.
 *
 * Exit status: 0 valid; 2 invalid (or unreadable) config or bad usage;
 * 1 when the plugin directories cannot be loaded.
 *
 * --explain prints, for a valid config, the modelslim_v1 document that is
 * run (for v0, the translation, preceded by the translation notes as YAML
 * comments) on stdout after the summary line.
 */
#include <stdio.h>
#include <string.h>

#include "slimflow-commands.h"
#include "slim-error.h"
#include "slim-pipeline.h"
#include "slim-registry.h"

static int
report_errors (const char *config_path, const GError *error)
{
  g_auto (GStrv) lines = g_strsplit (error->message, "\n", -1);
  guint n_errors = 0;

  /* One error per line; an indented line continues the error above it
   * (e.g. the list of legal act/weight combinations). */
  for (guint i = 0; lines[i] != NULL; i++)
    {
      fprintf (stderr, "%s\n", lines[i]);
      if (lines[i][0] != '\0' && !g_ascii_isspace (lines[i][0]))
        n_errors++;
    }
  fprintf (stderr, "slimflow validate: %s: %u error%s\n", config_path, n_errors,
           n_errors == 1 ? "" : "s");
  return SLIM_EXIT_USAGE;
}

int
slim_cmd_validate (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autoptr (SlimRegistry) registry = NULL;
  g_autoptr (SlimPipeline) pipeline = NULL;
  g_autoptr (GError) error = NULL;
  gboolean exit_now = FALSE;
  gboolean explain = FALSE;
  const GOptionEntry entries[] = {
    { "config_path", 0, 0, G_OPTION_ARG_FILENAME, &config_path,
      "The modelslim_v1 (or modelslim_v0) YAML config to check", "FILE" },
    { "explain", 0, 0, G_OPTION_ARG_NONE, &explain,
      "Also print the modelslim_v1 pipeline that runs (a modelslim_v0 config's translation)",
      NULL },
    { NULL },
  };

  if (!slim_cli_parse ("validate", NULL,
                       "Checks a modelslim_v1 YAML pipeline, or a modelslim_v0 one translated to\n"
                       "v1 (keys, types, ranges, plugin names and\n"
                       "each processor's own checks) without reading any weight. Lists every\n"
                       "problem as FILE:LINE:COL: message; --explain prints the v1 pipeline.\n"
                       "Exit 0 valid, 2 invalid, 1 when the\n"
                       "plugins cannot be loaded.",
                       entries, &argc, &argv, &exit_now))
    return SLIM_EXIT_USAGE;
  if (exit_now)
    return SLIM_EXIT_OK;
  if (config_path == NULL || argc > 1)
    {
      fprintf (stderr, "slimflow validate: %s (see 'slimflow validate --help')\n",
               config_path == NULL ? "--config_path FILE is required" : "unexpected argument");
      return SLIM_EXIT_USAGE;
    }

  registry = slim_registry_new ();
  if (!slim_registry_scan_default (registry, &error))
    {
      slim_cli_print_error ("validate", error);
      return SLIM_EXIT_FAILURE;
    }

  if (!slim_pipeline_check_file (registry, config_path, &pipeline, &error))
    return report_errors (config_path, error);

  printf ("%s: valid (%s, runner %s, %u prior stage%s, %u processor%s, %u saver%s, dataset %s)\n",
          config_path, slim_pipeline_get_apiversion (pipeline),
          slim_pipeline_get_runner_name (pipeline), slim_pipeline_get_n_prior_stages (pipeline),
          slim_pipeline_get_n_prior_stages (pipeline) == 1 ? "" : "s",
          slim_pipeline_get_processors (pipeline)->len,
          slim_pipeline_get_processors (pipeline)->len == 1 ? "" : "s",
          slim_pipeline_get_savers (pipeline)->len,
          slim_pipeline_get_savers (pipeline)->len == 1 ? "" : "s",
          slim_pipeline_get_dataset (pipeline));
  if (explain)
    {
      GPtrArray *notes = slim_pipeline_get_notes (pipeline);
      g_autofree char *yaml = slim_config_node_to_yaml (slim_pipeline_get_v1_config (pipeline));

      if (strcmp (slim_pipeline_get_apiversion (pipeline), "modelslim_v1") != 0)
        printf ("# %s translated from %s\n", config_path, slim_pipeline_get_apiversion (pipeline));
      for (guint i = 0; i < notes->len; i++)
        printf ("# %s\n", (const char *)g_ptr_array_index (notes, i));
      fputs (yaml, stdout);
    }
  return SLIM_EXIT_OK;
}
