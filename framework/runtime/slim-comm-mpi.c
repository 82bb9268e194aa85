/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-comm-mpi.c: the MPI SlimComm (see slim-comm.h), compiled only when
 * meson found MPI (option `mpi`); slim-comm-no-mpi.c stands in otherwise.
 *
 * The communicator is a duplicate of MPI_COMM_WORLD with the error
 * handler MPI_ERRORS_RETURN: a failed call returns its code, which becomes
 * a G_IO_ERROR_FAILED naming the call, the rank and MPI's message.  MPI's
 * counts are ints, so long buffers go in chunks.
 *
 * Every collective is made of point-to-point messages (MPI_Isend /
 * MPI_Irecv on the duplicate, one tag; every rank runs the same sequence
 * of collectives, so MPI's per-pair ordering matches them): a broadcast
 * is the root sending to each rank, a reduction an all-to-all exchange
 * followed by the local reduction in rank order.  So every wait is for one
 * known rank, and a wait longer than the timeout (SLIMFLOW_MPI_TIMEOUT
 * seconds, default 600; 0 waits forever) fails with G_IO_ERROR_TIMED_OUT
 * naming the rank that did not answer: a hung rank stops the others with
 * an error instead of a hang (a dead one is reported by mpirun itself).
 * Waits for small messages poll with sleeps (50 us growing to 2 ms)
 * instead of MPI's busy wait (large ones: SPIN_BYTES): a rank waiting for another one's share of
 * the calibration (dp_layer_wise hands ordered statistics from rank to rank) then leaves the CPU to
 * the ranks that work, which matters when ranks share cores. The job sizes this serves are tens of
 * ranks, where the all-to-all's size^2 small messages cost nothing next to a layer's forward.
 */
#include "slim-comm.h"
#include "slim-comm-private.h"

#include <gio/gio.h>
#include <mpi.h>
#include <string.h>

/* Bytes per message: fits an int. */
#define CHUNK ((gsize)1 << 30)
#define TAG 7
/* Messages from this size on are waited for without sleeping: Open MPI
 * moves a large message in fragments, each only when both sides call it,
 * so sleeps between tests would stretch a 100 MB Hessian to seconds.  A
 * large payload always follows a small message that woke the receiver
 * (broadcast_bytes sends its size first; the GPTQ results follow a
 * reduction), so the sender is sending while we spin. */
#define SPIN_BYTES ((gsize)1 << 16)

static gboolean slim_mpi_initialized_here;

typedef struct
{
  MPI_Comm comm;
  gint64 timeout_us; /* 0: no timeout */
} SlimCommMpi;

static gboolean
check (SlimComm *comm, int code, const char *call, GError **error)
{
  char message[MPI_MAX_ERROR_STRING] = "";
  int len = 0;

  if (code == MPI_SUCCESS)
    return TRUE;
  if (MPI_Error_string (code, message, &len) != MPI_SUCCESS)
    g_strlcpy (message, "unknown MPI error", sizeof message);
  if (comm != NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed on rank %d of %d: %s", call,
                 comm->rank, comm->size, message);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed: %s", call, message);
  return FALSE;
}

/* Waits for a message to or from rank peer, sleeping between tests; FALSE
 * with G_IO_ERROR_TIMED_OUT naming peer after the timeout (the request is
 * left pending: the job is to stop). */
static gboolean
wait_for (SlimComm *comm,
          MPI_Request *request,
          gint peer,
          gboolean spin,
          const char *what,
          GError **error)
{
  const SlimCommMpi *impl = comm->impl;
  const gint64 start = g_get_monotonic_time ();
  gulong pause_us = 50;

  for (;;)
    {
      int done = 0;

      if (!check (comm, MPI_Test (request, &done, MPI_STATUS_IGNORE), what, error))
        return FALSE;
      if (done)
        return TRUE;
      if (impl->timeout_us > 0 && g_get_monotonic_time () - start > impl->timeout_us)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       "rank %d of %d: rank %d did not answer for %.0f s (%s): it is hung or "
                       "dead; stopping (timeout: SLIMFLOW_MPI_TIMEOUT)",
                       comm->rank, comm->size, peer, (double)impl->timeout_us / G_USEC_PER_SEC,
                       what);
          return FALSE;
        }
      /* a large message moves only while MPI is called: keep calling */
      if (spin)
        g_thread_yield ();
      else
        {
          g_usleep (pause_us);
          pause_us = MIN (pause_us * 2, 2000);
        }
    }
}

