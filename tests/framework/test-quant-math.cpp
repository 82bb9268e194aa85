// SPDX-License-Identifier: Apache-2.0
//
// test-quant-math.cpp: the pure quantization numerics shared by linear_quant
// and the ascendv1 saver: module-name globs (slim-glob), the scheme tables
// (slim-qscheme), qparams / quantize / observers (slim-qparams) and the
// saver's derived tensors (slim-pack). Expected values are computed by hand
// in the comments (modelslim-v1-spec.md 2.1 and 3.1 formulas), fast kernels
// are compared bit for bit with their _ref twins.
#include "slim-test.h"

extern "C"
{
#include "slim-error.h"
#include "slim-glob-list.h"
#include "slim-glob.h"
#include "slim-pack.h"
#include "slim-qparams.h"
#include "slim-qscheme.h"
}

#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace
{

struct GlobDeleter
{
  void
  operator() (SlimGlob *g) const
  {
    slim_glob_free (g);
  }
};
using GlobPtr = std::unique_ptr<SlimGlob, GlobDeleter>;

struct GlobListDeleter
{
  void
  operator() (SlimGlobList *l) const
  {
    slim_glob_list_free (l);
  }
};
using GlobListPtr = std::unique_ptr<SlimGlobList, GlobListDeleter>;

std::vector<std::string>
strv_to_vector (char **strv)
{
  std::vector<std::string> out;
  for (char **p = strv; p != nullptr && *p != nullptr; p++)
    out.emplace_back (*p);
  g_strfreev (strv);
  return out;
}

SlimQParamsConfig
make_cfg (SlimQDtype dtype, bool symmetric, int max_bound = 0)
{
  SlimQParamsConfig cfg;
  GError *error = nullptr;
  EXPECT_TRUE (slim_qparams_config_init (&cfg, dtype, symmetric, max_bound, &error));
  GErrorPtr guard (error);
  return cfg;
}

// Deterministic test data: ggml's 0.1 + 2*cos(i + offset) plus seeded noise.
std::vector<float>
make_data (size_t n, unsigned seed, float amplitude = 1.0f)
{
  std::mt19937 rng (seed);
  std::normal_distribution<float> noise (0.0f, 0.5f);
  std::vector<float> v (n);
  for (size_t i = 0; i < n; i++)
    v[i] = amplitude * (0.1f + 2.0f * std::cos ((float)i + (float)seed) + noise (rng));
  return v;
}

uint32_t
float_bits (float f)
{
  uint32_t b;
  std::memcpy (&b, &f, sizeof b);
  return b;
}

} // namespace

// ===========================================================================
// Globs
// ===========================================================================

struct GlobCase
{
  const char *pattern;
  const char *name;
  bool expected;
};

// names the case in failure messages instead of dumping its bytes
void
PrintTo (const GlobCase &c, std::ostream *os)
{
  *os << "pattern '" << c.pattern << "' name '" << c.name << "'";
}

class GlobMatch : public ::testing::TestWithParam<GlobCase>
{
};

TEST_P (GlobMatch, MatchesLikeWcmatchFnmatchBrace)
{
  const GlobCase &c = GetParam ();
  EXPECT_EQ (slim_glob_match (c.pattern, c.name), c.expected)
      << "pattern '" << c.pattern << "' name '" << c.name << "'";
}

static const GlobCase glob_cases[] = {
  // exact string
  { "model.layers.0.mlp.up_proj", "model.layers.0.mlp.up_proj", true },
  { "model.layers.0.mlp.up_proj", "model.layers.0.mlp.up_proj2", false },
  // `*` crosses dots, anchored at both ends
  { "*", "model.layers.0.mlp.up_proj", true },
  { "*.mlp.*", "model.layers.0.mlp.up_proj", true },
  { "*up_proj", "model.layers.0.mlp.up_proj", true },
  { "*up_proj", "model.layers.0.mlp.up_proj.weight", false },
  { "model.*", "model.", true },
  { "model.**.q_proj", "model.layers.3.self_attn.q_proj", true },
  // `?` is exactly one character
  { "model.layers.?.mlp", "model.layers.7.mlp", true },
  { "model.layers.?.mlp", "model.layers.10.mlp", false },
  { "a?", "a", false },
  // classes, negation, ranges, POSIX classes
  { "model.layers.[0-3].mlp", "model.layers.2.mlp", true },
  { "model.layers.[0-3].mlp", "model.layers.5.mlp", false },
  { "model.layers.[!0-3].mlp", "model.layers.5.mlp", true },
  { "model.layers.[!0-3].mlp", "model.layers.2.mlp", false },
  { "model.layers.[^0-3].mlp", "model.layers.2.mlp", false },
  { "[qkv]_proj", "k_proj", true },
  { "[qkv]_proj", "o_proj", false },
  { "[]]", "]", true },
  { "[!]]", "]", false },
  { "[!]]", "a", true },
  { "[a-]", "-", true },
  { "layers.[[:digit:]][[:digit:]].x", "layers.12.x", true },
  { "layers.[[:digit:]].x", "layers.a.x", false },
  { "[z-a]", "m", false }, // backwards range is dropped: matches nothing
  { "[!z-a]", "m", true }, // ... and its negation anything
  { "a[b", "a[b", true },  // unclosed `[` is literal
  { "a[b*", "a[bcd", true },
  // escapes
  { "a\\*b", "a*b", true },
  { "a\\*b", "axb", false },
  { "a\\{b,c\\}", "a{b,c}", true },
  { "a\\{b,c\\}", "ab", false },
  { "*b\\", "ab", true }, // a trailing backslash is dropped
  // braces
  { "model.layers.{0,1}.self_attn.{q,k,v}_proj", "model.layers.1.self_attn.k_proj", true },
  { "model.layers.{0,1}.self_attn.{q,k,v}_proj", "model.layers.1.self_attn.o_proj", false },
  { "model.layers.{0,1}.self_attn.{q,k,v}_proj", "model.layers.2.self_attn.q_proj", false },
  { "a.{b,c{d,e}}.f", "a.ce.f", true },
  { "a.{b,c{d,e}}.f", "a.b.f", true },
  { "a.{b,c{d,e}}.f", "a.c.f", false },
  { "x{,.weight}", "x", true },
  { "x{,.weight}", "x.weight", true },
  { "{*mlp*,lm_head}", "lm_head", true },
  { "{a}", "{a}", true }, // no comma: literal braces
  { "x{a}", "xa", false },
  { "{a,b", "{a,b", true }, // unbalanced: literal
  { "{a,b*", "{a,bcd", true },
  { "x{}", "x{}", true },
  // sequences
  { "model.layers.{0..3}.mlp", "model.layers.3.mlp", true },
  { "model.layers.{0..3}.mlp", "model.layers.4.mlp", false },
  { "model.layers.{3..0}.mlp", "model.layers.1.mlp", true },
  { "layer.{00..10}", "layer.07", true },
  { "layer.{00..10}", "layer.7", false },
  { "layer.{0..10..5}", "layer.5", true },
  { "layer.{0..10..5}", "layer.4", false },
  { "v{-2..2}", "v-1", true },
  { "{a..c}_proj", "b_proj", true },
  { "{a..c}_proj", "d_proj", false },
  // wcmatch without DOTMATCH: a leading dot needs a literal dot
  { "*", ".hidden", false },
  { "?hidden", ".hidden", false },
  { ".*", ".hidden", true },
  { "\\.*", ".hidden", true },
  // case-sensitive, never an empty name
  { "*UP_PROJ", "model.up_proj", false },
  { "*", "", false },
  // UTF-8: `?` is one code point
  { "\xe6\xa8\xa1?", "\xe6\xa8\xa1\xe5\x9e\x8b", true },
  { "\xe6\xa8\xa1.*", "\xe6\xa8\xa1.layer", true },
  // exact string first: the pattern text itself always matches
  { "layer[0]", "layer[0]", true },
  { "layer[0]", "layer0", true },
  { "{1..100000}", "{1..100000}", true }, // invalid (too many) but identical
};

