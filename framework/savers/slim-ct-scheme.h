/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ct-scheme.h: what one deployed linear (SlimQLinear record) is in
 * compressed-tensors: its QuantizationArgs for weights and input
 * activations and its format (int-quantized, pack-quantized,
 * float-quantized or naive-quantized), checked
 * against everything the writer will store (slim-ct-writer.h has the
 * tensor table and the list of what is refused).
 */
#pragma once

#include <glib.h>
#include "slim-dtype.h"
#include "slim-qlinear.h"

G_BEGIN_DECLS

/* One QuantizationArgs. */
typedef struct
{
  guint bits;
  const char *type; /* "int", or "float" (fp8 e4m3) */
  gboolean symmetric;
  const char *strategy; /* tensor, channel, group, token */
  gint64 group_size;    /* 0 = null */
  gboolean dynamic;
  const char *observer; /* NULL = null */
} SlimCtArgs;

/* What one record becomes (q borrowed from the record). */
typedef struct
{
  const SlimQLinear *q;
  SlimCtArgs weights;
  gboolean has_input;
  SlimCtArgs input;
  gboolean packed;    /* pack-quantized (int weight-only) */
  const char *format; /* int-quantized, pack-quantized, float-quantized (fp8
                         weights and activations), naive-quantized (fp8
                         weight-only) */
  gint64 n_cols;      /* weight_scale columns: 1 per channel, in / gs per group */
  gboolean per_tensor;
} SlimCtScheme;

/* Fills scheme from q and checks the record: shapes, finite scales,
 * integer zero points in range (exactly zero when symmetric), a usable
 * input scale.  FALSE with SLIM_PIPELINE_ERROR_INCOMPATIBLE naming the
 * linear ("<module> (<label>): compressed_tensors cannot save this
 * linear: ...") for a scheme compressed-tensors cannot express,
 * SLIM_FORMAT_ERROR / SLIM_NUMERIC_ERROR for a malformed record. */
gboolean slim_ct_scheme_from_qlinear (const SlimQLinear *q, SlimCtScheme *scheme, GError **error);
/* The scheme as compact JSON {weights, input_activations,
 * output_activations, format} (no targets): the config group's body and
 * the key grouping linears of one scheme.  model_dtype decides
 * scale_dtype (null for float32, else "torch.float32"). */
char *slim_ct_scheme_to_json (const SlimCtScheme *scheme, SlimDType model_dtype);

G_END_DECLS
