/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-igemm.c: exact int8 matrix products (see slim-igemm.h).
 *
 * Packed weight: panels of 64 output columns (the last one zero-padded),
 * each K-major in groups of 4 bytes: panel p, byte r of group q, column c
 * at data[p * 64 * kp + q * 256 + c * 4 + r] (kp: K rounded up to 4, the
 * padding zero).  One 64-byte vector then holds 4 consecutive K bytes of
 * 16 columns, the operand layout of vpdpbusd, and a register tile of
 * 6 rows x 64 columns (24 zmm accumulators, one int32 per output) needs
 * per group of 4 K bytes 4 weight loads and 6 broadcasts of 4 activation
 * bytes for 24 vpdpbusd: no horizontal sums, no shuffles.
 *
 * Activations are copied, 6-row panels at a time, into a scratch block
 * of unsigned bytes x + 128 (vpdpbusd multiplies unsigned by signed
 * bytes), rows padded to kp; 128 * colsum(B) is subtracted when the tile
 * is stored.  Blocking: a chunk of MC activation rows (MC * kp <= 256 KiB)
 * against one 64-column weight panel (64 * kp bytes), both in L2, the
 * panel loop outside the 6-row loop.  Rows (or, for few rows, panels) are
 * split over the threads of slim_linalg_get_n_threads(): disjoint blocks
 * of C.
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
#define NP 64                   /* output columns per weight panel */
#define MR 6                    /* activation rows per register tile */
#define CHUNK_BYTES (256 << 10) /* activation bytes of one chunk (L2) */
/* below this many multiply-adds one thread does it all */
#define SLIM_IGEMM_THREAD_MIN_OPS (1 << 24)

struct _SlimIgemmPackedB
{
  gint64 n, k, kp;   /* kp: k rounded up to 4 */
  gint64 n_panels;   /* ceil(n / NP) */
  gint8 *data;       /* (n_panels, kp / 4, NP, 4) zero-padded, 64-byte aligned */
  gint32 *rowsum128; /* (n_panels * NP) 128 * the sum over k of each weight row (0 beyond n) */
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
  p->kp = (k + 3) / 4 * 4;
  p->n_panels = (n + NP - 1) / NP;
  p->data = g_aligned_alloc0 ((gsize)(p->n_panels * NP * p->kp), 1, SLIM_IGEMM_ALIGN);
  p->rowsum128 = g_new0 (gint32, p->n_panels * NP);
  for (gint64 j = 0; j < n; j++)
    {
      gint8 *panel = p->data + (j / NP) * NP * p->kp;
      const gint64 c = j % NP;
      gint32 sum = 0;

      for (gint64 kk = 0; kk < k; kk++)
        {
          panel[(kk / 4) * NP * 4 + c * 4 + kk % 4] = b[j * ldb + kk];
          sum += b[j * ldb + kk];
        }
      /* |sum| <= 128 * SLIM_IGEMM_MAX_K = 2^23, times 128 = 2^30: in range */
      p->rowsum128[j] = 128 * sum;
    }
  return p;
}

