/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-workdir.c: work area and staging output folder (see slim-workdir.h).
 */
#include "slim-workdir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include "slim-error.h"

/* Files inside the work area: the marker proving slimflow made it, and the
 * note naming the staging folder (for --resume). */
#define SLIM_WORKDIR_MARKER_NAME ".slimflow-work"
#define SLIM_WORKDIR_STAGING_NOTE_NAME "staging"
#define SLIM_WORKDIR_MANIFEST_HEADER "# slimflow output manifest v1\n"
/* A manifest larger than this is not ours. */
#define SLIM_WORKDIR_MAX_MANIFEST_BYTES (16 * 1024 * 1024)

struct _SlimWorkdir
{
  GObject parent_instance;

  char *save_path; /* absolute, lexically canonical */
  char *work_dir;
  char *staging_dir; /* NULL until prepare */
};

G_DEFINE_FINAL_TYPE (SlimWorkdir, slim_workdir, G_TYPE_OBJECT)

static void
slim_workdir_finalize (GObject *object)
{
  SlimWorkdir *self = SLIM_WORKDIR (object);

  g_free (self->save_path);
  g_free (self->work_dir);
  g_free (self->staging_dir);
  G_OBJECT_CLASS (slim_workdir_parent_class)->finalize (object);
}

static void
slim_workdir_class_init (SlimWorkdirClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_workdir_finalize;
}

static void
slim_workdir_init (SlimWorkdir *self)
{
}

static gboolean
slim_workdir_set_errno_error (GError **error, int saved_errno, const char *what, const char *path)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot %s '%s': %s",
               what, path, g_strerror (saved_errno));
  return FALSE;
}

/* ---- paths ------------------------------------------------------------------ */

/* Absolute path with symlinks resolved as far as the path exists. */
static char *
slim_workdir_real_path (const char *path)
{
  g_autofree char *absolute = g_canonicalize_filename (path, NULL);
  char *resolved = realpath (absolute, NULL);
  g_autofree char *parent = NULL;
  g_autofree char *base = NULL;
  g_autofree char *real_parent = NULL;

  if (resolved != NULL)
    {
      char *copy = g_strdup (resolved);
      free (resolved);
      return copy;
    }
  parent = g_path_get_dirname (absolute);
  if (strcmp (parent, absolute) == 0)
    return g_steal_pointer (&absolute);
  base = g_path_get_basename (absolute);
  real_parent = slim_workdir_real_path (parent);
  return g_build_filename (real_parent, base, NULL);
}

static gboolean
slim_workdir_is_inside (const char *path, const char *dir)
{
  gsize n = strlen (dir);

  if (strcmp (dir, "/") == 0)
    return TRUE;
  return strncmp (path, dir, n) == 0 && path[n] == '/';
}

/* ---- trees ------------------------------------------------------------------ */

/* Removes path and, for a directory, everything below it; never follows
 * symlinks.  Only called on folders slimflow created. */
static gboolean
slim_workdir_remove_tree (const char *path, GError **error)
{
  GStatBuf st;

  if (g_lstat (path, &st) != 0)
    return errno == ENOENT ? TRUE : slim_workdir_set_errno_error (error, errno, "inspect", path);
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr (GDir) dir = g_dir_open (path, 0, error);
      const char *name;

      if (dir == NULL)
        return FALSE;
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          if (!slim_workdir_remove_tree (child, error))
            return FALSE;
        }
      if (g_rmdir (path) != 0)
        return slim_workdir_set_errno_error (error, errno, "remove", path);
      return TRUE;
    }
  if (g_unlink (path) != 0)
    return slim_workdir_set_errno_error (error, errno, "remove", path);
  return TRUE;
}

