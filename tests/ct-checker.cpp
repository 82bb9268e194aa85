// SPDX-License-Identifier: Apache-2.0
//
// ct-checker.cpp: see ct-checker.hpp for what is checked.
#include "ct-checker.hpp"

#include "checker-folder.hpp"

extern "C"
{
#include "slim-safetensors.h"
}

#include <json-glib/json-glib.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <sstream>

namespace
{

const std::set<std::string> kFormats = { "int-quantized", "pack-quantized", "float-quantized",
                                         "naive-quantized", "mixed-precision" };
// Suffixes of the tensors a quantized module may have.
const std::set<std::string> kQuantSuffixes
    = { "weight_scale", "weight_zero_point", "weight_packed",    "weight_shape",
        "weight_g_idx", "input_scale",       "input_zero_point", "input_global_scale" };

using namespace slim_checker;

struct Args
{
  bool present = false;
  int bits = 0;
  bool symmetric = true;
  bool is_float = false; // type "float": fp8 e4m3 (num_bits 8, symmetric)
  std::string strategy;
  int64_t group_size = 0;
  bool dynamic = false;
};

struct Group
{
  std::string name;
  std::vector<std::string> targets;
  Args weights;
  Args input;
  std::string format;
};

// Python re.match (compressed-tensors' "re:" targets): anchored at the
// start only; GRegex is PCRE, whose syntax is Python's for these patterns.
bool
target_matches (const std::string &target, const std::string &module, bool is_linear)
{
  if (target == module)
    return true;
  if (target == "Linear")
    return is_linear;
  if (target.rfind ("re:", 0) != 0)
    return false;
  GRegex *re
      = g_regex_new (target.c_str () + 3, (GRegexCompileFlags)0, G_REGEX_MATCH_ANCHORED, nullptr);
  bool hit = re != nullptr && g_regex_match (re, module.c_str (), (GRegexMatchFlags)0, nullptr);
  if (re != nullptr)
    g_regex_unref (re);
  return hit;
}

// Bit b of a little-endian int32 word stream.
inline unsigned
stream_bit (const int32_t *words, int64_t bit)
{
  return ((uint32_t)words[bit / 32] >> (bit % 32)) & 1u;
}

// One b-bit offset code of element k of a stream; signed value back.
inline int
stream_value (const int32_t *words, int64_t k, int bits)
{
  unsigned code = 0;
  for (int j = 0; j < bits; j++)
    code |= stream_bit (words, k * bits + j) << j;
  return (int)code - (1 << (bits - 1));
}

// The value of a float8_e4m3fn byte, from the format's definition (sign,
// 4 exponent bits of bias 7, 3 mantissa bits, subnormals at exponent 0,
// S.1111.111 NaN, no infinities): written here, not shared with slimflow.
inline float
e4m3fn_value (uint8_t b)
{
  int sign = b >> 7, e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7)
    return NAN;
  float mag
      = e == 0 ? std::ldexp ((float)m / 8.0f, -6) : std::ldexp (1.0f + (float)m / 8.0f, e - 7);
  return sign ? -mag : mag;
}

// The dequantization inputs of one module.
struct Module
{
  int64_t n_out = 0, n_in = 0;
  std::vector<int> q;       // (n_out, n_in), int weights
  std::vector<float> qf;    // (n_out, n_in), the values of fp8 weights
  std::vector<int> zp;      // (rows, cols) of the scale, empty when symmetric
  std::vector<float> scale; // (rows, cols)
  int64_t scale_cols = 1;
  bool per_tensor = false;
  int64_t group_size = 0;
};

class Checker
{
public:
  Checker (const std::string &dir, SlimTestCtReport *rep) : dir_ (dir), rep_ (rep)
  {
  }
  ~Checker ()
  {
    if (parser_ != nullptr)
      g_object_unref (parser_);
  }

  void run ();
  // Loads (and checks) one quantized module; false when unusable.
  bool load_module (const std::string &module, const Group &g, Module *m);

  Folder folder_;
  std::vector<Group> groups_;
  std::vector<std::string> ignore_;
  bool tied_ = false;
  bool config_ok_ = false;
  void check_config ();

private:
  std::string dir_;
  SlimTestCtReport *rep_;
  JsonParser *parser_ = nullptr;

