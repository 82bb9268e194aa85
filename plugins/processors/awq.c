/* SPDX-License-Identifier: Apache-2.0
 *
 * awq.c: msModelSlim's `awq` processor, activation-aware scale search
 * (modelslim-v1-spec.md 2.6; msModelSlim processor/anti_outlier/awq/):
 *
 *   type: awq
 *   weight_qconfig: {dtype: int4|int8, scope: per_channel|per_tensor|
 *                    per_group, symmetric, method: minmax, ext.group_size}
 *                   the weight quantizer the search simulates (required)
 *   n_grid: 20      ratios searched: g / n_grid, g = 0 .. n_grid - 1 (> 0)
 *   enable_subgraph_type: [norm-linear, linear-linear, ov, up-down]
 *   include: ["*"]  patterns over each subgraph's key module
 *   exclude: []
 *
 * Per subgraph (slim-smooth-processor.h selects and fuses, in msModelSlim's
 * order up-down, ov, linear-linear, norm-linear):
 *   forward      targets[0]'s inputs are kept (one copy per calibration
 *                sample, freed after the layer) and their mean |x| per
 *                channel accumulated;
 *   postprocess  the inspected module is the lowest common ancestor of the
 *                linears searched (norm-linear: q/k/v -> self_attn, gate/up
 *                -> mlp; o_proj, down_proj, linear2 alone: the linear
 *                itself), run on the kept inputs: first with the current
 *                weights (the reference), then for each ratio with the
 *                searched linears replaced by fakequant (W * s) / s
 *                (slim-awq.h); the ratio of the smallest mean squared
 *                output error wins and its s is fused like a smoothing
 *                scale (the consumers' columns * s, the source / s).
 * The search quantizes only to choose s: the fused weights stay float, so
 * put linear_quant (with the same weight scheme) after it.
 *
 * Memory: the kept inputs (tokens x input width floats per subgraph, at
 * most four per dense layer) and the reference outputs of the inspected
 * module stay in RAM for one layer; msModelSlim keeps the same (its
 * cached module kwargs).  They are not spilled.
 *
 * ov: msModelSlim passes the searched scales as both o_proj and v_proj
 * scales, which only fits when n_heads == n_kv_heads; with GQA slimflow
 * fuses the mean of each kv head's group (as iter_smooth does), exact as
 * a rescaling but not the searched scales.  An inspected module other
 * than a linear, self_attn or mlp is an error naming it.
 */
#include "slim-plugin.h"

#include <string.h>

#define SLIM_TYPE_AWQ_PROCESSOR (slim_awq_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimAwqProcessor, slim_awq_processor, SLIM, AWQ_PROCESSOR, SlimSmoothProcessor)

/* The kept inputs of one subgraph's targets[0]. */
typedef struct
{
  gint64 n_in;
  GPtrArray *x; /* (SlimTensor*) (n_tokens, n_in) per calibration sample */
  float *mean;  /* (n_in) mean |x| */
  gint64 count; /* tokens */
} SlimAwqInputs;

struct _SlimAwqProcessor
{
  SlimSmoothProcessor parent_instance;
  SlimQConfig *weight_qconfig;
  gint64 n_grid;
  char **enable_subgraph_type;

  guint types; /* parsed enable_subgraph_type, set by validate */
  gboolean parsed;
  SlimAwqWeightQuant quant;
  GHashTable *inputs; /* targets[0] -> SlimAwqInputs* */
};

/* clang-format off */
static const SlimPropertyDecl slim_awq_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimAwqProcessor, weight_qconfig, "weight-qconfig", "Weight quantization",
      "Weight quantizer the search simulates: {dtype: int4 or int8, scope: per_channel, "
      "per_tensor or per_group (ext.group_size), symmetric, method: minmax}.",
      slim_qconfig_get_type, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_INT64 (SlimAwqProcessor, n_grid, "n-grid", "Grid size",
                       "Ratios searched, g / n_grid for g = 0 .. n_grid - 1; greater than 0.",
                       1, G_MAXINT32, 20),
  SLIM_PROPERTY_STRV (SlimAwqProcessor, enable_subgraph_type, "enable-subgraph-type",
                      "Subgraph types",
                      "Subgraph kinds to search: norm-linear, linear-linear, ov, up-down.",
                      SLIM_STRV ("norm-linear", "linear-linear", "ov", "up-down")),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimAwqProcessor, slim_awq_processor, SLIM_TYPE_SMOOTH_PROCESSOR)

