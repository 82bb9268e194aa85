/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-linear-processor.c: the abstract base of per-linear processors
 * (see slim-linear-processor.h): include / exclude, the walk over a
 * decoder layer's linears, which linears are taken, the unmatched-pattern
 * warnings and the pattern hits in the saved state.
 *
 * "Taken" is shared by every SlimLinearProcessor: a layer carries (as
 * qdata) the set of its linears selected by some processor that has not
 * finished the layer yet; a deployed linear has a SlimQLinear record.
 */
#include "slim-linear-processor.h"

#include "slim-error.h"
#include "slim-glob-list.h"
#include "slim-property.h"
#include "slim-qlinear.h"

/* One linear this processor took, until its postprocess of the layer. */
typedef struct
{
  SlimLayer *layer; /* not referenced: the layer being processed */
  char *module;
} SlimLinearClaim;

typedef struct
{
  char **include;
  char **exclude;

  gboolean prepared;
  gboolean visit_head; /* the head pseudo-layer's lm_head too */
  SlimGlobList *globs;
  GArray *claims; /* SlimLinearClaim */
} SlimLinearProcessorPrivate;

/* clang-format off */
static const SlimPropertyDecl slim_linear_processor_properties[] = {
  SLIM_PROPERTY_STRV (
      SlimLinearProcessorPrivate, include, "include", "Include",
      "Module name patterns to quantize (`*` crosses dots, ?, [abc], {a,b}); default [\"*\"].",
      SLIM_STRV ("*")),
  SLIM_PROPERTY_STRV (SlimLinearProcessorPrivate, exclude, "exclude", "Exclude",
                      "Module name patterns left float; wins over include; default [].",
                      SLIM_STRV_EMPTY),
};
/* clang-format on */

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (SlimLinearProcessor,
                                     slim_linear_processor,
                                     SLIM_TYPE_PROCESSOR)

/* ---- taken linears -------------------------------------------------- */

static GQuark
slim_linear_processor_taken_quark (void)
{
  return g_quark_from_static_string ("slim-linear-processor-taken");
}

static GHashTable *
slim_linear_processor_get_taken (SlimLayer *layer, gboolean create)
{
  GQuark quark = slim_linear_processor_taken_quark ();
  GHashTable *taken = g_object_get_qdata (G_OBJECT (layer), quark);

  if (taken == NULL && create)
    {
      taken = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_object_set_qdata_full (G_OBJECT (layer), quark, taken, (GDestroyNotify)g_hash_table_unref);
    }
  return taken;
}

gboolean
slim_linear_processor_is_taken (SlimLayer *layer, const char *module)
{
  GHashTable *taken;

  g_return_val_if_fail (SLIM_IS_LAYER (layer), FALSE);
  g_return_val_if_fail (module != NULL, FALSE);

  taken = slim_linear_processor_get_taken (layer, FALSE);
  return slim_layer_get_qlinear (layer, module) != NULL
         || (taken != NULL && g_hash_table_contains (taken, module));
}

static void
slim_linear_claim_clear (SlimLinearClaim *claim)
{
  g_free (claim->module);
}

/* ---- preparation and messages -------------------------------------- */

