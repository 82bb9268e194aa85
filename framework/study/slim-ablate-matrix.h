/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ablate-matrix.h: the matrix of `slimflow ablate`, a YAML file
 * naming a base pipeline and variants of it (docs/ablate.md):
 *
 *   base: ../dense-w8a8.yaml          # relative to the matrix file
 *   variants:
 *     - name: w8a8                    # the base as it is
 *     - name: w8a16
 *       config: ../dense-w8a16.yaml   # a whole other config
 *     - name: w8a8-sq
 *       insert: {at: "process[0]", entry: {type: smooth_quant, alpha: 0.5}}
 *     - name: w8a8-gptq
 *       set: {"process[0].qconfig.weight.method": "gptq"}   # change (or add) a field
 *     - name: w8a8-minmax
 *       replace: {"process[0]": {type: linear_quant, ...}}  # an existing node
 *     - name: no-sq
 *       config: ../dense-w8a8-smooth-quant.yaml
 *       remove: "process[0]"          # or a list of paths
 *
 * Paths are relative to `spec` (spec.process[i], spec.dataset, ...) and
 * name nodes of the variant's starting config (base or config).
 *
 * slim_ablate_matrix_load() checks everything it can without weights:
 * keys, names (unique, [A-Za-z0-9._-], not "float"), every edit's path,
 * conflicting edits in one variant (two on one node, or one inside a node
 * another replaces or removes), processor types of every entry a variant
 * writes (against the registry, at the matrix's line and column, with the
 * valid choices), and two variants giving the same config.  Every error
 * is a SLIM_CONFIG_ERROR starting with FILE:LINE:COL.  The pipelines
 * themselves are checked by the caller (slim_pipeline_check_data on
 * config_text).
 */
#pragma once

#include "slim-config.h"
#include "slim-registry.h"

G_BEGIN_DECLS

typedef struct
{
  char *name;
  char *description;   /* what the variant changes, one line */
  char *location;      /* FILE:LINE:COL of the variant in the matrix */
  char *config_text;   /* the variant's modelslim_v1 YAML */
  char *config_sha256; /* of config_text */
} SlimAblateVariant;

typedef struct
{
  char *path;
  char *sha256;        /* of the matrix file */
  GPtrArray *variants; /* (element-type SlimAblateVariant) */
} SlimAblateMatrix;

SlimAblateMatrix *
slim_ablate_matrix_load (SlimRegistry *registry, const char *path, GError **error);
void slim_ablate_matrix_free (SlimAblateMatrix *matrix);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimAblateMatrix, slim_ablate_matrix_free)

G_END_DECLS
