// SPDX-License-Identifier: Apache-2.0
//
// test-igemm.cpp: the int8 products of slim-igemm.h.  Integer sums are
// exact, so every path must equal the plain triple loop bit for bit (no
// tolerance), on random and edge inputs: all -128 / all 127 (the largest
// magnitudes, the +128 offset of the VNNI path at its limit), zero rows,
// odd sizes (tails in M, N and K), row strides beyond K, the K bound.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "slim-igemm.h"
#include "slim-linalg.h"
#include "slim-test.h"

namespace
{

struct Shape
{
  gint64 m, n, k;
};

enum class Fill
{
  RANDOM,
  ALL_MIN,
  ALL_MAX,
  MIN_TIMES_MAX,
  ZERO_ROWS,
};

std::vector<gint8>
make (gint64 rows, gint64 ld, Fill fill, bool weight, std::mt19937 &rng)
{
  std::uniform_int_distribution<int> d (-128, 127);
  std::vector<gint8> v ((size_t)(rows * ld));
  for (gint64 r = 0; r < rows; r++)
    for (gint64 c = 0; c < ld; c++)
      {
        gint8 x = (gint8)d (rng);
        switch (fill)
          {
          case Fill::ALL_MIN:
            x = -128;
            break;
          case Fill::ALL_MAX:
            x = 127;
            break;
          case Fill::MIN_TIMES_MAX:
            x = weight ? 127 : -128;
            break;
          case Fill::ZERO_ROWS:
            if (r % 3 == 1)
              x = 0;
            break;
          case Fill::RANDOM:
            break;
          }
        v[(size_t)(r * ld + c)] = x;
      }
  return v;
}

void
check (SlimIgemmPath path, Shape s, Fill fill, gint64 pad)
{
  std::mt19937 rng ((unsigned)(s.m * 7919 + s.n * 31 + s.k));
  gint64 lda = s.k + pad, ldb = s.k + pad, ldc = s.n + pad;
  std::vector<gint8> a = make (s.m, lda, fill, false, rng);   // (m, lda)
  std::vector<gint8> b = make (s.n, ldb, fill, true, rng);    // (n, ldb)
  std::vector<gint32> want ((size_t)(s.m * ldc), 0x5a5a5a5a); // (m, ldc)
  std::vector<gint32> got ((size_t)(s.m * ldc), 0x5a5a5a5a);  // (m, ldc)
  GError *error = nullptr;
  SlimIgemmPackedB *packed = slim_igemm_pack_b (b.data (), s.n, s.k, ldb, &error);
  ASSERT_NE (packed, nullptr) << error->message;

  slim_igemm_s8s8_ref (a.data (), b.data (), s.m, s.n, s.k, lda, ldb, want.data (), ldc);
  ASSERT_TRUE (slim_igemm_s8s8_with_path (path, a.data (), s.m, lda, packed, got.data (), ldc));
  slim_igemm_packed_b_free (packed);
  for (gint64 i = 0; i < s.m; i++)
    for (gint64 j = 0; j < ldc; j++)
      ASSERT_EQ (got[(size_t)(i * ldc + j)], want[(size_t)(i * ldc + j)])
          << "C[" << i << "][" << j << "] of " << s.m << "x" << s.n << "x" << s.k;
}

const Shape kShapes[] = {
  { 1, 1, 1 },
  { 4, 4, 64 },
  { 5, 7, 65 },
  { 3, 9, 63 },
  { 17, 13, 130 },
  { 33, 6, 1030 },
  { 64, 64, 2048 },
  { 37, 70, 3000 },
  { 8, 260, 512 },
  // the VNNI tile is 6 rows x 64 columns, K in groups of 4, chunks of
  // 256 KiB of activation rows (126 rows at K 2052): tails of each
  { 6, 64, 4 },
  { 7, 65, 5 },
  { 13, 129, 9 },
  { 130, 200, 2052 },
};

std::vector<SlimIgemmPath>
paths ()
{
  std::vector<SlimIgemmPath> p = { SLIM_IGEMM_PATH_PORTABLE };
  if (slim_igemm_get_path () == SLIM_IGEMM_PATH_AVX512_VNNI)
    p.push_back (SLIM_IGEMM_PATH_AVX512_VNNI);
  return p;
}

TEST (Igemm, EveryPathEqualsTheReferenceExactly)
{
  for (SlimIgemmPath path : paths ())
    for (const Shape &s : kShapes)
      for (Fill fill :
           { Fill::RANDOM, Fill::ALL_MIN, Fill::ALL_MAX, Fill::MIN_TIMES_MAX, Fill::ZERO_ROWS })
        for (gint64 pad : { 0, 3 })
          {
            SCOPED_TRACE (slim_igemm_path_name (path));
            check (path, s, fill, pad);
            if (HasFatalFailure ())
              return;
          }
}

// Large enough to split N over two threads: same bytes as one thread.
TEST (Igemm, ThreadsGiveTheSameResult)
{
  gint saved = slim_linalg_get_n_threads ();
  for (gint threads : { 1, 2 })
    {
      slim_linalg_set_n_threads (threads);
      for (SlimIgemmPath path : paths ())
        {
          SCOPED_TRACE (threads);
          check (path, { 96, 123, 2100 }, Fill::RANDOM, 0); // rows split over threads
          check (path, { 20, 400, 2100 }, Fill::RANDOM, 0); // few rows: panels split
        }
    }
  slim_linalg_set_n_threads (saved);
}

// The largest K: all -128 x -128 sums to 2^30 per output, every path exact.
TEST (Igemm, LargestKIsExact)
{
  for (SlimIgemmPath path : paths ())
    {
      SCOPED_TRACE (slim_igemm_path_name (path));
      check (path, { 2, 3, SLIM_IGEMM_MAX_K }, Fill::ALL_MIN, 0);
      check (path, { 2, 3, SLIM_IGEMM_MAX_K }, Fill::MIN_TIMES_MAX, 0);
    }
}

TEST (Igemm, PackRejectsBadShapes)
{
  gint8 w[4] = { 1, 2, 3, 4 };
  for (Shape s : { Shape{ 0, 0, 4 }, Shape{ 0, 1, 0 }, Shape{ 0, 1, SLIM_IGEMM_MAX_K + 1 } })
    {
      GError *error = nullptr;
      EXPECT_EQ (slim_igemm_pack_b (w, s.n, s.k, MAX (s.k, 1), &error), nullptr);
      ASSERT_NE (error, nullptr);
      EXPECT_NE (std::string (error->message).find ("int8 product"), std::string::npos);
      g_error_free (error);
    }
  GError *error = nullptr;
  EXPECT_EQ (slim_igemm_pack_b (w, 1, 4, 2, &error), nullptr); // stride < k
  ASSERT_NE (error, nullptr);
  g_error_free (error);
}

TEST (Igemm, PortableCanBeForced)
{
  g_setenv ("SLIMFLOW_IGEMM", "portable", TRUE);
  EXPECT_EQ (slim_igemm_get_path (), SLIM_IGEMM_PATH_PORTABLE);
  g_unsetenv ("SLIMFLOW_IGEMM");
}

} // namespace
