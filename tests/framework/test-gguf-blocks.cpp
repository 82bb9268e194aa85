// SPDX-License-Identifier: Apache-2.0
//
// test-gguf-blocks.cpp: ggml block layouts.  Inputs are chosen so every
// value is exact in f16 and the expected codes follow from the formulas
// in slim-gguf-blocks.h by hand; decode must give back the inputs exactly.
#include "slim-test.h"

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
