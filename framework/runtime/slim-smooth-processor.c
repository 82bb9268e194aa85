/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-smooth-processor.c: the smoothing processors' base class (see
 * slim-smooth-processor.h).
 */
#include "slim-smooth-processor.h"

#include <string.h>
#include "slim-error.h"
#include "slim-glob-list.h"
#include "slim-model-config.h"
#include "slim-property.h"
#include "slim-qlinear.h"

static const char *const slim_smooth_type_names[] = {
  [SLIM_SUBGRAPH_NORM_LINEAR] = "norm-linear",
  [SLIM_SUBGRAPH_LINEAR_LINEAR] = "linear-linear",
  [SLIM_SUBGRAPH_OV] = "ov",
  [SLIM_SUBGRAPH_UP_DOWN] = "up-down",
};

/* msModelSlim's SUBGRAPH_PRIORITY: up-down, ov, linear-linear, norm-linear. */
static const SlimSubgraphType slim_smooth_priority[] = {
  SLIM_SUBGRAPH_UP_DOWN,
  SLIM_SUBGRAPH_OV,
  SLIM_SUBGRAPH_LINEAR_LINEAR,
  SLIM_SUBGRAPH_NORM_LINEAR,
};

const char *
slim_smooth_subgraph_type_name (SlimSubgraphType type)
{
  if ((guint)type >= G_N_ELEMENTS (slim_smooth_type_names))
    return "?";
  return slim_smooth_type_names[type];
}

gboolean
slim_smooth_parse_subgraph_types (const char *const *names,
                                  const char *key,
                                  guint *out_mask,
                                  GError **error)
{
  guint mask = 0;

  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      guint t;
      for (t = 0; t < G_N_ELEMENTS (slim_smooth_type_names); t++)
        if (g_strcmp0 (names[i], slim_smooth_type_names[t]) == 0)
          break;
      if (t == G_N_ELEMENTS (slim_smooth_type_names))
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "%s: unknown subgraph type '%s' (valid: norm-linear, linear-linear, ov, "
                       "up-down)",
                       key, names[i]);
          return FALSE;
        }
      mask |= SLIM_SMOOTH_SUBGRAPH_BIT (t);
    }
  *out_mask = mask;
  return TRUE;
}

gboolean
slim_smooth_check_open_unit (const char *plugin, const char *key, double value, GError **error)
{
  if (value > 0.0 && value < 1.0)
    return TRUE;
  g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
               "%s: %s must be in the open range (0, 1), got %g", plugin, key, value);
  return FALSE;
}

/* A kept subgraph of the layer being processed and its statistics. */
typedef struct
{
  const SlimSubgraph *subgraph; /* owned by priv->subgraphs */
  gboolean shifted;             /* asymmetric norm-linear */
  SlimSmoothStats *stats;       /* NULL until targets[0] runs */
} SlimSmoothSite;

static void
slim_smooth_site_free (SlimSmoothSite *site)
{
  slim_smooth_stats_free (site->stats);
  g_free (site);
}

typedef struct
{
  char **include;
  char **exclude;
  SlimGlobList *globs;
  SlimModel *model;      /* from pre_run (ref) */
  GPtrArray *subgraphs;  /* of the current layer (SlimSubgraph*) */
  GPtrArray *sites;      /* (SlimSmoothSite*) kept ones, adapter order */
  GHashTable *by_target; /* targets[0] -> SlimSmoothSite* (borrowed) */
  GHashTable *scales[2]; /* by SlimSmoothScalesSide: module -> GArray of float */
} SlimSmoothProcessorPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimSmoothProcessor,
                                     slim_smooth_processor,
                                     SLIM_TYPE_PROCESSOR)

/* clang-format off */
static const SlimPropertyDecl slim_smooth_processor_properties[] = {
  SLIM_PROPERTY_STRV (
      SlimSmoothProcessorPrivate, include, "include", "Include",
      "Patterns over each subgraph's key module (its source, or targets[0] without one) to "
      "smooth (`*` crosses dots); default [\"*\"].",
      SLIM_STRV ("*")),
  SLIM_PROPERTY_STRV (SlimSmoothProcessorPrivate, exclude, "exclude", "Exclude",
                      "Key-module patterns left unsmoothed; wins over include; default [].",
                      SLIM_STRV_EMPTY),
};
/* clang-format on */

static SlimSmoothProcessorPrivate *
priv_of (SlimSmoothProcessor *self)
{
  return slim_smooth_processor_get_instance_private (self);
}

static void
get_params (SlimSmoothProcessor *self, SlimSmoothParams *params)
{
  memset (params, 0, sizeof (*params));
  SLIM_SMOOTH_PROCESSOR_GET_CLASS (self)->get_params (self, params);
}

