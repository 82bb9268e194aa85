/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-writer.c: GGUF v3 files (see the header for the layout).
 */
#include "slim-gguf-writer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "slim-error.h"

/* ggml type ids below this are counted (every SlimGgmlType is). */
#define SLIM_GGUF_N_TYPE_SLOTS 16

struct _SlimGgufWriter
{
  char *path;
  char *partial_path; /* the whole file before the rename */
  char *data_path;    /* the tensor data while layers arrive */
  FILE *data;
  guint64 data_bytes; /* written to data so far, padding included */
  GByteArray *kv;     /* serialized key/value pairs */
  guint64 n_kv;
  GHashTable *keys;  /* char * (owned) */
  GByteArray *infos; /* serialized tensor infos */
  guint64 n_tensors;
  GHashTable *names;    /* char * (owned) */
  GPtrArray *name_list; /* the same names in write order (owned by names) */
  guint64 type_counts[SLIM_GGUF_N_TYPE_SLOTS];
  /* the tensor being appended */
  char *open_name;
  guint64 open_expected;
  guint64 open_written;
  gboolean finished;
  gboolean keep_partial; /* a resume that failed leaves the interrupted run's files */
};

const char *
slim_ggml_type_name (SlimGgmlType type)
{
  switch (type)
    {
    case SLIM_GGML_TYPE_F32:
      return "F32";
    case SLIM_GGML_TYPE_F16:
      return "F16";
    case SLIM_GGML_TYPE_Q4_0:
      return "Q4_0";
    case SLIM_GGML_TYPE_Q4_1:
      return "Q4_1";
    case SLIM_GGML_TYPE_Q8_0:
      return "Q8_0";
    case SLIM_GGML_TYPE_Q4_K:
      return "Q4_K";
    case SLIM_GGML_TYPE_Q6_K:
      return "Q6_K";
    }
  return "unknown";
}

guint64
slim_ggml_row_bytes (SlimGgmlType type, guint64 ne0)
{
  switch (type)
    {
    case SLIM_GGML_TYPE_F32:
      return 4 * ne0;
    case SLIM_GGML_TYPE_F16:
      return 2 * ne0;
    case SLIM_GGML_TYPE_Q4_0:
      return ne0 % 32 == 0 ? ne0 / 32 * 18 : 0;
    case SLIM_GGML_TYPE_Q4_1:
      return ne0 % 32 == 0 ? ne0 / 32 * 20 : 0;
    case SLIM_GGML_TYPE_Q8_0:
      return ne0 % 32 == 0 ? ne0 / 32 * 34 : 0;
    case SLIM_GGML_TYPE_Q4_K:
      return ne0 % 256 == 0 ? ne0 / 256 * 144 : 0;
    case SLIM_GGML_TYPE_Q6_K:
      return ne0 % 256 == 0 ? ne0 / 256 * 210 : 0;
    }
  return 0;
}

static void
put_u32 (GByteArray *out, guint32 v)
{
  guint32 le = GUINT32_TO_LE (v);
  g_byte_array_append (out, (const guint8 *)&le, 4);
}

static void
put_u64 (GByteArray *out, guint64 v)
{
  guint64 le = GUINT64_TO_LE (v);
  g_byte_array_append (out, (const guint8 *)&le, 8);
}

static void
put_string (GByteArray *out, const char *s)
{
  gsize n = strlen (s);
  put_u64 (out, n);
  g_byte_array_append (out, (const guint8 *)s, (guint)n);
}

static void
put_f32 (GByteArray *out, float v)
{
  guint32 bits;
  memcpy (&bits, &v, 4);
  put_u32 (out, bits);
}

/**
 * slim_gguf_writer_new:
 * @path: the file to write
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a writer, %NULL when the data file
 *   cannot be created
 */
/* A writer on path's data file opened with mode ("wb" new, "r+b" resumed). */
static SlimGgufWriter *
slim_gguf_writer_open (const char *path, const char *mode, GError **error)
{
  SlimGgufWriter *self;
  g_autofree char *data_path = NULL;
  FILE *data;

  g_return_val_if_fail (path != NULL, NULL);
  data_path = g_strconcat (path, ".data-partial", NULL);
  data = g_fopen (data_path, mode);
  if (data == NULL)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot open %s: %s",
                   data_path, g_strerror (saved_errno));
      return NULL;
    }
  self = g_new0 (SlimGgufWriter, 1);
  self->path = g_strdup (path);
  self->partial_path = g_strconcat (path, ".partial", NULL);
  self->data_path = g_steal_pointer (&data_path);
  self->data = data;
  self->kv = g_byte_array_new ();
  self->keys = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->infos = g_byte_array_new ();
  self->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->name_list = g_ptr_array_new ();
  return self;
}

