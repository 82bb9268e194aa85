/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-checkpoint.c: run checkpoints in HDF5 and the run hashes.
 *
 * File layout (checkpoint.h5):
 *   /                 attributes slimflow_checkpoint_version, layer_done,
 *                     n_inputs, config_sha256, model_sha256, dataset_sha256
 *   /inputs/<i>       sample i of the next inputs, (n_tokens_i, hidden) f32
 *   /processor_state/<name>, /saver_progress/<name>   1-D u8 blobs
 * Names are %XX-escaped (slim_hdf5_escape_name).
 */
#include "slim-checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include "slim-error.h"
#include "slim-hdf5.h"
#include "slim-safetensors.h"

#define SLIM_CHECKPOINT_VERSION 1
#define SLIM_CHECKPOINT_GROUP_INPUTS "inputs"
#define SLIM_CHECKPOINT_GROUP_PROCESSORS "processor_state"
#define SLIM_CHECKPOINT_GROUP_SAVERS "saver_progress"
/* Bounds on model folder files read for the hash (untrusted sizes). */
#define SLIM_CHECKPOINT_MAX_JSON_BYTES (64 * 1024 * 1024)

struct _SlimCheckpoint
{
  GObject parent_instance;

  SlimCheckpointHashes hashes;
  gint64 layer_done;
  GHashTable *processor_state; /* char * -> GBytes * */
  GHashTable *saver_progress;  /* char * -> GBytes * */
  /* Set by load: where the inputs are. */
  char *path;
  guint n_inputs;
};

G_DEFINE_FINAL_TYPE (SlimCheckpoint, slim_checkpoint, G_TYPE_OBJECT)

static void
slim_checkpoint_finalize (GObject *object)
{
  SlimCheckpoint *self = SLIM_CHECKPOINT (object);

  g_hash_table_unref (self->processor_state);
  g_hash_table_unref (self->saver_progress);
  g_free (self->path);
  G_OBJECT_CLASS (slim_checkpoint_parent_class)->finalize (object);
}

static void
slim_checkpoint_class_init (SlimCheckpointClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_checkpoint_finalize;
}

static void
slim_checkpoint_init (SlimCheckpoint *self)
{
  self->layer_done = -1;
  self->processor_state
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
  self->saver_progress
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_bytes_unref);
}

/* ---- hashes -------------------------------------------------------------- */

char *
slim_checkpoint_hash_config (const char *text, gsize length_bytes)
{
  g_return_val_if_fail (text != NULL || length_bytes == 0, NULL);
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *)text, length_bytes);
}

static void
slim_checkpoint_checksum_u64 (GChecksum *checksum, guint64 value)
{
  guint64 le = GUINT64_TO_LE (value);
  g_checksum_update (checksum, (const guchar *)&le, sizeof le);
}

static void
slim_checkpoint_checksum_name (GChecksum *checksum, const char *name)
{
  g_checksum_update (checksum, (const guchar *)name, strlen (name) + 1);
}

char *
slim_checkpoint_hash_token_ids (guint n_samples,
                                const gsize *n_tokens,
                                const gint64 *const *token_ids)
{
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);

  g_return_val_if_fail (n_samples == 0 || (n_tokens != NULL && token_ids != NULL), NULL);

  slim_checkpoint_checksum_u64 (checksum, n_samples);
  for (guint i = 0; i < n_samples; i++)
    {
      slim_checkpoint_checksum_u64 (checksum, n_tokens[i]);
      for (gsize t = 0; t < n_tokens[i]; t++)
        slim_checkpoint_checksum_u64 (checksum, (guint64)token_ids[i][t]);
    }
  return g_strdup (g_checksum_get_string (checksum));
}

/* Adds name, size and content of a small whole file. */
static gboolean
slim_checkpoint_hash_whole_file (GChecksum *checksum,
                                 const char *dir,
                                 const char *name,
                                 GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *contents = NULL; /* (length_bytes) file bytes */
  GStatBuf st;
  gsize length_bytes = 0;

  if (g_stat (path, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot read '%s': %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  if (st.st_size > SLIM_CHECKPOINT_MAX_JSON_BYTES)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "'%s' is too large (%" G_GINT64_FORMAT " bytes)", path, (gint64)st.st_size);
      return FALSE;
    }
  if (!g_file_get_contents (path, &contents, &length_bytes, error))
    return FALSE;
  slim_checkpoint_checksum_name (checksum, name);
  slim_checkpoint_checksum_u64 (checksum, length_bytes);
  g_checksum_update (checksum, (const guchar *)contents, length_bytes);
  return TRUE;
}

