/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config.c: the YAML loader behind slim-config.h.
 *
 * libyaml's event parser feeds a small stack machine: every start event
 * pushes a frame, every end event pops one and attaches the finished node
 * to its parent.  Working on events (not yaml_document_t) lets us count
 * alias expansions and nesting while reading, so a hostile file is
 * rejected after a few hundred events instead of after exhausting memory.
 */
#include "slim-config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "slim-error.h"

#define YAML_TAG_STR "tag:yaml.org,2002:str"
#define YAML_TAG_SEQ "tag:yaml.org,2002:seq"
#define YAML_TAG_MAP "tag:yaml.org,2002:map"
#define YAML_TAG_MERGE "tag:yaml.org,2002:merge"

struct _SlimConfigNode
{
  grefcount ref_count;
  SlimConfigNodeKind kind;
  SlimConfigScalarStyle style;
  GRefString *file;
  guint line;       /* 1-based */
  guint column;     /* 1-based, in characters */
  guint64 n_nodes;  /* this node plus its subtree, aliases expanded */
  guint height;     /* levels in this subtree: 1 for a scalar */
  char *scalar;     /* scalars only; NUL-free UTF-8 */
  GPtrArray *items; /* (n_items) sequence items or mapping values */
  GPtrArray *keys;  /* (n_items) mapping keys (scalar nodes) */
};

G_DEFINE_BOXED_TYPE (SlimConfigNode, slim_config_node, slim_config_node_ref, slim_config_node_unref)

static SlimConfigNode *
node_new (SlimConfigNodeKind kind, GRefString *file, const yaml_mark_t *mark)
{
  SlimConfigNode *node = g_new0 (SlimConfigNode, 1);

  g_ref_count_init (&node->ref_count);
  node->kind = kind;
  node->file = g_ref_string_acquire (file);
  /* libyaml marks are 0-based; ours are 1-based.  Clamp absurd values. */
  node->line = (guint)MIN (mark->line, (size_t)G_MAXUINT - 1) + 1;
  node->column = (guint)MIN (mark->column, (size_t)G_MAXUINT - 1) + 1;
  node->n_nodes = 1;
  node->height = 1;
  if (kind != SLIM_CONFIG_NODE_SCALAR)
    node->items = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_config_node_unref);
  if (kind == SLIM_CONFIG_NODE_MAPPING)
    node->keys = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_config_node_unref);
  return node;
}

/**
 * slim_config_node_ref:
 * @node: a node
 *
 * Returns: (transfer full): @node
 */
SlimConfigNode *
slim_config_node_ref (SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  g_ref_count_inc (&node->ref_count);
  return node;
}

/**
 * slim_config_node_unref:
 * @node: (transfer full): a node
 *
 * Drops a reference; the subtree is freed with the last one.
 */
void
slim_config_node_unref (SlimConfigNode *node)
{
  g_return_if_fail (node != NULL);
  if (!g_ref_count_dec (&node->ref_count))
    return;
  g_ref_string_release (node->file);
  g_free (node->scalar);
  g_clear_pointer (&node->items, g_ptr_array_unref);
  g_clear_pointer (&node->keys, g_ptr_array_unref);
  g_free (node);
}

SlimConfigNodeKind
slim_config_node_get_kind (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, SLIM_CONFIG_NODE_SCALAR);
  return node->kind;
}

const char *
slim_config_node_describe_kind (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  switch (node->kind)
    {
    case SLIM_CONFIG_NODE_SCALAR:
      return slim_config_node_is_null (node) ? "null" : "scalar";
    case SLIM_CONFIG_NODE_SEQUENCE:
      return "sequence";
    case SLIM_CONFIG_NODE_MAPPING:
      return "mapping";
    }
  return "node";
}

const char *
slim_config_node_get_file (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return node->file;
}

guint
slim_config_node_get_line (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->line;
}

guint
slim_config_node_get_column (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->column;
}

/**
 * slim_config_node_dup_location:
 * @node: a node
 *
 * Returns: (transfer full): "FILE:LINE:COLUMN"
 */
char *
slim_config_node_dup_location (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return g_strdup_printf ("%s:%u:%u", node->file, node->line, node->column);
}

const char *
slim_config_node_get_scalar (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, NULL);
  return node->scalar;
}

