/* SPDX-License-Identifier: Apache-2.0
 *
 * autoround-quant.c: msModelSlim's `autoround_quant` processor
 * (modelslim-v1-spec.md 2.17; msModelSlim processor/quant/autoround.py and
 * autoround_utils): learned rounding of the linear weights of each decoder
 * layer, trained against the float layer's outputs.
 *
 *   type: autoround_quant            (alias: autoround)
 *   iters: 10                        SignSGD iterations per layer (>= 1)
 *   enable_minmax_tuning: true       train the min/max scale multipliers
 *   enable_round_tuning: true        train the rounding offsets V
 *   seed: 42                         sample-order generator (slimflow's)
 *   strategies:                      first matching strategy wins
 *     - qconfig:
 *         weight: {dtype: int4|int8, scope: per_channel|per_group,
 *                  symmetric: true|false, method: autoround,
 *                  ext: {group_size: 32, scale_dtype: bfloat16|float16|float32}}
 *         act: {dtype: int8|int4, scope: per_token, symmetric: true,
 *               method: minmax}          optional: float activations
 *       include: ["*"]
 *       exclude: []
 *
 * Labels: float activations W4A16 (int4) / W8A16 (int8); per_token int8
 * activations W4A8_DYNAMIC (int4 per_channel) / W8A8_DYNAMIC (int8);
 * per_token int4 W4A4_DYNAMIC.  The ascendv1 saver writes the records as
 * linear_quant's records of the same label (codes in int8 storage, one
 * float32 scale and offset per row or per (row, group); offsets 0 for
 * symmetric weights).
 *
 * Per decoder layer:
 *   calibration forward  the layer_input hook keeps a copy of the layer's
 *                        input for every calibration sequence (flex-kept.h:
 *                        resident within the keep budget, else in the
 *                        keep store);
 *   postprocess          the float targets (`targets`, below) are computed
 *                        with the float layer (slim_dense_layer_forward on
 *                        the layer's current weights) rather than kept from
 *                        the calibration forward: one forward per sample
 *                        against the loop's ~3 x 8 x iters; every linear a
 *                        strategy takes is trained by
 *                        slim_dense_layer_autoround (the whole loop there:
 *                        lr 5 / iters with linear decay, gradient
 *                        accumulation 8, batch 1, masked L1 x1000, EMA
 *                        best-parameter tracking; per_token activations
 *                        fake-quantized in the loop); its weight is
 *                        replaced by Ŵ and a SlimQLinear record attached.
 * targets (slimflow's extension; msModelSlim's trainer admits readings):
 *   float_stream (default)  the layer learns to reproduce the float model's
 *                        own hidden states: a float copy of the stream is
 *                        carried from layer to layer (a second keep store,
 *                        and in the checkpoint between layers), so a layer
 *                        also corrects the error of the quantized layers
 *                        before it (intel/auto-round's enable_quanted_input);
 *   layer                the float layer's outputs on the quantized stream's
 *                        inputs (each layer mimics its float self only);
 *   float_inputs         inputs and targets from the float stream, which also
 *                        feeds the next layer (refreshes_outputs FALSE: the
 *                        next layer gets the calibration forward's float
 *                        outputs; msModelSlim's trainer with its
 *                        enable_quanted_input false).
 * With float_stream and layer the next layer's inputs are the quantized
 * layer's outputs (refreshes_outputs: one more forward as deployed).
 * Measured on stories260K (W4A16 g32 asymmetric, float32 scales, 200
 * iterations, 48 samples): PPL 5.791 / 5.796 / 5.792, KL 0.0532 / 0.0634 /
 * 0.0592 for float_stream / layer / float_inputs (symmetric: 5.843 / 5.823 /
 * 5.815, KL 0.0569 / 0.0630 / 0.0619); W4A8_DYNAMIC 5.880 (float_stream) /
 * 5.945 (layer).
 * Progress: one line per layer (iterations, rate, ETA, the iteration's
 * loss) when stderr is a terminal; a message per layer with the first and
 * kept losses at the info level (G_MESSAGES_DEBUG=slim-autoround_quant).
 *
 * Checked before any weight is read (exit 2): in validate (the entry's
 * file:line:col) every strategy's qconfig (method autoround, int4/int8,
 * per_channel/per_group with ext.group_size > 0, act float or
 * per_token symmetric int8/int4 minmax, a legal label); in pre_run (the
 * model is open, SLIM_PIPELINE_ERROR_INCOMPATIBLE) a group_size that does
 * not divide a taken linear's input width (naming the linear), a W4A8
 * linear the saver cannot pack, a strategy list that takes no linear of
 * the model.  iters 0 is refused by the property's range (file:line:col
 * of the value).
 *
 * Mixture-of-experts layers (mixtral, qwen2_moe, qwen3_moe) go through
 * slim-moe-layer-autoround.h: every linear of the layer a strategy takes -
 * attention, the router (block.gate), each routed expert's gate/up/down,
 * the shared expert's and shared_expert_gate - is trained against the one
 * layer loss, as msModelSlim wraps every nn.Linear of the layer its
 * strategies match (exclude e.g. '*.gate' to leave the router float).
 * Measured on the synthetic MoE models (W4A16 g32 symmetric, all 48
 * calibration samples, 60 iterations vs iters 1): KL 0.5438 vs 0.5792
 * (tiny-random-mixtral-moe), 0.4506 vs 0.5007 (tiny-random-qwen2-moe).
 *
 * Determinism: the loop has no threads of its own and the sample order
 * depends on the seed, the layer index and the iteration only, so a seed
 * and an OpenBLAS thread count give the same bytes (resume included: what
 * crosses layers, the float stream, is in the checkpoint).  Across thread
 * counts the bytes may differ: OpenBLAS may sum in another order with
 * another count, in the loop and in every calibration forward, and sign
 * steps amplify last-bit differences (on stories260K, whose products are
 * small, 1 and 2 threads gave identical bytes; not guaranteed in general).
 *
 * Weights: symmetric (quant_tensor_sym, codes in [-2^(b-1), 2^(b-1) - 1]
 * with qmax 2^(b-1) - 1, offsets 0) or asymmetric (quant_tensor_asym: an
 * integer zero point per group, slim-autoround.h; records in linear_quant's
 * signed form, (code - offset) * scale).
 * Where slimflow differs from msModelSlim:
 * the sample order is slimflow's generator, not torch's; only decoder
 * layers are visited (lm_head and embeddings stay float); symmetric V is
 * clamped as a parameter (msModelSlim clamps it in the forward only, which
 * freezes a V stepped past the bound); per_token activations are
 * fake-quantized in the loop (WrapperLinear's train_with_act_quant is
 * False: msModelSlim trains against float activations); asymmetric weights
 * are intel auto-round's min/max quantizer with a rounded zero point
 * (msModelSlim's quant_tensor_asym is a signed full-range scale, max_v =
 * ±max(|a|, b) / (2^(b-1) - 1), with the constant zero point 2^(b-1)).
 * Measured after the trainer.py audit (loss pooled over the picked
 * samples' tokens, asymmetric V unbounded, scale floor 1e-5),
 * examples/dense-w4a16-autoround.yaml (bfloat16 scales), stories260K,
 * TinyStories ctx 512: PPL 5.7863 / 5.8223 / 5.7612 for seeds 42 / 7 / 123
 * (before: 5.7901 / 5.7549 / 5.8210): the seed moves PPL by ±0.03, more
 * than the audit did; seeds 1 / 2 gave 5.7654 / 5.7843 (five-seed mean
 * 5.7839).  Levers measured, none reliably under 5.788: targets layer
 * 5.7576 / 5.7691 / 5.8574 and float_inputs 5.8295 / 5.8341 / 5.8222 (seeds
 * 42 / 7 / 123); the 48 prompts joined three at a time (16 sequences)
 * 5.7731 / 5.7821 / 5.7618 / 5.8167 / 5.7825 (seeds 1 / 2; mean 5.7832;
 * seed 42 per-channel W4A16 5.7990 against 5.8304 on the short prompts,
 * W4A8_DYNAMIC 5.8158 against 5.8792: one seed each); msModelSlim's mix_calib
 * (out of TinyStories' domain) at 128 tokens 5.8687 / 5.8486 (42 / 7).
 */
