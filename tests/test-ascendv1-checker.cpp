// SPDX-License-Identifier: Apache-2.0
//
// test-ascendv1-checker.cpp: the ascendv1 folder checker accepts small
// hand-made folders that follow modelslim-v1-spec.md 3.1 and reports each
// kind of deviation. The good folder's derived tensors are made with the
// shared numerics (slim-qparams, slim-pack), whose own exact formulas are
// tested in test-quant-math.cpp.
#include "ascendv1-checker.hpp"
#include "slim-test.h"

extern "C"
{
#include "slim-pack.h"
#include "slim-qparams.h"
#include "slim-safetensors.h"
#include "slim-tensor.h"
}

#include <json-glib/json-glib.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>

namespace
{

struct Entry
{
  SlimTensor *tensor;
  std::string label;
};

// A quantized model folder under construction: tensors with labels, the
// description's global keys and config.json.
class Folder
{
public:
  ~Folder ()
  {
    for (auto &kv : entries_)
      slim_tensor_unref (kv.second.tensor);
  }

  std::string model_quant_type = "W8A8";
  std::string version = "1.0.0";
  int64_t group_size = 0;
  int indent = 4;
  bool config_has_quantization_config = false;
  std::vector<std::string> extra_labels; // labels without tensors ("FLOAT")

  void
  add (SlimTensor *t, const std::string &label)
  {
    std::string name = slim_tensor_get_name (t);
    auto it = entries_.find (name);
    if (it != entries_.end ())
      slim_tensor_unref (it->second.tensor);
    entries_[name] = { t, label };
  }
  void
  remove (const std::string &name)
  {
    slim_tensor_unref (entries_.at (name).tensor);
    entries_.erase (name);
  }
  void
  unlabel (const std::string &name)
  {
    unlabeled_.insert (name);
  }
  template <typename T>
  T *
  data (const std::string &name)
  {
    return static_cast<T *> (slim_tensor_get_data_mut (entries_.at (name).tensor));
  }

  void
  write (const std::string &dir, uint64_t shard_bytes = 0) const
  {
    GError *error = nullptr;
    if (shard_bytes == 0)
      {
        std::vector<SlimTensor *> ts;
        for (const auto &kv : entries_)
          ts.push_back (kv.second.tensor);
        ASSERT_TRUE (
            slim_safetensors_write_file ((dir + "/quant_model_weights.safetensors").c_str (),
                                         ts.data (), (guint)ts.size (), nullptr, &error))
            << error->message;
      }
    else
      {
        SlimSafetensorsWriter *w = slim_safetensors_writer_new (dir.c_str (), "quant_model_weights",
                                                                shard_bytes, &error);
        ASSERT_NE (w, nullptr) << error->message;
        for (const auto &kv : entries_)
          ASSERT_TRUE (slim_safetensors_writer_add (w, kv.second.tensor, &error)) << error->message;
        ASSERT_TRUE (slim_safetensors_writer_finish (w, &error)) << error->message;
        g_object_unref (w);
      }

    JsonBuilder *b = json_builder_new ();
    json_builder_begin_object (b);
    for (const auto &kv : entries_)
      if (!unlabeled_.count (kv.first))
        {
          json_builder_set_member_name (b, kv.first.c_str ());
          json_builder_add_string_value (b, kv.second.label.c_str ());
        }
    for (const std::string &n : extra_labels)
      {
        json_builder_set_member_name (b, n.c_str ());
        json_builder_add_string_value (b, "FLOAT");
      }
    json_builder_set_member_name (b, "version");
    json_builder_add_string_value (b, version.c_str ());
    json_builder_set_member_name (b, "model_quant_type");
    json_builder_add_string_value (b, model_quant_type.c_str ());
    json_builder_set_member_name (b, "metadata");
    json_builder_begin_object (b);
    json_builder_end_object (b);
    json_builder_set_member_name (b, "group_size");
    json_builder_add_int_value (b, group_size);
    json_builder_set_member_name (b, "optional");
    json_builder_begin_object (b);
    json_builder_end_object (b);
    json_builder_end_object (b);
    write_json (dir + "/quant_model_description.json", json_builder_get_root (b), indent);
    g_object_unref (b);

    std::string config = "{\n    \"architectures\": [\"LlamaForCausalLM\"],\n"
                         "    \"model_type\": \"llama\"";
    if (config_has_quantization_config)
      config += ",\n    \"quantization_config\": {\"quant_method\": \"x\"}";
    config += "\n}\n";
    std::ofstream (dir + "/config.json") << config;
  }

private:
  std::map<std::string, Entry> entries_;
  std::set<std::string> unlabeled_;

