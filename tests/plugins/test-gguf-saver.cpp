// SPDX-License-Identifier: Apache-2.0
//
// test-gguf-saver.cpp: the gguf saver end to end.  `slimflow quant` runs
// the GGUF examples (gguf + ascendv1_saver in one run) on stories260K and
// on the untied synthetic llama; the file is parsed back by the tests' own
// reader (gguf-reader.cpp) and compared with what the ascendv1 saver wrote
// from the same records:
//   - the llama metadata against config.json;
//   - every quantized tensor block by block: the int codes are the
//     ascendv1 int8 weight's (q/k rows in llama.cpp's order, checked
//     against an independent reshape/swapaxes of the HF rows), d is the
//     float32 scale rounded to f16 (and Q4_1's m = -scale (8 + offset));
//   - float tensors bit-equal to the ascendv1 float tensors;
//   - the vocabulary against tokenizer.json, the token types, and the
//     scores' order against the SentencePiece model tokenizer.model;
//   - byte-level BPE tokenizers (trained by bpe-fixture.cpp on a shared
//     calibration set): slimflow's tokenizer against the fixture's
//     reference encoder, and the "gpt2" vocabulary keys (pre-tokenizer,
//     tokens, types, merges, special ids) against the tokenizer;
// and bad inputs fail with an error naming the tensor or the tokenizer.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "bpe-fixture.hpp"
#include "gguf-reader.hpp"
#include "quant-cli-util.hpp"
#include "slim-dtype.h"
#include "slim-gguf-llama.h"
#include "slim-gguf-writer.h"
#include "slim-safetensors.h"
#include "slim-test.h"
#include "slim-tokenizer.h"

using slim_test::GgufFile;
using slim_test::GgufTensor;

namespace
{

const std::vector<std::string> kFastCalib = { "--max_samples", "2", "--max_length", "32" };

struct GgufRun
{
  std::string dir;
  GgufFile gguf;
  SlimSafetensors *ascend = nullptr; // the ascendv1 weights of the same run
  ~GgufRun ()
  {
    g_clear_object (&ascend);
  }
};

std::string
read_text (const std::string &path)
{
  std::ifstream in (path);
  std::stringstream s;
  s << in.rdbuf ();
  return s.str ();
}

// Runs `slimflow quant` with config on model; parses OUT/model.gguf and
// opens the ascendv1 weights.
void
quantize (const std::string &model, const std::string &config, GgufRun *run)
{
  run->dir = slim_test_make_tmpdir () + "/out";
  std::vector<std::string> args
      = { "--model_path", model, "--save_path", run->dir, "--config_path", config };
  args.insert (args.end (), kFastCalib.begin (), kFastCalib.end ());
  QuantChild child = quant_cli (args);
  ASSERT_EQ (child.exit_code, 0) << child.err;
  std::string error;
  ASSERT_TRUE (slim_test::gguf_read (run->dir + "/model.gguf", &run->gguf, &error)) << error;
  GError *gerror = nullptr;
  run->ascend
      = slim_safetensors_open ((run->dir + "/quant_model_weights.safetensors").c_str (), &gerror);
  ASSERT_NE (run->ascend, nullptr) << gerror->message;
}

SlimTensor *
ascend_tensor (const GgufRun &run, const std::string &name)
{
  GError *error = nullptr;
  SlimTensor *t = slim_safetensors_get_tensor (run.ascend, name.c_str (), &error);
  EXPECT_NE (t, nullptr) << name << ": " << (error != nullptr ? error->message : "");
  g_clear_error (&error);
  return t;
}

// convert_hf_to_gguf.py's permute, written as the reshape it is:
// W.reshape(n_head, 2, d/2, cols).swapaxes(1, 2): GGUF row (h, i, j) =
// HF row (h, j, i).  Returns hf_row_of[gguf_row].
std::vector<int64_t>
reference_permutation (int64_t n_rows, int64_t n_head)
{
  int64_t d = n_rows / n_head;
  std::vector<int64_t> hf_row_of (n_rows);
  for (int64_t h = 0; h < n_head; h++)
    for (int64_t j = 0; j < 2; j++)
      for (int64_t i = 0; i < d / 2; i++)
        hf_row_of[h * d + i * 2 + j] = h * d + j * (d / 2) + i;
  return hf_row_of;
}

float
f16_round (float x)
{
  return slim_f16_to_f32 (slim_f32_to_f16 (x));
}

float
block_half (const uint8_t *p)
{
  return slim_f16_to_f32 ((guint16)(p[0] | (p[1] << 8)));
}

// GGUF name -> (HF module, heads of the q/k permutation or 0).
struct LinearName
{
  const char *gguf;
  const char *hf;
};
const LinearName kLinears[] = {
  { "attn_q", "self_attn.q_proj" }, { "attn_k", "self_attn.k_proj" },
  { "attn_v", "self_attn.v_proj" }, { "attn_output", "self_attn.o_proj" },
  { "ffn_gate", "mlp.gate_proj" },  { "ffn_up", "mlp.up_proj" },
  { "ffn_down", "mlp.down_proj" },
};

int64_t
config_int (const std::string &model, const char *key)
{
  JsonParser *parser = json_parser_new ();
  EXPECT_TRUE (json_parser_load_from_file (parser, (model + "/config.json").c_str (), nullptr));
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  int64_t v = json_object_get_int_member (root, key);
  g_object_unref (parser);
  return v;
}

// Every block of a quantized GGUF linear against the ascendv1 record of
// the same linear: codes identical (rows permuted for q/k), d = f16(scale),
// m = f16(-scale (8 + offset)) for Q4_1.
void
expect_blocks_match (const GgufRun &run,
                     const GgufTensor &t,
                     const std::string &module,
                     int64_t n_head)
{
  SCOPED_TRACE (t.name);
  SlimTensor *w = ascend_tensor (run, module + ".weight");
  SlimTensor *s = ascend_tensor (run, module + ".weight_scale");
  SlimTensor *o = ascend_tensor (run, module + ".weight_offset");
  ASSERT_TRUE (w != nullptr && s != nullptr && o != nullptr);
  ASSERT_EQ (slim_tensor_get_dtype (w), SLIM_DTYPE_I8);
  int64_t n_out = slim_tensor_get_dim (w, 0), n_in = slim_tensor_get_dim (w, 1);
  ASSERT_EQ (t.ne.size (), 2u);
  ASSERT_EQ ((int64_t)t.ne[0], n_in);
  ASSERT_EQ ((int64_t)t.ne[1], n_out);
  int64_t n_groups = n_in / 32;
  ASSERT_EQ (slim_tensor_get_n_elements (s), n_out * n_groups);
  const int8_t *q = (const int8_t *)slim_tensor_get_data (w);
  const float *scale = (const float *)slim_tensor_get_data (s);
  const float *offset = (const float *)slim_tensor_get_data (o);
  std::vector<int64_t> perm
      = n_head > 0 ? reference_permutation (n_out, n_head) : std::vector<int64_t> ();
  uint64_t block = t.type == 8 ? 34 : t.type == 2 ? 18 : 20;
  const uint8_t *p = run.gguf.data (t);
  int mismatches = 0;
  for (int64_t r = 0; r < n_out; r++)
    {
      int64_t src = n_head > 0 ? perm[r] : r;
      for (int64_t g = 0; g < n_groups; g++, p += block)
        {
          float sc = scale[src * n_groups + g], off = offset[src * n_groups + g];
          const int8_t *codes = q + src * n_in + g * 32;
          EXPECT_EQ (block_half (p), f16_round (sc)) << r << " " << g;
          for (int j = 0; j < 32; j++)
            {
              int code;
              if (t.type == 8)
                code = (int8_t)p[2 + j];
              else
                {
                  const uint8_t *qs = p + (t.type == 2 ? 2 : 4);
                  code = (j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4)) - 8;
                }
              if (code != codes[j] && mismatches++ < 5)
                ADD_FAILURE () << "row " << r << " group " << g << " element " << j << ": " << code
                               << " vs " << (int)codes[j];
            }
          if (t.type == 3)
            EXPECT_EQ (block_half (p + 2), f16_round (-sc * (8.0f + off))) << r << " " << g;
          else
            EXPECT_EQ (off, 0.0f);
        }
    }
  EXPECT_EQ (mismatches, 0);
  slim_tensor_unref (w);
  slim_tensor_unref (s);
  slim_tensor_unref (o);
}

