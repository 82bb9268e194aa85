/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-json.h: writing JSON strings by hand, for the files whose bytes
 * slimflow fixes itself (safetensors headers and indexes, the ascend
 * description in Python's json.dump format, JSON schemas).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * slim_json_append_string:
 * @out: where to append
 * @text: UTF-8 text
 * @ascii_only: escape every non-ASCII character as \uXXXX (UTF-16 surrogate
 *   pairs above U+FFFF), as Python's json.dump with ensure_ascii; FALSE
 *   copies it as UTF-8
 *
 * Appends @text as a quoted JSON string: `"` and `\` escaped, \n \r \t \b
 * \f as such, other control characters as \u00XX.  A byte that is not
 * UTF-8 is written as \u00XX (callers pass validated text).
 */
void slim_json_append_string (GString *out, const char *text, gboolean ascii_only);

G_END_DECLS
