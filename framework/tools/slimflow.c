/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow: the command-line front end.  Dispatches to one function per
 * subcommand (slimflow-<command>.c).  Exit codes: 0 success, 1 runtime
 * failure, 2 usage or configuration error.
 */
#include <locale.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <string.h>

#include "slimflow-commands.h"
#include "slim-comm.h"

typedef struct
{
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} SlimCommand;

static const SlimCommand commands[] = {
  { "validate", slim_cmd_validate, "check a modelslim_v1 YAML pipeline without reading weights" },
  { "plugins", slim_cmd_plugins, "list plugins, show one plugin's properties, print JSON schemas" },
  { "inspect", slim_cmd_inspect, "describe a safetensors file or a model folder" },
  { "logits", slim_cmd_logits, "run a model on token ids and write float32 logits (.npy)" },
  { "eval", slim_cmd_eval, "perplexity of a model on a text, and KL against a reference" },
  { "generate", slim_cmd_generate, "greedy text generation" },
  { "quant", slim_cmd_quant, "quantize a model folder with a modelslim_v1 pipeline" },
  { "ablate", slim_cmd_ablate, "quantize and score every variant of an ablation matrix" },
  { "analyze", slim_cmd_analyze, "per-linear quantization sensitivity, heat map, exclusions" },
};

static void
print_usage (FILE *stream)
{
  fprintf (stream, "Usage: slimflow COMMAND [OPTIONS]\n\nCommands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (stream, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (stream, "\nRun 'slimflow COMMAND --help' for a command's options.\n");
}

void
slim_cli_print_error (const char *command, const GError *error)
{
  fprintf (stderr, "slimflow %s: %s\n", command, error != NULL ? error->message : "failed");
}

gboolean
slim_cli_parse (const char *command,
                const char *parameter_string,
                const char *summary,
                const GOptionEntry *entries,
                int *argc,
                char ***argv,
                gboolean *out_exit_now)
{
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *prgname = g_strdup_printf ("slimflow %s", command);

  *out_exit_now = FALSE;
  /* --help prints "Usage: slimflow COMMAND [OPTION…] PARAMETERS". */
  g_set_prgname (prgname);
  context = g_option_context_new (parameter_string);
  g_option_context_set_summary (context, summary);
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_help_enabled (context, TRUE);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      fprintf (stderr, "slimflow %s: %s (see 'slimflow %s --help')\n", command, error->message,
               command);
      return FALSE;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  /* Numbers in files and messages are always C-locale. */
  setlocale (LC_NUMERIC, "C");
#ifdef __GLIBC__
  /* Layer-wise work allocates and frees tens of MiB per layer.  glibc
   * raises its mmap threshold after such frees and then serves them from
   * the heap, whose fragments made the peak resident memory of `quant`
   * grow with the number of layers (bench/quant: +12% from 1 to 4 layers);
   * a fixed threshold keeps big buffers in their own mappings, returned to
   * the system when freed, and the peak flat. */
  mallopt (M_MMAP_THRESHOLD, 4 << 20);
#endif

  if (argc < 2)
    {
      print_usage (stderr);
      return SLIM_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
      || strcmp (argv[1], "help") == 0)
    {
      print_usage (stdout);
      return SLIM_EXIT_OK;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("slimflow 0.1.0\n");
      return SLIM_EXIT_OK;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        int code;

        /* Under mpirun every rank starts here: MPI is initialised once,
         * before any thread, and finalised after the command (a data-
         * parallel `quant` takes the ranks from it, slimflow-quant.c). */
        if (slim_comm_mpi_launched () && slim_comm_mpi_is_built ())
          {
            g_autoptr (GError) error = NULL;

            if (!slim_comm_mpi_init (&argc, &argv, &error))
              {
                fprintf (stderr, "slimflow: %s\n", error->message);
                return SLIM_EXIT_FAILURE;
              }
          }
        code = commands[i].run (argc - 1, argv + 1);
        slim_comm_mpi_shutdown ();
        return code;
      }

  fprintf (stderr, "slimflow: unknown command '%s'\n\n", argv[1]);
  print_usage (stderr);
  return SLIM_EXIT_USAGE;
}
