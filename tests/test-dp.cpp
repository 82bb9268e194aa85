// SPDX-License-Identifier: Apache-2.0
//
// test-dp.cpp: data-parallel calibration end to end: `mpirun -np N
// slimflow quant` with the dp_layer_wise (or auto) runner on stories260K
// gives an output folder whose every file has the SHA-256 of the same run
// with layer_wise in one process, for N = 1, 2, 3, 4 (7 samples: blocks of
// 4+3, 3+2+2 and 2+2+2+1, so uneven partitions too).  The comparison is exact: the
// reductions are arranged to be (slim-schedule.h).  Also: only rank 0
// writes (nothing else appears beside save_path), processors that do not
// support distributed runs (in spec.process or spec.prior) are refused
// before the run, and runners that
// run one process are refused under mpirun.  Built only with MPI.
#include <string>
#include <vector>

#include <glib/gstdio.h>

#include "quant-cli-util.hpp"
#include "slim-comm.h"
#include "slim-test.h"

namespace
{

const std::vector<std::string> kCalib = { "--max_samples", "7", "--max_length", "48" };

std::vector<std::string>
args_for (const std::string &save, const std::string &config)
{
  std::vector<std::string> a
      = { "quant",         "--model_path", quant_stories_model (), "--save_path", save,
          "--config_path", config };
  a.insert (a.end (), kCalib.begin (), kCalib.end ());
  return a;
}

// The example with `runner:` set under spec.
std::string
with_runner (const std::string &dir, const std::string &example, const std::string &runner)
{
  gchar *text = nullptr;
  EXPECT_TRUE (g_file_get_contents (quant_example (example).c_str (), &text, nullptr, nullptr));
  std::string yaml (text != nullptr ? text : "");
  g_free (text);
  size_t pos = yaml.find ("\nspec:\n");
  EXPECT_NE (pos, std::string::npos);
  yaml.insert (pos + 7, "  runner: " + runner + "\n");
  std::string path = dir + "/" + runner + "-" + example;
  quant_write_file (path, yaml);
  return path;
}

struct DpCase
{
  const char *example;
  const char *runner; // under mpirun
  int ranks;
};

class DpEqualsLayerWise : public ::testing::TestWithParam<DpCase>
{
};

TEST_P (DpEqualsLayerWise, SameBytes)
{
  const DpCase &c = GetParam ();
  std::string tmp = slim_test_make_tmpdir ();
  std::string out = tmp + "/out";
  g_mkdir (out.c_str (), 0755);
  std::string lw = out + "/lw", dp = out + "/dp";

  QuantChild a = slimflow_cli (args_for (lw, with_runner (tmp, c.example, "layer_wise")));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  QuantChild b = mpirun_cli (c.ranks, args_for (dp, with_runner (tmp, c.example, c.runner)));
  ASSERT_EQ (b.exit_code, 0) << b.err << b.out;
  auto da = quant_folder_digests (lw), db = quant_folder_digests (dp);
  EXPECT_GE (da.size (), 4u);
  EXPECT_EQ (da, db);
  // the same per-layer errors in the summary, printed once (rank 0)
  size_t at = a.out.find ("layer  relative"), bt = b.out.find ("layer  relative");
  ASSERT_NE (at, std::string::npos) << a.out;
  ASSERT_NE (bt, std::string::npos) << b.out;
  EXPECT_EQ (a.out.substr (at), b.out.substr (bt));
  EXPECT_EQ (b.out.find ("wall time"), b.out.rfind ("wall time")) << b.out;
  // rank 0 wrote the output; nothing else is left beside it
  EXPECT_EQ (quant_list_dir (out), std::vector<std::string> ({ "dp", "lw" }));
}

INSTANTIATE_TEST_SUITE_P (
    Dp,
    DpEqualsLayerWise,
    ::testing::Values (
        DpCase{ "dense-w8a8.yaml", "dp_layer_wise", 2 },
        DpCase{ "dense-w8a8.yaml", "dp_layer_wise", 3 },
        DpCase{ "dense-w8a8.yaml", "dp_layer_wise", 4 },
        DpCase{ "dense-w8a8.yaml", "auto", 2 },
        DpCase{ "dense-w8a8-iter-smooth.yaml", "dp_layer_wise", 2 },
        DpCase{ "dense-w8a8-mix-pdmix.yaml", "dp_layer_wise", 2 },
        // GPTQ: parallel forwards, each Hessian accumulated on its owner in sample order
        DpCase{ "dense-w4a16-gptq.yaml", "dp_layer_wise", 1 },
        DpCase{ "dense-w4a16-gptq.yaml", "dp_layer_wise", 2 },
        DpCase{ "dense-w4a16-gptq.yaml", "dp_layer_wise", 4 }));

// GPTQ with 16-row blocks (SLIMFLOW_TEST_GPTQ_ROW_BLOCK, for both runs):
// the row blocks of one weight (down_proj, 64 rows) run on several ranks,
// which receive its Hessian's factor from the rank that factorised it
// (linear-quant.c); the bytes are still those of layer_wise.
TEST (Dp, GptqRowBlocksOverRanksSameBytes)
{
  for (int ranks : { 2, 4 })
    {
      std::string tmp = slim_test_make_tmpdir ();
      std::string lw = tmp + "/lw", dp = tmp + "/dp";
      QuantChildOptions env;
      env.env = { { "SLIMFLOW_TEST_GPTQ_ROW_BLOCK", "16" }, { "SLIMFLOW_PROFILE", "1" } };

      QuantChild a = slimflow_cli (
          args_for (lw, with_runner (tmp, "dense-w4a16-gptq.yaml", "layer_wise")), env);
      ASSERT_EQ (a.exit_code, 0) << a.err;
      QuantChild b = mpirun_cli (
          ranks, args_for (dp, with_runner (tmp, "dense-w4a16-gptq.yaml", "dp_layer_wise")), env);
      ASSERT_EQ (b.exit_code, 0) << b.err << b.out;
      // the factor went to another rank (the profile names the phase)
      EXPECT_NE (b.err.find ("gptq factor broadcast"), std::string::npos) << b.err;
      auto da = quant_folder_digests (lw), db = quant_folder_digests (dp);
      EXPECT_GE (da.size (), 4u);
      EXPECT_EQ (da, db) << ranks << " ranks";
    }
}

struct DpAdaptCase
{
  const char *model; // nullptr: stories260K; else a synthetic model
  int ranks;
};

class DpAdaptRotation : public ::testing::TestWithParam<DpAdaptCase>
{
};

// adapt_rotation stage 1 in spec.prior under dp_layer_wise: every rank
// collects the up_proj rows of its samples, the rows are exchanged in rank
// order after each layer, and every rank learns the matrix of one process
// from all rows: stage 1's message ("N rows of K linears") is the one of
// layer_wise on every rank (a rank that kept only its own rows would learn
// another matrix, and rank 0's output would differ).  The MoE models have
// an up_proj per expert, first seen at the sample that first routes a
// token to it: the entries keep one process's order too.  Stage 2 and
// linear_quant are data-free, so there is no per-layer error summary to
// compare, only the bytes.
TEST_P (DpAdaptRotation, SameBytesAsLayerWise)
{
  const DpAdaptCase c = GetParam ();
  const std::string example = "dense-w8a8-dynamic-adapt-rotation.yaml";
  std::string tmp = slim_test_make_tmpdir ();
  std::string out = tmp + "/out";
  g_mkdir (out.c_str (), 0755);
  std::string lw = out + "/lw", dp = out + "/dp";
  auto args = [&] (const std::string &save, const std::string &runner) {
    std::vector<std::string> v = args_for (save, with_runner (tmp, example, runner));
    if (c.model != nullptr)
      v[2] = slim_test_shared_path (std::string ("models/synthetic/") + c.model);
    return v;
  };

  QuantChild a = slimflow_cli (args (lw, "layer_wise"));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  QuantChild b = mpirun_cli (c.ranks, args (dp, "dp_layer_wise"));
  ASSERT_EQ (b.exit_code, 0) << b.err << b.out;
  auto da = quant_folder_digests (lw), db = quant_folder_digests (dp);
  EXPECT_GE (da.size (), 4u);
  EXPECT_EQ (da, db);
  size_t from = a.err.find ("stage 1: "), to = a.err.find (" linears", from);
  ASSERT_NE (to, std::string::npos) << a.err;
  const std::string rows = a.err.substr (from, to - from);
  if (c.model == nullptr)
    EXPECT_EQ (rows, "stage 1: 35 rows of 5") << "7 samples, one up_proj per layer";
  // once per rank
  size_t n = 0;
  for (size_t at = b.err.find (rows + " linears"); at != std::string::npos;
       at = b.err.find (rows + " linears", at + 1))
    n++;
  EXPECT_EQ (n, (size_t)c.ranks) << b.err;
  EXPECT_EQ (quant_list_dir (out), std::vector<std::string> ({ "dp", "lw" }));
}

INSTANTIATE_TEST_SUITE_P (Dp,
                          DpAdaptRotation,
                          ::testing::Values (DpAdaptCase{ nullptr, 1 },
                                             DpAdaptCase{ nullptr, 2 },
                                             DpAdaptCase{ nullptr, 4 },
                                             DpAdaptCase{ "tiny-random-qwen2-moe", 4 },
                                             DpAdaptCase{ "tiny-random-qwen2-moe", 2 }));

// --max_memory is per rank: with a 1-byte budget every rank spills its
// share to HDF5 (rank 0 in the work area, the others in a private folder
// of $TMPDIR), and the bytes do not change; no folder is left behind.
TEST (Dp, SpillingRanksSameBytes)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string scratch = tmp + "/tmpdir";
  g_mkdir (scratch.c_str (), 0755);
  QuantChild a
      = slimflow_cli (args_for (tmp + "/lw", with_runner (tmp, "dense-w8a8.yaml", "layer_wise")));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  std::vector<std::string> args
      = args_for (tmp + "/dp", with_runner (tmp, "dense-w8a8.yaml", "dp_layer_wise"));
  args.push_back ("--max_memory");
  args.push_back ("1");
  QuantChildOptions spill;
  spill.env = { { "SLIM_SPILL", "hdf5" }, { "TMPDIR", scratch } };
  QuantChild b = mpirun_cli (2, args, spill);
  ASSERT_EQ (b.exit_code, 0) << b.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/lw"), quant_folder_digests (tmp + "/dp"));
  // (Open MPI keeps its own session folder there while it runs)
  for (const std::string &name : quant_list_dir (scratch))
    EXPECT_EQ (name.rfind ("slimflow-rank-", 0), std::string::npos) << "left behind: " << name;
}

