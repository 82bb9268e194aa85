/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-writer.c: SlimConfigNode trees back to YAML through
 * libyaml's emitter, edits applied while walking (slim-config-writer.h).
 */
#include "slim-config-writer.h"

#include <string.h>
#include <yaml.h>

#include "slim-error.h"

typedef struct
{
  yaml_emitter_t emitter;
  GString *out;
  const SlimConfigEdit *edits;
  guint n_edits;
  gboolean *used; /* (n_edits) */
  gboolean failed;
} SlimConfigWriter;

static int
writer_output (void *data, unsigned char *buffer, size_t size)
{
  g_string_append_len (data, (const char *)buffer, (gssize)size);
  return 1;
}

static void
writer_emit (SlimConfigWriter *w, yaml_event_t *event)
{
  if (!w->failed && !yaml_emitter_emit (&w->emitter, event))
    w->failed = TRUE;
}

static gboolean
all_scalars (const SlimConfigNode *node)
{
  for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
    if (slim_config_node_get_kind (slim_config_node_get_item (node, i)) != SLIM_CONFIG_NODE_SCALAR)
      return FALSE;
  return TRUE;
}

static void write_node (SlimConfigWriter *w, SlimConfigNode *node, const char *path);

static void
write_scalar (SlimConfigWriter *w, const SlimConfigNode *node)
{
  yaml_event_t event;
  gboolean quoted = slim_config_node_get_scalar_style (node) == SLIM_CONFIG_SCALAR_QUOTED;
  const char *text = slim_config_node_is_null (node) ? "null" : slim_config_node_get_scalar (node);

  yaml_scalar_event_initialize (&event, NULL, NULL, (yaml_char_t *)text, (int)strlen (text),
                                !quoted, quoted,
                                quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
  writer_emit (w, &event);
}

static void
write_key (SlimConfigWriter *w, const char *key)
{
  yaml_event_t event;

  yaml_scalar_event_initialize (&event, NULL, NULL, (yaml_char_t *)key, (int)strlen (key), 1, 1,
                                YAML_PLAIN_SCALAR_STYLE);
  writer_emit (w, &event);
}

/* The edit of kind at path, or -1; marks it used. */
static gint
find_edit (SlimConfigWriter *w, SlimConfigEditKind kind, const char *path, guint from)
{
  for (guint i = from; i < w->n_edits; i++)
    if (w->edits[i].kind == kind && strcmp (w->edits[i].path, path) == 0)
      {
        w->used[i] = TRUE;
        return (gint)i;
      }
  return -1;
}

/* The node at path after SET/REMOVE: NULL when removed. */
static SlimConfigNode *
edited (SlimConfigWriter *w, SlimConfigNode *node, const char *path, gboolean *out_replaced)
{
  gint e;

  *out_replaced = FALSE;
  if (find_edit (w, SLIM_CONFIG_EDIT_REMOVE, path, 0) >= 0)
    return NULL;
  e = find_edit (w, SLIM_CONFIG_EDIT_SET, path, 0);
  if (e >= 0)
    {
      *out_replaced = TRUE;
      return w->edits[e].value;
    }
  return node;
}

static void
write_inserts (SlimConfigWriter *w, const char *path)
{
  for (gint e = find_edit (w, SLIM_CONFIG_EDIT_INSERT, path, 0); e >= 0;
       e = find_edit (w, SLIM_CONFIG_EDIT_INSERT, path, (guint)e + 1))
    write_node (w, w->edits[e].value, NULL);
}

/* path NULL: a node from an edit, written as it is. */
static void
write_sequence (SlimConfigWriter *w, SlimConfigNode *node, const char *path)
{
  yaml_event_t event;
  guint n = slim_config_node_get_n_items (node);

  yaml_sequence_start_event_initialize (&event, NULL, NULL, 1,
                                        all_scalars (node) && n > 0 ? YAML_FLOW_SEQUENCE_STYLE
                                                                    : YAML_BLOCK_SEQUENCE_STYLE);
  writer_emit (w, &event);
  for (guint i = 0; i <= n; i++)
    {
      g_autofree char *item_path = path != NULL ? g_strdup_printf ("%s[%u]", path, i) : NULL;
      if (item_path != NULL)
        write_inserts (w, item_path);
      if (i == n)
        break;
      SlimConfigNode *item = slim_config_node_get_item (node, i);
      gboolean replaced = FALSE;
      if (item_path != NULL)
        item = edited (w, item, item_path, &replaced);
      if (item != NULL)
        write_node (w, item, replaced ? NULL : item_path);
    }
  yaml_sequence_end_event_initialize (&event);
  writer_emit (w, &event);
}

static void
write_mapping (SlimConfigWriter *w, SlimConfigNode *node, const char *path)
{
  yaml_event_t event;
  guint n = slim_config_node_get_n_items (node);

  yaml_mapping_start_event_initialize (&event, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
  writer_emit (w, &event);
  for (guint i = 0; i < n; i++)
    {
      const char *key = slim_config_node_get_scalar (slim_config_node_get_key (node, i));
      SlimConfigNode *value = slim_config_node_get_item (node, i);
      gboolean replaced = FALSE;
      g_autofree char *key_path
          = path == NULL ? NULL
                         : (*path != '\0' ? g_strdup_printf ("%s.%s", path, key) : g_strdup (key));
      if (key_path != NULL)
        value = edited (w, value, key_path, &replaced);
      if (value == NULL)
        continue;
      write_key (w, key);
      write_node (w, value, replaced ? NULL : key_path);
    }
  /* SETs adding a key to this mapping. */
  if (path != NULL)
    for (guint e = 0; e < w->n_edits; e++)
      {
        const SlimConfigEdit *edit = &w->edits[e];
        const char *dot = strrchr (edit->path, '.');
        gsize parent_len = dot != NULL ? (gsize)(dot - edit->path) : 0;
        const char *key = dot != NULL ? dot + 1 : edit->path;

        if (edit->kind != SLIM_CONFIG_EDIT_SET || w->used[e] || strlen (path) != parent_len
            || strncmp (edit->path, path, parent_len) != 0 || strchr (key, '[') != NULL
            || *key == '\0')
          continue;
        w->used[e] = TRUE;
        write_key (w, key);
        write_node (w, edit->value, NULL);
      }
  yaml_mapping_end_event_initialize (&event);
  writer_emit (w, &event);
}

static void
write_node (SlimConfigWriter *w, SlimConfigNode *node, const char *path)
{
  switch (slim_config_node_get_kind (node))
    {
    case SLIM_CONFIG_NODE_SCALAR:
      write_scalar (w, node);
      break;
    case SLIM_CONFIG_NODE_SEQUENCE:
      write_sequence (w, node, path);
      break;
    case SLIM_CONFIG_NODE_MAPPING:
      write_mapping (w, node, path);
      break;
    }
}

char *
slim_config_write (SlimConfigNode *root, const SlimConfigEdit *edits, guint n_edits, GError **error)
{
  SlimConfigWriter w = { 0 };
  yaml_event_t event;
  g_autofree gboolean *used = g_new0 (gboolean, MAX (n_edits, 1)); /* (n_edits) */

  g_return_val_if_fail (root != NULL, NULL);
  g_return_val_if_fail (edits != NULL || n_edits == 0, NULL);
  w.out = g_string_new (NULL);
  w.edits = edits;
  w.n_edits = n_edits;
  w.used = used;
  yaml_emitter_initialize (&w.emitter);
  yaml_emitter_set_output (&w.emitter, writer_output, w.out);
  yaml_emitter_set_unicode (&w.emitter, 1);
  yaml_emitter_set_width (&w.emitter, 100);
  yaml_stream_start_event_initialize (&event, YAML_UTF8_ENCODING);
  writer_emit (&w, &event);
  yaml_document_start_event_initialize (&event, NULL, NULL, NULL, 1);
  writer_emit (&w, &event);
  write_node (&w, root, "");
  yaml_document_end_event_initialize (&event, 1);
  writer_emit (&w, &event);
  yaml_stream_end_event_initialize (&event);
  writer_emit (&w, &event);
  yaml_emitter_delete (&w.emitter);
  if (w.failed)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "the YAML emitter failed: %s",
                   w.emitter.problem != NULL ? w.emitter.problem : "unknown problem");
      g_string_free (w.out, TRUE);
      return NULL;
    }
  for (guint e = 0; e < n_edits; e++)
    if (!used[e])
      {
        slim_config_error_at (error, edits[e].origin, SLIM_CONFIG_ERROR_BAD_VALUE,
                              "'%s' is not in the config%s", edits[e].path,
                              edits[e].kind == SLIM_CONFIG_EDIT_INSERT
                                  ? " (insert needs an existing sequence and 0 <= index <= length)"
                                  : "");
        g_string_free (w.out, TRUE);
        return NULL;
      }
  return g_string_free (w.out, FALSE);
}

