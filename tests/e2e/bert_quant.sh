#!/usr/bin/env bash
# End to end: bert_prep, a short bert_train, bert_quant (PTQ W8A8, a W4 variant, AWQ W4 and W8, W8A8 per token with
# SmoothQuant migration, token-wise clipping after gamma migration) and bert_eval on the quantized models, as a user
# runs them: the --out directory (model, activation ranges, config, vocab, report; usable as --checkpoint DIR),
# the hidden-state agreement with FP in bert_quant's report and its low-SQNR warning, bert_eval --compare_to
# against the FP model (the same SQNR as bert_quant's, and tokens/s), bert_quant on the encoder-only
# all-MiniLM-L6-v2 when .cache/minilm holds it, plus the clear failures a user gets for bad flags and files, and
# for a bad --out before any work (no progress line, under 2 s), a foreign directory refused without --overwrite.
# Usage: bert_quant.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail, expect_error, prep_excerpt

prep_excerpt "$work/data" --vocab_size 600
"$build/bert_train" --data "$work/data" --out "$work/run" --preset tiny --seq_len 64 --batch_size 8 --steps 30 \
  --warmup_steps 3 --lr 2e-3 --log_interval 10 --eval_interval 0 --eval_batches 4 --checkpoint_interval 0 \
  > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "bert_train"; }
echo "ok: bert_prep + bert_train"

common=(--data "$work/data" --seq_len 64 --batch_size 8 --calibration_batches 4 --eval_batches 4)
"$build/bert_quant" --checkpoint "$work/run" "${common[@]}" --out "$work/w8a8" \
  > "$work/quant.log" 2> "$work/quant.err" || { cat "$work/quant.log" "$work/quant.err"; fail "bert_quant"; }
# --out is a self-contained model directory: exactly these files (no staging directory left), the vocabulary the
# model was trained with (the run's, which is the data's).
files="config.json model.activations.json model.safetensors quant_report.json vocab.txt "
[ "$(ls -A "$work/w8a8" | tr '\n' ' ')" = "$files" ] ||
  fail "bert_quant --out holds: $(ls -A "$work/w8a8")"
cmp -s "$work/w8a8/vocab.txt" "$work/data/vocab.txt" || fail "bert_quant did not copy the run's vocab.txt"
grep -q "holds a previous bert_quant output" "$work/quant.err" && fail "a new --out called a previous output"
grep -q "calibrating" "$work/quant.err" || fail "no progress lines: $(cat "$work/quant.err")"
grep -q "layer.1.output.dense .*int8 symmetric per_tensor" "$work/quant.log" &&
  grep -q "layer.1.gelu" "$work/quant.log" && grep -q "model size" "$work/quant.log" ||
  fail "bert_quant report lacks the weight table, the activation table or the sizes: $(cat "$work/quant.log")"
# W8A8 keeps the final hidden state close to FP's: SQNR above 20 dB, mean cosine above 0.99.
awk '/^quantized hidden state vs FP/ { ok = $6 > 20 && $11 > 0.99 } END { exit !ok }' "$work/quant.log" ||
  fail "W8A8 hidden state vs FP: $(grep "hidden state" "$work/quant.log")"
# The report file holds the same numbers as the table, and no warning (above --warn_sqnr_db's 20 dB).
python3 - "$work/w8a8/quant_report.json" "$(awk '/^quantized hidden state vs FP/ {print $6}' "$work/quant.log")" \
  "$work/data/vocab.txt" <<'PY' || fail "quant_report.json: $(cat "$work/w8a8/quant_report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert abs(r["hidden_sqnr_db"] - float(sys.argv[2])) < 0.01, (r["hidden_sqnr_db"], sys.argv[2])
assert r["warnings"] == [] and r["warn_sqnr_db"] == 20, r
assert open(r["vocab"], "rb").read() == open(sys.argv[3], "rb").read(), r["vocab"]  # the file copied
assert len(r["weights"]) == 12, r["weights"]
PY
grep -q "warning" "$work/quant.err" && fail "a warning for a W8A8 model above 20 dB: $(cat "$work/quant.err")"
# The quantized file is smaller; W8A8 perplexity within 2% of FP.
fp=$(awk '/^FP perplexity/ {print $3}' "$work/quant.log")
q=$(awk '/^quantized perplexity/ {print $3}' "$work/quant.log")
python3 -c "import sys; fp, q = float(sys.argv[1]), float(sys.argv[2]); print(f'FP {fp} W8A8 {q}'); sys.exit(0 if abs(q / fp - 1) < 0.02 else 1)" \
  "$fp" "$q" || fail "W8A8 perplexity $q too far from FP $fp"
