// SPDX-License-Identifier: Apache-2.0
//
// plugin-checks.cpp: the generic checks of plugin-checks.hpp and the
// derivation of minimal configs from the pspecs.
#include "plugin-checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "slim-test.h"

namespace
{

// Object-typed properties are followed this deep (the CLI's limit too).
constexpr int kMaxObjectDepth = 8;

struct ObjectDeleter
{
  void
  operator() (gpointer o) const
  {
    g_object_unref (o);
  }
};
using ObjectPtr = std::unique_ptr<GObject, ObjectDeleter>;

struct ConfigNodeDeleter
{
  void
  operator() (SlimConfigNode *n) const
  {
    slim_config_node_unref (n);
  }
};
using ConfigNodePtr = std::unique_ptr<SlimConfigNode, ConfigNodeDeleter>;

struct PtrArrayDeleter
{
  void
  operator() (GPtrArray *a) const
  {
    g_ptr_array_unref (a);
  }
};
using PtrArrayPtr = std::unique_ptr<GPtrArray, PtrArrayDeleter>;

std::string
take_string (char *s)
{
  std::string out = s != nullptr ? s : "";
  g_free (s);
  return out;
}

std::string
error_text (GError *error)
{
  return error != nullptr ? error->message : "(no error set)";
}

} // namespace

bool
contains (const std::string &haystack, const std::string &needle)
{
  return haystack.find (needle) != std::string::npos;
}

std::string
join (const std::vector<std::string> &parts, const std::string &separator)
{
  std::string out;
  for (size_t i = 0; i < parts.size (); i++)
    out += (i > 0 ? separator : "") + parts[i];
  return out;
}

namespace
{

// ---- walking the properties ------------------------------------------------

struct Prop
{
  std::string path; // "qconfig.weight.ext.group-size"
  std::vector<std::string> parts;
  GParamSpec *pspec;
  int depth; // 0 for the plugin's own properties
};

bool
is_object_pspec (GParamSpec *pspec)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  return g_type_is_a (type, G_TYPE_OBJECT) && !G_TYPE_IS_ABSTRACT (type);
}

std::vector<GParamSpec *>
sorted_pspecs (GType type)
{
  std::vector<GParamSpec *> out;
  auto *klass = static_cast<GObjectClass *> (g_type_class_ref (type));
  guint n = 0;
  GParamSpec **pspecs = g_object_class_list_properties (klass, &n);
  out.assign (pspecs, pspecs + n);
  g_free (pspecs);
  // Plugin types are static: their class, and so the pspecs, stay.
  g_type_class_unref (klass);
  std::sort (out.begin (), out.end (),
             [] (GParamSpec *a, GParamSpec *b) { return strcmp (a->name, b->name) < 0; });
  return out;
}

// Every property of `type`, depth first, following writable object-typed
// properties the way `slimflow plugins NAME` shows them (sorted by name, a
// type that contains itself is not entered again).
void
walk_properties (GType type,
                 const std::vector<std::string> &prefix,
                 int depth,
                 std::vector<GType> &chain,
                 std::vector<Prop> &out)
{
  chain.push_back (type);
  for (GParamSpec *pspec : sorted_pspecs (type))
    {
      std::vector<std::string> parts = prefix;
      parts.push_back (pspec->name);
      out.push_back ({ join (parts, "."), parts, pspec, depth });
      GType value_type = G_PARAM_SPEC_VALUE_TYPE (pspec);
      if ((pspec->flags & G_PARAM_WRITABLE) && is_object_pspec (pspec)
          && std::find (chain.begin (), chain.end (), value_type) == chain.end ()
          && depth + 1 < kMaxObjectDepth)
        walk_properties (value_type, parts, depth + 1, chain, out);
    }
  chain.pop_back ();
}

std::vector<Prop>
all_properties (GType type)
{
  std::vector<Prop> out;
  std::vector<GType> chain;
  walk_properties (type, {}, 0, chain, out);
  return out;
}

GParamSpec *
find_pspec (GType type, const std::string &name)
{
  for (GParamSpec *pspec : sorted_pspecs (type))
    if (name == pspec->name)
      return pspec;
  return nullptr;
}

// ---- numbers as YAML text --------------------------------------------------

std::string
int128_text (__int128 v)
{
  if (v == 0)
    return "0";
  bool negative = v < 0;
  unsigned __int128 u = negative ? -(unsigned __int128)v : (unsigned __int128)v;
  std::string digits;
  while (u > 0)
    {
      digits.insert (digits.begin (), (char)('0' + (int)(u % 10)));
      u /= 10;
    }
  return (negative ? "-" : "") + digits;
}