SlimConfigScalarStyle
slim_config_node_get_scalar_style (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, SLIM_CONFIG_SCALAR_PLAIN);
  return node->style;
}

gboolean
slim_config_node_is_null (const SlimConfigNode *node)
{
  static const char *const null_words[] = { "", "~", "null", "Null", "NULL" };

  g_return_val_if_fail (node != NULL, FALSE);
  if (node->kind != SLIM_CONFIG_NODE_SCALAR || node->style != SLIM_CONFIG_SCALAR_PLAIN)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (null_words); i++)
    if (strcmp (node->scalar, null_words[i]) == 0)
      return TRUE;
  return FALSE;
}

guint
slim_config_node_get_n_items (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->items != NULL ? node->items->len : 0;
}

SlimConfigNode *
slim_config_node_get_item (const SlimConfigNode *node, guint index)
{
  g_return_val_if_fail (node != NULL, NULL);
  g_return_val_if_fail (node->items != NULL && index < node->items->len, NULL);
  return g_ptr_array_index (node->items, index);
}

SlimConfigNode *
slim_config_node_get_key (const SlimConfigNode *node, guint index)
{
  g_return_val_if_fail (node != NULL, NULL);
  g_return_val_if_fail (node->keys != NULL && index < node->keys->len, NULL);
  return g_ptr_array_index (node->keys, index);
}

SlimConfigNode *
slim_config_node_lookup (const SlimConfigNode *node, const char *key)
{
  g_return_val_if_fail (node != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);
  if (node->kind != SLIM_CONFIG_NODE_MAPPING)
    return NULL;
  for (guint i = 0; i < node->keys->len; i++)
    {
      const SlimConfigNode *k = g_ptr_array_index (node->keys, i);
      if (strcmp (k->scalar, key) == 0)
        return g_ptr_array_index (node->items, i);
    }
  return NULL;
}

guint64
slim_config_node_get_n_nodes (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->n_nodes;
}

guint
slim_config_node_get_height (const SlimConfigNode *node)
{
  g_return_val_if_fail (node != NULL, 0);
  return node->height;
}

static void config_error_valist (GError **error,
                                 const char *file,
                                 guint line,
                                 guint column,
                                 gint code,
                                 const char *format,
                                 va_list args) G_GNUC_PRINTF (6, 0);

static void
config_error_valist (GError **error,
                     const char *file,
                     guint line,
                     guint column,
                     gint code,
                     const char *format,
                     va_list args)
{
  g_autofree char *text = g_strdup_vprintf (format, args);

  if (file != NULL)
    g_set_error (error, SLIM_CONFIG_ERROR, code, "%s:%u:%u: %s", file, line, column, text);
  else
    g_set_error_literal (error, SLIM_CONFIG_ERROR, code, text);
}

void
slim_config_error_at (
    GError **error, const SlimConfigNode *node, gint code, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  config_error_valist (error, node != NULL ? node->file : NULL, node != NULL ? node->line : 0,
                       node != NULL ? node->column : 0, code, format, args);
  va_end (args);
}

/* ---- the loader ---------------------------------------------------- */

typedef struct
{
  SlimConfigNode *node;
  char *anchor;                /* (nullable) anchor to register on completion */
  SlimConfigNode *pending_key; /* mappings: key waiting for its value */
  gboolean pending_merge;      /* the pending key is "<<" */
  GPtrArray *merges;           /* (nullable) merge sources, in order */
  GHashTable *seen;            /* mappings: key text -> key node (borrowed) */
} LoaderFrame;

typedef struct
{
  GRefString *file;
  const char *data; /* the whole input, to locate errors */
  gsize n_bytes;
  GHashTable *anchors; /* anchor name -> node */
  GArray *stack;       /* of LoaderFrame */
  guint64 n_nodes;     /* nodes created plus alias expansions */
  SlimConfigNode *root;
  guint n_documents;
} Loader;

static void
loader_frame_clear (LoaderFrame *frame)
{
  g_clear_pointer (&frame->node, slim_config_node_unref);
  g_clear_pointer (&frame->anchor, g_free);
  g_clear_pointer (&frame->pending_key, slim_config_node_unref);
  g_clear_pointer (&frame->merges, g_ptr_array_unref);
  g_clear_pointer (&frame->seen, g_hash_table_unref);
}

static void
loader_error (Loader *loader, const yaml_mark_t *mark, GError **error, const char *format, ...)
    G_GNUC_PRINTF (4, 5);