// A float GGUF tensor bit-equal to the ascendv1 tensor (rows permuted for
// q/k).
void
expect_float_match (const GgufRun &run,
                    const GgufTensor &t,
                    const std::string &hf_name,
                    int64_t n_head)
{
  SCOPED_TRACE (t.name);
  ASSERT_TRUE (t.type == 0u || t.type == 1u) << t.type;
  SlimTensor *a = ascend_tensor (run, hf_name);
  ASSERT_NE (a, nullptr);
  GError *error = nullptr;
  SlimTensor *f = slim_tensor_to_f32 (a, &error);
  ASSERT_NE (f, nullptr);
  int64_t n_rows = slim_tensor_get_dim (f, 0);
  int64_t n_cols = slim_tensor_get_n_dims (f) == 2 ? slim_tensor_get_dim (f, 1) : 1;
  ASSERT_EQ ((int64_t)t.ne[0], slim_tensor_get_n_dims (f) == 2 ? n_cols : n_rows);
  std::vector<int64_t> perm
      = n_head > 0 ? reference_permutation (n_rows, n_head) : std::vector<int64_t> ();
  const float *src = (const float *)slim_tensor_get_data (f);
  const float *dst = (const float *)run.gguf.data (t);
  std::vector<float> half = t.type == 1 ? run.gguf.dequantize (t) : std::vector<float> ();
  for (int64_t r = 0; r < n_rows; r++)
    {
      const float *from = src + (n_head > 0 ? perm[r] : r) * n_cols;
      if (t.type == 0)
        EXPECT_EQ (memcmp (dst + r * n_cols, from, (size_t)n_cols * 4), 0) << "row " << r;
      else
        for (int64_t c = 0; c < n_cols; c++)
          ASSERT_EQ (half[r * n_cols + c], f16_round (from[c])) << "row " << r << " col " << c;
    }
  slim_tensor_unref (f);
  slim_tensor_unref (a);
}

// Checks every tensor of a run against the ascendv1 output; returns the
// ggml type of each linear by GGUF name.
std::map<std::string, uint32_t>
check_tensors (const GgufRun &run, const std::string &model)
{
  int64_t n_layers = config_int (model, "num_hidden_layers");
  int64_t n_heads = config_int (model, "num_attention_heads");
  int64_t n_kv_heads = config_int (model, "num_key_value_heads");
  std::map<std::string, uint32_t> types;
  size_t expected = 2 + 9 * (size_t)n_layers; // token_embd, output_norm, 9 per layer
  for (int64_t l = 0; l < n_layers; l++)
    {
      std::string blk = "blk." + std::to_string (l) + ".";
      std::string hf = "model.layers." + std::to_string (l) + ".";
      for (const char *norm : { "attn_norm", "ffn_norm" })
        {
          const GgufTensor *t = run.gguf.find (blk + norm + ".weight");
          EXPECT_NE (t, nullptr) << blk << norm;
          if (t != nullptr)
            expect_float_match (run, *t,
                                hf
                                    + (strcmp (norm, "attn_norm") == 0 ? "input_layernorm"
                                                                       : "post_attention_layernorm")
                                    + ".weight",
                                0);
        }
      for (const LinearName &lin : kLinears)
        {
          const GgufTensor *t = run.gguf.find (blk + lin.gguf + ".weight");
          EXPECT_NE (t, nullptr) << blk << lin.gguf;
          if (t == nullptr)
            continue;
          int64_t heads = strcmp (lin.gguf, "attn_q") == 0   ? n_heads
                          : strcmp (lin.gguf, "attn_k") == 0 ? n_kv_heads
                                                             : 0;
          types[t->name] = t->type;
          if (t->type == 0 || t->type == 1)
            expect_float_match (run, *t, hf + lin.hf + ".weight", heads);
          else
            expect_blocks_match (run, *t, hf + lin.hf, heads);
        }
    }
  const GgufTensor *embd = run.gguf.find ("token_embd.weight");
  EXPECT_NE (embd, nullptr);
  if (embd != nullptr)
    expect_float_match (run, *embd, "model.embed_tokens.weight", 0);
  const GgufTensor *norm = run.gguf.find ("output_norm.weight");
  EXPECT_NE (norm, nullptr);
  if (norm != nullptr)
    expect_float_match (run, *norm, "model.norm.weight", 0);
  const GgufTensor *output = run.gguf.find ("output.weight");
  if (output != nullptr)
    {
      expected++;
      types["output.weight"] = output->type;
      if (output->type == 0 || output->type == 1)
        expect_float_match (run, *output, "lm_head.weight", 0);
      else
        expect_blocks_match (run, *output, "lm_head", 0);
    }
  EXPECT_EQ (run.gguf.tensors.size (), expected);
  return types;
}

