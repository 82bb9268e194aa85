/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-ascend-writer.h: the output folder shared by the ascendv1_saver and
 * mindie_format_saver plugins (modelslim-v1-spec.md 3.1, 3.2; msModelSlim
 * core/quant_service/modelslim_v1/save/ascendv1.py and mindie_format.py).
 *
 * A layer is written as msModelSlim's saver walks a module: in the layer's
 * tensor insertion order, a linear with a deployed SlimQLinear record
 * becomes its label's tensors (at the position of its weight), everything
 * else is written as FLOAT in the dtype it had in the model files.  Each
 * written tensor gets a key in the description JSON.  Tensors of one
 * quantized linear, in order (bias only when the linear has one, labelled
 * FLOAT and written as float32):
 *
 *   W8A8          weight i8 (out, in), quant_bias i32 (out), input_scale f32 (1),
 *                 input_offset f32 (1), deq_scale (out), bias
 *   W8A8_MIX      the W8A8 set, then weight_scale f32 (out, 1),
 *                 weight_offset f32 zeros (out, 1), bias
 *   W8A8_DYNAMIC  weight i8, weight_scale f32, weight_offset f32, bias
 *   W8A16         weight i8, weight_scale f32, weight_offset f32, bias
 *   W4A16         as W8A16 per-group, int4 values in int8 storage (a slimflow
 *                 extension: not an msModelSlim v1 IR)
 *   W4A8_DYNAMIC  weight i8 packed (out / 2, in), weight_scale f32 (out, 1),
 *                 weight_offset f32 zeros (out, 1), scale_bias f32, bias
 *   W4A4_DYNAMIC  weight i8 unpacked values in [-8, 7], weight_scale, weight_offset
 *   WFP8AFP8_DYNAMIC  weight f8_e4m3fn (out, in), weight_scale f32 (out, 1),
 *                 weight_offset f32 zeros (out, 1), bias (ascendv1 only)
 *   W8A8_MXFP8    weight f8_e4m3fn (out, in), weight_scale u8 (out, ceil (in / 32))
 *                 = E8M0 exponent + 127, bias; group_size 32
 *   W4A8_MXFP,    weight u8 (out, in / 2): E2M1 codes, element 2i in the low
 *   W4A4_MXFP4    nibble (pack_fp4_to_uint8), weight_scale u8, bias; group_size
 *                 32 (mindie: W8A8_MXFP8 and W4A4_MXFP4 only)
 *   W16A16S       weight (out, in) and bias in the model's dtype, both labelled
 *                 W16A16S (float_sparse: the layer holds the pruned weight;
 *                 ascendv1 only)
 *
 * After a layer's tensors, its SlimQAttention records (slim-qattention.h):
 *   C8       <attn>.{k,v}_proj.kv_cache_{scale,offset} (H * D) in the
 *            k_proj / v_proj weight's source dtype
 *   FAQuant  <attn>.fa_{q,k,v}.scale f32 (H, 1), .offset zeros (H, 1)
 *            (int8 for INT8, f32 for FP8), static branches only
 * and after every tensor key the <attn>.quant_type strings (FA3), then
 * kv_cache_type / kv_quant_type "C8" and fa_quant_type "FAKQuant"
 * (ascendv1 only: mindie refuses them).
 *
 * weight_scale / weight_offset are (out, 1) per channel and (out, in / gs)
 * per group.  deq_scale is the float32 bit pattern widened to int64, or
 * float32 for a bfloat16 model (ascendv1) and always float32 (mindie).
 *
 * Where msModelSlim is wrong we are right with the same format: a
 * per-group asymmetric W8A8_DYNAMIC weight gets its real weight_offset
 * (msModelSlim writes zeros whatever the offsets are).
 *
 * The embeddings pseudo-layer is held back (in a hidden safetensors file
 * of out_dir, not in memory) and written right before the head
 * pseudo-layer (or at finish), because msModelSlim writes
 * embed_tokens, the final norm and lm_head in its post_run, after all
 * decoder layers; the description JSON keys follow the same order.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include "slim-layer.h"

G_BEGIN_DECLS

typedef enum
{
  SLIM_ASCEND_FORMAT_ASCENDV1, /* quant_model_weights*, version, model_quant_type by priority */
  SLIM_ASCEND_FORMAT_MINDIE,   /* quant_model_weight*, last label, files renamed by label */
} SlimAscendFormat;

#define SLIM_ASCEND_DESCRIPTION_NAME "quant_model_description.json"
#define SLIM_ASCENDV1_WEIGHTS_PREFIX "quant_model_weights"
#define SLIM_MINDIE_WEIGHTS_PREFIX "quant_model_weight"
/* part_file_size is in GB of 2^30 bytes. */
#define SLIM_ASCEND_GB_BYTES (G_GUINT64_CONSTANT (1) << 30)

typedef struct _SlimAscendWriter SlimAscendWriter;

SlimAscendWriter *slim_ascend_writer_new (SlimAscendFormat format,
                                          const char *out_dir,
                                          guint64 shard_bytes,
                                          gboolean deq_scale_f32,
                                          GError **error);
gboolean slim_ascend_writer_write_layer (SlimAscendWriter *self, SlimLayer *layer, GError **error);
gboolean slim_ascend_writer_finish (SlimAscendWriter *self, const char *model_dir, GError **error);
const char *slim_ascend_writer_get_model_quant_type (SlimAscendWriter *self);
void slim_ascend_writer_free (SlimAscendWriter *self);
/* Resume (see slim-saver.h): the state after the last written layer, and
 * its restoration on a new writer created with the same arguments. */
GBytes *slim_ascend_writer_save_state (SlimAscendWriter *self, GError **error);
gboolean slim_ascend_writer_restore_state (SlimAscendWriter *self, GBytes *state, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimAscendWriter, slim_ascend_writer_free)

/* Python json.dump (obj, indent=N) text of a JSON node (ensure_ascii, ", "
 * / ": " separators, floats in repr form, no trailing newline). */
char *slim_ascend_json_to_python_text (JsonNode *node, guint indent);

G_END_DECLS
