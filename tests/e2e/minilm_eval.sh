#!/usr/bin/env bash
# End to end: bert_eval on a real Hugging Face BertModel, all-MiniLM-L6-v2 (encoder only, no MLM head), with
# shards that bert_prep made from the KJV excerpt with MiniLM's own vocab.txt. bert_eval must load the BertModel
# layout, report the outlier metrics (kurtosis, inf-norms, 6 layers), and say that perplexity needs an MLM head
# (null in --json). Skips (exit 77) when scripts/fetch_minilm.sh has not filled .cache/minilm.
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
echo "all ok"
