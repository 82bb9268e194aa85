/* SPDX-License-Identifier: Apache-2.0
 *
 * fa3-quant.c: msModelSlim's `fa3_quant` processor, static per-head
 * quantization of the attention's query, key and value activations
 * "FAQuant" (modelslim-v1-spec.md 2.9; msModelSlim
 * processor/quant/fa3/processor.py, core/observer/recall_window.py,
 * ir/activation_static.py):
 *
 *   type: fa3_quant
 *   qconfig: QConfig              one config for q, k and v; default
 *                                 {dtype: int8, scope: per_head, symmetric: true, method: minmax};
 *                                 also fp8_e4m3 per_head, int8 / fp8_e4m3 per_token
 *   details: {fa_q, fa_k, fa_v}   or one QConfig per branch (a branch left
 *                                 out stays float); not with qconfig
 *   include: [patterns]           attention modules, default ["*"]
 *   exclude: [patterns]           default []
 *
 * Per selected attention and branch:
 *   forward      (qkv_states hook, values left unchanged as msModelSlim's
 *                observer does) for every head h the values of that head,
 *                (n_tokens * head_dim) of them in one calibration sample,
 *                give a "recall window" (slim-recall-window.h, ratio
 *                0.9999): the narrowest range holding 99.99 % of them; the
 *                window's ends are folded into a running per-head min/max
 *                over the samples;
 *   postprocess  scale_h = max (|min_h|, |max_h|) / 127 (slim-qparams.h
 *                symmetric int8), attached as the fa3 part of the layer's
 *                SlimQAttention record: later forwards fake-quantize q, k,
 *                v per head with it, the ascendv1 saver writes
 *                <attn>.fa_{q,k,v}.scale (f32 [H, 1]) / .offset (int8 zeros
 *                [H, 1]) labelled FAQuant, <attn>.quant_type "INT8" and the
 *                global fa_quant_type "FAKQuant".
 *
 * Where slimflow differs from msModelSlim:
 *   - msModelSlim injects its observers only where a model adapter
 *     implements FA3QuantAdapterInterface (the MLA attention of
 *     DeepSeek-V3) and fails for other models.  slimflow quantizes the
 *     dense attention of every family at its qkv_states hook: q and k
 *     after RoPE (and q/k norm), v as projected - what enters the
 *     attention kernel, after the KV-cache quantization of dynamic_cache
 *     when both run.
 *   - the recall ratio is fixed at 0.9999 (the value msModelSlim's
 *     DeepSeek-V3 adapter gives its placeholders; the config has no key
 *     for it); a sample with fewer than 10000 values per head keeps all
 *     but one of them.
 *   - implemented: int8 and fp8_e4m3, symmetric, per_head (static, as
 *     above; fp8 scale_h = max (|min_h|, |max_h|) / 448, slim-fp8.h) and
 *     per_token (dynamic: each token's head_dim values of a head get their
 *     own scale at run time; nothing is calibrated or saved but the
 *     quant_type string).  msModelSlim's mxfp per_block variant is
 *     rejected by validate.  A config with only dynamic branches is
 *     data-free.
 *   - `details` with no branch at all is an error (msModelSlim quantizes
 *     nothing).
 */
#include "slim-plugin.h"

#include <math.h>
#include <string.h>

#define SLIM_FA3_RECALL_RATIO 0.9999

#define SLIM_TYPE_FA3_QUANT_PROCESSOR (slim_fa3_quant_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimFa3QuantProcessor,
                      slim_fa3_quant_processor,
                      SLIM,
                      FA3_QUANT_PROCESSOR,
                      SlimAttentionProcessor)

/* The attention of the layer being calibrated. */
typedef struct
{
  char *attn;
  gint64 n_heads, n_kv_heads, head_dim; /* set by the first forward */
  gint64 n_calls;
  float *min[SLIM_QATTENTION_N_BRANCHES]; /* (heads of the branch) running window ends */
  float *max[SLIM_QATTENTION_N_BRANCHES];
} SlimFa3Pending;

struct _SlimFa3QuantProcessor
{
  SlimAttentionProcessor parent_instance;

  SlimQConfig *qconfig;
  SlimFa3Details *details;

  gboolean enabled[SLIM_QATTENTION_N_BRANCHES];
  SlimQScheme scheme[SLIM_QATTENTION_N_BRANCHES];
  gint64 n_heads, n_kv_heads, head_dim; /* the model's, from pre_run */
  SlimFa3Pending *pending;
};

