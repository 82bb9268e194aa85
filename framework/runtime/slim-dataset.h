/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-dataset.h: abstract base class of the calibration-data plugins.
 *
 * A dataset reads the file named by its "path" property and turns it into
 * token-id samples with a tokenizer (slim_dataset_load).  After loading,
 * samples are addressed by index; each is a read-only array of gint32
 * token ids owned by the dataset.  The base class owns the three
 * properties every dataset shares:
 *
 *   path         string  file to read (required by load)
 *   max-samples  guint   keep at most this many samples; 0 = all
 *   max-length   guint   truncate every sample to this many tokens; 0 = no limit
 *
 * Subclasses honour max-samples and max-length in their load vfunc and
 * drop samples that tokenize to nothing: every sample has at least one
 * token and at most max-length (when set).
 */
#pragma once

#include <glib-object.h>
#include "slim-tokenizer.h"

G_BEGIN_DECLS

#define SLIM_TYPE_DATASET (slim_dataset_get_type ())
G_DECLARE_DERIVABLE_TYPE (SlimDataset, slim_dataset, SLIM, DATASET, GObject)

/**
 * SlimDatasetClass:
 * @load: reads #SlimDataset:path and tokenizes it with @tokenizer (which
 *   may be NULL: fail with an error if one is needed); returns FALSE and
 *   sets error on failure (required).
 * @get_n_samples: number of samples after load (required).
 * @get_sample: sample @index (< n_samples) as token ids owned by the
 *   dataset, its length in *out_n_tokens (required).
 */
struct _SlimDatasetClass
{
  GObjectClass parent_class;

  gboolean (*load) (SlimDataset *self, SlimTokenizer *tokenizer, GError **error);
  guint (*get_n_samples) (SlimDataset *self);
  const gint32 *(*get_sample) (SlimDataset *self, guint index, gint64 *out_n_tokens);
};

/* Property accessors (the base class stores them); path is transfer none
 * and nullable. */
const char *slim_dataset_get_path (SlimDataset *self);
guint slim_dataset_get_max_samples (SlimDataset *self);
guint slim_dataset_get_max_length (SlimDataset *self);

/**
 * slim_dataset_load:
 * @self: a dataset
 * @tokenizer: (transfer none) (nullable): the model's tokenizer; a dataset
 *   of text fails with an error without one
 * @error: return location for a GError
 *
 * Calls the load vfunc, once.  Fails when no path is set, a required
 * vfunc is missing, the dataset is loaded already, or the plugin fails (a
 * vfunc that breaks the "error set iff FALSE" rule triggers a g_critical
 * and a generic SLIM_PIPELINE_ERROR_FAILED).
 *
 * Returns: TRUE on success; FALSE with @error set.
 */
gboolean slim_dataset_load (SlimDataset *self, SlimTokenizer *tokenizer, GError **error);
gboolean slim_dataset_is_loaded (SlimDataset *self);
/* 0 before a successful load. */
guint slim_dataset_get_n_samples (SlimDataset *self);

/**
 * slim_dataset_get_sample:
 * @self: a loaded dataset
 * @index: sample index, < slim_dataset_get_n_samples()
 * @out_n_tokens: (out): the sample's length in tokens (>= 1)
 *
 * Returns: (transfer none) (array length=out_n_tokens): the sample's token
 *   ids, owned by the dataset and valid while it lives.
 */
const gint32 *slim_dataset_get_sample (SlimDataset *self, guint index, gint64 *out_n_tokens);

/* The YAML type name ("jsonl") and description the plugin registered
 * with; NULL for a type that was never registered.  transfer none. */
const char *slim_dataset_get_type_name (SlimDataset *self);
const char *slim_dataset_get_description (SlimDataset *self);

G_END_DECLS
