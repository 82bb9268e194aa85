/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-saver.h: abstract base class of the saver plugins (the `save:`
 * entries of a config), the sink of a quantization run:
 *
 *   begin (model, out_dir)         once, before the first layer
 *   write_layer (layer)            for each processed layer, in order
 *                                  (the embedding and head pseudo-layers too)
 *   finish                         once, after the last layer
 *   abort                          instead of finish when the run fails;
 *                                  removes partial output (optional)
 *
 * Resume (optional, both or neither): after every layer the runner asks
 * save_progress for what the saver has written so far (its files stay in
 * out_dir, which a killed run leaves behind); a resumed run calls resume
 * instead of begin with those bytes, then goes on with write_layer for the
 * next layer.  resume must make out_dir look exactly as it did when the
 * progress was saved (the killed run may have written more after it).
 *
 * Callers use the public wrappers, which check arguments, enforce that
 * order (a call out of order is a SLIM_PIPELINE_ERROR_FAILED; a missing
 * required vfunc a SLIM_PLUGIN_ERROR_INIT_FAILED) and enforce "a gboolean
 * vfunc returns FALSE if and only if it sets error" (g_critical and a
 * failure otherwise).  A saver object is used for one run.
 */
#pragma once

#include <glib-object.h>
#include "slim-layer.h"
#include "slim-model.h"

G_BEGIN_DECLS

#define SLIM_TYPE_SAVER (slim_saver_get_type ())
G_DECLARE_DERIVABLE_TYPE (SlimSaver, slim_saver, SLIM, SAVER, GObject)

/**
 * SlimSaverClass:
 * @begin: prepares @out_dir for @model (required)
 * @write_layer: writes one processed layer (required)
 * @finish: completes the output, e.g. writes the index (required)
 * @abort: drops partial output after a failure (optional, defaults to
 *   doing nothing)
 * @save_progress: serializes what was written so far and makes it durable
 *   (fsync) (optional)
 * @resume: like begin, continuing from @progress in the same @out_dir
 *   (optional; the bytes come from a file: check them)
 */
struct _SlimSaverClass
{
  GObjectClass parent_class;

  gboolean (*begin) (SlimSaver *self, SlimModel *model, const char *out_dir, GError **error);
  gboolean (*write_layer) (SlimSaver *self, SlimLayer *layer, GError **error);
  gboolean (*finish) (SlimSaver *self, GError **error);
  void (*abort) (SlimSaver *self);
  GBytes *(*save_progress) (SlimSaver *self, GError **error);
  gboolean (*resume) (
      SlimSaver *self, SlimModel *model, const char *out_dir, GBytes *progress, GError **error);
};

/**
 * slim_saver_begin:
 * @self: a saver, not started yet
 * @model: (transfer none): the model being quantized
 * @out_dir: the output directory
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set (the saver stays unstarted).
 */
gboolean slim_saver_begin (SlimSaver *self, SlimModel *model, const char *out_dir, GError **error);

/**
 * slim_saver_write_layer:
 * @self: a started saver
 * @layer: (transfer none): a processed layer
 * @error: return location for a GError
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_saver_write_layer (SlimSaver *self, SlimLayer *layer, GError **error);

/**
 * slim_saver_finish:
 * @self: a started saver
 * @error: return location for a GError
 *
 * Returns: TRUE when the output is complete; FALSE with @error set.
 */
gboolean slim_saver_finish (SlimSaver *self, GError **error);

/**
 * slim_saver_abort:
 * @self: a saver
 *
 * Drops partial output of a started saver; does nothing otherwise.
 */
void slim_saver_abort (SlimSaver *self);

/* TRUE when the plugin implements save_progress and resume. */
gboolean slim_saver_can_resume (SlimSaver *self);

/**
 * slim_saver_save_progress:
 * @self: a started saver
 * @error: return location for a GError (SLIM_PIPELINE_ERROR_INCOMPATIBLE
 *   when the plugin cannot resume)
 *
 * Returns: (transfer full) (nullable): the progress; NULL with @error set.
 */
GBytes *slim_saver_save_progress (SlimSaver *self, GError **error);

/**
 * slim_saver_resume:
 * @self: a saver, not started yet
 * @model: (transfer none): the model being quantized
 * @out_dir: the output directory of the interrupted run
 * @progress: (transfer none): what save_progress returned in that run
 * @error: return location for a GError
 *
 * Starts the saver as begin does, continuing the interrupted output.
 *
 * Returns: TRUE on success; FALSE with @error set (the saver stays unstarted).
 */
gboolean slim_saver_resume (
    SlimSaver *self, SlimModel *model, const char *out_dir, GBytes *progress, GError **error);

/* YAML type name / description of the registered plugin, or NULL.
 * transfer none. */
const char *slim_saver_get_type_name (SlimSaver *self);
const char *slim_saver_get_description (SlimSaver *self);

G_END_DECLS
