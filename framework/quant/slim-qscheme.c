/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qscheme.c: the quantizer and act/weight combination tables of
 * linear_quant and the ascendv1 model_quant_type priority.
 *
 * Sources (modelslim-v1-spec.md 2.1, 3.1): msModelSlim's quantizer
 * registrations (core/quantizer/impl/ files), the IR dispatch keys
 * (ir/w8a8_static.py, w8a8_dynamic.py, w8a16_static.py, w4a8_dynamic.py,
 * w4a4_dynamic.py, w8a8_pdmix.py, w8a8_fp_dynamic.py and the MX variants) and
 * AscendV1Saver.QUANT_TYPE_PRIORITY. One deliberate addition: an int4
 * per_token symmetric minmax activation quantizer (msModelSlim registers
 * the W4A4_DYNAMIC IR but no minmax quantizer that can reach it outside
 * autoround); it is marked slim_extension.
 */
#include "slim-qscheme.h"

#include "slim-error.h"

#include <string.h>

G_DEFINE_ENUM_TYPE (SlimQDtype,
                    slim_qdtype,
                    G_DEFINE_ENUM_VALUE (SLIM_QDTYPE_FLOAT, "float"),
                    G_DEFINE_ENUM_VALUE (SLIM_QDTYPE_INT8, "int8"),
                    G_DEFINE_ENUM_VALUE (SLIM_QDTYPE_INT4, "int4"),
                    G_DEFINE_ENUM_VALUE (SLIM_QDTYPE_FP8_E4M3, "fp8_e4m3"),
                    G_DEFINE_ENUM_VALUE (SLIM_QDTYPE_MXFP8, "mxfp8"),
                    G_DEFINE_ENUM_VALUE (SLIM_QDTYPE_MXFP4, "mxfp4"))

G_DEFINE_ENUM_TYPE (SlimQScope,
                    slim_qscope,
                    G_DEFINE_ENUM_VALUE (SLIM_QSCOPE_PER_TENSOR, "per_tensor"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCOPE_PER_CHANNEL, "per_channel"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCOPE_PER_GROUP, "per_group"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCOPE_PER_BLOCK, "per_block"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCOPE_PER_TOKEN, "per_token"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCOPE_PD_MIX, "pd_mix"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCOPE_PER_HEAD, "per_head"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCOPE_DUAL_SCALE, "dual_scale"))

G_DEFINE_ENUM_TYPE (SlimQMethod,
                    slim_qmethod,
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_NONE, "none"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_MINMAX, "minmax"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_HISTOGRAM, "histogram"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_SSZ, "ssz"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_GPTQ, "gptq"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_AUTOROUND, "autoround"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_IFMR, "ifmr"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_HFMG, "hfmg"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_HQQ, "hqq"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_NF, "nf"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_DUALSCALE, "dualscale"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_CEIL_X, "ceil_x"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_FOUROVERSIX, "fouroversix"),
                    G_DEFINE_ENUM_VALUE (SLIM_QMETHOD_MSE_ROUND, "mse_round"))

G_DEFINE_ENUM_TYPE (SlimQAggregation,
                    slim_qaggregation,
                    G_DEFINE_ENUM_VALUE (SLIM_QAGGREGATION_MAX, "max"),
                    G_DEFINE_ENUM_VALUE (SLIM_QAGGREGATION_MEAN, "mean"))

G_DEFINE_ENUM_TYPE (SlimQScaleDType,
                    slim_qscale_dtype,
                    G_DEFINE_ENUM_VALUE (SLIM_QSCALE_DTYPE_FLOAT32, "float32"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCALE_DTYPE_FLOAT16, "float16"),
                    G_DEFINE_ENUM_VALUE (SLIM_QSCALE_DTYPE_BFLOAT16, "bfloat16"))

