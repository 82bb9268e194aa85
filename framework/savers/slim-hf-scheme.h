/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-scheme.h: what one deployed linear (SlimQLinear record) is in a
 * Hugging Face GPTQ or AWQ checkpoint (slim-hf-writer.h has the tensor
 * table), checked against everything the writer will store.
 *
 * Both formats are weight-only, integer, one (scale, zero) per group of
 * input columns, unsigned codes u = q + 2^(b-1) and zeros z = offset +
 * 2^(b-1), dequantized as (u - z) * scale = slimflow's (q - offset) *
 * scale.  Refused (SLIM_PIPELINE_ERROR_INCOMPATIBLE, "<module> (<label>):
 * <saver> cannot save this linear: ..."): quantized activations, weights
 * other than int4 / int8 (int4 only for AWQ), scopes other than
 * per_group and per_channel (per_group only for AWQ, whose GEMM layout
 * has no group_size -1), a packed dimension that is not a multiple of
 * 32 / b (GPTQ: in and out features; AWQ: out features), float or
 * out-of-range zero points (HQQ), a nonzero zero point of a symmetric
 * scheme, and for gptq (v1) checkpoints a zero z = 0, which v1's stored
 * z - 1 cannot hold (gptq_v2 can).  With float16 scales, a scale that
 * float16 rounds to 0 or infinity is refused too.  A malformed record
 * (shapes, non-finite or non-positive scales, codes outside the bits) is
 * SLIM_FORMAT_ERROR / SLIM_NUMERIC_ERROR.
 */
#pragma once

#include <glib.h>
#include "slim-qlinear.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_HF_FORMAT_GPTQ,    /* checkpoint_format gptq: qzeros hold z - 1 */
  SLIM_HF_FORMAT_GPTQ_V2, /* checkpoint_format gptq_v2: qzeros hold z */
  SLIM_HF_FORMAT_AWQ,     /* version gemm */
} SlimHfFormat;

typedef struct
{
  const SlimQLinear *q; /* borrowed */
  guint bits;
  gboolean symmetric;
  gint64 group_size; /* -1 per channel (GPTQ's group_size -1) */
  gint64 n_groups;   /* n_in / group_size, 1 per channel */
} SlimHfScheme;

/* The saver's name (for messages): hf_gptq_saver or hf_awq_saver. */
const char *slim_hf_format_saver_name (SlimHfFormat format);
/* Fills scheme from q and checks every value that will be written;
 * f16_scales: the scales are written as float16. */
gboolean slim_hf_scheme_from_qlinear (const SlimQLinear *q,
                                      SlimHfFormat format,
                                      gboolean f16_scales,
                                      SlimHfScheme *scheme,
                                      GError **error);

G_END_DECLS
