// SPDX-License-Identifier: Apache-2.0
//
// test-adapt-rotation.cpp: adapt_rotation (modelslim-v1-spec.md 2.16) and
// the spec.prior stages it runs in:
//
// - numerics (slim-adapt-rotation.h): the sgemm Newton-Schulz step against
//   its plain-loop twin (3 iterations, and converged), the converged factor
//   orthogonal and a polar factor (X^T C symmetric); the per-row q/dq equal
//   to linear_quant's dynamic symmetric rows; msModelSlim's linspace row
//   sampling; the learned H R orthogonal (R^T R = I) and lowering the q/dq
//   error of activations with outlier channels below that of H alone;
// - the dense SlimRotation (slim_rotation_new_dense) against its _ref twin;
// - the run store (slim-run-store.h);
// - end to end with `slimflow quant` on stories260K: prior stage 1 + stage 2
//   alone keeps the float logits within 1e-4 through the saved folder, with
//   weights that differ from plain quarot's (the learned matrix is used);
//   stage 2 without stage 1 exits 2 naming spec.prior; a layer_type that
//   matches nothing exits 2; stage keys mixed up are refused; the W4A4 and
//   W8A8 examples run and are labelled; a data-free prior stage changes no
//   byte of the main run (the model stays untouched); slimflow ablate runs a prior stage
//   to the bytes slimflow quant writes; a run killed after its prior stage
//   resumes to the uninterrupted bytes.
//
// Tolerances: logits 1e-4 absolute (the bound; float32 rounding of
// the rotated products measures 1e-5 to 3e-5, as for quarot).  The
// Newton-Schulz twins: 3 iterations agree to 1e-5 (sgemm's summation order
// against double accumulation, entries of magnitude <= 1); converged they
// agree to 1e-4 (the iteration is contractive near the polar factor, so
// rounding does not grow).  Orthogonality 1e-4: each of the 20 steps
// multiplies by an orthogonal factor accurate to ~1e-6.
#include "quant-cli-util.hpp"
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-quant-model.h"
#include "slim-safetensors.h"
}
#include <json-glib/json-glib.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <map>
#include <random>

