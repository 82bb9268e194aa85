/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-tokenizer.c: BPE tokenizers from tokenizer.json.
 *
 * Encoding a text:
 *   1. split it at added tokens (longest match, leftmost first); each
 *      added token is one id;
 *   2. each remaining segment goes through the normalizer (Prepend,
 *      Replace, NFC, NFKC, Lowercase) and the pre-tokenizer (Split,
 *      ByteLevel, Metaspace, Digits), which cut it into words;
 *   3. each word is split into symbols (UTF-8 characters, or bytes mapped
 *      to printable characters for byte-level BPE) and merged with a
 *      priority queue: the pair of adjacent symbols with the smallest
 *      priority is merged first, ties go to the leftmost pair.  Byte-level
 *      tokenizers use the merge rank as priority (Hugging Face BPE).
 *      SentencePiece-style tokenizers use the rank of the merged piece
 *      (the smallest rank of any merge producing it), which is what
 *      SentencePiece's own BPE does with its piece scores: it merges the
 *      adjacent pair whose concatenation has the best score, whatever the
 *      split.  That makes us agree with the slow Llama tokenizer;
 *   4. symbols left outside the vocabulary become <0xNN> byte tokens
 *      (byte fallback) or the unknown token.
 *
 * Decoding runs the tokenizer.json decoder chain (Replace, ByteFallback,
 * Fuse, Strip, ByteLevel, Metaspace) over the token strings.
 *
 * Everything read from the files is checked before use: ids are bounded
 * by SLIM_TOKENIZER_MAX_VOCAB, merges must name known tokens, and the
 * files are size-limited before they are read.
 *
 * This file holds the object and its API, the loading of both files, the
 * normalizer, the encode driver (step 1) and the decoder chain; the
 * pre-tokenizer (step 2), the merge (steps 3 and 4) and the two BPE
 * flavours are in the files slim-tokenizer-private.h lists.
 */
#include "slim-tokenizer.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "slim-error.h"
#include "slim-tokenizer-private.h"

#define SLIM_TOKENIZER_MAX_VOCAB (1 << 24)
#define SLIM_TOKENIZER_MAX_FILE_BYTES ((gsize)1 << 30)

/* GPT-2's pre-tokenizer pattern, used by ByteLevel with use_regex. */
#define SLIM_GPT2_PATTERN                                                                          \
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

typedef enum
{
  SLIM_NORM_PREPEND,
  SLIM_NORM_REPLACE,
  SLIM_NORM_NFC,
  SLIM_NORM_NFKC,
  SLIM_NORM_LOWERCASE,
} SlimNormKind;

typedef struct
{
  SlimNormKind kind;
  char *a; /* prepended text, or the replaced pattern */
  char *b; /* replacement */
} SlimNormStep;

typedef enum
{
  SLIM_DEC_REPLACE,
  SLIM_DEC_BYTE_FALLBACK,
  SLIM_DEC_FUSE,
  SLIM_DEC_STRIP,
  SLIM_DEC_BYTE_LEVEL,
  SLIM_DEC_METASPACE,
} SlimDecKind;

typedef struct
{
  SlimDecKind kind;
  char *a;          /* REPLACE pattern, STRIP content, METASPACE replacement */
  char *b;          /* REPLACE content */
  gint64 n_start;   /* STRIP */
  gint64 n_stop;    /* STRIP */
  gboolean prepend; /* METASPACE: strip the leading space of the first token */
} SlimDecStep;

typedef struct
{
  char *content;
  gint32 id;
  gboolean special;
  gboolean lstrip;
  gboolean rstrip;
} SlimAddedToken;

G_DEFINE_TYPE (SlimTokenizer, slim_tokenizer, G_TYPE_OBJECT)

static void
slim_norm_step_clear (gpointer data)
{
  SlimNormStep *step = data;
  g_free (step->a);
  g_free (step->b);
}

static void
slim_dec_step_clear (gpointer data)
{
  SlimDecStep *step = data;
  g_free (step->a);
  g_free (step->b);
}

static void
slim_added_token_clear (gpointer data)
{
  SlimAddedToken *token = data;
  g_free (token->content);
}

static void
slim_tokenizer_finalize (GObject *object)
{
  SlimTokenizer *self = SLIM_TOKENIZER (object);

  g_clear_pointer (&self->token_to_id, g_hash_table_unref);
  g_clear_pointer (&self->id_to_token, g_ptr_array_unref);
  g_free (self->special);
  g_free (self->added);
  g_free (self->piece_rank);
  g_free (self->merge_pairs);
  g_free (self->merges.keys);
  g_free (self->merges.ranks);
  g_free (self->merges.results);
  g_clear_pointer (&self->normalizers, g_array_unref);
  g_clear_pointer (&self->pretokenizers, g_array_unref);
  g_clear_pointer (&self->decoders, g_array_unref);
  for (guint i = 0; i < 256; i++)
    g_clear_pointer (&self->added_by_byte[i], g_ptr_array_unref);
  g_clear_pointer (&self->added_tokens, g_array_unref);
  g_clear_pointer (&self->word_cache, g_hash_table_unref);

  G_OBJECT_CLASS (slim_tokenizer_parent_class)->finalize (object);
}

static void
slim_tokenizer_class_init (SlimTokenizerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_tokenizer_finalize;
}

static void
slim_tokenizer_init (SlimTokenizer *self)
{
  self->id_to_token = g_ptr_array_new_with_free_func (g_free);
  self->token_to_id = g_hash_table_new (g_str_hash, g_str_equal);
  self->normalizers = g_array_new (FALSE, TRUE, sizeof (SlimNormStep));
  g_array_set_clear_func (self->normalizers, slim_norm_step_clear);
  self->pretokenizers = g_array_new (FALSE, TRUE, sizeof (SlimPreStep));
  g_array_set_clear_func (self->pretokenizers, slim_pre_step_clear);
  self->decoders = g_array_new (FALSE, TRUE, sizeof (SlimDecStep));
  g_array_set_clear_func (self->decoders, slim_dec_step_clear);
  self->added_tokens = g_array_new (FALSE, TRUE, sizeof (SlimAddedToken));
  g_array_set_clear_func (self->added_tokens, slim_added_token_clear);
  self->word_cache
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_array_unref);
  self->unk_id = -1;
  self->bos_id = -1;
  self->pad_id = -1;
  self->eos_id = -1;
  for (guint i = 0; i < 256; i++)
    {
      self->byte_ids[i] = -1;
      self->byte_char_ids[i] = -1;
    }
}

/* ---------------------------------------------------------------------- */
/* JSON helpers                                                             */

static JsonNode *
slim_json_member (JsonObject *object, const char *name)
{
  if (object == NULL || !json_object_has_member (object, name))
    return NULL;
  JsonNode *node = json_object_get_member (object, name);
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  return node;
}

