/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-gguf-llama.c: Llama models as GGUF (see the header).
 */
#include "slim-gguf-llama.h"

#include "slim-gguf-kquants.h"

#include <string.h>

#include "slim-error.h"
#include "slim-online-rotation.h"
#include "slim-gguf-blocks.h"
#include "slim-gguf-vocab.h"
#include "slim-qattention.h"
#include "slim-qlinear.h"
#include "slim-tensor.h"

/* llama_ftype values of general.file_type (llama.h). */
#define SLIM_LLAMA_FTYPE_ALL_F32 0
#define SLIM_LLAMA_FTYPE_MOSTLY_F16 1
#define SLIM_LLAMA_FTYPE_MOSTLY_Q4_0 2
#define SLIM_LLAMA_FTYPE_MOSTLY_Q4_1 3
#define SLIM_LLAMA_FTYPE_MOSTLY_Q8_0 7
#define SLIM_LLAMA_FTYPE_MOSTLY_Q4_K_S 14
#define SLIM_LLAMA_FTYPE_MOSTLY_Q6_K 18

struct _SlimGgufLlama
{
  SlimGgufWriter *writer; /* not owned */
  gboolean rope_permute;  /* llama: q/k rows to llama.cpp's interleaved pairs */
  gint64 n_heads;
  gint64 n_kv_heads;
  gboolean tied;
  SlimGgmlType float_type;
  SlimGgmlType linear_type; /* float linears: float_type, or Q4_K / Q6_K */
};

/* Decoder-layer tensors: the name after "model.layers.N." -> after "blk.N.". */
static const struct
{
  const char *hf;
  const char *gguf;
} slim_gguf_llama_layer_names[] = {
  { "input_layernorm.weight", "attn_norm.weight" },
  { "self_attn.q_proj.weight", "attn_q.weight" },
  { "self_attn.q_proj.bias", "attn_q.bias" },
  { "self_attn.k_proj.weight", "attn_k.weight" },
  { "self_attn.k_proj.bias", "attn_k.bias" },
  { "self_attn.v_proj.weight", "attn_v.weight" },
  { "self_attn.v_proj.bias", "attn_v.bias" },
  { "self_attn.o_proj.weight", "attn_output.weight" },
  { "self_attn.o_proj.bias", "attn_output.bias" },
  { "post_attention_layernorm.weight", "ffn_norm.weight" },
  { "mlp.gate_proj.weight", "ffn_gate.weight" },
  { "mlp.gate_proj.bias", "ffn_gate.bias" },
  { "mlp.up_proj.weight", "ffn_up.weight" },
  { "mlp.up_proj.bias", "ffn_up.bias" },
  { "mlp.down_proj.weight", "ffn_down.weight" },
  { "mlp.down_proj.bias", "ffn_down.bias" },
};

/**
 * slim_gguf_llama_tensor_name:
 * @hf_name: a Hugging Face tensor name
 *
 * Returns: (transfer full) (nullable): its GGUF name, %NULL when the llama
 *   architecture has no such tensor
 */
char *
slim_gguf_llama_tensor_name (const char *hf_name)
{
  const char *rest;
  char *end;
  guint64 layer;

  g_return_val_if_fail (hf_name != NULL, NULL);
  if (strcmp (hf_name, "model.embed_tokens.weight") == 0)
    return g_strdup ("token_embd.weight");
  if (strcmp (hf_name, "model.norm.weight") == 0)
    return g_strdup ("output_norm.weight");
  if (strcmp (hf_name, "lm_head.weight") == 0)
    return g_strdup ("output.weight");
  if (!g_str_has_prefix (hf_name, "model.layers."))
    return NULL;
  rest = hf_name + strlen ("model.layers.");
  if (!g_ascii_isdigit (rest[0]))
    return NULL;
  layer = g_ascii_strtoull (rest, &end, 10);
  if (*end != '.' || layer > G_MAXINT32)
    return NULL;
  for (gsize k = 0; k < G_N_ELEMENTS (slim_gguf_llama_layer_names); k++)
    if (strcmp (end + 1, slim_gguf_llama_layer_names[k].hf) == 0)
      return g_strdup_printf ("blk.%" G_GUINT64_FORMAT ".%s", layer,
                              slim_gguf_llama_layer_names[k].gguf);
  return NULL;
}

