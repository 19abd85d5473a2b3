// quant/awq_statistics.h — what AWQ and migration (quant/migration.h) keep of one Linear's calibration inputs:
// the mean |x| and max |x| of every input channel and a bounded random sample of input rows (tokens) for their
// output-MSE searches.
//
// For each observed row x (K) at a real token (attention mask 1; padding rows are skipped: the model's loss and
// outputs never use them):
//   sum_abs[k] += |x[k]|,  rows += 1                    mean_abs[k] = sum_abs[k] / rows
//   max_abs[k] = max(max_abs[k], |x[k]|)
//   reservoir sampling (Vitter's algorithm R): row t (0-based) fills slot t while t < capacity, later it replaces
//   slot j = uniform{0..t} when j < capacity
// so the sample is a uniform random subset of every row seen, drawn from std::mt19937_64(seed), and memory is
// capacity * K floats however many batches are observed.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "core/tensor.h"

namespace bertforge::quant {

// Calls visit(row) for each row (K floats) of x F32 (..., K) (any device, any strides) whose entry in mask (x's
// leading shape, of 0 and 1, any dtype) is 1; for every row when mask is undefined. `who` names the caller in the
// errors for an x that is not F32 (..., K) or a mask of another shape.
void for_each_real_token(const Tensor& x, const Tensor& mask, int64_t channels, const char* who,
                         const std::function<void(const float* row)>& visit);

class AwqInputStatistics {
 public:
  // channels K >= 1, capacity >= 1 rows.
  AwqInputStatistics(int64_t channels, int64_t capacity, uint64_t seed);

  // x F32 (B,T,K) (any device, any strides); mask (B,T) of 0 and 1 (any dtype) or undefined (every row counts).
  void observe(const Tensor& x, const Tensor& mask);

  int64_t channels() const { return channels_; }
  int64_t rows_seen() const { return rows_seen_; }
  // (K) mean |x| per input channel over every row seen; zeros before any row.
  std::vector<float> mean_abs() const;
  // (K) max |x| per input channel over every row seen; zeros before any row.
  const std::vector<float>& max_abs() const { return max_abs_; }
  // F32 (n,K), n = min(rows_seen, capacity): the sampled rows, in slot order.
  Tensor samples() const;

 private:
  int64_t channels_, capacity_;
  int64_t rows_seen_ = 0;
  std::vector<double> sum_abs_;  // (K)
  std::vector<float> max_abs_;   // (K)
  std::vector<float> sample_;    // (min(rows_seen, capacity), K), row-major
  std::mt19937_64 rng_;
};

}  // namespace bertforge::quant
