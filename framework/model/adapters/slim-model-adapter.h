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

#include <json-glib/json-glib.h>
#include "slim-model.h"

G_BEGIN_DECLS

/* Lookups in config.json: the nested text_config first (when present),
 * then the top level.  Errors: SLIM_MODEL_ERROR_CONFIG naming what and
 * the key. */
typedef struct
{
  JsonObject *text; /* text_config, or root */
  JsonObject *root;
  const char *what; /* file name for messages */
} SlimConfigReader;

/* TRUE when the key is present and not null. */
gboolean slim_config_reader_has (const SlimConfigReader *reader, const char *key);
/* Integer in [min, max]; when absent or null: an error if required, else
 * *out = fallback. */
gboolean slim_config_reader_get_int (const SlimConfigReader *reader,
                                     const char *key,
                                     gboolean required,
                                     gint64 fallback,
                                     gint64 min,
                                     gint64 max,
                                     gint64 *out,
                                     GError **error);
/* Finite number > 0 (integers accepted). */
gboolean slim_config_reader_get_positive (const SlimConfigReader *reader,
                                          const char *key,
                                          gboolean required,
                                          double fallback,
                                          double *out,
                                          GError **error);
gboolean slim_config_reader_get_bool (const SlimConfigReader *reader,
                                      const char *key,
                                      gboolean fallback,
                                      gboolean *out,
                                      GError **error);

/* Bound on the number of experts a config may declare. */
#define SLIM_CONFIG_MAX_EXPERTS 65536

/* A tensor a layer needs: full name and shape (1-D or 2-D). */
typedef struct
{
  char *name;
  guint n_dims;
  gint64 shape[2];
} SlimTensorSpec;

/* Appends a spec (the array's clear func frees the name). */
void slim_tensor_specs_add (GArray *specs, char *name /* transfer full */, gint64 d0, gint64 d1);
/* A GArray of SlimTensorSpec with its clear func set. */
GArray *slim_tensor_specs_new (void);

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

/* Adapters (framework/model/adapters/slim-llama.c, slim-moe.c). */
const SlimModelAdapter *slim_llama_adapter_get (void);
const SlimModelAdapter *slim_moe_adapter_get (void);
/* The adapter handling model_type, or NULL. */
const SlimModelAdapter *slim_model_adapter_find (const char *model_type);

/* New subgraph (targets NULL-terminated, all strings copied). */
SlimSubgraph *
slim_subgraph_new (SlimSubgraphType type, const char *source, const char *const *targets);

G_END_DECLS
