/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-plugin-test.c: the processor test bench of the plugin SDK (see
 * slim-plugin-test.h): synthetic layers, the stand-in model pre_run gets,
 * the hook sequence and the per-linear error against the float weights.
 */
#include "slim-plugin-test.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include "slim-error.h"
#include "slim-safetensors.h"

/* ---- seeded values ------------------------------------------------------ */

/* One draw of N(0, 1) (Box-Muller on GRand's doubles, which are the same
 * on every platform for a given seed). */
static double
slim_plugin_test_gaussian (GRand *rand)
{
  double u1 = g_rand_double (rand);
  double u2 = g_rand_double (rand);

  if (u1 < 1e-300)
    u1 = 1e-300;
  return sqrt (-2.0 * log (u1)) * cos (2.0 * G_PI * u2);
}

SlimLayer *
slim_plugin_test_make_layer (gint index,
                             const SlimPluginTestLinear *linears,
                             guint n_linears,
                             guint32 seed)
{
  g_autofree char *prefix = NULL;
  g_autoptr (GRand) rand = NULL;
  SlimLayer *layer;

  g_return_val_if_fail (index >= 0, NULL);
  g_return_val_if_fail (linears != NULL || n_linears == 0, NULL);
  for (guint l = 0; l < n_linears; l++)
    g_return_val_if_fail (linears[l].name != NULL && linears[l].n_out > 0 && linears[l].n_in > 0,
                          NULL);

  prefix = g_strdup_printf ("model.layers.%d", index);
  layer = slim_layer_new (index, prefix);
  rand = g_rand_new_with_seed (seed);
  for (guint l = 0; l < n_linears; l++)
    {
      const SlimPluginTestLinear *spec = &linears[l];
      g_autofree char *module = g_strconcat (prefix, ".", spec->name, NULL);
      g_autofree char *weight_name = g_strconcat (module, ".weight", NULL);
      g_autoptr (SlimTensor) weight = NULL;
      float *w; /* (n_out, n_in) */

      weight = slim_tensor_new_2d (weight_name, SLIM_DTYPE_F32, spec->n_out, spec->n_in);
      w = slim_tensor_get_data_mut (weight);
      for (gint64 r = 0; r < spec->n_out; r++)
        {
          double row_std = 0.01 * (double)(1 + r % 4);
          for (gint64 c = 0; c < spec->n_in; c++)
            {
              double v = row_std * slim_plugin_test_gaussian (rand);
              if (g_rand_int_range (rand, 0, 256) == 0)
                v *= 8.0;
              w[r * spec->n_in + c] = (float)v;
            }
        }
      slim_layer_set_tensor (layer, weight);
      if (spec->bias)
        {
          g_autofree char *bias_name = g_strconcat (module, ".bias", NULL);
          g_autoptr (SlimTensor) bias = slim_tensor_new_1d (bias_name, SLIM_DTYPE_F32, spec->n_out);
          float *b = slim_tensor_get_data_mut (bias); /* (n_out) */
          for (gint64 r = 0; r < spec->n_out; r++)
            b[r] = (float)(0.1 * slim_plugin_test_gaussian (rand));
          slim_layer_set_tensor (layer, bias);
        }
      slim_layer_add_linear_name (layer, module);
    }
  return layer;
}

/* ---- the stand-in model ------------------------------------------------- */

#define STANDIN_HIDDEN 8
#define STANDIN_INTERMEDIATE 16
#define STANDIN_HEADS 2
#define STANDIN_KV_HEADS 1
#define STANDIN_HEAD_DIM 4
#define STANDIN_VOCAB 32

static const char standin_config[] = "{\n"
                                     "  \"architectures\": [\"LlamaForCausalLM\"],\n"
                                     "  \"model_type\": \"llama\",\n"
                                     "  \"hidden_size\": 8,\n"
                                     "  \"intermediate_size\": 16,\n"
                                     "  \"num_hidden_layers\": 1,\n"
                                     "  \"num_attention_heads\": 2,\n"
                                     "  \"num_key_value_heads\": 1,\n"
                                     "  \"head_dim\": 4,\n"
                                     "  \"vocab_size\": 32,\n"
                                     "  \"max_position_embeddings\": 64,\n"
                                     "  \"rms_norm_eps\": 1e-05,\n"
                                     "  \"hidden_act\": \"silu\",\n"
                                     "  \"tie_word_embeddings\": true,\n"
                                     "  \"torch_dtype\": \"float32\"\n"
                                     "}\n";

