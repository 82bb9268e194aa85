/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-safetensors-writer.c: writing safetensors files, sharded by size
 * the way the ascendv1 format does (modelslim-v1-spec.md 3.1).
 *
 * - Tensors are written in the order they are added, contiguously (no
 *   padding between tensors); the JSON header lists "__metadata__" first
 *   (keys sorted), then the tensors in the same order, and is padded with
 *   spaces so the data section starts at a multiple of 8 bytes.
 * - Packed 4-bit tensors have no safetensors dtype: they are stored as their
 *   bytes, i4x2 as I8 and u4x2 as U8, with the last dimension halved (it
 *   must be even).  This is how ascendv1 stores packed int4 weights.
 * - Rollover: before a tensor is added, when the current shard is not empty
 *   and pending_bytes + tensor_bytes >= shard_bytes, the current shard is
 *   closed.  A tensor larger than shard_bytes therefore gets a shard of its
 *   own (reported with g_message, not a warning: it is a valid output).
 * - Memory: a tensor's bytes go to disk when it is added, into the data
 *   file of its shard (".<prefix>-shard-0000k.data" in the target folder);
 *   nothing but names, dtypes and shapes is kept in memory, so the memory
 *   of a run does not grow with the model.  finish() assembles each shard
 *   (its header, then its data file) under a hidden temporary name,
 *   renames it to its final "-0000i-of-0000N" name (N is known only then),
 *   removes the data file, and writes the index last.  A writer dropped
 *   before finish() removes its data files.
 * - Resume: save_state() fsyncs the open data file and returns the layout
 *   so far; on a new writer over the same folder, restore_state() checks
 *   the data files against it and cuts the open one back to its length at
 *   save time, so a run killed after the state was saved continues with
 *   exactly the bytes of an uninterrupted one.
 */
#include "slim-safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "slim-error.h"
#include "slim-json.h"
#include "slim-safetensors-private.h"

/* One tensor as it is stored: packed types as bytes. */
typedef struct
{
  char *name;
  SlimDType dtype; /* stored dtype (I4X2 -> I8, U4X2 -> U8) */
  guint n_dims;
  gint64 shape[SLIM_TENSOR_MAX_DIMS]; /* (n_dims) stored shape */
  guint64 n_bytes;
  guint shard; /* 1-based shard number (writer only) */
} SlimStoredEntry;

static void
stored_entry_clear (gpointer data)
{
  SlimStoredEntry *entry = data;
  g_free (entry->name);
}

/* The layout a tensor is stored with (packed types as bytes). */
static gboolean
stored_layout (const SlimTensor *tensor, SlimStoredEntry *out, GError **error)
{
  SlimDType dtype = slim_tensor_get_dtype (tensor);
  const SlimDTypeInfo *info = slim_dtype_get_info (dtype);
  guint n_dims = slim_tensor_get_n_dims (tensor);
  const gint64 *shape = slim_tensor_get_shape (tensor);

  memset (out, 0, sizeof (*out));
  for (guint i = 0; i < n_dims; i++)
    out->shape[i] = shape[i];
  out->n_dims = n_dims;
  out->n_bytes = slim_tensor_get_n_bytes (tensor);
  out->dtype = dtype;
  if (!info->is_packed)
    return TRUE;
  if (n_dims == 0 || shape[n_dims - 1] % 2 != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "tensor \"%s\": a packed %s tensor needs an even last dimension to be "
                   "stored as bytes",
                   slim_tensor_get_name (tensor), info->name);
      return FALSE;
    }
  out->shape[n_dims - 1] /= 2;
  out->dtype = dtype == SLIM_DTYPE_I4X2 ? SLIM_DTYPE_I8 : SLIM_DTYPE_U8;
  return TRUE;
}

static gint
compare_str_ptr (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* The keys of a string-keyed table, sorted (the strings are not copied). */
static GPtrArray *
sorted_keys (GHashTable *table)
{
  GPtrArray *keys = g_ptr_array_sized_new (g_hash_table_size (table));
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, table);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort (keys, compare_str_ptr);
  return keys;
}

