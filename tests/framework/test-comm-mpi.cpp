// SPDX-License-Identifier: Apache-2.0
//
// test-comm-mpi.cpp: the MPI SlimComm, run by meson under
// `mpirun --allow-run-as-root --oversubscribe -np 2` (tests/meson.build).
// Every rank runs every test; each check is exact (no tolerance): min, max
// and int64 sums are exact by nature, and the float64 sum is defined as
// the sum of the ranks' values in rank order, which each rank recomputes
// from the values every rank contributed (they are functions of the rank).
// Own main(): MPI is initialised once around RUN_ALL_TESTS, as the CLI
// does; the exit status is non-zero on every rank when any rank failed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "slim-comm.h"

namespace
{

SlimComm *world;

// Rank r's contribution to element i: values whose float64 sum depends
// on the order of the additions (1e16 + 1 + ... loses the small terms
// in one order and not in another).
double
value_of (int rank, gsize i)
{
  static const double pattern[] = { 1e16, 1.0, -1e16, 3.25, 0.1, -7.5e-3 };
  return pattern[(rank + i) % G_N_ELEMENTS (pattern)] * (1.0 + (double)(i % 7));
}

double
rank_order_sum (int size, gsize i)
{
  double sum = value_of (0, i);
  for (int r = 1; r < size; r++)
    sum += value_of (r, i);
  return sum;
}

TEST (CommMpi, RankAndSize)
{
  ASSERT_NE (world, nullptr);
  EXPECT_EQ (slim_comm_size (world), 2);
  EXPECT_GE (slim_comm_rank (world), 0);
  EXPECT_LT (slim_comm_rank (world), slim_comm_size (world));
  EXPECT_TRUE (slim_comm_mpi_is_built ());
  EXPECT_TRUE (slim_comm_mpi_launched ());
}

// Sum in rank order, bit for bit; long enough (2^20 + 3 elements) to take
// two chunks of the implementation.
TEST (CommMpi, SumF64IsRankOrdered)
{
  const int rank = slim_comm_rank (world), size = slim_comm_size (world);
  const gsize n = ((gsize)1 << 20) + 3;
  std::vector<double> buf (n);
  GError *error = nullptr;

  for (gsize i = 0; i < n; i++)
    buf[i] = value_of (rank, i);
  ASSERT_TRUE (slim_comm_allreduce_sum_f64 (world, buf.data (), n, &error))
      << (error ? error->message : "");
  gsize mismatches = 0;
  for (gsize i = 0; i < n; i++)
    {
      const double want = rank_order_sum (size, i);
      if (std::memcmp (&buf[i], &want, sizeof want) != 0)
        mismatches++;
    }
  EXPECT_EQ (mismatches, 0u);
}

TEST (CommMpi, MinMaxF64)
{
  const int rank = slim_comm_rank (world), size = slim_comm_size (world);
  double mn[4], mx[4];
  GError *error = nullptr;

  for (int i = 0; i < 4; i++)
    mn[i] = mx[i] = value_of (rank, (gsize)i) * (rank == 1 ? -1.0 : 1.0);
  mn[3] = mx[3] = rank == 0 ? -INFINITY : 2.0;
  ASSERT_TRUE (slim_comm_allreduce_min_f64 (world, mn, 4, &error));
  ASSERT_TRUE (slim_comm_allreduce_max_f64 (world, mx, 4, &error));
  for (int i = 0; i < 3; i++)
    {
      double lo = INFINITY, hi = -INFINITY;
      for (int r = 0; r < size; r++)
        {
          double v = value_of (r, (gsize)i) * (r == 1 ? -1.0 : 1.0);
          lo = std::fmin (lo, v);
          hi = std::fmax (hi, v);
        }
      EXPECT_EQ (mn[i], lo) << i;
      EXPECT_EQ (mx[i], hi) << i;
    }
  EXPECT_EQ (mn[3], -INFINITY);
  EXPECT_EQ (mx[3], 2.0);
}

// int64 sums stay exact beyond 2^53, where a float64 path would round.
TEST (CommMpi, SumI64Exact)
{
  const int rank = slim_comm_rank (world);
  gint64 buf[3] = { ((gint64)1 << 60) + rank, -(gint64)rank * 3, (gint64)1 << 53 | 1 };
  GError *error = nullptr;

  ASSERT_TRUE (slim_comm_allreduce_sum_i64 (world, buf, 3, &error));
  EXPECT_EQ (buf[0], ((gint64)1 << 61) + 1);
  EXPECT_EQ (buf[1], -3);
  EXPECT_EQ (buf[2], ((gint64)1 << 54) + 2);
}

TEST (CommMpi, BroadcastFromEachRoot)
{
  const int rank = slim_comm_rank (world), size = slim_comm_size (world);
  GError *error = nullptr;

  for (int root = 0; root < size; root++)
    {
      guint8 buf[1000];
      for (gsize i = 0; i < sizeof buf; i++)
        buf[i] = (guint8)(rank == root ? (i * 7 + (gsize)root) : 0xAA);
      ASSERT_TRUE (slim_comm_broadcast (world, buf, sizeof buf, root, &error));
      for (gsize i = 0; i < sizeof buf; i++)
        ASSERT_EQ (buf[i], (guint8)(i * 7 + (gsize)root)) << "root " << root << " byte " << i;
    }
  // root out of range: a GError, no MPI call
  guint8 b = 0;
  EXPECT_FALSE (slim_comm_broadcast (world, &b, 1, size, &error));
  ASSERT_NE (error, nullptr);
  g_clear_error (&error);
}

// Byte strings of a length only root knows (also empty).
TEST (CommMpi, BroadcastBytes)
{
  const int rank = slim_comm_rank (world);
  GError *error = nullptr;

  for (gsize len : { (gsize)0, (gsize)5, (gsize)3 << 20 })
    {
      GBytes *bytes = nullptr;
      std::vector<guint8> want (len);
      for (gsize i = 0; i < len; i++)
        want[i] = (guint8)(i * 13 + len);
      if (rank == 1)
        bytes = g_bytes_new (want.data (), len);
      ASSERT_TRUE (slim_comm_broadcast_bytes (world, &bytes, 1, &error))
          << (error ? error->message : "");
      ASSERT_NE (bytes, nullptr);
      gsize got = 0;
      const void *data = g_bytes_get_data (bytes, &got);
      ASSERT_EQ (got, len);
      EXPECT_TRUE (len == 0 || std::memcmp (data, want.data (), len) == 0);
      g_bytes_unref (bytes);
    }
}

// After a barrier every rank sees what every rank did before it: here
// through a reduction of "arrived" counts taken after the barrier.
TEST (CommMpi, Barrier)
{
  GError *error = nullptr;
  gint64 arrived = 1;

  ASSERT_TRUE (slim_comm_barrier (world, &error));
  ASSERT_TRUE (slim_comm_allreduce_sum_i64 (world, &arrived, 1, &error));
  EXPECT_EQ (arrived, slim_comm_size (world));
}

// Every rank ends with the same bytes: rank 0's result is broadcast and
// compared, for a sum whose value depends on the order of the additions.
TEST (CommMpi, SameBytesOnEveryRank)
{
  const int rank = slim_comm_rank (world);
  const gsize n = 257;
  std::vector<double> sum (n), ref (n);
  GError *error = nullptr;

  for (gsize i = 0; i < n; i++)
    sum[i] = value_of (rank, i) / 3.0;
  ASSERT_TRUE (slim_comm_allreduce_sum_f64 (world, sum.data (), n, &error));
  ref = sum;
  ASSERT_TRUE (slim_comm_broadcast (world, ref.data (), n * sizeof (double), 0, &error));
  EXPECT_EQ (std::memcmp (sum.data (), ref.data (), n * sizeof (double)), 0);
  // and the same bytes again on a second run (no state in the reduction)
  std::vector<double> again (n);
  for (gsize i = 0; i < n; i++)
    again[i] = value_of (rank, i) / 3.0;
  ASSERT_TRUE (slim_comm_allreduce_sum_f64 (world, again.data (), n, &error));
  EXPECT_EQ (std::memcmp (sum.data (), again.data (), n * sizeof (double)), 0);
}

} // namespace

int
main (int argc, char **argv)
{
  GError *error = nullptr;
  int failed;
  gint64 any_failed;

  ::testing::InitGoogleTest (&argc, argv);
  if (!slim_comm_mpi_launched ())
    {
      fprintf (stderr, "test-comm-mpi: run me under mpirun -np 2\n");
      return 1;
    }
  if (!slim_comm_mpi_init (&argc, &argv, &error) || (world = slim_comm_new_mpi (&error)) == nullptr)
    {
      fprintf (stderr, "test-comm-mpi: %s\n", error->message);
      return 1;
    }
  failed = RUN_ALL_TESTS ();
  any_failed = failed != 0;
  if (!slim_comm_allreduce_sum_i64 (world, &any_failed, 1, &error))
    any_failed = 1;
  slim_comm_free (world);
  slim_comm_mpi_shutdown ();
  return any_failed != 0 ? 1 : 0;
}