static gboolean
slim_checkpoint_read_exact (int fd, void *buffer, gsize n_bytes)
{
  guint8 *p = buffer;

  while (n_bytes > 0)
    {
      gssize n = read (fd, p, n_bytes);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      n_bytes -= (gsize)n;
    }
  return TRUE;
}

/* Adds name, file size and the header (length + JSON) of a safetensors file. */
static gboolean
slim_checkpoint_hash_safetensors_header (GChecksum *checksum,
                                         const char *dir,
                                         const char *name,
                                         GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree guint8 *header = NULL; /* (header_bytes) */
  guint64 header_bytes = 0;
  struct stat st;
  gboolean ok = FALSE;
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);

  if (fd < 0 || fstat (fd, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot read '%s': %s", path, g_strerror (saved_errno));
      goto out;
    }
  if (!slim_checkpoint_read_exact (fd, &header_bytes, sizeof header_bytes))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_TRUNCATED,
                   "'%s': no safetensors header", path);
      goto out;
    }
  header_bytes = GUINT64_FROM_LE (header_bytes);
  if (header_bytes > SLIM_SAFETENSORS_MAX_HEADER_BYTES || header_bytes > (guint64)st.st_size - 8)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "'%s': header length %" G_GUINT64_FORMAT " out of bounds", path, header_bytes);
      goto out;
    }
  header = g_malloc (MAX (header_bytes, 1));
  if (!slim_checkpoint_read_exact (fd, header, header_bytes))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_TRUNCATED, "'%s': truncated header",
                   path);
      goto out;
    }
  slim_checkpoint_checksum_name (checksum, name);
  slim_checkpoint_checksum_u64 (checksum, (guint64)st.st_size);
  slim_checkpoint_checksum_u64 (checksum, header_bytes);
  g_checksum_update (checksum, header, header_bytes);
  ok = TRUE;
out:
  if (fd >= 0)
    close (fd);
  return ok;
}

static gint
slim_checkpoint_compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

char *
slim_checkpoint_hash_model (const char *model_path, GError **error)
{
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GPtrArray) shards = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) indexes = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GDir) dir = NULL;
  const char *entry;

  g_return_val_if_fail (model_path != NULL, NULL);

  dir = g_dir_open (model_path, 0, error);
  if (dir == NULL)
    return NULL;
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      if (g_str_has_suffix (entry, ".safetensors"))
        g_ptr_array_add (shards, g_strdup (entry));
      else if (g_str_has_suffix (entry, ".safetensors.index.json"))
        g_ptr_array_add (indexes, g_strdup (entry));
    }
  if (shards->len == 0)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "'%s' holds no *.safetensors file", model_path);
      return NULL;
    }
  g_ptr_array_sort (shards, slim_checkpoint_compare_names);
  g_ptr_array_sort (indexes, slim_checkpoint_compare_names);

  if (!slim_checkpoint_hash_whole_file (checksum, model_path, "config.json", error))
    return NULL;
  for (guint i = 0; i < shards->len; i++)
    if (!slim_checkpoint_hash_safetensors_header (checksum, model_path,
                                                  g_ptr_array_index (shards, i), error))
      return NULL;
  for (guint i = 0; i < indexes->len; i++)
    if (!slim_checkpoint_hash_whole_file (checksum, model_path, g_ptr_array_index (indexes, i),
                                          error))
      return NULL;
  return g_strdup (g_checksum_get_string (checksum));
}

/* ---- object ------------------------------------------------------------------ */

SlimCheckpoint *
slim_checkpoint_new (const SlimCheckpointHashes *hashes)
{
  SlimCheckpoint *self;

  g_return_val_if_fail (hashes != NULL, NULL);

  self = g_object_new (SLIM_TYPE_CHECKPOINT, NULL);
  self->hashes = *hashes;
  self->hashes.config[SLIM_SHA256_HEX_SIZE - 1] = '\0';
  self->hashes.model[SLIM_SHA256_HEX_SIZE - 1] = '\0';
  self->hashes.dataset[SLIM_SHA256_HEX_SIZE - 1] = '\0';
  return self;
}