/* The JSON header of one file, padded to 8-byte alignment of the data.
 * entries: (n_entries) */
static GString *
build_header (const SlimStoredEntry *entries, guint n_entries, GHashTable *metadata)
{
  g_autoptr (GString) json = g_string_new ("{");
  guint64 offset = 0;
  gboolean first = TRUE;

  if (metadata != NULL && g_hash_table_size (metadata) > 0)
    {
      g_autoptr (GPtrArray) keys = sorted_keys (metadata);
      g_string_append (json, "\"__metadata__\":{");
      for (guint i = 0; i < keys->len; i++)
        {
          const char *key = g_ptr_array_index (keys, i);
          if (i > 0)
            g_string_append_c (json, ',');
          slim_json_append_string (json, key, FALSE);
          g_string_append_c (json, ':');
          slim_json_append_string (json, g_hash_table_lookup (metadata, key), FALSE);
        }
      g_string_append_c (json, '}');
      first = FALSE;
    }
  for (guint i = 0; i < n_entries; i++)
    {
      const SlimStoredEntry *e = &entries[i];

      if (!first)
        g_string_append_c (json, ',');
      first = FALSE;
      slim_json_append_string (json, e->name, FALSE);
      g_string_append_printf (json, ":{\"dtype\":\"%s\",\"shape\":[",
                              slim_dtype_get_info (e->dtype)->safetensors_name);
      for (guint d = 0; d < e->n_dims; d++)
        g_string_append_printf (json, "%s%" G_GINT64_FORMAT, d > 0 ? "," : "", e->shape[d]);
      g_string_append_printf (json,
                              "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}",
                              offset, offset + e->n_bytes);
      offset += e->n_bytes;
    }
  g_string_append_c (json, '}');
  while ((8 + json->len) % 8 != 0)
    g_string_append_c (json, ' ');
  return g_steal_pointer (&json);
}

static void
set_errno_error (GError **error, int saved_errno, const char *what, const char *path)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot %s %s: %s", what,
               path, g_strerror (saved_errno));
}

static gboolean
write_all (int fd, const void *data, gsize n_bytes, const char *path, GError **error)
{
  const guint8 *p = data; /* (n_bytes) */

  while (n_bytes > 0)
    {
      gssize written = write (fd, p, MIN (n_bytes, (gsize)G_MAXSSIZE));
      if (written < 0)
        {
          int saved_errno = errno;
          if (saved_errno == EINTR)
            continue;
          set_errno_error (error, saved_errno, "write", path);
          return FALSE;
        }
      p += written;
      n_bytes -= (gsize)written;
    }
  return TRUE;
}

/* Copies n_bytes of the file data_path (from its start) to fd. */
static gboolean
copy_data (int fd, const char *data_path, guint64 n_bytes, const char *path, GError **error)
{
  g_autofree guint8 *buffer = NULL; /* (chunk_bytes) */
  const gsize chunk_bytes = 4 << 20;
  int in;
  gboolean ok = TRUE;

  if (n_bytes == 0)
    return TRUE;
  in = g_open (data_path, O_RDONLY | O_CLOEXEC, 0);
  if (in < 0)
    {
      set_errno_error (error, errno, "open", data_path);
      return FALSE;
    }
  buffer = g_malloc (chunk_bytes);
  while (ok && n_bytes > 0)
    {
      gssize got = read (in, buffer, (gsize)MIN (n_bytes, (guint64)chunk_bytes));
      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0)
        {
          if (got < 0)
            set_errno_error (error, errno, "read", data_path);
          else
            g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                         "%s is shorter than recorded (%" G_GUINT64_FORMAT " bytes missing)",
                         data_path, n_bytes);
          ok = FALSE;
          break;
        }
      ok = write_all (fd, buffer, (gsize)got, path, error);
      n_bytes -= (guint64)got;
    }
  g_close (in, NULL);
  return ok;
}

/* Writes one complete file under a new hidden temporary name in dir and
 * returns that name (the caller renames it): the header of entries, then
 * either the tensors' bytes (tensors non-NULL, in entry order) or the
 * first data_bytes of data_path. */
