#!/usr/bin/env bash
# Installs the Debian packages slimflow needs (only those missing), using
# sudo when not root, then configures and builds into ./build (or $1) and
# installs llama.cpp for the gguf tests there (tools/setup-llama-cpp.sh).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-"$top/build"}
shift || true

packages=(
  build-essential pkg-config meson ninja-build
  libglib2.0-dev libjson-glib-dev libyaml-dev libhdf5-dev libopenblas-dev
  googletest libgtest-dev
  clang libclang-rt-14-dev
  libopenmpi-dev openmpi-bin
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$build_dir/build.ninja" ]; then
  meson setup "$build_dir" "$top" "$@"
fi
ninja -C "$build_dir"

# llama.cpp for the gguf tests (npm node-llama-cpp, prebuilt CPU binaries)
bash "$top/tools/setup-llama-cpp.sh" "$build_dir"
