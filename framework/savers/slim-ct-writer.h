/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ct-writer.h: vLLM's compressed-tensors output folder, written by
 * the compressed_tensors saver plugin (peers.md 1.5, peers-2026-12.md 5;
 * compressed-tensors compressors/{int_quantized,pack_quantized};
 * msModelSlim format/compressed_tensors_format/compressed_tensors.py).
 *
 * Files written into out_dir:
 *   model.safetensors                          (shard_bytes 0), or
 *   model-0000i-of-0000N.safetensors + model.safetensors.index.json
 *   config.json                                the model's, with
 *                                              quantization_config set
 *                                              (Python json.dump indent 2)
 *   *.json, *.py, *.txt, *.jinja of the model  except *index.json, mode 0600
 *
 * A layer is written in its tensor insertion order; a linear with a
 * SlimQLinear record becomes, at the position of its weight (bias, when
 * the linear has one, after it, in its source dtype):
 *
 *   int-quantized (int8 weights, int8 activations: W8A8, W8A8_DYNAMIC)
 *     X.weight              int8  (out, in)
 *     X.weight_scale        f32   (out, 1) per channel, (out, in / gs) per
 *                                 group, (1) per tensor
 *     X.weight_zero_point   int8  as weight_scale, asymmetric weights only
 *     X.input_scale         f32   (1)  static (per_tensor) activations
 *     X.input_zero_point    int8  (1)  static asymmetric activations
 *   float-quantized (fp8 weights, fp8 dynamic per-token activations:
 *   WFP8AFP8_DYNAMIC, compressed-tensors' FP8_DYNAMIC preset)
 *     X.weight              float8_e4m3fn (out, in): slimflow's codes
 *     X.weight_scale        f32   (out, 1) per channel
 *   naive-quantized (weight-only fp8: W8A16 with fp8_e4m3 weights)
 *     X.weight, X.weight_scale as float-quantized
 *   pack-quantized (weight-only int8 / int4: W8A16, W4A16)
 *     X.weight_packed       int32 (out, ceil (in * b / 32)): codes q + 2^(b-1),
 *                                 a dense little-endian bit stream per row
 *                                 (slim-ct-pack.h)
 *     X.weight_scale        f32   as above
 *     X.weight_zero_point   int32 (ceil (out * b / 32), in / gs or 1), the
 *                                 zero points packed along dim 0 (per
 *                                 channel / group), int8 (1) per tensor;
 *                                 asymmetric weights only
 *     X.weight_shape        int64 (2) = (out, in)
 *
 * Dequantization is (q - zero_point) * scale (q the fp8 code's value for
 * float weights), slimflow's own (q - offset)
 * * scale, so the saved values give back the weights slimflow deployed bit
 * for bit.  Scales are float32 whatever the model dtype (rounding them to
 * bf16 would change the deployed weights); the quantization args say so in
 * scale_dtype ("torch.float32") when the model is not float32, and vLLM
 * casts them when it loads them.
 *
 * Everything else (embeddings, norms, float linears, W16A16S float_sparse
 * linears as dense weights) is written under its own name in the dtype it
 * had in the model files; lm_head.weight is left out when the model ties
 * it to the embeddings (as save_pretrained does).  Every linear without a
 * quantized record goes into `ignore`.
 *
 * quantization_config (members in msModelSlim's order): version "0.13.0",
 * quant_method "compressed-tensors", sparsity_config {}, transform_config
 * {}, config_groups {group_N: {targets, weights, input_activations,
 * output_activations: null, format}}, format (the groups' format, or
 * "mixed-precision"), quantization_status "compressed",
 * global_compression_ratio null, ignore [module names in write order],
 * kv_cache_scheme null.  One group per distinct scheme in order of first
 * use; a single group targets ["Linear"], several groups list their
 * modules by name (msModelSlim targets "Linear" in every group, which
 * cannot tell the groups apart).
 *
 * What compressed-tensors cannot express, or this writer does not
 * implement, fails the layer before any of its tensors is written, with an
 * error naming the linear: mx weights, fp8 weights per group, fp8 weights
 * with int activations (or int weights with fp8 activations), per_block /
 * pd_mix / dual-scale scopes, int4 weights or int4 activations with
 * quantized activations (W4A8_DYNAMIC, W4A4_DYNAMIC), zero points that are
 * not integers of the weight's range (HQQ), a nonzero zero point of a
 * symmetric scheme, KV-cache (C8) and FA3 (FAQuant) records.
 */
#pragma once

#include <glib.h>
#include "slim-dtype.h"
#include "slim-layer.h"

G_BEGIN_DECLS

#define SLIM_CT_WEIGHTS_PREFIX "model"
#define SLIM_CT_VERSION "0.13.0"

typedef struct _SlimCtWriter SlimCtWriter;

/* model_dtype: the model's torch_dtype (scale_dtype is null for float32);
 * tie_word_embeddings: leave an unquantized lm_head.weight out. */
SlimCtWriter *slim_ct_writer_new (const char *out_dir,
                                  guint64 shard_bytes,
                                  SlimDType model_dtype,
                                  gboolean tie_word_embeddings,
                                  GError **error);
gboolean slim_ct_writer_write_layer (SlimCtWriter *self, SlimLayer *layer, GError **error);
/* Closes the weight files, copies model_dir's auxiliary files (nullable:
 * none) and writes config.json with quantization_config (config.json must
 * then exist in out_dir). */
gboolean slim_ct_writer_finish (SlimCtWriter *self, const char *model_dir, GError **error);
/* Drops the writer; the partial weight files of an unfinished one go. */
void slim_ct_writer_free (SlimCtWriter *self);
/* Resume (see slim-saver.h): the state after the last written layer, and
 * its restoration on a new writer created with the same arguments. */
GBytes *slim_ct_writer_save_state (SlimCtWriter *self, GError **error);
gboolean slim_ct_writer_restore_state (SlimCtWriter *self, GBytes *state, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimCtWriter, slim_ct_writer_free)

G_END_DECLS