static gboolean
ensure_globs (SlimSmoothProcessor *self, GError **error)
{
  SlimSmoothProcessorPrivate *priv = priv_of (self);

  if (priv->globs != NULL)
    return TRUE;
  priv->globs = slim_glob_list_new ((const char *const *)priv->include,
                                    (const char *const *)priv->exclude, error);
  if (priv->globs == NULL)
    {
      g_prefix_error (error, "%s: ", slim_processor_get_type_name (SLIM_PROCESSOR (self)));
      return FALSE;
    }
  return TRUE;
}

static void
clear_layer (SlimSmoothProcessorPrivate *priv)
{
  g_hash_table_remove_all (priv->by_target);
  g_ptr_array_set_size (priv->sites, 0);
  g_clear_pointer (&priv->subgraphs, g_ptr_array_unref);
}

/* ---- vfuncs ------------------------------------------------------------ */

static gboolean
slim_smooth_processor_validate (SlimProcessor *processor, GError **error)
{
  return ensure_globs (SLIM_SMOOTH_PROCESSOR (processor), error);
}

/* "norm-linear, ov" for the kinds of mask (g_free). */
static char *
kinds_text (guint mask)
{
  GString *text = g_string_new (NULL);

  for (guint t = 0; t < 32; t++)
    if ((mask & SLIM_SMOOTH_SUBGRAPH_BIT (t)) != 0)
      g_string_append_printf (text, "%s%s", text->len > 0 ? ", " : "",
                              slim_smooth_subgraph_type_name ((SlimSubgraphType)t));
  if (text->len == 0)
    g_string_append (text, "none");
  return g_string_free (text, FALSE);
}

/* The requested kinds against those the adapter describes for each
 * decoder layer (before include/exclude), at pre_run, before any weight
 * is read.  None of them in a layer: nothing to smooth there, an error
 * (SLIM_PIPELINE_ERROR_INCOMPATIBLE: the config does not fit the model)
 * naming the layer and the kinds it has.  Some absent: msModelSlim's
 * configs list every kind for every model (qwen3 has no linear-linear
 * subgraph), so with all four kinds (the default) that is silent, and
 * with a narrower list a warning, once per kind. */
static gboolean
check_requested_kinds (SlimSmoothProcessor *self, SlimModel *model, GError **error)
{
  const SlimModelConfig *config = slim_model_get_config (model);
  const char *arch = config->model_type != NULL ? config->model_type : "?";
  SlimSmoothParams params;
  guint warned = 0;

  get_params (self, &params);
  for (guint index = 0; index < slim_model_get_n_layers (model); index++)
    {
      g_autoptr (GPtrArray) subgraphs = slim_model_get_subgraphs (model, index);
      guint present = 0, absent;

      for (guint i = 0; i < subgraphs->len; i++)
        {
          const SlimSubgraph *subgraph = g_ptr_array_index (subgraphs, i);
          if (subgraph->targets != NULL && subgraph->targets[0] != NULL)
            present |= SLIM_SMOOTH_SUBGRAPH_BIT (subgraph->type);
        }
      if (params.subgraph_types != 0 && (params.subgraph_types & present) == 0)
        {
          g_autofree char *want = kinds_text (params.subgraph_types);
          g_autofree char *have = kinds_text (present);
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s: decoder layer %u of this %s model has no subgraph of the requested "
                       "kinds (%s); its subgraph kinds are: %s (set enable_subgraph_type to "
                       "those)",
                       slim_processor_get_type_name (SLIM_PROCESSOR (self)), index, arch, want,
                       have);
          return FALSE;
        }
      /* all four kinds is the default: a model lacking some is normal */
      absent = params.subgraph_types == SLIM_SMOOTH_SUBGRAPH_ALL
                   ? 0
                   : params.subgraph_types & ~present & ~warned;
      if (absent != 0)
        {
          g_autofree char *missing = kinds_text (absent);
          g_autofree char *have = kinds_text (present);
          g_warning ("%s: decoder layer %u of this %s model has no %s subgraph (its kinds: %s); "
                     "those kinds are skipped",
                     slim_processor_get_type_name (SLIM_PROCESSOR (self)), index, arch, missing,
                     have);
          warned |= absent;
        }
    }
  return TRUE;
}

static gboolean
slim_smooth_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  SlimSmoothProcessorPrivate *priv = priv_of (SLIM_SMOOTH_PROCESSOR (processor));

  g_set_object (&priv->model, model);
  return ensure_globs (SLIM_SMOOTH_PROCESSOR (processor), error)
         && check_requested_kinds (SLIM_SMOOTH_PROCESSOR (processor), model, error);
}

