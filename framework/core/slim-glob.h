/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-glob.h: SlimGlob, a module-name pattern of an include/exclude list
 * (the lists are SlimGlobList, slim-glob-list.h), with the semantics of
 * msModelSlim's `wcmatch.fnmatch(name, pattern, flags=BRACE)`
 * (modelslim-v1-spec.md 2.1):
 *
 *   - an exact string comparison is tried first (so "a[0]" matches itself);
 *   - `*` matches any run of characters, dots included; `?` one character;
 *   - `[abc]`, `[a-z]`, `[!abc]` / `[^abc]`, POSIX `[[:digit:]]` classes;
 *     `\x` makes x literal; an unclosed `[` is a literal `[`;
 *   - a name starting with `.` is only matched by a pattern starting with a
 *     literal `.` (wcmatch's default, no DOTMATCH);
 *   - `{a,b}` brace expansion (nested), and bash sequences `{0..3}`,
 *     `{00..10..2}`, `{a..e}`, applied before anything else.
 *
 * Patterns come from user configs and are treated as untrusted: the length,
 * the number of brace groups and the number of expanded patterns are capped
 * (an over-limit pattern is an error, never a silent truncation), and each
 * expanded pattern is matched by an iterative matcher in O(len(name) *
 * len(pattern)) time: there is no exponential backtracking.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Longest pattern accepted, in bytes. */
#define SLIM_GLOB_MAX_PATTERN_BYTES 4096
/* Most patterns one brace expansion may produce (wcmatch's default limit). */
#define SLIM_GLOB_MAX_EXPANSIONS 1000
/* Most unescaped `{` one pattern may contain. */
#define SLIM_GLOB_MAX_BRACE_GROUPS 64

typedef struct _SlimGlob SlimGlob;

SlimGlob *slim_glob_new (const char *pattern, GError **error);
void slim_glob_free (SlimGlob *glob);
gboolean slim_glob_matches (const SlimGlob *glob, const char *name);
const char *slim_glob_get_pattern (const SlimGlob *glob);
guint slim_glob_get_n_expansions (const SlimGlob *glob);

gboolean slim_glob_match (const char *pattern, const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimGlob, slim_glob_free)

G_END_DECLS