static char *
write_temporary (const char *dir,
                 const char *final_basename,
                 const SlimStoredEntry *entries /* (n_entries) */,
                 guint n_entries,
                 GHashTable *metadata,
                 SlimTensor *const *tensors /* (n_entries) nullable */,
                 const char *data_path /* nullable */,
                 guint64 data_bytes,
                 GError **error)
{
  g_autoptr (GString) header = build_header (entries, n_entries, metadata);
  g_autofree char *tmp_path = g_strdup_printf ("%s/.%s.XXXXXX", dir, final_basename);
  guint8 length_le[8];
  int fd;

  for (int i = 0; i < 8; i++)
    length_le[i] = (guint8)((guint64)header->len >> (8 * i));
  fd = g_mkstemp_full (tmp_path, O_RDWR, 0644);
  if (fd < 0)
    {
      set_errno_error (error, errno, "create a file in", dir);
      return NULL;
    }
  if (!write_all (fd, length_le, sizeof length_le, tmp_path, error)
      || !write_all (fd, header->str, header->len, tmp_path, error))
    goto fail;
  for (guint i = 0; tensors != NULL && i < n_entries; i++)
    if (!write_all (fd, slim_tensor_get_data (tensors[i]), slim_tensor_get_n_bytes (tensors[i]),
                    tmp_path, error))
      goto fail;
  if (data_path != NULL && !copy_data (fd, data_path, data_bytes, tmp_path, error))
    goto fail;
  if (fsync (fd) != 0)
    {
      set_errno_error (error, errno, "flush", tmp_path);
      goto fail;
    }
  if (!g_close (fd, error))
    {
      fd = -1;
      goto fail;
    }
  return g_steal_pointer (&tmp_path);

fail:
  if (fd >= 0)
    g_close (fd, NULL);
  g_unlink (tmp_path);
  return NULL;
}

static gboolean
rename_into_place (const char *tmp_path, const char *final_path, GError **error)
{
  if (g_rename (tmp_path, final_path) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot rename %s to %s: %s", tmp_path, final_path, g_strerror (saved_errno));
      g_unlink (tmp_path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
check_tensor_name (const char *name, GError **error)
{
  if (name == NULL || name[0] == '\0' || !g_utf8_validate (name, -1, NULL)
      || strcmp (name, "__metadata__") == 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "invalid tensor name \"%s\" (empty, not UTF-8 or reserved)",
                   name != NULL && g_utf8_validate (name, -1, NULL) ? name : "?");
      return FALSE;
    }
  return TRUE;
}

/**
 * slim_safetensors_write_file:
 * @path: the file to create (replaced atomically if it exists)
 * @tensors: (array length=n_tensors): tensors, written in this order
 * @n_tensors: their number
 * @metadata: (nullable): __metadata__ string pairs
 * @error: return location for a #GError
 *
 * Returns: TRUE on success.
 */
gboolean
slim_safetensors_write_file (const char *path,
                             SlimTensor *const *tensors,
                             guint n_tensors,
                             GHashTable *metadata,
                             GError **error)
{
  g_autofree char *dir = NULL;
  g_autofree char *base = NULL;
  g_autofree char *tmp_path = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GArray) entries = g_array_sized_new (FALSE, TRUE, sizeof (SlimStoredEntry), n_tensors);

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (tensors != NULL || n_tensors == 0, FALSE);
  for (guint i = 0; i < n_tensors; i++)
    {
      const char *name = slim_tensor_get_name (tensors[i]);
      SlimStoredEntry entry;

      if (!check_tensor_name (name, error))
        return FALSE;
      if (!g_hash_table_add (seen, (gpointer)name))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "tensor \"%s\" is given twice", name);
          return FALSE;
        }
      if (!stored_layout (tensors[i], &entry, error))
        return FALSE;
      entry.name = (char *)name; /* borrowed: the array has no clear func */
      g_array_append_val (entries, entry);
    }
  dir = g_path_get_dirname (path);
  base = g_path_get_basename (path);
  tmp_path = write_temporary (dir, base, (const SlimStoredEntry *)entries->data, n_tensors,
                              metadata, tensors, NULL, 0, error);
  if (tmp_path == NULL)
    return FALSE;
  return rename_into_place (tmp_path, path, error);
}