static void
loader_error (Loader *loader, const yaml_mark_t *mark, GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  config_error_valist (error, loader->file, (guint)MIN (mark->line, (size_t)G_MAXUINT - 1) + 1,
                       (guint)MIN (mark->column, (size_t)G_MAXUINT - 1) + 1,
                       SLIM_CONFIG_ERROR_PARSE, format, args);
  va_end (args);
}

static gboolean
loader_count (Loader *loader, guint64 n, const yaml_mark_t *mark, GError **error)
{
  if (n > SLIM_CONFIG_MAX_NODES || loader->n_nodes + n > SLIM_CONFIG_MAX_NODES)
    {
      loader_error (loader, mark, error,
                    "the document expands to more than %d nodes (aliases counted at every use)",
                    SLIM_CONFIG_MAX_NODES);
      return FALSE;
    }
  loader->n_nodes += n;
  return TRUE;
}

static gboolean
is_merge_key (const SlimConfigNode *key, const char *tag)
{
  if (tag != NULL && strcmp (tag, YAML_TAG_MERGE) == 0)
    return TRUE;
  return key->style == SLIM_CONFIG_SCALAR_PLAIN && strcmp (key->scalar, "<<") == 0;
}

/* @key is the "<<" key: aliased values share the anchor's location, so
 * a bad merge is reported where it is used. */
static gboolean
check_merge_source (const SlimConfigNode *key, SlimConfigNode *value, GError **error)
{
  if (value->kind == SLIM_CONFIG_NODE_MAPPING)
    return TRUE;
  if (value->kind == SLIM_CONFIG_NODE_SEQUENCE)
    {
      for (guint i = 0; i < value->items->len; i++)
        {
          SlimConfigNode *item = g_ptr_array_index (value->items, i);
          if (item->kind != SLIM_CONFIG_NODE_MAPPING)
            {
              slim_config_error_at (error, key, SLIM_CONFIG_ERROR_PARSE,
                                    "a merge key ('<<') list may only hold mappings, got a %s "
                                    "(item %u)",
                                    slim_config_node_describe_kind (item), i);
              return FALSE;
            }
        }
      return TRUE;
    }
  slim_config_error_at (error, key, SLIM_CONFIG_ERROR_PARSE,
                        "a merge key ('<<') needs a mapping or a list of mappings, got a %s",
                        slim_config_node_describe_kind (value));
  return FALSE;
}

/* Attaches a finished node (transfer full) to the frame on top of the
 * stack, or makes it the document root. */
static gboolean
loader_attach (Loader *loader, SlimConfigNode *node, const char *tag, GError **error)
{
  LoaderFrame *frame;
  SlimConfigNode *mapping;

  if (loader->stack->len == 0)
    {
      g_clear_pointer (&loader->root, slim_config_node_unref);
      loader->root = node;
      return TRUE;
    }
  frame = &g_array_index (loader->stack, LoaderFrame, loader->stack->len - 1);
  frame->node->height = MAX (frame->node->height, node->height + 1);
  if (frame->node->kind == SLIM_CONFIG_NODE_SEQUENCE)
    {
      frame->node->n_nodes += node->n_nodes;
      g_ptr_array_add (frame->node->items, node);
      return TRUE;
    }

  mapping = frame->node;
  if (frame->pending_key == NULL)
    {
      SlimConfigNode *first;

      if (node->kind != SLIM_CONFIG_NODE_SCALAR)
        {
          slim_config_error_at (error, node, SLIM_CONFIG_ERROR_PARSE,
                                "mapping keys must be scalars, got a %s",
                                slim_config_node_describe_kind (node));
          slim_config_node_unref (node);
          return FALSE;
        }
      frame->pending_merge = is_merge_key (node, tag);
      if (!frame->pending_merge
          && (first = g_hash_table_lookup (frame->seen, node->scalar)) != NULL)
        {
          slim_config_error_at (error, node, SLIM_CONFIG_ERROR_PARSE,
                                "duplicate key '%s' (first at line %u, column %u)", node->scalar,
                                first->line, first->column);
          slim_config_node_unref (node);
          return FALSE;
        }
      frame->pending_key = node;
      return TRUE;
    }

  if (frame->pending_merge)
    {
      if (!check_merge_source (frame->pending_key, node, error))
        {
          slim_config_node_unref (node);
          return FALSE;
        }
      if (frame->merges == NULL)
        frame->merges = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_config_node_unref);
      g_ptr_array_add (frame->merges, node);
      g_clear_pointer (&frame->pending_key, slim_config_node_unref);
      frame->pending_merge = FALSE;
      return TRUE;
    }

  g_hash_table_insert (frame->seen, frame->pending_key->scalar, frame->pending_key);
  mapping->n_nodes += frame->pending_key->n_nodes + node->n_nodes;
  g_ptr_array_add (mapping->keys, g_steal_pointer (&frame->pending_key));
  g_ptr_array_add (mapping->items, node);
  return TRUE;
}