const SlimCheckpointHashes *
slim_checkpoint_get_hashes (SlimCheckpoint *self)
{
  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), NULL);
  return &self->hashes;
}

void
slim_checkpoint_set_layer_done (SlimCheckpoint *self, gint64 layer_index)
{
  g_return_if_fail (SLIM_IS_CHECKPOINT (self));
  g_return_if_fail (layer_index >= -1);
  self->layer_done = layer_index;
}

gint64
slim_checkpoint_get_layer_done (SlimCheckpoint *self)
{
  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), -1);
  return self->layer_done;
}

static void
slim_checkpoint_set_blob (GHashTable *table, const char *name, GBytes *bytes)
{
  if (bytes == NULL)
    g_hash_table_remove (table, name);
  else
    g_hash_table_replace (table, g_strdup (name), g_bytes_ref (bytes));
}

static gboolean
slim_checkpoint_blob_name_is_valid (const char *name)
{
  return name != NULL && name[0] != '\0' && g_utf8_validate (name, -1, NULL)
         && strlen (name) <= 256;
}

void
slim_checkpoint_set_processor_state (SlimCheckpoint *self, const char *name, GBytes *state)
{
  g_return_if_fail (SLIM_IS_CHECKPOINT (self));
  g_return_if_fail (slim_checkpoint_blob_name_is_valid (name));
  slim_checkpoint_set_blob (self->processor_state, name, state);
}

GBytes *
slim_checkpoint_get_processor_state (SlimCheckpoint *self, const char *name)
{
  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), NULL);
  return g_hash_table_lookup (self->processor_state, name);
}

void
slim_checkpoint_set_saver_progress (SlimCheckpoint *self, const char *name, GBytes *progress)
{
  g_return_if_fail (SLIM_IS_CHECKPOINT (self));
  g_return_if_fail (slim_checkpoint_blob_name_is_valid (name));
  slim_checkpoint_set_blob (self->saver_progress, name, progress);
}

GBytes *
slim_checkpoint_get_saver_progress (SlimCheckpoint *self, const char *name)
{
  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), NULL);
  return g_hash_table_lookup (self->saver_progress, name);
}

static GStrv
slim_checkpoint_sorted_keys (GHashTable *table)
{
  guint n = 0;
  GStrv names = (GStrv)g_hash_table_get_keys_as_array (table, &n);
  GStrv copy = g_new0 (char *, n + 1); /* (n + 1) NULL-terminated */

  for (guint i = 0; i < n; i++)
    copy[i] = g_strdup (names[i]);
  g_free (names);
  qsort (copy, n, sizeof (char *), slim_checkpoint_compare_names);
  return copy;
}

GStrv
slim_checkpoint_dup_processor_names (SlimCheckpoint *self)
{
  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), NULL);
  return slim_checkpoint_sorted_keys (self->processor_state);
}

GStrv
slim_checkpoint_dup_saver_names (SlimCheckpoint *self)
{
  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), NULL);
  return slim_checkpoint_sorted_keys (self->saver_progress);
}

guint
slim_checkpoint_get_n_inputs (SlimCheckpoint *self)
{
  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), 0);
  return self->n_inputs;
}

/* ---- save ------------------------------------------------------------------ */

static gboolean
slim_checkpoint_fsync_path (const char *path, gboolean is_dir, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0), 0);
  int saved_errno;

  if (fd >= 0 && fsync (fd) == 0)
    {
      close (fd);
      return TRUE;
    }
  saved_errno = errno;
  if (fd >= 0)
    close (fd);
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot sync '%s': %s",
               path, g_strerror (saved_errno));
  return FALSE;
}

