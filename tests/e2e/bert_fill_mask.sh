#!/usr/bin/env bash
# End to end: bert_fill_mask (the top-k tokens and probabilities at each [MASK]) and tools/export_hf.py, as a user
# runs them. With transformers (the project's .venv), bertforge's tokens and probabilities must equal transformers'
# BertForMaskedLM on the same text (1e-5): for a random BertForMaskedLM that transformers wrote (dropout 0.1 in its
# config, so a model left in training mode would not match), for a model bert_train trained here and exported with
# export_hf.py, and for weight-only quantized models of it (W8, W4, AWQ W4) exported with --dequantize (codes
# dequantized, AWQ's folded scales folded back). Without transformers those comparisons are skipped with a message;
# the rest still runs. The trained model must predict frequent words (it has learnt the unigram statistics, at
# least), and its W8A8 model must give nearly its probabilities, fake-quantized and in int8 alike. Bad input must
# give a message and a non-zero exit.
# Last, on all-MiniLM-L6-v2 (encoder only): bert_fill_mask refuses it, saying it has no MLM head, and export_hf.py
# exports it as a BertModel whose mean-pooled hidden states in transformers equal bert_embed's; this part skips
# (exit 77) when scripts/fetch_minilm.sh has not filled .cache/minilm, after everything else has passed.
# Usage: bert_fill_mask.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail, expect_error, prep_excerpt, minilm, require_minilm

fill=("$build/bert_fill_mask")
export_hf=(python3 "$source/tools/export_hf.py")
python="$source/.venv/bin/python"
if "$python" -c "import torch, transformers" 2> /dev/null; then
  have_transformers=1
else
  have_transformers=0
  echo "note: no transformers in $python (scripts/setup.sh makes it): the comparisons with transformers are skipped"
fi

cat > "$work/lines.txt" <<'EOF'
And God said, Let there be [MASK]: and there was light.
In the [MASK] God created the heaven and the [MASK].
[MASK] [MASK] said unto Abraham[MASK]
EOF

