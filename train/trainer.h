// The MLM pretraining loop behind bert_train: data, model, AdamW with warm-up
// and decay, gradient accumulation and clipping, data parallelism, periodic
// evaluation, JSONL metrics, and checkpoints from which a killed run resumes
// on the exact same loss trajectory.
//
// Why resuming is exact: every random draw is a pure function of counters that
// the checkpoint stores. Weights start from init(seed) and are then replaced by
// the checkpoint; dropout masks are keyed by (seed, step, rank, micro-step);
// the shuffle by (seed, epoch) and MLM masks by (seed, epoch, sequence); the
// optimizer moments and step count are saved; the loader position says which
// batch comes next.
//
// The loss of a step is the mean MLM cross-entropy over every labelled token
// of the step: all micro-batches on all ranks together, not the mean of
// per-batch means (which over-weights batches with few masked tokens). Each
// micro-batch's loss (a mean over its n labelled tokens) is back-propagated
// with weight n / N, N the step's labelled tokens summed over micro-batches
// and ranks, and the ranks' gradients are then summed. So W ranks with batch
// B, one process with batch W*B, and one process with batch B and W
// micro-batches all compute the same gradient (up to float rounding).
//
// An existing run in run_dir (one with a checkpoint) is continued by default; a run with other settings
// (model, batch, seed, clip alpha warm-up) is refused, naming what differs. Starting over there must be asked for
// explicitly (ExistingRun::kReplace, bert_train --overwrite): its checkpoints are deleted first, in one atomic step.
//
// Stopping early (TrainerConfig::stop_requested, e.g. Ctrl-C through train/stop_signals.h): the ranks agree to
// stop at the end of the step in progress, rank 0 writes a checkpoint of it, and train_bert returns Cancelled; the
// same command then continues the run exactly.
//
// Data parallelism (a Communicator of W ranks, e.g. under mpirun): rank r
// reads its slice of every global batch (train/data_loader.h); rank 0's
// initial weights are broadcast; gradients are summed in buckets
// (train/communicator_buckets.h) before clipping, so the clip sees the global
// norm and every rank applies the same update; dropout masks differ per rank
// by design. Rank 0 alone evaluates, prints, and writes config.json,
// metrics.jsonl and checkpoints; every rank resumes from the same checkpoint,
// which must be reached under the same --out path (a shared file system
// across nodes) and the same world size.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "models/bert_config.h"
#include "train/clip_alpha_warmup.h"
#include "train/communicator.h"
#include "train/loss_scaler.h"
#include "train/mlm_masking.h"

namespace bertforge {

// What train_bert does when run_dir already holds a run (a checkpoint).
enum class ExistingRun {
  kResume,   // continue it (refused when its model, batch or seed differ from this config)
  kRefuse,   // fail: this config is meant to start a new run (bert_train --noresume)
  kReplace,  // delete its checkpoints and start over (bert_train --overwrite)
};

struct TrainerConfig {
  BertConfig model;
  MlmVocab vocab;               // special token ids of the shards' vocabulary
  std::string train_data;       // a shard file or a directory of *.zst shards
  std::string validation_data;  // the same; empty: no evaluation
  std::string run_dir;          // checkpoints/, metrics.jsonl, config.json, flags, vocab.txt
  std::string vocab_file;       // copied to run_dir/vocab.txt (the run is then a usable model); empty: not copied
  // Safetensors weights a new run starts from (continued pretraining; models/pretrained_weights.h), instead of
  // the random initialisation. Ignored when resuming: the checkpoint has the weights.
  std::string init_from;
  // Written to run_dir/flags (e.g. the tool's flags, as a --flagfile) once the run is known to start; empty: none.
  std::string flags_record;

  int64_t seq_len = 128;
  int64_t batch_size = 32;  // per rank; sequences per optimizer step = batch_size * grad_accumulation * ranks
  int64_t grad_accumulation = 1;
  int64_t steps = 1000;
  int64_t warmup_steps = 100;
  float lr = 1e-4f;
  float weight_decay = 0.01f;
  float max_grad_norm = 1.0f;
  float adam_eps = 1e-6f;  // BERT's value
  // Clipped softmax alpha warm-up (train/clip_alpha_warmup.h): over the first clip_alpha_warmup_steps optimizer
  // steps alpha rises linearly from clip_alpha_warmup_start (default zeta T / (T - 1), T = seq_len, where the
  // clip threshold is uniform attention 1/T) to model.clip_alpha. Needs the clipped-softmax variant with
  // clip_alpha set. 0: off. Part of the run's settings that a resume must repeat.
  int64_t clip_alpha_warmup_steps = 0;
  std::optional<float> clip_alpha_warmup_start;
  uint64_t seed = 0;
  // Where the model, its gradients and the optimizer state live; batches are moved there. A CUDA device needs
  // the CUDA backend registered (cuda/device.h) before train_bert.
  Device device = Device::cpu();
  // Mixed precision (ops/autocast.h): kBF16 or kF16 rounds the operands of every matrix product (activations,
  // copies of the weights, output gradients) to that type and keeps them so for backward; kF32: off. Weights,
  // gradients and optimizer state stay FP32 either way.
  DType mixed_precision = DType::kF32;
  // Loss scaling for FP16 arithmetic (train/loss_scaler.h); a step whose gradients are not finite is skipped.
  LossScaleConfig loss_scale;

  int64_t log_interval = 10;          // progress line every N steps (metrics are logged every step)
  int64_t eval_interval = 200;        // 0: only at the end
  int64_t eval_batches = 50;          // validation batches per evaluation; 0: the whole set
  int64_t checkpoint_interval = 500;  // 0: only at the end
  ExistingRun existing_run = ExistingRun::kResume;
  // Asked after every step (on every rank); true on any rank stops the run there, with a checkpoint. Empty: never.
  std::function<bool()> stop_requested;
  // Stop (as if killed) after this many steps of this invocation, without a final
  // checkpoint; for testing resumption. 0: run to `steps`.
  int64_t stop_after = 0;

  absl::Status validate() const;
  // The run's clipped softmax alpha warm-up; nullopt when off. The config must be valid.
  std::optional<ClipAlphaWarmup> clip_alpha_warmup() const;
};

// Trains as one rank of `communicator`'s world (every rank calls it with the
// same config), rank 0 printing progress to stdout. Returns Cancelled (with a
// message saying where the run stopped) after a requested stop, an error for bad
// data, a checkpoint that does not match the config or the world size, ranks
// that disagree on the config or the checkpoint, or an I/O failure. A failed
// collective throws bertforge::Error (train/communicator.h).
absl::Status train_bert(const TrainerConfig& config, Communicator& communicator);

// The --mixed_precision flag: "none" (kF32), "bf16" or "fp16".
absl::StatusOr<DType> parse_mixed_precision(absl::string_view name);
// A single process.
absl::Status train_bert(const TrainerConfig& config);

}  // namespace bertforge