/**
 * slim_gguf_llama_permuted_row:
 * @r: a row of the GGUF tensor
 * @n_rows: rows of the q or k weight (n_heads * head_dim)
 * @n_heads: its heads (attention heads for q, key/value heads for k)
 *
 * Returns: the Hugging Face row GGUF row @r holds
 */
gint64
slim_gguf_llama_permuted_row (gint64 r, gint64 n_rows, gint64 n_heads)
{
  gint64 d = n_rows / n_heads; /* head_dim */
  gint64 h = r / d, within = r % d;
  gint64 i = within / 2, j = within % 2;

  return h * d + j * (d / 2) + i;
}

/**
 * slim_gguf_llama_new:
 * @writer: the file (must outlive the returned object)
 * @config: the model's config.json
 * @tokenizer: (nullable): its tokenizer, embedded when given
 * @name: general.name
 * @float_type: F32 or F16, for 2-D float tensors
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the writer of the model's layers,
 *   %NULL when llama.cpp's llama / qwen2 architectures cannot express the
 *   model
 */
SlimGgufLlama *
slim_gguf_llama_new (SlimGgufWriter *writer,
                     const SlimModelConfig *config,
                     SlimTokenizer *tokenizer,
                     const char *name,
                     SlimGgmlType float_type,
                     GError **error)
{
  SlimGgufLlama *self;
  const char *why = NULL;
  gboolean qwen2 = g_strcmp0 (config->model_type, "qwen2") == 0;
  const char *arch = qwen2 ? "qwen2" : "llama";
  char key[96];

  g_return_val_if_fail (writer != NULL && config != NULL && name != NULL, NULL);
  g_return_val_if_fail (float_type == SLIM_GGML_TYPE_F32 || float_type == SLIM_GGML_TYPE_F16, NULL);

  if (g_strcmp0 (config->model_type, "llama") != 0 && g_strcmp0 (config->model_type, "qwen2") != 0)
    why = "only model_type \"llama\" and \"qwen2\" are written (llama.cpp architectures "
          "\"llama\" and \"qwen2\")";
  else if (config->n_experts > 0)
    why = "mixture-of-experts layers are not supported";
  else if (config->qk_norm)
    why = "q/k norms are not supported";
  else if (config->sliding_window > 0)
    why = "sliding-window attention is not supported";
  else if (config->rope_scaling_type == SLIM_ROPE_SCALING_LLAMA3)
    why = "llama3 RoPE scaling (rope_freqs) is not supported";
  else if (config->n_heads <= 0 || config->n_kv_heads <= 0 || config->head_dim <= 0
           || config->head_dim % 2 != 0)
    why = "the attention shape is not usable";
  else if (qwen2 && config->o_proj_bias)
    why = "an o_proj bias is not part of llama.cpp's qwen2 architecture";
  if (why != NULL)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "gguf_saver: model_type \"%s\": %s", config->model_type, why);
      return NULL;
    }

    /* the architecture's own keys are prefixed with its name */
#define KEY(suffix) (g_snprintf (key, sizeof key, "%s." suffix, arch), key)
  slim_gguf_writer_set_string (writer, "general.architecture", arch);
  slim_gguf_writer_set_string (writer, "general.name", name);
  slim_gguf_writer_set_u32 (writer, "general.alignment", SLIM_GGUF_ALIGNMENT);
  slim_gguf_writer_set_u32 (writer, "general.quantization_version", 2);
  slim_gguf_writer_set_u32 (writer, KEY ("vocab_size"), (guint32)config->vocab_size);
  slim_gguf_writer_set_u32 (writer, KEY ("context_length"),
                            (guint32)config->max_position_embeddings);
  slim_gguf_writer_set_u32 (writer, KEY ("embedding_length"), (guint32)config->hidden_size);
  slim_gguf_writer_set_u32 (writer, KEY ("block_count"), (guint32)config->n_layers);
  slim_gguf_writer_set_u32 (writer, KEY ("feed_forward_length"),
                            (guint32)config->intermediate_size);
  slim_gguf_writer_set_u32 (writer, KEY ("attention.head_count"), (guint32)config->n_heads);
  slim_gguf_writer_set_u32 (writer, KEY ("attention.head_count_kv"), (guint32)config->n_kv_heads);
  slim_gguf_writer_set_u32 (writer, KEY ("attention.key_length"), (guint32)config->head_dim);
  slim_gguf_writer_set_u32 (writer, KEY ("attention.value_length"), (guint32)config->head_dim);
  slim_gguf_writer_set_u32 (writer, KEY ("rope.dimension_count"), (guint32)config->head_dim);
  slim_gguf_writer_set_f32 (writer, KEY ("rope.freq_base"), (float)config->rope_theta);
  slim_gguf_writer_set_f32 (writer, KEY ("attention.layer_norm_rms_epsilon"),
                            (float)config->rms_norm_eps);
  if (config->rope_scaling_type == SLIM_ROPE_SCALING_LINEAR)
    {
      slim_gguf_writer_set_string (writer, KEY ("rope.scaling.type"), "linear");
      slim_gguf_writer_set_f32 (writer, KEY ("rope.scaling.factor"),
                                (float)config->rope_scaling_factor);
    }
