#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every
# test suite, then builds again with AddressSanitizer + UndefinedBehavior-
# Sanitizer and runs the suites once more, then a short smoke run of each
# fuzz target.  Prints the meson summaries and, last, one line
# "N passed, N failed" counting every test of every configuration.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export SLIMFLOW_SHARED_DIR=${SLIMFLOW_SHARED_DIR:-"$top/../shared"}

passed=0
failed=0

count_results() {
  # meson writes one JSON object per test to testlog.json
  local log="$1/meson-logs/testlog.json"
  if [ -f "$log" ]; then
    local p f
    p=$(grep -c '"result": "OK"' "$log" || true)
    f=$(grep -c -E '"result": "(FAIL|ERROR|TIMEOUT|UNEXPECTEDPASS)"' "$log" || true)
    passed=$((passed + p))
    failed=$((failed + f))
  else
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

if [ -x tools/fuzz-smoke.sh ]; then
  if bash tools/fuzz-smoke.sh; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
