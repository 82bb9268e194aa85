/* SPDX-License-Identifier: Apache-2.0
 *
 * quarot.c: msModelSlim's `quarot` processor, offline rotation
 * (modelslim-v1-spec.md 2.15; msModelSlim processor/quarot/offline_quarot/
 * quarot.py and the adapters' get_ln_fuse_map / get_rotate_map):
 *
 *   type: quarot
 *   online: false                 true: online heads and Kronecker rotations
 *                                 too (below; dense and MoE models)
 *   block_size: -1                -1: one Hadamard rotation of the hidden
 *                                 size; a power of two: block-diagonal
 *                                 rotation by blocks of that order
 *   down_proj_online_layers: []   layer indices whose down_proj input gets the
 *                                 online Kronecker rotation (online only)
 *   down_proj_online_kind: kronecker
 *                                 the rotation of those inputs: kronecker
 *                                 (msModelSlim's M kron N split) or hadamard
 *                                 (slimflow's extension: the full Hadamard
 *                                 had_k (x) H_2^m of the intermediate size, as
 *                                 the QuaRot paper; for sizes the split has
 *                                 none for, e.g. 172)
 *   max_tp_size: 4                a power of two: the order of the Hadamard
 *                                 blocks of the online rotations
 *   export_extra_info: true       the embeddings unit carries Q (dense,
 *                                 hidden x hidden) as <embed>.global_rotation;
 *                                 ascendv1_saver writes it to
 *                                 optional/quarot.safetensors
 *
 * Q is the randomized Hadamard rotation of slim-rotation.h (signs of seed
 * 1234), of order hidden_size (block_size -1) or block_size; Q_h the same
 * of order head_dim (or block_size when smaller).  The residual stream is
 * rotated, h' = Q^T h, and every module that reads or writes it compensates,
 * so the float model computes the same logits (up to float rounding):
 *
 *   embeddings     embed_tokens        E <- E Q          (rows are hidden vectors)
 *   each layer     norm-linear         W[:, j] *= gamma_j, gamma <- 1 (RMSNorm gains
 *                  subgraphs           fused: input_layernorm into q/k/v,
 *                                      post_attention_layernorm into gate/up, the
 *                                      MoE router, every expert's gate/up, the shared
 *                                      expert and its gate), then W <- W Q
 *                  o_proj, every       W <- Q^T W, b <- Q^T b (they write the stream)
 *                  down_proj
 *                  v_proj / o_proj     per head: v_proj W <- Q_h^T W (and b),
 *                  (ov subgraph)       o_proj W <- W Q_h (block-diagonal over heads)
 *   head           model.norm, lm_head W[:, j] *= gamma_j, gamma <- 1, W <- W Q
 *
 * Online (msModelSlim processor/quarot/offline_quarot/laos_online.py,
 * ir/quarot.py; slim-online-rotation.h): R = blockdiag of the randomized
 * Hadamard of order max_tp_size (seed 1234), of order n_heads; every
 * o_proj W <- W (R kron I_head_dim) and carries R as
 * <o_proj>.heads_rotation, its input rotated in the forward.  For the
 * layers of down_proj_online_layers, intermediate = m n
 * (slim_online_rotation_decompose), M = blockdiag of the max_tp_size
 * Hadamard of order m, N the randomized Hadamard of order n, down_proj
 * W <- W (M kron N) with M, N carried as <down_proj>.kronecker_rotation_m
 * / _n.  The decoder applies them to the linear's input before any hook
 * (slim-decoder.h), so the calibration forward of every later processor,
 * the per-layer error's float copy and `slimflow eval` of the saved folder
 * (metadata.quarot in the description) see the model as deployed.
 * msModelSlim builds M and N even when no layer is listed (and fails for
 * an intermediate size without decomposition); slimflow only when one is.
 * MoE models: the heads rotation as dense, and in a listed layer every
 * routed expert's and the shared expert's down_proj with the M, N of its
 * own input width (slim_quarot_moe_online_pre_run below).
 * down_proj_online_kind: hadamard replaces M kron N by H / sqrt(n), H =
 * had_k (x) S_m of slim-hadamard.h (no random signs, as the paper's
 * online Hadamard): down_proj W <- W H / sqrt(n), the base had_k (k, k)
 * carried as <down_proj>.hadamard_rotation and the forward rotating the
 * input x <- H^T x / sqrt(n) by the fast transform.  Never a fallback: a
 * size without a Kronecker split stays refused under kronecker, the
 * message naming the size and this option.
 *
 * The structure comes from the model's subgraphs (slim_model_get_subgraphs),
 * so every adapter slimflow has (llama, mistral, qwen2, qwen3, mixtral,
 * qwen2_moe, qwen3_moe) is covered without a per-family map.
 *
 * Where msModelSlim does these in pre_run (embeddings) and post_run (final
 * norm and lm_head) on the whole resident model, slimflow does them in
 * the preprocess of the embeddings and head pseudo-layers, the units that
 * hold those tensors (a processor changes only the unit it is given).
 * pre_run builds the rotations and checks every size first, so a model
 * without a Hadamard construction for its hidden size or head_dim fails
 * before any weight is read.  A tied lm_head is loaded from the embedding
 * file by the head unit, so it is rotated once, after the final norm is
 * fused into it; the saver then marks the saved config untied (the
 * written lm_head differs from the embedding).
 *
 * Differences from msModelSlim: weights stay float32 between the fusion
 * and the rotation (msModelSlim casts back to the weight dtype after each
 * step); block_size larger than head_dim rotates heads by Q of order
 * head_dim (msModelSlim's create_rot would build an empty matrix there).
 *
 * Data-free; stateless across layers (the rotations are rebuilt by
 * pre_run from the config), so a resumed run is byte-identical.
 */
