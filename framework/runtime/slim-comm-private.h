/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-comm-private.h: the table of operations behind a SlimComm, shared
 * by the single-process implementation (slim-comm.c) and the MPI one
 * (slim-comm-mpi.c).  Not installed, not for plugins.  It spells
 * SlimComm as struct _SlimComm so as not to include slim-comm.h (whose
 * module includes this header).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  SLIM_COMM_OP_SUM,
  SLIM_COMM_OP_MIN,
  SLIM_COMM_OP_MAX,
} SlimCommOp;

typedef struct
{
  /* float64 sum, min, max in place */
  gboolean (*allreduce_f64) (
      struct _SlimComm *comm, gdouble *buf, gsize n, SlimCommOp op, GError **error);
  /* int64 sum in place */
  gboolean (*allreduce_sum_i64) (struct _SlimComm *comm, gint64 *buf, gsize n, GError **error);
  /* root is a valid rank (checked by the caller) */
  gboolean (*broadcast) (
      struct _SlimComm *comm, gpointer buf, gsize n_bytes, gint root, GError **error);
  gboolean (*barrier) (struct _SlimComm *comm, GError **error);
  void (*finalize) (struct _SlimComm *comm);        /* frees what the implementation added */
  void (*abort) (struct _SlimComm *comm, int code); /* NULL: nothing to stop */
} SlimCommOps;

/* Seconds a rank waits for another before failing (SLIMFLOW_MPI_TIMEOUT,
 * default SLIM_COMM_TIMEOUT_DEFAULT; 0: forever). */
guint slim_comm_timeout_from_env (void);

struct _SlimComm
{
  const SlimCommOps *ops;
  gint rank;
  gint size;
  gpointer impl; /* the implementation's own data */
};

G_END_DECLS
