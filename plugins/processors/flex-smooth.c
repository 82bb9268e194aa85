/* SPDX-License-Identifier: Apache-2.0
 *
 * flex-smooth.c: msModelSlim's `flex_smooth_quant` processor, also
 * registered as `flex_smooth` (modelslim-v1-spec.md 2.6; msModelSlim
 * processor/anti_outlier/flex_smooth/):
 *
 *   type: flex_smooth_quant
 *   alpha: 0.6        activation exponent, in (0, 1); absent: searched
 *   beta: 0.4         weight exponent, in (0, 1); absent: searched
 *   enable_subgraph_type: [norm-linear, linear-linear, ov, up-down]
 *   include: ["*"]    patterns over each subgraph's key module
 *   exclude: []
 *
 * Per subgraph s = max (A^alpha / max (W, 1e-5)^beta, 1e-5), A the
 * per-channel maximum of |x| at targets[0]'s input over every calibration
 * token, W the column maximum of |W| over the consumers (every linear of
 * a norm for norm-linear; o_proj, down_proj, linear2 otherwise); ov scales
 * are averaged over the query heads of each kv head (msModelSlim's
 * default `mean` group rule).  Fusion is slim-smooth-processor.h's.
 *
 * When alpha or beta is absent (msModelSlim: either None), both are
 * searched (slim-flex-smooth.h) on the layer's calibration inputs of
 * targets[0], kept whole for the layer: stage 1 alpha over {0, 0.05, ...,
 * 1} with beta = 1 - alpha, stage 2 beta over the same grid at the best
 * alpha, each candidate scored by the relative RMS error of int8
 * fake-quantized X / s times int8 fake-quantized W * s against X W^T;
 * ties go to the later grid point.  A given alpha or beta is then unused,
 * as in msModelSlim (a warning says so).  The kept inputs stay in RAM up
 * to the processor's keep budget (a third of --max_memory) and go to the
 * run's spill store beyond it; they are freed after the layer.
 *
 * Differences from msModelSlim: `alpha: 0` and `beta: 0` (which its
 * validator refuses) read as absent, the value of an absent property.
 * The `max` group rule msModelSlim's Qwen3 adapter asks for
 * (extra_config group_method) is not wired: slimflow's subgraphs carry no
 * extra config, so every ov subgraph takes the mean rule.  Non-fusion
 * subgraphs (no source) are not smoothed (the base class's error).
 * Put it before linear_quant.
 */
#include "slim-plugin.h"

#include "flex-kept.h"

#define SLIM_TYPE_FLEX_SMOOTH_PROCESSOR (slim_flex_smooth_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimFlexSmoothProcessor,
                      slim_flex_smooth_processor,
                      SLIM,
                      FLEX_SMOOTH_PROCESSOR,
                      SlimSmoothProcessor)

struct _SlimFlexSmoothProcessor
{
  SlimSmoothProcessor parent_instance;
  double alpha;
  double beta;
  char **enable_subgraph_type;

  guint types; /* parsed enable_subgraph_type, set by validate */
  gboolean parsed;
  gboolean search;    /* alpha or beta absent */
  SlimFlexKept *kept; /* targets[0]'s inputs of the layer (search) */
};

/* clang-format off */
static const SlimPropertyDecl slim_flex_smooth_properties[] = {
  SLIM_PROPERTY_DOUBLE (SlimFlexSmoothProcessor, alpha, "alpha", "Alpha",
                        "Activation exponent: scales are A^alpha / W^beta; strictly between 0 and "
                        "1; absent (0): alpha and beta are searched.",
                        0.0, 1.0, 0.0),
  SLIM_PROPERTY_DOUBLE (SlimFlexSmoothProcessor, beta, "beta", "Beta",
                        "Weight exponent: scales are A^alpha / W^beta; strictly between 0 and 1; "
                        "absent (0): alpha and beta are searched.",
                        0.0, 1.0, 0.0),
  SLIM_PROPERTY_STRV (SlimFlexSmoothProcessor, enable_subgraph_type, "enable-subgraph-type",
                      "Subgraph types",
                      "Subgraph kinds to smooth: norm-linear, linear-linear, ov, up-down.",
                      SLIM_STRV ("norm-linear", "linear-linear", "ov", "up-down")),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimFlexSmoothProcessor,
                     slim_flex_smooth_processor,
                     SLIM_TYPE_SMOOTH_PROCESSOR)