/* ---- SlimSafetensorsWriter -------------------------------------------------- */

struct _SlimSafetensorsWriter
{
  GObject parent_instance;

  char *dir;
  char *prefix;
  guint64 shard_bytes;      /* 0: a single file without index */
  GHashTable *metadata;     /* string -> string */
  GArray *entries;          /* SlimStoredEntry, in the order added */
  GHashTable *shard_of;     /* tensor name (owned by entries) -> shard number (as pointer) */
  guint shard;              /* the open shard, 1-based */
  guint shard_n_tensors;    /* tensors in the open shard */
  guint64 shard_data_bytes; /* data bytes of the open shard (its data file's length) */
  int data_fd;              /* the open shard's data file, -1 until its first tensor */
  guint64 total_bytes;      /* data bytes of every tensor added */
  gboolean finished;
};

G_DEFINE_FINAL_TYPE (SlimSafetensorsWriter, slim_safetensors_writer, G_TYPE_OBJECT)

/* The data file of shard k: the bytes of its tensors, in order. */
static char *
data_path (SlimSafetensorsWriter *self, guint shard)
{
  g_autofree char *base = g_strdup_printf (".%s-shard-%05u.data", self->prefix, shard);
  return g_build_filename (self->dir, base, NULL);
}

static void
close_data_fd (SlimSafetensorsWriter *self)
{
  if (self->data_fd >= 0)
    g_close (self->data_fd, NULL);
  self->data_fd = -1;
}

/* Removes the data files of shards first.. (up to the first missing one
 * past the open shard). */
static void
remove_data_files (SlimSafetensorsWriter *self, guint first)
{
  for (guint k = first;; k++)
    {
      g_autofree char *path = data_path (self, k);
      if (g_unlink (path) != 0 && k > self->shard)
        break;
    }
}

static void
slim_safetensors_writer_finalize (GObject *object)
{
  SlimSafetensorsWriter *self = SLIM_SAFETENSORS_WRITER (object);

  close_data_fd (self);
  if (!self->finished)
    remove_data_files (self, 1);
  g_hash_table_unref (self->shard_of);
  g_array_unref (self->entries);
  g_hash_table_unref (self->metadata);
  g_free (self->prefix);
  g_free (self->dir);
  G_OBJECT_CLASS (slim_safetensors_writer_parent_class)->finalize (object);
}

static void
slim_safetensors_writer_class_init (SlimSafetensorsWriterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_safetensors_writer_finalize;
}

static void
slim_safetensors_writer_init (SlimSafetensorsWriter *self)
{
  self->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->entries = g_array_new (FALSE, TRUE, sizeof (SlimStoredEntry));
  g_array_set_clear_func (self->entries, stored_entry_clear);
  self->shard_of = g_hash_table_new (g_str_hash, g_str_equal);
  self->shard = 1;
  self->data_fd = -1;
}

/**
 * slim_safetensors_writer_new:
 * @dir: output folder (created if missing)
 * @prefix: file name prefix, e.g. "quant_model_weights"
 * @shard_bytes: shard size limit in bytes; 0 writes a single file
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the writer, NULL if @dir cannot be
 * created or @prefix is not a plain file name.
 */
SlimSafetensorsWriter *
slim_safetensors_writer_new (const char *dir,
                             const char *prefix,
                             guint64 shard_bytes,
                             GError **error)
{
  SlimSafetensorsWriter *self;

  g_return_val_if_fail (dir != NULL && prefix != NULL, NULL);
  if (prefix[0] == '\0' || strchr (prefix, '/') != NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "file prefix \"%s\" must be a plain, non-empty file name", prefix);
      return NULL;
    }
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      set_errno_error (error, errno, "create", dir);
      return NULL;
    }
  self = g_object_new (SLIM_TYPE_SAFETENSORS_WRITER, NULL);
  self->dir = g_strdup (dir);
  self->prefix = g_strdup (prefix);
  self->shard_bytes = shard_bytes;
  return self;
}

