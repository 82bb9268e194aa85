// SPDX-License-Identifier: Apache-2.0
//
// ascendv1-checker.hpp: validates an ascendv1 output folder against
// modelslim-v1-spec.md 3.1, for the saver and end-to-end tests.
//
// Checked:
//   - quant_model_description.json: a JSON object written with 4-space
//     indentation; version "1.0.0"; model_quant_type, metadata (object),
//     group_size (integer >= 0), optional (object); every other key is a
//     tensor name mapped to a known label, and the keys equal the tensor
//     names of the weights (a bijection);
//   - weights: either quant_model_weights.safetensors alone, or the index
//     quant_model_weights.safetensors.index.json with shards named
//     quant_model_weights-0000i-of-0000N.safetensors: every shard exists and
//     holds exactly the tensors the weight_map assigns to it, total_size is
//     the sum of the tensor byte sizes, no stray weight files;
//   - per quantized module (tensors "<module>.<suffix>" with one label): the
//     exact suffix set, dtypes and shapes of the tensor table, bias as FLOAT
//     f32 [out]; with check_values: deq_scale decodes to a finite positive
//     float32, quant_bias equals round(bias/deq - input_offset * sum_k Wq),
//     per-channel weight_offset zeros where the format says so, W4A4 weights
//     in [-8, 7], W4A8 scale_bias recomputed from the unpacked weight;
//   - group_size consistent with per-group scale shapes;
//   - model_quant_type = highest-priority label (W4A8_DYNAMIC excluded;
//     the slimflow extension W4A16, int4 per-group weights saved like
//     W8A16 per-group, ranks between W8A16 and W8A8_DYNAMIC);
//   - config.json present, without quantization_config (also not in
//     text_config).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

struct SlimTestAscendv1Options
{
  // Exact model_quant_type to require; empty: derive it from the labels.
  std::string expected_model_quant_type;
  // The source model was bf16: deq_scale is then stored as f32.
  bool bf16_model = false;
  // Recompute derived values (quant_bias, scale_bias, ranges).
  bool check_values = true;
};

struct SlimTestAscendv1Report
{
  std::vector<std::string> problems;
  std::map<std::string, std::string> labels; // tensor name -> label
  std::string model_quant_type;
  int64_t group_size = 0;
  size_t n_shards = 0; // 0 for a single unsharded file

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

SlimTestAscendv1Report slim_test_ascendv1_check (const std::string &dir,
                                                 const SlimTestAscendv1Options &options = {});

// The same with default options: TRUE when the folder is valid; otherwise
// every problem found is stored in errors (one message each).
bool CheckAscendV1Folder (const std::string &path, std::vector<std::string> *errors);
