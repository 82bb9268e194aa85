// SPDX-License-Identifier: Apache-2.0
//
// test-spill.cpp: the spill stores (memory, HDF5), budget-driven
// activation spilling, run checkpoints and the work dir protocol.
#include "slim-test.h"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "slim-activations.h"
#include "slim-checkpoint.h"
#include "slim-error.h"
#include "slim-spill-factory.h"
#include "slim-spill-hdf5.h"
#include "slim-spill-memory.h"
#include "slim-spill.h"
#include "slim-workdir.h"

namespace
{

// ---- helpers ------------------------------------------------------------------

// A tensor of the given dtype and shape filled with seeded random bytes
// (every bit pattern, NaN payloads included: the stores must be bit-exact).
SlimTensor *
random_tensor (const char *name, SlimDType dtype, std::vector<gint64> shape, guint32 seed)
{
  GError *error = nullptr;
  SlimTensor *tensor = slim_tensor_new (name, dtype, (guint)shape.size (), shape.data (), &error);
  EXPECT_NE (tensor, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  if (tensor == nullptr)
    return nullptr;
  GRand *rand = g_rand_new_with_seed (seed);
  guint8 *data = static_cast<guint8 *> (slim_tensor_get_data_mut (tensor));
  for (gsize i = 0; i < slim_tensor_get_n_bytes (tensor); i++)
    data[i] = (guint8)g_rand_int_range (rand, 0, 256);
  g_rand_free (rand);
  return tensor;
}

// A float32 (n_tokens, hidden) activation with seeded random finite values.
SlimTensor *
random_activation (gint64 n_tokens, gint64 hidden, guint32 seed)
{
  SlimTensor *tensor = slim_tensor_new_2d ("act", SLIM_DTYPE_F32, n_tokens, hidden);
  GRand *rand = g_rand_new_with_seed (seed);
  float *data = static_cast<float *> (slim_tensor_get_data_mut (tensor)); /* (n_tokens, hidden) */
  for (gint64 i = 0; i < n_tokens * hidden; i++)
    data[i] = (float)g_rand_double_range (rand, -8.0, 8.0);
  g_rand_free (rand);
  return tensor;
}

void
expect_same_tensor (const SlimTensor *a, const SlimTensor *b)
{
  ASSERT_NE (a, nullptr);
  ASSERT_NE (b, nullptr);
  EXPECT_EQ (slim_tensor_get_dtype (a), slim_tensor_get_dtype (b));
  ASSERT_EQ (slim_tensor_get_n_dims (a), slim_tensor_get_n_dims (b));
  for (guint i = 0; i < slim_tensor_get_n_dims (a); i++)
    EXPECT_EQ (slim_tensor_get_shape (a)[i], slim_tensor_get_shape (b)[i]) << "axis " << i;
  ASSERT_EQ (slim_tensor_get_n_bytes (a), slim_tensor_get_n_bytes (b));
  // Bit-identical, not approximately equal: no tolerance.
  if (slim_tensor_get_n_bytes (a) > 0)
    {
      EXPECT_EQ (
          memcmp (slim_tensor_get_data (a), slim_tensor_get_data (b), slim_tensor_get_n_bytes (a)),
          0);
    }
}

std::string
read_file (const std::string &path)
{
  char *contents = nullptr;
  gsize length = 0;
  EXPECT_TRUE (g_file_get_contents (path.c_str (), &contents, &length, nullptr)) << path;
  std::string s (contents != nullptr ? contents : "", length);
  g_free (contents);
  return s;
}

void
write_file (const std::string &path, const std::string &contents)
{
  ASSERT_TRUE (
      g_file_set_contents (path.c_str (), contents.data (), (gssize)contents.size (), nullptr))
      << path;
}

gint64
file_size (const std::string &path)
{
  GStatBuf st;
  return g_stat (path.c_str (), &st) == 0 ? (gint64)st.st_size : -1;
}

bool
exists (const std::string &path)
{
  return g_file_test (path.c_str (), G_FILE_TEST_EXISTS);
}

// Redirects fd 2 to a file while alive; text() returns what was written.
class StderrCapture
{
public:
  StderrCapture ()
  {
    path_ = slim_test_make_tmpdir () + "/stderr.txt";
    fflush (stderr);
    saved_ = dup (2);
    int fd = g_open (path_.c_str (), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2 (fd, 2);
    close (fd);
  }
  ~StderrCapture ()
  {
    restore ();
  }
  std::string
  text ()
  {
    restore ();
    return read_file (path_);
  }

private:
  void
  restore ()
  {
    if (saved_ >= 0)
      {
        fflush (stderr);
        dup2 (saved_, 2);
        close (saved_);
        saved_ = -1;
      }
  }
  std::string path_;
  int saved_ = -1;
};

struct ObjectDeleter
{
  void
  operator() (gpointer object) const
  {
    if (object != nullptr)
      g_object_unref (object);
  }
};
template <typename T> using ObjectPtr = std::unique_ptr<T, ObjectDeleter>;

struct TensorDeleter
{
  void
  operator() (SlimTensor *t) const
  {
    if (t != nullptr)
      slim_tensor_unref (t);
  }
};
using TensorPtr = std::unique_ptr<SlimTensor, TensorDeleter>;

// ---- spill stores: the same tests for both implementations ---------------------

enum class StoreKind
{
  MEMORY,
  HDF5
};

class SpillStoreTest : public ::testing::TestWithParam<StoreKind>
{
protected:
  void
  SetUp () override
  {
    dir_ = slim_test_make_tmpdir ();
    if (GetParam () == StoreKind::MEMORY)
      spill_ = SLIM_SPILL (slim_spill_memory_new ());
    else
      {
        GError *error = nullptr;
        spill_ = SLIM_SPILL (slim_spill_hdf5_create ((dir_ + "/spill.h5").c_str (), &error));
        ASSERT_NE (spill_, nullptr) << error->message;
      }
  }
  void
  TearDown () override
  {
    g_clear_object (&spill_);
  }
  std::string dir_;
  SlimSpill *spill_ = nullptr;
};

TEST_P (SpillStoreTest, RoundTripEveryDtype)
{
  for (int d = 0; d < SLIM_N_DTYPES; d++)
    {
      SlimDType dtype = (SlimDType)d;
      SCOPED_TRACE (slim_dtype_get_name (dtype));
      std::string key = std::string ("model.layers.0/") + slim_dtype_get_name (dtype);
      TensorPtr in (random_tensor ("x", dtype, { 3, 4, 6 }, 100 + d));
      GError *error = nullptr;
      ASSERT_TRUE (slim_spill_put (spill_, key.c_str (), in.get (), &error)) << error->message;
      EXPECT_TRUE (slim_spill_contains (spill_, key.c_str ()));
      TensorPtr out (slim_spill_get (spill_, key.c_str (), &error));
      ASSERT_NE (out, nullptr) << error->message;
      expect_same_tensor (in.get (), out.get ());
      EXPECT_STREQ (slim_tensor_get_name (out.get ()), "x") << "the name comes back too";
    }
}

TEST_P (SpillStoreTest, EdgeShapesAndKeys)
{
  // A scalar, an empty tensor, a 1-D packed tensor and a 6-D one; keys
  // that are not valid HDF5 link names as they stand.
  struct Case
  {
    const char *key;
    SlimDType dtype;
    std::vector<gint64> shape;
  } cases[] = {
    { "scalar", SLIM_DTYPE_F32, {} },
    { "empty/0 rows", SLIM_DTYPE_F32, { 0, 16 } },
    { ".hidden", SLIM_DTYPE_U4X2, { 10 } },
    { "100%/%2F..", SLIM_DTYPE_I8, { 1, 2, 1, 2, 1, 3 } },
    { "ünïcode ключ", SLIM_DTYPE_BF16, { 5, 1 } },
  };
  guint32 seed = 7;
  for (const Case &c : cases)
    {
      SCOPED_TRACE (c.key);
      TensorPtr in (random_tensor ("x", c.dtype, c.shape, seed++));
      GError *error = nullptr;
      ASSERT_TRUE (slim_spill_put (spill_, c.key, in.get (), &error)) << error->message;
    }
  seed = 7;
  for (const Case &c : cases)
    {
      SCOPED_TRACE (c.key);
      TensorPtr in (random_tensor ("x", c.dtype, c.shape, seed++));
      GError *error = nullptr;
      TensorPtr out (slim_spill_get (spill_, c.key, &error));
      ASSERT_NE (out, nullptr) << error->message;
      expect_same_tensor (in.get (), out.get ());
    }
  EXPECT_FALSE (slim_spill_contains (spill_, "100%"));
}

TEST_P (SpillStoreTest, ReplaceRemoveClear)
{
  GError *error = nullptr;
  TensorPtr a (random_tensor ("a", SLIM_DTYPE_F32, { 4, 8 }, 1));
  TensorPtr b (random_tensor ("b", SLIM_DTYPE_F32, { 4, 8 }, 2));    // same shape: in place
  TensorPtr c (random_tensor ("c", SLIM_DTYPE_I32, { 2, 3, 5 }, 3)); // other shape and dtype
  ASSERT_TRUE (slim_spill_put (spill_, "k", a.get (), &error));
  ASSERT_TRUE (slim_spill_put (spill_, "k", b.get (), &error));
  TensorPtr out (slim_spill_get (spill_, "k", &error));
  expect_same_tensor (b.get (), out.get ());
  EXPECT_STREQ (slim_tensor_get_name (out.get ()), "b");
  ASSERT_TRUE (slim_spill_put (spill_, "k", c.get (), &error));
  out.reset (slim_spill_get (spill_, "k", &error));
  expect_same_tensor (c.get (), out.get ());

  ASSERT_TRUE (slim_spill_put (spill_, "other", a.get (), &error));
  ASSERT_TRUE (slim_spill_remove (spill_, "k", &error));
  EXPECT_FALSE (slim_spill_contains (spill_, "k"));
  EXPECT_TRUE (slim_spill_remove (spill_, "k", &error)) << "removing an absent key is not an error";
  out.reset (slim_spill_get (spill_, "k", &error));
  EXPECT_EQ (out, nullptr);
  EXPECT_TRUE (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND));
  g_clear_error (&error);

  EXPECT_TRUE (slim_spill_contains (spill_, "other"));
  ASSERT_TRUE (slim_spill_clear (spill_, &error));
  EXPECT_FALSE (slim_spill_contains (spill_, "other"));
}

TEST_P (SpillStoreTest, ConcurrentUse)
{
  // Four threads put and get their own keys at once: the HDF5 store must
  // serialize the (non-thread-safe) library calls.
  std::vector<std::thread> threads;
  std::vector<int> failures (4, 0);
  for (int t = 0; t < 4; t++)
    threads.emplace_back ([this, t, &failures] () {
      for (int i = 0; i < 20; i++)
        {
          std::string key = "t" + std::to_string (t) + "/" + std::to_string (i % 5);
          TensorPtr in (random_tensor ("x", SLIM_DTYPE_F32, { 7, 33 }, 1000 * t + i));
          GError *error = nullptr;
          if (!slim_spill_put (spill_, key.c_str (), in.get (), &error))
            {
              failures[t]++;
              g_clear_error (&error);
              continue;
            }
          TensorPtr out (slim_spill_get (spill_, key.c_str (), &error));
          if (out == nullptr
              || memcmp (slim_tensor_get_data (out.get ()), slim_tensor_get_data (in.get ()),
                         slim_tensor_get_n_bytes (in.get ()))
                     != 0)
            failures[t]++;
          g_clear_error (&error);
        }
    });
  for (std::thread &t : threads)
    t.join ();
  for (int t = 0; t < 4; t++)
    EXPECT_EQ (failures[t], 0) << "thread " << t;
}

INSTANTIATE_TEST_SUITE_P (Stores,
                          SpillStoreTest,
                          ::testing::Values (StoreKind::MEMORY, StoreKind::HDF5),
                          [] (const ::testing::TestParamInfo<StoreKind> &info) {
                            return info.param == StoreKind::MEMORY ? "memory" : "hdf5";
                          });

// ---- HDF5 specifics ---------------------------------------------------------------

TEST (SpillHdf5, ReopenedFileKeepsTensors)
{
  std::string path = slim_test_make_tmpdir () + "/spill.h5";
  GError *error = nullptr;
  TensorPtr in (random_tensor ("x", SLIM_DTYPE_F16, { 9, 10 }, 5));
  {
    ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_create (path.c_str (), &error));
    ASSERT_NE (spill, nullptr) << error->message;
    ASSERT_TRUE (slim_spill_put (SLIM_SPILL (spill.get ()), "x", in.get (), &error));
  }
  ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_open (path.c_str (), &error));
  ASSERT_NE (spill, nullptr) << error->message;
  TensorPtr out (slim_spill_get (SLIM_SPILL (spill.get ()), "x", &error));
  expect_same_tensor (in.get (), out.get ());
}