gboolean
slim_config_node_equal (const SlimConfigNode *a, const SlimConfigNode *b)
{
  SlimConfigNodeKind kind = slim_config_node_get_kind (a);
  guint n;

  if (kind != slim_config_node_get_kind (b))
    return FALSE;
  if (kind == SLIM_CONFIG_NODE_SCALAR)
    {
      if (slim_config_node_is_null (a) || slim_config_node_is_null (b))
        return slim_config_node_is_null (a) && slim_config_node_is_null (b);
      return slim_config_node_get_scalar_style (a) == slim_config_node_get_scalar_style (b)
             && strcmp (slim_config_node_get_scalar (a), slim_config_node_get_scalar (b)) == 0;
    }
  n = slim_config_node_get_n_items (a);
  if (n != slim_config_node_get_n_items (b))
    return FALSE;
  for (guint i = 0; i < n; i++)
    {
      if (kind == SLIM_CONFIG_NODE_MAPPING
          && strcmp (slim_config_node_get_scalar (slim_config_node_get_key (a, i)),
                     slim_config_node_get_scalar (slim_config_node_get_key (b, i)))
                 != 0)
        return FALSE;
      if (!slim_config_node_equal (slim_config_node_get_item (a, i),
                                   slim_config_node_get_item (b, i)))
        return FALSE;
    }
  return TRUE;
}
