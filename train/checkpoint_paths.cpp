// Resolving --checkpoint and --config for the tools (see checkpoint_paths.h).
#include "train/checkpoint_paths.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "train/checkpoint.h"

namespace bertforge {

namespace fs = std::filesystem;

absl::StatusOr<CheckpointPaths> resolve_checkpoint_paths(const std::string& checkpoint) {
  if (checkpoint.empty()) return absl::InvalidArgumentError("--checkpoint is required (see --help)");
  if (!fs::exists(checkpoint)) return absl::NotFoundError(absl::StrCat("no such checkpoint: ", checkpoint));
  fs::path dir = checkpoint;
  CheckpointPaths paths;
  if (fs::is_directory(dir)) {
    if (fs::is_directory(dir / "checkpoints")) {  // a run directory
      BF_ASSIGN_OR_RETURN(const std::string latest, latest_checkpoint(dir.string()));
      dir = latest;
    }
    paths.weights = (dir / "model.safetensors").string();
    if (!fs::exists(paths.weights)) {
      return absl::NotFoundError(absl::StrCat(checkpoint, " holds no model.safetensors"));
    }
  } else {
    paths.weights = dir.string();
    dir = dir.parent_path();
  }
  dir = fs::absolute(dir);
  paths.configs = {(dir / "config.json").string(), (dir.parent_path().parent_path() / "config.json").string()};
  return paths;
}

absl::StatusOr<std::string> resolve_config_path(const CheckpointPaths& paths, const std::string& explicit_config) {
  if (!explicit_config.empty()) return explicit_config;
  for (const std::string& candidate : paths.configs) {
    if (fs::exists(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("no config.json for ", paths.weights, " (looked at ",
                                          absl::StrJoin(paths.configs, ", "), "); give --config"));
}

}  // namespace bertforge
