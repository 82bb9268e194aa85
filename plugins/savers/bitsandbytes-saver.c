/* SPDX-License-Identifier: Apache-2.0
 *
 * bitsandbytes-saver.c: the `bitsandbytes_saver` saver (slimflow's; msModelSlim
 * has no Hugging Face 4-bit saver, and its ascendv1 output of NF4 lacks the
 * absmax): the folder transformers loads with load_in_4bit NF4 weights,
 * model.safetensors (or model-0000i-of-0000N.safetensors + index) and
 * config.json's quantization_config.  The tensor table, the config and what
 * is refused are in slim-bnb-writer.h.
 *
 * Property (YAML key): part_file_size, the shard size in GB of 2^30 bytes
 * (default 4; 0 writes one unsharded file).
 */
#include "slim-plugin.h"

#include "slim-bnb-writer.h"

#define SLIM_TYPE_BITSANDBYTES_SAVER (slim_bitsandbytes_saver_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimBitsandbytesSaver, slim_bitsandbytes_saver, SLIM, BITSANDBYTES_SAVER, SlimSaver)

struct _SlimBitsandbytesSaver
{
  SlimSaver parent_instance;

  gint part_file_size; /* GB of 2^30 bytes; 0 = one unsharded file */
  SlimModel *model;    /* between begin and finish */
  SlimBnbWriter *writer;
};

#define DEFAULT_PART_FILE_SIZE 4
/* 2^20 GB = 1 PB: far above any model, and the byte count fits in 64 bits. */
#define MAX_PART_FILE_SIZE (1 << 20)
#define GB_BYTES (G_GUINT64_CONSTANT (1) << 30)

/* clang-format off */
static const SlimPropertyDecl slim_bitsandbytes_saver_properties[] = {
  SLIM_PROPERTY_INT (
      SlimBitsandbytesSaver, part_file_size, "part-file-size", "Part file size",
      "Size limit of one weight file in GB (2^30 bytes); 0 writes a single unsharded file.", 0,
      MAX_PART_FILE_SIZE, DEFAULT_PART_FILE_SIZE),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimBitsandbytesSaver, slim_bitsandbytes_saver, SLIM_TYPE_SAVER)

static void
slim_bitsandbytes_saver_drop (SlimBitsandbytesSaver *self)
{
  /* dropping an unfinished writer removes its partial files */
  g_clear_pointer (&self->writer, slim_bnb_writer_free);
  g_clear_object (&self->model);
}

static gboolean
slim_bitsandbytes_saver_open (SlimBitsandbytesSaver *self,
                              SlimModel *model,
                              const char *out_dir,
                              GError **error)
{
  const SlimModelConfig *config = slim_model_get_config (model);

  slim_bitsandbytes_saver_drop (self);
  self->writer = slim_bnb_writer_new (out_dir, (guint64)self->part_file_size * GB_BYTES,
                                      config->torch_dtype, config->tie_word_embeddings, error);
  if (self->writer == NULL)
    return FALSE;
  g_set_object (&self->model, model);
  return TRUE;
}

static gboolean
slim_bitsandbytes_saver_begin (SlimSaver *saver,
                               SlimModel *model,
                               const char *out_dir,
                               GError **error)
{
  return slim_bitsandbytes_saver_open (SLIM_BITSANDBYTES_SAVER (saver), model, out_dir, error);
}

static gboolean
slim_bitsandbytes_saver_write_layer (SlimSaver *saver, SlimLayer *layer, GError **error)
{
  return slim_bnb_writer_write_layer (SLIM_BITSANDBYTES_SAVER (saver)->writer, layer, error);
}

static gboolean
slim_bitsandbytes_saver_finish (SlimSaver *saver, GError **error)
{
  SlimBitsandbytesSaver *self = SLIM_BITSANDBYTES_SAVER (saver);
  gboolean ok = slim_bnb_writer_finish (self->writer, slim_model_get_path (self->model), error);

  slim_bitsandbytes_saver_drop (self);
  return ok;
}

static void
slim_bitsandbytes_saver_abort (SlimSaver *saver)
{
  slim_bitsandbytes_saver_drop (SLIM_BITSANDBYTES_SAVER (saver));
}

static GBytes *
slim_bitsandbytes_saver_save_progress (SlimSaver *saver, GError **error)
{
  return slim_bnb_writer_save_state (SLIM_BITSANDBYTES_SAVER (saver)->writer, error);
}

static gboolean
slim_bitsandbytes_saver_resume (
    SlimSaver *saver, SlimModel *model, const char *out_dir, GBytes *progress, GError **error)
{
  SlimBitsandbytesSaver *self = SLIM_BITSANDBYTES_SAVER (saver);

  if (!slim_bitsandbytes_saver_open (self, model, out_dir, error))
    return FALSE;
  if (!slim_bnb_writer_restore_state (self->writer, progress, error))
    {
      g_prefix_error (error, "cannot resume the output in %s: ", out_dir);
      slim_bitsandbytes_saver_drop (self);
      return FALSE;
    }
  return TRUE;
}

static void
slim_bitsandbytes_saver_dispose (GObject *object)
{
  slim_bitsandbytes_saver_drop (SLIM_BITSANDBYTES_SAVER (object));
  G_OBJECT_CLASS (slim_bitsandbytes_saver_parent_class)->dispose (object);
}

static void
slim_bitsandbytes_saver_class_init (SlimBitsandbytesSaverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimSaverClass *saver_class = SLIM_SAVER_CLASS (klass);

  object_class->dispose = slim_bitsandbytes_saver_dispose;
  saver_class->begin = slim_bitsandbytes_saver_begin;
  saver_class->write_layer = slim_bitsandbytes_saver_write_layer;
  saver_class->finish = slim_bitsandbytes_saver_finish;
  saver_class->abort = slim_bitsandbytes_saver_abort;
  saver_class->save_progress = slim_bitsandbytes_saver_save_progress;
  saver_class->resume = slim_bitsandbytes_saver_resume;

  SLIM_PROPERTIES_INSTALL (klass, slim_bitsandbytes_saver_properties);
}

static void
slim_bitsandbytes_saver_init (SlimBitsandbytesSaver *self)
{
}

SLIM_PLUGIN_DEFINE (saver,
                    bitsandbytes_saver,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Hugging Face bitsandbytes 4-bit format: model*.safetensors with NF4 "
                    "weights (packed codes, absmax, quant_map, quant_state) + config.json "
                    "quantization_config (load_in_4bit, nf4)",
                    slim_bitsandbytes_saver_get_type)
