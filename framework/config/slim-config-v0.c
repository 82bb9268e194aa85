/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-v0.c: modelslim_v0 -> modelslim_v1 (slim-config-v0.h,
 * docs/modelslim-v0.md).  The v0 fields are read with msModelSlim's own
 * defaults and checks (QuantConfig: llm_ptq_tools/quant_config/
 * quant_config_classes/config_utils.py check_and_generate_config_param;
 * AntiOutlierConfig: llm_ptq/anti_outlier/config.py), then mapped.  A
 * field that only matters for a method slimflow does not have is accepted
 * at its default value (it changes nothing) and rejected otherwise.
 */
#include "slim-config-v0.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "slim-error.h"

#define V0_DEFAULT_CALIB_DATASET "teacher_qualification.jsonl"

typedef struct
{
  GPtrArray *errors;
  GPtrArray *notes; /* (nullable) */
} V0;

static void v0_error (V0 *v0, const SlimConfigNode *node, gint code, const char *format, ...)
    G_GNUC_PRINTF (4, 5);

static void
v0_error (V0 *v0, const SlimConfigNode *node, gint code, const char *format, ...)
{
  g_autofree char *text = NULL;
  GError *error = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  slim_config_error_at (&error, node, code, "%s", text);
  g_ptr_array_add (v0->errors, error);
}

static void v0_note (V0 *v0, const char *format, ...) G_GNUC_PRINTF (2, 3);

static void
v0_note (V0 *v0, const char *format, ...)
{
  va_list args;

  if (v0->notes == NULL)
    return;
  va_start (args, format);
  g_ptr_array_add (v0->notes, g_strdup_vprintf (format, args));
  va_end (args);
}

static char *
describe (const SlimConfigNode *node)
{
  if (slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SCALAR
      && !slim_config_node_is_null (node))
    return g_strdup_printf ("'%s'", slim_config_node_get_scalar (node));
  return g_strdup_printf ("%s%s", slim_config_node_is_null (node) ? "" : "a ",
                          slim_config_node_describe_kind (node));
}

static gboolean
is_plain_scalar (const SlimConfigNode *node)
{
  return slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SCALAR
         && slim_config_node_get_scalar_style (node) == SLIM_CONFIG_SCALAR_PLAIN
         && !slim_config_node_is_null (node);
}

/* ---- typed fields ------------------------------------------------------- */

typedef enum
{
  V0_BOOL,
  V0_INT,
  V0_FLOAT,
  V0_STRING,
  V0_NAMES,   /* list of strings */
  V0_OPT_INT, /* int or null (dev_id) */
  V0_MAP,     /* mapping or null (flex_config, mix_cfg) */
} V0Type;

typedef struct
{
  const char *key;
  V0Type type;
  gsize offset; /* of the value in the fields struct */
} V0Field;

typedef union
{
  gboolean b;
  gint64 i;
  double f;
  const char *s;
  const SlimConfigNode *n; /* V0_NAMES, V0_MAP: the node (NULL when absent or null) */
} V0Value;

/* Reads @value as @type; FALSE (error appended) when it is not one. */
static gboolean
read_value (V0 *v0, const SlimConfigNode *value, V0Type type, const char *path, V0Value *out)
{
  const char *text = slim_config_node_get_scalar (value);
  g_autofree char *got = describe (value);

  switch (type)
    {
    case V0_BOOL:
      if (is_plain_scalar (value))
        {
          if (strcmp (text, "true") == 0 || strcmp (text, "True") == 0
              || strcmp (text, "TRUE") == 0)
            return out->b = TRUE, TRUE;
          if (strcmp (text, "false") == 0 || strcmp (text, "False") == 0
              || strcmp (text, "FALSE") == 0)
            return out->b = FALSE, TRUE;
        }
      v0_error (v0, value, SLIM_CONFIG_ERROR_BAD_VALUE, "%s must be True or False, got %s", path,
                got);
      return FALSE;
    case V0_OPT_INT:
      if (slim_config_node_is_null (value))
        return out->i = -1, TRUE;
      G_GNUC_FALLTHROUGH;
    case V0_INT:
      if (is_plain_scalar (value)
          && g_ascii_string_to_signed (text, 10, G_MININT32, G_MAXINT32, &out->i, NULL))
        return TRUE;
      v0_error (v0, value, SLIM_CONFIG_ERROR_BAD_VALUE, "%s must be an integer, got %s", path, got);
      return FALSE;
    case V0_FLOAT:
      if (is_plain_scalar (value))
        {
          char *end = NULL;
          double d = g_ascii_strtod (text, &end);

          if (end != text && *end == '\0' && isfinite (d))
            return out->f = d, TRUE;
        }
      v0_error (v0, value, SLIM_CONFIG_ERROR_BAD_VALUE, "%s must be a number, got %s", path, got);
      return FALSE;
    case V0_STRING:
      if (slim_config_node_get_kind (value) == SLIM_CONFIG_NODE_SCALAR
          && !slim_config_node_is_null (value))
        return out->s = text, TRUE;
      v0_error (v0, value, SLIM_CONFIG_ERROR_BAD_VALUE, "%s must be a string, got %s", path, got);
      return FALSE;
    case V0_NAMES:
      if (slim_config_node_is_null (value))
        return out->n = NULL, TRUE;
      if (slim_config_node_get_kind (value) == SLIM_CONFIG_NODE_SEQUENCE)
        {
          gboolean ok = TRUE;

          for (guint i = 0; i < slim_config_node_get_n_items (value); i++)
            {
              const SlimConfigNode *item = slim_config_node_get_item (value, i);
              if (slim_config_node_get_kind (item) != SLIM_CONFIG_NODE_SCALAR
                  || slim_config_node_is_null (item) || *slim_config_node_get_scalar (item) == '\0')
                {
                  g_autofree char *item_got = describe (item);
                  v0_error (v0, item, SLIM_CONFIG_ERROR_BAD_VALUE,
                            "%s[%u] must be a module name, got %s", path, i, item_got);
                  ok = FALSE;
                }
            }
          out->n = value;
          return ok;
        }
      v0_error (v0, value, SLIM_CONFIG_ERROR_BAD_VALUE, "%s must be a list of module names, got %s",
                path, got);
      return FALSE;
    case V0_MAP:
      if (slim_config_node_is_null (value))
        return out->n = NULL, TRUE;
      if (slim_config_node_get_kind (value) == SLIM_CONFIG_NODE_MAPPING)
        return out->n = value, TRUE;
      v0_error (v0, value, SLIM_CONFIG_ERROR_BAD_VALUE, "%s must be a mapping, got %s", path, got);
      return FALSE;
    }
  g_assert_not_reached ();
}

