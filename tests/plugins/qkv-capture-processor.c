/* SPDX-License-Identifier: Apache-2.0
 *
 * qkv-capture-processor.c: a test processor copying every q/k/v state of
 * its calibration forward (see qkv-capture-processor.h).
 */
#include "qkv-capture-processor.h"

#include <string.h>

struct _SlimQkvCaptureProcessor
{
  SlimProcessor parent_instance;
  GPtrArray *calls; /* SlimQkvCapture, owned */
};

G_DEFINE_FINAL_TYPE (SlimQkvCaptureProcessor, slim_qkv_capture_processor, SLIM_TYPE_PROCESSOR)

static void
slim_qkv_capture_free (SlimQkvCapture *c)
{
  g_free (c->attn);
  g_free (c->q);
  g_free (c->k);
  g_free (c->v);
  g_free (c);
}

static gboolean
slim_qkv_capture_qkv_states (const char *attn,
                             float *q,
                             float *k,
                             float *v,
                             gint64 n_tokens,
                             const SlimModelConfig *config,
                             gpointer user_data,
                             GError **error)
{
  SlimQkvCaptureProcessor *self = user_data;
  SlimQkvCapture *c = g_new0 (SlimQkvCapture, 1);
  gint64 q_n = n_tokens * config->n_heads * config->head_dim;
  gint64 kv_n = n_tokens * config->n_kv_heads * config->head_dim;

  c->attn = g_strdup (attn);
  c->n_tokens = n_tokens;
  c->n_heads = config->n_heads;
  c->n_kv_heads = config->n_kv_heads;
  c->head_dim = config->head_dim;
  c->q = g_memdup2 (q, (gsize)q_n * sizeof (float));
  c->k = g_memdup2 (k, (gsize)kv_n * sizeof (float));
  c->v = g_memdup2 (v, (gsize)kv_n * sizeof (float));
  g_ptr_array_add (self->calls, c);
  return TRUE;
}

static void
slim_qkv_capture_get_forward_hooks (SlimProcessor *processor,
                                    SlimLayer *layer,
                                    SlimForwardHooks *hooks)
{
  hooks->qkv_states = slim_qkv_capture_qkv_states;
  hooks->user_data = processor;
}

static gboolean
slim_qkv_capture_needs_kv_cache (SlimProcessor *processor)
{
  return TRUE;
}

GPtrArray *
slim_qkv_capture_processor_get_calls (SlimQkvCaptureProcessor *self)
{
  return self->calls;
}

static void
slim_qkv_capture_processor_finalize (GObject *object)
{
  g_ptr_array_unref (SLIM_QKV_CAPTURE_PROCESSOR (object)->calls);
  G_OBJECT_CLASS (slim_qkv_capture_processor_parent_class)->finalize (object);
}

static void
slim_qkv_capture_processor_class_init (SlimQkvCaptureProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_qkv_capture_processor_finalize;
  processor_class->get_forward_hooks = slim_qkv_capture_get_forward_hooks;
  processor_class->needs_kv_cache = slim_qkv_capture_needs_kv_cache;
}

static void
slim_qkv_capture_processor_init (SlimQkvCaptureProcessor *self)
{
  self->calls = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_qkv_capture_free);
}
