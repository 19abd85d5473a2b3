#!/usr/bin/env bash
# End to end: bertforge as a library. `cmake --install` of the build into a fresh prefix, then examples/tiny_bert
# configured against it (find_package(bertforge)) in a fresh directory, built and run: it must print the logits'
# shape. Also checks what the prefix holds (headers, libraries, tools, the package files) and that the package
# does not point back into the source or build tree.
# Usage: install_find_package.sh BUILD_DIR SOURCE_DIR CMAKE CMAKE_GENERATOR CXX_COMPILER (those of the build)
set -uo pipefail
build=$1
source=$2
cmake=$3
generator=$4
cxx=$5
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail

prefix="$work/prefix"
"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "cmake --install"; }
for f in include/bertforge/core/tensor.h include/bertforge/models/bert.h include/bertforge/quant/ptq.h \
         lib/libbertforge_core.a lib/libbertforge_quant.a bin/bert_train bin/bert_quant \
         lib/cmake/bertforge/bertforgeConfig.cmake lib/cmake/bertforge/bertforgeConfigVersion.cmake \
         lib/cmake/bertforge/bertforgeTargets.cmake; do
  [ -e "$prefix/$f" ] || fail "the install has no $f"
done
[ ! -e "$prefix/bin/bf_demo" ] || fail "the install has bf_demo, which is no tool"
if grep -rlF -e "$source/" -e "$(cd "$build" && pwd)/" "$prefix/lib/cmake/bertforge"; then
  fail "the package files above name the source or build tree"
fi
echo "ok: cmake --install ($(find "$prefix" -type f | wc -l) files)"

"$cmake" -S "$source/examples/tiny_bert" -B "$work/example" -G "$generator" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "configuring examples/tiny_bert against the install"; }
"$cmake" --build "$work/example" > "$work/build.log" 2>&1 || { cat "$work/build.log"; fail "building examples/tiny_bert"; }
echo "ok: examples/tiny_bert built against the install"

out=$("$work/example/tiny_bert" 2>&1) || fail "tiny_bert exited non-zero: $out"
echo "$out"
grep -q "^logits \[1, 6, 30522\]$" <<<"$out" || fail "tiny_bert printed no 'logits [1, 6, 30522]'"
echo "ok: tiny_bert ran"
