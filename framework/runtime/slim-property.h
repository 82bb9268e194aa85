/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-property.h: plugin properties declared as one table, GStreamer
 * property-table style: a static const array with one SLIM_PROPERTY_*
 * line per property, installed in class_init.  The table is the only
 * place a property is written down: slim_properties_install() creates
 * the GParamSpecs (G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
 * G_PARAM_STATIC_STRINGS, the real minimum/maximum, the default, the
 * SlimParamFlags of slim-param.h) and installs one generic
 * set_property/get_property that reads and writes the struct fields by
 * offset.  No PROP_ enum, no switch, no DEFAULT_ macro.
 *
 *   struct _SlimFooProcessor
 *   {
 *     SlimProcessor parent_instance;
 *     gint group_size;
 *     double damp;
 *     SlimQConfig *weight;
 *     char **targets;
 *   };
 *
 *   // clang-format off
 *   static const SlimPropertyDecl slim_foo_properties[] = {
 *     SLIM_PROPERTY_INT (SlimFooProcessor, group_size, "group-size", "Group size",
 *                        "Input features per group.", 1, 4096, 128),
 *     SLIM_PROPERTY_DOUBLE (SlimFooProcessor, damp, "damp", "Damping",
 *                           "Fraction of the mean diagonal added.", 0.0, 1.0, 0.01),
 *     SLIM_PROPERTY_OBJECT (SlimFooProcessor, weight, "weight", "Weight",
 *                           "How weights are quantized.", slim_qconfig_get_type,
 *                           .flags = SLIM_PARAM_REQUIRED),
 *     SLIM_PROPERTY_STRV (SlimFooProcessor, targets, "targets", "Targets",
 *                         "Module name patterns.", SLIM_STRV ("*")),
 *   };
 *   // clang-format on
 *
 *   static void
 *   slim_foo_processor_class_init (SlimFooProcessorClass *klass)
 *   {
 *     SLIM_PROPERTIES_INSTALL (klass, slim_foo_properties);
 *     ...vfuncs...
 *   }
 *
 * Field types, checked at compile time (a mismatch does not compile):
 *   BOOLEAN gboolean, INT gint, UINT guint, INT64 gint64, DOUBLE double,
 *   STRING char *, STRV char **, ENUM the C enum (int-sized),
 *   OBJECT a pointer to the object type, PLUGIN_LIST GPtrArray *,
 *   OBJECT_LIST GPtrArray * (of objects of get_type: a YAML sequence of
 *   mappings, each built as that type; elements of another type are
 *   refused with a g_critical).
 *
 * Optional designated initializers may follow the last argument:
 *   .flags = SLIM_PARAM_REQUIRED | SLIM_PARAM_NON_EMPTY   (slim-param.h)
 *   .check = func   called with each new value before it is stored; it
 *                   returns FALSE (after a g_critical saying why) to keep
 *                   the old value, since set_property cannot fail.
 *                   Config errors belong in validate, with a GError.
 *
 * Values and ownership:
 *   - Defaults reach the fields through construction (every property is
 *     construct-only, so GObject sets the default when the config does not
 *     give a value): nothing to do in init.
 *   - A STRV default (SLIM_STRV ("*"), SLIM_STRV_EMPTY, or NULL for none)
 *     is copied into the field when the construct default NULL arrives;
 *     the schemas show it as the property's default.
 *   - Strings, string lists, objects and plugin lists are owned by the
 *     instance; SlimProcessor, SlimSaver, SlimRunner and SlimDataset free
 *     them in their finalize (slim_properties_clear, for the tables of the
 *     whole type ancestry), so a plugin frees nothing.  A type deriving
 *     GObject directly calls slim_properties_clear() in its finalize.
 *   - A PLUGIN_LIST only accepts objects of its kind's base class
 *     (slim_plugin_kind_get_base_type); anything else is refused with a
 *     g_critical.
 *
 * The tables are C (designated initializers); slim-state.h's field
 * tables also compile as C++.  Keep a table between clang-format off/on
 * comments: clang-format puts every macro argument inside a braced list on
 * a line of its own.
 *
 * A base class with G_ADD_PRIVATE declares fields of its private struct
 * (SLIM_PROPERTY_INT (SlimFooPrivate, ...)) and installs the table with
 * SLIM_PROPERTIES_INSTALL_PRIVATE.  One table per class; subclasses add
 * their own table (or none) and inherit their parents' properties.
 */
#pragma once

#include <glib-object.h>
#include "slim-param.h"
#include "slim-plugin-desc.h"

G_BEGIN_DECLS

/**
 * SlimPropertyType:
 *
 * What a #SlimPropertyDecl declares; set by the SLIM_PROPERTY_* macros.
 */
