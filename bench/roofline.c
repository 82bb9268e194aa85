/* SPDX-License-Identifier: Apache-2.0
 *
 * bench/roofline: throughput of the matrix paths slimflow has, on the
 * bench model's linear shapes (hidden 2048, q 2048, kv 1024, intermediate
 * 5632; 8 x 512 = 4096 tokens by default), next to the machine's peak that
 * this program measures with tight register-only kernel loops:
 *
 *   fp32   OpenBLAS sgemm (slim_linalg_sgemm, B transposed as the forward
 *          uses it) against an AVX-512 FMA loop (12 independent
 *          accumulators, 32 FLOPs per vfmadd231ps);
 *   int8   slim_igemm_s8s8 (AVX512-VNNI and portable paths) against a
 *          vpdpbusd loop (128 ops per instruction: 64 multiply-adds).
 *
 *   bf16   peak only: a vdpbf16ps loop (64 FLOPs per instruction).  No
 *          bf16 GEMM is measured: Debian's OpenBLAS 0.3.21 exports no
 *          cblas_sbgemm, this CPU has no AMX, and slimflow has no bf16
 *          kernel (at twice the fp32 peak the split-precision product's
 *          two bf16 products cost as much as fp32; the line printed says).
 *
 * Figures are GFLOP/s or GOP/s (2 per multiply-add) with the fraction of
 * the measured peak for the same thread count.
 *
 * Usage: roofline [--threads N] [--tokens N] [--reps N]
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "slim-igemm.h"
#include "slim-linalg.h"

static const gint64 kShapes[][2] = { /* (n_out, n_in) */
                                     { 2048, 2048 },
                                     { 1024, 2048 },
                                     { 5632, 2048 },
                                     { 2048, 5632 }
};
static const char *const kShapeNames[]
    = { "q/o 2048x2048", "k/v 1024x2048", "gate/up 5632x2048", "down 2048x5632" };

#define PEAK_ITERS 5000000L
#define PEAK_TRIES 5 /* the best of: other processes may take the core */

#if defined(__x86_64__)
/* 12 named accumulators (registers, not memory), independent chains
 * deeper than the FMA / VNNI latency times the ports. */
#define PEAK_DECL(T, init)                                                                         \
  T r0 = init (0), r1 = init (1), r2 = init (2), r3 = init (3), r4 = init (4), r5 = init (5);      \
  T r6 = init (6), r7 = init (7), r8 = init (8), r9 = init (9), r10 = init (10), r11 = init (11)
#define PEAK_STEP(op)                                                                              \
  r0 = op (r0);                                                                                    \
  r1 = op (r1);                                                                                    \
  r2 = op (r2);                                                                                    \
  r3 = op (r3);                                                                                    \
  r4 = op (r4);                                                                                    \
  r5 = op (r5);                                                                                    \
  r6 = op (r6);                                                                                    \
  r7 = op (r7);                                                                                    \
  r8 = op (r8);                                                                                    \
  r9 = op (r9);                                                                                    \
  r10 = op (r10);                                                                                  \
  r11 = op (r11)
#define PEAK_SUM(reduce)                                                                           \
  (reduce (r0) + reduce (r1) + reduce (r2) + reduce (r3) + reduce (r4) + reduce (r5) + reduce (r6) \
   + reduce (r7) + reduce (r8) + reduce (r9) + reduce (r10) + reduce (r11))

__attribute__ ((target ("avx512f"))) static double
peak_fma_once (void)
{
  const __m512 x = _mm512_set1_ps (1.0000001f), y = _mm512_set1_ps (0.9999999f);
#define INIT(i) _mm512_set1_ps ((float)(i))
#define FMA(r) _mm512_fmadd_ps ((r), x, y)
  PEAK_DECL (__m512, INIT);
  gint64 t0 = g_get_monotonic_time ();
  float sink;

  for (long it = 0; it < PEAK_ITERS; it++)
    {
      PEAK_STEP (FMA);
    }
  sink = PEAK_SUM (_mm512_reduce_add_ps);
  if (sink == 12345.678f)
    printf (" ");
#undef INIT
#undef FMA
  return (double)PEAK_ITERS * 12 * 32 / ((g_get_monotonic_time () - t0) / 1e6);
}

