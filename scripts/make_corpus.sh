#!/usr/bin/env bash
# Writes the built-in training corpus: the King James Bible (public domain), from
# Debian's bible-kjv package, as plain text with one chapter per blank-line
# separated document and the verse numbers removed. Usage: make_corpus.sh OUT.txt
set -euo pipefail
out=${1:?usage: make_corpus.sh OUT.txt}
if ! command -v bible >/dev/null; then
  echo "make_corpus: the 'bible' program is missing; run scripts/setup.sh (Debian package bible-kjv)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
# bible prints "Genesis 1" before each chapter and "  1 In the beginning ..." per verse.
bible -l10000 "Gen1:1-Rev22:21" |
  awk '/^[1-3]? ?[A-Z][A-Za-z ]* [0-9]+$/ { print ""; next }
       /^ +[0-9]+ / { sub(/^ +[0-9]+ /, ""); print }' > "$out.tmp"
if [ "$(wc -l < "$out.tmp")" -lt 30000 ]; then
  echo "make_corpus: the bible program printed too little text ($(wc -l < "$out.tmp") lines)" >&2
  rm -f "$out.tmp"
  exit 1
fi
mv "$out.tmp" "$out"
echo "make_corpus: wrote $out ($(wc -c < "$out") bytes)"
