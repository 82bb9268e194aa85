/* SPDX-License-Identifier: Apache-2.0
 *
 * linear-quant.c: msModelSlim's `linear_quant` processor (modelslim-v1-spec.md
 * 2.1; msModelSlim processor/quant/linear.py, core/quantizer/linear.py and
 * core/quantizer/impl/minmax.py): integer quantization of the weights and
 * activations of the linear modules selected by name.
 *
 *   type: linear_quant
 *   qconfig:
 *     act:    {dtype, scope, symmetric, method, ext}   optional: float
 *     weight: {dtype, scope, symmetric, method, ext}   required
 *   include: [patterns]   default ["*"]
 *   exclude: [patterns]   default [], wins over include
 *
 * Patterns are matched against full module names with slim-glob.h
 * (wcmatch fnmatch + BRACE: `*` crosses dots).  validate checks, before any
 * weight is read, that both quantizers are registered (and implemented:
 * method minmax today) and that the act/weight pair is one of the legal
 * combinations; the pair decides the description label (W8A8,
 * W8A8_DYNAMIC, W8A16, W4A8_DYNAMIC, W4A4_DYNAMIC, W8A8_MIX).
 *
 * Per decoder layer, with msModelSlim's scheduling (spec 1.5):
 *   preprocess   for every linear of the layer matching include and not
 *                exclude (and not already quantized by an earlier
 *                processor or an earlier child of the same group, as in
 *                msModelSlim where a replaced module is no nn.Linear any
 *                more): quantize the weight with minmax (per channel: one
 *                scale per output row; per group: runs of group_size input
 *                features) and replace the layer's weight by its
 *                dequantized values.  msModelSlim's LinearQuantizer also
 *                runs the calibration forward with fake-quantized weights,
 *                so doing it here gives the next layer the same input.
 *   forward      (the linear_input hook) fake-quantizes each selected
 *                linear's input as msModelSlim's quantizers do during
 *                calibration: static per_tensor accumulates min/max over
 *                every call so far (aggregation max or mean) and quantizes
 *                the call with the running parameters; per_token
 *                quantizes each token row with its own min/max; pd_mix
 *                accumulates static parameters but quantizes per token
 *                (symmetric).
 *   postprocess  computes the static input scale/offset from all samples and
 *                attaches a SlimQLinear record (slim-qlinear.h) to the
 *                layer: later forwards and the savers use it.
 * Data-free configurations (per_token activations or float activations with
 * minmax weights) need no calibration forward.
 *
 * Where slimflow differs from msModelSlim, deliberately:
 *   - Only decoder layers are visited; lm_head and the embeddings stay FLOAT,
 *     as msModelSlim's layer-wise visit covers decoder layers only.
 *   - per_token activations use one scale per token row in calibration too
 *     (msModelSlim's ActPerTokenMinmax observes the whole tensor there).
 *   - Weights are quantized from their values at preprocess, not at the
 *     forward: a processor that changes weights of the same layer belongs
 *     before linear_quant (and is, in every practice).
 *   - Extensions (documented, not in msModelSlim v1): minmax per_group
 *     weights (int8 and int4, sym or asym; msModelSlim reaches per_group
 *     only through gptq/autoround), and the label W4A16 for float
 *     activations with int4 per_group weights (saved as W8A16 per-group
 *     with int4 values in int8 storage).
 *   - An illegal act/weight pair fails in validate; msModelSlim accepts the
 *     config and fails when deploying the first layer.
 *   - A static activation quantizer that saw no data (a linear the
 *     calibration forward never ran) is an error naming the module.
 *   - `ext` accepts group_size, aggregation_type and max_bound only.
 * After the last layer, include/exclude patterns (other than "*") that
 * matched no module are reported with a warning, as msModelSlim does.
 *
 * The base class SlimLinearProcessor (slim-linear-processor.h) owns
 * include/exclude, the walk over a layer's linears, which linears are
 * taken, those warnings and the pattern hits of the saved state; this file
 * is the quantization: prepare, process_linear, the linear_input hook and
 * finish_layer.
 */
#include "slim-plugin.h"

#include <string.h>

#define SLIM_TYPE_LINEAR_QUANT_PROCESSOR (slim_linear_quant_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimLinearQuantProcessor,
                      slim_linear_quant_processor,
                      SLIM,
                      LINEAR_QUANT_PROCESSOR,
                      SlimLinearProcessor)