typedef enum
{
  SLIM_PROPERTY_TYPE_BOOLEAN,
  SLIM_PROPERTY_TYPE_INT,
  SLIM_PROPERTY_TYPE_UINT,
  SLIM_PROPERTY_TYPE_INT64,
  SLIM_PROPERTY_TYPE_DOUBLE,
  SLIM_PROPERTY_TYPE_STRING,
  SLIM_PROPERTY_TYPE_STRV,
  SLIM_PROPERTY_TYPE_ENUM,
  SLIM_PROPERTY_TYPE_OBJECT,
  SLIM_PROPERTY_TYPE_PLUGIN_LIST,
  SLIM_PROPERTY_TYPE_OBJECT_LIST,
} SlimPropertyType;

/* Returns FALSE to refuse @value (the field keeps its old value). */
typedef gboolean (*SlimPropertyCheckFunc) (GObject *object, const GValue *value);

/**
 * SlimPropertyDecl:
 * @type: the property's type
 * @name: canonical (kebab-case) property name, a string literal
 * @nick: short title (the schema's "title")
 * @blurb: one sentence, units included (the schema's "description")
 * @offset: of the field in the struct the table describes
 * @flags: SlimParamFlags
 * @int_min: minimum of INT, UINT and INT64
 * @int_max: maximum of INT, UINT and INT64
 * @int_default: default of BOOLEAN, INT, UINT, INT64 and ENUM
 * @double_min: minimum of DOUBLE
 * @double_max: maximum of DOUBLE
 * @double_default: default of DOUBLE
 * @string_default: (nullable): default of STRING
 * @strv_default: (nullable): default of STRV (NULL-terminated)
 * @get_type: the enum type of ENUM, the object type of OBJECT and the
 *   element type of OBJECT_LIST
 * @plugin_kind: what a PLUGIN_LIST holds
 * @check: (nullable): see the file comment
 *
 * One property.  Write these with the SLIM_PROPERTY_* macros.
 */
typedef struct
{
  SlimPropertyType type;
  const char *name;
  const char *nick;
  const char *blurb;
  gsize offset;
  SlimParamFlags flags;
  gint64 int_min;
  gint64 int_max;
  gint64 int_default;
  double double_min;
  double double_max;
  double double_default;
  const char *string_default;
  const char *const *strv_default;
  GType (*get_type) (void);
  SlimPluginKind plugin_kind;
  SlimPropertyCheckFunc check;
} SlimPropertyDecl;

/* A static string list for STRV defaults: SLIM_STRV ("*"), SLIM_STRV ("a", "b"). */
#define SLIM_STRV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define SLIM_STRV_EMPTY ((const char *const[]){ NULL })

/* The offset of T.field, failing to compile unless the field has ctype
 * (or, for the _SIZE_ form, ctype's size). */
/* clang-format off */
#ifdef __cplusplus
#define SLIM_PROPERTY_FIELD_(T, field, ctype)                                                      \
  ((gsize)G_STRUCT_OFFSET (T, field) + 0 * sizeof (static_cast<ctype *> (&((T *)0)->field)))
#else
#define SLIM_PROPERTY_FIELD_(T, field, ctype)                                                      \
  ((gsize)G_STRUCT_OFFSET (T, field) + 0 * sizeof (_Generic (((T *)0)->field, ctype: 1)))
#endif
/* clang-format on */
#define SLIM_PROPERTY_FIELD_SIZE_(T, field, ctype)                                                 \
  ((gsize)G_STRUCT_OFFSET (T, field)                                                               \
   + 0 * sizeof (char[sizeof (((T *)0)->field) == sizeof (ctype) ? 1 : -1]))

#define SLIM_PROPERTY_COMMON_(kind, name_, nick_, blurb_)                                          \
  .type = SLIM_PROPERTY_TYPE_##kind, .name = (name_), .nick = (nick_), .blurb = (blurb_)

#define SLIM_PROPERTY_BOOLEAN(T, field, name_, nick_, blurb_, default_, ...)                       \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (BOOLEAN, name_, nick_, blurb_),                                         \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, gboolean), .int_default = (default_),            \
        __VA_ARGS__                                                                                \
  }

#define SLIM_PROPERTY_INT(T, field, name_, nick_, blurb_, min_, max_, default_, ...)               \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (INT, name_, nick_, blurb_),                                             \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, gint), .int_min = (min_), .int_max = (max_),     \
        .int_default = (default_), __VA_ARGS__                                                     \
  }

#define SLIM_PROPERTY_UINT(T, field, name_, nick_, blurb_, min_, max_, default_, ...)              \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (UINT, name_, nick_, blurb_),                                            \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, guint), .int_min = (min_), .int_max = (max_),    \
        .int_default = (default_), __VA_ARGS__                                                     \
  }

