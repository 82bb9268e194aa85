// SPDX-License-Identifier: Apache-2.0
//
// test-hadamard.cpp: Hadamard constructions, the fast transform and the
// QuaRot weight rotations (slim-hadamard, slim-rotation) against
// msModelSlim's oracle vectors (../shared/oracle, cases quarot_*) and the
// fast paths against their dense-matrix twins.
//
// Tolerances: signs, the +-1 matrices and the dense rotation (an integer
// divided once by sqrtf(n), as torch does) are exact.  The power-of-two
// transform runs msModelSlim's butterflies in its order: bit-equal
// (checked exactly for n = 256).  Everything through a matmul (had_12's
// mixing, rotate_linear's torch.matmul vs OpenBLAS or vs the butterflies,
// the block-shifted products) changes the summation order: the README's
// relative 1e-5 plus an absolute 1e-6 for entries near zero (values are
// O(0.1 .. 1) sums of O(n) terms of rounding 6e-8).
#include "oracle.h"
#include "slim-test.h"

extern "C"
{
#include "slim-hadamard.h"
#include "slim-rotation.h"
#include "slim-online-rotation.h"
}

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace
{

void
expect_close (const std::vector<float> &got,
              const std::vector<float> &want,
              double rel,
              double abs_tol,
              const std::string &what)
{
  ASSERT_EQ (got.size (), want.size ()) << what;
  size_t bad = 0;
  double worst = 0.0;
  for (size_t i = 0; i < got.size (); i++)
    {
      double d = std::fabs ((double)got[i] - (double)want[i]);
      double tol = rel * std::fabs ((double)want[i]) + abs_tol;
      worst = std::max (worst, d);
      if (!(d <= tol) && bad++ < 5)
        ADD_FAILURE () << what << "[" << i << "]: " << got[i] << " vs " << want[i];
    }
  EXPECT_EQ (bad, 0u) << what << " (worst absolute difference " << worst << ")";
}

std::vector<float>
random_matrix (int64_t n, unsigned seed)
{
  std::mt19937 gen (seed);
  std::normal_distribution<float> dist (0.0f, 1.0f);
  std::vector<float> v ((size_t)n);
  for (auto &x : v)
    x = dist (gen);
  return v;
}

SlimRotation *
new_rotation (int64_t n)
{
  GError *error = nullptr;
  SlimRotation *r = slim_rotation_new_hadamard (n, SLIM_ROTATION_SEED, &error);
  GErrorPtr guard (error);
  EXPECT_NE (r, nullptr) << (error ? error->message : "");
  return r;
}

// ---- constructions ----------------------------------------------------------

class HadamardBase : public ::testing::TestWithParam<int64_t>
{
};

// H H^T = k I for every base slimflow constructs (156 and 172 from the
// stored Williamson rows, slim-hadamard.c).
TEST_P (HadamardBase, IsHadamard)
{
  const int64_t k = GetParam ();
  std::vector<int8_t> h ((size_t)(k * k));
  GError *error = nullptr;
  ASSERT_TRUE (slim_hadamard_base (k, h.data (), &error)) << error->message;
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = 0; j < k; j++)
      {
        int64_t dot = 0;
        for (int64_t c = 0; c < k; c++)
          dot += h[i * k + c] * h[j * k + c];
        ASSERT_EQ (dot, i == j ? k : 0) << "k " << k << " rows " << i << ", " << j;
      }
}

INSTANTIATE_TEST_SUITE_P (
    Bases,
    HadamardBase,
    ::testing::Values (12, 20, 28, 36, 40, 52, 60, 76, 108, 136, 140, 156, 160, 172, 200));

// The Kronecker sizes of the Williamson bases: H H^T = n I for the dense
// had_k (x) Sylvester matrix slimflow's transforms use (exact integers).
TEST (Hadamard, WilliamsonKroneckerSizesAreHadamard)
{
  for (int64_t n : { (int64_t)156 * 2, (int64_t)172 * 4 })
    {
      int64_t k = 0;
      GError *error = nullptr;
      ASSERT_TRUE (slim_hadamard_decompose (n, &k, &error)) << error->message;
      std::vector<int8_t> had_k ((size_t)(k * k));
      ASSERT_TRUE (slim_hadamard_base (k, had_k.data (), &error)) << error->message;
      std::vector<float> h ((size_t)(n * n));
      slim_hadamard_dense (n, k, had_k.data (), h.data ());
      size_t bad = 0;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++)
          {
            int64_t dot = 0;
            for (int64_t c = 0; c < n; c++)
              dot += (int64_t)h[i * n + c] * (int64_t)h[j * n + c];
            bad += dot != (i == j ? n : 0);
          }
      EXPECT_EQ (bad, 0u) << "n " << n;
    }
}

