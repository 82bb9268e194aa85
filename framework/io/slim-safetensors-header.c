/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-safetensors-header.c: the safetensors reader.
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
 * (*.safetensors.index.json) are small and parsed with json-glib after a
 * lexical pre-scan that bounds their nesting.
 */
#include "slim-safetensors.h"

#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "slim-error.h"
#include "slim-safetensors-private.h"

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

/* ---- SlimSafetensors ----------------------------------------------------------- */

typedef struct
{
  char *path;
  GMappedFile *mapped;
  GBytes *bytes; /* the whole mapping; views hold a reference */
  SlimSafetensorsHeader *header;
} SlimSafetensorsFile;

typedef struct
{
  SlimSafetensorsFile *file;
  const SlimSafetensorsEntry *entry;
} SlimSafetensorsSlot;

struct _SlimSafetensors
{
  GObject parent_instance;

  GPtrArray *files;           /* (element-type SlimSafetensorsFile) */
  GHashTable *slots;          /* name -> SlimSafetensorsSlot */
  const char **names;         /* sorted, NULL-terminated; borrowed from the headers */
  guint64 total_bytes;        /* sum of the tensors' data bytes */
  GHashTable *empty_metadata; /* returned when no file is mapped */
};

G_DEFINE_FINAL_TYPE (SlimSafetensors, slim_safetensors, G_TYPE_OBJECT)

static void
file_free (gpointer data)
{
  SlimSafetensorsFile *file = data;
  slim_safetensors_header_free (file->header);
  g_clear_pointer (&file->bytes, g_bytes_unref);
  g_clear_pointer (&file->mapped, g_mapped_file_unref);
  g_free (file->path);
  g_free (file);
}

static void
slim_safetensors_finalize (GObject *object)
{
  SlimSafetensors *self = SLIM_SAFETENSORS (object);

  g_clear_pointer (&self->slots, g_hash_table_unref);
  g_clear_pointer (&self->files, g_ptr_array_unref);
  g_clear_pointer (&self->empty_metadata, g_hash_table_unref);
  g_free (self->names);
  G_OBJECT_CLASS (slim_safetensors_parent_class)->finalize (object);
}

static void
slim_safetensors_class_init (SlimSafetensorsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_safetensors_finalize;
}

static void
slim_safetensors_init (SlimSafetensors *self)
{
  self->files = g_ptr_array_new_with_free_func (file_free);
  self->slots = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  self->empty_metadata = g_hash_table_new (g_str_hash, g_str_equal);
}

static SlimSafetensorsFile *
file_open (const char *path, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  SlimSafetensorsFile *file;
  GMappedFile *mapped;
  const guint8 *contents;
  gsize n_bytes;

  mapped = g_mapped_file_new (path, FALSE, &local_error);
  if (mapped == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", path);
      return NULL;
    }
  file = g_new0 (SlimSafetensorsFile, 1);
  file->path = g_strdup (path);
  file->mapped = mapped;
  file->bytes = g_mapped_file_get_bytes (mapped);
  n_bytes = g_mapped_file_get_length (mapped);
  contents = (const guint8 *)g_mapped_file_get_contents (mapped);
  file->header = slim_safetensors_parse_header (n_bytes > 0 ? contents : (const guint8 *)"",
                                                n_bytes, n_bytes, &local_error);
  if (file->header == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", path);
      file_free (file);
      return NULL;
    }
  return file;
}

static void
add_slot (SlimSafetensors *self, SlimSafetensorsFile *file, const SlimSafetensorsEntry *entry)
{
  SlimSafetensorsSlot *slot = g_new0 (SlimSafetensorsSlot, 1);
  slot->file = file;
  slot->entry = entry;
  g_hash_table_replace (self->slots, entry->name, slot);
}

static gint
compare_str_ptr (gconstpointer a, gconstpointer b, gpointer user_data)
{
  return strcmp (*(const char *const *)a, *(const char *const *)b);
}

static void
finish_names (SlimSafetensors *self)
{
  g_autofree gpointer *keys = NULL;
  guint n_keys = 0;
  GHashTableIter iter;
  gpointer value;

  keys = g_hash_table_get_keys_as_array (self->slots, &n_keys);
  self->names = g_new0 (const char *, n_keys + 1);
  for (guint i = 0; i < n_keys; i++)
    self->names[i] = keys[i];
  g_qsort_with_data (self->names, (gint)n_keys, sizeof (char *), compare_str_ptr, NULL);
  self->total_bytes = 0;
  g_hash_table_iter_init (&iter, self->slots);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const SlimSafetensorsSlot *slot = value;
      self->total_bytes += slot->entry->end_bytes - slot->entry->begin_bytes;
    }
}