/* Reads the keys of @map (a mapping, or NULL for none) into @fields_struct
 * by @fields; node_of[i] is the value node of fields[i] or NULL.  Unknown
 * keys are errors listing the valid ones. */
static void
read_fields (V0 *v0,
             const SlimConfigNode *map,
             const char *where,
             const V0Field *fields,
             gsize n_fields,
             gpointer fields_struct,
             const SlimConfigNode **node_of)
{
  if (map == NULL)
    return;
  for (guint k = 0; k < slim_config_node_get_n_items (map); k++)
    {
      const SlimConfigNode *key = slim_config_node_get_key (map, k);
      const SlimConfigNode *value = slim_config_node_get_item (map, k);
      const char *name = slim_config_node_get_scalar (key);
      gsize f;

      for (f = 0; f < n_fields && strcmp (fields[f].key, name) != 0; f++)
        ;
      if (f == n_fields)
        {
          g_autoptr (GString) valid = g_string_new (NULL);

          for (gsize i = 0; i < n_fields; i++)
            g_string_append_printf (valid, "%s%s", i > 0 ? ", " : "", fields[i].key);
          v0_error (v0, key, SLIM_CONFIG_ERROR_UNKNOWN_KEY, "%s: unknown key '%s' (valid keys: %s)",
                    where, name, valid->str);
          continue;
        }
      {
        g_autofree char *path = g_strdup_printf ("%s.%s", where, name);
        V0Value v;

        if (!read_value (v0, value, fields[f].type, path, &v))
          continue;
        node_of[f] = value;
        switch (fields[f].type)
          {
          case V0_BOOL:
            G_STRUCT_MEMBER (gboolean, fields_struct, fields[f].offset) = v.b;
            break;
          case V0_INT:
          case V0_OPT_INT:
            G_STRUCT_MEMBER (gint64, fields_struct, fields[f].offset) = v.i;
            break;
          case V0_FLOAT:
            G_STRUCT_MEMBER (double, fields_struct, fields[f].offset) = v.f;
            break;
          case V0_STRING:
            G_STRUCT_MEMBER (const char *, fields_struct, fields[f].offset) = v.s;
            break;
          case V0_NAMES:
          case V0_MAP:
            G_STRUCT_MEMBER (const SlimConfigNode *, fields_struct, fields[f].offset) = v.n;
            break;
          }
      }
    }
}

/* The node to blame for field @i: its value, or @fallback when absent. */
#define AT(node_of, i, fallback) ((node_of)[i] != NULL ? (node_of)[i] : (fallback))

/* ---- calib_cfg: QuantConfig ---------------------------------------------- */

typedef struct
{
  gint64 w_bit, a_bit, act_method, group_size, fa_amp, dev_id;
  double pr, fraction, sigma_factor, percdamp;
  gboolean w_sym, mm_tensor, co_sparse, nonuniform, is_lowbit, do_smooth, use_sigma;
  gboolean disable_last_linear, use_kvcache_quant, is_dynamic, open_outlier, pdmix;
  gboolean use_fa_quant;
  const char *w_method, *dev_type;
  const SlimConfigNode *disable_names;
} V0Calib;

enum
{
  C_W_BIT,
  C_A_BIT,
  C_DISABLE_NAMES,
  C_DEV_TYPE,
  C_DEV_ID,
  C_ACT_METHOD,
  C_PR,
  C_W_SYM,
  C_MM_TENSOR,
  C_W_METHOD,
  C_CO_SPARSE,
  C_FRACTION,
  C_NONUNIFORM,
  C_IS_LOWBIT,
  C_DO_SMOOTH,
  C_USE_SIGMA,
  C_SIGMA_FACTOR,
  C_DISABLE_LAST_LINEAR,
  C_USE_KVCACHE_QUANT,
  C_IS_DYNAMIC,
  C_OPEN_OUTLIER,
  C_GROUP_SIZE,
  C_PERCDAMP,
  C_PDMIX,
  C_USE_FA_QUANT,
  C_FA_AMP,
  C_N_FIELDS
};

#define CF(key, type, member) [C_##key] = { #member, type, offsetof (V0Calib, member) }
static const V0Field calib_fields[C_N_FIELDS] = {
  CF (W_BIT, V0_INT, w_bit),
  CF (A_BIT, V0_INT, a_bit),
  CF (DISABLE_NAMES, V0_NAMES, disable_names),
  CF (DEV_TYPE, V0_STRING, dev_type),
  CF (DEV_ID, V0_OPT_INT, dev_id),
  CF (ACT_METHOD, V0_INT, act_method),
  CF (PR, V0_FLOAT, pr),
  CF (W_SYM, V0_BOOL, w_sym),
  CF (MM_TENSOR, V0_BOOL, mm_tensor),
  CF (W_METHOD, V0_STRING, w_method),
  CF (CO_SPARSE, V0_BOOL, co_sparse),
  CF (FRACTION, V0_FLOAT, fraction),
  CF (NONUNIFORM, V0_BOOL, nonuniform),
  CF (IS_LOWBIT, V0_BOOL, is_lowbit),
  CF (DO_SMOOTH, V0_BOOL, do_smooth),
  CF (USE_SIGMA, V0_BOOL, use_sigma),
  CF (SIGMA_FACTOR, V0_FLOAT, sigma_factor),
  CF (DISABLE_LAST_LINEAR, V0_BOOL, disable_last_linear),
  CF (USE_KVCACHE_QUANT, V0_BOOL, use_kvcache_quant),
  CF (IS_DYNAMIC, V0_BOOL, is_dynamic),
  CF (OPEN_OUTLIER, V0_BOOL, open_outlier),
  CF (GROUP_SIZE, V0_INT, group_size),
  CF (PERCDAMP, V0_FLOAT, percdamp),
  CF (PDMIX, V0_BOOL, pdmix),
  CF (USE_FA_QUANT, V0_BOOL, use_fa_quant),
  CF (FA_AMP, V0_INT, fa_amp),
};
#undef CF

