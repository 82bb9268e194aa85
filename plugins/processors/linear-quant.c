/* SPDX-License-Identifier: Apache-2.0
 *
 * linear-quant.c: msModelSlim's `linear_quant` processor (modelslim-v1-spec.md
 * 2.1; msModelSlim processor/quant/linear.py, core/quantizer/linear.py,
 * core/quantizer/impl/minmax.py, gptq.py, ssz.py and histogram.py): integer
 * quantization of the weights and activations of the linear modules
 * selected by name.
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
 * weight is read, that both quantizers are registered and implemented
 * (act: minmax, histogram for int8 per_tensor; weight: minmax, gptq for
 * int8/int4 per_channel/per_group, sym or asym, ssz for int8/int4
 * per_channel sym, hqq for int8/int4 per_channel/per_group asym: slimflow's
 * extension, QuantConfig's w_method HQQ, data-free, slim-hqq.h; nf for
 * int4 per_group sym, weight-only: slimflow's extension, QuantConfig's
 * w_method NF, the NF4 code book times each group's absmax, data-free,
 * label NF4, slim-nf4.h; mxfp8/mxfp4 per_block minmax for both) and that the
 * act/weight pair is one of the legal combinations; the pair decides the
 * description label (W8A8, W8A8_DYNAMIC, W8A16, W4A16, W4A8_DYNAMIC,
 * W4A4_DYNAMIC, W8A8_MIX, W8A8_MXFP8, W4A8_MXFP, W4A4_MXFP4, and
 * WFP8AFP8_DYNAMIC for fp8_e4m3 per_token activations with fp8_e4m3
 * per_channel weights: scale = amax / 448 per token / per output row,
 * E4M3 elements rounded to nearest even, slim-fp8.h)
 *
 * MX per_block (msModelSlim MXWeightPerBlockMinmax / MXActPerBlockMinmax,
 * slim-mx.h): the weight is quantized in blocks of 32 input features with
 * one E8M0 shared exponent each (zero-padded to a multiple of 32, as
 * reshape_to_blocks does); mxfp4 weights need an even width (two E2M1
 * codes per byte).  The activation quantizer is the identity during
 * calibration (data-free) and the deployed record quantizes each token row
 * in blocks of 32 (slim_qlinear_apply_act).  ext.axes may only be -1.
 * MX weight methods (slim-mx-weight-methods.h): ceil_x (ext.ceil_x_value,
 * or enable_search over search_min..search_max by search_step, per weight
 * tensor) and fouroversix (whole blocks only: a partial block is an error
 * naming the tensor) for mxfp4, mse_round for mxfp8; same labels.
 * dual_scale mxfp4 act x weight (method dualscale, ext.dual_block_size, a
 * multiple of 32, required on both; slim-mx-dual-scale.h): label
 * W4A4_MXFP4_DUALSCALE, the record keeps weight_dual_scale.  Weight-only
 * fp8_e4m3 per_channel (no act): label WFP8A16, slimflow's (msModelSlim has
 * no IR for it; only compressed_tensors saves it).  The `pdmix` processor
 * (pdmix.c) is this code with the W8A8_MIX qconfig fixed.
 *
 * Per decoder layer, with msModelSlim's scheduling (spec 1.5):
 *   preprocess   for every linear of the layer matching include and not
 *                exclude (and not already quantized by an earlier
 *                processor or an earlier child of the same group, as in
 *                msModelSlim where a replaced module is no nn.Linear any
 *                more): minmax weights are quantized now (per channel: one
 *                scale per output row; per group: runs of group_size input
 *                features), ssz weights too (slim-ssz.h: minmax start, at
 *                most ext.step least-squares scale refits, per channel
 *                keep-if-better), hqq weights too (half-quadratic zero-point
                solver per group, a float offset), and the layer's weight is
                replaced by its
 *                dequantized values, as msModelSlim's LinearQuantizer runs
 *                the calibration forward with fake-quantized minmax/ssz
 *                weights (WeightPerChannelSsz quantizes on its first forward).
 *                gptq weights are only checked: their calibration forward
 *                uses the float weights (WeightPerChannelGPTQ.forward
 *                returns the float weight while accumulating).
 *   forward      (the linear_input hook) fake-quantizes each selected
 *                linear's input as msModelSlim's quantizers do during
 *                calibration: static per_tensor minmax accumulates min/max
 *                over every call so far (aggregation max or mean) and
 *                quantizes the call with the running parameters; histogram
 *                updates the linear's SlimHistogramObserver (clip search
 *                by ext.search_method: l2_norm, or kl_divergence) and quantizes
 *                the call with the qparams of this call's clip bounds,
 *                clamped to them (ActPerTensorHistogram.forward);
 *                per_token quantizes each token row with its own min/max;
 *                pd_mix accumulates static parameters but quantizes per
 *                token (symmetric).  Then, for gptq weights, the (fake-
 *                quantized) input is added to the linear's Hessian, as
 *                LinearQuantizer.forward hands the quantized x to the
 *                weight quantizer.
 *   postprocess  computes the static input scale/offset from all samples
 *                (minmax: the accumulated range; histogram: get_q_param of
 *                the last call's clip bounds), GPTQ-quantizes gptq weights
 *                and replaces the layer's weight by the dequantized result,
 *                and attaches a SlimQLinear record (slim-qlinear.h) to the
 *                layer: later forwards and the savers use it.  The layer's
 *                Hessians are freed here (also after an error).
 * Which forward feeds the next layer (slim-schedule.c process_unit): every
 * processor that is not data-free runs its own calibration forward of the
 * layer into the next layer's input buffer, so the last such processor's
 * forward wins; when none ran, one forward with the deployed records
 * only.  With gptq that forward used the float weights (and this
 * processor's activation fake-quant), so the next layer is calibrated on
 * float-weight outputs, as in msModelSlim, unless a later processor of the
 * same layer forwards again through the deployed (dequantized) records.
 * linear_math (slimflow's extension; default float, the above): int8 marks
 * the records integer (SlimQLinear.math), so every later forward of the
 * layer runs their linears as the deployed int8 x int8 -> int32 product
 * (slim-int-linear.h), and the processor reports refreshes_outputs: the
 * next layer's inputs come from one more forward, as deployed, with the
 * final static activation parameters instead of the running ones.
 * calib_math (slimflow's extension; default float): int8 computes the
 * calibration forward's products of W8A8 static linears (the input
 * fake-quantized with this call's running parameters times the minmax /
 * ssz int8 weight) as int8 codes with exact int32 sums
 * (slim_int_linear_new_fake_quant, packed once per linear and layer):
 * msModelSlim's value without float32's term-by-term rounding; other
 * schemes refuse it in prepare.
 * A resume checkpoint is taken between layers; nothing of a finished layer
 * (observers, Hessians) is needed later, so the saved state holds the
 * pattern hits only.
 * Data-free configurations (per_token activations or float activations with
 * minmax weights) need no calibration forward.
 *
 * GPTQ Hessians (linear-quant-hessians.h): linears of one parent module
 * reading the same input (q/k/v, gate/up, one expert's gate/up, the router
 * and the shared-expert gate) share one accumulation and one
 * factorisation (ext.share_hessian, default true; results are the same as
 * unshared).  The count is logged per layer at debug level
 * ("layer N: M GPTQ Hessians for K linears: ...", G_MESSAGES_DEBUG=slim-linear_quant).
 *
 * Where slimflow differs from msModelSlim, deliberately:
 *   - Only decoder layers are visited; lm_head and the embeddings stay FLOAT,
 *     as msModelSlim's layer-wise visit covers decoder layers only.
 *   - per_token activations use one scale per token row in calibration too
 *     (msModelSlim's ActPerTokenMinmax observes the whole tensor there).
 *   - minmax weights are quantized from their values at preprocess, not at
 *     the forward: a processor that changes weights of the same layer
 *     belongs before linear_quant (and is, in every practice).
 *   - ext.sigma_factor (slimflow's extension from QuantConfig use_sigma /
 *     sigma_factor, in [3, 4], minmax int weights only): each row's or
 *     group's range is clipped to mean +- k * std (slim-sigma.h) before its
 *     scale and offset; the elements beyond saturate.
 *   - Extensions (documented, not in msModelSlim v1): minmax per_group
 *     weights (int8 and int4, sym or asym; msModelSlim reaches per_group
 *     only through gptq/autoround), the label W4A16 for float activations
 *     with int4 per_group weights (saved as W8A16 per-group with int4
 *     values in int8 storage), gptq ext.act_order and ext.share_hessian.
 *   - An illegal act/weight pair fails in validate; msModelSlim accepts the
 *     config and fails when deploying the first layer.
 *   - A static activation quantizer or gptq weight that saw no data (a
 *     linear the calibration forward never ran) is an error naming the
 *     module.
 *   - `ext` accepts the keys of slim-qconfig-ext.h only; ext.axes is
 *     accepted for MX per_block only and only as -1 (every msModelSlim
 *     config writes that), and ext.max_bound is refused with gptq, ssz
 *     and MX (msModelSlim's quantize ignores it there).
 * dp_layer_wise (slim-schedule.h): static per-tensor (or mean-aggregated)
 * activations are distributed_ordered, their observers handed rank to
 * rank; pd_mix max observers merge after parallel forwards; gptq Hessians
 * (export/import with the observers, linear-quant-hessians.h) are
 * recorded during parallel forwards and accumulated, each on the one rank
 * that factorises it, over every rank's calls in sample order when the
 * forward reads no running range (float or per-token activations;
 * slim_linear_quant_finish_gptq_distributed), otherwise handed on with
 * the ordered observers.  Histograms are refused.
 * After the last layer, include/exclude patterns (other than "*") that
 * matched no module are reported with a warning, as msModelSlim does.
 *
 * The base class SlimLinearProcessor (slim-linear-processor.h) owns
 * include/exclude, the walk over a layer's linears, which linears are
 * taken, those warnings and the pattern hits of the saved state; this file
 * is the quantization: prepare, process_linear, the linear_input hook and
 * finish_layer, in the abstract SlimLinearQuantBase (linear-quant.h), and
 * the linear_quant type, which adds the `qconfig` property.
 */
#include "linear-quant.h"

#include "linear-quant-hessians.h"
#include "slim-phase-timer.h"
#include "slim-hqq.h"
#include "slim-nf4.h"
#include "slim-sigma.h"
#include "slim-int-linear.h"
#include "slim-ssz.h"
#include "slim-mx-dual-scale.h"
#include "slim-mx-weight-methods.h"

#include <math.h>
#include <string.h>

/* What the configuration resolves to (filled once by prepare). */
typedef struct
{
  SlimQScheme act;
  SlimQScheme weight;
  SlimQMethod act_method;    /* minmax or histogram for integer activations */
  SlimQMethod weight_method; /* minmax, gptq, ssz, hqq or nf */
  SlimQParamsConfig act_cfg; /* integer activations only */
  SlimQParamsConfig weight_cfg;
  SlimQAggregation aggregation; /* static per-tensor minmax activation observer */
  SlimHistogramMetric metric;   /* histogram activations' clip search */
  gint64 group_size;            /* per_group weights, else 0 */
  double sigma_factor;          /* minmax int weights: k-sigma range clip, 0 = off */
  SlimGptqConfig gptq;          /* gptq weights */
  gboolean share_hessian;       /* gptq weights */
  SlimSszConfig ssz;            /* ssz weights */
  SlimHqqConfig hqq;            /* hqq weights (group_size 0: per channel) */
  gboolean mx_weight;           /* mxfp8 / mxfp4 per_block weights */
  gboolean fp8_weight;          /* fp8_e4m3 per_channel weights */
  SlimMxFormat mx_weight_format;
  gint64 dual_block_size;     /* mxfp4 dual_scale weights, else 0 */
  gint64 act_dual_block_size; /* mxfp4 dual_scale activations, else 0 */
  float ceil_x_value;         /* ceil_x weights */
  gboolean ceil_x_search;     /* ceil_x weights: ext.enable_search */
  double search_min, search_max, search_step;
  const char *label;
  gboolean data_free;
  gboolean distributed;
} SlimLinearQuantPlan;

/* One selected linear between preprocess and postprocess. */
typedef struct
{
  SlimLayer *layer;                 /* not referenced: the layer being processed */
  SlimQLinear *record;              /* minmax weights filled in preprocess, gptq in postprocess */
  SlimMinMaxObserver observer;      /* static (or pd_mix decode) minmax activation range */
  SlimHistogramObserver *histogram; /* histogram activations, else NULL */
  /* calib_math int8: the packed weight (built at the first call) and the
   * activation parameters the last linear_input call quantized with */
  SlimIntLinear *calib_linear;
  float call_scale, call_offset;
  gboolean call_set;
} SlimLinearQuantPending;

typedef struct
{
  SlimLinearQConfig *qconfig; /* owned */
  SlimLinearMath linear_math; /* of the records deployed (slim_qlinear_is_integer) */
  SlimLinearMath calib_math;  /* of the calibration forward's products */

  SlimLinearQuantPlan plan;  /* valid once the base is prepared */
  GHashTable *pending;       /* module (owned by the record) -> SlimLinearQuantPending */
  GPtrArray *pending_order;  /* SlimLinearQuantPending, owned */
  SlimHessianPool *hessians; /* gptq weights, else NULL */
  SlimLayer *recording;      /* dp_layer_wise: the layer whose GPTQ calls are recorded */
  GPtrArray *records;        /* SlimLinearQuantCall, in call order, while recording */
} SlimLinearQuantBasePrivate;

/* One recorded GPTQ calibration call (start_recording). */
typedef struct
{
  char *module;
  GBytes *x; /* (n_rows, n_in) float32, shared by consecutive calls with the same input */
  gint64 n_rows;
  gint64 n_in;
} SlimLinearQuantCall;

static void
slim_linear_quant_call_free (SlimLinearQuantCall *call)
{
  g_free (call->module);
  g_bytes_unref (call->x);
  g_free (call);
}

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimLinearQuantBase,
                                     slim_linear_quant_base,
                                     SLIM_TYPE_LINEAR_PROCESSOR)

#define PRIV(self)                                                                                 \
  ((SlimLinearQuantBasePrivate *)slim_linear_quant_base_get_instance_private (                     \
      SLIM_LINEAR_QUANT_BASE (self)))

