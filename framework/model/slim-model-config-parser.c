/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-config-parser.c: config.json -> SlimModelConfig.  Common Llama-
 * family fields are read here with the defaults transformers uses; the
 * adapter of the model_type reads the rest (framework/model/adapters/).  The file
 * is untrusted: every number is range-checked before anything is sized
 * from it, and every dimension must fit the BLAS int.
 */
#include "slim-model-config-parser.h"

#include <glib/gstdio.h>
#include <string.h>

#include "slim-error.h"
#include "slim-linalg.h"
#include "slim-config-reader.h"
#include "slim-model-adapter-table.h"

/* Bounds on what a config may declare (far above any real model). */
#define SLIM_CONFIG_MAX_LAYERS 4096
#define SLIM_CONFIG_MAX_HEADS 65536
#define SLIM_CONFIG_MAX_FILE_BYTES (16 * 1024 * 1024)

/* ---- parsing ----------------------------------------------------------- */

static gboolean
slim_config_parse_rope_scaling (const SlimConfigReader *reader,
                                SlimModelConfig *config,
                                GError **error)
{
  JsonNode *node = slim_config_reader_lookup (reader, "rope_scaling");
  JsonObject *scaling;
  SlimConfigReader sub;
  const char *type = NULL;
  g_autofree char *what = NULL;

  config->rope_scaling_type = SLIM_ROPE_SCALING_NONE;
  config->rope_scaling_factor = 1.0;
  if (node == NULL)
    return TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: field 'rope_scaling' must be an object or null", reader->what);
      return FALSE;
    }
  scaling = json_node_get_object (node);
  what = g_strdup_printf ("%s: rope_scaling", reader->what);
  sub = (SlimConfigReader){ scaling, NULL, what };
  if (!slim_config_reader_get_string (&sub, "rope_type", &type, error))
    return FALSE;
  if (type == NULL && !slim_config_reader_get_string (&sub, "type", &type, error))
    return FALSE;
  if (type == NULL)
    return slim_config_reader_missing (&sub, "rope_type", error);

  if (strcmp (type, "default") == 0)
    return TRUE;
  if (strcmp (type, "linear") == 0)
    {
      config->rope_scaling_type = SLIM_ROPE_SCALING_LINEAR;
      return slim_config_reader_get_positive (&sub, "factor", TRUE, 1.0,
                                              &config->rope_scaling_factor, error);
    }
  if (strcmp (type, "llama3") == 0)
    {
      config->rope_scaling_type = SLIM_ROPE_SCALING_LLAMA3;
      if (!slim_config_reader_get_positive (&sub, "factor", TRUE, 1.0, &config->rope_scaling_factor,
                                            error)
          || !slim_config_reader_get_positive (&sub, "low_freq_factor", TRUE, 1.0,
                                               &config->rope_low_freq_factor, error)
          || !slim_config_reader_get_positive (&sub, "high_freq_factor", TRUE, 1.0,
                                               &config->rope_high_freq_factor, error)
          || !slim_config_reader_get_int (&sub, "original_max_position_embeddings", TRUE, 0, 1,
                                          G_MAXINT32,
                                          &config->rope_original_max_position_embeddings, error))
        return FALSE;
      if (!(config->rope_high_freq_factor > config->rope_low_freq_factor))
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                       "%s: high_freq_factor (%g) must be greater than low_freq_factor (%g)", what,
                       config->rope_high_freq_factor, config->rope_low_freq_factor);
          return FALSE;
        }
      return TRUE;
    }
  g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
               "%s: rope type '%s' is not supported (default, linear, llama3)", what, type);
  return FALSE;
}

static gboolean
slim_config_parse_dtype (const SlimConfigReader *reader, SlimModelConfig *config, GError **error)
{
  const char *name = NULL;

  config->torch_dtype = SLIM_DTYPE_F32;
  if (!slim_config_reader_get_string (reader, "torch_dtype", &name, error))
    return FALSE;
  if (name == NULL && !slim_config_reader_get_string (reader, "dtype", &name, error))
    return FALSE;
  if (name == NULL || strcmp (name, "float32") == 0)
    return TRUE;
  if (strcmp (name, "bfloat16") == 0)
    config->torch_dtype = SLIM_DTYPE_BF16;
  else if (strcmp (name, "float16") == 0)
    config->torch_dtype = SLIM_DTYPE_F16;
  else
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                   "%s: torch_dtype '%s' is not supported (float32, bfloat16, float16)",
                   reader->what, name);
      return FALSE;
    }
  return TRUE;
}