#include "autoround-strategy.h"
#include "flex-kept.h"
#include "slim-dense-layer-autoround.h"
#include "slim-moe-layer-autoround.h"
#include "slim-progress.h"

#include <string.h>

#define SLIM_AUTOROUND_NAME "autoround_quant"

/* What each layer's training matches (the `targets` property). */
typedef enum
{
  SLIM_AUTOROUND_TARGETS_FLOAT_STREAM,
  SLIM_AUTOROUND_TARGETS_LAYER,
  SLIM_AUTOROUND_TARGETS_FLOAT_INPUTS,
} SlimAutoRoundTargets;

GType slim_autoround_targets_get_type (void);

G_DEFINE_ENUM_TYPE (SlimAutoRoundTargets,
                    slim_autoround_targets,
                    G_DEFINE_ENUM_VALUE (SLIM_AUTOROUND_TARGETS_FLOAT_STREAM, "float_stream"),
                    G_DEFINE_ENUM_VALUE (SLIM_AUTOROUND_TARGETS_LAYER, "layer"),
                    G_DEFINE_ENUM_VALUE (SLIM_AUTOROUND_TARGETS_FLOAT_INPUTS, "float_inputs"))

/* The key of the float stream's chunks in its store. */
#define SLIM_AUTOROUND_FLOAT_KEY "float"

/* A strategy resolved by validate. */
typedef struct
{
  SlimGlobList *globs;
  SlimQScheme act;           /* SLIM_QSCHEME_ACT_FLOAT for weight-only */
  SlimQScheme weight;        /* int4/int8 per_channel/per_group, sym or asym */
  SlimQParamsConfig act_cfg; /* per_token activations */
  gint64 group_size;         /* per_group, else 0 */
  SlimDType scale_dtype;
  const char *label;
  guint n_taken; /* linears of the model it takes (pre_run) */
} SlimAutoRoundPlan;

#define SLIM_TYPE_AUTOROUND_PROCESSOR (slim_autoround_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimAutoRoundProcessor, slim_autoround_processor, SLIM, AUTOROUND_PROCESSOR, SlimProcessor)

struct _SlimAutoRoundProcessor
{
  SlimProcessor parent_instance;

  gint64 iters;
  gboolean enable_minmax_tuning;
  gboolean enable_round_tuning;
  guint seed;
  SlimAutoRoundTargets targets;
  GPtrArray *strategies; /* SlimAutoRoundStrategy */

  SlimAutoRoundPlan *plans; /* [strategies->len], once validated */
  guint n_plans;
  SlimModel *model;         /* (unowned) from pre_run */
  SlimFlexKept *kept;       /* the layer's inputs (the quantized stream), one chunk a sample */
  SlimFlexKept *float_kept; /* targets float_stream: the float model's inputs of the layer */
  char *layer_prefix;       /* the layer whose inputs are being kept */
};

/* clang-format off */
static const SlimPropertyDecl slim_autoround_properties[] = {
  SLIM_PROPERTY_INT64 (
      SlimAutoRoundProcessor, iters, "iters", "Iterations",
      "SignSGD iterations per decoder layer (msModelSlim's default 10; its practices use 400); "
      "each takes up to 8 calibration samples (gradient accumulation 8, batch 1).",
      1, G_MAXINT32, 10),
  SLIM_PROPERTY_BOOLEAN (
      SlimAutoRoundProcessor, enable_minmax_tuning, "enable-minmax-tuning", "Min/max tuning",
      "Train the per-group min/max scale multipliers (init 1, clamped to [0, 1]).", TRUE),
  SLIM_PROPERTY_BOOLEAN (
      SlimAutoRoundProcessor, enable_round_tuning, "enable-round-tuning", "Rounding tuning",
      "Train the per-weight rounding offsets V (init 0, clamped to +-0.5 for int4, +-1 for "
      "int8).", TRUE),
  SLIM_PROPERTY_UINT (
      SlimAutoRoundProcessor, seed, "seed", "Seed",
      "Seed of the calibration-sample order (slimflow's generator, mixed with the layer index "
      "and the iteration; msModelSlim's torch order is not reproduced).",
      0, G_MAXUINT32, 42),
  SLIM_PROPERTY_ENUM (
      SlimAutoRoundProcessor, targets, "targets", "Targets",
      "What a layer is trained to reproduce: float_stream, the float model's own outputs of the "
      "layer (a float copy of the hidden states is carried from layer to layer, so a layer also "
      "corrects the error of the quantized layers before it, as intel/auto-round's "
      "enable_quanted_input does), or layer, the float layer's outputs on the quantized "
      "stream's inputs (each layer only mimics its float self), or float_inputs, the float "
      "layer's outputs on the float model's inputs, which also feed the next layer (the stream "
      "stays float: msModelSlim's trainer with enable_quanted_input false). slimflow's "
      "extension.",
      slim_autoround_targets_get_type, SLIM_AUTOROUND_TARGETS_FLOAT_STREAM),
  SLIM_PROPERTY_OBJECT_LIST (
      SlimAutoRoundProcessor, strategies, "strategies", "Strategies",
      "Which linears are quantized how: the first strategy whose include matches a linear "
      "(and whose exclude does not) takes it; linears no strategy takes stay float.",
      slim_autoround_strategy_get_type, .flags = SLIM_PARAM_REQUIRED | SLIM_PARAM_NON_EMPTY),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimAutoRoundProcessor, slim_autoround_processor, SLIM_TYPE_PROCESSOR)

