// SPDX-License-Identifier: Apache-2.0
//
// test-decoder-backward.cpp: the reverse-mode gradients of the decoder
// kernels (slim-decoder-backward.h) and of a whole dense layer
// (slim-dense-layer-backward.h).
//
// Method: every op (and the layer) has a float64 forward written here in
// plain loops; a test first checks that this float64 forward is the same
// function as the library's float32 forward, then compares the library's
// float32 gradient of L = Σ dy ⊙ f(inputs) (dy random) with central finite
// differences of the float64 forward.  In float64 with step h = 1e-4 the
// finite difference is exact to ~1e-8 relative (truncation h² f''' plus
// 1e-16 / h rounding), so what the comparison measures is the float32
// rounding of the analytic gradient: sums of up to a few hundred products,
// ~1e-6 relative to the gradient's scale.  The tolerance, 1e-3 of the
// scale (the largest |gradient| of the tensor), leaves room for that and
// is still far below what a wrong or missing term gives (O(1) of the scale
// on the entries it touches; the deliberate-break checks in the commit
// note show each test failing).
#include "slim-test.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>

#include "slim-decoder-backward.h"
#include "slim-decoder.h"
#include "slim-dense-layer-backward.h"
#include "slim-layer.h"
#include "slim-model.h"
#include "slim-moe-layer-backward.h"

