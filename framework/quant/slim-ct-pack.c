/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ct-pack.c: compressed-tensors pack-quantized int32 packing (see
 * slim-ct-pack.h).  The fast path accumulates a 64-bit window per stream;
 * the _ref twin sets the stream one bit at a time.
 */
#include "slim-ct-pack.h"

#include "slim-error.h"

gint64
slim_ct_packed_words (gint64 n, guint bits)
{
  return (n * (gint64)bits + 31) / 32;
}

/* Shape, bit width and value range of a (rows, cols) int8 input. */
static gboolean
slim_ct_check (const gint8 *wq, gint64 rows, gint64 cols, guint bits, GError **error)
{
  guint64 n;

  if (bits < 1 || bits > 8)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "compressed-tensors packs 1 to 8 bits, got %u", bits);
      return FALSE;
    }
  if (rows < 1 || cols < 1 || !g_uint64_checked_mul (&n, (guint64)rows, (guint64)cols)
      || n > (guint64)(G_MAXINT64 / 8))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "compressed-tensors packing: bad shape (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   ")",
                   rows, cols);
      return FALSE;
    }
  if (wq == NULL)
    return TRUE;
  gint lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
  for (guint64 i = 0; i < n; i++)
    if (wq[i] < lo || wq[i] > hi)
      {
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                     "compressed-tensors packing: element (%" G_GUINT64_FORMAT
                     ", %" G_GUINT64_FORMAT ") = %d is outside the int%u range [%d, %d]",
                     i / (guint64)cols, i % (guint64)cols, wq[i], bits, lo, hi);
        return FALSE;
      }
  return TRUE;
}

/* One stream of n elements, src[k * src_stride], into words dst[w * dst_stride]. */
static void
slim_ct_pack_stream (
    const gint8 *src, gint64 src_stride, gint64 n, guint bits, gint32 *dst, gint64 dst_stride)
{
  guint64 window = 0; /* pending stream bits, oldest in bit 0 */
  guint filled = 0;
  gint64 w = 0;
  guint offset = 1u << (bits - 1);

  for (gint64 k = 0; k < n; k++)
    {
      guint64 code = (guint64)(guint)((gint)src[k * src_stride] + (gint)offset);
      window |= code << filled;
      filled += bits;
      if (filled >= 32)
        {
          dst[w++ * dst_stride] = (gint32)(guint32)(window & 0xffffffffu);
          window >>= 32;
          filled -= 32;
        }
    }
  if (filled > 0)
    dst[w * dst_stride] = (gint32)(guint32)window;
}

static void
slim_ct_pack_stream_ref (
    const gint8 *src, gint64 src_stride, gint64 n, guint bits, gint32 *dst, gint64 dst_stride)
{
  gint64 words = slim_ct_packed_words (n, bits);
  guint offset = 1u << (bits - 1);

  for (gint64 w = 0; w < words; w++)
    dst[w * dst_stride] = 0;
  for (gint64 k = 0; k < n; k++)
    {
      guint code = (guint)((gint)src[k * src_stride] + (gint)offset);
      for (guint b = 0; b < bits; b++)
        if ((code >> b) & 1u)
          {
            gint64 bit = k * (gint64)bits + b; /* position in the stream */
            guint32 word = (guint32)dst[(bit / 32) * dst_stride];
            dst[(bit / 32) * dst_stride] = (gint32)(word | (1u << (bit % 32)));
          }
    }
}

/* One stream back; FALSE when a padding bit of the last word is set. */
static gboolean
slim_ct_unpack_stream (
    const gint32 *src, gint64 src_stride, gint64 n, guint bits, gint8 *dst, gint64 dst_stride)
{
  guint64 window = 0;
  guint filled = 0;
  gint64 w = 0;
  gint offset = 1 << (bits - 1);
  guint64 mask = (1u << bits) - 1u;

  for (gint64 k = 0; k < n; k++)
    {
      if (filled < bits)
        {
          window |= (guint64)(guint32)src[w++ * src_stride] << filled;
          filled += 32;
        }
      dst[k * dst_stride] = (gint8)((gint)(window & mask) - offset);
      window >>= bits;
      filled -= bits;
    }
  return window == 0;
}

gboolean
slim_ct_pack_rows (
    const gint8 *wq, gint64 rows, gint64 cols, guint bits, gint32 *packed, GError **error)
{
  if (!slim_ct_check (wq, rows, cols, bits, error))
    return FALSE;
  gint64 words = slim_ct_packed_words (cols, bits);
  for (gint64 r = 0; r < rows; r++)
    slim_ct_pack_stream (wq + r * cols, 1, cols, bits, packed + r * words, 1);
  return TRUE;
}

gboolean
slim_ct_pack_rows_ref (
    const gint8 *wq, gint64 rows, gint64 cols, guint bits, gint32 *packed, GError **error)
{
  if (!slim_ct_check (wq, rows, cols, bits, error))
    return FALSE;
  gint64 words = slim_ct_packed_words (cols, bits);
  for (gint64 r = 0; r < rows; r++)
    slim_ct_pack_stream_ref (wq + r * cols, 1, cols, bits, packed + r * words, 1);
  return TRUE;
}

gboolean
slim_ct_pack_cols (
    const gint8 *wq, gint64 rows, gint64 cols, guint bits, gint32 *packed, GError **error)
{
  if (!slim_ct_check (wq, rows, cols, bits, error))
    return FALSE;
  for (gint64 c = 0; c < cols; c++)
    slim_ct_pack_stream (wq + c, cols, rows, bits, packed + c, cols);
  return TRUE;
}

gboolean
slim_ct_unpack_rows (
    const gint32 *packed, gint64 rows, gint64 cols, guint bits, gint8 *wq, GError **error)
{
  if (!slim_ct_check (NULL, rows, cols, bits, error))
    return FALSE;
  gint64 words = slim_ct_packed_words (cols, bits);
  for (gint64 r = 0; r < rows; r++)
    if (!slim_ct_unpack_stream (packed + r * words, 1, cols, bits, wq + r * cols, 1))
      {
        g_set_error (
            error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
            "compressed-tensors unpacking: row %" G_GINT64_FORMAT " has nonzero padding bits", r);
        return FALSE;
      }
  return TRUE;
}

gboolean
slim_ct_unpack_cols (
    const gint32 *packed, gint64 rows, gint64 cols, guint bits, gint8 *wq, GError **error)
{
  if (!slim_ct_check (NULL, rows, cols, bits, error))
    return FALSE;
  for (gint64 c = 0; c < cols; c++)
    if (!slim_ct_unpack_stream (packed + c, cols, rows, bits, wq + c, cols))
      {
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                     "compressed-tensors unpacking: column %" G_GINT64_FORMAT
                     " has nonzero padding bits",
                     c);
        return FALSE;
      }
  return TRUE;
}
