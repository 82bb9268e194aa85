/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-writer.h: a SlimConfigNode tree written back as YAML, with
 * edits applied on the way (what `slimflow ablate` builds its variants
 * with, and what `slimflow analyze --write-config` writes).
 *
 * A path names a node from the root: mapping keys joined by '.', sequence
 * items as [i] ("spec.process[1].qconfig.weight.symmetric").  Edits name
 * nodes of the tree as it was read (indices are those of the input):
 *
 *   SET     replaces the node at path; a missing last key of an existing
 *           mapping is added at its end
 *   REMOVE  drops the key or the sequence item at path
 *   INSERT  path is a sequence item [i], 0 <= i <= length: value goes
 *           before item i (i = length appends)
 *
 * Several INSERTs at one path keep their order.  An edit whose path is
 * not in the tree is an error at the edit's origin node.
 *
 * The output is block YAML (sequences of scalars in flow style); quoted
 * scalars stay quoted so that `"5"` stays a string, null scalars are
 * written as null.  Parsing the output gives a tree equal to the edited
 * input (slim_config_node_equal()).
 */
#pragma once

#include "slim-config.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_CONFIG_EDIT_SET,
  SLIM_CONFIG_EDIT_REMOVE,
  SLIM_CONFIG_EDIT_INSERT,
} SlimConfigEditKind;

typedef struct
{
  SlimConfigEditKind kind;
  const char *path;
  SlimConfigNode *value;        /* SET and INSERT; transfer none */
  const SlimConfigNode *origin; /* (nullable) where the edit was written, for messages */
} SlimConfigEdit;

/* Writes root with edits (n_edits, may be 0) applied; NULL with a
 * SLIM_CONFIG_ERROR_BAD_VALUE at an edit's origin when its path is not in
 * the tree. */
char *slim_config_write (SlimConfigNode *root,
                         const SlimConfigEdit *edits,
                         guint n_edits,
                         GError **error);

/* TRUE when a and b have the same shape, keys, scalars and scalar styles
 * (locations ignored). */
gboolean slim_config_node_equal (const SlimConfigNode *a, const SlimConfigNode *b);

G_END_DECLS