INSTANTIATE_TEST_SUITE_P (Cases, GlobMatch, ::testing::ValuesIn (glob_cases));

TEST (Glob, BraceExpansionCount)
{
  GError *error = nullptr;
  GlobPtr g (slim_glob_new ("model.layers.{0,1}.self_attn.{q,k,v}_proj", &error));
  ASSERT_NE (g, nullptr);
  EXPECT_EQ (slim_glob_get_n_expansions (g.get ()), 6u); // 2 x 3
  GlobPtr seq (slim_glob_new ("l.{0..99}.{a,b}", &error));
  ASSERT_NE (seq, nullptr);
  EXPECT_EQ (slim_glob_get_n_expansions (seq.get ()), 200u);
  EXPECT_STREQ (slim_glob_get_pattern (seq.get ()), "l.{0..99}.{a,b}");
}

TEST (Glob, InvalidPatternsAreErrors)
{
  // 2^11 = 2048 expansions > SLIM_GLOB_MAX_EXPANSIONS (1000)
  std::string bomb;
  for (int i = 0; i < 11; i++)
    bomb += "{a,b}";
  std::string long_pattern (SLIM_GLOB_MAX_PATTERN_BYTES + 1, 'x');
  std::string many_braces;
  for (int i = 0; i < SLIM_GLOB_MAX_BRACE_GROUPS + 1; i++)
    many_braces += "{a}";
  const std::string invalid[]
      = { bomb, "{1..100000}", "x{0..999}{a,b}", long_pattern, many_braces, "\xff\xfe" };
  for (const std::string &p : invalid)
    {
      GError *error = nullptr;
      GlobPtr g (slim_glob_new (p.c_str (), &error));
      GErrorPtr guard (error);
      EXPECT_EQ (g, nullptr) << p.substr (0, 40);
      ASSERT_NE (error, nullptr);
      EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
      // an invalid pattern matches nothing but its own text
      EXPECT_FALSE (slim_glob_match (p.c_str (), "aaaaaaaaaaa"));
    }
}

TEST (Glob, PathologicalPatternsFinishFast)
{
  // Backtracking matchers take exponential time on these; ours is
  // O(len(name) * len(pattern)) per expansion. 2 s is a loose bound (the
  // whole test takes milliseconds) that a backtracking matcher would blow.
  auto start = std::chrono::steady_clock::now ();
  std::string name (5000, 'a');
  std::string stars;
  for (int i = 0; i < 30; i++)
    stars += "*a";
  stars += "*b";
  EXPECT_FALSE (slim_glob_match (stars.c_str (), name.c_str ()));
  EXPECT_TRUE (
      slim_glob_match ((stars.substr (0, stars.size () - 2) + "*").c_str (), name.c_str ()));
  std::string qs (4000, '?');
  EXPECT_FALSE (slim_glob_match ((qs + "*b").c_str (), name.c_str ()));
  // 512 expansions of a 9-group brace pattern, each with stars
  std::string braces;
  for (int i = 0; i < 9; i++)
    braces += "{*a,a*}";
  braces += "b";
  GError *error = nullptr;
  GlobPtr g (slim_glob_new (braces.c_str (), &error));
  GErrorPtr guard (error);
  ASSERT_NE (g, nullptr);
  EXPECT_EQ (slim_glob_get_n_expansions (g.get ()), 512u);
  EXPECT_FALSE (slim_glob_matches (g.get (), std::string (2000, 'a').c_str ()));
  double seconds
      = std::chrono::duration<double> (std::chrono::steady_clock::now () - start).count ();
  EXPECT_LT (seconds, 2.0);
}

TEST (Glob, NonUtf8NameOnlyMatchesExactly)
{
  EXPECT_FALSE (slim_glob_match ("*", "a\xff"));
  EXPECT_TRUE (slim_glob_match ("a\xff", "a\xff"));
}

TEST (GlobList, IncludeExcludeAndExcludeWins)
{
  const char *exclude[] = { "*.mlp.down_proj", "lm_head", nullptr };
  GError *error = nullptr;
  GlobListPtr list (slim_glob_list_new (nullptr, exclude, &error)); // include default "*"
  ASSERT_NE (list, nullptr);
  EXPECT_TRUE (slim_glob_list_match (list.get (), "model.layers.0.mlp.up_proj"));
  EXPECT_FALSE (slim_glob_list_match (list.get (), "model.layers.0.mlp.down_proj"));
  EXPECT_FALSE (slim_glob_list_match (list.get (), "lm_head"));

  // an exact include does not beat an exclude
  const char *include2[] = { "lm_head", nullptr };
  const char *exclude2[] = { "lm_*", nullptr };
  GlobListPtr list2 (slim_glob_list_new (include2, exclude2, &error));
  ASSERT_NE (list2, nullptr);
  EXPECT_FALSE (slim_glob_list_match (list2.get (), "lm_head"));

  // an empty include list selects nothing
  const char *none[] = { nullptr };
  GlobListPtr list3 (slim_glob_list_new (none, nullptr, &error));
  ASSERT_NE (list3, nullptr);
  EXPECT_FALSE (slim_glob_list_match (list3.get (), "lm_head"));
}

TEST (GlobList, RecordsPatternsThatMatchedNothing)
{
  const char *include[] = { "*q_proj", "*.nonexistent.*", "*", "*k_proj", nullptr };
  const char *exclude[] = { "*.layers.1.*", "lm_head", "*.layers.9.*", nullptr };
  GError *error = nullptr;
  GlobListPtr list (slim_glob_list_new (include, exclude, &error));
  ASSERT_NE (list, nullptr);
  const char *names[] = { "model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj",
                          "model.layers.0.self_attn.k_proj" };
  for (const char *n : names)
    slim_glob_list_match (list.get (), n);
  // "*" is never reported; "*k_proj" matched although "*q_proj"/"*" came first
  EXPECT_EQ (strv_to_vector (slim_glob_list_get_unmatched_include (list.get ())),
             std::vector<std::string> ({ "*.nonexistent.*" }));
  EXPECT_EQ (strv_to_vector (slim_glob_list_get_unmatched_exclude (list.get ())),
             std::vector<std::string> ({ "lm_head", "*.layers.9.*" }));
}

