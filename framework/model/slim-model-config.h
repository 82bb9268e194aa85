/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model-config.h: SlimModelConfig, what a Hugging Face config.json
 * says about a decoder-only model (sizes, RoPE, biases, MoE layout, token
 * ids, weight dtype), as a plain record.  It is filled by
 * slim_model_config_parse() (slim-model-config-parser.h) and read by the
 * decoder kernels, the adapters and SlimModel.
 */
#pragma once

#include <glib.h>
#include "slim-dtype.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_ROPE_SCALING_NONE,
  SLIM_ROPE_SCALING_LINEAR,
  SLIM_ROPE_SCALING_LLAMA3,
} SlimRopeScalingType;

typedef struct
{
  char *model_type; /* "llama", "qwen2", "qwen2_moe", ... */
  char *architecture; /* architectures[0], e.g. "LlamaForCausalLM" */
  gint64 vocab_size;
  gint64 hidden_size;
  gint64 intermediate_size;
  gint64 n_layers;
  gint64 n_heads;
  gint64 n_kv_heads;
  gint64 head_dim;
  gint64 max_position_embeddings;
  double rms_norm_eps;
  double rope_theta;
  SlimRopeScalingType rope_scaling_type;
  double rope_scaling_factor;
  double rope_low_freq_factor;  /* llama3 */
  double rope_high_freq_factor; /* llama3 */
  gint64 rope_original_max_position_embeddings; /* llama3 */
  gboolean tie_word_embeddings;
  gboolean attention_bias; /* q/k/v/o bias (qwen2: q/k/v only) */
  gboolean o_proj_bias;    /* o_proj has a bias (llama/qwen3 attention_bias; never qwen2) */
  gboolean mlp_bias;
  gboolean qk_norm;      /* qwen3: per-head RMSNorm on q and k before RoPE */
  gint64 sliding_window; /* mistral/mixtral: a query sees the last sliding_window keys; 0: all */
  /* MoE (0 experts for dense models) */
  gint64 n_experts;
  gint64 n_experts_per_tok;
  gint64 moe_intermediate_size;
  gint64 shared_expert_intermediate_size; /* qwen2_moe; 0 if none */
  gboolean norm_topk_prob;
  gboolean *layer_is_moe; /* (n_layers) TRUE when layer i's MLP is a mixture of experts */
  gint64 bos_token_id;    /* -1 if none */
  gint64 eos_token_id;    /* -1 if none */
  SlimDType torch_dtype;  /* the weights' declared dtype */
} SlimModelConfig;

void slim_model_config_free (SlimModelConfig *config);

/* TRUE when decoder layer index has a mixture-of-experts MLP. */
gboolean slim_model_config_layer_is_moe (const SlimModelConfig *config, guint index);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimModelConfig, slim_model_config_free)

G_END_DECLS