/* Appends the relative paths of every non-directory below root/relative. */
static gboolean
slim_workdir_list_files (const char *root, const char *relative, GPtrArray *out, GError **error)
{
  g_autofree char *path
      = relative[0] != '\0' ? g_build_filename (root, relative, NULL) : g_strdup (root);
  g_autoptr (GDir) dir = g_dir_open (path, 0, error);
  const char *name;

  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child_relative
          = relative[0] != '\0' ? g_strconcat (relative, "/", name, NULL) : g_strdup (name);
      g_autofree char *child = g_build_filename (root, child_relative, NULL);
      GStatBuf st;

      if (g_lstat (child, &st) != 0)
        return slim_workdir_set_errno_error (error, errno, "inspect", child);
      if (S_ISDIR (st.st_mode))
        {
          if (!slim_workdir_list_files (root, child_relative, out, error))
            return FALSE;
        }
      else
        g_ptr_array_add (out, g_steal_pointer (&child_relative));
    }
  return TRUE;
}

static gint
slim_workdir_compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static gboolean
slim_workdir_fsync (const char *path, gboolean is_dir, GError **error)
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
  return slim_workdir_set_errno_error (error, saved_errno, "sync", path);
}

/* ---- what is at save_path -------------------------------------------------- */

typedef enum
{
  SLIM_WORKDIR_TARGET_ABSENT,
  SLIM_WORKDIR_TARGET_EMPTY_DIR,
  SLIM_WORKDIR_TARGET_PREVIOUS_OUTPUT,
} SlimWorkdirTarget;

/* The manifest's file list (a set), or NULL if dir holds no valid manifest. */
static GHashTable *
slim_workdir_read_manifest (const char *dir)
{
  g_autofree char *path = g_build_filename (dir, SLIM_WORKDIR_MANIFEST_NAME, NULL);
  g_autofree char *contents = NULL; /* (file size + 1) NUL-terminated text */
  g_auto (GStrv) lines = NULL;
  GHashTable *files;
  GStatBuf st;

  if (g_lstat (path, &st) != 0 || !S_ISREG (st.st_mode)
      || st.st_size > SLIM_WORKDIR_MAX_MANIFEST_BYTES)
    return NULL;
  if (!g_file_get_contents (path, &contents, NULL, NULL)
      || !g_str_has_prefix (contents, SLIM_WORKDIR_MANIFEST_HEADER)
      || !g_utf8_validate (contents, -1, NULL))
    return NULL;
  files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  lines = g_strsplit (contents + strlen (SLIM_WORKDIR_MANIFEST_HEADER), "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      g_hash_table_add (files, g_strdup (lines[i]));
  return files;
}

static gboolean
slim_workdir_classify_target (const char *save_path, SlimWorkdirTarget *out_target, GError **error)
{
  g_autoptr (GHashTable) manifest = NULL;
  g_autoptr (GPtrArray) files = NULL;
  GStatBuf st;

  if (g_lstat (save_path, &st) != 0)
    {
      if (errno == ENOENT)
        {
          *out_target = SLIM_WORKDIR_TARGET_ABSENT;
          return TRUE;
        }
      return slim_workdir_set_errno_error (error, errno, "inspect", save_path);
    }
  if (!S_ISDIR (st.st_mode))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "save_path '%s' exists and is not a plain directory (a file or a symlink); "
                   "refusing to replace it",
                   save_path);
      return FALSE;
    }
  files = g_ptr_array_new_with_free_func (g_free);
  if (!slim_workdir_list_files (save_path, "", files, error))
    return FALSE;
  if (files->len == 0)
    {
      *out_target = SLIM_WORKDIR_TARGET_EMPTY_DIR;
      return TRUE;
    }
  manifest = slim_workdir_read_manifest (save_path);
  g_ptr_array_sort (files, slim_workdir_compare_strings);
  for (guint i = 0; i < files->len; i++)
    {
      const char *file = g_ptr_array_index (files, i);
      if (strcmp (file, SLIM_WORKDIR_MANIFEST_NAME) == 0
          || (manifest != NULL && g_hash_table_contains (manifest, file)))
        continue;
      g_set_error (
          error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
          "save_path '%s' holds files slimflow did not write (e.g. '%s'); choose an empty or new "
          "folder, or a previous slimflow output",
          save_path, file);
      return FALSE;
    }
  *out_target = SLIM_WORKDIR_TARGET_PREVIOUS_OUTPUT;
  return TRUE;
}

/* ---- public ---------------------------------------------------------------- */

