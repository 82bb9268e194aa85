/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-registry.c: plugin discovery and loading (see slim-registry.h for
 * the load steps and the search order).
 *
 * Each registry keeps, per plugin kind, one hash table from every name
 * and alias to an entry (the desc, its GType and the module path).  The
 * GType -> desc association is process-global (GType qdata), because
 * GTypes themselves are process-global: it lets every plugin object find
 * its YAML name (slim_processor_get_type_name and friends).
 */
#include "slim-registry.h"

#include <string.h>
#include <gio/gio.h>
#include <gmodule.h>

/* Process-global: GType -> const SlimPluginDesc* (see slim_plugin_type_get_desc). */
static GQuark
slim_plugin_desc_quark (void)
{
  return g_quark_from_static_string ("slim-plugin-desc");
}

G_DEFINE_ENUM_TYPE (SlimPluginKind,
                    slim_plugin_kind,
                    G_DEFINE_ENUM_VALUE (SLIM_PLUGIN_KIND_PROCESSOR, "processor"),
                    G_DEFINE_ENUM_VALUE (SLIM_PLUGIN_KIND_SAVER, "saver"),
                    G_DEFINE_ENUM_VALUE (SLIM_PLUGIN_KIND_RUNNER, "runner"),
                    G_DEFINE_ENUM_VALUE (SLIM_PLUGIN_KIND_DATASET, "dataset"))

static const char *const kind_names[SLIM_PLUGIN_N_KINDS] = {
  [SLIM_PLUGIN_KIND_PROCESSOR] = "processor",
  [SLIM_PLUGIN_KIND_SAVER] = "saver",
  [SLIM_PLUGIN_KIND_RUNNER] = "runner",
  [SLIM_PLUGIN_KIND_DATASET] = "dataset",
};

/* Subdirectories of a plugin dir that are scanned too (meson's layout). */
static const char *const kind_subdirs[] = { "processors", "savers", "runners", "datasets", NULL };

typedef struct
{
  const SlimPluginDesc *desc;
  GType type;
  char *module_path; /* NULL for static plugins */
} SlimRegistryEntry;

struct _SlimRegistry
{
  GObject parent_instance;

  GPtrArray *entries;                       /* (element-type SlimRegistryEntry) owned */
  GHashTable *by_name[SLIM_PLUGIN_N_KINDS]; /* name or alias -> SlimRegistryEntry* (borrowed) */
  GHashTable *loaded_paths;                 /* canonical module paths loaded already */
};

G_DEFINE_FINAL_TYPE (SlimRegistry, slim_registry, G_TYPE_OBJECT)

static void
slim_registry_entry_free (SlimRegistryEntry *entry)
{
  g_free (entry->module_path);
  g_free (entry);
}

static void
slim_registry_finalize (GObject *object)
{
  SlimRegistry *self = SLIM_REGISTRY (object);

  for (guint k = 0; k < SLIM_PLUGIN_N_KINDS; k++)
    g_clear_pointer (&self->by_name[k], g_hash_table_unref);
  g_clear_pointer (&self->entries, g_ptr_array_unref);
  g_clear_pointer (&self->loaded_paths, g_hash_table_unref);

  G_OBJECT_CLASS (slim_registry_parent_class)->finalize (object);
}

static void
slim_registry_class_init (SlimRegistryClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_registry_finalize;
}

static void
slim_registry_init (SlimRegistry *self)
{
  self->entries = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_registry_entry_free);
  for (guint k = 0; k < SLIM_PLUGIN_N_KINDS; k++)
    self->by_name[k] = g_hash_table_new (g_str_hash, g_str_equal);
  self->loaded_paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

SlimRegistry *
slim_registry_new (void)
{
  return g_object_new (SLIM_TYPE_REGISTRY, NULL);
}

/* ---- plugin kinds ------------------------------------------------------ */

static gboolean
kind_is_valid (SlimPluginKind kind)
{
  return (guint)kind < SLIM_PLUGIN_N_KINDS;
}

const char *
slim_plugin_kind_to_string (SlimPluginKind kind)
{
  return kind_is_valid (kind) ? kind_names[kind] : NULL;
}

