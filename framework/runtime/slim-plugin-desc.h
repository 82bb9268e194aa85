/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-plugin-desc.h: the plugin kinds and the static description every
 * plugin module exports (see slim-plugin.h for how a plugin declares
 * itself and slim-registry.h for how it is loaded).  Kept apart from
 * slim-plugin.h so that the registry and the config loader can use these
 * types without including everything a plugin sees.
 */
#pragma once

#include <glib-object.h>
#include "slim-version.h" /* SLIM_PLUGIN_ABI_VERSION (generated) */

G_BEGIN_DECLS

/**
 * SlimPluginKind:
 * @SLIM_PLUGIN_KIND_PROCESSOR: a #SlimProcessor (nick "processor")
 * @SLIM_PLUGIN_KIND_SAVER: a #SlimSaver (nick "saver")
 * @SLIM_PLUGIN_KIND_RUNNER: a #SlimRunner (nick "runner")
 * @SLIM_PLUGIN_KIND_DATASET: a #SlimDataset (nick "dataset")
 */
typedef enum
{
  SLIM_PLUGIN_KIND_PROCESSOR,
  SLIM_PLUGIN_KIND_SAVER,
  SLIM_PLUGIN_KIND_RUNNER,
  SLIM_PLUGIN_KIND_DATASET,
} SlimPluginKind;

#define SLIM_PLUGIN_N_KINDS 4

GType slim_plugin_kind_get_type (void);
#define SLIM_TYPE_PLUGIN_KIND (slim_plugin_kind_get_type ())

/* "processor", "saver", "runner", "dataset"; NULL for an invalid kind. */
const char *slim_plugin_kind_to_string (SlimPluginKind kind);
/* Parses a nick (or its plural, "processors"); FALSE when unknown. */
gboolean slim_plugin_kind_from_string (const char *str, SlimPluginKind *out_kind);
/* The abstract base class GType of a kind (SLIM_TYPE_PROCESSOR, ...). */
GType slim_plugin_kind_get_base_type (SlimPluginKind kind);

/**
 * SlimPluginDesc:
 * @abi_version: SLIM_PLUGIN_ABI_VERSION the plugin was built with (slim-version.h
 *   says which changes bump it)
 * @kind: which base class the plugin's type derives from
 * @name: the YAML `type:` name, [a-z0-9_]+ (e.g. "linear_quant")
 * @aliases: (nullable): NULL-terminated other accepted names
 *   (msModelSlim spellings such as "iter_smooth")
 * @description: one line shown by `slimflow plugins`
 * @get_type: returns the plugin's GType (registers it on first call)
 *
 * Static description of one plugin; it lives as long as the process.
 */
typedef struct
{
  guint abi_version;
  SlimPluginKind kind;
  const char *name;
  const char *const *aliases;
  const char *description;
  GType (*get_type) (void);
} SlimPluginDesc;

/* The plugin description a registered type was created from (set by the
 * registry when the plugin is added; GTypes are process-global, so when
 * one type is added under several names the first registration wins);
 * NULL for unregistered types.  Looks through parent types, so a subclass
 * of a plugin type reports the plugin.  transfer none. */
const SlimPluginDesc *slim_plugin_type_get_desc (GType type);

G_END_DECLS