namespace
{

constexpr double kStep = 1e-4;
// See the file comment: float32 analytic gradient vs float64 central
// differences, relative to the tensor's gradient scale.
constexpr double kGradTolerance = 1e-3;

struct ObjectDeleter
{
  void
  operator() (gpointer object) const
  {
    if (object != nullptr)
      g_object_unref (object);
  }
};
struct TensorDeleter
{
  void
  operator() (SlimTensor *t) const
  {
    if (t != nullptr)
      slim_tensor_unref (t);
  }
};
using ModelPtr = std::unique_ptr<SlimModel, ObjectDeleter>;
using LayerPtr = std::unique_ptr<SlimLayer, ObjectDeleter>;
using TensorPtr = std::unique_ptr<SlimTensor, TensorDeleter>;

std::vector<float>
random_floats (size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f)
{
  std::mt19937 rng (seed);
  std::uniform_real_distribution<float> dist (lo, hi);
  std::vector<float> v (n);
  for (float &x : v)
    x = dist (rng);
  return v;
}

std::vector<double>
to_double (const float *x, size_t n)
{
  return std::vector<double> (x, x + n);
}

std::vector<double>
to_double (const std::vector<float> &x)
{
  return to_double (x.data (), x.size ());
}

double
max_abs (const std::vector<float> &x)
{
  double m = 0.0;
  for (float v : x)
    m = std::max (m, (double)std::fabs (v));
  return m;
}

double
dot (const std::vector<double> &a, const std::vector<float> &b)
{
  double sum = 0.0;
  for (size_t i = 0; i < a.size (); i++)
    sum += a[i] * (double)b[i];
  return sum;
}

// Entries to check: all when the tensor is small, else `count` random ones
// plus the entry of the largest analytic gradient.
std::vector<size_t>
pick_indices (const std::vector<float> &grad, size_t count, unsigned seed)
{
  std::vector<size_t> idx;
  if (grad.size () <= count)
    {
      for (size_t i = 0; i < grad.size (); i++)
        idx.push_back (i);
      return idx;
    }
  std::mt19937 rng (seed);
  std::uniform_int_distribution<size_t> dist (0, grad.size () - 1);
  for (size_t i = 0; i < count; i++)
    idx.push_back (dist (rng));
  size_t best = 0;
  for (size_t i = 1; i < grad.size (); i++)
    if (std::fabs (grad[i]) > std::fabs (grad[best]))
      best = i;
  idx.push_back (best);
  return idx;
}

// Compares grad (float32, analytic) with central differences of loss()
// in the entries idx of param (float64, perturbed in place and restored).
void
expect_grad_matches_fd (const std::string &what,
                        std::vector<double> &param,
                        const std::vector<float> &grad,
                        const std::vector<size_t> &idx,
                        const std::function<double ()> &loss)
{
  ASSERT_EQ (param.size (), grad.size ()) << what;
  double scale = max_abs (grad);
  ASSERT_GT (scale, 0.0) << what << ": the gradient is identically zero";
  int failures = 0;
  for (size_t i : idx)
    {
      double saved = param[i];
      param[i] = saved + kStep;
      double plus = loss ();
      param[i] = saved - kStep;
      double minus = loss ();
      param[i] = saved;
      double fd = (plus - minus) / (2.0 * kStep);
      if (std::fabs (fd - (double)grad[i]) > kGradTolerance * scale && failures++ < 5)
        ADD_FAILURE () << what << "[" << i << "]: analytic " << grad[i] << ", finite difference "
                       << fd << " (scale " << scale << ")";
    }
  EXPECT_EQ (failures, 0) << what;
}

// ---- float64 forwards ------------------------------------------------------

// y (rows, n_out) = x (rows, n_in) Wᵀ + b
std::vector<double>
ref_linear (const std::vector<double> &x,
            const std::vector<double> &w,
            const std::vector<double> *b,
            size_t rows,
            size_t n_in,
            size_t n_out)
{
  std::vector<double> y (rows * n_out);
  for (size_t r = 0; r < rows; r++)
    for (size_t o = 0; o < n_out; o++)
      {
        double sum = b != nullptr && !b->empty () ? (*b)[o] : 0.0;
        for (size_t i = 0; i < n_in; i++)
          sum += x[r * n_in + i] * w[o * n_in + i];
        y[r * n_out + o] = sum;
      }
  return y;
}

std::vector<double>
ref_rmsnorm (const std::vector<double> &x,
             const std::vector<double> &w,
             const std::vector<double> *b,
             double eps,
             size_t rows,
             size_t n)
{
  std::vector<double> y (rows * n);
  for (size_t r = 0; r < rows; r++)
    {
      double sum = 0.0;
      for (size_t j = 0; j < n; j++)
        sum += x[r * n + j] * x[r * n + j];
      double inv = 1.0 / std::sqrt (sum / (double)n + eps);
      for (size_t j = 0; j < n; j++)
        y[r * n + j] = w[j] * x[r * n + j] * inv + (b != nullptr && !b->empty () ? (*b)[j] : 0.0);
    }
  return y;
}

std::vector<double>
ref_silu_mul (const std::vector<double> &gate, const std::vector<double> &up)
{
  std::vector<double> y (gate.size ());
  for (size_t i = 0; i < gate.size (); i++)
    y[i] = gate[i] / (1.0 + std::exp (-gate[i])) * up[i];
  return y;
}

// RoPE with the library's float32 table (the table is not differentiated).
std::vector<double>
ref_rope (const SlimRopeTable *table,
          std::vector<double> x,
          size_t n_tokens,
          size_t n_heads,
          const gint64 *positions)
{
  size_t half = (size_t)table->half;
  for (size_t t = 0; t < n_tokens; t++)
    for (size_t h = 0; h < n_heads; h++)
      for (size_t j = 0; j < half; j++)
        {
          double c = table->cos[positions[t] * half + j];
          double s = table->sin[positions[t] * half + j];
          double *xh = &x[(t * n_heads + h) * 2 * half];
          double x0 = xh[j], x1 = xh[j + half];
          xh[j] = x0 * c - x1 * s;
          xh[j + half] = x1 * c + x0 * s;
        }
  return x;
}

std::vector<double>
ref_attention (const SlimAttentionShape &shape,
               const std::vector<gint64> &lens,
               const std::vector<double> &q,
               const std::vector<double> &k,
               const std::vector<double> &v)
{
  size_t hd = (size_t)shape.head_dim;
  size_t ld_q = (size_t)shape.n_heads * hd, ld_kv = (size_t)shape.n_kv_heads * hd;
  size_t group = (size_t)(shape.n_heads / shape.n_kv_heads);
  std::vector<double> out (q.size (), 0.0);
  size_t offset = 0;
  for (gint64 len : lens)
    {
      for (size_t h = 0; h < (size_t)shape.n_heads; h++)
        for (gint64 i = 0; i < len; i++)
          {
            size_t kv = (h / group) * hd;
            gint64 lo
                = shape.sliding_window > 0 ? std::max<gint64> (0, i - shape.sliding_window + 1) : 0;
            std::vector<double> p ((size_t)len, 0.0);
            double mx = -INFINITY, sum = 0.0;
            for (gint64 j = lo; j <= i; j++)
              {
                double s = 0.0;
                for (size_t d = 0; d < hd; d++)
                  s += q[(offset + i) * ld_q + h * hd + d] * k[(offset + j) * ld_kv + kv + d];
                p[j] = s * shape.scale;
                mx = std::max (mx, p[j]);
              }
            for (gint64 j = lo; j <= i; j++)
              {
                p[j] = std::exp (p[j] - mx);
                sum += p[j];
              }
            for (size_t d = 0; d < hd; d++)
              {
                double acc = 0.0;
                for (gint64 j = lo; j <= i; j++)
                  acc += p[j] / sum * v[(offset + j) * ld_kv + kv + d];
                out[(offset + i) * ld_q + h * hd + d] = acc;
              }
          }
      offset += (size_t)len;
    }
  return out;
}

SlimBatch
make_batch (const std::vector<gint64> &lens)
{
  SlimBatch batch = { (guint)lens.size (), lens.data () };
  return batch;
}

size_t
total_tokens (const std::vector<gint64> &lens)
{
  size_t n = 0;
  for (gint64 l : lens)
    n += (size_t)l;
  return n;
}

// ---- op tests --------------------------------------------------------------

TEST (DecoderBackward, LinearMatchesReferenceAndFiniteDifferences)
{
  const size_t rows = 9, n_in = 13, n_out = 7;
  std::vector<float> x = random_floats (rows * n_in, 1);
  std::vector<float> w = random_floats (n_out * n_in, 2);
  std::vector<float> b = random_floats (n_out, 3);
  std::vector<float> dy = random_floats (rows * n_out, 4);
  // Parameter gradients accumulate onto what is there; dx is written.
  std::vector<float> dx (rows * n_in, 7.0f), dw (n_out * n_in, 0.0f), db (n_out, 0.0f);
  std::vector<float> dx_ref (rows * n_in, -3.0f), dw_ref (dw), db_ref (db);

  slim_backward_linear (x.data (), w.data (), dy.data (), rows, n_in, n_out, dx.data (), FALSE,
                        dw.data (), db.data ());
  slim_backward_linear_ref (x.data (), w.data (), dy.data (), rows, n_in, n_out, dx_ref.data (),
                            FALSE, dw_ref.data (), db_ref.data ());
  // sgemm vs a double-accumulated loop over <= 13 products: float32 rounding.
  for (size_t i = 0; i < dx.size (); i++)
    EXPECT_NEAR (dx[i], dx_ref[i], 1e-5) << i;
  for (size_t i = 0; i < dw.size (); i++)
    EXPECT_NEAR (dw[i], dw_ref[i], 1e-5) << i;
  for (size_t i = 0; i < db.size (); i++)
    EXPECT_NEAR (db[i], db_ref[i], 1e-5) << i;

  std::vector<double> xd = to_double (x), wd = to_double (w), bd = to_double (b);
  auto loss = [&] () { return dot (ref_linear (xd, wd, &bd, rows, n_in, n_out), dy); };
  expect_grad_matches_fd ("dx", xd, dx, pick_indices (dx, 1000, 5), loss);
  expect_grad_matches_fd ("dW", wd, dw, pick_indices (dw, 1000, 6), loss);
  expect_grad_matches_fd ("db", bd, db, pick_indices (db, 1000, 7), loss);

  // Accumulation: a second call adds the same again; accumulate_dx adds to dx.
  std::vector<float> dw2 (dw), db2 (db), dx2 (dx);
  slim_backward_linear (x.data (), w.data (), dy.data (), rows, n_in, n_out, dx2.data (), TRUE,
                        dw2.data (), db2.data ());
  for (size_t i = 0; i < dw.size (); i++)
    EXPECT_NEAR (dw2[i], 2.0f * dw[i], 1e-5) << i;
  for (size_t i = 0; i < db.size (); i++)
    EXPECT_NEAR (db2[i], 2.0f * db[i], 1e-5) << i;
  for (size_t i = 0; i < dx.size (); i++)
    EXPECT_NEAR (dx2[i], 2.0f * dx[i], 1e-5) << i;
}

TEST (DecoderBackward, RmsNormMatchesFiniteDifferences)
{
  const size_t rows = 5, n = 24;
  const float eps = 1e-6f;
  std::vector<float> x = random_floats (rows * n, 11, -2.0f, 2.0f);
  std::vector<float> w = random_floats (n, 12, 0.5f, 1.5f);
  std::vector<float> b = random_floats (n, 13);
  std::vector<float> dy = random_floats (rows * n, 14);
  std::vector<float> y (rows * n), dx (rows * n), dw (n, 0.0f), db (n, 0.0f);

  // The float64 forward is the library's function.
  slim_decoder_rmsnorm (x.data (), w.data (), b.data (), eps, y.data (), rows, n);
  std::vector<double> xd = to_double (x), wd = to_double (w), bd = to_double (b);
  std::vector<double> yd = ref_rmsnorm (xd, wd, &bd, eps, rows, n);
  for (size_t i = 0; i < y.size (); i++)
    EXPECT_NEAR (y[i], yd[i], 1e-5) << i;

  slim_backward_rmsnorm (x.data (), w.data (), eps, dy.data (), dx.data (), dw.data (), db.data (),
                         rows, n);
  auto loss = [&] () { return dot (ref_rmsnorm (xd, wd, &bd, eps, rows, n), dy); };
  expect_grad_matches_fd ("dx", xd, dx, pick_indices (dx, 1000, 15), loss);
  expect_grad_matches_fd ("dgain", wd, dw, pick_indices (dw, 1000, 16), loss);
  expect_grad_matches_fd ("dbias", bd, db, pick_indices (db, 1000, 17), loss);

  // In place (dx == dy) gives the same.
  std::vector<float> inplace (dy);
  slim_backward_rmsnorm (x.data (), w.data (), eps, inplace.data (), inplace.data (), nullptr,
                         nullptr, rows, n);
  for (size_t i = 0; i < dx.size (); i++)
    EXPECT_EQ (inplace[i], dx[i]) << i;
}

TEST (DecoderBackward, SiluMulMatchesFiniteDifferences)
{
  const size_t n = 64;
  std::vector<float> gate = random_floats (n, 21, -6.0f, 6.0f);
  std::vector<float> up = random_floats (n, 22, -2.0f, 2.0f);
  std::vector<float> dout = random_floats (n, 23);
  std::vector<float> out (gate), dgate (n), dup (n);

  slim_decoder_silu_mul (out.data (), up.data (), n);
  std::vector<double> gd = to_double (gate), ud = to_double (up);
  std::vector<double> od = ref_silu_mul (gd, ud);
  for (size_t i = 0; i < n; i++)
    EXPECT_NEAR (out[i], od[i], 1e-5) << i;

  slim_backward_silu_mul (gate.data (), up.data (), dout.data (), dgate.data (), dup.data (), n);
  auto loss = [&] () { return dot (ref_silu_mul (gd, ud), dout); };
  expect_grad_matches_fd ("dgate", gd, dgate, pick_indices (dgate, 1000, 24), loss);
  expect_grad_matches_fd ("dup", ud, dup, pick_indices (dup, 1000, 25), loss);
}

TEST (DecoderBackward, RopeIsTheTransposeRotation)
{
  SlimModelConfig config = {};
  config.head_dim = 8;
  config.rope_theta = 10000.0;
  const std::vector<gint64> lens = { 6, 3 };
  SlimBatch batch = make_batch (lens);
  const size_t n_tokens = total_tokens (lens), n_heads = 3, width = n_heads * 8;
  std::vector<gint64> positions (n_tokens);
  slim_decoder_fill_positions (&batch, positions.data ());
  SlimRopeTable table = {};
  slim_rope_table_init (&table, &config, 6);

  std::vector<float> x = random_floats (n_tokens * width, 31);
  std::vector<float> dy = random_floats (n_tokens * width, 32);
  std::vector<float> y (x);
  slim_decoder_rope_apply (&table, y.data (), n_tokens, n_heads, positions.data ());
  std::vector<double> xd = to_double (x);
  std::vector<double> yd = ref_rope (&table, xd, n_tokens, n_heads, positions.data ());
  for (size_t i = 0; i < y.size (); i++)
    EXPECT_NEAR (y[i], yd[i], 1e-6) << i;

  std::vector<float> dx (dy);
  slim_backward_rope (&table, dx.data (), n_tokens, n_heads, positions.data ());
  auto loss
      = [&] () { return dot (ref_rope (&table, xd, n_tokens, n_heads, positions.data ()), dy); };
  expect_grad_matches_fd ("dx", xd, dx, pick_indices (dx, 1000, 33), loss);

  // Rotation then its adjoint is the identity (up to float32 rounding).
  slim_backward_rope (&table, y.data (), n_tokens, n_heads, positions.data ());
  for (size_t i = 0; i < y.size (); i++)
    EXPECT_NEAR (y[i], x[i], 1e-6) << i;
  slim_rope_table_clear (&table);
}

struct AttentionCase
{
  const char *name;
  std::vector<gint64> lens;
  gint64 n_heads, n_kv_heads, head_dim, window;
};

void
check_attention_backward (const AttentionCase &c)
{
  SCOPED_TRACE (c.name);
  SlimAttentionShape shape = { c.n_heads, c.n_kv_heads, c.head_dim, c.window,
                               (float)(1.0 / std::sqrt ((double)c.head_dim)) };
  SlimBatch batch = make_batch (c.lens);
  size_t n_tokens = total_tokens (c.lens);
  size_t q_w = (size_t)(c.n_heads * c.head_dim), kv_w = (size_t)(c.n_kv_heads * c.head_dim);
  // Spread of 2.5 gives peaked softmax rows, so dS is far from uniform.
  std::vector<float> q = random_floats (n_tokens * q_w, 41, -2.5f, 2.5f);
  std::vector<float> k = random_floats (n_tokens * kv_w, 42, -2.5f, 2.5f);
  std::vector<float> v = random_floats (n_tokens * kv_w, 43);
  std::vector<float> dout = random_floats (n_tokens * q_w, 44);
  std::vector<float> out (n_tokens * q_w);
  std::vector<float> scratch (slim_decoder_attention_scratch_n_elements (&batch));
  slim_decoder_attention (&shape, &batch, q.data (), k.data (), v.data (), out.data (),
                          scratch.data ());
  std::vector<double> qd = to_double (q), kd = to_double (k), vd = to_double (v);
  std::vector<double> od = ref_attention (shape, c.lens, qd, kd, vd);
  for (size_t i = 0; i < out.size (); i++)
    ASSERT_NEAR (out[i], od[i], 1e-5) << "the float64 forward is not the library's, " << i;

  std::vector<float> dq (n_tokens * q_w, NAN), dk (n_tokens * kv_w, NAN), dv (n_tokens * kv_w, NAN);
  std::vector<float> bscratch (slim_backward_attention_scratch_n_elements (&batch));
  slim_backward_attention (&shape, &batch, q.data (), k.data (), v.data (), dout.data (),
                           dq.data (), dk.data (), dv.data (), bscratch.data ());
  std::vector<float> dq_ref (dq.size ()), dk_ref (dk.size ()), dv_ref (dv.size ());
  slim_backward_attention_ref (&shape, &batch, q.data (), k.data (), v.data (), dout.data (),
                               dq_ref.data (), dk_ref.data (), dv_ref.data ());
  // sgemm blocks vs double loops: float32 rounding of sums over <= len keys,
  // relative to the gradient's scale.
  double tol = 1e-5 * std::max ({ max_abs (dq_ref), max_abs (dk_ref), max_abs (dv_ref), 1.0 });
  for (size_t i = 0; i < dq.size (); i++)
    EXPECT_NEAR (dq[i], dq_ref[i], tol) << "dq " << i;
  for (size_t i = 0; i < dk.size (); i++)
    EXPECT_NEAR (dk[i], dk_ref[i], tol) << "dk " << i;
  for (size_t i = 0; i < dv.size (); i++)
    EXPECT_NEAR (dv[i], dv_ref[i], tol) << "dv " << i;

  if (n_tokens > 64)
    return; // long cases: the blocked kernel against the reference only
  auto loss = [&] () { return dot (ref_attention (shape, c.lens, qd, kd, vd), dout); };
  expect_grad_matches_fd ("dq", qd, dq, pick_indices (dq, 100000, 45), loss);
  expect_grad_matches_fd ("dk", kd, dk, pick_indices (dk, 100000, 46), loss);
  expect_grad_matches_fd ("dv", vd, dv, pick_indices (dv, 100000, 47), loss);
}

TEST (DecoderBackward, AttentionMatchesReferenceAndFiniteDifferences)
{
  // Packed sequences of different lengths (one of length 1): the sequence
  // boundaries are the padding mask.  GQA groups of 2 and 3, MHA, window.
  check_attention_backward ({ "gqa", { 5, 1, 7 }, 4, 2, 4, 0 });
  check_attention_backward ({ "gqa3", { 4, 6 }, 6, 2, 2, 0 });
  check_attention_backward ({ "mha", { 8 }, 2, 2, 6, 0 });
  check_attention_backward ({ "window", { 9, 4 }, 4, 1, 4, 3 });
  // Longer than one block of 128 query rows, with and without a window.
  check_attention_backward ({ "blocks", { 300, 20 }, 2, 1, 8, 0 });
  check_attention_backward ({ "blocks-window", { 290 }, 2, 2, 4, 100 });
}

// ---- whole dense layer -----------------------------------------------------

// The weights of a dense layer in float64, by name; empty vectors are
// absent tensors.
struct RefLayer
{
  std::map<std::string, std::vector<double> > t;
};

std::vector<double>
ref_layer_forward (const SlimModelConfig *config,
                   RefLayer &L,
                   const std::vector<gint64> &lens,
                   const std::vector<double> &x,
                   const SlimRopeTable *rope,
                   const gint64 *positions,
                   const std::map<std::string, std::vector<double> > *in_offsets = nullptr)
{
  // in_offsets: constants added to the named linears' inputs (a frozen
  // activation quantization error: the straight-through function).
  auto in = [&] (const char *name, const std::vector<double> &x) {
    if (in_offsets == nullptr || in_offsets->count (name) == 0)
      return x;
    std::vector<double> y = x;
    const std::vector<double> &d = in_offsets->at (name);
    for (size_t i = 0; i < y.size (); i++)
      y[i] += d[i];
    return y;
  };
  size_t T = total_tokens (lens), H = (size_t)config->hidden_size;
  size_t hd = (size_t)config->head_dim;
  size_t Q = (size_t)config->n_heads * hd, KV = (size_t)config->n_kv_heads * hd;
  size_t I = (size_t)config->intermediate_size;
  double eps = (float)config->rms_norm_eps;
  SlimAttentionShape shape = { config->n_heads, config->n_kv_heads, config->head_dim,
                               config->sliding_window, (float)(1.0 / std::sqrt ((double)hd)) };

  auto n1 = ref_rmsnorm (x, L.t["input_norm"], &L.t["input_norm_bias"], eps, T, H);
  auto q = ref_linear (in ("q", n1), L.t["q"], &L.t["q_bias"], T, H, Q);
  auto k = ref_linear (in ("k", n1), L.t["k"], &L.t["k_bias"], T, H, KV);
  auto v = ref_linear (in ("v", n1), L.t["v"], &L.t["v_bias"], T, H, KV);
  if (config->qk_norm)
    {
      q = ref_rmsnorm (q, L.t["q_norm"], nullptr, eps, T * (size_t)config->n_heads, hd);
      k = ref_rmsnorm (k, L.t["k_norm"], nullptr, eps, T * (size_t)config->n_kv_heads, hd);
    }
  q = ref_rope (rope, q, T, (size_t)config->n_heads, positions);
  k = ref_rope (rope, k, T, (size_t)config->n_kv_heads, positions);
  auto ctx = ref_attention (shape, lens, q, k, v);
  auto o = ref_linear (in ("o", ctx), L.t["o"], &L.t["o_bias"], T, Q, H);
  std::vector<double> h (T * H);
  for (size_t i = 0; i < h.size (); i++)
    h[i] = x[i] + o[i];
  auto n2 = ref_rmsnorm (h, L.t["post_norm"], &L.t["post_norm_bias"], eps, T, H);
  auto gate = ref_linear (in ("gate", n2), L.t["gate"], &L.t["gate_bias"], T, H, I);
  auto up = ref_linear (in ("up", n2), L.t["up"], &L.t["up_bias"], T, H, I);
  auto act = ref_silu_mul (gate, up);
  auto down = ref_linear (in ("down", act), L.t["down"], &L.t["down_bias"], T, I, H);
  for (size_t i = 0; i < h.size (); i++)
    h[i] += down[i];
  return h;
}

// A dense layer's float32 weights (owned copies, so a test may add norm
// biases or q/k norms), their float64 twin, and gradient buffers.
struct LayerFixture
{
  SlimModelConfig config;
  std::map<std::string, std::vector<float> > w;     // by name, as RefLayer
  std::map<std::string, std::vector<float> > grads; // same names
  SlimDenseLayerWeights weights = {};
  SlimDenseLayerGrads g = {};

