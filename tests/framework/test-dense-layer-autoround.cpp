// SPDX-License-Identifier: Apache-2.0
//
// test-dense-layer-autoround.cpp: AutoRound's training loop over a dense
// layer (slim-dense-layer-autoround.h) on layer 0 of stories260K, fed the
// embeddings of TinyStories text: it must lower the layer's output error
// against plain (round-to-nearest minmax) rounding on samples it did not
// train on, start from plain rounding, honour the tuning switches, be
// deterministic for a seed, and refuse bad settings.
#include "slim-test.h"

#include <cmath>
#include <cstring>

#include "slim-dense-layer-autoround.h"
#include "slim-error.h"
#include "slim-layer.h"
#include "slim-model.h"
#include "slim-tokenizer.h"

namespace
{

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
using TokenizerPtr = std::unique_ptr<SlimTokenizer, ObjectDeleter>;
using TensorPtr = std::unique_ptr<SlimTensor, TensorDeleter>;

constexpr gint64 kSampleTokens = 64;
constexpr guint kTrainSamples = 8;
constexpr guint kHeldOutSamples = 8;

// Layer 0 of stories260K with its inputs (embeddings of consecutive
// 64-token windows of the TinyStories excerpt) and float outputs.
struct Stories
{
  ModelPtr model;
  LayerPtr layer;
  SlimModelConfig config;
  SlimDenseLayerWeights weights;
  std::vector<std::vector<float> > x, y; // [sample] (kSampleTokens, hidden)
  std::vector<gint64> lens;

  void
  load ()
  {
    GError *error = nullptr;
    std::string dir = slim_test_shared_path ("models/stories260K");
    model.reset (slim_model_open (dir.c_str (), &error));
    ASSERT_NE (model, nullptr) << error->message;
    config = *slim_model_get_config (model.get ());
    layer.reset (slim_model_load_layer (model.get (), 0, &error));
    ASSERT_NE (layer, nullptr) << error->message;
    ASSERT_TRUE (slim_dense_layer_weights_init (&weights, &config, layer.get (), &error))
        << error->message;

    TokenizerPtr tok (slim_tokenizer_new_from_dir (dir.c_str (), &error));
    ASSERT_NE (tok, nullptr) << error->message;
    char *text = nullptr;
    ASSERT_TRUE (g_file_get_contents (
        slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt").c_str (), &text, nullptr,
        nullptr));
    GArray *ids = slim_tokenizer_encode (tok.get (), text, TRUE, &error);
    g_free (text);
    ASSERT_NE (ids, nullptr) << error->message;
    const guint n = kTrainSamples + kHeldOutSamples;
    ASSERT_GE (ids->len, n * kSampleTokens);
    LayerPtr embed (slim_model_load_embed (model.get (), &error));
    ASSERT_NE (embed, nullptr) << error->message;
    size_t H = (size_t)config.hidden_size;
    for (guint s = 0; s < n; s++)
      {
        TensorPtr h (slim_model_embed (model.get (), embed.get (),
                                       &g_array_index (ids, gint32, s * kSampleTokens),
                                       kSampleTokens, &error));
        ASSERT_NE (h, nullptr) << error->message;
        const float *p = (const float *)slim_tensor_get_data (h.get ());
        x.emplace_back (p, p + kSampleTokens * H);
        lens.push_back (kSampleTokens);
        y.push_back (forward (weights, s));
      }
    g_array_unref (ids);
  }

  std::vector<float>
  forward (const SlimDenseLayerWeights &w, guint s) const
  {
    SlimBatch batch = { 1, &lens[s] };
    SlimDenseLayerTape tape = {};
    slim_dense_layer_forward (&config, &w, &batch, x[s].data (), &tape);
    std::vector<float> out (tape.y, tape.y + x[s].size ());
    slim_dense_layer_tape_clear (&tape);
    return out;
  }