#undef KEY
  if (tokenizer != NULL && !slim_gguf_vocab_set (writer, tokenizer, config->vocab_size, error))
    return NULL;

  self = g_new0 (SlimGgufLlama, 1);
  self->writer = writer;
  /* HF llama's rotate-half q/k rows become llama.cpp's interleaved pairs;
   * qwen2 runs NEOX-style RoPE in llama.cpp, the HF row order */
  self->rope_permute = !qwen2;
  self->n_heads = config->n_heads;
  self->n_kv_heads = config->n_kv_heads;
  self->tied = config->tie_word_embeddings;
  self->float_type = float_type;
  self->linear_type = float_type;
  return self;
}

/**
 * slim_gguf_llama_set_linear_type:
 * @self: the model writer
 * @type: Q4_K or Q6_K: the linears written from float weights are
 *   quantized to it; F32 / F16: as the other 2-D float tensors
 */
void
slim_gguf_llama_set_linear_type (SlimGgufLlama *self, SlimGgmlType type)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (type == SLIM_GGML_TYPE_F32 || type == SLIM_GGML_TYPE_F16
                    || type == SLIM_GGML_TYPE_Q4_K || type == SLIM_GGML_TYPE_Q6_K);
  self->linear_type = type;
}

void
slim_gguf_llama_free (SlimGgufLlama *self)
{
  g_free (self);
}

/* Heads of a q_proj / k_proj weight or bias (its rows are permuted), 0
 * for every other tensor. */
static gint64
slim_gguf_llama_rope_heads (SlimGgufLlama *self, const char *hf_name)
{
  if (!self->rope_permute)
    return 0;
  if (g_str_has_suffix (hf_name, ".self_attn.q_proj.weight")
      || g_str_has_suffix (hf_name, ".self_attn.q_proj.bias"))
    return self->n_heads;
  if (g_str_has_suffix (hf_name, ".self_attn.k_proj.weight")
      || g_str_has_suffix (hf_name, ".self_attn.k_proj.bias"))
    return self->n_kv_heads;
  return 0;
}

/* The HF row of GGUF row r (rope_heads 0: the same row). */
static gint64
slim_gguf_llama_source_row (gint64 r, gint64 n_rows, gint64 rope_heads)
{
  return rope_heads > 0 ? slim_gguf_llama_permuted_row (r, n_rows, rope_heads) : r;
}

static char *
slim_gguf_llama_require_name (const char *hf_name, GError **error)
{
  char *name = slim_gguf_llama_tensor_name (hf_name);

  if (name == NULL)
    g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                 "gguf_saver: tensor %s has no place in llama.cpp's llama / qwen2 architectures",
                 hf_name);
  return name;
}