[ "$(stat -c %s "$work/w8a8/model.safetensors")" -lt "$(stat -c %s "$work/run/checkpoints/step-00000030/model.safetensors")" ] ||
  fail "the quantized file is not smaller"
echo "ok: bert_quant W8A8"

# bert_eval reads the quantized directory and reports the same perplexity, naming the scheme.
"$build/bert_eval" --checkpoint "$work/w8a8" --data "$work/data" --seq_len 64 --batch_size 8 \
  --batches 4 > "$work/eval.log" 2>&1 || { cat "$work/eval.log"; fail "bert_eval on the quantized model"; }
grep -q "quantized (fake-quant): weights int8 symmetric per_tensor" "$work/eval.log" &&
  grep -q "kurtosis" "$work/eval.log" || fail "bert_eval table: $(cat "$work/eval.log")"
eval_ppl=$(awk '/^perplexity/ {print $2}' "$work/eval.log")
python3 -c "import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) < 1e-3 else 1)" "$eval_ppl" "$q" ||
  fail "bert_eval perplexity $eval_ppl differs from bert_quant's $q"
echo "ok: bert_eval on the quantized model"

# bert_eval --compare_to the FP run: on the same batches (4 of 8 x 64 tokens), the final hidden state's SQNR is
# bert_quant's, and both models' tokens/s are reported, in the table and in --json.
"$build/bert_eval" --checkpoint "$work/w8a8" --compare_to "$work/run" --data "$work/data" --seq_len 64 \
  --batch_size 8 --batches 4 > "$work/compare.log" 2>&1 || { cat "$work/compare.log"; fail "bert_eval --compare_to"; }
sqnr=$(awk '/^quantized hidden state vs FP/ {print $6}' "$work/quant.log")
grep -q "^hidden state vs reference *$sqnr dB SQNR, mean cosine 0\.99" "$work/compare.log" &&
  grep -qE "^tokens/s \(encoder\) +[0-9.]+ \(reference [0-9.]+: [0-9.]+x\)" "$work/compare.log" &&
  grep -q "^(reference $work/run/checkpoints/step-00000030/model.safetensors: " "$work/compare.log" ||
  fail "bert_eval --compare_to table (bert_quant said $sqnr dB): $(cat "$work/compare.log")"
echo "ok: bert_eval --compare_to ($(grep -E '^(hidden state vs|tokens/s)' "$work/compare.log" | tr -s ' ' | tr '\n' ';'))"

# 4-bit per-channel weights, FP activations, as JSON; --warn_sqnr_db above its SQNR warns, with the weight-only
# hint, on stderr and in the report (the printed one and the directory's).
"$build/bert_quant" --checkpoint "$work/run/checkpoints/step-00000030" "${common[@]}" --weight_bits 4 \
  --granularity per_channel --activation_bits 0 --warn_sqnr_db 45 --json --out "$work/w4" > "$work/w4.json" \
  2> "$work/w4.err" || fail "bert_quant --weight_bits 4: $(cat "$work/w4.json" "$work/w4.err")"
warning="^bert_quant: warning: the quantized model's final hidden state is .* SQNR against FP, below"
grep -q "$warning --warn_sqnr_db 45: .*the weights alone lose it" "$work/w4.err" || fail "no low-SQNR warning on stderr: $(cat "$work/w4.err")"
cmp -s <(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])))' "$work/w4.json") \
  <(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])))' "$work/w4/quant_report.json") ||
  fail "quant_report.json is not the --json report"
python3 - "$work/w4.json" <<'PY' || fail "bert_quant --json: $(cat "$work/w4.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["warn_sqnr_db"] == 45 and len(r["warnings"]) == 1 and "--method awq" in r["warnings"][0], r["warnings"]
assert r["out"].endswith("/w4"), r["out"]
assert len(r["weights"]) == 12 and all(w["scheme"]["bits"] == 4 for w in r["weights"]), r["weights"]
assert all(15 < w["sqnr_db"] < 30 for w in r["weights"]), [w["sqnr_db"] for w in r["weights"]]
assert r["activations"]["activation_bits"] == 0 and r["quantized_bytes"] < r["fp_bytes"], r
# 4-bit weights move the hidden state measurably but keep it close: SQNR in (8, 40) dB, cosine in (0.9, 1).
assert 8 < r["hidden_sqnr_db"] < 40 and 0.9 < r["hidden_cosine"] < 1, r
assert r["hidden_tokens"] > 0 and r["fp_perplexity"] > 1, r
PY
echo "ok: bert_quant W4 per_channel --json"