/* Reads a JSON document of at most max_bytes into a parser, with the same
 * pre-checks as a header. */
static JsonParser *
load_json_file (const char *path, gsize max_bytes, guint max_depth, GError **error)
{
  g_autofree char *contents = NULL;
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GError) local_error = NULL;
  gsize n_bytes = 0;
  guint64 n_members = 0;

  if (!g_file_get_contents (path, &contents, &n_bytes, error))
    return NULL;
  if (n_bytes > max_bytes)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: %" G_GSIZE_FORMAT " bytes exceeds the %" G_GSIZE_FORMAT "-byte limit", path,
                   n_bytes, max_bytes);
      return NULL;
    }
  if (!g_utf8_validate_len (contents, n_bytes, NULL))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: not valid UTF-8 (or contains NUL bytes)", path);
      return NULL;
    }
  if (!slim_safetensors_json_prescan (contents, n_bytes, max_depth, &n_members, &local_error))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: %s", path,
                   local_error->message);
      return NULL;
    }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, contents, (gssize)n_bytes, &local_error))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: not valid JSON: %s",
                   path, local_error->message);
      return NULL;
    }
  return g_steal_pointer (&parser);
}

static gint
compare_str (gconstpointer a, gconstpointer b)
{
  return strcmp (a, b);
}

static gint
compare_file_path (gconstpointer a, gconstpointer b)
{
  const SlimSafetensorsFile *fa = *(const SlimSafetensorsFile *const *)a;
  const SlimSafetensorsFile *fb = *(const SlimSafetensorsFile *const *)b;
  return strcmp (fa->path, fb->path);
}

/* A shard name from an index must name a file beside the index. */
static gboolean
shard_name_is_safe (const char *name)
{
  return name[0] != '\0' && strchr (name, '/') == NULL && strchr (name, '\\') == NULL
         && strcmp (name, ".") != 0 && strcmp (name, "..") != 0;
}

static gboolean
open_index (SlimSafetensors *self, const char *index_path, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (GHashTable) shard_files = NULL; /* shard name -> SlimSafetensorsFile */
  g_autoptr (GList) names = NULL;
  g_autofree char *dir = g_path_get_dirname (index_path);
  JsonNode *root, *map_node;
  JsonObject *weight_map;

  /* An index is small (names only); 32 MB and depth 8 are generous. */
  parser = load_json_file (index_path, 32 * 1024 * 1024, 8, error);
  if (parser == NULL)
    return FALSE;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: the index is not a JSON object", index_path);
      return FALSE;
    }
  map_node = json_object_get_member (json_node_get_object (root), "weight_map");
  if (map_node == NULL || !JSON_NODE_HOLDS_OBJECT (map_node))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "%s: missing \"weight_map\" object", index_path);
      return FALSE;
    }
  weight_map = json_node_get_object (map_node);
  shard_files = g_hash_table_new (g_str_hash, g_str_equal);

  /* Open shards in sorted order so errors are reproducible. */
  names = json_object_get_members (weight_map);
  names = g_list_sort (names, compare_str);
  for (GList *l = names; l != NULL; l = l->next)
    {
      const char *tensor_name = l->data;
      JsonNode *value = json_object_get_member (weight_map, tensor_name);
      const char *shard;
      SlimSafetensorsFile *file;
      const SlimSafetensorsEntry *entry;

      if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING
          || !shard_name_is_safe (json_node_get_string (value)))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                       "%s: tensor \"%s\" must map to a file name in the index's folder",
                       index_path, tensor_name);
          return FALSE;
        }
      shard = json_node_get_string (value);
      file = g_hash_table_lookup (shard_files, shard);
      if (file == NULL)
        {
          g_autofree char *shard_path = g_build_filename (dir, shard, NULL);

          if (!g_file_test (shard_path, G_FILE_TEST_IS_REGULAR))
            {
              g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                           "%s: shard \"%s\" (of tensor \"%s\") does not exist", index_path, shard,
                           tensor_name);
              return FALSE;
            }
          file = file_open (shard_path, error);
          if (file == NULL)
            return FALSE;
          g_ptr_array_add (self->files, file);
          /* the key is owned by the parser, which lives until the end */
          g_hash_table_insert (shard_files, (gpointer)shard, file);
        }
      entry = slim_safetensors_header_lookup (file->header, tensor_name);
      if (entry == NULL)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                       "%s: tensor \"%s\" is not in its shard \"%s\"", index_path, tensor_name,
                       shard);
          return FALSE;
        }
      add_slot (self, file, entry);
    }
  /* shard order (-00001-of- first) so "the first file" is the first shard */
  g_ptr_array_sort (self->files, compare_file_path);
  return TRUE;
}