/* Lock held. */
static gboolean
slim_checkpoint_write_blobs (hid_t file, const char *group_name, GHashTable *table, GError **error)
{
  g_auto (GStrv) names = slim_checkpoint_sorted_keys (table);
  hid_t group = H5Gcreate2 (file, group_name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  gboolean ok = group >= 0;

  if (!ok)
    slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create group '%s'",
                         group_name);
  for (guint i = 0; ok && names[i] != NULL; i++)
    {
      GBytes *bytes = g_hash_table_lookup (table, names[i]);
      gsize n_bytes = 0;
      const guint8 *data = g_bytes_get_data (bytes, &n_bytes); /* (n_bytes) */
      gint64 shape[1] = { (gint64)n_bytes };                   /* (1) */
      g_autoptr (SlimTensor) blob = slim_tensor_new (names[i], SLIM_DTYPE_U8, 1, shape, error);
      g_autofree char *link = slim_hdf5_escape_name (names[i]);

      ok = blob != NULL;
      if (ok && n_bytes > 0)
        memcpy (slim_tensor_get_data_mut (blob), data, n_bytes);
      ok = ok && slim_hdf5_write_tensor (group, link, blob, error);
    }
  if (group >= 0)
    H5Gclose (group);
  return ok;
}

/* Lock held. */
static gboolean
slim_checkpoint_write_inputs (hid_t file, SlimActivations *inputs, GError **error)
{
  guint n = inputs != NULL ? slim_activations_get_n_samples (inputs) : 0;
  hid_t group
      = H5Gcreate2 (file, SLIM_CHECKPOINT_GROUP_INPUTS, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  gboolean ok = group >= 0;

  if (!ok)
    slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create group 'inputs'");
  for (guint i = 0; ok && i < n; i++)
    {
      g_autoptr (SlimTensor) sample = slim_activations_get (inputs, i, error);
      char link[16]; /* (16) decimal sample index, NUL-terminated */

      g_snprintf (link, sizeof link, "%u", i);
      ok = sample != NULL && slim_hdf5_write_tensor (group, link, sample, error);
    }
  if (group >= 0)
    H5Gclose (group);
  return ok && slim_hdf5_write_attr_int64 (file, "n_inputs", n, error);
}

gboolean
slim_checkpoint_save (SlimCheckpoint *self,
                      const char *work_dir,
                      SlimActivations *next_inputs,
                      GError **error)
{
  g_autofree char *tmp_path = NULL;
  g_autofree char *final_path = NULL;
  hid_t file;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), FALSE);
  g_return_val_if_fail (work_dir != NULL, FALSE);
  g_return_val_if_fail (next_inputs == NULL || SLIM_IS_ACTIVATIONS (next_inputs), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  tmp_path = g_build_filename (work_dir, SLIM_CHECKPOINT_TMP_FILE_NAME, NULL);
  final_path = g_build_filename (work_dir, SLIM_CHECKPOINT_FILE_NAME, NULL);

  slim_hdf5_lock ();
  file = slim_hdf5_create_file (tmp_path, error);
  ok = file >= 0;
  ok = ok
       && slim_hdf5_write_attr_int64 (file, "slimflow_checkpoint_version", SLIM_CHECKPOINT_VERSION,
                                      error)
       && slim_hdf5_write_attr_int64 (file, "layer_done", self->layer_done, error)
       && slim_hdf5_write_attr_string (file, "config_sha256", self->hashes.config, error)
       && slim_hdf5_write_attr_string (file, "model_sha256", self->hashes.model, error)
       && slim_hdf5_write_attr_string (file, "dataset_sha256", self->hashes.dataset, error)
       && slim_checkpoint_write_inputs (file, next_inputs, error)
       && slim_checkpoint_write_blobs (file, SLIM_CHECKPOINT_GROUP_PROCESSORS,
                                       self->processor_state, error)
       && slim_checkpoint_write_blobs (file, SLIM_CHECKPOINT_GROUP_SAVERS, self->saver_progress,
                                       error);
  if (ok && H5Fflush (file, H5F_SCOPE_GLOBAL) < 0)
    {
      slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot flush");
      ok = FALSE;
    }
  if (file >= 0 && H5Fclose (file) < 0 && ok)
    {
      slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot close");
      ok = FALSE;
    }
  H5Eclear2 (H5E_DEFAULT);
  slim_hdf5_unlock ();

  ok = ok && slim_checkpoint_fsync_path (tmp_path, FALSE, error);
  if (ok && g_rename (tmp_path, final_path) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "cannot rename to '%s': %s", final_path, g_strerror (saved_errno));
      ok = FALSE;
    }
  ok = ok && slim_checkpoint_fsync_path (work_dir, TRUE, error);
  if (!ok)
    {
      g_unlink (tmp_path);
      g_prefix_error (error, "checkpoint in '%s': ", work_dir);
    }
  return ok;
}