static gboolean
slim_config_parse_architecture (const SlimConfigReader *reader,
                                SlimModelConfig *config,
                                GError **error)
{
  JsonNode *node = reader->root != NULL && json_object_has_member (reader->root, "architectures")
                       ? json_object_get_member (reader->root, "architectures")
                       : NULL;
  JsonArray *array;
  JsonNode *first;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      config->architecture = g_strdup ("");
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_ARRAY (node) || json_array_get_length (json_node_get_array (node)) == 0)
    goto bad;
  array = json_node_get_array (node);
  first = json_array_get_element (array, 0);
  if (!JSON_NODE_HOLDS_VALUE (first) || json_node_get_value_type (first) != G_TYPE_STRING)
    goto bad;
  config->architecture = g_strdup (json_node_get_string (first));
  if (!g_str_has_suffix (config->architecture, "ForCausalLM")
      && !g_str_has_suffix (config->architecture, "ForConditionalGeneration"))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                   "%s: architecture '%s' is not a causal language model (*ForCausalLM)",
                   reader->what, config->architecture);
      return FALSE;
    }
  return TRUE;

bad:
  g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
               "%s: field 'architectures' must be a non-empty list of strings", reader->what);
  return FALSE;
}

static gboolean
slim_config_parse_common (const SlimConfigReader *reader, SlimModelConfig *config, GError **error)
{
  const char *act = NULL;
  double partial_rotary = 1.0;
  gint64 head_dim = 0;

  if (!slim_config_reader_get_int (reader, "vocab_size", TRUE, 0, 1, G_MAXINT32,
                                   &config->vocab_size, error)
      || !slim_config_reader_get_int (reader, "hidden_size", TRUE, 0, 1, SLIM_LINALG_MAX_DIM,
                                      &config->hidden_size, error)
      || !slim_config_reader_get_int (reader, "num_hidden_layers", TRUE, 0, 1,
                                      SLIM_CONFIG_MAX_LAYERS, &config->n_layers, error)
      || !slim_config_reader_get_int (reader, "num_attention_heads", TRUE, 0, 1,
                                      SLIM_CONFIG_MAX_HEADS, &config->n_heads, error)
      || !slim_config_reader_get_int (reader, "num_key_value_heads", FALSE, config->n_heads, 1,
                                      config->n_heads, &config->n_kv_heads, error)
      || !slim_config_reader_get_int (reader, "head_dim", FALSE, 0, 2, SLIM_LINALG_MAX_DIM,
                                      &head_dim, error)
      || !slim_config_reader_get_int (reader, "max_position_embeddings", FALSE, 2048, 1, G_MAXINT32,
                                      &config->max_position_embeddings, error)
      || !slim_config_reader_get_positive (reader, "rms_norm_eps", TRUE, 1e-6,
                                           &config->rms_norm_eps, error)
      || !slim_config_reader_get_positive (reader, "rope_theta", FALSE, 10000.0,
                                           &config->rope_theta, error)
      || !slim_config_reader_get_positive (reader, "partial_rotary_factor", FALSE, 1.0,
                                           &partial_rotary, error)
      || !slim_config_reader_get_bool (reader, "tie_word_embeddings", FALSE,
                                       &config->tie_word_embeddings, error)
      || !slim_config_reader_get_string (reader, "hidden_act", &act, error)
      || !slim_config_parse_rope_scaling (reader, config, error)
      || !slim_config_parse_dtype (reader, config, error)
      || !slim_config_reader_get_token (reader, "bos_token_id", config->vocab_size,
                                        &config->bos_token_id, error)
      || !slim_config_reader_get_token (reader, "eos_token_id", config->vocab_size,
                                        &config->eos_token_id, error))
    return FALSE;
  config->head_dim = head_dim;
  if (act != NULL && strcmp (act, "silu") != 0)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                   "%s: hidden_act '%s' is not supported (silu)", reader->what, act);
      return FALSE;
    }
  if (partial_rotary != 1.0)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                   "%s: partial_rotary_factor %g is not supported (1.0)", reader->what,
                   partial_rotary);
      return FALSE;
    }
  if (config->n_heads % config->n_kv_heads != 0)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: num_attention_heads (%" G_GINT64_FORMAT
                   ") is not a multiple of num_key_value_heads (%" G_GINT64_FORMAT ")",
                   reader->what, config->n_heads, config->n_kv_heads);
      return FALSE;
    }
  return TRUE;
}