static void
slim_awq_inputs_free (SlimAwqInputs *inputs)
{
  g_ptr_array_unref (inputs->x);
  g_free (inputs->mean);
  g_free (inputs);
}

static gboolean
slim_awq_processor_parse (SlimAwqProcessor *self, GError **error)
{
  SlimQScheme scheme;
  SlimQMethod method;
  SlimQConfigExt *ext;
  g_autofree char *got = NULL;

  if (self->parsed)
    return TRUE;
  if (!slim_smooth_parse_subgraph_types ((const char *const *)self->enable_subgraph_type,
                                         "awq: enable_subgraph_type", &self->types, error))
    return FALSE;
  if (self->weight_qconfig == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "awq: missing required key 'weight_qconfig'");
      return FALSE;
    }
  scheme = slim_qconfig_get_scheme (self->weight_qconfig);
  method = slim_qconfig_get_method (self->weight_qconfig);
  ext = slim_qconfig_get_ext (self->weight_qconfig);
  got = slim_qscheme_to_string (&scheme);
  if ((scheme.dtype != SLIM_QDTYPE_INT8 && scheme.dtype != SLIM_QDTYPE_INT4)
      || (scheme.scope != SLIM_QSCOPE_PER_CHANNEL && scheme.scope != SLIM_QSCOPE_PER_TENSOR
          && scheme.scope != SLIM_QSCOPE_PER_GROUP)
      || method != SLIM_QMETHOD_MINMAX)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "awq: weight_qconfig %s method %s is not supported; the search simulates "
                   "{dtype: int4 or int8, scope: per_channel, per_tensor or per_group, method: "
                   "minmax}",
                   got, slim_qmethod_get_nick (method));
      return FALSE;
    }
  self->quant.scope = scheme.scope;
  self->quant.group_size = ext != NULL ? slim_qconfig_ext_get_group_size (ext) : 0;
  if (scheme.scope == SLIM_QSCOPE_PER_GROUP && self->quant.group_size <= 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "awq: weight_qconfig scope per_group needs ext.group_size (> 0)");
      return FALSE;
    }
  if (!slim_qparams_config_init (&self->quant.cfg, scheme.dtype, scheme.symmetric,
                                 ext != NULL ? slim_qconfig_ext_get_max_bound (ext) : 0, error))
    {
      g_prefix_error (error, "awq: weight_qconfig: ");
      return FALSE;
    }
  self->parsed = TRUE;
  return TRUE;
}

static gboolean
slim_awq_processor_validate (SlimProcessor *processor, GError **error)
{
  if (!slim_awq_processor_parse (SLIM_AWQ_PROCESSOR (processor), error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_awq_processor_parent_class)->validate (processor, error);
}

static gboolean
slim_awq_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  if (!slim_awq_processor_parse (SLIM_AWQ_PROCESSOR (processor), error))
    return FALSE;
  return SLIM_PROCESSOR_CLASS (slim_awq_processor_parent_class)->pre_run (processor, model, error);
}

static gboolean
slim_awq_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  g_hash_table_remove_all (SLIM_AWQ_PROCESSOR (processor)->inputs);
  return SLIM_PROCESSOR_CLASS (slim_awq_processor_parent_class)
      ->preprocess (processor, layer, error);
}

static gboolean
slim_awq_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  gboolean ok = SLIM_PROCESSOR_CLASS (slim_awq_processor_parent_class)
                    ->postprocess (processor, layer, error);

  g_hash_table_remove_all (SLIM_AWQ_PROCESSOR (processor)->inputs); /* free the kept inputs */
  return ok;
}

static void
slim_awq_processor_get_params (SlimSmoothProcessor *processor, SlimSmoothParams *params)
{
  SlimAwqProcessor *self = SLIM_AWQ_PROCESSOR (processor);

  params->subgraph_types = self->types; /* 0 before validate/pre_run: nothing kept */
  params->symmetric = TRUE;             /* no shift: awq only rescales */
  params->abs_consumer_max = TRUE;      /* unused: search_scales replaces the rule */
}