namespace
{

std::vector<float>
random_matrix (gint64 rows, gint64 cols, unsigned seed, float scale = 1.0f)
{
  std::mt19937 rng (seed);
  std::normal_distribution<float> n (0.0f, scale);
  std::vector<float> m ((size_t)(rows * cols));
  for (float &v : m)
    v = n (rng);
  return m;
}

double
max_abs_diff (const std::vector<float> &a, const std::vector<float> &b)
{
  EXPECT_EQ (a.size (), b.size ());
  double worst = a.size () == b.size () ? 0.0 : INFINITY;
  for (size_t i = 0; i < a.size () && i < b.size (); i++)
    worst = std::max (worst, (double)std::fabs (a[i] - b[i]));
  return worst;
}

TEST (AdaptRotationMath, NewtonSchulzMatchesItsReference)
{
  const gint64 d = 24;
  // well conditioned: I + noise
  std::vector<float> c = random_matrix (d, d, 7, 0.2f);
  for (gint64 i = 0; i < d; i++)
    c[(size_t)(i * d + i)] += 1.0f;
  std::vector<float> fast ((size_t)(d * d)), ref ((size_t)(d * d));
  slim_newton_schulz_polar (c.data (), d, 3, fast.data ());
  slim_newton_schulz_polar_ref (c.data (), d, 3, ref.data ());
  EXPECT_LT (max_abs_diff (fast, ref), 1e-5);

  slim_newton_schulz_polar (c.data (), d, SLIM_ADAPT_ROTATION_NS_ITERS, fast.data ());
  slim_newton_schulz_polar_ref (c.data (), d, SLIM_ADAPT_ROTATION_NS_ITERS, ref.data ());
  EXPECT_LT (max_abs_diff (fast, ref), 1e-4);
  EXPECT_LT (slim_orthogonality_error (fast.data (), d), 1e-4);
  // a polar factor U of C = U P: U^T C = P is symmetric (and != C^T C's
  // scaling of the identity, C being no multiple of an orthogonal matrix)
  double asym = 0.0;
  for (gint64 i = 0; i < d; i++)
    for (gint64 j = 0; j < d; j++)
      {
        double pij = 0.0, pji = 0.0;
        for (gint64 k = 0; k < d; k++)
          {
            pij += (double)fast[(size_t)(k * d + i)] * c[(size_t)(k * d + j)];
            pji += (double)fast[(size_t)(k * d + j)] * c[(size_t)(k * d + i)];
          }
        asym = std::max (asym, std::fabs (pij - pji));
      }
  EXPECT_LT (asym, 1e-4);
}

TEST (AdaptRotationMath, QdqIsLinearQuantsDynamicSymmetricRows)
{
  const gint64 n = 9, d = 40;
  std::vector<float> x = random_matrix (n, d, 11, 3.0f);
  for (guint bits : { 4u, 8u })
    {
      SlimQParamsConfig cfg = { bits, TRUE, 0 };
      std::vector<float> a ((size_t)(n * d)), b ((size_t)(n * d));
      slim_adapt_rotation_qdq_rows (bits, x.data (), n, d, a.data ());
      slim_fake_quantize_rows_dynamic (&cfg, x.data (), n, d, b.data ());
      // the scales here are far above both floors (1e-5 and FLT_EPSILON)
      EXPECT_EQ (max_abs_diff (a, b), 0.0) << bits;
    }
  // an all-zero row keeps the 1e-5 floor and dequantizes to zeros
  std::vector<float> z ((size_t)d, 0.0f), out ((size_t)d, 1.0f);
  slim_adapt_rotation_qdq_rows (4, z.data (), 1, d, out.data ());
  EXPECT_EQ (max_abs_diff (z, out), 0.0);
}

TEST (AdaptRotationMath, SamplingIsTorchLinspaceTruncated)
{
  // torch.linspace(0, 9, 4).long() = [0, 3, 6, 9];
  // torch.linspace(0, 9, 3).long() = [0, 4, 9] (4.5 truncated)
  gint64 a[4], b[3];
  slim_adapt_rotation_sample_rows (10, 4, a);
  slim_adapt_rotation_sample_rows (10, 3, b);
  EXPECT_EQ (std::vector<gint64> (a, a + 4), (std::vector<gint64>{ 0, 3, 6, 9 }));
  EXPECT_EQ (std::vector<gint64> (b, b + 3), (std::vector<gint64>{ 0, 4, 9 }));
}

// q/dq error ||X - qdq(X)||_F of x (n, d) rotated by r (d, d).
double
qdq_error (const std::vector<float> &x, gint64 n, gint64 d, const std::vector<float> &r, guint bits)
{
  std::vector<float> p ((size_t)(n * d)), q ((size_t)(n * d));
  slim_linalg_sgemm (FALSE, FALSE, n, d, d, 1.0f, x.data (), d, r.data (), d, 0.0f, p.data (), d);
  slim_adapt_rotation_qdq_rows (bits, p.data (), n, d, q.data ());
  double s = 0.0;
  for (size_t i = 0; i < p.size (); i++)
    s += ((double)p[i] - q[i]) * ((double)p[i] - q[i]);
  return std::sqrt (s);
}

TEST (AdaptRotationMath, LearnedRotationIsOrthogonalAndLowersTheError)
{
  const gint64 d = 32, n = 256;
  // activations with two outlier channels, as LLM residual streams have
  std::vector<float> x = random_matrix (n, d, 5);
  for (gint64 r = 0; r < n; r++)
    {
      x[(size_t)(r * d + 3)] *= 20.0f;
      x[(size_t)(r * d + 17)] *= 8.0f;
    }
  GError *error = nullptr;
  SlimRotation *rot = slim_rotation_new_hadamard (d, SLIM_ROTATION_SEED, &error);
  ASSERT_NE (rot, nullptr) << error->message;
  std::vector<float> h ((size_t)(d * d));
  slim_rotation_to_dense (rot, h.data ());
  slim_rotation_free (rot);
  for (guint bits : { 4u, 8u })
    {
      SlimAdaptRotationConfig cfg;
      slim_adapt_rotation_config_init (&cfg, bits, 20);
      std::vector<float> hr ((size_t)(d * d)), again ((size_t)(d * d));
      guint steps = 0;
      double loss = 0.0;
      slim_adapt_rotation_optimize (&cfg, x.data (), n, d, h.data (), hr.data (), &steps, &loss);
      EXPECT_GE (steps, 1u);
      EXPECT_LE (steps, 20u);
      EXPECT_TRUE (std::isfinite (loss));
      EXPECT_LT (slim_orthogonality_error (hr.data (), d), 1e-4) << bits;
      EXPECT_GT (max_abs_diff (hr, h), 1e-3) << "the rotation did not move";
      double eh = qdq_error (x, n, d, h, bits), ehr = qdq_error (x, n, d, hr, bits);
      RecordProperty ("qdq_error_int" + std::to_string (bits) + "_hadamard", std::to_string (eh));
      RecordProperty ("qdq_error_int" + std::to_string (bits) + "_adapted", std::to_string (ehr));
      EXPECT_LT (ehr, eh) << bits;
      // deterministic: the same bytes twice
      slim_adapt_rotation_optimize (&cfg, x.data (), n, d, h.data (), again.data (), nullptr,
                                    nullptr);
      EXPECT_EQ (memcmp (hr.data (), again.data (), hr.size () * sizeof (float)), 0);
    }
}

TEST (AdaptRotationMath, DenseRotationMatchesItsReference)
{
  const gint64 b = 8, dim = 16, rows = 5, cols = 7;
  // an orthogonal Q: the polar factor of a random matrix
  std::vector<float> c = random_matrix (b, b, 3), q ((size_t)(b * b));
  for (gint64 i = 0; i < b; i++)
    c[(size_t)(i * b + i)] += 2.0f;
  slim_newton_schulz_polar (c.data (), b, SLIM_ADAPT_ROTATION_NS_ITERS, q.data ());
  SlimRotation *rot = slim_rotation_new_dense (b, q.data ());
  std::vector<float> w = random_matrix (rows, dim, 4), w_ref = w;
  slim_rotation_apply_right (rot, w.data (), rows, dim);
  slim_rotation_apply_right_ref (rot, w_ref.data (), rows, dim);
  EXPECT_LT (max_abs_diff (w, w_ref), 1e-5);
  std::vector<float> l = random_matrix (dim, cols, 6), l_ref = l;
  std::vector<float> bias = random_matrix (dim, 1, 8), bias_ref = bias;
  slim_rotation_apply_left (rot, l.data (), dim, cols, bias.data ());
  slim_rotation_apply_left_ref (rot, l_ref.data (), dim, cols, bias_ref.data ());
  EXPECT_LT (max_abs_diff (l, l_ref), 1e-5);
  EXPECT_LT (max_abs_diff (bias, bias_ref), 1e-5);
  std::vector<float> back ((size_t)(b * b));
  slim_rotation_to_dense (rot, back.data ());
  EXPECT_EQ (back, q);
  slim_rotation_free (rot);
}

TEST (RunStore, SetLookupReplace)
{
  GObjectPtr<SlimRunStore> store (slim_run_store_new ());
  EXPECT_EQ (slim_run_store_lookup (store.get (), "a.b"), nullptr);
  GBytes *one = g_bytes_new ("1", 1), *two = g_bytes_new ("22", 2);
  slim_run_store_set (store.get (), "a.b", one);
  slim_run_store_set (store.get (), "a.c", one);
  slim_run_store_set (store.get (), "a.b", two);
  g_bytes_unref (one);
  g_bytes_unref (two);
  EXPECT_EQ (slim_run_store_get_n_keys (store.get ()), 2u);
  EXPECT_EQ (g_bytes_get_size (slim_run_store_lookup (store.get (), "a.b")), 2u);
  EXPECT_EQ (g_bytes_get_size (slim_run_store_lookup (store.get (), "a.c")), 1u);
}

// ---- end to end --------------------------------------------------------

std::string
stories ()
{
  return slim_test_shared_path ("models/stories260K");
}

std::string
example (const std::string &name)
{
  return slim_test_source_dir () + "/examples/" + name;
}

// 16 samples x 5 layers = 80 token-mean rows for hidden size 64.
std::vector<std::string>
quant_args (const std::string &model, const std::string &save, const std::string &config)
{
  return { "--model_path", model,           "--save_path", save,           "--config_path",
           config,         "--max_samples", "16",          "--max_length", "64" };
}

std::string
write_config (const std::string &dir,
              const std::string &name,
              const std::string &prior,
              const std::string &process)
{
  std::string path = dir + "/" + name + ".yaml";
  quant_write_file (path, "apiversion: modelslim_v1\n"
                          "spec:\n"
                              + (prior.empty () ? std::string () : "  prior:\n" + prior)
                              + "  process:\n" + process
                              + "  save:\n"
                                "    - type: ascendv1_saver\n"
                                "      part_file_size: 0\n"
                                "  dataset: mix_calib.jsonl\n");
  return path;
}

const char *const kStage1 = "    - process:\n"
                            "        - type: adapt_rotation\n"
                            "          stage: 1\n";
const char *const kStage2 = "    - type: adapt_rotation\n"
                            "      stage: 2\n";

std::vector<gint32>
eval_ids (gint64 n, gint64 vocab)
{
  std::vector<gint32> ids ((size_t)n);
  for (gint64 t = 0; t < n; t++)
    ids[(size_t)t] = (gint32)((5 + 13 * t + (t * t) % 11) % vocab);
  return ids;
}

std::vector<float>
values (SlimTensor *t)
{
  const float *d = (const float *)slim_tensor_get_data (t);
  return std::vector<float> (d, d + slim_tensor_get_n_elements (t));
}

std::vector<float>
saved_logits (const std::string &out, const std::vector<gint32> &ids)
{
  GError *error = nullptr;
  SlimQuantModel *qm = slim_quant_model_load (out.c_str (), &error);
  EXPECT_NE (qm, nullptr) << (error ? error->message : "");
  if (qm == nullptr)
    {
      g_clear_error (&error);
      return {};
    }
  GObjectPtr<SlimModel> model (slim_model_open (slim_quant_model_get_float_dir (qm), &error));
  EXPECT_TRUE (model) << (error ? error->message : "");
  std::vector<float> logits;
  if (model)
    {
      SlimForwardHooks hooks;
      slim_quant_model_get_hooks (qm, &hooks);
      gint64 n = (gint64)ids.size ();
      SlimBatch batch = { 1, &n };
      TensorPtr l (slim_model_forward_logits_full (model.get (), ids.data (), &batch, &hooks,
                                                   nullptr, &error));
      EXPECT_TRUE (l) << (error ? error->message : "");
      if (l)
        logits = values (l.get ());
    }
  model.reset ();
  slim_quant_model_free (qm);
  g_clear_error (&error);
  return logits;
}

std::vector<float>
saved_tensor (const std::string &out, const char *name)
{
  GError *error = nullptr;
  SlimSafetensors *st
      = slim_safetensors_open ((out + "/quant_model_weights.safetensors").c_str (), &error);
  EXPECT_NE (st, nullptr) << (error ? error->message : "");
  std::vector<float> v;
  if (st != nullptr)
    {
      TensorPtr t (slim_safetensors_get_tensor (st, name, &error));
      EXPECT_TRUE (t) << (error ? error->message : "");
      if (t)
        {
          TensorPtr f (slim_tensor_to_f32 (t.get (), nullptr));
          v = values (f.get ());
        }
      g_object_unref (st);
    }
  g_clear_error (&error);
  return v;
}

TEST (AdaptRotationCli, FloatInvariantWithTheLearnedMatrix)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string ar = write_config (tmp, "ar", kStage1, kStage2);
  std::string qr
      = write_config (tmp, "qr", "", "    - type: quarot\n      export_extra_info: false\n");
  QuantChild run = quant_cli (quant_args (stories (), tmp + "/ar", ar));
  ASSERT_EQ (run.exit_code, 0) << run.err;
  EXPECT_NE (run.err.find ("prior stage 0 (1 processor) done in"), std::string::npos) << run.err;
  EXPECT_NE (run.err.find ("80 rows of 5 linears"), std::string::npos) << run.err;
  QuantChild plain = quant_cli (quant_args (stories (), tmp + "/qr", qr));
  ASSERT_EQ (plain.exit_code, 0) << plain.err;

