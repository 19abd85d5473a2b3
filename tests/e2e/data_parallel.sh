#!/usr/bin/env bash
# End to end, data-parallel bert_train under mpirun on CPU (the MPI backend):
#   - 2 ranks with batch 4 train like 1 process with batch 8 on the same data, dropout off (each rank draws its
#     own dropout masks by design, so only dropout 0 can match): the same losses (relative 1e-5) and validation
#     loss, and final weights within 1e-5 (max abs); so do 2 ranks with batch 2 and 2 accumulated micro-batches;
#   - a 2-rank run resumed from a mid-run checkpoint logs exactly the losses of the uninterrupted run;
#   - failures end every rank with a clear message and a non-zero exit, never a hang: a rank with bad data,
#     a rank that never starts (start-up timeout), a world size unlike the checkpoint's or WORLD_SIZE's,
#     and RANK / WORLD_SIZE without mpirun.
# Usage: data_parallel.sh BUILD_DIR SOURCE_DIR MPIEXEC
set -uo pipefail
build=$1
source=$2
mpiexec=$3
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail, expect_error, prep_excerpt

# What mpirun needs in this container: running as root is refused without these two variables. Each rank runs
# one OpenMP thread, so 2 ranks fit 2 cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# In the sanitizer build, LeakSanitizer would report what Open MPI itself never frees at exit and fail every
# rank; leak checking of bertforge's own code is left to the other tests (ASan's other checks stay on here).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpirun2=(timeout 300 "$mpiexec" -np 2)


prep_excerpt "$work/data" --vocab_size 600

common=(--data "$work/data" --preset tiny --seq_len 64 --steps 10 --warmup_steps 2 --lr 2e-3 --log_interval 5
        --eval_interval 0 --eval_batches 0 --dropout 0)
"$build/bert_train" "${common[@]}" --out "$work/one" --batch_size 8 --checkpoint_interval 0 > "$work/one.log" 2>&1 ||
  { cat "$work/one.log"; fail "1 process"; }
"${mpirun2[@]}" "$build/bert_train" "${common[@]}" --out "$work/two" --batch_size 4 --checkpoint_interval 5 \
  > "$work/two.log" 2>&1 || { cat "$work/two.log"; fail "mpirun -np 2"; }
grep -q "2 rank(s), MPI" "$work/two.log" || fail "the 2-rank run did not use MPI: $(cat "$work/two.log")"
"${mpirun2[@]}" "$build/bert_train" "${common[@]}" --out "$work/two_accumulating" --batch_size 2 \
  --grad_accumulation 2 --checkpoint_interval 0 > "$work/two_accumulating.log" 2>&1 ||
  { cat "$work/two_accumulating.log"; fail "mpirun -np 2 with --grad_accumulation 2"; }

# Losses, validation loss and final weights of two runs.
compare_runs() {
  python3 - "$1" "$2" <<'PY'
import array, json, struct, sys

def metrics(run):
    records = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
    return [r["loss"] for r in records if "loss" in r], [r["val_loss"] for r in records if "val_loss" in r]

def weights(run):
    data = open(f"{run}/checkpoints/step-00000010/model.safetensors", "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    header.pop("__metadata__", None)
    base = 8 + length
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", (name, t["dtype"])
        tensors[name] = array.array("f", data[base + t["data_offsets"][0]:base + t["data_offsets"][1]])
    return tensors

(loss1, val1), (loss2, val2) = metrics(sys.argv[1]), metrics(sys.argv[2])
assert len(loss1) == len(loss2) == 10, (len(loss1), len(loss2))
loss_diff = max(abs(a - b) / abs(a) for a, b in zip(loss1, loss2))
val_diff = abs(val1[-1] - val2[-1]) / abs(val1[-1])
w1, w2 = weights(sys.argv[1]), weights(sys.argv[2])
assert w1.keys() == w2.keys()
weight_diff = max(abs(a - b) for k in w1 for a, b in zip(w1[k], w2[k]))
print(f"max relative loss difference {loss_diff:.2e}, validation loss {val_diff:.2e}, "
      f"max abs weight difference {weight_diff:.2e}")
sys.exit(0 if loss_diff < 1e-5 and val_diff < 1e-5 and weight_diff < 1e-5 else 1)
PY
}
compare_runs "$work/one" "$work/two" || fail "2 ranks x 4 differ from 1 x 8"
echo "ok: 2 ranks x batch 4 == 1 process x batch 8"
compare_runs "$work/one" "$work/two_accumulating" || fail "2 ranks x 2 x 2 micro-batches differ from 1 x 8"
echo "ok: 2 ranks x batch 2 x 2 micro-batches == 1 process x batch 8"

# Resume: both ranks continue from step 5 and log the uninterrupted run's losses, bit for bit.
cp -r "$work/two" "$work/resumed"
rm -rf "$work/resumed/checkpoints/step-00000010"
echo -n "step-00000005" > "$work/resumed/checkpoints/latest"
"${mpirun2[@]}" "$build/bert_train" "${common[@]}" --out "$work/resumed" --batch_size 4 --checkpoint_interval 5 \
  > "$work/resumed.log" 2>&1 || { cat "$work/resumed.log"; fail "2-rank resume"; }
grep -q "resuming from .*step-00000005" "$work/resumed.log" || fail "did not resume: $(cat "$work/resumed.log")"
diff <(grep -o '"step":[0-9]*,"loss":[^,]*' "$work/two/metrics.jsonl") \
  <(grep -o '"step":[0-9]*,"loss":[^,]*' "$work/resumed/metrics.jsonl") || fail "resumed losses differ"
echo "ok: 2-rank resume"

# Failures: clear messages, non-zero exits, no hang.
expect_error "a rank with bad data" "rank 1: " "${mpirun2[@]}" sh -c \
  '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && d=/nonexistent || d='"$work/data"'; exec '"$build/bert_train"' --data "$d" \
   --out '"$work/bad"' --preset tiny --seq_len 64 --batch_size 4 --steps 3 --warmup_steps 0'
expect_error "a rank that never starts" "not every one of the 2 ranks" "${mpirun2[@]}" sh -c \
  '[ "$OMPI_COMM_WORLD_RANK" = 1 ] && exec sleep 200; exec '"$build/bert_train"' --data '"$work/data"' \
   --out '"$work/late"' --preset tiny --seq_len 64 --batch_size 4 --steps 3 --collective_timeout_s 5'
expect_error "resume with another world size" "was written by a run of 1 rank(s), this one has 2" \
  "${mpirun2[@]}" "$build/bert_train" "${common[@]}" --out "$work/one" --batch_size 8 --steps 12
expect_error "WORLD_SIZE unlike mpirun's" "mismatched world size: WORLD_SIZE=4" \
  "${mpirun2[@]}" -x WORLD_SIZE=4 "$build/bert_train" "${common[@]}" --out "$work/ws" --batch_size 4
expect_error "RANK / WORLD_SIZE without a rendezvous file" "set BERTFORGE_RENDEZVOUS_FILE" \
  env RANK=0 WORLD_SIZE=2 "$build/bert_train" "${common[@]}" --out "$work/env" --batch_size 4
expect_error "CPU ranks without mpirun" "CPU ranks exchange gradients over MPI" \
  env RANK=0 WORLD_SIZE=2 BERTFORGE_RENDEZVOUS_FILE="$work/rendezvous" "$build/bert_train" "${common[@]}" \
  --out "$work/env" --batch_size 4
echo "all ok"
