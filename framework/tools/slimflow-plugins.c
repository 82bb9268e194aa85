/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder: being written */
#include <stdio.h>
#include "slimflow-commands.h"

int
slim_cmd_plugins (int argc, char **argv)
{
  fprintf (stderr, "slimflow plugins: not built yet\n");
  return SLIM_EXIT_FAILURE;
}