  GError *error = nullptr;
  GObjectPtr<SlimModel> orig (slim_model_open (stories ().c_str (), &error));
  ASSERT_TRUE (orig) << error->message;
  std::vector<gint32> ids = eval_ids (48, slim_model_get_config (orig.get ())->vocab_size);
  gint64 n = (gint64)ids.size ();
  SlimBatch batch = { 1, &n };
  TensorPtr ref (slim_model_forward_logits (orig.get (), ids.data (), &batch, &error));
  ASSERT_TRUE (ref) << error->message;
  double worst = max_abs_diff (saved_logits (tmp + "/ar", ids), values (ref.get ()));
  RecordProperty ("max_logit_diff", std::to_string (worst));
  EXPECT_LT (worst, 1e-4);
  // the learned rotation, not the Hadamard one, rotated the embeddings
  EXPECT_GT (max_abs_diff (saved_tensor (tmp + "/ar", "model.embed_tokens.weight"),
                           saved_tensor (tmp + "/qr", "model.embed_tokens.weight")),
             1e-3);
}

TEST (AdaptRotationCli, Stage2WithoutStage1ExitsTwo)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = write_config (tmp, "s2", "", kStage2);
  QuantChild run = quant_cli (quant_args (stories (), tmp + "/out", config));
  EXPECT_EQ (run.exit_code, 2) << run.err;
  EXPECT_NE (run.err.find ("stage 2 needs the matrix of stage 1"), std::string::npos) << run.err;
  EXPECT_NE (run.err.find ("spec.prior"), std::string::npos) << run.err;
  EXPECT_FALSE (
      g_file_test ((tmp + "/out/quant_model_weights.safetensors").c_str (), G_FILE_TEST_EXISTS));
}

