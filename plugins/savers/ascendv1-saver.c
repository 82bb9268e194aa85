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
 * Property (YAML key): part_file_size (slim-ascend-saver.h).
 * deq_scale of W8A8 is int64 (the float32 bit pattern) unless the model's
 * torch_dtype is bfloat16, then float32.  msModelSlim's unused `ext`
 * mapping is not accepted.  The tensor table is in slim-ascend-writer.h.
 */
#include "slim-plugin.h"

#include "slim-ascend-saver.h"

#define SLIM_TYPE_ASCENDV1_SAVER (slim_ascendv1_saver_get_type ())
G_DECLARE_FINAL_TYPE (SlimAscendv1Saver, slim_ascendv1_saver, SLIM, ASCENDV1_SAVER, SlimAscendSaver)

struct _SlimAscendv1Saver
{
  SlimAscendSaver parent_instance;
};

G_DEFINE_FINAL_TYPE (SlimAscendv1Saver, slim_ascendv1_saver, SLIM_TYPE_ASCEND_SAVER)

static void
slim_ascendv1_saver_class_init (SlimAscendv1SaverClass *klass)
{
  SlimAscendSaverClass *ascend_class = SLIM_ASCEND_SAVER_CLASS (klass);

  ascend_class->format = SLIM_ASCEND_FORMAT_ASCENDV1;
  ascend_class->deq_scale = SLIM_ASCEND_DEQ_SCALE_I64_UNLESS_BF16;
}

static void
slim_ascendv1_saver_init (SlimAscendv1Saver *self)
{
}

SLIM_PLUGIN_DEFINE (
    saver,
    ascendv1_saver,
    SLIM_PLUGIN_NO_ALIASES,
    "msModelSlim ascendv1 format: quant_model_weights*.safetensors + quant_model_description.json",
    slim_ascendv1_saver_get_type)
