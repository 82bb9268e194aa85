#!/usr/bin/env bash
# Quantizes every example and every --quant_type practice on the models it
# is meant for and prints one line per output file: "<run>/<file> <sha256>".
# Used to show that a refactoring changes no byte of slimflow's output:
#
#   bash tools/example-digests.sh build > before.txt   # on the old commit
#   bash tools/example-digests.sh build > after.txt    # on the new one
#   diff before.txt after.txt
#
# $1 is a build directory (default ./build); SLIMFLOW_SHARED_DIR as for the
# tests (default ../shared beside the source tree).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
shared=${SLIMFLOW_SHARED_DIR:-"$top/../shared"}
slimflow="$build/framework/tools/slimflow"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export SLIMFLOW_PLUGIN_PATH="$build/plugins"
export OPENBLAS_NUM_THREADS=1

run() {
  local name="$1"
  shift
  "$slimflow" quant --save_path "$tmp/$name" "$@" >"$tmp/$name.log" 2>&1 || {
    echo "example-digests: $name failed:" >&2
    cat "$tmp/$name.log" >&2
    exit 1
  }
  (cd "$tmp/$name" && find . -type f | sort | while read -r f; do
    echo "$name/${f#./} $(sha256sum "$f" | cut -d' ' -f1)"
  done)
}

stories="$shared/models/stories260K"
for yaml in "$top"/examples/*.yaml; do
  base=$(basename "$yaml" .yaml)
  model="$stories"
  # its down_proj_online_layers need a decomposable intermediate size (not 172)
  [ "$base" = dense-w4a4-dynamic-quarot-online ] && model="$shared/models/synthetic/tiny-random-llama-untied"
  run "$base" --model_path "$model" --config_path "$yaml"
done
for model in tiny-random-mixtral-moe tiny-random-qwen2-moe; do
  run "moe-w8a8-mix-$model" --model_path "$shared/models/synthetic/$model" \
    --config_path "$top/examples/moe-w8a8-mix.yaml"
done
for qt in w8a8 w8a8_dynamic w8a16 w4a16; do
  run "practice-$qt" --model_path "$stories" --quant_type "$qt"
done