gboolean
slim_plugin_kind_from_string (const char *str, SlimPluginKind *out_kind)
{
  g_return_val_if_fail (str != NULL, FALSE);

  for (guint k = 0; k < SLIM_PLUGIN_N_KINDS; k++)
    {
      gsize len = strlen (kind_names[k]);
      if (strncmp (str, kind_names[k], len) == 0
          && (str[len] == '\0' || (str[len] == 's' && str[len + 1] == '\0')))
        {
          if (out_kind != NULL)
            *out_kind = (SlimPluginKind)k;
          return TRUE;
        }
    }
  return FALSE;
}

GType
slim_plugin_kind_get_base_type (SlimPluginKind kind)
{
  switch (kind)
    {
    case SLIM_PLUGIN_KIND_PROCESSOR:
      return SLIM_TYPE_PROCESSOR;
    case SLIM_PLUGIN_KIND_SAVER:
      return SLIM_TYPE_SAVER;
    case SLIM_PLUGIN_KIND_RUNNER:
      return SLIM_TYPE_RUNNER;
    case SLIM_PLUGIN_KIND_DATASET:
      return SLIM_TYPE_DATASET;
    }
  return G_TYPE_INVALID;
}

const SlimPluginDesc *
slim_plugin_type_get_desc (GType type)
{
  for (GType t = type; t != G_TYPE_INVALID; t = g_type_parent (t))
    {
      const SlimPluginDesc *desc = g_type_get_qdata (t, slim_plugin_desc_quark ());
      if (desc != NULL)
        return desc;
    }
  return NULL;
}

/* ---- checks ------------------------------------------------------------ */

/* Plugin names and aliases: [a-z][a-z0-9_]*, so that the entry-point
 * symbol derived from the file name is a valid C identifier. */
static gboolean
name_is_valid (const char *name)
{
  if (name == NULL || !g_ascii_islower (name[0]))
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!(g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '_'))
      return FALSE;
  return TRUE;
}

/* origin: the module path or "static plugin 'name'", prefixed to messages. */
static gboolean
check_desc (const SlimPluginDesc *desc, const char *origin, GError **error)
{
  if (desc->abi_version != SLIM_PLUGIN_ABI_VERSION)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_ABI_MISMATCH,
                   "%s: plugin ABI version %u, this slimflow expects %u (rebuild the plugin)",
                   origin, desc->abi_version, (guint)SLIM_PLUGIN_ABI_VERSION);
      return FALSE;
    }
  if (!kind_is_valid (desc->kind))
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_WRONG_KIND,
                   "%s: invalid plugin kind %d", origin, (int)desc->kind);
      return FALSE;
    }
  if (!name_is_valid (desc->name))
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s: invalid plugin name '%s' (expected [a-z][a-z0-9_]*)", origin,
                   desc->name != NULL ? desc->name : "(null)");
      return FALSE;
    }
  for (guint i = 0; desc->aliases != NULL && desc->aliases[i] != NULL; i++)
    if (!name_is_valid (desc->aliases[i]) || strcmp (desc->aliases[i], desc->name) == 0)
      {
        g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                     "%s: invalid alias '%s' of plugin '%s'", origin, desc->aliases[i], desc->name);
        return FALSE;
      }
  if (desc->description == NULL || desc->description[0] == '\0'
      || strchr (desc->description, '\n') != NULL)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s: plugin '%s' needs a one-line description", origin, desc->name);
      return FALSE;
    }
  if (desc->get_type == NULL)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s: plugin '%s' has no get_type function", origin, desc->name);
      return FALSE;
    }
  return TRUE;
}

/* The name or alias of desc already taken in self, or NULL. */
static const char *
find_taken_name (SlimRegistry *self, const SlimPluginDesc *desc, SlimRegistryEntry **out_owner)
{
  GHashTable *names = self->by_name[desc->kind];

  *out_owner = g_hash_table_lookup (names, desc->name);
  if (*out_owner != NULL)
    return desc->name;
  for (guint i = 0; desc->aliases != NULL && desc->aliases[i] != NULL; i++)
    {
      *out_owner = g_hash_table_lookup (names, desc->aliases[i]);
      if (*out_owner != NULL)
        return desc->aliases[i];
    }
  /* Two aliases of the same plugin may not repeat either. */
  for (guint i = 0; desc->aliases != NULL && desc->aliases[i] != NULL; i++)
    for (guint j = 0; j < i; j++)
      if (strcmp (desc->aliases[i], desc->aliases[j]) == 0)
        return desc->aliases[i];
  return NULL;
}