TEST (SpillHdf5, OverwritingASampleDoesNotGrowTheFile)
{
  // A layer loop re-puts every sample with the same shape once per layer.
  std::string path = slim_test_make_tmpdir () + "/spill.h5";
  GError *error = nullptr;
  ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_create (path.c_str (), &error));
  ASSERT_NE (spill, nullptr);
  gint64 size_after_first = -1;
  for (int layer = 0; layer < 20; layer++)
    {
      for (int s = 0; s < 3; s++)
        {
          TensorPtr act (random_activation (100 + s, 64, layer * 10 + s));
          std::string key = "inputs/" + std::to_string (s);
          ASSERT_TRUE (
              slim_spill_put (SLIM_SPILL (spill.get ()), key.c_str (), act.get (), &error));
        }
      if (layer == 0)
        size_after_first = file_size (path);
    }
  EXPECT_GT (size_after_first, 3 * 100 * 64 * 4);
  EXPECT_EQ (file_size (path), size_after_first);
}

TEST (SpillHdf5, GarbageFileIsAnError)
{
  std::string path = slim_test_make_tmpdir () + "/spill.h5";
  write_file (path, std::string (4096, 'x'));
  GError *error = nullptr;
  StderrCapture capture;
  ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_open (path.c_str (), &error));
  std::string printed = capture.text ();
  EXPECT_EQ (spill, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID));
  EXPECT_NE (strstr (error->message, "HDF5"), nullptr)
      << "the HDF5 error stack is in the message: " << error->message;
  EXPECT_EQ (printed, "") << "HDF5 must not print its error stack";
  g_clear_error (&error);

  spill.reset (slim_spill_hdf5_open ((path + ".missing").c_str (), &error));
  EXPECT_EQ (spill, nullptr);
  EXPECT_TRUE (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT));
  g_clear_error (&error);

  // A valid HDF5 file that is not a spill file.
  ObjectPtr<SlimSpillHdf5> other (slim_spill_hdf5_create (path.c_str (), &error));
  other.reset ();
  std::string contents = read_file (path);
  ASSERT_NE (contents.find ("slimflow_spill_version"), std::string::npos);
}