# AWQ, weight-only: W4 g128 (the tiny model's K <= 128: one group per row) and W8, each read back by bert_eval.
for bits in 4 8; do
  "$build/bert_quant" --checkpoint "$work/run" "${common[@]}" --method awq --weight_bits "$bits" \
    --out "$work/awq$bits" > "$work/awq$bits.log" 2> "$work/awq$bits.err" ||
    { cat "$work/awq$bits.log" "$work/awq$bits.err"; fail "bert_quant --method awq --weight_bits $bits"; }
  grep -q "layer.1.output.dense .*\(gelu\*1/s\|unscaled\)" "$work/awq$bits.log" &&
    grep -q "layer.0.attention.self.query .*\(layernorm\|unscaled\)" "$work/awq$bits.log" &&
    grep -q "^RTN perplexity" "$work/awq$bits.log" &&
    grep -q "^RTN hidden state vs FP .* dB SQNR" "$work/awq$bits.log" &&
    grep -q "^quantized hidden state vs FP .* dB SQNR" "$work/awq$bits.log" ||
    fail "AWQ report: $(cat "$work/awq$bits.log")"
  # Per group of Linears sharing an input (query, key and value share one scale), AWQ's calibration MSE is never
  # above RTN's (columns 6 and 7 of the table).
  awk '/^layer\./ { split($1, p, "."); g = p[2] ($1 ~ /attention\.self/ ? ".qkv" : "." $1); rtn[g] += $6; awq[g] += $7 }
       END { for (g in rtn) if (awq[g] > rtn[g] * (1 + 1e-6)) { print "worse: " g; bad = 1 }; exit bad }' \
    "$work/awq$bits.log" || fail "AWQ worse than RTN on a group of Linears"
  awq_ppl=$(awk '/^quantized perplexity/ {print $3}' "$work/awq$bits.log")
  "$build/bert_eval" --checkpoint "$work/awq$bits" --data "$work/data" --seq_len 64 --batch_size 8 \
    --batches 4 > "$work/awq_eval$bits.log" 2>&1 || { cat "$work/awq_eval$bits.log"; fail "bert_eval on AWQ W$bits"; }
  grep -q "folded channel scales in" "$work/awq_eval$bits.log" || fail "bert_eval AWQ scheme: $(cat "$work/awq_eval$bits.log")"
  eval_ppl=$(awk '/^perplexity/ {print $2}' "$work/awq_eval$bits.log")
  python3 -c "import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) < 1e-3 else 1)" "$eval_ppl" "$awq_ppl" ||
    fail "bert_eval perplexity $eval_ppl differs from bert_quant's AWQ W$bits $awq_ppl"
  echo "ok: bert_quant --method awq W$bits ($(grep -E '^(FP|RTN|quantized) perplexity' "$work/awq$bits.log" | tr -s ' ' | tr '\n' ';'))"
done
# W8A8 as int8 kernels execute it: per-channel weights, per-token activations at the Linear inputs, SmoothQuant
# migration with alpha searched per group; and static ranges chosen by token-wise clipping after gamma migration.
# Each written file is also run by the int8 kernels, which agree with fake quantization.
"$build/bert_quant" --checkpoint "$work/run" "${common[@]}" --granularity per_channel --activation_scope linear_inputs \
  --activation_granularity per_token --migration smooth --migration_alpha search --json \
  --out "$work/smooth" > "$work/smooth.json" 2> "$work/smooth.err" ||
  { cat "$work/smooth.err"; fail "bert_quant --migration smooth --activation_granularity per_token"; }
"$build/bert_quant" --checkpoint "$work/run" "${common[@]}" --granularity per_channel --activation_scope linear_inputs \
  --migration gamma --clipping tokenwise --json --out "$work/clip" > "$work/clip.json" \
  2> "$work/clip.err" || { cat "$work/clip.err"; fail "bert_quant --migration gamma --clipping tokenwise"; }