/* What the configuration resolves to (filled once by prepare). */
typedef struct
{
  SlimQScheme act;
  SlimQScheme weight;
  SlimQParamsConfig act_cfg; /* integer activations only */
  SlimQParamsConfig weight_cfg;
  SlimQAggregation aggregation; /* static per-tensor activation observer */
  gint64 group_size;            /* per_group weights, else 0 */
  const char *label;
  gboolean data_free;
} SlimLinearQuantPlan;

/* One selected linear between preprocess and postprocess. */
typedef struct
{
  SlimLayer *layer;            /* not referenced: the layer being processed */
  SlimQLinear *record;         /* weights filled in preprocess */
  SlimMinMaxObserver observer; /* static (or pd_mix decode) activation range */
} SlimLinearQuantPending;

struct _SlimLinearQuantProcessor
{
  SlimLinearProcessor parent_instance;

  SlimLinearQConfig *qconfig;

  SlimLinearQuantPlan plan; /* valid once the base is prepared */
  GHashTable *pending;      /* module (owned by the record) -> SlimLinearQuantPending */
  GPtrArray *pending_order; /* SlimLinearQuantPending, owned */
};

/* include and exclude belong to SlimLinearProcessor. */
static const SlimPropertyDecl slim_linear_quant_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimLinearQuantProcessor, qconfig, "qconfig", "Quantization config",
      "Activation (act, optional: float) and weight (required) quantizer configs.",
      slim_linear_qconfig_get_type, .flags = SLIM_PARAM_REQUIRED),
};

G_DEFINE_FINAL_TYPE (SlimLinearQuantProcessor,
                     slim_linear_quant_processor,
                     SLIM_TYPE_LINEAR_PROCESSOR)

/* ---- extensions to the quantizer and combination tables -------------- */