TEST (SpillHdf5, TruncatedFileIsAnError)
{
  std::string path = slim_test_make_tmpdir () + "/spill.h5";
  GError *error = nullptr;
  {
    ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_create (path.c_str (), &error));
    for (int s = 0; s < 4; s++)
      {
        TensorPtr act (random_activation (200, 64, s));
        ASSERT_TRUE (slim_spill_put (SLIM_SPILL (spill.get ()), std::to_string (s).c_str (),
                                     act.get (), &error));
      }
  }
  gint64 full = file_size (path);
  for (gint64 cut : { full / 2, full - 1, (gint64)100 })
    {
      SCOPED_TRACE (cut);
      std::string copy = path + ".cut";
      write_file (copy, read_file (path).substr (0, (size_t)cut));
      StderrCapture capture;
      ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_open (copy.c_str (), &error));
      bool failed = spill == nullptr;
      // If the header survived, reading every sample back must fail instead.
      for (int s = 0; !failed && s < 4; s++)
        {
          TensorPtr out (
              slim_spill_get (SLIM_SPILL (spill.get ()), std::to_string (s).c_str (), &error));
          failed = out == nullptr;
        }
      spill.reset ();
      EXPECT_TRUE (failed);
      ASSERT_NE (error, nullptr);
      EXPECT_EQ (error->domain, SLIM_FORMAT_ERROR) << error->message;
      g_clear_error (&error);
      EXPECT_EQ (capture.text (), "");
    }
}

TEST (SpillHdf5, CorruptDataFailsItsChecksum)
{
  std::string path = slim_test_make_tmpdir () + "/spill.h5";
  GError *error = nullptr;
  TensorPtr act (random_activation (64, 32, 3));
  {
    ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_create (path.c_str (), &error));
    ASSERT_TRUE (slim_spill_put (SLIM_SPILL (spill.get ()), "a", act.get (), &error));
  }
  std::string contents = read_file (path);
  std::string needle (static_cast<const char *> (slim_tensor_get_data (act.get ())), 64);
  size_t at = contents.find (needle);
  ASSERT_NE (at, std::string::npos) << "raw data not found in the file";
  contents[at + 1000] ^= 0x10;
  write_file (path, contents);

  StderrCapture capture;
  ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_open (path.c_str (), &error));
  ASSERT_NE (spill, nullptr) << error->message;
  TensorPtr out (slim_spill_get (SLIM_SPILL (spill.get ()), "a", &error));
  EXPECT_EQ (out, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_INVALID))
      << (error ? error->message : "no error");
  g_clear_error (&error);
  EXPECT_EQ (capture.text (), "");
}

TEST (SpillHdf5, FileSizeLimitIsAnErrorNotACrash)
{
  // A child process with RLIMIT_FSIZE of 256 KiB (a full disk without
  // root) puts a 1 MiB tensor: put must fail with a GError.
  std::string path = slim_test_make_tmpdir () + "/spill.h5";
  fflush (nullptr);
  pid_t pid = fork ();
  ASSERT_GE (pid, 0);
  if (pid == 0)
    {
      struct rlimit limit = { 256 * 1024, 256 * 1024 };
      signal (SIGXFSZ, SIG_IGN); // write(2) then fails with EFBIG
      setrlimit (RLIMIT_FSIZE, &limit);
      GError *error = nullptr;
      SlimSpillHdf5 *spill = slim_spill_hdf5_create (path.c_str (), &error);
      if (spill == nullptr)
        _exit (2);
      SlimTensor *big = random_activation (1024, 256, 1); // 1 MiB
      gboolean ok = slim_spill_put (SLIM_SPILL (spill), "big", big, &error);
      _exit (!ok && error != nullptr && error->message[0] != '\0' ? 0 : 3);
    }
  int status = 0;
  ASSERT_EQ (waitpid (pid, &status, 0), pid);
  ASSERT_TRUE (WIFEXITED (status)) << "child crashed with signal " << WTERMSIG (status);
  EXPECT_EQ (WEXITSTATUS (status), 0);
}

TEST (Spill, FactoryHonoursEnvironment)
{
  std::string dir = slim_test_make_tmpdir ();
  std::string saved = g_getenv ("SLIM_SPILL") != nullptr ? g_getenv ("SLIM_SPILL") : "";
  GError *error = nullptr;

  g_setenv ("SLIM_SPILL", "memory", TRUE);
  ObjectPtr<SlimSpill> spill (slim_spill_new (SLIM_SPILL_KIND_HDF5, dir.c_str (), &error));
  EXPECT_TRUE (SLIM_IS_SPILL_MEMORY (spill.get ()));
  EXPECT_FALSE (exists (dir + "/" SLIM_SPILL_FILE_NAME));

  g_setenv ("SLIM_SPILL", "hdf5", TRUE);
  spill.reset (slim_spill_new (SLIM_SPILL_KIND_MEMORY, dir.c_str (), &error));
  EXPECT_TRUE (SLIM_IS_SPILL_HDF5 (spill.get ()));
  EXPECT_TRUE (exists (dir + "/" SLIM_SPILL_FILE_NAME));

  g_setenv ("SLIM_SPILL", "floppy", TRUE);
  spill.reset (slim_spill_new (SLIM_SPILL_KIND_AUTO, dir.c_str (), &error));
  EXPECT_EQ (spill, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  g_clear_error (&error);

  g_unsetenv ("SLIM_SPILL");
  spill.reset (slim_spill_new (SLIM_SPILL_KIND_AUTO, nullptr, &error));
  EXPECT_EQ (spill, nullptr) << "HDF5 without a work dir";
  g_clear_error (&error);
  spill.reset (slim_spill_new (SLIM_SPILL_KIND_AUTO, dir.c_str (), &error));
  EXPECT_TRUE (SLIM_IS_SPILL_HDF5 (spill.get ()));

  if (!saved.empty ())
    g_setenv ("SLIM_SPILL", saved.c_str (), TRUE);
}

// ---- activations ---------------------------------------------------------------

const gint64 kHidden = 48;

// Sample lengths of a small calibration set (tokens per sample).
const std::vector<gint64> kSampleTokens = { 17, 5, 40, 1, 23, 64, 9, 31 };

gint64
sample_bytes (size_t i)
{
  return kSampleTokens[i] * kHidden * (gint64)sizeof (float);
}

void
fill_activations (SlimActivations *acts, guint32 seed)
{
  for (size_t i = 0; i < kSampleTokens.size (); i++)
    {
      TensorPtr t (random_activation (kSampleTokens[i], kHidden, seed + (guint32)i));
      GError *error = nullptr;
      ASSERT_TRUE (slim_activations_set (acts, (guint)i, t.get (), &error)) << error->message;
    }
}

TEST (Activations, BudgetDrivenSpillingIsBitIdentical)
{
  std::string dir = slim_test_make_tmpdir ();
  GError *error = nullptr;
  ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_create ((dir + "/spill.h5").c_str (), &error));
  ASSERT_NE (spill, nullptr);
  guint n = (guint)kSampleTokens.size ();

  ObjectPtr<SlimActivations> in_memory (slim_activations_new ("inputs", n, G_MAXUINT64, nullptr));
  fill_activations (in_memory.get (), 42);
  EXPECT_EQ (slim_activations_get_spilled_count (in_memory.get ()), 0u);

  // Budgets: nothing, about a third of the total, everything.
  gint64 total = 0;
  for (size_t i = 0; i < kSampleTokens.size (); i++)
    total += sample_bytes (i);
  for (guint64 budget : { (guint64)0, (guint64)total / 3, (guint64)total })
    {
      SCOPED_TRACE (budget);
      ObjectPtr<SlimActivations> acts (
          slim_activations_new ("inputs", n, budget, SLIM_SPILL (spill.get ())));
      fill_activations (acts.get (), 42);
      // The documented rule, replayed: resident while it fits, in set order.
      guint64 resident = 0;
      guint spilled = 0;
      for (size_t i = 0; i < kSampleTokens.size (); i++)
        {
          bool fits = resident + (guint64)sample_bytes (i) <= budget;
          EXPECT_EQ (slim_activations_is_spilled (acts.get (), (guint)i), !fits) << "sample " << i;
          if (fits)
            resident += (guint64)sample_bytes (i);
          else
            spilled++;
        }
      EXPECT_EQ (slim_activations_get_resident_bytes (acts.get ()), resident);
      EXPECT_LE (slim_activations_get_resident_bytes (acts.get ()), budget);
      EXPECT_EQ (slim_activations_get_spilled_count (acts.get ()), spilled);
      for (guint i = 0; i < n; i++)
        {
          TensorPtr a (slim_activations_get (in_memory.get (), i, &error));
          TensorPtr b (slim_activations_get (acts.get (), i, &error));
          ASSERT_NE (b, nullptr) << error->message;
          expect_same_tensor (a.get (), b.get ());
        }
      ASSERT_TRUE (slim_activations_clear (acts.get (), &error));
      EXPECT_EQ (slim_activations_get_spilled_count (acts.get ()), 0u);
      EXPECT_EQ (slim_activations_get_resident_bytes (acts.get ()), 0u);
      EXPECT_FALSE (slim_spill_contains (SLIM_SPILL (spill.get ()), "inputs/0"));
    }
  EXPECT_GT (total / 3, sample_bytes (0)) << "the middle budget must keep some samples resident";
}

