/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config.h: a strict YAML loader producing a tree of SlimConfigNode,
 * each node remembering the file, line and column it came from.
 *
 * The tree is built from libyaml events (not libyaml's document API) so
 * that hostile files are bounded while they are read:
 *   - input must be valid UTF-8 without NUL bytes, at most
 *     SLIM_CONFIG_MAX_FILE_BYTES, with exactly one non-empty document;
 *   - nesting deeper than SLIM_CONFIG_MAX_DEPTH collections is rejected,
 *     also when it comes from an alias placed deep in the tree;
 *   - aliases are shared, not copied, but every alias counts the nodes it
 *     expands to, and a document whose expanded size passes
 *     SLIM_CONFIG_MAX_NODES is rejected (a "billion laughs" file fails
 *     after reading a few hundred bytes);
 *   - a scalar longer than SLIM_CONFIG_MAX_SCALAR_BYTES is rejected.
 * Merge keys (`<<: *anchor` or `<<: [*a, *b]`) are resolved while loading:
 * explicit keys win over merged ones, and earlier merged mappings win over
 * later ones.  Duplicate keys in a mapping are errors.  Only the tags
 * !!str, !!seq and !!map are accepted (`!!str 5` is the string "5").
 *
 * Every error is a SLIM_CONFIG_ERROR_PARSE whose message starts with
 * "FILE:LINE:COLUMN: " (1-based).
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define SLIM_CONFIG_MAX_FILE_BYTES (4 * 1024 * 1024)
#define SLIM_CONFIG_MAX_DEPTH 64
#define SLIM_CONFIG_MAX_NODES 100000
#define SLIM_CONFIG_MAX_SCALAR_BYTES (64 * 1024)

typedef enum
{
  SLIM_CONFIG_NODE_SCALAR,
  SLIM_CONFIG_NODE_SEQUENCE,
  SLIM_CONFIG_NODE_MAPPING,
} SlimConfigNodeKind;

/**
 * SlimConfigScalarStyle:
 * @SLIM_CONFIG_SCALAR_PLAIN: unquoted; may be a number, boolean or null
 * @SLIM_CONFIG_SCALAR_QUOTED: single or double quoted, a block scalar, or
 *   tagged !!str: always a string (`"true"` is not a boolean)
 */
typedef enum
{
  SLIM_CONFIG_SCALAR_PLAIN,
  SLIM_CONFIG_SCALAR_QUOTED,
} SlimConfigScalarStyle;

typedef struct _SlimConfigNode SlimConfigNode;

GType slim_config_node_get_type (void);
#define SLIM_TYPE_CONFIG_NODE (slim_config_node_get_type ())

/**
 * slim_config_parse_file:
 * @path: a YAML file
 * @error: return location for a GError
 *
 * Reads and parses @path.  The file name in node locations and messages is
 * @path as given.  I/O failures are G_FILE_ERROR errors.
 *
 * Returns: (transfer full) (nullable): the root node, or NULL with @error set.
 */
SlimConfigNode *slim_config_parse_file (const char *path, GError **error);

/**
 * slim_config_parse_data:
 * @data: (array length=n_bytes): YAML text (need not be NUL-terminated)
 * @n_bytes: length of @data in bytes
 * @file_name: name used in locations and messages
 * @error: return location for a GError
 *
 * Parses YAML from memory with the limits described above.
 *
 * Returns: (transfer full) (nullable): the root node, or NULL with @error set.
 */
SlimConfigNode *
slim_config_parse_data (const char *data, gsize n_bytes, const char *file_name, GError **error);

/**
 * slim_config_node_ref:
 * @node: a node
 *
 * Returns: (transfer full): @node, with one more reference.
 */
SlimConfigNode *slim_config_node_ref (SlimConfigNode *node);

/**
 * slim_config_node_unref:
 * @node: (transfer full): a node
 *
 * Drops a reference; the subtree is freed with the last one.
 */
void slim_config_node_unref (SlimConfigNode *node);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimConfigNode, slim_config_node_unref)

/**
 * slim_config_node_get_kind:
 * @node: a node
 *
 * Returns: scalar, sequence or mapping.
 */
SlimConfigNodeKind slim_config_node_get_kind (const SlimConfigNode *node);

/**
 * slim_config_node_describe_kind:
 * @node: a node
 *
 * Returns: (transfer none): "scalar", "sequence", "mapping", or "null" for
 *   a null scalar (for messages).
 */
const char *slim_config_node_describe_kind (const SlimConfigNode *node);

/**
 * slim_config_node_get_file:
 * @node: a node
 *
 * Returns: (transfer none): the file name given to the parser; lives as
 *   long as @node.
 */
const char *slim_config_node_get_file (const SlimConfigNode *node);

/**
 * slim_config_node_get_line:
 * @node: a node
 *
 * Returns: the 1-based line of the node's first character.  Nodes reached
 *   through an alias report where the anchored node is written.
 */
guint slim_config_node_get_line (const SlimConfigNode *node);

/**
 * slim_config_node_get_column:
 * @node: a node
 *
 * Returns: the 1-based column (in characters) of the node's first character.
 */
guint slim_config_node_get_column (const SlimConfigNode *node);

/**
 * slim_config_node_dup_location:
 * @node: a node
 *
 * Returns: (transfer full): "FILE:LINE:COLUMN".
 */
char *slim_config_node_dup_location (const SlimConfigNode *node);

