#!/usr/bin/env bash
# The main job: set up, build, and pretrain a tiny BERT on the built-in corpus
# (the King James Bible, public domain) for a few minutes on the CPU: a falling
# loss, validation perplexity, and checkpoints under runs/tiny-kjv/. Extra
# arguments go to bert_train (e.g. --steps 1000 --attention clipped_softmax).
# Started again, it resumes from the last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh

data=runs/data
[ -f "$data/kjv.txt" ] || scripts/make_corpus.sh "$data/kjv.txt"
[ -f "$data/kjv/vocab.txt" ] ||
  build/bert_prep --input "$data/kjv.txt" --out "$data/kjv" --vocab_size 8000 --documents blank \
    --validation_fraction 0.02
build/bert_train --data "$data/kjv" --out runs/tiny-kjv --preset tiny --seq_len 128 --batch_size 32 \
  --steps 300 --warmup_steps 30 --lr 5e-4 --eval_interval 100 --eval_batches 20 --checkpoint_interval 100 "$@"
python3 tools/plot_metrics.py runs/tiny-kjv/metrics.jsonl -o runs/tiny-kjv/loss.svg
