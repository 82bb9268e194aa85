// SPDX-License-Identifier: Apache-2.0
//
// test-ablate.cpp: `slimflow ablate` and `slimflow analyze` end to end on
// stories260K.
//
// To stay under a minute the runs use 4 calibration samples of at most 64
// tokens (--max_samples 4 --max_length 64), the first 6000 bytes of the
// shared evaluation excerpt and windows of 256 tokens; the figures are
// still the real ones of those inputs (each variant's are checked against
// `slimflow quant` + `slimflow eval` on the same inputs).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <json-glib/json-glib.h>
#include <map>
#include <string>

#include "quant-cli-util.hpp"
#include <glib/gstdio.h>
#include "slim-test.h"

namespace
{

const std::vector<std::string> kFast
    = { "--max_samples", "4", "--max_length", "64", "--ctx", "256", "--threads", "1" };

std::string
short_text ()
{
  static std::string path;
  if (path.empty ())
    {
      gchar *text = nullptr;
      gsize n = 0;
      std::string src = slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt");
      EXPECT_TRUE (g_file_get_contents (src.c_str (), &text, &n, nullptr));
      path = slim_test_make_tmpdir () + "/excerpt.txt";
      quant_write_file (path, std::string (text, MIN (n, (gsize)6000)));
      g_free (text);
    }
  return path;
}

QuantChild
ablate (const std::string &matrix, const std::string &out, std::vector<std::string> extra = {})
{
  std::vector<std::string> a = { "ablate",      "--model_path", quant_stories_model (),
                                 "--matrix",    matrix,         "--text",
                                 short_text (), "--out",        out };
  a.insert (a.end (), kFast.begin (), kFast.end ());
  a.insert (a.end (), extra.begin (), extra.end ());
  return slimflow_cli (a);
}

struct Row
{
  double ppl, kl, top1;
  gint64 bytes;
  bool resumed;
  std::string sha;
};

std::map<std::string, Row>
read_rows (const std::string &dir, JsonObject **out_root = nullptr)
{
  std::map<std::string, Row> rows;
  JsonParser *parser = json_parser_new ();
  std::string path = dir + "/results.json";
  GError *error = nullptr;
  EXPECT_TRUE (json_parser_load_from_file (parser, path.c_str (), &error))
      << (error != nullptr ? error->message : "");
  g_clear_error (&error);
  JsonNode *root = json_parser_get_root (parser);
  if (root != nullptr && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *o = json_node_get_object (root);
      if (out_root != nullptr)
        *out_root = json_object_ref (o);
      JsonArray *a = json_object_get_array_member (o, "rows");
      for (guint i = 0; i < json_array_get_length (a); i++)
        {
          JsonObject *r = json_array_get_object_element (a, i);
          const char *sha = json_object_get_string_member_with_default (r, "config_sha256", "");
          rows[json_object_get_string_member (r, "name")]
              = { json_object_get_double_member (r, "perplexity"),
                  json_object_get_double_member (r, "kl"),
                  json_object_get_double_member (r, "top1"),
                  json_object_get_int_member (r, "output_bytes"),
                  (bool)json_object_get_boolean_member (r, "resumed"),
                  sha != nullptr ? sha : "" };
        }
    }
  g_object_unref (parser);
  return rows;
}

std::string
read_file (const std::string &path)
{
  gchar *text = nullptr;
  if (!g_file_get_contents (path.c_str (), &text, nullptr, nullptr))
    return "";
  std::string s = text;
  g_free (text);
  return s;
}

// A matrix in a temporary folder whose configs point at examples/.
std::string
write_matrix (const std::string &body)
{
  std::string path = slim_test_make_tmpdir () + "/m.yaml";
  quant_write_file (path, "base: " + quant_example ("dense-w8a8.yaml") + "\n" + body);
  return path;
}

const char *const kSmall = "variants:\n"
                           "  - name: w8a8\n"
                           "  - name: w8a16\n"
                           "    config: %s\n"
                           "  - name: sq\n"
                           "    insert: {at: \"process[0]\", entry: {type: smooth_quant}}\n";

std::string
small_matrix ()
{
  char *body = g_strdup_printf (kSmall, quant_example ("dense-w8a16.yaml").c_str ());
  std::string m = write_matrix (body);
  g_free (body);
  return m;
}

} // namespace

