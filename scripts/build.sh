#!/usr/bin/env bash
# Configures and builds bertforge into build/ (or $BUILD_DIR). Extra arguments go to cmake,
# e.g. scripts/build.sh -DBERTFORGE_CUDA=OFF. The CUDA backend is built when nvcc exists.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build}
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" -j "$(nproc)"
