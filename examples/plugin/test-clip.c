/* SPDX-License-Identifier: Apache-2.0
 *
 * test-clip.c: tests of the clip example plugin with the SDK's test bench
 * (slim-plugin-test.h): the module is loaded as slimflow loads it, built
 * from YAML as a config entry is, and run over a synthetic layer.
 *
 *   test-clip PATH/slim-processor-clip.so [PLUGINSDIR]
 *
 * PLUGINSDIR (the installed plugins, pkg-config's pluginsdir) provides
 * linear_quant for the tests that chain clip with a quantizer; they are
 * skipped when it is missing.
 */
#include "slim-plugin.h"

#include <math.h>
#include <string.h>

static SlimRegistry *registry;
static gboolean have_linear_quant;

static const SlimPluginTestLinear linears[] = {
  { "self_attn.q_proj", 32, 64, FALSE },
  { "mlp.up_proj", 96, 64, TRUE },
  { "mlp.down_proj", 64, 96, FALSE },
};
#define N_LINEARS G_N_ELEMENTS (linears)
#define SEED 7

/* A processor from one YAML mapping, as the config loader builds `process:` entries. */
static SlimProcessor *
new_processor (const char *yaml)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SlimConfigNode) node
      = slim_config_parse_data (yaml, strlen (yaml), "test.yaml", &error);
  g_autoptr (GPtrArray) errors = slim_config_errors_new ();
  GObject *object;

  g_assert_no_error (error);
  object
      = slim_config_plugin_new (registry, SLIM_PLUGIN_KIND_PROCESSOR, node, "process[0]", errors);
  slim_config_errors_propagate (errors, &error);
  g_assert_no_error (error);
  return SLIM_PROCESSOR (object);
}

static SlimPluginTestReport *
run (SlimProcessor **processors, guint n, SlimLayer *layer)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *table = NULL;
  SlimPluginTestReport *report
      = slim_plugin_test_run (processors, n, NULL, layer, 4, 16, SEED, &error);

  g_assert_no_error (error);
  table = slim_plugin_test_report_to_string (report);
  g_test_message ("\n%s", table);
  return report;
}

/* Every clipped row lies in mean +- 3 std of the original row; values
 * inside it are untouched (bit for bit); excluded linears are unchanged. */
static void
test_clip_bounds (void)
{
  g_autoptr (SlimProcessor) clip
      = new_processor ("type: clip\nsigma: 3\nexclude: ['*down_proj*']\n");
  g_autoptr (SlimLayer) layer = slim_plugin_test_make_layer (0, linears, N_LINEARS, SEED);
  g_autoptr (SlimLayer) original = slim_plugin_test_make_layer (0, linears, N_LINEARS, SEED);
  g_autoptr (SlimPluginTestReport) report = run (&clip, 1, layer);
  gint64 n_clipped = 0;

  g_assert_false (report->forwarded); /* data-free: no calibration forward */
  g_assert_cmpuint (report->n_results, ==, N_LINEARS);
  for (guint l = 0; l < N_LINEARS; l++)
    {
      const SlimPluginTestResult *result = &report->results[l];
      g_autofree char *name = g_strconcat (result->module, ".weight", NULL);
      const float *w = slim_tensor_get_data (slim_layer_get_tensor (layer, name));
      const float *w0 = slim_tensor_get_data (slim_layer_get_tensor (original, name));

      g_assert_null (result->qlinear);
      if (strstr (result->module, "down_proj") != NULL)
        {
          g_assert_cmpfloat (result->rel_error, ==, 0.0);
          continue;
        }
      /* clipping the bench's outliers (1 weight in 256, 8x) costs 0.06 to 0.3 */
      g_assert_cmpfloat (result->rel_error, >, 0.0);
      g_assert_cmpfloat (result->rel_error, <, 0.4);
      for (gint64 r = 0; r < result->n_out; r++)
        {
          const float *row0 = w0 + r * result->n_in, *row = w + r * result->n_in;
          double mean = 0.0, var = 0.0, lo, hi;

          for (gint64 c = 0; c < result->n_in; c++)
            mean += row0[c] / (double)result->n_in;
          for (gint64 c = 0; c < result->n_in; c++)
            var += (row0[c] - mean) * (row0[c] - mean) / (double)result->n_in;
          lo = mean - 3.0 * sqrt (var);
          hi = mean + 3.0 * sqrt (var);
          for (gint64 c = 0; c < result->n_in; c++)
            if (row0[c] >= lo && row0[c] <= hi)
              g_assert_cmpfloat (row[c], ==, row0[c]);
            else
              {
                /* float rounding of the bound: 1e-6 relative */
                g_assert_cmpfloat_with_epsilon (row[c], row0[c] < lo ? lo : hi, 1e-6 * fabs (hi));
                n_clipped++;
              }
        }
    }
  g_assert_cmpint (n_clipped, >, 0);
}

