#!/usr/bin/env bash
# Installs the Debian packages bertforge needs, if any is missing (idempotent).
# Used by scripts/run.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config   # toolchain
  libabsl-dev libzstd-dev libgtest-dev libgmock-dev     # libraries
  libopenblas-dev                                       # the BLAS the GEMM benchmark compares against
  python3 python3-numpy python3-torch                   # PyTorch: benchmark peer and fixture generator
  bible-kjv                                             # the built-in training corpus (public domain)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