static gboolean
standin_add (SlimSafetensorsWriter *writer,
             const char *name,
             gint64 n_rows,
             gint64 n_cols, /* 0: a vector of n_rows */
             GRand *rand,
             GError **error)
{
  g_autoptr (SlimTensor) t = n_cols > 0 ? slim_tensor_new_2d (name, SLIM_DTYPE_F32, n_rows, n_cols)
                                        : slim_tensor_new_1d (name, SLIM_DTYPE_F32, n_rows);
  float *data = slim_tensor_get_data_mut (t);

  for (gint64 i = 0; i < slim_tensor_get_n_elements (t); i++)
    data[i] = n_cols > 0 ? (float)(0.1 * slim_plugin_test_gaussian (rand)) : 1.0f;
  return slim_safetensors_writer_add (writer, t, error);
}

/* Writes the stand-in model into dir. */
static gboolean
standin_write (const char *dir, GError **error)
{
  const gint64 q = STANDIN_HEADS * STANDIN_HEAD_DIM, kv = STANDIN_KV_HEADS * STANDIN_HEAD_DIM;
  const struct
  {
    const char *name;
    gint64 n_rows, n_cols;
  } tensors[] = {
    { "model.embed_tokens.weight", STANDIN_VOCAB, STANDIN_HIDDEN },
    { "model.layers.0.input_layernorm.weight", STANDIN_HIDDEN, 0 },
    { "model.layers.0.self_attn.q_proj.weight", q, STANDIN_HIDDEN },
    { "model.layers.0.self_attn.k_proj.weight", kv, STANDIN_HIDDEN },
    { "model.layers.0.self_attn.v_proj.weight", kv, STANDIN_HIDDEN },
    { "model.layers.0.self_attn.o_proj.weight", STANDIN_HIDDEN, q },
    { "model.layers.0.post_attention_layernorm.weight", STANDIN_HIDDEN, 0 },
    { "model.layers.0.mlp.gate_proj.weight", STANDIN_INTERMEDIATE, STANDIN_HIDDEN },
    { "model.layers.0.mlp.up_proj.weight", STANDIN_INTERMEDIATE, STANDIN_HIDDEN },
    { "model.layers.0.mlp.down_proj.weight", STANDIN_HIDDEN, STANDIN_INTERMEDIATE },
    { "model.norm.weight", STANDIN_HIDDEN, 0 },
  };
  g_autofree char *config_path = g_build_filename (dir, "config.json", NULL);
  g_autoptr (SlimSafetensorsWriter) writer = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);

  if (!g_file_set_contents (config_path, standin_config, -1, error))
    return FALSE;
  writer = slim_safetensors_writer_new (dir, "model", 0, error);
  if (writer == NULL)
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (tensors); i++)
    if (!standin_add (writer, tensors[i].name, tensors[i].n_rows, tensors[i].n_cols, rand, error))
      return FALSE;
  return slim_safetensors_writer_finish (writer, error);
}

static void
standin_remove (const char *dir)
{
  g_autoptr (GDir) handle = g_dir_open (dir, 0, NULL);
  const char *entry;

  while (handle != NULL && (entry = g_dir_read_name (handle)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, entry, NULL);
      g_unlink (path);
    }
  g_rmdir (dir);
}

/* ---- the run ------------------------------------------------------------ */

/* One linear of the layer with its float reference and seeded inputs. */
typedef struct
{
  const char *module;  /* owned by the layer */
  SlimTensor *weight0; /* F32 (n_out, n_in), a copy from before the run */
  SlimTensor *bias0;   /* F32 (n_out) or NULL */
  float **inputs;      /* (n_samples) x (n_tokens, n_in) */
  gint64 n_out;
  gint64 n_in;
} SlimPluginTestItem;

typedef struct
{
  SlimLayer *layer;
  SlimPluginTestItem *items; /* (n_items) */
  guint n_items;
  guint n_samples;
  gint64 n_tokens;
} SlimPluginTestBench;

static void
bench_clear (SlimPluginTestBench *bench)
{
  for (guint i = 0; i < bench->n_items; i++)
    {
      SlimPluginTestItem *item = &bench->items[i];
      g_clear_pointer (&item->weight0, slim_tensor_unref);
      g_clear_pointer (&item->bias0, slim_tensor_unref);
      for (guint s = 0; item->inputs != NULL && s < bench->n_samples; s++)
        g_free (item->inputs[s]);
      g_free (item->inputs);
    }
  g_free (bench->items);
}