  // ||y_q - y_float|| / ||y_float|| over samples [first, first + n).
  double
  rel_error (const SlimDenseLayerWeights &w, guint first, guint n) const
  {
    double diff = 0.0, ref = 0.0;
    for (guint s = first; s < first + n; s++)
      {
        std::vector<float> yq = forward (w, s);
        for (size_t i = 0; i < yq.size (); i++)
          {
            double d = (double)yq[i] - (double)y[s][i];
            diff += d * d;
            ref += (double)y[s][i] * (double)y[s][i];
          }
      }
    return std::sqrt (diff / ref);
  }

  std::vector<const float *>
  ptrs (const std::vector<std::vector<float> > &v) const
  {
    std::vector<const float *> p;
    for (const auto &e : v)
      p.push_back (e.data ());
    return p;
  }

  // Trains on the first kTrainSamples samples.
  bool
  train (const SlimDenseAutoRoundOptions &opts, SlimDenseAutoRoundResult *result, GError **error)
  {
    std::vector<const float *> xs = ptrs (x), ys = ptrs (y);
    return slim_dense_layer_autoround (&config, &weights, kTrainSamples, xs.data (), lens.data (),
                                       ys.data (), &opts, nullptr, nullptr, result, error);
  }
};

SlimLinearWeights *
member (SlimDenseLayerWeights *w, int l)
{
  SlimLinearWeights *m[] = { &w->q, &w->k, &w->v, &w->o, &w->gate, &w->up, &w->down };
  return m[l];
}

SlimDenseAutoRoundOptions
w4_options (gint64 group_size, gint64 iters)
{
  SlimDenseAutoRoundOptions o = {};
  o.iters = iters;
  o.enable_minmax_tuning = TRUE;
  o.enable_round_tuning = TRUE;
  o.seed = 42;
  for (auto &c : o.linears)
    c = { 4, group_size, SLIM_DTYPE_F32 };
  // down_proj's input (172) has no groups of 32: it stays float, as in
  // the shipped W4A16 practice (exclude "*down_proj*").
  o.linears[SLIM_DENSE_LINEAR_DOWN].bits = 0;
  return o;
}

// The layer's weights with every linear plain-rounded (V = 0, multipliers
// 1: symmetric minmax, round half to even); storage in *keep.
SlimDenseLayerWeights
plain_rounded (const Stories &st,
               const SlimDenseAutoRoundOptions &opts,
               std::vector<std::vector<float> > *keep)
{
  SlimDenseLayerWeights w = st.weights;
  keep->assign (SLIM_DENSE_N_LINEARS, {});
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    {
      if (opts.linears[l].bits == 0)
        continue;
      SlimLinearWeights *m = member (&w, l);
      gint64 n_out = 0, n_in = 0;
      switch (l)
        {
        case SLIM_DENSE_LINEAR_Q:
          n_out = st.config.n_heads * st.config.head_dim, n_in = st.config.hidden_size;
          break;
        case SLIM_DENSE_LINEAR_K:
        case SLIM_DENSE_LINEAR_V:
          n_out = st.config.n_kv_heads * st.config.head_dim, n_in = st.config.hidden_size;
          break;
        case SLIM_DENSE_LINEAR_O:
          n_out = st.config.hidden_size, n_in = st.config.n_heads * st.config.head_dim;
          break;
        case SLIM_DENSE_LINEAR_GATE:
        case SLIM_DENSE_LINEAR_UP:
          n_out = st.config.intermediate_size, n_in = st.config.hidden_size;
          break;
        default:
          n_out = st.config.hidden_size, n_in = st.config.intermediate_size;
        }
      gint64 G = n_in / opts.linears[l].group_size;
      std::vector<float> v (n_out * n_in, 0.0f), ones (n_out * G, 1.0f), scale (n_out * G);
      (*keep)[l].resize (n_out * n_in);
      GError *error = nullptr;
      EXPECT_TRUE (slim_autoround_qdq (&opts.linears[l], m->weight, n_out, n_in, v.data (),
                                       ones.data (), ones.data (), scale.data (),
                                       (*keep)[l].data (), nullptr, &error));
      m->weight = (*keep)[l].data ();
    }
  return w;
}

SlimDenseLayerWeights
tuned (const Stories &st, const SlimDenseAutoRoundResult &r)
{
  SlimDenseLayerWeights w = st.weights;
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    if (r.linears[l].quantized)
      member (&w, l)->weight = r.linears[l].w_hat;
  return w;
}

// W4 per group of 32 (the W4A16 scheme) and per channel, 200
// iterations: the held-out output error of the layer must drop below
// plain rounding's.  The margin asked (10% lower) is well under what was
// measured (see the printed figures; the commit note has them) and far
// above run-to-run noise (the run is deterministic).
TEST (DenseLayerAutoRound, LowersHeldOutErrorBelowPlainRoundingOnStories260k)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  for (gint64 group_size : { (gint64)32, (gint64)0 })
    {
      SlimDenseAutoRoundOptions opts = w4_options (group_size, 200);
      if (group_size == 0) // per channel: group = the input dimension, all seven
        for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
          opts.linears[l].bits = 4,
          opts.linears[l].group_size
              = l == SLIM_DENSE_LINEAR_O
                    ? st.config.n_heads * st.config.head_dim
                    : (l == SLIM_DENSE_LINEAR_DOWN ? st.config.intermediate_size
                                                   : st.config.hidden_size);
      SCOPED_TRACE (group_size == 0 ? "per channel" : "per group 32");
      std::vector<std::vector<float> > keep;
      SlimDenseLayerWeights rtn = plain_rounded (st, opts, &keep);
      SlimDenseAutoRoundResult result = {};
      GError *error = nullptr;
      ASSERT_TRUE (st.train (opts, &result, &error)) << error->message;
      SlimDenseLayerWeights w = tuned (st, result);
      double rtn_train = st.rel_error (rtn, 0, kTrainSamples);
      double ar_train = st.rel_error (w, 0, kTrainSamples);
      double rtn_held = st.rel_error (rtn, kTrainSamples, kHeldOutSamples);
      double ar_held = st.rel_error (w, kTrainSamples, kHeldOutSamples);
      printf ("[ figures ] %s: layer-0 relative output error, train %.5f -> %.5f, held-out "
              "%.5f -> %.5f; loss %.4f -> best %.4f at iteration %" G_GINT64_FORMAT "\n",
              group_size == 0 ? "W4 per channel" : "W4 per group 32", rtn_train, ar_train, rtn_held,
              ar_held, result.first_loss, result.best_loss, result.best_iter);
      EXPECT_LT (ar_held, 0.9 * rtn_held);
      EXPECT_LT (ar_train, 0.9 * rtn_train);
      EXPECT_LT (result.best_loss, result.first_loss);
      EXPECT_GT (result.best_iter, 0);
      slim_dense_autoround_result_clear (&result);
    }
}