/* ---- load -------------------------------------------------------------------- */

static gboolean
slim_checkpoint_read_hash (hid_t file,
                           const char *attr,
                           char *out /* (SLIM_SHA256_HEX_SIZE) */,
                           GError **error)
{
  g_autofree char *value = slim_hdf5_read_attr_string (file, attr, SLIM_SHA256_HEX_SIZE - 1, error);

  if (value == NULL)
    return FALSE;
  g_strlcpy (out, value, SLIM_SHA256_HEX_SIZE);
  return TRUE;
}

typedef struct
{
  GHashTable *table;
  GError **error;
} SlimCheckpointBlobIter;

static herr_t
slim_checkpoint_read_blob (hid_t group, const char *link, const H5L_info_t *info, void *data)
{
  SlimCheckpointBlobIter *iter = data;
  g_autofree char *name = slim_hdf5_unescape_name (link);
  g_autoptr (SlimTensor) blob = NULL;

  if (name == NULL || !slim_checkpoint_blob_name_is_valid (name))
    {
      g_set_error (iter->error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "invalid blob name '%s'", link);
      return -1;
    }
  blob = slim_hdf5_read_tensor (group, link, name, iter->error);
  if (blob == NULL)
    return -1;
  if (slim_tensor_get_dtype (blob) != SLIM_DTYPE_U8 || slim_tensor_get_n_dims (blob) != 1)
    {
      g_set_error (iter->error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_DTYPE,
                   "blob '%s' is not 1-D u8", name);
      return -1;
    }
  g_hash_table_replace (iter->table, g_steal_pointer (&name),
                        g_bytes_new (slim_tensor_get_data (blob), slim_tensor_get_n_bytes (blob)));
  return 0;
}

/* Lock held. */
static gboolean
slim_checkpoint_read_blobs (hid_t file, const char *group_name, GHashTable *table, GError **error)
{
  SlimCheckpointBlobIter iter = { table, error };
  GError *local_error = NULL;
  hid_t group = H5Gopen2 (file, group_name, H5P_DEFAULT);
  herr_t status;

  if (group < 0)
    {
      slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                           "group '%s' missing", group_name);
      return FALSE;
    }
  iter.error = &local_error;
  status = H5Literate (group, H5_INDEX_NAME, H5_ITER_INC, NULL, slim_checkpoint_read_blob, &iter);
  H5Gclose (group);
  if (status < 0)
    {
      if (local_error != NULL)
        {
          H5Eclear2 (H5E_DEFAULT);
          g_propagate_error (error, local_error);
        }
      else
        slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                             "cannot list '%s'", group_name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_checkpoint_hash_is_valid (const char *hex)
{
  if (strlen (hex) != SLIM_SHA256_HEX_SIZE - 1)
    return FALSE;
  for (const char *p = hex; *p != '\0'; p++)
    if (!g_ascii_isxdigit (*p) || g_ascii_isupper (*p))
      return FALSE;
  return TRUE;
}

static gboolean
slim_checkpoint_check_hashes (const SlimCheckpointHashes *stored,
                              const SlimCheckpointHashes *expected,
                              const char *path,
                              GError **error)
{
  g_autoptr (GString) diff = g_string_new (NULL);
  const struct
  {
    const char *what;
    const char *stored;
    const char *expected;
  } items[] = {
    { "the config (YAML text)", stored->config, expected->config },
    { "the model (config.json and safetensors headers)", stored->model, expected->model },
    { "the calibration dataset (token ids)", stored->dataset, expected->dataset },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (items); i++)
    if (strcmp (items[i].stored, items[i].expected) != 0)
      g_string_append_printf (diff, "%s%s differs (checkpoint sha256 %.12s…, this run %.12s…)",
                              diff->len > 0 ? "; " : "", items[i].what, items[i].stored,
                              items[i].expected);
  if (diff->len == 0)
    return TRUE;
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "checkpoint '%s' belongs to another run: %s; run without --resume to start over",
               path, diff->str);
  return FALSE;
}

