#!/usr/bin/env bash
# End to end: bert_embed on the real all-MiniLM-L6-v2 (a Hugging Face BertModel, its vocab.txt beside it). The
# .npy and .safetensors outputs must hold the same (N, 384) float32 matrix of unit rows; --compare_with of a file
# with itself must report top-k overlap 1 and mean cosine 1; a W8A8 PTQ model of MiniLM (bert_quant), fake-quantized
# and with --int8, must be compared with the FP embeddings; and bad input must give a message and a non-zero exit.
# Skips (exit 77) when scripts/fetch_minilm.sh has not filled .cache/minilm.
# Usage: bert_embed.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1
source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
. "$source/tests/e2e/e2e_lib.sh"  # work, fail, expect_error, prep_excerpt
require_minilm

cat > "$work/sentences.txt" <<'EOF'
The quick brown fox jumps over the lazy dog.
A fast brown fox leapt over a sleepy dog!
How do I reset my password?
Forgot my password: how can I change it?
Café crème, naïve façade: Zoë's résumé.
In 1969, Apollo 11 landed on the Moon.
The stock market fell by 3.5% on Tuesday.
Hello, world.
EOF
n=8

embed() {  # embed LOG ARGS...: bert_embed on MiniLM; fails with its log on error
  local log=$1
  shift
  "$build/bert_embed" --checkpoint "$minilm" --input "$work/sentences.txt" "$@" > "$log" 2>&1 ||
    { cat "$log"; fail "bert_embed $*"; }
}

embed "$work/npy.log" --out "$work/emb.npy" --batch_size 3
cat "$work/npy.log"
embed "$work/st.log" --out "$work/emb.safetensors"
grep -q "wrote $work/emb.safetensors: $n x 384 embeddings" "$work/st.log" ||
  fail "no summary line: $(cat "$work/st.log")"
grep -q "BertModel layout" "$work/st.log" || fail "bert_embed does not name the checkpoint layout"

# Shapes and contents, with the standard library only: both files hold the same unit rows (the batch size does not
# change them beyond float rounding).
python3 - "$work/emb.npy" "$work/emb.safetensors" "$n" <<'PY' || fail "output files"
import ast, json, math, struct, sys
npy_path, st_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = open(npy_path, "rb").read()
assert raw[:8] == b"\x93NUMPY\x01\x00", raw[:8]
header_len = struct.unpack("<H", raw[8:10])[0]
assert (10 + header_len) % 64 == 0 and raw[9 + header_len:10 + header_len] == b"\n"
header = ast.literal_eval(raw[10:10 + header_len].decode("latin1"))
assert header == {"descr": "<f4", "fortran_order": False, "shape": (n, 384)}, header
npy = struct.unpack(f"<{n * 384}f", raw[10 + header_len:])
raw = open(st_path, "rb").read()
st_header_len = struct.unpack("<Q", raw[:8])[0]
st_header = json.loads(raw[8:8 + st_header_len])
entry = st_header["embeddings"]
assert entry["dtype"] == "F32" and entry["shape"] == [n, 384], entry
begin, end = entry["data_offsets"]
st = struct.unpack(f"<{n * 384}f", raw[8 + st_header_len + begin:8 + st_header_len + end])
for i in range(n):
    row = st[i * 384:(i + 1) * 384]
    assert abs(math.sqrt(sum(x * x for x in row)) - 1) < 1e-5, f"row {i} is not a unit vector"
diff = max(abs(a - b) for a, b in zip(npy, st))
assert diff < 1e-5, f".npy and .safetensors differ by {diff}"
print(f"ok: {n} x 384 unit rows in both files (max difference {diff:.2g})")
PY
if "$source/.venv/bin/python" -c "import numpy" 2> /dev/null; then
  "$source/.venv/bin/python" -c "import numpy, sys; e = numpy.load(sys.argv[1]); assert e.shape == ($n, 384) and \
e.dtype == numpy.float32, (e.shape, e.dtype); print('ok: numpy.load reads', e.shape, e.dtype)" "$work/emb.npy" ||
    fail "numpy.load of the .npy"
fi