TEST (AdaptRotationCli, LayerTypeMatchingNothingExitsTwo)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = write_config (
      tmp, "none", std::string (kStage1) + "          layer_type: [nothing_proj]\n", kStage2);
  QuantChild run = quant_cli (quant_args (stories (), tmp + "/out", config));
  EXPECT_EQ (run.exit_code, 2) << run.err;
  EXPECT_NE (run.err.find ("collected no activations"), std::string::npos) << run.err;
  EXPECT_NE (run.err.find ("nothing_proj"), std::string::npos) << run.err;
}

TEST (AdaptRotationCli, BadConfigsNameTheKey)
{
  std::string tmp = slim_test_make_tmpdir ();
  const std::map<std::string, std::pair<std::string, std::string> > cases = {
    { "steps is a key of stage 1", { "", std::string (kStage2) + "      steps: 5\n" } },
    { "online is a key of stage 2",
      { std::string (kStage1) + "          online: true\n", kStage2 } },
    { "quant_dtype must be int4 or int8",
      { std::string (kStage1) + "          quant_dtype: int2\n", kStage2 } },
    { "block_size must be -1 or a positive power of two",
      { std::string (kStage1) + "          block_size: 12\n", kStage2 } },
    { "stage", { "", "    - type: adapt_rotation\n      stage: 3\n" } },
  };
  int i = 0;
  for (const auto &c : cases)
    {
      std::string config
          = write_config (tmp, "bad" + std::to_string (i++), c.second.first, c.second.second);
      QuantChild run = quant_cli (quant_args (stories (), tmp + "/out", config));
      EXPECT_EQ (run.exit_code, 2) << c.first << ": " << run.err;
      EXPECT_NE (run.err.find (c.first), std::string::npos) << run.err;
      EXPECT_NE (run.err.find (config), std::string::npos) << "no location: " << run.err;
    }
}

