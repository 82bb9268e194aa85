/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qconfig.h: one quantizer config, msModelSlim's QConfig
 * (core/quantizer/base.py; modelslim-v1-spec.md 2.1):
 *
 *   {dtype, scope, symmetric, method, ext}
 *
 * As in msModelSlim's code (not its docs), dtype, scope, symmetric and
 * method are all required; ext is optional.  Whether the (scheme, method)
 * pair names a registered quantizer is checked by the processor using the
 * config (slim_qscheme_lookup_quantizer), not here.
 */
#pragma once

#include <glib-object.h>
#include "slim-qconfig-ext.h"
#include "slim-qscheme.h"

G_BEGIN_DECLS

#define SLIM_TYPE_QCONFIG (slim_qconfig_get_type ())
G_DECLARE_FINAL_TYPE (SlimQConfig, slim_qconfig, SLIM, QCONFIG, GObject)

/* dtype, scope and symmetric. */
SlimQScheme slim_qconfig_get_scheme (SlimQConfig *self);
SlimQMethod slim_qconfig_get_method (SlimQConfig *self);
/* (transfer none) (nullable): NULL when `ext` was not given. */
SlimQConfigExt *slim_qconfig_get_ext (SlimQConfig *self);

G_END_DECLS
