/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-glob.c: wcmatch-style fnmatch with BRACE for module names (see
 * slim-glob.h for the syntax).
 *
 * A pattern is first brace-expanded (bounded by SLIM_GLOB_MAX_EXPANSIONS and
 * SLIM_GLOB_MAX_BRACE_GROUPS), then every expansion is compiled to a token
 * list over Unicode code points: LITERAL, ANY (`?`), CLASS (`[...]`) and STAR
 * (`*`). Every token but STAR consumes exactly one character, so the classic
 * iterative matcher that only remembers the last STAR is exact and runs in
 * O(len(name) * len(tokens)) — no recursion, no exponential backtracking.
 */
#include "slim-glob.h"

#include "slim-error.h"

#include <string.h>

typedef enum
{
  SLIM_GLOB_TOKEN_LITERAL,
  SLIM_GLOB_TOKEN_ANY,
  SLIM_GLOB_TOKEN_STAR,
  SLIM_GLOB_TOKEN_CLASS,
} SlimGlobTokenKind;

typedef struct
{
  gunichar lo;
  gunichar hi;
} SlimGlobRange;

typedef struct
{
  SlimGlobTokenKind kind;
  gunichar c;        /* LITERAL */
  gboolean negate;   /* CLASS */
  guint first_range; /* CLASS: index into the alternative's ranges */
  guint n_ranges;    /* CLASS */
} SlimGlobToken;

/* One brace expansion of the pattern, compiled. */
typedef struct
{
  GArray *tokens; /* (n_tokens) SlimGlobToken */
  GArray *ranges; /* (n_ranges) SlimGlobRange, shared by the CLASS tokens */
} SlimGlobAlt;

struct _SlimGlob
{
  char *pattern;
  GPtrArray *alts; /* (n_expansions) SlimGlobAlt* */
};

static void
slim_glob_alt_free (gpointer data)
{
  SlimGlobAlt *alt = data;

  g_array_unref (alt->tokens);
  g_array_unref (alt->ranges);
  g_free (alt);
}

/* ---- brace expansion ---------------------------------------------------- */

typedef struct
{
  const char *pattern; /* for messages */
  GPtrArray *out;      /* expanded patterns (char *) */
  GError **error;
  gboolean failed;
} SlimBraceExpander;

/* Index of the `}` closing the `{` at `open`, honouring nesting and `\`
 * escapes; -1 when there is none. */
static gssize
slim_brace_find_close (const char *s, gsize len, gsize open)
{
  guint depth = 0;

  for (gsize i = open; i < len; i++)
    {
      if (s[i] == '\\')
        {
          i++;
          continue;
        }
      if (s[i] == '{')
        depth++;
      else if (s[i] == '}')
        {
          depth--;
          if (depth == 0)
            return (gssize)i;
        }
    }
  return -1;
}

/* Splits s[begin, end) on top-level commas; NULL when there is no comma. */
static GPtrArray *
slim_brace_split_commas (const char *s, gsize begin, gsize end)
{
  GPtrArray *items = NULL;
  guint depth = 0;
  gsize item_begin = begin;

  for (gsize i = begin; i < end; i++)
    {
      if (s[i] == '\\')
        {
          i++;
          continue;
        }
      if (s[i] == '{')
        depth++;
      else if (s[i] == '}')
        depth--;
      else if (s[i] == ',' && depth == 0)
        {
          if (items == NULL)
            items = g_ptr_array_new_with_free_func (g_free);
          g_ptr_array_add (items, g_strndup (s + item_begin, i - item_begin));
          item_begin = i + 1;
        }
    }
  if (items != NULL)
    g_ptr_array_add (items, g_strndup (s + item_begin, end - item_begin));
  return items;
}

/* Parses an optionally signed decimal integer of at most 9 digits covering
 * all of s[0, len); *padded is set when it has a leading zero ("01"). */
static gboolean
slim_brace_parse_int (const char *s, gsize len, gint64 *value, gboolean *padded)
{
  gsize i = 0;
  gint64 v = 0;

  if (len > 0 && s[0] == '-')
    i = 1;
  if (i == len || len - i > 9)
    return FALSE;
  *padded = (len - i > 1 && s[i] == '0');
  for (; i < len; i++)
    {
      if (!g_ascii_isdigit (s[i]))
        return FALSE;
      v = v * 10 + (s[i] - '0');
    }
  *value = (s[0] == '-') ? -v : v;
  return TRUE;
}

/* Bash sequence expression `lo..hi[..step]` with integers (zero-padded when
 * an end has a leading zero) or single ASCII letters. Returns NULL when the
 * text is not a sequence; sets *too_many when it would exceed `budget`. */
