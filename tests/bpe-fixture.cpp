// SPDX-License-Identifier: Apache-2.0
//
// bpe-fixture.cpp: the test tokenizers' trainer, reference encoder and
// writer (see bpe-fixture.hpp).
#include "bpe-fixture.hpp"

#include <gtest/gtest.h>

#include <json-glib/json-glib.h>
#include <unistd.h>

#include <map>
#include <set>
#include <stdexcept>

#include "quant-cli-util.hpp"
#include "slim-test.h"

namespace slim_test
{

namespace
{

const char kGpt2[]
    = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char kQwen2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                      "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char kLlama3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                       "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// GPT-2's byte map: the printable bytes keep their code point, the others
// get 256, 257, ... in byte order.  ids: the printable bytes first, in
// byte order, then the others (GPT-2's vocab.json order).
struct ByteMap
{
  std::string chars[256]; // byte -> UTF-8 of its character
  int32_t ids[256];       // byte -> id
  ByteMap ()
  {
    int32_t next_id = 0, shifted = 0;
    bool printable[256];
    for (int b = 0; b < 256; b++)
      printable[b] = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    for (int pass = 0; pass < 2; pass++)
      for (int b = 0; b < 256; b++)
        if (printable[b] == (pass == 0))
          {
            gunichar c = printable[b] ? (gunichar)b : (gunichar)(256 + shifted++);
            char buf[8] = { 0 };
            g_unichar_to_utf8 (c, buf);
            chars[b] = buf;
            ids[b] = next_id++;
          }
  }
};

const ByteMap &
byte_map ()
{
  static const ByteMap map;
  return map;
}

// text split by the regex, matches and the gaps between them (Split
// "Isolated").
std::vector<std::string>
split_words (const std::string &text, const char *pattern)
{
  GError *error = nullptr;
  GRegex *regex = g_regex_new (pattern, G_REGEX_OPTIMIZE, (GRegexMatchFlags)0, &error);
  if (regex == nullptr)
    throw std::runtime_error (error->message);
  std::vector<std::string> words;
  GMatchInfo *info = nullptr;
  size_t last = 0;
  g_regex_match_full (regex, text.c_str (), (gssize)text.size (), 0, (GRegexMatchFlags)0, &info,
                      nullptr);
  while (g_match_info_matches (info))
    {
      gint start = 0, end = 0;
      g_match_info_fetch_pos (info, 0, &start, &end);
      if ((size_t)start > last)
        words.push_back (text.substr (last, start - last));
      if (end > start)
        words.push_back (text.substr (start, end - start));
      last = (size_t)end;
      g_match_info_next (info, nullptr);
    }
  if (last < text.size ())
    words.push_back (text.substr (last));
  g_match_info_free (info);
  g_regex_unref (regex);
  return words;
}

std::vector<int32_t>
byte_ids (const std::string &word)
{
  std::vector<int32_t> ids;
  for (unsigned char c : word)
    ids.push_back (byte_map ().ids[c]);
  return ids;
}

// Replaces every (a, b) in word, left to right, by merged.
void
apply_merge (std::vector<int32_t> &word, int32_t a, int32_t b, int32_t merged)
{
  size_t out = 0;
  for (size_t i = 0; i < word.size (); i++)
    {
      if (i + 1 < word.size () && word[i] == a && word[i + 1] == b)
        {
          word[out++] = merged;
          i++;
        }
      else
        word[out++] = word[i];
    }
  word.resize (out);
}

JsonNode *
parse_file (const std::string &path)
{
  JsonParser *parser = json_parser_new ();
  GError *error = nullptr;
  if (!json_parser_load_from_file (parser, path.c_str (), &error))
    throw std::runtime_error (error->message);
  JsonNode *root = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);
  return root;
}

void
write_json (const std::string &path, JsonNode *root)
{
  JsonGenerator *gen = json_generator_new ();
  json_generator_set_root (gen, root);
  GError *error = nullptr;
  EXPECT_TRUE (json_generator_to_file (gen, path.c_str (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  g_object_unref (gen);
}

JsonNode *
byte_level_object ()
{
  JsonObject *o = json_object_new ();
  json_object_set_string_member (o, "type", "ByteLevel");
  json_object_set_boolean_member (o, "add_prefix_space", FALSE);
  json_object_set_boolean_member (o, "trim_offsets", FALSE);
  json_object_set_boolean_member (o, "use_regex", FALSE);
  JsonNode *n = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (n, o);
  return n;
}

} // namespace

const char *
bpe_regex_pattern (BpeRegex regex)
{
  switch (regex)
    {
    case BpeRegex::Gpt2:
      return kGpt2;
    case BpeRegex::Qwen2:
      return kQwen2;
    case BpeRegex::Llama3:
      return kLlama3;
    }
  return kQwen2;
}

BpeTokenizer
bpe_train (const std::string &text,
           BpeRegex regex,
           size_t vocab_size,
           const std::vector<BpeAddedToken> &added)
{
  BpeTokenizer tok;
  tok.regex = regex;
  tok.added = added;
  tok.vocab.resize (256);
  for (int b = 0; b < 256; b++)
    tok.vocab[byte_map ().ids[b]] = byte_map ().chars[b];
  std::set<std::string> known (tok.vocab.begin (), tok.vocab.end ());

  // every distinct word once, with its count (std::map: a fixed order)
  std::map<std::string, int64_t> counts;
  for (const std::string &w : split_words (text, bpe_regex_pattern (regex)))
    counts[w]++;
  std::vector<std::vector<int32_t> > words;
  std::vector<int64_t> weights;
  for (const auto &c : counts)
    {
      words.push_back (byte_ids (c.first));
      weights.push_back (c.second);
    }

  // the most frequent adjacent pair whose merged token is new; ties: the
  // smallest (left, right) ids
  std::set<std::pair<int32_t, int32_t> > banned;
  while (tok.vocab.size () + added.size () < vocab_size)
    {
      std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
      for (size_t w = 0; w < words.size (); w++)
        for (size_t i = 0; i + 1 < words[w].size (); i++)
          pairs[{ words[w][i], words[w][i + 1] }] += weights[w];
      std::pair<int32_t, int32_t> best{ -1, -1 };
      int64_t best_count = 0;
      for (const auto &p : pairs)
        if (p.second > best_count && banned.count (p.first) == 0)
          {
            best = p.first;
            best_count = p.second;
          }
      if (best_count == 0)
        throw std::runtime_error ("bpe_train: the text has too few pairs for the vocabulary");
      std::string merged = tok.vocab[best.first] + tok.vocab[best.second];
      if (known.count (merged) != 0)
        {
          banned.insert (best);
          continue;
        }
      int32_t id = (int32_t)tok.vocab.size ();
      tok.vocab.push_back (merged);
      known.insert (merged);
      tok.merges.push_back (best);
      for (std::vector<int32_t> &w : words)
        apply_merge (w, best.first, best.second, id);
    }
  for (const BpeAddedToken &a : added)
    tok.vocab.push_back (a.content);
  return tok;
}

std::vector<int32_t>
BpeTokenizer::encode (const std::string &text) const
{
  // every merge produces a new token, so applying the merges one rank at
  // a time is the lowest-rank-first BPE of tokenizers and llama.cpp; with
  // ignore_merges a word that is a token is emitted whole
  std::map<std::string, int32_t> ids;
  for (size_t i = 0; i + added.size () < vocab.size (); i++)
    ids[vocab[i]] = (int32_t)i;
  std::vector<int32_t> out;
  for (const std::string &w : split_words (text, bpe_regex_pattern (regex)))
    {
      std::vector<int32_t> word = byte_ids (w);
      if (regex == BpeRegex::Llama3)
        {
          std::string mapped;
          for (unsigned char c : w)
            mapped += byte_map ().chars[c];
          auto it = ids.find (mapped);
          if (it != ids.end ())
            {
              out.push_back (it->second);
              continue;
            }
        }
      for (size_t r = 0; r < merges.size () && word.size () > 1; r++)
        apply_merge (word, merges[r].first, merges[r].second, (int32_t)(256 + r));
      out.insert (out.end (), word.begin (), word.end ());
    }
  return out;
}

void
BpeTokenizer::write (const std::string &dir) const
{
  JsonBuilder *b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, "1.0");
  json_builder_set_member_name (b, "truncation");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "padding");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "added_tokens");
  json_builder_begin_array (b);
  for (size_t i = 0; i < added.size (); i++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "id");
      json_builder_add_int_value (b, (gint64)(vocab.size () - added.size () + i));
      json_builder_set_member_name (b, "content");
      json_builder_add_string_value (b, added[i].content.c_str ());
      for (const char *f : { "single_word", "lstrip", "rstrip", "normalized" })
        {
          json_builder_set_member_name (b, f);
          json_builder_add_boolean_value (b, FALSE);
        }
      json_builder_set_member_name (b, "special");
      json_builder_add_boolean_value (b, added[i].special);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  // Qwen2 writes an NFC normalizer (an identity on this text)
  json_builder_set_member_name (b, "normalizer");
  if (regex == BpeRegex::Qwen2)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "NFC");
      json_builder_end_object (b);
    }
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "pre_tokenizer");
  if (regex == BpeRegex::Gpt2)
    {
      // GPT-2: ByteLevel with its built-in regex
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "ByteLevel");
      json_builder_set_member_name (b, "add_prefix_space");
      json_builder_add_boolean_value (b, FALSE);
      json_builder_set_member_name (b, "trim_offsets");
      json_builder_add_boolean_value (b, TRUE);
      json_builder_set_member_name (b, "use_regex");
      json_builder_add_boolean_value (b, TRUE);
      json_builder_end_object (b);
    }
  else
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "Sequence");
      json_builder_set_member_name (b, "pretokenizers");
      json_builder_begin_array (b);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "Split");
      json_builder_set_member_name (b, "pattern");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "Regex");
      json_builder_add_string_value (b, bpe_regex_pattern (regex));
      json_builder_end_object (b);
      json_builder_set_member_name (b, "behavior");
      json_builder_add_string_value (b, "Isolated");
      json_builder_set_member_name (b, "invert");
      json_builder_add_boolean_value (b, FALSE);
      json_builder_end_object (b);
      json_builder_add_value (b, byte_level_object ());
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_set_member_name (b, "post_processor");
  json_builder_add_value (b, byte_level_object ());
  json_builder_set_member_name (b, "decoder");
  json_builder_add_value (b, byte_level_object ());
  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "BPE");
  json_builder_set_member_name (b, "dropout");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "unk_token");
  json_builder_add_null_value (b);
  json_builder_set_member_name (b, "fuse_unk");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_set_member_name (b, "byte_fallback");
  json_builder_add_boolean_value (b, FALSE);
  json_builder_set_member_name (b, "ignore_merges");
  json_builder_add_boolean_value (b, regex == BpeRegex::Llama3);
  json_builder_set_member_name (b, "vocab");
  json_builder_begin_object (b);
  for (size_t i = 0; i + added.size () < vocab.size (); i++)
    {
      json_builder_set_member_name (b, vocab[i].c_str ());
      json_builder_add_int_value (b, (gint64)i);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "merges");
  json_builder_begin_array (b);
  for (const auto &m : merges)
    {
      json_builder_begin_array (b);
      json_builder_add_string_value (b, vocab[m.first].c_str ());
      json_builder_add_string_value (b, vocab[m.second].c_str ());
      json_builder_end_array (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  json_builder_end_object (b);
  JsonNode *root = json_builder_get_root (b);
  write_json (dir + "/tokenizer.json", root);
  json_node_unref (root);
  g_object_unref (b);

  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "tokenizer_class");
  json_builder_add_string_value (b, "PreTrainedTokenizerFast");
  json_builder_set_member_name (b, "add_bos_token");
  json_builder_add_boolean_value (b, add_bos);
  json_builder_set_member_name (b, "add_eos_token");
  json_builder_add_boolean_value (b, FALSE);
  const std::pair<const char *, const std::string *> specials[]
      = { { "bos_token", &bos }, { "eos_token", &eos }, { "pad_token", &pad } };
  for (const auto &s : specials)
    {
      json_builder_set_member_name (b, s.first);
      if (s.second->empty ())
        json_builder_add_null_value (b);
      else
        json_builder_add_string_value (b, s.second->c_str ());
    }
  json_builder_set_member_name (b, "model_max_length");
  json_builder_add_int_value (b, 512);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  write_json (dir + "/tokenizer_config.json", root);
  json_node_unref (root);
  g_object_unref (b);
}

