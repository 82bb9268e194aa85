// SPDX-License-Identifier: Apache-2.0
//
// ascendv1-checker.cpp: see ascendv1-checker.hpp for what is checked.
#include "ascendv1-checker.hpp"

extern "C"
{
#include "slim-pack.h"
#include "slim-qscheme.h"
#include "slim-safetensors.h"
}

#include <json-glib/json-glib.h>

#include <cmath>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

namespace
{

const char *const kDescriptionName = "quant_model_description.json";
const char *const kSingleName = "quant_model_weights.safetensors";
const char *const kIndexName = "quant_model_weights.safetensors.index.json";
// msModelSlim's fixed tensor-parallel count for row-parallel W4A8 scale_bias
const unsigned kTpNum = SLIM_W4A8_TP_NUM;

const std::set<std::string> kGlobalKeys
    = { "version",       "model_quant_type", "metadata",      "group_size",       "optional",
        "kv_cache_type", "kv_quant_type",    "fa_quant_type", "reduce_quant_type" };
const std::set<std::string> kLabels = {
  "FLOAT",
  "W8A8",
  "W8A8_MIX",
  "W8A8_DYNAMIC",
  "W8A16",
  "W4A8_DYNAMIC",
  "W4A4_DYNAMIC",
  "W16A16S",
  "W4A16",
  "C8",
  "FAQuant",
  "W8A8_MXFP8",
  "W4A8_MXFP",
  "W4A4_MXFP4",
  "WFP8AFP8_DYNAMIC",
  "NF4",
  "W4A4_MXFP4_DUALSCALE"
}; // W4A16: slimflow extension (per-group); C8, FAQuant: attention tensors

struct Info
{
  SlimDType dtype;
  std::vector<int64_t> shape;
};

std::string
shape_str (const std::vector<int64_t> &s)
{
  std::string out = "[";
  for (size_t i = 0; i < s.size (); i++)
    out += (i ? ", " : "") + std::to_string (s[i]);
  return out + "]";
}

class Checker
{
public:
  Checker (const std::string &dir, const SlimTestAscendv1Options &opt, SlimTestAscendv1Report *rep)
      : dir_ (dir), opt_ (opt), rep_ (rep)
  {
  }

  ~Checker ()
  {
    for (SlimTensor *t : views_)
      slim_tensor_unref (t);
    for (SlimSafetensors *r : readers_)
      g_object_unref (r);
  }

  void run ();

private:
  std::string dir_;
  SlimTestAscendv1Options opt_;
  SlimTestAscendv1Report *rep_;
  std::vector<SlimSafetensors *> readers_;
  std::map<std::string, SlimSafetensors *> owner_; // tensor name -> reader
  std::vector<SlimTensor *> views_;
  std::map<std::string, std::string> desc_labels_;
  // QuaRot online rotations: stored without a label (msModelSlim), their
  // linear listed in metadata.quarot.{heads,kronecker}_rotation.layers
  std::set<std::string> quarot_online_;
  std::map<std::string, std::string> fa_quant_types_; // attn -> <attn>.quant_type value
  std::map<std::string, std::string> globals_;        // kv_cache_type, ... -> value
  bool have_group_size_ = false;
  std::set<std::string> used_files_; // weight files that are part of the output

