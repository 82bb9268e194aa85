/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-npy.c: NumPy .npy reader (untrusted input) and writer.
 *
 * Layout: "\x93NUMPY", major and minor version bytes, a little-endian
 * header length (2 bytes in 1.0, 4 bytes in 2.0/3.0), an ASCII (3.0:
 * UTF-8) Python dict literal {'descr': ..., 'fortran_order': ...,
 * 'shape': (...)} padded with spaces and ending in '\n', then the raw
 * data.  We accept only little-endian (or byte-sized) C-order arrays.
 */
#include "slim-npy.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "slim-error.h"

#define SLIM_NPY_MAGIC "\x93NUMPY"
#define SLIM_NPY_MAGIC_BYTES 6
/* Bound on the header dictionary for versions 2.0/3.0 (numpy itself
 * refuses headers above 10 000 bytes unless told otherwise). */
#define SLIM_NPY_MAX_HEADER_BYTES (1024 * 1024)

typedef struct
{
  const char *descr;
  SlimDType dtype;
} SlimNpyDescr;

static const SlimNpyDescr slim_npy_descrs[] = {
  { "<f4", SLIM_DTYPE_F32 }, { "<f8", SLIM_DTYPE_F64 },  { "<f2", SLIM_DTYPE_F16 },
  { "|i1", SLIM_DTYPE_I8 },  { "<i1", SLIM_DTYPE_I8 },   { "|u1", SLIM_DTYPE_U8 },
  { "<u1", SLIM_DTYPE_U8 },  { "<i2", SLIM_DTYPE_I16 },  { "<i4", SLIM_DTYPE_I32 },
  { "<i8", SLIM_DTYPE_I64 }, { "|b1", SLIM_DTYPE_BOOL },
};

/* ---- header dictionary parser ------------------------------------------ */

typedef struct
{
  const char *p;   /* cursor */
  const char *end; /* one past the dictionary text */
} SlimNpyLexer;

static void
slim_npy_skip_space (SlimNpyLexer *lex)
{
  while (lex->p < lex->end && (*lex->p == ' ' || *lex->p == '\t' || *lex->p == '\n'))
    lex->p++;
}

static gboolean
slim_npy_expect (SlimNpyLexer *lex, char c)
{
  slim_npy_skip_space (lex);
  if (lex->p < lex->end && *lex->p == c)
    {
      lex->p++;
      return TRUE;
    }
  return FALSE;
}

/* A quoted Python string without escapes; returns a new string or NULL. */
static char *
slim_npy_parse_string (SlimNpyLexer *lex)
{
  const char *start;
  char quote;

  slim_npy_skip_space (lex);
  if (lex->p >= lex->end || (*lex->p != '\'' && *lex->p != '"'))
    return NULL;
  quote = *lex->p++;
  start = lex->p;
  while (lex->p < lex->end && *lex->p != quote)
    {
      if (*lex->p == '\\')
        return NULL;
      lex->p++;
    }
  if (lex->p >= lex->end)
    return NULL;
  lex->p++;
  return g_strndup (start, (gsize)(lex->p - 1 - start));
}

static gboolean
slim_npy_parse_bool (SlimNpyLexer *lex, gboolean *out)
{
  slim_npy_skip_space (lex);
  if (lex->end - lex->p >= 4 && strncmp (lex->p, "True", 4) == 0)
    {
      lex->p += 4;
      *out = TRUE;
      return TRUE;
    }
  if (lex->end - lex->p >= 5 && strncmp (lex->p, "False", 5) == 0)
    {
      lex->p += 5;
      *out = FALSE;
      return TRUE;
    }
  return FALSE;
}

/* "(d0, d1, ...)" with an optional trailing comma; each dim a non-negative
 * integer below 2^62. */
