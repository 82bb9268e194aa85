/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-safetensors-header.c: the safetensors header parser: the first
 * bytes of an untrusted file -> a validated table of its tensors
 * (SlimSafetensorsHeader, slim-safetensors-private.h), and the lexical
 * pre-scan of other untrusted JSON.  Tensor access is slim-safetensors.c.
 *
 * File layout: an 8-byte little-endian header length N, N bytes of UTF-8
 * JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
 * "__metadata__": {string: string}}, then the data section; offsets are
 * relative to the data section.
 *
 * Files are untrusted.  The 8-byte length is checked against the file size
 * and the 100 MB bound, the header must be UTF-8 without NUL, and then a
 * strict scanner for exactly the JSON a header may hold reads it without
 * building a document (see "the header grammar" below for why).  Each
 * tensor is then checked: known dtype, at most SLIM_TENSOR_MAX_DIMS
 * non-negative dims, element and byte counts without overflow, offsets
 * inside the data section and equal to dtype x shape, no duplicate names,
 * and no two non-empty tensors overlapping.  Index files
 * (*.safetensors.index.json) are small and parsed with json-glib after
 * slim_safetensors_json_prescan(), which bounds their nesting.
 */
#include "slim-safetensors-private.h"

#include <stdarg.h>
#include <string.h>

#include "slim-error.h"
#include "slim-safetensors.h" /* SLIM_SAFETENSORS_MAX_HEADER_BYTES */

/* ---- header parsing ----------------------------------------------------------- */

static void
entry_free (gpointer data)
{
  SlimSafetensorsEntry *entry = data;
  g_free (entry->name);
  g_free (entry);
}

/**
 * slim_safetensors_header_free:
 * @header: (transfer full) (nullable): a parsed header
 */
void
slim_safetensors_header_free (SlimSafetensorsHeader *header)
{
  if (header == NULL)
    return;
  g_ptr_array_unref (header->entries);
  g_hash_table_unref (header->metadata);
  g_free (header);
}

static gint
entry_compare_name (gconstpointer a, gconstpointer b)
{
  const SlimSafetensorsEntry *ea = *(const SlimSafetensorsEntry *const *)a;
  const SlimSafetensorsEntry *eb = *(const SlimSafetensorsEntry *const *)b;
  return strcmp (ea->name, eb->name);
}

static gint
entry_compare_offset (gconstpointer a, gconstpointer b)
{
  const SlimSafetensorsEntry *ea = *(const SlimSafetensorsEntry *const *)a;
  const SlimSafetensorsEntry *eb = *(const SlimSafetensorsEntry *const *)b;
  if (ea->begin_bytes != eb->begin_bytes)
    return ea->begin_bytes < eb->begin_bytes ? -1 : 1;
  if (ea->end_bytes != eb->end_bytes)
    return ea->end_bytes < eb->end_bytes ? -1 : 1;
  return 0;
}

/**
 * slim_safetensors_header_lookup:
 * @header: a parsed header
 * @name: a tensor name
 *
 * Returns: (transfer none) (nullable): the entry, NULL if absent.
 */
