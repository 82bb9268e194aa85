/* SPDX-License-Identifier: Apache-2.0
 *
 * dynamic-cache.c: msModelSlim's `dynamic_cache` processor, KV-cache int8
 * quantization "C8" (modelslim-v1-spec.md 2.8; msModelSlim
 * processor/quant/attention.py, core/quantizer/attention.py,
 * ir/attention.py):
 *
 *   type: dynamic_cache
 *   qconfig: {dtype: int8, scope: per_channel, symmetric: true|false,
 *             method: minmax|ifmr|hfmg}
 *   ifmr: {max_percentile, min_percentile, search_range_start,
 *          search_range_end, search_step}      method ifmr only (AMCT's
 *                         ifmr_quantize, defaults 0.999999, 0.999999, 0.7,
 *                         1.3, 0.01; slim-ifmr.h)
 *   hfmg: {num_of_bins}   method hfmg only (AMCT's hfmg_quantize, 1024 |
 *                         2048 | 4096 (default) | 8192; slim-hfmg.h)
 *   batch_num: N          ifmr / hfmg: only the first N calibration samples
 *                         are accumulated (AMCT's batch_num), 0 = all
 *   include: [patterns]   over attention modules ("model.layers.3.self_attn"),
 *                         default (and empty) ["*"]
 *   exclude: [patterns]   default [], wins over include
 *
 * Only int8 per_channel is accepted (validate says so for anything else):
 * the saved scale/offset are per channel of H*D, so AMCT's
 * quant_granularity is per_channel and its asymmetric is
 * qconfig.symmetric.  AMCT's per-layer override_layers_configs is written
 * as several dynamic_cache entries with disjoint include/exclude (an
 * attention quantized twice is an error); docs/attention-quant.md.
 *
 * method ifmr / hfmg (AMCT's kv-cache observers): the calibration forward
 * leaves k and v unchanged (AMCT calibrates on the float model) and
 * accumulates, per channel of H*D, either the states themselves (ifmr; at
 * most SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS token rows per attention, a
 * reservoir sample with a fixed seed beyond that: memory bound 2 x 8192 x
 * H*D floats) or a num_of_bins histogram (hfmg); postprocess searches each
 * channel's clip range and turns it into the channel's scale/offset.
 *
 * method minmax, per selected attention:
 *   forward      (qkv_states hook) the post-RoPE key and value states,
 *                (n_tokens, n_kv_heads * head_dim) - msModelSlim's
 *                (B, H, S, D) cache transposed to (B*S, H*D) - update a
 *                running min/max per channel of H*D; k and v are then
 *                fake-quantized with the running parameters, so the rest
 *                of the calibration forward (and the next layer) sees the
 *                quantized cache, as in msModelSlim's calibration;
 *   postprocess  scale/offset per channel with the integer rules of
 *                slim-qparams.h, attached as the kv-cache part of the
 *                layer's SlimQAttention record (slim-qattention.h): every
 *                later forward fake-quantizes k and v with it, the
 *                ascendv1 saver writes <attn>.{k,v}_proj.kv_cache_{scale,offset}
 *                labelled C8 with kv_cache_type / kv_quant_type "C8".
 *
 * Deviation from msModelSlim, deliberately: its per-channel activation
 * observer (ActPerChannelMinmax) resets on every call, so the saved range
 * is that of the LAST calibration sample only (spec 2.1).  slimflow
 * accumulates the per-channel min/max over every calibration sample, the
 * range a deployed cache must hold for any input.  With one calibration
 * sample both agree.
 * slimflow also needs no transformers DynamicCache hijack: the qkv_states
 * hook is where the dense attention's k and v are the cache's contents.
 */
#include "slim-plugin.h"

#include <string.h>

/* IFMR keeps at most this many token rows of k and of v per attention. */
#define SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS 8192

/* ---- `ifmr` and `hfmg`: the fields of AMCT's ifmr_quantize / hfmg_quantize */

#define SLIM_TYPE_DYNAMIC_CACHE_IFMR (slim_dynamic_cache_ifmr_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimDynamicCacheIfmr, slim_dynamic_cache_ifmr, SLIM, DYNAMIC_CACHE_IFMR, GObject)

