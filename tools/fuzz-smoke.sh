#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Builds every libFuzzer target (tests/fuzz, executables named fuzz-*) with
# clang in build-fuzz and runs each for a short time on its seed corpus
# tests/fuzz/corpus/<name without "fuzz-">/ (and tests/fuzz/<name>.dict when
# present).  New inputs go to a scratch folder: the committed corpus is never
# modified.  Exits non-zero if the build fails, no target is found, or any
# target crashes, leaks, times out or aborts; crash inputs are kept as
# build-fuzz/<target>-crash-*.
#
# Environment: FUZZ_SECONDS (default 30) per target, FUZZ_BUILD_DIR
# (default <top>/build-fuzz).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-"$top/build-fuzz"}
seconds=${FUZZ_SECONDS:-30}

if [ ! -f "$build/build.ninja" ]; then
  if ! CC=clang CXX=clang++ meson setup "$build" "$top" -Dfuzz=true -Dtests=false; then
    echo "fuzz-smoke: meson setup failed" >&2
    exit 1
  fi
fi

# Build only the fuzz targets (not the whole project).
targets=$(meson introspect "$build" --targets | python3 -c '
import json, os, sys
build = sys.argv[1]
for t in json.load(sys.stdin):
    if t["type"] == "executable" and t["name"].startswith("fuzz-"):
        for f in t["filename"]:
            print(os.path.relpath(f, build))
' "$build")
if [ -z "$targets" ]; then
  echo "fuzz-smoke: no fuzz-* target in $build (configured with -Dfuzz=true?)" >&2
  exit 1
fi
# shellcheck disable=SC2086
if ! ninja -C "$build" -j2 $targets; then
  echo "fuzz-smoke: build failed" >&2
  exit 1
fi

status=0
n_run=0
for rel in $targets; do
  exe="$build/$rel"
  name=$(basename "$exe")
  seeds="$top/tests/fuzz/corpus/${name#fuzz-}"
  dict="$top/tests/fuzz/${name#fuzz-}.dict"
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/$name-corpus.XXXXXX")
  log="$build/$name.log"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$build/$name-")
  [ -f "$dict" ] && args+=(-dict="$dict")
  corpora=("$scratch")
  [ -d "$seeds" ] && corpora+=("$seeds")
  echo "== $name: ${seconds}s on ${corpora[*]}"
  "$exe" "${args[@]}" "${corpora[@]}" >"$log" 2>&1
  rc=$?
  n_run=$((n_run + 1))
  grep -E '^stat::number_of_executed_units|^stat::new_units_added|^Done ' "$log" || true
  if [ $rc -ne 0 ]; then
    echo "== $name: FAILED (exit $rc); last lines of $log:"
    tail -n 40 "$log"
    status=1
  else
    echo "== $name: ok"
  fi
  rm -rf "$scratch"
done

echo "fuzz-smoke: $n_run target(s) run, $([ $status -eq 0 ] && echo 'no crash' || echo 'FAILURES')"
exit $status
