/* SPDX-License-Identifier: Apache-2.0
 *
 * ascendv1-saver.c: msModelSlim's ascendv1 output format (modelslim-v1-spec.md 3.1;
 * msModelSlim core/quant_service/modelslim_v1/save/ascendv1.py), the
 * format vLLM-Ascend and MindIE load:
 *
 *   quant_model_weights.safetensors (part_file_size: 0) or
 *   quant_model_weights-0000i-of-0000N.safetensors + the index JSON,
 *   quant_model_description.json (a label per tensor, version "1.0.0",
 *   model_quant_type by msModelSlim's priority list, group_size, metadata,
 *   optional), the model's *.json, *.py, *.txt and *.jinja files with
 *   quantization_config removed from config.json.
 *
 * Property (YAML key): part_file_size, the shard size in GB (2^30 bytes),
 * an integer as in msModelSlim (default 4; 0 writes one unsharded file).
 * deq_scale of W8A8 is int64 (the float32 bit pattern) unless the model's
 * torch_dtype is bfloat16, then float32.  msModelSlim's unused `ext`
 * mapping is not accepted.  The tensor table is in slim-ascend-writer.h.
 */
#include "slim-plugin.h"

#include "slim-ascend-writer.h"

#define SLIM_TYPE_ASCENDV1_SAVER (slim_ascendv1_saver_get_type ())
G_DECLARE_FINAL_TYPE (SlimAscendv1Saver, slim_ascendv1_saver, SLIM, ASCENDV1_SAVER, SlimSaver)

struct _SlimAscendv1Saver
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

G_DEFINE_FINAL_TYPE (SlimAscendv1Saver, slim_ascendv1_saver, SLIM_TYPE_SAVER)

static gboolean
slim_ascendv1_saver_begin (SlimSaver *saver, SlimModel *model, const char *out_dir, GError **error)
{
  SlimAscendv1Saver *self = SLIM_ASCENDV1_SAVER (saver);
  gboolean deq_scale_f32 = slim_model_get_config (model)->torch_dtype == SLIM_DTYPE_BF16;

  g_clear_pointer (&self->writer, slim_ascend_writer_free);
  self->writer = slim_ascend_writer_new (SLIM_ASCEND_FORMAT_ASCENDV1, out_dir,
                                         (guint64)self->part_file_size * SLIM_ASCEND_GB_BYTES,
                                         deq_scale_f32, error);
  if (self->writer == NULL)
    return FALSE;
  g_set_object (&self->model, model);
  return TRUE;
}

static gboolean
slim_ascendv1_saver_write_layer (SlimSaver *saver, SlimLayer *layer, GError **error)
{
  SlimAscendv1Saver *self = SLIM_ASCENDV1_SAVER (saver);

  return slim_ascend_writer_write_layer (self->writer, layer, error);
}

static gboolean
slim_ascendv1_saver_finish (SlimSaver *saver, GError **error)
{
  SlimAscendv1Saver *self = SLIM_ASCENDV1_SAVER (saver);
  gboolean ok = slim_ascend_writer_finish (self->writer, slim_model_get_path (self->model), error);

  g_clear_pointer (&self->writer, slim_ascend_writer_free);
  g_clear_object (&self->model);
  return ok;
}

static void
slim_ascendv1_saver_abort (SlimSaver *saver)
{
  SlimAscendv1Saver *self = SLIM_ASCENDV1_SAVER (saver);

  /* dropping the writer removes shards not yet renamed into place */
  g_clear_pointer (&self->writer, slim_ascend_writer_free);
  g_clear_object (&self->model);
}

static void
slim_ascendv1_saver_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  SlimAscendv1Saver *self = SLIM_ASCENDV1_SAVER (object);

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
slim_ascendv1_saver_set_property (GObject *object,
                                  guint prop_id,
                                  const GValue *value,
                                  GParamSpec *pspec)
{
  SlimAscendv1Saver *self = SLIM_ASCENDV1_SAVER (object);

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
slim_ascendv1_saver_dispose (GObject *object)
{
  SlimAscendv1Saver *self = SLIM_ASCENDV1_SAVER (object);

  g_clear_pointer (&self->writer, slim_ascend_writer_free);
  g_clear_object (&self->model);
  G_OBJECT_CLASS (slim_ascendv1_saver_parent_class)->dispose (object);
}

static void
slim_ascendv1_saver_class_init (SlimAscendv1SaverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimSaverClass *saver_class = SLIM_SAVER_CLASS (klass);

  object_class->get_property = slim_ascendv1_saver_get_property;
  object_class->set_property = slim_ascendv1_saver_set_property;
  object_class->dispose = slim_ascendv1_saver_dispose;
  saver_class->begin = slim_ascendv1_saver_begin;
  saver_class->write_layer = slim_ascendv1_saver_write_layer;
  saver_class->finish = slim_ascendv1_saver_finish;
  saver_class->abort = slim_ascendv1_saver_abort;

  properties[PROP_PART_FILE_SIZE] = g_param_spec_int (
      "part-file-size", "Part file size",
      "Size limit of one weight file in GB (2^30 bytes); 0 writes a single unsharded file.", 0,
      MAX_PART_FILE_SIZE, DEFAULT_PART_FILE_SIZE,
      G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
slim_ascendv1_saver_init (SlimAscendv1Saver *self)
{
  self->part_file_size = DEFAULT_PART_FILE_SIZE;
}

SLIM_PLUGIN_DEFINE (
    saver,
    ascendv1_saver,
    SLIM_PLUGIN_NO_ALIASES,
    "msModelSlim ascendv1 format: quant_model_weights*.safetensors + quant_model_description.json",
    slim_ascendv1_saver_get_type)
