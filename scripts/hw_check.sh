#!/usr/bin/env bash
# scripts/hw_check.sh — runs what needs hardware the usual development machine (2 cores, AVX2, no GPU) lacks: on a
# new machine, and first on a lent GPU machine.
#
#   1. Prints the CPU (model, family/model, the ISA flags the kernels dispatch on) and any NVIDIA GPU (name,
#      driver, compute capability), and the build it uses.
#   2. Builds the programs it needs if the build directory lacks them (the Ninja Release build of scripts/build.sh,
#      only those targets; it installs nothing unless --setup), or uses a bundle made by --pack (below).
#   3. Runs, each under its own time limit:
#      CPU  the per-ISA GoogleTest cases beyond AVX2 (AVX-512, VNNI, BF16, AMX: the parameterised tests whose
#           parameter names an ISA, found by listing the tests; each skips with the reason where the CPU lacks it),
#           the other tests of those binaries (dispatch, every path this CPU has), and the benchmarks bench_int8_ceiling,
#           bench_gemm, bench_int8_gemm and bench_quant_inference base, and where the CPU has AVX512-BF16
#           bench_train mini in FP32 and in bf16 (--threads: 2 as in the README, up to 8 with a GPU, so that
#           everything fits a lent machine's call);
#      GPU  every CUDA test (tests/cuda_test_*: device, ops against the CPU, the NCCL one-rank communicator),
#           bert_eval --int8 --device cuda on a tiny model trained here in seconds (bert_prep on the KJV excerpt,
#           bert_train --steps 20, bert_quant W8A8) against the same on the CPU, bench_cuda_kernels, and
#           bench_train --device cuda in FP32 and with --mixed_precision bf16.
#   4. Prints a summary table (each step: passed, failed, skipped with the reason, or cut at the time budget; its
#      duration and the key figures of its output) and writes it to hw_check_summary.txt, with every step's output
#      in hw_check_logs.txt, in $OUT when set, else BUILD_DIR/hw_check/. Exits 1 if anything failed (2: bad
#      usage, 130: interrupted).
#
# Everything but the build ends within --budget seconds (default 540, for a lent machine's 10-minute call): a step
# that would start later is skipped, one that would end later is cut at the budget (a step that runs out of its own
# time limit fails). Nothing waits on input; Ctrl-C stops the running step and prints the summary.
#
# A machine without the network or the Debian packages (a lent GPU machine): make a bundle here, in the
# repository (build* is gitignored), carry it there and run the script on it:
#   scripts/hw_check.sh --pack build-pack      # here: builds the needed targets (in build-portable unless
#                                              # BUILD_DIR is given), copies them and their libraries
#   scripts/hw_check.sh build-pack             # there
# The bundle holds the programs and the shared libraries a machine without Debian's packages lacks (Abseil, zstd,
# Open MPI, OpenMP, the CUDA runtime); cuBLAS and NCCL are too large and are looked for there (CUDA toolkit, the
# Python wheels). A fresh build directory for --pack is configured for any x86-64-v3 CPU (AVX2, FMA, F16C), not
# -march=native; the AVX-512 kernels are chosen at run time either way.
#
# Usage: scripts/hw_check.sh [options] [BUILD_DIR] [-- CMAKE_ARGS]   (BUILD_DIR: default build; CMAKE_ARGS
#        configure a new build directory, as scripts/build.sh's arguments: -- -DBERTFORGE_CUDA=OFF)
#   --list, --dry-run  print the machine and the plan (each step and its command, or why it skips); run nothing
#   --no-build         never build; steps whose program is missing skip
#   --rebuild          bring every needed target up to date, even when all exist
#   --setup            run scripts/setup.sh first (installs the missing Debian packages; needs the network)
#   --pack DIR         build the needed targets and copy them, with their libraries, into DIR; then stop
#   --only cpu|gpu     only the CPU steps, or only the GPU steps
#   --threads N        OpenMP threads of the CPU benchmarks (default 2; with a GPU, up to 8)
#   --budget S         seconds everything but the build may take (default 540; 0: no limit)
#   --out DIR          where the summary and the logs go
#   --steps REGEX      only the steps whose id or title matches (grep -E), e.g. 'int8|bench_gemm'
# HW_CHECK_NVIDIA_SMI names the nvidia-smi to ask (none: act as if there were no GPU), for tests.
set -uo pipefail

usage() { sed -n '/^# Usage:/,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "hw_check: $*" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
caller_pwd=$PWD

# ---- Options -----------------------------------------------------------------------------------------------------
build_arg="" list_only=0 build_mode=missing run_setup=0 pack_arg="" only=all threads="" budget=540 out_arg=""
steps_re="" cmake_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; cmake_args=("$@"); break ;;
    --list | --dry-run) list_only=1 ;;
    --no-build) build_mode=none ;;
    --rebuild) build_mode=all ;;
    --setup) run_setup=1 ;;
    --pack) [ $# -ge 2 ] || die "--pack needs a directory"; pack_arg=$2; shift ;;
    --only) [ $# -ge 2 ] || die "--only needs cpu or gpu"; only=$2; shift ;;
    --threads) [ $# -ge 2 ] || die "--threads needs a number"; threads=$2; shift ;;
    --budget) [ $# -ge 2 ] || die "--budget needs seconds"; budget=$2; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out_arg=$2; shift ;;
    --steps) [ $# -ge 2 ] || die "--steps needs a regular expression"; steps_re=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) build_arg=$1 ;;
  esac
  shift
done
case $only in cpu | gpu | all) ;; *) die "--only takes cpu or gpu, not '$only'" ;; esac
[ -z "$threads" ] || [[ $threads =~ ^[1-9][0-9]*$ ]] || die "--threads takes a positive number, not '$threads'"
# a bundle holds the programs as they are now: bring them up to date first
if [ -n "$pack_arg" ] && [ "$build_mode" = missing ]; then build_mode=all; fi
[[ $budget =~ ^[0-9]+$ ]] || die "--budget takes seconds, not '$budget'"
if [ -n "$steps_re" ]; then
  grep -qE -- "$steps_re" <<<"" 2>/dev/null; [ $? -le 1 ] || die "--steps: not a regular expression: '$steps_re'"
fi