static gboolean
check_unique (SlimRegistry *self, const SlimPluginDesc *desc, const char *origin, GError **error)
{
  SlimRegistryEntry *owner = NULL;
  const char *taken = find_taken_name (self, desc, &owner);

  if (taken == NULL)
    return TRUE;
  if (owner == NULL)
    g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_DUPLICATE_NAME,
                 "%s: %s '%s' lists alias '%s' twice", origin, kind_names[desc->kind], desc->name,
                 taken);
  else
    g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_DUPLICATE_NAME,
                 "%s: %s name '%s' is already taken by %s '%s' (%s)", origin,
                 kind_names[desc->kind], taken, kind_names[desc->kind], owner->desc->name,
                 owner->module_path != NULL ? owner->module_path : "static plugin");
  return FALSE;
}

/* Calls get_type and checks the result derives from the kind's base. */
static GType
resolve_type (const SlimPluginDesc *desc, const char *origin, GError **error)
{
  GType base = slim_plugin_kind_get_base_type (desc->kind);
  GType type = desc->get_type ();

  if (type == G_TYPE_INVALID)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s: get_type of %s '%s' returned G_TYPE_INVALID", origin,
                   kind_names[desc->kind], desc->name);
      return G_TYPE_INVALID;
    }
  if (!g_type_is_a (type, base) || type == base)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_WRONG_KIND,
                   "%s: type %s of %s '%s' is not a subclass of %s", origin, g_type_name (type),
                   kind_names[desc->kind], desc->name, g_type_name (base));
      return G_TYPE_INVALID;
    }
  if (G_TYPE_IS_ABSTRACT (type))
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s: type %s of %s '%s' is abstract", origin, g_type_name (type),
                   kind_names[desc->kind], desc->name);
      return G_TYPE_INVALID;
    }
  return type;
}

/* Takes ownership of module_path. */
static void
insert_entry (SlimRegistry *self, const SlimPluginDesc *desc, GType type, char *module_path)
{
  SlimRegistryEntry *entry = g_new0 (SlimRegistryEntry, 1);
  GHashTable *names = self->by_name[desc->kind];

  entry->desc = desc;
  entry->type = type;
  entry->module_path = module_path;
  g_ptr_array_add (self->entries, entry);

  g_hash_table_insert (names, (gpointer)desc->name, entry);
  for (guint i = 0; desc->aliases != NULL && desc->aliases[i] != NULL; i++)
    g_hash_table_insert (names, (gpointer)desc->aliases[i], entry);

  /* First registration wins: a type keeps the YAML name it was first
   * registered under, whichever registry later adds it again. */
  if (g_type_get_qdata (type, slim_plugin_desc_quark ()) == NULL)
    g_type_set_qdata (type, slim_plugin_desc_quark (), (gpointer)desc);
}