std::string
description_type (const std::string &out)
{
  std::string desc = harness_read_file (out + "/quant_model_description.json");
  return desc.find ("\"W4A4_DYNAMIC\"") != std::string::npos   ? "W4A4_DYNAMIC"
         : desc.find ("\"W8A8_DYNAMIC\"") != std::string::npos ? "W8A8_DYNAMIC"
                                                               : desc;
}

TEST (AdaptRotationExamples, RunOnStories)
{
  std::string tmp = slim_test_make_tmpdir ();
  for (const auto &c : std::map<std::string, std::string>{
           { "W4A4_DYNAMIC", "dense-w4a4-dynamic-adapt-rotation.yaml" },
           { "W8A8_DYNAMIC", "dense-w8a8-dynamic-adapt-rotation.yaml" } })
    {
      const std::string out = tmp + "/" + c.first;
      QuantChild run = quant_cli (quant_args (stories (), out, example (c.second)));
      ASSERT_EQ (run.exit_code, 0) << c.second << ": " << run.err;
      EXPECT_NE (run.err.find ("prior stage 0"), std::string::npos) << run.err;
      EXPECT_EQ (description_type (out), c.first);
    }
}

// What a prior processor does to a layer stays in the prior pass: a
// data-free prior stage (quarot, which rotates every unit) leaves the main
// run's bytes those of the config without it.
TEST (PriorStages, LeaveTheModelUntouched)
{
  std::string tmp = slim_test_make_tmpdir ();
  const std::string quant = "    - type: linear_quant\n"
                            "      qconfig:\n"
                            "        act: {scope: per_token, dtype: int8, symmetric: true, "
                            "method: minmax}\n"
                            "        weight: {scope: per_channel, dtype: int8, symmetric: true, "
                            "method: minmax}\n";
  std::string with = write_config (tmp, "with",
                                   "    - process:\n"
                                   "        - type: quarot\n"
                                   "          export_extra_info: false\n",
                                   quant);
  std::string without = write_config (tmp, "without", "", quant);
  QuantChild a = quant_cli (quant_args (stories (), tmp + "/with", with));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  EXPECT_NE (a.err.find ("prior stage 0 (1 processor)"), std::string::npos) << a.err;
  QuantChild b = quant_cli (quant_args (stories (), tmp + "/without", without));
  ASSERT_EQ (b.exit_code, 0) << b.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/with"), quant_folder_digests (tmp + "/without"));
}

