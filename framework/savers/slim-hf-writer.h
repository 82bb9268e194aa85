/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-hf-writer.h: a Hugging Face GPTQ or AWQ checkpoint folder, written
 * by the hf_gptq_saver and hf_awq_saver plugins (transformers' GPTQConfig
 * and AwqConfig, GPTQModel's QuantizeConfig; layouts of AutoGPTQ /
 * GPTQModel `pack` and AutoAWQ's WQLinear_GEMM, read from their sources).
 *
 * Files written into out_dir:
 *   model.safetensors (shard_bytes 0), or
 *   model-0000i-of-0000N.safetensors + model.safetensors.index.json,
 *     __metadata__ {"format": "pt"} as save_pretrained writes it
 *   config.json            the model's, quantization_config set
 *   quantize_config.json   GPTQ only: the same object (GPTQModel and
 *                          AutoGPTQ read it before config.json)
 *   *.json, *.py, *.txt, *.jinja of the model  except *index.json
 *
 * Each quantized linear X (n_out, n_in), b bits, pf = 32 / b, G groups
 * (n_in / group_size, 1 per channel), u = q + 2^(b-1) the unsigned code,
 * z = offset + 2^(b-1) the unsigned zero (slim-hf-pack.h for the packing):
 *   GPTQ  X.qweight  int32 (n_in / pf, n_out)  u of (in, out), packed dim 0
 *         X.qzeros   int32 (G, n_out / pf)     z - 1 (gptq) or z (gptq_v2),
 *                                              packed dim 1, natural order
 *         X.scales   f16 / f32 (G, n_out)
 *         X.g_idx    int32 (n_in)              column c's group: c / group_size
 *                                              (0 per channel)
 *   AWQ   X.qweight  int32 (n_in, n_out / 8)   u of (in, out), packed dim 1
 *                                              in AWQ's order
 *         X.qzeros   int32 (G, n_out / 8)      z, the same order
 *         X.scales   f16 / f32 (G, n_out)
 * then X.bias (when the linear has one) in its source dtype.  The dequantized
 * weight (u - z) * scale equals slimflow's (q - offset) * scale exactly
 * with float32 scales; float16 scales are slimflow's rounded to nearest
 * even.  A symmetric scheme is written with z = 2^(b-1) (sym true: GPTQ's
 * own convention; AWQ's GEMM always carries zeros).
 *
 * Everything else keeps its name and source dtype; a tied lm_head.weight
 * is left out.  Linears left float: GPTQ lists each one inside a decoder
 * layer in GPTQModel's `dynamic` as a negative match {"-:^<name>$": {}},
 * and then also the quantized ones of the decoder layers, by full name,
 * in modules_in_block_to_quantize [[...]] (optimum, transformers' GPTQ
 * loader, ignores `dynamic` and replaces the block linears whose names
 * end with a listed one); AWQ lists every one in modules_to_not_convert.
 * AWQ refuses a quantized linear outside the decoder layers (lm_head:
 * transformers keeps it float).
 *
 * quantization_config:
 *   GPTQ (GPTQModel's to_dict order): bits, dynamic (when non-empty),
 *     group_size, desc_act false, sym, lm_head, quant_method "gptq",
 *     checkpoint_format "gptq" / "gptq_v2", pack_dtype "int32",
 *     modules_in_block_to_quantize (with dynamic), meta {quantizer
 *     ["slimflow"]}
 *   AWQ (AutoAWQ's order): quant_method "awq", zero_point true, group_size,
 *     bits 4, version "gemm", modules_to_not_convert (null when empty)
 * The checkpoint has one scheme: a linear with other bits, group size or
 * symmetry than the first quantized one is refused, as is a layer any of
 * whose records slim-hf-scheme.h refuses, before any of its tensors is
 * written.  desc_act is always false: slimflow's GPTQ act_order keeps the
 * columns and groups in their original order (static groups), so g_idx is
 * the identity grouping.  KV-cache / FA3 records are refused.
 */
#pragma once

#include <glib.h>
#include "slim-hf-scheme.h"
#include "slim-layer.h"

G_BEGIN_DECLS

#define SLIM_HF_WEIGHTS_PREFIX "model"

typedef struct _SlimHfWriter SlimHfWriter;

/* f16_scales: scales as float16 (else float32); tie_word_embeddings:
 * leave an unquantized lm_head.weight out. */
SlimHfWriter *slim_hf_writer_new (const char *out_dir,
                                  SlimHfFormat format,
                                  guint64 shard_bytes,
                                  gboolean f16_scales,
                                  gboolean tie_word_embeddings,
                                  GError **error);
gboolean slim_hf_writer_write_layer (SlimHfWriter *self, SlimLayer *layer, GError **error);
/* Closes the weight files, copies model_dir's auxiliary files (nullable)
 * and writes the configs; fails when nothing was quantized (a GPTQ / AWQ
 * checkpoint without a quantized linear would not load as one). */
gboolean slim_hf_writer_finish (SlimHfWriter *self, const char *model_dir, GError **error);
/* Drops the writer; the partial weight files of an unfinished one go. */
void slim_hf_writer_free (SlimHfWriter *self);
/* Resume (see slim-saver.h): the state after the last written layer, and
 * its restoration on a new writer created with the same arguments. */
GBytes *slim_hf_writer_save_state (SlimHfWriter *self, GError **error);
gboolean slim_hf_writer_restore_state (SlimHfWriter *self, GBytes *state, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimHfWriter, slim_hf_writer_free)

G_END_DECLS
