/* SPDX-License-Identifier: Apache-2.0
 *
 * float-sparse.c: msModelSlim's `float_sparse` processor (label W16A16S;
 * modelslim-v1-spec.md 2.14; msModelSlim processor/sparse/float_sparse.py
 * and admm.py): ADMM pruning of the float weights of the selected linears,
 * with precision protection, for Atlas 300I Duo's weight compression.
 *
 *   type: float_sparse
 *   sparse_ratio: 0.3     0..1: share of each weight matrix set to zero
 *   include: [patterns]   default ["*"]
 *   exclude: [patterns]   default [], wins over include
 *
 * Per decoder layer, with msModelSlim's scheduling:
 *   preprocess   for every selected linear (not already deployed by an
 *                earlier processor): an empty Hessian H (n_in x n_in) and
 *                row scaler, allocated here and freed at postprocess, so
 *                they live only while the layer is resident
 *   forward      (the linear_input hook, float weights: msModelSlim runs the
 *                layer's forward with its hooks before pruning any of its
 *                linears) H += xᵀx and the scaler per call (slim-admm.h)
 *   postprocess  per linear in execution order: ADMM pruning with
 *                sparse_ratio, precision protection in the weight's model
 *                dtype, the layer's weight replaced by the result and a
 *                SlimQLinear record with label W16A16S attached (the savers
 *                write the weight and bias in the model dtype)
 *   next layer   refreshes_outputs: the scheduler forwards the layer once
 *                more with the pruned weights and that output feeds the
 *                next layer, as msModelSlim's postprocess does
 *                (_run_forward_if_need) (slim-schedule.h)
 *
 * Where slimflow differs from msModelSlim, deliberately:
 *   - A selected linear that no calibration token reached (an expert no
 *     token was routed to, a run without dataset) is an error naming it;
 *     msModelSlim prunes it from an all-zero Hessian and keeps every weight
 *     at full precision (every keep metric is 0).
 *   - No minimum calibration length is enforced.  msModelSlim's docs ask
 *     for >= 2048 tokens per sample "else the matrix inversion fails", but
 *     the matrix inverted is D⁻¹HD⁻¹ + (1 + rho0) I, positive definite
 *     whatever the token count; what can fail here is reported as it
 *     happens: activations whose xᵀx overflows float32, a failed Cholesky
 *     inverse, a result that is not finite or leaves the float16 range, each a
 *     GError naming the module, never NaN weights.
 *   - The inverse is LAPACK's Cholesky inverse (spotrf/spotri) of the
 *     upper triangle; msModelSlim calls torch.inverse (LU).  Ties of the
 *     pruning mask go to the lower index; torch.topk leaves them open.
 *   - Only decoder layers are visited (as every SlimLinearProcessor).
 * Unmatched include/exclude patterns are warned about after the last
 * layer, as msModelSlim does.
 */
#include "slim-plugin.h"

#include <string.h>

#define SLIM_TYPE_FLOAT_SPARSE_PROCESSOR (slim_float_sparse_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimFloatSparseProcessor,
                      slim_float_sparse_processor,
                      SLIM,
                      FLOAT_SPARSE_PROCESSOR,
                      SlimLinearProcessor)

#define SLIM_FLOAT_SPARSE_LABEL "W16A16S"

/* One selected linear between preprocess and postprocess. */
typedef struct
{
  SlimLayer *layer; /* not referenced: the layer being processed */
  char *module;
  gint64 n_out;
  gint64 n_in;
  SlimAdmmStats stats;
} SlimFloatSparsePending;

struct _SlimFloatSparseProcessor
{
  SlimLinearProcessor parent_instance;

  double sparse_ratio;

  GHashTable *pending;      /* module (owned by the entry) -> SlimFloatSparsePending */
  GPtrArray *pending_order; /* SlimFloatSparsePending, owned, in execution order */
};

