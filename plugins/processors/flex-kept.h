/* SPDX-License-Identifier: Apache-2.0
 *
 * flex-kept.h: the calibration inputs flex_smooth_quant and flex_awq_ssz
 * keep whole for one layer (their searches score every candidate on
 * them): one chunk per calibration sample and subgraph, resident while
 * the owner processor's keep budget allows (slim_processor_get_keep_budget,
 * shared by all its subgraphs), else put in its keep store under
 * "<prefix>/<n>"; cleared (store keys removed) after the layer.
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

typedef struct _SlimFlexKept SlimFlexKept;

/* prefix: the spill key prefix (the processor's YAML type). */
SlimFlexKept *slim_flex_kept_new (SlimProcessor *owner, const char *prefix);
/* A second store of sibling's owner: the two hold their resident chunks
 * within the one keep budget together (e.g. a processor keeping inputs
 * per layer and a stream carried across layers). */
SlimFlexKept *slim_flex_kept_new_sharing (SlimFlexKept *sibling, const char *prefix);
void slim_flex_kept_free (SlimFlexKept *kept);

/* Keeps a copy of x (n_tokens, n_in), an input of module. */
gboolean slim_flex_kept_add (SlimFlexKept *kept,
                             const char *module,
                             const float *x,
                             gint64 n_tokens,
                             gint64 n_in,
                             GError **error);

/* Chunks kept for module (0 when none) and their width. */
guint slim_flex_kept_get_n_chunks (SlimFlexKept *kept, const char *module, gint64 *out_n_in);

/* (transfer full): chunk i of module, read back from the store if spilled. */
SlimTensor *slim_flex_kept_get (SlimFlexKept *kept, const char *module, guint i, GError **error);

/* Drops everything kept; the first store error is reported. */
gboolean slim_flex_kept_clear (SlimFlexKept *kept, GError **error);

G_END_DECLS