python3 - "$work/smooth.json" "$work/clip.json" <<'PY' || fail "bert_quant migration / clipping: $(cat "$work/smooth.json")"
import json, sys
smooth, clip = (json.load(open(f)) for f in sys.argv[1:3])
for r in (smooth, clip):
    assert r["hidden_sqnr_db"] > 20 and r["int8_hidden_sqnr_db"] is not None, r
    assert abs(r["int8_hidden_sqnr_db"] - r["hidden_sqnr_db"]) < 0.5, (r["int8_hidden_sqnr_db"], r["hidden_sqnr_db"])
    assert r["activations"]["scope"] == "linear_inputs", r["activations"]
assert smooth["activations"]["granularity"] == "per_token" and "calibration" not in smooth["activations"], smooth
assert "per token" in smooth["scheme"] and "folded channel scales in 2 layers" in smooth["scheme"], smooth["scheme"]
groups = smooth["migration"]["groups"]
assert smooth["migration"]["method"] == "smooth" and len(groups) == 8, smooth["migration"]
assert all(g["output_error"][1] <= g["output_error"][0] for g in groups), groups
assert clip["migration"]["method"] == "gamma" and sum(g["migrated"] for g in clip["migration"]["groups"]) == 4, clip
assert len(clip["clipping"]) == 8 and all(c["fine_error"] <= c["minmax_error"] for c in clip["clipping"]), clip
print(f"smooth + per token: {smooth['hidden_sqnr_db']:.2f} dB (int8 {smooth['int8_hidden_sqnr_db']:.2f}); "
      f"gamma + token-wise clipping: {clip['hidden_sqnr_db']:.2f} dB (int8 {clip['int8_hidden_sqnr_db']:.2f})")
PY
"$build/bert_eval" --checkpoint "$work/smooth" --data "$work/data" --seq_len 64 --batch_size 8 \
  --batches 2 --int8 > "$work/smooth_eval.log" 2>&1 || { cat "$work/smooth_eval.log"; fail "bert_eval --int8 on smooth"; }
# bert_eval --int8 --compare_to FP, --json: the int8-executed SQNR of bert_quant's report, on the same 4 batches.
"$build/bert_eval" --checkpoint "$work/smooth" --int8 --compare_to "$work/run" --data "$work/data" --seq_len 64 \
  --batch_size 8 --batches 4 --json > "$work/smooth_compare.json" 2> "$work/smooth_compare.err" ||
  { cat "$work/smooth_compare.err"; fail "bert_eval --int8 --compare_to"; }
python3 - "$work/smooth_compare.json" "$work/smooth.json" <<'PY' ||
  fail "bert_eval --compare_to --json: $(cat "$work/smooth_compare.json")"
import json, sys
r, q = (json.load(open(f)) for f in sys.argv[1:3])
c = r["compare_to"]
assert c["checkpoint"].endswith("/run/checkpoints/step-00000030/model.safetensors"), c
assert abs(c["hidden_sqnr_db"] - q["int8_hidden_sqnr_db"]) < 0.01, (c["hidden_sqnr_db"], q["int8_hidden_sqnr_db"])
assert abs(c["hidden_cosine"] - q["int8_hidden_cosine"]) < 1e-6 and c["hidden_tokens"] == q["hidden_tokens"], (c, q)
assert c["batches"] == 4 and c["tokens_per_s"] > 0 and c["reference_tokens_per_s"] > 0, c
assert abs(c["speedup"] - c["tokens_per_s"] / c["reference_tokens_per_s"]) < 1e-9, c
assert "quantized (int8)" in r["layout"], r["layout"]
PY
echo "ok: bert_quant --migration smooth --activation_granularity per_token, --migration gamma --clipping tokenwise"

# An encoder-only checkpoint (all-MiniLM-L6-v2, when fetched): quantized (8-bit per-channel weights, FP
# activations: its activation outliers make W8A8 lose the hidden state, see docs/outlier_study.md), no perplexity,
# hidden states compared.
if [ -f "$minilm/.complete" ]; then
  prep_excerpt "$work/minilm_data" --vocab "$minilm/vocab.txt"
  "$build/bert_quant" --checkpoint "$minilm" --data "$work/minilm_data" --seq_len 64 --batch_size 4 \
    --granularity per_channel --activation_bits 0 --eval_batches 2 --json --out "$work/minilm_w8" \
    > "$work/minilm.json" 2> "$work/minilm.err" || { cat "$work/minilm.err"; fail "bert_quant on MiniLM"; }
  python3 - "$work/minilm.json" <<'PY' || fail "bert_quant on MiniLM: $(cat "$work/minilm.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["fp_perplexity"] is None and r["quantized_perplexity"] is None, r
