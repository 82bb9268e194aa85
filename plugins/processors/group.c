/* SPDX-License-Identifier: Apache-2.0
 *
 * group.c: msModelSlim's `group` container processor (modelslim-v1-spec.md
 * 2.2; msModelSlim processor/container/group.py):
 *
 *   type: group
 *   configs: [processor entries]   required, non-empty
 *
 * The children are built from `configs` when the config is loaded, and
 * every hook fans out to them in list order: validate, pre_run,
 * preprocess, postprocess, post_run; the forward hooks of all children are
 * chained (a linear's input passes through each child's linear_input hook
 * in list order), so ONE calibration forward per layer serves every child
 * (M processors x N samples forwards become N).
 *
 *   is_data_free          all children are data-free
 *   needs_kv_cache        any child needs it
 *   supports_distributed  any child supports it (msModelSlim's rule)
 *   refreshes_outputs     any child does (float_sparse)
 *
 * A linear matched by several linear_quant children (any
 * SlimLinearProcessor) is taken by the first one only: msModelSlim
 * replaces the module on the first match, so later children no longer see
 * an nn.Linear (slim-linear-processor.h).  The first failing child
 * stops a fan-out; its error names the child ("configs[1] (linear_quant)").
 */
#include "slim-plugin.h"

#define SLIM_TYPE_GROUP_PROCESSOR (slim_group_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimGroupProcessor, slim_group_processor, SLIM, GROUP_PROCESSOR, SlimProcessor)

struct _SlimGroupProcessor
{
  SlimProcessor parent_instance;

  GPtrArray *configs; /* SlimProcessor, owned; NULL until set */
  GArray *hooks;      /* SlimForwardHooks of the children, for the current forward */
};

/* A plugin list only takes SlimProcessors (slim-property.h checks). */
/* clang-format off */
static const SlimPropertyDecl slim_group_properties[] = {
  SLIM_PROPERTY_PLUGIN_LIST (
      SlimGroupProcessor, configs, "configs", "Configs",
      "Processors run on one shared calibration forward, in list order.",
      SLIM_PLUGIN_KIND_PROCESSOR, .flags = SLIM_PARAM_REQUIRED | SLIM_PARAM_NON_EMPTY),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimGroupProcessor, slim_group_processor, SLIM_TYPE_PROCESSOR)

static guint
slim_group_n_children (SlimGroupProcessor *self)
{
  return self->configs != NULL ? self->configs->len : 0;
}

static SlimProcessor *
slim_group_child (SlimGroupProcessor *self, guint i)
{
  return g_ptr_array_index (self->configs, i);
}

static void
slim_group_prefix_error (SlimGroupProcessor *self, guint i, GError **error)
{
  const char *name = slim_processor_get_type_name (slim_group_child (self, i));

  g_prefix_error (error, "configs[%u] (%s): ", i,
                  name != NULL ? name : G_OBJECT_TYPE_NAME (slim_group_child (self, i)));
}

static gboolean
slim_group_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);
  g_autoptr (GString) messages = g_string_new (NULL);
  GQuark domain = 0;
  gint code = 0;

  if (slim_group_n_children (self) == 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "a group needs at least one processor in 'configs'");
      return FALSE;
    }
  /* every child is checked: all problems are reported at once */
  for (guint i = 0; i < slim_group_n_children (self); i++)
    {
      g_autoptr (GError) local_error = NULL;

      if (slim_processor_validate (slim_group_child (self, i), &local_error))
        continue;
      slim_group_prefix_error (self, i, &local_error);
      if (messages->len == 0)
        {
          domain = local_error->domain;
          code = local_error->code;
        }
      else
        g_string_append_c (messages, '\n');
      g_string_append (messages, local_error->message);
    }
  if (messages->len == 0)
    return TRUE;
  g_set_error_literal (error, domain, code, messages->str);
  return FALSE;
}

static gboolean
slim_group_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);

  for (guint i = 0; i < slim_group_n_children (self); i++)
    {
      /* the run's store, for children that read what a prior stage left */
      slim_processor_set_run_store (slim_group_child (self, i),
                                    slim_processor_get_run_store (processor));
      if (!slim_processor_pre_run (slim_group_child (self, i), model, error))
        {
          slim_group_prefix_error (self, i, error);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
slim_group_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);

  for (guint i = 0; i < slim_group_n_children (self); i++)
    if (!slim_processor_preprocess (slim_group_child (self, i), layer, error))
      {
        slim_group_prefix_error (self, i, error);
        return FALSE;
      }
  return TRUE;
}

