// SPDX-License-Identifier: Apache-2.0
//
// test-group.cpp: the group container processor (modelslim-v1-spec.md 2.2):
// children built from `configs`, every hook fanned out in list order, one
// shared calibration forward (the children's linear_input hooks chained in
// order), is_data_free = all, needs_kv_cache = any, supports_distributed =
// any, validate errors naming the child; and the MoE-style mixed-precision
// group of linear_quant children on a synthetic layer.
#include "quant-harness.hpp"
#include "recording-processor.h"
#include "slim-test.h"

#include <cstring>

namespace
{

GObjectPtr<SlimProcessor>
make (const std::string &yaml)
{
  GError *error = nullptr;
  SlimProcessor *p = harness_processor (yaml, &error);
  EXPECT_NE (p, nullptr) << (error ? error->message : "") << "\n" << yaml;
  g_clear_error (&error);
  return GObjectPtr<SlimProcessor> (p);
}

std::string
recording (const char *tag, const std::string &extra = "")
{
  return std::string ("    - {type: recording, tag: ") + tag + (extra.empty () ? "" : ", " + extra)
         + "}\n";
}

std::vector<std::string>
log_strings ()
{
  std::vector<std::string> out;
  GPtrArray *log = slim_recording_log ();
  for (guint i = 0; i < log->len; i++)
    out.emplace_back ((const char *)log->pdata[i]);
  return out;
}

} // namespace

// Every hook reaches the children in list order, and one forward drives all
// children's linear_input hooks in order: each hook computes x * 2 + shift,
// so a then b gives (x * 2 + 1) * 2 + 10 and the reverse order would not.
TEST (Group, FansOutInListOrderWithOneForward)
{
  auto g = make ("type: group\nconfigs:\n" + recording ("a", "shift: 1")
                 + recording ("b", "shift: 10"));
  ASSERT_TRUE (g);
  slim_recording_log_clear ();
  GError *error = nullptr;
  GObjectPtr<SlimModel> model (
      slim_model_open (slim_test_shared_path ("models/stories260K").c_str (), &error));
  ASSERT_TRUE (model) << error->message;
  GObjectPtr<SlimLayer> layer (
      harness_synthetic_layer (0, { { "model.layers.0.mlp.up_proj", 2, 4, false } }, 1));

  ASSERT_TRUE (slim_processor_validate (g.get (), &error));
  ASSERT_TRUE (slim_processor_pre_run (g.get (), model.get (), &error));
  ASSERT_TRUE (slim_processor_preprocess (g.get (), layer.get (), &error));
  SlimForwardHooks hooks;
  slim_processor_get_forward_hooks (g.get (), layer.get (), &hooks);
  ASSERT_NE (hooks.linear_input, nullptr);
  EXPECT_EQ (hooks.qkv_states, nullptr); // no child observes q/k/v
  std::vector<float> x = { 1.0f, -2.0f };
  ASSERT_TRUE (
      hooks.linear_input ("model.layers.0.mlp.up_proj", x.data (), 1, 2, hooks.user_data, &error));
  EXPECT_EQ (x[0], (1.0f * 2 + 1) * 2 + 10);
  EXPECT_EQ (x[1], (-2.0f * 2 + 1) * 2 + 10);
  ASSERT_TRUE (slim_processor_postprocess (g.get (), layer.get (), &error));
  ASSERT_TRUE (slim_processor_post_run (g.get (), &error));

  std::vector<std::string> want = { "a:validate",
                                    "b:validate",
                                    "a:pre_run",
                                    "b:pre_run",
                                    "a:preprocess",
                                    "b:preprocess",
                                    "a:linear_input model.layers.0.mlp.up_proj",
                                    "b:linear_input model.layers.0.mlp.up_proj",
                                    "a:postprocess",
                                    "b:postprocess",
                                    "a:post_run",
                                    "b:post_run" };
  EXPECT_EQ (log_strings (), want);
}