// W4A8 dynamic: int4 per group 32 weights (down_proj float) with every
// linear's input fake-quantized per token to int8 in training and in the
// measure; the targets stay the float layer's.  Training must lower the
// held-out error below plain rounding's (with the same activation
// quantization) by the margin of the W4A16 case.
TEST (DenseLayerAutoRound, W4A8DynamicLowersHeldOutError)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  SlimQParamsConfig int8;
  GError *error = nullptr;
  ASSERT_TRUE (slim_qparams_config_init (&int8, SLIM_QDTYPE_INT8, TRUE, 0, &error));
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    member (&st.weights, l)->act = &int8;
  SlimDenseAutoRoundOptions opts = w4_options (32, 200);
  std::vector<std::vector<float> > keep;
  SlimDenseLayerWeights rtn = plain_rounded (st, opts, &keep);
  SlimDenseAutoRoundResult result = {};
  ASSERT_TRUE (st.train (opts, &result, &error)) << error->message;
  SlimDenseLayerWeights w = tuned (st, result);
  ASSERT_EQ (w.q.act, &int8);
  double rtn_held = st.rel_error (rtn, kTrainSamples, kHeldOutSamples);
  double ar_held = st.rel_error (w, kTrainSamples, kHeldOutSamples);
  printf ("[ figures ] W4A8 dynamic (int4 per group 32, int8 per-token): layer-0 held-out "
          "relative output error %.5f -> %.5f\n",
          rtn_held, ar_held);
  EXPECT_LT (ar_held, 0.9 * rtn_held);
  slim_dense_autoround_result_clear (&result);
}

