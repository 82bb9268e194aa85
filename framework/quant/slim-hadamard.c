/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hadamard.c: Hadamard constructions and the fast transform (see
 * slim-hadamard.h).
 */
#include "slim-hadamard.h"

#include <math.h>
#include <string.h>

#include "slim-error.h"

/* msModelSlim's base sizes, largest first (get_had_k tries them so). */
static const gint64 slim_hadamard_bases[]
    = { 200, 172, 160, 156, 140, 136, 108, 76, 60, 52, 40, 36, 28, 20, 12 };

#define SLIM_HADAMARD_CHUNK 1024 /* floats per cache block of the row transform */
#define SLIM_HADAMARD_PANEL 64   /* columns per panel of the column transform */

gboolean
slim_hadamard_is_pow2 (gint64 n)
{
  return n > 0 && (n & (n - 1)) == 0;
}

/* ---- finite fields GF(p) and GF(p^2) for Paley --------------------------- */

/* Elements of GF(q), q = p or p^2, are indices e = a + p b standing for
 * a + b t with t^2 = r, r a non-residue mod p. */
typedef struct
{
  gint64 p;
  gint64 q;
  gint64 r;
  gint8 *chi; /* (q) quadratic character of each element */
} SlimGf;

static gint64
slim_gf_mul (const SlimGf *gf, gint64 x, gint64 y)
{
  gint64 p = gf->p;
  gint64 a = x % p, b = x / p, c = y % p, d = y / p;

  if (gf->q == p)
    return (x * y) % p;
  return (a * c + b * d % p * gf->r) % p + p * ((a * d + b * c) % p);
}

static gint64
slim_gf_sub (const SlimGf *gf, gint64 x, gint64 y)
{
  gint64 p = gf->p;

  if (gf->q == p)
    return ((x - y) % p + p) % p;
  return ((x % p - y % p) % p + p) % p + p * (((x / p - y / p) % p + p) % p);
}

/* q = p (prime) or p^2; chi(x) = x^((q-1)/2) as +1 / -1, chi(0) = 0. */
static void
slim_gf_init (SlimGf *gf, gint64 p, gint64 q)
{
  gf->p = p;
  gf->q = q;
  gf->r = 0;
  for (gint64 c = 2; c < p && gf->r == 0; c++)
    {
      gboolean square = FALSE;
      for (gint64 a = 1; a < p; a++)
        square = square || (a * a) % p == c;
      if (!square)
        gf->r = c;
    }
  gf->chi = g_new0 (gint8, q);
  for (gint64 x = 1; x < q; x++)
    gf->chi[slim_gf_mul (gf, x, x)] = 1;
  for (gint64 x = 1; x < q; x++)
    if (gf->chi[x] == 0)
      gf->chi[x] = -1;
}

/* Paley I, order q + 1 (q = 3 mod 4): H = I - S, S[0][j] = 1, S[i][0] = -1,
 * S[i][j] = chi(j - i), indices of the field shifted by one. */
static void
slim_hadamard_paley1 (gint64 p, gint64 q, gint8 *out)
{
  const gint64 n = q + 1;
  SlimGf gf;

  slim_gf_init (&gf, p, q);
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < n; j++)
      {
        int s;
        if (i == 0 && j == 0)
          s = 0;
        else if (i == 0)
          s = 1;
        else if (j == 0)
          s = -1;
        else
          s = gf.chi[slim_gf_sub (&gf, j - 1, i - 1)];
        out[i * n + j] = (gint8)((i == j ? 1 : 0) - s);
      }
  g_free (gf.chi);
}

/* Paley II, order 2 (q + 1) (q = 1 mod 4): the symmetric conference matrix
 * C (C[0][0] = 0, first row and column 1, C[i][j] = chi(j - i)), then
 * each 0 becomes [[1, -1], [-1, -1]] and each +-1 becomes +-[[1, 1], [1, -1]]. */
