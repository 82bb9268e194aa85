// SPDX-License-Identifier: Apache-2.0
//
// checker-folder.cpp: see checker-folder.hpp.
#include "checker-folder.hpp"

#include <cstdio>
#include <cstring>
#include <set>

namespace slim_checker
{

const char *const kSingleName = "model.safetensors";
const char *const kIndexName = "model.safetensors.index.json";

std::string
shape_str (const std::vector<int64_t> &s)
{
  std::string out = "[";
  for (size_t i = 0; i < s.size (); i++)
    out += (i ? ", " : "") + std::to_string (s[i]);
  return out + "]";
}

bool
is_float_dtype (SlimDType d)
{
  return d == SLIM_DTYPE_F32 || d == SLIM_DTYPE_F16 || d == SLIM_DTYPE_BF16;
}

// Members of a given type, or a default: json-glib's getters are
// criticals on a type mismatch, and a broken folder must only be a problem.
const char *
get_str (JsonObject *obj, const char *key)
{
  JsonNode *n = obj != nullptr ? json_object_get_member (obj, key) : nullptr;
  return n != nullptr && JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
             ? json_node_get_string (n)
             : nullptr;
}

bool
get_int (JsonObject *obj, const char *key, int64_t *out)
{
  JsonNode *n = obj != nullptr ? json_object_get_member (obj, key) : nullptr;
  if (n == nullptr || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_INT64)
    return false;
  *out = json_node_get_int (n);
  return true;
}

bool
get_bool (JsonObject *obj, const char *key, bool *out)
{
  JsonNode *n = obj != nullptr ? json_object_get_member (obj, key) : nullptr;
  if (n == nullptr || !JSON_NODE_HOLDS_VALUE (n) || json_node_get_value_type (n) != G_TYPE_BOOLEAN)
    return false;
  *out = json_node_get_boolean (n);
  return true;
}

const char *
get_str_at (JsonArray *arr, guint i)
{
  JsonNode *n = json_array_get_element (arr, i);
  return JSON_NODE_HOLDS_VALUE (n) && json_node_get_value_type (n) == G_TYPE_STRING
             ? json_node_get_string (n)
             : nullptr;
}

JsonObject *
get_obj (JsonObject *obj, const char *key)
{
  JsonNode *n = obj != nullptr ? json_object_get_member (obj, key) : nullptr;
  return n != nullptr && JSON_NODE_HOLDS_OBJECT (n) ? json_node_get_object (n) : nullptr;
}

namespace
{

// "model-0000i-of-0000N.safetensors": N, or 0 when the name is not a shard's.
unsigned long
shard_count (const std::string &name)
{
  unsigned i = 0, n = 0;
  char tail[32] = "";
  if (name.size () != strlen ("model-00001-of-00001.safetensors")
      || sscanf (name.c_str (), "model-%5u-of-%5u%31s", &i, &n, tail) != 3
      || strcmp (tail, ".safetensors") != 0 || i < 1 || i > n)
    return 0;
  return n;
}

} // namespace

SlimSafetensors *
Folder::open_reader (const std::string &path, std::vector<std::string> *problems)
{
  GError *error = nullptr;
  SlimSafetensors *r = slim_safetensors_open (path.c_str (), &error);
  if (r == nullptr)
    {
      problems->push_back (path + ": " + error->message);
      g_clear_error (&error);
      return nullptr;
    }
  readers_.push_back (r);
  return r;
}

void
Folder::open (const std::string &dir, std::vector<std::string> *problems, size_t *n_shards)
{
  std::string single = dir + "/" + kSingleName;
  std::string index = dir + "/" + kIndexName;
  bool has_single = g_file_test (single.c_str (), G_FILE_TEST_IS_REGULAR);
  bool has_index = g_file_test (index.c_str (), G_FILE_TEST_IS_REGULAR);
  std::set<std::string> used;

  *n_shards = 0;
  if (has_single == has_index)
    {
      problems->push_back (std::string ("expected exactly one of ") + kSingleName + " and "
                           + kIndexName);
      if (!has_single)
        return;
    }
  if (has_single && !has_index)
    {
      SlimSafetensors *r = open_reader (single, problems);
      used.insert (kSingleName);
      if (r != nullptr)
        for (guint i = 0; i < slim_safetensors_get_n_tensors (r); i++)
          owner_[slim_safetensors_get_names (r)[i]] = r;
    }
  else
    {
      GError *error = nullptr;
      JsonParser *parser = json_parser_new ();
      if (!json_parser_load_from_file (parser, index.c_str (), &error))
        {
          problems->push_back (std::string (kIndexName) + ": " + error->message);
          g_clear_error (&error);
          g_object_unref (parser);
          return;
        }
      JsonNode *root = json_parser_get_root (parser);
      JsonObject *obj = JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : nullptr;
      JsonObject *map = get_obj (obj, "weight_map");
      if (map == nullptr)
        {
          problems->push_back (std::string (kIndexName) + ": no weight_map");
          g_object_unref (parser);
          return;
        }
      std::map<std::string, std::set<std::string> > by_file;
      GList *members = json_object_get_members (map);
      for (GList *l = members; l != nullptr; l = l->next)
        {
          const char *file = get_str (map, (const char *)l->data);
          if (file == nullptr)
            problems->push_back (std::string (kIndexName) + ": weight_map values must be strings");
          else
            by_file[file].insert ((const char *)l->data);
        }
      g_list_free (members);
      guint64 total = 0;
      for (const auto &kv : by_file)
        {
          if (shard_count (kv.first) != (unsigned long)by_file.size ())
            problems->push_back (kIndexName + std::string (": shard name ") + kv.first);
          used.insert (kv.first);
          SlimSafetensors *r = open_reader (dir + "/" + kv.first, problems);
          if (r == nullptr)
            continue;
          std::set<std::string> in_file;
          for (guint i = 0; i < slim_safetensors_get_n_tensors (r); i++)
            {
              in_file.insert (slim_safetensors_get_names (r)[i]);
              owner_[slim_safetensors_get_names (r)[i]] = r;
            }
          if (in_file != kv.second)
            problems->push_back (kv.first + ": tensors differ from the weight_map");
          total += slim_safetensors_get_total_bytes (r);
        }
      int64_t total_size = -1;
      if (!get_int (get_obj (obj, "metadata"), "total_size", &total_size)
          || (guint64)total_size != total)
        problems->push_back (std::string (kIndexName) + ": total_size is not "
                             + std::to_string (total));
      *n_shards = by_file.size ();
      g_object_unref (parser);
    }
  GDir *d = g_dir_open (dir.c_str (), 0, nullptr);
  const char *name;
  while (d != nullptr && (name = g_dir_read_name (d)) != nullptr)
    if (g_str_has_prefix (name, "model") && g_str_has_suffix (name, ".safetensors")
        && used.count (name) == 0)
      problems->push_back (std::string ("stray weight file ") + name);
  if (d != nullptr)
    g_dir_close (d);
}

bool
Folder::info (const std::string &name, Info *out) const
{
  auto it = owner_.find (name);
  if (it == owner_.end ())
    return false;
  guint n_dims = 0;
  gint64 shape[SLIM_TENSOR_MAX_DIMS];
  if (!slim_safetensors_get_info (it->second, name.c_str (), &out->dtype, &n_dims, shape))
    return false;
  out->shape.assign (shape, shape + n_dims);
  return true;
}

SlimTensor *
Folder::read (const std::string &name, std::string *why) const
{
  auto it = owner_.find (name);
  if (it == owner_.end ())
    {
      *why = name + ": missing tensor";
      return nullptr;
    }
  GError *error = nullptr;
  SlimTensor *view = slim_safetensors_get_tensor (it->second, name.c_str (), &error);
  if (view == nullptr)
    {
      *why = name + ": " + error->message;
      g_clear_error (&error);
      return nullptr;
    }
  SlimTensor *copy = slim_tensor_copy (view, nullptr);
  slim_tensor_unref (view);
  return copy;
}

} // namespace slim_checker
