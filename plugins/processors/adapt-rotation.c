/* SPDX-License-Identifier: Apache-2.0
 *
 * adapt-rotation.c: msModelSlim's `adapt_rotation` processor, the LAOS
 * building block (modelslim-v1-spec.md 2.16; msModelSlim
 * processor/adapt_rotation/adapt_rotation_stage1.py, _stage2.py):
 *
 *   type: adapt_rotation
 *   stage: 1                      required: 1 (in spec.prior) or 2 (in spec.process)
 *   # stage 1
 *   steps: 20                     1..1000 optimization steps
 *   quant_dtype: int4             int4 | int8, the downstream act dtype
 *   layer_type: [up_proj]         substrings of the linears whose inputs are collected
 *   block_size: -1                -1 or a power of two: the Hadamard start
 *   max_samples: 2048             1..100000 rows kept per linear
 *   # stage 2
 *   online: false                 as quarot
 *   block_size: -1
 *   down_proj_online_layers: []
 *   max_tp_size: 4
 *
 * Stage 1 runs a whole calibration pass of its prior stage: each decoder
 * layer's RMSNorm gains are fused into the linears they feed (float-
 * invariant; msModelSlim's pre_run _fuse_norm), then every sample's input
 * of each linear whose name contains a layer_type string is averaged over
 * its tokens (msModelSlim's stat_tensor: mean over the sequence) into one
 * row; rows of a linear beyond max_samples are thinned by msModelSlim's
 * linspace.  post_run learns H R from the Hadamard start H of quarot
 * (slim-adapt-rotation.h), checks that it is orthogonal and puts it in the
 * run's store (slim-run-store.h) as "adapt_rotation.adapted_matrix":
 * int64 d (little-endian), then d x d float32 row-major.
 *
 * Stage 2 is quarot with that matrix in place of the Hadamard rotation of
 * the hidden size (the per-head rotation stays Hadamard): it builds a
 * quarot processor (quarot.h) and hands every hook to it.  Without the
 * matrix in the store, pre_run refuses the run (SLIM_PIPELINE_ERROR_
 * INCOMPATIBLE: exit 2); msModelSlim only warns and falls back to plain
 * QuaRot.
 *
 * Under dp_layer_wise (MPI ranks) stage 1 collects the rows of each
 * rank's samples and the ranks exchange them after every layer's forward
 * (export_observers below), so that every rank learns the matrix of one
 * process from the same rows in the same order.
 *
 * Keys of the other stage are refused when they differ from their default
 * (a key given with its default value cannot be told from an absent one).
 */
#include "quarot.h"

#include <string.h>

#define SLIM_ADAPT_ROTATION_KEY "adapt_rotation.adapted_matrix"

#define SLIM_TYPE_ADAPT_ROTATION_PROCESSOR (slim_adapt_rotation_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimAdaptRotationProcessor,
                      slim_adapt_rotation_processor,
                      SLIM,
                      ADAPT_ROTATION_PROCESSOR,
                      SlimProcessor)

typedef struct
{
  char *module; /* the linear's full name */
  GArray *rows; /* (element-type float) (n_rows * n_in) token means */
  gint64 n_in;
} SlimAdaptActs;

struct _SlimAdaptRotationProcessor
{
  SlimProcessor parent_instance;

  gint stage;
  gint steps;
  char *quant_dtype;
  char **layer_type;
  gint block_size;
  gint max_samples;
  gboolean online;
  char **down_proj_online_layers;
  gint max_tp_size;

  SlimModel *model;      /* (ref) from pre_run */
  float *hadamard;       /* (hidden, hidden) stage 1's start H */
  GPtrArray *acts;       /* (element-type SlimAdaptActs) stage 1, in first-seen order */
  GHashTable *by_name;   /* module -> SlimAdaptActs (in acts) */
  guint layer_first;     /* stage 1: acts[layer_first..] are the current layer's */
  SlimProcessor *quarot; /* (owned) stage 2's QuaRot */
};

