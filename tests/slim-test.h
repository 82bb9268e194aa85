// SPDX-License-Identifier: Apache-2.0
//
// slim-test.h: helpers shared by the GoogleTest suites.
#pragma once

#include <glib.h>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

// Expect exactly one log message of at least `level` whose text contains
// `fragment` while this object lives (GLib's g_test_expect_message for
// GoogleTest). Unexpected WARNING/CRITICAL messages fail the test.
class ScopedExpectLog
{
public:
  ScopedExpectLog (GLogLevelFlags level, const std::string &fragment);
  ~ScopedExpectLog ();
  int hits () const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ../shared (or $SLIMFLOW_SHARED_DIR), resolved against the source tree.
std::string slim_test_shared_dir ();
// Path inside the shared dir. Missing shared data is a test failure (never a
// skip): CI always has ../shared beside the project.
std::string slim_test_shared_path (const std::string &relative);
// Source tree root ($SLIMFLOW_SOURCE_DIR).
std::string slim_test_source_dir ();
// Build tree root ($SLIMFLOW_BUILD_DIR).
std::string slim_test_build_dir ();
// A fresh temporary directory removed at the end of the test program.
std::string slim_test_make_tmpdir ();
// Runs the slimflow CLI with args; returns the exit status and captures output.
int slim_test_run_cli (const std::vector<std::string> &args, std::string *out_stdout = nullptr,
                       std::string *out_stderr = nullptr);

struct GErrorDeleter
{
  void operator() (GError *e) const { g_clear_error (&e); }
};
using GErrorPtr = std::unique_ptr<GError, GErrorDeleter>;