const SlimSafetensorsEntry *
slim_safetensors_header_lookup (const SlimSafetensorsHeader *header, const char *name)
{
  guint lo = 0, hi = header->entries->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      const SlimSafetensorsEntry *entry = g_ptr_array_index (header->entries, mid);
      int cmp = strcmp (name, entry->name);
      if (cmp == 0)
        return entry;
      if (cmp < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  return NULL;
}

/**
 * slim_safetensors_json_prescan:
 * @text: JSON text (not necessarily NUL-terminated)
 * @n_bytes: its length
 * @max_depth: deepest nesting of objects and arrays allowed
 * @out_n_members: (out): number of object members in the whole text
 * @error: return location for a #GError
 *
 * Returns: FALSE (SLIM_FORMAT_ERROR_HEADER) on nesting beyond @max_depth,
 * comments or single quotes, or an integer beyond int64.
 */
gboolean
slim_safetensors_json_prescan (
    const char *text, gsize n_bytes, guint max_depth, guint64 *out_n_members, GError **error)
{
  guint depth = 0;
  guint64 n_members = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < n_bytes; i++)
    {
      char c = text[i];

      if (in_string)
        {
          if (c == '\\')
            i++; /* skip the escaped character (\" must not end the string) */
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      switch (c)
        {
        case '"':
          in_string = TRUE;
          break;
        case '{':
        case '[':
          if (++depth > max_depth)
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                           "JSON nested deeper than %u levels at byte %" G_GSIZE_FORMAT, max_depth,
                           i);
              return FALSE;
            }
          break;
        case '}':
        case ']':
          if (depth > 0)
            depth--;
          break;
        case ':':
          n_members++;
          break;
        case '\'':
        case '/':
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                       "invalid JSON: unexpected '%c' at byte %" G_GSIZE_FORMAT, c, i);
          return FALSE;
        default:
          if (g_ascii_isdigit (c))
            {
              gsize start = i;
              while (i + 1 < n_bytes && g_ascii_isdigit (text[i + 1]))
                i++;
              /* INT64_MAX has 19 digits */
              if (i + 1 - start > 19
                  || (i + 1 - start == 19 && memcmp (text + start, "9223372036854775807", 19) > 0))
                {
                  g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                               "JSON number at byte %" G_GSIZE_FORMAT " is out of range", start);
                  return FALSE;
                }
            }
          break;
        }
    }
  *out_n_members = n_members;
  return TRUE;
}

/* ---- the header grammar ------------------------------------------------------
 *
 * The header is parsed by a small scanner for exactly the JSON a safetensors
 * header may hold, instead of building a json-glib document: a document
 * tree costs 20-40 times the text (measured: 2 GB for a 50 MB header of
 * array elements), while this parser allocates only the entries it returns
 * (about 2-3 times the text they take, in the worst case of tiny entries)
 * and the metadata strings (never longer than their text).  It follows RFC
 * 8259 strictly (no comments, no single quotes, no leading zeros) and
 * recurses only when skipping unknown values, at most
 * SLIM_SAFETENSORS_MAX_SKIP_DEPTH deep. */

#define SLIM_SAFETENSORS_MAX_SKIP_DEPTH 16
/* Metadata is a handful of strings ("format": "pt"); a table of millions
 * would cost far more memory than its text. */
#define SLIM_SAFETENSORS_MAX_METADATA 4096
/* Longest dtype string kept for the error message. */
#define SLIM_SAFETENSORS_MAX_DTYPE_CHARS 32

typedef struct
{
  const char *start; /* (end - start) header text */
  const char *p;
  const char *end;
  GError **error;
} Scanner;

typedef struct
{
  gboolean is_integer; /* no fraction, no exponent */
  gboolean negative;
  gboolean overflow; /* |value| > G_MAXINT64 */
  guint64 value;
} Number;

static gboolean G_GNUC_PRINTF (3, 4) scan_fail (Scanner *s, gint code, const char *format, ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (s->error, SLIM_FORMAT_ERROR, code, "%s (header byte %" G_GSIZE_FORMAT ")", message,
               (gsize)(s->p - s->start));
  return FALSE;
}

