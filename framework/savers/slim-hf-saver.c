/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-saver.c: the base of the GPTQ / AWQ savers (see slim-hf-saver.h).
 */
#include "slim-hf-saver.h"

#include "slim-hf-writer.h"
#include "slim-model.h"
#include "slim-property.h"

G_DEFINE_ENUM_TYPE (SlimHfScaleDtype,
                    slim_hf_scale_dtype,
                    G_DEFINE_ENUM_VALUE (SLIM_HF_SCALE_F16, "float16"),
                    G_DEFINE_ENUM_VALUE (SLIM_HF_SCALE_F32, "float32"))

typedef struct
{
  gint part_file_size; /* GB of 2^30 bytes; 0 = one unsharded file */
  gint scale_dtype;    /* SlimHfScaleDtype */
  SlimModel *model;    /* between begin and finish */
  SlimHfWriter *writer;
} SlimHfSaverPrivate;

#define DEFAULT_PART_FILE_SIZE 4
/* 2^20 GB = 1 PB: far above any model, and the byte count fits in 64 bits. */
#define MAX_PART_FILE_SIZE (1 << 20)
#define GB_BYTES (G_GUINT64_CONSTANT (1) << 30)

/* clang-format off */
static const SlimPropertyDecl slim_hf_saver_properties[] = {
  SLIM_PROPERTY_INT (
      SlimHfSaverPrivate, part_file_size, "part-file-size", "Part file size",
      "Size limit of one weight file in GB (2^30 bytes); 0 writes a single unsharded file.", 0,
      MAX_PART_FILE_SIZE, DEFAULT_PART_FILE_SIZE),
  SLIM_PROPERTY_ENUM (
      SlimHfSaverPrivate, scale_dtype, "scale-dtype", "Scale dtype",
      "dtype of the scales tensors: float16 (what GPTQ / AWQ kernels read; slimflow's float32 "
      "scales rounded to nearest even) or float32 (exactly slimflow's deployed weights).",
      slim_hf_scale_dtype_get_type, SLIM_HF_SCALE_F16),
};
/* clang-format on */

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimHfSaver, slim_hf_saver, SLIM_TYPE_SAVER)

static void
slim_hf_saver_drop (SlimHfSaver *self)
{
  SlimHfSaverPrivate *priv = slim_hf_saver_get_instance_private (self);

  /* dropping an unfinished writer removes its partial files */
  g_clear_pointer (&priv->writer, slim_hf_writer_free);
  g_clear_object (&priv->model);
}

static gboolean
slim_hf_saver_open (SlimHfSaver *self, SlimModel *model, const char *out_dir, GError **error)
{
  SlimHfSaverPrivate *priv = slim_hf_saver_get_instance_private (self);
  SlimHfSaverClass *klass = SLIM_HF_SAVER_GET_CLASS (self);

  g_return_val_if_fail (klass->get_format != NULL, FALSE);

  slim_hf_saver_drop (self);
  priv->writer = slim_hf_writer_new (out_dir, klass->get_format (self),
                                     (guint64)priv->part_file_size * GB_BYTES,
                                     priv->scale_dtype == SLIM_HF_SCALE_F16,
                                     slim_model_get_config (model)->tie_word_embeddings, error);
  if (priv->writer == NULL)
    return FALSE;
  g_set_object (&priv->model, model);
  return TRUE;
}

static gboolean
slim_hf_saver_begin (SlimSaver *saver, SlimModel *model, const char *out_dir, GError **error)
{
  return slim_hf_saver_open (SLIM_HF_SAVER (saver), model, out_dir, error);
}

static GBytes *
slim_hf_saver_save_progress (SlimSaver *saver, GError **error)
{
  SlimHfSaverPrivate *priv = slim_hf_saver_get_instance_private (SLIM_HF_SAVER (saver));

  return slim_hf_writer_save_state (priv->writer, error);
}

static gboolean
slim_hf_saver_resume (
    SlimSaver *saver, SlimModel *model, const char *out_dir, GBytes *progress, GError **error)
{
  SlimHfSaver *self = SLIM_HF_SAVER (saver);
  SlimHfSaverPrivate *priv = slim_hf_saver_get_instance_private (self);

  if (!slim_hf_saver_open (self, model, out_dir, error))
    return FALSE;
  if (!slim_hf_writer_restore_state (priv->writer, progress, error))
    {
      g_prefix_error (error, "cannot resume the output in %s: ", out_dir);
      slim_hf_saver_drop (self);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_hf_saver_write_layer (SlimSaver *saver, SlimLayer *layer, GError **error)
{
  SlimHfSaverPrivate *priv = slim_hf_saver_get_instance_private (SLIM_HF_SAVER (saver));

  return slim_hf_writer_write_layer (priv->writer, layer, error);
}

static gboolean
slim_hf_saver_finish (SlimSaver *saver, GError **error)
{
  SlimHfSaver *self = SLIM_HF_SAVER (saver);
  SlimHfSaverPrivate *priv = slim_hf_saver_get_instance_private (self);
  gboolean ok = slim_hf_writer_finish (priv->writer, slim_model_get_path (priv->model), error);

  slim_hf_saver_drop (self);
  return ok;
}

static void
slim_hf_saver_abort (SlimSaver *saver)
{
  slim_hf_saver_drop (SLIM_HF_SAVER (saver));
}

static void
slim_hf_saver_dispose (GObject *object)
{
  slim_hf_saver_drop (SLIM_HF_SAVER (object));
  G_OBJECT_CLASS (slim_hf_saver_parent_class)->dispose (object);
}

static void
slim_hf_saver_class_init (SlimHfSaverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimSaverClass *saver_class = SLIM_SAVER_CLASS (klass);

  object_class->dispose = slim_hf_saver_dispose;
  saver_class->begin = slim_hf_saver_begin;
  saver_class->write_layer = slim_hf_saver_write_layer;
  saver_class->finish = slim_hf_saver_finish;
  saver_class->abort = slim_hf_saver_abort;
  saver_class->save_progress = slim_hf_saver_save_progress;
  saver_class->resume = slim_hf_saver_resume;

  SLIM_PROPERTIES_INSTALL_PRIVATE (klass, slim_hf_saver_properties);
}

static void
slim_hf_saver_init (SlimHfSaver *self)
{
}