/* ---- configuration ------------------------------------------------------ */

static void
slim_autoround_clear_plans (SlimAutoRoundProcessor *self)
{
  for (guint i = 0; i < self->n_plans; i++)
    slim_glob_list_free (self->plans[i].globs);
  g_clear_pointer (&self->plans, g_free);
  self->n_plans = 0;
}

static SlimDType
slim_autoround_scale_dtype (SlimQScaleDType dtype)
{
  switch (dtype)
    {
    case SLIM_QSCALE_DTYPE_FLOAT16:
      return SLIM_DTYPE_F16;
    case SLIM_QSCALE_DTYPE_BFLOAT16:
      return SLIM_DTYPE_BF16;
    case SLIM_QSCALE_DTYPE_FLOAT32:
    default:
      return SLIM_DTYPE_F32;
    }
}

/* Resolves strategy @i into @plan; errors start with "strategies[i]". */
static gboolean
slim_autoround_resolve (SlimAutoRoundStrategy *strategy,
                        guint i,
                        SlimAutoRoundPlan *plan,
                        GError **error)
{
  SlimLinearQConfig *qconfig = slim_autoround_strategy_get_qconfig (strategy);
  SlimQConfig *act, *weight;
  SlimQConfigExt *ext;
  GError *local_error = NULL;

  memset (plan, 0, sizeof (*plan));
  if (qconfig == NULL || slim_linear_qconfig_get_weight (qconfig) == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "strategies[%u]: missing required key 'qconfig.weight'", i);
      return FALSE;
    }
  act = slim_linear_qconfig_get_act (qconfig);
  weight = slim_linear_qconfig_get_weight (qconfig);
  ext = slim_qconfig_get_ext (weight);
  plan->act = act != NULL ? slim_qconfig_get_scheme (act) : SLIM_QSCHEME_ACT_FLOAT;
  plan->weight = slim_qconfig_get_scheme (weight);

  if (slim_qconfig_get_method (weight) != SLIM_QMETHOD_AUTOROUND)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "strategies[%u].qconfig.weight.method: %s; autoround_quant trains method "
                   "autoround weights only",
                   i, slim_qmethod_get_nick (slim_qconfig_get_method (weight)));
      return FALSE;
    }
  if ((plan->weight.dtype != SLIM_QDTYPE_INT4 && plan->weight.dtype != SLIM_QDTYPE_INT8)
      || (plan->weight.scope != SLIM_QSCOPE_PER_CHANNEL
          && plan->weight.scope != SLIM_QSCOPE_PER_GROUP))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "strategies[%u].qconfig.weight: %s %s; autoround weights are int4 or int8, "
                   "per_channel or per_group",
                   i, slim_qdtype_get_nick (plan->weight.dtype),
                   slim_qscope_get_nick (plan->weight.scope));
      return FALSE;
    }
  if (ext != NULL && slim_qconfig_ext_get_max_bound (ext) != 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "strategies[%u].qconfig.weight.ext.max_bound: not supported with method "
                   "autoround (codes use the dtype's whole range)",
                   i);
      return FALSE;
    }
  if (plan->weight.scope == SLIM_QSCOPE_PER_GROUP)
    {
      plan->group_size = ext != NULL ? slim_qconfig_ext_get_group_size (ext) : 0;
      if (plan->group_size <= 0)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                       "strategies[%u].qconfig.weight: scope per_group needs ext.group_size > 0",
                       i);
          return FALSE;
        }
    }
  plan->scale_dtype = slim_autoround_scale_dtype (
      ext != NULL ? slim_qconfig_ext_get_scale_dtype (ext) : SLIM_QSCALE_DTYPE_BFLOAT16);

  if (act != NULL && plan->act.dtype != SLIM_QDTYPE_FLOAT)
    {
      if (plan->act.scope != SLIM_QSCOPE_PER_TOKEN || !plan->act.symmetric
          || (plan->act.dtype != SLIM_QDTYPE_INT8 && plan->act.dtype != SLIM_QDTYPE_INT4)
          || slim_qconfig_get_method (act) != SLIM_QMETHOD_MINMAX)
        {
          g_autofree char *scheme = slim_qscheme_to_string (&plan->act);

          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "strategies[%u].qconfig.act: %s method %s; autoround_quant takes float "
                       "activations (no act) or per_token symmetric int8/int4 minmax (dynamic)",
                       i, scheme, slim_qmethod_get_nick (slim_qconfig_get_method (act)));
          return FALSE;
        }
      if (!slim_qparams_config_init (
              &plan->act_cfg, plan->act.dtype, TRUE,
              slim_qconfig_get_ext (act) != NULL
                  ? slim_qconfig_ext_get_max_bound (slim_qconfig_get_ext (act))
                  : 0,
              error))
        {
          g_prefix_error (error, "strategies[%u].qconfig.act: ", i);
          return FALSE;
        }
    }
  else
    plan->act = SLIM_QSCHEME_ACT_FLOAT;

  if (plan->act.dtype == SLIM_QDTYPE_FLOAT && plan->weight.dtype == SLIM_QDTYPE_INT4)
    plan->label = "W4A16"; /* linear_quant's label for int4 weight-only */
  else
    {
      plan->label = slim_qscheme_lookup_label (&plan->act, &plan->weight, &local_error);
      if (plan->label == NULL)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "strategies[%u].qconfig: %s", i, local_error->message);
          g_clear_error (&local_error);
          return FALSE;
        }
    }
  plan->globs = slim_glob_list_new (slim_autoround_strategy_get_include (strategy),
                                    slim_autoround_strategy_get_exclude (strategy), error);
  if (plan->globs == NULL)
    {
      g_prefix_error (error, "strategies[%u]: ", i);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_autoround_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimAutoRoundProcessor *self = SLIM_AUTOROUND_PROCESSOR (processor);
  guint n = self->strategies != NULL ? self->strategies->len : 0;
  SlimAutoRoundPlan *plans;

  if (self->plans != NULL)
    return TRUE;
  if (n == 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "strategies must list at least one strategy");
      return FALSE;
    }
  plans = g_new0 (SlimAutoRoundPlan, n);
  for (guint i = 0; i < n; i++)
    if (!slim_autoround_resolve (g_ptr_array_index (self->strategies, i), i, &plans[i], error))
      {
        for (guint j = 0; j <= i; j++)
          slim_glob_list_free (plans[j].globs);
        g_free (plans);
        return FALSE;
      }
  self->plans = plans;
  self->n_plans = n;
  return TRUE;
}

