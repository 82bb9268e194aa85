// SPDX-License-Identifier: Apache-2.0
//
// test-gguf-llama-cpp.cpp: a real consumer of the gguf saver.  llama.cpp
// (npm node-llama-cpp 3.21.1 with its prebuilt linux-x64 CPU binaries,
// installed into BUILD/node-llama-cpp by tools/setup-llama-cpp.sh) loads
// the GGUF files slimflow writes for stories260K and scores the TinyStories
// excerpt (tests/llama-cpp/gguf-perplexity.mjs, slimflow eval's protocol:
// windows of 512 tokens, BOS once); `slimflow eval` scores the ascendv1
// folder the same run wrote from the same quantization records.  Both
// must see the same 15,537 token ids (llama.cpp's own tokenization with
// the embedded vocabulary is compared id by id) and agree on the mean
// negative log-likelihood:
//
//   float (F32 GGUF)  |dNLL| <= 2e-4: the same float32 weights and a
//                     float32 KV cache; only llama.cpp's float32 arithmetic
//                     differs (order of sums, its exp/silu/RoPE): measured
//                     -1.6e-5 on the whole excerpt, 6.7e-5 on its first
//                     8 KB (4,073 tokens), which is what is scored here to
//                     save CPU.
//   Q8_0, Q4_0        |dNLL| <= 2e-3 (0.2% of perplexity): llama.cpp's CPU
//                     matmul rounds each activation block of 32 to int8
//                     (Q8_0 activations) and GGUF stores the block scales
//                     in f16, where slimflow eval keeps float activations
//                     and float32 scales (measured 3.4e-4 and 2e-5).  A
//                     wrong q/k row order moves the NLL by 3.7 (Q8_0 file
//                     written without it: NLL 5.394).
//
// tiny-random-qwen2 (random weights, shared/models/synthetic) goes through
// llama.cpp's qwen2 architecture with the same protocol on the first 8 KB:
// F32 measured dNLL -7.1e-6 (|dNLL| <= 2e-4 as above; the llama q/k row
// reordering applied by mistake moves it by 4.4e-2), Q8_0 1.45e-3 (<= 2e-3:
// its random weights give larger activations, so the int8 rounding of the
// activation blocks weighs more than on stories260K; llama.cpp is
// deterministic here, the figure does not vary between runs).
#include <gtest/gtest.h>

#include <json-glib/json-glib.h>

#include <cmath>
#include <string>

#include "quant-cli-util.hpp"
#include "slim-test.h"
#include "slim-text.h"
#include "slim-tokenizer.h"

