/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-v0.h: msModelSlim's `apiversion: modelslim_v0` configs
 * translated into the modelslim_v1 pipeline slimflow runs.
 *
 * A v0 config is the keyword arguments of msModelSlim's v0 Python API
 * (msmodelslim/core/quant_service/modelslim_v0/quant_config.py):
 *
 *   apiversion: modelslim_v0
 *   spec:
 *     anti_cfg: {anti_method, w_bit, a_bit, w_sym, ...}   AntiOutlierConfig
 *     anti_params: {...}                                  AntiOutlier kwargs
 *     calib_cfg: {w_bit, a_bit, mm_tensor, ...}           QuantConfig
 *                                                         (+ use_fa_quant, fa_amp)
 *     calib_params: {disable_level, ...}                  Calibrator kwargs
 *     calib_save_params: {part_file_size}                 Calibrator.save kwargs
 *     batch_size: 4
 *     anti_dataset: file.jsonl
 *     calib_dataset: file.jsonl   (default teacher_qualification.jsonl)
 *
 * Every field is either mapped to v1 processors (anti_method m4 ->
 * iter_smooth, m1 -> smooth_quant, calib_cfg -> linear_quant or pdmix,
 * use_kvcache_quant -> dynamic_cache, use_fa_quant -> fa3_quant,
 * calib_save_params -> ascendv1_saver) or rejected by name with its
 * location and the reason; the full table is docs/modelslim-v0.md.  Every
 * node of the translated tree carries the location of the v0 node it
 * comes from, so that errors the v1 plugins raise point into the v0 file.
 */
#pragma once

#include <glib.h>
#include "slim-config.h"

G_BEGIN_DECLS

#define SLIM_CONFIG_V0_APIVERSION "modelslim_v0"

/**
 * slim_config_v0_translate:
 * @root: a parsed document whose apiversion is modelslim_v0
 * @notes: (element-type utf8) (nullable): where a line per translation
 *   choice worth telling the user is appended (for `validate --explain`)
 * @errors: (element-type GError): every problem found is appended here,
 *   each "FILE:LINE:COL: spec.calib_cfg.KEY: message"
 *
 * Returns: (transfer full) (nullable): the equivalent modelslim_v1
 *   document, or NULL when errors were appended.
 */
SlimConfigNode *
slim_config_v0_translate (SlimConfigNode *root, GPtrArray *notes, GPtrArray *errors);

G_END_DECLS