/**
 * slim_config_node_get_scalar:
 * @node: a node
 *
 * Returns: (transfer none) (nullable): the text of a scalar (UTF-8, no NUL
 *   inside), NULL for sequences and mappings.
 */
const char *slim_config_node_get_scalar (const SlimConfigNode *node);

/**
 * slim_config_node_get_scalar_style:
 * @node: a scalar node
 *
 * Returns: plain, or quoted (quoted, block and !!str scalars are strings).
 */
SlimConfigScalarStyle slim_config_node_get_scalar_style (const SlimConfigNode *node);

/**
 * slim_config_node_is_null:
 * @node: a node
 *
 * Returns: TRUE for a plain "", "~", "null", "Null" or "NULL" scalar (also
 *   `key:` with no value).
 */
gboolean slim_config_node_is_null (const SlimConfigNode *node);

/**
 * slim_config_node_get_n_items:
 * @node: a node
 *
 * Returns: the number of items of a sequence or key-value pairs of a
 *   mapping; 0 for scalars.
 */
guint slim_config_node_get_n_items (const SlimConfigNode *node);

/**
 * slim_config_node_get_item:
 * @node: a sequence or mapping
 * @index: < slim_config_node_get_n_items()
 *
 * Returns: (transfer none): item @index of a sequence, or value @index of
 *   a mapping.
 */
SlimConfigNode *slim_config_node_get_item (const SlimConfigNode *node, guint index);

/**
 * slim_config_node_get_key:
 * @node: a mapping
 * @index: < slim_config_node_get_n_items()
 *
 * Returns: (transfer none): key @index, always a scalar node.
 */
SlimConfigNode *slim_config_node_get_key (const SlimConfigNode *node, guint index);

/**
 * slim_config_node_lookup:
 * @node: a node
 * @key: a key
 *
 * Returns: (transfer none) (nullable): the value of @key in a mapping
 *   (merged keys included), NULL when absent or @node is not a mapping.
 */
SlimConfigNode *slim_config_node_lookup (const SlimConfigNode *node, const char *key);

/**
 * slim_config_node_get_n_nodes:
 * @node: a node
 *
 * Returns: the number of nodes in the subtree, counting every alias
 *   expansion (at most SLIM_CONFIG_MAX_NODES for a document).
 */
guint64 slim_config_node_get_n_nodes (const SlimConfigNode *node);

/**
 * slim_config_node_get_height:
 * @node: a node
 *
 * Returns: the levels in the subtree (1 for a scalar), aliases expanded;
 *   a document's root has at most SLIM_CONFIG_MAX_DEPTH + 1.
 */
guint slim_config_node_get_height (const SlimConfigNode *node);

/**
 * slim_config_error_at:
 * @error: (out): return location for a GError
 * @node: (nullable): where the problem is; NULL for no location
 * @code: a #SlimConfigError code
 * @format: printf format of the message, after the location
 *
 * Sets @error to a SLIM_CONFIG_ERROR whose message is "FILE:LINE:COL: "
 * followed by the formatted text.
 */
void slim_config_error_at (GError **error,
                           const SlimConfigNode *node,
                           gint code,
                           const char *format,
                           ...) G_GNUC_PRINTF (4, 5);

/**
 * slim_config_node_new_scalar:
 * @at: the node whose location (file, line, column) the new node takes,
 *   so that messages about a translated config point at its source
 * @style: plain (may read as a number, boolean or null) or quoted
 * @text: UTF-8 text
 *
 * Trees built in code (e.g. a modelslim_v0 config translated to
 * modelslim_v1, slim-config-v0.h) are built bottom-up: a node is added to
 * its parent only once it is complete, so that the parent's node count
 * and height stay right.
 *
 * Returns: (transfer full): a new scalar node.
 */
SlimConfigNode *slim_config_node_new_scalar (const SlimConfigNode *at,
                                             SlimConfigScalarStyle style,
                                             const char *text);

/**
 * slim_config_node_new_sequence:
 * @at: the node whose location the new node takes
 *
 * Returns: (transfer full): a new, empty sequence.
 */
SlimConfigNode *slim_config_node_new_sequence (const SlimConfigNode *at);

/**
 * slim_config_node_new_mapping:
 * @at: the node whose location the new node takes
 *
 * Returns: (transfer full): a new, empty mapping.
 */
SlimConfigNode *slim_config_node_new_mapping (const SlimConfigNode *at);

/**
 * slim_config_node_append:
 * @sequence: a sequence built with slim_config_node_new_sequence()
 * @item: (transfer full): a complete node
 *
 * Appends @item.
 */
void slim_config_node_append (SlimConfigNode *sequence, SlimConfigNode *item);

/**
 * slim_config_node_insert:
 * @mapping: a mapping built with slim_config_node_new_mapping()
 * @key: (transfer full): a scalar key not yet in @mapping
 * @value: (transfer full): a complete node
 *
 * Adds the pair at the end of @mapping.
 */
void slim_config_node_insert (SlimConfigNode *mapping, SlimConfigNode *key, SlimConfigNode *value);

/**
 * slim_config_node_to_yaml:
 * @node: a node
 *
 * Writes @node as block-style YAML that slim_config_parse_data() reads
 * back to the same tree (quoted scalars stay quoted).
 *
 * Returns: (transfer full): the text, ending in a newline.
 */
char *slim_config_node_to_yaml (const SlimConfigNode *node);

G_END_DECLS
