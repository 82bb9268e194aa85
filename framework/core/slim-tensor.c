/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tensor.c: the refcounted, copy-on-write n-dimensional array.
 *
 * A tensor points into a storage block shared by reference count:
 * - owned storage: 64-byte-aligned heap memory that the storage frees;
 * - external storage: a read-only window of a GBytes (typically a
 *   memory-mapped safetensors file) kept alive by a reference on it.
 * slim_tensor_reshape() shares the storage of its input, so a tensor is
 * writable only when both the tensor and its storage have one reference and
 * the storage is owned.
 */
#include "slim-tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "slim-error.h"

/* Larger tensors are rejected as invalid shapes: no real model has them,
 * and a corrupt shape must not become an attempt to allocate exabytes. */
#define SLIM_TENSOR_MAX_BYTES (G_GUINT64_CONSTANT (1) << 40)

typedef struct
{
  gint ref_count;
  guint8 *data;          /* (n_bytes) owned (aligned heap) or inside owner */
  gsize n_bytes;         /* bytes of the tensor data (the heap block is at least 1) */
  GBytes *owner;         /* NULL for owned storage */
  gboolean glib_aligned; /* owned block from g_aligned_alloc0 rather than posix_memalign */
} SlimTensorStorage;

struct _SlimTensor
{
  gint ref_count;
  char *name;
  SlimDType dtype;
  guint n_dims;
  gint64 shape[SLIM_TENSOR_MAX_DIMS]; /* (n_dims) in elements, the rest 0 */
  gint64 n_elements;
  gsize n_bytes;
  SlimTensorStorage *storage;
};

G_DEFINE_BOXED_TYPE (SlimTensor, slim_tensor, slim_tensor_ref, slim_tensor_unref)

/* ---- storage -------------------------------------------------------------- */

static SlimTensorStorage *
storage_new_owned (gsize n_bytes, GError **error)
{
  SlimTensorStorage *storage;
  void *data = NULL;
  gsize alloc_bytes = n_bytes > 0 ? n_bytes : 1;

  /* posix_memalign rather than g_aligned_alloc: a failure is an error for
   * the caller, never an abort (sizes can come from untrusted files). */
  if (alloc_bytes > G_MAXSIZE - SLIM_TENSOR_ALIGNMENT
      || posix_memalign (&data, SLIM_TENSOR_ALIGNMENT, alloc_bytes) != 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                   "cannot allocate %" G_GSIZE_FORMAT " bytes for a tensor", n_bytes);
      return NULL;
    }
  memset (data, 0, alloc_bytes);
  storage = g_new0 (SlimTensorStorage, 1);
  storage->ref_count = 1;
  storage->data = data;
  storage->n_bytes = n_bytes;
  return storage;
}

static SlimTensorStorage *
storage_new_external (GBytes *owner, gsize offset_bytes, gsize n_bytes)
{
  SlimTensorStorage *storage = g_new0 (SlimTensorStorage, 1);
  gsize owner_bytes = 0;
  const guint8 *base = g_bytes_get_data (owner, &owner_bytes);

  storage->ref_count = 1;
  storage->owner = g_bytes_ref (owner);
  storage->data = (guint8 *)base + offset_bytes;
  storage->n_bytes = n_bytes;
  return storage;
}

static SlimTensorStorage *
storage_ref (SlimTensorStorage *storage)
{
  g_atomic_int_inc (&storage->ref_count);
  return storage;
}

static void
storage_unref (SlimTensorStorage *storage)
{
  if (!g_atomic_int_dec_and_test (&storage->ref_count))
    return;
  if (storage->owner != NULL)
    g_bytes_unref (storage->owner);
  else if (storage->glib_aligned)
    g_aligned_free (storage->data);
  else
    free (storage->data);
  g_free (storage);
}

/* ---- shapes ------------------------------------------------------------------ */

