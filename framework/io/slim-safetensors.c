/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-safetensors.c: SlimSafetensors, tensor access to safetensors files.
 * Each file is memory-mapped and its header parsed and validated
 * (slim-safetensors-header.c) before any tensor is exposed; a tensor is a
 * read-only view into the mapping, converted to float32 on request, and
 * its pages can be handed back to the kernel after use.  A sharded model
 * is opened through its *.safetensors.index.json, which is small and
 * parsed with json-glib after a lexical pre-scan that bounds its nesting.
 */
#include "slim-safetensors.h"

#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "slim-error.h"
#include "slim-safetensors-private.h"

typedef struct
{
  char *path;
  GMappedFile *mapped;
  GBytes *bytes; /* the whole mapping; views hold a reference */
  SlimSafetensorsHeader *header;
} SlimSafetensorsFile;

typedef struct
{
  SlimSafetensorsFile *file;
  const SlimSafetensorsEntry *entry;
} SlimSafetensorsSlot;

struct _SlimSafetensors
{
  GObject parent_instance;

  GPtrArray *files;           /* (element-type SlimSafetensorsFile) */
  GHashTable *slots;          /* name -> SlimSafetensorsSlot */
  const char **names;         /* sorted, NULL-terminated; borrowed from the headers */
  guint64 total_bytes;        /* sum of the tensors' data bytes */
  GHashTable *empty_metadata; /* returned when no file is mapped */
};

G_DEFINE_FINAL_TYPE (SlimSafetensors, slim_safetensors, G_TYPE_OBJECT)

static void
file_free (gpointer data)
{
  SlimSafetensorsFile *file = data;
  slim_safetensors_header_free (file->header);
  g_clear_pointer (&file->bytes, g_bytes_unref);
  g_clear_pointer (&file->mapped, g_mapped_file_unref);
  g_free (file->path);
  g_free (file);
}

static void
slim_safetensors_finalize (GObject *object)
{
  SlimSafetensors *self = SLIM_SAFETENSORS (object);

  g_clear_pointer (&self->slots, g_hash_table_unref);
  g_clear_pointer (&self->files, g_ptr_array_unref);
  g_clear_pointer (&self->empty_metadata, g_hash_table_unref);
  g_free (self->names);
  G_OBJECT_CLASS (slim_safetensors_parent_class)->finalize (object);
}

static void
slim_safetensors_class_init (SlimSafetensorsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_safetensors_finalize;
}

static void
slim_safetensors_init (SlimSafetensors *self)
{
  self->files = g_ptr_array_new_with_free_func (file_free);
  self->slots = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  self->empty_metadata = g_hash_table_new (g_str_hash, g_str_equal);
}

static SlimSafetensorsFile *
file_open (const char *path, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  SlimSafetensorsFile *file;
  GMappedFile *mapped;
  const guint8 *contents;
  gsize n_bytes;

  mapped = g_mapped_file_new (path, FALSE, &local_error);
  if (mapped == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", path);
      return NULL;
    }
  file = g_new0 (SlimSafetensorsFile, 1);
  file->path = g_strdup (path);
  file->mapped = mapped;
  file->bytes = g_mapped_file_get_bytes (mapped);
  n_bytes = g_mapped_file_get_length (mapped);
  contents = (const guint8 *)g_mapped_file_get_contents (mapped);
  file->header = slim_safetensors_parse_header (n_bytes > 0 ? contents : (const guint8 *)"",
                                                n_bytes, n_bytes, &local_error);
  if (file->header == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", path);
      file_free (file);
      return NULL;
    }
  return file;
}

static void
add_slot (SlimSafetensors *self, SlimSafetensorsFile *file, const SlimSafetensorsEntry *entry)
{
  SlimSafetensorsSlot *slot = g_new0 (SlimSafetensorsSlot, 1);
  slot->file = file;
  slot->entry = entry;
  g_hash_table_replace (self->slots, entry->name, slot);
}

static gint
compare_str_ptr (gconstpointer a, gconstpointer b, gpointer user_data)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static void
finish_names (SlimSafetensors *self)
{
  g_autofree gpointer *keys = NULL;
  guint n_keys = 0;
  GHashTableIter iter;
  gpointer value;

  keys = g_hash_table_get_keys_as_array (self->slots, &n_keys);
  self->names = g_new0 (const char *, n_keys + 1);
  for (guint i = 0; i < n_keys; i++)
    self->names[i] = keys[i];
  g_qsort_with_data (self->names, (gint)n_keys, sizeof (char *), compare_str_ptr, NULL);
  self->total_bytes = 0;
  g_hash_table_iter_init (&iter, self->slots);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const SlimSafetensorsSlot *slot = value;
      self->total_bytes += slot->entry->end_bytes - slot->entry->begin_bytes;
    }
}