  void problem (const char *fmt, ...) G_GNUC_PRINTF (2, 3);
  Args parse_args (JsonObject *obj, const std::string &where, bool weights);
  bool expect (const std::string &name,
               const std::vector<SlimDType> &dtypes,
               const std::vector<int64_t> &shape,
               Info *got = nullptr);
  void check_modules ();
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

Args
Checker::parse_args (JsonObject *obj, const std::string &where, bool weights)
{
  Args a;
  const char *w = where.c_str ();
  a.present = true;
  int64_t bits = 0;
  if (!get_int (obj, "num_bits", &bits) || !get_bool (obj, "symmetric", &a.symmetric)
      || get_str (obj, "strategy") == nullptr || !get_bool (obj, "dynamic", &a.dynamic))
    {
      problem ("%s: num_bits (int), symmetric (bool), strategy (string) and dynamic (bool) "
               "are required",
               w);
      a.present = false;
      return a;
    }
  a.bits = (int)bits;
  a.strategy = get_str (obj, "strategy");
  if (a.bits < 1 || a.bits > 8)
    problem ("%s: num_bits %d outside 1..8", w, a.bits);
  const char *type = get_str (obj, "type");
  a.is_float = g_strcmp0 (type, "float") == 0;
  if (g_strcmp0 (type, "int") != 0 && !a.is_float)
    problem ("%s: type is neither \"int\" nor \"float\"", w);
  if (a.is_float && (a.bits != 8 || !a.symmetric))
    problem ("%s: float args must be 8-bit (fp8 e4m3) and symmetric", w);
  if (a.is_float && weights && a.strategy == "group")
    problem ("%s: fp8 weights have no group strategy", w);
  JsonNode *gs = json_object_get_member (obj, "group_size");
  bool has_gs = gs != nullptr && !JSON_NODE_HOLDS_NULL (gs);
  if (has_gs && !get_int (obj, "group_size", &a.group_size))
    a.group_size = -1;
  if (a.strategy == "group" ? !(has_gs && a.group_size > 0) : has_gs)
    problem ("%s: group_size must be a positive integer exactly for strategy group", w);
  std::set<std::string> allowed = weights ? std::set<std::string>{ "tensor", "channel", "group" }
                                          : std::set<std::string>{ "tensor", "token" };
  if (allowed.count (a.strategy) == 0)
    problem ("%s: strategy \"%s\" is not one this checker knows for %s", w, a.strategy.c_str (),
             weights ? "weights" : "input activations");
  if (weights && a.dynamic)
    problem ("%s: dynamic weights", w);
  if (!weights && (a.strategy == "token") != a.dynamic)
    problem ("%s: token activations must be dynamic, tensor ones static", w);
  JsonNode *zp = json_object_get_member (obj, "zp_dtype");
  bool has_zp = zp != nullptr && !JSON_NODE_HOLDS_NULL (zp);
  if (has_zp == a.symmetric)
    problem ("%s: zp_dtype must be set exactly for asymmetric args", w);
  return a;
}

void
Checker::check_config ()
{
  std::string file = dir_ + "/config.json";
  GError *error = nullptr;
  parser_ = json_parser_new ();
  if (!json_parser_load_from_file (parser_, file.c_str (), &error))
    {
      problem ("config.json: %s", error->message);
      g_clear_error (&error);
      return;
    }
  JsonNode *root = json_parser_get_root (parser_);
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT (root))
    {
      problem ("config.json: not an object");
      return;
    }
  JsonObject *config = json_node_get_object (root);
  get_bool (config, "tie_word_embeddings", &tied_);
  JsonObject *qc = get_obj (config, "quantization_config");
  if (qc == nullptr)
    {
      problem ("config.json: no quantization_config object");
      return;
    }
  auto str = [&] (const char *key) -> std::string {
    JsonNode *n = json_object_get_member (qc, key);
    if (n == nullptr || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_STRING)
      {
        problem ("quantization_config.%s: missing or not a string", key);
        return "";
      }
    return json_node_get_string (n);
  };
  if (str ("quant_method") != "compressed-tensors")
    problem ("quantization_config.quant_method is not \"compressed-tensors\"");
  if (str ("quantization_status") != "compressed")
    problem ("quantization_config.quantization_status is not \"compressed\"");
  str ("version");
  rep_->format = str ("format");
  if (kFormats.count (rep_->format) == 0)
    problem ("quantization_config.format \"%s\" is unknown", rep_->format.c_str ());
  JsonNode *kv = json_object_get_member (qc, "kv_cache_scheme");
  if (kv != nullptr && !JSON_NODE_HOLDS_NULL (kv))
    problem ("quantization_config.kv_cache_scheme: this checker knows no KV-cache scheme");
  JsonNode *ign = json_object_get_member (qc, "ignore");
  if (ign == nullptr || !JSON_NODE_HOLDS_ARRAY (ign))
    problem ("quantization_config.ignore: missing or not a list");
  else
    {
      JsonArray *arr = json_node_get_array (ign);
      for (guint i = 0; i < json_array_get_length (arr); i++)
        {
          const char *s = get_str_at (arr, i);
          if (s == nullptr)
            problem ("quantization_config.ignore[%u] is not a string", i);
          else
            ignore_.push_back (s);
        }
    }
  rep_->ignore = ignore_;
  JsonNode *cg = json_object_get_member (qc, "config_groups");
  if (cg == nullptr || !JSON_NODE_HOLDS_OBJECT (cg)
      || json_object_get_size (json_node_get_object (cg)) == 0)
    {
      problem ("quantization_config.config_groups: missing or empty");
      return;
    }
  JsonObject *groups = json_node_get_object (cg);
  GList *names = json_object_get_members (groups);
  std::set<std::string> formats;
  size_t n_before = rep_->problems.size ();
  for (GList *l = names; l != nullptr; l = l->next)
    {
      Group g;
      g.name = (const char *)l->data;
      std::string where = "config_groups." + g.name;
      JsonNode *gn = json_object_get_member (groups, g.name.c_str ());
      if (!JSON_NODE_HOLDS_OBJECT (gn))
        {
          problem ("%s: not an object", where.c_str ());
          continue;
        }
      JsonObject *go = json_node_get_object (gn);
      JsonNode *tn = json_object_get_member (go, "targets");
      if (tn != nullptr && JSON_NODE_HOLDS_ARRAY (tn))
        for (guint i = 0; i < json_array_get_length (json_node_get_array (tn)); i++)
          {
            const char *t = get_str_at (json_node_get_array (tn), i);
            if (t != nullptr)
              g.targets.push_back (t);
          }
      if (g.targets.empty ())
        problem ("%s.targets: missing or empty", where.c_str ());
      JsonNode *wn = json_object_get_member (go, "weights");
      if (wn == nullptr || !JSON_NODE_HOLDS_OBJECT (wn))
        problem ("%s.weights: missing", where.c_str ());
      else
        g.weights = parse_args (json_node_get_object (wn), where + ".weights", true);
      JsonNode *in = json_object_get_member (go, "input_activations");
      if (in != nullptr && JSON_NODE_HOLDS_OBJECT (in))
        g.input = parse_args (json_node_get_object (in), where + ".input_activations", false);
      else if (in == nullptr || !JSON_NODE_HOLDS_NULL (in))
        problem ("%s.input_activations: neither args nor null", where.c_str ());
      JsonNode *out = json_object_get_member (go, "output_activations");
      if (out == nullptr || !JSON_NODE_HOLDS_NULL (out))
        problem ("%s.output_activations: must be null", where.c_str ());
      const char *fmt = get_str (go, "format");
      g.format = fmt != nullptr ? fmt : rep_->format;
      formats.insert (g.format);
      if (g.format == "int-quantized"
          && (g.weights.bits != 8 || g.weights.is_float || !g.input.present || g.input.is_float))
        problem ("%s: int-quantized needs int8 weights and int8 activations", where.c_str ());
      else if (g.format == "pack-quantized" && (g.input.present || g.weights.is_float))
        problem ("%s: pack-quantized is int weight-only here", where.c_str ());
      else if (g.format == "float-quantized"
               && (!g.weights.is_float || !g.input.present || !g.input.is_float))
        problem ("%s: float-quantized needs fp8 weights and fp8 activations", where.c_str ());
      else if (g.format == "naive-quantized" && (!g.weights.is_float || g.input.present))
        problem ("%s: naive-quantized is fp8 weight-only here", where.c_str ());
      else if (g.format != "int-quantized" && g.format != "pack-quantized"
               && g.format != "float-quantized" && g.format != "naive-quantized")
        problem ("%s: format \"%s\" is not one this checker validates", where.c_str (),
                 g.format.c_str ());
      if (g.input.present && g.input.bits != 8)
        problem ("%s: input activations of %d bits", where.c_str (), g.input.bits);
      groups_.push_back (g);
    }
  g_list_free (names);
  std::string expected = formats.size () == 1 ? *formats.begin () : "mixed-precision";
  if (rep_->format != expected)
    problem ("quantization_config.format is \"%s\", the groups say \"%s\"", rep_->format.c_str (),
             expected.c_str ());
  config_ok_ = rep_->problems.size () == n_before;
}