// Iteration 0 is plain rounding: with one iteration, the kept parameters
// are the initial ones (V = 0, multipliers 1), so Ŵ is the plain rounding
// and the reported loss is its loss.
TEST (DenseLayerAutoRound, OneIterationKeepsPlainRounding)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  SlimDenseAutoRoundOptions opts = w4_options (32, 1);
  std::vector<std::vector<float> > keep;
  plain_rounded (st, opts, &keep);
  SlimDenseAutoRoundResult result = {};
  GError *error = nullptr;
  ASSERT_TRUE (st.train (opts, &result, &error)) << error->message;
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    {
      const SlimDenseAutoRoundLinear &lin = result.linears[l];
      ASSERT_EQ (lin.quantized, l != SLIM_DENSE_LINEAR_DOWN);
      if (!lin.quantized)
        continue;
      EXPECT_EQ (memcmp (lin.w_hat, keep[l].data (), keep[l].size () * sizeof (float)), 0) << l;
      for (gint64 i = 0; i < lin.n_out * lin.n_in; i++)
        {
          ASSERT_EQ (lin.v[i], 0.0f);
          // The codes are the dequantized weight over its group's scale.
          ASSERT_EQ ((float)lin.q[i]
                         * lin.scale[(i / lin.n_in) * lin.n_groups
                                     + (i % lin.n_in) / (lin.n_in / lin.n_groups)],
                     lin.w_hat[i]);
        }
    }
  EXPECT_EQ (result.best_iter, 0);
  EXPECT_EQ (result.best_loss, result.first_loss);
  EXPECT_GT (result.first_loss, 0.0f);
  slim_dense_autoround_result_clear (&result);
}

// trainer.py sums |y - ref| over every element of the picked samples and
// divides by their element count (num_elm): samples of different lengths
// weigh by their tokens, not equally.  Samples of 64 and 16 tokens (the
// second cut short), one iteration (plain rounding): the reported loss is
// the pooled mean x1000, not the mean of the two samples' means.
TEST (DenseLayerAutoRound, LossPoolsSamplesByTokenCount)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  SlimDenseAutoRoundOptions opts = w4_options (32, 1);
  std::vector<std::vector<float> > keep;
  SlimDenseLayerWeights plain = plain_rounded (st, opts, &keep);
  std::vector<gint64> lens = { kSampleTokens, 16 };
  std::vector<const float *> xs = { st.x[0].data (), st.x[1].data () };
  std::vector<const float *> ys = { st.y[0].data (), st.y[1].data () };
  const gint64 H = st.config.hidden_size;
  double sum[2] = { 0.0, 0.0 };
  for (int s = 0; s < 2; s++)
    {
      // a causal layer: the first 16 outputs of a 64-token window are
      // those of its first 16 tokens
      std::vector<float> yq = st.forward (plain, s);
      for (gint64 i = 0; i < lens[s] * H; i++)
        sum[s] += std::fabs ((double)yq[i] - (double)st.y[s][i]);
    }
  double pooled = 1000.0 * (sum[0] + sum[1]) / (double)((lens[0] + lens[1]) * H);
  double mean_of_means
      = 1000.0 * 0.5 * (sum[0] / (double)(lens[0] * H) + sum[1] / (double)(lens[1] * H));
  // The two readings must be told apart by the tolerance below.
  ASSERT_GT (std::fabs (pooled - mean_of_means), 1e-3 * pooled);
  SlimDenseAutoRoundResult result = {};
  GError *error = nullptr;
  ASSERT_TRUE (slim_dense_layer_autoround (&st.config, &st.weights, 2, xs.data (), lens.data (),
                                           ys.data (), &opts, nullptr, nullptr, &result, &error))
      << error->message;
  // float32 per-sample loss and share vs a float64 sum: 1e-5 relative
  EXPECT_NEAR (result.first_loss, pooled, 1e-5 * pooled);
  slim_dense_autoround_result_clear (&result);
}