static GPtrArray *
slim_brace_parse_sequence (const char *s, gsize len, guint budget, gboolean *too_many)
{
  const char *dots1 = g_strstr_len (s, (gssize)len, "..");
  const char *dots2;
  gsize len_lo, len_hi, len_step = 0;
  const char *hi_start, *step_start = NULL;
  gint64 lo, hi, step = 1;
  gboolean pad_lo = FALSE, pad_hi = FALSE, pad_step = FALSE, is_char = FALSE;
  GPtrArray *items;
  guint64 count;
  int width = 0;

  *too_many = FALSE;
  if (dots1 == NULL)
    return NULL;
  len_lo = (gsize)(dots1 - s);
  hi_start = dots1 + 2;
  dots2 = g_strstr_len (hi_start, (gssize)(len - len_lo - 2), "..");
  if (dots2 != NULL)
    {
      len_hi = (gsize)(dots2 - hi_start);
      step_start = dots2 + 2;
      len_step = len - len_lo - 2 - len_hi - 2;
    }
  else
    len_hi = len - len_lo - 2;

  if (len_lo == 1 && len_hi == 1 && g_ascii_isalpha (s[0]) && g_ascii_isalpha (hi_start[0]))
    {
      is_char = TRUE;
      lo = s[0];
      hi = hi_start[0];
    }
  else if (!slim_brace_parse_int (s, len_lo, &lo, &pad_lo)
           || !slim_brace_parse_int (hi_start, len_hi, &hi, &pad_hi))
    return NULL;
  if (step_start != NULL)
    {
      if (!slim_brace_parse_int (step_start, len_step, &step, &pad_step))
        return NULL;
      step = ABS (step);
      if (step == 0)
        step = 1;
    }

  count = (guint64)ABS (hi - lo) / (guint64)step + 1;
  if (count > budget)
    {
      *too_many = TRUE;
      return NULL;
    }
  if (!is_char && (pad_lo || pad_hi))
    width = (int)MAX (len_lo, len_hi);

  items = g_ptr_array_new_with_free_func (g_free);
  for (guint64 k = 0; k < count; k++)
    {
      gint64 v = (lo <= hi) ? lo + (gint64)k * step : lo - (gint64)k * step;

      if (is_char)
        g_ptr_array_add (items, g_strdup_printf ("%c", (char)v));
      else if (width > 0 && v < 0)
        g_ptr_array_add (items, g_strdup_printf ("-%0*" G_GINT64_FORMAT, width - 1, -v));
      else
        g_ptr_array_add (items, g_strdup_printf ("%0*" G_GINT64_FORMAT, width, v));
    }
  return items;
}

static void
slim_brace_expand (SlimBraceExpander *ex, const char *s)
{
  gsize len = strlen (s);

  for (gsize open = 0; open < len; open++)
    {
      g_autoptr (GPtrArray) items = NULL;
      gssize close;
      gboolean too_many = FALSE;

      if (s[open] == '\\')
        {
          open++;
          continue;
        }
      if (s[open] != '{')
        continue;
      close = slim_brace_find_close (s, len, open);
      if (close < 0)
        continue; /* an unbalanced `{` is a literal character */
      items = slim_brace_split_commas (s, open + 1, (gsize)close);
      if (items == NULL)
        items = slim_brace_parse_sequence (s + open + 1, (gsize)close - open - 1,
                                           SLIM_GLOB_MAX_EXPANSIONS, &too_many);
      if (too_many)
        {
          g_set_error (ex->error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "pattern '%s': brace expansion gives more than %d patterns", ex->pattern,
                       SLIM_GLOB_MAX_EXPANSIONS);
          ex->failed = TRUE;
          return;
        }
      if (items == NULL)
        continue; /* `{a}` or `{}`: literal braces, inner groups may expand */

      for (guint k = 0; k < items->len && !ex->failed; k++)
        {
          g_autofree char *next = g_strdup_printf ("%.*s%s%s", (int)open, s,
                                                   (const char *)items->pdata[k], s + close + 1);
          slim_brace_expand (ex, next);
        }
      return;
    }

  if (ex->out->len >= SLIM_GLOB_MAX_EXPANSIONS)
    {
      g_set_error (ex->error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "pattern '%s': brace expansion gives more than %d patterns", ex->pattern,
                   SLIM_GLOB_MAX_EXPANSIONS);
      ex->failed = TRUE;
      return;
    }
  g_ptr_array_add (ex->out, g_strdup (s));
}

