/* SPDX-License-Identifier: Apache-2.0
 *
 * slim-bnb-writer.h: a Hugging Face folder in bitsandbytes' 4-bit NF4
 * layout (transformers BitsAndBytesConfig(load_in_4bit=True,
 * bnb_4bit_quant_type="nf4"), saved as save_pretrained does it), written by
 * the bitsandbytes_saver plugin from linear_quant's NF4 records
 * (method nf).
 *
 * Files written into out_dir:
 *   model.safetensors                          (shard_bytes 0), or
 *   model-0000i-of-0000N.safetensors + model.safetensors.index.json
 *   config.json                                the model's, with
 *                                              quantization_config set
 *                                              (Python json.dump indent 2)
 *   *.json, *.py, *.txt, *.jinja of the model  except *index.json, mode 0600
 *
 * An NF4 linear X (n_out, n_in) with blocks of B = group_size elements
 * becomes, at the position of its weight (Linear4bit._save_to_state_dict
 * with QuantState.as_dict (packed=True)):
 *
 *   X.weight                                 uint8 (n_out * n_in / 2, 1):
 *                                            the codes of the row-major
 *                                            weight, two per byte, the first
 *                                            in the high nibble
 *   X.weight.absmax                          f32 (n_out * n_in / B): one per
 *                                            block of B consecutive elements
 *                                            of the flattened weight (blocks
 *                                            never cross a row: n_in % B == 0)
 *   X.weight.quant_map                       f32 (16): the NF4 code book
 *   X.weight.quant_state.bitsandbytes__nf4   uint8: the UTF-8 bytes of
 *                                            json.dumps ({"quant_type":
 *                                            "nf4", "blocksize": B, "dtype":
 *                                            <model dtype>, "shape": [n_out,
 *                                            n_in]})
 *   X.bias                                   as in the model files
 *
 * Dequantization (bitsandbytes dequantize_4bit) is quant_map[code] *
 * absmax in float32, slimflow's deployed weight bit for bit; bitsandbytes
 * then casts it to the state's dtype.  Nested (double) quantization of the
 * absmax is not used.  B must be one of bitsandbytes' block sizes 64, 128,
 * ..., 4096.
 *
 * Everything else is written under its own name in the dtype it had in
 * the model files; a float lm_head.weight is left out when the model ties
 * it to the embeddings; an NF4 lm_head (linear_quant quantize_lm_head) is
 * written and config.json's tie_word_embeddings becomes false.  Every linear without an NF4 record
 * is listed in llm_int8_skip_modules (which transformers reads as the modules not to convert),
 * lm_head included.
 *
 * quantization_config (BitsAndBytesConfig.to_dict, keys sorted as
 * save_pretrained writes them): _load_in_4bit true, _load_in_8bit false,
 * bnb_4bit_compute_dtype <model dtype>, bnb_4bit_quant_storage "uint8",
 * bnb_4bit_quant_type "nf4", bnb_4bit_use_double_quant false,
 * llm_int8_enable_fp32_cpu_offload false, llm_int8_has_fp16_weight false,
 * llm_int8_skip_modules [names], llm_int8_threshold 6.0, load_in_4bit true,
 * load_in_8bit false, quant_method "bitsandbytes".
 *
 * Any other quantized record (integer labels, KV-cache / FA3 records) fails
 * its layer before any tensor of it is written, naming the linear.
 */
#pragma once

#include <glib.h>
#include "slim-dtype.h"
#include "slim-layer.h"

G_BEGIN_DECLS

#define SLIM_BNB_WEIGHTS_PREFIX "model"

typedef struct _SlimBnbWriter SlimBnbWriter;

/* model_dtype: the model's torch_dtype (float32, float16 or bfloat16);
 * tie_word_embeddings: leave an unquantized lm_head.weight out. */
SlimBnbWriter *slim_bnb_writer_new (const char *out_dir,
                                    guint64 shard_bytes,
                                    SlimDType model_dtype,
                                    gboolean tie_word_embeddings,
                                    GError **error);
gboolean slim_bnb_writer_write_layer (SlimBnbWriter *self, SlimLayer *layer, GError **error);
/* Closes the weight files, copies model_dir's auxiliary files (nullable:
 * none) and writes config.json with quantization_config. */
gboolean slim_bnb_writer_finish (SlimBnbWriter *self, const char *model_dir, GError **error);
void slim_bnb_writer_free (SlimBnbWriter *self);
/* Resume (see slim-saver.h). */
GBytes *slim_bnb_writer_save_state (SlimBnbWriter *self, GError **error);
gboolean slim_bnb_writer_restore_state (SlimBnbWriter *self, GBytes *state, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SlimBnbWriter, slim_bnb_writer_free)

G_END_DECLS