TEST (Activations, ReplacingMovesBetweenMemoryAndStore)
{
  ObjectPtr<SlimSpillMemory> spill (slim_spill_memory_new ());
  GError *error = nullptr;
  guint64 budget = 10 * kHidden * sizeof (float);
  ObjectPtr<SlimActivations> acts (
      slim_activations_new ("next", 2, budget, SLIM_SPILL (spill.get ())));
  TensorPtr small (random_activation (10, kHidden, 1));
  TensorPtr big (random_activation (11, kHidden, 2));

  ASSERT_TRUE (slim_activations_set (acts.get (), 0, big.get (), &error));
  EXPECT_TRUE (slim_activations_is_spilled (acts.get (), 0));
  EXPECT_TRUE (slim_spill_contains (SLIM_SPILL (spill.get ()), "next/0"));
  ASSERT_TRUE (slim_activations_set (acts.get (), 0, small.get (), &error));
  EXPECT_FALSE (slim_activations_is_spilled (acts.get (), 0));
  EXPECT_FALSE (slim_spill_contains (SLIM_SPILL (spill.get ()), "next/0"))
      << "the old copy is dropped";
  EXPECT_EQ (slim_activations_get_resident_bytes (acts.get ()), budget);
  ASSERT_TRUE (slim_activations_set (acts.get (), 1, small.get (), &error));
  EXPECT_TRUE (slim_activations_is_spilled (acts.get (), 1)) << "budget already used by sample 0";
  EXPECT_EQ (slim_activations_get_spilled_count (acts.get ()), 1u);

  EXPECT_TRUE (slim_activations_is_set (acts.get (), 0));
  TensorPtr out (slim_activations_get (acts.get (), 1, &error));
  expect_same_tensor (small.get (), out.get ());
}

TEST (Activations, LayerAfterLayerReusesTheSpillFile)
{
  // Budget 0: every sample spilled; 10 "layers" replace every sample with
  // new values of the same shape.  The file must not grow, and the values
  // read back are the last ones.
  std::string path = slim_test_make_tmpdir () + "/spill.h5";
  GError *error = nullptr;
  ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_create (path.c_str (), &error));
  guint n = (guint)kSampleTokens.size ();
  ObjectPtr<SlimActivations> acts (
      slim_activations_new ("inputs", n, 0, SLIM_SPILL (spill.get ())));
  fill_activations (acts.get (), 0);
  gint64 size = file_size (path);
  for (guint32 layer = 1; layer <= 10; layer++)
    fill_activations (acts.get (), 100 * layer);
  EXPECT_EQ (file_size (path), size);
  EXPECT_EQ (slim_activations_get_spilled_count (acts.get ()), n);
  for (guint i = 0; i < n; i++)
    {
      TensorPtr expected (random_activation (kSampleTokens[i], kHidden, 1000 + i));
      TensorPtr got (slim_activations_get (acts.get (), i, &error));
      expect_same_tensor (expected.get (), got.get ());
    }
}

