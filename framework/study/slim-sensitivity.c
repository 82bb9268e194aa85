/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-sensitivity.c: per-linear relative output error of a quantized
 * model against its float model (slim-sensitivity.h).
 */
#include "slim-sensitivity.h"

#include <math.h>
#include <string.h>

#include "slim-error.h"
#include "slim-linalg.h"

void
slim_sensitivity_free (SlimSensitivity *s)
{
  if (s == NULL)
    return;
  g_free (s->module);
  g_free (s->kind);
  g_free (s->label);
  g_free (s);
}

typedef struct
{
  double sum_diff2;
  double sum_ref2;
} SlimSensitivitySums;

typedef struct
{
  SlimLayer *float_layer;
  SlimLayer *quant_layer;
  const SlimForwardHooks *quant_hooks;
  GHashTable *sums; /* module -> SlimSensitivitySums */
} SlimSensitivityRun;

static SlimTensor *
weight_of (SlimLayer *layer, const char *module, gint64 n_in, GError **error)
{
  g_autofree char *name = g_strconcat (module, ".weight", NULL);
  SlimTensor *w = slim_layer_require_tensor (layer, name, error);

  if (w == NULL)
    return NULL;
  if (slim_tensor_get_n_dims (w) != 2 || slim_tensor_get_dim (w, 1) != n_in
      || slim_tensor_get_dtype (w) != SLIM_DTYPE_F32)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "%s: expected a float32 weight of %" G_GINT64_FORMAT " columns", name, n_in);
      return NULL;
    }
  return w;
}

static gboolean
on_linear_input (
    const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **error)
{
  SlimSensitivityRun *run = user_data;
  SlimTensor *w = weight_of (run->float_layer, module, n_in, error);
  SlimTensor *w_q = w != NULL ? weight_of (run->quant_layer, module, n_in, error) : NULL;
  SlimSensitivitySums *sums;
  gint64 n_out;

  if (w_q == NULL)
    return FALSE;
  n_out = slim_tensor_get_dim (w, 0);
  if (slim_tensor_get_dim (w_q, 0) != n_out)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "%s: the quantized weight has %" G_GINT64_FORMAT
                   " rows, the float one %" G_GINT64_FORMAT,
                   module, slim_tensor_get_dim (w_q, 0), n_out);
      return FALSE;
    }
  g_autofree float *x_q
      = g_memdup2 (x, (gsize)(n_tokens * n_in) * sizeof (float)); /* (n_tokens, n_in) */
  g_autofree float *y = g_new (float, n_tokens *n_out);           /* (n_tokens, n_out) */
  g_autofree float *y_q = g_new (float, n_tokens *n_out);         /* (n_tokens, n_out) */
  if (run->quant_hooks != NULL && run->quant_hooks->linear_input != NULL
      && !run->quant_hooks->linear_input (module, x_q, n_tokens, n_in, run->quant_hooks->user_data,
                                          error))
    return FALSE;
  slim_linalg_linear (x, slim_tensor_get_data (w), NULL, y, n_tokens, n_in, n_out);
  slim_linalg_linear (x_q, slim_tensor_get_data (w_q), NULL, y_q, n_tokens, n_in, n_out);
  sums = g_hash_table_lookup (run->sums, module);
  if (sums == NULL)
    {
      sums = g_new0 (SlimSensitivitySums, 1);
      g_hash_table_insert (run->sums, g_strdup (module), sums);
    }
  for (gint64 i = 0; i < n_tokens * n_out; i++)
    {
      double d = (double)y_q[i] - (double)y[i];
      sums->sum_diff2 += d * d;
      sums->sum_ref2 += (double)y[i] * (double)y[i];
    }
  return TRUE;
}

double
slim_sensitivity_error_ref (
    const float *x, const float *w, const float *w_q, gint64 n_tokens, gint64 n_in, gint64 n_out)
{
  double diff2 = 0.0, ref2 = 0.0;

  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 o = 0; o < n_out; o++)
      {
        double y = 0.0, y_q = 0.0;
        for (gint64 i = 0; i < n_in; i++)
          {
            y += (double)x[t * n_in + i] * w[o * n_in + i];
            y_q += (double)x[t * n_in + i] * w_q[o * n_in + i];
          }
        diff2 += (y_q - y) * (y_q - y);
        ref2 += y * y;
      }
  return ref2 > 0 ? sqrt (diff2 / ref2) : 0.0;
}

