// A training run on disk: what identifies it (the settings a resume must repeat), which checkpoint of run_dir a
// new invocation continues from, the records that make run_dir self-describing, and the check that every rank
// trains the same run from the same step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/json.h"
#include "train/communicator.h"
#include "train/trainer.h"

namespace bertforge {

// What must not change between a checkpoint and the run that resumes from it: the model, seq_len, batch,
// accumulation, seed, and the clipped-softmax alpha warm-up (only when on, so runs from before it still match).
Json run_identity(const TrainerConfig& config);

// The checkpoint this run continues from (nullopt: a new run), after applying config.existing_run to what
// config.run_dir holds; a checkpoint of a run with another identity is refused, naming what differs. Only the
// leader deletes anything (ExistingRun::kReplace).
absl::StatusOr<std::optional<std::string>> checkpoint_to_resume(const TrainerConfig& config, bool leader);

// Creates run_dir and writes the flags that started the run and the vocabulary of its data (run_dir/flags,
// run_dir/vocab.txt), each atomically.
absl::Status write_run_records(const TrainerConfig& config);

// Every rank must train the same run from the same step: compares each rank's (identity, data, first step) with
// rank 0's (a broadcast); an error names what differs.
absl::Status check_ranks_agree(Communicator& communicator, const TrainerConfig& config, int64_t first_step);

}  // namespace bertforge
