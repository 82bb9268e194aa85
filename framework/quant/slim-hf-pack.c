/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-pack.c: GPTQ / AWQ int32 packing (see slim-hf-pack.h).  A plain
 * loop over words: packing is a small, memory-bound part of saving.
 */
#include "slim-hf-pack.h"

#include "slim-error.h"

const guint SLIM_HF_AWQ_ORDER[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };

static gboolean
slim_hf_pack_check (gint64 n_packed, const char *what, guint bits, GError **error)
{
  if (bits != 2 && bits != 4 && bits != 8)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "GPTQ/AWQ packing: %u bits (2, 4 and 8 fill an int32 exactly)", bits);
      return FALSE;
    }
  if (n_packed % (32 / bits) != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "GPTQ/AWQ packing: %" G_GINT64_FORMAT " %s is not a multiple of %u", n_packed,
                   what, 32 / bits);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_hf_code_error (guint8 code, guint bits, GError **error)
{
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "GPTQ/AWQ packing: code %u does not fit %u bits", code, bits);
  return FALSE;
}

gboolean
slim_hf_pack_dim0 (
    const guint8 *codes, gint64 rows, gint64 cols, guint bits, gint32 *packed, GError **error)
{
  guint pf;

  if (!slim_hf_pack_check (rows, "rows", bits, error))
    return FALSE;
  pf = 32 / bits;
  for (gint64 r = 0; r < rows / pf; r++)
    for (gint64 c = 0; c < cols; c++)
      {
        guint32 word = 0;

        for (guint j = 0; j < pf; j++)
          {
            guint8 code = codes[(r * pf + j) * cols + c];

            if (code >> bits != 0)
              return slim_hf_code_error (code, bits, error);
            word |= (guint32)code << (j * bits);
          }
        packed[r * cols + c] = (gint32)word;
      }
  return TRUE;
}

gboolean
slim_hf_pack_dim1 (const guint8 *codes,
                   gint64 rows,
                   gint64 cols,
                   guint bits,
                   const guint *order,
                   gint32 *packed,
                   GError **error)
{
  guint pf;
  gint64 words;

  if (!slim_hf_pack_check (cols, "columns", bits, error))
    return FALSE;
  pf = 32 / bits;
  words = cols / pf;
  for (gint64 r = 0; r < rows; r++)
    for (gint64 w = 0; w < words; w++)
      {
        guint32 word = 0;

        for (guint j = 0; j < pf; j++)
          {
            guint8 code = codes[r * cols + w * pf + (order != NULL ? order[j] : j)];

            if (code >> bits != 0)
              return slim_hf_code_error (code, bits, error);
            word |= (guint32)code << (j * bits);
          }
        packed[r * words + w] = (gint32)word;
      }
  return TRUE;
}
