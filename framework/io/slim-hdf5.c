/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hdf5.c: HDF5 lock, error capture and tensor datasets (see slim-hdf5.h).
 */
#include "slim-hdf5.h"

#include <string.h>
#include <gio/gio.h>
#include "slim-error.h"

/* Raw data per chunk: large enough to keep the chunk index small, small
 * enough that reading one sample back never pulls much more than it. */
#define SLIM_HDF5_CHUNK_BYTES (1024 * 1024)
/* Error stack entries copied into a GError message. */
#define SLIM_HDF5_MAX_STACK 8
/* Longest tensor name read back (untrusted files). */
#define SLIM_HDF5_MAX_NAME_BYTES 4096

static GRecMutex slim_hdf5_mutex;

static gboolean
slim_hdf5_needs_lock (void)
{
  static gsize initialized = 0;
  static gboolean library_threadsafe = FALSE;

  if (g_once_init_enter (&initialized))
    {
      hbool_t threadsafe = 0;
      if (H5is_library_threadsafe (&threadsafe) < 0)
        threadsafe = 0;
      library_threadsafe = threadsafe ? TRUE : FALSE;
      g_once_init_leave (&initialized, 1);
    }
  return !library_threadsafe;
}

void
slim_hdf5_lock (void)
{
  if (slim_hdf5_needs_lock ())
    g_rec_mutex_lock (&slim_hdf5_mutex);
  /* Per thread in thread-safe builds, global otherwise: cheap either way. */
  H5Eset_auto2 (H5E_DEFAULT, NULL, NULL);
}

void
slim_hdf5_unlock (void)
{
  if (slim_hdf5_needs_lock ())
    g_rec_mutex_unlock (&slim_hdf5_mutex);
}

static herr_t
slim_hdf5_walk_cb (unsigned n, const H5E_error2_t *entry, void *data)
{
  GString *text = data;
  char minor[128]; /* (128) NUL-terminated message */

  if (n >= SLIM_HDF5_MAX_STACK)
    return 0;
  if (text->len > 0)
    g_string_append (text, "; ");
  g_string_append_printf (text, "%s: %s", entry->func_name ? entry->func_name : "?",
                          entry->desc ? entry->desc : "");
  if (H5Eget_msg (entry->min_num, NULL, minor, sizeof minor) > 0)
    g_string_append_printf (text, " (%s)", minor);
  return 0;
}

void
slim_hdf5_set_error (GError **error, GQuark domain, gint code, const char *what, ...)
{
  g_autoptr (GString) stack = g_string_new (NULL);
  g_autofree char *prefix = NULL;
  va_list args;

  va_start (args, what);
  prefix = g_strdup_vprintf (what, args);
  va_end (args);
  H5Ewalk2 (H5E_DEFAULT, H5E_WALK_DOWNWARD, slim_hdf5_walk_cb, stack);
  H5Eclear2 (H5E_DEFAULT);
  if (stack->len > 0)
    g_set_error (error, domain, code, "%s: HDF5: %s", prefix, stack->str);
  else
    g_set_error (error, domain, code, "%s", prefix);
}

/* ---- files ----------------------------------------------------------- */

static hid_t
slim_hdf5_file_access_plist (void)
{
  hid_t fapl = H5Pcreate (H5P_FILE_ACCESS);

  if (fapl < 0)
    return -1;
  if (H5Pset_fclose_degree (fapl, H5F_CLOSE_STRONG) < 0
      || H5Pset_file_locking (fapl, TRUE, TRUE) < 0)
    {
      H5Pclose (fapl);
      return -1;
    }
  return fapl;
}

