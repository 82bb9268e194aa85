/* SPDX-License-Identifier: Apache-2.0
 *
 * config-fixtures.c: the test plugin types described in config-fixtures.h.
 *
 * To keep the fixtures short, every type stores its properties in a GValue
 * array indexed by property id (set_property copies in, get_property
 * copies out); all properties are construct-only, so GObject sets every
 * one of them (defaults included) at construction.
 */
#include "config-fixtures.h"

#include <float.h>
#include <string.h>

#include "slim-config-object.h"
#include "slim-error.h"
#include "slim-plugin.h"

#define MAX_PROPS 12
#define PROP_FLAGS (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS)

static void
store_set (GValue *values, guint prop_id, const GValue *value)
{
  g_assert (prop_id < MAX_PROPS);
  if (G_IS_VALUE (&values[prop_id]))
    g_value_unset (&values[prop_id]);
  g_value_init (&values[prop_id], G_VALUE_TYPE (value));
  g_value_copy (value, &values[prop_id]);
}

static void
store_get (GValue *values, guint prop_id, GValue *value)
{
  g_assert (prop_id < MAX_PROPS);
  if (G_IS_VALUE (&values[prop_id]))
    g_value_copy (&values[prop_id], value);
}

static void
store_clear (GValue *values)
{
  for (guint i = 0; i < MAX_PROPS; i++)
    if (G_IS_VALUE (&values[i]))
      g_value_unset (&values[i]);
}

/* Declares the instance struct and get/set/finalize of a fixture type. */
#define FIXTURE_TYPE(TypeName, type_name, TYPE_NAME, ParentName, PARENT_TYPE)                      \
  G_DECLARE_FINAL_TYPE (TypeName, type_name, SLIM, TYPE_NAME, ParentName)                          \
  struct _##TypeName                                                                               \
  {                                                                                                \
    ParentName parent_instance;                                                                    \
    GValue values[MAX_PROPS];                                                                      \
  };                                                                                               \
  G_DEFINE_FINAL_TYPE (TypeName, type_name, PARENT_TYPE)                                           \
  static void type_name##_init (TypeName *self)                                                    \
  {                                                                                                \
  }                                                                                                \
  static void type_name##_set_property (GObject *object, guint prop_id, const GValue *value,       \
                                        GParamSpec *pspec)                                         \
  {                                                                                                \
    store_set (((TypeName *)object)->values, prop_id, value);                                      \
  }                                                                                                \
  static void type_name##_get_property (GObject *object, guint prop_id, GValue *value,             \
                                        GParamSpec *pspec)                                         \
  {                                                                                                \
    store_get (((TypeName *)object)->values, prop_id, value);                                      \
  }                                                                                                \
  static void type_name##_finalize (GObject *object)                                               \
  {                                                                                                \
    store_clear (((TypeName *)object)->values);                                                    \
    G_OBJECT_CLASS (type_name##_parent_class)->finalize (object);                                  \
  }                                                                                                \
  static void type_name##_setup (GObjectClass *object_class)                                       \
  {                                                                                                \
    object_class->set_property = type_name##_set_property;                                         \
    object_class->get_property = type_name##_get_property;                                         \
    object_class->finalize = type_name##_finalize;                                                 \
  }

/* ---- enums and flags --------------------------------------------------- */

static GType slim_test_qdtype_get_type (void);
G_DEFINE_ENUM_TYPE (SlimTestQDtype,
                    slim_test_qdtype,
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QDTYPE_FLOAT, "float"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QDTYPE_INT8, "int8"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QDTYPE_INT4, "int4"))

static GType slim_test_qscope_get_type (void);
G_DEFINE_ENUM_TYPE (SlimTestQScope,
                    slim_test_qscope,
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QSCOPE_PER_TENSOR, "per_tensor"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QSCOPE_PER_CHANNEL, "per_channel"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QSCOPE_PER_GROUP, "per_group"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QSCOPE_PER_TOKEN, "per_token"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QSCOPE_PD_MIX, "pd_mix"))

typedef enum
{
  SLIM_TEST_QMETHOD_NONE,
  SLIM_TEST_QMETHOD_MINMAX,
  SLIM_TEST_QMETHOD_HISTOGRAM,
} SlimTestQMethod;

