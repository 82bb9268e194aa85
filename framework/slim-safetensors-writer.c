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
 * - Every file is written under a hidden temporary name in the target
 *   folder and renamed when complete; shards get their final
 *   "-0000i-of-0000N" names in finish(), when N is known, and the index is
 *   written last.  A writer dropped before finish() removes its temporary
 *   files.
 */
#include "slim-safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "slim-error.h"
#include "slim-safetensors-private.h"

struct _SlimSafetensorsWriter
{
  GObject parent_instance;

  char *dir;
  char *prefix;
  guint64 shard_bytes;    /* 0: a single file without index */
  GHashTable *metadata;   /* string -> string */
  GHashTable *shard_of;   /* tensor name -> shard number (1-based, as pointer) */
  GPtrArray *pending;     /* (element-type SlimTensor) the open shard */
  guint64 pending_bytes;  /* data bytes of the open shard */
  GPtrArray *shard_paths; /* temporary paths of the closed shards */
  guint64 total_bytes;    /* data bytes of every tensor added */
  gboolean finished;
};

G_DEFINE_FINAL_TYPE (SlimSafetensorsWriter, slim_safetensors_writer, G_TYPE_OBJECT)

/* ---- JSON helpers ------------------------------------------------------------ */

/**
 * slim_safetensors_append_json_string:
 * @out: a string
 * @value: UTF-8 text
 *
 * Appends @value as a quoted, escaped JSON string.
 */
void
slim_safetensors_append_json_string (GString *out, const char *value)
{
  g_string_append_c (out, '"');
  for (const char *p = value; *p != '\0'; p++)
    {
      guchar c = (guchar)*p;
      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        default:
          if (c < 0x20)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_c (out, (char)c);
          break;
        }
    }
  g_string_append_c (out, '"');
}

/* The dtype and shape a tensor is stored with (packed types as bytes). */
static gboolean
stored_layout (const SlimTensor *tensor,
               const char **out_dtype_name,
               guint *out_n_dims,
               gint64 *out_shape /* (SLIM_TENSOR_MAX_DIMS) */,
               GError **error)
{
  SlimDType dtype = slim_tensor_get_dtype (tensor);
  const SlimDTypeInfo *info = slim_dtype_get_info (dtype);
  guint n_dims = slim_tensor_get_n_dims (tensor);
  const gint64 *shape = slim_tensor_get_shape (tensor);

  for (guint i = 0; i < n_dims; i++)
    out_shape[i] = shape[i];
  *out_n_dims = n_dims;
  if (!info->is_packed)
    {
      *out_dtype_name = info->safetensors_name;
      return TRUE;
    }
  if (n_dims == 0 || shape[n_dims - 1] % 2 != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "tensor \"%s\": a packed %s tensor needs an even last dimension to be "
                   "stored as bytes",
                   slim_tensor_get_name (tensor), info->name);
      return FALSE;
    }
  out_shape[n_dims - 1] /= 2;
  *out_dtype_name = dtype == SLIM_DTYPE_I4X2 ? "I8" : "U8";
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

/* The JSON header of one file, padded to 8-byte alignment of the data. */
static GString *
build_header (SlimTensor *const *tensors, guint n_tensors, GHashTable *metadata, GError **error)
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
          slim_safetensors_append_json_string (json, key);
          g_string_append_c (json, ':');
          slim_safetensors_append_json_string (json, g_hash_table_lookup (metadata, key));
        }
      g_string_append_c (json, '}');
      first = FALSE;
    }
  for (guint i = 0; i < n_tensors; i++)
    {
      const char *dtype_name;
      guint n_dims;
      gint64 shape[SLIM_TENSOR_MAX_DIMS];
      guint64 n_bytes = slim_tensor_get_n_bytes (tensors[i]);

      if (!stored_layout (tensors[i], &dtype_name, &n_dims, shape, error))
        return NULL;
      if (!first)
        g_string_append_c (json, ',');
      first = FALSE;
      slim_safetensors_append_json_string (json, slim_tensor_get_name (tensors[i]));
      g_string_append_printf (json, ":{\"dtype\":\"%s\",\"shape\":[", dtype_name);
      for (guint d = 0; d < n_dims; d++)
        g_string_append_printf (json, "%s%" G_GINT64_FORMAT, d > 0 ? "," : "", shape[d]);
      g_string_append_printf (json,
                              "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}",
                              offset, offset + n_bytes);
      offset += n_bytes;
    }
  g_string_append_c (json, '}');
  while ((8 + json->len) % 8 != 0)
    g_string_append_c (json, ' ');
  return g_steal_pointer (&json);
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
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       "cannot write %s: %s", path, g_strerror (saved_errno));
          return FALSE;
        }
      p += written;
      n_bytes -= (gsize)written;
    }
  return TRUE;
}

