#!/usr/bin/env bash
# End-to-end test of the studies' Python tools on hand-made inputs whose right output is known:
#   tools/sword_text.py          a mod2imp export (footnotes, tags, a cut-off tag, a repeated paragraph, a heading)
#                                -> exactly the expected documents, for --documents chapters and paragraphs;
#   tools/training_study_report.py  two runs' metrics.jsonl and quantized evaluations with chosen numbers -> the
#                                ratios and verdicts computed by hand (1.50x vanilla, not within 15%; W8A8 +1100.0%
#                                and +1.0%; dead rows after the warm-up), and a clear error without a vanilla run;
#   tools/study_record.py        a run of 120 steps -> exactly the records it keeps (validation, every 50th step,
#                                first, last, the end of the alpha warm-up) and the latest quantized evaluations,
#                                replacing the old record; a clear error on a metrics file that is not JSON.
# Usage: study_tools.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 source=$2
# shellcheck source=tests/e2e/e2e_lib.sh
source "$source/tests/e2e/e2e_lib.sh"

# ---- sword_text.py ----
cat > "$work/bible.imp" <<'EOF'
$$$[ Module Heading ]
$$$Genesis 1:0
<chapter n="1" osisID="Gen.1" sID="Gen.1"/>
$$$Genesis 1:1
<w lemma="strong:H7225">In the beginning</w>, <w>God</w><note placement="foot">A <i>footnote</i>.</note><w>created</w>.
$$$Genesis 1:2
God said, “<w>Let</w> there be light<note>2</note>,” and there was <w>light</w>.
$$$Genesis 2:1
<w>The heavens</w> were finished.
$$$Genesis 2:2
A cut-off verse <div type="x-milestone" subType
EOF
printf 'In the beginning, God created. God said, “Let there be light,” and there was light.\n\nThe heavens were finished.\n' \
  > "$work/bible.expected"
python3 "$source/tools/sword_text.py" --documents chapters < "$work/bible.imp" > "$work/bible.txt" 2> "$work/bible.log" ||
  fail "sword_text.py --documents chapters: $(cat "$work/bible.log")"
diff "$work/bible.expected" "$work/bible.txt" || fail "sword_text.py --documents chapters: wrong text (diff above)"
grep -qF "2 documents, 19 words" "$work/bible.log" || fail "sword_text.py: wrong count: $(cat "$work/bible.log")"
echo "ok: sword_text.py --documents chapters"

first='The first paragraph of the commentary, long enough to be kept.'
second='A second paragraph, which the next verse repeats word for word.'
cat > "$work/commentary.imp" <<EOF
\$\$\$Psalms 1:1
<div sID="gen1" type="x-p"/> <hi type="bold">Verses 1-3</hi> <div eID="gen1" type="x-p"/><div sID="gen2" type="x-p"/> $first <div eID="gen2" type="x-p"/> <div sID="gen3" type="x-p"/>$second<div eID="gen3" type="x-p"/>
\$\$\$Psalms 1:2
<div sID="gen4" type="x-p"/>$second<div eID="gen4" type="x-p"/>
EOF
printf '%s\n\n%s\n' "$first" "$second" > "$work/commentary.expected"
python3 "$source/tools/sword_text.py" --documents paragraphs < "$work/commentary.imp" > "$work/commentary.txt" \
  2> /dev/null || fail "sword_text.py --documents paragraphs exited non-zero"
diff "$work/commentary.expected" "$work/commentary.txt" ||
  fail "sword_text.py --documents paragraphs: wrong text (diff above)"
echo "ok: sword_text.py --documents paragraphs (heading dropped, repeat kept once)"
expect_error "sword_text.py on text that is not mod2imp's" "no text in the input" \
  python3 "$source/tools/sword_text.py" --documents chapters <<<"just words"

# ---- training_study_report.py ----
# vanilla: perplexity 10 at step 200 (unigram 200); clipped-ref-warmup: 15 there (1.50x), alpha warmed up over
# steps 1-100 (the first evaluation at the final alpha is step 200, dead rows 4%); W8A8 of vanilla 10 -> 120
# (+1100.0%), of the clipped run 15 -> 15.15 (+1.0%).
runs="$work/runs"
mkdir -p "$runs/vanilla" "$runs/clipped-ref-warmup"
eval_record() {  # STEP PERPLEXITY [DEAD]
  printf '{"step":%d,"val_loss":1,"val_perplexity":%s,"val_unigram_perplexity":200,"val_max_kurtosis":%s,' "$1" "$2" \
    "$((1000 * $1 / 100))"
  printf '"val_max_ffn_output_inf_norm":50,"val_sink_share":0,"val_special_token_mass":0.1%s}\n' \
    "${3:+,\"val_dead_row_fraction\":$3}"
}
{ eval_record 100 40; eval_record 200 10; } > "$runs/vanilla/metrics.jsonl"
{
  echo '{"step":1,"loss":9,"clip_alpha":1.01}'
  eval_record 100 50 0.5
  echo '{"step":101,"loss":3,"clip_alpha":3.2}'
  eval_record 200 15 0.04
} > "$runs/clipped-ref-warmup/metrics.jsonl"
quantized() {  # RUN FP W8A8
  local dir="$runs/$1/quantized/step-00000200"
  mkdir -p "$dir"
  echo "{\"perplexity\":$2,\"max_kurtosis\":5}" > "$dir/fp.json"
  echo "{\"perplexity\":$3,\"max_kurtosis\":5}" > "$dir/ptq-w8a8.json"
}
quantized vanilla 10 120
quantized clipped-ref-warmup 15 15.15
mkdir -p "$work/docs"
python3 "$source/tools/training_study_report.py" --study clip_study --runs "$runs" --docs "$work/docs" --steps 200 \
  || fail "training_study_report.py exited non-zero"
