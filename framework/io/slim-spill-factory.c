/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-spill-factory.c: the spill store of a run, from its configured kind
 * and $SLIM_SPILL.
 */
#include "slim-spill-factory.h"

#include "slim-error.h"
#include "slim-spill-hdf5.h"
#include "slim-spill-memory.h"

SlimSpill *
slim_spill_new (SlimSpillKind kind, const char *work_dir, GError **error)
{
  const char *env = g_getenv ("SLIM_SPILL");
  g_autofree char *path = NULL;

  if (env != NULL && env[0] != '\0')
    {
      if (g_ascii_strcasecmp (env, "memory") == 0)
        kind = SLIM_SPILL_KIND_MEMORY;
      else if (g_ascii_strcasecmp (env, "hdf5") == 0)
        kind = SLIM_SPILL_KIND_HDF5;
      else
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "SLIM_SPILL='%s': expected 'memory' or 'hdf5'", env);
          return NULL;
        }
    }
  if (kind == SLIM_SPILL_KIND_MEMORY)
    return SLIM_SPILL (slim_spill_memory_new ());
  if (work_dir == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "an HDF5 spill store needs a work directory");
      return NULL;
    }
  path = g_build_filename (work_dir, SLIM_SPILL_FILE_NAME, NULL);
  return (SlimSpill *)slim_spill_hdf5_create (path, error);
}
