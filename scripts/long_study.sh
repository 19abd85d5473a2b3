#!/usr/bin/env bash
# The long study (issue 16, study (b)): do activation outliers and attention sinks emerge when a small BERT trains for
# 100M tokens, and do clipped softmax and gated attention suppress them? Three runs on one budget, each then quantized
# (W8A8 as the seed paper does it, and AWQ W8), written up in docs/long_study.md and docs/long_study.svg by
# tools/training_study_report.py:
#
#   vanilla             softmax attention
#   clipped-ref-warmup  clipped softmax at alpha = 3.2 (gamma = -alpha / T, zeta = 1) as it trains on a small model
#                       (docs/clip_study.md): --attention_init reference and alpha raised over the first 30% of steps
#   gated               gated attention
#
# Chosen toward what the literature ties to outliers and sinks: T = 128 with a [SEP] after every sentence, long
# training, lr 1e-3 and weight decay 0.1; and so that the three runs fit in one or two sessions of two cores (a run's
# checkpoints stay on the machine that trains it): 4 layers, hidden 128, 4 heads, FFN 512 (the mini preset at half its
# width), batch 32, bf16 mixed precision; 24500 steps are 100.4M tokens. The corpus (scripts/make_long_corpus.sh) is
# 4.6M words of public-domain text, so the runs see it about 17 times (the KJV alone would be 100 passes), with an
# 8000-word vocabulary learnt on it and 2% of its documents held out.
#
# Usage: scripts/long_study.sh   (STEPS=... for another budget, default 24500; BUILD_DIR=...; OUT=..., default
# runs/long-study-STEPS; DOCS=..., default docs; RUNS="vanilla gated" trains only those runs, e.g. two at once in two
# shells with OMP_NUM_THREADS=1; RUNS=report trains nothing and draws the report). Each run, once trained, is
# quantized and recorded in DOCS/data/long-study-STEPS/NAME (tools/study_record.py; committed), and the report is
# drawn from those records, so runs trained in different sessions make one study; a recorded run is not trained again,
# and an interrupted one resumes from its last checkpoint while this machine has it. About 18,000 tokens/s per run
# with one thread each, two side by side on 2 Zen 4 cores: 1.5 hours per run.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/study_lib.sh
source scripts/study_lib.sh  # begin_study, study, conclude
begin_study 24500 long-study

# The corpus and its shards, made once (flock: two runs starting together would both make them).
(
  flock 9
  [ -f "$data/long.txt" ] || scripts/make_long_corpus.sh "$data/long.txt"
  [ -f "$data/long-sentences/vocab.txt" ] ||
    "$build/bert_prep" --input "$data/long.txt" --out "$data/long-sentences" --vocab_size 8000 --documents blank \
      --sentences --validation_fraction 0.02
) 9> runs/.long-corpus.lock

# The model: the mini preset at half its width.
echo '{"num_hidden_layers": 4, "hidden_size": 128, "num_attention_heads": 4, "intermediate_size": 512,
  "vocab_size": 8000}' > "$out/model.json"
# Evaluations every 5% of the budget; checkpoints every 2.5%, so an interrupted run loses little.
train_flags=(--data "$data/long-sentences" --config "$out/model.json" --seq_len 128 --batch_size 32 --steps "$steps"
  --lr 1e-3 --weight_decay 0.1 --mixed_precision bf16 --eval_interval $((steps / 20)) --eval_batches 20
  --checkpoint_interval $((steps / 40)) --log_interval 50 --seed 0)
final=$(printf "checkpoints/step-%08d/model.safetensors" "$steps")
study vanilla
study clipped-ref-warmup --attention clipped_softmax --clip_alpha 3.2 --clip_zeta 1 --attention_init reference \
  --clip_alpha_warmup_steps $((steps * 3 / 10))
study gated --attention gated
for name in vanilla clipped-ref-warmup gated; do conclude "$name" "$data/long-sentences"; done
[ "${RUNS:-report}" = report ] || exit 0  # RUNS=report draws the report of what the invocations recorded
python3 tools/training_study_report.py --study long_study --runs "$records" --docs "$docs" --steps "$steps"