/* The key module: source, or targets[0] without a source. */
static const char *
key_module (const SlimSubgraph *subgraph)
{
  return subgraph->source != NULL ? subgraph->source : subgraph->targets[0];
}

static gboolean
slim_smooth_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimSmoothProcessor *self = SLIM_SMOOTH_PROCESSOR (processor);
  SlimSmoothProcessorPrivate *priv = priv_of (self);
  SlimSmoothParams params;
  g_autofree char *prefix = NULL;
  const gint index = slim_layer_get_index (layer);

  clear_layer (priv);
  g_hash_table_remove_all (priv->scales[SLIM_SMOOTH_SCALES_INPUT]);
  g_hash_table_remove_all (priv->scales[SLIM_SMOOTH_SCALES_OUTPUT]);
  if (index < 0)
    return TRUE; /* embeddings and head have no subgraphs */
  if (priv->model == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: preprocess before pre_run", slim_processor_get_type_name (processor));
      return FALSE;
    }
  if (!ensure_globs (self, error))
    return FALSE;
  get_params (self, &params);
  prefix = g_strconcat (slim_layer_get_prefix (layer), ".", NULL);
  priv->subgraphs = slim_model_get_subgraphs (priv->model, (guint)index);
  for (guint i = 0; i < priv->subgraphs->len; i++)
    {
      const SlimSubgraph *subgraph = g_ptr_array_index (priv->subgraphs, i);
      const char *key;
      SlimSmoothSite *site;

      if (subgraph->targets == NULL || subgraph->targets[0] == NULL)
        continue;
      if ((params.subgraph_types & SLIM_SMOOTH_SUBGRAPH_BIT (subgraph->type)) == 0)
        continue;
      key = key_module (subgraph);
      if (!g_str_has_prefix (key, prefix) || !slim_glob_list_match (priv->globs, key))
        continue;
      if (g_hash_table_contains (priv->by_target, subgraph->targets[0]))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                       "%s: layer %s: two subgraphs take their statistics from %s",
                       slim_processor_get_type_name (processor), slim_layer_get_prefix (layer),
                       subgraph->targets[0]);
          return FALSE;
        }
      site = g_new0 (SlimSmoothSite, 1);
      site->subgraph = subgraph;
      site->shifted = !params.symmetric && subgraph->type == SLIM_SUBGRAPH_NORM_LINEAR;
      g_ptr_array_add (priv->sites, site);
      g_hash_table_insert (priv->by_target, subgraph->targets[0], site);
    }
  return TRUE;
}

static gboolean
slim_smooth_linear_input (
    const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **error)
{
  SlimSmoothProcessor *self = user_data;
  SlimSmoothSite *site = g_hash_table_lookup (priv_of (self)->by_target, module);

  if (site == NULL)
    return TRUE;
  if (site->stats == NULL)
    site->stats = slim_smooth_stats_new (n_in, site->shifted);
  else if (site->stats->n_channels != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: the input of %s has %" G_GINT64_FORMAT
                   " channels, earlier %" G_GINT64_FORMAT,
                   slim_processor_get_type_name (SLIM_PROCESSOR (self)), module, n_in,
                   site->stats->n_channels);
      return FALSE;
    }
  slim_smooth_stats_update (site->stats, x, n_tokens);
  if (SLIM_SMOOTH_PROCESSOR_GET_CLASS (self)->observe_input != NULL)
    return SLIM_SMOOTH_PROCESSOR_GET_CLASS (self)->observe_input (self, site->subgraph, x, n_tokens,
                                                                  n_in, error);
  return TRUE;
}

/* The scales of a site: the subclass's search_scales, or the alpha rule
 * on the statistics and the consumers' column maximum w_max (n). */
static gboolean
site_scales (SlimSmoothProcessor *self,
             SlimLayer *layer,
             SlimSmoothSite *site,
             const SlimSmoothParams *params,
             const float *w_max,
             float *scales,
             GError **error)
{
  SlimSmoothProcessorClass *klass = SLIM_SMOOTH_PROCESSOR_GET_CLASS (self);

  if (klass->search_scales != NULL)
    return klass->search_scales (self, layer, site->subgraph, site->stats, scales, error);
  slim_smooth_scales (site->stats->smooth, w_max, site->stats->n_channels, params->alpha,
                      1.0 - params->alpha, 1e-5f, (float)params->scale_min, scales);
  return TRUE;
}

static void
slim_smooth_processor_get_forward_hooks (SlimProcessor *processor,
                                         SlimLayer *layer,
                                         SlimForwardHooks *hooks)
{
  SlimSmoothProcessorPrivate *priv = priv_of (SLIM_SMOOTH_PROCESSOR (processor));

  if (priv->sites->len == 0)
    return;
  hooks->linear_input = slim_smooth_linear_input;
  hooks->user_data = processor;
}