hid_t
slim_hdf5_create_file (const char *path, GError **error)
{
  hid_t fapl = slim_hdf5_file_access_plist ();
  hid_t fcpl = H5Pcreate (H5P_FILE_CREATE);
  hid_t file = -1;

  /* Track space freed by deleted datasets and reuse it for new ones. */
  if (fapl >= 0 && fcpl >= 0
      && H5Pset_file_space_strategy (fcpl, H5F_FSPACE_STRATEGY_FSM_AGGR, FALSE, 1) >= 0)
    file = H5Fcreate (path, H5F_ACC_TRUNC, fcpl, fapl);
  if (file < 0)
    slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create the file");
  if (fcpl >= 0)
    H5Pclose (fcpl);
  if (fapl >= 0)
    H5Pclose (fapl);
  return file;
}

hid_t
slim_hdf5_open_file (const char *path, gboolean writable, GError **error)
{
  hid_t fapl;
  hid_t file = -1;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no such file");
      return -1;
    }
  fapl = slim_hdf5_file_access_plist ();
  if (fapl >= 0)
    file = H5Fopen (path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  if (file < 0)
    slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                         "not a readable HDF5 file");
  if (fapl >= 0)
    H5Pclose (fapl);
  return file;
}

/* ---- names ----------------------------------------------------------- */

static gboolean
slim_hdf5_name_char_ok (char c, gsize position)
{
  if (g_ascii_isalnum (c) || c == '_' || c == '-')
    return TRUE;
  return c == '.' && position > 0;
}

char *
slim_hdf5_escape_name (const char *key)
{
  GString *out = g_string_new (NULL);

  for (gsize i = 0; key[i] != '\0'; i++)
    {
      if (slim_hdf5_name_char_ok (key[i], i))
        g_string_append_c (out, key[i]);
      else
        g_string_append_printf (out, "%%%02X", (guint)(guchar)key[i]);
    }
  return g_string_free (out, FALSE);
}