TEST (Activations, InvalidInputsAreErrors)
{
  GError *error = nullptr;
  ObjectPtr<SlimActivations> acts (slim_activations_new ("inputs", 3, 0, nullptr));
  TensorPtr t (random_activation (4, kHidden, 1));
  EXPECT_FALSE (slim_activations_set (acts.get (), 0, t.get (), &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_OUT_OF_MEMORY));
  g_clear_error (&error);
  EXPECT_FALSE (slim_activations_is_set (acts.get (), 0));

  acts.reset (slim_activations_new ("inputs", 3, G_MAXUINT64, nullptr));
  TensorPtr wrong_dtype (random_tensor ("x", SLIM_DTYPE_BF16, { 4, kHidden }, 1));
  EXPECT_FALSE (slim_activations_set (acts.get (), 0, wrong_dtype.get (), &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
  ASSERT_TRUE (slim_activations_set (acts.get (), 0, t.get (), &error));
  TensorPtr other_width (random_activation (4, kHidden + 1, 1));
  EXPECT_FALSE (slim_activations_set (acts.get (), 1, other_width.get (), &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_NUMERIC_ERROR, SLIM_NUMERIC_ERROR_SHAPE_MISMATCH));
  g_clear_error (&error);
  TensorPtr unset (slim_activations_get (acts.get (), 2, &error));
  EXPECT_EQ (unset, nullptr);
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
}

// ---- checkpoints ------------------------------------------------------------------

SlimCheckpointHashes
make_hashes (const char *config_text)
{
  SlimCheckpointHashes hashes;
  char *config = slim_checkpoint_hash_config (config_text, strlen (config_text));
  char *model = slim_checkpoint_hash_config ("model", 5);
  char *dataset = slim_checkpoint_hash_config ("dataset", 7);
  g_strlcpy (hashes.config, config, sizeof hashes.config);
  g_strlcpy (hashes.model, model, sizeof hashes.model);
  g_strlcpy (hashes.dataset, dataset, sizeof hashes.dataset);
  g_free (config);
  g_free (model);
  g_free (dataset);
  return hashes;
}

GBytes *
bytes_of (const std::string &s)
{
  return g_bytes_new (s.data (), s.size ());
}

std::string
string_of (GBytes *bytes)
{
  if (bytes == nullptr)
    return "<null>";
  gsize n = 0;
  const char *data = static_cast<const char *> (g_bytes_get_data (bytes, &n));
  return std::string (data != nullptr ? data : "", n);
}

// Saves a checkpoint of layer `layer` whose inputs come from seed.
void
save_checkpoint (
    const std::string &dir, gint64 layer, guint32 seed, SlimSpill *spill, guint64 budget)
{
  SlimCheckpointHashes hashes = make_hashes ("apiversion: modelslim_v1\n");
  ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_new (&hashes));
  slim_checkpoint_set_layer_done (ckpt.get (), layer);
  GBytes *state = bytes_of ("smooth scales for layer " + std::to_string (layer));
  GBytes *empty = g_bytes_new (nullptr, 0);
  GBytes *progress = bytes_of (std::string ("shard=2\0offset=4096", 19));
  slim_checkpoint_set_processor_state (ckpt.get (), "iter_smooth/0", state);
  slim_checkpoint_set_processor_state (ckpt.get (), "empty", empty);
  slim_checkpoint_set_saver_progress (ckpt.get (), "ascendv1", progress);
  g_bytes_unref (state);
  g_bytes_unref (empty);
  g_bytes_unref (progress);
  ObjectPtr<SlimActivations> inputs (
      slim_activations_new ("next", (guint)kSampleTokens.size (), budget, spill));
  fill_activations (inputs.get (), seed);
  GError *error = nullptr;
  ASSERT_TRUE (slim_checkpoint_save (ckpt.get (), dir.c_str (), inputs.get (), &error))
      << error->message;
}

TEST (Checkpoint, RoundTrip)
{
  std::string dir = slim_test_make_tmpdir ();
  GError *error = nullptr;
  ObjectPtr<SlimSpillHdf5> spill (slim_spill_hdf5_create ((dir + "/spill.h5").c_str (), &error));
  // Half the inputs come from the spill file, half from memory.
  save_checkpoint (dir, 5, 77, SLIM_SPILL (spill.get ()), 2 * sample_bytes (0));
  EXPECT_FALSE (exists (dir + "/" SLIM_CHECKPOINT_TMP_FILE_NAME));

  SlimCheckpointHashes hashes = make_hashes ("apiversion: modelslim_v1\n");
  ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_load (dir.c_str (), &hashes, &error));
  ASSERT_NE (ckpt, nullptr) << error->message;
  EXPECT_EQ (slim_checkpoint_get_layer_done (ckpt.get ()), 5);
  EXPECT_STREQ (slim_checkpoint_get_hashes (ckpt.get ())->model, hashes.model);
  EXPECT_EQ (string_of (slim_checkpoint_get_processor_state (ckpt.get (), "iter_smooth/0")),
             "smooth scales for layer 5");
  EXPECT_EQ (string_of (slim_checkpoint_get_processor_state (ckpt.get (), "empty")), "");
  EXPECT_EQ (string_of (slim_checkpoint_get_saver_progress (ckpt.get (), "ascendv1")),
             std::string ("shard=2\0offset=4096", 19));
  EXPECT_EQ (slim_checkpoint_get_saver_progress (ckpt.get (), "iter_smooth/0"), nullptr);
  gchar **names = slim_checkpoint_dup_processor_names (ckpt.get ());
  ASSERT_EQ (g_strv_length (names), 2u);
  EXPECT_STREQ (names[0], "empty");
  EXPECT_STREQ (names[1], "iter_smooth/0");
  g_strfreev (names);

  ASSERT_EQ (slim_checkpoint_get_n_inputs (ckpt.get ()), kSampleTokens.size ());
  ObjectPtr<SlimActivations> expected (
      slim_activations_new ("e", (guint)kSampleTokens.size (), G_MAXUINT64, nullptr));
  fill_activations (expected.get (), 77);
  ObjectPtr<SlimActivations> restored (slim_activations_new (
      "r", (guint)kSampleTokens.size (), sample_bytes (0), SLIM_SPILL (spill.get ())));
  ASSERT_TRUE (slim_checkpoint_read_inputs (ckpt.get (), restored.get (), &error))
      << error->message;
  EXPECT_GT (slim_activations_get_spilled_count (restored.get ()), 0u);
  for (guint i = 0; i < kSampleTokens.size (); i++)
    {
      TensorPtr a (slim_activations_get (expected.get (), i, &error));
      TensorPtr b (slim_activations_get (restored.get (), i, &error));
      expect_same_tensor (a.get (), b.get ());
    }

  ObjectPtr<SlimActivations> wrong_count (slim_activations_new ("w", 3, G_MAXUINT64, nullptr));
  EXPECT_FALSE (slim_checkpoint_read_inputs (ckpt.get (), wrong_count.get (), &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE));
  g_clear_error (&error);
}

TEST (Checkpoint, HashMismatchIsRefusedNamingWhatDiffers)
{
  std::string dir = slim_test_make_tmpdir ();
  ObjectPtr<SlimSpillMemory> spill (slim_spill_memory_new ());
  save_checkpoint (dir, 2, 1, SLIM_SPILL (spill.get ()), G_MAXUINT64);
  GError *error = nullptr;

  const char *fragments[] = { "the config", "the model", "the calibration dataset" };
  for (int which = 0; which < 3; which++)
    {
      SCOPED_TRACE (fragments[which]);
      SlimCheckpointHashes hashes = make_hashes ("apiversion: modelslim_v1\n");
      char *field = which == 0 ? hashes.config : which == 1 ? hashes.model : hashes.dataset;
      field[0] = field[0] == 'a' ? 'b' : 'a';
      ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_load (dir.c_str (), &hashes, &error));
      EXPECT_EQ (ckpt, nullptr);
      ASSERT_TRUE (g_error_matches (error, SLIM_PIPELINE_ERROR, SLIM_PIPELINE_ERROR_INCOMPATIBLE));
      std::string message = error->message;
      g_clear_error (&error);
      for (int other = 0; other < 3; other++)
        {
          bool named = message.find (fragments[other]) != std::string::npos;
          EXPECT_EQ (named, other == which) << message;
        }
    }
  // NULL expected hashes: no check.
  ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_load (dir.c_str (), nullptr, &error));
  EXPECT_NE (ckpt, nullptr);
}

