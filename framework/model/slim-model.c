/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model.c: a Hugging Face model folder opened for layer-wise
 * execution.  Opening reads config.json, memory-maps the weights and
 * checks that every tensor the architecture needs exists with a float
 * dtype and the shape the config implies, before any weight is touched.
 * A layer's tensors are converted to float32 only in
 * slim_model_load_layer(); the caller drops the layer when done.
 *
 * One decoder layer (every supported family):
 *   x1 = x + attention(input_layernorm(x))           (slim-decoder.c)
 *   y  = x1 + mlp(post_attention_layernorm(x1))      (the family's adapter)
 */
#include "slim-model.h"

#include <string.h>

#include "slim-decoder.h"
#include "slim-error.h"
#include "slim-model-adapter-table.h"
#include "slim-model-config-parser.h"
#include "slim-tensor-spec.h"

struct _SlimModel
{
  GObject parent_instance;

  char *path;
  SlimModelConfig *config;
  const SlimModelAdapter *adapter;
  SlimSafetensors *weights;
  char *base;         /* module prefix of the text model: "model" */
  char *embed_name;   /* "model.embed_tokens.weight" */
  char *norm_module;  /* "model.norm" */
  char *lm_head_name; /* "lm_head.weight" (its data is the embedding when tied) */
};

G_DEFINE_FINAL_TYPE (SlimModel, slim_model, G_TYPE_OBJECT)

static void
slim_model_finalize (GObject *object)
{
  SlimModel *self = SLIM_MODEL (object);

  g_free (self->path);
  g_clear_pointer (&self->config, slim_model_config_free);
  g_clear_object (&self->weights);
  g_free (self->base);
  g_free (self->embed_name);
  g_free (self->norm_module);
  g_free (self->lm_head_name);
  G_OBJECT_CLASS (slim_model_parent_class)->finalize (object);
}

static void
slim_model_class_init (SlimModelClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = slim_model_finalize;
}

static void
slim_model_init (SlimModel *self)
{
}

/* ---- opening ----------------------------------------------------------- */

static char *
slim_model_describe_dims (const SlimModelConfig *config)
{
  return g_strdup_printf (
      "config.json: vocab_size=%" G_GINT64_FORMAT ", hidden_size=%" G_GINT64_FORMAT
      ", intermediate_size=%" G_GINT64_FORMAT ", num_attention_heads=%" G_GINT64_FORMAT
      ", num_key_value_heads=%" G_GINT64_FORMAT ", head_dim=%" G_GINT64_FORMAT,
      config->vocab_size, config->hidden_size,
      config->n_experts > 0 ? config->moe_intermediate_size : config->intermediate_size,
      config->n_heads, config->n_kv_heads, config->head_dim);
}

static gboolean
slim_model_check_tensor (SlimModel *self, const SlimTensorSpec *spec, GError **error)
{
  SlimDType dtype;
  guint n_dims = 0;
  gint64 shape[SLIM_TENSOR_MAX_DIMS] = { 0 };

  if (!slim_safetensors_get_info (self->weights, spec->name, &dtype, &n_dims, shape))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                   "%s: missing tensor '%s' (model_type %s)", self->path, spec->name,
                   self->config->model_type);
      return FALSE;
    }
  if (dtype != SLIM_DTYPE_F32 && dtype != SLIM_DTYPE_BF16 && dtype != SLIM_DTYPE_F16)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_DTYPE,
                   "%s: tensor '%s' has dtype %s; model weights must be F32, BF16 or F16",
                   self->path, spec->name, slim_dtype_get_name (dtype));
      return FALSE;
    }
  if (n_dims != spec->n_dims || shape[0] != spec->shape[0]
      || (spec->n_dims == 2 && shape[1] != spec->shape[1]))
    {
      g_autoptr (GString) have = g_string_new ("[");
      g_autofree char *dims = slim_model_describe_dims (self->config);

      for (guint i = 0; i < n_dims; i++)
        g_string_append_printf (have, "%s%" G_GINT64_FORMAT, i > 0 ? ", " : "", shape[i]);
      g_string_append_c (have, ']');
      if (spec->n_dims == 2)
        g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                     "%s: tensor '%s' has shape %s, expected [%" G_GINT64_FORMAT
                     ", %" G_GINT64_FORMAT "] (%s)",
                     self->path, spec->name, have->str, spec->shape[0], spec->shape[1], dims);
      else
        g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                     "%s: tensor '%s' has shape %s, expected [%" G_GINT64_FORMAT "] (%s)",
                     self->path, spec->name, have->str, spec->shape[0], dims);
      return FALSE;
    }
  return TRUE;
}