static gboolean
slim_npy_parse_shape (SlimNpyLexer *lex,
                      guint *out_n_dims,
                      gint64 *shape /* (SLIM_TENSOR_MAX_DIMS) */)
{
  guint n_dims = 0;

  if (!slim_npy_expect (lex, '('))
    return FALSE;
  for (;;)
    {
      gint64 value = 0;
      gboolean any_digit = FALSE;

      slim_npy_skip_space (lex);
      if (lex->p < lex->end && *lex->p == ')')
        {
          lex->p++;
          break;
        }
      while (lex->p < lex->end && g_ascii_isdigit (*lex->p))
        {
          if (value > (G_GINT64_CONSTANT (1) << 62) / 10)
            return FALSE;
          value = value * 10 + (*lex->p - '0');
          lex->p++;
          any_digit = TRUE;
        }
      if (!any_digit || n_dims >= SLIM_TENSOR_MAX_DIMS)
        return FALSE;
      shape[n_dims++] = value;
      slim_npy_skip_space (lex);
      if (lex->p < lex->end && *lex->p == ',')
        lex->p++;
      else if (lex->p < lex->end && *lex->p == ')')
        continue;
      else
        return FALSE;
    }
  *out_n_dims = n_dims;
  return TRUE;
}

static gboolean
slim_npy_parse_dict (const char *text,
                     gsize n_text,
                     const char *what,
                     SlimDType *out_dtype,
                     guint *out_n_dims,
                     gint64 *shape,
                     GError **error)
{
  SlimNpyLexer lex = { text, text + n_text };
  gboolean have_descr = FALSE, have_order = FALSE, have_shape = FALSE;
  gboolean fortran_order = FALSE;

  if (!slim_npy_expect (&lex, '{'))
    goto bad;
  for (;;)
    {
      g_autofree char *key = NULL;

      if (slim_npy_expect (&lex, '}'))
        break;
      key = slim_npy_parse_string (&lex);
      if (key == NULL || !slim_npy_expect (&lex, ':'))
        goto bad;
      if (strcmp (key, "descr") == 0 && !have_descr)
        {
          g_autofree char *descr = slim_npy_parse_string (&lex);
          gboolean known = FALSE;

          if (descr == NULL)
            goto bad;
          for (gsize i = 0; i < G_N_ELEMENTS (slim_npy_descrs); i++)
            if (strcmp (descr, slim_npy_descrs[i].descr) == 0)
              {
                *out_dtype = slim_npy_descrs[i].dtype;
                known = TRUE;
              }
          if (!known)
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_DTYPE,
                           "%s: unsupported .npy dtype '%s' (little-endian f2/f4/f8, i1/i2/i4/i8, "
                           "u1, b1 only)",
                           what, descr);
              return FALSE;
            }
          have_descr = TRUE;
        }
      else if (strcmp (key, "fortran_order") == 0 && !have_order)
        {
          if (!slim_npy_parse_bool (&lex, &fortran_order))
            goto bad;
          have_order = TRUE;
        }
      else if (strcmp (key, "shape") == 0 && !have_shape)
        {
          if (!slim_npy_parse_shape (&lex, out_n_dims, shape))
            goto bad;
          have_shape = TRUE;
        }
      else
        goto bad;
      if (!slim_npy_expect (&lex, ','))
        {
          if (!slim_npy_expect (&lex, '}'))
            goto bad;
          break;
        }
    }
  slim_npy_skip_space (&lex);
  if (lex.p != lex.end || !have_descr || !have_order || !have_shape)
    goto bad;
  if (fortran_order)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: Fortran-order .npy arrays are not supported", what);
      return FALSE;
    }
  return TRUE;

bad:
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
               "%s: malformed .npy header dictionary (expected {'descr': ..., 'fortran_order': "
               "False, 'shape': (...)})",
               what);
  return FALSE;
}

