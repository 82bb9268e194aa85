// SPDX-License-Identifier: Apache-2.0
//
// test-registry.cpp: the plugin runtime.
// - SlimRegistry against the fixture modules of tests/fixtures/plugins/
//   (one good directory, one directory per way a module can be broken),
//   the real build plugin directory and static registration;
// - the public wrappers of the four plugin base classes, including the
//   "error set iff FALSE" rule, with misbehaving test subclasses;
// - the `slimflow plugins` command.
#include "slim-test.h"

#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <cstring>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "slimflow.h"

namespace
{

const std::string fixture_dir = SLIM_TEST_FIXTURE_DIR;

std::string
fixture (const std::string &relative)
{
  return fixture_dir + "/" + relative;
}

struct RegistryDeleter
{
  void
  operator() (SlimRegistry *r) const
  {
    g_object_unref (r);
  }
};
using RegistryPtr = std::unique_ptr<SlimRegistry, RegistryDeleter>;

struct ObjectDeleter
{
  void
  operator() (gpointer o) const
  {
    g_object_unref (o);
  }
};
template <typename T> using ObjectPtr = std::unique_ptr<T, ObjectDeleter>;

struct PtrArrayDeleter
{
  void
  operator() (GPtrArray *a) const
  {
    g_ptr_array_unref (a);
  }
};
using PtrArrayPtr = std::unique_ptr<GPtrArray, PtrArrayDeleter>;

// Sets (or unsets, for nullptr) an environment variable for one scope.
class ScopedEnv
{
public:
  ScopedEnv (const char *name, const char *value) : name_ (name)
  {
    const char *old = g_getenv (name);
    had_old_ = old != nullptr;
    if (had_old_)
      old_ = old;
    if (value != nullptr)
      g_setenv (name, value, TRUE);
    else
      g_unsetenv (name);
  }
  ~ScopedEnv ()
  {
    if (had_old_)
      g_setenv (name_.c_str (), old_.c_str (), TRUE);
    else
      g_unsetenv (name_.c_str ());
  }

private:
  std::string name_;
  std::string old_;
  bool had_old_ = false;
};

bool
contains (const std::string &haystack, const std::string &needle)
{
  return haystack.find (needle) != std::string::npos;
}

} // namespace

// ---- test plugin types (statically registered) ----------------------------

// How a misbehaving test vfunc ends.
enum SlimTestBehaviour
{
  SLIM_TEST_OK,
  SLIM_TEST_FAIL_WITH_ERROR,
  SLIM_TEST_FAIL_WITHOUT_ERROR, // breaks the rule
  SLIM_TEST_OK_WITH_ERROR,      // breaks the rule
};

static gboolean
slim_test_behave (int behaviour, GError **error)
{
  switch (behaviour)
    {
    case SLIM_TEST_OK:
      return TRUE;
    case SLIM_TEST_FAIL_WITH_ERROR:
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE, "planned failure");
      return FALSE;
    case SLIM_TEST_FAIL_WITHOUT_ERROR:
      return FALSE;
    case SLIM_TEST_OK_WITH_ERROR:
      g_set_error (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_NON_FINITE, "stray error");
      return TRUE;
    }
  return FALSE;
}

G_BEGIN_DECLS

#define SLIM_TYPE_TEST_PROCESSOR (slim_test_processor_get_type ())
G_DECLARE_FINAL_TYPE (SlimTestProcessor, slim_test_processor, SLIM, TEST_PROCESSOR, SlimProcessor)

struct _SlimTestProcessor
{
  SlimProcessor parent_instance;
  int behaviour;
  int n_calls;
};

G_DEFINE_FINAL_TYPE (SlimTestProcessor, slim_test_processor, SLIM_TYPE_PROCESSOR)

static gboolean
slim_test_processor_validate (SlimProcessor *p, GError **error)
{
  SLIM_TEST_PROCESSOR (p)->n_calls++;
  return slim_test_behave (SLIM_TEST_PROCESSOR (p)->behaviour, error);
}

static gboolean
slim_test_processor_layer_hook (SlimProcessor *p, SlimLayer *, GError **error)
{
  SLIM_TEST_PROCESSOR (p)->n_calls++;
  return slim_test_behave (SLIM_TEST_PROCESSOR (p)->behaviour, error);
}

static gboolean
slim_test_processor_post_run (SlimProcessor *p, GError **error)
{
  SLIM_TEST_PROCESSOR (p)->n_calls++;
  return slim_test_behave (SLIM_TEST_PROCESSOR (p)->behaviour, error);
}

static gboolean
slim_test_processor_true (SlimProcessor *)
{
  return TRUE;
}

static gboolean
slim_test_linear_input (const char *, float *, gint64, gint64, gpointer, GError **)
{
  return TRUE;
}

static void
slim_test_processor_get_forward_hooks (SlimProcessor *p, SlimLayer *, SlimForwardHooks *hooks)
{
  hooks->linear_input = slim_test_linear_input;
  hooks->user_data = p;
}

static void
slim_test_processor_class_init (SlimTestProcessorClass *klass)
{
  SlimProcessorClass *pc = SLIM_PROCESSOR_CLASS (klass);
  pc->validate = slim_test_processor_validate;
  pc->preprocess = slim_test_processor_layer_hook;
  pc->postprocess = slim_test_processor_layer_hook;
  pc->post_run = slim_test_processor_post_run;
  pc->get_forward_hooks = slim_test_processor_get_forward_hooks;
  pc->is_data_free = slim_test_processor_true;
  pc->needs_kv_cache = slim_test_processor_true;
  pc->supports_distributed = slim_test_processor_true;
}

static void
slim_test_processor_init (SlimTestProcessor *)
{
}

// A processor implementing nothing: every default applies.
#define SLIM_TYPE_TEST_BARE_PROCESSOR (slim_test_bare_processor_get_type ())
G_DECLARE_FINAL_TYPE (
    SlimTestBareProcessor, slim_test_bare_processor, SLIM, TEST_BARE_PROCESSOR, SlimProcessor)

struct _SlimTestBareProcessor
{
  SlimProcessor parent_instance;
};

G_DEFINE_FINAL_TYPE (SlimTestBareProcessor, slim_test_bare_processor, SLIM_TYPE_PROCESSOR)

static void
slim_test_bare_processor_class_init (SlimTestBareProcessorClass *)
{
}

static void
slim_test_bare_processor_init (SlimTestBareProcessor *)
{
}

#define SLIM_TYPE_TEST_SAVER (slim_test_saver_get_type ())
G_DECLARE_FINAL_TYPE (SlimTestSaver, slim_test_saver, SLIM, TEST_SAVER, SlimSaver)

struct _SlimTestSaver
{
  SlimSaver parent_instance;
  int behaviour;
  int n_written;
  int n_aborted;
};

G_DEFINE_FINAL_TYPE (SlimTestSaver, slim_test_saver, SLIM_TYPE_SAVER)

static gboolean
slim_test_saver_begin (SlimSaver *s, SlimModel *, const char *, GError **error)
{
  return slim_test_behave (SLIM_TEST_SAVER (s)->behaviour, error);
}