static gboolean
bench_init (SlimPluginTestBench *bench,
            SlimLayer *layer,
            guint n_samples,
            gint64 n_tokens,
            guint32 seed,
            GError **error)
{
  const char *const *names = slim_layer_get_linear_names (layer);
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);

  memset (bench, 0, sizeof (*bench));
  bench->layer = layer;
  bench->n_samples = n_samples;
  bench->n_tokens = n_tokens;
  bench->items = g_new0 (SlimPluginTestItem, names != NULL ? g_strv_length ((char **)names) : 0);
  for (guint l = 0; names != NULL && names[l] != NULL; l++)
    {
      SlimPluginTestItem *item = &bench->items[bench->n_items];
      g_autofree char *weight_name = g_strconcat (names[l], ".weight", NULL);
      g_autofree char *bias_name = g_strconcat (names[l], ".bias", NULL);
      SlimTensor *weight = slim_layer_require_tensor (layer, weight_name, error);
      SlimTensor *bias = slim_layer_get_tensor (layer, bias_name);

      if (weight == NULL)
        return FALSE;
      if (slim_tensor_get_dtype (weight) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (weight) != 2)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s: the test bench needs a float32 (n_out, n_in) weight", weight_name);
          return FALSE;
        }
      bench->n_items++;
      item->module = names[l];
      item->n_out = slim_tensor_get_dim (weight, 0);
      item->n_in = slim_tensor_get_dim (weight, 1);
      item->weight0 = slim_tensor_copy (weight, NULL);
      item->bias0 = bias != NULL ? slim_tensor_copy (bias, NULL) : NULL;
      item->inputs = g_new0 (float *, n_samples);
      for (guint s = 0; s < n_samples; s++)
        {
          float *x = g_new (float, n_tokens * item->n_in); /* (n_tokens, n_in) */
          for (gint64 t = 0; t < n_tokens; t++)
            for (gint64 c = 0; c < item->n_in; c++)
              x[t * item->n_in + c]
                  = (float)(slim_plugin_test_gaussian (rand) * (c % 16 == 3 ? 6.0 : 1.0));
          item->inputs[s] = x;
        }
    }
  return TRUE;
}

/* Deployed hooks of the layer followed by one processor's own hooks. */
typedef struct
{
  SlimForwardHooks deployed;
  SlimForwardHooks own;
} SlimPluginTestHooks;

static gboolean
run_linear_input (SlimPluginTestHooks *hooks,
                  const char *module,
                  float *x, /* (n_tokens, n_in), modified in place */
                  gint64 n_tokens,
                  gint64 n_in,
                  GError **error)
{
  if (hooks->deployed.linear_input != NULL
      && !hooks->deployed.linear_input (module, x, n_tokens, n_in, hooks->deployed.user_data,
                                        error))
    return FALSE;
  if (hooks->own.linear_input != NULL
      && !hooks->own.linear_input (module, x, n_tokens, n_in, hooks->own.user_data, error))
    return FALSE;
  return TRUE;
}

/* The calibration forward of one processor: every sample, every linear. */
static gboolean
bench_calibrate (SlimPluginTestBench *bench, SlimProcessor *processor, GError **error)
{
  const gint64 n_tokens = bench->n_tokens;

  for (guint s = 0; s < bench->n_samples; s++)
    for (guint l = 0; l < bench->n_items; l++)
      {
        SlimPluginTestItem *item = &bench->items[l];
        g_autofree float *x = g_memdup2 (item->inputs[s], sizeof (float) * n_tokens * item->n_in);
        SlimPluginTestHooks hooks;

        /* taken per linear call, as the model forward sees them */
        slim_qlinear_get_deployed_hooks (bench->layer, &hooks.deployed);
        slim_processor_get_forward_hooks (processor, bench->layer, &hooks.own);
        if (!run_linear_input (&hooks, item->module, x, n_tokens, item->n_in, error))
          return FALSE;
      }
  return TRUE;
}

/* y (n_tokens, n_out) = x (n_tokens, n_in) W^T (+ b), in double. */
static void
linear_forward (const float *x,
                const float *w, /* (n_out, n_in) */
                const float *b, /* (n_out) or NULL */
                gint64 n_tokens,
                gint64 n_in,
                gint64 n_out,
                double *y)
{
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 o = 0; o < n_out; o++)
      {
        double acc = b != NULL ? b[o] : 0.0;
        for (gint64 i = 0; i < n_in; i++)
          acc += (double)x[t * n_in + i] * (double)w[o * n_in + i];
        y[t * n_out + o] = acc;
      }
}