static JsonObject *
slim_json_object_member (JsonObject *object, const char *name)
{
  JsonNode *node = slim_json_member (object, name);
  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static const char *
slim_json_string_member (JsonObject *object, const char *name)
{
  JsonNode *node = slim_json_member (object, name);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
slim_json_bool_member (JsonObject *object, const char *name, gboolean default_value)
{
  JsonNode *node = slim_json_member (object, name);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return default_value;
  return json_node_get_boolean (node);
}

static gboolean
slim_json_int_member (JsonObject *object, const char *name, gint64 *out_value)
{
  JsonNode *node = slim_json_member (object, name);
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *out_value = json_node_get_int (node);
  return TRUE;
}

/* A "String" or "Regex" pattern object of tokenizer.json. */
static const char *
slim_json_pattern (JsonObject *object, gboolean *out_is_regex)
{
  JsonObject *pattern = slim_json_object_member (object, "pattern");
  const char *text = slim_json_string_member (pattern, "String");
  *out_is_regex = FALSE;
  if (text == NULL)
    {
      text = slim_json_string_member (pattern, "Regex");
      *out_is_regex = text != NULL;
    }
  return text;
}

static JsonParser *
slim_json_load (const char *path, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInfo) info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE,
                                                  G_FILE_QUERY_INFO_NONE, NULL, error);
  if (info == NULL)
    return NULL;
  if ((guint64)g_file_info_get_size (info) > SLIM_TOKENIZER_MAX_FILE_BYTES)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: file too large (%" G_GINT64_FORMAT " bytes)", path,
                   (gint64)g_file_info_get_size (info));
      return NULL;
    }
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local_error = NULL;
  if (!json_parser_load_from_file (parser, path, &local_error))
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: %s", path,
                     local_error->message);
      return NULL;
    }
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: the top level is not a JSON object", path);
      return NULL;
    }
  return g_steal_pointer (&parser);
}

/* ---------------------------------------------------------------------- */
/* Loading                                                                  */

static gboolean
slim_tokenizer_set_token (
    SlimTokenizer *self, const char *path, const char *token, gint64 id, GError **error)
{
  if (id < 0 || id >= SLIM_TOKENIZER_MAX_VOCAB)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: token id %" G_GINT64_FORMAT " of \"%s\" out of range [0, %d)", path, id,
                   token, SLIM_TOKENIZER_MAX_VOCAB);
      return FALSE;
    }
  if (!g_utf8_validate (token, -1, NULL) || token[0] == '\0')
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: token %" G_GINT64_FORMAT " is empty or not UTF-8", path, id);
      return FALSE;
    }
  if ((gint64)self->id_to_token->len <= id)
    g_ptr_array_set_size (self->id_to_token, (guint)id + 1);
  const char *old = g_ptr_array_index (self->id_to_token, id);
  if (old != NULL)
    {
      /* An added token that repeats its vocabulary entry is fine. */
      if (strcmp (old, token) == 0)
        return TRUE;
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: id %" G_GINT64_FORMAT " given to both \"%s\" and \"%s\"", path, id, old,
                   token);
      return FALSE;
    }
  char *copy = g_strdup (token);
  g_ptr_array_index (self->id_to_token, id) = copy;
  /* A string mapped to two ids keeps the first one. */
  if (!g_hash_table_contains (self->token_to_id, copy))
    g_hash_table_insert (self->token_to_id, copy, GINT_TO_POINTER ((gint)id + 1));
  return TRUE;
}

gint32
slim_tokenizer_lookup (SlimTokenizer *self, const char *token)
{
  gpointer value = g_hash_table_lookup (self->token_to_id, token);
  return value == NULL ? -1 : GPOINTER_TO_INT (value) - 1;
}

static gboolean
slim_tokenizer_load_vocab (SlimTokenizer *self, const char *path, JsonObject *model, GError **error)
{
  JsonObject *vocab = slim_json_object_member (model, "vocab");
  if (vocab == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: model.vocab is missing or not an object", path);
      return FALSE;
    }
  JsonObjectIter iter;
  const char *token;
  JsonNode *node;
  json_object_iter_init (&iter, vocab);
  while (json_object_iter_next (&iter, &token, &node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: model.vocab[\"%s\"] is not an integer", path, token);
          return FALSE;
        }
      if (!slim_tokenizer_set_token (self, path, token, json_node_get_int (node), error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
slim_tokenizer_load_merges (SlimTokenizer *self,
                            const char *path,
                            JsonObject *model,
                            GError **error)
{
  JsonNode *node = slim_json_member (model, "merges");
  if (node == NULL)
    {
      slim_merge_map_init (&self->merges, 0);
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: model.merges is not an array", path);
      return FALSE;
    }
  JsonArray *merges = json_node_get_array (node);
  guint n_merges = json_array_get_length (merges);
  if (n_merges >= SLIM_TOKENIZER_MAX_VOCAB)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: too many merges (%u)",
                   path, n_merges);
      return FALSE;
    }
  slim_merge_map_init (&self->merges, n_merges);

  /* SentencePiece style: the priority of a pair is the best rank of its
   * merged piece (first pass), whatever split produced it. */
  gint32 *piece_rank = NULL;                  /* (vocab_size) */
  gint32 *lefts = g_new (gint32, n_merges);   /* (n_merges) */
  gint32 *rights = g_new (gint32, n_merges);  /* (n_merges) */
  gint32 *results = g_new (gint32, n_merges); /* (n_merges) */
  gboolean ok = TRUE;
  for (guint i = 0; i < n_merges && ok; i++)
    {
      JsonNode *item = json_array_get_element (merges, i);
      g_autofree char *left = NULL;
      g_autofree char *right = NULL;
      if (JSON_NODE_HOLDS_VALUE (item) && json_node_get_value_type (item) == G_TYPE_STRING)
        {
          /* Old format: "left right". */
          const char *text = json_node_get_string (item);
          const char *space = strchr (text, ' ');
          if (space != NULL && strchr (space + 1, ' ') == NULL)
            {
              left = g_strndup (text, space - text);
              right = g_strdup (space + 1);
            }
        }
      else if (JSON_NODE_HOLDS_ARRAY (item)
               && json_array_get_length (json_node_get_array (item)) == 2)
        {
          JsonArray *pair = json_node_get_array (item);
          JsonNode *a = json_array_get_element (pair, 0);
          JsonNode *b = json_array_get_element (pair, 1);
          if (JSON_NODE_HOLDS_VALUE (a) && json_node_get_value_type (a) == G_TYPE_STRING
              && JSON_NODE_HOLDS_VALUE (b) && json_node_get_value_type (b) == G_TYPE_STRING)
            {
              left = g_strdup (json_node_get_string (a));
              right = g_strdup (json_node_get_string (b));
            }
        }
      if (left == NULL || right == NULL)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: model.merges[%u] is not a pair of tokens", path, i);
          ok = FALSE;
          break;
        }
      g_autofree char *joined = g_strconcat (left, right, NULL);
      lefts[i] = slim_tokenizer_lookup (self, left);
      rights[i] = slim_tokenizer_lookup (self, right);
      results[i] = slim_tokenizer_lookup (self, joined);
      if (lefts[i] < 0 || rights[i] < 0 || results[i] < 0)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: model.merges[%u] (\"%s\" \"%s\") uses a token not in the vocabulary",
                       path, i, left, right);
          ok = FALSE;
        }
    }
  if (ok && self->piece_priority)
    {
      piece_rank = g_new (gint32, self->id_to_token->len); /* (vocab_size) */
      for (guint i = 0; i < self->id_to_token->len; i++)
        piece_rank[i] = G_MAXINT32;
      for (guint i = 0; i < n_merges; i++)
        piece_rank[results[i]] = MIN (piece_rank[results[i]], (gint32)i);
    }
  for (guint i = 0; i < n_merges && ok; i++)
    slim_merge_map_insert (&self->merges, lefts[i], rights[i],
                           piece_rank != NULL ? piece_rank[results[i]] : (gint32)i, results[i]);
  g_free (results);
  if (ok)
    {
      /* (n_merges, 2) left, right id of each merge in rank order */
      self->merge_pairs = g_new (gint32, 2 * (gsize)MAX (n_merges, 1));
      for (guint i = 0; i < n_merges; i++)
        {
          self->merge_pairs[2 * i] = lefts[i];
          self->merge_pairs[2 * i + 1] = rights[i];
        }
    }
  g_free (lefts);
  g_free (rights);
  if (ok)
    {
      self->n_merges = n_merges;
      self->piece_rank = piece_rank;
      self->n_piece_rank = piece_rank != NULL ? self->id_to_token->len : 0;
    }
  else
    g_free (piece_rank);
  return ok;
}

