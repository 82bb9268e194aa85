/* SPDX-License-Identifier: Apache-2.0
 *
 * kv-smooth.c: msModelSlim's `kv_smooth` processor (modelslim-v1-spec.md
 * 2.7; msModelSlim processor/kv_smooth/processor.py):
 *
 *   type: kv_smooth
 *   smooth_factor: 1.0   > 0; larger smooths more
 *   include: ["*"]       patterns over attention modules
 *                        ("model.layers.3.self_attn"); empty means all, as
 *                        dynamic_cache (msModelSlim's kv_smooth would then
 *                        match nothing)
 *   exclude: []          wins over include
 *
 * Per selected attention:
 *   forward      (qkv_states hook) the post-RoPE key states (n_tokens,
 *                n_kv_heads * head_dim), where msModelSlim's listener
 *                reads them at Cache.update, update a running min / max
 *                per channel over every calibration token; nothing is
 *                changed;
 *   postprocess  s per kv head and RoPE pair (slim-kv-smooth.h), fused
 *                into what produces q and k before RoPE, as the model
 *                adapter's KVSmoothFusedUnit says:
 *                  state-rope-linear (llama, qwen2, mistral): k_proj rows
 *                    and bias / s, q_proj rows and bias * s (each query
 *                    head by the scales of its kv head);
 *                  state-rope-norm (qwen3, q_norm / k_norm before RoPE):
 *                    one scale vector of head_dim (max over the heads),
 *                    k_norm.weight / s, q_norm.weight * s.
 * Q'K'^T = QK^T, so the float model is unchanged while the key channels'
 * ranges are evened out: put it before dynamic_cache (C8) / fa3_quant and
 * before linear_quant (q_proj / k_proj must still be float).  A
 * per-channel cache scale (C8) is itself invariant to a per-channel
 * rescaling, so the gain shows with quantizers that share a scale over
 * channels (fa3_quant per head); msModelSlim's docs assume the query is
 * not quantized (q is multiplied by s).
 *
 * msModelSlim implements the interface for its qwen adapters only;
 * slimflow derives the fused unit from config.json (qk_norm or not) for
 * every decoder family with RoPE.  A layer that lacks what the fusion
 * needs (an odd head_dim, heads not a multiple of the kv heads, a missing
 * q_norm / k_norm) is an error naming the attention.
 */
#include "slim-plugin.h"

#include <math.h>
#include <string.h>

#define SLIM_TYPE_KV_SMOOTH_PROCESSOR (slim_kv_smooth_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimKvSmoothProcessor, slim_kv_smooth_processor, SLIM, KV_SMOOTH_PROCESSOR, SlimProcessor)

/* The attention of the layer being processed and its key statistics. */
typedef struct
{
  char *attn;
  gint64 n_channels; /* n_kv_heads * head_dim, 0 before the first forward */
  gint64 n_calls;
  float *kmin; /* (n_channels) */
  float *kmax; /* (n_channels) */
} SlimKvSmoothPending;

struct _SlimKvSmoothProcessor
{
  SlimProcessor parent_instance;

  double smooth_factor;
  char **include;
  char **exclude;

  SlimModel *model;            /* from pre_run (ref) */
  SlimAttentionSelect *select; /* NULL until validated */
  SlimKvSmoothPending *pending;
};

/* clang-format off */
static const SlimPropertyDecl slim_kv_smooth_properties[] = {
  SLIM_PROPERTY_DOUBLE (SlimKvSmoothProcessor, smooth_factor, "smooth-factor", "Smooth factor",
                        "Exponent of the key maxima giving the scales; greater than 0, larger "
                        "smooths more.",
                        0.0, G_MAXDOUBLE, 1.0),
  SLIM_PROPERTY_STRV (SlimKvSmoothProcessor, include, "include", "Include",
                      "Attention modules to smooth (patterns over names like "
                      "model.layers.0.self_attn); empty means all.",
                      SLIM_STRV ("*")),
  SLIM_PROPERTY_STRV (SlimKvSmoothProcessor, exclude, "exclude", "Exclude",
                      "Attention modules to leave alone (wins over include).", SLIM_STRV_EMPTY),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimKvSmoothProcessor, slim_kv_smooth_processor, SLIM_TYPE_PROCESSOR)

static void
slim_kv_smooth_pending_free (SlimKvSmoothPending *pending)
{
  if (pending == NULL)
    return;
  g_free (pending->attn);
  g_free (pending->kmin);
  g_free (pending->kmax);
  g_free (pending);
}

