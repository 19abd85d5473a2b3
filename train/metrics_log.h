// Training metrics as JSON Lines (one object per line, e.g.
// {"step": 100, "loss": 6.21, "lr": 1e-4, "grad_norm": 1.3, "tokens_per_s": 5400}),
// and the human-readable progress line with an ETA.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "core/json.h"

namespace bertforge {

class MetricsLog {
 public:
  MetricsLog() = default;
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Opens `path` for appending. With resume_step >= 0, first drops every line
  // whose "step" is greater than resume_step (written after the checkpoint the
  // run resumes from, so the log matches an uninterrupted run); the rewrite is
  // atomic. resume_step < 0 starts a fresh log.
  absl::Status open(const std::string& path, int64_t resume_step = -1);
  // Appends one object as a line and flushes it.
  absl::Status write(const Json& record);

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
};

// "step 120/1000  loss 5.4321  lr 1.00e-04  |g| 1.23  5400 tok/s  ETA 2m13s"
std::string progress_line(int64_t step, int64_t total_steps, double loss, double lr, double grad_norm,
                          double tokens_per_second, double seconds_per_step);

// 0s, 59s, 2m13s, 3h05m
std::string format_duration(double seconds);

}  // namespace bertforge