struct _SlimDynamicCacheIfmr
{
  GObject parent_instance;

  double max_percentile, min_percentile;
  double search_range_start, search_range_end, search_step;
};

/* clang-format off */
static const SlimPropertyDecl slim_dynamic_cache_ifmr_properties[] = {
  SLIM_PROPERTY_DOUBLE (SlimDynamicCacheIfmr, max_percentile, "max-percentile", "Max percentile",
                        "Percentile of the data giving the initial clip maximum, in (0.5, 1].",
                        0.0, 1.0, 0.999999),
  SLIM_PROPERTY_DOUBLE (SlimDynamicCacheIfmr, min_percentile, "min-percentile", "Min percentile",
                        "Percentile (from the bottom) giving the initial clip minimum, in (0.5, 1].",
                        0.0, 1.0, 0.999999),
  SLIM_PROPERTY_DOUBLE (SlimDynamicCacheIfmr, search_range_start, "search-range-start",
                        "Search range start",
                        "Smallest factor applied to the initial clip range (> 0, <= end).",
                        0.0, 1000.0, 0.7),
  SLIM_PROPERTY_DOUBLE (SlimDynamicCacheIfmr, search_range_end, "search-range-end",
                        "Search range end", "Largest factor applied to the initial clip range.",
                        0.0, 1000.0, 1.3),
  SLIM_PROPERTY_DOUBLE (SlimDynamicCacheIfmr, search_step, "search-step", "Search step",
                        "Step between searched factors (> 0).", 0.0, 1000.0, 0.01),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimDynamicCacheIfmr, slim_dynamic_cache_ifmr, G_TYPE_OBJECT)

static void
slim_dynamic_cache_ifmr_finalize (GObject *object)
{
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_dynamic_cache_ifmr_parent_class)->finalize (object);
}

static void
slim_dynamic_cache_ifmr_class_init (SlimDynamicCacheIfmrClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_dynamic_cache_ifmr_finalize;
  SLIM_PROPERTIES_INSTALL (klass, slim_dynamic_cache_ifmr_properties);
}

static void
slim_dynamic_cache_ifmr_init (SlimDynamicCacheIfmr *self)
{
}

#define SLIM_TYPE_DYNAMIC_CACHE_HFMG (slim_dynamic_cache_hfmg_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimDynamicCacheHfmg, slim_dynamic_cache_hfmg, SLIM, DYNAMIC_CACHE_HFMG, GObject)

struct _SlimDynamicCacheHfmg
{
  GObject parent_instance;

  gint64 num_of_bins;
};

/* clang-format off */
static const SlimPropertyDecl slim_dynamic_cache_hfmg_properties[] = {
  SLIM_PROPERTY_INT64 (SlimDynamicCacheHfmg, num_of_bins, "num-of-bins", "Number of bins",
                       "Histogram bins per channel: 1024, 2048, 4096 or 8192.", 1, 65536,
                       SLIM_HFMG_DEFAULT_BINS),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimDynamicCacheHfmg, slim_dynamic_cache_hfmg, G_TYPE_OBJECT)

static void
slim_dynamic_cache_hfmg_finalize (GObject *object)
{
  slim_properties_clear (object);
  G_OBJECT_CLASS (slim_dynamic_cache_hfmg_parent_class)->finalize (object);
}

static void
slim_dynamic_cache_hfmg_class_init (SlimDynamicCacheHfmgClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_dynamic_cache_hfmg_finalize;
  SLIM_PROPERTIES_INSTALL (klass, slim_dynamic_cache_hfmg_properties);
}

static void
slim_dynamic_cache_hfmg_init (SlimDynamicCacheHfmg *self)
{
}

/* ---- the processor ------------------------------------------------------ */

#define SLIM_TYPE_DYNAMIC_CACHE_PROCESSOR (slim_dynamic_cache_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimDynamicCacheProcessor,
                      slim_dynamic_cache_processor,
                      SLIM,
                      DYNAMIC_CACHE_PROCESSOR,
                      SlimAttentionProcessor)

