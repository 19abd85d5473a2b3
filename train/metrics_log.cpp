// JSONL metrics log with resume truncation, and the progress line.
#include "train/metrics_log.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/check.h"
#include "core/file_io.h"

namespace bertforge {

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

absl::Status MetricsLog::open(const std::string& path, int64_t resume_step) {
  path_ = path;
  if (resume_step >= 0 && std::filesystem::exists(path)) {
    BF_ASSIGN_OR_RETURN(std::string text, read_file(path));
    std::string kept;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      absl::StatusOr<Json> record = Json::parse(line);
      if (!record.ok()) break;  // a line cut short by a crash ends the usable log
      const Json* step = record->get("step");
      if (step != nullptr && step->is_number() && step->as_number() > static_cast<double>(resume_step)) continue;
      absl::StrAppend(&kept, line, "\n");
    }
    BF_RETURN_IF_ERROR(write_file_atomic(path, kept));
  }
  file_ = std::fopen(path.c_str(), resume_step >= 0 ? "a" : "w");
  if (file_ == nullptr) {
    return absl::InternalError(absl::StrCat("cannot open metrics log ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status MetricsLog::write(const Json& record) {
  BF_CHECK(file_ != nullptr, "MetricsLog::write before open");
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    return absl::InternalError(absl::StrCat("cannot write metrics log ", path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || std::isinf(seconds)) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string progress_line(int64_t step, int64_t total_steps, double loss, double lr, double grad_norm,
                          double tokens_per_second, double seconds_per_step) {
  return absl::StrFormat("step %d/%d  loss %.4f  lr %.2e  |g| %.2f  %.0f tok/s  ETA %s", step, total_steps, loss, lr,
                         grad_norm, tokens_per_second,
                         format_duration(seconds_per_step * static_cast<double>(total_steps - step)));
}

}  // namespace bertforge