TEST (GlobList, InvalidPatternNamesItsPosition)
{
  std::string bomb;
  for (int i = 0; i < 11; i++)
    bomb += "{a,b}";
  const char *include[] = { "*", bomb.c_str (), nullptr };
  GError *error = nullptr;
  GlobListPtr list (slim_glob_list_new (include, nullptr, &error));
  GErrorPtr guard (error);
  EXPECT_EQ (list, nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  EXPECT_NE (std::string (error->message).find ("include[1]"), std::string::npos) << error->message;
}

// ===========================================================================
// Scheme tables
// ===========================================================================

namespace
{
SlimQScheme
S (SlimQDtype d, SlimQScope s, bool sym)
{
  return SlimQScheme{ d, s, sym ? TRUE : FALSE };
}
} // namespace

TEST (QScheme, EnumNicksAreTheYamlWords)
{
  struct
  {
    GType type;
    const char *nick;
    int value;
  } cases[] = {
    { SLIM_TYPE_QDTYPE, "float", SLIM_QDTYPE_FLOAT },
    { SLIM_TYPE_QDTYPE, "int8", SLIM_QDTYPE_INT8 },
    { SLIM_TYPE_QDTYPE, "int4", SLIM_QDTYPE_INT4 },
    { SLIM_TYPE_QDTYPE, "fp8_e4m3", SLIM_QDTYPE_FP8_E4M3 },
    { SLIM_TYPE_QDTYPE, "mxfp8", SLIM_QDTYPE_MXFP8 },
    { SLIM_TYPE_QDTYPE, "mxfp4", SLIM_QDTYPE_MXFP4 },
    { SLIM_TYPE_QSCOPE, "per_tensor", SLIM_QSCOPE_PER_TENSOR },
    { SLIM_TYPE_QSCOPE, "per_channel", SLIM_QSCOPE_PER_CHANNEL },
    { SLIM_TYPE_QSCOPE, "per_group", SLIM_QSCOPE_PER_GROUP },
    { SLIM_TYPE_QSCOPE, "per_block", SLIM_QSCOPE_PER_BLOCK },
    { SLIM_TYPE_QSCOPE, "per_token", SLIM_QSCOPE_PER_TOKEN },
    { SLIM_TYPE_QSCOPE, "pd_mix", SLIM_QSCOPE_PD_MIX },
    { SLIM_TYPE_QSCOPE, "per_head", SLIM_QSCOPE_PER_HEAD },
    { SLIM_TYPE_QSCOPE, "dual_scale", SLIM_QSCOPE_DUAL_SCALE },
    { SLIM_TYPE_QMETHOD, "none", SLIM_QMETHOD_NONE },
    { SLIM_TYPE_QMETHOD, "minmax", SLIM_QMETHOD_MINMAX },
    { SLIM_TYPE_QMETHOD, "histogram", SLIM_QMETHOD_HISTOGRAM },
    { SLIM_TYPE_QMETHOD, "ssz", SLIM_QMETHOD_SSZ },
    { SLIM_TYPE_QMETHOD, "gptq", SLIM_QMETHOD_GPTQ },
    { SLIM_TYPE_QMETHOD, "autoround", SLIM_QMETHOD_AUTOROUND },
    { SLIM_TYPE_QMETHOD, "ifmr", SLIM_QMETHOD_IFMR },
    { SLIM_TYPE_QMETHOD, "hfmg", SLIM_QMETHOD_HFMG },
    { SLIM_TYPE_QAGGREGATION, "max", SLIM_QAGGREGATION_MAX },
    { SLIM_TYPE_QAGGREGATION, "mean", SLIM_QAGGREGATION_MEAN },
  };
  for (const auto &c : cases)
    {
      GEnumClass *klass = static_cast<GEnumClass *> (g_type_class_ref (c.type));
      GEnumValue *v = g_enum_get_value_by_nick (klass, c.nick);
      ASSERT_NE (v, nullptr) << c.nick;
      EXPECT_EQ (v->value, c.value) << c.nick;
      g_type_class_unref (klass);
    }
  EXPECT_STREQ (slim_qscope_get_nick (SLIM_QSCOPE_PD_MIX), "pd_mix");
  EXPECT_STREQ (slim_qdtype_get_nick (SLIM_QDTYPE_INT4), "int4");
  EXPECT_STREQ (slim_qmethod_get_nick (SLIM_QMETHOD_MINMAX), "minmax");
}

struct LegalCombo
{
  SlimQScheme act;
  SlimQScheme weight;
  const char *label;
};

// Spec 2.1 "Registered IR combos", typed in independently of the table.
static const LegalCombo legal_combos[] = {
  { { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TENSOR, FALSE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, TRUE },
    "W8A8" },
  { { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TENSOR, TRUE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, TRUE },
    "W8A8" },
  { { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, TRUE },
    "W8A8_DYNAMIC" },
  { { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_GROUP, TRUE },
    "W8A8_DYNAMIC" },
  { { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_GROUP, FALSE },
    "W8A8_DYNAMIC" },
  { { SLIM_QDTYPE_FLOAT, SLIM_QSCOPE_PER_TENSOR, TRUE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, TRUE },
    "W8A16" },
  { { SLIM_QDTYPE_FLOAT, SLIM_QSCOPE_PER_TENSOR, TRUE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, FALSE },
    "W8A16" },
  { { SLIM_QDTYPE_FLOAT, SLIM_QSCOPE_PER_TENSOR, TRUE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_GROUP, TRUE },
    "W8A16" },
  { { SLIM_QDTYPE_FLOAT, SLIM_QSCOPE_PER_TENSOR, TRUE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_GROUP, FALSE },
    "W8A16" },
  { { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, TRUE },
    "W4A8_DYNAMIC" },
  { { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, TRUE },
    "W4A4_DYNAMIC" },
  { { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, FALSE },
    "W4A4_DYNAMIC" },
  { { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, TRUE },
    "W4A4_DYNAMIC" },
  { { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, FALSE },
    "W4A4_DYNAMIC" },
  { { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PD_MIX, FALSE },
    { SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, TRUE },
    "W8A8_MIX" },
  { { SLIM_QDTYPE_MXFP8, SLIM_QSCOPE_PER_BLOCK, TRUE },
    { SLIM_QDTYPE_MXFP8, SLIM_QSCOPE_PER_BLOCK, TRUE },
    "W8A8_MXFP8" },
  { { SLIM_QDTYPE_MXFP8, SLIM_QSCOPE_PER_BLOCK, TRUE },
    { SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_PER_BLOCK, TRUE },
    "W4A8_MXFP" },
  { { SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_PER_BLOCK, TRUE },
    { SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_PER_BLOCK, TRUE },
    "W4A4_MXFP4" },
  { { SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_TOKEN, TRUE },
    { SLIM_QDTYPE_FP8_E4M3, SLIM_QSCOPE_PER_CHANNEL, TRUE },
    "WFP8AFP8_DYNAMIC" },
  { { SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_DUAL_SCALE, TRUE },
    { SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_DUAL_SCALE, TRUE },
    "W4A4_MXFP4_DUALSCALE" },
};

TEST (QScheme, EveryLegalCombinationHasItsLabel)
{
  for (const LegalCombo &c : legal_combos)
    {
      GError *error = nullptr;
      const char *label = slim_qscheme_lookup_label (&c.act, &c.weight, &error);
      GErrorPtr guard (error);
      ASSERT_NE (label, nullptr) << (error ? error->message : "");
      EXPECT_STREQ (label, c.label);
    }
  // ... and the table has no other supported row
  gsize n = 0;
  const SlimQComboInfo *combos = slim_qscheme_get_combos (&n);
  size_t n_supported = 0;
  for (gsize k = 0; k < n; k++)
    n_supported += combos[k].supported ? 1 : 0;
  EXPECT_EQ (n_supported, G_N_ELEMENTS (legal_combos));
}

TEST (QScheme, IllegalCombinationsAreRejectedWithTheLegalList)
{
  const std::pair<SlimQScheme, SlimQScheme> illegal[] = {
    // no IR for per-token asymmetric activations (spec 6.3 item 3)
    { S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, false),
      S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, true) },
    // W4A16 is not a v1 IR
    { S (SLIM_QDTYPE_FLOAT, SLIM_QSCOPE_PER_TENSOR, true),
      S (SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, true) },
    // static activations with per-group weights
    { S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TENSOR, true),
      S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_GROUP, true) },
    // W8A8 static needs symmetric weights
    { S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TENSOR, false),
      S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, false) },
    // W4A8 needs symmetric per-channel int4
    { S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, true),
      S (SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, true) },
    // float activations declared asymmetric
    { S (SLIM_QDTYPE_FLOAT, SLIM_QSCOPE_PER_TENSOR, false),
      S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, true) },
  };
  for (const auto &p : illegal)
    {
      GError *error = nullptr;
      const char *label = slim_qscheme_lookup_label (&p.first, &p.second, &error);
      GErrorPtr guard (error);
      EXPECT_EQ (label, nullptr);
      ASSERT_NE (error, nullptr);
      EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
      char *act = slim_qscheme_to_string (&p.first);
      char *weight = slim_qscheme_to_string (&p.second);
      std::string msg = error->message;
      EXPECT_NE (msg.find (std::string ("act ") + act), std::string::npos) << msg;
      EXPECT_NE (msg.find (std::string ("weight ") + weight), std::string::npos) << msg;
      for (const char *l :
           { "W8A8", "W8A8_DYNAMIC", "W8A16", "W4A8_DYNAMIC", "W4A4_DYNAMIC", "W8A8_MIX" })
        EXPECT_NE (msg.find (std::string ("-> ") + l), std::string::npos) << l;
      g_free (act);
      g_free (weight);
    }
}