/* Tensors of decoder layer index, and its linear names, in load order. */
static void
slim_model_describe_layer (SlimModel *self, guint index, GArray *specs, GPtrArray *linear_names)
{
  g_autofree char *prefix = g_strdup_printf ("%s.layers.%u", self->base, index);

  slim_decoder_describe_attention (self->config, prefix, specs, linear_names);
  self->adapter->describe_mlp (self->config, prefix, index, specs, linear_names);
}

static gboolean
slim_model_find_names (SlimModel *self, GError **error)
{
  /* Text models nested in multimodal checkpoints keep their own prefix. */
  const char *bases[] = { "model", "model.language_model", "language_model.model" };
  const char *heads[] = { "lm_head.weight", "language_model.lm_head.weight" };

  for (gsize i = 0; i < G_N_ELEMENTS (bases) && self->base == NULL; i++)
    {
      g_autofree char *embed = g_strconcat (bases[i], ".embed_tokens.weight", NULL);

      if (slim_safetensors_contains (self->weights, embed))
        self->base = g_strdup (bases[i]);
    }
  if (self->base == NULL)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                   "%s: missing tensor 'model.embed_tokens.weight'", self->path);
      return FALSE;
    }
  self->embed_name = g_strconcat (self->base, ".embed_tokens.weight", NULL);
  self->norm_module = g_strconcat (self->base, ".norm", NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (heads) && self->lm_head_name == NULL; i++)
    if (slim_safetensors_contains (self->weights, heads[i]))
      self->lm_head_name = g_strdup (heads[i]);
  if (self->lm_head_name == NULL)
    {
      if (!self->config->tie_word_embeddings)
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                       "%s: missing tensor 'lm_head.weight' (config.json: tie_word_embeddings is "
                       "false)",
                       self->path);
          return FALSE;
        }
      self->lm_head_name = g_strdup ("lm_head.weight");
    }
  return TRUE;
}

static gboolean
slim_model_check_weights (SlimModel *self, GError **error)
{
  const SlimModelConfig *config = self->config;
  g_autoptr (GArray) specs = slim_tensor_specs_new ();
  g_autoptr (GPtrArray) linear_names = g_ptr_array_new_with_free_func (g_free);

  slim_tensor_specs_add (specs, g_strdup (self->embed_name), config->vocab_size,
                         config->hidden_size);
  slim_tensor_specs_add (specs, g_strconcat (self->norm_module, ".weight", NULL),
                         config->hidden_size, 0);
  if (!config->tie_word_embeddings)
    slim_tensor_specs_add (specs, g_strdup (self->lm_head_name), config->vocab_size,
                           config->hidden_size);
  for (guint i = 0; i < (guint)config->n_layers; i++)
    slim_model_describe_layer (self, i, specs, linear_names);
  for (guint i = 0; i < specs->len; i++)
    if (!slim_model_check_tensor (self, &g_array_index (specs, SlimTensorSpec, i), error))
      return FALSE;
  return TRUE;
}

/**
 * slim_model_open:
 * @dir: a Hugging Face model folder (config.json and safetensors weights)
 * @error: SLIM_MODEL_ERROR (config field, architecture, tensor shape),
 *   SLIM_FORMAT_ERROR (missing tensor, malformed file) or G_FILE_ERROR;
 *   messages name the file and the field or tensor
 *
 * Reads the config and maps the weights; nothing is converted yet.
 * Returns: (transfer full) (nullable): the model, or NULL with @error set.
 */
