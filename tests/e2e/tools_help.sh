#!/usr/bin/env bash
# End to end: `--help` of every command-line tool exits 0 and prints, in this order, "<tool>: <what it does>", a
# usage line, and the tool's own flags with their defaults (tools/tool_main.h) — not absl's listing under the
# build's source paths, and nothing on stderr.
# Usage: tools_help.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail
out=$work

for tool in bert_prep bert_train bert_eval bert_quant bert_embed bert_fill_mask; do
  "$build/$tool" --help > "$out/help.txt" 2> "$out/err.txt" || fail "$tool --help exited $?"
  [ ! -s "$out/err.txt" ] || fail "$tool --help wrote to stderr: $(head -n 3 "$out/err.txt")"
  first=$(sed -n 1p "$out/help.txt")
  [[ $first == "$tool: "* && $first != *"see --help"* ]] || fail "$tool --help begins with: $first"
  [[ $(sed -n 2p "$out/help.txt") == "usage: $tool "* ]] || fail "$tool --help has no usage line"
  ! grep -q "Flags from" "$out/help.txt" || fail "$tool --help lists flags by source file (absl's listing)"
  grep -qE '^  --[a-z_0-9]+  .+ \(default: ' "$out/help.txt" || fail "$tool --help lists no flag with its default"
  # -help and --help=x are the same request; an unknown flag is still refused with exit code 2 or 1.
  "$build/$tool" -help > /dev/null || fail "$tool -help exited $?"
  if "$build/$tool" --no_such_flag > /dev/null 2>&1; then fail "$tool accepted --no_such_flag"; fi
  echo "ok:   $tool --help ($(grep -cE '^  --' "$out/help.txt") flags)"
done
grep -qE '^  --clip_alpha_warmup_steps  ' <("$build/bert_train" --help) || fail "bert_train --help misses a flag"
echo "tools_help: all passed"
