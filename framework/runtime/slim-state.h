/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-state.h: saving and restoring a plugin's simple fields for the
 * checkpoint written between layers (SlimProcessor save_state /
 * restore_state, SlimLinearProcessor save_extra / restore_extra), declared
 * as a table like the properties of slim-property.h:
 *
 *   static const SlimStateField slim_foo_state[] = {
 *     SLIM_STATE_INT64 (SlimFooProcessor, n_layers),
 *     SLIM_STATE_DOUBLE (SlimFooProcessor, max_error),
 *   };
 *
 *   static GBytes *
 *   slim_foo_save_extra (SlimLinearProcessor *p, GError **error)
 *   {
 *     return SLIM_STATE_SAVE (p, slim_foo_state);
 *   }
 *
 *   static gboolean
 *   slim_foo_restore_extra (SlimLinearProcessor *p, GBytes *state, GError **error)
 *   {
 *     return SLIM_STATE_RESTORE (p, slim_foo_state, state, error);
 *   }
 *
 * The bytes are a GVariant tuple of the fields in table order (b, i, u,
 * x, d).  Restoring checks them (they come from a file): bytes that are
 * not that tuple are a SLIM_FORMAT_ERROR_INVALID and no field changes.
 */
#pragma once

#include <glib-object.h>
#include "slim-property.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_STATE_TYPE_BOOLEAN,
  SLIM_STATE_TYPE_INT,
  SLIM_STATE_TYPE_UINT,
  SLIM_STATE_TYPE_INT64,
  SLIM_STATE_TYPE_DOUBLE,
} SlimStateType;

/**
 * SlimStateField:
 * @type: the field's type
 * @name: the field's name (messages)
 * @offset: of the field in the instance struct
 *
 * One saved field.  Write these with the SLIM_STATE_* macros (the field's
 * C type is checked at compile time).
 */
typedef struct
{
  SlimStateType type;
  const char *name;
  gsize offset;
} SlimStateField;

/* clang-format off */
#define SLIM_STATE_BOOLEAN(T, field)                                                               \
  { SLIM_STATE_TYPE_BOOLEAN, #field, SLIM_PROPERTY_FIELD_ (T, field, gboolean) }
#define SLIM_STATE_INT(T, field)                                                                   \
  { SLIM_STATE_TYPE_INT, #field, SLIM_PROPERTY_FIELD_ (T, field, gint) }
#define SLIM_STATE_UINT(T, field)                                                                  \
  { SLIM_STATE_TYPE_UINT, #field, SLIM_PROPERTY_FIELD_ (T, field, guint) }
#define SLIM_STATE_INT64(T, field)                                                                 \
  { SLIM_STATE_TYPE_INT64, #field, SLIM_PROPERTY_FIELD_ (T, field, gint64) }
#define SLIM_STATE_DOUBLE(T, field)                                                                \
  { SLIM_STATE_TYPE_DOUBLE, #field, SLIM_PROPERTY_FIELD_ (T, field, double) }
/* clang-format on */

/**
 * slim_state_save_fields:
 * @instance: the object holding the fields
 * @fields: (array length=n_fields): the table
 * @n_fields: its length
 *
 * Returns: (transfer full): the fields' values, serialized
 */
GBytes *
slim_state_save_fields (gconstpointer instance, const SlimStateField *fields, guint n_fields);

/**
 * slim_state_restore_fields:
 * @instance: the object holding the fields
 * @fields: (array length=n_fields): the table the bytes were saved with
 * @n_fields: its length
 * @state: what slim_state_save_fields() returned
 * @error: return location for a GError
 *
 * Returns: TRUE with the fields set; FALSE (SLIM_FORMAT_ERROR_INVALID, no
 *   field changed) when @state is not a state of this table.
 */
gboolean slim_state_restore_fields (
    gpointer instance, const SlimStateField *fields, guint n_fields, GBytes *state, GError **error);

#define SLIM_STATE_SAVE(instance, fields)                                                          \
  slim_state_save_fields ((instance), (fields), G_N_ELEMENTS (fields))
#define SLIM_STATE_RESTORE(instance, fields, state, error)                                         \
  slim_state_restore_fields ((instance), (fields), G_N_ELEMENTS (fields), (state), (error))

G_END_DECLS