/* Reads a JSON document of at most max_bytes into a parser, with the same
 * pre-checks as a header. */
static JsonParser *
load_json_file (const char *path, gsize max_bytes, guint max_depth, GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) local_error = NULL;
  gsize n_bytes = 0;
  guint64 n_members = 0;

  if (!g_file_get_contents (path, &contents, &n_bytes, error))
    return NULL;
  if (n_bytes > max_bytes)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: %" G_GSIZE_FORMAT " bytes exceeds the %" G_GSIZE_FORMAT "-byte limit", path,
                   n_bytes, max_bytes);
      return NULL;
    }
  if (!g_utf8_validate_len (contents, n_bytes, NULL))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: not valid UTF-8 (or contains NUL bytes)", path);
      return NULL;
    }
  if (!slim_safetensors_json_prescan (contents, n_bytes, max_depth, &n_members, &local_error))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: %s", path,
                   local_error->message);
      return NULL;
    }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, contents, (gssize)n_bytes, &local_error))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: not valid JSON: %s",
                   path, local_error->message);
      return NULL;
    }
  return g_steal_pointer (&parser);
}

static gint
compare_str (gconstpointer a, gconstpointer b)
{
  return strcmp (a, b);
}

static gint
compare_file_path (gconstpointer a, gconstpointer b)
{
  const SlimSafetensorsFile *fa = *(const SlimSafetensorsFile *const *)a;
  const SlimSafetensorsFile *fb = *(const SlimSafetensorsFile *const *)b;
  return strcmp (fa->path, fb->path);
}

/* A shard name from an index must name a file beside the index. */
static gboolean
shard_name_is_safe (const char *name)
{
  return name[0] != '\0' && strchr (name, '/') == NULL && strchr (name, '\\') == NULL
         && strcmp (name, ".") != 0 && strcmp (name, "..") != 0;
}

static gboolean
open_index (SlimSafetensors *self, const char *index_path, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GHashTable) shard_files = NULL; /* shard name -> SlimSafetensorsFile */
  g_autoptr (GList) names = NULL;
  g_autofree char *dir = g_path_get_dirname (index_path);
  JsonNode *root, *map_node;
  JsonObject *weight_map;

  /* An index is small (names only); 32 MB and depth 8 are generous. */
  parser = load_json_file (index_path, 32 * 1024 * 1024, 8, error);
  if (parser == NULL)
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: the index is not a JSON object", index_path);
      return FALSE;
    }
  map_node = json_object_get_member (json_node_get_object (root), "weight_map");
  if (map_node == NULL || !JSON_NODE_HOLDS_OBJECT (map_node))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: missing \"weight_map\" object", index_path);
      return FALSE;
    }
  weight_map = json_node_get_object (map_node);
  shard_files = g_hash_table_new (g_str_hash, g_str_equal);

  /* Open shards in sorted order so errors are reproducible. */
  names = json_object_get_members (weight_map);
  names = g_list_sort (names, compare_str);
  for (GList *l = names; l != NULL; l = l->next)
    {
      const char *tensor_name = l->data;
      JsonNode *value = json_object_get_member (weight_map, tensor_name);
      const char *shard;
      SlimSafetensorsFile *file;
      const SlimSafetensorsEntry *entry;

      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING
          || !shard_name_is_safe (json_node_get_string (value)))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: tensor \"%s\" must map to a file name in the index's folder",
                       index_path, tensor_name);
          return FALSE;
        }
      shard = json_node_get_string (value);
      file = g_hash_table_lookup (shard_files, shard);
      if (file == NULL)
        {
          g_autofree char *shard_path = g_build_filename (dir, shard, NULL);

          if (!g_file_test (shard_path, G_FILE_TEST_IS_REGULAR))
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                           "%s: shard \"%s\" (of tensor \"%s\") does not exist", index_path, shard,
                           tensor_name);
              return FALSE;
            }
          file = file_open (shard_path, error);
          if (file == NULL)
            return FALSE;
          g_ptr_array_add (self->files, file);
          /* the key is owned by the parser, which lives until the end */
          g_hash_table_insert (shard_files, (gpointer)shard, file);
        }
      entry = slim_safetensors_header_lookup (file->header, tensor_name);
      if (entry == NULL)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                       "%s: tensor \"%s\" is not in its shard \"%s\"", index_path, tensor_name,
                       shard);
          return FALSE;
        }
      add_slot (self, file, entry);
    }
  /* shard order (-00001-of- first) so "the first file" is the first shard */
  g_ptr_array_sort (self->files, compare_file_path);
  return TRUE;
}

