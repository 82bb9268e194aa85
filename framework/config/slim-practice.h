/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-practice.h: the shipped best-practice library used by
 * `slimflow quant --quant_type` (msModelSlim's lab_practice, spec 4.3).
 *
 * Practices are YAML pipelines in <data folder>/practices/<pedigree>/
 * (slim-datadir.h) with a `metadata` block:
 *
 *   metadata:
 *     config_id: default-w8a8          the file name without .yaml
 *     score: 100                       higher is preferred (default 100)
 *     label: {w_bit: 8, a_bit: 8, is_sparse: False, kv_cache: False}
 *     verified_model_types: []         empty: any model
 *
 * A quant_type label matches msModelSlim's regex
 * ^w(\d+)a(\d+)((?:c8|f[48])?)(s?)$ against w_bit, a_bit, kv_cache (c8),
 * fa_bit (f4/f8) and is_sparse (s).  slimflow also accepts the suffix
 * "_dynamic" (w8a8_dynamic): it selects practices whose label has
 * `dynamic: True` (per-token activations); without it those are skipped.
 * Candidates are looked for in the pedigree folder named after the model
 * type first, then in default/, sorted by (-score, config_id).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * slim_practice_find:
 * @quant_type: a label such as "w8a8", "w8a8_dynamic", "w4a16"
 * @model_type: (nullable): config.json model_type, for the pedigree and
 *   verified_model_types; NULL matches any
 * @error: return location for a GError
 *
 * Returns: (transfer full) (nullable): the path of the best matching
 *   practice; NULL with SLIM_CONFIG_ERROR_BAD_VALUE for a malformed label
 *   or SLIM_CONFIG_ERROR_UNSUPPORTED when nothing matches (the message
 *   lists the labels available).
 */
char *slim_practice_find (const char *quant_type, const char *model_type, GError **error);

G_END_DECLS