static GType slim_test_qmethod_get_type (void);
G_DEFINE_ENUM_TYPE (SlimTestQMethod,
                    slim_test_qmethod,
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QMETHOD_NONE, "none"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QMETHOD_MINMAX, "minmax"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_QMETHOD_HISTOGRAM, "histogram"))

typedef enum
{
  SLIM_TEST_AGGREGATION_MAX,
  SLIM_TEST_AGGREGATION_MEAN,
} SlimTestAggregation;

static GType slim_test_aggregation_get_type (void);
G_DEFINE_ENUM_TYPE (SlimTestAggregation,
                    slim_test_aggregation,
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_AGGREGATION_MAX, "max"),
                    G_DEFINE_ENUM_VALUE (SLIM_TEST_AGGREGATION_MEAN, "mean"))

static GType slim_test_stat_flags_get_type (void);
G_DEFINE_FLAGS_TYPE (SlimTestStatFlags,
                     slim_test_stat_flags,
                     G_DEFINE_ENUM_VALUE (SLIM_TEST_STAT_MIN, "min"),
                     G_DEFINE_ENUM_VALUE (SLIM_TEST_STAT_MAX, "max"),
                     G_DEFINE_ENUM_VALUE (SLIM_TEST_STAT_HESSIAN, "hessian"))

/* ---- qconfig objects --------------------------------------------------- */

#define SLIM_TYPE_TEST_QEXT (slim_test_qext_get_type ())
FIXTURE_TYPE (SlimTestQExt, slim_test_qext, TEST_QEXT, GObject, G_TYPE_OBJECT)

static void
slim_test_qext_class_init (SlimTestQExtClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  slim_test_qext_setup (object_class);
  g_object_class_install_property (object_class, 1,
                                   g_param_spec_int ("group-size", "Group size",
                                                     "Input channels per group (per_group scope).",
                                                     1, 1024, 128, PROP_FLAGS));
  g_object_class_install_property (object_class, 2,
                                   g_param_spec_enum ("aggregation-type", "Aggregation",
                                                      "How per-call ranges combine across samples.",
                                                      slim_test_aggregation_get_type (),
                                                      SLIM_TEST_AGGREGATION_MAX, PROP_FLAGS));
  g_object_class_install_property (
      object_class, 3,
      g_param_spec_double ("max-bound", "Maximum bound",
                           "Replaces the symmetric bound when positive (0 = off).", 0.0, 1000.0,
                           0.0, PROP_FLAGS));
}

#define SLIM_TYPE_TEST_QCONFIG (slim_test_qconfig_get_type ())
FIXTURE_TYPE (SlimTestQConfig, slim_test_qconfig, TEST_QCONFIG, GObject, G_TYPE_OBJECT)

static void
slim_test_qconfig_class_init (SlimTestQConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamSpec *pspecs[5];

  slim_test_qconfig_setup (object_class);
  pspecs[0] = g_param_spec_enum ("dtype", "Data type", "Storage type of quantized values.",
                                 slim_test_qdtype_get_type (), SLIM_TEST_QDTYPE_INT8, PROP_FLAGS);
  pspecs[1]
      = g_param_spec_enum ("scope", "Scope", "What one scale covers.", slim_test_qscope_get_type (),
                           SLIM_TEST_QSCOPE_PER_TENSOR, PROP_FLAGS);
  pspecs[2]
      = g_param_spec_boolean ("symmetric", "Symmetric", "Quantize around zero.", TRUE, PROP_FLAGS);
  pspecs[3]
      = g_param_spec_enum ("method", "Method", "How ranges are found.",
                           slim_test_qmethod_get_type (), SLIM_TEST_QMETHOD_MINMAX, PROP_FLAGS);
  pspecs[4] = g_param_spec_object ("ext", "Extensions", "Method-specific settings.",
                                   SLIM_TYPE_TEST_QEXT, PROP_FLAGS);
  for (guint i = 0; i < 5; i++)
    {
      if (i < 4)
        slim_param_spec_set_flags (pspecs[i], SLIM_PARAM_REQUIRED);
      g_object_class_install_property (object_class, i + 1, pspecs[i]);
    }
}

#define SLIM_TYPE_TEST_LINEAR_QCONFIG (slim_test_linear_qconfig_get_type ())
FIXTURE_TYPE (
    SlimTestLinearQConfig, slim_test_linear_qconfig, TEST_LINEAR_QCONFIG, GObject, G_TYPE_OBJECT)