  void problem (const char *fmt, ...) G_GNUC_PRINTF (2, 3);
  std::string
  path (const std::string &name) const
  {
    return dir_ + G_DIR_SEPARATOR_S + name;
  }
  void check_description ();
  void check_weights ();
  SlimSafetensors *open_reader (const std::string &file);
  void check_index ();
  void check_bijection ();
  void check_modules ();
  void check_mx (const std::string &module, const std::string &label, const Info &wi);
  void check_module (const std::string &module,
                     const std::string &label,
                     const std::set<std::string> &suffixes);
  void check_model_quant_type (const std::string &written);
  void check_attention ();
  void check_config ();
  bool info (const std::string &name, Info *out);
  bool expect (const std::string &name, SlimDType dtype, const std::vector<int64_t> &shape);
  template <typename T> const T *data (const std::string &name);
};

void
Checker::problem (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  char *text = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  rep_->problems.emplace_back (text);
  g_free (text);
}

bool
Checker::info (const std::string &name, Info *out)
{
  auto it = owner_.find (name);
  if (it == owner_.end ())
    return false;
  guint n_dims = 0;
  gint64 shape[SLIM_TENSOR_MAX_DIMS];
  if (!slim_safetensors_get_info (it->second, name.c_str (), &out->dtype, &n_dims, shape))
    return false;
  out->shape.assign (shape, shape + n_dims);
  return true;
}

bool
Checker::expect (const std::string &name, SlimDType dtype, const std::vector<int64_t> &shape)
{
  Info i;
  if (!info (name, &i))
    {
      problem ("%s: missing tensor", name.c_str ());
      return false;
    }
  bool ok = true;
  if (i.dtype != dtype)
    {
      problem ("%s: dtype %s, expected %s", name.c_str (), slim_dtype_get_name (i.dtype),
               slim_dtype_get_name (dtype));
      ok = false;
    }
  if (i.shape != shape)
    {
      problem ("%s: shape %s, expected %s", name.c_str (), shape_str (i.shape).c_str (),
               shape_str (shape).c_str ());
      ok = false;
    }
  return ok;
}

template <typename T>
const T *
Checker::data (const std::string &name)
{
  GError *error = nullptr;
  SlimTensor *t = slim_safetensors_get_tensor (owner_.at (name), name.c_str (), &error);
  if (t == nullptr)
    {
      problem ("%s: cannot read: %s", name.c_str (), error->message);
      g_clear_error (&error);
      return nullptr;
    }
  views_.push_back (t);
  return static_cast<const T *> (slim_tensor_get_data (t));
}

void
Checker::check_description ()
{
  std::string file = path (kDescriptionName);
  std::ifstream in (file);
  if (!in)
    {
      problem ("%s is missing", kDescriptionName);
      return;
    }
  std::string first, second;
  std::getline (in, first);
  std::getline (in, second);
  if (first != "{" || second.rfind ("    \"", 0) != 0 || second.rfind ("     ", 0) == 0)
    problem ("%s is not written with 4-space indentation", kDescriptionName);

  GError *error = nullptr;
  JsonParser *parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, file.c_str (), &error))
    {
      problem ("%s: %s", kDescriptionName, error->message);
      g_clear_error (&error);
      g_object_unref (parser);
      return;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT (root))
    {
      problem ("%s is not a JSON object", kDescriptionName);
      g_object_unref (parser);
      return;
    }
  JsonObject *obj = json_node_get_object (root);
  auto string_member = [&] (const char *key) -> std::string {
    JsonNode *n = json_object_get_member (obj, key);
    if (n == nullptr || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
      {
        problem ("%s: \"%s\" is missing or not a string", kDescriptionName, key);
        return "";
      }
    return json_node_get_string (n);
  };
  std::string version = string_member ("version");
  if (!version.empty () && version != "1.0.0")
    problem ("%s: version is \"%s\", expected \"1.0.0\"", kDescriptionName, version.c_str ());
  rep_->model_quant_type = string_member ("model_quant_type");
  for (const char *key : { "metadata", "optional" })
    {
      JsonNode *n = json_object_get_member (obj, key);
      if (n == nullptr || !JSON_NODE_HOLDS_OBJECT (n))
        problem ("%s: \"%s\" is missing or not an object", kDescriptionName, key);
    }
  if (json_object_has_member (obj, "metadata")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (obj, "metadata"))
      && json_object_has_member (json_object_get_object_member (obj, "metadata"), "quarot"))
    {
      JsonObject *q = json_object_get_object_member (
          json_object_get_object_member (obj, "metadata"), "quarot");
      const std::pair<const char *, std::vector<const char *> > kinds[]
          = { { "heads_rotation", { ".heads_rotation" } },
              { "kronecker_rotation", { ".kronecker_rotation_m", ".kronecker_rotation_n" } } };
      if (q == nullptr || !json_object_has_member (q, "max_tp_size"))
        problem ("%s: metadata.quarot needs max_tp_size", kDescriptionName);
      for (const auto &k : kinds)
        {
          JsonObject *o = q != nullptr && json_object_has_member (q, k.first)
                              ? json_object_get_object_member (q, k.first)
                              : nullptr;
          JsonArray *a = o != nullptr && json_object_has_member (o, "layers")
                             ? json_object_get_array_member (o, "layers")
                             : nullptr;
          if (a == nullptr)
            {
              problem ("%s: metadata.quarot.%s.layers is missing", kDescriptionName, k.first);
              continue;
            }
          for (guint i = 0; i < json_array_get_length (a); i++)
            for (const char *suffix : k.second)
              quarot_online_.insert (std::string (json_array_get_string_element (a, i)) + suffix);
        }
      // slimflow's full Hadamard down_proj rotation (quarot
      // down_proj_online_kind: hadamard): optional, present only when used
      if (q != nullptr && json_object_has_member (q, "hadamard_rotation"))
        {
          JsonObject *o = json_object_get_object_member (q, "hadamard_rotation");
          JsonArray *a = o != nullptr && json_object_has_member (o, "layers")
                             ? json_object_get_array_member (o, "layers")
                             : nullptr;
          if (a == nullptr)
            problem ("%s: metadata.quarot.hadamard_rotation.layers is missing", kDescriptionName);
          for (guint i = 0; a != nullptr && i < json_array_get_length (a); i++)
            quarot_online_.insert (std::string (json_array_get_string_element (a, i))
                                   + ".hadamard_rotation");
        }
    }
  JsonNode *gs = json_object_get_member (obj, "group_size");
  if (gs == nullptr || !JSON_NODE_HOLDS_VALUE (gs) || json_node_get_value_type (gs) != G_TYPE_INT64
      || json_node_get_int (gs) < 0)
    problem ("%s: \"group_size\" is missing or not an integer >= 0", kDescriptionName);
  else
    {
      rep_->group_size = json_node_get_int (gs);
      have_group_size_ = true;
    }

  GList *members = json_object_get_members (obj);
  for (GList *l = members; l != nullptr; l = l->next)
    {
      const char *key = static_cast<const char *> (l->data);
      JsonNode *n = json_object_get_member (obj, key);
      if (kGlobalKeys.count (key))
        {
          if (JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING)
            globals_[key] = json_node_get_string (n);
          continue;
        }
      if (g_str_has_suffix (key, ".quant_type"))
        {
          // FA3's per-attention quant type (spec 2.9), not a tensor label
          std::string k (key);
          if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
            problem ("%s: \"%s\" is not a string", kDescriptionName, key);
          else
            fa_quant_types_[k.substr (0, k.size () - strlen (".quant_type"))]
                = json_node_get_string (n);
          continue;
        }
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
        {
          problem ("%s: \"%s\" is not a label string", kDescriptionName, key);
          continue;
        }
      std::string label = json_node_get_string (n);
      if (!kLabels.count (label))
        problem ("%s: \"%s\" has unknown label \"%s\"", kDescriptionName, key, label.c_str ());
      desc_labels_[key] = label;
    }
  g_list_free (members);
  g_object_unref (parser);
  rep_->labels = desc_labels_;
}

SlimSafetensors *
Checker::open_reader (const std::string &file)
{
  GError *error = nullptr;
  SlimSafetensors *r = slim_safetensors_open (path (file).c_str (), &error);
  if (r == nullptr)
    {
      problem ("%s: %s", file.c_str (), error->message);
      g_clear_error (&error);
      return nullptr;
    }
  readers_.push_back (r);
  return r;
}

