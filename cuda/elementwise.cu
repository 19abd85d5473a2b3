// CUDA kernels for element-wise arithmetic; same signatures as the CPU
// reference in ops/cpu/elementwise.cpp (see ops/kernels.h).
#include <cstdint>

#include "cuda/cuda_check.h"
#include "cuda/kernels.h"
#include "ops/kernels.h"

namespace bertforge::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

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

// out (cols) = column sums of x (rows, cols): one thread per column, coalesced across the warp.
__global__ void sum_rows_kernel(float* out, const float* x, int64_t rows, int64_t cols) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float acc = 0.0f;
  for (int64_t r = 0; r < rows; ++r) acc += x[r * cols + c];
  out[c] = acc;
}

void binary(BinaryOp op, float* out, const float* a, const float* b, int64_t n) {
  if (n == 0) return;
  binary_kernel<<<blocks_for(n), kThreads>>>(op, out, a, b, n);
  BF_CUDA_CHECK(cudaGetLastError());
}

void scale(float* out, const float* x, float s, int64_t n) {
  if (n == 0) return;
  scale_kernel<<<blocks_for(n), kThreads>>>(out, x, s, n);
  BF_CUDA_CHECK(cudaGetLastError());
}

void add_bias(float* out, const float* x, const float* bias, int64_t rows, int64_t cols) {
  if (rows * cols == 0) return;
  add_bias_kernel<<<blocks_for(rows * cols), kThreads>>>(out, x, bias, rows, cols);
  BF_CUDA_CHECK(cudaGetLastError());
}

void sum_rows(float* out, const float* x, int64_t rows, int64_t cols) {
  if (cols == 0) return;
  sum_rows_kernel<<<blocks_for(cols), kThreads>>>(out, x, rows, cols);
  BF_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void register_elementwise_kernels(KernelTable& table) {
  table.binary = &binary;
  table.scale = &scale;
  table.add_bias = &add_bias;
  table.sum_rows = &sum_rows;
}

}  // namespace bertforge::cuda
