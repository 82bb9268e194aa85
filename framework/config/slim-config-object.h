/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-object.h: builds GObjects from YAML mappings, setting each
 * key as a property (codebase-models.md 8.5).
 *
 * Conversion is driven by G_PARAM_SPEC_VALUE_TYPE (pspec):
 *   gboolean              true/false (also True/False/TRUE/FALSE), unquoted
 *   integer types         unquoted decimal, range-checked against the pspec
 *   gfloat/gdouble        unquoted decimal (1e-5, 0.5, 3), finite, range-checked
 *   enums                 a nick (the error lists the valid nicks)
 *   flags                 a list of nicks
 *   gchararray            any scalar but null ("5" and 5 are both the string "5")
 *   GStrv                 a list of scalars
 *   a GObject subtype     a nested mapping, built recursively with the same rules
 *                         (how `qconfig: {act: {...}, weight: {...}}` becomes objects)
 *   SLIM_TYPE_PLUGIN_LIST a list of plugin entries, each resolved by its `type`
 *                         in the registry (the `group` processor's `configs:`)
 * YAML keys are property names; '_' is canonicalized to '-' before lookup,
 * so `group_size` and `group-size` both set "group-size", and messages use
 * the canonical spelling.  Unknown keys (the message lists the valid ones),
 * read-only properties, wrong types, out-of-range numbers, missing required
 * keys and empty lists marked non-empty are errors; nothing is ignored.
 * The object is created with g_object_new_with_properties(), so a
 * half-configured object never exists.
 *
 * Plugin authors declare their properties with slim-property.h (one
 * SLIM_PROPERTY_* line each); the flags (required, non-empty), the
 * plugin-list type and string-list defaults it records are read here
 * through slim-param.h.  A plugin-list property's value is a GPtrArray of
 * the child objects (in YAML order; g_object_get() returns a new reference
 * to the array).
 */
#pragma once

#include <glib-object.h>
#include "slim-config.h"
#include "slim-param.h"
#include "slim-registry.h"

G_BEGIN_DECLS

/**
 * slim_config_object_new:
 * @type: an instantiatable, non-abstract GObject type
 * @node: the mapping whose keys are property names
 * @registry: (nullable): resolves entries of plugin-list properties
 * @label: (nullable): what the object is in messages, e.g. "process[1] (linear_quant)"
 * @ignore_key: (nullable): a key that is not a property (the "type" discriminator)
 * @errors: (element-type GError): every problem found is appended here
 *
 * Builds an object of @type from @node.  All problems are collected, each
 * a SLIM_CONFIG_ERROR "FILE:LINE:COL: LABEL: message".
 *
 * Returns: (transfer full) (nullable): the object, or NULL when errors
 *   were appended.
 */
GObject *slim_config_object_new (GType type,
                                 SlimConfigNode *node,
                                 SlimRegistry *registry,
                                 const char *label,
                                 const char *ignore_key,
                                 GPtrArray *errors);

/**
 * slim_config_plugin_new:
 * @registry: the registry resolving `type`
 * @kind: which kind of plugin the entry is
 * @node: a mapping with a `type` key plus the plugin's properties
 * @where: (nullable): the entry's place, e.g. "process[1]"; the label in
 *   messages becomes "process[1] (linear_quant)"
 * @errors: (element-type GError): every problem found is appended here
 *
 * Resolves `type` (a name or alias) and builds the plugin object with
 * slim_config_object_new().
 *
 * Returns: (transfer full) (nullable): the plugin object, or NULL when
 *   errors were appended.
 */
GObject *slim_config_plugin_new (SlimRegistry *registry,
                                 SlimPluginKind kind,
                                 SlimConfigNode *node,
                                 const char *where,
                                 GPtrArray *errors);

/**
 * slim_config_errors_propagate:
 * @errors: (element-type GError): collected errors
 * @error: return location for a GError
 *
 * Returns: TRUE when @errors is empty; otherwise sets @error to one error
 *   with the domain and code of the first and one line per error.
 */
gboolean slim_config_errors_propagate (GPtrArray *errors, GError **error);

/**
 * slim_config_errors_new:
 *
 * Returns: (transfer full) (element-type GError): an empty array for
 *   collecting errors; it frees them with g_error_free().
 */
GPtrArray *slim_config_errors_new (void);

G_END_DECLS
