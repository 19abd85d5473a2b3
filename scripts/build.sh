#!/usr/bin/env bash
# Configures and builds bertforge into build/ (or $BUILD_DIR). Extra arguments go to cmake,
# e.g. scripts/build.sh -DBERTFORGE_CUDA=OFF. The CUDA backend is built when nvcc exists.
# BUILD_TARGETS="bert_prep bert_train" builds only those targets (and what they link); default: all, tests and
# benchmarks included.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build}
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
read -r -a targets <<< "${BUILD_TARGETS:-all}"
cmake --build "$build_dir" -j "$(nproc)" --target "${targets[@]}"
