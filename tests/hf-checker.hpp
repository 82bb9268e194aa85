// SPDX-License-Identifier: Apache-2.0
//
// hf-checker.hpp: validates a Hugging Face GPTQ or AWQ checkpoint folder
// against the layouts AutoGPTQ / GPTQModel and AutoAWQ's GEMM write and
// transformers' GPTQConfig / AwqConfig load, for the hf_gptq_saver and
// hf_awq_saver tests.  It reads only the folder and shares no code with
// the writer: its bit unpacking (and AWQ's slot order) is its own.
//
// Checked:
//   - config.json's quantization_config: GPTQ: bits 2 / 4 / 8, group_size
//     -1 or > 0, desc_act false (act-order g_idx is not supported here),
//     sym, lm_head (bools), quant_method "gptq", checkpoint_format "gptq"
//     or "gptq_v2", pack_dtype "int32", dynamic (optional) an object of
//     "-:<regex>" keys with {} values; quantize_config.json equal to it.
//     AWQ: quant_method "awq", zero_point true, bits 4, group_size > 0,
//     version "gemm", modules_to_not_convert null or a list of strings;
//   - the weight files (checker-folder.hpp), __metadata__ format "pt";
//   - every quantized module (one with .qweight) has exactly qweight,
//     qzeros, scales (+ g_idx for GPTQ) and an optional bias, with the
//     format's dtypes and shapes: GPTQ qweight int32 (in / pf, out),
//     qzeros int32 (G, out / pf), scales f16 / f32 (G, out), g_idx int32
//     (in) equal to c / group_size; AWQ qweight int32 (in, out / 8),
//     qzeros (G, out / 8), scales (G, out); scales finite and > 0; zeros
//     in range (gptq: stored z - 1 < 2^b - 1), equal to 2^(b-1) when sym;
//     no module skipped by dynamic / modules_to_not_convert;
//   - every float Linear of a decoder layer ("*.layers.<n>.*", a 2-D float
//     .weight) is skipped by a dynamic negative match (GPTQ, regex full
//     match) or a modules_to_not_convert entry (AWQ, substring, as
//     transformers matches them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct SlimTestHfReport
{
  std::vector<std::string> problems;
  std::string method;            // "gptq" or "awq"
  std::string checkpoint_format; // gptq, gptq_v2; "gemm" for AWQ
  int bits = 0;
  int64_t group_size = 0;
  bool sym = false;
  std::vector<std::string> quantized; // modules with qweight, name order
  std::vector<std::string> skipped;   // dynamic negative keys / modules_to_not_convert

  bool
  ok () const
  {
    return problems.empty ();
  }
  std::string summary () const;
  bool mentions (const std::string &fragment) const;
};

SlimTestHfReport slim_test_hf_check (const std::string &dir);

// The dequantized float32 weight (n_out * n_in, row-major) of a quantized
// module, (u - z) * scale in float32 (scales widened from float16 when so
// stored), as the GPTQ / AWQ reference dequantizers compute it; false with
// *why set when the module is missing or malformed.
bool slim_test_hf_dequantize (const std::string &dir,
                              const std::string &module,
                              std::vector<float> *w,
                              int64_t *n_out,
                              int64_t *n_in,
                              std::string *why);
