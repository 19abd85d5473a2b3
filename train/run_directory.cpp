// A training run on disk: its identity, the checkpoint to continue from, its records; ranks agreeing on it.
#include "train/run_directory.h"

#include <filesystem>
#include <functional>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/file_io.h"
#include "core/json_diff.h"
#include "train/checkpoint.h"

namespace bertforge {

Json run_identity(const TrainerConfig& config) {
  Json identity = Json::object();
  identity.set("model", config.model.to_json());
  identity.set("seq_len", config.seq_len);
  identity.set("batch_size", config.batch_size);
  identity.set("grad_accumulation", config.grad_accumulation);
  identity.set("seed", absl::StrCat(config.seed));
  if (const std::optional<ClipAlphaWarmup> warmup = config.clip_alpha_warmup()) {
    Json schedule = Json::object();
    schedule.set("steps", warmup->steps);
    schedule.set("start", static_cast<double>(warmup->start));
    identity.set("clip_alpha_warmup", std::move(schedule));
  }
  return identity;
}

absl::StatusOr<std::optional<std::string>> checkpoint_to_resume(const TrainerConfig& config, bool leader) {
  if (config.existing_run == ExistingRun::kReplace) {
    if (leader) BF_RETURN_IF_ERROR(remove_checkpoints(config.run_dir));
    return std::nullopt;
  }
  absl::StatusOr<std::string> latest = latest_checkpoint(config.run_dir);
  if (!latest.ok()) {
    if (latest.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
    return latest.status();
  }
  if (config.existing_run == ExistingRun::kRefuse) {
    return absl::FailedPreconditionError(absl::StrCat(
        config.run_dir, " already holds a run (latest checkpoint ", std::filesystem::path(*latest).filename().string(),
        "): to start over there and delete its checkpoints pass --overwrite, to continue it drop --noresume, or "
        "use another --out"));
  }
  BF_ASSIGN_OR_RETURN(const Json saved_state, read_trainer_state(*latest));
  const Json* identity = saved_state.get("run");
  if (identity == nullptr) {
    return absl::DataLossError(absl::StrCat(*latest, "/trainer_state.json lacks the run's settings (\"run\")"));
  }
  const std::vector<JsonDifference> differences = json_differences(*identity, run_identity(config));
  if (!differences.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        *latest, " belongs to a run with other settings (checkpoint -> this command: ",
        describe_differences(differences), "); continue it with its settings, start over with --overwrite (deletes "
        "its checkpoints), or use another --out"));
  }
  return *latest;
}

absl::Status write_run_records(const TrainerConfig& config) {
  std::error_code error;
  std::filesystem::create_directories(config.run_dir, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", config.run_dir, ": ", error.message()));
  if (!config.flags_record.empty()) {
    BF_RETURN_IF_ERROR(write_file_atomic(config.run_dir + "/flags", config.flags_record));
  }
  if (!config.vocab_file.empty()) {
    BF_ASSIGN_OR_RETURN(const std::string vocab, read_file(config.vocab_file));
    BF_RETURN_IF_ERROR(write_file_atomic(config.run_dir + "/vocab.txt", vocab));
  }
  return absl::OkStatus();
}

absl::Status check_ranks_agree(Communicator& communicator, const TrainerConfig& config, int64_t first_step) {
  const int64_t fingerprint =
      static_cast<int64_t>(std::hash<std::string>{}(run_identity(config).dump() + config.train_data));
  Tensor rank0 = Tensor::from_vector(std::vector<int64_t>{fingerprint, first_step}, {2});
  communicator.broadcast(rank0, 0);
  if (rank0.data<int64_t>()[0] != fingerprint) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", communicator.rank(), " was started with another model, "
                                                   "batch, seed or data than rank 0: every rank needs the same flags"));
  }
  if (rank0.data<int64_t>()[1] != first_step) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rank ", communicator.rank(), " would start at step ", first_step, " but rank 0 at step ",
        rank0.data<int64_t>()[1], ": every rank must see the same checkpoints under --out (a shared file system "
        "across nodes)"));
  }
  return absl::OkStatus();
}

}  // namespace bertforge
