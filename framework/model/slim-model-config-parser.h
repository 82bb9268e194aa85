/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-config-parser.h: reading a Hugging Face config.json (or its
 * nested text_config) into SlimModelConfig.  Fields common to the Llama
 * family are read here; the architecture adapter of the model_type
 * (framework/model/adapters/, found in slim-model-adapter-table.c) reads
 * its own and sets the defaults of its transformers class.  Every error
 * names the file and the field.
 */
#pragma once

#include <glib.h>
#include "slim-model-config.h"

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

G_END_DECLS
