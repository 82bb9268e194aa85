// SPDX-License-Identifier: Apache-2.0
//
// bnb-checker.cpp: see bnb-checker.hpp.
#include "bnb-checker.hpp"

extern "C"
{
#include "slim-safetensors.h"
}

#include <json-glib/json-glib.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>

namespace
{

// bitsandbytes' get_4bit_type ("nf4") table (functional.py), float32.
const float kNf4[16] = { -1.0f,
                         -0.6961928009986877f,
                         -0.5250730514526367f,
                         -0.39491748809814453f,
                         -0.28444138169288635f,
                         -0.18477343022823334f,
                         -0.09105003625154495f,
                         0.0f,
                         0.07958029955625534f,
                         0.16093020141124725f,
                         0.24611230194568634f,
                         0.33791524171829224f,
                         0.44070982933044434f,
                         0.5626170039176941f,
                         0.7229568362236023f,
                         1.0f };

const char *const kStateSuffix = ".weight.quant_state.bitsandbytes__nf4";

bool
is_float_dtype_name (const char *s)
{
  return s != nullptr
         && (strcmp (s, "float32") == 0 || strcmp (s, "float16") == 0
             || strcmp (s, "bfloat16") == 0);
}

struct Folder
{
  std::map<std::string, std::string> file_of; // tensor -> file path
  std::map<std::string, SlimSafetensors *> open;
  std::string error;

  ~Folder ()
  {
    for (auto &kv : open)
      g_object_unref (kv.second);
  }

  bool
  load (const std::string &dir)
  {
    std::string single = dir + "/model.safetensors";
    std::string index = dir + "/model.safetensors.index.json";
    std::vector<std::string> files;
    if (g_file_test (index.c_str (), G_FILE_TEST_EXISTS))
      {
        JsonParser *p = json_parser_new ();
        GError *e = nullptr;
        if (!json_parser_load_from_file (p, index.c_str (), &e))
          {
            error = index + ": " + e->message;
            g_error_free (e);
            g_object_unref (p);
            return false;
          }
        JsonNode *root = json_parser_get_root (p);
        JsonObject *map
            = root != nullptr && JSON_NODE_HOLDS_OBJECT (root)
                  ? json_object_get_object_member (json_node_get_object (root), "weight_map")
                  : nullptr;
        if (map == nullptr)
          {
            error = index + ": no weight_map";
            g_object_unref (p);
            return false;
          }
        GList *members = json_object_get_members (map);
        for (GList *l = members; l != nullptr; l = l->next)
          {
            const char *name = (const char *)l->data;
            file_of[name] = dir + "/" + json_object_get_string_member (map, name);
          }
        g_list_free (members);
        g_object_unref (p);
      }
    else
      files.push_back (single);
    std::set<std::string> paths;
    for (auto &kv : file_of)
      paths.insert (kv.second);
    for (auto &f : files)
      paths.insert (f);
    for (const std::string &path : paths)
      {
        GError *e = nullptr;
        SlimSafetensors *st = slim_safetensors_open (path.c_str (), &e);
        if (st == nullptr)
          {
            error = path + ": " + (e ? e->message : "cannot open");
            g_clear_error (&e);
            return false;
          }
        open[path] = st;
        if (!files.empty ())
          {
            const char *const *names = slim_safetensors_get_names (st);
            for (guint i = 0; names != nullptr && names[i] != nullptr; i++)
              file_of[names[i]] = path;
          }
      }
    return true;
  }

