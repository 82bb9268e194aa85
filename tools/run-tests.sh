#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every
# test suite, then builds again with AddressSanitizer + UndefinedBehavior-
# Sanitizer and runs the suites once more, then a short smoke run of each
# fuzz target and the include-layer check.  Prints the meson summaries and,
# last, one line "N passed, N failed" counting test cases: every GoogleTest
# case in each build configuration (tools/count-tests.py), each fuzz target,
# and each check script.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export SLIMFLOW_SHARED_DIR=${SLIMFLOW_SHARED_DIR:-"$top/../shared"}

passed=0
failed=0
skipped=0

count_results() {
  # every GoogleTest case of the build's last `meson test` (a suite that
  # crashed or timed out without a failed case counts as one failure)
  local p f sk
  read -r p f sk < <(python3 tools/count-tests.py "$1" --list)
  echo "== $1: $p cases passed, $f failed, $sk skipped"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + sk))
}

# One check script = one case.
check_case() {
  local name="$1"
  shift
  echo "== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "== $name: FAILED"
    failed=$((failed + 1))
  fi
}

run_suite() {
  local name="$1" dir="$2"
  shift 2
  echo "== $name: building in $dir"
  if ! bash tools/setup.sh "$dir" "$@"; then
    echo "== $name: build FAILED"
    failed=$((failed + 1))
    return
  fi
  echo "== $name: testing"
  rm -f "$dir/meson-logs/testlog.json" "$dir/meson-logs/testlog.junit.xml"
  meson test -C "$dir" --print-errorlogs --num-processes 2 || true
  count_results "$dir"
}

run_suite "default build" "$top/build"

# The plugin SDK, installed from the default build (tools/sdk-check.sh):
# one test case per step (sdk-build, sdk-test, sdk-pipeline).
echo "== plugin SDK: tools/sdk-check.sh"
sdk_out=$(bash tools/sdk-check.sh "$top/build" 2>&1)
echo "$sdk_out"
sdk_counts=$(echo "$sdk_out" | sed -n 's/^sdk-check: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
if [ -n "$sdk_counts" ]; then
  passed=$((passed + ${sdk_counts% *}))
  failed=$((failed + ${sdk_counts#* }))
else
  failed=$((failed + 1)) # sdk-check.sh stopped before its summary
fi

run_suite "asan+ubsan build" "$top/build-sanitize" -Db_sanitize=address,undefined -Db_lundef=false

check_case "include layers (tools/check-layers.py)" python3 tools/check-layers.py

# one case per fuzz target ("== fuzz-NAME: ok" / "FAILED"); a build failure is one failure
fuzz_log=$(mktemp)
bash tools/fuzz-smoke.sh 2>&1 | tee "$fuzz_log"
fuzz_status=${PIPESTATUS[0]}
fuzz_ok=$(grep -c -E '^== fuzz-[a-z0-9_-]+: ok$' "$fuzz_log" || true)
fuzz_bad=$(grep -c -E '^== fuzz-[a-z0-9_-]+: FAILED' "$fuzz_log" || true)
if [ "$fuzz_status" -ne 0 ] && [ "$fuzz_bad" -eq 0 ]; then
  fuzz_bad=1
fi
passed=$((passed + fuzz_ok))
failed=$((failed + fuzz_bad))
rm -f "$fuzz_log"

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
