/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-nf4.c: NF4 code book encode/decode (see slim-nf4.h).
 */
#include "slim-nf4.h"

#include <math.h>

/* bitsandbytes' NF4 values (float32), ascending. */
static const float nf4_codes[SLIM_NF4_N_CODES] = {
  -1.0f,
  -0.6961928009986877f,
  -0.5250730514526367f,
  -0.39491748809814453f,
  -0.28444138169288635f,
  -0.18477343022823334f,
  -0.09105003625154495f,
  0.0f,
  0.07958029955625534f,
  0.16093020141124725f,
  0.24611230194568634f,
  0.33791524171829224f,
  0.44070982933044434f,
  0.5626170039176941f,
  0.7229568362236023f,
  1.0f,
};

#define NF4_ZERO_CODE 7

float
slim_nf4_decode (guint8 q)
{
  if (q >= SLIM_NF4_N_CODES)
    return NAN;
  return nf4_codes[q];
}

guint8
slim_nf4_encode (float x)
{
  if (isnan (x))
    return NF4_ZERO_CODE;
  /* Invariant: the answer is in [lo, hi]. Move past midpoint i when x is
   * strictly above it (a tie stays on the lower code). */
  guint lo = 0, hi = SLIM_NF4_N_CODES - 1;
  while (lo < hi)
    {
      guint mid = (lo + hi) / 2;
      double m = 0.5 * ((double)nf4_codes[mid] + (double)nf4_codes[mid + 1]);
      if ((double)x > m)
        lo = mid + 1;
      else
        hi = mid;
    }
  return (guint8)lo;
}

guint8
slim_nf4_encode_ref (float x)
{
  if (isnan (x))
    return NF4_ZERO_CODE;
  guint best = 0;
  double best_d = fabs ((double)x - (double)nf4_codes[0]);
  for (guint q = 1; q < SLIM_NF4_N_CODES; q++)
    {
      double d = fabs ((double)x - (double)nf4_codes[q]);
      if (d < best_d) /* strict: ties keep the lower code */
        {
          best = q;
          best_d = d;
        }
    }
  return (guint8)best;
}

void
slim_nf4_fake_quantize (const float *w,
                        gint64 n_rows,
                        gint64 n_cols,
                        gint64 group_size,
                        float *absmax,
                        guint8 *codes,
                        float *out)
{
  g_return_if_fail (w != NULL && out != NULL);
  g_return_if_fail (n_rows >= 0 && n_cols >= 0 && group_size > 0 && n_cols % group_size == 0);

  gint64 n_groups = n_cols / group_size;
  for (gint64 r = 0; r < n_rows; r++)
    for (gint64 g = 0; g < n_groups; g++)
      {
        const float *src = w + r * n_cols + g * group_size; /* [group_size] */
        float *dst = out + r * n_cols + g * group_size;     /* [group_size] */
        guint8 *qdst = codes != NULL ? codes + r * n_cols + g * group_size : NULL;
        float amax = 0.0f;
        for (gint64 j = 0; j < group_size; j++)
          amax = fmaxf (amax, fabsf (src[j]));
        if (absmax != NULL)
          absmax[r * n_groups + g] = amax;
        float inv = amax > 0.0f ? 1.0f / amax : 0.0f;
        for (gint64 j = 0; j < group_size; j++)
          {
            guint8 q = slim_nf4_encode (src[j] * inv);
            if (qdst != NULL)
              qdst[j] = q;
            dst[j] = nf4_codes[q] * amax;
          }
      }
}

void
slim_nf4_pack (const guint8 *codes, gint64 n_codes, guint8 *packed)
{
  g_return_if_fail (n_codes >= 0 && n_codes % 2 == 0);
  for (gint64 i = 0; i < n_codes / 2; i++)
    packed[i] = (guint8)(((codes[2 * i] & 0x0f) << 4) | (codes[2 * i + 1] & 0x0f));
}

void
slim_nf4_unpack (const guint8 *packed, gint64 n_codes, guint8 *codes)
{
  g_return_if_fail (n_codes >= 0 && n_codes % 2 == 0);
  for (gint64 i = 0; i < n_codes / 2; i++)
    {
      codes[2 * i] = packed[i] >> 4;
      codes[2 * i + 1] = packed[i] & 0x0f;
    }
}