# A relative path names a directory under the caller's working directory if one is there, else under the repository
# (as scripts/build.sh's BUILD_DIR).
resolve() {
  case $1 in
    /*) echo "$1" ;;
    *) if [ -e "$caller_pwd/$1" ]; then echo "$caller_pwd/$1"; else echo "$repo/$1"; fi ;;
  esac
}
# --pack without a build directory builds a portable one beside build/ (build/ is -march=native)
if [ -z "$build_arg" ]; then if [ -n "$pack_arg" ]; then build_arg="build-portable"; else build_arg="build"; fi; fi
build=$(resolve "$build_arg")
cd "$repo" || die "cannot enter $repo"
if [ -n "$pack_arg" ]; then
  case $pack_arg in /*) pack=$pack_arg ;; *) pack=$repo/$pack_arg ;; esac
  [ "$pack" != "$build" ] || die "--pack DIR must differ from the build directory"
fi

nproc_all=$(nproc 2>/dev/null || echo 2)
test_threads=$((nproc_all < 16 ? nproc_all : 16))  # GPU tests compare with CPU references: all cores help
bundle=0
[ -f "$build/HW_CHECK_BUNDLE" ] && bundle=1
work=$(mktemp -d "${TMPDIR:-/tmp}/hw_check.XXXXXX") || die "mktemp failed"
step_pid=""
interrupted=0
# shellcheck disable=SC2317  # trap handlers
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
# shellcheck disable=SC2317
on_signal() {
  interrupted=1
  if [ -n "$step_pid" ]; then kill -TERM "$step_pid" 2>/dev/null; fi
}
trap on_signal INT TERM

have() { command -v "$1" > /dev/null 2>&1; }
hr() { printf '%s\n' "----------------------------------------------------------------------------------------------------"; }

# ---- 1. The machine ------------------------------------------------------------------------------------------------
lscpu_field() { LC_ALL=C lscpu 2>/dev/null | sed -n "s/^$1:[[:space:]]*//p" | head -n 1; }
cpuinfo_field() { sed -n "s/^$1[[:space:]]*: //p" /proc/cpuinfo 2>/dev/null | head -n 1; }
cpu_name=$(lscpu_field 'Model name')
[ -n "$cpu_name" ] || cpu_name=$(cpuinfo_field 'model name')
[ -n "$cpu_name" ] || cpu_name="unknown CPU"
cpu_family=$(lscpu_field 'CPU family')
[ -n "$cpu_family" ] || cpu_family=$(cpuinfo_field 'cpu family')
cpu_model=$(lscpu_field 'Model')
[ -n "$cpu_model" ] || cpu_model=$(cpuinfo_field 'model')
cpu_flags=" $(lscpu_field 'Flags') "
[ "$cpu_flags" != "  " ] || cpu_flags=" $(cpuinfo_field 'flags') "
has_flag() { [[ $cpu_flags == *" $1 "* ]]; }
isa_flags=(avx2 fma f16c avx512f avx512bw avx512vl avx512dq avx512_vnni avx512_bf16 avx512_fp16 avx_vnni
           amx_tile amx_int8 amx_bf16)
isa_have="" isa_lack=""
for f in "${isa_flags[@]}"; do
  if has_flag "$f"; then isa_have+=" $f"; else isa_lack+=" $f"; fi
done
cpu_line="$cpu_name (family ${cpu_family:-?}, model ${cpu_model:-?}), $nproc_all CPUs"

# The kernel paths this CPU can run, as the dispatch decides them (quant/int8_gemm_avx512.cpp, ops/cpu/gemm*).
paths="avx2+fma:$(has_flag avx2 && has_flag fma && echo yes || echo no)"
paths+=" avx512:$(has_flag avx512f && has_flag avx512bw && has_flag avx512vl && echo yes || echo no)"
paths+=" avx512-vnni:$(has_flag avx512f && has_flag avx512bw && has_flag avx512_vnni && echo yes || echo no)"
paths+=" avx512-bf16:$(has_flag avx512f && has_flag avx512_bf16 && echo yes || echo no)"
paths+=" amx:$(has_flag amx_tile && echo yes || echo no)"

gpu_count=0 gpu_line="" gpu_why=""
smi=${HW_CHECK_NVIDIA_SMI:-nvidia-smi}
if [ "$smi" = none ]; then
  gpu_why="no NVIDIA GPU (HW_CHECK_NVIDIA_SMI=none)"
elif ! have "$smi"; then
  gpu_why="no NVIDIA GPU (nvidia-smi not found)"
elif ! gpu_list=$(timeout 30 "$smi" -L 2>&1); then
  gpu_why="nvidia-smi failed: $(tail -n 1 <<<"$gpu_list")"
else
  gpu_count=$(grep -c '^GPU [0-9]' <<<"$gpu_list")
  if [ "$gpu_count" -eq 0 ]; then
    gpu_why="nvidia-smi lists no GPU"
  else
    query=$(timeout 30 "$smi" --query-gpu=index,name,driver_version,compute_cap,memory.total \
              --format=csv,noheader 2>/dev/null) ||
      query=$(timeout 30 "$smi" --query-gpu=index,name,driver_version,memory.total --format=csv,noheader \
                2>/dev/null) || query=""
    if [ -n "$query" ]; then
      gpu_line=$(awk -F', *' 'NF >= 5 { printf "%sGPU %s: %s, driver %s, compute capability %s, %s", sep, $1, $2, $3, $4, $5; sep = "; " }
                              NF == 4 { printf "%sGPU %s: %s, driver %s, %s", sep, $1, $2, $3, $4; sep = "; " }' <<<"$query")
    else
      gpu_line=$(head -n 4 <<<"$gpu_list" | tr '\n' ';')
    fi
  fi
fi
gpu_summary=${gpu_line:-$gpu_why}
# CPU benchmark threads: 2 as the README's figures; with a GPU, up to 8 so that everything fits a lent machine's call
if [ -z "$threads" ]; then
  threads=2
  [ "$gpu_count" -eq 0 ] || threads=$((nproc_all < 8 ? nproc_all : 8))
fi
nvcc_version=""
if have nvcc; then nvcc_version=$(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
elif [ -x /usr/local/cuda/bin/nvcc ]; then nvcc_version=$(/usr/local/cuda/bin/nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
fi

# ---- What runs: the programs, and the GoogleTest binaries with per-ISA cases ----------------------------------------
tools=(bert_prep bert_train bert_quant bert_eval)
cpu_benches=(bench_int8_ceiling bench_gemm bench_int8_gemm bench_quant_inference)
# Test binaries (layer_name, as tests/CMakeLists.txt names them) whose cases depend on the CPU's ISA: those whose
# source names an ISA or the dispatch, and the GEMM / mixed-precision / int8 suites, which run the best path.
isa_tests=()
add_unique() {  # add_unique ARRAY_NAME VALUE
  local -n list=$1
  local v
  for v in "${list[@]}"; do [ "$v" = "$2" ] && return; done
  list+=("$2")
}
for t in ops_test_gemm ops_test_autocast quant_test_int8_gemm quant_test_quantized_linear; do
  [ -f "$repo/tests/${t%%_test_*}/test_${t#*_test_}.cpp" ] && add_unique isa_tests "$t"
done
while IFS= read -r src; do
  layer=$(basename "$(dirname "$src")")
  add_unique isa_tests "${layer}_$(basename "$src" .cpp)"
done < <(grep -lE 'Isa\b|Isa::|_isa\(|_ISA\b|available_isas|__builtin_cpu_supports' \
           "$repo"/tests/{core,autograd,ops,models,train,quant}/test_*.cpp 2>/dev/null)
cuda_tests=()
for src in "$repo"/tests/cuda/test_*.cpp; do
  [ -f "$src" ] && cuda_tests+=("cuda_$(basename "$src" .cpp)")
done
gpu_programs=(bench_cuda_kernels bench_train "${cuda_tests[@]}")

program() {  # program NAME: its path in the build (tools at the top, tests and benchmarks under tests/)
  case $1 in bert_*) echo "$build/$1" ;; *) echo "$build/tests/$1" ;; esac
}
built() { [ -x "$(program "$1")" ]; }

# Build facts: from CMakeCache.txt, or the bundle's HW_CHECK_BUNDLE.
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt" 2>/dev/null | head -n 1; }
bundle_value() { sed -n "s/^$1=//p" "$build/HW_CHECK_BUNDLE" 2>/dev/null | head -n 1; }
describe_build() {
  if [ "$bundle" -eq 1 ]; then
    echo "bundle $build (made $(bundle_value made) on $(bundle_value host); $(bundle_value flags); from $(bundle_value source_dir) at $(bundle_value commit))"
  elif [ -f "$build/CMakeCache.txt" ]; then
    local cuda native
    cuda=$(cache_value BERTFORGE_CUDA)
    [ "$cuda" = ON ] && cuda="ON (NCCL $(cache_value BERTFORGE_NCCL))"
    native=$(cache_value BERTFORGE_NATIVE)
    echo "$build ($(cache_value CMAKE_BUILD_TYPE), CUDA ${cuda:-OFF}, MPI $(cache_value BERTFORGE_MPI), -march=native ${native:-?}, flags '$(cache_value CMAKE_CXX_FLAGS)')"
  else
    echo "$build (not configured yet)"
  fi
}
cuda_in_build() {
  if [ "$bundle" -eq 1 ]; then [ "$(bundle_value cuda)" = ON ]; else [ "$(cache_value BERTFORGE_CUDA)" = ON ]; fi
}

# The Python of the benchmarks' PyTorch peers (tests/bench/bench_util.h reads BERTFORGE_BENCH_PYTHON, default
# /usr/bin/python3): with a GPU, one whose torch sees it; else the first that has torch.
peer_line=""
choose_peer_python() {
  local candidates=() c info fallback="" fallback_info=""
  if [ -n "${BERTFORGE_BENCH_PYTHON:-}" ]; then
    candidates=("$BERTFORGE_BENCH_PYTHON")
  else
    [ -x /usr/bin/python3 ] && candidates+=(/usr/bin/python3)
    c=$(command -v python3 2>/dev/null) && [ "$c" != /usr/bin/python3 ] && candidates+=("$c")
  fi
  for c in "${candidates[@]}"; do
    info=$(timeout 30 "$c" -c 'import torch; print(torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")' \
             2>/dev/null | tail -n 1) || continue
    [ -n "$info" ] || continue
    if [ "$gpu_count" -eq 0 ] || [[ $info == *" cuda" ]]; then
      export BERTFORGE_BENCH_PYTHON=$c
      peer_line="torch $info ($c)"
      return
    fi
    [ -n "$fallback" ] || { fallback=$c; fallback_info=$info; }
  done
  if [ -n "$fallback" ]; then
    export BERTFORGE_BENCH_PYTHON=$fallback
    peer_line="torch $fallback_info ($fallback; no torch that sees the GPU: GPU peers will not run)"
  else
    peer_line="none (no Python with torch: the benchmarks print their own figures only)"
  fi
}

# A bundle was built elsewhere: its programs read the source tree (peer scripts, fixtures) at the path they were
# built in. Where that path does not exist, it is made a link to this checkout.
bundle_source_link() {
  local source_dir
  source_dir=$(bundle_value source_dir)
  [ "$bundle" -eq 1 ] && [ -n "$source_dir" ] && [ "$source_dir" != "$repo" ] || return 0
  if [ -e "$source_dir" ]; then
    echo "note:   the bundle reads its source files from $source_dir (exists; not this checkout, $repo)"
  elif [ "$list_only" -eq 1 ]; then
    echo "note:   would link $source_dir -> $repo (the bundle reads its source files there)"
  elif mkdir -p "$(dirname "$source_dir")" 2>/dev/null && ln -s "$repo" "$source_dir" 2>/dev/null; then
    echo "note:   linked $source_dir -> $repo (the bundle reads its source files there)"
  else
    echo "note:   cannot link $source_dir -> $repo: the peers and fixture-reading tests may fail"
  fi
}

# Shared libraries: the bundle's lib/, then what ldd cannot find, looked for where CUDA and its Python wheels keep
# them (cuBLAS, NCCL).
lib_line=""
resolve_libraries() {
  local missing=() dirs=() lib found p roots=() system_libs
  if [ -d "$build/lib" ]; then
    # only the bundled libraries this system lacks, so that they do not shadow its own (the Python peers read
    # LD_LIBRARY_PATH too)
    system_libs=$(ldconfig -p 2>/dev/null | awk '{print $1}')
    mkdir -p "$work/lib"
    for lib in "$build"/lib/*; do
      [ -e "$lib" ] || continue
      grep -qxF -- "$(basename "$lib")" <<<"$system_libs" || ln -s "$lib" "$work/lib/"
    done
    export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    lib_line="from the bundle: $(find "$work/lib" -mindepth 1 | wc -l) libraries this system lacks"
  fi
  have ldd || return 0
  for p in "${tools[@]}" "${cpu_benches[@]}" "${isa_tests[@]}" "${gpu_programs[@]}"; do
    built "$p" || continue
    while IFS= read -r lib; do add_unique missing "$lib"; done < <(ldd "$(program "$p")" 2>/dev/null | awk '/not found/ {print $1}')
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  for p in /usr/local/cuda*/lib64 /usr/local/cuda*/lib /usr/local/cuda*/targets/*/lib /usr/local/lib /usr/lib/x86_64-linux-gnu /opt; do
    [ -d "$p" ] && roots+=("$p")
  done
  for p in /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
    [ -x "$p" ] || continue
    while IFS= read -r lib; do [ -d "$lib/nvidia" ] && roots+=("$lib/nvidia"); done < <(timeout 30 "$p" -c 'import site; print("\n".join(site.getsitepackages()))' 2>/dev/null)
  done
  local still=()
  for lib in "${missing[@]}"; do
    found=$(timeout 60 find "${roots[@]}" -maxdepth 6 -name "$lib" \( -type f -o -type l \) -print -quit 2>/dev/null)
    if [ -n "$found" ]; then add_unique dirs "$(dirname "$found")"; else still+=("$lib"); fi
  done
  if [ ${#dirs[@]} -gt 0 ]; then
    local joined
    joined=$(IFS=:; echo "${dirs[*]}")
    export LD_LIBRARY_PATH="$joined${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    lib_line+="${lib_line:+; }found ${missing[*]} under $joined"
  fi
  [ ${#still[@]} -eq 0 ] || lib_line+="${lib_line:+; }MISSING ${still[*]}: the programs that need them cannot start"
}

print_machine() {
  echo "hw_check: $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname 2>/dev/null || echo '?')"
  echo "cpu:    $cpu_line"
  echo "isa:   $isa_have${isa_lack:+   | lacks:$isa_lack}"
  echo "paths:  $paths"
  echo "gpu:    $gpu_summary${nvcc_version:+ (nvcc $nvcc_version)}"
  echo "build:  $(describe_build)"
  local v
  for v in BERTFORGE_GEMM_ISA BERTFORGE_INT8_ISA OMP_NUM_THREADS; do
    [ -z "${!v:-}" ] || echo "env:    $v=${!v} is set: it applies to every step (the tests and benchmarks set OMP_NUM_THREADS themselves)"
  done
}

# ---- 2. Building ----------------------------------------------------------------------------------------------------
needed_targets() {
  if [ -n "$pack_arg" ]; then printf '%s\n' "${tools[@]}" "${cpu_benches[@]}" "${isa_tests[@]}" "${gpu_programs[@]}"; return; fi
  if [ "$only" != gpu ]; then printf '%s\n' "${cpu_benches[@]}" bench_train "${isa_tests[@]}"; fi
  if [ "$only" != cpu ] && [ "$gpu_count" -gt 0 ]; then printf '%s\n' "${tools[@]}" "${gpu_programs[@]}"; fi
}
# Whether the configured build defines target $1 (CMake lists every target's directory, whatever the generator).
has_target() { grep -q "/$1\.dir\$" "$build/CMakeFiles/TargetDirectories.txt" 2>/dev/null; }
build_status="" build_secs=0 build_note=""
build_programs() {
  local targets=() present=() t configure_args=() start=$SECONDS
  if [ "$bundle" -eq 1 ]; then build_status=skipped build_note="a bundle: nothing to build"; return; fi
  while IFS= read -r t; do
    if [ "$build_mode" = all ] || ! built "$t"; then add_unique targets "$t"; fi
  done < <(needed_targets)
  if [ ${#targets[@]} -eq 0 ]; then build_status=skipped build_note="every program present (--rebuild to update them)"; return; fi
  if [ "$build_mode" = none ]; then
    build_status=skipped build_note="--no-build: ${#targets[@]} programs missing (${targets[*]})"
    return
  fi
  if [ -x /usr/local/cuda/bin/nvcc ] && ! have nvcc; then export PATH="/usr/local/cuda/bin:$PATH"; fi
  if ! have cmake; then
    build_status=failed build_note="cmake not found: run scripts/setup.sh (or --setup), or carry a bundle (--pack)"
    return
  fi
  if [ ! -f "$build/CMakeCache.txt" ]; then
    # scripts/build.sh's configuration; a bundle's is portable (any x86-64-v3 CPU, not this one's -march=native)
    [ -z "$pack_arg" ] || configure_args=(-DBERTFORGE_NATIVE=OFF -DCMAKE_CXX_FLAGS=-march=x86-64-v3)
    configure_args+=("${cmake_args[@]}")
    echo "==> configure: cmake -S $repo -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release ${configure_args[*]}"
    if ! cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "${configure_args[@]}" \
         > "$work/configure.log" 2>&1; then
      tail -n 30 "$work/configure.log"
      mkdir -p "$build" && cp "$work/configure.log" "$build/hw_check_configure.log"
      build_status=failed build_secs=$((SECONDS - start))
      build_note="cmake could not configure $build (missing packages? scripts/setup.sh installs them; or carry a bundle made with --pack)"
      return
    fi
  fi
  for t in "${targets[@]}"; do has_target "$t" && present+=("$t"); done  # no CUDA targets without the backend
  if [ ${#present[@]} -eq 0 ]; then
    build_status=skipped build_note="not in this configuration: ${targets[*]}"
    return
  fi
  echo "==> build ${#present[@]} targets in $build: ${present[*]} (output: $build/hw_check_build.log)"
  if cmake --build "$build" -j "$nproc_all" --target "${present[@]}" > "$build/hw_check_build.log" 2>&1; then
    build_status=passed build_note="built ${present[*]}"
  else
    grep -E -A3 'error|FAILED' "$build/hw_check_build.log" | head -n 30
    build_status=failed
    build_note="cmake --build failed: $(grep -m1 -E 'error' "$build/hw_check_build.log" | cut -c1-200)"
  fi
  build_secs=$((SECONDS - start))
}

make_bundle() {
  local p lib dest size
  [ "$build_status" != failed ] || { echo "hw_check: the build failed; no bundle made" >&2; return 1; }
  rm -rf "$pack"
  mkdir -p "$pack/tests" "$pack/lib" || return 1
  for p in "${tools[@]}" "${cpu_benches[@]}" "${isa_tests[@]}" "${gpu_programs[@]}"; do
    built "$p" || continue
    case $p in bert_*) dest=$pack/$p ;; *) dest=$pack/tests/$p ;; esac
    cp "$(program "$p")" "$dest" || return 1
    have strip && strip --strip-unneeded "$dest" 2>/dev/null
    # Its shared libraries, but the C/C++ runtime of every Linux and the CUDA libraries of the driver and the
    # toolkit too large to carry (cuBLAS, NCCL: found on the machine).
    while IFS= read -r lib; do
      case $(basename "$lib") in
        ld-linux* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libstdc++.so* | libgcc_s.so* | \
          libcuda.so* | libcublas* | libnccl* | libnvidia*) continue ;;
      esac
      [ -e "$pack/lib/$(basename "$lib")" ] || cp -L "$lib" "$pack/lib/" || return 1
    done < <(ldd "$dest" 2>/dev/null | awk '$3 ~ /^\// {print $3}')
  done
  {
    echo "source_dir=$repo"
    echo "made=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "host=$cpu_name"
    if [ "$(cache_value BERTFORGE_NATIVE)" = ON ]; then echo "flags=-march=native"
    else echo "flags=CMAKE_CXX_FLAGS '$(cache_value CMAKE_CXX_FLAGS)'"
    fi
    echo "cuda=$(cache_value BERTFORGE_CUDA)"
    echo "commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
  } > "$pack/HW_CHECK_BUNDLE"
  size=$(du -sm "$pack" | cut -f1)
  echo "hw_check: bundle $pack: $(find "$pack" -type f | wc -l) files, $size MiB; run there: scripts/hw_check.sh ${pack_arg}"
  if [ "$(cache_value BERTFORGE_NATIVE)" = ON ]; then
    echo "hw_check: note: $build is built with -march=native: the bundle may not run on another CPU (a fresh build directory is configured for x86-64-v3)"
  fi
  [ "$size" -le 60 ] || echo "hw_check: note: over 60 MiB: a lent machine's carry limit is 64 MiB in all"
}

# ---- 3. The plan --------------------------------------------------------------------------------------------------
# A step: id, group, title, time limit (s), parser, a skip reason (empty: it runs), the step it needs, its command
# (a bash command line, run as bash -c under timeout, stdin from /dev/null).
ids=() groups=() titles=() limits=() parsers=() skips=() needs=() cmds=()
add_step() {  # add_step ID GROUP TITLE LIMIT PARSER SKIP NEEDS COMMAND
  ids+=("$1") groups+=("$2") titles+=("$3") limits+=("$4") parsers+=("$5") skips+=("$6") needs+=("$7") cmds+=("$8")
}
q() { printf '%q' "$1"; }
cpu_test_env="OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive"  # as CTest runs them (tests/CMakeLists.txt)
gpu_test_env="OMP_NUM_THREADS=$test_threads OMP_WAIT_POLICY=passive"
bench_env="OMP_NUM_THREADS=$threads"
line_buffered=""
have stdbuf && line_buffered="stdbuf -oL -eL "  # a step killed at its limit keeps the lines it printed

missing_reason() {  # why program $1 is absent
  if [ "$bundle" -eq 1 ]; then echo "not in the bundle"
  elif [ "$build_status" = failed ]; then echo "not built (the build failed)"
  elif [[ " ${gpu_programs[*]} " == *" $1 "* ]] && ! cuda_in_build && [ -f "$build/CMakeCache.txt" ]; then
    echo "not built: $build has no CUDA backend (configured without nvcc or with -DBERTFORGE_CUDA=OFF)"
  elif [ "$list_only" -eq 1 ]; then echo "not built yet (built by the run)"
  else echo "not built (--no-build, or the target is not in this configuration)"
  fi
}

plan_cpu_tests() {
  local t skip names token tokens listing
  local cpu_skip=""
  [ "$only" = gpu ] && cpu_skip="--only gpu"
  for t in "${isa_tests[@]}"; do
    skip=$cpu_skip
    [ -n "$skip" ] || built "$t" || skip=$(missing_reason "$t")
    if [ -n "$skip" ]; then
      add_step "$t" cpu "$t [per-ISA cases, dispatch]" 120 gtest "$skip" "" ""
      continue
    fi
    # Each parameterised case whose parameter name starts with an ISA (Avx512Vnni, avx512_bf16_bf16_M7N9K5: path
    # avx512-bf16 on bf16, avx512_bf16_M7N9K5: path avx512 on bf16): "token suite full_name", the token the ISA in
    # lower case without separators, "base" for scalar and AVX2. An ISA followed by an operand type wins.
    listing=$(timeout 60 "$(program "$t")" --gtest_list_tests 2>/dev/null | awk '
      function isa_of(p,   i, c, best) {
        best = ""
        for (i = 1; i <= ncand; i++) {
          if (!match(p, "^" cand[i])) continue
          c = substr(p, 1, RLENGTH)
          if (best == "") best = c
          if (substr(p, RLENGTH + 1) ~ /^[_-](f32|fp32|bf16|f16|fp16|i8|s8|u8|int8)([_-]|$)/) return c
        }
        return best
      }
      BEGIN { ncand = split("avx512[_-]?(vnni|bf16|fp16) amx[_-]?(bf16|int8|tile|fp16) avx10[_.]?[0-9]+ avx512 amx " \
                            "avx10 avx2 scalar portable generic reference", cand, " ") }
      /^[^ ]/ { suite = $1; next }
      /^  [^ ]/ { np = split($1, parts, "/"); if (np < 2) next
                  token = isa_of(tolower(parts[np])); gsub(/[_.-]/, "", token)
                  if (token ~ /^(scalar|avx2|portable|generic|reference)$/) token = "base"
                  if (token != "") print token, suite, suite $1 }')
    tokens=$(awk '$1 != "base" {print $1}' <<<"$listing" | sort -u)
    for token in $tokens; do
      names=$(awk -v t="$token" '$1 == t {print $3}' <<<"$listing" | paste -sd: -)
      add_step "$t.$token" cpu "$t [$token cases: $(awk -v t="$token" '$1 == t' <<<"$listing" | wc -l)]" 120 gtest \
        "" "" "$cpu_test_env $(q "$(program "$t")") --gtest_filter=$(q "$names")"
    done
    # the rest (the suites without ISA cases): dispatch, and tests that loop over every path this CPU has
    names=$(awk 'NF {print $2 "*"}' <<<"$listing" | sort -u | paste -sd: -)
    add_step "$t.rest" cpu "$t [$([ -n "$names" ] && echo other || echo all) cases: best path]" 180 gtest "" "" \
      "$cpu_test_env $(q "$(program "$t")")${names:+ --gtest_filter=$(q "-$names")}"
  done
}
plan_cpu_benches() {
  local b args limit title skip train cpu_skip=""
  [ "$only" = gpu ] && cpu_skip="--only gpu"
  for b in "${cpu_benches[@]}"; do
    args="" limit=240 title=$b
    case $b in
      bench_int8_ceiling) limit=60 ;;
      bench_quant_inference) args=" base" limit=360 title="bench_quant_inference base" ;;
    esac
    skip=$cpu_skip
    [ -n "$skip" ] || built "$b" || skip=$(missing_reason "$b")
    add_step "$b" cpu "$title ($threads threads)" "$limit" "$b" "$skip" "" \
      "$bench_env $line_buffered$(q "$(program "$b")")$args"
  done
  # Mixed-precision training on the CPU: what AVX512-BF16 buys a whole training step (mini: FP32, then bf16).
  skip=$cpu_skip
  [ -n "$skip" ] || has_flag avx512_bf16 || skip="the CPU lacks AVX512-BF16 (bf16 GEMMs run widened, at FP32 speed)"
  [ -n "$skip" ] || built bench_train || skip=$(missing_reason bench_train)
  train="$bench_env $line_buffered$(q "$(program bench_train)")"
  add_step bench_train_cpu_bf16 cpu "bench_train mini: FP32, then --mixed_precision bf16 ($threads threads)" 300 \
    bench_train "$skip" "" "$train mini && $train --mixed_precision bf16 mini"
}

plan_gpu() {
  local gpu_skip="" t skip title limit
  if [ "$only" = cpu ]; then gpu_skip="--only cpu"
  elif [ "$gpu_count" -eq 0 ]; then gpu_skip=$gpu_why
  elif { [ "$bundle" -eq 1 ] || [ -f "$build/CMakeCache.txt" ]; } && ! cuda_in_build; then
    gpu_skip="$build has no CUDA backend (configured without nvcc or with -DBERTFORGE_CUDA=OFF)"
  fi
  for t in "${cuda_tests[@]}"; do
    skip=$gpu_skip
    [ -n "$skip" ] || built "$t" || skip=$(missing_reason "$t")
    title="$t" limit=120
    case $t in
      *nccl*) title="$t (NCCL, one rank)" ;;
      *cuda_ops*) title="$t (every op vs the CPU, training)" limit=300 ;;
    esac
    add_step "$t" gpu "$title" "$limit" gtest "$skip" "" "$gpu_test_env $(q "$(program "$t")")"
  done
  # bert_eval --int8 on the GPU, on a W8A8 model trained here in seconds, against the CPU's int8 run.
  skip=$gpu_skip
  for t in "${tools[@]}"; do [ -n "$skip" ] || built "$t" || skip="$t $(missing_reason "$t")"; done
  add_step tiny_model gpu "tiny model: prep, train 20 steps, W8A8 quant" 180 tiny "$skip" "" \
    "$gpu_test_env hwc_tiny_model $(q "$build") $(q "$repo") $(q "$work/model")"
  add_step eval_int8_cuda gpu "bert_eval --int8 --device cuda vs cpu" 180 eval "$skip" tiny_model \
    "$gpu_test_env hwc_eval_int8 $(q "$build") $(q "$work/model")"
  skip=$gpu_skip
  [ -n "$skip" ] || built bench_cuda_kernels || skip=$(missing_reason bench_cuda_kernels)
  add_step bench_cuda_kernels gpu "bench_cuda_kernels" 180 bench_cuda_kernels "$skip" "" \
    "$line_buffered$(q "$(program bench_cuda_kernels)")"
  skip=$gpu_skip
  [ -n "$skip" ] || built bench_train || skip=$(missing_reason bench_train)
  add_step bench_train_cuda gpu "bench_train --device cuda (FP32)" 240 bench_train "$skip" "" \
    "$gpu_test_env $line_buffered$(q "$(program bench_train)") --device cuda"
  add_step bench_train_cuda_bf16 gpu "bench_train --device cuda --mixed_precision bf16" 240 bench_train "$skip" "" \
    "$gpu_test_env $line_buffered$(q "$(program bench_train)") --device cuda --mixed_precision bf16"
}

# Steps made of several commands (run through bash -c, so exported).
# shellcheck disable=SC2317  # run through bash -c
hwc_tiny_model() {  # BUILD SOURCE DIR
  local build=$1 source=$2 dir=$3
  set -o pipefail
  mkdir -p "$dir" || return 1
  echo "+ bert_prep"
  "$build/bert_prep" --input "$source/tests/e2e/fixtures/kjv_excerpt.txt" --out "$dir/data" --documents blank \
    --validation_fraction 0.2 --seed 3 --vocab_size 600 || return 1
  echo "+ bert_train"
  "$build/bert_train" --data "$dir/data" --out "$dir/run" --preset tiny --seq_len 64 --batch_size 8 --steps 20 \
    --warmup_steps 2 --lr 2e-3 --log_interval 10 --eval_interval 0 --eval_batches 4 --checkpoint_interval 0 || return 1
  echo "+ bert_quant"
  "$build/bert_quant" --checkpoint "$dir/run" --data "$dir/data" --seq_len 64 --batch_size 8 --calibration_batches 4 \
    --eval_batches 4 --out "$dir/w8a8"
}
# shellcheck disable=SC2317
hwc_eval_int8() {  # BUILD DIR: perplexity of the int8 model on the CPU and on the GPU (they must agree), and
  local build=$1 dir=$2 cpu gpu  # the GPU run against the FP model (hidden-state SQNR, tokens/s)
  set -o pipefail
  local common=(--checkpoint "$dir/w8a8" --int8 --data "$dir/data" --seq_len 64 --batch_size 8 --batches 4)
  echo "+ bert_eval --int8 (cpu)"
  "$build/bert_eval" "${common[@]}" | tee "$dir/eval_cpu.log" || return 1
  echo "+ bert_eval --int8 --device cuda --compare_to the FP model"
  "$build/bert_eval" "${common[@]}" --device cuda --compare_to "$dir/run" | tee "$dir/eval_cuda.log" || return 1
  cpu=$(awk '/^perplexity/ {print $2; exit}' "$dir/eval_cpu.log")
  gpu=$(awk '/^perplexity/ {print $2; exit}' "$dir/eval_cuda.log")
  echo "int8 perplexity: cpu ${cpu:-?} cuda ${gpu:-?}"
  awk -v c="$cpu" -v g="$gpu" 'BEGIN { if (c == "" || g == "" || c <= 0) exit 1; r = g / c
                                       printf "perplexity cuda/cpu %.4f\n", r; exit (r > 1.02 || r < 0.98) }' || {
    echo "FAIL: the GPU's int8 perplexity differs from the CPU's by more than 2%"
    return 1
  }
}
export -f hwc_tiny_model hwc_eval_int8

# ---- 4. Running and reporting --------------------------------------------------------------------------------------
statuses=() secs=() notes=()
gtest_counts() {  # LOG -> "passed skipped failed"
  awk '/^\[  PASSED  \] [0-9]+ test/ {p = $4} /^\[  SKIPPED \] [0-9]+ test/ {s = $4} /^\[  FAILED  \] [0-9]+ test/ {f = $4}
       END {print p + 0, s + 0, f + 0}' "$1"
}
first_skip_reason() {
  awk '/: Skipped$/ { getline; if ($0 != "") { print; exit } }' "$1"
}

# Key figures of each benchmark's output (ranges over its lines), for the summary.
range_awk='function add(k, v) { if (!(k in lo)) { order[++n] = k; lo[k] = v; hi[k] = v }
                                if (v < lo[k]) lo[k] = v; if (v > hi[k]) hi[k] = v }
           function show(k) { return lo[k] == hi[k] ? sprintf("%s", lo[k]) : sprintf("%s-%s", lo[k], hi[k]) }'
bench_notes() {  # PARSER LOG
  local log=$2
  case $1 in
    bench_gemm)  # per dtype and path: vs torch, vs our FP32, % of the measured peak
      awk "$range_awk"'
        /^bench_gemm:/ { if (match($0, /paths chosen: [^(;]*/)) head = substr($0, RSTART, RLENGTH)
                         else if (match($0, /backend [^,]*/)) head = substr($0, RSTART, RLENGTH)
                         sub(/ +$/, "", head) }
        /^gemm / { key = $2; if ($3 !~ /^[0-9]+x\(/) key = key " " $3
                   if (match($0, /ratio [0-9.]+/)) add(key SUBSEP "vs torch", substr($0, RSTART + 6, RLENGTH - 6) + 0)
                   if (match($0, /  x [a-z0-9-]+ [0-9.]+/)) { split(substr($0, RSTART + 2, RLENGTH - 2), a, " ")
                                                            add(key SUBSEP "x our " a[2], a[3] + 0) }
                   if (match($0, /[0-9]+% of peak/)) add(key SUBSEP "peak", substr($0, RSTART, RLENGTH - 9) + 0) }
        END { out = head
              for (i = 1; i <= n; i++) { split(order[i], kf, SUBSEP)
                                         v = show(order[i]) (kf[2] == "peak" ? "%" : "x")
                                         out = out (kf[1] == last ? ", " : "; " kf[1] ": ") kf[2] " " v; last = kf[1] }
              print out }' "$log" ;;
    bench_int8_gemm)
      awk "$range_awk"'
        /^bench_int8_gemm:/ { path = $4 }
        /ratio full\/fp32/ { match($0, /ratio full\/fp32 [0-9.]+/); add("int8/fp32", substr($0, RSTART + 16, RLENGTH - 16) + 0) }
        /ours\/torch int8/ { match($0, /ours\/torch int8 [0-9.]+/); add("vs torch int8", substr($0, RSTART + 16, RLENGTH - 16) + 0) }
        /per-token\/fp32/ { match($0, /per-token\/fp32 [0-9.]+/); add("per-token/fp32", substr($0, RSTART + 15, RLENGTH - 15) + 0) }
        END { out = "int8 path " path; for (i = 1; i <= n; i++) out = out "; " order[i] " " show(order[i]) "x"; print out }' "$log" ;;
    bench_int8_ceiling)
      awk '/GMAC\/s +x[0-9.]+/ { name = $0; sub(/ +[0-9.]+ GMAC.*/, "", name)
                                  if (name == "fp32 fma") next
                                  match($0, /x[0-9.]+/); out = out sep name " " substr($0, RSTART, RLENGTH); sep = ", " }
           /not on this CPU/ { out = out sep $0; sep = ", " }
           END { print out " (of the FP32 FMA)" }' "$log" ;;
    bench_quant_inference)
      awk '/^[a-z]+ \(B=/ { preset = $1 }
           /tokens\/s .* vs fp32/ { name = $0; sub(/^ +/, "", name); sub(/   *[0-9].*/, "", name); match($0, /x[0-9.]+ vs fp32/); r = substr($0, RSTART, RLENGTH - 8)
                                    if (name == "int8" || name == "int8-lin" || name == "tok" || name == "smooth+tok") { out = out sep preset " " name " " r; sep = ", " }
                                    if (name == "fp32" && match($0, /x[0-9.]+ vs torch fp32/)) torch = "; fp32 " substr($0, RSTART, RLENGTH)
                                    if (name == "int8" && match($0, /x[0-9.]+ vs torch dyn-int8/)) torch = torch ", int8 " substr($0, RSTART, RLENGTH) }
           /^bench_quant_inference:/ { if (match($0, /int8 GEMM path [a-z0-9-]+/)) path = substr($0, RSTART + 15, RLENGTH - 15) }
           END { print "path " path "; " out " vs our fp32" torch }' "$log" ;;
    bench_train)
      awk '/ B=/ && /bertforge/ { if (match($0, /bertforge +[0-9]+ tokens\/s/)) { tok = substr($0, RSTART + 10, RLENGTH - 19); gsub(/ /, "", tok) }
                                 s = $1 " " tok " tok/s"
                                 if (match($0, /HF +[0-9]+ tokens\/s ratio [0-9.]+/)) { r = substr($0, RSTART, RLENGTH); sub(/.* /, "", r); s = s ", vs torch HF " r "x" }
                                 if (match($0, /same +[0-9]+ tokens\/s ratio [0-9.]+/)) { r = substr($0, RSTART, RLENGTH); sub(/.* /, "", r); s = s ", same " r "x" }
                                 if ($0 ~ /torch: not/) s = s ", torch not run"
                                 out = out sep s; sep = "; " }
           END { print out }' "$log" ;;
    bench_cuda_kernels)
      awk "$range_awk"'
        /^bench_cuda_kernels:/ { if (match($0, /copy [0-9]+ GB\/s/)) copy = substr($0, RSTART, RLENGTH) }
        /%$/ && NF >= 5 { v = $NF; sub(/%/, "", v); add("kernels % of copy", v + 0) }
        /^GEMM / { gemm = 1; next }
        gemm && NF >= 3 && $NF ~ /^[0-9.]+$/ { name = $0; sub(/ +[0-9.]+ +[0-9.]+$/, "", name); tf = tf sep name " " $NF; sep = " | " }
        END { out = copy; for (i = 1; i <= n; i++) out = out "; " order[i] " " show(order[i]) "%"; print out "; TFLOP/s " tf }' "$log" ;;
  esac
}