static void
slim_test_linear_qconfig_class_init (SlimTestLinearQConfigClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamSpec *weight;

  slim_test_linear_qconfig_setup (object_class);
  g_object_class_install_property (object_class, 1,
                                   g_param_spec_object ("act", "Activations",
                                                        "Activation quantization.",
                                                        SLIM_TYPE_TEST_QCONFIG, PROP_FLAGS));
  weight = g_param_spec_object ("weight", "Weights", "Weight quantization.", SLIM_TYPE_TEST_QCONFIG,
                                PROP_FLAGS);
  slim_param_spec_set_flags (weight, SLIM_PARAM_REQUIRED);
  g_object_class_install_property (object_class, 2, weight);
}

/* ---- processors -------------------------------------------------------- */

static GParamSpec *
include_pspec (void)
{
  GParamSpec *pspec = g_param_spec_boxed (
      "include", "Include", "Glob patterns of modules to treat.", G_TYPE_STRV, PROP_FLAGS);

  slim_param_spec_set_flags (pspec, SLIM_PARAM_NON_EMPTY);
  return pspec;
}

#define SLIM_TYPE_TEST_LINEAR_QUANT (slim_test_linear_quant_get_type ())
FIXTURE_TYPE (SlimTestLinearQuant,
              slim_test_linear_quant,
              TEST_LINEAR_QUANT,
              SlimProcessor,
              SLIM_TYPE_PROCESSOR)

static gboolean
slim_test_linear_quant_validate (SlimProcessor *processor, GError **error)
{
  SlimTestLinearQuant *self = SLIM_TEST_LINEAR_QUANT (processor);
  GObject *qconfig = g_value_get_object (&self->values[1]);
  g_autoptr (GObject) act = NULL;
  SlimTestQScope scope;
  gboolean symmetric;

  g_object_get (qconfig, "act", &act, NULL);
  if (act == NULL)
    return TRUE;
  g_object_get (act, "scope", &scope, "symmetric", &symmetric, NULL);
  if (scope == SLIM_TEST_QSCOPE_PER_TOKEN && !symmetric)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "no quantized linear exists for act int8 per_token asymmetric");
      return FALSE;
    }
  return TRUE;
}

static void
slim_test_linear_quant_class_init (SlimTestLinearQuantClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamSpec *qconfig;

  slim_test_linear_quant_setup (object_class);
  SLIM_PROCESSOR_CLASS (klass)->validate = slim_test_linear_quant_validate;
  qconfig = g_param_spec_object ("qconfig", "Quantization config", "Act and weight schemes.",
                                 SLIM_TYPE_TEST_LINEAR_QCONFIG, PROP_FLAGS);
  slim_param_spec_set_flags (qconfig, SLIM_PARAM_REQUIRED);
  g_object_class_install_property (object_class, 1, qconfig);
  g_object_class_install_property (object_class, 2, include_pspec ());
  g_object_class_install_property (object_class, 3,
                                   g_param_spec_boxed ("exclude", "Exclude",
                                                       "Glob patterns of modules to skip.",
                                                       G_TYPE_STRV, PROP_FLAGS));
}

#define SLIM_TYPE_TEST_ITER_SMOOTH (slim_test_iter_smooth_get_type ())
FIXTURE_TYPE (
    SlimTestIterSmooth, slim_test_iter_smooth, TEST_ITER_SMOOTH, SlimProcessor, SLIM_TYPE_PROCESSOR)

static void
slim_test_iter_smooth_class_init (SlimTestIterSmoothClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  slim_test_iter_smooth_setup (object_class);
  g_object_class_install_property (object_class, 1,
                                   g_param_spec_double ("alpha", "Alpha",
                                                        "Migration strength between 0 and 1.", 0.0,
                                                        1.0, 0.5, PROP_FLAGS));
  g_object_class_install_property (object_class, 2,
                                   g_param_spec_float ("scale-min", "Minimum scale",
                                                       "Lower clamp of smoothing scales.", 0.0f,
                                                       1.0f, 1e-5f, PROP_FLAGS));
  g_object_class_install_property (
      object_class, 3,
      g_param_spec_boolean ("symmetric", "Symmetric", "Symmetric smoothing.", TRUE, PROP_FLAGS));
  g_object_class_install_property (object_class, 4,
                                   g_param_spec_boxed ("enable-subgraph-type", "Subgraph types",
                                                       "Subgraph kinds to smooth.", G_TYPE_STRV,
                                                       PROP_FLAGS));
  g_object_class_install_property (object_class, 5, include_pspec ());
}