TEST (Hadamard, DecomposeAsMsModelSlim)
{
  struct
  {
    int64_t n, k;
  } cases[] = { { 64, 1 },      { 96, 12 },    { 128, 1 },    { 5120, 160 }, { 3584, 28 },
                { 1536, 12 },   { 2560, 160 }, { 40, 40 },    { 80, 40 },    { 60, 60 },
                { 11008, 172 }, { 172, 172 },  { 4992, 156 }, { 156, 156 } };
  for (auto &c : cases)
    {
      int64_t k = 0;
      GError *error = nullptr;
      EXPECT_TRUE (slim_hadamard_decompose (c.n, &k, &error)) << c.n;
      GErrorPtr guard (error);
      EXPECT_EQ (k, c.k) << c.n;
    }
}

TEST (Hadamard, NoConstructionNamesTheSize)
{
  for (int64_t n : { (int64_t)100, (int64_t)44 * 8, (int64_t)172 * 3, (int64_t)0 })
    {
      int64_t k = 0;
      GError *error = nullptr;
      EXPECT_FALSE (slim_hadamard_decompose (n, &k, &error)) << n;
      ASSERT_NE (error, nullptr);
      GErrorPtr guard (error);
      EXPECT_NE (std::string (error->message).find ("size " + std::to_string (n)),
                 std::string::npos)
          << error->message;
    }
  GError *error = nullptr;
  SlimRotation *r = slim_rotation_new_hadamard (172 * 3, SLIM_ROTATION_SEED, &error);
  EXPECT_EQ (r, nullptr);
  ASSERT_NE (error, nullptr);
  GErrorPtr guard (error);
  EXPECT_NE (std::string (error->message).find ("516"), std::string::npos) << error->message;
  // the base list in the message names the Williamson bases too
  EXPECT_NE (std::string (error->message).find ("156, 160, 172"), std::string::npos)
      << error->message;
}

// ---- oracle: create_rot -----------------------------------------------------

class CreateRotOracle : public ::testing::TestWithParam<int64_t>
{
};

TEST_P (CreateRotOracle, SignsMatrixAndRotationExact)
{
  const int64_t n = GetParam ();
  const std::string p = "quarot_create_rot_hadamard_" + std::to_string (n) + ".";
  SlimRotation *r = new_rotation (n);
  ASSERT_NE (r, nullptr);

  std::vector<int8_t> signs (r->signs, r->signs + n);
  EXPECT_EQ (signs, oracle_i8 (p + "signs.npy")) << "torch mt19937 seed 1234";

  // hadamard_pm1 = round(matmul_had_u(I) sqrt(n)) = H^T
  std::vector<float> h ((size_t)(n * n));
  slim_hadamard_dense (n, r->k, r->had_k, h.data ());
  std::vector<int8_t> pm1 = oracle_i8 (p + "hadamard_pm1.npy");
  ASSERT_EQ (pm1.size (), (size_t)(n * n));
  size_t bad = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++)
      bad += (int)h[j * n + i] != pm1[i * n + j];
  EXPECT_EQ (bad, 0u);

  std::vector<float> q ((size_t)(n * n));
  slim_rotation_to_dense (r, q.data ());
  EXPECT_EQ (q, oracle_f32 (p + "rot.npy"));
  slim_rotation_free (r);
}

INSTANTIATE_TEST_SUITE_P (Sizes, CreateRotOracle, ::testing::Values (64, 96, 128));

TEST (CreateRotOracle, Block32RepeatedOnTheDiagonal)
{
  SlimRotation *r = new_rotation (32);
  ASSERT_NE (r, nullptr);
  std::vector<float> q (128 * 128);
  slim_rotation_to_dense_blockdiag (r, 128, q.data ());
  EXPECT_EQ (q, oracle_f32 ("quarot_create_rot_hadamard_128_block32.rot.npy"));
  slim_rotation_free (r);
}

