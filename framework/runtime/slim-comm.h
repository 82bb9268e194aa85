/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-comm.h: the communication interface processors call to reduce
 * observer state across the ranks of a data-parallel run (issue #14).
 *
 * A SlimComm has a rank and a size.  Reductions are in place over float64
 * (sum, min, max) and int64 (sum) buffers; broadcast copies rank root's
 * bytes to every rank; barrier waits for all ranks.  Two implementations:
 * the single-process one (size 1, every reduction is the identity) and
 * the MPI one (slim-comm-mpi.c, built when meson found Open MPI: option
 * `mpi`), over a duplicate of MPI_COMM_WORLD whose error handler is
 * MPI_ERRORS_RETURN, so that every MPI failure comes back as a GError.
 *
 * Determinism: min, max and int64 sums are exact in any order.  The MPI
 * float64 sum gathers every rank's buffer and adds them in rank order
 * (((b0 + b1) + b2) + ...) on every rank, so all ranks hold the same
 * bytes and the result depends only on the rank order, never on MPI's
 * reduction tree.  slim_comm_partition gives each rank a contiguous block
 * of samples in a fixed order, so that callers which reduce per-sample
 * float64 partials in sample order get the same bytes for any size.
 *
 * MPI start-up: a program calls slim_comm_mpi_init() once, before any
 * thread is started, when slim_comm_mpi_launched() says it runs under
 * mpirun, and slim_comm_mpi_shutdown() before it exits (the slimflow CLI
 * does both in main).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _SlimComm SlimComm;

SlimComm *slim_comm_new_single (void);

/* TRUE when libslimflow was built with MPI. */
gboolean slim_comm_mpi_is_built (void);
/* TRUE when the process was started by Open MPI's mpirun
 * (OMPI_COMM_WORLD_SIZE is set). */
gboolean slim_comm_mpi_launched (void);
/* MPI_Init_thread (MPI_THREAD_FUNNELED) once; later calls do nothing.
 * FALSE with error when MPI is not built or cannot start. */
gboolean slim_comm_mpi_init (int *argc, char ***argv, GError **error);
/* TRUE once slim_comm_mpi_init() succeeded (and before shutdown). */
gboolean slim_comm_mpi_is_initialized (void);
/* MPI_Finalize when slim_comm_mpi_init() ran; every SlimComm over MPI
 * must be freed first. */
void slim_comm_mpi_shutdown (void);
/* A SlimComm over all the ranks of the job (MPI_COMM_WORLD, duplicated).
 * NULL with error when MPI is not built or not initialized. */
SlimComm *slim_comm_new_mpi (GError **error);
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

/* A wait for another rank longer than this fails with
 * G_IO_ERROR_TIMED_OUT naming that rank (MPI; the environment variable
 * SLIMFLOW_MPI_TIMEOUT overrides it, in seconds, 0 for no limit). */
#define SLIM_COMM_TIMEOUT_ENV "SLIMFLOW_MPI_TIMEOUT"
#define SLIM_COMM_TIMEOUT_DEFAULT 600

/* Ends every rank of the job with exit status code (MPI_Abort), for a
 * rank that failed while the others may wait for it; does nothing with
 * one process. */
void slim_comm_abort (SlimComm *comm, int code);

/* Broadcasts a byte string of any length from root: on root *bytes is
 * read; on the other ranks *bytes (unreferenced when set) is replaced by
 * root's copy. */
gboolean slim_comm_broadcast_bytes (SlimComm *comm, GBytes **bytes, gint root, GError **error);

void slim_comm_partition (gsize n_samples, gint size, gint rank, gsize *first, gsize *count);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimComm, slim_comm_free)

G_END_DECLS
