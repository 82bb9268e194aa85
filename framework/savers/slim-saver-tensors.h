/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-saver-tensors.h: tensor helpers shared by the savers that write a
 * Hugging Face safetensors folder (compressed_tensors, hf_gptq_saver,
 * hf_awq_saver): which module a tensor name belongs to, and a layer
 * tensor in the dtype it had in the model files.
 */
#pragma once

#include <glib.h>
#include "slim-layer.h"
#include "slim-tensor.h"

G_BEGIN_DECLS

/* The module of a "<module>.weight" / "<module>.bias" tensor name (newly
 * allocated), *is_weight telling which; NULL for any other name. */
char *slim_saver_tensor_module_of (const char *name, gboolean *is_weight);
/* tensor in the dtype the layer's source files had for it (transfer full:
 * a new reference when the dtype is already that). */
SlimTensor *
slim_saver_tensor_in_source_dtype (SlimLayer *layer, SlimTensor *tensor, GError **error);

G_END_DECLS