// One process (no mpirun): dp_layer_wise is one rank, the same bytes.
TEST (Dp, OneProcessEqualsLayerWise)
{
  std::string tmp = slim_test_make_tmpdir ();
  QuantChild a
      = slimflow_cli (args_for (tmp + "/lw", with_runner (tmp, "dense-w8a8.yaml", "layer_wise")));
  QuantChild b = slimflow_cli (
      args_for (tmp + "/dp", with_runner (tmp, "dense-w8a8.yaml", "dp_layer_wise")));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  ASSERT_EQ (b.exit_code, 0) << b.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/lw"), quant_folder_digests (tmp + "/dp"));
}

// smooth_quant does not support distributed runs (msModelSlim's False):
// refused on every rank with the processor named, exit 2, nothing written.
TEST (Dp, RefusesNonDistributedProcessor)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string out = tmp + "/out";
  g_mkdir (out.c_str (), 0755);
  QuantChild r = mpirun_cli (
      2,
      args_for (out + "/dp", with_runner (tmp, "dense-w8a8-smooth-quant.yaml", "dp_layer_wise")));
  EXPECT_NE (r.exit_code, 0);
  EXPECT_NE (r.err.find ("dp_layer_wise: processor 1 (smooth_quant) does not support distributed "
                         "calibration"),
             std::string::npos)
      << r.err;
  EXPECT_EQ (quant_list_dir (out), std::vector<std::string> ());
}

