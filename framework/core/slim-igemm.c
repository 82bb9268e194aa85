/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-igemm.c: exact int8 matrix products (see slim-igemm.h).
 *
 * The VNNI path works on blocks: K in slices of KC bytes, M in panels of
 * MC rows, N in groups of 4 weight rows; a 4 x 4 register tile of int32
 * accumulators (16 zmm) takes 4 activation and 4 weight vectors of 64
 * bytes per step.  Partial sums of a K slice are added into C, so C holds
 * the exact sum after the last slice; 128 * rowsum(B) is subtracted when
 * the first slice is stored.  N is split over the threads of
 * slim_linalg_get_n_threads() for large products (disjoint columns of C).
 */
#include "slim-igemm.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SLIM_IGEMM_HAVE_X86 1
#else
#define SLIM_IGEMM_HAVE_X86 0
#endif

#include "slim-error.h"
#include "slim-linalg.h"

#define SLIM_IGEMM_ALIGN 64
#define KC 1024 /* bytes of K per slice: 4 x KC weight bytes stay in L1 */
#define MC 32   /* activation rows per panel: MC x KC bytes in L1 / L2 */
/* below this many multiply-adds one thread does it all */
#define SLIM_IGEMM_THREAD_MIN_OPS (1 << 24)

struct _SlimIgemmPackedB
{
  gint64 n, k, kp; /* kp: k rounded up to 64 */
  gint8 *data;     /* (n, kp) zero-padded, 64-byte aligned */
  gint32 *rowsum;  /* (n) sum over k of each row */
};

SlimIgemmPackedB *
slim_igemm_pack_b (const gint8 *b, gint64 n, gint64 k, gint64 ldb, GError **error)
{
  SlimIgemmPackedB *p;

  if (n <= 0 || k <= 0 || k > SLIM_IGEMM_MAX_K || ldb < k || n > G_MAXINT64 / 2 / ldb)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "int8 product: weight of %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
                   " (row stride %" G_GINT64_FORMAT ") is outside 1..%d input channels",
                   n, k, ldb, SLIM_IGEMM_MAX_K);
      return NULL;
    }
  p = g_new0 (SlimIgemmPackedB, 1);
  p->n = n;
  p->k = k;
  p->kp = (k + 63) / 64 * 64;
  p->data = g_aligned_alloc0 ((gsize)(n * p->kp), 1, SLIM_IGEMM_ALIGN);
  p->rowsum = g_new (gint32, n);
  for (gint64 j = 0; j < n; j++)
    {
      gint32 sum = 0;
      memcpy (p->data + j * p->kp, b + j * ldb, (size_t)k);
      for (gint64 kk = 0; kk < k; kk++)
        sum += b[j * ldb + kk];
      p->rowsum[j] = sum;
    }
  return p;
}

void
slim_igemm_packed_b_free (SlimIgemmPackedB *packed)
{
  if (packed == NULL)
    return;
  g_aligned_free (packed->data);
  g_free (packed->rowsum);
  g_free (packed);
}

gint64
slim_igemm_packed_b_get_n (const SlimIgemmPackedB *packed)
{
  return packed->n;
}

gint64
slim_igemm_packed_b_get_k (const SlimIgemmPackedB *packed)
{
  return packed->k;
}

void
slim_igemm_s8s8_ref (const gint8 *a,
                     const gint8 *b,
                     gint64 m,
                     gint64 n,
                     gint64 k,
                     gint64 lda,
                     gint64 ldb,
                     gint32 *c,
                     gint64 ldc)
{
  for (gint64 i = 0; i < m; i++)
    for (gint64 j = 0; j < n; j++)
      {
        gint32 sum = 0;
        for (gint64 kk = 0; kk < k; kk++)
          sum += (gint32)a[i * lda + kk] * (gint32)b[j * ldb + kk];
        c[i * ldc + j] = sum;
      }
}

/* ---- portable path ------------------------------------------------------ */

static void
igemm_portable (const gint8 *a,
                gint64 m,
                gint64 lda,
                const SlimIgemmPackedB *b,
                gint64 n_begin,
                gint64 n_end,
                gint32 *c,
                gint64 ldc)
{
  for (gint64 i = 0; i < m; i++)
    for (gint64 j = n_begin; j < n_end; j++)
      {
        const gint8 *x = a + i * lda;
        const gint8 *w = b->data + j * b->kp;
        gint32 sum = 0;
        for (gint64 kk = 0; kk < b->k; kk++)
          sum += (gint32)x[kk] * (gint32)w[kk];
        c[i * ldc + j] = sum;
      }
}

/* ---- AVX512-VNNI path --------------------------------------------------- */

#if SLIM_IGEMM_HAVE_X86

#define VNNI_TARGET __attribute__ ((target ("avx512f,avx512bw,avx512vnni")))

/* 64 activation bytes from x (only the first `valid` when < 64: the rest
 * read as 0), as unsigned bytes x + 128. */
VNNI_TARGET static inline __m512i
load_a (const gint8 *x, gint64 valid)
{
  const __m512i flip = _mm512_set1_epi8 ((char)0x80);
  __m512i v = valid >= 64 ? _mm512_loadu_si512 ((const void *)x)
                          : _mm512_maskz_loadu_epi8 ((1ULL << valid) - 1, x);
  return _mm512_xor_si512 (v, flip);
}

