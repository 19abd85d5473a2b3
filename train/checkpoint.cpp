// Atomic step checkpoints: write to a temporary directory, rename, then repoint `latest`.
#include "train/checkpoint.h"

#include <fcntl.h>  // AT_FDCWD
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>  // renameat2, RENAME_EXCHANGE
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "autograd/grad_mode.h"
#include "core/check.h"
#include "core/file_io.h"
#include "core/safetensors.h"

namespace bertforge {
namespace fs = std::filesystem;

namespace {

constexpr char kModelFile[] = "model.safetensors";
constexpr char kOptimizerFile[] = "optimizer.safetensors";
constexpr char kStateFile[] = "trainer_state.json";

std::string step_name(int64_t step) { return absl::StrFormat("step-%08d", step); }

absl::Status filesystem_error(const std::string& what, const std::error_code& error) {
  return absl::InternalError(absl::StrCat(what, ": ", error.message()));
}

// Deletes temporaries left by crashed saves, and the oldest step directories until `keep_last` remain
// (keep_last <= 0 keeps them all). The directory `latest` names is never deleted, whatever its step: it is the
// run's state, even where an older run left higher steps behind.
void prune_old_checkpoints(const fs::path& checkpoints, const std::string& latest, int keep_last) {
  std::vector<std::string> others;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(checkpoints, error)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("step-", 0) != 0) continue;
    if (name.find(".tmp-") != std::string::npos) {
      fs::remove_all(entry.path(), error);
    } else if (name != latest) {
      others.push_back(name);
    }
  }
  if (keep_last <= 0) return;
  std::sort(others.begin(), others.end());  // zero-padded, so lexical order is step order
  const size_t keep_others = static_cast<size_t>(keep_last - 1);
  for (size_t i = 0; i + keep_others < others.size(); ++i) fs::remove_all(checkpoints / others[i], error);
}

// Moves the complete checkpoint `temp_dir` to `final_dir`. A re-save of a step (a finished run started again
// saves its last step once more) replaces the old directory with one atomic exchange: `latest` may name it, so
// there must be no moment without a complete directory under that name. The old one, now at `temp_dir`, is then
// deleted (or, after a crash, pruned as a leftover temporary).
absl::Status publish_directory(const fs::path& temp_dir, const fs::path& final_dir) {
  std::error_code error;
  if (!fs::exists(final_dir, error)) {
    fs::rename(temp_dir, final_dir, error);
    if (error) return filesystem_error(absl::StrCat("cannot rename ", temp_dir.string(), " to ", final_dir.string()), error);
    return absl::OkStatus();
  }
  if (renameat2(AT_FDCWD, temp_dir.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) != 0) {
    return filesystem_error(absl::StrCat("cannot exchange ", temp_dir.string(), " with ", final_dir.string()),
                            std::error_code(errno, std::generic_category()));
  }
  fs::remove_all(temp_dir, error);
  return absl::OkStatus();
}

}  // namespace

absl::Status save_checkpoint(const std::string& run_dir, int64_t step, const NamedTensors& model_parameters,
                             const AdamWOptimizer& optimizer, const Json& trainer_state,
                             const CheckpointOptions& options) {
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  const fs::path final_dir = checkpoints / step_name(step);
  const fs::path temp_dir = checkpoints / absl::StrCat(step_name(step), ".tmp-", getpid());
  std::error_code error;
  fs::remove_all(temp_dir, error);
  if (!fs::create_directories(temp_dir, error) && error) {
    return filesystem_error(absl::StrCat("cannot create ", temp_dir.string()), error);
  }
  absl::Status status = write_safetensors((temp_dir / kModelFile).string(), model_parameters, {{"format", "pt"}});
  if (status.ok()) status = optimizer.save((temp_dir / kOptimizerFile).string());
  if (status.ok()) status = write_file_atomic((temp_dir / kStateFile).string(), trainer_state.dump(2) + "\n");
  if (status.ok()) status = publish_directory(temp_dir, final_dir);
  if (!status.ok()) {
    fs::remove_all(temp_dir, error);
    return status;
  }
  BF_RETURN_IF_ERROR(write_file_atomic((checkpoints / "latest").string(), step_name(step) + "\n"));
  prune_old_checkpoints(checkpoints, step_name(step), options.keep_last);
  return absl::OkStatus();
}