/* QuantConfig's defaults (seed 000 / base_config.py). */
static void
calib_defaults (V0Calib *c)
{
  *c = (V0Calib){
    .w_bit = 8,
    .a_bit = 8,
    .act_method = 1,
    .group_size = 64,
    .fa_amp = 0,
    .dev_id = -1,
    .pr = 1.0,
    .fraction = 0.01,
    .sigma_factor = 3.0,
    .percdamp = 0.01,
    .w_sym = TRUE,
    .mm_tensor = TRUE,
    .disable_last_linear = TRUE,
    .open_outlier = TRUE,
    .w_method = "MinMax",
    .dev_type = "cpu",
  };
}

/* What calib_cfg resolves to. */
typedef enum
{
  V0_WMETHOD_MINMAX,
  V0_WMETHOD_GPTQ,
  V0_WMETHOD_HQQ,
  V0_WMETHOD_NF,
} V0WeightMethod;

typedef struct
{
  gboolean ok;
  gboolean per_group;
  gboolean act_static;  /* per_tensor int8 */
  gboolean act_dynamic; /* per_token */
  V0WeightMethod w_method;
} V0Scheme;

static gboolean
is_device (const char *name)
{
  return strcmp (name, "cpu") == 0 || strcmp (name, "npu") == 0 || strcmp (name, "gpu") == 0;
}