/* minmax per_group weights, slimflow's extension (see the file comment). */
#define SLIM_PER_GROUP_MINMAX(dt, sym)                                                             \
  {                                                                                                \
    SLIM_QROLE_WEIGHT, { SLIM_QDTYPE_##dt, SLIM_QSCOPE_PER_GROUP, sym }, SLIM_QMETHOD_MINMAX,      \
        "WeightPerGroupMinmax", TRUE, TRUE, TRUE                                                   \
  }

static const SlimQuantizerInfo slim_linear_quant_per_group_minmax[] = {
  SLIM_PER_GROUP_MINMAX (INT8, TRUE),
  SLIM_PER_GROUP_MINMAX (INT8, FALSE),
  SLIM_PER_GROUP_MINMAX (INT4, TRUE),
  SLIM_PER_GROUP_MINMAX (INT4, FALSE),
};

#undef SLIM_PER_GROUP_MINMAX

static const SlimQuantizerInfo *
slim_linear_quant_lookup_quantizer (SlimQRole role,
                                    const SlimQScheme *scheme,
                                    SlimQMethod method,
                                    GError **error)
{
  if (role == SLIM_QROLE_WEIGHT && method == SLIM_QMETHOD_MINMAX)
    for (gsize k = 0; k < G_N_ELEMENTS (slim_linear_quant_per_group_minmax); k++)
      if (slim_qscheme_equal (&slim_linear_quant_per_group_minmax[k].scheme, scheme))
        return &slim_linear_quant_per_group_minmax[k];
  return slim_qscheme_lookup_quantizer (role, scheme, method, error);
}

/* The description label of a legal pair, with the W4A16 extension. */
static const char *
slim_linear_quant_lookup_label (const SlimQScheme *act, const SlimQScheme *weight, GError **error)
{
  GError *local_error = NULL;
  const char *label;

  if (act->dtype == SLIM_QDTYPE_FLOAT && act->scope == SLIM_QSCOPE_PER_TENSOR && act->symmetric
      && weight->dtype == SLIM_QDTYPE_INT4 && weight->scope == SLIM_QSCOPE_PER_GROUP)
    return "W4A16";
  label = slim_qscheme_lookup_label (act, weight, &local_error);
  if (label == NULL)
    {
      if (g_error_matches (local_error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE))
        g_set_error (error, local_error->domain, local_error->code,
                     "%s\n  act float per_tensor sym + weight int4 per_group sym/asym -> W4A16 "
                     "(slimflow extension)",
                     local_error->message);
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
      g_clear_error (&local_error);
    }
  return label;
}

/* ---- configuration ------------------------------------------------------ */

static void
slim_linear_quant_pending_free (SlimLinearQuantPending *pending)
{
  slim_qlinear_free (pending->record);
  g_free (pending);
}

/* Resolves and checks the configuration (once: the base calls it before
 * compiling include / exclude); no model needed. */
static gboolean
slim_linear_quant_processor_prepare (SlimLinearProcessor *processor, GError **error)
{
  SlimLinearQuantProcessor *self = SLIM_LINEAR_QUANT_PROCESSOR (processor);
  SlimLinearQuantPlan plan = { 0 };
  SlimQConfig *act, *weight;
  SlimQConfigExt *act_ext, *weight_ext;
  SlimQMethod act_method = SLIM_QMETHOD_NONE;
  const SlimQuantizerInfo *act_info, *weight_info;
  gint act_max_bound = 0;

  if (self->qconfig == NULL || slim_linear_qconfig_get_weight (self->qconfig) == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   self->qconfig == NULL ? "missing required key 'qconfig'"
                                         : "missing required key 'qconfig.weight'");
      return FALSE;
    }
  act = slim_linear_qconfig_get_act (self->qconfig);
  weight = slim_linear_qconfig_get_weight (self->qconfig);
  act_ext = act != NULL ? slim_qconfig_get_ext (act) : NULL;
  weight_ext = slim_qconfig_get_ext (weight);

  plan.act = act != NULL ? slim_qconfig_get_scheme (act) : SLIM_QSCHEME_ACT_FLOAT;
  act_method = act != NULL ? slim_qconfig_get_method (act) : SLIM_QMETHOD_NONE;
  plan.weight = slim_qconfig_get_scheme (weight);
  plan.aggregation
      = act_ext != NULL ? slim_qconfig_ext_get_aggregation_type (act_ext) : SLIM_QAGGREGATION_MAX;
  act_max_bound = act_ext != NULL ? slim_qconfig_ext_get_max_bound (act_ext) : 0;

  act_info = slim_linear_quant_lookup_quantizer (SLIM_QROLE_ACT, &plan.act, act_method, error);
  if (act_info == NULL)
    {
      g_prefix_error (error, "qconfig.act: ");
      return FALSE;
    }
  weight_info = slim_linear_quant_lookup_quantizer (SLIM_QROLE_WEIGHT, &plan.weight,
                                                    slim_qconfig_get_method (weight), error);
  if (weight_info == NULL)
    {
      g_prefix_error (error, "qconfig.weight: ");
      return FALSE;
    }
  plan.label = slim_linear_quant_lookup_label (&plan.act, &plan.weight, error);
  if (plan.label == NULL)
    return FALSE;
  for (guint k = 0; k < 2; k++)
    {
      const SlimQuantizerInfo *info = k == 0 ? act_info : weight_info;
      g_autofree char *scheme = slim_qscheme_to_string (&info->scheme);

      if (!info->implemented)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "qconfig.%s: method %s for %s (%s) is not implemented in slimflow yet",
                       k == 0 ? "act" : "weight", slim_qmethod_get_nick (info->method), scheme,
                       info->ms_class);
          return FALSE;
        }
    }

  if (plan.weight.scope == SLIM_QSCOPE_PER_GROUP)
    {
      plan.group_size = weight_ext != NULL ? slim_qconfig_ext_get_group_size (weight_ext) : 0;
      if (plan.group_size <= 0)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                       "qconfig.weight: scope per_group needs ext.group_size > 0");
          return FALSE;
        }
    }
  if (!slim_qparams_config_init (
          &plan.weight_cfg, plan.weight.dtype, plan.weight.symmetric,
          weight_ext != NULL ? slim_qconfig_ext_get_max_bound (weight_ext) : 0, error))
    {
      g_prefix_error (error, "qconfig.weight: ");
      return FALSE;
    }
  if (plan.act.dtype != SLIM_QDTYPE_FLOAT
      && !slim_qparams_config_init (&plan.act_cfg, plan.act.dtype, plan.act.symmetric,
                                    act_max_bound, error))
    {
      g_prefix_error (error, "qconfig.act: ");
      return FALSE;
    }
  plan.data_free = act_info->data_free && weight_info->data_free;
  self->plan = plan;
  return TRUE;
}

/* ---- processor hooks ---------------------------------------------------- */

