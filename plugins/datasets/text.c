/* SPDX-License-Identifier: Apache-2.0
 *
 * text.c: the "text" dataset: a plain UTF-8 text file (CRLF read as LF,
 * at most 1 GiB: slim_text_read_file in slim-text.h)
 * tokenized once, with BOS once at the start as the tokenizer asks, and
 * cut into consecutive windows of max-length tokens (2048 when
 * max-length is 0); the last, shorter window is kept.  max-samples keeps
 * the first windows.
 */
#include "slim-plugin.h"

/* Window length when max-length is 0 (the GPTQ protocol's context). */
#define SLIM_TEXT_DEFAULT_WINDOW 2048

#define SLIM_TYPE_TEXT_DATASET (slim_text_dataset_get_type ())
G_DECLARE_FINAL_TYPE (SlimTextDataset, slim_text_dataset, SLIM, TEXT_DATASET, SlimDataset)

struct _SlimTextDataset
{
  SlimDataset parent_instance;

  GArray *ids;     /* (n_ids) gint32: the whole tokenized text, kept windows only */
  GArray *starts;  /* (n_samples) gint64: first id of each window */
  GArray *lengths; /* (n_samples) gint64: ids in each window */
};

G_DEFINE_FINAL_TYPE (SlimTextDataset, slim_text_dataset, SLIM_TYPE_DATASET)

static gboolean
slim_text_dataset_load (SlimDataset *dataset, SlimTokenizer *tokenizer, GError **error)
{
  SlimTextDataset *self = SLIM_TEXT_DATASET (dataset);
  const char *path = slim_dataset_get_path (dataset);
  if (tokenizer == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: the text dataset needs the model's tokenizer", path);
      return FALSE;
    }
  g_autofree char *text = slim_text_read_file (path, SLIM_TEXT_DEFAULT_MAX_BYTES, error);
  if (text == NULL)
    return FALSE;
  GArray *ids = slim_tokenizer_encode (tokenizer, text, TRUE, error);
  if (ids == NULL)
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  if (ids->len == 0)
    {
      g_array_unref (ids);
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: the text gives no tokens", path);
      return FALSE;
    }
  gint64 window = slim_dataset_get_max_length (dataset);
  if (window == 0)
    window = SLIM_TEXT_DEFAULT_WINDOW;
  guint max_samples = slim_dataset_get_max_samples (dataset);
  for (gint64 start = 0; start < (gint64)ids->len; start += window)
    {
      if (max_samples > 0 && self->starts->len >= max_samples)
        break;
      gint64 length = MIN (window, (gint64)ids->len - start);
      g_array_append_val (self->starts, start);
      g_array_append_val (self->lengths, length);
    }
  /* Drop the ids no window uses. */
  gint64 n_used = 0;
  if (self->starts->len > 0)
    n_used = g_array_index (self->starts, gint64, self->starts->len - 1)
             + g_array_index (self->lengths, gint64, self->lengths->len - 1);
  g_array_set_size (ids, (guint)n_used);
  self->ids = ids;
  return TRUE;
}

static guint
slim_text_dataset_get_n_samples (SlimDataset *dataset)
{
  return SLIM_TEXT_DATASET (dataset)->starts->len;
}

static const gint32 *
slim_text_dataset_get_sample (SlimDataset *dataset, guint index, gint64 *out_n_tokens)
{
  SlimTextDataset *self = SLIM_TEXT_DATASET (dataset);
  g_return_val_if_fail (index < self->starts->len, NULL);
  *out_n_tokens = g_array_index (self->lengths, gint64, index);
  return (const gint32 *)(gpointer)self->ids->data + g_array_index (self->starts, gint64, index);
}

static void
slim_text_dataset_finalize (GObject *object)
{
  SlimTextDataset *self = SLIM_TEXT_DATASET (object);
  g_clear_pointer (&self->ids, g_array_unref);
  g_clear_pointer (&self->starts, g_array_unref);
  g_clear_pointer (&self->lengths, g_array_unref);
  G_OBJECT_CLASS (slim_text_dataset_parent_class)->finalize (object);
}

static void
slim_text_dataset_class_init (SlimTextDatasetClass *klass)
{
  SlimDatasetClass *dataset_class = SLIM_DATASET_CLASS (klass);
  G_OBJECT_CLASS (klass)->finalize = slim_text_dataset_finalize;
  dataset_class->load = slim_text_dataset_load;
  dataset_class->get_n_samples = slim_text_dataset_get_n_samples;
  dataset_class->get_sample = slim_text_dataset_get_sample;
}

static void
slim_text_dataset_init (SlimTextDataset *self)
{
  self->starts = g_array_new (FALSE, FALSE, sizeof (gint64));
  self->lengths = g_array_new (FALSE, FALSE, sizeof (gint64));
}

SLIM_PLUGIN_DEFINE (dataset,
                    text,
                    SLIM_PLUGIN_NO_ALIASES,
                    "A plain text file cut into windows of max-length tokens (2048 when unset)",
                    slim_text_dataset_get_type)
