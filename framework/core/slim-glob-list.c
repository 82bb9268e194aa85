/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-glob-list.c: SlimGlobList, an include and an exclude list of
 * SlimGlob patterns with a record of which patterns have matched (what the
 * unmatched-pattern warnings are made of, and what a checkpoint saves).
 */
#include "slim-glob-list.h"

#include "slim-error.h"

#include <string.h>

struct _SlimGlobList
{
  GPtrArray *include;    /* (n_include) SlimGlob* */
  GPtrArray *exclude;    /* (n_exclude) SlimGlob* */
  gboolean *include_hit; /* (n_include) */
  gboolean *exclude_hit; /* (n_exclude) */
};

static GPtrArray *
slim_glob_compile_all (const char *const *patterns, const char *what, GError **error)
{
  g_autoptr (GPtrArray) globs = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_glob_free);

  for (gsize k = 0; patterns != NULL && patterns[k] != NULL; k++)
    {
      SlimGlob *glob = slim_glob_new (patterns[k], error);

      if (glob == NULL)
        {
          g_prefix_error (error, "%s[%" G_GSIZE_FORMAT "]: ", what, k);
          return NULL;
        }
      g_ptr_array_add (globs, glob);
    }
  return g_steal_pointer (&globs);
}

/**
 * slim_glob_list_new:
 * @include: (nullable) (array zero-terminated=1): include patterns; %NULL
 *   means the default `["*"]`, an empty array selects nothing
 * @exclude: (nullable) (array zero-terminated=1): exclude patterns
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the list, free with
 *   slim_glob_list_free(); %NULL if a pattern is invalid (see slim_glob_new())
 */
SlimGlobList *
slim_glob_list_new (const char *const *include, const char *const *exclude, GError **error)
{
  static const char *const default_include[] = { "*", NULL };
  g_autoptr (GPtrArray) inc = NULL;
  g_autoptr (GPtrArray) exc = NULL;
  SlimGlobList *list;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  inc = slim_glob_compile_all (include != NULL ? include : default_include, "include", error);
  if (inc == NULL)
    return NULL;
  exc = slim_glob_compile_all (exclude, "exclude", error);
  if (exc == NULL)
    return NULL;

  list = g_new0 (SlimGlobList, 1);
  list->include = g_steal_pointer (&inc);
  list->exclude = g_steal_pointer (&exc);
  list->include_hit = g_new0 (gboolean, list->include->len + 1);
  list->exclude_hit = g_new0 (gboolean, list->exclude->len + 1);
  return list;
}

/**
 * slim_glob_list_free:
 * @list: (nullable) (transfer full): a list
 */
void
slim_glob_list_free (SlimGlobList *list)
{
  if (list == NULL)
    return;
  g_ptr_array_unref (list->include);
  g_ptr_array_unref (list->exclude);
  g_free (list->include_hit);
  g_free (list->exclude_hit);
  g_free (list);
}

/**
 * slim_glob_list_match:
 * @list: a list
 * @name: a full dotted module name
 *
 * Whether @name matches an include pattern and no exclude pattern. Every
 * pattern that matches is recorded for slim_glob_list_get_unmatched_include()
 * (all include patterns are tried, not only the first that matches) and,
 * for included names only, slim_glob_list_get_unmatched_exclude().
 *
 * Returns: whether @name is selected
 */
gboolean
slim_glob_list_match (SlimGlobList *list, const char *name)
{
  gboolean included = FALSE;
  gboolean excluded = FALSE;

  g_return_val_if_fail (list != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  for (guint k = 0; k < list->include->len; k++)
    if (slim_glob_matches (list->include->pdata[k], name))
      {
        list->include_hit[k] = TRUE;
        included = TRUE;
      }
  if (!included)
    return FALSE;
  for (guint k = 0; k < list->exclude->len; k++)
    if (slim_glob_matches (list->exclude->pdata[k], name))
      {
        list->exclude_hit[k] = TRUE;
        excluded = TRUE;
      }
  return !excluded;
}

static char **
slim_glob_list_unmatched (GPtrArray *globs, const gboolean *hit)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  for (guint k = 0; k < globs->len; k++)
    {
      const char *pattern = slim_glob_get_pattern (globs->pdata[k]);

      /* msModelSlim never warns about the catch-all "*" */
      if (!hit[k] && strcmp (pattern, "*") != 0)
        g_strv_builder_add (builder, pattern);
    }
  return g_strv_builder_end (builder);
}