static gboolean
slim_kv_smooth_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (processor);

  if (self->select != NULL)
    return TRUE;
  if (!(self->smooth_factor > 0.0) || !isfinite (self->smooth_factor))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "kv_smooth: smooth_factor must be greater than 0, got %g", self->smooth_factor);
      return FALSE;
    }
  self->select = slim_attention_select_new ((const char *const *)self->include,
                                            (const char *const *)self->exclude, error);
  if (self->select == NULL)
    {
      g_prefix_error (error, "kv_smooth: ");
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_kv_smooth_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (processor);

  g_set_object (&self->model, model);
  return slim_kv_smooth_processor_validate (processor, error);
}

static gboolean
slim_kv_smooth_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (processor);
  char *attn;

  if (!slim_kv_smooth_processor_validate (processor, error))
    return FALSE;
  g_clear_pointer (&self->pending, slim_kv_smooth_pending_free);
  attn = slim_attention_select_layer (self->select, layer);
  if (attn == NULL)
    return TRUE;
  self->pending = g_new0 (SlimKvSmoothPending, 1);
  self->pending->attn = attn;
  return TRUE;
}

static gboolean
slim_kv_smooth_qkv_states (const char *attn,
                           float *q,
                           float *k, /* (n_tokens, n_kv_heads * head_dim) */
                           float *v,
                           gint64 n_tokens,
                           const SlimModelConfig *config,
                           gpointer user_data,
                           GError **error)
{
  SlimKvSmoothProcessor *self = user_data;
  SlimKvSmoothPending *p = self->pending;
  const gint64 n = config->n_kv_heads * config->head_dim;

  if (p == NULL || strcmp (attn, p->attn) != 0 || n_tokens == 0)
    return TRUE;
  if (p->kmin == NULL)
    {
      p->n_channels = n;
      p->kmin = g_new (float, n);
      p->kmax = g_new (float, n);
    }
  else if (p->n_channels != n)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "kv_smooth: %s: the key states changed from %" G_GINT64_FORMAT
                   " to %" G_GINT64_FORMAT " channels between calibration samples",
                   attn, p->n_channels, n);
      return FALSE;
    }
  slim_kv_smooth_minmax_update (p->kmin, p->kmax, k, n_tokens, n, p->n_calls == 0);
  p->n_calls++;
  return TRUE;
}

static void
slim_kv_smooth_processor_get_forward_hooks (SlimProcessor *processor,
                                            SlimLayer *layer,
                                            SlimForwardHooks *hooks)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (processor);

  if (self->pending == NULL)
    return;
  hooks->qkv_states = slim_kv_smooth_qkv_states;
  hooks->user_data = self;
}

/* The float32 tensor module.suffix of layer with n_dims dims and n_rows
 * rows, made private and writable; NULL without error when absent and
 * optional. */
static float *
slim_kv_smooth_writable (SlimLayer *layer,
                         const char *attn,
                         const char *module,
                         const char *suffix,
                         guint n_dims,
                         gint64 n_rows,
                         gboolean optional,
                         gint64 *out_n_cols,
                         GError **error)
{
  g_autofree char *name = g_strconcat (attn, ".", module, ".", suffix, NULL);
  g_autofree char *linear = g_strconcat (attn, ".", module, NULL);
  SlimTensor *t = slim_layer_get_tensor (layer, name);
  g_autoptr (SlimTensor) copy = NULL;
  float *data;

  if (slim_layer_get_qlinear (layer, linear) != NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "kv_smooth: %s is already quantized; put kv_smooth before the quantizer in "
                   "spec.process",
                   linear);
      return NULL;
    }
  if (t == NULL)
    {
      if (!optional)
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                     "kv_smooth: %s: the layer has no %s, which the key scales are fused into",
                     attn, name);
      return NULL;
    }
  if (slim_tensor_get_dtype (t) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (t) != n_dims
      || slim_tensor_get_dim (t, 0) != n_rows)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "kv_smooth: %s: %s is not a float32 tensor of %u dims with %" G_GINT64_FORMAT
                   " rows",
                   attn, name, n_dims, n_rows);
      return NULL;
    }
  copy = slim_tensor_copy (t, NULL);
  data = slim_tensor_get_data_mut (copy);
  if (out_n_cols != NULL)
    *out_n_cols = n_dims == 2 ? slim_tensor_get_dim (copy, 1) : 1;
  slim_layer_set_tensor (layer, copy);
  return data;
}

