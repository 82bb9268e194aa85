// SPDX-License-Identifier: Apache-2.0
//
// test-tokenizer.cpp: SlimTokenizer against the reference ids of
// stories260K (SentencePiece BPE with byte fallback), a naive BPE oracle,
// a byte-level BPE fixture written here, and malformed files.
#include <json-glib/json-glib.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "slim-error.h"
#include "slim-test.h"
#include "slim-tokenizer.h"

namespace
{

struct TokenizerDeleter
{
  void
  operator() (SlimTokenizer *t) const
  {
    g_object_unref (t);
  }
};
using TokenizerPtr = std::unique_ptr<SlimTokenizer, TokenizerDeleter>;

std::string
read_text (const std::string &path)
{
  char *contents = nullptr;
  gsize n_bytes = 0;
  EXPECT_TRUE (g_file_get_contents (path.c_str (), &contents, &n_bytes, nullptr)) << path;
  std::string text (contents != nullptr ? contents : "", n_bytes);
  g_free (contents);
  // The reference protocol reads text with CRLF turned into LF.
  std::string out;
  for (size_t i = 0; i < text.size (); i++)
    if (!(text[i] == '\r' && i + 1 < text.size () && text[i + 1] == '\n'))
      out += text[i];
  return out;
}

void
write_text (const std::string &path, const std::string &text)
{
  ASSERT_TRUE (g_file_set_contents (path.c_str (), text.c_str (), (gssize)text.size (), nullptr));
}

TokenizerPtr
load_stories ()
{
  GError *error = nullptr;
  SlimTokenizer *tok
      = slim_tokenizer_new_from_dir (slim_test_shared_path ("models/stories260K").c_str (), &error);
  EXPECT_NE (tok, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  return TokenizerPtr (tok);
}

std::vector<gint32>
encode (SlimTokenizer *tok, const std::string &text, bool add_special)
{
  GError *error = nullptr;
  GArray *ids = slim_tokenizer_encode (tok, text.c_str (), add_special, &error);
  EXPECT_NE (ids, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  std::vector<gint32> out;
  if (ids != nullptr)
    {
      out.assign ((gint32 *)(gpointer)ids->data, (gint32 *)(gpointer)ids->data + ids->len);
      g_array_unref (ids);
    }
  return out;
}

std::string
decode (SlimTokenizer *tok, const std::vector<gint32> &ids, bool skip_special)
{
  char *text = slim_tokenizer_decode (tok, ids.data (), ids.size (), skip_special);
  std::string out = text != nullptr ? text : "";
  g_free (text);
  return out;
}

// Naive SentencePiece BPE, written from the algorithm's definition: split
// into characters, then repeatedly merge the adjacent pair whose
// concatenation is the vocabulary piece with the best score (SentencePiece
// BPE scores fall with the id, so: the lowest id among merged pieces,
// leftmost on ties); unknown characters become their bytes. O(n^2).
std::vector<gint32>
naive_sentencepiece (SlimTokenizer *tok, const std::string &text)
{
  std::string normalized = "\xe2\x96\x81";
  for (char c : text)
    normalized += c == ' ' ? std::string ("\xe2\x96\x81") : std::string (1, c);
  std::vector<std::string> symbols;
  for (const char *p = normalized.c_str (); *p != '\0'; p = g_utf8_next_char (p))
    symbols.emplace_back (p, g_utf8_next_char (p) - p);
  for (;;)
    {
      gint32 best_id = G_MAXINT32;
      size_t best_pos = 0;
      for (size_t i = 0; i + 1 < symbols.size (); i++)
        {
          gint32 id = slim_tokenizer_token_to_id (tok, (symbols[i] + symbols[i + 1]).c_str ());
          // Only merge results are candidates: not the byte or control tokens.
          if (id >= 259 && id < best_id)
            {
              best_id = id;
              best_pos = i;
            }
        }
      if (best_id == G_MAXINT32)
        break;
      symbols[best_pos] += symbols[best_pos + 1];
      symbols.erase (symbols.begin () + best_pos + 1);
    }
  std::vector<gint32> ids;
  for (const std::string &s : symbols)
    {
      gint32 id = slim_tokenizer_token_to_id (tok, s.c_str ());
      if (id >= 0)
        ids.push_back (id);
      else
        for (unsigned char b : s)
          {
            char name[8];
            g_snprintf (name, sizeof name, "<0x%02X>", b);
            ids.push_back (slim_tokenizer_token_to_id (tok, name));
          }
    }
  return ids;
}

// GPT-2's byte -> printable character table, rebuilt independently.
std::string
byte_char (int b)
{
  int n = 0;
  for (int x = 0; x < 256; x++)
    {
      bool printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
      gunichar c = printable ? (gunichar)x : (gunichar)(256 + n);
      if (!printable)
        n++;
      if (x == b)
        {
          char buf[8] = { 0 };
          g_unichar_to_utf8 (c, buf);
          return buf;
        }
    }
  return "";
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

// A small byte-level BPE tokenizer.json (GPT-2 layout): the 256 byte
// characters, a few merges, one special added token.
struct ByteLevelFixture
{
  std::string dir;
  std::map<std::string, int> vocab;
  std::vector<std::pair<std::string, std::string> > merges;

  void
  add (const std::string &token)
  {
    if (vocab.count (token) == 0)
      {
        int id = (int)vocab.size ();
        vocab[token] = id;
      }
  }

  explicit ByteLevelFixture (const std::string &pre_tokenizer)
  {
    for (int b = 0; b < 256; b++)
      add (byte_char (b));
    const char *pairs[][2]
        = { { "h", "e" },        { "l", "l" }, { "he", "ll" },        { "hell", "o" },
            { "\xc4\xa0", "w" }, { "o", "r" }, { "\xc4\xa0w", "or" }, { "\xc4\xa0wor", "ld" },
            { "l", "d" },        { "'", "t" } };
    for (auto &p : pairs)
      {
        merges.emplace_back (p[0], p[1]);
        add (std::string (p[0]) + p[1]);
      }
    dir = slim_test_make_tmpdir ();
    std::ostringstream json;
    json << "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":" << vocab.size ()
         << ",\"content\":\"<|endoftext|>\",\"special\":true,\"lstrip\":false,\"rstrip\":false,"
            "\"normalized\":false,\"single_word\":false}],"
         << "\"normalizer\":null,\"pre_tokenizer\":" << pre_tokenizer
         << ",\"post_processor\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
            "\"trim_offsets\":true,\"use_regex\":true},"
         << "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
            "\"use_regex\":true},"
         << "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
            "\"byte_fallback\":false,\"vocab\":{";
    bool first = true;
    for (auto &kv : vocab)
      {
        json << (first ? "" : ",") << json_string (kv.first) << ":" << kv.second;
        first = false;
      }
    json << "},\"merges\":[";
    for (size_t i = 0; i < merges.size (); i++)
      json << (i ? "," : "") << json_string (merges[i].first + " " + merges[i].second);
    json << "]}}";
    write_text (dir + "/tokenizer.json", json.str ());
    write_text (dir + "/tokenizer_config.json",
                "{\"add_bos_token\":false,\"bos_token\":null,\"eos_token\":\"<|endoftext|>\"}");
  }

  int
  id (const std::string &token) const
  {
    return vocab.at (token);
  }
};

const char *kByteLevelPre
    = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
      "\"use_regex\":true}";
// Qwen2 layout: the regex in a Split, then ByteLevel without its own regex.
const char *kQwenPre
    = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
      "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
      "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
      "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":"
      "false,\"trim_offsets\":false,\"use_regex\":false}]}";

} // namespace

TEST (Tokenizer, StoriesMetadata)
{
  TokenizerPtr tok = load_stories ();
  ASSERT_TRUE (tok);
  EXPECT_EQ (slim_tokenizer_get_vocab_size (tok.get ()), 512);
  EXPECT_EQ (slim_tokenizer_get_bos_id (tok.get ()), 1);
  EXPECT_EQ (slim_tokenizer_get_eos_id (tok.get ()), 2);
  EXPECT_TRUE (slim_tokenizer_get_add_bos (tok.get ()));
  EXPECT_FALSE (slim_tokenizer_get_add_eos (tok.get ()));
  EXPECT_STREQ (slim_tokenizer_id_to_token (tok.get (), 265), "\xe2\x96\x81the");
  EXPECT_EQ (slim_tokenizer_id_to_token (tok.get (), 512), nullptr);
  EXPECT_TRUE (slim_tokenizer_is_special (tok.get (), 1));
  EXPECT_FALSE (slim_tokenizer_is_special (tok.get (), 265));
}

TEST (Tokenizer, StoriesReferenceSentence)
{
  TokenizerPtr tok = load_stories ();
  ASSERT_TRUE (tok);
  std::string ref_path = slim_test_shared_path ("ref/stories260K_story_logits.json");
  JsonParser *parser = json_parser_new ();
  ASSERT_TRUE (json_parser_load_from_file (parser, ref_path.c_str (), nullptr));
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  std::string text = json_object_get_string_member (root, "text");
  JsonArray *ids_json = json_object_get_array_member (root, "input_ids");
  std::vector<gint32> expected;
  for (guint i = 0; i < json_array_get_length (ids_json); i++)
    expected.push_back ((gint32)json_array_get_int_element (ids_json, i));
  g_object_unref (parser);

  std::vector<gint32> ids = encode (tok.get (), text, true);
  EXPECT_EQ (ids, expected);
  EXPECT_EQ (decode (tok.get (), ids, true), text);
  // Without skipping, BOS shows as its token text.
  EXPECT_EQ (decode (tok.get (), ids, false), "<s> " + text);
}

// The token counts of the reference protocol (REFERENCE.md), which include
// the BOS: any difference from the slow SentencePiece tokenizer shows here.
TEST (Tokenizer, StoriesWholeFileCounts)
{
  TokenizerPtr tok = load_stories ();
  ASSERT_TRUE (tok);
  struct
  {
    const char *path;
    size_t n_tokens;
  } cases[] = { { "data/eval/tinystories_valid_excerpt.txt", 15537 },
                { "data/eval/wikitext2-test.txt", 806356 } };
  for (auto &c : cases)
    {
      std::string text = read_text (slim_test_shared_path (c.path));
      std::vector<gint32> ids = encode (tok.get (), text, true);
      EXPECT_EQ (ids.size (), c.n_tokens) << c.path;
      // Lossless: the byte fallback covers every character.
      EXPECT_EQ (decode (tok.get (), ids, true), text) << c.path;
    }
}

TEST (Tokenizer, StoriesMatchesNaiveBpe)
{
  TokenizerPtr tok = load_stories ();
  ASSERT_TRUE (tok);
  std::string story = read_text (slim_test_shared_path ("data/eval/tinystories_valid_excerpt.txt"));
  std::string wiki = read_text (slim_test_shared_path ("data/eval/wikitext2-test.txt"));
  std::vector<std::string> samples = { story.substr (0, 3000),
                                       wiki.substr (0, 3000),
                                       wiki.substr (100000, 2000),
                                       "  two  spaces,\ttab\nnewline \xc3\xa9t\xc3\xa9 "
                                       "\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 end  ",
                                       "a",
                                       " ",
                                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
  for (const std::string &s : samples)
    {
      std::vector<gint32> ids = encode (tok.get (), s, false);
      EXPECT_EQ (ids, naive_sentencepiece (tok.get (), s)) << s.substr (0, 80);
      EXPECT_EQ (decode (tok.get (), ids, false), s);
    }
}

TEST (Tokenizer, StoriesSpecialTokensAndEdges)
{
  TokenizerPtr tok = load_stories ();
  ASSERT_TRUE (tok);
  // Empty text: BOS alone, or nothing.
  EXPECT_EQ (encode (tok.get (), "", true), std::vector<gint32> ({ 1 }));
  EXPECT_TRUE (encode (tok.get (), "", false).empty ());
  // Special tokens in the text are single ids; each side is its own
  // segment with its own "▁" prefix (the slow tokenizer's legacy mode).
  std::vector<gint32> ids = encode (tok.get (), "the</s>the", false);
  std::vector<gint32> the = encode (tok.get (), "the", false);
  std::vector<gint32> expected = the;
  expected.push_back (2);
  expected.insert (expected.end (), the.begin (), the.end ());
  EXPECT_EQ (ids, expected);
  // Each "▁the" decodes with its space; only the first one is stripped.
  EXPECT_EQ (decode (tok.get (), ids, true), "the the");
  // Byte fallback: "ç" is not in the 512-token vocabulary ("é" is).
  ids = encode (tok.get (), "\xc3\xa7", false);
  ASSERT_EQ (ids.size (), 3u);
  EXPECT_STREQ (slim_tokenizer_id_to_token (tok.get (), ids[1]), "<0xC3>");
  EXPECT_STREQ (slim_tokenizer_id_to_token (tok.get (), ids[2]), "<0xA7>");
  // A lone continuation byte decodes to U+FFFD, never to invalid UTF-8.
  std::string bad = decode (tok.get (), { ids[2] }, false);
  EXPECT_TRUE (g_utf8_validate (bad.c_str (), -1, nullptr));
  EXPECT_EQ (bad, "\xef\xbf\xbd");
  // Out-of-range ids: decode skips them, check_ids reports them.
  std::vector<gint32> out_of_range = { 265, 512, -3 };
  EXPECT_EQ (decode (tok.get (), out_of_range, false), "the");
  GError *error = nullptr;
  EXPECT_FALSE (slim_tokenizer_check_ids (tok.get (), out_of_range.data (), 3, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT));
  EXPECT_NE (std::string (error->message).find ("512"), std::string::npos) << error->message;
  g_clear_error (&error);
  // Invalid UTF-8 input is an error.
  GArray *none = slim_tokenizer_encode (tok.get (), "ab\xff", true, &error);
  EXPECT_EQ (none, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  g_clear_error (&error);
}

TEST (Tokenizer, ByteLevelFixture)
{
  ByteLevelFixture fx (kByteLevelPre);
  GError *error = nullptr;
  TokenizerPtr tok (slim_tokenizer_new_from_dir (fx.dir.c_str (), &error));
  ASSERT_TRUE (tok) << (error ? error->message : "");
  EXPECT_EQ (slim_tokenizer_get_bos_id (tok.get ()), -1);
  EXPECT_FALSE (slim_tokenizer_get_add_bos (tok.get ()));
  EXPECT_EQ (slim_tokenizer_get_eos_id (tok.get ()), (gint32)fx.vocab.size ());
  EXPECT_EQ (slim_tokenizer_get_vocab_size (tok.get ()), (gint64)fx.vocab.size () + 1);

  // "hello world" -> "hello" "Ġworld" by the merges (worked out by hand:
  // h e -> he, l l -> ll, he ll -> hell, hell o -> hello; Ġ w -> Ġw,
  // o r -> or, Ġw or -> Ġwor, l d -> ld, Ġwor ld -> Ġworld).
  std::vector<gint32> ids = encode (tok.get (), "hello world", true);
  EXPECT_EQ (ids, std::vector<gint32> ({ fx.id ("hello"), fx.id ("\xc4\xa0world") }));
  // The GPT-2 regex splits "don't" into "don" "'t"; the special token is one id.
  ids = encode (tok.get (), "don't<|endoftext|>", false);
  std::vector<gint32> expected
      = { fx.id ("d"), fx.id ("o"), fx.id ("n"), fx.id ("'t"), (gint32)fx.vocab.size () };
  EXPECT_EQ (ids, expected);
  EXPECT_EQ (decode (tok.get (), ids, true), "don't");
  EXPECT_EQ (decode (tok.get (), ids, false), "don't<|endoftext|>");
  // Bytes of any script round-trip.
  std::string text = "h\xc3\xa9llo \xe4\xb8\xad\xe6\x96\x87\n\ttabs  and \xf0\x9f\x98\x80!";
  ids = encode (tok.get (), text, false);
  EXPECT_EQ (decode (tok.get (), ids, false), text);
}

TEST (Tokenizer, ByteLevelSplitSequence)
{
  ByteLevelFixture fx (kQwenPre);
  GError *error = nullptr;
  TokenizerPtr tok (slim_tokenizer_new_from_dir (fx.dir.c_str (), &error));
  ASSERT_TRUE (tok) << (error ? error->message : "");
  // Qwen splits digits one by one and keeps "'T" (case-insensitive).
  std::vector<gint32> ids = encode (tok.get (), "hello world 42'T", false);
  std::vector<gint32> expected = { fx.id ("hello"),    fx.id ("\xc4\xa0world"),
                                   fx.id ("\xc4\xa0"), fx.id ("4"),
                                   fx.id ("2"),        fx.id ("'"),
                                   fx.id ("T") };
  EXPECT_EQ (ids, expected);
  std::string text = "line one\r\n\r\nline\xe3\x80\x80two \xe4\xb8\xad\xe6\x96\x87 x";
  EXPECT_EQ (decode (tok.get (), encode (tok.get (), text, false), false), text);
}

TEST (Tokenizer, MalformedFiles)
{
  std::string dir = slim_test_make_tmpdir ();
  struct
  {
    const char *json;
    const char *fragment;
  } cases[] = {
    { "not json", "tokenizer.json" },
    { "[1, 2]", "not a JSON object" },
    { "{}", "\"model\"" },
    { "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "Unigram" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": []}}", "model.vocab" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"1\"}}}", "not an integer" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}}}", "out of range" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999999}}}", "out of range" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}}}", "given to both" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {}}}", "empty vocabulary" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
      "not in the vocabulary" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [3]}}", "not a pair" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"id\": 1}]}",
      "added_tokens[0]" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": "
      "\"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}",
      "pattern" },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}, \"normalizer\": {\"type\": "
      "\"Precompiled\"}}",
      "Precompiled" },
  };
  for (auto &c : cases)
    {
      std::string path = dir + "/tokenizer.json";
      write_text (path, c.json);
      GError *error = nullptr;
      SlimTokenizer *tok = slim_tokenizer_new_from_files (path.c_str (), nullptr, &error);
      EXPECT_EQ (tok, nullptr) << c.json;
      ASSERT_NE (error, nullptr) << c.json;
      EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID)) << c.json;
      EXPECT_NE (std::string (error->message).find (c.fragment), std::string::npos)
          << c.json << " -> " << error->message;
      g_clear_error (&error);
      if (tok != nullptr)
        g_object_unref (tok);
    }

  // Missing files.
  GError *error = nullptr;
  EXPECT_EQ (slim_tokenizer_new_from_dir ((dir + "/nowhere").c_str (), &error), nullptr);
  EXPECT_TRUE (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT));
  g_clear_error (&error);

  // A config naming a BOS the vocabulary lacks.
  write_text (dir + "/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}");
  write_text (dir + "/tokenizer_config.json", "{\"bos_token\": \"<s>\", \"add_bos_token\": true}");
  EXPECT_EQ (slim_tokenizer_new_from_dir (dir.c_str (), &error), nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_NE (std::string (error->message).find ("bos_token"), std::string::npos) << error->message;
  g_clear_error (&error);
}