static V0Scheme
check_calib (V0 *v0, const V0Calib *c, const SlimConfigNode **at, const SlimConfigNode *cfg_node)
{
  const guint n_before = v0->errors->len;
  V0Scheme s = { 0 };
#define AT_(i) AT (at, i, cfg_node)
#define REJECT(i, ...) v0_error (v0, AT_ (i), SLIM_CONFIG_ERROR_UNSUPPORTED, __VA_ARGS__)
#define BAD(i, ...) v0_error (v0, AT_ (i), SLIM_CONFIG_ERROR_BAD_VALUE, __VA_ARGS__)

  /* msModelSlim's own range checks. */
  if (c->w_bit != 4 && c->w_bit != 8)
    BAD (C_W_BIT, "spec.calib_cfg.w_bit must be 4 or 8, got %" G_GINT64_FORMAT, c->w_bit);
  if (c->a_bit != 4 && c->a_bit != 8 && c->a_bit != 16)
    BAD (C_A_BIT, "spec.calib_cfg.a_bit must be 4, 8 or 16, got %" G_GINT64_FORMAT, c->a_bit);
  if (c->act_method < 1 || c->act_method > 3)
    BAD (C_ACT_METHOD, "spec.calib_cfg.act_method must be 1, 2 or 3, got %" G_GINT64_FORMAT,
         c->act_method);
  if (!is_device (c->dev_type))
    BAD (C_DEV_TYPE, "spec.calib_cfg.dev_type must be one of cpu, npu, gpu; got '%s'", c->dev_type);
  if (c->pr < 0 || c->pr > 1)
    BAD (C_PR, "spec.calib_cfg.pr must be in [0, 1], got %g", c->pr);
  if (c->fraction < 0.01 || c->fraction > 0.1)
    BAD (C_FRACTION, "spec.calib_cfg.fraction must be in [0.01, 0.1], got %g", c->fraction);
  if (c->sigma_factor < 3.0 || c->sigma_factor > 4.0)
    BAD (C_SIGMA_FACTOR, "spec.calib_cfg.sigma_factor must be in [3, 4], got %g", c->sigma_factor);
  if (c->percdamp < 0 || c->percdamp > 1)
    BAD (C_PERCDAMP, "spec.calib_cfg.percdamp must be in [0, 1], got %g", c->percdamp);
  if (c->fa_amp < 0)
    BAD (C_FA_AMP, "spec.calib_cfg.fa_amp must be >= 0, got %" G_GINT64_FORMAT, c->fa_amp);
  if (c->a_bit == 8 && !c->w_sym)
    BAD (C_W_SYM, "spec.calib_cfg.w_sym must be True when a_bit is 8 (msModelSlim's rule)");
  if (c->use_kvcache_quant && c->use_fa_quant)
    BAD (C_USE_FA_QUANT,
         "spec.calib_cfg.use_fa_quant and use_kvcache_quant cannot both be True (msModelSlim's "
         "rule)");
  if (c->is_dynamic && c->a_bit == 16)
    BAD (C_IS_DYNAMIC, "spec.calib_cfg.is_dynamic needs a_bit 4 or 8, got 16");

  /* The weight method. */
  if (strcmp (c->w_method, "MinMax") == 0)
    s.w_method = V0_WMETHOD_MINMAX;
  else if (strcmp (c->w_method, "GPTQ") == 0)
    s.w_method = V0_WMETHOD_GPTQ;
  else if (strcmp (c->w_method, "HQQ") == 0)
    {
      s.w_method = V0_WMETHOD_HQQ;
      if (c->a_bit != 16)
        REJECT (C_W_METHOD, "spec.calib_cfg.w_method: 'HQQ' is weight-only in slimflow (its "
                            "zero point is a float, which the W8A8/W4A8 savers cannot store): set "
                            "a_bit: 16");
      else if (c->w_sym)
        REJECT (C_W_SYM, "spec.calib_cfg.w_sym: True: HQQ solves for an asymmetric zero point; "
                         "set w_sym: False");
    }
  else if (strcmp (c->w_method, "NF") == 0)
    {
      /* config_utils.check_nf4_config; mm_tensor and w_sym are ignored
       * (NF4 is per block of 64 absmax, WeightQuantConfig's block_size,
       * which QuantConfig's constructor does not take) */
      s.w_method = V0_WMETHOD_NF;
      if (c->w_bit != 4)
        BAD (C_W_BIT, "spec.calib_cfg.w_bit must be 4 when w_method is 'NF' (msModelSlim's rule)");
      if (c->a_bit != 16)
        BAD (C_A_BIT, "spec.calib_cfg.a_bit must be 16 when w_method is 'NF' (msModelSlim's rule)");
      if (c->is_lowbit)
        BAD (C_IS_LOWBIT, "spec.calib_cfg.is_lowbit must be False when w_method is 'NF' "
                          "(msModelSlim's rule)");
      if (c->use_fa_quant)
        BAD (C_USE_FA_QUANT, "spec.calib_cfg.use_fa_quant: NF4 and FA cannot be quantized at the "
                             "same time (msModelSlim's rule)");
      if (c->use_kvcache_quant)
        BAD (C_USE_KVCACHE_QUANT, "spec.calib_cfg.use_kvcache_quant: NF4 and kvcache cannot be "
                                  "quantized at the same time (msModelSlim's rule)");
    }
  else
    BAD (C_W_METHOD, "spec.calib_cfg.w_method must be one of MinMax, GPTQ, HQQ, NF; got '%s'",
         c->w_method);

  /* Sparse quantization and lowbit, which slimflow does not have. */
  s.per_group
      = c->is_lowbit && !c->open_outlier && (c->a_bit == 16 || (c->w_bit == 4 && c->a_bit == 8));
  if (c->co_sparse && !c->is_lowbit)
    REJECT (C_CO_SPARSE, "spec.calib_cfg.co_sparse: True: sparse quantization (W8A8S) is not in "
                         "slimflow");
  if (c->is_lowbit && !s.per_group)
    {
      if (c->is_lowbit && c->open_outlier && at[C_OPEN_OUTLIER] == NULL && c->a_bit == 16)
        REJECT (C_IS_LOWBIT,
                "spec.calib_cfg.is_lowbit: True: lowbit quantization (automatic precision "
                "tuning, weight outlier split) is not in slimflow; per-group weights are "
                "is_lowbit: True with open_outlier: False");
      else
        REJECT (C_IS_LOWBIT,
                "spec.calib_cfg.is_lowbit: True: lowbit quantization (lowbit sparse "
                "quantization, automatic precision tuning) is not in slimflow; only its per-group "
                "form (is_lowbit: True, open_outlier: False, a_bit 16, or w4a8 dynamic) is "
                "translated");
    }
  if (c->nonuniform)
    REJECT (C_NONUNIFORM, "spec.calib_cfg.nonuniform: True: non-uniform sparse quantization is "
                          "not in slimflow");
  if (c->do_smooth)
    REJECT (C_DO_SMOOTH, "spec.calib_cfg.do_smooth: True: lowbit activation smoothing is not in "
                         "slimflow (use anti_cfg.anti_method m1 or m4)");
  /* use_sigma: msModelSlim's k-sigma outlier test of lowbit quantization;
   * translated as k-sigma clipping of minmax weights (ext.sigma_factor) */
  if (c->use_sigma && c->pdmix)
    REJECT (C_USE_SIGMA, "spec.calib_cfg.use_sigma: True with pdmix: the pdmix processor's "
                         "weight qconfig is fixed (no sigma clipping)");
  else if (c->use_sigma && s.w_method != V0_WMETHOD_MINMAX)
    REJECT (C_USE_SIGMA, "spec.calib_cfg.use_sigma: True: sigma clipping is translated for "
                         "w_method MinMax only (slimflow's ext.sigma_factor)");
  if (!c->use_sigma && at[C_SIGMA_FACTOR] != NULL && c->sigma_factor != 3.0)
    REJECT (C_SIGMA_FACTOR, "spec.calib_cfg.sigma_factor: %g: only read with use_sigma: True",
            c->sigma_factor);
  if (at[C_FRACTION] != NULL && c->fraction != 0.01)
    REJECT (C_FRACTION,
            "spec.calib_cfg.fraction: %g: only used by sparse/lowbit quantization, "
            "which slimflow does not have",
            c->fraction);
  if (c->pr != 1.0)
    REJECT (C_PR,
            "spec.calib_cfg.pr: %g: random quantization selection (pr < 1) is not in "
            "slimflow (only 1.0)",
            c->pr);
  /* disable_last_linear False: lm_head quantized too (linear_quant's
   * quantize_lm_head), weight-only data-free schemes only: no calibration
   * forward runs through the head */
  if (!c->disable_last_linear && (c->a_bit != 16 || s.w_method == V0_WMETHOD_GPTQ || c->pdmix))
    REJECT (C_DISABLE_LAST_LINEAR,
            "spec.calib_cfg.disable_last_linear: False: slimflow quantizes the last linear "
            "(lm_head) only with weight-only data-free weights (a_bit 16, w_method MinMax, HQQ "
            "or NF): no calibration forward runs through the head");
  if (c->use_fa_quant && c->fa_amp > 0)
    REJECT (C_FA_AMP,
            "spec.calib_cfg.fa_amp: %" G_GINT64_FORMAT ": automatic precision fallback "
            "of FA3 layers is not in slimflow (only 0)",
            c->fa_amp);

  /* The act/weight pair (config_utils.py's rules, then what slimflow has). */
  if (s.per_group
      && (c->group_size != 32 && c->group_size != 64 && c->group_size != 128
          && c->group_size != 256))
    BAD (C_GROUP_SIZE,
         "spec.calib_cfg.group_size must be 32, 64, 128 or 256 for per-group weights, got "
         "%" G_GINT64_FORMAT,
         c->group_size);
  if (!s.per_group && c->is_lowbit && s.w_method == V0_WMETHOD_GPTQ)
    BAD (C_W_METHOD, "spec.calib_cfg.w_method: with is_lowbit: True, GPTQ needs per-group weights "
                     "(open_outlier: False) (msModelSlim's rule)");
  if (c->w_bit == 4 && c->a_bit == 8 && !c->co_sparse && !(c->is_lowbit && !c->is_dynamic)
      && (!c->is_dynamic || !s.per_group))
    BAD (C_A_BIT, "spec.calib_cfg: w_bit 4 with a_bit 8 is W4A8_DYNAMIC, which needs "
                  "is_dynamic: True and per-group weights (is_lowbit: True, open_outlier: False) "
                  "(msModelSlim's rule)");
  if (c->w_bit == 4 && c->a_bit == 4
      && (!c->is_dynamic || s.w_method != V0_WMETHOD_MINMAX || !c->w_sym))
    BAD (C_A_BIT, "spec.calib_cfg: W4A4 needs is_dynamic: True, w_method: MinMax and w_sym: True "
                  "(msModelSlim's rule)");
  if (c->a_bit == 4 && c->w_bit != 4)
    BAD (C_A_BIT, "spec.calib_cfg: a_bit 4 needs w_bit 4 (W4A4_DYNAMIC)");
  if (c->pdmix && !(c->w_bit == 8 && c->a_bit == 8 && !c->is_dynamic))
    BAD (C_PDMIX, "spec.calib_cfg.pdmix: True needs static W8A8 (w_bit 8, a_bit 8, is_dynamic "
                  "False) (msModelSlim's rule)");
  if (c->mm_tensor && !s.per_group && s.w_method != V0_WMETHOD_NF)
    REJECT (C_MM_TENSOR,
            "spec.calib_cfg.mm_tensor: %s: per-tensor weights are not in "
            "slimflow; set mm_tensor: False (per-channel)",
            at[C_MM_TENSOR] != NULL ? "True" : "True (QuantConfig's default)");

  s.act_dynamic = c->a_bit != 16 && c->is_dynamic;
  s.act_static = c->a_bit == 8 && !c->is_dynamic;
  if (s.act_static && c->act_method == 3)
    REJECT (C_ACT_METHOD, "spec.calib_cfg.act_method: 3: automatic mixed activation quantization "
                          "is not in slimflow (1 minmax, 2 histogram)");
  if (c->pdmix && c->act_method == 2)
    REJECT (C_ACT_METHOD, "spec.calib_cfg.act_method: 2 with pdmix: slimflow's pdmix observes "
                          "activations with minmax only (act_method 1)");
#undef AT_
#undef REJECT
#undef BAD
  s.ok = v0->errors->len == n_before;
  return s;
}