SlimModel *
slim_model_open (const char *dir, GError **error)
{
  g_autoptr (SlimModel) self = NULL;
  g_autofree char *config_path = NULL;

  g_return_val_if_fail (dir != NULL, NULL);

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "%s: not a model folder", dir);
      return NULL;
    }
  self = g_object_new (SLIM_TYPE_MODEL, NULL);
  self->path = g_strdup (dir);
  config_path = g_build_filename (dir, "config.json", NULL);
  self->config = slim_model_config_load (config_path, error);
  if (self->config == NULL)
    return NULL;
  self->adapter = slim_model_adapter_find (self->config->model_type);
  g_assert (self->adapter != NULL); /* the config parser checked it */
  self->weights = slim_safetensors_open (dir, error);
  if (self->weights == NULL)
    return NULL;
  if (!slim_model_find_names (self, error) || !slim_model_check_weights (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

/* Returns: (transfer none): the folder. */
const char *
slim_model_get_path (SlimModel *self)
{
  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  return self->path;
}

/* Returns: (transfer none): the parsed config.json. */
const SlimModelConfig *
slim_model_get_config (SlimModel *self)
{
  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  return self->config;
}

/* Returns: (transfer none): the mapped weights. */
SlimSafetensors *
slim_model_get_weights (SlimModel *self)
{
  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  return self->weights;
}

/* Returns: num_hidden_layers. */
guint
slim_model_get_n_layers (SlimModel *self)
{
  g_return_val_if_fail (SLIM_IS_MODEL (self), 0);
  return (guint)self->config->n_layers;
}

/* ---- loading ----------------------------------------------------------- */

/* Converts one stored tensor to a new float32 tensor called name. */
static gboolean
slim_model_load_tensor (
    SlimModel *self, SlimLayer *layer, const char *stored_name, const char *name, GError **error)
{
  g_autoptr (SlimTensor) tensor = NULL;
  SlimDType dtype = SLIM_DTYPE_F32;
  guint n_dims;
  gint64 shape[SLIM_TENSOR_MAX_DIMS];

  tensor = slim_safetensors_get_tensor_f32 (self->weights, stored_name, error);
  if (tensor == NULL)
    {
      g_prefix_error (error, "%s: ", self->path);
      return FALSE;
    }
  if (g_strcmp0 (slim_tensor_get_name (tensor), name) != 0)
    slim_tensor_set_name (tensor, name);
  slim_safetensors_get_info (self->weights, stored_name, &dtype, &n_dims, shape);
  slim_layer_set_tensor (layer, tensor);
  slim_layer_set_source_dtype (layer, name, dtype);
  return TRUE;
}

/**
 * slim_model_load_layer:
 * @index: decoder layer, 0 .. n_layers - 1
 *
 * Returns: (transfer full) (nullable): the layer's tensors in float32,
 * with full Hugging Face names and the linear names in execution order.
 */
SlimLayer *
slim_model_load_layer (SlimModel *self, guint index, GError **error)
{
  g_autoptr (GArray) specs = slim_tensor_specs_new ();
  g_autoptr (GPtrArray) linear_names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *prefix = NULL;
  g_autoptr (SlimLayer) layer = NULL;

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  g_return_val_if_fail (index < (guint)self->config->n_layers, NULL);

  prefix = g_strdup_printf ("%s.layers.%u", self->base, index);
  layer = slim_layer_new ((gint)index, prefix);
  slim_model_describe_layer (self, index, specs, linear_names);
  for (guint i = 0; i < specs->len; i++)
    {
      const char *name = g_array_index (specs, SlimTensorSpec, i).name;

      if (!slim_model_load_tensor (self, layer, name, name, error))
        return NULL;
    }
  /* A bias the architecture does not declare, beside a norm's or a
   * linear's weight: what asymmetric smoothing adds (a norm shift, W
   * shift in the linears' biases), in a folder slimflow saved.  The
   * forward checks its shape. */
  for (guint i = 0; i < specs->len; i++)
    {
      const char *name = g_array_index (specs, SlimTensorSpec, i).name;
      g_autofree char *bias = NULL;

      if (!g_str_has_suffix (name, ".weight"))
        continue;
      bias = g_strconcat (name, NULL);
      strcpy (bias + strlen (bias) - strlen ("weight"), "bias");
      if (slim_layer_get_tensor (layer, bias) == NULL
          && slim_safetensors_contains (self->weights, bias)
          && !slim_model_load_tensor (self, layer, bias, bias, error))
        return NULL;
    }
  for (guint i = 0; i < linear_names->len; i++)
    slim_layer_add_linear_name (layer, g_ptr_array_index (linear_names, i));
  return g_steal_pointer (&layer);
}

/* Returns: (transfer full) (nullable): embed_tokens in float32. */
SlimLayer *
slim_model_load_embed (SlimModel *self, GError **error)
{
  g_autoptr (SlimLayer) layer = NULL;

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);

  layer = slim_layer_new (SLIM_LAYER_INDEX_EMBED, "");
  if (!slim_model_load_tensor (self, layer, self->embed_name, self->embed_name, error))
    return NULL;
  return g_steal_pointer (&layer);
}

/* Returns: (transfer full) (nullable): the final norm and lm_head
 * (converted from the embedding when tied). */
SlimLayer *
slim_model_load_head (SlimModel *self, GError **error)
{
  g_autoptr (SlimLayer) layer = NULL;
  g_autofree char *norm = NULL;
  g_autofree char *lm_head_module = NULL;

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);

  layer = slim_layer_new (SLIM_LAYER_INDEX_HEAD, "");
  norm = g_strconcat (self->norm_module, ".weight", NULL);
  if (!slim_model_load_tensor (self, layer, norm, norm, error)
      || !slim_model_load_tensor (
          self, layer, self->config->tie_word_embeddings ? self->embed_name : self->lm_head_name,
          self->lm_head_name, error))
    return NULL;
  lm_head_module = g_strndup (self->lm_head_name, strlen (self->lm_head_name) - strlen (".weight"));
  slim_layer_add_linear_name (layer, lm_head_module);
  return g_steal_pointer (&layer);
}

