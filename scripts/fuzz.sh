#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, AddressSanitizer + UndefinedBehaviorSanitizer) into
# build-fuzz/ and runs each for SECONDS (default 60), one after another, then prints a table: target,
# executions, seconds, corpus size, coverage (libFuzzer's "cov:" edges) and outcome. Usage:
#   scripts/fuzz.sh [SECONDS] [TARGET...]      e.g. scripts/fuzz.sh 20; scripts/fuzz.sh 600 json safetensors
# Each target fuzzes a working corpus in runs/fuzz/<target>/ (seeded from tests/fuzz/corpus/<target>/ and
# kept between runs), with tests/fuzz/<target>.dict when present; a crash, leak, timeout (10 s) or out-of-memory
# (2 GB) input is saved in runs/fuzz/artifacts/ and the log in runs/fuzz/<target>.log. Exits non-zero if any
# target failed. FUZZ_ARGS adds libFuzzer flags (e.g. FUZZ_ARGS="-runs=1000000").
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
build_dir=build-fuzz
out_dir=runs/fuzz

# Only the libraries and the fuzz targets are built (no tests, tools or MPI); FUZZ_CXX picks another clang++.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="${FUZZ_CXX:-clang++}" \
  -DBERTFORGE_FUZZ=ON -DBERTFORGE_CUDA=OFF -DBERTFORGE_BUILD_TESTS=OFF -DBERTFORGE_MPI=OFF >/dev/null
cmake --build "$build_dir" --target bertforge_fuzzers -j "$(nproc)"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in tests/fuzz/fuzz_*.cpp; do
    name=$(basename "$source" .cpp)
    targets+=("${name#fuzz_}")
  done
fi

mkdir -p "$out_dir/artifacts"
summary=()
failed=0
for target in "${targets[@]}"; do
  corpus="$out_dir/$target"
  log="$out_dir/$target.log"
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  dict=()
  if [ -f "tests/fuzz/$target.dict" ]; then dict=(-dict="tests/fuzz/$target.dict"); fi
  echo "fuzz: $target for $seconds s"
  status=0
  started=$SECONDS
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
  "$build_dir/tests/fuzz/fuzz_$target" "$corpus" "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$out_dir/artifacts/$target-" ${FUZZ_ARGS:-} \
    >"$log" 2>&1 || status=$?
  elapsed=$((SECONDS - started))
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  edges=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corpus_size=$(find "$corpus" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    outcome=ok
  else
    failed=1
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    outcome="CRASH (exit $status) ${artifact:-see $log}"
  fi
  summary+=("$(printf '%-22s %12s %8s %8s %8s  %s' "$target" "${executions:--}" "$elapsed" \
    "$corpus_size" "${edges:--}" "$outcome")")
done

printf '\n%-22s %12s %8s %8s %8s  %s\n' target executions seconds corpus edges outcome
printf '%s\n' "${summary[@]}"
exit "$failed"