/* A float tensor (1-D or 2-D) as F32, or F16 for 2-D with float_type F16. */
static gboolean
slim_gguf_llama_write_float (SlimGgufLlama *self, SlimTensor *tensor, GError **error)
{
  const char *hf_name = slim_tensor_get_name (tensor);
  g_autofree char *name = slim_gguf_llama_require_name (hf_name, error);
  g_autoptr (SlimTensor) f32 = NULL;
  guint n_dims = slim_tensor_get_n_dims (tensor);
  gint64 n_rows, n_cols, rope_heads;
  SlimGgmlType type;
  guint64 ne[2];
  const float *data;
  g_autofree guint16 *half = NULL;  /* (n_cols) */
  g_autofree guint8 *blocks = NULL; /* (n_cols / 256 super-blocks) */

  if (name == NULL)
    return FALSE;
  if (n_dims != 1 && n_dims != 2)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "gguf_saver: tensor %s has %u dims (1 or 2 expected)", hf_name, n_dims);
      return FALSE;
    }
  f32 = slim_tensor_to_f32 (tensor, error);
  if (f32 == NULL)
    return FALSE;
  if (!slim_tensor_is_finite (f32))
    {
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE,
                   "gguf_saver: tensor %s has non-finite values", hf_name);
      return FALSE;
    }
  /* a 1-D tensor is one column of rows (so q/k biases permute as rows) */
  n_rows = slim_tensor_get_dim (f32, 0);
  n_cols = n_dims == 2 ? slim_tensor_get_dim (f32, 1) : 1;
  type = n_dims == 2 ? self->float_type : SLIM_GGML_TYPE_F32;
  if (n_dims == 2 && g_str_has_prefix (name, "blk.")
      && (self->linear_type == SLIM_GGML_TYPE_Q4_K || self->linear_type == SLIM_GGML_TYPE_Q6_K))
    {
      /* a decoder linear (blk.N.attn_* / ffn_*): requantized from its
       * float weights, row by row in super-blocks of 256 */
      type = self->linear_type;
      if (n_cols % SLIM_GGUF_QK_K != 0)
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "gguf_saver: %s has %" G_GINT64_FORMAT
                       " input features, not a multiple of %s's super-block of 256 (leave "
                       "linear_type float, or use a model whose linear inputs are multiples of "
                       "256)",
                       hf_name, n_cols, slim_ggml_type_name (type));
          return FALSE;
        }
    }
  rope_heads = slim_gguf_llama_rope_heads (self, hf_name);
  if (rope_heads > 0 && n_rows % (2 * rope_heads) != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "gguf_saver: %s has %" G_GINT64_FORMAT " rows, not %" G_GINT64_FORMAT
                   " heads of an even size",
                   hf_name, n_rows, rope_heads);
      return FALSE;
    }
  if (n_dims == 2)
    {
      ne[0] = (guint64)n_cols;
      ne[1] = (guint64)n_rows;
    }
  else
    ne[0] = (guint64)n_rows;
  if (!slim_gguf_writer_begin_tensor (self->writer, name, type, n_dims, ne, error))
    return FALSE;
  data = slim_tensor_get_data (f32); /* [n_rows, n_cols] */
  if (type == SLIM_GGML_TYPE_F16)
    half = g_new (guint16, n_cols);
  if (type == SLIM_GGML_TYPE_Q4_K || type == SLIM_GGML_TYPE_Q6_K)
    blocks = g_malloc ((gsize)slim_ggml_row_bytes (type, (guint64)n_cols));
  for (gint64 r = 0; r < n_rows; r++)
    {
      const float *row = data + slim_gguf_llama_source_row (r, n_rows, rope_heads) * n_cols;
      gboolean ok;

      if (blocks != NULL)
        {
          gsize block_bytes
              = type == SLIM_GGML_TYPE_Q4_K ? SLIM_GGUF_Q4_K_BYTES : SLIM_GGUF_Q6_K_BYTES;

          for (gint64 b = 0; b < n_cols / SLIM_GGUF_QK_K; b++)
            {
              if (type == SLIM_GGML_TYPE_Q4_K)
                slim_gguf_q4_k_encode (row + b * SLIM_GGUF_QK_K, blocks + b * block_bytes);
              else
                slim_gguf_q6_k_encode (row + b * SLIM_GGUF_QK_K, blocks + b * block_bytes);
            }
          ok = slim_gguf_writer_append (self->writer, blocks,
                                        (gsize)slim_ggml_row_bytes (type, (guint64)n_cols), error);
        }
      else if (half != NULL)
        {
          for (gint64 c = 0; c < n_cols; c++)
            half[c] = GUINT16_TO_LE (slim_f32_to_f16 (row[c]));
          ok = slim_gguf_writer_append (self->writer, half, (gsize)n_cols * 2, error);
        }
      else
        ok = slim_gguf_writer_append (self->writer, row, (gsize)n_cols * 4, error);
      if (!ok)
        return FALSE;
    }
  return TRUE;
}