/* Picks the file to open inside a model folder. */
static char *
resolve_folder (const char *dir_path, GError **error)
{
  g_autoptr (GDir) dir = NULL;
  g_autofree char *single = NULL;
  g_autofree char *index = NULL;
  g_autofree char *model = g_build_filename (dir_path, "model.safetensors", NULL);
  g_autofree char *model_index = g_build_filename (dir_path, "model.safetensors.index.json", NULL);
  guint n_single = 0, n_index = 0;
  const char *name;

  if (g_file_test (model, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&model);
  if (g_file_test (model_index, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&model_index);
  dir = g_dir_open (dir_path, 0, error);
  if (dir == NULL)
    return NULL;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if (g_str_has_suffix (name, ".safetensors.index.json"))
        {
          n_index++;
          g_free (index);
          index = g_build_filename (dir_path, name, NULL);
        }
      else if (g_str_has_suffix (name, ".safetensors"))
        {
          n_single++;
          g_free (single);
          single = g_build_filename (dir_path, name, NULL);
        }
    }
  if (n_index == 1)
    return g_steal_pointer (&index);
  if (n_index == 0 && n_single == 1)
    return g_steal_pointer (&single);
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
               "%s: no model.safetensors, model.safetensors.index.json, single index or "
               "single .safetensors file (found %u index and %u .safetensors files)",
               dir_path, n_index, n_single);
  return NULL;
}

/**
 * slim_safetensors_open:
 * @path: a .safetensors file, a *.safetensors.index.json or a model folder
 * @error: return location for a #GError
 *
 * Maps the file(s) and validates every header.  Errors are
 * SLIM_FORMAT_ERROR for malformed files, G_FILE_ERROR for I/O.
 *
 * Returns: (transfer full) (nullable): the reader, NULL on error.
 */
SlimSafetensors *
slim_safetensors_open (const char *path, GError **error)
{
  g_autoptr (SlimSafetensors) self = NULL;
  g_autofree char *resolved = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      resolved = resolve_folder (path, error);
      if (resolved == NULL)
        return NULL;
    }
  else
    resolved = g_strdup (path);

  self = g_object_new (SLIM_TYPE_SAFETENSORS, NULL);
  if (g_str_has_suffix (resolved, ".json"))
    {
      if (!open_index (self, resolved, error))
        return NULL;
    }
  else
    {
      SlimSafetensorsFile *file = file_open (resolved, error);
      if (file == NULL)
        return NULL;
      g_ptr_array_add (self->files, file);
      for (guint i = 0; i < file->header->entries->len; i++)
        add_slot (self, file, g_ptr_array_index (file->header->entries, i));
    }
  finish_names (self);
  return g_steal_pointer (&self);
}

/**
 * slim_safetensors_get_names:
 * @self: a reader
 *
 * Returns: (transfer none) (array zero-terminated=1): tensor names, sorted.
 */
const char *const *
slim_safetensors_get_names (SlimSafetensors *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), NULL);
  return self->names;
}

/**
 * slim_safetensors_get_n_tensors:
 * @self: a reader
 *
 * Returns: the number of tensors.
 */
guint
slim_safetensors_get_n_tensors (SlimSafetensors *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), 0);
  return g_hash_table_size (self->slots);
}

/**
 * slim_safetensors_contains:
 * @self: a reader
 * @name: a tensor name
 *
 * Returns: TRUE if the tensor exists.
 */
gboolean
slim_safetensors_contains (SlimSafetensors *self, const char *name)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), FALSE);
  return name != NULL && g_hash_table_contains (self->slots, name);
}

/**
 * slim_safetensors_get_info:
 * @self: a reader
 * @name: a tensor name
 * @out_dtype: (out) (optional): its dtype
 * @out_n_dims: (out) (optional): its number of dimensions
 * @out_shape: (out) (optional) (array fixed-size=6): its shape
 *
 * Returns: FALSE if the tensor is absent.
 */
gboolean
slim_safetensors_get_info (SlimSafetensors *self,
                           const char *name,
                           SlimDType *out_dtype,
                           guint *out_n_dims,
                           gint64 *out_shape)
{
  const SlimSafetensorsSlot *slot;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), FALSE);
  slot = name != NULL ? g_hash_table_lookup (self->slots, name) : NULL;
  if (slot == NULL)
    return FALSE;
  if (out_dtype != NULL)
    *out_dtype = slot->entry->dtype;
  if (out_n_dims != NULL)
    *out_n_dims = slot->entry->n_dims;
  if (out_shape != NULL)
    for (guint i = 0; i < SLIM_TENSOR_MAX_DIMS; i++)
      out_shape[i] = i < slot->entry->n_dims ? slot->entry->shape[i] : 0;
  return TRUE;
}