// slimflow ablate runs a variant with a prior stage (its figures are
// those of slimflow quant + eval: same saved bytes here).
TEST (AdaptRotationCli, AblateRunsPriorStages)
{
  std::string tmp = slim_test_make_tmpdir ();
  gchar *text = nullptr;
  gsize len = 0;
  ASSERT_TRUE (g_file_get_contents (
      slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt").c_str (), &text, &len,
      nullptr));
  quant_write_file (tmp + "/excerpt.txt", std::string (text, std::min (len, (gsize)2000)));
  g_free (text);
  quant_write_file (tmp + "/matrix.yaml",
                    "base: " + example ("dense-w4a4-dynamic-adapt-rotation.yaml")
                        + "\nvariants:\n  - name: adapt\n");
  QuantChild run
      = slimflow_cli ({ "ablate", "--model_path", stories (), "--matrix", tmp + "/matrix.yaml",
                        "--text", tmp + "/excerpt.txt", "--ctx", "128", "--out", tmp + "/abl",
                        "--max_samples", "16", "--max_length", "64", "--keep_models" });
  ASSERT_EQ (run.exit_code, 0) << run.err;
  EXPECT_NE (run.err.find ("prior stage 0"), std::string::npos) << run.err;
  EXPECT_TRUE (g_file_test ((tmp + "/abl/variants/adapt.json").c_str (), G_FILE_TEST_EXISTS));
  QuantChild q = quant_cli (
      quant_args (stories (), tmp + "/cli", example ("dense-w4a4-dynamic-adapt-rotation.yaml")));
  ASSERT_EQ (q.exit_code, 0) << q.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/cli"), quant_folder_digests (tmp + "/abl/models/adapt"));
}

// Killed after main layer 1 (the prior stage was done), then resumed: the
// prior stage is recomputed and the bytes are the uninterrupted ones.
TEST (AdaptRotationResume, KilledAfterThePriorStageResumesToTheSameBytes)
{
  std::string tmp = slim_test_make_tmpdir ();
  const std::string config = example ("dense-w4a4-dynamic-adapt-rotation.yaml");
  QuantChildOptions spill;
  spill.env = { { "SLIM_SPILL", "hdf5" } };
  QuantChild ref = quant_cli (quant_args (stories (), tmp + "/ref", config), spill);
  ASSERT_EQ (ref.exit_code, 0) << ref.err;
  const std::string save = tmp + "/out";
  QuantChildOptions kill = spill;
  kill.env.push_back ({ "SLIMFLOW_TEST_KILL_AFTER_LAYER", "1" });
  QuantChild killed = quant_cli (quant_args (stories (), save, config), kill);
  ASSERT_EQ (killed.term_signal, SIGKILL) << killed.err;
  EXPECT_NE (killed.err.find ("prior stage 0"), std::string::npos) << killed.err;
  std::vector<std::string> args = quant_args (stories (), save, config);
  args.push_back ("--resume");
  QuantChild resumed = quant_cli (args, spill);
  ASSERT_EQ (resumed.exit_code, 0) << resumed.err;
  EXPECT_NE (resumed.err.find ("continuing with layer 2"), std::string::npos) << resumed.err;
  EXPECT_NE (resumed.err.find ("prior stage 0"), std::string::npos) << resumed.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/ref"), quant_folder_digests (save));
}

} // namespace