static gint
slim_added_token_compare_length (gconstpointer a, gconstpointer b)
{
  const SlimAddedToken *ta = *(SlimAddedToken *const *)a;
  const SlimAddedToken *tb = *(SlimAddedToken *const *)b;
  gsize la = strlen (ta->content);
  gsize lb = strlen (tb->content);
  return la < lb ? 1 : la > lb ? -1 : 0;
}

static gboolean
slim_tokenizer_load_added (SlimTokenizer *self, const char *path, JsonObject *root, GError **error)
{
  JsonNode *node = slim_json_member (root, "added_tokens");
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: added_tokens is not an array", path);
      return FALSE;
    }
  JsonArray *array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *item = json_array_get_element (array, i);
      JsonObject *object = JSON_NODE_HOLDS_OBJECT (item) ? json_node_get_object (item) : NULL;
      const char *content = slim_json_string_member (object, "content");
      gint64 id = -1;
      if (content == NULL || !slim_json_int_member (object, "id", &id))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: added_tokens[%u] needs \"id\" (integer) and \"content\" (string)", path,
                       i);
          return FALSE;
        }
      if (!slim_tokenizer_set_token (self, path, content, id, error))
        return FALSE;
      SlimAddedToken token = {
        .content = g_strdup (content),
        .id = (gint32)id,
        .special = slim_json_bool_member (object, "special", FALSE),
        .lstrip = slim_json_bool_member (object, "lstrip", FALSE),
        .rstrip = slim_json_bool_member (object, "rstrip", FALSE),
      };
      g_array_append_val (self->added_tokens, token);
    }
  return TRUE;
}

static gboolean
slim_tokenizer_unsupported (const char *path, const char *what, const char *type, GError **error)
{
  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
               "%s: unsupported %s type \"%s\"", path, what, type != NULL ? type : "(none)");
  return FALSE;
}

static gboolean
slim_tokenizer_add_normalizer (SlimTokenizer *self,
                               const char *path,
                               JsonObject *object,
                               GError **error)
{
  const char *type = slim_json_string_member (object, "type");
  SlimNormStep step = { 0 };
  if (g_strcmp0 (type, "Sequence") == 0)
    {
      JsonNode *list = slim_json_member (object, "normalizers");
      if (list == NULL || !JSON_NODE_HOLDS_ARRAY (list))
        return slim_tokenizer_unsupported (path, "normalizer", "Sequence without a list", error);
      JsonArray *array = json_node_get_array (list);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *item = json_array_get_element (array, i);
          if (!JSON_NODE_HOLDS_OBJECT (item))
            return slim_tokenizer_unsupported (path, "normalizer", "non-object", error);
          if (!slim_tokenizer_add_normalizer (self, path, json_node_get_object (item), error))
            return FALSE;
        }
      return TRUE;
    }
  else if (g_strcmp0 (type, "Prepend") == 0)
    {
      const char *prepend = slim_json_string_member (object, "prepend");
      if (prepend == NULL)
        return slim_tokenizer_unsupported (path, "normalizer", "Prepend without text", error);
      step.kind = SLIM_NORM_PREPEND;
      step.a = g_strdup (prepend);
    }
  else if (g_strcmp0 (type, "Replace") == 0)
    {
      gboolean is_regex;
      const char *pattern = slim_json_pattern (object, &is_regex);
      const char *content = slim_json_string_member (object, "content");
      if (pattern == NULL || is_regex || content == NULL || pattern[0] == '\0')
        return slim_tokenizer_unsupported (path, "normalizer", "Replace (non-string pattern)",
                                           error);
      step.kind = SLIM_NORM_REPLACE;
      step.a = g_strdup (pattern);
      step.b = g_strdup (content);
    }
  else if (g_strcmp0 (type, "NFC") == 0)
    step.kind = SLIM_NORM_NFC;
  else if (g_strcmp0 (type, "NFKC") == 0)
    step.kind = SLIM_NORM_NFKC;
  else if (g_strcmp0 (type, "Lowercase") == 0)
    step.kind = SLIM_NORM_LOWERCASE;
  else
    return slim_tokenizer_unsupported (path, "normalizer", type, error);
  g_array_append_val (self->normalizers, step);
  return TRUE;
}

static GRegex *
slim_tokenizer_compile (const char *path, const char *pattern, gboolean is_regex, GError **error)
{
  g_autofree char *escaped = is_regex ? g_strdup (pattern) : g_regex_escape_string (pattern, -1);
  g_autoptr (GError) local_error = NULL;
  GRegex *regex = g_regex_new (escaped, G_REGEX_OPTIMIZE, 0, &local_error);
  if (regex == NULL)
    g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                 "%s: pre-tokenizer pattern /%s/: %s", path, pattern, local_error->message);
  return regex;
}

static gboolean
slim_tokenizer_add_pretokenizer (SlimTokenizer *self,
                                 const char *path,
                                 JsonObject *object,
                                 GError **error)
{
  const char *type = slim_json_string_member (object, "type");
  SlimPreStep step = { 0 };
  if (g_strcmp0 (type, "Sequence") == 0)
    {
      JsonNode *list = slim_json_member (object, "pretokenizers");
      if (list == NULL || !JSON_NODE_HOLDS_ARRAY (list))
        return slim_tokenizer_unsupported (path, "pre-tokenizer", "Sequence without a list", error);
      JsonArray *array = json_node_get_array (list);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *item = json_array_get_element (array, i);
          if (!JSON_NODE_HOLDS_OBJECT (item))
            return slim_tokenizer_unsupported (path, "pre-tokenizer", "non-object", error);
          if (!slim_tokenizer_add_pretokenizer (self, path, json_node_get_object (item), error))
            return FALSE;
        }
      return TRUE;
    }
  else if (g_strcmp0 (type, "Split") == 0)
    {
      gboolean is_regex;
      const char *pattern = slim_json_pattern (object, &is_regex);
      const char *behavior = slim_json_string_member (object, "behavior");
      if (pattern == NULL || pattern[0] == '\0')
        return slim_tokenizer_unsupported (path, "pre-tokenizer", "Split without pattern", error);
      if (slim_json_bool_member (object, "invert", FALSE))
        return slim_tokenizer_unsupported (path, "pre-tokenizer", "Split with invert", error);
      step.kind = SLIM_PRE_SPLIT;
      if (g_strcmp0 (behavior, "Isolated") == 0)
        step.behavior = SLIM_SPLIT_ISOLATED;
      else if (g_strcmp0 (behavior, "Removed") == 0)
        step.behavior = SLIM_SPLIT_REMOVED;
      else if (g_strcmp0 (behavior, "MergedWithPrevious") == 0)
        step.behavior = SLIM_SPLIT_MERGED_WITH_PREVIOUS;
      else if (g_strcmp0 (behavior, "MergedWithNext") == 0)
        step.behavior = SLIM_SPLIT_MERGED_WITH_NEXT;
      else
        return slim_tokenizer_unsupported (path, "Split behavior", behavior, error);
      step.regex = slim_tokenizer_compile (path, pattern, is_regex, error);
      if (step.regex == NULL)
        return FALSE;
      step.pattern = g_strdup (pattern);
      step.pattern_is_regex = is_regex;
    }
  else if (g_strcmp0 (type, "ByteLevel") == 0)
    {
      step.kind = SLIM_PRE_BYTE_LEVEL;
      step.add_prefix_space = slim_json_bool_member (object, "add_prefix_space", TRUE);
      if (slim_json_bool_member (object, "use_regex", TRUE))
        {
          step.regex = slim_tokenizer_compile (path, SLIM_GPT2_PATTERN, TRUE, error);
          if (step.regex == NULL)
            return FALSE;
          step.pattern = g_strdup (SLIM_GPT2_PATTERN);
          step.pattern_is_regex = TRUE;
        }
      self->byte_level = TRUE;
    }
  else if (g_strcmp0 (type, "Metaspace") == 0)
    {
      const char *replacement = slim_json_string_member (object, "replacement");
      const char *scheme = slim_json_string_member (object, "prepend_scheme");
      step.kind = SLIM_PRE_METASPACE;
      step.replacement = g_strdup (replacement != NULL ? replacement : "\xe2\x96\x81");
      if (scheme == NULL)
        step.prepend_always = slim_json_bool_member (object, "add_prefix_space", TRUE);
      else if (strcmp (scheme, "always") == 0)
        step.prepend_always = TRUE;
      else if (strcmp (scheme, "first") == 0)
        step.prepend_first = TRUE;
      else if (strcmp (scheme, "never") != 0)
        return slim_tokenizer_unsupported (path, "Metaspace prepend_scheme", scheme, error);
      step.split = slim_json_bool_member (object, "split", TRUE);
    }
  else if (g_strcmp0 (type, "Digits") == 0)
    {
      step.kind = SLIM_PRE_SPLIT;
      step.behavior = SLIM_SPLIT_ISOLATED;
      step.regex = slim_tokenizer_compile (
          path, slim_json_bool_member (object, "individual_digits", FALSE) ? "[0-9]" : "[0-9]+",
          TRUE, error);
      if (step.regex == NULL)
        return FALSE;
      step.digits = TRUE;
    }
  else
    return slim_tokenizer_unsupported (path, "pre-tokenizer", type, error);
  g_array_append_val (self->pretokenizers, step);
  return TRUE;
}