// The shipped matrix: every variant scored; the float row is the float
// model; a variant's figures are those of quant + eval on the same inputs.
TEST (AblateCli, ExampleMatrix)
{
  std::string out = slim_test_make_tmpdir () + "/out";
  std::string matrix = slim_test_source_dir () + "/examples/ablate/stories260k.yaml";
  QuantChild r = ablate (matrix, out);
  ASSERT_EQ (r.exit_code, 0) << r.err;
  std::map<std::string, Row> rows = read_rows (out);
  EXPECT_EQ (rows.size (), 38u);
  for (const char *name : { "w8a8-static",         "w8a8-dynamic",        "w8a16",
                            "w4a16-g32",           "smooth-quant",        "iter-smooth",
                            "gptq-w4a16",          "histogram-act",       "pdmix",
                            "c8-minmax",           "c8-ifmr-hfmg",        "fa3",
                            "float-sparse",        "default-w8a8",        "awq-w4a16",
                            "kv-smooth-c8",        "w4a8-dynamic",        "ssz-w4a8",
                            "flex-smooth",         "flex-awq-ssz-w4a8",   "quarot-w8a8-dynamic",
                            "w4a4-dynamic",        "quarot-w4a4-dynamic", "hqq-w4a16",
                            "autoround-w4a16-g32", "autoround-w4a8",      "wfp8afp8-dynamic",
                            "w8a8-mxfp8",          "w4a8-mxfp",           "w4a4-mxfp4",
                            "nf4-g64", "w8a8-sigma3", "w8a8-sigma4", "w8a16-lm-head" })
    {
      ASSERT_EQ (rows.count (name), 1u) << name;
      const Row &row = rows[name];
      EXPECT_TRUE (std::isfinite (row.ppl) && row.ppl > 1.0) << name;
      EXPECT_GT (row.kl, 0.0) << name; // every variant changes the model
      EXPECT_LT (row.top1, 1.0) << name;
      EXPECT_GT (row.bytes, 0) << name;
    }
  EXPECT_EQ (rows["float"].kl, 0.0);
  // W4A16 loses more than W8A16 (the ordering every reference shows).
  EXPECT_GT (rows["w4a16-g32"].kl, rows["w8a16"].kl);
  for (const char *file : { "results.json", "results.csv", "results.md", "results.svg" })
    EXPECT_TRUE (g_file_test ((out + "/" + file).c_str (), G_FILE_TEST_IS_REGULAR)) << file;
  std::string svg = read_file (out + "/results.svg");
  EXPECT_NE (svg.find ("c8-ifmr-hfmg"), std::string::npos);
  EXPECT_NE (read_file (out + "/results.md").find ("| w4a16-g32 |"), std::string::npos);

  // The same variant by hand: quant then eval --reference_model --json.
  std::string save = slim_test_make_tmpdir () + "/q";
  QuantChild q = slimflow_cli ({ "quant", "--model_path", quant_stories_model (), "--save_path",
                                 save, "--config_path", out + "/configs/w4a16-g32.yaml",
                                 "--max_samples", "4", "--max_length", "64" });
  ASSERT_EQ (q.exit_code, 0) << q.err;
  QuantChild e
      = slimflow_cli ({ "eval", "--model_path", save, "--text", short_text (), "--ctx", "256",
                        "--threads", "1", "--reference_model", quant_stories_model (), "--json" });
  ASSERT_EQ (e.exit_code, 0) << e.err;
  JsonParser *parser = json_parser_new ();
  ASSERT_TRUE (json_parser_load_from_data (parser, e.out.c_str (), -1, nullptr));
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  // Same code path and inputs: equal to the last bit of a double printed
  // by json-glib (%.17g): exact.
  EXPECT_EQ (json_object_get_double_member (o, "perplexity"), rows["w4a16-g32"].ppl);
  EXPECT_EQ (json_object_get_double_member (o, "kl"), rows["w4a16-g32"].kl);
  EXPECT_EQ (json_object_get_double_member (o, "top1"), rows["w4a16-g32"].top1);
  g_object_unref (parser);
}