/* Writes one complete file under a new hidden temporary name in dir and
 * returns that name (the caller renames it). */
static char *
write_temporary (const char *dir,
                 const char *final_basename,
                 SlimTensor *const *tensors,
                 guint n_tensors,
                 GHashTable *metadata,
                 GError **error)
{
  g_autoptr (GString) header = NULL;
  g_autofree char *tmp_path = NULL;
  guint8 length_le[8];
  guint64 header_bytes;
  int fd;

  header = build_header (tensors, n_tensors, metadata, error);
  if (header == NULL)
    return NULL;
  header_bytes = header->len;
  for (int i = 0; i < 8; i++)
    length_le[i] = (guint8)(header_bytes >> (8 * i));

  tmp_path = g_strdup_printf ("%s/.%s.XXXXXX", dir, final_basename);
  fd = g_mkstemp_full (tmp_path, O_RDWR, 0644);
  if (fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot create a file in %s: %s", dir, g_strerror (saved_errno));
      return NULL;
    }
  if (!write_all (fd, length_le, sizeof length_le, tmp_path, error)
      || !write_all (fd, header->str, header->len, tmp_path, error))
    goto fail;
  for (guint i = 0; i < n_tensors; i++)
    if (!write_all (fd, slim_tensor_get_data (tensors[i]), slim_tensor_get_n_bytes (tensors[i]),
                    tmp_path, error))
      goto fail;
  if (fsync (fd) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot flush %s: %s", tmp_path, g_strerror (saved_errno));
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

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (tensors != NULL || n_tensors == 0, FALSE);
  for (guint i = 0; i < n_tensors; i++)
    {
      const char *name = slim_tensor_get_name (tensors[i]);
      if (!check_tensor_name (name, error))
        return FALSE;
      if (!g_hash_table_add (seen, (gpointer)name))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "tensor \"%s\" is given twice", name);
          return FALSE;
        }
    }
  dir = g_path_get_dirname (path);
  base = g_path_get_basename (path);
  tmp_path = write_temporary (dir, base, tensors, n_tensors, metadata, error);
  if (tmp_path == NULL)
    return FALSE;
  return rename_into_place (tmp_path, path, error);
}

/* ---- SlimSafetensorsWriter -------------------------------------------------- */

static void
remove_temporaries (SlimSafetensorsWriter *self)
{
  for (guint i = 0; i < self->shard_paths->len; i++)
    g_unlink (g_ptr_array_index (self->shard_paths, i));
  g_ptr_array_set_size (self->shard_paths, 0);
}

