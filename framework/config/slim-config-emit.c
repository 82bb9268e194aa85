/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-config-emit.c: SlimConfigNode trees written back as YAML
 * (slim_config_node_to_yaml() in slim-config.h), for `slimflow validate
 * --explain`.  Block style, two spaces per level; empty collections are
 * written [] and {}.  A quoted scalar is written double-quoted with
 * escapes; a plain scalar is written as it is, unless its text could not
 * be read back as the same plain scalar, then double-quoted.
 */
#include "slim-config.h"

#include <string.h>

static gboolean
plain_is_safe (const char *text)
{
  if (*text == '\0')
    return TRUE; /* written as null below */
  if (strchr ("-?:,[]{}#&*!|>'\"%@`", text[0]) != NULL
      && !(text[0] == '-' && text[1] != ' ' && text[1] != '\0'))
    return FALSE;
  if (g_ascii_isspace (text[0]) || g_ascii_isspace (text[strlen (text) - 1]))
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '\n' || *p == '\r' || *p == '\t' || (guchar)*p < 0x20)
        return FALSE;
      if (*p == ':' && (p[1] == ' ' || p[1] == '\0'))
        return FALSE;
      if (*p == '#' && p > text && p[-1] == ' ')
        return FALSE;
    }
  return TRUE;
}

static void
append_quoted (GString *out, const char *text)
{
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      guchar c = (guchar)*p;

      if (c == '"' || c == '\\')
        g_string_append_printf (out, "\\%c", c);
      else if (c == '\n')
        g_string_append (out, "\\n");
      else if (c == '\t')
        g_string_append (out, "\\t");
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\x%02x", c);
      else
        g_string_append_c (out, (char)c);
    }
  g_string_append_c (out, '"');
}

static void
append_scalar (GString *out, const SlimConfigNode *node)
{
  const char *text = slim_config_node_get_scalar (node);

  if (slim_config_node_get_scalar_style (node) == SLIM_CONFIG_SCALAR_QUOTED
      || !plain_is_safe (text))
    append_quoted (out, text);
  else if (*text == '\0')
    g_string_append (out, "null");
  else
    g_string_append (out, text);
}

static gboolean
is_inline (const SlimConfigNode *node)
{
  return slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_SCALAR
         || slim_config_node_get_n_items (node) == 0;
}

static void
append_inline (GString *out, const SlimConfigNode *node)
{
  switch (slim_config_node_get_kind (node))
    {
    case SLIM_CONFIG_NODE_SCALAR:
      append_scalar (out, node);
      break;
    case SLIM_CONFIG_NODE_SEQUENCE:
      g_string_append (out, "[]");
      break;
    case SLIM_CONFIG_NODE_MAPPING:
      g_string_append (out, "{}");
      break;
    }
}

/* Writes a non-empty collection, every line starting with @indent spaces. */
static void
append_block (GString *out, const SlimConfigNode *node, guint indent)
{
  for (guint i = 0; i < slim_config_node_get_n_items (node); i++)
    {
      const SlimConfigNode *item = slim_config_node_get_item (node, i);

      if (slim_config_node_get_kind (node) == SLIM_CONFIG_NODE_MAPPING)
        {
          g_string_append_printf (out, "%*s", (int)indent, "");
          append_scalar (out, slim_config_node_get_key (node, i));
          g_string_append_c (out, ':');
          if (is_inline (item))
            {
              g_string_append_c (out, ' ');
              append_inline (out, item);
              g_string_append_c (out, '\n');
            }
          else
            {
              g_string_append_c (out, '\n');
              append_block (out, item, indent + 2);
            }
        }
      else if (is_inline (item))
        {
          g_string_append_printf (out, "%*s- ", (int)indent, "");
          append_inline (out, item);
          g_string_append_c (out, '\n');
        }
      else
        {
          /* "- " takes the place of the nested block's first indent. */
          g_autoptr (GString) nested = g_string_new (NULL);

          append_block (nested, item, indent + 2);
          g_string_append_printf (out, "%*s- ", (int)indent, "");
          g_string_append (out, nested->str + indent + 2);
        }
    }
}

char *
slim_config_node_to_yaml (const SlimConfigNode *node)
{
  GString *out = g_string_new (NULL);

  g_return_val_if_fail (node != NULL, NULL);
  if (is_inline (node))
    {
      append_inline (out, node);
      g_string_append_c (out, '\n');
    }
  else
    append_block (out, node, 0);
  return g_string_free (out, FALSE);
}