/* clang-format off */
static const SlimPropertyDecl slim_adapt_rotation_properties[] = {
  SLIM_PROPERTY_INT (SlimAdaptRotationProcessor, stage, "stage", "Stage",
                     "1: learn the rotation (in spec.prior); 2: QuaRot with it (in spec.process).",
                     1, 2, 1, .flags = SLIM_PARAM_REQUIRED),
  SLIM_PROPERTY_INT (SlimAdaptRotationProcessor, steps, "steps", "Steps",
                     "Stage 1: optimization steps (early stop after 5 without improvement).",
                     1, 1000, 20),
  SLIM_PROPERTY_STRING (SlimAdaptRotationProcessor, quant_dtype, "quant-dtype", "Quant dtype",
                        "Stage 1: int4 or int8, the activation dtype of the downstream "
                        "quantization.", "int4"),
  SLIM_PROPERTY_STRV (SlimAdaptRotationProcessor, layer_type, "layer-type", "Layer type",
                      "Stage 1: substrings of the names of the linears whose inputs are "
                      "collected.", SLIM_STRV ("up_proj")),
  SLIM_PROPERTY_INT (SlimAdaptRotationProcessor, block_size, "block-size", "Block size",
                     "-1: rotations of the hidden size; a power of two: block-diagonal "
                     "Hadamard start (stage 1) or quarot's block_size (stage 2).",
                     -1, G_MAXINT, -1),
  SLIM_PROPERTY_INT (SlimAdaptRotationProcessor, max_samples, "max-samples", "Max samples",
                     "Stage 1: rows kept per linear (one per calibration sample).",
                     1, 100000, 2048),
  SLIM_PROPERTY_BOOLEAN (SlimAdaptRotationProcessor, online, "online", "Online",
                         "Stage 2: quarot's online rotation.", FALSE),
  SLIM_PROPERTY_STRV (SlimAdaptRotationProcessor, down_proj_online_layers,
                      "down-proj-online-layers", "down_proj online layers",
                      "Stage 2: quarot's down_proj_online_layers.", SLIM_STRV_EMPTY),
  SLIM_PROPERTY_INT (SlimAdaptRotationProcessor, max_tp_size, "max-tp-size", "Max TP size",
                     "Stage 2: quarot's max_tp_size (a power of two).", 1, 64, 4),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimAdaptRotationProcessor, slim_adapt_rotation_processor, SLIM_TYPE_PROCESSOR)

static void
slim_adapt_acts_free (gpointer data)
{
  SlimAdaptActs *a = data;

  g_free (a->module);
  g_array_unref (a->rows);
  g_free (a);
}

static guint
slim_adapt_rotation_bits (SlimAdaptRotationProcessor *self)
{
  return g_strcmp0 (self->quant_dtype, "int8") == 0 ? 8 : 4;
}

static gboolean
slim_adapt_rotation_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (processor);
  const char *other = NULL;

  if (g_strcmp0 (self->quant_dtype, "int4") != 0 && g_strcmp0 (self->quant_dtype, "int8") != 0)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "adapt_rotation: quant_dtype must be int4 or int8, got '%s'",
                   self->quant_dtype != NULL ? self->quant_dtype : "");
      return FALSE;
    }
  if (self->block_size != -1 && !slim_hadamard_is_pow2 (self->block_size))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "adapt_rotation: block_size must be -1 or a positive power of two, got %d",
                   self->block_size);
      return FALSE;
    }
  if (self->layer_type == NULL || self->layer_type[0] == NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "adapt_rotation: layer_type must not be empty");
      return FALSE;
    }
  for (guint i = 0; self->layer_type[i] != NULL; i++)
    if (strspn (self->layer_type[i], " \t\n") == strlen (self->layer_type[i])
        || strlen (self->layer_type[i]) > 128)
      {
        g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                     "adapt_rotation: layer_type[%u] must be a non-empty string of at most 128 "
                     "characters",
                     i);
        return FALSE;
      }
  if (!slim_hadamard_is_pow2 (self->max_tp_size))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "adapt_rotation: max_tp_size must be a positive power of two, got %d",
                   self->max_tp_size);
      return FALSE;
    }
  if (self->stage == 1)
    other = self->online                                    ? "online"
            : g_strv_length (self->down_proj_online_layers) ? "down_proj_online_layers"
            : self->max_tp_size != 4                        ? "max_tp_size"
                                                            : NULL;
  else
    other = self->steps != 20                            ? "steps"
            : g_strcmp0 (self->quant_dtype, "int4") != 0 ? "quant_dtype"
            : self->max_samples != 2048                  ? "max_samples"
            : g_strv_length (self->layer_type) != 1 || strcmp (self->layer_type[0], "up_proj") != 0
                ? "layer_type"
                : NULL;
  if (other != NULL)
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_UNKNOWN_KEY,
                   "adapt_rotation: %s is a key of stage %d, not of stage %d (stage 1 keys: "
                   "steps, quant_dtype, layer_type, block_size, max_samples; stage 2 keys: "
                   "online, block_size, down_proj_online_layers, max_tp_size)",
                   other, self->stage == 1 ? 2 : 1, self->stage);
      return FALSE;
    }
  return TRUE;
}

