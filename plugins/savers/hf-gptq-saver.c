/* SPDX-License-Identifier: Apache-2.0
 *
 * hf-gptq-saver.c: the hf_gptq_saver plugin (YAML `type: hf_gptq_saver`,
 * alias `gptq_saver`): a Hugging Face GPTQ checkpoint as AutoGPTQ /
 * GPTQModel write it and transformers' GPTQConfig loads it (qweight,
 * qzeros, scales, g_idx; slim-hf-writer.h has the table and config).
 *
 * Properties (YAML keys): part_file_size and scale_dtype
 * (slim-hf-saver.h), checkpoint_format: gptq (default; AutoGPTQ's v1,
 * qzeros store zero - 1, what transformers' GPTQConfig and vLLM assume)
 * or gptq_v2 (GPTQModel's, qzeros store the zero itself, so an unsigned
 * zero point 0 is expressible).
 *
 * Not an msModelSlim saver (msModelSlim documents a conversion script to
 * AutoGPTQ instead, best_practices/msmodelslim_quantized_weight_to_
 * autoawq_autogptq.md).
 */
#include "slim-plugin.h"

#include "slim-hf-saver.h"

typedef enum
{
  SLIM_GPTQ_CHECKPOINT_GPTQ,
  SLIM_GPTQ_CHECKPOINT_GPTQ_V2,
} SlimGptqCheckpoint;

static GType slim_gptq_checkpoint_get_type (void);
G_DEFINE_ENUM_TYPE (SlimGptqCheckpoint,
                    slim_gptq_checkpoint,
                    G_DEFINE_ENUM_VALUE (SLIM_GPTQ_CHECKPOINT_GPTQ, "gptq"),
                    G_DEFINE_ENUM_VALUE (SLIM_GPTQ_CHECKPOINT_GPTQ_V2, "gptq_v2"))

#define SLIM_TYPE_HF_GPTQ_SAVER (slim_hf_gptq_saver_get_type ())
G_DECLARE_FINAL_TYPE (SlimHfGptqSaver, slim_hf_gptq_saver, SLIM, HF_GPTQ_SAVER, SlimHfSaver)

struct _SlimHfGptqSaver
{
  SlimHfSaver parent_instance;

  gint checkpoint_format; /* SlimGptqCheckpoint */
};

/* clang-format off */
static const SlimPropertyDecl slim_hf_gptq_saver_properties[] = {
  SLIM_PROPERTY_ENUM (
      SlimHfGptqSaver, checkpoint_format, "checkpoint-format", "Checkpoint format",
      "gptq (AutoGPTQ v1: qzeros hold zero - 1; transformers' default) or gptq_v2 (GPTQModel: "
      "qzeros hold the zero point).",
      slim_gptq_checkpoint_get_type, SLIM_GPTQ_CHECKPOINT_GPTQ),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimHfGptqSaver, slim_hf_gptq_saver, SLIM_TYPE_HF_SAVER)

static SlimHfFormat
slim_hf_gptq_saver_get_format (SlimHfSaver *saver)
{
  return SLIM_HF_GPTQ_SAVER (saver)->checkpoint_format == SLIM_GPTQ_CHECKPOINT_GPTQ_V2
             ? SLIM_HF_FORMAT_GPTQ_V2
             : SLIM_HF_FORMAT_GPTQ;
}

static void
slim_hf_gptq_saver_class_init (SlimHfGptqSaverClass *klass)
{
  SLIM_HF_SAVER_CLASS (klass)->get_format = slim_hf_gptq_saver_get_format;
  SLIM_PROPERTIES_INSTALL (klass, slim_hf_gptq_saver_properties);
}

static void
slim_hf_gptq_saver_init (SlimHfGptqSaver *self)
{
}

SLIM_PLUGIN_DEFINE (saver,
                    hf_gptq_saver,
                    SLIM_PLUGIN_ALIASES ("gptq_saver"),
                    "Hugging Face GPTQ checkpoint (AutoGPTQ / GPTQModel / transformers): int4 / "
                    "int8 weight-only, per group or per channel, qweight / qzeros / scales / g_idx",
                    slim_hf_gptq_saver_get_type)
