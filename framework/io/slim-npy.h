/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-npy.h: NumPy .npy files (format versions 1.0, 2.0 and 3.0 read,
 * 1.0 written), C order, little-endian: float32, float64, float16, int8,
 * uint8, int16, int32, int64 and bool.  A file is untrusted: magic,
 * version, header length, the header dictionary (descr, fortran_order,
 * shape), the shape product and the data length are all checked before
 * anything is allocated.
 */
#pragma once

#include <glib.h>
#include "slim-tensor.h"

G_BEGIN_DECLS

/**
 * slim_npy_read:
 * @path: a .npy file
 * @error: return location for a #GError (SLIM_FORMAT_ERROR or G_FILE_ERROR)
 *
 * Returns: (transfer full) (nullable): an owned tensor named @path, or
 * NULL with @error set.
 */
SlimTensor *slim_npy_read (const char *path, GError **error);

/**
 * slim_npy_parse:
 * @data: (array length=n_bytes): the whole file
 * @what: file name used in error messages
 *
 * As slim_npy_read() on a buffer (used by the fuzzer and the tests).
 * Returns: (transfer full) (nullable): an owned tensor named @what.
 */
SlimTensor *slim_npy_parse (const guint8 *data, gsize n_bytes, const char *what, GError **error);

/**
 * slim_npy_write:
 * @path: destination; written to a temporary name, then renamed
 * @tensor: a tensor of a dtype .npy can hold (not the packed 4-bit types)
 *
 * Returns: TRUE on success, FALSE with @error set.
 */
gboolean slim_npy_write (const char *path, const SlimTensor *tensor, GError **error);

G_END_DECLS
