# tests/e2e/e2e_lib.sh — what the end-to-end scripts share; sourced, after `build=$1 source=$2`:
#   work            a fresh temporary directory, removed on exit
#   fail MSG        prints FAIL: MSG and exits 1
#   expect_error WHAT FRAGMENT COMMAND...
#                   the command must exit non-zero and say FRAGMENT (stdout and stderr together)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

expect_error() {
  local what=$1 fragment=$2
  shift 2
  local out
  if out=$("$@" 2>&1); then fail "$what: exited 0"; fi
  grep -qF -- "$fragment" <<<"$out" || fail "$what: no '$fragment' in: $out"
  echo "ok: $what"
}
