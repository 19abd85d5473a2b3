# shellcheck shell=bash disable=SC2154  # (the variables below come from the sourcing script)
# scripts/study_lib.sh — what the study scripts (outlier_study.sh, clip_study.sh) share; sourced, not run.
# They set: build (the build directory), data (runs/data), out (the runs' directory), train_flags (an array: the
# bert_train flags every run shares) and final (the final checkpoint's path inside a run,
# checkpoints/step-N/model.safetensors).

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
