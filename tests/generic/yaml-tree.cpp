// SPDX-License-Identifier: Apache-2.0
//
// yaml-tree.cpp: the Yaml node of yaml-tree.hpp and its block-style
// writer.  Mappings nest by two spaces, sequence items are "- " lines
// (a mapping item starts on the dash's line), empty ones are {} and [];
// quoted scalars escape '"' and '\'.
#include "yaml-tree.hpp"

#include <algorithm>

Yaml
Yaml::scalar (const std::string &text, bool quoted)
{
  Yaml y;
  y.kind = SCALAR;
  y.text = text;
  y.quoted = quoted;
  return y;
}

Yaml
Yaml::seq ()
{
  Yaml y;
  y.kind = SEQ;
  return y;
}

Yaml *
Yaml::find (const std::string &key)
{
  for (auto &item : items)
    if (item.first == key)
      return &item.second;
  return nullptr;
}

const Yaml *
Yaml::find (const std::string &key) const
{
  return const_cast<Yaml *> (this)->find (key);
}

void
Yaml::set (const std::string &key, Yaml value)
{
  if (Yaml *old = find (key))
    *old = std::move (value);
  else
    items.emplace_back (key, std::move (value));
}

Yaml *
Yaml::find_path (const std::vector<std::string> &keys)
{
  Yaml *node = this;
  for (const std::string &key : keys)
    if ((node = node->find (key)) == nullptr)
      return nullptr;
  return node;
}

Yaml
yaml_from_node (SlimConfigNode *node)
{
  switch (slim_config_node_get_kind (node))
    {
    case SLIM_CONFIG_NODE_MAPPING:
      {
        Yaml map;
        for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
          {
            std::string key = slim_config_node_get_scalar (slim_config_node_get_key (node, i));
            std::replace (key.begin (), key.end (), '_', '-');
            map.set (key, yaml_from_node (slim_config_node_get_item (node, i)));
          }
        return map;
      }
    case SLIM_CONFIG_NODE_SEQUENCE:
      {
        Yaml seq = Yaml::seq ();
        for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
          seq.list.push_back (yaml_from_node (slim_config_node_get_item (node, i)));
        return seq;
      }
    default:
      return Yaml::scalar (slim_config_node_get_scalar (node),
                           slim_config_node_get_scalar_style (node) == SLIM_CONFIG_SCALAR_QUOTED);
    }
}

std::string
YamlWriter::document (const Yaml &root)
{
  text_.clear ();
  target_line_ = target_column_ = 0;
  map_lines (root, 0, false);
  return text_;
}

void
YamlWriter::scalar (const Yaml &y)
{
  if (&y == target_)
    {
      size_t line_start = text_.rfind ('\n');
      line_start = line_start == std::string::npos ? 0 : line_start + 1;
      target_line_ = 1 + (int)std::count (text_.begin (), text_.end (), '\n');
      target_column_ = 1 + (int)(text_.size () - line_start);
    }
  if (!y.quoted)
    {
      text_ += y.text;
      return;
    }
  text_ += '"';
  for (char c : y.text)
    {
      if (c == '"' || c == '\\')
        text_ += '\\';
      text_ += c;
    }
  text_ += '"';
}

// The value after "key: " or "- ".
void
YamlWriter::after_key_or_dash (const Yaml &value, int indent)
{
  switch (value.kind)
    {
    case Yaml::SCALAR:
      scalar (value);
      text_ += '\n';
      break;
    case Yaml::MAP:
      if (value.items.empty ())
        text_ += "{}\n";
      else
        map_lines (value, indent, true);
      break;
    case Yaml::SEQ:
      if (value.list.empty ())
        text_ += "[]\n";
      else
        {
          text_ += '\n';
          seq_lines (value, indent);
        }
      break;
    }
}

void
YamlWriter::map_lines (const Yaml &map, int indent, bool first_inline)
{
  for (size_t i = 0; i < map.items.size (); i++)
    {
      const Yaml &value = map.items[i].second;
      if (i > 0 || !first_inline)
        text_.append (indent, ' ');
      text_ += map.items[i].first + ":";
      if (value.kind == Yaml::MAP && !value.items.empty ())
        {
          text_ += '\n';
          map_lines (value, indent + 2, false);
        }
      else if (value.kind == Yaml::SEQ && !value.list.empty ())
        {
          text_ += '\n';
          seq_lines (value, indent + 2);
        }
      else
        {
          text_ += ' ';
          after_key_or_dash (value, indent + 2);
        }
    }
}

void
YamlWriter::seq_lines (const Yaml &seq, int indent)
{
  for (const Yaml &item : seq.list)
    {
      text_.append (indent, ' ');
      text_ += "- ";
      after_key_or_dash (item, indent + 2);
    }
}
