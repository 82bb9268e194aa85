/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-attention-processor.c: the shared part of the attention processors
 * (see slim-attention-processor.h).
 */
#include "slim-attention-processor.h"

#include "slim-property.h"

typedef struct
{
  char **include;
  char **exclude;
  SlimAttentionSelect *select; /* NULL until ensure_select */
} SlimAttentionProcessorPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimAttentionProcessor,
                                     slim_attention_processor,
                                     SLIM_TYPE_PROCESSOR)

/* clang-format off */
static const SlimPropertyDecl slim_attention_processor_properties[] = {
  SLIM_PROPERTY_STRV (SlimAttentionProcessorPrivate, include, "include", "Include",
                      "Attention modules to quantize (patterns over names like "
                      "model.layers.0.self_attn); empty means all.",
                      SLIM_STRV ("*")),
  SLIM_PROPERTY_STRV (SlimAttentionProcessorPrivate, exclude, "exclude", "Exclude",
                      "Attention modules to leave alone (wins over include).", SLIM_STRV_EMPTY),
};
/* clang-format on */

static SlimAttentionProcessorPrivate *
priv_of (SlimAttentionProcessor *self)
{
  return slim_attention_processor_get_instance_private (self);
}

SlimAttentionSelect *
slim_attention_processor_ensure_select (SlimAttentionProcessor *self, GError **error)
{
  SlimAttentionProcessorPrivate *priv;

  g_return_val_if_fail (SLIM_IS_ATTENTION_PROCESSOR (self), NULL);
  priv = priv_of (self);
  if (priv->select != NULL)
    return priv->select;
  priv->select = slim_attention_select_new ((const char *const *)priv->include,
                                            (const char *const *)priv->exclude, error);
  if (priv->select == NULL)
    g_prefix_error (error, "%s: ", slim_processor_get_type_name (SLIM_PROCESSOR (self)));
  return priv->select;
}

SlimAttentionSelect *
slim_attention_processor_get_select (SlimAttentionProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_ATTENTION_PROCESSOR (self), NULL);
  return priv_of (self)->select;
}

static gboolean
slim_attention_processor_post_run (SlimProcessor *processor, GError **error)
{
  SlimAttentionSelect *select = priv_of (SLIM_ATTENTION_PROCESSOR (processor))->select;

  if (select != NULL)
    slim_attention_select_warn_unmatched (select, slim_processor_get_type_name (processor));
  return TRUE;
}

static gboolean
slim_attention_processor_needs_kv_cache (SlimProcessor *processor)
{
  return TRUE;
}

static gboolean
run_validate (SlimProcessor *processor, GError **error)
{
  SlimProcessorClass *klass = SLIM_PROCESSOR_GET_CLASS (processor);

  if (klass->validate != NULL && !klass->validate (processor, error))
    return FALSE;
  return slim_attention_processor_ensure_select (SLIM_ATTENTION_PROCESSOR (processor), error)
         != NULL;
}

static GBytes *
slim_attention_processor_save_state (SlimProcessor *processor, GError **error)
{
  /* the ranges are per layer: only the pattern hits cross layers */
  if (!run_validate (processor, error))
    return NULL;
  return slim_attention_select_save (priv_of (SLIM_ATTENTION_PROCESSOR (processor))->select);
}

static gboolean
slim_attention_processor_restore_state (SlimProcessor *processor, GBytes *state, GError **error)
{
  if (!run_validate (processor, error))
    return FALSE;
  if (!slim_attention_select_restore (priv_of (SLIM_ATTENTION_PROCESSOR (processor))->select, state,
                                      error))
    {
      g_prefix_error (error, "%s: ", slim_processor_get_type_name (processor));
      return FALSE;
    }
  return TRUE;
}

static void
slim_attention_processor_finalize (GObject *object)
{
  SlimAttentionProcessorPrivate *priv = priv_of (SLIM_ATTENTION_PROCESSOR (object));

  g_clear_pointer (&priv->select, slim_attention_select_free);
  G_OBJECT_CLASS (slim_attention_processor_parent_class)->finalize (object);
}

static void
slim_attention_processor_class_init (SlimAttentionProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_attention_processor_finalize;
  processor_class->post_run = slim_attention_processor_post_run;
  processor_class->needs_kv_cache = slim_attention_processor_needs_kv_cache;
  processor_class->save_state = slim_attention_processor_save_state;
  processor_class->restore_state = slim_attention_processor_restore_state;
  SLIM_PROPERTIES_INSTALL_PRIVATE (klass, slim_attention_processor_properties);
}

static void
slim_attention_processor_init (SlimAttentionProcessor *self)
{
}