char *
slim_hdf5_unescape_name (const char *name)
{
  g_autoptr (GString) out = g_string_new (NULL);

  for (gsize i = 0; name[i] != '\0'; i++)
    {
      if (name[i] == '%')
        {
          int hi = g_ascii_xdigit_value (name[i + 1]);
          int lo = hi >= 0 ? g_ascii_xdigit_value (name[i + 2]) : -1;
          if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return NULL;
          g_string_append_c (out, (char)(hi * 16 + lo));
          i += 2;
        }
      else if (slim_hdf5_name_char_ok (name[i], i))
        g_string_append_c (out, name[i]);
      else
        return NULL;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* ---- dtypes and storage shapes ----------------------------------------- */

/* The type in the file (little-endian, fixed) and in memory (native). */
static gboolean
slim_hdf5_dtype_types (SlimDType dtype, hid_t *out_file_type, hid_t *out_mem_type)
{
  switch (dtype)
    {
    case SLIM_DTYPE_F32:
      *out_file_type = H5T_IEEE_F32LE;
      *out_mem_type = H5T_NATIVE_FLOAT;
      return TRUE;
    case SLIM_DTYPE_F64:
      *out_file_type = H5T_IEEE_F64LE;
      *out_mem_type = H5T_NATIVE_DOUBLE;
      return TRUE;
    case SLIM_DTYPE_F16:
    case SLIM_DTYPE_BF16:
      *out_file_type = H5T_STD_U16LE;
      *out_mem_type = H5T_NATIVE_UINT16;
      return TRUE;
    case SLIM_DTYPE_I8:
      *out_file_type = H5T_STD_I8LE;
      *out_mem_type = H5T_NATIVE_INT8;
      return TRUE;
    case SLIM_DTYPE_U8:
    case SLIM_DTYPE_BOOL:
    case SLIM_DTYPE_F8_E4M3FN:
    case SLIM_DTYPE_F8_E5M2:
    case SLIM_DTYPE_I4X2:
    case SLIM_DTYPE_U4X2:
    case SLIM_DTYPE_F4X2_E2M1:
      *out_file_type = H5T_STD_U8LE;
      *out_mem_type = H5T_NATIVE_UINT8;
      return TRUE;
    case SLIM_DTYPE_I16:
      *out_file_type = H5T_STD_I16LE;
      *out_mem_type = H5T_NATIVE_INT16;
      return TRUE;
    case SLIM_DTYPE_I32:
      *out_file_type = H5T_STD_I32LE;
      *out_mem_type = H5T_NATIVE_INT32;
      return TRUE;
    case SLIM_DTYPE_I64:
      *out_file_type = H5T_STD_I64LE;
      *out_mem_type = H5T_NATIVE_INT64;
      return TRUE;
    case SLIM_N_DTYPES:
    default:
      return FALSE;
    }
}

/* Dataset dims for a tensor: its shape, except packed dtypes (a 1-D run of
 * n_bytes bytes) and scalars (one element).  Returns the rank. */
static int
slim_hdf5_storage_dims (SlimDType dtype,
                        guint n_dims,
                        const gint64 *shape,
                        guint64 n_bytes,
                        hsize_t *dims /* (SLIM_TENSOR_MAX_DIMS) */)
{
  const SlimDTypeInfo *info = slim_dtype_get_info (dtype);

  if (info != NULL && info->is_packed)
    {
      dims[0] = n_bytes;
      return 1;
    }
  if (n_dims == 0)
    {
      dims[0] = 1;
      return 1;
    }
  for (guint i = 0; i < n_dims; i++)
    dims[i] = (hsize_t)shape[i];
  return (int)n_dims;
}

/* Chunk dims: whole trailing dimensions while they fit SLIM_HDF5_CHUNK_BYTES. */
static void
slim_hdf5_chunk_dims (int rank, const hsize_t *dims, gsize element_bytes, hsize_t *chunk)
{
  hsize_t remaining = MAX (1, SLIM_HDF5_CHUNK_BYTES / MAX (element_bytes, 1));

  for (int d = rank - 1; d >= 0; d--)
    {
      hsize_t c = MIN (dims[d], remaining);
      if (c < 1)
        c = 1;
      chunk[d] = c;
      remaining /= c;
    }
}

/* ---- attributes ------------------------------------------------------ */

static gboolean
slim_hdf5_delete_attr_if_exists (hid_t obj, const char *attr, GError **error)
{
  htri_t exists = H5Aexists (obj, attr);

  if (exists < 0 || (exists > 0 && H5Adelete (obj, attr) < 0))
    {
      slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot replace attribute '%s'",
                           attr);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_hdf5_write_attr (hid_t obj,
                      const char *attr,
                      hid_t file_type,
                      hid_t mem_type,
                      int rank,
                      const hsize_t *dims,
                      const void *data,
                      GError **error)
{
  hid_t space = -1, handle = -1;
  gboolean ok = FALSE;

  if (!slim_hdf5_delete_attr_if_exists (obj, attr, error))
    return FALSE;
  space = rank == 0 ? H5Screate (H5S_SCALAR) : H5Screate_simple (rank, dims, NULL);
  if (space >= 0)
    handle = H5Acreate2 (obj, attr, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (handle >= 0 && H5Awrite (handle, mem_type, data) >= 0)
    ok = TRUE;
  else
    slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot write attribute '%s'", attr);
  if (handle >= 0)
    H5Aclose (handle);
  if (space >= 0)
    H5Sclose (space);
  return ok;
}

gboolean
slim_hdf5_write_attr_int64 (hid_t obj, const char *attr, gint64 value, GError **error)
{
  return slim_hdf5_write_attr (obj, attr, H5T_STD_I64LE, H5T_NATIVE_INT64, 0, NULL, &value, error);
}

gboolean
slim_hdf5_write_attr_string (hid_t obj, const char *attr, const char *value, GError **error)
{
  gsize length_bytes = strlen (value);
  hid_t type = H5Tcopy (H5T_C_S1);
  gboolean ok;

  /* Fixed length, null padded; HDF5 refuses size 0, so "" is one NUL. */
  if (type < 0 || H5Tset_size (type, MAX (length_bytes, 1)) < 0
      || H5Tset_strpad (type, H5T_STR_NULLPAD) < 0)
    {
      slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot make a string type");
      if (type >= 0)
        H5Tclose (type);
      return FALSE;
    }
  if (length_bytes == 0)
    value = "\0";
  ok = slim_hdf5_write_attr (obj, attr, type, type, 0, NULL, value, error);
  H5Tclose (type);
  return ok;
}

/* Opens attribute attr and checks it holds exactly n_points values of
 * type class klass.  Returns the attribute id or -1 with error set. */
static hid_t
slim_hdf5_open_attr (
    hid_t obj, const char *attr, H5T_class_t klass, hssize_t n_points, GError **error)
{
  hid_t handle, space, type;
  htri_t exists = H5Aexists (obj, attr);
  gboolean ok;

  if (exists <= 0)
    {
      if (exists < 0)
        slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                             "cannot look up attribute '%s'", attr);
      else
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER, "attribute '%s' missing",
                     attr);
      return -1;
    }
  handle = H5Aopen (obj, attr, H5P_DEFAULT);
  if (handle < 0)
    {
      slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                           "cannot open attribute '%s'", attr);
      return -1;
    }
  space = H5Aget_space (handle);
  type = H5Aget_type (handle);
  ok = space >= 0 && type >= 0 && H5Sget_simple_extent_npoints (space) == n_points
       && H5Tget_class (type) == klass;
  if (ok && klass == H5T_STRING)
    ok = H5Tis_variable_str (type) == 0;
  if (type >= 0)
    H5Tclose (type);
  if (space >= 0)
    H5Sclose (space);
  H5Eclear2 (H5E_DEFAULT);
  if (!ok)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "attribute '%s' has the wrong type or size", attr);
      H5Aclose (handle);
      return -1;
    }
  return handle;
}