/* ---- anti_cfg: AntiOutlierConfig ------------------------------------------ */

typedef struct
{
  gint64 w_bit, a_bit, dev_id;
  const char *anti_method, *dev_type;
  gboolean w_sym;
  const SlimConfigNode *disable_anti_names, *flex_config;
} V0Anti;

enum
{
  A_W_BIT,
  A_A_BIT,
  A_ANTI_METHOD,
  A_DEV_TYPE,
  A_DEV_ID,
  A_W_SYM,
  A_DISABLE_ANTI_NAMES,
  A_FLEX_CONFIG,
  A_N_FIELDS
};

#define AF(key, type, member) [A_##key] = { #member, type, offsetof (V0Anti, member) }
static const V0Field anti_fields[A_N_FIELDS] = {
  AF (W_BIT, V0_INT, w_bit),
  AF (A_BIT, V0_INT, a_bit),
  AF (ANTI_METHOD, V0_STRING, anti_method),
  AF (DEV_TYPE, V0_STRING, dev_type),
  AF (DEV_ID, V0_OPT_INT, dev_id),
  AF (W_SYM, V0_BOOL, w_sym),
  AF (DISABLE_ANTI_NAMES, V0_NAMES, disable_anti_names),
  AF (FLEX_CONFIG, V0_MAP, flex_config),
};
#undef AF

typedef enum
{
  V0_ANTI_NONE,
  V0_ANTI_SMOOTH_QUANT, /* m1 */
  V0_ANTI_ITER_SMOOTH,  /* m4 */
} V0AntiKind;

static V0AntiKind
check_anti (V0 *v0, const V0Anti *a, const SlimConfigNode **at, const SlimConfigNode *anti_node)
{
  const guint n_before = v0->errors->len;
  const char *m = a->anti_method;
  V0AntiKind kind = V0_ANTI_NONE;
  static const char *const rejected[][2] = {
    { "m2", "outlier suppression (os_ln_fcs)" },
    { "m3", "AWQ" },
    { "m5", "CBQ" },
    { "m6", "flex smooth" },
  };
#define AT_(i) AT (at, i, anti_node)

  if (strcmp (m, "m1") == 0)
    kind = V0_ANTI_SMOOTH_QUANT;
  else if (strcmp (m, "m4") == 0)
    kind = V0_ANTI_ITER_SMOOTH;
  else
    {
      gsize i;

      for (i = 0; i < G_N_ELEMENTS (rejected) && strcmp (m, rejected[i][0]) != 0; i++)
        ;
      if (i < G_N_ELEMENTS (rejected))
        v0_error (v0, AT_ (A_ANTI_METHOD), SLIM_CONFIG_ERROR_UNSUPPORTED,
                  "spec.anti_cfg.anti_method: '%s'%s: %s is not in slimflow (translated: m1 "
                  "smooth_quant, m4 iter_smooth)",
                  m, at[A_ANTI_METHOD] == NULL ? " (AntiOutlierConfig's default)" : "",
                  rejected[i][1]);
      else
        v0_error (v0, AT_ (A_ANTI_METHOD), SLIM_CONFIG_ERROR_BAD_VALUE,
                  "spec.anti_cfg.anti_method must be one of m1, m2, m3, m4, m5, m6; got '%s'", m);
    }
  if (a->w_bit != 4 && a->w_bit != 8)
    v0_error (v0, AT_ (A_W_BIT), SLIM_CONFIG_ERROR_BAD_VALUE,
              "spec.anti_cfg.w_bit must be 4 or 8, got %" G_GINT64_FORMAT, a->w_bit);
  if (a->a_bit != 8)
    v0_error (v0, AT_ (A_A_BIT), SLIM_CONFIG_ERROR_BAD_VALUE,
              "spec.anti_cfg.a_bit must be 8 (16 only with m3), got %" G_GINT64_FORMAT, a->a_bit);
  if (!a->w_sym)
    v0_error (v0, AT_ (A_W_SYM), SLIM_CONFIG_ERROR_BAD_VALUE,
              "spec.anti_cfg.w_sym must be True (False only with m3)");
  if (!is_device (a->dev_type))
    v0_error (v0, AT_ (A_DEV_TYPE), SLIM_CONFIG_ERROR_BAD_VALUE,
              "spec.anti_cfg.dev_type must be one of cpu, npu, gpu; got '%s'", a->dev_type);
  if (a->disable_anti_names != NULL && slim_config_node_get_n_items (a->disable_anti_names) > 0)
    v0_error (v0, a->disable_anti_names, SLIM_CONFIG_ERROR_UNSUPPORTED,
              "spec.anti_cfg.disable_anti_names: skipping smoothing for named linears is not "
              "translated (it acts on m3, m4 and m6 subgraphs whose key modules differ from "
              "slimflow's include/exclude)");
  if (a->flex_config != NULL && slim_config_node_get_n_items (a->flex_config) > 0)
    v0_error (v0, a->flex_config, SLIM_CONFIG_ERROR_UNSUPPORTED,
              "spec.anti_cfg.flex_config: only read by anti_method m6 (flex smooth), which "
              "slimflow does not have");
#undef AT_
  return v0->errors->len == n_before ? kind : V0_ANTI_NONE;
}