// Two runs give the same numbers and provenance; --resume keeps finished
// variants and redoes a missing one with the same figures.
TEST (AblateCli, ReproducibleAndResumable)
{
  std::string matrix = small_matrix ();
  std::string a = slim_test_make_tmpdir () + "/a", b = slim_test_make_tmpdir () + "/b";
  ASSERT_EQ (ablate (matrix, a).exit_code, 0);
  QuantChild rb = ablate (matrix, b);
  ASSERT_EQ (rb.exit_code, 0) << rb.err;
  JsonObject *oa = nullptr, *ob = nullptr;
  std::map<std::string, Row> ra = read_rows (a, &oa), rbr = read_rows (b, &ob);
  ASSERT_EQ (ra.size (), 4u);
  for (auto &kv : ra)
    {
      const Row &x = kv.second, &y = rbr[kv.first];
      EXPECT_EQ (x.ppl, y.ppl) << kv.first;
      EXPECT_EQ (x.kl, y.kl) << kv.first;
      EXPECT_EQ (x.top1, y.top1) << kv.first;
      EXPECT_EQ (x.bytes, y.bytes) << kv.first;
      EXPECT_EQ (x.sha, y.sha) << kv.first;
    }
  ASSERT_NE (oa, nullptr);
  for (const char *key :
       { "slimflow_version", "matrix_sha256", "model_sha256", "text_tokens_sha256" })
    {
      EXPECT_STREQ (json_object_get_string_member (oa, key),
                    json_object_get_string_member (ob, key))
          << key;
      EXPECT_EQ (strlen (json_object_get_string_member (oa, key)) > 0, true) << key;
    }
  EXPECT_EQ (json_object_get_int_member (oa, "threads"), 1);
  json_object_unref (oa);
  json_object_unref (ob);

  // Interrupted after two variants: the third's record is missing.
  ASSERT_EQ (g_unlink ((a + "/variants/sq.key").c_str ()), 0);
  QuantChild r = ablate (matrix, a, { "--resume" });
  ASSERT_EQ (r.exit_code, 0) << r.err;
  std::map<std::string, Row> rr = read_rows (a);
  EXPECT_TRUE (rr["w8a8"].resumed);
  EXPECT_TRUE (rr["w8a16"].resumed);
  EXPECT_FALSE (rr["sq"].resumed);
  EXPECT_EQ (rr["sq"].ppl, ra["sq"].ppl);
  EXPECT_EQ (rr["w8a8"].kl, ra["w8a8"].kl);
}

// Bad matrices: exit 2 with FILE:LINE:COL, before any work (no output).
TEST (AblateCli, BadMatricesFailBeforeAnyWork)
{
  struct Case
  {
    const char *body;
    const char *fragment;
    int line;
  } cases[] = {
    { "variants:\n  - name: x\n    insert: {at: \"process[0]\", entry: {type: smooth_quantt}}\n",
      "unknown processor 'smooth_quantt' (valid: ", 4 },
    { "variants:\n  - name: x\n  - name: y\n    set: {\"process[0].exclude\": []}\n"
      "  - name: x\n    remove: \"process[0].exclude\"\n",
      "duplicate variant name 'x'", 6 },
    { "variants:\n  - name: x\n    remove: \"process[0]\"\n    set: {\"process[0].alpha\": 1}\n",
      "conflicting edits", 4 },
    { "variants:\n  - name: x\n  - name: y\n    set: {\"process[0].exclude\": [\"*down_proj*\"]}\n",
      "conflicting variants: 'y' gives the same config", 4 },
    { "variants:\n  - name: x\n    remove: \"process[7]\"\n", "not in the config", 4 },
    { "variants:\n  - name: x\n    sett: {}\n", "unknown key 'sett'", 4 },
  };
  for (const Case &c : cases)
    {
      std::string matrix = write_matrix (c.body);
      std::string out = slim_test_make_tmpdir () + "/never";
      QuantChild r = ablate (matrix, out);
      EXPECT_EQ (r.exit_code, 2) << c.body << r.err;
      std::string where = matrix + ":" + std::to_string (c.line) + ":";
      EXPECT_NE (r.err.find (where), std::string::npos) << r.err << " (wanted " << where << ")";
      EXPECT_NE (r.err.find (c.fragment), std::string::npos) << r.err;
      EXPECT_FALSE (g_file_test (out.c_str (), G_FILE_TEST_EXISTS)) << c.body;
    }
  // A variant config the pipeline refuses: exit 2, named by its variant.
  std::string matrix
      = write_matrix ("variants:\n  - name: bad\n    set: {\"process[0].qconfig.weight.dtype\": "
                      "int3}\n");
  QuantChild r = ablate (matrix, slim_test_make_tmpdir () + "/o");
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find ("variant 'bad' (" + matrix + ":3:"), std::string::npos) << r.err;
}