// Shortest text that reads back as exactly `v`; a number beyond the finite
// doubles as 1e309 (the loader reads it as infinity and refuses it).
std::string
double_text (double v)
{
  if (std::isinf (v))
    return v > 0 ? "1e309" : "-1e309";
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  for (int digits = 1; digits <= 17; digits++)
    {
      g_ascii_formatd (buf, sizeof (buf), ("%." + std::to_string (digits) + "g").c_str (), v);
      if (g_ascii_strtod (buf, nullptr) == v)
        break;
    }
  return buf;
}

struct IntRange
{
  __int128 min, max;
};

bool
int_range (GParamSpec *p, IntRange *r)
{
  if (G_IS_PARAM_SPEC_INT (p))
    *r = { G_PARAM_SPEC_INT (p)->minimum, G_PARAM_SPEC_INT (p)->maximum };
  else if (G_IS_PARAM_SPEC_UINT (p))
    *r = { G_PARAM_SPEC_UINT (p)->minimum, G_PARAM_SPEC_UINT (p)->maximum };
  else if (G_IS_PARAM_SPEC_LONG (p))
    *r = { G_PARAM_SPEC_LONG (p)->minimum, G_PARAM_SPEC_LONG (p)->maximum };
  else if (G_IS_PARAM_SPEC_ULONG (p))
    *r = { G_PARAM_SPEC_ULONG (p)->minimum, G_PARAM_SPEC_ULONG (p)->maximum };
  else if (G_IS_PARAM_SPEC_INT64 (p))
    *r = { G_PARAM_SPEC_INT64 (p)->minimum, G_PARAM_SPEC_INT64 (p)->maximum };
  else if (G_IS_PARAM_SPEC_UINT64 (p))
    *r = { G_PARAM_SPEC_UINT64 (p)->minimum, G_PARAM_SPEC_UINT64 (p)->maximum };
  else
    return false;
  return true;
}

bool
float_range (GParamSpec *p, double *min, double *max)
{
  if (G_IS_PARAM_SPEC_DOUBLE (p))
    {
      *min = G_PARAM_SPEC_DOUBLE (p)->minimum;
      *max = G_PARAM_SPEC_DOUBLE (p)->maximum;
    }
  else if (G_IS_PARAM_SPEC_FLOAT (p))
    {
      *min = G_PARAM_SPEC_FLOAT (p)->minimum;
      *max = G_PARAM_SPEC_FLOAT (p)->maximum;
    }
  else
    return false;
  return true;
}

// A value of a boolean, number, string, enum or flags pspec as YAML.
bool
value_as_yaml (GParamSpec *pspec, const GValue *value, Yaml *out)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  if (type == G_TYPE_BOOLEAN)
    *out = Yaml::scalar (g_value_get_boolean (value) ? "true" : "false");
  else if (type == G_TYPE_INT)
    *out = Yaml::scalar (int128_text (g_value_get_int (value)));
  else if (type == G_TYPE_UINT)
    *out = Yaml::scalar (int128_text (g_value_get_uint (value)));
  else if (type == G_TYPE_LONG)
    *out = Yaml::scalar (int128_text (g_value_get_long (value)));
  else if (type == G_TYPE_ULONG)
    *out = Yaml::scalar (int128_text (g_value_get_ulong (value)));
  else if (type == G_TYPE_INT64)
    *out = Yaml::scalar (int128_text (g_value_get_int64 (value)));
  else if (type == G_TYPE_UINT64)
    *out = Yaml::scalar (int128_text (g_value_get_uint64 (value)));
  else if (type == G_TYPE_DOUBLE)
    *out = Yaml::scalar (double_text (g_value_get_double (value)));
  else if (type == G_TYPE_FLOAT)
    *out = Yaml::scalar (double_text (g_value_get_float (value)));
  else if (G_TYPE_IS_ENUM (type))
    {
      GEnumValue *ev
          = g_enum_get_value (G_PARAM_SPEC_ENUM (pspec)->enum_class, g_value_get_enum (value));
      if (ev == nullptr)
        return false;
      *out = Yaml::scalar (ev->value_nick);
    }
  else if (G_TYPE_IS_FLAGS (type))
    {
      GFlagsClass *klass = G_PARAM_SPEC_FLAGS (pspec)->flags_class;
      guint bits = g_value_get_flags (value);
      *out = Yaml::seq ();
      for (guint i = 0; i < klass->n_values; i++)
        if (klass->values[i].value != 0
            && (bits & klass->values[i].value) == klass->values[i].value)
          out->list.push_back (Yaml::scalar (klass->values[i].value_nick));
    }
  else if (type == G_TYPE_STRING)
    {
      if (g_value_get_string (value) == nullptr)
        return false;
      *out = Yaml::scalar (g_value_get_string (value), true);
    }
  else if (type == G_TYPE_STRV)
    {
      auto *strv = static_cast<char **> (g_value_get_boxed (value));
      if (strv == nullptr)
        return false;
      *out = Yaml::seq ();
      for (char **s = strv; *s != nullptr; s++)
        out->list.push_back (Yaml::scalar (*s, true));
    }
  else
    return false;
  return true;
}

} // namespace

