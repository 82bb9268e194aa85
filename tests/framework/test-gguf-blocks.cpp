// SPDX-License-Identifier: Apache-2.0
//
// test-gguf-blocks.cpp: ggml block layouts.  Inputs are chosen so every
// value is exact in f16 and the expected codes follow from the formulas
// in slim-gguf-blocks.h by hand; decode must give back the inputs exactly.
#include "slim-test.h"

#include <cstring>

#include "slim-gguf-blocks.h"

TEST (GgufBlocks, Q8_0Layout)
{
  float x[32], y[32];
  for (int j = 0; j < 32; j++)
    x[j] = (float)(j - 16) * 0.5f; /* amax 8 at j = 0 */
  guint8 b[SLIM_GGUF_Q8_0_BYTES];
  slim_gguf_q8_0_encode (x, b);
  EXPECT_EQ ((gint8)b[2], -127);   /* x[0] = -amax */
  EXPECT_EQ ((gint8)b[2 + 16], 0); /* x[16] = 0 */
  slim_gguf_q8_0_decode (b, y);
  for (int j = 0; j < 32; j++)
    EXPECT_NEAR (y[j], x[j], 8.0f / 127.0f * 0.51f + 1e-2f) << j;
}

TEST (GgufBlocks, Q4_0NibbleOrder)
{
  float x[32], y[32];
  for (int j = 0; j < 32; j++)
    x[j] = (float)((j % 16) - 8); /* integers in [-8, 7]; max = -8 -> d = 1 */
  guint8 b[SLIM_GGUF_Q4_0_BYTES];
  slim_gguf_q4_0_encode (x, b);
  for (int j = 0; j < 16; j++)
    EXPECT_EQ (b[2 + j], (guint8)(j | (j << 4))) << j;
  slim_gguf_q4_0_decode (b, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], x[j]) << j;
}

TEST (GgufBlocks, Q4_1MinAndNibbles)
{
  float x[32], y[32];
  for (int j = 0; j < 32; j++)
    x[j] = 2.0f + (float)(j < 16 ? j : 31 - j); /* min 2, d = 1 */
  guint8 b[SLIM_GGUF_Q4_1_BYTES];
  slim_gguf_q4_1_encode (x, b);
  for (int j = 0; j < 16; j++)
    EXPECT_EQ (b[4 + j], (guint8)(j | ((15 - j) << 4))) << j;
  slim_gguf_q4_1_decode (b, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], x[j]) << j;
}

// The saver writes a quantizer's own codes: packing codes q with scale s
// decodes to exactly s * q (s exact in f16), the bytes are those encode
// writes for the same values, and codes outside a type's range are refused.
TEST (GgufBlocks, PackFromCodes)
{
  gint8 q8[32], q4[32];
  float x8[32], x4[32], y[32];
  for (int j = 0; j < 32; j++)
    {
      q8[j] = (gint8)(j == 0 ? -127 : (j * 37) % 255 - 127);
      q4[j] = (gint8)(j == 5 ? -8 : (j * 5) % 16 - 8);
      x8[j] = 0.25f * (float)q8[j];
      x4[j] = 0.5f * (float)q4[j];
    }
  guint8 packed[SLIM_GGUF_Q8_0_BYTES], encoded[SLIM_GGUF_Q8_0_BYTES];
  ASSERT_TRUE (slim_gguf_q8_0_pack (q8, 0.25f, packed));
  slim_gguf_q8_0_decode (packed, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], x8[j]) << j;
  /* amax = 127 * 0.25: encode finds the same scale and codes */
  slim_gguf_q8_0_encode (x8, encoded);
  EXPECT_EQ (memcmp (packed, encoded, sizeof packed), 0);

  guint8 p4[SLIM_GGUF_Q4_0_BYTES], e4[SLIM_GGUF_Q4_0_BYTES];
  ASSERT_TRUE (slim_gguf_q4_0_pack (q4, 0.5f, p4));
  slim_gguf_q4_0_decode (p4, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], x4[j]) << j;
  /* the value of largest magnitude is -8 * 0.5: d = 0.5 again */
  slim_gguf_q4_0_encode (x4, e4);
  EXPECT_EQ (memcmp (p4, e4, sizeof p4), 0);

  /* Q4_1: x = scale * (q - offset) = d * (q + 8) + m, m = -scale (8 + offset) */
  guint8 p41[SLIM_GGUF_Q4_1_BYTES];
  ASSERT_TRUE (slim_gguf_q4_1_pack (q4, 0.5f, 3.0f, p41));
  slim_gguf_q4_1_decode (p41, y);
  for (int j = 0; j < 32; j++)
    EXPECT_EQ (y[j], 0.5f * ((float)q4[j] - 3.0f)) << j;

  q4[7] = 8;
  EXPECT_FALSE (slim_gguf_q4_0_pack (q4, 0.5f, p4));
  EXPECT_FALSE (slim_gguf_q4_1_pack (q4, 0.5f, 0.0f, p41));
}
