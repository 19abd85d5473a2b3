// Where a tool finds a model file and its config.json from what the user gave as --checkpoint.
//
//   --checkpoint RUN                               a run directory (it has checkpoints/): its latest checkpoint
//   --checkpoint RUN/checkpoints/step-N            a checkpoint directory: its model.safetensors
//   --checkpoint path/to/model.safetensors         the file itself (a Hugging Face download, a quantized model)
//
// The config is --config when given, else the first that exists of: config.json beside the model file (the
// Hugging Face layout, and what bert_quant writes), then RUN/config.json for RUN/checkpoints/step-N/ (what
// bert_train writes). bert_eval and bert_quant resolve their --checkpoint through here.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace bertforge {

struct CheckpointPaths {
  std::string weights;               // the model's safetensors file
  std::vector<std::string> configs;  // where its config.json is looked for, in order
};

// NotFound for a path that does not exist or a directory without model.safetensors; InvalidArgument for "".
absl::StatusOr<CheckpointPaths> resolve_checkpoint_paths(const std::string& checkpoint);

// `explicit_config` when not empty, else the first of paths.configs that exists (NotFound naming them all).
absl::StatusOr<std::string> resolve_config_path(const CheckpointPaths& paths, const std::string& explicit_config);

}  // namespace bertforge
