/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz-config.c: libFuzzer target for the YAML config loader
 * (slim-config.c) and the YAML -> GObject property mapping
 * (slim-config-object.c), both compiled into this target for coverage.
 *
 * The input is a whole config file.  The harness checks the loader's
 * promises: a rejected input carries a SLIM_CONFIG_ERROR_PARSE whose
 * message starts with the file name and a location; an accepted tree
 * respects the node and depth limits and every node has a 1-based
 * location.  An accepted mapping is then built into a SlimFuzzTarget, a
 * fuzz-local type with one property of every kind the mapper supports,
 * including a nested object of its own type (so the object-depth limit is
 * reached).  Violations abort (this harness only).
 *
 * The registry is not part of this target: slim-config-object.c only
 * calls it for plugin-list properties, which SlimFuzzTarget does not
 * have, and the registry is always NULL here.  The few registry symbols
 * the file references are provided below as aborting link stubs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "slim-config-object.h"
#include "slim-config.h"
#include "slim-error.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* ---- link stubs (never called: the registry is NULL) ---------------- */

GType
slim_registry_get_type (void)
{
  abort ();
}

GPtrArray *
slim_registry_list (SlimRegistry *self, SlimPluginKind kind)
{
  abort ();
}

const SlimPluginDesc *
slim_registry_get_desc (SlimRegistry *self, SlimPluginKind kind, const char *name)
{
  abort ();
}

GType
slim_registry_lookup (SlimRegistry *self, SlimPluginKind kind, const char *name, GError **error)
{
  abort ();
}

const char *
slim_plugin_kind_to_string (SlimPluginKind kind)
{
  abort ();
}

/* ---- a type with one property of every supported kind --------------- */

typedef enum
{
  SLIM_FUZZ_MODE_FAST,
  SLIM_FUZZ_MODE_SLOW_PATH,
} SlimFuzzMode;

static GType slim_fuzz_mode_get_type (void);
G_DEFINE_ENUM_TYPE (SlimFuzzMode,
                    slim_fuzz_mode,
                    G_DEFINE_ENUM_VALUE (SLIM_FUZZ_MODE_FAST, "fast"),
                    G_DEFINE_ENUM_VALUE (SLIM_FUZZ_MODE_SLOW_PATH, "slow_path"))

typedef enum
{
  SLIM_FUZZ_STAT_MIN = 1 << 0,
  SLIM_FUZZ_STAT_MAX = 1 << 1,
} SlimFuzzStat;

static GType slim_fuzz_stat_get_type (void);
G_DEFINE_FLAGS_TYPE (SlimFuzzStat,
                     slim_fuzz_stat,
                     G_DEFINE_ENUM_VALUE (SLIM_FUZZ_STAT_MIN, "min"),
                     G_DEFINE_ENUM_VALUE (SLIM_FUZZ_STAT_MAX, "max"))

#define N_FUZZ_PROPS 12

#define SLIM_TYPE_FUZZ_TARGET (slim_fuzz_target_get_type ())
G_DECLARE_FINAL_TYPE (SlimFuzzTarget, slim_fuzz_target, SLIM, FUZZ_TARGET, GObject)

struct _SlimFuzzTarget
{
  GObject parent_instance;
  GValue values[N_FUZZ_PROPS];
};

G_DEFINE_FINAL_TYPE (SlimFuzzTarget, slim_fuzz_target, G_TYPE_OBJECT)

static void
slim_fuzz_target_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  GValue *slot = &SLIM_FUZZ_TARGET (object)->values[id];

  if (G_IS_VALUE (slot))
    g_value_unset (slot);
  g_value_init (slot, G_VALUE_TYPE (value));
  g_value_copy (value, slot);
}

static void
slim_fuzz_target_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  g_value_copy (&SLIM_FUZZ_TARGET (object)->values[id], value);
}

static void
slim_fuzz_target_finalize (GObject *object)
{
  for (guint i = 0; i < N_FUZZ_PROPS; i++)
    if (G_IS_VALUE (&SLIM_FUZZ_TARGET (object)->values[i]))
      g_value_unset (&SLIM_FUZZ_TARGET (object)->values[i]);
  G_OBJECT_CLASS (slim_fuzz_target_parent_class)->finalize (object);
}