/* The ggml type of a quantized linear, or FALSE with an error naming it. */
static gboolean
slim_gguf_llama_qtype (const SlimQLinear *q, SlimGgmlType *type, GError **error)
{
  g_autofree char *scheme = slim_qscheme_to_string (&q->weight);
  const char *valid = "GGUF holds int8 per_group group_size 32 symmetric (Q8_0) and int4 "
                      "per_group group_size 32 symmetric (Q4_0) or asymmetric (Q4_1) weights";

  if (strcmp (q->label, "NF4") == 0)
    {
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s (NF4): NF4 code-book weights have no GGUF type (save them with the "
                   "bitsandbytes saver); %s",
                   q->module, valid);
      return FALSE;
    }
  if (q->act.dtype != SLIM_QDTYPE_FLOAT)
    {
      g_autofree char *act = slim_qscheme_to_string (&q->act);
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s (%s): activations quantized %s cannot be saved by gguf_saver: llama.cpp "
                   "runs weight-only types; use a weight-only scheme (W8A16 / W4A16, "
                   "per_group, group_size 32)",
                   q->module, q->label, act);
      return FALSE;
    }
  if (q->weight.scope != SLIM_QSCOPE_PER_GROUP || q->group_size != SLIM_GGUF_BLOCK
      || (q->weight.dtype != SLIM_QDTYPE_INT8 && q->weight.dtype != SLIM_QDTYPE_INT4)
      || (q->weight.dtype == SLIM_QDTYPE_INT8 && !q->weight.symmetric))
    {
      if (q->weight.scope == SLIM_QSCOPE_PER_GROUP)
        g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                     "%s (%s): weights %s with group_size %" G_GINT64_FORMAT
                     " have no GGUF type; %s",
                     q->module, q->label, scheme, q->group_size, valid);
      else
        g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                     "%s (%s): weights %s have no GGUF type; %s", q->module, q->label, scheme,
                     valid);
      return FALSE;
    }
  if (q->weight.dtype == SLIM_QDTYPE_INT8)
    *type = SLIM_GGML_TYPE_Q8_0;
  else
    *type = q->weight.symmetric ? SLIM_GGML_TYPE_Q4_0 : SLIM_GGML_TYPE_Q4_1;
  return TRUE;
}

static gboolean
slim_gguf_llama_check_f32 (
    const SlimQLinear *q, SlimTensor *t, const char *what, gint64 n_cols, GError **error)
{
  if (t == NULL || slim_tensor_get_dtype (t) != SLIM_DTYPE_F32
      || slim_tensor_get_n_elements (t) != q->n_out * n_cols || !slim_tensor_is_finite (t))
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): %s must be finite float32 with %" G_GINT64_FORMAT
                   " x %" G_GINT64_FORMAT " elements",
                   q->module, q->label, what, q->n_out, n_cols);
      return FALSE;
    }
  return TRUE;
}