// Asymmetric weights: quant_tensor_asym adds V unclamped, so the loop does
// not bound it (symmetric V stays within ±0.5, the other tests).  40
// iterations (lr 5 / 40 = 0.125 at the start) on stories260K layer 0: a
// kept V leaves ±0.5, none goes past what the steps can add up to.
TEST (DenseLayerAutoRound, AsymmetricOffsetsAreNotBounded)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  const gint64 iters = 40;
  SlimDenseAutoRoundOptions opts = w4_options (32, iters);
  for (auto &c : opts.linears)
    c.asymmetric = TRUE;
  SlimDenseAutoRoundResult result = {};
  GError *error = nullptr;
  ASSERT_TRUE (st.train (opts, &result, &error)) << error->message;
  double reach = 0.0; // Σ lr_t: the farthest a sign step sequence goes
  for (gint64 t = 0; t < iters; t++)
    reach += slim_autoround_lr (t, iters);
  bool beyond_half = false;
  for (const auto &lin : result.linears)
    for (gint64 i = 0; lin.quantized && i < lin.n_out * lin.n_in; i++)
      {
        ASSERT_LE (std::fabs (lin.v[i]), reach + 1e-5);
        beyond_half |= std::fabs (lin.v[i]) > 0.5f;
      }
  EXPECT_TRUE (beyond_half);
  EXPECT_GT (result.best_iter, 4);
  slim_dense_autoround_result_clear (&result);
}

// enable_round_tuning false leaves V at 0, enable_minmax_tuning false the
// multipliers at 1; the other parameter still moves.
TEST (DenseLayerAutoRound, TuningSwitchesFreezeTheirParameters)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  for (int which = 0; which < 2; which++)
    {
      SlimDenseAutoRoundOptions opts = w4_options (32, 30);
      (which == 0 ? opts.enable_round_tuning : opts.enable_minmax_tuning) = FALSE;
      SlimDenseAutoRoundResult result = {};
      GError *error = nullptr;
      ASSERT_TRUE (st.train (opts, &result, &error)) << error->message;
      bool v_moved = false, m_moved = false;
      for (const auto &lin : result.linears)
        {
          if (!lin.quantized)
            continue;
          for (gint64 i = 0; i < lin.n_out * lin.n_in; i++)
            v_moved |= lin.v[i] != 0.0f;
          for (gint64 i = 0; i < lin.n_out * lin.n_groups; i++)
            m_moved |= lin.min_scale[i] != 1.0f || lin.max_scale[i] != 1.0f;
        }
      EXPECT_EQ (v_moved, which != 0) << which;
      EXPECT_EQ (m_moved, which != 1) << which;
      EXPECT_GT (result.best_iter, 0) << which;
      slim_dense_autoround_result_clear (&result);
    }
}

// A linear left float (bits 0) is not touched; the others are trained.
TEST (DenseLayerAutoRound, FloatLinearsStayFloat)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  SlimDenseAutoRoundOptions opts = w4_options (32, 10);
  opts.linears[SLIM_DENSE_LINEAR_K].bits = 0;
  SlimDenseAutoRoundResult result = {};
  GError *error = nullptr;
  ASSERT_TRUE (st.train (opts, &result, &error)) << error->message;
  EXPECT_FALSE (result.linears[SLIM_DENSE_LINEAR_K].quantized);
  EXPECT_EQ (result.linears[SLIM_DENSE_LINEAR_K].w_hat, nullptr);
  EXPECT_EQ (result.linears[SLIM_DENSE_LINEAR_K].v, nullptr);
  EXPECT_TRUE (result.linears[SLIM_DENSE_LINEAR_UP].quantized);
  EXPECT_NE (result.linears[SLIM_DENSE_LINEAR_UP].w_hat, nullptr);
  slim_dense_autoround_result_clear (&result);
}

