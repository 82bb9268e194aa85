/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-datadir.c: where the shipped data is (see slim-datadir.h).
 */
#include "slim-datadir.h"

#include <string.h>

char *
slim_datadir_get (void)
{
  const char *env = g_getenv (SLIM_DATADIR_ENV);
  g_autofree char *source = g_build_filename (SLIM_SOURCE_DATADIR, "examples", NULL);

  if (env != NULL && *env != '\0')
    return g_strdup (env);
  if (g_file_test (source, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&source);
  if (g_file_test (SLIM_INSTALL_DATADIR, G_FILE_TEST_IS_DIR))
    return g_strdup (SLIM_INSTALL_DATADIR);
  return NULL;
}

char *
slim_datadir_resolve_dataset (const char *name, const char *calib_dir, GError **error)
{
  g_autoptr (GString) tried = g_string_new (NULL);
  const char *env_dir = g_getenv (SLIM_CALIB_DIR_ENV);
  const char *dirs[2] = { calib_dir, env_dir };
  g_autofree char *datadir = NULL;

  g_return_val_if_fail (name != NULL, NULL);

  if (*name == '\0')
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "the dataset name is empty");
      return NULL;
    }
  if (g_path_is_absolute (name) || g_file_test (name, G_FILE_TEST_EXISTS))
    {
      if (!g_file_test (name, G_FILE_TEST_IS_REGULAR))
        {
          g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                       "dataset '%s': no such file (or not a regular file)", name);
          return NULL;
        }
      return g_strdup (name);
    }
  g_string_append_printf (tried, "'%s'", name);
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *path = NULL;
      if (dirs[i] == NULL || *dirs[i] == '\0')
        continue;
      path = g_build_filename (dirs[i], name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&path);
      g_string_append_printf (tried, ", '%s'", path);
    }
  datadir = slim_datadir_get ();
  if (datadir != NULL)
    {
      g_autofree char *path = g_build_filename (datadir, "lab_calib", name, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&path);
      g_string_append_printf (tried, ", '%s'", path);
    }
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
               "dataset '%s' not found (looked at %s; see --calib_dir and %s)", name, tried->str,
               SLIM_CALIB_DIR_ENV);
  return NULL;
}
