#!/usr/bin/env bash
# Writes the long study's corpus (scripts/long_study.sh): public-domain English texts from Debian packages, as
# blank-line separated documents, about 4.6M words (the KJV alone is 0.8M):
#   the King James Bible (bible-kjv, scripts/make_corpus.sh; a chapter per document),
#   the World English Bible (sword-text-web; a chapter per document),
#   C. H. Spurgeon's Treasury of David (sword-comm-tdavid), Matthew Henry's Concise Commentary (sword-comm-mhcc) and
#   the Scofield Reference Notes, 1917 (sword-comm-scofield); a paragraph per document.
# The SWORD modules are exported with mod2imp (libsword-utils) and their markup stripped by tools/sword_text.py. Each
# module's conf (/usr/share/sword/mods.d) says DistributionLicense=Public Domain. Usage: make_long_corpus.sh OUT.txt
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: make_long_corpus.sh OUT.txt}
if ! command -v mod2imp >/dev/null || [ ! -f /usr/share/sword/mods.d/tdavid.conf ]; then
  echo "make_long_corpus: mod2imp or the SWORD modules are missing; run scripts/setup.sh (Debian packages" \
    "libsword-utils sword-text-web sword-comm-tdavid sword-comm-mhcc sword-comm-scofield)" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
scripts/make_corpus.sh "$out.kjv"
{
  cat "$out.kjv"
  printf '\n'
  for module in engWEB2015eb:chapters TDavid:paragraphs MHCC:paragraphs Scofield:paragraphs; do
    # mod2imp reads past the end of MHCC's and WEB's indexes, printing thousands of "Error reading ulCompOffset"
    # (ulBuffNum, usVerseSize) lines; the text is complete (every export gives the same paragraphs), so they are
    # dropped.
    mod2imp "${module%%:*}" 2> >(grep -v -E '^Error reading (ulCompOffset|ulBuffNum|usVerseSize)$' >&2) |
      python3 tools/sword_text.py --documents "${module#*:}"
    printf '\n'
  done
} > "$out.tmp"
rm -f "$out.kjv"
words=$(wc -w < "$out.tmp")
if [ "$words" -lt 4000000 ]; then
  echo "make_long_corpus: only $words words came out (expected about 4.6M)" >&2
  rm -f "$out.tmp"
  exit 1
fi
mv "$out.tmp" "$out"
echo "make_long_corpus: wrote $out ($words words)"