  SlimTensor *
  get (const std::string &name, std::string *why)
  {
    auto it = file_of.find (name);
    if (it == file_of.end ())
      {
        *why = name + ": missing";
        return nullptr;
      }
    GError *e = nullptr;
    SlimTensor *t = slim_safetensors_get_tensor (open[it->second], name.c_str (), &e);
    if (t == nullptr)
      {
        *why = name + ": " + (e ? e->message : "unreadable");
        g_clear_error (&e);
      }
    return t;
  }
};

struct State
{
  int64_t blocksize = 0, n_out = 0, n_in = 0;
};

// The quant_state JSON of a module, checked.
bool
read_state (Folder &f, const std::string &module, State *s, std::string *why)
{
  SlimTensor *t = f.get (module + kStateSuffix, why);
  if (t == nullptr)
    return false;
  std::unique_ptr<SlimTensor, void (*) (SlimTensor *)> hold (t, slim_tensor_unref);
  if (slim_tensor_get_dtype (t) != SLIM_DTYPE_U8 || slim_tensor_get_n_dims (t) != 1)
    {
      *why = module + ": quant_state must be a 1-D uint8 tensor";
      return false;
    }
  std::string text ((const char *)slim_tensor_get_data (t), slim_tensor_get_n_elements (t));
  if (!g_utf8_validate (text.data (), (gssize)text.size (), nullptr))
    {
      *why = module + ": quant_state is not UTF-8";
      return false;
    }
  JsonParser *p = json_parser_new ();
  std::unique_ptr<JsonParser, void (*) (gpointer)> hp (p, g_object_unref);
  if (!json_parser_load_from_data (p, text.c_str (), (gssize)text.size (), nullptr))
    {
      *why = module + ": quant_state is not JSON: " + text;
      return false;
    }
  JsonNode *root = json_parser_get_root (p);
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT (root))
    {
      *why = module + ": quant_state is not a JSON object";
      return false;
    }
  JsonObject *o = json_node_get_object (root);
  if (json_object_get_size (o) != 4 || !json_object_has_member (o, "quant_type")
      || !json_object_has_member (o, "blocksize") || !json_object_has_member (o, "dtype")
      || !json_object_has_member (o, "shape"))
    {
      *why
          = module + ": quant_state must hold exactly quant_type, blocksize, dtype, shape: " + text;
      return false;
    }
  if (g_strcmp0 (json_object_get_string_member (o, "quant_type"), "nf4") != 0
      || !is_float_dtype_name (json_object_get_string_member (o, "dtype")))
    {
      *why = module + ": quant_state quant_type / dtype: " + text;
      return false;
    }
  s->blocksize = json_object_get_int_member (o, "blocksize");
  bool pow2
      = s->blocksize >= 64 && s->blocksize <= 4096 && (s->blocksize & (s->blocksize - 1)) == 0;
  JsonArray *shape = json_object_get_array_member (o, "shape");
  if (!pow2 || shape == nullptr || json_array_get_length (shape) != 2)
    {
      *why = module + ": quant_state blocksize / shape: " + text;
      return false;
    }
  s->n_out = json_array_get_int_element (shape, 0);
  s->n_in = json_array_get_int_element (shape, 1);
  if (s->n_out <= 0 || s->n_in <= 0)
    {
      *why = module + ": quant_state shape: " + text;
      return false;
    }
  return true;
}

bool
dequantize (Folder &f, const std::string &module, std::vector<float> *w, State *s, std::string *why)
{
  if (!read_state (f, module, s, why))
    return false;
  int64_t n = s->n_out * s->n_in, n_blocks = (n + s->blocksize - 1) / s->blocksize;
  SlimTensor *q = f.get (module + ".weight", why);
  SlimTensor *absmax = q != nullptr ? f.get (module + ".weight.absmax", why) : nullptr;
  SlimTensor *qmap = absmax != nullptr ? f.get (module + ".weight.quant_map", why) : nullptr;
  std::unique_ptr<SlimTensor, void (*) (SlimTensor *)> h1 (q, slim_tensor_unref),
      h2 (absmax, slim_tensor_unref), h3 (qmap, slim_tensor_unref);
  if (qmap == nullptr)
    return false;
  if (slim_tensor_get_dtype (q) != SLIM_DTYPE_U8 || slim_tensor_get_n_dims (q) != 2
      || slim_tensor_get_dim (q, 0) != (n + 1) / 2 || slim_tensor_get_dim (q, 1) != 1)
    {
      *why = module + ".weight: must be uint8 (" + std::to_string ((n + 1) / 2) + ", 1)";
      return false;
    }
  if (slim_tensor_get_dtype (absmax) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (absmax) != 1
      || slim_tensor_get_n_elements (absmax) != n_blocks)
    {
      *why = module + ".weight.absmax: must be float32 (" + std::to_string (n_blocks) + ")";
      return false;
    }
  if (slim_tensor_get_dtype (qmap) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (qmap) != 1
      || slim_tensor_get_n_elements (qmap) != 16
      || memcmp (slim_tensor_get_data (qmap), kNf4, sizeof kNf4) != 0)
    {
      *why = module + ".weight.quant_map: must be bitsandbytes' NF4 table, float32 (16)";
      return false;
    }
  const guint8 *packed = (const guint8 *)slim_tensor_get_data (q);
  const float *am = (const float *)slim_tensor_get_data (absmax);
  for (int64_t b = 0; b < n_blocks; b++)
    if (!std::isfinite (am[b]) || am[b] < 0.0f)
      {
        *why = module + ".weight.absmax: not finite and >= 0";
        return false;
      }
  w->resize (n);
  for (int64_t i = 0; i < n; i++)
    {
      // the first element of a byte in its high nibble (kQuantizeBlockwise)
      unsigned code = (i % 2 == 0) ? (packed[i / 2] >> 4) : (packed[i / 2] & 0x0f);
      (*w)[i] = kNf4[code] * am[i / s->blocksize];
    }
  return true;
}

} // namespace

std::string
SlimTestBnbReport::summary () const
{
  std::ostringstream out;
  for (const std::string &p : problems)
    out << p << "\n";
  return out.str ();
}

