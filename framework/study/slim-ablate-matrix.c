/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ablate-matrix.c: reading and checking an ablation matrix
 * (slim-ablate-matrix.h).
 */
#include "slim-ablate-matrix.h"

#include <string.h>

#include "slim-checkpoint.h"
#include "slim-config-writer.h"
#include "slim-error.h"

#define SLIM_ABLATE_MAX_EDITS 256

static void
variant_free (SlimAblateVariant *v)
{
  g_free (v->name);
  g_free (v->description);
  g_free (v->location);
  g_free (v->config_text);
  g_free (v->config_sha256);
  g_free (v);
}

void
slim_ablate_matrix_free (SlimAblateMatrix *matrix)
{
  if (matrix == NULL)
    return;
  g_free (matrix->path);
  g_free (matrix->sha256);
  g_clear_pointer (&matrix->variants, g_ptr_array_unref);
  g_free (matrix);
}

static gboolean
check_keys (const SlimConfigNode *map, const char *const *valid, const char *what, GError **error)
{
  if (slim_config_node_get_kind (map) != SLIM_CONFIG_NODE_MAPPING)
    {
      slim_config_error_at (error, map, SLIM_CONFIG_ERROR_BAD_VALUE, "%s must be a mapping, not %s",
                            what, slim_config_node_describe_kind (map));
      return FALSE;
    }
  for (guint i = 0; i < slim_config_node_get_n_items (map); i++)
    {
      SlimConfigNode *key = slim_config_node_get_key (map, i);
      if (!g_strv_contains (valid, slim_config_node_get_scalar (key)))
        {
          g_autofree char *choices = g_strjoinv (", ", (char **)valid);
          slim_config_error_at (error, key, SLIM_CONFIG_ERROR_UNKNOWN_KEY,
                                "unknown key '%s' in %s (valid keys: %s)",
                                slim_config_node_get_scalar (key), what, choices);
          return FALSE;
        }
    }
  return TRUE;
}

static const char *
get_string (const SlimConfigNode *map, const char *key, GError **error)
{
  SlimConfigNode *node = slim_config_node_lookup (map, key);

  if (node == NULL)
    return NULL;
  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_SCALAR
      || slim_config_node_is_null (node))
    {
      slim_config_error_at (error, node, SLIM_CONFIG_ERROR_BAD_VALUE, "'%s' must be a string", key);
      return NULL;
    }
  return slim_config_node_get_scalar (node);
}

/* The node at path ("spec.process[1].alpha") or NULL. */
static SlimConfigNode *
resolve (SlimConfigNode *root, const char *path)
{
  SlimConfigNode *node = root;
  const char *p = path;

  while (node != NULL && *p != '\0')
    {
      if (*p == '[')
        {
          char *end = NULL;
          guint64 index = g_ascii_strtoull (p + 1, &end, 10);
          if (end == p + 1 || *end != ']'
              || slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_SEQUENCE
              || index >= slim_config_node_get_n_items (node))
            return NULL;
          node = slim_config_node_get_item (node, (guint)index);
          p = end + 1;
        }
      else
        {
          if (*p == '.')
            p++;
          gsize len = strcspn (p, ".[");
          g_autofree char *key = g_strndup (p, len);
          if (len == 0 || slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_MAPPING)
            return NULL;
          node = slim_config_node_lookup (node, key);
          p += len;
        }
    }
  return node;
}

/* "process[0]" -> "spec.process[0]"; NULL for an empty or malformed path. */
static char *
full_path (const SlimConfigNode *node, GError **error)
{
  const char *text = slim_config_node_get_scalar (node);

  if (slim_config_node_get_kind (node) != SLIM_CONFIG_NODE_SCALAR || text == NULL || *text == '\0'
      || *text == '.' || *text == '[' || strstr (text, "..") != NULL)
    {
      slim_config_error_at (error, node, SLIM_CONFIG_ERROR_BAD_VALUE,
                            "expected a path below spec such as \"process[0].alpha\"");
      return NULL;
    }
  return g_strdup_printf ("spec.%s", text);
}