static const char *
slim_enum_nick (GType type, int value)
{
  GEnumClass *klass = g_type_class_peek (type);
  GEnumValue *v;

  /* the first lookup keeps a reference for the life of the process, so the
   * nicks returned stay valid */
  if (klass == NULL)
    klass = g_type_class_ref (type);
  v = g_enum_get_value (klass, value);
  return (v != NULL) ? v->value_nick : "?";
}

/**
 * slim_qdtype_get_nick:
 * @dtype: a dtype
 *
 * Returns: (transfer none): the YAML word of @dtype ("int8"), "?" if invalid
 */
const char *
slim_qdtype_get_nick (SlimQDtype dtype)
{
  return slim_enum_nick (SLIM_TYPE_QDTYPE, (int)dtype);
}

/**
 * slim_qscope_get_nick:
 * @scope: a scope
 *
 * Returns: (transfer none): the YAML word of @scope ("per_token")
 */
const char *
slim_qscope_get_nick (SlimQScope scope)
{
  return slim_enum_nick (SLIM_TYPE_QSCOPE, (int)scope);
}

/**
 * slim_qmethod_get_nick:
 * @method: a method
 *
 * Returns: (transfer none): the YAML word of @method ("minmax")
 */
const char *
slim_qmethod_get_nick (SlimQMethod method)
{
  return slim_enum_nick (SLIM_TYPE_QMETHOD, (int)method);
}

/**
 * slim_qdtype_get_bits:
 * @dtype: a dtype
 *
 * Returns: 8 for int8, 4 for int4, 0 for non-integer dtypes
 */
guint
slim_qdtype_get_bits (SlimQDtype dtype)
{
  switch (dtype)
    {
    case SLIM_QDTYPE_INT8:
      return 8;
    case SLIM_QDTYPE_INT4:
      return 4;
    case SLIM_QDTYPE_FLOAT:
    case SLIM_QDTYPE_FP8_E4M3:
    case SLIM_QDTYPE_MXFP8:
    case SLIM_QDTYPE_MXFP4:
    default:
      return 0;
    }
}

/**
 * slim_qscheme_to_string:
 * @scheme: a scheme
 *
 * Returns: (transfer full): e.g. "int8 per_channel sym"
 */
char *
slim_qscheme_to_string (const SlimQScheme *scheme)
{
  g_return_val_if_fail (scheme != NULL, NULL);
  return g_strdup_printf ("%s %s %s", slim_qdtype_get_nick (scheme->dtype),
                          slim_qscope_get_nick (scheme->scope), scheme->symmetric ? "sym" : "asym");
}

/**
 * slim_qscheme_equal:
 * @a: a scheme
 * @b: a scheme
 *
 * Returns: whether the two schemes are identical (symmetric compared as
 *   booleans)
 */
gboolean
slim_qscheme_equal (const SlimQScheme *a, const SlimQScheme *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);
  return a->dtype == b->dtype && a->scope == b->scope && !a->symmetric == !b->symmetric;
}

/* ---- registered quantizers ---------------------------------------------- */

#define Q(role, dt, sc, sym, meth, cls, df, impl, ext)                                             \
  {                                                                                                \
    SLIM_QROLE_##role, { SLIM_QDTYPE_##dt, SLIM_QSCOPE_##sc, sym }, SLIM_QMETHOD_##meth, cls, df,  \
        impl, ext                                                                                  \
  }

