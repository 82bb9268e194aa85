/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-plugin-private.h: helpers shared by the plugin base classes'
 * public wrappers (not installed, not for plugins).
 */
#pragma once

#include <glib-object.h>
#include "slim-error.h"
#include "slim-plugin-desc.h"

G_BEGIN_DECLS

/* A plugin's name for messages: "processor 'linear_quant'" or, for an
 * unregistered type, its GType name.  Free with g_free. */
static inline char *
slim_plugin_object_describe (gpointer object)
{
  const SlimPluginDesc *desc = slim_plugin_type_get_desc (G_OBJECT_TYPE (object));

  if (desc == NULL)
    return g_strdup (G_OBJECT_TYPE_NAME (object));
  return g_strdup_printf ("%s '%s'", slim_plugin_kind_to_string (desc->kind), desc->name);
}

/* Enforces "a gboolean vfunc returns FALSE if and only if it sets error"
 * after a vfunc call that reported into local_error (taken).  A vfunc
 * breaking the rule is a plugin bug: it gets a g_critical, and the call
 * counts as failed:
 *   FALSE without error -> a generic SLIM_PIPELINE_ERROR_FAILED;
 *   TRUE with an error  -> FALSE with that error.
 * Returns the result the wrapper must return. */
static inline gboolean
slim_plugin_check_result (
    gpointer object, const char *vfunc_name, gboolean ok, GError *local_error, GError **error)
{
  g_autofree char *who = NULL;

  if (ok && local_error == NULL)
    return TRUE;
  if (!ok && local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  who = slim_plugin_object_describe (object);
  if (!ok)
    {
      g_critical ("%s: %s returned FALSE without setting an error (plugin bug)", who, vfunc_name);
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "%s: %s failed without reporting a reason", who, vfunc_name);
      return FALSE;
    }
  g_critical ("%s: %s returned TRUE but set an error (plugin bug): %s", who, vfunc_name,
              local_error->message);
  g_propagate_error (error, local_error);
  return FALSE;
}

/* The same rule for a vfunc returning an object: NULL if and only if it
 * sets error.  Returns the result the wrapper must return (transfer full). */
static inline GBytes *
slim_plugin_check_bytes_result (
    gpointer object, const char *vfunc_name, GBytes *result, GError *local_error, GError **error)
{
  if (!slim_plugin_check_result (object, vfunc_name, result != NULL, local_error, error))
    {
      if (result != NULL)
        g_bytes_unref (result);
      return NULL;
    }
  return result;
}

/* A plugin that cannot do what the run needs (e.g. resume). */
static inline void
slim_plugin_set_unsupported (gpointer object, const char *what, GError **error)
{
  g_autofree char *who = slim_plugin_object_describe (object);

  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "%s does not support %s", who, what);
}

G_END_DECLS
