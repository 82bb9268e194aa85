/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-sensitivity.h: how much each linear's quantization changes its
 * output (slimflow analyze).
 *
 * The calibration samples run through the float model layer by layer.
 * Before every linear, with its float input x (n_tokens, n_in):
 *
 *   y   = x W^T                      (the float weight)
 *   y_q = fq(x) W_q^T                (the dequantized weight of the
 *                                      quantized folder, fq the activation
 *                                      fake-quantization it deploys)
 *
 * and per linear, over all tokens of all samples,
 *
 *   error = ||y_q - y||_F / ||y||_F   (sums in double).
 *
 * Every linear sees float inputs, so the figure is the linear's own
 * sensitivity, not the error accumulated by the layers before it (that is
 * what `slimflow quant` prints per layer).  A linear the config left
 * float has error 0 and label "float".
 */
#pragma once

#include "slim-dataset.h"
#include "slim-model.h"

G_BEGIN_DECLS

typedef struct
{
  char *module; /* "model.layers.3.self_attn.q_proj" */
  guint layer;
  char *kind;  /* what follows the layer prefix: "self_attn.q_proj" */
  char *label; /* quant_type of the quantized folder ("W4A16"), "float" when left float */
  double error;
  guint order; /* position in the model's order of linears (layer by layer) */
} SlimSensitivity;

void slim_sensitivity_free (SlimSensitivity *s);

/**
 * slim_sensitivity_measure:
 * @float_model: the float model
 * @quant_model: the dequantized model (slim_quant_model_get_float_dir)
 * @quant_hooks: (nullable): its activation hooks (slim_quant_model_get_hooks)
 * @labels: (nullable): tensor name ("<module>.weight") -> quant_type
 * @dataset: calibration samples
 *
 * Returns: (transfer full) (element-type SlimSensitivity): one entry per
 *   linear, sorted by decreasing error (ties by module name); NULL with
 *   @error set.
 */
GPtrArray *slim_sensitivity_measure (SlimModel *float_model,
                                     SlimModel *quant_model,
                                     const SlimForwardHooks *quant_hooks,
                                     GHashTable *labels,
                                     SlimDataset *dataset,
                                     GError **error);

/* The reference arithmetic of one linear, for tests: the error of
 * (x, w, w_q) without activation quantization, plain loops in double. */
double slim_sensitivity_error_ref (
    const float *x, const float *w, const float *w_q, gint64 n_tokens, gint64 n_in, gint64 n_out);

G_END_DECLS
