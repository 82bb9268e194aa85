/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hdf5.h: the one place that talks to the HDF5 library (internal to
 * libslimflow; used by the HDF5 spill store and the run checkpoints).
 *
 * Debian's HDF5 is the serial build, which is not thread-safe: every HDF5
 * call goes through slim_hdf5_lock() / slim_hdf5_unlock() (a process-wide
 * recursive mutex) unless H5is_library_threadsafe() says the library
 * locks itself.  Locking also turns HDF5's automatic error printing off;
 * failures are turned into a GError carrying the HDF5 error stack with
 * slim_hdf5_set_error().
 *
 * Tensors are stored one dataset per tensor, chunked, with a Fletcher-32
 * checksum per chunk (so corrupted data is reported, not returned) and
 * attributes "slim_dtype" (the dtype name), "slim_n_dims" and "slim_shape"
 * (int64, the shape in elements) and "slim_name" (the tensor's name, if any).  The dataset itself
 * has the tensor's shape and an HDF5 type matching the dtype (f32, f64, i8 ... i64); dtypes HDF5
 * has no type for keep their raw bits (f16, bf16 as u16; bool, f8 as u8) and packed 4-bit types are
 * a 1-D u8 dataset of their bytes.
 */
#pragma once

#include <glib.h>
#include <hdf5.h>
#include "slim-tensor.h"

G_BEGIN_DECLS

/* Take / release the process-wide HDF5 lock (recursive). */
void slim_hdf5_lock (void);
void slim_hdf5_unlock (void);

/* Sets error (domain, code) to "<what>: <HDF5 error stack>" and clears the
 * HDF5 error stack.  Call with the lock held, right after the failing call. */
void slim_hdf5_set_error (GError **error, GQuark domain, gint code, const char *what, ...)
    G_GNUC_PRINTF (4, 5);

/* Creates (truncating) or opens an HDF5 file: strong close degree, file
 * locking where the filesystem supports it, freed space reused.  Opening
 * checks the file exists (G_FILE_ERROR_NOENT) and reports a file HDF5
 * cannot read as SLIM_FORMAT_ERROR_INVALID.  Returns -1 with error set
 * (the message does not repeat the path: callers prefix it).  Lock held. */
hid_t slim_hdf5_create_file (const char *path, GError **error);
hid_t slim_hdf5_open_file (const char *path, gboolean writable, GError **error);

/* Dataset names: every byte outside [A-Za-z0-9_.-] (and a leading '.')
 * is written %XX, so any key maps to one link name and back. */
char *slim_hdf5_escape_name (const char *key);
/* NULL when name is not a valid escaped name. */
char *slim_hdf5_unescape_name (const char *name);

/* Writes tensor as dataset name under loc (replacing nothing: the name
 * must be free).  Lock held. */
gboolean
slim_hdf5_write_tensor (hid_t loc, const char *name, const SlimTensor *tensor, GError **error);
/* Overwrites an existing dataset in place when it has the same dtype and
 * shape; *out_done is FALSE (and nothing written) otherwise.  Lock held. */
gboolean slim_hdf5_overwrite_tensor (
    hid_t loc, const char *name, const SlimTensor *tensor, gboolean *out_done, GError **error);
/* Reads dataset name under loc back into a new tensor, named tensor_name
 * or, when NULL, with the name it was written with.  Attributes,
 * dataspace and type are validated before any allocation.  Lock held. */
SlimTensor *
slim_hdf5_read_tensor (hid_t loc, const char *name, const char *tensor_name, GError **error);

/* Scalar int64 / fixed-length string attributes on an object.  Lock held. */
gboolean slim_hdf5_write_attr_int64 (hid_t obj, const char *attr, gint64 value, GError **error);
gboolean slim_hdf5_read_attr_int64 (hid_t obj, const char *attr, gint64 *out_value, GError **error);
gboolean
slim_hdf5_write_attr_string (hid_t obj, const char *attr, const char *value, GError **error);
/* Strings longer than max_bytes are refused (untrusted files). */
char *slim_hdf5_read_attr_string (hid_t obj, const char *attr, gsize max_bytes, GError **error);

G_END_DECLS