TEST (QScheme, DualScaleCombination)
{
  // msModelSlim's W4A4MXDynamicDualScaleFakeQuantLinear dispatch key
  SlimQScheme act = S (SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_DUAL_SCALE, true);
  SlimQScheme weight = S (SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_DUAL_SCALE, true);
  SlimQScheme block = S (SLIM_QDTYPE_MXFP4, SLIM_QSCOPE_PER_BLOCK, true);
  GError *error = nullptr;
  EXPECT_STREQ (slim_qscheme_lookup_label (&act, &weight, &error), "W4A4_MXFP4_DUALSCALE");
  ASSERT_EQ (error, nullptr);
  // dual_scale act with a per_block weight is not a registered IR
  EXPECT_EQ (slim_qscheme_lookup_label (&act, &block, &error), nullptr);
  GErrorPtr guard (error);
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
}

TEST (QScheme, RegisteredQuantizers)
{
  GError *error = nullptr;
  SlimQScheme w8 = S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, true);
  const SlimQuantizerInfo *q
      = slim_qscheme_lookup_quantizer (SLIM_QROLE_WEIGHT, &w8, SLIM_QMETHOD_MINMAX, &error);
  ASSERT_NE (q, nullptr);
  EXPECT_TRUE (q->implemented);
  EXPECT_TRUE (q->data_free);

  // gptq and ssz are implemented (linear_quant); gptq needs calibration
  // data, ssz (a weight search) does not
  SlimQScheme g8 = S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_GROUP, false);
  q = slim_qscheme_lookup_quantizer (SLIM_QROLE_WEIGHT, &g8, SLIM_QMETHOD_GPTQ, &error);
  ASSERT_NE (q, nullptr);
  EXPECT_TRUE (q->implemented);
  EXPECT_FALSE (q->data_free);
  q = slim_qscheme_lookup_quantizer (SLIM_QROLE_WEIGHT, &w8, SLIM_QMETHOD_SSZ, &error);
  ASSERT_NE (q, nullptr);
  EXPECT_TRUE (q->implemented);
  EXPECT_TRUE (q->data_free);

  // per-channel act minmax is data dependent; per-token is data-free
  SlimQScheme t8 = S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_TOKEN, true);
  q = slim_qscheme_lookup_quantizer (SLIM_QROLE_ACT, &t8, SLIM_QMETHOD_MINMAX, &error);
  ASSERT_NE (q, nullptr);
  EXPECT_TRUE (q->data_free);

  // per-group weights are not reachable with minmax; asymmetric per-channel
  // minmax weights neither (spec 2.1 note)
  const SlimQScheme unregistered[] = { g8, S (SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_CHANNEL, false) };
  for (const SlimQScheme &s : unregistered)
    {
      q = slim_qscheme_lookup_quantizer (SLIM_QROLE_WEIGHT, &s, SLIM_QMETHOD_MINMAX, &error);
      GErrorPtr guard (error);
      error = nullptr;
      EXPECT_EQ (q, nullptr);
      ASSERT_NE (guard, nullptr);
      EXPECT_TRUE (g_error_matches (guard.get (), SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
      EXPECT_NE (std::string (guard->message).find ("int4 per_channel sym"), std::string::npos)
          << guard->message;
      // ... and names the methods that do exist for the scheme
      EXPECT_NE (std::string (guard->message).find ("has methods: gptq, autoround"),
                 std::string::npos)
          << guard->message;
    }
  // ssz is symmetric only
  SlimQScheme a4 = S (SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_CHANNEL, false);
  q = slim_qscheme_lookup_quantizer (SLIM_QROLE_WEIGHT, &a4, SLIM_QMETHOD_SSZ, &error);
  GErrorPtr guard (error);
  EXPECT_EQ (q, nullptr);
}

TEST (QScheme, ModelQuantTypePriority)
{
  const char *order[] = { "FLOAT",
                          "W16A16S",
                          "W8A16",
                          "W8A8_DYNAMIC",
                          "W8A8_MIX",
                          "W8A8",
                          "WFP8AFP8_DYNAMIC",
                          "W8A8_MXFP8",
                          "W4A8_MXFP",
                          "W4A4_DYNAMIC",
                          "W4A4_MXFP4",
                          "W4A4_MXFP4_DUALSCALE",
                          "W4A4_MXFP4_SVD" };
  for (size_t i = 0; i < G_N_ELEMENTS (order); i++)
    EXPECT_EQ (slim_quant_label_priority (order[i]), (int)i) << order[i];
  EXPECT_EQ (slim_quant_label_priority ("W4A8_DYNAMIC"), -1);
  EXPECT_EQ (slim_quant_label_priority (SLIM_QUANT_LABEL_UNKNOWN), -1);

  // a W4A8 MoE with W8A8_DYNAMIC attention reports W8A8_DYNAMIC (spec 3.1)
  const char *t = SLIM_QUANT_LABEL_UNKNOWN;
  t = slim_quant_label_update (t, "W4A8_DYNAMIC");
  EXPECT_STREQ (t, "Unknown");
  t = slim_quant_label_update (t, "FLOAT");
  EXPECT_STREQ (t, "FLOAT");
  t = slim_quant_label_update (t, "W8A8_DYNAMIC");
  t = slim_quant_label_update (t, "W4A8_DYNAMIC");
  t = slim_quant_label_update (t, "FLOAT");
  EXPECT_STREQ (t, "W8A8_DYNAMIC");
  t = slim_quant_label_update (t, "W8A8");
  t = slim_quant_label_update (t, "W8A8_MIX");
  EXPECT_STREQ (t, "W8A8");
}

// ===========================================================================
// qparams
// ===========================================================================

TEST (QParams, ConfigValidation)
{
  SlimQParamsConfig cfg;
  const std::tuple<SlimQDtype, bool, int> bad[] = {
    { SLIM_QDTYPE_FLOAT, true, 0 },  { SLIM_QDTYPE_FP8_E4M3, true, 0 },
    { SLIM_QDTYPE_INT8, true, 128 }, { SLIM_QDTYPE_INT8, false, 256 },
    { SLIM_QDTYPE_INT4, true, 119 }, { SLIM_QDTYPE_INT8, true, -1 },
  };
  for (const auto &b : bad)
    {
      GError *error = nullptr;
      EXPECT_FALSE (slim_qparams_config_init (&cfg, std::get<0> (b), std::get<1> (b),
                                              std::get<2> (b), &error));
      GErrorPtr guard (error);
      EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
    }
  GError *error = nullptr;
  EXPECT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, false, 255, &error));
  EXPECT_TRUE (slim_qparams_config_init (&cfg, SLIM_QDTYPE_INT8, true, 119, &error));
}