static gboolean
slim_test_saver_write_layer (SlimSaver *s, SlimLayer *, GError **)
{
  SLIM_TEST_SAVER (s)->n_written++;
  return TRUE;
}

static gboolean
slim_test_saver_finish (SlimSaver *, GError **)
{
  return TRUE;
}

static void
slim_test_saver_abort (SlimSaver *s)
{
  SLIM_TEST_SAVER (s)->n_aborted++;
}

static void
slim_test_saver_class_init (SlimTestSaverClass *klass)
{
  SlimSaverClass *sc = SLIM_SAVER_CLASS (klass);
  sc->begin = slim_test_saver_begin;
  sc->write_layer = slim_test_saver_write_layer;
  sc->finish = slim_test_saver_finish;
  sc->abort = slim_test_saver_abort;
}

static void
slim_test_saver_init (SlimTestSaver *)
{
}

#define SLIM_TYPE_TEST_DATASET (slim_test_dataset_get_type ())
G_DECLARE_FINAL_TYPE (SlimTestDataset, slim_test_dataset, SLIM, TEST_DATASET, SlimDataset)

// Two fixed samples, (3) and (2) token ids, loaded only by load().
struct _SlimTestDataset
{
  SlimDataset parent_instance;
  int behaviour;
  gint32 ids[5]; /* (5) */
};

G_DEFINE_FINAL_TYPE (SlimTestDataset, slim_test_dataset, SLIM_TYPE_DATASET)

static gboolean
slim_test_dataset_load (SlimDataset *d, SlimTokenizer *, GError **error)
{
  SlimTestDataset *self = SLIM_TEST_DATASET (d);
  for (gint32 i = 0; i < 5; i++)
    self->ids[i] = 10 + i;
  return slim_test_behave (self->behaviour, error);
}

static guint
slim_test_dataset_get_n_samples (SlimDataset *)
{
  return 2;
}

static const gint32 *
slim_test_dataset_get_sample (SlimDataset *d, guint index, gint64 *out_n_tokens)
{
  SlimTestDataset *self = SLIM_TEST_DATASET (d);
  *out_n_tokens = index == 0 ? 3 : 2;
  return index == 0 ? self->ids : self->ids + 3;
}

static void
slim_test_dataset_class_init (SlimTestDatasetClass *klass)
{
  SlimDatasetClass *dc = SLIM_DATASET_CLASS (klass);
  dc->load = slim_test_dataset_load;
  dc->get_n_samples = slim_test_dataset_get_n_samples;
  dc->get_sample = slim_test_dataset_get_sample;
}

static void
slim_test_dataset_init (SlimTestDataset *)
{
}

#define SLIM_TYPE_TEST_RUNNER (slim_test_runner_get_type ())
G_DECLARE_FINAL_TYPE (SlimTestRunner, slim_test_runner, SLIM, TEST_RUNNER, SlimRunner)

struct _SlimTestRunner
{
  SlimRunner parent_instance;
  int behaviour;
};

G_DEFINE_FINAL_TYPE (SlimTestRunner, slim_test_runner, SLIM_TYPE_RUNNER)

static gboolean
slim_test_runner_run (SlimRunner *r, SlimRunContext *ctx, GCancellable *, GError **error)
{
  if (ctx->progress != nullptr)
    ctx->progress (0, 1, ctx->progress_data);
  return slim_test_behave (SLIM_TEST_RUNNER (r)->behaviour, error);
}

static void
slim_test_runner_class_init (SlimTestRunnerClass *klass)
{
  SLIM_RUNNER_CLASS (klass)->run = slim_test_runner_run;
}

static void
slim_test_runner_init (SlimTestRunner *)
{
}

G_END_DECLS

namespace
{

const char *const test_processor_aliases[] = { "test_alias", nullptr };

const SlimPluginDesc test_processor_desc = {
  SLIM_PLUGIN_ABI_VERSION,
  SLIM_PLUGIN_KIND_PROCESSOR,
  "test_processor",
  test_processor_aliases,
  "Test processor with planned behaviour",
  slim_test_processor_get_type,
};
const SlimPluginDesc test_bare_desc = {
  SLIM_PLUGIN_ABI_VERSION,
  SLIM_PLUGIN_KIND_PROCESSOR,
  "test_bare",
  nullptr,
  "Test processor implementing nothing",
  slim_test_bare_processor_get_type,
};
const SlimPluginDesc test_saver_desc = {
  SLIM_PLUGIN_ABI_VERSION,  SLIM_PLUGIN_KIND_SAVER, "test_saver", nullptr, "Test saver",
  slim_test_saver_get_type,
};
const SlimPluginDesc test_dataset_desc = {
  SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_DATASET,   "test_dataset", nullptr,
  "Test dataset",          slim_test_dataset_get_type,
};
const SlimPluginDesc test_runner_desc = {
  SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_RUNNER,   "test_runner", nullptr,
  "Test runner",           slim_test_runner_get_type,
};

// Registers the static test plugins in a fresh registry.
RegistryPtr
make_static_registry ()
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;
  for (const SlimPluginDesc *desc : { &test_processor_desc, &test_bare_desc, &test_saver_desc,
                                      &test_dataset_desc, &test_runner_desc })
    {
      EXPECT_TRUE (slim_registry_add_static (registry.get (), desc, &error))
          << (error ? error->message : "");
      g_clear_error (&error);
    }
  return registry;
}

} // namespace

// ---- scanning the fixtures -------------------------------------------------

TEST (Registry, ScanGoodFixtureFindsNamesAliasesAndKindSubdirs)
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;

  ASSERT_TRUE (slim_registry_scan_path (registry.get (), fixture ("good").c_str (), &error))
      << error->message;

  GType by_name
      = slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "fixture_good", &error);
  ASSERT_NE (by_name, G_TYPE_INVALID) << error->message;
  EXPECT_STREQ (g_type_name (by_name), "SlimFixtureGoodProcessor");
  EXPECT_TRUE (g_type_is_a (by_name, SLIM_TYPE_PROCESSOR));
  for (const char *alias : { "fixture_alias", "fixture_alias2" })
    EXPECT_EQ (slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, alias, nullptr),
               by_name)
        << alias;

  // The saver sits in good/savers/: kind subdirectories are scanned.
  GType saver
      = slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_SAVER, "fixture_saver", &error);
  ASSERT_NE (saver, G_TYPE_INVALID) << error->message;
  EXPECT_TRUE (g_type_is_a (saver, SLIM_TYPE_SAVER));
  const char *saver_path
      = slim_registry_get_module_path (registry.get (), SLIM_PLUGIN_KIND_SAVER, "fixture_saver");
  ASSERT_NE (saver_path, nullptr);
  EXPECT_EQ (std::string (saver_path), fixture ("good/savers/slim-saver-fixture_saver.so"));

  // Names are per kind.
  EXPECT_EQ (
      slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_SAVER, "fixture_good", nullptr),
      G_TYPE_INVALID);

  const SlimPluginDesc *desc
      = slim_registry_get_desc (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "fixture_alias");
  ASSERT_NE (desc, nullptr);
  EXPECT_STREQ (desc->name, "fixture_good");
  EXPECT_STREQ (desc->description, "Registry test fixture: a processor that changes nothing");

  PtrArrayPtr processors (slim_registry_list (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR));
  ASSERT_EQ (processors->len, 1u); // aliases are not listed again
  EXPECT_EQ (g_ptr_array_index (processors.get (), 0), (gpointer)desc);
  PtrArrayPtr runners (slim_registry_list (registry.get (), SLIM_PLUGIN_KIND_RUNNER));
  EXPECT_EQ (runners->len, 0u);
}

