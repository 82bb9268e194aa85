/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-practice.c: best-practice lookup by label (see slim-practice.h).
 */
#include "slim-practice.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include "slim-config.h"
#include "slim-datadir.h"
#include "slim-error.h"

/* A practice file's size bound (untrusted input). */
#define SLIM_PRACTICE_MAX_BYTES (1 << 20)

typedef struct
{
  gint64 w_bit;
  gint64 a_bit;
  gboolean kv_cache;
  gint64 fa_bit; /* 0: none */
  gboolean is_sparse;
  gboolean dynamic;
} SlimPracticeLabel;

typedef struct
{
  char *path;
  char *config_id;
  double score;
} SlimPracticeCandidate;

static void
candidate_free (gpointer p)
{
  SlimPracticeCandidate *c = p;
  g_free (c->path);
  g_free (c->config_id);
  g_free (c);
}

static gint
candidate_compare (gconstpointer a, gconstpointer b)
{
  const SlimPracticeCandidate *x = *(SlimPracticeCandidate *const *)a;
  const SlimPracticeCandidate *y = *(SlimPracticeCandidate *const *)b;

  if (x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return strcmp (x->config_id, y->config_id);
}

static gboolean
parse_label (const char *quant_type, SlimPracticeLabel *label, GError **error)
{
  g_autoptr (GRegex) regex = g_regex_new ("^w(\\d{1,2})a(\\d{1,2})((?:c8|f[48])?)(s?)(_dynamic)?$",
                                          G_REGEX_DEFAULT, G_REGEX_MATCH_DEFAULT, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *w = NULL, *a = NULL, *kv = NULL, *s = NULL, *dyn = NULL;

  memset (label, 0, sizeof (*label));
  if (!g_regex_match (regex, quant_type, G_REGEX_MATCH_DEFAULT, &match))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "--quant_type '%s': expected a label such as w8a8, w8a8_dynamic, w8a16, "
                   "w4a16 (^w(\\d+)a(\\d+)((?:c8|f[48])?)(s?)$)",
                   quant_type);
      return FALSE;
    }
  w = g_match_info_fetch (match, 1);
  a = g_match_info_fetch (match, 2);
  kv = g_match_info_fetch (match, 3);
  s = g_match_info_fetch (match, 4);
  dyn = g_match_info_fetch (match, 5);
  label->w_bit = g_ascii_strtoll (w, NULL, 10);
  label->a_bit = g_ascii_strtoll (a, NULL, 10);
  label->kv_cache = g_strcmp0 (kv, "c8") == 0;
  label->fa_bit = g_strcmp0 (kv, "f4") == 0 ? 4 : g_strcmp0 (kv, "f8") == 0 ? 8 : 0;
  label->is_sparse = s != NULL && *s == 's';
  label->dynamic = dyn != NULL && *dyn != '\0';
  return TRUE;
}

static gboolean
node_bool (SlimConfigNode *map, const char *key)
{
  SlimConfigNode *node = map != NULL ? slim_config_node_lookup (map, key) : NULL;
  const char *text = node != NULL ? slim_config_node_get_scalar (node) : NULL;

  return text != NULL
         && (g_ascii_strcasecmp (text, "true") == 0 || g_ascii_strcasecmp (text, "yes") == 0);
}

static gint64
node_int (SlimConfigNode *map, const char *key, gint64 fallback)
{
  SlimConfigNode *node = map != NULL ? slim_config_node_lookup (map, key) : NULL;
  const char *text = node != NULL ? slim_config_node_get_scalar (node) : NULL;
  char *end = NULL;
  gint64 value;

  if (text == NULL || *text == '\0')
    return fallback;
  value = g_ascii_strtoll (text, &end, 10);
  return *end == '\0' ? value : fallback;
}

