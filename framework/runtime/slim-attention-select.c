/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-attention-select.c: the attention modules a processor takes (see
 * slim-attention-select.h).
 */
#include "slim-attention-select.h"

#include <string.h>

struct _SlimAttentionSelect
{
  SlimGlobList *globs;
};

SlimAttentionSelect *
slim_attention_select_new (const char *const *include, const char *const *exclude, GError **error)
{
  static const char *const all[] = { "*", NULL };
  static const char *const none[] = { NULL };
  SlimGlobList *globs;
  SlimAttentionSelect *self;

  globs = slim_glob_list_new (include != NULL && include[0] != NULL ? include : all,
                              exclude != NULL ? exclude : none, error);
  if (globs == NULL)
    return NULL;
  self = g_new0 (SlimAttentionSelect, 1);
  self->globs = globs;
  return self;
}

void
slim_attention_select_free (SlimAttentionSelect *self)
{
  if (self == NULL)
    return;
  slim_glob_list_free (self->globs);
  g_free (self);
}

char *
slim_attention_select_layer (SlimAttentionSelect *self, SlimLayer *layer)
{
  char *attn;

  g_return_val_if_fail (self != NULL && SLIM_IS_LAYER (layer), NULL);

  if (slim_layer_get_index (layer) < 0)
    return NULL;
  attn = g_strconcat (slim_layer_get_prefix (layer), ".self_attn", NULL);
  if (!slim_glob_list_match (self->globs, attn))
    g_clear_pointer (&attn, g_free);
  return attn;
}

void
slim_attention_select_warn_unmatched (SlimAttentionSelect *self, const char *label)
{
  const char *which[] = { "include", "exclude" };

  g_return_if_fail (self != NULL);

  for (guint k = 0; k < 2; k++)
    {
      g_auto (GStrv) unmatched = k == 0 ? slim_glob_list_get_unmatched_include (self->globs)
                                        : slim_glob_list_get_unmatched_exclude (self->globs);
      g_autoptr (GPtrArray) named = g_ptr_array_new ();
      g_autofree char *list = NULL;

      for (guint i = 0; unmatched != NULL && unmatched[i] != NULL; i++)
        if (strcmp (unmatched[i], "*") != 0)
          g_ptr_array_add (named, unmatched[i]);
      if (named->len == 0)
        continue;
      g_ptr_array_add (named, NULL);
      list = g_strjoinv ("', '", (char **)named->pdata);
      g_warning ("%s: these %s patterns matched no attention module, please check that this is "
                 "expected: '%s'",
                 label, which[k], list);
    }
}

GBytes *
slim_attention_select_save (SlimAttentionSelect *self)
{
  g_autoptr (GVariant) hits = NULL;

  g_return_val_if_fail (self != NULL, NULL);
  hits = slim_glob_list_save_hits (self->globs); /* not floating */
  return g_variant_get_data_as_bytes (hits);
}

gboolean
slim_attention_select_restore (SlimAttentionSelect *self, GBytes *state, GError **error)
{
  g_autoptr (GVariant) hits = NULL;

  g_return_val_if_fail (self != NULL && state != NULL, FALSE);
  hits = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("(abab)"), state, FALSE));
  return slim_glob_list_restore_hits (self->globs, hits, error);
}