/* ---- forward ----------------------------------------------------------- */

/* (n_rows, n_cols) float32, or NULL with an error when it cannot be allocated. */
static SlimTensor *
slim_model_new_activations (const char *name, gint64 n_rows, gint64 n_cols, GError **error)
{
  const gint64 shape[2] = { n_rows, n_cols };

  return slim_tensor_new (name, SLIM_DTYPE_F32, 2, shape, error);
}

static gboolean
slim_model_check_hidden (SlimModel *self, SlimTensor *hidden, GError **error)
{
  if (slim_tensor_get_dtype (hidden) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (hidden) != 2
      || slim_tensor_get_dim (hidden, 1) != self->config->hidden_size)
    {
      g_autofree char *have = slim_tensor_shape_to_string (hidden);

      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                   "hidden states are %s %s, expected f32 [n_tokens, %" G_GINT64_FORMAT "]",
                   slim_dtype_get_name (slim_tensor_get_dtype (hidden)), have,
                   self->config->hidden_size);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_model_check_batch (const SlimBatch *batch, gint64 n_tokens, GError **error)
{
  gint64 total = 0;

  if (batch == NULL || (batch->n_seqs > 0 && batch->seq_lens == NULL))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT, "no sequence lengths given");
      return FALSE;
    }
  for (guint s = 0; s < batch->n_seqs; s++)
    {
      if (batch->seq_lens[s] < 0 || batch->seq_lens[s] > n_tokens - total)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                       "sequence %u has length %" G_GINT64_FORMAT ", beyond the %" G_GINT64_FORMAT
                       " tokens given",
                       s, batch->seq_lens[s], n_tokens);
          return FALSE;
        }
      total += batch->seq_lens[s];
    }
  if (total != n_tokens)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                   "sequence lengths add up to %" G_GINT64_FORMAT ", not the %" G_GINT64_FORMAT
                   " tokens given",
                   total, n_tokens);
      return FALSE;
    }
  return TRUE;
}

/**
 * slim_model_embed:
 * @embed: the layer from slim_model_load_embed()
 * @ids: (array length=n_tokens): token ids
 *
 * Returns: (transfer full) (nullable): hidden states (n_tokens, hidden);
 * NULL with SLIM_MODEL_ERROR_INPUT when an id is outside 0..vocab_size-1.
 */