void
slim_igemm_packed_b_free (SlimIgemmPackedB *packed)
{
  if (packed == NULL)
    return;
  g_aligned_free (packed->data);
  g_free (packed->rowsum128);
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

/* One job: rows [m_begin, m_end) of C times panels [p_begin, p_end). */
typedef struct
{
  SlimIgemmPath path;
  const gint8 *a;
  gint64 lda;
  const SlimIgemmPackedB *b;
  gint64 m_begin, m_end, p_begin, p_end;
  gint32 *c;
  gint64 ldc;
} SlimIgemmJob;

/* ---- portable path ------------------------------------------------------ */

/* Plain C on the packed layout: one row against one panel at a time. */
static void
igemm_portable (const SlimIgemmJob *job)
{
  const SlimIgemmPackedB *b = job->b;
  g_autofree gint8 *row = g_new0 (gint8, b->kp); /* (kp) one activation row, zero-padded */

  for (gint64 i = job->m_begin; i < job->m_end; i++)
    {
      memcpy (row, job->a + i * job->lda, (size_t)b->k);
      for (gint64 p = job->p_begin; p < job->p_end; p++)
        {
          const gint8 *panel = b->data + p * NP * b->kp;
          const gint64 n_cols = MIN (NP, b->n - p * NP);
          gint32 acc[NP] = { 0 }; /* (NP) */

          for (gint64 q = 0; q < b->kp / 4; q++)
            {
              const gint8 *x = row + 4 * q;
              const gint8 *w = panel + q * NP * 4;
              for (gint64 cc = 0; cc < NP; cc++)
                acc[cc] += (gint32)x[0] * w[cc * 4 + 0] + (gint32)x[1] * w[cc * 4 + 1]
                           + (gint32)x[2] * w[cc * 4 + 2] + (gint32)x[3] * w[cc * 4 + 3];
            }
          memcpy (job->c + i * job->ldc + p * NP, acc, (size_t)n_cols * sizeof (gint32));
        }
    }
}

/* ---- AVX512-VNNI path --------------------------------------------------- */

#if SLIM_IGEMM_HAVE_X86

#define VNNI_TARGET __attribute__ ((target ("avx512f,avx512bw,avx512vnni")))

/* Rows [0, n_rows) of a (row stride lda) as unsigned bytes x + 128 into
 * u (n_rows rounded up to MR rows of kp bytes); padding rows and bytes
 * are 0. */
VNNI_TARGET static void
vnni_copy_rows (const gint8 *a, gint64 lda, gint64 n_rows, gint64 k, gint64 kp, guint8 *u)
{
  const __m512i flip = _mm512_set1_epi8 ((char)0x80);
  const gint64 n_padded = (n_rows + MR - 1) / MR * MR;

  for (gint64 i = 0; i < n_rows; i++)
    {
      const gint8 *x = a + i * lda;
      guint8 *y = u + i * kp;
      gint64 kk = 0;

      for (; kk + 64 <= k; kk += 64)
        _mm512_storeu_si512 ((void *)(y + kk),
                             _mm512_xor_si512 (_mm512_loadu_si512 ((const void *)(x + kk)), flip));
      if (kk < k)
        {
          const __mmask64 mask = (~0ULL) >> (64 - (k - kk));
          _mm512_mask_storeu_epi8 (y + kk, mask,
                                   _mm512_xor_si512 (_mm512_maskz_loadu_epi8 (mask, x + kk), flip));
        }
      memset (y + k, 0, (size_t)(kp - k));
    }
  memset (u + n_rows * kp, 0, (size_t)((n_padded - n_rows) * kp));
}

static inline gint32
load_u32 (const guint8 *p)
{
  gint32 v;
  memcpy (&v, p, 4);
  return v;
}

/* One register tile: C rows [0, mr) x columns [0, n_cols) (mr <= 6,
 * n_cols <= 64) of u (MR rows of kp bytes) times one packed panel. */
VNNI_TARGET static void
vnni_tile (const guint8 *u,
           gint64 kp,
           const gint8 *panel,
           const gint32 *rowsum128, /* (NP) of the panel */
           gint64 mr,
           gint64 n_cols,
           gint32 *c,
           gint64 ldc)
{
  const guint8 *u0 = u, *u1 = u + kp, *u2 = u + 2 * kp, *u3 = u + 3 * kp, *u4 = u + 4 * kp,
               *u5 = u + 5 * kp;
#define SLIM_ACC_ROW(i)                                                                            \
  __m512i c##i##0 = _mm512_setzero_si512 (), c##i##1 = _mm512_setzero_si512 ();                    \
  __m512i c##i##2 = _mm512_setzero_si512 (), c##i##3 = _mm512_setzero_si512 ()
  SLIM_ACC_ROW (0);
  SLIM_ACC_ROW (1);
  SLIM_ACC_ROW (2);
  SLIM_ACC_ROW (3);
  SLIM_ACC_ROW (4);
  SLIM_ACC_ROW (5);
#undef SLIM_ACC_ROW

  for (gint64 kk = 0; kk < kp; kk += 4)
    {
      const gint8 *w = panel + kk * NP;
      const __m512i w0 = _mm512_load_si512 ((const void *)(w + 0));
      const __m512i w1 = _mm512_load_si512 ((const void *)(w + 64));
      const __m512i w2 = _mm512_load_si512 ((const void *)(w + 128));
      const __m512i w3 = _mm512_load_si512 ((const void *)(w + 192));
      __m512i x;
#define SLIM_ACC(i)                                                                                \
  x = _mm512_set1_epi32 (load_u32 (u##i + kk));                                                    \
  c##i##0 = _mm512_dpbusd_epi32 (c##i##0, x, w0);                                                  \
  c##i##1 = _mm512_dpbusd_epi32 (c##i##1, x, w1);                                                  \
  c##i##2 = _mm512_dpbusd_epi32 (c##i##2, x, w2);                                                  \
  c##i##3 = _mm512_dpbusd_epi32 (c##i##3, x, w3)
      SLIM_ACC (0);
      SLIM_ACC (1);
      SLIM_ACC (2);
      SLIM_ACC (3);
      SLIM_ACC (4);
      SLIM_ACC (5);
#undef SLIM_ACC
    }

  {
    const __m512i s0 = _mm512_loadu_si512 ((const void *)(rowsum128 + 0));
    const __m512i s1 = _mm512_loadu_si512 ((const void *)(rowsum128 + 16));
    const __m512i s2 = _mm512_loadu_si512 ((const void *)(rowsum128 + 32));
    const __m512i s3 = _mm512_loadu_si512 ((const void *)(rowsum128 + 48));
    /* columns of each 16-column quarter that exist in C */
    const __mmask16 k0 = n_cols >= 16 ? 0xffff : (__mmask16)((1u << MAX (n_cols, 0)) - 1);
    const __mmask16 k1
        = n_cols >= 32 ? 0xffff : (__mmask16)((1u << CLAMP (n_cols - 16, 0, 16)) - 1);
    const __mmask16 k2
        = n_cols >= 48 ? 0xffff : (__mmask16)((1u << CLAMP (n_cols - 32, 0, 16)) - 1);
    const __mmask16 k3
        = n_cols >= 64 ? 0xffff : (__mmask16)((1u << CLAMP (n_cols - 48, 0, 16)) - 1);
    /* exact: the int32 sum of (x + 128) w minus 128 * rowsum, modular
     * arithmetic whose result is in range (K bound) */
#define SLIM_STORE(i)                                                                              \
  if (i < mr)                                                                                      \
    {                                                                                              \
      gint32 *out = c + i * ldc;                                                                   \
      _mm512_mask_storeu_epi32 (out + 0, k0, _mm512_sub_epi32 (c##i##0, s0));                      \
      _mm512_mask_storeu_epi32 (out + 16, k1, _mm512_sub_epi32 (c##i##1, s1));                     \
      _mm512_mask_storeu_epi32 (out + 32, k2, _mm512_sub_epi32 (c##i##2, s2));                     \
      _mm512_mask_storeu_epi32 (out + 48, k3, _mm512_sub_epi32 (c##i##3, s3));                     \
    }
    SLIM_STORE (0);
    SLIM_STORE (1);
    SLIM_STORE (2);
    SLIM_STORE (3);
    SLIM_STORE (4);
    SLIM_STORE (5);
#undef SLIM_STORE
  }
}

VNNI_TARGET static void
igemm_vnni (const SlimIgemmJob *job)
{
  const SlimIgemmPackedB *b = job->b;
  const gint64 kp = b->kp;
  const gint64 mc = MAX (MR, CHUNK_BYTES / kp / MR * MR);
  guint8 *u = g_aligned_alloc ((gsize)(mc * kp), 1, SLIM_IGEMM_ALIGN); /* (mc, kp) */

  for (gint64 m0 = job->m_begin; m0 < job->m_end; m0 += mc)
    {
      const gint64 rows = MIN (mc, job->m_end - m0);

      vnni_copy_rows (job->a + m0 * job->lda, job->lda, rows, b->k, kp, u);
      for (gint64 p = job->p_begin; p < job->p_end; p++)
        {
          const gint8 *panel = b->data + p * NP * kp;
          const gint64 n_cols = MIN (NP, b->n - p * NP);

          for (gint64 i0 = 0; i0 < rows; i0 += MR)
            vnni_tile (u + i0 * kp, kp, panel, b->rowsum128 + p * NP, MIN (MR, rows - i0), n_cols,
                       job->c + (m0 + i0) * job->ldc + p * NP, job->ldc);
        }
    }
  g_aligned_free (u);
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

static void
run_job (const SlimIgemmJob *job)
{
#if SLIM_IGEMM_HAVE_X86
  if (job->path == SLIM_IGEMM_PATH_AVX512_VNNI)
    {
      igemm_vnni (job);
      return;
    }
#endif
  igemm_portable (job);
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
  gboolean split_rows;

  g_return_val_if_fail (b != NULL && m >= 0 && lda >= b->k && ldc >= b->n, FALSE);
  if (path == SLIM_IGEMM_PATH_AVX512_VNNI && !cpu_has_vnni ())
    return FALSE;
  if (m == 0)
    return TRUE;
  if ((double)m * (double)b->n * (double)b->k >= SLIM_IGEMM_THREAD_MIN_OPS)
    n_threads = CLAMP (slim_linalg_get_n_threads (), 1, (gint)G_N_ELEMENTS (jobs));
  /* rows in whole register tiles per thread when there are enough of
   * them, else whole panels */
  split_rows = m >= (gint64)n_threads * 4 * MR;
  n_threads = (gint)MIN ((gint64)n_threads, split_rows ? (m + MR - 1) / MR : b->n_panels);
  for (gint t = 0; t < n_threads; t++)
    {
      jobs[t] = (SlimIgemmJob){ path, a, lda, b, 0, m, 0, b->n_panels, c, ldc };
      if (split_rows)
        {
          gint64 tiles = (m + MR - 1) / MR;
          jobs[t].m_begin = MIN (m, tiles * t / n_threads * MR);
          jobs[t].m_end = MIN (m, tiles * (t + 1) / n_threads * MR);
        }
      else
        {
          jobs[t].p_begin = b->n_panels * t / n_threads;
          jobs[t].p_end = b->n_panels * (t + 1) / n_threads;
        }
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
