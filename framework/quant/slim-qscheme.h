/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qscheme.h: quantization schemes of linear_quant (modelslim-v1-spec.md
 * 2.1) as plain data: the enums of `qconfig.act` / `qconfig.weight` (GEnum
 * types whose nicks are the YAML words, e.g. "per_tensor"), the table of
 * registered quantizers (which (scheme, method) exist for each role), the
 * table of legal act/weight combinations with their description labels
 * (W8A8, W8A8_DYNAMIC, ...), and the `model_quant_type` priority of the
 * ascendv1 saver (spec 3.1).
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef enum
{
  SLIM_QDTYPE_FLOAT,
  SLIM_QDTYPE_INT8,
  SLIM_QDTYPE_INT4,
  SLIM_QDTYPE_FP8_E4M3,
  SLIM_QDTYPE_MXFP8, /* per_block only: slim-mx.h */
  SLIM_QDTYPE_MXFP4, /* per_block only: slim-mx.h */
} SlimQDtype;

typedef enum
{
  SLIM_QSCOPE_PER_TENSOR,
  SLIM_QSCOPE_PER_CHANNEL,
  SLIM_QSCOPE_PER_GROUP,
  SLIM_QSCOPE_PER_BLOCK,
  SLIM_QSCOPE_PER_TOKEN,
  SLIM_QSCOPE_PD_MIX,
  SLIM_QSCOPE_PER_HEAD,
  SLIM_QSCOPE_DUAL_SCALE,
} SlimQScope;

typedef enum
{
  SLIM_QMETHOD_NONE,
  SLIM_QMETHOD_MINMAX,
  SLIM_QMETHOD_HISTOGRAM,
  SLIM_QMETHOD_SSZ,
  SLIM_QMETHOD_GPTQ,
  SLIM_QMETHOD_AUTOROUND,
  SLIM_QMETHOD_IFMR,      /* KV cache only (dynamic_cache; AMCT ifmr_quantize) */
  SLIM_QMETHOD_HFMG,      /* KV cache only (dynamic_cache; AMCT hfmg_quantize) */
  SLIM_QMETHOD_HQQ,       /* weights only (linear_quant; QuantConfig w_method HQQ) */
  SLIM_QMETHOD_NF,        /* weights only (linear_quant; QuantConfig w_method NF: NF4 code book) */
  SLIM_QMETHOD_DUALSCALE, /* mxfp4 dual_scale act and weight (slim-mx-dual-scale.h) */
  SLIM_QMETHOD_CEIL_X,    /* mxfp4 per_block weights (slim-mx-weight-methods.h) */
  SLIM_QMETHOD_FOUROVERSIX, /* mxfp4 per_block weights */
  SLIM_QMETHOD_MSE_ROUND,   /* mxfp8 per_block weights */
} SlimQMethod;

/* `ext.aggregation_type` of the per-tensor activation observer. */
typedef enum
{
  SLIM_QAGGREGATION_MAX,
  SLIM_QAGGREGATION_MEAN,
} SlimQAggregation;

/* `ext.scale_dtype`: the dtype learned-rounding scales are cast to
 * (autoround weights; msModelSlim's float16 | float32 | bfloat16). */
typedef enum
{
  SLIM_QSCALE_DTYPE_FLOAT32,
  SLIM_QSCALE_DTYPE_FLOAT16,
  SLIM_QSCALE_DTYPE_BFLOAT16,
} SlimQScaleDType;

typedef enum
{
  SLIM_QROLE_ACT,
  SLIM_QROLE_WEIGHT,
} SlimQRole;

GType slim_qdtype_get_type (void);
#define SLIM_TYPE_QDTYPE (slim_qdtype_get_type ())
GType slim_qscope_get_type (void);
#define SLIM_TYPE_QSCOPE (slim_qscope_get_type ())
GType slim_qmethod_get_type (void);
#define SLIM_TYPE_QMETHOD (slim_qmethod_get_type ())
GType slim_qaggregation_get_type (void);
#define SLIM_TYPE_QAGGREGATION (slim_qaggregation_get_type ())
GType slim_qscale_dtype_get_type (void);
#define SLIM_TYPE_QSCALE_DTYPE (slim_qscale_dtype_get_type ())

/* The YAML nick of a value ("int8", "per_token", "minmax", "mean"). */
const char *slim_qdtype_get_nick (SlimQDtype dtype);
const char *slim_qscope_get_nick (SlimQScope scope);
const char *slim_qmethod_get_nick (SlimQMethod method);

typedef struct
{
  SlimQDtype dtype;
  SlimQScope scope;
  gboolean symmetric;
} SlimQScheme;

/* "int8 per_channel sym" */
char *slim_qscheme_to_string (const SlimQScheme *scheme);
gboolean slim_qscheme_equal (const SlimQScheme *a, const SlimQScheme *b);
/* Bits of an integer dtype (8 or 4), 0 for the others. */
guint slim_qdtype_get_bits (SlimQDtype dtype);

/* The `act` qconfig used when linear_quant's `act` is omitted:
 * {dtype: float, scope: per_tensor, symmetric: true, method: none}. */
#define SLIM_QSCHEME_ACT_FLOAT ((SlimQScheme){ SLIM_QDTYPE_FLOAT, SLIM_QSCOPE_PER_TENSOR, TRUE })

/* One registered quantizer (spec 2.1 "Registered quantizers"). */
typedef struct
{
  SlimQRole role;
  SlimQScheme scheme;
  SlimQMethod method;
  const char *ms_class;    /* msModelSlim class name, for messages */
  gboolean data_free;      /* needs no calibration data */
  gboolean implemented;    /* slimflow has the numerics today */
  gboolean slim_extension; /* not registered in msModelSlim (documented) */
} SlimQuantizerInfo;

const SlimQuantizerInfo *slim_qscheme_get_quantizers (gsize *n_quantizers);
const SlimQuantizerInfo *slim_qscheme_lookup_quantizer (SlimQRole role,
                                                        const SlimQScheme *scheme,
                                                        SlimQMethod method,
                                                        GError **error);

/* One legal act/weight combination (spec 2.1 "Registered IR combos"). */
typedef struct
{
  SlimQScheme act;
  SlimQScheme weight;
  const char *label;  /* description label, e.g. "W8A8_DYNAMIC" */
  const char *ms_ir;  /* msModelSlim IR class */
  gboolean supported; /* slimflow can compute and save it today */
} SlimQComboInfo;

const SlimQComboInfo *slim_qscheme_get_combos (gsize *n_combos);
const SlimQComboInfo *
slim_qscheme_lookup_combo (const SlimQScheme *act, const SlimQScheme *weight, GError **error);
const char *
slim_qscheme_lookup_label (const SlimQScheme *act, const SlimQScheme *weight, GError **error);

/* ascendv1 `model_quant_type`: index of label in the priority list
 * (low to high), -1 for labels outside it (W4A8_DYNAMIC, "Unknown"). */
#define SLIM_QUANT_LABEL_UNKNOWN "Unknown"
int slim_quant_label_priority (const char *label);
const char *slim_quant_label_update (const char *current, const char *label);

G_END_DECLS