SlimTensor *
slim_model_embed (
    SlimModel *self, SlimLayer *embed, const gint32 *ids, gint64 n_tokens, GError **error)
{
  gint64 hidden_size;
  SlimTensor *table;
  const float *rows; /* (vocab, hidden) */
  g_autoptr (SlimTensor) out = NULL;
  float *data; /* (n_tokens, hidden) */

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  g_return_val_if_fail (SLIM_IS_LAYER (embed), NULL);
  g_return_val_if_fail (ids != NULL || n_tokens == 0, NULL);
  g_return_val_if_fail (n_tokens >= 0, NULL);

  hidden_size = self->config->hidden_size;
  table = slim_layer_require_tensor (embed, self->embed_name, error);
  if (table == NULL)
    return NULL;
  if (slim_tensor_get_dtype (table) != SLIM_DTYPE_F32 || slim_tensor_get_n_dims (table) != 2
      || slim_tensor_get_dim (table, 0) != self->config->vocab_size
      || slim_tensor_get_dim (table, 1) != hidden_size)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_SHAPE,
                   "tensor '%s' must be f32 [vocab_size, hidden_size]", self->embed_name);
      return NULL;
    }
  for (gint64 t = 0; t < n_tokens; t++)
    if (ids[t] < 0 || ids[t] >= self->config->vocab_size)
      {
        g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                     "token id %d at position %" G_GINT64_FORMAT
                     " is outside the vocabulary (0..%" G_GINT64_FORMAT ")",
                     ids[t], t, self->config->vocab_size - 1);
        return NULL;
      }
  rows = slim_tensor_get_data (table);
  out = slim_model_new_activations ("hidden_states", n_tokens, hidden_size, error);
  if (out == NULL)
    return NULL;
  data = slim_tensor_get_data_mut (out);
  for (gint64 t = 0; t < n_tokens; t++)
    memcpy (data + t * hidden_size, rows + (gint64)ids[t] * hidden_size,
            (gsize)hidden_size * sizeof (float));
  return g_steal_pointer (&out);
}

/**
 * slim_model_forward_layer:
 * @layer: a decoder layer from slim_model_load_layer() (possibly changed
 *   by processors; its tensors must be float32 of the original shapes)
 * @hidden: (n_tokens, hidden) float32, the sequences of @batch packed
 * @hooks: (nullable): observers / modifiers
 *
 * Returns: (transfer full) (nullable): the layer's output (n_tokens, hidden).
 */
SlimTensor *
slim_model_forward_layer (SlimModel *self,
                          SlimLayer *layer,
                          SlimTensor *hidden,
                          const SlimBatch *batch,
                          const SlimForwardHooks *hooks,
                          GError **error)
{
  const SlimModelConfig *config;
  gint index;
  gint64 n_tokens, hidden_size, max_len = 0;
  g_autofree char *input_norm = NULL;
  g_autofree char *post_norm = NULL;
  g_autofree gint64 *positions = NULL; /* (n_tokens) */
  g_autofree float *normed = NULL;     /* (n_tokens, hidden) */
  g_autofree float *branch = NULL;     /* (n_tokens, hidden) */
  g_autoptr (SlimTensor) out = NULL;
  const float *x;
  float *y;
  SlimRopeTable rope = { 0 };
  gboolean ok;

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), NULL);
  g_return_val_if_fail (hidden != NULL, NULL);

  config = self->config;
  index = slim_layer_get_index (layer);
  if (index < 0 || index >= config->n_layers)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                   "layer index %d is not a decoder layer of %s (0..%" G_GINT64_FORMAT ")", index,
                   self->path, config->n_layers - 1);
      return NULL;
    }
  if (!slim_model_check_hidden (self, hidden, error))
    return NULL;
  n_tokens = slim_tensor_get_dim (hidden, 0);
  if (!slim_model_check_batch (batch, n_tokens, error))
    return NULL;
  hidden_size = config->hidden_size;
  for (guint s = 0; s < batch->n_seqs; s++)
    max_len = MAX (max_len, batch->seq_lens[s]);

  positions = g_new (gint64, MAX (n_tokens, 1));
  slim_decoder_fill_positions (batch, positions);
  slim_rope_table_init (&rope, config, max_len);
  normed = g_new (float, MAX (n_tokens * hidden_size, 1));
  branch = g_new (float, MAX (n_tokens * hidden_size, 1));
  out = slim_model_new_activations ("hidden_states", n_tokens, hidden_size, error);
  if (out == NULL)
    {
      slim_rope_table_clear (&rope);
      return NULL;
    }
  x = slim_tensor_get_data (hidden);
  y = slim_tensor_get_data_mut (out);
  if (hooks != NULL && hooks->layer_input != NULL
      && !hooks->layer_input (slim_layer_get_prefix (layer), x, n_tokens, hidden_size, batch,
                              hooks->user_data, error))
    {
      slim_rope_table_clear (&rope);
      return NULL;
    }

  input_norm = g_strconcat (slim_layer_get_prefix (layer), ".input_layernorm", NULL);
  post_norm = g_strconcat (slim_layer_get_prefix (layer), ".post_attention_layernorm", NULL);
  ok = slim_decoder_norm (layer, input_norm, x, normed, n_tokens, hidden_size,
                          (float)config->rms_norm_eps, error)
       && slim_decoder_forward_attention (config, layer, &rope, positions, batch, normed, branch,
                                          hooks, error);
  slim_rope_table_clear (&rope);
  if (!ok)
    return NULL;
  for (gint64 i = 0; i < n_tokens * hidden_size; i++)
    y[i] = x[i] + branch[i];

  if (!slim_decoder_norm (layer, post_norm, y, normed, n_tokens, hidden_size,
                          (float)config->rms_norm_eps, error)
      || !self->adapter->forward_mlp (config, layer, normed, branch, n_tokens, hooks, error))
    return NULL;
  for (gint64 i = 0; i < n_tokens * hidden_size; i++)
    y[i] += branch[i];
  return g_steal_pointer (&out);
}

