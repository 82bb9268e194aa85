/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/adapt-rotation: time of adapt_rotation stage 1's rotation learning
 * (slim-adapt-rotation.h), the part of a prior stage that grows with the
 * hidden size: one Newton-Schulz polar factor (100 iterations, two d x d
 * sgemm each) against its plain-loop _ref twin (at --ref_hidden, the
 * loops being O(d^3) in scalar code), then a whole optimization of --steps
 * steps on --rows synthetic activation rows of order --hidden with two
 * outlier channels (msModelSlim's defaults: 20 steps, up to 2048 rows per
 * linear).  The calibration pass that collects the rows is a plain
 * forward; `slimflow quant` prints the prior stage's total time.
 *
 * Usage: adapt-rotation [--threads N] [--hidden D] [--rows N] [--steps S]
 *                       [--ref_hidden D]
 */
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "slim-adapt-rotation.h"
#include "slim-linalg.h"
#include "slim-rotation.h"

static double
now_s (void)
{
  return (double)g_get_monotonic_time () / G_USEC_PER_SEC;
}

/* x (n) with N(0, 1)-like values from a fixed LCG (Irwin-Hall of 4). */
static void
fill (float *x, gint64 n, guint32 seed)
{
  guint32 s = seed;

  for (gint64 i = 0; i < n; i++)
    {
      float acc = 0.0f;
      for (int k = 0; k < 4; k++)
        {
          s = s * 1664525u + 1013904223u;
          acc += (float)(s >> 8) / (float)(1u << 24);
        }
      x[i] = (acc - 2.0f) * 1.7320508f;
    }
}

int
main (int argc, char **argv)
{
  gint threads = 1, hidden = 1024, rows = 2048, steps = 20, ref_hidden = 128;
  GOptionEntry entries[]
      = { { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "OpenBLAS threads (default 1)", "N" },
          { "hidden", 0, 0, G_OPTION_ARG_INT, &hidden, "order d (default 1024)", "D" },
          { "rows", 0, 0, G_OPTION_ARG_INT, &rows, "activation rows (default 2048)", "N" },
          { "steps", 0, 0, G_OPTION_ARG_INT, &steps, "optimization steps (default 20)", "S" },
          { "ref_hidden", 0, 0, G_OPTION_ARG_INT, &ref_hidden,
            "order of the fast-vs-ref Newton-Schulz timing (default 128)", "D" },
          { NULL } };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- adapt_rotation stage 1 speed");
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimRotation) h = NULL;
  g_autofree float *acts = NULL, *hd = NULL, *out = NULL, *c = NULL, *x1 = NULL, *x2 = NULL;
  SlimAdaptRotationConfig cfg;
  guint done = 0;
  double loss = 0.0, t0, t_fast, t_ref, t_opt, diff = 0.0;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || hidden < 2 || rows < 1 || steps < 1
      || ref_hidden < 2)
    {
      fprintf (stderr, "adapt-rotation: %s\n", error != NULL ? error->message : "bad option");
      return 2;
    }
  slim_linalg_set_n_threads (threads);

  /* one Newton-Schulz factor, fast vs ref, at ref_hidden */
  c = g_new (float, (gsize)ref_hidden *ref_hidden);  /* (ref_hidden, ref_hidden) */
  x1 = g_new (float, (gsize)ref_hidden *ref_hidden); /* (ref_hidden, ref_hidden) */
  x2 = g_new (float, (gsize)ref_hidden *ref_hidden); /* (ref_hidden, ref_hidden) */
  fill (c, (gint64)ref_hidden * ref_hidden, 7);
  for (gint i = 0; i < ref_hidden; i++)
    c[(gsize)i * ref_hidden + i] += 4.0f;
  t0 = now_s ();
  slim_newton_schulz_polar (c, ref_hidden, SLIM_ADAPT_ROTATION_NS_ITERS, x1);
  t_fast = now_s () - t0;
  t0 = now_s ();
  slim_newton_schulz_polar_ref (c, ref_hidden, SLIM_ADAPT_ROTATION_NS_ITERS, x2);
  t_ref = now_s () - t0;
  for (gint64 i = 0; i < (gint64)ref_hidden * ref_hidden; i++)
    diff = MAX (diff, fabs ((double)x1[i] - x2[i]));
  printf ("newton-schulz d=%d, %d iterations, %d thread(s): sgemm %.4f s, ref %.4f s (%.1fx), "
          "max diff %.2g\n",
          ref_hidden, SLIM_ADAPT_ROTATION_NS_ITERS, threads, t_fast, t_ref, t_ref / t_fast, diff);

  /* a whole optimization at hidden */
  h = slim_rotation_new_hadamard (hidden, SLIM_ROTATION_SEED, &error);
  if (h == NULL)
    {
      fprintf (stderr, "adapt-rotation: %s\n", error->message);
      return 2;
    }
  hd = g_new (float, (gsize)hidden *hidden);  /* (hidden, hidden) */
  acts = g_new (float, (gsize)rows *hidden);  /* (rows, hidden) */
  out = g_new (float, (gsize)hidden *hidden); /* (hidden, hidden) */
  slim_rotation_to_dense (h, hd);
  fill (acts, (gint64)rows * hidden, 11);
  for (gint r = 0; r < rows; r++)
    {
      acts[(gsize)r * hidden + 3] *= 20.0f;
      acts[(gsize)r * hidden + hidden / 2] *= 8.0f;
    }
  slim_adapt_rotation_config_init (&cfg, 4, (guint)steps);
  t0 = now_s ();
  slim_adapt_rotation_optimize (&cfg, acts, rows, hidden, hd, out, &done, &loss);
  t_opt = now_s () - t0;
  printf ("optimize d=%d, %d rows, int4: %u of %d steps in %.3f s (%.3f s per step), best loss "
          "%.3g, max |R^T R - I| %.2g\n",
          hidden, rows, done, steps, t_opt, t_opt / MAX (done, 1u), loss,
          slim_orthogonality_error (out, hidden));
  return 0;
}
