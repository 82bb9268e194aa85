/* SPDX-License-Identifier: Apache-2.0
 *
 * autoround-strategy.h: SlimAutoRoundStrategy, one entry of
 * autoround_quant's `strategies` list (modelslim-v1-spec.md 2.17;
 * msModelSlim processor/quant/autoround.py AutoroundStrategyConfig):
 *
 *   - qconfig: {act: {...} optional, weight: {...} required}
 *     include: [patterns]   default ["*"]
 *     exclude: [patterns]   default []
 *
 * A plain configuration object (built by the config loader from a mapping
 * of the list, SLIM_PROPERTY_OBJECT_LIST); the processor resolves and
 * checks it.
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

#define SLIM_TYPE_AUTOROUND_STRATEGY (slim_autoround_strategy_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimAutoRoundStrategy, slim_autoround_strategy, SLIM, AUTOROUND_STRATEGY, GObject)

/* (transfer none) (nullable): NULL only when the key was missing. */
SlimLinearQConfig *slim_autoround_strategy_get_qconfig (SlimAutoRoundStrategy *self);
/* (transfer none): never NULL (defaults ["*"] and []). */
const char *const *slim_autoround_strategy_get_include (SlimAutoRoundStrategy *self);
const char *const *slim_autoround_strategy_get_exclude (SlimAutoRoundStrategy *self);

G_END_DECLS