TEST (Registry, PluginObjectsKnowTheirYamlName)
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;
  ASSERT_TRUE (slim_registry_scan_path (registry.get (), fixture ("good").c_str (), &error))
      << error->message;

  ObjectPtr<GObject> object (slim_registry_new_object (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR,
                                                       "fixture_alias", &error));
  ASSERT_NE (object, nullptr) << error->message;
  ASSERT_TRUE (SLIM_IS_PROCESSOR (object.get ()));
  SlimProcessor *processor = SLIM_PROCESSOR (object.get ());
  EXPECT_STREQ (slim_processor_get_type_name (processor), "fixture_good");
  EXPECT_STREQ (slim_processor_get_description (processor),
                "Registry test fixture: a processor that changes nothing");
  EXPECT_TRUE (slim_processor_is_data_free (processor)); // the fixture overrides it
  EXPECT_FALSE (slim_processor_needs_kv_cache (processor));

  // The nested object property of the fixture defaults to NULL, its
  // plain properties to their DEFAULT_ values.
  double ratio = 0.0;
  g_object_get (object.get (), "ratio", &ratio, NULL);
  EXPECT_EQ (ratio, 0.5);
}

TEST (Registry, ScanningTheSameDirectoryTwiceIsANoOp)
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;
  ASSERT_TRUE (slim_registry_scan_path (registry.get (), fixture ("good").c_str (), &error));
  EXPECT_TRUE (slim_registry_scan_path (registry.get (), fixture ("good").c_str (), &error))
      << error->message;
  g_clear_error (&error);
  // Two registries share the process-global GTypes without conflict.
  RegistryPtr other (slim_registry_new ());
  EXPECT_TRUE (slim_registry_scan_path (other.get (), fixture ("good").c_str (), &error))
      << error->message;
  g_clear_error (&error);
  EXPECT_EQ (
      slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "fixture_good", nullptr),
      slim_registry_lookup (other.get (), SLIM_PLUGIN_KIND_PROCESSOR, "fixture_good", nullptr));
}

struct BrokenFixture
{
  const char *dir;
  const char *module; // file inside dir
  int code;
  const char *fragment; // another part of the message
};

class RegistryBroken : public ::testing::TestWithParam<BrokenFixture>
{
};

TEST_P (RegistryBroken, FailsWithCodeAndNamesTheFile)
{
  const BrokenFixture &param = GetParam ();
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;

  EXPECT_FALSE (slim_registry_scan_path (registry.get (), fixture (param.dir).c_str (), &error));
  ASSERT_NE (error, nullptr);
  GErrorPtr owned (error);
  EXPECT_EQ (error->domain, SLIM_PLUGIN_ERROR);
  EXPECT_EQ (error->code, param.code) << error->message;
  std::string path = fixture (std::string (param.dir) + "/" + param.module);
  EXPECT_TRUE (contains (error->message, path)) << error->message;
  EXPECT_TRUE (contains (error->message, param.fragment)) << error->message;

  // Nothing was registered from the broken module.
  for (SlimPluginKind kind : { SLIM_PLUGIN_KIND_PROCESSOR, SLIM_PLUGIN_KIND_SAVER })
    {
      PtrArrayPtr descs (slim_registry_list (registry.get (), kind));
      EXPECT_EQ (descs->len, 0u);
    }

  // Loading the module file directly gives the same failure.
  GError *direct = nullptr;
  EXPECT_FALSE (slim_registry_load_module (registry.get (), path.c_str (), &direct));
  ASSERT_NE (direct, nullptr);
  EXPECT_EQ (direct->code, param.code) << direct->message;
  g_clear_error (&direct);
}

INSTANTIATE_TEST_SUITE_P (
    Fixtures,
    RegistryBroken,
    ::testing::Values (BrokenFixture{ "no-entry", "slim-processor-no_entry.so",
                                      SLIM_PLUGIN_ERROR_NO_ENTRY_POINT,
                                      "slim_plugin_processor_no_entry_get_desc" },
                       BrokenFixture{ "wrong-abi", "slim-processor-wrong_abi.so",
                                      SLIM_PLUGIN_ERROR_ABI_MISMATCH, "ABI version 100" },
                       BrokenFixture{ "kind-mismatch", "slim-processor-kind_mismatch.so",
                                      SLIM_PLUGIN_ERROR_WRONG_KIND, "declares itself a saver" },
                       BrokenFixture{ "wrong-base", "slim-processor-wrong_base.so",
                                      SLIM_PLUGIN_ERROR_WRONG_KIND, "SlimFixtureWrongBaseSaver" },
                       BrokenFixture{ "not-elf", "slim-processor-not_elf.so",
                                      SLIM_PLUGIN_ERROR_OPEN, "cannot load plugin module" }),
    [] (const ::testing::TestParamInfo<BrokenFixture> &info) {
      std::string name = info.param.dir;
      for (char &c : name)
        if (c == '-')
          c = '_';
      return name;
    });

TEST (Registry, TwoModulesWithTheSameNameAreADuplicate)
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;

  ASSERT_TRUE (slim_registry_scan_path (registry.get (), fixture ("dup-a").c_str (), &error))
      << error->message;
  GType first = slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "dup", nullptr);
  EXPECT_STREQ (g_type_name (first), "SlimFixtureDupAProcessor");

  EXPECT_FALSE (slim_registry_scan_path (registry.get (), fixture ("dup-b").c_str (), &error));
  ASSERT_NE (error, nullptr);
  GErrorPtr owned (error);
  EXPECT_EQ (error->domain, SLIM_PLUGIN_ERROR);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_DUPLICATE_NAME);
  // Names the rejected file and the one that holds the name.
  EXPECT_TRUE (contains (error->message, fixture ("dup-b/slim-processor-dup.so")))
      << error->message;
  EXPECT_TRUE (contains (error->message, fixture ("dup-a/slim-processor-dup.so")))
      << error->message;
  // The first registration stands.
  EXPECT_EQ (slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "dup", nullptr),
             first);
}

TEST (Registry, AliasCollidingWithANameIsADuplicate)
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;

  ASSERT_TRUE (slim_registry_scan_path (registry.get (), fixture ("good").c_str (), &error))
      << error->message;
  EXPECT_FALSE (
      slim_registry_scan_path (registry.get (), fixture ("alias-clash").c_str (), &error));
  ASSERT_NE (error, nullptr);
  GErrorPtr owned (error);
  EXPECT_EQ (error->domain, SLIM_PLUGIN_ERROR);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_DUPLICATE_NAME);
  EXPECT_TRUE (contains (error->message, fixture ("alias-clash/slim-processor-alias_clash.so")))
      << error->message;
  EXPECT_TRUE (contains (error->message, "'fixture_good'")) << error->message;
  EXPECT_EQ (
      slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "alias_clash", nullptr),
      G_TYPE_INVALID);
}

