/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-text.h: reading a plain text file (a calibration or evaluation
 * corpus) into memory, size-checked, with CRLF line ends turned into LF.
 * Used by the "text" dataset and `slimflow eval`.  UTF-8 validity is left
 * to the tokenizer, which checks it (slim_tokenizer_encode).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Bound on a text file its callers accept (untrusted input): 1 GiB. */
#define SLIM_TEXT_DEFAULT_MAX_BYTES ((gsize)1 << 30)

char *slim_text_read_file (const char *path, gsize max_bytes, GError **error);

G_END_DECLS
