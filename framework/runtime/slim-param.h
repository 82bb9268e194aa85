/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-param.h: what a plugin property says beyond its GParamSpec: the
 * config-level flags (required key, non-empty list), the plugin-list
 * property type (the `group` processor's `configs:`) and the default of a
 * string-list property.  This is the declaration side: plugins and the
 * property tables of slim-property.h set these on their pspecs; the YAML
 * loader (slim-config-object.h), the schemas (slim-schema.h) and
 * `slimflow plugins` read them.
 *
 * Most plugins never call these functions directly: the SLIM_PROPERTY_*
 * declarations of slim-property.h do it for them.
 */
#pragma once

#include <glib-object.h>
#include "slim-plugin-desc.h"

G_BEGIN_DECLS

/**
 * SlimParamFlags:
 * @SLIM_PARAM_NONE: no constraint
 * @SLIM_PARAM_REQUIRED: the key must be present in the YAML mapping
 * @SLIM_PARAM_NON_EMPTY: a list (GStrv, flags, plugin list) must not be empty
 *
 * Config-level constraints a GParamSpec cannot express, attached with
 * slim_param_spec_set_flags() and honoured by the loader and the schemas.
 */
typedef enum
{
  SLIM_PARAM_NONE = 0,
  SLIM_PARAM_REQUIRED = 1 << 0,
  SLIM_PARAM_NON_EMPTY = 1 << 1,
} SlimParamFlags;

/**
 * slim_param_spec_set_flags:
 * @pspec: a param spec of a plugin property
 * @flags: the constraints to attach (replaces earlier ones)
 *
 * Call in class_init, before installing @pspec.
 */
void slim_param_spec_set_flags (GParamSpec *pspec, SlimParamFlags flags);

/**
 * slim_param_spec_get_flags:
 * @pspec: a param spec
 *
 * Returns: the flags set with slim_param_spec_set_flags(), or SLIM_PARAM_NONE.
 */
SlimParamFlags slim_param_spec_get_flags (GParamSpec *pspec);

/**
 * SLIM_TYPE_PLUGIN_LIST:
 *
 * Boxed type of a #GPtrArray of plugin #GObjects (copy = g_ptr_array_ref).
 */
typedef GPtrArray SlimPluginList;
GType slim_plugin_list_get_type (void);
#define SLIM_TYPE_PLUGIN_LIST (slim_plugin_list_get_type ())

/**
 * slim_param_spec_plugin_list:
 * @name: canonical property name
 * @nick: short title
 * @blurb: one sentence
 * @kind: the kind of plugin the list holds
 * @flags: GParamFlags
 *
 * Returns: (transfer floating): a boxed pspec of type SLIM_TYPE_PLUGIN_LIST
 *   remembering @kind.
 */
GParamSpec *slim_param_spec_plugin_list (
    const char *name, const char *nick, const char *blurb, SlimPluginKind kind, GParamFlags flags);

/**
 * SLIM_TYPE_OBJECT_LIST:
 *
 * Boxed type of a #GPtrArray of plain configuration #GObjects, all of one
 * type (copy = g_ptr_array_ref): a YAML sequence of mappings, each built
 * as that type (e.g. autoround_quant's `strategies`).
 */
typedef GPtrArray SlimObjectList;
GType slim_object_list_get_type (void);
#define SLIM_TYPE_OBJECT_LIST (slim_object_list_get_type ())

/**
 * slim_param_spec_object_list:
 * @name: canonical property name
 * @nick: short title
 * @blurb: one sentence
 * @element_type: the (instantiable) GObject type of every element
 * @flags: GParamFlags
 *
 * Returns: (transfer floating): a boxed pspec of type SLIM_TYPE_OBJECT_LIST
 *   remembering @element_type.
 */
GParamSpec *slim_param_spec_object_list (
    const char *name, const char *nick, const char *blurb, GType element_type, GParamFlags flags);

/**
 * slim_param_spec_get_object_list_type:
 * @pspec: a param spec
 * @out_type: (out) (optional): the element type
 *
 * Returns: TRUE when @pspec was made by slim_param_spec_object_list().
 */
gboolean slim_param_spec_get_object_list_type (GParamSpec *pspec, GType *out_type);

/**
 * slim_param_spec_get_plugin_kind:
 * @pspec: a param spec
 * @out_kind: (out) (optional): the kind of plugin the list holds
 *
 * Returns: TRUE when @pspec was made by slim_param_spec_plugin_list().
 */
gboolean slim_param_spec_get_plugin_kind (GParamSpec *pspec, SlimPluginKind *out_kind);

/**
 * slim_param_spec_set_default_strv:
 * @pspec: a G_TYPE_STRV param spec
 * @strv: (array zero-terminated=1) (nullable): the value a property takes
 *   when the config does not set it; static storage (not copied)
 *
 * A boxed pspec's own default is always NULL; this records the value the
 * plugin applies instead (e.g. include ["*"]) so the schemas and
 * `slimflow plugins` can show it.  Call in class_init.
 */
void slim_param_spec_set_default_strv (GParamSpec *pspec, const char *const *strv);

/**
 * slim_param_spec_get_default_strv:
 * @pspec: a param spec
 *
 * Returns: (transfer none) (nullable): the default set with
 *   slim_param_spec_set_default_strv(), or NULL.
 */
const char *const *slim_param_spec_get_default_strv (GParamSpec *pspec);

G_END_DECLS
