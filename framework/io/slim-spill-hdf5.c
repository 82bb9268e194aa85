/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-spill-hdf5.c: SlimSpill in one HDF5 file (see slim-spill-hdf5.h).
 */
#include "slim-spill-hdf5.h"

#include <gio/gio.h>
#include "slim-error.h"
#include "slim-hdf5.h"

/* Root attribute marking a spill file, and its format version. */
#define SLIM_SPILL_HDF5_VERSION_ATTR "slimflow_spill_version"
#define SLIM_SPILL_HDF5_VERSION 1

struct _SlimSpillHdf5
{
  GObject parent_instance;

  char *path;
  hid_t file; /* guarded by slim_hdf5_lock() */
};

static void slim_spill_hdf5_iface_init (SlimSpillInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (SlimSpillHdf5,
                               slim_spill_hdf5,
                               G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (SLIM_TYPE_SPILL, slim_spill_hdf5_iface_init))

/* Lock held. */
static gboolean
slim_spill_hdf5_flush (SlimSpillHdf5 *self, GError **error)
{
  if (H5Fflush (self->file, H5F_SCOPE_LOCAL) < 0)
    {
      slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot flush '%s'", self->path);
      return FALSE;
    }
  return TRUE;
}

/* Lock held.  -1 on error. */
static int
slim_spill_hdf5_exists (SlimSpillHdf5 *self, const char *name)
{
  htri_t exists = H5Lexists (self->file, name, H5P_DEFAULT);

  H5Eclear2 (H5E_DEFAULT);
  return exists < 0 ? -1 : exists > 0;
}

static gboolean
slim_spill_hdf5_put (SlimSpill *spill, const char *key, SlimTensor *tensor, GError **error)
{
  SlimSpillHdf5 *self = SLIM_SPILL_HDF5 (spill);
  g_autofree char *name = slim_hdf5_escape_name (key);
  gboolean done = FALSE;
  gboolean ok;

  slim_hdf5_lock ();
  ok = slim_hdf5_overwrite_tensor (self->file, name, tensor, &done, error);
  if (ok && !done)
    {
      if (slim_spill_hdf5_exists (self, name) == 1 && H5Ldelete (self->file, name, H5P_DEFAULT) < 0)
        {
          slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot replace '%s'", key);
          ok = FALSE;
        }
      else
        ok = slim_hdf5_write_tensor (self->file, name, tensor, error);
    }
  ok = ok && slim_spill_hdf5_flush (self, error);
  if (!ok && slim_spill_hdf5_exists (self, name) == 1)
    {
      /* A failed put leaves the key absent, never half-written. */
      H5Ldelete (self->file, name, H5P_DEFAULT);
      H5Eclear2 (H5E_DEFAULT);
    }
  slim_hdf5_unlock ();
  if (!ok)
    g_prefix_error (error, "spill file '%s': ", self->path);
  return ok;
}

static SlimTensor *
slim_spill_hdf5_get (SlimSpill *spill, const char *key, GError **error)
{
  SlimSpillHdf5 *self = SLIM_SPILL_HDF5 (spill);
  g_autofree char *name = slim_hdf5_escape_name (key);
  SlimTensor *tensor = NULL;
  int exists;

  slim_hdf5_lock ();
  exists = slim_spill_hdf5_exists (self, name);
  if (exists == 1)
    tensor = slim_hdf5_read_tensor (self->file, name, NULL, error);
  slim_hdf5_unlock ();
  if (exists == 0)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "spill: no tensor stored under '%s'",
                 key);
  else if (exists < 0)
    g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "cannot look up '%s'", key);
  if (tensor == NULL)
    g_prefix_error (error, "spill file '%s': ", self->path);
  return tensor;
}

static gboolean
slim_spill_hdf5_remove (SlimSpill *spill, const char *key, GError **error)
{
  SlimSpillHdf5 *self = SLIM_SPILL_HDF5 (spill);
  g_autofree char *name = slim_hdf5_escape_name (key);
  gboolean ok = TRUE;

  slim_hdf5_lock ();
  if (slim_spill_hdf5_exists (self, name) != 0)
    {
      ok = H5Ldelete (self->file, name, H5P_DEFAULT) >= 0;
      if (!ok)
        slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                             "spill file '%s': cannot remove '%s'", self->path, key);
      ok = ok && slim_spill_hdf5_flush (self, error);
    }
  slim_hdf5_unlock ();
  return ok;
}

