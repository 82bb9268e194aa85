#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs the
# main job on the default model (../shared/models/stories260K).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
shared=${SLIMFLOW_SHARED_DIR:-"$top/../shared"}
model=${1:-"$shared/models/stories260K"}

bash "$top/tools/setup.sh" "$top/build"
"$top/build/framework/tools/slimflow" inspect "$model"