  static void
  write_json (const std::string &path, JsonNode *root, int indent)
  {
    JsonGenerator *gen = json_generator_new ();
    json_generator_set_root (gen, root);
    json_generator_set_pretty (gen, TRUE);
    json_generator_set_indent (gen, (guint)indent);
    GError *error = nullptr;
    EXPECT_TRUE (json_generator_to_file (gen, path.c_str (), &error));
    g_clear_error (&error);
    json_node_unref (root);
    g_object_unref (gen);
  }
};

SlimTensor *
tensor_2d (const std::string &name, SlimDType dtype, int64_t rows, int64_t cols)
{
  return slim_tensor_new_2d (name.c_str (), dtype, rows, cols);
}

SlimTensor *
tensor_1d (const std::string &name, SlimDType dtype, int64_t n)
{
  return slim_tensor_new_1d (name.c_str (), dtype, n);
}

template <typename T>
T *
mut (SlimTensor *t)
{
  return static_cast<T *> (slim_tensor_get_data_mut (t));
}

std::vector<float>
random_weights (size_t n, unsigned seed)
{
  std::mt19937 rng (seed);
  std::normal_distribution<float> d (0.0f, 0.3f);
  std::vector<float> w (n);
  for (auto &v : w)
    v = d (rng);
  return w;
}

SlimQParamsConfig
cfg_of (SlimQDtype dtype, bool sym)
{
  SlimQParamsConfig cfg;
  EXPECT_TRUE (slim_qparams_config_init (&cfg, dtype, sym, 0, nullptr));
  return cfg;
}

// W8A8 static: per-channel sym int8 weight, per-tensor asym activation.
void
add_w8a8 (Folder &f, const std::string &m, int64_t n_out, int64_t n_in, bool with_bias)
{
  SlimQParamsConfig cfg = cfg_of (SLIM_QDTYPE_INT8, true);
  std::vector<float> w = random_weights (n_out * n_in, 1);
  std::vector<float> ws (n_out), wo (n_out), deq (n_out);
  SlimTensor *wt = tensor_2d (m + ".weight", SLIM_DTYPE_I8, n_out, n_in);
  ASSERT_TRUE (slim_quantize_weight (&cfg, SLIM_QSCOPE_PER_CHANNEL, w.data (), n_out, n_in, 0,
                                     ws.data (), wo.data (), mut<gint8> (wt), nullptr));
  const float input_scale = 0.05f, input_offset = -3.0f;
  slim_deq_scale_compute (input_scale, ws.data (), n_out, deq.data ());
  std::vector<float> bias = random_weights (n_out, 2);
  SlimTensor *qb = tensor_1d (m + ".quant_bias", SLIM_DTYPE_I32, n_out);
  ASSERT_TRUE (slim_quant_bias_compute (with_bias ? bias.data () : nullptr, deq.data (),
                                        input_offset, mut<gint8> (wt), n_out, n_in,
                                        mut<gint32> (qb), nullptr));
  SlimTensor *dq = tensor_1d (m + ".deq_scale", SLIM_DTYPE_I64, n_out);
  for (int64_t n = 0; n < n_out; n++)
    mut<gint64> (dq)[n] = slim_deq_scale_to_int64 (deq[n]);
  SlimTensor *is = tensor_1d (m + ".input_scale", SLIM_DTYPE_F32, 1);
  mut<float> (is)[0] = input_scale;
  SlimTensor *io = tensor_1d (m + ".input_offset", SLIM_DTYPE_F32, 1);
  mut<float> (io)[0] = input_offset;
  for (SlimTensor *t : { wt, qb, dq, is, io })
    f.add (t, "W8A8");
  if (with_bias)
    {
      SlimTensor *bt = tensor_1d (m + ".bias", SLIM_DTYPE_F32, n_out);
      std::memcpy (mut<float> (bt), bias.data (), n_out * sizeof (float));
      f.add (bt, "FLOAT");
    }
}

// weight + weight_scale + weight_offset formats (W8A8_DYNAMIC, W8A16, W4A4)
void
add_scaled (Folder &f,
            const std::string &m,
            const std::string &label,
            SlimQDtype dtype,
            bool sym,
            int64_t n_out,
            int64_t n_in,
            int64_t group_size)
{
  SlimQParamsConfig cfg = cfg_of (dtype, sym);
  std::vector<float> w = random_weights (n_out * n_in, 3);
  int64_t groups = group_size > 0 ? n_in / group_size : 1;
  SlimTensor *wt = tensor_2d (m + ".weight", SLIM_DTYPE_I8, n_out, n_in);
  SlimTensor *st = tensor_2d (m + ".weight_scale", SLIM_DTYPE_F32, n_out, groups);
  SlimTensor *ot = tensor_2d (m + ".weight_offset", SLIM_DTYPE_F32, n_out, groups);
  ASSERT_TRUE (slim_quantize_weight (
      &cfg, group_size > 0 ? SLIM_QSCOPE_PER_GROUP : SLIM_QSCOPE_PER_CHANNEL, w.data (), n_out,
      n_in, group_size, mut<float> (st), mut<float> (ot), mut<gint8> (wt), nullptr));
  for (SlimTensor *t : { wt, st, ot })
    f.add (t, label);
}

// W4A8_DYNAMIC: int4 sym per-channel, packed over output-row pairs.
void
add_w4a8 (Folder &f, const std::string &m, int64_t n_out, int64_t n_in)
{
  SlimQParamsConfig cfg = cfg_of (SLIM_QDTYPE_INT4, true);
  std::vector<float> w = random_weights (n_out * n_in, 4);
  std::vector<gint8> wq (n_out * n_in);
  SlimTensor *st = tensor_2d (m + ".weight_scale", SLIM_DTYPE_F32, n_out, 1);
  SlimTensor *ot = tensor_2d (m + ".weight_offset", SLIM_DTYPE_F32, n_out, 1);
  ASSERT_TRUE (slim_quantize_weight (&cfg, SLIM_QSCOPE_PER_CHANNEL, w.data (), n_out, n_in, 0,
                                     mut<float> (st), mut<float> (ot), wq.data (), nullptr));
  SlimTensor *wt = tensor_2d (m + ".weight", SLIM_DTYPE_I8, n_out / 2, n_in);
  ASSERT_TRUE (slim_pack_w4a8_int4 (wq.data (), n_out, n_in, mut<gint8> (wt), nullptr));
  gint64 shape[2];
  ASSERT_TRUE (
      slim_w4a8_scale_bias_shape (m.c_str (), n_out, n_in, SLIM_W4A8_TP_NUM, shape, nullptr));
  SlimTensor *sb = tensor_2d (m + ".scale_bias", SLIM_DTYPE_F32, shape[0], shape[1]);
  ASSERT_TRUE (slim_w4a8_scale_bias (m.c_str (), wq.data (), mut<float> (st), n_out, n_in,
                                     SLIM_W4A8_TP_NUM, mut<float> (sb), nullptr));
  for (SlimTensor *t : { wt, st, ot, sb })
    f.add (t, "W4A8_DYNAMIC");
}

void
build_good (Folder &f)
{
  SlimTensor *emb = tensor_2d ("model.embed_tokens.weight", SLIM_DTYPE_F32, 16, 8);
  std::memset (mut<float> (emb), 0, 16 * 8 * sizeof (float));
  f.add (emb, "FLOAT");
  SlimTensor *norm = tensor_1d ("model.norm.weight", SLIM_DTYPE_F32, 8);
  for (int i = 0; i < 8; i++)
    mut<float> (norm)[i] = 1.0f;
  f.add (norm, "FLOAT");
  add_w8a8 (f, "model.layers.0.self_attn.q_proj", 8, 8, true);
  add_w8a8 (f, "model.layers.0.self_attn.k_proj", 8, 8, false);
  add_scaled (f, "model.layers.0.mlp.gate_proj", "W8A8_DYNAMIC", SLIM_QDTYPE_INT8, true, 16, 8, 0);
  add_scaled (f, "model.layers.0.self_attn.o_proj", "W8A16", SLIM_QDTYPE_INT8, false, 8, 8, 4);
  add_w4a8 (f, "model.layers.0.mlp.up_proj", 16, 8);
  add_w4a8 (f, "model.layers.0.mlp.down_proj", 8, 32); // 16 TP slices of 2
  f.group_size = 4;
  f.model_quant_type = "W8A8";
}

SlimTestAscendv1Report
check (const Folder &f, uint64_t shard_bytes = 0, const SlimTestAscendv1Options &opt = {})
{
  std::string dir = slim_test_make_tmpdir ();
  f.write (dir, shard_bytes);
  return slim_test_ascendv1_check (dir, opt);
}

} // namespace

