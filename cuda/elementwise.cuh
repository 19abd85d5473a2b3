// CUDA kernels for element-wise arithmetic and bias rows, their host launchers (the
// signatures of ops/kernels.h) and their registration. CPU reference: ops/cpu/elementwise.cpp.
// One thread per element; sum_rows gives each thread one column, so a warp reads 32
// adjacent floats.
#pragma once

#include <cstdint>

#include "cuda/kernels.h"
#include "cuda/portable.cuh"
#include "ops/kernels.h"

namespace bertforge::cuda {

constexpr int kElementwiseThreads = 256;

__global__ void binary_kernel(BinaryOp op, float* out, const float* a, const float* b, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  switch (op) {
    case BinaryOp::kAdd: out[i] = a[i] + b[i]; break;
    case BinaryOp::kSub: out[i] = a[i] - b[i]; break;
    case BinaryOp::kMul: out[i] = a[i] * b[i]; break;
  }
}

__global__ void scale_kernel(float* out, const float* x, float s, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = s * x[i];
}

// out (rows, cols) = x + bias (cols)
__global__ void add_bias_kernel(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < rows * cols) out[i] = x[i] + bias[i % cols];
}

// out (cols) = column sums of x (rows, cols), one thread per column.
__global__ void sum_rows_kernel(float* out, const float* x, int64_t rows, int64_t cols) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float acc = 0.0f;
  for (int64_t r = 0; r < rows; ++r) acc += x[r * cols + c];
  out[c] = acc;
}

inline void binary(BinaryOp op, float* out, const float* a, const float* b, int64_t n) {
  if (n == 0) return;
  BF_LAUNCH(binary_kernel, blocks_for(n, kElementwiseThreads), kElementwiseThreads, 0, op, out, a, b, n);
}

inline void scale(float* out, const float* x, float s, int64_t n) {
  if (n == 0) return;
  BF_LAUNCH(scale_kernel, blocks_for(n, kElementwiseThreads), kElementwiseThreads, 0, out, x, s, n);
}

inline void add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  BF_LAUNCH(add_bias_kernel, blocks_for(rows * cols, kElementwiseThreads), kElementwiseThreads, 0, out, x, bias,
            rows, cols);
}

inline void sum_rows(float* out, const float* x, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  BF_LAUNCH(sum_rows_kernel, blocks_for(cols, kElementwiseThreads), kElementwiseThreads, 0, out, x, rows, cols);
}

void register_elementwise_kernels(KernelTable& table) {
  table.binary = &binary;
  table.scale = &scale;
  table.add_bias = &add_bias;
  table.sum_rows = &sum_rows;
}

}  // namespace bertforge::cuda
