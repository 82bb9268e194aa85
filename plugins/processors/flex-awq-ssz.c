/* SPDX-License-Identifier: Apache-2.0
 *
 * flex-awq-ssz.c: msModelSlim's `flex_awq_ssz` processor
 * (modelslim-v1-spec.md 2.6; msModelSlim processor/anti_outlier/
 * flex_smooth/, FlexAWQSSZProcessor), in flex_smooth_quant's module
 * (slim-processor-flex_awq_ssz.so links to it):
 *
 *   type: flex_awq_ssz
 *   qconfig: {act: ..., weight: ...}   the quantizer the search runs (required)
 *   alpha: 0.5        in (0, 1); absent: searched
 *   beta: ...         accepted and unused: flex_awq_ssz fixes beta at 0
 *   enable_subgraph_type: [norm-linear, linear-linear, ov, up-down]
 *   include: ["*"]
 *   exclude: []
 *
 * Per subgraph s = clamp (mean_t |x_tj|^alpha, 1e-5), the mean of |x| at
 * targets[0]'s input over every calibration token.  With alpha absent it
 * is searched over {0, 0.05, ..., 1} (slim-flex-awq-ssz.h): each alpha
 * scored by the relative RMS error of the qconfig's deployed quantizer on
 * X / max|X|^alpha and W * max|X|^alpha against X W^T, on the layer's
 * calibration inputs (kept as flex_smooth_quant keeps them).  The searched
 * linear is the consumer (down_proj, o_proj, linear2); for norm-linear the
 * norm's linears stacked, only the first two when there are more than
 * three (msModelSlim's rule).  ov scales follow msModelSlim's max rule
 * (group maxima of the means, then ^alpha); the base class fuses them as
 * the mean of each group's (equal) scales, exact for power-of-two groups,
 * within one float rounding otherwise.
 *
 * qconfig: the search emulates msModelSlim's dynamic IRs only: act int8
 * per_token symmetric minmax, weight int4 or int8 per_channel symmetric,
 * minmax or ssz (ext.step); other schemes are refused at validate.  The
 * fused weights stay float: put linear_quant with the same qconfig after.
 */
#include "slim-plugin.h"

#include <math.h>
#include "flex-kept.h"

#define SLIM_TYPE_FLEX_AWQ_SSZ_PROCESSOR (slim_flex_awq_ssz_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimFlexAwqSszProcessor,
                      slim_flex_awq_ssz_processor,
                      SLIM,
                      FLEX_AWQ_SSZ_PROCESSOR,
                      SlimSmoothProcessor)

/* Sums of |x| of one targets[0] input. */
typedef struct
{
  gint64 n_in;
  gint64 n_tokens;
  double *sum; /* [n_in] */
} SlimFlexAbsSum;

struct _SlimFlexAwqSszProcessor
{
  SlimSmoothProcessor parent_instance;
  SlimLinearQConfig *qconfig;
  double alpha;
  double beta;
  char **enable_subgraph_type;

  guint types;
  gboolean parsed;
  SlimFlexAwqWeightQuant quant;
  SlimFlexKept *kept; /* targets[0]'s inputs of the layer (search) */
  GHashTable *sums;   /* targets[0] -> SlimFlexAbsSum* */
};

/* clang-format off */
static const SlimPropertyDecl slim_flex_awq_ssz_properties[] = {
  SLIM_PROPERTY_OBJECT (SlimFlexAwqSszProcessor, qconfig, "qconfig", "Quantization",
                        "The quantizer the alpha search runs, as linear_quant's qconfig: act int8 "
                        "per_token symmetric minmax, weight int4 or int8 per_channel symmetric "
                        "minmax or ssz.",
                        slim_linear_qconfig_get_type, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_DOUBLE (SlimFlexAwqSszProcessor, alpha, "alpha", "Alpha",
                        "Exponent of the activation means; strictly between 0 and 1; absent (0): "
                        "searched.",
                        0.0, 1.0, 0.0),
  SLIM_PROPERTY_DOUBLE (SlimFlexAwqSszProcessor, beta, "beta", "Beta",
                        "Accepted as msModelSlim does and unused: flex_awq_ssz fixes beta at 0.",
                        0.0, 1.0, 0.0),
  SLIM_PROPERTY_STRV (SlimFlexAwqSszProcessor, enable_subgraph_type, "enable-subgraph-type",
                      "Subgraph types",
                      "Subgraph kinds to smooth: norm-linear, linear-linear, ov, up-down.",
                      SLIM_STRV ("norm-linear", "linear-linear", "ov", "up-down")),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimFlexAwqSszProcessor,
                     slim_flex_awq_ssz_processor,
                     SLIM_TYPE_SMOOTH_PROCESSOR)

static void
slim_flex_abs_sum_free (SlimFlexAbsSum *sum)
{
  g_free (sum->sum);
  g_free (sum);
}

static gboolean
qconfig_error (const char *what, GError **error)
{
  g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
               "flex_awq_ssz: qconfig %s is not supported; the search emulates msModelSlim's "
               "dynamic IRs: act {dtype: int8, scope: per_token, symmetric: true, method: minmax}, "
               "weight {dtype: int4 or int8, scope: per_channel, symmetric: true, method: minmax "
               "or ssz}",
               what);
  return FALSE;
}