TEST (CreateRotOracle, BlockShifted)
{
  struct
  {
    const char *name;
    int step;
    std::vector<int64_t> eye;
  } cases[] = { { "step1", 1, {} }, { "step2", 2, {} }, { "eye1", 1, { 1 } } };
  for (auto &c : cases)
    {
      std::vector<float> q (128 * 128);
      GError *error = nullptr;
      ASSERT_TRUE (slim_rotation_block_shifted (128, 32, c.step, c.eye.data (),
                                                (guint)c.eye.size (), SLIM_ROTATION_SEED, q.data (),
                                                &error))
          << error->message;
      expect_close (q,
                    oracle_f32 (std::string ("quarot_create_rot_block_shifted_128_b32_") + c.name
                                + ".rot.npy"),
                    1e-5, 1e-6, c.name);
    }
  std::vector<float> q (128 * 128);
  GError *error = nullptr;
  EXPECT_FALSE (
      slim_rotation_block_shifted (128, 32, 4, nullptr, 0, SLIM_ROTATION_SEED, q.data (), &error));
  GErrorPtr guard (error);
}

// ---- oracle: matmul_had_u ---------------------------------------------------

TEST (MatmulHadUOracle, PowerOfTwoBitEqual)
{
  std::vector<float> x = oracle_f32 ("quarot_matmul_had_u_256.in.x.npy");
  std::vector<float> y = x, yt = x;
  slim_hadamard_transform_rows (y.data (), 16, 256, 1, nullptr, FALSE);
  slim_hadamard_transform_rows (yt.data (), 16, 256, 1, nullptr, TRUE);
  EXPECT_EQ (y, oracle_f32 ("quarot_matmul_had_u_256.y.npy"));
  EXPECT_EQ (yt, oracle_f32 ("quarot_matmul_had_u_256.y_transpose.npy"));
}

TEST (MatmulHadUOracle, Had12)
{
  std::vector<float> x = oracle_f32 ("quarot_matmul_had_u_96.in.x.npy");
  std::vector<int8_t> h12 (144);
  GError *error = nullptr;
  ASSERT_TRUE (slim_hadamard_base (12, h12.data (), &error));
  for (gboolean t : { (gboolean)FALSE, (gboolean)TRUE })
    {
      std::vector<float> y = x, yr = x;
      slim_hadamard_transform_rows (y.data (), 16, 96, 12, h12.data (), t);
      slim_hadamard_transform_rows_ref (yr.data (), 16, 96, 12, h12.data (), t);
      std::string want
          = t ? "quarot_matmul_had_u_96.y_transpose.npy" : "quarot_matmul_had_u_96.y.npy";
      expect_close (y, oracle_f32 (want), 1e-5, 1e-6, want + " fast");
      expect_close (yr, oracle_f32 (want), 1e-5, 1e-6, want + " ref");
    }
}

// ---- oracle: rotate_linear / rotate_weight / fuse_ln_linear -----------------

// fast and ref right rotation of w (rows, dim) by a rotation of size n
void
check_right (
    const std::vector<float> &w, int64_t rows, int64_t dim, int64_t n, const std::string &want_file)
{
  SlimRotation *r = new_rotation (n);
  ASSERT_NE (r, nullptr);
  std::vector<float> fast = w, ref = w;
  slim_rotation_apply_right (r, fast.data (), rows, dim);
  slim_rotation_apply_right_ref (r, ref.data (), rows, dim);
  std::vector<float> want = oracle_f32 (want_file);
  expect_close (fast, want, 1e-5, 1e-6, want_file + " fast");
  expect_close (ref, want, 1e-5, 1e-6, want_file + " ref");
  slim_rotation_free (r);
}

TEST (RotateLinearOracle, RightRotations)
{
  std::vector<float> w16 = oracle_f32 ("quarot_rotate_linear.in.w16.npy");
  std::vector<float> up96 = oracle_f32 ("quarot_rotate_linear.in.up96_16rows.npy");
  check_right (w16, 16, 256, 128, "quarot_rotate_linear.w16_right_rot128_blockdiag2.npy");
  check_right (up96, 16, 96, 96, "quarot_rotate_linear.up96_right_rot96.npy");
  check_right (w16, 16, 256, 64, "quarot_rotate_linear.w16_rotate_weight_rot64_blockdiag4.npy");
}

TEST (RotateLinearOracle, LeftRotationWithBias)
{
  std::vector<float> up = oracle_f32 ("quarot_rotate_linear.in.up_16cols.npy");
  std::vector<float> bias = oracle_f32 ("quarot_rotate_linear.in.up_bias.npy");
  SlimRotation *r = new_rotation (64);
  ASSERT_NE (r, nullptr);
  std::vector<float> fast = up, ref = up, fb = bias, rb = bias;
  slim_rotation_apply_left (r, fast.data (), 256, 16, fb.data ());
  slim_rotation_apply_left_ref (r, ref.data (), 256, 16, rb.data ());
  std::vector<float> want = oracle_f32 ("quarot_rotate_linear.up_left_rot64_blockdiag4_weight.npy");
  std::vector<float> want_b = oracle_f32 ("quarot_rotate_linear.up_left_rot64_blockdiag4_bias.npy");
  expect_close (fast, want, 1e-5, 1e-6, "left weight fast");
  expect_close (ref, want, 1e-5, 1e-6, "left weight ref");
  expect_close (fb, want_b, 1e-5, 1e-6, "left bias fast");
  expect_close (rb, want_b, 1e-5, 1e-6, "left bias ref");
  slim_rotation_free (r);
}