#define SLIM_TYPE_TEST_QUAROT (slim_test_quarot_get_type ())
FIXTURE_TYPE (SlimTestQuarot, slim_test_quarot, TEST_QUAROT, SlimProcessor, SLIM_TYPE_PROCESSOR)

static void
slim_test_quarot_class_init (SlimTestQuarotClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  slim_test_quarot_setup (object_class);
  g_object_class_install_property (object_class, 1,
                                   g_param_spec_int ("block-size", "Block size",
                                                     "Hadamard block size in channels.", 1, 4096,
                                                     64, PROP_FLAGS));
}

#define SLIM_TYPE_TEST_KV_CACHE (slim_test_kv_cache_get_type ())
FIXTURE_TYPE (
    SlimTestKvCache, slim_test_kv_cache, TEST_KV_CACHE, SlimProcessor, SLIM_TYPE_PROCESSOR)

static void
slim_test_kv_cache_class_init (SlimTestKvCacheClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  slim_test_kv_cache_setup (object_class);
  g_object_class_install_property (object_class, 1,
                                   g_param_spec_object ("qconfig", "Quantization config",
                                                        "KV cache scheme.", SLIM_TYPE_TEST_QCONFIG,
                                                        PROP_FLAGS));
  g_object_class_install_property (object_class, 2, include_pspec ());
}

#define SLIM_TYPE_TEST_GROUP (slim_test_group_get_type ())
FIXTURE_TYPE (SlimTestGroup, slim_test_group, TEST_GROUP, SlimProcessor, SLIM_TYPE_PROCESSOR)

static gboolean
slim_test_group_validate (SlimProcessor *processor, GError **error)
{
  SlimTestGroup *self = SLIM_TEST_GROUP (processor);
  GPtrArray *configs = g_value_get_boxed (&self->values[1]);

  for (guint i = 0; configs != NULL && i < configs->len; i++)
    if (!slim_processor_validate (g_ptr_array_index (configs, i), error))
      {
        g_prefix_error (error, "configs[%u]: ", i);
        return FALSE;
      }
  return TRUE;
}

static void
slim_test_group_class_init (SlimTestGroupClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamSpec *configs;

  slim_test_group_setup (object_class);
  SLIM_PROCESSOR_CLASS (klass)->validate = slim_test_group_validate;
  configs = slim_param_spec_plugin_list ("configs", "Configs",
                                         "Processors sharing one calibration forward.",
                                         SLIM_PLUGIN_KIND_PROCESSOR, PROP_FLAGS);
  slim_param_spec_set_flags (configs, SLIM_PARAM_REQUIRED | SLIM_PARAM_NON_EMPTY);
  g_object_class_install_property (object_class, 1, configs);
}

#define SLIM_TYPE_TEST_ALL_TYPES (slim_test_all_types_get_type ())
FIXTURE_TYPE (
    SlimTestAllTypes, slim_test_all_types, TEST_ALL_TYPES, SlimProcessor, SLIM_TYPE_PROCESSOR)