void
slim_linear_quant_base_set_qconfig (SlimLinearQuantBase *self, SlimLinearQConfig *qconfig)
{
  SlimLinearQuantBasePrivate *priv;

  g_return_if_fail (SLIM_IS_LINEAR_QUANT_BASE (self));

  priv = PRIV (self);
  if (qconfig != NULL)
    g_object_ref (qconfig);
  g_clear_object (&priv->qconfig);
  priv->qconfig = qconfig;
}

void
slim_linear_quant_base_set_linear_math (SlimLinearQuantBase *self, SlimLinearMath math)
{
  g_return_if_fail (SLIM_IS_LINEAR_QUANT_BASE (self));

  PRIV (self)->linear_math = math;
}

void
slim_linear_quant_base_set_calib_math (SlimLinearQuantBase *self, SlimLinearMath math)
{
  g_return_if_fail (SLIM_IS_LINEAR_QUANT_BASE (self));

  PRIV (self)->calib_math = math;
}

/* The registered type name ("linear_quant", "pdmix") for messages. */
static const char *
slim_linear_quant_type_name (gpointer self)
{
  const char *name = slim_processor_get_type_name (SLIM_PROCESSOR (self));

  return name != NULL ? name : "linear_quant";
}
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

/* hqq weights, slimflow's extension from QuantConfig (msModelSlim v1
 * registers no hqq quantizer): asymmetric only, its zero point is solved
 * for. */
#define SLIM_HQQ(dt, sc)                                                                           \
  {                                                                                                \
    SLIM_QROLE_WEIGHT, { SLIM_QDTYPE_##dt, SLIM_QSCOPE_##sc, FALSE }, SLIM_QMETHOD_HQQ,            \
        "WeightHqq (QuantConfig w_method HQQ)", TRUE, TRUE, TRUE                                   \
  }

static const SlimQuantizerInfo slim_linear_quant_hqq[] = {
  SLIM_HQQ (INT8, PER_CHANNEL),
  SLIM_HQQ (INT8, PER_GROUP),
  SLIM_HQQ (INT4, PER_CHANNEL),
  SLIM_HQQ (INT4, PER_GROUP),
};

#undef SLIM_HQQ

/* nf weights, slimflow's extension from QuantConfig (w_method NF,
 * LinearNf4Quantizer; msModelSlim v1 registers none): the NF4 code book
 * of bitsandbytes with one absmax per group (slim-nf4.h), int4 per_group
 * symmetric only. */
static const SlimQuantizerInfo slim_linear_quant_nf[] = {
  { SLIM_QROLE_WEIGHT,
    { SLIM_QDTYPE_INT4, SLIM_QSCOPE_PER_GROUP, TRUE },
    SLIM_QMETHOD_NF,
    "WeightNf4 (QuantConfig w_method NF)",
    TRUE,
    TRUE,
    TRUE },
};

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
  if (role == SLIM_QROLE_WEIGHT && method == SLIM_QMETHOD_HQQ)
    {
      g_autofree char *name = slim_qscheme_to_string (scheme);

      for (gsize k = 0; k < G_N_ELEMENTS (slim_linear_quant_hqq); k++)
        if (slim_qscheme_equal (&slim_linear_quant_hqq[k].scheme, scheme))
          return &slim_linear_quant_hqq[k];
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "method hqq has no quantizer for %s; it takes int8 or int4, per_channel or "
                   "per_group, symmetric: false (HQQ solves for an asymmetric zero point)",
                   name);
      return NULL;
    }
  if (role == SLIM_QROLE_WEIGHT && method == SLIM_QMETHOD_NF)
    {
      g_autofree char *name = slim_qscheme_to_string (scheme);

      if (slim_qscheme_equal (&slim_linear_quant_nf[0].scheme, scheme))
        return &slim_linear_quant_nf[0];
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "method nf has no quantizer for %s; it takes int4, per_group, symmetric: true "
                   "(the NF4 code book scaled by each group's absmax)",
                   name);
      return NULL;
    }
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
  /* weight-only fp8 (slimflow extension): msModelSlim registers no IR for
   * float activations with fp8_e4m3 weights; compressed_tensors writes it
   * as vLLM's naive-quantized FP8 weight-only layout, ascendv1 refuses */
  if (act->dtype == SLIM_QDTYPE_FLOAT && act->scope == SLIM_QSCOPE_PER_TENSOR && act->symmetric
      && weight->dtype == SLIM_QDTYPE_FP8_E4M3 && weight->scope == SLIM_QSCOPE_PER_CHANNEL
      && weight->symmetric)
    return "WFP8A16";
  label = slim_qscheme_lookup_label (act, weight, &local_error);
  if (label == NULL)
    {
      if (g_error_matches (local_error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE))
        g_set_error (error, local_error->domain, local_error->code,
                     "%s\n  act float per_tensor sym + weight int4 per_group sym/asym -> W4A16 "
                     "(slimflow extension)\n  act float per_tensor sym + weight fp8_e4m3 "
                     "per_channel sym -> WFP8A16 (slimflow extension, weight-only fp8)",
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
  slim_int_linear_free (pending->calib_linear);
  g_free (pending->histogram);
  g_free (pending);
}

/* gptq settings from the weight's ext (msModelSlim's defaults when
 * absent); percdamp must be > 0 and max_bound is not read by gptq. */
static gboolean
slim_linear_quant_prepare_gptq (SlimLinearQuantPlan *plan, SlimQConfigExt *ext, GError **error)
{
  slim_gptq_config_init (&plan->gptq, &plan->weight_cfg, plan->weight.scope);
  plan->share_hessian = TRUE;
  if (ext != NULL)
    {
      plan->gptq.percdamp = slim_qconfig_ext_get_percdamp (ext);
      plan->gptq.block_size = slim_qconfig_ext_get_block_size (ext);
      plan->gptq.act_order = slim_qconfig_ext_get_act_order (ext);
      plan->share_hessian = slim_qconfig_ext_get_share_hessian (ext);
      if (slim_qconfig_ext_get_group_size (ext) > 0)
        plan->gptq.group_size = slim_qconfig_ext_get_group_size (ext);
      if (slim_qconfig_ext_get_max_bound (ext) != 0)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "qconfig.weight.ext.max_bound: not supported with method gptq (the "
                       "dtype's own bound is used)");
          return FALSE;
        }
    }
  if (!(plan->gptq.percdamp > 0.0))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "qconfig.weight.ext.percdamp must be > 0 (msModelSlim: greater_than_zero), "
                   "got %g",
                   plan->gptq.percdamp);
      return FALSE;
    }
  if (plan->weight.scope == SLIM_QSCOPE_PER_GROUP)
    plan->group_size = plan->gptq.group_size;
  return TRUE;
}

/* ssz settings from the weight's ext: step (0 = msModelSlim's 50);
 * max_bound is not read by msModelSlim's ssz (its quantize has no bound),
 * so it is refused rather than silently dropped.  group_size is ignored,
 * as msModelSlim ignores it for per_channel ssz. */
static gboolean
slim_linear_quant_prepare_ssz (SlimLinearQuantPlan *plan, SlimQConfigExt *ext, GError **error)
{
  slim_ssz_config_init (&plan->ssz, &plan->weight_cfg);
  if (ext != NULL)
    {
      if (slim_qconfig_ext_get_step (ext) > 0)
        plan->ssz.step = slim_qconfig_ext_get_step (ext);
      if (slim_qconfig_ext_get_max_bound (ext) != 0)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "qconfig.weight.ext.max_bound: not supported with method ssz (the "
                       "dtype's own bound is used)");
          return FALSE;
        }
    }
  if (!slim_ssz_config_check (&plan->ssz, error))
    {
      g_prefix_error (error, "qconfig.weight: ");
      return FALSE;
    }
  return TRUE;
}

/* hqq settings: HQQ's reference defaults (slim-hqq.h), per group of
 * ext.group_size or, per channel, of the whole row (set per linear);
 * max_bound would change the code range HQQ's solver assumes, so it is
 * refused. */
static gboolean
slim_linear_quant_prepare_hqq (SlimLinearQuantPlan *plan, SlimQConfigExt *ext, GError **error)
{
  if (ext != NULL && slim_qconfig_ext_get_max_bound (ext) != 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "qconfig.weight.ext.max_bound: not supported with method hqq (codes use the "
                   "dtype's whole range)");
      return FALSE;
    }
  slim_hqq_config_init (&plan->hqq, slim_qdtype_get_bits (plan->weight.dtype), 0);
  return TRUE;
}

/* ext.axes is msModelSlim's MX per_block shared-exponent axis (its only
 * users are mxfp4/mxfp8 minmax configs, which all write -1, the default:
 * blocks along the input features).  Another axis is refused, and so is
 * the key on a scheme that is not MX per_block. */
static gboolean
slim_linear_quant_check_axes (const char *role,
                              const SlimQScheme *scheme,
                              SlimQConfigExt *ext,
                              GError **error)
{
  gint axes = ext != NULL ? slim_qconfig_ext_get_axes (ext) : SLIM_QCONFIG_AXES_UNSET;

  if (axes == SLIM_QCONFIG_AXES_UNSET)
    return TRUE;
  if (scheme->scope != SLIM_QSCOPE_PER_BLOCK && scheme->scope != SLIM_QSCOPE_DUAL_SCALE)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "qconfig.%s.ext.axes: the shared-exponent axis of MX per_block quantization "
                   "(msModelSlim's mxfp4/mxfp8 minmax observers); the integer quantizers "
                   "(minmax, gptq, ssz, histogram) have no such axis: remove the key",
                   role);
      return FALSE;
    }
  if (axes != -1)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "qconfig.%s.ext.axes: %d is not supported; MX blocks run along the input "
                   "features, axes: -1 (the default)",
                   role, axes);
      return FALSE;
    }
  return TRUE;
}

/* A dual block size of qconfig.ROLE: required, a whole number of MX
 * blocks (the inner blocks of 32 must not straddle two dual scales). */
static gboolean
slim_linear_quant_dual_block_size (const char *role,
                                   SlimQConfigExt *ext,
                                   gint64 *out,
                                   GError **error)
{
  *out = ext != NULL ? slim_qconfig_ext_get_dual_block_size (ext) : 0;
  if (*out <= 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   "qconfig.%s: scope dual_scale needs ext.dual_block_size (a multiple of 32, "
                   "e.g. 512 as msModelSlim's configs)",
                   role);
      return FALSE;
    }
  if (*out % SLIM_MX_BLOCK_SIZE != 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "qconfig.%s.ext.dual_block_size: %" G_GINT64_FORMAT
                   " is not a multiple of 32 (the MXFP4 blocks inside a dual block)",
                   role, *out);
      return FALSE;
    }
  return TRUE;
}

/* The MX weight methods' settings (dualscale: both dual block sizes;
 * ceil_x: the divisor or its search range). */
static gboolean
slim_linear_quant_prepare_mx_method (SlimLinearQuantPlan *plan,
                                     SlimQConfigExt *act_ext,
                                     SlimQConfigExt *weight_ext,
                                     GError **error)
{
  if (plan->weight.scope == SLIM_QSCOPE_DUAL_SCALE
      && (!slim_linear_quant_dual_block_size ("weight", weight_ext, &plan->dual_block_size, error)
          || !slim_linear_quant_dual_block_size ("act", act_ext, &plan->act_dual_block_size,
                                                 error)))
    return FALSE;
  plan->ceil_x_value = (float)SLIM_MX_CEIL_X_DEFAULT;
  if (plan->weight_method == SLIM_QMETHOD_CEIL_X && weight_ext != NULL)
    {
      plan->ceil_x_value = (float)slim_qconfig_ext_get_ceil_x_value (weight_ext);
      plan->ceil_x_search = slim_qconfig_ext_get_ceil_x_search (
          weight_ext, &plan->search_min, &plan->search_max, &plan->search_step);
      if (plan->ceil_x_search && (plan->search_max <= plan->search_min || plan->search_step <= 0.0))
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "qconfig.weight.ext: ceil_x search needs search_max (%g) > search_min "
                       "(%g) and search_step (%g) > 0",
                       plan->search_max, plan->search_min, plan->search_step);
          return FALSE;
        }
    }
  return TRUE;
}

/* Resolves and checks the configuration (once: the base calls it before
 * compiling include / exclude); no model needed. */