static gboolean
slim_flex_awq_ssz_processor_parse (SlimFlexAwqSszProcessor *self, GError **error)
{
  SlimQConfig *act, *weight;
  SlimQScheme as, ws;
  SlimQMethod am, wm;
  SlimQConfigExt *ext;

  if (self->parsed)
    return TRUE;
  if (!slim_smooth_parse_subgraph_types ((const char *const *)self->enable_subgraph_type,
                                         "flex_awq_ssz: enable_subgraph_type", &self->types, error))
    return FALSE;
  if (self->qconfig == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "flex_awq_ssz: missing required key 'qconfig'");
      return FALSE;
    }
  act = slim_linear_qconfig_get_act (self->qconfig);
  weight = slim_linear_qconfig_get_weight (self->qconfig);
  if (act == NULL || weight == NULL)
    return qconfig_error ("without act or weight", error);
  as = slim_qconfig_get_scheme (act);
  ws = slim_qconfig_get_scheme (weight);
  am = slim_qconfig_get_method (act);
  wm = slim_qconfig_get_method (weight);
  if (as.dtype != SLIM_QDTYPE_INT8 || as.scope != SLIM_QSCOPE_PER_TOKEN || !as.symmetric
      || am != SLIM_QMETHOD_MINMAX)
    {
      g_autofree char *got = slim_qscheme_to_string (&as);
      g_autofree char *what = g_strdup_printf ("act %s method %s", got, slim_qmethod_get_nick (am));
      return qconfig_error (what, error);
    }
  if ((ws.dtype != SLIM_QDTYPE_INT8 && ws.dtype != SLIM_QDTYPE_INT4)
      || ws.scope != SLIM_QSCOPE_PER_CHANNEL || !ws.symmetric
      || (wm != SLIM_QMETHOD_MINMAX && wm != SLIM_QMETHOD_SSZ))
    {
      g_autofree char *got = slim_qscheme_to_string (&ws);
      g_autofree char *what
          = g_strdup_printf ("weight %s method %s", got, slim_qmethod_get_nick (wm));
      return qconfig_error (what, error);
    }
  ext = slim_qconfig_get_ext (weight);
  if (!slim_qparams_config_init (&self->quant.qparams, ws.dtype, TRUE, 0, error))
    {
      g_prefix_error (error, "flex_awq_ssz: qconfig.weight: ");
      return FALSE;
    }
  self->quant.ssz = wm == SLIM_QMETHOD_SSZ;
  slim_ssz_config_init (&self->quant.ssz_cfg, &self->quant.qparams);
  if (ext != NULL && slim_qconfig_ext_get_step (ext) > 0)
    self->quant.ssz_cfg.step = slim_qconfig_ext_get_step (ext);
  if (self->beta != 0.0)
    g_warning ("flex_awq_ssz: beta = %g is unused: flex_awq_ssz fixes beta at 0 (as msModelSlim)",
               self->beta);
  self->parsed = TRUE;
  return TRUE;
}

static gboolean
slim_flex_awq_ssz_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimFlexAwqSszProcessor *self = SLIM_FLEX_AWQ_SSZ_PROCESSOR (processor);

  if ((self->alpha != 0.0
       && !slim_smooth_check_open_unit ("flex_awq_ssz", "alpha", self->alpha, error))
      || (self->beta != 0.0
          && !slim_smooth_check_open_unit ("flex_awq_ssz", "beta", self->beta, error))
      || !slim_flex_awq_ssz_processor_parse (self, error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_flex_awq_ssz_processor_parent_class)
      ->validate (processor, error);
}

