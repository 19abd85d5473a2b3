#!/usr/bin/env bash
# Set up, build and run every test: the Release build (with the CUDA backend when
# nvcc exists), then a CPU-only build under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"

BUILD_DIR=build-sanitize scripts/build.sh -DBERTFORGE_SANITIZE=ON -DBERTFORGE_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir build-sanitize --output-on-failure -j "$(nproc)"