static const SlimQuantizerInfo slim_quantizers[] = {
  /* activations */
  Q (ACT, FLOAT, PER_TENSOR, TRUE, NONE, "ActPerTensorNone", TRUE, TRUE, FALSE),
  Q (ACT, INT8, PER_TENSOR, TRUE, MINMAX, "ActPerTensorMinmax", FALSE, TRUE, FALSE),
  Q (ACT, INT8, PER_TENSOR, FALSE, MINMAX, "ActPerTensorMinmax", FALSE, TRUE, FALSE),
  Q (ACT, FP8_E4M3, PER_TENSOR, TRUE, MINMAX, "ActPerTensorMinmax", FALSE, FALSE, FALSE),
  Q (ACT, INT8, PER_TOKEN, TRUE, MINMAX, "ActPerTokenMinmax", TRUE, TRUE, FALSE),
  Q (ACT, INT8, PER_TOKEN, FALSE, MINMAX, "ActPerTokenMinmax", TRUE, TRUE, FALSE),
  Q (ACT, FP8_E4M3, PER_TOKEN, TRUE, MINMAX, "ActPerTokenMinmax", TRUE, TRUE, FALSE),
  Q (ACT, INT4, PER_TOKEN, TRUE, MINMAX, "ActPerTokenMinmax", TRUE, TRUE, TRUE),
  Q (ACT, INT8, PER_CHANNEL, TRUE, MINMAX, "ActPerChannelMinmax", FALSE, FALSE, FALSE),
  Q (ACT, INT8, PER_CHANNEL, FALSE, MINMAX, "ActPerChannelMinmax", FALSE, FALSE, FALSE),
  Q (ACT, FP8_E4M3, PER_CHANNEL, TRUE, MINMAX, "ActPerChannelMinmax", FALSE, FALSE, FALSE),
  Q (ACT, INT8, PD_MIX, FALSE, MINMAX, "ActPDMixMinmax", FALSE, TRUE, FALSE),
  Q (ACT, INT8, PER_TENSOR, TRUE, HISTOGRAM, "ActPerTensorHistogram", FALSE, TRUE, FALSE),
  Q (ACT, INT8, PER_TENSOR, FALSE, HISTOGRAM, "ActPerTensorHistogram", FALSE, TRUE, FALSE),
  Q (ACT, MXFP8, PER_BLOCK, TRUE, MINMAX, "MXActPerBlockMinmax", TRUE, TRUE, FALSE),
  Q (ACT, MXFP4, PER_BLOCK, TRUE, MINMAX, "MXActPerBlockMinmax", TRUE, TRUE, FALSE),
  Q (ACT, MXFP4, DUAL_SCALE, TRUE, DUALSCALE, "MXActDualScaleMinmax", TRUE, TRUE, FALSE),
  /* weights */
  Q (WEIGHT, INT8, PER_CHANNEL, TRUE, MINMAX, "WeightPerChannelMinmax", TRUE, TRUE, FALSE),
  Q (WEIGHT, INT4, PER_CHANNEL, TRUE, MINMAX, "WeightPerChannelMinmax", TRUE, TRUE, FALSE),
  Q (WEIGHT, FP8_E4M3, PER_CHANNEL, TRUE, MINMAX, "WeightPerChannelMinmax", TRUE, TRUE, FALSE),
  Q (WEIGHT, INT8, PER_CHANNEL, TRUE, SSZ, "WeightPerChannelSsz", TRUE, TRUE, FALSE),
  Q (WEIGHT, INT4, PER_CHANNEL, TRUE, SSZ, "WeightPerChannelSsz", TRUE, TRUE, FALSE),
  Q (WEIGHT, INT8, PER_CHANNEL, TRUE, GPTQ, "WeightPerChannelGPTQ", FALSE, TRUE, FALSE),
  Q (WEIGHT, INT8, PER_CHANNEL, FALSE, GPTQ, "WeightPerChannelGPTQ", FALSE, TRUE, FALSE),
  Q (WEIGHT, INT4, PER_CHANNEL, TRUE, GPTQ, "WeightPerChannelGPTQ", FALSE, TRUE, FALSE),
  Q (WEIGHT, INT4, PER_CHANNEL, FALSE, GPTQ, "WeightPerChannelGPTQ", FALSE, TRUE, FALSE),
  Q (WEIGHT, INT8, PER_GROUP, TRUE, GPTQ, "WeightPerGroupGPTQ", FALSE, TRUE, FALSE),
  Q (WEIGHT, INT8, PER_GROUP, FALSE, GPTQ, "WeightPerGroupGPTQ", FALSE, TRUE, FALSE),
  Q (WEIGHT, INT4, PER_GROUP, TRUE, GPTQ, "WeightPerGroupGPTQ", FALSE, TRUE, FALSE),
  Q (WEIGHT, INT4, PER_GROUP, FALSE, GPTQ, "WeightPerGroupGPTQ", FALSE, TRUE, FALSE),
  Q (WEIGHT, MXFP8, PER_BLOCK, TRUE, MINMAX, "MXWeightPerBlockMinmax", TRUE, TRUE, FALSE),
  Q (WEIGHT, MXFP4, PER_BLOCK, TRUE, MINMAX, "MXWeightPerBlockMinmax", TRUE, TRUE, FALSE),
  Q (WEIGHT, MXFP4, PER_BLOCK, TRUE, CEIL_X, "MXWeightPerBlockCeilX", TRUE, TRUE, FALSE),
  Q (WEIGHT, MXFP4, PER_BLOCK, TRUE, FOUROVERSIX, "WeightFouroverSixQuantizer", TRUE, TRUE, FALSE),
  Q (WEIGHT, MXFP8, PER_BLOCK, TRUE, MSE_ROUND, "MXWeightPerBlockMseRound", TRUE, TRUE, FALSE),
  Q (WEIGHT, MXFP4, DUAL_SCALE, TRUE, DUALSCALE, "MXWeightDualScaleMinmax", TRUE, TRUE, FALSE),
  /* autoround weights exist only inside the autoround_quant processor */
  Q (WEIGHT, INT8, PER_CHANNEL, TRUE, AUTOROUND, "AutoRound", FALSE, FALSE, FALSE),
  Q (WEIGHT, INT8, PER_CHANNEL, FALSE, AUTOROUND, "AutoRound", FALSE, FALSE, FALSE),
  Q (WEIGHT, INT4, PER_CHANNEL, TRUE, AUTOROUND, "AutoRound", FALSE, FALSE, FALSE),
  Q (WEIGHT, INT4, PER_CHANNEL, FALSE, AUTOROUND, "AutoRound", FALSE, FALSE, FALSE),
  Q (WEIGHT, INT8, PER_GROUP, TRUE, AUTOROUND, "AutoRound", FALSE, FALSE, FALSE),
  Q (WEIGHT, INT8, PER_GROUP, FALSE, AUTOROUND, "AutoRound", FALSE, FALSE, FALSE),
  Q (WEIGHT, INT4, PER_GROUP, TRUE, AUTOROUND, "AutoRound", FALSE, FALSE, FALSE),
  Q (WEIGHT, INT4, PER_GROUP, FALSE, AUTOROUND, "AutoRound", FALSE, FALSE, FALSE),
};