static void
merge_one (LoaderFrame *frame, SlimConfigNode *source)
{
  for (guint i = 0; i < source->keys->len; i++)
    {
      SlimConfigNode *key = g_ptr_array_index (source->keys, i);
      SlimConfigNode *value = g_ptr_array_index (source->items, i);

      if (g_hash_table_contains (frame->seen, key->scalar))
        continue; /* explicit keys and earlier merges win */
      frame->node->height = MAX (frame->node->height, value->height + 1);
      g_hash_table_insert (frame->seen, key->scalar, key);
      frame->node->n_nodes += key->n_nodes + value->n_nodes;
      g_ptr_array_add (frame->node->keys, slim_config_node_ref (key));
      g_ptr_array_add (frame->node->items, slim_config_node_ref (value));
    }
}

static void
apply_merges (LoaderFrame *frame)
{
  if (frame->merges == NULL)
    return;
  for (guint i = 0; i < frame->merges->len; i++)
    {
      SlimConfigNode *source = g_ptr_array_index (frame->merges, i);

      if (source->kind == SLIM_CONFIG_NODE_MAPPING)
        merge_one (frame, source);
      else
        for (guint j = 0; j < source->items->len; j++)
          merge_one (frame, g_ptr_array_index (source->items, j));
    }
}

static gboolean
check_collection_tag (Loader *loader,
                      const yaml_char_t *tag,
                      const char *expected,
                      const yaml_mark_t *mark,
                      GError **error)
{
  if (tag == NULL || strcmp ((const char *)tag, "!") == 0
      || strcmp ((const char *)tag, expected) == 0)
    return TRUE;
  loader_error (loader, mark, error, "unsupported YAML tag '%s' (only !!str, !!seq and !!map)",
                (const char *)tag);
  return FALSE;
}

static gboolean
loader_push (Loader *loader,
             SlimConfigNodeKind kind,
             const yaml_char_t *anchor,
             const yaml_mark_t *mark,
             GError **error)
{
  LoaderFrame frame = { 0 };

  if (loader->stack->len >= SLIM_CONFIG_MAX_DEPTH)
    {
      loader_error (loader, mark, error, "nesting deeper than %d levels", SLIM_CONFIG_MAX_DEPTH);
      return FALSE;
    }
  if (!loader_count (loader, 1, mark, error))
    return FALSE;
  frame.node = node_new (kind, loader->file, mark);
  frame.anchor = g_strdup ((const char *)anchor);
  if (kind == SLIM_CONFIG_NODE_MAPPING)
    frame.seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_array_append_val (loader->stack, frame);
  return TRUE;
}

/* A later anchor of the same name replaces the earlier one (YAML 1.2). */
static void
loader_register_anchor (Loader *loader, const char *anchor, SlimConfigNode *node)
{
  if (anchor != NULL)
    g_hash_table_replace (loader->anchors, g_strdup (anchor), slim_config_node_ref (node));
}

static gboolean
loader_pop (Loader *loader, GError **error)
{
  LoaderFrame *top = &g_array_index (loader->stack, LoaderFrame, loader->stack->len - 1);
  LoaderFrame frame = *top;
  SlimConfigNode *node;
  gboolean ok;

  /* The frame now belongs to us: empty the slot so the array's clear
   * function does not free it too. */
  memset (top, 0, sizeof (*top));
  g_array_set_size (loader->stack, loader->stack->len - 1);
  if (frame.node->kind == SLIM_CONFIG_NODE_MAPPING)
    apply_merges (&frame);
  node = g_steal_pointer (&frame.node);
  loader_register_anchor (loader, frame.anchor, node);
  loader_frame_clear (&frame);
  ok = loader_attach (loader, node, NULL, error);
  return ok;
}

