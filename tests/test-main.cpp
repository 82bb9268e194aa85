// SPDX-License-Identifier: Apache-2.0
//
// test-main.cpp: our own main() for every GoogleTest suite.  Installs a
// GLib log writer that turns every unexpected WARNING or CRITICAL into a
// test failure (gst-check's ASSERT_CRITICAL, rebuilt for GoogleTest), and
// provides the helpers of slim-test.h.
#include "slim-test.h"

#include <glib/gstdio.h>
#include <mutex>
#include <sys/wait.h>

namespace
{
struct Expectation
{
  GLogLevelFlags level;
  std::string fragment;
  int hits;
};

std::mutex expectations_lock;
std::vector<Expectation *> expectations;
std::vector<std::string> tmpdirs;

const char *
field_value (const GLogField *fields, gsize n_fields, const char *key)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_strcmp0 (fields[i].key, key) == 0)
      return fields[i].length < 0 ? static_cast<const char *> (fields[i].value) : nullptr;
  return nullptr;
}

GLogWriterOutput
test_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer)
{
  const char *message = field_value (fields, n_fields, "MESSAGE");
  std::string text = message != nullptr ? message : "";
  {
    std::lock_guard<std::mutex> guard (expectations_lock);
    for (Expectation *e : expectations)
      if ((level & G_LOG_LEVEL_MASK) <= (e->level & G_LOG_LEVEL_MASK)
          && text.find (e->fragment) != std::string::npos)
        {
          e->hits++;
          return G_LOG_WRITER_HANDLED;
        }
  }
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    {
      const char *domain = field_value (fields, n_fields, "GLIB_DOMAIN");
      ADD_FAILURE () << "unexpected log message [" << (domain ? domain : "") << "]: " << text;
      return G_LOG_WRITER_HANDLED;
    }
  if (g_log_writer_default_would_drop (level, field_value (fields, n_fields, "GLIB_DOMAIN")))
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_standard_streams (level, fields, n_fields, nullptr);
}
} // namespace

struct ScopedExpectLog::Impl
{
  Expectation expectation;
};

ScopedExpectLog::ScopedExpectLog (GLogLevelFlags level, const std::string &fragment)
    : impl_ (new Impl{ { level, fragment, 0 } })
{
  std::lock_guard<std::mutex> guard (expectations_lock);
  expectations.push_back (&impl_->expectation);
}

ScopedExpectLog::~ScopedExpectLog ()
{
  std::lock_guard<std::mutex> guard (expectations_lock);
  for (auto it = expectations.begin (); it != expectations.end (); ++it)
    if (*it == &impl_->expectation)
      {
        expectations.erase (it);
        break;
      }
  EXPECT_GE (impl_->expectation.hits, 1)
      << "expected log message containing '" << impl_->expectation.fragment << "' never came";
}

int
ScopedExpectLog::hits () const
{
  return impl_->expectation.hits;
}

std::string
slim_test_source_dir ()
{
  const char *dir = g_getenv ("SLIMFLOW_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

std::string
slim_test_build_dir ()
{
  const char *dir = g_getenv ("SLIMFLOW_BUILD_DIR");
  return dir != nullptr ? dir : ".";
}

std::string
slim_test_shared_dir ()
{
  const char *dir = g_getenv ("SLIMFLOW_SHARED_DIR");
  std::string path = dir != nullptr ? dir : "../shared";
  if (!g_path_is_absolute (path.c_str ()))
    path = slim_test_source_dir () + "/" + path;
  return path;
}

std::string
slim_test_shared_path (const std::string &relative)
{
  std::string path = slim_test_shared_dir () + "/" + relative;
  EXPECT_TRUE (g_file_test (path.c_str (), G_FILE_TEST_EXISTS))
      << "shared data missing: " << path << " (set SLIMFLOW_SHARED_DIR)";
  return path;
}

std::string
slim_test_make_tmpdir ()
{
  GError *error = nullptr;
  char *dir = g_dir_make_tmp ("slimflow-test-XXXXXX", &error);
  EXPECT_NE (dir, nullptr) << (error ? error->message : "");
  g_clear_error (&error);
  std::string path = dir != nullptr ? dir : "/tmp";
  g_free (dir);
  tmpdirs.push_back (path);
  return path;
}

int
slim_test_run_cli (const std::vector<std::string> &args, std::string *out_stdout,
                   std::string *out_stderr)
{
  const char *cli = g_getenv ("SLIMFLOW_CLI");
  EXPECT_NE (cli, nullptr) << "SLIMFLOW_CLI not set";
  if (cli == nullptr)
    return -1;
  std::vector<char *> argv;
  argv.push_back (const_cast<char *> (cli));
  for (const std::string &a : args)
    argv.push_back (const_cast<char *> (a.c_str ()));
  argv.push_back (nullptr);
  char *out = nullptr;
  char *err = nullptr;
  int status = 0;
  GError *error = nullptr;
  gboolean ok = g_spawn_sync (nullptr, argv.data (), nullptr, G_SPAWN_DEFAULT, nullptr, nullptr,
                              &out, &err, &status, &error);
  EXPECT_TRUE (ok) << (error ? error->message : "");
  g_clear_error (&error);
  if (out_stdout != nullptr)
    *out_stdout = out != nullptr ? out : "";
  if (out_stderr != nullptr)
    *out_stderr = err != nullptr ? err : "";
  g_free (out);
  g_free (err);
  if (!ok)
    return -1;
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  return 128 + (WIFSIGNALED (status) ? WTERMSIG (status) : 0);
}

static void
remove_tree (const std::string &path)
{
  GDir *dir = g_dir_open (path.c_str (), 0, nullptr);
  if (dir != nullptr)
    {
      const char *name;
      while ((name = g_dir_read_name (dir)) != nullptr)
        {
          std::string child = path + "/" + name;
          if (g_file_test (child.c_str (), G_FILE_TEST_IS_DIR)
              && !g_file_test (child.c_str (), G_FILE_TEST_IS_SYMLINK))
            remove_tree (child);
          else
            g_unlink (child.c_str ());
        }
      g_dir_close (dir);
    }
  g_rmdir (path.c_str ());
}

int
main (int argc, char **argv)
{
  ::testing::InitGoogleTest (&argc, argv);
  g_log_set_writer_func (test_log_writer, nullptr, nullptr);
  int result = RUN_ALL_TESTS ();
  if (g_getenv ("SLIMFLOW_KEEP_TMP") == nullptr)
    for (const std::string &d : tmpdirs)
      remove_tree (d);
  return result;
}