#undef Q

/**
 * slim_qscheme_get_quantizers:
 * @n_quantizers: (out): number of rows
 *
 * Returns: (transfer none) (array length=n_quantizers): the table of
 *   registered quantizers
 */
const SlimQuantizerInfo *
slim_qscheme_get_quantizers (gsize *n_quantizers)
{
  g_return_val_if_fail (n_quantizers != NULL, NULL);
  *n_quantizers = G_N_ELEMENTS (slim_quantizers);
  return slim_quantizers;
}

/**
 * slim_qscheme_lookup_quantizer:
 * @role: act or weight
 * @scheme: the qconfig's dtype, scope and symmetric
 * @method: the qconfig's method
 * @error: return location for a #GError
 *
 * Finds the quantizer registered for (@scheme, @method) in @role. Fails
 * with %SLIM_CONFIG_ERROR_BAD_VALUE, listing the methods registered for
 * @scheme (or the schemes registered for @method), when there is none.
 * A registered quantizer that slimflow does not implement yet is returned
 * with implemented = FALSE; the caller decides.
 *
 * Returns: (transfer none) (nullable): the table row, %NULL on error
 */
const SlimQuantizerInfo *
slim_qscheme_lookup_quantizer (SlimQRole role,
                               const SlimQScheme *scheme,
                               SlimQMethod method,
                               GError **error)
{
  g_autoptr (GString) known = NULL;
  g_autoptr (GString) methods = NULL;
  g_autofree char *text = NULL;
  const char *role_name = (role == SLIM_QROLE_ACT) ? "act" : "weight";

  g_return_val_if_fail (scheme != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  for (gsize k = 0; k < G_N_ELEMENTS (slim_quantizers); k++)
    {
      const SlimQuantizerInfo *q = &slim_quantizers[k];

      if (q->role == role && q->method == method && slim_qscheme_equal (&q->scheme, scheme))
        return q;
    }

  known = g_string_new (NULL);
  for (gsize k = 0; k < G_N_ELEMENTS (slim_quantizers); k++)
    {
      const SlimQuantizerInfo *q = &slim_quantizers[k];
      g_autofree char *s = NULL;

      if (q->role != role || q->method != method)
        continue;
      s = slim_qscheme_to_string (&q->scheme);
      g_string_append_printf (known, "%s%s", known->len > 0 ? ", " : "", s);
    }
  methods = g_string_new (NULL);
  for (gsize k = 0; k < G_N_ELEMENTS (slim_quantizers); k++)
    {
      const SlimQuantizerInfo *q = &slim_quantizers[k];
      const char *nick = slim_qmethod_get_nick (q->method);

      if (q->role != role || !slim_qscheme_equal (&q->scheme, scheme)
          || strstr (methods->str, nick) != NULL)
        continue;
      g_string_append_printf (methods, "%s%s", methods->len > 0 ? ", " : "", nick);
    }
  text = slim_qscheme_to_string (scheme);
  g_set_error (
      error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
      "no %s quantizer for %s with method %s; %s %s has methods: %s; method %s supports: %s",
      role_name, text, slim_qmethod_get_nick (method), role_name, text,
      methods->len > 0 ? methods->str : "none", slim_qmethod_get_nick (method),
      known->len > 0 ? known->str : "nothing");
  return NULL;
}

/* ---- legal act/weight combinations -------------------------------------- */

#define S(dt, sc, sym)                                                                             \
  {                                                                                                \
    SLIM_QDTYPE_##dt, SLIM_QSCOPE_##sc, sym                                                        \
  }

static const SlimQComboInfo slim_combos[] = {
  { S (INT8, PER_TENSOR, FALSE), S (INT8, PER_CHANNEL, TRUE), "W8A8", "W8A8StaticFakeQuantLinear",
    TRUE },
  { S (INT8, PER_TENSOR, TRUE), S (INT8, PER_CHANNEL, TRUE), "W8A8", "W8A8StaticFakeQuantLinear",
    TRUE },
  { S (INT8, PER_TOKEN, TRUE), S (INT8, PER_CHANNEL, TRUE), "W8A8_DYNAMIC",
    "W8A8DynamicPerChannelFakeQuantLinear", TRUE },
  { S (INT8, PER_TOKEN, TRUE), S (INT8, PER_GROUP, TRUE), "W8A8_DYNAMIC",
    "W8A8DynamicPerGroupFakeQuantLinear", TRUE },
  { S (INT8, PER_TOKEN, TRUE), S (INT8, PER_GROUP, FALSE), "W8A8_DYNAMIC",
    "W8A8DynamicPerGroupFakeQuantLinear", TRUE },
  { S (FLOAT, PER_TENSOR, TRUE), S (INT8, PER_CHANNEL, TRUE), "W8A16",
    "W8A16StaticPerChannelFakeQuantLinear", TRUE },
  { S (FLOAT, PER_TENSOR, TRUE), S (INT8, PER_CHANNEL, FALSE), "W8A16",
    "W8A16StaticPerChannelFakeQuantLinear", TRUE },
  { S (FLOAT, PER_TENSOR, TRUE), S (INT8, PER_GROUP, TRUE), "W8A16",
    "W8A16StaticPerGroupFakeQuantLinear", TRUE },
  { S (FLOAT, PER_TENSOR, TRUE), S (INT8, PER_GROUP, FALSE), "W8A16",
    "W8A16StaticPerGroupFakeQuantLinear", TRUE },
  { S (INT8, PER_TOKEN, TRUE), S (INT4, PER_CHANNEL, TRUE), "W4A8_DYNAMIC",
    "W4A8DynamicFakeQuantLinear", TRUE },
  { S (INT4, PER_TOKEN, TRUE), S (INT4, PER_CHANNEL, TRUE), "W4A4_DYNAMIC",
    "W4A4DynamicPerChannelFakeQuantLinear", TRUE },
  { S (INT4, PER_TOKEN, TRUE), S (INT4, PER_CHANNEL, FALSE), "W4A4_DYNAMIC",
    "W4A4DynamicPerChannelFakeQuantLinear", TRUE },
  { S (INT4, PER_TOKEN, TRUE), S (INT4, PER_GROUP, TRUE), "W4A4_DYNAMIC",
    "W4A4DynamicPerGroupFakeQuantLinear", TRUE },
  { S (INT4, PER_TOKEN, TRUE), S (INT4, PER_GROUP, FALSE), "W4A4_DYNAMIC",
    "W4A4DynamicPerGroupFakeQuantLinear", TRUE },
  { S (INT8, PD_MIX, FALSE), S (INT8, PER_CHANNEL, TRUE), "W8A8_MIX", "W8A8PDMixFakeQuantLinear",
    TRUE },
  { S (MXFP8, PER_BLOCK, TRUE), S (MXFP8, PER_BLOCK, TRUE), "W8A8_MXFP8",
    "W8A8MXDynamicPerBlockFakeQuantLinear", TRUE },
  { S (MXFP8, PER_BLOCK, TRUE), S (MXFP4, PER_BLOCK, TRUE), "W4A8_MXFP",
    "W4A8MXDynamicPerBlockFakeQuantLinear", TRUE },
  { S (MXFP4, PER_BLOCK, TRUE), S (MXFP4, PER_BLOCK, TRUE), "W4A4_MXFP4",
    "W4A4MXDynamicPerBlockFakeQuantLinear", TRUE },
  { S (FP8_E4M3, PER_TOKEN, TRUE), S (FP8_E4M3, PER_CHANNEL, TRUE), "WFP8AFP8_DYNAMIC",
    "WFP8AFP8DynamicPerChannelFakeQuantLinear", TRUE },
  { S (MXFP4, DUAL_SCALE, TRUE), S (MXFP4, DUAL_SCALE, TRUE), "W4A4_MXFP4_DUALSCALE",
    "W4A4MXDynamicDualScaleFakeQuantLinear", TRUE },
};

#undef S

/**
 * slim_qscheme_get_combos:
 * @n_combos: (out): number of rows
 *
 * Returns: (transfer none) (array length=n_combos): the table of legal
 *   act/weight combinations, supported ones first
 */
const SlimQComboInfo *
slim_qscheme_get_combos (gsize *n_combos)
{
  g_return_val_if_fail (n_combos != NULL, NULL);
  *n_combos = G_N_ELEMENTS (slim_combos);
  return slim_combos;
}

/**
 * slim_qscheme_lookup_combo:
 * @act: the activation scheme (SLIM_QSCHEME_ACT_FLOAT when `act` is omitted)
 * @weight: the weight scheme
 * @error: return location for a #GError
 *
 * Fails with %SLIM_CONFIG_ERROR_BAD_VALUE for an illegal pair (the message
 * names the pair and lists every legal one) and with
 * %SLIM_CONFIG_ERROR_UNSUPPORTED for a pair msModelSlim knows but slimflow
 * does not support yet (fp8 / MX).
 *
 * Returns: (transfer none) (nullable): the table row, %NULL on error
 */
const SlimQComboInfo *
slim_qscheme_lookup_combo (const SlimQScheme *act, const SlimQScheme *weight, GError **error)
{
  g_autoptr (GString) legal = NULL;
  g_autofree char *act_text = NULL;
  g_autofree char *weight_text = NULL;

  g_return_val_if_fail (act != NULL && weight != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  act_text = slim_qscheme_to_string (act);
  weight_text = slim_qscheme_to_string (weight);
  for (gsize k = 0; k < G_N_ELEMENTS (slim_combos); k++)
    {
      const SlimQComboInfo *c = &slim_combos[k];

      if (!slim_qscheme_equal (&c->act, act) || !slim_qscheme_equal (&c->weight, weight))
        continue;
      if (!c->supported)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                       "act %s with weight %s (%s) is not supported by slimflow yet", act_text,
                       weight_text, c->label);
          return NULL;
        }
      return c;
    }

  legal = g_string_new (NULL);
  for (gsize k = 0; k < G_N_ELEMENTS (slim_combos); k++)
    {
      const SlimQComboInfo *c = &slim_combos[k];
      g_autofree char *a = NULL;
      g_autofree char *w = NULL;

      if (!c->supported)
        continue;
      a = slim_qscheme_to_string (&c->act);
      w = slim_qscheme_to_string (&c->weight);
      g_string_append_printf (legal, "\n  act %s + weight %s -> %s", a, w, c->label);
    }
  g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
               "act %s with weight %s is not a legal combination; legal combinations:%s", act_text,
               weight_text, legal->str);
  return NULL;
}