// is_data_free = all, needs_kv_cache = any, supports_distributed = any.
TEST (Group, FlagsCombineAllAndAny)
{
  struct Case
  {
    std::string a, b;
    bool data_free, kv_cache, distributed;
  };
  const Case cases[] = {
    { "data-free: true", "data-free: true", true, false, false },
    { "data-free: true", "data-free: false", false, false, false },
    { "kv-cache: true", "kv-cache: false", false, true, false },
    { "distributed: true", "distributed: false", false, false, true },
    { "distributed: false", "distributed: false", false, false, false },
  };
  for (const Case &c : cases)
    {
      auto g = make ("type: group\nconfigs:\n" + recording ("a", c.a) + recording ("b", c.b));
      ASSERT_TRUE (g);
      EXPECT_EQ ((bool)slim_processor_is_data_free (g.get ()), c.data_free) << c.a << " " << c.b;
      EXPECT_EQ ((bool)slim_processor_needs_kv_cache (g.get ()), c.kv_cache) << c.a << " " << c.b;
      EXPECT_EQ ((bool)slim_processor_supports_distributed (g.get ()), c.distributed)
          << c.a << " " << c.b;
    }
}

// validate checks every child and names each failing one.
TEST (Group, ValidateNamesFailingChildren)
{
  auto g = make ("type: group\nconfigs:\n" + recording ("a", "fail-validate: true")
                 + "    - type: linear_quant\n      qconfig:\n        weight: {dtype: int8, "
                   "scope: per_channel, symmetric: false, method: minmax}\n"
                 + recording ("c"));
  ASSERT_TRUE (g);
  slim_recording_log_clear ();
  GError *error = nullptr;
  EXPECT_FALSE (slim_processor_validate (g.get (), &error));
  ASSERT_NE (error, nullptr);
  std::string msg = error->message;
  EXPECT_NE (msg.find ("configs[0] (recording): a refuses"), std::string::npos) << msg;
  EXPECT_NE (msg.find ("configs[1] (linear_quant): qconfig.weight"), std::string::npos) << msg;
  EXPECT_EQ (msg.find ("configs[2]"), std::string::npos) << msg;
  g_clear_error (&error);
  std::vector<std::string> want = { "a:validate", "c:validate" };
  EXPECT_EQ (log_strings (), want);
}

// `configs` is required and may not be empty; entries must be processors.
TEST (Group, ConfigsRequiredAndNonEmpty)
{
  for (const char *yaml : { "type: group\n", "type: group\nconfigs: []\n",
                            "type: group\nconfigs:\n  - {type: no_such_processor}\n" })
    {
      GError *error = nullptr;
      EXPECT_EQ (harness_processor (yaml, &error), nullptr) << yaml;
      ASSERT_NE (error, nullptr) << yaml;
      EXPECT_NE (std::string (error->message).find ("configs"), std::string::npos)
          << error->message;
      g_clear_error (&error);
    }
}