static gboolean
slim_linear_quant_base_prepare (SlimLinearProcessor *processor, GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  SlimLinearQuantPlan plan = { 0 };
  SlimQConfig *act, *weight;
  SlimQConfigExt *act_ext, *weight_ext;
  const SlimQuantizerInfo *act_info, *weight_info;
  gint act_max_bound = 0;

  if (priv->qconfig == NULL || slim_linear_qconfig_get_weight (priv->qconfig) == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                   priv->qconfig == NULL ? "missing required key 'qconfig'"
                                         : "missing required key 'qconfig.weight'");
      return FALSE;
    }
  act = slim_linear_qconfig_get_act (priv->qconfig);
  weight = slim_linear_qconfig_get_weight (priv->qconfig);
  act_ext = act != NULL ? slim_qconfig_get_ext (act) : NULL;
  weight_ext = slim_qconfig_get_ext (weight);

  plan.act = act != NULL ? slim_qconfig_get_scheme (act) : SLIM_QSCHEME_ACT_FLOAT;
  plan.act_method = act != NULL ? slim_qconfig_get_method (act) : SLIM_QMETHOD_NONE;
  plan.weight = slim_qconfig_get_scheme (weight);
  plan.weight_method = slim_qconfig_get_method (weight);
  plan.aggregation
      = act_ext != NULL ? slim_qconfig_ext_get_aggregation_type (act_ext) : SLIM_QAGGREGATION_MAX;
  act_max_bound = act_ext != NULL ? slim_qconfig_ext_get_max_bound (act_ext) : 0;
  plan.metric
      = act_ext != NULL ? slim_qconfig_ext_get_search_method (act_ext) : SLIM_HISTOGRAM_L2_NORM;

  act_info = slim_linear_quant_lookup_quantizer (SLIM_QROLE_ACT, &plan.act, plan.act_method, error);
  if (act_info == NULL)
    {
      g_prefix_error (error, "qconfig.act: ");
      return FALSE;
    }
  weight_info = slim_linear_quant_lookup_quantizer (SLIM_QROLE_WEIGHT, &plan.weight,
                                                    plan.weight_method, error);
  if (weight_info == NULL)
    {
      g_prefix_error (error, "qconfig.weight: ");
      return FALSE;
    }
  if (plan.weight_method == SLIM_QMETHOD_NF)
    {
      /* msModelSlim's check_nf4_config: w_bit 4, a_bit 16; the label is
       * its QuantType.NF4 */
      if (plan.act.dtype != SLIM_QDTYPE_FLOAT)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "qconfig: method nf is weight-only (NF4, msModelSlim's a_bit 16): remove "
                       "qconfig.act or make it float");
          return FALSE;
        }
      plan.label = "NF4";
    }
  else
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

  if (!slim_linear_quant_check_axes ("act", &plan.act, act_ext, error)
      || !slim_linear_quant_check_axes ("weight", &plan.weight, weight_ext, error))
    return FALSE;
  plan.mx_weight
      = plan.weight.scope == SLIM_QSCOPE_PER_BLOCK || plan.weight.scope == SLIM_QSCOPE_DUAL_SCALE;
  plan.fp8_weight = plan.weight.dtype == SLIM_QDTYPE_FP8_E4M3;
  if ((plan.act.dtype == SLIM_QDTYPE_FP8_E4M3 && act_max_bound != 0)
      || (plan.fp8_weight && weight_ext != NULL
          && slim_qconfig_ext_get_max_bound (weight_ext) != 0))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "qconfig.%s.ext.max_bound: not supported with fp8_e4m3 (its bound is 448)",
                   plan.act.dtype == SLIM_QDTYPE_FP8_E4M3 && act_max_bound != 0 ? "act" : "weight");
      return FALSE;
    }
  if (plan.mx_weight)
    {
      /* MX: power-of-two block scales, no integer range; ext.max_bound
       * does not apply (msModelSlim's MX quantizers do not read it) */
      if (weight_ext != NULL && slim_qconfig_ext_get_max_bound (weight_ext) != 0)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "qconfig.weight.ext.max_bound: not supported with %s per_block (MX "
                       "elements have no integer bound)",
                       slim_qdtype_get_nick (plan.weight.dtype));
          return FALSE;
        }
      plan.mx_weight_format
          = plan.weight.dtype == SLIM_QDTYPE_MXFP8 ? SLIM_MX_FP8_E4M3 : SLIM_MX_FP4_E2M1;
      plan.group_size = SLIM_MX_BLOCK_SIZE;
      if (!slim_linear_quant_prepare_mx_method (&plan, act_ext, weight_ext, error))
        return FALSE;
    }
  else if (!plan.fp8_weight
           && !slim_qparams_config_init (
               &plan.weight_cfg, plan.weight.dtype, plan.weight.symmetric,
               weight_ext != NULL ? slim_qconfig_ext_get_max_bound (weight_ext) : 0, error))
    {
      g_prefix_error (error, "qconfig.weight: ");
      return FALSE;
    }
  if (plan.weight_method == SLIM_QMETHOD_GPTQ)
    {
      if (!slim_linear_quant_prepare_gptq (&plan, weight_ext, error))
        return FALSE;
    }
  else if (plan.weight_method == SLIM_QMETHOD_SSZ)
    {
      if (!slim_linear_quant_prepare_ssz (&plan, weight_ext, error))
        return FALSE;
    }
  else if (plan.weight_method == SLIM_QMETHOD_HQQ
           && !slim_linear_quant_prepare_hqq (&plan, weight_ext, error))
    return FALSE;
  else if (plan.weight_method == SLIM_QMETHOD_NF && weight_ext != NULL
           && slim_qconfig_ext_get_max_bound (weight_ext) != 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "qconfig.weight.ext.max_bound: not supported with method nf (the code book "
                   "spans [-1, 1] of each group's absmax)");
      return FALSE;
    }
  if (plan.weight_method != SLIM_QMETHOD_GPTQ && plan.weight_method != SLIM_QMETHOD_SSZ
      && plan.weight.scope == SLIM_QSCOPE_PER_GROUP)
    {
      plan.group_size = weight_ext != NULL ? slim_qconfig_ext_get_group_size (weight_ext) : 0;
      if (plan.group_size <= 0)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_MISSING_KEY,
                       "qconfig.weight: scope per_group needs ext.group_size > 0");
          return FALSE;
        }
    }
  plan.sigma_factor = weight_ext != NULL ? slim_qconfig_ext_get_sigma_factor (weight_ext) : 0.0;
  if (plan.sigma_factor != 0.0
      && (plan.weight_method != SLIM_QMETHOD_MINMAX || plan.mx_weight || plan.fp8_weight
          || plan.sigma_factor < 3.0 || plan.sigma_factor > 4.0))
    {
      g_set_error (error, SLIM_CONFIG_ERROR,
                   plan.weight_method == SLIM_QMETHOD_MINMAX && !plan.mx_weight && !plan.fp8_weight
                       ? SLIM_CONFIG_ERROR_BAD_VALUE
                       : SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "qconfig.weight.ext.sigma_factor: %g: sigma clipping takes minmax int8/int4 "
                   "weights and a factor in [3, 4] (QuantConfig's range); 0 turns it off",
                   plan.sigma_factor);
      return FALSE;
    }
  if ((plan.act.scope == SLIM_QSCOPE_PER_BLOCK || plan.act.scope == SLIM_QSCOPE_DUAL_SCALE)
      && act_max_bound != 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "qconfig.act.ext.max_bound: not supported with %s per_block (MX elements "
                   "have no integer bound)",
                   slim_qdtype_get_nick (plan.act.dtype));
      return FALSE;
    }
  if (plan.act.dtype != SLIM_QDTYPE_FLOAT && plan.act.dtype != SLIM_QDTYPE_FP8_E4M3
      && plan.act.scope != SLIM_QSCOPE_PER_BLOCK && plan.act.scope != SLIM_QSCOPE_DUAL_SCALE
      && !slim_qparams_config_init (&plan.act_cfg, plan.act.dtype, plan.act.symmetric,
                                    act_max_bound, error))
    {
      g_prefix_error (error, "qconfig.act: ");
      return FALSE;
    }
  plan.data_free = act_info->data_free && weight_info->data_free;
  /* calib_math int8: the calibration product of static minmax int8
   * activations with per-channel symmetric int8 minmax / ssz weights (the
   * weights quantized in preprocess) as integers */
  if (priv->calib_math != SLIM_LINEAR_MATH_FLOAT
      && !(
          plan.act.dtype == SLIM_QDTYPE_INT8 && plan.act.scope == SLIM_QSCOPE_PER_TENSOR
          && plan.act_method == SLIM_QMETHOD_MINMAX && plan.weight.dtype == SLIM_QDTYPE_INT8
          && plan.weight.scope == SLIM_QSCOPE_PER_CHANNEL && plan.weight.symmetric
          && (plan.weight_method == SLIM_QMETHOD_MINMAX || plan.weight_method == SLIM_QMETHOD_SSZ)))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "calib_math: %s needs int8 per_tensor minmax activations and int8 per_channel "
                   "symmetric minmax or ssz weights (W8A8 static); use float",
                   slim_linear_math_get_name (priv->calib_math));
      return FALSE;
    }
  /* minmax observers reduce across workers (msModelSlim's DP support);
   * gptq Hessians are handed on in sample order (slimflow's extension:
   * msModelSlim's gptq does not support DP); histograms do not reduce */
  plan.distributed = plan.act_method != SLIM_QMETHOD_HISTOGRAM;
  priv->plan = plan;
  if (plan.weight_method == SLIM_QMETHOD_GPTQ && priv->hessians == NULL)
    priv->hessians = slim_hessian_pool_new (plan.share_hessian);
  return TRUE;
}

/* ---- processor hooks ---------------------------------------------------- */

/* Checks one selected linear's weight (a finite 2-D float32 matrix of a
 * shape the scheme and the label's saver accept); its number of
 * (scale, offset) pairs in out_n_params. */
static SlimTensor *
slim_linear_quant_check_weight (const SlimLinearQuantPlan *plan,
                                SlimLayer *layer,
                                const char *module,
                                gint64 *out_n_params,
                                GError **error)
{
  g_autofree char *weight_name = g_strconcat (module, ".weight", NULL);
  SlimTensor *weight = slim_layer_require_tensor (layer, weight_name, error);
  gint64 n_out, n_in;
  gint64 sb_shape[2];

  if (weight == NULL)
    return NULL;
  if (slim_tensor_get_dtype (weight) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (weight) != 2)
    {
      g_autofree char *shape = slim_tensor_shape_to_string (weight);
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "%s must be a 2-D float32 matrix, got %s %s", weight_name,
                   slim_dtype_get_name (slim_tensor_get_dtype (weight)), shape);
      return NULL;
    }
  n_out = slim_tensor_get_dim (weight, 0);
  n_in = slim_tensor_get_dim (weight, 1);
  if (!slim_tensor_is_finite (weight))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "%s has NaN or infinite values", weight_name);
      return NULL;
    }
  if (plan->mx_weight)
    {
      /* E2M1 codes are packed two per byte along the input features
       * (pack_fp4_to_uint8), so MXFP4 needs an even width; blocks of 32
       * are zero-padded, as msModelSlim's reshape_to_blocks does */
      if (plan->mx_weight_format == SLIM_MX_FP4_E2M1 && n_in % 2 != 0)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s (%s): mxfp4 packs two E2M1 codes per byte along the input "
                       "features, but %s has %" G_GINT64_FORMAT " columns (odd)",
                       module, plan->label, weight_name, n_in);
          return NULL;
        }
      /* WeightFouroverSixQuantizer refuses a partial block */
      if (plan->weight_method == SLIM_QMETHOD_FOUROVERSIX && n_in % SLIM_MX_BLOCK_SIZE != 0)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s (%s, fouroversix): %s has %" G_GINT64_FORMAT
                       " columns, not a multiple of the MX block size 32 (fouroversix does "
                       "not pad)",
                       module, plan->label, weight_name, n_in);
          return NULL;
        }
      *out_n_params = n_out * slim_mx_n_blocks (n_in);
      return weight;
    }
  if (plan->weight_method == SLIM_QMETHOD_GPTQ
          ? !slim_gptq_get_n_params (&plan->gptq, n_out, n_in, out_n_params, error)
          : !slim_qparams_weight_n_params (plan->weight.scope, n_out, n_in, plan->group_size,
                                           out_n_params, error))
    {
      g_prefix_error (error, "%s (%s): ", module, plan->label);
      return NULL;
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
          return NULL;
        }
      if (!slim_w4a8_scale_bias_shape (module, n_out, n_in, SLIM_W4A8_TP_NUM, sb_shape, error))
        {
          g_prefix_error (error, "%s (W4A8_DYNAMIC): ", module);
          return NULL;
        }
    }
  return weight;
}

/* Quantized weight tensors of one linear: filled by minmax or gptq. */
typedef struct
{
  SlimTensor *scale;       /* (n_out, n_params / n_out) */
  SlimTensor *offset;      /* (n_out, n_params / n_out) */
  SlimTensor *weight_q;    /* (n_out, n_in) int8 */
  SlimTensor *dequantized; /* (n_out, n_in) float32 */
} SlimLinearQuantWeights;

static void
slim_linear_quant_weights_init (
    SlimLinearQuantWeights *w, const char *module, gint64 n_out, gint64 n_in, gint64 n_params)
{
  g_autofree char *weight_name = g_strconcat (module, ".weight", NULL);
  g_autofree char *scale_name = g_strconcat (module, ".weight_scale", NULL);
  g_autofree char *offset_name = g_strconcat (module, ".weight_offset", NULL);

  w->scale = slim_tensor_new_2d (scale_name, SLIM_DTYPE_F32, n_out, n_params / n_out);
  w->offset = slim_tensor_new_2d (offset_name, SLIM_DTYPE_F32, n_out, n_params / n_out);
  w->weight_q = slim_tensor_new_2d (weight_name, SLIM_DTYPE_I8, n_out, n_in);
  w->dequantized = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F32, n_out, n_in);
}

static void
slim_linear_quant_weights_clear (SlimLinearQuantWeights *w)
{
  g_clear_pointer (&w->scale, slim_tensor_unref);
  g_clear_pointer (&w->offset, slim_tensor_unref);
  g_clear_pointer (&w->weight_q, slim_tensor_unref);
  g_clear_pointer (&w->dequantized, slim_tensor_unref);
}

/* The layer's weight becomes its dequantized value; the record takes the
 * quantized tensors. */
static void
slim_linear_quant_deploy_weights (SlimLayer *layer, SlimQLinear *record, SlimLinearQuantWeights *w)
{
  slim_layer_set_tensor (layer, w->dequantized);
  g_clear_pointer (&w->dequantized, slim_tensor_unref);
  record->weight_q = g_steal_pointer (&w->weight_q);
  record->weight_scale = g_steal_pointer (&w->scale);
  record->weight_offset = g_steal_pointer (&w->offset);
}

/* ceil_x's divisor: ext.ceil_x_value, or with ext.enable_search the
 * candidate search_min + k * search_step (up to search_max) whose
 * elements give the smallest mean squared error over the whole weight,
 * the first on ties (ceil_x_search_best; sums in double, so only a
 * near-tie of two candidates can resolve differently from torch). */
static float
slim_linear_quant_ceil_x_value (const SlimLinearQuantPlan *plan,
                                const float *w, /* [n_out, n_in] */
                                gint64 n_out,
                                gint64 n_in)
{
  gint64 n_blocks = slim_mx_n_blocks (n_in);
  gint64 n_steps;
  g_autofree float *e = NULL;   /* [n_out, n_in] */
  g_autofree gint16 *se = NULL; /* [n_out, n_blocks] */
  double best_mse = G_MAXDOUBLE;
  float best = (float)plan->search_min;

  if (!plan->ceil_x_search)
    return plan->ceil_x_value;
  n_steps = (gint64)llround ((plan->search_max - plan->search_min) / plan->search_step) + 1;
  e = g_new (float, MAX (n_out * n_in, 1));
  se = g_new (gint16, MAX (n_out * n_blocks, 1));
  for (gint64 k = 0; k < n_steps; k++)
    {
      float c = (float)(plan->search_min + (double)k * plan->search_step);
      double sse = 0.0;

      slim_mx_quantize_rows_ceil_x (w, n_out, n_in, c, e, se);
      slim_mx_dequantize_rows (e, se, n_out, n_in, e);
      for (gint64 i = 0; i < n_out * n_in; i++)
        sse += ((double)w[i] - e[i]) * ((double)w[i] - e[i]);
      if (sse < best_mse)
        {
          best_mse = sse;
          best = c;
        }
    }
  return best;
}

