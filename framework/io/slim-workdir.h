/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-workdir.h: SlimWorkdir, where a run keeps its files before the
 * output is complete.  Two folders beside --save_path (same filesystem,
 * so the final move is one rename):
 *
 *  - the work area "<save_path>.slimflow-work/": checkpoint.h5, spill.h5
 *    and a note naming the staging folder.  Its name is deterministic so
 *    that --resume finds it again from save_path alone;
 *  - the staging folder "<save_path>.slimflow-tmp-XXXXXX/": the savers
 *    write the output model here.  commit() moves it into place.
 *
 * Rules for what is at save_path (checked when the SlimWorkdir is created,
 * so a run fails before any work, and again at commit):
 *  1. nothing there: the staging folder is renamed to save_path;
 *  2. an empty directory: it is replaced (rename over it);
 *  3. a previous slimflow output, i.e. a directory holding the manifest
 *     ".slimflow-output" and no file missing from that manifest: it is
 *     moved aside, the new output renamed into place, then exactly the
 *     files the manifest lists are deleted (anything that appeared in the
 *     meantime is kept, in "<save_path>.slimflow-old-XXXXXX", with a
 *     warning);
 *  4. anything else (a file, a symlink, a directory with files slimflow
 *     did not write): refused with SLIM_CONFIG_ERROR_BAD_VALUE naming the
 *     first such file.  User files are never deleted.
 * save_path must not be the model folder, inside it, or contain it.
 * commit() writes the manifest into the output before moving it.
 *
 * A failed run calls abort() (removes the staging folder) unless it wants
 * to stay resumable; a completed one calls commit() then
 * remove_work_area().  A killed run leaves both folders for --resume.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define SLIM_WORKDIR_WORK_SUFFIX ".slimflow-work"
#define SLIM_WORKDIR_STAGING_INFIX ".slimflow-tmp-"
#define SLIM_WORKDIR_OLD_INFIX ".slimflow-old-"
#define SLIM_WORKDIR_MANIFEST_NAME ".slimflow-output"

#define SLIM_TYPE_WORKDIR (slim_workdir_get_type ())
G_DECLARE_FINAL_TYPE (SlimWorkdir, slim_workdir, SLIM, WORKDIR, GObject)

/**
 * slim_workdir_new:
 * @save_path: the output folder to produce
 * @model_path: (nullable): the input model folder, for the overlap checks
 * @error: return location for an error
 *
 * Checks the paths (no side effects).
 *
 * Returns: (transfer full) (nullable): the work dir description.
 */
SlimWorkdir *slim_workdir_new (const char *save_path, const char *model_path, GError **error);

/**
 * slim_workdir_prepare:
 * @resume: keep (or create) the work area and reuse the staging folder of
 *   the interrupted run; without it a stale work area and staging folder
 *   of an earlier run are removed first
 *
 * Creates the work area and the staging folder.
 */
gboolean slim_workdir_prepare (SlimWorkdir *self, gboolean resume, GError **error);

/**
 * slim_workdir_get_save_path:
 * Returns: (transfer none): save_path, absolute and lexically canonical.
 */
const char *slim_workdir_get_save_path (SlimWorkdir *self);
/**
 * slim_workdir_get_work_dir:
 * Returns: (transfer none): "<save_path>.slimflow-work" (absolute).
 */
const char *slim_workdir_get_work_dir (SlimWorkdir *self);
/**
 * slim_workdir_get_staging_dir:
 * Returns: (transfer none) (nullable): the staging folder, NULL before
 * prepare() and after commit() or abort().
 */
const char *slim_workdir_get_staging_dir (SlimWorkdir *self);

/**
 * slim_workdir_commit:
 * Syncs every file of the staging folder, writes its manifest and moves it
 * to save_path following the rules above.
 * Returns: TRUE on success; on failure the staging folder is kept.
 */
gboolean slim_workdir_commit (SlimWorkdir *self, GError **error);
/**
 * slim_workdir_abort:
 * Removes the staging folder (nothing else).
 * Returns: TRUE on success.
 */
gboolean slim_workdir_abort (SlimWorkdir *self, GError **error);
/**
 * slim_workdir_remove_work_area:
 * Removes the work area (checkpoint, spill file), if slimflow created it.
 * Returns: TRUE on success.
 */
gboolean slim_workdir_remove_work_area (SlimWorkdir *self, GError **error);

G_END_DECLS