SlimTestBnbReport
slim_test_bnb_check (const std::string &dir)
{
  SlimTestBnbReport r;
  std::string config = dir + "/config.json";
  JsonParser *p = json_parser_new ();
  std::unique_ptr<JsonParser, void (*) (gpointer)> hp (p, g_object_unref);
  GError *e = nullptr;
  if (!json_parser_load_from_file (p, config.c_str (), &e))
    {
      r.problems.push_back (config + ": " + (e ? e->message : "unreadable"));
      g_clear_error (&e);
      return r;
    }
  JsonNode *root = json_parser_get_root (p);
  JsonObject *qc
      = root != nullptr && JSON_NODE_HOLDS_OBJECT (root)
                && json_object_has_member (json_node_get_object (root), "quantization_config")
            ? json_object_get_object_member (json_node_get_object (root), "quantization_config")
            : nullptr;
  if (qc == nullptr)
    {
      r.problems.push_back ("config.json: no quantization_config");
      return r;
    }
  auto want_bool = [&] (const char *key, bool value) {
    JsonNode *n = json_object_get_member (qc, key);
    if (n == nullptr || json_node_get_value_type (n) != G_TYPE_BOOLEAN
        || (bool)json_node_get_boolean (n) != value)
      r.problems.push_back (std::string ("quantization_config.") + key + " must be "
                            + (value ? "true" : "false"));
  };
  auto want_str = [&] (const char *key, const char *value) {
    JsonNode *n = json_object_get_member (qc, key);
    const char *s = n != nullptr && json_node_get_value_type (n) == G_TYPE_STRING
                        ? json_node_get_string (n)
                        : nullptr;
    if (value != nullptr ? g_strcmp0 (s, value) != 0 : !is_float_dtype_name (s))
      r.problems.push_back (std::string ("quantization_config.") + key + " must be "
                            + (value != nullptr ? value : "a float dtype name"));
  };
  want_str ("quant_method", "bitsandbytes");
  want_bool ("load_in_4bit", true);
  want_bool ("_load_in_4bit", true);
  want_bool ("load_in_8bit", false);
  want_bool ("_load_in_8bit", false);
  want_bool ("bnb_4bit_use_double_quant", false);
  want_str ("bnb_4bit_quant_type", "nf4");
  want_str ("bnb_4bit_quant_storage", "uint8");
  want_str ("bnb_4bit_compute_dtype", nullptr);
  JsonNode *skip = json_object_get_member (qc, "llm_int8_skip_modules");
  if (skip == nullptr || !JSON_NODE_HOLDS_ARRAY (skip))
    r.problems.push_back ("quantization_config.llm_int8_skip_modules must be a list");
  else
    {
      JsonArray *a = json_node_get_array (skip);
      for (guint i = 0; i < json_array_get_length (a); i++)
        r.skip.push_back (json_array_get_string_element (a, i));
    }

  Folder f;
  if (!f.load (dir))
    {
      r.problems.push_back (f.error);
      return r;
    }
  std::set<std::string> modules;
  for (auto &kv : f.file_of)
    {
      const std::string &name = kv.first;
      size_t sl = strlen (kStateSuffix);
      if (name.size () > sl && name.compare (name.size () - sl, sl, kStateSuffix) == 0)
        r.quantized.insert (name.substr (0, name.size () - sl));
      for (const char *suffix : { ".weight", ".bias" })
        {
          size_t n = strlen (suffix);
          if (name.size () > n && name.compare (name.size () - n, n, suffix) == 0)
            modules.insert (name.substr (0, name.size () - n));
        }
    }
  for (const std::string &m : r.quantized)
    {
      std::vector<float> w;
      State s;
      std::string why;
      if (!dequantize (f, m, &w, &s, &why))
        r.problems.push_back (why);
      for (const char *suffix : { ".weight", ".weight.absmax", ".weight.quant_map", kStateSuffix })
        if (!f.file_of.count (m + suffix))
          r.problems.push_back (m + suffix + ": missing");
      for (auto &kv : f.file_of)
        if (kv.first.rfind (m + ".weight.", 0) == 0 && kv.first != m + ".weight.absmax"
            && kv.first != m + ".weight.quant_map" && kv.first != m + kStateSuffix)
          r.problems.push_back (kv.first + ": unexpected (nested quantization is off)");
    }
  for (const std::string &s : r.skip)
    {
      if (r.quantized.count (s))
        r.problems.push_back (s + ": quantized but in llm_int8_skip_modules");
      if (!modules.count (s) && s != "lm_head")
        r.problems.push_back (s + ": in llm_int8_skip_modules but not in the folder");
    }
  return r;
}

bool
slim_test_bnb_dequantize (const std::string &dir,
                          const std::string &module,
                          std::vector<float> *w,
                          int64_t *n_out,
                          int64_t *n_in,
                          std::string *why)
{
  Folder f;
  State s;
  if (!f.load (dir))
    {
      *why = f.error;
      return false;
    }
  if (!dequantize (f, module, w, &s, why))
    return false;
  *n_out = s.n_out;
  *n_in = s.n_in;
  return true;
}