static gboolean
slim_flex_smooth_processor_parse (SlimFlexSmoothProcessor *self, GError **error)
{
  if (self->parsed)
    return TRUE;
  if (!slim_smooth_parse_subgraph_types ((const char *const *)self->enable_subgraph_type,
                                         "flex_smooth_quant: enable_subgraph_type", &self->types,
                                         error))
    return FALSE;
  self->search = self->alpha == 0.0 || self->beta == 0.0;
  if (self->search && (self->alpha != 0.0 || self->beta != 0.0))
    g_warning ("flex_smooth_quant: only %s is given: alpha and beta are both searched and "
               "%s = %g is unused (msModelSlim does the same); give both to fix them",
               self->alpha != 0.0 ? "alpha" : "beta", self->alpha != 0.0 ? "alpha" : "beta",
               self->alpha != 0.0 ? self->alpha : self->beta);
  self->parsed = TRUE;
  return TRUE;
}

static gboolean
slim_flex_smooth_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimFlexSmoothProcessor *self = SLIM_FLEX_SMOOTH_PROCESSOR (processor);

  if ((self->alpha != 0.0
       && !slim_smooth_check_open_unit ("flex_smooth_quant", "alpha", self->alpha, error))
      || (self->beta != 0.0
          && !slim_smooth_check_open_unit ("flex_smooth_quant", "beta", self->beta, error))
      || !slim_flex_smooth_processor_parse (self, error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_flex_smooth_processor_parent_class)
      ->validate (processor, error);
}

static gboolean
slim_flex_smooth_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  if (!slim_flex_smooth_processor_parse (SLIM_FLEX_SMOOTH_PROCESSOR (processor), error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_flex_smooth_processor_parent_class)
      ->pre_run (processor, model, error);
}

static gboolean
slim_flex_smooth_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  if (!slim_flex_kept_clear (SLIM_FLEX_SMOOTH_PROCESSOR (processor)->kept, error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_flex_smooth_processor_parent_class)
      ->preprocess (processor, layer, error);
}

static gboolean
slim_flex_smooth_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimFlexSmoothProcessor *self = SLIM_FLEX_SMOOTH_PROCESSOR (processor);
  gboolean ok = SLIM_PROCESSOR_CLASS (slim_flex_smooth_processor_parent_class)
                    ->postprocess (processor, layer, error);

  /* free the kept inputs even after a failure; report the first error */
  if (!slim_flex_kept_clear (self->kept, ok ? error : NULL))
    ok = FALSE;
  return ok;
}

static void
slim_flex_smooth_processor_get_params (SlimSmoothProcessor *processor, SlimSmoothParams *params)
{
  SlimFlexSmoothProcessor *self = SLIM_FLEX_SMOOTH_PROCESSOR (processor);

  params->subgraph_types = self->types; /* 0 before validate/pre_run: nothing kept */
  params->symmetric = TRUE;             /* no shift: flex only rescales */
  params->abs_consumer_max = TRUE;      /* unused: search_scales gives the scales */
}

/* ---- kept inputs --------------------------------------------------------- */

static gboolean
slim_flex_smooth_processor_observe_input (SlimSmoothProcessor *processor,
                                          const SlimSubgraph *subgraph,
                                          const float *x,
                                          gint64 n_tokens,
                                          gint64 n_in,
                                          GError **error)
{
  SlimFlexSmoothProcessor *self = SLIM_FLEX_SMOOTH_PROCESSOR (processor);

  if (!self->search)
    return TRUE; /* fixed alpha and beta need the statistics only */
  return slim_flex_kept_add (self->kept, subgraph->targets[0], x, n_tokens, n_in, error);
}

