/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-qlinear.c: the deployed quantization record of one linear module
 * (msModelSlim's fake-quant IR module, e.g. W8A8StaticFakeQuantLinear) and
 * its attachment to a SlimLayer.
 *
 * The records of a layer live in a small set stored as qdata on the
 * SlimLayer object (so slim-layer.c needs no knowledge of quantization):
 * a hash by module name plus the order in which modules were first set.
 *
 * Activation fake quantization as deployed (the forward of msModelSlim's ir/ modules):
 *   static per_tensor (W8A8)     q = clamp(round(x / s + o)), x^ = (q - o) * s
 *                                with the calibrated input_scale s / input_offset o
 *   per_token (W8A8_DYNAMIC,     one (scale, offset) per token row from the
 *   W4A8_DYNAMIC, W4A4_DYNAMIC)  row's own min/max, symmetric
 *   pd_mix (W8A8_MIX)            the IR's default PREFILLING state: per-token
 *                                symmetric int8 as above (the static decode
 *                                parameters are only saved)
 *   fp8_e4m3 per_token           per token: scale = amax / 448, elements
 *   (WFP8AFP8_DYNAMIC)           rounded to E4M3 (slim-fp8.h)
 *   per_block (W8A8_MXFP8,       MX blocks of 32 along the token row, shared
 *   W4A8_MXFP, W4A4_MXFP4)       exponent from the block maximum (slim-mx.h):
 *                                the forward of msModelSlim's
 *                                W*MXDynamicPerBlockFakeQuantLinear
 *   dual_scale                   per token row: dual blocks of
 *   (W4A4_MXFP4_DUALSCALE)       act_dual_block_size scaled by amax / 6, MXFP4
 *                                inside, scaled back (slim-mx-dual-scale.h)
 *   float (W8A16, W4A16)         unchanged
 * With math INT8 (slim_qlinear_is_integer) the deployed forward of a linear
 * with int8 activations is the integer product of slim_qlinear_to_int_linear
 * instead: the same activation codes, exact int32 sums, then scaled.
 * ext.max_bound is not part of the deployed state (msModelSlim's IR does
 * not keep it either): deployed activations use the dtype's full range.
 */
#include "slim-qlinear.h"

#include "slim-error.h"
#include "slim-fp8.h"
#include "slim-mx.h"
#include "slim-mx-dual-scale.h"
#include "slim-pack.h"
#include "slim-qattention.h"
#include "slim-qparams.h"

#include <string.h>

G_DEFINE_BOXED_TYPE (SlimQLinear, slim_qlinear, slim_qlinear_copy, slim_qlinear_free)

/**
 * slim_qlinear_new:
 * @module: the linear's full module name ("model.layers.0.self_attn.q_proj")
 * @label: the description label ("W8A8")
 *
 * Returns: (transfer full): a record with float activations, no tensors
 *   and zero sizes; the caller fills the fields.
 */
SlimQLinear *
slim_qlinear_new (const char *module, const char *label)
{
  SlimQLinear *self;

  g_return_val_if_fail (module != NULL && label != NULL, NULL);

  self = g_new0 (SlimQLinear, 1);
  self->module = g_strdup (module);
  self->label = g_strdup (label);
  self->act = SLIM_QSCHEME_ACT_FLOAT;
  self->weight = SLIM_QSCHEME_ACT_FLOAT;
  self->input_scale = 1.0f;
  self->input_offset = 0.0f;
  self->math = SLIM_LINEAR_MATH_FLOAT;
  return self;
}

/**
 * slim_qlinear_copy:
 * @self: a record
 *
 * The tensors are shared (they are copy-on-write).
 *
 * Returns: (transfer full): a copy of @self
 */
SlimQLinear *
slim_qlinear_copy (const SlimQLinear *self)
{
  SlimQLinear *copy;

  g_return_val_if_fail (self != NULL, NULL);

  copy = g_new0 (SlimQLinear, 1);
  *copy = *self;
  copy->module = g_strdup (self->module);
  copy->label = g_strdup (self->label);
  copy->weight_q = self->weight_q != NULL ? slim_tensor_ref (self->weight_q) : NULL;
  copy->weight_scale = self->weight_scale != NULL ? slim_tensor_ref (self->weight_scale) : NULL;
  copy->weight_offset = self->weight_offset != NULL ? slim_tensor_ref (self->weight_offset) : NULL;
  copy->weight_dual_scale
      = self->weight_dual_scale != NULL ? slim_tensor_ref (self->weight_dual_scale) : NULL;
  return copy;
}

/**
 * slim_qlinear_free:
 * @self: (nullable): a record
 */
void
slim_qlinear_free (SlimQLinear *self)
{
  if (self == NULL)
    return;
  g_free (self->module);
  g_free (self->label);
  g_clear_pointer (&self->weight_q, slim_tensor_unref);
  g_clear_pointer (&self->weight_scale, slim_tensor_unref);
  g_clear_pointer (&self->weight_offset, slim_tensor_unref);
  g_clear_pointer (&self->weight_dual_scale, slim_tensor_unref);
  g_free (self);
}

/**
 * slim_qlinear_apply_act:
 * @self: a record
 * @x: (inout) (array): activations, (n_tokens, n_in) row-major
 * @n_tokens: rows of @x
 * @n_in: columns of @x (the linear's input size)
 *
 * Fake-quantizes @x in place as the deployed module does (see the file
 * comment); does nothing for float activations.
 */
void
slim_qlinear_apply_act (const SlimQLinear *self, float *x, gint64 n_tokens, gint64 n_in)
{
  SlimQParamsConfig cfg;

  g_return_if_fail (self != NULL);
  g_return_if_fail (n_tokens >= 0 && n_in >= 0);
  g_return_if_fail (x != NULL || n_tokens == 0 || n_in == 0);

  if (self->act.dtype == SLIM_QDTYPE_FLOAT || n_tokens == 0 || n_in == 0)
    return;
  switch (self->act.scope)
    {
    case SLIM_QSCOPE_PER_TENSOR:
      if (!slim_qparams_config_init (&cfg, self->act.dtype, self->act.symmetric, 0, NULL))
        return;
      slim_fake_quantize_rows (&cfg, x, n_tokens, n_in, &self->input_scale, &self->input_offset, 1,
                               x);
      break;
    case SLIM_QSCOPE_PER_TOKEN:
      if (self->act.dtype == SLIM_QDTYPE_FP8_E4M3)
        {
          /* WFP8AFP8_DYNAMIC: amax / 448 per token, E4M3 elements */
          slim_fp8_fake_quantize_rows_dynamic (x, n_tokens, n_in, x);
          break;
        }
      if (!slim_qparams_config_init (&cfg, self->act.dtype, self->act.symmetric, 0, NULL))
        return;
      slim_fake_quantize_rows_dynamic (&cfg, x, n_tokens, n_in, x);
      break;
    case SLIM_QSCOPE_PD_MIX:
      /* PREFILLING state of W8A8PDMixFakeQuantLinear: dynamic, symmetric. */
      if (!slim_qparams_config_init (&cfg, self->act.dtype, TRUE, 0, NULL))
        return;
      slim_fake_quantize_rows_dynamic (&cfg, x, n_tokens, n_in, x);
      break;
    case SLIM_QSCOPE_PER_BLOCK:
      /* MX dynamic: blocks of 32 along each token row */
      slim_mx_fake_quantize_rows (self->act.dtype == SLIM_QDTYPE_MXFP8 ? SLIM_MX_FP8_E4M3
                                                                       : SLIM_MX_FP4_E2M1,
                                  x, n_tokens, n_in, x);
      break;
    case SLIM_QSCOPE_DUAL_SCALE:
      /* W4A4_MXFP4_DUALSCALE: dual blocks along the token row, MXFP4
       * inside (W4A4MXDynamicDualScaleFakeQuantLinear.forward) */
      g_return_if_fail (self->act_dual_block_size > 0);
      slim_mx_dual_fake_quantize_rows (x, n_tokens, n_in, self->act_dual_block_size, x);
      break;
    case SLIM_QSCOPE_PER_CHANNEL:
    case SLIM_QSCOPE_PER_GROUP:
    case SLIM_QSCOPE_PER_HEAD:
    default:
      /* no activation scheme of a legal combination uses these */
      g_return_if_reached ();
    }
}

gboolean
slim_qlinear_is_integer (const SlimQLinear *self)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return self->math != SLIM_LINEAR_MATH_FLOAT && self->act.dtype == SLIM_QDTYPE_INT8
         && (self->act.scope == SLIM_QSCOPE_PER_TENSOR || self->act.scope == SLIM_QSCOPE_PER_TOKEN
             || self->act.scope == SLIM_QSCOPE_PD_MIX)
         && self->weight_q != NULL && self->weight_scale != NULL;
}

/* W8A8 static: the saver's deq_scale and quant_bias (slim-ascend-writer.c). */
static SlimIntLinear *
slim_qlinear_to_int_linear_static (const SlimQLinear *self, const float *bias, GError **error)
{
  g_autofree float *deq = NULL;         /* (n_out) */
  g_autofree gint32 *quant_bias = NULL; /* (n_out) */
  const float *wo = self->weight_offset != NULL ? slim_tensor_get_data (self->weight_offset) : NULL;

  if (slim_tensor_get_n_elements (self->weight_scale) != self->n_out)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "a static integer product needs one weight scale per output channel");
      return NULL;
    }
  for (gint64 n = 0; wo != NULL && n < self->n_out; n++)
    if (wo[n] != 0.0f)
      {
        g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                     "weight_offset[%" G_GINT64_FORMAT
                     "] = %g: the static integer product (deq_scale, quant_bias) needs a "
                     "symmetric weight",
                     n, (double)wo[n]);
        return NULL;
      }
  deq = g_new (float, self->n_out);
  quant_bias = g_new (gint32, self->n_out);
  slim_deq_scale_compute (self->input_scale, slim_tensor_get_data (self->weight_scale), self->n_out,
                          deq);
  if (!slim_quant_bias_compute (bias, deq, self->input_offset,
                                slim_tensor_get_data (self->weight_q), self->n_out, self->n_in,
                                quant_bias, error))
    return NULL;
  return slim_int_linear_new_static (slim_tensor_get_data (self->weight_q), self->n_out, self->n_in,
                                     self->input_scale, self->input_offset, deq, quant_bias, error);
}