void
Checker::check_index ()
{
  GError *error = nullptr;
  JsonParser *parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, path (kIndexName).c_str (), &error))
    {
      problem ("%s: %s", kIndexName, error->message);
      g_clear_error (&error);
      g_object_unref (parser);
      return;
    }
  JsonNode *root = json_parser_get_root (parser);
  JsonObject *obj = (root && JSON_NODE_HOLDS_OBJECT (root)) ? json_node_get_object (root) : nullptr;
  JsonObject *meta = nullptr, *map = nullptr;
  if (obj != nullptr && json_object_has_member (obj, "metadata")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (obj, "metadata")))
    meta = json_object_get_object_member (obj, "metadata");
  if (obj != nullptr && json_object_has_member (obj, "weight_map")
      && JSON_NODE_HOLDS_OBJECT (json_object_get_member (obj, "weight_map")))
    map = json_object_get_object_member (obj, "weight_map");
  if (meta == nullptr || map == nullptr)
    {
      problem ("%s: needs objects \"metadata\" and \"weight_map\"", kIndexName);
      g_object_unref (parser);
      return;
    }

  // weight_map: tensor -> file; files must be the N-of-M shard names
  std::map<std::string, std::string> weight_map;
  std::set<std::string> files;
  GList *members = json_object_get_members (map);
  for (GList *l = members; l != nullptr; l = l->next)
    {
      const char *key = static_cast<const char *> (l->data);
      JsonNode *n = json_object_get_member (map, key);
      if (!JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
        {
          problem ("%s: weight_map[\"%s\"] is not a string", kIndexName, key);
          continue;
        }
      weight_map[key] = json_node_get_string (n);
      files.insert (weight_map[key]);
    }
  g_list_free (members);

  static const std::regex shard_re ("quant_model_weights-([0-9]+)-of-([0-9]+)\\.safetensors");
  std::set<long> numbers;
  long total = -1;
  for (const std::string &f : files)
    {
      std::smatch m;
      if (!std::regex_match (f, m, shard_re))
        {
          problem ("%s: shard name \"%s\" is not quant_model_weights-NNNNN-of-NNNNN.safetensors",
                   kIndexName, f.c_str ());
          continue;
        }
      long i = std::stol (m[1].str ()), n = std::stol (m[2].str ());
      if (n <= 99999 && (m[1].length () != 5 || m[2].length () != 5))
        problem ("%s: shard \"%s\" is not zero-padded to 5 digits", kIndexName, f.c_str ());
      if (total >= 0 && n != total)
        problem ("%s: shards disagree on the shard count", kIndexName);
      total = n;
      numbers.insert (i);
    }
  if (total >= 0
      && (numbers.size () != (size_t)total || *numbers.begin () != 1
          || *numbers.rbegin () != total))
    problem ("%s: shard numbers are not 1..%ld", kIndexName, total);
  rep_->n_shards = files.size ();
  used_files_ = files;

  guint64 sum_bytes = 0;
  for (const std::string &f : files)
    {
      SlimSafetensors *r = open_reader (f);
      if (r == nullptr)
        continue;
      sum_bytes += slim_safetensors_get_total_bytes (r);
      for (const char *const *n = slim_safetensors_get_names (r); *n != nullptr; n++)
        {
          auto it = weight_map.find (*n);
          if (it == weight_map.end ())
            problem ("%s: tensor \"%s\" in %s is not in the weight_map", kIndexName, *n,
                     f.c_str ());
          else if (it->second != f)
            problem ("%s: tensor \"%s\" is in %s but the weight_map says %s", kIndexName, *n,
                     f.c_str (), it->second.c_str ());
          if (owner_.count (*n))
            problem ("tensor \"%s\" is stored twice", *n);
          owner_[*n] = r;
        }
    }
  for (const auto &kv : weight_map)
    if (!owner_.count (kv.first))
      problem ("%s: weight_map names \"%s\" but %s does not hold it", kIndexName, kv.first.c_str (),
               kv.second.c_str ());

  JsonNode *ts = json_object_get_member (meta, "total_size");
  if (ts == nullptr || !JSON_NODE_HOLDS_VALUE (ts) || json_node_get_value_type (ts) != G_TYPE_INT64)
    problem ("%s: metadata.total_size is missing or not an integer", kIndexName);
  else if ((guint64)json_node_get_int (ts) != sum_bytes)
    problem ("%s: metadata.total_size is %" G_GINT64_FORMAT
             " but the tensors hold %" G_GUINT64_FORMAT " bytes",
             kIndexName, json_node_get_int (ts), sum_bytes);
  g_object_unref (parser);
}

void
Checker::check_weights ()
{
  bool single = g_file_test (path (kSingleName).c_str (), G_FILE_TEST_EXISTS);
  bool index = g_file_test (path (kIndexName).c_str (), G_FILE_TEST_EXISTS);
  if (single && index)
    problem ("both %s and %s exist", kSingleName, kIndexName);
  if (!single && !index)
    {
      problem ("neither %s nor %s exists", kSingleName, kIndexName);
      return;
    }
  if (index)
    check_index ();
  else if (SlimSafetensors *r = open_reader (kSingleName))
    {
      used_files_.insert (kSingleName);
      for (const char *const *n = slim_safetensors_get_names (r); *n != nullptr; n++)
        owner_[*n] = r;
    }

  // no stray weight files beside the ones in use
  GDir *d = g_dir_open (dir_.c_str (), 0, nullptr);
  if (d == nullptr)
    return;
  static const std::regex shard_re ("quant_model_weights-[0-9]+-of-[0-9]+\\.safetensors");
  for (const char *n = g_dir_read_name (d); n != nullptr; n = g_dir_read_name (d))
    {
      std::string name = n;
      if (name == kSingleName && index)
        continue; // reported above
      if ((name == kSingleName || std::regex_match (name, shard_re)) && !used_files_.count (name))
        problem ("stray weight file %s", n);
    }
  g_dir_close (d);
}

void
Checker::check_bijection ()
{
  for (const auto &kv : desc_labels_)
    if (!owner_.count (kv.first))
      problem ("%s labels \"%s\" (%s) but no such tensor is stored", kDescriptionName,
               kv.first.c_str (), kv.second.c_str ());
  for (const auto &kv : quarot_online_)
    if (!owner_.count (kv))
      problem ("metadata.quarot lists the online rotation \"%s\" but it is not stored",
               kv.c_str ());
  for (const auto &kv : owner_)
    if (!desc_labels_.count (kv.first) && !quarot_online_.count (kv.first))
      problem ("tensor \"%s\" is stored but has no label in %s", kv.first.c_str (),
               kDescriptionName);
}

