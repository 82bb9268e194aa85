/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-kquants.c: ggml's Q4_K / Q6_K super-blocks (see the header). */
#include "slim-gguf-kquants.h"

#include <math.h>

#include "slim-dtype.h"

static void
put_f16 (guint8 *out, float value)
{
  guint16 h = slim_f32_to_f16 (value);
  out[0] = (guint8)(h & 0xff);
  out[1] = (guint8)(h >> 8);
}

static float
get_f16 (const guint8 *in)
{
  return slim_f16_to_f32 ((guint16)(in[0] | (in[1] << 8)));
}

static int
clamp_round (float v, int lo, int hi)
{
  int q = (int)lrintf (v);
  return q < lo ? lo : (q > hi ? hi : q);
}

/* ---- Q4_K ----------------------------------------------------------------- */

void
slim_gguf_q4_k_encode (const float *x, guint8 *out)
{
  float scale[8], min[8], max_scale = 0.0f, max_min = 0.0f, d, dmin;
  int sc[8], m[8];
  guint8 *scales = out + 4, *qs = out + 16;
  guint8 q[SLIM_GGUF_QK_K]; /* (256) codes 0..15 */

  for (int j = 0; j < 8; j++)
    {
      const float *sub = x + 32 * j;
      float lo = 0.0f, hi = sub[0];

      for (int l = 0; l < 32; l++)
        {
          lo = fminf (lo, sub[l]);
          hi = fmaxf (hi, sub[l]);
        }
      hi = fmaxf (hi, lo);
      scale[j] = (hi - lo) / 15.0f;
      min[j] = -lo; /* >= 0: x = scale q - min */
      max_scale = fmaxf (max_scale, scale[j]);
      max_min = fmaxf (max_min, min[j]);
    }
  /* the stored (f16) super-block scales decide the codes */
  d = slim_f16_to_f32 (slim_f32_to_f16 (max_scale / 63.0f));
  dmin = slim_f16_to_f32 (slim_f32_to_f16 (max_min / 63.0f));
  put_f16 (out, d);
  put_f16 (out + 2, dmin);
  for (int j = 0; j < 8; j++)
    {
      sc[j] = d > 0.0f ? clamp_round (scale[j] / d, 0, 63) : 0;
      m[j] = dmin > 0.0f ? clamp_round (min[j] / dmin, 0, 63) : 0;
    }
  for (int j = 0; j < 4; j++)
    {
      scales[j] = (guint8)(sc[j] | ((sc[j + 4] >> 4) << 6));
      scales[j + 4] = (guint8)(m[j] | ((m[j + 4] >> 4) << 6));
      scales[j + 8] = (guint8)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
  for (int j = 0; j < 8; j++)
    {
      float step = d * (float)sc[j], offset = dmin * (float)m[j];

      for (int l = 0; l < 32; l++)
        q[32 * j + l]
            = (guint8)(step > 0.0f ? clamp_round ((x[32 * j + l] + offset) / step, 0, 15) : 0);
    }
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++)
      qs[32 * c + l] = (guint8)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
}

/* Sub-block j's 6-bit scale and min. */
static void
q4_k_scale_min (const guint8 *scales, int j, int *sc, int *m)
{
  if (j < 4)
    {
      *sc = scales[j] & 63;
      *m = scales[j + 4] & 63;
    }
  else
    {
      *sc = (scales[j + 4] & 15) | ((scales[j - 4] >> 6) << 4);
      *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

void
slim_gguf_q4_k_decode (const guint8 *in, float *y)
{
  float d = get_f16 (in), dmin = get_f16 (in + 2);
  const guint8 *scales = in + 4, *qs = in + 16;

  for (int c = 0; c < 4; c++)
    {
      int sc0, m0, sc1, m1;

      q4_k_scale_min (scales, 2 * c, &sc0, &m0);
      q4_k_scale_min (scales, 2 * c + 1, &sc1, &m1);
      for (int l = 0; l < 32; l++)
        {
          y[64 * c + l] = (d * (float)sc0) * (float)(qs[32 * c + l] & 15) - dmin * (float)m0;
          y[64 * c + 32 + l] = (d * (float)sc1) * (float)(qs[32 * c + l] >> 4) - dmin * (float)m1;
        }
    }
}

/* ---- Q6_K ----------------------------------------------------------------- */

void
slim_gguf_q6_k_encode (const float *x, guint8 *out)
{
  float scale[16], max_scale = 0.0f, d;
  guint8 *ql = out, *qh = out + 128, *scales = out + 192;
  guint8 L[SLIM_GGUF_QK_K]; /* (256) codes 0..63 */

  for (int j = 0; j < 16; j++)
    {
      float amax = 0.0f;

      for (int l = 0; l < 16; l++)
        amax = fmaxf (amax, fabsf (x[16 * j + l]));
      scale[j] = amax / 31.0f;
      max_scale = fmaxf (max_scale, scale[j]);
    }
  d = slim_f16_to_f32 (slim_f32_to_f16 (max_scale / 127.0f));
  put_f16 (out + 208, d);
  for (int j = 0; j < 16; j++)
    {
      int sc = d > 0.0f ? clamp_round (scale[j] / d, 0, 127) : 0;
      float step = d * (float)sc;

      scales[j] = (guint8)(gint8)sc;
      for (int l = 0; l < 16; l++)
        L[16 * j + l]
            = (guint8)(32 + (step > 0.0f ? clamp_round (x[16 * j + l] / step, -32, 31) : 0));
    }
  for (int h = 0; h < 2; h++)
    for (int l = 0; l < 32; l++)
      {
        const guint8 *e = L + 128 * h + l; /* e[32k]: k = 0..3 */

        ql[64 * h + l] = (guint8)((e[0] & 15) | ((e[64] & 15) << 4));
        ql[64 * h + 32 + l] = (guint8)((e[32] & 15) | ((e[96] & 15) << 4));
        qh[32 * h + l] = (guint8)((e[0] >> 4) | ((e[32] >> 4) << 2) | ((e[64] >> 4) << 4)
                                  | ((e[96] >> 4) << 6));
      }
}

void
slim_gguf_q6_k_decode (const guint8 *in, float *y)
{
  const guint8 *ql = in, *qh = in + 128;
  const gint8 *scales = (const gint8 *)(in + 192);
  float d = get_f16 (in + 208);

  for (int h = 0; h < 2; h++)
    for (int l = 0; l < 32; l++)
      {
        int b = 128 * h + l;
        int L0 = (ql[64 * h + l] & 15) | (((qh[32 * h + l] >> 0) & 3) << 4);
        int L1 = (ql[64 * h + 32 + l] & 15) | (((qh[32 * h + l] >> 2) & 3) << 4);
        int L2 = (ql[64 * h + l] >> 4) | (((qh[32 * h + l] >> 4) & 3) << 4);
        int L3 = (ql[64 * h + 32 + l] >> 4) | (((qh[32 * h + l] >> 6) & 3) << 4);

        y[b] = (d * (float)scales[b / 16]) * (float)(L0 - 32);
        y[b + 32] = (d * (float)scales[(b + 32) / 16]) * (float)(L1 - 32);
        y[b + 64] = (d * (float)scales[(b + 64) / 16]) * (float)(L2 - 32);
        y[b + 96] = (d * (float)scales[(b + 96) / 16]) * (float)(L3 - 32);
      }
}
