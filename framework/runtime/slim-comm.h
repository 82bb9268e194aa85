/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-comm.h: the communication interface processors call to reduce
 * observer state across the ranks of a data-parallel run (issue #14).
 *
 * A SlimComm has a rank and a size.  Reductions are in place over float64
 * (sum, min, max) and int64 (sum) buffers; broadcast copies rank root's
 * bytes to every rank; barrier waits for all ranks.  This file holds the
 * single-process implementation (size 1, every reduction is the
 * identity); the MPI implementation is not built yet.
 *
 * Determinism: slim_comm_partition gives each rank a contiguous block of
 * samples in a fixed order, so that callers which reduce per-sample
 * float64 partials in sample order get the same bytes for any size.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _SlimComm SlimComm;

SlimComm *slim_comm_new_single (void);
void slim_comm_free (SlimComm *comm);

gint slim_comm_rank (const SlimComm *comm);
gint slim_comm_size (const SlimComm *comm);

gboolean slim_comm_allreduce_sum_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error);
gboolean slim_comm_allreduce_min_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error);
gboolean slim_comm_allreduce_max_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error);
gboolean slim_comm_allreduce_sum_i64 (SlimComm *comm, gint64 *buf, gsize n, GError **error);
gboolean
slim_comm_broadcast (SlimComm *comm, gpointer buf, gsize n_bytes, gint root, GError **error);
gboolean slim_comm_barrier (SlimComm *comm, GError **error);

void slim_comm_partition (gsize n_samples, gint size, gint rank, gsize *first, gsize *count);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimComm, slim_comm_free)

G_END_DECLS
