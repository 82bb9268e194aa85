/* SPDX-License-Identifier: Apache-2.0
 *
 * mindie-format-saver.c: msModelSlim's mindie_format output (MindIE-SD;
 * modelslim-v1-spec.md 3.2; msModelSlim core/quant_service/modelslim_v1/
 * save/mindie_format.py):
 *
 *   quant_model_weight_<label>.safetensors (part_file_size: 0) or
 *   quant_model_weight-0000i-of-0000N.safetensors + the index JSON,
 *   quant_model_description_<label>.json (a label per tensor and
 *   model_quant_type = the last quantized label written; without any
 *   quantized linear the names stay quant_model_weight.safetensors and
 *   quant_model_description.json), the model's *.json and *.py files.
 *
 * Only W8A8 (static) and per-channel W8A8_DYNAMIC linears can be saved
 * (deq_scale always float32); any other label fails with a message that
 * says to use ascendv1_saver, as msModelSlim's UnsupportedError does.
 * Property (YAML key): part_file_size in GB (2^30 bytes), default 4.
 */
#include "slim-plugin.h"

#include "slim-ascend-writer.h"

#define SLIM_TYPE_MINDIE_FORMAT_SAVER (slim_mindie_format_saver_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimMindieFormatSaver, slim_mindie_format_saver, SLIM, MINDIE_FORMAT_SAVER, SlimSaver)

struct _SlimMindieFormatSaver
{
  SlimSaver parent_instance;

  gint part_file_size; /* GB of 2^30 bytes; 0 = one unsharded file */
  SlimModel *model;    /* between begin and finish */
  SlimAscendWriter *writer;
};

enum
{
  PROP_0,
  PROP_PART_FILE_SIZE,
  N_PROPS
};

#define DEFAULT_PART_FILE_SIZE 4
/* 2^20 GB = 1 PB: far above any model, and the byte count fits in 64 bits. */
#define MAX_PART_FILE_SIZE (1 << 20)

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (SlimMindieFormatSaver, slim_mindie_format_saver, SLIM_TYPE_SAVER)

static gboolean
slim_mindie_format_saver_begin (SlimSaver *saver,
                                SlimModel *model,
                                const char *out_dir,
                                GError **error)
{
  SlimMindieFormatSaver *self = SLIM_MINDIE_FORMAT_SAVER (saver);

  g_clear_pointer (&self->writer, slim_ascend_writer_free);
  self->writer = slim_ascend_writer_new (SLIM_ASCEND_FORMAT_MINDIE, out_dir,
                                         (guint64)self->part_file_size * SLIM_ASCEND_GB_BYTES,
                                         TRUE /* deq_scale always float32 */, error);
  if (self->writer == NULL)
    return FALSE;
  g_set_object (&self->model, model);
  return TRUE;
}

static gboolean
slim_mindie_format_saver_write_layer (SlimSaver *saver, SlimLayer *layer, GError **error)
{
  SlimMindieFormatSaver *self = SLIM_MINDIE_FORMAT_SAVER (saver);

  return slim_ascend_writer_write_layer (self->writer, layer, error);
}

static gboolean
slim_mindie_format_saver_finish (SlimSaver *saver, GError **error)
{
  SlimMindieFormatSaver *self = SLIM_MINDIE_FORMAT_SAVER (saver);
  gboolean ok = slim_ascend_writer_finish (self->writer, slim_model_get_path (self->model), error);

  g_clear_pointer (&self->writer, slim_ascend_writer_free);
  g_clear_object (&self->model);
  return ok;
}

static void
slim_mindie_format_saver_abort (SlimSaver *saver)
{
  SlimMindieFormatSaver *self = SLIM_MINDIE_FORMAT_SAVER (saver);

  /* dropping the writer removes shards not yet renamed into place */
  g_clear_pointer (&self->writer, slim_ascend_writer_free);
  g_clear_object (&self->model);
}

static void
slim_mindie_format_saver_get_property (GObject *object,
                                       guint prop_id,
                                       GValue *value,
                                       GParamSpec *pspec)
{
  SlimMindieFormatSaver *self = SLIM_MINDIE_FORMAT_SAVER (object);

  switch (prop_id)
    {
    case PROP_PART_FILE_SIZE:
      g_value_set_int (value, self->part_file_size);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_mindie_format_saver_set_property (GObject *object,
                                       guint prop_id,
                                       const GValue *value,
                                       GParamSpec *pspec)
{
  SlimMindieFormatSaver *self = SLIM_MINDIE_FORMAT_SAVER (object);

  switch (prop_id)
    {
    case PROP_PART_FILE_SIZE:
      self->part_file_size = g_value_get_int (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_mindie_format_saver_dispose (GObject *object)
{
  SlimMindieFormatSaver *self = SLIM_MINDIE_FORMAT_SAVER (object);

  g_clear_pointer (&self->writer, slim_ascend_writer_free);
  g_clear_object (&self->model);
  G_OBJECT_CLASS (slim_mindie_format_saver_parent_class)->dispose (object);
}

static void
slim_mindie_format_saver_class_init (SlimMindieFormatSaverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimSaverClass *saver_class = SLIM_SAVER_CLASS (klass);

  object_class->get_property = slim_mindie_format_saver_get_property;
  object_class->set_property = slim_mindie_format_saver_set_property;
  object_class->dispose = slim_mindie_format_saver_dispose;
  saver_class->begin = slim_mindie_format_saver_begin;
  saver_class->write_layer = slim_mindie_format_saver_write_layer;
  saver_class->finish = slim_mindie_format_saver_finish;
  saver_class->abort = slim_mindie_format_saver_abort;

  properties[PROP_PART_FILE_SIZE] = g_param_spec_int (
      "part-file-size", "Part file size",
      "Size limit of one weight file in GB (2^30 bytes); 0 writes a single unsharded file.", 0,
      MAX_PART_FILE_SIZE, DEFAULT_PART_FILE_SIZE,
      G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
slim_mindie_format_saver_init (SlimMindieFormatSaver *self)
{
  self->part_file_size = DEFAULT_PART_FILE_SIZE;
}

SLIM_PLUGIN_DEFINE (
    saver,
    mindie_format_saver,
    SLIM_PLUGIN_NO_ALIASES,
    "msModelSlim mindie_format (MindIE-SD): W8A8 and W8A8_DYNAMIC, files named by label",
    slim_mindie_format_saver_get_type)