/* A linear with a deployed record, as Q8_0 / Q4_0 / Q4_1 blocks. */
static gboolean
slim_gguf_llama_write_qlinear (SlimGgufLlama *self, const SlimQLinear *q, GError **error)
{
  g_autofree char *hf_name = g_strconcat (q->module, ".weight", NULL);
  g_autofree char *name = NULL;
  g_autofree guint8 *row_bytes = NULL; /* (n_in / 32 blocks) */
  SlimGgmlType type;
  gint64 n_groups, rope_heads;
  guint64 ne[2], block_bytes;
  const gint8 *w;
  const float *scale, *offset;

  if (!slim_gguf_llama_qtype (q, &type, error))
    return FALSE;
  name = slim_gguf_llama_require_name (hf_name, error);
  if (name == NULL)
    return FALSE;
  if (q->n_out <= 0 || q->n_in <= 0 || q->n_in % SLIM_GGUF_BLOCK != 0 || q->weight_q == NULL
      || slim_tensor_get_dtype (q->weight_q) != SLIM_DTYPE_I8
      || slim_tensor_get_n_elements (q->weight_q) != q->n_out * q->n_in)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s (%s): the quantized weight must be int8 (%" G_GINT64_FORMAT
                   ", %" G_GINT64_FORMAT ") with input features a multiple of 32",
                   q->module, q->label, q->n_out, q->n_in);
      return FALSE;
    }
  n_groups = q->n_in / SLIM_GGUF_BLOCK;
  if (!slim_gguf_llama_check_f32 (q, q->weight_scale, "weight_scale", n_groups, error)
      || !slim_gguf_llama_check_f32 (q, q->weight_offset, "weight_offset", n_groups, error))
    return FALSE;
  rope_heads = slim_gguf_llama_rope_heads (self, hf_name);
  if (rope_heads > 0 && q->n_out % (2 * rope_heads) != 0)
    {
      g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_SHAPE,
                   "%s: %" G_GINT64_FORMAT " rows are not %" G_GINT64_FORMAT
                   " heads of an even size",
                   q->module, q->n_out, rope_heads);
      return FALSE;
    }
  ne[0] = (guint64)q->n_in;
  ne[1] = (guint64)q->n_out;
  if (!slim_gguf_writer_begin_tensor (self->writer, name, type, 2, ne, error))
    return FALSE;
  block_bytes = slim_ggml_row_bytes (type, SLIM_GGUF_BLOCK);
  row_bytes = g_malloc ((gsize)(n_groups * block_bytes));
  w = slim_tensor_get_data (q->weight_q);           /* [n_out, n_in] */
  scale = slim_tensor_get_data (q->weight_scale);   /* [n_out, n_groups] */
  offset = slim_tensor_get_data (q->weight_offset); /* [n_out, n_groups] */
  for (gint64 r = 0; r < q->n_out; r++)
    {
      gint64 src = slim_gguf_llama_source_row (r, q->n_out, rope_heads);

      for (gint64 g = 0; g < n_groups; g++)
        {
          const gint8 *codes = w + src * q->n_in + g * SLIM_GGUF_BLOCK;
          float s = scale[src * n_groups + g], o = offset[src * n_groups + g];
          guint8 *out = row_bytes + g * block_bytes;
          gboolean ok;

          if (type != SLIM_GGML_TYPE_Q4_1 && o != 0.0f)
            {
              g_set_error (
                  error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                  "%s (%s): symmetric weights with a non-zero offset (row %" G_GINT64_FORMAT
                  ", group %" G_GINT64_FORMAT ")",
                  q->module, q->label, src, g);
              return FALSE;
            }
          if (type == SLIM_GGML_TYPE_Q8_0)
            ok = slim_gguf_q8_0_pack (codes, s, out);
          else if (type == SLIM_GGML_TYPE_Q4_0)
            ok = slim_gguf_q4_0_pack (codes, s, out);
          else
            ok = slim_gguf_q4_1_pack (codes, s, o, out);
          if (!ok)
            {
              g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH,
                           "%s (%s): int4 codes outside [-8, 7] (row %" G_GINT64_FORMAT
                           ", group %" G_GINT64_FORMAT ")",
                           q->module, q->label, src, g);
              return FALSE;
            }
        }
      if (!slim_gguf_writer_append (self->writer, row_bytes, (gsize)(n_groups * block_bytes),
                                    error))
        return FALSE;
    }
  return TRUE;
}

/* The module of a ".weight" tensor name, else NULL. */
static char *
slim_gguf_llama_weight_module (const char *name)
{
  if (g_str_has_suffix (name, ".weight") && strlen (name) > strlen (".weight"))
    return g_strndup (name, strlen (name) - strlen (".weight"));
  return NULL;
}

/* W16A16S (float_sparse) keeps a float weight: written as such. */
static gboolean
slim_gguf_llama_is_float_record (const SlimQLinear *q)
{
  return strcmp (q->label, "W16A16S") == 0;
}

/**
 * slim_gguf_llama_write_layer:
 * @self: a llama writer
 * @layer: a processed layer
 * @error: return location for a #GError
 *
 * Returns: %TRUE when all its tensors are written
 */