/* state-rope-linear: k_proj rows / k_scale, q_proj rows * q_scale. */
static gboolean
slim_kv_smooth_fuse_linear (SlimLayer *layer,
                            const char *attn,
                            const SlimModelConfig *config,
                            const float *key_abs_max,
                            double factor,
                            GError **error)
{
  const gint64 hd = config->head_dim, kv = config->n_kv_heads;
  const gint64 groups = config->n_heads / config->n_kv_heads;
  g_autofree float *k_scale = g_new (float, kv *hd);         /* (kv * hd) */
  g_autofree float *q_scale = g_new (float, kv *groups *hd); /* (n_heads * hd) */
  gint64 k_in = 0, q_in = 0;
  float *kw, *kb, *qw, *qb;

  slim_kv_smooth_linear_scales (key_abs_max, kv, hd, groups, factor, k_scale, q_scale);
  kw = slim_kv_smooth_writable (layer, attn, "k_proj", "weight", 2, kv * hd, FALSE, &k_in, error);
  if (kw == NULL)
    return FALSE;
  qw = slim_kv_smooth_writable (layer, attn, "q_proj", "weight", 2, kv * groups * hd, FALSE, &q_in,
                                error);
  if (qw == NULL)
    return FALSE;
  kb = slim_kv_smooth_writable (layer, attn, "k_proj", "bias", 1, kv * hd, TRUE, NULL, error);
  if (kb == NULL && error != NULL && *error != NULL)
    return FALSE;
  qb = slim_kv_smooth_writable (layer, attn, "q_proj", "bias", 1, kv * groups * hd, TRUE, NULL,
                                error);
  if (qb == NULL && error != NULL && *error != NULL)
    return FALSE;
  slim_kv_smooth_scale_rows (kw, kb, kv * hd, k_in, k_scale, TRUE);
  slim_kv_smooth_scale_rows (qw, qb, kv * groups * hd, q_in, q_scale, FALSE);
  return TRUE;
}

/* state-rope-norm: k_norm / s, q_norm * s (head_dim each). */
static gboolean
slim_kv_smooth_fuse_norm (SlimLayer *layer,
                          const char *attn,
                          const SlimModelConfig *config,
                          const float *key_abs_max,
                          double factor,
                          GError **error)
{
  const gint64 hd = config->head_dim;
  g_autofree float *scale = g_new (float, hd); /* (hd) */
  float *kn, *qn;

  slim_kv_smooth_norm_scales (key_abs_max, config->n_kv_heads, hd, factor, scale);
  kn = slim_kv_smooth_writable (layer, attn, "k_norm", "weight", 1, hd, FALSE, NULL, error);
  if (kn == NULL)
    return FALSE;
  qn = slim_kv_smooth_writable (layer, attn, "q_norm", "weight", 1, hd, FALSE, NULL, error);
  if (qn == NULL)
    return FALSE;
  slim_kv_smooth_scale_vector (kn, hd, scale, TRUE);
  slim_kv_smooth_scale_vector (qn, hd, scale, FALSE);
  return TRUE;
}

