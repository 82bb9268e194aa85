/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-llama.h: a Hugging Face Llama (or Qwen2) model as llama.cpp's
 * "llama" (or "qwen2") architecture in GGUF (the names and metadata of
 * gguf-py's constants, the q/k row order of convert_hf_to_gguf.py; written
 * from their description).
 *
 * qwen2 is the same layout with its own key prefix ("qwen2.*" for the
 * "llama.*" keys below), q/k/v biases (attn_{q,k,v}.bias, which llama.cpp
 * requires for it) and no q/k row reordering: llama.cpp runs qwen2 with
 * NEOX-style RoPE, HF's rotate-half order.
 *
 * Metadata (set by slim_gguf_llama_new): general.architecture "llama",
 * general.name, general.quantization_version 2, llama.vocab_size,
 * llama.context_length, llama.embedding_length, llama.block_count,
 * llama.feed_forward_length, llama.attention.head_count(_kv),
 * llama.attention.key_length / value_length, llama.rope.dimension_count,
 * llama.rope.freq_base, llama.attention.layer_norm_rms_epsilon
 * (llama.rope.scaling.type / factor for linear RoPE scaling); at finish
 * general.file_type (the ggml type of most quantized linears).
 *
 * Tensors (ne innermost first, so a (rows, cols) weight is {cols, rows}):
 *
 *   model.embed_tokens.weight                  token_embd.weight
 *   model.layers.N.input_layernorm.weight      blk.N.attn_norm.weight
 *   model.layers.N.self_attn.{q,k,v,o}_proj.*  blk.N.attn_{q,k,v,output}.*
 *   model.layers.N.post_attention_layernorm.*  blk.N.ffn_norm.weight
 *   model.layers.N.mlp.{gate,up,down}_proj.*   blk.N.ffn_{gate,up,down}.*
 *   model.norm.weight                          output_norm.weight
 *   lm_head.weight                             output.weight (left out when
 *                                              tied to the embedding and
 *                                              not quantized: llama.cpp then
 *                                              uses token_embd)
 *
 * q_proj and k_proj rows (weights, scales, biases) are reordered from
 * Hugging Face's rotate-half RoPE layout to llama.cpp's interleaved pairs:
 * within each head of d rows, GGUF row 2i + j holds HF row j * d/2 + i
 * (convert_hf_to_gguf.py's LlamaModel.permute).  Rows are permuted whole,
 * so quantized blocks move unchanged.
 *
 * A linear with a SlimQLinear record is written from the quantizer's own
 * integers and scales (slim-gguf-blocks.h):
 *   int8 per_group 32 symmetric    Q8_0
 *   int4 per_group 32 symmetric    Q4_0
 *   int4 per_group 32 asymmetric   Q4_1
 * Any other scheme, and any activation quantization, is an error naming
 * the linear.  Everything else is written as F32 (2-D tensors as F16 when
 * float_type is F16; norms always F32), except that with a linear_type of
 * Q4_K / Q6_K the decoder linears left float are requantized to it.
 */
#pragma once

#include <glib.h>
#include "slim-gguf-writer.h"
#include "slim-layer.h"
#include "slim-model-config.h"
#include "slim-tokenizer.h"

G_BEGIN_DECLS

typedef struct _SlimGgufLlama SlimGgufLlama;

/* Checks that config is a model llama.cpp's llama or qwen2 architecture
 * runs (model_type "llama" or "qwen2", dense, no q/k norm, no sliding
 * window, RoPE unscaled or linear, no qwen2 o_proj bias) and sets the metadata and (tokenizer not
 * NULL) the tokenizer.ggml.* keys.  float_type: SLIM_GGML_TYPE_F32 or _F16. */
SlimGgufLlama *slim_gguf_llama_new (SlimGgufWriter *writer, /* transfer none, outlives it */
                                    const SlimModelConfig *config,
                                    SlimTokenizer *tokenizer, /* nullable */
                                    const char *name,
                                    SlimGgmlType float_type,
                                    GError **error);
void slim_gguf_llama_free (SlimGgufLlama *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimGgufLlama, slim_gguf_llama_free)

/* Q4_K / Q6_K: the decoder linears written from float weights (those
 * without a quantization record) are requantized by the saver to that type
 * (slim-gguf-kquants.h), and one whose input features are not a multiple
 * of 256 is an error naming it; F32 / F16 (the default is float_type):
 * written as float. */
void slim_gguf_llama_set_linear_type (SlimGgufLlama *self, SlimGgmlType type);

/* Writes every tensor of a processed layer (embeddings, decoder layer or
 * head); fails for a tensor with no GGUF name, a quantization scheme
 * GGUF cannot hold or attention (KV-cache / FA3) quantization. */
gboolean slim_gguf_llama_write_layer (SlimGgufLlama *self, SlimLayer *layer, GError **error);

/* Sets general.file_type (call before slim_gguf_writer_finish). */
void slim_gguf_llama_finish (SlimGgufLlama *self);

/* The GGUF name of a Hugging Face tensor name, NULL when it has none. */
char *slim_gguf_llama_tensor_name (const char *hf_name);

/* HF row of GGUF row r of a q/k weight of n_rows rows in n_heads heads. */
gint64 slim_gguf_llama_permuted_row (gint64 r, gint64 n_rows, gint64 n_heads);

G_END_DECLS
