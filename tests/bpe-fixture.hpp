// SPDX-License-Identifier: Apache-2.0
//
// bpe-fixture.hpp: byte-level BPE tokenizers for the tests, made from
// text in shared/ (no fetched files).  A small deterministic trainer
// learns byte-level merges (GPT-2 byte map, words split by a GPT-2,
// Qwen2 or Llama 3 regex) up to an exact vocabulary size, and writes a
// Hugging Face tokenizer.json (model BPE, a Split + ByteLevel
// pre-tokenizer, ByteLevel decoder) and tokenizer_config.json.  An
// independent reference encoder (merges applied one rank at a time,
// naive O(n^2)) checks slimflow's tokenizer on the same words.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace slim_test
{

// The split regexes the trainer knows, as tokenizer.json writes them.
enum class BpeRegex
{
  Gpt2,   // GPT-2 (written as ByteLevel use_regex, no Split)
  Qwen2,  // Qwen2: single digits
  Llama3, // Llama 3: digits in runs of up to 3 (written with ignore_merges)
};

struct BpeAddedToken
{
  std::string content;
  bool special;
};

struct BpeTokenizer
{
  BpeRegex regex = BpeRegex::Qwen2;
  std::vector<std::string> vocab; // id -> token (byte-level characters; added tokens raw)
  std::vector<std::pair<int32_t, int32_t> > merges; // rank order
  std::vector<BpeAddedToken> added;                 // the last added.size () ids
  std::string bos, eos, pad;                        // empty: none
  bool add_bos = true;

  // The reference encoder: the ids of text (no added tokens in it),
  // without BOS/EOS.
  std::vector<int32_t> encode (const std::string &text) const;
  // tokenizer.json and tokenizer_config.json into dir.
  void write (const std::string &dir) const;
};

const char *bpe_regex_pattern (BpeRegex regex);

// Learns merges from text until the vocabulary (256 byte tokens, the
// merges' results, then the added tokens) has exactly vocab_size ids.
BpeTokenizer bpe_train (const std::string &text,
                        BpeRegex regex,
                        size_t vocab_size,
                        const std::vector<BpeAddedToken> &added);

// The "inputs_pretokenized" texts of a shared/data/calib/*.jsonl file,
// joined by blank lines.
std::string bpe_calib_text (const std::string &jsonl_path);

// A model folder in dir: config.json (bos/eos ids set to the
// tokenizer's), the weights of source linked (never copied), the
// tokenizer written by tok.
void bpe_make_model (const std::string &source, const BpeTokenizer &tok, const std::string &dir);

// The tests' tokenizer: trained on shared/data/calib/mix_calib.jsonl to
// tiny-random-qwen2's 512 rows: 256 bytes, 251 merges, 5 added tokens
// (<|endoftext|> 507 = BOS, <|im_start|>, <|im_end|> 509 = EOS,
// <|pad|> 510 = padding, all special; <tool> 511, not special).
BpeTokenizer bpe_test_tokenizer (BpeRegex regex);
// tiny-random-qwen2's weights with tok, in dir (returned).
std::string bpe_test_model (const BpeTokenizer &tok, const std::string &dir);

// Contractions (upper case too), digits, runs of spaces, blank lines,
// tabs, CR LF, accents, CJK and an emoji.
extern const char *const kBpeStressText;

} // namespace slim_test