last_line() { tail -n +3 "$1" | grep -v '^$' | tail -n 1 | grep . || echo "(no output)"; }  # below the log's header
selected() { [ -z "$steps_re" ] || grep -qE -- "$steps_re" <<<"${ids[$1]} ${titles[$1]}"; }
run_steps() {
  local i id limit start log status left counts p s f reason need j cut
  local deadline=$((script_start + build_secs + budget))
  for ((i = 0; i < ${#ids[@]}; i++)); do
    id=${ids[i]}
    statuses[i]=skipped secs[i]=0 notes[i]=${skips[i]}
    [ -z "${skips[i]}" ] || continue
    if [ "$interrupted" -eq 1 ]; then notes[i]="interrupted"; continue; fi
    if ! selected "$i"; then notes[i]="not selected (--steps)"; continue; fi
    need=${needs[i]}
    if [ -n "$need" ]; then
      for ((j = 0; j < i; j++)); do
        if [ "${ids[j]}" = "$need" ] && [ "${statuses[j]}" != passed ]; then notes[i]="needs $need, which ${statuses[j]}"; fi
      done
      [ "${notes[i]}" = "" ] || continue
    fi
    limit=${limits[i]} cut=0
    if [ "$budget" -gt 0 ]; then
      left=$((deadline - SECONDS))
      if [ "$left" -lt 20 ]; then notes[i]="time budget spent (--budget $budget)"; continue; fi
      [ "$limit" -le "$left" ] || limit=$left cut=1
    fi
    log=$logs/$(printf '%02d' $((i + 1)))_$id.log
    echo "==> [$((i + 1))/${#ids[@]}] ${titles[i]}   (limit ${limit} s)"
    printf '# %s\n# %s\n' "${titles[i]}" "${cmds[i]}" > "$log"
    start=$SECONDS
    timeout -k 10 "$limit" bash -c "${cmds[i]}" >> "$log" 2>&1 < /dev/null &
    step_pid=$!
    wait "$step_pid"
    status=$?
    while kill -0 "$step_pid" 2>/dev/null; do wait "$step_pid"; status=$?; done  # a signal ended the first wait
    step_pid=""
    secs[i]=$((SECONDS - start))
    if [ "$interrupted" -eq 1 ]; then
      statuses[i]=failed notes[i]="interrupted (Ctrl-C or SIGTERM) after ${secs[i]} s"
    elif { [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; } && [ "$cut" -eq 1 ]; then
      statuses[i]=cut notes[i]="cut at the time budget (--budget $budget); last line: $(last_line "$log" | cut -c1-120)"
    elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
      statuses[i]=failed notes[i]="timed out after $limit s; last line: $(last_line "$log" | cut -c1-120)"
    elif [ "${parsers[i]}" = gtest ]; then
      counts=$(gtest_counts "$log")
      read -r p s f <<<"$counts"
      if [ "$status" -ne 0 ]; then
        statuses[i]=failed
        reason=$(awk '/^\[  FAILED  \] [A-Za-z_]/ && !/listed below/ { name = $4; sub(/,$/, "", name); print name }' "$log" |
                   sort -u | head -n 3 | sed ':a;N;$!ba;s/\n/, /g')
        notes[i]="exit $status; $f failed${reason:+: $reason}; $p passed"
        [ "$f" -gt 0 ] || notes[i]="exit $status: $(last_line "$log" | cut -c1-150)"
      elif [ "$p" -eq 0 ] && [ "$s" -gt 0 ]; then
        statuses[i]=skipped notes[i]="all $s skipped: $(first_skip_reason "$log")"
      elif [ "$p" -eq 0 ]; then
        statuses[i]=failed notes[i]="no test ran"
      else
        statuses[i]=passed notes[i]="$p passed"
        [ "$s" -eq 0 ] || notes[i]+=", $s skipped: $(first_skip_reason "$log")"
        reason=$(grep -m1 -iE 'paths on this CPU|chosen' "$log" | cut -c1-120)
        [ -z "$reason" ] || notes[i]+="; $reason"
      fi
      # nvidia-smi lists a GPU, yet the tests found none: the driver or the CUDA runtime does not work
      if [ "${groups[i]}" = gpu ] && [ "$gpu_count" -gt 0 ] && [ "$s" -gt 0 ] &&
         grep -qi 'no CUDA device' <<<"$(first_skip_reason "$log")"; then
        statuses[i]=failed notes[i]="nvidia-smi lists $gpu_count GPU(s) but CUDA finds none: ${notes[i]}"
      fi
    elif [ "$status" -ne 0 ]; then
      statuses[i]=failed notes[i]="exit $status: $(last_line "$log" | cut -c1-150)"
    else
      statuses[i]=passed
      case ${parsers[i]} in
        bench_*) notes[i]=$(bench_notes "${parsers[i]}" "$log")
                 # an output this script does not know yet: its first line with a ratio
                 [ ${#notes[i]} -gt 30 ] ||
                   notes[i]+=" $(tail -n +3 "$log" | grep -m1 -E 'ratio|vs |x[0-9.]+' | tr -s ' ' | cut -c1-160)" ;;
        eval) notes[i]=$(hwc_eval_notes "$log") ;;
        tiny) notes[i]=$(awk '/^quantized perplexity/ { p = "W8A8 perplexity " $3 " " $4 }
                              /^int8-executed hidden state vs FP/ { s = ", int8 hidden state vs FP " $6 " dB" }
                              END { print p s }' "$log") ;;
        *) notes[i]="" ;;
      esac
    fi
    echo "<== ${statuses[i]} in ${secs[i]} s${notes[i]:+: ${notes[i]}}"
    [ "${statuses[i]}" != failed ] || { grep -v '^$' "$log" | tail -n 15 | sed 's/^/    | /'; }
  done
}
hwc_eval_notes() {
  awk '/^perplexity cuda\/cpu/ { r = "ppl cuda/cpu " $3 }
       /^hidden state vs reference/ { for (i = 1; i <= NF; i++) if ($i == "dB") s = "; vs FP " $(i - 1) " dB SQNR" }
       /^tokens\/s \(encoder\)/ { if (match($0, /: [0-9.]+x/)) t = "; tokens/s " substr($0, RSTART + 2, RLENGTH - 2) " of FP on the GPU" }
       END { print r s t }' "$1"
}

summary() {
  local i n_pass=0 n_fail=0 n_skip=0 n_cut=0 total=$((SECONDS - script_start))
  print_machine
  echo "peer:   $peer_line"
  [ -z "$lib_line" ] || echo "libs:   $lib_line"
  hr
  printf '%-3s %-60s %-8s %6s  %s\n' "#" "step" "status" "time" "notes / key figures"
  printf '%-3s %-60s %-8s %5ss  %s\n' "0" "build" "${build_status:-skipped}" "$build_secs" "$build_note"
  for ((i = 0; i < ${#ids[@]}; i++)); do
    printf '%-3s %-60s %-8s %5ss  %s\n' "$((i + 1))" "${groups[i]}: ${titles[i]}" "${statuses[i]}" "${secs[i]}" "${notes[i]}"
    case ${statuses[i]} in
      passed) n_pass=$((n_pass + 1)) ;;
      failed) n_fail=$((n_fail + 1)) ;;
      cut) n_cut=$((n_cut + 1)) ;;
      *) n_skip=$((n_skip + 1)) ;;
    esac
  done
  hr
  [ "$build_status" != failed ] || echo -n "the build FAILED; "
  echo "${#ids[@]} steps: $n_pass passed, $n_fail failed, $n_skip skipped$([ "$n_cut" -eq 0 ] || echo ", $n_cut cut at the time budget"), in $total s (build $build_secs s; budget $budget s)"
  [ "$n_fail" -eq 0 ] && [ "$build_status" != failed ]
}

# ---- Main ------------------------------------------------------------------------------------------------------------
script_start=$SECONDS
if [ "$run_setup" -eq 1 ] && [ "$list_only" -eq 0 ]; then
  "$repo/scripts/setup.sh" || die "scripts/setup.sh failed"
fi
if [ "$list_only" -eq 1 ]; then
  print_machine
  bundle_source_link
  echo "peer:   (looked for when the steps run)"
  echo "needs:  $(needed_targets | sort -u | tr '\n' ' ')"
  missing=()
  while IFS= read -r t; do built "$t" || missing+=("$t"); done < <(needed_targets | sort -u)
  if [ "$bundle" -eq 1 ]; then echo "builds: none (a bundle)"
  elif [ ${#missing[@]} -eq 0 ]; then echo "builds: none (every program present; --rebuild to update them)"
  elif [ "$build_mode" = none ]; then echo "builds: none (--no-build); missing: ${missing[*]}"
  else echo "builds: ${missing[*]}"
  fi
  [ -z "$pack_arg" ] || echo "pack:   the programs above and their libraries into $pack"
  build_status=""
  plan_cpu_tests
  plan_gpu
  plan_cpu_benches
  hr
  printf '%-3s %-60s %6s  %s\n' "#" "step" "limit" "command, or why it skips"
  for ((i = 0; i < ${#ids[@]}; i++)); do
    if [ -n "${skips[i]}" ]; then what="skip: ${skips[i]}"
    elif ! selected "$i"; then what="skip: not selected (--steps)"
    else
      what=${cmds[i]}
      [ ${#what} -le 260 ] || what="${what:0:240}... ($(tr -cd : <<<"$what" | wc -c) more test names)"
      what+="${needs[i]:+   (after ${needs[i]})}"
    fi
    printf '%-3s %-60s %5ss  %s\n' "$((i + 1))" "${groups[i]}: ${titles[i]}" "${limits[i]}" "$what"
  done
  hr
  echo "${#ids[@]} steps; all but the build end within ${budget} s (--budget; 0: no limit)"
  exit 0
fi

print_machine
build_programs
[ -z "$build_note" ] || echo "build:  $build_status: $build_note ($build_secs s)"
if [ -n "$pack_arg" ]; then
  make_bundle
  exit $?
fi
bundle_source_link
resolve_libraries
[ -z "$lib_line" ] || echo "libs:   $lib_line"
plan_cpu_tests
plan_gpu
plan_cpu_benches
peer_line="not needed (no benchmark selected)"
for ((i = 0; i < ${#ids[@]}; i++)); do
  if [[ ${parsers[i]} == bench_* ]] && [ -z "${skips[i]}" ] && selected "$i"; then choose_peer_python; break; fi
done
echo "peer:   $peer_line"

if [ -n "$out_arg" ]; then out_dir=$(resolve "$out_arg")
elif [ -n "${OUT:-}" ]; then out_dir=$OUT
else out_dir=$build/hw_check
fi
mkdir -p "$out_dir" || die "cannot create $out_dir"
if [ -n "$out_arg" ] || [ -z "${OUT:-}" ]; then logs=$out_dir/logs; rm -rf "$logs"; else logs=$work/logs; fi
mkdir -p "$logs" || die "cannot create $logs"
hr
run_steps
hr
summary | tee "$out_dir/hw_check_summary.txt"
result=${PIPESTATUS[0]}
for f in "$logs"/*.log; do [ -e "$f" ] && { echo "===== $(basename "$f")"; cat "$f"; }; done > "$out_dir/hw_check_logs.txt"
echo "summary: $out_dir/hw_check_summary.txt; every step's output: $out_dir/hw_check_logs.txt"
[ "$interrupted" -eq 0 ] || exit 130
exit "$result"