gboolean
slim_hdf5_read_attr_int64 (hid_t obj, const char *attr, gint64 *out_value, GError **error)
{
  hid_t handle = slim_hdf5_open_attr (obj, attr, H5T_INTEGER, 1, error);
  gboolean ok;

  if (handle < 0)
    return FALSE;
  ok = H5Aread (handle, H5T_NATIVE_INT64, out_value) >= 0;
  if (!ok)
    slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                         "cannot read attribute '%s'", attr);
  H5Aclose (handle);
  return ok;
}

char *
slim_hdf5_read_attr_string (hid_t obj, const char *attr, gsize max_bytes, GError **error)
{
  hid_t handle = slim_hdf5_open_attr (obj, attr, H5T_STRING, 1, error);
  hid_t file_type = -1, mem_type = -1;
  g_autofree char *buffer = NULL;
  gsize size_bytes;
  gboolean ok = FALSE;

  if (handle < 0)
    return NULL;
  file_type = H5Aget_type (handle);
  size_bytes = file_type >= 0 ? H5Tget_size (file_type) : 0;
  if (size_bytes == 0 || size_bytes > max_bytes)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "attribute '%s': string of %" G_GSIZE_FORMAT " bytes (limit %" G_GSIZE_FORMAT
                   ")",
                   attr, size_bytes, max_bytes);
      goto out;
    }
  buffer = g_malloc0 (size_bytes + 1); /* (size_bytes + 1) bytes, NUL-terminated */
  mem_type = H5Tcopy (H5T_C_S1);
  if (mem_type < 0 || H5Tset_size (mem_type, size_bytes) < 0
      || H5Tset_strpad (mem_type, H5T_STR_NULLPAD) < 0 || H5Aread (handle, mem_type, buffer) < 0)
    {
      slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                           "cannot read attribute '%s'", attr);
      goto out;
    }
  if (!g_utf8_validate (buffer, -1, NULL))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "attribute '%s' is not UTF-8", attr);
      goto out;
    }
  ok = TRUE;
out:
  if (mem_type >= 0)
    H5Tclose (mem_type);
  if (file_type >= 0)
    H5Tclose (file_type);
  H5Aclose (handle);
  return ok ? g_steal_pointer (&buffer) : NULL;
}