/* ---- stage 1 ---------------------------------------------------------- */

static gboolean
slim_adapt_rotation_stage1_pre_run (SlimAdaptRotationProcessor *self, GError **error)
{
  const gint64 hidden = slim_model_get_config (self->model)->hidden_size;
  const gint64 block = self->block_size > 0 ? self->block_size : hidden;
  g_autoptr (SlimRotation) h = slim_rotation_new_hadamard (block, SLIM_ROTATION_SEED, error);

  if (h == NULL)
    {
      g_prefix_error (error, "adapt_rotation: %s %" G_GINT64_FORMAT ": ",
                      self->block_size > 0 ? "block_size" : "hidden_size", block);
      return FALSE;
    }
  if (!slim_rotation_check_dim (h, hidden, "adapt_rotation: hidden_size", error))
    return FALSE;
  if (slim_processor_get_run_store (SLIM_PROCESSOR (self)) == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "adapt_rotation: stage 1 has no run store to leave its matrix in; run it in "
                   "a spec.prior stage (slimflow quant)");
      return FALSE;
    }
  g_free (self->hadamard);
  self->hadamard = g_new (float, hidden *hidden); /* (hidden, hidden) */
  slim_rotation_to_dense_blockdiag (h, hidden, self->hadamard);
  g_ptr_array_set_size (self->acts, 0);
  g_hash_table_remove_all (self->by_name);
  return TRUE;
}

/* name's float32 tensor made private to the layer and writable. */
static float *
slim_adapt_rotation_writable (SlimLayer *layer, const char *name, gint64 n_cols, GError **error)
{
  SlimTensor *t = slim_layer_get_tensor (layer, name);
  g_autoptr (SlimTensor) copy = NULL;
  float *data;

  if (t == NULL || slim_tensor_get_dtype (t) != SLIM_DTYPE_F32
      || slim_tensor_get_dim (t, slim_tensor_get_n_dims (t) - 1) != n_cols)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "adapt_rotation: %s is missing or not float32 with %" G_GINT64_FORMAT " columns",
                   name, n_cols);
      return NULL;
    }
  if (slim_tensor_is_writable (t))
    return slim_tensor_get_data_mut (t);
  copy = slim_tensor_copy (t, NULL);
  data = slim_tensor_get_data_mut (copy);
  slim_layer_set_tensor (layer, copy);
  return data;
}