/**
 * slim_model_forward_head:
 * @head: the layer from slim_model_load_head()
 * @hidden: (n_tokens, hidden) float32, the last decoder layer's output
 * @hooks: (nullable): the linear_input hook sees lm_head's input
 *
 * Returns: (transfer full) (nullable): logits (n_tokens, vocab) float32.
 */
SlimTensor *
slim_model_forward_head (SlimModel *self,
                         SlimLayer *head,
                         SlimTensor *hidden,
                         const SlimForwardHooks *hooks,
                         GError **error)
{
  gint64 n_tokens, hidden_size, vocab;
  g_autofree float *normed = NULL; /* (n_tokens, hidden) */
  g_autofree char *lm_head_module = NULL;
  g_autoptr (SlimTensor) logits = NULL;

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  g_return_val_if_fail (SLIM_IS_LAYER (head), NULL);
  g_return_val_if_fail (hidden != NULL, NULL);

  if (!slim_model_check_hidden (self, hidden, error))
    return NULL;
  n_tokens = slim_tensor_get_dim (hidden, 0);
  hidden_size = self->config->hidden_size;
  vocab = self->config->vocab_size;
  /* The largest buffer first: a request too large is an error, not an abort. */
  logits = slim_model_new_activations ("logits", n_tokens, vocab, error);
  if (logits == NULL)
    return NULL;
  normed = g_new (float, MAX (n_tokens * hidden_size, 1));
  if (!slim_decoder_norm (head, self->norm_module, slim_tensor_get_data (hidden), normed, n_tokens,
                          hidden_size, (float)self->config->rms_norm_eps, error))
    return NULL;
  lm_head_module = g_strndup (self->lm_head_name, strlen (self->lm_head_name) - strlen (".weight"));
  if (!slim_decoder_linear_private (head, lm_head_module, normed, n_tokens, hidden_size, vocab,
                                    slim_tensor_get_data_mut (logits), hooks, error))
    return NULL;
  return g_steal_pointer (&logits);
}

/**
 * slim_model_forward_logits:
 * @ids: (array): token ids of all sequences, packed
 * @batch: the sequence lengths (adding up to the number of ids)
 *
 * Runs the whole model one layer at a time (each loaded, run, dropped).
 * Returns: (transfer full) (nullable): logits (n_tokens, vocab) float32.
 */
SlimTensor *
slim_model_forward_logits (SlimModel *self,
                           const gint32 *ids,
                           const SlimBatch *batch,
                           GError **error)
{
  return slim_model_forward_logits_full (self, ids, batch, NULL, NULL, error);
}

