/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz-safetensors.c: libFuzzer target for the safetensors header parser.
 * The input is a whole file in memory.  A header the parser accepts must
 * keep its promises: every tensor's byte range lies in the data section and
 * equals dtype x shape, and no two non-empty ranges overlap.  Each accepted
 * tensor is then viewed and converted to float32, so ASan catches any range
 * the validation let through.  A rejected input must carry a
 * SLIM_FORMAT_ERROR.  Violations abort (this harness only).
 */
#include <stdint.h>
#include <stdlib.h>

#include "slim-error.h"
#include "slim-safetensors-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* Convert at most this many bytes per tensor (keeps each run fast). */
#define FUZZ_MAX_CONVERT_BYTES (1 << 20)

static void
check_entry (const SlimSafetensorsHeader *header, const SlimSafetensorsEntry *entry, GBytes *bytes)
{
  guint64 n_elements = 1, n_bytes = 0;
  g_autoptr (GError) error = NULL;
  SlimTensor *view, *converted;

  if (entry->n_dims > SLIM_TENSOR_MAX_DIMS || entry->begin_bytes > entry->end_bytes
      || entry->end_bytes > header->data_bytes
      || header->data_offset_bytes + header->data_bytes != g_bytes_get_size (bytes))
    abort ();
  for (guint i = 0; i < entry->n_dims; i++)
    {
      if (entry->shape[i] < 0)
        abort ();
      if (!g_uint64_checked_mul (&n_elements, n_elements, (guint64)entry->shape[i]))
        abort ();
    }
  if (!slim_dtype_n_bytes (entry->dtype, n_elements, &n_bytes)
      || n_bytes != entry->end_bytes - entry->begin_bytes)
    abort ();

  view = slim_tensor_new_view (entry->name, entry->dtype, entry->n_dims, entry->shape, bytes,
                               (gsize)(header->data_offset_bytes + entry->begin_bytes), &error);
  if (view == NULL)
    {
      /* only the 1 TiB tensor cap may refuse what the parser accepted */
      if (!g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE))
        abort ();
      return;
    }
  if (n_bytes <= FUZZ_MAX_CONVERT_BYTES)
    {
      converted = slim_tensor_to_f32 (view, NULL);
      if (converted == NULL)
        abort ();
      slim_tensor_unref (converted);
    }
  slim_tensor_unref (view);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  SlimSafetensorsHeader *header;
  GBytes *bytes;

  header = slim_safetensors_parse_header (data, size, size, &error);
  if (header == NULL)
    {
      if (error == NULL || error->domain != SLIM_FORMAT_ERROR)
        abort ();
      return 0;
    }
  if (error != NULL)
    abort ();
  /* a copy of exactly size bytes: reads past it are caught */
  bytes = g_bytes_new (data, size);
  for (guint i = 0; i < header->entries->len; i++)
    {
      const SlimSafetensorsEntry *entry = g_ptr_array_index (header->entries, i);
      if (slim_safetensors_header_lookup (header, entry->name) != entry)
        abort ();
      check_entry (header, entry, bytes);
    }
  /* non-empty ranges are pairwise disjoint */
  for (guint i = 0; i < header->entries->len; i++)
    for (guint j = i + 1; j < header->entries->len && j < i + 64; j++)
      {
        const SlimSafetensorsEntry *a = g_ptr_array_index (header->entries, i);
        const SlimSafetensorsEntry *b = g_ptr_array_index (header->entries, j);
        if (a->begin_bytes < a->end_bytes && b->begin_bytes < b->end_bytes
            && a->begin_bytes < b->end_bytes && b->begin_bytes < a->end_bytes)
          abort ();
      }
  g_bytes_unref (bytes);
  slim_safetensors_header_free (header);
  return 0;
}
