/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-comm.c: single-process SlimComm (see slim-comm.h).
 */
#include "slim-comm.h"

#include <gio/gio.h>

struct _SlimComm
{
  gint rank;
  gint size;
};

SlimComm *
slim_comm_new_single (void)
{
  SlimComm *comm = g_new0 (SlimComm, 1);
  comm->rank = 0;
  comm->size = 1;
  return comm;
}

void
slim_comm_free (SlimComm *comm)
{
  g_free (comm);
}

gint
slim_comm_rank (const SlimComm *comm)
{
  return comm->rank;
}

gint
slim_comm_size (const SlimComm *comm)
{
  return comm->size;
}

/* With one rank every reduction leaves the buffer as it is. */
gboolean
slim_comm_allreduce_sum_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error)
{
  (void)comm;
  (void)buf;
  (void)n;
  (void)error;
  return TRUE;
}

gboolean
slim_comm_allreduce_min_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error)
{
  return slim_comm_allreduce_sum_f64 (comm, buf, n, error);
}

gboolean
slim_comm_allreduce_max_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error)
{
  return slim_comm_allreduce_sum_f64 (comm, buf, n, error);
}

gboolean
slim_comm_allreduce_sum_i64 (SlimComm *comm, gint64 *buf, gsize n, GError **error)
{
  (void)comm;
  (void)buf;
  (void)n;
  (void)error;
  return TRUE;
}

gboolean
slim_comm_broadcast (SlimComm *comm, gpointer buf, gsize n_bytes, gint root, GError **error)
{
  (void)buf;
  (void)n_bytes;
  if (root < 0 || root >= comm->size)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "broadcast root %d is not a rank (size %d)", root, comm->size);
      return FALSE;
    }
  return TRUE;
}

gboolean
slim_comm_barrier (SlimComm *comm, GError **error)
{
  (void)comm;
  (void)error;
  return TRUE;
}

/* Contiguous blocks in rank order; the first n_samples % size ranks get
 * one sample more. */
void
slim_comm_partition (gsize n_samples, gint size, gint rank, gsize *first, gsize *count)
{
  gsize s = (gsize)size;
  gsize r = (gsize)rank;
  gsize base = n_samples / s;
  gsize extra = n_samples % s;
  *count = base + (r < extra ? 1 : 0);
  *first = r * base + MIN (r, extra);
}
