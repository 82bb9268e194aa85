/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-config.h: the quantization_config member of a Hugging Face
 * output folder's config.json, as the savers that write one
 * (compressed_tensors, bitsandbytes_saver) set it after copying the
 * model's files (slim-model-files.h).
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Rewrites out_dir/config.json (as Python's json.dump indent 2) with
 * quantization_config = qc (transfer full), or without one when qc is
 * NULL; with untie, a tie_word_embeddings member becomes false.  saver
 * names the saver in the error when config.json is missing. */
gboolean slim_hf_config_set_quantization_config (
    const char *out_dir, const char *saver, JsonObject *qc, gboolean untie, GError **error);

G_END_DECLS