/* ---- building the v1 tree ------------------------------------------------- */

static SlimConfigNode *
plain (const SlimConfigNode *at, const char *text)
{
  return slim_config_node_new_scalar (at, SLIM_CONFIG_SCALAR_PLAIN, text);
}

static SlimConfigNode *
quoted (const SlimConfigNode *at, const char *text)
{
  return slim_config_node_new_scalar (at, SLIM_CONFIG_SCALAR_QUOTED, text);
}

/* mapping[key] = value (transfer full), the key located at the value. */
static void
put (SlimConfigNode *mapping, const char *key, SlimConfigNode *value)
{
  slim_config_node_insert (mapping, plain (value, key), value);
}

static void
put_int (SlimConfigNode *mapping, const SlimConfigNode *at, const char *key, gint64 value)
{
  g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT, value);
  put (mapping, key, plain (at, text));
}

static void
put_double (SlimConfigNode *mapping, const SlimConfigNode *at, const char *key, double value)
{
  char text[G_ASCII_DTOSTR_BUF_SIZE];
  put (mapping, key, plain (at, g_ascii_dtostr (text, sizeof text, value)));
}

static SlimConfigNode *
entry (const SlimConfigNode *at, const char *type)
{
  SlimConfigNode *node = slim_config_node_new_mapping (at);
  put (node, "type", quoted (at, type));
  return node;
}

static SlimConfigNode *
build_qconfig (const V0Calib *c,
               const V0Scheme *s,
               const SlimConfigNode **at,
               const SlimConfigNode *cfg)
{
  SlimConfigNode *qconfig = slim_config_node_new_mapping (cfg);
  SlimConfigNode *weight = slim_config_node_new_mapping (AT (at, C_W_BIT, cfg));
  gboolean nf = s->w_method == V0_WMETHOD_NF;
  gboolean want_ext = s->per_group || s->w_method == V0_WMETHOD_GPTQ || nf || c->use_sigma;

  if (s->act_static || s->act_dynamic)
    {
      const SlimConfigNode *act_at = AT (at, C_A_BIT, cfg);
      SlimConfigNode *act = slim_config_node_new_mapping (act_at);

      put (act, "scope",
           quoted (AT (at, C_IS_DYNAMIC, act_at), s->act_dynamic ? "per_token" : "per_tensor"));
      put (act, "dtype", quoted (act_at, c->a_bit == 4 ? "int4" : "int8"));
      /* v0 static activations are asymmetric (a_sym False); per-token
       * ones symmetric, as msModelSlim's W8A8_DYNAMIC / W4A8_DYNAMIC. */
      put (act, "symmetric", plain (act_at, s->act_dynamic ? "true" : "false"));
      put (act, "method",
           quoted (AT (at, C_ACT_METHOD, act_at),
                   s->act_static && c->act_method == 2 ? "histogram" : "minmax"));
      put (qconfig, "act", act);
    }
  put (weight, "scope",
       quoted (nf             ? AT (at, C_W_METHOD, cfg)
               : s->per_group ? AT (at, C_OPEN_OUTLIER, cfg)
                              : AT (at, C_MM_TENSOR, cfg),
               s->per_group || nf ? "per_group" : "per_channel"));
  put (weight, "dtype", quoted (AT (at, C_W_BIT, cfg), c->w_bit == 4 ? "int4" : "int8"));
  put (weight, "symmetric",
       plain (AT (at, nf ? C_W_METHOD : C_W_SYM, cfg), c->w_sym || nf ? "true" : "false"));
  put (weight, "method",
       quoted (AT (at, C_W_METHOD, cfg), s->w_method == V0_WMETHOD_GPTQ  ? "gptq"
                                         : s->w_method == V0_WMETHOD_HQQ ? "hqq"
                                         : nf                            ? "nf"
                                                                         : "minmax"));
  if (want_ext)
    {
      SlimConfigNode *ext = slim_config_node_new_mapping (cfg);

      if (nf)
        put_int (ext, AT (at, C_W_METHOD, cfg), "group_size", 64); /* block_size */
      else if (s->per_group)
        put_int (ext, AT (at, C_GROUP_SIZE, cfg), "group_size", c->group_size);
      if (c->use_sigma)
        put_double (ext, AT (at, C_USE_SIGMA, cfg), "sigma_factor", c->sigma_factor);
      if (s->w_method == V0_WMETHOD_GPTQ)
        put_double (ext, AT (at, C_PERCDAMP, cfg), "percdamp", c->percdamp);
      put (weight, "ext", ext);
    }
  put (qconfig, "weight", weight);
  return qconfig;
}

static SlimConfigNode *
build_quant_entry (V0 *v0,
                   const V0Calib *c,
                   const V0Scheme *s,
                   const SlimConfigNode **at,
                   const SlimConfigNode *cfg)
{
  SlimConfigNode *node;
  SlimConfigNode *include = slim_config_node_new_sequence (cfg);

  if (c->pdmix)
    {
      node = entry (at[C_PDMIX], "pdmix");
      v0_note (v0, "calib_cfg.pdmix: True -> pdmix (W8A8_MIX: static and per-token "
                   "activation parameters)");
    }
  else
    {
      node = entry (cfg, "linear_quant");
      put (node, "qconfig", build_qconfig (c, s, at, cfg));
      if (!c->disable_last_linear)
        {
          put (node, "quantize_lm_head", plain (at[C_DISABLE_LAST_LINEAR], "true"));
          v0_note (v0, "calib_cfg.disable_last_linear: False -> quantize_lm_head: true (lm_head "
                       "quantized with the same weights; a tied lm_head is saved untied)");
        }
    }
  slim_config_node_append (include, quoted (cfg, "*"));
  put (node, "include", include);
  if (c->disable_names != NULL && slim_config_node_get_n_items (c->disable_names) > 0)
    {
      SlimConfigNode *exclude = slim_config_node_new_sequence (c->disable_names);

      /* disable_names are exact module names; slimflow's patterns treat
       * `*?[{` as wildcards, which module names do not contain. */
      for (guint i = 0; i < slim_config_node_get_n_items (c->disable_names); i++)
        {
          const SlimConfigNode *name = slim_config_node_get_item (c->disable_names, i);
          slim_config_node_append (exclude, quoted (name, slim_config_node_get_scalar (name)));
        }
      put (node, "exclude", exclude);
    }
  if (c->use_sigma)
    v0_note (v0,
             "calib_cfg.use_sigma: True -> qconfig.weight.ext.sigma_factor %g: each "
             "channel's minmax range is clipped to mean +- %g std (msModelSlim applies this "
             "k-sigma test only to lowbit outlier selection, where it does not clip)",
             c->sigma_factor, c->sigma_factor);
  if (s->w_method == V0_WMETHOD_NF)
    v0_note (v0, "calib_cfg.w_method: NF -> method nf (NF4, absmax per block of 64, label "
                 "NF4; the bias stays float)");
  if (c->is_lowbit && s->per_group)
    v0_note (v0,
             "calib_cfg.is_lowbit: True with open_outlier: False -> per_group weights "
             "(group_size %" G_GINT64_FORMAT "); lowbit's other refinements are not "
             "reproduced",
             c->group_size);
  return node;
}

