#!/usr/bin/env bash
# End to end: bert_eval on a real Hugging Face BertModel, all-MiniLM-L6-v2 (encoder only, no MLM head), with
# shards that bert_prep made from the KJV excerpt with MiniLM's own vocab.txt. bert_eval must load the BertModel
# layout, report the outlier metrics (kurtosis, inf-norms, 6 layers), and say that perplexity needs an MLM head
# (null in --json). Then MiniLM quantized: the seed's naive W8A8 loses the hidden state and bert_quant warns (stderr
# and report, naming README's recipe), the recipe keeps it and bert_quant does not warn, and bert_eval --int8
# --compare_to MiniLM reports bert_quant's SQNR and both models' tokens/s; a bad --out fails before the slow work.
# Skips (exit 77) when scripts/fetch_minilm.sh has not filled .cache/minilm.
# Usage: minilm_eval.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail, prep_excerpt
require_minilm

prep_excerpt "$work/data" --vocab "$minilm/vocab.txt"
cmp -s "$minilm/vocab.txt" "$work/data/vocab.txt" || fail "bert_prep did not keep MiniLM's vocab.txt"
echo "ok: bert_prep with MiniLM's vocabulary"

"$build/bert_eval" --checkpoint "$minilm/model.safetensors" --data "$work/data" --seq_len 64 --batch_size 4 \
  --batches 2 > "$work/eval.log" 2>&1 || { cat "$work/eval.log"; fail "bert_eval on MiniLM"; }
cat "$work/eval.log"
grep -q "BertModel layout (encoder only" "$work/eval.log" || fail "bert_eval does not name the BertModel layout"
grep -q "^perplexity .*perplexity needs an MLM head" "$work/eval.log" ||
  fail "bert_eval does not say that perplexity needs an MLM head"
grep -q "max kurtosis" "$work/eval.log" && grep -q "max FFN output inf-norm" "$work/eval.log" ||
  fail "bert_eval table lacks kurtosis or inf-norms"
echo "ok: bert_eval table"

# The cache directory itself: model.safetensors and config.json inside it.
"$build/bert_eval" --checkpoint "$minilm" --data "$work/data" --seq_len 64 --batch_size 4 --batches 2 --json \
  > "$work/eval.json" 2> "$work/eval.err" || { cat "$work/eval.json" "$work/eval.err"; fail "bert_eval --json"; }
python3 - "$work/eval.json" <<'PY' || fail "bert_eval --json: $(cat "$work/eval.json")"
import json, math, sys
r = json.load(open(sys.argv[1]))
assert r["mlm_head"] is False and r["perplexity"] is None and r["val_loss"] is None, r
assert len(r["layers"]) == 6, r["layers"]
assert r["samples"] > 0, r
for key in ("avg_kurtosis", "max_kurtosis", "max_ffn_output_inf_norm", "max_layer_output_inf_norm"):
    assert math.isfinite(r[key]) and r[key] > 1, (key, r[key])
print(f"MiniLM: avg kurtosis {r['avg_kurtosis']:.1f}, max kurtosis {r['max_kurtosis']:.1f}, "
      f"max FFN output inf-norm {r['max_ffn_output_inf_norm']:.1f}")
PY
echo "ok: bert_eval --json"

# bert_quant, the seed's W8A8 (every tap point, per tensor): MiniLM's outliers take its hidden state to a few dB,
# and bert_quant says so, pointing at README.md's recipe, on stderr and in the report (printed and in --out).
quant=(--checkpoint "$minilm" --data "$work/data" --seq_len 64 --batch_size 4 --calibration_batches 2 --eval_batches 2
  --json)
recipe=(--granularity per_channel --activation_scope linear_inputs --activation_granularity per_token
  --migration smooth --migration_alpha search)
"$build/bert_quant" "${quant[@]}" --out "$work/naive" > "$work/naive.json" 2> "$work/naive.err" ||
  { cat "$work/naive.err"; fail "bert_quant naive W8A8 of MiniLM"; }
grep -qF "bert_quant: warning: the quantized model's final hidden state is" "$work/naive.err" &&
  grep -qF "below --warn_sqnr_db 20" "$work/naive.err" && grep -qF "W8A8 that survives a real BERT" "$work/naive.err" &&
  grep -qF -- "${recipe[*]}" "$work/naive.err" || fail "no low-SQNR warning naming the recipe: $(cat "$work/naive.err")"
python3 - "$work/naive.json" "$work/naive/quant_report.json" "${recipe[*]}" <<'PY' || fail "naive W8A8 report"
import json, sys
r, saved = (json.load(open(f)) for f in sys.argv[1:3])
assert r == saved, "quant_report.json is not the printed report"
assert r["hidden_sqnr_db"] < 20 and len(r["warnings"]) == 1 and sys.argv[3] in r["warnings"][0], r["warnings"]
print(f"ok: naive W8A8 of MiniLM, {r['hidden_sqnr_db']:.2f} dB: warned")
PY
# The recipe keeps the hidden state: no warning.
"$build/bert_quant" "${quant[@]}" "${recipe[@]}" --out "$work/recipe" > "$work/recipe.json" 2> "$work/recipe.err" ||
  { cat "$work/recipe.err"; fail "bert_quant recipe W8A8 of MiniLM"; }
