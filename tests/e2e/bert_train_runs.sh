#!/usr/bin/env bash
# End to end: what bert_train does with a run directory, as a user meets it. A new run never destroys another
# (refused without --overwrite; --overwrite replaces it cleanly, the case that once left `latest` naming a deleted
# checkpoint); Ctrl-C writes a checkpoint and the same command continues; a second Ctrl-C exits at once without
# damage; RUN/flags repeats a run exactly; a warm-up longer than the run is clamped; a resume with other settings
# names them; --init_from starts from pretrained weights and checks the vocabulary (MiniLM too when cached).
# Usage: bert_train_runs.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail, expect_error, prep_excerpt, minilm

prep_excerpt "$work/data" --vocab_size 600
train=("$build/bert_train" --data "$work/data" --seq_len 32 --batch_size 4 --log_interval 1 --eval_batches 1)
latest() { cat "$1/checkpoints/latest"; }
loss_lines() { grep -c '"loss"' "$1/metrics.jsonl"; }

# ---- A new run where a run exists -----------------------------------------------------------------------------
"${train[@]}" --out "$work/run" --steps 40 --checkpoint_interval 5 > "$work/run.log" 2>&1 || { cat "$work/run.log"; fail "first run"; }
expect_error "--noresume where a run exists" "--overwrite" "${train[@]}" --out "$work/run" --steps 5 --noresume
[ "$(latest "$work/run")" = step-00000040 ] && [ "$(loss_lines "$work/run")" -eq 40 ] || fail "the refused run touched the old one"
"${train[@]}" --out "$work/run" --steps 5 --overwrite > "$work/overwrite.log" 2>&1 || { cat "$work/overwrite.log"; fail "--overwrite"; }
[ "$(latest "$work/run")" = step-00000005 ] || fail "latest is $(latest "$work/run") after --overwrite"
[ -d "$work/run/checkpoints/step-00000005" ] || fail "the new checkpoint was deleted"
[ ! -d "$work/run/checkpoints/step-00000040" ] || fail "the old run's checkpoints survived --overwrite"
[ "$(loss_lines "$work/run")" -eq 5 ] || fail "metrics.jsonl holds $(loss_lines "$work/run") steps, not the new run's 5"
"$build/bert_eval" --checkpoint "$work/run" --data "$work/data" --seq_len 32 --batch_size 4 --batches 1 \
  > "$work/eval.log" 2>&1 || { cat "$work/eval.log"; fail "bert_eval after --overwrite"; }
"${train[@]}" --out "$work/run" --steps 8 > "$work/continue.log" 2>&1 || { cat "$work/continue.log"; fail "continuing after --overwrite"; }
grep -q "resuming from .*step-00000005" "$work/continue.log" || fail "did not continue: $(cat "$work/continue.log")"
echo "ok: a new run never destroys another; --overwrite replaces it"

expect_error "a resume with other settings names them" "model.hidden_dropout_prob 0.1 -> 0.2" \
  "${train[@]}" --out "$work/run" --steps 10 --dropout 0.2

# ---- Ctrl-C ----------------------------------------------------------------------------------------------------
# Start a long run, let it take a few steps, interrupt it as Ctrl-C does, and wait.
interrupt_after_steps() {  # RUN_DIR SIGNALS_TO_SEND -> the exit status
  local run=$1 signals=$2
  "${train[@]}" --out "$run" --steps 100000 --checkpoint_interval 0 > "$run.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do grep -q "^step 3/" "$run.log" 2>/dev/null && break; sleep 0.1; done
  for _ in $(seq "$signals"); do kill -INT $pid; done
  wait $pid
}
interrupt_after_steps "$work/ctrlc" 1
status=$?
[ $status -eq 130 ] || { cat "$work/ctrlc.log"; fail "Ctrl-C: exit status $status, not 130"; }
grep -q "stopped at step" "$work/ctrlc.log" || fail "Ctrl-C: no message in $(cat "$work/ctrlc.log")"
stopped=$(loss_lines "$work/ctrlc")
[ "$(latest "$work/ctrlc")" = "$(printf 'step-%08d' "$stopped")" ] ||
  fail "Ctrl-C after $stopped steps: latest is $(latest "$work/ctrlc")"