static void
slim_hadamard_paley2 (gint64 p, gint64 q, gint8 *out)
{
  const gint64 c = q + 1;
  const gint64 n = 2 * c;
  SlimGf gf;

  slim_gf_init (&gf, p, q);
  for (gint64 i = 0; i < c; i++)
    for (gint64 j = 0; j < c; j++)
      {
        int v;
        if (i == 0 && j == 0)
          v = 0;
        else if (i == 0 || j == 0)
          v = 1;
        else
          v = gf.chi[slim_gf_sub (&gf, j - 1, i - 1)];
        for (int a = 0; a < 2; a++)
          for (int b = 0; b < 2; b++)
            {
              int e;
              if (v == 0)
                e = (a == 0 && b == 0) ? 1 : -1;
              else
                e = (a == 1 && b == 1) ? -v : v;
              out[(2 * i + a) * n + 2 * j + b] = (gint8)e;
            }
      }
  g_free (gf.chi);
}

/* out (2n, 2n) = [[h, h], [h, -h]] for h (n, n). */
static void
slim_hadamard_double (const gint8 *h, gint64 n, gint8 *out)
{
  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < n; j++)
      {
        gint8 v = h[i * n + j];
        out[i * 2 * n + j] = v;
        out[i * 2 * n + n + j] = v;
        out[(n + i) * 2 * n + j] = v;
        out[(n + i) * 2 * n + n + j] = (gint8)-v;
      }
}

/* out (k, k): a Paley I matrix of order base doubled `doublings` times. */
static void
slim_hadamard_doubled_paley1 (gint64 p, gint doublings, gint8 *out)
{
  gint64 n = p + 1;
  g_autofree gint8 *cur = g_new (gint8, n * n);

  slim_hadamard_paley1 (p, p, cur);
  for (gint d = 0; d < doublings; d++)
    {
      gint8 *next = g_new (gint8, 4 * n * n);
      slim_hadamard_double (cur, n, next);
      g_free (cur);
      cur = next;
      n *= 2;
    }
  memcpy (out, cur, (gsize)(n * n));
}

/* ---- Williamson: 156 = 4 * 39 and 172 = 4 * 43 ------------------------- */

/* First rows of the symmetric circulants A, B, C, D of Williamson matrices
 * (A^2 + B^2 + C^2 + D^2 = 4 n I), '+' for +1 and '-' for -1, as printed
 * by tools/williamson-search.c (built as build/tools/williamson-search):
 *   order 39: `williamson-search 39`    (every symmetric row, about 30 s)
 *   order 43: `williamson-search 43 6`  (rows constant on the orbits of
 *                                         <-1, 6> in Z_43^*, instant)
 * The program checks H H^T = 4 n I before printing; test-hadamard checks
 * the matrices built here again. */
static const char *const slim_hadamard_williamson_39[4] = {
  "+---+---+-++-++----++----++-++-+---+---",
  "++--+++-+--++-+----------+-++--+-+++--+",
  "+-++------++--+-+-++++-+-+--++------++-",
  "+---+--++++----+-+-++-+-+----++++--+---",
};
static const char *const slim_hadamard_williamson_43[4] = {
  "++---++++-+--+--++--------++--+--+-++++---+",
  "++-++++++----+-+--++-++-++--+-+----++++++-+",
  "+---++--++++-+-+++-++--++-+++-+-++++--++---",
  "+++-+-++--+-+-++++-+----+-++++-+-+--++-+-++",
};

/* out (4 n, 4 n): the Williamson array
 *   [  A  B  C  D ]
 *   [ -B  A -D  C ]
 *   [ -C  D  A -B ]
 *   [ -D -C  B  A ]
 * of the circulants with first rows rows[0..3] (length n), entry (i, j)
 * of a circulant = row[(j - i) mod n]. */
