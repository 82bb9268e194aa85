// SPDX-License-Identifier: Apache-2.0
//
// bnb-checker.hpp: validates a bitsandbytes 4-bit NF4 output folder against
// what transformers + bitsandbytes load (BitsAndBytesConfig load_in_4bit,
// Params4bit / QuantState.from_dict), for the saver's end-to-end test.  It
// reads only the folder and shares no code with the writer: its code book,
// nibble unpacking and JSON reading are its own.
//
// Checked:
//   - config.json holds quantization_config with quant_method
//     "bitsandbytes", load_in_4bit and _load_in_4bit true, load_in_8bit
//     false, bnb_4bit_quant_type "nf4", bnb_4bit_use_double_quant false,
//     bnb_4bit_quant_storage "uint8", bnb_4bit_compute_dtype a float dtype
//     name, llm_int8_skip_modules a list of strings;
//   - weights: model.safetensors, or model.safetensors.index.json whose
//     weight_map names the shard of every tensor;
//   - every quantized module X (one with X.weight.quant_state.bitsandbytes__nf4)
//     has exactly X.weight uint8 (ceil (n / 2), 1), X.weight.absmax float32
//     (ceil (n / blocksize)) finite and >= 0, X.weight.quant_map float32
//     (16) equal to bitsandbytes' NF4 table, and the state a UTF-8 JSON
//     object with exactly quant_type "nf4", blocksize in 64..4096 (a power
//     of two), dtype a float dtype name, shape [out, in] (n = out * in);
//     no nested_* members (double quantization off);
//   - no quantized module is in llm_int8_skip_modules, and every skipped
//     name is a module of the folder (lm_head may be absent when it is
//     tied).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

struct SlimTestBnbReport
{
  std::vector<std::string> problems;
  std::set<std::string> quantized; // modules with an NF4 weight
  std::vector<std::string> skip;   // llm_int8_skip_modules

  bool
  ok () const
  {
    return problems.empty ();
  }
  std::string summary () const;
};

SlimTestBnbReport slim_test_bnb_check (const std::string &dir);

// The dequantized float32 weight (out * in, row-major) of a quantized
// module, quant_map[code] * absmax[i / blocksize] in float32 as
// bitsandbytes' dequantize_4bit computes it before casting to the state's
// dtype; false with *why set when the module is missing or malformed.
bool slim_test_bnb_dequantize (const std::string &dir,
                               const std::string &module,
                               std::vector<float> *w,
                               int64_t *n_out,
                               int64_t *n_in,
                               std::string *why);