/* TRUE when path names a process entry, spec.process[N]. */
static gboolean
is_entry_path (const char *path)
{
  return g_regex_match_simple ("^spec\\.process\\[[0-9]+\\]$", path, 0, 0);
}

static gboolean
check_type_scalar (SlimRegistry *registry, const SlimConfigNode *node, GError **error)
{
  const char *name = slim_config_node_get_scalar (node);

  if (slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SCALAR
      && slim_registry_get_desc (registry, SLIM_PLUGIN_KIND_PROCESSOR, name) != NULL)
    return TRUE;
  g_autoptr (GPtrArray) descs = slim_registry_list (registry, SLIM_PLUGIN_KIND_PROCESSOR);
  g_autoptr (GString) choices = g_string_new (NULL);
  for (guint i = 0; i < descs->len; i++)
    g_string_append_printf (choices, "%s%s", i > 0 ? ", " : "",
                            ((const SlimPluginDesc *)g_ptr_array_index (descs, i))->name);
  slim_config_error_at (error, node, SLIM_CONFIG_ERROR_BAD_VALUE,
                        "unknown processor '%s' (valid: %s)", name != NULL ? name : "?",
                        choices->str);
  return FALSE;
}

/* A process entry (mapping with a known type). */
static gboolean
check_entry (SlimRegistry *registry, const SlimConfigNode *entry, GError **error)
{
  SlimConfigNode *type;

  if (slim_config_node_get_kind (entry) != SLIM_CONFIG_NODE_MAPPING
      || (type = slim_config_node_lookup (entry, "type")) == NULL)
    {
      slim_config_error_at (error, entry, SLIM_CONFIG_ERROR_MISSING_KEY,
                            "a process entry must be a mapping with a 'type'");
      return FALSE;
    }
  return check_type_scalar (registry, type, error);
}

/* Processor types an edit writes. */
static gboolean
check_edit_types (SlimRegistry *registry, const SlimConfigEdit *edit, GError **error)
{
  if (edit->kind == SLIM_CONFIG_EDIT_REMOVE)
    return TRUE;
  if (is_entry_path (edit->path))
    return check_entry (registry, edit->value, error);
  if (g_regex_match_simple ("^spec\\.process\\[[0-9]+\\]\\.type$", edit->path, 0, 0))
    return check_type_scalar (registry, edit->value, error);
  if (strcmp (edit->path, "spec.process") == 0
      && slim_config_node_get_kind (edit->value) == SLIM_CONFIG_NODE_SEQUENCE)
    for (guint i = 0; i < slim_config_node_get_n_items (edit->value); i++)
      if (!check_entry (registry, slim_config_node_get_item (edit->value, i), error))
        return FALSE;
  return TRUE;
}

static gboolean
check_config_types (SlimRegistry *registry, SlimConfigNode *root, GError **error)
{
  SlimConfigNode *process = resolve (root, "spec.process");

  if (process == NULL || slim_config_node_get_kind (process) != SLIM_CONFIG_NODE_SEQUENCE)
    return TRUE; /* the pipeline check reports it */
  for (guint i = 0; i < slim_config_node_get_n_items (process); i++)
    if (!check_entry (registry, slim_config_node_get_item (process, i), error))
      return FALSE;
  return TRUE;
}

/* path is inside (or is) other: other followed by '.', '[' or nothing. */
static gboolean
path_within (const char *path, const char *other)
{
  gsize n = strlen (other);

  return strncmp (path, other, n) == 0 && (path[n] == '\0' || path[n] == '.' || path[n] == '[');
}

static gboolean
check_conflicts (const SlimConfigEdit *edits, guint n, GError **error)
{
  for (guint i = 0; i < n; i++)
    for (guint j = 0; j < n; j++)
      {
        const SlimConfigEdit *a = &edits[i], *b = &edits[j];
        if (i == j || a->kind == SLIM_CONFIG_EDIT_INSERT)
          continue;
        /* a replaces or removes a node: nothing else may touch it or
         * what is inside it (inserts before it are fine). */
        if ((strcmp (a->path, b->path) == 0 && b->kind != SLIM_CONFIG_EDIT_INSERT && i < j)
            || (strcmp (a->path, b->path) != 0 && path_within (b->path, a->path)))
          {
            g_autofree char *where = slim_config_node_dup_location (a->origin);
            slim_config_error_at (error, b->origin, SLIM_CONFIG_ERROR_BAD_VALUE,
                                  "conflicting edits: '%s' is also %s by the edit at %s",
                                  b->path + 5,
                                  a->kind == SLIM_CONFIG_EDIT_REMOVE ? "removed" : "set", where);
            return FALSE;
          }
      }
  return TRUE;
}