TEST (Ascendv1Checker, AcceptsAGoodSingleFileFolder)
{
  Folder f;
  build_good (f);
  SlimTestAscendv1Report r = check (f);
  EXPECT_TRUE (r.ok ()) << r.summary ();
  EXPECT_EQ (r.model_quant_type, "W8A8");
  EXPECT_EQ (r.group_size, 4);
  EXPECT_EQ (r.n_shards, 0u);
  EXPECT_EQ (r.labels.at ("model.layers.0.mlp.up_proj.scale_bias"), "W4A8_DYNAMIC");
}

TEST (Ascendv1Checker, AcceptsAGoodShardedFolder)
{
  Folder f;
  build_good (f);
  SlimTestAscendv1Report r = check (f, 1024); // 1 KiB shards: several files
  EXPECT_TRUE (r.ok ()) << r.summary ();
  EXPECT_GT (r.n_shards, 1u);
}

TEST (Ascendv1Checker, ModelQuantTypeFollowsPriority)
{
  // W4A8_DYNAMIC is outside the priority list: W4A8 + W8A8_DYNAMIC reports
  // W8A8_DYNAMIC
  Folder f;
  add_w4a8 (f, "model.layers.0.mlp.up_proj", 16, 8);
  add_scaled (f, "model.layers.0.self_attn.q_proj", "W8A8_DYNAMIC", SLIM_QDTYPE_INT8, true, 8, 8,
              0);
  f.model_quant_type = "W8A8_DYNAMIC";
  SlimTestAscendv1Report r = check (f);
  EXPECT_TRUE (r.ok ()) << r.summary ();
  f.model_quant_type = "W4A8_DYNAMIC";
  EXPECT_TRUE (check (f).mentions ("model_quant_type is \"W4A8_DYNAMIC\""));
  // an explicit expectation overrides the derived one
  SlimTestAscendv1Options opt;
  opt.expected_model_quant_type = "W8A8";
  f.model_quant_type = "W8A8_DYNAMIC";
  EXPECT_TRUE (check (f, 0, opt).mentions ("expected \"W8A8\""));
}