TEST (Checkpoint, LeftoverTemporaryFileIsNeverLoaded)
{
  std::string dir = slim_test_make_tmpdir ();
  ObjectPtr<SlimSpillMemory> spill (slim_spill_memory_new ());
  GError *error = nullptr;
  SlimCheckpointHashes hashes = make_hashes ("apiversion: modelslim_v1\n");

  // No checkpoint at all, only the partial file of a run killed while
  // writing its first checkpoint: "no checkpoint".
  write_file (dir + "/" SLIM_CHECKPOINT_TMP_FILE_NAME, std::string (1000, '\0'));
  ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_load (dir.c_str (), &hashes, &error));
  EXPECT_EQ (ckpt, nullptr);
  EXPECT_TRUE (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT));
  g_clear_error (&error);

  // Layer 3 saved; a crash while writing layer 4 leaves a truncated
  // partial file (the first half of a complete layer-4 checkpoint).
  std::string other = slim_test_make_tmpdir ();
  save_checkpoint (other, 4, 9, SLIM_SPILL (spill.get ()), G_MAXUINT64);
  std::string complete4 = read_file (other + "/" SLIM_CHECKPOINT_FILE_NAME);
  save_checkpoint (dir, 3, 9, SLIM_SPILL (spill.get ()), G_MAXUINT64);
  write_file (dir + "/" SLIM_CHECKPOINT_TMP_FILE_NAME, complete4.substr (0, complete4.size () / 2));
  ckpt.reset (slim_checkpoint_load (dir.c_str (), &hashes, &error));
  ASSERT_NE (ckpt, nullptr) << error->message;
  EXPECT_EQ (slim_checkpoint_get_layer_done (ckpt.get ()), 3);

  // The next save overwrites the leftover and replaces the checkpoint.
  save_checkpoint (dir, 4, 9, SLIM_SPILL (spill.get ()), G_MAXUINT64);
  ckpt.reset (slim_checkpoint_load (dir.c_str (), &hashes, &error));
  ASSERT_NE (ckpt, nullptr);
  EXPECT_EQ (slim_checkpoint_get_layer_done (ckpt.get ()), 4);
  EXPECT_FALSE (exists (dir + "/" SLIM_CHECKPOINT_TMP_FILE_NAME));
}

TEST (Checkpoint, CorruptCheckpointIsAnError)
{
  std::string dir = slim_test_make_tmpdir ();
  ObjectPtr<SlimSpillMemory> spill (slim_spill_memory_new ());
  save_checkpoint (dir, 1, 3, SLIM_SPILL (spill.get ()), G_MAXUINT64);
  std::string path = dir + "/" SLIM_CHECKPOINT_FILE_NAME;
  std::string good = read_file (path);
  GError *error = nullptr;
  StderrCapture capture;
  for (const std::string &bad : { std::string ("not hdf5"), good.substr (0, good.size () / 3) })
    {
      write_file (path, bad);
      ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_load (dir.c_str (), nullptr, &error));
      EXPECT_EQ (ckpt, nullptr);
      ASSERT_NE (error, nullptr);
      EXPECT_EQ (error->domain, SLIM_FORMAT_ERROR) << error->message;
      g_clear_error (&error);
    }
  EXPECT_EQ (capture.text (), "");
}

TEST (Checkpoint, FailedSaveKeepsThePreviousCheckpoint)
{
  // A child limited to files of 64 KiB fails to save a ~100 KiB
  // checkpoint; the previous (small) one must still load afterwards.
  std::string dir = slim_test_make_tmpdir ();
  SlimCheckpointHashes hashes = make_hashes ("apiversion: modelslim_v1\n");
  {
    ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_new (&hashes));
    slim_checkpoint_set_layer_done (ckpt.get (), 0);
    GError *error = nullptr;
    ASSERT_TRUE (slim_checkpoint_save (ckpt.get (), dir.c_str (), nullptr, &error));
  }
  fflush (nullptr);
  pid_t pid = fork ();
  ASSERT_GE (pid, 0);
  if (pid == 0)
    {
      struct rlimit limit = { 64 * 1024, 64 * 1024 };
      signal (SIGXFSZ, SIG_IGN);
      setrlimit (RLIMIT_FSIZE, &limit);
      SlimCheckpoint *ckpt = slim_checkpoint_new (&hashes);
      slim_checkpoint_set_layer_done (ckpt, 1);
      SlimActivations *inputs = slim_activations_new ("next", 1, G_MAXUINT64, nullptr);
      SlimTensor *big = random_activation (512, 64, 1); // 128 KiB
      GError *error = nullptr;
      gboolean ok = slim_activations_set (inputs, 0, big, &error)
                    && slim_checkpoint_save (ckpt, dir.c_str (), inputs, &error);
      _exit (!ok && error != nullptr ? 0 : 3);
    }
  int status = 0;
  ASSERT_EQ (waitpid (pid, &status, 0), pid);
  ASSERT_TRUE (WIFEXITED (status)) << "child crashed with signal " << WTERMSIG (status);
  EXPECT_EQ (WEXITSTATUS (status), 0);
  GError *error = nullptr;
  ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_load (dir.c_str (), &hashes, &error));
  ASSERT_NE (ckpt, nullptr) << error->message;
  EXPECT_EQ (slim_checkpoint_get_layer_done (ckpt.get ()), 0);
  EXPECT_FALSE (exists (dir + "/" SLIM_CHECKPOINT_TMP_FILE_NAME)) << "the failed save cleans up";
}

TEST (Checkpoint, SigkillDuringSavesLeavesALoadableCheckpoint)
{
  // A child saves checkpoints for layers 0, 1, 2, ... as fast as it can
  // (inputs derived from the layer index); the parent SIGKILLs it after a
  // few milliseconds.  Whatever moment the kill hits, the checkpoint on
  // disk must load and hold exactly the inputs of the layer it names.
  SlimCheckpointHashes hashes = make_hashes ("apiversion: modelslim_v1\n");
  for (int delay_ms : { 5, 30, 90, 150 })
    {
      SCOPED_TRACE (delay_ms);
      std::string dir = slim_test_make_tmpdir ();
      fflush (nullptr);
      pid_t pid = fork ();
      ASSERT_GE (pid, 0);
      if (pid == 0)
        {
          for (gint64 layer = 0;; layer++)
            {
              SlimCheckpoint *ckpt = slim_checkpoint_new (&hashes);
              slim_checkpoint_set_layer_done (ckpt, layer);
              SlimActivations *inputs = slim_activations_new ("next", 2, G_MAXUINT64, nullptr);
              for (guint i = 0; i < 2; i++)
                {
                  SlimTensor *t = random_activation (300, 64, (guint32)(layer * 2 + i));
                  slim_activations_set (inputs, i, t, nullptr);
                  slim_tensor_unref (t);
                }
              if (!slim_checkpoint_save (ckpt, dir.c_str (), inputs, nullptr))
                _exit (3);
              g_object_unref (inputs);
              g_object_unref (ckpt);
            }
        }
      g_usleep (delay_ms * 1000);
      kill (pid, SIGKILL);
      int status = 0;
      ASSERT_EQ (waitpid (pid, &status, 0), pid);
      ASSERT_TRUE (WIFSIGNALED (status)) << "the child stopped by itself: " << status;
      GError *error = nullptr;
      ObjectPtr<SlimCheckpoint> ckpt (slim_checkpoint_load (dir.c_str (), &hashes, &error));
      if (ckpt == nullptr)
        {
          // Killed before the first checkpoint was complete.
          EXPECT_TRUE (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) << error->message;
          g_clear_error (&error);
          continue;
        }
      gint64 layer = slim_checkpoint_get_layer_done (ckpt.get ());
      ObjectPtr<SlimActivations> restored (slim_activations_new ("r", 2, G_MAXUINT64, nullptr));
      ASSERT_TRUE (slim_checkpoint_read_inputs (ckpt.get (), restored.get (), &error))
          << error->message;
      for (guint i = 0; i < 2; i++)
        {
          TensorPtr expected (random_activation (300, 64, (guint32)(layer * 2 + i)));
          TensorPtr got (slim_activations_get (restored.get (), i, &error));
          expect_same_tensor (expected.get (), got.get ());
        }
    }
}