/* MXWeightPerBlockMinmax: blocks of 32 along the input features; the
 * record keeps the elements (F8_E4M3FN, or F4X2_E2M1 codes) and the E8M0
 * scales (U8, shared exponent + 127), the layer the dequantized weight. */
static void
slim_linear_quant_mx_weight (const SlimLinearQuantPlan *plan,
                             SlimLayer *layer,
                             SlimQLinear *record,
                             const float *w /* [n_out, n_in] */)
{
  g_autofree char *weight_name = g_strconcat (record->module, ".weight", NULL);
  g_autofree char *scale_name = g_strconcat (record->module, ".weight_scale", NULL);
  gint64 n_out = record->n_out, n_in = record->n_in, n_blocks = slim_mx_n_blocks (n_in);
  g_autofree float *elements = g_new (float, n_out *n_in);          /* [n_out, n_in] */
  g_autofree gint16 *shared_exp = g_new (gint16, n_out * n_blocks); /* [n_out, n_blocks] */
  g_autoptr (SlimTensor) dequantized
      = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F32, n_out, n_in);
  SlimDType dtype
      = plan->mx_weight_format == SLIM_MX_FP8_E4M3 ? SLIM_DTYPE_F8_E4M3FN : SLIM_DTYPE_F4X2_E2M1;

  if (plan->dual_block_size > 0)
    {
      g_autofree char *ds_name = g_strconcat (record->module, ".weight_dual_scale", NULL);
      gint64 n_dual = slim_mx_dual_n_blocks (n_in, plan->dual_block_size);
      gint64 ds_shape[3] = { n_out, n_dual, 1 };

      record->weight_dual_scale = slim_tensor_new (ds_name, SLIM_DTYPE_F32, 3, ds_shape, NULL);
      record->dual_block_size = plan->dual_block_size;
      record->act_dual_block_size = plan->act_dual_block_size;
      slim_mx_dual_quantize_rows (w, n_out, n_in, plan->dual_block_size, elements, shared_exp,
                                  slim_tensor_get_data_mut (record->weight_dual_scale),
                                  slim_tensor_get_data_mut (dequantized));
    }
  else if (plan->weight_method == SLIM_QMETHOD_CEIL_X)
    slim_mx_quantize_rows_ceil_x (w, n_out, n_in,
                                  slim_linear_quant_ceil_x_value (plan, w, n_out, n_in), elements,
                                  shared_exp);
  else if (plan->weight_method == SLIM_QMETHOD_FOUROVERSIX)
    slim_mx_quantize_rows_fouroversix (w, n_out, n_in, elements, shared_exp);
  else if (plan->weight_method == SLIM_QMETHOD_MSE_ROUND)
    slim_mx_quantize_rows_mse_round (w, n_out, n_in, elements, shared_exp);
  else
    slim_mx_quantize_rows (plan->mx_weight_format, w, n_out, n_in, elements, shared_exp);
  record->weight_q = slim_tensor_new_2d (weight_name, dtype, n_out, n_in);
  /* the elements are on the grid, so the dtype's conversion is exact */
  slim_dtype_get_info (dtype)->from_f32 (elements, slim_tensor_get_data_mut (record->weight_q),
                                         (gsize)(n_out * n_in));
  record->weight_scale = slim_tensor_new_2d (scale_name, SLIM_DTYPE_U8, n_out, n_blocks);
  slim_mx_scale_to_u8 (shared_exp, n_out * n_blocks,
                       slim_tensor_get_data_mut (record->weight_scale));
  if (plan->dual_block_size == 0)
    slim_mx_dequantize_rows (elements, shared_exp, n_out, n_in,
                             slim_tensor_get_data_mut (dequantized));
  slim_layer_set_tensor (layer, dequantized);
}

/* WeightPerChannelMinmax for fp8_e4m3 (slim-fp8.h): the record keeps the
 * float8_e4m3fn codes the saver writes, the (n_out, 1) scales and zero
 * offsets; the layer the dequantized codes (the E4M3-rounded weight, which
 * deployment computes with; msModelSlim's fake-quant forward uses the
 * unrounded x / scale). */
static void
slim_linear_quant_fp8_weight (SlimLayer *layer,
                              SlimQLinear *record,
                              const float *w /* [n_out, n_in] */)
{
  g_autofree char *weight_name = g_strconcat (record->module, ".weight", NULL);
  g_autofree char *scale_name = g_strconcat (record->module, ".weight_scale", NULL);
  g_autofree char *offset_name = g_strconcat (record->module, ".weight_offset", NULL);
  gint64 n_out = record->n_out, n_in = record->n_in;
  g_autoptr (SlimTensor) dequantized
      = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F32, n_out, n_in); /* [n_out, n_in] */

  record->weight_q = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F8_E4M3FN, n_out, n_in);
  record->weight_scale = slim_tensor_new_2d (scale_name, SLIM_DTYPE_F32, n_out, 1);
  record->weight_offset = slim_tensor_new_2d (offset_name, SLIM_DTYPE_F32, n_out, 1);
  slim_fp8_quantize_weight_rows (w, n_out, n_in, slim_tensor_get_data_mut (record->weight_q),
                                 slim_tensor_get_data_mut (record->weight_scale),
                                 slim_tensor_get_data_mut (dequantized));
  slim_layer_set_tensor (layer, dequantized);
}

/* minmax with ext.sigma_factor (slim-sigma.h): the weight viewed as
 * n_rows rows (a channel or a group each), each row's range clipped to
 * mean +- k * std before its (scale, offset); elements beyond saturate. */
static void
slim_linear_quant_sigma_weight (const SlimLinearQuantPlan *plan,
                                const float *x, /* [n_rows, n_cols] */
                                gint64 n_rows,
                                gint64 n_cols,
                                SlimLinearQuantWeights *w)
{
  g_autofree float *lo = g_new (float, MAX (n_rows, 1)); /* [n_rows] */
  g_autofree float *hi = g_new (float, MAX (n_rows, 1)); /* [n_rows] */
  float *scale = slim_tensor_get_data_mut (w->scale);    /* [n_rows] */
  float *offset = slim_tensor_get_data_mut (w->offset);  /* [n_rows] */
  gint8 *q = slim_tensor_get_data_mut (w->weight_q);     /* [n_rows, n_cols] */

  slim_sigma_range_rows (x, n_rows, n_cols, plan->sigma_factor, lo, hi);
  for (gint64 r = 0; r < n_rows; r++)
    slim_qparams_compute (&plan->weight_cfg, lo[r], hi[r], &scale[r], &offset[r]);
  slim_quantize_rows (&plan->weight_cfg, x, n_rows, n_cols, scale, offset, n_rows, q);
}

/* LinearNf4Quantizer (QuantConfig w_method NF): per group of group_size
 * input features, absmax = max |w| and each element the nearest NF4 code
 * of w / absmax (slim-nf4.h).  The record keeps the codes, U8 0..15
 * (n_out, n_in), and the absmax, F32 (n_out, n_in / group_size), as
 * weight_scale (no offset); the layer the dequantized code * absmax. */
static void
slim_linear_quant_nf_weight (const SlimLinearQuantPlan *plan,
                             SlimLayer *layer,
                             SlimQLinear *record,
                             const float *w /* [n_out, n_in] */)
{
  g_autofree char *weight_name = g_strconcat (record->module, ".weight", NULL);
  g_autofree char *scale_name = g_strconcat (record->module, ".weight_absmax", NULL);
  gint64 n_out = record->n_out, n_in = record->n_in, n_groups = n_in / plan->group_size;
  g_autoptr (SlimTensor) dequantized
      = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F32, n_out, n_in); /* [n_out, n_in] */

  record->weight_q = slim_tensor_new_2d (weight_name, SLIM_DTYPE_U8, n_out, n_in);
  record->weight_scale = slim_tensor_new_2d (scale_name, SLIM_DTYPE_F32, n_out, n_groups);
  slim_nf4_fake_quantize (
      w, n_out, n_in, plan->group_size, slim_tensor_get_data_mut (record->weight_scale),
      slim_tensor_get_data_mut (record->weight_q), slim_tensor_get_data_mut (dequantized));
  slim_layer_set_tensor (layer, dequantized);
}

/* Selects one linear: minmax weights are quantized now and replaced by
 * their dequantized values; gptq weights wait for postprocess. */
static gboolean
slim_linear_quant_base_process_linear (SlimLinearProcessor *processor,
                                       SlimLayer *layer,
                                       const char *module,
                                       GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  const SlimLinearQuantPlan *plan = &priv->plan;
  SlimLinearQuantWeights w = { 0 };
  SlimLinearQuantPending *pending;
  SlimTensor *weight;
  gint64 n_out, n_in, n_params = 0;

  weight = slim_linear_quant_check_weight (plan, layer, module, &n_params, error);
  if (weight == NULL)
    return FALSE;
  n_out = slim_tensor_get_dim (weight, 0);
  n_in = slim_tensor_get_dim (weight, 1);

  pending = g_new0 (SlimLinearQuantPending, 1);
  pending->layer = layer;
  pending->record = slim_qlinear_new (module, plan->label);
  pending->record->act = plan->act;
  pending->record->weight = plan->weight;
  pending->record->group_size = plan->group_size;
  pending->record->n_out = n_out;
  pending->record->n_in = n_in;
  pending->record->math = priv->linear_math;
  if (plan->mx_weight)
    slim_linear_quant_mx_weight (plan, layer, pending->record, slim_tensor_get_data (weight));
  else if (plan->fp8_weight)
    slim_linear_quant_fp8_weight (layer, pending->record, slim_tensor_get_data (weight));
  else if (plan->weight_method == SLIM_QMETHOD_NF)
    slim_linear_quant_nf_weight (plan, layer, pending->record, slim_tensor_get_data (weight));
  else if (plan->weight_method != SLIM_QMETHOD_GPTQ)
    {
      gboolean ok = TRUE;

      slim_linear_quant_weights_init (&w, module, n_out, n_in, n_params);
      if (plan->weight_method == SLIM_QMETHOD_SSZ)
        ok = slim_ssz_quantize (&plan->ssz, slim_tensor_get_data (weight), n_out, n_in,
                                slim_tensor_get_data_mut (w.scale),
                                slim_tensor_get_data_mut (w.offset),
                                slim_tensor_get_data_mut (w.weight_q), NULL, NULL, error);
      else if (plan->weight_method == SLIM_QMETHOD_HQQ)
        {
          SlimHqqConfig hqq = plan->hqq;

          hqq.group_size = plan->group_size > 0 ? plan->group_size : n_in;
          ok = slim_hqq_quantize_signed (
              &hqq, slim_tensor_get_data (weight), n_out, n_in, slim_tensor_get_data_mut (w.scale),
              slim_tensor_get_data_mut (w.offset), slim_tensor_get_data_mut (w.weight_q), error);
        }
      else if (plan->sigma_factor > 0.0)
        slim_linear_quant_sigma_weight (plan, slim_tensor_get_data (weight), n_params,
                                        n_out * n_in / n_params, &w);
      else
        ok = slim_quantize_weight (
            &plan->weight_cfg, plan->weight.scope, slim_tensor_get_data (weight), n_out, n_in,
            plan->group_size, slim_tensor_get_data_mut (w.scale),
            slim_tensor_get_data_mut (w.offset), slim_tensor_get_data_mut (w.weight_q), error);
      if (!ok)
        {
          g_prefix_error (error, "%s: ", module);
          slim_linear_quant_weights_clear (&w);
          slim_linear_quant_pending_free (pending);
          return FALSE;
        }
      /* (n_out, n_in) viewed as n_params rows: a row per channel or per group */
      slim_dequantize_rows (slim_tensor_get_data (w.weight_q), n_params, n_out * n_in / n_params,
                            slim_tensor_get_data (w.scale), slim_tensor_get_data (w.offset),
                            n_params, slim_tensor_get_data_mut (w.dequantized));
      slim_linear_quant_deploy_weights (layer, pending->record, &w);
    }
  slim_minmax_observer_init (&pending->observer, plan->aggregation);
  if (plan->act_method == SLIM_QMETHOD_HISTOGRAM)
    {
      pending->histogram = g_new0 (SlimHistogramObserver, 1);
      slim_histogram_observer_init (pending->histogram, &plan->act_cfg, plan->metric);
    }
  g_hash_table_insert (priv->pending, pending->record->module, pending);
  g_ptr_array_add (priv->pending_order, pending);
  g_debug ("%s: %s, weight %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT " %s", module, plan->label,
           n_out, n_in,
           plan->weight_method == SLIM_QMETHOD_GPTQ  ? "selected (gptq)"
           : plan->weight_method == SLIM_QMETHOD_SSZ ? "quantized (ssz)"
           : plan->weight_method == SLIM_QMETHOD_HQQ ? "quantized (hqq)"
           : plan->weight_method == SLIM_QMETHOD_NF  ? "quantized (nf4)"
           : plan->mx_weight                         ? "quantized (MX blocks of 32)"
                                                     : "quantized");
  return TRUE;
}

/* The activation fake-quant of the calibration forward (see the file
 * comment), in place. */