// ---- minimal configs -------------------------------------------------------

MinimalConfig::MinimalConfig (SlimRegistry *registry, const Snippets &snippets)
    : registry_ (registry), snippets_ (snippets)
{
}

Yaml
MinimalConfig::entry (const PluginId &id, Problems *problems)
{
  Yaml map;
  map.set ("type", Yaml::scalar (id.name));
  GType type = slim_registry_lookup (registry_, id.kind, id.name.c_str (), nullptr);
  if (type == G_TYPE_INVALID)
    {
      problems->push_back ("no " + id.key () + " in the registry");
      return map;
    }
  auto snippet = snippets_.find (id.key ());
  if (snippet != snippets_.end ())
    {
      GError *error = nullptr;
      std::string file = "kMinimalConfigs[" + id.key () + "]";
      ConfigNodePtr root (slim_config_parse_data (snippet->second.data (), snippet->second.size (),
                                                  file.c_str (), &error));
      if (root == nullptr || slim_config_node_get_kind (root.get ()) != SLIM_CONFIG_NODE_MAPPING)
        problems->push_back (file + " must be a YAML mapping: "
                             + (root == nullptr ? error_text (error) : "it is not"));
      else
        for (auto &item : yaml_from_node (root.get ()).items)
          if (item.first != "type")
            map.set (item.first, item.second);
      g_clear_error (&error);
    }
  in_progress_.push_back (type);
  fill_required (type, map, "", problems);
  in_progress_.pop_back ();
  return map;
}

void
MinimalConfig::fill_required (GType type, Yaml &map, const std::string &prefix, Problems *problems)
{
  for (GParamSpec *pspec : sorted_pspecs (type))
    {
      if (!(pspec->flags & G_PARAM_WRITABLE))
        continue;
      std::string path = prefix + pspec->name;
      Yaml *given = map.find (pspec->name);
      if (given != nullptr)
        {
          if (is_object_pspec (pspec) && given->kind == Yaml::MAP)
            fill_required (G_PARAM_SPEC_VALUE_TYPE (pspec), *given, path + ".", problems);
          continue;
        }
      if (!(slim_param_spec_get_flags (pspec) & SLIM_PARAM_REQUIRED))
        continue;
      Yaml value;
      std::string why;
      if (derive (pspec, path, &value, &why))
        map.set (pspec->name, value);
      else
        problems->push_back ("required key '" + path + "' (" + g_type_name (pspec->value_type)
                             + "): " + why);
    }
}

bool
MinimalConfig::derive (GParamSpec *pspec, const std::string &path, Yaml *out, std::string *why)
{
  GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  SlimPluginKind kind;

  if (slim_param_spec_get_plugin_kind (pspec, &kind))
    return derive_plugin_list (kind, out, why);
  if (is_object_pspec (pspec))
    {
      Problems nested;
      *out = Yaml ();
      fill_required (type, *out, path + ".", &nested);
      *why = join (nested, "; ");
      return nested.empty ();
    }
  if (!value_as_yaml (pspec, g_param_spec_get_default_value (pspec), out))
    {
      *why = G_TYPE_IS_ENUM (type) ? "its default is not a value of the enum"
                                   : "no default to derive a value from";
      return false;
    }
  if (out->kind == Yaml::SEQ && out->list.empty ()
      && (slim_param_spec_get_flags (pspec) & SLIM_PARAM_NON_EMPTY))
    {
      if (!G_TYPE_IS_FLAGS (type))
        {
          *why = "its default is an empty list but it must not be empty";
          return false;
        }
      GFlagsClass *klass = G_PARAM_SPEC_FLAGS (pspec)->flags_class;
      out->list.push_back (Yaml::scalar (klass->values[0].value_nick));
    }
  return true;
}