page="$work/docs/clip_study.md"
[ -s "$work/docs/clip_study.svg" ] || fail "training_study_report.py wrote no clip_study.svg"
# Kurtosis 1000 and 2000 on a log axis: ticks at the decades around them, 1000 and 10000.
for expected in "max kurtosis (the seed's), log scale" 'text-anchor="end">1000</text>' \
  'text-anchor="end">10000</text>'; do
  grep -qF -- "$expected" "$work/docs/clip_study.svg" || fail "clip_study.svg lacks '$expected'"
done
for expected in "**In progress:** 2 of 7 runs have finished" \
  "| clipped softmax, reference init + alpha warm-up | 200 | 15.00 | 1.50x | 4.0% (step 200) | 4.0% |" \
  "1.50x vanilla's at that step (not within 15%); 4.0% of attention rows dead at step 200" \
  "(below 10%)" "vanilla ends at perplexity 10.00, below half the unigram baseline (100.00)" \
  "perplexity 10.00 -> 120.00 (+1100.0%)" "perplexity 15.00 -> 15.15 (+1.0%)" "| vanilla softmax | 200 | 10.00 | 5.00 | 120.00 (12.00x) | — |"; do
  grep -qF -- "$expected" "$page" || fail "clip_study.md lacks '$expected':
$(cat "$page")"
done
echo "ok: training_study_report.py: ratios, verdicts and the quantized table"
rm -r "$runs/vanilla"
expect_error "training_study_report.py without a vanilla run" "no vanilla run" \
  python3 "$source/tools/training_study_report.py" --study clip_study --runs "$runs" --docs "$work/docs" --steps 200

# ---- study_record.py ----
# Steps 1-120, alpha 1 + step/100 up to step 72 and 3.2 from step 73; validation at 60 and 120; quantized at step 60
# and at step 120 (with bert_quant's report and checkpoint beside the evaluations, which the record leaves out).
run="$work/record-run" record="$work/record"
mkdir -p "$run/quantized/step-00000060" "$run/quantized/step-00000120/ptq-w8a8" "$record"
for step in $(seq 1 120); do
  alpha=3.2
  [ "$step" -lt 73 ] && alpha=$(printf '1.%02d' "$step")
  printf '{"step":%d,"loss":5,"clip_alpha":%s}\n' "$step" "$alpha"
  [ $((step % 60)) -eq 0 ] && printf '{"step":%d,"val_loss":2,"val_perplexity":7.5}\n' "$step"
done > "$run/metrics.jsonl"
echo '{"perplexity":9}' > "$run/quantized/step-00000060/fp.json"
for file in fp.json ptq-w8a8.json ptq-w8a8.quant.json ptq-w8a8/model.safetensors; do
  echo '{"perplexity":8}' > "$run/quantized/step-00000120/$file"
done
echo stale > "$record/stale.txt"
python3 "$source/tools/study_record.py" --run "$run" --record "$record" > "$work/record.log" 2>&1 ||
  fail "study_record.py exited non-zero: $(cat "$work/record.log")"
kept=$(python3 -c 'import json, sys; print(" ".join(("v" if "val_loss" in r else "") + str(r["step"])
  for r in map(json.loads, open(sys.argv[1]))))' "$record/metrics.jsonl")
[ "$kept" = "1 50 v60 73 100 120 v120" ] || fail "study_record.py kept the records of steps '$kept'"
files=$(cd "$record" && find . -type f | sort | tr '\n' ' ')
[ "$files" = "./metrics.jsonl ./quantized/step-00000120/fp.json ./quantized/step-00000120/ptq-w8a8.json " ] ||
  fail "study_record.py's record holds '$files'"
echo "ok: study_record.py: the records kept and the latest quantized evaluations"
echo "not json" > "$run/metrics.jsonl"
expect_error "study_record.py on a metrics file that is not JSON" "is not a bert_train metrics.jsonl" \
  python3 "$source/tools/study_record.py" --run "$run" --record "$record"
[ -f "$record/metrics.jsonl" ] || fail "study_record.py removed the old record on an error"
echo "PASS"