static gboolean
slim_linear_quant_fake_quantize_input (const SlimLinearQuantPlan *plan,
                                       SlimLinearQuantPending *pending,
                                       const char *module,
                                       float *x, /* (n_tokens, n_in) row-major */
                                       gint64 n_tokens,
                                       gint64 n_in,
                                       GError **error)
{
  SlimQParamsConfig per_token_cfg;
  float min_val, max_val, scale, offset;

  if (plan->act.dtype == SLIM_QDTYPE_FLOAT)
    return TRUE;
  switch (plan->act.scope)
    {
    case SLIM_QSCOPE_PER_TENSOR:
      if (pending->histogram != NULL)
        {
          /* ActPerTensorHistogram: update, qparams of this call's clip
           * bounds, fake-quantize clamped to them */
          if (!slim_histogram_observer_update (pending->histogram, x, n_tokens * n_in, error)
              || !slim_histogram_observer_get_qparams (pending->histogram, &min_val, &max_val,
                                                       &scale, &offset, error))
            {
              g_prefix_error (error, "%s: ", module);
              return FALSE;
            }
          slim_histogram_fake_quantize (&plan->act_cfg, x, n_tokens * n_in, scale, offset, min_val,
                                        max_val, x);
          return TRUE;
        }
      /* ActPerTensorMinmax: running range, this call quantized with it */
      slim_minmax_observer_update (&pending->observer, x, n_tokens * n_in);
      if (!slim_minmax_observer_get (&pending->observer, &min_val, &max_val, error))
        {
          g_prefix_error (error, "%s: ", module);
          return FALSE;
        }
      slim_qparams_compute (&plan->act_cfg, min_val, max_val, &scale, &offset);
      slim_fake_quantize_rows (&plan->act_cfg, x, n_tokens, n_in, &scale, &offset, 1, x);
      pending->call_scale = scale;
      pending->call_offset = offset;
      pending->call_set = TRUE;
      return TRUE;
    case SLIM_QSCOPE_PER_TOKEN:
      if (plan->act.dtype == SLIM_QDTYPE_FP8_E4M3)
        slim_fp8_fake_quantize_rows_dynamic (x, n_tokens, n_in, x);
      else
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
    case SLIM_QSCOPE_PER_BLOCK:
      /* MXActPerBlockMinmax.forward is the identity during calibration
       * (the deployed IR quantizes: slim_qlinear_apply_act) */
      return TRUE;
    case SLIM_QSCOPE_DUAL_SCALE:
      /* MXActDualScaleMinmax.forward is the identity (data-free) */
      return TRUE;
    case SLIM_QSCOPE_PER_CHANNEL:
    case SLIM_QSCOPE_PER_GROUP:
    case SLIM_QSCOPE_PER_HEAD:
    default:
      /* no legal pair has another integer act scope */
      return TRUE;
    }
}

static gboolean slim_linear_quant_base_distributed_ordered (SlimProcessor *processor);

/* dp_layer_wise with more than one rank, GPTQ weights and a forward that
 * reads no running statistics: every rank records its GPTQ calls during
 * its (parallel) forward, and postprocess sends each Hessian's calls to
 * the one rank that accumulates, factorises and quantizes it
 * (slim_linear_quant_finish_gptq_distributed). */
static gboolean
slim_linear_quant_collects (SlimLinearQuantBasePrivate *priv, SlimProcessor *processor)
{
  return priv->plan.weight_method == SLIM_QMETHOD_GPTQ
         && slim_processor_get_comm (processor) != NULL
         && !slim_linear_quant_base_distributed_ordered (processor);
}

static gboolean
slim_linear_quant_linear_input (const char *module,
                                float *x, /* (n_tokens, n_in) row-major */
                                gint64 n_tokens,
                                gint64 n_in,
                                gpointer user_data,
                                GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (user_data);
  SlimLinearQuantPending *pending = g_hash_table_lookup (priv->pending, module);
  const SlimLinearQuantPlan *plan = &priv->plan;

  if (pending == NULL || n_tokens == 0)
    return TRUE;
  if (pending->record->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: input has %" G_GINT64_FORMAT " features, the weight %" G_GINT64_FORMAT,
                   module, n_in, pending->record->n_in);
      return FALSE;
    }
  if (!slim_linear_quant_fake_quantize_input (plan, pending, module, x, n_tokens, n_in, error))
    return FALSE;
  /* LinearQuantizer.forward: the weight quantizer sees the quantized x */
  if (plan->weight_method != SLIM_QMETHOD_GPTQ)
    return TRUE;
  if (priv->recording == pending->layer
      || slim_linear_quant_collects (priv, SLIM_PROCESSOR (user_data)))
    {
      /* dp_layer_wise: replayed in sample order after the forwards */
      SlimLinearQuantCall *call = g_new0 (SlimLinearQuantCall, 1);
      SlimLinearQuantCall *last;
      gsize n_bytes = (gsize)(n_tokens * n_in) * sizeof (float);

      if (priv->records == NULL)
        priv->records
            = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_linear_quant_call_free);
      last = priv->records->len > 0 ? g_ptr_array_index (priv->records, priv->records->len - 1)
                                    : NULL;
      call->module = g_strdup (module);
      call->n_rows = n_tokens;
      call->n_in = n_in;
      /* q/k/v (gate/up) read one input: keep it once */
      if (last != NULL && last->n_rows == n_tokens && last->n_in == n_in
          && memcmp (g_bytes_get_data (last->x, NULL), x, n_bytes) == 0)
        call->x = g_bytes_ref (last->x);
      else
        call->x = g_bytes_new (x, n_bytes);
      g_ptr_array_add (priv->records, call);
      return TRUE;
    }
  return slim_hessian_pool_add (priv->hessians, pending->layer, module, x, n_tokens, n_in, error);
}

/* calib_math int8: the product of the input linear_input fake-quantized
 * with the dequantized weight, as integers (slim_int_linear_new_fake_quant:
 * the same value with the sum exact). */
static gboolean
slim_linear_quant_linear_forward (const char *module,
                                  const float *x, /* (n_tokens, n_in) fake-quantized */
                                  gint64 n_tokens,
                                  gint64 n_in,
                                  gint64 n_out,
                                  float *y, /* (n_tokens, n_out) */
                                  gboolean *done,
                                  gpointer user_data,
                                  GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (user_data);
  SlimLinearQuantPending *pending = g_hash_table_lookup (priv->pending, module);
  SlimQLinear *record;

  if (pending == NULL || !pending->call_set || n_tokens == 0)
    return TRUE;
  record = pending->record;
  if (record->n_out != n_out || record->weight_q == NULL || record->weight_scale == NULL)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: calib_math int8 needs the int8 weight (%" G_GINT64_FORMAT
                   " outputs, the forward asks %" G_GINT64_FORMAT ")",
                   module, record->n_out, n_out);
      return FALSE;
    }
  if (pending->calib_linear == NULL)
    {
      g_autofree char *bias_name = g_strconcat (module, ".bias", NULL);
      SlimTensor *bias = slim_layer_get_tensor (pending->layer, bias_name);

      pending->calib_linear = slim_int_linear_new_fake_quant (
          slim_tensor_get_data (record->weight_q), n_out, n_in,
          slim_tensor_get_data (record->weight_scale),
          bias != NULL ? slim_tensor_get_data (bias) : NULL, error);
      if (pending->calib_linear == NULL)
        {
          g_prefix_error (error, "%s: ", module);
          return FALSE;
        }
    }
  if (priv->calib_math == SLIM_LINEAR_MATH_INT8_REF)
    slim_int_linear_forward_fake_quant_ref (pending->calib_linear, x, n_tokens, pending->call_scale,
                                            pending->call_offset, y);
  else
    slim_int_linear_forward_fake_quant (pending->calib_linear, x, n_tokens, pending->call_scale,
                                        pending->call_offset, y);
  pending->call_set = FALSE;
  *done = TRUE;
  return TRUE;
}

static void
slim_linear_quant_base_get_forward_hooks (SlimProcessor *processor,
                                          SlimLayer *layer,
                                          SlimForwardHooks *hooks)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);

  if (!slim_linear_processor_is_prepared (SLIM_LINEAR_PROCESSOR (processor))
      || (priv->plan.act.dtype == SLIM_QDTYPE_FLOAT
          && priv->plan.weight_method != SLIM_QMETHOD_GPTQ))
    return;
  hooks->linear_input = slim_linear_quant_linear_input;
  if (priv->calib_math != SLIM_LINEAR_MATH_FLOAT)
    hooks->linear_forward = slim_linear_quant_linear_forward;
  hooks->user_data = processor;
}

/* The static input scale and offset of one record. */
static gboolean
slim_linear_quant_finish_act (const SlimLinearQuantPlan *plan,
                              SlimLinearQuantPending *pending,
                              GError **error)
{
  SlimQLinear *record = pending->record;
  float min_val, max_val;

  if (plan->act.dtype == SLIM_QDTYPE_FLOAT
      || (plan->act.scope != SLIM_QSCOPE_PER_TENSOR && plan->act.scope != SLIM_QSCOPE_PD_MIX))
    return TRUE;
  if (pending->histogram != NULL ? pending->histogram->n_updates == 0
                                 : pending->observer.n_updates == 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s (%s): no calibration activation reached this linear, so its static "
                   "input scale cannot be computed",
                   record->module, record->label);
      return FALSE;
    }
  if (pending->histogram != NULL)
    {
      /* ActPerTensorHistogram.get_q_param: the last call's qparams */
      if (!slim_histogram_observer_get_qparams (pending->histogram, &min_val, &max_val,
                                                &record->input_scale, &record->input_offset, error))
        {
          g_prefix_error (error, "%s: ", record->module);
          return FALSE;
        }
      return TRUE;
    }
  if (!slim_minmax_observer_get (&pending->observer, &min_val, &max_val, error))
    {
      g_prefix_error (error, "%s: ", record->module);
      return FALSE;
    }
  /* pd_mix saves an asymmetric per-tensor (decode) range */
  slim_qparams_compute (&plan->act_cfg, min_val, max_val, &record->input_scale,
                        &record->input_offset);
  return TRUE;
}

/* GPTQ quantizes a weight in blocks of this many output rows, one
 * slim_gptq_quantize_factored() call each (rows are independent in GPTQ:
 * the errors run along a row's columns).  The partition is fixed, so
 * that dp_layer_wise can spread the blocks of one weight over the ranks
 * and get the bytes of one process by construction: every block is the
 * same call on the same inputs wherever it runs. */
#define SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK_DEFAULT 512
/* Test hook: rows per block (the test models' weights have fewer than
 * 512 rows, so test-dp sets it to split one weight over the ranks). */
#define SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK_ENV "SLIMFLOW_TEST_GPTQ_ROW_BLOCK"
#define SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK slim_linear_quant_gptq_row_block ()

static gint64
slim_linear_quant_gptq_row_block (void)
{
  const char *value = g_getenv (SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK_ENV);
  guint64 n = 0;

  if (value != NULL && g_ascii_string_to_unsigned (value, 10, 1, G_MAXINT32, &n, NULL))
    return (gint64)n;
  return SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK_DEFAULT;
}

/* The float32 (n_out, n_in) weight of a selected linear, checked. */
static SlimTensor *
slim_linear_quant_gptq_weight (SlimLinearQuantBasePrivate *priv,
                               SlimLayer *layer,
                               SlimQLinear *record,
                               gint64 *out_n_params,
                               GError **error)
{
  g_autofree char *weight_name = g_strconcat (record->module, ".weight", NULL);
  SlimTensor *weight = slim_layer_require_tensor (layer, weight_name, error);

  if (weight == NULL
      || !slim_gptq_get_n_params (&priv->plan.gptq, record->n_out, record->n_in, out_n_params,
                                  error))
    return NULL;
  if (slim_tensor_get_dtype (weight) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (weight) != 2
      || slim_tensor_get_dim (weight, 0) != record->n_out
      || slim_tensor_get_dim (weight, 1) != record->n_in)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "%s changed between preprocess and postprocess", weight_name);
      return NULL;
    }
  return weight;
}

/* GPTQ-quantizes rows [first, first + count) of the weight (count within
 * one row block) into those rows of *w. */
static gboolean
slim_linear_quant_gptq_rows (SlimLinearQuantBasePrivate *priv,
                             const SlimGptqFactor *factor,
                             SlimTensor *weight,
                             SlimQLinear *record,
                             gint64 first,
                             gint64 count,
                             SlimLinearQuantWeights *w,
                             GError **error)
{
  const gint64 n_in = record->n_in;
  const gint64 per_row = slim_tensor_get_dim (w->scale, 1); /* params of a row */
  SlimPhaseTiming timing = slim_phase_timer_begin ("gptq quantize");
  gboolean ok = slim_gptq_quantize_factored (
      &priv->plan.gptq, factor, (const float *)slim_tensor_get_data (weight) + first * n_in, count,
      n_in, (float *)slim_tensor_get_data_mut (w->scale) + first * per_row,
      (float *)slim_tensor_get_data_mut (w->offset) + first * per_row,
      (gint8 *)slim_tensor_get_data_mut (w->weight_q) + first * n_in,
      (float *)slim_tensor_get_data_mut (w->dequantized) + first * n_in, error);

  slim_phase_timer_end (timing);
  if (!ok)
    g_prefix_error (error, "%s: ", record->module);
  return ok;
}

/* The factor of a selected linear's (shared) Hessian. */
static const SlimGptqFactor *
slim_linear_quant_gptq_factor (SlimLinearProcessor *processor, SlimQLinear *record, GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  SlimPhaseTiming timing = slim_phase_timer_begin ("gptq factorise");
  const SlimGptqFactor *factor = slim_hessian_pool_get_factor (
      priv->hessians, record->module, priv->plan.gptq.percdamp, priv->plan.gptq.act_order, error);

  slim_phase_timer_end (timing);
  if (factor == NULL)
    g_prefix_error (error, "%s (%s): ", slim_linear_quant_type_name (processor), record->label);
  return factor;
}

/* GPTQ-quantizes one selected weight with its (shared) Hessian factor
 * into *out (not deployed), row block after row block. */
static gboolean
slim_linear_quant_compute_gptq (SlimLinearProcessor *processor,
                                SlimLayer *layer,
                                SlimLinearQuantPending *pending,
                                SlimLinearQuantWeights *out,
                                GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  SlimQLinear *record = pending->record;
  SlimLinearQuantWeights w = { 0 };
  const SlimGptqFactor *factor;
  SlimTensor *weight;
  gint64 n_params = 0;

  weight = slim_linear_quant_gptq_weight (priv, layer, record, &n_params, error);
  if (weight == NULL)
    return FALSE;
  factor = slim_linear_quant_gptq_factor (processor, record, error);
  if (factor == NULL)
    return FALSE;
  slim_linear_quant_weights_init (&w, record->module, record->n_out, record->n_in, n_params);
  for (gint64 first = 0; first < record->n_out; first += SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK)
    if (!slim_linear_quant_gptq_rows (priv, factor, weight, record, first,
                                      MIN (SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK, record->n_out - first),
                                      &w, error))
      {
        slim_linear_quant_weights_clear (&w);
        return FALSE;
      }
  *out = w;
  return TRUE;
}

