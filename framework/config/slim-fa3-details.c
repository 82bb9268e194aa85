/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-fa3-details.c: `details` of fa3_quant (fa_q, fa_k, fa_v).
 */
#include "slim-fa3-details.h"

#include "slim-property.h"

struct _SlimFa3Details
{
  GObject parent_instance;

  SlimQConfig *fa_q; /* nullable */
  SlimQConfig *fa_k;
  SlimQConfig *fa_v;
};

/* clang-format off */
static const SlimPropertyDecl slim_fa3_details_properties[] = {
  SLIM_PROPERTY_OBJECT (SlimFa3Details, fa_q, "fa-q", "Query quantization",
                        "How the attention's query states are quantized (omitted: float).",
                        slim_qconfig_get_type),
  SLIM_PROPERTY_OBJECT (SlimFa3Details, fa_k, "fa-k", "Key quantization",
                        "How the attention's key states are quantized (omitted: float).",
                        slim_qconfig_get_type),
  SLIM_PROPERTY_OBJECT (SlimFa3Details, fa_v, "fa-v", "Value quantization",
                        "How the attention's value states are quantized (omitted: float).",
                        slim_qconfig_get_type),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimFa3Details, slim_fa3_details, G_TYPE_OBJECT)

static void
slim_fa3_details_finalize (GObject *object)
{
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_fa3_details_parent_class)->finalize (object);
}

static void
slim_fa3_details_class_init (SlimFa3DetailsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_fa3_details_finalize;
  SLIM_PROPERTIES_INSTALL (klass, slim_fa3_details_properties);
}

static void
slim_fa3_details_init (SlimFa3Details *self)
{
}

/**
 * slim_fa3_details_get:
 * @self: details
 * @branch: 0 (fa_q), 1 (fa_k) or 2 (fa_v)
 *
 * Returns: (transfer none) (nullable): the branch's config, %NULL when it
 *   was left out
 */
SlimQConfig *
slim_fa3_details_get (SlimFa3Details *self, guint branch)
{
  g_return_val_if_fail (SLIM_IS_FA3_DETAILS (self), NULL);
  g_return_val_if_fail (branch < 3, NULL);
  return branch == 0 ? self->fa_q : branch == 1 ? self->fa_k : self->fa_v;
}