SlimTensor *
slim_npy_parse (const guint8 *data, gsize n_bytes, const char *what, GError **error)
{
  guint major;
  gsize n_header_bytes, data_offset;
  SlimDType dtype = SLIM_DTYPE_F32;
  guint n_dims = 0;
  gint64 shape[SLIM_TENSOR_MAX_DIMS] = { 0 };
  guint64 n_elements = 1, n_data_bytes = 0;
  g_autoptr (SlimTensor) tensor = NULL;

  g_return_val_if_fail (data != NULL || n_bytes == 0, NULL);
  g_return_val_if_fail (what != NULL, NULL);

  if (n_bytes < SLIM_NPY_MAGIC_BYTES + 4
      || memcmp (data, SLIM_NPY_MAGIC, SLIM_NPY_MAGIC_BYTES) != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "%s: not a .npy file (bad magic)", what);
      return NULL;
    }
  major = data[6];
  if (major == 1)
    {
      n_header_bytes = (gsize)data[8] | ((gsize)data[9] << 8);
      data_offset = 10;
    }
  else if (major == 2 || major == 3)
    {
      if (n_bytes < 12)
        goto truncated;
      n_header_bytes = (gsize)data[8] | ((gsize)data[9] << 8) | ((gsize)data[10] << 16)
                       | ((gsize)data[11] << 24);
      data_offset = 12;
      if (n_header_bytes > SLIM_NPY_MAX_HEADER_BYTES)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                       "%s: .npy header of %" G_GSIZE_FORMAT " bytes exceeds the limit of %d", what,
                       n_header_bytes, SLIM_NPY_MAX_HEADER_BYTES);
          return NULL;
        }
    }
  else
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "%s: unsupported .npy format version %u.%u", what, major, (guint)data[7]);
      return NULL;
    }
  if (n_header_bytes > n_bytes - data_offset)
    goto truncated;
  if (n_header_bytes == 0 || data[data_offset + n_header_bytes - 1] != '\n')
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "%s: .npy header does not end with a newline", what);
      return NULL;
    }
  if (memchr (data + data_offset, '\0', n_header_bytes) != NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "%s: .npy header contains a NUL byte", what);
      return NULL;
    }
  if (!slim_npy_parse_dict ((const char *)data + data_offset, n_header_bytes, what, &dtype, &n_dims,
                            shape, error))
    return NULL;
  data_offset += n_header_bytes;

  for (guint i = 0; i < n_dims; i++)
    {
      if (shape[i] != 0 && n_elements > G_MAXINT64 / (guint64)shape[i])
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                       "%s: .npy shape overflows", what);
          return NULL;
        }
      n_elements *= (guint64)shape[i];
    }
  if (!slim_dtype_n_bytes (dtype, n_elements, &n_data_bytes))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE, "%s: .npy shape overflows",
                   what);
      return NULL;
    }
  if (n_data_bytes != n_bytes - data_offset)
    {
      g_set_error (error, SLIM_FORMAT_ERROR,
                   n_data_bytes > n_bytes - data_offset ? SLIM_FORMAT_ERROR_TRUNCATED
                                                        : SLIM_FORMAT_ERROR_SHAPE,
                   "%s: .npy data is %" G_GSIZE_FORMAT
                   " bytes, the header's shape needs %" G_GUINT64_FORMAT,
                   what, n_bytes - data_offset, n_data_bytes);
      return NULL;
    }

  tensor = slim_tensor_new (what, dtype, n_dims, shape, error);
  if (tensor == NULL)
    return NULL;
  if (n_data_bytes > 0)
    memcpy (slim_tensor_get_data_mut (tensor), data + data_offset, (gsize)n_data_bytes);
  return g_steal_pointer (&tensor);

truncated:
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_TRUNCATED, "%s: truncated .npy header",
               what);
  return NULL;
}

