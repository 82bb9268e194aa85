/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-spill-factory.h: slim_spill_new(), which picks the SlimSpill
 * implementation for a run: SlimSpillMemory or SlimSpillHdf5 in the work
 * dir, as configured; the environment variable SLIM_SPILL=memory|hdf5
 * overrides the configured choice (tests run with SLIM_SPILL=memory, as
 * GEGL's run with GEGL_SWAP=RAM).  Above both implementations, which only
 * know the interface (slim-spill.h).
 */
#pragma once

#include "slim-spill.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_SPILL_KIND_AUTO,   /* HDF5 in the work dir (the default for real runs) */
  SLIM_SPILL_KIND_MEMORY, /* keep everything in RAM */
  SLIM_SPILL_KIND_HDF5,
} SlimSpillKind;

/* Name of the HDF5 spill file inside a work dir. */
#define SLIM_SPILL_FILE_NAME "spill.h5"

/**
 * slim_spill_new:
 * @kind: the configured kind; $SLIM_SPILL ("memory" or "hdf5") overrides it
 * @work_dir: (nullable): directory for the HDF5 file (required unless memory)
 * @error: return location for an error
 *
 * Returns: (transfer full) (nullable): a new, empty store.  An HDF5 store
 * creates (truncating) @work_dir/spill.h5.
 */
SlimSpill *slim_spill_new (SlimSpillKind kind, const char *work_dir, GError **error);

G_END_DECLS