/**
 * slim_model_forward_logits_full:
 * @ids: (array): token ids of all sequences, packed
 * @batch: the sequence lengths (adding up to the number of ids)
 * @hooks: (nullable): seen by every decoder layer and the head
 * @progress: (nullable): updated after the embedding, each layer and the head
 *
 * Returns: (transfer full) (nullable): logits (n_tokens, vocab) float32.
 */
SlimTensor *
slim_model_forward_logits_full (SlimModel *self,
                                const gint32 *ids,
                                const SlimBatch *batch,
                                const SlimForwardHooks *hooks,
                                SlimProgress *progress,
                                GError **error)
{
  g_autoptr (SlimLayer) embed = NULL;
  g_autoptr (SlimLayer) head = NULL;
  g_autoptr (SlimTensor) hidden = NULL;
  SlimTensor *logits;
  gint64 n_tokens = 0;

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);

  if (batch == NULL || (batch->n_seqs > 0 && batch->seq_lens == NULL))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT, "no sequence lengths given");
      return NULL;
    }
  for (guint s = 0; s < batch->n_seqs; s++)
    {
      if (batch->seq_lens[s] < 0 || batch->seq_lens[s] > G_MAXINT64 / 2 - n_tokens)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                       "sequence %u has an invalid length", s);
          return NULL;
        }
      n_tokens += batch->seq_lens[s];
    }

  embed = slim_model_load_embed (self, error);
  if (embed == NULL)
    return NULL;
  hidden = slim_model_embed (self, embed, ids, n_tokens, error);
  g_clear_object (&embed);
  if (hidden == NULL)
    return NULL;
  if (progress != NULL)
    slim_progress_update (progress, 1);
  for (guint i = 0; i < (guint)self->config->n_layers; i++)
    {
      g_autoptr (SlimLayer) layer = slim_model_load_layer (self, i, error);
      SlimTensor *next;

      if (layer == NULL)
        return NULL;
      next = slim_model_forward_layer (self, layer, hidden, batch, hooks, error);
      if (next == NULL)
        {
          g_prefix_error (error, "layer %u: ", i);
          return NULL;
        }
      slim_tensor_unref (hidden);
      hidden = next;
      if (progress != NULL)
        slim_progress_update (progress, 2 + (gint64)i);
    }
  head = slim_model_load_head (self, error);
  if (head == NULL)
    return NULL;
  logits = slim_model_forward_head (self, head, hidden, hooks, error);
  if (logits != NULL && progress != NULL)
    slim_progress_update (progress, self->config->n_layers + 2);
  return logits;
}

/* ---- structure --------------------------------------------------------- */

char *
slim_model_dup_layer_prefix (SlimModel *self, guint index)
{
  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  return g_strdup_printf ("%s.layers.%u", self->base, index);
}

/**
 * slim_model_get_subgraphs:
 * @index: decoder layer
 *
 * Smoothing structure of the layer, in msModelSlim's terms:
 * input_layernorm -> q, k, v (norm-linear); v_proj -> o_proj (ov); the
 * post_attention_layernorm's consumers (norm-linear) and each up -> down
 * pair (up-down) of the MLP or of every expert.
 * Returns: (transfer full) (element-type SlimSubgraph): the subgraphs.
 */
GPtrArray *
slim_model_get_subgraphs (SlimModel *self, guint index)
{
  GPtrArray *subgraphs;
  g_autofree char *prefix = NULL;
  g_autofree char *norm = NULL;
  g_autofree char *q = NULL;
  g_autofree char *k = NULL;
  g_autofree char *v = NULL;
  g_autofree char *o = NULL;

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  g_return_val_if_fail (index < (guint)self->config->n_layers, NULL);

  subgraphs = g_ptr_array_new_with_free_func ((GDestroyNotify)slim_subgraph_free);
  prefix = g_strdup_printf ("%s.layers.%u", self->base, index);
  norm = g_strconcat (prefix, ".input_layernorm", NULL);
  q = g_strconcat (prefix, ".self_attn.q_proj", NULL);
  k = g_strconcat (prefix, ".self_attn.k_proj", NULL);
  v = g_strconcat (prefix, ".self_attn.v_proj", NULL);
  o = g_strconcat (prefix, ".self_attn.o_proj", NULL);
  {
    const char *qkv[] = { q, k, v, NULL };
    const char *o_targets[] = { o, NULL };

    g_ptr_array_add (subgraphs, slim_subgraph_new (SLIM_SUBGRAPH_NORM_LINEAR, norm, qkv));
    g_ptr_array_add (subgraphs, slim_subgraph_new (SLIM_SUBGRAPH_OV, v, o_targets));
  }
  self->adapter->add_mlp_subgraphs (self->config, prefix, index, subgraphs);
  return subgraphs;
}

