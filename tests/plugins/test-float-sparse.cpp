// SPDX-License-Identifier: Apache-2.0
//
// test-float-sparse.cpp: the float_sparse processor (modelslim-v1-spec.md
// 2.14, label W16A16S) through the harness driver and the ascendv1 saver:
// - the configuration: defaults, sparse_ratio outside 0..1 is a config
//   error naming the file and line;
// - end to end on the synthetic Qwen2 model (q/k/v have biases): every
//   decoder linear labelled W16A16S with weight and bias in the model dtype,
//   the bias unchanged, sparsity int (numel * 0.3) per matrix (plus the few
//   values float16 flushes to zero), model_quant_type W16A16S, the checker
//   accepts the folder and slimflow's eval loader reads it;
// - a bfloat16 model keeps bfloat16 weights; exclude leaves linears FLOAT;
// - the processor's saved weight equals slim-admm run by hand on the
//   inputs its hook received;
// - bad inputs: no calibration data (every linear unreached), activations
//   whose Hessian overflows, the mindie saver.
#include "../ascendv1-checker.hpp"
#include "quant-harness.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-admm.h"
#include "slim-quant-model.h"
#include "slim-safetensors.h"
}

#include <cmath>
#include <cstring>
#include <set>

namespace
{

const char *const kSaver = "type: ascendv1_saver\npart_file_size: 0\n";

std::string
synthetic (const char *name)
{
  return slim_test_shared_path (std::string ("models/synthetic/") + name);
}

// Runs one float_sparse config over a model into a new folder ("" on failure).
std::string
sparsify (const std::string &model,
          const std::string &yaml,
          const std::string &saver = kSaver,
          guint n_samples = 3,
          GError **error = nullptr)
{
  GError *local = nullptr;
  GObjectPtr<SlimProcessor> p (harness_processor (yaml, &local));
  EXPECT_TRUE (p) << (local ? local->message : "");
  g_clear_error (&local);
  GObjectPtr<SlimSaver> s (harness_saver (saver, &local));
  EXPECT_TRUE (s) << (local ? local->message : "");
  g_clear_error (&local);
  if (!p || !s)
    return "";
  std::string out = slim_test_make_tmpdir () + "/out";
  bool ok = harness_run_model (model, { p.get () }, { s.get () }, out, n_samples, 24,
                               error != nullptr ? error : &local);
  if (error == nullptr)
    {
      EXPECT_TRUE (ok) << (local ? local->message : "");
      g_clear_error (&local);
    }
  return ok ? out : "";
}

struct Folder
{
  GObjectPtr<SlimSafetensors> st;
  JsonParser *parser = nullptr;
  JsonObject *desc = nullptr;
  explicit Folder (const std::string &dir)
  {
    GError *error = nullptr;
    st.reset (slim_safetensors_open (dir.c_str (), &error));
    EXPECT_TRUE (st) << (error ? error->message : "");
    g_clear_error (&error);
    parser = json_parser_new ();
    std::string path = dir + "/quant_model_description.json";
    EXPECT_TRUE (json_parser_load_from_file (parser, path.c_str (), nullptr));
    desc = json_node_get_object (json_parser_get_root (parser));
  }
  ~Folder ()
  {
    g_object_unref (parser);
  }
  std::string
  label (const std::string &name) const
  {
    return json_object_has_member (desc, name.c_str ())
               ? json_object_get_string_member (desc, name.c_str ())
               : "";
  }
  // transfer full, float32 copy
  TensorPtr
  f32 (const std::string &name) const
  {
    GError *error = nullptr;
    SlimTensor *t = slim_safetensors_get_tensor_f32 (st.get (), name.c_str (), &error);
    EXPECT_NE (t, nullptr) << name << ": " << (error ? error->message : "");
    g_clear_error (&error);
    return TensorPtr (t);
  }
  SlimDType
  dtype (const std::string &name) const
  {
    GError *error = nullptr;
    SlimTensor *t = slim_safetensors_get_tensor (st.get (), name.c_str (), &error);
    g_clear_error (&error);
    SlimDType d = t != nullptr ? slim_tensor_get_dtype (t) : SLIM_N_DTYPES;
    if (t != nullptr)
      slim_tensor_unref (t);
    return d;
  }
};

int64_t
zeros (SlimTensor *t)
{
  const float *d = (const float *)slim_tensor_get_data (t);
  int64_t z = 0;
  for (int64_t e = 0; e < slim_tensor_get_n_elements (t); e++)
    z += d[e] == 0.0f;
  return z;
}

const char *const kLinears[]
    = { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj" };

} // namespace

TEST (FloatSparseConfig, Defaults)
{
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p (harness_processor ("type: float_sparse\n", &error));
  ASSERT_TRUE (p) << error->message;
  double ratio = 0.0;
  char **include = nullptr, **exclude = nullptr;
  g_object_get (p.get (), "sparse-ratio", &ratio, "include", &include, "exclude", &exclude,
                nullptr);
  EXPECT_EQ (ratio, 0.3);
  ASSERT_NE (include, nullptr);
  EXPECT_STREQ (include[0], "*");
  EXPECT_EQ (include[1], nullptr);
  EXPECT_TRUE (exclude == nullptr || exclude[0] == nullptr);
  g_strfreev (include);
  g_strfreev (exclude);
  EXPECT_FALSE (slim_processor_is_data_free (p.get ()));
  EXPECT_TRUE (slim_processor_refreshes_outputs (p.get ()));
  EXPECT_TRUE (slim_processor_validate (p.get (), &error));
}

TEST (FloatSparseConfig, RatioOutsideZeroToOneNamesFileAndLine)
{
  for (const char *bad : { "1.5", "-0.1", "\"x\"" })
    {
      GError *error = nullptr;
      std::string yaml = std::string ("type: float_sparse\nsparse_ratio: ") + bad + "\n";
      GObjectPtr<SlimProcessor> p (harness_processor (yaml, &error));
      EXPECT_FALSE (p) << bad;
      ASSERT_NE (error, nullptr) << bad;
      std::string msg = error->message;
      EXPECT_NE (msg.find ("test.yaml:2"), std::string::npos) << msg;
      // the loader names the key by its canonical spelling (either is accepted)
      EXPECT_NE (msg.find ("'sparse-ratio'"), std::string::npos) << msg;
      if (bad[0] != '"')
        {
          EXPECT_NE (msg.find ("outside 0..1"), std::string::npos) << msg;
        }
      g_clear_error (&error);
    }
  // the ends are legal, as in msModelSlim (in_range 0.0 .. 1.0)
  for (const char *ok : { "0", "1.0" })
    {
      GError *error = nullptr;
      GObjectPtr<SlimProcessor> p (harness_processor (
          std::string ("type: float_sparse\nsparse_ratio: ") + ok + "\n", &error));
      EXPECT_TRUE (p) << ok << ": " << (error ? error->message : "");
      g_clear_error (&error);
    }
}

TEST (FloatSparse, SyntheticQwen2EndToEnd)
{
  const std::string model = synthetic ("tiny-random-qwen2");
  std::string out = sparsify (model, "type: float_sparse\nsparse_ratio: 0.3\n");
  ASSERT_FALSE (out.empty ());

  SlimTestAscendv1Options options;
  options.expected_model_quant_type = "W16A16S";
  SlimTestAscendv1Report report = slim_test_ascendv1_check (out, options);
  EXPECT_TRUE (report.ok ()) << report.summary ();

  Folder f (out);
  GError *error = nullptr;
  GObjectPtr<SlimSafetensors> orig (
      slim_safetensors_open ((model + "/model.safetensors").c_str (), &error));
  ASSERT_TRUE (orig) << error->message;
  int n_biases = 0;
  for (int layer = 0; layer < 2; layer++)
    for (const char *lin : kLinears)
      {
        std::string m = "model.layers." + std::to_string (layer) + "." + lin;
        EXPECT_EQ (f.label (m + ".weight"), "W16A16S") << m;
        EXPECT_EQ (f.dtype (m + ".weight"), SLIM_DTYPE_F32) << m;
        TensorPtr w = f.f32 (m + ".weight");
        ASSERT_TRUE (w);
        int64_t n = slim_tensor_get_n_elements (w.get ());
        int64_t k = slim_admm_n_pruned (n, 0.3);
        // int (numel * 0.3) zeros from the mask; float16 may flush a few
        // more tiny values (subnormals that are not kept)
        EXPECT_GE (zeros (w.get ()), k) << m;
        EXPECT_LE (zeros (w.get ()), k + n / 500) << m;
        // every value is a float16 value
        const float *wd = (const float *)slim_tensor_get_data (w.get ());
        for (int64_t e = 0; e < n; e++)
          ASSERT_EQ (slim_f16_to_f32 (slim_f32_to_f16 (wd[e])), wd[e]) << m;
        std::string b = m + ".bias";
        if (!f.label (b).empty ())
          {
            n_biases++;
            EXPECT_EQ (f.label (b), "W16A16S") << b;
            TensorPtr saved = f.f32 (b);
            SlimTensor *o = slim_safetensors_get_tensor_f32 (orig.get (), b.c_str (), &error);
            ASSERT_NE (o, nullptr) << b;
            TensorPtr ot (o);
            ASSERT_EQ (slim_tensor_get_n_bytes (saved.get ()), slim_tensor_get_n_bytes (o));
            EXPECT_EQ (0, memcmp (slim_tensor_get_data (saved.get ()), slim_tensor_get_data (o),
                                  slim_tensor_get_n_bytes (o)))
                << b << " must be unchanged";
          }
      }
  EXPECT_EQ (n_biases, 6); // q/k/v of both layers
  EXPECT_EQ (f.label ("lm_head.weight").empty () ? f.label ("model.embed_tokens.weight")
                                                 : f.label ("lm_head.weight"),
             "FLOAT");
  EXPECT_EQ (f.label ("model.layers.0.input_layernorm.weight"), "FLOAT");

  // slimflow eval's loader runs it as float weights
  SlimQuantModel *qm = slim_quant_model_load (out.c_str (), &error);
  ASSERT_NE (qm, nullptr) << error->message;
  EXPECT_EQ (slim_quant_model_get_n_quantized (qm), 14u);
  slim_quant_model_free (qm);
}

TEST (FloatSparse, Bfloat16ModelKeepsBfloat16AndExcludeStaysFloat)
{
  std::string out = sparsify (slim_test_shared_path ("models/stories260K-bf16"),
                              "type: float_sparse\nexclude: [\"*down_proj*\"]\n");
  ASSERT_FALSE (out.empty ());
  Folder f (out);
  EXPECT_EQ (f.label ("model.layers.0.mlp.up_proj.weight"), "W16A16S");
  EXPECT_EQ (f.dtype ("model.layers.0.mlp.up_proj.weight"), SLIM_DTYPE_BF16);
  EXPECT_EQ (f.label ("model.layers.0.mlp.down_proj.weight"), "FLOAT");
  EXPECT_EQ (f.dtype ("model.layers.0.mlp.down_proj.weight"), SLIM_DTYPE_BF16);
  TensorPtr down = f.f32 ("model.layers.0.mlp.down_proj.weight");
  EXPECT_LT (zeros (down.get ()), slim_tensor_get_n_elements (down.get ()) / 100);
  SlimTestAscendv1Options options;
  options.expected_model_quant_type = "W16A16S";
  options.bf16_model = true;
  SlimTestAscendv1Report report = slim_test_ascendv1_check (out, options);
  EXPECT_TRUE (report.ok ()) << report.summary ();
}

// The processor's result is slim-admm on exactly the inputs its hook saw:
// a synthetic layer driven by hand, the reference statistics kept alongside.
TEST (FloatSparse, DeployedWeightIsAdmmOfTheHookInputs)
{
  const char *kUp = "model.layers.0.mlp.up_proj";
  const int64_t n_out = 12, n_in = 16;
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kUp, n_out, n_in, false } }, 4));
  std::vector<float> w0 ((const float *)slim_tensor_get_data (slim_layer_get_tensor (
                             layer.get (), "model.layers.0.mlp.up_proj.weight")),
                         (const float *)slim_tensor_get_data (slim_layer_get_tensor (
                             layer.get (), "model.layers.0.mlp.up_proj.weight"))
                             + n_out * n_in);
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p (
      harness_processor ("type: float_sparse\nsparse_ratio: 0.4\n", &error));
  ASSERT_TRUE (p);
  ASSERT_TRUE (slim_processor_validate (p.get (), &error));
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));
  SlimForwardHooks hooks{};
  slim_processor_get_forward_hooks (p.get (), layer.get (), &hooks);
  ASSERT_NE (hooks.linear_input, nullptr);

  SlimAdmmStats ref{};
  ASSERT_TRUE (slim_admm_stats_init (&ref, n_in, &error));
  for (unsigned call = 0; call < 3; call++)
    {
      std::vector<float> x = harness_pattern ((size_t)(20 * n_in), 10 + call);
      std::vector<float> y;
      ASSERT_TRUE (harness_linear_forward (layer.get (), kUp, x, 20, &hooks, &y, &error));
      ASSERT_TRUE (slim_admm_stats_add_batch (&ref, x.data (), 20, &error));
    }
  ASSERT_TRUE (slim_processor_postprocess (p.get (), layer.get (), &error)) << error->message;

  std::vector<float> expect ((size_t)(n_out * n_in));
  ASSERT_TRUE (
      slim_admm_prune (&ref, w0.data (), n_out, n_in, 0.4, expect.data (), nullptr, &error));
  ASSERT_TRUE (slim_admm_protect (expect.data (), ref.scaler_row, n_out, n_in, SLIM_DTYPE_F32,
                                  expect.data (), nullptr, &error));
  slim_admm_stats_clear (&ref);
  SlimTensor *w = slim_layer_get_tensor (layer.get (), "model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ (0, memcmp (slim_tensor_get_data (w), expect.data (), expect.size () * sizeof (float)));
  const SlimQLinear *q = slim_layer_get_qlinear (layer.get (), kUp);
  ASSERT_NE (q, nullptr);
  EXPECT_STREQ (q->label, "W16A16S");
  EXPECT_EQ (q->act.dtype, SLIM_QDTYPE_FLOAT);
  EXPECT_EQ (q->n_out, n_out);
  EXPECT_EQ (q->n_in, n_in);
}

