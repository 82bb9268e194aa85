// SPDX-License-Identifier: Apache-2.0
//
// ct-checker.hpp: validates a compressed-tensors output folder against the
// layout vLLM loads (peers.md 1.5, peers-2026-12.md 5), for the saver and
// end-to-end tests.  It reads only the folder (it shares no code with the
// writer: its bit unpacking is its own).
//
// Checked:
//   - config.json holds quantization_config: quant_method
//     "compressed-tensors", quantization_status "compressed", a version
//     string, a known format equal to the groups' format (or
//     "mixed-precision" when they differ), config_groups a non-empty object
//     of {targets (non-empty strings), weights (QuantizationArgs),
//     input_activations (args or null), output_activations null, format},
//     ignore a list of strings, kv_cache_scheme null;
//   - QuantizationArgs: num_bits 1..8, type "int" or "float" (fp8 e4m3:
//     8 bits, symmetric, no group strategy), symmetric, strategy
//     tensor / channel / group (group_size > 0 exactly for group) for
//     weights, tensor (static) or token (dynamic) for activations, zp_dtype
//     set exactly when asymmetric; int-quantized groups have int8 weights
//     and int8 activations, pack-quantized groups are int weight-only,
//     float-quantized groups have fp8 weights and fp8 activations,
//     naive-quantized groups are fp8 weight-only;
//   - weights: model.safetensors alone, or model.safetensors.index.json
//     with shards model-0000i-of-0000N.safetensors, each holding exactly
//     the tensors the weight_map gives it, total_size the sum of tensor
//     bytes, no stray model*.safetensors;
//   - every quantized module (one with weight_scale or weight_packed)
//     matches exactly one group (a target equal to its name, "re:" regex,
//     or "Linear") and no ignore entry, and has exactly the format's
//     tensors with their dtypes and shapes: int-quantized weight int8
//     (out, in), float- / naive-quantized weight float8_e4m3fn (out, in)
//     without NaN codes (decoded by the checker's own e4m3fn table),
//     pack-quantized weight_packed int32 (out, ceil (in b / 32))
//     with zero padding bits and weight_shape int64 [out, in]; weight_scale
//     float (out, 1) / (out, in / gs) / (1), finite and > 0;
//     weight_zero_point only when asymmetric (int8 of the scale's shape, or
//     packed int32 (ceil (out b / 32), groups) for pack-quantized channel /
//     group), values in range; input_scale (1) and input_zero_point (1) int8
//     exactly for static (asymmetric) activations; bias (out) optional;
//   - every Linear (a module with a 2-D float .weight, embeddings aside)
//     is quantized or matches an ignore entry, and no group targets it by
//     name; ignore entries name modules of the folder (lm_head may be
//     absent when tie_word_embeddings is true).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

struct SlimTestCtReport
{
  std::vector<std::string> problems;
  std::map<std::string, std::string> formats; // quantized module -> its group's format
  std::map<std::string, std::string> groups;  // quantized module -> group name
  std::vector<std::string> ignore;            // quantization_config.ignore
  std::string format;                         // the root format
  size_t n_shards = 0;                        // 0 for a single unsharded file

  bool
  ok () const
  {
    return problems.empty ();
  }
  // All problems, one per line (for test failure messages).
  std::string summary () const;
  // Whether some problem contains `fragment`.
  bool mentions (const std::string &fragment) const;
};

SlimTestCtReport slim_test_ct_check (const std::string &dir);

// The dequantized float32 weight (n_out * n_in, row-major) of a quantized
// module of a folder, (q - zero_point) * scale in float32 as
// compressed-tensors dequantizes (fp8: float (code) * scale); false with *why set when the module
// is missing or malformed.
bool slim_test_ct_dequantize (const std::string &dir,
                              const std::string &module,
                              std::vector<float> *w,
                              int64_t *n_out,
                              int64_t *n_in,
                              std::string *why);
