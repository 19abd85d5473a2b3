#!/usr/bin/env bash
# End to end: bert_prep, bert_train and bert_eval as a user runs them, on a small excerpt of
# the built-in corpus, plus the clear failures a user gets for bad input.
# Usage: bert_pipeline.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail, expect_error, prep_excerpt

prep_excerpt "$work/data" --vocab_size 600
[ -s "$work/data/vocab.txt" ] && ls "$work/data/train/"*.zst > /dev/null && ls "$work/data/validation/"*.zst > /dev/null ||
  fail "bert_prep wrote no vocab or shards"
echo "ok: bert_prep"

# --sentences: the same train and validation documents as above, now cut into more segments (one per sentence).
prep_excerpt "$work/data_sentences" --vocab "$work/data/vocab.txt" --sentences
python3 - "$work/data.prep.log" "$work/data_sentences.prep.log" <<'PY' || fail "bert_prep --sentences counts"
import re, sys
pattern = r"(\d+) train documents \((\d+) segments.*?(\d+) validation documents \((\d+) segments"
whole, cut = (list(map(int, re.search(pattern, open(log).read()).groups())) for log in sys.argv[1:])
print(f"documents/segments: train {whole[:2]} -> {cut[:2]}, validation {whole[2:]} -> {cut[2:]}")
sys.exit(0 if whole[0::2] == cut[0::2] == whole[1::2] and cut[1] > cut[0] and cut[3] > cut[2] else 1)
PY
echo "ok: bert_prep --sentences"

"$build/bert_train" --data "$work/data" --out "$work/run" --preset tiny --seq_len 64 --batch_size 8 --steps 30 \
  --warmup_steps 3 --lr 2e-3 --log_interval 10 --eval_interval 15 --eval_batches 4 --checkpoint_interval 15 \
  > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "bert_train"; }
grep -q "perplexity" "$work/train.log" || fail "no evaluation in: $(cat "$work/train.log")"
[ "$(grep -c '"loss"' "$work/run/metrics.jsonl")" -eq 30 ] || fail "metrics.jsonl does not hold 30 steps"
[ -s "$work/run/checkpoints/step-00000030/model.safetensors" ] || fail "no final checkpoint"
# The loss falls: the mean of the last 5 steps is below the mean of the first 5.
python3 - "$work/run/metrics.jsonl" <<'PY' || fail "loss did not fall"
import json, sys
losses = [r["loss"] for r in map(json.loads, open(sys.argv[1])) if "loss" in r]
first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
print(f"loss {first:.3f} -> {last:.3f}")
sys.exit(0 if last < first - 0.3 else 1)
PY
echo "ok: bert_train"

# Mixed precision (bf16 GEMM operands, FP32 weights): a few steps, and a checkpoint bert_eval reads as any other.
"$build/bert_train" --data "$work/data" --out "$work/run_bf16" --preset tiny --seq_len 64 --batch_size 8 --steps 6 \
  --warmup_steps 1 --log_interval 3 --eval_batches 2 --mixed_precision bf16 > "$work/train_bf16.log" 2>&1 ||
  { cat "$work/train_bf16.log"; fail "bert_train --mixed_precision bf16"; }
grep -q "bf16 mixed precision" "$work/train_bf16.log" || fail "no bf16 in: $(cat "$work/train_bf16.log")"
"$build/bert_eval" --checkpoint "$work/run_bf16" --data "$work/data" --seq_len 64 --batch_size 8 --batches 2 \
  > "$work/eval_bf16.log" 2>&1 || { cat "$work/eval_bf16.log"; fail "bert_eval of the bf16 run"; }
echo "ok: bert_train --mixed_precision bf16"

python3 "$source/tools/plot_metrics.py" "$work/run/metrics.jsonl" -o "$work/loss.svg" > /dev/null ||
  fail "plot_metrics"
grep -q "<polyline" "$work/loss.svg" || fail "the loss plot has no curve"
echo "ok: plot_metrics"

"$build/bert_eval" --checkpoint "$work/run/checkpoints/step-00000030" --data "$work/data" --seq_len 64 \
  --batch_size 8 --batches 4 > "$work/eval.log" 2>&1 || { cat "$work/eval.log"; fail "bert_eval"; }
grep -q "perplexity" "$work/eval.log" && grep -q "kurtosis" "$work/eval.log" && grep -q "inf-norm" "$work/eval.log" &&
  grep -q "RMS kurtosis" "$work/eval.log" && grep -q "sink share" "$work/eval.log" ||
  fail "bert_eval table lacks perplexity, kurtosis, inf-norm, RMS kurtosis or sink share: $(cat "$work/eval.log")"
"$build/bert_eval" --checkpoint "$work/run" --data "$work/data" --seq_len 64 --batch_size 8 --batches 4 --json \
  > "$work/eval.json" 2>&1 || { cat "$work/eval.json"; fail "bert_eval --json"; }
python3 - "$work/eval.json" <<'PY' || fail "bert_eval --json: $(cat "$work/eval.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["perplexity"] > 1 and r["avg_kurtosis"] > 1 and r["max_ffn_output_inf_norm"] > 0, r
assert len(r["layers"]) == 2, r["layers"]
assert 1 <= r["avg_rms_kurtosis"] <= r["max_rms_kurtosis"], r
assert 0 < r["mean_special_token_mass"] <= 1 and 0 <= r["mean_sink_share"] <= r["max_sink_share"] <= 1, r
PY
echo "ok: bert_eval"

expect_error "missing input" "missing.txt" "$build/bert_prep" --input "$work/missing.txt" --out "$work/x"
expect_error "bad --documents" "--documents" "$build/bert_prep" --input "$source/tests/e2e/fixtures/kjv_excerpt.txt" \
  --out "$work/x" --documents pages
expect_error "missing checkpoint" "$work/run/checkpoints/step-99" "$build/bert_eval" \
  --checkpoint "$work/run/checkpoints/step-99" --data "$work/data"
expect_error "bert_eval on a GPU that is not there" "--device cuda:7" "$build/bert_eval" \
  --checkpoint "$work/run" --data "$work/data" --seq_len 64 --batches 1 --device cuda:7
expect_error "unknown flag" "steps_" "$build/bert_train" --steps_ 3
expect_error "no data" "--data" "$build/bert_train" --out "$work/y"
expect_error "unknown preset" "huge" "$build/bert_train" --data "$work/data" --out "$work/y" --preset huge
expect_error "loss scale not a power of two" "--loss_scale '1000': loss scale 1000 must be a power of two" \
  "$build/bert_train" --data "$work/data" --out "$work/y" --loss_scale 1000
expect_error "unknown mixed precision" "--mixed_precision 'fp8': none, bf16 or fp16" \
  "$build/bert_train" --data "$work/data" --out "$work/y" --mixed_precision fp8
expect_error "mixed precision with a 16-bit GEMM precision" "--gemm_precision (for FP32 operands) must stay fp32" \
  "$build/bert_train" --data "$work/data" --out "$work/y" --mixed_precision bf16 --gemm_precision tf32
head -c 100 "$work/data/train/shard-00000.zst" > "$work/truncated.zst"
mkdir -p "$work/bad/train" && cp "$work/data/vocab.txt" "$work/bad/" && mv "$work/truncated.zst" "$work/bad/train/"
expect_error "truncated shard" "truncated.zst: truncated" "$build/bert_train" --data "$work/bad" --out "$work/z" --steps 2 --warmup_steps 0
echo "all ok"
