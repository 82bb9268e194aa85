/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-json.c: JSON string escaping (see slim-json.h).
 */
#include "slim-json.h"

/**
 * slim_json_append_string: (see slim-json.h)
 */
void
slim_json_append_string (GString *out, const char *text, gboolean ascii_only)
{
  const char *p = text;

  g_string_append_c (out, '"');
  while (*p != '\0')
    {
      gunichar c = g_utf8_get_char_validated (p, -1);

      if (c == (gunichar)-1 || c == (gunichar)-2)
        {
          /* not UTF-8 (json-glib only hands out valid text): escape the byte */
          g_string_append_printf (out, "\\u%04x", (guint)(guchar)*p);
          p++;
          continue;
        }
      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        case '\b':
          g_string_append (out, "\\b");
          break;
        case '\f':
          g_string_append (out, "\\f");
          break;
        default:
          if (c < 0x20)
            g_string_append_printf (out, "\\u%04x", (guint)c);
          else if (c > 0x7f && !ascii_only)
            g_string_append_len (out, p, g_utf8_next_char (p) - p);
          else if (c > 0x7f && c < 0x10000)
            g_string_append_printf (out, "\\u%04x", (guint)c);
          else if (c >= 0x10000)
            {
              gunichar v = c - 0x10000;
              g_string_append_printf (out, "\\u%04x\\u%04x", (guint)(0xd800 + (v >> 10)),
                                      (guint)(0xdc00 + (v & 0x3ff)));
            }
          else
            g_string_append_c (out, (char)c);
        }
      p = g_utf8_next_char (p);
    }
  g_string_append_c (out, '"');
}
