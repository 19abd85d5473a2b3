// CPU kernels for element-wise arithmetic and bias rows (see ops/kernels.h).
#include "ops/cpu/cpu_kernels.h"

#include <algorithm>

namespace bertforge::cpu {

void binary(BinaryOp op, float* out, const float* a, const float* b, int64_t n) {
  switch (op) {
    case BinaryOp::kAdd:
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
      break;
    case BinaryOp::kSub:
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] - b[i];
      break;
    case BinaryOp::kMul:
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
      break;
  }
}

void scale(float* out, const float* x, float s, int64_t n) {
#pragma omp parallel for simd if (parallel : n > kParallelThreshold)
  for (int64_t i = 0; i < n; ++i) out[i] = s * x[i];
}

void add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x_row = x + r * cols;
    float* out_row = out + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out_row[c] = x_row[c] + bias[c];
  }
}

void scale_channels(float* out, const float* x, const float* s, int64_t rows, int64_t cols) {
#pragma omp parallel for if (rows * cols > kParallelThreshold)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x_row = x + r * cols;
    float* out_row = out + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) out_row[c] = x_row[c] * s[c];
  }
}

void sum_rows(float* out, const float* x, int64_t rows, int64_t cols) {
  if (cols == 1) {  // a whole-tensor sum: threads share the rows, each adding in double (a float running sum
                    // of millions of terms drifts, and stops growing at all past 2^24 ones)
    double total = 0.0;
#pragma omp parallel for simd reduction(+ : total) if (parallel : rows > kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) total += x[r];
    out[0] = static_cast<float>(total);
    return;
  }
  // Each thread owns a slice of columns and walks all rows: row-major reads
  // stay sequential within the slice and no reduction across threads is needed.
#pragma omp parallel if (rows * cols > kParallelThreshold)
  {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < cols; ++c) out[c] = 0.0f;
#pragma omp for schedule(static)
    for (int64_t block = 0; block < (cols + 63) / 64; ++block) {
      const int64_t begin = block * 64, end = std::min<int64_t>(begin + 64, cols);
      for (int64_t r = 0; r < rows; ++r) {
        const float* x_row = x + r * cols;
#pragma omp simd
        for (int64_t c = begin; c < end; ++c) out[c] += x_row[c];
      }
    }
  }
}

}  // namespace bertforge::cpu