/* Validates a shape and computes its element and byte counts. */
static gboolean
shape_validate (SlimDType dtype,
                guint n_dims,
                const gint64 *shape,
                gint64 *out_n_elements,
                gsize *out_n_bytes,
                GError **error)
{
  guint64 n_elements = 1;
  guint64 n_bytes = 0;

  if (slim_dtype_get_info (dtype) == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_DTYPE, "invalid dtype %d",
                   (int)dtype);
      return FALSE;
    }
  if (n_dims > SLIM_TENSOR_MAX_DIMS)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%u dimensions (at most %d are supported)", n_dims, SLIM_TENSOR_MAX_DIMS);
      return FALSE;
    }
  if (n_dims > 0 && shape == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE, "no shape given");
      return FALSE;
    }
  for (guint i = 0; i < n_dims; i++)
    {
      if (shape[i] < 0)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                       "dimension %u is negative (%" G_GINT64_FORMAT ")", i, shape[i]);
          return FALSE;
        }
      if (!g_uint64_checked_mul (&n_elements, n_elements, (guint64)shape[i]))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                       "the element count of the shape overflows");
          return FALSE;
        }
    }
  if (n_elements > (guint64)G_MAXINT64)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "the element count of the shape overflows");
      return FALSE;
    }
  if (!slim_dtype_n_bytes (dtype, n_elements, &n_bytes) || n_bytes > SLIM_TENSOR_MAX_BYTES)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "the byte size of %" G_GUINT64_FORMAT
                   " %s elements overflows, exceeds 1 TiB or is not whole",
                   n_elements, slim_dtype_get_name (dtype));
      return FALSE;
    }
  *out_n_elements = (gint64)n_elements;
  *out_n_bytes = (gsize)n_bytes;
  return TRUE;
}

static SlimTensor *
tensor_alloc (const char *name,
              SlimDType dtype,
              guint n_dims,
              const gint64 *shape,
              gint64 n_elements,
              gsize n_bytes,
              SlimTensorStorage *storage)
{
  SlimTensor *tensor = g_new0 (SlimTensor, 1);

  tensor->ref_count = 1;
  tensor->name = g_strdup (name != NULL ? name : "");
  tensor->dtype = dtype;
  tensor->n_dims = n_dims;
  for (guint i = 0; i < n_dims; i++)
    tensor->shape[i] = shape[i];
  tensor->n_elements = n_elements;
  tensor->n_bytes = n_bytes;
  tensor->storage = storage;
  return tensor;
}

/* ---- construction ---------------------------------------------------------------- */

/**
 * slim_tensor_new:
 * @name: (nullable): tensor name
 * @dtype: element type
 * @n_dims: number of dimensions (0 for a scalar, at most SLIM_TENSOR_MAX_DIMS)
 * @shape: (array length=n_dims): dimensions in elements
 * @error: return location for a #GError
 *
 * Creates a zero-filled tensor with owned, 64-byte-aligned storage.
 *
 * Returns: (transfer full) (nullable): the tensor, NULL on an invalid shape
 * or failed allocation.
 */
SlimTensor *
slim_tensor_new (
    const char *name, SlimDType dtype, guint n_dims, const gint64 *shape, GError **error)
{
  gint64 n_elements;
  gsize n_bytes;
  SlimTensorStorage *storage;

  if (!shape_validate (dtype, n_dims, shape, &n_elements, &n_bytes, error))
    return NULL;
  storage = storage_new_owned (n_bytes, error);
  if (storage == NULL)
    return NULL;
  return tensor_alloc (name, dtype, n_dims, shape, n_elements, n_bytes, storage);
}

/**
 * slim_tensor_new_2d:
 * @name: (nullable): tensor name
 * @dtype: element type
 * @n_rows: rows
 * @n_cols: columns
 *
 * Convenience for shapes known to be valid.
 *
 * Returns: (transfer full): a zero-filled (n_rows, n_cols) tensor.
 */