static gboolean
slim_kv_smooth_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (processor);
  SlimKvSmoothPending *p = self->pending;
  const SlimModelConfig *config;
  g_autofree float *key_abs_max = NULL; /* (n_kv_heads * head_dim) */
  gboolean ok;

  if (p == NULL)
    return TRUE;
  if (self->model == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "kv_smooth: postprocess before pre_run");
      return FALSE;
    }
  config = slim_model_get_config (self->model);
  if (config->head_dim <= 0 || config->head_dim % 2 != 0 || config->n_kv_heads <= 0
      || config->n_heads % config->n_kv_heads != 0)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "kv_smooth: %s: needs RoPE pairs (an even head_dim, got %" G_GINT64_FORMAT
                   ") and query heads a multiple of the kv heads (%" G_GINT64_FORMAT
                   " / %" G_GINT64_FORMAT ")",
                   p->attn, config->head_dim, config->n_heads, config->n_kv_heads);
      return FALSE;
    }
  if (p->n_calls == 0)
    {
      g_message ("kv_smooth: no key states reached %s: left unsmoothed", p->attn);
      g_clear_pointer (&self->pending, slim_kv_smooth_pending_free);
      return TRUE;
    }
  if (p->n_channels != config->n_kv_heads * config->head_dim)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "kv_smooth: %s: %" G_GINT64_FORMAT
                   " key channels, config.json says %" G_GINT64_FORMAT,
                   p->attn, p->n_channels, config->n_kv_heads * config->head_dim);
      return FALSE;
    }
  key_abs_max = g_new (float, p->n_channels);
  slim_kv_smooth_abs_max (p->kmin, p->kmax, p->n_channels, key_abs_max);
  for (gint64 c = 0; c < p->n_channels; c++)
    if (!isfinite (key_abs_max[c]) || key_abs_max[c] <= 0.0f)
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                     "kv_smooth: %s: key channel %" G_GINT64_FORMAT
                     " has maximum |k| %g; its scale would not be a positive finite number",
                     p->attn, c, (double)key_abs_max[c]);
        return FALSE;
      }
  if (config->qk_norm)
    ok = slim_kv_smooth_fuse_norm (layer, p->attn, config, key_abs_max, self->smooth_factor, error);
  else
    ok = slim_kv_smooth_fuse_linear (layer, p->attn, config, key_abs_max, self->smooth_factor,
                                     error);
  if (ok)
    g_debug ("kv_smooth: %s smoothed (%s) over %" G_GINT64_FORMAT " calibration samples", p->attn,
             config->qk_norm ? "state-rope-norm" : "state-rope-linear", p->n_calls);
  g_clear_pointer (&self->pending, slim_kv_smooth_pending_free);
  return ok;
}

static gboolean
slim_kv_smooth_processor_post_run (SlimProcessor *processor, GError **error)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (processor);

  if (self->select != NULL)
    slim_attention_select_warn_unmatched (self->select, "kv_smooth");
  return TRUE;
}

static gboolean
slim_kv_smooth_processor_needs_kv_cache (SlimProcessor *processor)
{
  return TRUE;
}

static gboolean
slim_kv_smooth_processor_supports_distributed (SlimProcessor *processor)
{
  /* msModelSlim: False; the key ranges are not reduced across workers */
  return FALSE;
}

static GBytes *
slim_kv_smooth_processor_save_state (SlimProcessor *processor, GError **error)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (processor);

  /* the key ranges are per layer: only the pattern hits cross layers */
  if (!slim_kv_smooth_processor_validate (processor, error))
    return NULL;
  return slim_attention_select_save (self->select);
}

static gboolean
slim_kv_smooth_processor_restore_state (SlimProcessor *processor, GBytes *state, GError **error)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (processor);

  if (!slim_kv_smooth_processor_validate (processor, error))
    return FALSE;
  if (!slim_attention_select_restore (self->select, state, error))
    {
      g_prefix_error (error, "kv_smooth: ");
      return FALSE;
    }
  return TRUE;
}

static void
slim_kv_smooth_processor_finalize (GObject *object)
{
  SlimKvSmoothProcessor *self = SLIM_KV_SMOOTH_PROCESSOR (object);

  g_clear_pointer (&self->pending, slim_kv_smooth_pending_free);
  g_clear_pointer (&self->select, slim_attention_select_free);
  g_clear_object (&self->model);
  G_OBJECT_CLASS (slim_kv_smooth_processor_parent_class)->finalize (object);
}

static void
slim_kv_smooth_processor_class_init (SlimKvSmoothProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_kv_smooth_processor_finalize;
  processor_class->validate = slim_kv_smooth_processor_validate;
  processor_class->pre_run = slim_kv_smooth_processor_pre_run;
  processor_class->preprocess = slim_kv_smooth_processor_preprocess;
  processor_class->get_forward_hooks = slim_kv_smooth_processor_get_forward_hooks;
  processor_class->postprocess = slim_kv_smooth_processor_postprocess;
  processor_class->post_run = slim_kv_smooth_processor_post_run;
  processor_class->needs_kv_cache = slim_kv_smooth_processor_needs_kv_cache;
  processor_class->supports_distributed = slim_kv_smooth_processor_supports_distributed;
  processor_class->save_state = slim_kv_smooth_processor_save_state;
  processor_class->restore_state = slim_kv_smooth_processor_restore_state;
  SLIM_PROPERTIES_INSTALL (klass, slim_kv_smooth_properties);
}

static void
slim_kv_smooth_processor_init (SlimKvSmoothProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    kv_smooth,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Key-cache smoothing through the RoPE pairs, fused into q/k projections or "
                    "q_norm/k_norm (msModelSlim kv_smooth)",
                    slim_kv_smooth_processor_get_type)