void
expect_llama_metadata (const GgufFile &g, const std::string &model)
{
  EXPECT_EQ (g.get_s ("general.architecture"), "llama");
  EXPECT_EQ (g.get_u ("general.alignment"), 32u);
  EXPECT_EQ (g.get_u ("general.quantization_version"), 2u);
  EXPECT_EQ ((int64_t)g.get_u ("llama.block_count"), config_int (model, "num_hidden_layers"));
  EXPECT_EQ ((int64_t)g.get_u ("llama.embedding_length"), config_int (model, "hidden_size"));
  EXPECT_EQ ((int64_t)g.get_u ("llama.feed_forward_length"),
             config_int (model, "intermediate_size"));
  EXPECT_EQ ((int64_t)g.get_u ("llama.attention.head_count"),
             config_int (model, "num_attention_heads"));
  EXPECT_EQ ((int64_t)g.get_u ("llama.attention.head_count_kv"),
             config_int (model, "num_key_value_heads"));
  EXPECT_EQ ((int64_t)g.get_u ("llama.context_length"),
             config_int (model, "max_position_embeddings"));
  EXPECT_EQ ((int64_t)g.get_u ("llama.rope.dimension_count"), config_int (model, "head_dim"));
  EXPECT_EQ ((int64_t)g.get_u ("llama.vocab_size"), config_int (model, "vocab_size"));
  EXPECT_EQ (g.get_f ("llama.rope.freq_base"), 10000.0);
  JsonParser *parser = json_parser_new ();
  ASSERT_TRUE (json_parser_load_from_file (parser, (model + "/config.json").c_str (), nullptr));
  double eps = json_object_get_double_member (json_node_get_object (json_parser_get_root (parser)),
                                              "rms_norm_eps");
  g_object_unref (parser);
  EXPECT_EQ (g.get_f ("llama.attention.layer_norm_rms_epsilon"), (double)(float)eps);
}

// The pieces and scores of a SentencePiece model file (ModelProto field 1,
// SentencePiece {1: piece, 2: score, 3: type}): a minimal protobuf reader.
struct SpPiece
{
  std::string piece;
  float score = 0.0f;
  int type = 1;
};

uint64_t
varint (const std::string &b, size_t *i)
{
  uint64_t r = 0;
  for (int shift = 0; *i < b.size (); shift += 7)
    {
      uint8_t c = (uint8_t)b[(*i)++];
      r |= (uint64_t)(c & 0x7f) << shift;
      if (c < 0x80)
        break;
    }
  return r;
}

std::vector<SpPiece>
read_sentencepiece (const std::string &path)
{
  std::string b = read_text (path);
  std::vector<SpPiece> pieces;
  size_t i = 0;
  while (i < b.size ())
    {
      uint64_t key = varint (b, &i);
      int wire = key & 7;
      if (wire == 2)
        {
          size_t n = varint (b, &i);
          std::string sub = b.substr (i, n);
          i += n;
          if ((key >> 3) != 1)
            continue;
          SpPiece p;
          size_t j = 0;
          while (j < sub.size ())
            {
              uint64_t k = varint (sub, &j);
              if ((k & 7) == 2)
                {
                  size_t m = varint (sub, &j);
                  p.piece = sub.substr (j, m);
                  j += m;
                }
              else if ((k & 7) == 5)
                {
                  std::memcpy (&p.score, sub.data () + j, 4);
                  j += 4;
                }
              else if ((k & 7) == 0)
                p.type = (int)varint (sub, &j);
              else
                break;
            }
          pieces.push_back (p);
        }
      else if (wire == 0)
        varint (b, &i);
      else if (wire == 5)
        i += 4;
      else if (wire == 1)
        i += 8;
      else
        break;
    }
  return pieces;
}

} // namespace

// ---- the file layout and the permutation, without a model -----------------