/* ---- tensors ------------------------------------------------------------ */

typedef struct
{
  SlimDType dtype;
  guint n_dims;
  gint64 shape[SLIM_TENSOR_MAX_DIMS]; /* (n_dims) in elements */
  guint64 n_bytes;
  hid_t file_type; /* not owned (predefined) */
  hid_t mem_type;  /* not owned (predefined) */
} SlimHdf5Header;

/* Validates a tensor dataset's attributes, dataspace and type, before
 * anything is allocated from them. */
static gboolean
slim_hdf5_read_header (hid_t dset, const char *name, SlimHdf5Header *header, GError **error)
{
  g_autofree char *dtype_name = NULL;
  gint64 n_dims = 0;
  hsize_t expected[SLIM_TENSOR_MAX_DIMS]; /* (rank) dataset dims the attributes imply */
  hsize_t dims[SLIM_TENSOR_MAX_DIMS];     /* (rank) dataset dims in the file */
  hid_t attr, space, type;
  guint64 n_elements = 1;
  int rank;
  gboolean ok;

  memset (header, 0, sizeof *header);
  dtype_name = slim_hdf5_read_attr_string (dset, "slim_dtype", 32, error);
  if (dtype_name == NULL)
    return FALSE;
  if (!slim_dtype_from_name (dtype_name, &header->dtype)
      || !slim_hdf5_dtype_types (header->dtype, &header->file_type, &header->mem_type))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_DTYPE, "'%s': unknown dtype '%s'",
                   name, dtype_name);
      return FALSE;
    }
  if (!slim_hdf5_read_attr_int64 (dset, "slim_n_dims", &n_dims, error))
    return FALSE;
  if (n_dims < 0 || n_dims > SLIM_TENSOR_MAX_DIMS)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "'%s': %" G_GINT64_FORMAT " dimensions", name, n_dims);
      return FALSE;
    }
  header->n_dims = (guint)n_dims;
  attr = slim_hdf5_open_attr (dset, "slim_shape", H5T_INTEGER, MAX (n_dims, 1), error);
  if (attr < 0)
    return FALSE;
  {
    gint64 shape_buffer[SLIM_TENSOR_MAX_DIMS] = { 0 }; /* (max (n_dims, 1)) */
    ok = H5Aread (attr, H5T_NATIVE_INT64, shape_buffer) >= 0;
    if (!ok)
      slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                           "'%s': cannot read the shape", name);
    memcpy (header->shape, shape_buffer, sizeof header->shape);
  }
  H5Aclose (attr);
  if (!ok)
    return FALSE;
  for (guint i = 0; i < header->n_dims; i++)
    {
      if (header->shape[i] < 0
          || (header->shape[i] > 0 && n_elements > G_MAXINT64 / (guint64)header->shape[i]))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE, "'%s': invalid shape",
                       name);
          return FALSE;
        }
      n_elements *= (guint64)header->shape[i];
    }
  if (!slim_dtype_n_bytes (header->dtype, n_elements, &header->n_bytes))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "'%s': invalid size for dtype %s", name, dtype_name);
      return FALSE;
    }

  rank = slim_hdf5_storage_dims (header->dtype, header->n_dims, header->shape, header->n_bytes,
                                 expected);
  space = H5Dget_space (dset);
  ok = space >= 0 && H5Sget_simple_extent_ndims (space) == rank
       && H5Sget_simple_extent_dims (space, dims, NULL) == rank;
  for (int i = 0; ok && i < rank; i++)
    ok = dims[i] == expected[i];
  if (space >= 0)
    H5Sclose (space);
  type = H5Dget_type (dset);
  if (ok)
    ok = type >= 0 && H5Tequal (type, header->file_type) > 0;
  if (type >= 0)
    H5Tclose (type);
  H5Eclear2 (H5E_DEFAULT);
  if (!ok)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "'%s': dataset shape or type does not match its attributes", name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_hdf5_write_data (
    hid_t dset, hid_t mem_type, const SlimTensor *tensor, const char *name, GError **error)
{
  if (slim_tensor_get_n_bytes (tensor) == 0)
    return TRUE;
  if (H5Dwrite (dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, slim_tensor_get_data (tensor)) < 0)
    {
      slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot write '%s'", name);
      return FALSE;
    }
  return TRUE;
}

