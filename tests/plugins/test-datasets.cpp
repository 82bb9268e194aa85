// SPDX-License-Identifier: Apache-2.0
//
// test-datasets.cpp: the "jsonl" and "text" dataset plugins, loaded as
// modules from the build tree, on every calibration file of
// /work/shared/data/calib with a SentencePiece tokenizer (stories260K) and
// a byte-level BPE tokenizer written here, plus malformed inputs.
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "slim-plugin.h"
#include "slim-registry.h"
#include "slim-test.h"

namespace
{

struct ObjectDeleter
{
  void
  operator() (gpointer p) const
  {
    g_object_unref (p);
  }
};
using TokenizerPtr = std::unique_ptr<SlimTokenizer, ObjectDeleter>;
using DatasetPtr = std::unique_ptr<SlimDataset, ObjectDeleter>;

SlimRegistry *
registry ()
{
  static SlimRegistry *reg = nullptr;
  if (reg == nullptr)
    {
      reg = slim_registry_new ();
      for (const char *name : { "jsonl", "text" })
        {
          std::string path
              = slim_test_build_dir () + "/plugins/datasets/slim-dataset-" + name + ".so";
          GError *error = nullptr;
          EXPECT_TRUE (slim_registry_load_module (reg, path.c_str (), &error))
              << (error ? error->message : "");
          g_clear_error (&error);
        }
    }
  return reg;
}

DatasetPtr
make_dataset (const char *type,
              const std::string &path,
              guint max_samples = 0,
              guint max_length = 0)
{
  GError *error = nullptr;
  GType gtype = slim_registry_lookup (registry (), SLIM_PLUGIN_KIND_DATASET, type, &error);
  EXPECT_NE (gtype, G_TYPE_INVALID) << (error ? error->message : "");
  g_clear_error (&error);
  if (gtype == G_TYPE_INVALID)
    return nullptr;
  return DatasetPtr (SLIM_DATASET (g_object_new (gtype, "path", path.c_str (), "max-samples",
                                                 max_samples, "max-length", max_length, NULL)));
}

void
write_text (const std::string &path, const std::string &text)
{
  ASSERT_TRUE (g_file_set_contents (path.c_str (), text.c_str (), (gssize)text.size (), nullptr));
}

std::string
json_string (const std::string &s)
{
  JsonNode *node = json_node_new (JSON_NODE_VALUE);
  json_node_set_string (node, s.c_str ());
  char *text = json_to_string (node, FALSE);
  std::string out = text;
  g_free (text);
  json_node_unref (node);
  return out;
}

TokenizerPtr
stories_tokenizer ()
{
  GError *error = nullptr;
  SlimTokenizer *tok
      = slim_tokenizer_new_from_dir (slim_test_shared_path ("models/stories260K").c_str (), &error);
  EXPECT_NE (tok, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  return TokenizerPtr (tok);
}

// A byte-level BPE tokenizer (GPT-2 layout: the 256 byte characters, a few
// merges, a special EOS, no BOS), written to a temp dir.
TokenizerPtr
byte_level_tokenizer ()
{
  std::vector<std::string> tokens;
  int shifted = 0;
  for (int b = 0; b < 256; b++)
    {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      gunichar c = printable ? (gunichar)b : (gunichar)(256 + shifted++);
      char buf[8] = { 0 };
      g_unichar_to_utf8 (c, buf);
      tokens.push_back (buf);
    }
  const char *merges[][2]
      = { { "\xc4\xa0", "t" }, { "h", "e" }, { "\xc4\xa0t", "he" }, { "i", "n" }, { "e", "r" } };
  std::ostringstream json;
  json
      << "{\"added_tokens\":[{\"id\":" << tokens.size () + 5
      << ",\"content\":\"<|endoftext|>\",\"special\":true}],"
         "\"normalizer\":{\"type\":\"NFC\"},"
         "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
         "\"decoder\":{\"type\":\"ByteLevel\"},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{";
  for (size_t i = 0; i < tokens.size (); i++)
    json << (i ? "," : "") << json_string (tokens[i]) << ":" << i;
  for (size_t m = 0; m < G_N_ELEMENTS (merges); m++)
    json << "," << json_string (std::string (merges[m][0]) + merges[m][1]) << ":"
         << tokens.size () + m;
  json << "},\"merges\":[";
  for (size_t m = 0; m < G_N_ELEMENTS (merges); m++)
    json << (m ? "," : "") << "[" << json_string (merges[m][0]) << "," << json_string (merges[m][1])
         << "]";
  json << "]}}";
  std::string dir = slim_test_make_tmpdir ();
  write_text (dir + "/tokenizer.json", json.str ());
  write_text (dir + "/tokenizer_config.json", "{\"eos_token\":\"<|endoftext|>\"}");
  GError *error = nullptr;
  SlimTokenizer *tok = slim_tokenizer_new_from_dir (dir.c_str (), &error);
  EXPECT_NE (tok, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  return TokenizerPtr (tok);
}

// The texts of a calibration file, read independently of the plugin.
std::vector<std::string>
calib_texts (const std::string &path)
{
  std::vector<std::string> texts;
  char *contents = nullptr;
  EXPECT_TRUE (g_file_get_contents (path.c_str (), &contents, nullptr, nullptr));
  char **lines = g_strsplit (contents != nullptr ? contents : "", "\n", -1);
  for (char **line = lines; *line != nullptr; line++)
    {
      char *stripped = g_strstrip (g_strdup (*line));
      bool blank = stripped[0] == '\0';
      g_free (stripped);
      if (blank)
        continue;
      JsonParser *parser = json_parser_new ();
      EXPECT_TRUE (json_parser_load_from_data (parser, *line, -1, nullptr)) << *line;
      JsonObject *object = json_node_get_object (json_parser_get_root (parser));
      const char *key = json_object_has_member (object, "inputs_pretokenized")
                            ? "inputs_pretokenized"
                            : "prompt";
      EXPECT_TRUE (json_object_has_member (object, key)) << path;
      texts.push_back (json_object_get_string_member (object, key));
      g_object_unref (parser);
    }
  g_strfreev (lines);
  g_free (contents);
  return texts;
}

std::vector<std::string>
calib_files ()
{
  std::vector<std::string> files;
  std::string dir = slim_test_shared_path ("data/calib");
  GDir *d = g_dir_open (dir.c_str (), 0, nullptr);
  EXPECT_NE (d, nullptr);
  if (d == nullptr)
    return files;
  const char *name;
  while ((name = g_dir_read_name (d)) != nullptr)
    if (g_str_has_suffix (name, ".jsonl") || g_str_has_suffix (name, ".json"))
      files.push_back (dir + "/" + name);
  g_dir_close (d);
  return files;
}

std::string
decode_sample (SlimTokenizer *tok, SlimDataset *dataset, guint index)
{
  gint64 n = 0;
  const gint32 *ids = slim_dataset_get_sample (dataset, index, &n);
  EXPECT_NE (ids, nullptr);
  char *text = slim_tokenizer_decode (tok, ids, (gsize)n, TRUE);
  std::string out = text;
  g_free (text);
  return out;
}

void
expect_load_error (SlimDataset *dataset,
                   SlimTokenizer *tok,
                   GQuark domain,
                   const std::string &fragment)
{
  GError *error = nullptr;
  EXPECT_FALSE (slim_dataset_load (dataset, tok, &error));
  ASSERT_NE (error, nullptr) << fragment;
  EXPECT_EQ (error->domain, domain) << error->message;
  EXPECT_NE (std::string (error->message).find (fragment), std::string::npos)
      << "expected '" << fragment << "' in: " << error->message;
  g_clear_error (&error);
}

} // namespace

TEST (Datasets, Registered)
{
  for (const char *name : { "jsonl", "text" })
    {
      const SlimPluginDesc *desc
          = slim_registry_get_desc (registry (), SLIM_PLUGIN_KIND_DATASET, name);
      ASSERT_NE (desc, nullptr) << name;
      EXPECT_STREQ (desc->name, name);
      EXPECT_GT (strlen (desc->description), 10u);
    }
}

// Every lab_calib file: all lines become samples, each decodes back to its
// text exactly (SentencePiece: byte fallback; byte-level: all bytes).
TEST (Datasets, CalibFilesRoundTrip)
{
  TokenizerPtr tokenizers[] = { stories_tokenizer (), byte_level_tokenizer () };
  std::vector<std::string> files = calib_files ();
  ASSERT_GE (files.size (), 6u);
  for (auto &tok : tokenizers)
    {
      ASSERT_TRUE (tok);
      for (const std::string &file : files)
        {
          std::vector<std::string> texts = calib_texts (file);
          ASSERT_FALSE (texts.empty ()) << file;
          DatasetPtr dataset = make_dataset ("jsonl", file);
          ASSERT_TRUE (dataset);
          GError *error = nullptr;
          ASSERT_TRUE (slim_dataset_load (dataset.get (), tok.get (), &error))
              << file << ": " << (error ? error->message : "");
          ASSERT_EQ (slim_dataset_get_n_samples (dataset.get ()), texts.size ()) << file;
          for (guint i = 0; i < texts.size (); i++)
            {
              EXPECT_EQ (decode_sample (tok.get (), dataset.get (), i), texts[i])
                  << file << " sample " << i;
              gint64 n = 0;
              const gint32 *ids = slim_dataset_get_sample (dataset.get (), i, &n);
              // BOS first when the tokenizer adds one.
              if (slim_tokenizer_get_add_bos (tok.get ()))
                {
                  EXPECT_EQ (ids[0], slim_tokenizer_get_bos_id (tok.get ()));
                }
            }
        }
    }
}

TEST (Datasets, JsonlLimitsAndFallbacks)
{
  TokenizerPtr tok = stories_tokenizer ();
  ASSERT_TRUE (tok);
  std::string dir = slim_test_make_tmpdir ();
  std::string path = dir + "/mixed.jsonl";
  write_text (path, "{\"inputs_pretokenized\": \"first text\"}\r\n"
                    "\n"
                    "   \n"
                    "{\"prompt\": \"second text\"}\n"
                    "{\"other\": 1}\n"
                    "\"a bare string\"\n"
                    "{\"inputs_pretokenized\": \"a much longer third text here\"}");
  DatasetPtr all = make_dataset ("jsonl", path);
  ASSERT_TRUE (slim_dataset_load (all.get (), tok.get (), nullptr));
  ASSERT_EQ (slim_dataset_get_n_samples (all.get ()), 5u);
  EXPECT_EQ (decode_sample (tok.get (), all.get (), 0), "first text");
  EXPECT_EQ (decode_sample (tok.get (), all.get (), 1), "second text");
  // No known key: the raw line, as msModelSlim does.
  EXPECT_EQ (decode_sample (tok.get (), all.get (), 2), "{\"other\": 1}");
  EXPECT_EQ (decode_sample (tok.get (), all.get (), 3), "a bare string");
  EXPECT_EQ (decode_sample (tok.get (), all.get (), 4), "a much longer third text here");

  DatasetPtr limited = make_dataset ("jsonl", path, 2, 3);
  ASSERT_TRUE (slim_dataset_load (limited.get (), tok.get (), nullptr));
  ASSERT_EQ (slim_dataset_get_n_samples (limited.get ()), 2u);
  for (guint i = 0; i < 2; i++)
    {
      gint64 n = 0;
      const gint32 *ids = slim_dataset_get_sample (limited.get (), i, &n);
      EXPECT_EQ (n, 3);
      EXPECT_EQ (ids[0], 1);
    }

  // A .json file: a list of strings.
  std::string list = dir + "/list.json";
  write_text (list, "[\"one\", \"two two\", \"three\"]");
  DatasetPtr from_list = make_dataset ("jsonl", list, 2);
  ASSERT_TRUE (slim_dataset_load (from_list.get (), tok.get (), nullptr));
  ASSERT_EQ (slim_dataset_get_n_samples (from_list.get ()), 2u);
  EXPECT_EQ (decode_sample (tok.get (), from_list.get (), 1), "two two");
}

TEST (Datasets, JsonlBadInputs)
{
  TokenizerPtr tok = stories_tokenizer ();
  ASSERT_TRUE (tok);
  std::string dir = slim_test_make_tmpdir ();
  struct
  {
    const char *name;
    const char *contents;
    const char *fragment; // appended to the path
    GQuark domain;
  } cases[] = {
    { "bad.jsonl", "{\"inputs_pretokenized\": \"ok\"}\n\n{\"inputs_pretokenized\": \"broken\n",
      "bad.jsonl:3", SLIM_FORMAT_ERROR },
    { "num.jsonl", "{\"inputs_pretokenized\": 42}\n", "num.jsonl:1: \"inputs_pretokenized\"",
      SLIM_FORMAT_ERROR },
    { "latin1.jsonl", "{\"inputs_pretokenized\": \"ok\"}\n{\"inputs_pretokenized\": \"caf\xe9\"}\n",
      "latin1.jsonl:2", SLIM_FORMAT_ERROR },
    { "empty.jsonl", "", "empty.jsonl: no calibration samples", SLIM_FORMAT_ERROR },
    { "blank.jsonl", "\n\n  \n", "blank.jsonl: no calibration samples", SLIM_FORMAT_ERROR },
    { "object.json", "{\"a\": \"b\"}", "object.json: a .json calibration file must hold a list",
      SLIM_FORMAT_ERROR },
    { "mixed.json", "[\"a\", 3]", "mixed.json: item 1", SLIM_FORMAT_ERROR },
    { "broken.json", "[\"a\", ", "broken.json", SLIM_FORMAT_ERROR },
  };
  for (auto &c : cases)
    {
      std::string path = dir + "/" + c.name;
      write_text (path, c.contents);
      DatasetPtr dataset = make_dataset ("jsonl", path);
      ASSERT_TRUE (dataset);
      expect_load_error (dataset.get (), tok.get (), c.domain, c.fragment);
      EXPECT_EQ (slim_dataset_get_n_samples (dataset.get ()), 0u);
    }
  DatasetPtr missing = make_dataset ("jsonl", dir + "/missing.jsonl");
  expect_load_error (missing.get (), tok.get (), G_FILE_ERROR, "missing.jsonl");
  DatasetPtr no_tokenizer = make_dataset ("jsonl", dir + "/bad.jsonl");
  expect_load_error (no_tokenizer.get (), nullptr, SLIM_PIPELINE_ERROR, "tokenizer");
}

TEST (Datasets, TextWindows)
{
  TokenizerPtr tok = stories_tokenizer ();
  ASSERT_TRUE (tok);
  std::string path = slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt");
  DatasetPtr dataset = make_dataset ("text", path, 0, 512);
  GError *error = nullptr;
  ASSERT_TRUE (slim_dataset_load (dataset.get (), tok.get (), &error))
      << (error ? error->message : "");
  // 15,537 tokens (REFERENCE.md) in windows of 512: 30 full + 177.
  ASSERT_EQ (slim_dataset_get_n_samples (dataset.get ()), 31u);
  std::vector<gint32> joined;
  for (guint i = 0; i < 31; i++)
    {
      gint64 n = 0;
      const gint32 *ids = slim_dataset_get_sample (dataset.get (), i, &n);
      EXPECT_EQ (n, i < 30 ? 512 : 15537 - 30 * 512);
      joined.insert (joined.end (), ids, ids + n);
    }
  // BOS once, at the very start; the windows join into the whole text.
  EXPECT_EQ (joined[0], 1);
  EXPECT_EQ (std::count (joined.begin (), joined.end (), 1), 1);
  char *text = slim_tokenizer_decode (tok.get (), joined.data (), joined.size (), TRUE);
  char *original = nullptr;
  ASSERT_TRUE (g_file_get_contents (path.c_str (), &original, nullptr, nullptr));
  EXPECT_STREQ (text, original);
  g_free (text);
  g_free (original);

  DatasetPtr few = make_dataset ("text", path, 3, 100);
  ASSERT_TRUE (slim_dataset_load (few.get (), tok.get (), nullptr));
  EXPECT_EQ (slim_dataset_get_n_samples (few.get ()), 3u);
  // max-length 0: windows of 2048.
  DatasetPtr wide = make_dataset ("text", path);
  ASSERT_TRUE (slim_dataset_load (wide.get (), tok.get (), nullptr));
  EXPECT_EQ (slim_dataset_get_n_samples (wide.get ()), (15537u + 2047u) / 2048u);
}

TEST (Datasets, TextBadInputs)
{
  TokenizerPtr tok = stories_tokenizer ();
  ASSERT_TRUE (tok);
  std::string dir = slim_test_make_tmpdir ();
  write_text (dir + "/empty.txt", "");
  write_text (dir + "/latin1.txt", "caf\xe9\n");
  DatasetPtr empty = make_dataset ("text", dir + "/empty.txt");
  expect_load_error (empty.get (), tok.get (), SLIM_FORMAT_ERROR, "empty");
  DatasetPtr latin1 = make_dataset ("text", dir + "/latin1.txt");
  expect_load_error (latin1.get (), tok.get (), SLIM_FORMAT_ERROR, "UTF-8");
  DatasetPtr missing = make_dataset ("text", dir + "/missing.txt");
  expect_load_error (missing.get (), tok.get (), G_FILE_ERROR, "missing.txt");
  DatasetPtr no_tokenizer = make_dataset ("text", dir + "/latin1.txt");
  expect_load_error (no_tokenizer.get (), nullptr, SLIM_PIPELINE_ERROR, "tokenizer");
}