void
Checker::check_modules ()
{
  // module -> (label, suffixes) for every quantized module
  std::map<std::string, std::pair<std::string, std::set<std::string> > > modules;
  for (const auto &kv : desc_labels_)
    {
      if (kv.second == "FLOAT" || kv.second == "C8" || kv.second == "FAQuant")
        continue; // attention tensors: check_attention
      size_t dot = kv.first.rfind ('.');
      if (dot == std::string::npos)
        {
          problem ("\"%s\" (%s) is not <module>.<tensor>", kv.first.c_str (), kv.second.c_str ());
          continue;
        }
      std::string module = kv.first.substr (0, dot);
      auto &entry = modules[module];
      if (!entry.first.empty () && entry.first != kv.second)
        problem ("module %s mixes labels %s and %s", module.c_str (), entry.first.c_str (),
                 kv.second.c_str ());
      entry.first = kv.second;
      entry.second.insert (kv.first.substr (dot + 1));
    }
  for (const auto &kv : modules)
    check_module (kv.first, kv.second.first, kv.second.second);
}

void
Checker::check_module (const std::string &module,
                       const std::string &label,
                       const std::set<std::string> &suffixes)
{
  static const std::map<std::string, std::set<std::string> > kSuffixes = {
    { "W8A8", { "weight", "quant_bias", "input_scale", "input_offset", "deq_scale" } },
    { "W8A8_MIX",
      { "weight", "quant_bias", "input_scale", "input_offset", "deq_scale", "weight_scale",
        "weight_offset" } },
    { "W8A8_DYNAMIC", { "weight", "weight_scale", "weight_offset" } },
    { "W8A16", { "weight", "weight_scale", "weight_offset" } },
    { "W4A16", { "weight", "weight_scale", "weight_offset" } },
    { "W4A4_DYNAMIC", { "weight", "weight_scale", "weight_offset" } },
    { "W4A8_DYNAMIC", { "weight", "weight_scale", "weight_offset", "scale_bias" } },
    { "W16A16S", { "weight" } },
    { "W8A8_MXFP8", { "weight", "weight_scale" } },
    { "WFP8AFP8_DYNAMIC", { "weight", "weight_scale", "weight_offset" } },
    { "W4A8_MXFP", { "weight", "weight_scale" } },
    { "W4A4_MXFP4", { "weight", "weight_scale" } },
    { "W4A4_MXFP4_DUALSCALE", { "weight", "weight_scale", "weight_dual_scale" } },
    { "NF4", { "weight", "weight_absmax" } },
  };
  auto want = kSuffixes.find (label);
  if (want == kSuffixes.end ())
    return; // unknown labels are reported by check_description
  // W16A16S labels every parameter of the module: weight, and bias when it has one
  const bool w16a16s_bias
      = label == "W16A16S" && suffixes == std::set<std::string>{ "weight", "bias" };
  // the bias of a dual-scale linear carries its label (on_w4a4_mx_dynamic_dual_scale)
  std::set<std::string> dual_bias = want->second;
  dual_bias.insert ("bias");
  const bool dual_with_bias = label == "W4A4_MXFP4_DUALSCALE" && suffixes == dual_bias;
  if (suffixes != want->second && !w16a16s_bias && !dual_with_bias)
    {
      std::string have, need;
      for (const auto &s : suffixes)
        have += " " + s;
      for (const auto &s : want->second)
        need += " " + s;
      problem ("module %s (%s) has tensors {%s } but the format needs {%s }", module.c_str (),
               label.c_str (), have.c_str (), need.c_str ());
      return;
    }
  if (label == "W16A16S")
    {
      // the pruned float weight (and bias) in the model's float dtype
      Info wi, bi;
      const std::string w = module + ".weight", b = module + ".bias";
      if (!info (w, &wi) || wi.shape.size () != 2
          || (wi.dtype != SLIM_DTYPE_F32 && wi.dtype != SLIM_DTYPE_F16
              && wi.dtype != SLIM_DTYPE_BF16))
        problem ("%s (W16A16S): must be a 2-D float tensor", w.c_str ());
      else if (suffixes.count ("bias")
               && (!info (b, &bi) || bi.dtype != wi.dtype
                   || bi.shape != std::vector<int64_t>{ wi.shape[0] }))
        problem ("%s (W16A16S): must be a float vector of the weight's dtype and rows", b.c_str ());
      return;
    }

  const std::string w = module + ".weight";
  Info wi;
  if (!info (w, &wi) || wi.shape.size () != 2)
    {
      problem ("%s: must be a 2-D tensor", w.c_str ());
      return;
    }
  if (label == "W8A8_MXFP8" || label == "W4A8_MXFP" || label == "W4A4_MXFP4"
      || label == "W4A4_MXFP4_DUALSCALE")
    {
      check_mx (module, label, wi);
      return;
    }
  if (label == "NF4")
    {
      // two codes per byte: uint8 [out, in / 2]; weight_absmax float32
      // [out, in / group_size], finite and >= 0 (slimflow's addition to
      // msModelSlim's NF4 weight)
      const std::string wa = module + ".weight_absmax";
      Info ai;
      if (wi.dtype != SLIM_DTYPE_U8)
        problem ("%s (NF4): must be uint8, two codes per byte", w.c_str ());
      if (!info (wa, &ai) || ai.dtype != SLIM_DTYPE_F32 || ai.shape.size () != 2
          || ai.shape[0] != wi.shape[0] || ai.shape[1] <= 0)
        {
          problem ("%s (NF4): must be float32 [%" G_GINT64_FORMAT ", groups]", wa.c_str (),
                   wi.shape[0]);
          return;
        }
      if (have_group_size_ && rep_->group_size * ai.shape[1] != 2 * wi.shape[1])
        problem ("%s: %" G_GINT64_FORMAT " groups of group_size %" G_GINT64_FORMAT
                 " do not cover %" G_GINT64_FORMAT " input features",
                 wa.c_str (), ai.shape[1], rep_->group_size, 2 * wi.shape[1]);
      if (opt_.check_values)
        {
          const float *a = data<float> (wa);
          for (int64_t k = 0; a != nullptr && k < ai.shape[0] * ai.shape[1]; k++)
            if (!(std::isfinite (a[k]) && a[k] >= 0.0f))
              {
                problem ("%s[%" G_GINT64_FORMAT "] = %g is not a finite absmax", wa.c_str (), k,
                         (double)a[k]);
                break;
              }
        }
      return;
    }
  const bool w4a8 = label == "W4A8_DYNAMIC";
  const std::string ws = module + ".weight_scale", wo = module + ".weight_offset";
  Info si;
  int64_t n_out = wi.shape[0], n_in = wi.shape[1];
  if (w4a8)
    {
      // weight packs pairs of output rows: (out / 2, in); out from the scales
      if (!info (ws, &si) || si.shape.empty ())
        return;
      n_out = si.shape[0];
      if (n_out != 2 * wi.shape[0])
        problem ("%s: W4A8 weight is %s; the packed layout is [out / 2, in] = [%" G_GINT64_FORMAT
                 ", %" G_GINT64_FORMAT "] for %" G_GINT64_FORMAT " output channels",
                 w.c_str (), shape_str (wi.shape).c_str (), n_out / 2, n_in, n_out);
    }
  const bool fp8 = label == "WFP8AFP8_DYNAMIC";
  expect (w, fp8 ? SLIM_DTYPE_F8_E4M3FN : SLIM_DTYPE_I8, { w4a8 ? n_out / 2 : n_out, n_in });

  // the FLOAT bias of a quantized linear
  const std::string b = module + ".bias";
  if (desc_labels_.count (b))
    {
      if (desc_labels_[b] != "FLOAT")
        problem ("%s: label %s, the bias of a quantized linear is FLOAT", b.c_str (),
                 desc_labels_[b].c_str ());
      expect (b, SLIM_DTYPE_F32, { n_out });
    }

  if (label == "W8A8" || label == "W8A8_MIX")
    {
      bool ok = expect (module + ".quant_bias", SLIM_DTYPE_I32, { n_out });
      ok &= expect (module + ".input_scale", SLIM_DTYPE_F32, { 1 });
      ok &= expect (module + ".input_offset", SLIM_DTYPE_F32, { 1 });
      ok &= expect (module + ".deq_scale", opt_.bf16_model ? SLIM_DTYPE_F32 : SLIM_DTYPE_I64,
                    { n_out });
      if (label == "W8A8_MIX")
        {
          ok &= expect (ws, SLIM_DTYPE_F32, { n_out, 1 });
          ok &= expect (wo, SLIM_DTYPE_F32, { n_out, 1 });
        }
      if (!ok || !opt_.check_values)
        return;
      std::vector<float> deq (n_out);
      if (opt_.bf16_model)
        {
          const float *d = data<float> (module + ".deq_scale");
          if (d == nullptr)
            return;
          deq.assign (d, d + n_out);
        }
      else
        {
          const int64_t *d = data<int64_t> (module + ".deq_scale");
          if (d == nullptr)
            return;
          for (int64_t n = 0; n < n_out; n++)
            {
              if (d[n] != (int64_t)(int32_t)d[n])
                problem ("%s[%" G_GINT64_FORMAT "] = %" G_GINT64_FORMAT
                         " is not a sign-extended int32 bit pattern",
                         (module + ".deq_scale").c_str (), n, d[n]);
              deq[n] = slim_deq_scale_from_int64 (d[n]);
            }
        }
      for (int64_t n = 0; n < n_out; n++)
        if (!(std::isfinite (deq[n]) && deq[n] > 0.0f))
          {
            problem ("%s[%" G_GINT64_FORMAT "] decodes to %g, not a finite positive scale",
                     (module + ".deq_scale").c_str (), n, (double)deq[n]);
            return;
          }
      const float *in_scale = data<float> (module + ".input_scale");
      const float *in_offset = data<float> (module + ".input_offset");
      const int8_t *wq = data<int8_t> (w);
      const int32_t *qb = data<int32_t> (module + ".quant_bias");
      const float *bias = desc_labels_.count (b) ? data<float> (b) : nullptr;
      if (!in_scale || !in_offset || !wq || !qb || (desc_labels_.count (b) && !bias))
        return;
      if (!(std::isfinite (in_scale[0]) && in_scale[0] > 0.0f))
        problem ("%s.input_scale = %g is not finite positive", module.c_str (),
                 (double)in_scale[0]);
      if (!(in_offset[0] == std::nearbyint (in_offset[0]) && in_offset[0] >= -128.0f
            && in_offset[0] <= 127.0f))
        problem ("%s.input_offset = %g is not an int8 value", module.c_str (),
                 (double)in_offset[0]);
      std::vector<gint32> expect_qb (n_out);
      GError *error = nullptr;
      if (!slim_quant_bias_compute (bias, deq.data (), in_offset[0], wq, n_out, n_in,
                                    expect_qb.data (), &error))
        {
          problem ("%s: %s", module.c_str (), error->message);
          g_clear_error (&error);
          return;
        }
      for (int64_t n = 0; n < n_out; n++)
        if (qb[n] != expect_qb[n])
          {
            problem ("%s.quant_bias[%" G_GINT64_FORMAT "] = %d, expected round(bias/deq_scale - "
                     "input_offset * sum(Wq)) = %d",
                     module.c_str (), n, qb[n], expect_qb[n]);
            break;
          }
      return;
    }

  // weight_scale / weight_offset: [out, 1] or per group [out, in / group_size]
  Info oi;
  if (!info (ws, &si) || !info (wo, &oi))
    return;
  int64_t n_groups = si.shape.size () == 2 ? si.shape[1] : -1;
  bool per_group = n_groups > 1;
  if (per_group && (w4a8 || label == "W8A8_MIX"))
    problem ("%s: %s has no per-group layout", ws.c_str (), label.c_str ());
  if (per_group && have_group_size_ && rep_->group_size * n_groups != n_in)
    problem ("%s: %" G_GINT64_FORMAT " groups of group_size %" G_GINT64_FORMAT
             " do not cover the %" G_GINT64_FORMAT " input channels",
             ws.c_str (), n_groups, rep_->group_size, n_in);
  std::vector<int64_t> scale_shape = { n_out, per_group ? n_groups : 1 };
  bool ok = expect (ws, SLIM_DTYPE_F32, scale_shape);
  ok &= expect (wo, SLIM_DTYPE_F32, scale_shape);
  std::vector<int64_t> sb_shape (2);
  if (w4a8)
    {
      GError *error = nullptr;
      gint64 shape[2];
      if (!slim_w4a8_scale_bias_shape (module.c_str (), n_out, n_in, kTpNum, shape, &error))
        {
          problem ("%s: %s", module.c_str (), error->message);
          g_clear_error (&error);
          return;
        }
      sb_shape = { shape[0], shape[1] };
      ok &= expect (module + ".scale_bias", SLIM_DTYPE_F32, sb_shape);
    }
  if (!ok || !opt_.check_values)
    return;

  const float *scale = data<float> (ws);
  const float *offset = data<float> (wo);
  const int8_t *wq = data<int8_t> (w);
  if (!scale || !offset || !wq)
    return;
  const int64_t n_params = n_out * scale_shape[1];
  for (int64_t p = 0; p < n_params; p++)
    if (!(std::isfinite (scale[p]) && scale[p] > 0.0f))
      {
        problem ("%s[%" G_GINT64_FORMAT "] = %g is not a finite positive scale", ws.c_str (), p,
                 (double)scale[p]);
        return;
      }
  // per-channel dynamic formats store zero offsets (W8A16 and W4A4 keep
  // the real, possibly asymmetric, offsets)
  if (fp8)
    {
      // float8_e4m3fn codes: no NaN (S.1111.111)
      const uint8_t *codes = reinterpret_cast<const uint8_t *> (wq);
      for (int64_t i = 0; i < n_out * n_in; i++)
        if ((codes[i] & 0x7f) == 0x7f)
          {
            problem ("%s[%" G_GINT64_FORMAT "] is a float8_e4m3fn NaN", w.c_str (), i);
            break;
          }
    }
  if ((label == "W8A8_DYNAMIC" && !per_group) || w4a8 || fp8)
    for (int64_t p = 0; p < n_params; p++)
      if (offset[p] != 0.0f)
        {
          problem ("%s[%" G_GINT64_FORMAT "] = %g, %s stores zeros", wo.c_str (), p,
                   (double)offset[p], label.c_str ());
          break;
        }
  if (label == "W4A4_DYNAMIC" || label == "W4A16")
    for (int64_t i = 0; i < n_out * n_in; i++)
      if (wq[i] < -8 || wq[i] > 7)
        {
          problem ("%s: element %" G_GINT64_FORMAT " = %d is outside int4 [-8, 7]", w.c_str (), i,
                   wq[i]);
          break;
        }
  if (w4a8)
    {
      const float *sb = data<float> (module + ".scale_bias");
      if (sb == nullptr)
        return;
      std::vector<int8_t> unpacked (n_out * n_in);
      slim_unpack_w4a8_int4 (wq, n_out, n_in, unpacked.data ());
      std::vector<float> want_sb (sb_shape[0] * sb_shape[1]);
      GError *error = nullptr;
      if (!slim_w4a8_scale_bias (module.c_str (), unpacked.data (), scale, n_out, n_in, kTpNum,
                                 want_sb.data (), &error))
        {
          problem ("%s: %s", module.c_str (), error->message);
          g_clear_error (&error);
          return;
        }
      const int64_t slice = n_in / sb_shape[1];
      for (int64_t n = 0; n < sb_shape[0]; n++)
        for (int64_t t = 0; t < sb_shape[1]; t++)
          {
            // msModelSlim sums float32 products in torch's (unspecified)
            // order: allow 1e-5 of the sum of |terms| (~84 float32 ulps
            // of accumulated rounding, enough for pairwise sums of any
            // realistic width and sequential sums of ~80 terms)
            double abs_sum = 0.0;
            for (int64_t k = 0; k < slice; k++)
              abs_sum += std::fabs ((double)unpacked[n * n_in + t * slice + k] * scale[n]);
            double tol = 1e-5 * 8.0 * abs_sum + 1e-30;
            float got = sb[n * sb_shape[1] + t], exp = want_sb[n * sb_shape[1] + t];
            if (!(std::fabs ((double)got - (double)exp) <= tol))
              {
                problem ("%s.scale_bias[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                         "] = %g, expected %g from the packed weight and scales",
                         module.c_str (), n, t, (double)got, (double)exp);
                return;
              }
          }
    }
}

