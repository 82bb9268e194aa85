/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-saver.h: SlimHfSaver, the abstract base of the savers that
 * write Hugging Face GPTQ / AWQ checkpoints through SlimHfWriter
 * (slim-hf-writer.h): hf_gptq_saver and hf_awq_saver.
 *
 * The base owns the writer and two properties (YAML keys):
 *   part_file_size  shard size in GB of 2^30 bytes (default 4; 0 writes
 *                   one unsharded model.safetensors)
 *   scale_dtype     float16 (default: what the GPTQ / AWQ kernels read)
 *                   or float32 (the folder then holds slimflow's deployed
 *                   weights bit for bit; loaders cast the scales)
 * A subclass sets get_format, which returns the checkpoint flavour.
 * Resumable: the progress is the writer's state (slim-hf-writer.h).
 */
#pragma once

#include "slim-hf-scheme.h"
#include "slim-saver.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_HF_SCALE_F16,
  SLIM_HF_SCALE_F32,
} SlimHfScaleDtype;

GType slim_hf_scale_dtype_get_type (void);

#define SLIM_TYPE_HF_SAVER (slim_hf_saver_get_type ())
G_DECLARE_DERIVABLE_TYPE (SlimHfSaver, slim_hf_saver, SLIM, HF_SAVER, SlimSaver)

/**
 * SlimHfSaverClass:
 * @get_format: the checkpoint written by this instance
 */
struct _SlimHfSaverClass
{
  SlimSaverClass parent_class;

  SlimHfFormat (*get_format) (SlimHfSaver *self);
};

G_END_DECLS
