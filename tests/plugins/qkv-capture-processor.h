/* SPDX-License-Identifier: Apache-2.0
 *
 * qkv-capture-processor.h: a test processor that keeps a copy of every
 * q/k/v state its calibration forward sees (the qkv_states hook), so the
 * attention quantizers' observers can be checked against plain loops over
 * the same values.  Not registered: build it with g_object_new.
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

#define SLIM_TYPE_QKV_CAPTURE_PROCESSOR (slim_qkv_capture_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimQkvCaptureProcessor, slim_qkv_capture_processor, SLIM, QKV_CAPTURE_PROCESSOR, SlimProcessor)

typedef struct
{
  char *attn;
  gint64 n_tokens;
  gint64 n_heads, n_kv_heads, head_dim;
  float *q; /* (n_tokens, n_heads * head_dim) */
  float *k; /* (n_tokens, n_kv_heads * head_dim) */
  float *v; /* (n_tokens, n_kv_heads * head_dim) */
} SlimQkvCapture;

/* Every call so far, in order (transfer none; element-type SlimQkvCapture). */
GPtrArray *slim_qkv_capture_processor_get_calls (SlimQkvCaptureProcessor *self);

G_END_DECLS