/**
 * slim_safetensors_writer_set_metadata:
 * @self: a writer
 * @key: metadata key
 * @value: metadata value
 *
 * Adds a __metadata__ pair to every file (set it before finish).
 */
void
slim_safetensors_writer_set_metadata (SlimSafetensorsWriter *self,
                                      const char *key,
                                      const char *value)
{
  g_return_if_fail (SLIM_IS_SAFETENSORS_WRITER (self));
  g_return_if_fail (key != NULL && value != NULL);
  g_return_if_fail (g_utf8_validate (key, -1, NULL) && g_utf8_validate (value, -1, NULL));
  g_hash_table_replace (self->metadata, g_strdup (key), g_strdup (value));
}

/* Opens (creating or truncating) the open shard's data file. */
static gboolean
open_data_file (SlimSafetensorsWriter *self, gboolean truncate, GError **error)
{
  g_autofree char *path = data_path (self, self->shard);

  self->data_fd = g_open (path, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);
  if (self->data_fd < 0)
    {
      set_errno_error (error, errno, "create", path);
      return FALSE;
    }
  if (!truncate && lseek (self->data_fd, (off_t)self->shard_data_bytes, SEEK_SET) < 0)
    {
      set_errno_error (error, errno, "seek in", path);
      close_data_fd (self);
      return FALSE;
    }
  return TRUE;
}

/**
 * slim_safetensors_writer_add:
 * @self: a writer
 * @tensor: a tensor; its bytes are written to disk before this returns
 *   (no reference is kept)
 * @error: return location for a #GError
 *
 * Returns: FALSE on a duplicate or invalid name, a packed tensor with an
 * odd last dimension, or a failed write (the tensor is then not added, but
 * the writer should be dropped: the data file may hold part of it).
 */
gboolean
slim_safetensors_writer_add (SlimSafetensorsWriter *self, SlimTensor *tensor, GError **error)
{
  SlimStoredEntry entry;
  const char *name;
  g_autofree char *path = NULL;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS_WRITER (self), FALSE);
  g_return_val_if_fail (tensor != NULL, FALSE);
  g_return_val_if_fail (!self->finished, FALSE);

  name = slim_tensor_get_name (tensor);
  if (!check_tensor_name (name, error))
    return FALSE;
  if (g_hash_table_contains (self->shard_of, name))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "tensor \"%s\" is added twice", name);
      return FALSE;
    }
  if (!stored_layout (tensor, &entry, error))
    return FALSE;

  if (self->shard_bytes > 0 && self->shard_n_tensors > 0
      && self->shard_data_bytes + entry.n_bytes >= self->shard_bytes)
    {
      /* rollover: the data file stays until finish() assembles the shard */
      close_data_fd (self);
      self->shard++;
      self->shard_n_tensors = 0;
      self->shard_data_bytes = 0;
    }
  if (self->shard_bytes > 0 && entry.n_bytes >= self->shard_bytes)
    g_message ("tensor \"%s\" (%" G_GUINT64_FORMAT " bytes) is not smaller than the shard size "
               "(%" G_GUINT64_FORMAT " bytes); it gets a shard of its own",
               name, entry.n_bytes, self->shard_bytes);
  if (self->data_fd < 0 && !open_data_file (self, self->shard_n_tensors == 0, error))
    return FALSE;
  path = data_path (self, self->shard);
  if (!write_all (self->data_fd, slim_tensor_get_data (tensor), entry.n_bytes, path, error))
    return FALSE;

  entry.name = g_strdup (name);
  entry.shard = self->shard;
  g_array_append_val (self->entries, entry);
  g_hash_table_insert (self->shard_of, entry.name, GUINT_TO_POINTER (self->shard));
  self->shard_n_tensors++;
  self->shard_data_bytes += entry.n_bytes;
  self->total_bytes += entry.n_bytes;
  return TRUE;
}

static char *
shard_basename (SlimSafetensorsWriter *self, guint index, guint n_shards)
{
  return g_strdup_printf ("%s-%05u-of-%05u.safetensors", self->prefix, index, n_shards);
}

