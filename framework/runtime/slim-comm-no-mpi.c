/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-comm-no-mpi.c: what slim-comm.h promises about MPI when libslimflow
 * is built without it (meson option `mpi` disabled or MPI not found):
 * every entry point says so.
 */
#include "slim-comm.h"
#include "slim-comm-private.h"

#include <gio/gio.h>

gboolean
slim_comm_mpi_is_built (void)
{
  return FALSE;
}

gboolean
slim_comm_mpi_launched (void)
{
  return g_getenv ("OMPI_COMM_WORLD_SIZE") != NULL;
}

gboolean
slim_comm_mpi_init (int *argc, char ***argv, GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "slimflow was built without MPI");
  return FALSE;
}

gboolean
slim_comm_mpi_is_initialized (void)
{
  return FALSE;
}

void
slim_comm_mpi_shutdown (void)
{
}

SlimComm *
slim_comm_new_mpi (GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "slimflow was built without MPI");
  return NULL;
}
