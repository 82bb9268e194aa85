/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-model.h: a Hugging Face model folder opened for layer-wise
 * execution.  config.json is parsed into SlimModelConfig, the weights are
 * memory-mapped (SlimSafetensors) and a layer's tensors are converted to
 * float32 only when slim_model_load_layer() is called; the caller drops
 * the layer when done, so the whole model is never resident.
 *
 * Activations of a batch of variable-length sequences are packed without
 * padding: a (n_tokens_total, hidden) float32 tensor plus SlimBatch, the
 * per-sequence lengths.  Attention is causal inside each sequence and
 * never crosses sequences, which is what a padded batch with an attention
 * mask computes.
 *
 * One adapter per architecture family lives in framework/model/adapters/.
 */
#pragma once

#include <glib-object.h>
#include "slim-layer.h"
#include "slim-progress.h"
#include "slim-safetensors.h"
#include "slim-tensor.h"

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

/* Sequence lengths of a packed batch. */
typedef struct
{
  guint n_seqs;
  const gint64 *seq_lens; /* (n_seqs) */
} SlimBatch;

/* Forward hooks: called during slim_model_forward_layer/_head to observe or
 * replace values.  Any member may be NULL.  A hook returning FALSE must set
 * error; the forward stops and returns FALSE. */
typedef struct
{
  /* Before every linear (experts and the router included) with its input
   * x (n_tokens, n_in) row-major; module is the full name
   * ("model.layers.3.mlp.experts.2.up_proj"). x is private to this linear:
   * the hook may modify it in place (e.g. fake-quantize it). */
  gboolean (*linear_input) (const char *module, float *x, gint64 n_tokens, gint64 n_in,
                            gpointer user_data, GError **error);
  /* After q/k/v projections (and q/k norm and RoPE on q,k), per layer:
   * q (n_tokens, n_heads*head_dim), k and v (n_tokens, n_kv_heads*head_dim).
   * May modify in place (KV-cache quantization). attn is
   * "model.layers.3.self_attn". */
  gboolean (*qkv_states) (const char *attn, float *q, float *k, float *v, gint64 n_tokens,
                          const SlimModelConfig *config, gpointer user_data, GError **error);
  gpointer user_data;
} SlimForwardHooks;

/* Smoothing / rotation structure, in msModelSlim's terms (spec 2.3). */
typedef enum
{
  SLIM_SUBGRAPH_NORM_LINEAR, /* source = norm module, targets = linears it feeds */
  SLIM_SUBGRAPH_LINEAR_LINEAR,
  SLIM_SUBGRAPH_OV,          /* source = v_proj, targets = o_proj */
  SLIM_SUBGRAPH_UP_DOWN,     /* source = up_proj, targets = down_proj */
} SlimSubgraphType;

typedef struct
{
  SlimSubgraphType type;
  char *source;   /* module name, e.g. "model.layers.0.input_layernorm" */
  char **targets; /* NULL-terminated module names */
} SlimSubgraph;

#define SLIM_TYPE_MODEL (slim_model_get_type ())
G_DECLARE_FINAL_TYPE (SlimModel, slim_model, SLIM, MODEL, GObject)

/* Opens dir: config.json (or its text_config), weights (single or
 * sharded). Checks every tensor the architecture needs exists with the
 * right shape before returning. Errors name the file and field. */
SlimModel *slim_model_open (const char *dir, GError **error);
const char *slim_model_get_path (SlimModel *self);
const SlimModelConfig *slim_model_get_config (SlimModel *self);
SlimSafetensors *slim_model_get_weights (SlimModel *self); /* transfer none */
guint slim_model_get_n_layers (SlimModel *self);

/* Weights of decoder layer i as float32 tensors with full HF names. */
SlimLayer *slim_model_load_layer (SlimModel *self, guint index, GError **error);
/* Pseudo-layers: embed_tokens; final norm + lm_head (lm_head.weight is
 * present even when tied, as a share of the embedding). */
SlimLayer *slim_model_load_embed (SlimModel *self, GError **error);
SlimLayer *slim_model_load_head (SlimModel *self, GError **error);

/* ids (n_tokens) -> hidden (n_tokens, hidden). Ids out of range are an error. */
SlimTensor *slim_model_embed (SlimModel *self, SlimLayer *embed, const gint32 *ids, gint64 n_tokens,
                              GError **error);
/* One decoder layer on packed hidden states (n_tokens, hidden); returns
 * a new tensor (n_tokens, hidden). */
SlimTensor *slim_model_forward_layer (SlimModel *self, SlimLayer *layer, SlimTensor *hidden,
                                      const SlimBatch *batch, const SlimForwardHooks *hooks,
                                      GError **error);
/* Final norm and lm_head: hidden (n_tokens, hidden) -> logits (n_tokens, vocab). */
SlimTensor *slim_model_forward_head (SlimModel *self, SlimLayer *head, SlimTensor *hidden,
                                     const SlimForwardHooks *hooks, GError **error);
/* Convenience: full forward, loading one layer at a time.
 * ids packed (n_tokens) -> logits (n_tokens, vocab). */
SlimTensor *slim_model_forward_logits (SlimModel *self, const gint32 *ids, const SlimBatch *batch,
                                       GError **error);
/* The same with hooks (nullable) seen by every layer and the head, and a
 * progress line (nullable) counting n_layers + 2 steps: the embedding,
 * each decoder layer, the head. */
SlimTensor *slim_model_forward_logits_full (SlimModel *self,
                                            const gint32 *ids,
                                            const SlimBatch *batch,
                                            const SlimForwardHooks *hooks,
                                            SlimProgress *progress,
                                            GError **error);

/* Structure of decoder layer i (transfer full array of SlimSubgraph*, with
 * free func set). */
GPtrArray *slim_model_get_subgraphs (SlimModel *self, guint index);
void slim_subgraph_free (SlimSubgraph *subgraph);

G_END_DECLS