std::string
bpe_calib_text (const std::string &jsonl_path)
{
  gchar *data = nullptr;
  gsize n = 0;
  if (!g_file_get_contents (jsonl_path.c_str (), &data, &n, nullptr))
    throw std::runtime_error ("cannot read " + jsonl_path);
  std::string text;
  gchar **lines = g_strsplit (data, "\n", -1);
  for (gchar **l = lines; *l != nullptr; l++)
    {
      if (**l == '\0')
        continue;
      JsonParser *parser = json_parser_new ();
      if (json_parser_load_from_data (parser, *l, -1, nullptr)
          && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        {
          JsonObject *o = json_node_get_object (json_parser_get_root (parser));
          if (json_object_has_member (o, "inputs_pretokenized"))
            text += std::string (json_object_get_string_member (o, "inputs_pretokenized")) + "\n\n";
        }
      g_object_unref (parser);
    }
  g_strfreev (lines);
  g_free (data);
  return text;
}

void
bpe_make_model (const std::string &source, const BpeTokenizer &tok, const std::string &dir)
{
  g_mkdir_with_parents (dir.c_str (), 0755);
  JsonNode *config = parse_file (source + "/config.json");
  JsonObject *o = json_node_get_object (config);
  auto id_of = [&] (const std::string &content) -> gint64 {
    for (size_t i = 0; i < tok.vocab.size (); i++)
      if (tok.vocab[i] == content)
        return (gint64)i;
    return -1;
  };
  if (!tok.bos.empty ())
    json_object_set_int_member (o, "bos_token_id", id_of (tok.bos));
  if (!tok.eos.empty ())
    json_object_set_int_member (o, "eos_token_id", id_of (tok.eos));
  write_json (dir + "/config.json", config);
  json_node_unref (config);
  // the weights are linked at test time, never copied
  ASSERT_EQ (
      symlink ((source + "/model.safetensors").c_str (), (dir + "/model.safetensors").c_str ()), 0);
  tok.write (dir);
}

BpeTokenizer
bpe_test_tokenizer (BpeRegex regex)
{
  BpeTokenizer tok = bpe_train (
      bpe_calib_text (slim_test_shared_path ("data/calib/mix_calib.jsonl")), regex, 512,
      { { "<|endoftext|>", true },
        { "<|im_start|>", true },
        { "<|im_end|>", true },
        { "<|pad|>", true },
        { "<tool>", false } });
  tok.bos = "<|endoftext|>";
  tok.eos = "<|im_end|>";
  tok.pad = "<|pad|>";
  return tok;
}

std::string
bpe_test_model (const BpeTokenizer &tok, const std::string &dir)
{
  bpe_make_model (slim_test_shared_path ("models/synthetic/tiny-random-qwen2"), tok, dir);
  return dir;
}

const char *const kBpeStressText
    = "It's 12345 o'clock; DON'T   stop!!\n\n\tTabs  and   spaces \n"
      "caf\xc3\xa9 na\xc3\xafve \xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c "
      "\xf0\x9f\x98\x80 x=y+1; // end.\r\n  ";

} // namespace slim_test
