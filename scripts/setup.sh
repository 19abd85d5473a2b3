#!/usr/bin/env bash
# Installs what bertforge needs, doing nothing that is already done (idempotent):
#   - the Debian packages, if any is missing;
#   - .venv (gitignored): a venv over Debian's python3 and python3-torch with Hugging Face transformers, the
#     Python of the Hugging Face export test (tests/models/test_hf_export.cpp) and of the fixture scripts;
#   - .cache/minilm (gitignored): the all-MiniLM-L6-v2 model, through scripts/fetch_minilm.sh.
# Any failure (apt, pip, the download) fails the setup. Used by scripts/run.sh and scripts/test.sh; safe to
# run on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config   # toolchain
  clang libclang-rt-dev libomp-dev                      # scripts/fuzz.sh: clang with libFuzzer and OpenMP
  libabsl-dev libzstd-dev libgtest-dev libgmock-dev     # libraries
  libopenblas-dev                                       # the BLAS the GEMM benchmark compares against
  openmpi-bin libopenmpi-dev                            # mpirun: data-parallel training on CPU
  python3 python3-numpy python3-torch                   # PyTorch: benchmark peer and fixture generator
  python3-venv                                          # .venv for transformers (below)
  bible-kjv                                             # the built-in training corpus (public domain)
  libsword-utils sword-text-web sword-comm-tdavid       # the long study's corpus (scripts/make_long_corpus.sh,
  sword-comm-mhcc sword-comm-scofield                   #   public domain)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
else
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# transformers on top of Debian's torch (--system-site-packages; /usr/bin/python3 is Debian's, whatever else is
# first on PATH). transformers 4.50 and later disable PyTorch older than 2.1, and python3-torch is 1.13.
venv=.venv
transformers_spec='transformers>=4.40,<4.50'
has_transformers() {
  "$venv/bin/python" -c 'import torch, transformers; assert transformers.utils.is_torch_available()' 2>/dev/null
}
if has_transformers; then
  echo "setup: $venv has transformers"
else
  echo "setup: making $venv with $transformers_spec"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$transformers_spec"
  if ! has_transformers; then
    echo "setup: $venv/bin/python cannot use transformers with torch after installing it" >&2
    exit 1
  fi
fi

scripts/fetch_minilm.sh
