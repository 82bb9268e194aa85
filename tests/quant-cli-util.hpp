// SPDX-License-Identifier: Apache-2.0
//
// quant-cli-util.hpp: running `slimflow quant` from the end-to-end tests:
// a child process with extra environment and an optional file-size limit,
// and SHA-256 digests of every file of an output folder.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

struct QuantChild
{
  int exit_code = -1;  // -1 when killed by a signal
  int term_signal = 0; // the signal that ended it, 0 when it exited
  std::string out;
  std::string err;
};

struct QuantChildOptions
{
  std::vector<std::pair<std::string, std::string> > env; // set in the child
  long long fsize_limit_bytes = -1; // RLIMIT_FSIZE in the child (SIGXFSZ ignored); -1: none
};

// Runs $SLIMFLOW_CLI quant ARGS in a forked child.
QuantChild quant_cli (const std::vector<std::string> &args, const QuantChildOptions &options = {});
// Runs $SLIMFLOW_CLI ARGS (args[0] is the subcommand).
QuantChild slimflow_cli (const std::vector<std::string> &args,
                         const QuantChildOptions &options = {});

// Runs $SLIMFLOW_MPIRUN --allow-run-as-root --oversubscribe -np N
// $SLIMFLOW_CLI ARGS (args[0] is the subcommand): N ranks on this machine.
QuantChild mpirun_cli (int n_ranks,
                       const std::vector<std::string> &args,
                       const QuantChildOptions &options = {});

// file name (relative, '/'-separated) -> SHA-256 hex, every regular file below dir.
std::map<std::string, std::string> quant_folder_digests (const std::string &dir);

// The stories260K model, an example YAML of the source tree.
std::string quant_stories_model ();
std::string quant_example (const std::string &name);

// Writes text to path (test fixture files).
void quant_write_file (const std::string &path, const std::string &text);

// Names of the entries of dir ("" when missing), sorted.
std::vector<std::string> quant_list_dir (const std::string &dir);