assert len(r["weights"]) == 36 and r["hidden_tokens"] > 0, r
assert 20 < r["hidden_sqnr_db"] < 60 and 0.99 < r["hidden_cosine"] < 1 and r["warnings"] == [], r
PY
  cmp -s "$work/minilm_w8/vocab.txt" "$minilm/vocab.txt" || fail "bert_quant did not copy MiniLM's vocab.txt"
  "$build/bert_eval" --checkpoint "$work/minilm_w8" --data "$work/minilm_data" --seq_len 64 \
    --batch_size 4 --batches 2 > "$work/minilm_eval.log" 2>&1 ||
    { cat "$work/minilm_eval.log"; fail "bert_eval MiniLM W8"; }
  grep -q "^perplexity .*n/a" "$work/minilm_eval.log" || fail "bert_eval MiniLM W8: $(cat "$work/minilm_eval.log")"
  sqnr=$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["hidden_sqnr_db"], 2))' \
    "$work/minilm.json")
  echo "ok: bert_quant on the encoder-only MiniLM (W8 hidden state $sqnr dB vs FP)"
else
  echo "skip: MiniLM is not in $minilm (scripts/fetch_minilm.sh)"
fi

expect_error "awq per_tensor group" "group_size" "$build/bert_quant" --checkpoint "$work/run" --data "$work/data" \
  --out "$work/x" --method awq --group_size 0

q=(--checkpoint "$work/run" --data "$work/data" --out "$work/x")
expect_error "weight bits 9" "bits 9 out of range" "$build/bert_quant" "${q[@]}" --weight_bits 9
expect_error "unknown method" "--method must be ptq or awq" "$build/bert_quant" "${q[@]}" --method gptq
expect_error "unknown granularity" "rows" "$build/bert_quant" "${q[@]}" --granularity rows
expect_error "activation bits 1" "activation bits" "$build/bert_quant" "${q[@]}" --activation_bits 1
expect_error "unknown observer" "max'" "$build/bert_quant" "${q[@]}" --observer max
expect_error "unknown excluded tap point" "'ffn_outptu' matches no tap site" "$build/bert_quant" "${q[@]}" \
  --activation_exclude ffn_outptu
expect_error "per token at every tap" "need the linear_inputs scope" "$build/bert_quant" "${q[@]}" \
  --activation_granularity per_token
expect_error "clipping at every tap" "linear_inputs scope and per_tensor" "$build/bert_quant" "${q[@]}" \
  --clipping tokenwise
expect_error "unknown scope" "all_taps or linear_inputs" "$build/bert_quant" "${q[@]}" --activation_scope everything
expect_error "unknown clipping" "none or tokenwise" "$build/bert_quant" "${q[@]}" --clipping percentile
expect_error "unknown migration" "none, smooth or gamma" "$build/bert_quant" "${q[@]}" --migration smoothquant
expect_error "migration alpha 2" "alpha must be in [0, 1]" "$build/bert_quant" "${q[@]}" --migration smooth \
  --migration_alpha 2
expect_error "migration alpha word" "a number in [0, 1] or \"search\"" "$build/bert_quant" "${q[@]}" \
  --migration smooth --migration_alpha best
expect_error "migration with awq" "--migration is for --method ptq" "$build/bert_quant" "${q[@]}" --method awq \
  --migration smooth
expect_error "migration without activations" "needs --activation_bits in [2, 8]" "$build/bert_quant" "${q[@]}" \
  --migration gamma --activation_bits 0
expect_error "missing data" "$work/nodata/vocab.txt" "$build/bert_quant" --checkpoint "$work/run" --data "$work/nodata" \
  --out "$work/x"
expect_error "no --out" "--out" "$build/bert_quant" --checkpoint "$work/run" --data "$work/data"
expect_error "missing checkpoint" "$work/nope" "$build/bert_quant" --checkpoint "$work/nope" --data "$work/data" \
  --out "$work/x"