absl::Status remove_checkpoints(const std::string& run_dir) {
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  std::error_code error;
  if (!fs::exists(checkpoints, error)) return absl::OkStatus();
  // One rename takes every checkpoint away at once; deleting the renamed tree can then fail half-way harmlessly.
  const fs::path doomed = fs::path(run_dir) / absl::StrCat("checkpoints.removed-", getpid());
  fs::remove_all(doomed, error);
  fs::rename(checkpoints, doomed, error);
  if (error) return filesystem_error(absl::StrCat("cannot remove the checkpoints of ", run_dir), error);
  fs::remove_all(doomed, error);
  if (error) return filesystem_error(absl::StrCat("renamed the old checkpoints to ", doomed.string(),
                                                  " but cannot delete them"), error);
  return absl::OkStatus();
}

absl::StatusOr<std::string> latest_checkpoint(const std::string& run_dir) {
  const fs::path latest = fs::path(run_dir) / "checkpoints" / "latest";
  if (!fs::exists(latest)) return absl::NotFoundError(absl::StrCat(run_dir, " has no checkpoint (no ", latest.string(), ")"));
  BF_ASSIGN_OR_RETURN(std::string name, read_file(latest.string()));
  absl::string_view trimmed = absl::StripTrailingAsciiWhitespace(name);
  const fs::path dir = latest.parent_path() / std::string(trimmed);
  if (trimmed.empty() || !fs::is_directory(dir)) {
    return absl::DataLossError(absl::StrCat(latest.string(), " names \"", trimmed, "\", which is not a checkpoint directory"));
  }
  return dir.string();
}

absl::Status load_model_weights(const std::string& safetensors_path, const NamedTensors& model_parameters) {
  BF_ASSIGN_OR_RETURN(SafetensorsFile file, read_safetensors(safetensors_path));
  std::set<std::string> expected;
  for (const auto& [name, parameter] : model_parameters) {
    expected.insert(name);
    const Tensor* stored = file.find(name);
    if (stored == nullptr) return absl::InvalidArgumentError(absl::StrCat(safetensors_path, ": missing tensor ", name));
    if (stored->shape() != parameter.shape() || stored->dtype() != parameter.dtype()) {
      return absl::InvalidArgumentError(absl::StrCat(safetensors_path, ": ", name, " is ", stored->str(),
                                                     ", the model needs ", parameter.str()));
    }
  }
  for (const auto& [name, tensor] : file.tensors) {
    if (expected.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(safetensors_path, ": unexpected tensor ", name,
                                                     " (a checkpoint of a different model?)"));
    }
  }
  autograd::NoGradGuard no_grad;
  for (const auto& [name, parameter] : model_parameters) {
    Tensor destination = parameter;
    destination.copy_(file.find(name)->to(parameter.device()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> read_trainer_state(const std::string& checkpoint_dir) {
  const std::string path = (fs::path(checkpoint_dir) / kStateFile).string();
  BF_ASSIGN_OR_RETURN(std::string text, read_file(path));
  absl::StatusOr<Json> state = Json::parse(text);
  if (!state.ok()) return absl::DataLossError(absl::StrCat(path, ": ", state.status().message()));
  return state;
}

absl::StatusOr<Json> load_checkpoint(const std::string& checkpoint_dir, const NamedTensors& model_parameters,
                                     AdamWOptimizer& optimizer) {
  const fs::path dir(checkpoint_dir);
  BF_ASSIGN_OR_RETURN(Json state, read_trainer_state(checkpoint_dir));
  // The optimizer load checks its file completely before changing anything; the
  // weights are copied last, so a failure leaves the model untouched.
  AdamWOptimizer checked = optimizer;
  BF_RETURN_IF_ERROR(checked.load((dir / kOptimizerFile).string()));
  BF_RETURN_IF_ERROR(load_model_weights((dir / kModelFile).string(), model_parameters));
  optimizer = std::move(checked);
  return state;
}

}  // namespace bertforge
