/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-subgraph.h: SlimSubgraph, one piece of a decoder layer's structure
 * as smoothing and rotation processors see it, in msModelSlim's terms
 * (spec 2.3): a source module (a norm, v_proj, up_proj) and the linears
 * it feeds.  Adapters make them, slim_model_get_subgraphs() hands them out.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Smoothing / rotation structure, in msModelSlim's terms (spec 2.3). */
typedef enum
{
  SLIM_SUBGRAPH_NORM_LINEAR, /* source = norm module, targets = linears it feeds */
  SLIM_SUBGRAPH_LINEAR_LINEAR,
  SLIM_SUBGRAPH_OV,          /* source = v_proj, targets = o_proj */
  SLIM_SUBGRAPH_UP_DOWN,     /* source = up_proj, targets = down_proj */
} SlimSubgraphType;

typedef struct
{
  SlimSubgraphType type;
  char *source;   /* module name, e.g. "model.layers.0.input_layernorm" */
  char **targets; /* NULL-terminated module names */
} SlimSubgraph;

/* New subgraph (targets NULL-terminated, all strings copied). */
SlimSubgraph *
slim_subgraph_new (SlimSubgraphType type, const char *source, const char *const *targets);
void slim_subgraph_free (SlimSubgraph *subgraph);

G_END_DECLS