TEST (Ascendv1Checker, RejectsWrongDescriptionGlobals)
{
  Folder f;
  build_good (f);
  f.model_quant_type = "W8A8_DYNAMIC";
  EXPECT_TRUE (check (f).mentions ("model_quant_type"));
  f.model_quant_type = "W8A8";
  f.version = "1.0";
  EXPECT_TRUE (check (f).mentions ("version"));
  f.version = "1.0.0";
  f.indent = 2;
  EXPECT_TRUE (check (f).mentions ("4-space"));
  f.indent = 4;
  f.group_size = 2; // o_proj has 2 groups over 8 inputs: group_size 4
  EXPECT_TRUE (check (f).mentions ("groups of group_size"));
}

TEST (Ascendv1Checker, RejectsLabelAndTensorMismatches)
{
  Folder f;
  build_good (f);
  f.extra_labels.push_back ("model.layers.0.mlp.gate_proj.bias");
  SlimTestAscendv1Report r = check (f);
  EXPECT_TRUE (r.mentions ("no such tensor is stored")) << r.summary ();

  Folder g;
  build_good (g);
  g.unlabel ("model.norm.weight");
  EXPECT_TRUE (check (g).mentions ("has no label"));

  Folder h;
  build_good (h);
  h.remove ("model.layers.0.self_attn.q_proj.quant_bias");
  r = check (h);
  EXPECT_TRUE (r.mentions ("module model.layers.0.self_attn.q_proj (W8A8) has tensors"))
      << r.summary ();
}

TEST (Ascendv1Checker, RejectsWrongDtypesAndShapes)
{
  {
    // deq_scale must be int64 unless the model was bf16
    Folder f;
    build_good (f);
    f.add (tensor_1d ("model.layers.0.self_attn.q_proj.deq_scale", SLIM_DTYPE_F32, 8), "W8A8");
    EXPECT_TRUE (check (f).mentions ("deq_scale: dtype f32, expected i64"));
  }
  {
    // W4A8 weights must be packed [out / 2, in]
    Folder f;
    build_good (f);
    SlimTensor *t = tensor_2d ("model.layers.0.mlp.up_proj.weight", SLIM_DTYPE_I8, 16, 8);
    std::memset (mut<gint8> (t), 0, 16 * 8);
    f.add (t, "W4A8_DYNAMIC");
    SlimTestAscendv1Report r = check (f);
    EXPECT_TRUE (r.mentions ("packed layout")) << r.summary ();
  }
  {
    // a row-parallel W4A8 scale_bias is [out, 16]
    Folder f;
    build_good (f);
    f.add (tensor_2d ("model.layers.0.mlp.down_proj.scale_bias", SLIM_DTYPE_F32, 8, 1),
           "W4A8_DYNAMIC");
    EXPECT_TRUE (check (f).mentions ("scale_bias: shape [8, 1], expected [8, 16]"));
  }
}