/* Picks the file to open inside a model folder. */
static char *
resolve_folder (const char *dir_path, GError **error)
{
  g_autoptr (GDir) dir = NULL;
  g_autofree char *single = NULL;
  g_autofree char *index = NULL;
  g_autofree char *model = g_build_filename (dir_path, "model.safetensors", NULL);
  g_autofree char *model_index = g_build_filename (dir_path, "model.safetensors.index.json", NULL);
  guint n_single = 0, n_index = 0;
  const char *name;

  if (g_file_test (model, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&model);
  if (g_file_test (model_index, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&model_index);
  dir = g_dir_open (dir_path, 0, error);
  if (dir == NULL)
    return NULL;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if (g_str_has_suffix (name, ".safetensors.index.json"))
        {
          n_index++;
          g_free (index);
          index = g_build_filename (dir_path, name, NULL);
        }
      else if (g_str_has_suffix (name, ".safetensors"))
        {
          n_single++;
          g_free (single);
          single = g_build_filename (dir_path, name, NULL);
        }
    }
  if (n_index == 1)
    return g_steal_pointer (&index);
  if (n_index == 0 && n_single == 1)
    return g_steal_pointer (&single);
  g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOENT,
               "%s: no model.safetensors, model.safetensors.index.json, single index or "
               "single .safetensors file (found %u index and %u .safetensors files)",
               dir_path, n_index, n_single);
  return NULL;
}

/**
 * slim_safetensors_open:
 * @path: a .safetensors file, a *.safetensors.index.json or a model folder
 * @error: return location for a #GError
 *
 * Maps the file(s) and validates every header.  Errors are
 * SLIM_FORMAT_ERROR for malformed files, G_FILE_ERROR for I/O.
 *
 * Returns: (transfer full) (nullable): the reader, NULL on error.
 */
SlimSafetensors *
slim_safetensors_open (const char *path, GError **error)
{
  g_autoptr (SlimSafetensors) self = NULL;
  g_autofree char *resolved = NULL;

  g_return_val_if_fail (path != NULL, NULL);
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      resolved = resolve_folder (path, error);
      if (resolved == NULL)
        return NULL;
    }
  else
    resolved = g_strdup (path);

  self = g_object_new (SLIM_TYPE_SAFETENSORS, NULL);
  if (g_str_has_suffix (resolved, ".json"))
    {
      if (!open_index (self, resolved, error))
        return NULL;
    }
  else
    {
      SlimSafetensorsFile *file = file_open (resolved, error);
      if (file == NULL)
        return NULL;
      g_ptr_array_add (self->files, file);
      for (guint i = 0; i < file->header->entries->len; i++)
        add_slot (self, file, g_ptr_array_index (file->header->entries, i));
    }
  finish_names (self);
  return g_steal_pointer (&self);
}

/**
 * slim_safetensors_get_names:
 * @self: a reader
 *
 * Returns: (transfer none) (array zero-terminated=1): tensor names, sorted.
 */
const char *const *
slim_safetensors_get_names (SlimSafetensors *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), NULL);
  return self->names;
}

/**
 * slim_safetensors_get_n_tensors:
 * @self: a reader
 *
 * Returns: the number of tensors.
 */
guint
slim_safetensors_get_n_tensors (SlimSafetensors *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), 0);
  return g_hash_table_size (self->slots);
}

/**
 * slim_safetensors_contains:
 * @self: a reader
 * @name: a tensor name
 *
 * Returns: TRUE if the tensor exists.
 */
gboolean
slim_safetensors_contains (SlimSafetensors *self, const char *name)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), FALSE);
  return name != NULL && g_hash_table_contains (self->slots, name);
}

/**
 * slim_safetensors_get_info:
 * @self: a reader
 * @name: a tensor name
 * @out_dtype: (out) (optional): its dtype
 * @out_n_dims: (out) (optional): its number of dimensions
 * @out_shape: (out) (optional) (array fixed-size=6): its shape
 *
 * Returns: FALSE if the tensor is absent.
 */
gboolean
slim_safetensors_get_info (SlimSafetensors *self,
                           const char *name,
                           SlimDType *out_dtype,
                           guint *out_n_dims,
                           gint64 *out_shape)
{
  const SlimSafetensorsSlot *slot;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), FALSE);
  slot = name != NULL ? g_hash_table_lookup (self->slots, name) : NULL;
  if (slot == NULL)
    return FALSE;
  if (out_dtype != NULL)
    *out_dtype = slot->entry->dtype;
  if (out_n_dims != NULL)
    *out_n_dims = slot->entry->n_dims;
  if (out_shape != NULL)
    for (guint i = 0; i < SLIM_TENSOR_MAX_DIMS; i++)
      out_shape[i] = i < slot->entry->n_dims ? slot->entry->shape[i] : 0;
  return TRUE;
}