// MX per_block (spec 3.1): weight float8_e4m3fn [out, in] (W8A8_MXFP8) or
// packed E2M1 codes uint8 [out, in / 2]; weight_scale uint8 [out,
// ceil (in / 32)] = E8M0 exponent + 127 (255 is E8M0's NaN); group_size 32.
void
Checker::check_mx (const std::string &module, const std::string &label, const Info &wi)
{
  const bool fp8 = label == "W8A8_MXFP8";
  const std::string w = module + ".weight", ws = module + ".weight_scale";
  const int64_t n_out = wi.shape[0], n_in = wi.shape[1] * (fp8 ? 1 : 2);
  const int64_t n_blocks = (n_in + 31) / 32;
  bool ok = expect (w, fp8 ? SLIM_DTYPE_F8_E4M3FN : SLIM_DTYPE_U8, wi.shape);
  ok &= expect (ws, SLIM_DTYPE_U8, { n_out, n_blocks });
  if (have_group_size_ && rep_->group_size != 32)
    problem ("%s: \"group_size\" is %" G_GINT64_FORMAT ", %s needs 32", kDescriptionName,
             rep_->group_size, label.c_str ());
  const bool dual = label == "W4A4_MXFP4_DUALSCALE";
  const std::string b = module + ".bias";
  if (desc_labels_.count (b))
    {
      // FLOAT, except a dual-scale linear's, which has the linear's label
      if (desc_labels_[b] != (dual ? label : std::string ("FLOAT")))
        problem ("%s: label %s, the bias of a quantized linear is %s", b.c_str (),
                 desc_labels_[b].c_str (), dual ? label.c_str () : "FLOAT");
      expect (b, SLIM_DTYPE_F32, { n_out });
    }
  // W4A4_MXFP4_DUALSCALE: weight_dual_scale float32 [out, n_dual, 1], one
  // finite non-negative scale (max |w| / 6) per dual block of a row
  const std::string wd = module + ".weight_dual_scale";
  Info di;
  if (dual)
    {
      if (!info (wd, &di) || di.dtype != SLIM_DTYPE_F32 || di.shape.size () != 3
          || di.shape[0] != n_out || di.shape[1] <= 0 || di.shape[1] > n_in || di.shape[2] != 1)
        {
          problem ("%s (%s): must be float32 [%" G_GINT64_FORMAT ", n_dual, 1] with 1 <= n_dual "
                   "<= %" G_GINT64_FORMAT,
                   wd.c_str (), label.c_str (), n_out, n_in);
          ok = false;
        }
    }
  if (!ok || !opt_.check_values)
    return;
  if (dual)
    {
      const float *d = data<float> (wd);
      for (int64_t k = 0; d != nullptr && k < di.shape[0] * di.shape[1]; k++)
        if (!(std::isfinite (d[k]) && d[k] >= 0.0f))
          {
            problem ("%s[%" G_GINT64_FORMAT "] = %g is not a finite dual scale", wd.c_str (), k,
                     (double)d[k]);
            break;
          }
    }
  const uint8_t *scale = data<uint8_t> (ws);
  const uint8_t *wq = data<uint8_t> (w);
  if (!scale || !wq)
    return;
  for (int64_t k = 0; k < n_out * n_blocks; k++)
    if (scale[k] == 255)
      {
        problem ("%s[%" G_GINT64_FORMAT "] is 255, E8M0's NaN", ws.c_str (), k);
        break;
      }
  if (fp8)
    for (int64_t k = 0; k < n_out * n_in; k++)
      if ((wq[k] & 0x7f) == 0x7f)
        {
          problem ("%s[%" G_GINT64_FORMAT "] is a float8_e4m3fn NaN", w.c_str (), k);
          break;
        }
}