/* GPTQ-quantizes one selected weight and deploys it. */
static gboolean
slim_linear_quant_finish_gptq (SlimLinearProcessor *processor,
                               SlimLayer *layer,
                               SlimLinearQuantPending *pending,
                               GError **error)
{
  SlimLinearQuantWeights w = { 0 };

  if (!slim_linear_quant_compute_gptq (processor, layer, pending, &w, error))
    return FALSE;
  slim_linear_quant_deploy_weights (layer, pending->record, &w);
  return TRUE;
}

/* ---- GPTQ over the ranks of a data-parallel run ------------------------ */

/* Calls whose linears read one input of one parent module, and so may share a
 * Hessian (ext.share_hessian), form one group: "module\tgroup\n" lines,
 * from this rank's records (rank 0 decides for all).  A group is at most
 * one Hessian share of linear-quant-hessians.c (a share needs equal first
 * inputs; the records keep one input once for consecutive equal calls),
 * so a share split over two groups only means its Hessian is accumulated
 * twice, to the same bytes. */
static GBytes *
slim_linear_quant_record_groups (const GPtrArray *records, gboolean share_hessian)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  GString *text = g_string_new (NULL);
  gint n_groups = 0, prev_group = -1;
  const SlimLinearQuantCall *prev = NULL;

  for (guint i = 0; records != NULL && i < records->len; i++)
    {
      const SlimLinearQuantCall *call = g_ptr_array_index (records, i);
      gint group;

      if (!g_hash_table_contains (seen, call->module))
        {
          const char *dot = strrchr (call->module, '.');
          const char *prev_dot = prev != NULL ? strrchr (prev->module, '.') : NULL;
          gsize n_parent = dot != NULL ? (gsize)(dot - call->module) : 0;

          if (share_hessian && prev != NULL && prev->x == call->x && prev_group >= 0
              && prev_dot != NULL && dot != NULL && (gsize)(prev_dot - prev->module) == n_parent
              && strncmp (prev->module, call->module, n_parent) == 0)
            group = prev_group;
          else
            group = n_groups++;
          g_hash_table_insert (seen, call->module, GINT_TO_POINTER (group + 1));
          g_string_append_printf (text, "%s\t%d\n", call->module, group);
        }
      group = GPOINTER_TO_INT (g_hash_table_lookup (seen, call->module)) - 1;
      prev = call;
      prev_group = group;
    }
  return g_string_free_to_bytes (text);
}

/* This rank's records of the groups it does not own, serialized:
 * "(a(sxxu)aay)": (module, rows, features, input index) per call, the
 * inputs once each. */
#define SLIM_LINEAR_QUANT_RECORDS_TYPE "(a(sxxu)aay)"

static GBytes *
slim_linear_quant_pack_records (const GPtrArray *records,
                                GHashTable *group_of, /* module -> group + 1 */
                                const gint *group_owner,
                                gint rank)
{
  g_autoptr (GVariantBuilder) calls = g_variant_builder_new (G_VARIANT_TYPE ("a(sxxu)"));
  g_autoptr (GVariantBuilder) inputs = g_variant_builder_new (G_VARIANT_TYPE ("aay"));
  g_autoptr (GVariant) whole = NULL;
  const GBytes *last = NULL;
  guint n_inputs = 0;

  for (guint i = 0; records != NULL && i < records->len; i++)
    {
      const SlimLinearQuantCall *call = g_ptr_array_index (records, i);
      gint group = GPOINTER_TO_INT (g_hash_table_lookup (group_of, call->module)) - 1;
      gsize n_bytes = 0;
      gconstpointer data;

      if (group < 0 || group_owner[group] == rank)
        continue;
      if (call->x != last)
        {
          data = g_bytes_get_data (call->x, &n_bytes);
          g_variant_builder_add_value (
              inputs, g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, n_bytes, 1));
          last = call->x;
          n_inputs++;
        }
      g_variant_builder_add (calls, "(sxxu)", call->module, call->n_rows, call->n_in, n_inputs - 1);
    }
  whole = g_variant_ref_sink (g_variant_new ("(@a(sxxu)@aay)", g_variant_builder_end (calls),
                                             g_variant_builder_end (inputs)));
  return g_variant_get_data_as_bytes (whole);
}

/* The calls of @packed (another rank's) of the groups this rank owns,
 * appended to @out (SlimLinearQuantCall). */
static gboolean
slim_linear_quant_unpack_records (GBytes *packed,
                                  GHashTable *group_of,
                                  const gint *group_owner,
                                  gint rank,
                                  GPtrArray *out,
                                  GError **error)
{
  g_autoptr (GVariant) whole = g_variant_ref_sink (
      g_variant_new_from_bytes (G_VARIANT_TYPE (SLIM_LINEAR_QUANT_RECORDS_TYPE), packed, FALSE));
  g_autoptr (GVariant) calls = g_variant_get_child_value (whole, 0);
  g_autoptr (GVariant) inputs = g_variant_get_child_value (whole, 1);
  g_autofree GBytes **kept = NULL; /* [n_inputs] copies taken so far */
  gsize n_calls = g_variant_n_children (calls), n_inputs = g_variant_n_children (inputs);
  gboolean ok = TRUE;

  kept = g_new0 (GBytes *, MAX (n_inputs, 1));
  for (gsize i = 0; i < n_calls && ok; i++)
    {
      const char *module = NULL;
      gint64 n_rows = 0, n_in = 0;
      guint32 index = 0;
      gint group;

      g_variant_get_child (calls, i, "(&sxxu)", &module, &n_rows, &n_in, &index);
      group = GPOINTER_TO_INT (g_hash_table_lookup (group_of, module)) - 1;
      if (index >= n_inputs || group < 0)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "GPTQ calls from another rank: %s is not a selected linear of this layer "
                       "or has no input",
                       module);
          ok = FALSE;
          break;
        }
      if (group_owner[group] != rank)
        continue;
      if (kept[index] == NULL)
        {
          g_autoptr (GVariant) input = g_variant_get_child_value (inputs, index);
          gsize n_bytes = 0;
          gconstpointer data = g_variant_get_fixed_array (input, &n_bytes, 1);

          if (n_rows < 0 || n_in < 1 || n_bytes != (gsize)(n_rows * n_in) * sizeof (float))
            {
              g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                           "GPTQ calls from another rank: the input of %s has the wrong size",
                           module);
              ok = FALSE;
              break;
            }
          kept[index] = g_bytes_new (data, n_bytes);
        }
      {
        SlimLinearQuantCall *call = g_new0 (SlimLinearQuantCall, 1);

        call->module = g_strdup (module);
        call->n_rows = n_rows;
        call->n_in = n_in;
        call->x = g_bytes_ref (kept[index]);
        g_ptr_array_add (out, call);
      }
    }
  for (gsize i = 0; i < n_inputs; i++)
    g_clear_pointer (&kept[i], g_bytes_unref);
  return ok;
}

/* Rows [first, first + count) of one linear's GPTQ result, on one rank. */
typedef struct
{
  guint member; /* index in the layer's pending list */
  gint64 first;
  gint64 count;
  gint rank;
} SlimLinearQuantRowBlock;

/* Rows [first, first + count) of *w from rank root to every rank. */
static gboolean
slim_linear_quant_broadcast_rows (SlimComm *comm,
                                  SlimLinearQuantWeights *w,
                                  gint64 first,
                                  gint64 count,
                                  gint root,
                                  GError **error)
{
  SlimTensor *parts[] = { w->scale, w->offset, w->weight_q, w->dequantized };

  for (gsize p = 0; p < G_N_ELEMENTS (parts); p++)
    {
      gsize row_bytes
          = slim_tensor_get_n_bytes (parts[p]) / (gsize)slim_tensor_get_dim (parts[p], 0);

      if (!slim_comm_broadcast (
              comm, (guint8 *)slim_tensor_get_data_mut (parts[p]) + (gsize)first * row_bytes,
              (gsize)count * row_bytes, root, error))
        return FALSE;
    }
  return TRUE;
}

/* The split group (slim_linear_quant_finish_gptq_distributed): its owner
 * factorises its Hessian; once every rank got there without an error
 * (*local_error is this rank's, kept for the caller's agreement), the
 * factor goes to every rank when a block runs elsewhere; each rank then
 * quantizes its blocks into w.  FALSE with error only when the
 * communication failed. */
static gboolean
slim_linear_quant_gptq_split (SlimLinearProcessor *processor,
                              SlimLayer *layer,
                              SlimComm *comm,
                              GPtrArray *mine,
                              GArray *blocks,
                              gint split_owner,
                              gboolean foreign,
                              SlimLinearQuantWeights *w,
                              GError **local_error,
                              GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  const gint rank = slim_comm_rank (comm);
  const SlimGptqFactor *factor = NULL;
  SlimGptqFactor received = { 0 };
  gint64 failed, header[3] = { 0 }; /* n_in, n_samples, with perm */
  gboolean ok = TRUE;

  if (blocks->len == 0)
    return TRUE;
  if (rank == split_owner && *local_error == NULL)
    {
      const SlimLinearQuantRowBlock *block = &g_array_index (blocks, SlimLinearQuantRowBlock, 0);
      SlimQLinear *record
          = ((SlimLinearQuantPending *)g_ptr_array_index (mine, block->member))->record;

      factor = slim_linear_quant_gptq_factor (processor, record, local_error);
    }
  if (foreign)
    {
      SlimPhaseTiming timing = slim_phase_timer_begin ("gptq factor broadcast");

      failed = *local_error != NULL;
      ok = slim_comm_allreduce_sum_i64 (comm, &failed, 1, error);
      if (ok && failed == 0)
        {
          if (factor != NULL)
            {
              header[0] = factor->n_in;
              header[1] = factor->n_samples;
              header[2] = factor->perm != NULL;
            }
          ok = slim_comm_broadcast (comm, header, sizeof header, split_owner, error);
          if (ok && rank != split_owner)
            {
              received.n_in = header[0];
              received.n_samples = header[1];
              received.percdamp = priv->plan.gptq.percdamp;
              received.act_order = priv->plan.gptq.act_order;
              received.u = g_new (float, (gsize)(header[0] * header[0]));
              received.dead = g_new0 (gboolean, (gsize)header[0]);
              received.perm = header[2] ? g_new0 (gint64, (gsize)header[0]) : NULL;
              factor = &received;
            }
          ok = ok
               && slim_comm_broadcast (comm, factor->u,
                                       (gsize)(header[0] * header[0]) * sizeof (float), split_owner,
                                       error)
               && slim_comm_broadcast (comm, factor->dead, (gsize)header[0] * sizeof (gboolean),
                                       split_owner, error)
               && (!header[2]
                   || slim_comm_broadcast (comm, factor->perm, (gsize)header[0] * sizeof (gint64),
                                           split_owner, error));
        }
      else
        factor = NULL;
      slim_phase_timer_end (timing);
    }
  for (guint b = 0; ok && factor != NULL && *local_error == NULL && b < blocks->len; b++)
    {
      const SlimLinearQuantRowBlock *block = &g_array_index (blocks, SlimLinearQuantRowBlock, b);
      SlimQLinear *record
          = ((SlimLinearQuantPending *)g_ptr_array_index (mine, block->member))->record;
      SlimTensor *weight;
      gint64 n_params = 0;

      if (block->rank != rank)
        continue;
      weight = slim_linear_quant_gptq_weight (priv, layer, record, &n_params, local_error);
      if (weight == NULL)
        break;
      if (w[block->member].scale == NULL)
        slim_linear_quant_weights_init (&w[block->member], record->module, record->n_out,
                                        record->n_in, n_params);
      slim_linear_quant_gptq_rows (priv, factor, weight, record, block->first, block->count,
                                   &w[block->member], local_error);
    }
  slim_gptq_factor_clear (&received);
  return ok;
}

/* The GPTQ weights of the layer in a data-parallel run.  Each group of
 * calls (slim_linear_quant_record_groups) goes to one rank, the costliest
 * first to the least loaded rank (msModelSlim's DistributedTaskScheduler
 * idea; cost in measured CPU-time units: 0.6 n_in^3 for the
 * factorisations, 0.17 T n_in^2 for accumulating T rows, sum n_out n_in^2
 * for the column updates), the same plan on every rank.  Every rank sends
 * the calls it recorded of the groups others own to their owner; each
 * owner accumulates its groups' Hessians over all calls in sample order
 * (rank 0's calls, then rank 1's, ...: the samples are partitioned in
 * blocks in rank order), which is exactly the sequence of add_batch calls
 * of one process, then factorises and quantizes their linears; the ranks
 * agree that all succeeded, then each result is broadcast from its rank
 * and deployed on all, in selection order.  The bytes are those of one
 * process: the same function of the same inputs. */