static void
slim_hadamard_williamson (const char *const *rows, gint64 n, gint8 *out)
{
  static const int block[4][4] = { { 0, 1, 2, 3 }, { 1, 0, 3, 2 }, { 2, 3, 0, 1 }, { 3, 2, 1, 0 } };
  static const int sign[4][4]
      = { { 1, 1, 1, 1 }, { -1, 1, -1, 1 }, { -1, 1, 1, -1 }, { -1, -1, 1, 1 } };
  const gint64 m = 4 * n;

  for (int bi = 0; bi < 4; bi++)
    for (int bj = 0; bj < 4; bj++)
      {
        const char *row = rows[block[bi][bj]];
        for (gint64 i = 0; i < n; i++)
          for (gint64 j = 0; j < n; j++)
            out[(bi * n + i) * m + bj * n + j]
                = (gint8)(sign[bi][bj] * (row[((j - i) % n + n) % n] == '+' ? 1 : -1));
      }
}

static gboolean
slim_hadamard_no_construction (gint64 n, gint64 k, GError **error)
{
  if (k > 1)
    g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                 "no Hadamard construction for size %" G_GINT64_FORMAT ": base %" G_GINT64_FORMAT
                 " is not one of 12, 20, 28, 36, 40, 52, 60, 76, 108, 136, 140, 156, 160, 172, 200",
                 n, k);
  else
    g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                 "no Hadamard construction for size %" G_GINT64_FORMAT
                 ": it is neither a power of two nor k * 2^m with k one of 12, 20, 28, 36, 40, "
                 "52, 60, 76, 108, 136, 140, 156, 160, 172, 200",
                 n);
  return FALSE;
}

gboolean
slim_hadamard_decompose (gint64 n, gint64 *out_k, GError **error)
{
  g_return_val_if_fail (out_k != NULL, FALSE);

  *out_k = 0;
  if (n <= 0)
    return slim_hadamard_no_construction (n, 1, error);
  for (gsize i = 0; i < G_N_ELEMENTS (slim_hadamard_bases); i++)
    {
      gint64 k = slim_hadamard_bases[i];
      if (n % k == 0 && slim_hadamard_is_pow2 (n / k))
        {
          *out_k = k;
          return TRUE;
        }
    }
  if (!slim_hadamard_is_pow2 (n))
    return slim_hadamard_no_construction (n, 1, error);
  *out_k = 1;
  return TRUE;
}

gboolean
slim_hadamard_base (gint64 k, gint8 *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);

  switch (k)
    {
    case 1:
      out[0] = 1;
      return TRUE;
    case 12:
    case 20:
    case 60:
    case 108:
    case 140:
    case 200:
      slim_hadamard_paley1 (k - 1, k - 1, out);
      return TRUE;
    case 28:
    case 36:
    case 76:
      slim_hadamard_paley2 (k / 2 - 1, k / 2 - 1, out);
      return TRUE;
    case 52:
      slim_hadamard_paley2 (5, 25, out);
      return TRUE;
    case 40:
      slim_hadamard_doubled_paley1 (19, 1, out);
      return TRUE;
    case 136:
      slim_hadamard_doubled_paley1 (67, 1, out);
      return TRUE;
    case 160:
      slim_hadamard_doubled_paley1 (19, 3, out);
      return TRUE;
    case 156:
      slim_hadamard_williamson (slim_hadamard_williamson_39, 39, out);
      return TRUE;
    case 172:
      slim_hadamard_williamson (slim_hadamard_williamson_43, 43, out);
      return TRUE;
    default:
      return slim_hadamard_no_construction (k, k, error);
    }
}

/* ---- mt19937, torch's CPU generator -------------------------------------- */

typedef struct
{
  guint32 mt[624];
  int index;
} SlimMt19937;

static void
slim_mt19937_init (SlimMt19937 *s, guint32 seed)
{
  s->mt[0] = seed;
  for (int i = 1; i < 624; i++)
    s->mt[i] = 1812433253u * (s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) + (guint32)i;
  s->index = 624;
}

