/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-files.c: copying a model folder's auxiliary files (see
 * slim-model-files.h).
 */
#include "slim-model-files.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>

static gboolean
slim_model_files_wanted (const char *name, const char *const *suffixes)
{
  gboolean wanted = FALSE;

  for (guint k = 0; suffixes[k] != NULL; k++)
    wanted = wanted || g_str_has_suffix (name, suffixes[k]);
  return wanted && !g_str_has_suffix (name, "index.json")
         && !g_str_has_prefix (name, "quant_model_description");
}

gboolean
slim_model_files_copy (const char *model_dir,
                       const char *out_dir,
                       const char *const *suffixes,
                       GError **error)
{
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_return_val_if_fail (model_dir != NULL && out_dir != NULL && suffixes != NULL, FALSE);

  dir = g_dir_open (model_dir, 0, error);
  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    if (slim_model_files_wanted (name, suffixes))
      g_ptr_array_add (names, g_strdup (name));
  /* sorted by name for a reproducible order */
  g_ptr_array_sort (names, (GCompareFunc)g_strcmp0);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *src_path = g_build_filename (model_dir, g_ptr_array_index (names, i), NULL);
      g_autofree char *dst_path = g_build_filename (out_dir, g_ptr_array_index (names, i), NULL);
      g_autoptr (GFile) src = NULL;
      g_autoptr (GFile) dst = NULL;

      if (!g_file_test (src_path, G_FILE_TEST_IS_REGULAR))
        continue;
      src = g_file_new_for_path (src_path);
      dst = g_file_new_for_path (dst_path);
      if (!g_file_copy (src, dst, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error))
        return FALSE;
      if (g_chmod (dst_path, 0600) != 0)
        {
          int saved_errno = errno;
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       "cannot chmod %s: %s", dst_path, g_strerror (saved_errno));
          return FALSE;
        }
    }
  return TRUE;
}