SlimCheckpoint *
slim_checkpoint_load (const char *work_dir, const SlimCheckpointHashes *expected, GError **error)
{
  g_autoptr (SlimCheckpoint) self = g_object_new (SLIM_TYPE_CHECKPOINT, NULL);
  g_autofree char *path = NULL;
  gint64 version = 0, n_inputs = 0;
  hid_t file;
  gboolean ok;

  g_return_val_if_fail (work_dir != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  path = g_build_filename (work_dir, SLIM_CHECKPOINT_FILE_NAME, NULL);
  slim_hdf5_lock ();
  file = slim_hdf5_open_file (path, FALSE, error);
  ok = file >= 0
       && slim_hdf5_read_attr_int64 (file, "slimflow_checkpoint_version", &version, error);
  if (ok && version != SLIM_CHECKPOINT_VERSION)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "format version %" G_GINT64_FORMAT " (expected %d)", version,
                   SLIM_CHECKPOINT_VERSION);
      ok = FALSE;
    }
  ok = ok && slim_hdf5_read_attr_int64 (file, "layer_done", &self->layer_done, error)
       && slim_hdf5_read_attr_int64 (file, "n_inputs", &n_inputs, error)
       && slim_checkpoint_read_hash (file, "config_sha256", self->hashes.config, error)
       && slim_checkpoint_read_hash (file, "model_sha256", self->hashes.model, error)
       && slim_checkpoint_read_hash (file, "dataset_sha256", self->hashes.dataset, error);
  if (ok
      && (self->layer_done < -1 || n_inputs < 0 || n_inputs > G_MAXUINT
          || !slim_checkpoint_hash_is_valid (self->hashes.config)
          || !slim_checkpoint_hash_is_valid (self->hashes.model)
          || !slim_checkpoint_hash_is_valid (self->hashes.dataset)))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "invalid metadata");
      ok = FALSE;
    }
  ok = ok
       && slim_checkpoint_read_blobs (file, SLIM_CHECKPOINT_GROUP_PROCESSORS, self->processor_state,
                                      error)
       && slim_checkpoint_read_blobs (file, SLIM_CHECKPOINT_GROUP_SAVERS, self->saver_progress,
                                      error);
  if (file >= 0)
    H5Fclose (file);
  H5Eclear2 (H5E_DEFAULT);
  slim_hdf5_unlock ();

  ok = ok
       && (expected == NULL || slim_checkpoint_check_hashes (&self->hashes, expected, path, error));
  if (!ok)
    {
      if (error != NULL
          && !g_error_matches (*error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE))
        g_prefix_error (error, "checkpoint '%s': ", path);
      return NULL;
    }
  self->n_inputs = (guint)n_inputs;
  self->path = g_steal_pointer (&path);
  return g_steal_pointer (&self);
}

gboolean
slim_checkpoint_read_inputs (SlimCheckpoint *self, SlimActivations *into, GError **error)
{
  hid_t file, group = -1;
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_CHECKPOINT (self), FALSE);
  g_return_val_if_fail (SLIM_IS_ACTIVATIONS (into), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->path == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "checkpoint was not loaded from a file");
      return FALSE;
    }
  if (slim_activations_get_n_samples (into) != self->n_inputs)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "checkpoint '%s' holds %u input samples, this run has %u", self->path,
                   self->n_inputs, slim_activations_get_n_samples (into));
      return FALSE;
    }
  slim_hdf5_lock ();
  file = slim_hdf5_open_file (self->path, FALSE, error);
  ok = file >= 0;
  if (ok)
    {
      group = H5Gopen2 (file, SLIM_CHECKPOINT_GROUP_INPUTS, H5P_DEFAULT);
      if (group < 0)
        {
          slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                               "group 'inputs' missing");
          ok = FALSE;
        }
    }
  for (guint i = 0; ok && i < self->n_inputs; i++)
    {
      char link[16]; /* (16) decimal sample index, NUL-terminated */
      g_autofree char *name = NULL;
      g_autoptr (SlimTensor) sample = NULL;

      g_snprintf (link, sizeof link, "%u", i);
      name = g_strdup_printf ("inputs/%u", i);
      sample = slim_hdf5_read_tensor (group, link, name, error);
      ok = sample != NULL && slim_activations_set (into, i, sample, error);
    }
  if (group >= 0)
    H5Gclose (group);
  if (file >= 0)
    H5Fclose (file);
  H5Eclear2 (H5E_DEFAULT);
  slim_hdf5_unlock ();
  if (!ok)
    g_prefix_error (error, "checkpoint '%s': ", self->path);
  return ok;
}