/* The strategy taking @module (first match wins), or -1. */
static gint
slim_autoround_match (SlimAutoRoundProcessor *self, const char *module)
{
  for (guint i = 0; i < self->n_plans; i++)
    if (slim_glob_list_match (self->plans[i].globs, module))
      return (gint)i;
  return -1;
}

/* (n_out, n_in) of linear @which of a dense layer of @config. */
static void
slim_autoround_linear_shape (const SlimModelConfig *config,
                             SlimDenseLinear which,
                             gint64 *out_n_out,
                             gint64 *out_n_in)
{
  const gint64 h = config->hidden_size, q = config->n_heads * config->head_dim;
  const gint64 kv = config->n_kv_heads * config->head_dim, inter = config->intermediate_size;

  switch (which)
    {
    case SLIM_DENSE_LINEAR_Q:
      *out_n_out = q, *out_n_in = h;
      break;
    case SLIM_DENSE_LINEAR_K:
    case SLIM_DENSE_LINEAR_V:
      *out_n_out = kv, *out_n_in = h;
      break;
    case SLIM_DENSE_LINEAR_O:
      *out_n_out = h, *out_n_in = q;
      break;
    case SLIM_DENSE_LINEAR_GATE:
    case SLIM_DENSE_LINEAR_UP:
      *out_n_out = inter, *out_n_in = h;
      break;
    case SLIM_DENSE_LINEAR_DOWN:
    default:
      *out_n_out = h, *out_n_in = inter;
      break;
    }
}

/* Checks one taken linear against what its strategy and label need. */
static gboolean
slim_autoround_check_linear (const SlimAutoRoundPlan *plan,
                             guint strategy,
                             const char *module,
                             gint64 n_out,
                             gint64 n_in,
                             GError **error)
{
  gint64 sb_shape[2];

  if (plan->group_size > 0 && n_in % plan->group_size != 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   SLIM_AUTOROUND_NAME ": strategies[%u] (%s): group_size %" G_GINT64_FORMAT
                                       " does not divide the input width %" G_GINT64_FORMAT
                                       " of %s; exclude it or "
                                       "choose a group_size dividing it",
                   strategy, plan->label, plan->group_size, n_in, module);
      return FALSE;
    }
  if (strcmp (plan->label, "W4A8_DYNAMIC") == 0)
    {
      if (n_out % 2 != 0)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       SLIM_AUTOROUND_NAME ": strategies[%u]: %s (W4A8_DYNAMIC): int4 packing "
                                           "pairs output rows, but the weight has %" G_GINT64_FORMAT
                                           " rows",
                       strategy, module, n_out);
          return FALSE;
        }
      if (!slim_w4a8_scale_bias_shape (module, n_out, n_in, SLIM_W4A8_TP_NUM, sb_shape, error))
        {
          GError *e = *error;

          *error = g_error_new (SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                                SLIM_AUTOROUND_NAME ": strategies[%u]: %s (W4A8_DYNAMIC): %s",
                                strategy, module, e->message);
          g_error_free (e);
          return FALSE;
        }
    }
  return TRUE;
}

/* pre_run's checks of the linears of a mixture-of-experts layer: every
 * routed expert's, the router, the shared expert's and its gate, by their
 * module names (slim_moe_layer_linear_name). */
static gboolean
slim_autoround_pre_run_moe (SlimAutoRoundProcessor *self,
                            const SlimModelConfig *config,
                            const char *prefix,
                            guint *n_taken,
                            GError **error)
{
  for (gint64 i = 0; i < slim_moe_layer_n_linears (config); i++)
    {
      g_autofree char *name = slim_moe_layer_linear_name (config, i);
      g_autofree char *module = g_strconcat (prefix, ".", name, NULL);
      gint s = slim_autoround_match (self, module);
      gint64 n_out, n_in;

      if (s < 0)
        continue;
      slim_moe_layer_linear_shape (config, i, &n_out, &n_in);
      if (!slim_autoround_check_linear (&self->plans[s], (guint)s, module, n_out, n_in, error))
        return FALSE;
      self->plans[s].n_taken++;
      (*n_taken)++;
    }
  return TRUE;
}

/* Everything the model decides, before any weight is read. */
static gboolean
slim_autoround_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  SlimAutoRoundProcessor *self = SLIM_AUTOROUND_PROCESSOR (processor);
  const SlimModelConfig *config = slim_model_get_config (model);
  guint n_taken = 0;

  if (!slim_autoround_processor_validate (processor, error))
    return FALSE;
  self->model = model;
  for (guint p = 0; p < self->n_plans; p++)
    self->plans[p].n_taken = 0;
  for (guint l = 0; l < slim_model_get_n_layers (model); l++)
    {
      g_autofree char *prefix = slim_model_dup_layer_prefix (model, l);

      if (slim_model_config_layer_is_moe (config, l))
        {
          if (!slim_autoround_pre_run_moe (self, config, prefix, &n_taken, error))
            return FALSE;
          continue;
        }
      for (gint w = 0; w < SLIM_DENSE_N_LINEARS; w++)
        {
          g_autofree char *module
              = g_strconcat (prefix, ".", slim_dense_linear_name ((SlimDenseLinear)w), NULL);
          gint s = slim_autoround_match (self, module);
          gint64 n_out, n_in;

          /* the float stream runs every layer through the dense forward */
          if (s < 0)
            continue;
          slim_autoround_linear_shape (config, (SlimDenseLinear)w, &n_out, &n_in);
          if (!slim_autoround_check_linear (&self->plans[s], (guint)s, module, n_out, n_in, error))
            return FALSE;
          self->plans[s].n_taken++;
          n_taken++;
        }
    }
  if (n_taken == 0)
    {
      g_autofree char *first = slim_model_dup_layer_prefix (model, 0);

      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   SLIM_AUTOROUND_NAME
                   ": the strategies take no linear of the model (its "
                   "linears are named like %s.self_attn.q_proj and %s.mlp.down_proj)",
                   first, first);
      return FALSE;
    }
  for (guint p = 0; p < self->n_plans; p++)
    if (self->plans[p].n_taken == 0)
      g_warning (SLIM_AUTOROUND_NAME ": strategies[%u] takes no linear (earlier strategies "
                                     "take all it matches, or it matches none)",
                 p);
  return TRUE;
}

/* ---- calibration forward ------------------------------------------------ */

static gboolean
slim_autoround_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimAutoRoundProcessor *self = SLIM_AUTOROUND_PROCESSOR (processor);

  if (!slim_flex_kept_clear (self->kept, error))
    return FALSE;
  g_free (self->layer_prefix);
  self->layer_prefix = g_strdup (slim_layer_get_prefix (layer));
  return TRUE;
}

