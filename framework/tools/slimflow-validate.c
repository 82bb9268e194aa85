/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder: being written */
#include <stdio.h>
#include "slimflow-commands.h"

int
slim_cmd_validate (int argc, char **argv)
{
  fprintf (stderr, "slimflow validate: not built yet\n");
  return SLIM_EXIT_FAILURE;
}