SlimWorkdir *
slim_workdir_new (const char *save_path, const char *model_path, GError **error)
{
  g_autoptr (SlimWorkdir) self = NULL;
  g_autofree char *real_save = NULL;
  g_autofree char *base = NULL;
  SlimWorkdirTarget target;

  g_return_val_if_fail (save_path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (save_path[0] == '\0')
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE, "save_path is empty");
      return NULL;
    }
  self = g_object_new (SLIM_TYPE_WORKDIR, NULL);
  self->save_path = g_canonicalize_filename (save_path, NULL);
  base = g_path_get_basename (self->save_path);
  if (strcmp (self->save_path, "/") == 0 || strcmp (base, ".") == 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "save_path '%s' is not usable", save_path);
      return NULL;
    }
  real_save = slim_workdir_real_path (self->save_path);
  if (model_path != NULL)
    {
      g_autofree char *real_model = slim_workdir_real_path (model_path);
      const char *problem = NULL;

      if (strcmp (real_save, real_model) == 0)
        problem = "is the model folder";
      else if (slim_workdir_is_inside (real_save, real_model))
        problem = "is inside the model folder";
      else if (slim_workdir_is_inside (real_model, real_save))
        problem = "contains the model folder";
      if (problem != NULL)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "save_path '%s' %s '%s'; the output must go to another folder", save_path,
                       problem, model_path);
          return NULL;
        }
    }
  if (!slim_workdir_classify_target (self->save_path, &target, error))
    return NULL;
  self->work_dir = g_strconcat (self->save_path, SLIM_WORKDIR_WORK_SUFFIX, NULL);
  return g_steal_pointer (&self);
}

const char *
slim_workdir_get_save_path (SlimWorkdir *self)
{
  g_return_val_if_fail (SLIM_IS_WORKDIR (self), NULL);
  return self->save_path;
}

const char *
slim_workdir_get_work_dir (SlimWorkdir *self)
{
  g_return_val_if_fail (SLIM_IS_WORKDIR (self), NULL);
  return self->work_dir;
}

const char *
slim_workdir_get_staging_dir (SlimWorkdir *self)
{
  g_return_val_if_fail (SLIM_IS_WORKDIR (self), NULL);
  return self->staging_dir;
}

/* The staging folder named by the work area's note, if the note is valid. */
static char *
slim_workdir_read_staging_note (SlimWorkdir *self)
{
  g_autofree char *note = g_build_filename (self->work_dir, SLIM_WORKDIR_STAGING_NOTE_NAME, NULL);
  g_autofree char *contents = NULL; /* (length_bytes + 1) NUL-terminated text */
  g_autofree char *parent = g_path_get_dirname (self->save_path);
  g_autofree char *prefix = NULL;
  g_autofree char *base = g_path_get_basename (self->save_path);
  gsize length_bytes = 0;

  if (!g_file_get_contents (note, &contents, &length_bytes, NULL))
    return NULL;
  prefix = g_strconcat (base, SLIM_WORKDIR_STAGING_INFIX, NULL);
  /* Untrusted: exactly "<base>.slimflow-tmp-XXXXXX", no separators. */
  if (length_bytes != strlen (prefix) + 6 || !g_str_has_prefix (contents, prefix)
      || strchr (contents, '/') != NULL)
    return NULL;
  return g_build_filename (parent, contents, NULL);
}