/* Keeps every sequence of the layer's input as one sample. */
static gboolean
slim_autoround_layer_input (const char *layer,
                            const float *x, /* (n_tokens, hidden) */
                            gint64 n_tokens,
                            gint64 hidden,
                            const SlimBatch *batch,
                            gpointer user_data,
                            GError **error)
{
  SlimAutoRoundProcessor *self = user_data;
  gint64 start = 0;

  if (self->layer_prefix == NULL || strcmp (layer, self->layer_prefix) != 0)
    return TRUE;
  for (guint s = 0; s < batch->n_seqs; s++)
    {
      gint64 len = batch->seq_lens[s];

      if (len > 0
          && !slim_flex_kept_add (self->kept, layer, x + start * hidden, len, hidden, error))
        return FALSE;
      start += len;
    }
  g_return_val_if_fail (start == n_tokens, TRUE);
  return TRUE;
}

static void
slim_autoround_processor_get_forward_hooks (SlimProcessor *processor,
                                            SlimLayer *layer,
                                            SlimForwardHooks *hooks)
{
  if (slim_layer_get_index (layer) < 0)
    return;
  hooks->layer_input = slim_autoround_layer_input;
  hooks->user_data = processor;
}

/* ---- training ----------------------------------------------------------- */

typedef struct
{
  SlimProgress *progress;
} SlimAutoRoundProgressData;

static void
slim_autoround_on_iteration (gint64 it, gint64 iters, float loss, gpointer data)
{
  SlimAutoRoundProgressData *p = data;
  g_autofree char *note = g_strdup_printf ("loss %.4g", (double)loss);

  slim_progress_set_note (p->progress, note);
  slim_progress_update (p->progress, it + 1);
}

/* The SlimLinearWeights of @which in @weights. */
static SlimLinearWeights *
slim_autoround_linear_weights (SlimDenseLayerWeights *weights, SlimDenseLinear which)
{
  SlimLinearWeights *all[SLIM_DENSE_N_LINEARS]
      = { &weights->q,    &weights->k,  &weights->v,   &weights->o,
          &weights->gate, &weights->up, &weights->down };

  return all[which];
}

/* The record and the quantized weight of one trained linear. */
static void
slim_autoround_deploy (SlimLayer *layer,
                       const SlimAutoRoundPlan *plan,
                       const char *module,
                       const SlimDenseAutoRoundLinear *lin)
{
  g_autofree char *weight_name = g_strconcat (module, ".weight", NULL);
  g_autofree char *scale_name = g_strconcat (module, ".weight_scale", NULL);
  g_autofree char *offset_name = g_strconcat (module, ".weight_offset", NULL);
  const gint64 n = lin->n_out * lin->n_in, n_params = lin->n_out * lin->n_groups;
  SlimQLinear *record = slim_qlinear_new (module, plan->label);
  g_autoptr (SlimTensor) w_hat
      = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F32, lin->n_out, lin->n_in); /* (n_out, n_in) */

  record->act = plan->act;
  record->weight = plan->weight;
  record->group_size = plan->group_size;
  record->n_out = lin->n_out;
  record->n_in = lin->n_in;
  record->weight_q = slim_tensor_new_2d (weight_name, SLIM_DTYPE_I8, lin->n_out, lin->n_in);
  record->weight_scale = slim_tensor_new_2d (scale_name, SLIM_DTYPE_F32, lin->n_out, lin->n_groups);
  record->weight_offset
      = slim_tensor_new_2d (offset_name, SLIM_DTYPE_F32, lin->n_out, lin->n_groups);
  memcpy (slim_tensor_get_data_mut (record->weight_q), lin->q, (gsize)n * sizeof (gint8));
  memcpy (slim_tensor_get_data_mut (record->weight_scale), lin->scale,
          (gsize)n_params * sizeof (float));
  memcpy (slim_tensor_get_data_mut (record->weight_offset), lin->offset,
          (gsize)n_params * sizeof (float));
  memcpy (slim_tensor_get_data_mut (w_hat), lin->w_hat, (gsize)n * sizeof (float));
  slim_layer_set_tensor (layer, w_hat);
  slim_layer_set_qlinear (layer, record);
}

/* ---- the calibration samples of one layer and their float targets ------- */

/* The float layer's output y (seq_len, hidden) of input x (seq_len, hidden). */
typedef void (*SlimAutoRoundFloatForward) (
    const float *x, gint64 seq_len, gint64 hidden, float *y, gpointer data);

typedef struct
{
  GPtrArray *inputs;    /* SlimTensor (seq_len, hidden) the kept inputs */
  GPtrArray *targets;   /* float[seq_len * hidden] */
  const float **x_ptrs; /* [n] */
  const float **y_ptrs; /* [n] */
  gint64 *seq_lens;     /* [n] */
} SlimAutoRoundSamples;

static void
slim_autoround_samples_clear (SlimAutoRoundSamples *samples)
{
  g_clear_pointer (&samples->inputs, g_ptr_array_unref);
  g_clear_pointer (&samples->targets, g_ptr_array_unref);
  g_clear_pointer (&samples->x_ptrs, g_free);
  g_clear_pointer (&samples->y_ptrs, g_free);
  g_clear_pointer (&samples->seq_lens, g_free);
}

/* The n kept inputs of width hidden of the layer prefix and their
 * targets: the float layer's outputs on the float model's inputs
 * (float_stream) or on these inputs (layer); the float stream then moves
 * on to the next layer's inputs.  samples is cleared by the caller. */