/* Every norm-linear subgraph's RMSNorm gains into its linears, gains 1. */
static gboolean
slim_adapt_rotation_fuse_norms (SlimAdaptRotationProcessor *self, SlimLayer *layer, GError **error)
{
  const gint64 hidden = slim_model_get_config (self->model)->hidden_size;
  g_autoptr (GPtrArray) subgraphs
      = slim_model_get_subgraphs (self->model, (guint)slim_layer_get_index (layer));

  for (guint i = 0; i < subgraphs->len; i++)
    {
      const SlimSubgraph *sg = g_ptr_array_index (subgraphs, i);
      g_autofree char *gname = NULL;
      g_autofree float *gamma = NULL; /* (hidden) */
      float *g;

      if (sg->type != SLIM_SUBGRAPH_NORM_LINEAR)
        continue;
      gname = g_strconcat (sg->source, ".weight", NULL);
      g = slim_adapt_rotation_writable (layer, gname, hidden, error);
      if (g == NULL)
        return FALSE;
      gamma = g_memdup2 (g, (gsize)hidden * sizeof (float));
      for (gint64 j = 0; j < hidden; j++)
        g[j] = 1.0f;
      for (guint t = 0; sg->targets[t] != NULL; t++)
        {
          g_autofree char *wname = g_strconcat (sg->targets[t], ".weight", NULL);
          float *w = slim_adapt_rotation_writable (layer, wname, hidden, error);

          if (w == NULL)
            return FALSE;
          /* w (rows, hidden) */
          slim_rotation_fuse_norm (w, slim_tensor_get_dim (slim_layer_get_tensor (layer, wname), 0),
                                   hidden, gamma);
        }
    }
  return TRUE;
}

static gboolean
slim_adapt_rotation_matches (SlimAdaptRotationProcessor *self, const char *module)
{
  for (guint i = 0; self->layer_type[i] != NULL; i++)
    if (strstr (module, self->layer_type[i]) != NULL)
      return TRUE;
  return FALSE;
}

/* linear_input: the mean over the tokens of x (n_tokens, n_in), one row. */
static gboolean
slim_adapt_rotation_observe (
    const char *module, float *x, gint64 n_tokens, gint64 n_in, gpointer user_data, GError **error)
{
  SlimAdaptRotationProcessor *self = user_data;
  SlimAdaptActs *a;
  g_autofree double *sum = NULL; /* (n_in) */
  float *row;

  if (n_tokens <= 0 || !slim_adapt_rotation_matches (self, module))
    return TRUE;
  a = g_hash_table_lookup (self->by_name, module);
  if (a == NULL)
    {
      a = g_new0 (SlimAdaptActs, 1);
      a->module = g_strdup (module);
      a->rows = g_array_new (FALSE, FALSE, sizeof (float));
      a->n_in = n_in;
      g_ptr_array_add (self->acts, a);
      g_hash_table_insert (self->by_name, a->module, a);
    }
  if (a->n_in != n_in)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "adapt_rotation: %s has inputs of width %" G_GINT64_FORMAT
                   " and %" G_GINT64_FORMAT,
                   module, a->n_in, n_in);
      return FALSE;
    }
  sum = g_new0 (double, n_in);
  for (gint64 t = 0; t < n_tokens; t++)
    for (gint64 j = 0; j < n_in; j++)
      sum[j] += x[t * n_in + j];
  g_array_set_size (a->rows, a->rows->len + (guint)n_in);
  row = &g_array_index (a->rows, float, a->rows->len - (guint)n_in);
  for (gint64 j = 0; j < n_in; j++)
    row[j] = (float)(sum[j] / (double)n_tokens);
  return TRUE;
}

static GBytes *
slim_adapt_rotation_encode (const float *m, gint64 d)
{
  const gsize n = sizeof (guint64) + (gsize)(d * d) * sizeof (float);
  guint8 *buf = g_malloc (n);
  guint64 le = GUINT64_TO_LE ((guint64)d);

  memcpy (buf, &le, sizeof le);
  memcpy (buf + sizeof le, m, (gsize)(d * d) * sizeof (float));
  return g_bytes_new_take (buf, n);
}

/* The matrix of bytes (transfer none into bytes), d checked. */
static const float *
slim_adapt_rotation_decode (GBytes *bytes, gint64 *out_d, GError **error)
{
  gsize n = 0;
  const guint8 *buf = g_bytes_get_data (bytes, &n);
  guint64 le = 0;
  gint64 d;

  if (n >= sizeof le)
    memcpy (&le, buf, sizeof le);
  d = (gint64)GUINT64_FROM_LE (le);
  if (n < sizeof le || d <= 0 || d > (1 << 20)
      || n != sizeof le + (gsize)d * (gsize)d * sizeof (float))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "adapt_rotation: the run store's %s is not a matrix (%" G_GSIZE_FORMAT " bytes)",
                   SLIM_ADAPT_ROTATION_KEY, n);
      return NULL;
    }
  *out_d = d;
  return (const float *)(buf + sizeof le);
}