gboolean
slim_linear_processor_prepare (SlimLinearProcessor *self, GError **error)
{
  SlimLinearProcessorPrivate *priv;
  SlimLinearProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_LINEAR_PROCESSOR (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  priv = slim_linear_processor_get_instance_private (self);
  klass = SLIM_LINEAR_PROCESSOR_GET_CLASS (self);
  if (priv->prepared)
    return TRUE;
  if (klass->prepare != NULL && !klass->prepare (self, error))
    return FALSE;
  priv->globs = slim_glob_list_new ((const char *const *)priv->include,
                                    (const char *const *)priv->exclude, error);
  if (priv->globs == NULL)
    return FALSE;
  priv->prepared = TRUE;
  return TRUE;
}

gboolean
slim_linear_processor_is_prepared (SlimLinearProcessor *self)
{
  SlimLinearProcessorPrivate *priv;

  g_return_val_if_fail (SLIM_IS_LINEAR_PROCESSOR (self), FALSE);

  priv = slim_linear_processor_get_instance_private (self);
  return priv->prepared;
}

static const char *
slim_linear_processor_type_name (SlimLinearProcessor *self)
{
  const char *name = slim_processor_get_type_name (SLIM_PROCESSOR (self));

  return name != NULL ? name : G_OBJECT_TYPE_NAME (self);
}

char *
slim_linear_processor_describe (SlimLinearProcessor *self)
{
  SlimLinearProcessorClass *klass;

  g_return_val_if_fail (SLIM_IS_LINEAR_PROCESSOR (self), NULL);

  klass = SLIM_LINEAR_PROCESSOR_GET_CLASS (self);
  if (klass->describe != NULL)
    return klass->describe (self);
  return g_strdup (slim_linear_processor_type_name (self));
}

/* ---- SlimProcessor vfuncs ------------------------------------------- */

static gboolean
slim_linear_processor_validate (SlimProcessor *processor, GError **error)
{
  return slim_linear_processor_prepare (SLIM_LINEAR_PROCESSOR (processor), error);
}

static gboolean
slim_linear_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimLinearProcessor *self = SLIM_LINEAR_PROCESSOR (processor);
  SlimLinearProcessorPrivate *priv = slim_linear_processor_get_instance_private (self);
  SlimLinearProcessorClass *klass = SLIM_LINEAR_PROCESSOR_GET_CLASS (self);
  const char *const *names;

  if (!slim_linear_processor_prepare (self, error))
    return FALSE;
  /* decoder layers only: embeddings and lm_head stay FLOAT, unless the
   * subclass asked for the head's lm_head */
  if (slim_layer_get_index (layer) < 0
      && !(priv->visit_head && slim_layer_get_index (layer) == SLIM_LAYER_INDEX_HEAD))
    return TRUE;
  if (klass->process_linear == NULL)
    {
      g_set_error (error, SLIM_PLUGIN_ERROR, SLIM_PLUGIN_ERROR_INIT_FAILED,
                   "%s does not implement process_linear", G_OBJECT_TYPE_NAME (self));
      return FALSE;
    }
  names = slim_layer_get_linear_names (layer);
  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      SlimLinearClaim claim;

      /* taken first: a taken linear does not count as a pattern hit */
      if (slim_linear_processor_is_taken (layer, names[i]))
        continue;
      if (!slim_glob_list_match (priv->globs, names[i]))
        continue;
      if (!klass->process_linear (self, layer, names[i], error))
        return FALSE;
      claim.layer = layer;
      claim.module = g_strdup (names[i]);
      g_array_append_val (priv->claims, claim);
      g_hash_table_add (slim_linear_processor_get_taken (layer, TRUE), g_strdup (names[i]));
    }
  return TRUE;
}

static gboolean
slim_linear_processor_postprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimLinearProcessor *self = SLIM_LINEAR_PROCESSOR (processor);
  SlimLinearProcessorPrivate *priv = slim_linear_processor_get_instance_private (self);
  SlimLinearProcessorClass *klass = SLIM_LINEAR_PROCESSOR_GET_CLASS (self);
  GHashTable *taken = slim_linear_processor_get_taken (layer, FALSE);
  gboolean ok = TRUE;

  if (klass->finish_layer != NULL)
    ok = klass->finish_layer (self, layer, error);
  /* release this layer's linears (all of them, also after an error) */
  for (guint i = 0; i < priv->claims->len;)
    {
      SlimLinearClaim *claim = &g_array_index (priv->claims, SlimLinearClaim, i);

      if (claim->layer != layer)
        {
          i++;
          continue;
        }
      if (taken != NULL)
        g_hash_table_remove (taken, claim->module);
      g_array_remove_index (priv->claims, i);
    }
  return ok;
}

static gboolean
slim_linear_processor_post_run (SlimProcessor *processor, GError **error)
{
  SlimLinearProcessor *self = SLIM_LINEAR_PROCESSOR (processor);
  SlimLinearProcessorPrivate *priv = slim_linear_processor_get_instance_private (self);
  const char *which[] = { "include", "exclude" };
  g_autofree char *label = NULL;

  if (priv->globs == NULL)
    return TRUE;
  for (guint k = 0; k < 2; k++)
    {
      g_auto (GStrv) unmatched = k == 0 ? slim_glob_list_get_unmatched_include (priv->globs)
                                        : slim_glob_list_get_unmatched_exclude (priv->globs);
      g_autofree char *list = NULL;

      if (unmatched == NULL || unmatched[0] == NULL)
        continue;
      if (label == NULL)
        label = slim_linear_processor_describe (self);
      list = g_strjoinv ("', '", unmatched);
      g_warning ("%s: these %s patterns matched no module, please check that this is expected: "
                 "'%s'",
                 label, which[k], list);
    }
  return TRUE;
}

/* A subclass state needs both halves. */
static gboolean
slim_linear_processor_has_extra (SlimLinearProcessorClass *klass)
{
  return klass->save_extra != NULL && klass->restore_extra != NULL;
}