static gboolean
slim_workdir_is_real_dir (const char *path)
{
  GStatBuf st;
  return g_lstat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

gboolean
slim_workdir_prepare (SlimWorkdir *self, gboolean resume, GError **error)
{
  g_autofree char *marker = NULL;
  g_autofree char *note = NULL;
  g_autofree char *parent = NULL;
  g_autofree char *previous_staging = NULL;
  g_autofree char *template_path = NULL;
  g_autofree char *staging_base = NULL;

  g_return_val_if_fail (SLIM_IS_WORKDIR (self), FALSE);
  g_return_val_if_fail (self->staging_dir == NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  parent = g_path_get_dirname (self->save_path);
  if (g_mkdir_with_parents (parent, 0755) != 0)
    return slim_workdir_set_errno_error (error, errno, "create", parent);

  marker = g_build_filename (self->work_dir, SLIM_WORKDIR_MARKER_NAME, NULL);
  note = g_build_filename (self->work_dir, SLIM_WORKDIR_STAGING_NOTE_NAME, NULL);
  if (g_file_test (self->work_dir, G_FILE_TEST_EXISTS))
    {
      if (!slim_workdir_is_real_dir (self->work_dir)
          || !g_file_test (marker, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "'%s' exists but was not created by slimflow; remove or rename it",
                       self->work_dir);
          return FALSE;
        }
      previous_staging = slim_workdir_read_staging_note (self);
      if (!resume)
        {
          /* A stale run: its work area and staging folder are ours to drop. */
          if (previous_staging != NULL && !slim_workdir_remove_tree (previous_staging, error))
            return FALSE;
          g_clear_pointer (&previous_staging, g_free);
          if (!slim_workdir_remove_tree (self->work_dir, error))
            return FALSE;
        }
    }
  if (!g_file_test (self->work_dir, G_FILE_TEST_EXISTS))
    {
      if (g_mkdir (self->work_dir, 0755) != 0)
        return slim_workdir_set_errno_error (error, errno, "create", self->work_dir);
      if (!g_file_set_contents (marker, "slimflow work area\n", -1, error))
        return FALSE;
    }

  if (previous_staging != NULL)
    {
      if (!slim_workdir_is_real_dir (previous_staging))
        {
          g_set_error (
              error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
              "the staging folder '%s' of the interrupted run is gone; run without --resume",
              previous_staging);
          return FALSE;
        }
      self->staging_dir = g_steal_pointer (&previous_staging);
      return TRUE;
    }
  template_path = g_strconcat (self->save_path, SLIM_WORKDIR_STAGING_INFIX, "XXXXXX", NULL);
  if (g_mkdtemp_full (template_path, 0755) == NULL)
    return slim_workdir_set_errno_error (error, errno, "create", template_path);
  staging_base = g_path_get_basename (template_path);
  if (!g_file_set_contents (note, staging_base, -1, error))
    {
      g_rmdir (template_path);
      return FALSE;
    }
  self->staging_dir = g_steal_pointer (&template_path);
  return TRUE;
}

/* Writes the manifest of the staging folder and syncs every file in it. */
static gboolean
slim_workdir_seal_staging (SlimWorkdir *self, GError **error)
{
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) manifest = g_string_new (SLIM_WORKDIR_MANIFEST_HEADER);
  g_autofree char *manifest_path
      = g_build_filename (self->staging_dir, SLIM_WORKDIR_MANIFEST_NAME, NULL);

  if (!slim_workdir_list_files (self->staging_dir, "", files, error))
    return FALSE;
  g_ptr_array_sort (files, slim_workdir_compare_strings);
  for (guint i = 0; i < files->len; i++)
    {
      const char *file = g_ptr_array_index (files, i);
      g_autofree char *path = g_build_filename (self->staging_dir, file, NULL);

      if (strcmp (file, SLIM_WORKDIR_MANIFEST_NAME) == 0)
        continue;
      if (strchr (file, '\n') != NULL)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                       "output file name with a newline: '%s'", file);
          return FALSE;
        }
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR) && !slim_workdir_fsync (path, FALSE, error))
        return FALSE;
      g_string_append_printf (manifest, "%s\n", file);
    }
  return g_file_set_contents (manifest_path, manifest->str, (gssize)manifest->len, error)
         && slim_workdir_fsync (self->staging_dir, TRUE, error);
}