/* ---- compiling one expansion -------------------------------------------- */

static void
slim_glob_add_range (GArray *ranges, gunichar lo, gunichar hi)
{
  SlimGlobRange r = { lo, hi };

  g_array_append_val (ranges, r);
}

/* POSIX class `[:name:]` starting at p[i] == '['; returns the index after
 * the closing `:]`, or 0 when this is not a known class. */
static gsize
slim_glob_parse_posix (const gunichar *p, gsize n, gsize i, GArray *ranges)
{
  static const struct
  {
    const char *name;
    const char *ranges; /* pairs lo,hi */
  } classes[] = {
    { "alnum", "azAZ09" },
    { "alpha", "azAZ" },
    { "ascii", "\x01\x7f" },
    { "blank", "  \t\t" },
    { "cntrl", "\x01\x1f\x7f\x7f" },
    { "digit", "09" },
    { "graph", "!~" },
    { "lower", "az" },
    { "print", " ~" },
    { "punct", "!/:@[`{~" },
    { "space", "  \t\r" }, /* \t \n \v \f \r are contiguous (9..13) */
    { "upper", "AZ" },
    { "word", "azAZ09__" },
    { "xdigit", "afAF09" },
  };
  char name[8];
  gsize k = 0;
  gsize j = i + 2;

  while (j < n && p[j] != ':' && k < sizeof name - 1)
    name[k++] = (p[j] < 0x80) ? (char)p[j++] : '?';
  name[k] = '\0';
  if (j + 1 >= n || p[j] != ':' || p[j + 1] != ']')
    return 0;
  for (gsize c = 0; c < G_N_ELEMENTS (classes); c++)
    {
      if (strcmp (name, classes[c].name) != 0)
        continue;
      for (const char *r = classes[c].ranges; r[0] != '\0'; r += 2)
        slim_glob_add_range (ranges, (guchar)r[0], (guchar)r[1]);
      if (strcmp (name, "ascii") == 0 || strcmp (name, "cntrl") == 0)
        slim_glob_add_range (ranges, 0, 0);
      return j + 2;
    }
  return 0;
}

/* Character class whose body starts at p[i] (just after `[`). Appends a
 * CLASS token and returns the index after `]`, or 0 if unterminated. */
static gsize
slim_glob_parse_class (const gunichar *p, gsize n, gsize i, SlimGlobAlt *alt)
{
  SlimGlobToken tok = { SLIM_GLOB_TOKEN_CLASS, 0, FALSE, alt->ranges->len, 0 };
  gboolean first = TRUE;
  gboolean last_posix = FALSE;

  if (i < n && (p[i] == '!' || p[i] == '^'))
    {
      tok.negate = TRUE;
      i++;
    }
  for (;;)
    {
      gunichar lo, hi;
      gsize after;

      if (i >= n)
        {
          g_array_set_size (alt->ranges, tok.first_range);
          return 0;
        }
      if (p[i] == ']' && !first)
        {
          i++;
          break;
        }
      first = FALSE;
      if (p[i] == '[' && i + 1 < n && p[i + 1] == ':'
          && (after = slim_glob_parse_posix (p, n, i, alt->ranges)) != 0)
        {
          i = after;
          last_posix = TRUE;
          continue;
        }
      if (p[i] == '-' && last_posix)
        {
          /* a hyphen right after a POSIX class is literal */
          slim_glob_add_range (alt->ranges, '-', '-');
          last_posix = FALSE;
          i++;
          continue;
        }
      last_posix = FALSE;
      if (p[i] == '\\' && i + 1 < n)
        {
          lo = p[i + 1];
          i += 2;
        }
      else
        lo = p[i++];
      /* a range `lo-hi`: the hyphen must not be last and hi not a POSIX class */
      if (i + 1 < n && p[i] == '-' && p[i + 1] != ']'
          && !(p[i + 1] == '[' && i + 2 < n && p[i + 2] == ':'))
        {
          if (p[i + 1] == '\\' && i + 2 < n)
            {
              hi = p[i + 2];
              i += 3;
            }
          else
            {
              hi = p[i + 1];
              i += 2;
            }
          /* a backwards range is dropped (wcmatch); it matches nothing */
          if (lo <= hi)
            slim_glob_add_range (alt->ranges, lo, hi);
          continue;
        }
      slim_glob_add_range (alt->ranges, lo, lo);
    }
  tok.n_ranges = alt->ranges->len - tok.first_range;
  g_array_append_val (alt->tokens, tok);
  return i;
}