expect_error "already quantized" "already quantized" "$build/bert_quant" --checkpoint "$work/w8a8" \
  --data "$work/data" --out "$work/x"
expect_error "bad --warn_sqnr_db" "--warn_sqnr_db must be a number" "$build/bert_quant" "${q[@]}" --warn_sqnr_db nan
[ ! -e "$work/x" ] || fail "a failed bert_quant left $work/x"

# A bad --out fails before any work: no progress line (nothing loaded, nothing calibrated), within 2 s, saying why.
expect_out_error() {  # expect_out_error WHAT FRAGMENT OUT [FLAGS...]
  local what=$1 fragment=$2 out=$3
  shift 3
  local start=$(date +%s%N) output status
  output=$("$build/bert_quant" --checkpoint "$work/run" "${common[@]}" --out "$out" "$@" 2>&1)
  status=$?
  local ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ $status -ne 0 ] || fail "--out $what: exited 0"
  grep -qF -- "$fragment" <<<"$output" || fail "--out $what: no '$fragment' in: $output"
  grep -q "^bert_quant: \(loading\|evaluating\|calibrating\|quantizing\)" <<<"$output" &&
    fail "--out $what: failed only after starting the work: $output"
  [ $ms -lt 2000 ] || fail "--out $what: took $ms ms to fail"
  echo "ok: --out $what ($ms ms)"
}
expect_out_error "a .safetensors path" "--out is a directory now" "$work/x/model.safetensors"
expect_out_error "a .safetensors path names the directory" "give --out $work/x instead" "$work/x/model.safetensors"
: > "$work/a_file"
expect_out_error "an existing file" "exists and is not a directory" "$work/a_file"
expect_out_error "under a file" "$work/a_file is not a directory, so it cannot hold one" "$work/a_file/model"
expect_out_error "an unwritable place" "cannot write in /proc" "/proc/bertforge_e2e/model"
mkdir -p "$work/foreign"
echo "keep me" > "$work/foreign/notes.txt"
expect_out_error "a foreign directory" "is not empty and holds no bert_quant output (it has notes.txt)" "$work/foreign"
expect_out_error "the FP checkpoint's directory" "is the directory of the FP checkpoint being quantized" \
  "$work/run/checkpoints/step-00000030" --overwrite
expect_out_error "the data directory" "is the --data directory" "$work/data" --overwrite
[ ! -e "$work/x" ] && [ ! -e "$work/a_file/model" ] || fail "a refused --out was created"

# --overwrite writes into the foreign directory and leaves its other files; a previous output is replaced without it.
"$build/bert_quant" --checkpoint "$work/run" "${common[@]}" --activation_bits 0 --out "$work/foreign" --overwrite \
  > /dev/null 2> "$work/foreign.err" || { cat "$work/foreign.err"; fail "bert_quant --overwrite"; }
[ "$(cat "$work/foreign/notes.txt")" = "keep me" ] && [ -s "$work/foreign/model.safetensors" ] &&
  grep -q "^bert_quant: --overwrite: writing into $work/foreign, leaving its notes.txt" "$work/foreign.err" ||
  fail "--overwrite: $(ls -A "$work/foreign"; cat "$work/foreign.err")"
"$build/bert_quant" --checkpoint "$work/run" "${common[@]}" --out "$work/foreign" > /dev/null 2> "$work/again.err" ||
  { cat "$work/again.err"; fail "bert_quant into its previous output"; }
grep -q "holds a previous bert_quant output: replacing it" "$work/again.err" ||
  fail "no replacing line: $(cat "$work/again.err")"
grep -q '"activation_bits": 8' "$work/foreign/model.activations.json" &&
  [ "$(cat "$work/foreign/notes.txt")" = "keep me" ] ||
  fail "the previous output was not replaced: $(cat "$work/foreign/model.activations.json")"
echo "ok: --overwrite into a foreign directory, then a previous output replaced"

mv "$work/w8a8/model.activations.json" "$work/spec.json"
expect_error "quantized model without its spec" "model.activations.json" "$build/bert_eval" \
  --checkpoint "$work/w8a8" --data "$work/data" --seq_len 64
expect_error "--compare_to a missing checkpoint" "--compare_to $work/nope: no such checkpoint" "$build/bert_eval" \
  --checkpoint "$work/smooth" --compare_to "$work/nope" --data "$work/data" --seq_len 64
echo "all ok"
