/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-adapter-table.h (private): the table of architecture
 * adapters (framework/model/adapters/), looked up by config.json's
 * model_type.  The config parser picks the family's adapter from it and
 * SlimModel runs the family's MLP with it.  A new family is added here.
 */
#pragma once

#include "slim-model-adapter.h"

G_BEGIN_DECLS

/* The adapter handling model_type, or NULL. */
const SlimModelAdapter *slim_model_adapter_find (const char *model_type);

/* "llama, mistral, ..." (static string): the model types of the table. */
const char *slim_model_config_get_supported_types (void);

G_END_DECLS