static SlimGlobAlt *
slim_glob_alt_compile (const char *text)
{
  SlimGlobAlt *alt = g_new0 (SlimGlobAlt, 1);
  glong n = 0;
  g_autofree gunichar *p = g_utf8_to_ucs4_fast (text, -1, &n);

  alt->tokens = g_array_new (FALSE, FALSE, sizeof (SlimGlobToken));
  alt->ranges = g_array_new (FALSE, FALSE, sizeof (SlimGlobRange));

  for (gsize i = 0; i < (gsize)n;)
    {
      SlimGlobToken tok = { SLIM_GLOB_TOKEN_LITERAL, p[i], FALSE, 0, 0 };
      gsize after;

      switch (p[i])
        {
        case '*':
          i++;
          if (alt->tokens->len > 0
              && g_array_index (alt->tokens, SlimGlobToken, alt->tokens->len - 1).kind
                     == SLIM_GLOB_TOKEN_STAR)
            continue; /* `**` is `*` */
          tok.kind = SLIM_GLOB_TOKEN_STAR;
          break;
        case '?':
          i++;
          tok.kind = SLIM_GLOB_TOKEN_ANY;
          break;
        case '[':
          after = slim_glob_parse_class (p, (gsize)n, i + 1, alt);
          if (after != 0)
            {
              i = after;
              continue;
            }
          i++; /* unterminated: a literal `[` */
          break;
        case '\\':
          if (i + 1 < (gsize)n)
            {
              tok.c = p[i + 1];
              i += 2;
            }
          else
            {
              i++; /* a trailing backslash is dropped (as wcmatch does) */
              continue;
            }
          break;
        default:
          i++;
          break;
        }
      g_array_append_val (alt->tokens, tok);
    }
  return alt;
}

/* ---- matching ----------------------------------------------------------- */

static gboolean
slim_glob_token_matches (const SlimGlobAlt *alt, const SlimGlobToken *tok, gunichar c)
{
  switch (tok->kind)
    {
    case SLIM_GLOB_TOKEN_LITERAL:
      return tok->c == c;
    case SLIM_GLOB_TOKEN_ANY:
      return TRUE;
    case SLIM_GLOB_TOKEN_CLASS:
      for (guint r = 0; r < tok->n_ranges; r++)
        {
          const SlimGlobRange *range
              = &g_array_index (alt->ranges, SlimGlobRange, tok->first_range + r);

          if (c >= range->lo && c <= range->hi)
            return !tok->negate;
        }
      return tok->negate;
    case SLIM_GLOB_TOKEN_STAR:
    default:
      return FALSE;
    }
}

/* name: (n_name) code points, n_name >= 1 */
static gboolean
slim_glob_alt_matches (const SlimGlobAlt *alt, const gunichar *name, gsize n_name)
{
  const SlimGlobToken *toks = (const SlimGlobToken *)(gpointer)alt->tokens->data;
  gsize n_toks = alt->tokens->len;
  gsize ti = 0, si = 0;
  gssize star_ti = -1;
  gsize star_si = 0;

  /* wcmatch without DOTMATCH: a leading dot needs a literal dot */
  if (name[0] == '.'
      && !(n_toks > 0 && toks[0].kind == SLIM_GLOB_TOKEN_LITERAL && toks[0].c == '.'))
    return FALSE;

  while (si < n_name)
    {
      if (ti < n_toks && toks[ti].kind == SLIM_GLOB_TOKEN_STAR)
        {
          star_ti = (gssize)ti++;
          star_si = si;
          continue;
        }
      if (ti < n_toks && slim_glob_token_matches (alt, &toks[ti], name[si]))
        {
          ti++;
          si++;
          continue;
        }
      if (star_ti < 0)
        return FALSE;
      /* let the last star absorb one more character and retry */
      ti = (gsize)star_ti + 1;
      si = ++star_si;
    }
  while (ti < n_toks && toks[ti].kind == SLIM_GLOB_TOKEN_STAR)
    ti++;
  return ti == n_toks;
}

/* ---- public API --------------------------------------------------------- */

/**
 * slim_glob_new:
 * @pattern: a module-name pattern (untrusted config text)
 * @error: return location for a #GError
 *
 * Compiles @pattern. Fails with %SLIM_CONFIG_ERROR_BAD_VALUE when it is not
 * UTF-8, is longer than %SLIM_GLOB_MAX_PATTERN_BYTES, has more than
 * %SLIM_GLOB_MAX_BRACE_GROUPS braces or expands to more than
 * %SLIM_GLOB_MAX_EXPANSIONS patterns.
 *
 * Returns: (transfer full) (nullable): the compiled pattern, free with
 *   slim_glob_free(); %NULL on error
 */