/* The attention of the layer being calibrated. */
typedef struct
{
  char *attn;
  gint64 n_heads, n_kv_heads, head_dim; /* set by the first forward */
  gint64 n_calls;
  float *k_min, *k_max; /* (n_kv_heads * head_dim) running range */
  float *v_min, *v_max; /* (n_kv_heads * head_dim) */
  /* ifmr: kept token rows (reservoir), n_kept <= SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS */
  float *k_rows, *v_rows; /* (SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS, kv_dim) row-major */
  gint64 n_kept, n_seen;
  GRand *rand;
  /* hfmg: one histogram per channel */
  SlimHfmgHistogram *k_hist, *v_hist; /* (kv_dim) */
} SlimDynamicCachePending;

struct _SlimDynamicCacheProcessor
{
  SlimAttentionProcessor parent_instance;

  SlimQConfig *qconfig;
  SlimDynamicCacheIfmr *ifmr; /* nullable */
  SlimDynamicCacheHfmg *hfmg; /* nullable */
  gint64 batch_num;

  SlimQMethod method;
  SlimIfmrConfig ifmr_config;
  gint64 n_bins;
  SlimQParamsConfig cfg;
  SlimQScheme scheme;
  SlimDynamicCachePending *pending;
};

/* clang-format off */
static const SlimPropertyDecl slim_dynamic_cache_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimDynamicCacheProcessor, qconfig, "qconfig", "KV-cache quantization",
      "Quantizer of the key and value states: {dtype: int8, scope: per_channel, "
      "method: minmax, ifmr or hfmg} (symmetric or not).",
      slim_qconfig_get_type, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_OBJECT (
      SlimDynamicCacheProcessor, ifmr, "ifmr", "IFMR search",
      "AMCT ifmr_quantize fields for method ifmr (omitted: AMCT's defaults).",
      slim_dynamic_cache_ifmr_get_type),
  SLIM_PROPERTY_OBJECT (
      SlimDynamicCacheProcessor, hfmg, "hfmg", "HFMG histogram",
      "AMCT hfmg_quantize fields for method hfmg (omitted: 4096 bins).",
      slim_dynamic_cache_hfmg_get_type),
  SLIM_PROPERTY_INT64 (SlimDynamicCacheProcessor, batch_num, "batch-num", "Batch number",
                       "ifmr / hfmg: calibration samples accumulated (the first N); 0 = all.",
                       0, G_MAXINT32, 0),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimDynamicCacheProcessor,
                     slim_dynamic_cache_processor,
                     SLIM_TYPE_ATTENTION_PROCESSOR)

static void
slim_dynamic_cache_pending_free (SlimDynamicCachePending *pending)
{
  if (pending == NULL)
    return;
  g_free (pending->attn);
  g_free (pending->k_min);
  g_free (pending->k_max);
  g_free (pending->v_min);
  g_free (pending->v_max);
  g_free (pending->k_rows);
  g_free (pending->v_rows);
  g_clear_pointer (&pending->rand, g_rand_free);
  for (gint64 c = 0; pending->k_hist != NULL && c < pending->n_kv_heads * pending->head_dim; c++)
    {
      slim_hfmg_histogram_clear (&pending->k_hist[c]);
      slim_hfmg_histogram_clear (&pending->v_hist[c]);
    }
  g_free (pending->k_hist);
  g_free (pending->v_hist);
  g_free (pending);
}