TEST (QParams, HandComputedInt8Asymmetric)
{
  // min = -1, max = 3, 8 bits asymmetric:
  //   scale  = 3/255 - (-1)/255 = 4/255 = 0.0156862745...
  //   offset = round(1 / (4/255)) - 128 = round(63.75) - 128 = -64
  SlimQParamsConfig cfg = make_cfg (SLIM_QDTYPE_INT8, false);
  float scale, offset;
  slim_qparams_compute (&cfg, -1.0f, 3.0f, &scale, &offset);
  EXPECT_FLOAT_EQ (scale, 4.0f / 255.0f);
  EXPECT_EQ (offset, -64.0f);
  //   x = 1  -> 63.75 - 64 = -0.25 -> 0
  //   x = 3  -> 191.25 - 64 = 127.25 -> 127
  //   x = -1 -> -63.75 - 64 = -127.75 -> -128
  //   x = 10 -> 637.5 - 64 -> clamp 127
  const float x[] = { 1.0f, 3.0f, -1.0f, 10.0f };
  const int8_t expected[] = { 0, 127, -128, 127 };
  int8_t q[4];
  slim_quantize_rows (&cfg, x, 1, 4, &scale, &offset, 1, q);
  for (int i = 0; i < 4; i++)
    EXPECT_EQ (q[i], expected[i]) << i;
  // dequantize q = 0 -> (0 + 64) * 4/255 = 1.0039...
  float back[4];
  slim_dequantize_rows (q, 1, 4, &scale, &offset, 1, back);
  EXPECT_FLOAT_EQ (back[0], 64.0f * 4.0f / 255.0f);

  // a positive-only range still includes 0: min = 2 -> 0, offset = -128
  slim_qparams_compute (&cfg, 2.0f, 5.0f, &scale, &offset);
  EXPECT_FLOAT_EQ (scale, 5.0f / 255.0f);
  EXPECT_EQ (offset, -128.0f);
  // all zeros: scale = FLT_EPSILON
  slim_qparams_compute (&cfg, 0.0f, 0.0f, &scale, &offset);
  EXPECT_EQ (scale, FLT_EPSILON);
  EXPECT_EQ (offset, -128.0f);
}

TEST (QParams, HandComputedSymmetricRoundsHalfToEven)
{
  // min = -127, max = 0, int8 sym: scale = 127/127 = 1, offset 0, so
  // q = clamp(round_half_even(x), -128, 127)
  SlimQParamsConfig cfg = make_cfg (SLIM_QDTYPE_INT8, true);
  float scale, offset;
  slim_qparams_compute (&cfg, -127.0f, 0.0f, &scale, &offset);
  EXPECT_EQ (scale, 1.0f);
  EXPECT_EQ (offset, 0.0f);
  const float x[] = { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 200.0f, -200.0f, 126.5f };
  const int8_t expected[] = { 0, 2, 2, 0, -2, -2, 127, -128, 126 };
  int8_t q[9], q_ref[9];
  slim_quantize_rows (&cfg, x, 1, 9, &scale, &offset, 1, q);
  slim_quantize_rows_ref (&cfg, x, 1, 9, &scale, &offset, 1, q_ref);
  for (int i = 0; i < 9; i++)
    {
      EXPECT_EQ (q[i], expected[i]) << x[i];
      EXPECT_EQ (q_ref[i], expected[i]) << x[i];
    }

  // int4 sym, min = -3.5, max = 7: scale = max(3.5, 7)/7 = 1, range [-8, 7]
  SlimQParamsConfig cfg4 = make_cfg (SLIM_QDTYPE_INT4, true);
  slim_qparams_compute (&cfg4, -3.5f, 7.0f, &scale, &offset);
  EXPECT_EQ (scale, 1.0f);
  const float x4[] = { 7.4f, -8.6f, 3.5f, 4.5f, -7.5f };
  const int8_t e4[] = { 7, -8, 4, 4, -8 };
  int8_t q4[5];
  slim_quantize_rows (&cfg4, x4, 1, 5, &scale, &offset, 1, q4);
  for (int i = 0; i < 5; i++)
    EXPECT_EQ (q4[i], e4[i]) << x4[i];

  // int4 asym, min = 0, max = 15: scale = 15/15 = 1, offset = round(0) - 8 = -8
  //   x = 7.5 -> 7.5 - 8 = -0.5 -> 0 (half to even), dequant (0 + 8) * 1 = 8
  SlimQParamsConfig cfg4a = make_cfg (SLIM_QDTYPE_INT4, false);
  slim_qparams_compute (&cfg4a, 0.0f, 15.0f, &scale, &offset);
  EXPECT_EQ (scale, 1.0f);
  EXPECT_EQ (offset, -8.0f);
  const float x4a[] = { 0.0f, 15.0f, 7.5f, 8.5f };
  const int8_t e4a[] = { -8, 7, 0, 0 };
  int8_t q4a[4];
  float d4a[4];
  slim_quantize_rows (&cfg4a, x4a, 1, 4, &scale, &offset, 1, q4a);
  slim_dequantize_rows (q4a, 1, 4, &scale, &offset, 1, d4a);
  for (int i = 0; i < 4; i++)
    EXPECT_EQ (q4a[i], e4a[i]) << x4a[i];
  EXPECT_EQ (d4a[2], 8.0f);
}

TEST (QParams, MaxBound)
{
  // int8 sym with ext.max_bound = 119: scale = 119/119 = 1 and codes are
  // clamped to [-119, 119]
  SlimQParamsConfig cfg = make_cfg (SLIM_QDTYPE_INT8, true, 119);
  float scale, offset;
  slim_qparams_compute (&cfg, -119.0f, 50.0f, &scale, &offset);
  EXPECT_EQ (scale, 1.0f);
  const float x[] = { 125.0f, -125.0f, 100.0f };
  const int8_t expected[] = { 119, -119, 100 };
  int8_t q[3], q_ref[3];
  slim_quantize_rows (&cfg, x, 1, 3, &scale, &offset, 1, q);
  slim_quantize_rows_ref (&cfg, x, 1, 3, &scale, &offset, 1, q_ref);
  for (int i = 0; i < 3; i++)
    {
      EXPECT_EQ (q[i], expected[i]);
      EXPECT_EQ (q_ref[i], expected[i]);
    }
  // asymmetric: max_bound replaces 2^b - 1 in the scale: (10 - 0)/100
  SlimQParamsConfig cfga = make_cfg (SLIM_QDTYPE_INT8, false, 100);
  slim_qparams_compute (&cfga, 0.0f, 10.0f, &scale, &offset);
  EXPECT_FLOAT_EQ (scale, 0.1f);
  EXPECT_EQ (offset, -128.0f);
}

TEST (QParams, RoundHalfEvenMatchesReference)
{
  std::vector<float> values;
  for (int k = -4000; k <= 4000; k++)
    values.push_back ((float)k / 4.0f); // every quarter: exact ties included
  std::mt19937 rng (7);
  std::uniform_real_distribution<float> u (-300.0f, 300.0f);
  for (int i = 0; i < 20000; i++)
    values.push_back (u (rng));
  const float special[]
      = { 8388607.5f, 8388608.0f,  8388609.0f,   16777216.0f, 1e30f, -1e30f, FLT_MIN,  -FLT_MIN,
          1e-40f,     0.49999997f, -0.49999997f, 0.5f,        -0.0f, 0.0f,   INFINITY, -INFINITY };
  values.insert (values.end (), std::begin (special), std::end (special));
  for (float v : values)
    {
      float a = slim_round_half_even (v);
      float b = slim_round_half_even_ref (v);
      EXPECT_EQ (float_bits (a), float_bits (b)) << v;
    }
  EXPECT_TRUE (std::isnan (slim_round_half_even_ref (NAN)));
  EXPECT_EQ (slim_round_half_even_ref (2.5f), 2.0f);
  EXPECT_EQ (slim_round_half_even_ref (3.5f), 4.0f);
  EXPECT_EQ (slim_round_half_even_ref (-2.5f), -2.0f);
}

// Sweeps over bits, symmetric and group size (0 = per_channel).
class QuantSweep : public ::testing::TestWithParam<std::tuple<SlimQDtype, bool, int> >
{
};