/* Quantizes one selected linear's weight and replaces it by its
 * dequantized values. */
static gboolean
slim_linear_quant_processor_process_linear (SlimLinearProcessor *processor,
                                            SlimLayer *layer,
                                            const char *module,
                                            GError **error)
{
  SlimLinearQuantProcessor *self = SLIM_LINEAR_QUANT_PROCESSOR (processor);
  const SlimLinearQuantPlan *plan = &self->plan;
  g_autofree char *weight_name = g_strconcat (module, ".weight", NULL);
  SlimTensor *weight = slim_layer_require_tensor (layer, weight_name, error);
  g_autoptr (SlimTensor) scale = NULL;       /* (n_out, n_params / n_out) */
  g_autoptr (SlimTensor) offset = NULL;      /* (n_out, n_params / n_out) */
  g_autoptr (SlimTensor) weight_q = NULL;    /* (n_out, n_in) int8 */
  g_autoptr (SlimTensor) dequantized = NULL; /* (n_out, n_in) float32 */
  g_autofree char *scale_name = g_strconcat (module, ".weight_scale", NULL);
  g_autofree char *offset_name = g_strconcat (module, ".weight_offset", NULL);
  SlimLinearQuantPending *pending;
  gint64 n_out, n_in, n_params;
  gint64 sb_shape[2];

  if (weight == NULL)
    return FALSE;
  if (slim_tensor_get_dtype (weight) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (weight) != 2)
    {
      g_autofree char *shape = slim_tensor_shape_to_string (weight);
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "%s must be a 2-D float32 matrix, got %s %s", weight_name,
                   slim_dtype_get_name (slim_tensor_get_dtype (weight)), shape);
      return FALSE;
    }
  n_out = slim_tensor_get_dim (weight, 0);
  n_in = slim_tensor_get_dim (weight, 1);
  if (!slim_tensor_is_finite (weight))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "%s has NaN or infinite values", weight_name);
      return FALSE;
    }
  if (!slim_qparams_weight_n_params (plan->weight.scope, n_out, n_in, plan->group_size, &n_params,
                                     error))
    {
      g_prefix_error (error, "%s (%s): ", module, plan->label);
      return FALSE;
    }
  if (strcmp (plan->label, "W4A8_DYNAMIC") == 0)
    {
      /* what the saver will need, checked before any work */
      if (n_out % 2 != 0)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s (W4A8_DYNAMIC): int4 packing pairs output rows, but the weight has "
                       "%" G_GINT64_FORMAT " rows",
                       module, n_out);
          return FALSE;
        }
      if (!slim_w4a8_scale_bias_shape (module, n_out, n_in, SLIM_W4A8_TP_NUM, sb_shape, error))
        {
          g_prefix_error (error, "%s (W4A8_DYNAMIC): ", module);
          return FALSE;
        }
    }

  scale = slim_tensor_new_2d (scale_name, SLIM_DTYPE_F32, n_out, n_params / n_out);
  offset = slim_tensor_new_2d (offset_name, SLIM_DTYPE_F32, n_out, n_params / n_out);
  weight_q = slim_tensor_new_2d (weight_name, SLIM_DTYPE_I8, n_out, n_in);
  dequantized = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F32, n_out, n_in);
  if (!slim_quantize_weight (&plan->weight_cfg, plan->weight.scope, slim_tensor_get_data (weight),
                             n_out, n_in, plan->group_size, slim_tensor_get_data_mut (scale),
                             slim_tensor_get_data_mut (offset), slim_tensor_get_data_mut (weight_q),
                             error))
    {
      g_prefix_error (error, "%s: ", module);
      return FALSE;
    }
  /* (n_out, n_in) viewed as n_params rows: a row per channel or per group */
  slim_dequantize_rows (slim_tensor_get_data (weight_q), n_params, n_out * n_in / n_params,
                        slim_tensor_get_data (scale), slim_tensor_get_data (offset), n_params,
                        slim_tensor_get_data_mut (dequantized));
  slim_layer_set_tensor (layer, dequantized);

  pending = g_new0 (SlimLinearQuantPending, 1);
  pending->layer = layer;
  pending->record = slim_qlinear_new (module, plan->label);
  pending->record->act = plan->act;
  pending->record->weight = plan->weight;
  pending->record->weight_q = g_steal_pointer (&weight_q);
  pending->record->weight_scale = g_steal_pointer (&scale);
  pending->record->weight_offset = g_steal_pointer (&offset);
  pending->record->group_size = plan->group_size;
  pending->record->n_out = n_out;
  pending->record->n_in = n_in;
  slim_minmax_observer_init (&pending->observer, plan->aggregation);
  g_hash_table_insert (self->pending, pending->record->module, pending);
  g_ptr_array_add (self->pending_order, pending);
  g_debug ("%s: %s, weight %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT " quantized", module,
           plan->label, n_out, n_in);
  return TRUE;
}

