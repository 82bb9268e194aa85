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
 * In preprocess, every selected linear of a decoder layer has each row of
 * its weight clamped to [mean - sigma * std, mean + sigma * std] of that
 * row (population std, in double), in place: the weight outliers are cut
 * before a quantizer sizes its scales on them.  Data-free (no calibration
 * forward), stateless between layers (resumable), and each layer stands
 * alone (distributable).  It must run before the quantizer of a linear: a
 * linear that already has a SlimQLinear record is an error.
 */
#include "slim-plugin.h"

#include <math.h>

#define SLIM_TYPE_CLIP_PROCESSOR (slim_clip_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimClipProcessor, slim_clip_processor, SLIM, CLIP_PROCESSOR, SlimProcessor)

struct _SlimClipProcessor
{
  SlimProcessor parent_instance;

  double sigma;
  char **include;
  char **exclude;
  SlimGlobList *globs; /* from include/exclude, made by validate */
};

enum
{
  PROP_0,
  PROP_SIGMA,
  PROP_INCLUDE,
  PROP_EXCLUDE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_FINAL_TYPE (SlimClipProcessor, slim_clip_processor, SLIM_TYPE_PROCESSOR)

static gboolean
slim_clip_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimClipProcessor *self = SLIM_CLIP_PROCESSOR (processor);

  g_clear_pointer (&self->globs, slim_glob_list_free);
  self->globs = slim_glob_list_new ((const char *const *)self->include,
                                    (const char *const *)self->exclude, error);
  return self->globs != NULL;
}

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

static gboolean
slim_clip_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimClipProcessor *self = SLIM_CLIP_PROCESSOR (processor);
  const char *const *names = slim_layer_get_linear_names (layer);

  if (slim_layer_get_index (layer) < 0 || names == NULL)
    return TRUE; /* decoder layers only, as linear_quant */
  if (self->globs == NULL && !slim_clip_processor_validate (processor, error))
    return FALSE;
  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autofree char *weight_name = g_strconcat (names[i], ".weight", NULL);
      g_autoptr (SlimTensor) clipped = NULL;
      SlimTensor *weight;
      gint64 n_clipped;

      if (!slim_glob_list_match (self->globs, names[i]))
        continue;
      if (slim_layer_get_qlinear (layer, names[i]) != NULL)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "clip: %s is already quantized; put clip before its quantizer", names[i]);
          return FALSE;
        }
      weight = slim_layer_require_tensor (layer, weight_name, error);
      if (weight == NULL)
        return FALSE;
      clipped = slim_tensor_copy (weight, NULL); /* F32 (n_out, n_in), writable */
      n_clipped
          = slim_clip_rows (slim_tensor_get_data_mut (clipped), slim_tensor_get_dim (clipped, 0),
                            slim_tensor_get_dim (clipped, 1), self->sigma);
      slim_layer_set_tensor (layer, clipped);
      g_debug ("%s: %" G_GINT64_FORMAT " values clipped", names[i], n_clipped);
    }
  return TRUE;
}

/* Nothing is carried from one layer to the next. */
static GBytes *
slim_clip_processor_save_state (SlimProcessor *processor, GError **error)
{
  return g_bytes_new (NULL, 0);
}

static gboolean
slim_clip_processor_restore_state (SlimProcessor *processor, GBytes *state, GError **error)
{
  return TRUE;
}

static gboolean
slim_clip_processor_true (SlimProcessor *processor)
{
  return TRUE;
}

static void
slim_clip_processor_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  SlimClipProcessor *self = SLIM_CLIP_PROCESSOR (object);

  if (id == PROP_SIGMA)
    g_value_set_double (value, self->sigma);
  else if (id == PROP_INCLUDE || id == PROP_EXCLUDE)
    g_value_set_boxed (value, id == PROP_INCLUDE ? self->include : self->exclude);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
slim_clip_processor_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  SlimClipProcessor *self = SLIM_CLIP_PROCESSOR (object);
  char ***list = id == PROP_INCLUDE ? &self->include : &self->exclude;

  switch (id)
    {
    case PROP_SIGMA:
      self->sigma = g_value_get_double (value);
      break;
    case PROP_INCLUDE:
    case PROP_EXCLUDE:
      if (g_value_get_boxed (value) != NULL) /* NULL (the construct default) keeps the default */
        {
          g_strfreev (*list);
          *list = g_value_dup_boxed (value);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
    }
}

static void
slim_clip_processor_finalize (GObject *object)
{
  SlimClipProcessor *self = SLIM_CLIP_PROCESSOR (object);

  g_strfreev (self->include);
  g_strfreev (self->exclude);
  g_clear_pointer (&self->globs, slim_glob_list_free);
  G_OBJECT_CLASS (slim_clip_processor_parent_class)->finalize (object);
}

static void
slim_clip_processor_class_init (SlimClipProcessorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;

  object_class->get_property = slim_clip_processor_get_property;
  object_class->set_property = slim_clip_processor_set_property;
  object_class->finalize = slim_clip_processor_finalize;
  processor_class->validate = slim_clip_processor_validate;
  processor_class->preprocess = slim_clip_processor_preprocess;
  processor_class->save_state = slim_clip_processor_save_state;
  processor_class->restore_state = slim_clip_processor_restore_state;
  processor_class->is_data_free = slim_clip_processor_true;
  processor_class->supports_distributed = slim_clip_processor_true;

  properties[PROP_SIGMA] = g_param_spec_double (
      "sigma", "Sigma", "Clamp each weight row to its mean +- sigma standard deviations.", 0.5,
      100.0, 3.0, flags);
  properties[PROP_INCLUDE] = g_param_spec_boxed (
      "include", "Include", "Module name patterns to clip; default [\"*\"].", G_TYPE_STRV, flags);
  properties[PROP_EXCLUDE] = g_param_spec_boxed (
      "exclude", "Exclude", "Module name patterns left as they are; wins over include.",
      G_TYPE_STRV, flags);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
slim_clip_processor_init (SlimClipProcessor *self)
{
  const char *const default_include[] = { "*", NULL };

  self->sigma = 3.0;
  self->include = g_strdupv ((char **)default_include);
  self->exclude = g_new0 (char *, 1);
}

SLIM_PLUGIN_DEFINE (processor,
                    clip,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Clamps linear weights to mean +- sigma std per row (example plugin)",
                    slim_clip_processor_get_type)
