/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/rotation: time of QuaRot's weight rotations (slim-rotation.h) on
 * one decoder layer of the bench model's shapes (hidden 2048,
 * intermediate 5632): the fast path (signs + in-place Walsh-Hadamard
 * transform, O(n log n) per row) against its _ref twin (the dense
 * blockdiag(Q) product through sgemm, as msModelSlim computes it), for
 *
 *   right  W [5632, 2048] <- W Q          (gate_proj / up_proj, input side)
 *   left   W [2048, 5632] <- Q^T W        (down_proj, output side)
 *
 * with Q of order 2048 (block_size -1) or --block.  Each is run --repeats
 * times on a fresh copy and the best time is reported (the machine is
 * shared); the last line prints the ratio dense / fast and whether the
 * fast path wins, and the largest difference between the two results.
 *
 * Usage: rotation [--threads N] [--block B] [--repeats N]
 */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "slim-linalg.h"
#include "slim-rotation.h"

#define BENCH_HIDDEN 2048
#define BENCH_INTER 5632

typedef void (*BenchRight) (const SlimRotation *r, float *w, gint64 rows, gint64 dim);
typedef void (*BenchLeft) (const SlimRotation *r, float *w, gint64 dim, gint64 cols, float *b);

static double
bench_best_right (BenchRight f,
                  const SlimRotation *r,
                  const float *w0,
                  float *w,
                  gint64 rows,
                  gint64 dim,
                  int repeats)
{
  double best = INFINITY;

  for (int i = 0; i < repeats; i++)
    {
      gint64 t0;

      memcpy (w, w0, (size_t)(rows * dim) * sizeof (float));
      t0 = g_get_monotonic_time ();
      f (r, w, rows, dim);
      best = MIN (best, (double)(g_get_monotonic_time () - t0) / 1e6);
    }
  return best;
}

static double
bench_best_left (BenchLeft f,
                 const SlimRotation *r,
                 const float *w0,
                 float *w,
                 gint64 dim,
                 gint64 cols,
                 int repeats)
{
  double best = INFINITY;

  for (int i = 0; i < repeats; i++)
    {
      gint64 t0;

      memcpy (w, w0, (size_t)(dim * cols) * sizeof (float));
      t0 = g_get_monotonic_time ();
      f (r, w, dim, cols, NULL);
      best = MIN (best, (double)(g_get_monotonic_time () - t0) / 1e6);
    }
  return best;
}

static double
bench_max_diff (const float *a, const float *b, gint64 n)
{
  double worst = 0.0;

  for (gint64 i = 0; i < n; i++)
    worst = MAX (worst, fabs ((double)a[i] - (double)b[i]));
  return worst;
}

int
main (int argc, char **argv)
{
  gint threads = 1, block = BENCH_HIDDEN, repeats = 3;
  GOptionEntry entries[]
      = { { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "OpenBLAS threads (default 1)", "N" },
          { "block", 0, 0, G_OPTION_ARG_INT, &block, "rotation order (default 2048)", "B" },
          { "repeats", 0, 0, G_OPTION_ARG_INT, &repeats, "runs per phase (default 3)", "N" },
          { NULL } };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- QuaRot weight rotation speed");
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimRotation) rot = NULL;
  const gint64 n = (gint64)BENCH_HIDDEN * BENCH_INTER;
  g_autofree float *w0 = NULL;   /* [5632, 2048] or [2048, 5632], seeded */
  g_autofree float *fast = NULL; /* same shape */
  g_autofree float *ref = NULL;  /* same shape */
  double t_fast_r, t_ref_r, t_fast_l, t_ref_l, diff_r, diff_l;
  GRand *rand;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || repeats < 1 || block < 1
      || BENCH_HIDDEN % block != 0)
    {
      fprintf (stderr, "rotation: %s\n",
               error != NULL ? error->message : "bad --repeats or --block (must divide 2048)");
      return 2;
    }
  slim_linalg_set_n_threads (threads);
  rot = slim_rotation_new_hadamard (block, SLIM_ROTATION_SEED, &error);
  if (rot == NULL)
    {
      fprintf (stderr, "rotation: %s\n", error->message);
      return 2;
    }
  w0 = g_new (float, n);
  fast = g_new (float, n);
  ref = g_new (float, n);
  rand = g_rand_new_with_seed (7);
  for (gint64 i = 0; i < n; i++)
    w0[i] = (float)g_rand_double_range (rand, -0.05, 0.05);
  g_rand_free (rand);

  t_fast_r = bench_best_right (slim_rotation_apply_right, rot, w0, fast, BENCH_INTER, BENCH_HIDDEN,
                               repeats);
  t_ref_r = bench_best_right (slim_rotation_apply_right_ref, rot, w0, ref, BENCH_INTER,
                              BENCH_HIDDEN, repeats);
  diff_r = bench_max_diff (fast, ref, n);
  t_fast_l = bench_best_left (slim_rotation_apply_left, rot, w0, fast, BENCH_HIDDEN, BENCH_INTER,
                              repeats);
  t_ref_l = bench_best_left (slim_rotation_apply_left_ref, rot, w0, ref, BENCH_HIDDEN, BENCH_INTER,
                             repeats);
  diff_l = bench_max_diff (fast, ref, n);

  printf ("rotation order %d, %d OpenBLAS thread(s), best of %d\n", block, threads, repeats);
  printf ("right W[%d, %d] Q    fast %8.4f s   dense %8.4f s   ratio %6.2f   max diff %.2e\n",
          BENCH_INTER, BENCH_HIDDEN, t_fast_r, t_ref_r, t_ref_r / t_fast_r, diff_r);
  printf ("left  Q^T W[%d, %d]  fast %8.4f s   dense %8.4f s   ratio %6.2f   max diff %.2e\n",
          BENCH_HIDDEN, BENCH_INTER, t_fast_l, t_ref_l, t_ref_l / t_fast_l, diff_l);
  printf ("dense / fast: %.2f (right), %.2f (left): the fast path %s\n", t_ref_r / t_fast_r,
          t_ref_l / t_fast_l, t_fast_r < t_ref_r && t_fast_l < t_ref_l ? "wins" : "does NOT win");
  return 0;
}
