/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tensor.h: a refcounted, copy-on-write n-dimensional array.
 *
 * A SlimTensor owns 64-byte-aligned heap storage, or is a read-only view
 * into memory it does not own (a memory-mapped safetensors file), kept
 * alive through a GBytes / GMappedFile reference.  Data is always dense
 * row-major (C order).  Shapes are in elements (gint64), sizes in bytes
 * are *_bytes.  Mini-object semantics as GstBuffer: writers call
 * slim_tensor_make_writable() first, which copies when shared or mapped.
 */
#pragma once

#include <glib-object.h>
#include "slim-dtype.h"

G_BEGIN_DECLS

#define SLIM_TENSOR_MAX_DIMS 6
#define SLIM_TENSOR_ALIGNMENT 64

typedef struct _SlimTensor SlimTensor;

GType slim_tensor_get_type (void);
#define SLIM_TYPE_TENSOR (slim_tensor_get_type ())

/* Zero-filled owned tensor. Returns NULL and sets error when the shape is
 * invalid (negative dims, > SLIM_TENSOR_MAX_DIMS, byte-size overflow). */
SlimTensor *slim_tensor_new (const char *name,
                             SlimDType dtype,
                             guint n_dims,
                             const gint64 *shape,
                             GError **error);
/* Convenience for known-good shapes in code (g_return_val_if_fail on misuse). */
SlimTensor *slim_tensor_new_2d (const char *name, SlimDType dtype, gint64 n_rows, gint64 n_cols);
SlimTensor *slim_tensor_new_1d (const char *name, SlimDType dtype, gint64 n);
/* Read-only view of external memory kept alive by owner (a GBytes). The
 * byte length must equal dtype x shape; checked, error otherwise. */
SlimTensor *slim_tensor_new_view (const char *name,
                                  SlimDType dtype,
                                  guint n_dims,
                                  const gint64 *shape,
                                  GBytes *owner,
                                  gsize offset_bytes,
                                  GError **error);

SlimTensor *slim_tensor_ref (SlimTensor *tensor);
void slim_tensor_unref (SlimTensor *tensor);

const char *slim_tensor_get_name (const SlimTensor *tensor);
void slim_tensor_set_name (SlimTensor *tensor, const char *name);
SlimDType slim_tensor_get_dtype (const SlimTensor *tensor);
guint slim_tensor_get_n_dims (const SlimTensor *tensor);
/* Returns a pointer to SLIM_TENSOR_MAX_DIMS dims; only n_dims are meaningful. */
const gint64 *slim_tensor_get_shape (const SlimTensor *tensor);
gint64 slim_tensor_get_dim (const SlimTensor *tensor, gint axis); /* negative axis counts from the end */
gint64 slim_tensor_get_n_elements (const SlimTensor *tensor);
gsize slim_tensor_get_n_bytes (const SlimTensor *tensor);

/* Read access is always allowed. */
gconstpointer slim_tensor_get_data (const SlimTensor *tensor);
/* TRUE when owned storage and refcount == 1. */
gboolean slim_tensor_is_writable (const SlimTensor *tensor);
/* transfer full in and out: returns tensor itself when writable, else a
 * private copy (and drops one ref of the input). */
SlimTensor *slim_tensor_make_writable (SlimTensor *tensor);
/* Only on a writable tensor (g_return_val_if_fail otherwise). */
gpointer slim_tensor_get_data_mut (SlimTensor *tensor);

/* Deep copy (always owned and writable), optionally renamed (NULL keeps the name). */
SlimTensor *slim_tensor_copy (const SlimTensor *tensor, const char *new_name);
/* New float32 tensor converted from any dtype. */
SlimTensor *slim_tensor_to_f32 (const SlimTensor *tensor, GError **error);
/* New tensor of dtype converted from a tensor (via float32 rows). */
SlimTensor *slim_tensor_convert (const SlimTensor *tensor, SlimDType dtype, GError **error);
/* Same data, new shape with the same element count (a copy-on-write share). */
SlimTensor *slim_tensor_reshape (SlimTensor *tensor, guint n_dims, const gint64 *shape, GError **error);

/* "[64, 172]" style string; free with g_free. */
char *slim_tensor_shape_to_string (const SlimTensor *tensor);
/* TRUE if every element of a float tensor is finite (others: always TRUE). */
gboolean slim_tensor_is_finite (const SlimTensor *tensor);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimTensor, slim_tensor_unref)

G_END_DECLS