/* clang-format off */
static const SlimPropertyDecl slim_fa3_quant_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimFa3QuantProcessor, qconfig, "qconfig", "Q/K/V quantization",
      "One quantizer config for the query, key and value states (default int8 per_head "
      "symmetric minmax); not together with details.",
      slim_qconfig_get_type),
  SLIM_PROPERTY_OBJECT (
      SlimFa3QuantProcessor, details, "details", "Per-branch quantization",
      "One quantizer config per branch (fa_q, fa_k, fa_v; a branch left out stays float); "
      "not together with qconfig.",
      slim_fa3_details_get_type),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimFa3QuantProcessor, slim_fa3_quant_processor, SLIM_TYPE_ATTENTION_PROCESSOR)

static void
slim_fa3_pending_free (SlimFa3Pending *pending)
{
  if (pending == NULL)
    return;
  g_free (pending->attn);
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    {
      g_free (pending->min[b]);
      g_free (pending->max[b]);
    }
  g_free (pending);
}

/* Checks one branch's config. */
static gboolean
slim_fa3_check_qconfig (SlimQConfig *qconfig, const char *where, SlimQScheme *out, GError **error)
{
  SlimQScheme scheme = slim_qconfig_get_scheme (qconfig);
  SlimQMethod method = slim_qconfig_get_method (qconfig);
  SlimQConfigExt *ext = slim_qconfig_get_ext (qconfig);
  g_autofree char *got = slim_qscheme_to_string (&scheme);

  if ((scheme.dtype == SLIM_QDTYPE_INT8 || scheme.dtype == SLIM_QDTYPE_FP8_E4M3)
      && (scheme.scope == SLIM_QSCOPE_PER_HEAD || scheme.scope == SLIM_QSCOPE_PER_TOKEN)
      && scheme.symmetric && method == SLIM_QMETHOD_MINMAX)
    {
      if (ext != NULL
          && (slim_qconfig_ext_get_max_bound (ext) != 0
              || slim_qconfig_ext_get_group_size (ext) != 0))
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "fa3_quant: %s.ext: max_bound and group_size do not apply to attention "
                       "activation quantization",
                       where);
          return FALSE;
        }
      *out = scheme;
      return TRUE;
    }
  g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
               "fa3_quant: %s: %s method %s is not an FA3 quantizer; valid: {dtype: int8 or "
               "fp8_e4m3, scope: per_head (static) or per_token (dynamic), symmetric: true, "
               "method: minmax}",
               where, got, slim_qmethod_get_nick (method));
  return FALSE;
}

static gboolean
slim_fa3_quant_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimFa3QuantProcessor *self = SLIM_FA3_QUANT_PROCESSOR (processor);
  gboolean any = FALSE;

  if (slim_attention_processor_get_select (SLIM_ATTENTION_PROCESSOR (self)) != NULL)
    return TRUE;
  if (self->qconfig != NULL && self->details != NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "fa3_quant: give either 'qconfig' (one config for q, k and v) or 'details' "
                   "(fa_q, fa_k, fa_v), not both");
      return FALSE;
    }
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    {
      const char *name = slim_qattention_branch_name (b);
      g_autofree char *where = NULL;

      self->enabled[b] = FALSE;
      if (self->qconfig != NULL)
        {
          if (!slim_fa3_check_qconfig (self->qconfig, "qconfig", &self->scheme[b], error))
            return FALSE;
          self->enabled[b] = TRUE;
        }
      else if (self->details != NULL)
        {
          SlimQConfig *branch = slim_fa3_details_get (self->details, b);

          if (branch == NULL)
            continue;
          where = g_strconcat ("details.", name, NULL);
          if (!slim_fa3_check_qconfig (branch, where, &self->scheme[b], error))
            return FALSE;
          self->enabled[b] = TRUE;
        }
      else
        {
          /* msModelSlim's default */
          self->scheme[b] = (SlimQScheme){ SLIM_QDTYPE_INT8, SLIM_QSCOPE_PER_HEAD, TRUE };
          self->enabled[b] = TRUE;
        }
      any = any || self->enabled[b];
    }
  if (!any)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "fa3_quant: 'details' names no branch; give at least one of fa_q, fa_k, fa_v");
      return FALSE;
    }
  return slim_attention_processor_ensure_select (SLIM_ATTENTION_PROCESSOR (self), error) != NULL;
}

static gboolean
slim_fa3_is_static (SlimFa3QuantProcessor *self, guint branch)
{
  return self->enabled[branch] && self->scheme[branch].scope == SLIM_QSCOPE_PER_HEAD;
}

static gboolean
slim_fa3_quant_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  SlimFa3QuantProcessor *self = SLIM_FA3_QUANT_PROCESSOR (processor);
  const SlimModelConfig *config = slim_model_get_config (model);

  self->n_heads = config->n_heads;
  self->n_kv_heads = config->n_kv_heads;
  self->head_dim = config->head_dim;
  return TRUE;
}