/**
 * slim_model_forward_module:
 *
 * One module of a decoder layer on its own input, with the layer's
 * current weights and no hooks (awq's inspected module): a linear
 * (module.weight), the attention block ("<prefix>.self_attn": x
 * input-normed, one sequence at positions 0 .. n_tokens - 1) or the MLP
 * block ("<prefix>.mlp": x post-attention-normed; dense or MoE, as the
 * adapter runs it).
 * Returns: (transfer full): out (n_tokens, n_out), or NULL with an error.
 */
SlimTensor *
slim_model_forward_module (SlimModel *self,
                           SlimLayer *layer,
                           const char *module,
                           const float *x,
                           gint64 n_tokens,
                           gint64 n_in,
                           GError **error)
{
  const SlimModelConfig *config;
  g_autofree char *weight_name = NULL;
  g_autofree char *attn = NULL;
  g_autofree char *mlp = NULL;
  g_autoptr (SlimTensor) out = NULL;
  SlimTensor *w;

  g_return_val_if_fail (SLIM_IS_MODEL (self), NULL);
  g_return_val_if_fail (SLIM_IS_LAYER (layer), NULL);
  g_return_val_if_fail (module != NULL && x != NULL, NULL);

  config = self->config;
  weight_name = g_strconcat (module, ".weight", NULL);
  w = slim_layer_get_tensor (layer, weight_name);
  if (w != NULL && slim_tensor_get_n_dims (w) == 2)
    {
      const gint64 n_out = slim_tensor_get_dim (w, 0);

      if (slim_tensor_get_dim (w, 1) != n_in)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                       "%s takes %" G_GINT64_FORMAT " inputs, given %" G_GINT64_FORMAT, module,
                       slim_tensor_get_dim (w, 1), n_in);
          return NULL;
        }
      out = slim_model_new_activations (module, n_tokens, n_out, error);
      if (out == NULL
          || !slim_decoder_linear (layer, module, x, n_tokens, n_in, n_out,
                                   slim_tensor_get_data_mut (out), NULL, error))
        return NULL;
      return g_steal_pointer (&out);
    }
  attn = g_strconcat (slim_layer_get_prefix (layer), ".self_attn", NULL);
  mlp = g_strconcat (slim_layer_get_prefix (layer), ".mlp", NULL);
  if (strcmp (module, attn) != 0 && strcmp (module, mlp) != 0)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                   "%s is not a module slimflow can run on its own (a linear, %s or %s)", module,
                   attn, mlp);
      return NULL;
    }
  if (n_in != config->hidden_size)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_INPUT,
                   "%s takes %" G_GINT64_FORMAT " inputs, given %" G_GINT64_FORMAT, module,
                   config->hidden_size, n_in);
      return NULL;
    }
  out = slim_model_new_activations (module, n_tokens, config->hidden_size, error);
  if (out == NULL)
    return NULL;
  if (strcmp (module, attn) == 0)
    {
      const gint64 seq_len = n_tokens;
      const SlimBatch batch = { 1, &seq_len };
      g_autofree gint64 *positions = g_new (gint64, MAX (n_tokens, 1)); /* (n_tokens) */
      SlimRopeTable rope = { 0 };
      gboolean ok;

      slim_decoder_fill_positions (&batch, positions);
      slim_rope_table_init (&rope, config, n_tokens);
      ok = slim_decoder_forward_attention (config, layer, &rope, positions, &batch, x,
                                           slim_tensor_get_data_mut (out), NULL, error);
      slim_rope_table_clear (&rope);
      if (!ok)
        return NULL;
    }
  else if (!self->adapter->forward_mlp (config, layer, x, slim_tensor_get_data_mut (out), n_tokens,
                                        NULL, error))
    return NULL;
  return g_steal_pointer (&out);
}