/**
 * slim_safetensors_get_tensor:
 * @self: a reader
 * @name: a tensor name
 * @error: return location for a #GError
 *
 * A read-only view into the mapping.  When the data is not aligned to its
 * element size (the format does not require it), an owned copy is returned
 * instead (see slim_tensor_new_view()), so kernels may always read elements
 * directly.
 *
 * Returns: (transfer full) (nullable): the tensor, NULL
 * (SLIM_FORMAT_ERROR_MISSING_TENSOR) if absent.
 */
SlimTensor *
slim_safetensors_get_tensor (SlimSafetensors *self, const char *name, GError **error)
{
  const SlimSafetensorsSlot *slot;
  const SlimSafetensorsEntry *entry;
  SlimTensor *view;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), NULL);
  slot = name != NULL ? g_hash_table_lookup (self->slots, name) : NULL;
  if (slot == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR, "no tensor \"%s\"",
                   name != NULL ? name : "(null)");
      return NULL;
    }
  entry = slot->entry;
  view = slim_tensor_new_view (
      entry->name, entry->dtype, entry->n_dims, entry->shape, slot->file->bytes,
      (gsize)(slot->file->header->data_offset_bytes + entry->begin_bytes), error);
  return view;
}

/**
 * slim_safetensors_get_tensor_f32:
 * @self: a reader
 * @name: a tensor name
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a new owned float32 tensor.
 */
SlimTensor *
slim_safetensors_get_tensor_f32 (SlimSafetensors *self, const char *name, GError **error)
{
  g_autoptr (SlimTensor) view = slim_safetensors_get_tensor (self, name, error);
  SlimTensor *out;

  if (view == NULL)
    return NULL;
  out = slim_tensor_to_f32 (view, error);
  /* a converted copy no longer needs the file's pages */
  if (out != NULL && slim_tensor_get_data (out) != slim_tensor_get_data (view))
    slim_safetensors_release_pages (self, name);
  return out;
}

/**
 * slim_safetensors_release_pages:
 * @self: a reader
 * @name: a tensor name
 *
 * Tells the kernel that the mapped pages lying entirely inside the
 * tensor's bytes are not needed now (MADV_DONTNEED; glibc's
 * posix_madvise ignores its DONTNEED).  The mapping is read-only and
 * private, so this is always safe: a page touched again is read back from
 * the file.  It keeps the resident memory of a layer-wise
 * run from growing with every layer read; pages shared with a
 * neighbouring tensor are kept.
 */
void
slim_safetensors_release_pages (SlimSafetensors *self, const char *name)
{
  const SlimSafetensorsSlot *slot;
  const guint8 *contents; /* (length) the mapping */
  gsize length, page = (gsize)sysconf (_SC_PAGESIZE);
  guintptr begin, end;

  g_return_if_fail (SLIM_IS_SAFETENSORS (self));
  slot = name != NULL ? g_hash_table_lookup (self->slots, name) : NULL;
  if (slot == NULL || slot->file->mapped == NULL || page == 0)
    return;
  contents = (const guint8 *)g_mapped_file_get_contents (slot->file->mapped);
  length = g_mapped_file_get_length (slot->file->mapped);
  if (contents == NULL || length == 0)
    return;
  begin = (guintptr)(contents + slot->file->header->data_offset_bytes + slot->entry->begin_bytes);
  end = (guintptr)(contents + slot->file->header->data_offset_bytes + slot->entry->end_bytes);
  begin = (begin + page - 1) / page * page;
  end = end / page * page;
  if (end > begin)
    madvise ((void *)begin, end - begin, MADV_DONTNEED);
}

/**
 * slim_safetensors_get_metadata:
 * @self: a reader
 *
 * Returns: (transfer none): __metadata__ of the first file (string ->
 * string), possibly empty.
 */
GHashTable *
slim_safetensors_get_metadata (SlimSafetensors *self)
{
  SlimSafetensorsFile *file;

  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), NULL);
  if (self->files->len == 0) /* an index with an empty weight_map */
    return self->empty_metadata;
  file = g_ptr_array_index (self->files, 0);
  return file->header->metadata;
}

/**
 * slim_safetensors_get_total_bytes:
 * @self: a reader
 *
 * Returns: the sum of the tensors' byte sizes.
 */
guint64
slim_safetensors_get_total_bytes (SlimSafetensors *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), 0);
  return self->total_bytes;
}

/**
 * slim_safetensors_get_n_files:
 * @self: a reader
 *
 * Returns: the number of files mapped.
 */
guint
slim_safetensors_get_n_files (SlimSafetensors *self)
{
  g_return_val_if_fail (SLIM_IS_SAFETENSORS (self), 0);
  return self->files->len;
}
