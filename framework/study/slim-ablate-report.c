/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ablate-report.c: ablation rows to JSON, CSV, Markdown and SVG
 * (slim-ablate-report.h).
 */
#include "slim-ablate-report.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "slim-error.h"
#include "slim-svg.h"

SlimAblateResults *
slim_ablate_results_new (void)
{
  SlimAblateResults *r = g_new0 (SlimAblateResults, 1);

  r->rows = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_ablate_row_free);
  return r;
}

void
slim_ablate_row_free (SlimAblateRow *row)
{
  if (row == NULL)
    return;
  g_free (row->name);
  g_free (row->description);
  g_free (row->config_sha256);
  g_free (row->dataset_sha256);
  g_free (row);
}

void
slim_ablate_results_free (SlimAblateResults *r)
{
  if (r == NULL)
    return;
  g_free (r->slimflow_version);
  g_free (r->matrix_path);
  g_free (r->matrix_sha256);
  g_free (r->model_path);
  g_free (r->model_sha256);
  g_free (r->text_path);
  g_free (r->text_sha256);
  g_clear_pointer (&r->rows, g_ptr_array_unref);
  g_free (r);
}

static void
add_string (JsonBuilder *b, const char *key, const char *value)
{
  json_builder_set_member_name (b, key);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

static void
add_double (JsonBuilder *b, const char *key, double value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_double_value (b, value);
}

static void
add_int (JsonBuilder *b, const char *key, gint64 value)
{
  json_builder_set_member_name (b, key);
  json_builder_add_int_value (b, value);
}

static void
build_row (JsonBuilder *b, const SlimAblateRow *row, double float_ppl)
{
  json_builder_begin_object (b);
  add_string (b, "name", row->name);
  add_string (b, "description", row->description);
  add_string (b, "config_sha256", row->config_sha256);
  add_string (b, "dataset_sha256", row->dataset_sha256);
  json_builder_set_member_name (b, "float");
  json_builder_add_boolean_value (b, row->is_float);
  add_double (b, "perplexity", row->perplexity);
  if (float_ppl > 0)
    {
      add_double (b, "delta_ppl", row->perplexity - float_ppl);
      add_double (b, "delta_ppl_pct", 100.0 * (row->perplexity - float_ppl) / float_ppl);
    }
  add_double (b, "kl", row->kl);
  add_double (b, "top1", row->top1);
  add_double (b, "wall_s", row->wall_s);
  add_double (b, "peak_mib", row->peak_mib);
  add_int (b, "output_bytes", (gint64)row->output_bytes);
  json_builder_set_member_name (b, "resumed");
  json_builder_add_boolean_value (b, row->resumed);
  json_builder_end_object (b);
}

static char *
builder_text (JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);
  return json_to_string (root, TRUE);
}

char *
slim_ablate_row_to_json (const SlimAblateRow *row)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  build_row (b, row, 0.0);
  return builder_text (b);
}

SlimAblateRow *
slim_ablate_row_from_json (const char *text, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *o;
  SlimAblateRow *row;
  static const char *const numbers[]
      = { "perplexity", "kl", "top1", "wall_s", "peak_mib", "output_bytes" };

  if (!json_parser_load_from_data (parser, text, -1, error))
    return NULL;
  if (!JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser))
      || (o = json_node_get_object (json_parser_get_root (parser))) == NULL
      || !json_object_has_member (o, "name"))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "not a result record");
      return NULL;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (numbers); i++)
    if (!json_object_has_member (o, numbers[i])
        || json_node_get_value_type (json_object_get_member (o, numbers[i])) == G_TYPE_STRING)
      {
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                     "result record without a number '%s'", numbers[i]);
        return NULL;
      }
  row = g_new0 (SlimAblateRow, 1);
  row->name = g_strdup (json_object_get_string_member_with_default (o, "name", ""));
  row->description = g_strdup (json_object_get_string_member_with_default (o, "description", ""));
  row->config_sha256
      = g_strdup (json_object_get_string_member_with_default (o, "config_sha256", NULL));
  row->dataset_sha256
      = g_strdup (json_object_get_string_member_with_default (o, "dataset_sha256", NULL));
  row->is_float = json_object_get_boolean_member_with_default (o, "float", FALSE);
  row->perplexity = json_object_get_double_member (o, "perplexity");
  row->kl = json_object_get_double_member (o, "kl");
  row->top1 = json_object_get_double_member (o, "top1");
  row->wall_s = json_object_get_double_member (o, "wall_s");
  row->peak_mib = json_object_get_double_member (o, "peak_mib");
  row->output_bytes = (guint64)json_object_get_int_member (o, "output_bytes");
  return row;
}

static double
float_ppl_of (const SlimAblateResults *r)
{
  for (guint i = 0; i < r->rows->len; i++)
    {
      const SlimAblateRow *row = g_ptr_array_index (r->rows, i);
      if (row->is_float)
        return row->perplexity;
    }
  return 0.0;
}

static char *
results_json (const SlimAblateResults *r)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  double float_ppl = float_ppl_of (r);

  json_builder_begin_object (b);
  add_string (b, "slimflow_version", r->slimflow_version);
  add_string (b, "matrix", r->matrix_path);
  add_string (b, "matrix_sha256", r->matrix_sha256);
  add_string (b, "model", r->model_path);
  add_string (b, "model_sha256", r->model_sha256);
  add_string (b, "text", r->text_path);
  add_string (b, "text_tokens_sha256", r->text_sha256);
  add_int (b, "ctx", r->n_ctx);
  add_int (b, "tokens", r->n_tokens);
  add_int (b, "predictions", r->n_predictions);
  add_int (b, "threads", r->n_threads);
  add_int (b, "max_samples", r->max_samples);
  add_int (b, "max_length", r->max_length);
  json_builder_set_member_name (b, "rows");
  json_builder_begin_array (b);
  for (guint i = 0; i < r->rows->len; i++)
    build_row (b, g_ptr_array_index (r->rows, i), float_ppl);
  json_builder_end_array (b);
  json_builder_end_object (b);
  return builder_text (b);
}