static gboolean
bench_evaluate (SlimPluginTestBench *bench, SlimPluginTestReport *report, GError **error)
{
  const gint64 n_tokens = bench->n_tokens;

  report->n_results = bench->n_items;
  report->results = g_new0 (SlimPluginTestResult, bench->n_items);
  for (guint l = 0; l < bench->n_items; l++)
    {
      SlimPluginTestItem *item = &bench->items[l];
      SlimPluginTestResult *result = &report->results[l];
      g_autofree char *weight_name = g_strconcat (item->module, ".weight", NULL);
      g_autofree char *bias_name = g_strconcat (item->module, ".bias", NULL);
      SlimTensor *weight = slim_layer_require_tensor (bench->layer, weight_name, error);
      SlimTensor *bias = slim_layer_get_tensor (bench->layer, bias_name);
      g_autofree double *y = g_new (double, n_tokens * item->n_out);     /* (n_tokens, n_out) */
      g_autofree double *y_ref = g_new (double, n_tokens * item->n_out); /* (n_tokens, n_out) */
      double diff_sq = 0.0, ref_sq = 0.0;

      result->module = g_strdup (item->module);
      result->n_out = item->n_out;
      result->n_in = item->n_in;
      result->qlinear = slim_layer_get_qlinear (bench->layer, item->module);
      if (weight == NULL)
        return FALSE;
      if (slim_tensor_get_dtype (weight) != SLIM_DTYPE_F32
          || slim_tensor_get_dim (weight, 0) != item->n_out
          || slim_tensor_get_dim (weight, 1) != item->n_in)
        {
          g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                       "%s: a processor changed the weight's dtype or shape", weight_name);
          return FALSE;
        }
      for (guint s = 0; s < bench->n_samples; s++)
        {
          g_autofree float *x = g_memdup2 (item->inputs[s], sizeof (float) * n_tokens * item->n_in);
          SlimForwardHooks deployed;

          g_autofree float *y_int = g_new (float, n_tokens * item->n_out); /* (n_tokens, n_out) */
          gboolean done = FALSE;

          slim_qlinear_get_deployed_hooks (bench->layer, &deployed);
          if (deployed.linear_input != NULL
              && !deployed.linear_input (item->module, x, n_tokens, item->n_in, deployed.user_data,
                                         error))
            return FALSE;
          /* an integer record computes its output itself */
          if (deployed.linear_forward != NULL
              && !deployed.linear_forward (item->module, x, n_tokens, item->n_in, item->n_out,
                                           y_int, &done, deployed.user_data, error))
            return FALSE;
          if (done)
            for (gint64 i = 0; i < n_tokens * item->n_out; i++)
              y[i] = y_int[i];
          else
            linear_forward (x, slim_tensor_get_data (weight),
                            bias != NULL ? slim_tensor_get_data (bias) : NULL, n_tokens, item->n_in,
                            item->n_out, y);
          linear_forward (item->inputs[s], slim_tensor_get_data (item->weight0),
                          item->bias0 != NULL ? slim_tensor_get_data (item->bias0) : NULL, n_tokens,
                          item->n_in, item->n_out, y_ref);
          for (gint64 i = 0; i < n_tokens * item->n_out; i++)
            {
              double d = y[i] - y_ref[i];
              diff_sq += d * d;
              ref_sq += y_ref[i] * y_ref[i];
              result->max_abs_error = MAX (result->max_abs_error, fabs (d));
            }
        }
      result->rel_error = ref_sq > 0.0 ? sqrt (diff_sq / ref_sq) : sqrt (diff_sq);
    }
  return TRUE;
}

/* Puts "preprocess (processor 'clip'): " in front of a hook's error;
 * returns FALSE. */
static gboolean
hook_failed (GError **error, const char *hook, SlimProcessor *processor)
{
  const char *name = slim_processor_get_type_name (processor);

  if (name != NULL)
    g_prefix_error (error, "%s (processor '%s'): ", hook, name);
  else
    g_prefix_error (error, "%s (%s): ", hook, G_OBJECT_TYPE_NAME (processor));
  return FALSE;
}

