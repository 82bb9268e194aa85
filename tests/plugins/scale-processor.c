/* SPDX-License-Identifier: Apache-2.0
 *
 * scale-processor.c: the "scale_weights" processor, a test fixture written
 * the way a third-party data-free plugin would be: it multiplies the
 * weight of every selected linear by `factor`.
 *
 *   type: scale_weights
 *   factor: 2.0          0 .. 100, the multiplier
 *   include / exclude    from SlimLinearProcessor
 *
 * It shows the whole plugin surface: one property table, process_linear,
 * and a counter carried across layers in the saved state (slim-state.h).
 */
#include "scale-processor.h"

#define SLIM_TYPE_SCALE_PROCESSOR (slim_scale_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimScaleProcessor, slim_scale_processor, SLIM, SCALE_PROCESSOR, SlimLinearProcessor)

struct _SlimScaleProcessor
{
  SlimLinearProcessor parent_instance;

  double factor;
  gint64 n_scaled; /* linears scaled so far, over all layers */
};

/* clang-format off */
static const SlimPropertyDecl slim_scale_properties[] = {
  SLIM_PROPERTY_DOUBLE (SlimScaleProcessor, factor, "factor", "Factor",
                        "What every selected weight is multiplied by.", 0.0, 100.0, 2.0),
};
/* clang-format on */

static const SlimStateField slim_scale_state[] = {
  SLIM_STATE_INT64 (SlimScaleProcessor, n_scaled),
};

G_DEFINE_FINAL_TYPE (SlimScaleProcessor, slim_scale_processor, SLIM_TYPE_LINEAR_PROCESSOR)

static gboolean
slim_scale_processor_process_linear (SlimLinearProcessor *processor,
                                     SlimLayer *layer,
                                     const char *module,
                                     GError **error)
{
  SlimScaleProcessor *self = SLIM_SCALE_PROCESSOR (processor);
  g_autofree char *name = g_strconcat (module, ".weight", NULL);
  SlimTensor *weight = slim_layer_require_tensor (layer, name, error);
  g_autoptr (SlimTensor) scaled = NULL; /* the weight's shape, float32 */
  float *data;

  if (weight == NULL)
    return FALSE;
  if (slim_tensor_get_dtype (weight) != SLIM_DTYPE_F32)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE, "%s must be float32", name);
      return FALSE;
    }
  scaled = slim_tensor_copy (weight, name);
  data = slim_tensor_get_data_mut (scaled);
  for (gint64 i = 0; i < slim_tensor_get_n_elements (scaled); i++)
    data[i] *= (float)self->factor;
  slim_layer_set_tensor (layer, scaled);
  self->n_scaled++;
  return TRUE;
}

static GBytes *
slim_scale_processor_save_extra (SlimLinearProcessor *processor, GError **error)
{
  return SLIM_STATE_SAVE (processor, slim_scale_state);
}

static gboolean
slim_scale_processor_restore_extra (SlimLinearProcessor *processor, GBytes *extra, GError **error)
{
  return SLIM_STATE_RESTORE (processor, slim_scale_state, extra, error);
}

static gboolean
slim_scale_processor_is_data_free (SlimProcessor *processor)
{
  return TRUE;
}

static void
slim_scale_processor_class_init (SlimScaleProcessorClass *klass)
{
  SlimLinearProcessorClass *linear_class = SLIM_LINEAR_PROCESSOR_CLASS (klass);

  SLIM_PROCESSOR_CLASS (klass)->is_data_free = slim_scale_processor_is_data_free;
  linear_class->process_linear = slim_scale_processor_process_linear;
  linear_class->save_extra = slim_scale_processor_save_extra;
  linear_class->restore_extra = slim_scale_processor_restore_extra;
  SLIM_PROPERTIES_INSTALL (klass, slim_scale_properties);
}

static void
slim_scale_processor_init (SlimScaleProcessor *self)
{
}

gint64
slim_test_scale_processor_get_n_scaled (SlimProcessor *processor)
{
  g_return_val_if_fail (SLIM_IS_SCALE_PROCESSOR (processor), -1);
  return SLIM_SCALE_PROCESSOR (processor)->n_scaled;
}

SLIM_PLUGIN_DEFINE (processor,
                    scale_weights,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Multiplies the selected linear weights by a factor (test fixture)",
                    slim_scale_processor_get_type)
