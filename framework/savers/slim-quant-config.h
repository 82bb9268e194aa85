/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-quant-config.h: the config.json of a saver's Hugging Face output
 * folder (copied from the model by slim-model-files.h), given the
 * quantization_config of the format written (compressed_tensors,
 * hf_gptq_saver, hf_awq_saver).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Rewrites out_dir/config.json (which must exist: saver names the saver
 * in the error) with its "quantization_config" member set to config
 * (transfer full), or removed when config is NULL (nothing was
 * quantized, as msModelSlim does), as Python's json.dump indent 2 writes
 * it, mode 0600. */
gboolean slim_quant_config_write (const char *out_dir,
                                  JsonObject *config,
                                  const char *saver,
                                  GError **error);

G_END_DECLS