#include "quarot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* How the inputs of down_proj_online_layers are rotated online. */
typedef enum
{
  SLIM_QUAROT_DOWN_KRONECKER,
  SLIM_QUAROT_DOWN_HADAMARD,
} SlimQuarotDownKind;

GType slim_quarot_down_kind_get_type (void);

G_DEFINE_ENUM_TYPE (SlimQuarotDownKind,
                    slim_quarot_down_kind,
                    G_DEFINE_ENUM_VALUE (SLIM_QUAROT_DOWN_KRONECKER, "kronecker"),
                    G_DEFINE_ENUM_VALUE (SLIM_QUAROT_DOWN_HADAMARD, "hadamard"))

struct _SlimQuarotProcessor
{
  SlimProcessor parent_instance;

  gboolean online;
  gint block_size;
  char **down_proj_online_layers;
  SlimQuarotDownKind down_proj_online_kind;
  gint max_tp_size;
  gboolean export_extra_info;

  SlimModel *model;     /* from pre_run (ref) */
  SlimRotation *hidden; /* Q, order hidden_size or block_size */
  SlimRotation *head;   /* Q_h, order head_dim or block_size */
  float *hidden_matrix; /* (nullable) (hidden_matrix_dim, hidden_matrix_dim) Q given by
                         * slim_quarot_processor_set_hidden_matrix (quarot.h) */
  gint64 hidden_matrix_dim;
  /* online rotations (online: true) */
  float *heads_r;       /* (n_heads, n_heads) R */
  float *kron_m;        /* (dm, dm) M, NULL when no layer is listed */
  float *kron_n;        /* (dn, dn) N */
  gint64 dm, dn;        /* intermediate = dm * dn */
  float *had_k;         /* (had_order, had_order) +-1, down_proj_online_kind: hadamard */
  gint64 had_order;     /* intermediate = had_order * 2^m */
  GHashTable *down_set; /* layer index (GINT_TO_POINTER (i + 1)) */
  /* MoE models: down_proj input width -> SlimQuarotMoeKron, one pair per
   * intermediate size the listed layers use (experts, shared expert,
   * dense layers); NULL for dense models (kron_m / kron_n above) */
  GHashTable *moe_kron;
};

/* clang-format off */
static const SlimPropertyDecl slim_quarot_properties[] = {
  SLIM_PROPERTY_BOOLEAN (SlimQuarotProcessor, online, "online", "Online",
                         "Online rotations too: the heads rotation of every o_proj input and "
                         "the Kronecker rotation of the down_proj inputs of "
                         "down_proj_online_layers (every expert's), applied in the forward.",
                         FALSE),
  SLIM_PROPERTY_INT (SlimQuarotProcessor, block_size, "block-size", "Block size",
                     "-1: one Hadamard rotation of the hidden size; a power of two: a "
                     "block-diagonal rotation by blocks of that order.",
                     -1, G_MAXINT, -1),
  SLIM_PROPERTY_STRV (SlimQuarotProcessor, down_proj_online_layers, "down-proj-online-layers",
                      "down_proj online layers",
                      "Layer indices whose down_proj input is rotated online (online "
                      "rotation only).", SLIM_STRV_EMPTY),
  SLIM_PROPERTY_ENUM (SlimQuarotProcessor, down_proj_online_kind, "down-proj-online-kind",
                      "down_proj online kind",
                      "The online rotation of the down_proj inputs of down_proj_online_layers: "
                      "kronecker, msModelSlim's M kron N split of the intermediate size "
                      "(get_decompose_dim), or hadamard, the full Hadamard had_k kron H_2^m of "
                      "the intermediate size as in the QuaRot paper (slimflow's extension, for "
                      "sizes such as 172 that have no split; saved as "
                      "<down_proj>.hadamard_rotation and metadata.quarot.hadamard_rotation).",
                      slim_quarot_down_kind_get_type, SLIM_QUAROT_DOWN_KRONECKER),
  SLIM_PROPERTY_INT (SlimQuarotProcessor, max_tp_size, "max-tp-size", "Max TP size",
                     "Largest tensor-parallel degree the online rotations must allow; a "
                     "power of two (online rotation only).", 1, G_MAXINT, 4),
  SLIM_PROPERTY_BOOLEAN (SlimQuarotProcessor, export_extra_info, "export-extra-info",
                         "Export extra info",
                         "Export the global rotation Q: ascendv1_saver writes it to "
                         "optional/quarot.safetensors and the description's "
                         "optional.quarot.rotation_map.", TRUE),
};
/* clang-format on */

G_DEFINE_FINAL_TYPE (SlimQuarotProcessor, slim_quarot_processor, SLIM_TYPE_PROCESSOR)