TEST (FloatSparseErrors, NoCalibrationDataNamesTheLinear)
{
  GError *error = nullptr;
  std::string out = sparsify (slim_test_shared_path ("models/stories260K"), "type: float_sparse\n",
                              kSaver, 0, &error);
  EXPECT_TRUE (out.empty ());
  ASSERT_NE (error, nullptr);
  std::string msg = error->message;
  EXPECT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED)) << msg;
  EXPECT_NE (msg.find ("model.layers.0.self_attn.q_proj"), std::string::npos) << msg;
  EXPECT_NE (msg.find ("no calibration activation reached"), std::string::npos) << msg;
  g_clear_error (&error);
}

TEST (FloatSparseErrors, OverflowingActivationsNameTheLinearAndKeepTheWeight)
{
  const char *kUp = "model.layers.0.mlp.up_proj";
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (0, { { kUp, 4, 8, false } }, 5));
  SlimTensor *before = slim_layer_get_tensor (layer.get (), "model.layers.0.mlp.up_proj.weight");
  std::vector<float> w0 ((const float *)slim_tensor_get_data (before),
                         (const float *)slim_tensor_get_data (before) + 32);
  GError *error = nullptr;
  GObjectPtr<SlimProcessor> p (harness_processor ("type: float_sparse\n", &error));
  ASSERT_TRUE (p);
  ASSERT_TRUE (slim_processor_preprocess (p.get (), layer.get (), &error));
  SlimForwardHooks hooks{};
  slim_processor_get_forward_hooks (p.get (), layer.get (), &hooks);
  std::vector<float> x (8 * 2, 1e20f), y; // finite, but xᵀx overflows float32
  ASSERT_TRUE (harness_linear_forward (layer.get (), kUp, x, 2, &hooks, &y, &error));
  EXPECT_FALSE (slim_processor_postprocess (p.get (), layer.get (), &error));
  ASSERT_NE (error, nullptr);
  std::string msg = error->message;
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE)) << msg;
  EXPECT_NE (msg.find (kUp), std::string::npos) << msg;
  g_clear_error (&error);
  SlimTensor *after = slim_layer_get_tensor (layer.get (), "model.layers.0.mlp.up_proj.weight");
  EXPECT_EQ (0, memcmp (slim_tensor_get_data (after), w0.data (), 32 * sizeof (float)));
  EXPECT_EQ (slim_layer_get_qlinear (layer.get (), kUp), nullptr);
}

TEST (FloatSparseErrors, MindieSaverRefusesW16A16S)
{
  GError *error = nullptr;
  std::string out = sparsify (slim_test_shared_path ("models/stories260K"), "type: float_sparse\n",
                              "type: mindie_format_saver\npart_file_size: 0\n", 2, &error);
  EXPECT_TRUE (out.empty ());
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("use ascendv1_saver"), std::string::npos)
      << error->message;
  g_clear_error (&error);
}