static gboolean
write_index (SlimSafetensorsWriter *self, guint n_shards, GError **error)
{
  g_autoptr (GString) json = g_string_new ("{\n  \"metadata\": {\n");
  g_autoptr (GPtrArray) names = sorted_keys (self->shard_of);
  g_autofree char *index_path = NULL;

  g_string_append_printf (json, "    \"total_size\": %" G_GUINT64_FORMAT "\n  },\n",
                          self->total_bytes);
  g_string_append (json, "  \"weight_map\": {");
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);
      guint shard = GPOINTER_TO_UINT (g_hash_table_lookup (self->shard_of, name));
      g_autofree char *file = shard_basename (self, shard, n_shards);

      g_string_append (json, i > 0 ? ",\n    " : "\n    ");
      slim_json_append_string (json, name, FALSE);
      g_string_append (json, ": ");
      slim_json_append_string (json, file, FALSE);
    }
  g_string_append (json, names->len > 0 ? "\n  }\n}\n" : "}\n}\n");

  index_path = g_strdup_printf ("%s/%s.safetensors.index.json", self->dir, self->prefix);
  /* g_file_set_contents writes a temporary file and renames it */
  return g_file_set_contents (index_path, json->str, (gssize)json->len, error);
}

/* Writes shard k (header + its data file) as final_name, atomically. */
static gboolean
assemble_shard (SlimSafetensorsWriter *self, guint shard, const char *final_name, GError **error)
{
  const SlimStoredEntry *all = (const SlimStoredEntry *)self->entries->data;
  g_autofree char *data = data_path (self, shard);
  g_autofree char *final_path = g_build_filename (self->dir, final_name, NULL);
  g_autofree char *tmp_path = NULL;
  guint first = 0, n = 0;
  guint64 n_bytes = 0;

  while (first < self->entries->len && all[first].shard < shard)
    first++;
  while (first + n < self->entries->len && all[first + n].shard == shard)
    n_bytes += all[first + n++].n_bytes;
  tmp_path = write_temporary (self->dir, final_name, all + first, n, self->metadata, NULL,
                              n > 0 ? data : NULL, n_bytes, error);
  if (tmp_path == NULL || !rename_into_place (tmp_path, final_path, error))
    return FALSE;
  g_unlink (data);
  return TRUE;
}

/**
 * slim_safetensors_writer_finish:
 * @self: a writer
 * @error: return location for a #GError
 *
 * Assembles every shard (header, then its data file) under its final name,
 * writes the index (or, with shard_bytes 0, the single file) and removes
 * the data files.
 *
 * Returns: TRUE on success.
 */
gboolean
slim_safetensors_writer_finish (SlimSafetensorsWriter *self, GError **error)
{
  guint n_shards = self->shard;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS_WRITER (self), FALSE);
  g_return_val_if_fail (!self->finished, FALSE);

  close_data_fd (self);
  if (self->shard_bytes == 0)
    {
      g_autofree char *base = g_strdup_printf ("%s.safetensors", self->prefix);
      if (!assemble_shard (self, 1, base, error))
        return FALSE;
      self->finished = TRUE;
      return TRUE;
    }
  for (guint k = 1; k <= n_shards; k++)
    {
      g_autofree char *base = shard_basename (self, k, n_shards);
      if (!assemble_shard (self, k, base, error))
        return FALSE;
    }
  if (!write_index (self, n_shards, error))
    return FALSE;
  self->finished = TRUE;
  return TRUE;
}

/**
 * slim_safetensors_writer_get_n_tensors:
 * @self: a writer
 *
 * Returns: the number of tensors added so far.
 */
guint
slim_safetensors_writer_get_n_tensors (SlimSafetensorsWriter *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS_WRITER (self), 0);
  return self->entries->len;
}

/* ---- resume ----------------------------------------------------------------- */

#define STATE_TYPE "(a{ss}a(siaxtu)ut)"