/* A CSV field: quoted when it holds a comma, quote or newline. */
static void
csv_field (GString *s, const char *text)
{
  if (text == NULL)
    return;
  if (strpbrk (text, ",\"\n") == NULL)
    {
      g_string_append (s, text);
      return;
    }
  g_string_append_c (s, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '"')
        g_string_append_c (s, '"');
      g_string_append_c (s, *p);
    }
  g_string_append_c (s, '"');
}

static char *
results_csv (const SlimAblateResults *r)
{
  GString *s = g_string_new ("name,description,perplexity,delta_ppl,delta_ppl_pct,kl,top1,"
                             "wall_s,peak_mib,output_bytes,config_sha256\n");
  double float_ppl = float_ppl_of (r);

  for (guint i = 0; i < r->rows->len; i++)
    {
      const SlimAblateRow *row = g_ptr_array_index (r->rows, i);
      csv_field (s, row->name);
      g_string_append_c (s, ',');
      csv_field (s, row->description);
      g_string_append_printf (s, ",%.6f,%.6f,%.4f,%.8f,%.6f,%.3f,%.1f,%" G_GUINT64_FORMAT ",",
                              row->perplexity, row->perplexity - float_ppl,
                              float_ppl > 0 ? 100.0 * (row->perplexity - float_ppl) / float_ppl
                                            : 0.0,
                              row->kl, row->top1, row->wall_s, row->peak_mib, row->output_bytes);
      csv_field (s, row->config_sha256);
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

/* Markdown cell: | escaped. */
static void
md_cell (GString *s, const char *text)
{
  g_string_append (s, " ");
  for (const char *p = text != NULL ? text : ""; *p != '\0'; p++)
    {
      if (*p == '|')
        g_string_append_c (s, '\\');
      g_string_append_c (s, *p == '\n' ? ' ' : *p);
    }
  g_string_append (s, " |");
}

static char *
results_md (const SlimAblateResults *r)
{
  GString *s = g_string_new (NULL);
  double float_ppl = float_ppl_of (r);

  g_string_append_printf (s,
                          "# slimflow ablate: %s\n\n"
                          "model `%s` (sha256 %.16s…), text `%s` (%" G_GINT64_FORMAT
                          " tokens, ctx %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                          " predictions), slimflow %s, %d thread(s), calibration max_samples %u "
                          "max_length %u (0 = all); matrix sha256 %.16s…\n\n",
                          r->matrix_path, r->model_path, r->model_sha256, r->text_path, r->n_tokens,
                          r->n_ctx, r->n_predictions, r->slimflow_version, r->n_threads,
                          r->max_samples, r->max_length, r->matrix_sha256);
  g_string_append (s, "| variant | what | PPL | ΔPPL | KL | top-1 | wall s | peak MiB | output "
                      "MiB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (guint i = 0; i < r->rows->len; i++)
    {
      const SlimAblateRow *row = g_ptr_array_index (r->rows, i);
      g_string_append (s, "|");
      md_cell (s, row->name);
      md_cell (s, row->description);
      g_string_append_printf (
          s, " %.4f | %+.4f (%+.2f%%) | %.6f | %.4f | %.2f | %.1f | %.3f |\n", row->perplexity,
          row->perplexity - float_ppl,
          float_ppl > 0 ? 100.0 * (row->perplexity - float_ppl) / float_ppl : 0.0, row->kl,
          row->top1, row->wall_s, row->peak_mib, (double)row->output_bytes / (1024.0 * 1024.0));
    }
  return g_string_free (s, FALSE);
}

static char *
results_svg (const SlimAblateResults *r)
{
  g_autofree SlimSvgBar *bars = g_new0 (SlimSvgBar, MAX (r->rows->len, 1)); /* (n_rows) */
  g_autofree char *title = g_path_get_basename (r->matrix_path);
  g_autofree char *full = NULL;

  for (guint i = 0; i < r->rows->len; i++)
    {
      const SlimAblateRow *row = g_ptr_array_index (r->rows, i);
      bars[i] = (SlimSvgBar){ row->name, row->perplexity, row->kl, row->is_float };
    }
  full = g_strdup_printf ("slimflow ablate %s — %" G_GINT64_FORMAT " tokens, ctx %" G_GINT64_FORMAT,
                          title, r->n_tokens, r->n_ctx);
  return slim_svg_ablate_chart (full, bars, r->rows->len, float_ppl_of (r));
}

gboolean
slim_ablate_results_write (const SlimAblateResults *results, const char *dir, GError **error)
{
  struct
  {
    const char *name;
    char *(*make) (const SlimAblateResults *);
  } files[] = {
    { "results.json", results_json },
    { "results.csv", results_csv },
    { "results.md", results_md },
    { "results.svg", results_svg },
  };

  g_return_val_if_fail (results != NULL && results->rows->len > 0, FALSE);
  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *text = files[i].make (results);
      g_autofree char *path = g_build_filename (dir, files[i].name, NULL);
      if (!g_file_set_contents (path, text, -1, error))
        return FALSE;
    }
  return TRUE;
}
