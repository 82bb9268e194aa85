/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-blocks.c: ggml block encodings (see the header). */
#include "slim-gguf-blocks.h"

#include <float.h>
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

void
slim_gguf_q8_0_encode (const float *x, guint8 *out)
{
  float amax = 0.0f;
  for (int j = 0; j < SLIM_GGUF_BLOCK; j++)
    amax = MAX (amax, fabsf (x[j]));
  float d = amax / 127.0f;
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16 (out, d);
  for (int j = 0; j < SLIM_GGUF_BLOCK; j++)
    out[2 + j] = (guint8)(gint8)roundf (x[j] * id);
}

void
slim_gguf_q8_0_decode (const guint8 *in, float *y)
{
  float d = get_f16 (in);
  for (int j = 0; j < SLIM_GGUF_BLOCK; j++)
    y[j] = d * (float)(gint8)in[2 + j];
}

static guint8
nibble (float v, float offset)
{
  int n = (int)(gint8)(v + offset); /* truncation, as ggml */
  return (guint8)MIN (15, n);
}

void
slim_gguf_q4_0_encode (const float *x, guint8 *out)
{
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < SLIM_GGUF_BLOCK; j++)
    if (amax < fabsf (x[j]))
      {
        amax = fabsf (x[j]);
        max = x[j];
      }
  float d = max / -8.0f;
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16 (out, d);
  for (int j = 0; j < SLIM_GGUF_BLOCK / 2; j++)
    out[2 + j] = (guint8)(nibble (x[j] * id, 8.5f) | (nibble (x[j + 16] * id, 8.5f) << 4));
}

void
slim_gguf_q4_0_decode (const guint8 *in, float *y)
{
  float d = get_f16 (in);
  for (int j = 0; j < SLIM_GGUF_BLOCK / 2; j++)
    {
      y[j] = d * (float)((in[2 + j] & 0x0f) - 8);
      y[j + 16] = d * (float)((in[2 + j] >> 4) - 8);
    }
}

void
slim_gguf_q4_1_encode (const float *x, guint8 *out)
{
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < SLIM_GGUF_BLOCK; j++)
    {
      min = MIN (min, x[j]);
      max = MAX (max, x[j]);
    }
  float d = (max - min) / 15.0f;
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_f16 (out, d);
  put_f16 (out + 2, min);
  for (int j = 0; j < SLIM_GGUF_BLOCK / 2; j++)
    out[4 + j]
        = (guint8)(nibble ((x[j] - min) * id, 0.5f) | (nibble ((x[j + 16] - min) * id, 0.5f) << 4));
}

void
slim_gguf_q4_1_decode (const guint8 *in, float *y)
{
  float d = get_f16 (in), m = get_f16 (in + 2);
  for (int j = 0; j < SLIM_GGUF_BLOCK / 2; j++)
    {
      y[j] = d * (float)(in[4 + j] & 0x0f) + m;
      y[j + 16] = d * (float)(in[4 + j] >> 4) + m;
    }
}

gboolean
slim_gguf_q8_0_pack (const gint8 *q, float scale, guint8 *out)
{
  put_f16 (out, scale);
  for (int j = 0; j < SLIM_GGUF_BLOCK; j++)
    out[2 + j] = (guint8)q[j];
  return TRUE;
}

/* The 16 bytes of nibbles n = q + 8; FALSE when a q is outside [-8, 7]. */
static gboolean
pack_nibbles (const gint8 *q, guint8 *qs)
{
  for (int j = 0; j < SLIM_GGUF_BLOCK; j++)
    if (q[j] < -8 || q[j] > 7)
      return FALSE;
  for (int j = 0; j < SLIM_GGUF_BLOCK / 2; j++)
    qs[j] = (guint8)((q[j] + 8) | ((q[j + 16] + 8) << 4));
  return TRUE;
}

gboolean
slim_gguf_q4_0_pack (const gint8 *q, float scale, guint8 *out)
{
  if (!pack_nibbles (q, out + 2))
    return FALSE;
  put_f16 (out, scale);
  return TRUE;
}

gboolean
slim_gguf_q4_1_pack (const gint8 *q, float scale, float offset, guint8 *out)
{
  if (!pack_nibbles (q, out + 4))
    return FALSE;
  put_f16 (out, scale);
  put_f16 (out + 2, -scale * (8.0f + offset));
  return TRUE;
}