/* ---- the spec ----------------------------------------------------------- */

typedef struct
{
  const SlimConfigNode *anti_cfg, *anti_params, *calib_cfg, *calib_params, *calib_save_params;
  gint64 batch_size;
  const char *anti_dataset, *calib_dataset;
} V0Spec;

enum
{
  S_ANTI_CFG,
  S_ANTI_PARAMS,
  S_CALIB_CFG,
  S_CALIB_PARAMS,
  S_CALIB_SAVE_PARAMS,
  S_BATCH_SIZE,
  S_ANTI_DATASET,
  S_CALIB_DATASET,
  S_N_FIELDS
};

#define SF(key, type, member) [S_##key] = { #member, type, offsetof (V0Spec, member) }
static const V0Field spec_fields[S_N_FIELDS] = {
  SF (ANTI_CFG, V0_MAP, anti_cfg),
  SF (ANTI_PARAMS, V0_MAP, anti_params),
  SF (CALIB_CFG, V0_MAP, calib_cfg),
  SF (CALIB_PARAMS, V0_MAP, calib_params),
  SF (CALIB_SAVE_PARAMS, V0_MAP, calib_save_params),
  SF (BATCH_SIZE, V0_INT, batch_size),
  SF (ANTI_DATASET, V0_STRING, anti_dataset),
  SF (CALIB_DATASET, V0_STRING, calib_dataset),
};
#undef SF

/* calib_params: Calibrator's keyword arguments.  Only disable_level L0
 * (no automatic fallback) is translated. */
static void
check_calib_params (V0 *v0, const SlimConfigNode *params)
{
  for (guint k = 0; params != NULL && k < slim_config_node_get_n_items (params); k++)
    {
      const SlimConfigNode *key = slim_config_node_get_key (params, k);
      const SlimConfigNode *value = slim_config_node_get_item (params, k);
      const char *name = slim_config_node_get_scalar (key);

      if (strcmp (name, "disable_level") == 0)
        {
          V0Value v;

          if (!read_value (v0, value, V0_STRING, "spec.calib_params.disable_level", &v))
            continue;
          if (strcmp (v.s, "L0") != 0)
            v0_error (v0, value, SLIM_CONFIG_ERROR_UNSUPPORTED,
                      "spec.calib_params.disable_level: '%s': automatic fallback of the most "
                      "sensitive layers is not in slimflow (only L0; name the layers in "
                      "calib_cfg.disable_names)",
                      v.s);
        }
      else if (strcmp (name, "mix_cfg") == 0)
        v0_error (v0, key, SLIM_CONFIG_ERROR_UNSUPPORTED,
                  "spec.calib_params.mix_cfg: per-pattern mixed schemes are not translated; "
                  "write a modelslim_v1 config with one linear_quant per scheme "
                  "(include/exclude)");
      else
        v0_error (v0, key, SLIM_CONFIG_ERROR_UNSUPPORTED,
                  "spec.calib_params.%s: Calibrator argument slimflow does not translate "
                  "(translated: disable_level: L0)",
                  name);
    }
}

static gint64
check_save_params (V0 *v0, const SlimConfigNode *params, const SlimConfigNode **part_at)
{
  gint64 part = 0;

  for (guint k = 0; params != NULL && k < slim_config_node_get_n_items (params); k++)
    {
      const SlimConfigNode *key = slim_config_node_get_key (params, k);
      const SlimConfigNode *value = slim_config_node_get_item (params, k);
      const char *name = slim_config_node_get_scalar (key);
      V0Value v;

      if (strcmp (name, "part_file_size") != 0)
        {
          v0_error (v0, key, SLIM_CONFIG_ERROR_UNSUPPORTED,
                    "spec.calib_save_params.%s: Calibrator.save argument slimflow does not "
                    "translate (translated: part_file_size; the format is always ascendV1)",
                    name);
          continue;
        }
      if (read_value (v0, value, V0_INT, "spec.calib_save_params.part_file_size", &v))
        {
          part = v.i;
          *part_at = value;
        }
    }
  return part;
}