embed "$work/self.log" --out "$work/again.safetensors" --compare_with "$work/emb.safetensors"
cat "$work/self.log"
grep -q "top-$((n - 1)) overlap 1.0000, mean cosine 1.000000 ($n sentences)" "$work/self.log" ||
  fail "--compare_with of the same embeddings is not 1: $(cat "$work/self.log")"
echo "ok: --compare_with the same embeddings gives 1"

# A quantized MiniLM (W8A8 PTQ, per-channel weights) against the FP embeddings, fake-quantized and in int8.
prep_excerpt "$work/data" --vocab "$minilm/vocab.txt"
# bert_quant's --out directory is self-contained: bert_embed finds its vocab.txt there.
"$build/bert_quant" --checkpoint "$minilm" --data "$work/data" --out "$work/w8a8" \
  --granularity per_channel --seq_len 64 --batch_size 4 --calibration_batches 2 --eval_batches 1 \
  > "$work/quant.log" 2>&1 || { cat "$work/quant.log"; fail "bert_quant of MiniLM"; }
cmp -s "$minilm/vocab.txt" "$work/w8a8/vocab.txt" || fail "bert_quant did not copy MiniLM's vocab.txt"
for mode in fake-quant int8; do
  flag=()
  [ "$mode" = int8 ] && flag=(--int8)
  "$build/bert_embed" --checkpoint "$work/w8a8" --input "$work/sentences.txt" --out "$work/q.npy" "${flag[@]}" \
    --compare_with "$work/emb.npy" --top_k 3 > "$work/q.log" 2>&1 || { cat "$work/q.log"; fail "bert_embed $mode"; }
  grep -q "quantized ($mode)" "$work/q.log" || fail "bert_embed $mode does not name the scheme: $(cat "$work/q.log")"
  grep -E "top-3 overlap (0|1)\.[0-9]{4}, mean cosine -?[0-9.]+ \($n sentences\)" "$work/q.log" ||
    fail "bert_embed $mode --compare_with: $(cat "$work/q.log")"
done
echo "ok: quantized MiniLM compared with FP"

# Errors.
printf 'one sentence\n\nanother\n' > "$work/empty_line.txt"
: > "$work/empty.txt"
printf 'one\ntwo\n' > "$work/two.txt"
mkdir "$work/novocab"
ln -s "$(realpath "$minilm/model.safetensors")" "$(realpath "$minilm/config.json")" "$work/novocab/"
run=("$build/bert_embed" --checkpoint "$minilm")
expect_error "missing input" "no_such.txt" "${run[@]}" --input "$work/no_such.txt" --out "$work/x.npy"
expect_error "empty input" "holds no sentences" "${run[@]}" --input "$work/empty.txt" --out "$work/x.npy"
expect_error "empty line" "line 2 is empty" "${run[@]}" --input "$work/empty_line.txt" --out "$work/x.npy"
expect_error "unknown extension" "use .safetensors or .npy" "${run[@]}" --input "$work/sentences.txt" \
  --out "$work/x.csv"
expect_error "no --out" "--input and --out are required" "${run[@]}" --input "$work/sentences.txt"
expect_error "bad --batch_size" "--batch_size must be at least 1" "${run[@]}" --input "$work/sentences.txt" \
  --out "$work/x.npy" --batch_size 0
expect_error "non-numeric flag" "batch_size" "${run[@]}" --input "$work/sentences.txt" --out "$work/x.npy" \
  --batch_size many
expect_error "--max_seq_len over 512" "--max_seq_len must be in [2, 512]" "${run[@]}" \
  --input "$work/sentences.txt" --out "$work/x.npy" --max_seq_len 600
expect_error "checkpoint without vocab" "give --vocab" "$build/bert_embed" --checkpoint "$work/novocab" \
  --input "$work/sentences.txt" --out "$work/x.npy"
expect_error "--int8 on an FP checkpoint" "--int8 needs a quantized checkpoint" "${run[@]}" \
  --input "$work/sentences.txt" --out "$work/x.npy" --int8
expect_error "--compare_with other sentences" "not the same sentences" "${run[@]}" --input "$work/two.txt" \
  --out "$work/x.npy" --compare_with "$work/emb.npy"
[ ! -e "$work/x.csv" ] || fail "a failed run left its output"
echo "all ok"