SlimTensor *
slim_tensor_new_2d (const char *name, SlimDType dtype, gint64 n_rows, gint64 n_cols)
{
  const gint64 shape[2] = { n_rows, n_cols };
  g_autoptr (GError) error = NULL;
  SlimTensor *tensor = slim_tensor_new (name, dtype, 2, shape, &error);

  g_return_val_if_fail (tensor != NULL, NULL);
  return tensor;
}

/**
 * slim_tensor_new_1d:
 * @name: (nullable): tensor name
 * @dtype: element type
 * @n: elements
 *
 * Returns: (transfer full): a zero-filled (n) tensor.
 */
SlimTensor *
slim_tensor_new_1d (const char *name, SlimDType dtype, gint64 n)
{
  g_autoptr (GError) error = NULL;
  SlimTensor *tensor = slim_tensor_new (name, dtype, 1, &n, &error);

  g_return_val_if_fail (tensor != NULL, NULL);
  return tensor;
}

/**
 * slim_tensor_new_view:
 * @name: (nullable): tensor name
 * @dtype: element type
 * @n_dims: number of dimensions
 * @shape: (array length=n_dims): dimensions in elements
 * @owner: the memory viewed; a reference is kept while the view lives
 * @offset_bytes: where the tensor starts in @owner
 * @error: return location for a #GError
 *
 * Creates a read-only view; the bytes from @offset_bytes to the end of
 * @owner must be at least dtype x shape (they may be more).  When the data
 * is not aligned to its element size, the tensor is an owned (writable)
 * aligned copy instead, so element pointers are always aligned.
 *
 * Returns: (transfer full) (nullable): the view, NULL on error.
 */
SlimTensor *
slim_tensor_new_view (const char *name,
                      SlimDType dtype,
                      guint n_dims,
                      const gint64 *shape,
                      GBytes *owner,
                      gsize offset_bytes,
                      GError **error)
{
  gint64 n_elements;
  gsize n_bytes, owner_bytes;
  const guint8 *data;
  guint element_bytes;

  g_return_val_if_fail (owner != NULL, NULL);
  if (!shape_validate (dtype, n_dims, shape, &n_elements, &n_bytes, error))
    return NULL;
  owner_bytes = g_bytes_get_size (owner);
  if (offset_bytes > owner_bytes || owner_bytes - offset_bytes < n_bytes)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_OFFSETS,
                   "view of %" G_GSIZE_FORMAT " bytes at offset %" G_GSIZE_FORMAT
                   " lies outside its %" G_GSIZE_FORMAT "-byte buffer",
                   n_bytes, offset_bytes, owner_bytes);
      return NULL;
    }
  /* Kernels read elements through typed pointers: data not aligned to its
   * element size (safetensors does not require it) is copied instead. */
  element_bytes = MAX (slim_dtype_get_info (dtype)->bits / 8, 1);
  data = (const guint8 *)g_bytes_get_data (owner, NULL) + offset_bytes;
  if ((guintptr)data % element_bytes != 0)
    {
      SlimTensorStorage *storage = storage_new_owned (n_bytes, error);
      if (storage == NULL)
        return NULL;
      memcpy (storage->data, data, n_bytes);
      return tensor_alloc (name, dtype, n_dims, shape, n_elements, n_bytes, storage);
    }
  return tensor_alloc (name, dtype, n_dims, shape, n_elements, n_bytes,
                       storage_new_external (owner, offset_bytes, n_bytes));
}

/**
 * slim_tensor_ref:
 * @tensor: a tensor
 *
 * Returns: (transfer full): @tensor
 */
SlimTensor *
slim_tensor_ref (SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, NULL);
  g_atomic_int_inc (&tensor->ref_count);
  return tensor;
}

/**
 * slim_tensor_unref:
 * @tensor: (transfer full): a tensor
 *
 * Drops a reference; frees the tensor when it was the last one.
 */