void
Checker::check_model_quant_type (const std::string &written)
{
  std::string expected = opt_.expected_model_quant_type;
  if (expected.empty ())
    {
      // FLOAT counts only for float linears, which the description cannot
      // tell from norms or embeddings: with no quantized label both
      // "Unknown" and "FLOAT" are accepted.
      // W4A16 (slimflow extension) ranks between W8A16 and W8A8_DYNAMIC
      auto rank = [] (const std::string &l) -> int {
        if (l == "W4A16" || l == "NF4")
          return 2 * slim_quant_label_priority ("W8A16") + 1;
        int p = slim_quant_label_priority (l.c_str ());
        return p < 0 ? -1 : 2 * p;
      };
      std::string t = SLIM_QUANT_LABEL_UNKNOWN;
      for (const auto &kv : desc_labels_)
        if (kv.second != "FLOAT" && rank (kv.second) >= 0
            && (rank (t) < 0 || rank (kv.second) > rank (t)))
          t = kv.second;
      expected = t;
      if (expected == SLIM_QUANT_LABEL_UNKNOWN && written == "FLOAT")
        expected = "FLOAT";
    }
  if (written != expected)
    problem ("%s: model_quant_type is \"%s\", expected \"%s\"", kDescriptionName, written.c_str (),
             expected.c_str ());
}