static gboolean
slim_group_linear_input (const char *module,
                         float *x, /* (n_tokens, n_in) row-major */
                         gint64 n_tokens,
                         gint64 n_in,
                         gpointer user_data,
                         GError **error)
{
  SlimGroupProcessor *self = user_data;

  for (guint i = 0; i < self->hooks->len; i++)
    {
      const SlimForwardHooks *hooks = &g_array_index (self->hooks, SlimForwardHooks, i);

      if (hooks->linear_input != NULL
          && !hooks->linear_input (module, x, n_tokens, n_in, hooks->user_data, error))
        return FALSE;
    }
  return TRUE;
}

/* The first child computing the linear's output gives it. */
static gboolean
slim_group_linear_forward (const char *module,
                           const float *x, /* (n_tokens, n_in) row-major */
                           gint64 n_tokens,
                           gint64 n_in,
                           gint64 n_out,
                           float *y, /* (n_tokens, n_out) row-major */
                           gboolean *done,
                           gpointer user_data,
                           GError **error)
{
  SlimGroupProcessor *self = user_data;

  for (guint i = 0; i < self->hooks->len && !*done; i++)
    {
      const SlimForwardHooks *hooks = &g_array_index (self->hooks, SlimForwardHooks, i);

      if (hooks->linear_forward != NULL
          && !hooks->linear_forward (module, x, n_tokens, n_in, n_out, y, done, hooks->user_data,
                                     error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
slim_group_qkv_states (const char *attn,
                       float *q, /* (n_tokens, n_heads * head_dim) row-major */
                       float *k, /* (n_tokens, n_kv_heads * head_dim) row-major */
                       float *v, /* (n_tokens, n_kv_heads * head_dim) row-major */
                       gint64 n_tokens,
                       const SlimModelConfig *config,
                       gpointer user_data,
                       GError **error)
{
  SlimGroupProcessor *self = user_data;

  for (guint i = 0; i < self->hooks->len; i++)
    {
      const SlimForwardHooks *hooks = &g_array_index (self->hooks, SlimForwardHooks, i);

      if (hooks->qkv_states != NULL
          && !hooks->qkv_states (attn, q, k, v, n_tokens, config, hooks->user_data, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
slim_group_layer_input (const char *layer,
                        const float *x, /* (n_tokens, hidden) row-major */
                        gint64 n_tokens,
                        gint64 hidden,
                        const SlimBatch *batch,
                        gpointer user_data,
                        GError **error)
{
  SlimGroupProcessor *self = user_data;

  for (guint i = 0; i < self->hooks->len; i++)
    {
      const SlimForwardHooks *hooks = &g_array_index (self->hooks, SlimForwardHooks, i);

      if (hooks->layer_input != NULL
          && !hooks->layer_input (layer, x, n_tokens, hidden, batch, hooks->user_data, error))
        return FALSE;
    }
  return TRUE;
}

static void
slim_group_processor_get_forward_hooks (SlimProcessor *processor,
                                        SlimLayer *layer,
                                        SlimForwardHooks *hooks)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);
  gboolean any_linear_input = FALSE, any_linear_forward = FALSE, any_qkv_states = FALSE;
  gboolean any_layer_input = FALSE;

  g_array_set_size (self->hooks, 0);
  for (guint i = 0; i < slim_group_n_children (self); i++)
    {
      SlimForwardHooks child;

      slim_processor_get_forward_hooks (slim_group_child (self, i), layer, &child);
      if (child.linear_input == NULL && child.linear_forward == NULL && child.qkv_states == NULL
          && child.layer_input == NULL)
        continue;
      any_layer_input = any_layer_input || child.layer_input != NULL;
      any_linear_input = any_linear_input || child.linear_input != NULL;
      any_linear_forward = any_linear_forward || child.linear_forward != NULL;
      any_qkv_states = any_qkv_states || child.qkv_states != NULL;
      g_array_append_val (self->hooks, child);
    }
  hooks->linear_input = any_linear_input ? slim_group_linear_input : NULL;
  hooks->linear_forward = any_linear_forward ? slim_group_linear_forward : NULL;
  hooks->qkv_states = any_qkv_states ? slim_group_qkv_states : NULL;
  hooks->layer_input = any_layer_input ? slim_group_layer_input : NULL;
  hooks->user_data = self;
}

static gboolean
slim_group_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);

  for (guint i = 0; i < slim_group_n_children (self); i++)
    if (!slim_processor_postprocess (slim_group_child (self, i), layer, error))
      {
        slim_group_prefix_error (self, i, error);
        return FALSE;
      }
  return TRUE;
}

static gboolean
slim_group_processor_post_run (SlimProcessor *processor, GError **error)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);

  for (guint i = 0; i < slim_group_n_children (self); i++)
    if (!slim_processor_post_run (slim_group_child (self, i), error))
      {
        slim_group_prefix_error (self, i, error);
        return FALSE;
      }
  return TRUE;
}

/* The children's states, in list order: a GVariant "aay".  A child that
 * cannot resume makes this fail with SLIM_PIPELINE_ERROR_INCOMPATIBLE. */
static GBytes *
slim_group_processor_save_state (SlimProcessor *processor, GError **error)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);
  g_autoptr (GVariant) all = NULL;
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("aay"));
  for (guint i = 0; i < slim_group_n_children (self); i++)
    {
      g_autoptr (GBytes) state = slim_processor_save_state (slim_group_child (self, i), error);
      gsize n_bytes = 0;
      gconstpointer data;

      if (state == NULL)
        {
          g_variant_builder_clear (&builder);
          slim_group_prefix_error (self, i, error);
          return NULL;
        }
      data = g_bytes_get_data (state, &n_bytes);
      g_variant_builder_add_value (
          &builder, g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, n_bytes, 1));
    }
  all = g_variant_ref_sink (g_variant_builder_end (&builder));
  return g_variant_get_data_as_bytes (all);
}

