/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-glob-list.h: SlimGlobList, the include and exclude pattern lists of
 * a processor config (slim-glob.h has the pattern syntax), remembering
 * which patterns matched so unused ones can be reported and a resumed run
 * reports the same.
 */
#pragma once

#include <glib.h>
#include "slim-glob.h"

G_BEGIN_DECLS

/* An include list and an exclude list, as linear_quant's `include` and
 * `exclude`: a name is selected when it matches some include pattern and
 * no exclude pattern (exclude wins). */
typedef struct _SlimGlobList SlimGlobList;

SlimGlobList *
slim_glob_list_new (const char *const *include, const char *const *exclude, GError **error);
void slim_glob_list_free (SlimGlobList *list);
gboolean slim_glob_list_match (SlimGlobList *list, const char *name);
char **slim_glob_list_get_unmatched_include (const SlimGlobList *list);
char **slim_glob_list_get_unmatched_exclude (const SlimGlobList *list);
/* The hits behind those lists, for checkpoints: a GVariant "(abab)". */
GVariant *slim_glob_list_save_hits (const SlimGlobList *list);
gboolean slim_glob_list_restore_hits (SlimGlobList *list, GVariant *hits, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimGlobList, slim_glob_list_free)

G_END_DECLS