static void
scan_ws (Scanner *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

/* Skips whitespace, then consumes c if it is next. */
static gboolean
scan_accept (Scanner *s, char c)
{
  scan_ws (s);
  if (s->p < s->end && *s->p == c)
    {
      s->p++;
      return TRUE;
    }
  return FALSE;
}

static gboolean
scan_expect (Scanner *s, char c)
{
  if (scan_accept (s, c))
    return TRUE;
  if (s->p >= s->end)
    return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: expected '%c', found the end", c);
  return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: expected '%c'", c);
}

static gboolean
scan_hex4 (Scanner *s, guint *out_value)
{
  guint value = 0;

  if (s->end - s->p < 4)
    return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: truncated \\u escape");
  for (int i = 0; i < 4; i++)
    {
      int digit = g_ascii_xdigit_value (s->p[i]);
      if (digit < 0)
        return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: bad \\u escape");
      value = value * 16 + (guint)digit;
    }
  s->p += 4;
  *out_value = value;
  return TRUE;
}

/* A JSON string (the opening quote is next after whitespace).  Decoded
 * into out when out is not NULL; NUL characters are refused. */
static gboolean
scan_string (Scanner *s, GString *out)
{
  scan_ws (s);
  if (s->p >= s->end || *s->p != '"')
    return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: expected a string");
  s->p++;
  if (out != NULL)
    g_string_truncate (out, 0);
  while (s->p < s->end)
    {
      const char *run = s->p;
      guint code;

      /* copy the plain run up to a quote, a backslash or a control char */
      while (s->p < s->end && *s->p != '"' && *s->p != '\\' && (guchar)*s->p >= 0x20)
        s->p++;
      if (out != NULL)
        g_string_append_len (out, run, s->p - run);
      if (s->p >= s->end)
        break;
      if (*s->p == '"')
        {
          s->p++;
          return TRUE;
        }
      if ((guchar)*s->p < 0x20)
        return scan_fail (s, SLIM_FORMAT_ERROR_HEADER,
                          "invalid JSON: control character in a string");
      /* escape */
      s->p++;
      if (s->p >= s->end)
        break;
      switch (*s->p++)
        {
        case '"':
          code = '"';
          break;
        case '\\':
          code = '\\';
          break;
        case '/':
          code = '/';
          break;
        case 'b':
          code = '\b';
          break;
        case 'f':
          code = '\f';
          break;
        case 'n':
          code = '\n';
          break;
        case 'r':
          code = '\r';
          break;
        case 't':
          code = '\t';
          break;
        case 'u':
          if (!scan_hex4 (s, &code))
            return FALSE;
          if (code >= 0xd800 && code <= 0xdbff)
            {
              guint low;
              if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                return scan_fail (s, SLIM_FORMAT_ERROR_HEADER,
                                  "invalid JSON: unpaired surrogate in a string");
              s->p += 2;
              if (!scan_hex4 (s, &low))
                return FALSE;
              if (low < 0xdc00 || low > 0xdfff)
                return scan_fail (s, SLIM_FORMAT_ERROR_HEADER,
                                  "invalid JSON: unpaired surrogate in a string");
              code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
            }
          else if (code >= 0xdc00 && code <= 0xdfff)
            return scan_fail (s, SLIM_FORMAT_ERROR_HEADER,
                              "invalid JSON: unpaired surrogate in a string");
          if (code == 0)
            return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "NUL character in a string");
          break;
        default:
          s->p--;
          return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: bad escape in a string");
        }
      if (out != NULL)
        g_string_append_unichar (out, (gunichar)code);
    }
  return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: unterminated string");
}

/* A JSON number, classified (the digits are next after whitespace). */
static gboolean
scan_number (Scanner *s, Number *out)
{
  memset (out, 0, sizeof *out);
  out->is_integer = TRUE;
  scan_ws (s);
  if (s->p < s->end && *s->p == '-')
    {
      out->negative = TRUE;
      s->p++;
    }
  if (s->p >= s->end || !g_ascii_isdigit (*s->p))
    return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: expected a number");
  if (*s->p == '0' && s->p + 1 < s->end && g_ascii_isdigit (s->p[1]))
    return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: leading zero in a number");
  while (s->p < s->end && g_ascii_isdigit (*s->p))
    {
      guint digit = (guint)(*s->p - '0');
      if (out->value > ((guint64)G_MAXINT64 - digit) / 10)
        out->overflow = TRUE;
      else
        out->value = out->value * 10 + digit;
      s->p++;
    }
  if (s->p < s->end && *s->p == '.')
    {
      out->is_integer = FALSE;
      s->p++;
      if (s->p >= s->end || !g_ascii_isdigit (*s->p))
        return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: bad fraction");
      while (s->p < s->end && g_ascii_isdigit (*s->p))
        s->p++;
    }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E'))
    {
      out->is_integer = FALSE;
      s->p++;
      if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
        s->p++;
      if (s->p >= s->end || !g_ascii_isdigit (*s->p))
        return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: bad exponent");
      while (s->p < s->end && g_ascii_isdigit (*s->p))
        s->p++;
    }
  return TRUE;
}