static gboolean
slim_awq_processor_observe_input (SlimSmoothProcessor *processor,
                                  const SlimSubgraph *subgraph,
                                  const float *x,
                                  gint64 n_tokens,
                                  gint64 n_in,
                                  GError **error)
{
  SlimAwqProcessor *self = SLIM_AWQ_PROCESSOR (processor);
  SlimAwqInputs *in = g_hash_table_lookup (self->inputs, subgraph->targets[0]);
  SlimTensor *copy;

  if (in == NULL)
    {
      in = g_new0 (SlimAwqInputs, 1);
      in->n_in = n_in;
      in->x = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
      in->mean = g_new0 (float, n_in);
      g_hash_table_insert (self->inputs, g_strdup (subgraph->targets[0]), in);
    }
  else if (in->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "awq: the input of %s has %" G_GINT64_FORMAT
                   " channels, earlier %" G_GINT64_FORMAT,
                   subgraph->targets[0], n_in, in->n_in);
      return FALSE;
    }
  if (n_tokens <= 0)
    return TRUE;
  copy = slim_tensor_new_2d (subgraph->targets[0], SLIM_DTYPE_F32, n_tokens, n_in);
  memcpy (slim_tensor_get_data_mut (copy), x, (gsize)(n_tokens * n_in) * sizeof (float));
  g_ptr_array_add (in->x, copy);
  slim_awq_mean_update (in->mean, &in->count, x, n_tokens, n_in);
  return TRUE;
}

/* The lowest common ancestor of the targets by dotted segments; a single
 * target is its own.  NULL when they share nothing. */
static char *
slim_awq_inspect_module (const char *const *targets)
{
  g_auto (GStrv) first = NULL;
  guint depth;

  if (targets[1] == NULL)
    return g_strdup (targets[0]);
  first = g_strsplit (targets[0], ".", -1);
  depth = g_strv_length (first);
  for (guint t = 1; targets[t] != NULL; t++)
    {
      g_auto (GStrv) parts = g_strsplit (targets[t], ".", -1);
      guint d = 0;
      while (d < depth && parts[d] != NULL && strcmp (parts[d], first[d]) == 0)
        d++;
      depth = d;
    }
  if (depth == 0)
    return NULL;
  g_free (first[depth]);
  first[depth] = NULL;
  return g_strjoinv (".", first);
}

/* What one evaluation of a candidate needs. */
typedef struct
{
  SlimAwqProcessor *self;
  SlimModel *model;
  SlimLayer *layer;
  const SlimSubgraph *subgraph;
  const char *inspect;
  SlimAwqInputs *in;
  GPtrArray *golden; /* (SlimTensor*) the inspected module's output per sample */
} SlimAwqEval;

/* The inspected module over every kept input; outputs appended to out. */
static gboolean
slim_awq_run (SlimAwqEval *ev, GPtrArray *out, double *sum_sq, gint64 *n, GError **error)
{
  for (guint i = 0; i < ev->in->x->len; i++)
    {
      SlimTensor *x = g_ptr_array_index (ev->in->x, i);
      g_autoptr (SlimTensor) y
          = slim_model_forward_module (ev->model, ev->layer, ev->inspect, slim_tensor_get_data (x),
                                       slim_tensor_get_dim (x, 0), ev->in->n_in, error);

      if (y == NULL)
        {
          g_prefix_error (error, "awq: ");
          return FALSE;
        }
      if (out != NULL)
        g_ptr_array_add (out, g_steal_pointer (&y));
      else
        {
          SlimTensor *ref = g_ptr_array_index (ev->golden, i);
          *sum_sq += slim_awq_sum_sq_diff (slim_tensor_get_data (y), slim_tensor_get_data (ref),
                                           slim_tensor_get_n_elements (ref));
          *n += slim_tensor_get_n_elements (ref);
        }
    }
  return TRUE;
}

/* SlimAwqEvalFunc: the searched linears (the subgraph's targets) replaced
 * by fakequant (W * s) / s, the inspected module run, the weights put
 * back. */
static gboolean
slim_awq_eval (
    const float *scales, double *out_sum_sq, gint64 *out_n, gpointer user_data, GError **error)
{
  SlimAwqEval *ev = user_data;
  const char *const *targets = (const char *const *)ev->subgraph->targets;
  g_autoptr (GPtrArray) originals
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  gboolean ok = TRUE;

  *out_sum_sq = 0.0;
  *out_n = 0;
  for (guint t = 0; targets[t] != NULL && ok; t++)
    {
      g_autofree char *name = g_strconcat (targets[t], ".weight", NULL);
      SlimTensor *w = slim_layer_require_tensor (ev->layer, name, error);
      g_autoptr (SlimTensor) cand = NULL;
      gint64 n_out, n_in;

      if (w == NULL)
        {
          ok = FALSE;
          break;
        }
      n_out = slim_tensor_get_dim (w, 0);
      n_in = slim_tensor_get_dim (w, 1);
      if (slim_tensor_get_n_dims (w) != 2 || n_in != ev->in->n_in)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "awq: %s does not take the %" G_GINT64_FORMAT " channels of %s's input",
                       name, ev->in->n_in, targets[0]);
          ok = FALSE;
          break;
        }
      cand = slim_tensor_copy (w, NULL);
      if (!slim_awq_candidate_weight (&ev->self->quant, slim_tensor_get_data (w), n_out, n_in,
                                      scales, slim_tensor_get_data_mut (cand), error))
        {
          g_prefix_error (error, "awq: %s: weight_qconfig: ", targets[t]);
          ok = FALSE;
          break;
        }
      g_ptr_array_add (originals, slim_tensor_ref (w));
      slim_layer_set_tensor (ev->layer, cand);
    }
  if (ok)
    ok = slim_awq_run (ev, NULL, out_sum_sq, out_n, error);
  for (guint t = 0; t < originals->len; t++)
    slim_layer_set_tensor (ev->layer, g_ptr_array_index (originals, t));
  return ok;
}

