/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ascend-saver.c: the shared base of the ascendv1 and mindie savers
 * (see slim-ascend-saver.h).
 */
#include "slim-ascend-saver.h"

#include "slim-model.h"
#include "slim-property.h"

typedef struct
{
  gint part_file_size; /* GB of 2^30 bytes; 0 = one unsharded file */
  SlimModel *model;    /* between begin and finish */
  SlimAscendWriter *writer;
} SlimAscendSaverPrivate;

#define DEFAULT_PART_FILE_SIZE 4
/* 2^20 GB = 1 PB: far above any model, and the byte count fits in 64 bits. */
#define MAX_PART_FILE_SIZE (1 << 20)

static const SlimPropertyDecl slim_ascend_saver_properties[] = {
  SLIM_PROPERTY_INT (
      SlimAscendSaverPrivate, part_file_size, "part-file-size", "Part file size",
      "Size limit of one weight file in GB (2^30 bytes); 0 writes a single unsharded file.", 0,
      MAX_PART_FILE_SIZE, DEFAULT_PART_FILE_SIZE),
};

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimAscendSaver, slim_ascend_saver, SLIM_TYPE_SAVER)

static void
slim_ascend_saver_drop (SlimAscendSaver *self)
{
  SlimAscendSaverPrivate *priv = slim_ascend_saver_get_instance_private (self);

  /* dropping an unfinished writer removes its partial files */
  g_clear_pointer (&priv->writer, slim_ascend_writer_free);
  g_clear_object (&priv->model);
}

/* A new writer on out_dir for model, as the subclass's format says. */
static gboolean
slim_ascend_saver_open (SlimAscendSaver *self,
                        SlimModel *model,
                        const char *out_dir,
                        GError **error)
{
  SlimAscendSaverPrivate *priv = slim_ascend_saver_get_instance_private (self);
  SlimAscendSaverClass *klass = SLIM_ASCEND_SAVER_GET_CLASS (self);
  gboolean deq_scale_f32 = klass->deq_scale == SLIM_ASCEND_DEQ_SCALE_F32
                           || slim_model_get_config (model)->torch_dtype == SLIM_DTYPE_BF16;

  slim_ascend_saver_drop (self);
  priv->writer = slim_ascend_writer_new (klass->format, out_dir,
                                         (guint64)priv->part_file_size * SLIM_ASCEND_GB_BYTES,
                                         deq_scale_f32, error);
  if (priv->writer == NULL)
    return FALSE;
  g_set_object (&priv->model, model);
  return TRUE;
}

static gboolean
slim_ascend_saver_begin (SlimSaver *saver, SlimModel *model, const char *out_dir, GError **error)
{
  return slim_ascend_saver_open (SLIM_ASCEND_SAVER (saver), model, out_dir, error);
}

static gboolean
slim_ascend_saver_write_layer (SlimSaver *saver, SlimLayer *layer, GError **error)
{
  SlimAscendSaverPrivate *priv = slim_ascend_saver_get_instance_private (SLIM_ASCEND_SAVER (saver));

  return slim_ascend_writer_write_layer (priv->writer, layer, error);
}

static gboolean
slim_ascend_saver_finish (SlimSaver *saver, GError **error)
{
  SlimAscendSaver *self = SLIM_ASCEND_SAVER (saver);
  SlimAscendSaverPrivate *priv = slim_ascend_saver_get_instance_private (self);
  gboolean ok = slim_ascend_writer_finish (priv->writer, slim_model_get_path (priv->model), error);

  slim_ascend_saver_drop (self);
  return ok;
}

static void
slim_ascend_saver_abort (SlimSaver *saver)
{
  slim_ascend_saver_drop (SLIM_ASCEND_SAVER (saver));
}

static GBytes *
slim_ascend_saver_save_progress (SlimSaver *saver, GError **error)
{
  SlimAscendSaverPrivate *priv = slim_ascend_saver_get_instance_private (SLIM_ASCEND_SAVER (saver));

  return slim_ascend_writer_save_state (priv->writer, error);
}

static gboolean
slim_ascend_saver_resume (
    SlimSaver *saver, SlimModel *model, const char *out_dir, GBytes *progress, GError **error)
{
  SlimAscendSaver *self = SLIM_ASCEND_SAVER (saver);
  SlimAscendSaverPrivate *priv = slim_ascend_saver_get_instance_private (self);

  if (!slim_ascend_saver_open (self, model, out_dir, error))
    return FALSE;
  if (!slim_ascend_writer_restore_state (priv->writer, progress, error))
    {
      g_prefix_error (error, "cannot resume the output in %s: ", out_dir);
      /* keep the interrupted run's files: only forget them here */
      g_clear_pointer (&priv->writer, slim_ascend_writer_free);
      g_clear_object (&priv->model);
      return FALSE;
    }
  return TRUE;
}

static void
slim_ascend_saver_dispose (GObject *object)
{
  slim_ascend_saver_drop (SLIM_ASCEND_SAVER (object));
  G_OBJECT_CLASS (slim_ascend_saver_parent_class)->dispose (object);
}

static void
slim_ascend_saver_class_init (SlimAscendSaverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimSaverClass *saver_class = SLIM_SAVER_CLASS (klass);

  object_class->dispose = slim_ascend_saver_dispose;
  saver_class->begin = slim_ascend_saver_begin;
  saver_class->write_layer = slim_ascend_saver_write_layer;
  saver_class->finish = slim_ascend_saver_finish;
  saver_class->abort = slim_ascend_saver_abort;
  saver_class->save_progress = slim_ascend_saver_save_progress;
  saver_class->resume = slim_ascend_saver_resume;

  SLIM_PROPERTIES_INSTALL_PRIVATE (klass, slim_ascend_saver_properties);
}

static void
slim_ascend_saver_init (SlimAscendSaver *self)
{
}