// ---- hashes ------------------------------------------------------------------------

std::string
copy_model (const std::string &from)
{
  std::string to = slim_test_make_tmpdir () + "/model";
  g_mkdir (to.c_str (), 0755);
  for (const char *name : { "config.json", "model.safetensors" })
    write_file (to + "/" + name, read_file (from + "/" + name));
  return to;
}

std::string
model_hash (const std::string &dir)
{
  GError *error = nullptr;
  char *hex = slim_checkpoint_hash_model (dir.c_str (), &error);
  EXPECT_NE (hex, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  std::string s = hex != nullptr ? hex : "";
  g_free (hex);
  return s;
}

TEST (Hashes, ModelHashCoversConfigAndHeadersNotWeights)
{
  std::string original = slim_test_shared_path ("models/stories260K");
  std::string copy = copy_model (original);
  std::string base = model_hash (original);
  ASSERT_EQ (base.size (), 64u);
  EXPECT_EQ (model_hash (copy), base) << "a copy of the folder hashes the same";

  std::string config = read_file (copy + "/config.json");
  write_file (copy + "/config.json", config + " ");
  EXPECT_NE (model_hash (copy), base) << "config.json changed";
  write_file (copy + "/config.json", config);

  std::string weights = read_file (copy + "/model.safetensors");
  guint64 header_bytes = 0;
  memcpy (&header_bytes, weights.data (), 8);
  header_bytes = GUINT64_FROM_LE (header_bytes);
  ASSERT_LT (header_bytes + 8, weights.size ());
  std::string edited = weights;
  edited[edited.size () - 1] ^= 1; // a weight byte: documented as not detected
  write_file (copy + "/model.safetensors", edited);
  EXPECT_EQ (model_hash (copy), base);
  edited = weights;
  size_t quote = edited.find ("\"", 8);
  ASSERT_LT (quote, 8 + header_bytes);
  edited[quote + 1] ^= 0x20; // a tensor name in the header
  write_file (copy + "/model.safetensors", edited);
  EXPECT_NE (model_hash (copy), base);
  write_file (copy + "/model.safetensors", weights + std::string (8, '\0'));
  EXPECT_NE (model_hash (copy), base) << "file size is hashed";

  // Errors, not crashes: a bogus header length, no safetensors, no folder.
  std::string bogus = weights;
  memset (&bogus[0], 0xff, 8);
  write_file (copy + "/model.safetensors", bogus);
  GError *error = nullptr;
  char *hex = slim_checkpoint_hash_model (copy.c_str (), &error);
  EXPECT_EQ (hex, nullptr);
  EXPECT_TRUE (g_error_matches (error, SLIM_FORMAT_ERROR, SLIM_FORMAT_ERROR_HEADER));
  g_clear_error (&error);
  g_unlink ((copy + "/model.safetensors").c_str ());
  hex = slim_checkpoint_hash_model (copy.c_str (), &error);
  EXPECT_EQ (hex, nullptr);
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
  hex = slim_checkpoint_hash_model ((copy + "/nope").c_str (), &error);
  EXPECT_EQ (hex, nullptr);
  EXPECT_NE (error, nullptr);
  g_clear_error (&error);
}

TEST (Hashes, TokenIdsAndConfig)
{
  const gint64 a[] = { 1, 2 }, b[] = { 3 }, c[] = { 1 }, d[] = { 2, 3 };
  const gint64 *split1[] = { a, b }, *split2[] = { c, d };
  const gsize n1[] = { 2, 1 }, n2[] = { 1, 2 };
  char *h1 = slim_checkpoint_hash_token_ids (2, n1, split1);
  char *h1_again = slim_checkpoint_hash_token_ids (2, n1, split1);
  char *h2 = slim_checkpoint_hash_token_ids (2, n2, split2);
  char *h0 = slim_checkpoint_hash_token_ids (0, nullptr, nullptr);
  EXPECT_STREQ (h1, h1_again);
  EXPECT_STRNE (h1, h2) << "same ids, other sample boundaries";
  EXPECT_STRNE (h1, h0);
  EXPECT_EQ (strlen (h1), 64u);
  g_free (h1);
  g_free (h1_again);
  g_free (h2);
  g_free (h0);

  const char *text = "spec:\n  process: []\n";
  char *config = slim_checkpoint_hash_config (text, strlen (text));
  char *reference = g_compute_checksum_for_string (G_CHECKSUM_SHA256, text, -1);
  EXPECT_STREQ (config, reference);
  g_free (config);
  g_free (reference);
}

// ---- work dir -------------------------------------------------------------------------

TEST (Workdir, RefusesToWriteIntoTheModel)
{
  std::string root = slim_test_make_tmpdir ();
  std::string model = root + "/model";
  g_mkdir (model.c_str (), 0755);
  write_file (model + "/config.json", "{}");
  ASSERT_EQ (symlink (model.c_str (), (root + "/link").c_str ()), 0);
  for (const std::string &save :
       { model, model + "/", root + "/link", model + "/out", root + "/./model/../model", root })
    {
      SCOPED_TRACE (save);
      GError *error = nullptr;
      ObjectPtr<SlimWorkdir> wd (slim_workdir_new (save.c_str (), model.c_str (), &error));
      EXPECT_EQ (wd, nullptr);
      EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
      g_clear_error (&error);
    }
  EXPECT_EQ (read_file (model + "/config.json"), "{}");
  GError *error = nullptr;
  ObjectPtr<SlimWorkdir> wd (
      slim_workdir_new ((root + "/model-w8a8").c_str (), model.c_str (), &error));
  EXPECT_NE (wd, nullptr) << "a sibling whose name starts like the model is fine";
}

TEST (Workdir, CommitMovesTheOutputIntoPlace)
{
  std::string root = slim_test_make_tmpdir ();
  std::string save = root + "/sub/out";
  GError *error = nullptr;
  ObjectPtr<SlimWorkdir> wd (slim_workdir_new (save.c_str (), nullptr, &error));
  ASSERT_NE (wd, nullptr) << error->message;
  EXPECT_EQ (std::string (slim_workdir_get_work_dir (wd.get ())), save + SLIM_WORKDIR_WORK_SUFFIX);
  ASSERT_TRUE (slim_workdir_prepare (wd.get (), FALSE, &error)) << error->message;
  std::string staging = slim_workdir_get_staging_dir (wd.get ());
  EXPECT_EQ (staging.rfind (save + SLIM_WORKDIR_STAGING_INFIX, 0), 0u) << staging;
  EXPECT_FALSE (exists (save)) << "nothing at save_path before commit";
  write_file (staging + "/model.safetensors", "weights");
  g_mkdir (std::string (staging + "/debug_info").c_str (), 0755);
  write_file (staging + "/debug_info/debug_info.json", "{}");

  ASSERT_TRUE (slim_workdir_commit (wd.get (), &error)) << error->message;
  EXPECT_FALSE (exists (staging));
  EXPECT_EQ (read_file (save + "/model.safetensors"), "weights");
  EXPECT_EQ (read_file (save + "/" SLIM_WORKDIR_MANIFEST_NAME),
             "# slimflow output manifest v1\ndebug_info/debug_info.json\nmodel.safetensors\n");
  EXPECT_TRUE (exists (slim_workdir_get_work_dir (wd.get ())));
  ASSERT_TRUE (slim_workdir_remove_work_area (wd.get (), &error));
  EXPECT_FALSE (exists (slim_workdir_get_work_dir (wd.get ())));

  // A second run into the same save_path replaces the previous output.
  wd.reset (slim_workdir_new (save.c_str (), nullptr, &error));
  ASSERT_NE (wd, nullptr) << error->message;
  ASSERT_TRUE (slim_workdir_prepare (wd.get (), FALSE, &error));
  write_file (std::string (slim_workdir_get_staging_dir (wd.get ())) + "/quant_model.safetensors",
              "new");
  ASSERT_TRUE (slim_workdir_commit (wd.get (), &error)) << error->message;
  EXPECT_EQ (read_file (save + "/quant_model.safetensors"), "new");
  EXPECT_FALSE (exists (save + "/model.safetensors"));
  EXPECT_FALSE (exists (save + "/debug_info"));
  GDir *dir = g_dir_open ((root + "/sub").c_str (), 0, nullptr);
  std::vector<std::string> names;
  for (const char *n; (n = g_dir_read_name (dir)) != nullptr;)
    names.push_back (n);
  g_dir_close (dir);
  std::sort (names.begin (), names.end ());
  EXPECT_EQ (names, (std::vector<std::string>{ "out", "out" SLIM_WORKDIR_WORK_SUFFIX }))
      << "no staging or old folder left behind";
}

TEST (Workdir, EmptyDirectoryIsReplacedUserFilesAreRefused)
{
  std::string root = slim_test_make_tmpdir ();
  std::string save = root + "/out";
  g_mkdir (save.c_str (), 0755);
  GError *error = nullptr;
  ObjectPtr<SlimWorkdir> wd (slim_workdir_new (save.c_str (), nullptr, &error));
  ASSERT_NE (wd, nullptr);
  ASSERT_TRUE (slim_workdir_prepare (wd.get (), FALSE, &error));
  write_file (std::string (slim_workdir_get_staging_dir (wd.get ())) + "/a", "1");
  ASSERT_TRUE (slim_workdir_commit (wd.get (), &error)) << error->message;
  EXPECT_EQ (read_file (save + "/a"), "1");

  // A user file next to a previous output: refused up front, untouched.
  write_file (save + "/notes.txt", "mine");
  wd.reset (slim_workdir_new (save.c_str (), nullptr, &error));
  EXPECT_EQ (wd, nullptr);
  ASSERT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  EXPECT_NE (strstr (error->message, "notes.txt"), nullptr) << error->message;
  g_clear_error (&error);
  EXPECT_EQ (read_file (save + "/notes.txt"), "mine");

  // A plain file at save_path: refused.
  write_file (root + "/file", "x");
  wd.reset (slim_workdir_new ((root + "/file").c_str (), nullptr, &error));
  EXPECT_EQ (wd, nullptr);
  g_clear_error (&error);

  // A user folder named like our work area is not ours to delete.
  std::string save2 = root + "/out2";
  g_mkdir ((save2 + SLIM_WORKDIR_WORK_SUFFIX).c_str (), 0755);
  wd.reset (slim_workdir_new (save2.c_str (), nullptr, &error));
  ASSERT_NE (wd, nullptr);
  EXPECT_FALSE (slim_workdir_prepare (wd.get (), FALSE, &error));
  EXPECT_TRUE (g_error_matches (error, SLIM_CONFIG_ERROR, SLIM_CONFIG_ERROR_BAD_VALUE));
  g_clear_error (&error);
  EXPECT_FALSE (slim_workdir_remove_work_area (wd.get (), &error));
  g_clear_error (&error);
  EXPECT_TRUE (exists (save2 + SLIM_WORKDIR_WORK_SUFFIX));
}

TEST (Workdir, AbortLeavesNothingAtSavePath)
{
  std::string save = slim_test_make_tmpdir () + "/out";
  GError *error = nullptr;
  ObjectPtr<SlimWorkdir> wd (slim_workdir_new (save.c_str (), nullptr, &error));
  ASSERT_TRUE (slim_workdir_prepare (wd.get (), FALSE, &error));
  std::string staging = slim_workdir_get_staging_dir (wd.get ());
  write_file (staging + "/model-00001-of-00002.safetensors", "partial");
  ASSERT_TRUE (slim_workdir_abort (wd.get (), &error));
  EXPECT_FALSE (exists (staging));
  EXPECT_FALSE (exists (save));
  EXPECT_EQ (slim_workdir_get_staging_dir (wd.get ()), nullptr);
}

TEST (Workdir, ResumeFindsTheWorkAreaAndStagingAgain)
{
  std::string save = slim_test_make_tmpdir () + "/out";
  GError *error = nullptr;
  std::string staging;
  {
    // First run: killed after writing a shard and a checkpoint.
    ObjectPtr<SlimWorkdir> wd (slim_workdir_new (save.c_str (), nullptr, &error));
    ASSERT_TRUE (slim_workdir_prepare (wd.get (), FALSE, &error));
    staging = slim_workdir_get_staging_dir (wd.get ());
    write_file (staging + "/shard-1", "done");
    write_file (std::string (slim_workdir_get_work_dir (wd.get ())) + "/" SLIM_CHECKPOINT_FILE_NAME,
                "x");
  }
  ObjectPtr<SlimWorkdir> wd (slim_workdir_new (save.c_str (), nullptr, &error));
  ASSERT_TRUE (slim_workdir_prepare (wd.get (), TRUE, &error)) << error->message;
  EXPECT_EQ (std::string (slim_workdir_get_staging_dir (wd.get ())), staging);
  EXPECT_EQ (read_file (staging + "/shard-1"), "done");
  EXPECT_TRUE (
      exists (std::string (slim_workdir_get_work_dir (wd.get ())) + "/" SLIM_CHECKPOINT_FILE_NAME));

  // Without --resume the stale run is dropped.
  wd.reset (slim_workdir_new (save.c_str (), nullptr, &error));
  ASSERT_TRUE (slim_workdir_prepare (wd.get (), FALSE, &error)) << error->message;
  EXPECT_NE (std::string (slim_workdir_get_staging_dir (wd.get ())), staging);
  EXPECT_FALSE (exists (staging));
  EXPECT_FALSE (
      exists (std::string (slim_workdir_get_work_dir (wd.get ())) + "/" SLIM_CHECKPOINT_FILE_NAME));

  // Resume whose staging folder vanished: an error, not a fresh start.
  std::string staging2 = slim_workdir_get_staging_dir (wd.get ());
  wd.reset ();
  g_rmdir (staging2.c_str ());
  wd.reset (slim_workdir_new (save.c_str (), nullptr, &error));
  EXPECT_FALSE (slim_workdir_prepare (wd.get (), TRUE, &error));
  EXPECT_TRUE (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT));
  g_clear_error (&error);
}

} // namespace