bool
Checker::expect (const std::string &name,
                 const std::vector<SlimDType> &dtypes,
                 const std::vector<int64_t> &shape,
                 Info *got)
{
  Info i;
  if (!folder_.info (name, &i))
    {
      problem ("%s: missing tensor", name.c_str ());
      return false;
    }
  if (got != nullptr)
    *got = i;
  bool ok = true;
  bool dtype_ok = false;
  for (SlimDType d : dtypes)
    dtype_ok = dtype_ok || d == i.dtype;
  if (!dtype_ok)
    {
      problem ("%s: dtype %s, expected %s", name.c_str (), slim_dtype_get_name (i.dtype),
               slim_dtype_get_name (dtypes[0]));
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

bool
Checker::load_module (const std::string &module, const Group &g, Module *m)
{
  const std::string X = module + ".";
  std::string why;
  size_t n_before = rep_->problems.size ();
  bool packed = g.format == "pack-quantized";
  int bits = g.weights.bits;
  Info wi;

  // the weight's shape
  if (packed)
    {
      Info si;
      if (!expect (X + "weight_shape", { SLIM_DTYPE_I64, SLIM_DTYPE_I32 }, { 2 }, &si))
        return false;
      SlimTensor *t = folder_.read (X + "weight_shape", &why);
      if (t == nullptr)
        {
          problem ("%s", why.c_str ());
          return false;
        }
      SlimTensor *t64 = slim_tensor_convert (t, SLIM_DTYPE_I64, nullptr);
      const int64_t *v = t64 != nullptr ? (const int64_t *)slim_tensor_get_data (t64) : nullptr;
      m->n_out = v != nullptr ? v[0] : 0;
      m->n_in = v != nullptr ? v[1] : 0;
      if (t64 != nullptr)
        slim_tensor_unref (t64);
      slim_tensor_unref (t);
      if (m->n_out <= 0 || m->n_in <= 0)
        {
          problem ("%sweight_shape: not positive", X.c_str ());
          return false;
        }
      int64_t words = (m->n_in * bits + 31) / 32;
      if (!expect (X + "weight_packed", { SLIM_DTYPE_I32 }, { m->n_out, words }))
        return false;
      t = folder_.read (X + "weight_packed", &why);
      if (t == nullptr)
        {
          problem ("%s", why.c_str ());
          return false;
        }
      const int32_t *p = (const int32_t *)slim_tensor_get_data (t);
      m->q.resize ((size_t)(m->n_out * m->n_in));
      bool padding_ok = true;
      for (int64_t r = 0; r < m->n_out; r++)
        {
          const int32_t *row = p + r * words;
          for (int64_t c = 0; c < m->n_in; c++)
            m->q[(size_t)(r * m->n_in + c)] = stream_value (row, c, bits);
          for (int64_t b = m->n_in * bits; b < words * 32; b++)
            padding_ok = padding_ok && stream_bit (row, b) == 0;
        }
      slim_tensor_unref (t);
      if (!padding_ok)
        problem ("%sweight_packed: nonzero padding bits", X.c_str ());
    }
  else
    {
      if (!folder_.info (X + "weight", &wi) || wi.shape.size () != 2)
        {
          problem ("%sweight: missing or not 2-D", X.c_str ());
          return false;
        }
      m->n_out = wi.shape[0];
      m->n_in = wi.shape[1];
      if (!expect (X + "weight", { g.weights.is_float ? SLIM_DTYPE_F8_E4M3FN : SLIM_DTYPE_I8 },
                   wi.shape))
        return false;
      SlimTensor *t = folder_.read (X + "weight", &why);
      if (t == nullptr)
        {
          problem ("%s", why.c_str ());
          return false;
        }
      if (g.weights.is_float)
        {
          const uint8_t *b = (const uint8_t *)slim_tensor_get_data (t);
          m->qf.resize ((size_t)(m->n_out * m->n_in));
          for (size_t i = 0; i < m->qf.size (); i++)
            m->qf[i] = e4m3fn_value (b[i]);
          slim_tensor_unref (t);
          for (float v : m->qf)
            if (std::isnan (v))
              {
                problem ("%sweight: a float8_e4m3fn NaN", X.c_str ());
                break;
              }
        }
      else
        {
          const int8_t *q = (const int8_t *)slim_tensor_get_data (t);
          m->q.assign (q, q + m->n_out * m->n_in);
          slim_tensor_unref (t);
          int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
          for (int v : m->q)
            if (v < lo || v > hi)
              {
                problem ("%sweight: value %d outside int%d", X.c_str (), v, bits);
                break;
              }
        }
    }

  // scales
  std::vector<int64_t> scale_shape;
  if (g.weights.strategy == "tensor")
    {
      scale_shape = { 1 };
      m->per_tensor = true;
    }
  else if (g.weights.strategy == "channel")
    scale_shape = { m->n_out, 1 };
  else
    {
      if (g.weights.group_size <= 0 || m->n_in % g.weights.group_size != 0)
        {
          problem ("%s: group_size %lld does not divide %lld input features", module.c_str (),
                   (long long)g.weights.group_size, (long long)m->n_in);
          return false;
        }
      scale_shape = { m->n_out, m->n_in / g.weights.group_size };
      m->group_size = g.weights.group_size;
    }
  m->scale_cols = scale_shape.size () == 2 ? scale_shape[1] : 1;
  if (!expect (X + "weight_scale", { SLIM_DTYPE_F32, SLIM_DTYPE_F16, SLIM_DTYPE_BF16 },
               scale_shape))
    return false;
  SlimTensor *st = folder_.read (X + "weight_scale", &why);
  SlimTensor *st32 = st != nullptr ? slim_tensor_to_f32 (st, nullptr) : nullptr;
  if (st32 == nullptr)
    {
      problem ("%s: cannot read weight_scale", module.c_str ());
      if (st != nullptr)
        slim_tensor_unref (st);
      return false;
    }
  const float *s = (const float *)slim_tensor_get_data (st32);
  m->scale.assign (s, s + slim_tensor_get_n_elements (st32));
  slim_tensor_unref (st32);
  slim_tensor_unref (st);
  for (float v : m->scale)
    if (!std::isfinite (v) || !(v > 0.0f))
      {
        problem ("%sweight_scale: %g is not a finite positive scale", X.c_str (), (double)v);
        break;
      }

  // zero points
  bool has_zp = folder_.has (X + "weight_zero_point");
  if (has_zp == g.weights.symmetric)
    problem ("%sweight_zero_point: must be present exactly for asymmetric weights", X.c_str ());
  if (has_zp && !g.weights.symmetric)
    {
      int64_t rows = m->per_tensor ? 1 : m->n_out, cols = m->scale_cols;
      bool zp_packed = packed && !m->per_tensor;
      std::vector<int64_t> zshape
          = zp_packed ? std::vector<int64_t>{ (rows * bits + 31) / 32, cols } : scale_shape;
      if (!expect (X + "weight_zero_point", { zp_packed ? SLIM_DTYPE_I32 : SLIM_DTYPE_I8 }, zshape))
        return false;
      SlimTensor *zt = folder_.read (X + "weight_zero_point", &why);
      if (zt == nullptr)
        {
          problem ("%s", why.c_str ());
          return false;
        }
      m->zp.resize ((size_t)(rows * cols));
      if (zp_packed)
        {
          // packed along dim 0: column c is one stream of `rows` codes,
          // its words at (w, c) for w = 0 .. words - 1
          const int32_t *p = (const int32_t *)slim_tensor_get_data (zt);
          int64_t words = zshape[0];
          std::vector<int32_t> col ((size_t)words);
          for (int64_t c = 0; c < cols; c++)
            {
              for (int64_t w = 0; w < words; w++)
                col[(size_t)w] = p[w * cols + c];
              for (int64_t r = 0; r < rows; r++)
                m->zp[(size_t)(r * cols + c)] = stream_value (col.data (), r, bits);
              for (int64_t b = rows * bits; b < words * 32; b++)
                if (stream_bit (col.data (), b) != 0)
                  {
                    problem ("%sweight_zero_point: nonzero padding bits", X.c_str ());
                    break;
                  }
            }
        }
      else
        {
          const int8_t *z = (const int8_t *)slim_tensor_get_data (zt);
          int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
          for (size_t i = 0; i < m->zp.size (); i++)
            {
              m->zp[i] = z[i];
              if (z[i] < lo || z[i] > hi)
                {
                  problem ("%sweight_zero_point: %d outside int%d", X.c_str (), z[i], bits);
                  break;
                }
            }
        }
      slim_tensor_unref (zt);
    }

  // activations
  bool static_input = g.input.present && !g.input.dynamic;
  if (folder_.has (X + "input_scale") != static_input)
    problem ("%sinput_scale: must be present exactly for static activations", X.c_str ());
  else if (static_input
           && expect (X + "input_scale", { SLIM_DTYPE_F32, SLIM_DTYPE_F16, SLIM_DTYPE_BF16 },
                      { 1 }))
    {
      SlimTensor *t = folder_.read (X + "input_scale", &why);
      SlimTensor *t32 = t != nullptr ? slim_tensor_to_f32 (t, nullptr) : nullptr;
      float v = t32 != nullptr ? ((const float *)slim_tensor_get_data (t32))[0] : NAN;
      if (!std::isfinite (v) || !(v > 0.0f))
        problem ("%sinput_scale: %g is not a finite positive scale", X.c_str (), (double)v);
      if (t32 != nullptr)
        slim_tensor_unref (t32);
      if (t != nullptr)
        slim_tensor_unref (t);
    }
  bool input_zp = static_input && !g.input.symmetric;
  if (folder_.has (X + "input_zero_point") != input_zp)
    problem ("%sinput_zero_point: must be present exactly for static asymmetric activations",
             X.c_str ());
  else if (input_zp)
    expect (X + "input_zero_point", { SLIM_DTYPE_I8 }, { 1 });

  // nothing else
  Info bi;
  if (folder_.info (X + "bias", &bi)
      && (!is_float_dtype (bi.dtype) || bi.shape != std::vector<int64_t>{ m->n_out }))
    problem ("%sbias: not a float (%lld)", X.c_str (), (long long)m->n_out);
  if (packed && folder_.has (X + "weight"))
    problem ("%sweight: a pack-quantized module holds weight_packed, not weight", X.c_str ());
  for (const char *s : { "weight_g_idx", "input_global_scale" })
    if (folder_.has (X + s))
      problem ("%s%s: not expected for this scheme", X.c_str (), s);
  if (!packed && (folder_.has (X + "weight_packed") || folder_.has (X + "weight_shape")))
    problem ("%s: an int-quantized module holds no weight_packed / weight_shape", module.c_str ());
  return rep_->problems.size () == n_before;
}

void
Checker::check_modules ()
{
  // module -> suffixes
  std::map<std::string, std::set<std::string> > modules;
  for (const auto &kv : folder_.tensors ())
    {
      size_t dot = kv.first.rfind ('.');
      if (dot == std::string::npos)
        continue;
      modules[kv.first.substr (0, dot)].insert (kv.first.substr (dot + 1));
    }
  auto matches = [] (const std::string &pattern, const std::string &module) {
    return target_matches (pattern, module, false);
  };
  std::set<std::string> all_modules;
  for (const auto &kv : modules)
    {
      const std::string &module = kv.first;
      const auto &suffixes = kv.second;
      all_modules.insert (module);
      bool quantized = suffixes.count ("weight_scale") || suffixes.count ("weight_packed");
      bool ignored = false;
      for (const std::string &i : ignore_)
        ignored = ignored || matches (i, module);
      if (quantized)
        {
          const Group *found = nullptr;
          int n_match = 0;
          for (const Group &g : groups_)
            {
              bool any = false;
              for (const std::string &t : g.targets)
                any = any || target_matches (t, module, true);
              if (any)
                {
                  n_match++;
                  found = &g;
                }
            }
          if (n_match != 1)
            {
              problem ("%s: quantized, matched by %d config groups (expected one)", module.c_str (),
                       n_match);
              continue;
            }
          if (ignored)
            problem ("%s: quantized but in ignore", module.c_str ());
          rep_->formats[module] = found->format;
          rep_->groups[module] = found->name;
          Module m;
          load_module (module, *found, &m);
          continue;
        }
      for (const std::string &s : suffixes)
        if (kQuantSuffixes.count (s))
          problem ("%s.%s: a quantization tensor of an unquantized module", module.c_str (),
                   s.c_str ());
      Info wi;
      bool is_linear = suffixes.count ("weight") && folder_.info (module + ".weight", &wi)
                       && wi.shape.size () == 2 && is_float_dtype (wi.dtype)
                       && module.find ("embed") == std::string::npos;
      if (!is_linear)
        continue;
      if (!ignored)
        problem ("%s: a float Linear that is neither quantized nor in ignore", module.c_str ());
      for (const Group &g : groups_)
        for (const std::string &t : g.targets)
          if (t == module)
            problem ("%s: targeted by %s but not quantized", module.c_str (), g.name.c_str ());
    }
  for (const std::string &i : ignore_)
    {
      bool any = false;
      for (const std::string &m : all_modules)
        any = any || matches (i, m);
      if (!any && !(tied_ && (i == "lm_head" || g_str_has_suffix (i.c_str (), ".lm_head"))))
        problem ("ignore entry \"%s\" names no module of the folder", i.c_str ());
    }
}

void
Checker::run ()
{
  check_config ();
  folder_.open (dir_, &rep_->problems, &rep_->n_shards);
  if (config_ok_)
    check_modules ();
}

} // namespace

std::string
SlimTestCtReport::summary () const
{
  std::ostringstream out;
  for (const std::string &p : problems)
    out << p << "\n";
  return out.str ();
}

bool
SlimTestCtReport::mentions (const std::string &fragment) const
{
  for (const std::string &p : problems)
    if (p.find (fragment) != std::string::npos)
      return true;
  return false;
}

SlimTestCtReport
slim_test_ct_check (const std::string &dir)
{
  SlimTestCtReport report;
  Checker checker (dir, &report);
  checker.run ();
  return report;
}

bool
slim_test_ct_dequantize (const std::string &dir,
                         const std::string &module,
                         std::vector<float> *w,
                         int64_t *n_out,
                         int64_t *n_in,
                         std::string *why)
{
  SlimTestCtReport report;
  Checker checker (dir, &report);
  checker.check_config ();
  checker.folder_.open (dir, &report.problems, &report.n_shards);
  const Group *group = nullptr;
  for (const Group &g : checker.groups_)
    for (const std::string &t : g.targets)
      if (group == nullptr && target_matches (t, module, true))
        group = &g;
  Module m;
  if (!checker.config_ok_ || group == nullptr || !checker.load_module (module, *group, &m))
    {
      *why = module + ": " + (report.problems.empty () ? "no config group" : report.summary ());
      return false;
    }
  *n_out = m.n_out;
  *n_in = m.n_in;
  w->resize ((size_t)(m.n_out * m.n_in));
  for (int64_t r = 0; r < m.n_out; r++)
    for (int64_t c = 0; c < m.n_in; c++)
      {
        int64_t p = m.per_tensor ? 0 : r * m.scale_cols + (m.group_size > 0 ? c / m.group_size : 0);
        int zp = m.zp.empty () ? 0 : m.zp[(size_t)p];
        // compressed-tensors: (q - zp) * scale in the scale's float type
        // (fp8: the code's value, converted to float32, times the scale)
        (*w)[(size_t)(r * m.n_in + c)]
            = m.qf.empty () ? (float)(m.q[(size_t)(r * m.n_in + c)] - zp) * m.scale[(size_t)p]
                            : m.qf[(size_t)(r * m.n_in + c)] * m.scale[(size_t)p];
      }
  return true;
}