// A spec.prior stage runs over the ranks too: a processor there that does
// not support distributed runs is refused before any weight is read, the
// stage and the processor named, exit 2, nothing written.
TEST (Dp, RefusesNonDistributedPriorProcessor)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string out = tmp + "/out";
  g_mkdir (out.c_str (), 0755);
  std::string config = tmp + "/prior-smooth.yaml";
  quant_write_file (config, "apiversion: modelslim_v1\n"
                            "spec:\n"
                            "  runner: dp_layer_wise\n"
                            "  prior:\n"
                            "    - process:\n"
                            "        - type: smooth_quant\n"
                            "  process:\n"
                            "    - type: adapt_rotation\n"
                            "      stage: 2\n"
                            "  save:\n"
                            "    - type: ascendv1_saver\n"
                            "  dataset: mix_calib.jsonl\n");
  QuantChild r = mpirun_cli (2, args_for (out + "/dp", config));
  EXPECT_EQ (r.exit_code, 2) << r.err;
  EXPECT_NE (r.err.find ("spec.prior[0]: processor 1 (smooth_quant) does not support distributed "
                         "calibration"),
             std::string::npos)
      << r.err;
  EXPECT_EQ (quant_list_dir (out), std::vector<std::string> ());
}

// A hung rank (alive, never answering): after SLIMFLOW_MPI_TIMEOUT (3 s
// here) rank 0 stops with an error naming it, the job ends (MPI_Abort
// kills the hung rank) and nothing is at save_path.  The bound on the
// wall time is loose (the run itself takes ~1 s): it only has to tell an
// ended job from a hang, which the suite's timeout would otherwise catch.
TEST (Dp, HungRankStopsTheOthersWithItsName)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string out = tmp + "/out";
  g_mkdir (out.c_str (), 0755);
  QuantChildOptions hang;
  hang.env = { { "SLIMFLOW_MPI_TIMEOUT", "3" }, { "SLIMFLOW_TEST_STOP_RANK", "1:1:hang" } };
  gint64 t0 = g_get_monotonic_time ();
  QuantChild r = mpirun_cli (
      2, args_for (out + "/dp", with_runner (tmp, "dense-w8a8.yaml", "dp_layer_wise")), hang);
  double seconds = (double)(g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  EXPECT_NE (r.exit_code, 0);
  EXPECT_LT (seconds, 60.0);
  EXPECT_NE (r.err.find ("rank 1 did not answer for 3 s"), std::string::npos) << r.err;
  EXPECT_EQ (quant_list_dir (out), std::vector<std::string> ()) << r.err;
}

