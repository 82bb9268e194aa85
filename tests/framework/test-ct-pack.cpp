// SPDX-License-Identifier: Apache-2.0
//
// test-ct-pack.cpp: compressed-tensors pack-quantized int32 packing
// (slim-ct-pack): hand-computed words for int4, int8 and int3 (a width
// that straddles words), packed_dim 0 for zero points, the fast path
// against its bit-by-bit twin for every width 1..8 and odd lengths, round
// trips, and bad inputs.  Everything is integer: all comparisons exact.
#include <glib.h>

extern "C"
{
#include "slim-ct-pack.h"
#include "slim-error.h"
}

#include <gtest/gtest.h>
#include <random>
#include <vector>

TEST (CtPack, Words)
{
  EXPECT_EQ (slim_ct_packed_words (8, 4), 1);
  EXPECT_EQ (slim_ct_packed_words (9, 4), 2);
  EXPECT_EQ (slim_ct_packed_words (11, 3), 2); /* 33 bits */
  EXPECT_EQ (slim_ct_packed_words (4, 8), 1);
  EXPECT_EQ (slim_ct_packed_words (32, 1), 1);
}

// int4: codes v + 8, element 0 in bits 0-3.
TEST (CtPack, Int4Known)
{
  std::vector<gint8> wq = { -8, -7, -6, -5, -4, -3, -2, -1, /* row 0 */
                            0,  1,  2,  3,  4,  5,  6,  7 };
  std::vector<gint32> packed (2);
  GError *error = nullptr;
  ASSERT_TRUE (slim_ct_pack_rows (wq.data (), 2, 8, 4, packed.data (), &error));
  EXPECT_EQ ((guint32)packed[0], 0x76543210u);
  EXPECT_EQ ((guint32)packed[1], 0xfedcba98u);
}

// int8: codes v + 128, four per word; a 5th element starts a new word.
TEST (CtPack, Int8Known)
{
  std::vector<gint8> wq = { -128, -1, 0, 127, 5 };
  std::vector<gint32> packed (2);
  GError *error = nullptr;
  ASSERT_TRUE (slim_ct_pack_rows (wq.data (), 1, 5, 8, packed.data (), &error));
  EXPECT_EQ ((guint32)packed[0], 0xff807f00u);
  EXPECT_EQ ((guint32)packed[1], 0x85u);
}

// int3: dense stream, element 10 straddles words 0 and 1.
TEST (CtPack, Int3Straddles)
{
  std::vector<gint8> wq (11, 3); /* code 7 = 0b111 everywhere: 33 ones */
  std::vector<gint32> packed (2);
  GError *error = nullptr;
  ASSERT_TRUE (slim_ct_pack_rows (wq.data (), 1, 11, 3, packed.data (), &error));
  EXPECT_EQ ((guint32)packed[0], 0xffffffffu);
  EXPECT_EQ ((guint32)packed[1], 0x1u);
  wq.assign (11, -4); /* code 0 */
  wq[10] = -2;        /* code 2 = 0b010: stream bits 30..32 -> bit 31 of word 0 */
  ASSERT_TRUE (slim_ct_pack_rows (wq.data (), 1, 11, 3, packed.data (), &error));
  EXPECT_EQ ((guint32)packed[0], 0x80000000u);
  EXPECT_EQ ((guint32)packed[1], 0x0u);
}

// packed_dim 0 (zero points): each column is a stream over the rows.
TEST (CtPack, ColumnsKnown)
{
  /* (9, 2): column 0 = -8..0, column 1 = 7 everywhere */
  std::vector<gint8> wq (18);
  for (int r = 0; r < 9; r++)
    {
      wq[r * 2] = (gint8)(r - 8);
      wq[r * 2 + 1] = 7;
    }
  std::vector<gint32> packed (2 * 2); /* (ceil (9 * 4 / 32), 2) */
  GError *error = nullptr;
  ASSERT_TRUE (slim_ct_pack_cols (wq.data (), 9, 2, 4, packed.data (), &error));
  EXPECT_EQ ((guint32)packed[0], 0x76543210u);
  EXPECT_EQ ((guint32)packed[1], 0xffffffffu);
  EXPECT_EQ ((guint32)packed[2], 0x8u);
  EXPECT_EQ ((guint32)packed[3], 0xfu);
  std::vector<gint8> back (18);
  ASSERT_TRUE (slim_ct_unpack_cols (packed.data (), 9, 2, 4, back.data (), &error));
  EXPECT_EQ (back, wq);
}

TEST (CtPack, FastEqualsRefAndRoundTrips)
{
  std::mt19937 rng (13);
  for (guint bits = 1; bits <= 8; bits++)
    for (gint64 cols : { 1, 7, 31, 32, 33, 100 })
      {
        const gint64 rows = 3;
        int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
        std::uniform_int_distribution<int> dist (lo, hi);
        std::vector<gint8> wq (rows * cols);
        for (auto &v : wq)
          v = (gint8)dist (rng);
        gint64 words = slim_ct_packed_words (cols, bits);
        std::vector<gint32> fast (rows * words, 0x5a5a5a5a), ref (rows * words, 0x1234);
        GError *error = nullptr;
        ASSERT_TRUE (slim_ct_pack_rows (wq.data (), rows, cols, bits, fast.data (), &error));
        ASSERT_TRUE (slim_ct_pack_rows_ref (wq.data (), rows, cols, bits, ref.data (), &error));
        EXPECT_EQ (fast, ref) << "bits " << bits << " cols " << cols;
        std::vector<gint8> back (rows * cols);
        ASSERT_TRUE (slim_ct_unpack_rows (fast.data (), rows, cols, bits, back.data (), &error));
        EXPECT_EQ (back, wq) << "bits " << bits << " cols " << cols;
        /* columns: pack the same matrix along dim 0 and back */
        std::vector<gint32> colp (slim_ct_packed_words (rows, bits) * cols);
        ASSERT_TRUE (slim_ct_pack_cols (wq.data (), rows, cols, bits, colp.data (), &error));
        ASSERT_TRUE (slim_ct_unpack_cols (colp.data (), rows, cols, bits, back.data (), &error));
        EXPECT_EQ (back, wq) << "bits " << bits << " cols " << cols;
      }
}

TEST (CtPack, BadInputs)
{
  std::vector<gint8> wq = { 8, 0 };
  std::vector<gint32> packed (1);
  GError *error = nullptr;
  EXPECT_FALSE (slim_ct_pack_rows (wq.data (), 1, 2, 4, packed.data (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  EXPECT_NE (std::string (error->message).find ("(0, 0) = 8"), std::string::npos) << error->message;
  g_clear_error (&error);
  EXPECT_FALSE (slim_ct_pack_rows (wq.data (), 1, 2, 9, packed.data (), &error));
  EXPECT_NE (std::string (error->message).find ("1 to 8 bits"), std::string::npos);
  g_clear_error (&error);
  EXPECT_FALSE (slim_ct_pack_rows (wq.data (), 0, 2, 8, packed.data (), &error));
  g_clear_error (&error);
  /* a padding bit set: 2 int4 elements use bits 0-7 only */
  packed[0] = 0x100;
  std::vector<gint8> back (2);
  EXPECT_FALSE (slim_ct_unpack_rows (packed.data (), 1, 2, 4, back.data (), &error));
  EXPECT_NE (std::string (error->message).find ("padding"), std::string::npos);
  g_clear_error (&error);
}