gboolean
slim_registry_add_static (SlimRegistry *self, const SlimPluginDesc *desc, GError **error)
{
  g_autofree char *origin = NULL;
  GType type;

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (desc != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  origin = g_strdup_printf ("static plugin '%s'", desc->name != NULL ? desc->name : "(null)");
  if (!check_desc (desc, origin, error) || !check_unique (self, desc, origin, error))
    return FALSE;
  type = resolve_type (desc, origin, error);
  if (type == G_TYPE_INVALID)
    return FALSE;
  insert_entry (self, desc, type, NULL);
  return TRUE;
}

/* ---- modules ----------------------------------------------------------- */

/* Splits "slim-<kind>-<name>.<suffix>" into kind and name. */
static gboolean
parse_module_name (const char *basename, SlimPluginKind *out_kind, char **out_name)
{
  const char *suffix = "." G_MODULE_SUFFIX;
  gsize len = strlen (basename);
  gsize suffix_len = strlen (suffix);

  if (!g_str_has_prefix (basename, "slim-") || len <= suffix_len
      || strcmp (basename + len - suffix_len, suffix) != 0)
    return FALSE;

  for (guint k = 0; k < SLIM_PLUGIN_N_KINDS; k++)
    {
      const char *rest = basename + strlen ("slim-");
      gsize kind_len = strlen (kind_names[k]);
      if (strncmp (rest, kind_names[k], kind_len) == 0 && rest[kind_len] == '-')
        {
          const char *name = rest + kind_len + 1;
          gsize name_len = (gsize)(basename + len - suffix_len - name);
          g_autofree char *copy = g_strndup (name, name_len);
          if (!name_is_valid (copy))
            return FALSE;
          *out_kind = (SlimPluginKind)k;
          *out_name = g_steal_pointer (&copy);
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
is_module_file_name (const char *basename)
{
  return g_str_has_prefix (basename, "slim-") && g_str_has_suffix (basename, "." G_MODULE_SUFFIX);
}

gboolean
slim_registry_load_module (SlimRegistry *self, const char *path, GError **error)
{
  g_autofree char *canonical = NULL;
  g_autofree char *basename = NULL;
  g_autofree char *name = NULL;
  g_autofree char *symbol = NULL;
  SlimPluginKind kind;
  GModule *module;
  gpointer symbol_ptr = NULL;
  const SlimPluginDesc *(*get_desc) (void);
  const SlimPluginDesc *desc;
  GType type;

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  canonical = g_canonicalize_filename (path, NULL);
  if (g_hash_table_contains (self->loaded_paths, canonical))
    return TRUE; /* the same file twice (e.g. a directory listed twice) */

  basename = g_path_get_basename (canonical);
  if (!parse_module_name (basename, &kind, &name))
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_OPEN,
                   "%s: not a plugin module name (expected slim-<kind>-<name>.%s with kind "
                   "processor, saver, runner or dataset and name [a-z][a-z0-9_]*)",
                   canonical, G_MODULE_SUFFIX);
      return FALSE;
    }
  if (!g_file_test (canonical, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_OPEN, "%s: no such plugin file",
                   canonical);
      return FALSE;
    }

  /* No G_MODULE_BIND_LAZY: unresolved symbols fail here, not mid-run. */
  module = g_module_open (canonical, G_MODULE_BIND_LOCAL);
  if (module == NULL)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_OPEN,
                   "%s: cannot load plugin module: %s", canonical, g_module_error ());
      return FALSE;
    }

  symbol = g_strdup_printf ("slim_plugin_%s_%s_get_desc", kind_names[kind], name);
  if (!g_module_symbol (module, symbol, &symbol_ptr) || symbol_ptr == NULL)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_NO_ENTRY_POINT,
                   "%s: no entry point %s () (a plugin ends with SLIM_PLUGIN_DEFINE)", canonical,
                   symbol);
      g_module_close (module);
      return FALSE;
    }
  get_desc = (const SlimPluginDesc *(*)(void))symbol_ptr;
  desc = get_desc ();
  if (desc == NULL)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s: %s () returned NULL", canonical, symbol);
      g_module_close (module);
      return FALSE;
    }
  if (!check_desc (desc, canonical, error))
    {
      g_module_close (module);
      return FALSE;
    }
  if (desc->kind != kind)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_WRONG_KIND,
                   "%s: file name says %s but the plugin declares itself a %s", canonical,
                   kind_names[kind], kind_names[desc->kind]);
      g_module_close (module);
      return FALSE;
    }
  if (strcmp (desc->name, name) != 0)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s: file name says %s '%s' but the plugin is named '%s'", canonical,
                   kind_names[kind], name, desc->name);
      g_module_close (module);
      return FALSE;
    }
  /* Duplicates are rejected before get_type () registers any type, so
   * the rejected module can still be unloaded. */
  if (!check_unique (self, desc, canonical, error))
    {
      g_module_close (module);
      return FALSE;
    }

  /* From here the module may have registered static GTypes, whose class
   * functions live in it: it must never be unloaded, even on failure. */
  g_module_make_resident (module);
  type = resolve_type (desc, canonical, error);
  if (type == G_TYPE_INVALID)
    return FALSE;

  g_debug ("loaded %s '%s' (%s) from %s", kind_names[kind], desc->name, g_type_name (type),
           canonical);
  g_hash_table_add (self->loaded_paths, g_strdup (canonical));
  insert_entry (self, desc, type, g_steal_pointer (&canonical));
  return TRUE;
}

