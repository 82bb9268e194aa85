/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-spill-hdf5.h: SlimSpillHdf5, the SlimSpill backed by one HDF5 file.
 *
 * One dataset per key (the key %XX-escaped into a link name), chunked with
 * a Fletcher-32 checksum per chunk, in the tensor's own dtype, with the
 * dtype and shape as attributes (slim-hdf5.h).  Every put() is flushed to
 * the file.  Re-putting a key with the same dtype and shape overwrites the
 * data in place, so a layer loop that replaces sample i with its next
 * activations does not grow the file.  Reading back validates attributes,
 * dataspace, type and checksums: a corrupt or truncated file gives a
 * GError, never a crash, and HDF5 prints nothing (its error stack is
 * copied into the GError).  All HDF5 calls go through slim_hdf5_lock().
 *
 * The file is scratch: it is not removed on finalize (the work area is
 * removed as a whole when a run ends), and it is not a resume point (the
 * checkpoint holds the inputs a resumed run needs).
 */
#pragma once

#include "slim-spill.h"

G_BEGIN_DECLS

#define SLIM_TYPE_SPILL_HDF5 (slim_spill_hdf5_get_type ())
G_DECLARE_FINAL_TYPE (SlimSpillHdf5, slim_spill_hdf5, SLIM, SPILL_HDF5, GObject)

/**
 * slim_spill_hdf5_create:
 * @path: the file to create; an existing file is truncated
 * @error: return location for an error
 *
 * Returns: (transfer full) (nullable): an empty store.
 */
SlimSpillHdf5 *slim_spill_hdf5_create (const char *path, GError **error);

/**
 * slim_spill_hdf5_open:
 * @path: an existing spill file, opened read-write
 * @error: return location for an error (the file is untrusted)
 *
 * Returns: (transfer full) (nullable): the store holding the file's keys.
 */
SlimSpillHdf5 *slim_spill_hdf5_open (const char *path, GError **error);

/**
 * slim_spill_hdf5_get_path:
 * Returns: (transfer none): the file's path.
 */
const char *slim_spill_hdf5_get_path (SlimSpillHdf5 *self);

G_END_DECLS