TEST (Registry, ScanCollectsEveryFailureAndKeepsTheGoodModules)
{
  // One directory mixing good and broken modules (symlinks to the fixtures).
  std::string dir = slim_test_make_tmpdir ();
  const std::vector<std::string> modules
      = { "good/slim-processor-fixture_good.so", "no-entry/slim-processor-no_entry.so",
          "wrong-abi/slim-processor-wrong_abi.so", "not-elf/slim-processor-not_elf.so" };
  for (const std::string &m : modules)
    {
      std::string link = dir + "/" + m.substr (m.find ('/') + 1);
      ASSERT_EQ (symlink (fixture (m).c_str (), link.c_str ()), 0) << link;
    }
  // Files not named like a module are ignored.
  ASSERT_TRUE (g_file_set_contents ((dir + "/README.txt").c_str (), "notes", -1, nullptr));

  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;
  EXPECT_FALSE (slim_registry_scan_path (registry.get (), dir.c_str (), &error));
  ASSERT_NE (error, nullptr);
  GErrorPtr owned (error);
  EXPECT_TRUE (contains (error->message, "3 plugin modules failed to load")) << error->message;
  for (const char *name :
       { "slim-processor-no_entry.so", "slim-processor-wrong_abi.so", "slim-processor-not_elf.so" })
    EXPECT_TRUE (contains (error->message, dir + "/" + name)) << error->message;
  EXPECT_FALSE (contains (error->message, "fixture_good")) << error->message;
  // Files are loaded in name order, so the first failure (and the code) is no_entry.
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_NO_ENTRY_POINT);
  EXPECT_NE (
      slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "fixture_good", nullptr),
      G_TYPE_INVALID);
}

TEST (Registry, BadPathsAndNames)
{
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;

  std::string missing = fixture ("no-such-dir");
  EXPECT_FALSE (slim_registry_scan_path (registry.get (), missing.c_str (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_OPEN);
  EXPECT_TRUE (contains (error->message, missing)) << error->message;
  g_clear_error (&error);

  // A file whose name does not follow slim-<kind>-<name>.so.
  std::string dir = slim_test_make_tmpdir ();
  std::string odd = dir + "/slim-widget-thing.so";
  ASSERT_TRUE (g_file_set_contents (odd.c_str (), "", 0, nullptr));
  EXPECT_FALSE (slim_registry_load_module (registry.get (), odd.c_str (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_OPEN);
  EXPECT_TRUE (contains (error->message, odd)) << error->message;
  g_clear_error (&error);

  // Unknown lookups list the valid names (aliases included) of that kind.
  ASSERT_TRUE (slim_registry_scan_path (registry.get (), fixture ("good").c_str (), &error));
  EXPECT_EQ (
      slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "fixture_goood", &error),
      G_TYPE_INVALID);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->domain, SLIM_PLUGIN_ERROR);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_UNKNOWN_NAME);
  EXPECT_TRUE (contains (error->message, "'fixture_goood'")) << error->message;
  EXPECT_TRUE (contains (error->message, "fixture_alias, fixture_alias2, fixture_good"))
      << error->message;
  g_clear_error (&error);
  EXPECT_EQ (
      slim_registry_new_object (registry.get (), SLIM_PLUGIN_KIND_DATASET, "fixture_good", &error),
      nullptr);
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_UNKNOWN_NAME);
  EXPECT_TRUE (contains (error->message, "(none loaded)")) << error->message;
  g_clear_error (&error);
}

// ---- the real plugin directory and the default search path -----------------