// One entry: the first plugin of `kind` (by name) whose own minimal
// config can be derived, other than the plugins being derived already.
bool
MinimalConfig::derive_plugin_list (SlimPluginKind kind, Yaml *out, std::string *why)
{
  PtrArrayPtr descs (slim_registry_list (registry_, kind));
  std::vector<std::string> tried;
  for (guint i = 0; i < descs->len; i++)
    {
      auto *desc = static_cast<const SlimPluginDesc *> (g_ptr_array_index (descs.get (), i));
      GType child = slim_registry_lookup (registry_, kind, desc->name, nullptr);
      if (std::find (in_progress_.begin (), in_progress_.end (), child) != in_progress_.end ())
        continue;
      Problems child_problems;
      Yaml entry = this->entry ({ kind, desc->name }, &child_problems);
      if (child_problems.empty ())
        {
          *out = Yaml::seq ();
          out->list.push_back (entry);
          return true;
        }
      tried.push_back (desc->name);
    }
  *why = std::string ("no ") + slim_plugin_kind_to_string (kind)
         + " plugin with a derivable config to put in the list (tried: "
         + (tried.empty () ? "none" : join (tried, ", ")) + ")";
  return false;
}

namespace
{

// The whole file the loader reads for `entry`: a pipeline for processors
// and savers, the entry itself for runners and datasets.
Yaml
document_for (SlimPluginKind kind, const Yaml &entry)
{
  if (kind != SLIM_PLUGIN_KIND_PROCESSOR && kind != SLIM_PLUGIN_KIND_SAVER)
    return entry;
  Yaml list = Yaml::seq ();
  list.list.push_back (entry);
  Yaml spec;
  spec.set (kind == SLIM_PLUGIN_KIND_PROCESSOR ? "process" : "save", list);
  Yaml root;
  root.set ("apiversion", Yaml::scalar ("modelslim_v1"));
  root.set ("spec", spec);
  return root;
}

Yaml &
entry_in (SlimPluginKind kind, Yaml &document)
{
  if (kind != SLIM_PLUGIN_KIND_PROCESSOR && kind != SLIM_PLUGIN_KIND_SAVER)
    return document;
  return document.find ("spec")->items[0].second.list[0];
}

std::string
file_name_for (const PluginId &id)
{
  return "generic-" + id.kind_text () + "-" + id.name + ".yaml";
}

// What the real loader made of a config.
struct Outcome
{
  bool built = false;
  bool valid = false;
  std::string message; // the error when !built or !valid
  ObjectPtr object;    // the plugin, when built
};

Outcome
load (SlimRegistry *registry, SlimPluginKind kind, const std::string &yaml, const std::string &file)
{
  Outcome outcome;
  GError *error = nullptr;
  if (kind == SLIM_PLUGIN_KIND_PROCESSOR || kind == SLIM_PLUGIN_KIND_SAVER)
    {
      SlimPipeline *pipeline = slim_pipeline_new_from_data (registry, yaml.data (), yaml.size (),
                                                            file.c_str (), &error);
      if (pipeline == nullptr)
        {
          outcome.message = error_text (error);
          g_clear_error (&error);
          return outcome;
        }
      outcome.built = true;
      GPtrArray *objects = kind == SLIM_PLUGIN_KIND_PROCESSOR
                               ? slim_pipeline_get_processors (pipeline)
                               : slim_pipeline_get_savers (pipeline);
      if (objects->len == 1)
        outcome.object.reset (G_OBJECT (g_object_ref (g_ptr_array_index (objects, 0))));
      outcome.valid = slim_pipeline_validate (pipeline, &error);
      if (!outcome.valid)
        outcome.message = error_text (error);
      g_clear_error (&error);
      g_object_unref (pipeline);
      return outcome;
    }
  ConfigNodePtr root (slim_config_parse_data (yaml.data (), yaml.size (), file.c_str (), &error));
  if (root == nullptr)
    {
      outcome.message = error_text (error);
      g_clear_error (&error);
      return outcome;
    }
  PtrArrayPtr errors (slim_config_errors_new ());
  outcome.object.reset (
      slim_config_plugin_new (registry, kind, root.get (), nullptr, errors.get ()));
  if (!slim_config_errors_propagate (errors.get (), &error))
    {
      outcome.message = error_text (error);
      g_clear_error (&error);
      outcome.object.reset ();
      return outcome;
    }
  outcome.built = outcome.valid = outcome.object != nullptr;
  return outcome;
}

// TRUE when every line of `message` starts with "FILE:LINE:COL: ", except
// the indented lines that continue one (a list of legal combinations, ...).
bool
every_line_located (const std::string &message, const std::string &file)
{
  std::istringstream lines (message);
  std::string line;
  bool any = false;
  while (std::getline (lines, line))
    {
      if (any && !line.empty () && g_ascii_isspace (line[0]))
        continue;
      any = true;
      if (line.compare (0, file.size () + 1, file + ":") != 0)
        return false;
      size_t p = file.size () + 1;
      for (int field = 0; field < 2; field++)
        {
          size_t digits = p;
          while (p < line.size () && g_ascii_isdigit (line[p]))
            p++;
          if (p == digits || p >= line.size () || line[p] != ':')
            return false;
          p++;
        }
    }
  return any;
}

std::string
snippet_hint (const PluginId &id)
{
  return "if a required key needs a particular value, add a minimal YAML snippet for \"" + id.key ()
         + "\" to kMinimalConfigs in tests/generic/test-plugins.cpp";
}

// ---- the checks ------------------------------------------------------------

std::string
read_text (const std::string &path, bool *found)
{
  char *data = nullptr;
  gsize n = 0;
  *found = g_file_get_contents (path.c_str (), &data, &n, nullptr);
  std::string text = *found ? std::string (data, n) : std::string ();
  g_free (data);
  return text;
}

} // namespace