/* include and exclude belong to SlimLinearProcessor. */
/* clang-format off */
static const SlimPropertyDecl slim_float_sparse_properties[] = {
  SLIM_PROPERTY_DOUBLE (
      SlimFloatSparseProcessor, sparse_ratio, "sparse-ratio", "Sparse ratio",
      "Share of each selected weight matrix set to zero (one budget per matrix).",
      0.0, 1.0, 0.3),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimFloatSparseProcessor,
                     slim_float_sparse_processor,
                     SLIM_TYPE_LINEAR_PROCESSOR)

static void
slim_float_sparse_pending_free (SlimFloatSparsePending *pending)
{
  slim_admm_stats_clear (&pending->stats);
  g_free (pending->module);
  g_free (pending);
}

/* ---- processor hooks ---------------------------------------------------- */

static gboolean
slim_float_sparse_processor_process_linear (SlimLinearProcessor *processor,
                                            SlimLayer *layer,
                                            const char *module,
                                            GError **error)
{
  SlimFloatSparseProcessor *self = SLIM_FLOAT_SPARSE_PROCESSOR (processor);
  g_autofree char *weight_name = g_strconcat (module, ".weight", NULL);
  SlimTensor *weight = slim_layer_require_tensor (layer, weight_name, error);
  SlimFloatSparsePending *pending;

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
  pending = g_new0 (SlimFloatSparsePending, 1);
  pending->layer = layer;
  pending->module = g_strdup (module);
  pending->n_out = slim_tensor_get_dim (weight, 0);
  pending->n_in = slim_tensor_get_dim (weight, 1);
  if (!slim_admm_stats_init (&pending->stats, pending->n_in, error))
    {
      g_prefix_error (error, "float_sparse: %s: ", module);
      slim_float_sparse_pending_free (pending);
      return FALSE;
    }
  g_hash_table_insert (self->pending, pending->module, pending);
  g_ptr_array_add (self->pending_order, pending);
  return TRUE;
}

static gboolean
slim_float_sparse_linear_input (const char *module,
                                float *x, /* (n_tokens, n_in) row-major */
                                gint64 n_tokens,
                                gint64 n_in,
                                gpointer user_data,
                                GError **error)
{
  SlimFloatSparseProcessor *self = user_data;
  SlimFloatSparsePending *pending = g_hash_table_lookup (self->pending, module);

  if (pending == NULL || n_tokens == 0)
    return TRUE;
  if (pending->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "float_sparse: %s: input has %" G_GINT64_FORMAT
                   " features, the weight %" G_GINT64_FORMAT,
                   module, n_in, pending->n_in);
      return FALSE;
    }
  if (!slim_admm_stats_add_batch (&pending->stats, x, n_tokens, error))
    {
      g_prefix_error (error, "float_sparse: %s: ", module);
      return FALSE;
    }
  return TRUE;
}

static void
slim_float_sparse_processor_get_forward_hooks (SlimProcessor *processor,
                                               SlimLayer *layer,
                                               SlimForwardHooks *hooks)
{
  SlimFloatSparseProcessor *self = SLIM_FLOAT_SPARSE_PROCESSOR (processor);

  if (self->pending_order->len == 0)
    return;
  hooks->linear_input = slim_float_sparse_linear_input;
  hooks->user_data = self;
}

