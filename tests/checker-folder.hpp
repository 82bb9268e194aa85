// SPDX-License-Identifier: Apache-2.0
//
// checker-folder.hpp: what the output-folder checkers (ct-checker,
// hf-checker) share: the weight files of a Hugging Face folder
// (model.safetensors alone, or model.safetensors.index.json with shards
// model-0000i-of-0000N.safetensors, each holding exactly the tensors the
// weight_map gives it, total_size the sum of tensor bytes, no stray
// model*.safetensors) and typed JSON getters that return a default on a
// type mismatch (json-glib's own getters are criticals there, and a
// broken folder must only be a problem).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

extern "C"
{
#include "slim-safetensors.h"
}

#include <json-glib/json-glib.h>

namespace slim_checker
{

extern const char *const kSingleName;
extern const char *const kIndexName;

struct Info
{
  SlimDType dtype;
  std::vector<int64_t> shape;
};

std::string shape_str (const std::vector<int64_t> &s);
bool is_float_dtype (SlimDType d);
const char *get_str (JsonObject *obj, const char *key);
bool get_int (JsonObject *obj, const char *key, int64_t *out);
bool get_bool (JsonObject *obj, const char *key, bool *out);
const char *get_str_at (JsonArray *arr, guint i);
JsonObject *get_obj (JsonObject *obj, const char *key);

// The weight files of a folder.
class Folder
{
public:
  ~Folder ()
  {
    for (SlimSafetensors *r : readers_)
      g_object_unref (r);
  }

  // Opens the weights; problems go to *problems.
  void open (const std::string &dir, std::vector<std::string> *problems, size_t *n_shards);
  bool
  has (const std::string &name) const
  {
    return owner_.count (name) > 0;
  }
  bool info (const std::string &name, Info *out) const;
  // A private copy of a tensor (nullptr with *why set).
  SlimTensor *read (const std::string &name, std::string *why) const;
  const std::map<std::string, SlimSafetensors *> &
  tensors () const
  {
    return owner_;
  }

private:
  std::vector<SlimSafetensors *> readers_;
  std::map<std::string, SlimSafetensors *> owner_;
  SlimSafetensors *open_reader (const std::string &path, std::vector<std::string> *problems);
};

} // namespace slim_checker
