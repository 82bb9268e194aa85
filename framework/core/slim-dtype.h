/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-dtype.h: element types and their traits table (ggml style).
 * Every type converts a row to and from float32; each conversion has a
 * plain scalar _ref twin that the tests compare the fast path with.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef enum
{
  SLIM_DTYPE_F32,
  SLIM_DTYPE_F16,
  SLIM_DTYPE_BF16,
  SLIM_DTYPE_I8,
  SLIM_DTYPE_U8,
  SLIM_DTYPE_I16,
  SLIM_DTYPE_I32,
  SLIM_DTYPE_I64,
  SLIM_DTYPE_BOOL,
  SLIM_DTYPE_F8_E4M3FN,
  SLIM_DTYPE_I4X2, /* two signed 4-bit values per byte, element 2i in the low nibble */
  SLIM_DTYPE_U4X2, /* two unsigned 4-bit values per byte, element 2i in the low nibble */
  SLIM_DTYPE_F64,
  SLIM_DTYPE_F8_E5M2,
  SLIM_DTYPE_F4X2_E2M1, /* two FP4 E2M1 codes per byte, element 2i in the low nibble */
  SLIM_N_DTYPES
} SlimDType;

GType slim_dtype_get_type (void);
#define SLIM_TYPE_DTYPE (slim_dtype_get_type ())

/* Convert n_elements of src (packed per the dtype) to float32 and back. */
typedef void (*SlimDTypeToF32Func) (const void *src, float *dst, gsize n_elements);
typedef void (*SlimDTypeFromF32Func) (const float *src, void *dst, gsize n_elements);

typedef struct
{
  SlimDType dtype;
  const char *name;             /* slimflow name: "f32", "bf16", "i4x2" ...      */
  const char *safetensors_name; /* "F32", "BF16", "I8", "F8_E4M3" ...; NULL if none */
  guint bits;                   /* bits per element (4 for packed types)          */
  gboolean is_float;
  gboolean is_packed; /* more than one element per byte */
  SlimDTypeToF32Func to_f32;
  SlimDTypeFromF32Func from_f32;
  SlimDTypeToF32Func to_f32_ref;
  SlimDTypeFromF32Func from_f32_ref;
} SlimDTypeInfo;

const SlimDTypeInfo *slim_dtype_get_info (SlimDType dtype);
const char *slim_dtype_get_name (SlimDType dtype);
/* Parse a safetensors dtype string ("F32", "BF16", ...). FALSE if unknown. */
gboolean slim_dtype_from_safetensors_name (const char *name, SlimDType *out_dtype);
gboolean slim_dtype_from_name (const char *name, SlimDType *out_dtype);
/* Bytes needed for n_elements of dtype; FALSE on overflow or odd count of a packed type. */
gboolean slim_dtype_n_bytes (SlimDType dtype, guint64 n_elements, guint64 *out_n_bytes);

/* Scalar conversions (round to nearest even), exported for kernels and tests. */
guint16 slim_f32_to_bf16 (float value);
float slim_bf16_to_f32 (guint16 value);
guint16 slim_f32_to_f16 (float value);
float slim_f16_to_f32 (guint16 value);
guint8 slim_f32_to_f8_e4m3fn (float value);
float slim_f8_e4m3fn_to_f32 (guint8 value);

G_END_DECLS