static gboolean
slim_dynamic_cache_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimDynamicCacheProcessor *self = SLIM_DYNAMIC_CACHE_PROCESSOR (processor);
  SlimQConfigExt *ext;

  if (slim_attention_processor_get_select (SLIM_ATTENTION_PROCESSOR (self)) != NULL)
    return TRUE;
  if (self->qconfig == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "dynamic_cache: missing required key 'qconfig'");
      return FALSE;
    }
  self->scheme = slim_qconfig_get_scheme (self->qconfig);
  self->method = slim_qconfig_get_method (self->qconfig);
  if (self->scheme.dtype != SLIM_QDTYPE_INT8 || self->scheme.scope != SLIM_QSCOPE_PER_CHANNEL
      || (self->method != SLIM_QMETHOD_MINMAX && self->method != SLIM_QMETHOD_IFMR
          && self->method != SLIM_QMETHOD_HFMG))
    {
      g_autofree char *got = slim_qscheme_to_string (&self->scheme);
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "dynamic_cache: qconfig %s method %s is not supported; the KV cache is "
                   "quantized with {dtype: int8, scope: per_channel, method: minmax} "
                   "(symmetric true or false; method ifmr or hfmg too)",
                   got, slim_qmethod_get_nick (self->method));
      return FALSE;
    }
  if (self->ifmr != NULL && self->method != SLIM_QMETHOD_IFMR)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "dynamic_cache: 'ifmr' applies to qconfig.method ifmr only (got %s)",
                   slim_qmethod_get_nick (self->method));
      return FALSE;
    }
  if (self->hfmg != NULL && self->method != SLIM_QMETHOD_HFMG)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "dynamic_cache: 'hfmg' applies to qconfig.method hfmg only (got %s)",
                   slim_qmethod_get_nick (self->method));
      return FALSE;
    }
  if (self->batch_num != 0 && self->method == SLIM_QMETHOD_MINMAX)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "dynamic_cache: 'batch_num' applies to qconfig.method ifmr or hfmg only");
      return FALSE;
    }
  slim_ifmr_config_init_default (&self->ifmr_config);
  if (self->ifmr != NULL)
    {
      self->ifmr_config.max_percentile = self->ifmr->max_percentile;
      self->ifmr_config.min_percentile = self->ifmr->min_percentile;
      self->ifmr_config.search_start = self->ifmr->search_range_start;
      self->ifmr_config.search_end = self->ifmr->search_range_end;
      self->ifmr_config.search_step = self->ifmr->search_step;
    }
  if (!slim_ifmr_config_check (&self->ifmr_config, "dynamic_cache: ifmr.", error))
    return FALSE;
  self->n_bins = self->hfmg != NULL ? self->hfmg->num_of_bins : SLIM_HFMG_DEFAULT_BINS;
  if (!slim_hfmg_bins_check (self->n_bins, "dynamic_cache: hfmg.", error))
    return FALSE;
  ext = slim_qconfig_get_ext (self->qconfig);
  if (ext != NULL
      && (slim_qconfig_ext_get_max_bound (ext) != 0 || slim_qconfig_ext_get_group_size (ext) != 0))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "dynamic_cache: qconfig.ext: max_bound and group_size do not apply to the KV "
                   "cache (the deployed cache uses the full int8 range, one scale per channel)");
      return FALSE;
    }
  if (!slim_qparams_config_init (&self->cfg, self->scheme.dtype, self->scheme.symmetric, 0, error))
    {
      g_prefix_error (error, "dynamic_cache: qconfig: ");
      return FALSE;
    }
  return slim_attention_processor_ensure_select (SLIM_ATTENTION_PROCESSOR (self), error) != NULL;
}

static gboolean
slim_dynamic_cache_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimDynamicCacheProcessor *self = SLIM_DYNAMIC_CACHE_PROCESSOR (processor);
  char *attn;

  if (!slim_dynamic_cache_processor_validate (processor, error))
    return FALSE;
  g_clear_pointer (&self->pending, slim_dynamic_cache_pending_free);
  attn = slim_attention_select_layer (
      slim_attention_processor_get_select (SLIM_ATTENTION_PROCESSOR (self)), layer);
  if (attn == NULL)
    return TRUE;
  self->pending = g_new0 (SlimDynamicCachePending, 1);
  self->pending->attn = attn;
  return TRUE;
}