__attribute__ ((target ("avx512f,avx512vnni"))) static double
peak_vnni_once (void)
{
  const __m512i x = _mm512_set1_epi8 (3), y = _mm512_set1_epi8 (-2);
#define INIT(i) _mm512_set1_epi32 (i)
#define DP(r) _mm512_dpbusd_epi32 ((r), x, y)
  PEAK_DECL (__m512i, INIT);
  gint64 t0 = g_get_monotonic_time ();
  int sink;

  for (long it = 0; it < PEAK_ITERS; it++)
    {
      PEAK_STEP (DP);
    }
  sink = PEAK_SUM (_mm512_reduce_add_epi32);
  if (sink == 12345)
    printf (" ");
#undef INIT
#undef DP
  return (double)PEAK_ITERS * 12 * 128 / ((g_get_monotonic_time () - t0) / 1e6);
}

/* vdpbf16ps: 16 lanes x 2 bf16 products added into float32, 64 FLOPs. */
__attribute__ ((target ("avx512f,avx512bf16"))) static double
peak_bf16_once (void)
{
  const __m512bh x = (__m512bh)_mm512_set1_epi16 (0x3f80); /* 1.0 */
  const __m512bh y = (__m512bh)_mm512_set1_epi16 (0x3c00); /* 2^-7 */
#define INIT(i) _mm512_set1_ps ((float)(i))
#define DP(r) _mm512_dpbf16_ps ((r), x, y)
  PEAK_DECL (__m512, INIT);
  gint64 t0 = g_get_monotonic_time ();
  float sink;

  for (long it = 0; it < PEAK_ITERS; it++)
    {
      PEAK_STEP (DP);
    }
  sink = PEAK_SUM (_mm512_reduce_add_ps);
  if (sink == 12345.678f)
    printf (" ");
#undef INIT
#undef DP
  return (double)PEAK_ITERS * 12 * 64 / ((g_get_monotonic_time () - t0) / 1e6);
}
#endif

typedef double (*PeakFunc) (void);

typedef struct
{
  PeakFunc func;
  double result;
} PeakJob;

static gpointer
run_peak (gpointer data)
{
  PeakJob *job = data;
  job->result = job->func ();
  return NULL;
}

/* Sum over threads running func at once (each on its own core). */
static double
peak (PeakFunc func, gint threads)
{
  PeakJob jobs[16];
  GThread *t[16];
  double sum = 0;

  threads = CLAMP (threads, 1, 16);
  for (gint i = 0; i < threads; i++)
    jobs[i] = (PeakJob){ func, 0 };
  for (gint i = 1; i < threads; i++)
    t[i] = g_thread_new ("peak", run_peak, &jobs[i]);
  run_peak (&jobs[0]);
  for (gint i = 1; i < threads; i++)
    g_thread_join (t[i]);
  for (gint i = 0; i < threads; i++)
    sum += jobs[i].result;
  return sum;
}

static double
peak_best (PeakFunc func, gint threads)
{
  double best = 0;

  for (int i = 0; i < PEAK_TRIES; i++)
    best = MAX (best, peak (func, threads));
  return best;
}

static float
uniform (guint32 *state)
{
  *state = *state * 1664525u + 1013904223u;
  return (float)(*state >> 8) / (float)(1u << 24) - 0.5f;
}

int
main (int argc, char **argv)
{
  gint threads = 2;
  gint64 tokens = 4096;
  gint reps = 3;
  GOptionEntry entries[]
      = { { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "Threads (default 2)", "N" },
          { "tokens", 0, 0, G_OPTION_ARG_INT64, &tokens, "Activation rows (default 4096)", "N" },
          { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "Repetitions per shape (default 3)", "N" },
          { NULL } };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- matrix throughput vs peak");
  g_autoptr (GError) error = NULL;
  double fma_peak = 0, vnni_peak = 0, bf16_peak = 0;
  SlimIgemmPath native = slim_igemm_get_path ();
  guint32 rng = 12345;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || threads < 1 || tokens < 1 || reps < 1)
    {
      fprintf (stderr, "roofline: %s\n", error != NULL ? error->message : "bad option value");
      return 2;
    }
  slim_linalg_set_n_threads (threads);

#if defined(__x86_64__)
  __builtin_cpu_init ();
  if (__builtin_cpu_supports ("avx512f"))
    fma_peak = peak_best (peak_fma_once, threads);
  if (__builtin_cpu_supports ("avx512vnni"))
    vnni_peak = peak_best (peak_vnni_once, threads);
  if (__builtin_cpu_supports ("avx512bf16"))
    bf16_peak = peak_best (peak_bf16_once, threads);