TEST (FuseLnLinearOracle, GainsIntoColumns)
{
  std::vector<float> gamma = oracle_f32 ("input.norm_w.npy");
  for (const char *name : { "w16", "w2_16" })
    {
      std::vector<float> w = oracle_f32 (std::string ("quarot_fuse_ln_linear.in.") + name + ".npy");
      slim_rotation_fuse_norm (w.data (), 16, 256, gamma.data ());
      // one float product per element, as torch: exact
      EXPECT_EQ (w, oracle_f32 (std::string ("quarot_fuse_ln_linear.") + name + ".npy")) << name;
    }
  EXPECT_EQ (std::vector<float> (256, 1.0f), oracle_f32 ("quarot_fuse_ln_linear.norm_weight.npy"))
      << "the gain becomes 1";
}

// ---- fast paths against dense ----------------------------------------------

class FastVsDense : public ::testing::TestWithParam<int64_t>
{
};

TEST_P (FastVsDense, RowsColsRightLeft)
{
  const int64_t n = GetParam ();
  SlimRotation *r = new_rotation (n);
  ASSERT_NE (r, nullptr);
  const int64_t rows = 7, blocks = n > 256 ? 1 : 3, dim = n * blocks;

  for (gboolean t : { (gboolean)FALSE, (gboolean)TRUE })
    {
      std::vector<float> x = random_matrix (rows * n, 1 + (unsigned)n);
      std::vector<float> xr = x;
      slim_hadamard_transform_rows (x.data (), rows, n, r->k, r->had_k, t);
      slim_hadamard_transform_rows_ref (xr.data (), rows, n, r->k, r->had_k, t);
      expect_close (x, xr, 1e-5, 1e-5, "rows n " + std::to_string (n));

      std::vector<float> c = random_matrix (n * 70, 2 + (unsigned)n); // 70: a panel and a tail
      std::vector<float> cr = c;
      slim_hadamard_transform_cols (c.data (), n, 70, r->k, r->had_k, t);
      slim_hadamard_transform_cols_ref (cr.data (), n, 70, r->k, r->had_k, t);
      expect_close (c, cr, 1e-5, 1e-5, "cols n " + std::to_string (n));
    }

  std::vector<float> w = random_matrix (rows * dim, 3);
  std::vector<float> wr = w;
  slim_rotation_apply_right (r, w.data (), rows, dim);
  slim_rotation_apply_right_ref (r, wr.data (), rows, dim);
  expect_close (w, wr, 1e-5, 1e-5, "right");

  std::vector<float> l = random_matrix (dim * 5, 4), b = random_matrix (dim, 5);
  std::vector<float> lr = l, br = b;
  slim_rotation_apply_left (r, l.data (), dim, 5, b.data ());
  slim_rotation_apply_left_ref (r, lr.data (), dim, 5, br.data ());
  expect_close (l, lr, 1e-5, 1e-5, "left");
  expect_close (b, br, 1e-5, 1e-5, "left bias");

  // orthogonal: Q^T Q = I (O(n^3): the small sizes only)
  if (n > 256)
    {
      slim_rotation_free (r);
      return;
    }
  std::vector<float> q ((size_t)(n * n));
  slim_rotation_to_dense (r, q.data ());
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++)
      {
        double dot = 0.0;
        for (int64_t c = 0; c < n; c++)
          dot += (double)q[c * n + i] * q[c * n + j];
        worst = std::max (worst, std::fabs (dot - (i == j ? 1.0 : 0.0)));
      }
  EXPECT_LT (worst, 1e-5) << "n " << n; // n products of 1/sqrt(n) rounded to float
  slim_rotation_free (r);
}

// powers of two below and above the 1024-element chunk, and every base
INSTANTIATE_TEST_SUITE_P (Sizes,
                          FastVsDense,
                          ::testing::Values (1,
                                             2,
                                             8,
                                             64,
                                             2048,
                                             12,
                                             24,
                                             20 * 4,
                                             28 * 2,
                                             36,
                                             40,
                                             52 * 2,
                                             60,
                                             76,
                                             108,
                                             136,
                                             140,
                                             160,
                                             200,
                                             156,
                                             156 * 2,
                                             172,
                                             172 * 4));

} // namespace

