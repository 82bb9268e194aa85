/* SPDX-License-Identifier: Apache-2.0
 *
 * hf-awq-saver.c: the hf_awq_saver plugin (YAML `type: hf_awq_saver`,
 * alias `awq_saver`): a Hugging Face AWQ checkpoint in AutoAWQ's GEMM
 * layout (quant_method awq, version gemm) as transformers' AwqConfig
 * loads it (qweight (in, out / 8) and qzeros in AWQ's interleaved order,
 * scales; slim-hf-writer.h has the table and config).  int4 per_group
 * only.
 *
 * Properties (YAML keys): part_file_size and scale_dtype
 * (slim-hf-saver.h).  Not an msModelSlim saver.
 */
#include "slim-plugin.h"

#include "slim-hf-saver.h"

#define SLIM_TYPE_HF_AWQ_SAVER (slim_hf_awq_saver_get_type ())
G_DECLARE_FINAL_TYPE (SlimHfAwqSaver, slim_hf_awq_saver, SLIM, HF_AWQ_SAVER, SlimHfSaver)

struct _SlimHfAwqSaver
{
  SlimHfSaver parent_instance;
};

G_DEFINE_FINAL_TYPE (SlimHfAwqSaver, slim_hf_awq_saver, SLIM_TYPE_HF_SAVER)

static SlimHfFormat
slim_hf_awq_saver_get_format (SlimHfSaver *saver)
{
  return SLIM_HF_FORMAT_AWQ;
}

static void
slim_hf_awq_saver_class_init (SlimHfAwqSaverClass *klass)
{
  SLIM_HF_SAVER_CLASS (klass)->get_format = slim_hf_awq_saver_get_format;
}

static void
slim_hf_awq_saver_init (SlimHfAwqSaver *self)
{
}

SLIM_PLUGIN_DEFINE (saver,
                    hf_awq_saver,
                    SLIM_PLUGIN_ALIASES ("awq_saver"),
                    "Hugging Face AWQ checkpoint (AutoAWQ GEMM, transformers AwqConfig): int4 "
                    "weight-only per group, qweight / qzeros / scales",
                    slim_hf_awq_saver_get_type)
