/* SPDX-License-Identifier: Apache-2.0
 *
 * online-quarot.c: msModelSlim's `online_quarot` processor (modelslim-v1-spec.md
 * 2.15; msModelSlim processor/quarot/online_quarot/online_quarot.py):
 *
 *   type: online_quarot
 *   include: ["*"]     module patterns the adapter's rotations may apply to
 *   exclude: []        patterns left alone (wins over include)
 *   block_size: -1     -1 or a power of two: the block size of rotations the
 *                      adapter builds without one of its own
 *
 * msModelSlim applies the rotations a model adapter declares through
 * OnlineQuaRotInterface.get_online_rotation_configs (module name ->
 * matrix or mode, input / output / replace / offline); the adapters that
 * declare them are DeepSeek-V3.2 and the diffusion models (flux1,
 * hunyuan_video, qwen_image_edit, wan2_2).  None of slimflow's families
 * (llama, mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe) has such a
 * declaration in msModelSlim, so the fields are validated as msModelSlim
 * does and pre_run refuses every model, naming its architecture; for the
 * dense families, quarot's online: true (heads and Kronecker rotations)
 * is the online rotation msModelSlim offers.
 */
#include "slim-plugin.h"

#define SLIM_TYPE_ONLINE_QUAROT_PROCESSOR (slim_online_quarot_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimOnlineQuarotProcessor,
                      slim_online_quarot_processor,
                      SLIM,
                      ONLINE_QUAROT_PROCESSOR,
                      SlimProcessor)

struct _SlimOnlineQuarotProcessor
{
  SlimProcessor parent_instance;

  char **include;
  char **exclude;
  gint block_size;
};

/* clang-format off */
static const SlimPropertyDecl slim_online_quarot_properties[] = {
  SLIM_PROPERTY_STRV (SlimOnlineQuarotProcessor, include, "include", "Include",
                      "Modules whose adapter-declared online rotations apply (patterns over "
                      "full module names).", SLIM_STRV ("*")),
  SLIM_PROPERTY_STRV (SlimOnlineQuarotProcessor, exclude, "exclude", "Exclude",
                      "Modules left alone (wins over include).", SLIM_STRV_EMPTY),
  SLIM_PROPERTY_INT (SlimOnlineQuarotProcessor, block_size, "block-size", "Block size",
                     "-1 or a power of two: the block size of the rotations the adapter "
                     "builds without one of its own.", -1, G_MAXINT, -1),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimOnlineQuarotProcessor, slim_online_quarot_processor, SLIM_TYPE_PROCESSOR)

static gboolean
slim_online_quarot_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimOnlineQuarotProcessor *self = SLIM_ONLINE_QUAROT_PROCESSOR (processor);

  if (self->block_size != -1 && !slim_hadamard_is_pow2 (self->block_size))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "online_quarot: block_size must be -1 or a positive power of two, got %d",
                   self->block_size);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_online_quarot_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  const SlimModelConfig *config = slim_model_get_config (model);

  if (!slim_online_quarot_processor_validate (processor, error))
    return FALSE;
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "online_quarot: %s declares no online rotations (msModelSlim's "
               "OnlineQuaRotInterface exists for DeepSeek-V3.2 and the diffusion models only); "
               "for dense llama, mistral, qwen2 and qwen3 use quarot with online: true",
               config->model_type != NULL ? config->model_type : "the model");
  return FALSE;
}

static gboolean
slim_online_quarot_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
               "online_quarot: preprocess without a successful pre_run");
  return FALSE;
}

static gboolean
slim_online_quarot_processor_is_data_free (SlimProcessor *processor)
{
  return TRUE;
}

static gboolean
slim_online_quarot_processor_supports_distributed (SlimProcessor *processor)
{
  return TRUE;
}

static void
slim_online_quarot_processor_class_init (SlimOnlineQuarotProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  processor_class->validate = slim_online_quarot_processor_validate;
  processor_class->pre_run = slim_online_quarot_processor_pre_run;
  processor_class->preprocess = slim_online_quarot_processor_preprocess;
  processor_class->is_data_free = slim_online_quarot_processor_is_data_free;
  processor_class->supports_distributed = slim_online_quarot_processor_supports_distributed;
  SLIM_PROPERTIES_INSTALL (klass, slim_online_quarot_properties);
}

static void
slim_online_quarot_processor_init (SlimOnlineQuarotProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    online_quarot,
                    SLIM_PLUGIN_NO_ALIASES,
                    "msModelSlim online_quarot: adapter-declared online rotations (include, "
                    "exclude, block_size); slimflow's architectures declare none and are refused",
                    slim_online_quarot_processor_get_type)