"${train[@]}" --out "$work/ctrlc" --steps $((stopped + 2)) > "$work/ctrlc2.log" 2>&1 || { cat "$work/ctrlc2.log"; fail "continuing after Ctrl-C"; }
grep -q "resuming from .*$(printf 'step-%08d' "$stopped")" "$work/ctrlc2.log" || fail "did not continue after Ctrl-C"
echo "ok: Ctrl-C at step $stopped wrote a checkpoint, and the run continued from it"

interrupt_after_steps "$work/twice" 2
status=$?
[ $status -eq 130 ] || { cat "$work/twice.log"; fail "two Ctrl-C: exit status $status, not 130"; }
if [ -f "$work/twice/checkpoints/latest" ]; then  # the second signal may have come after the checkpoint
  "${train[@]}" --out "$work/twice" --steps $(($(loss_lines "$work/twice") + 1)) > "$work/twice2.log" 2>&1 ||
    { cat "$work/twice2.log"; fail "continuing after two Ctrl-C"; }
fi
"${train[@]}" --out "$work/twice" --steps 4 --overwrite > /dev/null 2>&1 || fail "the directory is unusable after two Ctrl-C"
echo "ok: a second Ctrl-C exits at once and leaves a usable directory"

# ---- The run directory records the run -------------------------------------------------------------------------
[ -f "$work/run/flags" ] && [ -f "$work/run/vocab.txt" ] || fail "no flags or vocab.txt in the run directory"
grep -q -- "--steps=8" "$work/run/flags" && grep -q -- "--warmup_steps=0" "$work/run/flags" ||
  fail "RUN/flags lacks the steps or the warm-up used: $(cat "$work/run/flags")"
"${train[@]}" --out "$work/a" --steps 6 --seed 5 > /dev/null 2>&1 || fail "run a"
"$build/bert_train" --flagfile "$work/a/flags" --out "$work/b" > "$work/b.log" 2>&1 || { cat "$work/b.log"; fail "--flagfile RUN/flags"; }
python3 - "$work/a/metrics.jsonl" "$work/b/metrics.jsonl" <<'PY' || fail "the repeated run's losses differ"
import json, sys
a, b = ([r["loss"] for r in map(json.loads, open(p)) if "loss" in r] for p in sys.argv[1:])
print("losses", a, b)
sys.exit(0 if len(a) == 6 and a == b else 1)
PY
echo "ok: bert_train --flagfile RUN/flags repeats the run"

"${train[@]}" --out "$work/warm" --steps 4 --warmup_steps 100 > "$work/warm.log" 2>&1 || { cat "$work/warm.log"; fail "long warm-up"; }
grep -q "warning: --warmup_steps 100 is longer than the run" "$work/warm.log" || fail "no warm-up warning: $(cat "$work/warm.log")"
echo "ok: a warm-up longer than the run is clamped with a warning"

# ---- Continued pretraining --------------------------------------------------------------------------------------
"${train[@]}" --out "$work/continued" --init_from "$work/run" --steps 2 > "$work/init.log" 2>&1 || { cat "$work/init.log"; fail "--init_from a run"; }
grep -q "initialised from .*model.safetensors (BertForMaskedLM layout" "$work/init.log" || fail "no init line: $(cat "$work/init.log")"
expect_error "--init_from with --preset" "drop --preset" "${train[@]}" --out "$work/x" --init_from "$work/run" --preset mini
prep_excerpt "$work/other_data" --vocab_size 500
expect_error "--init_from with data of another vocabulary" "bert_prep --vocab" \
  "$build/bert_train" --data "$work/other_data" --out "$work/x" --init_from "$work/run" --steps 2
echo "ok: --init_from a bertforge run"

if [ ! -f "$minilm/.complete" ]; then
  echo "skipped: --init_from all-MiniLM-L6-v2 (not in $minilm: run scripts/fetch_minilm.sh)"
  exit 0
fi
prep_excerpt "$work/minilm_data" --vocab "$minilm/vocab.txt"
"$build/bert_train" --data "$work/minilm_data" --out "$work/minilm_run" --init_from "$minilm" --seq_len 32 \
  --batch_size 2 --steps 2 --eval_batches 1 > "$work/minilm.log" 2>&1 || { cat "$work/minilm.log"; fail "--init_from MiniLM"; }
grep -q "BertModel layout.*the MLM head starts freshly initialised" "$work/minilm.log" || fail "$(cat "$work/minilm.log")"
echo "ok: --init_from all-MiniLM-L6-v2 (encoder only, fresh MLM head)"