/* A sigma wider than any row changes nothing. */
static void
test_clip_wide (void)
{
  g_autoptr (SlimProcessor) clip = new_processor ("type: clip\nsigma: 100\n");
  g_autoptr (SlimLayer) layer = slim_plugin_test_make_layer (0, linears, N_LINEARS, SEED);
  g_autoptr (SlimPluginTestReport) report = run (&clip, 1, layer);

  for (guint l = 0; l < report->n_results; l++)
    g_assert_cmpfloat (report->results[l].rel_error, ==, 0.0);
}

#define W8A8                                                                                       \
  "type: linear_quant\n"                                                                           \
  "qconfig:\n"                                                                                     \
  "  act: {scope: per_tensor, dtype: int8, symmetric: false, method: minmax}\n"                    \
  "  weight: {scope: per_channel, dtype: int8, symmetric: true, method: minmax}\n"

/* clip then linear_quant, as examples/plugin/clip-then-w8a8.yaml: every
 * linear is deployed as W8A8, and int8 adds little to clip's own error. */
static void
test_clip_then_w8a8 (void)
{
  g_autoptr (SlimProcessor) clip = NULL;
  g_autoptr (SlimProcessor) quant = NULL;
  g_autoptr (SlimLayer) clipped = NULL;
  g_autoptr (SlimLayer) layer = NULL;
  g_autoptr (SlimPluginTestReport) clip_only = NULL;
  g_autoptr (SlimPluginTestReport) report = NULL;

  if (!have_linear_quant)
    {
      g_test_skip ("linear_quant is not installed");
      return;
    }
  clip = new_processor ("type: clip\nsigma: 3\n");
  quant = new_processor (W8A8);
  clipped = slim_plugin_test_make_layer (0, linears, N_LINEARS, SEED);
  clip_only = run (&clip, 1, clipped);
  layer = slim_plugin_test_make_layer (0, linears, N_LINEARS, SEED);
  report = run ((SlimProcessor *[]){ clip, quant }, 2, layer);
  g_assert_true (report->forwarded); /* static activations need calibration */
  for (guint l = 0; l < report->n_results; l++)
    {
      const SlimPluginTestResult *result = &report->results[l];

      g_assert_nonnull (result->qlinear);
      g_assert_cmpstr (result->qlinear->label, ==, "W8A8");
      /* W8A8 alone costs about 0.02 here; 0.05 leaves room */
      g_assert_cmpfloat (result->rel_error, <, clip_only->results[l].rel_error + 0.05);
    }
}

/* A linear another processor already quantized is left alone: clip after
 * linear_quant gives exactly what linear_quant alone gives. */
static void
test_clip_after_quant (void)
{
  g_autoptr (SlimProcessor) clip = NULL;
  g_autoptr (SlimProcessor) quant = NULL;
  g_autoptr (SlimProcessor) quant_alone = NULL;
  g_autoptr (SlimLayer) layer = NULL;
  g_autoptr (SlimLayer) alone = NULL;
  g_autoptr (SlimPluginTestReport) report = NULL;
  g_autoptr (SlimPluginTestReport) alone_report = NULL;

  if (!have_linear_quant)
    {
      g_test_skip ("linear_quant is not installed");
      return;
    }
  clip = new_processor ("type: clip\n");
  quant = new_processor (W8A8);
  quant_alone = new_processor (W8A8);
  alone = slim_plugin_test_make_layer (0, linears, N_LINEARS, SEED);
  alone_report = run (&quant_alone, 1, alone);
  layer = slim_plugin_test_make_layer (0, linears, N_LINEARS, SEED);
  report = run ((SlimProcessor *[]){ quant, clip }, 2, layer);
  for (guint l = 0; l < report->n_results; l++)
    g_assert_cmpfloat (report->results[l].rel_error, ==, alone_report->results[l].rel_error);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *linear_quant = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  if (argc < 2)
    {
      g_printerr ("usage: %s PATH/slim-processor-clip.so [PLUGINSDIR]\n", argv[0]);
      return 2;
    }
  registry = slim_registry_new ();
  if (!slim_registry_load_module (registry, argv[1], &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  if (argc > 2)
    linear_quant = g_build_filename (argv[2], "processors", "slim-processor-linear_quant.so", NULL);
  have_linear_quant = linear_quant != NULL && g_file_test (linear_quant, G_FILE_TEST_EXISTS)
                      && slim_registry_load_module (registry, linear_quant, NULL);

  g_test_add_func ("/clip/bounds", test_clip_bounds);
  g_test_add_func ("/clip/wide", test_clip_wide);
  g_test_add_func ("/clip/then-w8a8", test_clip_then_w8a8);
  g_test_add_func ("/clip/after-quant", test_clip_after_quant);
  status = g_test_run ();
  g_object_unref (registry);
  return status;
}
