/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-registry.h: discovers, loads and indexes plugins.
 *
 * A SlimRegistry is an ordinary object passed explicitly to whoever needs
 * plugins (no process-global registry): tests create their own.  Plugins
 * are loaded only from the directories given to slim_registry_scan_path()
 * or configured for slim_registry_scan_default(), or added from code with
 * slim_registry_add_static().
 *
 * Loading one module, in order (codebase-models.md 8.4):
 *   1. the file name must be slim-<kind>-<name>.so (or the platform's
 *      module suffix) with kind one of processor/saver/runner/dataset;
 *   2. g_module_open (path, G_MODULE_BIND_LOCAL): symbols are bound
 *      immediately, so a missing symbol fails now, not hours into a run;
 *   3. the entry point slim_plugin_<kind>_<name>_get_desc must exist;
 *   4. desc->abi_version == SLIM_PLUGIN_ABI_VERSION, desc->kind and
 *      desc->name match the file name;
 *   5. desc->get_type () is a subtype of the kind's base class;
 *   6. the module is made resident (plugin types are static GTypes and
 *      are never unloaded);
 *   7. name and aliases are inserted; a name or alias already taken by a
 *      plugin of the same kind is an error.
 * Every failure is a SLIM_PLUGIN_ERROR whose message names the file.
 */
#pragma once

#include <glib-object.h>
#include "slim-error.h"
#include "slim-plugin-desc.h"
#include "slim-processor.h"
#include "slim-saver.h"
#include "slim-runner.h"
#include "slim-dataset.h"

G_BEGIN_DECLS

#define SLIM_TYPE_REGISTRY (slim_registry_get_type ())
G_DECLARE_FINAL_TYPE (SlimRegistry, slim_registry, SLIM, REGISTRY, GObject)

/**
 * slim_registry_new:
 *
 * Returns: (transfer full): an empty registry.
 */
SlimRegistry *slim_registry_new (void);

/**
 * slim_registry_scan_path:
 * @self: a registry
 * @dir: a plugin directory
 * @error: return location for a GError
 *
 * Loads every module file (slim-*.so) in @dir and in its subdirectories
 * processors/, savers/, runners/ and datasets/.  Other files are ignored,
 * except files named like a plugin module that fail to load.  Loading
 * continues after a failure; all failures are reported in one error (one
 * line per file; the code is that of the first failure).  Plugins that
 * loaded stay registered.  A missing @dir is a SLIM_PLUGIN_ERROR_OPEN.
 *
 * Returns: TRUE when every module loaded.
 */
gboolean slim_registry_scan_path (SlimRegistry *self, const char *dir, GError **error);

/**
 * slim_registry_scan_default:
 * @self: a registry
 * @error: return location for a GError
 *
 * Scans the configured plugin directories, in this order:
 *   1. every directory in $SLIMFLOW_PLUGIN_PATH (colon separated) when the
 *      variable is set; otherwise the build tree's plugins/ directory when
 *      it exists (running from a build tree);
 *   2. the install directory (libdir/slimflow/plugins), unless
 *      $SLIMFLOW_PLUGIN_SYSTEM_PATH is set: then the directories it lists
 *      instead (empty = none, as the tests use).
 * Missing directories in step 2 are skipped silently; a directory listed
 * in $SLIMFLOW_PLUGIN_PATH that does not exist is an error.  A plugin
 * found in more than one directory is a duplicate (error).
 *
 * Returns: TRUE when every module loaded.
 */
gboolean slim_registry_scan_default (SlimRegistry *self, GError **error);

/**
 * slim_registry_load_module:
 * @self: a registry
 * @path: a module file named slim-<kind>-<name>.so
 * @error: return location for a GError
 *
 * Loads one module (the steps above).
 *
 * Returns: TRUE on success.
 */
gboolean slim_registry_load_module (SlimRegistry *self, const char *path, GError **error);

/**
 * slim_registry_add_static:
 * @self: a registry
 * @desc: (transfer none): a description that outlives @self (usually a
 *   static struct or a plugin's get_desc() result)
 * @error: return location for a GError
 *
 * Registers a plugin linked into the program, with the same checks as a
 * module (ABI version, base class, name syntax, duplicates).
 *
 * Returns: TRUE on success.
 */
gboolean slim_registry_add_static (SlimRegistry *self, const SlimPluginDesc *desc, GError **error);

/**
 * slim_registry_lookup:
 * @self: a registry
 * @kind: the plugin kind
 * @name: a plugin name or alias
 * @error: return location for a GError
 *
 * Returns: the plugin's GType, or G_TYPE_INVALID with a
 *   SLIM_PLUGIN_ERROR_UNKNOWN_NAME error that lists the valid names of
 *   that kind.
 */
GType
slim_registry_lookup (SlimRegistry *self, SlimPluginKind kind, const char *name, GError **error);

/**
 * slim_registry_get_desc:
 * @self: a registry
 * @kind: the plugin kind
 * @name: a plugin name or alias
 *
 * Returns: (transfer none) (nullable): the plugin's description, or NULL.
 */
const SlimPluginDesc *
slim_registry_get_desc (SlimRegistry *self, SlimPluginKind kind, const char *name);

/**
 * slim_registry_list:
 * @self: a registry
 * @kind: the plugin kind
 *
 * Returns: (transfer container) (element-type SlimPluginDesc): the
 *   descriptions of every plugin of @kind (aliases not repeated), sorted by
 *   name.  Free with g_ptr_array_unref().
 */
GPtrArray *slim_registry_list (SlimRegistry *self, SlimPluginKind kind);

/**
 * slim_registry_get_module_path:
 * @self: a registry
 * @kind: the plugin kind
 * @name: a plugin name or alias
 *
 * Returns: (transfer none) (nullable): the file the plugin was loaded
 *   from; NULL for static plugins and unknown names.
 */
const char *
slim_registry_get_module_path (SlimRegistry *self, SlimPluginKind kind, const char *name);

/**
 * slim_registry_new_object:
 * @self: a registry
 * @kind: the plugin kind
 * @name: a plugin name or alias
 * @error: return location for a GError
 *
 * Looks up @name and creates an instance with default properties.
 *
 * Returns: (transfer full) (nullable): the new object, or NULL with error set.
 */
GObject *slim_registry_new_object (SlimRegistry *self,
                                   SlimPluginKind kind,
                                   const char *name,
                                   GError **error);

G_END_DECLS
