/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-pack.h: the int32 packing of Hugging Face GPTQ and AWQ
 * checkpoints (AutoGPTQ / GPTQModel `pack`, AutoAWQ WQLinear_GEMM
 * `from_linear`; behaviour read from their sources, not copied).
 *
 * Codes are unsigned b-bit integers (0 .. 2^b - 1), b in {2, 4, 8}, so
 * pf = 32 / b codes fill one int32 word exactly (no straddling, no
 * padding: the packed dimension must be a multiple of pf).  Slot j of a
 * word is bits [j*b, j*b + b).
 *
 *   dim 0 (GPTQ qweight from the transposed (in, out) codes): word (r, c)
 *     of (rows / pf, cols) holds code (r*pf + j, c) in slot j;
 *   dim 1 (GPTQ qzeros, AWQ qweight / qzeros): word (r, w) of
 *     (rows, cols / pf) holds code (r, w*pf + order[j]) in slot j, order
 *     NULL meaning j (GPTQ) or SLIM_HF_AWQ_ORDER for AWQ's GEMM layout:
 *     slot j holds element {0, 2, 4, 6, 1, 3, 5, 7}[j] of the group of 8.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* AWQ GEMM: which of 8 consecutive int4 codes sits in slot j. */
extern const guint SLIM_HF_AWQ_ORDER[8];

/* dim 0: codes (rows, cols) -> packed (rows / (32 / bits), cols).  Fails
 * (SLIM_FORMAT_ERROR_INVALID) on bits not in {2, 4, 8}, rows not a
 * multiple of 32 / bits or a code >= 2^bits. */
gboolean slim_hf_pack_dim0 (const guint8 *codes, /* (rows, cols) row-major */
                            gint64 rows,
                            gint64 cols,
                            guint bits,
                            gint32 *packed, /* (rows / (32 / bits), cols) */
                            GError **error);
/* dim 1: codes (rows, cols) -> packed (rows, cols / (32 / bits)), slot j
 * of each word holding element order[j] (order NULL: j; otherwise a
 * permutation of 0 .. 32 / bits - 1). */
gboolean slim_hf_pack_dim1 (const guint8 *codes, /* (rows, cols) row-major */
                            gint64 rows,
                            gint64 cols,
                            guint bits,
                            const guint *order, /* (32 / bits) or NULL */
                            gint32 *packed,     /* (rows, cols / (32 / bits)) */
                            GError **error);

G_END_DECLS