static gboolean
slim_quarot_processor_validate (SlimProcessor *processor, GError **error)
{
  SlimQuarotProcessor *self = SLIM_QUAROT_PROCESSOR (processor);

  if (self->block_size != -1 && !slim_hadamard_is_pow2 (self->block_size))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "quarot: block_size must be -1 or a positive power of two, got %d",
                   self->block_size);
      return FALSE;
    }
  if (!slim_hadamard_is_pow2 (self->max_tp_size))
    {
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "quarot: max_tp_size must be a positive power of two, got %d",
                   self->max_tp_size);
      return FALSE;
    }
  for (guint i = 0; self->down_proj_online_layers != NULL && self->down_proj_online_layers[i]; i++)
    {
      const char *s = self->down_proj_online_layers[i];
      char *end = NULL;
      gint64 v;

      errno = 0;
      v = g_ascii_strtoll (s, &end, 10);
      if (*s == '\0' || end == NULL || *end != '\0' || errno != 0 || v < 0 || v > G_MAXINT)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "quarot: down_proj_online_layers[%u] must be a layer index (an integer "
                       ">= 0), got '%s'",
                       i, s);
          return FALSE;
        }
    }
  return TRUE;
}

/* Q of order size; the error names what the size is. */
static SlimRotation *
slim_quarot_rotation (gint64 size, const char *what, GError **error)
{
  SlimRotation *rotation = slim_rotation_new_hadamard (size, SLIM_ROTATION_SEED, error);

  if (rotation == NULL)
    g_prefix_error (error, "quarot: %s %" G_GINT64_FORMAT ": ", what, size);
  return rotation;
}

static void
slim_quarot_clear (SlimQuarotProcessor *self)
{
  g_clear_pointer (&self->hidden, slim_rotation_free);
  g_clear_pointer (&self->head, slim_rotation_free);
  g_clear_pointer (&self->heads_r, g_free);
  g_clear_pointer (&self->kron_m, g_free);
  g_clear_pointer (&self->kron_n, g_free);
  g_clear_pointer (&self->down_set, g_hash_table_unref);
  g_clear_pointer (&self->moe_kron, g_hash_table_unref);
  g_clear_pointer (&self->had_k, g_free);
  self->dm = self->dn = self->had_order = 0;
}

/* blockdiag of the randomized Hadamard of order max_tp_size, of order
 * dim (n_heads or m), into a new (dim, dim) buffer; what names dim. */
static float *
slim_quarot_tp_blocks (SlimQuarotProcessor *self, gint64 dim, const char *what, GError **error)
{
  g_autoptr (SlimRotation) rot = NULL;
  float *q;

  if (dim % self->max_tp_size != 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "quarot: online: %s %" G_GINT64_FORMAT " is not a multiple of max_tp_size %d",
                   what, dim, self->max_tp_size);
      return NULL;
    }
  rot = slim_quarot_rotation (self->max_tp_size, "max_tp_size", error);
  if (rot == NULL)
    return NULL;
  q = g_new (float, dim *dim); /* (dim, dim) */
  slim_rotation_to_dense_blockdiag (rot, dim, q);
  return q;
}

/* ---- online rotation of MoE layers -------------------------------------
 *
 * msModelSlim's LAOS online rotation (laos_online.py) is implemented by its
 * dense adapters only (one up/down pair per layer, M and N of
 * config.intermediate_size).  slimflow extends it to the MoE adapters:
 * attention is as dense (the heads rotation of every o_proj), and in a
 * listed layer every down_proj, that of each routed expert and of the
 * shared expert (or the MLP of a dense layer of qwen2_moe's
 * mlp_only_layers / decoder_sparse_step), gets the Kronecker rotation of its
 * own input width: M, N built as for dense models from that width's
 * decomposition, so every expert of a layer (same moe_intermediate_size)
 * carries the same M and N, the shared expert those of
 * shared_expert_intermediate_size. */

typedef struct
{
  gint64 dm, dn; /* width = dm * dn */
  float *m;      /* (dm, dm) blockdiag of the max_tp_size Hadamard */
  float *n;      /* (dn, dn) randomized Hadamard */
} SlimQuarotMoeKron;

static void
slim_quarot_moe_kron_free (gpointer data)
{
  SlimQuarotMoeKron *k = data;

  g_free (k->m);
  g_free (k->n);
  g_free (k);
}

/* M, N for down_proj inputs of width size (what: the config field), once
 * per size; the error names the layer, the field and the size. */
static gboolean
slim_quarot_moe_kron_add (
    SlimQuarotProcessor *self, gint64 layer, const char *what, gint64 size, GError **error)
{
  g_autoptr (SlimRotation) n = NULL;
  g_autofree char *m_what = NULL;
  SlimQuarotMoeKron *k;

  if (g_hash_table_contains (self->moe_kron, GINT_TO_POINTER ((gint)size)))
    return TRUE;
  k = g_new0 (SlimQuarotMoeKron, 1);
  if (!slim_online_rotation_decompose (size, &k->dm, &k->dn, error))
    {
      g_prefix_error (
          error, "quarot: down_proj_online_layers: layer %" G_GINT64_FORMAT ": %s: ", layer, what);
      slim_quarot_moe_kron_free (k);
      return FALSE;
    }
  m_what = g_strdup_printf ("%s %" G_GINT64_FORMAT " = m x n: m", what, size);
  k->m = slim_quarot_tp_blocks (self, k->dm, m_what, error);
  n = k->m != NULL ? slim_quarot_rotation (k->dn, "the Kronecker factor n", error) : NULL;
  if (n == NULL)
    {
      slim_quarot_moe_kron_free (k);
      return FALSE;
    }
  k->n = g_new (float, k->dn * k->dn); /* (dn, dn) */
  slim_rotation_to_dense (n, k->n);
  g_hash_table_insert (self->moe_kron, GINT_TO_POINTER ((gint)size), k);
  return TRUE;
}

