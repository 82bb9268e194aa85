/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-writer.h: a GGUF version 3 file (ggml's docs/gguf.md), written
 * in one pass while a run streams layers:
 *
 *   "GGUF", u32 version 3, u64 n_tensors, u64 n_kv,
 *   n_kv x { gguf_string key, u32 value type, value },
 *   n_tensors x { gguf_string name, u32 n_dims, u64 ne[n_dims],
 *                 u32 ggml type, u64 offset (from the data start) },
 *   zero padding to the alignment, the tensor data (each tensor at an
 *   offset that is a multiple of the alignment, zero padding between).
 *
 * gguf_string is u64 length + bytes (no NUL); arrays are u32 element type,
 * u64 count, elements; everything little-endian.  ne[0] is the innermost
 * (contiguous) dimension: a row-major (rows, cols) matrix has ne = {cols,
 * rows}.  The alignment is 32 (written as general.alignment).
 *
 * Tensor data goes to "<path>.data-partial" as it is added, so memory does
 * not grow with the model; finish writes "<path>.partial" (header,
 * metadata, tensor infos, then the data copied over) and renames it to
 * path.  A writer freed before finish removes both partial files.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_GGUF_ALIGNMENT 32
#define SLIM_GGUF_VERSION 3
/* GGML_MAX_NAME: names are at most 63 bytes (a NUL follows in ggml). */
#define SLIM_GGUF_MAX_NAME 63
#define SLIM_GGUF_MAX_DIMS 4

/* ggml_type values (ggml.h). */
typedef enum
{
  SLIM_GGML_TYPE_F32 = 0,
  SLIM_GGML_TYPE_F16 = 1,
  SLIM_GGML_TYPE_Q4_0 = 2,
  SLIM_GGML_TYPE_Q4_1 = 3,
  SLIM_GGML_TYPE_Q8_0 = 8,
  SLIM_GGML_TYPE_Q4_K = 12,
  SLIM_GGML_TYPE_Q6_K = 14,
} SlimGgmlType;

/* gguf_type values of metadata (docs/gguf.md). */
typedef enum
{
  SLIM_GGUF_TYPE_UINT8 = 0,
  SLIM_GGUF_TYPE_INT8 = 1,
  SLIM_GGUF_TYPE_UINT16 = 2,
  SLIM_GGUF_TYPE_INT16 = 3,
  SLIM_GGUF_TYPE_UINT32 = 4,
  SLIM_GGUF_TYPE_INT32 = 5,
  SLIM_GGUF_TYPE_FLOAT32 = 6,
  SLIM_GGUF_TYPE_BOOL = 7,
  SLIM_GGUF_TYPE_STRING = 8,
  SLIM_GGUF_TYPE_ARRAY = 9,
  SLIM_GGUF_TYPE_UINT64 = 10,
  SLIM_GGUF_TYPE_INT64 = 11,
  SLIM_GGUF_TYPE_FLOAT64 = 12,
} SlimGgufType;

/* "F32", "Q8_0", ... */
const char *slim_ggml_type_name (SlimGgmlType type);
/* Bytes of a row of ne0 elements; 0 when ne0 is not a whole number of
 * blocks of the type (32 elements for Q4_0 / Q4_1 / Q8_0, super-blocks of
 * 256 for Q4_K / Q6_K). */
guint64 slim_ggml_row_bytes (SlimGgmlType type, guint64 ne0);

typedef struct _SlimGgufWriter SlimGgufWriter;

SlimGgufWriter *slim_gguf_writer_new (const char *path, GError **error);
void slim_gguf_writer_free (SlimGgufWriter *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimGgufWriter, slim_gguf_writer_free)

/* Metadata, in the order set (a key set twice is a programming error). */
void slim_gguf_writer_set_u32 (SlimGgufWriter *self, const char *key, guint32 value);
void slim_gguf_writer_set_i32 (SlimGgufWriter *self, const char *key, gint32 value);
void slim_gguf_writer_set_f32 (SlimGgufWriter *self, const char *key, float value);
void slim_gguf_writer_set_bool (SlimGgufWriter *self, const char *key, gboolean value);
void slim_gguf_writer_set_string (SlimGgufWriter *self, const char *key, const char *value);
void slim_gguf_writer_set_string_array (SlimGgufWriter *self,
                                        const char *key,
                                        const char *const *values, /* (n) */
                                        gsize n);
void slim_gguf_writer_set_f32_array (SlimGgufWriter *self,
                                     const char *key,
                                     const float *values, /* (n) */
                                     gsize n);
void slim_gguf_writer_set_i32_array (SlimGgufWriter *self,
                                     const char *key,
                                     const gint32 *values, /* (n) */
                                     gsize n);
gboolean slim_gguf_writer_has_key (SlimGgufWriter *self, const char *key);

/* Starts a tensor of n_dims dims ne (ne[0] innermost) whose data follows
 * in slim_gguf_writer_append calls, row by row, up to exactly
 * slim_ggml_row_bytes (type, ne[0]) * ne[1] * ... bytes; the next
 * begin_tensor or finish checks the count.  Fails for a duplicate or too
 * long name, or dims the type cannot hold. */
gboolean slim_gguf_writer_begin_tensor (SlimGgufWriter *self,
                                        const char *name,
                                        SlimGgmlType type,
                                        guint n_dims,
                                        const guint64 *ne, /* (n_dims) */
                                        GError **error);
gboolean
slim_gguf_writer_append (SlimGgufWriter *self, gconstpointer data, gsize n_bytes, GError **error);
guint64 slim_gguf_writer_get_n_tensors (SlimGgufWriter *self);

/* Tensors begun so far with the given type. */
guint64 slim_gguf_writer_count_type (SlimGgufWriter *self, SlimGgmlType type);

/* Writes the file and moves it to path. */
gboolean slim_gguf_writer_finish (SlimGgufWriter *self, GError **error);

/* Resume (slim-saver.h): the tensors written so far (their infos, names
 * and the data file's length; the data made durable), and a writer that
 * continues from such a state on the interrupted run's data file, cut back
 * to that length.  Metadata is not part of the state: set it again.  The
 * bytes come from a file: they are checked. */
GBytes *slim_gguf_writer_save_state (SlimGgufWriter *self, GError **error);
SlimGgufWriter *slim_gguf_writer_new_resumed (const char *path, GBytes *state, GError **error);

G_END_DECLS