/* ---- scanning ---------------------------------------------------------- */

/* Collects the failures of a scan into one error. */
typedef struct
{
  gint first_code;
  guint n_failed;
  GString *lines;
} ScanFailures;

static void
scan_failures_add (ScanFailures *failures, GError *error)
{
  if (failures->n_failed == 0)
    failures->first_code = error->code;
  failures->n_failed++;
  g_string_append_printf (failures->lines, "\n  %s", error->message);
  g_error_free (error);
}

static gboolean
scan_failures_report (ScanFailures *failures, GError **error)
{
  gboolean ok = failures->n_failed == 0;

  if (!ok)
    g_set_error (error, SLIM_PLUGIN_ERROR, failures->first_code,
                 "%u plugin module%s failed to load:%s", failures->n_failed,
                 failures->n_failed == 1 ? "" : "s", failures->lines->str);
  g_string_free (failures->lines, TRUE);
  failures->lines = NULL;
  return ok;
}

static int
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* Loads every module file directly in dir (sorted, so failures and
 * duplicate reports are reproducible). */
static void
scan_one_dir (SlimRegistry *self, const char *dir, ScanFailures *failures)
{
  g_autoptr (GDir) handle = NULL;
  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  GError *local_error = NULL;
  const char *entry;

  handle = g_dir_open (dir, 0, &local_error);
  if (handle == NULL)
    {
      scan_failures_add (failures, g_error_new (SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_OPEN,
                                                "%s: cannot read plugin directory: %s", dir,
                                                local_error->message));
      g_error_free (local_error);
      return;
    }
  while ((entry = g_dir_read_name (handle)) != NULL)
    {
      char *path;
      if (!is_module_file_name (entry))
        continue;
      path = g_build_filename (dir, entry, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        g_free (path);
      else
        g_ptr_array_add (files, path);
    }
  g_ptr_array_sort (files, compare_strings);
  for (guint i = 0; i < files->len; i++)
    if (!slim_registry_load_module (self, g_ptr_array_index (files, i), &local_error))
      scan_failures_add (failures, g_steal_pointer (&local_error));
}

static void
scan_dir_tree (SlimRegistry *self, const char *dir, ScanFailures *failures)
{
  scan_one_dir (self, dir, failures);
  for (guint i = 0; kind_subdirs[i] != NULL; i++)
    {
      g_autofree char *sub = g_build_filename (dir, kind_subdirs[i], NULL);
      if (g_file_test (sub, G_FILE_TEST_IS_DIR))
        scan_one_dir (self, sub, failures);
    }
}

gboolean
slim_registry_scan_path (SlimRegistry *self, const char *dir, GError **error)
{
  ScanFailures failures = { 0, 0, g_string_new (NULL) };

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (dir != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_string_free (failures.lines, TRUE);
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_OPEN,
                   "%s: plugin directory does not exist", dir);
      return FALSE;
    }
  scan_dir_tree (self, dir, &failures);
  return scan_failures_report (&failures, error);
}

gboolean
slim_registry_scan_default (SlimRegistry *self, GError **error)
{
  ScanFailures failures = { 0, 0, g_string_new (NULL) };
  const char *user_path = g_getenv ("SLIMFLOW_PLUGIN_PATH");
  const char *system_path = g_getenv ("SLIMFLOW_PLUGIN_SYSTEM_PATH");

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  /* 1. The user's directories, or the build tree when run from one. */
  if (user_path != NULL)
    {
      g_auto (GStrv) dirs = g_strsplit (user_path, G_SEARCHPATH_SEPARATOR_S, -1);
      for (guint i = 0; dirs[i] != NULL; i++)
        {
          if (dirs[i][0] == '\0')
            continue;
          if (!g_file_test (dirs[i], G_FILE_TEST_IS_DIR))
            {
              GError *missing = g_error_new (SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_OPEN,
                                             "%s: plugin directory (from SLIMFLOW_PLUGIN_PATH) "
                                             "does not exist",
                                             dirs[i]);
              scan_failures_add (&failures, missing);
              continue;
            }
          scan_dir_tree (self, dirs[i], &failures);
        }
    }
  else if (g_file_test (SLIM_BUILD_PLUGINDIR, G_FILE_TEST_IS_DIR))
    scan_dir_tree (self, SLIM_BUILD_PLUGINDIR, &failures);

  /* 2. The installed plugins, or the system path override. */
  if (system_path != NULL)
    {
      g_auto (GStrv) dirs = g_strsplit (system_path, G_SEARCHPATH_SEPARATOR_S, -1);
      for (guint i = 0; dirs[i] != NULL; i++)
        if (dirs[i][0] != '\0' && g_file_test (dirs[i], G_FILE_TEST_IS_DIR))
          scan_dir_tree (self, dirs[i], &failures);
    }
  else if (g_file_test (SLIM_INSTALL_PLUGINDIR, G_FILE_TEST_IS_DIR))
    scan_dir_tree (self, SLIM_INSTALL_PLUGINDIR, &failures);

  return scan_failures_report (&failures, error);
}

