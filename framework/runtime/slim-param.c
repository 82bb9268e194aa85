/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-param.c: config-level data attached to plugin GParamSpecs as
 * qdata: SlimParamFlags, the plugin kind of a plugin-list pspec and the
 * default of a string-list pspec (see slim-param.h).
 */
#include "slim-param.h"

G_DEFINE_BOXED_TYPE (SlimPluginList, slim_plugin_list, g_ptr_array_ref, g_ptr_array_unref)
G_DEFINE_BOXED_TYPE (SlimObjectList, slim_object_list, g_ptr_array_ref, g_ptr_array_unref)

static GQuark
param_flags_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("slim-param-flags");
  return quark;
}

static GQuark
plugin_kind_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("slim-param-plugin-kind");
  return quark;
}

static GQuark
object_list_type_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("slim-param-object-list-type");
  return quark;
}

static GQuark
default_strv_quark (void)
{
  static GQuark quark;

  if (G_UNLIKELY (quark == 0))
    quark = g_quark_from_static_string ("slim-param-default-strv");
  return quark;
}

void
slim_param_spec_set_flags (GParamSpec *pspec, SlimParamFlags flags)
{
  g_return_if_fail (G_IS_PARAM_SPEC (pspec));
  g_param_spec_set_qdata (pspec, param_flags_quark (), GUINT_TO_POINTER ((guint)flags));
}

SlimParamFlags
slim_param_spec_get_flags (GParamSpec *pspec)
{
  g_return_val_if_fail (G_IS_PARAM_SPEC (pspec), SLIM_PARAM_NONE);
  return (SlimParamFlags)GPOINTER_TO_UINT (g_param_spec_get_qdata (pspec, param_flags_quark ()));
}

GParamSpec *
slim_param_spec_plugin_list (
    const char *name, const char *nick, const char *blurb, SlimPluginKind kind, GParamFlags flags)
{
  GParamSpec *pspec = g_param_spec_boxed (name, nick, blurb, SLIM_TYPE_PLUGIN_LIST, flags);

  /* Stored as kind + 1 so that 0 means "not a plugin list". */
  g_param_spec_set_qdata (pspec, plugin_kind_quark (), GUINT_TO_POINTER ((guint)kind + 1));
  return pspec;
}

gboolean
slim_param_spec_get_plugin_kind (GParamSpec *pspec, SlimPluginKind *out_kind)
{
  guint stored;

  g_return_val_if_fail (G_IS_PARAM_SPEC (pspec), FALSE);
  stored = GPOINTER_TO_UINT (g_param_spec_get_qdata (pspec, plugin_kind_quark ()));
  if (stored == 0)
    return FALSE;
  if (out_kind != NULL)
    *out_kind = (SlimPluginKind)(stored - 1);
  return TRUE;
}

GParamSpec *
slim_param_spec_object_list (
    const char *name, const char *nick, const char *blurb, GType element_type, GParamFlags flags)
{
  GParamSpec *pspec;

  g_return_val_if_fail (g_type_is_a (element_type, G_TYPE_OBJECT), NULL);
  pspec = g_param_spec_boxed (name, nick, blurb, SLIM_TYPE_OBJECT_LIST, flags);
  g_param_spec_set_qdata (pspec, object_list_type_quark (), (gpointer)element_type);
  return pspec;
}

gboolean
slim_param_spec_get_object_list_type (GParamSpec *pspec, GType *out_type)
{
  GType stored;

  g_return_val_if_fail (G_IS_PARAM_SPEC (pspec), FALSE);
  stored = (GType)g_param_spec_get_qdata (pspec, object_list_type_quark ());
  if (stored == 0)
    return FALSE;
  if (out_type != NULL)
    *out_type = stored;
  return TRUE;
}

void
slim_param_spec_set_default_strv (GParamSpec *pspec, const char *const *strv)
{
  g_return_if_fail (G_IS_PARAM_SPEC (pspec));
  g_return_if_fail (G_PARAM_SPEC_VALUE_TYPE (pspec) == G_TYPE_STRV);
  g_param_spec_set_qdata (pspec, default_strv_quark (), (gpointer)strv);
}

const char *const *
slim_param_spec_get_default_strv (GParamSpec *pspec)
{
  g_return_val_if_fail (G_IS_PARAM_SPEC (pspec), NULL);
  return g_param_spec_get_qdata (pspec, default_strv_quark ());
}
