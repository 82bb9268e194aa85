// SPDX-License-Identifier: Apache-2.0
//
// hf-checker.cpp: see hf-checker.hpp for what is checked.
#include "hf-checker.hpp"

#include "checker-folder.hpp"

#include <cmath>
#include <cstdarg>
#include <cstring>
#include <set>
#include <sstream>

namespace
{

using namespace slim_checker;

// AWQ GEMM: slot j of a word holds element kAwqSlot[j] of its 8 columns.
const int kAwqSlot[8] = { 0, 2, 4, 6, 1, 3, 5, 7 };

// Slot j (b bits) of a word.
inline int
slot (int32_t word, int j, int bits)
{
  return (int)(((uint32_t)word >> (j * bits)) & ((1u << bits) - 1u));
}

struct Module
{
  int64_t n_out = 0, n_in = 0, n_groups = 1;
  std::vector<int> u;       // (n_out, n_in) unsigned codes
  std::vector<int> z;       // (n_groups, n_out) unsigned zeros (decoded)
  std::vector<float> scale; // (n_groups, n_out)
  std::vector<int> g_idx;   // (n_in)
};

class Checker
{
public:
  Checker (const std::string &dir, SlimTestHfReport *rep) : dir_ (dir), rep_ (rep)
  {
  }
  ~Checker ()
  {
    free_regexes ();
    if (parser_ != nullptr)
      g_object_unref (parser_);
  }

  void check_config ();
  void check_modules ();
  bool load_module (const std::string &module, Module *m);

  Folder folder_;
  bool config_ok_ = false;
  bool gptq_ = false;
  bool v1_ = false;

private:
  std::string dir_;
  SlimTestHfReport *rep_;
  JsonParser *parser_ = nullptr;
  std::vector<GRegex *> negatives_; // dynamic "-:" patterns
  bool has_block_list_ = false;     // modules_in_block_to_quantize given
  std::vector<std::string> block_list_;

