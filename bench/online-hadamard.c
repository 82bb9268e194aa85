/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/online-hadamard: time of quarot's online full Hadamard rotation of
 * down_proj inputs (down_proj_online_kind: hadamard,
 * slim_online_rotation_hadamard: the fast transform, O(n log n + n k) per
 * token) against the dense product x H / sqrt(n) through sgemm, on
 * --tokens tokens of the Williamson-based sizes 688 = 172 * 4,
 * 4992 = 156 * 32 and 11008 = 172 * 64 (Llama-2-7B's intermediate size).
 * Best of --repeats runs on a fresh copy (the machine is shared); each line
 * prints both times, the ratio dense / fast and the largest difference.
 *
 * Usage: online-hadamard [--threads N] [--tokens T] [--repeats N]
 */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "slim-hadamard.h"
#include "slim-linalg.h"
#include "slim-online-rotation.h"

static const gint64 bench_sizes[] = { 172 * 4, 156 * 32, 172 * 64 };

int
main (int argc, char **argv)
{
  gint threads = 1, tokens = 64, repeats = 3;
  GOptionEntry entries[]
      = { { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "OpenBLAS threads (default 1)", "N" },
          { "tokens", 0, 0, G_OPTION_ARG_INT, &tokens, "tokens per call (default 64)", "T" },
          { "repeats", 0, 0, G_OPTION_ARG_INT, &repeats, "runs per phase (default 3)", "N" },
          { NULL } };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- online Hadamard rotation speed");
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || repeats < 1 || tokens < 1)
    {
      fprintf (stderr, "online-hadamard: %s\n",
               error != NULL ? error->message : "bad --repeats or --tokens");
      return 2;
    }
  slim_linalg_set_n_threads (threads);
  printf ("online Hadamard rotation of %d tokens, %d OpenBLAS thread(s), best of %d\n", tokens,
          threads, repeats);
  for (gsize s = 0; s < G_N_ELEMENTS (bench_sizes); s++)
    {
      const gint64 n = bench_sizes[s];
      gint64 k = 0;
      g_autofree float *had_k = slim_online_rotation_hadamard_base (n, &k, &error); /* (k, k) */
      g_autofree gint8 *had_i8 = NULL;                                              /* (k, k) */
      g_autofree float *h = NULL;    /* (n, n) H / sqrt(n) */
      g_autofree float *x0 = NULL;   /* (tokens, n) */
      g_autofree float *fast = NULL; /* (tokens, n) */
      g_autofree float *dense = NULL;
      double t_fast = INFINITY, t_dense = INFINITY, diff = 0.0;
      const float norm = sqrtf ((float)n);
      GRand *rand;

      if (had_k == NULL)
        {
          fprintf (stderr, "online-hadamard: %s\n", error->message);
          return 1;
        }
      had_i8 = g_new (gint8, k * k);
      for (gint64 i = 0; i < k * k; i++)
        had_i8[i] = (gint8)had_k[i];
      h = g_new (float, n *n);
      slim_hadamard_dense (n, k, k > 1 ? had_i8 : NULL, h);
      for (gint64 i = 0; i < n * n; i++)
        h[i] /= norm;
      x0 = g_new (float, tokens *n);
      fast = g_new (float, tokens *n);
      dense = g_new (float, tokens *n);
      rand = g_rand_new_with_seed (7);
      for (gint64 i = 0; i < tokens * n; i++)
        x0[i] = (float)g_rand_double_range (rand, -1.0, 1.0);
      g_rand_free (rand);
      for (int r = 0; r < repeats; r++)
        {
          gint64 t0;

          memcpy (fast, x0, (gsize)(tokens * n) * sizeof (float));
          t0 = g_get_monotonic_time ();
          if (!slim_online_rotation_hadamard (had_k, k, fast, tokens, n, &error))
            {
              fprintf (stderr, "online-hadamard: %s\n", error->message);
              return 1;
            }
          t_fast = MIN (t_fast, (double)(g_get_monotonic_time () - t0) / 1e6);
          /* x <- H^T x per token: (tokens, n) = x (tokens, n) H (n, n) */
          t0 = g_get_monotonic_time ();
          slim_linalg_sgemm (FALSE, FALSE, tokens, n, n, 1.0f, x0, n, h, n, 0.0f, dense, n);
          t_dense = MIN (t_dense, (double)(g_get_monotonic_time () - t0) / 1e6);
        }
      for (gint64 i = 0; i < tokens * n; i++)
        diff = MAX (diff, fabs ((double)fast[i] - (double)dense[i]));
      printf ("n %6" G_GINT64_FORMAT " = %3" G_GINT64_FORMAT " * %4" G_GINT64_FORMAT
              "   fast %9.6f s   dense sgemm %9.6f s   ratio %7.2f   max diff %.2e\n",
              n, k, n / k, t_fast, t_dense, t_dense / t_fast, diff);
    }
  return 0;
}
