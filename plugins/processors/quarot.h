/* SPDX-License-Identifier: Apache-2.0
 *
 * quarot.h: what other processors of the quarot module (adapt_rotation,
 * adapt-rotation.c) use of the quarot processor.
 */
#pragma once

#include "slim-plugin.h"

G_BEGIN_DECLS

#define SLIM_TYPE_QUAROT_PROCESSOR (slim_quarot_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimQuarotProcessor, slim_quarot_processor, SLIM, QUAROT_PROCESSOR, SlimProcessor)

/**
 * slim_quarot_processor_set_hidden_matrix:
 * @self: a quarot processor, before pre_run
 * @q: (nullable) (array) (dim, dim) an orthogonal matrix, copied; NULL
 *   goes back to the randomized Hadamard rotation
 * @dim: its order, the model's hidden_size (pre_run checks)
 *
 * The rotation of the residual stream (Q of quarot.c) is @q instead of
 * the Hadamard one: adapt_rotation stage 2 hands the matrix its stage 1
 * learned (spec 2.16).  The per-head rotation stays Hadamard.
 */
void
slim_quarot_processor_set_hidden_matrix (SlimQuarotProcessor *self, const float *q, gint64 dim);

G_END_DECLS
