// SPDX-License-Identifier: Apache-2.0
//
// gguf-reader.hpp: an independent GGUF v3 reader for the tests (written
// from ggml's docs/gguf.md, sharing no code with the saver): the header,
// every metadata value, the tensor infos, and the data of each tensor.
// Parsing checks the layout rules llama.cpp's loader enforces: magic,
// version 3, known value and ggml types, names at most 63 bytes and
// unique, offsets aligned to general.alignment (default 32) and inside
// the file, the data section starting aligned.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace slim_test
{

struct GgufValue
{
  uint32_t type = 0;      // gguf_type; for arrays the element type is elem_type
  uint32_t elem_type = 0; // arrays only
  bool is_array = false;
  std::vector<uint64_t> u;    // unsigned integers and bools
  std::vector<int64_t> i;     // signed integers
  std::vector<double> f;      // floats
  std::vector<std::string> s; // strings
  size_t size () const;       // element count (1 for scalars)
};

struct GgufTensor
{
  std::string name;
  std::vector<uint64_t> ne; // innermost first
  uint32_t type = 0;        // ggml_type
  uint64_t offset = 0;      // from the data start
  uint64_t n_bytes = 0;     // from the type's block size
};

struct GgufFile
{
  uint32_t version = 0;
  std::vector<std::string> keys; // in file order
  std::map<std::string, GgufValue> kv;
  std::vector<GgufTensor> tensors;
  std::map<std::string, size_t> index; // name -> position in tensors
  uint64_t alignment = 32;
  uint64_t data_start = 0;
  std::vector<uint8_t> bytes; // the whole file

  const GgufTensor *find (const std::string &name) const;
  const uint8_t *data (const GgufTensor &t) const;
  // Tensor t as float32 values in file order (F32, F16, Q8_0, Q4_0, Q4_1,
  // Q4_K, Q6_K;
  // blocks decoded with the formulas of ggml-common.h, written here anew).
  std::vector<float> dequantize (const GgufTensor &t) const;
  uint64_t get_u (const std::string &key) const; // scalar unsigned / bool
  double get_f (const std::string &key) const;   // scalar float
  std::string get_s (const std::string &key) const;
};

// Parses path; on failure returns false with a message in *error.
bool gguf_read (const std::string &path, GgufFile *out, std::string *error);

const char *ggml_type_name (uint32_t type);

} // namespace slim_test