static gboolean
loader_scalar (Loader *loader, const yaml_event_t *event, GError **error)
{
  const char *tag = (const char *)event->data.scalar.tag;
  const char *value = (const char *)event->data.scalar.value;
  gsize n_value_bytes = event->data.scalar.length;
  SlimConfigNode *node;

  if (n_value_bytes > SLIM_CONFIG_MAX_SCALAR_BYTES)
    {
      loader_error (loader, &event->start_mark, error,
                    "a scalar of %" G_GSIZE_FORMAT " bytes is longer than the %d allowed",
                    n_value_bytes, SLIM_CONFIG_MAX_SCALAR_BYTES);
      return FALSE;
    }
  if (memchr (value, '\0', n_value_bytes) != NULL)
    {
      loader_error (loader, &event->start_mark, error, "a scalar contains a NUL character");
      return FALSE;
    }
  if (tag != NULL && strcmp (tag, "!") != 0 && strcmp (tag, YAML_TAG_STR) != 0
      && strcmp (tag, YAML_TAG_MERGE) != 0)
    {
      loader_error (loader, &event->start_mark, error,
                    "unsupported YAML tag '%s' (only !!str, !!seq and !!map)", tag);
      return FALSE;
    }
  if (!loader_count (loader, 1, &event->start_mark, error))
    return FALSE;

  node = node_new (SLIM_CONFIG_NODE_SCALAR, loader->file, &event->start_mark);
  node->scalar = g_strndup (value, n_value_bytes);
  if (event->data.scalar.style != YAML_PLAIN_SCALAR_STYLE
      || (tag != NULL && strcmp (tag, YAML_TAG_MERGE) != 0))
    node->style = SLIM_CONFIG_SCALAR_QUOTED;
  loader_register_anchor (loader, (const char *)event->data.scalar.anchor, node);
  return loader_attach (loader, node, tag, error);
}

static gboolean
loader_alias (Loader *loader, const yaml_event_t *event, GError **error)
{
  const char *anchor = (const char *)event->data.alias.anchor;
  SlimConfigNode *target = g_hash_table_lookup (loader->anchors, anchor);

  if (target == NULL)
    {
      /* Also what an alias to an enclosing, unfinished node gets: cycles
       * cannot be built. */
      loader_error (loader, &event->start_mark, error, "undefined alias '*%s'", anchor);
      return FALSE;
    }
  /* Aliases must not nest deeper than the text could: the alias sits one
   * level below the open collections. */
  if (loader->stack->len + target->height > SLIM_CONFIG_MAX_DEPTH + 1)
    {
      loader_error (loader, &event->start_mark, error, "alias '*%s' nests deeper than %d levels",
                    anchor, SLIM_CONFIG_MAX_DEPTH);
      return FALSE;
    }
  if (!loader_count (loader, target->n_nodes, &event->start_mark, error))
    return FALSE;
  return loader_attach (loader, slim_config_node_ref (target), NULL, error);
}

static gboolean
loader_event (Loader *loader, const yaml_event_t *event, GError **error)
{
  switch (event->type)
    {
    case YAML_STREAM_START_EVENT:
    case YAML_STREAM_END_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
      return TRUE;
    case YAML_DOCUMENT_START_EVENT:
      if (++loader->n_documents > 1)
        {
          loader_error (loader, &event->start_mark, error,
                        "a config holds one YAML document, found a second one");
          return FALSE;
        }
      return TRUE;
    case YAML_ALIAS_EVENT:
      return loader_alias (loader, event, error);
    case YAML_SCALAR_EVENT:
      return loader_scalar (loader, event, error);
    case YAML_SEQUENCE_START_EVENT:
      if (!check_collection_tag (loader, event->data.sequence_start.tag, YAML_TAG_SEQ,
                                 &event->start_mark, error))
        return FALSE;
      return loader_push (loader, SLIM_CONFIG_NODE_SEQUENCE, event->data.sequence_start.anchor,
                          &event->start_mark, error);
    case YAML_MAPPING_START_EVENT:
      if (!check_collection_tag (loader, event->data.mapping_start.tag, YAML_TAG_MAP,
                                 &event->start_mark, error))
        return FALSE;
      return loader_push (loader, SLIM_CONFIG_NODE_MAPPING, event->data.mapping_start.anchor,
                          &event->start_mark, error);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      return loader_pop (loader, error);
    }
  return TRUE;
}