gboolean
slim_hdf5_write_tensor (hid_t loc, const char *name, const SlimTensor *tensor, GError **error)
{
  SlimDType dtype = slim_tensor_get_dtype (tensor);
  guint n_dims = slim_tensor_get_n_dims (tensor);
  const gint64 *shape = slim_tensor_get_shape (tensor);
  guint64 n_bytes = slim_tensor_get_n_bytes (tensor);
  hsize_t dims[SLIM_TENSOR_MAX_DIMS];              /* (rank) dataset dims */
  hsize_t chunk[SLIM_TENSOR_MAX_DIMS];             /* (rank) chunk dims */
  hsize_t shape_dims[1];                           /* (1) dims of the slim_shape attribute */
  gint64 shape_attr[SLIM_TENSOR_MAX_DIMS] = { 0 }; /* (max (n_dims, 1)) */
  hid_t file_type, mem_type, space = -1, dcpl = -1, dset = -1;
  gboolean ok = FALSE;
  int rank;

  if (!slim_hdf5_dtype_types (dtype, &file_type, &mem_type))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_DTYPE,
                   "'%s': dtype %s cannot be stored", name, slim_dtype_get_name (dtype));
      return FALSE;
    }
  rank = slim_hdf5_storage_dims (dtype, n_dims, shape, n_bytes, dims);
  space = H5Screate_simple (rank, dims, NULL);
  dcpl = H5Pcreate (H5P_DATASET_CREATE);
  if (space < 0 || dcpl < 0)
    {
      slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot describe '%s'", name);
      goto out;
    }
  if (n_bytes > 0)
    {
      /* Chunked so each chunk carries a Fletcher-32 checksum. */
      slim_hdf5_chunk_dims (rank, dims, H5Tget_size (file_type), chunk);
      if (H5Pset_chunk (dcpl, rank, chunk) < 0 || H5Pset_fletcher32 (dcpl) < 0)
        {
          slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot set chunking of '%s'",
                               name);
          goto out;
        }
    }
  dset = H5Dcreate2 (loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset < 0)
    {
      slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot create dataset '%s'",
                           name);
      goto out;
    }
  for (guint i = 0; i < n_dims; i++)
    shape_attr[i] = shape[i];
  shape_dims[0] = MAX (n_dims, 1);
  ok = slim_hdf5_write_data (dset, mem_type, tensor, name, error)
       && slim_hdf5_write_attr_string (dset, "slim_dtype", slim_dtype_get_name (dtype), error)
       && (slim_tensor_get_name (tensor) == NULL
           || slim_hdf5_write_attr_string (dset, "slim_name", slim_tensor_get_name (tensor), error))
       && slim_hdf5_write_attr_int64 (dset, "slim_n_dims", n_dims, error)
       && slim_hdf5_write_attr (dset, "slim_shape", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, shape_dims,
                                shape_attr, error);
out:
  if (dset >= 0)
    H5Dclose (dset);
  if (!ok && dset >= 0)
    H5Ldelete (loc, name, H5P_DEFAULT); /* leave no half-written dataset */
  if (dcpl >= 0)
    H5Pclose (dcpl);
  if (space >= 0)
    H5Sclose (space);
  H5Eclear2 (H5E_DEFAULT);
  return ok;
}