/* C[i][j0 + j] of one tile: store sum minus 128 rowsum (first slice) or
 * add sum.  Modular (unsigned) adds: slice partials may leave the int32
 * range, the final exact sum does not (K bound). */
static inline void
tile_out (gint32 *out, gint32 sum, gint32 rowsum, gboolean first)
{
  if (first)
    *out = (gint32)((guint32)sum - 128u * (guint32)rowsum);
  else
    *out = (gint32)((guint32)*out + (guint32)sum);
}

/* The full 4 x 4 tile over bytes [k0, k1) of K: 16 accumulators held in
 * registers (named, not an array, so that the compiler keeps them there). */
VNNI_TARGET static void
vnni_tile_4x4 (const gint8 *a,
               gint64 lda,
               const SlimIgemmPackedB *b,
               gint64 j0,
               gint64 k0,
               gint64 k1,
               gboolean first,
               gint32 *c,
               gint64 ldc)
{
  const gint8 *w0 = b->data + (j0 + 0) * b->kp, *w1 = b->data + (j0 + 1) * b->kp;
  const gint8 *w2 = b->data + (j0 + 2) * b->kp, *w3 = b->data + (j0 + 3) * b->kp;
#define SLIM_ACC_ROW(i)                                                                            \
  __m512i c##i##0 = _mm512_setzero_si512 (), c##i##1 = _mm512_setzero_si512 ();                    \
  __m512i c##i##2 = _mm512_setzero_si512 (), c##i##3 = _mm512_setzero_si512 ()
  SLIM_ACC_ROW (0);
  SLIM_ACC_ROW (1);
  SLIM_ACC_ROW (2);
  SLIM_ACC_ROW (3);
#undef SLIM_ACC_ROW

  for (gint64 kk = k0; kk < k1; kk += 64)
    {
      const gint64 valid = b->k - kk;
      const __m512i x0 = load_a (a + 0 * lda + kk, valid);
      const __m512i x1 = load_a (a + 1 * lda + kk, valid);
      const __m512i x2 = load_a (a + 2 * lda + kk, valid);
      const __m512i x3 = load_a (a + 3 * lda + kk, valid);
      __m512i w;
#define SLIM_ACC_COL(j)                                                                            \
  w = _mm512_load_si512 ((const void *)(w##j + kk));                                               \
  c0##j = _mm512_dpbusd_epi32 (c0##j, x0, w);                                                      \
  c1##j = _mm512_dpbusd_epi32 (c1##j, x1, w);                                                      \
  c2##j = _mm512_dpbusd_epi32 (c2##j, x2, w);                                                      \
  c3##j = _mm512_dpbusd_epi32 (c3##j, x3, w)
      SLIM_ACC_COL (0);
      SLIM_ACC_COL (1);
      SLIM_ACC_COL (2);
      SLIM_ACC_COL (3);
#undef SLIM_ACC_COL
    }
#define SLIM_OUT_ROW(i)                                                                            \
  tile_out (c + i * ldc + j0 + 0, _mm512_reduce_add_epi32 (c##i##0), b->rowsum[j0 + 0], first);    \
  tile_out (c + i * ldc + j0 + 1, _mm512_reduce_add_epi32 (c##i##1), b->rowsum[j0 + 1], first);    \
  tile_out (c + i * ldc + j0 + 2, _mm512_reduce_add_epi32 (c##i##2), b->rowsum[j0 + 2], first);    \
  tile_out (c + i * ldc + j0 + 3, _mm512_reduce_add_epi32 (c##i##3), b->rowsum[j0 + 3], first)
  SLIM_OUT_ROW (0);
  SLIM_OUT_ROW (1);
  SLIM_OUT_ROW (2);
  SLIM_OUT_ROW (3);
#undef SLIM_OUT_ROW
}

/* A partial tile (mr, nr < 4 on the edges of C), one pair at a time. */
VNNI_TARGET static void
vnni_tile_edge (const gint8 *a,
                gint64 lda,
                gint64 mr,
                const SlimIgemmPackedB *b,
                gint64 j0,
                gint64 nr,
                gint64 k0,
                gint64 k1,
                gboolean first,
                gint32 *c,
                gint64 ldc)
{
  for (gint64 i = 0; i < mr; i++)
    for (gint64 j = 0; j < nr; j++)
      {
        const gint8 *w = b->data + (j0 + j) * b->kp;
        __m512i acc = _mm512_setzero_si512 ();
        for (gint64 kk = k0; kk < k1; kk += 64)
          acc = _mm512_dpbusd_epi32 (acc, load_a (a + i * lda + kk, b->k - kk),
                                     _mm512_load_si512 ((const void *)(w + kk)));
        tile_out (c + i * ldc + j0 + j, _mm512_reduce_add_epi32 (acc), b->rowsum[j0 + j], first);
      }
}

VNNI_TARGET static void
igemm_vnni (const gint8 *a,
            gint64 m,
            gint64 lda,
            const SlimIgemmPackedB *b,
            gint64 n_begin,
            gint64 n_end,
            gint32 *c,
            gint64 ldc)
{
  for (gint64 k0 = 0; k0 < b->kp; k0 += KC)
    {
      const gint64 k1 = MIN (k0 + KC, b->kp);
      for (gint64 m0 = 0; m0 < m; m0 += MC)
        {
          const gint64 m1 = MIN (m0 + MC, m);
          for (gint64 j0 = n_begin; j0 < n_end; j0 += 4)
            {
              const gint64 nr = MIN (4, n_end - j0);
              for (gint64 i0 = m0; i0 < m1; i0 += 4)
                if (nr == 4 && m1 - i0 >= 4)
                  vnni_tile_4x4 (a + i0 * lda, lda, b, j0, k0, k1, k0 == 0, c + i0 * ldc, ldc);
                else
                  vnni_tile_edge (a + i0 * lda, lda, MIN (4, m1 - i0), b, j0, nr, k0, k1, k0 == 0,
                                  c + i0 * ldc, ldc);
            }
        }
    }
}

static gboolean
cpu_has_vnni (void)
{
  static gint cached = -1;

  if (g_atomic_int_get (&cached) < 0)
    {
      __builtin_cpu_init ();
      g_atomic_int_set (&cached, __builtin_cpu_supports ("avx512vnni")
                                     && __builtin_cpu_supports ("avx512bw"));
    }
  return g_atomic_int_get (&cached) == 1;
}

#else

static gboolean
cpu_has_vnni (void)
{
  return FALSE;
}

#endif

SlimIgemmPath
slim_igemm_get_path (void)
{
  const char *force = g_getenv ("SLIMFLOW_IGEMM");

  if (force != NULL && g_strcmp0 (force, "portable") == 0)
    return SLIM_IGEMM_PATH_PORTABLE;
  return cpu_has_vnni () ? SLIM_IGEMM_PATH_AVX512_VNNI : SLIM_IGEMM_PATH_PORTABLE;
}

const char *
slim_igemm_path_name (SlimIgemmPath path)
{
  return path == SLIM_IGEMM_PATH_AVX512_VNNI ? "avx512_vnni" : "portable";
}

/* ---- dispatch and threads ----------------------------------------------- */

typedef struct
{
  SlimIgemmPath path;
  const gint8 *a;
  gint64 m, lda;
  const SlimIgemmPackedB *b;
  gint64 n_begin, n_end;
  gint32 *c;
  gint64 ldc;
} SlimIgemmJob;

static void
run_job (const SlimIgemmJob *job)
{
#if SLIM_IGEMM_HAVE_X86
  if (job->path == SLIM_IGEMM_PATH_AVX512_VNNI)
    {
      igemm_vnni (job->a, job->m, job->lda, job->b, job->n_begin, job->n_end, job->c, job->ldc);
      return;
    }
#endif
  igemm_portable (job->a, job->m, job->lda, job->b, job->n_begin, job->n_end, job->c, job->ldc);
}

static gpointer
job_thread (gpointer data)
{
  run_job (data);
  return NULL;
}

gboolean
slim_igemm_s8s8_with_path (SlimIgemmPath path,
                           const gint8 *a,
                           gint64 m,
                           gint64 lda,
                           const SlimIgemmPackedB *b,
                           gint32 *c,
                           gint64 ldc)
{
  SlimIgemmJob jobs[16];
  GThread *threads[16];
  gint n_threads = 1;

  g_return_val_if_fail (b != NULL && m >= 0 && lda >= b->k && ldc >= b->n, FALSE);
  if (path == SLIM_IGEMM_PATH_AVX512_VNNI && !cpu_has_vnni ())
    return FALSE;
  if (m == 0)
    return TRUE;
  if ((double)m * (double)b->n * (double)b->k >= SLIM_IGEMM_THREAD_MIN_OPS)
    n_threads = CLAMP (slim_linalg_get_n_threads (), 1, (gint)G_N_ELEMENTS (jobs));
  /* whole groups of 4 columns per thread */
  n_threads = (gint)MIN ((gint64)n_threads, (b->n + 3) / 4);
  for (gint t = 0; t < n_threads; t++)
    {
      gint64 groups = (b->n + 3) / 4;
      jobs[t] = (SlimIgemmJob){ path, a, m, lda, b, 0, 0, c, ldc };
      jobs[t].n_begin = MIN (b->n, groups * t / n_threads * 4);
      jobs[t].n_end = MIN (b->n, groups * (t + 1) / n_threads * 4);
    }
  for (gint t = 1; t < n_threads; t++)
    threads[t] = g_thread_new ("slim-igemm", job_thread, &jobs[t]);
  run_job (&jobs[0]);
  for (gint t = 1; t < n_threads; t++)
    g_thread_join (threads[t]);
  return TRUE;
}

void
slim_igemm_s8s8 (
    const gint8 *a, gint64 m, gint64 lda, const SlimIgemmPackedB *b, gint32 *c, gint64 ldc)
{
  slim_igemm_s8s8_with_path (slim_igemm_get_path (), a, m, lda, b, c, ldc);
}
