# tests/e2e/e2e_lib.sh — what the end-to-end scripts share; sourced, after `build=$1 source=$2`:
#   work            a fresh temporary directory, removed on exit
#   fail MSG        prints FAIL: MSG and exits 1
#   expect_error WHAT FRAGMENT COMMAND...
#                   the command must exit non-zero within 120 s (not hang) and say FRAGMENT (stdout and stderr)
#   minilm          the all-MiniLM-L6-v2 cache directory, for require_minilm
#   require_minilm  exits 77 (CTest's skip) with a message when scripts/fetch_minilm.sh has not filled it
#   prep_excerpt OUT ARGS...
#                   bert_prep of the corpus excerpt (tests/e2e/fixtures) into OUT, blank-line documents, 20%
#                   validation, seed 3, plus ARGS (--vocab_size N or --vocab FILE); prints its log and fails on error
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

minilm="$source/.cache/minilm"
require_minilm() {
  if [ ! -f "$minilm/.complete" ]; then
    echo "SKIP: all-MiniLM-L6-v2 is not in $minilm: run scripts/fetch_minilm.sh"
    exit 77
  fi
}

expect_error() {
  local what=$1 fragment=$2
  shift 2
  local out status start=$SECONDS
  out=$(timeout 120 "$@" 2>&1)
  status=$?
  [ $status -ne 0 ] || fail "$what: exited 0"
  [ $status -ne 124 ] || fail "$what: hung (killed by timeout after 120 s): $out"
  grep -qF -- "$fragment" <<<"$out" || fail "$what: no '$fragment' in: $out"
  echo "ok: $what (exit $status after $((SECONDS - start)) s)"
}

prep_excerpt() {
  local out=$1
  shift
  "$build/bert_prep" --input "$source/tests/e2e/fixtures/kjv_excerpt.txt" --out "$out" --documents blank \
    --validation_fraction 0.2 --seed 3 "$@" > "$out.prep.log" 2>&1 ||
    { cat "$out.prep.log"; fail "bert_prep into $out"; }
}