static gboolean
scan_literal (Scanner *s, const char *word)
{
  gsize n = strlen (word);
  if ((gsize)(s->end - s->p) < n || memcmp (s->p, word, n) != 0)
    return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: unexpected character");
  s->p += n;
  return TRUE;
}

/* What the next value is: '{', '[', '"', 'n' (number), 'l' (literal), 0. */
static char
scan_peek_kind (Scanner *s)
{
  scan_ws (s);
  if (s->p >= s->end)
    return 0;
  switch (*s->p)
    {
    case '{':
    case '[':
    case '"':
      return *s->p;
    case 't':
    case 'f':
    case 'n':
      return 'l';
    default:
      return (*s->p == '-' || g_ascii_isdigit (*s->p)) ? 'n' : 0;
    }
}

/* Skips any JSON value (for fields the format does not define). */
static gboolean
scan_skip_value (Scanner *s, guint depth)
{
  Number number;

  if (depth > SLIM_SAFETENSORS_MAX_SKIP_DEPTH)
    return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "JSON nested deeper than %d levels",
                      SLIM_SAFETENSORS_MAX_SKIP_DEPTH);
  switch (scan_peek_kind (s))
    {
    case '"':
      return scan_string (s, NULL);
    case 'n':
      return scan_number (s, &number);
    case 'l':
      return scan_literal (s, *s->p == 't' ? "true" : (*s->p == 'f' ? "false" : "null"));
    case '[':
      s->p++;
      if (scan_accept (s, ']'))
        return TRUE;
      do
        if (!scan_skip_value (s, depth + 1))
          return FALSE;
      while (scan_accept (s, ','));
      return scan_expect (s, ']');
    case '{':
      s->p++;
      if (scan_accept (s, '}'))
        return TRUE;
      do
        if (!scan_string (s, NULL) || !scan_expect (s, ':') || !scan_skip_value (s, depth + 1))
          return FALSE;
      while (scan_accept (s, ','));
      return scan_expect (s, '}');
    default:
      return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: expected a value");
    }
}

/* An array of integers, e.g. "shape" or "data_offsets".  Sets *out_valid
 * to FALSE (and still consumes the array) when it is not an array of at
 * most max_values non-negative integers below 2^63. */
static gboolean
scan_uint_array (Scanner *s,
                 guint64 *values /* (max_values) */,
                 guint max_values,
                 guint *out_n_values,
                 gboolean *out_valid)
{
  guint n = 0;

  *out_valid = TRUE;
  *out_n_values = 0;
  if (scan_peek_kind (s) != '[')
    {
      *out_valid = FALSE;
      return scan_skip_value (s, 1);
    }
  s->p++;
  if (!scan_accept (s, ']'))
    {
      do
        {
          Number number;
          if (scan_peek_kind (s) != 'n')
            {
              *out_valid = FALSE;
              if (!scan_skip_value (s, 2))
                return FALSE;
              n++;
              continue;
            }
          if (!scan_number (s, &number))
            return FALSE;
          if (!number.is_integer || number.overflow || (number.negative && number.value != 0)
              || n >= max_values)
            *out_valid = FALSE;
          else
            values[n] = number.value;
          n++;
        }
      while (scan_accept (s, ','));
      if (!scan_expect (s, ']'))
        return FALSE;
    }
  *out_n_values = MIN (n, G_MAXUINT);
  return TRUE;
}