TEST_P (QuantSweep, DequantErrorBoundedAndFastEqualsRef)
{
  const SlimQDtype dtype = std::get<0> (GetParam ());
  const bool symmetric = std::get<1> (GetParam ());
  const int group_size = std::get<2> (GetParam ());
  const SlimQScope scope = group_size > 0 ? SLIM_QSCOPE_PER_GROUP : SLIM_QSCOPE_PER_CHANNEL;
  const gint64 n_out = 6, n_in = 64;
  SlimQParamsConfig cfg = make_cfg (dtype, symmetric);

  std::vector<float> w = make_data (n_out * n_in, 3u + (unsigned)group_size);
  // one row with a tiny range, one constant row, one all-positive row
  for (gint64 k = 0; k < n_in; k++)
    {
      w[1 * n_in + k] *= 1e-3f;
      w[2 * n_in + k] = 0.25f;
      w[3 * n_in + k] = std::fabs (w[3 * n_in + k]) + 1.0f;
    }

  gint64 n_params = 0;
  GError *error = nullptr;
  ASSERT_TRUE (slim_qparams_weight_n_params (scope, n_out, n_in, group_size, &n_params, &error));
  EXPECT_EQ (n_params, group_size > 0 ? n_out * (n_in / group_size) : n_out);
  const gint64 n_cols = n_out * n_in / n_params;

  std::vector<float> scale (n_params), offset (n_params);
  std::vector<int8_t> q (n_out * n_in), q_ref (n_out * n_in);
  ASSERT_TRUE (slim_quantize_weight (&cfg, scope, w.data (), n_out, n_in, group_size, scale.data (),
                                     offset.data (), q.data (), &error));
  slim_quantize_rows_ref (&cfg, w.data (), n_params, n_cols, scale.data (), offset.data (),
                          n_params, q_ref.data ());
  EXPECT_EQ (q, q_ref);

  gint qmin, qmax;
  slim_qparams_get_range (&cfg, &qmin, &qmax);
  std::vector<float> back (n_out * n_in), fake (n_out * n_in), fake_ref (n_out * n_in);
  slim_dequantize_rows (q.data (), n_params, n_cols, scale.data (), offset.data (), n_params,
                        back.data ());
  slim_fake_quantize_rows (&cfg, w.data (), n_params, n_cols, scale.data (), offset.data (),
                           n_params, fake.data ());
  slim_fake_quantize_rows_ref (&cfg, w.data (), n_params, n_cols, scale.data (), offset.data (),
                               n_params, fake_ref.data ());
  for (gint64 i = 0; i < n_out * n_in; i++)
    {
      const gint64 p = i / n_cols;
      // groups run along the input axis: element (n, k) uses param
      // n * (n_in / group_size) + k / group_size
      if (group_size > 0)
        {
          EXPECT_EQ (p, (i / n_in) * (n_in / group_size) + (i % n_in) / group_size);
        }
      ASSERT_GE (q[i], qmin);
      ASSERT_LE (q[i], qmax);
      EXPECT_EQ (float_bits (back[i]), float_bits (fake[i])) << i;
      EXPECT_EQ (float_bits (fake[i]), float_bits (fake_ref[i])) << i;
      // min/max cover the data, so only rounding is lost: |x - x^| <= scale/2.
      // Slack: the scale, x/scale and (q - offset) * scale each carry float32
      // rounding (~6e-8 relative) over a range of up to 255 steps, i.e.
      // about 1e-4 of a step in the worst case; 2e-4 leaves a margin.
      EXPECT_LE (std::fabs (w[i] - back[i]), scale[p] * (0.5f + 2e-4f))
          << "i=" << i << " x=" << w[i] << " scale=" << scale[p];
    }

  // the params of each row/group equal slim_qparams_compute on that slice
  for (gint64 p = 0; p < n_params; p++)
    {
      float mn = INFINITY, mx = -INFINITY;
      for (gint64 c = 0; c < n_cols; c++)
        {
          mn = std::min (mn, w[p * n_cols + c]);
          mx = std::max (mx, w[p * n_cols + c]);
        }
      float s, o;
      slim_qparams_compute (&cfg, mn, mx, &s, &o);
      EXPECT_EQ (float_bits (s), float_bits (scale[p]));
      EXPECT_EQ (o, offset[p]);
      if (symmetric)
        {
          EXPECT_EQ (o, 0.0f);
        }
    }
}

INSTANTIATE_TEST_SUITE_P (BitsSymGroup,
                          QuantSweep,
                          ::testing::Combine (::testing::Values (SLIM_QDTYPE_INT8,
                                                                 SLIM_QDTYPE_INT4),
                                              ::testing::Bool (),
                                              ::testing::Values (0, 8, 16, 32, 64)));

TEST (QParams, FastEqualsRefOnExactTies)
{
  // scale 0.25 (a power of two): x = (k + 0.5) * 0.25 gives exact .5 ties
  for (SlimQDtype dtype : { SLIM_QDTYPE_INT8, SLIM_QDTYPE_INT4 })
    for (bool sym : { true, false })
      {
        SlimQParamsConfig cfg = make_cfg (dtype, sym);
        std::vector<float> x;
        for (int k = -300; k < 300; k++)
          x.push_back (((float)k + 0.5f) * 0.25f);
        x.push_back (NAN);
        x.push_back (INFINITY);
        x.push_back (-INFINITY);
        const float scale = 0.25f, offset = sym ? 0.0f : -3.0f;
        std::vector<int8_t> q (x.size ()), q_ref (x.size ());
        slim_quantize_rows (&cfg, x.data (), 1, (gint64)x.size (), &scale, &offset, 1, q.data ());
        slim_quantize_rows_ref (&cfg, x.data (), 1, (gint64)x.size (), &scale, &offset, 1,
                                q_ref.data ());
        EXPECT_EQ (q, q_ref);
      }
}

TEST (QParams, PerTokenHasOneScalePerRow)
{
  // row 0 tiny, row 1 large: a per-tensor scale would flatten row 0 to 0
  const gint64 n_tok = 2, hidden = 8;
  std::vector<float> x = make_data (n_tok * hidden, 11);
  for (gint64 k = 0; k < hidden; k++)
    {
      x[k] *= 1e-3f;
      x[hidden + k] *= 100.0f;
    }
  SlimQParamsConfig cfg = make_cfg (SLIM_QDTYPE_INT8, true);
  std::vector<float> out (x.size ());
  slim_fake_quantize_rows_dynamic (&cfg, x.data (), n_tok, hidden, out.data ());
  for (gint64 r = 0; r < n_tok; r++)
    {
      float mn, mx, s, o;
      slim_minmax_rows (&x[r * hidden], 1, hidden, &mn, &mx);
      slim_qparams_compute (&cfg, mn, mx, &s, &o);
      for (gint64 k = 0; k < hidden; k++)
        EXPECT_LE (std::fabs (out[r * hidden + k] - x[r * hidden + k]), s * (0.5f + 2e-4f));
    }
  // row 0 keeps a relative precision a global scale could not give
  float amax0 = 0.0f;
  for (gint64 k = 0; k < hidden; k++)
    amax0 = std::max (amax0, std::fabs (x[k]));
  for (gint64 k = 0; k < hidden; k++)
    EXPECT_LE (std::fabs (out[k] - x[k]), amax0 / 127.0f);

  // in-place aliasing gives the same result
  std::vector<float> inplace = x;
  slim_fake_quantize_rows_dynamic (&cfg, inplace.data (), n_tok, hidden, inplace.data ());
  EXPECT_EQ (inplace, out);
}

TEST (QParams, WeightShapeAndGroupErrors)
{
  gint64 n = 0;
  struct
  {
    SlimQScope scope;
    gint64 n_out, n_in, gs;
    GQuark domain;
    int code;
  } bad[] = {
    { SLIM_QSCOPE_PER_GROUP, 4, 64, 24, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE },
    { SLIM_QSCOPE_PER_GROUP, 4, 64, 0, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE },
    { SLIM_QSCOPE_PER_TOKEN, 4, 64, 0, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE },
    { SLIM_QSCOPE_PER_CHANNEL, 0, 64, 0, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH },
    { SLIM_QSCOPE_PER_CHANNEL, G_MAXINT64 / 2, 64, 0, SLIM_NUMERIC_ERROR,
      SLIM_NUMERIC_ERROR_SHAPE_MISMATCH },
  };
  for (const auto &b : bad)
    {
      GError *error = nullptr;
      EXPECT_FALSE (slim_qparams_weight_n_params (b.scope, b.n_out, b.n_in, b.gs, &n, &error));
      GErrorPtr guard (error);
      EXPECT_TRUE (g_error_matches (error, b.domain, b.code));
    }
  GError *error = nullptr;
  ASSERT_TRUE (slim_qparams_weight_n_params (SLIM_QSCOPE_PER_TENSOR, 4, 64, 0, &n, &error));
  EXPECT_EQ (n, 1);
}