/* The pairs of every width the listed layers of a MoE model need. */
static gboolean
slim_quarot_moe_online_pre_run (SlimQuarotProcessor *self,
                                const SlimModelConfig *config,
                                GError **error)
{
  const gboolean mixtral = g_strcmp0 (config->model_type, "mixtral") == 0;

  self->moe_kron = g_hash_table_new_full (NULL, NULL, NULL, slim_quarot_moe_kron_free);
  for (gint64 l = 0; l < config->n_layers; l++)
    {
      if (!g_hash_table_contains (self->down_set, GINT_TO_POINTER ((gint)l + 1)))
        continue;
      if (!slim_model_config_layer_is_moe (config, (guint)l))
        {
          if (!slim_quarot_moe_kron_add (self, l, "intermediate_size", config->intermediate_size,
                                         error))
            return FALSE;
          continue;
        }
      /* mixtral's config.json calls the experts' width intermediate_size */
      if (!slim_quarot_moe_kron_add (self, l,
                                     mixtral ? "intermediate_size" : "moe_intermediate_size",
                                     config->moe_intermediate_size, error)
          || (config->shared_expert_intermediate_size > 0
              && !slim_quarot_moe_kron_add (self, l, "shared_expert_intermediate_size",
                                            config->shared_expert_intermediate_size, error)))
        return FALSE;
    }
  return TRUE;
}

/* The full Hadamard base of the intermediate size (down_proj_online_kind:
 * hadamard); the error names the size. */
static gboolean
slim_quarot_online_hadamard_pre_run (SlimQuarotProcessor *self,
                                     const SlimModelConfig *config,
                                     GError **error)
{
  self->had_k
      = slim_online_rotation_hadamard_base (config->intermediate_size, &self->had_order, error);
  if (self->had_k == NULL)
    {
      g_prefix_error (error, "quarot: down_proj_online_kind: hadamard: intermediate_size: ");
      return FALSE;
    }
  return TRUE;
}

/* Appends to a Kronecker refusal that down_proj_online_kind: hadamard
 * exists, when slimflow has a Hadamard construction for n. */
static void
slim_quarot_suggest_hadamard (gint64 n, GError **error)
{
  gint64 k = 0;

  if (error == NULL || *error == NULL || !slim_hadamard_decompose (n, &k, NULL))
    return;
  {
    char *msg = g_strdup_printf ("%s; down_proj_online_kind: hadamard rotates the %" G_GINT64_FORMAT
                                 " inputs by the full Hadamard matrix instead",
                                 (*error)->message, n);
    g_free ((*error)->message);
    (*error)->message = msg;
  }
}

/* The online rotations: R, and M, N when a down_proj is listed. */
static gboolean
slim_quarot_online_pre_run (SlimQuarotProcessor *self,
                            const SlimModelConfig *config,
                            GError **error)
{
  self->heads_r = slim_quarot_tp_blocks (self, config->n_heads, "num_attention_heads", error);
  if (self->heads_r == NULL)
    return FALSE;
  self->down_set = g_hash_table_new (NULL, NULL);
  for (guint i = 0; self->down_proj_online_layers != NULL && self->down_proj_online_layers[i]; i++)
    {
      gint64 v = g_ascii_strtoll (self->down_proj_online_layers[i], NULL, 10);

      if (v >= config->n_layers)
        {
          g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                       "quarot: down_proj_online_layers[%u] is %" G_GINT64_FORMAT
                       ", the model has %" G_GINT64_FORMAT " layers (0..%" G_GINT64_FORMAT ")",
                       i, v, config->n_layers, config->n_layers - 1);
          return FALSE;
        }
      g_hash_table_add (self->down_set, GINT_TO_POINTER ((gint)v + 1));
    }
  if (config->n_experts > 0 && g_hash_table_size (self->down_set) > 0
      && self->down_proj_online_kind == SLIM_QUAROT_DOWN_HADAMARD)
    {
      /* the MoE extension rotates every expert width by its Kronecker
       * split; a full Hadamard of each width is not built for experts */
      g_set_error (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE,
                   "quarot: down_proj_online_kind: hadamard is not supported for the MoE "
                   "model type %s (valid for MoE: kronecker)",
                   config->model_type);
      return FALSE;
    }
  if (config->n_experts > 0)
    return slim_quarot_moe_online_pre_run (self, config, error);
  if (g_hash_table_size (self->down_set) > 0
      && self->down_proj_online_kind == SLIM_QUAROT_DOWN_HADAMARD)
    return slim_quarot_online_hadamard_pre_run (self, config, error);
  if (g_hash_table_size (self->down_set) > 0)
    {
      g_autoptr (SlimRotation) n = NULL;

      if (!slim_online_rotation_decompose (config->intermediate_size, &self->dm, &self->dn, error))
        {
          g_prefix_error (error, "quarot: down_proj_online_layers: intermediate_size: ");
          slim_quarot_suggest_hadamard (config->intermediate_size, error);
          return FALSE;
        }
      self->kron_m = slim_quarot_tp_blocks (self, self->dm, "the Kronecker factor m", error);
      if (self->kron_m == NULL)
        return FALSE;
      n = slim_quarot_rotation (self->dn, "the Kronecker factor n", error);
      if (n == NULL)
        return FALSE;
      self->kron_n = g_new (float, self->dn * self->dn); /* (dn, dn) */
      slim_rotation_to_dense (n, self->kron_n);
    }
  return TRUE;
}

