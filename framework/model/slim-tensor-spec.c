/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tensor-spec.c: lists of SlimTensorSpec (a GArray whose clear func
 * frees each name).
 */
#include "slim-tensor-spec.h"

static void
slim_tensor_spec_clear (gpointer data)
{
  SlimTensorSpec *spec = data;

  g_clear_pointer (&spec->name, g_free);
}

GArray *
slim_tensor_specs_new (void)
{
  GArray *specs = g_array_new (FALSE, TRUE, sizeof (SlimTensorSpec));

  g_array_set_clear_func (specs, slim_tensor_spec_clear);
  return specs;
}

void
slim_tensor_specs_add (GArray *specs, char *name, gint64 d0, gint64 d1)
{
  SlimTensorSpec spec = { name, d1 > 0 ? 2 : 1, { d0, d1 } };

  g_array_append_val (specs, spec);
}
