/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-fa3-details.h: `details` of fa3_quant, msModelSlim's
 * FA3AttentionDetails (processor/quant/fa3/processor.py; spec 2.9): one
 * optional quantizer config per branch of the attention input,
 *
 *   details: {fa_q: QConfig, fa_k: QConfig, fa_v: QConfig}
 *
 * A branch left out is not quantized.
 */
#pragma once

#include <glib-object.h>
#include "slim-qconfig.h"

G_BEGIN_DECLS

#define SLIM_TYPE_FA3_DETAILS (slim_fa3_details_get_type ())
G_DECLARE_FINAL_TYPE (SlimFa3Details, slim_fa3_details, SLIM, FA3_DETAILS, GObject)

/* branch 0 = fa_q, 1 = fa_k, 2 = fa_v. (transfer none) (nullable): NULL
 * when the branch was left out. */
SlimQConfig *slim_fa3_details_get (SlimFa3Details *self, guint branch);

G_END_DECLS
