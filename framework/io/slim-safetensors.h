/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-safetensors.h: reading and writing the safetensors format.
 *
 * SlimSafetensors memory-maps one file or every shard named by a
 * *.safetensors.index.json and hands out tensors on demand as read-only
 * views into the mapping (nothing is copied or resident until touched).
 * Files are untrusted: the header is fully validated before any tensor is
 * exposed (length bound, JSON well-formed, known dtypes, shape products
 * without overflow, byte ranges in the file, not overlapping, equal to
 * dtype x shape).
 *
 * SlimSafetensorsWriter writes tensors in the order they are added,
 * sharding by a byte limit with the ascendv1 rollover rule
 * (modelslim-v1-spec.md 3.1) and creating every file atomically
 * (temporary name, then rename).
 */
#pragma once

#include <glib-object.h>
#include "slim-tensor.h"

G_BEGIN_DECLS

/* Hard limit on the JSON header, in bytes (the format's own reference
 * implementation uses 100 MB). */
#define SLIM_SAFETENSORS_MAX_HEADER_BYTES (100 * 1024 * 1024)

#define SLIM_TYPE_SAFETENSORS (slim_safetensors_get_type ())
G_DECLARE_FINAL_TYPE (SlimSafetensors, slim_safetensors, SLIM, SAFETENSORS, GObject)

/* path: a .safetensors file, a *.safetensors.index.json, or a folder
 * (which must hold model.safetensors or model.safetensors.index.json, or
 * exactly one index / one .safetensors file). */
SlimSafetensors *slim_safetensors_open (const char *path, GError **error);

/* Tensor names in a stable (sorted) order; transfer none, NULL-terminated. */
const char *const *slim_safetensors_get_names (SlimSafetensors *self);
guint slim_safetensors_get_n_tensors (SlimSafetensors *self);
gboolean slim_safetensors_contains (SlimSafetensors *self, const char *name);
/* Metadata only (no data touched). FALSE if the tensor is absent. */
gboolean slim_safetensors_get_info (SlimSafetensors *self,
                                    const char *name,
                                    SlimDType *out_dtype,
                                    guint *out_n_dims,
                                    gint64 *out_shape /* (SLIM_TENSOR_MAX_DIMS) */);
/* A read-only view of the tensor (transfer full); error if absent. */
SlimTensor *slim_safetensors_get_tensor (SlimSafetensors *self, const char *name, GError **error);
/* The same converted to float32 (a new owned tensor). */
SlimTensor *
slim_safetensors_get_tensor_f32 (SlimSafetensors *self, const char *name, GError **error);
/* Drops the resident mapped pages of a tensor (re-read if touched again);
 * get_tensor_f32 does it after converting.  See slim-safetensors.c. */
void slim_safetensors_release_pages (SlimSafetensors *self, const char *name);
/* __metadata__ of the (first) file: string -> string; transfer none, may be empty. */
GHashTable *slim_safetensors_get_metadata (SlimSafetensors *self);
/* Sum of the tensors' byte sizes. */
guint64 slim_safetensors_get_total_bytes (SlimSafetensors *self);
/* Number of files mapped (1 for a single file). */
guint slim_safetensors_get_n_files (SlimSafetensors *self);

/* ---- writer ------------------------------------------------------------ */

#define SLIM_TYPE_SAFETENSORS_WRITER (slim_safetensors_writer_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimSafetensorsWriter, slim_safetensors_writer, SLIM, SAFETENSORS_WRITER, GObject)

/* Writes into dir files named "<prefix>.safetensors" when shard_bytes == 0
 * (single file, no index), else "<prefix>-00001-of-0000N.safetensors"
 * (5-digit zero padding) plus "<prefix>.safetensors.index.json" =
 * {"metadata": {"total_size": N}, "weight_map": {tensor: file}}.
 * Rollover: before adding a tensor, when pending_bytes + tensor_bytes >=
 * shard_bytes and the shard is non-empty, the current shard is closed.
 * Tensor bytes go to a data file of their shard in dir as they are added
 * (no tensor is kept in memory); finish() assembles the shards. */
SlimSafetensorsWriter *slim_safetensors_writer_new (const char *dir,
                                                    const char *prefix,
                                                    guint64 shard_bytes,
                                                    GError **error);
/* Optional __metadata__ string pairs written in every shard. */
void slim_safetensors_writer_set_metadata (SlimSafetensorsWriter *self,
                                           const char *key,
                                           const char *value);
/* Writes a tensor's bytes to disk (no ref kept); fails on a duplicate name. */
gboolean
slim_safetensors_writer_add (SlimSafetensorsWriter *self, SlimTensor *tensor, GError **error);
/* Flushes the last shard, renames shards into their final N-of-M names,
 * writes the index. Files appear atomically. */
gboolean slim_safetensors_writer_finish (SlimSafetensorsWriter *self, GError **error);
/* Number of tensors added so far and bytes written (after finish). */
guint slim_safetensors_writer_get_n_tensors (SlimSafetensorsWriter *self);

/* Resume support (see slim-safetensors-writer.c): the state is a GVariant
 * "(a{ss}a(siaxtu)ut)"; restore on a new writer with the same dir, prefix
 * and shard size, before anything is added. */
GVariant *slim_safetensors_writer_save_state (SlimSafetensorsWriter *self, GError **error);
gboolean slim_safetensors_writer_restore_state (SlimSafetensorsWriter *self,
                                                GVariant *state,
                                                GError **error);

/* Write one single file atomically from an array of tensors (in order). */
gboolean slim_safetensors_write_file (const char *path,
                                      SlimTensor *const *tensors,
                                      guint n_tensors,
                                      GHashTable *metadata /* nullable, string->string */,
                                      GError **error);

G_END_DECLS