static gboolean
slim_autoround_collect_samples (SlimAutoRoundProcessor *self,
                                const char *prefix,
                                guint n,
                                gint64 hidden,
                                SlimAutoRoundFloatForward forward,
                                gpointer forward_data,
                                SlimAutoRoundSamples *samples,
                                GError **error)
{
  const gboolean float_stream = self->targets == SLIM_AUTOROUND_TARGETS_FLOAT_STREAM;
  gboolean have_float = FALSE;

  if (float_stream)
    {
      gint64 float_hidden = hidden;
      guint n_float
          = slim_flex_kept_get_n_chunks (self->float_kept, SLIM_AUTOROUND_FLOAT_KEY, &float_hidden);

      /* none yet: the first decoder layer, whose inputs are the float model's */
      if (n_float != 0 && (n_float != n || float_hidden != hidden))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                       SLIM_AUTOROUND_NAME
                       ": %s: %u float-stream samples of width %" G_GINT64_FORMAT
                       " for %u calibration samples of width %" G_GINT64_FORMAT,
                       prefix, n_float, float_hidden, n, hidden);
          return FALSE;
        }
      have_float = n_float != 0;
    }

  samples->inputs = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  samples->targets = g_ptr_array_new_with_free_func (g_free);
  samples->x_ptrs = g_new (const float *, n);
  samples->y_ptrs = g_new (const float *, n);
  samples->seq_lens = g_new (gint64, n);
  for (guint s = 0; s < n; s++)
    {
      SlimTensor *x = slim_flex_kept_get (self->kept, prefix, s, error);
      g_autoptr (SlimTensor) f = NULL; /* (seq_len, hidden) the float stream's input */
      gint64 seq_len;
      float *y;

      if (x == NULL)
        return FALSE;
      g_ptr_array_add (samples->inputs, x);
      seq_len = samples->seq_lens[s] = slim_tensor_get_dim (x, 0);
      samples->x_ptrs[s] = slim_tensor_get_data (x);
      if (have_float)
        {
          f = slim_flex_kept_get (self->float_kept, SLIM_AUTOROUND_FLOAT_KEY, s, error);
          if (f == NULL)
            return FALSE;
          if (slim_tensor_get_dim (f, 0) != seq_len)
            {
              g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                           SLIM_AUTOROUND_NAME ": %s: float-stream sample %u has %" G_GINT64_FORMAT
                                               " tokens, the calibration sample %" G_GINT64_FORMAT,
                           prefix, s, slim_tensor_get_dim (f, 0), seq_len);
              return FALSE;
            }
        }
      y = g_new (float, seq_len *hidden); /* (seq_len, hidden) */
      forward (f != NULL ? slim_tensor_get_data (f) : samples->x_ptrs[s], seq_len, hidden, y,
               forward_data);
      g_ptr_array_add (samples->targets, y);
      samples->y_ptrs[s] = y;
    }
  if (float_stream)
    {
      if (!slim_flex_kept_clear (self->float_kept, error))
        return FALSE;
      for (guint s = 0; s < n; s++)
        if (!slim_flex_kept_add (self->float_kept, SLIM_AUTOROUND_FLOAT_KEY, samples->y_ptrs[s],
                                 samples->seq_lens[s], hidden, error))
          return FALSE;
    }
  return TRUE;
}

/* The training config of a linear of n_in inputs under plan. */
static void
slim_autoround_config_of (const SlimAutoRoundPlan *plan, gint64 n_in, SlimAutoRoundConfig *cfg)
{
  cfg->bits = plan->weight.dtype == SLIM_QDTYPE_INT4 ? 4 : 8;
  cfg->group_size = plan->group_size > 0 ? plan->group_size : n_in;
  cfg->scale_dtype = plan->scale_dtype;
  cfg->asymmetric = !plan->weight.symmetric;
}

/* The progress line of a layer's iterations. */
static SlimProgress *
slim_autoround_progress_new (SlimAutoRoundProcessor *self, gint index)
{
  g_autofree char *label = g_strdup_printf ("autoround layer %d", index);

  return slim_progress_new (label, "iterations", self->iters,
                            slim_progress_default_enabled (FALSE));
}

typedef struct
{
  const SlimModelConfig *config;
  const SlimMoeLayerWeights *weights;
} SlimAutoRoundMoeForward;

static void
slim_autoround_moe_float_forward (
    const float *x, gint64 seq_len, gint64 hidden, float *y, gpointer data)
{
  const SlimAutoRoundMoeForward *f = data;
  SlimBatch batch = { 1, &seq_len };
  SlimMoeLayerTape tape = { 0 };

  slim_moe_layer_forward (f->config, f->weights, &batch, x, &tape);
  memcpy (y, tape.y, (gsize)(seq_len * hidden) * sizeof (float));
  slim_moe_layer_tape_clear (&tape);
}

typedef struct
{
  const SlimModelConfig *config;
  const SlimDenseLayerWeights *weights;
} SlimAutoRoundDenseForward;

static void
slim_autoround_dense_float_forward (
    const float *x, gint64 seq_len, gint64 hidden, float *y, gpointer data)
{
  const SlimAutoRoundDenseForward *f = data;
  SlimBatch batch = { 1, &seq_len };
  SlimDenseLayerTape tape = { 0 };

  slim_dense_layer_forward (f->config, f->weights, &batch, x, &tape);
  memcpy (y, tape.y, (gsize)(seq_len * hidden) * sizeof (float));
  slim_dense_layer_tape_clear (&tape);
}

/* postprocess of a mixture-of-experts layer: the steps of the dense one
 * below (float targets from the layer's float forward, the float stream
 * moved on, the loop, the records) with slim-moe-layer-autoround.h; every
 * linear a strategy takes - attention, router, routed experts, shared
 * expert and its gate - is trained against the one layer loss. */