static gboolean
slim_flex_awq_ssz_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  if (!slim_flex_awq_ssz_processor_parse (SLIM_FLEX_AWQ_SSZ_PROCESSOR (processor), error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_flex_awq_ssz_processor_parent_class)
      ->pre_run (processor, model, error);
}

static gboolean
slim_flex_awq_ssz_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimFlexAwqSszProcessor *self = SLIM_FLEX_AWQ_SSZ_PROCESSOR (processor);

  g_hash_table_remove_all (self->sums);
  if (!slim_flex_kept_clear (self->kept, error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_flex_awq_ssz_processor_parent_class)
      ->preprocess (processor, layer, error);
}

static gboolean
slim_flex_awq_ssz_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimFlexAwqSszProcessor *self = SLIM_FLEX_AWQ_SSZ_PROCESSOR (processor);
  gboolean ok = SLIM_PROCESSOR_CLASS (slim_flex_awq_ssz_processor_parent_class)
                    ->postprocess (processor, layer, error);

  g_hash_table_remove_all (self->sums);
  if (!slim_flex_kept_clear (self->kept, ok ? error : NULL))
    ok = FALSE;
  return ok;
}

static void
slim_flex_awq_ssz_processor_get_params (SlimSmoothProcessor *processor, SlimSmoothParams *params)
{
  SlimFlexAwqSszProcessor *self = SLIM_FLEX_AWQ_SSZ_PROCESSOR (processor);

  params->subgraph_types = self->types;
  params->symmetric = TRUE;
  params->abs_consumer_max = TRUE; /* unused: search_scales gives the scales */
}

static gboolean
slim_flex_awq_ssz_processor_observe_input (SlimSmoothProcessor *processor,
                                           const SlimSubgraph *subgraph,
                                           const float *x,
                                           gint64 n_tokens,
                                           gint64 n_in,
                                           GError **error)
{
  SlimFlexAwqSszProcessor *self = SLIM_FLEX_AWQ_SSZ_PROCESSOR (processor);
  SlimFlexAbsSum *sum = g_hash_table_lookup (self->sums, subgraph->targets[0]);

  if (n_tokens <= 0)
    return TRUE;
  if (sum == NULL)
    {
      sum = g_new0 (SlimFlexAbsSum, 1);
      sum->n_in = n_in;
      sum->sum = g_new0 (double, n_in);
      g_hash_table_insert (self->sums, g_strdup (subgraph->targets[0]), sum);
    }
  else if (sum->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "flex_awq_ssz: the input of %s has %" G_GINT64_FORMAT
                   " channels, earlier %" G_GINT64_FORMAT,
                   subgraph->targets[0], n_in, sum->n_in);
      return FALSE;
    }
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 j = 0; j < n_in; j++)
      sum->sum[j] += fabs ((double)x[t * n_in + j]);
  sum->n_tokens += n_tokens;
  if (self->alpha != 0.0)
    return TRUE; /* a fixed alpha needs the means only */
  return slim_flex_kept_add (self->kept, subgraph->targets[0], x, n_tokens, n_in, error);
}

/* What scoring one alpha needs. */
typedef struct
{
  SlimFlexAwqSszProcessor *self;
  const char *module; /* targets[0] */
  guint n_chunks;
  const SlimSmoothStats *stats;
  const float *ones; /* [n] */
  gint64 n;
  GPtrArray *blocks; /* (SlimTensor*) [n_out_k, n] */
  GPtrArray *wdq;    /* (float*) [n_out_k, n] */
  float *s;          /* [n] */
  float *col;        /* [n] */
} SlimFlexAwqEval;