/* ---- fusion on the layer ------------------------------------------------- */

/* The module's weight (n_out, n_in) made private to the layer and
 * writable; a module already quantized is an error (its record and its
 * weights would disagree). */
static float *
writable_weight (SlimSmoothProcessor *self,
                 SlimLayer *layer,
                 const char *module,
                 gint64 *out_n_out,
                 gint64 *out_n_in,
                 GError **error)
{
  g_autofree char *name = g_strconcat (module, ".weight", NULL);
  SlimTensor *t = slim_layer_require_tensor (layer, name, error);
  g_autoptr (SlimTensor) copy = NULL;
  float *data;

  if (t == NULL)
    return NULL;
  if (slim_layer_get_qlinear (layer, module) != NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: %s is already quantized; put smoothing before the quantizer in "
                   "spec.process",
                   slim_processor_get_type_name (SLIM_PROCESSOR (self)), module);
      return NULL;
    }
  if (slim_tensor_get_dtype (t) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (t) != 2)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: %s is not a 2-D float32 tensor",
                   slim_processor_get_type_name (SLIM_PROCESSOR (self)), name);
      return NULL;
    }
  copy = slim_tensor_copy (t, NULL);
  data = slim_tensor_get_data_mut (copy); /* before the layer takes its ref */
  *out_n_out = slim_tensor_get_dim (copy, 0);
  *out_n_in = slim_tensor_get_dim (copy, 1);
  slim_layer_set_tensor (layer, copy);
  return data;
}

/* The 1-D tensor name (n) made writable; created zero-filled (with the
 * source dtype of like) when absent and create is set; NULL without error
 * when absent and not create. */
static float *
writable_vector (
    SlimLayer *layer, const char *name, gint64 n, gboolean create, const char *like, GError **error)
{
  SlimTensor *t = slim_layer_get_tensor (layer, name);
  g_autoptr (SlimTensor) copy = NULL;
  float *data;

  if (t == NULL)
    {
      if (!create)
        return NULL;
      copy = slim_tensor_new_1d (name, SLIM_DTYPE_F32, n);
      data = slim_tensor_get_data_mut (copy);
      slim_layer_set_tensor (layer, copy);
      slim_layer_set_source_dtype (layer, name, slim_layer_get_source_dtype (layer, like));
      return data;
    }
  if (slim_tensor_get_dtype (t) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (t) != 1
      || slim_tensor_get_dim (t, 0) != n)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: expected a float32 vector of %" G_GINT64_FORMAT " elements", name, n);
      return NULL;
    }
  copy = slim_tensor_copy (t, NULL);
  data = slim_tensor_get_data_mut (copy);
  slim_layer_set_tensor (layer, copy);
  return data;
}

static gboolean
shape_error (SlimSmoothProcessor *self, const SlimSubgraph *sg, const char *what, GError **error)
{
  g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
               "%s: %s subgraph %s -> %s: %s", slim_processor_get_type_name (SLIM_PROCESSOR (self)),
               slim_smooth_subgraph_type_name (sg->type), key_module (sg), sg->targets[0], what);
  return FALSE;
}

static void
record_scales (SlimSmoothProcessorPrivate *priv,
               const char *module,
               SlimSmoothScalesSide side,
               const float *s,
               gint64 n)
{
  GArray *a = g_array_sized_new (FALSE, FALSE, sizeof (float), (guint)n);

  g_array_append_vals (a, s, (guint)n);
  g_hash_table_replace (priv->scales[side], g_strdup (module), a);
}