/* The orthogonality check of the learned matrix: every step is a
 * Newton-Schulz polar factor, orthogonal to float32 rounding (about 1e-6
 * per product); 1e-3 leaves room for 1000 steps of accumulation and
 * catches a factor that did not converge. */
#define SLIM_ADAPT_ROTATION_ORTHO_TOL 1e-3

static gboolean
slim_adapt_rotation_stage1_post_run (SlimAdaptRotationProcessor *self, GError **error)
{
  const gint64 d = slim_model_get_config (self->model)->hidden_size;
  g_autoptr (GArray) all = g_array_new (FALSE, FALSE, sizeof (float)); /* (n, d) */
  g_autofree float *adapted = NULL;                                    /* (d, d) */
  g_autoptr (GBytes) bytes = NULL;
  SlimAdaptRotationConfig cfg;
  gint64 n = 0;
  guint steps = 0;
  double loss = 0.0, ortho;

  if (self->acts->len == 0)
    {
      g_autofree char *names = g_strjoinv (", ", self->layer_type);

      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "adapt_rotation: stage 1 collected no activations: no linear's name "
                   "contains any of layer_type [%s] (e.g. up_proj, gate_proj)",
                   names);
      return FALSE;
    }
  for (guint i = 0; i < self->acts->len; i++)
    {
      const SlimAdaptActs *a = g_ptr_array_index (self->acts, i);
      const gint64 total = a->rows->len / (guint)a->n_in;
      const gint64 keep = MIN (total, (gint64)self->max_samples);
      g_autofree gint64 *idx = g_new (gint64, MAX (keep, 1)); /* (keep) */

      if (a->n_in != d)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "adapt_rotation: layer_type matches %s, whose input width %" G_GINT64_FORMAT
                       " is not the hidden size %" G_GINT64_FORMAT
                       " (choose linears that read the residual stream: q/k/v/gate/up_proj)",
                       a->module, a->n_in, d);
          return FALSE;
        }
      if (total <= self->max_samples)
        for (gint64 r = 0; r < keep; r++)
          idx[r] = r;
      else
        slim_adapt_rotation_sample_rows (total, keep, idx);
      for (gint64 r = 0; r < keep; r++)
        g_array_append_vals (all, &g_array_index (a->rows, float, idx[r] * d), (guint)d);
      n += keep;
    }
  slim_adapt_rotation_config_init (&cfg, slim_adapt_rotation_bits (self), (guint)self->steps);
  adapted = g_new (float, d *d);
  slim_adapt_rotation_optimize (&cfg, (const float *)all->data, n, d, self->hadamard, adapted,
                                &steps, &loss);
  ortho = slim_orthogonality_error (adapted, d);
  if (!(ortho <= SLIM_ADAPT_ROTATION_ORTHO_TOL))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "adapt_rotation: the learned rotation is not orthogonal (max |R^T R - I| = "
                   "%.3g from %" G_GINT64_FORMAT " rows of size %" G_GINT64_FORMAT
                   "); give more calibration samples",
                   ortho, n, d);
      return FALSE;
    }
  g_message ("adapt_rotation: stage 1: %" G_GINT64_FORMAT " rows of %u linears, %u steps, best "
             "loss %.6g, max |R^T R - I| %.2g",
             n, self->acts->len, steps, loss, ortho);
  bytes = slim_adapt_rotation_encode (adapted, d);
  slim_run_store_set (slim_processor_get_run_store (SLIM_PROCESSOR (self)), SLIM_ADAPT_ROTATION_KEY,
                      bytes);
  g_ptr_array_set_size (self->acts, 0);
  g_hash_table_remove_all (self->by_name);
  return TRUE;
}

