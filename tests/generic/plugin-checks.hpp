// SPDX-License-Identifier: Apache-2.0
//
// plugin-checks.hpp: the checks the generic suite runs on every plugin
// (test-plugins.cpp), each given a registry and a plugin and returning its
// problems as text (empty = passed), so that they can also be run on
// fixture plugins made to fail:
//
//   check_schema      the generated schema equals the committed one
//   check_properties  every pspec, nested object ones included: canonical
//                     name, nick, blurb, flags, default inside its range
//   check_defaults    the config of only the required keys loads, validates
//                     and leaves the other properties at their defaults
//   check_bounds      every number at its limits and one step outside,
//                     every enum/flags nick and a bogus one
//   check_cli         `slimflow plugins NAME` and `--schema` show the plugin
//
// Configs are written as YAML text and go through the real loader: a
// modelslim_v1 pipeline holding the entry for processors and savers
// (slim_pipeline_new_from_data, then slim_pipeline_validate), the entry
// alone through slim_config_plugin_new() for runners and datasets.  Values
// for required keys come from MinimalConfig.  Only pspec and registry APIs
// are used, never how a plugin declares its properties.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "slimflow.h"
#include "yaml-tree.hpp"

using Problems = std::vector<std::string>;

// Minimal YAML per plugin, keyed by "<kind>/<name>" (PluginId::key): a
// mapping of the entry's own keys, without `type`.
using Snippets = std::map<std::string, std::string>;

struct PluginId
{
  SlimPluginKind kind;
  std::string name;

  std::string
  kind_text () const
  {
    return slim_plugin_kind_to_string (kind);
  }
  // "processor/linear_quant"
  std::string
  key () const
  {
    return kind_text () + "/" + name;
  }
};

inline void
PrintTo (const PluginId &id, std::ostream *os)
{
  *os << id.key ();
}

bool contains (const std::string &haystack, const std::string &needle);
std::string join (const std::vector<std::string> &parts, const std::string &separator);

// Makes the entry {type: NAME, required keys...} of a plugin: the keys of
// its snippet, then a value derived from the pspecs for every required key
// still missing, nested objects included.  Derived: the default of a
// boolean, number, enum, flags, string or string list (a string without a
// default cannot be derived); a mapping of an object's own required keys;
// for a plugin list, one entry of the first other plugin of that kind
// whose config can be derived.
class MinimalConfig
{
public:
  MinimalConfig (SlimRegistry *registry, const Snippets &snippets);

  // `problems` gets one line per required key no value was found for.
  Yaml entry (const PluginId &id, Problems *problems);
  // Adds the missing required keys of an object of `type` to `map` and
  // completes the nested objects it already holds.
  void fill_required (GType type, Yaml &map, const std::string &prefix, Problems *problems);

private:
  bool derive (GParamSpec *pspec, const std::string &path, Yaml *out, std::string *why);
  bool derive_plugin_list (SlimPluginKind kind, Yaml *out, std::string *why);

  SlimRegistry *registry_;
  Snippets snippets_;
  std::vector<GType> in_progress_; // plugins being derived (a list holding itself)
};

// `schema_dir` holds the committed <kind>-<name>.json files.
Problems check_schema (SlimRegistry *registry, const PluginId &id, const std::string &schema_dir);
Problems check_properties (SlimRegistry *registry, const PluginId &id);
Problems check_defaults (SlimRegistry *registry, const PluginId &id, const Snippets &snippets);

struct BoundsReport
{
  Problems problems;
  int n_configs = 0; // configs loaded
  // Values the loader accepted and the plugin's validate refused (allowed:
  // a cross-property reason), "'path' = value (what): first line".
  std::vector<std::string> refused_by_validate;
};

BoundsReport check_bounds (SlimRegistry *registry, const PluginId &id, const Snippets &snippets);

// Runs $SLIMFLOW_CLI; the registry must hold what the CLI scans.
Problems check_cli (SlimRegistry *registry, const PluginId &id);
