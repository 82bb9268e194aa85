/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-saver-tensors.c: tensor helpers of the safetensors savers (see
 * slim-saver-tensors.h).
 */
#include "slim-saver-tensors.h"

#include <string.h>

char *
slim_saver_tensor_module_of (const char *name, gboolean *is_weight)
{
  const char *suffixes[] = { ".weight", ".bias" };

  for (gsize k = 0; k < G_N_ELEMENTS (suffixes); k++)
    if (g_str_has_suffix (name, suffixes[k]) && strlen (name) > strlen (suffixes[k]))
      {
        *is_weight = k == 0;
        return g_strndup (name, strlen (name) - strlen (suffixes[k]));
      }
  *is_weight = FALSE;
  return NULL;
}

SlimTensor *
slim_saver_tensor_in_source_dtype (SlimLayer *layer, SlimTensor *tensor, GError **error)
{
  SlimDType dtype = slim_layer_get_source_dtype (layer, slim_tensor_get_name (tensor));

  if (dtype == slim_tensor_get_dtype (tensor))
    return slim_tensor_ref (tensor);
  return slim_tensor_convert (tensor, dtype, error);
}