static void
slim_test_all_types_class_init (SlimTestAllTypesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  slim_test_all_types_setup (object_class);
  g_object_class_install_property (
      object_class, 1,
      g_param_spec_uint ("n-uint", "Unsigned", "An unsigned count.", 0, 100, 10, PROP_FLAGS));
  g_object_class_install_property (object_class, 2,
                                   g_param_spec_int64 ("n-int64", "Int64", "A signed 64-bit value.",
                                                       -5, G_MAXINT64, 0, PROP_FLAGS));
  g_object_class_install_property (object_class, 3,
                                   g_param_spec_uint64 ("n-uint64", "Uint64",
                                                        "An unsigned 64-bit value.", 0, G_MAXUINT64,
                                                        0, PROP_FLAGS));
  g_object_class_install_property (
      object_class, 4,
      g_param_spec_string ("label", "Label", "A free-form string.", "none", PROP_FLAGS));
  g_object_class_install_property (
      object_class, 5,
      g_param_spec_flags ("stats", "Statistics", "Statistics to collect.",
                          slim_test_stat_flags_get_type (), SLIM_TEST_STAT_MAX, PROP_FLAGS));
  g_object_class_install_property (
      object_class, 6,
      g_param_spec_float ("ratio", "Ratio", "A float in -1..1.", -1.0f, 1.0f, 0.25f, PROP_FLAGS));
  g_object_class_install_property (
      object_class, 7,
      g_param_spec_boolean ("enabled", "Enabled", "A switch.", FALSE,
                            G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

/* ---- saver ------------------------------------------------------------- */

#define SLIM_TYPE_TEST_SAVER (slim_test_saver_get_type ())
FIXTURE_TYPE (SlimTestSaver, slim_test_saver, TEST_SAVER, SlimSaver, SLIM_TYPE_SAVER)

static void
slim_test_saver_class_init (SlimTestSaverClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  slim_test_saver_setup (object_class);
  g_object_class_install_property (object_class, 1,
                                   g_param_spec_uint64 ("part-file-size", "Part file size",
                                                        "Maximum shard size in GiB.", 1, 1024, 4,
                                                        PROP_FLAGS));
}

/* ---- runner ------------------------------------------------------------ */

#define SLIM_TYPE_TEST_RUNNER (slim_test_runner_get_type ())
FIXTURE_TYPE (SlimTestRunner, slim_test_runner, TEST_RUNNER, SlimRunner, SLIM_TYPE_RUNNER)

static void
slim_test_runner_class_init (SlimTestRunnerClass *klass)
{
  slim_test_runner_setup (G_OBJECT_CLASS (klass));
}

static const SlimPluginDesc test_runner = {
  SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_RUNNER,   "layer_wise", NULL,
  "Test runner (fixture)", slim_test_runner_get_type,
};

gboolean
slim_test_config_registry_add_runner (SlimRegistry *registry, GError **error)
{
  return slim_registry_add_static (registry, &test_runner, error);
}

/* ---- a processor with a property no config can set --------------------- */

#define SLIM_TYPE_TEST_UNSETTABLE (slim_test_unsettable_get_type ())
FIXTURE_TYPE (
    SlimTestUnsettable, slim_test_unsettable, TEST_UNSETTABLE, SlimProcessor, SLIM_TYPE_PROCESSOR)

static void
slim_test_unsettable_class_init (SlimTestUnsettableClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  slim_test_unsettable_setup (object_class);
  g_object_class_install_property (
      object_class, 1, g_param_spec_pointer ("handle", "Handle", "A raw pointer.", PROP_FLAGS));
}

static const SlimPluginDesc test_unsettable = {
  SLIM_PLUGIN_ABI_VERSION,        SLIM_PLUGIN_KIND_PROCESSOR,    "unsettable", NULL,
  "A pointer property (fixture)", slim_test_unsettable_get_type,
};

gboolean
slim_test_config_registry_add_unsettable (SlimRegistry *registry, GError **error)
{
  return slim_registry_add_static (registry, &test_unsettable, error);
}

/* ---- registration ------------------------------------------------------ */

static const SlimPluginDesc test_plugins[] = {
  { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "linear_quant", NULL,
    "Test linear quantization (fixture)", slim_test_linear_quant_get_type },
  { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "iterative_smooth",
    SLIM_PLUGIN_ALIASES ("iter_smooth"), "Test iterative smoothing (fixture)",
    slim_test_iter_smooth_get_type },
  { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "quarot", NULL, "Test rotation (fixture)",
    slim_test_quarot_get_type },
  { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "kv_cache_quant",
    SLIM_PLUGIN_ALIASES ("dynamic_cache"), "Test KV cache quantization (fixture)",
    slim_test_kv_cache_get_type },
  { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "group", NULL,
    "Test group container (fixture)", slim_test_group_get_type },
  { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "all_types", NULL,
    "Every property type (fixture)", slim_test_all_types_get_type },
  { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_SAVER, "ascendv1_saver", NULL, "Test saver (fixture)",
    slim_test_saver_get_type },
};

SlimRegistry *
slim_test_config_registry_new (gboolean reverse)
{
  SlimRegistry *registry = slim_registry_new ();

  for (gsize i = 0; i < G_N_ELEMENTS (test_plugins); i++)
    {
      gsize index = reverse ? G_N_ELEMENTS (test_plugins) - 1 - i : i;
      GError *error = NULL;

      if (!slim_registry_add_static (registry, &test_plugins[index], &error))
        {
          g_critical ("cannot register fixture %s: %s", test_plugins[index].name, error->message);
          g_clear_error (&error);
        }
    }
  return registry;
}