TEST (Registry, BuildPluginDirHoldsTheDatasetPlugins)
{
  const char *path = g_getenv ("SLIMFLOW_PLUGIN_PATH");
  ASSERT_NE (path, nullptr) << "the test environment sets SLIMFLOW_PLUGIN_PATH";
  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;

  EXPECT_TRUE (slim_registry_scan_path (registry.get (), path, &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  for (const char *name : { "jsonl", "text" })
    {
      GType type = slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_DATASET, name, &error);
      EXPECT_NE (type, G_TYPE_INVALID) << (error ? error->message : "");
      g_clear_error (&error);
      EXPECT_TRUE (g_type_is_a (type, SLIM_TYPE_DATASET)) << name;
      const char *module
          = slim_registry_get_module_path (registry.get (), SLIM_PLUGIN_KIND_DATASET, name);
      ASSERT_NE (module, nullptr) << name;
      EXPECT_TRUE (contains (module, std::string ("/datasets/slim-dataset-") + name + ".so"))
          << module;
    }

  // scan_default reads the same variable (and the empty system path).
  RegistryPtr by_default (slim_registry_new ());
  EXPECT_TRUE (slim_registry_scan_default (by_default.get (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  EXPECT_NE (slim_registry_lookup (by_default.get (), SLIM_PLUGIN_KIND_DATASET, "jsonl", nullptr),
             G_TYPE_INVALID);
}

TEST (Registry, DefaultPathFollowsTheEnvironment)
{
  ScopedEnv system_path ("SLIMFLOW_PLUGIN_SYSTEM_PATH", "");
  std::string missing = fixture ("no-such-dir");
  std::string list = fixture ("good") + G_SEARCHPATH_SEPARATOR_S + missing;
  ScopedEnv user_path ("SLIMFLOW_PLUGIN_PATH", list.c_str ());

  RegistryPtr registry (slim_registry_new ());
  GError *error = nullptr;
  // A listed directory that does not exist is an error; the others load.
  EXPECT_FALSE (slim_registry_scan_default (registry.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_OPEN);
  EXPECT_TRUE (contains (error->message, missing)) << error->message;
  g_clear_error (&error);
  EXPECT_NE (
      slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "fixture_good", nullptr),
      G_TYPE_INVALID);
  // Only the configured paths: the real plugins were not loaded.
  EXPECT_EQ (slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_DATASET, "jsonl", nullptr),
             G_TYPE_INVALID);

  // The system path is a second list, searched after the user's.
  ScopedEnv only_system ("SLIMFLOW_PLUGIN_PATH", "");
  ScopedEnv system_good ("SLIMFLOW_PLUGIN_SYSTEM_PATH", fixture ("dup-a").c_str ());
  RegistryPtr from_system (slim_registry_new ());
  EXPECT_TRUE (slim_registry_scan_default (from_system.get (), &error))
      << (error ? error->message : "");
  g_clear_error (&error);
  EXPECT_NE (slim_registry_lookup (from_system.get (), SLIM_PLUGIN_KIND_PROCESSOR, "dup", nullptr),
             G_TYPE_INVALID);
}

// ---- static registration ---------------------------------------------------

TEST (Registry, StaticRegistration)
{
  RegistryPtr registry = make_static_registry ();
  GError *error = nullptr;

  EXPECT_EQ (
      slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "test_alias", &error),
      SLIM_TYPE_TEST_PROCESSOR);
  EXPECT_EQ (
      slim_registry_get_module_path (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "test_processor"),
      nullptr);
  PtrArrayPtr processors (slim_registry_list (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR));
  ASSERT_EQ (processors->len, 2u);
  // Sorted by name.
  EXPECT_STREQ (
      static_cast<const SlimPluginDesc *> (g_ptr_array_index (processors.get (), 0))->name,
      "test_bare");
  EXPECT_STREQ (
      static_cast<const SlimPluginDesc *> (g_ptr_array_index (processors.get (), 1))->name,
      "test_processor");

  // The same desc again is a duplicate; so is another desc using its alias.
  EXPECT_FALSE (slim_registry_add_static (registry.get (), &test_processor_desc, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_DUPLICATE_NAME);
  EXPECT_TRUE (contains (error->message, "static plugin 'test_processor'")) << error->message;
  g_clear_error (&error);
  // Descs must outlive the registry and the GType's name association: static.
  static const char *const clash_aliases[] = { "test_alias", nullptr };
  static const SlimPluginDesc clash
      = { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR,       "other", clash_aliases,
          "Alias clash",           slim_test_bare_processor_get_type };
  EXPECT_FALSE (slim_registry_add_static (registry.get (), &clash, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PLUGIN_ERROR_DUPLICATE_NAME);
  g_clear_error (&error);

  // The same name in another kind is fine (names are per kind).
  static const SlimPluginDesc same_name_saver
      = { SLIM_PLUGIN_ABI_VERSION,          SLIM_PLUGIN_KIND_SAVER,  "test_processor", nullptr,
          "A saver named like a processor", slim_test_saver_get_type };
  EXPECT_TRUE (slim_registry_add_static (registry.get (), &same_name_saver, &error))
      << error->message;
}

static GType
slim_test_invalid_get_type (void)
{
  return G_TYPE_INVALID;
}

struct BadDesc
{
  const char *label;
  SlimPluginDesc desc;
  int code;
};

TEST (Registry, StaticRegistrationChecksTheDesc)
{
  static const char *const self_alias[] = { "bad_self", nullptr };
  static const char *const twice[] = { "x_one", "x_one", nullptr };
  const BadDesc cases[] = {
    { "abi",
      { 0, SLIM_PLUGIN_KIND_PROCESSOR, "bad_abi", nullptr, "d", slim_test_bare_processor_get_type },
      SLIM_PLUGIN_ERROR_ABI_MISMATCH },
    { "kind",
      { SLIM_PLUGIN_ABI_VERSION, (SlimPluginKind)17, "bad_kind", nullptr, "d",
        slim_test_bare_processor_get_type },
      SLIM_PLUGIN_ERROR_WRONG_KIND },
    { "base",
      { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "bad_base", nullptr, "d",
        slim_test_saver_get_type },
      SLIM_PLUGIN_ERROR_WRONG_KIND },
    { "abstract",
      { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "bad_abstract", nullptr, "d",
        slim_processor_get_type },
      SLIM_PLUGIN_ERROR_WRONG_KIND },
    { "name",
      { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "Bad-Name", nullptr, "d",
        slim_test_bare_processor_get_type },
      SLIM_PLUGIN_ERROR_INIT_FAILED },
    { "alias is name",
      { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "bad_self", self_alias, "d",
        slim_test_bare_processor_get_type },
      SLIM_PLUGIN_ERROR_INIT_FAILED },
    { "alias twice",
      { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "bad_twice", twice, "d",
        slim_test_bare_processor_get_type },
      SLIM_PLUGIN_ERROR_DUPLICATE_NAME },
    { "description",
      { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "bad_desc", nullptr, "two\nlines",
        slim_test_bare_processor_get_type },
      SLIM_PLUGIN_ERROR_INIT_FAILED },
    { "invalid type",
      { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "bad_invalid", nullptr, "d",
        slim_test_invalid_get_type },
      SLIM_PLUGIN_ERROR_INIT_FAILED },
    { "get_type",
      { SLIM_PLUGIN_ABI_VERSION, SLIM_PLUGIN_KIND_PROCESSOR, "bad_get_type", nullptr, "d",
        nullptr },
      SLIM_PLUGIN_ERROR_INIT_FAILED },
  };
  RegistryPtr registry (slim_registry_new ());
  for (const BadDesc &c : cases)
    {
      GError *error = nullptr;
      EXPECT_FALSE (slim_registry_add_static (registry.get (), &c.desc, &error)) << c.label;
      ASSERT_NE (error, nullptr) << c.label;
      EXPECT_EQ (error->domain, SLIM_PLUGIN_ERROR) << c.label;
      EXPECT_EQ (error->code, c.code) << c.label << ": " << error->message;
      g_clear_error (&error);
    }
  for (SlimPluginKind kind : { SLIM_PLUGIN_KIND_PROCESSOR, SLIM_PLUGIN_KIND_SAVER })
    {
      PtrArrayPtr descs (slim_registry_list (registry.get (), kind));
      EXPECT_EQ (descs->len, 0u);
    }
}

TEST (Registry, PluginKindNames)
{
  SlimPluginKind kind = SLIM_PLUGIN_KIND_PROCESSOR;
  EXPECT_TRUE (slim_plugin_kind_from_string ("datasets", &kind));
  EXPECT_EQ (kind, SLIM_PLUGIN_KIND_DATASET);
  EXPECT_TRUE (slim_plugin_kind_from_string ("saver", &kind));
  EXPECT_EQ (kind, SLIM_PLUGIN_KIND_SAVER);
  EXPECT_FALSE (slim_plugin_kind_from_string ("saverss", &kind));
  EXPECT_FALSE (slim_plugin_kind_from_string ("", &kind));
  EXPECT_STREQ (slim_plugin_kind_to_string (SLIM_PLUGIN_KIND_RUNNER), "runner");
  EXPECT_EQ (slim_plugin_kind_to_string ((SlimPluginKind)9), nullptr);
  EXPECT_EQ (slim_plugin_kind_get_base_type (SLIM_PLUGIN_KIND_DATASET), SLIM_TYPE_DATASET);
  // The enum's nicks are the kind names (used by schemas and the CLI).
  GEnumClass *klass = static_cast<GEnumClass *> (g_type_class_ref (SLIM_TYPE_PLUGIN_KIND));
  EXPECT_STREQ (g_enum_get_value (klass, SLIM_PLUGIN_KIND_SAVER)->value_nick, "saver");
  g_type_class_unref (klass);
}

// ---- the base classes' wrappers --------------------------------------------

namespace
{

ObjectPtr<SlimTestProcessor>
make_processor (SlimRegistry *registry, int behaviour)
{
  GObject *object
      = slim_registry_new_object (registry, SLIM_PLUGIN_KIND_PROCESSOR, "test_processor", nullptr);
  EXPECT_NE (object, nullptr);
  SLIM_TEST_PROCESSOR (object)->behaviour = behaviour;
  return ObjectPtr<SlimTestProcessor> (SLIM_TEST_PROCESSOR (object));
}

} // namespace

TEST (ProcessorWrappers, PassResultsAndErrorsThrough)
{
  RegistryPtr registry = make_static_registry ();
  ObjectPtr<SlimLayer> layer (slim_layer_new (0, "model.layers.0"));
  GError *error = nullptr;

  auto ok = make_processor (registry.get (), SLIM_TEST_OK);
  SlimProcessor *p = SLIM_PROCESSOR (ok.get ());
  EXPECT_TRUE (slim_processor_validate (p, &error));
  EXPECT_TRUE (slim_processor_preprocess (p, layer.get (), &error));
  EXPECT_TRUE (slim_processor_postprocess (p, layer.get (), &error));
  EXPECT_TRUE (slim_processor_post_run (p, &error));
  EXPECT_EQ (error, nullptr);
  EXPECT_EQ (ok->n_calls, 4);
  EXPECT_STREQ (slim_processor_get_type_name (p), "test_processor");

  auto failing = make_processor (registry.get (), SLIM_TEST_FAIL_WITH_ERROR);
  p = SLIM_PROCESSOR (failing.get ());
  EXPECT_FALSE (slim_processor_preprocess (p, layer.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->domain, SLIM_NUMERIC_ERROR); // the plugin's own error, untouched
  EXPECT_STREQ (error->message, "planned failure");
  g_clear_error (&error);
  // A NULL error location is allowed.
  EXPECT_FALSE (slim_processor_post_run (p, nullptr));
}

TEST (ProcessorWrappers, FalseWithoutErrorIsCriticalAndGeneric)
{
  RegistryPtr registry = make_static_registry ();
  ObjectPtr<SlimLayer> layer (slim_layer_new (3, "model.layers.3"));
  auto bad = make_processor (registry.get (), SLIM_TEST_FAIL_WITHOUT_ERROR);
  SlimProcessor *p = SLIM_PROCESSOR (bad.get ());
  GError *error = nullptr;

  {
    ScopedExpectLog expect (G_LOG_LEVEL_CRITICAL,
                            "processor 'test_processor': postprocess returned FALSE without");
    EXPECT_FALSE (slim_processor_postprocess (p, layer.get (), &error));
  }
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->domain, SLIM_PIPELINE_ERROR);
  EXPECT_EQ (error->code, SLIM_PIPELINE_ERROR_FAILED);
  EXPECT_TRUE (contains (error->message, "test_processor")) << error->message;
  g_clear_error (&error);

  {
    ScopedExpectLog expect (G_LOG_LEVEL_CRITICAL, "validate returned FALSE without");
    EXPECT_FALSE (slim_processor_validate (p, nullptr));
  }
}

TEST (ProcessorWrappers, TrueWithErrorIsCriticalAndFails)
{
  RegistryPtr registry = make_static_registry ();
  auto bad = make_processor (registry.get (), SLIM_TEST_OK_WITH_ERROR);
  GError *error = nullptr;
  {
    ScopedExpectLog expect (G_LOG_LEVEL_CRITICAL, "post_run returned TRUE but set an error");
    EXPECT_FALSE (slim_processor_post_run (SLIM_PROCESSOR (bad.get ()), &error));
  }
  ASSERT_NE (error, nullptr);
  EXPECT_STREQ (error->message, "stray error");
  g_clear_error (&error);
  {
    // Without an error location the stray error must still be freed (ASan checks).
    ScopedExpectLog expect (G_LOG_LEVEL_CRITICAL, "validate returned TRUE but set an error");
    EXPECT_FALSE (slim_processor_validate (SLIM_PROCESSOR (bad.get ()), nullptr));
  }
}

TEST (ProcessorWrappers, DefaultsAndHooks)
{
  RegistryPtr registry = make_static_registry ();
  ObjectPtr<SlimLayer> layer (slim_layer_new (0, "model.layers.0"));
  ObjectPtr<GObject> bare (
      slim_registry_new_object (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "test_bare", nullptr));
  ASSERT_NE (bare, nullptr);
  SlimProcessor *p = SLIM_PROCESSOR (bare.get ());
  GError *error = nullptr;

  // Missing optional vfuncs succeed and the flags default to FALSE.
  EXPECT_TRUE (slim_processor_validate (p, &error));
  EXPECT_TRUE (slim_processor_preprocess (p, layer.get (), &error));
  EXPECT_TRUE (slim_processor_postprocess (p, layer.get (), &error));
  EXPECT_TRUE (slim_processor_post_run (p, &error));
  EXPECT_FALSE (slim_processor_is_data_free (p));
  EXPECT_FALSE (slim_processor_needs_kv_cache (p));
  EXPECT_FALSE (slim_processor_supports_distributed (p));

  // get_forward_hooks clears the struct even when the plugin sets nothing.
  SlimForwardHooks hooks;
  memset (&hooks, 0xab, sizeof hooks);
  slim_processor_get_forward_hooks (p, layer.get (), &hooks);
  EXPECT_EQ (hooks.linear_input, nullptr);
  EXPECT_EQ (hooks.qkv_states, nullptr);
  EXPECT_EQ (hooks.user_data, nullptr);

  auto test = make_processor (registry.get (), SLIM_TEST_OK);
  memset (&hooks, 0xab, sizeof hooks);
  slim_processor_get_forward_hooks (SLIM_PROCESSOR (test.get ()), layer.get (), &hooks);
  EXPECT_NE (hooks.linear_input, nullptr);
  EXPECT_EQ (hooks.qkv_states, nullptr);
  EXPECT_EQ (hooks.user_data, (gpointer)test.get ());
  EXPECT_TRUE (slim_processor_is_data_free (SLIM_PROCESSOR (test.get ())));
  EXPECT_TRUE (slim_processor_needs_kv_cache (SLIM_PROCESSOR (test.get ())));
  EXPECT_TRUE (slim_processor_supports_distributed (SLIM_PROCESSOR (test.get ())));
}

TEST (DatasetWrappers, PropertiesLoadAndSamples)
{
  RegistryPtr registry = make_static_registry ();
  GType type
      = slim_registry_lookup (registry.get (), SLIM_PLUGIN_KIND_DATASET, "test_dataset", nullptr);
  ASSERT_NE (type, G_TYPE_INVALID);
  ObjectPtr<SlimDataset> dataset (SLIM_DATASET (
      g_object_new (type, "path", "calib.jsonl", "max-samples", 2u, "max-length", 3u, NULL)));
  SlimDataset *d = dataset.get ();
  GError *error = nullptr;

  EXPECT_STREQ (slim_dataset_get_path (d), "calib.jsonl");
  EXPECT_EQ (slim_dataset_get_max_samples (d), 2u);
  EXPECT_EQ (slim_dataset_get_max_length (d), 3u);
  EXPECT_STREQ (slim_dataset_get_type_name (d), "test_dataset");
  EXPECT_FALSE (slim_dataset_is_loaded (d));
  EXPECT_EQ (slim_dataset_get_n_samples (d), 0u); // nothing before load

  ASSERT_TRUE (slim_dataset_load (d, nullptr, &error)) << error->message;
  EXPECT_TRUE (slim_dataset_is_loaded (d));
  ASSERT_EQ (slim_dataset_get_n_samples (d), 2u);
  gint64 n_tokens = 0;
  const gint32 *ids = slim_dataset_get_sample (d, 1, &n_tokens);
  ASSERT_NE (ids, nullptr);
  EXPECT_EQ (n_tokens, 2);
  EXPECT_EQ (ids[0], 13);
  EXPECT_EQ (ids[1], 14);

  // Loading twice is an error, not a silent reload.
  EXPECT_FALSE (slim_dataset_load (d, nullptr, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PIPELINE_ERROR_FAILED);
  g_clear_error (&error);

  // Defaults: no path (load refuses), no limits.
  ObjectPtr<SlimDataset> plain (SLIM_DATASET (g_object_new (type, NULL)));
  EXPECT_EQ (slim_dataset_get_path (plain.get ()), nullptr);
  EXPECT_EQ (slim_dataset_get_max_samples (plain.get ()), 0u);
  EXPECT_EQ (slim_dataset_get_max_length (plain.get ()), 0u);
  EXPECT_FALSE (slim_dataset_load (plain.get (), nullptr, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->domain, SLIM_CONFIG_ERROR);
  EXPECT_EQ (error->code, SLIM_CONFIG_ERROR_MISSING_KEY);
  g_clear_error (&error);
}

TEST (DatasetWrappers, LoadBreakingTheRule)
{
  RegistryPtr registry = make_static_registry ();
  ObjectPtr<SlimDataset> dataset (
      SLIM_DATASET (g_object_new (SLIM_TYPE_TEST_DATASET, "path", "x.jsonl", NULL)));
  SLIM_TEST_DATASET (dataset.get ())->behaviour = SLIM_TEST_FAIL_WITHOUT_ERROR;
  GError *error = nullptr;
  {
    ScopedExpectLog expect (G_LOG_LEVEL_CRITICAL,
                            "dataset 'test_dataset': load returned FALSE without");
    EXPECT_FALSE (slim_dataset_load (dataset.get (), nullptr, &error));
  }
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PIPELINE_ERROR_FAILED);
  g_clear_error (&error);
  EXPECT_FALSE (slim_dataset_is_loaded (dataset.get ()));
  EXPECT_EQ (slim_dataset_get_n_samples (dataset.get ()), 0u);
}

TEST (SaverWrappers, CallOrderIsEnforced)
{
  RegistryPtr registry = make_static_registry ();
  ObjectPtr<SlimLayer> layer (slim_layer_new (0, "model.layers.0"));
  ObjectPtr<GObject> object (
      slim_registry_new_object (registry.get (), SLIM_PLUGIN_KIND_SAVER, "test_saver", nullptr));
  ASSERT_NE (object, nullptr);
  SlimSaver *saver = SLIM_SAVER (object.get ());
  GError *error = nullptr;

  EXPECT_STREQ (slim_saver_get_type_name (saver), "test_saver");
  // Before begin: write_layer and finish are errors, abort has nothing to undo.
  EXPECT_FALSE (slim_saver_write_layer (saver, layer.get (), &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PIPELINE_ERROR_FAILED);
  EXPECT_TRUE (contains (error->message, "out of order")) << error->message;
  g_clear_error (&error);
  EXPECT_FALSE (slim_saver_finish (saver, &error));
  g_clear_error (&error);
  slim_saver_abort (saver);
  EXPECT_EQ (SLIM_TEST_SAVER (saver)->n_written, 0);
  EXPECT_EQ (SLIM_TEST_SAVER (saver)->n_aborted, 0);
}

namespace
{

SlimModel *
open_tiny_model ()
{
  GError *error = nullptr;
  std::string dir = slim_test_shared_path ("models/stories260K");
  SlimModel *model = slim_model_open (dir.c_str (), &error);
  EXPECT_NE (model, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  return model;
}

void
count_progress (guint, guint, gpointer user_data)
{
  (*static_cast<int *> (user_data))++;
}

} // namespace

TEST (SaverWrappers, BeginWriteFinishAndAbort)
{
  RegistryPtr registry = make_static_registry ();
  ObjectPtr<SlimModel> model (open_tiny_model ());
  ASSERT_NE (model, nullptr);
  ObjectPtr<SlimLayer> layer (slim_layer_new (0, "model.layers.0"));
  std::string out = slim_test_make_tmpdir ();
  GError *error = nullptr;

  ObjectPtr<SlimTestSaver> saver (SLIM_TEST_SAVER (g_object_new (SLIM_TYPE_TEST_SAVER, NULL)));
  SlimSaver *s = SLIM_SAVER (saver.get ());
  ASSERT_TRUE (slim_saver_begin (s, model.get (), out.c_str (), &error));
  EXPECT_FALSE (slim_saver_begin (s, model.get (), out.c_str (), &error)); // twice
  g_clear_error (&error);
  EXPECT_TRUE (slim_saver_write_layer (s, layer.get (), &error));
  EXPECT_TRUE (slim_saver_write_layer (s, layer.get (), &error));
  EXPECT_TRUE (slim_saver_finish (s, &error));
  EXPECT_EQ (saver->n_written, 2);
  slim_saver_abort (s); // after finish: nothing to undo
  EXPECT_EQ (saver->n_aborted, 0);

  ObjectPtr<SlimTestSaver> aborted (SLIM_TEST_SAVER (g_object_new (SLIM_TYPE_TEST_SAVER, NULL)));
  ASSERT_TRUE (slim_saver_begin (SLIM_SAVER (aborted.get ()), model.get (), out.c_str (), &error));
  slim_saver_abort (SLIM_SAVER (aborted.get ()));
  EXPECT_EQ (aborted->n_aborted, 1);
  EXPECT_FALSE (slim_saver_write_layer (SLIM_SAVER (aborted.get ()), layer.get (), &error));
  g_clear_error (&error);

  ObjectPtr<SlimTestSaver> bad (SLIM_TEST_SAVER (g_object_new (SLIM_TYPE_TEST_SAVER, NULL)));
  bad->behaviour = SLIM_TEST_FAIL_WITHOUT_ERROR;
  {
    ScopedExpectLog expect (G_LOG_LEVEL_CRITICAL, "saver 'test_saver': begin returned FALSE");
    EXPECT_FALSE (slim_saver_begin (SLIM_SAVER (bad.get ()), model.get (), out.c_str (), &error));
  }
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PIPELINE_ERROR_FAILED);
  g_clear_error (&error);
  // A failed begin leaves the saver unstarted.
  EXPECT_FALSE (slim_saver_write_layer (SLIM_SAVER (bad.get ()), layer.get (), &error));
  g_clear_error (&error);
}

TEST (RunnerWrappers, ChecksContextAndTheRule)
{
  RegistryPtr registry = make_static_registry ();
  ObjectPtr<SlimModel> model (open_tiny_model ());
  ASSERT_NE (model, nullptr);
  ObjectPtr<GObject> object (
      slim_registry_new_object (registry.get (), SLIM_PLUGIN_KIND_RUNNER, "test_runner", nullptr));
  ASSERT_NE (object, nullptr);
  SlimRunner *runner = SLIM_RUNNER (object.get ());
  ObjectPtr<GObject> bare (
      slim_registry_new_object (registry.get (), SLIM_PLUGIN_KIND_PROCESSOR, "test_bare", nullptr));
  PtrArrayPtr processors (g_ptr_array_new ());
  PtrArrayPtr savers (g_ptr_array_new ());
  g_ptr_array_add (processors.get (), bare.get ());
  int n_progress = 0;
  SlimRunContext ctx;
  slim_run_context_init (&ctx);
  ctx.model = model.get ();
  ctx.processors = processors.get ();
  ctx.savers = savers.get ();
  ctx.progress = count_progress;
  ctx.progress_data = &n_progress;
  GError *error = nullptr;

  // test_bare is not data-free: a dataset is required.
  EXPECT_FALSE (slim_runner_run (runner, &ctx, nullptr, &error));
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PIPELINE_ERROR_INCOMPATIBLE);
  g_clear_error (&error);
  EXPECT_EQ (n_progress, 0);

  ObjectPtr<SlimDataset> dataset (
      SLIM_DATASET (g_object_new (SLIM_TYPE_TEST_DATASET, "path", "x.jsonl", NULL)));
  ctx.dataset = dataset.get ();
  EXPECT_TRUE (slim_runner_run (runner, &ctx, nullptr, &error)) << error->message;
  EXPECT_EQ (n_progress, 1);

  // Cancelled before the start: the plugin is never called.
  GCancellable *cancellable = g_cancellable_new ();
  g_cancellable_cancel (cancellable);
  EXPECT_FALSE (slim_runner_run (runner, &ctx, cancellable, &error));
  g_object_unref (cancellable);
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
  g_clear_error (&error);
  EXPECT_EQ (n_progress, 1);

  SLIM_TEST_RUNNER (runner)->behaviour = SLIM_TEST_FAIL_WITHOUT_ERROR;
  {
    ScopedExpectLog expect (G_LOG_LEVEL_CRITICAL, "runner 'test_runner': run returned FALSE");
    EXPECT_FALSE (slim_runner_run (runner, &ctx, nullptr, &error));
  }
  ASSERT_NE (error, nullptr);
  EXPECT_EQ (error->code, SLIM_PIPELINE_ERROR_FAILED);
  g_clear_error (&error);
}

// ---- slimflow plugins ------------------------------------------------------

TEST (PluginsCommand, ListsEveryPluginWithKindAliasesAndDescription)
{
  ScopedEnv path ("SLIMFLOW_PLUGIN_PATH", fixture ("good").c_str ());
  std::string out, err;
  ASSERT_EQ (slim_test_run_cli ({ "plugins" }, &out, &err), 0) << err;
  EXPECT_TRUE (contains (out, "KIND")) << out;
  std::istringstream lines (out);
  std::string line;
  bool saw_processor = false, saw_saver = false;
  while (std::getline (lines, line))
    {
      if (contains (line, "fixture_good"))
        {
          saw_processor = true;
          EXPECT_EQ (line.rfind ("processor ", 0), 0u) << line;
          EXPECT_TRUE (contains (line, "fixture_alias, fixture_alias2")) << line;
          EXPECT_TRUE (contains (line, "Registry test fixture: a processor that changes nothing"))
              << line;
        }
      if (contains (line, "fixture_saver"))
        {
          saw_saver = true;
          EXPECT_EQ (line.rfind ("saver ", 0), 0u) << line;
        }
    }
  EXPECT_TRUE (saw_processor) << out;
  EXPECT_TRUE (saw_saver) << out;
}

TEST (PluginsCommand, ShowsPropertiesRecursively)
{
  ScopedEnv path ("SLIMFLOW_PLUGIN_PATH", fixture ("good").c_str ());
  std::string out, err;
  // By alias.
  ASSERT_EQ (slim_test_run_cli ({ "plugins", "fixture_alias" }, &out, &err), 0) << err;
  EXPECT_TRUE (contains (out, "processor fixture_good\n")) << out;
  EXPECT_TRUE (contains (out, "  ratio: number, default 0.5, range 0 .. 1\n")) << out;
  EXPECT_TRUE (contains (out, "\n    Fraction of channels touched\n")) << out;
  EXPECT_TRUE (contains (out, "  rounding: enum SlimFixtureRounding, default round-to-nearest, "
                              "choices: round-to-nearest, stochastic\n"))
      << out;
  EXPECT_TRUE (contains (out, "  targets: list of strings, default (none)\n")) << out;
  EXPECT_TRUE (contains (out, "  qconfig: object SlimFixtureQConfig\n")) << out;
  // The nested object's own properties, indented one level deeper.
  EXPECT_TRUE (contains (out, "\n      bits: integer, default 8, range 2 .. 8\n")) << out;
  EXPECT_TRUE (contains (out, "\n      symmetric: boolean, default true\n")) << out;
}

TEST (PluginsCommand, ExitCodes)
{
  std::string out, err;
  {
    ScopedEnv path ("SLIMFLOW_PLUGIN_PATH", fixture ("good").c_str ());
    EXPECT_EQ (slim_test_run_cli ({ "plugins", "no_such_plugin" }, &out, &err), 2);
    EXPECT_TRUE (contains (err, "unknown plugin 'no_such_plugin'")) << err;
    EXPECT_TRUE (contains (err, "fixture_good")) << err;
    EXPECT_EQ (slim_test_run_cli ({ "plugins", "a", "b" }, &out, &err), 2);
    EXPECT_EQ (slim_test_run_cli ({ "plugins", "--no-such-option" }, &out, &err), 2);
    EXPECT_EQ (slim_test_run_cli ({ "plugins", "--output", "x" }, &out, &err), 2);
    EXPECT_EQ (slim_test_run_cli ({ "plugins", "--help" }, &out, &err), 0);
    EXPECT_TRUE (contains (out, "--schema")) << out;
  }
  {
    ScopedEnv path ("SLIMFLOW_PLUGIN_PATH", fixture ("wrong-abi").c_str ());
    EXPECT_EQ (slim_test_run_cli ({ "plugins" }, &out, &err), 1);
    EXPECT_TRUE (contains (err, fixture ("wrong-abi/slim-processor-wrong_abi.so"))) << err;
  }
}

TEST (PluginsCommand, SchemaOfOnePluginIsJson)
{
  ScopedEnv path ("SLIMFLOW_PLUGIN_PATH", fixture ("good").c_str ());
  std::string out, err;
  ASSERT_EQ (slim_test_run_cli ({ "plugins", "--schema", "fixture_good" }, &out, &err), 0) << err;
  JsonParser *parser = json_parser_new ();
  GError *error = nullptr;
  EXPECT_TRUE (json_parser_load_from_data (parser, out.c_str (), -1, &error))
      << (error ? error->message : "") << "\n"
      << out;
  g_clear_error (&error);
  g_object_unref (parser);
  EXPECT_TRUE (contains (out, "\"ratio\"")) << out;
  EXPECT_TRUE (contains (out, "\"bits\"")) << out; // nested qconfig
}