static gboolean
fuse_norm_linear (SlimSmoothProcessor *self,
                  SlimLayer *layer,
                  SlimSmoothSite *site,
                  const SlimSmoothParams *params,
                  GError **error)
{
  const SlimSubgraph *sg = site->subgraph;
  const gint64 n = site->stats->n_channels;
  g_autofree float *w_max = g_new (float, n);  /* (n) */
  g_autofree float *scales = g_new (float, n); /* (n) */
  g_autofree float *shift = NULL;              /* (n) */
  g_autofree char *norm_w_name = g_strconcat (sg->source, ".weight", NULL);
  g_autofree char *norm_b_name = g_strconcat (sg->source, ".bias", NULL);
  guint n_targets = g_strv_length (sg->targets);
  g_autofree float **weights = g_new0 (float *, n_targets);
  float *norm_w, *norm_b;

  /* every consumer first: shapes checked before anything changes */
  for (guint k = 0; k < n_targets; k++)
    {
      gint64 n_out = 0, n_in = 0;
      weights[k] = writable_weight (self, layer, sg->targets[k], &n_out, &n_in, error);
      if (weights[k] == NULL)
        return FALSE;
      if (n_in != n)
        return shape_error (self, sg, "a target's input width differs from its statistics", error);
      slim_smooth_weight_column_max (weights[k], n_out, n_in, TRUE, k > 0, w_max);
    }
  if (!site_scales (self, layer, site, params, w_max, scales, error))
    return FALSE;
  norm_w = writable_vector (layer, norm_w_name, n, FALSE, NULL, error);
  if (norm_w == NULL)
    {
      if (error != NULL && *error == NULL)
        return shape_error (self, sg, "the norm has no weight", error);
      return FALSE;
    }
  if (site->shifted)
    {
      shift = g_new (float, n);
      slim_smooth_stats_get_shift (site->stats, shift);
    }
  for (guint k = 0; k < n_targets; k++)
    {
      g_autofree char *w_name = g_strconcat (sg->targets[k], ".weight", NULL);
      SlimTensor *wt = slim_layer_get_tensor (layer, w_name);
      const gint64 n_out = slim_tensor_get_dim (wt, 0);

      if (shift != NULL)
        {
          g_autofree char *b_name = g_strconcat (sg->targets[k], ".bias", NULL);
          g_autofree float *add = g_new (float, n_out); /* (n_out) W shift, W before scaling */
          float *bias = writable_vector (layer, b_name, n_out, TRUE, w_name, error);

          if (bias == NULL)
            return FALSE;
          slim_smooth_linear_shift (weights[k], n_out, n, shift, add);
          for (gint64 i = 0; i < n_out; i++)
            bias[i] += add[i];
        }
      slim_smooth_scale_columns (weights[k], n_out, n, scales);
      record_scales (priv_of (self), sg->targets[k], SLIM_SMOOTH_SCALES_INPUT, scales, n);
    }
  /* norm: an existing bias /= s (once: msModelSlim's shift path divides it
   * a second time, which breaks exactness when the norm had a bias) */
  norm_b = writable_vector (layer, norm_b_name, n, shift != NULL, norm_w_name, error);
  if (norm_b == NULL && error != NULL && *error != NULL)
    return FALSE;
  if (norm_b != NULL)
    slim_smooth_divide_vector (norm_b, n, scales);
  slim_smooth_divide_vector (norm_w, n, scales);
  if (shift != NULL)
    {
      g_autofree float *norm_shift = g_new (float, n); /* (n) */
      slim_smooth_norm_shift (shift, scales, n, norm_shift);
      for (gint64 j = 0; j < n; j++)
        norm_b[j] += norm_shift[j];
    }
  return TRUE;
}

/* ov, up-down and linear-linear: consumer targets[0] (its input columns
 * scaled), producer source (its rows divided). */
static gboolean
fuse_linear_pair (SlimSmoothProcessor *self,
                  SlimLayer *layer,
                  SlimSmoothSite *site,
                  const SlimSmoothParams *params,
                  GError **error)
{
  SlimSmoothProcessorPrivate *priv = priv_of (self);
  const SlimSubgraph *sg = site->subgraph;
  const gint64 n = site->stats->n_channels;
  gint64 c_out = 0, c_in = 0, p_out = 0, p_in = 0;
  float *consumer, *producer, *bias;
  g_autofree float *w_max = g_new (float, n);  /* (n) */
  g_autofree float *scales = g_new (float, n); /* (n) consumer input channels */
  g_autofree float *v_scales = NULL;           /* (p_out) producer rows (ov) */
  g_autofree char *bias_name = NULL;
  const float *row_scales = scales;

  if (sg->source == NULL)
    return shape_error (self, sg, "no source module (non-fusion subgraphs are not supported)",
                        error);
  consumer = writable_weight (self, layer, sg->targets[0], &c_out, &c_in, error);
  if (consumer == NULL)
    return FALSE;
  producer = writable_weight (self, layer, sg->source, &p_out, &p_in, error);
  if (producer == NULL)
    return FALSE;
  if (c_in != n)
    return shape_error (self, sg, "the consumer's input width differs from its statistics", error);
  slim_smooth_weight_column_max (consumer, c_out, c_in, params->abs_consumer_max, FALSE, w_max);
  if (!site_scales (self, layer, site, params, w_max, scales, error))
    return FALSE;
  if (sg->type == SLIM_SUBGRAPH_OV)
    {
      const SlimModelConfig *config = slim_model_get_config (priv->model);
      const gint64 heads = config->n_heads, kv = config->n_kv_heads, hd = config->head_dim;
      g_autofree float *o_scales = g_new (float, n); /* (n) */

      if (heads <= 0 || kv <= 0 || heads % kv != 0 || heads * hd != n || kv * hd != p_out)
        return shape_error (self, sg,
                            "o_proj input / v_proj output widths do not match the heads of "
                            "config.json",
                            error);
      v_scales = g_new (float, p_out);
      slim_smooth_gqa_reduce_mean (scales, heads, kv, hd, o_scales, v_scales);
      memcpy (scales, o_scales, (gsize)n * sizeof (float));
      row_scales = v_scales;
    }
  else if (p_out != n)
    return shape_error (self, sg, "the source's output width differs from the consumer's input",
                        error);
  bias_name = g_strconcat (sg->source, ".bias", NULL);
  bias = writable_vector (layer, bias_name, p_out, FALSE, NULL, error);
  if (bias == NULL && error != NULL && *error != NULL)
    return FALSE;
  slim_smooth_scale_columns (consumer, c_out, c_in, scales);
  slim_smooth_divide_rows (producer, bias, p_out, p_in, row_scales);
  record_scales (priv, sg->targets[0], SLIM_SMOOTH_SCALES_INPUT, scales, n);
  record_scales (priv, sg->source, SLIM_SMOOTH_SCALES_OUTPUT, row_scales, p_out);
  return TRUE;
}

