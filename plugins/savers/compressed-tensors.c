/* SPDX-License-Identifier: Apache-2.0
 *
 * compressed-tensors.c: the `compressed_tensors` saver (the save type
 * msModelSlim registers, format/compressed_tensors_format/compressed_tensors.py):
 * vLLM's compressed-tensors layout, model.safetensors (or
 * model-0000i-of-0000N.safetensors + index) and config.json's
 * quantization_config.  The tensor table, the config and what is refused
 * are in slim-ct-writer.h.
 *
 * Property (YAML key): part_file_size, the shard size in GB of 2^30 bytes
 * (default 4 as msModelSlim's; 0 writes one unsharded file).
 *
 * Where slimflow differs from msModelSlim (which saves W8A8 static and
 * W8A8_DYNAMIC per channel only): WFP8AFP8_DYNAMIC is saved float-quantized
 * (compressed-tensors' FP8_DYNAMIC preset), W8A16 / W4A16 pack-quantized,
 * per channel or per group, symmetric or not; input_zero_point is int8 (the
 * zp_dtype of compressed-tensors) and written for every asymmetric static
 * activation, not float and only when nonzero; several schemes get one
 * group each with their modules as targets, not "Linear" in every group;
 * ignore lists the module names (compressed-tensors' own from_pretrained
 * output) rather than one compressed regex.
 */
#include "slim-plugin.h"

#include "slim-ct-writer.h"

#define SLIM_TYPE_COMPRESSED_TENSORS_SAVER (slim_compressed_tensors_saver_get_type ())
G_DECLARE_FINAL_TYPE (SlimCompressedTensorsSaver,
                      slim_compressed_tensors_saver,
                      SLIM,
                      COMPRESSED_TENSORS_SAVER,
                      SlimSaver)

struct _SlimCompressedTensorsSaver
{
  SlimSaver parent_instance;

  gint part_file_size; /* GB of 2^30 bytes; 0 = one unsharded file */
  SlimModel *model;    /* between begin and finish */
  SlimCtWriter *writer;
};

#define DEFAULT_PART_FILE_SIZE 4
/* 2^20 GB = 1 PB: far above any model, and the byte count fits in 64 bits. */
#define MAX_PART_FILE_SIZE (1 << 20)
#define GB_BYTES (G_GUINT64_CONSTANT (1) << 30)

/* clang-format off */
static const SlimPropertyDecl slim_compressed_tensors_saver_properties[] = {
  SLIM_PROPERTY_INT (
      SlimCompressedTensorsSaver, part_file_size, "part-file-size", "Part file size",
      "Size limit of one weight file in GB (2^30 bytes); 0 writes a single unsharded file.", 0,
      MAX_PART_FILE_SIZE, DEFAULT_PART_FILE_SIZE),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimCompressedTensorsSaver, slim_compressed_tensors_saver, SLIM_TYPE_SAVER)

static void
slim_compressed_tensors_saver_drop (SlimCompressedTensorsSaver *self)
{
  /* dropping an unfinished writer removes its partial files */
  g_clear_pointer (&self->writer, slim_ct_writer_free);
  g_clear_object (&self->model);
}

static gboolean
slim_compressed_tensors_saver_open (SlimCompressedTensorsSaver *self,
                                    SlimModel *model,
                                    const char *out_dir,
                                    GError **error)
{
  const SlimModelConfig *config = slim_model_get_config (model);

  slim_compressed_tensors_saver_drop (self);
  self->writer = slim_ct_writer_new (out_dir, (guint64)self->part_file_size * GB_BYTES,
                                     config->torch_dtype, config->tie_word_embeddings, error);
  if (self->writer == NULL)
    return FALSE;
  g_set_object (&self->model, model);
  return TRUE;
}

static gboolean
slim_compressed_tensors_saver_begin (SlimSaver *saver,
                                     SlimModel *model,
                                     const char *out_dir,
                                     GError **error)
{
  return slim_compressed_tensors_saver_open (SLIM_COMPRESSED_TENSORS_SAVER (saver), model, out_dir,
                                             error);
}

static gboolean
slim_compressed_tensors_saver_write_layer (SlimSaver *saver, SlimLayer *layer, GError **error)
{
  return slim_ct_writer_write_layer (SLIM_COMPRESSED_TENSORS_SAVER (saver)->writer, layer, error);
}

static gboolean
slim_compressed_tensors_saver_finish (SlimSaver *saver, GError **error)
{
  SlimCompressedTensorsSaver *self = SLIM_COMPRESSED_TENSORS_SAVER (saver);
  gboolean ok = slim_ct_writer_finish (self->writer, slim_model_get_path (self->model), error);

  slim_compressed_tensors_saver_drop (self);
  return ok;
}

static void
slim_compressed_tensors_saver_abort (SlimSaver *saver)
{
  slim_compressed_tensors_saver_drop (SLIM_COMPRESSED_TENSORS_SAVER (saver));
}

static GBytes *
slim_compressed_tensors_saver_save_progress (SlimSaver *saver, GError **error)
{
  return slim_ct_writer_save_state (SLIM_COMPRESSED_TENSORS_SAVER (saver)->writer, error);
}

static gboolean
slim_compressed_tensors_saver_resume (
    SlimSaver *saver, SlimModel *model, const char *out_dir, GBytes *progress, GError **error)
{
  SlimCompressedTensorsSaver *self = SLIM_COMPRESSED_TENSORS_SAVER (saver);

  if (!slim_compressed_tensors_saver_open (self, model, out_dir, error))
    return FALSE;
  if (!slim_ct_writer_restore_state (self->writer, progress, error))
    {
      g_prefix_error (error, "cannot resume the output in %s: ", out_dir);
      slim_compressed_tensors_saver_drop (self);
      return FALSE;
    }
  return TRUE;
}

static void
slim_compressed_tensors_saver_dispose (GObject *object)
{
  slim_compressed_tensors_saver_drop (SLIM_COMPRESSED_TENSORS_SAVER (object));
  G_OBJECT_CLASS (slim_compressed_tensors_saver_parent_class)->dispose (object);
}

static void
slim_compressed_tensors_saver_class_init (SlimCompressedTensorsSaverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimSaverClass *saver_class = SLIM_SAVER_CLASS (klass);

  object_class->dispose = slim_compressed_tensors_saver_dispose;
  saver_class->begin = slim_compressed_tensors_saver_begin;
  saver_class->write_layer = slim_compressed_tensors_saver_write_layer;
  saver_class->finish = slim_compressed_tensors_saver_finish;
  saver_class->abort = slim_compressed_tensors_saver_abort;
  saver_class->save_progress = slim_compressed_tensors_saver_save_progress;
  saver_class->resume = slim_compressed_tensors_saver_resume;

  SLIM_PROPERTIES_INSTALL (klass, slim_compressed_tensors_saver_properties);
}

static void
slim_compressed_tensors_saver_init (SlimCompressedTensorsSaver *self)
{
}

SLIM_PLUGIN_DEFINE (saver,
                    compressed_tensors,
                    SLIM_PLUGIN_NO_ALIASES,
                    "vLLM compressed-tensors format: model*.safetensors + config.json "
                    "quantization_config (int-quantized W8A8, pack-quantized W8A16/W4A16, "
                    "float-quantized FP8_DYNAMIC, naive-quantized fp8 W8A16)",
                    slim_compressed_tensors_saver_get_type)