/* ---- queries ----------------------------------------------------------- */

static SlimRegistryEntry *
find_entry (SlimRegistry *self, SlimPluginKind kind, const char *name)
{
  if (!kind_is_valid (kind) || name == NULL)
    return NULL;
  return g_hash_table_lookup (self->by_name[kind], name);
}

GType
slim_registry_lookup (SlimRegistry *self, SlimPluginKind kind, const char *name, GError **error)
{
  SlimRegistryEntry *entry;
  g_autoptr (GPtrArray) names = NULL;
  g_autofree char *joined = NULL;
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), G_TYPE_INVALID);
  g_return_val_if_fail (kind_is_valid (kind), G_TYPE_INVALID);
  g_return_val_if_fail (name != NULL, G_TYPE_INVALID);
  g_return_val_if_fail (error == NULL || *error == NULL, G_TYPE_INVALID);

  entry = find_entry (self, kind, name);
  if (entry != NULL)
    return entry->type;

  names = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, self->by_name[kind]);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (names, key);
  g_ptr_array_sort (names, compare_strings);
  g_ptr_array_add (names, NULL);
  joined = g_strjoinv (", ", (char **)names->pdata);
  g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_UNKNOWN_NAME,
               "unknown %s '%s'; valid %ss: %s", kind_names[kind], name, kind_names[kind],
               joined[0] != '\0' ? joined : "(none loaded)");
  return G_TYPE_INVALID;
}

const SlimPluginDesc *
slim_registry_get_desc (SlimRegistry *self, SlimPluginKind kind, const char *name)
{
  SlimRegistryEntry *entry;

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), NULL);

  entry = find_entry (self, kind, name);
  return entry != NULL ? entry->desc : NULL;
}

const char *
slim_registry_get_module_path (SlimRegistry *self, SlimPluginKind kind, const char *name)
{
  SlimRegistryEntry *entry;

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), NULL);

  entry = find_entry (self, kind, name);
  return entry != NULL ? entry->module_path : NULL;
}

static int
compare_descs (gconstpointer a, gconstpointer b)
{
  const SlimPluginDesc *da = *(const SlimPluginDesc *const *)a;
  const SlimPluginDesc *db = *(const SlimPluginDesc *const *)b;
  return strcmp (da->name, db->name);
}

GPtrArray *
slim_registry_list (SlimRegistry *self, SlimPluginKind kind)
{
  GPtrArray *descs;

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), NULL);
  g_return_val_if_fail (kind_is_valid (kind), NULL);

  descs = g_ptr_array_new ();
  for (guint i = 0; i < self->entries->len; i++)
    {
      SlimRegistryEntry *entry = g_ptr_array_index (self->entries, i);
      if (entry->desc->kind == kind)
        g_ptr_array_add (descs, (gpointer)entry->desc);
    }
  g_ptr_array_sort (descs, compare_descs);
  return descs;
}

GObject *
slim_registry_new_object (SlimRegistry *self, SlimPluginKind kind, const char *name, GError **error)
{
  GType type;

  g_return_val_if_fail (SLIM_IS_REGISTRY (self), NULL);

  type = slim_registry_lookup (self, kind, name, error);
  if (type == G_TYPE_INVALID)
    return NULL;
  return g_object_new (type, NULL);
}