void
slim_tensor_unref (SlimTensor *tensor)
{
  g_return_if_fail (tensor != NULL);
  if (!g_atomic_int_dec_and_test (&tensor->ref_count))
    return;
  storage_unref (tensor->storage);
  g_free (tensor->name);
  g_free (tensor);
}

/* ---- accessors -------------------------------------------------------------------- */

/**
 * slim_tensor_get_name:
 * @tensor: a tensor
 *
 * Returns: (transfer none): the name ("" when none was given).
 */
const char *
slim_tensor_get_name (const SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, NULL);
  return tensor->name;
}

/**
 * slim_tensor_set_name:
 * @tensor: a tensor
 * @name: (nullable): the new name
 */
void
slim_tensor_set_name (SlimTensor *tensor, const char *name)
{
  g_return_if_fail (tensor != NULL);
  if (tensor->name == name)
    return;
  g_free (tensor->name);
  tensor->name = g_strdup (name != NULL ? name : "");
}

/**
 * slim_tensor_get_dtype:
 * @tensor: a tensor
 *
 * Returns: the element type.
 */
SlimDType
slim_tensor_get_dtype (const SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, SLIM_DTYPE_F32);
  return tensor->dtype;
}

/**
 * slim_tensor_get_n_dims:
 * @tensor: a tensor
 *
 * Returns: the number of dimensions.
 */
guint
slim_tensor_get_n_dims (const SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, 0);
  return tensor->n_dims;
}

/**
 * slim_tensor_get_shape:
 * @tensor: a tensor
 *
 * Returns: (transfer none): SLIM_TENSOR_MAX_DIMS dimensions, the first
 * n_dims meaningful.
 */
const gint64 *
slim_tensor_get_shape (const SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, NULL);
  return tensor->shape;
}

/**
 * slim_tensor_get_dim:
 * @tensor: a tensor
 * @axis: dimension index; negative counts from the end
 *
 * Returns: the dimension, or -1 (with a critical) for an invalid axis.
 */
gint64
slim_tensor_get_dim (const SlimTensor *tensor, gint axis)
{
  g_return_val_if_fail (tensor != NULL, -1);
  if (axis < 0)
    axis += (gint)tensor->n_dims;
  g_return_val_if_fail (axis >= 0 && (guint)axis < tensor->n_dims, -1);
  return tensor->shape[axis];
}

/**
 * slim_tensor_get_n_elements:
 * @tensor: a tensor
 *
 * Returns: the product of the dimensions.
 */
gint64
slim_tensor_get_n_elements (const SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, 0);
  return tensor->n_elements;
}

/**
 * slim_tensor_get_n_bytes:
 * @tensor: a tensor
 *
 * Returns: the size of the data in bytes.
 */
gsize
slim_tensor_get_n_bytes (const SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, 0);
  return tensor->n_bytes;
}

/**
 * slim_tensor_get_data:
 * @tensor: a tensor
 *
 * Returns: (transfer none): the data, dense row-major; read only.
 */
gconstpointer
slim_tensor_get_data (const SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, NULL);
  return tensor->storage->data;
}

/**
 * slim_tensor_is_writable:
 * @tensor: a tensor
 *
 * Returns: TRUE when the storage is owned and neither the tensor nor its
 * storage is shared.
 */
gboolean
slim_tensor_is_writable (const SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, FALSE);
  return tensor->storage->owner == NULL && g_atomic_int_get (&tensor->ref_count) == 1
         && g_atomic_int_get (&tensor->storage->ref_count) == 1;
}

/**
 * slim_tensor_make_writable:
 * @tensor: (transfer full): a tensor
 *
 * Returns: (transfer full): @tensor when writable, else a private copy
 * (and the reference to @tensor is dropped).
 */
