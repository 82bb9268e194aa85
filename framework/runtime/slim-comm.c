/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-comm.c: the SlimComm wrappers and the single-process
 * implementation (see slim-comm.h); the MPI one is slim-comm-mpi.c.
 */
#include "slim-comm.h"
#include "slim-comm-private.h"

#include <gio/gio.h>

/* With one rank every reduction leaves the buffer as it is. */
static gboolean
single_allreduce_f64 (SlimComm *comm, gdouble *buf, gsize n, SlimCommOp op, GError **error)
{
  return TRUE;
}

static gboolean
single_allreduce_sum_i64 (SlimComm *comm, gint64 *buf, gsize n, GError **error)
{
  return TRUE;
}

static gboolean
single_broadcast (SlimComm *comm, gpointer buf, gsize n_bytes, gint root, GError **error)
{
  return TRUE;
}

static gboolean
single_barrier (SlimComm *comm, GError **error)
{
  return TRUE;
}

static const SlimCommOps single_ops = {
  single_allreduce_f64, single_allreduce_sum_i64, single_broadcast, single_barrier, NULL, NULL,
};

guint
slim_comm_timeout_from_env (void)
{
  const char *text = g_getenv (SLIM_COMM_TIMEOUT_ENV);
  guint64 seconds = 0;

  if (text == NULL || *text == '\0')
    return SLIM_COMM_TIMEOUT_DEFAULT;
  if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT / 2, &seconds, NULL))
    {
      g_warning ("%s=%s is not a number of seconds; using %d", SLIM_COMM_TIMEOUT_ENV, text,
                 SLIM_COMM_TIMEOUT_DEFAULT);
      return SLIM_COMM_TIMEOUT_DEFAULT;
    }
  return (guint)seconds;
}

void
slim_comm_abort (SlimComm *comm, int code)
{
  g_return_if_fail (comm != NULL);
  if (comm->ops->abort != NULL)
    comm->ops->abort (comm, code);
}

SlimComm *
slim_comm_new_single (void)
{
  SlimComm *comm = g_new0 (SlimComm, 1);
  comm->ops = &single_ops;
  comm->rank = 0;
  comm->size = 1;
  return comm;
}

void
slim_comm_free (SlimComm *comm)
{
  if (comm == NULL)
    return;
  if (comm->ops->finalize != NULL)
    comm->ops->finalize (comm);
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

gboolean
slim_comm_allreduce_sum_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error)
{
  g_return_val_if_fail (comm != NULL && (buf != NULL || n == 0), FALSE);
  return comm->ops->allreduce_f64 (comm, buf, n, SLIM_COMM_OP_SUM, error);
}

gboolean
slim_comm_allreduce_min_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error)
{
  g_return_val_if_fail (comm != NULL && (buf != NULL || n == 0), FALSE);
  return comm->ops->allreduce_f64 (comm, buf, n, SLIM_COMM_OP_MIN, error);
}

gboolean
slim_comm_allreduce_max_f64 (SlimComm *comm, gdouble *buf, gsize n, GError **error)
{
  g_return_val_if_fail (comm != NULL && (buf != NULL || n == 0), FALSE);
  return comm->ops->allreduce_f64 (comm, buf, n, SLIM_COMM_OP_MAX, error);
}

gboolean
slim_comm_allreduce_sum_i64 (SlimComm *comm, gint64 *buf, gsize n, GError **error)
{
  g_return_val_if_fail (comm != NULL && (buf != NULL || n == 0), FALSE);
  return comm->ops->allreduce_sum_i64 (comm, buf, n, error);
}

gboolean
slim_comm_broadcast (SlimComm *comm, gpointer buf, gsize n_bytes, gint root, GError **error)
{
  g_return_val_if_fail (comm != NULL && (buf != NULL || n_bytes == 0), FALSE);
  if (root < 0 || root >= comm->size)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "broadcast root %d is not a rank (size %d)", root, comm->size);
      return FALSE;
    }
  return comm->ops->broadcast (comm, buf, n_bytes, root, error);
}

gboolean
slim_comm_broadcast_bytes (SlimComm *comm, GBytes **bytes, gint root, GError **error)
{
  guint64 n = 0;
  g_autofree guint8 *data = NULL;

  g_return_val_if_fail (comm != NULL && bytes != NULL, FALSE);
  if (comm->rank == root)
    {
      g_return_val_if_fail (*bytes != NULL, FALSE);
      n = g_bytes_get_size (*bytes);
    }
  if (!slim_comm_broadcast (comm, &n, sizeof n, root, error))
    return FALSE;
  if (comm->rank == root)
    return slim_comm_broadcast (comm, (gpointer)g_bytes_get_data (*bytes, NULL), (gsize)n, root,
                                error);
  data = g_malloc (MAX (n, 1));
  if (!slim_comm_broadcast (comm, data, (gsize)n, root, error))
    return FALSE;
  g_clear_pointer (bytes, g_bytes_unref);
  *bytes = g_bytes_new_take (g_steal_pointer (&data), (gsize)n);
  return TRUE;
}

gboolean
slim_comm_barrier (SlimComm *comm, GError **error)
{
  g_return_val_if_fail (comm != NULL, FALSE);
  return comm->ops->barrier (comm, error);
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