/* Deletes what the manifest of old_dir lists, then the folders left empty. */
static void
slim_workdir_delete_previous_output (const char *old_dir)
{
  g_autoptr (GHashTable) manifest = slim_workdir_read_manifest (old_dir);
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;

  if (manifest != NULL && slim_workdir_list_files (old_dir, "", files, &error))
    {
      /* Deepest paths first so folders empty before they are removed. */
      g_ptr_array_sort (files, slim_workdir_compare_strings);
      for (guint i = files->len; i-- > 0;)
        {
          const char *file = g_ptr_array_index (files, i);
          if (strcmp (file, SLIM_WORKDIR_MANIFEST_NAME) != 0
              && g_hash_table_contains (manifest, file))
            {
              g_autofree char *path = g_build_filename (old_dir, file, NULL);
              g_autofree char *dir = g_path_get_dirname (path);
              g_unlink (path);
              while (strcmp (dir, old_dir) != 0 && g_rmdir (dir) == 0)
                {
                  char *up = g_path_get_dirname (dir);
                  g_free (dir);
                  dir = up;
                }
            }
        }
      {
        g_autofree char *manifest_path
            = g_build_filename (old_dir, SLIM_WORKDIR_MANIFEST_NAME, NULL);
        g_unlink (manifest_path);
      }
    }
  if (g_rmdir (old_dir) != 0)
    g_warning ("kept '%s': it holds files that are not part of the previous slimflow output",
               old_dir);
}

gboolean
slim_workdir_commit (SlimWorkdir *self, GError **error)
{
  g_autofree char *parent = NULL;
  g_autofree char *old_dir = NULL;
  g_autofree char *note = NULL;
  SlimWorkdirTarget target;

  g_return_val_if_fail (SLIM_IS_WORKDIR (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->staging_dir == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "no staging folder to commit");
      return FALSE;
    }
  if (!slim_workdir_seal_staging (self, error)
      || !slim_workdir_classify_target (self->save_path, &target, error))
    return FALSE;
  if (target == SLIM_WORKDIR_TARGET_PREVIOUS_OUTPUT)
    {
      old_dir = g_strconcat (self->save_path, SLIM_WORKDIR_OLD_INFIX, "XXXXXX", NULL);
      if (g_mkdtemp_full (old_dir, 0755) == NULL)
        return slim_workdir_set_errno_error (error, errno, "create", old_dir);
      if (g_rename (self->save_path, old_dir) != 0)
        {
          int saved_errno = errno;
          g_rmdir (old_dir);
          return slim_workdir_set_errno_error (error, saved_errno, "move aside", self->save_path);
        }
    }
  /* rename(2) replaces an empty directory atomically. */
  if (g_rename (self->staging_dir, self->save_path) != 0)
    {
      int saved_errno = errno;
      if (old_dir != NULL)
        g_rename (old_dir, self->save_path);
      return slim_workdir_set_errno_error (error, saved_errno, "move the output to",
                                           self->save_path);
    }
  g_clear_pointer (&self->staging_dir, g_free);
  note = g_build_filename (self->work_dir, SLIM_WORKDIR_STAGING_NOTE_NAME, NULL);
  g_unlink (note);
  parent = g_path_get_dirname (self->save_path);
  if (old_dir != NULL)
    slim_workdir_delete_previous_output (old_dir);
  return slim_workdir_fsync (parent, TRUE, error);
}

gboolean
slim_workdir_abort (SlimWorkdir *self, GError **error)
{
  g_autofree char *note = NULL;

  g_return_val_if_fail (SLIM_IS_WORKDIR (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->staging_dir == NULL)
    return TRUE;
  if (!slim_workdir_remove_tree (self->staging_dir, error))
    return FALSE;
  g_clear_pointer (&self->staging_dir, g_free);
  note = g_build_filename (self->work_dir, SLIM_WORKDIR_STAGING_NOTE_NAME, NULL);
  g_unlink (note);
  return TRUE;
}

gboolean
slim_workdir_remove_work_area (SlimWorkdir *self, GError **error)
{
  g_autofree char *marker = NULL;

  g_return_val_if_fail (SLIM_IS_WORKDIR (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  marker = g_build_filename (self->work_dir, SLIM_WORKDIR_MARKER_NAME, NULL);
  if (!g_file_test (self->work_dir, G_FILE_TEST_EXISTS))
    return TRUE;
  if (!g_file_test (marker, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "'%s' was not created by slimflow; not removing it", self->work_dir);
      return FALSE;
    }
  return slim_workdir_remove_tree (self->work_dir, error);
}