static gboolean
run_hooks (SlimProcessor *const *processors,
           guint n_processors,
           SlimModel *model,
           SlimPluginTestBench *bench,
           SlimPluginTestReport *report,
           GError **error)
{
  for (guint p = 0; p < n_processors; p++)
    if (!slim_processor_validate (processors[p], error))
      return hook_failed (error, "validate", processors[p]);
  for (guint p = 0; p < n_processors; p++)
    if (!slim_processor_pre_run (processors[p], model, error))
      return hook_failed (error, "pre_run", processors[p]);
  for (guint p = 0; p < n_processors; p++)
    {
      if (!slim_processor_preprocess (processors[p], bench->layer, error))
        return hook_failed (error, "preprocess", processors[p]);
      if (!slim_processor_is_data_free (processors[p]))
        {
          if (!bench_calibrate (bench, processors[p], error))
            return hook_failed (error, "calibration forward", processors[p]);
          report->forwarded = TRUE;
        }
      if (!slim_processor_postprocess (processors[p], bench->layer, error))
        return hook_failed (error, "postprocess", processors[p]);
    }
  for (guint p = 0; p < n_processors; p++)
    if (!slim_processor_post_run (processors[p], error))
      return hook_failed (error, "post_run", processors[p]);
  return TRUE;
}

SlimPluginTestReport *
slim_plugin_test_run (SlimProcessor *const *processors,
                      guint n_processors,
                      SlimModel *model,
                      SlimLayer *layer,
                      guint n_samples,
                      gint64 n_tokens,
                      guint32 seed,
                      GError **error)
{
  g_autoptr (SlimPluginTestReport) report = NULL;
  g_autoptr (SlimModel) standin = NULL;
  g_autofree char *standin_dir = NULL;
  SlimPluginTestBench bench;
  gboolean ok;

  g_return_val_if_fail (processors != NULL && n_processors > 0, NULL);
  for (guint p = 0; p < n_processors; p++)
    g_return_val_if_fail (SLIM_IS_PROCESSOR (processors[p]), NULL);
  g_return_val_if_fail (model == NULL || SLIM_IS_MODEL (model), NULL);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), NULL);
  g_return_val_if_fail (n_samples > 0 && n_tokens > 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (model == NULL)
    {
      standin_dir = g_dir_make_tmp ("slim-plugin-test-XXXXXX", error);
      if (standin_dir == NULL)
        return NULL;
      if (standin_write (standin_dir, error))
        standin = slim_model_open (standin_dir, error);
      if (standin == NULL)
        {
          g_prefix_error (error, "the test bench's stand-in model: ");
          standin_remove (standin_dir);
          return NULL;
        }
      model = standin;
    }

  report = g_new0 (SlimPluginTestReport, 1);
  report->layer = g_object_ref (layer);
  ok = bench_init (&bench, layer, n_samples, n_tokens, seed, error)
       && run_hooks (processors, n_processors, model, &bench, report, error)
       && bench_evaluate (&bench, report, error);
  bench_clear (&bench);
  if (standin_dir != NULL)
    {
      g_clear_object (&standin);
      standin_remove (standin_dir);
    }
  return ok ? g_steal_pointer (&report) : NULL;
}

const SlimPluginTestResult *
slim_plugin_test_report_lookup (const SlimPluginTestReport *report, const char *module)
{
  gsize len;

  g_return_val_if_fail (report != NULL && module != NULL, NULL);

  len = strlen (module);
  for (guint i = 0; i < report->n_results; i++)
    {
      const char *name = report->results[i].module;
      gsize name_len = strlen (name);

      if (strcmp (name, module) == 0
          || (name_len > len && name[name_len - len - 1] == '.'
              && strcmp (name + name_len - len, module) == 0))
        return &report->results[i];
    }
  return NULL;
}

char *
slim_plugin_test_report_to_string (const SlimPluginTestReport *report)
{
  GString *out = g_string_new (NULL);

  g_return_val_if_fail (report != NULL, NULL);

  g_string_append_printf (out, "%-40s %11s %12s %12s  %s\n", "linear", "shape", "rel error",
                          "max |error|", "deployed");
  for (guint i = 0; i < report->n_results; i++)
    {
      const SlimPluginTestResult *r = &report->results[i];
      g_autofree char *shape
          = g_strdup_printf ("%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, r->n_out, r->n_in);

      g_string_append_printf (out, "%-40s %11s %12.6g %12.6g  %s\n", r->module, shape, r->rel_error,
                              r->max_abs_error, r->qlinear != NULL ? r->qlinear->label : "float");
    }
  return g_string_free (out, FALSE);
}

void
slim_plugin_test_report_free (SlimPluginTestReport *report)
{
  if (report == NULL)
    return;
  for (guint i = 0; i < report->n_results; i++)
    g_free (report->results[i].module);
  g_free (report->results);
  g_clear_object (&report->layer);
  g_free (report);
}