#define SLIM_PROPERTY_INT64(T, field, name_, nick_, blurb_, min_, max_, default_, ...)             \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (INT64, name_, nick_, blurb_),                                           \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, gint64), .int_min = (min_), .int_max = (max_),   \
        .int_default = (default_), __VA_ARGS__                                                     \
  }

#define SLIM_PROPERTY_DOUBLE(T, field, name_, nick_, blurb_, min_, max_, default_, ...)            \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (DOUBLE, name_, nick_, blurb_),                                          \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, double), .double_min = (min_),                   \
        .double_max = (max_), .double_default = (default_), __VA_ARGS__                            \
  }

#define SLIM_PROPERTY_STRING(T, field, name_, nick_, blurb_, default_, ...)                        \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (STRING, name_, nick_, blurb_),                                          \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, char *), .string_default = (default_),           \
        __VA_ARGS__                                                                                \
  }

#define SLIM_PROPERTY_STRV(T, field, name_, nick_, blurb_, default_, ...)                          \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (STRV, name_, nick_, blurb_),                                            \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, char **), .strv_default = (default_),            \
        __VA_ARGS__                                                                                \
  }

#define SLIM_PROPERTY_ENUM(T, field, name_, nick_, blurb_, get_type_, default_, ...)               \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (ENUM, name_, nick_, blurb_),                                            \
        .offset = SLIM_PROPERTY_FIELD_SIZE_ (T, field, gint), .get_type = (get_type_),             \
        .int_default = (default_), __VA_ARGS__                                                     \
  }

#define SLIM_PROPERTY_OBJECT(T, field, name_, nick_, blurb_, get_type_, ...)                       \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (OBJECT, name_, nick_, blurb_),                                          \
        .offset = SLIM_PROPERTY_FIELD_SIZE_ (T, field, gpointer), .get_type = (get_type_),         \
        __VA_ARGS__                                                                                \
  }

#define SLIM_PROPERTY_PLUGIN_LIST(T, field, name_, nick_, blurb_, kind_, ...)                      \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (PLUGIN_LIST, name_, nick_, blurb_),                                     \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, GPtrArray *), .plugin_kind = (kind_),            \
        __VA_ARGS__                                                                                \
  }

#define SLIM_PROPERTY_OBJECT_LIST(T, field, name_, nick_, blurb_, get_type_, ...)                  \
  {                                                                                                \
    SLIM_PROPERTY_COMMON_ (OBJECT_LIST, name_, nick_, blurb_),                                     \
        .offset = SLIM_PROPERTY_FIELD_ (T, field, GPtrArray *), .get_type = (get_type_),           \
        __VA_ARGS__                                                                                \
  }

/**
 * slim_properties_install:
 * @klass: the class being initialized (in its class_init)
 * @decls: (array length=n_decls): the class's table, static storage
 * @n_decls: number of entries
 *
 * Creates and installs a GParamSpec per entry (property ids 1..n_decls in
 * table order) and sets @klass's set_property and get_property to the
 * generic accessors.  Offsets are relative to the instance struct.
 */
void slim_properties_install (GObjectClass *klass, const SlimPropertyDecl *decls, guint n_decls);

/**
 * slim_properties_install_private:
 * @klass: the class being initialized; its type has private data (G_ADD_PRIVATE)
 * @decls: (array length=n_decls): the table, offsets relative to the private struct
 * @n_decls: number of entries
 *
 * As slim_properties_install(), for fields of the type's private struct.
 */
void
slim_properties_install_private (GObjectClass *klass, const SlimPropertyDecl *decls, guint n_decls);

#define SLIM_PROPERTIES_INSTALL(klass, decls)                                                      \
  slim_properties_install (G_OBJECT_CLASS (klass), (decls), G_N_ELEMENTS (decls))
#define SLIM_PROPERTIES_INSTALL_PRIVATE(klass, decls)                                              \
  slim_properties_install_private (G_OBJECT_CLASS (klass), (decls), G_N_ELEMENTS (decls))

/**
 * slim_properties_clear:
 * @object: an instance
 *
 * Frees the owned fields (strings, string lists, objects, plugin lists)
 * of every table installed on @object's type and its ancestors and sets
 * them to NULL; scalars are left alone.  Idempotent.  The four plugin base
 * classes call it from their finalize.
 */
void slim_properties_clear (GObject *object);

/* The generic accessors slim_properties_install() sets, for a class that
 * needs its own set_property/get_property for some extra property and
 * passes the table's ones on (prop_id and pspec unchanged). */
void slim_properties_set_property (GObject *object,
                                   guint prop_id,
                                   const GValue *value,
                                   GParamSpec *pspec);
void
slim_properties_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec);

G_END_DECLS