  void problem (const char *fmt, ...) G_GNUC_PRINTF (2, 3);
  bool expect (const std::string &name,
               const std::vector<SlimDType> &dtypes,
               const std::vector<int64_t> &shape);
  bool skipped (const std::string &module) const;
  bool listed (const std::string &module) const;
  bool read_i32 (const std::string &name, std::vector<int32_t> *out);

public:
  void
  free_regexes ()
  {
    for (GRegex *r : negatives_)
      g_regex_unref (r);
    negatives_.clear ();
  }
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

JsonNode *
load_json (const std::string &path, JsonParser *parser, std::string *why)
{
  GError *error = nullptr;
  if (!json_parser_load_from_file (parser, path.c_str (), &error))
    {
      *why = path + ": " + error->message;
      g_clear_error (&error);
      return nullptr;
    }
  return json_parser_get_root (parser);
}

void
Checker::check_config ()
{
  std::string why;
  parser_ = json_parser_new ();
  JsonNode *root = load_json (dir_ + "/config.json", parser_, &why);
  if (root == nullptr || !JSON_NODE_HOLDS_OBJECT (root))
    {
      problem ("config.json: %s", why.empty () ? "not an object" : why.c_str ());
      return;
    }
  JsonObject *qc = get_obj (json_node_get_object (root), "quantization_config");
  if (qc == nullptr)
    {
      problem ("config.json: no quantization_config object");
      return;
    }
  size_t n_before = rep_->problems.size ();
  const char *method = get_str (qc, "quant_method");
  rep_->method = method != nullptr ? method : "";
  int64_t bits = 0, gs = 0;
  if (!get_int (qc, "bits", &bits) || !get_int (qc, "group_size", &gs))
    problem ("quantization_config: bits and group_size must be integers");
  rep_->bits = (int)bits;
  rep_->group_size = gs;
  if (rep_->method == "gptq")
    {
      gptq_ = true;
      bool desc_act = true, lm_head = false;
      if (bits != 2 && bits != 4 && bits != 8)
        problem ("quantization_config.bits %lld: this checker reads 2, 4 and 8", (long long)bits);
      if (gs != -1 && gs <= 0)
        problem ("quantization_config.group_size %lld: -1 or positive", (long long)gs);
      if (!get_bool (qc, "desc_act", &desc_act) || desc_act)
        problem ("quantization_config.desc_act must be false");
      if (!get_bool (qc, "sym", &rep_->sym) || !get_bool (qc, "lm_head", &lm_head))
        problem ("quantization_config: sym and lm_head must be booleans");
      const char *cf = get_str (qc, "checkpoint_format");
      rep_->checkpoint_format = cf != nullptr ? cf : "";
      if (rep_->checkpoint_format != "gptq" && rep_->checkpoint_format != "gptq_v2")
        problem ("quantization_config.checkpoint_format \"%s\": gptq or gptq_v2",
                 rep_->checkpoint_format.c_str ());
      v1_ = rep_->checkpoint_format == "gptq";
      if (g_strcmp0 (get_str (qc, "pack_dtype"), "int32") != 0)
        problem ("quantization_config.pack_dtype is not \"int32\"");
      JsonNode *dn = json_object_get_member (qc, "dynamic");
      if (dn != nullptr && !JSON_NODE_HOLDS_OBJECT (dn))
        problem ("quantization_config.dynamic: not an object");
      else if (dn != nullptr)
        {
          JsonObject *d = json_node_get_object (dn);
          GList *keys = json_object_get_members (d);
          for (GList *l = keys; l != nullptr; l = l->next)
            {
              const char *k = (const char *)l->data;
              JsonObject *v = get_obj (d, k);
              if (!g_str_has_prefix (k, "-:") || v == nullptr || json_object_get_size (v) != 0)
                {
                  problem ("quantization_config.dynamic[\"%s\"]: only negative matches "
                           "(\"-:regex\": {}) are written here",
                           k);
                  continue;
                }
              GRegex *re = g_regex_new (k + 2, (GRegexCompileFlags)0, (GRegexMatchFlags)0, nullptr);
              if (re == nullptr)
                problem ("quantization_config.dynamic[\"%s\"]: not a regex", k);
              else
                negatives_.push_back (re);
              rep_->skipped.push_back (k);
            }
          g_list_free (keys);
        }
      JsonNode *bn = json_object_get_member (qc, "modules_in_block_to_quantize");
      if (bn != nullptr && !JSON_NODE_HOLDS_NULL (bn))
        {
          has_block_list_ = true;
          bool ok = JSON_NODE_HOLDS_ARRAY (bn);
          for (guint i = 0; ok && i < json_array_get_length (json_node_get_array (bn)); i++)
            {
              JsonNode *g = json_array_get_element (json_node_get_array (bn), i);
              ok = JSON_NODE_HOLDS_ARRAY (g);
              for (guint j = 0; ok && j < json_array_get_length (json_node_get_array (g)); j++)
                {
                  const char *n = get_str_at (json_node_get_array (g), j);
                  ok = n != nullptr;
                  if (ok)
                    block_list_.push_back (n);
                }
            }
          if (!ok)
            problem ("quantization_config.modules_in_block_to_quantize: a list of lists of "
                     "names");
        }
      // GPTQModel / AutoGPTQ read quantize_config.json first: it must agree
      JsonParser *p2 = json_parser_new ();
      JsonNode *qcj = load_json (dir_ + "/quantize_config.json", p2, &why);
      JsonNode *qcn = json_object_get_member (json_node_get_object (root), "quantization_config");
      if (qcj == nullptr)
        problem ("quantize_config.json: %s", why.c_str ());
      else if (!json_node_equal (qcj, qcn))
        problem ("quantize_config.json differs from config.json's quantization_config");
      g_object_unref (p2);
    }
  else if (rep_->method == "awq")
    {
      bool zp = false;
      if (bits != 4)
        problem ("quantization_config.bits %lld: AWQ GEMM is 4-bit", (long long)bits);
      if (gs <= 0)
        problem ("quantization_config.group_size %lld: must be positive", (long long)gs);
      if (!get_bool (qc, "zero_point", &zp) || !zp)
        problem ("quantization_config.zero_point must be true (GEMM carries zeros)");
      const char *v = get_str (qc, "version");
      rep_->checkpoint_format = v != nullptr ? v : "";
      if (rep_->checkpoint_format != "gemm")
        problem ("quantization_config.version \"%s\" is not \"gemm\"",
                 rep_->checkpoint_format.c_str ());
      JsonNode *mn = json_object_get_member (qc, "modules_to_not_convert");
      if (mn == nullptr || !(JSON_NODE_HOLDS_NULL (mn) || JSON_NODE_HOLDS_ARRAY (mn)))
        problem ("quantization_config.modules_to_not_convert: null or a list");
      else if (JSON_NODE_HOLDS_ARRAY (mn))
        for (guint i = 0; i < json_array_get_length (json_node_get_array (mn)); i++)
          {
            const char *s = get_str_at (json_node_get_array (mn), i);
            if (s == nullptr)
              problem ("quantization_config.modules_to_not_convert[%u] is not a string", i);
            else
              rep_->skipped.push_back (s);
          }
    }
  else
    problem ("quantization_config.quant_method \"%s\": gptq or awq", rep_->method.c_str ());
  config_ok_ = rep_->problems.size () == n_before;
}

// (what in_decoder_layer below decides, declared for skipped)
bool in_decoder_layer (const std::string &module);

bool
Checker::listed (const std::string &module) const
{
  for (const std::string &k : block_list_)
    if (g_str_has_suffix (module.c_str (), k.c_str ()))
      return true;
  return false;
}

bool
Checker::skipped (const std::string &module) const
{
  if (gptq_)
    {
      // optimum replaces every block linear, or only those ending with a
      // modules_in_block_to_quantize name; GPTQModel skips the dynamic
      // negative matches: both must skip a float one
      if (in_decoder_layer (module) && (!has_block_list_ || listed (module)))
        return false;
      for (GRegex *re : negatives_)
        {
          GMatchInfo *mi = nullptr;
          bool full = g_regex_match (re, module.c_str (), (GRegexMatchFlags)0, &mi);
          gint s = 0, e = 0;
          full = full && g_match_info_fetch_pos (mi, 0, &s, &e) && s == 0
                 && (size_t)e == module.size ();
          g_match_info_free (mi);
          if (full)
            return true;
        }
      return false;
    }
  for (const std::string &k : rep_->skipped)
    if (module.find (k) != std::string::npos)
      return true;
  return false;
}

bool
Checker::expect (const std::string &name,
                 const std::vector<SlimDType> &dtypes,
                 const std::vector<int64_t> &shape)
{
  Info i;
  if (!folder_.info (name, &i))
    {
      problem ("%s: missing tensor", name.c_str ());
      return false;
    }
  bool dtype_ok = false;
  for (SlimDType d : dtypes)
    dtype_ok = dtype_ok || d == i.dtype;
  if (!dtype_ok)
    problem ("%s: dtype %s, expected %s", name.c_str (), slim_dtype_get_name (i.dtype),
             slim_dtype_get_name (dtypes[0]));
  if (i.shape != shape)
    problem ("%s: shape %s, expected %s", name.c_str (), shape_str (i.shape).c_str (),
             shape_str (shape).c_str ());
  return dtype_ok && i.shape == shape;
}

bool
Checker::read_i32 (const std::string &name, std::vector<int32_t> *out)
{
  std::string why;
  SlimTensor *t = folder_.read (name, &why);
  if (t == nullptr)
    {
      problem ("%s", why.c_str ());
      return false;
    }
  const int32_t *v = (const int32_t *)slim_tensor_get_data (t);
  out->assign (v, v + slim_tensor_get_n_elements (t));
  slim_tensor_unref (t);
  return true;
}

bool
Checker::load_module (const std::string &module, Module *m)
{
  const std::string X = module + ".";
  size_t n_before = rep_->problems.size ();
  int bits = rep_->bits;
  int64_t pf = 32 / bits;
  Info qi;
  if (!folder_.info (X + "qweight", &qi) || qi.shape.size () != 2 || qi.dtype != SLIM_DTYPE_I32)
    {
      problem ("%sqweight: missing, not int32 or not 2-D", X.c_str ());
      return false;
    }
  m->n_in = gptq_ ? qi.shape[0] * pf : qi.shape[0];
  m->n_out = gptq_ ? qi.shape[1] : qi.shape[1] * pf;
  if (rep_->group_size > 0)
    {
      if (m->n_in % rep_->group_size != 0)
        {
          problem ("%s: group_size %lld does not divide %lld input features", module.c_str (),
                   (long long)rep_->group_size, (long long)m->n_in);
          return false;
        }
      m->n_groups = m->n_in / rep_->group_size;
    }
  if (!expect (X + "qzeros", { SLIM_DTYPE_I32 }, { m->n_groups, m->n_out / pf })
      || !expect (X + "scales", { SLIM_DTYPE_F16, SLIM_DTYPE_F32 }, { m->n_groups, m->n_out }))
    return false;
  if (gptq_ && !expect (X + "g_idx", { SLIM_DTYPE_I32 }, { m->n_in }))
    return false;
  if (!gptq_ && folder_.has (X + "g_idx"))
    problem ("%sg_idx: AWQ has none", X.c_str ());

  // codes
  std::vector<int32_t> qw, qz;
  if (!read_i32 (X + "qweight", &qw) || !read_i32 (X + "qzeros", &qz))
    return false;
  m->u.assign ((size_t)(m->n_out * m->n_in), 0);
  for (int64_t r = 0; r < qi.shape[0]; r++)
    for (int64_t c = 0; c < qi.shape[1]; c++)
      for (int j = 0; j < pf; j++)
        {
          int v = slot (qw[(size_t)(r * qi.shape[1] + c)], j, bits);
          // GPTQ: word (r, c) slot j is input r*pf + j of output c; AWQ: word
          // (r, c) slot j is output c*8 + kAwqSlot[j] of input r
          int64_t in = gptq_ ? r * pf + j : r;
          int64_t out = gptq_ ? c : c * pf + kAwqSlot[j];
          m->u[(size_t)(out * m->n_in + in)] = v;
        }
  // zeros
  int64_t zw = m->n_out / pf;
  m->z.assign ((size_t)(m->n_groups * m->n_out), 0);
  for (int64_t g = 0; g < m->n_groups; g++)
    for (int64_t w = 0; w < zw; w++)
      for (int j = 0; j < pf; j++)
        {
          int v = slot (qz[(size_t)(g * zw + w)], j, bits);
          int64_t out = w * pf + (gptq_ ? j : kAwqSlot[j]);
          if (v1_ && v == (1 << bits) - 1)
            {
              problem ("%sqzeros: stored %d at (%lld, %lld) is the zero point %d, which gptq (v1) "
                       "cannot hold",
                       X.c_str (), v, (long long)g, (long long)out, 1 << bits);
              return false;
            }
          int z = v1_ ? v + 1 : v;
          if (rep_->sym && z != 1 << (bits - 1))
            {
              problem ("%sqzeros: zero point %d at (%lld, %lld) in a symmetric checkpoint",
                       X.c_str (), z, (long long)g, (long long)out);
              return false;
            }
          m->z[(size_t)(g * m->n_out + out)] = z;
        }
  // scales
  std::string why;
  SlimTensor *st = folder_.read (X + "scales", &why);
  SlimTensor *st32 = st != nullptr ? slim_tensor_to_f32 (st, nullptr) : nullptr;
  if (st32 == nullptr)
    {
      problem ("%sscales: cannot read", X.c_str ());
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
        problem ("%sscales: %g is not a finite positive scale", X.c_str (), (double)v);
        break;
      }
  // g_idx: desc_act false, so column c is in group c / group_size
  if (gptq_)
    {
      std::vector<int32_t> gi;
      if (!read_i32 (X + "g_idx", &gi))
        return false;
      m->g_idx.assign (gi.begin (), gi.end ());
      for (int64_t c = 0; c < m->n_in; c++)
        {
          int64_t want = rep_->group_size > 0 ? c / rep_->group_size : 0;
          if (gi[(size_t)c] != want)
            {
              problem ("%sg_idx[%lld] = %d, expected %lld (desc_act false)", X.c_str (),
                       (long long)c, gi[(size_t)c], (long long)want);
              break;
            }
        }
    }
  else
    {
      m->g_idx.resize ((size_t)m->n_in);
      for (int64_t c = 0; c < m->n_in; c++)
        m->g_idx[(size_t)c] = (int)(c / rep_->group_size);
    }
  Info bi;
  if (folder_.info (X + "bias", &bi)
      && (!is_float_dtype (bi.dtype) || bi.shape != std::vector<int64_t>{ m->n_out }))
    problem ("%sbias: not a float (%lld)", X.c_str (), (long long)m->n_out);
  if (folder_.has (X + "weight"))
    problem ("%sweight: a quantized module holds qweight, not weight", X.c_str ());
  return rep_->problems.size () == n_before;
}

// "<prefix>.layers.<n>.<rest>": a module inside a decoder layer.
bool
in_decoder_layer (const std::string &module)
{
  size_t at = module.find (".layers.");
  if (at == std::string::npos)
    return false;
  size_t p = at + strlen (".layers.");
  size_t q = p;
  while (q < module.size () && g_ascii_isdigit (module[q]))
    q++;
  return q > p && q < module.size () && module[q] == '.';
}

void
Checker::check_modules ()
{
  std::map<std::string, std::set<std::string> > modules;
  for (const auto &kv : folder_.tensors ())
    {
      size_t dot = kv.first.rfind ('.');
      if (dot != std::string::npos)
        modules[kv.first.substr (0, dot)].insert (kv.first.substr (dot + 1));
    }
  const std::set<std::string> quant
      = gptq_ ? std::set<std::string>{ "qweight", "qzeros", "scales", "g_idx" }
              : std::set<std::string>{ "qweight", "qzeros", "scales" };
  for (const auto &kv : modules)
    {
      const std::string &module = kv.first;
      if (kv.second.count ("qweight"))
        {
          rep_->quantized.push_back (module);
          std::set<std::string> rest = kv.second;
          rest.erase ("bias");
          if (rest != quant)
            problem ("%s: tensors are not exactly %s%s", module.c_str (),
                     gptq_ ? "qweight, qzeros, scales, g_idx" : "qweight, qzeros, scales",
                     " (+ bias)");
          if (skipped (module))
            problem ("%s: quantized but skipped by the config", module.c_str ());
          if (gptq_ && has_block_list_ && in_decoder_layer (module) && !listed (module))
            problem ("%s: quantized but not in modules_in_block_to_quantize", module.c_str ());
          Module m;
          load_module (module, &m);
          continue;
        }
      for (const std::string &s : quant)
        if (kv.second.count (s))
          problem ("%s.%s: a quantization tensor of an unquantized module", module.c_str (),
                   s.c_str ());
      Info wi;
      bool is_linear = kv.second.count ("weight") && folder_.info (module + ".weight", &wi)
                       && wi.shape.size () == 2 && is_float_dtype (wi.dtype)
                       && module.find ("embed") == std::string::npos;
      if (is_linear && in_decoder_layer (module) && !skipped (module))
        problem ("%s: a float Linear of a decoder layer that the config does not skip (the "
                 "loader would make it a quantized linear)",
                 module.c_str ());
    }
}

} // namespace

std::string
SlimTestHfReport::summary () const
{
  std::ostringstream out;
  for (const std::string &p : problems)
    out << p << "\n";
  return out.str ();
}

bool
SlimTestHfReport::mentions (const std::string &fragment) const
{
  for (const std::string &p : problems)
    if (p.find (fragment) != std::string::npos)
      return true;
  return false;
}

SlimTestHfReport
slim_test_hf_check (const std::string &dir)
{
  SlimTestHfReport report;
  Checker checker (dir, &report);
  size_t n_shards = 0;
  checker.check_config ();
  checker.folder_.open (dir, &report.problems, &n_shards);
  for (const auto &kv : checker.folder_.tensors ())
    {
      GHashTable *meta = slim_safetensors_get_metadata (kv.second);
      const char *fmt
          = meta != nullptr ? (const char *)g_hash_table_lookup (meta, "format") : nullptr;
      if (g_strcmp0 (fmt, "pt") != 0)
        {
          report.problems.push_back ("safetensors __metadata__ format is not \"pt\"");
          break;
        }
    }
  if (checker.config_ok_)
    checker.check_modules ();
  return report;
}

bool
slim_test_hf_dequantize (const std::string &dir,
                         const std::string &module,
                         std::vector<float> *w,
                         int64_t *n_out,
                         int64_t *n_in,
                         std::string *why)
{
  SlimTestHfReport report;
  Checker checker (dir, &report);
  size_t n_shards = 0;
  checker.check_config ();
  checker.folder_.open (dir, &report.problems, &n_shards);
  Module m;
  bool ok = checker.config_ok_ && checker.load_module (module, &m);
  if (!ok)
    {
      *why = module + ": " + report.summary ();
      return false;
    }
  *n_out = m.n_out;
  *n_in = m.n_in;
  w->resize ((size_t)(m.n_out * m.n_in));
  for (int64_t r = 0; r < m.n_out; r++)
    for (int64_t c = 0; c < m.n_in; c++)
      {
        size_t p = (size_t)(m.g_idx[(size_t)c] * m.n_out + r);
        (*w)[(size_t)(r * m.n_in + c)]
            = (float)(m.u[(size_t)(r * m.n_in + c)] - m.z[p]) * m.scale[p];
      }
  return true;
}