// ---- online rotations (slim-online-rotation.h) ------------------------------

// msModelSlim's get_decompose_dim on the oracle's sizes (case
// quarot_get_decompose_dim, scalars only; the values are the manifest's).
TEST (OnlineRotation, DecomposeMatchesTheOracleScalars)
{
  const struct
  {
    gint64 n, m, k;
  } cases[] = { { 64, 8, 8 },     { 96, 8, 12 },    { 128, 8, 16 },     { 576, 24, 24 },
                { 1024, 32, 32 }, { 4096, 64, 64 }, { 11008, 64, 172 }, { 14336, 112, 128 } };
  for (const auto &c : cases)
    {
      GError *error = nullptr;
      gint64 m = 0, k = 0;
      EXPECT_TRUE (slim_online_rotation_decompose (c.n, &m, &k, &error)) << c.n;
      EXPECT_EQ (m, c.m) << c.n;
      EXPECT_EQ (k, c.k) << c.n;
      g_clear_error (&error);
    }
  // stories260K's intermediate size: 172 = 4 * 43, no pair of equal parity
  GError *error = nullptr;
  gint64 m = 0, k = 0;
  EXPECT_FALSE (slim_online_rotation_decompose (172, &m, &k, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("172"), std::string::npos) << error->message;
  g_clear_error (&error);
  EXPECT_FALSE (slim_online_rotation_decompose (0, &m, &k, &error));
  g_clear_error (&error);
}

// The sgemm paths against the loops, and the weight/input pairing: with
// W' = rows rotated like inputs, W' x' = W x (orthogonal R, M, N).
TEST (OnlineRotation, FastEqualsReferenceAndKeepsProducts)
{
  std::mt19937 rng (11);
  std::normal_distribution<float> g (0.0f, 1.0f);
  auto random = [&] (gint64 n) {
    std::vector<float> v ((size_t)n);
    for (float &x : v)
      x = g (rng);
    return v;
  };
  auto ortho = [] (gint64 n, gint64 block) {
    GError *error = nullptr;
    SlimRotation *r = slim_rotation_new_hadamard (block, SLIM_ROTATION_SEED, &error);
    EXPECT_NE (r, nullptr);
    std::vector<float> q ((size_t)(n * n));
    slim_rotation_to_dense_blockdiag (r, n, q.data ());
    slim_rotation_free (r);
    return q;
  };
  const gint64 n_tokens = 7, nh = 8, hd = 12, dm = 8, dn = 12, rows = 5;
  std::vector<float> r = ortho (nh, 4), m = ortho (dm, 4), n = ortho (dn, 12);

  std::vector<float> x = random (n_tokens * nh * hd), x_ref = x;
  slim_online_rotation_heads (r.data (), nh, hd, x.data (), n_tokens);
  slim_online_rotation_heads_ref (r.data (), nh, hd, x_ref.data (), n_tokens);
  // sgemm vs loop summation order over 8 terms of |x| ~ 1: float rounding
  for (size_t i = 0; i < x.size (); i++)
    EXPECT_NEAR (x[i], x_ref[i], 1e-5f) << i;

  std::vector<float> y = random (n_tokens * dm * dn), y_ref = y;
  slim_online_rotation_kronecker (m.data (), dm, n.data (), dn, y.data (), n_tokens);
  slim_online_rotation_kronecker_ref (m.data (), dm, n.data (), dn, y_ref.data (), n_tokens);
  for (size_t i = 0; i < y.size (); i++)
    EXPECT_NEAR (y[i], y_ref[i], 1e-5f) << i;

  // products: w (rows, dm*dn) and x (n_tokens, dm*dn), both rotated
  std::vector<float> w = random (rows * dm * dn), xin = random (n_tokens * dm * dn);
  std::vector<float> w2 = w, x2 = xin;
  slim_online_rotation_kronecker (m.data (), dm, n.data (), dn, w2.data (), rows);
  slim_online_rotation_kronecker (m.data (), dm, n.data (), dn, x2.data (), n_tokens);
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 o = 0; o < rows; o++)
      {
        double a = 0.0, b = 0.0;
        for (gint64 j = 0; j < dm * dn; j++)
          {
            a += (double)w[o * dm * dn + j] * xin[t * dm * dn + j];
            b += (double)w2[o * dm * dn + j] * x2[t * dm * dn + j];
          }
        // 96 terms of products ~ 1 in float32 after two rotations
        EXPECT_NEAR (a, b, 1e-4) << t << " " << o;
      }
}