static gboolean
slim_flex_awq_eval (double alpha, double beta, float *out_error, gpointer user_data, GError **error)
{
  SlimFlexAwqEval *ev = user_data;
  double err_sq = 0.0, ref_sq = 0.0;

  slim_flex_candidate_scales (ev->stats->smooth, ev->ones, ev->n, alpha, beta, ev->s);
  slim_flex_awq_act_scales (ev->stats->min, ev->stats->max, ev->s, ev->n, ev->col);
  for (guint b = 0; b < ev->blocks->len; b++)
    {
      SlimTensor *w = g_ptr_array_index (ev->blocks, b);
      if (!slim_flex_awq_candidate_weight (&ev->self->quant, slim_tensor_get_data (w),
                                           slim_tensor_get_dim (w, 0), ev->n, ev->s,
                                           g_ptr_array_index (ev->wdq, b), error))
        {
          g_prefix_error (error, "flex_awq_ssz: %s: ", slim_tensor_get_name (w));
          return FALSE;
        }
    }
  for (guint i = 0; i < ev->n_chunks; i++)
    {
      g_autoptr (SlimTensor) x = slim_flex_kept_get (ev->self->kept, ev->module, i, error);

      if (x == NULL)
        return FALSE;
      for (guint b = 0; b < ev->blocks->len; b++)
        {
          SlimTensor *w = g_ptr_array_index (ev->blocks, b);
          if (!slim_flex_awq_accumulate_error (
                  slim_tensor_get_data (x), slim_tensor_get_dim (x, 0), ev->n,
                  slim_tensor_get_data (w), g_ptr_array_index (ev->wdq, b),
                  slim_tensor_get_dim (w, 0), ev->s, ev->col, &err_sq, &ref_sq))
            {
              g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                           "flex_awq_ssz: out of memory scoring a candidate");
              return FALSE;
            }
        }
    }
  *out_error = slim_flex_error (err_sq, ref_sq);
  return TRUE;
}

static gboolean
slim_flex_awq_ssz_processor_search_scales (SlimSmoothProcessor *processor,
                                           SlimLayer *layer,
                                           const SlimSubgraph *subgraph,
                                           const SlimSmoothStats *stats,
                                           float *scales,
                                           GError **error)
{
  SlimFlexAwqSszProcessor *self = SLIM_FLEX_AWQ_SSZ_PROCESSOR (processor);
  const gint64 n = stats->n_channels;
  SlimFlexAbsSum *sum = g_hash_table_lookup (self->sums, subgraph->targets[0]);
  guint n_blocks = 1;
  g_autoptr (GPtrArray) blocks = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  g_autoptr (GPtrArray) wdq = g_ptr_array_new_with_free_func (g_free);
  g_autofree float *mean = g_new (float, n);  /* [n] */
  g_autofree float *ones = g_new (float, n);  /* [n] */
  g_autofree float *w_max = g_new (float, n); /* [n] */
  double alpha = self->alpha;

  if (sum == NULL || sum->n_tokens == 0 || sum->n_in != n)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "flex_awq_ssz: no activation means of %s", subgraph->targets[0]);
      return FALSE;
    }
  for (gint64 j = 0; j < n; j++)
    {
      mean[j] = (float)(sum->sum[j] / (double)sum->n_tokens);
      ones[j] = 1.0f;
    }
  if (subgraph->type == SLIM_SUBGRAPH_NORM_LINEAR)
    {
      n_blocks = g_strv_length (subgraph->targets);
      if (n_blocks > 3)
        n_blocks = 2; /* msModelSlim calibrates on the first two only */
    }
  for (guint k = 0; k < n_blocks; k++)
    {
      g_autofree char *name = g_strconcat (subgraph->targets[k], ".weight", NULL);
      SlimTensor *w = slim_layer_require_tensor (layer, name, error);

      if (w == NULL)
        return FALSE;
      if (slim_tensor_get_dtype (w) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (w) != 2
          || slim_tensor_get_dim (w, 1) != n)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "flex_awq_ssz: %s is not a float32 matrix taking the %" G_GINT64_FORMAT
                       " channels of %s's input",
                       name, n, subgraph->targets[0]);
          return FALSE;
        }
      slim_smooth_weight_column_max (slim_tensor_get_data (w), slim_tensor_get_dim (w, 0), n, TRUE,
                                     k > 0, w_max);
      g_ptr_array_add (blocks, slim_tensor_ref (w));
    }
  if (self->alpha == 0.0)
    {
      g_autofree float *s = g_new (float, n);   /* [n] */
      g_autofree float *col = g_new (float, n); /* [n] */
      gint64 kept_n_in = 0;
      const guint n_chunks
          = slim_flex_kept_get_n_chunks (self->kept, subgraph->targets[0], &kept_n_in);
      SlimFlexAwqEval ev
          = { self, subgraph->targets[0], n_chunks, stats, ones, n, blocks, wdq, s, col };
      float best = 0.0f;

      if (n_chunks == 0 || kept_n_in != n)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                       "flex_awq_ssz: no kept inputs of %s", subgraph->targets[0]);
          return FALSE;
        }
      for (guint k = 0; k < n_blocks; k++)
        {
          SlimTensor *w = g_ptr_array_index (blocks, k);
          float *buf = g_try_new (float, slim_tensor_get_dim (w, 0) * n); /* [n_out_k, n] */
          if (buf == NULL)
            {
              g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                           "flex_awq_ssz: out of memory for the candidate weights of %s",
                           subgraph->targets[k]);
              return FALSE;
            }
          g_ptr_array_add (wdq, buf);
        }
      if (!slim_flex_awq_search_alpha (slim_flex_awq_eval, &ev, &alpha, &best, NULL, error))
        return FALSE;
      g_debug ("flex_awq_ssz: %s subgraph %s: alpha %.2f (error %g)",
               slim_smooth_subgraph_type_name (subgraph->type), subgraph->targets[0], alpha,
               (double)best);
    }
  if (subgraph->type == SLIM_SUBGRAPH_OV)
    {
      /* the max rule: group maxima of the means (and of |W|, to the power
       * 0), then ^alpha; returned repeated per query head */
      const SlimModelConfig *config
          = slim_model_get_config (slim_smooth_processor_get_model (processor));
      const gint64 heads = config->n_heads, kv = config->n_kv_heads, hd = config->head_dim;
      g_autofree float *v = NULL;

      if (heads <= 0 || kv <= 0 || heads % kv != 0 || heads * hd != n)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "flex_awq_ssz: %s's input width does not match the heads of config.json",
                       subgraph->targets[0]);
          return FALSE;
        }
      for (gint64 j = 0; j < n; j++)
        w_max[j] = w_max[j] < 1e-5f ? 1e-5f : w_max[j];
      v = g_new (float, kv *hd); /* [n_kv_heads * head_dim] */
      slim_smooth_gqa_scales_max (mean, w_max, heads, kv, hd, alpha, 0.0, scales, v);
      return TRUE;
    }
  /* FlexAWQSSZScaleCalculator: mean^alpha / w^0, clamped to 1e-5 */
  slim_smooth_scales (mean, ones, n, alpha, 0.0, 1e-5f, 1e-5f, scales);
  return TRUE;
}