/**
 * slim_qlinear_to_int_linear:
 * @self: a record with int8 activations and its integer weight
 * @bias: (nullable) (array): the linear's float bias, (n_out)
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the integer linear (see the header)
 */
SlimIntLinear *
slim_qlinear_to_int_linear (const SlimQLinear *self, const float *bias, GError **error)
{
  SlimIntLinear *lin;

  g_return_val_if_fail (self != NULL, NULL);

  if (self->act.dtype != SLIM_QDTYPE_INT8 || self->weight_q == NULL || self->weight_scale == NULL
      || slim_tensor_get_dtype (self->weight_q) != SLIM_DTYPE_I8
      || slim_tensor_get_n_elements (self->weight_q) != self->n_out * self->n_in)
    {
      g_set_error (
          error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
          "%s (%s): no integer product: it needs int8 activations and an int8 (%" G_GINT64_FORMAT
          ", %" G_GINT64_FORMAT ") weight",
          self->module, self->label, self->n_out, self->n_in);
      return NULL;
    }
  if (self->act.scope == SLIM_QSCOPE_PER_TENSOR)
    lin = slim_qlinear_to_int_linear_static (self, bias, error);
  else
    lin = slim_int_linear_new_per_token (
        slim_tensor_get_data (self->weight_q), self->n_out, self->n_in,
        slim_tensor_get_data (self->weight_scale),
        self->weight_offset != NULL ? slim_tensor_get_data (self->weight_offset) : NULL,
        self->group_size, bias, error);
  if (lin == NULL)
    g_prefix_error (error, "%s (%s): ", self->module, self->label);
  return lin;
}