SlimGgufWriter *
slim_gguf_writer_new (const char *path, GError **error)
{
  return slim_gguf_writer_open (path, "wb", error);
}

/**
 * slim_gguf_writer_free:
 * @self: (nullable): a writer
 *
 * Drops the writer; the partial files of an unfinished one are removed.
 */
void
slim_gguf_writer_free (SlimGgufWriter *self)
{
  if (self == NULL)
    return;
  if (self->data != NULL)
    fclose (self->data);
  if (!self->finished && !self->keep_partial)
    {
      g_unlink (self->data_path);
      g_unlink (self->partial_path);
    }
  g_free (self->path);
  g_free (self->partial_path);
  g_free (self->data_path);
  g_byte_array_unref (self->kv);
  g_hash_table_unref (self->keys);
  g_byte_array_unref (self->infos);
  g_ptr_array_unref (self->name_list);
  g_hash_table_unref (self->names);
  g_free (self->open_name);
  g_free (self);
}

/* The key and the value type of a new pair; FALSE for a duplicate key. */
static gboolean
slim_gguf_writer_key (SlimGgufWriter *self, const char *key, SlimGgufType type)
{
  g_return_val_if_fail (self != NULL && key != NULL && !self->finished, FALSE);
  g_return_val_if_fail (!g_hash_table_contains (self->keys, key), FALSE);
  g_hash_table_add (self->keys, g_strdup (key));
  put_string (self->kv, key);
  put_u32 (self->kv, type);
  self->n_kv++;
  return TRUE;
}

gboolean
slim_gguf_writer_has_key (SlimGgufWriter *self, const char *key)
{
  g_return_val_if_fail (self != NULL && key != NULL, FALSE);
  return g_hash_table_contains (self->keys, key);
}

void
slim_gguf_writer_set_u32 (SlimGgufWriter *self, const char *key, guint32 value)
{
  if (slim_gguf_writer_key (self, key, SLIM_GGUF_TYPE_UINT32))
    put_u32 (self->kv, value);
}

void
slim_gguf_writer_set_i32 (SlimGgufWriter *self, const char *key, gint32 value)
{
  if (slim_gguf_writer_key (self, key, SLIM_GGUF_TYPE_INT32))
    put_u32 (self->kv, (guint32)value);
}

void
slim_gguf_writer_set_f32 (SlimGgufWriter *self, const char *key, float value)
{
  if (slim_gguf_writer_key (self, key, SLIM_GGUF_TYPE_FLOAT32))
    put_f32 (self->kv, value);
}

void
slim_gguf_writer_set_bool (SlimGgufWriter *self, const char *key, gboolean value)
{
  guint8 b = value ? 1 : 0;
  if (slim_gguf_writer_key (self, key, SLIM_GGUF_TYPE_BOOL))
    g_byte_array_append (self->kv, &b, 1);
}

void
slim_gguf_writer_set_string (SlimGgufWriter *self, const char *key, const char *value)
{
  g_return_if_fail (value != NULL);
  if (slim_gguf_writer_key (self, key, SLIM_GGUF_TYPE_STRING))
    put_string (self->kv, value);
}

void
slim_gguf_writer_set_string_array (SlimGgufWriter *self,
                                   const char *key,
                                   const char *const *values,
                                   gsize n)
{
  g_return_if_fail (values != NULL || n == 0);
  if (!slim_gguf_writer_key (self, key, SLIM_GGUF_TYPE_ARRAY))
    return;
  put_u32 (self->kv, SLIM_GGUF_TYPE_STRING);
  put_u64 (self->kv, n);
  for (gsize i = 0; i < n; i++)
    put_string (self->kv, values[i]);
}

void
slim_gguf_writer_set_f32_array (SlimGgufWriter *self, const char *key, const float *values, gsize n)
{
  g_return_if_fail (values != NULL || n == 0);
  if (!slim_gguf_writer_key (self, key, SLIM_GGUF_TYPE_ARRAY))
    return;
  put_u32 (self->kv, SLIM_GGUF_TYPE_FLOAT32);
  put_u64 (self->kv, n);
  for (gsize i = 0; i < n; i++)
    put_f32 (self->kv, values[i]);
}

