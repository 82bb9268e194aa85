/* SPDX-License-Identifier: Apache-2.0
 *
 * property-fixtures.h: test-local types for the property suite
 * (tests/plugins/test-property.cpp), one SLIM_PROPERTY_* of every kind:
 *
 *   processor prop_types   every property type, on instance fields:
 *     flag     boolean           default true
 *     count    int  -5 .. 5      default 2
 *     even     int   0 .. 100    default 0, a .check refusing odd values
 *     size     uint  0 .. 1000   default 7
 *     big      int64 +-1e12      default 1e10
 *     ratio    double -1 .. 1    default 0.25
 *     label    string            default "none"
 *     path     string            default NULL
 *     patterns strv              default ["*"]
 *     extras   strv              default []
 *     tags     strv              no default (NULL)
 *     dtype    enum SlimQDtype   default int8
 *     qconfig  object SlimQConfig, required
 *     children plugin list of processors, non-empty
 *   processor prop_child   derives the abstract SlimTestPropBase; both keep
 *     their fields in private structs: base {level int 0..9 default 3,
 *     name string default "base"}, child {weight double 0..1 default 0.5,
 *     items strv default ["a", "b"]}
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

GType slim_test_props_processor_get_type (void);
GType slim_test_prop_child_get_type (void);

/* Emitted by SLIM_PLUGIN_DEFINE: the descriptions to pass to
 * slim_registry_add_static. */
const SlimPluginDesc *slim_plugin_processor_prop_types_get_desc (void);
const SlimPluginDesc *slim_plugin_processor_prop_child_get_desc (void);

G_END_DECLS
