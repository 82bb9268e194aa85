/* SPDX-License-Identifier: Apache-2.0
 *
 * property-fixtures.c: the types of property-fixtures.h.
 */
#include "property-fixtures.h"

/* ---- prop_types: every type, instance fields --------------------------- */

#define SLIM_TYPE_TEST_PROPS_PROCESSOR (slim_test_props_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimTestPropsProcessor, slim_test_props_processor, SLIM, TEST_PROPS_PROCESSOR, SlimProcessor)

struct _SlimTestPropsProcessor
{
  SlimProcessor parent_instance;

  gboolean flag;
  gint count;
  gint even;
  guint size;
  gint64 big;
  double ratio;
  char *label;
  char *path;
  char **patterns;
  char **extras;
  char **tags;
  SlimQDtype dtype;
  SlimQConfig *qconfig;
  GPtrArray *children;
};

static gboolean
slim_test_props_check_even (GObject *object, const GValue *value)
{
  if (g_value_get_int (value) % 2 != 0)
    {
      g_critical ("prop_types: even = %d is odd", g_value_get_int (value));
      return FALSE;
    }
  return TRUE;
}

#define T SlimTestPropsProcessor
/* clang-format off */
static const SlimPropertyDecl slim_test_props_properties[] = {
  SLIM_PROPERTY_BOOLEAN (T, flag, "flag", "Flag", "A boolean.", TRUE),
  SLIM_PROPERTY_INT (T, count, "count", "Count", "An int.", -5, 5, 2),
  SLIM_PROPERTY_INT (T, even, "even", "Even", "An even int.", 0, 100, 0,
                     .check = slim_test_props_check_even),
  SLIM_PROPERTY_UINT (T, size, "size", "Size", "A uint.", 0, 1000, 7),
  SLIM_PROPERTY_INT64 (T, big, "big", "Big", "An int64.", -1000000000000, 1000000000000,
                       10000000000),
  SLIM_PROPERTY_DOUBLE (T, ratio, "ratio", "Ratio", "A double.", -1.0, 1.0, 0.25),
  SLIM_PROPERTY_STRING (T, label, "label", "Label", "A string.", "none"),
  SLIM_PROPERTY_STRING (T, path, "path", "Path", "A string without default.", NULL),
  SLIM_PROPERTY_STRV (T, patterns, "patterns", "Patterns", "A list.", SLIM_STRV ("*")),
  SLIM_PROPERTY_STRV (T, extras, "extras", "Extras", "An empty list.", SLIM_STRV_EMPTY),
  SLIM_PROPERTY_STRV (T, tags, "tags", "Tags", "A list without default.", NULL),
  SLIM_PROPERTY_ENUM (T, dtype, "dtype", "Data type", "An enum.", slim_qdtype_get_type,
                      SLIM_QDTYPE_INT8),
  SLIM_PROPERTY_OBJECT (T, qconfig, "qconfig", "Quantizer", "An object.", slim_qconfig_get_type,
                        .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_PLUGIN_LIST (T, children, "children", "Children", "Processors.",
                             SLIM_PLUGIN_KIND_PROCESSOR, .flags = SLIM_PARAM_NON_EMPTY),
};
/* clang-format on */
#undef T

G_DEFINE_FINAL_TYPE (SlimTestPropsProcessor, slim_test_props_processor, SLIM_TYPE_PROCESSOR)

static void
slim_test_props_processor_class_init (SlimTestPropsProcessorClass *klass)
{
  SLIM_PROPERTIES_INSTALL (klass, slim_test_props_properties);
}

static void
slim_test_props_processor_init (SlimTestPropsProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    prop_types,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Every property type",
                    slim_test_props_processor_get_type)

/* ---- prop_child: private fields at two levels --------------------------- */

#define SLIM_TYPE_TEST_PROP_BASE (slim_test_prop_base_get_type ())
G_DECLARE_DERIVABLE_TYPE (
    SlimTestPropBase, slim_test_prop_base, SLIM, TEST_PROP_BASE, SlimProcessor)

struct _SlimTestPropBaseClass
{
  SlimProcessorClass parent_class;
};

typedef struct
{
  gint level;
  char *name;
} SlimTestPropBasePrivate;

/* clang-format off */
static const SlimPropertyDecl slim_test_prop_base_properties[] = {
  SLIM_PROPERTY_INT (SlimTestPropBasePrivate, level, "level", "Level", "Base int.", 0, 9, 3),
  SLIM_PROPERTY_STRING (SlimTestPropBasePrivate, name, "name", "Name", "Base string.", "base"),
};
/* clang-format on */

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimTestPropBase, slim_test_prop_base, SLIM_TYPE_PROCESSOR)

static void
slim_test_prop_base_class_init (SlimTestPropBaseClass *klass)
{
  SLIM_PROPERTIES_INSTALL_PRIVATE (klass, slim_test_prop_base_properties);
}

static void
slim_test_prop_base_init (SlimTestPropBase *self)
{
}

#define SLIM_TYPE_TEST_PROP_CHILD (slim_test_prop_child_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimTestPropChild, slim_test_prop_child, SLIM, TEST_PROP_CHILD, SlimTestPropBase)

struct _SlimTestPropChild
{
  SlimTestPropBase parent_instance;
};

typedef struct
{
  double weight;
  char **items;
} SlimTestPropChildPrivate;

/* clang-format off */
static const SlimPropertyDecl slim_test_prop_child_properties[] = {
  SLIM_PROPERTY_DOUBLE (SlimTestPropChildPrivate, weight, "weight", "Weight", "Child double.", 0.0,
                        1.0, 0.5),
  SLIM_PROPERTY_STRV (SlimTestPropChildPrivate, items, "items", "Items", "Child list.",
                      SLIM_STRV ("a", "b")),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE_WITH_PRIVATE (SlimTestPropChild, slim_test_prop_child, SLIM_TYPE_TEST_PROP_BASE)

static void
slim_test_prop_child_class_init (SlimTestPropChildClass *klass)
{
  SLIM_PROPERTIES_INSTALL_PRIVATE (klass, slim_test_prop_child_properties);
}

static void
slim_test_prop_child_init (SlimTestPropChild *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    prop_child,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Private property fields at two levels",
                    slim_test_prop_child_get_type)
