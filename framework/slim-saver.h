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
 */
struct _SlimSaverClass
{
  GObjectClass parent_class;

  gboolean (*begin) (SlimSaver *self, SlimModel *model, const char *out_dir, GError **error);
  gboolean (*write_layer) (SlimSaver *self, SlimLayer *layer, GError **error);
  gboolean (*finish) (SlimSaver *self, GError **error);
  void (*abort) (SlimSaver *self);
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

/* YAML type name / description of the registered plugin, or NULL.
 * transfer none. */
const char *slim_saver_get_type_name (SlimSaver *self);
const char *slim_saver_get_description (SlimSaver *self);

G_END_DECLS