/* ---- records attached to a layer ------------------------------------- */

typedef struct
{
  GHashTable *by_module; /* module (owned by the record) -> SlimQLinear (owned) */
  GPtrArray *order;      /* SlimQLinear (not owned), in the order first set */
  /* module (owned) -> SlimIntLinear (owned): integer records' products,
   * built at their first forward, dropped when the record is replaced */
  GHashTable *int_linears;
} SlimQLinearSet;

static void
slim_qlinear_set_free (SlimQLinearSet *set)
{
  g_hash_table_unref (set->int_linears);
  g_ptr_array_unref (set->order);
  g_hash_table_unref (set->by_module);
  g_free (set);
}

static GQuark
slim_qlinear_set_quark (void)
{
  return g_quark_from_static_string ("slim-qlinear-set");
}

static SlimQLinearSet *
slim_qlinear_set_get (SlimLayer *layer, gboolean create)
{
  SlimQLinearSet *set = g_object_get_qdata (G_OBJECT (layer), slim_qlinear_set_quark ());

  if (set == NULL && create)
    {
      set = g_new0 (SlimQLinearSet, 1);
      set->by_module = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                              (GDestroyNotify)slim_qlinear_free);
      set->order = g_ptr_array_new ();
      set->int_linears = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                (GDestroyNotify)slim_int_linear_free);
      g_object_set_qdata_full (G_OBJECT (layer), slim_qlinear_set_quark (), set,
                               (GDestroyNotify)slim_qlinear_set_free);
    }
  return set;
}