gboolean
slim_gguf_llama_write_layer (SlimGgufLlama *self, SlimLayer *layer, GError **error)
{
  g_autoptr (GHashTable) written = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) records = NULL;
  g_autoptr (GPtrArray) attentions = NULL;

  g_return_val_if_fail (self != NULL && SLIM_IS_LAYER (layer), FALSE);

  attentions = slim_layer_list_qattentions (layer);
  if (attentions->len > 0)
    {
      const SlimQAttention *r = g_ptr_array_index (attentions, 0);
      g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                   "%s: KV-cache (C8) and FA3 (FAQuant) quantization cannot be saved by "
                   "gguf_saver; use ascendv1_saver",
                   r->attn);
      return FALSE;
    }
  for (guint i = 0; i < slim_layer_get_n_tensors (layer); i++)
    {
      SlimTensor *tensor = slim_layer_get_tensor_at (layer, i);
      const char *name = slim_tensor_get_name (tensor);
      g_autofree char *module = slim_gguf_llama_weight_module (name);

      /* QuaRot: the global rotation is extra information only; an online
       * rotation is part of the model the format cannot express */
      if (g_str_has_suffix (name, SLIM_QUAROT_GLOBAL_ROTATION))
        continue;
      if (slim_online_rotation_is_online_name (name))
        {
          g_set_error (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE,
                       "%s: QuaRot online rotations cannot be saved by gguf_saver; use "
                       "ascendv1_saver (or quarot online: false)",
                       name);
          return FALSE;
        }
      const SlimQLinear *q = module != NULL ? slim_layer_get_qlinear (layer, module) : NULL;

      if (q != NULL && !slim_gguf_llama_is_float_record (q))
        {
          if (!slim_gguf_llama_write_qlinear (self, q, error))
            return FALSE;
          g_hash_table_add (written, q->module);
          continue;
        }
      /* a tied lm_head is the embedding: llama.cpp falls back to token_embd */
      if (slim_layer_get_index (layer) == SLIM_LAYER_INDEX_HEAD && self->tied
          && strcmp (name, "lm_head.weight") == 0)
        continue;
      if (!slim_gguf_llama_write_float (self, tensor, error))
        return FALSE;
      if (q != NULL)
        g_hash_table_add (written, q->module);
    }
  /* records whose weight is not among the layer's tensors */
  records = slim_layer_list_qlinears (layer);
  for (guint i = 0; i < records->len; i++)
    {
      const SlimQLinear *q = g_ptr_array_index (records, i);

      if (g_hash_table_contains (written, q->module))
        continue;
      if (slim_gguf_llama_is_float_record (q))
        {
          g_set_error (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_MISSING_TENSOR,
                       "%s (W16A16S): its weight is not in the layer", q->module);
          return FALSE;
        }
      if (!slim_gguf_llama_write_qlinear (self, q, error))
        return FALSE;
    }
  return TRUE;
}

/**
 * slim_gguf_llama_finish:
 * @self: a llama writer
 *
 * Sets general.file_type: the type most quantized linears got (ties in the
 * order Q8_0, Q4_1, Q4_0, Q4_K, Q6_K; Q4_K is file type Q4_K_S), else F32 or
 * F16 by float_type.
 */
void
slim_gguf_llama_finish (SlimGgufLlama *self)
{
  guint64 n_q8_0, n_q4_0, n_q4_1, n_q4_k, n_q6_k, most;
  guint32 ftype;

  g_return_if_fail (self != NULL);
  /* only quantized linears get Q types: the writer's counts are theirs
   * (and survive a resume) */
  n_q8_0 = slim_gguf_writer_count_type (self->writer, SLIM_GGML_TYPE_Q8_0);
  n_q4_0 = slim_gguf_writer_count_type (self->writer, SLIM_GGML_TYPE_Q4_0);
  n_q4_1 = slim_gguf_writer_count_type (self->writer, SLIM_GGML_TYPE_Q4_1);
  n_q4_k = slim_gguf_writer_count_type (self->writer, SLIM_GGML_TYPE_Q4_K);
  n_q6_k = slim_gguf_writer_count_type (self->writer, SLIM_GGML_TYPE_Q6_K);
  most = MAX (MAX (MAX (n_q8_0, n_q4_0), MAX (n_q4_1, n_q4_k)), n_q6_k);
  if (most == 0)
    ftype = self->float_type == SLIM_GGML_TYPE_F16 ? SLIM_LLAMA_FTYPE_MOSTLY_F16
                                                   : SLIM_LLAMA_FTYPE_ALL_F32;
  else if (n_q8_0 == most)
    ftype = SLIM_LLAMA_FTYPE_MOSTLY_Q8_0;
  else if (n_q4_1 == most)
    ftype = SLIM_LLAMA_FTYPE_MOSTLY_Q4_1;
  else if (n_q4_0 == most)
    ftype = SLIM_LLAMA_FTYPE_MOSTLY_Q4_0;
  else if (n_q4_k == most)
    ftype = SLIM_LLAMA_FTYPE_MOSTLY_Q4_K_S;
  else
    ftype = SLIM_LLAMA_FTYPE_MOSTLY_Q6_K;
  if (!slim_gguf_writer_has_key (self->writer, "general.file_type"))
    slim_gguf_writer_set_u32 (self->writer, "general.file_type", ftype);
}
