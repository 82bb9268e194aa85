/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-layer.h: one unit of the model as the runner streams it: a decoder
 * layer (index >= 0), or the pseudo-layers holding the embeddings
 * (SLIM_LAYER_INDEX_EMBED) and the final norm + lm_head
 * (SLIM_LAYER_INDEX_HEAD).
 *
 * Tensors are kept by full Hugging Face name
 * ("model.layers.3.self_attn.q_proj.weight") in a stable insertion order,
 * so anything written from a layer is reproducible.  Tensors loaded for
 * compute are float32; the dtype the model stored them in is remembered
 * per tensor (slim_layer_get_source_dtype) so savers can write FLOAT
 * tensors back in their original dtype.
 */
#pragma once

#include <glib-object.h>
#include "slim-tensor.h"

G_BEGIN_DECLS

#define SLIM_LAYER_INDEX_EMBED (-1)
#define SLIM_LAYER_INDEX_HEAD (-2)

#define SLIM_TYPE_LAYER (slim_layer_get_type ())
G_DECLARE_FINAL_TYPE (SlimLayer, slim_layer, SLIM, LAYER, GObject)

/* prefix: "model.layers.3" for decoder layers, "" for the pseudo-layers. */
SlimLayer *slim_layer_new (gint index, const char *prefix);
gint slim_layer_get_index (SlimLayer *self);
const char *slim_layer_get_prefix (SlimLayer *self);

/* Adds a tensor under its own name (takes a ref). Replaces an existing
 * tensor of the same name in place (keeping its position). */
void slim_layer_set_tensor (SlimLayer *self, SlimTensor *tensor);
/* Remember the dtype the tensor had in the model files. */
void slim_layer_set_source_dtype (SlimLayer *self, const char *name, SlimDType dtype);
SlimDType slim_layer_get_source_dtype (SlimLayer *self, const char *name);
/* transfer none; NULL when absent. */
SlimTensor *slim_layer_get_tensor (SlimLayer *self, const char *name);
/* transfer none; error naming the layer when absent. */
SlimTensor *slim_layer_require_tensor (SlimLayer *self, const char *name, GError **error);
gboolean slim_layer_remove_tensor (SlimLayer *self, const char *name);
guint slim_layer_get_n_tensors (SlimLayer *self);
/* i-th tensor in insertion order (transfer none). */
SlimTensor *slim_layer_get_tensor_at (SlimLayer *self, guint i);

/* Names of the linear modules of the layer (without ".weight"), in the
 * model's execution order, e.g. "model.layers.3.self_attn.q_proj";
 * set by the model adapter. transfer none, NULL-terminated. */
const char *const *slim_layer_get_linear_names (SlimLayer *self);
void slim_layer_add_linear_name (SlimLayer *self, const char *module_name);

/* Sum of the byte sizes of the tensors held. */
guint64 slim_layer_get_n_bytes (SlimLayer *self);

G_END_DECLS
