// quant/awq_statistics.cpp — per-channel mean and max |x| and a reservoir sample of input rows (see awq_statistics.h).
#include "quant/awq_statistics.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace bertforge::quant {

AwqInputStatistics::AwqInputStatistics(int64_t channels, int64_t capacity, uint64_t seed)
    : channels_(channels), capacity_(capacity), sum_abs_(static_cast<size_t>(channels), 0.0),
      max_abs_(static_cast<size_t>(channels), 0.0f),
      rng_(seed) {
  BF_CHECK(channels >= 1 && capacity >= 1, "AwqInputStatistics: channels ", channels, " and capacity ", capacity,
           " must be >= 1");
}

void for_each_real_token(const Tensor& x, const Tensor& mask, int64_t channels, const char* who,
                         const std::function<void(const float* row)>& visit) {
  BF_CHECK(x.dtype() == DType::kF32 && x.dim() >= 1 && x.size(-1) == channels, who, ": expected f32 (..., ", channels,
           "), got ", x.str());
  const std::vector<float> values = x.to_float_vector();
  const int64_t rows = x.numel() / channels;
  std::vector<float> keep;
  if (mask.defined()) {
    keep = mask.to_float_vector();
    BF_CHECK(static_cast<int64_t>(keep.size()) == rows, who, ": mask ", mask.shape_str(),
             " does not match the rows of ", x.shape_str());
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (keep.empty() || keep[static_cast<size_t>(r)] != 0.0f) visit(values.data() + r * channels);
  }
}

void AwqInputStatistics::observe(const Tensor& x, const Tensor& mask) {
  const size_t K = static_cast<size_t>(channels_);
  for_each_real_token(x, mask, channels_, "AwqInputStatistics", [&](const float* row) {
    for (size_t k = 0; k < K; ++k) {
      sum_abs_[k] += std::fabs(row[k]);
      max_abs_[k] = std::max(max_abs_[k], std::fabs(row[k]));
    }
    int64_t slot = rows_seen_;
    if (rows_seen_ >= capacity_) {
      slot = std::uniform_int_distribution<int64_t>(0, rows_seen_)(rng_);
    } else {
      sample_.resize(sample_.size() + K);
    }
    if (slot < capacity_) std::copy(row, row + K, sample_.begin() + static_cast<std::ptrdiff_t>(slot * channels_));
    ++rows_seen_;
  });
}

std::vector<float> AwqInputStatistics::mean_abs() const {
  std::vector<float> mean(sum_abs_.size(), 0.0f);
  if (rows_seen_ == 0) return mean;
  for (size_t k = 0; k < mean.size(); ++k) mean[k] = static_cast<float>(sum_abs_[k] / static_cast<double>(rows_seen_));
  return mean;
}

Tensor AwqInputStatistics::samples() const {
  return Tensor::from_vector(sample_, {static_cast<int64_t>(sample_.size()) / channels_, channels_});
}

}  // namespace bertforge::quant
