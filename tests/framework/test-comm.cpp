// SPDX-License-Identifier: Apache-2.0
//
// test-comm.cpp: the single-process SlimComm and the fixed sample
// partition the data-parallel runner will use.  All checks are exact.
#include "slim-test.h"

#include "slim-comm.h"

namespace
{

TEST (Comm, SingleProcessIsIdentity)
{
  g_autoptr (SlimComm) comm = slim_comm_new_single ();
  EXPECT_EQ (slim_comm_rank (comm), 0);
  EXPECT_EQ (slim_comm_size (comm), 1);
  gdouble f[3] = { 1.5, -2.0, 3.25 };
  gint64 i[2] = { 7, -9 };
  GError *error = nullptr;
  ASSERT_TRUE (slim_comm_allreduce_sum_f64 (comm, f, 3, &error));
  ASSERT_TRUE (slim_comm_allreduce_min_f64 (comm, f, 3, &error));
  ASSERT_TRUE (slim_comm_allreduce_max_f64 (comm, f, 3, &error));
  ASSERT_TRUE (slim_comm_allreduce_sum_i64 (comm, i, 2, &error));
  ASSERT_TRUE (slim_comm_barrier (comm, &error));
  ASSERT_TRUE (slim_comm_broadcast (comm, f, sizeof f, 0, &error));
  EXPECT_EQ (f[0], 1.5);
  EXPECT_EQ (f[1], -2.0);
  EXPECT_EQ (f[2], 3.25);
  EXPECT_EQ (i[0], 7);
  EXPECT_EQ (i[1], -9);
}

TEST (Comm, BroadcastRejectsBadRoot)
{
  g_autoptr (SlimComm) comm = slim_comm_new_single ();
  gdouble f = 1.0;
  GError *error = nullptr;
  EXPECT_FALSE (slim_comm_broadcast (comm, &f, sizeof f, 1, &error));
  ASSERT_NE (error, nullptr);
  g_clear_error (&error);
}

// Every sample lands on exactly one rank, in rank order, blocks contiguous.
TEST (Comm, PartitionCoversSamplesInOrder)
{
  for (gsize n = 0; n < 20; n++)
    for (gint size = 1; size <= 5; size++)
      {
        gsize next = 0;
        for (gint r = 0; r < size; r++)
          {
            gsize first = 0, count = 0;
            slim_comm_partition (n, size, r, &first, &count);
            EXPECT_EQ (first, next) << "n=" << n << " size=" << size;
            EXPECT_LE (count, n / size + 1);
            EXPECT_GE (count, n / size);
            next = first + count;
          }
        EXPECT_EQ (next, n) << "n=" << n << " size=" << size;
      }
}

} // namespace
