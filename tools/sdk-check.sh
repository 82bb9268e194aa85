#!/usr/bin/env bash
# Checks the installed plugin SDK the way an out-of-tree author uses it:
#
#   sdk-build     `meson install --destdir` of BUILD_DIR into a temporary
#                 folder (nothing private installed), then examples/plugin
#                 configured with --werror and built through pkg-config
#                 slimflow-1 only (PKG_CONFIG_PATH; the .pc is relocatable)
#   sdk-test      the example's `meson test` (test-clip, on the SDK's test bench)
#   sdk-pipeline  the installed slimflow quant, with SLIMFLOW_PLUGIN_PATH on
#                 the example's build folder and the installed plugins,
#                 on stories260K with examples/plugin/clip-then-w8a8.yaml:
#                 the output folder must hold quant_model_description.json
#
# Prints "sdk-check: STEP: PASS" or "sdk-check: STEP: FAIL (why)" per step
# (when sdk-build fails, the other two fail as skipped) and, last, "sdk-check: N
# passed, N failed"; exits non-zero when a step failed.
#
# Usage: tools/sdk-check.sh [BUILD_DIR]   (default ./build, configured already)
# SLIMFLOW_SHARED_DIR as for the tests (default ../shared beside the source tree).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd) || exit 2
shared=${SLIMFLOW_SHARED_DIR:-"$top/../shared"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log="$tmp/log"

passed=0
failed=0

step() { # step NAME OK|why
  if [ "$2" = OK ]; then
    echo "sdk-check: $1: PASS"
    passed=$((passed + 1))
  else
    echo "sdk-check: $1: FAIL ($2)"
    failed=$((failed + 1))
  fi
}

# Runs a command with its output in $log, shown only when it fails.
quiet() {
  if "$@" >"$log" 2>&1; then
    return 0
  fi
  sed 's/^/  | /' "$log" | tail -n 40
  return 1
}

# prefix, libdir and bindir of the build, absolute.
read -r prefix libdir bindir < <(meson introspect --buildoptions "$build" | python3 -c '
import json, os, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
p = opts["prefix"]
print(p, os.path.join(p, opts["libdir"]), os.path.join(p, opts["bindir"]))
')
stage="$tmp/stage"
stage_lib="$stage$libdir"
example="$tmp/example"

# 1. sdk-build
relocatable=$(meson introspect --buildoptions "$build" | python3 -c '
import json, sys
print([o["value"] for o in json.load(sys.stdin) if o["name"] == "pkgconfig.relocatable"])')
why=OK
if [ -z "${prefix:-}" ]; then
  why="cannot read the options of $build"
elif [ "$relocatable" != "[True]" ] && {
  echo "sdk-check: setting pkgconfig.relocatable=true in $build (the project default)"
  ! quiet meson configure "$build" -Dpkgconfig.relocatable=true
}; then
  why="cannot make slimflow-1.pc relocatable (meson configure)"
elif ! quiet meson install -C "$build" --destdir "$stage"; then
  why="meson install failed"
elif [ ! -f "$stage$prefix/include/slimflow-1/slim-plugin.h" ]; then
  why="slim-plugin.h not installed in include/slimflow-1"
elif private=$(ls "$stage$prefix/include/slimflow-1" |
  grep -E -- '-private\.h$|^slim-(hdf5|model-adapter|decoder)\.h$'); then
  why="private headers installed: $(echo $private)"
elif [ ! -d "$stage_lib/slimflow/plugins" ]; then
  why="no plugin directory installed"
elif ! sdk_plugins=$(PKG_CONFIG_PATH="$stage_lib/pkgconfig" pkg-config --variable=pluginsdir slimflow-1); then
  why="pkg-config slimflow-1 not found in the staged install"
elif [ ! "$sdk_plugins" -ef "$stage_lib/slimflow/plugins" ]; then
  why="pkg-config pluginsdir is $sdk_plugins, not the staged plugin directory"
elif ! quiet env PKG_CONFIG_PATH="$stage_lib/pkgconfig" \
  meson setup --werror "$example" "$top/examples/plugin"; then
  why="meson setup of examples/plugin failed"
elif ! quiet ninja -C "$example"; then
  why="examples/plugin does not build against the installed SDK"
fi
step sdk-build "$why"
build_failed=$([ "$why" = OK ] || echo yes)

# 2. sdk-test
why=OK
if [ -n "$build_failed" ]; then
  why="skipped: sdk-build failed"
elif ! quiet meson test -C "$example" --print-errorlogs; then
  why="the example's meson test failed"
fi
step sdk-test "$why"

# 3. sdk-pipeline
why=OK
out="$tmp/out"
if [ -n "$build_failed" ]; then
  why="skipped: sdk-build failed"
elif ! quiet env LD_LIBRARY_PATH="$stage_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  SLIMFLOW_PLUGIN_PATH="$example" SLIMFLOW_PLUGIN_SYSTEM_PATH="$stage_lib/slimflow/plugins" \
  OPENBLAS_NUM_THREADS=1 \
  "$stage$bindir/slimflow" quant --model_path "$shared/models/stories260K" \
  --config_path "$top/examples/plugin/clip-then-w8a8.yaml" --save_path "$out"; then
  why="slimflow quant with the clip plugin failed"
elif [ ! -f "$out/quant_model_description.json" ]; then
  why="no quant_model_description.json in the output folder"
fi
step sdk-pipeline "$why"

echo "sdk-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