static guint32
slim_mt19937_next (SlimMt19937 *s)
{
  guint32 y;

  if (s->index >= 624)
    {
      for (int i = 0; i < 624; i++)
        {
          guint32 v = (s->mt[i] & 0x80000000u) | (s->mt[(i + 1) % 624] & 0x7fffffffu);
          s->mt[i] = s->mt[(i + 397) % 624] ^ (v >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
        }
      s->index = 0;
    }
  y = s->mt[s->index++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

void
slim_hadamard_random_signs (guint32 seed, gint64 n, gint8 *signs)
{
  SlimMt19937 s;

  slim_mt19937_init (&s, seed);
  for (gint64 i = 0; i < n; i++)
    signs[i] = (gint8)(2 * (int)(slim_mt19937_next (&s) % 2u) - 1);
}

/* ---- the transform ------------------------------------------------------- */

/* Butterflies of stages h = h_from, 2 h_from, .. < h_to on x (len). */
static void
slim_hadamard_butterflies (float *x, gint64 len, gint64 h_from, gint64 h_to)
{
  for (gint64 h = h_from; h < h_to; h *= 2)
    for (gint64 base = 0; base < len; base += 2 * h)
      for (gint64 j = base; j < base + h; j++)
        {
          float a = x[j], b = x[j + h];
          x[j] = a + b;
          x[j + h] = a - b;
        }
}

/* y = (had_k (x) I_p) x over one vector of k * p, tmp (k * p). */
static void
slim_hadamard_mix (float *x, gint64 k, gint64 p, const gint8 *had_k, gboolean transpose, float *tmp)
{
  for (gint64 i = 0; i < k; i++)
    {
      float *out = tmp + i * p;
      memset (out, 0, (gsize)p * sizeof (float));
      for (gint64 l = 0; l < k; l++)
        {
          const float hv = (float)(transpose ? had_k[l * k + i] : had_k[i * k + l]);
          const float *in = x + l * p;
          for (gint64 j = 0; j < p; j++)
            out[j] += hv * in[j];
        }
    }
  memcpy (x, tmp, (gsize)(k * p) * sizeof (float));
}

void
slim_hadamard_transform_rows (
    float *x, gint64 rows, gint64 n, gint64 k, const gint8 *had_k, gboolean transpose)
{
  const gint64 p = n / k; /* the power-of-two part */
  const float norm = sqrtf ((float)n);
  const gint64 chunk = MIN (p, SLIM_HADAMARD_CHUNK);
  g_autofree float *tmp = k > 1 ? g_new (float, n) : NULL;

  g_return_if_fail (k >= 1 && n % k == 0 && slim_hadamard_is_pow2 (p));
  g_return_if_fail (k == 1 || had_k != NULL);

  for (gint64 r = 0; r < rows; r++)
    {
      float *row = x + r * n; /* (n) */

      /* stages below chunk stay inside one chunk: run them chunk by chunk */
      for (gint64 c = 0; c < n; c += chunk)
        slim_hadamard_butterflies (row + c, chunk, 1, chunk);
      for (gint64 s = 0; s < k; s++)
        slim_hadamard_butterflies (row + s * p, p, chunk, p);
      if (k > 1)
        slim_hadamard_mix (row, k, p, had_k, transpose, tmp);
      for (gint64 j = 0; j < n; j++)
        row[j] /= norm;
    }
}

void
slim_hadamard_dense (gint64 n, gint64 k, const gint8 *had_k, float *h)
{
  const gint64 p = n / k;

  for (gint64 i = 0; i < n; i++)
    for (gint64 j = 0; j < n; j++)
      {
        /* Sylvester entry: (-1)^popcount(i & j) on the low parts */
        int syl = (__builtin_popcountll ((unsigned long long)((i % p) & (j % p))) & 1) ? -1 : 1;
        int base = k > 1 ? had_k[(i / p) * k + j / p] : 1;
        h[i * n + j] = (float)(syl * base);
      }
}

void
slim_hadamard_transform_rows_ref (
    float *x, gint64 rows, gint64 n, gint64 k, const gint8 *had_k, gboolean transpose)
{
  g_autofree float *h = g_new (float, n *n); /* (n, n) */
  g_autofree float *y = g_new (float, n);
  const float norm = sqrtf ((float)n);

  slim_hadamard_dense (n, k, had_k, h);
  for (gint64 r = 0; r < rows; r++)
    {
      float *row = x + r * n;
      for (gint64 i = 0; i < n; i++)
        {
          double acc = 0.0;
          for (gint64 j = 0; j < n; j++)
            acc += (double)(transpose ? h[j * n + i] : h[i * n + j]) * row[j];
          y[i] = (float)acc;
        }
      for (gint64 i = 0; i < n; i++)
        row[i] = y[i] / norm;
    }
}

/* Butterflies between rows of a (n, ld) panel of width w. */
static void
slim_hadamard_row_butterflies (float *x, gint64 n, gint64 ld, gint64 w, gint64 h_to)
{
  for (gint64 h = 1; h < h_to; h *= 2)
    for (gint64 base = 0; base < n; base += 2 * h)
      for (gint64 i = base; i < base + h; i++)
        {
          float *a = x + i * ld;
          float *b = x + (i + h) * ld;
          for (gint64 c = 0; c < w; c++)
            {
              float va = a[c], vb = b[c];
              a[c] = va + vb;
              b[c] = va - vb;
            }
        }
}

void
slim_hadamard_transform_cols (
    float *x, gint64 n, gint64 cols, gint64 k, const gint8 *had_k, gboolean transpose)
{
  const gint64 p = n / k;
  const float norm = sqrtf ((float)n);
  g_autofree float *tmp = k > 1 ? g_new (float, k *SLIM_HADAMARD_PANEL) : NULL; /* (k, panel) */

  g_return_if_fail (k >= 1 && n % k == 0 && slim_hadamard_is_pow2 (p));
  g_return_if_fail (k == 1 || had_k != NULL);

  for (gint64 c0 = 0; c0 < cols; c0 += SLIM_HADAMARD_PANEL)
    {
      const gint64 w = MIN (SLIM_HADAMARD_PANEL, cols - c0);
      float *panel = x + c0;

      for (gint64 s = 0; s < k; s++)
        slim_hadamard_row_butterflies (panel + s * p * cols, p, cols, w, p);
      if (k > 1)
        for (gint64 j = 0; j < p; j++)
          {
            for (gint64 i = 0; i < k; i++)
              {
                float *out = tmp + i * w;
                memset (out, 0, (gsize)w * sizeof (float));
                for (gint64 l = 0; l < k; l++)
                  {
                    const float hv = (float)(transpose ? had_k[l * k + i] : had_k[i * k + l]);
                    const float *in = panel + (l * p + j) * cols;
                    for (gint64 c = 0; c < w; c++)
                      out[c] += hv * in[c];
                  }
              }
            for (gint64 i = 0; i < k; i++)
              memcpy (panel + (i * p + j) * cols, tmp + i * w, (gsize)w * sizeof (float));
          }
      for (gint64 i = 0; i < n; i++)
        for (gint64 c = 0; c < w; c++)
          panel[i * cols + c] /= norm;
    }
}

void
slim_hadamard_transform_cols_ref (
    float *x, gint64 n, gint64 cols, gint64 k, const gint8 *had_k, gboolean transpose)
{
  g_autofree float *h = g_new (float, n *n); /* (n, n) */
  g_autofree float *y = g_new (float, n);
  const float norm = sqrtf ((float)n);

  slim_hadamard_dense (n, k, had_k, h);
  for (gint64 c = 0; c < cols; c++)
    {
      for (gint64 i = 0; i < n; i++)
        {
          double acc = 0.0;
          for (gint64 j = 0; j < n; j++)
            acc += (double)(transpose ? h[j * n + i] : h[i * n + j]) * x[j * cols + c];
          y[i] = (float)acc;
        }
      for (gint64 i = 0; i < n; i++)
        x[i * cols + c] = y[i] / norm;
    }
}