static gboolean
scan_metadata (Scanner *s, GHashTable *metadata, GString *key, GString *value)
{
  if (scan_peek_kind (s) != '{')
    return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "__metadata__ is not an object");
  s->p++;
  if (scan_accept (s, '}'))
    return TRUE;
  do
    {
      if (!scan_string (s, key) || !scan_expect (s, ':'))
        return FALSE;
      if (scan_peek_kind (s) != '"')
        return scan_fail (s, SLIM_FORMAT_ERROR_HEADER,
                          "__metadata__ value of \"%s\" is not a string", key->str);
      if (!scan_string (s, value))
        return FALSE;
      if (g_hash_table_size (metadata) >= SLIM_SAFETENSORS_MAX_METADATA)
        return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "more than %d __metadata__ entries",
                          SLIM_SAFETENSORS_MAX_METADATA);
      if (g_hash_table_contains (metadata, key->str))
        return scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "duplicate __metadata__ key \"%s\"",
                          key->str);
      g_hash_table_insert (metadata, g_strdup (key->str), g_strdup (value->str));
    }
  while (scan_accept (s, ','));
  return scan_expect (s, '}');
}

/* One tensor description; checks in a fixed order (dtype, shape, offsets)
 * after the whole object is read, whatever the order of its fields. */
static SlimSafetensorsEntry *
scan_entry (Scanner *s, const char *name, guint64 data_bytes, GString *field)
{
  g_autofree char *dtype_text = NULL;
  guint64 shape[SLIM_TENSOR_MAX_DIMS];
  guint64 offsets[2] = { 0, 0 };
  guint n_dims = 0, n_offsets = 0;
  gboolean has_dtype = FALSE, has_shape = FALSE, has_offsets = FALSE;
  gboolean dtype_ok = FALSE, shape_ok = FALSE, offsets_ok = FALSE;
  guint64 n_elements = 1, expected_bytes = 0;
  SlimSafetensorsEntry *entry;
  SlimDType dtype = SLIM_DTYPE_F32;
  const char *entry_start = s->p;
  const char *entry_end;

  if (scan_peek_kind (s) != '{')
    {
      scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "tensor \"%s\": description is not an object", name);
      return NULL;
    }
  s->p++;
  if (!scan_accept (s, '}'))
    {
      do
        {
          gboolean *seen;
          if (!scan_string (s, field) || !scan_expect (s, ':'))
            return NULL;
          seen = strcmp (field->str, "dtype") == 0          ? &has_dtype
                 : strcmp (field->str, "shape") == 0        ? &has_shape
                 : strcmp (field->str, "data_offsets") == 0 ? &has_offsets
                                                            : NULL;
          if (seen != NULL && *seen)
            {
              scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "tensor \"%s\": duplicate key \"%s\"", name,
                         field->str);
              return NULL;
            }
          if (seen == &has_dtype)
            {
              has_dtype = TRUE;
              if (scan_peek_kind (s) == '"')
                {
                  if (!scan_string (s, field))
                    return NULL;
                  dtype_text = g_strndup (field->str, SLIM_SAFETENSORS_MAX_DTYPE_CHARS);
                  dtype_ok = slim_dtype_from_safetensors_name (field->str, &dtype);
                }
              else if (!scan_skip_value (s, 1))
                return NULL;
            }
          else if (seen == &has_shape)
            {
              has_shape = TRUE;
              if (!scan_uint_array (s, shape, SLIM_TENSOR_MAX_DIMS, &n_dims, &shape_ok))
                return NULL;
            }
          else if (seen == &has_offsets)
            {
              has_offsets = TRUE;
              if (!scan_uint_array (s, offsets, 2, &n_offsets, &offsets_ok))
                return NULL;
              offsets_ok = offsets_ok && n_offsets == 2;
            }
          else if (!scan_skip_value (s, 1))
            return NULL;
        }
      while (scan_accept (s, ','));
      if (!scan_expect (s, '}'))
        return NULL;
    }

  /* semantic checks, reported at the start of the description */
  entry_end = s->p;
  s->p = entry_start;
  if (!dtype_ok)
    {
      if (dtype_text != NULL)
        scan_fail (s, SLIM_FORMAT_ERROR_DTYPE, "tensor \"%s\": unknown dtype \"%s\"", name,
                   dtype_text);
      else
        scan_fail (s, SLIM_FORMAT_ERROR_DTYPE, "tensor \"%s\": missing or non-string \"dtype\"",
                   name);
      return NULL;
    }
  if (!shape_ok)
    {
      if (!has_shape)
        scan_fail (s, SLIM_FORMAT_ERROR_SHAPE, "tensor \"%s\": missing \"shape\"", name);
      else if (n_dims > SLIM_TENSOR_MAX_DIMS)
        scan_fail (s, SLIM_FORMAT_ERROR_SHAPE,
                   "tensor \"%s\": %u dimensions (at most %d are supported)", name, n_dims,
                   SLIM_TENSOR_MAX_DIMS);
      else
        scan_fail (s, SLIM_FORMAT_ERROR_SHAPE,
                   "tensor \"%s\": \"shape\" must be an array of non-negative integers", name);
      return NULL;
    }
  for (guint i = 0; i < n_dims; i++)
    if (!g_uint64_checked_mul (&n_elements, n_elements, shape[i]) || n_elements > G_MAXINT64)
      {
        scan_fail (s, SLIM_FORMAT_ERROR_SHAPE,
                   "tensor \"%s\": the element count of the shape overflows", name);
        return NULL;
      }
  if (!slim_dtype_n_bytes (dtype, n_elements, &expected_bytes))
    {
      scan_fail (s, SLIM_FORMAT_ERROR_SHAPE, "tensor \"%s\": the byte size of the shape overflows",
                 name);
      return NULL;
    }
  if (!offsets_ok)
    {
      scan_fail (s, SLIM_FORMAT_ERROR_OFFSETS,
                 "tensor \"%s\": \"data_offsets\" must be two non-negative integers", name);
      return NULL;
    }
  if (offsets[0] > offsets[1] || offsets[1] > data_bytes)
    {
      scan_fail (s, SLIM_FORMAT_ERROR_OFFSETS,
                 "tensor \"%s\": data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                 "] lie outside the %" G_GUINT64_FORMAT "-byte data section",
                 name, offsets[0], offsets[1], data_bytes);
      return NULL;
    }
  if (offsets[1] - offsets[0] != expected_bytes)
    {
      scan_fail (s, SLIM_FORMAT_ERROR_OFFSETS,
                 "tensor \"%s\": data_offsets span %" G_GUINT64_FORMAT
                 " bytes but %s x shape needs %" G_GUINT64_FORMAT,
                 name, offsets[1] - offsets[0], slim_dtype_get_name (dtype), expected_bytes);
      return NULL;
    }
  entry = g_new0 (SlimSafetensorsEntry, 1);
  entry->name = g_strdup (name);
  entry->dtype = dtype;
  entry->n_dims = n_dims;
  for (guint i = 0; i < n_dims; i++)
    entry->shape[i] = (gint64)shape[i];
  entry->begin_bytes = offsets[0];
  entry->end_bytes = offsets[1];
  s->p = entry_end;
  return entry;
}

