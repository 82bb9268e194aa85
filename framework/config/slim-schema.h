/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-schema.h: JSON Schemas (draft 2020-12) generated from the GParamSpecs
 * of the registered plugins.
 *
 * One schema per plugin, named "<kind>-<name>.json" (processor-linear_quant.json,
 * saver-ascendv1_saver.json, dataset-jsonl.json, ...), plus "pipeline.json"
 * for a whole modelslim_v1 config whose process/save items are `oneOf` $refs
 * to the plugin schemas.  Property names are the canonical GLib names
 * (kebab-case, "part-file-size"); the snake_case spelling msModelSlim uses
 * ("part_file_size") is listed too, as a $ref to the canonical entry, since
 * the loader accepts both.
 *
 * The output is deterministic (keys sorted where their order carries no
 * meaning, 2-space indentation, a trailing newline), so the committed
 * schemas/ folder can be compared byte for byte with a fresh generation.
 * Regenerate with:
 *
 *   slimflow plugins --schema --output schemas
 *
 * (see schemas/README.md).
 */
#pragma once

#include <glib-object.h>
#include "slim-registry.h"

G_BEGIN_DECLS

/**
 * SlimSchemaFile:
 * @file_name: "pipeline.json" or "<kind>-<name>.json"
 * @text: the schema, UTF-8 JSON with a trailing newline
 *
 * One generated schema.  Free with slim_schema_file_free().
 */
typedef struct
{
  char *file_name;
  char *text;
} SlimSchemaFile;

/**
 * slim_schema_file_free:
 * @file: (transfer full) (nullable): a generated schema file
 */
void slim_schema_file_free (SlimSchemaFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimSchemaFile, slim_schema_file_free)

/**
 * slim_schema_generate_plugin:
 * @registry: a registry
 * @kind: the plugin kind
 * @name: a plugin name or alias
 * @error: return location for a GError
 *
 * Generates the schema of one plugin.  Fails with SLIM_PLUGIN_ERROR_UNKNOWN_NAME
 * for an unknown name, SLIM_PLUGIN_ERROR_INIT_FAILED for a property type
 * the config loader cannot set.
 *
 * Returns: (transfer full) (nullable): the schema text, or NULL with @error set.
 */
char *slim_schema_generate_plugin (SlimRegistry *registry,
                                   SlimPluginKind kind,
                                   const char *name,
                                   GError **error);

/**
 * slim_schema_generate_pipeline:
 * @registry: a registry
 * @error: return location for a GError
 *
 * Returns: (transfer full) (nullable): the text of pipeline.json, or NULL
 *   with @error set.
 */
char *slim_schema_generate_pipeline (SlimRegistry *registry, GError **error);

/**
 * slim_schema_generate_all:
 * @registry: a registry
 * @error: return location for a GError
 *
 * Generates pipeline.json and one schema per registered plugin (aliases
 * are not repeated), sorted by file name.
 *
 * Returns: (transfer container) (element-type SlimSchemaFile) (nullable):
 *   the files, or NULL with @error set.  Free with g_ptr_array_unref().
 */
GPtrArray *slim_schema_generate_all (SlimRegistry *registry, GError **error);

/**
 * slim_schema_print_all:
 * @registry: a registry
 * @error: return location for a GError
 *
 * What `slimflow plugins --schema` prints without --output: every schema of
 * slim_schema_generate_all() preceded by a "// <file name>" line.
 *
 * Returns: (transfer full) (nullable): the text, or NULL with @error set.
 */
char *slim_schema_print_all (SlimRegistry *registry, GError **error);

/**
 * slim_schema_write_dir:
 * @registry: a registry
 * @dir: the output directory (created if missing)
 * @error: return location for a GError
 *
 * Writes every file of slim_schema_generate_all() into @dir (each file
 * atomically, with g_file_set_contents()).  Stale "*.json" files in @dir
 * that are no longer generated are removed, other files are left alone.
 * `slimflow plugins --schema --output DIR` calls this.
 *
 * Returns: TRUE on success.
 */
gboolean slim_schema_write_dir (SlimRegistry *registry, const char *dir, GError **error);

G_END_DECLS