/* ---- the search ---------------------------------------------------------- */

/* The consumer weights of a subgraph: every target of norm-linear (the
 * rows msModelSlim concatenates), targets[0] otherwise. */
typedef struct
{
  SlimFlexKept *kept;
  const char *module; /* targets[0] */
  guint n_chunks;
  const float *act_max; /* [n_in] */
  const float *w_max;   /* [n_in] column max |W| over the blocks, unclamped */
  gint64 n_in;
  GPtrArray *blocks; /* (SlimTensor*) [n_out_k, n_in] each */
  float *scales;     /* [n_in] candidate scales */
  GPtrArray *wq;     /* (float*) [n_out_k, n_in] candidate weights */
} SlimFlexEval;

static gboolean
slim_flex_eval (double alpha, double beta, float *out_error, gpointer user_data, GError **error)
{
  SlimFlexEval *ev = user_data;
  double err_sq = 0.0, ref_sq = 0.0;

  slim_flex_candidate_scales (ev->act_max, ev->w_max, ev->n_in, alpha, beta, ev->scales);
  for (guint b = 0; b < ev->blocks->len; b++)
    {
      SlimTensor *w = g_ptr_array_index (ev->blocks, b);
      slim_flex_candidate_weight (slim_tensor_get_data (w), slim_tensor_get_dim (w, 0), ev->n_in,
                                  ev->scales, g_ptr_array_index (ev->wq, b));
    }
  /* each chunk read once per candidate, against every block */
  for (guint i = 0; i < ev->n_chunks; i++)
    {
      g_autoptr (SlimTensor) x = slim_flex_kept_get (ev->kept, ev->module, i, error);

      if (x == NULL)
        return FALSE;
      for (guint b = 0; b < ev->blocks->len; b++)
        {
          SlimTensor *w = g_ptr_array_index (ev->blocks, b);
          if (!slim_flex_accumulate_error (
                  slim_tensor_get_data (x), slim_tensor_get_dim (x, 0), ev->n_in,
                  slim_tensor_get_data (w), g_ptr_array_index (ev->wq, b),
                  slim_tensor_get_dim (w, 0), ev->scales, &err_sq, &ref_sq))
            {
              g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                           "flex_smooth_quant: out of memory scoring a candidate");
              return FALSE;
            }
        }
    }
  *out_error = slim_flex_error (err_sq, ref_sq);
  return TRUE;
}

