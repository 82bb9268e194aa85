#!/usr/bin/env bash
# Installs llama.cpp for the gguf tests: npm's node-llama-cpp 3.21.1 and its
# prebuilt linux-x64 CPU binaries (@node-llama-cpp/linux-x64, a package of
# the same registry), into BUILD_DIR/node-llama-cpp (never committed).
#
#   bash tools/setup-llama-cpp.sh BUILD_DIR
#
# Nothing is downloaded outside the npm registry and nothing is compiled:
# optional dependencies (the CUDA/Vulkan/other-OS binaries) are omitted,
# install scripts are not run (node-llama-cpp's postinstall would look for
# a build or a download), NODE_LLAMA_CPP_SKIP_DOWNLOAD is set, and the test
# script loads the binaries with getLlama ({ build: "never" }).  A second
# call with the same versions installed does nothing.  Needs Node.js >= 20
# and npm (node-llama-cpp's engines field).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-"$top/build"}
version=3.21.1
dest="$build_dir/node-llama-cpp"

installed_version() {
  local f="$dest/node_modules/$1/package.json"
  [ -f "$f" ] && node -e 'process.stdout.write(require(process.argv[1]).version)' "$f"
}

for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "setup-llama-cpp: $tool is missing (Node.js >= 20 with npm is needed for the gguf tests)" >&2
    exit 1
  fi
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup-llama-cpp: node-llama-cpp $version needs Node.js >= 20, found $(node --version)" >&2
  exit 1
fi

if [ "$(installed_version node-llama-cpp || true)" = "$version" ] \
  && [ "$(installed_version @node-llama-cpp/linux-x64 || true)" = "$version" ]; then
  exit 0
fi

echo "setup-llama-cpp: installing node-llama-cpp $version into $dest"
mkdir -p "$dest"
cat >"$dest/package.json" <<JSON
{
  "name": "slimflow-llama-cpp-tests",
  "private": true,
  "description": "llama.cpp for slimflow's gguf tests (tools/setup-llama-cpp.sh)"
}
JSON
(
  cd "$dest"
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-audit --no-fund --save-exact \
    --omit=optional --ignore-scripts \
    "node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version"
)
