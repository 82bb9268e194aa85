/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-svg.c: the ablation chart and the sensitivity heat map
 * (slim-svg.h).  Coordinates are in px; numbers are written with the C
 * locale (g_ascii_dtostr via "%.*f" under LC_NUMERIC=C in the CLI).
 */
#include "slim-svg.h"

#include <math.h>

#define SLIM_SVG_ROW_H 24
#define SLIM_SVG_LABEL_W 230
#define SLIM_SVG_PANEL_W 360
#define SLIM_SVG_GAP 40
#define SLIM_SVG_TOP 70

static void
svg_begin (GString *s, double width, double height, const char *title)
{
  g_autofree char *escaped = g_markup_escape_text (title, -1);

  g_string_append_printf (
      s,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
      "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"13\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"12\" y=\"24\" font-size=\"16\" font-weight=\"bold\">%s</text>\n",
      width, height, width, height, escaped);
}

static void
svg_text (GString *s, double x, double y, const char *anchor, const char *fill, const char *text)
{
  g_autofree char *escaped = g_markup_escape_text (text, -1);

  g_string_append_printf (s,
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"%s\">%s</text>\n",
                          x, y, anchor, fill, escaped);
}

char *
slim_svg_ablate_chart (const char *title, const SlimSvgBar *rows, guint n_rows, double float_ppl)
{
  GString *s = g_string_new (NULL);
  double max_dppl = 0.0, max_kl = 0.0;
  double x_ppl = SLIM_SVG_LABEL_W, x_kl = SLIM_SVG_LABEL_W + SLIM_SVG_PANEL_W + SLIM_SVG_GAP;
  double bar_w = SLIM_SVG_PANEL_W - 110; /* room for the value text */
  double height = SLIM_SVG_TOP + n_rows * SLIM_SVG_ROW_H + 40;

  g_return_val_if_fail (rows != NULL && n_rows > 0, NULL);
  for (guint i = 0; i < n_rows; i++)
    {
      max_dppl = MAX (max_dppl, rows[i].perplexity - float_ppl);
      max_kl = MAX (max_kl, rows[i].kl);
    }
  svg_begin (s, x_kl + SLIM_SVG_PANEL_W + 10, height, title);
  {
    g_autofree char *head
        = g_strdup_printf ("perplexity (bar: increase over float %.4f)", float_ppl);
    svg_text (s, x_ppl, SLIM_SVG_TOP - 20, "start", "black", head);
    svg_text (s, x_kl, SLIM_SVG_TOP - 20, "start", "black", "KL(float || variant), nats");
  }
  for (guint i = 0; i < n_rows; i++)
    {
      const SlimSvgBar *r = &rows[i];
      double y = SLIM_SVG_TOP + i * SLIM_SVG_ROW_H;
      double dppl = MAX (r->perplexity - float_ppl, 0.0);
      double w_ppl = max_dppl > 0 ? bar_w * dppl / max_dppl : 0.0;
      double w_kl = max_kl > 0 ? bar_w * r->kl / max_kl : 0.0;
      g_autofree char *ppl_text = NULL;
      g_autofree char *kl_text = g_strdup_printf ("%.5f", r->kl);

      if (i % 2 == 1)
        g_string_append_printf (s,
                                "<rect x=\"0\" y=\"%.1f\" width=\"100%%\" height=\"%d\" "
                                "fill=\"#f3f3f3\"/>\n",
                                y, SLIM_SVG_ROW_H);
      if (r->is_float)
        ppl_text = g_strdup_printf ("%.4f (float)", r->perplexity);
      else
        ppl_text = g_strdup_printf ("%.4f (%+.2f%%)", r->perplexity,
                                    100.0 * (r->perplexity - float_ppl) / float_ppl);
      svg_text (s, SLIM_SVG_LABEL_W - 8, y + 16, "end", "black", r->label);
      g_string_append_printf (s,
                              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
                              "fill=\"#3b6fb6\"/>\n",
                              x_ppl, y + 4, MAX (w_ppl, 1.0), SLIM_SVG_ROW_H - 8);
      svg_text (s, x_ppl + MAX (w_ppl, 1.0) + 6, y + 16, "start", "black", ppl_text);
      g_string_append_printf (s,
                              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" "
                              "fill=\"#d9792b\"/>\n",
                              x_kl, y + 4, MAX (w_kl, 1.0), SLIM_SVG_ROW_H - 8);
      svg_text (s, x_kl + MAX (w_kl, 1.0) + 6, y + 16, "start", "black", kl_text);
    }
  /* axes */
  g_string_append_printf (
      s,
      "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n"
      "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
      x_ppl, SLIM_SVG_TOP, x_ppl, SLIM_SVG_TOP + n_rows * (double)SLIM_SVG_ROW_H, x_kl,
      SLIM_SVG_TOP, x_kl, SLIM_SVG_TOP + n_rows * (double)SLIM_SVG_ROW_H);
  svg_text (s, 12, height - 14, "start", "#555555",
            "lower is better in both panels; bars are scaled to the largest value of their panel");
  g_string_append (s, "</svg>\n");
  return g_string_free (s, FALSE);
}

/* White (0) to red (1). */
static void
heat_colour (double t, char out[8])
{
  int g = (int)lround (255.0 * (1.0 - CLAMP (t, 0.0, 1.0) * 0.85));
  g_snprintf (out, 8, "#ff%02x%02x", g, g);
}

char *
slim_svg_heat_map (const char *title,
                   const double *values,
                   guint n_layers,
                   const char *const *column_names,
                   guint n_columns)
{
  GString *s = g_string_new (NULL);
  double cell_w = 100, cell_h = 26, x0 = 80, y0 = SLIM_SVG_TOP;
  double max_v = 0.0;

  g_return_val_if_fail (values != NULL && column_names != NULL, NULL);
  for (guint i = 0; i < n_layers * n_columns; i++)
    if (!isnan (values[i]))
      max_v = MAX (max_v, values[i]);
  svg_begin (s, MAX (x0 + n_columns * cell_w + 20, 460), y0 + n_layers * cell_h + 50, title);
  for (guint c = 0; c < n_columns; c++)
    svg_text (s, x0 + c * cell_w + cell_w / 2, y0 - 8, "middle", "black", column_names[c]);
  for (guint l = 0; l < n_layers; l++)
    {
      g_autofree char *layer = g_strdup_printf ("layer %u", l);
      svg_text (s, x0 - 8, y0 + l * cell_h + 17, "end", "black", layer);
      for (guint c = 0; c < n_columns; c++)
        {
          double v = values[l * n_columns + c];
          char fill[8];
          g_autofree char *text = isnan (v) ? g_strdup ("float") : g_strdup_printf ("%.4f", v);
          if (isnan (v))
            g_strlcpy (fill, "#dddddd", sizeof fill);
          else
            heat_colour (max_v > 0 ? v / max_v : 0.0, fill);
          g_string_append_printf (s,
                                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                                  "fill=\"%s\" stroke=\"white\"/>\n",
                                  x0 + c * cell_w, y0 + l * cell_h, cell_w, cell_h, fill);
          svg_text (s, x0 + c * cell_w + cell_w / 2, y0 + l * cell_h + 17, "middle", "black", text);
        }
    }
  {
    g_autofree char *legend = g_strdup_printf (
        "relative output error ||y_q - y|| / ||y|| per linear; white 0, red %.4f (the largest)",
        max_v);
    svg_text (s, 12, y0 + n_layers * cell_h + 30, "start", "#555555", legend);
  }
  g_string_append (s, "</svg>\n");
  return g_string_free (s, FALSE);
}