static gboolean
slim_flex_smooth_processor_search_scales (SlimSmoothProcessor *processor,
                                          SlimLayer *layer,
                                          const SlimSubgraph *subgraph,
                                          const SlimSmoothStats *stats,
                                          float *scales,
                                          GError **error)
{
  SlimFlexSmoothProcessor *self = SLIM_FLEX_SMOOTH_PROCESSOR (processor);
  const gint64 n = stats->n_channels;
  const guint n_blocks
      = subgraph->type == SLIM_SUBGRAPH_NORM_LINEAR ? g_strv_length (subgraph->targets) : 1;
  g_autoptr (GPtrArray) blocks = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  g_autoptr (GPtrArray) wq = g_ptr_array_new_with_free_func (g_free);
  g_autofree float *w_max = g_new (float, n); /* [n] */
  g_autofree float *cand = g_new (float, n);  /* [n] */
  double alpha = self->alpha, beta = self->beta;

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
                       "flex_smooth_quant: %s is not a float32 matrix taking the %" G_GINT64_FORMAT
                       " channels of %s's input",
                       name, n, subgraph->targets[0]);
          return FALSE;
        }
      slim_smooth_weight_column_max (slim_tensor_get_data (w), slim_tensor_get_dim (w, 0), n, TRUE,
                                     k > 0, w_max);
      g_ptr_array_add (blocks, slim_tensor_ref (w));
    }
  if (self->search)
    {
      gint64 kept_n_in = 0;
      const guint n_chunks
          = slim_flex_kept_get_n_chunks (self->kept, subgraph->targets[0], &kept_n_in);
      SlimFlexEval ev = {
        self->kept, subgraph->targets[0], n_chunks, stats->smooth, w_max, n, blocks, cand, wq
      };
      float best = 0.0f;

      if (n_chunks == 0 || kept_n_in != n)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                       "flex_smooth_quant: no kept inputs of %s", subgraph->targets[0]);
          return FALSE;
        }
      for (guint k = 0; k < n_blocks; k++)
        {
          SlimTensor *w = g_ptr_array_index (blocks, k);
          float *buf = g_try_new (float, slim_tensor_get_dim (w, 0) * n); /* [n_out_k, n] */
          if (buf == NULL)
            {
              g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY,
                           "flex_smooth_quant: out of memory for the candidate weights of %s",
                           subgraph->targets[k]);
              return FALSE;
            }
          g_ptr_array_add (wq, buf);
        }
      if (!slim_flex_search_alpha_beta (slim_flex_eval, &ev, &alpha, &beta, &best, NULL, NULL,
                                        error))
        return FALSE;
      g_debug ("flex_smooth_quant: %s subgraph %s: alpha %.2f beta %.2f (error %g)",
               slim_smooth_subgraph_type_name (subgraph->type), subgraph->targets[0], alpha, beta,
               (double)best);
    }
  /* compute_weight_scale: the column maximum clamped to 1e-5; the
   * scales clamped to 1e-5 */
  slim_smooth_scales (stats->smooth, w_max, n, alpha, beta, 1e-5f, 1e-5f, scales);
  return TRUE;
}

static gboolean
slim_flex_smooth_processor_supports_distributed (SlimProcessor *processor)
{
  /* fixed alpha and beta need per-channel maxima only, which reduce across
   * workers; the search needs every worker's inputs, which slimflow does
   * not gather (msModelSlim all-gathers them) */
  SlimFlexSmoothProcessor *self = SLIM_FLEX_SMOOTH_PROCESSOR (processor);

  return self->alpha != 0.0 && self->beta != 0.0;
}

static void
slim_flex_smooth_processor_finalize (GObject *object)
{
  SlimFlexSmoothProcessor *self = SLIM_FLEX_SMOOTH_PROCESSOR (object);

  g_clear_pointer (&self->kept, slim_flex_kept_free);
  G_OBJECT_CLASS (slim_flex_smooth_processor_parent_class)->finalize (object);
}

static void
slim_flex_smooth_processor_class_init (SlimFlexSmoothProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimSmoothProcessorClass *smooth_class = SLIM_SMOOTH_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_flex_smooth_processor_finalize;
  processor_class->validate = slim_flex_smooth_processor_validate;
  processor_class->pre_run = slim_flex_smooth_processor_pre_run;
  processor_class->preprocess = slim_flex_smooth_processor_preprocess;
  processor_class->postprocess = slim_flex_smooth_processor_postprocess;
  processor_class->supports_distributed = slim_flex_smooth_processor_supports_distributed;
  smooth_class->get_params = slim_flex_smooth_processor_get_params;
  smooth_class->observe_input = slim_flex_smooth_processor_observe_input;
  smooth_class->search_scales = slim_flex_smooth_processor_search_scales;
  SLIM_PROPERTIES_INSTALL (klass, slim_flex_smooth_properties);
}

static void
slim_flex_smooth_processor_init (SlimFlexSmoothProcessor *self)
{
  self->kept = slim_flex_kept_new (SLIM_PROCESSOR (self), "flex_smooth_quant");
}

SLIM_PLUGIN_DEFINE (processor,
                    flex_smooth_quant,
                    SLIM_PLUGIN_ALIASES ("flex_smooth"),
                    "Flex smooth outlier suppression of norm-linear, linear-linear, ov and up-down "
                    "subgraphs: scales A^alpha / W^beta, alpha and beta fixed or searched against "
                    "int8 fake quantization (msModelSlim flex_smooth_quant)",
                    slim_flex_smooth_processor_get_type)
