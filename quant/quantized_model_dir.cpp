// The directory bert_quant writes: checking it before the work, staging its files, publishing them
// (quantized_model_dir.h).
#include "quant/quantized_model_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "quant/quantized_model.h"

namespace bertforge::quant {
namespace fs = std::filesystem;
namespace {

constexpr absl::string_view kStagingPrefix = ".bert_quant-partial-";

bool is_staging_name(const std::string& name) { return absl::StartsWith(name, kStagingPrefix); }

bool is_model_file(const std::string& name) {
  for (const char* file : kQuantizedModelFiles) {
    if (name == file) return true;
  }
  return false;
}

absl::Status filesystem_error(const std::string& what, const std::error_code& error) {
  return absl::InternalError(absl::StrCat(what, ": ", error.message()));
}

// Whether a directory can be created in `dir`: tries it (and removes it), which also catches read-only file
// systems and /proc, where permission bits (and access(2) for root) say yes.
absl::Status check_writable(const fs::path& dir, const std::string& out) {
  const fs::path probe = dir / absl::StrCat(kStagingPrefix, "probe-", getpid());
  if (::mkdir(probe.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("--out ", out, ": cannot write in ", dir.string(), " (",
                                                      std::generic_category().message(errno), ")"));
  }
  ::rmdir(probe.c_str());
  return absl::OkStatus();
}

// Makes the renames into `dir` durable.
absl::Status fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open directory ", dir));
  const int rc = ::fsync(fd);
  const int saved_errno = errno;
  ::close(fd);
  if (rc != 0) return absl::ErrnoToStatus(saved_errno, absl::StrCat("cannot fsync directory ", dir));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizedModelDirCheck> check_quantized_model_dir(const std::string& dir, bool overwrite) {
  if (dir.empty()) return absl::InvalidArgumentError("--out is required: the directory to write the model into");
  if (absl::EndsWith(dir, ".safetensors")) {
    const fs::path parent = fs::path(dir).parent_path();
    return absl::InvalidArgumentError(absl::StrCat(
        "--out is a directory now (bert_quant writes model.safetensors, model.activations.json, config.json, ",
        "vocab.txt and quant_report.json into it), not the .safetensors file: give --out ",
        parent.empty() ? "DIR" : parent.string(), " instead of --out ", dir));
  }
  QuantizedModelDirCheck check;
  std::error_code error;
  const fs::file_status status = fs::status(dir, error);
  if (!fs::exists(status)) {
    // A new directory: its nearest existing ancestor must be a directory we can write in.
    fs::path ancestor = fs::absolute(dir).parent_path();
    while (!fs::exists(ancestor, error) && ancestor != ancestor.parent_path()) ancestor = ancestor.parent_path();
    if (!fs::is_directory(ancestor, error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--out ", dir, ": ", ancestor.string(), " is not a directory, so it cannot hold one"));
    }
    BF_RETURN_IF_ERROR(check_writable(ancestor, dir));
    return check;
  }
  if (!fs::is_directory(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--out ", dir, " exists and is not a directory; give a new or empty directory"));
  }
  check.exists = true;
  std::vector<std::string> entries;  // what DIR holds, staging leftovers of crashed runs aside
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (is_staging_name(name)) continue;
    entries.push_back(name);
    if (!is_model_file(name)) check.other_files.push_back(name);
  }
  if (error) return filesystem_error(absl::StrCat("--out ", dir, ": cannot list it"), error);
  const auto holds = [&](const char* file) { return std::find(entries.begin(), entries.end(), file) != entries.end(); };
  const bool has_weights = holds(kQuantizedWeightsFile);
  if (has_weights) {
    const absl::StatusOr<bool> quantized = is_quantized_checkpoint((fs::path(dir) / kQuantizedWeightsFile).string());
    check.previous_output = quantized.ok() && *quantized;
  } else {
    check.previous_output = holds(kQuantReportFile);  // an interrupted publish (see the header)
  }
  if (!entries.empty() && !check.previous_output && !overwrite) {
    std::sort(entries.begin(), entries.end());
    if (entries.size() > 6) {  // the first five, then "..."
      entries.resize(6);
      entries.back() = "...";
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "--out ", dir, " is not empty and holds no bert_quant output (it has ", absl::StrJoin(entries, ", "),
        has_weights ? "; its model.safetensors is not a quantized model" : "",
        "); give a new or empty directory, or --overwrite to write bert_quant's files into it"));
  }
  BF_RETURN_IF_ERROR(check_writable(dir, dir));
  return check;
}

absl::StatusOr<StagedModelDir> StagedModelDir::create(const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return filesystem_error(absl::StrCat("cannot create --out ", dir), error);
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    int pid = 0;
    if (is_staging_name(name) && absl::SimpleAtoi(name.substr(kStagingPrefix.size()), &pid) && pid > 0 &&
        ::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);  // a crashed run's; a running one's stays
    }
  }
  const fs::path staging = fs::path(dir) / absl::StrCat(kStagingPrefix, getpid());
  fs::remove_all(staging, error);
  if (!fs::create_directory(staging, error)) {
    return filesystem_error(absl::StrCat("cannot create ", staging.string()), error);
  }
  return StagedModelDir(dir, staging.string());
}

StagedModelDir::StagedModelDir(StagedModelDir&& other) noexcept
    : dir_(std::move(other.dir_)), staging_(std::exchange(other.staging_, "")) {}

StagedModelDir& StagedModelDir::operator=(StagedModelDir&& other) noexcept {
  if (this != &other) {
    discard();
    dir_ = std::move(other.dir_);
    staging_ = std::exchange(other.staging_, "");
  }
  return *this;
}

StagedModelDir::~StagedModelDir() { discard(); }

void StagedModelDir::discard() {
  if (staging_.empty()) return;
  std::error_code error;
  fs::remove_all(staging_, error);
  staging_.clear();
}

std::string StagedModelDir::path(absl::string_view file) const {
  return (fs::path(staging_) / std::string(file)).string();
}

absl::Status StagedModelDir::publish() {
  if (staging_.empty()) return absl::FailedPreconditionError(absl::StrCat(dir_, ": nothing staged to publish"));
  std::error_code error;
  if (!fs::exists(path(kQuantizedWeightsFile), error)) {
    return absl::FailedPreconditionError(absl::StrCat(dir_, ": no ", kQuantizedWeightsFile, " staged"));
  }
  const fs::path dir(dir_);
  const std::string old_weights = (dir / kQuantizedWeightsFile).string();
  fs::remove(old_weights, error);  // first: the old weights never meet the new sidecar files
  if (error) return filesystem_error(absl::StrCat("cannot remove the old ", old_weights), error);
  for (const char* file : kQuantizedModelFiles) {  // the weights last
    const std::string target = (dir / file).string();
    if (fs::exists(path(file), error)) {
      fs::rename(path(file), target, error);
      if (error) return filesystem_error(absl::StrCat("cannot move ", path(file), " to ", target), error);
    } else {
      fs::remove(target, error);  // a file of the previous output that this one does not have
      if (error) return filesystem_error(absl::StrCat("cannot remove the old ", target), error);
    }
  }
  discard();
  return fsync_directory(dir_);
}

}  // namespace bertforge::quant