static gboolean
slim_autoround_postprocess_moe (SlimAutoRoundProcessor *self,
                                SlimLayer *layer,
                                const SlimModelConfig *config,
                                GError **error)
{
  const char *prefix = slim_layer_get_prefix (layer);
  const gint index = slim_layer_get_index (layer);
  const gint64 n_lin = slim_moe_layer_n_linears (config);
  SlimMoeLayerWeights weights = { 0 };
  SlimMoeAutoRoundOptions options = { 0 };
  SlimMoeAutoRoundResult result = { 0 };
  g_autofree gint *strategy_of = g_new (gint, n_lin);                         /* [n_lin] */
  g_autofree SlimAutoRoundConfig *cfgs = g_new0 (SlimAutoRoundConfig, n_lin); /* [n_lin] */
  SlimAutoRoundSamples samples = { 0 };
  SlimAutoRoundMoeForward float_forward = { config, &weights };
  g_autoptr (SlimProgress) progress = NULL;
  SlimAutoRoundProgressData progress_data;
  gboolean any = FALSE, ok = FALSE;
  gint64 hidden = 0, t_start;
  guint n;

  for (gint64 w = 0; w < n_lin; w++)
    {
      g_autofree char *name = slim_moe_layer_linear_name (config, w);
      g_autofree char *module = g_strconcat (prefix, ".", name, NULL);

      strategy_of[w] = slim_autoround_match (self, module);
      any = any || strategy_of[w] >= 0;
    }
  n = slim_flex_kept_get_n_chunks (self->kept, prefix, &hidden);
  if (n == 0 && !any)
    return slim_flex_kept_clear (self->kept, error);
  if (n == 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   SLIM_AUTOROUND_NAME ": %s: no calibration sample reached the layer", prefix);
      return FALSE;
    }
  if (!slim_moe_layer_weights_init (&weights, config, layer, error))
    {
      g_prefix_error (error, SLIM_AUTOROUND_NAME ": %s: ", prefix);
      return FALSE;
    }
  if (!slim_autoround_collect_samples (self, prefix, n, hidden, slim_autoround_moe_float_forward,
                                       &float_forward, &samples, error))
    goto out;
  if (!any)
    {
      ok = slim_flex_kept_clear (self->kept, error);
      goto out;
    }

  options.iters = self->iters;
  options.enable_minmax_tuning = self->enable_minmax_tuning;
  options.enable_round_tuning = self->enable_round_tuning;
  options.seed = (guint32)self->seed ^ ((guint32)index * 0x9E3779B9u);
  options.n_linears = n_lin;
  options.linears = cfgs;
  for (gint64 w = 0; w < n_lin; w++)
    {
      const SlimAutoRoundPlan *plan;
      gint64 n_out, n_in;

      if (strategy_of[w] < 0)
        continue;
      plan = &self->plans[strategy_of[w]];
      slim_moe_layer_linear_shape (config, w, &n_out, &n_in);
      slim_autoround_config_of (plan, n_in, &cfgs[w]);
      if (plan->act.dtype != SLIM_QDTYPE_FLOAT)
        weights.linears[w].act = &plan->act_cfg;
    }

  progress = slim_autoround_progress_new (self, index);
  progress_data.progress = progress;
  t_start = g_get_monotonic_time ();
  ok = slim_moe_layer_autoround (config, &weights, n, samples.x_ptrs, samples.seq_lens,
                                 samples.y_ptrs, &options, slim_autoround_on_iteration,
                                 &progress_data, &result, error);
  slim_progress_finish (progress);
  if (!ok)
    {
      g_prefix_error (error, SLIM_AUTOROUND_NAME ": %s: ", prefix);
      goto out;
    }
  g_info ("%s: %" G_GINT64_FORMAT " iterations on %u samples in %.1f s (mixture of experts): "
          "loss %.4g at plain rounding, %.4g kept (iteration %" G_GINT64_FORMAT ")",
          prefix, self->iters, n, (double)(g_get_monotonic_time () - t_start) / G_USEC_PER_SEC,
          (double)result.first_loss, (double)result.best_loss, result.best_iter);

  /* the weights borrowed from the layer are replaced from here on */
  for (gint64 w = 0; w < n_lin; w++)
    if (strategy_of[w] >= 0 && result.linears[w].quantized)
      {
        g_autofree char *name = slim_moe_layer_linear_name (config, w);
        g_autofree char *module = g_strconcat (prefix, ".", name, NULL);

        slim_autoround_deploy (layer, &self->plans[strategy_of[w]], module, &result.linears[w]);
      }
  ok = slim_flex_kept_clear (self->kept, error);

out:
  slim_autoround_samples_clear (&samples);
  slim_moe_autoround_result_clear (&result);
  slim_moe_layer_weights_clear (&weights);
  return ok;
}

static gboolean
slim_autoround_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimAutoRoundProcessor *self = SLIM_AUTOROUND_PROCESSOR (processor);
  const SlimModelConfig *config;
  const char *prefix = slim_layer_get_prefix (layer);
  const gint index = slim_layer_get_index (layer);
  SlimDenseLayerWeights weights = { 0 };
  SlimDenseAutoRoundOptions options = { 0 };
  SlimDenseAutoRoundResult result = { 0 };
  gint strategy_of[SLIM_DENSE_N_LINEARS];
  SlimAutoRoundSamples samples = { 0 };
  SlimAutoRoundDenseForward float_forward;
  g_autoptr (SlimProgress) progress = NULL;
  SlimAutoRoundProgressData progress_data;
  gboolean any = FALSE, ok;
  gint64 hidden = 0, t_start;
  guint n;

  if (index < 0 || self->model == NULL)
    return TRUE;
  config = slim_model_get_config (self->model);
  if (slim_model_config_layer_is_moe (config, (guint)index))
    return slim_autoround_postprocess_moe (self, layer, config, error);
  for (gint w = 0; w < SLIM_DENSE_N_LINEARS; w++)
    {
      g_autofree char *module
          = g_strconcat (prefix, ".", slim_dense_linear_name ((SlimDenseLinear)w), NULL);

      strategy_of[w] = slim_autoround_match (self, module);
      any = any || strategy_of[w] >= 0;
    }
  n = slim_flex_kept_get_n_chunks (self->kept, prefix, &hidden);
  if (n == 0 && !any)
    return slim_flex_kept_clear (self->kept, error);
  if (n == 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   SLIM_AUTOROUND_NAME ": %s: no calibration sample reached the layer", prefix);
      return FALSE;
    }
  if (!slim_dense_layer_weights_init (&weights, config, layer, error))
    {
      g_prefix_error (error, SLIM_AUTOROUND_NAME ": %s: ", prefix);
      return FALSE;
    }
  float_forward = (SlimAutoRoundDenseForward){ config, &weights };
  if (!slim_autoround_collect_samples (self, prefix, n, hidden, slim_autoround_dense_float_forward,
                                       &float_forward, &samples, error))
    {
      slim_autoround_samples_clear (&samples);
      return FALSE;
    }
  if (!any)
    {
      slim_autoround_samples_clear (&samples);
      return slim_flex_kept_clear (self->kept, error);
    }

  options.iters = self->iters;
  options.enable_minmax_tuning = self->enable_minmax_tuning;
  options.enable_round_tuning = self->enable_round_tuning;
  /* one order per layer: the seed mixed with the layer index */
  options.seed = (guint32)self->seed ^ ((guint32)index * 0x9E3779B9u);
  for (gint w = 0; w < SLIM_DENSE_N_LINEARS; w++)
    {
      const SlimAutoRoundPlan *plan;
      gint64 n_out, n_in;

      if (strategy_of[w] < 0)
        continue;
      plan = &self->plans[strategy_of[w]];
      slim_autoround_linear_shape (config, (SlimDenseLinear)w, &n_out, &n_in);
      slim_autoround_config_of (plan, n_in, &options.linears[w]);
      if (plan->act.dtype != SLIM_QDTYPE_FLOAT)
        slim_autoround_linear_weights (&weights, (SlimDenseLinear)w)->act = &plan->act_cfg;
    }

  progress = slim_autoround_progress_new (self, index);
  progress_data.progress = progress;
  t_start = g_get_monotonic_time ();
  ok = slim_dense_layer_autoround (config, &weights, n, samples.x_ptrs, samples.seq_lens,
                                   samples.y_ptrs, &options, slim_autoround_on_iteration,
                                   &progress_data, &result, error);
  slim_progress_finish (progress);
  slim_autoround_samples_clear (&samples);
  if (!ok)
    {
      g_prefix_error (error, SLIM_AUTOROUND_NAME ": %s: ", prefix);
      slim_dense_autoround_result_clear (&result);
      return FALSE;
    }
  g_info ("%s: %" G_GINT64_FORMAT " iterations on %u samples in %.1f s: loss %.4g at plain "
          "rounding, %.4g kept (iteration %" G_GINT64_FORMAT ")",
          prefix, self->iters, n, (double)(g_get_monotonic_time () - t_start) / G_USEC_PER_SEC,
          (double)result.first_loss, (double)result.best_loss, result.best_iter);

  /* the weights borrowed from the layer are replaced from here on */
  for (gint w = 0; w < SLIM_DENSE_N_LINEARS; w++)
    if (strategy_of[w] >= 0 && result.linears[w].quantized)
      {
        g_autofree char *module
            = g_strconcat (prefix, ".", slim_dense_linear_name ((SlimDenseLinear)w), NULL);

        slim_autoround_deploy (layer, &self->plans[strategy_of[w]], module, &result.linears[w]);
      }
  slim_dense_autoround_result_clear (&result);
  return slim_flex_kept_clear (self->kept, error);
}