/**
 * slim_layer_set_qlinear:
 * @layer: a layer
 * @qlinear: (transfer full): the record of one of the layer's linears
 *
 * Attaches @qlinear to @layer.  A record for a module that already has one
 * replaces it and keeps its position in slim_layer_list_qlinears().
 */
void
slim_layer_set_qlinear (SlimLayer *layer, SlimQLinear *qlinear)
{
  SlimQLinearSet *set;
  SlimQLinear *old;

  g_return_if_fail (SLIM_IS_LAYER (layer));
  g_return_if_fail (qlinear != NULL && qlinear->module != NULL);

  set = slim_qlinear_set_get (layer, TRUE);
  g_hash_table_remove (set->int_linears, qlinear->module);
  old = g_hash_table_lookup (set->by_module, qlinear->module);
  if (old != NULL)
    {
      guint index = 0;

      g_ptr_array_find (set->order, old, &index);
      set->order->pdata[index] = qlinear;
      /* frees old and its key (the key is old->module) */
      g_hash_table_remove (set->by_module, old->module);
    }
  else
    g_ptr_array_add (set->order, qlinear);
  g_hash_table_insert (set->by_module, qlinear->module, qlinear);
}

/**
 * slim_layer_get_qlinear:
 * @layer: a layer
 * @module: a full module name
 *
 * Returns: (transfer none) (nullable): the record of @module, or %NULL
 */
const SlimQLinear *
slim_layer_get_qlinear (SlimLayer *layer, const char *module)
{
  SlimQLinearSet *set;

  g_return_val_if_fail (SLIM_IS_LAYER (layer), NULL);
  g_return_val_if_fail (module != NULL, NULL);

  set = slim_qlinear_set_get (layer, FALSE);
  return set != NULL ? g_hash_table_lookup (set->by_module, module) : NULL;
}

/**
 * slim_layer_list_qlinears:
 * @layer: a layer
 *
 * Returns: (transfer container) (element-type SlimQLinear): the records of
 *   @layer in the order their modules were first set (possibly empty)
 */
GPtrArray *
slim_layer_list_qlinears (SlimLayer *layer)
{
  SlimQLinearSet *set;
  GPtrArray *list;

  g_return_val_if_fail (SLIM_IS_LAYER (layer), NULL);

  set = slim_qlinear_set_get (layer, FALSE);
  list = g_ptr_array_new ();
  if (set != NULL)
    for (guint i = 0; i < set->order->len; i++)
      g_ptr_array_add (list, g_ptr_array_index (set->order, i));
  return list;
}