void
slim_gguf_writer_set_i32_array (SlimGgufWriter *self,
                                const char *key,
                                const gint32 *values,
                                gsize n)
{
  g_return_if_fail (values != NULL || n == 0);
  if (!slim_gguf_writer_key (self, key, SLIM_GGUF_TYPE_ARRAY))
    return;
  put_u32 (self->kv, SLIM_GGUF_TYPE_INT32);
  put_u64 (self->kv, n);
  for (gsize i = 0; i < n; i++)
    put_u32 (self->kv, (guint32)values[i]);
}

static gboolean
slim_gguf_writer_write (FILE *f, const char *path, gconstpointer data, gsize n, GError **error)
{
  if (n > 0 && fwrite (data, 1, n, f) != n)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write %s: %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

/* Zero bytes up to the next multiple of the alignment after *offset. */
static gboolean
slim_gguf_writer_pad (FILE *f, const char *path, guint64 *offset, GError **error)
{
  static const guint8 zeros[SLIM_GGUF_ALIGNMENT] = { 0 };
  guint64 pad = (SLIM_GGUF_ALIGNMENT - *offset % SLIM_GGUF_ALIGNMENT) % SLIM_GGUF_ALIGNMENT;

  *offset += pad;
  return slim_gguf_writer_write (f, path, zeros, pad, error);
}

/* The open tensor got all its bytes. */
static gboolean
slim_gguf_writer_close_tensor (SlimGgufWriter *self, GError **error)
{
  if (self->open_name == NULL)
    return TRUE;
  if (self->open_written != self->open_expected)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: GGUF tensor %s got %" G_GUINT64_FORMAT " bytes of %" G_GUINT64_FORMAT,
                   self->path, self->open_name, self->open_written, self->open_expected);
      return FALSE;
    }
  g_clear_pointer (&self->open_name, g_free);
  return TRUE;
}

/**
 * slim_gguf_writer_begin_tensor:
 * @self: a writer
 * @name: the GGUF tensor name ("blk.0.attn_q.weight")
 * @type: its ggml type
 * @n_dims: 1 to 4
 * @ne: (array length=n_dims): its dimensions, innermost first
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the tensor's data may follow
 */
gboolean
slim_gguf_writer_begin_tensor (SlimGgufWriter *self,
                               const char *name,
                               SlimGgmlType type,
                               guint n_dims,
                               const guint64 *ne,
                               GError **error)
{
  guint64 n_bytes;

  g_return_val_if_fail (self != NULL && !self->finished, FALSE);
  g_return_val_if_fail (name != NULL && ne != NULL, FALSE);

  if (!slim_gguf_writer_close_tensor (self, error))
    return FALSE;
  if (strlen (name) > SLIM_GGUF_MAX_NAME || g_hash_table_contains (self->names, name))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "GGUF tensor %s: %s", name,
                   g_hash_table_contains (self->names, name) ? "written twice"
                                                             : "name longer than 63 bytes");
      return FALSE;
    }
  n_bytes = n_dims >= 1 ? slim_ggml_row_bytes (type, ne[0]) : 0;
  if (n_dims < 1 || n_dims > SLIM_GGUF_MAX_DIMS || n_bytes == 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "GGUF tensor %s: %u dims with ne[0] = %" G_GUINT64_FORMAT
                   " cannot be stored as %s (whole blocks of 32 along the rows)",
                   name, n_dims, n_dims >= 1 ? ne[0] : 0, slim_ggml_type_name (type));
      return FALSE;
    }
  for (guint d = 1; d < n_dims; d++)
    n_bytes *= ne[d];
  /* the data of every tensor starts aligned */
  if (!slim_gguf_writer_pad (self->data, self->data_path, &self->data_bytes, error))
    return FALSE;
  put_string (self->infos, name);
  put_u32 (self->infos, n_dims);
  for (guint d = 0; d < n_dims; d++)
    put_u64 (self->infos, ne[d]);
  put_u32 (self->infos, type);
  put_u64 (self->infos, self->data_bytes);
  self->n_tensors++;
  if ((guint)type < SLIM_GGUF_N_TYPE_SLOTS)
    self->type_counts[type]++;
  {
    char *owned = g_strdup (name);
    g_hash_table_add (self->names, owned);
    g_ptr_array_add (self->name_list, owned);
  }
  self->open_name = g_strdup (name);
  self->open_expected = n_bytes;
  self->open_written = 0;
  return TRUE;
}