void
Checker::check_config ()
{
  std::string file = path ("config.json");
  GError *error = nullptr;
  JsonParser *parser = json_parser_new ();
  if (!json_parser_load_from_file (parser, file.c_str (), &error))
    {
      problem ("config.json: %s", error->message);
      g_clear_error (&error);
      g_object_unref (parser);
      return;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT (root))
    problem ("config.json is not a JSON object");
  else
    {
      JsonObject *obj = json_node_get_object (root);
      if (json_object_has_member (obj, "quantization_config"))
        problem ("config.json still has quantization_config");
      JsonNode *text = json_object_get_member (obj, "text_config");
      if (text != nullptr && JSON_NODE_HOLDS_OBJECT (text)
          && json_object_has_member (json_node_get_object (text), "quantization_config"))
        problem ("config.json still has text_config.quantization_config");
    }
  g_object_unref (parser);
}

// C8 (spec 2.8): <attn>.{k,v}_proj.kv_cache_{scale,offset}, one float
// vector each of one length, positive finite scales, offsets integral
// within int8, the global kv_cache_type / kv_quant_type "C8".  FAQuant
// (spec 2.9): <attn>.fa_{q,k,v}.scale f32 (H, 1) positive, .offset int8
// zeros (H, 1), <attn>.quant_type, the global fa_quant_type "FAKQuant".
void
Checker::check_attention ()
{
  bool any_c8 = false, any_fa = false;
  std::set<std::string> fa_attns;
  for (const auto &kv : desc_labels_)
    {
      const std::string &name = kv.first;
      if (kv.second == "C8")
        {
          any_c8 = true;
          static const char *const kParts[]
              = { ".k_proj.kv_cache_scale", ".k_proj.kv_cache_offset", ".v_proj.kv_cache_scale",
                  ".v_proj.kv_cache_offset" };
          std::string attn;
          for (const char *part : kParts)
            if (g_str_has_suffix (name.c_str (), part))
              attn = name.substr (0, name.size () - strlen (part));
          if (attn.empty ())
            {
              problem ("%s: C8 tensor with an unknown name", name.c_str ());
              continue;
            }
          if (name != attn + kParts[0])
            continue; // checked with the k scale
          Info first;
          if (!info (name, &first) || first.shape.size () != 1)
            {
              problem ("%s: must be a vector", name.c_str ());
              continue;
            }
          for (const char *part : kParts)
            {
              Info i;
              std::string t = attn + part;
              if (!info (t, &i))
                {
                  problem ("%s: missing tensor", t.c_str ());
                  continue;
                }
              if (i.shape != first.shape)
                problem ("%s: shape %s, expected %s", t.c_str (), shape_str (i.shape).c_str (),
                         shape_str (first.shape).c_str ());
              GError *error = nullptr;
              SlimTensor *raw = slim_safetensors_get_tensor (owner_[t], t.c_str (), &error);
              SlimTensor *f = raw != nullptr ? slim_tensor_to_f32 (raw, &error) : nullptr;
              if (f == nullptr)
                {
                  problem ("%s: %s", t.c_str (), error != nullptr ? error->message : "unreadable");
                  g_clear_error (&error);
                }
              else
                {
                  const float *d = static_cast<const float *> (slim_tensor_get_data (f));
                  bool scale = g_str_has_suffix (part, "scale");
                  for (int64_t c = 0; c < slim_tensor_get_n_elements (f); c++)
                    if (scale ? !(std::isfinite (d[c]) && d[c] > 0.0f)
                              : !(d[c] == std::round (d[c]) && d[c] >= -128.0f && d[c] <= 127.0f))
                      {
                        problem ("%s[%" G_GINT64_FORMAT "] = %g is not a usable %s", t.c_str (),
                                 (gint64)c, (double)d[c], scale ? "scale" : "int8 offset");
                        break;
                      }
                  slim_tensor_unref (f);
                }
              if (raw != nullptr)
                slim_tensor_unref (raw);
            }
        }
      else if (kv.second == "FAQuant")
        {
          any_fa = true;
          size_t dot = name.rfind ('.');
          size_t dot2
              = dot != std::string::npos && dot > 0 ? name.rfind ('.', dot - 1) : std::string::npos;
          std::string branch
              = dot2 != std::string::npos ? name.substr (dot2 + 1, dot - dot2 - 1) : "";
          std::string what = dot != std::string::npos ? name.substr (dot + 1) : "";
          if ((branch != "fa_q" && branch != "fa_k" && branch != "fa_v")
              || (what != "scale" && what != "offset"))
            {
              problem ("%s: FAQuant tensor with an unknown name", name.c_str ());
              continue;
            }
          std::string attn = name.substr (0, dot2);
          fa_attns.insert (attn);
          if (what == "offset")
            continue;
          Info i;
          std::string off = attn + "." + branch + ".offset";
          if (!info (name, &i) || i.shape.size () != 2 || i.shape[1] != 1
              || i.dtype != SLIM_DTYPE_F32)
            {
              problem ("%s: must be float32 (heads, 1)", name.c_str ());
              continue;
            }
          Info oi;
          bool fp8 = info (off, &oi) && oi.dtype == SLIM_DTYPE_F32; // FP8: float32 zeros
          if (expect (off, fp8 ? SLIM_DTYPE_F32 : SLIM_DTYPE_I8, i.shape))
            for (int64_t h = 0; h < i.shape[0]; h++)
              if (fp8 ? data<float> (off)[h] != 0.0f : data<int8_t> (off)[h] != 0)
                {
                  problem ("%s: offsets must be zero", off.c_str ());
                  break;
                }
          const float *d = data<float> (name);
          for (int64_t h = 0; d != nullptr && h < i.shape[0]; h++)
            if (!(std::isfinite (d[h]) && d[h] > 0.0f))
              {
                problem ("%s[%" G_GINT64_FORMAT "] = %g is not a usable scale", name.c_str (),
                         (gint64)h, (double)d[h]);
                break;
              }
        }
    }
  for (const char *key : { "kv_cache_type", "kv_quant_type" })
    {
      auto it = globals_.find (key);
      if (any_c8 && (it == globals_.end () || it->second != "C8"))
        problem ("%s: C8 tensors need \"%s\": \"C8\"", kDescriptionName, key);
      if (!any_c8 && it != globals_.end ())
        problem ("%s: \"%s\" without C8 tensors", kDescriptionName, key);
    }
  auto fa = globals_.find ("fa_quant_type");
  if (any_fa && (fa == globals_.end () || fa->second != "FAKQuant"))
    problem ("%s: FAQuant tensors need \"fa_quant_type\": \"FAKQuant\"", kDescriptionName);
  for (const std::string &attn : fa_attns)
    if (!fa_quant_types_.count (attn))
      problem ("%s: FAQuant tensors of %s but no %s.quant_type", kDescriptionName, attn.c_str (),
               attn.c_str ());
  // (a quant_type without tensors is an attention with dynamic branches only)
}

void
Checker::run ()
{
  check_description ();
  check_weights ();
  check_bijection ();
  check_modules ();
  check_model_quant_type (rep_->model_quant_type);
  check_attention ();
  check_config ();
}

} // namespace

std::string
SlimTestAscendv1Report::summary () const
{
  std::string out;
  for (const std::string &p : problems)
    out += p + "\n";
  return out;
}

bool
SlimTestAscendv1Report::mentions (const std::string &fragment) const
{
  for (const std::string &p : problems)
    if (p.find (fragment) != std::string::npos)
      return true;
  return false;
}

SlimTestAscendv1Report
slim_test_ascendv1_check (const std::string &dir, const SlimTestAscendv1Options &options)
{
  SlimTestAscendv1Report report;
  Checker checker (dir, options, &report);
  checker.run ();
  return report;
}

bool
CheckAscendV1Folder (const std::string &path, std::vector<std::string> *errors)
{
  SlimTestAscendv1Report report = slim_test_ascendv1_check (path);
  if (errors != nullptr)
    *errors = report.problems;
  return report.ok ();
}