/* Checks the input is UTF-8 without NUL bytes; on failure reports the
 * line and column (in characters) of the first bad byte. */
static gboolean
check_utf8 (Loader *loader, GError **error)
{
  const char *end = NULL;
  yaml_mark_t mark = { 0 };

  if (g_utf8_validate_len (loader->data, loader->n_bytes, &end))
    return TRUE;
  for (const char *p = loader->data; p < end; p = g_utf8_next_char (p))
    {
      if (*p == '\n')
        {
          mark.line++;
          mark.column = 0;
        }
      else
        mark.column++;
    }
  if (*end == '\0')
    loader_error (loader, &mark, error, "the file contains a NUL byte");
  else
    loader_error (loader, &mark, error, "the file is not valid UTF-8 (byte 0x%02x)",
                  (guint)(guchar)*end);
  return FALSE;
}

SlimConfigNode *
slim_config_parse_data (const char *data, gsize n_bytes, const char *file_name, GError **error)
{
  Loader loader = { 0 };
  yaml_parser_t parser;
  yaml_mark_t origin = { 0 };
  gboolean ok = TRUE;
  gboolean done = FALSE;

  g_return_val_if_fail (data != NULL || n_bytes == 0, NULL);
  g_return_val_if_fail (file_name != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  loader.file = g_ref_string_new (file_name);
  loader.data = data != NULL ? data : "";
  loader.n_bytes = n_bytes;

  if (n_bytes > SLIM_CONFIG_MAX_FILE_BYTES)
    {
      loader_error (&loader, &origin, error,
                    "the file has %" G_GSIZE_FORMAT " bytes, more than the %d a config may have",
                    n_bytes, SLIM_CONFIG_MAX_FILE_BYTES);
      g_ref_string_release (loader.file);
      return NULL;
    }
  if (!check_utf8 (&loader, error))
    {
      g_ref_string_release (loader.file);
      return NULL;
    }

  loader.anchors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify)slim_config_node_unref);
  loader.stack = g_array_new (FALSE, TRUE, sizeof (LoaderFrame));
  g_array_set_clear_func (loader.stack, (GDestroyNotify)loader_frame_clear);

  if (!yaml_parser_initialize (&parser))
    {
      loader_error (&loader, &origin, error, "libyaml could not allocate its parser");
      g_array_unref (loader.stack);
      g_hash_table_unref (loader.anchors);
      g_ref_string_release (loader.file);
      return NULL;
    }
  yaml_parser_set_input_string (&parser, (const unsigned char *)loader.data, n_bytes);
  yaml_parser_set_encoding (&parser, YAML_UTF8_ENCODING);

  while (ok && !done)
    {
      yaml_event_t event;

      if (!yaml_parser_parse (&parser, &event))
        {
          if (parser.context != NULL)
            loader_error (&loader, &parser.problem_mark, error, "invalid YAML: %s %s",
                          parser.problem != NULL ? parser.problem : "syntax error", parser.context);
          else
            loader_error (&loader, &parser.problem_mark, error, "invalid YAML: %s",
                          parser.problem != NULL ? parser.problem : "syntax error");
          ok = FALSE;
          break;
        }
      done = event.type == YAML_STREAM_END_EVENT;
      ok = loader_event (&loader, &event, error);
      yaml_event_delete (&event);
    }
  yaml_parser_delete (&parser);

  if (ok && loader.root == NULL)
    {
      loader_error (&loader, &origin, error, "the file is empty (no YAML document)");
      ok = FALSE;
    }
  else if (ok && slim_config_node_is_null (loader.root))
    {
      slim_config_error_at (error, loader.root, SLIM_CONFIG_ERROR_PARSE, "the document is empty");
      ok = FALSE;
    }

  g_array_unref (loader.stack);
  g_hash_table_unref (loader.anchors);
  g_ref_string_release (loader.file);
  if (!ok)
    {
      g_clear_pointer (&loader.root, slim_config_node_unref);
      return NULL;
    }
  return loader.root;
}