static gboolean
slim_linear_quant_linear_input (const char *module,
                                float *x, /* (n_tokens, n_in) row-major */
                                gint64 n_tokens,
                                gint64 n_in,
                                gpointer user_data,
                                GError **error)
{
  SlimLinearQuantProcessor *self = user_data;
  SlimLinearQuantPending *pending = g_hash_table_lookup (self->pending, module);
  const SlimLinearQuantPlan *plan = &self->plan;
  SlimQParamsConfig per_token_cfg;
  float min_val, max_val, scale, offset;

  if (pending == NULL || n_tokens == 0)
    return TRUE;
  if (pending->record->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: input has %" G_GINT64_FORMAT " features, the weight %" G_GINT64_FORMAT,
                   module, n_in, pending->record->n_in);
      return FALSE;
    }
  switch (plan->act.scope)
    {
    case SLIM_QSCOPE_PER_TENSOR:
      /* ActPerTensorMinmax: running range, this call quantized with it */
      slim_minmax_observer_update (&pending->observer, x, n_tokens * n_in);
      if (!slim_minmax_observer_get (&pending->observer, &min_val, &max_val, error))
        {
          g_prefix_error (error, "%s: ", module);
          return FALSE;
        }
      slim_qparams_compute (&plan->act_cfg, min_val, max_val, &scale, &offset);
      slim_fake_quantize_rows (&plan->act_cfg, x, n_tokens, n_in, &scale, &offset, 1, x);
      return TRUE;
    case SLIM_QSCOPE_PER_TOKEN:
      slim_fake_quantize_rows_dynamic (&plan->act_cfg, x, n_tokens, n_in, x);
      return TRUE;
    case SLIM_QSCOPE_PD_MIX:
      /* ActPDMixMinmax: decode (static) range observed, prefill behaviour
       * (per-token symmetric int8) applied */
      slim_minmax_observer_update (&pending->observer, x, n_tokens * n_in);
      if (!slim_qparams_config_init (&per_token_cfg, plan->act.dtype, TRUE, 0, error))
        return FALSE;
      slim_fake_quantize_rows_dynamic (&per_token_cfg, x, n_tokens, n_in, x);
      return TRUE;
    case SLIM_QSCOPE_PER_CHANNEL:
    case SLIM_QSCOPE_PER_GROUP:
    case SLIM_QSCOPE_PER_BLOCK:
    case SLIM_QSCOPE_PER_HEAD:
    case SLIM_QSCOPE_DUAL_SCALE:
    default:
      /* float activations: nothing (no legal pair has another act scope) */
      return TRUE;
    }
}

static void
slim_linear_quant_processor_get_forward_hooks (SlimProcessor *processor,
                                               SlimLayer *layer,
                                               SlimForwardHooks *hooks)
{
  SlimLinearQuantProcessor *self = SLIM_LINEAR_QUANT_PROCESSOR (processor);

  if (!slim_linear_processor_is_prepared (SLIM_LINEAR_PROCESSOR (self))
      || self->plan.act.dtype == SLIM_QDTYPE_FLOAT)
    return;
  hooks->linear_input = slim_linear_quant_linear_input;
  hooks->user_data = self;
}

/* Computes the static input scales and deploys the layer's records (the
 * base then releases the layer's linears). */