SlimConfigNode *
slim_config_v0_translate (SlimConfigNode *root, GPtrArray *notes, GPtrArray *errors)
{
  V0 v0 = { errors, notes };
  const guint n_before = errors->len;
  const SlimConfigNode *spec_node = slim_config_node_lookup (root, "spec");
  const SlimConfigNode *spec_at[S_N_FIELDS] = { 0 };
  const SlimConfigNode *calib_at[C_N_FIELDS] = { 0 };
  const SlimConfigNode *anti_at[A_N_FIELDS] = { 0 };
  const SlimConfigNode *part_at = NULL;
  const SlimConfigNode *cfg;
  V0Spec spec = { .batch_size = 4 };
  V0Calib calib;
  V0Anti anti = {
    .w_bit = 8, .a_bit = 8, .dev_id = -1, .anti_method = "m2", .dev_type = "cpu", .w_sym = TRUE
  };
  V0AntiKind anti_kind = V0_ANTI_NONE;
  V0Scheme scheme;
  gint64 part_file_size;
  const char *dataset;
  SlimConfigNode *out, *out_spec, *process, *save, *saver;

  g_return_val_if_fail (root != NULL, NULL);
  g_return_val_if_fail (errors != NULL, NULL);

  if (spec_node == NULL)
    {
      v0_error (&v0, root, SLIM_CONFIG_ERROR_MISSING_KEY, "missing required key 'spec'");
      return NULL;
    }
  if (slim_config_node_get_kind (spec_node) != SLIM_CONFIG_NODE_MAPPING)
    {
      g_autofree char *got = describe (spec_node);
      v0_error (&v0, spec_node, SLIM_CONFIG_ERROR_BAD_VALUE, "'spec' must be a mapping, got %s",
                got);
      return NULL;
    }
  read_fields (&v0, spec_node, "spec", spec_fields, S_N_FIELDS, &spec, spec_at);

  /* calib_cfg (QuantConfig). */
  cfg = spec.calib_cfg != NULL ? spec.calib_cfg : spec_node;
  calib_defaults (&calib);
  read_fields (&v0, spec.calib_cfg, "spec.calib_cfg", calib_fields, C_N_FIELDS, &calib, calib_at);
  scheme = check_calib (&v0, &calib, calib_at, cfg);

  /* anti_cfg (AntiOutlierConfig). */
  if (spec.anti_cfg != NULL)
    {
      read_fields (&v0, spec.anti_cfg, "spec.anti_cfg", anti_fields, A_N_FIELDS, &anti, anti_at);
      anti_kind = check_anti (&v0, &anti, anti_at, spec.anti_cfg);
    }
  for (guint k = 0; spec.anti_params != NULL && k < slim_config_node_get_n_items (spec.anti_params);
       k++)
    v0_error (&v0, slim_config_node_get_key (spec.anti_params, k), SLIM_CONFIG_ERROR_UNSUPPORTED,
              "spec.anti_params.%s: AntiOutlier argument slimflow does not translate",
              slim_config_node_get_scalar (slim_config_node_get_key (spec.anti_params, k)));

  check_calib_params (&v0, spec.calib_params);
  part_file_size = check_save_params (&v0, spec.calib_save_params, &part_at);
  if (part_at != NULL && part_file_size <= 0)
    v0_error (&v0, part_at, SLIM_CONFIG_ERROR_BAD_VALUE,
              "spec.calib_save_params.part_file_size must be > 0, got %" G_GINT64_FORMAT,
              part_file_size);
  if (spec_at[S_BATCH_SIZE] != NULL && spec.batch_size < 1)
    v0_error (&v0, spec_at[S_BATCH_SIZE], SLIM_CONFIG_ERROR_BAD_VALUE,
              "spec.batch_size must be >= 1, got %" G_GINT64_FORMAT, spec.batch_size);

  dataset = spec.calib_dataset != NULL ? spec.calib_dataset : V0_DEFAULT_CALIB_DATASET;
  if (spec.anti_dataset != NULL && spec.anti_cfg != NULL
      && strcmp (spec.anti_dataset, dataset) != 0)
    v0_error (&v0, spec_at[S_ANTI_DATASET], SLIM_CONFIG_ERROR_UNSUPPORTED,
              "spec.anti_dataset: '%s': a separate anti-outlier dataset is not translated "
              "(slimflow smooths and calibrates on one dataset, here '%s')",
              spec.anti_dataset, dataset);

  if (errors->len > n_before)
    return NULL;

  /* The v1 document. */
  process = slim_config_node_new_sequence (cfg);
  if (anti_kind == V0_ANTI_SMOOTH_QUANT)
    {
      SlimConfigNode *smooth = entry (AT (anti_at, A_ANTI_METHOD, spec.anti_cfg), "smooth_quant");

      /* AntiOutlierConfig fixes alpha 0.5; m1 smooths norm-linear pairs
       * without shift (ch_align False). */
      put_double (smooth, AT (anti_at, A_ANTI_METHOD, spec.anti_cfg), "alpha", 0.5);
      slim_config_node_append (process, smooth);
      v0_note (&v0, "anti_cfg.anti_method: m1 -> smooth_quant (alpha 0.5, norm-linear)");
    }
  else if (anti_kind == V0_ANTI_ITER_SMOOTH)
    {
      slim_config_node_append (process,
                               entry (AT (anti_at, A_ANTI_METHOD, spec.anti_cfg), "iter_smooth"));
      v0_note (&v0, "anti_cfg.anti_method: m4 -> iter_smooth with its v1 defaults (msModelSlim "
                    "names it m4's counterpart; v0's m4 is compiled code whose parameters "
                    "cannot be read)");
    }
  slim_config_node_append (process, build_quant_entry (&v0, &calib, &scheme, calib_at, cfg));
  if (calib.use_kvcache_quant)
    {
      const SlimConfigNode *kv_at = calib_at[C_USE_KVCACHE_QUANT];
      SlimConfigNode *kv = entry (kv_at, "dynamic_cache");
      SlimConfigNode *qconfig = slim_config_node_new_mapping (kv_at);
      SlimConfigNode *include = slim_config_node_new_sequence (kv_at);

      /* kv_quant()'s default kv_sym True; a v0 YAML cannot change it. */
      put (qconfig, "scope", quoted (kv_at, "per_channel"));
      put (qconfig, "dtype", quoted (kv_at, "int8"));
      put (qconfig, "symmetric", plain (kv_at, "true"));
      put (qconfig, "method", quoted (kv_at, "minmax"));
      put (kv, "qconfig", qconfig);
      slim_config_node_append (include, quoted (kv_at, "*"));
      put (kv, "include", include);
      slim_config_node_append (process, kv);
    }
  if (calib.use_fa_quant)
    slim_config_node_append (process, entry (calib_at[C_USE_FA_QUANT], "fa3_quant"));

  save = slim_config_node_new_sequence (spec_node);
  saver = entry (part_at != NULL ? part_at : spec_node, "ascendv1_saver");
  if (part_at != NULL)
    put_int (saver, part_at, "part_file_size", part_file_size);
  slim_config_node_append (save, saver);

  out_spec = slim_config_node_new_mapping (spec_node);
  put (out_spec, "process", process);
  put (out_spec, "save", save);
  put (out_spec, "dataset",
       quoted (spec_at[S_CALIB_DATASET] != NULL ? spec_at[S_CALIB_DATASET] : spec_node, dataset));
  if (spec.calib_dataset == NULL)
    v0_note (&v0, "spec.calib_dataset absent -> v0's default " V0_DEFAULT_CALIB_DATASET);

  out = slim_config_node_new_mapping (root);
  put (out, "apiversion", quoted (slim_config_node_lookup (root, "apiversion"), "modelslim_v1"));
  put (out, "spec", out_spec);
  return out;
}
