/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-text.c: slim_text_read_file (see slim-text.h).
 */
#include "slim-text.h"

#include "slim-error.h"

#include <gio/gio.h>
#include <string.h>

static gboolean
slim_text_check_size (const char *path, guint64 n_bytes, gsize max_bytes, GError **error)
{
  if (n_bytes <= max_bytes)
    return TRUE;
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "%s: file too large (more than %" G_GSIZE_FORMAT " bytes)", path, max_bytes);
  return FALSE;
}

/* Drops the CR of every CRLF pair of text[0 .. n_bytes) in place (a lone
 * CR stays) and NUL-terminates; returns the new length in bytes. */
static gsize
slim_text_crlf_to_lf (char *text, gsize n_bytes)
{
  gsize n_out = 0;
  for (gsize i = 0; i < n_bytes; i++)
    if (!(text[i] == '\r' && i + 1 < n_bytes && text[i + 1] == '\n'))
      text[n_out++] = text[i];
  text[n_out] = '\0';
  return n_out;
}

/**
 * slim_text_read_file:
 * @path: the text file
 * @max_bytes: largest file accepted, in bytes (callers use
 *   %SLIM_TEXT_DEFAULT_MAX_BYTES)
 * @error: return location for a #GError
 *
 * Reads @path whole and turns every CRLF into LF (a lone CR is kept).  The
 * size is checked before anything is allocated for the contents, and again
 * after reading (the file may have grown).  Fails with
 * %SLIM_FORMAT_ERROR_INVALID when the file is larger than @max_bytes,
 * contains a NUL byte (not a text file) or is empty once read, and with a
 * %G_FILE_ERROR when it cannot be read.  The bytes are not checked for
 * UTF-8 here.
 *
 * Returns: (transfer full) (nullable): the NUL-terminated text, or %NULL
 *   on error; free with g_free()
 */
char *
slim_text_read_file (const char *path, gsize max_bytes, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInfo) info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE,
                                                  G_FILE_QUERY_INFO_NONE, NULL, NULL);
  /* Without the info (a missing file), g_file_get_contents reports why. */
  if (info != NULL
      && !slim_text_check_size (path, (guint64)MAX (g_file_info_get_size (info), 0), max_bytes,
                                error))
    return NULL;
  g_autofree char *text = NULL;
  gsize n_bytes = 0;
  if (!g_file_get_contents (path, &text, &n_bytes, error))
    return NULL;
  if (!slim_text_check_size (path, n_bytes, max_bytes, error))
    return NULL;
  if (memchr (text, '\0', n_bytes) != NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: contains NUL bytes (not a text file)", path);
      return NULL;
    }
  if (slim_text_crlf_to_lf (text, n_bytes) == 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: the text is empty",
                   path);
      return NULL;
    }
  return g_steal_pointer (&text);
}