static gboolean
slim_fa3_quant_processor_is_data_free (SlimProcessor *processor)
{
  SlimFa3QuantProcessor *self = SLIM_FA3_QUANT_PROCESSOR (processor);

  if (!slim_fa3_quant_processor_validate (processor, NULL))
    return FALSE;
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    if (slim_fa3_is_static (self, b))
      return FALSE;
  return TRUE; /* dynamic per_token only: nothing to calibrate */
}

static gboolean
slim_fa3_quant_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimFa3QuantProcessor *self = SLIM_FA3_QUANT_PROCESSOR (processor);
  char *attn;

  if (!slim_fa3_quant_processor_validate (processor, error))
    return FALSE;
  g_clear_pointer (&self->pending, slim_fa3_pending_free);
  attn = slim_attention_select_layer (
      slim_attention_processor_get_select (SLIM_ATTENTION_PROCESSOR (self)), layer);
  if (attn == NULL)
    return TRUE;
  self->pending = g_new0 (SlimFa3Pending, 1);
  self->pending->attn = attn;
  return TRUE;
}

static gint64
slim_fa3_branch_heads (const SlimFa3Pending *p, guint branch)
{
  return branch == SLIM_QATTENTION_Q ? p->n_heads : p->n_kv_heads;
}

static gboolean
slim_fa3_pending_shape (SlimFa3Pending *p, const SlimModelConfig *config, GError **error)
{
  if (p->n_calls > 0)
    {
      if (config->n_heads != p->n_heads || config->n_kv_heads != p->n_kv_heads
          || config->head_dim != p->head_dim)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s: the attention shape changed between calibration samples", p->attn);
          return FALSE;
        }
      return TRUE;
    }
  if (config->n_heads <= 0 || config->n_kv_heads <= 0 || config->head_dim <= 0
      || config->n_heads > G_MAXINT32 / config->head_dim)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: unusable attention shape", p->attn);
      return FALSE;
    }
  p->n_heads = config->n_heads;
  p->n_kv_heads = config->n_kv_heads;
  p->head_dim = config->head_dim;
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    {
      gint64 heads = slim_fa3_branch_heads (p, b);

      p->min[b] = g_new (float, heads);
      p->max[b] = g_new (float, heads);
      for (gint64 h = 0; h < heads; h++)
        {
          p->min[b][h] = G_MAXFLOAT;
          p->max[b][h] = -G_MAXFLOAT;
        }
    }
  return TRUE;
}

/* Folds the recall windows of every head of x (n_tokens, heads * head_dim)
 * into min/max (heads). */
static gboolean
slim_fa3_observe (const char *attn,
                  const char *branch,
                  const float *x,
                  gint64 n_tokens,
                  gint64 heads,
                  gint64 head_dim,
                  float *min,
                  float *max,
                  GError **error)
{
  gint64 n = n_tokens * head_dim;
  g_autofree float *values = g_new (float, n);  /* (n_tokens * head_dim) one head */
  g_autofree float *scratch = g_new (float, n); /* (n_tokens * head_dim) */

  for (gint64 h = 0; h < heads; h++)
    {
      float lo, hi;

      for (gint64 t = 0; t < n_tokens; t++)
        memcpy (values + t * head_dim, x + (t * heads + h) * head_dim,
                (gsize)head_dim * sizeof (float));
      for (gint64 i = 0; i < n; i++)
        if (!isfinite (values[i]))
          {
            g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                         "%s.%s: head %" G_GINT64_FORMAT " has NaN or infinite values", attn,
                         branch, h);
            return FALSE;
          }
      slim_recall_window (values, n, SLIM_FA3_RECALL_RATIO, scratch, &lo, &hi);
      min[h] = MIN (min[h], lo);
      max[h] = MAX (max[h], hi);
    }
  return TRUE;
}

static gboolean
slim_fa3_qkv_states (const char *attn,
                     float *q, /* (n_tokens, n_heads * head_dim) */
                     float *k, /* (n_tokens, n_kv_heads * head_dim) */
                     float *v, /* (n_tokens, n_kv_heads * head_dim) */
                     gint64 n_tokens,
                     const SlimModelConfig *config,
                     gpointer user_data,
                     GError **error)
{
  SlimFa3QuantProcessor *self = user_data;
  SlimFa3Pending *p = self->pending;
  const float *states[SLIM_QATTENTION_N_BRANCHES] = { q, k, v };

  if (p == NULL || strcmp (attn, p->attn) != 0 || n_tokens == 0)
    return TRUE;
  if (!slim_fa3_pending_shape (p, config, error))
    return FALSE;
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    if (slim_fa3_is_static (self, b)
        && !slim_fa3_observe (attn, slim_qattention_branch_name (b), states[b], n_tokens,
                              slim_fa3_branch_heads (p, b), p->head_dim, p->min[b], p->max[b],
                              error))
      return FALSE;
  p->n_calls++;
  return TRUE;
}