#endif
  printf ("roofline: %d thread(s), %" G_GINT64_FORMAT " tokens, OpenBLAS core %s\n", threads,
          tokens, slim_linalg_get_core_name ());
  printf ("peak (tight loops): fp32 FMA %.1f GFLOP/s, bf16 vdpbf16ps %.1f GFLOP/s, int8 VNNI "
          "%.1f GOP/s\n",
          fma_peak / 1e9, bf16_peak / 1e9, vnni_peak / 1e9);
  if (fma_peak > 0 && bf16_peak > 0)
    printf ("bf16 / fp32 peak %.2fx: a split-precision product (x = bf16 hi + bf16 lo, two bf16 "
            "products) costs %.2fx the fp32 peak time\n",
            bf16_peak / fma_peak, 2.0 * fma_peak / bf16_peak);
  printf ("%-20s %14s %14s %16s %8s\n", "shape (n_out x n_in)", "sgemm GFLOP/s", "VNNI GOP/s",
          "portable GOP/s", "int8/fp32");

  double tot_ops = 0, tot_s = 0, tot_v = 0, tot_p = 0;
  for (guint s = 0; s < G_N_ELEMENTS (kShapes); s++)
    {
      const gint64 n = kShapes[s][0], k = kShapes[s][1];
      const double ops = 2.0 * (double)tokens * (double)n * (double)k;
      g_autofree float *af = g_new (float, tokens *k);    /* (tokens, k) */
      g_autofree float *bf = g_new (float, n *k);         /* (n, k) */
      g_autofree float *cf = g_new (float, tokens *n);    /* (tokens, n) */
      g_autofree gint8 *ai = g_new (gint8, tokens * k);   /* (tokens, k) */
      g_autofree gint8 *bi = g_new (gint8, n * k);        /* (n, k) */
      g_autofree gint32 *ci = g_new (gint32, tokens * n); /* (tokens, n) */
      g_autoptr (SlimIgemmPackedB) packed = NULL;
      double t_s = G_MAXDOUBLE, t_v = G_MAXDOUBLE, t_p = G_MAXDOUBLE;

      for (gint64 i = 0; i < tokens * k; i++)
        {
          af[i] = uniform (&rng);
          ai[i] = (gint8)(af[i] * 250);
        }
      for (gint64 i = 0; i < n * k; i++)
        {
          bf[i] = uniform (&rng);
          bi[i] = (gint8)(bf[i] * 250);
        }
      packed = slim_igemm_pack_b (bi, n, k, k, &error);
      if (packed == NULL)
        {
          fprintf (stderr, "roofline: %s\n", error->message);
          return 1;
        }
      for (gint r = 0; r < reps; r++)
        {
          gint64 t0 = g_get_monotonic_time ();
          slim_linalg_sgemm (FALSE, TRUE, tokens, n, k, 1.0f, af, k, bf, k, 0.0f, cf, n);
          t_s = MIN (t_s, (g_get_monotonic_time () - t0) / 1e6);
          if (native == SLIM_IGEMM_PATH_AVX512_VNNI)
            {
              t0 = g_get_monotonic_time ();
              slim_igemm_s8s8_with_path (SLIM_IGEMM_PATH_AVX512_VNNI, ai, tokens, k, packed, ci, n);
              t_v = MIN (t_v, (g_get_monotonic_time () - t0) / 1e6);
            }
          if (r == 0) /* the portable loop is slow: once */
            {
              t0 = g_get_monotonic_time ();
              slim_igemm_s8s8_with_path (SLIM_IGEMM_PATH_PORTABLE, ai, MIN (tokens, 256), k, packed,
                                         ci, n);
              t_p = (g_get_monotonic_time () - t0) / 1e6 * (double)tokens / MIN (tokens, 256);
            }
        }
      printf ("%-20s %14.1f %14.1f %16.1f %7.2fx\n", kShapeNames[s], ops / t_s / 1e9,
              t_v < G_MAXDOUBLE ? ops / t_v / 1e9 : 0.0, ops / t_p / 1e9,
              t_v < G_MAXDOUBLE ? t_s / t_v : 0.0);
      tot_ops += ops;
      tot_s += t_s;
      tot_v += t_v < G_MAXDOUBLE ? t_v : 0;
      tot_p += t_p;
    }
  printf ("all shapes: sgemm %.1f GFLOP/s (%.0f%% of FMA peak), VNNI %.1f GOP/s (%.0f%% of "
          "VNNI peak), portable %.1f GOP/s; int8 / fp32 speed-up %.2fx\n",
          tot_ops / tot_s / 1e9, fma_peak > 0 ? 100.0 * tot_ops / tot_s / fma_peak : 0.0,
          tot_v > 0 ? tot_ops / tot_v / 1e9 : 0.0,
          vnni_peak > 0 && tot_v > 0 ? 100.0 * tot_ops / tot_v / vnni_peak : 0.0,
          tot_ops / tot_p / 1e9, tot_v > 0 ? tot_s / tot_v : 0.0);
  return 0;
}