TEST (Ascendv1Checker, RejectsWrongDerivedValues)
{
  {
    Folder f;
    build_good (f);
    f.data<gint32> ("model.layers.0.self_attn.q_proj.quant_bias")[3] += 1;
    SlimTestAscendv1Report r = check (f);
    EXPECT_TRUE (r.mentions ("quant_bias[3]")) << r.summary ();
    SlimTestAscendv1Options opt;
    opt.check_values = false;
    EXPECT_TRUE (check (f, 0, opt).ok ());
  }
  {
    Folder f;
    build_good (f);
    f.data<float> ("model.layers.0.mlp.down_proj.scale_bias")[5] *= 1.01f;
    EXPECT_TRUE (check (f).mentions ("scale_bias[0, 5]"));
  }
  {
    Folder f;
    build_good (f);
    f.data<float> ("model.layers.0.mlp.gate_proj.weight_offset")[2] = 1.0f;
    EXPECT_TRUE (check (f).mentions ("stores zeros"));
  }
  {
    // a negative deq_scale bit pattern (sign bit set) is not a valid scale
    Folder f;
    build_good (f);
    f.data<gint64> ("model.layers.0.self_attn.k_proj.deq_scale")[0]
        = slim_deq_scale_to_int64 (-0.5f);
    EXPECT_TRUE (check (f).mentions ("not a finite positive scale"));
  }
}

TEST (Ascendv1Checker, RejectsConfigWithQuantizationConfig)
{
  Folder f;
  build_good (f);
  f.config_has_quantization_config = true;
  EXPECT_TRUE (check (f).mentions ("quantization_config"));
}

TEST (Ascendv1Checker, RejectsInconsistentIndexAndStrayFiles)
{
  Folder f;
  build_good (f);
  std::string dir = slim_test_make_tmpdir ();
  f.write (dir, 1024);
  std::string index = dir + "/quant_model_weights.safetensors.index.json";
  gchar *text = nullptr;
  ASSERT_TRUE (g_file_get_contents (index.c_str (), &text, nullptr, nullptr));
  std::string original = text;
  g_free (text);

  // total_size off by one
  std::string bad = original;
  size_t pos = bad.find ("\"total_size\"");
  ASSERT_NE (pos, std::string::npos);
  size_t digits = bad.find_first_of ("0123456789", pos);
  bad.insert (digits, "1");
  ASSERT_TRUE (g_file_set_contents (index.c_str (), bad.c_str (), -1, nullptr));
  EXPECT_TRUE (slim_test_ascendv1_check (dir).mentions ("total_size"));

  // a tensor assigned to another shard
  bad = original;
  pos = bad.find ("\"model.norm.weight\"");
  ASSERT_NE (pos, std::string::npos);
  size_t file_pos = bad.find ("-of-", pos);
  size_t num_pos = bad.rfind ("weights-", file_pos) + strlen ("weights-");
  std::string shard_no = bad.substr (num_pos, 5);
  bad.replace (num_pos, 5, shard_no == "00001" ? "00002" : "00001");
  ASSERT_TRUE (g_file_set_contents (index.c_str (), bad.c_str (), -1, nullptr));
  SlimTestAscendv1Report r = slim_test_ascendv1_check (dir);
  EXPECT_TRUE (r.mentions ("weight_map says")) << r.summary ();

  // restore, then add a stray single file beside the index
  ASSERT_TRUE (g_file_set_contents (index.c_str (), original.c_str (), -1, nullptr));
  EXPECT_TRUE (slim_test_ascendv1_check (dir).ok ());
  ASSERT_TRUE (g_file_set_contents (
      (dir + "/quant_model_weights-00009-of-00009.safetensors").c_str (), "x", 1, nullptr));
  EXPECT_TRUE (slim_test_ascendv1_check (dir).mentions ("stray weight file"));
}