SlimGlob *
slim_glob_new (const char *pattern, GError **error)
{
  g_autoptr (GPtrArray) expanded = NULL;
  SlimBraceExpander ex = { pattern, NULL, error, FALSE };
  SlimGlob *glob;
  gsize len;
  guint n_braces = 0;

  g_return_val_if_fail (pattern != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  len = strlen (pattern);
  if (len > SLIM_GLOB_MAX_PATTERN_BYTES)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "pattern of %" G_GSIZE_FORMAT " bytes is longer than %d bytes", len,
                   SLIM_GLOB_MAX_PATTERN_BYTES);
      return NULL;
    }
  if (!g_utf8_validate (pattern, (gssize)len, NULL))
    {
      g_set_error_literal (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                           "pattern is not valid UTF-8");
      return NULL;
    }
  for (gsize i = 0; i < len; i++)
    {
      if (pattern[i] == '\\')
        i++;
      else if (pattern[i] == '{')
        n_braces++;
    }
  if (n_braces > SLIM_GLOB_MAX_BRACE_GROUPS)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "pattern '%s': more than %d '{' groups", pattern, SLIM_GLOB_MAX_BRACE_GROUPS);
      return NULL;
    }

  /* Each recursion level of the expander consumes one `{`, so its depth is
   * bounded by n_braces; the number of leaves by SLIM_GLOB_MAX_EXPANSIONS. */
  expanded = g_ptr_array_new_with_free_func (g_free);
  ex.out = expanded;
  slim_brace_expand (&ex, pattern);
  if (ex.failed)
    return NULL;

  glob = g_new0 (SlimGlob, 1);
  glob->pattern = g_strdup (pattern);
  glob->alts = g_ptr_array_new_with_free_func (slim_glob_alt_free);
  for (guint k = 0; k < expanded->len; k++)
    g_ptr_array_add (glob->alts, slim_glob_alt_compile (expanded->pdata[k]));
  return glob;
}

/**
 * slim_glob_free:
 * @glob: (nullable) (transfer full): a compiled pattern
 */
void
slim_glob_free (SlimGlob *glob)
{
  if (glob == NULL)
    return;
  g_ptr_array_unref (glob->alts);
  g_free (glob->pattern);
  g_free (glob);
}

/**
 * slim_glob_get_pattern:
 * @glob: a compiled pattern
 *
 * Returns: (transfer none): the source text of @glob
 */
const char *
slim_glob_get_pattern (const SlimGlob *glob)
{
  g_return_val_if_fail (glob != NULL, NULL);
  return glob->pattern;
}

/**
 * slim_glob_get_n_expansions:
 * @glob: a compiled pattern
 *
 * Returns: how many patterns brace expansion produced (1 without braces)
 */
guint
slim_glob_get_n_expansions (const SlimGlob *glob)
{
  g_return_val_if_fail (glob != NULL, 0);
  return glob->alts->len;
}

/**
 * slim_glob_matches:
 * @glob: a compiled pattern
 * @name: a full dotted module name
 *
 * Exact string comparison first, then the wildcard match of every brace
 * expansion. A @name that is not UTF-8 only matches by exact comparison.
 *
 * Returns: whether @name matches
 */
gboolean
slim_glob_matches (const SlimGlob *glob, const char *name)
{
  g_autofree gunichar *chars = NULL;
  glong n_chars = 0;

  g_return_val_if_fail (glob != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (strcmp (glob->pattern, name) == 0)
    return TRUE;
  if (name[0] == '\0' || !g_utf8_validate (name, -1, NULL))
    return FALSE;
  chars = g_utf8_to_ucs4_fast (name, -1, &n_chars);
  for (guint k = 0; k < glob->alts->len; k++)
    if (slim_glob_alt_matches (glob->alts->pdata[k], chars, (gsize)n_chars))
      return TRUE;
  return FALSE;
}

/**
 * slim_glob_match:
 * @pattern: a pattern
 * @name: a full dotted module name
 *
 * One-shot slim_glob_new() + slim_glob_matches(). An invalid pattern (see
 * slim_glob_new()) matches only the identical string.
 *
 * Returns: whether @name matches @pattern
 */
gboolean
slim_glob_match (const char *pattern, const char *name)
{
  g_autoptr (SlimGlob) glob = NULL;

  g_return_val_if_fail (pattern != NULL, FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (strcmp (pattern, name) == 0)
    return TRUE;
  glob = slim_glob_new (pattern, NULL);
  return glob != NULL && slim_glob_matches (glob, name);
}