/* The metadata of one practice file matching label and model_type, or NULL. */
static SlimPracticeCandidate *
read_candidate (const char *path, const SlimPracticeLabel *want, const char *model_type)
{
  g_autoptr (SlimConfigNode) root = NULL;
  SlimConfigNode *meta, *label, *types, *node;
  SlimPracticeCandidate *c;
  SlimPracticeLabel have = { 0 };
  const char *id;
  gint64 fa_bit;

  root = slim_config_parse_file (path, NULL);
  if (root == NULL || slim_config_node_get_kind (root) != SLIM_CONFIG_NODE_MAPPING)
    return NULL;
  meta = slim_config_node_lookup (root, "metadata");
  if (meta == NULL || slim_config_node_get_kind (meta) != SLIM_CONFIG_NODE_MAPPING)
    return NULL;
  node = slim_config_node_lookup (meta, "config_id");
  id = node != NULL ? slim_config_node_get_scalar (node) : NULL;
  label = slim_config_node_lookup (meta, "label");
  if (id == NULL || label == NULL || slim_config_node_get_kind (label) != SLIM_CONFIG_NODE_MAPPING)
    return NULL;
  have.w_bit = node_int (label, "w_bit", -1);
  have.a_bit = node_int (label, "a_bit", -1);
  have.kv_cache = node_bool (label, "kv_cache");
  have.is_sparse = node_bool (label, "is_sparse");
  have.dynamic = node_bool (label, "dynamic");
  fa_bit = node_int (label, "fa_bit", 0);
  have.fa_bit = fa_bit != 0 ? fa_bit : node_bool (label, "fa_quant") ? 8 : 0;
  if (have.w_bit != want->w_bit || have.a_bit != want->a_bit || have.kv_cache != want->kv_cache
      || have.fa_bit != want->fa_bit || have.is_sparse != want->is_sparse
      || have.dynamic != want->dynamic)
    return NULL;

  types = slim_config_node_lookup (meta, "verified_model_types");
  if (model_type != NULL && types != NULL
      && slim_config_node_get_kind (types) == SLIM_CONFIG_NODE_SEQUENCE
      && slim_config_node_get_n_items (types) > 0)
    {
      gboolean found = FALSE;
      for (guint i = 0; i < slim_config_node_get_n_items (types); i++)
        found = found
                || g_strcmp0 (slim_config_node_get_scalar (slim_config_node_get_item (types, i)),
                              model_type)
                       == 0;
      if (!found)
        return NULL;
    }

  c = g_new0 (SlimPracticeCandidate, 1);
  c->path = g_strdup (path);
  c->config_id = g_strdup (id);
  node = slim_config_node_lookup (meta, "score");
  c->score = node != NULL && slim_config_node_get_scalar (node) != NULL
                 ? g_ascii_strtod (slim_config_node_get_scalar (node), NULL)
                 : 100.0;
  return c;
}

static void
scan_pedigree (const char *dir,
               const SlimPracticeLabel *want,
               const char *model_type,
               GPtrArray *candidates)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = NULL;
      SlimPracticeCandidate *c;
      GStatBuf st;

      if (!g_str_has_suffix (name, ".yaml"))
        continue;
      path = g_build_filename (dir, name, NULL);
      if (g_stat (path, &st) != 0 || !S_ISREG (st.st_mode) || st.st_size > SLIM_PRACTICE_MAX_BYTES)
        continue;
      c = read_candidate (path, want, model_type);
      if (c != NULL)
        g_ptr_array_add (candidates, c);
    }
}

char *
slim_practice_find (const char *quant_type, const char *model_type, GError **error)
{
  SlimPracticeLabel want;
  g_autofree char *datadir = NULL;
  const char *pedigrees[2] = { model_type, "default" };

  g_return_val_if_fail (quant_type != NULL, NULL);

  if (!parse_label (quant_type, &want, error))
    return NULL;
  datadir = slim_datadir_get ();
  if (datadir == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
                   "no slimflow data folder found (set %s)", SLIM_DATADIR_ENV);
      return NULL;
    }
  for (guint i = 0; i < G_N_ELEMENTS (pedigrees); i++)
    {
      g_autoptr (GPtrArray) candidates = g_ptr_array_new_with_free_func (candidate_free);
      g_autofree char *dir = NULL;

      if (pedigrees[i] == NULL || strchr (pedigrees[i], '/') != NULL || pedigrees[i][0] == '.')
        continue;
      dir = g_build_filename (datadir, "practices", pedigrees[i], NULL);
      scan_pedigree (dir, &want, model_type, candidates);
      if (candidates->len > 0)
        {
          g_ptr_array_sort (candidates, candidate_compare);
          return g_strdup (((SlimPracticeCandidate *)g_ptr_array_index (candidates, 0))->path);
        }
    }
  g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNSUPPORTED,
               "--quant_type '%s': no best practice with this label in %s/practices "
               "(shipped: w8a8, w8a8_dynamic, w8a16, w4a16)",
               quant_type, datadir);
  return NULL;
}