// A rank killed mid-layer (rank 1 as it starts layer 2, after every rank
// saved its checkpoint of layer 1): mpirun ends the job at once, naming
// the rank; nothing is at save_path (the work area stays, as after any
// kill); `--resume` with the same ranks goes on from layer 2 and gives the
// bytes of layer_wise.
TEST (Dp, KilledRankEndsTheJobAndResumeCompletesIdentically)
{
  std::string tmp = slim_test_make_tmpdir ();
  std::string out = tmp + "/out";
  g_mkdir (out.c_str (), 0755);
  QuantChild a = slimflow_cli (
      args_for (tmp + "/lw", with_runner (tmp, "dense-w4a16-gptq.yaml", "layer_wise")));
  ASSERT_EQ (a.exit_code, 0) << a.err;
  std::vector<std::string> args
      = args_for (out + "/dp", with_runner (tmp, "dense-w4a16-gptq.yaml", "dp_layer_wise"));
  QuantChildOptions kill;
  kill.env = { { "SLIMFLOW_MPI_TIMEOUT", "30" }, { "SLIMFLOW_TEST_STOP_RANK", "1:2:kill" } };
  gint64 t0 = g_get_monotonic_time ();
  QuantChild r = mpirun_cli (2, args, kill);
  double seconds = (double)(g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  EXPECT_NE (r.exit_code, 0);
  EXPECT_LT (seconds, 30.0);
  EXPECT_NE ((r.err + r.out).find ("process rank 1 with PID"), std::string::npos) << r.err << r.out;
  for (const std::string &name : quant_list_dir (out))
    EXPECT_NE (name, "dp") << r.err;

  args.push_back ("--resume");
  QuantChild again = mpirun_cli (2, args);
  ASSERT_EQ (again.exit_code, 0) << again.err << again.out;
  EXPECT_NE (again.err.find ("resuming an interrupted run of 2 ranks: layers 0-1"),
             std::string::npos)
      << again.err;
  EXPECT_EQ (quant_folder_digests (tmp + "/lw"), quant_folder_digests (out + "/dp"));
  // the work area (with every rank's folder) is gone
  EXPECT_EQ (quant_list_dir (out), std::vector<std::string> ({ "dp" }));
}

// layer_wise under mpirun would run N copies into one folder: refused.
TEST (Dp, RefusesOneProcessRunnerUnderMpirun)
{
  std::string tmp = slim_test_make_tmpdir ();
  QuantChild r
      = mpirun_cli (2, args_for (tmp + "/x", with_runner (tmp, "dense-w8a8.yaml", "layer_wise")));
  EXPECT_NE (r.exit_code, 0);
  EXPECT_NE (r.err.find ("runner layer_wise runs in one process; with 2 MPI ranks"),
             std::string::npos)
      << r.err;
}

} // namespace
