/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-svg.h: the two pictures of the study commands, as standalone SVG
 * text (no script, no external font or file; renders with rsvg-convert
 * or a browser):
 *
 *  - a bar chart of ablation rows: one row per variant, perplexity on the
 *    left (bars start at the float model's perplexity: their length is
 *    the loss of quality; the value and the change in % are printed), the
 *    KL divergence to the float model on the right (bars from 0);
 *  - a heat map of per-linear errors: layers down, linear kinds across,
 *    white (0) to red (the largest value), each cell printing its value.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  const char *label;
  double perplexity;
  double kl;
  gboolean is_float; /* the reference row */
} SlimSvgBar;

/* rows (n_rows >= 1); float_ppl is the perplexity bars start from. */
char *
slim_svg_ablate_chart (const char *title, const SlimSvgBar *rows, guint n_rows, double float_ppl);

/* values (n_layers, n_columns) row-major, NAN for a linear left float
 * (drawn grey, "float"); column_names (n_columns). */
char *slim_svg_heat_map (const char *title,
                         const double *values,
                         guint n_layers,
                         const char *const *column_names,
                         guint n_columns);

G_END_DECLS
