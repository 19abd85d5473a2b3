#!/usr/bin/env bash
# The main job: set up, build, and run the built-in default training run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build/bf_demo "$@"