/* Posts the sends (to every rank in to[], or all others when to is NULL
 * and n_to is the size) and receives of one step and waits for each in
 * rank order.  send_buf: n bytes; recv_bufs[r]: n bytes from rank r (NULL
 * for no receive from r). */
static gboolean
exchange (SlimComm *comm,
          gconstpointer send_buf,
          gboolean send_to_all,
          gint send_to,
          guint8 **recv_bufs,
          gsize n,
          const char *what,
          GError **error)
{
  SlimCommMpi *impl = comm->impl;
  const gint size = comm->size;

  /* nothing to send: no message on either side */
  for (gsize done = 0; done < n;)
    {
      const gsize m = MIN (n - done, CHUNK);
      g_autofree MPI_Request *sends = g_new (MPI_Request, size);
      g_autofree MPI_Request *recvs = g_new (MPI_Request, size);

      for (gint r = 0; r < size; r++)
        {
          sends[r] = recvs[r] = MPI_REQUEST_NULL;
          if (r == comm->rank)
            continue;
          if (recv_bufs != NULL && recv_bufs[r] != NULL
              && !check (
                  comm,
                  MPI_Irecv (recv_bufs[r] + done, (int)m, MPI_BYTE, r, TAG, impl->comm, &recvs[r]),
                  "MPI_Irecv", error))
            return FALSE;
          if (send_buf != NULL && (send_to_all || r == send_to)
              && !check (comm,
                         MPI_Isend ((const guint8 *)send_buf + done, (int)m, MPI_BYTE, r, TAG,
                                    impl->comm, &sends[r]),
                         "MPI_Isend", error))
            return FALSE;
        }
      for (gint r = 0; r < size; r++)
        if ((recvs[r] != MPI_REQUEST_NULL
             && !wait_for (comm, &recvs[r], r, m >= SPIN_BYTES, what, error))
            || (sends[r] != MPI_REQUEST_NULL
                && !wait_for (comm, &sends[r], r, m >= SPIN_BYTES, what, error)))
          return FALSE;
      done += m;
    }
  return TRUE;
}

/* Every rank's n bytes into gather (size * n bytes, rank order). */
static gboolean
allgather (
    SlimComm *comm, gconstpointer mine, guint8 *gather, gsize n, const char *what, GError **error)
{
  g_autofree guint8 **bufs = g_new0 (guint8 *, comm->size);

  for (gint r = 0; r < comm->size; r++)
    bufs[r] = r == comm->rank ? NULL : gather + (gsize)r * n;
  memcpy (gather + (gsize)comm->rank * n, mine, n);
  return exchange (comm, mine, TRUE, -1, bufs, n, what, error);
}

gboolean
slim_comm_mpi_is_built (void)
{
  return TRUE;
}

gboolean
slim_comm_mpi_launched (void)
{
  return g_getenv ("OMPI_COMM_WORLD_SIZE") != NULL;
}

gboolean
slim_comm_mpi_init (int *argc, char ***argv, GError **error)
{
  int initialized = 0, provided = 0;

  MPI_Initialized (&initialized);
  if (initialized)
    return TRUE;
  if (!check (NULL, MPI_Init_thread (argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread",
              error))
    return FALSE;
  slim_mpi_initialized_here = TRUE;
  return TRUE;
}

gboolean
slim_comm_mpi_is_initialized (void)
{
  int initialized = 0, finalized = 0;

  MPI_Initialized (&initialized);
  MPI_Finalized (&finalized);
  return initialized && !finalized;
}

void
slim_comm_mpi_shutdown (void)
{
  if (slim_mpi_initialized_here && slim_comm_mpi_is_initialized ())
    MPI_Finalize ();
  slim_mpi_initialized_here = FALSE;
}

/* Sum in rank order (((b0 + b1) + b2) + ...), min or max, on every rank:
 * the same bytes everywhere, whatever the transport. */
static gboolean
mpi_allreduce_f64 (SlimComm *comm, gdouble *buf, gsize n, SlimCommOp op, GError **error)
{
  const gsize size = (gsize)comm->size;
  g_autofree gdouble *gather = NULL;

  if (n == 0)
    return TRUE;
  gather = g_try_new (gdouble, n * size);
  if (gather == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                   "cannot allocate the reduction buffer (%" G_GSIZE_FORMAT " doubles)", n * size);
      return FALSE;
    }
  if (!allgather (comm, buf, (guint8 *)gather, n * sizeof (gdouble), "float64 reduction", error))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    {
      gdouble v = gather[i];
      for (gsize r = 1; r < size; r++)
        {
          gdouble w = gather[r * n + i];
          v = op == SLIM_COMM_OP_SUM ? v + w : op == SLIM_COMM_OP_MIN ? MIN (v, w) : MAX (v, w);
        }
      buf[i] = v;
    }
  return TRUE;
}