typedef struct
{
  SlimConfigEdit edits[SLIM_ABLATE_MAX_EDITS];
  char *paths[SLIM_ABLATE_MAX_EDITS];
  guint n;
  GString *description;
} SlimAblateEdits;

static void
edits_clear (SlimAblateEdits *e)
{
  for (guint i = 0; i < e->n; i++)
    g_free (e->paths[i]);
  g_string_free (e->description, TRUE);
}

static gboolean
edits_add (SlimAblateEdits *e,
           SlimConfigEditKind kind,
           const SlimConfigNode *path_node,
           SlimConfigNode *value,
           GError **error)
{
  char *path;

  if (e->n == SLIM_ABLATE_MAX_EDITS)
    {
      slim_config_error_at (error, path_node, SLIM_CONFIG_ERROR_BAD_VALUE,
                            "more than %d edits in one variant", SLIM_ABLATE_MAX_EDITS);
      return FALSE;
    }
  path = full_path (path_node, error);
  if (path == NULL)
    return FALSE;
  e->paths[e->n] = path;
  e->edits[e->n] = (SlimConfigEdit){ kind, path, value, path_node };
  e->n++;
  return TRUE;
}

static const char *
entry_type (const SlimConfigNode *value)
{
  SlimConfigNode *type = slim_config_node_get_kind (value) == SLIM_CONFIG_NODE_MAPPING
                             ? slim_config_node_lookup (value, "type")
                             : NULL;
  return type != NULL ? slim_config_node_get_scalar (type) : NULL;
}

static void
describe (SlimAblateEdits *e, const char *verb, const char *path, const SlimConfigNode *value)
{
  const char *type = value != NULL ? entry_type (value) : NULL;

  if (e->description->len > 0)
    g_string_append (e->description, "; ");
  g_string_append_printf (e->description, "%s %s", verb, path + 5);
  if (type != NULL)
    g_string_append_printf (e->description, " (%s)", type);
  else if (value != NULL && slim_config_node_get_kind (value) == SLIM_CONFIG_NODE_SCALAR)
    g_string_append_printf (e->description, " = %s", slim_config_node_get_scalar (value));
}

/* set / replace: a mapping path -> value. */
static gboolean
read_assignments (SlimAblateEdits *e,
                  SlimConfigNode *start,
                  const SlimConfigNode *map,
                  gboolean must_exist,
                  GError **error)
{
  if (slim_config_node_get_kind (map) != SLIM_CONFIG_NODE_MAPPING)
    {
      slim_config_error_at (error, map, SLIM_CONFIG_ERROR_BAD_VALUE,
                            "'%s' must map paths to values", must_exist ? "replace" : "set");
      return FALSE;
    }
  for (guint i = 0; i < slim_config_node_get_n_items (map); i++)
    {
      SlimConfigNode *key = slim_config_node_get_key (map, i);
      if (!edits_add (e, SLIM_CONFIG_EDIT_SET, key, slim_config_node_get_item (map, i), error))
        return FALSE;
      if (must_exist && resolve (start, e->paths[e->n - 1]) == NULL)
        {
          slim_config_error_at (error, key, SLIM_CONFIG_ERROR_BAD_VALUE,
                                "replace: '%s' is not in the config (use 'set' to add a key)",
                                slim_config_node_get_scalar (key));
          return FALSE;
        }
      describe (e, must_exist ? "replace" : "set", e->paths[e->n - 1],
                slim_config_node_get_item (map, i));
    }
  return TRUE;
}