static gboolean
slim_smooth_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimSmoothProcessor *self = SLIM_SMOOTH_PROCESSOR (processor);
  SlimSmoothProcessorPrivate *priv = priv_of (self);
  SlimSmoothParams params;
  gboolean ok = TRUE;

  get_params (self, &params);
  for (guint p = 0; p < G_N_ELEMENTS (slim_smooth_priority) && ok; p++)
    for (guint i = 0; i < priv->sites->len && ok; i++)
      {
        SlimSmoothSite *site = g_ptr_array_index (priv->sites, i);
        gint64 bad;

        if (site->subgraph->type != slim_smooth_priority[p])
          continue;
        if (site->stats == NULL || site->stats->n_tokens == 0)
          {
            /* msModelSlim skips these too (an expert no token was routed to) */
            g_message ("%s: no statistics for %s (no calibration token reached it): %s subgraph "
                       "left unsmoothed",
                       slim_processor_get_type_name (processor), site->subgraph->targets[0],
                       slim_smooth_subgraph_type_name (site->subgraph->type));
            continue;
          }
        bad = slim_smooth_stats_find_non_finite (site->stats);
        if (bad >= 0)
          {
            g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                         "%s: the input of %s has a non-finite value in channel %" G_GINT64_FORMAT
                         " (min %g, max %g); nothing can be smoothed",
                         slim_processor_get_type_name (processor), site->subgraph->targets[0], bad,
                         (double)site->stats->min[bad], (double)site->stats->max[bad]);
            ok = FALSE;
            break;
          }
        if (site->subgraph->type == SLIM_SUBGRAPH_NORM_LINEAR)
          ok = fuse_norm_linear (self, layer, site, &params, error);
        else
          ok = fuse_linear_pair (self, layer, site, &params, error);
      }
  clear_layer (priv);
  return ok;
}

static gboolean
slim_smooth_processor_post_run (SlimProcessor *processor, GError **error)
{
  SlimSmoothProcessorPrivate *priv = priv_of (SLIM_SMOOTH_PROCESSOR (processor));
  const char *which[] = { "include", "exclude" };

  if (priv->globs == NULL)
    return TRUE;
  for (guint k = 0; k < 2; k++)
    {
      g_auto (GStrv) unmatched = k == 0 ? slim_glob_list_get_unmatched_include (priv->globs)
                                        : slim_glob_list_get_unmatched_exclude (priv->globs);
      g_autofree char *list = NULL;

      if (unmatched == NULL || unmatched[0] == NULL)
        continue;
      list = g_strjoinv ("', '", unmatched);
      g_warning ("%s: these %s patterns matched no subgraph, please check that this is "
                 "expected: '%s'",
                 slim_processor_get_type_name (processor), which[k], list);
    }
  return TRUE;
}

/* The state between layers: the pattern hits, "(abab)". */
static GBytes *
slim_smooth_processor_save_state (SlimProcessor *processor, GError **error)
{
  SlimSmoothProcessor *self = SLIM_SMOOTH_PROCESSOR (processor);
  g_autoptr (GVariant) hits = NULL;

  if (!ensure_globs (self, error))
    return NULL;
  hits = slim_glob_list_save_hits (priv_of (self)->globs);
  return g_variant_get_data_as_bytes (hits);
}

static gboolean
slim_smooth_processor_restore_state (SlimProcessor *processor, GBytes *state, GError **error)
{
  SlimSmoothProcessor *self = SLIM_SMOOTH_PROCESSOR (processor);
  g_autoptr (GVariant) hits = NULL;

  if (!ensure_globs (self, error))
    return FALSE;
  hits = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("(abab)"), state, FALSE));
  if (!slim_glob_list_restore_hits (priv_of (self)->globs, hits, error))
    {
      g_prefix_error (error, "%s: ", slim_processor_get_type_name (processor));
      return FALSE;
    }
  return TRUE;
}