/* Allocates the ranges at the first forward (its config gives the sizes). */
static gboolean
slim_dynamic_cache_pending_shape (SlimDynamicCachePending *p,
                                  const SlimModelConfig *config,
                                  SlimQMethod method,
                                  gint64 n_bins,
                                  GError **error)
{
  gint64 kv_dim;

  if (p->k_min != NULL)
    {
      if (config->n_kv_heads != p->n_kv_heads || config->head_dim != p->head_dim)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s: the key/value shape changed between calibration samples", p->attn);
          return FALSE;
        }
      return TRUE;
    }
  if (config->n_kv_heads <= 0 || config->head_dim <= 0 || config->n_heads <= 0
      || config->n_kv_heads > G_MAXINT32 / config->head_dim)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: unusable attention shape (%" G_GINT64_FORMAT " kv heads x %" G_GINT64_FORMAT
                   ")",
                   p->attn, config->n_kv_heads, config->head_dim);
      return FALSE;
    }
  p->n_heads = config->n_heads;
  p->n_kv_heads = config->n_kv_heads;
  p->head_dim = config->head_dim;
  kv_dim = p->n_kv_heads * p->head_dim;
  p->k_min = g_new (float, kv_dim);
  p->k_max = g_new (float, kv_dim);
  p->v_min = g_new (float, kv_dim);
  p->v_max = g_new (float, kv_dim);
  for (gint64 c = 0; c < kv_dim; c++)
    {
      p->k_min[c] = p->v_min[c] = G_MAXFLOAT;
      p->k_max[c] = p->v_max[c] = -G_MAXFLOAT;
    }
  if (method == SLIM_QMETHOD_IFMR)
    {
      p->k_rows = g_new (float, (gsize)SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS *(gsize)kv_dim);
      p->v_rows = g_new (float, (gsize)SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS *(gsize)kv_dim);
      p->rand = g_rand_new_with_seed (0);
    }
  else if (method == SLIM_QMETHOD_HFMG)
    {
      p->k_hist = g_new0 (SlimHfmgHistogram, kv_dim);
      p->v_hist = g_new0 (SlimHfmgHistogram, kv_dim);
      for (gint64 c = 0; c < kv_dim; c++)
        {
          slim_hfmg_histogram_init (&p->k_hist[c], n_bins);
          slim_hfmg_histogram_init (&p->v_hist[c], n_bins);
        }
    }
  return TRUE;
}

/* ifmr: keeps the token rows of k and v, a reservoir sample of at most
 * SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS rows (the same rows for k and v). */
static void
slim_dynamic_cache_keep_rows (SlimDynamicCachePending *p,
                              const float *k, /* (n_tokens, kv_dim) */
                              const float *v, /* (n_tokens, kv_dim) */
                              gint64 n_tokens,
                              gint64 kv_dim)
{
  gsize row = (gsize)kv_dim * sizeof (float);

  for (gint64 t = 0; t < n_tokens; t++, p->n_seen++)
    {
      gint64 slot;
      if (p->n_kept < SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS)
        slot = p->n_kept++;
      else
        {
          slot = (gint64)g_rand_double_range (p->rand, 0.0, (double)(p->n_seen + 1));
          if (slot >= SLIM_DYNAMIC_CACHE_IFMR_MAX_TOKENS)
            continue;
        }
      memcpy (p->k_rows + (gsize)slot * (gsize)kv_dim, k + (gsize)t * (gsize)kv_dim, row);
      memcpy (p->v_rows + (gsize)slot * (gsize)kv_dim, v + (gsize)t * (gsize)kv_dim, row);
    }
}

/* Per-channel scale/offset (n) of a running range. */
static void
slim_dynamic_cache_params (const SlimQParamsConfig *cfg,
                           const float *min,
                           const float *max,
                           gint64 n,
                           float *scale, /* (n) */
                           float *offset /* (n) */)
{
  for (gint64 c = 0; c < n; c++)
    slim_qparams_compute (cfg, min[c], max[c], &scale[c], &offset[c]);
}