/**
 * slim_qscheme_lookup_label:
 * @act: the activation scheme
 * @weight: the weight scheme
 * @error: return location for a #GError
 *
 * As slim_qscheme_lookup_combo(), returning the description label.
 *
 * Returns: (transfer none) (nullable): the label ("W8A8_DYNAMIC"), %NULL on
 *   error
 */
const char *
slim_qscheme_lookup_label (const SlimQScheme *act, const SlimQScheme *weight, GError **error)
{
  const SlimQComboInfo *c = slim_qscheme_lookup_combo (act, weight, error);

  return (c != NULL) ? c->label : NULL;
}

/* ---- model_quant_type ---------------------------------------------------- */

/* Low to high; W4A8_DYNAMIC is deliberately absent (spec 3.1). */
static const char *const slim_label_priority[] = {
  "FLOAT",
  "W16A16S",
  "W8A16",
  "W8A8_DYNAMIC",
  "W8A8_MIX",
  "W8A8",
  "WFP8AFP8_DYNAMIC",
  "W8A8_MXFP8",
  "W4A8_MXFP",
  "W4A4_DYNAMIC",
  "W4A4_MXFP4",
  "W4A4_MXFP4_DUALSCALE",
  "W4A4_MXFP4_SVD",
};

/**
 * slim_quant_label_priority:
 * @label: a description label
 *
 * Returns: the index of @label in the ascendv1 priority list (low to high),
 *   -1 when it is not in the list
 */
int
slim_quant_label_priority (const char *label)
{
  g_return_val_if_fail (label != NULL, -1);
  for (gsize k = 0; k < G_N_ELEMENTS (slim_label_priority); k++)
    if (strcmp (slim_label_priority[k], label) == 0)
      return (int)k;
  return -1;
}

/**
 * slim_quant_label_update:
 * @current: the model_quant_type so far (%SLIM_QUANT_LABEL_UNKNOWN at first)
 * @label: the label of the module just written
 *
 * AscendV1Saver.update_quant_type: a label outside the priority list is
 * ignored; otherwise it replaces @current when @current is outside the list
 * or has a lower priority.
 *
 * Returns: (transfer none): the new model_quant_type, @current or a static
 *   string from the priority list
 */
const char *
slim_quant_label_update (const char *current, const char *label)
{
  int p_label, p_current;

  g_return_val_if_fail (current != NULL && label != NULL, current);
  p_label = slim_quant_label_priority (label);
  if (p_label < 0)
    return current;
  p_current = slim_quant_label_priority (current);
  if (p_current < 0 || p_label > p_current)
    return slim_label_priority[p_label];
  return current;
}