/* Prunes one linear and attaches its record. */
static gboolean
slim_float_sparse_finish_linear (SlimFloatSparseProcessor *self,
                                 SlimFloatSparsePending *pending,
                                 GError **error)
{
  SlimLayer *layer = pending->layer;
  g_autofree char *weight_name = g_strconcat (pending->module, ".weight", NULL);
  SlimTensor *weight = slim_layer_require_tensor (layer, weight_name, error);
  g_autoptr (SlimTensor) pruned = NULL; /* (n_out, n_in) float32 */
  SlimDType dtype;
  SlimQLinear *record;
  float *data;

  if (weight == NULL)
    return FALSE;
  if (pending->stats.n_samples == 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "float_sparse: %s: no calibration activation reached this linear, so it "
                   "has no Hessian to prune with (give a dataset whose tokens reach it, or "
                   "exclude it)",
                   pending->module);
      return FALSE;
    }
  dtype = slim_layer_get_source_dtype (layer, weight_name);
  pruned = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F32, pending->n_out, pending->n_in);
  data = slim_tensor_get_data_mut (pruned);
  if (!slim_admm_prune (&pending->stats, slim_tensor_get_data (weight), pending->n_out,
                        pending->n_in, self->sparse_ratio, data, NULL, error)
      || !slim_admm_protect (data, pending->stats.scaler_row, pending->n_out, pending->n_in, dtype,
                             data, NULL, error))
    {
      g_prefix_error (error, "float_sparse: %s (%" G_GINT64_FORMAT " calibration tokens): ",
                      pending->module, pending->stats.n_rows);
      return FALSE;
    }
  slim_layer_set_tensor (layer, pruned);

  record = slim_qlinear_new (pending->module, SLIM_FLOAT_SPARSE_LABEL);
  record->n_out = pending->n_out;
  record->n_in = pending->n_in;
  slim_layer_set_qlinear (layer, record);
  g_debug ("%s: W16A16S, %" G_GINT64_FORMAT " x %" G_GINT64_FORMAT
           " pruned at %.3f from %" G_GINT64_FORMAT " tokens",
           pending->module, pending->n_out, pending->n_in, self->sparse_ratio,
           pending->stats.n_rows);
  return TRUE;
}

/* Prunes the layer's linears and frees their Hessians (the base then
 * releases them). */
static gboolean
slim_float_sparse_processor_finish_layer (SlimLinearProcessor *processor,
                                          SlimLayer *layer,
                                          GError **error)
{
  SlimFloatSparseProcessor *self = SLIM_FLOAT_SPARSE_PROCESSOR (processor);
  gboolean ok = TRUE;

  for (guint i = 0; i < self->pending_order->len;)
    {
      SlimFloatSparsePending *pending = g_ptr_array_index (self->pending_order, i);

      if (pending->layer != layer)
        {
          i++;
          continue;
        }
      if (ok)
        ok = slim_float_sparse_finish_linear (self, pending, error);
      g_hash_table_remove (self->pending, pending->module);
      g_ptr_array_remove_index (self->pending_order, i);
    }
  return ok;
}

static char *
slim_float_sparse_processor_describe (SlimLinearProcessor *processor)
{
  return g_strdup_printf ("float_sparse (W16A16S, sparse_ratio %g)",
                          SLIM_FLOAT_SPARSE_PROCESSOR (processor)->sparse_ratio);
}

static gboolean
slim_float_sparse_processor_refreshes_outputs (SlimProcessor *processor)
{
  return TRUE;
}

/* ---- GObject ------------------------------------------------------------ */

static void
slim_float_sparse_processor_finalize (GObject *object)
{
  SlimFloatSparseProcessor *self = SLIM_FLOAT_SPARSE_PROCESSOR (object);

  g_hash_table_unref (self->pending);
  g_ptr_array_unref (self->pending_order);
  G_OBJECT_CLASS (slim_float_sparse_processor_parent_class)->finalize (object);
}

static void
slim_float_sparse_processor_class_init (SlimFloatSparseProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimLinearProcessorClass *linear_class = SLIM_LINEAR_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_float_sparse_processor_finalize;
  processor_class->get_forward_hooks = slim_float_sparse_processor_get_forward_hooks;
  processor_class->refreshes_outputs = slim_float_sparse_processor_refreshes_outputs;
  linear_class->process_linear = slim_float_sparse_processor_process_linear;
  linear_class->finish_layer = slim_float_sparse_processor_finish_layer;
  linear_class->describe = slim_float_sparse_processor_describe;
  SLIM_PROPERTIES_INSTALL (klass, slim_float_sparse_properties);
}

static void
slim_float_sparse_processor_init (SlimFloatSparseProcessor *self)
{
  self->pending = g_hash_table_new (g_str_hash, g_str_equal);
  self->pending_order
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_float_sparse_pending_free);
}

SLIM_PLUGIN_DEFINE (processor,
                    float_sparse,
                    SLIM_PLUGIN_NO_ALIASES,
                    "ADMM float sparsification of linear weights with precision protection "
                    "(msModelSlim float_sparse: W16A16S)",
                    slim_float_sparse_processor_get_type)
