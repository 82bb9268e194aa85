// SPDX-License-Identifier: Apache-2.0
//
// quant-cli-util.cpp: see quant-cli-util.hpp.
#include "quant-cli-util.hpp"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include "slim-test.h"

static std::string
read_fd_all (int fd)
{
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read (fd, buf, sizeof buf)) > 0)
    s.append (buf, (size_t)n);
  return s;
}

QuantChild
quant_cli (const std::vector<std::string> &args, const QuantChildOptions &options)
{
  std::vector<std::string> all = { "quant" };
  all.insert (all.end (), args.begin (), args.end ());
  return slimflow_cli (all, options);
}

static QuantChild run_child (const std::vector<std::string> &argv_s,
                             const QuantChildOptions &options);

QuantChild
slimflow_cli (const std::vector<std::string> &args, const QuantChildOptions &options)
{
  const char *cli = g_getenv ("SLIMFLOW_CLI");
  if (cli == nullptr)
    {
      ADD_FAILURE () << "SLIMFLOW_CLI is not set";
      return QuantChild ();
    }
  std::vector<std::string> argv_s = { cli };
  argv_s.insert (argv_s.end (), args.begin (), args.end ());
  return run_child (argv_s, options);
}

QuantChild
mpirun_cli (int n_ranks, const std::vector<std::string> &args, const QuantChildOptions &options)
{
  const char *cli = g_getenv ("SLIMFLOW_CLI");
  const char *mpirun = g_getenv ("SLIMFLOW_MPIRUN");
  if (cli == nullptr || mpirun == nullptr)
    {
      ADD_FAILURE () << "SLIMFLOW_CLI or SLIMFLOW_MPIRUN is not set";
      return QuantChild ();
    }
  std::vector<std::string> argv_s
      = { mpirun, "--allow-run-as-root", "--oversubscribe", "-np", std::to_string (n_ranks), cli };
  argv_s.insert (argv_s.end (), args.begin (), args.end ());
  // Open MPI leaks at MPI_Init and unmaps its components at MPI_Finalize:
  // LeakSanitizer cannot suppress those reports, so the ranks run without
  // leak detection (the other sanitizer checks stay on; tests/meson.build)
  QuantChildOptions ranks = options;
  const char *asan = g_getenv ("ASAN_OPTIONS");
  ranks.env.push_back (
      { "ASAN_OPTIONS", std::string (asan != nullptr ? asan : "") + ":detect_leaks=0" });
  return run_child (argv_s, ranks);
}

static QuantChild
run_child (const std::vector<std::string> &argv_in, const QuantChildOptions &options)
{
  QuantChild result;
  g_autofree char *out_path = g_build_filename (g_get_tmp_dir (), "slim-quant-out-XXXXXX", NULL);
  g_autofree char *err_path = g_build_filename (g_get_tmp_dir (), "slim-quant-err-XXXXXX", NULL);
  int out_fd = g_mkstemp (out_path), err_fd = g_mkstemp (err_path);
  std::vector<std::string> argv_s = argv_in;
  std::vector<char *> argv;
  for (std::string &a : argv_s)
    argv.push_back (a.data ());
  argv.push_back (nullptr);

  pid_t pid = fork ();
  if (pid == 0)
    {
      dup2 (out_fd, 1);
      dup2 (err_fd, 2);
      for (const auto &kv : options.env)
        setenv (kv.first.c_str (), kv.second.c_str (), 1);
      if (options.fsize_limit_bytes >= 0)
        {
          struct rlimit lim
              = { (rlim_t)options.fsize_limit_bytes, (rlim_t)options.fsize_limit_bytes };
          signal (SIGXFSZ, SIG_IGN); /* writes then fail with EFBIG */
          setrlimit (RLIMIT_FSIZE, &lim);
        }
      execv (argv[0], argv.data ());
      _exit (127);
    }
  int status = 0;
  waitpid (pid, &status, 0);
  lseek (out_fd, 0, SEEK_SET);
  lseek (err_fd, 0, SEEK_SET);
  result.out = read_fd_all (out_fd);
  result.err = read_fd_all (err_fd);
  close (out_fd);
  close (err_fd);
  g_unlink (out_path);
  g_unlink (err_path);
  if (WIFEXITED (status))
    result.exit_code = WEXITSTATUS (status);
  else if (WIFSIGNALED (status))
    result.term_signal = WTERMSIG (status);
  return result;
}

static void
digest_dir (const std::string &root,
            const std::string &rel,
            std::map<std::string, std::string> *out)
{
  std::string dir = rel.empty () ? root : root + "/" + rel;
  GDir *d = g_dir_open (dir.c_str (), 0, nullptr);
  if (d == nullptr)
    return;
  const char *name;
  while ((name = g_dir_read_name (d)) != nullptr)
    {
      std::string r = rel.empty () ? name : rel + "/" + name;
      std::string path = root + "/" + r;
      if (g_file_test (path.c_str (), G_FILE_TEST_IS_DIR))
        digest_dir (root, r, out);
      else
        {
          gchar *data = nullptr;
          gsize n = 0;
          if (g_file_get_contents (path.c_str (), &data, &n, nullptr))
            {
              gchar *hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *)data, n);
              (*out)[r] = hex;
              g_free (hex);
              g_free (data);
            }
        }
    }
  g_dir_close (d);
}

std::map<std::string, std::string>
quant_folder_digests (const std::string &dir)
{
  std::map<std::string, std::string> out;
  digest_dir (dir, "", &out);
  return out;
}

std::string
quant_stories_model ()
{
  return slim_test_shared_path ("models/stories260K");
}

std::string
quant_example (const std::string &name)
{
  return slim_test_source_dir () + "/examples/" + name;
}

void
quant_write_file (const std::string &path, const std::string &text)
{
  ASSERT_TRUE (g_file_set_contents (path.c_str (), text.data (), (gssize)text.size (), nullptr))
      << path;
}

std::vector<std::string>
quant_list_dir (const std::string &dir)
{
  std::vector<std::string> names;
  GDir *d = g_dir_open (dir.c_str (), 0, nullptr);
  if (d == nullptr)
    return names;
  const char *name;
  while ((name = g_dir_read_name (d)) != nullptr)
    names.emplace_back (name);
  g_dir_close (d);
  std::sort (names.begin (), names.end ());
  return names;
}
