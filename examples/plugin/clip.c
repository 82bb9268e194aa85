/* SPDX-License-Identifier: Apache-2.0
 *
 * clip.c: an example out-of-tree processor, built against the installed
 * slimflow SDK only (pkg-config slimflow-1; docs/plugin-guide.md):
 *
 *   type: clip
 *   sigma: 3.0            clamp to mean +- sigma * std of each row
 *   include: [patterns]   default ["*"]
 *   exclude: [patterns]   default [], wins over include
 *
 * Every selected linear of a decoder layer has each row of its weight
 * clamped to [mean - sigma * std, mean + sigma * std] of that row
 * (population std, in double), in place, before a quantizer sizes its
 * scales on the outliers.  SlimLinearProcessor does the rest: include /
 * exclude, the walk over the layer's linears (skipping those another
 * processor already quantized), the warning for patterns that matched
 * nothing and the state a resumed run needs.  Data-free (no calibration
 * forward) and each layer stands alone (distributable).
 */
#include "slim-plugin.h"

#include <math.h>

#define SLIM_TYPE_CLIP_PROCESSOR (slim_clip_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimClipProcessor, slim_clip_processor, SLIM, CLIP_PROCESSOR, SlimLinearProcessor)

struct _SlimClipProcessor
{
  SlimLinearProcessor parent_instance;

  double sigma;
};

/* YAML keys are the property names; include and exclude come from the base. */
static const SlimPropertyDecl slim_clip_properties[] = {
  SLIM_PROPERTY_DOUBLE (SlimClipProcessor,
                        sigma,
                        "sigma",
                        "Sigma",
                        "Clamp each weight row to its mean +- sigma standard deviations.",
                        0.5,
                        100.0,
                        3.0),
};

G_DEFINE_FINAL_TYPE (SlimClipProcessor, slim_clip_processor, SLIM_TYPE_LINEAR_PROCESSOR)

/* Clamps each row of w (n_out, n_in) to mean +- sigma * std; returns how
 * many values changed. */
static gint64
slim_clip_rows (float *w, gint64 n_out, gint64 n_in, double sigma)
{
  gint64 n_clipped = 0;

  for (gint64 r = 0; r < n_out; r++)
    {
      float *row = w + r * n_in;
      double sum = 0.0, sum_sq = 0.0, mean, std, lo, hi;

      for (gint64 c = 0; c < n_in; c++)
        sum += row[c];
      mean = sum / (double)n_in;
      for (gint64 c = 0; c < n_in; c++)
        sum_sq += (row[c] - mean) * (row[c] - mean);
      std = sqrt (sum_sq / (double)n_in);
      lo = mean - sigma * std;
      hi = mean + sigma * std;
      for (gint64 c = 0; c < n_in; c++)
        if (row[c] < lo || row[c] > hi)
          {
            row[c] = (float)(row[c] < lo ? lo : hi);
            n_clipped++;
          }
    }
  return n_clipped;
}

/* In preprocess, for each selected linear of a decoder layer. */
static gboolean
slim_clip_processor_process_linear (SlimLinearProcessor *processor,
                                    SlimLayer *layer,
                                    const char *module,
                                    GError **error)
{
  SlimClipProcessor *self = SLIM_CLIP_PROCESSOR (processor);
  g_autofree char *weight_name = g_strconcat (module, ".weight", NULL);
  SlimTensor *weight = slim_layer_require_tensor (layer, weight_name, error);
  g_autoptr (SlimTensor) clipped = NULL;
  gint64 n_clipped;

  if (weight == NULL)
    return FALSE;
  /* layer tensors may be read-only views of the model files: work on a
   * copy (F32, (n_out, n_in)) and put it in the layer */
  clipped = slim_tensor_copy (weight, NULL);
  n_clipped = slim_clip_rows (slim_tensor_get_data_mut (clipped), slim_tensor_get_dim (clipped, 0),
                              slim_tensor_get_dim (clipped, 1), self->sigma);
  slim_layer_set_tensor (layer, clipped);
  g_debug ("%s: %" G_GINT64_FORMAT " values clipped", module, n_clipped);
  return TRUE;
}

static gboolean
slim_clip_processor_true (SlimProcessor *processor)
{
  return TRUE;
}

static void
slim_clip_processor_class_init (SlimClipProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  SlimLinearProcessorClass *linear_class = SLIM_LINEAR_PROCESSOR_CLASS (klass);

  linear_class->process_linear = slim_clip_processor_process_linear;
  processor_class->is_data_free = slim_clip_processor_true;
  processor_class->supports_distributed = slim_clip_processor_true;
  SLIM_PROPERTIES_INSTALL (klass, slim_clip_properties);
}

static void
slim_clip_processor_init (SlimClipProcessor *self)
{
}

SLIM_PLUGIN_DEFINE (processor,
                    clip,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Clamps linear weights to mean +- sigma std per row (example plugin)",
                    slim_clip_processor_get_type)
