/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tensor-spec.h (private): SlimTensorSpec, a tensor a decoder layer
 * needs (its full name and shape), kept in GArray lists.  The decoder
 * kernels and the adapters describe a layer with them; SlimModel checks
 * the weights against them and loads the layer from them.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A tensor a layer needs: full name and shape (1-D or 2-D). */
typedef struct
{
  char *name;
  guint n_dims;
  gint64 shape[2];
} SlimTensorSpec;

/* Appends a spec (the array's clear func frees the name). */
void slim_tensor_specs_add (GArray *specs, char *name /* transfer full */, gint64 d0, gint64 d1);
/* A GArray of SlimTensorSpec with its clear func set. */
GArray *slim_tensor_specs_new (void);

G_END_DECLS