static gboolean
slim_quarot_processor_pre_run (SlimProcessor *processor, SlimModel *model, GError **error)
{
  SlimQuarotProcessor *self = SLIM_QUAROT_PROCESSOR (processor);
  const SlimModelConfig *config = slim_model_get_config (model);
  gint64 hidden_block, head_block;

  if (!slim_quarot_processor_validate (processor, error))
    return FALSE;
  g_set_object (&self->model, model);
  slim_quarot_clear (self);

  hidden_block = self->block_size > 0 ? self->block_size : config->hidden_size;
  head_block = self->block_size > 0 && self->block_size < config->head_dim ? self->block_size
                                                                           : config->head_dim;
  if (self->hidden_matrix != NULL && self->hidden_matrix_dim != config->hidden_size)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "quarot: the given rotation is of order %" G_GINT64_FORMAT
                   ", the model's hidden_size is %" G_GINT64_FORMAT,
                   self->hidden_matrix_dim, config->hidden_size);
      return FALSE;
    }
  if (self->hidden_matrix != NULL)
    self->hidden = slim_rotation_new_dense (self->hidden_matrix_dim, self->hidden_matrix);
  else
    self->hidden = slim_quarot_rotation (
        hidden_block, self->block_size > 0 ? "block_size" : "hidden_size", error);
  if (self->hidden == NULL
      || !slim_rotation_check_dim (self->hidden, config->hidden_size, "quarot: hidden_size", error))
    return FALSE;
  self->head = slim_quarot_rotation (
      head_block, head_block == config->head_dim ? "head_dim" : "block_size", error);
  if (self->head == NULL
      || !slim_rotation_check_dim (self->head, config->head_dim, "quarot: head_dim", error))
    return FALSE;
  return !self->online || slim_quarot_online_pre_run (self, config, error);
}

/* name's float32 tensor in layer made private and writable, with its
 * shape checked against (n_rows, n_cols) (n_cols 0: a vector); module is
 * the linear it belongs to (NULL for a norm or the embeddings), which
 * must not be quantized yet. */
static float *
slim_quarot_writable (SlimLayer *layer,
                      const char *name,
                      const char *module,
                      gint64 n_rows,
                      gint64 n_cols,
                      GError **error)
{
  SlimTensor *t = slim_layer_get_tensor (layer, name);
  g_autoptr (SlimTensor) copy = NULL;
  gboolean shape_ok;
  float *data;

  if (module != NULL && slim_layer_get_qlinear (layer, module) != NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "quarot: %s is already quantized; put quarot before the quantizer in "
                   "spec.process",
                   module);
      return NULL;
    }
  if (t == NULL)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "quarot: the unit has no tensor %s", name);
      return NULL;
    }
  shape_ok = slim_tensor_get_dtype (t) == SLIM_DTYPE_F32
             && slim_tensor_get_n_dims (t) == (n_cols > 0 ? 2u : 1u)
             && (n_rows < 0 || slim_tensor_get_dim (t, 0) == n_rows)
             && (n_cols <= 0 || slim_tensor_get_dim (t, 1) == n_cols);
  if (!shape_ok)
    {
      g_autofree char *have = slim_tensor_shape_to_string (t);

      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "quarot: %s is %s %s, expected float32 with %s %" G_GINT64_FORMAT, name,
                   slim_dtype_get_name (slim_tensor_get_dtype (t)), have,
                   n_cols > 0 ? "columns" : "length", n_cols > 0 ? n_cols : n_rows);
      return NULL;
    }
  if (slim_tensor_is_writable (t))
    return slim_tensor_get_data_mut (t); /* already private to the layer */
  copy = slim_tensor_copy (t, NULL);
  data = slim_tensor_get_data_mut (copy);
  slim_layer_set_tensor (layer, copy);
  return data;
}

/* Rows of module's weight (n_rows x n_in, n_in given), made writable. */
static float *
slim_quarot_weight (
    SlimLayer *layer, const char *module, gint64 n_in, gint64 *out_rows, GError **error)
{
  g_autofree char *name = g_strconcat (module, ".weight", NULL);
  SlimTensor *t = slim_layer_get_tensor (layer, name);
  float *w;

  if (t != NULL && slim_tensor_get_n_dims (t) == 2)
    *out_rows = slim_tensor_get_dim (t, 0);
  w = slim_quarot_writable (layer, name, module, -1, n_in, error);
  return w;
}

/* W <- W blockdiag(rot) on the input side; n_in the expected width. */
static gboolean
slim_quarot_rotate_input (
    SlimLayer *layer, const char *module, const SlimRotation *rot, gint64 n_in, GError **error)
{
  gint64 rows = 0;
  float *w = slim_quarot_weight (layer, module, n_in, &rows, error);

  if (w == NULL)
    return FALSE;
  /* [rows, n_in] */
  slim_rotation_apply_right (rot, w, rows, n_in);
  return TRUE;
}

