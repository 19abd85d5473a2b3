#!/usr/bin/env bash
# The main job: set up, build, and pretrain a tiny BERT on the built-in corpus
# (the King James Bible, public domain) for about 7 minutes on 2 CPU cores: a
# falling loss, validation perplexity next to the unigram baseline, and
# checkpoints under runs/kjv-tiny/. Extra arguments go to bert_train (e.g.
# --steps 4000 --attention clipped_softmax). Started again, it resumes from the
# last checkpoint.
#
# Why 32-token sequences and 10M tokens: a small BERT first learns the token
# frequencies and sits at the unigram perplexity until it learns to use context;
# on this corpus that took about 5M tokens (at 128-token sequences, longer), so a
# shorter run would end near the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_TARGETS="bert_prep bert_train" scripts/build.sh  # only what the job runs: tests and benchmarks need not wait

data=runs/data
[ -f "$data/kjv.txt" ] || scripts/make_corpus.sh "$data/kjv.txt"
[ -f "$data/kjv/vocab.txt" ] ||
  build/bert_prep --input "$data/kjv.txt" --out "$data/kjv" --vocab_size 8000 --documents blank \
    --validation_fraction 0.02
build/bert_train --data "$data/kjv" --out runs/kjv-tiny --preset tiny --seq_len 32 --batch_size 128 \
  --steps 2500 --warmup_steps 100 --lr 1e-3 --eval_interval 500 --eval_batches 20 --checkpoint_interval 500 \
  --log_interval 100 "$@"
python3 tools/plot_metrics.py runs/kjv-tiny/metrics.jsonl -o runs/kjv-tiny/loss.svg