TEST (GgufWriter, LayoutParsesBack)
{
  std::string path = slim_test_make_tmpdir () + "/t.gguf";
  GError *error = nullptr;
  SlimGgufWriter *w = slim_gguf_writer_new (path.c_str (), &error);
  ASSERT_NE (w, nullptr);
  slim_gguf_writer_set_string (w, "general.architecture", "llama");
  slim_gguf_writer_set_u32 (w, "a.u32", 7);
  slim_gguf_writer_set_i32 (w, "a.i32", -3);
  slim_gguf_writer_set_f32 (w, "a.f32", 0.25f);
  slim_gguf_writer_set_bool (w, "a.bool", TRUE);
  const char *strings[] = { "x", "", "\xe2\x96\x81t" };
  slim_gguf_writer_set_string_array (w, "a.strings", strings, 3);
  float floats[] = { -1.0f, 2.5f };
  slim_gguf_writer_set_f32_array (w, "a.floats", floats, 2);
  gint32 ints[] = { 1, -6 };
  slim_gguf_writer_set_i32_array (w, "a.ints", ints, 2);
  // a 3-element F32 vector (12 bytes: the next tensor needs padding)
  guint64 ne1[] = { 3 };
  float v[] = { 1.0f, 2.0f, 3.0f };
  ASSERT_TRUE (slim_gguf_writer_begin_tensor (w, "v", SLIM_GGML_TYPE_F32, 1, ne1, &error));
  ASSERT_TRUE (slim_gguf_writer_append (w, v, sizeof v, &error));
  guint64 ne2[] = { 32, 2 };
  guint8 blocks[2 * 34] = { 0 };
  for (int k = 0; k < 68; k++)
    blocks[k] = (guint8)k;
  ASSERT_TRUE (slim_gguf_writer_begin_tensor (w, "q", SLIM_GGML_TYPE_Q8_0, 2, ne2, &error));
  ASSERT_TRUE (slim_gguf_writer_append (w, blocks, 34, &error));
  ASSERT_TRUE (slim_gguf_writer_append (w, blocks + 34, 34, &error));
  ASSERT_TRUE (slim_gguf_writer_finish (w, &error)) << error->message;
  slim_gguf_writer_free (w);

  GgufFile g;
  std::string message;
  ASSERT_TRUE (slim_test::gguf_read (path, &g, &message)) << message;
  EXPECT_EQ (g.version, 3u);
  EXPECT_EQ (g.get_s ("general.architecture"), "llama");
  EXPECT_EQ (g.get_u ("a.u32"), 7u);
  EXPECT_EQ (g.kv["a.i32"].i.at (0), -3);
  EXPECT_EQ (g.get_f ("a.f32"), 0.25);
  EXPECT_EQ (g.kv["a.bool"].type, 7u);
  EXPECT_EQ (g.get_u ("a.bool"), 1u);
  EXPECT_EQ (g.kv["a.strings"].s, (std::vector<std::string>{ "x", "", "\xe2\x96\x81t" }));
  EXPECT_EQ (g.kv["a.floats"].f, (std::vector<double>{ -1.0, 2.5 }));
  EXPECT_EQ (g.kv["a.ints"].i, (std::vector<int64_t>{ 1, -6 }));
  EXPECT_EQ (g.get_u ("general.alignment"), 32u); // added at finish
  ASSERT_EQ (g.tensors.size (), 2u);
  EXPECT_EQ (g.tensors[0].offset, 0u);
  EXPECT_EQ (g.tensors[1].offset, 32u); // 12 bytes padded to the alignment
  EXPECT_EQ (g.data_start % 32, 0u);
  EXPECT_EQ (memcmp (g.data (g.tensors[0]), v, sizeof v), 0);
  EXPECT_EQ (memcmp (g.data (g.tensors[1]), blocks, sizeof blocks), 0);
  EXPECT_EQ (g.bytes.size (), g.data_start + 32 + sizeof blocks);
  // no partial files are left
  EXPECT_FALSE (g_file_test ((path + ".partial").c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test ((path + ".data-partial").c_str (), G_FILE_TEST_EXISTS));
}

TEST (GgufWriter, RefusesBadTensors)
{
  std::string path = slim_test_make_tmpdir () + "/t.gguf";
  GError *error = nullptr;
  SlimGgufWriter *w = slim_gguf_writer_new (path.c_str (), &error);
  ASSERT_NE (w, nullptr);
  guint64 ne[] = { 48, 2 }; // 48 is not whole blocks of 32
  EXPECT_FALSE (slim_gguf_writer_begin_tensor (w, "x", SLIM_GGML_TYPE_Q4_0, 2, ne, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("x: 2 dims with ne[0] = 48"), std::string::npos)
      << error->message;
  g_clear_error (&error);
  std::string long_name (64, 'n');
  guint64 ne1[] = { 4 };
  EXPECT_FALSE (
      slim_gguf_writer_begin_tensor (w, long_name.c_str (), SLIM_GGML_TYPE_F32, 1, ne1, &error));
  g_clear_error (&error);
  ASSERT_TRUE (slim_gguf_writer_begin_tensor (w, "y", SLIM_GGML_TYPE_F32, 1, ne1, &error));
  float four[5] = { 0 };
  EXPECT_FALSE (slim_gguf_writer_append (w, four, 5 * 4, &error)); // past its 16 bytes
  g_clear_error (&error);
  ASSERT_TRUE (slim_gguf_writer_append (w, four, 8, &error));
  EXPECT_FALSE (slim_gguf_writer_finish (w, &error)); // y got 8 of 16 bytes
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("got 8 bytes of 16"), std::string::npos)
      << error->message;
  g_clear_error (&error);
  slim_gguf_writer_free (w);
  // an unfinished writer leaves nothing behind
  EXPECT_FALSE (g_file_test (path.c_str (), G_FILE_TEST_EXISTS));
  EXPECT_FALSE (g_file_test ((path + ".data-partial").c_str (), G_FILE_TEST_EXISTS));
}

TEST (GgufLlama, PermutationIsConvertHfToGguf)
{
  for (auto shape : { std::pair<int64_t, int64_t>{ 64, 8 }, { 32, 4 }, { 64, 4 }, { 12, 3 } })
    {
      std::vector<int64_t> ref = reference_permutation (shape.first, shape.second);
      std::vector<int> seen (shape.first, 0);
      for (int64_t r = 0; r < shape.first; r++)
        {
          int64_t src = slim_gguf_llama_permuted_row (r, shape.first, shape.second);
          EXPECT_EQ (src, ref[r]) << shape.first << "/" << shape.second << " row " << r;
          seen[src]++;
        }
      for (int64_t r = 0; r < shape.first; r++)
        EXPECT_EQ (seen[r], 1); // a bijection
    }
}

TEST (GgufLlama, TensorNames)
{
  auto name = [] (const char *hf) {
    char *n = slim_gguf_llama_tensor_name (hf);
    std::string s = n != nullptr ? n : "(null)";
    g_free (n);
    return s;
  };
  EXPECT_EQ (name ("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ (name ("model.norm.weight"), "output_norm.weight");
  EXPECT_EQ (name ("lm_head.weight"), "output.weight");
  EXPECT_EQ (name ("model.layers.12.self_attn.o_proj.weight"), "blk.12.attn_output.weight");
  EXPECT_EQ (name ("model.layers.0.post_attention_layernorm.weight"), "blk.0.ffn_norm.weight");
  EXPECT_EQ (name ("model.layers.3.mlp.down_proj.weight"), "blk.3.ffn_down.weight");
  EXPECT_EQ (name ("model.layers.3.self_attn.k_proj.bias"), "blk.3.attn_k.bias");
  EXPECT_EQ (name ("model.layers.x.mlp.down_proj.weight"), "(null)");
  EXPECT_EQ (name ("model.layers.0.self_attn.q_norm.weight"), "(null)");
}

// ---- stories260K and the untied synthetic llama, end to end --------------

TEST (GgufSaver, StoriesQ8_0MatchesAscendv1)
{
  GgufRun run;
  std::string model = quant_stories_model ();
  ASSERT_NO_FATAL_FAILURE (quantize (model, quant_example ("dense-w8a16-gguf.yaml"), &run));
  expect_llama_metadata (run.gguf, model);
  EXPECT_EQ (run.gguf.get_u ("general.file_type"), 7u); // MOSTLY_Q8_0
  std::map<std::string, uint32_t> types = check_tensors (run, model);
  EXPECT_EQ (types.count ("output.weight"), 0u); // tied, float: token_embd is the output
  EXPECT_EQ (types["blk.0.attn_q.weight"], 8u);
  EXPECT_EQ (types["blk.4.ffn_up.weight"], 8u);
  EXPECT_EQ (types["blk.2.ffn_down.weight"], 0u); // 172 inputs: left float by the example
}

TEST (GgufSaver, StoriesQ4_0AndQ4_1MatchAscendv1)
{
  std::string model = quant_stories_model ();
  {
    GgufRun run;
    ASSERT_NO_FATAL_FAILURE (quantize (model, quant_example ("dense-w4a16-gguf.yaml"), &run));
    EXPECT_EQ (run.gguf.get_u ("general.file_type"), 2u); // MOSTLY_Q4_0
    std::map<std::string, uint32_t> types = check_tensors (run, model);
    EXPECT_EQ (types["blk.1.attn_k.weight"], 2u);
  }
  {
    std::string yaml = read_text (quant_example ("dense-w4a16-gguf.yaml"));
    size_t pos = yaml.find ("symmetric: True");
    ASSERT_NE (pos, std::string::npos);
    yaml.replace (pos, strlen ("symmetric: True"), "symmetric: False");
    std::string config = slim_test_make_tmpdir () + "/asym.yaml";
    quant_write_file (config, yaml);
    GgufRun run;
    ASSERT_NO_FATAL_FAILURE (quantize (model, config, &run));
    EXPECT_EQ (run.gguf.get_u ("general.file_type"), 3u); // MOSTLY_Q4_1
    std::map<std::string, uint32_t> types = check_tensors (run, model);
    EXPECT_EQ (types["blk.3.attn_v.weight"], 3u);
  }
}

TEST (GgufSaver, UntiedLlamaWritesDownProjAndOutput)
{
  // intermediate 128: down_proj is Q8_0 too; the untied lm_head (which
  // linear_quant leaves float) is written as output.weight, F32
  std::string model = slim_test_shared_path ("models/synthetic/tiny-random-llama-untied");
  std::string yaml = read_text (quant_example ("dense-w8a16-gguf.yaml"));
  size_t pos = yaml.find ("      exclude: [\"*down_proj*\"]\n");
  ASSERT_NE (pos, std::string::npos);
  yaml.erase (pos, strlen ("      exclude: [\"*down_proj*\"]\n"));
  std::string config = slim_test_make_tmpdir () + "/all.yaml";
  quant_write_file (config, yaml);
  GgufRun run;
  ASSERT_NO_FATAL_FAILURE (quantize (model, config, &run));
  expect_llama_metadata (run.gguf, model);
  std::map<std::string, uint32_t> types = check_tensors (run, model);
  EXPECT_EQ (types["blk.1.ffn_down.weight"], 8u);
  ASSERT_EQ (types.count ("output.weight"), 1u);
  EXPECT_EQ (types["output.weight"], 0u);
}

TEST (GgufSaver, FloatTypeF16)
{
  // float_type: f16 stores the embedding and the float linears as F16
  // (each value rounded to half); norms stay F32
  std::string yaml = read_text (quant_example ("dense-w8a16-gguf.yaml"));
  const std::string entry = "    - type: \"gguf\"\n";
  size_t pos = yaml.find (entry);
  ASSERT_NE (pos, std::string::npos);
  yaml.insert (pos + entry.size (), "      float_type: f16\n");
  std::string config = slim_test_make_tmpdir () + "/f16.yaml";
  quant_write_file (config, yaml);
  GgufRun run;
  std::string model = quant_stories_model ();
  ASSERT_NO_FATAL_FAILURE (quantize (model, config, &run));
  std::map<std::string, uint32_t> types = check_tensors (run, model);
  EXPECT_EQ (types["blk.0.ffn_down.weight"], 1u);
  EXPECT_EQ (types["blk.0.attn_q.weight"], 8u);
  EXPECT_EQ (run.gguf.find ("token_embd.weight")->type, 1u);
  EXPECT_EQ (run.gguf.find ("blk.0.attn_norm.weight")->type, 0u);
}

TEST (GgufSaver, KilledRunsResumeToTheSameBytes)
{
  // killed after layers 1 and 3, resumed twice: the folder (model.gguf
  // included) is byte-identical to an uninterrupted run's
  std::string tmp = slim_test_make_tmpdir ();
  std::string model = quant_stories_model ();
  std::string config = quant_example ("dense-w4a16-gguf.yaml");
  auto args = [&] (const std::string &save, bool resume) {
    std::vector<std::string> a
        = { "--model_path", model, "--save_path", save, "--config_path", config };
    if (resume)
      a.push_back ("--resume");
    return a;
  };
  QuantChild ref = quant_cli (args (tmp + "/ref", false));
  ASSERT_EQ (ref.exit_code, 0) << ref.err;
  std::vector<std::string> kills = { "1", "3" };
  for (size_t k = 0; k < kills.size (); k++)
    {
      QuantChildOptions kill;
      kill.env.push_back ({ "SLIMFLOW_TEST_KILL_AFTER_LAYER", kills[k] });
      QuantChild killed = quant_cli (args (tmp + "/out", k > 0), kill);
      ASSERT_EQ (killed.term_signal, SIGKILL) << "kill " << k << ": " << killed.err;
    }
  QuantChild resumed = quant_cli (args (tmp + "/out", true));
  ASSERT_EQ (resumed.exit_code, 0) << resumed.err;
  EXPECT_NE (resumed.err.find ("resuming"), std::string::npos) << resumed.err;
  std::map<std::string, std::string> a = quant_folder_digests (tmp + "/ref");
  EXPECT_EQ (a.count ("model.gguf"), 1u);
  EXPECT_EQ (a, quant_folder_digests (tmp + "/out"));
  EXPECT_FALSE (g_file_test ((tmp + "/out.slimflow-work").c_str (), G_FILE_TEST_EXISTS));
}

TEST (GgufSaver, VocabularyIsTheModelsTokenizer)
{
  GgufRun run;
  std::string model = quant_stories_model ();
  ASSERT_NO_FATAL_FAILURE (quantize (model, quant_example ("dense-w8a16-gguf.yaml"), &run));
  const GgufFile &g = run.gguf;
  EXPECT_EQ (g.get_s ("tokenizer.ggml.model"), "llama");
  EXPECT_EQ (g.get_u ("tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ (g.get_u ("tokenizer.ggml.eos_token_id"), 2u);
  EXPECT_EQ (g.get_u ("tokenizer.ggml.unknown_token_id"), 0u);
  EXPECT_EQ (g.get_u ("tokenizer.ggml.add_bos_token"), 1u);
  EXPECT_EQ (g.get_u ("tokenizer.ggml.add_eos_token"), 0u);
  EXPECT_EQ (g.get_u ("tokenizer.ggml.add_space_prefix"), 1u);
  const std::vector<std::string> &tokens = g.kv.at ("tokenizer.ggml.tokens").s;
  const std::vector<double> &scores = g.kv.at ("tokenizer.ggml.scores").f;
  const std::vector<int64_t> &types = g.kv.at ("tokenizer.ggml.token_type").i;
  ASSERT_EQ (tokens.size (), 512u);
  ASSERT_EQ (scores.size (), 512u);
  ASSERT_EQ (types.size (), 512u);

  // the pieces and types are tokenizer.model's (SentencePiece types:
  // 1 normal, 2 unknown, 3 control, 6 byte, as GGUF numbers them)
  std::vector<SpPiece> sp = read_sentencepiece (model + "/tokenizer.model");
  ASSERT_EQ (sp.size (), 512u);
  for (size_t id = 0; id < 512; id++)
    {
      EXPECT_EQ (tokens[id], sp[id].piece) << id;
      EXPECT_EQ (types[id], sp[id].type) << id;
    }
  // merge order: for every two normal pieces a merge produces (score
  // above the unmerged ones), the GGUF scores order them as
  // tokenizer.model does
  std::vector<size_t> merged;
  for (size_t id = 0; id < 512; id++)
    if (types[id] == 1 && scores[id] > -(double)512)
      merged.push_back (id);
  EXPECT_GT (merged.size (), 100u);
  int disagreements = 0;
  for (size_t a : merged)
    for (size_t b : merged)
      if (a != b && (scores[a] > scores[b]) != (sp[a].score > sp[b].score))
        disagreements++;
  EXPECT_EQ (disagreements, 0);
}

// ---- bad inputs --------------------------------------------------------------

namespace
{

// `slimflow quant` of config (YAML text) on model; expects exit status 1
// (the saver refuses during the run) or 2 and an error containing every
// fragment.
void
expect_refused (const std::string &model,
                const std::string &yaml,
                const std::vector<std::string> &fragments)
{
  std::string tmp = slim_test_make_tmpdir ();
  quant_write_file (tmp + "/c.yaml", yaml);
  std::vector<std::string> args
      = { "--model_path", model, "--save_path", tmp + "/out", "--config_path", tmp + "/c.yaml" };
  args.insert (args.end (), kFastCalib.begin (), kFastCalib.end ());
  QuantChild child = quant_cli (args);
  EXPECT_TRUE (child.exit_code == 1 || child.exit_code == 2) << child.exit_code << child.err;
  for (const std::string &f : fragments)
    EXPECT_NE (child.err.find (f), std::string::npos) << "missing '" << f << "' in:\n" << child.err;
  EXPECT_FALSE (g_file_test ((tmp + "/out").c_str (), G_FILE_TEST_EXISTS));
}

std::string
gguf_yaml (const std::string &weight, const std::string &act = "")
{
  return "apiversion: modelslim_v1\nspec:\n  process:\n    - type: linear_quant\n"
         "      qconfig:\n"
         + act + "        weight: " + weight
         + "\n      include: [\"*\"]\n      exclude: [\"*down_proj*\"]\n"
           "  save:\n    - type: gguf\n";
}

} // namespace

TEST (GgufSaver, RefusesSchemesWithoutGgufType)
{
  std::string model = quant_stories_model ();
  expect_refused (model,
                  gguf_yaml ("{scope: per_channel, dtype: int8, symmetric: True, method: minmax}"),
                  { "model.layers.0.self_attn.q_proj", "int8 per_channel sym", "no GGUF type",
                    "group_size 32" });
  expect_refused (model,
                  gguf_yaml ("{scope: per_group, dtype: int4, symmetric: True, method: minmax, "
                             "ext: {group_size: 64}}"),
                  { "model.layers.0.self_attn.q_proj", "group_size 64", "no GGUF type" });
  expect_refused (model,
                  gguf_yaml ("{scope: per_group, dtype: int8, symmetric: False, method: minmax, "
                             "ext: {group_size: 32}}"),
                  { "model.layers.0.self_attn.q_proj", "int8 per_group asym", "Q8_0" });
  expect_refused (
      model,
      gguf_yaml ("{scope: per_channel, dtype: int8, symmetric: True, method: minmax}",
                 "        act: {scope: per_token, dtype: int8, symmetric: True, method: minmax}\n"),
      { "model.layers.0.self_attn.q_proj", "W8A8_DYNAMIC", "weight-only" });
}

// linear_type q4_k / q6_k needs linear inputs that are multiples of 256:
// stories260K's 64 are refused naming the first linear written float.
TEST (GgufSaver, RefusesKQuantsOfNarrowLinears)
{
  for (const char *type : { "q4_k", "q6_k" })
    expect_refused (quant_stories_model (),
                    std::string ("apiversion: modelslim_v1\nspec:\n  process: []\n  save:\n"
                                 "    - type: gguf\n      linear_type: ")
                        + type + "\n",
                    { "model.layers.0.self_attn.q_proj.weight has 64 input features",
                      std::string ("not a multiple of ") + (type[1] == '4' ? "Q4_K" : "Q6_K")
                          + "'s super-block of 256" });
}

// ---- byte-level BPE -----------------------------------------------------------

namespace
{

using slim_test::BpeRegex;
using slim_test::BpeTokenizer;

BpeTokenizer
train_bpe (BpeRegex regex)
{
  return slim_test::bpe_test_tokenizer (regex);
}

std::string
bpe_model (const BpeTokenizer &tok)
{
  return slim_test::bpe_test_model (tok, slim_test_make_tmpdir () + "/bpe-qwen2");
}

} // namespace

// slimflow's tokenizer reads the fixture's tokenizer.json and encodes the
// TinyStories excerpt and a stress text (contractions, digits, runs of
// spaces and newlines, tabs, CJK, an emoji) to exactly the ids of the
// fixture's reference encoder (GRegex words, merges applied rank by rank,
// independent of slimflow's priority-queue merge), BOS first; decoding
// gives the text back.
TEST (BpeFixture, SlimflowTokenizerMatchesTheReferenceEncoder)
{
  gchar *excerpt = nullptr;
  ASSERT_TRUE (g_file_get_contents (
      slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt").c_str (), &excerpt, nullptr,
      nullptr));
  std::string text = excerpt;
  g_free (excerpt);
  for (BpeRegex regex : { BpeRegex::Gpt2, BpeRegex::Qwen2, BpeRegex::Llama3 })
    {
      BpeTokenizer tok = train_bpe (regex);
      ASSERT_EQ (tok.vocab.size (), 512u);
      ASSERT_EQ (tok.merges.size (), 251u);
      std::string dir = slim_test_make_tmpdir ();
      tok.write (dir);
      GError *error = nullptr;
      SlimTokenizer *t = slim_tokenizer_new_from_dir (dir.c_str (), &error);
      ASSERT_NE (t, nullptr) << error->message;
      EXPECT_EQ (slim_tokenizer_get_kind (t), SLIM_TOKENIZER_BYTE_LEVEL_BPE);
      EXPECT_EQ (slim_tokenizer_get_vocab_size (t), 512);
      EXPECT_EQ (slim_tokenizer_get_n_merges (t), 251);
      EXPECT_EQ (slim_tokenizer_get_bos_id (t), 507);
      EXPECT_EQ (slim_tokenizer_get_eos_id (t), 509);
      EXPECT_EQ (slim_tokenizer_get_pad_id (t), 510);
      for (const std::string &s : { text, std::string (slim_test::kBpeStressText) })
        {
          GArray *ids = slim_tokenizer_encode (t, s.c_str (), TRUE, &error);
          ASSERT_NE (ids, nullptr) << error->message;
          std::vector<int32_t> expect = tok.encode (s);
          expect.insert (expect.begin (), 507);
          std::vector<int32_t> got ((gint32 *)ids->data, (gint32 *)ids->data + ids->len);
          EXPECT_EQ (got, expect) << "regex " << (int)regex;
          // the merges compress: 251 merges give about 1.6 bytes per token
          if (s == text)
            {
              EXPECT_LT (got.size (), s.size () * 7 / 10) << got.size ();
              std::printf ("regex %d: excerpt %zu bytes -> %zu tokens\n", (int)regex, s.size (),
                           got.size ());
            }
          char *back = slim_tokenizer_decode (t, got.data () + 1, got.size () - 1, TRUE);
          EXPECT_EQ (std::string (back), s);
          g_free (back);
          g_array_unref (ids);
        }
      g_object_unref (t);
    }
}

// The GGUF vocabulary keys of a byte-level model are tokenizer.json's, as
// convert_hf_to_gguf.py writes them; the pre-tokenizer is picked from
// the split regex.
TEST (GgufSaver, ByteLevelVocabularyIsTheModelsTokenizer)
{
  const std::pair<BpeRegex, const char *> cases[] = { { BpeRegex::Gpt2, "gpt-2" },
                                                      { BpeRegex::Qwen2, "qwen2" },
                                                      { BpeRegex::Llama3, "llama-bpe" } };
  for (const auto &c : cases)
    {
      BpeTokenizer tok = train_bpe (c.first);
      std::string model = bpe_model (tok);
      std::string tmp = slim_test_make_tmpdir ();
      quant_write_file (
          tmp + "/c.yaml",
          "apiversion: modelslim_v1\nspec:\n  process: []\n  save:\n    - type: gguf\n");
      QuantChild q = quant_cli (
          { "--model_path", model, "--save_path", tmp + "/out", "--config_path", tmp + "/c.yaml" });
      ASSERT_EQ (q.exit_code, 0) << q.err;
      GgufFile g;
      std::string why;
      ASSERT_TRUE (slim_test::gguf_read (tmp + "/out/model.gguf", &g, &why)) << why;
      EXPECT_EQ (g.get_s ("general.architecture"), "qwen2");
      EXPECT_EQ (g.get_s ("tokenizer.ggml.model"), "gpt2");
      EXPECT_EQ (g.get_s ("tokenizer.ggml.pre"), c.second);
      EXPECT_EQ (g.get_u ("tokenizer.ggml.bos_token_id"), 507u);
      EXPECT_EQ (g.get_u ("tokenizer.ggml.eos_token_id"), 509u);
      EXPECT_EQ (g.get_u ("tokenizer.ggml.padding_token_id"), 510u);
      EXPECT_EQ (g.get_u ("tokenizer.ggml.add_bos_token"), 1u);
      EXPECT_EQ (g.get_u ("tokenizer.ggml.add_eos_token"), 0u);
      // no unknown token, no SentencePiece keys
      EXPECT_EQ (g.kv.count ("tokenizer.ggml.unknown_token_id"), 0u);
      EXPECT_EQ (g.kv.count ("tokenizer.ggml.scores"), 0u);
      EXPECT_EQ (g.kv.count ("tokenizer.ggml.add_space_prefix"), 0u);
      const std::vector<std::string> &tokens = g.kv.at ("tokenizer.ggml.tokens").s;
      const std::vector<int64_t> &types = g.kv.at ("tokenizer.ggml.token_type").i;
      const std::vector<std::string> &merges = g.kv.at ("tokenizer.ggml.merges").s;
      ASSERT_EQ (tokens.size (), 512u);
      ASSERT_EQ (types.size (), 512u);
      ASSERT_EQ (merges.size (), tok.merges.size ());
      for (size_t id = 0; id < 512; id++)
        {
          EXPECT_EQ (tokens[id], tok.vocab[id]) << id;
          // 1 normal, 3 control (the special added tokens), 4 user defined
          int64_t expect = id < 507 ? 1 : (tok.vocab[id] == "<tool>" ? 4 : 3);
          EXPECT_EQ (types[id], expect) << id;
        }
      for (size_t r = 0; r < merges.size (); r++)
        EXPECT_EQ (merges[r],
                   tok.vocab[tok.merges[r].first] + " " + tok.vocab[tok.merges[r].second])
            << r;
    }
}

TEST (GgufSaver, RefusesTokenizersGgufCannotExpressAndOtherArchitectures)
{
  const std::string w8 = gguf_yaml ("{scope: per_group, dtype: int8, symmetric: True, method: "
                                    "minmax, ext: {group_size: 32}}");
  // WordPiece and Unigram tokenizer.json: the type is named
  for (const char *type : { "WordPiece", "Unigram" })
    {
      std::string model = slim_test_make_tmpdir ();
      std::string stories = quant_stories_model ();
      for (const char *f : { "config.json", "model.safetensors" })
        ASSERT_EQ (symlink ((stories + "/" + f).c_str (), (model + "/" + f).c_str ()), 0);
      quant_write_file (model + "/tokenizer.json", std::string ("{\"model\":{\"type\":\"") + type
                                                       + "\",\"vocab\":{\"[UNK]\":0,\"a\":1}}}");
      expect_refused (model, w8,
                      { "gguf_saver embeds the model's tokenizer",
                        std::string ("unsupported model type \"") + type + "\"" });
    }
  BpeTokenizer tok = train_bpe (BpeRegex::Qwen2);
  // a split regex no llama.cpp pre-tokenizer applies (Qwen2's with digit
  // runs): refused naming it, never guessed
  {
    std::string model = bpe_model (tok);
    gchar *json = nullptr;
    ASSERT_TRUE (
        g_file_get_contents ((model + "/tokenizer.json").c_str (), &json, nullptr, nullptr));
    std::string s = json;
    g_free (json);
    const std::string from = "|\\\\p{N}|", to = "|\\\\p{N}+|";
    ASSERT_NE (s.find (from), std::string::npos);
    s.replace (s.find (from), from.size (), to);
    quant_write_file (model + "/tokenizer.json", s);
    expect_refused (
        model, w8,
        { "pre-tokenizer regex /(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
          "\\p{N}+|",
          "gpt-2, qwen2, llama-bpe", "tokenizer.ggml.pre" });
  }
  // Qwen2's regex with model.ignore_merges true (llama.cpp's qwen2 merges)
  {
    BpeTokenizer t2 = tok;
    std::string model = bpe_model (t2);
    gchar *json = nullptr;
    ASSERT_TRUE (
        g_file_get_contents ((model + "/tokenizer.json").c_str (), &json, nullptr, nullptr));
    std::string s = json;
    g_free (json);
    const std::string from = "\"ignore_merges\":false";
    ASSERT_NE (s.find (from), std::string::npos) << s.substr (0, 400);
    s.replace (s.find (from), from.size (), "\"ignore_merges\":true");
    quant_write_file (model + "/tokenizer.json", s);
    expect_refused (model, w8, { "\"qwen2\"", "model.ignore_merges is true" });
  }
  // a Digits pre-tokenizer before the byte level: not one regex
  {
    std::string model = bpe_model (tok);
    gchar *json = nullptr;
    ASSERT_TRUE (
        g_file_get_contents ((model + "/tokenizer.json").c_str (), &json, nullptr, nullptr));
    std::string s = json;
    g_free (json);
    const std::string from = "\"pretokenizers\":[";
    ASSERT_NE (s.find (from), std::string::npos);
    s.insert (s.find (from) + from.size (), "{\"type\":\"Digits\",\"individual_digits\":true},");
    quant_write_file (model + "/tokenizer.json", s);
    expect_refused (model, w8, { "a Digits pre-tokenizer", "can be exported" });
  }
  // a mixture-of-experts qwen2: neither of the architectures written
  expect_refused (slim_test_shared_path ("models/synthetic/tiny-random-qwen2-moe"), w8,
                  { "model_type \"qwen2_moe\"", "\"llama\" and \"qwen2\"" });
}