static void
slim_fuzz_target_class_init (SlimFuzzTargetClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
  GParamSpec *pspec;

  object_class->set_property = slim_fuzz_target_set_property;
  object_class->get_property = slim_fuzz_target_get_property;
  object_class->finalize = slim_fuzz_target_finalize;

  g_object_class_install_property (
      object_class, 1, g_param_spec_boolean ("flag", "Flag", "A boolean.", FALSE, flags));
  g_object_class_install_property (
      object_class, 2, g_param_spec_int ("count", "Count", "An int.", -100, 100, 0, flags));
  g_object_class_install_property (
      object_class, 3, g_param_spec_uint64 ("big", "Big", "A guint64.", 1, G_MAXUINT64, 1, flags));
  g_object_class_install_property (
      object_class, 4,
      g_param_spec_int64 ("signed-big", "Signed", "A gint64.", G_MININT64, G_MAXINT64, 0, flags));
  g_object_class_install_property (
      object_class, 5, g_param_spec_double ("ratio", "Ratio", "A double.", -1.0, 1.0, 0.0, flags));
  g_object_class_install_property (
      object_class, 6,
      g_param_spec_float ("scale", "Scale", "A float.", 0.0f, G_MAXFLOAT, 1.0f, flags));
  g_object_class_install_property (object_class, 7,
                                   g_param_spec_string ("name", "Name", "A string.", NULL, flags));
  pspec = g_param_spec_boxed ("names", "Names", "A list.", G_TYPE_STRV, flags);
  slim_param_spec_set_flags (pspec, SLIM_PARAM_NON_EMPTY);
  g_object_class_install_property (object_class, 8, pspec);
  g_object_class_install_property (object_class, 9,
                                   g_param_spec_enum ("mode", "Mode", "An enum.",
                                                      slim_fuzz_mode_get_type (),
                                                      SLIM_FUZZ_MODE_FAST, flags));
  g_object_class_install_property (
      object_class, 10,
      g_param_spec_flags ("stats", "Stats", "Flags.", slim_fuzz_stat_get_type (), 0, flags));
  g_object_class_install_property (
      object_class, 11,
      g_param_spec_object ("child", "Child", "Itself, nested.", SLIM_TYPE_FUZZ_TARGET, flags));
}

static void
slim_fuzz_target_init (SlimFuzzTarget *self)
{
}

/* ---- the checks ------------------------------------------------------ */

static void
check_error (const GError *error)
{
  if (error == NULL || !g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_PARSE)
      || !g_str_has_prefix (error->message, "fuzz.yaml:"))
    abort ();
}

/* Walks the tree (bounded: the loader caps the expanded node count). */
static guint64
walk (const SlimConfigNode *node, guint depth)
{
  guint64 n = 1;
  g_autofree char *location = NULL;

  if (depth > SLIM_CONFIG_MAX_DEPTH + 1 || slim_config_node_get_line (node) == 0
      || slim_config_node_get_column (node) == 0)
    abort ();
  location = slim_config_node_dup_location (node);
  if (!g_str_has_prefix (location, "fuzz.yaml:"))
    abort ();
  switch (slim_config_node_get_kind (node))
    {
    case SLIM_CONFIG_NODE_SCALAR:
      if (slim_config_node_get_scalar (node) == NULL
          || strlen (slim_config_node_get_scalar (node)) > SLIM_CONFIG_MAX_SCALAR_BYTES)
        abort ();
      break;
    case SLIM_CONFIG_NODE_MAPPING:
      for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
        {
          SlimConfigNode *key = slim_config_node_get_key (node, i);
          if (slim_config_node_get_kind (key) != SLIM_CONFIG_NODE_SCALAR)
            abort ();
          /* Keys are unique after merging: lookup finds this very entry. */
          if (slim_config_node_lookup (node, slim_config_node_get_scalar (key))
              != slim_config_node_get_item (node, i))
            abort ();
          n += walk (key, depth + 1);
          n += walk (slim_config_node_get_item (node, i), depth + 1);
        }
      break;
    case SLIM_CONFIG_NODE_SEQUENCE:
      for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
        n += walk (slim_config_node_get_item (node, i), depth + 1);
      break;
    }
  return n;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimConfigNode) root = NULL;
  g_autoptr (GPtrArray) errors = NULL;
  GObject *object;
  guint64 n_nodes;

  root = slim_config_parse_data ((const char *)data, size, "fuzz.yaml", &error);
  if (root == NULL)
    {
      check_error (error);
      return 0;
    }
  n_nodes = walk (root, 1);
  if (n_nodes > SLIM_CONFIG_MAX_NODES || n_nodes != slim_config_node_get_n_nodes (root)
      || slim_config_node_get_height (root) > SLIM_CONFIG_MAX_DEPTH + 1)
    abort ();

  errors = slim_config_errors_new ();
  object = slim_config_object_new (SLIM_TYPE_FUZZ_TARGET, root, NULL, "fuzz", NULL, errors);
  /* Either an object or at least one located config error, never both. */
  if ((object == NULL) == (errors->len == 0))
    abort ();
  for (guint i = 0; i < errors->len; i++)
    {
      const GError *e = g_ptr_array_index (errors, i);
      if (e->domain != SLIM_CONFIG_ERROR || !g_str_has_prefix (e->message, "fuzz.yaml:"))
        abort ();
    }
  g_clear_object (&object);
  return 0;
}
