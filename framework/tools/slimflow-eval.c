/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder: being written */
#include <stdio.h>
#include "slimflow-commands.h"

int
slim_cmd_eval (int argc, char **argv)
{
  fprintf (stderr, "slimflow eval: not built yet\n");
  return SLIM_EXIT_FAILURE;
}
