// SPDX-License-Identifier: Apache-2.0
//
// yaml-tree.hpp: a YAML node as the generic checks build configs (a
// mapping with keys in order, a sequence or a scalar), written out in
// block style by YamlWriter, which also notes where one chosen node starts
// so that a test can compare it with the FILE:LINE:COL of an error.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "slimflow.h"

struct Yaml
{
  enum Kind
  {
    SCALAR,
    MAP,
    SEQ
  };
  Kind kind = MAP;
  std::string text;                                 // SCALAR
  bool quoted = false;                              // SCALAR: written double-quoted
  std::vector<std::pair<std::string, Yaml> > items; // MAP
  std::vector<Yaml> list;                           // SEQ

  static Yaml scalar (const std::string &text, bool quoted = false);
  static Yaml seq ();
  Yaml *find (const std::string &key);
  const Yaml *find (const std::string &key) const;
  // Replaces the value of `key`, or appends it.
  void set (const std::string &key, Yaml value);
  // The node at a path of keys below this mapping, or nullptr.
  Yaml *find_path (const std::vector<std::string> &keys);
};

// A parsed config node as a Yaml tree, keys canonicalized ('_' -> '-').
Yaml yaml_from_node (SlimConfigNode *node);

class YamlWriter
{
public:
  // `target` (nullable): the node whose position to note.
  explicit YamlWriter (const Yaml *target = nullptr) : target_ (target)
  {
  }

  // `root` (a mapping) as a block-style document.
  std::string document (const Yaml &root);
  // Where `target` starts in the last document, 1-based like the loader's
  // locations; 0:0 when it was not written.
  int
  target_line () const
  {
    return target_line_;
  }
  int
  target_column () const
  {
    return target_column_;
  }

private:
  void scalar (const Yaml &y);
  void after_key_or_dash (const Yaml &value, int indent);
  void map_lines (const Yaml &map, int indent, bool first_inline);
  void seq_lines (const Yaml &seq, int indent);

  const Yaml *target_;
  int target_line_ = 0;
  int target_column_ = 0;
  std::string text_;
};