/**
 * slim_safetensors_parse_header:
 * @data: (array length=n_bytes): the start of a file
 * @n_bytes: bytes available in @data
 * @file_bytes: the size of the whole file (>= @n_bytes)
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the validated header, NULL with a
 * SLIM_FORMAT_ERROR on any defect.
 */
SlimSafetensorsHeader *
slim_safetensors_parse_header (const guint8 *data,
                               gsize n_bytes,
                               guint64 file_bytes,
                               GError **error)
{
  g_autoptr (SlimSafetensorsHeader) header = NULL;
  g_autoptr (GString) key = NULL;
  g_autoptr (GString) scratch = NULL;
  g_autoptr (GString) scratch2 = NULL;
  gboolean has_metadata = FALSE;
  guint64 header_bytes = 0;
  Scanner scanner;
  Scanner *s = &scanner;

  if (file_bytes < n_bytes)
    file_bytes = n_bytes;
  if (n_bytes < 8)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_TRUNCATED,
                   "file of %" G_GSIZE_FORMAT " bytes is shorter than the 8-byte header length",
                   n_bytes);
      return NULL;
    }
  for (int i = 7; i >= 0; i--)
    header_bytes = (header_bytes << 8) | data[i];
  if (header_bytes > SLIM_SAFETENSORS_MAX_HEADER_BYTES)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "header length %" G_GUINT64_FORMAT " exceeds the %d-byte limit", header_bytes,
                   SLIM_SAFETENSORS_MAX_HEADER_BYTES);
      return NULL;
    }
  if (header_bytes > file_bytes - 8 || header_bytes > n_bytes - 8)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_TRUNCATED,
                   "header length %" G_GUINT64_FORMAT " is larger than the %" G_GUINT64_FORMAT
                   " bytes that follow it",
                   header_bytes, file_bytes - 8);
      return NULL;
    }
  if (!g_utf8_validate_len ((const char *)data + 8, header_bytes, NULL))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                   "header is not valid UTF-8 (or contains NUL bytes)");
      return NULL;
    }

  header = g_new0 (SlimSafetensorsHeader, 1);
  header->header_bytes = header_bytes;
  header->data_offset_bytes = 8 + header_bytes;
  header->data_bytes = file_bytes - header->data_offset_bytes;
  header->entries = g_ptr_array_new_with_free_func (entry_free);
  header->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  key = g_string_new (NULL);
  scratch = g_string_new (NULL);
  scratch2 = g_string_new (NULL);

  scanner.start = (const char *)data + 8;
  scanner.p = scanner.start;
  scanner.end = scanner.start + header_bytes;
  scanner.error = error;
  if (scan_peek_kind (s) != '{')
    {
      scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "header is not a JSON object");
      return NULL;
    }
  s->p++;
  if (!scan_accept (s, '}'))
    {
      do
        {
          if (!scan_string (s, key) || !scan_expect (s, ':'))
            return NULL;
          if (strcmp (key->str, "__metadata__") == 0)
            {
              if (has_metadata)
                {
                  scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "duplicate key \"__metadata__\"");
                  return NULL;
                }
              has_metadata = TRUE;
              if (!scan_metadata (s, header->metadata, scratch, scratch2))
                return NULL;
            }
          else
            {
              SlimSafetensorsEntry *entry = scan_entry (s, key->str, header->data_bytes, scratch);
              if (entry == NULL)
                return NULL;
              g_ptr_array_add (header->entries, entry);
            }
        }
      while (scan_accept (s, ','));
      if (!scan_expect (s, '}'))
        return NULL;
    }
  scan_ws (s);
  if (s->p != s->end)
    {
      scan_fail (s, SLIM_FORMAT_ERROR_HEADER, "invalid JSON: data after the header object");
      return NULL;
    }

  /* Duplicate names: adjacent once sorted. */
  g_ptr_array_sort (header->entries, entry_compare_name);
  for (guint i = 1; i < header->entries->len; i++)
    {
      const SlimSafetensorsEntry *a = g_ptr_array_index (header->entries, i - 1);
      const SlimSafetensorsEntry *b = g_ptr_array_index (header->entries, i);
      if (strcmp (a->name, b->name) == 0)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER,
                       "header has duplicate key \"%s\"", a->name);
          return NULL;
        }
    }

  /* Overlap: sort the non-empty ranges by start; each must begin at or
   * after the end of the previous one. */
  {
    g_autoptr (GPtrArray) by_offset = g_ptr_array_new ();
    const SlimSafetensorsEntry *previous = NULL;

    for (guint i = 0; i < header->entries->len; i++)
      {
        SlimSafetensorsEntry *entry = g_ptr_array_index (header->entries, i);
        if (entry->end_bytes > entry->begin_bytes)
          g_ptr_array_add (by_offset, entry);
      }
    g_ptr_array_sort (by_offset, entry_compare_offset);
    for (guint i = 0; i < by_offset->len; i++)
      {
        const SlimSafetensorsEntry *entry = g_ptr_array_index (by_offset, i);
        if (previous != NULL && entry->begin_bytes < previous->end_bytes)
          {
            g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_OFFSETS,
                         "tensors \"%s\" and \"%s\" overlap in the data section", previous->name,
                         entry->name);
            return NULL;
          }
        previous = entry;
      }
  }
  return g_steal_pointer (&header);
}