Problems
check_schema (SlimRegistry *registry, const PluginId &id, const std::string &schema_dir)
{
  Problems problems;
  GError *error = nullptr;
  char *generated = slim_schema_generate_plugin (registry, id.kind, id.name.c_str (), &error);
  if (generated == nullptr)
    {
      problems.push_back ("the schema cannot be generated: " + error_text (error));
      g_clear_error (&error);
      return problems;
    }
  std::string fresh = take_string (generated);
  std::string file = id.kind_text () + "-" + id.name + ".json";
  bool found = false;
  std::string committed = read_text (schema_dir + "/" + file, &found);
  std::string regenerate = "; regenerate with:\n  SLIMFLOW_PLUGIN_PATH=" + slim_test_build_dir ()
                           + "/plugins SLIMFLOW_PLUGIN_SYSTEM_PATH= " + slim_test_build_dir ()
                           + "/framework/tools/slimflow plugins --schema --output " + schema_dir
                           + "\n(see schemas/README.md)";
  if (!found)
    problems.push_back (schema_dir + "/" + file + " is missing" + regenerate);
  else if (committed != fresh)
    {
      size_t at = 0;
      while (at < committed.size () && at < fresh.size () && committed[at] == fresh[at])
        at++;
      int line = 1 + (int)std::count (fresh.begin (), fresh.begin () + at, '\n');
      problems.push_back (schema_dir + "/" + file + " differs from the generated schema from line "
                          + std::to_string (line) + regenerate);
    }
  return problems;
}

namespace
{

bool
is_canonical_name (const char *name)
{
  // [a-z][a-z0-9]*(-[a-z0-9]+)*
  if (!g_ascii_islower (name[0]))
    return false;
  for (const char *p = name; *p != '\0'; p++)
    {
      if (*p == '-')
        {
          if (p[1] == '\0' || p[1] == '-')
            return false;
        }
      else if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p))
        return false;
    }
  return true;
}

std::string
flags_text (GParamFlags flags)
{
  std::vector<std::string> names;
  if (flags & G_PARAM_READABLE)
    names.push_back ("READABLE");
  if (flags & G_PARAM_WRITABLE)
    names.push_back ("WRITABLE");
  if (flags & G_PARAM_CONSTRUCT)
    names.push_back ("CONSTRUCT");
  if (flags & G_PARAM_CONSTRUCT_ONLY)
    names.push_back ("CONSTRUCT_ONLY");
  if ((flags & G_PARAM_STATIC_STRINGS) == G_PARAM_STATIC_STRINGS)
    names.push_back ("STATIC_STRINGS");
  return names.empty () ? "0" : join (names, " | ");
}

} // namespace

