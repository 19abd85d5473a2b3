#!/usr/bin/env bash
# End to end: scripts/hw_check.sh, the hardware check of a new machine or a lent GPU machine, without running its
# benchmarks: it parses (bash -n; shellcheck's warnings where shellcheck is installed), prints its plan (--list) with
# the CPU's ISA flags, each step's command or its skip reason, the GPU steps skipped without a GPU and planned with
# one (a stub nvidia-smi: run where the build has the CUDA backend, else skipped for that reason), refuses bad
# options, and really runs two quick steps (the int8 GEMM's per-ISA tests), writing the summary table and the logs.
# Usage: hw_check.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail, expect_error
script=$source/scripts/hw_check.sh
unset OUT BERTFORGE_BENCH_PYTHON

bash -n "$script" || fail "bash -n scripts/hw_check.sh"
if command -v shellcheck > /dev/null; then
  shellcheck -S warning "$script" || fail "shellcheck scripts/hw_check.sh"
  echo "ok: bash -n, shellcheck"
else
  echo "ok: bash -n (shellcheck not installed)"
fi

"$script" --help | grep -q -- '--list' || fail "--help does not describe --list"
expect_error "an unknown option" "unknown option --frobnicate" "$script" --frobnicate
expect_error "--only with a bad value" "--only takes cpu or gpu" "$script" --only tpu --list "$build"
expect_error "--threads 0" "--threads takes a positive number" "$script" --threads 0 --list "$build"

# The plan, as on a machine without a GPU (HW_CHECK_NVIDIA_SMI=none: whatever this one has).
HW_CHECK_NVIDIA_SMI=none "$script" --list --no-build "$build" > "$work/list.txt" 2>&1 ||
  { cat "$work/list.txt"; fail "--list"; }
for line in '^cpu: +.+, [0-9]+ CPUs$' '^isa: ' '^paths: .*avx512-vnni:(yes|no)'; do
  grep -qE "$line" "$work/list.txt" || { cat "$work/list.txt"; fail "--list lacks the line $line"; }
done
grep -qE '^gpu: +no NVIDIA GPU' "$work/list.txt" || { cat "$work/list.txt"; fail "--list: a GPU without nvidia-smi?"; }
for step in 'bench_int8_ceiling' 'bench_gemm' 'bench_int8_gemm' 'bench_quant_inference base' \
            'quant_test_int8_gemm \[' 'cuda_test_nccl_communicator' 'bench_cuda_kernels' \
            'bench_train --device cuda \(FP32\)' 'bench_train --device cuda --mixed_precision bf16' \
            'bert_eval --int8 --device cuda'; do
  grep -qE "^[0-9]+ +(cpu|gpu): $step" "$work/list.txt" || { cat "$work/list.txt"; fail "--list has no step '$step'"; }
done
grep -E '^[0-9]+ +gpu: ' "$work/list.txt" | grep -v 'skip: no NVIDIA GPU' &&
  fail "--list without a GPU plans GPU steps"
grep -qE '^[0-9]+ +cpu: bench_gemm .*bench_gemm$' "$work/list.txt" || { cat "$work/list.txt"; fail "bench_gemm's command"; }
echo "ok: --list without a GPU"

# The same with a stub nvidia-smi: the GPU steps are planned (with the CUDA backend) or skipped for its absence.
mkdir -p "$work/bin"
cat > "$work/bin/nvidia-smi" <<'EOF'
#!/bin/sh
case "$*" in
  -L) echo "GPU 0: Stub GPU (UUID: GPU-00000000-0000-0000-0000-000000000000)" ;;
  *--query-gpu*) echo "0, Stub GPU, 999.99, 9.0, 81559 MiB" ;;
  *) exit 1 ;;
esac
EOF
chmod +x "$work/bin/nvidia-smi"
HW_CHECK_NVIDIA_SMI=$work/bin/nvidia-smi "$script" --list --no-build --only gpu "$build" > "$work/list_gpu.txt" 2>&1 ||
  { cat "$work/list_gpu.txt"; fail "--list with a stub GPU"; }
grep -qE '^gpu: +GPU 0: Stub GPU, driver 999.99, compute capability 9.0, 81559 MiB' "$work/list_gpu.txt" ||
  { cat "$work/list_gpu.txt"; fail "--list does not describe the (stub) GPU"; }
grep -qE '^[0-9]+ +cpu: .*skip: --only gpu' "$work/list_gpu.txt" || fail "--only gpu ran CPU steps"
if grep -q '^BERTFORGE_CUDA:BOOL=ON' "$build/CMakeCache.txt"; then
  for line in '^[0-9]+ +gpu: bert_eval --int8 --device cuda .*hwc_eval_int8 .*\(after tiny_model\)$' \
              '^[0-9]+ +gpu: bench_train --device cuda \(FP32\) .*bench_train --device cuda$' \
              '^[0-9]+ +gpu: cuda_test_nccl_communicator .*cuda_test_nccl_communicator$'; do
    grep -qE "$line" "$work/list_gpu.txt" || { cat "$work/list_gpu.txt"; fail "--list with a GPU: no line $line"; }
  done
else
  [ "$(grep -cE '^[0-9]+ +gpu: .*skip: .*CUDA backend' "$work/list_gpu.txt")" -ge 4 ] ||
    { cat "$work/list_gpu.txt"; fail "--list with a GPU but no CUDA backend should skip the GPU steps"; }
fi
echo "ok: --list with a stub GPU"

# A real run of two quick steps: the summary table (on stdout and in --out) and every step's log.
HW_CHECK_NVIDIA_SMI=none "$script" --no-build --steps 'quant_test_int8_gemm' --out "$work/out" "$build" > "$work/run.txt" 2>&1 ||
  { cat "$work/run.txt"; fail "a run of the int8 GEMM tests"; }
grep -qE '^[0-9]+ +cpu: quant_test_int8_gemm \[other cases: best path\] +passed +[0-9]+s +[0-9]+ passed' "$work/run.txt" ||
  { cat "$work/run.txt"; fail "the summary lacks the passed int8 GEMM tests"; }
grep -qE '^[0-9]+ +cpu: bench_gemm .* skipped .*not selected \(--steps\)' "$work/run.txt" ||
  { cat "$work/run.txt"; fail "the summary lacks bench_gemm, not selected"; }
grep -qE '^[0-9]+ steps: [0-9]+ passed, 0 failed, [0-9]+ skipped, in [0-9]+ s' "$work/run.txt" ||
  { cat "$work/run.txt"; fail "the summary's last line"; }
cmp -s <(grep -E '^[0-9]+ +(cpu|gpu): ' "$work/out/hw_check_summary.txt") <(grep -E '^[0-9]+ +(cpu|gpu): .*s  ' "$work/run.txt") ||
  { cat "$work/out/hw_check_summary.txt"; fail "hw_check_summary.txt differs from the printed table"; }
grep -q '^\[  PASSED  \]' "$work/out/hw_check_logs.txt" || fail "hw_check_logs.txt lacks the tests' output"
echo "ok: a run of two steps ($(grep -cE '^[0-9]+ +(cpu|gpu): ' "$work/run.txt") steps listed)"
echo "all ok"