/* ---- stage 1 under dp_layer_wise -------------------------------------- *
 *
 * Each rank collects the rows of its own samples (a contiguous block of the
 * dataset, slim_comm_partition) for the layer being processed.  The rows
 * of one layer are the entries of self->acts from layer_first on (a
 * linear's name holds its layer's prefix, so its entry is made during its
 * layer's forward).  export_observers serializes them, GVariant
 * a(sxay): name, n_in, the rows as native float32 bytes; import with merge
 * FALSE replaces them (rank 0's), with merge TRUE appends rows to the
 * entry of the same name or adds the entry at the end (ranks 1.. in rank
 * order).  The forwards are per sample, so every rank ends with the rows
 * of one process, in sample order, and the entries in first-seen order
 * (an entry first seen on rank k comes after those of ranks < k, as in
 * sample order); post_run then learns the same matrix on every rank. */

#define SLIM_ADAPT_ROTATION_OBSERVERS_TYPE "a(sxay)"

static GBytes *
slim_adapt_rotation_processor_export_observers (SlimProcessor *processor,
                                                SlimLayer *layer,
                                                GError **error)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (processor);
  g_autoptr (GVariantBuilder) builder
      = g_variant_builder_new (G_VARIANT_TYPE (SLIM_ADAPT_ROTATION_OBSERVERS_TYPE));
  g_autoptr (GVariant) value = NULL;

  for (guint i = self->stage == 1 ? self->layer_first : self->acts->len; i < self->acts->len; i++)
    {
      const SlimAdaptActs *a = g_ptr_array_index (self->acts, i);

      g_variant_builder_add (builder, "(sx@ay)", a->module, a->n_in,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, a->rows->data,
                                                        (gsize)a->rows->len * sizeof (float), 1));
    }
  value = g_variant_ref_sink (g_variant_builder_end (builder));
  return g_variant_get_data_as_bytes (value);
}

static gboolean
slim_adapt_rotation_bad_observers (const char *what, GError **error)
{
  g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
               "adapt_rotation: another rank's collected inputs do not fit this layer: %s", what);
  return FALSE;
}

static gboolean
slim_adapt_rotation_processor_import_observers (
    SlimProcessor *processor, SlimLayer *layer, GBytes *observers, gboolean merge, GError **error)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (processor);
  const char *prefix = slim_layer_get_prefix (layer);
  g_autoptr (GVariant) value = g_variant_ref_sink (g_variant_new_from_bytes (
      G_VARIANT_TYPE (SLIM_ADAPT_ROTATION_OBSERVERS_TYPE), observers, FALSE));
  const gsize n = g_variant_n_children (value);

  if (!g_variant_is_normal_form (value))
    return slim_adapt_rotation_bad_observers ("malformed", error);
  if (self->stage != 1)
    return n == 0 || slim_adapt_rotation_bad_observers ("stage 2 collects nothing", error);
  if (!merge)
    {
      for (guint i = self->layer_first; i < self->acts->len; i++)
        g_hash_table_remove (self->by_name,
                             ((SlimAdaptActs *)g_ptr_array_index (self->acts, i))->module);
      g_ptr_array_set_size (self->acts, self->layer_first);
    }
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) rows = NULL;
      const char *module = NULL;
      gint64 n_in = 0;
      gsize n_bytes = 0;
      const guint8 *data;
      SlimAdaptActs *a;

      g_variant_get_child (value, i, "(&sx@ay)", &module, &n_in, &rows);
      data = g_variant_get_fixed_array (rows, &n_bytes, 1);
      if (n_in <= 0 || n_in > SLIM_LINALG_MAX_DIM || n_bytes % ((gsize)n_in * sizeof (float)) != 0
          || (prefix != NULL
              && (!g_str_has_prefix (module, prefix) || module[strlen (prefix)] != '.'))
          || !slim_adapt_rotation_matches (self, module))
        return slim_adapt_rotation_bad_observers (module, error);
      a = g_hash_table_lookup (self->by_name, module);
      if (a != NULL && a->n_in != n_in)
        return slim_adapt_rotation_bad_observers (module, error);
      if (a == NULL)
        {
          a = g_new0 (SlimAdaptActs, 1);
          a->module = g_strdup (module);
          a->rows = g_array_new (FALSE, FALSE, sizeof (float));
          a->n_in = n_in;
          g_ptr_array_add (self->acts, a);
          g_hash_table_insert (self->by_name, a->module, a);
        }
      /* rows (n_bytes / (n_in * 4), n_in) float32 */
      g_array_append_vals (a->rows, data, (guint)(n_bytes / sizeof (float)));
    }
  return TRUE;
}