gboolean
slim_hdf5_overwrite_tensor (
    hid_t loc, const char *name, const SlimTensor *tensor, gboolean *out_done, GError **error)
{
  SlimHdf5Header header;
  g_autoptr (GError) local_error = NULL;
  hid_t dset;
  gboolean same, ok;

  *out_done = FALSE;
  if (H5Lexists (loc, name, H5P_DEFAULT) <= 0)
    {
      H5Eclear2 (H5E_DEFAULT);
      return TRUE;
    }
  dset = H5Dopen2 (loc, name, H5P_DEFAULT);
  if (dset < 0)
    {
      H5Eclear2 (H5E_DEFAULT);
      return TRUE; /* not a dataset we can reuse; the caller replaces it */
    }
  same = slim_hdf5_read_header (dset, name, &header, &local_error)
         && header.dtype == slim_tensor_get_dtype (tensor)
         && header.n_dims == slim_tensor_get_n_dims (tensor)
         && memcmp (header.shape, slim_tensor_get_shape (tensor), header.n_dims * sizeof (gint64))
                == 0
         && header.n_bytes > 0;
  if (!same)
    {
      H5Dclose (dset);
      return TRUE;
    }
  ok = slim_hdf5_write_data (dset, header.mem_type, tensor, name, error);
  if (ok && slim_tensor_get_name (tensor) != NULL)
    ok = slim_hdf5_write_attr_string (dset, "slim_name", slim_tensor_get_name (tensor), error);
  else if (ok)
    ok = slim_hdf5_delete_attr_if_exists (dset, "slim_name", error);
  H5Dclose (dset);
  *out_done = ok;
  return ok;
}

SlimTensor *
slim_hdf5_read_tensor (hid_t loc, const char *name, const char *tensor_name, GError **error)
{
  SlimHdf5Header header;
  g_autoptr (SlimTensor) tensor = NULL;
  g_autofree char *stored_name = NULL;
  hid_t dset, file;
  hsize_t storage_bytes;
  hsize_t file_bytes = 0;

  dset = H5Dopen2 (loc, name, H5P_DEFAULT);
  if (dset < 0)
    {
      slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                           "cannot open dataset '%s'", name);
      return NULL;
    }
  if (!slim_hdf5_read_header (dset, name, &header, error))
    goto fail;

  /* The declared size must be backed by data in the file: a forged shape
   * over unallocated chunks must not turn into a huge allocation. */
  storage_bytes = H5Dget_storage_size (dset);
  file = H5Iget_file_id (dset);
  if (file >= 0)
    {
      if (H5Fget_filesize (file, &file_bytes) < 0)
        file_bytes = 0;
      H5Fclose (file);
    }
  H5Eclear2 (H5E_DEFAULT);
  if (header.n_bytes > 0 && (storage_bytes < header.n_bytes || file_bytes < header.n_bytes))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_TRUNCATED,
                   "'%s': %" G_GUINT64_FORMAT " bytes declared but only %" G_GUINT64_FORMAT
                   " stored (file of %" G_GUINT64_FORMAT " bytes)",
                   name, header.n_bytes, (guint64)storage_bytes, (guint64)file_bytes);
      goto fail;
    }
  if (tensor_name == NULL && H5Aexists (dset, "slim_name") > 0)
    {
      stored_name = slim_hdf5_read_attr_string (dset, "slim_name", SLIM_HDF5_MAX_NAME_BYTES, error);
      if (stored_name == NULL)
        goto fail;
    }
  H5Eclear2 (H5E_DEFAULT);
  tensor = slim_tensor_new (tensor_name != NULL ? tensor_name : stored_name, header.dtype,
                            header.n_dims, header.shape, error);
  if (tensor == NULL)
    goto fail;
  if (header.n_bytes > 0
      && H5Dread (dset, header.mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                  slim_tensor_get_data_mut (tensor))
             < 0)
    {
      slim_hdf5_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                           "cannot read '%s' (corrupt data?)", name);
      goto fail;
    }
  H5Dclose (dset);
  return g_steal_pointer (&tensor);

fail:
  H5Dclose (dset);
  H5Eclear2 (H5E_DEFAULT);
  return NULL;
}
