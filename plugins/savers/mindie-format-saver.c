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
 * Property (YAML key): part_file_size (slim-ascend-saver.h).
 */
#include "slim-plugin.h"

#include "slim-ascend-saver.h"

#define SLIM_TYPE_MINDIE_FORMAT_SAVER (slim_mindie_format_saver_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimMindieFormatSaver, slim_mindie_format_saver, SLIM, MINDIE_FORMAT_SAVER, SlimAscendSaver)

struct _SlimMindieFormatSaver
{
  SlimAscendSaver parent_instance;
};

G_DEFINE_FINAL_TYPE (SlimMindieFormatSaver, slim_mindie_format_saver, SLIM_TYPE_ASCEND_SAVER)

static void
slim_mindie_format_saver_class_init (SlimMindieFormatSaverClass *klass)
{
  SlimAscendSaverClass *ascend_class = SLIM_ASCEND_SAVER_CLASS (klass);

  ascend_class->format = SLIM_ASCEND_FORMAT_MINDIE;
  ascend_class->deq_scale = SLIM_ASCEND_DEQ_SCALE_F32;
}

static void
slim_mindie_format_saver_init (SlimMindieFormatSaver *self)
{
}

SLIM_PLUGIN_DEFINE (
    saver,
    mindie_format_saver,
    SLIM_PLUGIN_NO_ALIASES,
    "msModelSlim mindie_format (MindIE-SD): W8A8 and W8A8_DYNAMIC, files named by label",
    slim_mindie_format_saver_get_type)