SlimTensor *
slim_tensor_make_writable (SlimTensor *tensor)
{
  SlimTensor *copy;

  g_return_val_if_fail (tensor != NULL, NULL);
  if (slim_tensor_is_writable (tensor))
    return tensor;
  copy = slim_tensor_copy (tensor, NULL);
  slim_tensor_unref (tensor);
  return copy;
}

/**
 * slim_tensor_get_data_mut:
 * @tensor: a writable tensor
 *
 * Returns: (transfer none): the data for writing, NULL (with a critical)
 * when @tensor is not writable.
 */
gpointer
slim_tensor_get_data_mut (SlimTensor *tensor)
{
  g_return_val_if_fail (tensor != NULL, NULL);
  g_return_val_if_fail (slim_tensor_is_writable (tensor), NULL);
  return tensor->storage->data;
}

/* ---- copies and conversions ------------------------------------------------------ */

/**
 * slim_tensor_copy:
 * @tensor: a tensor
 * @new_name: (nullable): name of the copy; NULL keeps the name
 *
 * Returns: (transfer full): a deep, writable copy.
 */
SlimTensor *
slim_tensor_copy (const SlimTensor *tensor, const char *new_name)
{
  SlimTensorStorage *storage;

  g_return_val_if_fail (tensor != NULL, NULL);
  /* The source exists, so its size is sane: allocate like g_malloc does
   * (abort only when the process is out of memory). */
  storage = g_new0 (SlimTensorStorage, 1);
  storage->ref_count = 1;
  storage->data = g_aligned_alloc0 (1, MAX (tensor->n_bytes, 1), SLIM_TENSOR_ALIGNMENT);
  storage->n_bytes = tensor->n_bytes;
  storage->glib_aligned = TRUE;
  if (tensor->n_bytes > 0)
    memcpy (storage->data, tensor->storage->data, tensor->n_bytes);
  return tensor_alloc (new_name != NULL ? new_name : tensor->name, tensor->dtype, tensor->n_dims,
                       tensor->shape, tensor->n_elements, tensor->n_bytes, storage);
}

/* Rows of this many elements are converted through a float32 buffer. */
#define SLIM_TENSOR_CONVERT_CHUNK 4096

/* Byte offset of element index (even for packed types). */
static inline gsize
element_offset_bytes (const SlimDTypeInfo *info, gint64 index)
{
  if (info->bits >= 8)
    return (gsize)index * (info->bits / 8);
  return (gsize)index / (8 / info->bits);
}

/**
 * slim_tensor_convert:
 * @tensor: a tensor
 * @dtype: the target dtype
 * @error: return location for a #GError
 *
 * Converts element by element through float32 (see slim-dtype.c for the
 * rounding).  Same dtype gives a deep copy.
 *
 * Returns: (transfer full) (nullable): a new owned tensor, NULL on error.
 */
SlimTensor *
slim_tensor_convert (const SlimTensor *tensor, SlimDType dtype, GError **error)
{
  const SlimDTypeInfo *src_info, *dst_info;
  SlimTensor *result;
  const guint8 *src;
  guint8 *dst;
  float *chunk; /* (SLIM_TENSOR_CONVERT_CHUNK) */
  gint64 done = 0;

  g_return_val_if_fail (tensor != NULL, NULL);
  src_info = slim_dtype_get_info (tensor->dtype);
  dst_info = slim_dtype_get_info (dtype);
  if (dst_info == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_DTYPE, "invalid dtype %d",
                   (int)dtype);
      return NULL;
    }
  if (dtype == tensor->dtype)
    return slim_tensor_copy (tensor, NULL);
  result = slim_tensor_new (tensor->name, dtype, tensor->n_dims, tensor->shape, error);
  if (result == NULL)
    return NULL;
  src = tensor->storage->data;
  dst = result->storage->data;
  chunk = g_new (float, SLIM_TENSOR_CONVERT_CHUNK);
  /* The chunk is even, so packed types always start on a byte boundary. */
  while (done < tensor->n_elements)
    {
      gsize n = (gsize)MIN ((gint64)SLIM_TENSOR_CONVERT_CHUNK, tensor->n_elements - done);
      src_info->to_f32 (src + element_offset_bytes (src_info, done), chunk, n);
      dst_info->from_f32 (chunk, dst + element_offset_bytes (dst_info, done), n);
      done += (gint64)n;
    }
  g_free (chunk);
  return result;
}

