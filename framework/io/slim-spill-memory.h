/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-spill-memory.h: SlimSpillMemory, the in-RAM SlimSpill.  put() keeps
 * a reference (tensors are copy-on-write, so a later writer copies) and
 * get() hands out another one.
 */
#pragma once

#include "slim-spill.h"

G_BEGIN_DECLS

#define SLIM_TYPE_SPILL_MEMORY (slim_spill_memory_get_type ())
G_DECLARE_FINAL_TYPE (SlimSpillMemory, slim_spill_memory, SLIM, SPILL_MEMORY, GObject)

/**
 * slim_spill_memory_new:
 * Returns: (transfer full): an empty store.
 */
SlimSpillMemory *slim_spill_memory_new (void);

/* Sum of the stored tensors' sizes in bytes. */
guint64 slim_spill_memory_get_total_bytes (SlimSpillMemory *self);

G_END_DECLS