SlimConfigNode *
slim_config_parse_file (const char *path, GError **error)
{
  g_autofree char *data = NULL; /* (n_alloc_bytes) the file, read so far */
  gsize n_bytes = 0;
  gsize n_alloc_bytes = 64 * 1024;
  FILE *file;
  int saved_errno;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  file = fopen (path, "rb");
  if (file == NULL)
    {
      saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot open %s: %s",
                   path, g_strerror (saved_errno));
      return NULL;
    }
  /* Read at most one byte past the limit: /dev/zero or a FIFO cannot make
   * us read forever, and a huge file is refused without reading it all. */
  data = g_malloc (n_alloc_bytes);
  for (;;)
    {
      gsize n_read;

      if (n_bytes == n_alloc_bytes)
        {
          n_alloc_bytes *= 2;
          data = g_realloc (data, n_alloc_bytes);
        }
      n_read = fread (data + n_bytes, 1, n_alloc_bytes - n_bytes, file);
      n_bytes += n_read;
      if (n_bytes > SLIM_CONFIG_MAX_FILE_BYTES)
        {
          fclose (file);
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_PARSE,
                       "%s:1:1: the file is larger than the %d bytes a config may have", path,
                       SLIM_CONFIG_MAX_FILE_BYTES);
          return NULL;
        }
      if (n_read == 0)
        break;
    }
  if (ferror (file))
    {
      saved_errno = errno;
      fclose (file);
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno), "cannot read %s: %s",
                   path, g_strerror (saved_errno));
      return NULL;
    }
  fclose (file);
  return slim_config_parse_data (data, n_bytes, path, error);
}

/* ---- building trees in code ---------------------------------------------- */

static SlimConfigNode *
node_new_at (SlimConfigNodeKind kind, const SlimConfigNode *at)
{
  SlimConfigNode *node = g_new0 (SlimConfigNode, 1);

  g_ref_count_init (&node->ref_count);
  node->kind = kind;
  node->file = g_ref_string_acquire (at->file);
  node->line = at->line;
  node->column = at->column;
  node->n_nodes = 1;
  node->height = 1;
  if (kind != SLIM_CONFIG_NODE_SCALAR)
    node->items = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_config_node_unref);
  if (kind == SLIM_CONFIG_NODE_MAPPING)
    node->keys = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_config_node_unref);
  return node;
}

SlimConfigNode *
slim_config_node_new_scalar (const SlimConfigNode *at,
                             SlimConfigScalarStyle style,
                             const char *text)
{
  SlimConfigNode *node;

  g_return_val_if_fail (at != NULL, NULL);
  g_return_val_if_fail (text != NULL && g_utf8_validate (text, -1, NULL), NULL);
  node = node_new_at (SLIM_CONFIG_NODE_SCALAR, at);
  node->style = style;
  node->scalar = g_strdup (text);
  return node;
}

SlimConfigNode *
slim_config_node_new_sequence (const SlimConfigNode *at)
{
  g_return_val_if_fail (at != NULL, NULL);
  return node_new_at (SLIM_CONFIG_NODE_SEQUENCE, at);
}

SlimConfigNode *
slim_config_node_new_mapping (const SlimConfigNode *at)
{
  g_return_val_if_fail (at != NULL, NULL);
  return node_new_at (SLIM_CONFIG_NODE_MAPPING, at);
}

void
slim_config_node_append (SlimConfigNode *sequence, SlimConfigNode *item)
{
  g_return_if_fail (sequence != NULL && sequence->kind == SLIM_CONFIG_NODE_SEQUENCE);
  g_return_if_fail (item != NULL);
  sequence->n_nodes += item->n_nodes;
  sequence->height = MAX (sequence->height, item->height + 1);
  g_ptr_array_add (sequence->items, item);
}

void
slim_config_node_insert (SlimConfigNode *mapping, SlimConfigNode *key, SlimConfigNode *value)
{
  g_return_if_fail (mapping != NULL && mapping->kind == SLIM_CONFIG_NODE_MAPPING);
  g_return_if_fail (key != NULL && key->kind == SLIM_CONFIG_NODE_SCALAR);
  g_return_if_fail (value != NULL);
  g_return_if_fail (slim_config_node_lookup (mapping, key->scalar) == NULL);
  mapping->n_nodes += key->n_nodes + value->n_nodes;
  mapping->height = MAX (mapping->height, value->height + 1);
  g_ptr_array_add (mapping->keys, key);
  g_ptr_array_add (mapping->items, value);
}