/* W <- blockdiag(rot)^T W, b likewise, on the output side (n_out rows). */
static gboolean
slim_quarot_rotate_output (
    SlimLayer *layer, const char *module, const SlimRotation *rot, gint64 n_out, GError **error)
{
  g_autofree char *wname = g_strconcat (module, ".weight", NULL);
  g_autofree char *bname = g_strconcat (module, ".bias", NULL);
  SlimTensor *t = slim_layer_get_tensor (layer, wname);
  gint64 n_in = t != NULL && slim_tensor_get_n_dims (t) == 2 ? slim_tensor_get_dim (t, 1) : 0;
  float *w, *b = NULL;

  w = slim_quarot_writable (layer, wname, module, n_out, MAX (n_in, 1), error);
  if (w == NULL)
    return FALSE;
  if (slim_layer_get_tensor (layer, bname) != NULL)
    {
      b = slim_quarot_writable (layer, bname, NULL, n_out, 0, error); /* [n_out] */
      if (b == NULL)
        return FALSE;
    }
  /* w [n_out, n_in] */
  slim_rotation_apply_left (rot, w, n_out, n_in, b);
  return TRUE;
}

/* RMSNorm gains of norm (a module name) into the input columns of each
 * target, the gains set to 1, then every target rotated on its input. */
static gboolean
slim_quarot_fuse_and_rotate (SlimQuarotProcessor *self,
                             SlimLayer *layer,
                             const char *norm,
                             const char *const *targets,
                             GError **error)
{
  const gint64 hidden = slim_model_get_config (self->model)->hidden_size;
  g_autofree char *gname = g_strconcat (norm, ".weight", NULL);
  g_autofree float *gamma = NULL; /* [hidden] */
  float *g;

  g = slim_quarot_writable (layer, gname, NULL, hidden, 0, error);
  if (g == NULL)
    return FALSE;
  gamma = g_memdup2 (g, (gsize)hidden * sizeof (float));
  for (gint64 j = 0; j < hidden; j++)
    g[j] = 1.0f;
  for (guint i = 0; targets[i] != NULL; i++)
    {
      gint64 rows = 0;
      float *w = slim_quarot_weight (layer, targets[i], hidden, &rows, error);

      if (w == NULL)
        return FALSE;
      /* w [rows, hidden] */
      slim_rotation_fuse_norm (w, rows, hidden, gamma);
      slim_rotation_apply_right (self->hidden, w, rows, hidden);
    }
  return TRUE;
}

/* A (n, n) float32 copy of q named module + suffix, added to layer. */
static void
slim_quarot_carry (
    SlimLayer *layer, const char *module, const char *suffix, const float *q, gint64 n)
{
  g_autofree char *name = g_strconcat (module, suffix, NULL);
  g_autoptr (SlimTensor) t = slim_tensor_new_2d (name, SLIM_DTYPE_F32, n, n);

  memcpy (slim_tensor_get_data_mut (t), q, (gsize)(n * n) * sizeof (float));
  slim_layer_set_tensor (layer, t);
}

/* o_proj W <- W (R kron I), R carried for the forward. */
static gboolean
slim_quarot_online_heads (SlimQuarotProcessor *self,
                          SlimLayer *layer,
                          const char *o_proj,
                          GError **error)
{
  const SlimModelConfig *config = slim_model_get_config (self->model);
  gint64 rows = 0;
  float *w = slim_quarot_weight (layer, o_proj, config->n_heads * config->head_dim, &rows, error);

  if (w == NULL)
    return FALSE;
  /* w (rows, n_heads * head_dim): each row's (n_heads, head_dim) <- R^T . */
  slim_online_rotation_heads (self->heads_r, config->n_heads, config->head_dim, w, rows);
  slim_quarot_carry (layer, o_proj, SLIM_ONLINE_ROTATION_HEADS, self->heads_r, config->n_heads);
  return TRUE;
}

/* A down_proj of a listed MoE layer: W <- W (M kron N) with the pair of
 * its input width, M and N carried for the forward. */
static gboolean
slim_quarot_moe_online_down (SlimQuarotProcessor *self,
                             SlimLayer *layer,
                             const char *down,
                             GError **error)
{
  g_autofree char *wname = g_strconcat (down, ".weight", NULL);
  SlimTensor *t = slim_layer_get_tensor (layer, wname);
  gint64 width = t != NULL && slim_tensor_get_n_dims (t) == 2 ? slim_tensor_get_dim (t, 1) : 0;
  const SlimQuarotMoeKron *k = g_hash_table_lookup (self->moe_kron, GINT_TO_POINTER ((gint)width));
  gint64 rows = 0;
  float *w;

  if (k == NULL)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "quarot: %s has %" G_GINT64_FORMAT
                   " inputs, no intermediate size of the model's config",
                   down, width);
      return FALSE;
    }
  w = slim_quarot_weight (layer, down, k->dm * k->dn, &rows, error);
  if (w == NULL)
    return FALSE;
  /* w (rows, dm * dn): each row's (dm, dn) <- M^T . N */
  slim_online_rotation_kronecker (k->m, k->dm, k->n, k->dn, w, rows);
  slim_quarot_carry (layer, down, SLIM_ONLINE_ROTATION_KRON_M, k->m, k->dm);
  slim_quarot_carry (layer, down, SLIM_ONLINE_ROTATION_KRON_N, k->n, k->dn);
  return TRUE;
}

/* down_proj W <- W H / sqrt(n) (down_proj_online_kind: hadamard), the
 * base had_k carried for the forward. */
static gboolean
slim_quarot_online_down_hadamard (SlimQuarotProcessor *self,
                                  SlimLayer *layer,
                                  const char *down,
                                  GError **error)
{
  const gint64 n = slim_model_get_config (self->model)->intermediate_size;
  gint64 rows = 0;
  float *w = slim_quarot_weight (layer, down, n, &rows, error);

  if (w == NULL)
    return FALSE;
  /* w (rows, n): every row w_i <- H^T w_i / sqrt(n), i.e. W <- W H / sqrt(n) */
  if (!slim_online_rotation_hadamard (self->had_k, self->had_order, w, rows, n, error))
    return FALSE;
  slim_quarot_carry (layer, down, SLIM_ONLINE_ROTATION_HADAMARD, self->had_k, self->had_order);
  return TRUE;
}

