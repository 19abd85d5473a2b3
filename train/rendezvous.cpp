// The file rendezvous of ranks started without MPI (rendezvous.h).
#include "train/rendezvous.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "core/file_io.h"

namespace bertforge {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr char kMagic[] = "bertforge-rendezvous 1";

std::string ack_path(const std::string& path, int rank) { return absl::StrCat(path, ".ack.", rank); }

absl::Status check_options(const FileRendezvousOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("rendezvous: no file path");
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous: rank ", options.rank, " outside a world of ", options.world_size));
  }
  if (!(options.timeout_seconds > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("rendezvous: timeout must be positive, got ",
                                                   options.timeout_seconds, " s"));
  }
  return absl::OkStatus();
}

// Publishes the file only if none exists: written whole beside it, then hard-linked to `path` (link() fails
// when `path` exists, and a reader never sees it half-written).
absl::Status publish(const FileRendezvousOptions& options, const std::string& payload) {
  const std::string staged = absl::StrCat(options.path, ".staged.", ::getpid());
  BF_RETURN_IF_ERROR(write_file_atomic(staged, format_rendezvous_file({options.job_id, options.world_size, payload})));
  const int rc = ::link(staged.c_str(), options.path.c_str());
  const int saved_errno = errno;
  ::unlink(staged.c_str());
  if (rc == 0) return absl::OkStatus();
  if (saved_errno == EEXIST) {
    return absl::AlreadyExistsError(absl::StrCat(
        "rendezvous file ", options.path, " already exists: a previous run that did not finish its rendezvous, "
        "or another job using the same path; remove it (and ", options.path, ".ack.*) and start again"));
  }
  return absl::ErrnoToStatus(saved_errno, absl::StrCat("cannot create rendezvous file ", options.path));
}

void remove_files(const FileRendezvousOptions& options) {
  for (int rank = 1; rank < options.world_size; ++rank) ::unlink(ack_path(options.path, rank).c_str());
  ::unlink(options.path.c_str());
}

absl::StatusOr<std::string> lead(const FileRendezvousOptions& options, const std::string& payload) {
  // Acknowledgements left by a failed earlier run would count for ranks that have not read this run's file: no
  // rank can acknowledge before the file exists, so any there now is stale.
  for (int rank = 1; rank < options.world_size; ++rank) ::unlink(ack_path(options.path, rank).c_str());
  BF_RETURN_IF_ERROR(publish(options, payload));
  const auto deadline = Clock::now() + std::chrono::duration<double>(options.timeout_seconds);
  std::vector<int> missing;
  for (;;) {
    missing.clear();
    for (int rank = 1; rank < options.world_size; ++rank) {
      if (!std::filesystem::exists(ack_path(options.path, rank))) missing.push_back(rank);
    }
    if (missing.empty()) break;
    if (Clock::now() > deadline) {
      remove_files(options);
      return absl::DeadlineExceededError(absl::StrCat(
          "rendezvous through ", options.path, ": rank(s) ", absl::StrJoin(missing, ", "), " of ",
          options.world_size, " did not arrive within ", options.timeout_seconds,
          " s (one failed to start, sees another file system, or was given another path)"));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  remove_files(options);
  return payload;
}

absl::StatusOr<std::string> follow(const FileRendezvousOptions& options) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(options.timeout_seconds);
  std::string stale_job;  // the job id of a file of another job, for the message
  for (;;) {
    absl::StatusOr<std::string> text = read_file(options.path);
    if (text.ok()) {
      BF_ASSIGN_OR_RETURN(const RendezvousFile file, parse_rendezvous_file(options.path, *text));
      if (!file.job_id.empty() && !options.job_id.empty() && file.job_id != options.job_id) {
        stale_job = file.job_id;  // another job's: this job's rank 0 refuses it too; the timeout says so
      } else if (file.world_size != options.world_size) {
        return absl::FailedPreconditionError(absl::StrCat(
            "rendezvous through ", options.path, ": mismatched world size: rank 0 has ", file.world_size,
            " ranks, rank ", options.rank, " was started with ", options.world_size));
      } else {
        BF_RETURN_IF_ERROR(write_file_atomic(ack_path(options.path, options.rank), options.job_id));
        return file.payload;
      }
    } else if (text.status().code() != absl::StatusCode::kNotFound) {
      return text.status();
    }
    if (Clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "rank ", options.rank, ": rendezvous through ", options.path, ": rank 0 did not publish within ",
          options.timeout_seconds, " s",
          stale_job.empty() ? " (it failed to start, or sees another file system)"
                            : absl::StrCat("; the file there is from job ", stale_job, ", not this job (",
                                           options.job_id, "): remove it")));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

std::string format_rendezvous_file(const RendezvousFile& file) {
  return absl::StrCat(kMagic, "\njob ", file.job_id.empty() ? "-" : file.job_id, "\nworld_size ", file.world_size,
                      "\npayload ", absl::BytesToHexString(file.payload), "\n");
}

absl::StatusOr<RendezvousFile> parse_rendezvous_file(const std::string& path, const std::string& text) {
  std::istringstream lines(text);
  std::string magic, job_key, world_key, payload_key;
  RendezvousFile file;
  std::getline(lines, magic);
  const bool fields_ok = magic == kMagic &&
                         (lines >> job_key >> file.job_id >> world_key >> file.world_size >> payload_key) &&
                         job_key == "job" && world_key == "world_size" && payload_key == "payload";
  // The rest is " <hex>\n" and ends the file: an empty payload has no hex digits (so a word-by-word read would miss
  // it), and a file cut short lacks the final newline.
  const std::string rest = fields_ok ? std::string(std::istreambuf_iterator<char>(lines), {}) : "";
  const bool rest_ok = rest.size() >= 2 && rest.front() == ' ' && rest.back() == '\n';
  const absl::string_view hex = rest_ok ? absl::string_view(rest).substr(1, rest.size() - 2) : "";
  if (!fields_ok || !rest_ok || hex.size() % 2 != 0 ||
      !std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isxdigit(c) != 0; })) {
    return absl::DataLossError(absl::StrCat(path, " is not a bertforge rendezvous file (or is damaged)"));
  }
  file.payload = absl::HexStringToBytes(hex);
  if (file.job_id == "-") file.job_id.clear();
  return file;
}

absl::StatusOr<std::string> file_rendezvous(const FileRendezvousOptions& options, const std::string& payload) {
  BF_RETURN_IF_ERROR(check_options(options));
  if (options.world_size == 1) return payload;
  return options.rank == 0 ? lead(options, payload) : follow(options);
}

}  // namespace bertforge
