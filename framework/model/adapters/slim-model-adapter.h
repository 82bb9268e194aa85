/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-adapter.h (private): what one architecture family provides.
 * An adapter reads its config.json fields, names the tensors a decoder
 * layer needs (with their shapes), runs the layer's MLP block and
 * describes the layer's structure for smoothing and rotation processors.
 * Attention, norms and residuals are shared (slim-decoder.h) and run by
 * slim-model.c.  No graph tracing: each family is written out by hand.
 */
#pragma once

#include "slim-config-reader.h"
#include "slim-forward-hooks.h"
#include "slim-layer.h"
#include "slim-model-config.h"
#include "slim-subgraph.h"
#include "slim-tensor-spec.h"

G_BEGIN_DECLS

/* Bound on the number of experts a config may declare. */
#define SLIM_CONFIG_MAX_EXPERTS 65536

typedef struct
{
  const char *family;             /* "llama" */
  const char *const *model_types; /* NULL-terminated: "llama", "mistral", ... */
  /* Family fields and defaults (config->model_type is set, common fields
   * read; head_dim is 0 when config.json has none). */
  gboolean (*parse_config) (const SlimConfigReader *reader,
                            SlimModelConfig *config,
                            GError **error);
  /* Tensors of decoder layer index beyond attention and norms (its MLP or
   * MoE block), prefix "model.layers.3"; linear names in execution order. */
  void (*describe_mlp) (const SlimModelConfig *config,
                        const char *prefix,
                        guint index,
                        GArray *specs,
                        GPtrArray *linear_names);
  /* x (n_tokens, hidden) post-attention-normed -> out (n_tokens, hidden). */
  gboolean (*forward_mlp) (const SlimModelConfig *config,
                           SlimLayer *layer,
                           const float *x,
                           float *out,
                           gint64 n_tokens,
                           const SlimForwardHooks *hooks,
                           GError **error);
  /* The post_attention_layernorm consumers and the up->down pairs of the
   * MLP block, appended to subgraphs (SlimSubgraph*). */
  void (*add_mlp_subgraphs) (const SlimModelConfig *config,
                             const char *prefix,
                             guint index,
                             GPtrArray *subgraphs);
} SlimModelAdapter;

/* Adapters (framework/model/adapters/slim-llama.c, slim-moe.c); the table
 * of them is slim-model-adapter-table.c. */
const SlimModelAdapter *slim_llama_adapter_get (void);
const SlimModelAdapter *slim_moe_adapter_get (void);

G_END_DECLS