static gboolean
slim_flex_awq_ssz_processor_supports_distributed (SlimProcessor *processor)
{
  /* the means and the kept inputs are per worker and not reduced here
   * (msModelSlim all-gathers the inputs) */
  return FALSE;
}

static void
slim_flex_awq_ssz_processor_finalize (GObject *object)
{
  SlimFlexAwqSszProcessor *self = SLIM_FLEX_AWQ_SSZ_PROCESSOR (object);

  g_clear_pointer (&self->kept, slim_flex_kept_free);
  g_hash_table_unref (self->sums);
  G_OBJECT_CLASS (slim_flex_awq_ssz_processor_parent_class)->finalize (object);
}

static void
slim_flex_awq_ssz_processor_class_init (SlimFlexAwqSszProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimSmoothProcessorClass *smooth_class = SLIM_SMOOTH_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_flex_awq_ssz_processor_finalize;
  processor_class->validate = slim_flex_awq_ssz_processor_validate;
  processor_class->pre_run = slim_flex_awq_ssz_processor_pre_run;
  processor_class->preprocess = slim_flex_awq_ssz_processor_preprocess;
  processor_class->postprocess = slim_flex_awq_ssz_processor_postprocess;
  processor_class->supports_distributed = slim_flex_awq_ssz_processor_supports_distributed;
  smooth_class->get_params = slim_flex_awq_ssz_processor_get_params;
  smooth_class->observe_input = slim_flex_awq_ssz_processor_observe_input;
  smooth_class->search_scales = slim_flex_awq_ssz_processor_search_scales;
  SLIM_PROPERTIES_INSTALL (klass, slim_flex_awq_ssz_properties);
}

static void
slim_flex_awq_ssz_processor_init (SlimFlexAwqSszProcessor *self)
{
  self->kept = slim_flex_kept_new (SLIM_PROCESSOR (self), "flex_awq_ssz");
  self->sums = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)slim_flex_abs_sum_free);
}

SLIM_PLUGIN_DEFINE (processor,
                    flex_awq_ssz,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Flex AWQ-SSZ outlier suppression: scales mean|x|^alpha, alpha searched with "
                    "the qconfig's deployed quantizer (msModelSlim flex_awq_ssz)",
                    slim_flex_awq_ssz_processor_get_type)