/**
 * slim_glob_list_get_unmatched_include:
 * @list: a list
 *
 * Returns: (transfer full) (array zero-terminated=1): the include patterns
 *   (other than "*") that no name passed to slim_glob_list_match() matched
 */
char **
slim_glob_list_get_unmatched_include (const SlimGlobList *list)
{
  g_return_val_if_fail (list != NULL, NULL);
  return slim_glob_list_unmatched (list->include, list->include_hit);
}

/**
 * slim_glob_list_get_unmatched_exclude:
 * @list: a list
 *
 * Returns: (transfer full) (array zero-terminated=1): the exclude patterns
 *   (other than "*") that matched no included name
 */
char **
slim_glob_list_get_unmatched_exclude (const SlimGlobList *list)
{
  g_return_val_if_fail (list != NULL, NULL);
  return slim_glob_list_unmatched (list->exclude, list->exclude_hit);
}

/**
 * slim_glob_list_save_hits:
 * @list: a list
 *
 * Which patterns have matched so far (what the unmatched-pattern warnings
 * are made of), for a checkpoint.
 *
 * Returns: (transfer full): a GVariant "(abab)": include hits, exclude
 *   hits, in pattern order; floating reference sunk
 */
GVariant *
slim_glob_list_save_hits (const SlimGlobList *list)
{
  GVariantBuilder include, exclude;

  g_return_val_if_fail (list != NULL, NULL);
  g_variant_builder_init (&include, G_VARIANT_TYPE ("ab"));
  for (guint k = 0; k < list->include->len; k++)
    g_variant_builder_add (&include, "b", list->include_hit[k]);
  g_variant_builder_init (&exclude, G_VARIANT_TYPE ("ab"));
  for (guint k = 0; k < list->exclude->len; k++)
    g_variant_builder_add (&exclude, "b", list->exclude_hit[k]);
  return g_variant_ref_sink (g_variant_new ("(abab)", &include, &exclude));
}

/**
 * slim_glob_list_restore_hits:
 * @list: a list built from the same patterns
 * @hits: what slim_glob_list_save_hits() returned
 * @error: return location for a #GError
 *
 * Returns: TRUE on success; FALSE (SLIM_FORMAT_ERROR_INVALID) when @hits
 *   does not fit the list's patterns.
 */
gboolean
slim_glob_list_restore_hits (SlimGlobList *list, GVariant *hits, GError **error)
{
  g_autoptr (GVariant) include = NULL;
  g_autoptr (GVariant) exclude = NULL;
  gsize n_inc, n_exc;

  g_return_val_if_fail (list != NULL && hits != NULL, FALSE);
  if (!g_variant_is_of_type (hits, G_VARIANT_TYPE ("(abab)")))
    goto bad;
  g_variant_get (hits, "(@ab@ab)", &include, &exclude);
  /* "b" is one byte in a GVariant and gboolean an int: one by one */
  n_inc = g_variant_n_children (include);
  n_exc = g_variant_n_children (exclude);
  if (n_inc != list->include->len || n_exc != list->exclude->len)
    goto bad;
  for (gsize k = 0; k < n_inc; k++)
    g_variant_get_child (include, k, "b", &list->include_hit[k]);
  for (gsize k = 0; k < n_exc; k++)
    g_variant_get_child (exclude, k, "b", &list->exclude_hit[k]);
  return TRUE;

bad:
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "the saved pattern matches do not fit the include/exclude lists");
  return FALSE;
}
