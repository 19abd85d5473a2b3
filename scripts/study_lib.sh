# shellcheck shell=bash disable=SC2154  # (the variables below come from the sourcing script)
# scripts/study_lib.sh — what the study scripts (outlier_study.sh, clip_study.sh, long_study.sh) share; sourced, not
# run. The functions use build (the build directory), data (runs/data), out (the runs' directory), records (the
# study's committed records), docs and steps, which begin_study sets (outlier_study.sh sets the first three and steps
# itself), and train_flags (an array: the bert_train flags every run
# shares) and final (the final checkpoint's path inside a run, checkpoints/step-N/model.safetensors), which the
# script sets.

# begin_study DEFAULT_STEPS NAME: what a training study (clip_study.sh, long_study.sh) does first: set up
# (scripts/setup.sh) and build the tools it runs (one build at a time when several RUNS start together: their cmake
# runs would race on the build directory); then build=BUILD_DIR (default build), steps=STEPS (default DEFAULT_STEPS),
# out=OUT (default runs/NAME-STEPS), data=runs/data, docs=DOCS (default docs: where the report goes) and
# records=DOCS/data/NAME-STEPS (each run's record, tools/study_record.py: committed, so that the study is drawn from
# runs trained in different sessions).
begin_study() {
  scripts/setup.sh
  mkdir -p runs
  BUILD_TARGETS="bert_prep bert_train bert_eval bert_quant" flock runs/.build.lock scripts/build.sh
  build=${BUILD_DIR:-build}
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}  # spinning OpenMP threads crawl when other jobs share the cores
  steps=${STEPS:-$1}
  out=${OUT:-runs/$2-$steps}
  data=runs/data
  docs=${DOCS:-docs}
  records=$docs/data/$2-$steps
  mkdir -p "$out" "$records"
}

# cached FILE CMD...: runs CMD with its stdout to FILE unless FILE exists; FILE appears only when CMD succeeds.
cached() {
  local file=$1
  shift
  [ -s "$file" ] && return 0
  mkdir -p "$(dirname "$file")"
  "$@" > "$file.tmp"
  mv "$file.tmp" "$file"
}

# prepare_kjv: the KJV corpus (DATA/kjv.txt, scripts/make_corpus.sh) and its split with a learnt 8000-word
# vocabulary, chapters as documents, 2% of them held out (DATA/kjv), unless present.
prepare_kjv() {
  [ -f "$data/kjv.txt" ] || scripts/make_corpus.sh "$data/kjv.txt"
  [ -f "$data/kjv/vocab.txt" ] ||
    "$build/bert_prep" --input "$data/kjv.txt" --out "$data/kjv" --vocab_size 8000 --documents blank \
      --validation_fraction 0.02
}

# train NAME BERT_TRAIN_FLAGS...: trains OUT/NAME unless its final checkpoint exists (an interrupted run continues
# from its last checkpoint, bert_train's resume); its output goes to the terminal and to OUT/NAME.log.
train() {
  local name=$1
  shift
  [ -f "$out/$name/$final" ] && return 0
  echo "$(basename "$0" .sh): training $name"
  "$build/bert_train" "${train_flags[@]}" --out "$out/$name" "$@" | tee -a "$out/$name.log"
}

# study NAME FLAGS...: train NAME FLAGS... unless RUNS (the environment) names other runs (RUNS=report names none)
# or NAME is recorded (it finished in an earlier session).
study() {
  if [ -n "${RUNS:-}" ] && [[ " $RUNS " != *" $1 "* ]]; then return 0; fi
  recorded "$1" && return 0
  train "$@"
}

# recorded NAME: whether NAME's record holds the evaluations of its final checkpoint.
recorded() {
  [ -f "$records/$1/quantized/$(basename "$(dirname "$final")")/fp.json" ]
}

# quantize_latest NAME DATA: the run OUT/NAME's latest checkpoint, FP and quantized as the seed paper does it
# (W8A8: PTQ with per-tensor symmetric weights and asymmetric min-max activations at every tap) and AWQ W8 (weights
# only), each evaluated by bert_eval on DATA's whole validation split (T = 128):
# OUT/NAME/quantized/step-N/{fp,ptq-w8a8,awq-w8}.json (kept, so a rerun at the same step reuses them; an unfinished
# run is quantized where it stands).
quantize_latest() {
  local run="$out/$1" dataset=$2
  [ -f "$run/checkpoints/latest" ] || return 0
  local step
  step=$(cat "$run/checkpoints/latest")
  local dir="$run/quantized/$step" data_flags=(--data "$dataset" --seq_len 128 --batch_size 32)
  cached "$dir/fp.json" "$build/bert_eval" --checkpoint "$run/checkpoints/$step" "${data_flags[@]}" --batches 0 --json
  local scheme flags
  for scheme in ptq-w8a8 awq-w8; do
    flags=(--method ptq)
    [ "$scheme" = awq-w8 ] && flags=(--method awq --weight_bits 8)
    cached "$dir/$scheme.quant.json" "$build/bert_quant" --checkpoint "$run/checkpoints/$step" "${data_flags[@]}" \
      --calibration_batches 16 --eval_batches 0 --out "$dir/$scheme" --json "${flags[@]}"
    cached "$dir/$scheme.json" "$build/bert_eval" --checkpoint "$dir/$scheme" "${data_flags[@]}" --batches 0 --json
  done
}

# conclude NAME DATA: quantize_latest NAME DATA, then NAME's record (tools/study_record.py) in RECORDS/NAME, if this
# invocation covers NAME (RUNS unset, RUNS=report, or RUNS naming it) and this machine has NAME's run; a finished
# run's record is never replaced by an unfinished run's.
conclude() {
  if [ "${RUNS:-report}" != report ] && [[ " $RUNS " != *" $1 "* ]]; then return 0; fi
  [ -f "$out/$1/metrics.jsonl" ] || return 0
  recorded "$1" && [ ! -f "$out/$1/$final" ] && return 0
  quantize_latest "$1" "$2"
  python3 tools/study_record.py --run "$out/$1" --record "$records/$1"
}