static gboolean
read_removes (SlimAblateEdits *e, SlimConfigNode *start, SlimConfigNode *node, GError **error)
{
  gboolean list = slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SEQUENCE;
  guint n = list ? slim_config_node_get_n_items (node) : 1;

  for (guint i = 0; i < n; i++)
    {
      SlimConfigNode *path = list ? slim_config_node_get_item (node, i) : node;
      if (!edits_add (e, SLIM_CONFIG_EDIT_REMOVE, path, NULL, error))
        return FALSE;
      SlimConfigNode *target = resolve (start, e->paths[e->n - 1]);
      if (target == NULL)
        {
          slim_config_error_at (error, path, SLIM_CONFIG_ERROR_BAD_VALUE,
                                "remove: '%s' is not in the config",
                                slim_config_node_get_scalar (path));
          return FALSE;
        }
      describe (e, "remove", e->paths[e->n - 1], target);
    }
  return TRUE;
}

static gboolean
read_inserts (SlimAblateEdits *e, SlimConfigNode *node, GError **error)
{
  static const char *const keys[] = { "at", "entry", NULL };
  gboolean list = slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SEQUENCE;
  guint n = list ? slim_config_node_get_n_items (node) : 1;

  for (guint i = 0; i < n; i++)
    {
      SlimConfigNode *item = list ? slim_config_node_get_item (node, i) : node;
      SlimConfigNode *at, *entry;
      if (!check_keys (item, keys, "an insert", error))
        return FALSE;
      at = slim_config_node_lookup (item, "at");
      entry = slim_config_node_lookup (item, "entry");
      if (at == NULL || entry == NULL)
        {
          slim_config_error_at (error, item, SLIM_CONFIG_ERROR_MISSING_KEY,
                                "an insert needs 'at' (e.g. \"process[0]\") and 'entry'");
          return FALSE;
        }
      if (!edits_add (e, SLIM_CONFIG_EDIT_INSERT, at, entry, error))
        return FALSE;
      describe (e, "insert", e->paths[e->n - 1], entry);
    }
  return TRUE;
}

static SlimConfigNode *
load_config (GHashTable *configs, const char *dir, const char *name, GError **error)
{
  g_autofree char *path
      = g_path_is_absolute (name) ? g_strdup (name) : g_build_filename (dir, name, NULL);
  SlimConfigNode *root = g_hash_table_lookup (configs, path);

  if (root != NULL)
    return root;
  root = slim_config_parse_file (path, error);
  if (root != NULL)
    g_hash_table_insert (configs, g_strdup (path), root);
  return root;
}

static gboolean
valid_name (const char *name)
{
  return g_regex_match_simple ("^[A-Za-z0-9._-]{1,64}$", name, 0, 0) && strcmp (name, "float") != 0
         && name[0] != '.';
}

static SlimAblateVariant *
read_variant (SlimRegistry *registry,
              GHashTable *configs,
              const char *dir,
              const char *base,
              SlimConfigNode *node,
              GError **error)
{
  static const char *const keys[]
      = { "name", "description", "config", "set", "replace", "remove", "insert", NULL };
  SlimAblateEdits e = { .description = g_string_new (NULL) };
  SlimAblateVariant *v = NULL;
  const char *name, *config, *text;
  SlimConfigNode *start, *part;
  GError *local = NULL;

  if (!check_keys (node, keys, "a variant", error))
    goto out;
  name = get_string (node, "name", &local);
  if (name == NULL || !valid_name (name))
    {
      if (local != NULL)
        g_propagate_error (error, local);
      else
        slim_config_error_at (error, node, SLIM_CONFIG_ERROR_MISSING_KEY,
                              name == NULL ? "a variant needs a 'name'"
                                           : "variant name '%s': use 1-64 of [A-Za-z0-9._-], "
                                             "not 'float'",
                              name);
      goto out;
    }
  config = get_string (node, "config", &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      goto out;
    }
  if (config == NULL && base == NULL)
    {
      slim_config_error_at (error, node, SLIM_CONFIG_ERROR_MISSING_KEY,
                            "variant '%s' has no 'config' and the matrix has no 'base'", name);
      goto out;
    }
  start = load_config (configs, dir, config != NULL ? config : base, error);
  if (start == NULL)
    goto out;
  if (config != NULL)
    g_string_append_printf (e.description, "config %s", config);
  if (!check_config_types (registry, start, error))
    goto out;
  if (((part = slim_config_node_lookup (node, "replace")) != NULL
       && !read_assignments (&e, start, part, TRUE, error))
      || ((part = slim_config_node_lookup (node, "set")) != NULL
          && !read_assignments (&e, start, part, FALSE, error))
      || ((part = slim_config_node_lookup (node, "remove")) != NULL
          && !read_removes (&e, start, part, error))
      || ((part = slim_config_node_lookup (node, "insert")) != NULL
          && !read_inserts (&e, part, error))
      || !check_conflicts (e.edits, e.n, error))
    goto out;
  for (guint i = 0; i < e.n; i++)
    if (!check_edit_types (registry, &e.edits[i], error))
      goto out;

  v = g_new0 (SlimAblateVariant, 1);
  v->name = g_strdup (name);
  v->location = slim_config_node_dup_location (node);
  v->config_text = slim_config_write (start, e.edits, e.n, error);
  if (v->config_text == NULL)
    {
      g_clear_pointer (&v, variant_free);
      goto out;
    }
  v->config_sha256 = slim_checkpoint_hash_config (v->config_text, strlen (v->config_text));
  text = get_string (node, "description", NULL);
  v->description = g_strdup (text != NULL             ? text
                             : e.description->len > 0 ? e.description->str
                                                      : "base");
out:
  edits_clear (&e);
  return v;
}