/* down_proj W <- W (M kron N), M and N carried for the forward. */
static gboolean
slim_quarot_online_down (SlimQuarotProcessor *self,
                         SlimLayer *layer,
                         const char *down,
                         GError **error)
{
  gint64 rows = 0;
  float *w;

  if (self->moe_kron != NULL)
    return slim_quarot_moe_online_down (self, layer, down, error);
  if (self->had_k != NULL)
    return slim_quarot_online_down_hadamard (self, layer, down, error);
  w = slim_quarot_weight (layer, down, self->dm * self->dn, &rows, error);
  if (w == NULL)
    return FALSE;
  /* w (rows, dm * dn): each row's (dm, dn) <- M^T . N */
  slim_online_rotation_kronecker (self->kron_m, self->dm, self->kron_n, self->dn, w, rows);
  slim_quarot_carry (layer, down, SLIM_ONLINE_ROTATION_KRON_M, self->kron_m, self->dm);
  slim_quarot_carry (layer, down, SLIM_ONLINE_ROTATION_KRON_N, self->kron_n, self->dn);
  return TRUE;
}

static gboolean
slim_quarot_decoder_layer (SlimQuarotProcessor *self, SlimLayer *layer, GError **error)
{
  const SlimModelConfig *config = slim_model_get_config (self->model);
  const gint64 hidden = config->hidden_size;
  const gint64 hd = config->head_dim;
  g_autoptr (GPtrArray) subgraphs
      = slim_model_get_subgraphs (self->model, (guint)slim_layer_get_index (layer));
  const gboolean down_online
      = self->down_set != NULL
        && g_hash_table_contains (self->down_set,
                                  GINT_TO_POINTER (slim_layer_get_index (layer) + 1));

  for (guint i = 0; i < subgraphs->len; i++)
    {
      const SlimSubgraph *sg = g_ptr_array_index (subgraphs, i);

      switch (sg->type)
        {
        case SLIM_SUBGRAPH_NORM_LINEAR:
          if (!slim_quarot_fuse_and_rotate (self, layer, sg->source,
                                            (const char *const *)sg->targets, error))
            return FALSE;
          break;
        case SLIM_SUBGRAPH_OV:
          /* per head: v_proj's outputs by Q_h^T, o_proj's inputs by Q_h;
           * o_proj writes the stream: Q^T on its outputs */
          if (!slim_quarot_rotate_output (layer, sg->source, self->head, config->n_kv_heads * hd,
                                          error))
            return FALSE;
          for (guint t = 0; sg->targets[t] != NULL; t++)
            if (!slim_quarot_rotate_input (layer, sg->targets[t], self->head, config->n_heads * hd,
                                           error)
                || !slim_quarot_rotate_output (layer, sg->targets[t], self->hidden, hidden, error)
                || (self->heads_r != NULL
                    && !slim_quarot_online_heads (self, layer, sg->targets[t], error)))
              return FALSE;
          break;
        case SLIM_SUBGRAPH_UP_DOWN:
          for (guint t = 0; sg->targets[t] != NULL; t++)
            if (!slim_quarot_rotate_output (layer, sg->targets[t], self->hidden, hidden, error)
                || (down_online && !slim_quarot_online_down (self, layer, sg->targets[t], error)))
              return FALSE;
          break;
        case SLIM_SUBGRAPH_LINEAR_LINEAR:
        default:
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "quarot: %s: a subgraph of type %d has no rotation rule", sg->source,
                       (int)sg->type);
          return FALSE;
        }
    }
  return TRUE;
}

/* embed_tokens [vocab, hidden] <- E Q. */
static gboolean
slim_quarot_embed (SlimQuarotProcessor *self, SlimLayer *layer, GError **error)
{
  const gint64 hidden = slim_model_get_config (self->model)->hidden_size;
  g_autofree char *embed_module = NULL; /* the first embed_tokens */
  guint n_done = 0;

  for (guint i = 0; i < slim_layer_get_n_tensors (layer); i++)
    {
      SlimTensor *t = slim_layer_get_tensor_at (layer, i);
      g_autofree char *name = g_strdup (slim_tensor_get_name (t));
      gint64 vocab;
      float *e;

      if (!g_str_has_suffix (name, "embed_tokens.weight"))
        continue;
      vocab = slim_tensor_get_n_dims (t) == 2 ? slim_tensor_get_dim (t, 0) : -1;
      e = slim_quarot_writable (layer, name, NULL, vocab, hidden, error);
      if (e == NULL)
        return FALSE;
      slim_rotation_apply_right (self->hidden, e, vocab, hidden);
      if (n_done++ == 0)
        embed_module = g_strndup (name, strlen (name) - strlen (".weight"));
    }
  if (n_done == 0)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "quarot: the embeddings unit holds no embed_tokens.weight");
      return FALSE;
    }
  if (self->export_extra_info)
    {
      /* msModelSlim exports the embedding's rotation (the first pre-run
       * command) as optional.quarot.global_rotation; added after the loop
       * over the unit's tensors */
      g_autofree float *q = g_new (float, hidden *hidden); /* (hidden, hidden) */

      slim_rotation_to_dense_blockdiag (self->hidden, hidden, q);
      slim_quarot_carry (layer, embed_module, SLIM_QUAROT_GLOBAL_ROTATION, q, hidden);
    }
  return TRUE;
}

