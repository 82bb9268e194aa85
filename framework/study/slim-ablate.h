/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ablate.h: running an ablation matrix (slimflow ablate).
 *
 * slim_ablate_prepare() writes every variant's config to
 * OUT/configs/NAME.yaml and checks it as `slimflow validate` would, before
 * any weight is read: a failure is a configuration error (the CLI exits
 * 2) naming the matrix location of the variant.
 *
 * slim_ablate_run() then:
 *  1. tokenizes the evaluation text once and runs the float model on it
 *     once, keeping its logits as the reference of every variant (when
 *     they fit in SLIM_ABLATE_MAX_REFERENCE_BYTES; beyond that the float
 *     model runs again beside each variant and a note says so);
 *  2. per variant: quantizes in-process into OUT/models/NAME (calibration
 *     sets are tokenized once and shared by the variants naming the same
 *     file), loads the result as `slimflow eval` does and scores it
 *     against the reference (PPL, KL, top-1), measures wall time, peak
 *     resident memory (VmHWM, reset before the variant through
 *     /proc/self/clear_refs) and output size, writes
 *     OUT/variants/NAME.json, removes the quantized folder unless
 *     keep_models;
 *  3. writes OUT/results.{json,csv,md,svg} (slim-ablate-report.h).
 * With resume, a variant whose OUT/variants/NAME.json was written for the
 * same config, model, text, ctx, calibration limits and thread count is
 * read back instead of run again.
 */
#pragma once

#include "slim-ablate-matrix.h"
#include "slim-ablate-report.h"
#include "slim-registry.h"

G_BEGIN_DECLS

#define SLIM_ABLATE_MAX_REFERENCE_BYTES (G_GUINT64_CONSTANT (1) << 30)

typedef struct
{
  const char *model_path;
  const char *text_path;
  const char *out_dir;
  const char *calib_dir; /* (nullable) */
  gint64 n_ctx;
  guint max_samples; /* calibration limits, 0 = none */
  guint max_length;
  guint64 max_memory_bytes;
  gboolean resume;
  gboolean keep_models;
  gboolean verbose; /* one line per variant on stderr */
} SlimAblateOptions;

typedef struct _SlimAblate SlimAblate;

SlimAblate *slim_ablate_prepare (SlimRegistry *registry,
                                 SlimAblateMatrix *matrix,
                                 const SlimAblateOptions *options,
                                 GError **error);
/* Returns: (transfer full): the results, also written to OUT. */
SlimAblateResults *slim_ablate_run (SlimAblate *self, GError **error);
void slim_ablate_free (SlimAblate *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimAblate, slim_ablate_free)

/* Peak resident memory helpers (Linux /proc; -1 / FALSE elsewhere). */
gboolean slim_ablate_reset_peak_memory (void);
double slim_ablate_peak_memory_mib (void);

/* Bytes of the regular files under dir, recursively. */
guint64 slim_ablate_dir_size (const char *dir);

/* Removes dir and everything below it (no error when it does not exist). */
gboolean slim_ablate_remove_tree (const char *dir, GError **error);

G_END_DECLS