/**
 * slim_tensor_to_f32:
 * @tensor: a tensor
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a new float32 tensor.
 */
SlimTensor *
slim_tensor_to_f32 (const SlimTensor *tensor, GError **error)
{
  return slim_tensor_convert (tensor, SLIM_DTYPE_F32, error);
}

/**
 * slim_tensor_reshape:
 * @tensor: a tensor
 * @n_dims: new number of dimensions
 * @shape: (array length=n_dims): new dimensions
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a tensor with the same name and
 * data (shared copy-on-write) and the new shape; NULL when the element
 * count differs or the shape is invalid.
 */
SlimTensor *
slim_tensor_reshape (SlimTensor *tensor, guint n_dims, const gint64 *shape, GError **error)
{
  gint64 n_elements;
  gsize n_bytes;

  g_return_val_if_fail (tensor != NULL, NULL);
  if (!shape_validate (tensor->dtype, n_dims, shape, &n_elements, &n_bytes, error))
    return NULL;
  if (n_elements != tensor->n_elements)
    {
      g_autofree char *from = slim_tensor_shape_to_string (tensor);
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "cannot reshape %s (%" G_GINT64_FORMAT " elements) to %" G_GINT64_FORMAT
                   " elements",
                   from, tensor->n_elements, n_elements);
      return NULL;
    }
  return tensor_alloc (tensor->name, tensor->dtype, n_dims, shape, n_elements, n_bytes,
                       storage_ref (tensor->storage));
}

/**
 * slim_tensor_shape_to_string:
 * @tensor: a tensor
 *
 * Returns: (transfer full): "[64, 172]"; free with g_free().
 */
char *
slim_tensor_shape_to_string (const SlimTensor *tensor)
{
  GString *text;

  g_return_val_if_fail (tensor != NULL, NULL);
  text = g_string_new ("[");
  for (guint i = 0; i < tensor->n_dims; i++)
    g_string_append_printf (text, "%s%" G_GINT64_FORMAT, i > 0 ? ", " : "", tensor->shape[i]);
  g_string_append_c (text, ']');
  return g_string_free (text, FALSE);
}

/**
 * slim_tensor_is_finite:
 * @tensor: a tensor
 *
 * Returns: TRUE when every element of a float tensor is finite; always TRUE
 * for integer types.
 */
gboolean
slim_tensor_is_finite (const SlimTensor *tensor)
{
  const SlimDTypeInfo *info;
  const guint8 *src;
  float *chunk; /* (SLIM_TENSOR_CONVERT_CHUNK) */
  gint64 done = 0;
  gboolean finite = TRUE;

  g_return_val_if_fail (tensor != NULL, FALSE);
  info = slim_dtype_get_info (tensor->dtype);
  if (!info->is_float)
    return TRUE;
  src = tensor->storage->data;
  chunk = g_new (float, SLIM_TENSOR_CONVERT_CHUNK);
  while (finite && done < tensor->n_elements)
    {
      gsize n = (gsize)MIN ((gint64)SLIM_TENSOR_CONVERT_CHUNK, tensor->n_elements - done);
      info->to_f32 (src + element_offset_bytes (info, done), chunk, n);
      for (gsize i = 0; i < n; i++)
        if (!isfinite (chunk[i]))
          {
            /* f64 values beyond float range are finite doubles but convert
             * to infinity; they are not representable in our float32 math */
            finite = FALSE;
            break;
          }
      done += (gint64)n;
    }
  g_free (chunk);
  return finite;
}