/* ---- stage 2 ---------------------------------------------------------- */

static gboolean
slim_adapt_rotation_stage2_pre_run (SlimAdaptRotationProcessor *self, GError **error)
{
  SlimRunStore *store = slim_processor_get_run_store (SLIM_PROCESSOR (self));
  GBytes *bytes = store != NULL ? slim_run_store_lookup (store, SLIM_ADAPT_ROTATION_KEY) : NULL;
  const float *m;
  gint64 d = 0;

  if (bytes == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "adapt_rotation: stage 2 needs the matrix of stage 1, and no earlier stage "
                   "left one: put {type: adapt_rotation, stage: 1} in a spec.prior stage of "
                   "the same config");
      return FALSE;
    }
  m = slim_adapt_rotation_decode (bytes, &d, error);
  if (m == NULL)
    return FALSE;
  g_clear_object (&self->quarot);
  self->quarot
      = g_object_new (SLIM_TYPE_QUAROT_PROCESSOR, "online", self->online, "block-size",
                      self->block_size, "down-proj-online-layers", self->down_proj_online_layers,
                      "max-tp-size", self->max_tp_size, "export-extra-info", FALSE, NULL);
  slim_quarot_processor_set_hidden_matrix (SLIM_QUAROT_PROCESSOR (self->quarot), m, d);
  slim_processor_set_run_store (self->quarot, store);
  if (!slim_processor_validate (self->quarot, error)
      || !slim_processor_pre_run (self->quarot, self->model, error))
    {
      g_prefix_error (error, "adapt_rotation: stage 2: ");
      return FALSE;
    }
  return TRUE;
}

/* ---- hooks ------------------------------------------------------------ */

static gboolean
slim_adapt_rotation_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (processor);

  if (!slim_adapt_rotation_processor_validate (processor, error))
    return FALSE;
  g_set_object (&self->model, model);
  return self->stage == 1 ? slim_adapt_rotation_stage1_pre_run (self, error)
                          : slim_adapt_rotation_stage2_pre_run (self, error);
}

static gboolean
slim_adapt_rotation_processor_preprocess (SlimProcessor *processor,
                                          SlimLayer *layer,
                                          GError **error)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (processor);

  if (self->model == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "adapt_rotation: preprocess before pre_run");
      return FALSE;
    }
  if (self->stage == 2)
    return slim_processor_preprocess (self->quarot, layer, error);
  self->layer_first = self->acts->len;
  if (slim_layer_get_index (layer) < 0)
    return TRUE; /* embeddings and head: nothing to fuse for the collection */
  return slim_adapt_rotation_fuse_norms (self, layer, error);
}

static void
slim_adapt_rotation_processor_get_forward_hooks (SlimProcessor *processor,
                                                 SlimLayer *layer,
                                                 SlimForwardHooks *hooks)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (processor);

  if (self->stage != 1 || slim_layer_get_index (layer) < 0)
    return;
  hooks->linear_input = slim_adapt_rotation_observe;
  hooks->user_data = self;
}

static gboolean
slim_adapt_rotation_processor_postprocess (SlimProcessor *processor,
                                           SlimLayer *layer,
                                           GError **error)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (processor);

  if (self->stage == 2)
    return slim_processor_postprocess (self->quarot, layer, error);
  return TRUE;
}

static gboolean
slim_adapt_rotation_processor_post_run (SlimProcessor *processor, GError **error)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (processor);

  if (self->stage == 2)
    return slim_processor_post_run (self->quarot, error);
  return slim_adapt_rotation_stage1_post_run (self, error);
}