static gboolean
slim_linear_quant_finish_gptq_distributed (SlimLinearProcessor *processor,
                                           SlimLayer *layer,
                                           SlimComm *comm,
                                           GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  const gint size = slim_comm_size (comm), rank = slim_comm_rank (comm);
  g_autoptr (GPtrArray) mine = g_ptr_array_new (); /* this layer's pending, in order */
  g_autoptr (GHashTable) group_of = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) received
      = g_ptr_array_new_with_free_func ((GDestroyNotify)g_ptr_array_unref); /* [size] */
  g_autoptr (GBytes) groups = NULL;
  g_autofree gint *owner = NULL;        /* [mine->len] */
  g_autofree gint64 *group_rows = NULL; /* [n_groups] */
  g_autofree double *group_cost = NULL; /* [n_groups] */
  g_autofree gint *group_owner = NULL;  /* [n_groups] */
  g_autofree gboolean *assigned = NULL; /* [n_groups] */
  g_autofree double *load = g_new0 (double, size);
  g_autofree SlimLinearQuantWeights *w = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GArray) blocks = NULL;      /* SlimLinearQuantRowBlock of the split group */
  g_autofree gint *member_group = NULL;  /* [mine->len] */
  g_autofree double *group_quant = NULL; /* [n_groups]: the column updates' share of the cost */
  GPtrArray *records = priv->records;
  gint n_groups = 0, split = -1;
  gboolean split_foreign = FALSE; /* a block of the split group runs on another rank */
  gint64 failed = 0;
  gboolean ok = TRUE;
  SlimPhaseTiming timing;

  for (guint i = 0; i < priv->pending_order->len; i++)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (priv->pending_order, i);

      if (pending->layer == layer)
        g_ptr_array_add (mine, pending);
    }
  /* the groups, as rank 0 recorded them; a linear no call of rank 0
   * reached is a group of its own */
  if (rank == 0)
    groups = slim_linear_quant_record_groups (records, priv->plan.share_hessian);
  if (!slim_comm_broadcast_bytes (comm, &groups, 0, error))
    return FALSE;
  {
    g_autofree char *text = g_strndup (g_bytes_get_data (groups, NULL), g_bytes_get_size (groups));
    g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

    for (guint l = 0; lines[l] != NULL; l++)
      {
        char *tab = strchr (lines[l], '\t');
        gint64 group;

        if (tab == NULL)
          continue;
        *tab = '\0';
        group = g_ascii_strtoll (tab + 1, NULL, 10);
        if (group < 0 || group > G_MAXINT / 2 || g_hash_table_contains (group_of, lines[l]))
          {
            g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                         "%s: malformed GPTQ groups from rank 0",
                         slim_linear_quant_type_name (processor));
            return FALSE;
          }
        g_hash_table_insert (group_of, g_strdup (lines[l]), GINT_TO_POINTER ((gint)group + 1));
        n_groups = MAX (n_groups, (gint)group + 1);
      }
  }
  for (guint i = 0; i < mine->len; i++)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (mine, i);

      if (!g_hash_table_contains (group_of, pending->record->module))
        g_hash_table_insert (group_of, g_strdup (pending->record->module),
                             GINT_TO_POINTER (++n_groups));
    }
  owner = g_new0 (gint, MAX (mine->len, 1));
  member_group = g_new0 (gint, MAX (mine->len, 1));
  group_quant = g_new0 (double, MAX (n_groups, 1));
  w = g_new0 (SlimLinearQuantWeights, MAX (mine->len, 1));
  group_rows = g_new0 (gint64, MAX (n_groups, 1));
  group_cost = g_new0 (double, MAX (n_groups, 1));
  group_owner = g_new0 (gint, MAX (n_groups, 1));
  assigned = g_new0 (gboolean, MAX (n_groups, 1));

  /* rows per group over all ranks (every call of a group reads one input) */
  {
    g_autoptr (GHashTable) lead = g_hash_table_new (g_direct_hash, g_direct_equal);

    for (guint i = 0; records != NULL && i < records->len; i++)
      {
        const SlimLinearQuantCall *call = g_ptr_array_index (records, i);
        gint group = GPOINTER_TO_INT (g_hash_table_lookup (group_of, call->module)) - 1;
        const char *first;

        if (group < 0)
          continue;
        first = g_hash_table_lookup (lead, GINT_TO_POINTER (group + 1));
        if (first == NULL)
          g_hash_table_insert (lead, GINT_TO_POINTER (group + 1), call->module);
        if (first == NULL || strcmp (first, call->module) == 0)
          group_rows[group] += call->n_rows;
      }
  }
  if (!slim_comm_allreduce_sum_i64 (comm, group_rows, (gsize)n_groups, error))
    return FALSE;
  for (guint i = 0; i < mine->len; i++)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (mine, i);
      gint group = GPOINTER_TO_INT (g_hash_table_lookup (group_of, pending->record->module)) - 1;
      double n_in = (double)pending->record->n_in, n_out = (double)pending->record->n_out;

      if (group_cost[group] == 0.0)
        group_cost[group]
            = 0.6 * n_in * n_in * n_in + 0.17 * (double)group_rows[group] * n_in * n_in;
      group_cost[group] += n_out * n_in * n_in;
      group_quant[group] += n_out * n_in * n_in;
      member_group[i] = group;
    }
  /* longest processing time first: costliest unassigned group (first in
   * order on ties) to the least loaded rank (lowest on ties) */
  for (gint done = 0; done < n_groups; done++)
    {
      gint best = -1, target = 0;

      for (gint k = 0; k < n_groups; k++)
        if (!assigned[k] && (best < 0 || group_cost[k] > group_cost[best]))
          best = k;
      for (gint r = 1; r < size; r++)
        if (load[r] < load[target])
          target = r;
      assigned[best] = TRUE;
      group_owner[best] = target;
      load[target] += group_cost[best];
    }
  for (guint i = 0; i < mine->len; i++)
    owner[i] = group_owner[member_group[i]];
  /* The busiest rank's costliest group keeps its factorisation there, but
   * the row blocks of its weights (SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK) go
   * one by one to the least loaded rank (its owner on ties), which then
   * receives the factor. */
  if (n_groups > 0)
    {
      gint busiest = 0;

      for (gint r = 1; r < size; r++)
        if (load[r] > load[busiest])
          busiest = r;
      for (gint k = 0; k < n_groups; k++)
        if (group_owner[k] == busiest && (split < 0 || group_cost[k] > group_cost[split]))
          split = k;
      load[busiest] -= group_quant[split];
      blocks = g_array_new (FALSE, FALSE, sizeof (SlimLinearQuantRowBlock));
      for (guint i = 0; i < mine->len; i++)
        {
          SlimQLinear *record = ((SlimLinearQuantPending *)g_ptr_array_index (mine, i))->record;

          if (member_group[i] != split)
            continue;
          for (gint64 first = 0; first < record->n_out; first += SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK)
            {
              SlimLinearQuantRowBlock block
                  = { i, first, MIN (SLIM_LINEAR_QUANT_GPTQ_ROW_BLOCK, record->n_out - first),
                      busiest };

              for (gint r = 0; r < size; r++)
                if (load[r] < load[block.rank] - 1e-9 * load[block.rank])
                  block.rank = r;
              load[block.rank] += (double)block.count * (double)record->n_in * (double)record->n_in;
              split_foreign = split_foreign || block.rank != busiest;
              g_array_append_val (blocks, block);
            }
        }
    }

  /* every rank's calls of the groups it does not own, to their owners */
  timing = slim_phase_timer_begin ("gptq calls exchange");
  for (gint r = 0; r < size && ok; r++)
    {
      g_autoptr (GBytes) packed = NULL;
      GPtrArray *calls
          = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_linear_quant_call_free);

      g_ptr_array_add (received, calls);
      if (r == rank)
        packed = slim_linear_quant_pack_records (records, group_of, group_owner, rank);
      ok = slim_comm_broadcast_bytes (comm, &packed, r, error);
      if (ok && r != rank && local_error == NULL)
        slim_linear_quant_unpack_records (packed, group_of, group_owner, rank, calls, &local_error);
    }
  slim_phase_timer_end (timing);
  if (!ok)
    return FALSE;

  /* this rank's Hessians over every call, in sample order */
  for (gint r = 0; r < size && local_error == NULL; r++)
    {
      GPtrArray *calls = r == rank ? records : g_ptr_array_index (received, r);

      for (guint i = 0; calls != NULL && i < calls->len && local_error == NULL; i++)
        {
          const SlimLinearQuantCall *call = g_ptr_array_index (calls, i);
          gint group = GPOINTER_TO_INT (g_hash_table_lookup (group_of, call->module)) - 1;

          if (group >= 0 && group_owner[group] == rank)
            slim_hessian_pool_add (priv->hessians, layer, call->module,
                                   g_bytes_get_data (call->x, NULL), call->n_rows, call->n_in,
                                   &local_error);
        }
      if (calls != NULL)
        g_ptr_array_set_size (calls, 0);
    }
  for (guint i = 0; i < mine->len && local_error == NULL; i++)
    if (owner[i] == rank && member_group[i] != split)
      slim_linear_quant_compute_gptq (processor, layer, g_ptr_array_index (mine, i), &w[i],
                                      &local_error);
  if (split >= 0
      && !slim_linear_quant_gptq_split (processor, layer, comm, mine, blocks, group_owner[split],
                                        split_foreign, w, &local_error, error))
    {
      for (guint i = 0; i < mine->len; i++)
        slim_linear_quant_weights_clear (&w[i]);
      return FALSE;
    }
  failed = local_error != NULL;
  timing = slim_phase_timer_begin ("gptq wait for ranks");
  ok = slim_comm_allreduce_sum_i64 (comm, &failed, 1, error);
  slim_phase_timer_end (timing);
  if (ok && failed > 0)
    {
      if (local_error != NULL)
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                     "%s: GPTQ failed on another rank (it reports why)",
                     slim_linear_quant_type_name (processor));
      ok = FALSE;
    }
  timing = slim_phase_timer_begin ("gptq results broadcast");
  for (guint i = 0; i < mine->len && ok; i++)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (mine, i);
      SlimQLinear *record = pending->record;

      if (w[i].scale == NULL)
        {
          gint64 n_params = 0;

          if (!slim_gptq_get_n_params (&priv->plan.gptq, record->n_out, record->n_in, &n_params,
                                       error))
            {
              ok = FALSE;
              break;
            }
          slim_linear_quant_weights_init (&w[i], record->module, record->n_out, record->n_in,
                                          n_params);
        }
      if (member_group[i] != split)
        ok = slim_linear_quant_broadcast_rows (comm, &w[i], 0, record->n_out, owner[i], error);
      for (guint b = 0; member_group[i] == split && ok && b < blocks->len; b++)
        {
          const SlimLinearQuantRowBlock *block
              = &g_array_index (blocks, SlimLinearQuantRowBlock, b);

          if (block->member == i)
            ok = slim_linear_quant_broadcast_rows (comm, &w[i], block->first, block->count,
                                                   block->rank, error);
        }
      if (ok)
        slim_linear_quant_deploy_weights (layer, record, &w[i]);
    }
  slim_phase_timer_end (timing);
  for (guint i = 0; i < mine->len; i++)
    slim_linear_quant_weights_clear (&w[i]);
  return ok;
}

/* Computes the static input scales, GPTQ-quantizes gptq weights and
 * deploys the layer's records (the base then releases the layer's
 * linears); the layer's Hessians are freed in any case. */
static gboolean
slim_linear_quant_base_finish_layer (SlimLinearProcessor *processor,
                                     SlimLayer *layer,
                                     GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  const SlimLinearQuantPlan *plan = &priv->plan;
  g_autoptr (GPtrArray) keep
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_linear_quant_pending_free);
  SlimComm *comm = slim_processor_get_comm (SLIM_PROCESSOR (processor));
  gboolean ok = TRUE;

  for (guint i = 0; i < priv->pending_order->len && ok; i++)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (priv->pending_order, i);

      if (pending->layer != layer)
        continue;
      ok = slim_linear_quant_finish_act (plan, pending, error);
      if (ok && plan->weight_method == SLIM_QMETHOD_GPTQ && comm == NULL)
        ok = slim_linear_quant_finish_gptq (processor, layer, pending, error);
    }
  if (ok && plan->weight_method == SLIM_QMETHOD_GPTQ && comm != NULL)
    ok = slim_linear_quant_finish_gptq_distributed (processor, layer, comm, error);
  if (priv->hessians != NULL)
    {
      SlimHessianPoolStats stats;

      slim_hessian_pool_release (priv->hessians, layer, &stats);
      if (slim_layer_get_index (layer) >= 0)
        g_debug ("layer %d: %u GPTQ Hessians for %u linears: %" G_GUINT64_FORMAT
                 " accumulations (add_batch), %u factorisations",
                 slim_layer_get_index (layer), stats.n_shares, stats.n_linears, stats.n_add_batch,
                 stats.n_factorisations);
    }
  /* detach this layer's entries (all of them, also after an error) */
  for (guint i = 0; i < priv->pending_order->len;)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (priv->pending_order, i);

      if (pending->layer != layer)
        {
          i++;
          continue;
        }
      g_hash_table_remove (priv->pending, pending->record->module);
      if (ok)
        {
          slim_layer_set_qlinear (layer, g_steal_pointer (&pending->record));
          slim_int_linear_free (pending->calib_linear);
          g_free (pending->histogram);
          g_free (pending);
        }
      else
        g_ptr_array_add (keep, pending);
      g_ptr_array_steal_index (priv->pending_order, i);
    }
  return ok;
}

/* "linear_quant (W8A8)", "pdmix (W8A8_MIX)" in the base's messages. */
static char *
slim_linear_quant_base_describe (SlimLinearProcessor *processor)
{
  const char *label = PRIV (processor)->plan.label;
  const char *name = slim_linear_quant_type_name (processor);

  return label != NULL ? g_strdup_printf ("%s (%s)", name, label) : g_strdup (name);
}

static gboolean
slim_linear_quant_base_is_data_free (SlimProcessor *processor)
{
  return slim_linear_processor_prepare (SLIM_LINEAR_PROCESSOR (processor), NULL)
         && PRIV (processor)->plan.data_free;
}

/* linear_math int8: the deployed layer computes integer products, which
 * its calibration forward (fake-quantized, running activation ranges) did
 * not; the next layer's inputs come from a forward as deployed. */
static gboolean
slim_linear_quant_base_refreshes_outputs (SlimProcessor *processor)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);

  return priv->linear_math != SLIM_LINEAR_MATH_FLOAT
         && slim_linear_processor_prepare (SLIM_LINEAR_PROCESSOR (processor), NULL)
         && priv->plan.act.dtype == SLIM_QDTYPE_INT8;
}

static gboolean
slim_linear_quant_base_supports_distributed (SlimProcessor *processor)
{
  return slim_linear_processor_prepare (SLIM_LINEAR_PROCESSOR (processor), NULL)
         && PRIV (processor)->plan.distributed;
}

/* ---- data-parallel runs (dp_layer_wise) -------------------------------- */

/* The observers of the layer's selected linears, in selection order:
 * "a(sxdddd)" module, n_updates, min_val, max_val, min_sum, max_sum
 * (float32 values widened to float64, exact both ways), and the layer's
 * GPTQ Hessians (linear-quant-hessians.h; empty without gptq). */
#define SLIM_LINEAR_QUANT_OBSERVERS_TYPE "(a(sxdddd)" SLIM_HESSIAN_POOL_STATE_TYPE ")"

static guint
slim_linear_quant_n_pending (SlimLinearQuantBasePrivate *priv, SlimLayer *layer)
{
  guint n = 0;

  for (guint i = 0; i < priv->pending_order->len; i++)
    n += ((SlimLinearQuantPending *)g_ptr_array_index (priv->pending_order, i))->layer == layer;
  return n;
}