/* "(abab)" pattern hits, or "((abab)ay)" with the subclass's bytes. */
static GBytes *
slim_linear_processor_save_state (SlimProcessor *processor, GError **error)
{
  SlimLinearProcessor *self = SLIM_LINEAR_PROCESSOR (processor);
  SlimLinearProcessorPrivate *priv = slim_linear_processor_get_instance_private (self);
  SlimLinearProcessorClass *klass = SLIM_LINEAR_PROCESSOR_GET_CLASS (self);
  g_autoptr (GVariant) hits = NULL;
  g_autoptr (GBytes) extra = NULL;
  g_autoptr (GVariant) state = NULL;
  gconstpointer data;
  gsize n_bytes = 0;

  if (priv->claims->len > 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: the state cannot be saved in the middle of a layer",
                   slim_linear_processor_type_name (self));
      return NULL;
    }
  if (!slim_linear_processor_prepare (self, error))
    return NULL;
  hits = slim_glob_list_save_hits (priv->globs);
  if (!slim_linear_processor_has_extra (klass))
    return g_variant_get_data_as_bytes (hits);
  extra = klass->save_extra (self, error);
  if (extra == NULL)
    return NULL;
  data = g_bytes_get_data (extra, &n_bytes);
  state = g_variant_ref_sink (g_variant_new (
      "(@(abab)@ay)", hits, g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, n_bytes, 1)));
  return g_variant_get_data_as_bytes (state);
}

static gboolean
slim_linear_processor_restore_state (SlimProcessor *processor, GBytes *state, GError **error)
{
  SlimLinearProcessor *self = SLIM_LINEAR_PROCESSOR (processor);
  SlimLinearProcessorPrivate *priv = slim_linear_processor_get_instance_private (self);
  SlimLinearProcessorClass *klass = SLIM_LINEAR_PROCESSOR_GET_CLASS (self);
  g_autoptr (GVariant) all = NULL;
  g_autoptr (GVariant) hits = NULL;
  g_autoptr (GVariant) extra = NULL;
  g_autoptr (GBytes) extra_bytes = NULL;

  if (!slim_linear_processor_prepare (self, error))
    return FALSE;
  if (!slim_linear_processor_has_extra (klass))
    hits = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("(abab)"), state, FALSE));
  else
    {
      all = g_variant_ref_sink (
          g_variant_new_from_bytes (G_VARIANT_TYPE ("((abab)ay)"), state, FALSE));
      hits = g_variant_get_child_value (all, 0);
      extra = g_variant_get_child_value (all, 1);
    }
  if (!slim_glob_list_restore_hits (priv->globs, hits, error))
    {
      g_autofree char *label = slim_linear_processor_describe (self);
      g_prefix_error (error, "%s: ", label);
      return FALSE;
    }
  if (extra == NULL)
    return TRUE;
  extra_bytes = g_variant_get_data_as_bytes (extra);
  return klass->restore_extra (self, extra_bytes, error);
}

/* ---- GObject -------------------------------------------------------- */

static void
slim_linear_processor_finalize (GObject *object)
{
  SlimLinearProcessorPrivate *priv
      = slim_linear_processor_get_instance_private (SLIM_LINEAR_PROCESSOR (object));

  g_clear_pointer (&priv->globs, slim_glob_list_free);
  g_array_unref (priv->claims);
  G_OBJECT_CLASS (slim_linear_processor_parent_class)->finalize (object);
}

static void
slim_linear_processor_class_init (SlimLinearProcessorClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  object_class->finalize = slim_linear_processor_finalize;
  processor_class->validate = slim_linear_processor_validate;
  processor_class->preprocess = slim_linear_processor_preprocess;
  processor_class->postprocess = slim_linear_processor_postprocess;
  processor_class->post_run = slim_linear_processor_post_run;
  processor_class->save_state = slim_linear_processor_save_state;
  processor_class->restore_state = slim_linear_processor_restore_state;
  SLIM_PROPERTIES_INSTALL_PRIVATE (klass, slim_linear_processor_properties);
}

static void
slim_linear_processor_init (SlimLinearProcessor *self)
{
  SlimLinearProcessorPrivate *priv = slim_linear_processor_get_instance_private (self);

  priv->claims = g_array_new (FALSE, FALSE, sizeof (SlimLinearClaim));
  g_array_set_clear_func (priv->claims, (GDestroyNotify)slim_linear_claim_clear);
}

/**
 * slim_linear_processor_set_visit_head:
 * @self: a linear processor
 * @visit: whether preprocess also walks the head pseudo-layer
 *
 * With @visit, the head pseudo-layer's linear (lm_head) is selected like a
 * decoder layer's (include / exclude, taken); the subclass must be able to
 * finish it without a calibration forward (none runs through the head).
 */
void
slim_linear_processor_set_visit_head (SlimLinearProcessor *self, gboolean visit)
{
  g_return_if_fail (SLIM_IS_LINEAR_PROCESSOR (self));
  ((SlimLinearProcessorPrivate *)slim_linear_processor_get_instance_private (self))->visit_head
      = visit;
}
