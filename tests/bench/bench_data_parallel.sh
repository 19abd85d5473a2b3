#!/usr/bin/env bash
# Data-parallel scaling on CPU: training throughput (tokens/s over the whole global batch) of
#   1 rank  x 1 OpenMP thread,  batch 2B   (the one-core baseline)
#   1 rank  x 2 OpenMP threads, batch 2B   (the same two cores, shared by threads)
#   2 ranks x 1 OpenMP thread,  batch B    (mpirun -np 2: the same two cores, shared by MPI ranks)
# on the same global batch, so every configuration does the same work per step. On a 2-core machine the fair
# comparison is 2 ranks x 1 thread against 1 rank x 2 threads (same cores; ranks unbound, like the threads).
# The efficiency against the one-core baseline, tokens/s(2 ranks) / (2 x tokens/s(1 rank x 1 thread)), is
# printed too. Other processes on the cores skew every figure: run it on an idle machine.
# One line per figure. The median step of each run counts (the first two steps, warm-up, are left out).
# Usage: bench_data_parallel.sh BUILD_DIR [PRESET=mini] [STEPS=12] [BATCH_PER_RANK=8] [SEQ_LEN=128]
set -euo pipefail
build=$1
preset=${2:-mini}
steps=${3:-12}
batch=${4:-8}
seq_len=${5:-128}
source=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive

"$build/bert_prep" --input "$source/tests/e2e/fixtures/kjv_excerpt.txt" --out "$work/data" --vocab_size 2000 \
  --documents blank --validation_fraction 0.1 --seed 3 > /dev/null
train=(--data "$work/data" --preset "$preset" --seq_len "$seq_len" --steps "$steps" --warmup_steps 1
       --eval_interval 0 --eval_batches 1 --checkpoint_interval 0 --log_interval 1000)

# median_tokens_per_s RUN_DIR
median_tokens_per_s() {
  python3 - "$1/metrics.jsonl" <<'PY'
import json, statistics, sys
rates = [r["tokens_per_s"] for r in map(json.loads, open(sys.argv[1])) if "tokens_per_s" in r][2:]
print(f"{statistics.median(rates):.0f}")
PY
}

OMP_NUM_THREADS=1 "$build/bert_train" "${train[@]}" --out "$work/r1t1" --batch_size $((2 * batch)) > /dev/null
OMP_NUM_THREADS=2 "$build/bert_train" "${train[@]}" --out "$work/r1t2" --batch_size $((2 * batch)) > /dev/null
OMP_NUM_THREADS=1 mpirun -np 2 --bind-to none "$build/bert_train" "${train[@]}" --out "$work/r2t1" --batch_size "$batch" > /dev/null
r1t1=$(median_tokens_per_s "$work/r1t1")
r1t2=$(median_tokens_per_s "$work/r1t2")
r2t1=$(median_tokens_per_s "$work/r2t1")
echo "data_parallel $preset seq $seq_len global batch $((2 * batch)): 1 rank x 1 thread   $r1t1 tokens/s"
echo "data_parallel $preset seq $seq_len global batch $((2 * batch)): 1 rank x 2 threads  $r1t2 tokens/s"
echo "data_parallel $preset seq $seq_len global batch $((2 * batch)): 2 ranks x 1 thread  $r2t1 tokens/s"
python3 -c "print(f'data_parallel ratio 2 ranks x 1 thread / 1 rank x 2 threads: {$r2t1 / $r1t2:.2f}')"
python3 -c "print(f'data_parallel scaling efficiency 2 ranks vs 1 core: {$r2t1 / (2 * $r1t1):.2f}')"