static gboolean
slim_dynamic_cache_qkv_states (const char *attn,
                               float *q,
                               float *k, /* (n_tokens, n_kv_heads * head_dim) */
                               float *v, /* (n_tokens, n_kv_heads * head_dim) */
                               gint64 n_tokens,
                               const SlimModelConfig *config,
                               gpointer user_data,
                               GError **error)
{
  SlimDynamicCacheProcessor *self = user_data;
  SlimDynamicCachePending *p = self->pending;
  g_autofree float *scale = NULL;  /* (kv_dim) */
  g_autofree float *offset = NULL; /* (kv_dim) */
  gint64 kv_dim;

  if (p == NULL || strcmp (attn, p->attn) != 0 || n_tokens == 0)
    return TRUE;
  if (!slim_dynamic_cache_pending_shape (p, config, self->method, self->n_bins, error))
    return FALSE;
  kv_dim = p->n_kv_heads * p->head_dim;
  if (self->method != SLIM_QMETHOD_MINMAX)
    {
      /* AMCT's observers calibrate on the float model: k, v unchanged */
      if (self->batch_num > 0 && p->n_calls >= self->batch_num)
        return TRUE;
      p->n_calls++;
      if (self->method == SLIM_QMETHOD_IFMR)
        slim_dynamic_cache_keep_rows (p, k, v, n_tokens, kv_dim);
      else
        for (gint64 c = 0; c < kv_dim; c++)
          {
            slim_hfmg_histogram_update (&p->k_hist[c], k + c, n_tokens, kv_dim);
            slim_hfmg_histogram_update (&p->v_hist[c], v + c, n_tokens, kv_dim);
          }
      return TRUE;
    }
  slim_minmax_cols_update (k, n_tokens, kv_dim, p->k_min, p->k_max);
  slim_minmax_cols_update (v, n_tokens, kv_dim, p->v_min, p->v_max);
  p->n_calls++;
  scale = g_new (float, kv_dim);
  offset = g_new (float, kv_dim);
  slim_dynamic_cache_params (&self->cfg, p->k_min, p->k_max, kv_dim, scale, offset);
  slim_fake_quantize_cols (&self->cfg, k, n_tokens, kv_dim, scale, offset, k);
  slim_dynamic_cache_params (&self->cfg, p->v_min, p->v_max, kv_dim, scale, offset);
  slim_fake_quantize_cols (&self->cfg, v, n_tokens, kv_dim, scale, offset, v);
  return TRUE;
}

static void
slim_dynamic_cache_processor_get_forward_hooks (SlimProcessor *processor,
                                                SlimLayer *layer,
                                                SlimForwardHooks *hooks)
{
  SlimDynamicCacheProcessor *self = SLIM_DYNAMIC_CACHE_PROCESSOR (processor);

  if (self->pending == NULL)
    return;
  hooks->qkv_states = slim_dynamic_cache_qkv_states;
  hooks->user_data = self;
}

/* A (n) float32 tensor named for messages. */
static SlimTensor *
slim_dynamic_cache_vector (const char *attn, const char *what, gint64 n)
{
  g_autofree char *name = g_strconcat (attn, ".", what, NULL);
  return slim_tensor_new_1d (name, SLIM_DTYPE_F32, n);
}

/* ifmr / hfmg: the searched clip range per channel of k (which 0) or v
 * (1) into min/max (kv_dim); minmax: the running range is kept. */
static void
slim_dynamic_cache_search (SlimDynamicCacheProcessor *self,
                           SlimDynamicCachePending *p,
                           int which,
                           float *min, /* (kv_dim) out */
                           float *max /* (kv_dim) out */)
{
  gint64 kv_dim = p->n_kv_heads * p->head_dim;

  if (self->method == SLIM_QMETHOD_IFMR)
    {
      const float *rows = which == 0 ? p->k_rows : p->v_rows; /* (n_kept, kv_dim) */
      g_autofree float *col = g_new (float, p->n_kept);       /* (n_kept) */
      g_autofree float *work = g_new (float, 2 * p->n_kept);  /* (2 n_kept) */

      for (gint64 c = 0; c < kv_dim; c++)
        {
          for (gint64 t = 0; t < p->n_kept; t++)
            col[t] = rows[(gsize)t * (gsize)kv_dim + (gsize)c];
          slim_ifmr_search (&self->cfg, &self->ifmr_config, col, p->n_kept, work, &min[c], &max[c],
                            NULL);
        }
    }
  else if (self->method == SLIM_QMETHOD_HFMG)
    {
      SlimHfmgHistogram *hist = which == 0 ? p->k_hist : p->v_hist;
      for (gint64 c = 0; c < kv_dim; c++)
        if (hist[c].n_total > 0.0)
          slim_hfmg_search (&self->cfg, &hist[c], &min[c], &max[c], NULL);
        else
          min[c] = max[c] = 0.0f; /* no finite value seen: the eps scale */
    }
}