static gboolean
slim_group_processor_restore_state (SlimProcessor *processor, GBytes *state, GError **error)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);
  g_autoptr (GVariant) all
      = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("aay"), state, FALSE));

  if (g_variant_n_children (all) != slim_group_n_children (self))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "group: the saved state has %" G_GSIZE_FORMAT " children, the config %u",
                   g_variant_n_children (all), slim_group_n_children (self));
      return FALSE;
    }
  for (guint i = 0; i < slim_group_n_children (self); i++)
    {
      g_autoptr (GVariant) child = g_variant_get_child_value (all, i);
      g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (child);

      if (!slim_processor_restore_state (slim_group_child (self, i), bytes, error))
        {
          slim_group_prefix_error (self, i, error);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
slim_group_processor_is_data_free (SlimProcessor *processor)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);

  for (guint i = 0; i < slim_group_n_children (self); i++)
    if (!slim_processor_is_data_free (slim_group_child (self, i)))
      return FALSE;
  return TRUE;
}

static gboolean
slim_group_processor_needs_kv_cache (SlimProcessor *processor)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);

  for (guint i = 0; i < slim_group_n_children (self); i++)
    if (slim_processor_needs_kv_cache (slim_group_child (self, i)))
      return TRUE;
  return FALSE;
}

static gboolean
slim_group_processor_supports_distributed (SlimProcessor *processor)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);

  for (guint i = 0; i < slim_group_n_children (self); i++)
    if (slim_processor_supports_distributed (slim_group_child (self, i)))
      return TRUE;
  return FALSE;
}

static gboolean
slim_group_processor_refreshes_outputs (SlimProcessor *processor)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (processor);

  for (guint i = 0; i < slim_group_n_children (self); i++)
    if (slim_processor_refreshes_outputs (slim_group_child (self, i)))
      return TRUE;
  return FALSE;
}

static void
slim_group_processor_finalize (GObject *object)
{
  SlimGroupProcessor *self = SLIM_GROUP_PROCESSOR (object);

  g_array_unref (self->hooks);
  G_OBJECT_CLASS (slim_group_processor_parent_class)->finalize (object);
}

static void
slim_group_processor_class_init (SlimGroupProcessorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  object_class->finalize = slim_group_processor_finalize;
  processor_class->validate = slim_group_processor_validate;
  processor_class->pre_run = slim_group_processor_pre_run;
  processor_class->preprocess = slim_group_processor_preprocess;
  processor_class->get_forward_hooks = slim_group_processor_get_forward_hooks;
  processor_class->postprocess = slim_group_processor_postprocess;
  processor_class->post_run = slim_group_processor_post_run;
  processor_class->is_data_free = slim_group_processor_is_data_free;
  processor_class->save_state = slim_group_processor_save_state;
  processor_class->restore_state = slim_group_processor_restore_state;
  processor_class->needs_kv_cache = slim_group_processor_needs_kv_cache;
  processor_class->supports_distributed = slim_group_processor_supports_distributed;
  processor_class->refreshes_outputs = slim_group_processor_refreshes_outputs;
  SLIM_PROPERTIES_INSTALL (klass, slim_group_properties);
}

static void
slim_group_processor_init (SlimGroupProcessor *self)
{
  self->hooks = g_array_new (FALSE, TRUE, sizeof (SlimForwardHooks));
}

SLIM_PLUGIN_DEFINE (processor,
                    group,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Runs several processors on one shared calibration forward per layer "
                    "(msModelSlim group)",
                    slim_group_processor_get_type)
