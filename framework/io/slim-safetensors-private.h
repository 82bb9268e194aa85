/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-safetensors-private.h: the safetensors header parser
 * (slim-safetensors-header.c), exposed for the reader, the tests and the
 * fuzz target (it parses from memory, no file needed), and helpers shared
 * by the reader and the writer.
 */
#pragma once

#include <glib.h>

#include "slim-tensor.h"

G_BEGIN_DECLS

typedef struct
{
  char *name;
  SlimDType dtype;
  guint n_dims;
  gint64 shape[SLIM_TENSOR_MAX_DIMS]; /* (n_dims) in elements */
  guint64 begin_bytes;                /* offsets relative to the data section */
  guint64 end_bytes;
} SlimSafetensorsEntry;

typedef struct
{
  guint64 header_bytes;      /* length of the JSON text */
  guint64 data_offset_bytes; /* 8 + header_bytes: where the data section starts */
  guint64 data_bytes;        /* file_bytes - data_offset_bytes */
  GPtrArray *entries;        /* (element-type SlimSafetensorsEntry) sorted by name */
  GHashTable *metadata;      /* __metadata__: string -> string */
} SlimSafetensorsHeader;

/* Parses and validates the header of a safetensors file (the fuzz target's
 * entry point).  data holds the first n_bytes of a file of file_bytes bytes
 * (n_bytes <= file_bytes; the whole header must be inside data).  Every
 * check of the format is done here: header length, UTF-8, strict JSON,
 * duplicate keys, known dtypes, shapes without overflow, offsets inside the
 * data section, equal to dtype x shape and not overlapping.  Allocates only
 * the entries and metadata it returns.  Errors are SLIM_FORMAT_ERROR. */
SlimSafetensorsHeader *slim_safetensors_parse_header (const guint8 *data,
                                                      gsize n_bytes,
                                                      guint64 file_bytes,
                                                      GError **error);
void slim_safetensors_header_free (SlimSafetensorsHeader *header);
/* The entry named name, or NULL. */
const SlimSafetensorsEntry *slim_safetensors_header_lookup (const SlimSafetensorsHeader *header,
                                                            const char *name);

/* Checks JSON text before json-glib parses it (index files, config.json):
 * nesting at most max_depth (json-glib's parser recurses), no comments or
 * single quotes (json-glib accepts them), no integer beyond int64 (json-glib
 * wraps them), and counts the members of all objects (the ':' outside
 * strings), so a caller can detect duplicate keys, which json-glib merges. */
gboolean slim_safetensors_json_prescan (
    const char *text, gsize n_bytes, guint max_depth, guint64 *out_n_members, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimSafetensorsHeader, slim_safetensors_header_free)

G_END_DECLS