static gboolean
mpi_allreduce_sum_i64 (SlimComm *comm, gint64 *buf, gsize n, GError **error)
{
  const gsize size = (gsize)comm->size;
  g_autofree gint64 *gather = NULL;

  if (n == 0)
    return TRUE;
  gather = g_try_new (gint64, n * size);
  if (gather == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                   "cannot allocate the reduction buffer (%" G_GSIZE_FORMAT " int64)", n * size);
      return FALSE;
    }
  if (!allgather (comm, buf, (guint8 *)gather, n * sizeof (gint64), "int64 sum", error))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    {
      gint64 v = 0;
      for (gsize r = 0; r < size; r++)
        v += gather[r * n + i];
      buf[i] = v;
    }
  return TRUE;
}

static gboolean
mpi_broadcast (SlimComm *comm, gpointer buf, gsize n_bytes, gint root, GError **error)
{
  g_autofree guint8 **bufs = NULL;
  g_autofree char *what = g_strdup_printf ("broadcast from rank %d", root);

  if (comm->rank == root)
    return exchange (comm, buf, TRUE, -1, NULL, n_bytes, what, error);
  bufs = g_new0 (guint8 *, comm->size);
  bufs[root] = buf;
  return exchange (comm, NULL, FALSE, -1, bufs, n_bytes, what, error);
}

static gboolean
mpi_barrier (SlimComm *comm, GError **error)
{
  guint8 token = 1;
  g_autofree guint8 *gather = g_new (guint8, comm->size);

  return allgather (comm, &token, gather, 1, "barrier", error);
}

static void
mpi_finalize (SlimComm *comm)
{
  SlimCommMpi *impl = comm->impl;

  if (slim_comm_mpi_is_initialized ())
    MPI_Comm_free (&impl->comm);
  g_free (impl);
}

static void
mpi_abort (SlimComm *comm, int code)
{
  MPI_Abort (MPI_COMM_WORLD, code);
}

static const SlimCommOps mpi_ops = {
  mpi_allreduce_f64, mpi_allreduce_sum_i64, mpi_broadcast, mpi_barrier, mpi_finalize, mpi_abort,
};

SlimComm *
slim_comm_new_mpi (GError **error)
{
  SlimCommMpi *impl;
  SlimComm *comm;
  MPI_Comm dup;
  int rank = 0, size = 1;

  if (!slim_comm_mpi_is_initialized ())
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED,
                   "MPI is not initialized (slim_comm_mpi_init)");
      return NULL;
    }
  /* errors on MPI_COMM_WORLD itself (the dup) are fatal by default */
  MPI_Comm_set_errhandler (MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (!check (NULL, MPI_Comm_dup (MPI_COMM_WORLD, &dup), "MPI_Comm_dup", error))
    return NULL;
  MPI_Comm_set_errhandler (dup, MPI_ERRORS_RETURN);
  MPI_Comm_rank (dup, &rank);
  MPI_Comm_size (dup, &size);
  impl = g_new0 (SlimCommMpi, 1);
  impl->comm = dup;
  impl->timeout_us = (gint64)slim_comm_timeout_from_env () * G_USEC_PER_SEC;
  comm = g_new0 (SlimComm, 1);
  comm->ops = &mpi_ops;
  comm->rank = rank;
  comm->size = size;
  comm->impl = impl;
  return comm;
}