static void
slim_safetensors_writer_finalize (GObject *object)
{
  SlimSafetensorsWriter *self = SLIM_SAFETENSORS_WRITER (object);

  if (!self->finished)
    remove_temporaries (self);
  g_ptr_array_unref (self->shard_paths);
  g_ptr_array_unref (self->pending);
  g_hash_table_unref (self->shard_of);
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
  self->shard_of = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->pending = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  self->shard_paths = g_ptr_array_new_with_free_func (g_free);
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
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot create %s: %s", dir, g_strerror (saved_errno));
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
 * Adds a __metadata__ pair to every shard written from now on (set it
 * before adding tensors).
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

/* Writes the open shard to a temporary file. */
static gboolean
close_shard (SlimSafetensorsWriter *self, GError **error)
{
  g_autofree char *base
      = g_strdup_printf ("%s-shard-%05u.safetensors", self->prefix, self->shard_paths->len + 1);
  char *tmp_path = write_temporary (self->dir, base, (SlimTensor *const *)self->pending->pdata,
                                    self->pending->len, self->metadata, error);

  if (tmp_path == NULL)
    return FALSE;
  g_ptr_array_add (self->shard_paths, tmp_path);
  g_ptr_array_set_size (self->pending, 0);
  self->pending_bytes = 0;
  return TRUE;
}

/**
 * slim_safetensors_writer_add:
 * @self: a writer
 * @tensor: a tensor (a reference is taken until its shard is written)
 * @error: return location for a #GError
 *
 * Returns: FALSE on a duplicate or invalid name, a packed tensor with an
 * odd last dimension, or a failed shard write.
 */
gboolean
slim_safetensors_writer_add (SlimSafetensorsWriter *self, SlimTensor *tensor, GError **error)
{
  const char *name;
  guint64 n_bytes;
  const char *dtype_name;
  guint n_dims;
  gint64 shape[SLIM_TENSOR_MAX_DIMS];

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
  if (!stored_layout (tensor, &dtype_name, &n_dims, shape, error))
    return FALSE;
  n_bytes = slim_tensor_get_n_bytes (tensor);

  if (self->shard_bytes > 0 && self->pending->len > 0
      && self->pending_bytes + n_bytes >= self->shard_bytes)
    {
      if (!close_shard (self, error))
        return FALSE;
    }
  if (self->shard_bytes > 0 && n_bytes >= self->shard_bytes)
    g_message ("tensor \"%s\" (%" G_GUINT64_FORMAT " bytes) is not smaller than the shard size "
               "(%" G_GUINT64_FORMAT " bytes); it gets a shard of its own",
               name, n_bytes, self->shard_bytes);
  g_ptr_array_add (self->pending, slim_tensor_ref (tensor));
  self->pending_bytes += n_bytes;
  self->total_bytes += n_bytes;
  g_hash_table_insert (self->shard_of, g_strdup (name),
                       GUINT_TO_POINTER (self->shard_paths->len + 1));
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
      slim_safetensors_append_json_string (json, name);
      g_string_append (json, ": ");
      slim_safetensors_append_json_string (json, file);
    }
  g_string_append (json, names->len > 0 ? "\n  }\n}\n" : "}\n}\n");

  index_path = g_strdup_printf ("%s/%s.safetensors.index.json", self->dir, self->prefix);
  /* g_file_set_contents writes a temporary file and renames it */
  return g_file_set_contents (index_path, json->str, (gssize)json->len, error);
}

/**
 * slim_safetensors_writer_finish:
 * @self: a writer
 * @error: return location for a #GError
 *
 * Writes the last shard, renames every shard to its final name and writes
 * the index (or, with shard_bytes 0, writes the single file).
 *
 * Returns: TRUE on success.
 */
gboolean
slim_safetensors_writer_finish (SlimSafetensorsWriter *self, GError **error)
{
  guint n_shards;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS_WRITER (self), FALSE);
  g_return_val_if_fail (!self->finished, FALSE);

  if (self->shard_bytes == 0)
    {
      g_autofree char *path = g_strdup_printf ("%s/%s.safetensors", self->dir, self->prefix);
      if (!slim_safetensors_write_file (path, (SlimTensor *const *)self->pending->pdata,
                                        self->pending->len, self->metadata, error))
        return FALSE;
      g_ptr_array_set_size (self->pending, 0);
      self->finished = TRUE;
      return TRUE;
    }

  if (self->pending->len > 0 || self->shard_paths->len == 0)
    if (!close_shard (self, error))
      return FALSE;
  n_shards = self->shard_paths->len;
  for (guint i = 0; i < n_shards; i++)
    {
      g_autofree char *base = shard_basename (self, i + 1, n_shards);
      g_autofree char *final_path = g_build_filename (self->dir, base, NULL);
      char *tmp_path = g_ptr_array_index (self->shard_paths, i);

      if (!rename_into_place (tmp_path, final_path, error))
        return FALSE;
      /* renamed: nothing left to clean up under the temporary name */
      tmp_path[0] = '\0';
    }
  g_ptr_array_set_size (self->shard_paths, 0);
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
  return g_hash_table_size (self->shard_of);
}