TEST (QParams, ObserverAggregatesAcrossCalls)
{
  const float call1[] = { -1.0f, 0.5f, 2.0f };
  const float call2[] = { -3.0f, 4.0f };
  const float call3[] = { -2.0f, 9.0f, 1.0f };
  float mn, mx;
  GError *error = nullptr;

  SlimMinMaxObserver obs;
  slim_minmax_observer_init (&obs, SLIM_QAGGREGATION_MAX);
  EXPECT_FALSE (slim_minmax_observer_get (&obs, &mn, &mx, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED));
  g_clear_error (&error);
  slim_minmax_observer_update (&obs, call1, 3);
  slim_minmax_observer_update (&obs, call2, 2);
  slim_minmax_observer_update (&obs, call3, 3);
  ASSERT_TRUE (slim_minmax_observer_get (&obs, &mn, &mx, &error));
  EXPECT_EQ (mn, -3.0f); // min of mins
  EXPECT_EQ (mx, 9.0f);  // max of maxes

  // mean: per-call (min, max) = (-1, 2), (-3, 4), (-2, 9) -> (-2, 5)
  slim_minmax_observer_init (&obs, SLIM_QAGGREGATION_MEAN);
  slim_minmax_observer_update (&obs, call1, 3);
  ASSERT_TRUE (slim_minmax_observer_get (&obs, &mn, &mx, &error));
  EXPECT_EQ (mn, -1.0f);
  EXPECT_EQ (mx, 2.0f);
  slim_minmax_observer_update (&obs, call2, 2);
  slim_minmax_observer_update (&obs, call3, 3);
  ASSERT_TRUE (slim_minmax_observer_get (&obs, &mn, &mx, &error));
  EXPECT_EQ (mn, -2.0f);
  EXPECT_EQ (mx, 5.0f);

  // the mean is accumulated in float64 and rounded once: 0.1f, 0.2f, 0.4f
  // average to the float nearest (0.1f + 0.2f + 0.4f) / 3 computed exactly
  const float a[] = { 0.1f }, b[] = { 0.2f }, c[] = { 0.4f };
  slim_minmax_observer_init (&obs, SLIM_QAGGREGATION_MEAN);
  for (const float *v : { a, b, c })
    slim_minmax_observer_update (&obs, v, 1);
  ASSERT_TRUE (slim_minmax_observer_get (&obs, &mn, &mx, &error));
  EXPECT_EQ (mn, (float)(((double)0.1f + (double)0.2f + (double)0.4f) / 3.0));
}

// ===========================================================================
// ascendv1 derived tensors
// ===========================================================================

TEST (Pack, W4A8PacksPairsOfOutputRows)
{
  // rows r0 = [1, -1, 7], r1 = [-8, 3, 0], r2 = [2, -2, -3], r3 = [5, 4, -1]
  // packed[0] = (r1 << 4) | (r0 & 0xF) = [-128|1, 48|15, 0|7]   = [-127, 63, 7]
  // packed[1] = (r3 << 4) | (r2 & 0xF) = [80|2, 64|14, -16|13]  = [82, 78, -3]
  const int8_t wq[] = { 1, -1, 7, -8, 3, 0, 2, -2, -3, 5, 4, -1 };
  const int8_t expected[] = { -127, 63, 7, 82, 78, -3 };
  int8_t packed[6], packed_ref[6], back[12];
  GError *error = nullptr;
  ASSERT_TRUE (slim_pack_w4a8_int4 (wq, 4, 3, packed, &error));
  ASSERT_TRUE (slim_pack_w4a8_int4_ref (wq, 4, 3, packed_ref, &error));
  for (int i = 0; i < 6; i++)
    {
      EXPECT_EQ (packed[i], expected[i]) << i;
      EXPECT_EQ (packed_ref[i], expected[i]) << i;
    }
  slim_unpack_w4a8_int4 (packed, 4, 3, back);
  EXPECT_EQ (0, std::memcmp (back, wq, sizeof wq));
}

