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
 * Every collective is started non-blocking and waited for by polling with
 * sleeps (50 us growing to 2 ms) instead of MPI's busy wait: a rank waiting
 * for another one's share of the calibration (dp_layer_wise hands ordered
 * statistics from rank to rank) then leaves the CPU to the ranks that
 * work, which matters when ranks share cores.
 */
#include "slim-comm.h"
#include "slim-comm-private.h"

#include <gio/gio.h>
#include <mpi.h>
#include <string.h>

/* Elements per collective call: fits an int, and bounds the gather
 * buffer of the float64 sum to CHUNK * size doubles. */
#define CHUNK ((gsize)1 << 20)

static gboolean slim_mpi_initialized_here;

typedef struct
{
  MPI_Comm comm;
  gdouble *gather; /* [CHUNK * size] the float64 sum's gather buffer, lazily allocated */
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

/* Waits for a started collective, sleeping between tests. */
static gboolean
wait_for (SlimComm *comm, MPI_Request *request, const char *call, GError **error)
{
  gulong pause_us = 50;

  for (;;)
    {
      int done = 0;

      if (!check (comm, MPI_Test (request, &done, MPI_STATUS_IGNORE), call, error))
        return FALSE;
      if (done)
        return TRUE;
      g_usleep (pause_us);
      pause_us = MIN (pause_us * 2, 2000);
    }
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

static MPI_Comm
mpi_comm (SlimComm *comm)
{
  return ((SlimCommMpi *)comm->impl)->comm;
}

/* Every rank gets every rank's chunk and adds them in rank order. */
static gboolean
mpi_sum_f64_chunk (SlimComm *comm, gdouble *buf, gsize n, GError **error)
{
  SlimCommMpi *impl = comm->impl;
  const gsize size = (gsize)comm->size;
  MPI_Request request;

  if (impl->gather == NULL)
    impl->gather = g_new (gdouble, CHUNK * size);
  if (!check (comm,
              MPI_Iallgather (buf, (int)n, MPI_DOUBLE, impl->gather, (int)n, MPI_DOUBLE, impl->comm,
                              &request),
              "MPI_Iallgather", error)
      || !wait_for (comm, &request, "MPI_Iallgather", error))
    return FALSE;
  for (gsize i = 0; i < n; i++)
    {
      gdouble sum = impl->gather[i];
      for (gsize r = 1; r < size; r++)
        sum += impl->gather[r * n + i];
      buf[i] = sum;
    }
  return TRUE;
}

static gboolean
mpi_allreduce_f64 (SlimComm *comm, gdouble *buf, gsize n, SlimCommOp op, GError **error)
{
  for (gsize done = 0; done < n;)
    {
      gsize m = MIN (n - done, CHUNK);

      if (op == SLIM_COMM_OP_SUM)
        {
          if (!mpi_sum_f64_chunk (comm, buf + done, m, error))
            return FALSE;
        }
      else
        {
          MPI_Request request;

          if (!check (comm,
                      MPI_Iallreduce (MPI_IN_PLACE, buf + done, (int)m, MPI_DOUBLE,
                                      op == SLIM_COMM_OP_MIN ? MPI_MIN : MPI_MAX, mpi_comm (comm),
                                      &request),
                      "MPI_Iallreduce", error)
              || !wait_for (comm, &request, "MPI_Iallreduce", error))
            return FALSE;
        }
      done += m;
    }
  return TRUE;
}

static gboolean
mpi_allreduce_sum_i64 (SlimComm *comm, gint64 *buf, gsize n, GError **error)
{
  G_STATIC_ASSERT (sizeof (gint64) == sizeof (int64_t));
  for (gsize done = 0; done < n;)
    {
      gsize m = MIN (n - done, CHUNK);
      MPI_Request request;

      if (!check (comm,
                  MPI_Iallreduce (MPI_IN_PLACE, buf + done, (int)m, MPI_INT64_T, MPI_SUM,
                                  mpi_comm (comm), &request),
                  "MPI_Iallreduce", error)
          || !wait_for (comm, &request, "MPI_Iallreduce", error))
        return FALSE;
      done += m;
    }
  return TRUE;
}

static gboolean
mpi_broadcast (SlimComm *comm, gpointer buf, gsize n_bytes, gint root, GError **error)
{
  guint8 *bytes = buf;

  for (gsize done = 0; done < n_bytes;)
    {
      gsize m = MIN (n_bytes - done, CHUNK * 64);
      MPI_Request request;

      if (!check (comm,
                  MPI_Ibcast (bytes + done, (int)m, MPI_BYTE, root, mpi_comm (comm), &request),
                  "MPI_Ibcast", error)
          || !wait_for (comm, &request, "MPI_Ibcast", error))
        return FALSE;
      done += m;
    }
  return TRUE;
}

static gboolean
mpi_barrier (SlimComm *comm, GError **error)
{
  MPI_Request request;

  return check (comm, MPI_Ibarrier (mpi_comm (comm), &request), "MPI_Ibarrier", error)
         && wait_for (comm, &request, "MPI_Ibarrier", error);
}

static void
mpi_finalize (SlimComm *comm)
{
  SlimCommMpi *impl = comm->impl;

  if (slim_comm_mpi_is_initialized ())
    MPI_Comm_free (&impl->comm);
  g_free (impl->gather);
  g_free (impl);
}

static const SlimCommOps mpi_ops = {
  mpi_allreduce_f64, mpi_allreduce_sum_i64, mpi_broadcast, mpi_barrier, mpi_finalize,
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
  comm = g_new0 (SlimComm, 1);
  comm->ops = &mpi_ops;
  comm->rank = rank;
  comm->size = size;
  comm->impl = impl;
  return comm;
}