static gboolean
slim_awq_processor_search_scales (SlimSmoothProcessor *processor,
                                   SlimLayer *layer,
                                   const SlimSubgraph *subgraph,
                                   const SlimSmoothStats *stats,
                                   float *scales,
                                   GError **error)
{
  SlimAwqProcessor *self = SLIM_AWQ_PROCESSOR (processor);
  SlimAwqInputs *in = g_hash_table_lookup (self->inputs, subgraph->targets[0]);
  g_autofree char *inspect = slim_awq_inspect_module ((const char *const *)subgraph->targets);
  g_autoptr (GPtrArray) golden = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  SlimAwqEval ev
      = { self, slim_smooth_processor_get_model (processor), layer, subgraph, inspect, in, golden };
  double sum_sq = 0.0;
  gint64 n = 0;
  gint best = -1;

  if (in == NULL || in->count == 0 || in->n_in != stats->n_channels)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "awq: no kept inputs of %s", subgraph->targets[0]);
      return FALSE;
    }
  if (inspect == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "awq: the targets of %s have no common module to inspect", subgraph->targets[0]);
      return FALSE;
    }
  if (!slim_awq_run (&ev, golden, &sum_sq, &n, error)
      || !slim_awq_search (in->mean, in->n_in, self->n_grid, slim_awq_eval, &ev, scales, NULL,
                           &best, error))
    return FALSE;
  if (best < 0)
    {
      g_warning ("awq: %s: no ratio gave a finite loss; the subgraph is fused with scales 1",
                 subgraph->targets[0]);
      for (gint64 j = 0; j < in->n_in; j++)
        scales[j] = 1.0f;
      return TRUE;
    }
  g_debug ("awq: %s (inspecting %s): best ratio %d / %" G_GINT64_FORMAT, subgraph->targets[0],
           inspect, best, self->n_grid);
  return TRUE;
}

static gboolean
slim_awq_processor_supports_distributed (SlimProcessor *processor)
{
  /* the kept inputs are per worker and the search needs all of them
   * (msModelSlim: False) */
  return FALSE;
}

static void
slim_awq_processor_finalize (GObject *object)
{
  SlimAwqProcessor *self = SLIM_AWQ_PROCESSOR (object);

  g_hash_table_unref (self->inputs);
  G_OBJECT_CLASS (slim_awq_processor_parent_class)->finalize (object);
}

static void
slim_awq_processor_class_init (SlimAwqProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimSmoothProcessorClass *smooth_class = SLIM_SMOOTH_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_awq_processor_finalize;
  processor_class->validate = slim_awq_processor_validate;
  processor_class->pre_run = slim_awq_processor_pre_run;
  processor_class->preprocess = slim_awq_processor_preprocess;
  processor_class->postprocess = slim_awq_processor_postprocess;
  processor_class->supports_distributed = slim_awq_processor_supports_distributed;
  smooth_class->get_params = slim_awq_processor_get_params;
  smooth_class->observe_input = slim_awq_processor_observe_input;
  smooth_class->search_scales = slim_awq_processor_search_scales;
  SLIM_PROPERTIES_INSTALL (klass, slim_awq_properties);
}

static void
slim_awq_processor_init (SlimAwqProcessor *self)
{
  self->inputs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)slim_awq_inputs_free);
}

SLIM_PLUGIN_DEFINE (processor,
                    awq,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Activation-aware scale search (AWQ) of norm-linear, linear-linear, ov and "
                    "up-down subgraphs, fused as smoothing scales (msModelSlim awq)",
                    slim_awq_processor_get_type)