/**
 * slim_safetensors_writer_save_state:
 * @self: a writer, not finished
 * @error: return location for a #GError
 *
 * Flushes the open data file to disk (fsync) and describes what was
 * written so far: metadata, every tensor's stored layout and shard, the
 * open shard and its length.  The data files stay in the output folder.
 *
 * Returns: (transfer full) (nullable): a GVariant of type
 *   "(a{ss}a(siaxtu)ut)", floating reference sunk.
 */
GVariant *
slim_safetensors_writer_save_state (SlimSafetensorsWriter *self, GError **error)
{
  GVariantBuilder metadata, entries;
  GHashTableIter iter;
  gpointer key, value;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS_WRITER (self), NULL);
  g_return_val_if_fail (!self->finished, NULL);

  if (self->data_fd >= 0 && fsync (self->data_fd) != 0)
    {
      g_autofree char *path = data_path (self, self->shard);
      set_errno_error (error, errno, "flush", path);
      return NULL;
    }
  g_variant_builder_init (&metadata, G_VARIANT_TYPE ("a{ss}"));
  g_hash_table_iter_init (&iter, self->metadata);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_variant_builder_add (&metadata, "{ss}", key, value);
  g_variant_builder_init (&entries, G_VARIANT_TYPE ("a(siaxtu)"));
  for (guint i = 0; i < self->entries->len; i++)
    {
      const SlimStoredEntry *e = &g_array_index (self->entries, SlimStoredEntry, i);
      GVariant *shape
          = g_variant_new_fixed_array (G_VARIANT_TYPE_INT64, e->shape, e->n_dims, sizeof (gint64));
      g_variant_builder_add (&entries, "(si@axtu)", e->name, (gint32)e->dtype, shape, e->n_bytes,
                             e->shard);
    }
  return g_variant_ref_sink (
      g_variant_new (STATE_TYPE, &metadata, &entries, self->shard, self->shard_data_bytes));
}

static gboolean
state_invalid (GError **error, const char *what)
{
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "the saved state of the weight writer is corrupt: %s", what);
  return FALSE;
}

/* Checks the restored entries, fills shard_of and the counters. */
static gboolean
restore_entries (SlimSafetensorsWriter *self, GVariant *entries, guint open_shard, GError **error)
{
  GVariantIter iter;
  const char *name;
  gint32 dtype;
  GVariant *shape;
  guint64 n_bytes;
  guint32 shard;

  g_variant_iter_init (&iter, entries);
  while (g_variant_iter_next (&iter, "(&si@axtu)", &name, &dtype, &shape, &n_bytes, &shard))
    {
      g_autoptr (GVariant) owned_shape = shape;
      SlimStoredEntry entry = { 0 };
      gsize n_dims = 0;
      const gint64 *dims = g_variant_get_fixed_array (shape, &n_dims, sizeof (gint64));
      guint64 n_elements = 1, expected = 0;
      const guint prev_shard
          = self->entries->len > 0
                ? g_array_index (self->entries, SlimStoredEntry, self->entries->len - 1).shard
                : 1;

      if (!check_tensor_name (name, error))
        return FALSE;
      if (dtype < 0 || dtype >= SLIM_N_DTYPES || slim_dtype_get_info (dtype)->is_packed
          || n_dims > SLIM_TENSOR_MAX_DIMS)
        return state_invalid (error, "bad dtype or rank");
      for (gsize d = 0; d < n_dims; d++)
        {
          if (dims[d] < 0 || (dims[d] > 0 && n_elements > G_MAXUINT64 / (guint64)dims[d]))
            return state_invalid (error, "bad shape");
          n_elements *= (guint64)dims[d];
          entry.shape[d] = dims[d];
        }
      if (!slim_dtype_n_bytes (dtype, n_elements, &expected) || expected != n_bytes)
        return state_invalid (error, "byte size does not match dtype x shape");
      if (shard < prev_shard || shard > open_shard || shard > prev_shard + 1
          || g_hash_table_contains (self->shard_of, name))
        return state_invalid (error, "shards out of order or a duplicate tensor");
      entry.name = g_strdup (name);
      entry.dtype = dtype;
      entry.n_dims = (guint)n_dims;
      entry.n_bytes = n_bytes;
      entry.shard = shard;
      g_array_append_val (self->entries, entry);
      g_hash_table_insert (self->shard_of, entry.name, GUINT_TO_POINTER (shard));
      self->total_bytes += n_bytes;
      if (shard == open_shard)
        {
          self->shard_n_tensors++;
          self->shard_data_bytes += n_bytes;
        }
    }
  return TRUE;
}

