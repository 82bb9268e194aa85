/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-files.h: the auxiliary files of a Hugging Face model folder
 * (config, tokenizer, generation config, chat templates, remote code)
 * copied into a saver's output folder, as msModelSlim's savers copy them
 * (ascendv1.py, mindie_format.py, compressed_tensors.py: every file whose
 * name ends in one of the saver's suffixes, except *index.json).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Copies the regular files of model_dir whose names end in one of
 * suffixes (NULL-terminated) into out_dir, in name order, mode 0600,
 * overwriting; names ending in "index.json" or starting with
 * "quant_model_description" are skipped. */
gboolean slim_model_files_copy (const char *model_dir,
                                const char *out_dir,
                                const char *const *suffixes,
                                GError **error);

G_END_DECLS
