#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, then the main
# job: `slimflow quant` with the default W8A8 practice on the default model
# (../shared/models/stories260K) into ./output/<model>-w8a8, and
# `slimflow eval` of the result against the float model (perplexity on the
# TinyStories excerpt at ctx 512, KL divergence, top-1 agreement).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SLIMFLOW_SHARED_DIR:-"$top/../shared"}
model=${1:-"$shared/models/stories260K"}
out="./output/$(basename "$model")-w8a8"
text="$shared/data/eval/tinystories_valid_excerpt.txt"

bash "$top/tools/setup.sh" "$top/build"
slimflow="$top/build/framework/tools/slimflow"
mkdir -p ./output
"$slimflow" quant --model_path "$model" --save_path "$out" --quant_type w8a8
"$slimflow" eval --model_path "$out" --text "$text" --ctx 512 --reference_model "$model"