/* ---- run properties ----------------------------------------------------- */

/* Trained weights change what the layer computes after the calibration
 * forward: the next layer's inputs come from the quantized layer. */
static gboolean
slim_autoround_processor_refreshes_outputs (SlimProcessor *processor)
{
  return SLIM_AUTOROUND_PROCESSOR (processor)->targets != SLIM_AUTOROUND_TARGETS_FLOAT_INPUTS;
}

/* What crosses layers: with targets float_stream, the float model's
 * inputs of the next layer, "a(xay)" (per calibration sample its tokens
 * and its (tokens, hidden) float32 values in this machine's byte order);
 * nothing with targets layer (an empty array). */
#define SLIM_AUTOROUND_STATE_TYPE "a(xay)"

static GBytes *
slim_autoround_processor_save_state (SlimProcessor *processor, GError **error)
{
  SlimAutoRoundProcessor *self = SLIM_AUTOROUND_PROCESSOR (processor);
  g_autoptr (GVariantBuilder) builder
      = g_variant_builder_new (G_VARIANT_TYPE (SLIM_AUTOROUND_STATE_TYPE));
  g_autoptr (GVariant) value = NULL;
  gint64 hidden = 0;
  guint n = slim_flex_kept_get_n_chunks (self->float_kept, SLIM_AUTOROUND_FLOAT_KEY, &hidden);

  for (guint s = 0; s < n; s++)
    {
      g_autoptr (SlimTensor) f
          = slim_flex_kept_get (self->float_kept, SLIM_AUTOROUND_FLOAT_KEY, s, error);
      gint64 n_tokens;

      if (f == NULL)
        return NULL;
      n_tokens = slim_tensor_get_dim (f, 0);
      g_variant_builder_add (
          builder, "(x@ay)", n_tokens,
          g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, slim_tensor_get_data (f),
                                     (gsize)(n_tokens * hidden) * sizeof (float), 1));
    }
  value = g_variant_ref_sink (g_variant_builder_end (builder));
  return g_variant_get_data_as_bytes (value);
}

static gboolean
slim_autoround_processor_restore_state (SlimProcessor *processor, GBytes *state, GError **error)
{
  SlimAutoRoundProcessor *self = SLIM_AUTOROUND_PROCESSOR (processor);
  g_autoptr (GVariant) value = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (SLIM_AUTOROUND_STATE_TYPE), state, FALSE));
  const gint64 hidden = self->model != NULL ? slim_model_get_config (self->model)->hidden_size : 0;
  gsize n = g_variant_n_children (value);

  if (!g_variant_is_normal_form (value) || (n > 0 && hidden <= 0))
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   SLIM_AUTOROUND_NAME ": malformed saved state");
      return FALSE;
    }
  if (!slim_flex_kept_clear (self->float_kept, error))
    return FALSE;
  for (gsize s = 0; s < n; s++)
    {
      g_autoptr (GVariant) values = NULL;
      gint64 n_tokens = 0;
      gsize n_bytes = 0;
      const float *data;

      g_variant_get_child (value, s, "(x@ay)", &n_tokens, &values);
      data = g_variant_get_fixed_array (values, &n_bytes, 1);
      if (n_tokens < 1 || n_bytes != (gsize)(n_tokens * hidden) * sizeof (float))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       SLIM_AUTOROUND_NAME ": saved float-stream sample %" G_GSIZE_FORMAT
                                           " has %" G_GSIZE_FORMAT " bytes for %" G_GINT64_FORMAT
                                           " tokens of width %" G_GINT64_FORMAT,
                       s, n_bytes, n_tokens, hidden);
          return FALSE;
        }
      if (!slim_flex_kept_add (self->float_kept, SLIM_AUTOROUND_FLOAT_KEY, data, n_tokens, hidden,
                               error))
        return FALSE;
    }
  return TRUE;
}

/* ---- GObject ------------------------------------------------------------ */

static void
slim_autoround_processor_finalize (GObject *object)
{
  SlimAutoRoundProcessor *self = SLIM_AUTOROUND_PROCESSOR (object);

  slim_flex_kept_free (self->kept);
  slim_flex_kept_free (self->float_kept);
  slim_autoround_clear_plans (self);
  g_free (self->layer_prefix);
  G_OBJECT_CLASS (slim_autoround_processor_parent_class)->finalize (object);
}

static void
slim_autoround_processor_class_init (SlimAutoRoundProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_autoround_processor_finalize;
  processor_class->validate = slim_autoround_processor_validate;
  processor_class->pre_run = slim_autoround_processor_pre_run;
  processor_class->preprocess = slim_autoround_processor_preprocess;
  processor_class->get_forward_hooks = slim_autoround_processor_get_forward_hooks;
  processor_class->postprocess = slim_autoround_processor_postprocess;
  processor_class->refreshes_outputs = slim_autoround_processor_refreshes_outputs;
  processor_class->save_state = slim_autoround_processor_save_state;
  processor_class->restore_state = slim_autoround_processor_restore_state;
  SLIM_PROPERTIES_INSTALL (klass, slim_autoround_properties);
}

static void
slim_autoround_processor_init (SlimAutoRoundProcessor *self)
{
  self->kept = slim_flex_kept_new (SLIM_PROCESSOR (self), SLIM_AUTOROUND_NAME);
  /* the float stream and the layer's inputs share the one keep budget */
  self->float_kept = slim_flex_kept_new_sharing (self->kept, SLIM_AUTOROUND_NAME "-float");
}

SLIM_PLUGIN_DEFINE (processor,
                    autoround_quant,
                    SLIM_PLUGIN_ALIASES ("autoround"),
                    "Learned rounding (msModelSlim autoround_quant): per decoder layer, SignSGD "
                    "on rounding offsets and min/max scale multipliers against the float "
                    "layer's outputs; W4A16, W8A16, W4A8_DYNAMIC, W8A8_DYNAMIC, W4A4_DYNAMIC",
                    slim_autoround_processor_get_type)
