/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-config.c: freeing a SlimModelConfig and the per-layer MoE
 * query.  Filling one from config.json is slim-model-config-parser.c.
 */
#include "slim-model-config.h"

void
slim_model_config_free (SlimModelConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->model_type);
  g_free (config->architecture);
  g_free (config->layer_is_moe);
  g_free (config);
}

gboolean
slim_model_config_layer_is_moe (const SlimModelConfig *config, guint index)
{
  g_return_val_if_fail (config != NULL, FALSE);
  return config->layer_is_moe != NULL && index < config->n_layers && config->layer_is_moe[index];
}