static gboolean
slim_tokenizer_add_decoder (SlimTokenizer *self,
                            const char *path,
                            JsonObject *object,
                            GError **error)
{
  const char *type = slim_json_string_member (object, "type");
  SlimDecStep step = { 0 };
  if (g_strcmp0 (type, "Sequence") == 0)
    {
      JsonNode *list = slim_json_member (object, "decoders");
      if (list == NULL || !JSON_NODE_HOLDS_ARRAY (list))
        return slim_tokenizer_unsupported (path, "decoder", "Sequence without a list", error);
      JsonArray *array = json_node_get_array (list);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *item = json_array_get_element (array, i);
          if (!JSON_NODE_HOLDS_OBJECT (item))
            return slim_tokenizer_unsupported (path, "decoder", "non-object", error);
          if (!slim_tokenizer_add_decoder (self, path, json_node_get_object (item), error))
            return FALSE;
        }
      return TRUE;
    }
  else if (g_strcmp0 (type, "Replace") == 0)
    {
      gboolean is_regex;
      const char *pattern = slim_json_pattern (object, &is_regex);
      const char *content = slim_json_string_member (object, "content");
      if (pattern == NULL || is_regex || content == NULL || pattern[0] == '\0')
        return slim_tokenizer_unsupported (path, "decoder", "Replace (non-string pattern)", error);
      step.kind = SLIM_DEC_REPLACE;
      step.a = g_strdup (pattern);
      step.b = g_strdup (content);
    }
  else if (g_strcmp0 (type, "ByteFallback") == 0)
    step.kind = SLIM_DEC_BYTE_FALLBACK;
  else if (g_strcmp0 (type, "Fuse") == 0)
    step.kind = SLIM_DEC_FUSE;
  else if (g_strcmp0 (type, "Strip") == 0)
    {
      const char *content = slim_json_string_member (object, "content");
      step.kind = SLIM_DEC_STRIP;
      step.a = g_strdup (content != NULL ? content : " ");
      if (!slim_json_int_member (object, "start", &step.n_start))
        step.n_start = 0;
      if (!slim_json_int_member (object, "stop", &step.n_stop))
        step.n_stop = 0;
      if (step.n_start < 0 || step.n_stop < 0 || step.n_start > 1024 || step.n_stop > 1024
          || g_utf8_strlen (step.a, -1) != 1)
        {
          g_free (step.a);
          return slim_tokenizer_unsupported (path, "decoder", "Strip (bad parameters)", error);
        }
    }
  else if (g_strcmp0 (type, "ByteLevel") == 0)
    step.kind = SLIM_DEC_BYTE_LEVEL;
  else if (g_strcmp0 (type, "Metaspace") == 0)
    {
      const char *replacement = slim_json_string_member (object, "replacement");
      const char *scheme = slim_json_string_member (object, "prepend_scheme");
      step.kind = SLIM_DEC_METASPACE;
      step.a = g_strdup (replacement != NULL ? replacement : "\xe2\x96\x81");
      step.prepend = scheme != NULL ? strcmp (scheme, "never") != 0
                                    : slim_json_bool_member (object, "add_prefix_space", TRUE);
    }
  else
    return slim_tokenizer_unsupported (path, "decoder", type, error);
  g_array_append_val (self->decoders, step);
  return TRUE;
}

/* The special token named by a tokenizer_config.json entry, which is a
 * string or an object with "content". */
static const char *
slim_config_token (JsonObject *config, const char *name)
{
  const char *text = slim_json_string_member (config, name);
  if (text == NULL)
    text = slim_json_string_member (slim_json_object_member (config, name), "content");
  return text;
}

/* BOS/EOS from the TemplateProcessing post-processor: a SpecialToken at
 * the start (end) of the "single" template. */
static void
slim_tokenizer_template_specials (SlimTokenizer *self,
                                  JsonObject *root,
                                  gint32 *out_first,
                                  gint32 *out_last)
{
  *out_first = -1;
  *out_last = -1;
  JsonObject *post = slim_json_object_member (root, "post_processor");
  if (g_strcmp0 (slim_json_string_member (post, "type"), "TemplateProcessing") != 0)
    return;
  JsonNode *single = slim_json_member (post, "single");
  if (single == NULL || !JSON_NODE_HOLDS_ARRAY (single))
    return;
  JsonArray *items = json_node_get_array (single);
  guint n_items = json_array_get_length (items);
  for (guint end = 0; end < 2 && n_items > 0; end++)
    {
      JsonNode *item = json_array_get_element (items, end == 0 ? 0 : n_items - 1);
      if (!JSON_NODE_HOLDS_OBJECT (item))
        continue;
      JsonObject *special = slim_json_object_member (json_node_get_object (item), "SpecialToken");
      const char *name = slim_json_string_member (special, "id");
      if (name != NULL)
        *(end == 0 ? out_first : out_last) = slim_tokenizer_lookup (self, name);
    }
}