static gboolean
slim_adapt_rotation_processor_is_data_free (SlimProcessor *processor)
{
  return SLIM_ADAPT_ROTATION_PROCESSOR (processor)->stage == 2;
}

static gboolean
slim_adapt_rotation_processor_supports_distributed (SlimProcessor *processor)
{
  /* stage 2 as quarot; stage 1 exchanges its rows (export_observers) */
  return TRUE;
}

static GBytes *
slim_adapt_rotation_processor_save_state (SlimProcessor *processor, GError **error)
{
  if (SLIM_ADAPT_ROTATION_PROCESSOR (processor)->stage == 1)
    {
      /* stage 1 belongs in spec.prior, which is recomputed on resume */
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "adapt_rotation: stage 1 keeps no checkpoint; run it in spec.prior");
      return NULL;
    }
  /* stage 2: the matrix comes back from the recomputed prior stage */
  return g_bytes_new (NULL, 0);
}

static gboolean
slim_adapt_rotation_processor_restore_state (SlimProcessor *processor,
                                             GBytes *state,
                                             GError **error)
{
  if (SLIM_ADAPT_ROTATION_PROCESSOR (processor)->stage != 2 || g_bytes_get_size (state) != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "adapt_rotation: the checkpoint holds %" G_GSIZE_FORMAT
                   " bytes of state, stage 2 saves none",
                   g_bytes_get_size (state));
      return FALSE;
    }
  return TRUE;
}

static void
slim_adapt_rotation_processor_finalize (GObject *object)
{
  SlimAdaptRotationProcessor *self = SLIM_ADAPT_ROTATION_PROCESSOR (object);

  g_clear_object (&self->model);
  g_clear_object (&self->quarot);
  g_clear_pointer (&self->hadamard, g_free);
  g_clear_pointer (&self->by_name, g_hash_table_unref);
  g_clear_pointer (&self->acts, g_ptr_array_unref);
  G_OBJECT_CLASS (slim_adapt_rotation_processor_parent_class)->finalize (object);
}

static void
slim_adapt_rotation_processor_class_init (SlimAdaptRotationProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_adapt_rotation_processor_finalize;
  processor_class->validate = slim_adapt_rotation_processor_validate;
  processor_class->pre_run = slim_adapt_rotation_processor_pre_run;
  processor_class->preprocess = slim_adapt_rotation_processor_preprocess;
  processor_class->get_forward_hooks = slim_adapt_rotation_processor_get_forward_hooks;
  processor_class->postprocess = slim_adapt_rotation_processor_postprocess;
  processor_class->post_run = slim_adapt_rotation_processor_post_run;
  processor_class->is_data_free = slim_adapt_rotation_processor_is_data_free;
  processor_class->supports_distributed = slim_adapt_rotation_processor_supports_distributed;
  processor_class->export_observers = slim_adapt_rotation_processor_export_observers;
  processor_class->import_observers = slim_adapt_rotation_processor_import_observers;
  processor_class->save_state = slim_adapt_rotation_processor_save_state;
  processor_class->restore_state = slim_adapt_rotation_processor_restore_state;
  /* stage 2's preprocess is quarot's, a pure function of the unit; stage
   * 1's fuses norms, float-invariant */
  slim_processor_class_set_changes_basis (processor_class);
  SLIM_PROPERTIES_INSTALL (klass, slim_adapt_rotation_properties);
}

static void
slim_adapt_rotation_processor_init (SlimAdaptRotationProcessor *self)
{
  self->acts = g_ptr_array_new_with_free_func (slim_adapt_acts_free);
  self->by_name = g_hash_table_new (g_str_hash, g_str_equal);
}

SLIM_PLUGIN_DEFINE (processor,
                    adapt_rotation,
                    SLIM_PLUGIN_NO_ALIASES,
                    "Adaptive rotation (LAOS building block): stage 1 learns an orthogonal "
                    "rotation from calibration inputs in spec.prior, stage 2 is QuaRot with it "
                    "(msModelSlim adapt_rotation)",
                    slim_adapt_rotation_processor_get_type)