SlimTensor *
slim_npy_read (const char *path, GError **error)
{
  g_autoptr (GMappedFile) file = NULL;
  const guint8 *data;

  g_return_val_if_fail (path != NULL, NULL);

  file = g_mapped_file_new (path, FALSE, error);
  if (file == NULL)
    return NULL;
  data = (const guint8 *)g_mapped_file_get_contents (file);
  return slim_npy_parse (data, g_mapped_file_get_length (file), path, error);
}

static const char *
slim_npy_descr_for (SlimDType dtype)
{
  switch (dtype)
    {
    case SLIM_DTYPE_F32:
      return "<f4";
    case SLIM_DTYPE_F64:
      return "<f8";
    case SLIM_DTYPE_F16:
      return "<f2";
    case SLIM_DTYPE_I8:
      return "|i1";
    case SLIM_DTYPE_U8:
      return "|u1";
    case SLIM_DTYPE_I16:
      return "<i2";
    case SLIM_DTYPE_I32:
      return "<i4";
    case SLIM_DTYPE_I64:
      return "<i8";
    case SLIM_DTYPE_BOOL:
      return "|b1";
    default:
      return NULL;
    }
}

gboolean
slim_npy_write (const char *path, const SlimTensor *tensor, GError **error)
{
  const char *descr;
  g_autoptr (GString) header = NULL;
  g_autofree char *tmp_path = NULL;
  guint n_dims;
  const gint64 *shape;
  gsize n_data_bytes, n_total;
  guint8 prefix[10];
  FILE *stream;
  int fd;
  gboolean ok;

  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (tensor != NULL, FALSE);

  descr = slim_npy_descr_for (slim_tensor_get_dtype (tensor));
  if (descr == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_DTYPE,
                   "%s: dtype %s cannot be written as .npy", path,
                   slim_dtype_get_name (slim_tensor_get_dtype (tensor)));
      return FALSE;
    }
  n_dims = slim_tensor_get_n_dims (tensor);
  shape = slim_tensor_get_shape (tensor);
  header = g_string_new (NULL);
  g_string_append_printf (header, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (guint i = 0; i < n_dims; i++)
    g_string_append_printf (header, "%s%" G_GINT64_FORMAT, i > 0 ? ", " : "", shape[i]);
  g_string_append (header, n_dims == 1 ? ",), }" : "), }");
  /* Pad with spaces so that the data starts on a 64-byte boundary. */
  n_total = 10 + header->len + 1;
  while (n_total % 64 != 0)
    {
      g_string_append_c (header, ' ');
      n_total++;
    }
  g_string_append_c (header, '\n');
  if (header->len > G_MAXUINT16)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER, "%s: .npy header too long",
                   path);
      return FALSE;
    }
  memcpy (prefix, SLIM_NPY_MAGIC, SLIM_NPY_MAGIC_BYTES);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix[8] = (guint8)(header->len & 0xff);
  prefix[9] = (guint8)(header->len >> 8);

  tmp_path = g_strdup_printf ("%s.tmp-XXXXXX", path);
  /* 0666 before the umask, as any other output file. */
  fd = g_mkstemp_full (tmp_path, O_WRONLY, 0666);
  if (fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "%s: cannot create a temporary file: %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  stream = fdopen (fd, "wb");
  if (stream == NULL)
    {
      int saved_errno = errno;
      close (fd);
      g_unlink (tmp_path);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "%s: %s", path,
                   g_strerror (saved_errno));
      return FALSE;
    }
  n_data_bytes = slim_tensor_get_n_bytes (tensor);
  ok = fwrite (prefix, 1, sizeof prefix, stream) == sizeof prefix
       && fwrite (header->str, 1, header->len, stream) == header->len
       && (n_data_bytes == 0
           || fwrite (slim_tensor_get_data (tensor), 1, n_data_bytes, stream) == n_data_bytes);
  ok = (fclose (stream) == 0) && ok;
  if (!ok || g_rename (tmp_path, path) != 0)
    {
      int saved_errno = errno;
      g_unlink (tmp_path);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   "%s: cannot write: %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}