static gboolean
slim_spill_hdf5_contains (SlimSpill *spill, const char *key)
{
  SlimSpillHdf5 *self = SLIM_SPILL_HDF5 (spill);
  g_autofree char *name = slim_hdf5_escape_name (key);
  int exists;

  slim_hdf5_lock ();
  exists = slim_spill_hdf5_exists (self, name);
  slim_hdf5_unlock ();
  return exists == 1;
}

static herr_t
slim_spill_hdf5_collect_name (hid_t group, const char *name, const H5L_info_t *info, void *data)
{
  g_ptr_array_add (data, g_strdup (name));
  return 0;
}

static gboolean
slim_spill_hdf5_clear (SlimSpill *spill, GError **error)
{
  SlimSpillHdf5 *self = SLIM_SPILL_HDF5 (spill);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  gboolean ok;

  slim_hdf5_lock ();
  ok = H5Literate (self->file, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, slim_spill_hdf5_collect_name,
                   names)
       >= 0;
  for (guint i = 0; ok && i < names->len; i++)
    ok = H5Ldelete (self->file, g_ptr_array_index (names, i), H5P_DEFAULT) >= 0;
  if (!ok)
    slim_hdf5_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "spill file '%s': cannot clear",
                         self->path);
  ok = ok && slim_spill_hdf5_flush (self, error);
  slim_hdf5_unlock ();
  return ok;
}

static void
slim_spill_hdf5_iface_init (SlimSpillInterface *iface)
{
  iface->put = slim_spill_hdf5_put;
  iface->get = slim_spill_hdf5_get;
  iface->remove = slim_spill_hdf5_remove;
  iface->contains = slim_spill_hdf5_contains;
  iface->clear = slim_spill_hdf5_clear;
}

static void
slim_spill_hdf5_finalize (GObject *object)
{
  SlimSpillHdf5 *self = SLIM_SPILL_HDF5 (object);

  if (self->file >= 0)
    {
      slim_hdf5_lock ();
      H5Fclose (self->file);
      H5Eclear2 (H5E_DEFAULT);
      slim_hdf5_unlock ();
    }
  g_free (self->path);
  G_OBJECT_CLASS (slim_spill_hdf5_parent_class)->finalize (object);
}

static void
slim_spill_hdf5_class_init (SlimSpillHdf5Class *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_spill_hdf5_finalize;
}

static void
slim_spill_hdf5_init (SlimSpillHdf5 *self)
{
  self->file = -1;
}

SlimSpillHdf5 *
slim_spill_hdf5_create (const char *path, GError **error)
{
  g_autoptr (SlimSpillHdf5) self = NULL;
  gboolean ok;

  g_return_val_if_fail (path != NULL, NULL);

  self = g_object_new (SLIM_TYPE_SPILL_HDF5, NULL);
  self->path = g_strdup (path);
  slim_hdf5_lock ();
  self->file = slim_hdf5_create_file (path, error);
  ok = self->file >= 0
       && slim_hdf5_write_attr_int64 (self->file, SLIM_SPILL_HDF5_VERSION_ATTR,
                                      SLIM_SPILL_HDF5_VERSION, error)
       && slim_spill_hdf5_flush (self, error);
  slim_hdf5_unlock ();
  if (!ok)
    {
      g_prefix_error (error, "spill file '%s': ", path);
      return NULL;
    }
  return g_steal_pointer (&self);
}

SlimSpillHdf5 *
slim_spill_hdf5_open (const char *path, GError **error)
{
  g_autoptr (SlimSpillHdf5) self = NULL;
  gint64 version = 0;
  gboolean ok;

  g_return_val_if_fail (path != NULL, NULL);

  self = g_object_new (SLIM_TYPE_SPILL_HDF5, NULL);
  self->path = g_strdup (path);
  slim_hdf5_lock ();
  self->file = slim_hdf5_open_file (path, TRUE, error);
  ok = self->file >= 0
       && slim_hdf5_read_attr_int64 (self->file, SLIM_SPILL_HDF5_VERSION_ATTR, &version, error);
  slim_hdf5_unlock ();
  if (ok && version != SLIM_SPILL_HDF5_VERSION)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "spill format version %" G_GINT64_FORMAT " (expected %d)", version,
                   SLIM_SPILL_HDF5_VERSION);
      ok = FALSE;
    }
  if (!ok)
    {
      g_prefix_error (error, "spill file '%s': ", path);
      return NULL;
    }
  return g_steal_pointer (&self);
}

const char *
slim_spill_hdf5_get_path (SlimSpillHdf5 *self)
{
  g_return_val_if_fail (SLIM_IS_SPILL_HDF5 (self), NULL);
  return self->path;
}