/* ---- public ------------------------------------------------------------ */

const char *const *
slim_smooth_processor_get_include (SlimSmoothProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_SMOOTH_PROCESSOR (self), NULL);
  return (const char *const *)priv_of (self)->include;
}

const char *const *
slim_smooth_processor_get_exclude (SlimSmoothProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_SMOOTH_PROCESSOR (self), NULL);
  return (const char *const *)priv_of (self)->exclude;
}

SlimModel *
slim_smooth_processor_get_model (SlimSmoothProcessor *self)
{
  g_return_val_if_fail (SLIM_IS_SMOOTH_PROCESSOR (self), NULL);
  return priv_of (self)->model;
}

const float *
slim_smooth_processor_get_scales (SlimSmoothProcessor *self,
                                  const char *module,
                                  SlimSmoothScalesSide side,
                                  gint64 *out_n)
{
  GArray *a;

  g_return_val_if_fail (SLIM_IS_SMOOTH_PROCESSOR (self), NULL);
  g_return_val_if_fail (side == SLIM_SMOOTH_SCALES_INPUT || side == SLIM_SMOOTH_SCALES_OUTPUT,
                        NULL);
  a = g_hash_table_lookup (priv_of (self)->scales[side], module);
  if (out_n != NULL)
    *out_n = a != NULL ? (gint64)a->len : 0;
  return a != NULL ? (const float *)a->data : NULL;
}

/* ---- GObject ------------------------------------------------------------ */

static void
slim_smooth_processor_finalize (GObject *object)
{
  SlimSmoothProcessorPrivate *priv = priv_of (SLIM_SMOOTH_PROCESSOR (object));

  clear_layer (priv);
  g_ptr_array_unref (priv->sites);
  g_hash_table_unref (priv->by_target);
  g_hash_table_unref (priv->scales[SLIM_SMOOTH_SCALES_INPUT]);
  g_hash_table_unref (priv->scales[SLIM_SMOOTH_SCALES_OUTPUT]);
  g_clear_pointer (&priv->globs, slim_glob_list_free);
  g_clear_object (&priv->model);
  G_OBJECT_CLASS (slim_smooth_processor_parent_class)->finalize (object);
}

/* ---- data-parallel runs (dp_layer_wise) -------------------------------- */

/* The statistics of the layer's kept sites, in adapter order:
 * "a(sbxxayayay)" targets[0], has statistics, n_channels, n_tokens and
 * the float32 min, max and smooth vectors as bytes. */
#define SMOOTH_OBSERVERS_TYPE "a(sbxxayayay)"

static GVariant *
float_bytes (const float *v, gint64 n)
{
  return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, v,
                                    v != NULL ? (gsize)n * sizeof (float) : 0, 1);
}

static gboolean
unsupported_subclass (SlimProcessor *processor, GError **error)
{
  if (SLIM_SMOOTH_PROCESSOR_GET_CLASS (processor)->observe_input == NULL)
    return FALSE;
  /* what observe_input keeps is the subclass's, not exchanged here */
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "%s keeps statistics of its own (observe_input) that cannot be exchanged "
               "between ranks",
               slim_processor_get_type_name (processor));
  return TRUE;
}

static GBytes *
slim_smooth_processor_export_observers (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimSmoothProcessorPrivate *priv = priv_of (SLIM_SMOOTH_PROCESSOR (processor));
  g_autoptr (GVariantBuilder) builder = NULL;
  g_autoptr (GVariant) value = NULL;

  if (unsupported_subclass (processor, error))
    return NULL;
  builder = g_variant_builder_new (G_VARIANT_TYPE (SMOOTH_OBSERVERS_TYPE));
  for (guint i = 0; i < priv->sites->len; i++)
    {
      SlimSmoothSite *site = g_ptr_array_index (priv->sites, i);
      SlimSmoothStats *st = site->stats;
      gint64 n = st != NULL ? st->n_channels : 0;

      g_variant_builder_add (builder, "(sbxx@ay@ay@ay)", site->subgraph->targets[0], st != NULL, n,
                             st != NULL ? st->n_tokens : 0,
                             float_bytes (st != NULL ? st->min : NULL, n),
                             float_bytes (st != NULL ? st->max : NULL, n),
                             float_bytes (st != NULL ? st->smooth : NULL, n));
    }
  value = g_variant_ref_sink (g_variant_builder_end (builder));
  return g_variant_get_data_as_bytes (value);
}

