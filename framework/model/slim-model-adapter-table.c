/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-adapter-table.c: the adapters slimflow has, and the list of
 * model types they handle that error messages show.
 */
#include "slim-model-adapter-table.h"

const SlimModelAdapter *
slim_model_adapter_find (const char *model_type)
{
  const SlimModelAdapter *adapters[] = { slim_llama_adapter_get (), slim_moe_adapter_get () };

  for (gsize a = 0; a < G_N_ELEMENTS (adapters); a++)
    for (const char *const *t = adapters[a]->model_types; *t != NULL; t++)
      if (g_strcmp0 (*t, model_type) == 0)
        return adapters[a];
  return NULL;
}

const char *
slim_model_config_get_supported_types (void)
{
  return "llama, mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe";
}