// analyze: sorted errors, W4A16 above W8A16 for every linear, a heat map,
// and a config excluding the worst linears that validates.
TEST (AnalyzeCli, SensitivityAndExclusions)
{
  std::string dir = slim_test_make_tmpdir ();
  std::map<std::string, double> by_config[2];
  const char *configs[2] = { "dense-w4a16-per-group.yaml", "dense-w8a16.yaml" };
  for (int k = 0; k < 2; k++)
    {
      std::string out = dir + "/" + std::to_string (k);
      std::vector<std::string> a = { "analyze",
                                     "--model_path",
                                     quant_stories_model (),
                                     "--config_path",
                                     quant_example (configs[k]),
                                     "--out",
                                     out,
                                     "--max_samples",
                                     "4",
                                     "--max_length",
                                     "64",
                                     "--threads",
                                     "1" };
      if (k == 0)
        a.insert (a.end (), { "--exclude-top", "3", "--write-config", dir + "/excl.yaml" });
      QuantChild r = slimflow_cli (a);
      ASSERT_EQ (r.exit_code, 0) << r.err;
      JsonParser *parser = json_parser_new ();
      ASSERT_TRUE (
          json_parser_load_from_file (parser, (out + "/sensitivity.json").c_str (), nullptr));
      JsonArray *arr = json_node_get_array (json_parser_get_root (parser));
      ASSERT_EQ (json_array_get_length (arr), 35u); // 5 layers x 7 linears
      double prev = INFINITY;
      for (guint i = 0; i < json_array_get_length (arr); i++)
        {
          JsonObject *e = json_array_get_object_element (arr, i);
          double err = json_object_get_double_member (e, "relative_error");
          EXPECT_LE (err, prev) << i;
          prev = err;
          by_config[k][json_object_get_string_member (e, "module")] = err;
        }
      g_object_unref (parser);
      EXPECT_TRUE (g_file_test ((out + "/heatmap.svg").c_str (), G_FILE_TEST_IS_REGULAR));
    }
  for (auto &kv : by_config[0])
    {
      if (kv.first.find ("down_proj") != std::string::npos)
        {
          // left float by both configs
          EXPECT_EQ (kv.second, 0.0) << kv.first;
          continue;
        }
      EXPECT_GT (kv.second, by_config[1][kv.first]) << kv.first;
      EXPECT_GT (by_config[1][kv.first], 0.0) << kv.first;
    }
  std::string excl = read_file (dir + "/excl.yaml");
  ASSERT_FALSE (excl.empty ());
  QuantChild v = slimflow_cli ({ "validate", "--config_path", dir + "/excl.yaml" });
  EXPECT_EQ (v.exit_code, 0) << v.err;
  // The three largest W4A16 errors are now excluded.
  std::vector<std::pair<double, std::string> > sorted;
  for (auto &kv : by_config[0])
    sorted.push_back ({ -kv.second, kv.first });
  std::sort (sorted.begin (), sorted.end ());
  for (int i = 0; i < 3; i++)
    EXPECT_NE (excl.find ("\"" + sorted[i].second + "\""), std::string::npos) << sorted[i].second;
  EXPECT_EQ (excl.find ("\"" + sorted[3].second + "\""), std::string::npos);

  // Smoothing rescales weights across linears: refused, not mis-measured.
  QuantChild sq
      = slimflow_cli ({ "analyze", "--model_path", quant_stories_model (), "--config_path",
                        quant_example ("dense-w8a8-smooth-quant.yaml") });
  EXPECT_EQ (sq.exit_code, 2) << sq.err;
  EXPECT_NE (sq.err.find ("process[0] (smooth_quant)"), std::string::npos) << sq.err;
}