  void
  put (const std::string &name, const float *data, size_t n)
  {
    if (data != nullptr)
      w[name] = std::vector<float> (data, data + n);
  }

  void
  load (const SlimDenseLayerWeights &src)
  {
    size_t H = (size_t)config.hidden_size, hd = (size_t)config.head_dim;
    size_t Q = (size_t)config.n_heads * hd, KV = (size_t)config.n_kv_heads * hd;
    size_t I = (size_t)config.intermediate_size;
    put ("input_norm", src.input_norm, H);
    put ("input_norm_bias", src.input_norm_bias, H);
    put ("post_norm", src.post_norm, H);
    put ("post_norm_bias", src.post_norm_bias, H);
    put ("q_norm", src.q_norm, hd);
    put ("k_norm", src.k_norm, hd);
    struct
    {
      const char *name;
      const SlimLinearWeights *lw;
      size_t n_out, n_in;
    } linears[]
        = { { "q", &src.q, Q, H },      { "k", &src.k, KV, H },      { "v", &src.v, KV, H },
            { "o", &src.o, H, Q },      { "gate", &src.gate, I, H }, { "up", &src.up, I, H },
            { "down", &src.down, H, I } };
    for (auto &l : linears)
      {
        put (l.name, l.lw->weight, l.n_out * l.n_in);
        put (std::string (l.name) + "_bias", l.lw->bias, l.n_out);
      }
  }

