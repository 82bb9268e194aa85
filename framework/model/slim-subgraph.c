/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-subgraph.c: making and freeing a SlimSubgraph.
 */
#include "slim-subgraph.h"

SlimSubgraph *
slim_subgraph_new (SlimSubgraphType type, const char *source, const char *const *targets)
{
  SlimSubgraph *subgraph = g_new0 (SlimSubgraph, 1);

  subgraph->type = type;
  subgraph->source = g_strdup (source);
  subgraph->targets = g_strdupv ((char **)targets);
  return subgraph;
}

/**
 * slim_subgraph_free:
 * @subgraph: (transfer full) (nullable): a subgraph
 */
void
slim_subgraph_free (SlimSubgraph *subgraph)
{
  if (subgraph == NULL)
    return;
  g_free (subgraph->source);
  g_strfreev (subgraph->targets);
  g_free (subgraph);
}
