/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-quant-model.h: running a quantized ascendv1 folder (written by
 * `slimflow quant`) with the saved quantization, so `slimflow eval` can
 * measure it against the float model.
 *
 * slim_quant_model_load() reads quant_model_description.json and the
 * quant_model_weights*.safetensors, dequantizes every quantized linear
 * per its label and writes a float model folder (config.json and the
 * tokenizer files copied, model.safetensors float32) in a temporary
 * directory that lives as long as the SlimQuantModel:
 *
 *   W8A8, W8A8_MIX  w = q * deq_scale / input_scale   (symmetric per channel)
 *   W8A8_DYNAMIC,
 *   W4A4_DYNAMIC,
 *   W8A16, W4A16    w = (q - weight_offset) * weight_scale  (per channel or group)
 *   W4A8_DYNAMIC    w = (q - weight_offset) * weight_scale, q unpacked from int4
 *   WFP8AFP8_DYNAMIC  w = e4m3 (q) * weight_scale
 *   W8A8_MXFP8, W4A8_MXFP, W4A4_MXFP4
 *                   w = element (q) * 2^(shared exponent - 127), blocks of 32
 *   W16A16S         w (and bias) as stored: the float_sparse weight
 *
 * Activations are fake-quantized by slim_quant_model_get_hooks() as the
 * deployed module does: W8A8 static per tensor with the saved
 * input_scale / input_offset, W8A8_DYNAMIC and W4A8_DYNAMIC per token
 * (symmetric int8), W4A4_DYNAMIC per token (symmetric int4), nothing for
 * the weight-only labels.  Other labels are refused with
 * SLIM_FORMAT_ERROR_INVALID.
 *
 * That is the float path (SLIM_LINEAR_MATH_FLOAT, slim_quant_model_load).
 * slim_quant_model_load_with_math (dir, SLIM_LINEAR_MATH_INT8) runs every
 * linear with int8 activations (W8A8, W8A8_MIX, W8A8_DYNAMIC, W4A8_DYNAMIC)
 * as the accelerator does instead (slim-int-linear.h): the hooks'
 * linear_forward quantizes the input to int8 codes, takes the exact int32
 * product with the saved int8 weight and scales it (deq_scale and
 * quant_bias for the static labels, the per-token scale times weight_scale
 * plus the float bias for the per-token ones).  The weight-only labels
 * keep their float product in both.
 * QuaRot's online rotations (quarot online: true) are the matrices of the
 * linears metadata.quarot lists (<o_proj>.heads_rotation,
 * <down_proj>.kronecker_rotation_m / _n, in the weight files without a
 * label, as msModelSlim saves them; slimflow's <down_proj>.hadamard_rotation
 * under metadata.quarot.hadamard_rotation); the hooks' linear_input rotates those
 * linears' inputs with them before the activation quantization, as the
 * deployed graph does (slim-online-rotation.h).  A matrix no listed
 * linear owns, or a listed one missing, is refused.
 * The attention tensors (C8 kv_cache_scale/offset, FAQuant fa_{q,k,v}
 * scales and the <attn>.quant_type strings) become SlimQAttention records
 * that the hooks' qkv_states applies as deployed (slim-qattention.h).
 *
 * The whole dequantized model is held in memory once while it is written
 * (fine for the models slimflow evaluates today).
 *
 * A compressed-tensors folder (config.json's quantization_config with
 * quant_method "compressed-tensors") of FP8 weights is read too: every
 * <linear>.weight float8_e4m3fn with its <linear>.weight_scale float32
 * (n_out, 1) becomes code * scale, with float activations
 * (naive-quantized, weight-only: WFP8A16) or dynamic per-token fp8
 * activations (float-quantized with input_activations type float,
 * strategy token, dynamic: WFP8AFP8_DYNAMIC); any other compressed-tensors
 * scheme (int, packed, static or grouped) is refused.
 */
#pragma once

#include <glib.h>
#include "slim-linear-math.h"
#include "slim-model.h"

G_BEGIN_DECLS

typedef struct _SlimQuantModel SlimQuantModel;

/* TRUE when dir holds quant_model_description.json, or a config.json with
 * a compressed-tensors quantization_config. */
gboolean slim_quant_model_is_quantized (const char *dir);

/**
 * slim_quant_model_load:
 * @dir: an ascendv1 folder
 * @error: return location for a GError
 *
 * Returns: (transfer full) (nullable): the loaded folder; NULL with
 *   @error set (SLIM_FORMAT_ERROR for a malformed description or
 *   tensors, G_FILE_ERROR for I/O).
 */
SlimQuantModel *slim_quant_model_load (const char *dir, GError **error);
/* The same with the given math for the linears with int8 activations
 * (slim_quant_model_load is SLIM_LINEAR_MATH_FLOAT); with INT8 an integer
 * weight the product cannot take (more than SLIM_IGEMM_MAX_K inputs, codes
 * outside int8) is an error, never a silent float fallback. */
SlimQuantModel *
slim_quant_model_load_with_math (const char *dir, SlimLinearMath math, GError **error);
SlimLinearMath slim_quant_model_get_linear_math (SlimQuantModel *self);
/* Number of linears run as integer products (0 for the float math). */
guint slim_quant_model_get_n_integer (SlimQuantModel *self);

/* The dequantized float folder, for slim_model_open() (transfer none). */
const char *slim_quant_model_get_float_dir (SlimQuantModel *self);

/* Number of quantized linears found. */
guint slim_quant_model_get_n_quantized (SlimQuantModel *self);

/* Hooks fake-quantizing the activations, and computing the integer
 * products (user_data = self, which must outlive every forward using
 * them). */
void slim_quant_model_get_hooks (SlimQuantModel *self, SlimForwardHooks *hooks);

/* Removes the temporary folder and frees. */
void slim_quant_model_free (SlimQuantModel *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimQuantModel, slim_quant_model_free)

G_END_DECLS