TEST (Pack, W4A8RoundTripAndErrors)
{
  std::mt19937 rng (5);
  std::uniform_int_distribution<int> u (-8, 7);
  for (gint64 n_out : { 2, 6, 32 })
    for (gint64 n_in : { 1, 7, 64 })
      {
        std::vector<int8_t> wq (n_out * n_in), p (n_out * n_in / 2), p_ref (p.size ()),
            back (wq.size ());
        for (auto &v : wq)
          v = (int8_t)u (rng);
        GError *error = nullptr;
        ASSERT_TRUE (slim_pack_w4a8_int4 (wq.data (), n_out, n_in, p.data (), &error));
        ASSERT_TRUE (slim_pack_w4a8_int4_ref (wq.data (), n_out, n_in, p_ref.data (), &error));
        EXPECT_EQ (p, p_ref);
        slim_unpack_w4a8_int4 (p.data (), n_out, n_in, back.data ());
        EXPECT_EQ (back, wq);
      }
  const int8_t odd[] = { 1, 2, 3 };
  int8_t out[4];
  GError *error = nullptr;
  EXPECT_FALSE (slim_pack_w4a8_int4 (odd, 3, 1, out, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
  const int8_t big[] = { 1, 8, 3, 4 };
  EXPECT_FALSE (slim_pack_w4a8_int4 (big, 2, 2, out, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
}

TEST (Pack, DeqScaleInt64IsTheSignExtendedBitPattern)
{
  // 1.0f = 0x3F800000, 0.5f = 0x3F000000; -1.0f = 0xBF800000 read as int32
  // is -1082130432 and numpy's int32 -> int64 astype sign-extends it.
  EXPECT_EQ (slim_deq_scale_to_int64 (1.0f), 1065353216);
  EXPECT_EQ (slim_deq_scale_to_int64 (0.5f), 1056964608);
  EXPECT_EQ (slim_deq_scale_to_int64 (-1.0f), -1082130432);
  for (float f : { 1.0f, 3.0e-5f, 1e-12f, -2.5f, 123456.0f })
    EXPECT_EQ (float_bits (slim_deq_scale_from_int64 (slim_deq_scale_to_int64 (f))),
               float_bits (f));
  const float ws[] = { 0.5f, 0.25f };
  float deq[2];
  slim_deq_scale_compute (0.5f, ws, 2, deq);
  EXPECT_EQ (deq[0], 0.25f);
  EXPECT_EQ (deq[1], 0.125f);
}

TEST (Pack, QuantBiasHandComputed)
{
  // Wq = [[1, 2, 3], [-4, 0, 1]] -> row sums 6, -3; input_offset = 2
  // qb[0] = round(1.0 / 0.25 - 6 * 2)   = round(4 - 12) = -8
  // qb[1] = round(-0.5 / 0.5 - (-3 * 2)) = round(-1 + 6) = 5
  const int8_t wq[] = { 1, 2, 3, -4, 0, 1 };
  const float bias[] = { 1.0f, -0.5f };
  const float deq[] = { 0.25f, 0.5f };
  gint32 qb[2], qb_ref[2];
  GError *error = nullptr;
  ASSERT_TRUE (slim_quant_bias_compute (bias, deq, 2.0f, wq, 2, 3, qb, &error));
  ASSERT_TRUE (slim_quant_bias_compute_ref (bias, deq, 2.0f, wq, 2, 3, qb_ref, &error));
  EXPECT_EQ (qb[0], -8);
  EXPECT_EQ (qb[1], 5);
  EXPECT_EQ (qb_ref[0], -8);
  EXPECT_EQ (qb_ref[1], 5);
  // no bias: round(0 - sum * offset) = [-12, 6]
  ASSERT_TRUE (slim_quant_bias_compute (nullptr, deq, 2.0f, wq, 2, 3, qb, &error));
  EXPECT_EQ (qb[0], -12);
  EXPECT_EQ (qb[1], 6);

  // ties round half to even: bias / 0.25 = 0.5, 1.5, -0.5, 2.5 -> 0, 2, 0, 2
  const int8_t zeros[4] = { 0, 0, 0, 0 };
  const float tb[] = { 0.125f, 0.375f, -0.125f, 0.625f };
  const float td[] = { 0.25f, 0.25f, 0.25f, 0.25f };
  gint32 tq[4];
  ASSERT_TRUE (slim_quant_bias_compute (tb, td, 0.0f, zeros, 4, 1, tq, &error));
  EXPECT_EQ (tq[0], 0);
  EXPECT_EQ (tq[1], 2);
  EXPECT_EQ (tq[2], 0);
  EXPECT_EQ (tq[3], 2);

  // out of int32 range is an error, not a wrap
  const float huge[] = { 1e10f };
  const float tiny[] = { 1e-3f };
  EXPECT_FALSE (slim_quant_bias_compute (huge, tiny, 0.0f, zeros, 1, 1, tq, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE));
  g_clear_error (&error);
  EXPECT_FALSE (slim_quant_bias_compute_ref (huge, tiny, 0.0f, zeros, 1, 1, tq, &error));
  g_clear_error (&error);
}

TEST (Pack, QuantBiasFastEqualsRef)
{
  std::mt19937 rng (9);
  std::uniform_int_distribution<int> u (-128, 127);
  const gint64 n_out = 16, n_in = 257;
  std::vector<int8_t> wq (n_out * n_in);
  for (auto &v : wq)
    v = (int8_t)u (rng);
  std::vector<float> bias = make_data (n_out, 2, 3.0f);
  std::vector<float> ws = make_data (n_out, 4, 1e-3f);
  std::vector<float> deq (n_out);
  for (auto &w : ws)
    w = std::fabs (w) + 1e-4f;
  slim_deq_scale_compute (0.02f, ws.data (), n_out, deq.data ());
  std::vector<gint32> qb (n_out), qb_ref (n_out);
  GError *error = nullptr;
  for (float input_offset : { 0.0f, -3.0f, 17.0f })
    {
      ASSERT_TRUE (slim_quant_bias_compute (bias.data (), deq.data (), input_offset, wq.data (),
                                            n_out, n_in, qb.data (), &error));
      ASSERT_TRUE (slim_quant_bias_compute_ref (bias.data (), deq.data (), input_offset, wq.data (),
                                                n_out, n_in, qb_ref.data (), &error));
      EXPECT_EQ (qb, qb_ref);
    }
}

TEST (Pack, W4A8ScaleBiasKindsByName)
{
  struct
  {
    const char *name;
    SlimW4A8ScaleBiasKind kind;
  } cases[] = {
    { "model.layers.0.mlp.up_proj", SLIM_W4A8_SCALE_BIAS_ROW_SUM },
    { "model.layers.0.mlp.gate_proj", SLIM_W4A8_SCALE_BIAS_ROW_SUM },
    { "model.layers.0.self_attn.q_proj", SLIM_W4A8_SCALE_BIAS_ROW_SUM },
    { "model.layers.0.self_attn.k_proj", SLIM_W4A8_SCALE_BIAS_ROW_SUM },
    { "model.layers.0.self_attn.v_proj", SLIM_W4A8_SCALE_BIAS_ROW_SUM },
    { "model.layers.0.mlp.experts.3.w1", SLIM_W4A8_SCALE_BIAS_ROW_SUM },
    { "model.layers.0.mlp.experts.3.w3", SLIM_W4A8_SCALE_BIAS_ROW_SUM },
    { "model.layers.0.mlp.down_proj", SLIM_W4A8_SCALE_BIAS_TP_SPLIT },
    { "model.layers.0.self_attn.o_proj", SLIM_W4A8_SCALE_BIAS_TP_SPLIT },
    { "model.layers.0.mlp.experts.3.w2", SLIM_W4A8_SCALE_BIAS_TP_SPLIT },
    { "lm_head", SLIM_W4A8_SCALE_BIAS_UNSUMMED },
  };
  for (const auto &c : cases)
    EXPECT_EQ (slim_w4a8_scale_bias_kind (c.name), c.kind) << c.name;
}

TEST (Pack, W4A8ScaleBiasHandComputed)
{
  // Wq = [[1, -2, 3, 0], [7, 7, -8, 1]], scale = [0.5, 0.25]
  const int8_t wq[] = { 1, -2, 3, 0, 7, 7, -8, 1 };
  const float ws[] = { 0.5f, 0.25f };
  gint64 shape[2];
  GError *error = nullptr;

  // column-parallel: 8 * sum_k Wq * s -> [8 * 2 * 0.5, 8 * 7 * 0.25] = [8, 14], (2, 1)
  float row[2];
  ASSERT_TRUE (slim_w4a8_scale_bias_shape ("m.up_proj", 2, 4, 2, shape, &error));
  EXPECT_EQ (shape[0], 2);
  EXPECT_EQ (shape[1], 1);
  ASSERT_TRUE (slim_w4a8_scale_bias ("m.up_proj", wq, ws, 2, 4, 2, row, &error));
  EXPECT_EQ (row[0], 8.0f);
  EXPECT_EQ (row[1], 14.0f);

  // row-parallel with tp = 2: slices [1, -2 | 3, 0] and [7, 7 | -8, 1]
  //   -> [[8 * -0.5, 8 * 1.5], [8 * 3.5, 8 * -1.75]] = [[-4, 12], [28, -14]], (2, 2)
  float tp[4];
  ASSERT_TRUE (slim_w4a8_scale_bias_shape ("m.down_proj", 2, 4, 2, shape, &error));
  EXPECT_EQ (shape[1], 2);
  ASSERT_TRUE (slim_w4a8_scale_bias ("m.down_proj", wq, ws, 2, 4, 2, tp, &error));
  const float e_tp[] = { -4.0f, 12.0f, 28.0f, -14.0f };
  for (int i = 0; i < 4; i++)
    EXPECT_EQ (tp[i], e_tp[i]) << i;

  // any other name: Wq * s itself, (2, 4), no factor 8
  float un[8];
  ASSERT_TRUE (slim_w4a8_scale_bias_shape ("lm_head", 2, 4, 2, shape, &error));
  EXPECT_EQ (shape[1], 4);
  ASSERT_TRUE (slim_w4a8_scale_bias ("lm_head", wq, ws, 2, 4, 2, un, &error));
  const float e_un[] = { 0.5f, -1.0f, 1.5f, 0.0f, 1.75f, 1.75f, -2.0f, 0.25f };
  for (int i = 0; i < 8; i++)
    EXPECT_EQ (un[i], e_un[i]) << i;

  // msModelSlim's tp_num = 16 with 32 input channels: 16 slices of 2
  std::vector<int8_t> w32 (2 * 32);
  for (size_t i = 0; i < w32.size (); i++)
    w32[i] = (int8_t)((int)(i % 16) - 8);
  std::vector<float> sb (2 * SLIM_W4A8_TP_NUM);
  ASSERT_TRUE (slim_w4a8_scale_bias ("model.layers.0.mlp.down_proj", w32.data (), ws, 2, 32,
                                     SLIM_W4A8_TP_NUM, sb.data (), &error));
  for (int n = 0; n < 2; n++)
    for (int t = 0; t < SLIM_W4A8_TP_NUM; t++)
      {
        int s = w32[n * 32 + 2 * t] + w32[n * 32 + 2 * t + 1];
        EXPECT_EQ (sb[n * SLIM_W4A8_TP_NUM + t], 8.0f * ws[n] * (float)s);
      }

  // 20 input channels do not split into 16 slices
  EXPECT_FALSE (slim_w4a8_scale_bias_shape ("m.down_proj", 2, 20, SLIM_W4A8_TP_NUM, shape, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
}
