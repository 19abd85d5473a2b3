#!/usr/bin/env bash
# The clipped-softmax training study (issue 16, study (a)): does clipped softmax at the seed's alpha = 3.2 train on a
# small BERT, and what makes it train? What do its outliers, and W8A8, look like next to vanilla's? One command trains
# seven runs on the same budget, quantizes each (W8A8 as the seed paper does, and AWQ W8) and writes docs/clip_study.md
# (tables) and docs/clip_study.svg (curves over training) with tools/training_study_report.py:
#
#   vanilla             softmax attention
#   clipped             clipped softmax, gamma = -alpha / T, zeta = 1, alpha = 3.2, BERT's N(0, 0.02) init
#   clipped-ref         the same with --attention_init reference (Q/K/V as PyTorch's nn.Linear: U(+-1/sqrt(d_in)))
#   clipped-warmup      BERT init, alpha raised linearly from zeta T / (T - 1) to 3.2 over the first 30% of the steps
#   clipped-ref-warmup  both
#   clipped-ref-ramp    reference init, alpha raised linearly from 0 (plain softmax) to 3.2 over the first half:
#                       clipped-ref-warmup leaves the plateau about 4000 steps after vanilla, this one may not
#   gated               gated attention (the seed's other method)
#
# Model and data: the mini preset (4 layers, hidden 256, 4 heads; dropout 0.1, no head dropout), T = 128, batch 32,
# lr 1e-3 (10% warm-up, linear decay), bf16 mixed precision, on the KJV corpus (scripts/make_corpus.sh) with one [SEP]
# per sentence (bert_prep --sentences; chapters are documents, 2% of them held out) and the 8000-word vocabulary of
# runs/data/kjv.
#
# Usage: scripts/clip_study.sh   (STEPS=... for another budget, default 16000; BUILD_DIR=...; OUT=..., default
# runs/clip-study-STEPS; DOCS=..., default docs; RUNS="vanilla clipped-ref-warmup" trains only those runs, e.g. two at
# once in two shells with OMP_NUM_THREADS=1; RUNS=report trains nothing and draws the report). Each run, once trained,
# is quantized and recorded in DOCS/data/clip-study-STEPS/NAME (tools/study_record.py; committed), and the report is
# drawn from those records, so runs trained in different sessions make one study; a recorded run is not trained again,
# and an interrupted one continues from its last checkpoint (bert_train's resume) while this machine has it. The runs in
# docs/clip_study.md today predate the records (their folders were lost with the machine that trained them), so a
# rerun trains them again. The budget: at 4000 steps (16M tokens) vanilla was still at perplexity 146 (unigram 205);
# it leaves the plateau between steps 3200 and 4800 and is at 10.4 by step 10400, so the default is 16000 (65.5M
# tokens, about 70 passes over the KJV). About 6,000 tokens/s per run with one thread each, two runs side by side on 2
# Zen 4 cores (bf16 on AVX512-BF16): 3 hours per run, 11 hours for the seven. Run it in the background, across
# sessions; it picks up where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/study_lib.sh
source scripts/study_lib.sh  # begin_study, prepare_kjv, study, conclude
begin_study 16000 clip-study

prepare_kjv
[ -f "$data/kjv-sentences/vocab.txt" ] ||
  "$build/bert_prep" --input "$data/kjv.txt" --out "$data/kjv-sentences" --vocab "$data/kjv/vocab.txt" \
    --documents blank --sentences --validation_fraction 0.02

# Evaluations every 5% of the budget; checkpoints every 2.5%, so an interrupted run loses little.
train_flags=(--data "$data/kjv-sentences" --preset mini --seq_len 128 --batch_size 32 --steps "$steps" --lr 1e-3
  --mixed_precision bf16 --eval_interval $((steps / 20)) --eval_batches 20 --checkpoint_interval $((steps / 40))
  --log_interval 50 --seed 0)
clipped=(--attention clipped_softmax --clip_alpha 3.2 --clip_zeta 1)
warmup=(--clip_alpha_warmup_steps $((steps * 3 / 10)))
final=$(printf "checkpoints/step-%08d/model.safetensors" "$steps")
study vanilla
study clipped "${clipped[@]}"
study clipped-ref "${clipped[@]}" --attention_init reference
study clipped-warmup "${clipped[@]}" "${warmup[@]}"
study clipped-ref-warmup "${clipped[@]}" --attention_init reference "${warmup[@]}"
study clipped-ref-ramp "${clipped[@]}" --attention_init reference --clip_alpha_warmup_start 0 \
  --clip_alpha_warmup_steps $((steps / 2))
study gated --attention gated
for name in vanilla clipped clipped-ref clipped-warmup clipped-ref-warmup clipped-ref-ramp gated; do
  conclude "$name" "$data/kjv-sentences"
done
[ "${RUNS:-report}" = report ] || exit 0  # RUNS=report draws the report of what the invocations recorded
python3 tools/training_study_report.py --study clip_study --runs "$records" --docs "$docs" --steps "$steps"