// Same seed, same bytes; another seed picks other samples each iteration
// (16 samples so that a pick of 8 is a choice).
TEST (DenseLayerAutoRound, DeterministicForASeed)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  auto run = [&] (guint32 seed, SlimDenseAutoRoundResult *r) {
    SlimDenseAutoRoundOptions opts = w4_options (32, 60);
    opts.seed = seed;
    std::vector<const float *> xs = st.ptrs (st.x), ys = st.ptrs (st.y);
    GError *error = nullptr;
    ASSERT_TRUE (slim_dense_layer_autoround (&st.config, &st.weights, (guint)xs.size (), xs.data (),
                                             st.lens.data (), ys.data (), &opts, nullptr, nullptr,
                                             r, &error))
        << error->message;
  };
  SlimDenseAutoRoundResult a = {}, b = {}, c = {};
  run (7, &a);
  run (7, &b);
  run (8, &c);
  bool differs = false;
  for (int l = 0; l < SLIM_DENSE_N_LINEARS; l++)
    {
      if (!a.linears[l].quantized)
        continue;
      size_t n = a.linears[l].n_out * a.linears[l].n_in;
      EXPECT_EQ (memcmp (a.linears[l].w_hat, b.linears[l].w_hat, n * sizeof (float)), 0) << l;
      EXPECT_EQ (memcmp (a.linears[l].v, b.linears[l].v, n * sizeof (float)), 0) << l;
      differs |= memcmp (a.linears[l].v, c.linears[l].v, n * sizeof (float)) != 0;
    }
  EXPECT_EQ (a.best_loss, b.best_loss);
  EXPECT_GT (a.best_iter, 0); // else both kept plain rounding and agree trivially
  EXPECT_GT (c.best_iter, 0);
  EXPECT_TRUE (differs);
  slim_dense_autoround_result_clear (&a);
  slim_dense_autoround_result_clear (&b);
  slim_dense_autoround_result_clear (&c);
}

