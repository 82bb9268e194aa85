/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-datadir.h: the data slimflow ships (calibration text in lab_calib/,
 * best-practice YAMLs in practices/) and how a run finds it.
 *
 * The data folder is, in this order: $SLIMFLOW_DATA_DIR when set; the
 * source tree's examples/ folder when it exists (running from a build
 * tree; SLIM_SOURCE_DATADIR is compiled in); the installed
 * <datadir>/slimflow (SLIM_INSTALL_DATADIR).
 *
 * spec.dataset (spec 4.1, with slimflow's search path) resolves to: the
 * name itself when it is absolute or names an existing file relative to
 * the current directory; else <calib_dir>/<name> (--calib_dir, then
 * $SLIMFLOW_CALIB_DIR); else <data folder>/lab_calib/<name>.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define SLIM_DATADIR_ENV "SLIMFLOW_DATA_DIR"
#define SLIM_CALIB_DIR_ENV "SLIMFLOW_CALIB_DIR"

/**
 * slim_datadir_get:
 *
 * Returns: (transfer full) (nullable): the data folder (see above), or NULL
 *   when none exists.
 */
char *slim_datadir_get (void);

/**
 * slim_datadir_resolve_dataset:
 * @name: spec.dataset as written
 * @calib_dir: (nullable): the --calib_dir option
 * @error: return location for a GError
 *
 * Returns: (transfer full) (nullable): the path of an existing regular
 *   file, or NULL with a G_FILE_ERROR_NOENT error listing every place
 *   looked at.
 */
char *slim_datadir_resolve_dataset (const char *name, const char *calib_dir, GError **error);

G_END_DECLS