/**
 * slim_gguf_writer_append:
 * @self: a writer with a tensor begun
 * @data: (array length=n_bytes): the next bytes of its data
 * @n_bytes: their count
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success; fails past the tensor's size or on a write
 *   error
 */
gboolean
slim_gguf_writer_append (SlimGgufWriter *self, gconstpointer data, gsize n_bytes, GError **error)
{
  g_return_val_if_fail (self != NULL && self->open_name != NULL, FALSE);
  if (self->open_written + n_bytes > self->open_expected)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "GGUF tensor %s: more than its %" G_GUINT64_FORMAT " bytes", self->open_name,
                   self->open_expected);
      return FALSE;
    }
  if (!slim_gguf_writer_write (self->data, self->data_path, data, n_bytes, error))
    return FALSE;
  self->open_written += n_bytes;
  self->data_bytes += n_bytes;
  return TRUE;
}

guint64
slim_gguf_writer_get_n_tensors (SlimGgufWriter *self)
{
  g_return_val_if_fail (self != NULL, 0);
  return self->n_tensors;
}

guint64
slim_gguf_writer_count_type (SlimGgufWriter *self, SlimGgmlType type)
{
  g_return_val_if_fail (self != NULL, 0);
  return (guint)type < SLIM_GGUF_N_TYPE_SLOTS ? self->type_counts[type] : 0;
}

/* n_tensors, data bytes, the tensor infos, the names in order, the counts
 * by type. */
#define SLIM_GGUF_STATE_TYPE "(ttayasat)"
#define SLIM_GGUF_STATE_FORMAT "(tt@ay@as@at)"

/**
 * slim_gguf_writer_save_state:
 * @self: a writer, not finished
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the tensors written so far, with
 *   their data flushed to disk
 */
GBytes *
slim_gguf_writer_save_state (SlimGgufWriter *self, GError **error)
{
  g_autoptr (GVariant) state = NULL;
  GVariantBuilder names;

  g_return_val_if_fail (self != NULL && !self->finished && self->data != NULL, NULL);
  if (!slim_gguf_writer_close_tensor (self, error))
    return NULL;
  if (fflush (self->data) != 0 || fsync (fileno (self->data)) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write %s: %s", self->data_path, g_strerror (saved_errno));
      return NULL;
    }
  g_variant_builder_init (&names, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < self->name_list->len; i++)
    g_variant_builder_add (&names, "s", (const char *)g_ptr_array_index (self->name_list, i));
  state = g_variant_ref_sink (g_variant_new (
      SLIM_GGUF_STATE_FORMAT, self->n_tensors, self->data_bytes,
      g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, self->infos->data, self->infos->len, 1),
      g_variant_builder_end (&names),
      g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, self->type_counts, SLIM_GGUF_N_TYPE_SLOTS,
                                 sizeof (guint64))));
  return g_variant_get_data_as_bytes (state);
}

/**
 * slim_gguf_writer_new_resumed:
 * @path: the file of the interrupted run
 * @state: what slim_gguf_writer_save_state() returned there
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a writer continuing after the
 *   saved tensors, or %NULL when the state is corrupt or the data file is
 *   shorter than it says
 */