grep -q "warning" "$work/recipe.err" && fail "a warning for the recipe: $(cat "$work/recipe.err")"
python3 - "$work/recipe.json" <<'PY' || fail "recipe W8A8 report: $(cat "$work/recipe.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["hidden_sqnr_db"] > 20 and r["int8_hidden_sqnr_db"] > 20 and r["warnings"] == [], r
print(f"ok: recipe W8A8 of MiniLM, {r['hidden_sqnr_db']:.2f} dB (int8 {r['int8_hidden_sqnr_db']:.2f}): no warning")
PY
cmp -s "$work/recipe/vocab.txt" "$minilm/vocab.txt" && cmp -s "$work/recipe/config.json" "$work/naive/config.json" ||
  fail "the --out directory lacks MiniLM's vocab.txt or config.json: $(ls -A "$work/recipe")"

# bert_eval --int8 --compare_to MiniLM on the quantized directory, same batches as bert_quant's (2 of 4 x 64): its
# int8-executed SQNR and cosine, and tokens/s of both models; the naive model likewise, fake-quantized.
"$build/bert_eval" --checkpoint "$work/recipe" --int8 --compare_to "$minilm" --data "$work/data" --seq_len 64 \
  --batch_size 4 --batches 2 --json > "$work/compare.json" 2> "$work/compare.err" ||
  { cat "$work/compare.err"; fail "bert_eval --int8 --compare_to"; }
"$build/bert_eval" --checkpoint "$work/naive" --compare_to "$minilm" --data "$work/data" --seq_len 64 \
  --batch_size 4 --batches 2 > "$work/compare_naive.log" 2>&1 ||
  { cat "$work/compare_naive.log"; fail "bert_eval --compare_to naive"; }
cat "$work/compare_naive.log"
naive_sqnr=$(python3 -c 'import json, sys; print("%.2f" % json.load(open(sys.argv[1]))["hidden_sqnr_db"])' \
  "$work/naive.json")
grep -qE "^hidden state vs reference +$naive_sqnr dB SQNR, mean cosine 0\.[0-9]{6}$" "$work/compare_naive.log" &&
  grep -qE "^tokens/s \(encoder\) +[0-9]+\.[0-9] \(reference [0-9]+\.[0-9]: [0-9]+\.[0-9]{2}x\)$" \
    "$work/compare_naive.log" || fail "bert_eval --compare_to table (bert_quant: $naive_sqnr dB)"
python3 - "$work/compare.json" "$work/recipe.json" <<'PY' || fail "bert_eval --compare_to --json: $(cat "$work/compare.json")"
import json, sys
r, q = (json.load(open(f)) for f in sys.argv[1:3])
c = r["compare_to"]
assert c["checkpoint"].endswith("minilm/model.safetensors") and "BertModel layout" in c["layout"], c
assert abs(c["hidden_sqnr_db"] - q["int8_hidden_sqnr_db"]) < 0.01, (c["hidden_sqnr_db"], q["int8_hidden_sqnr_db"])
assert abs(c["hidden_cosine"] - q["int8_hidden_cosine"]) < 1e-6 and c["hidden_tokens"] == q["hidden_tokens"], (c, q)
assert c["tokens_per_s"] > 0 and c["reference_tokens_per_s"] > 0, c
assert abs(c["speedup"] - c["tokens_per_s"] / c["reference_tokens_per_s"]) < 1e-9, c
assert "quantized (int8)" in r["layout"] and r["mlm_head"] is False, r["layout"]
print(f"ok: bert_eval --int8 --compare_to: {c['hidden_sqnr_db']:.2f} dB, cosine {c['hidden_cosine']:.4f}, "
      f"{c['tokens_per_s']:.0f} vs {c['reference_tokens_per_s']:.0f} tokens/s ({c['speedup']:.2f}x)")
PY

# Failures: a .safetensors --out before MiniLM is even loaded (with these sizes its evaluation and calibration
# take minutes): the message, no progress line, under 2 s; a reference of another shape.
start=$(date +%s%N)
output=$("$build/bert_quant" --checkpoint "$minilm" --data "$work/data" --seq_len 128 --batch_size 32 \
  --calibration_batches 16 --eval_batches 0 --out "$work/x/model.safetensors" 2>&1) && fail "--out FILE.safetensors: exit 0"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
grep -qF "bert_quant: --out is a directory now" <<<"$output" && ! grep -q "^bert_quant: loading" <<<"$output" ||
  fail "--out FILE.safetensors: $output"
[ $ms -lt 2000 ] || fail "--out FILE.safetensors took $ms ms to fail"
echo "ok: --out FILE.safetensors fails before loading MiniLM ($ms ms)"
prep_excerpt "$work/tiny_data" --vocab_size 600
"$build/bert_train" --data "$work/tiny_data" --out "$work/tiny" --preset tiny --seq_len 32 --batch_size 4 \
  --steps 1 --eval_interval 0 --checkpoint_interval 0 > "$work/tiny.log" 2>&1 || { cat "$work/tiny.log"; fail "bert_train"; }
expect_error "--compare_to another model" "not a version of the same model" "$build/bert_eval" --checkpoint "$work/recipe" \
  --compare_to "$work/tiny" --data "$work/data" --seq_len 64
echo "all ok"