SlimAblateMatrix *
slim_ablate_matrix_load (SlimRegistry *registry, const char *path, GError **error)
{
  static const char *const keys[] = { "base", "description", "variants", NULL };
  g_autoptr (SlimConfigNode) root = NULL;
  g_autoptr (GHashTable) configs = NULL;
  g_autoptr (SlimAblateMatrix) matrix = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *data = NULL;
  gsize n_bytes = 0;
  SlimConfigNode *variants;
  const char *base;
  GError *local = NULL;

  g_return_val_if_fail (SLIM_IS_REGISTRY (registry) && path != NULL, NULL);
  if (!g_file_get_contents (path, &data, &n_bytes, error))
    return NULL;
  root = slim_config_parse_data (data, n_bytes, path, error);
  if (root == NULL || !check_keys (root, keys, "the matrix", error))
    return NULL;
  base = get_string (root, "base", &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return NULL;
    }
  variants = slim_config_node_lookup (root, "variants");
  if (variants == NULL || slim_config_node_get_kind (variants) != SLIM_CONFIG_NODE_SEQUENCE
      || slim_config_node_get_n_items (variants) == 0)
    {
      slim_config_error_at (error, variants != NULL ? variants : root,
                            SLIM_CONFIG_ERROR_MISSING_KEY,
                            "the matrix needs 'variants': a non-empty list");
      return NULL;
    }

  dir = g_path_get_dirname (path);
  configs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify)slim_config_node_unref);
  matrix = g_new0 (SlimAblateMatrix, 1);
  matrix->path = g_strdup (path);
  matrix->sha256 = slim_checkpoint_hash_config (data, n_bytes);
  matrix->variants = g_ptr_array_new_with_free_func ((GDestroyNotify)variant_free);
  for (guint i = 0; i < slim_config_node_get_n_items (variants); i++)
    {
      SlimConfigNode *node = slim_config_node_get_item (variants, i);
      SlimAblateVariant *v = read_variant (registry, configs, dir, base, node, error);
      if (v == NULL)
        return NULL;
      for (guint j = 0; j < matrix->variants->len; j++)
        {
          SlimAblateVariant *w = g_ptr_array_index (matrix->variants, j);
          if (strcmp (w->name, v->name) == 0 || strcmp (w->config_sha256, v->config_sha256) == 0)
            {
              slim_config_error_at (error, node, SLIM_CONFIG_ERROR_BAD_VALUE,
                                    strcmp (w->name, v->name) == 0
                                        ? "duplicate variant name '%s' (first at %s)"
                                        : "conflicting variants: '%s' gives the same config as "
                                          "the variant at %s",
                                    v->name, w->location);
              variant_free (v);
              return NULL;
            }
        }
      g_ptr_array_add (matrix->variants, v);
    }
  return g_steal_pointer (&matrix);
}