/* The final norm fused into lm_head, which is rotated on its input. */
static gboolean
slim_quarot_head (SlimQuarotProcessor *self, SlimLayer *layer, GError **error)
{
  const char *const *linears = slim_layer_get_linear_names (layer);
  g_autofree char *lm_weight = NULL;
  g_autofree char *norm = NULL;

  if (linears == NULL || linears[0] == NULL)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "quarot: the head unit has no lm_head");
      return FALSE;
    }
  lm_weight = g_strconcat (linears[0], ".weight", NULL);
  for (guint i = 0; i < slim_layer_get_n_tensors (layer) && norm == NULL; i++)
    {
      const char *name = slim_tensor_get_name (slim_layer_get_tensor_at (layer, i));

      if (strcmp (name, lm_weight) != 0 && g_str_has_suffix (name, "norm.weight"))
        norm = g_strndup (name, strlen (name) - strlen (".weight"));
    }
  if (norm == NULL)
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                   "quarot: the head unit has no final norm before %s", linears[0]);
      return FALSE;
    }
  {
    const char *targets[] = { linears[0], NULL };

    return slim_quarot_fuse_and_rotate (self, layer, norm, targets, error);
  }
}

static gboolean
slim_quarot_processor_preprocess (SlimProcessor *processor, SlimLayer *layer, GError **error)
{
  SlimQuarotProcessor *self = SLIM_QUAROT_PROCESSOR (processor);
  gint index = slim_layer_get_index (layer);

  if (self->model == NULL || self->hidden == NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_FAILED,
                   "quarot: preprocess before pre_run");
      return FALSE;
    }
  if (index == SLIM_LAYER_INDEX_EMBED)
    return slim_quarot_embed (self, layer, error);
  if (index == SLIM_LAYER_INDEX_HEAD)
    return slim_quarot_head (self, layer, error);
  return slim_quarot_decoder_layer (self, layer, error);
}

static gboolean
slim_quarot_processor_is_data_free (SlimProcessor *processor)
{
  return TRUE;
}

static gboolean
slim_quarot_processor_supports_distributed (SlimProcessor *processor)
{
  /* as msModelSlim: every layer's rotation depends on the config only */
  return TRUE;
}

static GBytes *
slim_quarot_processor_save_state (SlimProcessor *processor, GError **error)
{
  /* nothing crosses layers: pre_run rebuilds the rotations */
  return g_bytes_new (NULL, 0);
}

static gboolean
slim_quarot_processor_restore_state (SlimProcessor *processor, GBytes *state, GError **error)
{
  if (g_bytes_get_size (state) != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID,
                   "quarot: the checkpoint holds %" G_GSIZE_FORMAT
                   " bytes of state, a quarot processor saves none",
                   g_bytes_get_size (state));
      return FALSE;
    }
  return TRUE;
}

static void
slim_quarot_processor_finalize (GObject *object)
{
  SlimQuarotProcessor *self = SLIM_QUAROT_PROCESSOR (object);

  slim_quarot_clear (self);
  g_clear_pointer (&self->hidden_matrix, g_free);
  g_clear_object (&self->model);
  G_OBJECT_CLASS (slim_quarot_processor_parent_class)->finalize (object);
}

static void
slim_quarot_processor_class_init (SlimQuarotProcessorClass *klass)
{
  SlimProcessorClass *processor_class = SLIM_PROCESSOR_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = slim_quarot_processor_finalize;
  processor_class->validate = slim_quarot_processor_validate;
  processor_class->pre_run = slim_quarot_processor_pre_run;
  processor_class->preprocess = slim_quarot_processor_preprocess;
  processor_class->is_data_free = slim_quarot_processor_is_data_free;
  processor_class->supports_distributed = slim_quarot_processor_supports_distributed;
  processor_class->save_state = slim_quarot_processor_save_state;
  processor_class->restore_state = slim_quarot_processor_restore_state;
  /* preprocess is a pure function of the unit: the scheduler rotates a
   * fresh float copy of each layer with it for the per-layer error */
  slim_processor_class_set_changes_basis (processor_class);
  SLIM_PROPERTIES_INSTALL (klass, slim_quarot_properties);
}

static void
slim_quarot_processor_init (SlimQuarotProcessor *self)
{
}

void
slim_quarot_processor_set_hidden_matrix (SlimQuarotProcessor *self, const float *q, gint64 dim)
{
  g_return_if_fail (SLIM_IS_QUAROT_PROCESSOR (self));
  g_return_if_fail (q == NULL || dim > 0);
  g_clear_pointer (&self->hidden_matrix, g_free);
  self->hidden_matrix_dim = 0;
  if (q == NULL)
    return;
  self->hidden_matrix = g_memdup2 (q, (gsize)(dim * dim) * sizeof (float)); /* (dim, dim) */
  self->hidden_matrix_dim = dim;
}

SLIM_PLUGIN_DEFINE (processor,
                    quarot,
                    SLIM_PLUGIN_NO_ALIASES,
                    "QuaRot offline rotation: RMSNorm gains fused, randomized Hadamard rotation "
                    "of the residual stream and per-head rotation of v_proj/o_proj "
                    "(msModelSlim quarot)",
                    slim_quarot_processor_get_type)