static void
slim_fa3_quant_processor_get_forward_hooks (SlimProcessor *processor,
                                            SlimLayer *layer,
                                            SlimForwardHooks *hooks)
{
  SlimFa3QuantProcessor *self = SLIM_FA3_QUANT_PROCESSOR (processor);

  if (self->pending == NULL)
    return;
  hooks->qkv_states = slim_fa3_qkv_states;
  hooks->user_data = self;
}

static gboolean
slim_fa3_quant_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimFa3QuantProcessor *self = SLIM_FA3_QUANT_PROCESSOR (processor);
  SlimFa3Pending *p = self->pending;
  const SlimQAttention *old;
  g_autoptr (SlimQAttention) record = NULL;
  SlimQParamsConfig cfg = { .bits = 8, .symmetric = TRUE, .max_bound = 0 };

  gboolean any_static = FALSE;

  if (p == NULL)
    return TRUE;
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    any_static = any_static || slim_fa3_is_static (self, b);
  if (any_static && p->n_calls == 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s (fa3_quant): no calibration sample reached this attention, so its "
                   "per-head scales cannot be computed",
                   p->attn);
      return FALSE;
    }
  if (p->n_calls == 0)
    {
      /* dynamic only (data-free): the model's shape */
      p->n_heads = self->n_heads;
      p->n_kv_heads = self->n_kv_heads;
      p->head_dim = self->head_dim;
    }
  old = slim_layer_get_qattention (layer, p->attn);
  for (guint b = 0; old != NULL && b < SLIM_QATTENTION_N_BRANCHES; b++)
    if (self->enabled[b] && old->fa[b].enabled)
      {
        g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                     "%s.%s is already quantized by an earlier fa3_quant", p->attn,
                     slim_qattention_branch_name (b));
        return FALSE;
      }
  record = old != NULL ? slim_qattention_copy (old)
                       : slim_qattention_new (p->attn, p->n_heads, p->n_kv_heads, p->head_dim);
  for (guint b = 0; b < SLIM_QATTENTION_N_BRANCHES; b++)
    {
      gint64 heads = slim_fa3_branch_heads (p, b);
      g_autofree char *name = NULL;
      float *scale;

      if (!self->enabled[b])
        continue;
      record->fa[b].enabled = TRUE;
      record->fa[b].scheme = self->scheme[b];
      if (!slim_fa3_is_static (self, b))
        continue; /* dynamic: nothing calibrated */
      name = g_strdup_printf ("%s.%s.scale", p->attn, slim_qattention_branch_name (b));
      record->fa[b].scale = slim_tensor_new_1d (name, SLIM_DTYPE_F32, heads);
      scale = slim_tensor_get_data_mut (record->fa[b].scale);
      for (gint64 h = 0; h < heads; h++)
        {
          float offset;
          if (self->scheme[b].dtype == SLIM_QDTYPE_FP8_E4M3)
            scale[h] = slim_fp8_e4m3_scale (p->min[b][h], p->max[b][h]);
          else
            slim_qparams_compute (&cfg, p->min[b][h], p->max[b][h], &scale[h], &offset);
        }
    }
  if (!slim_qattention_check (record, error))
    return FALSE;
  slim_layer_set_qattention (layer, g_steal_pointer (&record));
  g_clear_pointer (&self->pending, slim_fa3_pending_free);
  return TRUE;
}

static void
slim_fa3_quant_processor_finalize (GObject *object)
{
  SlimFa3QuantProcessor *self = SLIM_FA3_QUANT_PROCESSOR (object);

  g_clear_pointer (&self->pending, slim_fa3_pending_free);
  G_OBJECT_CLASS (slim_fa3_quant_processor_parent_class)->finalize (object);
}

static void
slim_fa3_quant_processor_class_init (SlimFa3QuantProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_fa3_quant_processor_finalize;
  processor_class->validate = slim_fa3_quant_processor_validate;
  processor_class->pre_run = slim_fa3_quant_processor_pre_run;
  processor_class->is_data_free = slim_fa3_quant_processor_is_data_free;
  processor_class->preprocess = slim_fa3_quant_processor_preprocess;
  processor_class->get_forward_hooks = slim_fa3_quant_processor_get_forward_hooks;
  processor_class->postprocess = slim_fa3_quant_processor_postprocess;
  SLIM_PROPERTIES_INSTALL (klass, slim_fa3_quant_properties);
}

static void
slim_fa3_quant_processor_init (SlimFa3QuantProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    fa3_quant,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Static per-head int8 quantization of the attention's q, k and v (msModelSlim "
                    "fa3_quant: FAQuant)",
                    slim_fa3_quant_processor_get_type)
