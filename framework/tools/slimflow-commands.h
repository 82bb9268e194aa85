/* SPDX-License-Identifier: Apache-2.0
 *
 * slimflow-commands.h: one entry point per subcommand of the slimflow CLI.
 * Each returns the process exit code: SLIM_EXIT_OK, SLIM_EXIT_FAILURE (a
 * runtime failure) or SLIM_EXIT_USAGE (bad usage or configuration).  argv[0]
 * is the subcommand name.  A command prints its error once, to stderr, as
 * "slimflow <cmd>: <message>".
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_EXIT_OK 0
#define SLIM_EXIT_FAILURE 1
#define SLIM_EXIT_USAGE 2

int slim_cmd_validate (int argc, char **argv);
int slim_cmd_plugins (int argc, char **argv);
int slim_cmd_inspect (int argc, char **argv);
int slim_cmd_logits (int argc, char **argv);
int slim_cmd_eval (int argc, char **argv);
int slim_cmd_generate (int argc, char **argv);
int slim_cmd_quant (int argc, char **argv);
int slim_cmd_ablate (int argc, char **argv);
int slim_cmd_analyze (int argc, char **argv);

/* Parses options of a subcommand with GOptionContext; on failure prints
 * the error and returns FALSE (the caller exits with SLIM_EXIT_USAGE).
 * --help prints the help and sets *out_exit_now (exit code 0). */
gboolean slim_cli_parse (const char *command,
                         const char *parameter_string,
                         const char *summary,
                         const GOptionEntry *entries,
                         int *argc,
                         char ***argv,
                         gboolean *out_exit_now);

/* Prints "slimflow <command>: <message>" to stderr. */
void slim_cli_print_error (const char *command, const GError *error);

G_END_DECLS