  // Points weights and g at the float32 buffers (after any change to w).
  void
  bind ()
  {
    auto ptr = [&] (const char *name) -> const float * {
      auto it = w.find (name);
      return it == w.end () ? nullptr : it->second.data ();
    };
    auto gptr = [&] (const char *name) -> float * {
      auto it = w.find (name);
      if (it == w.end ())
        return nullptr;
      grads[name].assign (it->second.size (), 0.0f);
      return grads[name].data ();
    };
    weights.input_norm = ptr ("input_norm");
    weights.input_norm_bias = ptr ("input_norm_bias");
    weights.post_norm = ptr ("post_norm");
    weights.post_norm_bias = ptr ("post_norm_bias");
    weights.q_norm = ptr ("q_norm");
    weights.k_norm = ptr ("k_norm");
    g.input_norm = gptr ("input_norm");
    g.input_norm_bias = gptr ("input_norm_bias");
    g.post_norm = gptr ("post_norm");
    g.post_norm_bias = gptr ("post_norm_bias");
    g.q_norm = gptr ("q_norm");
    g.k_norm = gptr ("k_norm");
    struct
    {
      const char *name;
      SlimLinearWeights *lw;
      SlimLinearGrads *lg;
    } linears[] = { { "q", &weights.q, &g.q },          { "k", &weights.k, &g.k },
                    { "v", &weights.v, &g.v },          { "o", &weights.o, &g.o },
                    { "gate", &weights.gate, &g.gate }, { "up", &weights.up, &g.up },
                    { "down", &weights.down, &g.down } };
    for (auto &l : linears)
      {
        std::string bias = std::string (l.name) + "_bias";
        l.lw->weight = ptr (l.name);
        l.lw->bias = ptr (bias.c_str ());
        l.lg->weight = gptr (l.name);
        l.lg->bias = gptr (bias.c_str ());
      }
  }

