/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ablate-report.h: the rows of an ablation and the files they are
 * written to: results.json (everything, with the provenance needed to
 * reproduce the run), results.csv, results.md (a Markdown table) and
 * results.svg (slim-svg.h).  One row per variant, the float model first.
 *
 * delta_ppl = perplexity - float perplexity (absolute and in % of the
 * float one).  Wall time and peak memory are measurements of this run and
 * differ between runs; every other figure is a function of the inputs
 * recorded in the provenance (same thread count: same numbers).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  char *name;
  char *description;
  char *config_sha256;  /* NULL for the float row */
  char *dataset_sha256; /* calibration token ids; NULL when none */
  gboolean is_float;
  gboolean resumed; /* read back from an interrupted run (--resume) */
  double perplexity;
  double kl;
  double top1;
  double wall_s;
  double peak_mib;      /* peak resident memory of the process during the row; < 0 unknown */
  guint64 output_bytes; /* size of the quantized folder (float: the model folder) */
} SlimAblateRow;

typedef struct
{
  char *slimflow_version;
  char *matrix_path;
  char *matrix_sha256;
  char *model_path;
  char *model_sha256;
  char *text_path;
  char *text_sha256; /* of the evaluation token ids */
  gint64 n_ctx;
  gint64 n_tokens;
  gint64 n_predictions;
  gint n_threads;
  guint max_samples;
  guint max_length;
  GPtrArray *rows; /* (element-type SlimAblateRow) */
} SlimAblateResults;

SlimAblateResults *slim_ablate_results_new (void);
void slim_ablate_results_free (SlimAblateResults *results);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimAblateResults, slim_ablate_results_free)
void slim_ablate_row_free (SlimAblateRow *row);

/* One row as a JSON object text (the per-variant resume record) and
 * back; NULL with a SLIM_FORMAT_ERROR on a malformed record. */
char *slim_ablate_row_to_json (const SlimAblateRow *row);
SlimAblateRow *slim_ablate_row_from_json (const char *text, GError **error);

/* Writes results.json, results.csv, results.md and results.svg in dir. */
gboolean
slim_ablate_results_write (const SlimAblateResults *results, const char *dir, GError **error);

G_END_DECLS
