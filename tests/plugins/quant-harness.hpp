// SPDX-License-Identifier: Apache-2.0
//
// quant-harness.hpp: what the linear_quant, group and saver suites share:
// plugins made from YAML text in a registry holding this area's modules,
// synthetic layers with a hand-driven linear forward, and a small
// layer-wise driver over a real model (msModelSlim's scheduling: per layer
// and processor preprocess, a calibration forward per sample with the
// deployed hooks followed by the processor's, postprocess; the next
// layer's input is the last data-dependent forward's output).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

extern "C"
{
#include "slim-ascend-writer.h"
#include "slim-layer.h"
#include "slim-model.h"
#include "slim-plugin.h"
#include "slim-qlinear.h"
#include "slim-registry.h"
}

struct GObjectUnref
{
  void
  operator() (gpointer p) const
  {
    if (p != nullptr)
      g_object_unref (p);
  }
};
template <typename T> using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

struct TensorUnref
{
  void
  operator() (SlimTensor *t) const
  {
    if (t != nullptr)
      slim_tensor_unref (t);
  }
};
using TensorPtr = std::unique_ptr<SlimTensor, TensorUnref>;

// A registry with linear_quant, pdmix, group, smooth_quant, iter_smooth, dynamic_cache,
// fa3_quant, float_sparse, ascendv1_saver, mindie_format_saver and compressed_tensors loaded from
// the build tree (created once).
SlimRegistry *harness_registry ();

// A plugin built from one YAML mapping with a `type` key, as the config
// loader builds `process:` / `save:` entries.  nullptr with error set when
// the config is rejected.
GObject *harness_plugin (SlimPluginKind kind, const std::string &yaml, GError **error);
SlimProcessor *harness_processor (const std::string &yaml, GError **error);
SlimSaver *harness_saver (const std::string &yaml, GError **error);
// linear_quant YAML for an act / weight pair ("" act = omitted).
std::string harness_linear_quant_yaml (const std::string &act,
                                       const std::string &weight,
                                       const std::string &extra = "");

// Deterministic values: 0.1 + 2 cos (i + seed) scaled (ggml's pattern).
std::vector<float> harness_pattern (size_t n, unsigned seed, float scale = 1.0f);

struct SynthLinear
{
  std::string name; // full module name, "model.layers.0.self_attn.q_proj"
  int64_t n_out;
  int64_t n_in;
  bool bias;
};
// A layer holding the linears' float32 weights (and biases), with the
// linear names set; plus an "input_layernorm.weight" FLOAT tensor.
SlimLayer *
harness_synthetic_layer (int index, const std::vector<SynthLinear> &linears, unsigned seed);

// y = x W^T (+ b) for one linear of the layer, after the hooks' linear_input
// (x is copied first, as the model forward does).  x: (n_tokens, n_in).
bool harness_linear_forward (SlimLayer *layer,
                             const std::string &module,
                             const std::vector<float> &x,
                             int64_t n_tokens,
                             const SlimForwardHooks *hooks,
                             std::vector<float> *y,
                             GError **error);

// Chains two hook sets (a then b) into one.
struct HookChain
{
  SlimForwardHooks a;
  SlimForwardHooks b;
  SlimForwardHooks hooks; // what to pass to a forward; user_data = this
};
void harness_chain_hooks (HookChain *chain, const SlimForwardHooks *a, const SlimForwardHooks *b);

// Runs processors and savers over the model in model_dir (see above).
// n_samples calibration sequences of seq_len tokens.
bool harness_run_model (const std::string &model_dir,
                        const std::vector<SlimProcessor *> &processors,
                        const std::vector<SlimSaver *> &savers,
                        const std::string &out_dir,
                        guint n_samples,
                        gint64 seq_len,
                        GError **error);

// The same, handing each processed unit (embeddings, decoder layers, head)
// to on_layer instead of savers.
using HarnessLayerFunc = std::function<bool (SlimModel *, SlimLayer *, GError **)>;
bool harness_run_model_with (const std::string &model_dir,
                             const std::vector<SlimProcessor *> &processors,
                             const HarnessLayerFunc &on_layer,
                             guint n_samples,
                             gint64 seq_len,
                             GError **error);

// Reads a whole file ("" when missing).
std::string harness_read_file (const std::string &path);