static gboolean
slim_tokenizer_load (SlimTokenizer *self, const char *path, const char *config_path, GError **error)
{
  g_autoptr (JsonParser) parser = slim_json_load (path, error);
  if (parser == NULL)
    return FALSE;
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));

  JsonObject *model = slim_json_object_member (root, "model");
  const char *model_type = slim_json_string_member (model, "type");
  if (model == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: \"model\" is missing or not an object", path);
      return FALSE;
    }
  /* Hugging Face writes BPE models without "type" in old files. */
  if (model_type != NULL && strcmp (model_type, "BPE") != 0)
    return slim_tokenizer_unsupported (path, "model", model_type, error);

  JsonObject *normalizer = slim_json_object_member (root, "normalizer");
  if (normalizer != NULL && !slim_tokenizer_add_normalizer (self, path, normalizer, error))
    return FALSE;
  JsonObject *pretokenizer = slim_json_object_member (root, "pre_tokenizer");
  if (pretokenizer != NULL && !slim_tokenizer_add_pretokenizer (self, path, pretokenizer, error))
    return FALSE;
  JsonObject *decoder = slim_json_object_member (root, "decoder");
  if (decoder != NULL && !slim_tokenizer_add_decoder (self, path, decoder, error))
    return FALSE;

  self->byte_fallback = slim_json_bool_member (model, "byte_fallback", FALSE);
  self->ignore_merges = slim_json_bool_member (model, "ignore_merges", FALSE);
  /* SentencePiece conversions are the BPE models that are not byte-level. */
  self->piece_priority = !self->byte_level;

  if (!slim_tokenizer_load_vocab (self, path, model, error))
    return FALSE;
  if (!slim_tokenizer_load_merges (self, path, model, error))
    return FALSE;
  if (!slim_tokenizer_load_added (self, path, root, error))
    return FALSE;

  self->vocab_size = self->id_to_token->len;
  if (self->vocab_size == 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: empty vocabulary",
                   path);
      return FALSE;
    }
  self->special = g_new0 (guint8, self->vocab_size); /* (vocab_size) */
  self->added = g_new0 (guint8, self->vocab_size);   /* (vocab_size) */
  for (guint i = 0; i < self->added_tokens->len; i++)
    {
      SlimAddedToken *token = &g_array_index (self->added_tokens, SlimAddedToken, i);
      self->added[token->id] = 1;
      self->special[token->id] = token->special ? 1 : 0;
    }
  for (guint i = 0; i < self->added_tokens->len; i++)
    {
      SlimAddedToken *token = &g_array_index (self->added_tokens, SlimAddedToken, i);
      guint8 first = (guint8)token->content[0];
      if (self->added_by_byte[first] == NULL)
        self->added_by_byte[first] = g_ptr_array_new ();
      g_ptr_array_add (self->added_by_byte[first], token);
    }
  for (guint i = 0; i < 256; i++)
    if (self->added_by_byte[i] != NULL)
      g_ptr_array_sort (self->added_by_byte[i], slim_added_token_compare_length);

  const char *unk = slim_json_string_member (model, "unk_token");
  if (unk != NULL)
    self->unk_id = slim_tokenizer_lookup (self, unk);
  for (guint b = 0; b < 256; b++)
    {
      char name[8];
      g_snprintf (name, sizeof name, "<0x%02X>", b);
      self->byte_ids[b] = slim_tokenizer_lookup (self, name);
    }
  slim_tokenizer_byte_level_init (self);

  /* BOS/EOS: tokenizer_config.json decides, the post-processor template
   * is the fallback (Llama 3 and Qwen configs have no add_bos_token). */
  gint32 template_first, template_last;
  slim_tokenizer_template_specials (self, root, &template_first, &template_last);
  self->bos_id = template_first;
  self->add_bos = template_first >= 0;
  self->eos_id = -1;
  self->add_eos = template_last >= 0 && template_last != template_first;
  if (self->add_eos)
    self->eos_id = template_last;

  g_autoptr (JsonParser) config_parser = NULL;
  if (config_path != NULL && g_file_test (config_path, G_FILE_TEST_EXISTS))
    {
      config_parser = slim_json_load (config_path, error);
      if (config_parser == NULL)
        return FALSE;
      JsonObject *config = json_node_get_object (json_parser_get_root (config_parser));
      const char *bos = slim_config_token (config, "bos_token");
      const char *eos = slim_config_token (config, "eos_token");
      if (bos != NULL)
        self->bos_id = slim_tokenizer_lookup (self, bos);
      if (eos != NULL)
        self->eos_id = slim_tokenizer_lookup (self, eos);
      /* a pad_token outside the vocabulary stays -1: encode never emits it */
      const char *pad = slim_config_token (config, "pad_token");
      if (pad != NULL)
        self->pad_id = slim_tokenizer_lookup (self, pad);
      if (bos != NULL && self->bos_id < 0)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: bos_token \"%s\" is not in the vocabulary", config_path, bos);
          return FALSE;
        }
      if (eos != NULL && self->eos_id < 0)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: eos_token \"%s\" is not in the vocabulary", config_path, eos);
          return FALSE;
        }
      self->add_bos = slim_json_bool_member (config, "add_bos_token", self->add_bos);
      self->add_eos = slim_json_bool_member (config, "add_eos_token", self->add_eos);
    }
  if (self->add_bos && self->bos_id < 0)
    self->add_bos = FALSE;
  if (self->add_eos && self->eos_id < 0)
    self->add_eos = FALSE;
  return TRUE;
}

/**
 * slim_tokenizer_new_from_files:
 * @tokenizer_json: path of tokenizer.json
 * @tokenizer_config_json: (nullable): path of tokenizer_config.json; a
 *   missing file is allowed (BOS/EOS then come from the post-processor)
 * @error: return location for a #GError
 *
 * Reads a BPE tokenizer.  Fails with %SLIM_FORMAT_ERROR_INVALID on a
 * malformed or unsupported file, %G_FILE_ERROR when it cannot be read.
 *
 * Returns: (transfer full) (nullable): the tokenizer, or %NULL on error
 */