/**
 * slim_safetensors_get_tensor:
 * @self: a reader
 * @name: a tensor name
 * @error: return location for a #GError
 *
 * A read-only view into the mapping.  When the data is not aligned to its
 * element size (the format does not require it), an owned copy is returned
 * instead (see slim_tensor_new_view()), so kernels may always read elements
 * directly.
 *
 * Returns: (transfer full) (nullable): the tensor, NULL
 * (SLIM_FORMAT_ERROR_MISSING_TENSOR) if absent.
 */
SlimTensor *
slim_safetensors_get_tensor (SlimSafetensors *self, const char *name, GError **error)
{
  const SlimSafetensorsSlot *slot;
  const SlimSafetensorsEntry *entry;
  SlimTensor *view;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), NULL);
  slot = name != NULL ? g_hash_table_lookup (self->slots, name) : NULL;
  if (slot == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR, "no tensor \"%s\"",
                   name != NULL ? name : "(null)");
      return NULL;
    }
  entry = slot->entry;
  view = slim_tensor_new_view (
      entry->name, entry->dtype, entry->n_dims, entry->shape, slot->file->bytes,
      (gsize)(slot->file->header->data_offset_bytes + entry->begin_bytes), error);
  return view;
}

/**
 * slim_safetensors_get_tensor_f32:
 * @self: a reader
 * @name: a tensor name
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a new owned float32 tensor.
 */
SlimTensor *
slim_safetensors_get_tensor_f32 (SlimSafetensors *self, const char *name, GError **error)
{
  g_autoptr (SlimTensor) view = slim_safetensors_get_tensor (self, name, error);
  SlimTensor *out;

  if (view == NULL)
    return NULL;
  out = slim_tensor_to_f32 (view, error);
  /* a converted copy no longer needs the file's pages */
  if (out != NULL && slim_tensor_get_data (out) != slim_tensor_get_data (view))
    slim_safetensors_release_pages (self, name);
  return out;
}

/**
 * slim_safetensors_release_pages:
 * @self: a reader
 * @name: a tensor name
 *
 * Tells the kernel that the mapped pages lying entirely inside the
 * tensor's bytes are not needed now (MADV_DONTNEED; glibc's
 * posix_madvise ignores its DONTNEED).  The mapping is read-only and
 * private, so this is always safe: a page touched again is read back from
 * the file.  It keeps the resident memory of a layer-wise
 * run from growing with every layer read; pages shared with a
 * neighbouring tensor are kept.
 */
void
slim_safetensors_release_pages (SlimSafetensors *self, const char *name)
{
  const SlimSafetensorsSlot *slot;
  const guint8 *contents; /* (length) the mapping */
  gsize length, page = (gsize)sysconf (_SC_PAGESIZE);
  guintptr begin, end;

  g_return_if_fail (SLIM_IS_SAFETENSORS (self));
  slot = name != NULL ? g_hash_table_lookup (self->slots, name) : NULL;
  if (slot == NULL || slot->file->mapped == NULL || page == 0)
    return;
  contents = (const guint8 *)g_mapped_file_get_contents (slot->file->mapped);
  length = g_mapped_file_get_length (slot->file->mapped);
  if (contents == NULL || length == 0)
    return;
  begin = (guintptr)(contents + slot->file->header->data_offset_bytes + slot->entry->begin_bytes);
  end = (guintptr)(contents + slot->file->header->data_offset_bytes + slot->entry->end_bytes);
  begin = (begin + page - 1) / page * page;
  end = end / page * page;
  if (end > begin)
    madvise ((void *)begin, end - begin, MADV_DONTNEED);
}

/**
 * slim_safetensors_get_metadata:
 * @self: a reader
 *
 * Returns: (transfer none): __metadata__ of the first file (string ->
 * string), possibly empty.
 */
GHashTable *
slim_safetensors_get_metadata (SlimSafetensors *self)
{
  SlimSafetensorsFile *file;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), NULL);
  if (self->files->len == 0) /* an index with an empty weight_map */
    return self->empty_metadata;
  file = g_ptr_array_index (self->files, 0);
  return file->header->metadata;
}

/**
 * slim_safetensors_get_total_bytes:
 * @self: a reader
 *
 * Returns: the sum of the tensors' byte sizes.
 */
guint64
slim_safetensors_get_total_bytes (SlimSafetensors *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), 0);
  return self->total_bytes;
}

/**
 * slim_safetensors_get_n_files:
 * @self: a reader
 *
 * Returns: the number of files mapped.
 */
guint
slim_safetensors_get_n_files (SlimSafetensors *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), 0);
  return self->files->len;
}