static GBytes *
slim_linear_quant_base_export_observers (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  g_autoptr (GVariantBuilder) builder = g_variant_builder_new (G_VARIANT_TYPE ("a(sxdddd)"));
  g_autoptr (GVariant) value = NULL;
  g_autoptr (GVariant) hessians = NULL;

  for (guint i = 0; i < priv->pending_order->len; i++)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (priv->pending_order, i);
      const SlimMinMaxObserver *o = &pending->observer;

      if (pending->layer != layer)
        continue;
      g_variant_builder_add (builder, "(sxdddd)", pending->record->module, o->n_updates,
                             (double)o->min_val, (double)o->max_val, o->min_sum, o->max_sum);
    }
  if (priv->hessians != NULL)
    hessians = slim_hessian_pool_export (priv->hessians, layer, error);
  else
    hessians
        = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(sxxayata(st))"), NULL, 0));
  if (hessians == NULL)
    return NULL;
  value = g_variant_ref_sink (g_variant_new ("(@a(sxdddd)@" SLIM_HESSIAN_POOL_STATE_TYPE ")",
                                             g_variant_builder_end (builder), hessians));
  return g_variant_get_data_as_bytes (value);
}

/* Replaces (merge FALSE) or combines (merge TRUE) the observers of the
 * layer's selected linears with another rank's; the list must name the
 * same linears in the same order. */
static gboolean
slim_linear_quant_base_import_observers (
    SlimProcessor *processor, SlimLayer *layer, GBytes *observers, gboolean merge, GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  g_autoptr (GVariant) whole = g_variant_ref_sink (g_variant_new_from_bytes (
      G_VARIANT_TYPE (SLIM_LINEAR_QUANT_OBSERVERS_TYPE), observers, FALSE));
  g_autoptr (GVariant) value = NULL;
  g_autoptr (GVariant) hessians = NULL;
  gsize n, k = 0;

  if (!g_variant_is_normal_form (whole))
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: malformed observers from another rank",
                   slim_linear_quant_type_name (processor));
      return FALSE;
    }
  value = g_variant_get_child_value (whole, 0);
  hessians = g_variant_get_child_value (whole, 1);
  n = g_variant_n_children (value);
  if (g_variant_n_children (hessians) > 0
      || (priv->hessians != NULL && !slim_linear_quant_collects (priv, processor)))
    {
      /* Hessians are handed on in sample order, never merged */
      if (merge || priv->hessians == NULL)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s: GPTQ Hessians from another rank cannot be %s",
                       slim_linear_quant_type_name (processor),
                       merge ? "merged (they are accumulated in sample order)" : "used here");
          return FALSE;
        }
      if (!slim_hessian_pool_import (priv->hessians, layer, hessians, error))
        {
          g_prefix_error (error, "%s: ", slim_linear_quant_type_name (processor));
          return FALSE;
        }
    }
  for (guint i = 0; i < priv->pending_order->len; i++)
    {
      SlimLinearQuantPending *pending = g_ptr_array_index (priv->pending_order, i);
      SlimMinMaxObserver *o = &pending->observer;
      const char *module = NULL;
      gint64 n_updates = 0;
      double min_val, max_val, min_sum, max_sum;

      if (pending->layer != layer)
        continue;
      if (k == n)
        break;
      g_variant_get_child (value, k++, "(&sxdddd)", &module, &n_updates, &min_val, &max_val,
                           &min_sum, &max_sum);
      if (strcmp (module, pending->record->module) != 0 || n_updates < 0)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s: another rank's observers are for %s, this rank selected %s",
                       slim_linear_quant_type_name (processor), module, pending->record->module);
          return FALSE;
        }
      if (!merge)
        {
          o->n_updates = n_updates;
          o->min_val = (float)min_val;
          o->max_val = (float)max_val;
          o->min_sum = min_sum;
          o->max_sum = max_sum;
          continue;
        }
      if (n_updates == 0)
        continue;
      o->n_updates += n_updates;
      o->min_sum += min_sum;
      o->max_sum += max_sum;
      if (o->aggregation == SLIM_QAGGREGATION_MEAN)
        {
          o->min_val = (float)(o->min_sum / (double)o->n_updates);
          o->max_val = (float)(o->max_sum / (double)o->n_updates);
        }
      else
        {
          o->min_val = MIN (o->min_val, (float)min_val);
          o->max_val = MAX (o->max_val, (float)max_val);
        }
    }
  if (k != n || n != slim_linear_quant_n_pending (priv, layer))
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: another rank selected %" G_GSIZE_FORMAT " linears of this layer, this "
                   "rank %u",
                   slim_linear_quant_type_name (processor), n,
                   slim_linear_quant_n_pending (priv, layer));
      return FALSE;
    }
  return TRUE;
}

/* Static per-tensor activations quantize each calibration call with the
 * running range, and mean aggregation adds float64 per-call terms: both
 * must see the samples in order, so dp_layer_wise hands the observers
 * from rank to rank.  pd_mix with max aggregation only observes (min and
 * max merge exactly), so its forwards run in parallel. */
static gboolean
slim_linear_quant_base_distributed_ordered (SlimProcessor *processor)
{
  const SlimLinearQuantPlan *plan = &PRIV (processor)->plan;

  if (!slim_linear_processor_prepare (SLIM_LINEAR_PROCESSOR (processor), NULL))
    return TRUE;
  return plan->aggregation == SLIM_QAGGREGATION_MEAN
         || (plan->act.dtype != SLIM_QDTYPE_FLOAT && plan->act.scope == SLIM_QSCOPE_PER_TENSOR);
}

/* GPTQ with a forward that reads no running statistics (float or
 * per-token activations) in dp_layer_wise with one rank (no comm): the
 * Hessian calls are recorded during the forward and replayed (add_batch
 * rescales the running sum at every call, so only sample order gives one
 * process's bytes).  With several ranks the processor records by itself
 * (slim_linear_quant_collects) and the owners accumulate in postprocess. */
static gboolean
slim_linear_quant_base_start_recording (SlimProcessor *processor, SlimLayer *layer)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);

  if (!slim_linear_processor_prepare (SLIM_LINEAR_PROCESSOR (processor), NULL)
      || priv->plan.weight_method != SLIM_QMETHOD_GPTQ
      || slim_linear_quant_base_distributed_ordered (processor)
      || slim_linear_quant_collects (priv, processor))
    return FALSE;
  priv->recording = layer;
  if (priv->records == NULL)
    priv->records = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_linear_quant_call_free);
  g_ptr_array_set_size (priv->records, 0);
  return TRUE;
}

static gboolean
slim_linear_quant_base_replay_recorded (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimLinearQuantBasePrivate *priv = PRIV (processor);
  gboolean ok = TRUE;

  if (priv->recording != layer)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: replay_recorded without start_recording for this layer",
                   slim_linear_quant_type_name (processor));
      return FALSE;
    }
  priv->recording = NULL;
  for (guint i = 0; i < priv->records->len && ok; i++)
    {
      SlimLinearQuantCall *call = g_ptr_array_index (priv->records, i);

      ok = slim_hessian_pool_add (priv->hessians, layer, call->module,
                                  g_bytes_get_data (call->x, NULL), call->n_rows, call->n_in,
                                  error);
    }
  g_ptr_array_set_size (priv->records, 0);
  return ok;
}

/* ---- GObject ------------------------------------------------------------ */

static void
slim_linear_quant_base_finalize (GObject *object)
{
  SlimLinearQuantBasePrivate *priv = PRIV (object);

  g_hash_table_unref (priv->pending);
  g_ptr_array_unref (priv->pending_order);
  slim_hessian_pool_free (priv->hessians);
  g_clear_pointer (&priv->records, g_ptr_array_unref);
  g_clear_object (&priv->qconfig);
  G_OBJECT_CLASS (slim_linear_quant_base_parent_class)->finalize (object);
}

static void
slim_linear_quant_base_class_init (SlimLinearQuantBaseClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimLinearProcessorClass *linear_class = SLIM_LINEAR_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_linear_quant_base_finalize;
  processor_class->get_forward_hooks = slim_linear_quant_base_get_forward_hooks;
  processor_class->is_data_free = slim_linear_quant_base_is_data_free;
  processor_class->supports_distributed = slim_linear_quant_base_supports_distributed;
  processor_class->export_observers = slim_linear_quant_base_export_observers;
  processor_class->import_observers = slim_linear_quant_base_import_observers;
  processor_class->distributed_ordered = slim_linear_quant_base_distributed_ordered;
  processor_class->start_recording = slim_linear_quant_base_start_recording;
  processor_class->replay_recorded = slim_linear_quant_base_replay_recorded;
  processor_class->refreshes_outputs = slim_linear_quant_base_refreshes_outputs;
  linear_class->prepare = slim_linear_quant_base_prepare;
  linear_class->process_linear = slim_linear_quant_base_process_linear;
  linear_class->finish_layer = slim_linear_quant_base_finish_layer;
  linear_class->describe = slim_linear_quant_base_describe;
}

static void
slim_linear_quant_base_init (SlimLinearQuantBase *self)
{
  SlimLinearQuantBasePrivate *priv = PRIV (self);

  priv->pending = g_hash_table_new (g_str_hash, g_str_equal);
  priv->pending_order
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_linear_quant_pending_free);
}

/* ---- linear_quant ------------------------------------------------------- */

#define SLIM_TYPE_LINEAR_QUANT_PROCESSOR (slim_linear_quant_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimLinearQuantProcessor,
                      slim_linear_quant_processor,
                      SLIM,
                      LINEAR_QUANT_PROCESSOR,
                      SlimLinearQuantBase)

struct _SlimLinearQuantProcessor
{
  SlimLinearQuantBase parent_instance;

  SlimLinearQConfig *qconfig;
  SlimLinearMath linear_math;
  gboolean quantize_lm_head;
  SlimLinearMath calib_math;
};

/* include and exclude belong to SlimLinearProcessor. */
/* clang-format off */
static const SlimPropertyDecl slim_linear_quant_properties[] = {
  SLIM_PROPERTY_OBJECT (
      SlimLinearQuantProcessor, qconfig, "qconfig", "Quantization config",
      "Activation (act, optional: float) and weight (required) quantizer configs.",
      slim_linear_qconfig_get_type, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_ENUM (
      SlimLinearQuantProcessor, linear_math, "linear-math", "Linear math",
      "How the forward after quantization, which feeds the next layer's calibration, runs the "
      "linears with int8 activations: float (fake-quantized activations times dequantized "
      "weights, msModelSlim's way; the next layer is fed by this processor's calibration "
      "forward) or int8 (as deployed: int8 codes with the final activation parameters, exact "
      "int32 sums, deq_scale / quant_bias or per-token scales; the layer is run once more for "
      "the next layer's inputs). int8_ref is int8 with the reference product (slower, same "
      "results). slimflow's extension.",
      slim_linear_math_get_type, SLIM_LINEAR_MATH_FLOAT),
  SLIM_PROPERTY_BOOLEAN (
      SlimLinearQuantProcessor, quantize_lm_head, "quantize-lm-head", "Quantize lm_head",
      "Also quantize the last linear (lm_head, the head pseudo-layer's), when include / exclude "
      "select it; weight-only data-free schemes only (no calibration forward runs through the "
      "head). slimflow's extension for QuantConfig disable_last_linear: False; msModelSlim's "
      "v1 pipeline visits decoder layers only.",
      FALSE),
  SLIM_PROPERTY_ENUM (
      SlimLinearQuantProcessor, calib_math, "calib-math", "Calibration math",
      "How the calibration forward (fake-quantized activations with the running range times "
      "the dequantized weights) computes its products: float (float32 sgemm, msModelSlim's "
      "way) or int8 (the same product as int8 codes, exact int32 sums, then scaled: 4x the "
      "sgemm throughput with VNNI; results differ from float only by float32 rounding). "
      "int8_ref is int8 with the reference product. W8A8 static (int8 per_tensor minmax "
      "activations, int8 per_channel symmetric minmax or ssz weights) only. slimflow's "
      "extension.",
      slim_linear_math_get_type, SLIM_LINEAR_MATH_FLOAT),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimLinearQuantProcessor,
                     slim_linear_quant_processor,
                     SLIM_TYPE_LINEAR_QUANT_BASE)

static gboolean
slim_linear_quant_processor_prepare (SlimLinearProcessor *processor, GError **error)
{
  SlimLinearQuantProcessor *self = SLIM_LINEAR_QUANT_PROCESSOR (processor);

  slim_linear_quant_base_set_qconfig (SLIM_LINEAR_QUANT_BASE (self), self->qconfig);
  slim_linear_quant_base_set_linear_math (SLIM_LINEAR_QUANT_BASE (self), self->linear_math);
  slim_linear_quant_base_set_calib_math (SLIM_LINEAR_QUANT_BASE (self), self->calib_math);
  if (!SLIM_LINEAR_PROCESSOR_CLASS (slim_linear_quant_processor_parent_class)
           ->prepare (processor, error))
    return FALSE;
  if (self->quantize_lm_head)
    {
      const SlimLinearQuantPlan *plan = &PRIV (self)->plan;

      if (plan->act.dtype != SLIM_QDTYPE_FLOAT || !plan->data_free)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "quantize_lm_head: true needs a weight-only data-free scheme (%s is not: "
                       "no calibration forward runs through the head); remove it or use float "
                       "activations with minmax, hqq or nf weights",
                       plan->label);
          return FALSE;
        }
      slim_linear_processor_set_visit_head (processor, TRUE);
    }
  return TRUE;
}

static void
slim_linear_quant_processor_class_init (SlimLinearQuantProcessorClass *klass)
{
  SLIM_LINEAR_PROCESSOR_CLASS (klass)->prepare = slim_linear_quant_processor_prepare;
  SLIM_PROPERTIES_INSTALL (klass, slim_linear_quant_properties);
}

static void
slim_linear_quant_processor_init (SlimLinearQuantProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    linear_quant,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Quantization of linear weights and activations (msModelSlim "
                    "linear_quant: minmax, histogram, gptq and ssz; W8A8, W8A8_DYNAMIC, W8A16, "
                    "W4A16, W4A8_DYNAMIC, W4A4_DYNAMIC, W8A8_MIX, MX per_block W8A8_MXFP8, "
                    "W4A8_MXFP, W4A4_MXFP4, WFP8AFP8_DYNAMIC)",
                    slim_linear_quant_processor_get_type)