// The other settings on a layer with q/k/v biases (tiny-random-qwen2,
// layer 1, inputs uniform in [-1.5, 1.5]): int8 per group of 32 on all
// seven linears (V within [-1, 1]), bfloat16 scales.  Training must lower
// the output error below plain rounding's on its samples.  int8's plain
// rounding is already close (measured 0.01566 -> 0.01493, 4.6% lower), so
// the margin asked is 2%: a training that does not help keeps iteration 0
// (equal errors) and one that hurts is above.
TEST (DenseLayerAutoRound, Int8WithBiasesOnQwen2)
{
  Stories st; // the fixture's helpers, on another model
  GError *error = nullptr;
  std::string dir = slim_test_shared_path ("models/synthetic/tiny-random-qwen2");
  st.model.reset (slim_model_open (dir.c_str (), &error));
  ASSERT_NE (st.model, nullptr) << error->message;
  st.config = *slim_model_get_config (st.model.get ());
  st.layer.reset (slim_model_load_layer (st.model.get (), 1, &error));
  ASSERT_NE (st.layer, nullptr) << error->message;
  ASSERT_TRUE (slim_dense_layer_weights_init (&st.weights, &st.config, st.layer.get (), &error))
      << error->message;
  ASSERT_NE (st.weights.q.bias, nullptr);
  size_t H = (size_t)st.config.hidden_size;
  guint32 state = 12345;
  for (guint s = 0; s < kTrainSamples; s++)
    {
      std::vector<float> x (16 * H);
      for (float &v : x)
        {
          state = state * 1664525u + 1013904223u;
          v = ((float)(state >> 8) / 16777216.0f * 2.0f - 1.0f) * 1.5f;
        }
      st.x.push_back (x);
      st.lens.push_back (16);
      st.y.push_back (st.forward (st.weights, s));
    }
  SlimDenseAutoRoundOptions opts = w4_options (32, 100);
  for (auto &c : opts.linears)
    c = { 8, 32, SLIM_DTYPE_BF16 };
  std::vector<std::vector<float> > keep;
  SlimDenseLayerWeights rtn = plain_rounded (st, opts, &keep);
  SlimDenseAutoRoundResult result = {};
  ASSERT_TRUE (st.train (opts, &result, &error)) << error->message;
  double rtn_err = st.rel_error (rtn, 0, kTrainSamples);
  double ar_err = st.rel_error (tuned (st, result), 0, kTrainSamples);
  printf ("[ figures ] qwen2 W8 per group 32, bf16 scales: relative output error %.6f -> %.6f\n",
          rtn_err, ar_err);
  EXPECT_LT (ar_err, 0.98 * rtn_err);
  bool beyond_half = false; // int8's V reaches past 4-bit's bound of 0.5
  for (const auto &lin : result.linears)
    for (gint64 i = 0; i < lin.n_out * lin.n_in; i++)
      {
        ASSERT_LE (std::fabs (lin.v[i]), 1.0f);
        beyond_half |= std::fabs (lin.v[i]) > 0.5f;
      }
  EXPECT_TRUE (beyond_half);
  slim_dense_autoround_result_clear (&result);
}

TEST (DenseLayerAutoRound, BadSettingsAreRefused)
{
  Stories st;
  ASSERT_NO_FATAL_FAILURE (st.load ());
  struct Case
  {
    const char *what;
    SlimDenseAutoRoundOptions opts;
    const char *fragment;
  };
  SlimDenseAutoRoundOptions zero_iters = w4_options (32, 0);
  SlimDenseAutoRoundOptions bad_group = w4_options (32, 5);
  bad_group.linears[SLIM_DENSE_LINEAR_DOWN] = { 4, 48, SLIM_DTYPE_F32 }; // 172 % 48 != 0
  SlimDenseAutoRoundOptions none = w4_options (32, 5);
  for (auto &c : none.linears)
    c.bits = 0;
  SlimDenseAutoRoundOptions bits3 = w4_options (32, 5);
  bits3.linears[SLIM_DENSE_LINEAR_Q].bits = 3;
  const Case cases[] = {
    { "iters 0", zero_iters, "iters must be at least 1" },
    { "group_size", bad_group,
      "mlp.down_proj: autoround: group_size 48 does not divide the "
      "input dimension 172" },
    { "nothing quantized", none, "no linear of the layer is quantized" },
    { "bits 3", bits3, "self_attn.q_proj: autoround: bits 3 is not supported (valid: 4, 8)" },
  };
  for (const Case &c : cases)
    {
      SlimDenseAutoRoundResult result = {};
      GError *error = nullptr;
      EXPECT_FALSE (st.train (c.opts, &result, &error)) << c.what;
      ASSERT_NE (error, nullptr) << c.what;
      EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE))
          << c.what;
      EXPECT_NE (std::string (error->message).find (c.fragment), std::string::npos)
          << c.what << ": " << error->message;
      g_clear_error (&error);
      EXPECT_EQ (result.linears[0].v, nullptr) << c.what;
    }
  // No sample.
  SlimDenseAutoRoundOptions opts = w4_options (32, 5);
  SlimDenseAutoRoundResult result = {};
  GError *error = nullptr;
  EXPECT_FALSE (slim_dense_layer_autoround (&st.config, &st.weights, 0, nullptr, nullptr, nullptr,
                                            &opts, nullptr, nullptr, &result, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("no calibration sample"), std::string::npos);
  g_clear_error (&error);
}

} // namespace