# compare_with_transformers JSON HF_DIR: bert_fill_mask's --json output against transformers' BertForMaskedLM and
# BertTokenizer loaded from HF_DIR, on the same lines: the same tokens, the same top-k ids (up to the order of
# probabilities within 1e-6 of each other) and probabilities within 1e-5.
compare_with_transformers() {
  "$python" - "$1" "$2" <<'PY' || fail "bert_fill_mask $1 differs from transformers on $2"
import json, sys
import torch
from transformers import BertForMaskedLM, BertTokenizer
result, hf_dir = json.load(open(sys.argv[1])), sys.argv[2]
model, info = BertForMaskedLM.from_pretrained(hf_dir, output_loading_info=True, attn_implementation="eager")
assert not any(info.values()), f"transformers' load reports {info}"
model.eval()
tokenizer = BertTokenizer.from_pretrained(hf_dir)
k, worst = result["top_k"], 0.0
for line in result["lines"]:
    encoded = tokenizer(line["text"], return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    assert tokens == line["tokens"], f"tokens: transformers {tokens}, bertforge {line['tokens']}"
    with torch.no_grad():
        probs = model(**encoded).logits[0].double().softmax(-1)
    positions = [t for t, token in enumerate(tokens) if token == "[MASK]"]
    assert positions == [m["position"] for m in line["masks"]], (positions, line["masks"])
    for mask in line["masks"]:
        p = probs[mask["position"]]
        want = p.topk(k).values
        for rank, got in enumerate(mask["predictions"]):
            assert got["token"] == tokenizer.convert_ids_to_tokens(got["id"]), got
            error = abs(p[got["id"]].item() - got["probability"])
            worst = max(worst, error)
            assert error < 1e-5, f"{line['text']!r} {got}: transformers gives {p[got['id']].item()}"
            # the id at each rank is transformers' choice, up to near-ties
            assert abs(want[rank].item() - got["probability"]) < 1e-6 + error, (rank, got, want.tolist())
print(f"ok: {sys.argv[1]}: the same tokens and top-{k} as transformers (largest probability difference {worst:.2g})")
PY
}

# top_tokens JSON: "line/mask: token token ..." for each mask, to compare runs by eye and by grep.
top_tokens() {
  python3 -c 'import json, sys
for line in json.load(open(sys.argv[1]))["lines"]:
    for i, mask in enumerate(line["masks"]):
        print(str(line["line"]) + "/" + str(i + 1) + ":", " ".join(p["token"] for p in mask["predictions"]))' "$1" ||
    fail "reading $1"
}

# 1. A random BertForMaskedLM made by transformers (vocabulary of the corpus excerpt; weights 0.3 wide so that the
#    probabilities spread out), read as a Hugging Face download.
prep_excerpt "$work/data" --vocab_size 600
if [ $have_transformers = 1 ]; then
  "$python" - "$work/data/vocab.txt" "$work/hf_random" <<'PY' || fail "building the transformers model"
import sys
import torch
from transformers import BertConfig, BertForMaskedLM, BertTokenizer
vocab, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
config = BertConfig(vocab_size=600, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                    max_position_embeddings=64, initializer_range=0.3, hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1)
BertForMaskedLM(config).save_pretrained(out)
BertTokenizer(vocab, do_lower_case=True).save_pretrained(out)
PY
  "${fill[@]}" --checkpoint "$work/hf_random" --input "$work/lines.txt" --json > "$work/hf_random.json" \
    2> "$work/hf_random.err" || { cat "$work/hf_random.err"; fail "bert_fill_mask on the transformers model"; }
  grep -q "BertForMaskedLM layout" "$work/hf_random.err" || fail "no layout in: $(cat "$work/hf_random.err")"
  compare_with_transformers "$work/hf_random.json" "$work/hf_random"
fi

# 2. A model trained here: text and JSON output, --text, stdin; it predicts frequent words.
"$build/bert_train" --data "$work/data" --out "$work/run" --preset tiny --seq_len 64 --batch_size 8 --steps 30 \
  --warmup_steps 3 --lr 2e-3 --log_interval 10 --eval_interval 0 --eval_batches 4 --checkpoint_interval 0 \
  > "$work/train.log" 2>&1 || { cat "$work/train.log"; fail "bert_train"; }
run_fill() {  # run_fill OUT ARGS...: bert_fill_mask ARGS > OUT; fails with its stderr on error
  local out=$1
  shift
  "${fill[@]}" "$@" > "$out" 2> "$out.err" || { cat "$out" "$out.err"; fail "bert_fill_mask $*"; }
}
common=(--vocab "$work/data/vocab.txt" --input "$work/lines.txt")
run_fill "$work/fp.txt" --checkpoint "$work/run" "${common[@]}"
run_fill "$work/fp.json" --checkpoint "$work/run" "${common[@]}" --json
cat "$work/fp.txt"
[ "$(grep -c '^  \[MASK\] [0-9]/[0-9]:' "$work/fp.txt")" -eq 6 ] || fail "not 6 mask rows in: $(cat "$work/fp.txt")"
grep -q '^  \[MASK\] 3/3: ' "$work/fp.txt" || fail "the third line's three masks are not all there"
python3 - "$work/fp.txt" "$work/fp.json" <<'PY' || fail "text and JSON outputs"
import json, re, sys
rows = [line for line in open(sys.argv[1]) if line.startswith("  [MASK]")]
result = json.load(open(sys.argv[2]))
masks = [m for line in result["lines"] for m in line["masks"]]
assert len(rows) == len(masks) == 6 and result["top_k"] == 5, (rows, result)
assert result["quantization"] is None and "BertForMaskedLM" in result["layout"], result
for row, mask in zip(rows, masks):
    pairs = re.findall(r"  (\S+) ([0-9.]+)", row.split(":", 1)[1])
    want = [(p["token"], round(p["probability"], 4)) for p in mask["predictions"]]
    assert [(t, float(p)) for t, p in pairs] == want, (pairs, want)
    probs = [p["probability"] for p in mask["predictions"]]
    assert probs == sorted(probs, reverse=True) and 0 < probs[-1] and sum(probs) <= 1 + 1e-9, probs
    # 30 steps learn at least the unigram statistics: "the" is among the top 5 at every mask.
    assert "the" in [p["token"] for p in mask["predictions"]], mask
print("ok: text and --json agree; every mask predicts 'the' among its top 5")
PY
run_fill "$work/one.json" --checkpoint "$work/run" --vocab "$work/data/vocab.txt" --json --top_k 2 \
  --text "In the [MASK] God created the heaven and the [MASK]."
one=$(top_tokens "$work/one.json" | sed 's/^1/2/')
[ -n "$one" ] && [ "$one" = "$(top_tokens "$work/fp.json" | grep '^2/' | cut -d' ' -f1-3)" ] ||
  fail "--text --top_k 2 does not give the top 2 of line 2 of --input: $one"
sed -n 1p "$work/lines.txt" | "${fill[@]}" --checkpoint "$work/run" --vocab "$work/data/vocab.txt" > "$work/stdin.txt" \
  2> /dev/null || fail "bert_fill_mask reading stdin"
cmp -s "$work/stdin.txt" <(head -2 "$work/fp.txt") || fail "stdin gives $(cat "$work/stdin.txt")"
echo "ok: --text, --top_k and stdin"
if [ $have_transformers = 1 ]; then
  "${export_hf[@]}" "$work/run" "$work/run_hf" --vocab "$work/data/vocab.txt" > /dev/null || fail "export_hf of the run"
  compare_with_transformers "$work/fp.json" "$work/run_hf"
fi

# 3. Quantized: W8A8 fake-quantized and int8 (bert_quant's output directory holds the vocabulary); export_hf.py
#    refuses it without --dequantize.
quantize() {  # quantize DIR ARGS...: bert_quant of the run into DIR
  local dir=$1
  shift
  "$build/bert_quant" --checkpoint "$work/run" --data "$work/data" --seq_len 64 --batch_size 8 \
    --calibration_batches 2 --eval_batches 1 --out "$dir" "$@" > "$dir.log" 2>&1 ||
    { cat "$dir.log"; fail "bert_quant $*"; }
}
quantize "$work/w8a8"
run_fill "$work/w8a8.json" --checkpoint "$work/w8a8" --input "$work/lines.txt" --json
run_fill "$work/int8.json" --checkpoint "$work/w8a8" --input "$work/lines.txt" --json --int8
grep -q "quantized (fake-quant): weights int8" "$work/w8a8.json.err" &&
  grep -q "quantized (int8)" "$work/int8.json.err" ||
  fail "the quantized runs do not name their execution: $(cat "$work/w8a8.json.err" "$work/int8.json.err")"
python3 - "$work/fp.json" "$work/w8a8.json" "$work/int8.json" <<'PY' || fail "W8A8 probabilities"
import json, sys
fp, fq, i8 = ({(l["line"], m["position"]): {p["token"]: p["probability"] for p in m["predictions"]}
               for l in json.load(open(f))["lines"] for m in l["masks"]} for f in sys.argv[1:])
assert json.load(open(sys.argv[2]))["quantization"].startswith("weights int8"), "no scheme in --json"
worst_fp = worst_int8 = 0.0
for mask, want in fp.items():
    for token, p in fq[mask].items():
        worst_int8 = max(worst_int8, abs(p - i8[mask][token]))
        if token in want:
            worst_fp = max(worst_fp, abs(p - want[token]))
print(f"W8A8 vs FP: largest probability difference {worst_fp:.2g}; fake-quant vs int8 {worst_int8:.2g}")
assert worst_fp < 0.01 and worst_int8 < 1e-3
PY
echo "ok: W8A8 fill-mask, fake-quantized and int8"

expect_error "export of a quantized checkpoint" "is a quantized checkpoint (bert_quant's output: 12 weights stored as" \
  "${export_hf[@]}" "$work/w8a8" "$work/refused_hf"
[ ! -e "$work/refused_hf" ] || fail "a refused export wrote $work/refused_hf"
"${export_hf[@]}" "$work/w8a8" "$work/w8a8_hf" --dequantize > "$work/w8a8_hf.log" 2>&1 ||
  { cat "$work/w8a8_hf.log"; fail "export_hf --dequantize of W8A8"; }
grep -q "activations are quantized in bertforge (activation_bits 8)" "$work/w8a8_hf.log" ||
  fail "no warning that the activations stay FP: $(cat "$work/w8a8_hf.log")"
expect_error "--dequantize of an FP checkpoint" "--dequantize is for bert_quant's output" \
  "${export_hf[@]}" "$work/run" "$work/x_hf" --dequantize
# Weight-only models exported with --dequantize compute what bertforge's fake quantization computes: 8-bit codes
# (I8), 4-bit symmetric codes two per byte, and AWQ's asymmetric 4-bit groups with their folded scales.
check_dequantized() {  # check_dequantized NAME BERT_QUANT_ARGS...
  local name=$1
  shift
  quantize "$work/$name" "$@"
  run_fill "$work/$name.json" --checkpoint "$work/$name" --input "$work/lines.txt" --json
  "${export_hf[@]}" "$work/$name" "$work/${name}_hf" --dequantize --vocab "$work/data/vocab.txt" \
    > "$work/${name}_hf.log" 2>&1 || { cat "$work/${name}_hf.log"; fail "export_hf --dequantize of $name"; }
  if grep -q "warning" "$work/${name}_hf.log"; then fail "$name is weight-only, yet: $(cat "$work/${name}_hf.log")"; fi
  if [ $have_transformers = 1 ]; then compare_with_transformers "$work/$name.json" "$work/${name}_hf"; fi
}
check_dequantized w8 --activation_bits 0
check_dequantized w4 --weight_bits 4 --granularity per_channel --activation_bits 0
check_dequantized awq4 --method awq --weight_bits 4
grep -q "folded .* per-channel multiplies" "$work/awq4_hf.log" || fail "nothing folded back: $(cat "$work/awq4_hf.log")"
echo "ok: weight-only models exported with --dequantize"

# 4. Errors.
printf 'the [MASK] of god\nno mask here\n' > "$work/no_mask.txt"
printf 'the [MASK] of god\n\nand [MASK]\n' > "$work/empty_line.txt"
: > "$work/empty.txt"
long="$(printf 'and %.0s' $(seq 520))[MASK]"  # 523 tokens with [CLS] and [SEP]
{ cat "$work/data/vocab.txt"; echo extra; } > "$work/vocab601.txt"
run=("${fill[@]}" --checkpoint "$work/run" --vocab "$work/data/vocab.txt")
expect_error "a line without [MASK]" "line 2: no [MASK] in \"no mask here\"" "${run[@]}" --input "$work/no_mask.txt"
expect_error "an empty line" "line 2: no [MASK]" "${run[@]}" --input "$work/empty_line.txt"
expect_error "empty input" "holds no lines" "${run[@]}" --input "$work/empty.txt"
expect_error "lower-case mask" "no [MASK] in \"the [mask]\"" "${run[@]}" --text "the [mask]"
expect_error "a line over max_position_embeddings" "523 tokens with [CLS] and [SEP], over the limit of 512" \
  "${run[@]}" --text "$long"
expect_error "--text and --input" "give --text or --input, not both" "${run[@]}" --text "a [MASK]" \
  --input "$work/lines.txt"
expect_error "missing input" "no_such.txt" "${run[@]}" --input "$work/no_such.txt"
expect_error "--top_k 0" "--top_k must be at least 1" "${run[@]}" --text "a [MASK]" --top_k 0
expect_error "--top_k over the vocabulary" "--top_k 601 is more than the vocabulary (600 tokens)" "${run[@]}" \
  --text "a [MASK]" --top_k 601
expect_error "non-numeric --top_k" "top_k" "${run[@]}" --text "a [MASK]" --top_k many
expect_error "positional argument" "unexpected argument" "${run[@]}" "a [MASK]"
expect_error "another vocabulary" "not this model's vocab.txt" "${fill[@]}" --checkpoint "$work/run" \
  --vocab "$work/vocab601.txt" --text "a [MASK]"
expect_error "missing checkpoint" "$work/no_run" "${fill[@]}" --checkpoint "$work/no_run" --text "a [MASK]"
expect_error "--int8 on an FP checkpoint" "--int8 needs a quantized checkpoint" "${run[@]}" --text "a [MASK]" --int8

# 5. all-MiniLM-L6-v2, an encoder-only BertModel.
require_minilm
expect_error "an encoder-only checkpoint" "has no MLM head (no cls.predictions.* tensors): it is an encoder-only" \
  "${fill[@]}" --checkpoint "$minilm" --text "the [MASK] sat on the mat."
"${export_hf[@]}" "$minilm" "$work/minilm_hf" --vocab "$minilm/vocab.txt" > "$work/minilm_hf.log" 2>&1 ||
  { cat "$work/minilm_hf.log"; fail "export_hf of MiniLM"; }
grep -q "(BertModel, " "$work/minilm_hf.log" || fail "MiniLM not exported as a BertModel: $(cat "$work/minilm_hf.log")"
grep -q '"BertModel"' "$work/minilm_hf/config.json" ||
  fail "config.json architectures: $(cat "$work/minilm_hf/config.json")"
echo "ok: export_hf of the encoder-only MiniLM"
if [ $have_transformers = 1 ]; then
  sed -e 's/ \[MASK\]/ light/g' -e 's/\[MASK\]//g' "$work/lines.txt" > "$work/sentences.txt"
  "$build/bert_embed" --checkpoint "$minilm" --input "$work/sentences.txt" --out "$work/minilm.npy" \
    > "$work/embed.log" 2>&1 || { cat "$work/embed.log"; fail "bert_embed of MiniLM"; }
  "$python" - "$work/minilm_hf" "$work/sentences.txt" "$work/minilm.npy" <<'PY' || fail "exported MiniLM vs bert_embed"
import sys
import numpy, torch
from transformers import BertModel, BertTokenizer
hf_dir, sentences, want = sys.argv[1], open(sys.argv[2]).read().splitlines(), numpy.load(sys.argv[3])
model, info = BertModel.from_pretrained(hf_dir, output_loading_info=True, attn_implementation="eager")
assert not any(info.values()), f"transformers' load reports {info}"
model.eval()
batch = BertTokenizer.from_pretrained(hf_dir)(sentences, padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
got = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
error = abs(got - want).max()
print(f"ok: exported MiniLM in transformers vs bert_embed: largest difference {error:.2g} over {got.shape}")
assert error < 1e-5
PY
fi
echo "all ok"