static gboolean
slim_qlinear_deployed_linear_input (const char *module,
                                    float *x, /* (n_tokens, n_in) row-major */
                                    gint64 n_tokens,
                                    gint64 n_in,
                                    gpointer user_data,
                                    GError **error)
{
  SlimLayer *layer = user_data;
  const SlimQLinear *qlinear = slim_layer_get_qlinear (layer, module);

  if (qlinear == NULL)
    return TRUE;
  if (qlinear->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: the deployed %s record expects %" G_GINT64_FORMAT
                   " input features, the forward passed %" G_GINT64_FORMAT,
                   module, qlinear->label, qlinear->n_in, n_in);
      return FALSE;
    }
  /* an integer record quantizes its input itself (the linear_forward hook) */
  if (!slim_qlinear_is_integer (qlinear))
    slim_qlinear_apply_act (qlinear, x, n_tokens, n_in);
  return TRUE;
}

static gboolean
slim_qlinear_deployed_linear_forward (const char *module,
                                      const float *x, /* (n_tokens, n_in) row-major */
                                      gint64 n_tokens,
                                      gint64 n_in,
                                      gint64 n_out,
                                      float *y, /* (n_tokens, n_out) row-major */
                                      gboolean *done,
                                      gpointer user_data,
                                      GError **error)
{
  SlimLayer *layer = user_data;
  const SlimQLinear *qlinear = slim_layer_get_qlinear (layer, module);
  SlimQLinearSet *set;
  SlimIntLinear *lin;

  if (qlinear == NULL || !slim_qlinear_is_integer (qlinear))
    return TRUE;
  if (qlinear->n_in != n_in || qlinear->n_out != n_out)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "%s: the deployed %s record is (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                   "), the forward needs (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                   module, qlinear->label, qlinear->n_out, qlinear->n_in, n_out, n_in);
      return FALSE;
    }
  set = slim_qlinear_set_get (layer, FALSE);
  lin = g_hash_table_lookup (set->int_linears, module);
  if (lin == NULL)
    {
      g_autofree char *bias_name = g_strconcat (module, ".bias", NULL);
      SlimTensor *bias = slim_layer_get_tensor (layer, bias_name);

      if (bias != NULL
          && (slim_tensor_get_dtype (bias) != SLIM_DTYPE_F32
              || slim_tensor_get_n_elements (bias) != n_out))
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s: the bias is not float32 of %" G_GINT64_FORMAT " values", bias_name,
                       n_out);
          return FALSE;
        }
      lin = slim_qlinear_to_int_linear (qlinear, bias != NULL ? slim_tensor_get_data (bias) : NULL,
                                        error);
      if (lin == NULL)
        return FALSE;
      g_hash_table_insert (set->int_linears, g_strdup (module), lin);
    }
  if (qlinear->math == SLIM_LINEAR_MATH_INT8_REF)
    slim_int_linear_forward_ref (lin, x, n_tokens, y);
  else
    slim_int_linear_forward (lin, x, n_tokens, y);
  *done = TRUE;
  return TRUE;
}

/**
 * slim_qlinear_get_deployed_hooks:
 * @layer: a layer (not referenced: it must outlive the forward)
 * @hooks: (out caller-allocates): filled with a linear_input hook applying
 *   every SlimQLinear record of @layer and a qkv_states hook applying every
 *   SlimQAttention record (slim-qattention.h) at forward time
 *
 * The hook looks records up when it runs, so records attached after this
 * call are applied too.
 */
void
slim_qlinear_get_deployed_hooks (SlimLayer *layer, SlimForwardHooks *hooks)
{
  g_return_if_fail (SLIM_IS_LAYER (layer));
  g_return_if_fail (hooks != NULL);

  memset (hooks, 0, sizeof *hooks);
  hooks->linear_input = slim_qlinear_deployed_linear_input;
  hooks->linear_forward = slim_qlinear_deployed_linear_forward;
  hooks->qkv_states = slim_qattention_deployed_qkv_states;
  hooks->user_data = layer;
}