static gboolean
slim_dynamic_cache_processor_postprocess (SlimProcessor *processor,
                                          SlimLayer *layer,
                                          GError **error)
{
  SlimDynamicCacheProcessor *self = SLIM_DYNAMIC_CACHE_PROCESSOR (processor);
  SlimDynamicCachePending *p = self->pending;
  const SlimQAttention *old;
  g_autoptr (SlimQAttention) record = NULL;
  gint64 kv_dim;

  if (p == NULL)
    return TRUE;
  if (p->n_calls == 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s (dynamic_cache): no calibration sample reached this attention, so its "
                   "KV-cache scales cannot be computed",
                   p->attn);
      return FALSE;
    }
  old = slim_layer_get_qattention (layer, p->attn);
  if (old != NULL && old->kv_cache)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: the KV cache is already quantized by an earlier dynamic_cache", p->attn);
      return FALSE;
    }
  record = old != NULL ? slim_qattention_copy (old)
                       : slim_qattention_new (p->attn, p->n_heads, p->n_kv_heads, p->head_dim);
  kv_dim = p->n_kv_heads * p->head_dim;
  record->kv_cache = TRUE;
  record->kv_scheme = self->scheme;
  record->k_scale = slim_dynamic_cache_vector (p->attn, "k_proj.kv_cache_scale", kv_dim);
  record->k_offset = slim_dynamic_cache_vector (p->attn, "k_proj.kv_cache_offset", kv_dim);
  record->v_scale = slim_dynamic_cache_vector (p->attn, "v_proj.kv_cache_scale", kv_dim);
  record->v_offset = slim_dynamic_cache_vector (p->attn, "v_proj.kv_cache_offset", kv_dim);
  slim_dynamic_cache_search (self, p, 0, p->k_min, p->k_max);
  slim_dynamic_cache_search (self, p, 1, p->v_min, p->v_max);
  slim_dynamic_cache_params (&self->cfg, p->k_min, p->k_max, kv_dim,
                             slim_tensor_get_data_mut (record->k_scale),
                             slim_tensor_get_data_mut (record->k_offset));
  slim_dynamic_cache_params (&self->cfg, p->v_min, p->v_max, kv_dim,
                             slim_tensor_get_data_mut (record->v_scale),
                             slim_tensor_get_data_mut (record->v_offset));
  if (!slim_qattention_check (record, error))
    return FALSE;
  g_debug ("%s: C8 KV cache over %" G_GINT64_FORMAT " calibration samples", p->attn, p->n_calls);
  slim_layer_set_qattention (layer, g_steal_pointer (&record));
  g_clear_pointer (&self->pending, slim_dynamic_cache_pending_free);
  return TRUE;
}

static void
slim_dynamic_cache_processor_finalize (GObject *object)
{
  SlimDynamicCacheProcessor *self = SLIM_DYNAMIC_CACHE_PROCESSOR (object);

  g_clear_pointer (&self->pending, slim_dynamic_cache_pending_free);
  G_OBJECT_CLASS (slim_dynamic_cache_processor_parent_class)->finalize (object);
}

static void
slim_dynamic_cache_processor_class_init (SlimDynamicCacheProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_dynamic_cache_processor_finalize;
  processor_class->validate = slim_dynamic_cache_processor_validate;
  processor_class->preprocess = slim_dynamic_cache_processor_preprocess;
  processor_class->get_forward_hooks = slim_dynamic_cache_processor_get_forward_hooks;
  processor_class->postprocess = slim_dynamic_cache_processor_postprocess;
  SLIM_PROPERTIES_INSTALL (klass, slim_dynamic_cache_properties);
}

static void
slim_dynamic_cache_processor_init (SlimDynamicCacheProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    dynamic_cache,
                    SLIM_PLUGIN_NO_ALIASES,
                    "KV-cache int8 quantization per channel (msModelSlim dynamic_cache: C8)",
                    slim_dynamic_cache_processor_get_type)