  RefLayer
  to_ref () const
  {
    RefLayer r;
    for (auto &kv : w)
      r.t[kv.first] = to_double (kv.second);
    return r;
  }
};

ModelPtr
open_model (const std::string &relative)
{
  GError *error = nullptr;
  std::string dir = slim_test_shared_path (relative);
  SlimModel *model = slim_model_open (dir.c_str (), &error);
  EXPECT_NE (model, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  return ModelPtr (model);
}

ModelPtr
open_synthetic (const char *name)
{
  return open_model (std::string ("models/synthetic/") + name);
}

LayerPtr
load_layer (SlimModel *model, guint index)
{
  GError *error = nullptr;
  SlimLayer *layer = slim_model_load_layer (model, index, &error);
  EXPECT_NE (layer, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  return LayerPtr (layer);
}

const char *const kDenseModels[]
    = { "tiny-random-llama-untied", "tiny-random-mistral", "tiny-random-qwen2" };

// The tape forward is slim_model_forward_layer(), bit for bit.
TEST (DenseLayerBackward, TapeForwardIsTheModelForward)
{
  for (const char *name : kDenseModels)
    {
      SCOPED_TRACE (name);
      ModelPtr model = open_synthetic (name);
      ASSERT_NE (model, nullptr);
      const SlimModelConfig *config = slim_model_get_config (model.get ());
      LayerPtr layer = load_layer (model.get (), 1);
      ASSERT_NE (layer, nullptr);
      GError *error = nullptr;
      SlimDenseLayerWeights weights;
      ASSERT_TRUE (slim_dense_layer_weights_init (&weights, config, layer.get (), &error))
          << error->message;
      std::vector<gint64> lens = { 11, 1, 6 };
      SlimBatch batch = make_batch (lens);
      size_t T = total_tokens (lens), H = (size_t)config->hidden_size;
      std::vector<float> x = random_floats (T * H, 51);
      TensorPtr hidden (slim_tensor_new_2d ("hidden", SLIM_DTYPE_F32, (gint64)T, (gint64)H));
      memcpy (slim_tensor_get_data_mut (hidden.get ()), x.data (), T * H * sizeof (float));
      TensorPtr expect (slim_model_forward_layer (model.get (), layer.get (), hidden.get (), &batch,
                                                  nullptr, &error));
      ASSERT_NE (expect, nullptr) << error->message;

      SlimDenseLayerTape tape = {};
      slim_dense_layer_forward (config, &weights, &batch, x.data (), &tape);
      ASSERT_EQ (tape.n_tokens, (gint64)T);
      EXPECT_EQ (memcmp (tape.y, slim_tensor_get_data (expect.get ()), T * H * sizeof (float)), 0);
      slim_dense_layer_tape_clear (&tape);
    }
}

TEST (DenseLayerBackward, MixtureOfExpertsLayerIsRefused)
{
  ModelPtr model = open_synthetic ("tiny-random-mixtral-moe");
  ASSERT_NE (model, nullptr);
  LayerPtr layer = load_layer (model.get (), 0);
  ASSERT_NE (layer, nullptr);
  GError *error = nullptr;
  SlimDenseLayerWeights weights;
  EXPECT_FALSE (slim_dense_layer_weights_init (&weights, slim_model_get_config (model.get ()),
                                               layer.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("mixture of experts"), std::string::npos)
      << error->message;
  g_clear_error (&error);
}

enum class Variant
{
  kAsLoaded,
  kNormBiasesAndQkNorm, // + random norm biases, qwen3-style q/k norms
  kSlidingWindow,       // mistral-style window of 3
};

// The layer's input: x when given (n_tokens x hidden for lens), else
// uniform hidden states of the scale a synthetic layer sees.
void
check_model_layer_gradients (SlimModel *model,
                             guint layer_index,
                             Variant variant,
                             const std::vector<gint64> &lens,
                             const std::vector<float> *x_given)
{
  ASSERT_NE (model, nullptr);
  LayerFixture fx;
  fx.config = *slim_model_get_config (model);
  LayerPtr layer = load_layer (model, layer_index);
  ASSERT_NE (layer, nullptr);
  {
    GError *error = nullptr;
    SlimDenseLayerWeights loaded;
    ASSERT_TRUE (slim_dense_layer_weights_init (&loaded, &fx.config, layer.get (), &error))
        << error->message;
    fx.load (loaded);
  }
  size_t H = (size_t)fx.config.hidden_size, hd = (size_t)fx.config.head_dim;
  if (variant == Variant::kNormBiasesAndQkNorm)
    {
      fx.config.qk_norm = TRUE;
      fx.w["input_norm_bias"] = random_floats (H, 61, -0.3f, 0.3f);
      fx.w["post_norm_bias"] = random_floats (H, 62, -0.3f, 0.3f);
      fx.w["q_norm"] = random_floats (hd, 63, 0.5f, 1.5f);
      fx.w["k_norm"] = random_floats (hd, 64, 0.5f, 1.5f);
    }
  if (variant == Variant::kSlidingWindow)
    fx.config.sliding_window = 3;
  fx.bind ();

  SlimBatch batch = make_batch (lens);
  size_t T = total_tokens (lens);
  // Hidden states of the scale a layer sees (synthetic weights are N(0, 0.2)).
  std::vector<float> x = x_given != nullptr ? *x_given : random_floats (T * H, 71, -1.5f, 1.5f);
  ASSERT_EQ (x.size (), T * H);
  std::vector<float> dy = random_floats (T * H, 72);
  std::vector<float> dx (T * H, NAN);
  fx.g.input = dx.data ();

  SlimDenseLayerTape tape = {};
  slim_dense_layer_forward (&fx.config, &fx.weights, &batch, x.data (), &tape);
  slim_dense_layer_backward (&fx.config, &fx.weights, &tape, dy.data (), &fx.g);

  // The float64 forward is the same function as the float32 one.
  RefLayer ref = fx.to_ref ();
  std::vector<double> xd = to_double (x);
  std::vector<double> yd
      = ref_layer_forward (&fx.config, ref, lens, xd, &tape.rope, tape.positions);
  double y_scale = 0.0, y_err = 0.0;
  for (size_t i = 0; i < T * H; i++)
    {
      y_scale = std::max (y_scale, std::fabs (yd[i]));
      y_err = std::max (y_err, std::fabs (yd[i] - (double)tape.y[i]));
    }
  // float32 forward of one layer vs float64: ~1e-6 relative.
  EXPECT_LE (y_err, 1e-5 * y_scale);

  auto loss = [&] () {
    return dot (ref_layer_forward (&fx.config, ref, lens, xd, &tape.rope, tape.positions), dy);
  };
  // Every entry of the input gradient (every token of every sequence).
  expect_grad_matches_fd ("input", xd, dx, pick_indices (dx, 100000, 73), loss);
  unsigned seed = 80;
  for (auto &kv : fx.grads)
    expect_grad_matches_fd (kv.first, ref.t[kv.first], kv.second,
                            pick_indices (kv.second, 16, seed++), loss);
  slim_dense_layer_tape_clear (&tape);
}

void
check_layer_gradients (const char *name, Variant variant)
{
  SCOPED_TRACE (name);
  ModelPtr model = open_synthetic (name);
  check_model_layer_gradients (model.get (), 1, variant, { 7, 1, 5 }, nullptr);
}

TEST (DenseLayerBackward, GradientsMatchFiniteDifferencesOnSyntheticModels)
{
  for (const char *name : kDenseModels)
    check_layer_gradients (name, Variant::kAsLoaded);
}

TEST (DenseLayerBackward, GradientsWithNormBiasesAndQkNorm)
{
  check_layer_gradients ("tiny-random-qwen2", Variant::kNormBiasesAndQkNorm);
}

TEST (DenseLayerBackward, GradientsWithSlidingWindow)
{
  check_layer_gradients ("tiny-random-mistral", Variant::kSlidingWindow);
}

// Layer 0 of the real stories260K (llama, GQA 8/4 heads, hidden 64,
// intermediate 172) on the embeddings of random token ids, two sequences
// (the second one is the padding mask's other side), a random dL/dy; the
// same float64 central differences and tolerance as the synthetic models.
TEST (DenseLayerBackward, GradientsMatchFiniteDifferencesOnStories260kLayer0)
{
  ModelPtr model = open_model ("models/stories260K");
  ASSERT_NE (model, nullptr);
  GError *error = nullptr;
  LayerPtr embed (slim_model_load_embed (model.get (), &error));
  ASSERT_NE (embed, nullptr) << error->message;
  const std::vector<gint64> lens = { 9, 6 };
  std::mt19937 rng (33);
  std::uniform_int_distribution<gint32> token (
      3, (gint32)slim_model_get_config (model.get ())->vocab_size - 1);
  std::vector<gint32> ids (total_tokens (lens));
  for (gint32 &id : ids)
    id = token (rng);
  TensorPtr hidden (
      slim_model_embed (model.get (), embed.get (), ids.data (), (gint64)ids.size (), &error));
  ASSERT_NE (hidden, nullptr) << error->message;
  const float *h = (const float *)slim_tensor_get_data (hidden.get ());
  std::vector<float> x (h, h + slim_tensor_get_n_elements (hidden.get ()));
  check_model_layer_gradients (model.get (), 0, Variant::kAsLoaded, lens, &x);
}

// Per-token fake quantization of the linears' inputs (int8 on attention,
// int4 on the MLP, symmetric, as W8A8_DYNAMIC / W4A8_DYNAMIC deploy it):
// the tape forward is the model's forward with a linear_input hook doing
// the same (bit for bit), and the gradients are the straight-through ones:
// those of the float64 layer whose linear inputs carry the forward's
// quantization error as frozen constants, against its central differences
// (same tolerance as above).
struct ActHook
{
  SlimQParamsConfig int8, int4;
};

gboolean
act_hook (const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer data, GError **)
{
  const ActHook *h = (const ActHook *)data;
  const SlimQParamsConfig *cfg = strstr (module, ".mlp.") != nullptr ? &h->int4 : &h->int8;
  slim_fake_quantize_rows_dynamic (cfg, x, n_tokens, n_in, x);
  return TRUE;
}

TEST (DenseLayerBackward, ActivationFakeQuantIsStraightThrough)
{
  ModelPtr model = open_synthetic ("tiny-random-qwen2");
  ASSERT_NE (model, nullptr);
  LayerFixture fx;
  fx.config = *slim_model_get_config (model.get ());
  LayerPtr layer = load_layer (model.get (), 1);
  ASSERT_NE (layer, nullptr);
  GError *error = nullptr;
  SlimDenseLayerWeights loaded;
  ASSERT_TRUE (slim_dense_layer_weights_init (&loaded, &fx.config, layer.get (), &error))
      << error->message;
  fx.load (loaded);
  fx.bind ();
  ActHook hook;
  ASSERT_TRUE (slim_qparams_config_init (&hook.int8, SLIM_QDTYPE_INT8, TRUE, 0, &error));
  ASSERT_TRUE (slim_qparams_config_init (&hook.int4, SLIM_QDTYPE_INT4, TRUE, 0, &error));
  for (SlimLinearWeights *lw : { &fx.weights.q, &fx.weights.k, &fx.weights.v, &fx.weights.o })
    lw->act = &hook.int8;
  for (SlimLinearWeights *lw : { &fx.weights.gate, &fx.weights.up, &fx.weights.down })
    lw->act = &hook.int4;

  const std::vector<gint64> lens = { 7, 1, 5 };
  SlimBatch batch = make_batch (lens);
  size_t T = total_tokens (lens), H = (size_t)fx.config.hidden_size;
  std::vector<float> x = random_floats (T * H, 171, -1.5f, 1.5f);
  std::vector<float> dy = random_floats (T * H, 172);
  std::vector<float> dx (T * H, NAN);
  fx.g.input = dx.data ();
  SlimDenseLayerTape tape = {};
  slim_dense_layer_forward (&fx.config, &fx.weights, &batch, x.data (), &tape);
  slim_dense_layer_backward (&fx.config, &fx.weights, &tape, dy.data (), &fx.g);

  TensorPtr hidden (slim_tensor_new_2d ("hidden", SLIM_DTYPE_F32, (gint64)T, (gint64)H));
  memcpy (slim_tensor_get_data_mut (hidden.get ()), x.data (), T * H * sizeof (float));
  SlimForwardHooks hooks = {};
  hooks.linear_input = act_hook;
  hooks.user_data = &hook;
  TensorPtr expect (
      slim_model_forward_layer (model.get (), layer.get (), hidden.get (), &batch, &hooks, &error));
  ASSERT_NE (expect, nullptr) << error->message;
  EXPECT_EQ (memcmp (tape.y, slim_tensor_get_data (expect.get ()), T * H * sizeof (float)), 0);

  // The frozen quantization errors, from the tape.
  size_t Q = (size_t)(fx.config.n_heads * fx.config.head_dim);
  size_t I = (size_t)fx.config.intermediate_size;
  std::map<std::string, std::vector<double> > off;
  auto diff = [] (const float *q, const float *f, size_t n) {
    std::vector<double> d (n);
    for (size_t i = 0; i < n; i++)
      d[i] = (double)q[i] - (double)f[i];
    return d;
  };
  ASSERT_NE (tape.q_in, nullptr);
  off["q"] = diff (tape.q_in, tape.n1, T * H);
  off["k"] = diff (tape.k_in, tape.n1, T * H);
  off["v"] = diff (tape.v_in, tape.n1, T * H);
  off["o"] = diff (tape.o_in, tape.context, T * Q);
  off["gate"] = diff (tape.gate_in, tape.n2, T * H);
  off["up"] = diff (tape.up_in, tape.n2, T * H);
  off["down"] = diff (tape.down_in, tape.act, T * I);
  double moved = 0.0;
  for (auto &kv : off)
    for (double d : kv.second)
      moved = std::max (moved, std::fabs (d));
  EXPECT_GT (moved, 1e-3); // the quantization did change the inputs

  RefLayer ref = fx.to_ref ();
  std::vector<double> xd = to_double (x);
  std::vector<double> yd
      = ref_layer_forward (&fx.config, ref, lens, xd, &tape.rope, tape.positions, &off);
  double y_scale = 0.0, y_err = 0.0;
  for (size_t i = 0; i < T * H; i++)
    {
      y_scale = std::max (y_scale, std::fabs (yd[i]));
      y_err = std::max (y_err, std::fabs (yd[i] - (double)tape.y[i]));
    }
  EXPECT_LE (y_err, 1e-5 * y_scale);
  auto loss = [&] () {
    return dot (ref_layer_forward (&fx.config, ref, lens, xd, &tape.rope, tape.positions, &off),
                dy);
  };
  expect_grad_matches_fd ("input", xd, dx, pick_indices (dx, 100000, 173), loss);
  unsigned seed = 180;
  for (auto &kv : fx.grads)
    expect_grad_matches_fd (kv.first, ref.t[kv.first], kv.second,
                            pick_indices (kv.second, 16, seed++), loss);
  slim_dense_layer_tape_clear (&tape);
}

TEST (DenseLayerBackward, ParameterGradientsAccumulate)
{
  ModelPtr model = open_synthetic ("tiny-random-qwen2");
  ASSERT_NE (model, nullptr);
  LayerFixture fx;
  fx.config = *slim_model_get_config (model.get ());
  LayerPtr layer = load_layer (model.get (), 0);
  ASSERT_NE (layer, nullptr);
  GError *error = nullptr;
  SlimDenseLayerWeights loaded;
  ASSERT_TRUE (slim_dense_layer_weights_init (&loaded, &fx.config, layer.get (), &error));
  fx.load (loaded);
  fx.bind ();
  const std::vector<gint64> lens = { 4, 3 };
  SlimBatch batch = make_batch (lens);
  size_t T = 7, H = (size_t)fx.config.hidden_size;
  std::vector<float> x = random_floats (T * H, 91), dy = random_floats (T * H, 92);
  std::vector<float> dx1 (T * H), dx2 (T * H);
  SlimDenseLayerTape tape = {};
  slim_dense_layer_forward (&fx.config, &fx.weights, &batch, x.data (), &tape);
  fx.g.input = dx1.data ();
  slim_dense_layer_backward (&fx.config, &fx.weights, &tape, dy.data (), &fx.g);
  auto once = fx.grads;
  fx.g.input = dx2.data ();
  slim_dense_layer_backward (&fx.config, &fx.weights, &tape, dy.data (), &fx.g);
  // The input gradient is written (equal both times), the rest doubles.
  EXPECT_EQ (memcmp (dx1.data (), dx2.data (), T * H * sizeof (float)), 0);
  for (auto &kv : fx.grads)
    for (size_t i = 0; i < kv.second.size (); i++)
      ASSERT_FLOAT_EQ (kv.second[i], 2.0f * once[kv.first][i]) << kv.first << " " << i;
  slim_dense_layer_tape_clear (&tape);
}

// ---- mixture-of-experts layers (slim-moe-layer-backward.h) ----------------

const char *const kMoeModels[] = { "tiny-random-mixtral-moe", "tiny-random-qwen2-moe" };

// Router in float64: softmax of logits (T, E) in place, the top_k of each
// token (descending, lower index on ties) and their weights.
void
ref_route (std::vector<double> &p,
           size_t T,
           size_t E,
           size_t K,
           bool normalize,
           std::vector<int> &chosen,
           std::vector<double> &weights)
{
  chosen.assign (T * K, -1);
  weights.assign (T * K, 0.0);
  for (size_t t = 0; t < T; t++)
    {
      double *row = &p[t * E], m = -INFINITY, sum = 0.0, top = 0.0;
      for (size_t e = 0; e < E; e++)
        m = std::max (m, row[e]);
      for (size_t e = 0; e < E; e++)
        sum += (row[e] = std::exp (row[e] - m));
      for (size_t e = 0; e < E; e++)
        row[e] /= sum;
      for (size_t r = 0; r < K; r++)
        {
          int best = -1;
          for (size_t e = 0; e < E; e++)
            {
              bool taken = false;
              for (size_t q = 0; q < r; q++)
                taken = taken || chosen[t * K + q] == (int)e;
              if (!taken && (best < 0 || row[e] > row[best]))
                best = (int)e;
            }
          chosen[t * K + r] = best;
          weights[t * K + r] = row[best];
          top += row[best];
        }
      if (normalize)
        for (size_t r = 0; r < K; r++)
          weights[t * K + r] /= top;
    }
}

// Central differences of loss() in the entries idx of param, as
// expect_grad_matches_fd, except that a loss of NaN marks a perturbation
// that flipped a top-k choice (the function is only piecewise smooth
// there): such entries are skipped and counted.  A gradient that is
// identically zero is allowed (an expert no token chose) when the finite
// differences are zero too.
// The largest |fd - analytic| / scale seen by the function below (reported).
double g_piecewise_max_error = 0.0;

size_t
expect_grad_matches_fd_piecewise (const std::string &what,
                                  std::vector<double> &param,
                                  const std::vector<float> &grad,
                                  const std::vector<size_t> &idx,
                                  const std::function<double ()> &loss)
{
  EXPECT_EQ (param.size (), grad.size ()) << what;
  double scale = max_abs (grad);
  int failures = 0;
  size_t skipped = 0;
  for (size_t i : idx)
    {
      double saved = param[i];
      param[i] = saved + kStep;
      double plus = loss ();
      param[i] = saved - kStep;
      double minus = loss ();
      param[i] = saved;
      if (std::isnan (plus) || std::isnan (minus))
        {
          skipped++;
          continue;
        }
      double fd = (plus - minus) / (2.0 * kStep);
      if (scale > 0.0)
        g_piecewise_max_error
            = std::max (g_piecewise_max_error, std::fabs (fd - (double)grad[i]) / scale);
      // kGradTolerance of the scale (file comment); 1e-9 absolute for an
      // all-zero gradient (float64 differences of an unchanged loss).
      if (std::fabs (fd - (double)grad[i]) > kGradTolerance * scale + 1e-9 && failures++ < 5)
        ADD_FAILURE () << what << "[" << i << "]: analytic " << grad[i] << ", finite difference "
                       << fd << " (scale " << scale << ")";
    }
  EXPECT_EQ (failures, 0) << what;
  return skipped;
}

TEST (MoeRoute, BackwardMatchesFiniteDifferences)
{
  const size_t T = 6, E = 5, K = 2;
  for (bool normalize : { false, true })
    {
      SCOPED_TRACE (normalize ? "norm_topk_prob" : "plain");
      std::vector<float> logits = random_floats (T * E, 101, -2.0f, 2.0f);
      std::vector<float> probs = logits, weights (T * K), dw = random_floats (T * K, 102);
      std::vector<gint32> chosen (T * K);
      slim_decoder_route_topk (probs.data (), T, E, K, normalize, chosen.data (), weights.data ());
      std::vector<float> dz (T * E, NAN);
      slim_moe_route_backward (probs.data (), chosen.data (), weights.data (), dw.data (), T, E, K,
                               normalize, dz.data ());
      std::vector<double> zd = to_double (logits);
      auto loss = [&] () {
        std::vector<double> p = zd, w;
        std::vector<int> c;
        ref_route (p, T, E, K, normalize, c, w);
        for (size_t i = 0; i < T * K; i++)
          if (c[i] != chosen[i])
            return (double)NAN;
        double sum = 0.0;
        for (size_t i = 0; i < T * K; i++)
          sum += w[i] * dw[i];
        return sum;
      };
      EXPECT_FALSE (std::isnan (loss ())) << "the float64 router chose other experts";
      // Logits drawn in [-2, 2] are ~1 apart: no step of 1e-4 flips a choice.
      g_piecewise_max_error = 0.0;
      EXPECT_EQ (
          expect_grad_matches_fd_piecewise ("logits", zd, dz, pick_indices (dz, 1000, 103), loss),
          0u);
      std::printf ("route backward (%s): max |fd - analytic| / scale %.2e\n",
                   normalize ? "norm_topk_prob" : "plain", g_piecewise_max_error);
    }
}

// A near-tie at the top-k boundary: the step of 1e-4 flips the choice,
// which the check detects and skips (the analytic gradient is that of the
// recorded choice; across the flip the function jumps).
TEST (MoeRoute, FlippingStepIsDetectedAndSkipped)
{
  const size_t T = 1, E = 4, K = 2;
  // experts 1 and 2 compete for the second place, 5e-5 apart
  std::vector<float> logits = { 1.0f, 0.3f, 0.29995f, -1.0f };
  std::vector<float> probs = logits, weights (T * K), dw = { 0.7f, -0.4f };
  std::vector<gint32> chosen (T * K);
  slim_decoder_route_topk (probs.data (), T, E, K, TRUE, chosen.data (), weights.data ());
  ASSERT_EQ (chosen[1], 1);
  std::vector<float> dz (T * E);
  slim_moe_route_backward (probs.data (), chosen.data (), weights.data (), dw.data (), T, E, K,
                           TRUE, dz.data ());
  std::vector<double> zd = to_double (logits);
  auto loss = [&] () {
    std::vector<double> p = zd, w;
    std::vector<int> c;
    ref_route (p, T, E, K, true, c, w);
    for (size_t i = 0; i < T * K; i++)
      if (c[i] != chosen[i])
        return (double)NAN;
    return w[0] * dw[0] + w[1] * dw[1];
  };
  size_t skipped = expect_grad_matches_fd_piecewise ("logits", zd, dz, { 0, 1, 2, 3 }, loss);
  EXPECT_EQ (skipped, 2u); // moving expert 1 down or expert 2 up flips them
}

TEST (MoeSigmoidGate, BackwardMatchesFiniteDifferences)
{
  const size_t T = 5, n = 7;
  std::vector<float> logit = random_floats (T, 111, -3.0f, 3.0f), y = random_floats (T * n, 112);
  std::vector<float> dout = random_floats (T * n, 113), dy (T * n), dlogit (T);
  std::vector<float> out (T * n, 0.5f);
  slim_moe_sigmoid_gate_forward (logit.data (), y.data (), T, n, out.data ());
  slim_moe_sigmoid_gate_backward (logit.data (), y.data (), dout.data (), T, n, dy.data (),
                                  dlogit.data ());
  std::vector<double> ld = to_double (logit), yd = to_double (y);
  auto fwd = [&] () {
    std::vector<double> o (T * n, 0.5);
    for (size_t t = 0; t < T; t++)
      for (size_t j = 0; j < n; j++)
        o[t * n + j] += yd[t * n + j] / (1.0 + std::exp (-ld[t]));
    return o;
  };
  std::vector<double> od = fwd ();
  for (size_t i = 0; i < T * n; i++)
    EXPECT_NEAR (out[i], od[i], 1e-6) << i;
  auto loss = [&] () { return dot (fwd (), dout); };
  expect_grad_matches_fd ("logit", ld, dlogit, pick_indices (dlogit, 100, 114), loss);
  expect_grad_matches_fd ("y", yd, dy, pick_indices (dy, 100, 115), loss);
}

// A MoE layer's float32 weights (copies), their float64 twin and
// gradients; linears named "L<i>" by slim-moe-layer-backward.h's index.
struct MoeFixture
{
  SlimModelConfig config;
  std::map<std::string, std::vector<float> > w, grads;
  std::vector<SlimLinearWeights> lw;
  std::vector<SlimLinearGrads> lg;
  SlimMoeLayerWeights weights = {};
  SlimMoeLayerGrads g = {};
  std::vector<float> zero;

  static std::string
  lin (gint64 i)
  {
    return "L" + std::to_string (i);
  }

  void
  load (const SlimMoeLayerWeights &src)
  {
    size_t H = (size_t)config.hidden_size, hd = (size_t)config.head_dim;
    auto put = [&] (const std::string &name, const float *data, size_t n) {
      if (data != nullptr)
        w[name] = std::vector<float> (data, data + n);
    };
    put ("input_norm", src.input_norm, H);
    put ("input_norm_bias", src.input_norm_bias, H);
    put ("post_norm", src.post_norm, H);
    put ("post_norm_bias", src.post_norm_bias, H);
    put ("q_norm", src.q_norm, hd);
    put ("k_norm", src.k_norm, hd);
    for (gint64 i = 0; i < src.n_linears; i++)
      {
        gint64 n_out, n_in;
        slim_moe_layer_linear_shape (&config, i, &n_out, &n_in);
        put (lin (i), src.linears[i].weight, (size_t)(n_out * n_in));
        put (lin (i) + "_bias", src.linears[i].bias, (size_t)n_out);
      }
    gint64 n = src.n_linears;
    lw.assign ((size_t)n, SlimLinearWeights{});
    lg.assign ((size_t)n, SlimLinearGrads{});
    zero.assign (H, 0.0f);
    auto ptr = [&] (const std::string &name) -> const float * {
      auto it = w.find (name);
      return it == w.end () ? nullptr : it->second.data ();
    };
    auto gptr = [&] (const std::string &name) -> float * {
      auto it = w.find (name);
      if (it == w.end ())
        return nullptr;
      grads[name].assign (it->second.size (), 0.0f);
      return grads[name].data ();
    };
    weights.input_norm = ptr ("input_norm");
    weights.input_norm_bias = ptr ("input_norm_bias");
    weights.post_norm = ptr ("post_norm");
    weights.post_norm_bias = ptr ("post_norm_bias");
    weights.q_norm = ptr ("q_norm");
    weights.k_norm = ptr ("k_norm");
    g.input_norm = gptr ("input_norm");
    g.input_norm_bias = gptr ("input_norm_bias");
    g.post_norm = gptr ("post_norm");
    g.post_norm_bias = gptr ("post_norm_bias");
    g.q_norm = gptr ("q_norm");
    g.k_norm = gptr ("k_norm");
    for (gint64 i = 0; i < n; i++)
      {
        lw[i].weight = ptr (lin (i));
        lw[i].bias = ptr (lin (i) + "_bias");
        lg[i].weight = gptr (lin (i));
        lg[i].bias = gptr (lin (i) + "_bias");
      }
    weights.n_linears = n;
    weights.linears = lw.data ();
    weights.zero = zero.data ();
    g.linears = lg.data ();
  }
};

// The MoE layer in float64: the attention half through ref_layer_forward
// with a 1-wide zero MLP (h), then router, experts and shared expert.
// NaN when the float64 router's top-k differs from `expect` (a flip).
double
ref_moe_loss (const SlimModelConfig *config,
              std::map<std::string, std::vector<double> > &t,
              const std::vector<gint64> &lens,
              const std::vector<double> &x,
              const SlimRopeTable *rope,
              const gint64 *positions,
              const gint32 *expect,
              const std::vector<float> &dy,
              std::vector<double> *y_out = nullptr)
{
  size_t T = total_tokens (lens), H = (size_t)config->hidden_size;
  size_t E = (size_t)config->n_experts, K = (size_t)config->n_experts_per_tok;
  size_t I = (size_t)config->moe_intermediate_size;
  size_t S = (size_t)config->shared_expert_intermediate_size;
  SlimModelConfig attn_config = *config;
  attn_config.intermediate_size = 1;
  RefLayer L;
  const char *names[] = { "q", "k", "v", "o" };
  for (int i = 0; i < 4; i++)
    {
      L.t[names[i]] = t["L" + std::to_string (i)];
      L.t[std::string (names[i]) + "_bias"] = t["L" + std::to_string (i) + "_bias"];
    }
  for (const char *n :
       { "input_norm", "input_norm_bias", "post_norm", "post_norm_bias", "q_norm", "k_norm" })
    L.t[n] = t[n];
  L.t["gate"] = L.t["up"] = L.t["down"] = std::vector<double> (H, 0.0);
  std::vector<double> h = ref_layer_forward (&attn_config, L, lens, x, rope, positions);
  double eps = (float)config->rms_norm_eps;
  auto n2 = ref_rmsnorm (h, t["post_norm"], &t["post_norm_bias"], eps, T, H);
  auto W = [&] (gint64 i) -> std::vector<double> & { return t["L" + std::to_string (i)]; };
  auto B = [&] (gint64 i) { return &t["L" + std::to_string (i) + "_bias"]; };
  auto swiglu = [&] (gint64 first, size_t width) {
    auto gate = ref_linear (n2, W (first), B (first), T, H, width);
    auto up = ref_linear (n2, W (first + 1), B (first + 1), T, H, width);
    return ref_linear (ref_silu_mul (gate, up), W (first + 2), B (first + 2), T, width, H);
  };
  std::vector<double> p
      = ref_linear (n2, W (SLIM_MOE_LINEAR_ROUTER), B (SLIM_MOE_LINEAR_ROUTER), T, H, E),
      rw;
  std::vector<int> chosen;
  ref_route (p, T, E, K, config->norm_topk_prob, chosen, rw);
  for (size_t i = 0; i < T * K; i++)
    if (chosen[i] != expect[i])
      return NAN;
  std::vector<double> y = h;
  for (size_t e = 0; e < E; e++)
    {
      auto ye = swiglu (SLIM_MOE_LINEAR_FIRST_EXPERT + 3 * (gint64)e, I);
      for (size_t tok = 0; tok < T; tok++)
        for (size_t r = 0; r < K; r++)
          if (chosen[tok * K + r] == (int)e)
            for (size_t j = 0; j < H; j++)
              y[tok * H + j] += rw[tok * K + r] * ye[tok * H + j];
    }
  if (S > 0)
    {
      gint64 first = SLIM_MOE_LINEAR_FIRST_EXPERT + 3 * (gint64)E;
      auto ys = swiglu (first, S);
      auto logit = ref_linear (n2, W (first + 3), B (first + 3), T, H, 1);
      for (size_t tok = 0; tok < T; tok++)
        for (size_t j = 0; j < H; j++)
          y[tok * H + j] += ys[tok * H + j] / (1.0 + std::exp (-logit[tok]));
    }
  if (y_out != nullptr)
    *y_out = y;
  return dot (y, dy);
}

// The tape forward is slim_model_forward_layer() on a MoE layer, bit for bit.
TEST (MoeLayerBackward, TapeForwardIsTheModelForward)
{
  for (const char *name : kMoeModels)
    for (guint index : { 0u, 1u })
      {
        SCOPED_TRACE (name);
        ModelPtr model = open_synthetic (name);
        ASSERT_NE (model, nullptr);
        const SlimModelConfig *config = slim_model_get_config (model.get ());
        LayerPtr layer = load_layer (model.get (), index);
        ASSERT_NE (layer, nullptr);
        GError *error = nullptr;
        SlimMoeLayerWeights weights;
        ASSERT_TRUE (slim_moe_layer_weights_init (&weights, config, layer.get (), &error))
            << error->message;
        std::vector<gint64> lens = { 11, 1, 6 };
        SlimBatch batch = make_batch (lens);
        size_t T = total_tokens (lens), H = (size_t)config->hidden_size;
        std::vector<float> x = random_floats (T * H, 121);
        TensorPtr hidden (slim_tensor_new_2d ("hidden", SLIM_DTYPE_F32, (gint64)T, (gint64)H));
        memcpy (slim_tensor_get_data_mut (hidden.get ()), x.data (), T * H * sizeof (float));
        TensorPtr expect (slim_model_forward_layer (model.get (), layer.get (), hidden.get (),
                                                    &batch, nullptr, &error));
        ASSERT_NE (expect, nullptr) << error->message;
        SlimMoeLayerTape tape = {};
        slim_moe_layer_forward (config, &weights, &batch, x.data (), &tape);
        EXPECT_EQ (memcmp (tape.y, slim_tensor_get_data (expect.get ()), T * H * sizeof (float)),
                   0);
        slim_moe_layer_tape_clear (&tape);
        slim_moe_layer_weights_clear (&weights);
      }
}

TEST (MoeLayerBackward, DenseLayerIsRefused)
{
  ModelPtr model = open_synthetic ("tiny-random-qwen2");
  ASSERT_NE (model, nullptr);
  LayerPtr layer = load_layer (model.get (), 0);
  ASSERT_NE (layer, nullptr);
  GError *error = nullptr;
  SlimMoeLayerWeights weights;
  EXPECT_FALSE (slim_moe_layer_weights_init (&weights, slim_model_get_config (model.get ()),
                                             layer.get (), &error));
  ASSERT_NE (error, nullptr);
  g_clear_error (&error);
}

// Every linear of the layer (attention, router, each routed expert, the
// shared expert and its gate), the norms and the input against float64
// central differences; tolerance kGradTolerance (file comment).  A step
// that flips a top-k choice is detected (the float64 router's choice
// differs from the tape's) and the entry skipped; at most a few may be.
TEST (MoeLayerBackward, GradientsMatchFiniteDifferencesOnSyntheticModels)
{
  // the two models, then mixtral with qwen3_moe's q_norm / k_norm added
  for (int variant = 0; variant < 3; variant++)
    {
      const char *name = kMoeModels[variant == 1 ? 1 : 0];
      const bool qk_norm = variant == 2;
      SCOPED_TRACE (std::string (name) + (qk_norm ? " + qk_norm" : ""));
      ModelPtr model = open_synthetic (name);
      ASSERT_NE (model, nullptr);
      MoeFixture fx;
      fx.config = *slim_model_get_config (model.get ());
      LayerPtr layer = load_layer (model.get (), 1);
      ASSERT_NE (layer, nullptr);
      GError *error = nullptr;
      SlimMoeLayerWeights loaded;
      if (qk_norm)
        {
          // loaded without (the model has none), then added as qwen3_moe has them
          ASSERT_TRUE (slim_moe_layer_weights_init (&loaded, &fx.config, layer.get (), &error));
          fx.config.qk_norm = TRUE;
          size_t hd = (size_t)fx.config.head_dim;
          fx.w["q_norm"] = random_floats (hd, 136, 0.5f, 1.5f);
          fx.w["k_norm"] = random_floats (hd, 137, 0.5f, 1.5f);
          fx.load (loaded);
          slim_moe_layer_weights_clear (&loaded);
        }
      else
        {
          ASSERT_TRUE (slim_moe_layer_weights_init (&loaded, &fx.config, layer.get (), &error))
              << error->message;
          fx.load (loaded);
          slim_moe_layer_weights_clear (&loaded);
        }

      std::vector<gint64> lens = { 7, 1, 5 };
      SlimBatch batch = make_batch (lens);
      size_t T = total_tokens (lens), H = (size_t)fx.config.hidden_size;
      std::vector<float> x = random_floats (T * H, 131, -1.5f, 1.5f);
      std::vector<float> dy = random_floats (T * H, 132), dx (T * H, NAN);
      fx.g.input = dx.data ();
      SlimMoeLayerTape tape = {};
      slim_moe_layer_forward (&fx.config, &fx.weights, &batch, x.data (), &tape);
      slim_moe_layer_backward (&fx.config, &fx.weights, &tape, dy.data (), &fx.g);

      std::map<std::string, std::vector<double> > t;
      for (auto &kv : fx.w)
        t[kv.first] = to_double (kv.second);
      std::vector<double> xd = to_double (x), yd;
      double base = ref_moe_loss (&fx.config, t, lens, xd, &tape.attn.rope, tape.attn.positions,
                                  tape.chosen, dy, &yd);
      ASSERT_FALSE (std::isnan (base)) << "the float64 router chose other experts";
      double y_scale = 0.0, y_err = 0.0;
      for (size_t i = 0; i < T * H; i++)
        {
          y_scale = std::max (y_scale, std::fabs (yd[i]));
          y_err = std::max (y_err, std::fabs (yd[i] - (double)tape.y[i]));
        }
      // float32 forward of one layer vs float64: ~1e-6 relative.
      EXPECT_LE (y_err, 1e-5 * y_scale);
      // every expert saw a token (else its gradient check proves little)
      for (gint64 e = 0; e < fx.config.n_experts; e++)
        EXPECT_GT (tape.experts[e].n_rows, 0) << "expert " << e;

      auto loss = [&] () {
        return ref_moe_loss (&fx.config, t, lens, xd, &tape.attn.rope, tape.attn.positions,
                             tape.chosen, dy);
      };
      size_t skipped = 0, checked = 0;
      g_piecewise_max_error = 0.0;
      auto idx = pick_indices (dx, 100, 133);
      skipped += expect_grad_matches_fd_piecewise ("input", xd, dx, idx, loss);
      checked += idx.size ();
      unsigned seed = 140;
      for (auto &kv : fx.grads)
        {
          idx = pick_indices (kv.second, 8, seed++);
          skipped += expect_grad_matches_fd_piecewise (kv.first, t[kv.first], kv.second, idx, loss);
          checked += idx.size ();
        }
      std::printf ("%s%s layer 1: %zu entries checked, %zu skipped (top-k flip), max |fd - "
                   "analytic| / scale %.2e\n",
                   name, qk_norm ? " + qk_norm" : "", checked, skipped, g_piecewise_max_error);
      // A flip needs two router probabilities within ~1e-4 of each other.
      EXPECT_LE (skipped * 20, checked) << skipped << " of " << checked << " skipped";
      slim_moe_layer_tape_clear (&tape);
    }
}

// With a linear fake-quantizing its input, the backward is the gradient of
// the straight-through function: here the router and an expert's down
// linear take int8 per-token activations; the gradient must still be
// finite and the forward must differ from the float one (the quantizer
// ran).
TEST (MoeLayerBackward, ActivationFakeQuantRuns)
{
  ModelPtr model = open_synthetic ("tiny-random-qwen2-moe");
  ASSERT_NE (model, nullptr);
  const SlimModelConfig *config = slim_model_get_config (model.get ());
  LayerPtr layer = load_layer (model.get (), 0);
  ASSERT_NE (layer, nullptr);
  GError *error = nullptr;
  SlimMoeLayerWeights weights;
  ASSERT_TRUE (slim_moe_layer_weights_init (&weights, config, layer.get (), &error));
  std::vector<gint64> lens = { 9 };
  SlimBatch batch = make_batch (lens);
  size_t T = 9, H = (size_t)config->hidden_size;
  std::vector<float> x = random_floats (T * H, 151), dy = random_floats (T * H, 152);
  std::vector<float> dx (T * H);
  SlimMoeLayerTape plain = {}, quant = {};
  slim_moe_layer_forward (config, &weights, &batch, x.data (), &plain);
  SlimQParamsConfig act;
  ASSERT_TRUE (slim_qparams_config_init (&act, SLIM_QDTYPE_INT8, TRUE, 0, &error));
  weights.linears[SLIM_MOE_LINEAR_FIRST_EXPERT + 2].act = &act;
  weights.linears[SLIM_MOE_LINEAR_FIRST_EXPERT + 3 * config->n_experts].act = &act;
  slim_moe_layer_forward (config, &weights, &batch, x.data (), &quant);
  EXPECT_NE (memcmp (plain.y, quant.y, T * H * sizeof (float)), 0);
  SlimMoeLayerGrads g = {};
  g.input = dx.data ();
  slim_moe_layer_backward (config, &weights, &quant, dy.data (), &g);
  for (float v : dx)
    ASSERT_TRUE (std::isfinite (v));
  slim_moe_layer_tape_clear (&plain);
  slim_moe_layer_tape_clear (&quant);
  slim_moe_layer_weights_clear (&weights);
}

} // namespace
