// The MLM pretraining loop behind bert_train: data, model, AdamW with warm-up
// and decay, gradient accumulation and clipping, periodic evaluation, JSONL
// metrics, and checkpoints from which a killed run resumes on the exact same
// loss trajectory.
//
// Why resuming is exact: every random draw is a pure function of counters that
// the checkpoint stores. Weights start from init(seed) and are then replaced by
// the checkpoint; dropout masks are keyed by (seed, step, rank, micro-step);
// MLM masks and the shuffle by (seed, loader batch, epoch); the optimizer
// moments and step count are saved; the loader position says which batch
// comes next.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "models/bert_config.h"
#include "train/mlm_masking.h"

namespace bertforge {

struct TrainerConfig {
  BertConfig model;
  MlmVocab vocab;               // special token ids of the shards' vocabulary
  std::string train_data;       // a shard file or a directory of *.zst shards
  std::string validation_data;  // the same; empty: no evaluation
  std::string run_dir;          // checkpoints/, metrics.jsonl, config.json

  int64_t seq_len = 128;
  int64_t batch_size = 32;  // sequences per optimizer step = batch_size * grad_accumulation
  int64_t grad_accumulation = 1;
  int64_t steps = 1000;
  int64_t warmup_steps = 100;
  float lr = 1e-4f;
  float weight_decay = 0.01f;
  float max_grad_norm = 1.0f;
  float adam_eps = 1e-6f;  // BERT's value
  uint64_t seed = 0;

  int64_t log_interval = 10;          // progress line every N steps (metrics are logged every step)
  int64_t eval_interval = 200;        // 0: only at the end
  int64_t eval_batches = 50;          // validation batches per evaluation; 0: the whole set
  int64_t checkpoint_interval = 500;  // 0: only at the end
  bool resume = true;                 // continue from run_dir's latest checkpoint when there is one
  // Stop (as if killed) after this many steps of this invocation, without a final
  // checkpoint; for testing resumption. 0: run to `steps`.
  int64_t stop_after = 0;

  absl::Status validate() const;
};

// Trains, printing progress to stdout. Returns an error for bad data, a
// checkpoint that does not match the config, or an I/O failure.
absl::Status train_bert(const TrainerConfig& config);

}  // namespace bertforge