static gboolean
slim_linear_quant_processor_finish_layer (SlimLinearProcessor *processor,
                                          SlimLayer *layer,
                                          GError **error)
{
  SlimLinearQuantProcessor *self = SLIM_LINEAR_QUANT_PROCESSOR (processor);
  const SlimLinearQuantPlan *plan = &self->plan;
  g_autoptr (GPtrArray) keep
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_linear_quant_pending_free);
  gboolean ok = TRUE;

  for (guint i = 0; i < self->pending_order->len; i++)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (self->pending_order, i);
      SlimQLinear *record = pending->record;
      float min_val, max_val;

      if (pending->layer != layer || !ok)
        continue;
      if (plan->act.dtype != SLIM_QDTYPE_FLOAT
          && (plan->act.scope == SLIM_QSCOPE_PER_TENSOR || plan->act.scope == SLIM_QSCOPE_PD_MIX))
        {
          if (pending->observer.n_updates == 0)
            {
              g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                           "%s (%s): no calibration activation reached this linear, so its static "
                           "input scale cannot be computed",
                           record->module, record->label);
              ok = FALSE;
              continue;
            }
          if (!slim_minmax_observer_get (&pending->observer, &min_val, &max_val, error))
            {
              g_prefix_error (error, "%s: ", record->module);
              ok = FALSE;
              continue;
            }
          /* pd_mix saves an asymmetric per-tensor (decode) range */
          slim_qparams_compute (&plan->act_cfg, min_val, max_val, &record->input_scale,
                                &record->input_offset);
        }
    }
  /* detach this layer's entries (all of them, also after an error) */
  for (guint i = 0; i < self->pending_order->len;)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (self->pending_order, i);

      if (pending->layer != layer)
        {
          i++;
          continue;
        }
      g_hash_table_remove (self->pending, pending->record->module);
      if (ok)
        {
          slim_layer_set_qlinear (layer, g_steal_pointer (&pending->record));
          g_free (pending);
        }
      else
        g_ptr_array_add (keep, pending);
      g_ptr_array_steal_index (self->pending_order, i);
    }
  return ok;
}

/* "linear_quant (W8A8)" in the base's messages (unmatched patterns). */
static char *
slim_linear_quant_processor_describe (SlimLinearProcessor *processor)
{
  const char *label = SLIM_LINEAR_QUANT_PROCESSOR (processor)->plan.label;

  return label != NULL ? g_strdup_printf ("linear_quant (%s)", label) : g_strdup ("linear_quant");
}

static gboolean
slim_linear_quant_processor_is_data_free (SlimProcessor *processor)
{
  SlimLinearQuantProcessor *self = SLIM_LINEAR_QUANT_PROCESSOR (processor);

  return slim_linear_processor_prepare (SLIM_LINEAR_PROCESSOR (self), NULL)
         && self->plan.data_free;
}

static gboolean
slim_linear_quant_processor_supports_distributed (SlimProcessor *processor)
{
  /* minmax observers reduce across workers (msModelSlim's DP support) */
  return TRUE;
}

/* ---- GObject ------------------------------------------------------------ */

static void
slim_linear_quant_processor_finalize (GObject *object)
{
  SlimLinearQuantProcessor *self = SLIM_LINEAR_QUANT_PROCESSOR (object);

  g_hash_table_unref (self->pending);
  g_ptr_array_unref (self->pending_order);
  G_OBJECT_CLASS (slim_linear_quant_processor_parent_class)->finalize (object);
}

static void
slim_linear_quant_processor_class_init (SlimLinearQuantProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimLinearProcessorClass *linear_class = SLIM_LINEAR_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_linear_quant_processor_finalize;
  processor_class->get_forward_hooks = slim_linear_quant_processor_get_forward_hooks;
  processor_class->is_data_free = slim_linear_quant_processor_is_data_free;
  processor_class->supports_distributed = slim_linear_quant_processor_supports_distributed;
  linear_class->prepare = slim_linear_quant_processor_prepare;
  linear_class->process_linear = slim_linear_quant_processor_process_linear;
  linear_class->finish_layer = slim_linear_quant_processor_finish_layer;
  linear_class->describe = slim_linear_quant_processor_describe;
  SLIM_PROPERTIES_INSTALL (klass, slim_linear_quant_properties);
}

static void
slim_linear_quant_processor_init (SlimLinearQuantProcessor *self)
{
  self->pending = g_hash_table_new (g_str_hash, g_str_equal);
  self->pending_order
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_linear_quant_pending_free);
}

SLIM_PLUGIN_DEFINE (processor,
                    linear_quant,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Integer quantization of linear weights and activations (msModelSlim "
                    "linear_quant: W8A8, W8A8_DYNAMIC, W8A16, W4A8_DYNAMIC, W4A4_DYNAMIC, "
                    "W8A8_MIX)",
                    slim_linear_quant_processor_get_type)