/* Checks that every closed shard's data file has its recorded length and
 * cuts the open one back to its recorded length. */
static gboolean
restore_data_files (SlimSafetensorsWriter *self, GError **error)
{
  const SlimStoredEntry *all = (const SlimStoredEntry *)self->entries->data;
  guint i = 0;

  for (guint k = 1; k <= self->shard; k++)
    {
      g_autofree char *path = data_path (self, k);
      guint64 n_bytes = 0;
      GStatBuf st;

      while (i < self->entries->len && all[i].shard == k)
        n_bytes += all[i++].n_bytes;
      if (g_stat (path, &st) != 0)
        {
          if (n_bytes == 0)
            continue;
          set_errno_error (error, errno, "find the partial weights", path);
          return FALSE;
        }
      if ((guint64)st.st_size < n_bytes)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_TRUNCATED,
                       "%s holds %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT
                       " were written before the checkpoint",
                       path, (guint64)st.st_size, n_bytes);
          return FALSE;
        }
      if ((guint64)st.st_size > n_bytes && k < self->shard)
        return state_invalid (error, "a closed shard grew after the checkpoint");
      if ((guint64)st.st_size > n_bytes && truncate (path, (off_t)n_bytes) != 0)
        {
          set_errno_error (error, errno, "truncate", path);
          return FALSE;
        }
    }
  /* shards opened by the interrupted run after the checkpoint */
  remove_data_files (self, self->shard + 1);
  return TRUE;
}

/**
 * slim_safetensors_writer_restore_state:
 * @self: a new writer (nothing added) on the same folder and prefix
 * @state: what slim_safetensors_writer_save_state() returned
 * @error: return location for a #GError
 *
 * Continues the writing of an interrupted run: checks the state, the data
 * files of the closed shards, and cuts the open shard's data file back to
 * its length at the time of the state (the run may have appended more
 * before it was killed); data files of later shards are removed.
 *
 * Returns: TRUE on success; FALSE (SLIM_FORMAT_ERROR or G_FILE_ERROR) when
 *   the state or the files do not fit.
 */
gboolean
slim_safetensors_writer_restore_state (SlimSafetensorsWriter *self, GVariant *state, GError **error)
{
  g_autoptr (GVariant) metadata = NULL;
  g_autoptr (GVariant) entries = NULL;
  GVariantIter iter;
  const char *key, *value;
  guint32 open_shard;
  guint64 open_bytes;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS_WRITER (self), FALSE);
  g_return_val_if_fail (state != NULL, FALSE);
  g_return_val_if_fail (self->entries->len == 0 && !self->finished, FALSE);

  if (!g_variant_is_of_type (state, G_VARIANT_TYPE (STATE_TYPE)))
    return state_invalid (error, "unexpected type");
  g_variant_get (state, "(@a{ss}@a(siaxtu)ut)", &metadata, &entries, &open_shard, &open_bytes);
  if (open_shard < 1 || (self->shard_bytes == 0 && open_shard != 1))
    return state_invalid (error, "bad open shard");
  g_variant_iter_init (&iter, metadata);
  while (g_variant_iter_next (&iter, "{&s&s}", &key, &value))
    if (g_utf8_validate (key, -1, NULL) && g_utf8_validate (value, -1, NULL))
      g_hash_table_replace (self->metadata, g_strdup (key), g_strdup (value));
  self->shard = open_shard;
  if (!restore_entries (self, entries, open_shard, error))
    return FALSE;
  if (self->shard_data_bytes != open_bytes
      || (self->entries->len > 0
          && g_array_index (self->entries, SlimStoredEntry, self->entries->len - 1).shard
                 != open_shard))
    return state_invalid (error, "the open shard does not match its tensors");
  return restore_data_files (self, error);
}
