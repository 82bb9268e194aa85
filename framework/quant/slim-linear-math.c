/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linear-math.c: the names of SlimLinearMath (see slim-linear-math.h).
 */
#include "slim-linear-math.h"

#include <string.h>
#include "slim-error.h"

G_DEFINE_ENUM_TYPE (SlimLinearMath,
                    slim_linear_math,
                    G_DEFINE_ENUM_VALUE (SLIM_LINEAR_MATH_FLOAT, "float"),
                    G_DEFINE_ENUM_VALUE (SLIM_LINEAR_MATH_INT8, "int8"),
                    G_DEFINE_ENUM_VALUE (SLIM_LINEAR_MATH_INT8_REF, "int8_ref"))

static const char *const slim_linear_math_names[] = { "float", "int8", "int8_ref" };

gboolean
slim_linear_math_parse (const char *text, SlimLinearMath *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);

  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (slim_linear_math_names); i++)
    if (strcmp (text, slim_linear_math_names[i]) == 0)
      {
        *out = (SlimLinearMath)i;
        return TRUE;
      }
  g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
               "linear math '%s' is not known (valid: float, int8, int8_ref)",
               text != NULL ? text : "(null)");
  return FALSE;
}

const char *
slim_linear_math_get_name (SlimLinearMath math)
{
  g_return_val_if_fail ((guint)math < G_N_ELEMENTS (slim_linear_math_names), "?");
  return slim_linear_math_names[math];
}