static gboolean
bad_observers (SlimProcessor *processor, const char *what, GError **error)
{
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "%s: another rank's statistics do not fit this layer: %s",
               slim_processor_get_type_name (processor), what);
  return FALSE;
}

/* min, max and smooth are maxima / minima: a merge in any order gives
 * the single-process bytes, except the smooth of a shifted site (its
 * shift depends on the running range), for which the processor is
 * ordered and only replaces. */
static gboolean
slim_smooth_processor_import_observers (
    SlimProcessor *processor, SlimLayer *layer, GBytes *observers, gboolean merge, GError **error)
{
  SlimSmoothProcessorPrivate *priv = priv_of (SLIM_SMOOTH_PROCESSOR (processor));
  g_autoptr (GVariant) value = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (SMOOTH_OBSERVERS_TYPE), observers, FALSE));

  if (unsupported_subclass (processor, error))
    return FALSE;
  if (!g_variant_is_normal_form (value))
    return bad_observers (processor, "malformed", error);
  if (g_variant_n_children (value) != priv->sites->len)
    return bad_observers (processor, "another number of subgraphs", error);
  for (guint i = 0; i < priv->sites->len; i++)
    {
      SlimSmoothSite *site = g_ptr_array_index (priv->sites, i);
      g_autoptr (GVariant) vmin = NULL, vmax = NULL, vsmooth = NULL;
      const char *key = NULL;
      gboolean has = FALSE;
      gint64 n = 0, n_tokens = 0;
      gsize lmin = 0, lmax = 0, lsmooth = 0;
      const float *mn, *mx, *sm;

      g_variant_get_child (value, i, "(&sbxx@ay@ay@ay)", &key, &has, &n, &n_tokens, &vmin, &vmax,
                           &vsmooth);
      mn = g_variant_get_fixed_array (vmin, &lmin, 1);
      mx = g_variant_get_fixed_array (vmax, &lmax, 1);
      sm = g_variant_get_fixed_array (vsmooth, &lsmooth, 1);
      if (strcmp (key, site->subgraph->targets[0]) != 0)
        return bad_observers (processor, key, error);
      if (!has)
        {
          if (!merge)
            g_clear_pointer (&site->stats, slim_smooth_stats_free);
          continue;
        }
      if (n <= 0 || n_tokens < 0 || lmin != (gsize)n * sizeof (float) || lmax != lmin
          || lsmooth != lmin || (site->stats != NULL && site->stats->n_channels != n))
        return bad_observers (processor, key, error);
      if (site->stats == NULL)
        site->stats = slim_smooth_stats_new (n, site->shifted);
      if (!merge)
        {
          memcpy (site->stats->min, mn, lmin);
          memcpy (site->stats->max, mx, lmax);
          memcpy (site->stats->smooth, sm, lsmooth);
          site->stats->n_tokens = n_tokens;
          continue;
        }
      if (site->shifted)
        return bad_observers (processor, "a shifted subgraph cannot be merged", error);
      slim_smooth_stats_merge (site->stats, mn, mx, sm, n_tokens);
    }
  return TRUE;
}

static gboolean
slim_smooth_processor_distributed_ordered (SlimProcessor *processor)
{
  SlimSmoothParams params;

  get_params (SLIM_SMOOTH_PROCESSOR (processor), &params);
  return !params.symmetric;
}

static void
slim_smooth_processor_class_init (SlimSmoothProcessorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  object_class->finalize = slim_smooth_processor_finalize;
  processor_class->validate = slim_smooth_processor_validate;
  processor_class->pre_run = slim_smooth_processor_pre_run;
  processor_class->preprocess = slim_smooth_processor_preprocess;
  processor_class->get_forward_hooks = slim_smooth_processor_get_forward_hooks;
  processor_class->postprocess = slim_smooth_processor_postprocess;
  processor_class->post_run = slim_smooth_processor_post_run;
  processor_class->save_state = slim_smooth_processor_save_state;
  processor_class->restore_state = slim_smooth_processor_restore_state;
  processor_class->export_observers = slim_smooth_processor_export_observers;
  processor_class->import_observers = slim_smooth_processor_import_observers;
  processor_class->distributed_ordered = slim_smooth_processor_distributed_ordered;
  /* preprocess only finds the sites; the hook and observe_input read x */
  slim_processor_class_set_calibrates_float (processor_class);
  SLIM_PROPERTIES_INSTALL_PRIVATE (klass, slim_smooth_processor_properties);
}

static void
slim_smooth_processor_init (SlimSmoothProcessor *self)
{
  SlimSmoothProcessorPrivate *priv = priv_of (self);

  priv->sites = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_smooth_site_free);
  priv->by_target = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint side = 0; side < 2; side++)
    priv->scales[side]
        = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_array_unref);
}