SlimTokenizer *
slim_tokenizer_new_from_files (const char *tokenizer_json,
                               const char *tokenizer_config_json,
                               GError **error)
{
  g_return_val_if_fail (tokenizer_json != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (SlimTokenizer) self = g_object_new (SLIM_TYPE_TOKENIZER, NULL);
  if (!slim_tokenizer_load (self, tokenizer_json, tokenizer_config_json, error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * slim_tokenizer_new_from_dir:
 * @dir: a model folder holding tokenizer.json (and tokenizer_config.json)
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the tokenizer, or %NULL on error
 */
SlimTokenizer *
slim_tokenizer_new_from_dir (const char *dir, GError **error)
{
  g_return_val_if_fail (dir != NULL, NULL);
  g_autofree char *json_path = g_build_filename (dir, "tokenizer.json", NULL);
  g_autofree char *config_path = g_build_filename (dir, "tokenizer_config.json", NULL);
  if (!g_file_test (json_path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: no such file", json_path);
      return NULL;
    }
  return slim_tokenizer_new_from_files (json_path, config_path, error);
}

/* ---------------------------------------------------------------------- */
/* Text helpers (the pre-tokenizer uses them too)                           */

/* First occurrence of pattern (n_pattern > 0 bytes) in [p, end), or NULL.
 * memchr + memcmp instead of strstr: the sanitizers' strstr measures the
 * whole haystack on every call, which turns a loop over a long text
 * quadratic. */
const char *
slim_tokenizer_find (const char *p, const char *end, const char *pattern, gsize n_pattern)
{
  while (p < end && (gsize)(end - p) >= n_pattern)
    {
      const char *hit = memchr (p, pattern[0], (gsize)(end - p) - n_pattern + 1);
      if (hit == NULL)
        return NULL;
      if (memcmp (hit, pattern, n_pattern) == 0)
        return hit;
      p = hit + 1;
    }
  return NULL;
}

char *
slim_tokenizer_replace_all (const char *text, const char *pattern, const char *replacement)
{
  gsize n_text = strlen (text);
  gsize n_pattern = strlen (pattern);
  const char *end = text + n_text;
  GString *out = g_string_sized_new (n_text + 1);
  const char *p = text;
  const char *hit;
  while ((hit = slim_tokenizer_find (p, end, pattern, n_pattern)) != NULL)
    {
      g_string_append_len (out, p, hit - p);
      g_string_append (out, replacement);
      p = hit + n_pattern;
    }
  g_string_append_len (out, p, end - p);
  return g_string_free (out, FALSE);
}

/* ---------------------------------------------------------------------- */
/* Encoding                                                                 */

static char *
slim_tokenizer_normalize (SlimTokenizer *self, const char *segment)
{
  char *text = g_strdup (segment);
  for (guint i = 0; i < self->normalizers->len; i++)
    {
      SlimNormStep *step = &g_array_index (self->normalizers, SlimNormStep, i);
      char *next = NULL;
      switch (step->kind)
        {
        case SLIM_NORM_PREPEND:
          next = text[0] != '\0' ? g_strconcat (step->a, text, NULL) : g_strdup (text);
          break;
        case SLIM_NORM_REPLACE:
          next = slim_tokenizer_replace_all (text, step->a, step->b);
          break;
        case SLIM_NORM_NFC:
          next = g_utf8_normalize (text, -1, G_NORMALIZE_DEFAULT_COMPOSE);
          break;
        case SLIM_NORM_NFKC:
          next = g_utf8_normalize (text, -1, G_NORMALIZE_ALL_COMPOSE);
          break;
        case SLIM_NORM_LOWERCASE:
          next = g_utf8_strdown (text, -1);
          break;
        }
      g_free (text);
      text = next != NULL ? next : g_strdup ("");
    }
  return text;
}

static void
slim_tokenizer_encode_segment (SlimTokenizer *self,
                               const char *segment,
                               gsize segment_bytes,
                               gboolean first_segment,
                               GArray *ids)
{
  if (segment_bytes == 0)
    return;
  g_autofree char *raw = g_strndup (segment, segment_bytes);
  char *normalized = slim_tokenizer_normalize (self, raw);
  g_autoptr (GPtrArray) words = slim_tokenizer_pretokenize (self, normalized, first_segment);
  for (guint i = 0; i < words->len; i++)
    {
      const char *word = g_ptr_array_index (words, i);
      if (self->byte_level)
        slim_tokenizer_byte_level_bpe (self, word, strlen (word), ids);
      else
        slim_tokenizer_sentencepiece_bpe (self, word, strlen (word), ids);
    }
}

/* Longest added token starting at text, or NULL. */
static const SlimAddedToken *
slim_tokenizer_match_added (SlimTokenizer *self, const char *text)
{
  GPtrArray *candidates = self->added_by_byte[(guint8)text[0]];
  if (candidates == NULL)
    return NULL;
  for (guint i = 0; i < candidates->len; i++)
    {
      const SlimAddedToken *token = g_ptr_array_index (candidates, i);
      /* strncmp stops at the token's length (g_str_has_prefix would
       * measure the rest of the text each time). */
      if (strncmp (text, token->content, strlen (token->content)) == 0)
        return token;
    }
  return NULL;
}

static gboolean
slim_is_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/**
 * slim_tokenizer_encode:
 * @self: a #SlimTokenizer
 * @text: UTF-8 text, NUL-terminated
 * @add_special: add BOS (and EOS) as tokenizer_config.json asks
 * @error: return location for a #GError
 *
 * Fails with %SLIM_FORMAT_ERROR_INVALID when @text is not valid UTF-8.
 *
 * Returns: (transfer full) (nullable): a #GArray of #gint32 token ids
 */
GArray *
slim_tokenizer_encode (SlimTokenizer *self, const char *text, gboolean add_special, GError **error)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), NULL);
  g_return_val_if_fail (text != NULL, NULL);

  const char *invalid = NULL;
  if (!g_utf8_validate (text, -1, &invalid))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "text is not valid UTF-8 (byte offset %" G_GSIZE_FORMAT ")",
                   (gsize)(invalid - text));
      return NULL;
    }

  gsize text_bytes = strlen (text);
  if (text_bytes > G_MAXINT32)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "text too long to tokenize (%" G_GSIZE_FORMAT " bytes, at most %d)", text_bytes,
                   G_MAXINT32);
      return NULL;
    }
  GArray *ids = g_array_sized_new (FALSE, FALSE, sizeof (gint32), text_bytes / 3 + 2);
  if (add_special && self->add_bos)
    g_array_append_val (ids, self->bos_id);

  gsize segment_start = 0;
  gsize pos = 0;
  gboolean first_segment = TRUE;
  while (pos < text_bytes)
    {
      const SlimAddedToken *token = slim_tokenizer_match_added (self, text + pos);
      if (token == NULL)
        {
          pos++;
          continue;
        }
      gsize segment_end = pos;
      if (token->lstrip)
        while (segment_end > segment_start && slim_is_space (text[segment_end - 1]))
          segment_end--;
      slim_tokenizer_encode_segment (self, text + segment_start, segment_end - segment_start,
                                     first_segment, ids);
      first_segment = FALSE;
      g_array_append_val (ids, token->id);
      pos += strlen (token->content);
      if (token->rstrip)
        while (pos < text_bytes && slim_is_space (text[pos]))
          pos++;
      segment_start = pos;
    }
  slim_tokenizer_encode_segment (self, text + segment_start, text_bytes - segment_start,
                                 first_segment, ids);

  if (add_special && self->add_eos)
    g_array_append_val (ids, self->eos_id);
  return ids;
}

/* ---------------------------------------------------------------------- */
/* Decoding                                                                 */

static void
slim_tokenizer_decode_step (SlimTokenizer *self,
                            const SlimDecStep *step,
                            GPtrArray *tokens,
                            const guint8 *literal)
{
  switch (step->kind)
    {
    case SLIM_DEC_REPLACE:
      for (guint i = 0; i < tokens->len; i++)
        {
          char **token = (char **)&g_ptr_array_index (tokens, i);
          char *replaced = slim_tokenizer_replace_all (*token, step->a, step->b);
          g_free (*token);
          *token = replaced;
        }
      break;
    case SLIM_DEC_BYTE_FALLBACK:
      for (guint i = 0; i < tokens->len; i++)
        {
          if (literal != NULL && literal[i])
            continue;
          char **token = (char **)&g_ptr_array_index (tokens, i);
          gint byte = slim_tokenizer_parse_byte_token (*token);
          if (byte >= 0)
            {
              /* A raw byte; invalid sequences are repaired after Fuse. */
              g_free (*token);
              *token = g_malloc (2);
              (*token)[0] = (char)byte;
              (*token)[1] = '\0';
              if (byte == 0)
                {
                  /* Keep NUL out of C strings. */
                  g_free (*token);
                  *token = g_strdup ("\xef\xbf\xbd");
                }
            }
        }
      break;
    case SLIM_DEC_FUSE:
      {
        GString *all = g_string_new (NULL);
        for (guint i = 0; i < tokens->len; i++)
          g_string_append (all, g_ptr_array_index (tokens, i));
        g_ptr_array_set_size (tokens, 0);
        g_ptr_array_add (tokens, g_string_free (all, FALSE));
      }
      break;
    case SLIM_DEC_STRIP:
      for (guint i = 0; i < tokens->len; i++)
        {
          char **token = (char **)&g_ptr_array_index (tokens, i);
          gsize n_content = strlen (step->a);
          const char *start = *token;
          for (gint64 k = 0; k < step->n_start && g_str_has_prefix (start, step->a); k++)
            start += n_content;
          gsize n = strlen (start);
          for (gint64 k = 0; k < step->n_stop && n >= n_content
                             && memcmp (start + n - n_content, step->a, n_content) == 0;
               k++)
            n -= n_content;
          char *stripped = g_strndup (start, n);
          g_free (*token);
          *token = stripped;
        }
      break;
    case SLIM_DEC_BYTE_LEVEL:
      for (guint i = 0; i < tokens->len; i++)
        {
          if (literal != NULL && literal[i])
            continue;
          char **token = (char **)&g_ptr_array_index (tokens, i);
          char *bytes = slim_tokenizer_byte_level_decode (self, *token);
          g_free (*token);
          *token = bytes;
        }
      break;
    case SLIM_DEC_METASPACE:
      for (guint i = 0; i < tokens->len; i++)
        {
          char **token = (char **)&g_ptr_array_index (tokens, i);
          char *replaced = slim_tokenizer_replace_all (*token, step->a, " ");
          if (i == 0 && step->prepend && replaced[0] == ' ')
            memmove (replaced, replaced + 1, strlen (replaced));
          g_free (*token);
          *token = replaced;
        }
      break;
    }
}