Problems
check_properties (SlimRegistry *registry, const PluginId &id)
{
  Problems problems;
  const SlimPluginDesc *desc = slim_registry_get_desc (registry, id.kind, id.name.c_str ());
  if (desc == nullptr)
    return { "no " + id.key () + " in the registry" };
  if (desc->description == nullptr || desc->description[0] == '\0')
    problems.push_back ("the plugin has no description");
  GType type = slim_registry_lookup (registry, id.kind, id.name.c_str (), nullptr);
  const GParamFlags wanted
      = (GParamFlags)(G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  for (const Prop &prop : all_properties (type))
    {
      GParamSpec *pspec = prop.pspec;
      std::string where = "property '" + prop.path + "'";
      if (!is_canonical_name (pspec->name))
        problems.push_back (where + ": the name is not lower case with '-' between words");
      const char *nick = g_param_spec_get_nick (pspec);
      // GLib returns the name itself when no nick was given.
      if (nick == nullptr || nick[0] == '\0' || nick == pspec->name)
        problems.push_back (where + ": no nick (a short title)");
      const char *blurb = g_param_spec_get_blurb (pspec);
      if (blurb == nullptr || blurb[0] == '\0')
        problems.push_back (where + ": no blurb (the description users read)");
      if ((pspec->flags & wanted) != wanted)
        problems.push_back (where + ": flags are " + flags_text (pspec->flags) + ", want "
                            + flags_text (wanted));
      GValue value = G_VALUE_INIT;
      g_value_init (&value, G_PARAM_SPEC_VALUE_TYPE (pspec));
      g_value_copy (g_param_spec_get_default_value (pspec), &value);
      if (g_param_value_validate (pspec, &value))
        problems.push_back (where + ": the default is outside the property's range");
      else if (!g_param_value_defaults (pspec, &value))
        problems.push_back (where + ": the default does not compare equal to itself");
      g_value_unset (&value);
    }
  return problems;
}

namespace
{

// The readable properties `entry` leaves out hold their pspec defaults.
Problems
check_unset_properties_read_back (GObject *object, const Yaml &entry)
{
  Problems problems;
  for (GParamSpec *pspec : sorted_pspecs (G_OBJECT_TYPE (object)))
    {
      GType type = G_PARAM_SPEC_VALUE_TYPE (pspec);
      static const GType plain_types[]
          = { G_TYPE_BOOLEAN, G_TYPE_INT,    G_TYPE_UINT,   G_TYPE_LONG,
              G_TYPE_ULONG,   G_TYPE_INT64,  G_TYPE_UINT64, G_TYPE_FLOAT,
              G_TYPE_DOUBLE,  G_TYPE_STRING, G_TYPE_ENUM,   G_TYPE_FLAGS };
      bool plain
          = std::find (std::begin (plain_types), std::end (plain_types), G_TYPE_FUNDAMENTAL (type))
            != std::end (plain_types);
      if (!(pspec->flags & G_PARAM_READABLE) || !plain || entry.find (pspec->name) != nullptr)
        continue;
      GValue got = G_VALUE_INIT;
      g_value_init (&got, type);
      g_object_get_property (object, pspec->name, &got);
      if (g_param_values_cmp (pspec, &got, g_param_spec_get_default_value (pspec)) != 0)
        {
          std::string got_text = take_string (g_strdup_value_contents (&got));
          std::string want_text
              = take_string (g_strdup_value_contents (g_param_spec_get_default_value (pspec)));
          problems.push_back ("property '" + std::string (pspec->name) + "' reads back as "
                              + got_text + ", but its default is " + want_text);
        }
      g_value_unset (&got);
    }
  return problems;
}

} // namespace

Problems
check_defaults (SlimRegistry *registry, const PluginId &id, const Snippets &snippets)
{
  Problems derive_problems;
  MinimalConfig minimal (registry, snippets);
  Yaml entry = minimal.entry (id, &derive_problems);
  if (!derive_problems.empty ())
    return { "cannot make a minimal config of " + id.key () + ":\n  "
             + join (derive_problems, "\n  ") + "\nadd a minimal YAML snippet for \"" + id.key ()
             + "\" to kMinimalConfigs in tests/generic/test-plugins.cpp" };
  Yaml document = document_for (id.kind, entry);
  std::string yaml = YamlWriter ().document (document);
  Outcome outcome = load (registry, id.kind, yaml, file_name_for (id));
  if (!outcome.built || !outcome.valid)
    return { std::string ("the minimal config is ")
             + (outcome.built ? "refused by validate" : "rejected") + ":\n" + outcome.message
             + "\n--- config:\n" + yaml + "---\n" + snippet_hint (id) };
  if (outcome.object == nullptr)
    return { "the loader returned no " + id.kind_text () + " object" };
  return check_unset_properties_read_back (outcome.object.get (), entry);
}

namespace
{

// One value tried for one property.
struct Trial
{
  Yaml value;                      // what the property is set to
  std::string what;                // "the minimum 0", ...
  bool accept;                     // accepted, or rejected while building
  std::vector<std::string> listed; // rejected: the message lists these
};

std::vector<Trial>
trials_for (GParamSpec *pspec)
{
  std::vector<Trial> trials;
  IntRange ir;
  double min, max;
  if (int_range (pspec, &ir))
    {
      trials.push_back ({ Yaml::scalar (int128_text (ir.min)), "the minimum", true, {} });
      trials.push_back ({ Yaml::scalar (int128_text (ir.max)), "the maximum", true, {} });
      trials.push_back ({ Yaml::scalar (int128_text (ir.min - 1)), "minimum - 1", false, {} });
      trials.push_back ({ Yaml::scalar (int128_text (ir.max + 1)), "maximum + 1", false, {} });
    }
  else if (float_range (pspec, &min, &max))
    {
      trials.push_back ({ Yaml::scalar (double_text (min)), "the minimum", true, {} });
      trials.push_back ({ Yaml::scalar (double_text (max)), "the maximum", true, {} });
      trials.push_back ({ Yaml::scalar (double_text (std::nextafter (min, -INFINITY))),
                          "the next double below the minimum",
                          false,
                          {} });
      trials.push_back ({ Yaml::scalar (double_text (std::nextafter (max, INFINITY))),
                          "the next double above the maximum",
                          false,
                          {} });
    }
  else if (G_IS_PARAM_SPEC_ENUM (pspec) || G_IS_PARAM_SPEC_FLAGS (pspec))
    {
      bool is_enum = G_IS_PARAM_SPEC_ENUM (pspec);
      std::vector<std::string> nicks;
      if (is_enum)
        for (guint i = 0; i < G_PARAM_SPEC_ENUM (pspec)->enum_class->n_values; i++)
          nicks.push_back (G_PARAM_SPEC_ENUM (pspec)->enum_class->values[i].value_nick);
      else
        for (guint i = 0; i < G_PARAM_SPEC_FLAGS (pspec)->flags_class->n_values; i++)
          nicks.push_back (G_PARAM_SPEC_FLAGS (pspec)->flags_class->values[i].value_nick);
      auto wrap = [is_enum] (const std::string &nick) {
        if (is_enum)
          return Yaml::scalar (nick);
        Yaml list = Yaml::seq ();
        list.list.push_back (Yaml::scalar (nick));
        return list;
      };
      for (const std::string &nick : nicks)
        trials.push_back ({ wrap (nick), "the nick", true, {} });
      trials.push_back ({ wrap ("no_such_nick"), "a bogus nick", false, nicks });
    }
  return trials;
}

// The node a trial's error must point at: the scalar, or a list's item.
const Yaml *
trial_target (const Yaml *value)
{
  return value->kind == Yaml::SEQ ? &value->list[0] : value;
}

// Sets `parts` inside `map` (an object of `type`), creating the objects on
// the way with their required keys.
void
set_at (Yaml &map,
        GType type,
        const std::vector<std::string> &parts,
        size_t i,
        const Yaml &value,
        MinimalConfig &minimal,
        const std::string &prefix,
        Problems *problems)
{
  if (i + 1 == parts.size ())
    {
      map.set (parts[i], value);
      return;
    }
  GParamSpec *pspec = find_pspec (type, parts[i]);
  GType child_type = G_PARAM_SPEC_VALUE_TYPE (pspec);
  Yaml *child = map.find (parts[i]);
  if (child == nullptr || child->kind != Yaml::MAP)
    {
      Yaml fresh;
      minimal.fill_required (child_type, fresh, prefix + parts[i] + ".", problems);
      map.set (parts[i], fresh);
      child = map.find (parts[i]);
    }
  set_at (*child, child_type, parts, i + 1, value, minimal, prefix + parts[i] + ".", problems);
}

} // namespace

BoundsReport
check_bounds (SlimRegistry *registry, const PluginId &id, const Snippets &snippets)
{
  BoundsReport report;
  MinimalConfig minimal (registry, snippets);
  Problems derive_problems;
  Yaml base = minimal.entry (id, &derive_problems);
  if (!derive_problems.empty ())
    {
      report.problems.push_back ("no minimal config to start from (see the Defaults case)");
      return report;
    }
  GType type = slim_registry_lookup (registry, id.kind, id.name.c_str (), nullptr);
  std::string file = file_name_for (id);
  for (const Prop &prop : all_properties (type))
    {
      if (!(prop.pspec->flags & G_PARAM_WRITABLE))
        continue;
      for (const Trial &trial : trials_for (prop.pspec))
        {
          Problems setup;
          Yaml entry = base;
          set_at (entry, type, prop.parts, 0, trial.value, minimal, "", &setup);
          Yaml document = document_for (id.kind, entry);
          const Yaml *target = trial_target (entry_in (id.kind, document).find_path (prop.parts));
          YamlWriter writer (target);
          std::string yaml = writer.document (document);
          std::string label = "'" + prop.path + "' = " + target->text + " (" + trial.what + ")";
          if (!setup.empty ())
            {
              report.problems.push_back (label
                                         + ": cannot complete the config: " + join (setup, "; "));
              continue;
            }
          report.n_configs++;
          Outcome outcome = load (registry, id.kind, yaml, file);
          std::string context = "\n--- config:\n" + yaml + "---";
          if (trial.accept)
            {
              if (!outcome.built)
                report.problems.push_back (label + " is rejected:\n" + outcome.message + context);
              else if (!outcome.valid && !every_line_located (outcome.message, file))
                report.problems.push_back (label + " is refused by validate without a " + file
                                           + ":LINE:COL location:\n" + outcome.message + context);
              else if (!outcome.valid)
                report.refused_by_validate.push_back (
                    label + ": " + outcome.message.substr (0, outcome.message.find ('\n')));
              continue;
            }
          if (outcome.built)
            {
              report.problems.push_back (label + " is accepted" + context);
              continue;
            }
          std::string location = file + ":" + std::to_string (writer.target_line ()) + ":"
                                 + std::to_string (writer.target_column ()) + ": ";
          std::vector<std::string> missing;
          if (!contains (outcome.message, location))
            missing.push_back ("the location " + location);
          if (!contains (outcome.message, prop.path))
            missing.push_back ("the property '" + prop.path + "'");
          for (const std::string &nick : trial.listed)
            if (!contains (outcome.message, nick))
              missing.push_back ("the valid nick '" + nick + "'");
          if (!missing.empty ())
            report.problems.push_back (label + " is rejected, but the message lacks "
                                       + join (missing, ", ") + ":\n" + outcome.message + context);
        }
    }
  return report;
}

namespace
{

// `slimflow plugins --schema`: stdout and stderr, run once per plugin path.
const std::string &
all_schemas_output (int *status)
{
  static std::map<std::string, std::pair<int, std::string> > runs;
  const char *path = g_getenv ("SLIMFLOW_PLUGIN_PATH");
  auto run = runs.find (path != nullptr ? path : "");
  if (run == runs.end ())
    {
      std::string out, err;
      int exit_status = slim_test_run_cli ({ "plugins", "--schema" }, &out, &err);
      run = runs.emplace (path != nullptr ? path : "", std::make_pair (exit_status, out + err))
                .first;
    }
  *status = run->second.first;
  return run->second.second;
}

} // namespace

Problems
check_cli (SlimRegistry *registry, const PluginId &id)
{
  Problems problems;
  std::string out, err;
  int status = slim_test_run_cli ({ "plugins", id.name }, &out, &err);
  if (status != 0)
    problems.push_back ("`slimflow plugins " + id.name + "` exits " + std::to_string (status)
                        + ":\n" + err);
  std::string header = id.kind_text () + " " + id.name + "\n";
  if (out.compare (0, header.size (), header) != 0 && !contains (out, "\n" + header))
    problems.push_back ("`slimflow plugins " + id.name + "` does not show '" + id.kind_text () + " "
                        + id.name + "'");
  GType type = slim_registry_lookup (registry, id.kind, id.name.c_str (), nullptr);
  for (const Prop &prop : all_properties (type))
    {
      if (!(prop.pspec->flags & G_PARAM_WRITABLE))
        continue;
      std::string line = "\n" + std::string (2 + 4 * prop.depth, ' ') + prop.pspec->name + ": ";
      if (!contains (out, line))
        problems.push_back ("`slimflow plugins " + id.name + "` does not show property '"
                            + prop.path + "'");
    }

  int schema_status = 0;
  const std::string &schemas = all_schemas_output (&schema_status);
  if (schema_status != 0)
    problems.push_back ("`slimflow plugins --schema` exits " + std::to_string (schema_status)
                        + ":\n" + schemas);
  GError *error = nullptr;
  std::string schema
      = take_string (slim_schema_generate_plugin (registry, id.kind, id.name.c_str (), &error));
  g_clear_error (&error);
  std::string block = "// " + id.kind_text () + "-" + id.name + ".json\n" + schema;
  if (schema.empty () || !contains (schemas, block))
    problems.push_back ("`slimflow plugins --schema` does not print " + id.kind_text () + "-"
                        + id.name + ".json as generated");
  return problems;
}