namespace
{

struct Score
{
  bool ok = false;
  int64_t tokens = 0, predictions = 0, ids_differing = -1;
  double nll = NAN, mass_min = NAN, mass_max = NAN;
};

std::string
excerpt ()
{
  return slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt");
}

// The excerpt's first lines, up to max_bytes, in dir (the float control
// scores a part only: llama.cpp spends ~0.7 s of CPU per 512-token window
// here, and the suite keeps to about a minute of CPU).
std::string
excerpt_prefix (const std::string &dir, size_t max_bytes)
{
  gchar *text = nullptr;
  gsize n = 0;
  EXPECT_TRUE (g_file_get_contents (excerpt ().c_str (), &text, &n, nullptr));
  std::string s (text != nullptr ? text : "", n);
  g_free (text);
  size_t cut = s.rfind ('\n', max_bytes);
  std::string path = dir + "/excerpt-prefix.txt";
  quant_write_file (path, s.substr (0, cut == std::string::npos ? 0 : cut + 1));
  return path;
}

JsonObject *
parse_object (JsonParser *parser, const std::string &text)
{
  // the JSON object is the last line of output
  size_t start = text.rfind ("\n{");
  std::string json = start == std::string::npos ? text : text.substr (start + 1);
  if (!json_parser_load_from_data (parser, json.c_str (), -1, nullptr))
    return nullptr;
  JsonNode *root = json_parser_get_root (parser);
  return root != nullptr && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : nullptr;
}

// slimflow's token ids of the excerpt (as `slimflow eval` makes them) to path.
void
write_ids (const std::string &model, const std::string &text_path, const std::string &path)
{
  GError *error = nullptr;
  SlimTokenizer *tokenizer = slim_tokenizer_new_from_dir (model.c_str (), &error);
  ASSERT_NE (tokenizer, nullptr) << error->message;
  char *text = slim_text_read_file (text_path.c_str (), SLIM_TEXT_DEFAULT_MAX_BYTES, &error);
  ASSERT_NE (text, nullptr) << error->message;
  GArray *ids = slim_tokenizer_encode (tokenizer, text, TRUE, &error);
  ASSERT_NE (ids, nullptr) << error->message;
  std::string json = "[";
  for (guint i = 0; i < ids->len; i++)
    json += (i ? "," : "") + std::to_string (g_array_index (ids, gint32, i));
  json += "]";
  quant_write_file (path, json);
  g_array_unref (ids);
  g_free (text);
  g_object_unref (tokenizer);
}

Score
slimflow_eval (const std::string &dir, const std::string &text)
{
  Score s;
  QuantChild child
      = slimflow_cli ({ "eval", "--model_path", dir, "--text", text, "--ctx", "512", "--json" });
  EXPECT_EQ (child.exit_code, 0) << child.err;
  JsonParser *parser = json_parser_new ();
  JsonObject *o = parse_object (parser, child.out);
  EXPECT_NE (o, nullptr) << child.out;
  if (o != nullptr)
    {
      s.ok = true;
      s.tokens = json_object_get_int_member (o, "tokens");
      s.predictions = json_object_get_int_member (o, "predictions");
      s.nll = json_object_get_double_member (o, "nll");
    }
  g_object_unref (parser);
  return s;
}

Score
llama_cpp_eval (const std::string &gguf, const std::string &ids, const std::string &text)
{
  Score s;
  std::string modules = slim_test_build_dir () + "/node-llama-cpp/node_modules";
  std::string script = slim_test_source_dir () + "/tests/llama-cpp/gguf-perplexity.mjs";
  if (!g_file_test ((modules + "/@node-llama-cpp/linux-x64/package.json").c_str (),
                    G_FILE_TEST_EXISTS))
    {
      ADD_FAILURE () << "node-llama-cpp is not installed in " << modules
                     << ": run bash tools/setup-llama-cpp.sh " << slim_test_build_dir ();
      return s;
    }
  gchar *out = nullptr, *err = nullptr;
  gint status = 0;
  GError *error = nullptr;
  const gchar *argv[]
      = { "node",        script.c_str (), "--modules",  modules.c_str (), "--model",
          gguf.c_str (), "--ids",         ids.c_str (), "--text",         text.c_str (),
          "--ctx",       "512",           nullptr };
  // node-llama-cpp: never download or build anything
  gchar **envp = g_get_environ ();
  envp = g_environ_setenv (envp, "NODE_LLAMA_CPP_SKIP_DOWNLOAD", "true", TRUE);
  gboolean spawned = g_spawn_sync (nullptr, (gchar **)argv, envp, G_SPAWN_SEARCH_PATH, nullptr,
                                   nullptr, &out, &err, &status, &error);
  g_strfreev (envp);
  EXPECT_TRUE (spawned) << (error != nullptr ? error->message : "");
  g_clear_error (&error);
  if (spawned)
    {
      EXPECT_TRUE (g_spawn_check_wait_status (status, nullptr)) << err;
      JsonParser *parser = json_parser_new ();
      JsonObject *o = parse_object (parser, out != nullptr ? out : "");
      EXPECT_NE (o, nullptr) << out << err;
      if (o != nullptr)
        {
          s.ok = true;
          s.tokens = json_object_get_int_member (o, "tokens");
          s.predictions = json_object_get_int_member (o, "predictions");
          s.nll = json_object_get_double_member (o, "nll");
          s.ids_differing = json_object_get_int_member (o, "token_ids_differing");
          s.mass_min = json_object_get_double_member (o, "probability_mass_min");
          s.mass_max = json_object_get_double_member (o, "probability_mass_max");
        }
      g_object_unref (parser);
    }
  g_free (out);
  g_free (err);
  return s;
}

struct LlamaCase
{
  const char *name;
  const char *model;   // nullptr: stories260K; else a path under shared/
  const char *example; // nullptr: a float pipeline (no quantization)
  double tolerance;    // on the mean NLL, see the file comment
  size_t max_bytes;    // score the excerpt's first lines up to this size; 0: all of it
};

class GgufLlamaCpp : public ::testing::TestWithParam<LlamaCase>
{
};

TEST_P (GgufLlamaCpp, PerplexityAgreesWithSlimflowEval)
{
  const LlamaCase &c = GetParam ();
  std::string tmp = slim_test_make_tmpdir ();
  std::string config = tmp + "/float.yaml";
  if (c.example != nullptr)
    config = quant_example (c.example);
  else
    quant_write_file (config, "apiversion: modelslim_v1\nspec:\n  process: []\n"
                              "  save:\n    - type: gguf\n    - type: ascendv1_saver\n"
                              "      part_file_size: 0\n");
  std::string model = c.model != nullptr ? slim_test_shared_path (c.model) : quant_stories_model ();
  std::string out = tmp + "/out";
  QuantChild q = quant_cli ({ "--model_path", model, "--save_path", out, "--config_path", config });
  ASSERT_EQ (q.exit_code, 0) << q.err;
  std::string text = c.max_bytes > 0 ? excerpt_prefix (tmp, c.max_bytes) : excerpt ();
  ASSERT_NO_FATAL_FAILURE (write_ids (model, text, tmp + "/ids.json"));

  Score slim = slimflow_eval (out, text);
  Score llama = llama_cpp_eval (out + "/model.gguf", tmp + "/ids.json", text);
  ASSERT_TRUE (slim.ok && llama.ok);
  std::printf ("%s (%lld tokens): llama.cpp NLL %.6f PPL %.4f | slimflow eval NLL %.6f PPL %.4f "
               "| dNLL %.2e\n",
               c.name, (long long)slim.tokens, llama.nll, std::exp (llama.nll), slim.nll,
               std::exp (slim.nll), llama.nll - slim.nll);
  if (c.max_bytes == 0 && c.model == nullptr)
    {
      EXPECT_EQ (slim.tokens, 15537); // shared/ref/REFERENCE.md
    }
  EXPECT_EQ (llama.tokens, slim.tokens);
  EXPECT_EQ (llama.predictions, slim.predictions);
  // the vocabulary embedded in the file tokenizes the excerpt as slimflow does
  EXPECT_EQ (llama.ids_differing, 0);
  // llama.cpp's probabilities are a full softmax (float32 sums)
  EXPECT_NEAR (llama.mass_min, 1.0, 1e-4);
  EXPECT_NEAR (llama.mass_max, 1.0, 1e-4);
  EXPECT_NEAR (llama.nll, slim.nll, c.tolerance);
}

INSTANTIATE_TEST_SUITE_P (
    Stories,
    GgufLlamaCpp,
    ::testing::Values (LlamaCase{ "F32", nullptr, nullptr, 2e-4, 8000 },
                       LlamaCase{ "Q8_0", nullptr, "dense-w8a16-gguf.yaml", 2e-3, 0 },
                       LlamaCase{ "Q4_0", nullptr, "dense-w4a16-gguf.yaml", 2e-3, 0 },
                       // llama.cpp's qwen2 architecture: q/k/v biases, NEOX RoPE (no
                       // q/k row reordering), the tied output read from token_embd
                       LlamaCase{ "Qwen2F32", "models/synthetic/tiny-random-qwen2", nullptr, 2e-4,
                                  8000 },
                       LlamaCase{ "Qwen2Q8_0", "models/synthetic/tiny-random-qwen2",
                                  "dense-w8a16-gguf.yaml", 2e-3, 8000 }),
    [] (const ::testing::TestParamInfo<LlamaCase> &info) { return std::string (info.param.name); });

} // namespace