// The mixed-precision pattern of the MoE example: attention W8A8 static and
// MLP W8A8 dynamic in one group, the router ("*gate") kept float.  One
// forward calibrates the static child; the dynamic child's hook quantizes
// its linears' inputs per token in the same forward.  A linear matched by
// both children (q_proj: "*self_attn*" and "*") goes to the first.
TEST (Group, MixedPrecisionChildrenShareOneForward)
{
  const std::string q = "model.layers.0.self_attn.q_proj", up = "model.layers.0.mlp.up_proj",
                    gate = "model.layers.0.mlp.gate";
  GObjectPtr<SlimLayer> layer (harness_synthetic_layer (
      0, { { q, 8, 16, false }, { up, 8, 16, false }, { gate, 4, 16, false } }, 5));
  auto g
      = make ("type: group\n"
              "configs:\n"
              "  - type: linear_quant\n"
              "    qconfig:\n"
              "      act: {dtype: int8, scope: per_tensor, symmetric: false, method: minmax}\n"
              "      weight: {dtype: int8, scope: per_channel, symmetric: true, method: minmax}\n"
              "    include: [\"*self_attn*\"]\n"
              "  - type: linear_quant\n"
              "    qconfig:\n"
              "      act: {dtype: int8, scope: per_token, symmetric: true, method: minmax}\n"
              "      weight: {dtype: int8, scope: per_channel, symmetric: true, method: minmax}\n"
              "    include: [\"*\"]\n"
              "    exclude: [\"*gate\"]\n");
  ASSERT_TRUE (g);
  GError *error = nullptr;
  ASSERT_TRUE (slim_processor_validate (g.get (), &error)) << error->message;
  EXPECT_FALSE (slim_processor_is_data_free (g.get ()));
  ASSERT_TRUE (slim_processor_preprocess (g.get (), layer.get (), &error)) << error->message;
  SlimForwardHooks hooks;
  slim_processor_get_forward_hooks (g.get (), layer.get (), &hooks);
  // the dynamic child quantizes up_proj's input per token in this forward
  std::vector<float> x = harness_pattern (2 * 16, 9, 3.0f), orig = x;
  ASSERT_TRUE (hooks.linear_input (up.c_str (), x.data (), 2, 16, hooks.user_data, &error));
  EXPECT_NE (x, orig);
  std::vector<float> y;
  ASSERT_TRUE (
      harness_linear_forward (layer.get (), q, harness_pattern (3 * 16, 4), 3, &hooks, &y, &error));
  std::vector<float> router_in = harness_pattern (16, 2), router_seen = router_in;
  ASSERT_TRUE (
      hooks.linear_input (gate.c_str (), router_seen.data (), 1, 16, hooks.user_data, &error));
  EXPECT_EQ (router_seen, router_in); // the router is in no child
  ASSERT_TRUE (slim_processor_postprocess (g.get (), layer.get (), &error)) << error->message;

  EXPECT_STREQ (slim_layer_get_qlinear (layer.get (), q.c_str ())->label, "W8A8");
  EXPECT_STREQ (slim_layer_get_qlinear (layer.get (), up.c_str ())->label, "W8A8_DYNAMIC");
  EXPECT_EQ (slim_layer_get_qlinear (layer.get (), gate.c_str ()), nullptr);
  ASSERT_TRUE (slim_processor_post_run (g.get (), &error));
}

// A whole model through the harness driver: a data-free group (dynamic +
// weight-only) needs no calibration forward and quantizes every layer.
TEST (Group, DataFreeGroupOverTheModel)
{
  auto g
      = make ("type: group\n"
              "configs:\n"
              "  - type: linear_quant\n"
              "    qconfig:\n"
              "      act: {dtype: int8, scope: per_token, symmetric: true, method: minmax}\n"
              "      weight: {dtype: int8, scope: per_channel, symmetric: true, method: minmax}\n"
              "    include: [\"*self_attn*\"]\n"
              "  - type: linear_quant\n"
              "    qconfig:\n"
              "      weight: {dtype: int8, scope: per_channel, symmetric: true, method: minmax}\n"
              "    include: [\"*mlp*\"]\n");
  ASSERT_TRUE (g);
  EXPECT_TRUE (slim_processor_is_data_free (g.get ()));
  GError *error = nullptr;
  GObjectPtr<SlimSaver> saver (harness_saver ("type: ascendv1_saver\npart_file_size: 0\n", &error));
  ASSERT_TRUE (saver) << error->message;
  std::string out = slim_test_make_tmpdir ();
  ASSERT_TRUE (harness_run_model (slim_test_shared_path ("models/stories260K"), { g.get () },
                                  { saver.get () }, out, 2, 8, &error))
      << error->message;
  std::string desc = harness_read_file (out + "/quant_model_description.json");
  EXPECT_NE (desc.find ("\"model.layers.4.self_attn.o_proj.weight\": \"W8A8_DYNAMIC\""),
             std::string::npos);
  EXPECT_NE (desc.find ("\"model.layers.4.mlp.down_proj.weight_offset\": \"W8A16\""),
             std::string::npos);
  EXPECT_NE (desc.find ("\"model_quant_type\": \"W8A8_DYNAMIC\""), std::string::npos);
}