/**
 * slim_tokenizer_decode:
 * @self: a #SlimTokenizer
 * @ids: (array length=n_ids): token ids
 * @n_ids: number of ids
 * @skip_special: leave special tokens out
 *
 * Ids outside the vocabulary are skipped (check them first with
 * slim_tokenizer_check_ids() when they come from outside).
 *
 * Returns: (transfer full): valid UTF-8 text
 */
char *
slim_tokenizer_decode (SlimTokenizer *self, const gint32 *ids, gsize n_ids, gboolean skip_special)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), NULL);
  g_return_val_if_fail (ids != NULL || n_ids == 0, NULL);

  g_autoptr (GPtrArray) tokens = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GByteArray) literal = g_byte_array_new ();
  for (gsize i = 0; i < n_ids; i++)
    {
      gint32 id = ids[i];
      if (id < 0 || id >= self->vocab_size)
        continue;
      const char *token = g_ptr_array_index (self->id_to_token, id);
      if (token == NULL || (skip_special && self->special[id]))
        continue;
      g_ptr_array_add (tokens, g_strdup (token));
      guint8 is_literal = self->added[id];
      g_byte_array_append (literal, &is_literal, 1);
    }
  for (guint i = 0; i < self->decoders->len; i++)
    {
      const SlimDecStep *step = &g_array_index (self->decoders, SlimDecStep, i);
      slim_tokenizer_decode_step (self, step, tokens,
                                  literal->len == tokens->len ? literal->data : NULL);
    }
  GString *out = g_string_new (NULL);
  for (guint i = 0; i < tokens->len; i++)
    g_string_append (out, g_ptr_array_index (tokens, i));
  char *text = g_utf8_make_valid (out->str, out->len);
  g_string_free (out, TRUE);
  return text;
}

/**
 * slim_tokenizer_check_ids:
 * @self: a #SlimTokenizer
 * @ids: (array length=n_ids): token ids
 * @n_ids: number of ids
 * @error: return location for a #GError
 *
 * Returns: %TRUE when every id is in [0, vocab size); otherwise sets
 *   %SLIM_MODEL_ERROR_INPUT naming the first bad id and its position
 */
gboolean
slim_tokenizer_check_ids (SlimTokenizer *self, const gint32 *ids, gsize n_ids, GError **error)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), FALSE);
  for (gsize i = 0; i < n_ids; i++)
    if (ids[i] < 0 || ids[i] >= self->vocab_size)
      {
        g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                     "token id %d at position %" G_GSIZE_FORMAT
                     " is outside the vocabulary [0, %" G_GINT64_FORMAT ")",
                     ids[i], i, self->vocab_size);
        return FALSE;
      }
  return TRUE;
}

/**
 * slim_tokenizer_get_vocab_size:
 * @self: a #SlimTokenizer
 *
 * Returns: the number of ids (the largest id + 1)
 */
gint64
slim_tokenizer_get_vocab_size (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), 0);
  return self->vocab_size;
}

/**
 * slim_tokenizer_get_bos_id:
 * @self: a #SlimTokenizer
 *
 * Returns: the BOS id, or -1
 */
gint32
slim_tokenizer_get_bos_id (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), -1);
  return self->bos_id;
}

/**
 * slim_tokenizer_get_eos_id:
 * @self: a #SlimTokenizer
 *
 * Returns: the EOS id, or -1
 */
gint32
slim_tokenizer_get_eos_id (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), -1);
  return self->eos_id;
}

/**
 * slim_tokenizer_get_add_bos:
 * @self: a #SlimTokenizer
 *
 * Returns: whether encode() with add_special prepends BOS
 */
gboolean
slim_tokenizer_get_add_bos (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), FALSE);
  return self->add_bos;
}

/**
 * slim_tokenizer_get_add_eos:
 * @self: a #SlimTokenizer
 *
 * Returns: whether encode() with add_special appends EOS
 */
gboolean
slim_tokenizer_get_add_eos (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), FALSE);
  return self->add_eos;
}

/**
 * slim_tokenizer_id_to_token:
 * @self: a #SlimTokenizer
 * @id: a token id
 *
 * Returns: (transfer none) (nullable): the token string, %NULL when @id is
 *   out of range or unused
 */
const char *
slim_tokenizer_id_to_token (SlimTokenizer *self, gint32 id)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), NULL);
  if (id < 0 || id >= self->vocab_size)
    return NULL;
  return g_ptr_array_index (self->id_to_token, id);
}

/**
 * slim_tokenizer_token_to_id:
 * @self: a #SlimTokenizer
 * @token: a token string
 *
 * Returns: its id, or -1
 */
gint32
slim_tokenizer_token_to_id (SlimTokenizer *self, const char *token)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), -1);
  g_return_val_if_fail (token != NULL, -1);
  return slim_tokenizer_lookup (self, token);
}

/**
 * slim_tokenizer_is_special:
 * @self: a #SlimTokenizer
 * @id: a token id
 *
 * Returns: %TRUE for special added tokens (BOS, EOS, chat markers)
 */
gboolean
slim_tokenizer_is_special (SlimTokenizer *self, gint32 id)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), FALSE);
  return id >= 0 && id < self->vocab_size && self->special[id];
}

/**
 * slim_tokenizer_get_kind:
 * @self: a tokenizer
 *
 * Returns: which of the two BPE families @self is
 */
SlimTokenizerKind
slim_tokenizer_get_kind (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), SLIM_TOKENIZER_SENTENCEPIECE_BPE);
  return self->byte_level ? SLIM_TOKENIZER_BYTE_LEVEL_BPE : SLIM_TOKENIZER_SENTENCEPIECE_BPE;
}

/**
 * slim_tokenizer_get_unk_id:
 * @self: a tokenizer
 *
 * Returns: the id of model.unk_token, -1 when there is none
 */
gint32
slim_tokenizer_get_unk_id (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), -1);
  return self->unk_id;
}

/**
 * slim_tokenizer_is_added:
 * @self: a tokenizer
 * @id: a token id
 *
 * Returns: %TRUE for tokens of tokenizer.json's added_tokens (special or not)
 */
gboolean
slim_tokenizer_is_added (SlimTokenizer *self, gint32 id)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), FALSE);
  return id >= 0 && id < self->vocab_size && self->added[id];
}

/**
 * slim_tokenizer_get_byte_value:
 * @self: a tokenizer
 * @id: a token id
 *
 * Returns: the byte NN of a byte-fallback token <0xNN>, -1 for any other
 *   token (and for every token of a tokenizer without byte fallback)
 */