static gint
by_error (gconstpointer a, gconstpointer b)
{
  const SlimSensitivity *x = *(const SlimSensitivity *const *)a;
  const SlimSensitivity *y = *(const SlimSensitivity *const *)b;

  if (x->error != y->error)
    return x->error > y->error ? -1 : 1;
  return strcmp (x->module, y->module);
}

GPtrArray *
slim_sensitivity_measure (SlimModel *float_model,
                          SlimModel *quant_model,
                          const SlimForwardHooks *quant_hooks,
                          GHashTable *labels,
                          SlimDataset *dataset,
                          GError **error)
{
  guint n_samples = slim_dataset_get_n_samples (dataset);
  guint n_layers = slim_model_get_n_layers (float_model);
  g_autoptr (GPtrArray) hidden = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_tensor_unref);
  g_autoptr (GHashTable) sums = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GPtrArray) out
      = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_sensitivity_free);
  g_autoptr (SlimLayer) embed = NULL;
  SlimSensitivityRun run = { .quant_hooks = quant_hooks, .sums = sums };
  SlimForwardHooks hooks = { .linear_input = on_linear_input, .user_data = &run };

  g_return_val_if_fail (SLIM_IS_MODEL (float_model) && SLIM_IS_MODEL (quant_model), NULL);
  if (slim_model_get_n_layers (quant_model) != n_layers)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "the quantized model has %u layers, the float one %u",
                   slim_model_get_n_layers (quant_model), n_layers);
      return NULL;
    }
  embed = slim_model_load_embed (float_model, error);
  if (embed == NULL)
    return NULL;
  for (guint s = 0; s < n_samples; s++)
    {
      gint64 len = 0;
      const gint32 *ids = slim_dataset_get_sample (dataset, s, &len);
      SlimTensor *h = slim_model_embed (float_model, embed, ids, len, error);
      if (h == NULL)
        return NULL;
      g_ptr_array_add (hidden, h);
    }
  for (guint l = 0; l < n_layers; l++)
    {
      g_autoptr (SlimLayer) float_layer = slim_model_load_layer (float_model, l, error);
      g_autoptr (SlimLayer) quant_layer
          = float_layer != NULL ? slim_model_load_layer (quant_model, l, error) : NULL;
      if (quant_layer == NULL)
        return NULL;
      run.float_layer = float_layer;
      run.quant_layer = quant_layer;
      for (guint s = 0; s < n_samples; s++)
        {
          SlimTensor *h = g_ptr_array_index (hidden, s);
          gint64 len = slim_tensor_get_dim (h, 0);
          SlimBatch batch = { 1, &len };
          SlimTensor *next
              = slim_model_forward_layer (float_model, float_layer, h, &batch, &hooks, error);
          if (next == NULL)
            {
              g_prefix_error (error, "layer %u: ", l);
              return NULL;
            }
          g_ptr_array_index (hidden, s) = next;
          slim_tensor_unref (h);
        }
      for (const char *const *name = slim_layer_get_linear_names (float_layer); *name != NULL;
           name++)
        {
          SlimSensitivitySums *sm = g_hash_table_lookup (sums, *name);
          SlimSensitivity *e = g_new0 (SlimSensitivity, 1);
          const char *prefix = slim_layer_get_prefix (float_layer);
          g_autofree char *tensor = g_strconcat (*name, ".weight", NULL);
          const char *label = labels != NULL ? g_hash_table_lookup (labels, tensor) : NULL;
          e->module = g_strdup (*name);
          e->layer = l;
          e->order = out->len;
          e->kind = g_strdup (g_str_has_prefix (*name, prefix) && (*name)[strlen (prefix)] == '.'
                                  ? *name + strlen (prefix) + 1
                                  : *name);
          e->label = g_strdup (label != NULL && strcmp (label, "FLOAT") != 0 ? label : "float");
          e->error = sm != NULL && sm->sum_ref2 > 0 ? sqrt (sm->sum_diff2 / sm->sum_ref2) : 0.0;
          g_ptr_array_add (out, e);
        }
    }
  g_ptr_array_sort (out, by_error);
  return g_steal_pointer (&out);
}
