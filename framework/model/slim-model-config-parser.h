/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-config-parser.h: reading a Hugging Face config.json (or its nested
 * text_config) into SlimModelConfig.  Fields common to the Llama family
 * are read here; each architecture adapter (framework/model/adapters/) reads its
 * own and sets the defaults of its transformers class.  Every error names
 * the file and the field.
 */
#pragma once

#include <json-glib/json-glib.h>
#include "slim-model.h"

G_BEGIN_DECLS

/**
 * slim_model_config_load:
 * @path: a config.json
 * @error: SLIM_MODEL_ERROR_CONFIG (missing, mistyped or inconsistent
 *   field), SLIM_MODEL_ERROR_UNSUPPORTED (architecture, activation, RoPE
 *   scaling), SLIM_FORMAT_ERROR (not JSON) or G_FILE_ERROR
 *
 * Returns: (transfer full) (nullable): free with slim_model_config_free().
 */
SlimModelConfig *slim_model_config_load (const char *path, GError **error);

/* The same from JSON text; @what names the file in messages. */
SlimModelConfig *
slim_model_config_parse (const char *text, gssize length, const char *what, GError **error);

void slim_model_config_free (SlimModelConfig *config);

/* TRUE when decoder layer index has a mixture-of-experts MLP. */
gboolean slim_model_config_layer_is_moe (const SlimModelConfig *config, guint index);

/* "llama, mistral, ..." (static string). */
const char *slim_model_config_get_supported_types (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimModelConfig, slim_model_config_free)

G_END_DECLS