/* After the adapter: defaults and cross-field consistency. */
static gboolean
slim_config_check (const SlimConfigReader *reader, SlimModelConfig *config, GError **error)
{
  if (config->head_dim == 0)
    {
      if (config->hidden_size % config->n_heads != 0)
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                       "%s: hidden_size (%" G_GINT64_FORMAT
                       ") is not a multiple of num_attention_heads (%" G_GINT64_FORMAT
                       ") and there is no 'head_dim'",
                       reader->what, config->hidden_size, config->n_heads);
          return FALSE;
        }
      config->head_dim = config->hidden_size / config->n_heads;
    }
  if (config->head_dim % 2 != 0)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: head_dim (%" G_GINT64_FORMAT ") must be even for rotary embeddings",
                   reader->what, config->head_dim);
      return FALSE;
    }
  if (config->head_dim > SLIM_LINALG_MAX_DIM / config->n_heads)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: num_attention_heads x head_dim is too large", reader->what);
      return FALSE;
    }
  if (config->layer_is_moe == NULL)
    config->layer_is_moe = g_new0 (gboolean, config->n_layers);
  return TRUE;
}

SlimModelConfig *
slim_model_config_parse (const char *text, gssize length, const char *what, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (SlimModelConfig) config = g_new0 (SlimModelConfig, 1);
  g_autoptr (GError) local_error = NULL;
  SlimConfigReader reader = { NULL, NULL, what };
  const SlimModelAdapter *adapter;
  const char *model_type = NULL;
  JsonNode *root;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (what != NULL, NULL);

  if (!json_parser_load_from_data (parser, text, length, &local_error))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID, "%s: not valid JSON: %s",
                   what, local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG, "%s: not a JSON object", what);
      return NULL;
    }
  reader.root = json_node_get_object (root);
  reader.text = reader.root;
  if (json_object_has_member (reader.root, "text_config")
      && !JSON_NODE_HOLDS_NULL (json_object_get_member (reader.root, "text_config")))
    {
      JsonNode *text_node = json_object_get_member (reader.root, "text_config");

      if (!JSON_NODE_HOLDS_OBJECT (text_node))
        {
          g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                       "%s: field 'text_config' must be an object", what);
          return NULL;
        }
      reader.text = json_node_get_object (text_node);
    }

  /* model_type of the text model: text_config's own, else the top level's. */
  if (!slim_config_reader_get_string (&reader, "model_type", &model_type, error))
    return NULL;
  if (model_type == NULL)
    {
      slim_config_reader_missing (&reader, "model_type", error);
      return NULL;
    }
  config->model_type = g_strdup (model_type);
  adapter = slim_model_adapter_find (model_type);
  if (adapter == NULL)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_UNSUPPORTED,
                   "%s: model_type '%s' is not supported (supported: %s)", what, model_type,
                   slim_model_config_get_supported_types ());
      return NULL;
    }
  if (!slim_config_parse_architecture (&reader, config, error)
      || !slim_config_parse_common (&reader, config, error)
      || !adapter->parse_config (&reader, config, error)
      || !slim_config_check (&reader, config, error))
    return NULL;
  return g_steal_pointer (&config);
}

SlimModelConfig *
slim_model_config_load (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  gsize length = 0;
  GStatBuf st;

  g_return_val_if_fail (path != NULL, NULL);

  /* Bound the size before reading: the file is untrusted. */
  if (g_stat (path, &st) == 0 && st.st_size > SLIM_CONFIG_MAX_FILE_BYTES)
    {
      g_set_error (error, SLIM_MODEL_ERROR, SLIM_MODEL_ERROR_CONFIG,
                   "%s: %" G_GINT64_FORMAT " bytes is too large for a config.json", path,
                   (gint64)st.st_size);
      return NULL;
    }
  if (!g_file_get_contents (path, &text, &length, error))
    return NULL;
  return slim_model_config_parse (text, (gssize)length, path, error);
}
