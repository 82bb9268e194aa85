/* SPDX-License-Identifier: Apache-2.0
 *
 * recording-processor.c: a test processor ("recording") that appends every
 * hook call to a log, so the group tests can see fan-out order.  Its
 * linear_input hook also adds `shift` to every input element, so a chain
 * of hooks is observable in the values.
 */
#include "recording-processor.h"

#include "slim-config-object.h"

struct _SlimRecordingProcessor
{
  SlimProcessor parent_instance;

  char *tag;
  gboolean data_free;
  gboolean kv_cache;
  gboolean distributed;
  gboolean fail_validate;
  double shift;
};

enum
{
  PROP_0,
  PROP_TAG,
  PROP_DATA_FREE,
  PROP_KV_CACHE,
  PROP_DISTRIBUTED,
  PROP_FAIL_VALIDATE,
  PROP_SHIFT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];
static GPtrArray *recording_log;

G_DEFINE_FINAL_TYPE (SlimRecordingProcessor, slim_recording_processor, SLIM_TYPE_PROCESSOR)

static void
slim_recording_add (SlimRecordingProcessor *self, const char *event)
{
  if (recording_log == NULL)
    recording_log = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (recording_log, g_strdup_printf ("%s:%s", self->tag, event));
}

GPtrArray *
slim_recording_log (void)
{
  if (recording_log == NULL)
    recording_log = g_ptr_array_new_with_free_func (g_free);
  return recording_log;
}

void
slim_recording_log_clear (void)
{
  if (recording_log != NULL)
    g_ptr_array_set_size (recording_log, 0);
}

static gboolean
slim_recording_validate (SlimProcessor *processor, GError **error)
{
  SlimRecordingProcessor *self = SLIM_RECORDING_PROCESSOR (processor);

  slim_recording_add (self, "validate");
  if (self->fail_validate)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE, "%s refuses", self->tag);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_recording_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  slim_recording_add (SLIM_RECORDING_PROCESSOR (processor), "pre_run");
  return TRUE;
}

static gboolean
slim_recording_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  slim_recording_add (SLIM_RECORDING_PROCESSOR (processor), "preprocess");
  return TRUE;
}

static gboolean
slim_recording_linear_input (const char *module,
                             float *x, /* (n_tokens, n_in) row-major */
                             gint64 n_tokens,
                             gint64 n_in,
                             gpointer user_data,
                             GError **error)
{
  SlimRecordingProcessor *self = user_data;
  g_autofree char *event = g_strdup_printf ("linear_input %s", module);

  slim_recording_add (self, event);
  for (gint64 i = 0; i < n_tokens * n_in; i++)
    x[i] = x[i] * 2.0f + (float)self->shift;
  return TRUE;
}

static void
slim_recording_get_forward_hooks (SlimProcessor *processor,
                                  SlimLayer *layer,
                                  SlimForwardHooks *hooks)
{
  hooks->linear_input = slim_recording_linear_input;
  hooks->user_data = processor;
}

static gboolean
slim_recording_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  slim_recording_add (SLIM_RECORDING_PROCESSOR (processor), "postprocess");
  return TRUE;
}

static gboolean
slim_recording_post_run (SlimProcessor *processor, GError **error)
{
  slim_recording_add (SLIM_RECORDING_PROCESSOR (processor), "post_run");
  return TRUE;
}

static gboolean
slim_recording_is_data_free (SlimProcessor *processor)
{
  return SLIM_RECORDING_PROCESSOR (processor)->data_free;
}

static gboolean
slim_recording_needs_kv_cache (SlimProcessor *processor)
{
  return SLIM_RECORDING_PROCESSOR (processor)->kv_cache;
}

static gboolean
slim_recording_supports_distributed (SlimProcessor *processor)
{
  return SLIM_RECORDING_PROCESSOR (processor)->distributed;
}

static void
slim_recording_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  SlimRecordingProcessor *self = SLIM_RECORDING_PROCESSOR (object);

  switch (prop_id)
    {
    case PROP_TAG:
      g_value_set_string (value, self->tag);
      break;
    case PROP_DATA_FREE:
      g_value_set_boolean (value, self->data_free);
      break;
    case PROP_KV_CACHE:
      g_value_set_boolean (value, self->kv_cache);
      break;
    case PROP_DISTRIBUTED:
      g_value_set_boolean (value, self->distributed);
      break;
    case PROP_FAIL_VALIDATE:
      g_value_set_boolean (value, self->fail_validate);
      break;
    case PROP_SHIFT:
      g_value_set_double (value, self->shift);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_recording_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  SlimRecordingProcessor *self = SLIM_RECORDING_PROCESSOR (object);

  switch (prop_id)
    {
    case PROP_TAG:
      g_free (self->tag);
      self->tag = g_value_dup_string (value);
      break;
    case PROP_DATA_FREE:
      self->data_free = g_value_get_boolean (value);
      break;
    case PROP_KV_CACHE:
      self->kv_cache = g_value_get_boolean (value);
      break;
    case PROP_DISTRIBUTED:
      self->distributed = g_value_get_boolean (value);
      break;
    case PROP_FAIL_VALIDATE:
      self->fail_validate = g_value_get_boolean (value);
      break;
    case PROP_SHIFT:
      self->shift = g_value_get_double (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
slim_recording_finalize (GObject *object)
{
  g_free (SLIM_RECORDING_PROCESSOR (object)->tag);
  G_OBJECT_CLASS (slim_recording_processor_parent_class)->finalize (object);
}

static void
slim_recording_processor_class_init (SlimRecordingProcessorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = slim_recording_get_property;
  object_class->set_property = slim_recording_set_property;
  object_class->finalize = slim_recording_finalize;
  processor_class->validate = slim_recording_validate;
  processor_class->pre_run = slim_recording_pre_run;
  processor_class->preprocess = slim_recording_preprocess;
  processor_class->get_forward_hooks = slim_recording_get_forward_hooks;
  processor_class->postprocess = slim_recording_postprocess;
  processor_class->post_run = slim_recording_post_run;
  processor_class->is_data_free = slim_recording_is_data_free;
  processor_class->needs_kv_cache = slim_recording_needs_kv_cache;
  processor_class->supports_distributed = slim_recording_supports_distributed;

  properties[PROP_TAG] = g_param_spec_string ("tag", "Tag", "Name in the log.", "?", flags);
  properties[PROP_DATA_FREE]
      = g_param_spec_boolean ("data-free", "Data free", "is_data_free result.", FALSE, flags);
  properties[PROP_KV_CACHE]
      = g_param_spec_boolean ("kv-cache", "KV cache", "needs_kv_cache result.", FALSE, flags);
  properties[PROP_DISTRIBUTED] = g_param_spec_boolean (
      "distributed", "Distributed", "supports_distributed result.", FALSE, flags);
  properties[PROP_FAIL_VALIDATE]
      = g_param_spec_boolean ("fail-validate", "Fail validate", "validate fails.", FALSE, flags);
  properties[PROP_SHIFT]
      = g_param_spec_double ("shift", "Shift", "Added to inputs after x2.", -1e6, 1e6, 0.0, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
slim_recording_processor_init (SlimRecordingProcessor *self)
{
  self->tag = g_strdup ("?");
}

static const SlimPluginDesc slim_recording_desc = {
  SLIM_PLUGIN_ABI_VERSION,    SLIM_PLUGIN_KIND_PROCESSOR,        "recording", NULL,
  "Test processor that logs", slim_recording_processor_get_type,
};

const SlimPluginDesc *
slim_recording_processor_get_desc (void)
{
  return &slim_recording_desc;
}