gint
slim_tokenizer_get_byte_value (SlimTokenizer *self, gint32 id)
{
  const char *token;

  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), -1);
  if (!self->byte_fallback || self->byte_level)
    return -1;
  token = slim_tokenizer_id_to_token (self, id);
  return token != NULL ? slim_tokenizer_parse_byte_token (token) : -1;
}

/**
 * slim_tokenizer_get_add_space_prefix:
 * @self: a SentencePiece-style tokenizer
 *
 * Returns: %TRUE when encoding puts a "▁" before the text (a Prepend "▁"
 *   normalizer or a Metaspace pre-tokenizer that prepends), as
 *   SentencePiece's add_dummy_prefix does
 */
gboolean
slim_tokenizer_get_add_space_prefix (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), FALSE);
  for (guint i = 0; i < self->normalizers->len; i++)
    {
      SlimNormStep *step = &g_array_index (self->normalizers, SlimNormStep, i);
      if (step->kind == SLIM_NORM_PREPEND && g_strcmp0 (step->a, "\xe2\x96\x81") == 0)
        return TRUE;
    }
  for (guint i = 0; i < self->pretokenizers->len; i++)
    {
      SlimPreStep *step = &g_array_index (self->pretokenizers, SlimPreStep, i);
      if (step->kind == SLIM_PRE_METASPACE && (step->prepend_always || step->prepend_first))
        return TRUE;
    }
  return FALSE;
}

/**
 * slim_tokenizer_get_n_merges:
 * @self: a tokenizer
 *
 * Returns: the number of merges tokenizer.json lists
 */
gint64
slim_tokenizer_get_n_merges (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), 0);
  return self->n_merges;
}

/**
 * slim_tokenizer_get_piece_rank:
 * @self: a SentencePiece-style tokenizer
 * @id: a token id
 *
 * The merge priority of a piece: the rank (index in model.merges) of the
 * first merge producing it.  The encoder merges the adjacent pair whose
 * result has the smallest rank, as SentencePiece merges the pair whose
 * result has the best score.
 *
 * Returns: the rank, or -1 when no merge produces @id (single characters,
 *   byte and added tokens) or @self is byte-level
 */
gint32
slim_tokenizer_get_piece_rank (SlimTokenizer *self, gint32 id)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), -1);
  if (self->piece_rank == NULL || id < 0 || id >= self->n_piece_rank
      || self->piece_rank[id] == G_MAXINT32)
    return -1;
  return self->piece_rank[id];
}

/**
 * slim_tokenizer_get_merge:
 * @self: a tokenizer
 * @rank: index in tokenizer.json's model.merges
 * @out_left: (out): id of the merge's left token
 * @out_right: (out): id of its right token
 *
 * Returns: %FALSE when @rank is out of range
 */
gboolean
slim_tokenizer_get_merge (SlimTokenizer *self, gint64 rank, gint32 *out_left, gint32 *out_right)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), FALSE);
  if (rank < 0 || rank >= self->n_merges || self->merge_pairs == NULL)
    return FALSE;
  *out_left = self->merge_pairs[2 * rank];
  *out_right = self->merge_pairs[2 * rank + 1];
  return TRUE;
}

/**
 * slim_tokenizer_get_ignore_merges:
 * @self: a tokenizer
 *
 * Returns: tokenizer.json's model.ignore_merges (a word that is a token is
 *   emitted whole, without merging)
 */
gboolean
slim_tokenizer_get_ignore_merges (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), FALSE);
  return self->ignore_merges;
}

static const char *
slim_norm_kind_name (SlimNormKind kind)
{
  switch (kind)
    {
    case SLIM_NORM_PREPEND:
      return "Prepend";
    case SLIM_NORM_REPLACE:
      return "Replace";
    case SLIM_NORM_NFC:
      return "NFC";
    case SLIM_NORM_NFKC:
      return "NFKC";
    case SLIM_NORM_LOWERCASE:
      return "Lowercase";
    }
  return "?";
}

/**
 * slim_tokenizer_get_byte_level_split:
 * @self: a byte-level tokenizer
 * @error: return location for a #GError
 *
 * The one regular expression that splits the text into words before the
 * byte mapping, as tokenizer.json writes it: the pattern of a Split
 * pre-tokenizer (behavior Isolated, not inverted) followed by a ByteLevel
 * one without use_regex, or GPT-2's pattern for a lone ByteLevel with
 * use_regex.  Both need add_prefix_space false; the only normalizer
 * allowed is NFC (an identity on NFC text, which llama.cpp does not
 * apply either).  Any other pipeline (Digits, a second Split, a String
 * pattern, a Metaspace, a prefix space, Lowercase...) fails naming it:
 * an exporter cannot describe it as one regex.
 *
 * Returns: (transfer none) (nullable): the pattern, or %NULL with @error set
 */
const char *
slim_tokenizer_get_byte_level_split (SlimTokenizer *self, GError **error)
{
  const char *pattern = NULL;
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), NULL);
  if (!self->byte_level)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "tokenizer.json: not a byte-level (ByteLevel pre-tokenizer) BPE tokenizer");
      return NULL;
    }
  for (guint i = 0; i < self->normalizers->len; i++)
    {
      SlimNormStep *step = &g_array_index (self->normalizers, SlimNormStep, i);
      if (step->kind != SLIM_NORM_NFC)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "tokenizer.json: normalizer %s before a byte-level BPE (only NFC, or "
                       "none, can be exported)",
                       slim_norm_kind_name (step->kind));
          return NULL;
        }
    }
  for (guint i = 0; i < self->pretokenizers->len; i++)
    {
      SlimPreStep *step = &g_array_index (self->pretokenizers, SlimPreStep, i);
      const char *why = NULL;
      if (step->kind == SLIM_PRE_METASPACE)
        why = "a Metaspace pre-tokenizer";
      else if (step->kind == SLIM_PRE_BYTE_LEVEL && step->add_prefix_space)
        why = "ByteLevel with add_prefix_space true";
      else if (step->kind == SLIM_PRE_BYTE_LEVEL && i + 1 != self->pretokenizers->len)
        why = "a pre-tokenizer after ByteLevel";
      else if (step->kind == SLIM_PRE_SPLIT && step->digits)
        why = "a Digits pre-tokenizer";
      else if (step->kind == SLIM_PRE_SPLIT && !step->pattern_is_regex)
        why = "a Split with a String pattern";
      else if (step->kind == SLIM_PRE_SPLIT && step->behavior != SLIM_SPLIT_ISOLATED)
        why = "a Split whose behavior is not Isolated";
      else if (step->pattern != NULL && pattern != NULL)
        why = "two splitting regular expressions";
      if (why != NULL)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "tokenizer.json: the byte-level pre-tokenizer has %s; only one regex Split "
                       "(Isolated) then ByteLevel (add_prefix_space false), or ByteLevel with "
                       "use_regex, can be exported",
                       why);
          return NULL;
        }
      if (step->pattern != NULL)
        pattern = step->pattern;
    }
  if (pattern == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "tokenizer.json: the byte-level pre-tokenizer does not split the text (no "
                   "regex Split and ByteLevel use_regex false)");
      return NULL;
    }
  return pattern;
}

/**
 * slim_tokenizer_get_pad_id:
 * @self: a tokenizer
 *
 * Returns: the id of tokenizer_config.json's pad_token, -1 when it has
 *   none (or it is not in the vocabulary)
 */
gint32
slim_tokenizer_get_pad_id (SlimTokenizer *self)
{
  g_return_val_if_fail (SLIM_IS_TOKENIZER (self), -1);
  return self->pad_id;
}
