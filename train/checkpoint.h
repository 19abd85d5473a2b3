// Training checkpoints: model weights (Hugging Face names, safetensors),
// optimizer state, and the trainer's own state (step, data position, RNG
// seed, config) in one directory per step, published atomically.
//
//   <run>/checkpoints/step-00000100/model.safetensors      loadable by transformers
//   <run>/checkpoints/step-00000100/optimizer.safetensors  AdamW moments + step
//   <run>/checkpoints/step-00000100/trainer_state.json     anything the trainer needs to resume
//   <run>/checkpoints/latest                               "step-00000100"
//
// A checkpoint is written into a temporary directory, renamed into place, and
// only then named by `latest` (itself replaced atomically): a crash at any
// moment leaves `latest` pointing at a complete checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/json.h"
#include "core/tensor.h"
#include "train/optimizer.h"

namespace bertforge {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct CheckpointOptions {
  // After a successful save, the oldest step directories are deleted until this many remain (the one `latest`
  // names always stays); 0 keeps all.
  int keep_last = 2;
};

// Saves into <run_dir>/checkpoints/step-<step>/ and points `latest` at it.
absl::Status save_checkpoint(const std::string& run_dir, int64_t step, const NamedTensors& model_parameters,
                             const AdamWOptimizer& optimizer, const Json& trainer_state,
                             const CheckpointOptions& options = {});

// Deletes <run_dir>/checkpoints (a run started over with --overwrite): renamed away in one step first, so no
// moment leaves `latest` naming a half-deleted checkpoint. OK when there is none.
absl::Status remove_checkpoints(const std::string& run_dir);

// The directory `latest` names, or NotFound when the run has no checkpoint.
absl::StatusOr<std::string> latest_checkpoint(const std::string& run_dir);

// Copies the weights of `checkpoint_dir` into `model_parameters` (every name
// must be present with the same shape; extra tensors are an error), restores
// the optimizer, and returns the trainer state. Checks everything before
// changing anything.
absl::StatusOr<Json> load_checkpoint(const std::string& checkpoint_dir, const NamedTensors& model_parameters,
                                     AdamWOptimizer& optimizer);

// The trainer state alone, e.g. to check that a checkpoint suits a run before loading it.
absl::StatusOr<Json> read_trainer_state(const std::string& checkpoint_dir);

// Weights alone (e.g. for evaluation): the same checks as load_checkpoint.
absl::Status load_model_weights(const std::string& safetensors_path, const NamedTensors& model_parameters);

}  // namespace bertforge