SlimGgufWriter *
slim_gguf_writer_new_resumed (const char *path, GBytes *state, GError **error)
{
  g_autoptr (GVariant) root = NULL;
  g_autoptr (GVariant) infos = NULL;
  g_autoptr (GVariant) names = NULL;
  g_autoptr (GVariant) counts = NULL;
  g_autoptr (SlimGgufWriter) self = NULL;
  guint64 n_tensors, data_bytes, sum = 0;
  const guint8 *info_bytes;
  const guint64 *count_values;
  gsize n_info_bytes, n_counts;
  GVariantIter iter;
  const char *name;
  GStatBuf st;

  g_return_val_if_fail (path != NULL && state != NULL, NULL);
  root = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (SLIM_GGUF_STATE_TYPE), state, FALSE));
  g_variant_get (root, SLIM_GGUF_STATE_FORMAT, &n_tensors, &data_bytes, &infos, &names, &counts);
  info_bytes = g_variant_get_fixed_array (infos, &n_info_bytes, 1);
  count_values = g_variant_get_fixed_array (counts, &n_counts, sizeof (guint64));
  for (gsize k = 0; k < n_counts; k++)
    sum += count_values[k];
  if (n_counts != SLIM_GGUF_N_TYPE_SLOTS || sum != n_tensors
      || g_variant_n_children (names) != n_tensors || n_info_bytes > G_MAXUINT)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "the saved state of the GGUF writer of %s is corrupt", path);
      return NULL;
    }
  self = slim_gguf_writer_open (path, "r+b", error);
  if (self == NULL)
    return NULL;
  self->keep_partial = TRUE;
  if (g_stat (self->data_path, &st) != 0 || (guint64)st.st_size < data_bytes
      || ftruncate (fileno (self->data), (off_t)data_bytes) != 0
      || fseek (self->data, 0, SEEK_END) != 0)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO,
                   "%s: the tensor data of the interrupted run is missing or short",
                   self->data_path);
      return NULL;
    }
  self->n_tensors = n_tensors;
  self->data_bytes = data_bytes;
  g_byte_array_append (self->infos, info_bytes, (guint)n_info_bytes);
  memcpy (self->type_counts, count_values, sizeof self->type_counts);
  g_variant_iter_init (&iter, names);
  while (g_variant_iter_next (&iter, "&s", &name))
    {
      char *owned;

      if (g_hash_table_contains (self->names, name))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "the saved state of the GGUF writer of %s is corrupt", path);
          return NULL;
        }
      owned = g_strdup (name);
      g_hash_table_add (self->names, owned);
      g_ptr_array_add (self->name_list, owned);
    }
  self->keep_partial = FALSE;
  return g_steal_pointer (&self);
}

/* Copies the data file after the header in out. */
static gboolean
slim_gguf_writer_copy_data (SlimGgufWriter *self, FILE *out, GError **error)
{
  g_autofree guint8 *buf = g_malloc (1 << 20); /* (1 MiB) */
  FILE *in = g_fopen (self->data_path, "rb");
  gboolean ok = TRUE;
  gsize n;

  if (in == NULL)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot read %s: %s",
                   self->data_path, g_strerror (saved_errno));
      return FALSE;
    }
  while (ok && (n = fread (buf, 1, 1 << 20, in)) > 0)
    ok = slim_gguf_writer_write (out, self->partial_path, buf, n, error);
  if (ok && ferror (in))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "cannot read %s", self->data_path);
      ok = FALSE;
    }
  fclose (in);
  return ok;
}

/**
 * slim_gguf_writer_finish:
 * @self: a writer
 * @error: return location for a #GError
 *
 * Writes general.alignment, the header, metadata and tensor infos, then
 * the data, and renames the file into place.
 *
 * Returns: %TRUE when the file is complete at its path
 */
gboolean
slim_gguf_writer_finish (SlimGgufWriter *self, GError **error)
{
  g_autoptr (GByteArray) head = g_byte_array_new ();
  guint64 offset;
  FILE *out;
  gboolean ok;
  int closed;

  g_return_val_if_fail (self != NULL && !self->finished, FALSE);

  if (!slim_gguf_writer_close_tensor (self, error))
    return FALSE;
  if (!slim_gguf_writer_has_key (self, "general.alignment"))
    slim_gguf_writer_set_u32 (self, "general.alignment", SLIM_GGUF_ALIGNMENT);
  closed = fclose (self->data);
  self->data = NULL;
  if (closed != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write %s: %s", self->data_path, g_strerror (saved_errno));
      return FALSE;
    }

  g_byte_array_append (head, (const guint8 *)"GGUF", 4);
  put_u32 (head, SLIM_GGUF_VERSION);
  put_u64 (head, self->n_tensors);
  put_u64 (head, self->n_kv);
  g_byte_array_append (head, self->kv->data, self->kv->len);
  g_byte_array_append (head, self->infos->data, self->infos->len);

  out = g_fopen (self->partial_path, "wb");
  if (out == NULL)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot create %s: %s", self->partial_path, g_strerror (saved_errno));
      return FALSE;
    }
  offset = head->len;
  ok = slim_gguf_writer_write (out, self->partial_path, head->data, head->len, error)
       && slim_gguf_writer_pad (out, self->partial_path, &offset, error)
       && slim_gguf_writer_copy_data (self, out, error);
  if (fclose (out) != 0 && ok)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot write %s: %s", self->partial_path, g_strerror (saved_errno));
      ok = FALSE;
    }
  if (!ok)
    return FALSE;
  if (g_rename (self->partial_path, self->path) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot rename %s to %s: %s", self->partial_path, self->path,
                   g_strerror (saved_errno));
      return FALSE;
    }
  g_unlink (self->data_path);
  self->finished = TRUE;
  return TRUE;
}
